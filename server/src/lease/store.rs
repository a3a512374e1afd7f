//! The in-memory lease store: every known lease with indices by address, hardware address and
//! client identifier, plus per-pool free-address allocation. Pure data structure: time comes in
//! as an argument; durability is the job of `lease::log`.
//!
//! Layout, for ≤ 200 bytes per lease at 1 M leases: the leases live in one `Vec` arena and never
//! move or leave it; the three indices are `HashTable<u32>`s of arena slots that hash through the
//! arena (4 bytes + 1 control byte per bucket, no key copies). Allocation takes never-used
//! addresses from a per-pool cursor and reused ones from a per-pool free queue ordered by end
//! time; expiry pops an ordered queue of active leases. No operation scans all leases.

use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::net::Ipv4Addr;
use std::path::Path;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::config::model::{Config, PoolId};
use crate::lease::file::{
    Collector, FailoverStateRecord, GroupRecord, HostRecord, LeaseFile, RecordSink,
};
use crate::lease::record::{BindingState, Hardware, Lease, LeaseExtra, UnixTime, NEVER};

/// Who a client is, by the rule ISC and the XDP fast path share: the client identifier (option
/// 61) when the client sent one, else its hardware address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientKey {
    ClientId(Box<[u8]>),
    Hardware(Hardware),
}

/// One pool: its ranges, how far allocation has walked through never-used addresses, and its
/// reusable leases.
#[derive(Clone, Debug, Default)]
struct PoolState {
    /// Inclusive ranges as `u32`.
    ranges: Vec<(u32, u32)>,
    /// Next never-touched candidate: (range index, offset in the range).
    cursor: (usize, u64),
    /// Free, expired and released leases of the pool by (end, address): the one free the
    /// longest comes first, as in ISC's free queue.
    free: BTreeSet<(UnixTime, u32)>,
    /// Addresses in the ranges (for [`LeaseStore::available_count`]).
    size: u64,
    /// Addresses of the ranges that have a lease record (any state).
    stored: u64,
    /// Pending offers of addresses that were reusable when offered.
    offered: u64,
}

/// An address offered to a client but not yet requested (not persisted; RFC 2131 §4.3.1 lets
/// the server reserve it briefly so that two clients are not offered the same address).
#[derive(Clone, Debug)]
struct Offer {
    client: ClientKey,
    until: UnixTime,
    /// The pool whose `offered` count this offer holds (a reusable address was offered).
    counted_in: Option<PoolId>,
}

/// Slot of a lease in the arena.
type Slot = u32;

