//! Pool-exhaustion (starvation) defence: limits on *new* leases, consulted only when the engine
//! is about to allocate an address to a client that has none (ISC `allocate_lease`; a client
//! with a current or previous binding never gets here, RFC 2131 §4.3.1 gives it that binding).
//!
//! # What a flood and an avalanche have in common, and what they do not
//!
//! A starvation attack (`dhcpstarv`, `dhcpig`, Yersinia) sends DISCOVERs — and REQUESTs, so
//! the addresses really become bound — from a stream of random hardware addresses. A legitimate
//! avalanche (thousands of modems re-registering behind one relay after a power cut, modelled by
//! perfdhcp's avalanche scenario) also brings thousands of distinct MACs behind one giaddr within
//! seconds. Rate alone per relay cannot tell them apart, and a per-relay rate low enough to slow
//! an attacker would turn the avalanche into an outage. What does differ:
//!
//! 1. **Size.** The avalanche is bounded by the number of real subscribers, which the operator
//!    sized the pool for; the attacker does not stop until the pool is empty. So the defence
//!    keeps a *reserve* of each pool (`pool-reserve-percent`, default 10 %): above it nothing
//!    limits unknown clients per relay; once a pool's available addresses fall into the
//!    reserve, unknown clients get new leases only at a slow per-relay rate
//!    (`new-leases-per-relay-in-reserve`, default 16 per minute per relay). The attacker can
//!    take the unreserved part at line rate, the reserve only slowly, and returning clients
//!    (below) are not limited at all, so legitimate clients keep finding addresses.
//! 2. **Memory of the client.** After an outage almost every client is one the server knows: its
//!    lease (active, expired or released) is in the store under its client id or MAC, or a
//!    `host` declaration names it. Known clients bypass the reserve (they are the reason it
//!    exists); random MACs are by construction unknown.
//! 3. **Topology.** Where relays insert option 82, one circuit-id is one subscriber line, with a
//!    handful of devices: an avalanche brings at most a few new leases per circuit, a flood from
//!    one subscriber brings thousands. `new-leases-per-circuit` (default 32 per minute) limits
//!    the circuit without touching the avalanche, at any pool level.
//! 4. **Retransmission.** A real client that gets no OFFER retransmits its DISCOVER from the
//!    same MAC a few seconds later (RFC 2131 §4.1, 4 s then 8 s, …); the random-MAC tools send
//!    each MAC once. So inside the reserve, an unknown client's *first* DISCOVER is not answered
//!    (counted as `ReserveFirstSighting`); its retransmission competes for the relay's tokens,
//!    which the one-shot random MACs therefore never consume. A tool that repeats each MAC pays
//!    twice and still meets the per-relay rate.
//! 5. **Persistence of one MAC.** A client that keeps asking for new leases under one hardware
//!    address while changing its client identifier (a trick that defeats the client-key
//!    index) is limited by `new-leases-per-mac` (default 4 per minute).
//!
//! 6. **Declines.** A DHCPDECLINE abandons its address for `abandon-lease-time` (RFC 2131
//!    §4.3.3, ISC `dhcpdecline`), so one client declining every address of a pool empties it
//!    as surely as a flood of new leases. A real client declines only an address it was just
//!    given, and waits at least ten seconds before it starts again (RFC 2131 §3.1 step 5,
//!    §4.4.1); so declines that take effect are limited per MAC at the `new-leases-per-mac`
//!    rate, in a table of their own ([`StarvationState::admit_decline`]). A decline of an
//!    address bound or offered to another client is never taken (`engine::request::notices`),
//!    and abandoned addresses come back after `abandon-lease-time`, or earlier when a pool has
//!    nothing else to give (ISC "Reclaiming abandoned lease", `engine::select`).
//!
//! A DISCOVER-only flood holds each offered address for two minutes (`OFFER_HOLD_SECONDS`);
//! held offers count as used in [`LeaseStore::available_count`], so it also drives the pool into
//! its reserve and is then slowed the same way.
//!
//! # Memory
//!
//! Each limit is a token bucket keyed by a 64-bit keyed hash of its key (MAC, relay + circuit-id,
//! relay) in a table of at most `starvation-table-size` entries; the oldest inserted entry is
//! forgotten first (FIFO). A flood of random MACs churns the MAC table, which costs nothing:
//! every random MAC is new anyway, and the circuit, relay and reserve limits do not depend on
//! it. Forgetting a bucket can only make the defence more lenient, never refuse a client.
//!
//! Every refusal is counted by the limit that refused ([`StarvationRefusals`]) and reported as
//! [`IgnoreReason::RateLimited`](super::IgnoreReason::RateLimited); the client retransmits
//! (RFC 2131 §4.1) and is answered once its bucket has refilled.
//!
//! # Who owns what
//!
//! The limits are the engine's configuration; the tables and counts are a plain value,
//! [`StarvationState`], that the driver owns and lends to [`Engine::handle`] (the daemon keeps
//! one for all its workers, taken with the lease store for a batch), so the engine holds no
//! lock and the defence is tested with fixed times.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::Ipv4Addr;

