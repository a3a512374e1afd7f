//! Bounds-checked packet access and the parse of IPv4/UDP/BOOTP headers and DHCP options. Every
//! read checks against `data_end` (the verifier insists, and a short frame is a counted pass);
//! offsets are capped so the verifier can bound them.

use aya_ebpf::{
    helpers::generated::{bpf_loop, bpf_xdp_load_bytes},
    programs::XdpContext,
};
use server_common::{
    fastpath::{FINGERPRINT_MAX_WORDS, OPTIONS_OFFSET},
    XdpStat,
};

/// BOOTP field offsets (RFC 2131 §2).
pub const OP: usize = 0;
pub const HTYPE: usize = 1;
pub const HLEN: usize = 2;
pub const XID: usize = 4;
pub const SECS: usize = 8;
pub const FLAGS: usize = 10;
pub const CIADDR: usize = 12;
pub const YIADDR: usize = 16;
pub const SIADDR: usize = 20;
pub const GIADDR: usize = 24;
pub const CHADDR: usize = 28;
pub const COOKIE: usize = 236;
/// RFC 2131 §3.
const MAGIC_COOKIE: u32 = u32::from_be_bytes([99, 130, 83, 99]);

/// No offset in a frame we parse reaches this (jumbo frames are not DHCP); the cap lets the
/// verifier bound variable offsets.
const OFFSET_LIMIT: usize = 4096;
/// Options walked before giving up: a request has about ten, and the verifier explores every
/// iteration, so the bound is kept tight (0-padding counts one per byte).
const OPTIONS_LIMIT: usize = 64;

#[inline(always)]
pub fn is_vlan(ethertype: u16) -> bool {
    ethertype == 0x8100 || ethertype == 0x88a8
}

/// A pointer to `size` bytes at `offset`, or `None` past the end.
#[inline(always)]
pub fn at(ctx: &XdpContext, offset: usize, size: usize) -> Option<*mut u8> {
    if offset > OFFSET_LIMIT {
        return None;
    }
    let start = ctx.data();
    if start + offset + size > ctx.data_end() {
        return None;
    }
    Some((start + offset) as *mut u8)
}

#[inline(always)]
pub fn read_u8(ctx: &XdpContext, offset: usize) -> Option<u8> {
    // SAFETY: `at` checked the byte is inside the frame.
    at(ctx, offset, 1).map(|pointer| unsafe { *pointer })
}

/// Big-endian 16-bit field.
#[inline(always)]
pub fn read_u16(ctx: &XdpContext, offset: usize) -> Option<u16> {
    let pointer = at(ctx, offset, 2)?;
    // SAFETY: `at` checked both bytes are inside the frame.
    Some(u16::from_be_bytes(unsafe { [*pointer, *pointer.add(1)] }))
}

/// A 32-bit field as it sits in the packet (network order), for comparisons with map values
/// stored the same way.
#[inline(always)]
pub fn read_raw_u32(ctx: &XdpContext, offset: usize) -> Option<u32> {
    let pointer = at(ctx, offset, 4)?;
    // SAFETY: `at` checked the four bytes are inside the frame.
    Some(u32::from_ne_bytes(unsafe {
        [*pointer, *pointer.add(1), *pointer.add(2), *pointer.add(3)]
    }))
}

/// Copies `len` (1..=32) bytes at `offset` into `buffer`.
#[inline(always)]
pub fn load(
    ctx: &XdpContext,
    offset: usize,
    buffer: &mut [u8; 32],
    len: usize,
) -> Result<(), XdpStat> {
    // SAFETY: `buffer` holds 32 bytes.
    unsafe { load_into(ctx, offset, buffer.as_mut_ptr(), 32, len) }
}

/// Copies `len` bytes at `offset` into the word buffer (`len` ≤ its size in bytes).
#[inline(always)]
pub fn load_words<const N: usize>(
    ctx: &XdpContext,
    offset: usize,
    words: &mut [u64; N],
    len: usize,
) -> Result<(), XdpStat> {
    // SAFETY: `words` holds N * 8 bytes.
    unsafe { load_into(ctx, offset, words.as_mut_ptr().cast(), N * 8, len) }
}

