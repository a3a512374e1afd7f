//! The in-memory lease store: every known lease with indices by address, hardware address and
//! client identifier, plus per-pool free-address allocation. Pure data structure: time comes in
//! as an argument; durability is the job of `lease::log`.
//!
//! Layout, for ≤ 200 bytes per lease at 1 M leases: the leases live in one `Vec` arena and leave
//! it only when a reload moves them to another shard (`lease::shards`); the three indices are
//! `HashTable<u32>`s of arena slots that hash through the arena (4 bytes + 1 control byte per
//! bucket, no key copies). Allocation takes never-used
//! addresses from a per-pool cursor and reused ones from a per-pool free queue ordered by end
//! time; expiry pops an ordered queue of active and abandoned leases. No operation scans all leases.

use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::net::Ipv4Addr;
use std::path::Path;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::config::model::{Config, PoolId};
use crate::lease::file::LeaseFile;
use crate::lease::record::{flags, BindingState, Hardware, Lease, LeaseExtra, UnixTime, NEVER};

/// Who a client is, by the rule ISC and the XDP fast path share: the client identifier (option
/// 61) when the client sent one, else its hardware address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientKey {
    ClientId(Box<[u8]>),
    Hardware(Hardware),
}

impl ClientKey {
    /// The bytes failover load balancing hashes (docs/spec/failover.md §11.3): the client
    /// identifier, else the hardware address.
    pub fn hashed_bytes(&self) -> &[u8] {
        match self {
            ClientKey::ClientId(id) => id,
            ClientKey::Hardware(hardware) => hardware.address(),
        }
    }
}

/// One pool: its ranges, how far allocation has walked through never-used addresses, and its
/// reusable leases.
#[derive(Clone, Debug, Default)]
struct PoolState {
    /// Inclusive ranges as `u32`.
    ranges: Vec<(u32, u32)>,
    /// Where the walk through never-used addresses starts (a position among the pool's
    /// addresses, ranges in order; 0 as ISC, see [`LeaseStore::spread_never_used`]) and how
    /// many positions it has passed; it wraps around once.
    start: u64,
    walked: u64,
    /// The pool names a failover peer: its free-state leases are kept in one queue per owner
    /// (docs/spec/failover.md §7.1, ISC's `free`, `backup` and `expired` pool queues).
    failover: bool,
    /// Without failover: free, expired and released leases; with failover: FREE leases only.
    /// By (end, address): the one free the longest comes first, as in ISC's free queue.
    free: BTreeSet<(UnixTime, u32)>,
    /// Failover only: BACKUP leases (the secondary's free state).
    backup: BTreeSet<(UnixTime, u32)>,
    /// Failover only: EXPIRED, RELEASED and RESET leases, waiting for the partner's ack (or for
    /// PARTNER-DOWN's wait) before anyone may allocate them (§8.2).
    reclaim: BTreeSet<(UnixTime, u32)>,
    /// ABANDONED leases (declined, ISC `abandon_lease`): allocated only when the pool has
    /// nothing else, oldest abandonment first (ISC `allocate_lease`'s `pool->abandoned`).
    abandoned: BTreeSet<(UnixTime, u32)>,
    /// Number of addresses in `ranges`.
    size: u64,
    /// Number of stored leases of the pool (the rest are never-used, i.e. FREE).
    stored: u64,
    /// Stored leases of the pool by binding state (index = wire value, §7.1).
    counts: [u64; 8],
    /// Pending offers of addresses that were reusable when offered.
    offered: u64,
    /// `log-threshold-high` was logged; the use at which it is logged again (ISC's
    /// `pool->logged`, `pool->low_threshold`; `store::threshold`).
    threshold_logged: bool,
    low_threshold: u64,
}

/// Which free-state queue of a pool to allocate from (docs/spec/failover.md §7.1, §8.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeQueue {
    /// FREE leases, never-used addresses first (the primary's, and every pool's without
    /// failover).
    Free,
    /// BACKUP leases (the secondary's).
    Backup,
    /// EXPIRED, RELEASED and RESET leases of a failover pool.
    Reclaim,
    /// ABANDONED leases: the last resort when a pool has nothing free (ISC "Reclaiming
    /// abandoned lease").
    Abandoned,
}

/// How many leases of a queue [`LeaseStore::allocate_from`] looks at that its caller refuses
/// (e.g. the partner's leases whose tsfp + MCLT has not passed yet) before it gives up: ISC
/// looks at the head of the partner's queue only (`allocate_lease`); a few more cost little and
/// keep one odd lease from blocking the rest.
pub const REFUSED_SCAN_LIMIT: usize = 16;

