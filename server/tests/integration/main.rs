//! The integration tests, one test binary (`cargo test -p server --test integration`; one module
//! per file, e.g. `cargo test -p server --test integration loopback_service::`). Tier 1 runs the
//! real `xdhcpd` on loopback; tier 3 (the `netns_*` modules) needs root and creates private
//! network namespaces, gated on capability (`common::privileged`: skipped with a printed line
//! when not root, a failure under `REQUIRE_PRIVILEGED_TESTS=1`).
//!
//! The helpers every module shares are compiled once: `common`, `netns` (also used by xtask),
//! `loopback_support`, the failover pair topology and the fuzz targets' entry points.

#[path = "../common/mod.rs"]
mod common;
/// The two-server failover topology (`netns_service`, `netns_failover_scenarios`; xtask's
/// failover bench includes the same file).
#[path = "../netns/failover.rs"]
mod failover_pair;
/// The fuzz targets' entry points, replayed on stable (`fuzz_regressions`).
#[path = "../../../fuzz/src/lib.rs"]
mod fuzz_entry;
#[path = "../loopback_support/mod.rs"]
mod loopback_support;
#[path = "../netns/mod.rs"]
mod netns;
/// A private PostgreSQL server (`pg_*` modules).
#[path = "../pg/mod.rs"]
mod pg;

mod config_samples;
mod control_api;
mod ddns_bind;
mod engine_robustness;
mod failover_wire;
mod fuzz_regressions;
mod isc_config_acceptance;
mod loopback;
mod loopback_bulk_leasequery;
mod loopback_decline;
mod loopback_service;
mod loopback_shards;
mod loopback_statements;
mod metrics_endpoint;
mod netns_clients;
mod netns_ddns;
mod netns_ddns_difftest;
mod netns_difftest;
mod netns_failover;
mod netns_failover_balance;
mod netns_failover_scenarios;
mod netns_hostile;
mod netns_lease_hostnames;
mod netns_local_address;
mod netns_omapi_conformance;
mod netns_overload;
mod netns_perfdhcp;
mod netns_pg_dora;
mod netns_pg_servers;
mod netns_ping_check;
mod netns_service;
mod netns_shadow;
mod netns_xdp;
mod omapi_capture;
mod omapi_limits;
mod omapi_omshell;
mod option_overload;
mod pg_history;
mod pg_leases;
mod xdp_golden;
