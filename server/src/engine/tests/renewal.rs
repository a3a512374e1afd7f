//! Unicast renewals that bypass the relay agent (RFC 3046 §2.1; ISC `do_packet`): the relay
//! agent information stashed on the lease stands in for the missing option 82.

use std::net::Ipv4Addr;

use dhcproto::v4::{relay, DhcpOption, MessageType};

use super::*;
use crate::config::expr::{Expr, OptionRef};
use crate::config::model::{Class, ClassId, Permit, PermitKind};
use crate::engine::{Destination, Outcome};

const RELAY: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);

/// `class "by-remote-id" { match option agent.remote-id; }` with a subclass "sub-0001", and
/// the relayed subnet's pool `allow members of "by-remote-id"`.
fn remote_id_pool() -> Config {
    let mut config = base_config(true);
    config.scopes.push(scope(GLOBAL));
    let class_scope = ScopeId(config.scopes.len() as u32 - 1);
    config.classes.push(Class {
        name: "by-remote-id".into(),
        scope: class_scope,
        match_if: None,
        match_data: Some(Expr::Option(OptionRef::Agent(2))),
        spawning: false,
        lease_limit: 0,
        subclasses: vec![crate::config::model::Subclass {
            data: b"sub-0001".to_vec(),
            scope: None,
            lease_limit: 0,
        }],
    });
    config.pools[1].permits = vec![Permit {
        allow: true,
        kind: PermitKind::MembersOf(ClassId(0)),
    }];
    config
}

fn relayed(mut message: dhcproto::v4::Message, remote_id: &[u8]) -> dhcproto::v4::Message {
    let mut info = relay::RelayAgentInformation::default();
    info.insert(relay::RelayInfo::AgentCircuitId(b"olt1/1/2".to_vec()));
    info.insert(relay::RelayInfo::AgentRemoteId(remote_id.to_vec()));
    message.set_giaddr(RELAY);
    with(message, DhcpOption::RelayAgentInformation(info))
}

/// A RENEWING DHCPREQUEST: ciaddr set, unicast from the client past the relay agent, so
/// without giaddr and without option 82.
fn renewing(mac: [u8; 6], address: Ipv4Addr) -> dhcproto::v4::Message {
    let mut message = client(MessageType::Request, mac);
    message.set_ciaddr(address);
    message
}

#[test]
fn unicast_renewal_is_classified_with_the_relay_information_stashed_on_its_lease() {
    let mut harness = Harness::new(remote_id_pool());
    let offer = harness.handle_on(
        NOW,
        &relayed(client(MessageType::Discover, MAC_A), b"sub-0001"),
        None,
    );
    let address = yiaddr(&offer).expect("the subscriber is offered an address of its pool");
    assert_eq!(address, Ipv4Addr::new(10, 1, 0, 50));
    let ack = harness.handle_on(
        NOW,
        &relayed(selecting(MAC_A, address, INTERFACE), b"sub-0001"),
        None,
    );
    assert_eq!(ack.outcome, Outcome::Acked(address));

    // At T1 the client unicasts: the relay agent adds nothing. ISC classifies the request
    // with the stashed sub-options, so the pool still admits the client.
    let renewal = harness.handle(NOW + 900, &renewing(MAC_A, address));
    assert_eq!(renewal.outcome, Outcome::Acked(address));
    let reply = renewal.reply.expect("reply");
    assert_eq!(reply.destination, Destination::Unicast(address));
    // The stashed information is not echoed (RFC 3046 §2.2 echoes what the relay sent).
    assert!(reply
        .decoded()
        .opts()
        .get(dhcproto::v4::OptionCode::RelayAgentInformation)
        .is_none());
    // The lease keeps the stashed sub-options for the next renewal.
    let extra = renewal.commit[0]
        .extra
        .as_ref()
        .expect("agent options kept");
    assert_eq!(extra.agent_options[1], (2, b"sub-0001".to_vec()));
}

#[test]
fn stashed_relay_information_serves_only_the_lease_holder_while_the_lease_runs() {
    let mut harness = Harness::new(remote_id_pool());
    let offer = harness.handle_on(
        NOW,
        &relayed(client(MessageType::Discover, MAC_A), b"sub-0001"),
        None,
    );
    let address = yiaddr(&offer).expect("offer");
    let ack = harness.handle_on(
        NOW,
        &relayed(selecting(MAC_A, address, INTERFACE), b"sub-0001"),
        None,
    );
    let ends = ack.commit[0].ends;
    // Another client claiming the address is not classified with the holder's information.
    let other = harness.handle(NOW + 1, &renewing(MAC_B, address));
    assert_ne!(other.outcome, Outcome::Acked(address));
    // Past the lease's end the client must go through the relay again (ISC: "make it go
    // through the process of getting its agent options legally").
    let late = harness.handle(ends + 1, &renewing(MAC_A, address));
    assert_ne!(late.outcome, Outcome::Acked(address));
}
