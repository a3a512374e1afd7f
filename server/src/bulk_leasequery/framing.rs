//! RFC 6926 §6.1 TCP framing: every DHCPv4 message on the connection is preceded by its
//! length, two octets in network byte order. Sans-IO: bytes in, whole messages out.

/// The BOOTP header and magic cookie (RFC 2131 §2): no DHCP message is shorter.
pub const MINIMUM_MESSAGE: usize = 240;

/// Why the stream cannot go on (RFC 6926 §7.6: the server closes the connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("a message of {0} bytes is shorter than a DHCP header")]
    TooShort(usize),
}

/// Reassembles length-prefixed messages from the bytes of a TCP stream. Holds at most one
/// message and its prefix (64 KiB + 2): a length field cannot announce more.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
}

impl FrameDecoder {
    /// Bytes as they came from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole message, `Ok(None)` until one is complete.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        let [high, low, ..] = self.buffer[..] else {
            return Ok(None);
        };
        let length = usize::from(u16::from_be_bytes([high, low]));
        if length < MINIMUM_MESSAGE {
            return Err(FramingError::TooShort(length));
        }
        if self.buffer.len() < 2 + length {
            return Ok(None);
        }
        let message = self.buffer[2..2 + length].to_vec();
        self.buffer.drain(..2 + length);
        Ok(Some(message))
    }

    /// Bytes received and not yet part of a whole message.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }
}

/// `message` with its length prefix; `None` when it is longer than a length field can say.
pub fn frame(message: &[u8]) -> Option<Vec<u8>> {
    let length = u16::try_from(message.len()).ok()?;
    let mut framed = Vec::with_capacity(2 + message.len());
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    Some(framed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_and_joined_across_reads() {
        let first = vec![1u8; 300];
        let second = vec![2u8; 250];
        let mut stream = frame(&first).unwrap();
        stream.extend(frame(&second).unwrap());
        let mut decoder = FrameDecoder::default();
        let mut out = Vec::new();
        for chunk in stream.chunks(7) {
            decoder.push(chunk);
            while let Some(message) = decoder.next_message().unwrap() {
                out.push(message);
            }
        }
        assert_eq!(out, vec![first, second]);
        assert_eq!(decoder.pending(), 0);
    }

    #[test]
    fn a_short_length_is_an_error() {
        let mut decoder = FrameDecoder::default();
        decoder.push(&[0, 10, 1, 2, 3]);
        assert_eq!(decoder.next_message(), Err(FramingError::TooShort(10)));
    }
}
