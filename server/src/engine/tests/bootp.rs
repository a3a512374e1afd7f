//! BOOTP (RFC 951/1542, a BOOTREQUEST without option 53) as ISC 4.4's server/bootp.c and
//! `ack_lease` answer it: who may get a dynamic address (the pools' permits; a range written
//! directly in a subnet is in an implicit pool that denies `dynamic bootp clients` unless it is
//! a `dynamic-bootp` range), the lease's end (`dynamic-bootp-lease-length`,
//! `dynamic-bootp-lease-cutoff`), its `dynamic-bootp` flag and the admission checks. The
//! difftest corpus `testdata/difftest/26-bootp.conf` compares the same with a live ISC dhcpd.

use std::net::Ipv4Addr;

use dhcproto::v4::{Message, MessageType, OptionCode};

use super::*;
use crate::config::model::{Permit, PermitKind};
use crate::engine::request::bootp_lease_end;
use crate::engine::{IgnoreReason, Outcome};
use crate::lease::record::{flags, BindingState, NEVER};

/// A 10.0.0.0/24 network on the harness's interface with `statements` in its subnet.
fn config(global: &str, statements: &str) -> Config {
    let text = format!(
        "authoritative;\nping-check false;\n{global}\n\
         subnet 10.0.0.0 netmask 255.255.255.0 {{\n{statements}\n}}\n"
    );
    crate::config::parse_str(&text, "bootp.conf").expect("config parses")
}

fn bootp_request(mac: [u8; 6]) -> Message {
    let unspecified = Ipv4Addr::UNSPECIFIED;
    Message::new_with_id(
        0x99,
        unspecified,
        unspecified,
        unspecified,
        unspecified,
        &mac,
    )
}

const MIXED_RANGES: &str =
    "  range 10.0.0.10 10.0.0.11;\n  range dynamic-bootp 10.0.0.100 10.0.0.101;";

#[test]
fn implicit_pools_follow_the_range_kind() {
    let config = config("", MIXED_RANGES);
    assert_eq!(config.pools.len(), 2);
    assert_eq!(
        config.pools[0].permits,
        vec![Permit {
            allow: false,
            kind: PermitKind::DynamicBootpClients
        }]
    );
    assert_eq!(
        config.pools[1].permits,
        vec![Permit {
            allow: true,
            kind: PermitKind::AllClients
        }]
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

/// confpars.c `parse_address_range` takes the pool before the matching one: a second
/// dynamic-bootp range after a plain one joins the plain ranges' pool.
#[test]
fn a_second_dynamic_bootp_range_joins_the_pool_before_as_isc_does() {
    let config = config(
        "",
        "  range 10.0.0.10 10.0.0.11;\n  range dynamic-bootp 10.0.0.100 10.0.0.101;\n  \
         range dynamic-bootp 10.0.0.120 10.0.0.121;\n  range 10.0.0.20 10.0.0.21;",
    );
    assert_eq!(config.pools.len(), 2);
    let lows = |pool: usize| -> Vec<String> {
        config.pools[pool]
            .ranges
            .iter()
            .map(|range| range.low.to_string())
            .collect()
    };
    assert_eq!(lows(0), ["10.0.0.10", "10.0.0.120", "10.0.0.20"]);
    assert_eq!(lows(1), ["10.0.0.100"]);
}

#[test]
fn bootp_gets_an_infinite_lease_from_a_dynamic_bootp_range() {
    let mut harness = Harness::new(config("", MIXED_RANGES));
    let decision = harness.handle(NOW, &bootp_request(MAC_A));
    let address = Ipv4Addr::new(10, 0, 0, 100);
    assert_eq!(decision.outcome, Outcome::BootReplied(address));
    let reply = decision.reply.expect("reply");
    assert_eq!(reply.decoded().opts().msg_type(), None, "no option 53");
    assert!(reply
        .decoded()
        .opts()
        .get(OptionCode::ServerIdentifier)
        .is_none());
    assert!(reply
        .decoded()
        .opts()
        .get(OptionCode::AddressLeaseTime)
        .is_none());
    assert!(reply.decoded().opts().get(OptionCode::SubnetMask).is_some());
    assert_eq!(reply.encode().expect("encodes").len(), 300);
    let lease = &decision.commit[0];
    assert_eq!(lease.ends, NEVER);
    assert_eq!(lease.flags & flags::BOOTP, flags::BOOTP);
    assert_eq!(lease.binding_state, BindingState::Active);
    assert_eq!(lease.next_binding_state, BindingState::Active);
    // The same client again: the same lease.
    let again = harness.handle(NOW + 10, &bootp_request(MAC_A));
    assert_eq!(again.outcome, Outcome::BootReplied(address));
    // A DHCP client gets the plain ranges' pool first (it is first), BOOTP never does.
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_B));
    assert_eq!(
        offer.reply.expect("offer").decoded().yiaddr(),
        Ipv4Addr::new(10, 0, 0, 10)
    );
}

