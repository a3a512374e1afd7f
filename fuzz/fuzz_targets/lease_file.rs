//! Fuzz target: the dhcpd.leases reader must never panic, whatever the bytes, and what it
//! writes back must read again without errors.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = xdhcpd::lease::file::parse(data, "fuzz.leases");
    let mut out = Vec::new();
    xdhcpd::lease::file::write_file(&file, xdhcpd::lease::file::IdFormat::Octal, &mut out);
    let again = xdhcpd::lease::file::parse(&out, "rewritten.leases");
    assert!(again.errors.is_empty(), "{:?}", again.errors);
    assert_eq!(again.leases.len(), file.leases.len());
});
