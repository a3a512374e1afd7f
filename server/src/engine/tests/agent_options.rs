//! Values set in the `agent` space (dhcpd.conf(5) `option agent.NAME`): the relay agent
//! information option (82, RFC 3046) of a reply as ISC 4.4 builds it (server/dhcp.c
//! `maybe_return_agent_options`, `ack_lease`, `dhcpinform`, `nak_lease`; server/bootp.c). The
//! expected bytes are what ISC sends for the same configuration (the difftest corpus
//! `testdata/difftest/68-agent-options` compares them with a live ISC dhcpd).

use dhcproto::{Decodable, Decoder};

use super::*;
use crate::engine::Outcome;

const RELAY: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);

/// A global `agent-id`, a subnet that sets the circuit-id (relayed) and one whose
/// `default` sets the remote-id only when nothing set it (local).
fn config(local: &str, relayed: &str) -> Config {
    let text = format!(
        "authoritative;\ndefault-lease-time 600;\nmax-lease-time 7200;\n\
         option agent.agent-id 10.9.9.9;\n\
         subnet 10.0.0.0 netmask 255.255.255.0 {{\n  range 10.0.0.100 10.0.0.109;\n  {local}\n}}\n\
         subnet 10.1.0.0 netmask 255.255.255.0 {{\n  range 10.1.0.50 10.1.0.59;\n  {relayed}\n}}\n\
         host printer {{ hardware ethernet 02:00:00:00:00:0c; fixed-address 10.1.0.7; }}\n"
    );
    crate::config::parse_str(&text, "agent.conf").expect("config parses")
}

fn default_config() -> Config {
    config(
        "default agent.remote-id \"dflt\";",
        "option agent.circuit-id \"subnet\";",
    )
}

/// Sub-options as code, length, value.
fn sub_options(list: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (code, value) in list {
        out.push(*code);
        out.push(value.len() as u8);
        out.extend_from_slice(value);
    }
    out
}

/// `message` with option 82 as `payload`, decoded from the wire as the daemon receives it.
fn with_agent(message: dhcp_test_messages::ClientMessage, payload: &[u8]) -> Message {
    let bytes = message.raw_option(82, payload).encode();
    Message::decode(&mut Decoder::new(&bytes)).expect("decodes")
}

/// Option `code` as the reply puts it on the wire.
fn wire_option(decision: &Decision, code: u8) -> Option<Vec<u8>> {
    let options = &decision.reply.as_ref().expect("a reply").layout.options;
    let mut rest = options.as_slice();
    while let [have, tail @ ..] = rest {
        match *have {
            0 => rest = tail,
            255 => return None,
            _ => {
                let [length, tail @ ..] = tail else {
                    return None;
                };
                let value = tail.get(..usize::from(*length))?;
                if *have == code {
                    return Some(value.to_vec());
                }
                rest = &tail[usize::from(*length)..];
            }
        }
    }
    None
}

const AGENT_ID: (u8, &[u8]) = (3, &[10, 9, 9, 9]);

#[test]
fn configured_sub_options_replace_in_place_and_follow_the_relays() {
    let mut harness = Harness::new(default_config());
    let received = sub_options(&[(1, b"port-1"), (2, b"sub-1")]);
    let discover = with_agent(
        dhcp_test_messages::ClientMessage::new(MessageType::Discover, MAC_A).relayed_by(RELAY),
        &received,
    );
    let offer = harness.handle_on(NOW, &discover, None);
    assert_eq!(reply_type(&offer), Some(MessageType::Offer));
    // The subnet's circuit-id takes the relay's place; the global agent-id comes last.
    let expected = sub_options(&[(1, b"subnet"), (2, b"sub-1"), AGENT_ID]);
    assert_eq!(wire_option(&offer, 82), Some(expected.clone()));
    // Option 82 stays the last option (RFC 3046 §2.2, ISC `cons_options`).
    let order = &offer.reply.as_ref().unwrap().option_order;
    assert_eq!(order.last(), Some(&82));

    let address = yiaddr(&offer).unwrap();
    let request = with_agent(
        dhcp_test_messages::ClientMessage::new(MessageType::Request, MAC_A)
            .relayed_by(RELAY)
            .requested(address)
            .server_id(INTERFACE),
        &received,
    );
    let ack = harness.handle_on(NOW, &request, None);
    assert_eq!(ack.outcome, Outcome::Acked(address));
    assert_eq!(wire_option(&ack, 82), Some(expected));
    // ISC stashes the list the statements changed (it shares it with the request).
    let stashed = &ack.commit[0].extra.as_ref().expect("stashed").agent_options;
    assert_eq!(
        stashed,
        &vec![
            (1, b"subnet".to_vec()),
            (2, b"sub-1".to_vec()),
            (3, vec![10, 9, 9, 9])
        ]
    );

    // A unicast renewal past the relay: the stash is not echoed, the configured sub-options
    // are sent alone, in execution order (global first), and the stash stays.
    let renewal = dhcp_test_messages::ClientMessage::new(MessageType::Request, MAC_A)
        .ciaddr(address)
        .build();
    let renewed = harness.handle(NOW + 300, &renewal);
    assert_eq!(renewed.outcome, Outcome::Acked(address));
    assert_eq!(
        wire_option(&renewed, 82),
        Some(sub_options(&[AGENT_ID, (1, b"subnet")]))
    );
    let kept = &renewed.commit[0]
        .extra
        .as_ref()
        .expect("kept")
        .agent_options;
    assert_eq!(kept, stashed);
}