/// `bpf_xdp_load_bytes` of `len` (1..=`capacity`) bytes at `offset` into `destination`.
///
/// # Safety
/// `destination` must be valid for `capacity` bytes of writes.
#[inline(always)]
unsafe fn load_into(
    ctx: &XdpContext,
    offset: usize,
    destination: *mut u8,
    capacity: usize,
    len: usize,
) -> Result<(), XdpStat> {
    // Opaque to the optimiser, so that the bound is checked on the very register the helper gets
    // (LLVM otherwise folds it into a wider comparison the verifier cannot follow).
    let len = core::hint::black_box(len);
    if len == 0 || len > capacity || offset > OFFSET_LIMIT {
        return Err(XdpStat::PassedMalformed);
    }
    // SAFETY: the helper checks the range against the frame; the caller vouches for
    // `capacity` ≥ len bytes at `destination`.
    let result =
        unsafe { bpf_xdp_load_bytes(ctx.ctx, offset as u32, destination.cast(), len as u32) };
    if result != 0 {
        return Err(XdpStat::PassedMalformed);
    }
    Ok(())
}

/// The headers of a BOOTREQUEST to the server port.
pub struct Frame {
    /// IPv4 header length in bytes.
    pub ihl: usize,
    /// Offset of the BOOTP message.
    pub dhcp: usize,
    /// Bytes of BOOTP message (UDP length − 8).
    pub dhcp_len: usize,
    pub htype: u8,
    pub hlen: u8,
    pub secs: u16,
    /// Network order as in the packet.
    pub ciaddr: u32,
    pub giaddr: u32,
    /// True when the magic cookie is there (else BOOTP without options).
    pub cookie: bool,
}

/// IPv4 → UDP to `port` → BOOTREQUEST, at `L3`.
#[inline(always)]
pub fn parse<const L3: usize>(
    ctx: &XdpContext,
    ethertype: u16,
    port: u16,
) -> Result<Frame, XdpStat> {
    if ethertype != 0x0800 {
        return Err(XdpStat::PassedNotDhcp);
    }
    let version_ihl = read_u8(ctx, L3).ok_or(XdpStat::PassedMalformed)?;
    if version_ihl >> 4 != 4 {
        return Err(XdpStat::PassedMalformed);
    }
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    if ihl < 20 {
        return Err(XdpStat::PassedMalformed);
    }
    let protocol = read_u8(ctx, L3 + 9).ok_or(XdpStat::PassedMalformed)?;
    if protocol != 17 {
        return Err(XdpStat::PassedNotDhcp);
    }
    // A fragment (more-fragments bit or an offset) cannot be parsed on its own.
    let fragment = read_u16(ctx, L3 + 6).ok_or(XdpStat::PassedMalformed)?;
    if fragment & 0x3fff != 0 {
        return Err(XdpStat::PassedNotDhcp);
    }
    let total = usize::from(read_u16(ctx, L3 + 2).ok_or(XdpStat::PassedMalformed)?);
    let udp = L3 + ihl;
    // One bounds check covers the UDP header and the fixed BOOTP header with the cookie; the
    // fields are read from that pointer at constant offsets, which the verifier follows.
    let Some(header) = at(ctx, udp, 8 + OPTIONS_OFFSET) else {
        // Too short for a DHCP message: not ours to judge when it is not to our port.
        return match read_u16(ctx, udp + 2) {
            Some(destination) if destination == port => Err(XdpStat::PassedMalformed),
            Some(_) => Err(XdpStat::PassedNotDhcp),
            None => Err(XdpStat::PassedMalformed),
        };
    };
    // SAFETY (all reads below): offsets < 8 + OPTIONS_OFFSET, checked by `at`.
    let field = |offset: usize| unsafe { *header.add(offset) };
    let field_u16 = |offset: usize| u16::from_be_bytes([field(offset), field(offset + 1)]);
    let field_raw_u32 = |offset: usize| {
        u32::from_ne_bytes([
            field(offset),
            field(offset + 1),
            field(offset + 2),
            field(offset + 3),
        ])
    };
    if field_u16(2) != port {
        return Err(XdpStat::PassedNotDhcp);
    }
    let udp_len = usize::from(field_u16(4));
    // RFC 2131 §2: the fixed BOOTP header is 236 bytes; the UDP length must fit in the IP total
    // length and the frame. The frame length is made opaque to the optimiser: otherwise LLVM
    // uses this comparison to drop later pointer checks that the verifier needs to see.
    let frame_len = core::hint::black_box(ctx.data_end() - ctx.data());
    if udp_len < 8 + COOKIE || ihl + udp_len > total || udp + udp_len > frame_len {
        return Err(XdpStat::PassedMalformed);
    }
    let dhcp = udp + 8;
    if field(8 + OP) != 1 {
        // BOOTREPLY on the server port: noise for the engine to count.
        return Err(XdpStat::Passed);
    }
    let dhcp_len = udp_len - 8;
    let cookie =
        dhcp_len >= OPTIONS_OFFSET && u32::from_be(field_raw_u32(8 + COOKIE)) == MAGIC_COOKIE;
    Ok(Frame {
        ihl,
        dhcp,
        dhcp_len,
        htype: field(8 + HTYPE),
        hlen: field(8 + HLEN),
        secs: field_u16(8 + SECS),
        ciaddr: field_raw_u32(8 + CIADDR),
        giaddr: field_raw_u32(8 + GIADDR),
        cookie,
    })
}

