//! The OMAPI wire format as ISC dhcpd 4.4 speaks it (docs/spec/omapi.md §2-§3): the 8-byte introduction,
//! the 24-byte header (authid, authlen, op, handle, id, rid — in that order on the wire), two
//! name/value lists each ended by a zero name length, then the signature.
//!
//! [`decode_message`] decodes one message from the start of a buffer, answering `Ok(None)` until a
//! whole message is there and refusing anything larger than a caller-given bound. It walks the
//! buffer from its start on every call, so a connection feeds its stream to
//! `decoder::MessageDecoder` instead, which keeps its place between reads.

use thiserror::Error;

/// OMAPI protocol version 1.00 (docs/spec/omapi.md §2).
pub const PROTOCOL_VERSION: u32 = 100;
/// The header size we send, and the smallest we accept (docs/spec/omapi.md §2).
pub const HEADER_SIZE: u32 = 24;
/// Length of the introduction.
pub const INTRO_LEN: usize = 8;

/// Opcodes (omapip_p.h `OMAPI_OP_*`), open-world: unknown values survive a round trip.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Opcode(pub u32);

impl Opcode {
    pub const OPEN: Self = Self(1);
    pub const REFRESH: Self = Self(2);
    pub const UPDATE: Self = Self(3);
    pub const NOTIFY: Self = Self(4);
    pub const STATUS: Self = Self(5);
    pub const DELETE: Self = Self(6);

    fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::OPEN => "OPEN",
            Self::REFRESH => "REFRESH",
            Self::UPDATE => "UPDATE",
            Self::NOTIFY => "NOTIFY",
            Self::STATUS => "STATUS",
            Self::DELETE => "DELETE",
            _ => return None,
        })
    }
}

impl std::fmt::Debug for Opcode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Opcode({:#x})", self.0),
        }
    }
}

/// The 8-byte introduction both sides send on connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Intro {
    pub version: u32,
    pub header_size: u32,
}

impl Intro {
    /// What we send: version 100, header size 24.
    pub const OURS: Self = Self {
        version: PROTOCOL_VERSION,
        header_size: HEADER_SIZE,
    };

    pub fn encode(&self) -> [u8; INTRO_LEN] {
        let mut out = [0; INTRO_LEN];
        out[..4].copy_from_slice(&self.version.to_be_bytes());
        out[4..].copy_from_slice(&self.header_size.to_be_bytes());
        out
    }

    /// `Ok(None)` while fewer than 8 bytes are there.
    pub fn decode(bytes: &[u8]) -> Result<Option<Self>, WireError> {
        let (Some(version), Some(header_size)) = (be32(bytes, 0), be32(bytes, 4)) else {
            return Ok(None);
        };
        let intro = Self {
            version,
            header_size,
        };
        // ISC `omapi_protocol_signal_handler`, state intro_wait: both are fatal.
        if version != PROTOCOL_VERSION {
            return Err(WireError::Version(version));
        }
        if header_size < HEADER_SIZE {
            return Err(WireError::HeaderSize(header_size));
        }
        Ok(Some(intro))
    }
}

/// The fixed header, in wire order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub authid: u32,
    pub authlen: u32,
    pub op: Opcode,
    pub handle: u32,
    pub id: u32,
    pub rid: u32,
}

/// One name/value pair; a zero-length value is ISC's "null" (unset).
#[derive(Clone, PartialEq, Eq)]
pub struct Value {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

impl Value {
    pub fn new(name: &str, value: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.as_bytes().to_vec(),
            value: value.into(),
        }
    }

    pub fn u32(name: &str, value: u32) -> Self {
        Self::new(name, value.to_be_bytes().to_vec())
    }

    /// The value as ISC's `omapi_get_int_value` reads it: exactly 4 bytes, big-endian.
    pub fn as_u32(&self) -> Option<u32> {
        <[u8; 4]>::try_from(self.value.as_slice())
            .ok()
            .map(u32::from_be_bytes)
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}=", String::from_utf8_lossy(&self.name))?;
        for byte in &self.value {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// A whole message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub message_values: Vec<Value>,
    pub object_values: Vec<Value>,
    /// `authlen` bytes; empty when unsigned.
    pub signature: Vec<u8>,
}

/// Finds the first value named `name` in a list.
pub fn find<'a>(values: &'a [Value], name: &str) -> Option<&'a Value> {
    values.iter().find(|value| value.name == name.as_bytes())
}

impl Message {
    /// An unsigned message with empty lists.
    pub fn new(op: Opcode, handle: u32, id: u32, rid: u32) -> Self {
        Self {
            header: Header {
                authid: 0,
                authlen: 0,
                op,
                handle,
                id,
                rid,
            },
            message_values: Vec::new(),
            object_values: Vec::new(),
            signature: Vec::new(),
        }
    }

