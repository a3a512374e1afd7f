//! Network location, address selection and the DISCOVER/REQUEST state rules (RFC 2131 §4.3.1,
//! §4.3.2; ISC `locate_network`, `find_lease`, `allocate_lease`, `dhcprequest`).

use std::net::Ipv4Addr;

use dhcproto::v4::{relay, DhcpOption, Flags, MessageType, Opcode};

use super::*;
use crate::config::model::{HardwareAddress, Host, Permission, Permit, PermitKind, Scope};
use crate::engine::{Destination, IgnoreReason, Malformation, Outcome};
use crate::lease::record::{BindingState, Hardware, Lease};

const POOL_FIRST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

#[test]
fn discover_offers_first_free_address_with_isc_defaults() {
    let mut harness = Harness::new(base_config(true));
    let decision = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    assert_eq!(decision.outcome, Outcome::Offered(POOL_FIRST));
    assert_eq!(reply_type(&decision), Some(MessageType::Offer));
    // ISC DEFAULT_DEFAULT_LEASE_TIME.
    assert_eq!(reply_lease_time(&decision), Some(43_200));
    assert!(decision.commit.is_empty(), "an OFFER is not persisted");
    let reply = decision.reply.expect("reply");
    assert_eq!(reply.decoded().opcode(), Opcode::BootReply);
    assert_eq!(reply.decoded().xid(), 0x1234);
    assert_eq!(reply.decoded().chaddr(), &MAC_A);
    assert_eq!(
        reply
            .decoded()
            .opts()
            .get(dhcproto::v4::OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(INTERFACE))
    );
    assert_eq!(
        reply
            .decoded()
            .opts()
            .get(dhcproto::v4::OptionCode::SubnetMask),
        Some(&DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)))
    );
    // RFC 2131 §4.1: no ciaddr, no broadcast bit → unicast to yiaddr at chaddr.
    assert_eq!(
        reply.destination,
        Destination::Hardware {
            address: POOL_FIRST,
            hardware: Hardware::new(1, &MAC_A).expect("hardware"),
        }
    );
}

#[test]
fn offered_address_is_held_for_two_minutes() {
    let mut harness = Harness::new(base_config(true));
    let first = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    let second = harness.handle(NOW, &client(MessageType::Discover, MAC_B));
    assert_ne!(yiaddr(&first), yiaddr(&second));
    // The same client asking again gets the same address (ISC finds its offered lease).
    let again = harness.handle(NOW + 5, &client(MessageType::Discover, MAC_A));
    assert_eq!(yiaddr(&again), yiaddr(&first));
}

#[test]
fn expired_offer_hold_frees_the_address() {
    let mut config = base_config(true);
    config.pools[0].ranges[0].high = POOL_FIRST;
    let mut harness = Harness::new(config);
    let first = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    assert_eq!(yiaddr(&first), Some(POOL_FIRST));
    let blocked = harness.handle(NOW + 60, &client(MessageType::Discover, MAC_B));
    assert_eq!(
        blocked.outcome,
        Outcome::Ignored(IgnoreReason::NoFreeAddress)
    );
    let later = harness.handle(NOW + 121, &client(MessageType::Discover, MAC_B));
    assert_eq!(yiaddr(&later), Some(POOL_FIRST));
}

#[test]
fn requested_address_is_honoured_when_free() {
    let mut harness = Harness::new(base_config(true));
    let wanted = Ipv4Addr::new(10, 0, 0, 105);
    let discover = with(
        client(MessageType::Discover, MAC_A),
        DhcpOption::RequestedIpAddress(wanted),
    );
    assert_eq!(yiaddr(&harness.handle(NOW, &discover)), Some(wanted));
}

#[test]
fn requested_address_outside_pools_falls_back_to_allocation() {
    let mut harness = Harness::new(base_config(true));
    let discover = with(
        client(MessageType::Discover, MAC_A),
        DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 0, 0, 20)),
    );
    assert_eq!(yiaddr(&harness.handle(NOW, &discover)), Some(POOL_FIRST));
}

#[test]
fn requested_address_bound_to_another_client_is_not_offered() {
    let mut harness = Harness::new(base_config(true));
    let bound = bind(&mut harness, NOW, MAC_A);
    let taken = yiaddr(&bound).expect("bound");
    let discover = with(
        client(MessageType::Discover, MAC_B),
        DhcpOption::RequestedIpAddress(taken),
    );
    let offer = harness.handle(NOW + 1, &discover);
    assert_ne!(yiaddr(&offer), Some(taken));
}

