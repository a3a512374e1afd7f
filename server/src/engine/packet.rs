//! A validated view of one client request: the fields and options the engine uses, extracted
//! once, with the structural checks that turn bad input into an ignore reason instead of a panic.

use std::borrow::Cow;
use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Encodable, Encoder};

use super::Malformation;
use crate::config::expr::agent_suboption;
use crate::lease::record::Hardware;
use crate::lease::store::ClientKey;

/// The parts of a request the protocol logic reads.
#[derive(Clone, Debug)]
pub(crate) struct Inbound<'a> {
    pub message: &'a Message,
    /// `None` for a BOOTP request (no option 53, RFC 1534).
    pub message_type: Option<MessageType>,
    pub hardware: Hardware,
    /// Option 61, raw.
    pub client_id: Option<&'a [u8]>,
    /// Option 61 when present, else the hardware address (the rule ISC and the store share).
    pub key: ClientKey,
    /// Option 50.
    pub requested_address: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 55, raw codes in the client's order (held inline: no allocation per request).
    pub parameter_request_list: Option<smallvec::SmallVec<[u8; 64]>>,
    /// Option 57.
    pub max_message_size: Option<u16>,
    /// Option 51.
    pub requested_lease_time: Option<u32>,
    /// Option 12.
    pub hostname: Option<&'a str>,
    /// Option 118 (RFC 3011) or relay sub-option 82.5 (RFC 3527); 82.5 wins as ISC's
    /// `locate_network` does.
    pub link_selection: Option<Ipv4Addr>,
    /// The value of option 82 as received, echoed back unchanged (RFC 3046 §2.2): borrowed
    /// from the request, which `net::decode` leaves undecoded.
    pub relay_agent: Option<Cow<'a, [u8]>>,
    /// The relay agent information stashed on the client's lease (option 82 payload), standing
    /// in for the option 82 a unicast renewal lacks: classes and link selection read it, the
    /// reply does not echo it and the lease keeps it (ISC `agent_options_stashed`).
    pub stashed_agent_options: Option<Vec<u8>>,
    pub ciaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    /// The datagram as received, when the daemon kept it (`engine::Request::raw`).
    pub raw: Option<&'a [u8]>,
}

