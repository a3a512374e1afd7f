//! The renewal fast path: a DHCPREQUEST in RENEWING or REBINDING state (RFC 2131 §4.3.2) for a
//! lease userspace has published is rewritten in place into the DHCPACK the userspace engine
//! would send (a template it built for the same options area) and sent back out (`XDP_TX`).
//! Every rule of DESIGN.md "The fast path and its two bounds" is checked before the frame is
//! touched; anything unusual passes the request up unchanged.

use aya_ebpf::{
    bindings::{xdp_action, BPF_RB_NO_WAKEUP},
    helpers::generated::{bpf_ktime_get_coarse_ns, bpf_xdp_adjust_tail, bpf_xdp_store_bytes},
    programs::XdpContext,
};
use server_common::fastpath::{
    clock_seconds, FastPathConfig, RenewalEvent, CLOCK_NS_MAX, LEASE_ACTIVE, RELATIONSHIP_SERVES,
    TEMPLATE_MAX, TEMPLATE_OFFSET,
};
use server_common::XdpStat;

use crate::packet::{self, Frame, Options};
use crate::{
    client_key, fingerprint, EVENTS, INTERFACE_MACS, LEASES, PASS, RELATIONSHIPS, TEMPLATES,
};

const IPV4_HEADER: usize = 20;
const UDP_HEADER: usize = 8;

