//! `dhcp-cache-threshold` (dhcpd.conf(5); ISC `reuse_lease` in server/dhcp.c): a request for
//! a lease younger than the threshold's share of its time gets the lease as it stands — the
//! time left in option 51, `starts`/`ends` unchanged — in every reply `ack_lease` builds (OFFER,
//! and ACK in each DHCPREQUEST state).

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType};

use super::*;
use crate::config::model::{HardwareAddress, Host};
use crate::engine::fast_path;
use crate::engine::lease_time::reuse_limit;
use crate::lease::record::{flags, BindingState, Lease};

/// 600 s leases between min-lease-time 300 and max-lease-time 1200 (testdata/difftest
/// 10-cache-threshold.conf): the default 25 % allows reuse up to an age of 150 s.
fn config() -> Config {
    let mut config = base_config(true);
    config.scopes[0].default_lease_time = Some(600);
    config.scopes[0].max_lease_time = Some(1200);
    config.scopes[0].min_lease_time = Some(300);
    config
}

/// A DHCPREQUEST in RENEWING state (RFC 2131 §4.3.2: ciaddr, no option 50 or 54).
fn renewing(mac: [u8; 6], address: Ipv4Addr) -> Message {
    let mut message = client(MessageType::Request, mac);
    message.set_ciaddr(address);
    message
}

/// The lease bound at [`NOW`] for [`MAC_A`] and its address.
fn bound(harness: &mut Harness) -> (Ipv4Addr, Lease) {
    let ack = bind(harness, NOW, MAC_A);
    assert_eq!(reply_lease_time(&ack), Some(600));
    let address = yiaddr(&ack).expect("ack");
    (
        address,
        harness.leases.get(address).cloned().expect("stored"),
    )
}

/// The reused lease: option 51 is what is left, the commit is the lease unchanged (written
/// again so that the ACK waits for a durable record), the store is untouched, and the reply
/// is not one the fast path may repeat.
fn assert_reused(harness: &Harness, decision: &Decision, lease: &Lease, now: u32) {
    assert_eq!(reply_type(decision), Some(MessageType::Ack));
    assert_eq!(reply_lease_time(decision), Some(600 - (now - NOW)));
    assert_eq!(
        decision.commit,
        vec![lease.clone()],
        "the lease as it stands"
    );
    assert_eq!(harness.leases.get(lease.address), Some(lease));
    assert_eq!(
        decision.reply.as_ref().expect("reply").cache_threshold,
        None
    );
}

fn assert_fresh(decision: &Decision, now: u32) {
    assert_eq!(reply_type(decision), Some(MessageType::Ack));
    assert_eq!(reply_lease_time(decision), Some(600));
    assert_eq!(decision.commit.len(), 1);
    assert_eq!(decision.commit[0].starts, now);
    assert_eq!(decision.commit[0].ends, now + 600);
    assert_eq!(
        decision.reply.as_ref().expect("reply").cache_threshold,
        Some(25)
    );
}

#[test]
fn a_young_lease_is_renewed_with_the_time_it_has_left() {
    let mut harness = Harness::new(config());
    let (address, lease) = bound(&mut harness);
    let renewal = harness.handle(NOW + 3, &renewing(MAC_A, address));
    assert_reused(&harness, &renewal, &lease, NOW + 3);
    // Up to the limit itself (600 × 25 / 100 = 150 s: `lease_age <= limit`).
    let at_limit = harness.handle(NOW + 150, &renewing(MAC_A, address));
    assert_reused(&harness, &at_limit, &lease, NOW + 150);
    // One second later the lease is bound afresh.
    let past = harness.handle(NOW + 151, &renewing(MAC_A, address));
    assert_fresh(&past, NOW + 151);
}

/// `ack_lease` calls `reuse_lease` for DHCPOFFER and for every DHCPACK: SELECTING,
/// INIT-REBOOT, RENEWING and REBINDING alike.
#[test]
fn every_request_state_and_the_offer_reuse_a_young_lease() {
    let mut harness = Harness::new(config());
    let (address, lease) = bound(&mut harness);
    let offer = harness.handle(NOW + 10, &client(MessageType::Discover, MAC_A));
    assert_eq!(reply_type(&offer), Some(MessageType::Offer));
    assert_eq!(yiaddr(&offer), Some(address));
    assert_eq!(reply_lease_time(&offer), Some(590));
    assert_eq!(harness.leases.get(address), Some(&lease));

    let selecting = harness.handle(NOW + 11, &selecting(MAC_A, address, INTERFACE));
    assert_reused(&harness, &selecting, &lease, NOW + 11);

    let init_reboot = with(
        client(MessageType::Request, MAC_A),
        DhcpOption::RequestedIpAddress(address),
    );
    let init_reboot = harness.handle(NOW + 12, &init_reboot);
    assert_reused(&harness, &init_reboot, &lease, NOW + 12);

    let mut rebinding = renewing(MAC_A, address);
    rebinding.set_flags(Flags::default().set_broadcast());
    let rebinding = harness.handle(NOW + 13, &rebinding);
    assert_reused(&harness, &rebinding, &lease, NOW + 13);
}

