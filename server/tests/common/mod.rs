//! Helpers shared by the integration tests: the run-time gate for tests that need root, and the
//! choice of server under test.
// Each test binary uses a different subset.
#![allow(dead_code)]

use std::io::Write as _;

/// Whether a privileged test may run. Without the capabilities it prints a SKIPPED line that
/// libtest does not capture (written straight to stderr) and returns false; but when CI sets
/// `REQUIRE_PRIVILEGED_TESTS=1`, it panics instead, so a broken CI cannot pass by skipping.
pub fn privileged(test: &str) -> bool {
    if crate::netns::has_lab_capabilities() {
        return true;
    }
    assert!(
        std::env::var("REQUIRE_PRIVILEGED_TESTS").as_deref() != Ok("1"),
        "{test}: needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and REQUIRE_PRIVILEGED_TESTS=1 is set"
    );
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs root (CAP_NET_ADMIN)"
    );
    false
}

/// The server the netns tests run against: xdhcpd (the default, and what CI runs), or — to
/// check the tests themselves against a reference — ISC dhcpd or Kea with
/// `XDH_TEST_SERVER=isc|kea`.
pub fn server_under_test() -> crate::netns::peers::ServerKind {
    use crate::netns::peers::ServerKind;
    match std::env::var("XDH_TEST_SERVER").as_deref() {
        Ok("isc") => ServerKind::IscDhcpd,
        Ok("kea") => ServerKind::Kea { threads: 2 },
        _ => ServerKind::Xdhcpd {
            binary: env!("CARGO_BIN_EXE_xdhcpd").into(),
            xdp: std::env::var("XDH_TEST_XDP").as_deref() == Ok("1"),
        },
    }
}
