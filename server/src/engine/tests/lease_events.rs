//! The `on expiry`/`on release` bodies a lease keeps from its DHCPACK (ISC `lease->on_star`):
//! those of every scope the DHCPACK executed (host and classes included), the last per event,
//! kept in the lease record across a reload and a restart.

use std::sync::Arc;

use dhcproto::v4::MessageType;

use super::statements::config;
use super::*;
use crate::config::model::LogPriority;

const HOST_EVENTS: &str = r#"
on expiry { log (info, "global expiry"); }
on release { log (info, "global release"); }
host a {
  hardware ethernet 02:00:00:00:00:0a;
  on expiry or release { log (info, concat("host gone ", binary-to-ascii(10, 8, ".", leased-address))); }
}
"#;

fn log_lines(executed: &crate::engine::statements::Executed) -> Vec<&str> {
    executed
        .log_lines
        .iter()
        .map(|(_, line)| line.as_str())
        .collect()
}

fn expire_and_run(harness: &mut Harness, now: u32) -> crate::engine::statements::Executed {
    let mut changed = harness.expire(now);
    harness
        .engine
        .run_expiry_statements(&mut harness.leases, &mut changed)
}

#[test]
fn the_last_on_statement_executed_is_the_one_the_lease_runs() {
    let mut harness = Harness::new(config(HOST_EVENTS, ""));
    let host = yiaddr(&bind(&mut harness, NOW, MAC_A)).expect("bound");
    let other = yiaddr(&bind(&mut harness, NOW, MAC_B)).expect("bound");
    let record = harness.leases.get(host).expect("lease").clone();
    assert_eq!(
        record.extra.as_deref().expect("extra").verbatim,
        vec![
            "on expiry or release { log (info, concat (\"host gone \", binary-to-ascii (10, 8, \".\", leased-address))); }"
                .to_string()
        ]
    );
    let executed = expire_and_run(&mut harness, NOW + 700);
    let [a, b, c, d] = host.octets();
    let mut lines = log_lines(&executed);
    lines.sort_unstable();
    let host_line = format!("host gone {a}.{b}.{c}.{d}");
    assert_eq!(lines, vec!["global expiry", host_line.as_str()]);
    // Neither body stays with an expired lease.
    for address in [host, other] {
        let lease = harness.leases.get(address).expect("lease");
        assert!(lease
            .extra
            .as_deref()
            .is_none_or(|extra| extra.verbatim.is_empty()));
    }
}

#[test]
fn a_release_runs_the_kept_release_body_and_drops_the_expiry_one() {
    let mut harness = Harness::new(config(HOST_EVENTS, ""));
    let address = yiaddr(&bind(&mut harness, NOW, MAC_B)).expect("bound");
    let mut release = client(MessageType::Release, MAC_B);
    release.set_ciaddr(address);
    let released = harness.handle(NOW + 10, &release);
    assert_eq!(log_lines(&released.executed), vec!["global release"]);
    assert!(expire_and_run(&mut harness, NOW + 7200).is_empty());
}

#[test]
fn kept_bodies_survive_a_reload_that_removed_them_and_a_restart() {
    let mut harness = Harness::new(config(HOST_EVENTS, ""));
    let address = yiaddr(&bind(&mut harness, NOW, MAC_A)).expect("bound");
    // Restart: the record as written, read back.
    let mut written = Vec::new();
    crate::lease::file::write::write_lease(
        harness.leases.get(address).expect("lease"),
        &mut written,
    );
    let read = crate::lease::file::parse(&written, "dhcpd.leases");
    let lease = read.leases.into_iter().next().expect("one lease");
    assert_eq!(
        lease.extra,
        harness.leases.get(address).expect("lease").extra
    );
    // Reload: the new configuration has no `on` statement; the kept body runs all the same
    // (parsed from its text, as ISC's lease file reader does).
    let reloaded = config("", "");
    let mut leases = LeaseStore::new(&reloaded);
    leases.upsert(lease);
    harness.engine = Engine::new(Arc::new(reloaded));
    harness.leases = leases;
    let executed = expire_and_run(&mut harness, NOW + 700);
    let [a, b, c, d] = address.octets();
    assert_eq!(
        executed.log_lines,
        vec![(LogPriority::Info, format!("host gone {a}.{b}.{c}.{d}"))]
    );
}

#[test]
fn a_renewal_keeps_the_bodies_no_statement_replaced() {
    // The `on expiry` is executed only for a client without a user class; a renewal that
    // carries one executes none and the lease keeps the first DHCPACK's body (ISC clears
    // `on_star` only for a lease that had ended).
    let mut harness = Harness::new(config(
        "",
        "if not exists user-class { on expiry { log (info, \"first\"); } }",
    ));
    let address = yiaddr(&bind(&mut harness, NOW, MAC_A)).expect("bound");
    let mut renewal = client(MessageType::Request, MAC_A);
    renewal.set_ciaddr(address);
    renewal.opts_mut().insert(dhcproto::v4::DhcpOption::Unknown(
        dhcproto::v4::UnknownOption::new(dhcproto::v4::OptionCode::from(77), b"x".to_vec()),
    ));
    let renewed = harness.handle(NOW + 400, &renewal);
    assert_eq!(reply_type(&renewed), Some(MessageType::Ack));
    let executed = expire_and_run(&mut harness, NOW + 400 + 700);
    assert_eq!(log_lines(&executed), vec!["first"]);
}