/// Checks the request against the published lease and, when every rule holds, answers it.
#[inline(always)]
pub fn renew<const L3: usize>(
    ctx: &XdpContext,
    config: &FastPathConfig,
    frame: &Frame,
    options: &Options,
    area_len: usize,
) -> (u32, XdpStat) {
    // Shapes the kernel does not rewrite: IPv4 options (the reply would need the payload moved),
    // a client asking for broadcast (the engine's routing then depends on the network), and
    // anything but Ethernet addresses.
    if frame.ihl != IPV4_HEADER || frame.htype != 1 || frame.hlen != 6 {
        return (PASS, XdpStat::PassedUnsupported);
    }
    let dhcp = L3 + IPV4_HEADER + UDP_HEADER;
    let Some(flags) = packet::read_u16(ctx, dhcp + packet::FLAGS) else {
        return (PASS, XdpStat::PassedMalformed);
    };
    if flags & 0x8000 != 0 {
        return (PASS, XdpStat::PassedUnsupported);
    }
    let mut words = core::mem::MaybeUninit::uninit();
    if let Err(stat) = client_key(ctx, frame, options, &mut words) {
        return (PASS, stat);
    }
    // SAFETY: `client_key` wrote every word.
    let key = unsafe { words.assume_init_ref() }.key();
    let Some(lease) = LEASES.get_ptr_mut(key) else {
        return (PASS, XdpStat::PassedNoLease);
    };
    // SAFETY: a map value pointer from the lookup; the fields are plain integers. Another CPU may
    // renew the same lease concurrently; both write the same kind of value.
    let lease_value = unsafe { *lease };

    // Unix time from the coarse monotonic clock (no clock-source read: a tick-updated value) and
    // the offset userspace published; seconds without a 64-bit division (`clock_seconds`).
    // SAFETY: helper without arguments.
    let monotonic = unsafe { bpf_ktime_get_coarse_ns() };
    if monotonic > CLOCK_NS_MAX {
        return (PASS, XdpStat::PassedDisabled);
    }
    let now = (clock_seconds(monotonic) as i64).wrapping_add(config.time_offset);
    if now <= 0 || now >= i64::from(u32::MAX) {
        return (PASS, XdpStat::PassedDisabled);
    }
    let now = now as u32;
    // Rule 1: an ACTIVE lease of this client at this address.
    if lease_value.flags & LEASE_ACTIVE == 0
        || lease_value.address != frame.ciaddr
        || lease_value.ends <= now
    {
        return (PASS, XdpStat::PassedNoLease);
    }
    // Rule 2: the new expiry stays within the horizon.
    let ends = u64::from(now) + u64::from(lease_value.lease_time);
    if ends > u64::from(lease_value.horizon) {
        return (PASS, XdpStat::PassedNoHorizon);
    }
    let ends = ends as u32;
    // Rule 3: a failover lease only while its relationship's state answers renewals
    // (docs/spec/failover.md §6.1); the engine's `serving` test, published by userspace.
    if lease_value.relationship != 0 {
        match RELATIONSHIPS.get(lease_value.relationship - 1) {
            Some(&RELATIONSHIP_SERVES) => {}
            _ => return (PASS, XdpStat::PassedNoHorizon),
        }
    }
    // The template answers one request shape: the same relay and the same options area.
    if frame.giaddr != lease_value.giaddr {
        return (PASS, XdpStat::PassedShape);
    }
    match fingerprint(area_len) {
        Some(hash) if hash == lease_value.fingerprint => {}
        Some(_) => return (PASS, XdpStat::PassedShape),
        None => return (PASS, XdpStat::PassedUnsupported),
    }
    let Some(template) = TEMPLATES.get_ptr(lease_value.template) else {
        return (PASS, XdpStat::PassedShape);
    };
    // SAFETY: a map value pointer from the lookup; read-only here.
    let template = unsafe { &*template };
    // Opaque so the bound is checked on the register the store helper gets (see packet::load).
    let template_len = core::hint::black_box(template.len as usize);
    if template_len == 0 || template_len > TEMPLATE_MAX {
        return (PASS, XdpStat::PassedShape);
    }
    // The request must be for us: unicast to our server identifier (RENEWING, relayed) or
    // broadcast (REBINDING). Anything else is another server's (the stack would drop it).
    match packet::read_raw_u32(ctx, L3 + 16) {
        Some(destination) if destination == template.server_id || destination == u32::MAX => {}
        Some(_) => return (PASS, XdpStat::PassedShape),
        None => return (PASS, XdpStat::PassedMalformed),
    }
    // Rule 4, ISC `dhcp-cache-threshold`: a lease younger than its threshold is answered from
    // the lease as it stands, with the time it has left (the engine's `lease_time::reuse`),
    // which the template does not say. Young means `ends − now ≥ cache_remaining`.
    if u64::from(lease_value.ends) >= u64::from(now) + u64::from(lease_value.cache_remaining) {
        return (PASS, XdpStat::PassedCacheThreshold);
    }

    // Ethernet: the reply goes back to the sender (client or relay); its source is the request's
    // destination when that was our unicast address, else the interface's address. Kept as
    // 4 + 2 byte words (packet order) for word stores below.
    let Some(macs) = packet::at(ctx, 0, 12) else {
        return (PASS, XdpStat::PassedMalformed);
    };
    // SAFETY: `at` checked the twelve bytes; see `load32` on alignment.
    let (destination_mac, sender_mac) = unsafe {
        (
            (load32(macs, 0), load16(macs, 4)),
            (load32(macs, 6), load16(macs, 10)),
        )
    };
    // The group bit is the first byte's lowest bit, the low byte of a little-endian load.
    let source_mac = if destination_mac.0.to_le() & 1 == 0 {
        destination_mac
    } else {
        let ifindex = ctx.ingress_ifindex() as u32;
        // SAFETY: read-only map value.
        match unsafe { INTERFACE_MACS.get(ifindex) } {
            Some(mac) => (
                u32::from_ne_bytes([mac[0], mac[1], mac[2], mac[3]]),
                u16::from_ne_bytes([mac[4], mac[5]]),
            ),
            None => return (PASS, XdpStat::PassedUnsupported),
        }
    };
    // RFC 2131 §4.1: through the relay (giaddr, server port) or to ciaddr (client port).
    let (ip_destination, udp_destination) = if frame.giaddr != 0 {
        (frame.giaddr, config.server_port)
    } else {
        (frame.ciaddr, config.server_port.wrapping_add(1))
    };

    let Some(mut event) = EVENTS.reserve::<RenewalEvent>(0) else {
        return (PASS, XdpStat::PassedRingFull);
    };
    // Resize the frame to the reply: headers + BOOTP fixed part up to sname + template.
    let dhcp_len = TEMPLATE_OFFSET + template_len;
    let udp_len = UDP_HEADER + dhcp_len;
    let ip_len = IPV4_HEADER + udp_len;
    let frame_len = L3 + ip_len;
    let current = ctx.data_end() - ctx.data();
    let delta = frame_len as i64 - current as i64;
    // SAFETY: the helper validates the new length against the buffer.
    if delta != 0 && unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta as i32) } != 0 {
        event.discard(0);
        return (PASS, XdpStat::PassedUnsupported);
    }
    // From here on the frame is the reply; every write below is bounds-checked again since the
    // resize invalidated the packet pointers.
    // SAFETY: the helper copies `template_len` (≤ TEMPLATE_MAX) bytes of the map value into the
    // frame, whose new length covers them.
    let stored = unsafe {
        bpf_xdp_store_bytes(
            ctx.ctx,
            (dhcp + TEMPLATE_OFFSET) as u32,
            template.bytes.as_ptr() as *mut _,
            template_len as u32,
        )
    };
    let Some(head) = packet::at(ctx, 0, dhcp + TEMPLATE_OFFSET) else {
        event.discard(0);
        return (xdp_action::XDP_DROP, XdpStat::PassedMalformed);
    };
    if stored != 0 {
        event.discard(0);
        return (xdp_action::XDP_DROP, XdpStat::PassedMalformed);
    }
    // Word stores: a byte at a time, the ~60 header bytes cost more than the rest of the
    // rewrite (measured with perf on the JIT image: the store buffer fills behind the template
    // copy).
    // SAFETY: `head` covers every byte written below (offsets < dhcp + TEMPLATE_OFFSET).
    unsafe {
        store32(head, 0, sender_mac.0);
        store16(head, 4, sender_mac.1);
        store32(head, 6, source_mac.0);
        store16(head, 10, source_mac.1);
        let ip = head.add(L3);
        let ip_len = (ip_len as u16).to_be_bytes();
        // Version 4, IHL 5, TOS 0, length; identification 0, don't fragment; TTL 64, UDP,
        // checksum (below); source = server identifier; destination.
        let words = [
            u32::from_ne_bytes([0x45, 0, ip_len[0], ip_len[1]]),
            u32::from_ne_bytes([0, 0, 0x40, 0]),
            u32::from_ne_bytes([64, 17, 0, 0]),
            template.server_id,
            ip_destination,
        ];
        let mut ip_sum = 0u64;
        let mut index = 0;
        while index < words.len() {
            store32(ip, 4 * index, words[index]);
            ip_sum += u64::from(words[index]);
            index += 1;
        }
        // One's complement sums in the CPU's byte order, stored as they are: byte-order
        // symmetric (RFC 1071 §2(B)); the big-endian parts are swapped into that order.
        store16(ip, 10, !fold64(ip_sum));

        let udp = ip.add(IPV4_HEADER);
        let ports = config.server_port.to_be_bytes();
        let client = udp_destination.to_be_bytes();
        store32(
            udp,
            0,
            u32::from_ne_bytes([ports[0], ports[1], client[0], client[1]]),
        );
        let udp_len_bytes = (udp_len as u16).to_be_bytes();
        store32(
            udp,
            4,
            u32::from_ne_bytes([udp_len_bytes[0], udp_len_bytes[1], 0, 0]),
        );

        // RFC 2131 §4.3.1 table 3: op BOOTREPLY, secs 0, yiaddr = the lease (= ciaddr), siaddr
        // from the scope; htype, hlen, hops, xid, flags, ciaddr, giaddr and chaddr as sent (the
        // engine zero-fills chaddr past hlen).
        let message = udp.add(UDP_HEADER);
        message.write_volatile(2);
        store16(message, packet::SECS, 0);
        store32(message, packet::YIADDR, frame.ciaddr);
        store32(message, packet::SIADDR, template.siaddr);
        store16(message, packet::CHADDR + 6, 0);
        store32(message, packet::CHADDR + 8, 0);
        store32(message, packet::CHADDR + 12, 0);

        // UDP checksum: pseudo header (addresses from the IP header, protocol and length with
        // the template's precomputed sum), UDP header + the patched BOOTP head (13 words).
        let big_endian = 17 + udp_len as u32 + template.checksum;
        let mut sum = u64::from((fold64(u64::from(big_endian))).swap_bytes())
            + u64::from(template.server_id)
            + u64::from(ip_destination);
        let mut index = 0;
        while index < (UDP_HEADER + TEMPLATE_OFFSET) / 4 {
            sum += u64::from(load32(udp, 4 * index));
            index += 1;
        }
        let mut checksum = !fold64(sum);
        if checksum == 0 {
            // RFC 768: a computed zero is sent as all ones.
            checksum = 0xffff;
        }
        store16(udp, 6, checksum);
    }

    // Record the renewal: the map value (so a retransmission sees the new end) and the event
    // for userspace to write to the lease log.
    // SAFETY: map value pointer from the lookup above.
    unsafe { (*lease).ends = ends };
    let xid = read_xid(ctx, dhcp);
    let record = event.as_mut_ptr();
    // SAFETY: `record` is the reserved ring-buffer entry (52 bytes, 4-aligned); every field is
    // written. The key is copied in words: a struct copy becomes LLVM's byte-loop `memcpy`.
    unsafe {
        let source = (key as *const server_common::fastpath::LeaseKey).cast::<u32>();
        let destination = record.cast::<u32>();
        let mut index = 0;
        while index < core::mem::size_of::<server_common::fastpath::LeaseKey>() / 4 {
            destination
                .add(index)
                .write_volatile(source.add(index).read_volatile());
            index += 1;
        }
        core::ptr::addr_of_mut!((*record).address).write(frame.ciaddr);
        core::ptr::addr_of_mut!((*record).starts).write(now);
        core::ptr::addr_of_mut!((*record).ends).write(ends);
        core::ptr::addr_of_mut!((*record).xid).write(xid);
    }
    // No wakeup: the consumer polls every 20 ms anyway (a renewal's record is not awaited by
    // the client: the horizon covers it), and a wakeup is an irq_work per event.
    event.submit(u64::from(BPF_RB_NO_WAKEUP));
    (xdp_action::XDP_TX, XdpStat::Renewed)
}

