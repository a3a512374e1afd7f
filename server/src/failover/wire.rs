//! Failover message codec: the 12-byte header and the option TLVs (docs/spec/failover.md §2), lossless.
//!
//! [`Message`] is the raw layer: header fields, any extra header bytes (payload offset > 12) and
//! the options in wire order, so `decode` then `encode` gives back the same bytes for every
//! message, including unknown types and options. [`Body`](super::body::Body) is the typed view.

use thiserror::Error;

pub use super::codes::{MessageType, OptionCode, OptionKind};
use crate::lease::record::UnixTime;

/// ISC's smallest and largest message (includes/failover.h, docs/spec/failover.md §2).
pub const MIN_MESSAGE_SIZE: usize = 12;
pub const MAX_MESSAGE_SIZE: usize = 2048;
/// The payload offset ISC always sends; anything else confuses ISC's parser (§14.1).
pub const PAYLOAD_OFFSET: u8 = 12;

/// What is wrong with received bytes. All of these are the peer's fault: ISC logs them and
/// closes the connection (§2.1 rule 6).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("message length {length} outside {MIN_MESSAGE_SIZE}..={MAX_MESSAGE_SIZE}")]
    Length { length: usize },
    #[error("payload offset {offset} outside 12..={length}")]
    PayloadOffset { offset: u8, length: usize },
    #[error("message of {expected} bytes given {actual}")]
    Truncated { expected: usize, actual: usize },
    #[error("option {code:?} runs past the end of the message")]
    OptionOverrun { code: OptionCode },
    #[error("option header cut short ({remaining} bytes left)")]
    OptionHeader { remaining: usize },
    #[error("option {code:?} has {actual} bytes, expected {expected}")]
    OptionSize {
        code: OptionCode,
        expected: usize,
        actual: usize,
    },
    #[error("option {code:?} appears twice in {message_type:?}")]
    DuplicateOption {
        message_type: MessageType,
        code: OptionCode,
    },
    #[error("{message_type:?} lacks {code:?}")]
    MissingOption {
        message_type: MessageType,
        code: OptionCode,
    },
    #[error("message type {message_type:?} is unknown and carries options")]
    UnknownMessageType { message_type: MessageType },
    #[error("encoded message would be {length} bytes, more than {MAX_MESSAGE_SIZE}")]
    TooLong { length: usize },
}

/// One option as it was on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawOption {
    pub code: OptionCode,
    pub data: Vec<u8>,
}

impl RawOption {
    pub fn new(code: OptionCode, data: impl Into<Vec<u8>>) -> Self {
        Self {
            code,
            data: data.into(),
        }
    }

