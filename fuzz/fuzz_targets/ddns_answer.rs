//! Fuzz target: arbitrary bytes as a DNS server's answer to a dynamic DNS UPDATE, decoded and
//! its TSIG verified. The body lives in `xdhcpd_fuzz` (fuzz/src/lib.rs), shared with the stable
//! replay test.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xdhcpd_fuzz::ddns_answer(data));
