//! xdhcpd: a DHCPv4 server for ISP-scale networks, a drop-in replacement for ISC dhcpd 4.4.
//!
//! Module map (DESIGN.md): `config` reads dhcpd.conf, `engine` is the sans-IO RFC 2131
//! protocol engine, `lease` is the lease store and its durable dhcpd.leases log, `net` is packet
//! I/O, `xdp` loads the XDP program, `metrics` counts, `cli` is the ISC-compatible command line.

pub mod bulk_leasequery;
pub mod changes;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control_api;
pub mod control_plane;
pub mod daemon;
pub mod ddns;
pub mod engine;
pub mod failover;
pub mod history;
pub mod host_table;
pub mod lease;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod omapi;
pub mod reload;
pub mod reverse_names;
#[cfg(test)]
mod sans_io;
pub mod sd_notify;
pub mod shadow;
pub mod shutdown;
pub mod signals;
pub mod xdp;
