//! The xdhcpd XDP program: parses Ethernet (up to two VLAN tags), IPv4, UDP and BOOTP/DHCP;
//! drops DISCOVERs of the failover partner's load-balancing buckets (RFC 3074, docs/spec/failover.md §11);
//! answers renewals of leases userspace has published (DESIGN.md "The fast path and its two
//! bounds") by rewriting the request into the reply the userspace engine would send; passes
//! everything else to the kernel stack. Every frame ends in exactly one statistics slot.
#![no_std]
#![no_main]

mod packet;
mod renew;

use aya_ebpf::{
    bindings::{xdp_action, BPF_F_NO_PREALLOC},
    macros::{map, xdp},
    maps::{Array, HashMap, PerCpuArray, RingBuf},
    programs::XdpContext,
};
use server_common::fastpath::{
    FastPathConfig, LeaseKey, LeaseValue, Template, CONFIG_FAILOVER_NORMAL, CONFIG_RENEW,
    FINGERPRINT_MAX_WORDS, KEY_CLIENT_ID, KEY_HARDWARE, KEY_MAX, RELATIONSHIP_SLOTS,
    TEMPLATE_SLOTS,
};
use server_common::{loadbalance, XdpStat};

use packet::{Frame, Options};

#[map]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(XdpStat::COUNT, 0);

/// Single entry: [`FastPathConfig`], published by userspace.
#[map]
static CONFIG: Array<FastPathConfig> = Array::with_max_entries(1, 0);

/// Leases the kernel may renew, by client key. Not preallocated: sized for ISP scale, filled as
/// userspace publishes.
#[map]
static LEASES: HashMap<LeaseKey, LeaseValue> =
    HashMap::with_max_entries(1 << 21, BPF_F_NO_PREALLOC);

/// Reply templates by index (shared by every lease whose reply is the same). An array: its
/// lookup is inlined by the verifier (a hash lookup is a call and a hash). Preallocated:
/// `TEMPLATE_SLOTS` × 656 bytes.
#[map]
static TEMPLATES: Array<Template> = Array::with_max_entries(TEMPLATE_SLOTS, 0);

/// The MAC address of each interface by ifindex: the Ethernet source of a reply to a request that
/// was broadcast (REBINDING), where the request's destination MAC is not ours.
#[map]
static INTERFACE_MACS: HashMap<u32, [u8; 8]> = HashMap::with_max_entries(256, 0);

/// Per failover relationship ([`LeaseValue::relationship`] − 1): [`RELATIONSHIP_SERVES`] while
/// its state answers renewals. An array: the lookup is inlined. Zero (the initial value) passes
/// every renewal of that relationship's leases up.
#[map]
static RELATIONSHIPS: Array<u32> = Array::with_max_entries(RELATIONSHIP_SLOTS, 0);

/// Renewals answered in the kernel, for userspace to write to the lease log.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 20, 0);

/// Per-CPU scratch for the options area (aligned copy for the fingerprint).
#[map]
static SCRATCH: PerCpuArray<[u64; packet::SCRATCH_WORDS]> = PerCpuArray::with_max_entries(1, 0);

/// Per-CPU state of the options walk (see `packet::Walk`).
#[map]
static WALK: PerCpuArray<packet::Walk> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
fn bump(stat: XdpStat) {
    if let Some(slot) = STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU while the program runs.
        unsafe { *slot += 1 };
    }
}

#[xdp]
pub fn xdhcpd(ctx: XdpContext) -> u32 {
    bump(XdpStat::Seen);
    let (action, stat) = classify(&ctx);
    bump(stat);
    action
}

const PASS: u32 = xdp_action::XDP_PASS;

