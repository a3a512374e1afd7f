//! Lease times (docs/spec/dhcpd-conf.md §4, ISC `ack_lease`), DECLINE, RELEASE, INFORM and BOOTP.

use std::net::{Ipv4Addr, SocketAddrV4};

use dhcproto::v4::{DhcpOption, MessageType, OptionCode};

use super::*;
use crate::config::model::{FailoverPeerConfig, HardwareAddress, Host, Permission};
use crate::engine::{Destination, IgnoreReason, Outcome, Request};
use crate::lease::record::BindingState;

fn acked_time(config: Config, requested: Option<u32>) -> Option<u32> {
    let mut harness = Harness::new(config);
    let mut discover = client(MessageType::Discover, MAC_A);
    if let Some(seconds) = requested {
        discover = with(discover, DhcpOption::AddressLeaseTime(seconds));
    }
    let offer = harness.handle(NOW, &discover);
    let offered = reply_lease_time(&offer);
    let mut request = selecting(MAC_A, yiaddr(&offer)?, INTERFACE);
    if let Some(seconds) = requested {
        request = with(request, DhcpOption::AddressLeaseTime(seconds));
    }
    let ack = harness.handle(NOW, &request);
    assert_eq!(offered, reply_lease_time(&ack), "OFFER and ACK agree");
    let granted = reply_lease_time(&ack)?;
    assert_eq!(ack.commit[0].ends, NOW + granted);
    Some(granted)
}

#[test]
fn lease_time_follows_the_isc_rule() {
    let configured = || {
        let mut config = base_config(true);
        config.scopes[0].default_lease_time = Some(600);
        config.scopes[0].max_lease_time = Some(7200);
        config
    };
    // default-lease-time when the client asks for nothing.
    assert_eq!(acked_time(configured(), None), Some(600));
    // The client's request within bounds.
    assert_eq!(acked_time(configured(), Some(3600)), Some(3600));
    // Clamped to max-lease-time.
    assert_eq!(acked_time(configured(), Some(1_000_000)), Some(7200));
    // Raised to min-lease-time (ISC default 300).
    assert_eq!(acked_time(configured(), Some(60)), Some(300));
    // ISC defaults: 43200 / max 86400.
    assert_eq!(acked_time(base_config(true), Some(200_000)), Some(86_400));
}

#[test]
fn zero_min_lease_time_keeps_short_requests() {
    let mut config = base_config(true);
    config.scopes[0].min_lease_time = Some(0);
    assert_eq!(acked_time(config, Some(60)), Some(60));
}

#[test]
fn most_specific_scope_sets_lease_time() {
    let mut config = base_config(true);
    config.scopes[0].default_lease_time = Some(600);
    config.scopes[SUBNET_LOCAL.0 as usize].default_lease_time = Some(900);
    config.scopes[POOL_LOCAL.0 as usize].default_lease_time = Some(1200);
    assert_eq!(acked_time(config, None), Some(1200));
}

#[test]
fn failover_pool_limits_lease_time_to_mclt() {
    let mut config = base_config(true);
    config.scopes[0].default_lease_time = Some(600);
    config.pools[0].failover_peer = Some("fo".into());
    config.failover_peers.push(FailoverPeerConfig {
        name: "fo".into(),
        primary: true,
        address: None,
        port: 647,
        peer_address: None,
        peer_port: 647,
        max_response_delay: 30,
        max_unacked_updates: 10,
        mclt: 300,
        hba: None,
        load_balance_max_seconds: 3,
        max_lease_misbalance: 15,
        max_lease_ownership: 10,
        min_balance: 60,
        max_balance: 3600,
        auto_partner_down: 0,
    });
    let mut harness = Harness::new(config);
    let ack = bind(&mut harness, NOW, MAC_A);
    assert_eq!(reply_lease_time(&ack), Some(300));
    let lease = &ack.commit[0];
    assert_eq!(lease.next_binding_state, BindingState::Expired);
    // Potential expiry: desired time plus half the granted one.
    assert_eq!(lease.tstp, NOW + 600 + 150);
}

#[test]
fn decline_abandons_the_address() {
    let mut harness = Harness::new(base_config(true));
    let ack = bind(&mut harness, NOW, MAC_A);
    let address = yiaddr(&ack).expect("bound");
    let decline = with(
        client(MessageType::Decline, MAC_A),
        DhcpOption::RequestedIpAddress(address),
    );
    let decision = harness.handle(NOW + 2, &decline);
    assert_eq!(decision.outcome, Outcome::Declined(address));
    assert!(
        decision.reply.is_none(),
        "RFC 2131 §4.3.3: no reply to DECLINE"
    );
    let lease = harness.leases.get(address).expect("lease");
    assert_eq!(lease.binding_state, BindingState::Abandoned);
    assert_eq!(lease.ends, NOW + 2 + 86_400);
    assert_eq!(lease.hardware, None);
    assert_eq!(decision.commit, vec![lease.clone()]);
    // The next client is not offered the abandoned address.
    let offer = harness.handle(NOW + 3, &client(MessageType::Discover, MAC_B));
    assert_ne!(yiaddr(&offer), Some(address));
}

