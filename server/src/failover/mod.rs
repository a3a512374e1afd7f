//! ISC-compatible DHCP failover (docs/spec/failover.md): `codes`, `wire` and `body` (the codec),
//! `machine` (the sans-IO peer), `states`, `rules` (MCLT and allocation rules for the engine),
//! `persist` (the failover state in dhcpd.leases), `memory` (an in-memory [`machine::Bindings`]),
//! `bindings` (the same over the daemon's lease store), `view` (failover as the engine reads
//! it: plain values), `hooks` (the relationships' shared state, copied into views), `control`
//! (operator commands into the running drivers), `omapi` (the OMAPI `failover-state` object),
//! `peer` (the tokio TCP driver).

pub mod bindings;
pub mod body;
pub mod codes;
pub mod command;
pub mod control;
pub mod hooks;
pub mod machine;
pub mod memory;
pub mod omapi;
pub mod peer;
pub mod persist;
pub mod rules;
pub mod states;
pub mod view;
pub mod wire;

#[cfg(test)]
mod tests;
