//! ICMP echo messages for `ping-check` (RFC 792 "Echo or Echo Reply Message"): the request the
//! ping driver sends (`daemon::ping`) and the reading of what its raw socket receives. A raw
//! IPv4 ICMP socket delivers every ICMP message the host receives, IP header included, so the
//! reader keeps only echo replies and leaves the matching of identifier and source to its caller.

/// RFC 792: type 8 echo, type 0 echo reply.
const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;

/// Bytes after the 8-byte ICMP header: zeros, as ISC's `icmp_echorequest` sends (its
/// `struct icmp` is 28 bytes long).
const DATA_LENGTH: usize = 20;

/// The length of an echo request built by [`echo_request`].
pub const ECHO_REQUEST_LENGTH: usize = 8 + DATA_LENGTH;

/// An ICMP echo request with `identifier` and `sequence` (RFC 792: the replier returns both
/// unchanged, so they tie a reply to its request).
pub fn echo_request(identifier: u16, sequence: u16) -> [u8; ECHO_REQUEST_LENGTH] {
    let mut message = [0u8; ECHO_REQUEST_LENGTH];
    message[0] = ECHO_REQUEST;
    message[4..6].copy_from_slice(&identifier.to_be_bytes());
    message[6..8].copy_from_slice(&sequence.to_be_bytes());
    let checksum = internet_checksum(&message);
    message[2..4].copy_from_slice(&checksum.to_be_bytes());
    message
}

/// What identifies an echo reply: the request's identifier and sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EchoReply {
    pub identifier: u16,
    pub sequence: u16,
}

/// The echo reply in `datagram` as a raw IPv4 socket reads it (IP header, then ICMP); `None` for
/// anything else: another ICMP type, a truncated or non-IPv4 datagram, a fragment, a bad
/// checksum.
pub fn parse_echo_reply(datagram: &[u8]) -> Option<EchoReply> {
    let first = *datagram.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let header_length = usize::from(first & 0x0f) * 4;
    if header_length < 20 {
        return None;
    }
    // Fragment offset or more-fragments set: not a whole ICMP message.
    let fragment = u16::from_be_bytes([*datagram.get(6)?, *datagram.get(7)?]);
    if fragment & 0x3fff != 0 {
        return None;
    }
    let icmp = datagram.get(header_length..)?;
    if icmp.len() < 8 || icmp[0] != ECHO_REPLY || icmp[1] != 0 {
        return None;
    }
    if internet_checksum(icmp) != 0 {
        return None;
    }
    Some(EchoReply {
        identifier: u16::from_be_bytes([icmp[4], icmp[5]]),
        sequence: u16::from_be_bytes([icmp[6], icmp[7]]),
    })
}

/// RFC 1071: the ones' complement of the ones' complement sum of the 16-bit words (0 over a
/// message whose checksum field is right).
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut words = bytes.chunks_exact(2);
    for word in &mut words {
        sum += u32::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reply a host sends to `request`: type 0, checksum adjusted, behind an IPv4 header.
    fn reply_to(request: &[u8]) -> Vec<u8> {
        let mut icmp = request.to_vec();
        icmp[0] = ECHO_REPLY;
        icmp[2..4].copy_from_slice(&[0, 0]);
        let checksum = internet_checksum(&icmp);
        icmp[2..4].copy_from_slice(&checksum.to_be_bytes());
        let mut datagram = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 1, 0, 0, 10, 0, 0, 5, 10, 0, 0, 1,
        ];
        datagram.extend_from_slice(&icmp);
        datagram
    }

    #[test]
    fn an_echo_request_carries_its_identifier_and_a_valid_checksum() {
        let request = echo_request(0xbeef, 7);
        assert_eq!(request[0], ECHO_REQUEST);
        assert_eq!(&request[4..8], &[0xbe, 0xef, 0, 7]);
        assert_eq!(internet_checksum(&request), 0);
    }

    #[test]
    fn the_reply_to_a_request_is_read_back() {
        let reply = reply_to(&echo_request(0x1234, 0xfffe));
        assert_eq!(
            parse_echo_reply(&reply),
            Some(EchoReply {
                identifier: 0x1234,
                sequence: 0xfffe
            })
        );
    }

    #[test]
    fn other_messages_are_not_replies() {
        let reply = reply_to(&echo_request(1, 1));
        // A request (as a ping of a local address shows the socket), a bad checksum, a
        // truncation, an IP header length below 20, a fragment, an IPv6 version nibble.
        let mut request = reply.clone();
        request[20] = ECHO_REQUEST;
        let mut corrupted = reply.clone();
        corrupted[30] ^= 1;
        let mut short_header = reply.clone();
        short_header[0] = 0x44;
        let mut fragment = reply.clone();
        fragment[6] = 0x20;
        let mut version = reply.clone();
        version[0] = 0x65;
        for datagram in [
            &request[..],
            &corrupted[..],
            &reply[..27],
            &short_header[..],
            &fragment[..],
            &version[..],
            &[][..],
        ] {
            assert_eq!(parse_echo_reply(datagram), None);
        }
    }
}