/// What the kernel reads from the options (RFC 2132).
pub struct Options {
    /// Option 53, `None` for BOOTP.
    pub message_type: Option<u8>,
    /// Offset (from the frame start) and length of option 61's value; length 0 when absent.
    pub client_id_offset: u32,
    pub client_id_len: u32,
}

/// Bytes of the per-CPU scratch buffer that holds a copy of the options area: a power of two
/// (offsets are masked with [`AREA_MASK`]) plus one word, so that a masked byte read stays in
/// the map value.
pub const SCRATCH_WORDS: usize = 257;
const AREA_MASK: u32 = 2047;

/// State of the options walk. It lives in a per-CPU map rather than on the stack: the verifier
/// does not track map contents, so every `bpf_loop` iteration starts from the same abstract
/// state and the callback is verified in a few passes instead of once per possible offset.
#[repr(C)]
pub struct Walk {
    /// Offsets in the options area: the next option, and the area's length.
    offset: u32,
    end: u32,
    /// Frame offset of the area, to report option 61's position in the frame.
    area_start: u32,
    message_type: u32,
    client_id_offset: u32,
    client_id_len: u32,
    /// 0 walking, 1 done, 2 malformed.
    status: u32,
}

/// What the `bpf_loop` callback gets.
#[repr(C)]
struct WalkContext {
    walk: *mut Walk,
    /// The copy of the options area (this CPU's scratch slot).
    area: *const u8,
}

const WALKING: u32 = 0;
const DONE: u32 = 1;
const MALFORMED: u32 = 2;
/// [`Walk::message_type`] when option 53 is absent.
const NO_TYPE: u32 = 0x100;

/// One option per call: `bpf_loop` lets the verifier check the body once instead of once per
/// iteration and branch (a plain bounded loop over options exceeds its 1 M instruction budget).
/// Reads come from the scratch copy of the area, with masked offsets: plain loads, no helper.
extern "C" fn walk_step(_index: u32, data: *mut core::ffi::c_void) -> i64 {
    // SAFETY: `data` is the `WalkContext` on `walk_options`'s stack, alive for the whole
    // bpf_loop; its pointers are this CPU's map slots.
    let context = unsafe { &*(data as *const WalkContext) };
    // SAFETY: as above.
    let walk = unsafe { &mut *context.walk };
    let area = context.area;
    // SAFETY: the mask keeps the read inside the scratch value (SCRATCH_WORDS * 8 > AREA_MASK).
    let byte = |at: u32| unsafe { *area.add((at & AREA_MASK) as usize) };
    let offset = walk.offset;
    let end = walk.end;
    if offset >= end {
        // Ran off the area without END: ISC accepts that; so do we.
        walk.status = DONE;
        return 1;
    }
    let code = byte(offset);
    if code == 0 {
        walk.offset = offset + 1;
        return 0;
    }
    if code == 255 {
        walk.status = DONE;
        return 1;
    }
    if offset + 1 >= end {
        walk.status = MALFORMED;
        return 1;
    }
    let len = u32::from(byte(offset + 1));
    let value = offset + 2;
    if value + len > end {
        walk.status = MALFORMED;
        return 1;
    }
    match (code, len) {
        (53, 1) => walk.message_type = u32::from(byte(value)),
        (53, _) | (61, 0) => {
            walk.status = MALFORMED;
            return 1;
        }
        (61, _) => {
            walk.client_id_offset = walk.area_start + value;
            walk.client_id_len = len;
        }
        _ => {}
    }
    walk.offset = value + len;
    0
}

