//! Reply options: scope merging, ISC's `cons_options` order, T1/T2, option 82 echo, size limits
//! and the encoded wire form.

use std::net::Ipv4Addr;

use dhcproto::v4::{relay, DhcpOption, MessageType, OptionCode};

use super::*;
use crate::config::model::{HardwareAddress, Host};
use crate::engine::Outcome;

fn configured() -> Config {
    let mut config = base_config(true);
    config.scopes[0].options = vec![
        (6, vec![192, 0, 2, 53]),
        (15, b"example.net".to_vec()),
        (42, vec![192, 0, 2, 123]),
    ];
    config.scopes[SUBNET_LOCAL.0 as usize].options = vec![(3, vec![10, 0, 0, 1])];
    config
}

fn order(decision: &Decision) -> Vec<u8> {
    decision.reply.as_ref().expect("reply").option_order.clone()
}

#[test]
fn parameter_request_list_order_is_honoured_after_protocol_options() {
    let mut harness = Harness::new(configured());
    let discover = with(
        client(MessageType::Discover, MAC_A),
        DhcpOption::ParameterRequestList(
            [15u8, 6, 1, 3, 28]
                .into_iter()
                .map(OptionCode::from)
                .collect(),
        ),
    );
    let offer = harness.handle(NOW, &discover);
    // 53, 54, 51 first; then the PRL order; 28 is not configured; 42 was not requested.
    assert_eq!(order(&offer), vec![53, 54, 51, 15, 6, 1, 3]);
    let bytes = offer.reply.expect("reply").encode().expect("encodes");
    let options = &bytes[240..];
    assert_eq!(&options[..3], &[53, 1, 2]);
    assert_eq!(&options[3..9], &[54, 4, 10, 0, 0, 1]);
    assert_eq!(options[9], 51);
    assert_eq!(options[15], 15);
}

#[test]
fn subnet_mask_is_sent_even_when_not_requested_and_before_the_routers() {
    let mut harness = Harness::new(configured());
    let discover = with(
        client(MessageType::Discover, MAC_A),
        DhcpOption::ParameterRequestList(vec![OptionCode::Router]),
    );
    // ISC appends 1 for DISCOVER/REQUEST, then `store_options` puts it before 3 (RFC 2132
    // §3.3).
    assert_eq!(
        order(&harness.handle(NOW, &discover)),
        vec![53, 54, 51, 1, 3]
    );
}

#[test]
fn subnet_mask_takes_the_routers_place_when_the_list_asks_3_before_1() {
    let mut harness = Harness::new(configured());
    let discover = with(
        client(MessageType::Discover, MAC_A),
        prl(&[42, 15, 6, 3, 1]),
    );
    assert_eq!(
        order(&harness.handle(NOW, &discover)),
        vec![53, 54, 51, 42, 15, 6, 1, 3]
    );
}

#[test]
fn without_parameter_request_list_all_configured_options_are_sent() {
    let mut harness = Harness::new(configured());
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    assert_eq!(order(&offer), vec![53, 54, 51, 1, 3, 6, 15, 42]);
}

#[test]
fn more_specific_scope_wins_for_options() {
    let mut config = configured();
    config.scopes[POOL_LOCAL.0 as usize].options = vec![(6, vec![10, 0, 0, 53])];
    let mut harness = Harness::new(config);
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    assert_eq!(
        offer
            .reply
            .expect("reply")
            .decoded()
            .opts()
            .get(OptionCode::DomainNameServer),
        Some(&DhcpOption::DomainNameServer(vec![Ipv4Addr::new(
            10, 0, 0, 53
        )]))
    );
}