/// The decision for one frame and the statistics slot that says why.
#[inline(always)]
fn classify(ctx: &XdpContext) -> (u32, XdpStat) {
    let Some(config) = CONFIG.get(0) else {
        return (PASS, XdpStat::PassedDisabled);
    };
    // Ethernet type and the offset of the IPv4 header, behind zero, one or two 802.1Q/802.1ad
    // tags. Each depth gets its own instance of the code below, so that every packet offset on
    // the renewal path is a constant the verifier checks once.
    let Some(ethertype) = packet::read_u16(ctx, 12) else {
        return (PASS, XdpStat::PassedMalformed);
    };
    if !packet::is_vlan(ethertype) {
        return dhcp::<14>(ctx, config, ethertype);
    }
    let Some(inner) = packet::read_u16(ctx, 16) else {
        return (PASS, XdpStat::PassedMalformed);
    };
    if !packet::is_vlan(inner) {
        return dhcp::<18>(ctx, config, inner);
    }
    let Some(innermost) = packet::read_u16(ctx, 20) else {
        return (PASS, XdpStat::PassedMalformed);
    };
    if packet::is_vlan(innermost) {
        // Three tags: not something a DHCP client sends; leave it to the stack.
        return (PASS, XdpStat::PassedNotDhcp);
    }
    dhcp::<22>(ctx, config, innermost)
}

/// IPv4/UDP/BOOTP at `L3`, then load balancing or the renewal fast path.
#[inline(always)]
fn dhcp<const L3: usize>(
    ctx: &XdpContext,
    config: &FastPathConfig,
    ethertype: u16,
) -> (u32, XdpStat) {
    let frame = match packet::parse::<L3>(ctx, ethertype, config.server_port) {
        Ok(frame) => frame,
        Err(stat) => return (PASS, stat),
    };
    let area_len = match packet::load_area(ctx, &frame) {
        Ok(area_len) => area_len,
        Err(stat) => return (PASS, stat),
    };
    let options = match packet::walk_options(&frame, area_len) {
        Ok(options) => options,
        Err(stat) => return (PASS, stat),
    };
    match options.message_type {
        // DHCPDISCOVER, or a BOOTREQUEST without option 53: subject to load balancing (never a
        // REQUEST: docs/spec/failover.md §11, RFC 3074 §3).
        None | Some(1) => load_balance(ctx, config, &frame, &options),
        // DHCPREQUEST with ciaddr: RENEWING or REBINDING (RFC 2131 §4.3.2).
        Some(3) if frame.ciaddr != 0 && config.flags & CONFIG_RENEW != 0 => {
            renew::renew::<L3>(ctx, config, &frame, &options, area_len)
        }
        Some(_) => (PASS, XdpStat::Passed),
    }
}

/// RFC 3074 load balancing: when the failover state is NORMAL and the client has waited less than
/// `load balance max seconds`, a client hashing into the partner's bucket is the partner's.
#[inline(always)]
fn load_balance(
    ctx: &XdpContext,
    config: &FastPathConfig,
    frame: &Frame,
    options: &Options,
) -> (u32, XdpStat) {
    if config.flags & CONFIG_FAILOVER_NORMAL == 0 || frame.secs >= config.lb_max_secs {
        return (PASS, XdpStat::Passed);
    }
    let mut words = core::mem::MaybeUninit::uninit();
    if let Err(stat) = client_key(ctx, frame, options, &mut words) {
        return (PASS, stat);
    }
    // SAFETY: `client_key` wrote every word.
    let key = unsafe { words.assume_init_ref() }.key();
    let bucket = loadbalance::bucket_of_prefix(&key.bytes, key.len as usize);
    if loadbalance::hba_has(&config.hba, bucket) {
        (PASS, XdpStat::Passed)
    } else {
        (xdp_action::XDP_DROP, XdpStat::DroppedForPartner)
    }
}

/// A [`LeaseKey`] built on the stack in 32-bit words: a struct initialiser there becomes LLVM's
/// byte-at-a-time BPF `memset`, and a per-CPU map slot is a cold cache line in a single run.
#[repr(C, align(4))]
pub struct KeyWords([u32; KEY_WORDS]);

const KEY_WORDS: usize = core::mem::size_of::<LeaseKey>() / 4;
const _: () = assert!(KEY_WORDS * 4 == core::mem::size_of::<LeaseKey>());
const _: () = assert!(core::mem::align_of::<LeaseKey>() == 4);