#[test]
fn deny_declines_ignores_decline() {
    let mut config = base_config(true);
    config.scopes[0].declines = Some(Permission::Deny);
    let mut harness = Harness::new(config);
    let ack = bind(&mut harness, NOW, MAC_A);
    let address = yiaddr(&ack).expect("bound");
    let decline = with(
        client(MessageType::Decline, MAC_A),
        DhcpOption::RequestedIpAddress(address),
    );
    let decision = harness.handle(NOW + 2, &decline);
    assert_eq!(decision.outcome, Outcome::Ignored(IgnoreReason::Denied));
    assert_eq!(
        harness.leases.get(address).map(|lease| lease.binding_state),
        Some(BindingState::Active)
    );
}

#[test]
fn release_frees_the_clients_lease_only() {
    let mut harness = Harness::new(base_config(true));
    let ack = bind(&mut harness, NOW, MAC_A);
    let address = yiaddr(&ack).expect("bound");
    let mut foreign = client(MessageType::Release, MAC_B);
    foreign.set_ciaddr(address);
    assert_eq!(
        harness.handle(NOW + 5, &foreign).outcome,
        Outcome::Ignored(IgnoreReason::NotForUs)
    );
    let mut release = client(MessageType::Release, MAC_A);
    release.set_ciaddr(address);
    let decision = harness.handle(NOW + 10, &release);
    assert_eq!(decision.outcome, Outcome::Released(address));
    assert!(decision.reply.is_none());
    let lease = harness.leases.get(address).expect("lease");
    assert_eq!(lease.binding_state, BindingState::Free);
    assert_eq!(lease.ends, NOW + 10);
    // ISC keeps the hardware address on the free lease (affinity).
    assert_eq!(lease.hardware, ack.commit[0].hardware);
    assert_eq!(decision.commit, vec![lease.clone()]);
}

#[test]
fn release_drops_what_only_an_active_lease_keeps() {
    let mut harness = Harness::new(base_config(true));
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    let address = yiaddr(&offer).expect("offer");
    let request = with(
        selecting(MAC_A, address, INTERFACE),
        DhcpOption::Hostname("laptop1".into()),
    );
    let ack = harness.handle(NOW, &request);
    assert_eq!(ack.commit[0].client_hostname(), Some("laptop1"));
    let mut release = client(MessageType::Release, MAC_A);
    release.set_ciaddr(address);
    let decision = harness.handle(NOW + 10, &release);
    // ISC `make_binding_state_transition`: the freed record has no client-hostname.
    assert_eq!(decision.commit[0].client_hostname(), None);
    assert_eq!(decision.commit[0].hardware, ack.commit[0].hardware);
}

