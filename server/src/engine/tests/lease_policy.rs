//! `infinite-is-reserved` and `adaptive-lease-time-threshold` (dhcpd.conf(5); ISC `ack_lease`
//! in server/dhcp.c, the `reserved` queue of mdb.c `lease_enqueue`).

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, MessageType};

use super::*;
use crate::lease::record::{flags, BindingState};

/// 3600 s leases, min-lease-time 600, in the 10-address pool of 10.0.0.0/24.
fn config() -> Config {
    let mut config = base_config(true);
    config.scopes[0].default_lease_time = Some(3600);
    config.scopes[0].max_lease_time = Some(7200);
    config.scopes[0].min_lease_time = Some(600);
    config
}

fn asking_infinite(message: dhcproto::v4::Message) -> dhcproto::v4::Message {
    with(message, DhcpOption::AddressLeaseTime(u32::MAX))
}

fn logged(decision: &Decision) -> Vec<String> {
    decision
        .reply
        .as_ref()
        .map(|reply| {
            reply
                .executed
                .log_lines
                .iter()
                .map(|(_, line)| line.clone())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn an_infinite_request_reserves_the_lease_where_allowed() {
    let mut config = config();
    config.scopes[POOL_LOCAL.0 as usize].infinite_is_reserved = Some(true);
    let mut harness = Harness::new(config);
    let offer = harness.handle(NOW, &asking_infinite(client(MessageType::Discover, MAC_A)));
    let address = yiaddr(&offer).expect("offer");
    let line = format!("Infinite-leasetime reservation made on {address}.");
    assert_eq!(logged(&offer), vec![line.clone()]);
    let ack = harness.handle(NOW, &asking_infinite(selecting(MAC_A, address, INTERFACE)));
    assert_eq!(reply_type(&ack), Some(MessageType::Ack));
    // The time is still capped by max-lease-time.
    assert_eq!(reply_lease_time(&ack), Some(7200));
    assert_eq!(logged(&ack), vec![line]);
    assert_ne!(ack.commit[0].flags & flags::RESERVED, 0, "reserved");
    // Written as ISC writes it.
    let mut record = Vec::new();
    crate::lease::file::write_lease(&ack.commit[0], &mut record);
    assert!(String::from_utf8(record).unwrap().contains("  reserved;\n"));
    // A later request without option 51 keeps the mark (ISC copies it to the new binding).
    let renewal = harness.handle(NOW + 4000, &selecting(MAC_A, address, INTERFACE));
    assert_ne!(renewal.commit[0].flags & flags::RESERVED, 0);
    assert!(logged(&renewal).is_empty());
}

#[test]
fn without_the_parameter_or_a_finite_request_nothing_is_reserved() {
    for (allowed, requested) in [
        (None, u32::MAX),
        (Some(false), u32::MAX),
        (Some(true), 3000),
    ] {
        let mut config = config();
        config.scopes[0].infinite_is_reserved = allowed;
        let mut harness = Harness::new(config);
        let offer = harness.handle(
            NOW,
            &with(
                client(MessageType::Discover, MAC_A),
                DhcpOption::AddressLeaseTime(requested),
            ),
        );
        let address = yiaddr(&offer).expect("offer");
        let ack = harness.handle(
            NOW,
            &with(
                selecting(MAC_A, address, INTERFACE),
                DhcpOption::AddressLeaseTime(requested),
            ),
        );
        assert_eq!(ack.commit[0].flags & flags::RESERVED, 0, "{allowed:?}");
        assert!(logged(&ack).is_empty());
    }
}

#[test]
fn a_reserved_lease_is_not_given_to_another_client_once_free() {
    let mut config = config();
    config.scopes[0].infinite_is_reserved = Some(true);
    // One address, so that the allocator has nothing else to give.
    config.pools[0].ranges[0].high = Ipv4Addr::new(10, 0, 0, 100);
    let mut harness = Harness::new(config);
    let offer = harness.handle(NOW, &asking_infinite(client(MessageType::Discover, MAC_A)));
    let address = yiaddr(&offer).expect("offer");
    let _ = harness.handle(NOW, &asking_infinite(selecting(MAC_A, address, INTERFACE)));
    // The lease ends and becomes FREE, still reserved.
    let expired = harness.expire(NOW + 7201);
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].binding_state, BindingState::Free);
    assert_ne!(expired[0].flags & flags::RESERVED, 0);
    let other = harness.handle(NOW + 7300, &client(MessageType::Discover, MAC_B));
    assert_eq!(
        reply_type(&other),
        None,
        "no free address for another client"
    );
    // Its own client finds it again.
    let own = harness.handle(NOW + 7300, &client(MessageType::Discover, MAC_A));
    assert_eq!(yiaddr(&own), Some(address));
}

/// Binds `clients` addresses of the 10-address pool, each with its own hardware address.
fn fill(harness: &mut Harness, clients: u8) {
    for index in 0..clients {
        let ack = bind(harness, NOW, [0x02, 0, 0, 0, 1, index]);
        assert_eq!(reply_type(&ack), Some(MessageType::Ack));
    }
}

#[test]
fn a_pool_over_the_adaptive_threshold_gives_min_lease_time() {
    let mut config = config();
    config.scopes[SUBNET_LOCAL.0 as usize].adaptive_lease_time_threshold = Some(50);
    let mut harness = Harness::new(config);
    // 4 of 10 in use: below 50 %.
    fill(&mut harness, 4);
    let first = bind(&mut harness, NOW, MAC_A);
    assert_eq!(reply_lease_time(&first), Some(3600), "40 % in use");
    // Now 5 of 10: at the threshold, a new client gets min-lease-time, OFFER and ACK alike.
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_B));
    assert_eq!(reply_lease_time(&offer), Some(600));
    let address = yiaddr(&offer).expect("offer");
    let ack = harness.handle(NOW + 1, &selecting(MAC_B, address, INTERFACE));
    assert_eq!(reply_lease_time(&ack), Some(600));
    assert_eq!(ack.commit[0].ends, NOW + 1 + 600);
    // A renewing client keeps the time its lease still runs (MAC_A's runs to NOW + 3600).
    let mut renewing = client(MessageType::Request, MAC_A);
    let address_a = yiaddr(&first).expect("bound");
    renewing.set_ciaddr(address_a);
    let renewal = harness.handle(NOW + 1000, &renewing);
    assert_eq!(reply_lease_time(&renewal), Some(2600));
}

#[test]
fn adaptive_values_outside_1_to_99_change_nothing() {
    for threshold in [0, 100, 200] {
        let mut config = config();
        config.scopes[0].adaptive_lease_time_threshold = Some(threshold);
        let mut harness = Harness::new(config);
        fill(&mut harness, 8);
        let ack = bind(&mut harness, NOW, MAC_A);
        assert_eq!(reply_lease_time(&ack), Some(3600), "{threshold}");
    }
}
