//! Ethernet/IPv4/UDP/DHCP frames as the load generators send and read them: requests built from
//! a template with checksums filled in, and the few fields of a frame they need, read without
//! copying. Not a general DHCP codec (the server has one): only what a simulated client, a
//! simulated relay agent (RFC 3046) and the generators' reflector need.

use std::net::Ipv4Addr;

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// The parameter request list of every message: xdhcpd's fast path answers a renewal in the
/// kernel only when it matches the one the engine saw for the lease.
pub const PRL: [u8; 6] = [1, 3, 6, 15, 28, 51];
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// DHCP message types (RFC 2132 §9.6).
pub const DISCOVER: u8 = 1;
pub const OFFER: u8 = 2;
pub const REQUEST: u8 = 3;
pub const DECLINE: u8 = 4;
pub const ACK: u8 = 5;
pub const NAK: u8 = 6;
pub const RELEASE: u8 = 7;

/// Offsets in a frame built by [`build`] (Ethernet 14 + IPv4 20 + UDP 8 = 42 before BOOTP).
pub const BOOTP_OFFSET: usize = 42;
pub const XID_OFFSET: usize = BOOTP_OFFSET + 4;
pub const CIADDR_OFFSET: usize = BOOTP_OFFSET + 12;
pub const YIADDR_OFFSET: usize = BOOTP_OFFSET + 16;
pub const CHADDR_OFFSET: usize = BOOTP_OFFSET + 28;
pub const OPTIONS_OFFSET: usize = BOOTP_OFFSET + 240;

/// The RFC 1071 one's-complement sum of `data` added to `initial`, complemented. Summed 4
/// bytes at a time into 64 bits (RFC 1071 §2 (B): the sum is independent of byte grouping
/// as long as the carries are folded back in), which matters at a few hundred thousand frames
/// per second.
pub fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = u64::from(initial);
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        sum += u64::from(u32::from_be_bytes([word[0], word[1], word[2], word[3]]));
    }
    let mut tail = words.remainder().chunks(2);
    for chunk in &mut tail {
        sum += u64::from(u16::from_be_bytes([
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
        ]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One Ethernet + IPv4 + UDP + BOOTP frame.
pub struct Frame<'a> {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    /// 1 = BOOTREQUEST, 2 = BOOTREPLY.
    pub op: u8,
    pub hops: u8,
    pub xid: u32,
    pub broadcast: bool,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub chaddr: [u8; 6],
    /// Options after the magic cookie, without the end option (added here).
    pub options: &'a [u8],
}

impl Frame<'_> {
    /// A client's request from port 68 to 67 (RFC 2131 §4.1), no relay.
    pub fn request<'a>(
        mac: [u8; 6],
        dst_mac: [u8; 6],
        src_ip: Ipv4Addr,
        dst_ip: Ipv4Addr,
        xid: u32,
        options: &'a [u8],
    ) -> Frame<'a> {
        Frame {
            src_mac: mac,
            dst_mac,
            src_ip,
            dst_ip,
            src_port: 68,
            dst_port: 67,
            op: 1,
            hops: 0,
            xid,
            broadcast: false,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr: mac,
            options,
        }
    }
}

