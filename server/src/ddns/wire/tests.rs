use std::net::Ipv4Addr;

use super::*;
use crate::ddns::guard::{guard, ClientIdentity, Style};
use crate::ddns::plan::{Binding, Operation, Policy, Step};
use crate::ddns::tsig::{Algorithm, FUDGE};

fn operation() -> Operation {
    let guard = guard(
        Style::Standard,
        ClientIdentity::Hardware {
            htype: 1,
            address: &[1, 2, 3, 4, 5, 6],
        },
        "client.example.com",
    )
    .unwrap();
    Operation::add(
        Binding {
            address: Ipv4Addr::new(192, 0, 2, 2),
            fwd_name: Some("client.example.com".into()),
            rev_name: Some("2.2.0.192.in-addr.arpa.".into()),
            guard: Some(guard),
            ttl: 3600,
        },
        Policy::default(),
    )
}

fn key() -> TsigKey {
    TsigKey::new("ddns-key", Algorithm::HmacMd5, b"0123456789abcdef".to_vec()).unwrap()
}

/// ISC's first message, byte for byte as RFC 2136 lays it out: the zone, the NXDOMAIN
/// prerequisite (class NONE, type ANY, no RDATA) and the A and DHCID records.
#[test]
fn add1_wire_layout() {
    let message = operation().message(Step::FwdAdd1).unwrap();
    let bytes = encode(&message, "example.com", 0xbeef).unwrap();
    // Header: ID, opcode UPDATE (5 << 11), ZOCOUNT 1, PRCOUNT 1, UPCOUNT 2, ADCOUNT 0.
    assert_eq!(
        &bytes[..12],
        &[0xbe, 0xef, 0x28, 0x00, 0, 1, 0, 1, 0, 2, 0, 0]
    );
    let zone = b"\x07example\x03com\x00\x00\x06\x00\x01";
    assert_eq!(&bytes[12..12 + zone.len()], zone);
    let rest = &bytes[12 + zone.len()..];
    // The prerequisite's owner is compressed against the zone name.
    let owner = b"\x06client\xc0\x0c";
    assert_eq!(&rest[..owner.len()], owner);
    let rest = &rest[owner.len()..];
    assert_eq!(&rest[..10], &[0, 255, 0, 254, 0, 0, 0, 0, 0, 0]);
    let rest = &rest[10..];
    // A record: owner pointer, type A, class IN, TTL 3600, 4 octets.
    assert_eq!(
        &rest[..16],
        &[0xc0, 0x1d, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 2]
    );
    // DHCID: type 49, RDLENGTH 35, RDATA as computed (RFC 4701 §3.6 example).
    let dhcid = &rest[16..];
    assert_eq!(
        &dhcid[..12],
        &[0xc0, 0x1d, 0, 49, 0, 1, 0, 0, 0x0e, 0x10, 0, 35]
    );
    assert_eq!(&dhcid[12..15], &[0, 0, 1]);
    assert_eq!(dhcid.len(), 12 + 35);
}

#[test]
fn every_step_encodes_and_decodes_back() {
    let operation = operation();
    for step in [
        Step::FwdAdd1,
        Step::FwdAdd2,
        Step::PtrAdd,
        Step::FwdRem1,
        Step::FwdRem2,
        Step::PtrRem,
    ] {
        let message = operation.message(step).unwrap();
        let bytes = encode(&message, "example.com.", 1).unwrap();
        assert!(bytes.len() <= MAX_UDP_REQUEST, "{step:?}");
        let decoded = DnsMessage::from_vec(&bytes).unwrap();
        assert_eq!(
            decoded.answers.len(),
            message.prerequisites.len(),
            "{step:?}"
        );
        assert_eq!(decoded.authorities.len(), message.updates.len(), "{step:?}");
    }
}

#[test]
fn bad_names_are_errors() {
    let mut message = operation().message(Step::FwdAdd1).unwrap();
    message.updates[0].name = "a..b".into();
    assert!(matches!(
        encode(&message, "example.com", 1),
        Err(EncodeError::Name(_))
    ));
}

/// An answer as BIND sends it: the request's header with QR set and the rcode, the zone
/// section echoed, then (if keyed) a TSIG record over the request's MAC.
fn answer(request: &[u8], rcode: u8, sign: Option<(&TsigKey, &[u8], u64)>) -> Vec<u8> {
    let zone_end = skip_name(request, 12).unwrap() + 4;
    let mut answer = request[..zone_end].to_vec();
    answer[2] |= 0x80;
    answer[3] = (answer[3] & 0xf0) | rcode;
    answer[6..12].fill(0);
    if let Some((key, request_mac, time)) = sign {
        key.sign_answer(&mut answer, time, request_mac).unwrap();
    }
    answer
}

