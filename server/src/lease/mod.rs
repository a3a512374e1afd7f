//! The lease store: in-memory indices plus a durable dhcpd.leases log with group commit
//! (shared/spec/dhcpd-conf.md §8).

pub mod file;
pub mod record;
pub mod store;
