//! An AF_PACKET socket on one interface (packet(7)) with batched I/O: `sendmmsg` out of a
//! reusable queue of frames, and a PACKET_RX_RING shared with the kernel to read from, so a
//! generator pays one system call per batch sent and none per frame received. The generators need raw frames: their simulated
//! clients have no address on the link and each has its own MAC.

use anyhow::{bail, Context as _, Result};

/// `PACKET_IGNORE_OUTGOING` (Linux 4.20, include/uapi/linux/if_packet.h): our own frames are
/// not looped back to us.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// `PACKET_QDISC_BYPASS` (Linux 3.14, packet(7)): frames go straight to the driver; a load
/// generator has no use for the traffic-control layer.
const PACKET_QDISC_BYPASS: libc::c_int = 20;
/// Largest frame we read or write (an Ethernet MTU frame without FCS).
pub const FRAME_CAPACITY: usize = 1514;

pub struct PacketSocket {
    fd: libc::c_int,
}

/// Which frames the socket receives.
#[derive(Clone, Copy)]
pub enum Protocols {
    /// IPv4 only.
    Ipv4,
    /// Every protocol (IPv4 and ARP: a generator answering ARP for its clients).
    All,
}

impl PacketSocket {
    /// Opens and binds the socket; `blocking_timeout` sets SO_RCVTIMEO for [`Self::recv`]
    /// (None: non-blocking, for an [`RxRing`] with [`Self::wait`]).
    pub fn open(
        interface: &str,
        protocols: Protocols,
        blocking_timeout: Option<std::time::Duration>,
    ) -> Result<Self> {
        let name = std::ffi::CString::new(interface)?;
        // SAFETY: plain libc calls with valid arguments; the fd is owned by the result.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            bail!("no interface {interface}");
        }
        let protocol = match protocols {
            Protocols::Ipv4 => crate::wire::ETH_P_IP,
            Protocols::All => libc::ETH_P_ALL as u16,
        }
        .to_be();
        let mut kind = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
        if blocking_timeout.is_none() {
            kind |= libc::SOCK_NONBLOCK;
        }
        // SAFETY: as above.
        let fd = unsafe { libc::socket(libc::AF_PACKET, kind, i32::from(protocol)) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("socket(AF_PACKET)");
        }
        let socket = Self { fd };
        // SAFETY: zeroed sockaddr_ll is valid; fields set below.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = protocol;
        address.sll_ifindex = index as i32;
        // SAFETY: address is a valid sockaddr_ll of the given length.
        let rc = unsafe {
            libc::bind(
                fd,
                (&raw const address).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error()).context("bind(AF_PACKET)");
        }
        // Big buffers: replies arrive in bursts while the sender runs, and a burst of sends
        // must not fail for want of socket memory.
        socket.set_int(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 64 << 20);
        socket.set_int(libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, 16 << 20);
        socket.set_int(libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1);
        socket.set_int(libc::SOL_PACKET, PACKET_QDISC_BYPASS, 1);
        if let Some(timeout) = blocking_timeout {
            let timeout = libc::timeval {
                tv_sec: timeout.as_secs() as libc::time_t,
                tv_usec: libc::suseconds_t::from(timeout.subsec_micros()),
            };
            // SAFETY: option value is a timeval of the given size.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&raw const timeout).cast(),
                    std::mem::size_of::<libc::timeval>() as u32,
                );
            }
        }
        Ok(socket)
    }

    fn set_int(&self, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
        // SAFETY: option value is a c_int of the given size. A refused option only costs
        // performance, so its result is not checked.
        unsafe {
            libc::setsockopt(
                self.fd,
                level,
                name,
                (&raw const value).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
    }

    pub fn send(&self, frame: &[u8]) -> Result<()> {
        // SAFETY: frame is a valid buffer; the socket is bound, so no address is needed.
        let rc = unsafe { libc::send(self.fd, frame.as_ptr().cast(), frame.len(), 0) };
        if rc < 0 {
            return Err(std::io::Error::last_os_error()).context("send");
        }
        Ok(())
    }

    /// Sends `frames` with `sendmmsg`, one call per 1024 frames (UIO_MAXIOV); returns how many
    /// left. A full transmit queue (ENOBUFS, EAGAIN) ends the attempt early.
    pub fn send_batch<F: AsRef<[u8]>>(&self, frames: &[F]) -> usize {
        let mut total = 0;
        for chunk in frames.chunks(1024) {
            let mut iovecs: Vec<libc::iovec> = chunk
                .iter()
                .map(|frame| libc::iovec {
                    iov_base: frame.as_ref().as_ptr() as *mut libc::c_void,
                    iov_len: frame.as_ref().len(),
                })
                .collect();
            let mut headers: Vec<libc::mmsghdr> = iovecs
                .iter_mut()
                .map(|iovec| {
                    // SAFETY: a zeroed msghdr is valid (no name, no control).
                    let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    header.msg_hdr.msg_iov = iovec;
                    header.msg_hdr.msg_iovlen = 1;
                    header
                })
                .collect();
            let mut offset = 0;
            while offset < headers.len() {
                // SAFETY: headers point at iovecs that point at live frames.
                let sent = unsafe {
                    libc::sendmmsg(
                        self.fd,
                        headers[offset..].as_mut_ptr(),
                        (headers.len() - offset) as u32,
                        0,
                    )
                };
                match usize::try_from(sent) {
                    Ok(0) | Err(_) => return total + offset,
                    Ok(sent) => offset += sent,
                }
            }
            total += offset;
        }
        total
    }

    /// One frame, or None after the receive timeout (or nothing pending, non-blocking).
    pub fn recv(&self, buffer: &mut [u8]) -> Option<usize> {
        // SAFETY: buffer is valid for its length.
        let rc = unsafe { libc::recv(self.fd, buffer.as_mut_ptr().cast(), buffer.len(), 0) };
        usize::try_from(rc).ok()
    }

    /// Waits up to `timeout` for a frame to read: ppoll(2), whose nanosecond timeout matters
    /// when thousands of retransmission timers fall within the same millisecond (poll(2)'s
    /// millisecond timeout would round them to 0 and spin).
    pub fn wait(&self, timeout: std::time::Duration) {
        let mut descriptor = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos()),
        };
        // SAFETY: one valid pollfd and a valid timespec; no signal mask.
        unsafe { libc::ppoll(&raw mut descriptor, 1, &raw const timeout, std::ptr::null()) };
    }
}

