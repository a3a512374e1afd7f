//! Fuzz target: arbitrary bytes as a JSON control API request body (Kea's commands). The body
//! lives in `xdhcpd_fuzz` (fuzz/src/lib.rs), shared with the stable replay test.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xdhcpd_fuzz::control_api_request(data));
