//! Reply assembly: the BOOTREPLY header (RFC 2131 §4.3.1 table 3), the option set merged from
//! the scopes, ISC's option order (`cons_options` in common/options.c), the size limit, and the
//! wire encoding that keeps that order ([`super::layout`] places the options, overloading `file`
//! and `sname` when the options area is full).

use std::borrow::Cow;
use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode, UnknownOption};
use dhcproto::{Decodable, Decoder};

use super::encapsulation::{encode_relay_agent_chain, relay_agent_chain};
use super::layout::{lay_out, Overload, FILE_LENGTH, MAGIC_COOKIE, SNAME_LENGTH};
use super::packet::{option_value, Inbound};
use super::scope::{OptionCodes, ScopeStack};
use super::{Destination, Reply};

/// Option codes of RFC 2132 used by the engine.
pub(crate) mod code {
    pub const SUBNET_MASK: u8 = 1;
    pub const ROUTERS: u8 = 3;
    pub const DOMAIN_NAME_SERVERS: u8 = 6;
    pub const HOST_NAME: u8 = 12;
    pub const VENDOR_ENCAPSULATED: u8 = 43;
    pub const REQUESTED_ADDRESS: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_IDENTIFIER: u8 = 54;
    pub const MESSAGE: u8 = 56;
    pub const RENEWAL_TIME: u8 = 58;
    pub const REBINDING_TIME: u8 = 59;
    pub const CLIENT_IDENTIFIER: u8 = 61;
    pub const FQDN: u8 = 81;
    pub const AGENT_OPTIONS: u8 = 82;
    pub const ASSOCIATED_IP: u8 = 92;
    pub const SUBNET_SELECTION: u8 = 118;
}

/// RFC 2131 §2 / ISC `DHCP_FIXED_LEN`: BOOTP header (236) plus IP and UDP headers (28).
const FIXED_LENGTH: usize = 236 + 28;
/// RFC 2131 §2: every client accepts a 576-byte message; ISC `DHCP_MTU_MIN`.
const MINIMUM_MTU: usize = 576;
/// ISC `DHCP_MTU_MAX`: ISC never builds larger replies.
const MAXIMUM_MTU: usize = 1500;
/// RFC 951: a BOOTP reply is at least 300 bytes (ISC `BOOTP_MIN_LEN`).
const BOOTP_MINIMUM_LENGTH: usize = 300;
/// RFC 1497 vendor area of a BOOTP reply (ISC `cons_options` for BOOTP without option 57).
const BOOTP_VENDOR_AREA: usize = 64;
/// Offsets of `sname` and `file` in the BOOTP header (RFC 2131 §2).
const SNAME_OFFSET: usize = 44;
const FILE_OFFSET: usize = SNAME_OFFSET + SNAME_LENGTH;
/// RFC 2132 §3.1 and §3.2.
const PAD_OPTION: u8 = 0;
const END_OPTION: u8 = 255;

/// Errors while encoding a reply.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// `sname` (64 bytes) or `file` (128 bytes) holds more than its field (RFC 2131 §2).
    /// dhcproto's setters already refuse such a value; the check keeps a header built some
    /// other way from panicking the sender.
    #[error("the {field} field holds {length} bytes, more than it can")]
    FieldTooLong { field: &'static str, length: usize },
}

/// What goes into one reply's options besides the configured ones.
#[derive(Clone, Debug, Default)]
pub(crate) struct Assembly<'m> {
    pub message_type: Option<MessageType>,
    pub server_id: Option<Ipv4Addr>,
    /// Option 51; `None` for INFORM and NAK.
    pub lease_time: Option<u32>,
    /// The subnet's mask, used for option 1 unless configured (ISC `ack_lease`).
    pub subnet_mask: Option<Ipv4Addr>,
    /// `use-host-decl-names`: the host declaration's name as option 12.
    pub host_name: Option<&'m str>,
    /// `get-lease-hostnames`: option 12's value from the reverse DNS, NUL included, for a
    /// reply with no other host name (ISC `ack_lease`).
    pub reverse_name: Option<Vec<u8>>,
    /// Option 56 (NAK text).
    pub message: Option<&'m str>,
    /// False for NAKs, which carry only the protocol options.
    pub configured: bool,
    /// `echo-client-id` applies (ISC `echo_client_id`: ACK of a lease, OFFER, NAK; not
    /// INFORM's ACK).
    pub echo_client_id: bool,
    /// True for the replies ISC builds in `dhcp_reply` (OFFER, ACK of a lease, BOOTREPLY of a
    /// dynamic BOOTP lease): options that do not fit may go into `file` and `sname` when no
    /// `filename` / `server-name` fills them (RFC 2132 §9.3). ISC's NAK, INFORM and fixed-address
    /// BOOTP replies never overload.
    pub may_overload: bool,
    /// Option 81 answering the client's (RFC 4702, ISC `ddns_updates`).
    pub fqdn: Option<Vec<u8>>,
    /// The request's relay agent information is echoed (RFC 3046 §2.2): every reply but the
    /// BOOTREPLY ISC's `bootp` builds for a fixed address (server/bootp.c echoes nothing).
    pub echo_relay_agent: bool,
}

