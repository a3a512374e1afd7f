//! UDP sockets for DHCP: one per interface, bound to `0.0.0.0:67` with `SO_BINDTODEVICE` (so
//! broadcasts go out of, and requests are attributed to, the right interface) and read by several
//! workers at once. `SO_REUSEPORT` is set so that a restarted server can bind while the old
//! socket drains, not to spread load: Linux copies each broadcast to every socket of a reuseport
//! group. Receive and send in batches
//! with `recvmmsg`/`sendmmsg`: one syscall for many packets. A datagram may name its source
//! address (`IP_PKTINFO`, ip(7)), which is how `local-address` reaches the wire
//! (`net::local_address`).

use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// Largest datagram we accept; DHCP messages are at most a few KB (RFC 2131 §2 allows up to the
/// interface MTU via option 57), anything longer is truncated and fails to decode.
pub const MAX_DATAGRAM: usize = 4096;

/// How many datagrams one `recvmmsg`/`sendmmsg` moves at most.
pub const BATCH: usize = 32;

/// Send buffer size asked for, in bytes.
const SEND_BUFFER: usize = 8 << 20;
/// Receive buffer size asked for, in bytes: a reconnect storm (a CMTS or BNG reboot) arrives
/// at once, and every DISCOVER the kernel drops costs its client RFC 2131's 4 s retransmission
/// (BENCHMARKS.md "Receive buffer": 8 MiB dropped 2,055 of a 10,000-client avalanche on this
/// machine; 32 MiB still dropped 46,209 of a 100,000-client one, 128 MiB none). The memory is
/// only used while requests wait: a DISCOVER costs about 1 KiB of it (the kernel's buffer
/// accounting), so 128 MiB holds a storm of over 100,000 requests per interface.
const RECEIVE_BUFFER: usize = 128 << 20;

/// `SO_RCVBUFFORCE` / `SO_SNDBUFFORCE` (needs CAP_NET_ADMIN; without it the capped size stays).
fn force_buffer(socket: &Socket, option: libc::c_int, size: usize) {
    let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    // SAFETY: a valid socket fd and a pointer to an int of the size given.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// A bound DHCP server socket.
#[derive(Debug)]
pub struct DhcpSocket {
    socket: Socket,
    /// The interface it is bound to, `None` for an unbound wildcard socket.
    pub interface: Option<String>,
}

impl DhcpSocket {
    /// Opens a socket on `0.0.0.0:port`, bound to `interface` when given. Reads block at most
    /// `read_timeout` so that the worker can notice shutdown.
    pub fn bind(port: u16, interface: Option<&str>, read_timeout: Duration) -> io::Result<Self> {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_broadcast(true)?;
        if let Some(interface) = interface {
            socket.bind_device(Some(interface.as_bytes()))?;
        }
        socket.set_read_timeout(Some(read_timeout))?;
        // Absorb bursts (a flood of DISCOVERs after a power cut, or workers briefly starved of
        // CPU). SO_RCVBUF is capped by net.core.rmem_max (208 KiB by default, ~150 DHCP
        // datagrams); with CAP_NET_ADMIN the *FORCE variants go past that cap.
        let _ = socket.set_recv_buffer_size(RECEIVE_BUFFER);
        let _ = socket.set_send_buffer_size(SEND_BUFFER);
        force_buffer(&socket, libc::SO_RCVBUFFORCE, RECEIVE_BUFFER);
        force_buffer(&socket, libc::SO_SNDBUFFORCE, SEND_BUFFER);
        socket.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port).into())?;
        Ok(Self {
            socket,
            interface: interface.map(String::from),
        })
    }

    pub fn raw_fd(&self) -> i32 {
        self.socket.as_raw_fd()
    }

    /// Receives up to [`BATCH`] datagrams into `batch`, blocking until at least one arrives or
    /// the read timeout passes (then returns 0).
    pub fn receive_batch(&self, batch: &mut ReceiveBatch) -> io::Result<usize> {
        batch.prepare();
        // SAFETY: the headers point into `batch`'s buffers, which outlive the call.
        let received = unsafe {
            libc::recvmmsg(
                self.raw_fd(),
                batch.headers.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            let error = io::Error::last_os_error();
            return match error.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(error),
            };
        }
        batch.count = received as usize;
        Ok(batch.count)
    }

    /// Sends every datagram of `batch`; returns how many the kernel took.
    pub fn send_batch(&self, batch: &mut SendBatch) -> io::Result<usize> {
        let mut sent_total = 0;
        while sent_total < batch.len() {
            let headers = batch.headers(sent_total);
            // SAFETY: headers point into `batch`'s buffers and addresses, alive for the call.
            let sent = unsafe {
                libc::sendmmsg(self.raw_fd(), headers.as_mut_ptr(), headers.len() as u32, 0)
            };
            if sent < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // Skip the datagram that failed (e.g. EHOSTUNREACH) and go on with the rest.
                sent_total += 1;
                batch.failed += 1;
                continue;
            }
            sent_total += sent as usize;
        }
        let sent = sent_total - batch.failed;
        batch.clear();
        Ok(sent)
    }

    /// Sends one datagram.
    pub fn send_to(&self, payload: &[u8], target: impl Into<Target>) -> io::Result<usize> {
        let mut batch = SendBatch::default();
        batch.push(payload.to_vec(), target);
        let sent = self.send_batch(&mut batch)?;
        if sent == 0 {
            return Err(io::Error::other("the datagram was not sent"));
        }
        Ok(payload.len())
    }
}

