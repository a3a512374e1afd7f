//! The sans-IO DHCPv4 protocol engine (RFC 2131/2132): packets and time in, decisions out.
//!
//! [`Engine::handle`] takes one decoded request, the current time, a [`Snapshot`] of what other
//! parts of the daemon own (failover states, OMAPI hosts), the lease store and the starvation
//! defence's memory, and returns a [`Decision`]: the reply to send (if any), where to send it
//! (RFC 2131 §4.1), and the leases that must be durable before the reply leaves. The engine
//! holds only the configuration and what it derives from it: no clock, socket, thread, channel,
//! lock or atomic (`crate::sans_io` checks the sources). The behaviour follows ISC dhcpd 4.4
//! (`server/dhcp.c`): address selection as `find_lease`/`allocate_lease`, lease times as
//! `ack_lease`, option order as `cons_options`.
//!
//! Module map: `packet` reads the request, `classify` computes class membership and host
//! matches, `select` locates the network and chooses an address, `lease_time` computes lease
//! durations, `options` assembles and encodes replies (`layout` places their options, with
//! option overload), `request` holds one handler per message type, `fast_path` the lease a
//! renewal leaves (shared with the kernel's renewals), `starvation` the pool-exhaustion defence.

mod billing;
mod classify;
pub mod dynamic_hosts;
mod encapsulation;
pub mod fast_path;
mod layout;
mod lease_events;
pub(crate) mod lease_time;
mod options;
pub(crate) mod packet;
pub mod ping_check;
mod request;
mod scope;
mod select;
pub mod starvation;
pub mod statements;
mod store_network;

#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use crate::config::model::{ClassId, Config, PoolId};
use crate::failover::view::{FailoverView, RelationshipMap, RelationshipView};
use crate::lease::record::{BindingState, Hardware, Lease, UnixTime};
use crate::lease::store::LeaseStore;

pub use layout::OptionLayout;
pub use options::EncodeError;
pub use ping_check::PingCheck;
pub use request::{answer_name, BulkStatus, LeaseQueryTarget, MAX_ASSOCIATED_IPS};

/// How long an OFFER holds its address for the client: ISC `dhcpdiscover` sets the offered
/// lease to "really expire in 2 minutes" (`when = cur_time + 120`).
pub const OFFER_HOLD_SECONDS: u32 = 120;

/// The protocol engine: immutable configuration plus data precomputed from it. Cheap to share
/// between threads (`&self`); everything that changes — the lease store, the starvation
/// defence's memory, the failover states, the OMAPI hosts — is passed in per request.
#[derive(Debug)]
pub struct Engine {
    config: Arc<Config>,
    /// The failover relationship of each pool and address range.
    relationships: RelationshipMap,
    /// Every relationship as no driver runs it (configured role and MCLT): what stands for a
    /// relationship that a [`FailoverView`] lacks.
    unattached: FailoverView,
}

/// What a decision reads of state that other parts of the daemon own, as plain values the
/// driver copies once per batch of requests (or per expiry run): the engine never reads a lock
/// or an atomic, and a test hands it any state it likes.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Each failover relationship's state (`FailoverHooks::view`); empty without failover or
    /// without drivers (then every relationship counts as not run: unit tests, `-T`).
    pub failover: FailoverView,
    /// Hosts added over OMAPI, consulted after the config's (docs/spec/omapi.md §8.2); `None`
    /// while there are none (`crate::host_table::DynamicHosts::snapshot`).
    pub hosts: Option<Arc<dynamic_hosts::HostSet>>,
    /// The driver can send ICMP echo requests (`ping-check`, [`ping_check`]). Without (no
    /// CAP_NET_RAW, unit tests by default) new addresses are offered at once, unprobed.
    pub ping_checks: bool,
    /// The reverse DNS names looked up so far for `get-lease-hostnames`
    /// (`crate::reverse_names`); `None` when no scope asks for them.
    pub reverse_names: Option<Arc<crate::reverse_names::Table>>,
}

impl Snapshot {
    /// A snapshot with `failover` and no OMAPI hosts.
    pub fn of_failover(failover: FailoverView) -> Self {
        Self {
            failover,
            ..Self::default()
        }
    }
}

