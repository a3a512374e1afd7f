//! Golden traces: every failover message in `captures/fo.pcap` and `captures/fo-isc-pair-load.pcap`
//! (real ISC dhcpd 4.4 pairs) decodes and re-encodes byte for byte, raw and through the typed
//! view. The TCP payloads are reassembled per direction first, because a segment may hold part
//! of a message or several messages.

use std::collections::BTreeMap;
use std::path::PathBuf;

use xdhcpd::failover::body::{Body, Typed};
use xdhcpd::failover::codes::MessageType;
use xdhcpd::failover::wire::{Message, StreamDecoder};

/// The repository's `testdata/` folder.
fn testdata_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

/// One TCP segment: direction key, sequence number, flags, payload.
struct Segment {
    flow: ([u8; 4], u16, [u8; 4], u16),
    sequence: u32,
    syn: bool,
    payload: Vec<u8>,
}

/// Reads a classic little-endian pcap of Ethernet frames and returns the IPv4 TCP segments.
fn read_tcp_segments(bytes: &[u8]) -> Vec<Segment> {
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    assert_eq!(
        u32::from_le_bytes(bytes[20..24].try_into().unwrap()),
        1,
        "Ethernet"
    );
    let mut segments = Vec::new();
    let mut offset = 24;
    while offset + 16 <= bytes.len() {
        let captured =
            u32::from_le_bytes(bytes[offset + 8..offset + 12].try_into().unwrap()) as usize;
        let frame = &bytes[offset + 16..offset + 16 + captured];
        offset += 16 + captured;
        if frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &frame[14..];
        let header = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if ip[9] != 6 {
            continue;
        }
        let tcp = &ip[header..total];
        let data_offset = usize::from(tcp[12] >> 4) * 4;
        segments.push(Segment {
            flow: (
                ip[12..16].try_into().unwrap(),
                u16::from_be_bytes([tcp[0], tcp[1]]),
                ip[16..20].try_into().unwrap(),
                u16::from_be_bytes([tcp[2], tcp[3]]),
            ),
            sequence: u32::from_be_bytes(tcp[4..8].try_into().unwrap()),
            syn: tcp[13] & 0x02 != 0,
            payload: tcp[data_offset..].to_vec(),
        });
    }
    segments
}

/// Reassembles each direction of each failover connection (port 647 or 847 on either end) into
/// its byte stream, dropping retransmitted bytes, and returns the streams' messages.
fn failover_messages(file: &str) -> Vec<Vec<u8>> {
    let bytes =
        std::fs::read(testdata_dir().join("captures").join(file)).expect("capture readable");
    let mut streams: BTreeMap<_, (Option<u32>, Vec<u8>)> = BTreeMap::new();
    let mut order = Vec::new();
    for segment in read_tcp_segments(&bytes) {
        let (_, source_port, _, destination_port) = segment.flow;
        if ![647, 847].contains(&source_port) && ![647, 847].contains(&destination_port) {
            continue;
        }
        let entry = streams.entry(segment.flow).or_insert_with(|| {
            order.push(segment.flow);
            (None, Vec::new())
        });
        if segment.syn {
            entry.0 = Some(segment.sequence.wrapping_add(1));
            continue;
        }
        let next = *entry.0.get_or_insert(segment.sequence);
        // Position of this segment relative to the next expected byte; old bytes are skipped.
        let skip = next.wrapping_sub(segment.sequence) as usize;
        assert!(
            skip <= segment.payload.len() || segment.payload.is_empty() || skip > 1 << 30,
            "segment from the future"
        );
        if skip < segment.payload.len() {
            entry.1.extend_from_slice(&segment.payload[skip..]);
            entry.0 = Some(next.wrapping_add((segment.payload.len() - skip) as u32));
        }
    }
    let mut messages = Vec::new();
    for flow in order {
        let (_, stream) = &streams[&flow];
        let mut decoder = StreamDecoder::new();
        decoder.extend(stream);
        let mut offset = 0;
        while let Some(message) = decoder.next_message().expect("stream frames cleanly") {
            let length = message.encoded_len();
            messages.push(stream[offset..offset + length].to_vec());
            offset += length;
        }
        assert_eq!(decoder.buffered(), 0, "no partial message left in {flow:?}");
    }
    messages
}