#[test]
fn signed_answers_verify() {
    let key = key();
    let message = operation().message(Step::FwdAdd1).unwrap();
    let mut request = encode(&message, "example.com", 77).unwrap();
    let mac = key.sign(&mut request, 1_700_000_000).unwrap();
    // The signed request decodes with its TSIG record last (hickory checks the layout).
    let decoded = DnsMessage::from_vec(&request).unwrap();
    assert!(matches!(
        decoded.additionals.last().map(|record| &record.data),
        Some(RData::TSIG(_))
    ));
    let good = answer(&request, 0, Some((&key, &mac, 1_700_000_001)));
    assert_eq!(
        decode_answer(&good, 77, Some(&key), &mac, 1_700_000_010),
        Ok(Answer {
            rcode: 0,
            truncated: false
        })
    );
    // YXDOMAIN (6) comes through as such.
    let yxdomain = answer(&request, 6, Some((&key, &mac, 1_700_000_001)));
    assert_eq!(
        decode_answer(&yxdomain, 77, Some(&key), &mac, 1_700_000_001)
            .unwrap()
            .rcode,
        6
    );
    // Outside the fudge.
    assert_eq!(
        decode_answer(
            &good,
            77,
            Some(&key),
            &mac,
            1_700_000_001 + u64::from(FUDGE) + 1
        ),
        Err(AnswerError::Tsig(TsigFailure::BadTime))
    );
    // Signed over another request.
    assert_eq!(
        decode_answer(&good, 77, Some(&key), &[0; 16], 1_700_000_001),
        Err(AnswerError::Tsig(TsigFailure::BadSignature))
    );
    // Another secret under the same name.
    let other = TsigKey::new("ddns-key", Algorithm::HmacMd5, b"other".to_vec()).unwrap();
    assert_eq!(
        decode_answer(&good, 77, Some(&other), &mac, 1_700_000_001),
        Err(AnswerError::Tsig(TsigFailure::BadSignature))
    );
    let sha = TsigKey::new("ddns-key", Algorithm::HmacSha256, b"x".to_vec()).unwrap();
    assert_eq!(
        decode_answer(&good, 77, Some(&sha), &mac, 1_700_000_001),
        Err(AnswerError::Tsig(TsigFailure::WrongAlgorithm))
    );
    // A flipped bit in the body.
    let mut tampered = good.clone();
    tampered[3] ^= 0x01;
    assert_eq!(
        decode_answer(&tampered, 77, Some(&key), &mac, 1_700_000_001),
        Err(AnswerError::Tsig(TsigFailure::BadSignature))
    );
}

#[test]
fn unsigned_or_foreign_answers_are_refused() {
    let key = key();
    let message = operation().message(Step::FwdAdd1).unwrap();
    let mut request = encode(&message, "example.com", 9).unwrap();
    let mac = key.sign(&mut request, 1_700_000_000).unwrap();
    let unsigned = answer(&request, 0, None);
    assert_eq!(
        decode_answer(&unsigned, 9, Some(&key), &mac, 1_700_000_000),
        Err(AnswerError::Tsig(TsigFailure::Unsigned))
    );
    // Without a key the same answer is fine.
    assert_eq!(decode_answer(&unsigned, 9, None, &[], 0).unwrap().rcode, 0);
    assert_eq!(
        decode_answer(&unsigned, 10, None, &[], 0),
        Err(AnswerError::WrongId {
            got: 9,
            expected: 10
        })
    );
    // Our own request is no answer.
    assert_eq!(
        decode_answer(&request, 9, None, &[], 0),
        Err(AnswerError::NotAnUpdateAnswer)
    );
    assert!(matches!(
        decode_answer(&[0, 9, 0xa8], 9, None, &[], 0),
        Err(AnswerError::Malformed(_))
    ));
    // A server's rejection: TSIG error BADSIG (16) with an empty MAC.
    let mut rejected = answer(&request, 9, None);
    let bad_signature = crate::ddns::tsig::TsigRecord {
        key_name: b"\x08ddns-key\x00".to_vec(),
        algorithm: b"\x08hmac-md5\x07sig-alg\x03reg\x03int\x00".to_vec(),
        time: 1_700_000_000,
        fudge: FUDGE,
        mac: Vec::new(),
        original_id: 9,
        error: 16,
        other: Vec::new(),
    };
    append_tsig(&mut rejected, &bad_signature);
    assert_eq!(
        decode_answer(&rejected, 9, Some(&key), &mac, 1_700_000_000),
        Err(AnswerError::Tsig(TsigFailure::ServerRejected(16)))
    );
}