#[test]
fn previous_binding_is_offered_again() {
    let mut harness = Harness::new(base_config(true));
    let mut lease = Lease::free(Ipv4Addr::new(10, 0, 0, 107));
    lease.hardware = Hardware::new(1, &MAC_A);
    lease.starts = NOW - 1000;
    lease.ends = NOW - 10;
    harness.leases.upsert(lease);
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    assert_eq!(yiaddr(&offer), Some(Ipv4Addr::new(10, 0, 0, 107)));
}

#[test]
fn client_identifier_binding_wins_over_hardware() {
    let mut harness = Harness::new(base_config(true));
    let id = vec![1, 2, 3, 4];
    let mut lease = Lease::free(Ipv4Addr::new(10, 0, 0, 103));
    lease.hardware = Hardware::new(1, &MAC_B);
    lease.set_uid(Some(&id.clone()));
    harness.leases.upsert(lease);
    let discover = with(
        client(MessageType::Discover, MAC_A),
        DhcpOption::ClientIdentifier(id),
    );
    assert_eq!(
        yiaddr(&harness.handle(NOW, &discover)),
        Some(Ipv4Addr::new(10, 0, 0, 103))
    );
}

#[test]
fn abandoned_address_is_not_offered() {
    let mut harness = Harness::new(base_config(true));
    let mut lease = Lease::free(POOL_FIRST);
    lease.binding_state = BindingState::Abandoned;
    lease.ends = NOW + 1000;
    harness.leases.upsert(lease);
    let discover = with(
        client(MessageType::Discover, MAC_A),
        DhcpOption::RequestedIpAddress(POOL_FIRST),
    );
    let offer = harness.handle(NOW, &discover);
    assert_eq!(yiaddr(&offer), Some(Ipv4Addr::new(10, 0, 0, 101)));
}

fn with_host(mut config: Config, fixed: Option<Ipv4Addr>) -> Config {
    config.scopes.push(scope(GLOBAL));
    config.hosts.push(Host {
        name: "printer".into(),
        scope: ScopeId(config.scopes.len() as u32 - 1),
        hardware: Some(HardwareAddress {
            htype: 1,
            address: MAC_A.to_vec(),
        }),
        client_id: None,
        fixed_addresses: fixed.into_iter().collect(),
    });
    config
}

#[test]
fn reservation_is_offered_and_acked_without_a_dynamic_lease() {
    let fixed = Ipv4Addr::new(10, 0, 0, 50);
    let mut harness = Harness::new(with_host(base_config(true), Some(fixed)));
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    assert_eq!(yiaddr(&offer), Some(fixed));
    assert_eq!(
        harness.leases.len(),
        0,
        "no dynamic lease recorded for a fixed address"
    );
    let ack = harness.handle(NOW, &selecting(MAC_A, fixed, INTERFACE));
    assert_eq!(ack.outcome, Outcome::Acked(fixed));
    assert!(ack.commit.is_empty());
    // A REQUEST for anything else is NAKed: the host's fixed address is the only one.
    let wrong = harness.handle(NOW, &selecting(MAC_A, POOL_FIRST, INTERFACE));
    assert_eq!(wrong.outcome, Outcome::Nacked);
}

#[test]
fn reservation_on_another_network_leaves_dynamic_allocation() {
    let mut harness = Harness::new(with_host(
        base_config(true),
        Some(Ipv4Addr::new(10, 1, 0, 5)),
    ));
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    assert_eq!(yiaddr(&offer), Some(POOL_FIRST));
}

#[test]
fn pool_exhaustion_is_reported() {
    let mut config = base_config(true);
    config.pools[0].ranges[0].high = Ipv4Addr::new(10, 0, 0, 101);
    let mut harness = Harness::new(config);
    let _ = bind(&mut harness, NOW, MAC_A);
    let _ = bind(&mut harness, NOW, MAC_B);
    let third = harness.handle(NOW, &client(MessageType::Discover, [2, 0, 0, 0, 0, 0x0c]));
    assert_eq!(third.outcome, Outcome::Ignored(IgnoreReason::NoFreeAddress));
    assert!(third.reply.is_none());
}

