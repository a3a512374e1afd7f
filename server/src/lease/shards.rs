//! The lease store split by shared network, so that workers serving different networks do not
//! wait for one lock (issue 9 §4, DESIGN.md "Scaling the store").
//!
//! A [`ShardedStore`] is N [`LeaseStore`]s, each behind its own mutex. Every pool — and so every
//! address of it — belongs to the shard of its shared network; a lease outside every pool goes by
//! the shared network of its subnet, else to shard 0 ([`ShardLayout::of_address`]). A request is
//! decided against one shard: the engine names the shared network whose leases it will consult
//! (`Engine::store_network`) before anything is locked, and the engine itself still sees one
//! `&mut LeaseStore`.
//!
//! Locking rules:
//! - a thread holds at most one shard at a time, except a reload, which takes every shard in
//!   index order (it moves leases between shards);
//! - the layout (which shard an address is in) changes only while every shard is held, so a
//!   shard locked after reading the layout is the right one if the layout is still the same
//!   once the lock is held ([`ShardedStore::lock_address`] checks and retries);
//! - whatever needs every lease (the lease-file rewrite, expiry, metrics, OMAPI lookups by
//!   client) visits the shards one after the other.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use crossbeam_utils::CachePadded;

use crate::config::model::{Config, PoolId, SharedNetworkId};
use crate::lease::billing::BillingTotals;
use crate::lease::file::LeaseFile;
use crate::lease::record::Lease;
use crate::lease::store::LeaseStore;

/// More shards than this buy nothing: a shard is a lock, and the workers of a 256-core machine
/// rarely hit the same one at once with this many.
pub const MAX_SHARDS: usize = 256;

/// The number of shards for a config served by `workers` threads: one per shared network that
/// has pools, but not more than 4 per worker (beyond that two workers seldom meet anyway), at
/// least one, at most [`MAX_SHARDS`]; one with `one-lease-per-client`. Fixed for the life of
/// the process: a reload that adds shared networks maps them onto the same shards.
pub fn shard_count(config: &Config, workers: usize) -> usize {
    // A client's other leases must all be in the store a worker holds.
    if config.releases_other_leases() {
        return 1;
    }
    let networks = config
        .shared_networks
        .iter()
        .filter(|network| !network.pools.is_empty())
        .count();
    networks.min(workers.saturating_mul(4)).clamp(1, MAX_SHARDS)
}

/// Which shard each shared network's leases live in, for one config.
#[derive(Debug)]
pub struct ShardLayout {
    config: Arc<Config>,
    /// By shared network index.
    network_shard: Vec<u32>,
    count: usize,
}

impl ShardLayout {
    /// Shared networks with pools take the shards in turn, in config order; a network without
    /// pools (it holds no dynamic lease, only what its requests read) goes by its index.
    pub fn new(config: Arc<Config>, count: usize) -> Self {
        let count = count.clamp(1, MAX_SHARDS);
        let mut next = 0;
        let network_shard = config
            .shared_networks
            .iter()
            .enumerate()
            .map(|(index, network)| {
                let shard = if network.pools.is_empty() {
                    index % count
                } else {
                    next += 1;
                    (next - 1) % count
                };
                shard as u32
            })
            .collect();
        Self {
            config,
            network_shard,
            count,
        }
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// The shard of `network`'s leases; shard 0 for none.
    pub fn of_network(&self, network: Option<SharedNetworkId>) -> usize {
        network
            .and_then(|network| self.network_shard.get(network.0 as usize))
            .map_or(0, |&shard| shard as usize)
    }

    /// The shard holding the lease of `address`: its pool's shared network, else its subnet's,
    /// else shard 0 (one binary search of the config's address map).
    pub fn of_address(&self, address: Ipv4Addr) -> usize {
        self.of_network(self.config.addresses().shared_network_of(address))
    }

    /// The shard holding `pool`.
    pub fn of_pool(&self, pool: PoolId) -> usize {
        self.of_network(
            self.config
                .pools
                .get(pool.0 as usize)
                .map(|pool| pool.shared_network),
        )
    }
}

/// A shard's lock was poisoned (a thread panicked while holding it).
#[derive(Debug, thiserror::Error)]
#[error("the lease store is unusable (a thread panicked while holding it)")]
pub struct Poisoned;

/// One locked shard. When it is let go, the shard's billing changes (`lease::billing`) are
/// added to the store's totals, so that no other shard counts against a stale class total
/// for longer than this shard was held.
pub struct ShardGuard<'a> {
    store: MutexGuard<'a, LeaseStore>,
    billing: &'a Mutex<BillingTotals>,
}

