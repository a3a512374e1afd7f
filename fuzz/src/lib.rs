//! Entry points shared by the fuzz targets (`fuzz_targets/*.rs`, nightly, libFuzzer) and the
//! stable regression test (`server/tests/integration/fuzz_regressions.rs` includes this file), so that every
//! checked-in crash and seed is replayed through exactly the code the fuzzer ran.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use xdhcpd::config::model::{
    AddressRange, Config, Pool, PoolId, Scope, ScopeId, SharedNetwork, SharedNetworkId, Subnet,
    SubnetId,
};
use xdhcpd::engine::starvation::StarvationState;
use xdhcpd::engine::{Engine, Request, Snapshot};
use xdhcpd::failover::body::Typed;
use xdhcpd::failover::machine::{Machine, MachineConfig};
use xdhcpd::failover::memory::MemoryBindings;
use xdhcpd::failover::states::Role;
use xdhcpd::failover::wire::StreamDecoder;
use xdhcpd::lease::store::LeaseStore;

/// The configuration of `engine_decision`: a direct subnet with a small pool (so that the
/// allocator, the reserve and exhaustion are all reached), a relayed subnet, a host, a class
/// and tight starvation limits.
pub const ENGINE_CONFIG: &str = "\
option space xdhcpd;
option xdhcpd.new-leases-per-mac code 2 = unsigned integer 32;
option xdhcpd.pool-reserve-percent code 6 = unsigned integer 8;
option xdhcpd.new-leases-per-relay-in-reserve code 7 = unsigned integer 32;
option xdhcpd.new-leases-per-mac 2;
option xdhcpd.pool-reserve-percent 25;
option xdhcpd.new-leases-per-relay-in-reserve 1;
authoritative;
default-lease-time 600;
max-lease-time 7200;
option domain-name \"example.net\";
class \"pxe\" { match if substring(option vendor-class-identifier, 0, 9) = \"PXEClient\"; }
subnet 10.0.0.0 netmask 255.255.255.0 {
  option routers 10.0.0.1;
  pool { range 10.0.0.100 10.0.0.107; }
  range dynamic-bootp 10.0.0.200 10.0.0.201;
}
subnet 10.1.0.0 netmask 255.255.0.0 {
  pool { allow members of \"pxe\"; range 10.1.0.10 10.1.0.13; }
  pool { range 10.1.1.10 10.1.1.17; }
}
host fixed { hardware ethernet 02:00:00:00:00:01; fixed-address 10.0.0.50; }
";

/// `engine_decision`: the input is a sequence of packets, each `[len_hi, len_lo, flags, bytes…]`;
/// each decodable packet is handled one second after the previous one, on the interface
/// 10.0.0.1 or (flag bit 0) with no interface address; every reply is encoded.
pub fn engine_decision(data: &[u8]) {
    let Ok(config) = xdhcpd::config::parse_str(ENGINE_CONFIG, "fuzz.conf") else {
        return;
    };
    let mut store = LeaseStore::new(&config);
    let mut starvation = StarvationState::default();
    let engine = Engine::new(Arc::new(config));
    // No failover in this config, no OMAPI hosts: the empty snapshot.
    let snapshot = Snapshot::default();
    let mut now = 1_795_836_305u32;
    let mut rest = data;
    while let [high, low, flags, tail @ ..] = rest {
        let length = usize::from(u16::from_be_bytes([*high, *low])).min(tail.len());
        let (packet, after) = tail.split_at(length);
        rest = after;
        now = now.wrapping_add(1 + u32::from(*flags >> 4));
        let Ok(message) = xdhcpd::net::decode::decode_message(packet) else {
            continue;
        };
        let request = Request {
            message: &message,
            source: SocketAddrV4::new(message.ciaddr(), 68),
            interface_address: (flags & 1 == 0).then_some(Ipv4Addr::new(10, 0, 0, 1)),
            raw: None,
        };
        let decision = engine.handle(now, &snapshot, &request, &mut store, &mut starvation);
        if let Some(reply) = decision.reply {
            let _ = reply.encode();
            // The layout is the only copy of the options: every option it placed reads back
            // from it (RFC 3396 pieces joined), and the on-demand dhcproto view builds.
            for &code in &reply.option_order {
                assert!(
                    reply.option(code).is_some(),
                    "option {code} placed but unreadable"
                );
            }
            let _ = (
                reply.message_type(),
                reply.lease_time(),
                reply.server_identifier(),
            );
            let _ = reply.decoded();
        }
        if flags & 2 != 0 {
            let _ = store.expire(now.wrapping_add(700));
        }
    }
}

/// `failover_machine`: the input's first byte picks the role and the saved state; the rest is a
/// failover TCP stream whose messages are fed, one virtual second apart, into the sans-IO
/// machine (connected first), with timeouts run between them and the machine's own output
/// drained and re-encoded.
pub fn failover_machine(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let role = if selector & 1 == 0 {
        Role::Primary
    } else {
        Role::Secondary
    };
    let config = MachineConfig {
        name: "fuzz".into(),
        role,
        mclt: 300,
        hba: Some([0x55; 32]),
        max_unacked_updates: 4,
        max_response_delay: 30,
        auto_partner_down: u32::from(selector >> 4) * 60,
        max_lease_misbalance: 15,
        max_lease_ownership: 10,
        min_balance: 60,
        max_balance: 3600,
        vendor_class: b"xdhcpd-fuzz".to_vec(),
    };
    let mut now = 1_795_836_305u32;
    let saved = xdhcpd::failover::codes::ServerStateCode::from(selector >> 1 & 7);
    let mut machine = Machine::new(config, Some((saved, now - 1000)), None, now);
    let mut bindings =
        MemoryBindings::new(Ipv4Addr::new(10, 99, 0, 100), Ipv4Addr::new(10, 99, 0, 107));
    machine.handle_connected(now);
    let mut decoder = StreamDecoder::new();
    decoder.extend(stream);
    let mut steps = 0;
    while let Ok(Some(message)) = decoder.next_message() {
        steps += 1;
        if steps > 256 {
            break;
        }
        now = now.wrapping_add(1);
        if let Ok(typed) = Typed::from_message(&message) {
            machine.handle_message(now, typed, &mut bindings);
        }
        if let Some(deadline) = machine.poll_timeout() {
            if deadline <= now.wrapping_add(30) {
                machine.handle_timeout(deadline.max(now), &mut bindings);
            }
        }
        while let Some(out) = machine.poll_transmit() {
            let _ = out.encode();
        }
        while machine.poll_event().is_some() {}
    }
    machine.handle_disconnected(now.wrapping_add(1), &mut bindings);
    machine.handle_timeout(now.wrapping_add(100_000), &mut bindings);
    while machine.poll_transmit().is_some() {}
    while machine.poll_event().is_some() {}
}

/// The fixed configuration of `dhcp_packet`.
fn dhcp_packet_config() -> Config {
    let child = |parent: u32| Scope {
        parent: Some(ScopeId(parent)),
        ..Scope::default()
    };
    Config {
        scopes: vec![
            Scope {
                authoritative: Some(true),
                options: vec![(3, vec![10, 0, 0, 1]), (15, b"example.net".to_vec())],
                ..Scope::default()
            },
            child(0),
            child(1),
            child(2),
        ],
        shared_networks: vec![SharedNetwork {
            name: None,
            scope: ScopeId(1),
            subnets: vec![SubnetId(0)],
            pools: vec![PoolId(0)],
        }],
        subnets: vec![Subnet {
            network: Ipv4Addr::new(10, 0, 0, 0),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            scope: ScopeId(2),
            shared_network: SharedNetworkId(0),
        }],
        pools: vec![Pool {
            scope: ScopeId(3),
            shared_network: SharedNetworkId(0),
            subnet: Some(SubnetId(0)),
            ranges: vec![AddressRange {
                low: Ipv4Addr::new(10, 0, 0, 100),
                high: Ipv4Addr::new(10, 0, 0, 103),
                dynamic_bootp: true,
            }],
            permits: Vec::new(),
            failover_peer: None,
        }],
        ..Config::default()
    }
}

/// `dhcp_packet`: any bytes decoded as the daemon decodes, handled twice by a fixed engine.
pub fn dhcp_packet(data: &[u8]) {
    let Ok(message) = xdhcpd::net::decode::decode_message(data) else {
        return;
    };
    let config = dhcp_packet_config();
    let mut store = LeaseStore::new(&config);
    let mut starvation = StarvationState::default();
    let engine = Engine::new(Arc::new(config));
    let request = Request {
        message: &message,
        source: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
        interface_address: Some(Ipv4Addr::new(10, 0, 0, 1)),
        raw: None,
    };
    for now in [1_795_836_305, 1_795_836_306] {
        let decision = engine.handle(
            now,
            &Snapshot::default(),
            &request,
            &mut store,
            &mut starvation,
        );
        if let Some(reply) = decision.reply {
            let _ = reply.encode();
        }
    }
}

/// `config_parse`: any bytes as dhcpd.conf text.
pub fn config_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = xdhcpd::config::parse_str(&text, "fuzz.conf");
}

