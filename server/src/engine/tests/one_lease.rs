//! `one-lease-per-client` and `deny duplicates` (dhcpd.conf(5); ISC `ack_lease`): a client's
//! DHCPREQUEST releases its other leases, in any shared network.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, MessageType};

use super::*;
use crate::config::model::Permission;
use crate::lease::record::BindingState;

const RELAY: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);

/// DISCOVER then REQUEST through the relay of 10.1.0.0/24.
fn bind_relayed(harness: &mut Harness, now: u32, mac: [u8; 6], id: Option<&[u8]>) -> Decision {
    let build = |kind| {
        let mut message = dhcp_test_messages::ClientMessage::new(kind, mac).relayed_by(RELAY);
        if let Some(id) = id {
            message = message.client_id(id);
        }
        message
    };
    let offer = harness.handle(now, &build(MessageType::Discover).build());
    let address = yiaddr(&offer).expect("an offer");
    let request = build(MessageType::Request)
        .requested(address)
        .server_id(INTERFACE)
        .build();
    harness.handle(now, &request)
}

/// DISCOVER then REQUEST on the local network with client identifier `id`.
fn bind_local_as(harness: &mut Harness, mac: [u8; 6], id: &[u8]) -> Ipv4Addr {
    let identified = |message| with(message, DhcpOption::ClientIdentifier(id.to_vec()));
    let offer = harness.handle(NOW, &identified(client(MessageType::Discover, mac)));
    let address = yiaddr(&offer).expect("an offer");
    let ack = harness.handle(NOW, &identified(selecting(mac, address, INTERFACE)));
    yiaddr(&ack).expect("bound")
}

fn state(harness: &Harness, address: Ipv4Addr) -> Option<BindingState> {
    harness.leases.get(address).map(|lease| lease.binding_state)
}

fn config(one_lease: Option<bool>) -> Config {
    let mut config = base_config(true);
    config.scopes[0].one_lease_per_client = one_lease;
    config
}

#[test]
fn a_request_in_another_network_releases_the_clients_other_lease() {
    let mut harness = Harness::new(config(Some(true)));
    let first = yiaddr(&bind(&mut harness, NOW, MAC_A)).expect("bound locally");
    let ack = bind_relayed(&mut harness, NOW + 10, MAC_A, None);
    let second = yiaddr(&ack).expect("bound through the relay");
    assert_ne!(first, second);
    assert_eq!(state(&harness, first), Some(BindingState::Free));
    assert_eq!(state(&harness, second), Some(BindingState::Active));
    // Both changes are committed with the ACK, the released lease first.
    let committed: Vec<_> = ack.commit.iter().map(|lease| lease.address).collect();
    assert_eq!(committed, vec![first, second]);
    assert_eq!(ack.commit[0].ends, NOW + 10);
}

#[test]
fn without_the_statement_a_client_keeps_both_leases() {
    let mut harness = Harness::new(config(None));
    let first = yiaddr(&bind(&mut harness, NOW, MAC_A)).expect("bound locally");
    let ack = bind_relayed(&mut harness, NOW + 10, MAC_A, None);
    assert_eq!(state(&harness, first), Some(BindingState::Active));
    assert_eq!(ack.commit.len(), 1);
}

#[test]
fn a_client_identifier_selects_the_leases_by_identifier_not_hardware() {
    let mut harness = Harness::new(config(Some(true)));
    // The same MAC with identifier "a" locally, then identifier "b" through the relay: ISC
    // walks the uid chain only, so the lease of "a" stays.
    let local = bind_local_as(&mut harness, MAC_A, b"a");
    let ack = bind_relayed(&mut harness, NOW + 10, MAC_A, Some(b"b"));
    assert!(yiaddr(&ack).is_some());
    assert_eq!(state(&harness, local), Some(BindingState::Active));
    // Identifier "a" again through the relay (another MAC): its local lease goes.
    let ack = bind_relayed(&mut harness, NOW + 20, [2, 0, 0, 0, 0, 0x77], Some(b"a"));
    assert!(yiaddr(&ack).is_some());
    assert_eq!(state(&harness, local), Some(BindingState::Free));
}

#[test]
fn deny_duplicates_walks_the_hardware_chain_for_a_host_without_identifier() {
    let mut config = config(Some(true));
    config.scopes[0].duplicates = Some(Permission::Deny);
    // A host for MAC_A, without a client identifier or fixed address.
    let host_scope = ScopeId(config.scopes.len() as u32);
    config.scopes.push(scope(GLOBAL));
    config.hosts.push(crate::config::model::Host {
        name: "a".into(),
        scope: host_scope,
        hardware: Some(crate::config::model::HardwareAddress {
            htype: 1,
            address: MAC_A.to_vec(),
        }),
        client_id: None,
        fixed_addresses: Vec::new(),
    });
    let mut harness = Harness::new(config);
    // The client binds locally with identifier "a", then through the relay with "b": the uid
    // chain of "b" has nothing else, but `deny duplicates` releases the lease of its hardware.
    let local = bind_local_as(&mut harness, MAC_A, b"a");
    let ack = bind_relayed(&mut harness, NOW + 10, MAC_A, Some(b"b"));
    assert!(yiaddr(&ack).is_some());
    assert_eq!(state(&harness, local), Some(BindingState::Free));
}
