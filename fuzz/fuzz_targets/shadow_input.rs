//! Fuzz target: what shadow mode reads from outside — a captured frame, its state file, ISC's
//! lease file as it grows. The body lives in `xdhcpd_fuzz` (fuzz/src/lib.rs), shared with the
//! stable replay test.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xdhcpd_fuzz::shadow_input(data));
