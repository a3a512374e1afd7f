//! ISC-compatible DHCP failover (failover.md): `codes`, `wire` and `body` (the codec),
//! `machine` (the sans-IO peer), `states`, `rules` (MCLT and allocation rules for the engine),
//! `persist` (the failover state in dhcpd.leases), `memory` (an in-memory [`machine::Bindings`]).

pub mod body;
pub mod codes;
pub mod machine;
pub mod memory;
pub mod persist;
pub mod rules;
pub mod states;
pub mod wire;

#[cfg(test)]
mod tests;