/// `dhcp-cache-threshold 0` turns reuse off; ISC takes a configured value only below 100
/// (`d1.data[0] < 100`), so 100 and above mean the default 25; the innermost scope wins.
#[test]
fn the_threshold_comes_from_the_scopes() {
    let young = |threshold: Option<(ScopeId, u8)>, age: u32| {
        let mut config = config();
        if let Some((scope, value)) = threshold {
            config.scopes[scope.0 as usize].dhcp_cache_threshold = Some(value);
        }
        let mut harness = Harness::new(config);
        let (address, _) = bound(&mut harness);
        let renewal = harness.handle(NOW + age, &renewing(MAC_A, address));
        reply_lease_time(&renewal) == Some(600 - age)
    };
    assert!(young(None, 150));
    assert!(!young(None, 151));
    assert!(!young(Some((POOL_LOCAL, 0)), 3), "0 is off");
    assert!(young(Some((GLOBAL, 50)), 300));
    assert!(!young(Some((GLOBAL, 50)), 301));
    assert!(young(Some((GLOBAL, 99)), 594));
    assert!(!young(Some((GLOBAL, 99)), 595));
    assert!(young(Some((GLOBAL, 100)), 150), "100 falls back to 25");
    assert!(!young(Some((GLOBAL, 100)), 151));
    assert!(!young(Some((GLOBAL, 255)), 151), "255 falls back to 25");
    // The pool's value over the global one.
    let mut config = config();
    config.scopes[0].dhcp_cache_threshold = Some(0);
    config.scopes[POOL_LOCAL.0 as usize].dhcp_cache_threshold = Some(10);
    let mut harness = Harness::new(config);
    let (address, lease) = bound(&mut harness);
    let renewal = harness.handle(NOW + 60, &renewing(MAC_A, address));
    assert_reused(&harness, &renewal, &lease, NOW + 60);
}

/// The reused lease keeps the time it was granted: `min-lease-time` and `max-lease-time` (and
/// a lease time the client asks for) shape only a fresh binding.
#[test]
fn lease_time_bounds_apply_to_fresh_bindings_only() {
    let mut harness = Harness::new(config());
    let asks =
        |message: Message, seconds: u32| with(message, DhcpOption::AddressLeaseTime(seconds));
    let offer = harness.handle(NOW, &asks(client(MessageType::Discover, MAC_A), 60));
    let address = yiaddr(&offer).expect("offer");
    let ack = harness.handle(NOW, &asks(selecting(MAC_A, address, INTERFACE), 60));
    assert_eq!(
        reply_lease_time(&ack),
        Some(300),
        "raised to min-lease-time"
    );
    // 300 × 25 % = 75 s: at 70 s the client hears 230 s, below min-lease-time.
    let renewal = harness.handle(NOW + 70, &asks(renewing(MAC_A, address), 60));
    assert_eq!(reply_lease_time(&renewal), Some(230));
    let renewal = harness.handle(NOW + 76, &asks(renewing(MAC_A, address), 86_400));
    assert_eq!(
        reply_lease_time(&renewal),
        Some(1200),
        "fresh: max-lease-time"
    );
    // 1200 × 25 % = 300 s: a request for less does not shorten the lease it reuses.
    let renewal = harness.handle(NOW + 100, &asks(renewing(MAC_A, address), 300));
    assert_eq!(reply_lease_time(&renewal), Some(1176));
}

/// ISC reuses only for the same client with nothing changed: a host name, if sent, as
/// recorded (a changed client identifier or hardware address is another client, which the
/// store does not hand this lease to in the first place). A lease that is no longer ACTIVE is
/// never reused.
#[test]
fn a_changed_client_gets_a_fresh_binding() {
    let hostname = |message: Message, name: &str| with(message, DhcpOption::Hostname(name.into()));
    let mut harness = Harness::new(config());
    let offer = harness.handle(
        NOW,
        &hostname(client(MessageType::Discover, MAC_A), "phone"),
    );
    let address = yiaddr(&offer).expect("offer");
    let ack = harness.handle(
        NOW,
        &hostname(selecting(MAC_A, address, INTERFACE), "phone"),
    );
    assert_eq!(reply_lease_time(&ack), Some(600));
    let lease = harness.leases.get(address).cloned().expect("stored");

    // The same name, or none at all: reused.
    let same = harness.handle(NOW + 5, &hostname(renewing(MAC_A, address), "phone"));
    assert_reused(&harness, &same, &lease, NOW + 5);
    let nameless = harness.handle(NOW + 6, &renewing(MAC_A, address));
    assert_reused(&harness, &nameless, &lease, NOW + 6);
    // Another host name, then the new one again (now recorded).
    assert_fresh(
        &harness.handle(NOW + 9, &hostname(renewing(MAC_A, address), "tablet")),
        NOW + 9,
    );
    let lease = harness.leases.get(address).cloned().expect("stored");
    let same = harness.handle(NOW + 9, &hostname(renewing(MAC_A, address), "tablet"));
    assert_eq!(reply_lease_time(&same), Some(600));
    assert_eq!(same.commit, vec![lease]);
    // Released, then asked for again within the threshold: not ACTIVE, so bound afresh.
    let mut release = client(MessageType::Release, MAC_A);
    release.set_ciaddr(address);
    let release = with(release, DhcpOption::ServerIdentifier(INTERFACE));
    let released = harness.handle(NOW + 10, &release);
    assert!(released
        .commit
        .iter()
        .all(|lease| lease.binding_state != BindingState::Active));
    let offer = harness.handle(NOW + 11, &client(MessageType::Discover, MAC_A));
    assert_eq!(reply_lease_time(&offer), Some(600));
}

