//! Seeing DHCP on the wire without taking part: one AF_PACKET socket per interface
//! (packet(7)), bound to `ETH_P_ALL` so that it sees the frames the host sends (ISC's replies,
//! when it runs on this host) as well as those it receives (the clients' and relays'
//! messages, or both directions on a mirror port, hence promiscuous). A classic BPF filter keeps IPv4 UDP to or
//! from the server and client ports, unfragmented. The socket is never written to: packet(7)
//! sockets send only when asked, and shadow mode never asks.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

/// One IPv4/UDP datagram of a captured Ethernet frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub ethernet_destination: [u8; 6],
    pub ip_source: Ipv4Addr,
    pub ip_destination: Ipv4Addr,
    pub udp_source: u16,
    pub udp_destination: u16,
    pub payload: &'a [u8],
}

const ETHERNET_HEADER: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const IPPROTO_UDP: u8 = 17;

/// Reads an Ethernet II frame carrying an unfragmented IPv4 UDP datagram; `None` for anything
/// else or anything cut short (the filter should have left only these, but a frame queued
/// before the filter was attached may be anything).
pub fn parse_frame(frame: &[u8]) -> Option<Frame<'_>> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if ethertype != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = frame.get(ETHERNET_HEADER..)?;
    let version_ihl = *ip.first()?;
    let header_length = usize::from(version_ihl & 0x0f) * 4;
    if version_ihl >> 4 != 4 || header_length < 20 || *ip.get(9)? != IPPROTO_UDP {
        return None;
    }
    // More fragments, or a fragment offset: not a whole datagram.
    if u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x3fff != 0 {
        return None;
    }
    let total_length = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let ip = ip.get(..total_length)?;
    let udp = ip.get(header_length..)?;
    let udp_length = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    if udp_length < 8 {
        return None;
    }
    let payload = udp.get(8..udp_length)?;
    let address = |at: usize| Ipv4Addr::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3]);
    let mut ethernet_destination = [0u8; 6];
    ethernet_destination.copy_from_slice(&frame[..6]);
    Some(Frame {
        ethernet_destination,
        ip_source: address(12),
        ip_destination: address(16),
        udp_source: u16::from_be_bytes([udp[0], udp[1]]),
        udp_destination: u16::from_be_bytes([udp[2], udp[3]]),
        payload,
    })
}

/// The classic BPF program (linux/filter.h) that keeps IPv4 UDP frames, unfragmented, whose
/// source or destination port is one of `ports` (the server's and the clients').
pub fn dhcp_filter(ports: [u16; 2]) -> Vec<libc::sock_filter> {
    const LD_H_ABS: u16 = 0x28;
    const LD_B_ABS: u16 = 0x30;
    const LD_H_IND: u16 = 0x48;
    const LDX_B_MSH: u16 = 0xb1;
    const JEQ_K: u16 = 0x15;
    const JSET_K: u16 = 0x45;
    const RET_K: u16 = 0x06;
    let op = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let [server, client] = ports.map(u32::from);
    // Jumps are relative to the next instruction: 13 drops, 14 accepts.
    vec![
        op(LD_H_ABS, 0, 0, 12),                      // 0: ethertype
        op(JEQ_K, 0, 11, u32::from(ETHERTYPE_IPV4)), // 1
        op(LD_B_ABS, 0, 0, 23),                      // 2: IP protocol
        op(JEQ_K, 0, 9, u32::from(IPPROTO_UDP)),     // 3
        op(LD_H_ABS, 0, 0, 20),                      // 4: flags and fragment offset
        op(JSET_K, 7, 0, 0x3fff),                    // 5
        op(LDX_B_MSH, 0, 0, 14),                     // 6: X = IP header length
        op(LD_H_IND, 0, 0, 14),                      // 7: UDP source port
        op(JEQ_K, 5, 0, server),                     // 8
        op(JEQ_K, 4, 0, client),                     // 9
        op(LD_H_IND, 0, 0, 16),                      // 10: UDP destination port
        op(JEQ_K, 2, 0, server),                     // 11
        op(JEQ_K, 1, 0, client),                     // 12
        op(RET_K, 0, 0, 0),                          // 13: drop
        op(RET_K, 0, 0, 0x0004_0000),                // 14: accept the whole frame
    ]
}

/// A receive-only packet socket on one interface.
pub struct PacketCapture {
    fd: OwnedFd,
}

