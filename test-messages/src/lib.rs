//! The DHCP client messages and link-layer frames that xdhcpd's unit tests, integration tests and
//! benches send, built in one place: [`ClientMessage`] for the DHCP message (RFC 2131 §2, a
//! BOOTREQUEST from an Ethernet client), [`encode`] for its bytes, and [`Frame`] for the
//! Ethernet + IPv4 + UDP frame around them (what the XDP program and a raw socket see).
//!
//! Defaults are those of a plain client: xid 0x1234, no flags, hops 0, every address 0.0.0.0,
//! only option 53. Options go on the wire in code order, relay agent information (82) last, as
//! dhcproto encodes them; a test that needs another order writes the bytes itself.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Encodable, Encoder};

/// A client's DHCP message under construction.
#[derive(Clone, Debug)]
pub struct ClientMessage {
    message: Message,
}

/// The parameter request list most of the tests send (what a typical client asks for).
pub const COMMON_PARAMETERS: [OptionCode; 4] = [
    OptionCode::SubnetMask,
    OptionCode::Router,
    OptionCode::DomainNameServer,
    OptionCode::DomainName,
];

impl ClientMessage {
    /// A BOOTREQUEST of DHCP message type `kind` from `mac`.
    pub fn new(kind: MessageType, mac: [u8; 6]) -> Self {
        let unspecified = Ipv4Addr::UNSPECIFIED;
        let mut message = Message::new_with_id(
            0x1234,
            unspecified,
            unspecified,
            unspecified,
            unspecified,
            &mac,
        );
        message
            .set_opcode(Opcode::BootRequest)
            .set_flags(Flags::default());
        message.opts_mut().insert(DhcpOption::MessageType(kind));
        Self { message }
    }

    /// A BOOTREQUEST with no DHCP message type (a BOOTP client, or a malformed DHCP one).
    pub fn bootp(mac: [u8; 6]) -> Self {
        let mut built = Self::new(MessageType::Discover, mac);
        built.message.opts_mut().remove(OptionCode::MessageType);
        built
    }

    pub fn xid(mut self, xid: u32) -> Self {
        self.message.set_xid(xid);
        self
    }

    pub fn secs(mut self, secs: u16) -> Self {
        self.message.set_secs(secs);
        self
    }

    /// The broadcast flag (RFC 2131 §4.1).
    pub fn broadcast(mut self) -> Self {
        self.message.set_flags(Flags::default().set_broadcast());
        self
    }

    /// ciaddr: the client's address in RENEWING, REBINDING, or for DHCPINFORM / DHCPRELEASE.
    pub fn ciaddr(mut self, address: Ipv4Addr) -> Self {
        self.message.set_ciaddr(address);
        self
    }

    /// giaddr, as a relay agent sets it (RFC 1542 §4.1.1), with hops 1 when it is an address.
    pub fn relayed_by(mut self, relay: Ipv4Addr) -> Self {
        self.message.set_giaddr(relay);
        self.message.set_hops(u8::from(!relay.is_unspecified()));
        self
    }

    /// Option 50, the requested address.
    pub fn requested(self, address: Ipv4Addr) -> Self {
        self.option(DhcpOption::RequestedIpAddress(address))
    }

    /// Option 54, the server identifier.
    pub fn server_id(self, server: Ipv4Addr) -> Self {
        self.option(DhcpOption::ServerIdentifier(server))
    }

    /// Option 61, the client identifier.
    pub fn client_id(self, id: &[u8]) -> Self {
        self.option(DhcpOption::ClientIdentifier(id.to_vec()))
    }

    /// Option 12, the client's host name.
    pub fn hostname(self, name: &str) -> Self {
        self.option(DhcpOption::Hostname(name.into()))
    }

    /// Option 55, the parameter request list.
    pub fn requesting(self, codes: &[OptionCode]) -> Self {
        self.option(DhcpOption::ParameterRequestList(codes.to_vec()))
    }

    /// Any option, replacing one with the same code.
    pub fn option(mut self, option: DhcpOption) -> Self {
        self.message.opts_mut().insert(option);
        self
    }

    /// An option by code and value bytes (a code dhcproto does not know, or raw bytes).
    pub fn raw_option(self, code: u8, value: &[u8]) -> Self {
        self.option(DhcpOption::Unknown(dhcproto::v4::UnknownOption::new(
            OptionCode::from(code),
            value.to_vec(),
        )))
    }

    pub fn build(self) -> Message {
        self.message
    }

    pub fn encode(self) -> Vec<u8> {
        encode(&self.message)
    }
}

/// The wire bytes of `message`.
pub fn encode(message: &Message) -> Vec<u8> {
    let mut bytes = Vec::new();
    message
        .encode(&mut Encoder::new(&mut bytes))
        .expect("a message built for a test encodes");
    bytes
}