#[test]
fn host_scope_and_use_host_decl_names() {
    let mut config = configured();
    config.scopes[0].use_host_decl_names = Some(true);
    let mut host_scope = scope(GLOBAL);
    host_scope.options = vec![(15, b"hosts.example.net".to_vec())];
    host_scope.filename = Some(b"pxelinux.0".to_vec());
    host_scope.next_server = Some(Ipv4Addr::new(10, 0, 0, 9));
    config.scopes.push(host_scope);
    config.hosts.push(Host {
        name: "kiosk".into(),
        scope: ScopeId(config.scopes.len() as u32 - 1),
        hardware: Some(HardwareAddress {
            htype: 1,
            address: MAC_A.to_vec(),
        }),
        client_id: None,
        fixed_addresses: Vec::new(),
    });
    let mut harness = Harness::new(config);
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    let reply = offer.reply.expect("reply");
    let decoded = reply.decoded();
    let options = decoded.opts();
    assert_eq!(
        options.get(OptionCode::DomainName),
        Some(&DhcpOption::DomainName("hosts.example.net".into()))
    );
    assert_eq!(
        options.get(OptionCode::Hostname),
        Some(&DhcpOption::Hostname("kiosk".into()))
    );
    assert_eq!(reply.decoded().fname(), Some(&b"pxelinux.0"[..]));
    assert_eq!(reply.decoded().siaddr(), Ipv4Addr::new(10, 0, 0, 9));
}

#[test]
fn renewal_and_rebinding_times_only_when_configured_and_valid() {
    let mut harness = Harness::new(base_config(true));
    let plain = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    assert!(!order(&plain).contains(&58) && !order(&plain).contains(&59));

    let mut config = base_config(true);
    config.scopes[0].default_lease_time = Some(1000);
    config.scopes[0].options = vec![
        (58, 400u32.to_be_bytes().to_vec()),
        (59, 800u32.to_be_bytes().to_vec()),
    ];
    let mut harness = Harness::new(config);
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    assert_eq!(&order(&offer)[..5], &[53, 54, 51, 58, 59]);

    // A T2 beyond the lease time is dropped; T1 is then checked against the lease time.
    let mut config = base_config(true);
    config.scopes[0].default_lease_time = Some(600);
    config.scopes[0].options = vec![
        (58, 400u32.to_be_bytes().to_vec()),
        (59, 800u32.to_be_bytes().to_vec()),
    ];
    let mut harness = Harness::new(config);
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    assert!(order(&offer).contains(&58));
    assert!(!order(&offer).contains(&59));
}

#[test]
fn relay_agent_information_is_echoed_last_and_stashed() {
    let mut harness = Harness::new(configured());
    let mut info = relay::RelayAgentInformation::default();
    info.insert(relay::RelayInfo::AgentCircuitId(b"port-1/1/1".to_vec()));
    info.insert(relay::RelayInfo::AgentRemoteId(vec![0xde, 0xad]));
    let sent = DhcpOption::RelayAgentInformation(info);
    let mut discover = with(client(MessageType::Discover, MAC_A), sent.clone());
    discover.set_giaddr(Ipv4Addr::new(10, 1, 0, 1));
    let offer = harness.handle(NOW, &discover);
    let reply = offer.reply.as_ref().expect("reply");
    assert_eq!(reply.option_order.last(), Some(&82));
    assert_eq!(
        reply
            .decoded()
            .opts()
            .get(OptionCode::RelayAgentInformation),
        Some(&sent)
    );
    let bytes = reply.encode().expect("encodes");
    let expected_tail = [
        82, 16, 1, 10, b'p', b'o', b'r', b't', b'-', b'1', b'/', b'1', b'/', b'1', 2, 2, 0xde,
        0xad, 255,
    ];
    let end = bytes.iter().rposition(|byte| *byte == 255).expect("END");
    assert_eq!(&bytes[end + 1 - expected_tail.len()..=end], &expected_tail);

    let address = yiaddr(&offer).expect("offer");
    let mut request = with(selecting(MAC_A, address, INTERFACE), sent);
    request.set_giaddr(Ipv4Addr::new(10, 1, 0, 1));
    let ack = harness.handle(NOW, &request);
    let extra = ack.commit[0].extra.as_ref().expect("stashed agent options");
    assert_eq!(
        extra.agent_options,
        vec![(1, b"port-1/1/1".to_vec()), (2, vec![0xde, 0xad])]
    );
}