/// An address offered to a client but not yet requested (not persisted; RFC 2131 §4.3.1 lets
/// the server reserve it briefly so that two clients are not offered the same address).
#[derive(Clone, Debug)]
struct Offer {
    client: ClientKey,
    until: UnixTime,
    /// When the offer was made (ISC's `cltt` of the offered lease, which `ping-cltt-secs`
    /// measures from); 0 when unknown.
    made: UnixTime,
    /// Until when an ICMP echo request to the address may still be answered before the OFFER
    /// leaves (`ping-check`, `engine::ping_check`); 0 when no probe is pending. A bound in
    /// seconds that the driver's resolution normally ends first: a probe whose resolution was
    /// lost (a driver restarted) cannot hold the address beyond it.
    probe_until: UnixTime,
    /// The pool whose `offered` count this offer holds (a reusable address was offered).
    counted_in: Option<PoolId>,
}

/// A pending offer leaving its store with its address ([`LeaseStore::take`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldOffer {
    pub address: Ipv4Addr,
    pub client: ClientKey,
    pub until: UnixTime,
    pub made: UnixTime,
    pub probe_until: UnixTime,
}

/// Slot of a lease in the arena.
type Slot = u32;

/// [`LeaseStore::pool_slots`] of a pool another store holds.
const NOT_HELD: u32 = u32::MAX;

/// All leases.
#[derive(Default)]
pub struct LeaseStore {
    /// [`LeaseStore::spread_never_used`]'s seed, kept for the pools a reload rebuilds.
    never_used_seed: u64,
    leases: Vec<Lease>,
    by_address: HashTable<Slot>,
    /// Every lease with a client identifier / hardware address, several per client (ISC's
    /// `lease_uid_hash` and `lease_hw_addr_hash` chains), each entry with the sequence number of
    /// its linking: the most recently bound lease of a client is the one with the highest.
    by_client_id: HashTable<(Slot, u64)>,
    by_hardware: HashTable<(Slot, u64)>,
    /// The sequence number of the last link into the client indices.
    link_sequence: u64,
    /// Leases removed from the arena so far ([`LeaseStore::removals`]).
    removals: u64,
    hasher: DefaultHashBuilder,
    /// The pools this store holds (all of the config's, or one shard's: `lease::shards`), in
    /// config order.
    pools: Vec<PoolState>,
    /// By config pool index: the pool's index in `pools`, or [`NOT_HELD`].
    pool_slots: Vec<u32>,
    /// (low, high, config pool index) of every range of the held pools, sorted by `low`, to
    /// find an address's pool.
    ranges: Vec<(u32, u32, u32)>,
    /// ACTIVE leases with a finite end, by (end, address).
    expiry: BTreeSet<(UnixTime, u32)>,
    offers: HashMap<Ipv4Addr, Offer>,
    /// (until, address) of every offer made; stale entries are skipped when popped.
    offer_expiry: BTreeSet<(UnixTime, u32)>,
    /// Billed leases gained (+) and lost (−) per class since the last report
    /// (`store/billing.rs`): the index the `lease limit` checks count with.
    billing: crate::lease::billing::BillingDeltas,
}

impl std::fmt::Debug for LeaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseStore")
            .field("leases", &self.leases.len())
            .field("pools", &self.pools.len())
            .field("offers", &self.offers.len())
            .finish()
    }
}

/// The queue a lease in `state` waits in, in a pool with or without failover, when it is
/// `reserved` or not: a reserved lease that is not abandoned waits in none (ISC keeps those in
/// the pool's `reserved` queue, from which `allocate_lease` takes nothing; only its own client
/// finds it again).
fn queue_of_reserved(state: BindingState, reserved: bool, failover: bool) -> Option<FreeQueue> {
    queue_of(state, failover).filter(|queue| !reserved || *queue == FreeQueue::Abandoned)
}

/// Whether `lease` is marked `reserved;`.
fn is_reserved(lease: &Lease) -> bool {
    lease.flags & flags::RESERVED != 0
}

/// The queue a lease in `state` waits in, in a pool with or without failover.
fn queue_of(state: BindingState, failover: bool) -> Option<FreeQueue> {
    match (state, failover) {
        (BindingState::Free | BindingState::Expired | BindingState::Released, false) => {
            Some(FreeQueue::Free)
        }
        (BindingState::Free, true) => Some(FreeQueue::Free),
        (BindingState::Backup, true) => Some(FreeQueue::Backup),
        (BindingState::Expired | BindingState::Released | BindingState::Reset, true) => {
            Some(FreeQueue::Reclaim)
        }
        (BindingState::Abandoned, _) => Some(FreeQueue::Abandoned),
        _ => None,
    }
}