fn append_tsig(message: &mut Vec<u8>, tsig: &crate::ddns::tsig::TsigRecord) {
    message[11] += 1;
    message.extend_from_slice(&tsig.key_name);
    message.extend_from_slice(&[0, 250, 0, 255, 0, 0, 0, 0]);
    let rdata_length = tsig.algorithm.len() + 16 + tsig.mac.len() + tsig.other.len();
    message.extend_from_slice(&(rdata_length as u16).to_be_bytes());
    message.extend_from_slice(&tsig.algorithm);
    message.extend_from_slice(&tsig.time.to_be_bytes()[2..]);
    message.extend_from_slice(&tsig.fudge.to_be_bytes());
    message.extend_from_slice(&(tsig.mac.len() as u16).to_be_bytes());
    message.extend_from_slice(&tsig.mac);
    message.extend_from_slice(&tsig.original_id.to_be_bytes());
    message.extend_from_slice(&tsig.error.to_be_bytes());
    message.extend_from_slice(&(tsig.other.len() as u16).to_be_bytes());
    message.extend_from_slice(&tsig.other);
}

#[test]
fn truncated_answers_are_reported_before_any_tsig_check() {
    let key = key();
    let message = operation().message(Step::FwdAdd1).unwrap();
    let mut request = encode(&message, "example.com", 5).unwrap();
    let mac = key.sign(&mut request, 1).unwrap();
    let mut truncated = answer(&request, 0, None);
    truncated[2] |= 0x02;
    assert_eq!(
        decode_answer(&truncated, 5, Some(&key), &mac, 1),
        Ok(Answer {
            rcode: 0,
            truncated: true
        })
    );
}

