//! Option overload (RFC 2132 §9.3) end to end, without privileges: requests whose options sit
//! in `file` or `sname` are decoded and answered as ISC dhcpd answers them; replies too large for
//! the client's maximum message size spill into `file` and `sname` with option 52 set, unless
//! `filename` / `server-name` fill them, and decode back to the same options; neither kind of
//! packet goes to the XDP fast path.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use dhcp_test_messages::{encode, ClientMessage};
use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use xdhcpd::engine::starvation::StarvationState;
use xdhcpd::engine::{Decision, Engine, Outcome, Request, Snapshot};
use xdhcpd::lease::store::LeaseStore;
use xdhcpd::net::decode::{decode_message, DecodeError, OptionArea};
use xdhcpd::xdp::sync::{self, NotEligible};

const NOW: u32 = 1_795_836_305;
const INTERFACE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x52];
const SNAME: std::ops::Range<usize> = 44..108;
const FILE: std::ops::Range<usize> = 108..236;

/// More configured options than the 312-byte options area of a 576-byte reply holds.
fn config(names: &str) -> String {
    format!(
        "authoritative;\ndefault-lease-time 3600;\nmax-lease-time 7200;\n{names}\n\
         subnet 10.0.0.0 netmask 255.255.255.0 {{\n  range 10.0.0.100 10.0.0.199;\n  \
         option routers 10.0.0.1;\n  option domain-name \"{}\";\n  option root-path \"{}\";\n  \
         option extensions-path \"{}\";\n  option nis-domain \"{}\";\n}}\n",
        "d".repeat(200),
        "r".repeat(120),
        "e".repeat(60),
        "n".repeat(40),
    )
}

struct Server {
    engine: Engine,
    store: LeaseStore,
    starvation: StarvationState,
}

impl Server {
    fn new(names: &str) -> Self {
        let config = xdhcpd::config::parse_str(&config(names), "overload.conf").expect("config");
        Self {
            store: LeaseStore::new(&config),
            starvation: StarvationState::default(),
            engine: Engine::new(Arc::new(config)),
        }
    }

    /// Decodes `bytes` as the daemon does and hands the message to the engine.
    fn handle(&mut self, bytes: &[u8]) -> (Message, Decision) {
        let message = decode_message(bytes).expect("decodes");
        let decision = self.engine.handle(
            NOW,
            &Snapshot::default(),
            &Request {
                message: &message,
                source: SocketAddrV4::new(message.ciaddr(), 68),
                interface_address: Some(INTERFACE),
                raw: None,
            },
            &mut self.store,
            &mut self.starvation,
        );
        (message, decision)
    }
}

fn request(kind: Option<MessageType>, options: Vec<DhcpOption>) -> Message {
    let message = match kind {
        Some(kind) => ClientMessage::new(kind, MAC),
        None => ClientMessage::bootp(MAC),
    };
    options
        .into_iter()
        .fold(message.xid(0x0052_0052), ClientMessage::option)
        .build()
}

/// `message`'s bytes with `file` and `sname` replaced (zero padded).
fn with_fields(message: &Message, file: &[u8], sname: &[u8]) -> Vec<u8> {
    let mut bytes = encode(message);
    bytes[FILE].fill(0);
    bytes[FILE][..file.len()].copy_from_slice(file);
    bytes[SNAME].fill(0);
    bytes[SNAME][..sname.len()].copy_from_slice(sname);
    bytes
}

fn offered(decision: &Decision) -> bool {
    matches!(decision.outcome, Outcome::Offered(_))
}

