//! Types shared by the XDP program (`server-ebpf`) and the daemon (`server`): map keys and
//! values, statistics indices. `#[repr(C)]` with explicit padding; a size assertion each, since
//! the kernel and userspace must agree byte for byte (STYLE.md §6).
#![no_std]

pub mod loadbalance;

/// Indices into the per-CPU statistics array of the XDP program.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpStat {
    /// Every frame the program saw.
    Seen = 0,
    /// Frames handed to the kernel stack (`XDP_PASS`).
    Passed = 1,
}

impl XdpStat {
    /// Number of slots in the statistics array.
    pub const COUNT: u32 = 2;
}

/// Default DHCP server port (RFC 2131 §4.1).
pub const DHCP_SERVER_PORT: u16 = 67;