/// Copies the options area (after the magic cookie) into this CPU's scratch buffer and returns
/// its length (0 without the cookie).
#[inline(always)]
pub fn load_area(ctx: &XdpContext, frame: &Frame) -> Result<usize, XdpStat> {
    if !frame.cookie {
        return Ok(0);
    }
    let area_len = frame.dhcp_len - OPTIONS_OFFSET;
    if area_len == 0 {
        return Ok(0);
    }
    if area_len > FINGERPRINT_MAX_WORDS * 8 {
        return Err(XdpStat::PassedUnsupported);
    }
    let scratch = crate::SCRATCH
        .get_ptr_mut(0)
        .ok_or(XdpStat::PassedUnsupported)?;
    // SAFETY: this CPU's slot, used by this program run only.
    let words = unsafe { &mut *scratch };
    load_words(ctx, frame.dhcp + OPTIONS_OFFSET, words, area_len)?;
    Ok(area_len)
}

/// Walks the options area (already in the scratch buffer, `area_len` bytes) up to END. An
/// option running past the area, an empty option 61 (RFC 2132 §9.14: minimum length 2) or more
/// options than [`OPTIONS_LIMIT`] is a pass. Option overload (52) into sname/file is not
/// followed: options 53/61 are expected in the main area, and anything subtler is the
/// fingerprint's (renewals) or the engine's business.
#[inline(always)]
pub fn walk_options(frame: &Frame, area_len: usize) -> Result<Options, XdpStat> {
    if area_len == 0 {
        return Ok(Options {
            message_type: None,
            client_id_offset: 0,
            client_id_len: 0,
        });
    }
    let (Some(walk), Some(scratch)) = (crate::WALK.get_ptr_mut(0), crate::SCRATCH.get_ptr(0))
    else {
        return Err(XdpStat::PassedUnsupported);
    };
    // SAFETY: this CPU's slot, used by this program run only.
    let walk = unsafe { &mut *walk };
    walk.offset = 0;
    walk.end = area_len as u32;
    walk.area_start = (frame.dhcp + OPTIONS_OFFSET) as u32;
    walk.message_type = NO_TYPE;
    walk.client_id_offset = 0;
    walk.client_id_len = 0;
    walk.status = WALKING;
    let mut context = WalkContext {
        walk,
        area: scratch.cast(),
    };
    // SAFETY: `walk_step` has the callback signature; `context` outlives the call.
    unsafe {
        bpf_loop(
            OPTIONS_LIMIT as u32,
            walk_step as *mut core::ffi::c_void,
            (&mut context as *mut WalkContext).cast(),
            0,
        )
    };
    // SAFETY: as above; re-borrowed after the loop.
    let walk = unsafe { &*context.walk };
    match walk.status {
        DONE => Ok(Options {
            message_type: (walk.message_type != NO_TYPE).then_some(walk.message_type as u8),
            client_id_offset: walk.client_id_offset,
            client_id_len: walk.client_id_len,
        }),
        MALFORMED => Err(XdpStat::PassedMalformed),
        // More options than a client sends: let userspace decide.
        _ => Err(XdpStat::PassedUnsupported),
    }
}