    /// Checks the size ISC's table requires (§2.1 rule 5).
    pub fn check_size(&self) -> Result<(), WireError> {
        match self.code.kind() {
            OptionKind::Fixed(expected) if self.data.len() != expected => {
                Err(WireError::OptionSize {
                    code: self.code,
                    expected,
                    actual: self.data.len(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// One failover message, raw (draft §6.1, docs/spec/failover.md §2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub message_type: MessageType,
    /// Sender's clock at sending (epoch seconds).
    pub time: UnixTime,
    pub xid: u32,
    /// Header bytes after the 12 we know (payload offset − 12); empty from ISC.
    pub header_extra: Vec<u8>,
    pub options: Vec<RawOption>,
}

impl Message {
    /// A message with the standard header and no options.
    pub fn new(message_type: MessageType, time: UnixTime, xid: u32) -> Self {
        Self {
            message_type,
            time,
            xid,
            header_extra: Vec::new(),
            options: Vec::new(),
        }
    }

    /// Decodes exactly one message; `bytes` must be the whole message (see [`frame_length`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let length = frame_length(bytes)?.ok_or(WireError::Truncated {
            expected: MIN_MESSAGE_SIZE,
            actual: bytes.len(),
        })?;
        if length != bytes.len() {
            return Err(WireError::Truncated {
                expected: length,
                actual: bytes.len(),
            });
        }
        let offset = bytes[3];
        if usize::from(offset) < MIN_MESSAGE_SIZE || usize::from(offset) > length {
            return Err(WireError::PayloadOffset { offset, length });
        }
        let mut options = Vec::new();
        let mut rest = &bytes[usize::from(offset)..];
        while !rest.is_empty() {
            let [code_high, code_low, len_high, len_low, tail @ ..] = rest else {
                return Err(WireError::OptionHeader {
                    remaining: rest.len(),
                });
            };
            let code = OptionCode::from(u16::from_be_bytes([*code_high, *code_low]));
            let data_length = usize::from(u16::from_be_bytes([*len_high, *len_low]));
            let data = tail
                .get(..data_length)
                .ok_or(WireError::OptionOverrun { code })?;
            options.push(RawOption::new(code, data));
            rest = &tail[data_length..];
        }
        Ok(Self {
            message_type: MessageType::from(bytes[2]),
            time: be_u32(&bytes[4..8]),
            xid: be_u32(&bytes[8..12]),
            header_extra: bytes[MIN_MESSAGE_SIZE..usize::from(offset)].to_vec(),
            options,
        })
    }

    /// The encoded length.
    pub fn encoded_len(&self) -> usize {
        MIN_MESSAGE_SIZE
            + self.header_extra.len()
            + self
                .options
                .iter()
                .map(|option| 4 + option.data.len())
                .sum::<usize>()
    }

    /// Appends the encoded message to `out`. Fails (writing nothing) when the message would
    /// exceed ISC's 2048-byte limit or an option cannot fit its 16-bit length.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let length = self.encoded_len();
        if length > MAX_MESSAGE_SIZE {
            return Err(WireError::TooLong { length });
        }
        // Both fit in their fields: length ≤ 2048, so every part is < 65536 and offset < 256
        // unless header_extra is huge, which the length check above already excludes.
        let offset = MIN_MESSAGE_SIZE + self.header_extra.len();
        let offset = u8::try_from(offset).map_err(|_| WireError::TooLong { length })?;
        out.reserve(length);
        out.extend_from_slice(&(length as u16).to_be_bytes());
        out.push(u8::from(self.message_type));
        out.push(offset);
        out.extend_from_slice(&self.time.to_be_bytes());
        out.extend_from_slice(&self.xid.to_be_bytes());
        out.extend_from_slice(&self.header_extra);
        for option in &self.options {
            out.extend_from_slice(&u16::from(option.code).to_be_bytes());
            out.extend_from_slice(&(option.data.len() as u16).to_be_bytes());
            out.extend_from_slice(&option.data);
        }
        Ok(())
    }

    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// The first option with `code`.
    pub fn option(&self, code: OptionCode) -> Option<&RawOption> {
        self.options.iter().find(|option| option.code == code)
    }

    pub fn push(&mut self, code: OptionCode, data: impl Into<Vec<u8>>) {
        self.options.push(RawOption::new(code, data));
    }
}

/// The length of the first message in a TCP byte stream: `Ok(None)` until its 2-byte length has
/// arrived, then the length, or an error when it is outside 12..=2048 (ISC drops the link).
/// Messages are back to back with no separator (docs/spec/failover.md §2).
pub fn frame_length(stream: &[u8]) -> Result<Option<usize>, WireError> {
    let [high, low, ..] = stream else {
        return Ok(None);
    };
    let length = usize::from(u16::from_be_bytes([*high, *low]));
    if !(MIN_MESSAGE_SIZE..=MAX_MESSAGE_SIZE).contains(&length) {
        return Err(WireError::Length { length });
    }
    Ok(Some(length))
}

/// Splits complete messages off the front of a receive buffer.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    buffer: Vec<u8>,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed. After an error the
    /// stream is unusable (no resynchronisation is possible in a length-prefixed stream).
    pub fn next_message(&mut self) -> Result<Option<Message>, WireError> {
        let Some(length) = frame_length(&self.buffer)? else {
            return Ok(None);
        };
        if self.buffer.len() < length {
            return Ok(None);
        }
        let message = Message::decode(&self.buffer[..length]);
        self.buffer.drain(..length);
        message.map(Some)
    }

    /// Bytes received but not yet part of a complete message.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }
}

pub(crate) fn be_u32(bytes: &[u8]) -> u32 {
    let mut word = [0; 4];
    for (target, source) in word.iter_mut().zip(bytes) {
        *target = *source;
    }
    u32::from_be_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text
            .bytes()
            .filter(|byte| byte.is_ascii_hexdigit())
            .collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    /// The CONNECT of docs/spec/failover.md §4.1 [lab].
    #[test]
    fn spec_connect_round_trips() {
        let bytes = hex(
            "006c 050c 6b0a497b 00000000 0016 0006 6c61622d666f 000e 0004 0000000a
            0013 0004 0000001e 001c 000c 6973632d342e342e332d5031 0014 0001 01 001b 0001 00
            000f 0004 0000012c 000b 0020 ffffffffffffffffffffffffffffffff
            00000000000000000000000000000000",
        );
        let message = Message::decode(&bytes).unwrap();
        assert_eq!(message.message_type, MessageType::Connect);
        assert_eq!(message.options.len(), 8);
        assert_eq!(message.encode().unwrap(), bytes);
    }

    #[test]
    fn unknown_options_and_header_bytes_survive() {
        let bytes =
            hex("0020 630e 00000001 00000002 abcd 1234 0002 beef 0063 0004 01020304 0000 0000");
        let message = Message::decode(&bytes).unwrap();
        assert_eq!(message.message_type, MessageType::Unknown(0x63));
        assert_eq!(message.header_extra, vec![0xab, 0xcd]);
        assert_eq!(message.options[1].code, OptionCode::Unknown(0x63));
        assert_eq!(message.encode().unwrap(), bytes);
    }

    #[test]
    fn rejects_bad_framing() {
        assert_eq!(
            frame_length(&[0, 11]),
            Err(WireError::Length { length: 11 })
        );
        assert_eq!(
            frame_length(&[0x08, 0x01]),
            Err(WireError::Length { length: 2049 })
        );
        assert_eq!(frame_length(&[0]), Ok(None));
        let bad_offset = hex("000c 0b08 00000000 00000000");
        assert!(matches!(
            Message::decode(&bad_offset),
            Err(WireError::PayloadOffset { offset: 8, .. })
        ));
        let overrun = hex("0012 0b0c 00000000 00000000 0002 0004 0a00");
        assert!(matches!(
            Message::decode(&overrun),
            Err(WireError::OptionOverrun { .. })
        ));
        let short_header = hex("000e 0b0c 00000000 00000000 0002");
        assert!(matches!(
            Message::decode(&short_header),
            Err(WireError::OptionHeader { remaining: 2 })
        ));
    }

    #[test]
    fn stream_decoder_splits_and_joins() {
        let contact = hex("000c 0b0c 00000001 00000002");
        let mut stream = contact.clone();
        stream.extend_from_slice(&contact);
        let mut decoder = StreamDecoder::new();
        decoder.extend(&stream[..5]);
        assert_eq!(decoder.next_message(), Ok(None));
        decoder.extend(&stream[5..]);
        assert!(decoder.next_message().unwrap().is_some());
        assert!(decoder.next_message().unwrap().is_some());
        assert_eq!(decoder.next_message(), Ok(None));
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn refuses_to_encode_oversized() {
        let mut message = Message::new(MessageType::BindUpdate, 0, 1);
        message.push(OptionCode::ClientIdentifier, vec![0; 2040]);
        assert!(matches!(message.encode(), Err(WireError::TooLong { .. })));
    }
}