    pub fn message_value(&self, name: &str) -> Option<&Value> {
        find(&self.message_values, name)
    }

    /// Encodes everything the signature covers: the header without `authid`, both lists and
    /// their terminators (docs/spec/omapi.md §6.3). `authlen` is written as it stands in the header.
    pub fn encode_signed_part(&self, out: &mut Vec<u8>) {
        let header = &self.header;
        for field in [
            header.authlen,
            header.op.0,
            header.handle,
            header.id,
            header.rid,
        ] {
            out.extend_from_slice(&field.to_be_bytes());
        }
        for list in [&self.message_values, &self.object_values] {
            for value in list {
                // Names longer than u16 cannot be produced by the decoder; the encoder
                // truncates rather than emit a length that disagrees with the bytes.
                let name = &value.name[..value.name.len().min(usize::from(u16::MAX))];
                out.extend_from_slice(&(name.len() as u16).to_be_bytes());
                out.extend_from_slice(name);
                let bytes = &value.value[..value.value.len().min(u32::MAX as usize)];
                out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                out.extend_from_slice(bytes);
            }
            out.extend_from_slice(&[0, 0]);
        }
    }

    /// The whole message with a 24-byte header.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.header.authid.to_be_bytes());
        self.encode_signed_part(out);
        out.extend_from_slice(&self.signature);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// A decoded message and what it took from the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub message: Message,
    /// Bytes consumed from the buffer.
    pub length: usize,
    /// The bytes the signature covers: header bytes 4..24 and the lists (header bytes beyond
    /// 24 are skipped and not signed, docs/spec/omapi.md §2).
    pub signed: Vec<u8>,
}

/// Why a byte stream is not OMAPI.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("protocol version {0} (expected 100)")]
    Version(u32),
    #[error("header size {0} is below 24")]
    HeaderSize(u32),
    #[error("message longer than the {limit}-byte limit")]
    TooLong { limit: usize },
    #[error("signature length {0} is not supported")]
    SignatureLength(u32),
}

/// Decodes one message from the start of `bytes`, sent by a peer that announced `header_size`.
/// `Ok(None)`: incomplete, read more. Messages (or a declared length) beyond `limit` bytes are
/// refused, so the caller never buffers more than `limit`.
pub fn decode_message(
    bytes: &[u8],
    header_size: u32,
    limit: usize,
) -> Result<Option<Decoded>, WireError> {
    let header_size = header_size as usize;
    let Some(header_bytes) = bytes.get(..HEADER_SIZE as usize) else {
        return check_partial(bytes.len(), limit);
    };
    let field = |index: usize| be32(header_bytes, index * 4).unwrap_or(0);
    let header = Header {
        authid: field(0),
        authlen: field(1),
        op: Opcode(field(2)),
        handle: field(3),
        id: field(4),
        rid: field(5),
    };
    // No algorithm ISC supports signs with more than 64 bytes (HMAC-SHA512).
    if header.authlen > 64 {
        return Err(WireError::SignatureLength(header.authlen));
    }
    let mut position = header_size;
    let mut lists: [Vec<Value>; 2] = [Vec::new(), Vec::new()];
    for list in &mut lists {
        loop {
            let Some(name_length) = be16(bytes, position) else {
                return check_partial(bytes.len(), limit);
            };
            position += 2;
            if name_length == 0 {
                break;
            }
            let name_end = position + usize::from(name_length);
            let Some(value_length) = be32(bytes, name_end) else {
                return check_partial(bytes.len().max(name_end), limit);
            };
            let value_start = name_end + 4;
            let value_end = value_start.saturating_add(value_length as usize);
            if value_end > limit {
                return Err(WireError::TooLong { limit });
            }
            let Some(value) = bytes.get(value_start..value_end) else {
                return check_partial(bytes.len(), limit);
            };
            list.push(Value {
                name: bytes[position..name_end].to_vec(),
                value: value.to_vec(),
            });
            position = value_end;
        }
    }
    let lists_end = position;
    let end = lists_end + header.authlen as usize;
    if end > limit {
        return Err(WireError::TooLong { limit });
    }
    let Some(signature) = bytes.get(lists_end..end) else {
        return check_partial(bytes.len(), limit);
    };
    let mut signed = Vec::with_capacity(lists_end - header_size + 20);
    signed.extend_from_slice(&header_bytes[4..]);
    signed.extend_from_slice(&bytes[header_size..lists_end]);
    let [message_values, object_values] = lists;
    Ok(Some(Decoded {
        message: Message {
            header,
            message_values,
            object_values,
            signature: signature.to_vec(),
        },
        length: end,
        signed,
    }))
}

