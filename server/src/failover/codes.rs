//! Failover wire codes, each table declared once (STYLE.md §5): message types (docs/spec/failover.md §4),
//! option codes with their ISC encodings (§3), server states (§6.1), reject reasons (§3.1).
//!
//! The code sets are open-world: a value missing from a table decodes to `Unknown(n)`, encodes
//! back to `n` and prints as hex, so a message from a newer peer survives a round trip.

/// Declares an open-world code enum: named variants plus `Unknown(raw)`.
macro_rules! declare_codes {
    (
        $(#[$meta:meta])*
        $name:ident($repr:ty) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this table does not name; kept as received.
            Unknown($repr),
        }

        impl $name {
            /// Every named code, in table order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];

            /// The spec's name of the code (`None` for an unknown one).
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($text), )*
                    $name::Unknown(_) => None,
                }
            }
        }

        impl From<$repr> for $name {
            fn from(value: $repr) -> Self {
                match value {
                    $( $value => $name::$variant, )*
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $repr {
            fn from(code: $name) -> $repr {
                match code {
                    $( $name::$variant => $value, )*
                    $name::Unknown(other) => other,
                }
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self.name() {
                    Some(text) => f.write_str(text),
                    None => write!(f, "{}({:#x})", stringify!($name), <$repr>::from(*self)),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(self, f)
            }
        }
    };
}

declare_codes! {
    /// Message types (docs/spec/failover.md §4, draft §7).
    MessageType(u8) {
        PoolRequest = 1 => "POOLREQ",
        PoolResponse = 2 => "POOLRESP",
        BindUpdate = 3 => "BNDUPD",
        BindAck = 4 => "BNDACK",
        Connect = 5 => "CONNECT",
        ConnectAck = 6 => "CONNECTACK",
        UpdateRequestAll = 7 => "UPDREQALL",
        UpdateDone = 8 => "UPDDONE",
        UpdateRequest = 9 => "UPDREQ",
        State = 10 => "STATE",
        Contact = 11 => "CONTACT",
        Disconnect = 12 => "DISCONNECT",
    }
}

declare_codes! {
    /// Option codes (docs/spec/failover.md §3, draft §12).
    OptionCode(u16) {
        AddressesTransferred = 1 => "addresses-transferred",
        AssignedIpAddress = 2 => "assigned-IP-address",
        BindingStatus = 3 => "binding-status",
        ClientIdentifier = 4 => "client-identifier",
        ClientHardwareAddress = 5 => "client-hardware-address",
        ClientLastTransactionTime = 6 => "client-last-transaction-time",
        ClientReplyOptions = 7 => "client-reply-options",
        ClientRequestOptions = 8 => "client-request-options",
        Ddns = 9 => "DDNS",
        DelayedServiceParameter = 10 => "delayed-service-parameter",
        HashBucketAssignment = 11 => "hash-bucket-assignment",
        IpFlags = 12 => "IP-flags",
        LeaseExpirationTime = 13 => "lease-expiration-time",
        MaxUnackedBndupd = 14 => "max-unacked-bndupd",
        Mclt = 15 => "MCLT",
        Message = 16 => "message",
        MessageDigest = 17 => "message-digest",
        PotentialExpirationTime = 18 => "potential-expiration-time",
        ReceiveTimer = 19 => "receive-timer",
        ProtocolVersion = 20 => "protocol-version",
        RejectReason = 21 => "reject-reason",
        RelationshipName = 22 => "relationship-name",
        ServerFlags = 23 => "server-flags",
        ServerState = 24 => "server-state",
        StartTimeOfState = 25 => "start-time-of-state",
        TlsReply = 26 => "TLS-reply",
        TlsRequest = 27 => "TLS-request",
        VendorClassIdentifier = 28 => "vendor-class-identifier",
        VendorSpecificOptions = 29 => "vendor-specific-options",
    }
}

/// How an option's data is encoded (docs/spec/failover.md §3 "wire size / encoding").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    /// Exactly this many bytes; ISC drops the connection on any other size (§2.1 rule 5).
    Fixed(usize),
    /// Any length (text or opaque bytes).
    Bytes,
}

impl OptionCode {
    /// The encoding ISC's table gives the option. DDNS is "fixed, size 0" in ISC (§3, §14.12):
    /// that is why a non-empty DDNS option kills an ISC link, and why we never send one.
    pub fn kind(self) -> OptionKind {
        use OptionCode::*;
        match self {
            AddressesTransferred
            | ClientLastTransactionTime
            | LeaseExpirationTime
            | MaxUnackedBndupd
            | Mclt
            | PotentialExpirationTime
            | ReceiveTimer
            | StartTimeOfState
            | AssignedIpAddress => OptionKind::Fixed(4),
            // ISC answers a wrong-sized HBA with CONNECTACK reject 18, not a protocol error
            // (§3.1), so its size is checked by the state machine, not the codec.
            BindingStatus
            | DelayedServiceParameter
            | ProtocolVersion
            | RejectReason
            | ServerFlags
            | ServerState
            | TlsReply
            | TlsRequest => OptionKind::Fixed(1),
            IpFlags => OptionKind::Fixed(2),
            Ddns => OptionKind::Fixed(0),
            HashBucketAssignment
            | ClientIdentifier
            | ClientHardwareAddress
            | ClientReplyOptions
            | ClientRequestOptions
            | Message
            | MessageDigest
            | RelationshipName
            | VendorClassIdentifier
            | VendorSpecificOptions
            | Unknown(_) => OptionKind::Bytes,
        }
    }
}

declare_codes! {
    /// Server (failover endpoint) states as carried in option 24 (docs/spec/failover.md §6.1). ISC's
    /// RECOVER-WAIT is 254: the draft names the state without a number.
    ServerStateCode(u8) {
        UnknownState = 0 => "unknown-state",
        Startup = 1 => "startup",
        Normal = 2 => "normal",
        CommunicationsInterrupted = 3 => "communications-interrupted",
        PartnerDown = 4 => "partner-down",
        PotentialConflict = 5 => "potential-conflict",
        Recover = 6 => "recover",
        Paused = 7 => "paused",
        Shutdown = 8 => "shutdown",
        RecoverDone = 9 => "recover-done",
        ResolutionInterrupted = 10 => "resolution-interrupted",
        ConflictDone = 11 => "conflict-done",
        RecoverWait = 254 => "recover-wait",
    }
}

declare_codes! {
    /// Reject reasons of option 21 (docs/spec/failover.md §3.1, draft §12.21).
    RejectReason(u8) {
        Reserved = 0 => "reserved",
        IllegalIpAddress = 1 => "illegal IP address",
        FatalConflict = 2 => "fatal conflict",
        MissingBindingInfo = 3 => "missing binding info",
        TimeMismatch = 4 => "time mismatch",
        InvalidMclt = 5 => "invalid MCLT",
        MiscReject = 6 => "misc reject",
        DuplicateConnection = 7 => "duplicate connection",
        InvalidPartner = 8 => "invalid partner",
        TlsUnsupported = 9 => "TLS not supported",
        TlsConfigured = 10 => "TLS supported but not configured",
        TlsRequired = 11 => "TLS required",
        DigestUnsupported = 12 => "message digest not supported",
        DigestNotConfigured = 13 => "message digest not configured",
        VersionMismatch = 14 => "protocol version mismatch",
        OutdatedBindingInfo = 15 => "outdated binding information",
        LessCriticalBindingInfo = 16 => "less critical binding information",
        NoTrafficExpected = 17 => "no traffic expected",
        HbaConflict = 18 => "hash bucket assignment conflict",
        IpNotReserved = 19 => "IP not reserved on this server",
        MessageDigestFailed = 20 => "message digest failed to compare",
        MissingMessageDigest = 21 => "missing message digest",
        UnknownReason = 254 => "unknown, error occurred but could not determine reason",
    }
}

/// server-flags bit 0: the sender is in STARTUP (docs/spec/failover.md §4.3).
pub const SERVER_FLAG_STARTUP: u8 = 0x01;
/// IP-flags bit 0: RESERVED (docs/spec/failover.md §3).
pub const IP_FLAG_RESERVED: u16 = 0x0001;
/// IP-flags bit 1: BOOTP.
pub const IP_FLAG_BOOTP: u16 = 0x0002;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_open_world() {
        for &code in OptionCode::ALL {
            assert_eq!(OptionCode::from(u16::from(code)), code);
        }
        assert_eq!(OptionCode::from(99), OptionCode::Unknown(99));
        assert_eq!(format!("{:?}", OptionCode::from(99)), "OptionCode(0x63)");
        assert_eq!(u8::from(ServerStateCode::RecoverWait), 254);
        assert_eq!(MessageType::from(12), MessageType::Disconnect);
        assert_eq!(u8::from(MessageType::Unknown(200)), 200);
        assert_eq!(
            format!("{}", RejectReason::from(16)),
            "less critical binding information"
        );
    }
}