use crate::config::xdhcpd::{Limit, StarvationConfig};
use crate::lease::record::{Hardware, UnixTime};
use crate::lease::store::LeaseStore;

use super::classify::Classification;
use super::packet::Inbound;
use super::select::Candidate;
use super::Engine;

/// Which limit refused a new lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StarvationLimit {
    /// `new-leases-per-mac`.
    PerMac,
    /// `new-leases-per-circuit`.
    PerCircuit,
    /// `new-leases-per-relay-in-reserve` (the pool is in its reserve and the client unknown).
    PoolReserve,
    /// The pool is in its reserve and this unknown client's DISCOVER is the first seen from its
    /// MAC: it is answered when it retransmits (RFC 2131 §4.1), which random-MAC tools do not.
    ReserveFirstSighting,
    /// DHCPDECLINEs of one MAC beyond the `new-leases-per-mac` rate.
    DeclinePerMac,
}

/// Refusals so far, by limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StarvationRefusals {
    pub per_mac: u64,
    pub per_circuit: u64,
    pub pool_reserve: u64,
    pub reserve_first_sighting: u64,
    pub decline_per_mac: u64,
}

impl StarvationRefusals {
    pub fn total(&self) -> u64 {
        self.per_mac
            + self.per_circuit
            + self.pool_reserve
            + self.reserve_first_sighting
            + self.decline_per_mac
    }

    fn count(&mut self, limit: StarvationLimit) {
        let counter = match limit {
            StarvationLimit::PerMac => &mut self.per_mac,
            StarvationLimit::PerCircuit => &mut self.per_circuit,
            StarvationLimit::PoolReserve => &mut self.pool_reserve,
            StarvationLimit::ReserveFirstSighting => &mut self.reserve_first_sighting,
            StarvationLimit::DeclinePerMac => &mut self.decline_per_mac,
        };
        *counter += 1;
    }
}

/// One token bucket. The level is kept in units of `1 / window` token so that refilling
/// `count` tokens per `window` seconds is exact integer arithmetic: `count` units per second,
/// capacity `count × window` units, one new lease costs `window` units.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    level: u64,
    at: UnixTime,
}

impl Bucket {
    fn full(limit: Limit, now: UnixTime) -> Self {
        Self {
            level: capacity(limit),
            at: now,
        }
    }

    /// The level at `now` (time running backwards adds nothing).
    fn level_at(&self, limit: Limit, now: UnixTime) -> u64 {
        let elapsed = u64::from(now.saturating_sub(self.at));
        self.level
            .saturating_add(elapsed.saturating_mul(u64::from(limit.count)))
            .min(capacity(limit))
    }
}

fn capacity(limit: Limit) -> u64 {
    u64::from(limit.count) * u64::from(limit.window)
}

/// Token buckets by hashed key, at most `capacity` of them (`starvation-table-size`, read at
/// each insertion so that a reload applies a new size), oldest forgotten first.
#[derive(Debug, Default)]
struct Table {
    buckets: HashMap<u64, Bucket>,
    order: VecDeque<u64>,
}