#[test]
fn a_discover_with_its_message_type_in_file_or_sname_gets_an_offer() {
    let mut server = Server::new("");
    // Message type in `file` (52 = 1).
    let bare = request(None, vec![DhcpOption::OptionOverload(1)]);
    let (message, decision) = server.handle(&with_fields(&bare, &[53, 1, 1, 255], b""));
    assert_eq!(message.opts().msg_type(), Some(MessageType::Discover));
    assert!(offered(&decision), "{:?}", decision.outcome);
    // In `sname` (52 = 2), after padding.
    let bare = request(None, vec![DhcpOption::OptionOverload(2)]);
    let (_, decision) = server.handle(&with_fields(&bare, b"", &[0, 0, 53, 1, 1, 255]));
    assert!(offered(&decision), "{:?}", decision.outcome);
    // Both (52 = 3): the type in `sname`, the parameter request list split over the options
    // area and `file` (RFC 3396: concatenated in that order).
    let bare = request(
        None,
        vec![
            DhcpOption::OptionOverload(3),
            DhcpOption::ParameterRequestList(vec![OptionCode::SubnetMask]),
        ],
    );
    let (message, decision) =
        server.handle(&with_fields(&bare, &[55, 1, 3, 255], &[53, 1, 1, 255]));
    assert!(offered(&decision), "{:?}", decision.outcome);
    assert_eq!(
        message.opts().get(OptionCode::ParameterRequestList),
        Some(&DhcpOption::ParameterRequestList(vec![
            OptionCode::SubnetMask,
            OptionCode::Router
        ]))
    );
    let reply = decision.reply.expect("offer");
    assert_eq!(&reply.option_order[..5], &[53, 54, 51, 1, 3]);
}

#[test]
fn a_malformed_overloaded_field_is_a_decode_error() {
    let bare = request(
        Some(MessageType::Discover),
        vec![DhcpOption::OptionOverload(1)],
    );
    assert_eq!(
        decode_message(&with_fields(&bare, &[15, 200, b'x'], b"")).unwrap_err(),
        DecodeError::OptionOverrun {
            area: OptionArea::File,
            code: 15
        }
    );
}

/// Every option of `message` but option 52, as (code, option) pairs.
fn options_without_overload(message: &Message) -> Vec<(u8, DhcpOption)> {
    message
        .opts()
        .iter()
        .filter(|(code, _)| **code != OptionCode::OptionOverload)
        .map(|(code, option)| (u8::from(*code), option.clone()))
        .collect()
}

#[test]
fn a_large_reply_spills_into_file_then_sname_and_decodes_back() {
    let mut server = Server::new("");
    let discover = request(
        Some(MessageType::Discover),
        vec![DhcpOption::MaxMessageSize(576)],
    );
    let (_, decision) = server.handle(&encode(&discover));
    let reply = decision.reply.expect("offer");
    // 15 (202 bytes) and 18 fill the options area, 17 goes to `file`, 40 to `sname`.
    assert_eq!(reply.layout.overload(), 3);
    for code in [15u8, 17, 18, 40] {
        assert!(reply.option_order.contains(&code), "{code} was sent");
    }
    let bytes = reply.encode().expect("encodes");
    assert!(bytes.len() <= 576 - 28, "{} bytes", bytes.len());
    assert_eq!(&bytes[FILE][..2], &[17, 120]);
    assert_eq!(&bytes[SNAME][..2], &[40, 40]);
    // A client reads the same options back, with option 52 saying where they were.
    let decoded = decode_message(&bytes).expect("the reply decodes");
    assert_eq!(
        decoded.opts().get(OptionCode::OptionOverload),
        Some(&DhcpOption::OptionOverload(3))
    );
    assert_eq!(
        options_without_overload(&decoded),
        options_without_overload(&reply.decoded())
    );
    assert_eq!((decoded.fname(), decoded.sname()), (None, None));

    // With option 57 large enough, nothing spills.
    let discover = request(
        Some(MessageType::Discover),
        vec![DhcpOption::MaxMessageSize(1500)],
    );
    let (_, decision) = server.handle(&encode(&discover));
    let reply = decision.reply.expect("offer");
    assert_eq!(reply.layout.overload(), 0);
    assert_eq!(
        options_without_overload(&decode_message(&reply.encode().unwrap()).unwrap()),
        options_without_overload(&reply.decoded())
    );
}