/// True when `lease` waits in the store's expiry queue: ACTIVE until its end, ABANDONED until
/// its `abandon-lease-time` has passed (ISC `abandon_lease` sets `ends` = now +
/// abandon-lease-time, and `pool_timer` frees the lease then), `ends never` excepted.
fn expires(lease: &Lease) -> bool {
    matches!(
        lease.binding_state,
        BindingState::Active | BindingState::Abandoned
    ) && lease.ends != NEVER
}

impl PoolState {
    fn queue(&self, queue: FreeQueue) -> &BTreeSet<(UnixTime, u32)> {
        match queue {
            FreeQueue::Free => &self.free,
            FreeQueue::Backup => &self.backup,
            FreeQueue::Reclaim => &self.reclaim,
            FreeQueue::Abandoned => &self.abandoned,
        }
    }

    fn queue_mut(&mut self, queue: FreeQueue) -> &mut BTreeSet<(UnixTime, u32)> {
        match queue {
            FreeQueue::Free => &mut self.free,
            FreeQueue::Backup => &mut self.backup,
            FreeQueue::Reclaim => &mut self.reclaim,
            FreeQueue::Abandoned => &mut self.abandoned,
        }
    }
}

/// Memory held by the store, counted from sizes and capacities (see [`LeaseStore::memory`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUsage {
    pub arena: usize,
    pub lease_heap: usize,
    pub indices: usize,
    pub queues: usize,
    pub total: usize,
}

/// Bytes glibc's malloc takes for a request of `size` (16-byte chunks with an 8-byte header,
/// 32 at least), so that the estimate matches what the process really holds.
fn malloc_size(size: usize) -> usize {
    if size == 0 {
        0
    } else {
        ((size + 8 + 15) & !15).max(32)
    }
}

/// Approximate bytes of a `BTreeSet` of 8-byte keys: leaves of up to 11 keys, about two thirds
/// full after random inserts, ~100 bytes each.
fn btree_size(len: usize) -> usize {
    len.div_ceil(7) * 112
}

impl LeaseStore {
    /// An empty store that knows the pools of `config` (their ranges, for allocation).
    pub fn new(config: &Config) -> Self {
        Self::with_pools(config, |_| true)
    }

    /// An empty store that holds the pools of `config` that `holds` picks (one shard of
    /// `lease::shards`): only their addresses are allocated, counted and queued here; an
    /// address of another pool is, to this store, outside every pool.
    pub fn with_pools(config: &Config, holds: impl Fn(PoolId) -> bool) -> Self {
        let mut store = Self {
            pool_slots: vec![NOT_HELD; config.pools.len()],
            ..Self::default()
        };
        for (index, pool) in config.pools.iter().enumerate() {
            if !holds(PoolId(index as u32)) {
                continue;
            }
            store.pool_slots[index] = store.pools.len() as u32;
            let ranges: Vec<(u32, u32)> = pool
                .ranges
                .iter()
                .map(|range| (u32::from(range.low), u32::from(range.high)))
                .collect();
            for &(low, high) in &ranges {
                store.ranges.push((low, high, index as u32));
            }
            let size = ranges
                .iter()
                .map(|&(low, high)| u64::from(high.saturating_sub(low)) + 1)
                .sum();
            store.pools.push(PoolState {
                ranges,
                failover: pool.failover_peer.is_some(),
                size,
                ..PoolState::default()
            });
        }
        store.ranges.sort_unstable();
        store
    }