#[test]
fn a_direct_client_gets_the_configured_sub_options() {
    let mut harness = Harness::new(default_config());
    let ack = bind(&mut harness, NOW, MAC_A);
    assert_eq!(reply_type(&ack), Some(MessageType::Ack));
    // No relay, no option 82 in the request: ISC sends what the statements set, in their
    // order (global agent-id, then the subnet's default remote-id).
    assert_eq!(
        wire_option(&ack, 82),
        Some(sub_options(&[AGENT_ID, (2, b"dflt")]))
    );
    // Nothing to stash.
    assert!(ack.commit[0]
        .extra
        .as_ref()
        .is_none_or(|extra| extra.agent_options.is_empty()));
}

#[test]
fn default_keeps_and_append_extends_what_the_relay_sent() {
    let mut harness = Harness::new(config(
        "default agent.remote-id \"dflt\";",
        "append agent.circuit-id \"-x\"; default agent.remote-id \"dflt\";",
    ));
    let received = sub_options(&[(1, b"port"), (2, b"sub")]);
    let discover = with_agent(
        dhcp_test_messages::ClientMessage::new(MessageType::Discover, MAC_A).relayed_by(RELAY),
        &received,
    );
    let offer = harness.handle_on(NOW, &discover, None);
    assert_eq!(
        wire_option(&offer, 82),
        Some(sub_options(&[(1, b"port-x"), (2, b"sub"), AGENT_ID]))
    );
    // Relayed without option 82: `append` sets the value alone.
    let bare = dhcp_test_messages::ClientMessage::new(MessageType::Discover, MAC_B)
        .relayed_by(RELAY)
        .build();
    let offer = harness.handle_on(NOW, &bare, None);
    assert_eq!(
        wire_option(&offer, 82),
        Some(sub_options(&[AGENT_ID, (1, b"-x"), (2, b"dflt")]))
    );
}

#[test]
fn inform_merges_and_nak_only_echoes() {
    let mut harness = Harness::new(default_config());
    let received = sub_options(&[(1, b"port-9")]);
    let inform = with_agent(
        dhcp_test_messages::ClientMessage::new(MessageType::Inform, MAC_A)
            .relayed_by(RELAY)
            .ciaddr(Ipv4Addr::new(10, 1, 0, 20)),
        &received,
    );
    let informed = harness.handle_on(NOW, &inform, None);
    assert_eq!(informed.outcome, Outcome::Informed);
    assert_eq!(
        wire_option(&informed, 82),
        Some(sub_options(&[(1, b"subnet"), AGENT_ID]))
    );
    let direct = dhcp_test_messages::ClientMessage::new(MessageType::Inform, MAC_B)
        .ciaddr(Ipv4Addr::new(10, 0, 0, 20))
        .build();
    let informed = harness.handle(NOW, &direct);
    assert_eq!(
        wire_option(&informed, 82),
        Some(sub_options(&[AGENT_ID, (2, b"dflt")]))
    );

    // A relayed INIT-REBOOT for an address of the other subnet: ISC `nak_lease` runs no
    // option statements into the reply and echoes the request's option 82 as it came.
    let reboot = with_agent(
        dhcp_test_messages::ClientMessage::new(MessageType::Request, MAC_A)
            .relayed_by(RELAY)
            .requested(Ipv4Addr::new(10, 0, 0, 105)),
        &received,
    );
    let nak = harness.handle_on(NOW, &reboot, None);
    assert_eq!(reply_type(&nak), Some(MessageType::Nak));
    assert_eq!(wire_option(&nak, 82), Some(received));
}