#[test]
fn options_beyond_576_bytes_are_dropped_unless_option_57_or_overload_allows() {
    let mut config = base_config(true);
    // Two 200-byte options: only one fits in the 312-byte default options area.
    config.scopes[0].options = vec![(15, vec![b'a'; 200]), (17, vec![b'b'; 200])];
    // With `filename` and `server-name` set, `file` and `sname` cannot take options (ISC
    // `dhcp_reply`): the second option is left out.
    let mut named = config.clone();
    named.scopes[0].filename = Some(b"pxelinux.0".to_vec());
    named.scopes[0].server_name = Some(b"boot".to_vec());
    let mut harness = Harness::new(named);
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    let kept = order(&offer);
    assert!(kept.contains(&15) && !kept.contains(&17));
    let reply = offer.reply.expect("reply");
    assert_eq!(reply.layout.overload(), 0);
    let bytes = reply.encode().expect("encodes");
    assert!(bytes.len() <= 576 - 28);
    assert_eq!(&bytes[108..118], b"pxelinux.0");

    // Without names, the rest of option 17 goes into `file` (RFC 2132 §9.3).
    let mut harness = Harness::new(config.clone());
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    let kept = order(&offer);
    assert!(kept.contains(&15) && kept.contains(&17));
    let reply = offer.reply.expect("reply");
    assert_eq!(reply.layout.overload(), 1);
    assert!(reply.encode().expect("encodes").len() <= 576 - 28);
    // Option 17 is split between the options area and `file`; read back, its pieces join
    // (RFC 3396 §7), as the client joins them.
    assert_eq!(reply.option(17).as_deref(), Some(&[b'b'; 200][..]));
    assert_eq!(reply.option(15).as_deref(), Some(&[b'a'; 200][..]));
    assert_eq!(reply.message_type(), Some(MessageType::Offer));
    assert_eq!(reply.option(52).as_deref(), Some(&[1][..]));
    assert_eq!(reply.option(18), None);

    let mut harness = Harness::new(config);
    let discover = with(
        client(MessageType::Discover, MAC_A),
        DhcpOption::MaxMessageSize(1500),
    );
    let offer = harness.handle(NOW, &discover);
    let kept = order(&offer);
    assert!(kept.contains(&15) && kept.contains(&17));
    assert_eq!(offer.reply.expect("reply").layout.overload(), 0);
}

#[test]
fn nak_carries_only_protocol_options() {
    let mut harness = Harness::new(configured());
    let request = with(
        client(MessageType::Request, MAC_A),
        DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 1, 0, 55)),
    );
    let nak = harness.handle(NOW, &request);
    assert_eq!(order(&nak), vec![53, 54, 56]);
}