/// The BOOTREPLY header for `inbound` (RFC 2131 §4.3.1 table 3): xid, flags, giaddr, hops and
/// chaddr copied, secs 0.
pub(crate) fn reply_header(inbound: &Inbound<'_>) -> Message {
    let request = inbound.message;
    let mut message = Message::default();
    message
        .set_opcode(Opcode::BootReply)
        .set_htype(request.htype())
        .set_chaddr(inbound.hardware.address())
        .set_hops(request.hops())
        .set_xid(request.xid())
        .set_secs(0)
        .set_flags(request.flags())
        .set_giaddr(request.giaddr());
    message
}

/// One option value of a reply in the making: values up to 16 bytes (addresses, times, a
/// message type, most configured options) stay inline, so a reply costs no allocation for them.
pub(crate) type ReplyValue = smallvec::SmallVec<[u8; 16]>;

/// The options a reply may carry (code, value), before ISC's order and size limit pick them.
pub(crate) type ReplyOptions = smallvec::SmallVec<[(u8, ReplyValue); 24]>;

/// Fills `message`'s options from `assembly` and the scopes, in ISC's order, within the size
/// limit, and wraps it into a [`Reply`].
pub(crate) fn finish(
    message: Message,
    inbound: &Inbound<'_>,
    scopes: Option<&ScopeStack<'_>>,
    assembly: &Assembly<'_>,
    destination: Destination,
) -> Reply {
    let mut available = ReplyOptions::new();
    if let (Some(scopes), true) = (scopes, assembly.configured) {
        for code in scopes.option_codes() {
            if let Some(value) = scopes.option(code) {
                available.push((code, ReplyValue::from_slice(value)));
            }
        }
        super::encapsulation::add_space_options(scopes, &mut available);
    }
    let mut put = |code: u8, value: &[u8]| {
        if let Some(slot) = available.iter_mut().find(|(have, _)| *have == code) {
            slot.1 = ReplyValue::from_slice(value);
        } else {
            available.push((code, ReplyValue::from_slice(value)));
        }
    };
    if let Some(kind) = assembly.message_type {
        put(code::MESSAGE_TYPE, &[u8::from(kind)]);
    }
    if let Some(server_id) = assembly.server_id {
        put(code::SERVER_IDENTIFIER, &server_id.octets());
    }
    if let Some(text) = assembly.message {
        put(code::MESSAGE, text.as_bytes());
    }
    if let Some(fqdn) = &assembly.fqdn {
        put(code::FQDN, fqdn);
    }
    // RFC 3011 §3: the server echoes the client's subnet selection option (ISC `ack_lease`
    // copies it into the reply's options, for every reply it builds).
    if assembly.may_overload {
        if let Some(selection) = inbound.option_bytes(code::SUBNET_SELECTION) {
            put(code::SUBNET_SELECTION, &selection);
        }
    }
    if assembly.configured {
        let configured = |code: u8| scopes.and_then(|scopes| scopes.option(code)).is_some();
        if let (Some(mask), false) = (assembly.subnet_mask, configured(code::SUBNET_MASK)) {
            put(code::SUBNET_MASK, &mask.octets());
        }
        // ISC `ack_lease`: with `use-lease-addr-for-default-route`, the leased address is the
        // router when none is configured ("makes Win95 machines ARP for all IP addresses").
        let leased = message.yiaddr();
        if assembly.may_overload
            && !leased.is_unspecified()
            && !configured(code::ROUTERS)
            && scopes
                .and_then(|scopes| scopes.find(|scope| scope.use_lease_addr_for_default_route))
                .unwrap_or(false)
        {
            put(code::ROUTERS, &leased.octets());
        }
        if !configured(code::HOST_NAME) {
            if let Some(name) = assembly.host_name {
                put(code::HOST_NAME, name.as_bytes());
            } else if let Some(name) = &assembly.reverse_name {
                put(code::HOST_NAME, name);
            }
        }
    }
    // `echo-client-id` (RFC 6842 §3): return option 61 as sent, in a DHCPNAK too (ISC
    // `echo_client_id`, called by `ack_lease` and `nak_lease`); it replaces a configured 61.
    let echo = assembly.echo_client_id
        && scopes
            .and_then(|scopes| scopes.find(|scope| scope.echo_client_id))
            .unwrap_or(false);
    if echo {
        if let Some(id) = &inbound.client_id {
            put(code::CLIENT_IDENTIFIER, id);
        }
    }
    // Lease time and the configured T1/T2: ISC (`ack_lease`) sends renewal and rebinding times
    // only when configured, and drops a configured T2 ≥ lease time and a T1 ≥ T2 (or ≥ lease
    // time); clients then compute 0.5 / 0.875 (RFC 2131 §4.4.5).
    match assembly.lease_time {
        Some(lease_time) => {
            put(code::LEASE_TIME, &lease_time.to_be_bytes());
            let mut limit = lease_time;
            let read = |available: &ReplyOptions, code: u8| {
                available
                    .iter()
                    .find(|(have, _)| *have == code)
                    .and_then(|(_, value)| <[u8; 4]>::try_from(value.as_slice()).ok())
                    .map(u32::from_be_bytes)
            };
            match read(&available, code::REBINDING_TIME) {
                Some(rebind) if rebind < limit => limit = rebind,
                Some(_) => available.retain(|(code, _)| *code != code::REBINDING_TIME),
                None => {}
            }
            if read(&available, code::RENEWAL_TIME).is_some_and(|renew| renew >= limit) {
                available.retain(|(code, _)| *code != code::RENEWAL_TIME);
            }
        }
        None => available.retain(|(code, _)| {
            !matches!(
                *code,
                code::LEASE_TIME | code::RENEWAL_TIME | code::REBINDING_TIME
            )
        }),
    }
    let agent = relay_agent_information(inbound, scopes, assembly);

    // ISC `nak_lease` deletes the client's parameter request list before `cons_options`.
    let requested = match assembly.message_type {
        Some(MessageType::Nak) => None,
        _ => inbound.parameter_request_list.as_deref(),
    };
    let order = priority_list(inbound, requested, echo, &available);
    let limit = options_limit(inbound, agent.as_deref());
    // ISC `dhcp_reply`: a field is free for options unless a name fills it.
    let free = |field: Option<&[u8]>| field.is_none_or(<[u8]>::is_empty);
    let overload = Overload {
        file: assembly.may_overload && free(message.fname()),
        sname: assembly.may_overload && free(message.sname()),
    };
    let value_of = |code: u8| {
        available
            .iter()
            .find(|(have, _)| *have == code)
            .map(|(_, value)| value.as_slice())
    };
    let (layout, stored) = lay_out(
        &order,
        value_of,
        agent.as_deref().map(|value| (code::AGENT_OPTIONS, value)),
        limit,
        overload,
    );
    Reply {
        header: message,
        destination,
        option_order: stored,
        layout,
        cache_threshold: None,
        static_lease_dns: None,
        executed: scopes
            .filter(|_| assembly.configured)
            .map(|scopes| scopes.executed().clone())
            .unwrap_or_default(),
    }
}