impl std::ops::Deref for ShardGuard<'_> {
    type Target = LeaseStore;

    fn deref(&self) -> &LeaseStore {
        &self.store
    }
}

impl std::ops::DerefMut for ShardGuard<'_> {
    fn deref_mut(&mut self) -> &mut LeaseStore {
        &mut self.store
    }
}

impl Drop for ShardGuard<'_> {
    fn drop(&mut self) {
        if self.store.has_billing_deltas() {
            report_billing(self.billing, &mut self.store);
        }
    }
}

/// Adds what `store` changed in billing to `totals` (lock order: shard, then totals).
fn report_billing(totals: &Mutex<BillingTotals>, store: &mut LeaseStore) {
    // Plain counts: a panic elsewhere mid-update leaves them usable.
    totals
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .add(store.take_billing_deltas());
}

/// The lease store in shards (module doc).
pub struct ShardedStore {
    /// Each lock on its own cache lines: workers spinning on neighbouring shards would
    /// otherwise bounce one line between their cores.
    shards: Box<[CachePadded<Mutex<LeaseStore>>]>,
    layout: arc_swap::ArcSwap<ShardLayout>,
    /// Leases billed to each class in all shards, as the shards reported them when they were
    /// let go ([`ShardGuard`]). A worker deciding requests of a config with `lease limit`s
    /// holds it with its shard ([`ShardedStore::billing`]) and reports its shard's changes
    /// before letting it go, so a class total never lacks a lease billed in another shard;
    /// other holders only unbill, so their late report can only refuse a lease early, for as
    /// long as they hold their shard.
    billing: Mutex<BillingTotals>,
}

