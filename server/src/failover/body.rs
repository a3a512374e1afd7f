//! Typed view of failover messages (docs/spec/failover.md §4): one struct per message type with the
//! options ISC keeps for it, parsed with ISC's rules (§2.1) and encoded in ISC's option order,
//! so a message ISC sent re-encodes from its typed form byte for byte.
//!
//! Options that ISC ignores for a message type (§2.1 rule 4) land in [`Typed::extra`] and are
//! appended after the typed ones on encoding, so nothing a peer sent is lost.

use std::net::Ipv4Addr;

use super::codes::{MessageType, OptionCode, RejectReason, ServerStateCode};
use super::wire::{be_u32, Message, RawOption, WireError};
use crate::lease::record::UnixTime;

/// CONNECT (5), primary → secondary (docs/spec/failover.md §4.1). Fields the secondary must validate are
/// optional here so that the state machine can answer with ISC's reject reasons.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Connect {
    pub relationship_name: Option<Vec<u8>>,
    pub max_unacked_bndupd: Option<u32>,
    pub receive_timer: Option<u32>,
    pub vendor_class: Option<Vec<u8>>,
    pub protocol_version: Option<u8>,
    pub tls_request: Option<u8>,
    pub mclt: Option<u32>,
    /// Raw bytes: a length other than 32 is reject 18, not a codec error (§3.1).
    pub hba: Option<Vec<u8>>,
}

/// CONNECTACK (6), secondary → primary (docs/spec/failover.md §4.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectAck {
    pub relationship_name: Option<Vec<u8>>,
    pub max_unacked_bndupd: Option<u32>,
    pub receive_timer: Option<u32>,
    pub vendor_class: Option<Vec<u8>>,
    pub protocol_version: Option<u8>,
    pub tls_reply: Option<u8>,
    pub reject_reason: Option<RejectReason>,
    pub message: Option<Vec<u8>>,
}

/// BNDUPD (3): one binding (ISC sends exactly one per message, §14.13).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BindUpdate {
    pub address: Option<Ipv4Addr>,
    /// Binding state value (§7.1); raw so that an out-of-range value reaches the machine.
    pub binding_status: Option<u8>,
    pub client_identifier: Option<Vec<u8>>,
    /// Hardware type byte followed by the address (§3 option 5).
    pub hardware: Option<Vec<u8>>,
    pub lease_expiration: Option<UnixTime>,
    pub potential_expiration: Option<UnixTime>,
    pub start_time_of_state: Option<UnixTime>,
    pub cltt: Option<UnixTime>,
    pub ip_flags: Option<u16>,
}

/// BNDACK (4): ISC sends only the address, plus reject-reason and message on a refusal (§14.10).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BindAck {
    pub address: Option<Ipv4Addr>,
    pub reject_reason: Option<RejectReason>,
    pub message: Option<Vec<u8>>,
}

/// STATE (10) (docs/spec/failover.md §4.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateMessage {
    pub server_state: Option<ServerStateCode>,
    pub server_flags: Option<u8>,
    pub start_time_of_state: Option<UnixTime>,
}

/// DISCONNECT (12) (docs/spec/failover.md §4.5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Disconnect {
    pub reject_reason: Option<RejectReason>,
    pub message: Option<Vec<u8>>,
}

/// Every message type of docs/spec/failover.md §4.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    PoolRequest,
    PoolResponse {
        addresses_transferred: Option<u32>,
    },
    BindUpdate(BindUpdate),
    BindAck(BindAck),
    Connect(Connect),
    ConnectAck(ConnectAck),
    UpdateRequestAll,
    UpdateDone,
    UpdateRequest,
    State(StateMessage),
    Contact,
    Disconnect(Disconnect),
    /// An option-less message of a type we do not know: ISC ignores it (§4).
    Other(MessageType),
}

/// A decoded message: header fields, typed body, and the options the body does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Typed {
    pub time: UnixTime,
    pub xid: u32,
    pub body: Body,
    pub extra: Vec<RawOption>,
    /// The option codes in the order they were received; empty for a message built locally.
    /// ISC's order is not fixed (its BNDUPDs carry client-identifier and hardware address in
    /// either order [fo.pcap]), so a decoded message remembers it to re-encode byte for byte.
    pub wire_order: Vec<OptionCode>,
    /// Header bytes beyond the 12 known ones (payload offset > 12), kept as received.
    pub header_extra: Vec<u8>,
}