impl Drop for PacketSocket {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe { libc::close(self.fd) };
    }
}

/// A PACKET_RX_RING (packet(7), TPACKET_V2): the kernel writes received frames into memory
/// shared with us, so reading a frame is a look at a status word, not a system call and a copy.
pub struct RxRing {
    map: *mut u8,
    map_len: usize,
    frame_size: usize,
    frame_count: usize,
    next: usize,
}

/// 2 KiB a slot (a full Ethernet frame plus the TPACKET_V2 header), 32 slots a 64 KiB block,
/// 512 blocks: 16,384 frames (32 MiB) before the kernel has to drop.
const RING_FRAME_SIZE: usize = 2048;
const RING_BLOCK_SIZE: usize = 1 << 16;
const RING_BLOCKS: usize = 512;

impl PacketSocket {
    /// Switches the socket's receive path to a PACKET_RX_RING, read with [`RxRing::receive`]
    /// ([`Self::recv`] no longer sees frames).
    pub fn rx_ring(&self) -> Result<RxRing> {
        // TPACKET_V2 in enum tpacket_versions (include/uapi/linux/if_packet.h).
        let version: libc::c_int = 1;
        // SAFETY: option values of the documented types and sizes.
        let rc = unsafe {
            libc::setsockopt(
                self.fd,
                libc::SOL_PACKET,
                libc::PACKET_VERSION,
                (&raw const version).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error()).context("PACKET_VERSION");
        }
        let request = libc::tpacket_req {
            tp_block_size: RING_BLOCK_SIZE as u32,
            tp_block_nr: RING_BLOCKS as u32,
            tp_frame_size: RING_FRAME_SIZE as u32,
            tp_frame_nr: (RING_BLOCKS * RING_BLOCK_SIZE / RING_FRAME_SIZE) as u32,
        };
        // SAFETY: as above.
        let rc = unsafe {
            libc::setsockopt(
                self.fd,
                libc::SOL_PACKET,
                libc::PACKET_RX_RING,
                (&raw const request).cast(),
                std::mem::size_of::<libc::tpacket_req>() as u32,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error()).context("PACKET_RX_RING");
        }
        let map_len = RING_BLOCKS * RING_BLOCK_SIZE;
        // SAFETY: mapping the ring the kernel just allocated for this socket.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.fd,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error()).context("mmap(PACKET_RX_RING)");
        }
        Ok(RxRing {
            map: map.cast(),
            map_len,
            frame_size: RING_FRAME_SIZE,
            frame_count: map_len / RING_FRAME_SIZE,
            next: 0,
        })
    }
}