/// `lease_file`: any bytes as dhcpd.leases; what parses must survive a write and re-read.
pub fn lease_file(data: &[u8]) {
    let file = xdhcpd::lease::file::parse(data, "fuzz.leases");
    // Both `db-time-format`s: dates and `epoch N; # local time`.
    for times in [
        xdhcpd::lease::file::date::TimeFormat::Utc,
        xdhcpd::lease::file::date::TimeFormat::Local,
    ] {
        let format = xdhcpd::lease::file::FileFormat {
            times,
            ..Default::default()
        };
        let mut out = Vec::new();
        xdhcpd::lease::file::write_file(&file, format, &mut out);
        let again = xdhcpd::lease::file::parse(&out, "rewritten.leases");
        assert!(again.errors.is_empty(), "{:?}", again.errors);
        assert_eq!(again.leases.len(), file.leases.len());
    }
}

/// `omapi_message`: any bytes as an OMAPI stream; decoded messages re-encode to their bytes, and
/// the incremental decoder of a connection, fed the same stream in pieces (their size taken
/// from the first byte), finds exactly the messages and the error that one-shot decoding finds.
pub fn omapi_message(data: &[u8]) {
    use xdhcpd::omapi::decoder::MessageDecoder;
    use xdhcpd::omapi::wire::{decode_message, Intro, WireError};
    const LIMIT: usize = 64 * 1024;
    let _ = Intro::decode(data);
    let mut whole = Vec::new();
    let mut rest = data;
    let whole_error = loop {
        match decode_message(rest, 24, LIMIT) {
            Ok(Some(decoded)) => {
                assert!(decoded.length > 0 && decoded.length <= rest.len());
                assert_eq!(decoded.message.to_bytes(), &rest[..decoded.length]);
                rest = &rest[decoded.length..];
                whole.push(decoded);
            }
            Ok(None) => break None,
            Err(error) => break Some(error),
        }
    };
    let piece = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut decoder = MessageDecoder::new(24, LIMIT);
    let mut pieces = Vec::new();
    let mut pieces_error = None;
    'feed: for mut chunk in data.chunks(piece) {
        while !chunk.is_empty() {
            match decoder.decode(chunk) {
                Ok((taken, decoded)) => {
                    assert!(taken <= chunk.len());
                    assert!(taken > 0 || decoded.is_some());
                    chunk = &chunk[taken..];
                    pieces.extend(decoded);
                }
                Err(error) => {
                    pieces_error = Some(error);
                    break 'feed;
                }
            }
            assert!(decoder.buffered() <= LIMIT);
        }
    }
    assert_eq!(pieces, whole);
    // One-shot decoding refuses a partial message once the buffer reaches the limit, the
    // incremental decoder once a field would pass it: both agree on every other outcome.
    let too_long = |error: &Option<WireError>| matches!(error, Some(WireError::TooLong { .. }));
    if !too_long(&whole_error) && !too_long(&pieces_error) {
        assert_eq!(pieces_error, whole_error);
    }
    assert!(decoder.bytes_examined() <= 2 * data.len() as u64);
    // A peer announcing a longer header: still bounded and panic-free.
    let _ = decode_message(data, 40, 1024);
    let _ = MessageDecoder::new(40, 1024).decode(data);
}