/// What the MCLT rule needs of a failover pool's relationship (docs/spec/failover.md §8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FailoverRole {
    /// The MCLT in force: a secondary learns it from the CONNECT (§4.1).
    pub mclt: u32,
}

/// One received packet, decoded by the driver.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub message: &'a dhcproto::v4::Message,
    /// UDP source of the packet.
    pub source: SocketAddrV4,
    /// IPv4 address of the interface the packet arrived on (selects the subnet of a direct
    /// client; default server identifier); `None` when unknown (e.g. loopback tests).
    pub interface_address: Option<Ipv4Addr>,
    /// The datagram as received, when the daemon kept it: `packet(OFFSET, LENGTH)` reads it
    /// (tree.c `expr_packet`, over `packet->raw`). Without it `packet()` sees the BOOTP
    /// header and cookie as they decode, and nothing past them.
    pub raw: Option<&'a [u8]>,
}

/// What the engine decided for one request.
#[derive(Clone, Debug)]
#[must_use]
pub struct Decision {
    pub reply: Option<Reply>,
    /// Leases changed by this request that must be durable before `reply` is sent (empty for
    /// OFFER/NAK/INFORM).
    pub commit: Vec<Lease>,
    pub outcome: Outcome,
    /// `ping-check`: an ICMP echo request to send first; `reply` (the OFFER) may leave only once
    /// the probe's timeout has passed unanswered ([`Engine::ping_timed_out`]).
    pub ping_check: Option<PingCheck>,
    /// What statements run for a lease event without a reply (`on release`) produced; a
    /// reply's own are in [`Reply::executed`].
    pub executed: statements::Executed,
}

impl Decision {
    fn ignored(reason: IgnoreReason) -> Self {
        Self {
            reply: None,
            commit: Vec::new(),
            outcome: Outcome::Ignored(reason),
            ping_check: None,
            executed: statements::Executed::default(),
        }
    }
}

/// A reply and where it goes.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The BOOTP header (RFC 2131 §2): xid, flags, the addresses, chaddr, and `sname` / `file`
    /// when configured. Its option set is empty: the options exist once, as the wire bytes of
    /// [`Reply::layout`], which [`Reply::encode`] copies after the header. Read them with
    /// [`Reply::option`] and its typed accessors, or [`Reply::decoded`] for a whole dhcproto
    /// message (tests, diagnostics), which is built only when asked for.
    pub header: dhcproto::v4::Message,
    pub destination: Destination,
    /// Option codes in the order ISC's `cons_options` writes them (RFC 2131 leaves the order
    /// free; clients have come to expect ISC's). `dhcproto` itself sorts options by code, so
    /// drivers should send [`Reply::encode`]'s bytes.
    pub option_order: Vec<u8>,
    /// Where those options go on the wire (ISC `store_options`): the options area, and `file`
    /// and `sname` when the options area was too small (option overload, RFC 2132 §9.3).
    pub layout: OptionLayout,
    /// For a DHCPACK that binds its lease afresh: the `dhcp-cache-threshold` in force for it
    /// (0 = off). A later renewal within that share of the lease time gets the lease as it
    /// stands (`lease_time::reuse`), not this reply, so the XDP fast path passes it up.
    /// `None` for every other reply, an ACK that reused its lease included: the fast path
    /// never repeats those.
    pub cache_threshold: Option<u8>,
    /// The DNS add of a fixed address's DHCPACK under `update-static-leases` (no lease record
    /// carries it to `crate::changes`): the driver hands it to the DDNS updater.
    pub static_lease_dns: Option<crate::ddns::Operation>,
    /// What the `log` and `execute` statements run for this reply produced (dhcp-eval(5)
    /// "LOGGING", "EXECUTE"; with the `on commit` bodies for an ACK), for the driver to log
    /// and start.
    pub executed: statements::Executed,
}

/// RFC 2131 §4.1 reply routing, decided by the engine (protocol logic), executed by the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// giaddr, port 67.
    Relay(Ipv4Addr),
    /// ciaddr, port 68.
    Unicast(Ipv4Addr),
    /// 255.255.255.255:68 on the receiving interface.
    Broadcast,
    /// The client has no address yet and did not ask for broadcast: RFC 2131 §4.1 says unicast to
    /// chaddr/yiaddr; the driver may fall back to broadcast.
    Hardware {
        address: Ipv4Addr,
        hardware: Hardware,
    },
}

