//! The lease store: in-memory indices plus a durable dhcpd.leases log with group commit
//! (docs/spec/dhcpd-conf.md §8).

pub mod billing;
pub mod commit;
pub mod file;
pub mod log;
pub mod pg;
pub mod record;
pub mod shards;
pub mod store;
