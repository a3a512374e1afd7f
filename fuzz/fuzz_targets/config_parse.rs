//! Fuzz target: the dhcpd.conf parser must never panic, whatever the input (DESIGN.md "Every
//! parser has a fuzz target").
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = xdhcpd::config::parse_str(&text, "fuzz.conf");
});
