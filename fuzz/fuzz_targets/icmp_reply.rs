//! Fuzz target: arbitrary bytes as the ping-check driver's raw ICMP socket reads them, looked
//! at for an echo reply. The body lives in `xdhcpd_fuzz` (fuzz/src/lib.rs), shared with the
//! stable replay test.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xdhcpd_fuzz::icmp_reply(data));
