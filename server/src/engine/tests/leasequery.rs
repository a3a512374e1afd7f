//! DHCPLEASEQUERY (RFC 4388) as ISC dhcpd 4.4's `dhcpleasequery` answers it
//! (server/dhcpleasequery.c): permission, the three kinds of query, the three answers and the
//! options of an active one. The wire comparison with ISC is difftest 66-leasequery.

use std::net::Ipv4Addr;

use dhcproto::v4::{MessageType, OptionCode};

use super::*;
use crate::config::model::Permission;
use crate::engine::{Destination, IgnoreReason, Outcome};

const RELAY: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);

fn config(permission: Option<Permission>, at: ScopeId) -> Config {
    let mut config = base_config(true);
    config.scopes[at.0 as usize].leasequery = permission;
    config
}

/// A relayed DORA of `mac` in 10.1.0.0/24 with a vendor class and a client identifier.
fn bind_relayed(harness: &mut Harness, now: u32, mac: [u8; 6], id: &[u8]) -> Ipv4Addr {
    let discover = dhcp_test_messages::ClientMessage::new(MessageType::Discover, mac)
        .relayed_by(RELAY)
        .client_id(id)
        .raw_option(60, b"docsis3.0")
        .raw_option(82, &[1, 4, b'p', b'o', b'r', b't', 2, 2, 0xaa, 0xbb])
        .build();
    let offer = harness.handle(now, &discover);
    let address = yiaddr(&offer).expect("an offer");
    let request = dhcp_test_messages::ClientMessage::new(MessageType::Request, mac)
        .relayed_by(RELAY)
        .client_id(id)
        .requested(address)
        .server_id(INTERFACE)
        .raw_option(60, b"docsis3.0")
        .raw_option(82, &[1, 4, b'p', b'o', b'r', b't', 2, 2, 0xaa, 0xbb])
        .build();
    let ack = harness.handle(now, &request);
    assert_eq!(reply_type(&ack), Some(MessageType::Ack));
    address
}

fn query() -> dhcp_test_messages::ClientMessage {
    dhcp_test_messages::ClientMessage::new(MessageType::LeaseQuery, [0; 6]).relayed_by(RELAY)
}

fn option(decision: &Decision, code: u8) -> Option<Vec<u8>> {
    let reply = decision.reply.as_ref()?;
    reply
        .decoded()
        .opts()
        .get(OptionCode::from(code))
        .and_then(crate::engine::packet::option_value)
}

#[test]
fn denied_by_default_and_without_giaddr() {
    let mut harness = Harness::new(config(None, GLOBAL));
    let decision = harness.handle(NOW, &query().ciaddr(Ipv4Addr::new(10, 1, 0, 50)).build());
    assert_eq!(decision.outcome, Outcome::Ignored(IgnoreReason::Denied));
    assert!(decision.reply.is_none());

    let mut harness = Harness::new(config(Some(Permission::Allow), GLOBAL));
    let direct = dhcp_test_messages::ClientMessage::new(MessageType::LeaseQuery, MAC_A)
        .ciaddr(Ipv4Addr::new(10, 1, 0, 50))
        .build();
    let decision = harness.handle(NOW, &direct);
    assert!(decision.reply.is_none(), "ISC: missing giaddr, no reply");
}

/// ISC looks `leasequery` up in the scope of giaddr's subnet: allowed in 10.1.0.0/24, a
/// relay in another subnet is refused; `deny` in the subnet beats a global `allow`.
#[test]
fn permission_is_the_relay_subnets() {
    let mut harness = Harness::new(config(Some(Permission::Allow), SUBNET_RELAYED));
    let decision = harness.handle(NOW, &query().ciaddr(Ipv4Addr::new(10, 1, 0, 50)).build());
    assert_eq!(reply_type(&decision), Some(MessageType::LeaseUnassigned));
    let other_relay = dhcp_test_messages::ClientMessage::new(MessageType::LeaseQuery, [0; 6])
        .relayed_by(Ipv4Addr::new(10, 0, 0, 2))
        .ciaddr(Ipv4Addr::new(10, 1, 0, 50))
        .build();
    let decision = harness.handle(NOW, &other_relay);
    assert_eq!(decision.outcome, Outcome::Ignored(IgnoreReason::Denied));

    let mut config = config(Some(Permission::Allow), GLOBAL);
    config.scopes[SUBNET_RELAYED.0 as usize].leasequery = Some(Permission::Deny);
    let mut harness = Harness::new(config);
    let decision = harness.handle(NOW, &query().ciaddr(Ipv4Addr::new(10, 1, 0, 50)).build());
    assert_eq!(decision.outcome, Outcome::Ignored(IgnoreReason::Denied));
}