impl Body {
    pub fn message_type(&self) -> MessageType {
        match self {
            Body::PoolRequest => MessageType::PoolRequest,
            Body::PoolResponse { .. } => MessageType::PoolResponse,
            Body::BindUpdate(_) => MessageType::BindUpdate,
            Body::BindAck(_) => MessageType::BindAck,
            Body::Connect(_) => MessageType::Connect,
            Body::ConnectAck(_) => MessageType::ConnectAck,
            Body::UpdateRequestAll => MessageType::UpdateRequestAll,
            Body::UpdateDone => MessageType::UpdateDone,
            Body::UpdateRequest => MessageType::UpdateRequest,
            Body::State(_) => MessageType::State,
            Body::Contact => MessageType::Contact,
            Body::Disconnect(_) => MessageType::Disconnect,
            Body::Other(message_type) => *message_type,
        }
    }
}

/// The options ISC keeps for each message type ("ISC keeps in", docs/spec/failover.md §3). A kept option
/// may appear once (rule 3); others are skipped by ISC and kept as `extra` by us.
fn kept_options(message_type: MessageType) -> &'static [OptionCode] {
    use OptionCode::*;
    match message_type {
        MessageType::PoolResponse => &[AddressesTransferred],
        MessageType::BindUpdate => &[
            AssignedIpAddress,
            BindingStatus,
            ClientIdentifier,
            ClientHardwareAddress,
            LeaseExpirationTime,
            PotentialExpirationTime,
            StartTimeOfState,
            ClientLastTransactionTime,
            IpFlags,
        ],
        MessageType::BindAck => &[AssignedIpAddress, RejectReason, Message],
        MessageType::Connect => &[
            RelationshipName,
            MaxUnackedBndupd,
            ReceiveTimer,
            VendorClassIdentifier,
            ProtocolVersion,
            TlsRequest,
            Mclt,
            HashBucketAssignment,
        ],
        MessageType::ConnectAck => &[
            RelationshipName,
            MaxUnackedBndupd,
            ReceiveTimer,
            VendorClassIdentifier,
            ProtocolVersion,
            TlsReply,
            RejectReason,
            Message,
        ],
        MessageType::State => &[ServerState, ServerFlags, StartTimeOfState],
        MessageType::Disconnect => &[RejectReason, Message],
        _ => &[],
    }
}

/// The kept options of one message, indexed like [`kept_options`].
struct Fields<'a> {
    values: Vec<Option<&'a [u8]>>,
}

impl<'a> Fields<'a> {
    fn get(&self, index: usize) -> Option<&'a [u8]> {
        self.values.get(index).copied().flatten()
    }
    fn bytes(&self, index: usize) -> Option<Vec<u8>> {
        self.get(index).map(<[u8]>::to_vec)
    }
    // Sizes were checked when collecting, so these conversions read exactly their width.
    fn u8(&self, index: usize) -> Option<u8> {
        self.get(index).and_then(|data| data.first().copied())
    }
    fn u16(&self, index: usize) -> Option<u16> {
        self.get(index)
            .map(|data| u16::from_be_bytes([data[0], data[1]]))
    }
    fn u32(&self, index: usize) -> Option<u32> {
        self.get(index).map(be_u32)
    }
    fn address(&self, index: usize) -> Option<Ipv4Addr> {
        self.u32(index).map(Ipv4Addr::from)
    }
}