impl Table {
    /// True when a token is available for `key` at `now` (an unknown key has a full bucket).
    fn allows(&self, key: u64, limit: Limit, now: UnixTime) -> bool {
        limit.is_unlimited()
            || self
                .buckets
                .get(&key)
                .is_none_or(|bucket| bucket.level_at(limit, now) >= u64::from(limit.window))
    }

    /// Takes one token for `key` (after [`Table::allows`] said yes).
    fn take(&mut self, key: u64, limit: Limit, now: UnixTime, capacity: usize) {
        if limit.is_unlimited() {
            return;
        }
        let bucket = match self.buckets.get_mut(&key) {
            Some(bucket) => bucket,
            None => self.insert(key, Bucket::full(limit, now), capacity),
        };
        let level = bucket.level_at(limit, now);
        bucket.level = level.saturating_sub(u64::from(limit.window));
        bucket.at = now;
    }

    /// True when `key` was [remembered](Table::remember) before `now` (a retransmission comes
    /// at least a second later; a copy of the same DISCOVER via a second relay does not count).
    fn seen_before(&self, key: u64, now: UnixTime) -> bool {
        self.buckets.get(&key).is_some_and(|entry| entry.at < now)
    }

    /// Records the first sighting of `key` (kept if already there).
    fn remember(&mut self, key: u64, now: UnixTime, capacity: usize) {
        if self.buckets.contains_key(&key) {
            return;
        }
        self.insert(key, Bucket { level: 0, at: now }, capacity);
    }

    /// Inserts a new key, forgetting the oldest while the table holds `capacity` or more.
    fn insert(&mut self, key: u64, bucket: Bucket, capacity: usize) -> &mut Bucket {
        while self.buckets.len() >= capacity.max(1) {
            // `order` and `buckets` hold the same keys: entries leave only here.
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.buckets.remove(&oldest);
        }
        self.order.push_back(key);
        self.buckets.entry(key).or_insert(bucket)
    }

    fn len(&self) -> usize {
        self.buckets.len()
    }
}

/// The defence's memory: its bucket tables, the keys of their hash and the refusals so far.
/// Owned by the driver and lent to the engine for each request ("Who owns what" above).
#[derive(Debug)]
pub struct StarvationState {
    /// MACs of unknown clients refused on first sighting in a reserve, with the time.
    seen: Table,
    mac: Table,
    circuit: Table,
    relay: Table,
    /// DHCPDECLINEs by MAC.
    decline: Table,
    /// Keys the tables hash: random per process, so that an attacker cannot aim MACs at one
    /// bucket or at collisions.
    hasher: RandomState,
    refusals: StarvationRefusals,
}

impl Default for StarvationState {
    fn default() -> Self {
        Self::new(RandomState::new())
    }
}

/// Who asks for a new lease, as the defence sees it.
#[derive(Clone, Debug)]
pub struct NewClient<'a> {
    pub hardware: Hardware,
    /// giaddr of a relayed request, else the receiving interface's address (0.0.0.0 if unknown).
    pub relay: Ipv4Addr,
    /// Option 82 sub-option 1 (RFC 3046 §2.1).
    pub circuit_id: Option<&'a [u8]>,
    /// The store (or a host declaration) already knows this client.
    pub known: bool,
    /// Available addresses of the chosen pool before this allocation, and its size.
    pub pool_available: u64,
    pub pool_size: u64,
}

impl StarvationState {
    /// Empty tables keyed by `hasher` ([`Default`] draws random keys).
    pub fn new(hasher: RandomState) -> Self {
        Self {
            seen: Table::default(),
            mac: Table::default(),
            circuit: Table::default(),
            relay: Table::default(),
            decline: Table::default(),
            hasher,
            refusals: StarvationRefusals::default(),
        }
    }

    /// Refusals so far, by limit.
    pub fn refusals(&self) -> StarvationRefusals {
        self.refusals
    }

    /// Entries held in the (MAC, circuit, relay) tables.
    pub fn table_lengths(&self) -> (usize, usize, usize) {
        (self.mac.len(), self.circuit.len(), self.relay.len())
    }

