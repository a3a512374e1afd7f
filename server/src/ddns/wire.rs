//! UPDATE messages on the wire (RFC 2136 §2) and the server's answers, encoded and decoded by
//! hickory-proto; TSIG by `super::tsig`.
//!
//! Every answer is hostile input: [`decode_answer`] checks the ID, the QR bit and the opcode,
//! lets hickory decode the whole message (bounded by the datagram), finds the TSIG record's
//! offset with its own bounds-checked walk, and verifies the signature when the zone has a key.
//! Any flaw is an [`AnswerError`], never a panic (fuzz target `ddns_answer`).

use hickory_proto::op::{Message as DnsMessage, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, NULL, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::guard::name_to_wire;
use super::plan::{Class, Data, Message, Rr};
use super::tsig::{TsigFailure, TsigKey, TsigRecord, TSIG_TYPE};

/// The largest request sent over UDP: RFC 1035 §4.2.1 without EDNS (ISC's client sends no
/// OPT record either). Larger requests go over TCP.
pub const MAX_UDP_REQUEST: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("`{0}` is not a valid domain name")]
    Name(String),
    #[error("encoding failed: {0}")]
    Encode(String),
}

fn name(text: &str) -> Result<Name, EncodeError> {
    let mut name = Name::from_ascii(text).map_err(|_| EncodeError::Name(text.to_string()))?;
    name.set_fqdn(true);
    // The wire form must be a valid name too (hickory accepts some names RFC 1035 does not).
    name_to_wire(text).ok_or_else(|| EncodeError::Name(text.to_string()))?;
    Ok(name)
}

fn class(class: Class) -> DNSClass {
    match class {
        Class::In => DNSClass::IN,
        Class::None => DNSClass::NONE,
        Class::Any => DNSClass::ANY,
    }
}

fn record(rr: &Rr) -> Result<Record, EncodeError> {
    let owner = name(&rr.name)?;
    let mut record = match &rr.data {
        None => Record::update0(owner, rr.ttl, RecordType::from(rr.rtype)),
        Some(Data::A(address)) => Record::from_rdata(owner, rr.ttl, RData::A(A(*address))),
        Some(Data::Ptr(target)) => {
            Record::from_rdata(owner, rr.ttl, RData::PTR(PTR(name(target)?)))
        }
        // The guard's RDATA as ISC writes it, byte for byte (DHCID is unknown to hickory).
        Some(Data::Guard(guard)) => Record::from_rdata(
            owner,
            rr.ttl,
            RData::Unknown {
                code: RecordType::from(guard.record_type()),
                rdata: NULL::with(guard.rdata()),
            },
        ),
    };
    record.dns_class = class(rr.class);
    Ok(record)
}

/// The UPDATE message for `message` in zone `zone` with ID `id`, unsigned.
pub fn encode(message: &Message, zone: &str, id: u16) -> Result<Vec<u8>, EncodeError> {
    let mut update = DnsMessage::new(id, MessageType::Query, OpCode::Update);
    // RFC 2136 §2.3: the zone section holds one entry, ZTYPE SOA, ZCLASS IN.
    let mut query = Query::query(name(zone)?, RecordType::SOA);
    query.set_query_class(DNSClass::IN);
    update.add_query(query);
    for rr in &message.prerequisites {
        update.add_answer(record(rr)?);
    }
    for rr in &message.updates {
        update.add_authority(record(rr)?);
    }
    update
        .to_vec()
        .map_err(|error| EncodeError::Encode(error.to_string()))
}

/// What an answer says, once accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub rcode: u16,
    /// TC: the answer did not fit; ask again over TCP.
    pub truncated: bool,
}

/// Why an answer is not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("answer too short or undecodable: {0}")]
    Malformed(String),
    #[error("answer to another request (ID {got}, expected {expected})")]
    WrongId { got: u16, expected: u16 },
    #[error("not an answer to an UPDATE")]
    NotAnUpdateAnswer,
    #[error(transparent)]
    Tsig(#[from] TsigFailure),
}