impl PacketCapture {
    /// Opens the socket on interface `index`, with the filter for `ports`.
    pub fn open(index: u32, ports: [u16; 2]) -> std::io::Result<Self> {
        let protocol = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain syscall; the descriptor is owned below.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                i32::from(protocol),
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor we just opened and nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let filter = dhcp_filter(ports);
        let program = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr().cast_mut(),
        };
        // SAFETY: `program` points at `filter`, alive for the call; the kernel copies it.
        let attached = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                std::ptr::from_ref(&program).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if attached < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: an all-zero sockaddr_ll is valid; the fields that matter are set below.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = protocol;
        address.sll_ifindex = index as i32;
        // SAFETY: `address` is a valid sockaddr_ll of the given length.
        let bound = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::from_ref(&address).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if bound < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // On a mirror port the frames between the clients and ISC are addressed to other
        // hosts' MACs: take them in (packet(7) PACKET_MR_PROMISC, undone when the socket
        // closes). Receiving only; on ISC's own host it changes nothing that is seen.
        // SAFETY: an all-zero packet_mreq is valid; the fields that matter are set below.
        let mut membership: libc::packet_mreq = unsafe { std::mem::zeroed() };
        membership.mr_ifindex = index as i32;
        membership.mr_type = libc::PACKET_MR_PROMISC as u16;
        // SAFETY: `membership` is a valid packet_mreq of the given length.
        let promiscuous = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                std::ptr::from_ref(&membership).cast(),
                std::mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
            )
        };
        if promiscuous < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Room for bursts (a relay's reboot, a power cut's return): the kernel counts what did
        // not fit ([`PacketCapture::dropped`]). Past `net.core.rmem_max` only as root
        // (SO_RCVBUFFORCE); failing that, the default buffer stays.
        let size: libc::c_int = RECEIVE_BUFFER;
        for option in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
            // SAFETY: `size` is a valid c_int of the given length.
            let set = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    option,
                    std::ptr::from_ref(&size).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if set == 0 {
                break;
            }
        }
        Ok(Self { fd })
    }

    /// One frame into `buffer`, `None` when none is waiting (the socket does not block).
    pub fn receive(&self, buffer: &mut [u8]) -> std::io::Result<Option<usize>> {
        // SAFETY: `buffer` is valid for writes of its length.
        let read = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                0,
            )
        };
        if read < 0 {
            let error = std::io::Error::last_os_error();
            return match error.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => Ok(None),
                _ => Err(error),
            };
        }
        Ok(Some(read as usize))
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Frames the kernel dropped for want of room in the socket's buffer since the last call
    /// (packet(7) PACKET_STATISTICS, which resets its counters when read).
    pub fn dropped(&self) -> u64 {
        // SAFETY: an all-zero tpacket_stats is valid.
        let mut stats: libc::tpacket_stats = unsafe { std::mem::zeroed() };
        let mut length = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `stats` and `length` are valid for writes of the given sizes.
        let read = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                std::ptr::from_mut(&mut stats).cast(),
                &mut length,
            )
        };
        if read < 0 {
            return 0;
        }
        u64::from(stats.tp_drops)
    }
}

/// linux/if_packet.h (not in the libc crate).
const PACKET_STATISTICS: libc::c_int = 6;

/// The capture socket's receive buffer: 8 MiB, some 20,000 DHCP frames.
const RECEIVE_BUFFER: libc::c_int = 8 << 20;

/// Waits at most `timeout_ms` for one of the sockets `fds` to have a frame.
pub fn wait_readable(fds: &[i32], timeout_ms: i32) {
    let mut fds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `fds` is a valid array of its length for the call.
    unsafe {
        libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ports: (u16, u16), flags: u16, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0xff; 6];
        bytes.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let total = (20 + 8 + payload.len()) as u16;
        bytes.extend_from_slice(&[
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 255, 255, 255, 255,
        ]);
        bytes[16..18].copy_from_slice(&total.to_be_bytes());
        bytes[20..22].copy_from_slice(&flags.to_be_bytes());
        bytes.extend_from_slice(&ports.0.to_be_bytes());
        bytes.extend_from_slice(&ports.1.to_be_bytes());
        bytes.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(payload);
        // Ethernet padding after the datagram.
        bytes.extend_from_slice(&[0; 6]);
        bytes
    }

    #[test]
    fn reads_an_ipv4_udp_frame() {
        let bytes = frame((67, 68), 0x4000, b"bootp");
        let parsed = parse_frame(&bytes).unwrap();
        assert_eq!(parsed.ethernet_destination, [0xff; 6]);
        assert_eq!(parsed.ip_source, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(parsed.ip_destination, Ipv4Addr::BROADCAST);
        assert_eq!((parsed.udp_source, parsed.udp_destination), (67, 68));
        assert_eq!(parsed.payload, b"bootp");
    }

    #[test]
    fn leaves_out_fragments_and_cut_frames() {
        assert!(parse_frame(&frame((67, 68), 0x2000, b"x")).is_none());
        let bytes = frame((67, 68), 0, b"bootp");
        for length in 0..bytes.len() - 6 {
            assert!(parse_frame(&bytes[..length]).is_none(), "{length}");
        }
    }

    #[test]
    fn the_filter_jumps_land_on_its_two_returns() {
        let program = dhcp_filter([67, 68]);
        for (index, instruction) in program.iter().enumerate() {
            if instruction.code & 0x07 == 0x05 {
                for offset in [instruction.jt, instruction.jf] {
                    let target = index + 1 + usize::from(offset);
                    assert!(target < program.len(), "instruction {index}");
                    if offset != 0 {
                        assert!(target == 13 || target == 14, "instruction {index}");
                    }
                }
            }
        }
        assert_eq!(program[13].code, 0x06);
        assert_eq!(program[14].k, 0x0004_0000);
    }
}
