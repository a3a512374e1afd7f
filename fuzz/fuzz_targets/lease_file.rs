//! Fuzz target: arbitrary bytes as dhcpd.leases, written back and re-read. Must never panic. The body lives in `xdhcpd_fuzz` (fuzz/src/lib.rs), shared with the
//! stable replay test.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xdhcpd_fuzz::lease_file(data));