/// An Ethernet frame carrying an IPv4 UDP datagram, with optional 802.1Q tags and IP options.
#[derive(Clone, Debug)]
pub struct Frame<'a> {
    destination_mac: [u8; 6],
    source_mac: [u8; 6],
    vlans: &'a [u16],
    source: Ipv4Addr,
    destination: Ipv4Addr,
    ports: (u16, u16),
    ip_options: &'a [u8],
}

impl<'a> Frame<'a> {
    /// From `source_mac` to `destination_mac`, 0.0.0.0:68 → 255.255.255.255:67 until told
    /// otherwise (a client's first DISCOVER).
    pub fn new(source_mac: [u8; 6], destination_mac: [u8; 6]) -> Self {
        Self {
            destination_mac,
            source_mac,
            vlans: &[],
            source: Ipv4Addr::UNSPECIFIED,
            destination: Ipv4Addr::BROADCAST,
            ports: (68, 67),
            ip_options: &[],
        }
    }

    /// IPv4 source and destination.
    pub fn addresses(mut self, source: Ipv4Addr, destination: Ipv4Addr) -> Self {
        self.source = source;
        self.destination = destination;
        self
    }

    /// UDP source and destination ports.
    pub fn ports(mut self, source: u16, destination: u16) -> Self {
        self.ports = (source, destination);
        self
    }

    /// 802.1Q tags, outermost first.
    pub fn vlans(mut self, vlans: &'a [u16]) -> Self {
        self.vlans = vlans;
        self
    }

    /// IPv4 options (a multiple of 4 bytes).
    pub fn ip_options(mut self, options: &'a [u8]) -> Self {
        self.ip_options = options;
        self
    }

    /// The frame with `payload` as the UDP data; the IPv4 header checksum is set, the UDP
    /// checksum is 0 (RFC 768: none).
    pub fn build(&self, payload: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(64 + payload.len());
        bytes.extend_from_slice(&self.destination_mac);
        bytes.extend_from_slice(&self.source_mac);
        for vlan in self.vlans {
            bytes.extend_from_slice(&[0x81, 0x00]);
            bytes.extend_from_slice(&vlan.to_be_bytes());
        }
        bytes.extend_from_slice(&[0x08, 0x00]);
        let header_length = 20 + self.ip_options.len();
        let total = header_length + 8 + payload.len();
        let ip_start = bytes.len();
        bytes.push(0x40 | (header_length / 4) as u8);
        bytes.push(0);
        bytes.extend_from_slice(&(total as u16).to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0]);
        bytes.extend_from_slice(&self.source.octets());
        bytes.extend_from_slice(&self.destination.octets());
        bytes.extend_from_slice(self.ip_options);
        let checksum = internet_checksum(&bytes[ip_start..ip_start + header_length]);
        bytes[ip_start + 10..ip_start + 12].copy_from_slice(&checksum.to_be_bytes());
        bytes.extend_from_slice(&self.ports.0.to_be_bytes());
        bytes.extend_from_slice(&self.ports.1.to_be_bytes());
        bytes.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(payload);
        bytes
    }
}

/// The one's complement of the one's complement sum of 16-bit words (RFC 1071).
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| (u32::from(pair[0]) << 8) | u32::from(*pair.get(1).unwrap_or(&0)))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::Decodable;

    #[test]
    fn a_built_message_decodes_back_with_its_fields_and_options_in_order() {
        let mac = [2, 0, 0, 0, 0, 1];
        let relay = Ipv4Addr::new(10, 0, 0, 1);
        let bytes = ClientMessage::new(MessageType::Request, mac)
            .xid(7)
            .relayed_by(relay)
            .raw_option(224, b"x")
            .server_id(Ipv4Addr::new(10, 0, 0, 2))
            .requested(Ipv4Addr::new(10, 0, 0, 9))
            .encode();
        let message = Message::decode(&mut dhcproto::Decoder::new(&bytes)).expect("decodes");
        assert_eq!(message.xid(), 7);
        assert_eq!(message.giaddr(), relay);
        assert_eq!(message.hops(), 1);
        assert_eq!(message.opts().msg_type(), Some(MessageType::Request));
        // Options in code order: 50, 53, 54, 224, then the end.
        assert_eq!(bytes[240], 50);
        assert_eq!(&bytes[246..249], &[53, 1, 3]);
        assert_eq!(bytes[249], 54);
        assert_eq!(&bytes[255..258], &[224, 1, b'x']);
    }

    #[test]
    fn a_frame_has_a_valid_ip_checksum_and_its_tags() {
        let frame = Frame::new([2; 6], [0xff; 6]).vlans(&[5]).build(&[1, 2, 3]);
        assert_eq!(&frame[12..16], &[0x81, 0x00, 0, 5]);
        assert_eq!(internet_checksum(&frame[18..38]), 0);
        assert_eq!(frame.len(), 18 + 20 + 8 + 3);
    }
}