impl RxRing {
    /// Hands up to `max` received frames to `each`, in order, and gives their slots back to
    /// the kernel; returns how many.
    pub fn receive(&mut self, max: usize, mut each: impl FnMut(&[u8])) -> usize {
        use std::sync::atomic::{fence, Ordering};
        let mut count = 0;
        while count < max {
            // SAFETY: `next` < frame_count, so the slot lies inside the mapping; the header
            // is the kernel's tpacket2_hdr at the slot's start.
            let header =
                unsafe { self.map.add(self.next * self.frame_size) }.cast::<libc::tpacket2_hdr>();
            // SAFETY: as above; the status word is shared with the kernel, hence volatile.
            let status = unsafe { std::ptr::read_volatile(&raw const (*header).tp_status) };
            if status & libc::TP_STATUS_USER == 0 {
                break;
            }
            // The frame's bytes were written before its status: read them after.
            fence(Ordering::Acquire);
            // SAFETY: the kernel owns nothing in the slot until we hand it back below.
            let (offset, len) =
                unsafe { (usize::from((*header).tp_mac), (*header).tp_snaplen as usize) };
            if offset + len <= self.frame_size {
                // SAFETY: inside the slot, checked just above.
                let frame =
                    unsafe { std::slice::from_raw_parts(header.cast::<u8>().add(offset), len) };
                each(frame);
            }
            fence(Ordering::Release);
            // SAFETY: giving the slot back: status word written last.
            unsafe {
                std::ptr::write_volatile(&raw mut (*header).tp_status, libc::TP_STATUS_KERNEL)
            };
            self.next = (self.next + 1) % self.frame_count;
            count += 1;
        }
        count
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping, once.
        unsafe { libc::munmap(self.map.cast(), self.map_len) };
    }
}

/// Frames queued for one `sendmmsg`; the slots are reused, so queueing does not allocate once
/// warm.
pub struct SendQueue {
    slots: Vec<Vec<u8>>,
    len: usize,
    /// Frames the kernel refused (transmit queue full) over the queue's life.
    pub refused: u64,
    pub sent: u64,
}

impl SendQueue {
    pub fn new() -> Self {
        Self {
            slots: Vec::new(),
            len: 0,
            refused: 0,
            sent: 0,
        }
    }

    /// A cleared slot to write the next frame into.
    pub fn next_slot(&mut self) -> &mut Vec<u8> {
        if self.len == self.slots.len() {
            self.slots.push(Vec::with_capacity(FRAME_CAPACITY));
        }
        let slot = &mut self.slots[self.len];
        self.len += 1;
        slot.clear();
        slot
    }

    /// Takes back the slot [`SendQueue::next_slot`] handed out last (nothing was written to
    /// send).
    pub fn unqueue_last(&mut self) {
        self.len = self.len.saturating_sub(1);
    }

    /// Hands every queued frame to `each` instead of a socket, as [`SendQueue::flush`]
    /// would send them; returns how many.
    pub fn drain_each(&mut self, mut each: impl FnMut(&[u8])) -> usize {
        let count = self.len;
        for slot in &self.slots[..count] {
            each(slot);
        }
        self.sent += count as u64;
        self.len = 0;
        count
    }

    pub fn push(&mut self, frame: &[u8]) {
        self.next_slot().extend_from_slice(frame);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sends every queued frame; returns how many the kernel took.
    pub fn flush(&mut self, socket: &PacketSocket) -> usize {
        if self.len == 0 {
            return 0;
        }
        let sent = socket.send_batch(&self.slots[..self.len]);
        self.refused += (self.len - sent) as u64;
        self.sent += sent as u64;
        self.len = 0;
        sent
    }
}

impl Default for SendQueue {
    fn default() -> Self {
        Self::new()
    }
}
