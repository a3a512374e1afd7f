//! ISC-compatible DHCP failover (failover.md): `wire` + `body` (codec), `machine` (the sans-IO
//! peer), `states`, `rules` (MCLT and allocation rules for the engine), `persist` (lease file).

pub mod body;
pub mod codes;
pub mod wire;