/// Option 82 of a reply, which `cons_options` stores last (RFC 3046 §2.2: the relay agent
/// information is echoed). What ISC 4.4 echoes: the request's option 82 in an OFFER, a
/// DHCPACK and an INFORM's DHCPACK (server/dhcp.c `maybe_return_agent_options`), not the
/// sub-options stashed on the lease for a unicast renewal; in a DHCPNAK what the request
/// holds, stashed sub-options included (`nak_lease`); nothing in the BOOTREPLY for a fixed
/// address (server/bootp.c; a dynamic BOOTP lease is answered by `ack_lease`, which echoes).
/// When a scope in effect sets an `agent` option, the reply carries the list those statements
/// built from the echoed sub-options instead, even when nothing was echoed
/// ([`super::encapsulation::relay_agent_chain`]); a DHCPNAK runs no option statements.
fn relay_agent_information<'a>(
    inbound: &'a Inbound<'_>,
    scopes: Option<&ScopeStack<'_>>,
    assembly: &Assembly<'a>,
) -> Option<Cow<'a, [u8]>> {
    let received = inbound.relay_agent.as_deref().map(Cow::Borrowed);
    let echoed = match assembly.message_type {
        _ if !assembly.echo_relay_agent => None,
        Some(MessageType::Nak) => {
            received.or_else(|| inbound.stashed_agent_options.as_deref().map(Cow::Borrowed))
        }
        _ => received,
    };
    let configured = scopes
        .filter(|_| assembly.configured)
        .and_then(|scopes| Some((scopes, relay_agent_chain(scopes, echoed.as_deref())?)));
    match configured {
        Some((scopes, chain)) => {
            encode_relay_agent_chain(&scopes.config.option_spaces, &chain).map(Cow::Owned)
        }
        None => echoed.filter(|value| !value.is_empty()),
    }
}