/// What happened, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Offered(Ipv4Addr),
    Acked(Ipv4Addr),
    Nacked,
    Released(Ipv4Addr),
    Declined(Ipv4Addr),
    Informed,
    /// A BOOTREPLY to a BOOTP client (no option 53).
    BootReplied(Ipv4Addr),
    /// A DHCPLEASEQUERY answered (RFC 4388): `answer` is the reply's message type (11
    /// unassigned, 12 unknown, 13 active), `associated` how many other active addresses the
    /// client holds.
    LeaseQueried {
        answer: u8,
        associated: u16,
    },
    Ignored(IgnoreReason),
}

/// Why a request got no reply (ISC logs these and drops the packet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IgnoreReason {
    /// The packet cannot be a client request.
    Malformed(Malformation),
    /// A server-to-client message type (OFFER, ACK, NAK, …) or one this server does not serve.
    UnsupportedMessageType(u8),
    /// RFC 2131 §4.3.2: not authoritative, so a wrong address is ignored rather than NAKed.
    NotAuthoritative,
    /// No subnet declaration covers the network the packet came from.
    UnknownSubnet,
    /// Every permitted pool is exhausted.
    NoFreeAddress,
    /// The request names another server (RFC 2131 §4.3.2 SELECTING) or a lease that is not the
    /// client's.
    NotForUs,
    /// RFC 2131 §4.3.2: a request for a lease the server has no record of stays unanswered.
    UnknownLease,
    /// Denied by `deny unknown-clients`, `deny booting`, `deny bootp`, `deny declines` or a pool
    /// permit list.
    Denied,
    /// `min-secs` not reached yet.
    TooEarly,
    /// A new lease or a DHCPDECLINE refused by the starvation defence (`starvation`).
    RateLimited(starvation::StarvationLimit),
    /// A DHCPDECLINE of an address bound or offered to another client: only the client an
    /// address was given to can find it in use (RFC 2131 §4.4.1), so the server keeps the
    /// binding instead of abandoning it (beyond ISC, whose `dhcpdecline` abandons any lease).
    DeclineOfOtherClient,
    /// A DISCOVER for an address whose OFFER to this client waits for its `ping-check`: ISC's
    /// `ack_lease` does not answer twice for a lease it is acking ("If we're already acking this
    /// lease, don't do it again"); the pending OFFER answers the client.
    PingCheckPending,
    /// Every class of the client that has a `lease limit` is full (ISC `ack_lease`: "no
    /// available billing"); the class is the last one tried (`billing`).
    NoAvailableBilling(ClassId),
}

/// Structural problems of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformation {
    /// op is not BOOTREQUEST.
    NotBootRequest,
    /// hlen larger than the 16-byte chaddr field.
    HardwareAddressTooLong,
    /// A DHCPREQUEST/DECLINE/RELEASE without the fields RFC 2131 table 5 requires.
    MissingField(&'static str),
    /// The client identifier (option 61) is empty (RFC 2132 §9.14: minimum length 2).
    EmptyClientIdentifier,
}

/// The lease lookups a DHCPLEASEQUERY needs (RFC 4388 §6.4): by address, and every lease of
/// a client identifier or hardware address (ISC walks its uid and hardware hash chains). The
/// daemon implements it over every shard of its store; a test over one [`LeaseStore`].
pub trait LeaseLookup {
    fn by_address(&self, address: Ipv4Addr) -> Option<Lease>;
    /// The leases whose client identifier is `client_id`, in address order.
    fn by_client_id(&self, client_id: &[u8]) -> Vec<Lease>;
    /// The leases whose hardware address is `hardware`, in address order.
    fn by_hardware(&self, hardware: &Hardware) -> Vec<Lease>;
    /// Calls `visit` with every lease active at `now` (RFC 6926 bulk leasequery).
    fn each_active(&self, now: UnixTime, visit: &mut dyn FnMut(&Lease));
}