#[test]
fn relayed_discover_uses_the_giaddr_subnet_and_goes_back_to_the_relay() {
    let mut harness = Harness::new(base_config(true));
    let mut discover = client(MessageType::Discover, MAC_A);
    discover.set_giaddr(Ipv4Addr::new(10, 1, 0, 1)).set_hops(1);
    discover.set_flags(Flags::default().set_broadcast());
    let offer = harness.handle(NOW, &discover);
    assert_eq!(yiaddr(&offer), Some(Ipv4Addr::new(10, 1, 0, 50)));
    let reply = offer.reply.expect("reply");
    assert_eq!(
        reply.destination,
        Destination::Relay(Ipv4Addr::new(10, 1, 0, 1))
    );
    assert_eq!(reply.decoded().giaddr(), Ipv4Addr::new(10, 1, 0, 1));
    assert_eq!(reply.decoded().hops(), 1);
    assert!(
        reply.decoded().flags().broadcast(),
        "broadcast flag preserved"
    );
}

#[test]
fn subnet_selection_option_overrides_the_interface() {
    let mut harness = Harness::new(base_config(true));
    let discover = with(
        client(MessageType::Discover, MAC_A),
        DhcpOption::SubnetSelection(Ipv4Addr::new(10, 1, 0, 0)),
    );
    assert_eq!(
        yiaddr(&harness.handle(NOW, &discover)),
        Some(Ipv4Addr::new(10, 1, 0, 50))
    );
}

#[test]
fn relay_link_selection_sub_option_overrides_giaddr() {
    let mut harness = Harness::new(base_config(true));
    let mut info = relay::RelayAgentInformation::default();
    info.insert(relay::RelayInfo::LinkSelection(Ipv4Addr::new(10, 1, 0, 0)));
    let mut discover = with(
        client(MessageType::Discover, MAC_A),
        DhcpOption::RelayAgentInformation(info),
    );
    discover.set_giaddr(Ipv4Addr::new(10, 0, 0, 254));
    let offer = harness.handle(NOW, &discover);
    assert_eq!(yiaddr(&offer), Some(Ipv4Addr::new(10, 1, 0, 50)));
    assert_eq!(
        offer.reply.expect("reply").destination,
        Destination::Relay(Ipv4Addr::new(10, 0, 0, 254))
    );
}

#[test]
fn packet_from_unknown_network_is_ignored() {
    let mut harness = Harness::new(base_config(true));
    let decision = harness.handle_on(
        NOW,
        &client(MessageType::Discover, MAC_A),
        Some(Ipv4Addr::new(192, 168, 9, 1)),
    );
    assert_eq!(
        decision.outcome,
        Outcome::Ignored(IgnoreReason::UnknownSubnet)
    );
}

#[test]
fn selecting_request_is_acked_and_committed() {
    let mut harness = Harness::new(base_config(true));
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    let address = yiaddr(&offer).expect("offer");
    let request = with(
        selecting(MAC_A, address, INTERFACE),
        DhcpOption::Hostname("laptop".into()),
    );
    let ack = harness.handle(NOW + 1, &request);
    assert_eq!(ack.outcome, Outcome::Acked(address));
    assert_eq!(reply_type(&ack), Some(MessageType::Ack));
    assert_eq!(ack.commit.len(), 1);
    let lease = &ack.commit[0];
    assert_eq!(lease.address, address);
    assert_eq!(lease.starts, NOW + 1);
    assert_eq!(lease.cltt, NOW + 1);
    assert_eq!(lease.ends, NOW + 1 + 43_200);
    assert_eq!(lease.binding_state, BindingState::Active);
    assert_eq!(lease.next_binding_state, BindingState::Free);
    assert_eq!(lease.hardware, Hardware::new(1, &MAC_A));
    assert_eq!(lease.client_hostname(), Some("laptop"));
    assert_eq!(harness.leases.get(address), Some(lease));
}