/// ISC `cons_options`: the protocol options first, then the client's parameter request list
/// `requested` in its order (with the subnet mask appended for DISCOVER/REQUEST, which some
/// clients rely on); without a PRL, the common options and then every configured option. ISC
/// walks its option hash table for the latter; this engine uses ascending code order. Option
/// 61 has a place ahead of the PRL only with `echo-client-id` (`echo`); a configured 61 is
/// otherwise sent only when the PRL asks for it, at its place there, or without a PRL.
fn priority_list(
    inbound: &Inbound<'_>,
    requested: Option<&[u8]>,
    echo: bool,
    available: &[(u8, ReplyValue)],
) -> OptionCodes {
    let mut list = smallvec::smallvec![
        code::MESSAGE_TYPE,
        code::SERVER_IDENTIFIER,
        code::LEASE_TIME,
        code::RENEWAL_TIME,
        code::REBINDING_TIME,
        code::MESSAGE,
        code::REQUESTED_ADDRESS,
        code::ASSOCIATED_IP,
    ];
    match requested.filter(|list| !list.is_empty()) {
        Some(requested) => {
            list.push(code::SUBNET_SELECTION);
            if echo {
                list.push(code::CLIENT_IDENTIFIER);
            }
            // The client cannot move the relay agent option (ISC).
            list.extend(
                requested
                    .iter()
                    .copied()
                    .filter(|code| *code != code::AGENT_OPTIONS),
            );
            // Option 81 goes only to a client that sent one; unrequested, it comes last
            // (ISC `cons_options`).
            if inbound
                .message
                .opts()
                .get(OptionCode::from(code::FQDN))
                .is_some()
            {
                list.push(code::FQDN);
            }
            if matches!(
                inbound.message_type,
                Some(MessageType::Discover) | Some(MessageType::Request)
            ) {
                list.push(code::SUBNET_MASK);
            }
        }
        None => {
            list.extend([
                code::SUBNET_MASK,
                code::ROUTERS,
                code::DOMAIN_NAME_SERVERS,
                code::HOST_NAME,
                code::FQDN,
            ]);
            list.extend(
                available
                    .iter()
                    .map(|(code, _)| *code)
                    .filter(|code| *code != code::AGENT_OPTIONS),
            );
            list.push(code::VENDOR_ENCAPSULATED);
        }
    }
    // Each option once, at its first (highest-priority) position.
    let mut seen = [false; 256];
    list.retain(|code| !std::mem::replace(&mut seen[usize::from(*code)], true));
    // RFC 2132 §3.3: "If both the subnet mask and the router option are specified in a DHCP
    // reply, the subnet mask option MUST be first." ISC `store_options` swaps the two places
    // when the list has the routers first (a PRL asking 3 before 1, or not asking 1 at all).
    let position = |wanted: u8| list.iter().position(|code| *code == wanted);
    if let (Some(routers), Some(mask)) = (position(code::ROUTERS), position(code::SUBNET_MASK)) {
        if routers < mask {
            list.swap(routers, mask);
        }
    }
    list
}

