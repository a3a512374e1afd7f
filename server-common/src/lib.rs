//! Types shared by the XDP program (`server-ebpf`) and the daemon (`server`): map keys and
//! values, statistics indices. `#[repr(C)]` with explicit padding; a size assertion each, since
//! the kernel and userspace must agree byte for byte (STYLE.md §6).
#![no_std]

pub mod fastpath;
pub mod loadbalance;

pub use fastpath::XdpStat;

/// Default DHCP server port (RFC 2131 §4.1).
pub const DHCP_SERVER_PORT: u16 = 67;
