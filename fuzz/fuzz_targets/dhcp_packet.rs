//! Fuzz target: arbitrary bytes decoded as a DHCPv4 message and run through the engine. The body lives in `xdhcpd_fuzz` (fuzz/src/lib.rs), shared with the
//! stable replay test.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xdhcpd_fuzz::dhcp_packet(data));