#[test]
fn record_walk_is_bounded() {
    assert_eq!(last_record_offset(&[]), None);
    // One additional record claiming more RDATA than there is.
    let mut message = vec![0, 1, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    message.extend_from_slice(&[0, 0, 250, 0, 255, 0, 0, 0, 0, 0xff, 0xff]);
    assert_eq!(last_record_offset(&message), None);
    // Reserved label type, and a pointer cut short.
    assert_eq!(skip_name(&[0x40, 0], 0), None);
    assert_eq!(skip_name(&[0xc0], 0), None);
    assert_eq!(skip_name(&[3, b'a'], 0), None);
    // A well-formed TSIG record at the end is found.
    let mut signed = vec![0, 1, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    append_tsig(
        &mut signed,
        &crate::ddns::tsig::TsigRecord {
            key_name: b"\x01k\x00".to_vec(),
            algorithm: b"\x0bhmac-sha256\x00".to_vec(),
            time: 0,
            fudge: 0,
            mac: vec![0; 32],
            original_id: 1,
            error: 0,
            other: Vec::new(),
        },
    );
    assert_eq!(last_record_offset(&signed), Some(12));
}

/// Real BIND 9.18 answers (the `ddns_answer` fuzz seeds, captured from server/tests/integration/ddns_bind.rs's
/// named: flags, request MAC, time, answer) verify — or are refused — as they should.
#[test]
fn bind_answers_from_the_seed_corpus() {
    fn check(seed: &[u8], key: Option<&TsigKey>) -> Result<Answer, AnswerError> {
        let mac_length = usize::from(seed[1]);
        let mac = &seed[2..2 + mac_length];
        let now = u64::from_be_bytes(seed[2 + mac_length..10 + mac_length].try_into().unwrap());
        let answer = &seed[10 + mac_length..];
        decode_answer(answer, 0x4242, key, mac, now)
    }
    let md5 = TsigKey::new("ddns-md5", Algorithm::HmacMd5, b"0123456789abcdef".to_vec()).unwrap();
    let sha256 = TsigKey::new(
        "ddns-sha256",
        Algorithm::HmacSha256,
        b"the sha256 secret of ddns tests!".to_vec(),
    )
    .unwrap();
    let rcode = |result: Result<Answer, AnswerError>| result.map(|answer| answer.rcode);
    assert_eq!(
        rcode(check(
            include_bytes!("../../../../fuzz/seeds/ddns_answer/md5-noerror"),
            Some(&md5)
        )),
        Ok(0)
    );
    assert_eq!(
        rcode(check(
            include_bytes!("../../../../fuzz/seeds/ddns_answer/md5-yxdomain"),
            Some(&md5)
        )),
        Ok(6)
    );
    assert_eq!(
        rcode(check(
            include_bytes!("../../../../fuzz/seeds/ddns_answer/md5-nxrrset"),
            Some(&md5)
        )),
        Ok(8)
    );
    assert_eq!(
        rcode(check(
            include_bytes!("../../../../fuzz/seeds/ddns_answer/sha256-noerror-ptr"),
            Some(&sha256)
        )),
        Ok(0)
    );
    // Signed with the md5 key's name and another secret: BIND answers NOTAUTH, TSIG BADSIG.
    assert_eq!(
        check(
            include_bytes!("../../../../fuzz/seeds/ddns_answer/md5-badsig"),
            Some(&md5)
        ),
        Err(AnswerError::Tsig(TsigFailure::ServerRejected(16)))
    );
    // A key BIND does not know: NOTAUTH, TSIG BADKEY.
    let nobody = TsigKey::new("nobody", Algorithm::HmacMd5, b"0123456789abcdef".to_vec()).unwrap();
    assert_eq!(
        check(
            include_bytes!("../../../../fuzz/seeds/ddns_answer/badkey"),
            Some(&nobody)
        ),
        Err(AnswerError::Tsig(TsigFailure::ServerRejected(17)))
    );
    // The same answer checked with another key is another key's answer.
    assert_eq!(
        check(
            include_bytes!("../../../../fuzz/seeds/ddns_answer/badkey"),
            Some(&md5)
        ),
        Err(AnswerError::Tsig(TsigFailure::WrongKey))
    );
    assert_eq!(
        rcode(check(
            include_bytes!("../../../../fuzz/seeds/ddns_answer/unsigned-refused"),
            None
        )),
        Ok(5)
    );
    // A signed BIND answer checked against a later clock is outside the fudge.
    let seed = include_bytes!("../../../../fuzz/seeds/ddns_answer/md5-noerror");
    let mut late = seed.to_vec();
    let at = 2 + usize::from(late[1]);
    let now = u64::from_be_bytes(late[at..at + 8].try_into().unwrap()) + 301;
    late[at..at + 8].copy_from_slice(&now.to_be_bytes());
    assert_eq!(
        check(&late, Some(&md5)),
        Err(AnswerError::Tsig(TsigFailure::BadTime))
    );
}

/// A stable stand-in for the fuzzer (fuzz target `ddns_answer` runs on nightly): thousands of
/// deterministic mutations of BIND's answers — flipped octets, cuts, extensions, counts set
/// high — through the decoder with and without key. None may panic.
#[test]
fn mutated_bind_answers_never_panic() {
    let md5 = key();
    let seeds: [&[u8]; 4] = [
        include_bytes!("../../../../fuzz/seeds/ddns_answer/md5-noerror"),
        include_bytes!("../../../../fuzz/seeds/ddns_answer/md5-badsig"),
        include_bytes!("../../../../fuzz/seeds/ddns_answer/sha256-noerror-ptr"),
        include_bytes!("../../../../fuzz/seeds/ddns_answer/unsigned-refused"),
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for seed in seeds {
        let mac_length = usize::from(seed[1]);
        let mac = &seed[2..2 + mac_length];
        let answer = &seed[10 + mac_length..];
        for _ in 0..5_000 {
            let mut mutated = answer.to_vec();
            for _ in 0..1 + random() % 4 {
                let at = (random() as usize) % mutated.len().max(1);
                match random() % 4 {
                    0 if !mutated.is_empty() => mutated[at] ^= 1 << (random() % 8),
                    1 => mutated.truncate(at),
                    2 => mutated.extend((0..random() % 16).map(|_| random() as u8)),
                    _ if mutated.len() > 11 => mutated[4 + (random() as usize) % 8] = 0xff,
                    _ => {}
                }
            }
            let id = match mutated.as_slice() {
                [high, low, ..] => u16::from_be_bytes([*high, *low]),
                _ => 0,
            };
            let _ = decode_answer(&mutated, id, Some(&md5), mac, 1_700_000_000);
            let _ = decode_answer(&mutated, id, None, mac, 1_700_000_000);
            let _ = last_record_offset(&mutated);
        }
    }
}
