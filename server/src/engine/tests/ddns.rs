//! Dynamic DNS at DHCPACK: the option 81 answer (RFC 4702, ISC `ddns_updates`) and the
//! settings the daemon hands to the updater, for option 81 as it arrives on the wire.

use dhcproto::v4::{DhcpOption, MessageType, OptionCode};
use dhcproto::{Encodable, Encoder};

use super::*;
use crate::config::model::{HardwareAddress, Host};

fn ddns_config() -> Config {
    let mut config = base_config(true);
    config.ddns.style = Some(crate::ddns::Style::Standard);
    config.scopes[0].options = vec![(15, b"example.net".to_vec())];
    config
}

/// `message` with option 81 `value` added, as the daemon decodes it from the wire.
fn with_fqdn(message: &Message, value: &[u8]) -> Message {
    let mut bytes = Vec::new();
    message.encode(&mut Encoder::new(&mut bytes)).unwrap();
    // Replace END by option 81, then END.
    let end = bytes.iter().rposition(|&byte| byte == 255).unwrap();
    bytes.truncate(end);
    bytes.extend_from_slice(&[81, value.len() as u8]);
    bytes.extend_from_slice(value);
    bytes.push(255);
    crate::net::decode::decode_message(&bytes).unwrap()
}

fn fqdn_of(decision: &Decision) -> Option<Vec<u8>> {
    let reply = decision.reply.as_ref()?;
    let bytes = reply.encode().unwrap();
    let mut options = &bytes[240..];
    while let [code, length, rest @ ..] = options {
        if *code == 81 {
            return Some(rest[..usize::from(*length)].to_vec());
        }
        options = &rest[usize::from(*length)..];
    }
    None
}

#[test]
fn the_ack_answers_option_81_and_the_daemon_gets_the_name() {
    for (sent, answered) in [
        // E set: the name in wire form under the server's domain; S and O set.
        (
            &b"\x05\x00\x00\x04host\x03lab\x00"[..],
            &b"\x07\xff\xff\x04host\x07example\x03net\x00"[..],
        ),
        // ASCII, S clear, qualified: the client updates its own A record.
        (
            &b"\x00\x00\x00me.client.org"[..],
            &b"\x00\xff\xffme.client.org"[..],
        ),
    ] {
        let mut harness = Harness::new(ddns_config());
        let offer = harness.handle(NOW, &with_fqdn(&client(MessageType::Discover, MAC_A), sent));
        // ISC answers option 81 only in the DHCPACK.
        assert_eq!(fqdn_of(&offer), None);
        let address = yiaddr(&offer).unwrap();
        let request = with_fqdn(&selecting(MAC_A, address, INTERFACE), sent);
        let ack = harness.handle(NOW, &request);
        assert_eq!(reply_type(&ack), Some(MessageType::Ack));
        assert_eq!(fqdn_of(&ack).as_deref(), Some(answered));
        let request_view = Request {
            message: &request,
            source: std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
            interface_address: Some(INTERFACE),
            raw: None,
        };
        let settings = harness
            .engine
            .ddns_settings(NOW, &harness.snapshot(), &request_view, address)
            .unwrap();
        if sent[0] & 1 == 1 {
            assert_eq!(settings.fwd_name.as_deref(), Some("host.example.net"));
            assert!(!settings.client_updates_a);
        } else {
            assert_eq!(settings.fwd_name.as_deref(), Some("me.client.org"));
            assert!(settings.client_updates_a);
        }
    }
}

#[test]
fn no_option_81_without_updates_or_without_the_clients() {
    // Style none: nothing, whatever the client sends.
    let mut harness = Harness::new(base_config(true));
    let discover = with_fqdn(
        &client(MessageType::Discover, MAC_A),
        b"\x05\x00\x00\x01a\x00",
    );
    let address = yiaddr(&harness.handle(NOW, &discover)).unwrap();
    let ack = harness.handle(
        NOW,
        &with_fqdn(
            &selecting(MAC_A, address, INTERFACE),
            b"\x05\x00\x00\x01a\x00",
        ),
    );
    assert_eq!(fqdn_of(&ack), None);
    // Updates on, no option 81 from the client: none in the reply, the host name is used.
    let mut harness = Harness::new(ddns_config());
    let named = with(
        client(MessageType::Discover, MAC_A),
        DhcpOption::Hostname("plain".into()),
    );
    let address = yiaddr(&harness.handle(NOW, &named)).unwrap();
    let request = with(
        selecting(MAC_A, address, INTERFACE),
        DhcpOption::Hostname("plain".into()),
    );
    let ack = harness.handle(NOW, &request);
    assert_eq!(fqdn_of(&ack), None);
    assert!(request.opts().get(OptionCode::ClientFQDN).is_none());
    let request_view = Request {
        message: &request,
        source: std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
        interface_address: Some(INTERFACE),
        raw: None,
    };
    let settings = harness
        .engine
        .ddns_settings(NOW, &harness.snapshot(), &request_view, address)
        .unwrap();
    assert_eq!(settings.fwd_name.as_deref(), Some("plain.example.net"));
}