    /// Starts each pool's walk through never-used addresses at `seed` modulo its size instead
    /// of its first address. Several servers sharing one PostgreSQL lease database
    /// (`lease::pg`) each start elsewhere, so they rarely offer the same address before they
    /// see each other's leases; 0 (the default) is ISC's order. Call before allocating.
    pub fn spread_never_used(&mut self, seed: u64) {
        self.never_used_seed = seed;
        for pool in &mut self.pools {
            if pool.walked == 0 && pool.size > 0 {
                pool.start = seed % pool.size;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// Re-reads the pools of a new `config` (SIGHUP reload): pool ranges, allocation cursors and
    /// free queues are rebuilt from the leases already held, which all stay. A lease whose
    /// address left every pool stays as a record (ISC keeps such leases too) but is no longer
    /// allocated; pending offers stay. O(n log n) in the leases, no lease is copied.
    pub fn reconfigure(&mut self, config: &Config) {
        self.reconfigure_with(config, |_| true);
    }

    /// [`LeaseStore::reconfigure`] for a store that holds the pools `holds` picks (see
    /// [`LeaseStore::with_pools`]).
    pub fn reconfigure_with(&mut self, config: &Config, holds: impl Fn(PoolId) -> bool) {
        let fresh = Self::with_pools(config, holds);
        self.pools = fresh.pools;
        self.spread_never_used(self.never_used_seed);
        self.pool_slots = fresh.pool_slots;
        self.ranges = fresh.ranges;
        for index in 0..self.leases.len() {
            let lease = &self.leases[index];
            let (address, state, ends) = (lease.address, lease.binding_state, lease.ends);
            let reserved = is_reserved(lease);
            let Some(pool) = self
                .pool_of(address)
                .and_then(|pool| self.pool_state_mut(pool))
            else {
                continue;
            };
            pool.stored += 1;
            pool.counts[state as usize] += 1;
            if let Some(queue) = queue_of_reserved(state, reserved, pool.failover) {
                pool.queue_mut(queue).insert((ends, u32::from(address)));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// The state of `pool`, when this store holds it.
    fn pool_state(&self, pool: PoolId) -> Option<&PoolState> {
        let slot = *self.pool_slots.get(pool.0 as usize)?;
        self.pools.get(slot as usize)
    }

    fn pool_state_mut(&mut self, pool: PoolId) -> Option<&mut PoolState> {
        let slot = *self.pool_slots.get(pool.0 as usize)?;
        self.pools.get_mut(slot as usize)
    }

    /// True when this store holds `pool` (its leases, its free queues and its counts).
    pub fn holds_pool(&self, pool: PoolId) -> bool {
        self.pool_state(pool).is_some()
    }

    /// Room for `additional` more leases without re-allocating (before a bulk load).
    pub fn reserve(&mut self, additional: usize) {
        self.leases.reserve_exact(additional);
        let (hasher, leases) = (&self.hasher, &self.leases);
        self.by_address.reserve(additional, |&slot| {
            hasher.hash_one(leases[slot as usize].address)
        });
        self.by_client_id.reserve(additional, |&(slot, _)| {
            hasher.hash_one(leases[slot as usize].uid().unwrap_or_default())
        });
        self.by_hardware.reserve(additional, |&(slot, _)| {
            hasher.hash_one(leases[slot as usize].hardware.unwrap_or_default())
        });
    }

    fn slot(&self, address: Ipv4Addr) -> Option<Slot> {
        let leases = &self.leases;
        self.by_address
            .find(self.hasher.hash_one(address), |&slot| {
                leases[slot as usize].address == address
            })
            .copied()
    }

    pub fn get(&self, address: Ipv4Addr) -> Option<&Lease> {
        self.slot(address).map(|slot| &self.leases[slot as usize])
    }

    /// The lease most recently bound to this client identifier.
    pub fn find_by_client_id(&self, client_id: &[u8]) -> Option<&Lease> {
        self.client_id_entries(client_id)
            .max_by_key(|&(_, sequence)| sequence)
            .map(|(slot, _)| &self.leases[slot as usize])
    }

    /// The lease most recently bound to this hardware address.
    pub fn find_by_hardware(&self, hardware: &Hardware) -> Option<&Lease> {
        self.hardware_entries(hardware)
            .max_by_key(|&(_, sequence)| sequence)
            .map(|(slot, _)| &self.leases[slot as usize])
    }

    /// Every lease that carries this client identifier (ISC's uid hash chain).
    pub fn leases_of_client_id<'a>(
        &'a self,
        client_id: &'a [u8],
    ) -> impl Iterator<Item = &'a Lease> {
        self.client_id_entries(client_id)
            .map(|(slot, _)| &self.leases[slot as usize])
    }

    /// Every lease that carries this hardware address (ISC's hardware hash chain).
    pub fn leases_of_hardware<'a>(
        &'a self,
        hardware: &'a Hardware,
    ) -> impl Iterator<Item = &'a Lease> {
        self.hardware_entries(hardware)
            .map(|(slot, _)| &self.leases[slot as usize])
    }

    fn client_id_entries<'a>(
        &'a self,
        client_id: &'a [u8],
    ) -> impl Iterator<Item = (Slot, u64)> + 'a {
        let leases = &self.leases;
        self.by_client_id
            .iter_hash(self.hasher.hash_one(client_id))
            .filter(move |&&(slot, _)| leases[slot as usize].uid() == Some(client_id))
            .copied()
    }