/// `failover_message`: any bytes as a failover TCP stream, framed, decoded raw and typed, and
/// re-encoded; a decoded message must re-encode to exactly its bytes.
pub fn failover_message(data: &[u8]) {
    use xdhcpd::failover::wire::{frame_length, Message};
    let mut decoder = StreamDecoder::new();
    decoder.extend(data);
    let mut offset = 0;
    while let Ok(Some(message)) = decoder.next_message() {
        let length = message.encoded_len();
        let bytes = &data[offset..offset + length];
        offset += length;
        assert_eq!(message.encode().ok().as_deref(), Some(bytes));
        if let Ok(typed) = Typed::from_message(&message) {
            assert_eq!(typed.encode().ok().as_deref(), Some(bytes));
        }
    }
    let _ = frame_length(data);
    let _ = Message::decode(data);
}

/// Every target by name, for the replay test and `cargo xtask fuzz`.
/// A fuzz entry point.
/// `ddns_answer`: a DNS server's answer to one of our UPDATEs, as the updater decodes it
/// (`xdhcpd::ddns::wire::decode_answer`). Input: a flags byte (bit 0: the test's hmac-sha256
/// key, else its hmac-md5 key; bit 1: no key), the request's MAC (a length byte, then the
/// bytes), the current time (8 octets, big-endian), then the answer, whose first two octets
/// are taken as the expected ID. Seeds are answers of a real BIND 9 (server/tests/integration/ddns_bind.rs
/// keys).
pub fn ddns_answer(data: &[u8]) {
    use xdhcpd::ddns::tsig::{Algorithm, TsigKey};
    use xdhcpd::ddns::wire::{decode_answer, last_record_offset};
    let [flags, mac_length, rest @ ..] = data else {
        return;
    };
    let Some((request_mac, rest)) = rest.split_at_checked(usize::from(*mac_length)) else {
        return;
    };
    let Some((now, answer)) = rest.split_at_checked(8) else {
        return;
    };
    let now = u64::from_be_bytes(now.try_into().unwrap_or_default());
    let key = if flags & 1 == 0 {
        TsigKey::new("ddns-md5", Algorithm::HmacMd5, b"0123456789abcdef".to_vec())
    } else {
        TsigKey::new(
            "ddns-sha256",
            Algorithm::HmacSha256,
            b"the sha256 secret of ddns tests!".to_vec(),
        )
    };
    let Ok(key) = key else { return };
    let key = (flags & 2 == 0).then_some(&key);
    let id = match answer {
        [high, low, ..] => u16::from_be_bytes([*high, *low]),
        _ => 0,
    };
    let _ = decode_answer(answer, id, key, request_mac, now);
    if let Some(offset) = last_record_offset(answer) {
        assert!(offset >= 12 && offset < answer.len());
    }
}

