//! Fuzz target: arbitrary bytes as an RFC 6926 bulk leasequery TCP stream (two-octet length
//! framing). The body lives in `xdhcpd_fuzz` (fuzz/src/lib.rs), shared with the stable replay
//! test.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xdhcpd_fuzz::bulk_leasequery_stream(data));