/// Decodes and checks an answer to our request `id`. With `key`, the answer must carry a TSIG
/// record that verifies against `request_mac` at time `now` (RFC 8945 §5.3); without, a TSIG
/// record is ignored. A truncated answer is returned as such before any TSIG check (it may
/// have lost its TSIG record; the caller retries over TCP).
pub fn decode_answer(
    bytes: &[u8],
    id: u16,
    key: Option<&TsigKey>,
    request_mac: &[u8],
    now: u64,
) -> Result<Answer, AnswerError> {
    if bytes.len() < 12 {
        return Err(AnswerError::Malformed("shorter than a header".into()));
    }
    let got = u16::from_be_bytes([bytes[0], bytes[1]]);
    if got != id {
        return Err(AnswerError::WrongId { got, expected: id });
    }
    let flags = u16::from_be_bytes([bytes[2], bytes[3]]);
    let is_answer = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xf;
    if !is_answer || opcode != 5 {
        return Err(AnswerError::NotAnUpdateAnswer);
    }
    let rcode = flags & 0xf;
    let truncated = flags & 0x0200 != 0;
    if truncated {
        return Ok(Answer { rcode, truncated });
    }
    let message =
        DnsMessage::from_vec(bytes).map_err(|error| AnswerError::Malformed(error.to_string()))?;
    let Some(key) = key else {
        return Ok(Answer { rcode, truncated });
    };
    let tsig = match message.additionals.last() {
        Some(Record {
            name,
            data: RData::TSIG(tsig),
            ..
        }) => TsigRecord {
            key_name: name_to_wire(&name.to_ascii()).ok_or(TsigFailure::Malformed)?,
            algorithm: name_to_wire(&tsig.algorithm.to_name().to_ascii())
                .ok_or(TsigFailure::Malformed)?,
            time: tsig.time,
            fudge: tsig.fudge,
            mac: tsig.mac.clone(),
            original_id: tsig.oid,
            error: tsig.error.map(u16::from).unwrap_or(0),
            other: tsig.other.clone(),
        },
        _ => return Err(TsigFailure::Unsigned.into()),
    };
    let offset = last_record_offset(bytes).ok_or(TsigFailure::Malformed)?;
    key.verify(&bytes[..offset], &tsig, request_mac, now)?;
    Ok(Answer { rcode, truncated })
}

/// The offset of the last record of the additional section, which must be a TSIG record
/// running to the end of the message; `None` when the message does not parse that way.
pub fn last_record_offset(bytes: &[u8]) -> Option<usize> {
    let count = |at: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            *bytes.get(at)?,
            *bytes.get(at + 1)?,
        ])))
    };
    let questions = count(4)?;
    let records = count(6)? + count(8)? + count(10)?;
    let mut offset = 12;
    for _ in 0..questions {
        offset = skip_name(bytes, offset)? + 4;
    }
    let mut last = None;
    for _ in 0..records {
        last = Some(offset);
        let after_name = skip_name(bytes, offset)?;
        let rdata_length = count(after_name + 8)?;
        offset = after_name + 10 + rdata_length;
        if offset > bytes.len() {
            return None;
        }
    }
    let last = last?;
    let after_name = skip_name(bytes, last)?;
    let rtype = count(after_name)?;
    (offset == bytes.len() && rtype == usize::from(TSIG_TYPE)).then_some(last)
}

/// The offset after the name at `offset`: labels up to the root label or a compression
/// pointer (RFC 1035 §4.1.4), which ends the name in place.
pub(crate) fn skip_name(bytes: &[u8], mut offset: usize) -> Option<usize> {
    loop {
        let length = *bytes.get(offset)?;
        match length & 0xc0 {
            0x00 if length == 0 => return Some(offset + 1),
            0x00 => offset += 1 + usize::from(length),
            0xc0 => {
                bytes.get(offset + 1)?;
                return Some(offset + 2);
            }
            // 0x40 and 0x80 are reserved label types.
            _ => return None,
        }
        if offset > bytes.len() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests;