    /// Decides under `config` whether `client` may get a new lease at `now`; a grant takes one
    /// token from every bucket that applies, a refusal takes none and is counted.
    pub fn admit(
        &mut self,
        config: &StarvationConfig,
        now: UnixTime,
        client: &NewClient<'_>,
    ) -> Result<(), StarvationLimit> {
        if !config.enabled {
            return Ok(());
        }
        let capacity = table_capacity(config);
        let mac_key = self.hasher.hash_one(client.hardware);
        let circuit_key = client
            .circuit_id
            .map(|circuit| self.hasher.hash_one((client.relay, circuit)));
        // An unlimited relay rate switches the whole reserve rule off (first sighting included).
        let relay_key = (in_reserve(config, client)
            && !client.known
            && !config.per_relay_in_reserve.is_unlimited())
        .then(|| self.hasher.hash_one(client.relay));
        let refused = if !self.mac.allows(mac_key, config.per_mac, now) {
            Some(StarvationLimit::PerMac)
        } else if circuit_key.is_some_and(|key| !self.circuit.allows(key, config.per_circuit, now))
        {
            Some(StarvationLimit::PerCircuit)
        } else if relay_key.is_some() && !self.seen.seen_before(mac_key, now) {
            self.seen.remember(mac_key, now, capacity);
            Some(StarvationLimit::ReserveFirstSighting)
        } else if relay_key
            .is_some_and(|key| !self.relay.allows(key, config.per_relay_in_reserve, now))
        {
            Some(StarvationLimit::PoolReserve)
        } else {
            None
        };
        if let Some(limit) = refused {
            self.refusals.count(limit);
            return Err(limit);
        }
        self.mac.take(mac_key, config.per_mac, now, capacity);
        if let Some(key) = circuit_key {
            self.circuit.take(key, config.per_circuit, now, capacity);
        }
        if let Some(key) = relay_key {
            self.relay
                .take(key, config.per_relay_in_reserve, now, capacity);
        }
        Ok(())
    }

    /// Decides under `config` whether a DHCPDECLINE from `hardware` may abandon its address at
    /// `now`: at most `new-leases-per-mac` of them per window per MAC (module doc, point 6). A
    /// grant takes a token, a refusal is counted.
    pub fn admit_decline(
        &mut self,
        config: &StarvationConfig,
        now: UnixTime,
        hardware: Hardware,
    ) -> Result<(), StarvationLimit> {
        if !config.enabled {
            return Ok(());
        }
        let key = self.hasher.hash_one(hardware);
        if !self.decline.allows(key, config.per_mac, now) {
            self.refusals.count(StarvationLimit::DeclinePerMac);
            return Err(StarvationLimit::DeclinePerMac);
        }
        self.decline
            .take(key, config.per_mac, now, table_capacity(config));
        Ok(())
    }
}

/// Entries kept per table (`starvation-table-size`).
fn table_capacity(config: &StarvationConfig) -> usize {
    usize::try_from(config.table_size).unwrap_or(usize::MAX)
}

/// True when the pool has fallen into its reserve.
fn in_reserve(config: &StarvationConfig, client: &NewClient<'_>) -> bool {
    let reserve = client
        .pool_size
        .saturating_mul(u64::from(config.reserve_percent))
        / 100;
    // A reserve of no address protects nothing (tiny pools); offers past their hold still
    // count until the expiry ticker drops them, which only makes the reserve start early.
    reserve > 0 && client.pool_available <= reserve
}

/// The relay agent circuit-id (sub-option 1 of option 82, RFC 3046 §2.0) of a request.
fn circuit_id<'a>(inbound: &'a Inbound<'_>) -> Option<&'a [u8]> {
    crate::config::expr::agent_suboption(inbound.relay_agent.as_deref()?, 1)
}