/// The frame's bytes, IPv4 and UDP checksums filled in, BOOTP padded to 300 bytes (RFC 1542
/// §3.1.1: relays and old servers expect at least that).
pub fn build(frame: &Frame) -> Vec<u8> {
    let mut dhcp = vec![0u8; 236];
    dhcp[0] = frame.op;
    dhcp[1] = 1; // Ethernet
    dhcp[2] = 6;
    dhcp[3] = frame.hops;
    dhcp[4..8].copy_from_slice(&frame.xid.to_be_bytes());
    if frame.broadcast {
        dhcp[10] = 0x80;
    }
    dhcp[12..16].copy_from_slice(&frame.ciaddr.octets());
    dhcp[16..20].copy_from_slice(&frame.yiaddr.octets());
    dhcp[24..28].copy_from_slice(&frame.giaddr.octets());
    dhcp[28..34].copy_from_slice(&frame.chaddr);
    dhcp.extend_from_slice(&MAGIC);
    dhcp.extend_from_slice(frame.options);
    dhcp.push(255);
    dhcp.resize(dhcp.len().max(300), 0);
    let udp_len = (8 + dhcp.len()) as u16;
    let mut out = Vec::with_capacity(BOOTP_OFFSET + dhcp.len());
    out.extend_from_slice(&frame.dst_mac);
    out.extend_from_slice(&frame.src_mac);
    out.extend_from_slice(&ETH_P_IP.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(20 + udp_len).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&frame.src_ip.octets());
    ip[16..20].copy_from_slice(&frame.dst_ip.octets());
    let ip_sum = checksum(&ip, 0);
    ip[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    out.extend_from_slice(&ip);
    out.extend_from_slice(&frame.src_port.to_be_bytes());
    out.extend_from_slice(&frame.dst_port.to_be_bytes());
    out.extend_from_slice(&udp_len.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&dhcp);
    fill_udp_checksum(&mut out);
    out
}

/// Recomputes the UDP checksum of a frame from [`build`] after its payload was patched
/// (RFC 768: pseudo-header of addresses, protocol and length; 0 is sent as 0xffff).
pub fn fill_udp_checksum(frame: &mut [u8]) {
    let Some(udp_len) = frame
        .get(38..40)
        .map(|len| u16::from_be_bytes([len[0], len[1]]))
    else {
        return;
    };
    let end = (34 + usize::from(udp_len)).min(frame.len());
    frame[40] = 0;
    frame[41] = 0;
    let mut pseudo = 17 + u32::from(udp_len);
    for word in frame[26..34].chunks_exact(2) {
        pseudo += u32::from(u16::from_be_bytes([word[0], word[1]]));
    }
    let sum = match checksum(&frame[34..end], pseudo) {
        0 => 0xffff,
        sum => sum,
    };
    frame[40..42].copy_from_slice(&sum.to_be_bytes());
}

/// The fields of a DHCP frame (either direction) the generators use.
#[derive(Clone, Copy, Debug)]
pub struct Dhcp {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub dst_port: u16,
    pub op: u8,
    pub xid: u32,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub chaddr: [u8; 6],
    /// Option 53, 0 when absent (BOOTP).
    pub kind: u8,
    pub server_id: Option<Ipv4Addr>,
    pub requested: Option<Ipv4Addr>,
}

fn address(bytes: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
}

/// The DHCP fields of an Ethernet frame carrying IPv4/UDP to port 67 or 68, or None for
/// anything else (ARP, other UDP, truncated or malformed frames).
pub fn parse(frame: &[u8]) -> Option<Dhcp> {
    if frame.len() < 14 + 20 || frame[12..14] != ETH_P_IP.to_be_bytes() {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[9] != 17 || ihl < 20 || ip.len() < ihl + 8 + 240 {
        return None;
    }
    let udp = &ip[ihl..];
    let dst_port = u16::from_be_bytes([udp[2], udp[3]]);
    if dst_port != 67 && dst_port != 68 {
        return None;
    }
    let dhcp = &udp[8..];
    if dhcp[236..240] != MAGIC {
        return None;
    }
    let mut out = Dhcp {
        src_mac: frame[6..12].try_into().ok()?,
        dst_mac: frame[0..6].try_into().ok()?,
        src_ip: address(&ip[12..16]),
        dst_ip: address(&ip[16..20]),
        dst_port,
        op: dhcp[0],
        xid: u32::from_be_bytes(dhcp[4..8].try_into().ok()?),
        ciaddr: address(&dhcp[12..16]),
        yiaddr: address(&dhcp[16..20]),
        giaddr: address(&dhcp[24..28]),
        chaddr: dhcp[28..34].try_into().ok()?,
        kind: 0,
        server_id: None,
        requested: None,
    };
    let mut options = &dhcp[240..];
    while let [code, rest @ ..] = options {
        match code {
            0 => options = rest,
            255 => break,
            _ => {
                let (&len, rest) = rest.split_first()?;
                let value = rest.get(..usize::from(len))?;
                match (code, value) {
                    (53, [kind]) => out.kind = *kind,
                    (54, [a, b, c, d]) => out.server_id = Some(Ipv4Addr::new(*a, *b, *c, *d)),
                    (50, [a, b, c, d]) => out.requested = Some(Ipv4Addr::new(*a, *b, *c, *d)),
                    _ => {}
                }
                options = &rest[usize::from(len)..];
            }
        }
    }
    Some(out)
}

/// An ARP request (RFC 826) for an IPv4 address: (sender MAC, sender IP, target IP).
pub fn parse_arp_request(frame: &[u8]) -> Option<([u8; 6], Ipv4Addr, Ipv4Addr)> {
    if frame.len() < 42 || frame[12..14] != ETH_P_ARP.to_be_bytes() {
        return None;
    }
    let arp = &frame[14..];
    // Ethernet/IPv4, lengths 6/4, opcode 1 (request).
    if arp[0..8] != [0, 1, 8, 0, 6, 4, 0, 1] {
        return None;
    }
    Some((
        arp[8..14].try_into().ok()?,
        address(&arp[14..18]),
        address(&arp[24..28]),
    ))
}

/// The ARP reply saying `ip` is at `mac`, to the requester.
pub fn arp_reply(
    mac: [u8; 6],
    ip: Ipv4Addr,
    requester_mac: [u8; 6],
    requester_ip: Ipv4Addr,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(60);
    out.extend_from_slice(&requester_mac);
    out.extend_from_slice(&mac);
    out.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    out.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    out.extend_from_slice(&mac);
    out.extend_from_slice(&ip.octets());
    out.extend_from_slice(&requester_mac);
    out.extend_from_slice(&requester_ip.octets());
    out.resize(60, 0);
    out
}

pub fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn parse_mac(text: &str) -> anyhow::Result<[u8; 6]> {
    use anyhow::Context as _;
    let bytes: Vec<u8> = text
        .trim()
        .split(':')
        .map(|part| u8::from_str_radix(part, 16))
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad MAC {text}"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("bad MAC {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_frames_parse_back_with_valid_checksums() {
        let options = [53, 1, DISCOVER, 50, 4, 10, 0, 0, 9];
        let mut frame = Frame::request(
            [2, 0, 0, 0, 0, 1],
            BROADCAST_MAC,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            0x1234_5678,
            &options,
        );
        frame.giaddr = Ipv4Addr::new(10, 214, 0, 1);
        let bytes = build(&frame);
        let parsed = parse(&bytes).expect("parses");
        assert_eq!(parsed.xid, 0x1234_5678);
        assert_eq!(parsed.kind, DISCOVER);
        assert_eq!(parsed.requested, Some(Ipv4Addr::new(10, 0, 0, 9)));
        assert_eq!(parsed.giaddr, Ipv4Addr::new(10, 214, 0, 1));
        assert_eq!(checksum(&bytes[14..34], 0), 0, "IPv4 header checksum");
        let mut patched = bytes.clone();
        patched[XID_OFFSET] ^= 0xff;
        fill_udp_checksum(&mut patched);
        assert_ne!(patched[40..42], bytes[40..42]);
    }

    #[test]
    fn wide_checksum_matches_the_16_bit_definition() {
        let narrow = |data: &[u8], initial: u32| {
            let mut sum = initial;
            for chunk in data.chunks(2) {
                sum += u32::from(u16::from_be_bytes([
                    chunk[0],
                    chunk.get(1).copied().unwrap_or(0),
                ]));
            }
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            !(sum as u16)
        };
        let data: Vec<u8> = (0..=255u8)
            .cycle()
            .take(1001)
            .map(|byte| byte.wrapping_mul(37))
            .collect();
        for len in [0, 1, 2, 3, 4, 5, 20, 301, 1001] {
            assert_eq!(
                checksum(&data[..len], 0x1_2345),
                narrow(&data[..len], 0x1_2345),
                "{len}"
            );
        }
    }

    #[test]
    fn truncated_frames_are_refused() {
        let bytes = build(&Frame::request(
            [2, 0, 0, 0, 0, 1],
            BROADCAST_MAC,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            1,
            &[53, 1, DISCOVER],
        ));
        for len in 0..OPTIONS_OFFSET {
            assert!(parse(&bytes[..len]).is_none());
        }
        assert!(parse_arp_request(&bytes).is_none());
    }
}