#[test]
fn by_address_active_lease_carries_isc_options() {
    let mut harness = Harness::new(config(Some(Permission::Allow), GLOBAL));
    let address = bind_relayed(&mut harness, NOW, MAC_A, b"\x01cpe-a");
    let later = NOW + 600;
    let decision = harness.handle(later, &query().ciaddr(address).build());
    assert_eq!(reply_type(&decision), Some(MessageType::LeaseActive));
    assert_eq!(
        decision.outcome,
        Outcome::LeaseQueried {
            answer: 13,
            associated: 0
        }
    );
    let reply = decision.reply.as_ref().unwrap();
    assert_eq!(reply.destination, Destination::Relay(RELAY));
    assert_eq!(reply.decoded().chaddr(), &MAC_A);
    assert_eq!(reply.decoded().ciaddr(), address);
    let lease = harness.leases.get(address).unwrap().clone();
    let duration = lease.ends - lease.starts;
    let be = |value: u32| value.to_be_bytes().to_vec();
    assert_eq!(option(&decision, 51), Some(be(lease.ends - later)));
    assert_eq!(
        option(&decision, 58),
        Some(be(lease.starts + duration / 2 - later))
    );
    assert_eq!(
        option(&decision, 59),
        Some(be(lease.starts
            + duration / 2
            + duration / 4
            + duration / 8
            - later))
    );
    assert_eq!(option(&decision, 61), Some(b"\x01cpe-a".to_vec()));
    assert_eq!(option(&decision, 60), Some(b"docsis3.0".to_vec()));
    assert_eq!(option(&decision, 91), Some(be(600)));
    assert_eq!(option(&decision, 54), Some(INTERFACE.octets().to_vec()));
    // The relay agent information stashed at the DHCPACK, last.
    assert_eq!(reply.option_order.last(), Some(&82));
    assert_eq!(
        option(&decision, 82),
        Some(vec![1, 4, b'p', b'o', b'r', b't', 2, 2, 0xaa, 0xbb])
    );
    assert!(option(&decision, 92).is_none());
    assert!(
        option(&decision, 1).is_none(),
        "no subnet mask: nothing of the scopes"
    );
}

#[test]
fn by_address_unknown_and_unassigned() {
    let mut config = config(Some(Permission::Allow), GLOBAL);
    config.scopes[SUBNET_RELAYED.0 as usize]
        .options
        .push((3, vec![10, 1, 0, 1]));
    let mut harness = Harness::new(config);
    // In a pool, never leased: ISC has a FREE lease for it.
    let decision = harness.handle(NOW, &query().ciaddr(Ipv4Addr::new(10, 1, 0, 55)).build());
    assert_eq!(reply_type(&decision), Some(MessageType::LeaseUnassigned));
    // The relay's scope options come along (ISC answers from that option state).
    assert_eq!(option(&decision, 3), Some(vec![10, 1, 0, 1]));
    // Outside every pool.
    let decision = harness.handle(NOW, &query().ciaddr(Ipv4Addr::new(10, 9, 0, 1)).build());
    assert_eq!(reply_type(&decision), Some(MessageType::LeaseUnknown));
    assert_eq!(decision.reply.as_ref().unwrap().decoded().chaddr(), &[0; 6]);
}

/// By client identifier and by MAC: the newest active lease answers, ciaddr says which, and the
/// client's other active leases are option 92; a released lease is "unassigned".
#[test]
fn by_client_id_and_mac_with_associated_addresses() {
    let mut harness = Harness::new(config(Some(Permission::Allow), GLOBAL));
    let first = bind_relayed(&mut harness, NOW, MAC_A, b"\x01multi");
    // A second lease for the same client: a local DORA with the same identifier.
    let discover = dhcp_test_messages::ClientMessage::new(MessageType::Discover, MAC_A)
        .client_id(b"\x01multi")
        .build();
    let offer = harness.handle(NOW + 10, &discover);
    let second = yiaddr(&offer).unwrap();
    let request = dhcp_test_messages::ClientMessage::new(MessageType::Request, MAC_A)
        .client_id(b"\x01multi")
        .requested(second)
        .server_id(INTERFACE)
        .build();
    assert_eq!(
        reply_type(&harness.handle(NOW + 10, &request)),
        Some(MessageType::Ack)
    );
    let decision = harness.handle(NOW + 20, &query().client_id(b"\x01multi").build());
    assert_eq!(reply_type(&decision), Some(MessageType::LeaseActive));
    let reply = decision.reply.as_ref().unwrap();
    assert_eq!(reply.decoded().ciaddr(), second, "the latest cltt answers");
    assert_eq!(option(&decision, 92), Some(first.octets().to_vec()));
    assert_eq!(
        decision.outcome,
        Outcome::LeaseQueried {
            answer: 13,
            associated: 1
        }
    );

    let by_mac = dhcp_test_messages::ClientMessage::new(MessageType::LeaseQuery, MAC_A)
        .relayed_by(RELAY)
        .build();
    let decision = harness.handle(NOW + 20, &by_mac);
    assert_eq!(reply_type(&decision), Some(MessageType::LeaseActive));

    let unknown = dhcp_test_messages::ClientMessage::new(MessageType::LeaseQuery, MAC_B)
        .relayed_by(RELAY)
        .build();
    let decision = harness.handle(NOW + 20, &unknown);
    assert_eq!(reply_type(&decision), Some(MessageType::LeaseUnknown));
    assert_eq!(
        decision.reply.as_ref().unwrap().decoded().ciaddr(),
        Ipv4Addr::UNSPECIFIED
    );
}

