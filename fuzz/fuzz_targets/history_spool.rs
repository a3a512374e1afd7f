//! Fuzz target: arbitrary bytes as a line of the lease-history spool. The body lives in
//! `xdhcpd_fuzz` (fuzz/src/lib.rs), shared with the stable replay test.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xdhcpd_fuzz::history_spool(data));