impl LeaseLookup for LeaseStore {
    fn by_address(&self, address: Ipv4Addr) -> Option<Lease> {
        self.get(address).cloned()
    }

    // The client indices keep every lease of a client (ISC's hash chains): no scan.
    fn by_client_id(&self, client_id: &[u8]) -> Vec<Lease> {
        let mut found: Vec<Lease> = self.leases_of_client_id(client_id).cloned().collect();
        found.sort_by_key(|lease| lease.address);
        found
    }

    fn by_hardware(&self, hardware: &Hardware) -> Vec<Lease> {
        let mut found: Vec<Lease> = self.leases_of_hardware(hardware).cloned().collect();
        found.sort_by_key(|lease| lease.address);
        found
    }

    fn each_active(&self, now: UnixTime, visit: &mut dyn FnMut(&Lease)) {
        self.iter()
            .filter(|lease| lease.is_active_at(now))
            .for_each(visit);
    }
}

impl Engine {
    pub fn new(config: Arc<Config>) -> Self {
        Self {
            relationships: RelationshipMap::new(&config),
            unattached: FailoverView::unattached(&config),
            config,
        }
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Handles one request at `now`, with `snapshot` of the failover states and OMAPI hosts.
    /// No clock, socket, channel, lock or thread inside. Mutates the store and the starvation
    /// defence's memory in memory; the caller applies `decision.commit` through
    /// `crate::changes::apply` (the lease log, then the reply once durable; the partner's
    /// BNDUPD, docs/spec/failover.md §7.2).
    pub fn handle(
        &self,
        now: UnixTime,
        snapshot: &Snapshot,
        request: &Request<'_>,
        leases: &mut LeaseStore,
        starvation: &mut starvation::StarvationState,
    ) -> Decision {
        let no_other_shards = crate::lease::billing::BillingTotals::default();
        request::handle(
            self,
            now,
            snapshot,
            request,
            leases,
            starvation,
            &no_other_shards,
        )
    }

    /// [`Engine::handle`] for a store in shards: `billing` is what the other shards reported
    /// of their billed leases (`lease::shards::ShardedStore::billing`, held by the caller
    /// while it decides under `leases`' shard), so that a class's `lease limit` counts the
    /// leases of every shard.
    pub fn handle_billed(
        &self,
        now: UnixTime,
        snapshot: &Snapshot,
        request: &Request<'_>,
        leases: &mut LeaseStore,
        starvation: &mut starvation::StarvationState,
        billing: &crate::lease::billing::BillingTotals,
    ) -> Decision {
        request::handle(self, now, snapshot, request, leases, starvation, billing)
    }

    /// Answers a DHCPLEASEQUERY (RFC 4388) from `lookup` (ISC `dhcpleasequery`): the daemon
    /// calls this with a lookup over every shard, holding none of them. Nothing changes: the
    /// decision commits no lease.
    pub fn lease_query(
        &self,
        now: UnixTime,
        snapshot: &Snapshot,
        request: &Request<'_>,
        lookup: &dyn LeaseLookup,
    ) -> Decision {
        request::handle_lease_query(self, now, snapshot, request, lookup)
    }

    /// Answers an RFC 6926 DHCPBULKLEASEQUERY from the TCP peer `peer` (`crate::bulk_leasequery`
    /// frames and sends it): the messages to stream, the last a DHCPLEASEQUERYDONE.
    pub fn bulk_lease_query(
        &self,
        now: UnixTime,
        snapshot: &Snapshot,
        peer: Ipv4Addr,
        server_id: Option<Ipv4Addr>,
        query: &dhcproto::v4::Message,
        lookup: &dyn LeaseLookup,
    ) -> Vec<dhcproto::v4::Message> {
        request::bulk_answer(self, now, snapshot, peer, server_id, query, lookup)
    }

    /// The DDNS settings (with the name) of `address`, just acknowledged to the client of
    /// `request` (dhcpd.conf(5) "DYNAMIC DNS UPDATES", resolved through the same scopes as the
    /// DHCPACK); `None` when no update applies. Sans-IO like [`Engine::handle`].
    pub fn ddns_settings(
        &self,
        now: UnixTime,
        snapshot: &Snapshot,
        request: &Request<'_>,
        address: Ipv4Addr,
    ) -> Option<crate::ddns::lease::DdnsSettings> {
        request::ddns_settings_for(self, now, snapshot, request, address)
    }

    /// Moves the leases of `leases` past their end to their next state (the expiry ticker;
    /// the caller persists the changes and hands them to the peer drivers). Under failover
    /// ISC's `pool_timer` rules apply (docs/spec/failover.md §8.3): a secondary in NORMAL leaves active
    /// leases to the primary's expiry, and out of contact a lease the partner never saw bound
    /// goes straight back to this server's free state. An abandoned lease becomes FREE once its
    /// `abandon-lease-time` has passed, with or without failover and in any failover state (ISC
    /// `pool_timer` walks the abandoned queue in every state; `make_binding_state_transition`
    /// gives ABANDONED the next state FREE). `failover` is the relationships' state now.
    /// Returns the changed leases to persist.
    pub fn expire(
        &self,
        now: UnixTime,
        failover: &FailoverView,
        leases: &mut LeaseStore,
    ) -> Vec<Lease> {
        leases.expire_with(now, |lease| {
            if lease.binding_state == BindingState::Abandoned {
                return Some(BindingState::Free);
            }
            // The relationship by address range: O(log ranges), no pool scan.
            match self.relationship_of_address(failover, lease.address) {
                Some(relationship) => crate::failover::rules::expiry_state(
                    lease,
                    relationship.role,
                    relationship.rules_state(),
                    relationship.service(),
                ),
                None => Some(lease.next_binding_state),
            }
        })
    }

    /// Runs the `on expiry` body each lease `expire` just moved out of ACTIVE kept from its
    /// DHCPACK (ISC `pool_timer` → `make_binding_state_transition` executes
    /// `lease->on_star.on_expiry` and drops it and `on_release`), with no packet. Variables
    /// they set are written into the leases, in `changed` and in `leases`.
    pub fn run_expiry_statements(
        &self,
        leases: &mut LeaseStore,
        changed: &mut [Lease],
    ) -> statements::Executed {
        let mut executed = statements::Executed::default();
        for lease in changed.iter_mut() {
            let keeps_events = lease
                .extra
                .as_deref()
                .is_some_and(|extra| extra.verbatim.iter().any(|text| text.starts_with("on ")));
            if !keeps_events {
                continue;
            }
            let before = lease.clone();
            let view = statements::LeaseView::new(&before);
            let result = lease_events::run(&self.config, lease, lease_events::Event::Expiry, &view);
            if let Some((done, changes)) = result {
                executed.extend(done);
                if !changes.is_empty() {
                    let extra = lease.extra.get_or_insert_with(|| {
                        Box::new(crate::lease::record::LeaseExtra::default())
                    });
                    statements::apply_variables(&mut extra.variables, &changes);
                }
            }
            if *lease != before {
                leases.upsert(lease.clone());
            }
        }
        executed
    }

    /// The relationship with index `index`: as `failover` has it, else as no driver runs it.
    fn relationship<'v>(
        &'v self,
        failover: &'v FailoverView,
        index: usize,
    ) -> Option<&'v RelationshipView> {
        failover.get(index).or_else(|| self.unattached.get(index))
    }

    /// The failover relationship of `pool`; `None` without failover.
    pub(crate) fn relationship_of_pool<'v>(
        &'v self,
        failover: &'v FailoverView,
        pool: PoolId,
    ) -> Option<&'v RelationshipView> {
        self.relationship(failover, self.relationships.of_pool(pool)?)
    }

    /// The failover relationship whose pools contain `address` (binary search over the
    /// ranges, no scan of the pools); `None` without failover.
    pub fn relationship_of_address<'v>(
        &'v self,
        failover: &'v FailoverView,
        address: Ipv4Addr,
    ) -> Option<&'v RelationshipView> {
        self.relationship(failover, self.relationships.of_address(address)?)
    }

    /// `secs` as load balancing reads it (`check-secs-byte-order`).
    pub(crate) fn balancing_secs(&self, secs: u16) -> u16 {
        self.relationships.balancing_secs(secs)
    }
}
