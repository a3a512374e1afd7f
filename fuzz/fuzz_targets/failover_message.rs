//! Fuzz target: arbitrary bytes as a failover TCP stream, decoded and re-encoded. The body lives in `xdhcpd_fuzz` (fuzz/src/lib.rs), shared with the
//! stable replay test.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xdhcpd_fuzz::failover_message(data));