#[inline(always)]
fn read_xid(ctx: &XdpContext, dhcp: usize) -> u32 {
    packet::read_raw_u32(ctx, dhcp + packet::XID).unwrap_or(0)
}

/// A 32-bit word at `base + offset` in packet order.
///
/// # Safety
/// The four bytes must be inside the checked frame. Header fields are not 4-aligned (the IPv4
/// header sits 14 bytes into the frame); the XDP program runs only where the verifier allows
/// unaligned packet access (x86-64 and the other architectures with efficient unaligned
/// access, without BPF_F_STRICT_ALIGNMENT), and a word access is what the JIT emits anyway.
#[inline(always)]
unsafe fn load32(base: *const u8, offset: usize) -> u32 {
    // SAFETY: see above. Volatile keeps it one word load.
    unsafe { base.add(offset).cast::<u32>().read_volatile() }
}

/// # Safety
/// As [`load32`], two bytes.
#[inline(always)]
unsafe fn load16(base: *const u8, offset: usize) -> u16 {
    // SAFETY: see `load32`.
    unsafe { base.add(offset).cast::<u16>().read_volatile() }
}

/// # Safety
/// As [`load32`]. Volatile, so that LLVM neither merges nor splits the store (nor turns runs of
/// zeros into its byte-at-a-time BPF `memset`).
#[inline(always)]
unsafe fn store32(base: *mut u8, offset: usize, value: u32) {
    // SAFETY: see `load32`.
    unsafe { base.add(offset).cast::<u32>().write_volatile(value) }
}

/// # Safety
/// As [`store32`], two bytes.
#[inline(always)]
unsafe fn store16(base: *mut u8, offset: usize, value: u16) {
    // SAFETY: see `load32`.
    unsafe { base.add(offset).cast::<u16>().write_volatile(value) }
}

/// Folds a 64-bit sum of 32-bit words to a 16-bit one's complement sum.
#[inline(always)]
fn fold64(mut sum: u64) -> u16 {
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}
