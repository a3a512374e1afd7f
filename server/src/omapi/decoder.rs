//! The OMAPI stream decoder: a message arrives in pieces of any size and is framed field by field
//! as they complete (docs/spec/omapi.md §3: the 24-byte header, then length-prefixed names and
//! values, two lists each ended by a zero name length, then `authlen` bytes of signature).
//!
//! A message has no overall length on the wire, so a decoder that re-parses its buffer from the
//! start after every read does quadratic work on a message trickled in small pieces (a 62 KB
//! message of 8-byte pairs sent 8 bytes at a time: ~7,900 re-parses of up to 7,900 pairs each).
//! [`MessageDecoder`] keeps its place instead: each byte is copied once into the message being
//! built and, when the message is complete, parsed once more by [`decode_message`]; the count is
//! [`MessageDecoder::bytes_examined`]. The message is bounded by a limit checked as soon as a
//! declared length is read, so a peer cannot make it buffer more.

use super::wire::{decode_message, Decoded, WireError, HEADER_SIZE};

/// The field the decoder is waiting for; each ends at `MessageDecoder::field_end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    /// The fixed header (and the extra header bytes a peer may announce, §2).
    Header,
    /// A name length of list 0 (message values) or 1 (object values); 0 ends the list.
    NameLength { list: u8 },
    /// The name just announced and the 4-byte value length after it.
    NameAndValueLength { list: u8 },
    /// The value just announced.
    Value { list: u8 },
    /// `authlen` bytes after the object-value terminator.
    Signature,
}

/// Decodes a stream of messages from a peer that announced `header_size`, keeping its place
/// across reads.
#[derive(Debug)]
pub struct MessageDecoder {
    header_size: usize,
    limit: usize,
    /// The bytes of the current message received so far.
    message: Vec<u8>,
    field: Field,
    /// Where in `message` the awaited field ends.
    field_end: usize,
    authlen: usize,
    bytes_examined: u64,
}

impl MessageDecoder {
    /// A decoder for a peer whose introduction announced `header_size` (≥ 24, checked by
    /// `Intro::decode`); messages longer than `limit` bytes are refused.
    pub fn new(header_size: u32, limit: usize) -> Self {
        let header_size = (header_size as usize).max(HEADER_SIZE as usize);
        Self {
            header_size,
            limit,
            message: Vec::new(),
            field: Field::Header,
            field_end: header_size,
            authlen: 0,
            bytes_examined: 0,
        }
    }

    /// Takes bytes from `input` up to the end of one message. Returns how many it took and the
    /// message when it completed; with `None`, all of `input` was taken and more is needed.
    /// Call again with the rest of `input` after a message. After an error the stream cannot
    /// be resynchronised (there is no framing to find the next message), so the connection
    /// must be closed.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<Decoded>), WireError> {
        let mut taken = 0;
        loop {
            // Also refuses a header size announced beyond the limit before buffering it.
            if self.field_end > self.limit {
                return Err(WireError::TooLong { limit: self.limit });
            }
            let missing = self.field_end - self.message.len();
            let piece = input.get(taken..).unwrap_or_default();
            let piece = piece.get(..missing).unwrap_or(piece);
            self.message.extend_from_slice(piece);
            taken += piece.len();
            self.bytes_examined += piece.len() as u64;
            if self.message.len() < self.field_end {
                return Ok((taken, None));
            }
            if let Some(decoded) = self.field_complete()? {
                return Ok((taken, Some(decoded)));
            }
        }
    }

    /// Bytes of the current, unfinished message held so far.
    pub fn buffered(&self) -> usize {
        self.message.len()
    }

    /// Every byte copied into a message plus every byte of a completed message parsed again:
    /// at most twice the stream's length, however it was cut into reads.
    pub fn bytes_examined(&self) -> u64 {
        self.bytes_examined
    }

    /// The awaited field is in `message`: move to the next one, or finish the message.
    fn field_complete(&mut self) -> Result<Option<Decoded>, WireError> {
        let end = self.field_end;
        let next = match self.field {
            Field::Header => {
                let authlen = be32(&self.message, 4);
                // No algorithm ISC supports signs with more than 64 bytes (HMAC-SHA512).
                if authlen > 64 {
                    return Err(WireError::SignatureLength(authlen));
                }
                self.authlen = authlen as usize;
                (Field::NameLength { list: 0 }, 2)
            }
            Field::NameLength { list } => match (be16(&self.message, end - 2), list) {
                (0, 0) => (Field::NameLength { list: 1 }, 2),
                (0, _) => (Field::Signature, self.authlen),
                (length, _) => (Field::NameAndValueLength { list }, usize::from(length) + 4),
            },
            Field::NameAndValueLength { list } => {
                let length = be32(&self.message, end - 4);
                (Field::Value { list }, length as usize)
            }
            Field::Value { list } => (Field::NameLength { list }, 2),
            Field::Signature => return self.finish().map(Some),
        };
        (self.field, self.field_end) = (next.0, end.saturating_add(next.1));
        Ok(None)
    }

    fn finish(&mut self) -> Result<Decoded, WireError> {
        let message = std::mem::take(&mut self.message);
        self.bytes_examined += message.len() as u64;
        self.field = Field::Header;
        self.field_end = self.header_size;
        self.authlen = 0;
        // The framing above found exactly one whole message, so this parse succeeds; a
        // disagreement would be a bug, reported as an error rather than a panic.
        match decode_message(&message, self.header_size as u32, message.len()) {
            Ok(Some(decoded)) if decoded.length == message.len() => Ok(decoded),
            _ => Err(WireError::TooLong {
                limit: message.len(),
            }),
        }
    }
}

