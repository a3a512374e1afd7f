//! Benchmarks of xdhcpd: Criterion micro-benchmarks in `benches/`, and the load generators in
//! `src/bin/` (`dhcp_load`, `renew_load`) with the frame and socket code they share, and the engine benches' configuration.

pub mod engine_config;
pub mod packet_socket;
pub mod wire;

pub use engine_config::engine_bench_config;
