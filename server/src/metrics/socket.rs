//! The kernel's own counters of our DHCP sockets: datagrams it dropped before we could read them
//! (receive buffer full, checksum, filter — Kea users found such losses only in `sk_drops`) and
//! the bytes waiting in the receive queue. Read with `getsockopt(SO_MEMINFO)`, the per-socket
//! form of the `drops` column of /proc/net/udp.

use std::os::fd::RawFd;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::collectors::{counters, gauges};
use super::Metrics;

/// `SK_MEMINFO_*` indices of include/uapi/linux/sock_diag.h.
const SK_MEMINFO_RMEM_ALLOC: usize = 0;
const SK_MEMINFO_RCVBUF: usize = 1;
const SK_MEMINFO_DROPS: usize = 8;
/// `SK_MEMINFO_VARS` (the array has grown over kernel versions; 9 entries since Linux 4.6).
const SK_MEMINFO_VARS: usize = 9;

/// What the kernel reports about one socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketCounters {
    /// Datagrams the kernel dropped for this socket (`sk_drops`).
    pub drops: u64,
    /// Bytes queued for reading.
    pub receive_queue_bytes: u64,
    /// The receive buffer limit (SO_RCVBUF as the kernel applies it).
    pub receive_buffer_bytes: u64,
}

/// The kernel counters of the socket `fd`.
pub fn socket_counters(fd: RawFd) -> std::io::Result<SocketCounters> {
    let mut values = [0u32; SK_MEMINFO_VARS];
    let mut length = std::mem::size_of_val(&values) as libc::socklen_t;
    // SAFETY: the kernel writes at most `length` bytes into `values` and updates `length`.
    let result = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            values.as_mut_ptr().cast(),
            &mut length,
        )
    };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let filled = length as usize / std::mem::size_of::<u32>();
    let get = |index: usize| {
        if index < filled {
            u64::from(values[index])
        } else {
            0
        }
    };
    Ok(SocketCounters {
        drops: get(SK_MEMINFO_DROPS),
        receive_queue_bytes: get(SK_MEMINFO_RMEM_ALLOC),
        receive_buffer_bytes: get(SK_MEMINFO_RCVBUF),
    })
}

/// The `drops` column of /proc/net/udp for the socket with inode `inode` (a cross-check of
/// [`socket_counters`], and what `ss`-less hosts can look at).
pub fn proc_net_udp_drops(table: &str, inode: u64) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let columns: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
        let line_inode: u64 = columns.get(9)?.parse().ok()?;
        (line_inode == inode).then(|| columns.get(12)?.parse().ok())?
    })
}

/// The inode of the socket `fd` (what /proc/net/udp lists).
pub fn socket_inode(fd: RawFd) -> std::io::Result<u64> {
    // SAFETY: fstat writes one `stat` into the zeroed buffer.
    let mut status: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `status` is a valid `stat` for the call.
    if unsafe { libc::fstat(fd, &mut status) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(status.st_ino)
}

#[derive(Debug)]
pub(super) struct SocketCollector {
    pub(super) metrics: Arc<Metrics>,
}

impl Collector for SocketCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sockets: Vec<(String, SocketCounters)> = self
            .metrics
            .sockets()
            .iter()
            .filter_map(|(interface, socket)| {
                Some((interface.clone(), socket_counters(socket.raw_fd()).ok()?))
            })
            .collect();
        let label = |interface: &String| vec![("interface", interface.clone())];
        counters(
            &mut encoder,
            "socket_drops",
            "datagrams the kernel dropped for the DHCP socket before it was read (sk_drops)",
            sockets
                .iter()
                .map(|(interface, counters)| (label(interface), counters.drops)),
        )?;
        gauges(
            &mut encoder,
            "socket_receive_queue_bytes",
            "bytes waiting in the DHCP socket's receive queue",
            sockets.iter().map(|(interface, counters)| {
                (
                    label(interface),
                    i64::try_from(counters.receive_queue_bytes).unwrap_or(i64::MAX),
                )
            }),
        )?;
        gauges(
            &mut encoder,
            "socket_receive_buffer_bytes",
            "the DHCP socket's receive buffer limit",
            sockets.iter().map(|(interface, counters)| {
                (
                    label(interface),
                    i64::try_from(counters.receive_buffer_bytes).unwrap_or(i64::MAX),
                )
            }),
        )
    }
}