impl Typed {
    /// Types a raw message with ISC's rules: fixed sizes exact, kept options at most once,
    /// an unknown message type with options is an error (docs/spec/failover.md §2.1, §4).
    pub fn from_message(message: &Message) -> Result<Self, WireError> {
        let message_type = message.message_type;
        if let MessageType::Unknown(_) = message_type {
            if !message.options.is_empty() {
                return Err(WireError::UnknownMessageType { message_type });
            }
        }
        let kept = kept_options(message_type);
        let mut values: Vec<Option<&[u8]>> = vec![None; kept.len()];
        let mut extra = Vec::new();
        for option in &message.options {
            match kept.iter().position(|&code| code == option.code) {
                Some(index) => {
                    option.check_size()?;
                    if values[index].is_some() {
                        return Err(WireError::DuplicateOption {
                            message_type,
                            code: option.code,
                        });
                    }
                    values[index] = Some(&option.data);
                }
                None => extra.push(option.clone()),
            }
        }
        let fields = Fields { values };
        let body = match message_type {
            MessageType::PoolRequest => Body::PoolRequest,
            MessageType::PoolResponse => Body::PoolResponse {
                addresses_transferred: fields.u32(0),
            },
            MessageType::BindUpdate => Body::BindUpdate(BindUpdate {
                address: fields.address(0),
                binding_status: fields.u8(1),
                client_identifier: fields.bytes(2),
                hardware: fields.bytes(3),
                lease_expiration: fields.u32(4),
                potential_expiration: fields.u32(5),
                start_time_of_state: fields.u32(6),
                cltt: fields.u32(7),
                ip_flags: fields.u16(8),
            }),
            MessageType::BindAck => Body::BindAck(BindAck {
                address: fields.address(0),
                reject_reason: fields.u8(1).map(RejectReason::from),
                message: fields.bytes(2),
            }),
            MessageType::Connect => Body::Connect(Connect {
                relationship_name: fields.bytes(0),
                max_unacked_bndupd: fields.u32(1),
                receive_timer: fields.u32(2),
                vendor_class: fields.bytes(3),
                protocol_version: fields.u8(4),
                tls_request: fields.u8(5),
                mclt: fields.u32(6),
                hba: fields.bytes(7),
            }),
            MessageType::ConnectAck => Body::ConnectAck(ConnectAck {
                relationship_name: fields.bytes(0),
                max_unacked_bndupd: fields.u32(1),
                receive_timer: fields.u32(2),
                vendor_class: fields.bytes(3),
                protocol_version: fields.u8(4),
                tls_reply: fields.u8(5),
                reject_reason: fields.u8(6).map(RejectReason::from),
                message: fields.bytes(7),
            }),
            MessageType::UpdateRequestAll => Body::UpdateRequestAll,
            MessageType::UpdateDone => Body::UpdateDone,
            MessageType::UpdateRequest => Body::UpdateRequest,
            MessageType::State => Body::State(StateMessage {
                server_state: fields.u8(0).map(ServerStateCode::from),
                server_flags: fields.u8(1),
                start_time_of_state: fields.u32(2),
            }),
            MessageType::Contact => Body::Contact,
            MessageType::Disconnect => Body::Disconnect(Disconnect {
                reject_reason: fields.u8(0).map(RejectReason::from),
                message: fields.bytes(1),
            }),
            MessageType::Unknown(_) => Body::Other(message_type),
        };
        Ok(Self {
            time: message.time,
            xid: message.xid,
            body,
            extra,
            wire_order: message.options.iter().map(|option| option.code).collect(),
            header_extra: message.header_extra.clone(),
        })
    }

    /// A message with no extra options.
    pub fn new(time: UnixTime, xid: u32, body: Body) -> Self {
        Self {
            time,
            xid,
            body,
            extra: Vec::new(),
            wire_order: Vec::new(),
            header_extra: Vec::new(),
        }
    }