#[test]
fn dynamic_bootp_lease_round_trips_through_the_lease_file() {
    let mut harness = Harness::new(config("", MIXED_RANGES));
    let decision = harness.handle(NOW, &bootp_request(MAC_A));
    let lease = decision.commit[0].clone();
    let mut out = Vec::new();
    crate::lease::file::write::write_lease(&lease, &mut out);
    let text = String::from_utf8(out).expect("utf-8");
    assert!(text.contains("  dynamic-bootp;\n"), "{text}");
    assert!(text.contains("  ends never;\n"), "{text}");
    let read = crate::lease::file::parse(text.as_bytes(), "bootp.leases");
    // Without a `tstp` line the reader takes `ends`, as ISC's does.
    let mut expected = lease;
    expected.tstp = expected.ends;
    assert_eq!(read.leases, vec![expected]);
}

#[test]
fn bootp_gets_nothing_from_plain_ranges() {
    let mut harness = Harness::new(config("", "  range 10.0.0.10 10.0.0.11;"));
    assert_eq!(
        harness.handle(NOW, &bootp_request(MAC_A)).outcome,
        Outcome::Ignored(IgnoreReason::NoFreeAddress)
    );
}

/// In a `pool` the permits decide: without any, BOOTP clients get addresses (ISC
/// `allocate_lease`); `deny dynamic bootp clients` keeps them out.
#[test]
fn pools_admit_bootp_clients_by_their_permits() {
    let open = config("", "  pool {\n    range 10.0.0.10 10.0.0.11;\n  }");
    let mut harness = Harness::new(open);
    assert_eq!(
        harness.handle(NOW, &bootp_request(MAC_A)).outcome,
        Outcome::BootReplied(Ipv4Addr::new(10, 0, 0, 10))
    );
    let closed = config(
        "",
        "  pool {\n    deny dynamic bootp clients;\n    range 10.0.0.10 10.0.0.11;\n  }",
    );
    let mut harness = Harness::new(closed);
    assert_eq!(
        harness.handle(NOW, &bootp_request(MAC_A)).outcome,
        Outcome::Ignored(IgnoreReason::NoFreeAddress)
    );
}

#[test]
fn lease_length_and_cutoff_bound_the_lease() {
    let mut harness = Harness::new(config("dynamic-bootp-lease-length 3600;", MIXED_RANGES));
    let decision = harness.handle(NOW, &bootp_request(MAC_A));
    assert_eq!(decision.commit[0].ends, NOW + 3600);
    let cutoff = NOW + 86_400;
    let mut harness = Harness::new(config(
        &format!("dynamic-bootp-lease-length 3600;\ndynamic-bootp-lease-cutoff {cutoff};"),
        MIXED_RANGES,
    ));
    let decision = harness.handle(NOW, &bootp_request(MAC_A));
    assert_eq!(decision.commit[0].ends, cutoff, "the cutoff wins");
}

#[test]
fn bootp_lease_end_rules() {
    assert_eq!(bootp_lease_end(NOW, None, None), NEVER);
    assert_eq!(bootp_lease_end(NOW, Some(60), None), NOW + 60);
    // A past cutoff is taken as it is (ISC: lease_time = cutoff - now, negative).
    assert_eq!(bootp_lease_end(NOW, Some(60), Some(NOW - 5)), NOW - 5);
    assert_eq!(bootp_lease_end(NOW, None, Some(u32::MAX)), NEVER);
    assert_eq!(bootp_lease_end(NOW, Some(u32::MAX), None), NEVER);
}

#[test]
fn deny_bootp_and_unknown_clients_drop_the_request() {
    for global in [
        "deny bootp;",
        "boot-unknown-clients false;",
        "deny unknown-clients;",
    ] {
        let mut harness = Harness::new(config(global, MIXED_RANGES));
        assert_eq!(
            harness.handle(NOW, &bootp_request(MAC_A)).outcome,
            Outcome::Ignored(IgnoreReason::Denied),
            "{global}"
        );
    }
}

#[test]
fn a_host_without_fixed_address_gets_a_dynamic_bootp_lease_with_its_scope() {
    let mut harness = Harness::new(config(
        "host known { hardware ethernet 02:00:00:00:00:0a; }\ndeny unknown-clients;",
        MIXED_RANGES,
    ));
    assert_eq!(
        harness.handle(NOW, &bootp_request(MAC_A)).outcome,
        Outcome::BootReplied(Ipv4Addr::new(10, 0, 0, 100))
    );
}