/// A host added over OMAPI (docs/spec/omapi.md §8.2) with `statements`: its scope is the most specific, in
/// option assembly and lease times, as a dhcpd.conf host's is.
#[test]
fn dynamic_host_statements_set_options_and_lease_time() {
    let mut config = configured();
    config.scopes[0].default_lease_time = Some(43_200);
    config.scopes[0].max_lease_time = Some(86_400);
    let mut harness = Harness::new(config);
    let record = crate::lease::file::HostRecord {
        name: "h2".into(),
        dynamic: true,
        hardware: crate::lease::record::Hardware::new(1, &MAC_A),
        // ISC's canonical form (docs/spec/dhcpd-conf.md §8.5) next to the plain one.
        statements: vec![
            "supersede host-name = \"h2\";".into(),
            "supersede server.default-lease-time = 00:00:01:2c;".into(),
            "option domain-name \"omapi.example\";".into(),
        ],
        ..Default::default()
    };
    harness.hosts.modify(|set| set.apply(record, false));
    let requested = DhcpOption::ParameterRequestList(
        [1u8, 3, 12, 15].into_iter().map(OptionCode::from).collect(),
    );
    let offer = harness.handle(
        NOW,
        &with(client(MessageType::Discover, MAC_A), requested.clone()),
    );
    let address = yiaddr(&offer).expect("an offer");
    assert_eq!(reply_lease_time(&offer), Some(300));
    let ack = harness.handle(
        NOW,
        &with(selecting(MAC_A, address, INTERFACE), requested.clone()),
    );
    assert_eq!(reply_type(&ack), Some(MessageType::Ack));
    assert_eq!(reply_lease_time(&ack), Some(300));
    let reply = ack.reply.expect("reply");
    let decoded = reply.decoded();
    let options = decoded.opts();
    assert_eq!(
        options.get(OptionCode::Hostname),
        Some(&DhcpOption::Hostname("h2".into()))
    );
    assert_eq!(
        options.get(OptionCode::DomainName),
        Some(&DhcpOption::DomainName("omapi.example".into()))
    );
    // The subnet's router still comes from below the host scope.
    assert_eq!(
        options.get(OptionCode::Router),
        Some(&DhcpOption::Router(vec![Ipv4Addr::new(10, 0, 0, 1)]))
    );

    // Another client is untouched by the host's statements.
    let other = harness.handle(NOW, &with(client(MessageType::Discover, MAC_B), requested));
    assert_eq!(reply_lease_time(&other), Some(43_200));
    let other = other.reply.expect("reply");
    assert_eq!(other.decoded().opts().get(OptionCode::Hostname), None);
    assert_eq!(
        other.decoded().opts().get(OptionCode::DomainName),
        Some(&DhcpOption::DomainName("example.net".into()))
    );
}

fn prl(codes: &[u8]) -> DhcpOption {
    DhcpOption::ParameterRequestList(codes.iter().copied().map(OptionCode::from).collect())
}

#[test]
fn configured_client_identifier_only_when_asked_for_at_its_place_in_the_list() {
    let mut config = configured();
    config.scopes[SUBNET_LOCAL.0 as usize]
        .options
        .push((61, b"configured-id".to_vec()));
    let mut harness = Harness::new(config);
    // ISC `cons_options`: 61 has a place of its own only with echo-client-id; otherwise the
    // parameter request list decides, as for any option.
    let asks = with(client(MessageType::Discover, MAC_A), prl(&[1, 3, 61]));
    assert_eq!(
        order(&harness.handle(NOW, &asks)),
        vec![53, 54, 51, 1, 3, 61]
    );
    let silent = with(client(MessageType::Discover, MAC_B), prl(&[1, 3]));
    assert_eq!(order(&harness.handle(NOW, &silent)), vec![53, 54, 51, 1, 3]);
    // Without a list every configured option goes.
    let nolist = client(MessageType::Discover, [2, 0, 0, 0, 0, 0x0c]);
    assert!(order(&harness.handle(NOW, &nolist)).contains(&61));
}

#[test]
fn host_client_identifier_option_is_sent_when_asked_for() {
    let mut config = configured();
    let mut host_scope = scope(GLOBAL);
    // What the parser makes of `host … { option dhcp-client-identifier "thin-01"; }`.
    host_scope.options = vec![(61, b"thin-01".to_vec())];
    config.scopes.push(host_scope);
    config.hosts.push(Host {
        name: "thin-client".into(),
        scope: ScopeId(config.scopes.len() as u32 - 1),
        hardware: None,
        client_id: Some(b"thin-01".to_vec()),
        fixed_addresses: vec![Ipv4Addr::new(10, 0, 0, 9)],
    });
    let mut harness = Harness::new(config);
    let discover = with(
        with(client(MessageType::Discover, MAC_A), prl(&[1, 3, 61])),
        DhcpOption::ClientIdentifier(b"thin-01".to_vec()),
    );
    let offer = harness.handle(NOW, &discover);
    assert_eq!(yiaddr(&offer), Some(Ipv4Addr::new(10, 0, 0, 9)));
    assert_eq!(
        offer
            .reply
            .expect("reply")
            .decoded()
            .opts()
            .get(OptionCode::ClientIdentifier),
        Some(&DhcpOption::ClientIdentifier(b"thin-01".to_vec()))
    );
}