/// Where a datagram goes, and the local address it leaves from when that is not the kernel's
/// choice (the route's preferred source).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub destination: SocketAddrV4,
    /// Set with `IP_PKTINFO`'s `ipi_spec_dst` (ip(7)): the kernel sends from this address,
    /// which must be one of the host's (else the send fails with EINVAL).
    pub source: Option<Ipv4Addr>,
}

impl From<SocketAddrV4> for Target {
    fn from(destination: SocketAddrV4) -> Self {
        Self {
            destination,
            source: None,
        }
    }
}

/// Room for one `IP_PKTINFO` control message, aligned for `cmsghdr`.
type PktinfoControl = [u64; 4];

/// Buffers for one `recvmmsg`.
pub struct ReceiveBatch {
    buffers: Box<[[u8; MAX_DATAGRAM]; BATCH]>,
    addresses: Box<[libc::sockaddr_in; BATCH]>,
    iovecs: Box<[libc::iovec; BATCH]>,
    headers: Box<[libc::mmsghdr; BATCH]>,
    count: usize,
}

// SAFETY: the raw pointers inside point only into the batch's own boxed buffers.
unsafe impl Send for ReceiveBatch {}

impl Default for ReceiveBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl ReceiveBatch {
    pub fn new() -> Self {
        // SAFETY: all-zero is a valid value for these plain C structs and byte arrays.
        unsafe {
            Self {
                buffers: Box::new([[0; MAX_DATAGRAM]; BATCH]),
                addresses: Box::new(MaybeUninit::zeroed().assume_init()),
                iovecs: Box::new(MaybeUninit::zeroed().assume_init()),
                headers: Box::new(MaybeUninit::zeroed().assume_init()),
                count: 0,
            }
        }
    }

    fn prepare(&mut self) {
        for index in 0..BATCH {
            self.iovecs[index] = libc::iovec {
                iov_base: self.buffers[index].as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            };
            let header = &mut self.headers[index];
            header.msg_hdr.msg_name = (&mut self.addresses[index] as *mut libc::sockaddr_in).cast();
            header.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            header.msg_hdr.msg_iov = &mut self.iovecs[index];
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = std::ptr::null_mut();
            header.msg_hdr.msg_controllen = 0;
            header.msg_hdr.msg_flags = 0;
            header.msg_len = 0;
        }
        self.count = 0;
    }

    /// The received datagrams with their sources.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], SocketAddrV4)> + '_ {
        (0..self.count).map(|index| {
            let length = (self.headers[index].msg_len as usize).min(MAX_DATAGRAM);
            let address = &self.addresses[index];
            let source = SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(address.sin_addr.s_addr)),
                u16::from_be(address.sin_port),
            );
            (&self.buffers[index][..length], source)
        })
    }
}

/// Datagrams waiting for one `sendmmsg`.
#[derive(Default)]
pub struct SendBatch {
    payloads: Vec<Vec<u8>>,
    destinations: Vec<libc::sockaddr_in>,
    /// The `IP_PKTINFO` control message of each datagram that names its source.
    controls: Vec<Option<PktinfoControl>>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    failed: usize,
}

// SAFETY: the raw pointers are rebuilt from owned vectors right before each send.
unsafe impl Send for SendBatch {}

impl SendBatch {
    pub fn push(&mut self, payload: Vec<u8>, target: impl Into<Target>) {
        let Target {
            destination,
            source,
        } = target.into();
        self.payloads.push(payload);
        self.controls.push(source.map(pktinfo_control));
        self.destinations.push(libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: destination.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*destination.ip()).to_be(),
            },
            sin_zero: [0; 8],
        });
    }

    pub fn len(&self) -> usize {
        self.payloads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }

    fn headers(&mut self, from: usize) -> &mut [libc::mmsghdr] {
        self.iovecs.clear();
        self.headers.clear();
        for payload in &mut self.payloads[from..] {
            self.iovecs.push(libc::iovec {
                iov_base: payload.as_mut_ptr().cast(),
                iov_len: payload.len(),
            });
        }
        for (offset, (destination, control)) in self.destinations[from..]
            .iter_mut()
            .zip(&mut self.controls[from..])
            .enumerate()
        {
            // SAFETY: zeroed msghdr is valid; the fields we need are set below.
            let mut header: libc::mmsghdr = unsafe { MaybeUninit::zeroed().assume_init() };
            header.msg_hdr.msg_name = (destination as *mut libc::sockaddr_in).cast();
            header.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            header.msg_hdr.msg_iov = &mut self.iovecs[offset];
            header.msg_hdr.msg_iovlen = 1;
            if let Some(control) = control {
                header.msg_hdr.msg_control = control.as_mut_ptr().cast();
                header.msg_hdr.msg_controllen = pktinfo_space();
            }
            self.headers.push(header);
        }
        let end = self.headers.len().min(BATCH * 4);
        &mut self.headers[..end]
    }

    fn clear(&mut self) {
        self.payloads.clear();
        self.destinations.clear();
        self.controls.clear();
        self.iovecs.clear();
        self.headers.clear();
        self.failed = 0;
    }
}

