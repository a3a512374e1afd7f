//! Lease history in PostgreSQL (README "Lease history in PostgreSQL", DESIGN.md "Lease
//! history"): every lease event — grant, renew, release, expire, decline, abandon — appended to
//! a time-partitioned table that answers "who held 100.64.3.7 at 14:02 on 3 March" and "which
//! addresses did this MAC hold" for as long as the retention says.
//!
//! - [`Observed`]: what `changes::apply` hands over for each changed lease of a source whose
//!   effects say `history` (the engine, the kernel's renewals, OMAPI, expiry); it rides with
//!   the lease record through the group commit and is queued once the record is durable.
//! - [`classify`] (sans-IO): turns observations into [`Row`]s with their [`EventKind`].
//! - [`spool`]: the local file that keeps rows while the database is unreachable.
//! - [`writer`]: the control-plane task that batches rows into the database.
//! - [`schema`]: the migrations shipped in `server/migrations/` and the weekly partitions.
//! - [`query`]: `xdhcpd history --address A --at TIME` and `--hardware MAC`.

pub mod classify;
pub mod query;
pub mod schema;
pub mod spool;
pub mod writer;

use std::net::Ipv4Addr;

use crate::changes::ChangeSource;
use crate::lease::record::{BindingState, Lease, UnixTime, NEVER};

/// Days of history kept when `option xdhcpd.history-retention-days` does not say (six months,
/// what European data-retention rules typically ask of access providers).
pub const DEFAULT_RETENTION_DAYS: u32 = 180;

/// Where the history goes and for how long (dhcpd.conf `option xdhcpd.history-*`, the
/// command line's `--history-database`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistorySettings {
    /// A libpq connection string or `postgresql://` URL.
    pub database: String,
    pub retention_days: u32,
}

/// A lease event as the history table names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The address became bound to a client that did not hold it.
    Grant,
    /// The client that held the address had it extended (DHCPREQUEST, or the kernel's ACK).
    Renew,
    /// The client gave it back (DHCPRELEASE), or an operator freed it over OMAPI.
    Release,
    /// The lease ran out.
    Expire,
    /// The client said the address is in use (DHCPDECLINE, RFC 2131 §4.3.3).
    Decline,
    /// The server took the address out of use (an answered ping, OMAPI).
    Abandon,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::Grant,
        EventKind::Renew,
        EventKind::Release,
        EventKind::Expire,
        EventKind::Decline,
        EventKind::Abandon,
    ];

    /// The word stored in `lease_history.event`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Grant => "grant",
            EventKind::Renew => "renew",
            EventKind::Release => "release",
            EventKind::Expire => "expire",
            EventKind::Decline => "decline",
            EventKind::Abandon => "abandon",
        }
    }

    pub fn from_word(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == word)
    }
}

/// The request that made an engine change, as the history keeps it: the relay (giaddr) and
/// its option 82 sub-options, and the message type (a DECLINE abandons its address just as an
/// answered ping does).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    pub relay: Option<Ipv4Addr>,
    pub circuit_id: Option<Vec<u8>>,
    pub remote_id: Option<Vec<u8>>,
    /// Option 53 (RFC 2132 §9.6); `None` for BOOTP.
    pub message_type: Option<u8>,
}

impl RequestContext {
    /// What the history keeps of a client's request: giaddr (RFC 2131 §4.1), option 82
    /// sub-options 1 (circuit-id) and 2 (remote-id) (RFC 3046 §2.0), option 53.
    pub fn of(message: &dhcproto::v4::Message) -> Self {
        use dhcproto::v4::{DhcpOption, OptionCode};
        let sub_options = message
            .opts()
            .get(OptionCode::RelayAgentInformation)
            .and_then(crate::engine::packet::option_value)
            .map(|value| crate::engine::packet::agent_sub_options(&value))
            .unwrap_or_default();
        let sub = |code: u8| {
            sub_options
                .iter()
                .find(|(have, _)| *have == code)
                .map(|(_, value)| value.clone())
        };
        let message_type = match message.opts().get(OptionCode::MessageType) {
            Some(DhcpOption::MessageType(kind)) => Some(u8::from(*kind)),
            _ => None,
        };
        Self {
            relay: Some(message.giaddr()).filter(|giaddr| !giaddr.is_unspecified()),
            circuit_id: sub(1),
            remote_id: sub(2),
            message_type,
        }
    }
}