#[test]
fn filename_and_server_name_keep_their_fields() {
    // `filename` set: only `sname` takes options (ISC `dhcp_reply`).
    let mut server = Server::new("filename \"pxelinux.0\";");
    let discover = request(Some(MessageType::Discover), Vec::new());
    let (_, decision) = server.handle(&encode(&discover));
    let reply = decision.reply.expect("offer");
    assert_eq!(reply.layout.overload(), 2);
    let bytes = reply.encode().expect("encodes");
    assert_eq!(&bytes[FILE][..11], b"pxelinux.0\0");
    let decoded = decode_message(&bytes).expect("decodes");
    assert_eq!(decoded.fname(), Some(&b"pxelinux.0\0"[..]));
    assert_eq!(
        options_without_overload(&decoded),
        options_without_overload(&reply.decoded())
    );

    // Both set: what does not fit is left out, as without overload.
    let mut server = Server::new("filename \"pxelinux.0\";\nserver-name \"boot\";");
    let (_, decision) = server.handle(&encode(&discover));
    let reply = decision.reply.expect("offer");
    assert_eq!(reply.layout.overload(), 0);
    assert!(!reply.option_order.contains(&17) && !reply.option_order.contains(&40));
    let bytes = reply.encode().expect("encodes");
    assert_eq!(&bytes[SNAME][..5], b"boot\0");
}

#[test]
fn overloaded_renewals_stay_out_of_the_fast_path() {
    // The renewals come at once after the bind: without dhcp-cache-threshold 0 the engine
    // would answer them from the young lease, and such ACKs never become templates anyway.
    let mut server = Server::new("dhcp-cache-threshold 0;");
    let small = [DhcpOption::MaxMessageSize(576)];
    let (_, offer) = server.handle(&encode(&request(
        Some(MessageType::Discover),
        small.to_vec(),
    )));
    let address = offer.reply.expect("offer").decoded().yiaddr();
    let mut selecting = small.to_vec();
    selecting.push(DhcpOption::RequestedIpAddress(address));
    selecting.push(DhcpOption::ServerIdentifier(INTERFACE));
    let (_, ack) = server.handle(&encode(&request(Some(MessageType::Request), selecting)));
    assert!(
        matches!(ack.outcome, Outcome::Acked(_)),
        "{:?}",
        ack.outcome
    );

    // A renewal whose ACK is overloaded.
    let mut renewal = request(Some(MessageType::Request), small.to_vec());
    renewal.set_ciaddr(address);
    let payload = encode(&renewal);
    let (message, decision) = server.handle(&payload);
    let reply = decision.reply.expect("ack");
    assert_eq!(reply.layout.overload(), 3);
    assert_eq!(
        sync::prepare(&payload, &message, &reply).unwrap_err(),
        NotEligible::Overloaded
    );

    // A renewal that asks for a reply small enough to template, but carries option 52.
    let parameters =
        DhcpOption::ParameterRequestList(vec![OptionCode::SubnetMask, OptionCode::Router]);
    let mut plain = request(Some(MessageType::Request), vec![parameters.clone()]);
    plain.set_ciaddr(address);
    let payload = encode(&plain);
    let (message, decision) = server.handle(&payload);
    let reply = decision.reply.expect("ack");
    assert_eq!(reply.layout.overload(), 0);
    assert!(sync::prepare(&payload, &message, &reply).is_ok());
    let mut overloaded = request(
        Some(MessageType::Request),
        vec![parameters, DhcpOption::OptionOverload(1)],
    );
    overloaded.set_ciaddr(address);
    let payload = with_fields(&overloaded, &[255], b"");
    let (message, decision) = server.handle(&payload);
    let reply = decision.reply.expect("ack");
    assert_eq!(
        sync::prepare(&payload, &message, &reply).unwrap_err(),
        NotEligible::Overloaded
    );
}

#[test]
fn names_longer_than_their_fields_are_truncated_not_a_panic() {
    // ISC `dhcp_reply` copies the first 128 / 64 bytes and logs the truncation.
    let long_file = "f".repeat(200);
    let long_name = "s".repeat(100);
    let mut server = Server::new(&format!(
        "filename \"{long_file}\";\nserver-name \"{long_name}\";"
    ));
    let discover = request(Some(MessageType::Discover), Vec::new());
    let (_, decision) = server.handle(&encode(&discover));
    let bytes = decision.reply.expect("offer").encode().expect("encodes");
    assert_eq!(&bytes[FILE], "f".repeat(128).as_bytes());
    assert_eq!(&bytes[SNAME], "s".repeat(64).as_bytes());
}