#[test]
fn inform_acks_with_options_but_no_lease() {
    let mut config = base_config(true);
    config.scopes[SUBNET_LOCAL.0 as usize]
        .options
        .push((3, vec![10, 0, 0, 1]));
    let mut harness = Harness::new(config);
    let mut inform = client(MessageType::Inform, MAC_A);
    inform.set_ciaddr(Ipv4Addr::new(10, 0, 0, 20));
    let decision = harness.handle(NOW, &inform);
    assert_eq!(decision.outcome, Outcome::Informed);
    assert!(decision.commit.is_empty());
    let reply = decision.reply.expect("ack");
    assert_eq!(reply.decoded().opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(reply.decoded().yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(reply.decoded().ciaddr(), Ipv4Addr::new(10, 0, 0, 20));
    assert!(reply
        .decoded()
        .opts()
        .get(OptionCode::AddressLeaseTime)
        .is_none());
    assert_eq!(
        reply.decoded().opts().get(OptionCode::Router),
        Some(&DhcpOption::Router(vec![Ipv4Addr::new(10, 0, 0, 1)]))
    );
    assert_eq!(
        reply.destination,
        Destination::Unicast(Ipv4Addr::new(10, 0, 0, 20))
    );
    assert_eq!(harness.leases.len(), 0);
}

#[test]
fn inform_is_answered_at_the_clients_address_as_isc_does() {
    let mut config = base_config(true);
    config.scopes[0].echo_client_id = Some(true);
    let mut harness = Harness::new(config);
    let relay = Ipv4Addr::new(10, 1, 0, 1);
    // Relayed with ciaddr: straight to ciaddr:68 (ISC `dhcpinform`), not to the relay.
    let mut relayed = with(
        client(MessageType::Inform, MAC_A),
        DhcpOption::ClientIdentifier(vec![1, 2, 3]),
    );
    relayed
        .set_ciaddr(Ipv4Addr::new(10, 1, 0, 20))
        .set_giaddr(relay);
    let ack = harness.handle_on(NOW, &relayed, None);
    let reply = ack.reply.expect("ack");
    assert_eq!(
        reply.destination,
        Destination::Unicast(Ipv4Addr::new(10, 1, 0, 20))
    );
    // ISC's INFORM path does not echo the client identifier.
    assert!(reply
        .decoded()
        .opts()
        .get(OptionCode::ClientIdentifier)
        .is_none());
    // Relayed without ciaddr: to the relay, broadcast bit set (the relay has no yiaddr).
    let mut anonymous = client(MessageType::Inform, MAC_A);
    anonymous.set_giaddr(relay);
    let request = Request {
        message: &anonymous,
        source: SocketAddrV4::new(relay, 67),
        interface_address: None,
        raw: None,
    };
    let snapshot = harness.snapshot();
    let ack = harness.engine.handle(
        NOW,
        &snapshot,
        &request,
        &mut harness.leases,
        &mut harness.starvation,
    );
    let reply = ack.reply.expect("ack");
    assert_eq!(reply.destination, Destination::Relay(relay));
    assert!(reply.decoded().flags().broadcast());
}

#[test]
fn inform_without_an_address_or_from_an_unknown_subnet_is_ignored() {
    let mut harness = Harness::new(base_config(true));
    // ciaddr 0 from 0.0.0.0: ISC "ignored (null source address)".
    let nowhere = harness.handle(NOW, &client(MessageType::Inform, MAC_A));
    assert!(nowhere.reply.is_none());
    assert!(matches!(
        nowhere.outcome,
        Outcome::Ignored(IgnoreReason::Malformed(_))
    ));
    // A ciaddr in no declared subnet: ISC "unknown subnet", even on a known interface.
    let mut foreign = client(MessageType::Inform, MAC_A);
    foreign.set_ciaddr(Ipv4Addr::new(192, 168, 77, 7));
    let decision = harness.handle(NOW, &foreign);
    assert!(decision.reply.is_none());
    assert_eq!(
        decision.outcome,
        Outcome::Ignored(IgnoreReason::UnknownSubnet)
    );
}

#[test]
fn offer_copies_the_discovers_ciaddr_as_isc_does() {
    let mut harness = Harness::new(base_config(true));
    let mut discover = client(MessageType::Discover, MAC_A);
    discover.set_ciaddr(Ipv4Addr::new(10, 0, 0, 33));
    let offer = harness.handle(NOW, &discover);
    let reply = offer.reply.expect("offer");
    assert_eq!(reply.decoded().ciaddr(), Ipv4Addr::new(10, 0, 0, 33));
    assert!(matches!(reply.destination, Destination::Hardware { .. }));
}

#[test]
fn inform_is_ignored_when_not_authoritative() {
    let mut harness = Harness::new(base_config(false));
    let mut inform = client(MessageType::Inform, MAC_A);
    inform.set_ciaddr(Ipv4Addr::new(10, 0, 0, 20));
    assert_eq!(
        harness.handle(NOW, &inform).outcome,
        Outcome::Ignored(IgnoreReason::NotAuthoritative)
    );
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

#[test]
fn bootp_host_with_fixed_address_is_answered_unless_bootp_denied() {
    let build = |deny: bool| {
        let mut config = base_config(true);
        if deny {
            config.scopes[0].bootp = Some(Permission::Deny);
        }
        config.scopes.push(scope(GLOBAL));
        config.hosts.push(Host {
            name: "terminal".into(),
            scope: ScopeId(config.scopes.len() as u32 - 1),
            hardware: Some(HardwareAddress {
                htype: 1,
                address: MAC_A.to_vec(),
            }),
            client_id: None,
            fixed_addresses: vec![Ipv4Addr::new(10, 0, 0, 60)],
        });
        config
    };
    let mut harness = Harness::new(build(false));
    let decision = harness.handle(NOW, &bootp_request(MAC_A));
    assert_eq!(
        decision.outcome,
        Outcome::BootReplied(Ipv4Addr::new(10, 0, 0, 60))
    );
    assert!(decision.commit.is_empty());
    let mut denied = Harness::new(build(true));
    assert_eq!(
        denied.handle(NOW, &bootp_request(MAC_A)).outcome,
        Outcome::Ignored(IgnoreReason::Denied)
    );
}