/// `icmp_reply`: a datagram as the ping-check driver's raw ICMP socket reads it (IPv4 header,
/// then ICMP), read for an echo reply (`xdhcpd::net::icmp::parse_echo_reply`). A reply it
/// accepts is an ICMP echo reply whose checksum holds.
pub fn icmp_reply(data: &[u8]) {
    if xdhcpd::net::icmp::parse_echo_reply(data).is_some() {
        let header_length = usize::from(data[0] & 0x0f) * 4;
        assert_eq!(data[header_length], 0, "echo reply type");
    }
}

/// `shadow_input`: what shadow mode reads from outside (server/src/shadow/): any bytes as a
/// captured Ethernet frame, as its state file (`--shadow-report`), and as ISC's lease file
/// followed while ISC appends it, cut in two where the first byte says.
pub fn shadow_input(data: &[u8]) {
    use xdhcpd::shadow::follow::{FollowState, LeaseRecords};
    if let Some(frame) = xdhcpd::shadow::capture::parse_frame(data) {
        assert!(frame.payload.len() <= data.len());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(totals) = xdhcpd::shadow::report::Totals::from_text(text) {
            let _ = totals.render();
            assert_eq!(
                xdhcpd::shadow::report::Totals::from_text(&totals.to_text()),
                Ok(totals)
            );
        }
    }
    let split = data
        .first()
        .map_or(0, |&byte| usize::from(byte))
        .min(data.len());
    let mut records = LeaseRecords::default();
    let mut state = FollowState::default();
    let _ = state.feed(&data[..split], &mut records);
    let _ = state.feed(&data[split..], &mut records);
    assert!(state.pending() <= data.len());
}

