//! How xdhcpd is compared with ISC dhcpd 4.4, reply by reply: the differential tests
//! (server/tests/netns/difftest.rs, `cargo xtask difftest`) run both servers on the same script,
//! shadow mode (`xdhcpd --shadow`, server/src/shadow/) watches ISC serve real clients. Both use
//! this one comparison ([`replies::compare_replies`]) and the same list of justified
//! differences ([`lists`], testdata/difftest/justified.toml).
//!
//! Only std and anyhow: xtask compiles the difftest harness too.

pub mod lists;
pub mod replies;