/// All leases.
#[derive(Default)]
pub struct LeaseStore {
    leases: Vec<Lease>,
    by_address: HashTable<Slot>,
    by_client_id: HashTable<Slot>,
    by_hardware: HashTable<Slot>,
    hasher: DefaultHashBuilder,
    pools: Vec<PoolState>,
    /// (low, high, pool index) of every range, sorted by `low`, to find an address's pool.
    ranges: Vec<(u32, u32, u32)>,
    /// ACTIVE leases with a finite end, by (end, address).
    expiry: BTreeSet<(UnixTime, u32)>,
    offers: HashMap<Ipv4Addr, Offer>,
    /// (until, address) of every offer made; stale entries are skipped when popped.
    offer_expiry: BTreeSet<(UnixTime, u32)>,
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

/// True for the states a lease can be allocated from.
fn is_reusable(state: BindingState) -> bool {
    matches!(
        state,
        BindingState::Free | BindingState::Expired | BindingState::Released
    )
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
        let mut store = Self::default();
        for (index, pool) in config.pools.iter().enumerate() {
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
                size,
                ..PoolState::default()
            });
        }
        store.ranges.sort_unstable();
        store
    }

    pub fn len(&self) -> usize {
        self.leases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// Room for `additional` more leases without re-allocating (before a bulk load).
    pub fn reserve(&mut self, additional: usize) {
        self.leases.reserve_exact(additional);
        let (hasher, leases) = (&self.hasher, &self.leases);
        self.by_address.reserve(additional, |&slot| {
            hasher.hash_one(leases[slot as usize].address)
        });
        self.by_client_id.reserve(additional, |&slot| {
            hasher.hash_one(leases[slot as usize].uid().unwrap_or_default())
        });
        self.by_hardware.reserve(additional, |&slot| {
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
        let leases = &self.leases;
        self.by_client_id
            .find(self.hasher.hash_one(client_id), |&slot| {
                leases[slot as usize].uid() == Some(client_id)
            })
            .map(|&slot| &leases[slot as usize])
    }

    /// The lease most recently bound to this hardware address.
    pub fn find_by_hardware(&self, hardware: &Hardware) -> Option<&Lease> {
        let leases = &self.leases;
        self.by_hardware
            .find(self.hasher.hash_one(hardware), |&slot| {
                leases[slot as usize].hardware.as_ref() == Some(hardware)
            })
            .map(|&slot| &leases[slot as usize])
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
        self.pools
            .get(pool.0 as usize)
            .map_or(0, |pool| pool.free.len())
    }

    /// Addresses of `pool` a new client could be given: never-used ones plus reusable leases,
    /// less pending offers of reusable addresses (the starvation defence's measure of how full
    /// a pool is; `engine::starvation`).
    pub fn available_count(&self, pool: PoolId) -> u64 {
        self.pools.get(pool.0 as usize).map_or(0, |pool| {
            (pool.size.saturating_sub(pool.stored) + pool.free.len() as u64)
                .saturating_sub(pool.offered)
        })
    }

    /// Addresses in the ranges of `pool`.
    pub fn pool_size(&self, pool: PoolId) -> u64 {
        self.pools.get(pool.0 as usize).map_or(0, |pool| pool.size)
    }

    /// Forgets the offer of `address`, releasing its count.
    fn drop_offer(&mut self, address: Ipv4Addr) {
        if let Some(offer) = self.offers.remove(&address) {
            if let Some(pool) = offer
                .counted_in
                .and_then(|pool| self.pools.get_mut(pool.0 as usize))
            {
                pool.offered = pool.offered.saturating_sub(1);
            }
        }
    }

    /// Inserts or replaces the lease for `lease.address` and updates the indices.
    pub fn upsert(&mut self, lease: Lease) {
        self.drop_offer(lease.address);
        self.put(lease);
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
        struct Sink<'a> {
            store: &'a mut LeaseStore,
            rest: Collector,
        }
        impl RecordSink for Sink<'_> {
            fn lease(&mut self, lease: Lease) {
                self.store.put(lease);
            }
            fn failover_state(&mut self, record: FailoverStateRecord) {
                self.rest.failover_state(record);
            }
            fn host(&mut self, record: HostRecord) {
                self.rest.host(record);
            }
            fn group(&mut self, record: GroupRecord) {
                self.rest.group(record);
            }
            fn server_duid(&mut self, duid: Vec<u8>) {
                self.rest.server_duid(duid);
            }
        }
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
        let mut sink = Sink {
            store: self,
            rest: Collector::default(),
        };
        let summary = crate::lease::file::read_path(path, &mut sink)?;
        let mut file = sink.rest.finish();
        file.errors = summary.errors;
        file.torn_tail = summary.torn_tail;
        Ok(file)
    }

    /// Stores `lease` in its slot (a new one for a new address) and re-links it.
    fn put(&mut self, lease: Lease) -> Slot {
        match self.slot(lease.address) {
            Some(slot) => {
                self.unlink(slot);
                self.leases[slot as usize] = lease;
                self.link(slot);
                slot
            }
            None => {
                let slot = Slot::try_from(self.leases.len()).unwrap_or(Slot::MAX);
                if let Some(pool) = self.pool_of(lease.address) {
                    self.pools[pool.0 as usize].stored += 1;
                }
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
        let lease = &self.leases[slot as usize];
        if let Some(uid) = lease.uid() {
            if let Ok(entry) = self
                .by_client_id
                .find_entry(self.hasher.hash_one(uid), |&other| other == slot)
            {
                entry.remove();
            }
        }
        if let Some(hardware) = &lease.hardware {
            if let Ok(entry) = self
                .by_hardware
                .find_entry(self.hasher.hash_one(hardware), |&other| other == slot)
            {
                entry.remove();
            }
        }
        let address = u32::from(lease.address);
        if lease.binding_state == BindingState::Active && lease.ends != NEVER {
            self.expiry.remove(&(lease.ends, address));
        }
        if is_reusable(lease.binding_state) {
            if let Some(pool) = self.pool_of(lease.address) {
                self.pools[pool.0 as usize]
                    .free
                    .remove(&(lease.ends, address));
            }
        }
    }

    /// Points the client indices at `slot` (the most recent binding wins) and queues it.
    fn link(&mut self, slot: Slot) {
        let (hasher, leases) = (&self.hasher, &self.leases);
        let lease = &leases[slot as usize];
        if let Some(uid) = lease.uid() {
            let hash = hasher.hash_one(uid);
            match self
                .by_client_id
                .find_mut(hash, |&other| leases[other as usize].uid() == Some(uid))
            {
                Some(existing) => *existing = slot,
                None => {
                    self.by_client_id.insert_unique(hash, slot, |&other| {
                        hasher.hash_one(leases[other as usize].uid().unwrap_or_default())
                    });
                }
            }
        }
        if let Some(hardware) = &lease.hardware {
            let hash = hasher.hash_one(hardware);
            match self.by_hardware.find_mut(hash, |&other| {
                leases[other as usize].hardware.as_ref() == Some(hardware)
            }) {
                Some(existing) => *existing = slot,
                None => {
                    self.by_hardware.insert_unique(hash, slot, |&other| {
                        hasher.hash_one(leases[other as usize].hardware.unwrap_or_default())
                    });
                }
            }
        }
        let address = u32::from(lease.address);
        let (state, ends) = (lease.binding_state, lease.ends);
        if state == BindingState::Active && ends != NEVER {
            self.expiry.insert((ends, address));
        }
        if is_reusable(state) {
            if let Some(pool) = self.pool_of(Ipv4Addr::from(address)) {
                self.pools[pool.0 as usize].free.insert((ends, address));
            }
        }
    }

    /// Remembers that `address` was offered to `client` until `until`.
    pub fn hold_offer(&mut self, address: Ipv4Addr, client: ClientKey, until: UnixTime) {
        self.drop_offer(address);
        let reusable = self
            .get(address)
            .is_none_or(|lease| is_reusable(lease.binding_state));
        let counted_in = self.pool_of(address).filter(|_| reusable);
        if let Some(pool) = counted_in {
            self.pools[pool.0 as usize].offered += 1;
        }
        self.offers.insert(
            address,
            Offer {
                client,
                until,
                counted_in,
            },
        );
        self.offer_expiry.insert((until, u32::from(address)));
    }

    /// True when `address` may be given to `client` at `now`: no other client's binding or
    /// pending offer holds it, and it is not abandoned.
    pub fn is_available(&self, address: Ipv4Addr, client: &ClientKey, now: UnixTime) -> bool {
        if let Some(offer) = self.offers.get(&address) {
            if offer.until > now && &offer.client != client {
                return false;
            }
        }
        match self.get(address) {
            None => true,
            Some(lease) => match lease.binding_state {
                BindingState::Active => !lease.is_active_at(now) || lease_belongs_to(lease, client),
                BindingState::Abandoned | BindingState::Backup | BindingState::Reset => false,
                BindingState::Free | BindingState::Expired | BindingState::Released => true,
            },
        }
    }

    /// A free address of `pool` for `client` at `now`: first a never-used one, then the free
    /// lease that has been free the longest (as ISC's free queue does). `None` when the pool is
    /// exhausted. Amortised O(1) for never-used addresses, O(log n) for reused ones (plus one
    /// step per address another client holds an offer for).
    pub fn allocate(
        &mut self,
        pool: PoolId,
        client: &ClientKey,
        now: UnixTime,
    ) -> Option<Ipv4Addr> {
        let index = pool.0 as usize;
        let state = self.pools.get(index)?;
        // Never-used addresses, walking the cursor; each address is passed once.
        let (mut range_index, mut offset) = state.cursor;
        let mut found = None;
        while let Some(&(low, high)) = self.pools[index].ranges.get(range_index) {
            let span = u64::from(high) - u64::from(low) + 1;
            while offset < span {
                let address = Ipv4Addr::from(low.wrapping_add(offset as u32));
                offset += 1;
                if self.slot(address).is_none() && self.is_available(address, client, now) {
                    found = Some(address);
                    break;
                }
            }
            if found.is_some() {
                break;
            }
            range_index += 1;
            offset = 0;
        }
        self.pools[index].cursor = (range_index, offset);
        if found.is_some() {
            return found;
        }
        // Then the reusable lease free the longest.
        self.pools[index]
            .free
            .iter()
            .map(|&(_, address)| Ipv4Addr::from(address))
            .find(|&address| self.is_available(address, client, now))
    }

    /// Moves every ACTIVE lease whose end has passed to its next binding state; returns the
    /// changed leases so that the caller can persist them. Offers past their time are dropped;
    /// an offered address that was never bound goes to its pool's free queue.
    pub fn expire(&mut self, now: UnixTime) -> Vec<Lease> {
        let mut changed = Vec::new();
        while let Some(&(ends, address)) = self.expiry.first() {
            if ends > now {
                break;
            }
            let slot = self.slot(Ipv4Addr::from(address));
            let Some(slot) = slot.filter(|&slot| {
                let lease = &self.leases[slot as usize];
                lease.binding_state == BindingState::Active && lease.ends == ends
            }) else {
                // Not a current entry (cannot happen while link/unlink pair up; never loop).
                self.expiry.remove(&(ends, address));
                continue;
            };
            let mut lease = self.leases[slot as usize].clone();
            lease.binding_state = match lease.next_binding_state {
                BindingState::Active => BindingState::Free,
                next => next,
            };
            lease.next_binding_state = lease.binding_state;
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
                .map(|pool| btree_size(pool.free.len()))
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

#[cfg(test)]
mod tests;