impl KeyWords {
    #[inline(always)]
    pub fn key(&self) -> &LeaseKey {
        // SAFETY: same size and alignment (asserted above); `LeaseKey` is plain bytes and every
        // word was written by `client_key`.
        unsafe { &*(self as *const Self).cast::<LeaseKey>() }
    }
}

/// The client's key: option 61 when present, else chaddr (`hlen` bytes); the userspace store's
/// rule, and the RFC 3074 hash input. Built in `words` (on the caller's stack) with word stores;
/// chaddr is read straight from the packet (it lies in the fixed BOOTP header `parse` checked)
/// and masked to `hlen` bytes, only option 61 (variable offset and length) takes the helper.
#[inline(always)]
fn client_key(
    ctx: &XdpContext,
    frame: &Frame,
    options: &Options,
    words: &mut core::mem::MaybeUninit<KeyWords>,
) -> Result<(), XdpStat> {
    let words = words.as_mut_ptr().cast::<u32>();
    let mut index = 0;
    while index < KEY_WORDS {
        // SAFETY: `index` < KEY_WORDS, inside `words`. Volatile: no `memset`.
        unsafe { words.add(index).write_volatile(0) };
        index += 1;
    }
    if options.client_id_len != 0 {
        let len = options.client_id_len as usize;
        if len > KEY_MAX {
            return Err(XdpStat::PassedUnsupported);
        }
        // SAFETY: the 32 bytes after the header word, all written (zeroed) above.
        let bytes = unsafe { &mut *words.add(1).cast::<[u8; KEY_MAX]>() };
        packet::load(ctx, options.client_id_offset as usize, bytes, len)?;
        // SAFETY: inside `words`.
        unsafe {
            words.write_volatile(u32::from_ne_bytes([KEY_CLIENT_ID, len as u8, 0, 0]));
        }
    } else {
        let len = frame.hlen as usize;
        if len == 0 || len > 16 {
            return Err(XdpStat::PassedMalformed);
        }
        let chaddr =
            packet::at(ctx, frame.dhcp + packet::CHADDR, 16).ok_or(XdpStat::PassedMalformed)?;
        let mut index = 0;
        while index < 4 {
            // Bytes of this word inside chaddr's first `len`, in packet order.
            let valid = len.saturating_sub(4 * index);
            let mask = if valid >= 4 {
                u32::MAX
            } else {
                u32::from_le(((1u64 << (8 * valid)) - 1) as u32)
            };
            // SAFETY: `at` checked the 16 bytes; `index` < 4 keeps the word inside `words`.
            unsafe {
                let word = chaddr.add(4 * index).cast::<u32>().read_volatile();
                words.add(1 + index).write_volatile(word & mask);
            }
            index += 1;
        }
        // SAFETY: inside `words`.
        unsafe {
            words.write_volatile(u32::from_ne_bytes([
                KEY_HARDWARE,
                len as u8,
                frame.htype,
                0,
            ]));
        }
    }
    Ok(())
}

/// [`server_common::fastpath::options_fingerprint`] of the request's options area, from the
/// scratch copy [`packet::load_area`] made (`area_len` bytes).
#[inline(always)]
fn fingerprint(area_len: usize) -> Option<u64> {
    let mut hash = area_len as u64;
    if area_len == 0 {
        return Some(hash);
    }
    let scratch = SCRATCH.get_ptr(0)?;
    // SAFETY: this CPU's slot, read-only here.
    let words = unsafe { &*scratch };
    let full = area_len / 8;
    let rest = area_len % 8;
    let mut index = 0;
    while index < FINGERPRINT_MAX_WORDS {
        if index >= full {
            break;
        }
        hash = server_common::fastpath::fingerprint_step(hash, u64::from_le(words[index]));
        index += 1;
    }
    // Opaque index: the bound must be checked on the register used for the access.
    let last = core::hint::black_box(full);
    if rest != 0 {
        // The last word's bytes past the area are left over from an earlier packet: mask them.
        let word = *words.get(last)?;
        let mask = (1u64 << (8 * rest)) - 1;
        hash = server_common::fastpath::fingerprint_step(hash, u64::from_le(word) & mask);
    }
    Some(hash)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