#[test]
fn request_naming_another_server_is_served_as_isc_does_without_server_id_check() {
    let mut config = base_config(true);
    config.pools[0].ranges[0].high = POOL_FIRST;
    let mut harness = Harness::new(config);
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    assert_eq!(yiaddr(&offer), Some(POOL_FIRST));
    let other_server = Ipv4Addr::new(10, 0, 0, 2);
    // The other server's address, not one of ours: unanswered (ISC "unknown lease").
    let elsewhere = harness.handle(
        NOW + 1,
        &selecting(MAC_A, Ipv4Addr::new(10, 0, 0, 200), other_server),
    );
    assert_eq!(
        elsewhere.outcome,
        Outcome::Ignored(IgnoreReason::UnknownLease)
    );
    // Our offer stays held for its two minutes (ISC does not release it either).
    let other = harness.handle(NOW + 2, &client(MessageType::Discover, MAC_B));
    assert_eq!(other.outcome, Outcome::Ignored(IgnoreReason::NoFreeAddress));
    // The address we offered, whatever server the client names: ACKed (ISC 4.4 checks the
    // server identifier only with `server-id-check` and only in failover pools).
    let ack = harness.handle(NOW + 3, &selecting(MAC_A, POOL_FIRST, other_server));
    assert_eq!(ack.outcome, Outcome::Acked(POOL_FIRST));
}

fn init_reboot(mac: [u8; 6], address: Ipv4Addr) -> Message {
    with(
        client(MessageType::Request, mac),
        DhcpOption::RequestedIpAddress(address),
    )
}