    fn hardware_entries<'a>(
        &'a self,
        hardware: &'a Hardware,
    ) -> impl Iterator<Item = (Slot, u64)> + 'a {
        let leases = &self.leases;
        self.by_hardware
            .iter_hash(self.hasher.hash_one(hardware))
            .filter(move |&&(slot, _)| leases[slot as usize].hardware.as_ref() == Some(hardware))
            .copied()
    }

    /// The client's lease by the shared key rule (see [`ClientKey`]).
    pub fn find_by_client(&self, client: &ClientKey) -> Option<&Lease> {
        match client {
            ClientKey::ClientId(id) => self.find_by_client_id(id),
            ClientKey::Hardware(hardware) => self.find_by_hardware(hardware),
        }
    }

    /// The pool whose ranges contain `address`.
    pub fn pool_of(&self, address: Ipv4Addr) -> Option<PoolId> {
        let address = u32::from(address);
        let after = self.ranges.partition_point(|&(low, _, _)| low <= address);
        let &(_, high, pool) = self.ranges.get(after.checked_sub(1)?)?;
        (address <= high).then_some(PoolId(pool))
    }

    /// Number of reusable (free, expired, released) leases of `pool`, never-used addresses not
    /// counted.
    pub fn free_count(&self, pool: PoolId) -> usize {
        self.pool_state(pool).map_or(0, |pool| {
            let reset = pool.counts[BindingState::Reset as usize] as usize;
            pool.free.len() + pool.reclaim.len().saturating_sub(reset)
        })
    }

    /// Number of stored leases of `pool` in `state` (never-used addresses are not stored; see
    /// [`LeaseStore::never_used`]). O(1): kept up to date on every change.
    pub fn state_count(&self, pool: PoolId, state: BindingState) -> u64 {
        self.pool_state(pool)
            .map_or(0, |pool| pool.counts[state as usize])
    }

    /// Number of addresses of `pool` with no stored lease: ISC has a FREE lease object for each
    /// (docs/spec/failover.md §7.1), so with failover they are the primary's.
    pub fn never_used(&self, pool: PoolId) -> u64 {
        self.pool_state(pool)
            .map_or(0, |pool| pool.size.saturating_sub(pool.stored))
    }

    /// Leases of `pool` waiting in its FREE queue, never-used addresses included and reserved
    /// ones not (ISC's `pool->free_leases`: a `reserved` lease waits in the pool's `reserved`
    /// queue, server/mdb.c `supersede_lease`). In a failover pool these are the FREE leases.
    pub fn free_state_count(&self, pool: PoolId) -> u64 {
        self.pool_state(pool)
            .map_or(0, |state| self.never_used(pool) + state.free.len() as u64)
    }

    /// Leases of `pool` waiting in its BACKUP queue, reserved ones not (ISC's
    /// `pool->backup_leases`).
    pub fn backup_queue_count(&self, pool: PoolId) -> u64 {
        self.pool_state(pool)
            .map_or(0, |state| state.backup.len() as u64)
    }

    /// Addresses of `pool` a new client could be given: never-used ones plus reusable leases,
    /// less pending offers of reusable addresses (the starvation defence's measure of how full
    /// a pool is; `engine::starvation`).
    pub fn available_count(&self, pool: PoolId) -> u64 {
        let Some(state) = self.pool_state(pool) else {
            return 0;
        };
        // Either side's free state counts: the defence measures how full the pool is for the
        // pair, not which server may hand out what (that is the failover rules' business).
        (self.never_used(pool) + self.free_count(pool) as u64 + state.backup.len() as u64)
            .saturating_sub(state.offered)
    }

    /// Addresses of `pool` waiting in its FREE or BACKUP queue, never-used ones included and
    /// reserved ones not (ISC `pool->free_leases + pool->backup_leases`; in a pool without
    /// failover, expired and released leases count as ISC has freed them by then).
    pub fn unallocated_count(&self, pool: PoolId) -> u64 {
        self.pool_state(pool).map_or(0, |state| {
            self.never_used(pool) + state.free.len() as u64 + state.backup.len() as u64
        })
    }

    /// Addresses in the ranges of `pool`.
    pub fn pool_size(&self, pool: PoolId) -> u64 {
        self.pool_state(pool).map_or(0, |pool| pool.size)
    }

    /// Forgets the offer of `address`, releasing its count.
    fn drop_offer(&mut self, address: Ipv4Addr) {
        if let Some(offer) = self.offers.remove(&address) {
            if let Some(pool) = offer.counted_in.and_then(|pool| self.pool_state_mut(pool)) {
                pool.offered = pool.offered.saturating_sub(1);
            }
        }
    }

    /// Inserts or replaces the lease for `lease.address` and updates the indices.
    pub fn upsert(&mut self, lease: Lease) {
        self.drop_offer(lease.address);
        self.put(lease);
    }

    /// The addresses of the leases and pending offers for which `leaves` is true (a reload
    /// moving them to another shard, `lease::shards`), each once.
    pub fn addresses_where(&self, leaves: impl Fn(Ipv4Addr) -> bool) -> Vec<Ipv4Addr> {
        let mut addresses: Vec<Ipv4Addr> = self
            .leases
            .iter()
            .map(|lease| lease.address)
            .chain(self.offers.keys().copied())
            .filter(|&address| leaves(address))
            .collect();
        addresses.sort_unstable();
        addresses.dedup();
        addresses
    }

    /// Takes `address` out of the store: its lease (from the indices, the queues and the arena)
    /// and its pending offer, for [`LeaseStore::adopt`] by another store.
    pub fn take(&mut self, address: Ipv4Addr) -> (Option<Lease>, Option<HeldOffer>) {
        let offer = self.offers.get(&address).map(|offer| HeldOffer {
            address,
            client: offer.client.clone(),
            until: offer.until,
            made: offer.made,
            probe_until: offer.probe_until,
        });
        self.drop_offer(address);
        (self.remove(address), offer)
    }

    /// Stores what [`LeaseStore::take`] took from another store.
    pub fn adopt(&mut self, lease: Option<Lease>, offer: Option<HeldOffer>) {
        if let Some(lease) = lease {
            self.put(lease);
        }
        if let Some(offer) = offer {
            self.hold_offer_at(
                offer.address,
                offer.client,
                offer.until,
                offer.made,
                offer.probe_until,
            );
        }
    }

    /// Removes the lease of `address`: the arena's last lease moves into its slot (so the
    /// arena stays dense) and the indices follow it.
    fn remove(&mut self, address: Ipv4Addr) -> Option<Lease> {
        let slot = self.slot(address)?;
        self.removals += 1;
        self.unlink(slot);
        let hash = self.hasher.hash_one(address);
        if let Ok(entry) = self.by_address.find_entry(hash, |&other| other == slot) {
            entry.remove();
        }
        let last = Slot::try_from(self.leases.len() - 1).unwrap_or(Slot::MAX);
        if slot != last {
            let moved = &self.leases[last as usize];
            let address_hash = self.hasher.hash_one(moved.address);
            let uid_hash = moved.uid().map(|uid| self.hasher.hash_one(uid));
            let hardware_hash = moved
                .hardware
                .as_ref()
                .map(|hardware| self.hasher.hash_one(hardware));
            if let Some(entry) = self.by_address.find_mut(address_hash, |&s| s == last) {
                *entry = slot;
            }
            for (table, hash) in [
                (&mut self.by_client_id, uid_hash),
                (&mut self.by_hardware, hardware_hash),
            ] {
                if let Some(entry) = hash.and_then(|hash| table.find_mut(hash, |&(s, _)| s == last))
                {
                    entry.0 = slot;
                }
            }
        }
        Some(self.leases.swap_remove(slot as usize))
    }

    /// Every lease of `file`, later ones winning (the reader already keeps one per address).
    pub fn load(&mut self, file: LeaseFile) {
        self.reserve(file.leases.len());
        for lease in file.leases {
            self.put(lease);
        }
    }

    /// Streams a lease file from disk into the store (leases only) and returns the other
    /// records, the errors and the torn-tail flag in a [`LeaseFile`] with no leases.
    pub fn load_path(&mut self, path: &Path) -> std::io::Result<LeaseFile> {
        // Size the arena and the indices once, from the file size, instead of rehashing them
        // through every doubling while loading (a lease block is 200-350 bytes; capacity that is
        // never written costs no resident memory).
        if let Ok(metadata) = std::fs::metadata(path) {
            self.reserve(
                usize::try_from(metadata.len() / 200)
                    .unwrap_or(0)
                    .min(1 << 26),
            );
        }
        crate::lease::file::read_leases_into(path, |lease| {
            self.put(lease);
        })
    }

    /// Stores `lease` in its slot (a new one for a new address) and re-links it.
    fn put(&mut self, mut lease: Lease) -> Slot {
        crate::lease::billing::settle(&mut lease);
        match self.slot(lease.address) {
            Some(slot) => {
                self.unlink(slot);
                self.leases[slot as usize] = lease;
                self.link(slot);
                slot
            }
            None => {
                let slot = Slot::try_from(self.leases.len()).unwrap_or(Slot::MAX);
                let hash = self.hasher.hash_one(lease.address);
                self.leases.push(lease);
                let (hasher, leases) = (&self.hasher, &self.leases);
                self.by_address.insert_unique(hash, slot, |&slot| {
                    hasher.hash_one(leases[slot as usize].address)
                });
                self.link(slot);
                slot
            }
        }
    }

    /// Removes `slot` from the client indices (where they point at it) and the queues, before
    /// its lease changes.
    fn unlink(&mut self, slot: Slot) {
        self.count_billing(slot, -1);
        let lease = &self.leases[slot as usize];
        if let Some(uid) = lease.uid() {
            if let Ok(entry) = self
                .by_client_id
                .find_entry(self.hasher.hash_one(uid), |&(other, _)| other == slot)
            {
                entry.remove();
            }
        }
        if let Some(hardware) = &lease.hardware {
            if let Ok(entry) = self
                .by_hardware
                .find_entry(self.hasher.hash_one(hardware), |&(other, _)| other == slot)
            {
                entry.remove();
            }
        }
        let address = u32::from(lease.address);
        if expires(lease) {
            self.expiry.remove(&(lease.ends, address));
        }
        let (state, ends, reserved) = (lease.binding_state, lease.ends, is_reserved(lease));
        if let Some(pool) = self
            .pool_of(Ipv4Addr::from(address))
            .and_then(|pool| self.pool_state_mut(pool))
        {
            pool.stored = pool.stored.saturating_sub(1);
            let count = &mut pool.counts[state as usize];
            *count = count.saturating_sub(1);
            if let Some(queue) = queue_of_reserved(state, reserved, pool.failover) {
                pool.queue_mut(queue).remove(&(ends, address));
            }
        }
    }

    /// Points the client indices at `slot` (the most recent binding wins) and queues it.
    fn link(&mut self, slot: Slot) {
        self.count_billing(slot, 1);
        self.link_sequence += 1;
        let sequence = self.link_sequence;
        let (hasher, leases) = (&self.hasher, &self.leases);
        let lease = &leases[slot as usize];
        // One entry per lease (`unlink` removed this slot's): a client's older leases keep
        // theirs, as ISC's hash chains keep every lease of a client.
        if let Some(uid) = lease.uid() {
            self.by_client_id.insert_unique(
                hasher.hash_one(uid),
                (slot, sequence),
                |&(other, _)| hasher.hash_one(leases[other as usize].uid().unwrap_or_default()),
            );
        }
        if let Some(hardware) = &lease.hardware {
            self.by_hardware.insert_unique(
                hasher.hash_one(hardware),
                (slot, sequence),
                |&(other, _)| hasher.hash_one(leases[other as usize].hardware.unwrap_or_default()),
            );
        }
        let address = u32::from(lease.address);
        let (state, ends, reserved) = (lease.binding_state, lease.ends, is_reserved(lease));
        if expires(lease) {
            self.expiry.insert((ends, address));
        }
        if let Some(pool) = self
            .pool_of(Ipv4Addr::from(address))
            .and_then(|pool| self.pool_state_mut(pool))
        {
            pool.stored += 1;
            pool.counts[state as usize] += 1;
            if let Some(queue) = queue_of_reserved(state, reserved, pool.failover) {
                pool.queue_mut(queue).insert((ends, address));
            }
        }
    }

    /// Moves every ACTIVE lease whose end has passed to its next binding state, and every
    /// ABANDONED lease whose `abandon-lease-time` has passed to FREE (ISC `pool_timer` and
    /// `make_binding_state_transition`: abandoned → free); returns the changed leases so that
    /// the caller can persist them. Offers past their time are dropped; an offered address that
    /// was never bound goes to its pool's free queue.
    pub fn expire(&mut self, now: UnixTime) -> Vec<Lease> {
        self.expire_with(now, |lease| Some(lease.next_binding_state))
    }

    /// [`LeaseStore::expire`] with the caller choosing each lease's new state: `next(lease)`
    /// returns the state to move to, or `None` to leave the lease ACTIVE for now (a failover
    /// secondary in NORMAL leaves expiry to the primary, docs/spec/failover.md §8.3). A next state of
    /// ACTIVE means FREE, and so does ABANDONED for an abandoned lease (lease files that do not
    /// say `next binding state free` for it). Leases left as they are are looked at again on
    /// every call until they change, so the cost is O(due leases).
    pub fn expire_with(
        &mut self,
        now: UnixTime,
        mut next: impl FnMut(&Lease) -> Option<BindingState>,
    ) -> Vec<Lease> {
        let mut changed = Vec::new();
        let due: Vec<(UnixTime, u32)> = self.expiry.range(..=(now, u32::MAX)).copied().collect();
        for (ends, address) in due {
            let slot = self.slot(Ipv4Addr::from(address));
            let Some(slot) = slot.filter(|&slot| {
                let lease = &self.leases[slot as usize];
                expires(lease) && lease.ends == ends
            }) else {
                // Not a current entry (cannot happen while link/unlink pair up).
                self.expiry.remove(&(ends, address));
                continue;
            };
            let Some(state) = next(&self.leases[slot as usize]) else {
                continue;
            };
            let mut lease = self.leases[slot as usize].clone();
            lease.binding_state = match (lease.binding_state, state) {
                (_, BindingState::Active) | (BindingState::Abandoned, BindingState::Abandoned) => {
                    BindingState::Free
                }
                (_, next) => next,
            };
            lease.next_binding_state = lease.binding_state;
            crate::lease::billing::settle(&mut lease);
            self.unlink(slot);
            self.leases[slot as usize] = lease.clone();
            self.link(slot);
            changed.push(lease);
        }
        while let Some(&(until, address)) = self.offer_expiry.first() {
            if until > now {
                break;
            }
            self.offer_expiry.remove(&(until, address));
            let address = Ipv4Addr::from(address);
            if self
                .offers
                .get(&address)
                .is_some_and(|offer| offer.until == until)
            {
                self.drop_offer(address);
                // The cursor has passed it: keep it allocatable.
                if self.slot(address).is_none() && self.pool_of(address).is_some() {
                    self.put(Lease::free(address));
                }
            }
        }
        changed
    }

    /// Every lease, in the order first stored.
    pub fn iter(&self) -> impl Iterator<Item = &Lease> + '_ {
        self.leases.iter()
    }

    /// The leases of the arena's slots `range` (clamped to the arena).
    pub fn slots(&self, range: std::ops::Range<usize>) -> &[Lease] {
        let end = range.end.min(self.leases.len());
        self.leases
            .get(range.start.min(end)..end)
            .unwrap_or_default()
    }

    /// How many leases this store ever removed from its arena (each moved another lease to a
    /// new slot): a copy made across several lock holds starts over when it changes.
    pub fn removals(&self) -> u64 {
        self.removals
    }

    /// Memory the store holds, from sizes and capacities (heap blocks rounded as glibc does).
    pub fn memory(&self) -> MemoryUsage {
        let arena = self.leases.capacity() * std::mem::size_of::<Lease>();
        let lease_heap = self
            .leases
            .iter()
            .map(|lease| {
                let uid = match lease.identity_len() {
                    0 => 0,
                    length => malloc_size(length),
                };
                let extra = lease.extra.as_deref().map_or(0, |extra| {
                    malloc_size(std::mem::size_of::<LeaseExtra>())
                        + malloc_size(extra.variables.capacity() * 48)
                        + extra
                            .variables
                            .iter()
                            .map(|(name, value)| {
                                malloc_size(name.capacity()) + malloc_size(value.capacity())
                            })
                            .sum::<usize>()
                        + malloc_size(extra.agent_options.capacity() * 32)
                        + extra
                            .agent_options
                            .iter()
                            .map(|(_, bytes)| malloc_size(bytes.capacity()))
                            .sum::<usize>()
                        + malloc_size(extra.verbatim.capacity() * 24)
                        + extra
                            .verbatim
                            .iter()
                            .map(|text| malloc_size(text.capacity()))
                            .sum::<usize>()
                        + extra.billing.as_ref().map_or(0, |billing| {
                            malloc_size(billing.class.len())
                                + billing
                                    .subclass
                                    .as_ref()
                                    .map_or(0, |data| malloc_size(data.len()))
                        })
                });
                uid + extra
            })
            .sum();
        let indices = self.by_address.allocation_size()
            + self.by_client_id.allocation_size()
            + self.by_hardware.allocation_size();
        let queues = btree_size(self.expiry.len())
            + self
                .pools
                .iter()
                .map(|pool| {
                    btree_size(pool.free.len())
                        + btree_size(pool.backup.len())
                        + btree_size(pool.reclaim.len())
                        + btree_size(pool.abandoned.len())
                })
                .sum::<usize>()
            + btree_size(self.offer_expiry.len())
            + self.offers.capacity() * 48;
        MemoryUsage {
            arena,
            lease_heap,
            indices,
            queues,
            total: arena + lease_heap + indices + queues,
        }
    }
}

/// True when `lease` is bound to `client` by the shared key rule.
pub fn lease_belongs_to(lease: &Lease, client: &ClientKey) -> bool {
    match client {
        ClientKey::ClientId(id) => lease.uid() == Some(&**id),
        ClientKey::Hardware(hardware) => {
            lease.uid().is_none() && lease.hardware.as_ref() == Some(hardware)
        }
    }
}

mod billing;
mod offers;
mod threshold;
pub use threshold::ThresholdCrossing;

#[cfg(test)]
mod tests;
