//! Benchmarks of xdhcpd: Criterion micro-benchmarks in `benches/`.