/// `ddns-hostname = EXPR;` (dhcpd.conf(5) "DYNAMIC DNS UPDATES"): evaluated for the lease,
/// with `leased-address` the acknowledged address; a null value falls back to the client's
/// name as an unset `ddns-hostname` does.
#[test]
fn ddns_hostname_from_an_expression_names_the_lease() {
    let text = "authoritative;\nddns-update-style standard;\nddns-domainname \"example.net\";\n\
                subnet 10.0.0.0 netmask 255.255.255.0 {\n  range 10.0.0.100 10.0.0.109;\n  \
                ddns-hostname = pick-first-value(option agent.circuit-id, \
                concat(\"dhcp-\", binary-to-ascii(10, 8, \"-\", leased-address)));\n}\n";
    let config = crate::config::parse_str(text, "ddns.conf").expect("config");
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let mut harness = Harness::new(config);
    let address = yiaddr(&harness.handle(NOW, &client(MessageType::Discover, MAC_A))).unwrap();
    let request = selecting(MAC_A, address, INTERFACE);
    let ack = harness.handle(NOW, &request);
    assert_eq!(reply_type(&ack), Some(MessageType::Ack));
    let request_view = Request {
        message: &request,
        source: std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
        interface_address: Some(INTERFACE),
        raw: None,
    };
    let settings = harness
        .engine
        .ddns_settings(NOW, &harness.snapshot(), &request_view, address)
        .unwrap();
    let [a, b, c, d] = address.octets();
    assert_eq!(
        settings.fwd_name.as_deref(),
        Some(format!("dhcp-{a}-{b}-{c}-{d}.example.net").as_str())
    );
}

/// A host's fixed address (`update-static-leases`, dhcpd.conf(5)): the DHCPACK carries the
/// add of its names (no lease record does) and answers option 81; without the flag neither,
/// unless the client updates its own A record (ISC skips the static test then and adds the
/// PTR record).
#[test]
fn a_fixed_address_is_updated_only_with_update_static_leases() {
    let fixed = Ipv4Addr::new(10, 0, 0, 60);
    let harness_with = |update_static_leases: Option<bool>| {
        let mut config = ddns_config();
        let mut host_scope = scope(SUBNET_LOCAL);
        host_scope.ddns.update_static_leases = update_static_leases;
        config.scopes.push(host_scope);
        config.hosts.push(Host {
            name: "printer".into(),
            scope: ScopeId(config.scopes.len() as u32 - 1),
            hardware: Some(HardwareAddress {
                htype: 1,
                address: MAC_B.to_vec(),
            }),
            client_id: None,
            fixed_addresses: vec![fixed],
        });
        Harness::new(config)
    };
    let server_updates = b"\x05\x00\x00\x07printer\x00";
    let client_updates = b"\x04\x00\x00\x07printer\x03lab\x00";
    for (update_static_leases, sent, expected) in [
        (None, &server_updates[..], None),
        (Some(false), &server_updates[..], None),
        (
            Some(true),
            &server_updates[..],
            Some(("printer.example.net", true)),
        ),
        (None, &client_updates[..], Some(("printer.lab", false))),
    ] {
        let mut harness = harness_with(update_static_leases);
        let ack = harness.handle(NOW, &with_fqdn(&selecting(MAC_B, fixed, INTERFACE), sent));
        assert_eq!(reply_type(&ack), Some(MessageType::Ack));
        assert!(ack.commit.is_empty(), "a fixed address has no lease record");
        let reply = ack.reply.as_ref().unwrap();
        let operation = reply.static_lease_dns.as_ref();
        match expected {
            None => {
                assert_eq!(operation, None, "{update_static_leases:?}");
                assert_eq!(fqdn_of(&ack), None);
            }
            Some((name, server_adds_a)) => {
                let operation = operation.expect("the add of the fixed address's names");
                assert!(operation.static_lease);
                assert_eq!(operation.binding.address, fixed);
                assert_eq!(operation.binding.fwd_name.as_deref(), Some(name));
                assert_eq!(operation.binding.guard.is_some(), server_adds_a);
                assert_eq!(
                    operation.binding.rev_name.as_deref(),
                    Some("60.0.0.10.in-addr.arpa.")
                );
                assert!(fqdn_of(&ack).is_some());
                // Renewals must reach userspace, which updates at each DHCPACK as ISC does.
                assert_eq!(reply.cache_threshold, None);
            }
        }
    }
}