#[test]
fn released_lease_is_unassigned() {
    let mut harness = Harness::new(config(Some(Permission::Allow), GLOBAL));
    let address = bind_relayed(&mut harness, NOW, MAC_A, b"\x01gone");
    let release = dhcp_test_messages::ClientMessage::new(MessageType::Release, MAC_A)
        .ciaddr(address)
        .client_id(b"\x01gone")
        .server_id(INTERFACE)
        .build();
    let _ = harness.handle(NOW + 5, &release);
    let decision = harness.handle(NOW + 6, &query().ciaddr(address).build());
    assert_eq!(reply_type(&decision), Some(MessageType::LeaseUnassigned));
    assert!(option(&decision, 51).is_none());
}

/// RFC 6926 bulk leasequery, the engine's half (the TCP framing and a 1,000-lease stream are in
/// tests/integration/loopback_bulk_leasequery.rs): by remote-id, refused without
/// `allow leasequery`, malformed with two query kinds.
#[test]
fn bulk_by_remote_id_permission_and_malformed() {
    let mut harness = Harness::new(config(Some(Permission::Allow), GLOBAL));
    let address = bind_relayed(&mut harness, NOW, MAC_A, b"\x01bulk");
    let _ = bind_relayed(&mut harness, NOW, MAC_B, b"\x01other");
    let query = |agent: &[u8], ciaddr: Ipv4Addr| {
        dhcp_test_messages::ClientMessage::new(MessageType::BulkLeaseQuery, [0; 6])
            .xid(77)
            .ciaddr(ciaddr)
            .raw_option(82, agent)
            .build()
    };
    let snapshot = harness.snapshot();
    let answer = |harness: &Harness, message: &dhcproto::v4::Message| {
        harness.engine.bulk_lease_query(
            NOW + 1,
            &snapshot,
            RELAY,
            Some(INTERFACE),
            message,
            &harness.leases,
        )
    };
    // Both clients came through the same relay with the same remote-id: both are streamed.
    let replies = answer(&harness, &query(&[2, 2, 0xaa, 0xbb], Ipv4Addr::UNSPECIFIED));
    assert_eq!(replies.len(), 3);
    assert!(replies.iter().all(|reply| reply.xid() == 77));
    assert_eq!(replies[0].opts().msg_type(), Some(MessageType::LeaseActive));
    assert_eq!(
        replies[2].opts().msg_type(),
        Some(MessageType::LeaseQueryDone)
    );
    assert!(replies[..2].iter().any(|reply| reply.ciaddr() == address));
    let replies = answer(&harness, &query(&[2, 1, 0xcc], Ipv4Addr::UNSPECIFIED));
    assert_eq!(replies.len(), 1, "nobody has that remote-id");

    let status = |reply: &dhcproto::v4::Message| {
        reply
            .opts()
            .get(OptionCode::BulkLeaseQueryStatusCode)
            .and_then(crate::engine::packet::option_value)
            .and_then(|value| value.first().copied())
    };
    let replies = answer(&harness, &query(&[2, 2, 0xaa, 0xbb], address));
    assert_eq!(replies.len(), 1);
    assert_eq!(status(&replies[0]), Some(3), "MalformedQuery");

    let denied = Harness::new(config(None, GLOBAL));
    let replies = answer(&denied, &query(&[2, 2, 0xaa, 0xbb], Ipv4Addr::UNSPECIFIED));
    assert_eq!(status(&replies[0]), Some(4), "NotAllowed");
}