impl std::fmt::Debug for ShardedStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ShardedStore")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl ShardedStore {
    /// `count` empty shards for `config`.
    pub fn new(config: Arc<Config>, count: usize) -> Self {
        let layout = ShardLayout::new(config, count);
        let shards = (0..layout.count)
            .map(|index| {
                CachePadded::new(Mutex::new(LeaseStore::with_pools(&layout.config, |pool| {
                    layout.of_pool(pool) == index
                })))
            })
            .collect();
        Self {
            shards,
            layout: arc_swap::ArcSwap::from_pointee(layout),
            billing: Mutex::default(),
        }
    }

    /// The billing totals, for a worker to hold while it decides requests under a shard it
    /// holds (taken after the shard, never before one). Hand the shard's changes over with
    /// [`ShardedStore::report_billing`] before letting the totals go.
    pub fn billing(&self) -> MutexGuard<'_, BillingTotals> {
        self.billing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds the billing changes of `store` (a held shard) to `totals` (held too).
    pub fn report_billing(totals: &mut BillingTotals, store: &mut LeaseStore) {
        totals.add(store.take_billing_deltas());
    }

    /// `count` shards holding what `store` holds (its leases and pending offers), each in its
    /// shard.
    pub fn from_store(config: Arc<Config>, count: usize, mut store: LeaseStore) -> Self {
        let sharded = Self::new(config, count);
        let layout = sharded.layout();
        for address in store.addresses_where(|_| true) {
            let (lease, offer) = store.take(address);
            if let Ok(mut shard) = sharded.lock(layout.of_address(address)) {
                shard.adopt(lease, offer);
            }
        }
        sharded
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The layout in force. Which shard an address or network is in may change only while
    /// every shard is held: check with [`ShardedStore::is_current`] once a shard is locked.
    pub fn layout(&self) -> Arc<ShardLayout> {
        self.layout.load_full()
    }

    /// True while `layout` is the one in force.
    pub fn is_current(&self, layout: &Arc<ShardLayout>) -> bool {
        Arc::ptr_eq(&self.layout.load(), layout)
    }

    /// Locks shard `index` (taken modulo the shard count).
    pub fn lock(&self, index: usize) -> Result<ShardGuard<'_>, Poisoned> {
        let store = self.shards[index % self.shards.len()]
            .lock()
            .map_err(|_| Poisoned)?;
        Ok(ShardGuard {
            store,
            billing: &self.billing,
        })
    }

    /// Locks the shard holding `address` under the layout in force.
    pub fn lock_address(&self, address: Ipv4Addr) -> Result<ShardGuard<'_>, Poisoned> {
        loop {
            let layout = self.layout();
            let guard = self.lock(layout.of_address(address))?;
            if self.is_current(&layout) {
                return Ok(guard);
            }
        }
    }

    /// Locks the shard holding `pool` under the layout in force.
    pub fn lock_pool(&self, pool: PoolId) -> Result<ShardGuard<'_>, Poisoned> {
        loop {
            let layout = self.layout();
            let guard = self.lock(layout.of_pool(pool))?;
            if self.is_current(&layout) {
                return Ok(guard);
            }
        }
    }

    /// Runs `visit` on every shard in turn, each locked only for its own call.
    pub fn for_each(&self, mut visit: impl FnMut(usize, &mut LeaseStore)) -> Result<(), Poisoned> {
        for index in 0..self.shards.len() {
            let mut shard = self.lock(index)?;
            visit(index, &mut shard);
        }
        Ok(())
    }

    /// Number of leases in all shards (each counted under its own lock).
    pub fn len(&self) -> usize {
        let mut total = 0;
        let _ = self.for_each(|_, shard| total += shard.len());
        total
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of every lease (the lease-file rewrite), a few thousand leases per lock hold: a
    /// million-lease shard copied under one hold stalled every request of that shard for
    /// hundreds of milliseconds (issue 14: no stall while the lease file is rewritten).
    ///
    /// Between two holds the shard may change. A lease changed in place or added is copied as
    /// it is then or not at all; either way its record, submitted after the change, reaches
    /// the new file after the copy ([`crate::lease::commit`]: the compaction's tail). A lease
    /// removed moves the arena's last lease into its slot, which could hide that lease from the
    /// copy: the copy starts over when the shard removed a lease (only a reload's move between
    /// shards does) or when a reload moved leases between shards meanwhile.
    pub fn leases(&self) -> Result<Vec<Lease>, Poisoned> {
        /// Leases copied per lock hold: about a millisecond of cloning.
        const PER_HOLD: usize = 4096;
        loop {
            let layout = self.layout();
            let mut leases = Vec::new();
            let mut stale = false;
            'shards: for index in 0..self.shards.len() {
                let mut next = 0;
                let mut removals = None;
                loop {
                    let shard = self.lock(index)?;
                    let unchanged = *removals.get_or_insert(shard.removals()) == shard.removals();
                    if !self.is_current(&layout) || !unchanged {
                        stale = true;
                        break 'shards;
                    }
                    let end = (next + PER_HOLD).min(shard.len());
                    leases.reserve(end.saturating_sub(next));
                    leases.extend(shard.slots(next..end).iter().cloned());
                    next = end;
                    if next >= shard.len() {
                        break;
                    }
                }
            }
            if !stale {
                return Ok(leases);
            }
        }
    }

    /// Streams a lease file into the shards, each lease into its own; returns the records that
    /// are not leases, the errors and the torn-tail flag (see [`LeaseStore::load_path`]).
    pub fn load_path(&self, path: &Path) -> std::io::Result<LeaseFile> {
        let file = self.read_path(path)?;
        self.bill_loaded_leases();
        Ok(file)
    }

    /// Loads lease records held in memory (the PostgreSQL backend's rows, `lease::pg`) into
    /// the shards, as [`ShardedStore::load_path`] loads a file.
    pub fn load_bytes(&self, bytes: &[u8]) -> LeaseFile {
        let mut file = crate::lease::file::parse(bytes, "lease database");
        self.upsert_each(std::mem::take(&mut file.leases));
        self.bill_loaded_leases();
        file
    }

    /// [`LeaseStore::spread_never_used`] in every shard.
    pub fn spread_never_used(&self, seed: u64) -> Result<(), Poisoned> {
        self.for_each(|_, shard| shard.spread_never_used(seed))
    }

    /// Puts leases another writer made (the other servers of a PostgreSQL lease database,
    /// `lease::pg`) into their shards, one shard held at a time.
    pub fn upsert_each(&self, leases: Vec<Lease>) {
        let layout = self.layout();
        for lease in leases {
            if let Ok(mut shard) = self.lock(layout.of_address(lease.address)) {
                shard.upsert(lease);
            }
        }
    }

    /// ISC `lease_instantiate` bills each lease of the file to its `billing` class with
    /// `bill_class`, which fails for a class not declared (any more), a limit of 0 and a
    /// class already full: those leases are not billed (their `billing` line is dropped).
    /// One pass over the leases, shard by shard, at start-up.
    fn bill_loaded_leases(&self) {
        let config = self.layout().config().clone();
        if !config.billing_classes {
            // No class has a limit: no lease is billed (ISC's `bill_class` fails at 0).
            let _ = self.for_each(|_, shard| shard.settle_billing(|_| false));
            return;
        }
        let mut counts: std::collections::HashMap<crate::lease::billing::Billing, u32> =
            std::collections::HashMap::new();
        let _ = self.for_each(|_, shard| {
            shard.settle_billing(|billing| {
                let limit = crate::lease::billing::limit_of(&config, billing).unwrap_or(0);
                let count = counts.entry(billing.clone()).or_insert(0);
                if *count < limit {
                    *count += 1;
                    true
                } else {
                    false
                }
            })
        });
    }

    fn read_path(&self, path: &Path) -> std::io::Result<LeaseFile> {
        if self.shards.len() == 1 {
            // One shard: the store's own loader, which sizes the arena from the file first.
            return match self.lock(0) {
                Ok(mut store) => store.load_path(path),
                Err(error) => Err(std::io::Error::other(error)),
            };
        }
        let layout = self.layout();
        crate::lease::file::read_leases_into(path, |lease| {
            if let Ok(mut shard) = self.lock(layout.of_address(lease.address)) {
                shard.upsert(lease);
            }
        })
    }

    /// A reload (SIGHUP): every shard is taken, in index order; the leases and pending offers
    /// whose shard the new `config` changes move to it, every shard rebuilds its pools from the
    /// new config ([`LeaseStore::reconfigure_with`]), the new layout is put in force, and
    /// `while_held` runs (the engine swap: no decision may run half under each config) before
    /// the shards are let go. No lease is lost. Returns the number of leases held.
    pub fn reconfigure(
        &self,
        config: Arc<Config>,
        while_held: impl FnOnce(),
    ) -> Result<usize, Poisoned> {
        let mut shards = Vec::with_capacity(self.shards.len());
        for index in 0..self.shards.len() {
            shards.push(self.lock(index)?);
        }
        let layout = ShardLayout::new(config.clone(), self.shards.len());
        let mut moving = Vec::new();
        for (index, shard) in shards.iter_mut().enumerate() {
            for address in shard.addresses_where(|address| layout.of_address(address) != index) {
                let (lease, offer) = shard.take(address);
                moving.push((layout.of_address(address), lease, offer));
            }
            shard.reconfigure_with(&config, |pool| layout.of_pool(pool) == index);
        }
        for (target, lease, offer) in moving {
            shards[target].adopt(lease, offer);
        }
        self.layout.store(Arc::new(layout));
        // The moves unbilled in one shard and billed in another: report both before any shard
        // is let go, so no worker sees the leases that moved counted nowhere.
        {
            let mut totals = self.billing();
            for shard in &mut shards {
                Self::report_billing(&mut totals, shard);
            }
        }
        while_held();
        Ok(shards.iter().map(|shard| shard.len()).sum())
    }
}

