//! Fuzz target: a failover message sequence into the sans-IO failover machine. The body lives in `xdhcpd_fuzz` (fuzz/src/lib.rs), shared with the
//! stable replay test.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xdhcpd_fuzz::failover_machine(data));
