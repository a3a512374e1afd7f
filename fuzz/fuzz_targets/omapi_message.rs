//! Fuzz target: arbitrary bytes as an OMAPI stream, decoded and re-encoded. The body lives in `xdhcpd_fuzz` (fuzz/src/lib.rs), shared with the
//! stable replay test.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xdhcpd_fuzz::omapi_message(data));
