//! Golden trace: every OMAPI message of `testdata/captures/omapi.pcap` (omshell ↔ ISC dhcpd
//! 4.4.3) decodes and re-encodes byte for byte, and every HMAC-MD5 signature in it is
//! recomputed (docs/spec/omapi.md §6.3, §10). A small pcap reader and per-direction TCP reassembly are
//! included here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use xdhcpd::omapi::auth::Authenticator;
use xdhcpd::omapi::wire::{decode_message, find, Intro, Opcode};

/// `testdata/captures/omapi.pcap` of the repository.
fn capture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/captures/omapi.pcap")
}

/// One direction of one TCP connection: (source port, destination port).
type Flow = (u16, u16);

/// Payload bytes per direction, in sequence order (retransmitted bytes dropped), plus the
/// order in which flows first carried data.
fn reassemble(pcap: &[u8]) -> (BTreeMap<Flow, Vec<u8>>, Vec<Flow>) {
    assert_eq!(
        &pcap[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian microsecond pcap"
    );
    let link = u32::from_le_bytes(pcap[20..24].try_into().unwrap());
    assert_eq!(link, 1, "Ethernet link type");
    let mut streams: BTreeMap<Flow, (u32, Vec<u8>)> = BTreeMap::new();
    let mut order = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let captured = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &pcap[at + 16..at + 16 + captured];
        at += 16 + captured;
        if frame.len() < 14 || frame[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &frame[14..];
        if ip[9] != 6 {
            continue;
        }
        let ip_header = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let tcp = &ip[ip_header..total];
        let source = u16::from_be_bytes([tcp[0], tcp[1]]);
        let destination = u16::from_be_bytes([tcp[2], tcp[3]]);
        let sequence = u32::from_be_bytes(tcp[4..8].try_into().unwrap());
        let syn = tcp[13] & 0x02 != 0;
        let payload = &tcp[usize::from(tcp[12] >> 4) * 4..];
        let flow = (source, destination);
        if syn {
            streams.insert(flow, (sequence.wrapping_add(1), Vec::new()));
            continue;
        }
        let Some((next, bytes)) = streams.get_mut(&flow) else {
            continue;
        };
        if payload.is_empty() || sequence != *next {
            continue;
        }
        if bytes.is_empty() {
            order.push(flow);
        }
        bytes.extend_from_slice(payload);
        *next = next.wrapping_add(payload.len() as u32);
    }
    let streams = streams
        .into_iter()
        .map(|(flow, (_, bytes))| (flow, bytes))
        .collect();
    (streams, order)
}

#[test]
fn every_message_round_trips_and_every_signature_verifies() {
    let path = capture();
    if !path.exists() {
        eprintln!("skipped: {} missing", path.display());
        return;
    }
    let pcap = std::fs::read(&path).unwrap();
    let (streams, _) = reassemble(&pcap);
    let key = Authenticator::hmac_md5("omapi_key", b"0123456789abcdef");
    let mut messages = 0;
    let mut verified = 0;
    let mut wrong_secret = 0;
    let mut opcodes = BTreeMap::new();
    for (flow, bytes) in &streams {
        let intro = Intro::decode(bytes).unwrap().expect("an intro");
        assert_eq!(intro, Intro::OURS, "{flow:?}");
        let mut rest = &bytes[8..];
        // Does the server answer this connection's signed requests with INVALIDKEY?
        let server_flow = (flow.1, flow.0);
        let rejected = flow.1 == 7911
            && streams.get(&server_flow).is_some_and(|reply| {
                let mut rest = &reply[8..];
                let mut any = false;
                while let Some(decoded) = decode_message(rest, 24, 1 << 20).unwrap() {
                    any |= find(&decoded.message.message_values, "result")
                        .and_then(|value| value.as_u32())
                        == Some(0x6000b);
                    rest = &rest[decoded.length..];
                }
                any
            });
        while !rest.is_empty() {
            let decoded = decode_message(rest, intro.header_size, 1 << 20)
                .unwrap()
                .unwrap_or_else(|| panic!("{flow:?}: truncated message"));
            let original = &rest[..decoded.length];
            assert_eq!(decoded.message.to_bytes(), original, "{flow:?}");
            *opcodes
                .entry(format!("{:?}", decoded.message.header.op))
                .or_insert(0) += 1;
            messages += 1;
            if decoded.message.header.authlen > 0 {
                if key.verify(&decoded.signed, &decoded.message.signature) {
                    verified += 1;
                } else {
                    // Only the "wrong secret" and "unknown authid" sessions may fail.
                    assert!(
                        rejected || decoded.message.header.authid == 99,
                        "{flow:?}: bad signature on {:?}",
                        decoded.message.header
                    );
                    wrong_secret += 1;
                }
            }
            rest = &rest[decoded.length..];
        }
    }
    eprintln!(
        "{} flows, {messages} messages {opcodes:?}, {verified} signatures verified, \
         {wrong_secret} made with another secret",
        streams.len()
    );
    assert!(messages >= 70, "{messages}");
    assert!(verified >= 20, "{verified}");
    assert!(opcodes.contains_key("OPEN") && opcodes.contains_key("STATUS"));
    assert!(opcodes.contains_key(&format!("{:?}", Opcode::DELETE)));
}
