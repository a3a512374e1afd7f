//! `ping-check` (dhcpd.conf(5); ISC 4.4 `do_ping_check`, `lease_pinged`, `lease_ping_timeout`):
//! the OFFER of a new address waits for an ICMP echo request's timeout; an answer abandons the
//! address. No probe for an ACTIVE lease (the client's own), a fixed address, `ping-check
//! false`, or the previous client within `ping-cltt-secs`.

use std::net::Ipv4Addr;

use dhcproto::v4::MessageType;

use super::*;
use crate::config::model::{HardwareAddress, Host};
use crate::engine::{IgnoreReason, Outcome, PingCheck};
use crate::lease::record::BindingState;
use crate::lease::store::ClientKey;

/// The local pool 10.0.0.100–10.0.0.109 of [`base_config`].
fn local(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, last)
}

fn hardware_key(mac: [u8; 6]) -> ClientKey {
    ClientKey::Hardware(crate::lease::record::Hardware::new(1, &mac).expect("ethernet"))
}

/// A harness whose driver can ping, for `config`.
fn pinging(config: Config) -> Harness {
    let mut harness = Harness::new(config);
    harness.ping_checks = true;
    harness
}

fn discover(harness: &mut Harness, now: u32, mac: [u8; 6]) -> Decision {
    harness.handle(now, &client(MessageType::Discover, mac))
}

/// A fresh address: the decision carries the OFFER and the probe (1 s, ISC's default), and the
/// address is held for the client meanwhile: the client's retransmission gets nothing (ISC
/// `ack_lease` does not answer a lease twice), another client gets another address. The
/// timeout lets the OFFER go; the client's next DISCOVER, within `ping-cltt-secs` of that
/// offer, is answered at once with the same address, which it can then request.
#[test]
fn a_fresh_address_waits_for_its_probe_and_stays_held_for_the_client() {
    let mut harness = pinging(base_config(true));
    let offer = discover(&mut harness, NOW, MAC_A);
    assert_eq!(offer.outcome, Outcome::Offered(local(100)));
    assert_eq!(reply_type(&offer), Some(MessageType::Offer));
    let check = offer.ping_check.clone().expect("a probe first");
    assert_eq!(
        check,
        PingCheck {
            address: local(100),
            client: hardware_key(MAC_A),
            timeout_ms: 1000,
            abandon_seconds: 86_400,
        }
    );
    assert!(harness.leases.probing(local(100), NOW));

    let again = discover(&mut harness, NOW, MAC_A);
    assert_eq!(
        again.outcome,
        Outcome::Ignored(IgnoreReason::PingCheckPending)
    );
    assert!(again.reply.is_none() && again.ping_check.is_none());

    let other = discover(&mut harness, NOW, MAC_B);
    assert_eq!(other.outcome, Outcome::Offered(local(101)));
    assert_eq!(
        other.ping_check.as_ref().map(|check| check.address),
        Some(local(101))
    );

    assert!(harness
        .engine
        .ping_timed_out(NOW + 1, &check, &mut harness.leases));
    assert!(!harness.leases.probing(local(100), NOW + 1));
    // Resolved once: a second resolution finds nothing pending.
    assert!(!harness
        .engine
        .ping_timed_out(NOW + 1, &check, &mut harness.leases));

    let retransmitted = discover(&mut harness, NOW + 4, MAC_A);
    assert_eq!(retransmitted.outcome, Outcome::Offered(local(100)));
    assert!(retransmitted.ping_check.is_none(), "offered 4 s ago");
    let ack = harness.handle(NOW + 4, &selecting(MAC_A, local(100), INTERFACE));
    assert_eq!(ack.outcome, Outcome::Acked(local(100)));
}

/// An echo reply while the OFFER waits: the address is abandoned for `abandon-lease-time`
/// (cleared of the client, as ISC `abandon_lease` leaves it), the OFFER is never sent, and the
/// client's next DISCOVER gets another address, probed in turn. A reply after the probe ended
/// changes nothing (ISC: "late or spurious").
#[test]
fn an_answered_probe_abandons_the_address_and_the_client_gets_another() {
    let mut config = base_config(true);
    config.scopes[0].abandon_lease_time = Some(600);
    let mut harness = pinging(config);
    let offer = discover(&mut harness, NOW, MAC_A);
    let check = offer.ping_check.expect("a probe");
    assert_eq!(check.abandon_seconds, 600);
    let snapshot = harness.snapshot();

    let abandoned = harness
        .engine
        .ping_answered(NOW + 1, &snapshot, &check, &mut harness.leases)
        .expect("abandoned");
    assert_eq!(abandoned.address, local(100));
    assert_eq!(abandoned.binding_state, BindingState::Abandoned);
    assert_eq!(abandoned.next_binding_state, BindingState::Free);
    assert_eq!(abandoned.ends, NOW + 1 + 600);
    assert!(abandoned.hardware.is_none() && abandoned.uid().is_none());
    assert_eq!(harness.leases.get(local(100)), Some(&abandoned));
    assert!(!harness.leases.probing(local(100), NOW + 1));
    assert!(harness
        .engine
        .ping_answered(NOW + 1, &snapshot, &check, &mut harness.leases)
        .is_none());
    assert!(!harness
        .engine
        .ping_timed_out(NOW + 1, &check, &mut harness.leases));

    let next = discover(&mut harness, NOW + 4, MAC_A);
    assert_eq!(next.outcome, Outcome::Offered(local(101)));
    assert_eq!(next.ping_check.map(|check| check.address), Some(local(101)));
}