/// The size of the options area (cookie to END) ISC allows (`cons_options`'s `mb_size`): the
/// client's option 57 minus the fixed headers, at least 312 (576-byte message, RFC 2131 §2), at
/// most 1236; a BOOTP client gets the 64-byte vendor area. Relay agent information (`agent`, its
/// value) comes on top.
pub(crate) fn options_limit(inbound: &Inbound<'_>, agent: Option<&[u8]>) -> usize {
    let base = match inbound.max_message_size.map(usize::from) {
        Some(size) if size < MINIMUM_MTU => MINIMUM_MTU - FIXED_LENGTH,
        Some(size) if size > MAXIMUM_MTU => MAXIMUM_MTU - FIXED_LENGTH,
        Some(size) => size - FIXED_LENGTH,
        None if inbound.is_bootp() => BOOTP_VENDOR_AREA,
        None => MINIMUM_MTU - FIXED_LENGTH,
    };
    let agent_size = agent.map_or(0, |value| encoded_length(value.len()));
    (base + agent_size).min(MAXIMUM_MTU - FIXED_LENGTH)
}

/// Wire size of a non-empty option value, split into 255-byte pieces (RFC 3396).
fn encoded_length(length: usize) -> usize {
    length + 2 * length.div_ceil(255)
}

/// The configured wire bytes as a typed dhcproto option when they decode and re-encode to the
/// same bytes; otherwise kept verbatim. Not on the packet path: replies are sent from their
/// layout ([`Reply::encode`]); this builds [`Reply::decoded`] and bulk leasequery's messages.
pub(crate) fn typed_option(code: u8, value: &[u8]) -> DhcpOption {
    if let Ok(length) = u8::try_from(value.len()) {
        let mut wire = Vec::with_capacity(value.len() + 2);
        wire.push(code);
        wire.push(length);
        wire.extend_from_slice(value);
        if let Ok(option) = DhcpOption::decode(&mut Decoder::new(&wire)) {
            if u8::from(OptionCode::from(&option)) == code
                && option_value(&option).as_deref() == Some(value)
            {
                return option;
            }
        }
    }
    DhcpOption::Unknown(UnknownOption::new(OptionCode::from(code), value.to_vec()))
}