#[test]
fn nak_echoes_the_client_identifier_and_says_what_isc_says() {
    let mut config = configured();
    config.scopes[0].echo_client_id = Some(true);
    let mut harness = Harness::new(config);
    // INIT-REBOOT for an address of the other network, received on 10.0.0.1.
    let request = with(
        with(
            with(
                client(MessageType::Request, MAC_A),
                DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 1, 0, 55)),
            ),
            DhcpOption::ClientIdentifier(b"roamer-id".to_vec()),
        ),
        prl(&[1, 3, 15]),
    );
    let nak = harness.handle(NOW, &request);
    assert_eq!(nak.outcome, Outcome::Nacked);
    let reply = nak.reply.expect("nak");
    // ISC `nak_lease`: the PRL is ignored; the text is `find_lease`'s (RFC 6842 §3 for 61).
    assert_eq!(reply.option_order, vec![53, 54, 56, 61]);
    let decoded = reply.decoded();
    let options = decoded.opts();
    assert_eq!(
        options.get(OptionCode::Message),
        Some(&DhcpOption::Message(
            "requested address not available".into()
        ))
    );
    assert_eq!(
        options.get(OptionCode::ClientIdentifier),
        Some(&DhcpOption::ClientIdentifier(b"roamer-id".to_vec()))
    );
}

/// `Reply::encode` writes the BOOTP header itself; it is dhcproto's encoding of the same
/// header, byte for byte, and the options follow the cookie as laid out.
#[test]
fn the_encoded_header_is_dhcprotos_and_the_options_are_the_layouts() {
    let mut config = configured();
    config.scopes[0].filename = Some(b"pxelinux.0".to_vec());
    config.scopes[0].server_name = Some(b"boot".to_vec());
    let mut harness = Harness::new(config);
    let mut discover = client(MessageType::Discover, MAC_A);
    discover
        .set_giaddr(Ipv4Addr::new(10, 0, 0, 1))
        .set_hops(1)
        .set_flags(dhcproto::v4::Flags::default().set_broadcast());
    let offer = harness.handle(NOW, &discover);
    let reply = offer.reply.expect("reply");
    let bytes = reply.encode().expect("encodes");
    let mut header = reply.header.clone();
    header.opts_mut().clear();
    let mut expected = Vec::new();
    dhcproto::Encodable::encode(&header, &mut dhcproto::Encoder::new(&mut expected))
        .expect("dhcproto encodes the header");
    assert_eq!(&bytes[..236], &expected[..236]);
    assert_eq!(&bytes[236..240], &[99, 130, 83, 99]);
    assert_eq!(
        &bytes[240..240 + reply.layout.options.len()],
        &reply.layout.options[..]
    );
    // And the whole message decodes to what `decoded` says.
    let decoded =
        <dhcproto::v4::Message as dhcproto::Decodable>::decode(&mut dhcproto::Decoder::new(&bytes))
            .expect("decodes");
    assert_eq!(decoded.yiaddr(), reply.decoded().yiaddr());
    assert!(decoded
        .fname()
        .is_some_and(|file| file.starts_with(b"pxelinux.0")));
    assert_eq!(decoded.opts().msg_type(), Some(MessageType::Offer));
    assert_eq!(
        reply.decoded().opts().get(OptionCode::DomainNameServer),
        Some(&DhcpOption::DomainNameServer(vec![Ipv4Addr::new(
            192, 0, 2, 53
        )]))
    );
}