#[cfg(test)]
#[path = "shards_tests.rs"]
mod tests;

/// DHCPLEASEQUERY's lookups over every shard (`engine::LeaseLookup`), each shard locked only
/// for its own part: the caller holds none. A query by client identifier or hardware address
/// is one index lookup per shard (the client indices keep every lease of a client, as RFC 4388
/// §6.4.2 wants them all).
impl crate::engine::LeaseLookup for ShardedStore {
    fn by_address(&self, address: Ipv4Addr) -> Option<Lease> {
        self.lock_address(address).ok()?.get(address).cloned()
    }

    fn by_client_id(&self, client_id: &[u8]) -> Vec<Lease> {
        let mut found = Vec::new();
        let _ = self.for_each(|_, shard| {
            found.extend(crate::engine::LeaseLookup::by_client_id(&*shard, client_id))
        });
        found.sort_by_key(|lease| lease.address);
        found
    }

    fn by_hardware(&self, hardware: &crate::lease::record::Hardware) -> Vec<Lease> {
        let mut found = Vec::new();
        let _ = self.for_each(|_, shard| {
            found.extend(crate::engine::LeaseLookup::by_hardware(&*shard, hardware))
        });
        found.sort_by_key(|lease| lease.address);
        found
    }

    fn each_active(&self, now: crate::lease::record::UnixTime, visit: &mut dyn FnMut(&Lease)) {
        let _ =
            self.for_each(|_, shard| crate::engine::LeaseLookup::each_active(&*shard, now, visit));
    }
}
