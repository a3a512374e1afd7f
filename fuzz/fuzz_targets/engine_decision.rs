//! Fuzz target: a sequence of DHCP packets through the engine with a parsed config, starvation defence included. The body lives in `xdhcpd_fuzz` (fuzz/src/lib.rs), shared with the
//! stable replay test.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xdhcpd_fuzz::engine_decision(data));