    /// The raw message: options in `wire_order` when set, else typed options in the order of
    /// docs/spec/failover.md §4, then `extra`.
    pub fn to_message(&self) -> Message {
        use OptionCode as C;
        let mut message = Message::new(self.body.message_type(), self.time, self.xid);
        message.header_extra = self.header_extra.clone();
        let mut put = |code: OptionCode, data: Option<Vec<u8>>| {
            if let Some(data) = data {
                message.push(code, data);
            }
        };
        let word = |value: Option<u32>| value.map(|value| value.to_be_bytes().to_vec());
        let byte = |value: Option<u8>| value.map(|value| vec![value]);
        match &self.body {
            Body::PoolRequest
            | Body::UpdateRequestAll
            | Body::UpdateDone
            | Body::UpdateRequest
            | Body::Contact
            | Body::Other(_) => {}
            Body::PoolResponse {
                addresses_transferred,
            } => put(C::AddressesTransferred, word(*addresses_transferred)),
            Body::BindUpdate(update) => {
                put(C::AssignedIpAddress, word(update.address.map(u32::from)));
                put(C::BindingStatus, byte(update.binding_status));
                put(C::ClientIdentifier, update.client_identifier.clone());
                put(C::ClientHardwareAddress, update.hardware.clone());
                put(C::LeaseExpirationTime, word(update.lease_expiration));
                put(
                    C::PotentialExpirationTime,
                    word(update.potential_expiration),
                );
                put(C::StartTimeOfState, word(update.start_time_of_state));
                put(C::ClientLastTransactionTime, word(update.cltt));
                put(
                    C::IpFlags,
                    update.ip_flags.map(|flags| flags.to_be_bytes().to_vec()),
                );
            }
            Body::BindAck(ack) => {
                put(C::AssignedIpAddress, word(ack.address.map(u32::from)));
                put(C::RejectReason, byte(ack.reject_reason.map(u8::from)));
                put(C::Message, ack.message.clone());
            }
            Body::Connect(connect) => {
                put(C::RelationshipName, connect.relationship_name.clone());
                put(C::MaxUnackedBndupd, word(connect.max_unacked_bndupd));
                put(C::ReceiveTimer, word(connect.receive_timer));
                put(C::VendorClassIdentifier, connect.vendor_class.clone());
                put(C::ProtocolVersion, byte(connect.protocol_version));
                put(C::TlsRequest, byte(connect.tls_request));
                put(C::Mclt, word(connect.mclt));
                put(C::HashBucketAssignment, connect.hba.clone());
            }
            Body::ConnectAck(ack) => {
                put(C::RelationshipName, ack.relationship_name.clone());
                put(C::MaxUnackedBndupd, word(ack.max_unacked_bndupd));
                put(C::ReceiveTimer, word(ack.receive_timer));
                put(C::VendorClassIdentifier, ack.vendor_class.clone());
                put(C::ProtocolVersion, byte(ack.protocol_version));
                put(C::TlsReply, byte(ack.tls_reply));
                put(C::RejectReason, byte(ack.reject_reason.map(u8::from)));
                put(C::Message, ack.message.clone());
            }
            Body::State(state) => {
                put(C::ServerState, byte(state.server_state.map(u8::from)));
                put(C::ServerFlags, byte(state.server_flags));
                put(C::StartTimeOfState, word(state.start_time_of_state));
            }
            Body::Disconnect(disconnect) => {
                put(
                    C::RejectReason,
                    byte(disconnect.reject_reason.map(u8::from)),
                );
                put(C::Message, disconnect.message.clone());
            }
        }
        message.options.extend(self.extra.iter().cloned());
        if !self.wire_order.is_empty() {
            let mut remaining = std::mem::take(&mut message.options);
            for code in &self.wire_order {
                if let Some(index) = remaining.iter().position(|option| option.code == *code) {
                    message.options.push(remaining.remove(index));
                }
            }
            message.options.extend(remaining);
        }
        message
    }

    /// Decodes one whole message into its typed form.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        Self::from_message(&Message::decode(bytes)?)
    }

    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        self.to_message().encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_kept_option_is_an_error_but_ignored_one_is_not() {
        let mut message = Message::new(MessageType::BindUpdate, 1, 2);
        message.push(OptionCode::AssignedIpAddress, [10, 0, 0, 1]);
        message.push(OptionCode::Mclt, [0, 0, 0, 1]);
        message.push(OptionCode::Mclt, [0, 0, 0, 2]);
        let typed = Typed::from_message(&message).unwrap();
        assert_eq!(typed.extra.len(), 2);
        assert_eq!(typed.to_message(), message);
        message.push(OptionCode::AssignedIpAddress, [10, 0, 0, 2]);
        assert!(matches!(
            Typed::from_message(&message),
            Err(WireError::DuplicateOption { .. })
        ));
    }

    #[test]
    fn fixed_sizes_enforced_like_isc() {
        let mut message = Message::new(MessageType::BindUpdate, 1, 2);
        message.push(OptionCode::IpFlags, [0]);
        assert!(matches!(
            Typed::from_message(&message),
            Err(WireError::OptionSize { expected: 2, .. })
        ));
        // A DDNS option is not kept in BNDUPD by our table, so it is carried, not refused; the
        // machine never sends one (§14.12).
        let mut message = Message::new(MessageType::Connect, 1, 0);
        message.push(OptionCode::HashBucketAssignment, [0xff; 5]);
        let Body::Connect(connect) = Typed::from_message(&message).unwrap().body else {
            panic!("not a connect");
        };
        assert_eq!(connect.hba.map(|hba| hba.len()), Some(5));
    }

    #[test]
    fn unknown_type_with_options_is_refused() {
        let mut message = Message::new(MessageType::Unknown(13), 1, 2);
        assert_eq!(
            Typed::from_message(&message).unwrap().body,
            Body::Other(MessageType::Unknown(13))
        );
        message.push(OptionCode::Mclt, [0, 0, 0, 1]);
        assert!(Typed::from_message(&message).is_err());
    }
}