#[test]
fn init_reboot_on_wrong_network_is_nacked_when_authoritative() {
    let mut harness = Harness::new(base_config(true));
    let decision = harness.handle(NOW, &init_reboot(MAC_A, Ipv4Addr::new(10, 1, 0, 55)));
    assert_eq!(decision.outcome, Outcome::Nacked);
    let reply = decision.reply.expect("nak");
    assert_eq!(reply.decoded().opts().msg_type(), Some(MessageType::Nak));
    assert_eq!(reply.decoded().yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(reply.destination, Destination::Broadcast);
    assert!(decision.commit.is_empty());
}

#[test]
fn init_reboot_on_wrong_network_is_ignored_when_not_authoritative() {
    let mut harness = Harness::new(base_config(false));
    let decision = harness.handle(NOW, &init_reboot(MAC_A, Ipv4Addr::new(10, 1, 0, 55)));
    assert_eq!(
        decision.outcome,
        Outcome::Ignored(IgnoreReason::NotAuthoritative)
    );
    assert!(decision.reply.is_none());
}

#[test]
fn authoritative_is_resolved_through_scopes() {
    let mut config = base_config(false);
    config.scopes[SUBNET_LOCAL.0 as usize].authoritative = Some(true);
    let mut harness = Harness::new(config);
    let decision = harness.handle(NOW, &init_reboot(MAC_A, Ipv4Addr::new(10, 1, 0, 55)));
    assert_eq!(decision.outcome, Outcome::Nacked);
}

#[test]
fn init_reboot_for_an_address_without_record_is_silent() {
    // §4.3.2: "If the DHCP server has no record of this client, then it MUST remain silent".
    let mut harness = Harness::new(base_config(true));
    let decision = harness.handle(NOW, &init_reboot(MAC_A, Ipv4Addr::new(10, 0, 0, 20)));
    assert_eq!(
        decision.outcome,
        Outcome::Ignored(IgnoreReason::UnknownLease)
    );
    assert!(decision.reply.is_none());
}

#[test]
fn init_reboot_for_another_clients_lease_is_nacked() {
    let mut harness = Harness::new(base_config(true));
    let bound = bind(&mut harness, NOW, MAC_A);
    let address = yiaddr(&bound).expect("bound");
    let decision = harness.handle(NOW + 10, &init_reboot(MAC_B, address));
    assert_eq!(decision.outcome, Outcome::Nacked);
}

#[test]
fn init_reboot_of_own_lease_is_acked() {
    let mut harness = Harness::new(base_config(true));
    let bound = bind(&mut harness, NOW, MAC_A);
    let address = yiaddr(&bound).expect("bound");
    let decision = harness.handle(NOW + 10, &init_reboot(MAC_A, address));
    assert_eq!(decision.outcome, Outcome::Acked(address));
}

#[test]
fn renewal_extends_the_lease_and_unicasts_to_ciaddr() {
    let mut harness = Harness::new(base_config(true));
    let bound = bind(&mut harness, NOW, MAC_A);
    let address = yiaddr(&bound).expect("bound");
    let mut renew = client(MessageType::Request, MAC_A);
    renew.set_ciaddr(address);
    let later = NOW + 21_600;
    let ack = harness.handle(later, &renew);
    assert_eq!(ack.outcome, Outcome::Acked(address));
    assert_eq!(ack.commit[0].ends, later + 43_200);
    assert_eq!(ack.commit[0].starts, later);
    let reply = ack.reply.expect("ack");
    assert_eq!(reply.decoded().ciaddr(), address);
    assert_eq!(reply.destination, Destination::Unicast(address));
}

#[test]
fn rebinding_broadcast_is_acked_by_broadcast() {
    let mut harness = Harness::new(base_config(true));
    let bound = bind(&mut harness, NOW, MAC_A);
    let address = yiaddr(&bound).expect("bound");
    let mut rebind = client(MessageType::Request, MAC_A);
    rebind.set_ciaddr(address);
    rebind.set_flags(Flags::default().set_broadcast());
    let ack = harness.handle(NOW + 37_800, &rebind);
    assert_eq!(ack.outcome, Outcome::Acked(address));
    assert_eq!(ack.reply.expect("ack").destination, Destination::Broadcast);
}

#[test]
fn relayed_rebinding_from_wrong_network_is_nacked() {
    let mut harness = Harness::new(base_config(true));
    let bound = bind(&mut harness, NOW, MAC_A);
    let address = yiaddr(&bound).expect("bound");
    let mut rebind = client(MessageType::Request, MAC_A);
    rebind
        .set_ciaddr(address)
        .set_giaddr(Ipv4Addr::new(10, 1, 0, 1));
    let nak = harness.handle(NOW + 37_800, &rebind);
    assert_eq!(nak.outcome, Outcome::Nacked);
    let reply = nak.reply.expect("nak");
    assert_eq!(
        reply.destination,
        Destination::Relay(Ipv4Addr::new(10, 1, 0, 1))
    );
    assert!(reply.decoded().flags().broadcast());
}

#[test]
fn request_without_address_is_malformed() {
    let mut harness = Harness::new(base_config(true));
    let decision = harness.handle(NOW, &client(MessageType::Request, MAC_A));
    assert!(matches!(
        decision.outcome,
        Outcome::Ignored(IgnoreReason::Malformed(Malformation::MissingField(_)))
    ));
}

#[test]
fn unknown_clients_denied_in_scope() {
    let mut config = base_config(true);
    config.scopes[0].unknown_clients = Some(Permission::Deny);
    let mut harness = Harness::new(config);
    let decision = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    assert_eq!(decision.outcome, Outcome::Ignored(IgnoreReason::Denied));
}

#[test]
fn pool_permit_lists_select_known_and_unknown_clients() {
    let mut config = with_host(base_config(true), None);
    // Pool 0: known clients only; a second pool in the same shared network for the rest.
    config.pools[0].permits = vec![Permit {
        allow: true,
        kind: PermitKind::KnownClients,
    }];
    config.scopes.push(scope(SUBNET_LOCAL));
    let unknown_pool_scope = ScopeId(config.scopes.len() as u32 - 1);
    config.pools.push(Pool {
        scope: unknown_pool_scope,
        shared_network: SharedNetworkId(0),
        subnet: Some(SubnetId(0)),
        ranges: vec![AddressRange {
            low: Ipv4Addr::new(10, 0, 0, 150),
            high: Ipv4Addr::new(10, 0, 0, 159),
            dynamic_bootp: false,
        }],
        permits: vec![Permit {
            allow: false,
            kind: PermitKind::KnownClients,
        }],
        failover_peer: None,
    });
    config.shared_networks[0].pools.push(PoolId(2));
    let mut harness = Harness::new(config);
    let known = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    assert_eq!(yiaddr(&known), Some(POOL_FIRST));
    let unknown = harness.handle(NOW, &client(MessageType::Discover, MAC_B));
    assert_eq!(yiaddr(&unknown), Some(Ipv4Addr::new(10, 0, 0, 150)));
}

#[test]
fn server_messages_and_bad_headers_are_ignored_without_panic() {
    let mut harness = Harness::new(base_config(true));
    let offer = client(MessageType::Offer, MAC_A);
    assert_eq!(
        harness.handle(NOW, &offer).outcome,
        Outcome::Ignored(IgnoreReason::UnsupportedMessageType(2))
    );
    let mut reply = client(MessageType::Discover, MAC_A);
    reply.set_opcode(Opcode::BootReply);
    assert_eq!(
        harness.handle(NOW, &reply).outcome,
        Outcome::Ignored(IgnoreReason::Malformed(Malformation::NotBootRequest))
    );
    // hlen 20 > 16: decoded from raw bytes, must not panic on chaddr().
    let mut bytes = vec![0u8; 240];
    bytes[0] = 1;
    bytes[1] = 1;
    bytes[2] = 20;
    bytes[236..240].copy_from_slice(&[99, 130, 83, 99]);
    bytes.extend_from_slice(&[53, 1, 1, 255]);
    let message = <Message as dhcproto::Decodable>::decode(&mut dhcproto::Decoder::new(&bytes))
        .expect("decodes");
    assert_eq!(
        harness.handle(NOW, &message).outcome,
        Outcome::Ignored(IgnoreReason::Malformed(
            Malformation::HardwareAddressTooLong
        ))
    );
}

#[test]
fn host_identified_by_relay_circuit_id_gets_its_fixed_address() {
    use crate::config::expr::OptionRef;
    use crate::config::model::{HostId, HostIdentifier};
    let mut config = base_config(true);
    config.scopes.push(scope(GLOBAL));
    config.hosts.push(Host {
        name: "port-bound".into(),
        scope: ScopeId(config.scopes.len() as u32 - 1),
        hardware: None,
        client_id: None,
        fixed_addresses: vec![Ipv4Addr::new(10, 1, 0, 8)],
    });
    config.host_identifiers.push(HostIdentifier {
        host: HostId(0),
        option: OptionRef::Agent(1),
        data: b"sw1/port7".to_vec(),
    });
    let mut harness = Harness::new(config);
    let relayed = |port: &[u8]| {
        let mut info = relay::RelayAgentInformation::default();
        info.insert(relay::RelayInfo::AgentCircuitId(port.to_vec()));
        let mut discover = with(
            client(MessageType::Discover, MAC_A),
            DhcpOption::RelayAgentInformation(info),
        );
        discover.set_giaddr(Ipv4Addr::new(10, 1, 0, 1));
        discover
    };
    // ISC `find_hosts_by_option`, after the identifier and hardware address found nothing.
    let offer = harness.handle_on(NOW, &relayed(b"sw1/port7"), None);
    assert_eq!(yiaddr(&offer), Some(Ipv4Addr::new(10, 1, 0, 8)));
    let other_port = harness.handle_on(NOW, &relayed(b"sw1/port8"), None);
    assert_eq!(yiaddr(&other_port), Some(Ipv4Addr::new(10, 1, 0, 50)));
}

#[test]
fn min_secs_delays_offers() {
    let mut config = base_config(true);
    config.scopes[0] = Scope {
        min_secs: Some(5),
        ..config.scopes[0].clone()
    };
    let mut harness = Harness::new(config);
    let early = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    assert_eq!(early.outcome, Outcome::Ignored(IgnoreReason::TooEarly));
    let mut patient = client(MessageType::Discover, MAC_A);
    patient.set_secs(6);
    assert!(matches!(
        harness.handle(NOW, &patient).outcome,
        Outcome::Offered(_)
    ));
}

#[test]
fn discovers_dropped_for_min_secs_or_unknown_clients_consume_no_address() {
    let mut config = base_config(true);
    config.scopes[0].min_secs = Some(5);
    config.scopes[0].unknown_clients = Some(Permission::Deny);
    config.scopes.push(scope(GLOBAL));
    config.hosts.push(Host {
        name: "known".into(),
        scope: ScopeId(config.scopes.len() as u32 - 1),
        hardware: Some(HardwareAddress {
            htype: 1,
            address: MAC_A.to_vec(),
        }),
        client_id: None,
        fixed_addresses: Vec::new(),
    });
    let mut harness = Harness::new(config);
    // ISC `ack_lease` drops these after `allocate_lease` pointed at the head of the free
    // queue, which stays there.
    for secs in [0, 4] {
        let mut early = client(MessageType::Discover, MAC_A);
        early.set_secs(secs);
        let decision = harness.handle(NOW, &early);
        assert_eq!(decision.outcome, Outcome::Ignored(IgnoreReason::TooEarly));
    }
    let mut stranger = client(MessageType::Discover, MAC_B);
    stranger.set_secs(10);
    let decision = harness.handle(NOW, &stranger);
    assert_eq!(decision.outcome, Outcome::Ignored(IgnoreReason::Denied));
    let mut patient = client(MessageType::Discover, MAC_A);
    patient.set_secs(5);
    assert_eq!(
        harness.handle(NOW, &patient).outcome,
        Outcome::Offered(POOL_FIRST)
    );
}