fn check_partial(have: usize, limit: usize) -> Result<Option<Decoded>, WireError> {
    if have >= limit {
        Err(WireError::TooLong { limit })
    } else {
        Ok(None)
    }
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let slice = bytes.get(at..at.checked_add(4)?)?;
    <[u8; 4]>::try_from(slice).ok().map(u32::from_be_bytes)
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let slice = bytes.get(at..at.checked_add(2)?)?;
    <[u8; 2]>::try_from(slice).ok().map(u16::from_be_bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// docs/spec/omapi.md §10 message 5, byte-exact from the capture.
    pub(crate) const LEASE_UPDATE: &str = "000000010000001000000003000000020478bd776b8b45680000000573746174650000000400000002000a69702d61646472657373000000040a6300690016646863702d636c69656e742d6964656e7469666965720000000701021122334455000f636c69656e742d686f73746e616d65000000076c6162686f737400067375626e657400000004000000030004706f6f6c0000000400000004001068617264776172652d6164647265737300000006021122334455000d68617264776172652d7479706500000004000000010004656e64730000000470e11e80000673746172747300000004677485800004747374700000000470e11e8000047473667000000004000000000005617473667000000004000000000004636c747400000004677485800005666c616773000000010000003fe5e81e41c3f073b8ba40e4b45e7a64";

    pub(crate) fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|index| u8::from_str_radix(&text[index..index + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn decodes_the_lease_update_of_the_spec() {
        let bytes = hex(LEASE_UPDATE);
        assert_eq!(bytes.len(), 322);
        let decoded = decode_message(&bytes, 24, 65536).unwrap().unwrap();
        assert_eq!(decoded.length, 322);
        let message = &decoded.message;
        assert_eq!(message.header.op, Opcode::UPDATE);
        assert_eq!(message.header.handle, 2);
        assert_eq!(message.header.rid, 0x6b8b4568);
        assert!(message.message_values.is_empty());
        assert_eq!(message.object_values.len(), 15);
        assert_eq!(
            find(&message.object_values, "flags").unwrap().value,
            vec![0]
        );
        assert_eq!(message.to_bytes(), bytes);
        assert_eq!(decoded.signed, bytes[4..306]);
    }

    #[test]
    fn every_prefix_is_incomplete_not_an_error() {
        let bytes = hex(LEASE_UPDATE);
        for cut in 0..bytes.len() {
            assert_eq!(decode_message(&bytes[..cut], 24, 65536), Ok(None), "{cut}");
        }
    }

    #[test]
    fn a_longer_header_is_skipped_and_not_signed() {
        let bytes = hex(LEASE_UPDATE);
        let mut long = bytes[..24].to_vec();
        long.extend_from_slice(&[0xee; 4]);
        long.extend_from_slice(&bytes[24..]);
        let decoded = decode_message(&long, 28, 65536).unwrap().unwrap();
        assert_eq!(decoded.length, 326);
        assert_eq!(decoded.signed, bytes[4..306]);
        assert_eq!(decoded.message.to_bytes(), bytes);
    }

    #[test]
    fn oversized_values_are_refused_before_buffering() {
        let mut message = Message::new(Opcode::OPEN, 0, 1, 0);
        message.object_values.push(Value::new("x", vec![0; 10]));
        let mut bytes = message.to_bytes();
        // Declare a 4 GB value.
        bytes[24 + 2 + 2 + 1..24 + 2 + 2 + 1 + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            decode_message(&bytes, 24, 1024),
            Err(WireError::TooLong { limit: 1024 })
        );
        // An endless list of small pairs stops at the bound too.
        let mut endless = Message::new(Opcode::OPEN, 0, 1, 0).to_bytes();
        endless.truncate(24);
        for _ in 0..300 {
            endless.extend_from_slice(&[0, 1, b'x', 0, 0, 0, 0]);
        }
        assert_eq!(
            decode_message(&endless, 24, 1024),
            Err(WireError::TooLong { limit: 1024 })
        );
    }

    #[test]
    fn intro_checks_version_and_header_size() {
        assert_eq!(Intro::decode(&Intro::OURS.encode()), Ok(Some(Intro::OURS)));
        assert_eq!(Intro::decode(&[0, 0, 0, 100]), Ok(None));
        assert_eq!(
            Intro::decode(&[0, 0, 0, 99, 0, 0, 0, 24]),
            Err(WireError::Version(99))
        );
        assert_eq!(
            Intro::decode(&[0, 0, 0, 100, 0, 0, 0, 20]),
            Err(WireError::HeaderSize(20))
        );
        assert_eq!(format!("{:?}", Opcode(9)), "Opcode(0x9)");
    }
}