/// ISC `do_ping_check`: `ping-timeout-ms` above 0 overrides `ping-timeout`.
#[test]
fn ping_timeout_ms_overrides_ping_timeout() {
    for (seconds, milliseconds, expected) in [
        (Some(3), None, 3000),
        (Some(3), Some(250), 250),
        (Some(2), Some(0), 2000),
        (None, Some(1500), 1500),
        (Some(0), None, 0),
    ] {
        let mut config = base_config(true);
        config.scopes[0].ping_timeout = seconds;
        config.scopes[POOL_LOCAL.0 as usize].ping_timeout_ms = milliseconds;
        let mut harness = pinging(config);
        let offer = discover(&mut harness, NOW, MAC_A);
        assert_eq!(
            offer.ping_check.map(|check| check.timeout_ms),
            Some(expected),
            "ping-timeout {seconds:?}, ping-timeout-ms {milliseconds:?}"
        );
    }
}

/// No probe: `ping-check false` in the address's scopes (and on again in an inner scope),
/// without an ICMP socket, for the client's own ACTIVE lease, for a host's fixed address.
#[test]
fn no_probe_where_isc_does_not_ping() {
    let mut config = base_config(true);
    config.scopes[SUBNET_LOCAL.0 as usize].ping_check = Some(false);
    let mut harness = pinging(config);
    let offer = discover(&mut harness, NOW, MAC_A);
    assert_eq!(offer.outcome, Outcome::Offered(local(100)));
    assert!(offer.ping_check.is_none(), "ping-check false");

    let mut config = base_config(true);
    config.scopes[0].ping_check = Some(false);
    config.scopes[POOL_LOCAL.0 as usize].ping_check = Some(true);
    let offer = discover(&mut pinging(config), NOW, MAC_A);
    assert!(offer.ping_check.is_some(), "the pool turns it back on");

    let mut harness = Harness::new(base_config(true));
    let offer = discover(&mut harness, NOW, MAC_A);
    assert_eq!(offer.outcome, Outcome::Offered(local(100)));
    assert!(offer.ping_check.is_none(), "no ICMP socket");
    assert!(!harness.leases.probing(local(100), NOW));

    // The client's own binding: ACTIVE, never pinged (the DISCOVER of a rebooting client).
    let mut harness = Harness::new(base_config(true));
    let bound = yiaddr(&bind(&mut harness, NOW, MAC_A)).expect("bound");
    harness.ping_checks = true;
    let offer = discover(&mut harness, NOW + 600, MAC_A);
    assert_eq!(offer.outcome, Outcome::Offered(bound));
    assert!(offer.ping_check.is_none(), "ACTIVE lease");

    // A fixed address (ISC's static lease).
    let mut config = base_config(true);
    config.scopes.push(scope(GLOBAL));
    config.hosts.push(Host {
        name: "printer".into(),
        scope: ScopeId(config.scopes.len() as u32 - 1),
        hardware: Some(HardwareAddress {
            htype: 1,
            address: MAC_A.to_vec(),
        }),
        client_id: None,
        fixed_addresses: vec![local(50)],
    });
    let offer = discover(&mut pinging(config), NOW, MAC_A);
    assert_eq!(offer.outcome, Outcome::Offered(local(50)));
    assert!(offer.ping_check.is_none(), "fixed address");
}

/// ISC `do_ping_check` with `same_client`: the address a client released is offered back to
/// it without a probe within `ping-cltt-secs` (default 60) of its last transaction, with one
/// after; another client is always probed.
#[test]
fn the_previous_client_is_probed_again_only_after_ping_cltt_secs() {
    let mut harness = Harness::new(base_config(true));
    let address = yiaddr(&bind(&mut harness, NOW, MAC_A)).expect("bound");
    let mut release = client(MessageType::Release, MAC_A);
    release.set_ciaddr(address);
    assert_eq!(
        harness.handle(NOW + 1, &release).outcome,
        Outcome::Released(address)
    );
    let cltt = harness.leases.get(address).expect("lease").cltt;
    assert_eq!(cltt, NOW, "the ACK's transaction");
    harness.ping_checks = true;

    let soon = discover(&mut harness, NOW + 30, MAC_A);
    assert_eq!(soon.outcome, Outcome::Offered(address));
    assert!(soon.ping_check.is_none(), "30 s after its transaction");

    // Past the 120 s hold of that offer and 60 s after the transaction.
    let later = discover(&mut harness, NOW + 400, MAC_A);
    assert_eq!(later.outcome, Outcome::Offered(address));
    assert!(later.ping_check.is_some(), "400 s after");

    let mut config = base_config(true);
    config.scopes[0].ping_cltt_secs = Some(1000);
    let mut harness = Harness::new(config);
    let address = yiaddr(&bind(&mut harness, NOW, MAC_A)).expect("bound");
    let mut release = client(MessageType::Release, MAC_A);
    release.set_ciaddr(address);
    let _ = harness.handle(NOW + 1, &release);
    harness.ping_checks = true;
    let later = discover(&mut harness, NOW + 400, MAC_A);
    assert!(later.ping_check.is_none(), "ping-cltt-secs 1000");
    let other = discover(&mut harness, NOW + 400, MAC_B);
    assert!(other.ping_check.is_some(), "another client");
}