#[test]
fn bootp_for_a_fixed_address_sends_only_the_configured_sub_options() {
    let mut harness = Harness::new(default_config());
    let received = sub_options(&[(1, b"port-13")]);
    let mut mac = MAC_A;
    mac[5] = 0x0c;
    let request = with_agent(
        dhcp_test_messages::ClientMessage::bootp(mac).relayed_by(RELAY),
        &received,
    );
    let reply = harness.handle_on(NOW, &request, Some(INTERFACE));
    let message = &reply.reply.as_ref().expect("a BOOTREPLY").decoded();
    assert_eq!(message.yiaddr(), Ipv4Addr::new(10, 1, 0, 7));
    // server/bootp.c echoes nothing; the statements' sub-options are sent.
    assert_eq!(
        wire_option(&reply, 82),
        Some(sub_options(&[AGENT_ID, (1, b"subnet")]))
    );
    // Without `next-server`, siaddr is the server's own address (the interface the request
    // came in on here).
    assert_eq!(message.siaddr(), INTERFACE);
}

#[test]
fn without_agent_statements_option_82_is_echoed_as_received() {
    let received = sub_options(&[(1, b"a"), (2, b"b")]);
    let discover = with_agent(
        dhcp_test_messages::ClientMessage::new(MessageType::Discover, MAC_A).relayed_by(RELAY),
        &received,
    );
    // The global agent-id alone is enough to change the reply's option 82 …
    let mut harness = Harness::new(config("", ""));
    let merged = harness.handle_on(NOW, &discover, None);
    assert_eq!(
        wire_option(&merged, 82),
        Some(sub_options(&[(1, b"a"), (2, b"b"), AGENT_ID]))
    );
    // … and without any agent statement the relay's option 82 comes back as it came.
    let text =
        "authoritative;\nsubnet 10.1.0.0 netmask 255.255.255.0 { range 10.1.0.50 10.1.0.59; }\n\
                subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.100 10.0.0.109; }\n";
    let plain = crate::config::parse_str(text, "plain.conf").expect("config parses");
    let mut harness = Harness::new(plain);
    let echoed = harness.handle_on(NOW, &discover, None);
    assert_eq!(reply_type(&echoed), Some(MessageType::Offer));
    assert_eq!(wire_option(&echoed, 82), Some(received));
    let direct = harness.handle(NOW, &client(MessageType::Discover, MAC_B));
    assert_eq!(reply_type(&direct), Some(MessageType::Offer));
    assert_eq!(wire_option(&direct, 82), None);
}

#[test]
fn stash_agent_options_false_keeps_the_lease_without_the_relays_information() {
    let mut harness = Harness::new(config(
        "",
        "stash-agent-options false; option agent.circuit-id \"subnet\";",
    ));
    let received = sub_options(&[(1, b"port-1"), (2, b"sub-1")]);
    let discover = with_agent(
        dhcp_test_messages::ClientMessage::new(MessageType::Discover, MAC_A).relayed_by(RELAY),
        &received,
    );
    let address = yiaddr(&harness.handle_on(NOW, &discover, None)).unwrap();
    let request = with_agent(
        dhcp_test_messages::ClientMessage::new(MessageType::Request, MAC_A)
            .relayed_by(RELAY)
            .requested(address)
            .server_id(INTERFACE),
        &received,
    );
    let ack = harness.handle_on(NOW, &request, None);
    assert_eq!(ack.outcome, Outcome::Acked(address));
    // The reply is built as always; the lease keeps nothing for renewals.
    assert_eq!(
        wire_option(&ack, 82),
        Some(sub_options(&[(1, b"subnet"), (2, b"sub-1"), AGENT_ID]))
    );
    assert!(ack.commit[0]
        .extra
        .as_ref()
        .is_none_or(|extra| extra.agent_options.is_empty()));
}