impl Reply {
    /// The reply on the wire: the BOOTP header (with `file` and `sname` holding options when
    /// they are overloaded), the magic cookie, the options as [`Reply::layout`] placed them, zero
    /// padding to the 300-byte BOOTP minimum (RFC 951, ISC `BOOTP_MIN_LEN`). Written straight
    /// into one buffer: no option is decoded or encoded again.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut bytes = Vec::with_capacity(
            (FILE_OFFSET + FILE_LENGTH + MAGIC_COOKIE.len() + self.layout.options.len())
                .max(BOOTP_MINIMUM_LENGTH),
        );
        encode_header(&self.header, &mut bytes)?;
        if let Some(file) = &self.layout.file {
            bytes[FILE_OFFSET..FILE_OFFSET + FILE_LENGTH].copy_from_slice(file);
        }
        if let Some(sname) = &self.layout.sname {
            bytes[SNAME_OFFSET..SNAME_OFFSET + SNAME_LENGTH].copy_from_slice(sname);
        }
        bytes.extend_from_slice(&MAGIC_COOKIE);
        bytes.extend_from_slice(&self.layout.options);
        if bytes.len() < BOOTP_MINIMUM_LENGTH {
            bytes.resize(BOOTP_MINIMUM_LENGTH, 0);
        }
        Ok(bytes)
    }

    /// The value of option `code` as the client will read it: its pieces in the options area,
    /// then in `file` and `sname` when those carry options, concatenated (RFC 3396 §7). Borrowed
    /// when the option is one piece, as nearly every option is.
    pub fn option(&self, code: u8) -> Option<Cow<'_, [u8]>> {
        let areas = [
            Some(self.layout.options.as_slice()),
            self.layout.file.as_ref().map(|file| file.as_slice()),
            self.layout.sname.as_ref().map(|sname| sname.as_slice()),
        ];
        let mut found: Option<Cow<'_, [u8]>> = None;
        for piece in areas
            .into_iter()
            .flatten()
            .flat_map(|area| option_pieces(area, code))
        {
            match &mut found {
                None => found = Some(Cow::Borrowed(piece)),
                Some(value) => value.to_mut().extend_from_slice(piece),
            }
        }
        found
    }

    /// Option 53 (RFC 2132 §9.6); `None` for a BOOTREPLY.
    pub fn message_type(&self) -> Option<MessageType> {
        match self.option(code::MESSAGE_TYPE)?.as_ref() {
            [kind] => Some(MessageType::from(*kind)),
            _ => None,
        }
    }

    /// Option 51 (RFC 2132 §9.2), seconds.
    pub fn lease_time(&self) -> Option<u32> {
        let value = self.option(code::LEASE_TIME)?;
        <[u8; 4]>::try_from(value.as_ref())
            .ok()
            .map(u32::from_be_bytes)
    }

    /// Option 54 (RFC 2132 §9.7).
    pub fn server_identifier(&self) -> Option<Ipv4Addr> {
        let value = self.option(code::SERVER_IDENTIFIER)?;
        <[u8; 4]>::try_from(value.as_ref()).ok().map(Ipv4Addr::from)
    }

    /// The reply as a dhcproto message: the header and every option it carries, typed where
    /// dhcproto knows the option and its bytes round-trip ([`typed_option`]). Built on demand,
    /// for tests and diagnostics; the packet path never needs it.
    pub fn decoded(&self) -> Message {
        let mut message = self.header.clone();
        let options = message.opts_mut();
        for &code in &self.option_order {
            if let Some(value) = self.option(code) {
                options.insert(typed_option(code, &value));
            }
        }
        message
    }
}

/// The BOOTP header (RFC 2131 §2, 236 bytes) of `header`, as dhcproto writes it: `sname` and
/// `file` zero-padded, an over-long one refused.
fn encode_header(header: &Message, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.push(u8::from(header.opcode()));
    out.push(u8::from(header.htype()));
    out.push(header.hlen().min(16));
    out.push(header.hops());
    out.extend_from_slice(&header.xid().to_be_bytes());
    out.extend_from_slice(&header.secs().to_be_bytes());
    out.extend_from_slice(&u16::from(header.flags()).to_be_bytes());
    for address in [
        header.ciaddr(),
        header.yiaddr(),
        header.siaddr(),
        header.giaddr(),
    ] {
        out.extend_from_slice(&address.octets());
    }
    let mut chaddr = [0u8; 16];
    let hardware = header.chaddr();
    let length = hardware.len().min(16);
    chaddr[..length].copy_from_slice(&hardware[..length]);
    out.extend_from_slice(&chaddr);
    for (field, size, name) in [
        (header.sname(), SNAME_LENGTH, "sname"),
        (header.fname(), FILE_LENGTH, "file"),
    ] {
        let value = field.unwrap_or_default();
        if value.len() > size {
            return Err(EncodeError::FieldTooLong {
                field: name,
                length: value.len(),
            });
        }
        out.extend_from_slice(value);
        out.resize(out.len() + size - value.len(), 0);
    }
    Ok(())
}

/// The values of every `code` piece in one options area (RFC 2132 §2: PAD and END have no
/// length; a piece that runs past the area ends the walk, as END would).
fn option_pieces(area: &[u8], code: u8) -> impl Iterator<Item = &[u8]> {
    let mut rest = area;
    std::iter::from_fn(move || loop {
        match rest {
            [] | [END_OPTION, ..] => return None,
            [PAD_OPTION, tail @ ..] => rest = tail,
            [have, length, tail @ ..] => {
                let length = usize::from(*length);
                let Some(value) = tail.get(..length) else {
                    rest = &[];
                    return None;
                };
                rest = &tail[length..];
                if *have == code {
                    return Some(value);
                }
            }
            [_] => {
                rest = &[];
                return None;
            }
        }
    })
}

/// Sets the broadcast bit of a reply's flags.
pub(crate) fn with_broadcast(message: &mut Message) {
    let flags = message.flags().set_broadcast();
    message.set_flags(flags);
}