/// A host's fixed address is never reused (ISC does not call `reuse_lease` for a static
/// lease): every ACK grants the full time, and the fast path may repeat it at any age.
#[test]
fn fixed_addresses_are_not_reused() {
    let mut config = config();
    config.scopes.push(scope(SUBNET_LOCAL));
    config.hosts.push(Host {
        name: "printer".into(),
        scope: ScopeId(config.scopes.len() as u32 - 1),
        hardware: Some(HardwareAddress {
            htype: 1,
            address: MAC_B.to_vec(),
        }),
        client_id: None,
        fixed_addresses: vec![Ipv4Addr::new(10, 0, 0, 60)],
    });
    let mut harness = Harness::new(config);
    let address = Ipv4Addr::new(10, 0, 0, 60);
    let ack = harness.handle(NOW, &selecting(MAC_B, address, INTERFACE));
    assert_eq!(reply_lease_time(&ack), Some(600));
    let renewal = harness.handle(NOW + 3, &renewing(MAC_B, address));
    assert_eq!(reply_lease_time(&renewal), Some(600));
    assert_eq!(
        renewal.reply.as_ref().expect("reply").cache_threshold,
        Some(0)
    );
}

/// A lease the kernel may renew is recorded with `ends` at its horizon, one lease time past
/// the end the client was told (`fast_path::stretch_to_horizon`). Its age and the time left
/// are measured by that told end, as ISC measures the `ends` it keeps in memory; the reused
/// lease is written again with the horizon it carries.
#[test]
fn a_lease_at_its_horizon_is_measured_by_the_end_the_client_was_told() {
    let mut harness = Harness::new(config());
    let (address, mut lease) = bound(&mut harness);
    assert_eq!(
        fast_path::stretch_to_horizon(&mut lease, 600, false),
        Some((NOW + 600, NOW + 1200))
    );
    assert_ne!(lease.flags & flags::HORIZON, 0);
    assert_eq!(fast_path::told_end(&lease), NOW + 600);
    harness.leases.upsert(lease.clone());
    let renewal = harness.handle(NOW + 100, &renewing(MAC_A, address));
    assert_reused(&harness, &renewal, &lease, NOW + 100);
    assert_eq!(
        renewal.commit[0].ends,
        NOW + 1200,
        "the horizon stays durable"
    );
    // Past the threshold the fresh binding ends where the client is told.
    let fresh = harness.handle(NOW + 151, &renewing(MAC_A, address));
    assert_fresh(&fresh, NOW + 151);
    assert_eq!(fresh.commit[0].flags & flags::HORIZON, 0);

    // A kernel renewal leaves the same shape: told end = starts + lease time.
    let renewed = fast_path::kernel_renewal(&fresh.commit[0], NOW + 400, NOW + 1000, None);
    assert_eq!(renewed.ends, NOW + 1600);
    assert_eq!(fast_path::told_end(&renewed), NOW + 1000);
    harness.leases.upsert(renewed.clone());
    let renewal = harness.handle(NOW + 401, &renewing(MAC_A, address));
    assert_eq!(reply_lease_time(&renewal), Some(599));
    assert_eq!(renewal.commit, vec![renewed]);
}

/// ISC's arithmetic: `length × threshold / 100` in `int`, or `length / 100 × threshold` where
/// that would overflow; integer division truncates.
#[test]
fn the_age_limit_is_computed_as_isc_computes_it() {
    assert_eq!(reuse_limit(600, 25), 150);
    assert_eq!(reuse_limit(7, 25), 1);
    assert_eq!(reuse_limit(3, 25), 0);
    assert_eq!(reuse_limit(3600, 0), 0);
    // INT_MAX / 25 = 85_899_345.
    assert_eq!(reuse_limit(85_899_345, 25), 21_474_836);
    assert_eq!(reuse_limit(85_899_346, 25), 858_993 * 25);
}