impl<'a> Inbound<'a> {
    /// Extracts the view, rejecting what cannot be a client request.
    pub fn parse(message: &'a Message) -> Result<Self, Malformation> {
        // RFC 2131 §2: clients send BOOTREQUEST; a BOOTREPLY on the server port is noise.
        if message.opcode() != Opcode::BootRequest {
            return Err(Malformation::NotBootRequest);
        }
        // chaddr is 16 bytes (RFC 2131 §2); check before slicing it.
        if usize::from(message.hlen()) > 16 {
            return Err(Malformation::HardwareAddressTooLong);
        }
        let htype = u8::from(message.htype());
        let hardware =
            Hardware::new(htype, message.chaddr()).ok_or(Malformation::HardwareAddressTooLong)?;
        let options = message.opts();
        let message_type = match options.get(OptionCode::MessageType) {
            Some(DhcpOption::MessageType(kind)) => Some(*kind),
            _ => None,
        };
        let client_id = match options.get(OptionCode::ClientIdentifier) {
            Some(DhcpOption::ClientIdentifier(id)) => {
                if id.is_empty() {
                    return Err(Malformation::EmptyClientIdentifier);
                }
                Some(id.as_slice())
            }
            _ => None,
        };
        let key = match client_id {
            Some(id) => ClientKey::ClientId(id.into()),
            None => ClientKey::Hardware(hardware),
        };
        let requested_address = match options.get(OptionCode::RequestedIpAddress) {
            Some(DhcpOption::RequestedIpAddress(address)) => Some(*address),
            _ => None,
        };
        let server_id = match options.get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(address)) => Some(*address),
            _ => None,
        };
        let parameter_request_list = match options.get(OptionCode::ParameterRequestList) {
            Some(DhcpOption::ParameterRequestList(codes)) => {
                Some(codes.iter().map(|code| u8::from(*code)).collect())
            }
            _ => None,
        };
        let max_message_size = match options.get(OptionCode::MaxMessageSize) {
            Some(DhcpOption::MaxMessageSize(size)) => Some(*size),
            _ => None,
        };
        let requested_lease_time = match options.get(OptionCode::AddressLeaseTime) {
            Some(DhcpOption::AddressLeaseTime(seconds)) => Some(*seconds),
            _ => None,
        };
        let hostname = match options.get(OptionCode::Hostname) {
            // Some clients NUL-terminate (ISC `ms_nulltp`); the lease keeps the name without it.
            Some(DhcpOption::Hostname(name)) => {
                Some(name.trim_end_matches('\0')).filter(|name| !name.is_empty())
            }
            _ => None,
        };
        let relay_agent = match options.get(OptionCode::RelayAgentInformation) {
            Some(DhcpOption::Unknown(raw)) => Some(Cow::Borrowed(raw.data())),
            // A message built by hand (tests, bulk leasequery) may hold the decoded form.
            Some(option) => option_value(option).map(Cow::Owned),
            None => None,
        };
        // RFC 3527 §3: sub-option 5, the link selection, is a 4-byte address.
        let relay_link = relay_agent
            .as_deref()
            .and_then(|value| agent_suboption(value, LINK_SELECTION))
            .and_then(|address| <[u8; 4]>::try_from(address).ok())
            .map(Ipv4Addr::from);
        let subnet_selection = match options.get(OptionCode::SubnetSelection) {
            Some(DhcpOption::SubnetSelection(address)) => Some(*address),
            _ => None,
        };
        Ok(Self {
            message,
            message_type,
            hardware,
            client_id,
            key,
            requested_address,
            server_id,
            parameter_request_list,
            max_message_size,
            requested_lease_time,
            hostname,
            link_selection: relay_link.or(subnet_selection),
            relay_agent,
            stashed_agent_options: None,
            ciaddr: message.ciaddr(),
            giaddr: message.giaddr(),
            raw: None,
        })
    }

    /// Takes the relay agent sub-options stashed on the client's lease (code, bytes) as if the
    /// packet carried them (ISC `do_packet`): an RFC 3527 link selection among them locates
    /// the network, as ISC's `locate_network` reads the stashed sub-options.
    pub fn stash_agent_options(&mut self, sub_options: &[(u8, Vec<u8>)]) {
        let mut payload = Vec::new();
        for (code, bytes) in sub_options {
            // A sub-option is at most 255 bytes (RFC 3046 §2.0); the lease file keeps no more.
            let Ok(length) = u8::try_from(bytes.len()) else {
                continue;
            };
            payload.push(*code);
            payload.push(length);
            payload.extend_from_slice(bytes);
            // RFC 3527 §3: sub-option 5, the link selection, is a 4-byte address.
            if *code == 5 && self.link_selection.is_none() {
                if let Ok(address) = <[u8; 4]>::try_from(bytes.as_slice()) {
                    self.link_selection = Some(Ipv4Addr::from(address));
                }
            }
        }
        self.stashed_agent_options = Some(payload);
    }

    /// True for a BOOTP request (no DHCP message type).
    pub fn is_bootp(&self) -> bool {
        self.message_type.is_none()
    }

    /// The raw bytes of an option the client sent (value only), for host identifiers.
    pub fn option_bytes(&self, code: u8) -> Option<Vec<u8>> {
        self.message
            .opts()
            .get(OptionCode::from(code))
            .and_then(option_value)
    }
}

/// Relay agent sub-option 5, the link selection (RFC 3527 §3).
const LINK_SELECTION: u8 = 5;

/// The sub-options of a relay agent information value (RFC 3046 §2.0: code, length, value),
/// up to the first that does not fit.
pub(crate) fn agent_sub_options(mut rest: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut found = Vec::new();
    while let [code, length, tail @ ..] = rest {
        let Some(value) = tail.get(..usize::from(*length)) else {
            break;
        };
        found.push((*code, value.to_vec()));
        rest = &tail[usize::from(*length)..];
    }
    found
}

/// The wire value (without code and length) of a decoded option, re-encoded with dhcproto.
/// Long options split in several chunks (RFC 3396) are concatenated.
pub(crate) fn option_value(option: &DhcpOption) -> Option<Vec<u8>> {
    let mut buffer = Vec::new();
    option.encode(&mut Encoder::new(&mut buffer)).ok()?;
    let mut value = Vec::new();
    let mut rest = buffer.as_slice();
    while let [_code, length, tail @ ..] = rest {
        let length = usize::from(*length);
        let chunk = tail.get(..length)?;
        value.extend_from_slice(chunk);
        rest = &tail[length..];
    }
    Some(value)
}