/// DHCPDECLINE and DHCPRELEASE (RFC 2132 §9.6).
pub const DHCPDECLINE: u8 = 4;
pub const DHCPRELEASE: u8 = 7;

/// One changed lease as the history sees it, before classification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// When the change was applied, microseconds since the epoch.
    pub at_micros: i64,
    pub source: ChangeSource,
    pub address: Ipv4Addr,
    pub state: BindingState,
    pub htype: Option<u8>,
    pub hardware: Option<Vec<u8>>,
    pub client_id: Option<Vec<u8>>,
    pub circuit_id: Option<Vec<u8>>,
    pub remote_id: Option<Vec<u8>>,
    pub relay: Option<Ipv4Addr>,
    pub starts: UnixTime,
    /// The end the client was told ([`NEVER`] for `ends never`), not the fast path's horizon.
    pub ends: UnixTime,
    pub message_type: Option<u8>,
}

impl Observed {
    /// `lease` after a change from `source`; the request's relay and option 82 when the change
    /// answers a request, else those the lease stashed (`stash-agent-options`).
    pub fn of(
        lease: &Lease,
        source: ChangeSource,
        request: Option<&RequestContext>,
        at_micros: i64,
    ) -> Self {
        let stashed = |code: u8| {
            lease.extra.as_ref().and_then(|extra| {
                extra
                    .agent_options
                    .iter()
                    .find(|(have, _)| *have == code)
                    .map(|(_, value)| value.clone())
            })
        };
        let (circuit_id, remote_id) = match request {
            Some(request) if request.circuit_id.is_some() || request.remote_id.is_some() => {
                (request.circuit_id.clone(), request.remote_id.clone())
            }
            _ => (stashed(1), stashed(2)),
        };
        Self {
            at_micros,
            source,
            address: lease.address,
            state: lease.binding_state,
            htype: lease.hardware.map(|hardware| hardware.htype),
            hardware: lease.hardware.map(|hardware| hardware.address().to_vec()),
            client_id: lease.uid().map(<[u8]>::to_vec),
            circuit_id,
            remote_id,
            relay: request.and_then(|request| request.relay),
            starts: lease.starts,
            ends: crate::engine::fast_path::told_end(lease),
            message_type: request.and_then(|request| request.message_type),
        }
    }
}

/// One row of `lease_history` (its `server` column is the writer's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub at_micros: i64,
    pub kind: EventKind,
    pub address: Ipv4Addr,
    pub htype: Option<u8>,
    pub hardware: Option<Vec<u8>>,
    pub client_id: Option<Vec<u8>>,
    pub circuit_id: Option<Vec<u8>>,
    pub remote_id: Option<Vec<u8>>,
    pub relay: Option<Ipv4Addr>,
    /// `None` when the lease has no start (0).
    pub starts: Option<UnixTime>,
    /// `None` for `ends never`.
    pub ends: Option<UnixTime>,
    pub source: String,
}

impl Row {
    pub fn new(observed: Observed, kind: EventKind) -> Self {
        Self {
            at_micros: observed.at_micros,
            kind,
            address: observed.address,
            htype: observed.htype,
            hardware: observed.hardware,
            client_id: observed.client_id,
            circuit_id: observed.circuit_id,
            remote_id: observed.remote_id,
            relay: observed.relay,
            starts: (observed.starts != 0).then_some(observed.starts),
            ends: (observed.ends != NEVER && observed.ends != 0).then_some(observed.ends),
            source: observed.source.label().to_owned(),
        }
    }
}