/// `CMSG_SPACE(sizeof(struct in_pktinfo))`.
fn pktinfo_space() -> usize {
    // SAFETY: a pure size computation.
    unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::in_pktinfo>() as u32) as usize }
}

/// An `IP_PKTINFO` control message whose `ipi_spec_dst` is `source` (ip(7): "the local address
/// of the packet"; `ipi_ifindex` 0 leaves the interface to the socket's binding and the route).
fn pktinfo_control(source: Ipv4Addr) -> PktinfoControl {
    let mut control: PktinfoControl = [0; 4];
    assert!(pktinfo_space() <= std::mem::size_of::<PktinfoControl>());
    // SAFETY: a zeroed msghdr pointing at `control`, which is large enough (asserted) and
    // aligned for cmsghdr; CMSG_FIRSTHDR is then non-null and CMSG_DATA inside `control`.
    unsafe {
        let mut message: libc::msghdr = MaybeUninit::zeroed().assume_init();
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = pktinfo_space();
        let header = libc::CMSG_FIRSTHDR(&message);
        (*header).cmsg_level = libc::IPPROTO_IP;
        (*header).cmsg_type = libc::IP_PKTINFO;
        (*header).cmsg_len =
            libc::CMSG_LEN(std::mem::size_of::<libc::in_pktinfo>() as u32) as usize;
        let info = libc::in_pktinfo {
            ipi_ifindex: 0,
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from(source).to_be(),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        std::ptr::write_unaligned(libc::CMSG_DATA(header).cast::<libc::in_pktinfo>(), info);
    }
    control
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trip_on_loopback() {
        let server = DhcpSocket::bind(0, None, Duration::from_millis(200)).unwrap();
        let port = server
            .socket
            .local_addr()
            .unwrap()
            .as_socket_ipv4()
            .unwrap()
            .port();
        let client = DhcpSocket::bind(0, None, Duration::from_millis(200)).unwrap();
        let mut outgoing = SendBatch::default();
        for index in 0..5u8 {
            outgoing.push(
                vec![index; 10],
                SocketAddrV4::new(Ipv4Addr::LOCALHOST, port),
            );
        }
        assert_eq!(client.send_batch(&mut outgoing).unwrap(), 5);
        let mut incoming = ReceiveBatch::new();
        let mut seen = Vec::new();
        while seen.len() < 5 {
            let count = server.receive_batch(&mut incoming).unwrap();
            assert!(count > 0, "timed out");
            seen.extend(incoming.iter().map(|(payload, _)| payload[0]));
        }
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    }

    /// `IP_PKTINFO` sets the source address: from 127.0.0.2 (local: all of 127/8 is on `lo`),
    /// mixed in one batch with a datagram that leaves it to the kernel (127.0.0.1).
    #[test]
    fn a_datagram_leaves_from_the_source_it_names() {
        let server = DhcpSocket::bind(0, None, Duration::from_millis(200)).unwrap();
        let port = server
            .socket
            .local_addr()
            .unwrap()
            .as_socket_ipv4()
            .unwrap()
            .port();
        let client = DhcpSocket::bind(0, None, Duration::from_millis(200)).unwrap();
        let destination = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        let mut outgoing = SendBatch::default();
        outgoing.push(
            vec![1],
            Target {
                destination,
                source: Some(Ipv4Addr::new(127, 0, 0, 2)),
            },
        );
        outgoing.push(vec![2], destination);
        assert_eq!(client.send_batch(&mut outgoing).unwrap(), 2);
        let mut incoming = ReceiveBatch::new();
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let count = server.receive_batch(&mut incoming).unwrap();
            assert!(count > 0, "timed out");
            seen.extend(
                incoming
                    .iter()
                    .map(|(payload, source)| (payload[0], *source.ip())),
            );
        }
        seen.sort();
        assert_eq!(
            seen,
            vec![(1, Ipv4Addr::new(127, 0, 0, 2)), (2, Ipv4Addr::LOCALHOST)]
        );
        // A source that is not one of the host's is refused by the kernel, not sent.
        let mut outgoing = SendBatch::default();
        outgoing.push(
            vec![3],
            Target {
                destination,
                source: Some(Ipv4Addr::new(192, 0, 2, 1)),
            },
        );
        assert_eq!(client.send_batch(&mut outgoing).unwrap(), 0);
    }
}