impl Engine {
    /// The starvation defence for `candidate`, a new address [`Engine::allocate`] just chose
    /// for a client without a usable binding, with the defence's memory `starvation`. On
    /// refusal a never-used address is put back in its pool's free queue (the allocator's
    /// cursor has moved past it).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn admit_new_lease(
        &self,
        starvation: &mut StarvationState,
        now: UnixTime,
        inbound: &Inbound<'_>,
        interface_address: Option<Ipv4Addr>,
        classification: &Classification,
        candidate: &Candidate,
        leases: &LeaseStore,
    ) -> Result<(), StarvationLimit> {
        let Candidate::Dynamic { pool, .. } = candidate else {
            return Ok(());
        };
        let circuit = circuit_id(inbound);
        let relay = if inbound.giaddr.is_unspecified() {
            interface_address.unwrap_or(Ipv4Addr::UNSPECIFIED)
        } else {
            inbound.giaddr
        };
        let known = classification.host(&self.config).is_some()
            || leases.find_by_client(&inbound.key).is_some()
            || leases.find_by_hardware(&inbound.hardware).is_some();
        let client = NewClient {
            hardware: inbound.hardware,
            relay,
            circuit_id: circuit,
            known,
            pool_available: leases.available_count(*pool),
            pool_size: leases.pool_size(*pool),
        };
        // A refused allocation hands its address back in `Context::allocate_new`
        // (`LeaseStore::return_unused`), as a DISCOVER left to the failover partner does.
        starvation.admit(&self.config.starvation, now, &client)
    }

    /// The starvation defence's limit on DHCPDECLINEs of `inbound`'s MAC (module doc, point 6).
    pub(crate) fn admit_decline(
        &self,
        starvation: &mut StarvationState,
        now: UnixTime,
        inbound: &Inbound<'_>,
    ) -> Result<(), StarvationLimit> {
        starvation.admit_decline(&self.config.starvation, now, inbound.hardware)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: UnixTime = 1_700_000_000;

    /// The limits and the memory together, as the engine uses them.
    struct StarvationDefence {
        config: StarvationConfig,
        state: StarvationState,
    }

    impl StarvationDefence {
        fn new(config: StarvationConfig) -> Self {
            Self {
                config,
                state: StarvationState::default(),
            }
        }

        fn admit(&mut self, now: UnixTime, client: &NewClient<'_>) -> Result<(), StarvationLimit> {
            self.state.admit(&self.config, now, client)
        }

        fn refusals(&self) -> StarvationRefusals {
            self.state.refusals()
        }

        fn table_lengths(&self) -> (usize, usize, usize) {
            self.state.table_lengths()
        }
    }

    fn mac(n: u32) -> Hardware {
        let bytes = n.to_be_bytes();
        Hardware::new(1, &[0x02, 0, bytes[0], bytes[1], bytes[2], bytes[3]]).expect("6 bytes")
    }

    fn client(n: u32, available: u64) -> NewClient<'static> {
        NewClient {
            hardware: mac(n),
            relay: Ipv4Addr::new(10, 0, 0, 1),
            circuit_id: None,
            known: false,
            pool_available: available,
            pool_size: 1000,
        }
    }

    #[test]
    fn per_mac_limit_refuses_the_fifth_new_lease_and_refills_over_the_window() {
        let mut defence = StarvationDefence::new(StarvationConfig::default());
        for _ in 0..4 {
            assert_eq!(defence.admit(T0, &client(1, 900)), Ok(()));
        }
        assert_eq!(
            defence.admit(T0, &client(1, 900)),
            Err(StarvationLimit::PerMac)
        );
        // 4 per 60 s: one token every 15 s.
        assert_eq!(
            defence.admit(T0 + 14, &client(1, 900)),
            Err(StarvationLimit::PerMac)
        );
        assert_eq!(defence.admit(T0 + 15, &client(1, 900)), Ok(()));
        assert_eq!(defence.refusals().per_mac, 2);
        // Another MAC is unaffected.
        assert_eq!(defence.admit(T0 + 15, &client(2, 900)), Ok(()));
    }

    #[test]
    fn avalanche_of_new_macs_behind_one_relay_is_not_limited_above_the_reserve() {
        let mut defence = StarvationDefence::new(StarvationConfig::default());
        // 5000 clients in one second, pool of 10000 with plenty left.
        for n in 0..5000 {
            let mut c = client(n, 10_000 - u64::from(n));
            c.pool_size = 10_000;
            assert_eq!(defence.admit(T0, &c), Ok(()), "client {n}");
        }
        assert_eq!(defence.refusals().total(), 0);
    }

    #[test]
    fn reserve_slows_unknown_clients_per_relay_but_not_known_ones() {
        let mut defence = StarvationDefence::new(StarvationConfig::default());
        // Pool of 1000, 10 % reserve: 100 or fewer available puts it in the reserve. First
        // sightings are refused, retransmissions (a second later or more) admitted.
        for n in 0..16 {
            assert_eq!(
                defence.admit(T0, &client(n, 100)),
                Err(StarvationLimit::ReserveFirstSighting)
            );
            assert_eq!(
                defence.admit(T0, &client(n, 100)),
                Err(StarvationLimit::ReserveFirstSighting),
                "a copy in the same second is no retransmission"
            );
            assert_eq!(defence.admit(T0 + 1, &client(n, 100)), Ok(()));
        }
        assert_eq!(
            defence.admit(T0, &client(99, 100)),
            Err(StarvationLimit::ReserveFirstSighting)
        );
        assert_eq!(
            defence.admit(T0 + 1, &client(99, 100)),
            Err(StarvationLimit::PoolReserve)
        );
        let mut known = client(100, 100);
        known.known = true;
        assert_eq!(defence.admit(T0 + 1, &known), Ok(()));
        // Another relay has its own bucket.
        let mut other = client(101, 100);
        other.relay = Ipv4Addr::new(10, 9, 0, 1);
        let _ = defence.admit(T0, &other);
        assert_eq!(defence.admit(T0 + 1, &other), Ok(()));
        // 16 per 60 s: one more every 3.75 s.
        assert_eq!(defence.admit(T0 + 5, &client(99, 100)), Ok(()));
        assert_eq!(defence.refusals().pool_reserve, 1);
        assert_eq!(defence.refusals().reserve_first_sighting, 34);
    }

    #[test]
    fn circuit_limit_applies_per_relay_and_circuit() {
        let mut defence = StarvationDefence::new(StarvationConfig::default());
        let circuit: &[u8] = b"eth0/1/2:100";
        for n in 0..32 {
            let mut c = client(n, 900);
            c.circuit_id = Some(circuit);
            assert_eq!(defence.admit(T0, &c), Ok(()));
        }
        let mut c = client(40, 900);
        c.circuit_id = Some(circuit);
        assert_eq!(defence.admit(T0, &c), Err(StarvationLimit::PerCircuit));
        // The same circuit-id on another relay is another line.
        c.relay = Ipv4Addr::new(10, 9, 0, 1);
        assert_eq!(defence.admit(T0, &c), Ok(()));
        // A refusal takes no token elsewhere: client 40's MAC still has its four.
        assert_eq!(defence.refusals().per_circuit, 1);
    }

    #[test]
    fn tables_stay_bounded_under_a_flood_of_random_macs() {
        let config = StarvationConfig {
            table_size: 1000,
            ..StarvationConfig::default()
        };
        let mut defence = StarvationDefence::new(config);
        for n in 0..50_000 {
            let _ = defence.admit(T0 + n / 1000, &client(n, 900));
        }
        assert_eq!(defence.table_lengths().0, 1000);
    }

    #[test]
    fn disabled_or_unlimited_never_refuses() {
        let mut defence = StarvationDefence::new(StarvationConfig {
            enabled: false,
            ..StarvationConfig::default()
        });
        for _ in 0..100 {
            assert_eq!(defence.admit(T0, &client(1, 0)), Ok(()));
        }
        let mut defence = StarvationDefence::new(StarvationConfig {
            per_mac: Limit::UNLIMITED,
            per_relay_in_reserve: Limit::UNLIMITED,
            ..StarvationConfig::default()
        });
        for _ in 0..100 {
            assert_eq!(defence.admit(T0, &client(1, 0)), Ok(()));
        }
        assert_eq!(defence.table_lengths(), (0, 0, 0));
    }

    #[test]
    fn time_running_backwards_refills_nothing() {
        let mut defence = StarvationDefence::new(StarvationConfig::default());
        for _ in 0..4 {
            assert_eq!(defence.admit(T0, &client(1, 900)), Ok(()));
        }
        assert_eq!(
            defence.admit(T0 - 1000, &client(1, 900)),
            Err(StarvationLimit::PerMac)
        );
    }

    /// Through the engine: a flood of random MACs completing DORA on the base config's 10-address
    /// local pool (reserve 20 % = 2 addresses) takes 8 addresses, then the reserve stops it (its
    /// MACs never retransmit); a new client that retransmits and a client with a previous lease
    /// still get addresses.
    #[test]
    fn engine_keeps_the_reserve_for_known_clients_under_a_random_mac_flood() {
        use super::super::tests::{base_config, bind, client, reply_type, Harness, MAC_A, NOW};
        use super::super::{IgnoreReason, Outcome};
        use dhcproto::v4::MessageType;

        let mut config = base_config(true);
        config.starvation.reserve_percent = 20;
        config.starvation.per_relay_in_reserve = Limit {
            count: 1,
            window: 60,
        };
        let mut harness = Harness::new(config);
        // A legitimate client bound earlier, whose lease has been released since.
        let ack = bind(&mut harness, NOW, MAC_A);
        assert_eq!(reply_type(&ack), Some(MessageType::Ack));
        let mut release = client(MessageType::Release, MAC_A);
        release.set_ciaddr(
            ack.reply
                .as_ref()
                .map(|reply| reply.header.yiaddr())
                .unwrap_or(Ipv4Addr::UNSPECIFIED),
        );
        let _ = harness.handle(NOW + 1, &release);

        let mut granted = 0;
        let mut refused = 0;
        for n in 0..50u8 {
            let mac = [0x0e, 0xee, 0, 0, 1, n];
            let offer = harness.handle(NOW + 2, &client(MessageType::Discover, mac));
            match offer.outcome {
                Outcome::Offered(_) => {
                    granted += 1;
                    let ack = bind(&mut harness, NOW + 2, mac);
                    assert_eq!(reply_type(&ack), Some(MessageType::Ack));
                }
                Outcome::Ignored(IgnoreReason::RateLimited(
                    StarvationLimit::ReserveFirstSighting,
                )) => refused += 1,
                Outcome::Ignored(IgnoreReason::NoFreeAddress) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        // 10 addresses (A's released one counts as available): the flood takes 8 before the pool
        // is down to its reserve of 2.
        assert_eq!(granted, 8, "granted");
        assert_eq!(refused, 42);
        assert_eq!(
            harness.starvation.refusals().reserve_first_sighting,
            refused
        );
        // A refusal hands back the address the allocator had picked: the pool's last
        // never-used address and A's released one are both still there (42 refusals burnt none).
        let pool = harness
            .leases
            .pool_of(Ipv4Addr::new(10, 0, 0, 100))
            .expect("the pool");
        let probe = crate::lease::store::ClientKey::Hardware(
            crate::lease::record::Hardware::new(1, &[0x0e, 0xff, 0, 0, 0, 1]).expect("mac"),
        );
        // (The probe's offer lapses at NOW + 3, before the clients below ask again.)
        let first = harness.leases.allocate(pool, &probe, NOW + 2);
        if let Some(address) = first {
            harness.leases.hold_offer(address, probe.clone(), NOW + 3);
        }
        let other = crate::lease::store::ClientKey::Hardware(
            crate::lease::record::Hardware::new(1, &[0x0e, 0xff, 0, 0, 0, 2]).expect("mac"),
        );
        let second = harness.leases.allocate(pool, &other, NOW + 2);
        assert!(
            first.is_some() && second.is_some() && first != second,
            "two addresses left for the reserve: {first:?} {second:?}"
        );
        // A new client is answered on its retransmission.
        let mac_c = [0x02, 0, 0, 0, 0, 0x0c];
        let first = harness.handle(NOW + 3, &client(MessageType::Discover, mac_c));
        assert_eq!(
            first.outcome,
            Outcome::Ignored(IgnoreReason::RateLimited(
                StarvationLimit::ReserveFirstSighting
            ))
        );
        let again = harness.handle(NOW + 7, &client(MessageType::Discover, mac_c));
        assert!(
            matches!(again.outcome, Outcome::Offered(_)),
            "{:?}",
            again.outcome
        );
        // The known client is not limited and finds an address in the reserve.
        let ack = bind(&mut harness, NOW + 3, MAC_A);
        assert_eq!(reply_type(&ack), Some(MessageType::Ack));
    }
}