/// Big-endian u32 at `at`; callers have checked the bytes are there.
fn be32(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|slice| <[u8; 4]>::try_from(slice).ok())
        .map_or(0, u32::from_be_bytes)
}

fn be16(bytes: &[u8], at: usize) -> u16 {
    bytes
        .get(at..at + 2)
        .and_then(|slice| <[u8; 2]>::try_from(slice).ok())
        .map_or(0, u16::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::omapi::wire::tests::{hex, LEASE_UPDATE};
    use crate::omapi::wire::{Message, Opcode, Value};

    /// Feeds `stream` in pieces of `piece` bytes; every message decoded.
    fn decode_in_pieces(decoder: &mut MessageDecoder, stream: &[u8], piece: usize) -> Vec<Decoded> {
        let mut decoded = Vec::new();
        for mut chunk in stream.chunks(piece) {
            while !chunk.is_empty() {
                let (taken, message) = decoder.decode(chunk).unwrap();
                chunk = &chunk[taken..];
                decoded.extend(message);
            }
        }
        decoded
    }

    #[test]
    fn pieces_of_any_size_decode_like_the_whole() {
        let one = hex(LEASE_UPDATE);
        let stream = [one.as_slice(), &one, &one].concat();
        let whole = decode_message(&one, 24, 65536).unwrap().unwrap();
        for piece in [1, 2, 3, 7, 24, 100, 322, 1000] {
            let mut decoder = MessageDecoder::new(24, 65536);
            let decoded = decode_in_pieces(&mut decoder, &stream, piece);
            assert_eq!(decoded, vec![whole.clone(), whole.clone(), whole.clone()]);
            assert_eq!(decoder.buffered(), 0);
        }
    }

    #[test]
    fn a_longer_announced_header_is_skipped() {
        let bytes = hex(LEASE_UPDATE);
        let mut long = bytes[..24].to_vec();
        long.extend_from_slice(&[0xee; 4]);
        long.extend_from_slice(&bytes[24..]);
        let mut decoder = MessageDecoder::new(28, 65536);
        let decoded = decode_in_pieces(&mut decoder, &long, 5);
        assert_eq!(decoded.len(), 1);
        assert_eq!(decoded[0].signed, bytes[4..306]);
        assert_eq!(decoded[0].message.to_bytes(), bytes);
    }

    /// A 62 KB message of small pairs, trickled 8 bytes at a time (the hostile peer of the
    /// "Faults and hostile peers" issue): the decoder takes every piece whole and examines each
    /// byte at most twice, where re-parsing the buffer after each read walked ~31 million pairs.
    #[test]
    fn a_trickled_message_is_examined_a_bounded_number_of_times() {
        let mut message = Message::new(Opcode::OPEN, 0, 1, 0);
        message.message_values.push(Value::new("type", "lease"));
        while message.to_bytes().len() < 62 * 1024 {
            message.object_values.push(Value::new("x", vec![7]));
        }
        let bytes = message.to_bytes();
        let mut decoder = MessageDecoder::new(24, 64 * 1024);
        let mut completed = Vec::new();
        for piece in bytes.chunks(8) {
            let (taken, decoded) = decoder.decode(piece).unwrap();
            assert_eq!(taken, piece.len());
            completed.extend(decoded);
        }
        assert_eq!(completed.len(), 1);
        assert_eq!(completed[0].message, message);
        assert!(
            decoder.bytes_examined() <= 2 * bytes.len() as u64,
            "{} bytes examined for a {}-byte message",
            decoder.bytes_examined(),
            bytes.len()
        );
    }

    #[test]
    fn declared_lengths_beyond_the_limit_are_refused_before_buffering() {
        let mut message = Message::new(Opcode::OPEN, 0, 1, 0);
        message.object_values.push(Value::new("x", vec![0; 10]));
        let mut bytes = message.to_bytes();
        // A 4 GB value: refused once its length is read, with 33 bytes buffered.
        bytes[24 + 2 + 2 + 1..24 + 2 + 2 + 1 + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        let mut decoder = MessageDecoder::new(24, 1024);
        assert_eq!(
            decoder.decode(&bytes[..33]),
            Err(WireError::TooLong { limit: 1024 })
        );
        // An endless list of small pairs stops at the bound too, with at most `limit` held.
        let mut decoder = MessageDecoder::new(24, 1024);
        let mut endless = bytes[..24].to_vec();
        for _ in 0..300 {
            endless.extend_from_slice(&[0, 1, b'x', 0, 0, 0, 0]);
        }
        let mut outcome = Ok((0, None));
        for piece in endless.chunks(8) {
            outcome = decoder.decode(piece);
            if outcome.is_err() {
                break;
            }
            assert!(decoder.buffered() <= 1024);
        }
        assert_eq!(outcome, Err(WireError::TooLong { limit: 1024 }));
        // A header size announced beyond the limit: refused before anything is buffered.
        assert_eq!(
            MessageDecoder::new(u32::MAX, 1024).decode(&[0; 8]),
            Err(WireError::TooLong { limit: 1024 })
        );
        // A signature longer than any algorithm's.
        let mut signed = Message::new(Opcode::OPEN, 0, 1, 0).to_bytes();
        signed[4..8].copy_from_slice(&65u32.to_be_bytes());
        assert_eq!(
            MessageDecoder::new(24, 1024).decode(&signed),
            Err(WireError::SignatureLength(65))
        );
    }
}