pub type Entry = fn(&[u8]);

/// `control_api_request`: any bytes as a JSON control API request body. The decoder answers
/// every input with a request or a Kea answer (result 1 or 2) that serializes; a decoded
/// `lease4-add`/`lease4-update` is turned into the lease it would write, over no record and
/// over an active one, without panicking.
pub fn control_api_request(data: &[u8]) {
    use xdhcpd::control_api::answer::Answer;
    use xdhcpd::control_api::lease_json;
    use xdhcpd::control_api::request::{parse, Command};
    match parse(data) {
        Err(answer) => {
            assert!(answer.result == 1 || answer.result == 2, "{answer:?}");
            assert!(!Answer::body(&[answer]).is_empty());
        }
        Ok(request) => {
            if let Command::LeaseAdd(args) | Command::LeaseUpdate(args) = &request.command {
                let address = args.address.unwrap_or(Ipv4Addr::new(10, 0, 0, 100));
                let mut active = xdhcpd::lease::record::Lease::free(address);
                active.binding_state = xdhcpd::lease::record::BindingState::Active;
                active.ends = 2_000_000_000;
                for existing in [None, Some(&active)] {
                    for failover in [false, true] {
                        if let Ok(lease) = lease_json::written(
                            args,
                            address,
                            existing,
                            600,
                            failover,
                            1_700_000_000,
                        ) {
                            assert_eq!(lease.address, address);
                        }
                    }
                }
            }
        }
    }
}

/// `history_spool`: any bytes as a line of the lease-history spool
/// (`xdhcpd::history::spool::decode_line`); a line it accepts is written back the same way.
pub fn history_spool(data: &[u8]) {
    use xdhcpd::history::spool::{decode_line, encode_line};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(row) = decode_line(text) {
        assert_eq!(decode_line(&encode_line(&row)), Some(row));
    }
}

/// `bulk_leasequery_stream`: any bytes as an RFC 6926 TCP stream; the frame decoder fed them
/// in pieces (their size from the first byte) finds the same messages and error as fed them
/// whole, never holds more than one message, and each message re-framed gives its bytes back.
pub fn bulk_leasequery_stream(data: &[u8]) {
    use xdhcpd::bulk_leasequery::framing::{frame, FrameDecoder};
    let drain = |decoder: &mut FrameDecoder, out: &mut Vec<Vec<u8>>| loop {
        match decoder.next_message() {
            Ok(Some(message)) => out.push(message),
            Ok(None) => return None,
            Err(error) => return Some(error),
        }
    };
    let mut whole = FrameDecoder::default();
    whole.push(data);
    let mut whole_messages = Vec::new();
    let whole_error = drain(&mut whole, &mut whole_messages);
    let piece = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut pieces = FrameDecoder::default();
    let mut piece_messages = Vec::new();
    let mut piece_error = None;
    for chunk in data.chunks(piece) {
        pieces.push(chunk);
        if let Some(error) = drain(&mut pieces, &mut piece_messages) {
            piece_error = Some(error);
            break;
        }
        assert!(pieces.pending() <= 2 + usize::from(u16::MAX) + piece);
    }
    assert_eq!(whole_messages, piece_messages);
    assert_eq!(whole_error, piece_error);
    let mut reframed = Vec::new();
    for message in &whole_messages {
        reframed.extend(frame(message).expect("a decoded message fits a length field"));
        // What the listener does next with each message.
        let _ = <dhcproto::v4::Message as dhcproto::Decodable>::decode(
            &mut dhcproto::Decoder::new(message),
        );
    }
    assert_eq!(&data[..reframed.len()], &reframed[..]);
}

pub const TARGETS: &[(&str, Entry)] = &[
    ("config_parse", config_parse),
    ("lease_file", lease_file),
    ("dhcp_packet", dhcp_packet),
    ("failover_message", failover_message),
    ("omapi_message", omapi_message),
    ("engine_decision", engine_decision),
    ("failover_machine", failover_machine),
    ("ddns_answer", ddns_answer),
    ("icmp_reply", icmp_reply),
    ("bulk_leasequery_stream", bulk_leasequery_stream),
    ("control_api_request", control_api_request),
    ("shadow_input", shadow_input),
    ("history_spool", history_spool),
];
