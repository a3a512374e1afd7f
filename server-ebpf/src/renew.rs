//! The renewal fast path: a DHCPREQUEST in RENEWING or REBINDING state (RFC 2131 §4.3.2) for a
//! lease userspace has published is rewritten in place into the DHCPACK the userspace engine
//! would send (a template it built for the same options area) and sent back out (`XDP_TX`).
//! Every rule of DESIGN.md "The fast path and its two bounds" is checked before the frame is
//! touched; anything unusual passes the request up unchanged.

use aya_ebpf::{
    bindings::xdp_action,
    helpers::generated::{
        bpf_csum_diff, bpf_ktime_get_boot_ns, bpf_xdp_adjust_tail, bpf_xdp_store_bytes,
    },
    programs::XdpContext,
};
use server_common::fastpath::{
    FastPathConfig, RenewalEvent, LEASE_ACTIVE, TEMPLATE_MAX, TEMPLATE_OFFSET,
};
use server_common::XdpStat;

use crate::packet::{self, Frame, Options};
use crate::{client_key, fingerprint, EVENTS, INTERFACE_MACS, LEASES, PASS, TEMPLATES};

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
    let key = match client_key(ctx, frame, options) {
        Ok(key) => key,
        Err(stat) => return (PASS, stat),
    };
    let Some(lease) = LEASES.get_ptr_mut(key) else {
        return (PASS, XdpStat::PassedNoLease);
    };
    // SAFETY: a map value pointer from the lookup; the fields are plain integers. Another CPU may
    // renew the same lease concurrently; both write the same kind of value.
    let lease_value = unsafe { *lease };

    // Unix time from the boot clock and the offset userspace published.
    // SAFETY: helper without arguments.
    let boot_seconds = unsafe { bpf_ktime_get_boot_ns() } / 1_000_000_000;
    let now = (boot_seconds as i64).wrapping_add(config.time_offset);
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

    // Ethernet: the reply goes back to the sender (client or relay); its source is the request's
    // destination when that was our unicast address, else the interface's address.
    let Some(destination_mac) = mac_at(ctx, 0) else {
        return (PASS, XdpStat::PassedMalformed);
    };
    let Some(sender_mac) = mac_at(ctx, 6) else {
        return (PASS, XdpStat::PassedMalformed);
    };
    let source_mac = if destination_mac[0] & 1 == 0 {
        destination_mac
    } else {
        let ifindex = ctx.ingress_ifindex() as u32;
        // SAFETY: read-only map value.
        match unsafe { INTERFACE_MACS.get(ifindex) } {
            Some(mac) => [mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]],
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
    // SAFETY: `head` covers every byte written below (offsets < dhcp + TEMPLATE_OFFSET).
    unsafe {
        write_bytes(head, 0, &sender_mac);
        write_bytes(head, 6, &source_mac);
        let ip = head.add(L3);
        *ip = 0x45;
        *ip.add(1) = 0;
        write_bytes(ip, 2, &(ip_len as u16).to_be_bytes());
        // Identification 0, don't fragment, TTL 64, UDP.
        write_bytes(ip, 4, &[0, 0, 0x40, 0, 64, 17, 0, 0]);
        write_bytes(ip, 12, &template.server_id.to_ne_bytes());
        write_bytes(ip, 16, &ip_destination.to_ne_bytes());
        // Checksums with the kernel's csum_partial (bpf_csum_diff): it sums 16-bit words in the
        // CPU's byte order, so its results are kept in that order and stored as they are; the
        // big-endian parts (the template's sum, the pseudo header's protocol and length) are
        // swapped into it. One's complement sums are byte-order symmetric (RFC 1071 §2(B)).
        let ip_sum = csum(ip, IPV4_HEADER as u32, 0);
        write_bytes(ip, 10, &(!fold(ip_sum) as u16).to_ne_bytes());

        let udp = ip.add(IPV4_HEADER);
        write_bytes(udp, 0, &config.server_port.to_be_bytes());
        write_bytes(udp, 2, &udp_destination.to_be_bytes());
        write_bytes(udp, 4, &(udp_len as u16).to_be_bytes());
        write_bytes(udp, 6, &[0, 0]);

        // RFC 2131 §4.3.1 table 3: op BOOTREPLY, secs 0, yiaddr = the lease (= ciaddr), siaddr
        // from the scope; htype, hlen, hops, xid, flags, ciaddr, giaddr and chaddr as sent (the
        // engine zero-fills chaddr past hlen).
        let message = udp.add(UDP_HEADER);
        *message = 2;
        write_bytes(message, packet::SECS, &[0, 0]);
        write_bytes(message, packet::YIADDR, &frame.ciaddr.to_ne_bytes());
        write_bytes(message, packet::SIADDR, &template.siaddr.to_ne_bytes());
        write_bytes(message, packet::CHADDR + 6, &[0; 10]);

        // UDP checksum: pseudo header, UDP header + the patched BOOTP head (contiguous), then the
        // template's precomputed sum (RFC 768, RFC 1071: sums commute).
        let big_endian = 17 + udp_len as u32 + template.checksum;
        let seed = u32::from((fold(big_endian) as u16).swap_bytes());
        let sum = csum(ip.add(12), 8, seed);
        let sum = csum(udp, (UDP_HEADER + TEMPLATE_OFFSET) as u32, sum);
        let mut checksum = !fold(sum) as u16;
        if checksum == 0 {
            // RFC 768: a computed zero is sent as all ones.
            checksum = 0xffff;
        }
        write_bytes(udp, 6, &checksum.to_ne_bytes());
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
    event.submit(0);
    (xdp_action::XDP_TX, XdpStat::Renewed)
}

#[inline(always)]
fn read_xid(ctx: &XdpContext, dhcp: usize) -> u32 {
    packet::read_raw_u32(ctx, dhcp + packet::XID).unwrap_or(0)
}

#[inline(always)]
fn mac_at(ctx: &XdpContext, offset: usize) -> Option<[u8; 6]> {
    let pointer = packet::at(ctx, offset, 6)?;
    // SAFETY: `at` checked the six bytes.
    unsafe {
        Some([
            *pointer,
            *pointer.add(1),
            *pointer.add(2),
            *pointer.add(3),
            *pointer.add(4),
            *pointer.add(5),
        ])
    }
}

/// # Safety
/// `base + offset .. + bytes.len()` must be inside the checked frame.
#[inline(always)]
unsafe fn write_bytes(base: *mut u8, offset: usize, bytes: &[u8]) {
    let mut index = 0;
    while index < bytes.len() {
        // SAFETY: the caller guarantees the range. Volatile so that LLVM does not turn a run of
        // zeros into its byte-at-a-time BPF `memset` call.
        unsafe { base.add(offset + index).write_volatile(bytes[index]) };
        index += 1;
    }
}

/// One's complement sum of `len` (a multiple of 4, ≤ 512) bytes at `base` plus `seed`, in the
/// CPU's byte order (the kernel's `csum_partial`), not folded.
///
/// # Safety
/// `base .. base + len` must be inside the checked frame.
#[inline(always)]
unsafe fn csum(base: *mut u8, len: u32, seed: u32) -> u32 {
    // SAFETY: the caller guarantees the range; `from` is empty.
    let result = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, base.cast(), len, seed) };
    // A negative result is an error (bad size), impossible for the constant sizes used here;
    // the checksum would then be wrong and the client drop the reply, as for a lost packet.
    result as u32
}

/// Folds a 32-bit one's complement sum to 16 bits.
#[inline(always)]
fn fold(mut sum: u32) -> u32 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum
}