fn check_capture(file: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for bytes in failover_messages(file) {
        let message = Message::decode(&bytes).expect("decodes");
        assert_eq!(
            message.encode().unwrap(),
            bytes,
            "raw round trip of {message:?}"
        );
        let typed = Typed::from_message(&message).expect("types like ISC");
        if !typed.extra.is_empty() {
            // fo.pcap holds the lab's provocations too (e.g. a BNDUPD with a DDNS option, which
            // ISC refuses): they must survive the round trip as extra options.
            *counts.entry("with extra options".to_string()).or_insert(0) += 1;
        }
        assert_eq!(
            typed.encode().unwrap(),
            bytes,
            "typed round trip of {typed:?}"
        );
        assert!(!matches!(typed.body, Body::Other(_)));
        *counts
            .entry(format!("{:?}", message.message_type))
            .or_insert(0) += 1;
    }
    counts
}

#[test]
fn fo_pcap_round_trips() {
    let counts = check_capture("fo.pcap");
    eprintln!("fo.pcap: {counts:?}");
    // The same numbers tshark's dhcpfo dissector reports for the capture.
    let expected = [
        ("BNDACK", 83),
        ("BNDUPD", 84),
        ("CONNECT", 11),
        ("CONNECTACK", 10),
        ("CONTACT", 76),
        ("STATE", 33),
        ("UPDDONE", 3),
        ("UPDREQALL", 5),
    ];
    for (name, count) in expected {
        assert_eq!(counts.get(name), Some(&count), "{name}");
    }
    for message_type in [
        MessageType::Connect,
        MessageType::ConnectAck,
        MessageType::State,
        MessageType::UpdateRequestAll,
        MessageType::UpdateDone,
        MessageType::BindUpdate,
        MessageType::BindAck,
        MessageType::Contact,
    ] {
        assert!(
            counts.contains_key(&format!("{message_type:?}")),
            "{message_type:?} seen"
        );
    }
}

#[test]
fn isc_pair_load_pcap_round_trips() {
    let counts = check_capture("fo-isc-pair-load.pcap");
    eprintln!("fo-isc-pair-load.pcap: {counts:?}");
    assert_eq!(counts.get("CONNECT"), Some(&3));
    assert_eq!(counts.get("CONNECTACK"), Some(&2));
    assert_eq!(counts.get("UPDREQALL"), Some(&4));
    assert_eq!(counts.get("UPDDONE"), Some(&2));
    assert_eq!(counts.get("BNDUPD"), Some(&671));
    assert_eq!(counts.get("BNDACK"), Some(&667));
    assert_eq!(counts.get("STATE"), Some(&12));
    assert_eq!(counts.get("CONTACT"), Some(&2));
}

/// What the fuzz target checks, run over deterministic mutations of every captured message
/// (truncations, byte flips, length-field edits): no panic, and whatever decodes re-encodes to
/// its own bytes.
#[test]
fn mutated_capture_messages_never_panic() {
    let mut messages = failover_messages("fo.pcap");
    messages.truncate(120);
    let mut checked = 0;
    for original in &messages {
        let mut variants = Vec::new();
        for cut in 0..original.len() {
            variants.push(original[..cut].to_vec());
        }
        for index in 0..original.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut mutated = original.clone();
                mutated[index] ^= flip;
                variants.push(mutated);
            }
        }
        for mutated in variants {
            let mut decoder = StreamDecoder::new();
            decoder.extend(&mutated);
            decoder.extend(original);
            while let Ok(Some(message)) = decoder.next_message() {
                let encoded = message.encode().expect("decoded messages fit");
                assert_eq!(Message::decode(&encoded).as_ref(), Ok(&message));
                if let Ok(typed) = Typed::from_message(&message) {
                    assert_eq!(typed.encode().expect("fits"), encoded);
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 10_000);
}
