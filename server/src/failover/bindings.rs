//! [`Bindings`] over the daemon's [`ShardedStore`]: the machine reads and changes the leases of
//! one relationship's pools in the store itself, and every change is remembered so that the
//! driver writes it to the lease log (group commit) before anything that depends on it goes to the
//! partner (docs/spec/failover.md §7.3 step 10: the lease is written, then the BNDACK is sent).
//!
//! Each address is read and changed in its own shard (`lease::shards`). One shard is held at a
//! time, from the first access to an address of it until an address of another shard is
//! touched or the machine call ends: a BNDUPD's read and write of one lease stay under one hold,
//! and UPDREQALL's walk over every address (sorted, so pool by pool) takes each shard once.

use std::cell::RefCell;
use std::net::Ipv4Addr;

use super::machine::Bindings;
use crate::config::model::Config;
use crate::lease::record::Lease;
use crate::lease::shards::{ShardGuard, ShardedStore};
use crate::lease::store::LeaseStore;

/// The address ranges of the pools that name failover peer `name`, as inclusive `u32` pairs.
pub fn relationship_ranges(config: &Config, name: &str) -> Vec<(u32, u32)> {
    let mut ranges: Vec<(u32, u32)> = config
        .pools
        .iter()
        .filter(|pool| pool.failover_peer.as_deref() == Some(name))
        .flat_map(|pool| {
            pool.ranges
                .iter()
                .map(|range| (u32::from(range.low), u32::from(range.high)))
        })
        .collect();
    ranges.sort_unstable();
    ranges
}

/// The address ranges of each pool of relationship `name` (pool balancing is per pool, §10).
pub fn relationship_pools(config: &Config, name: &str) -> Vec<Vec<(u32, u32)>> {
    config
        .pools
        .iter()
        .filter(|pool| pool.failover_peer.as_deref() == Some(name))
        .map(|pool| {
            pool.ranges
                .iter()
                .map(|range| (u32::from(range.low), u32::from(range.high)))
                .collect()
        })
        .collect()
}

/// One relationship's view of the store for the length of one machine call (module doc: it
/// holds at most one shard at a time, and none once dropped).
pub struct StoreBindings<'a> {
    store: &'a ShardedStore,
    ranges: &'a [(u32, u32)],
    /// The ranges of each pool ([`relationship_pools`]); empty = one pool of `ranges`.
    pools: &'a [Vec<(u32, u32)>],
    /// The shard held now, with its index.
    held: RefCell<Option<(usize, ShardGuard<'a>)>>,
    written: Vec<Lease>,
}

impl<'a> StoreBindings<'a> {
    pub fn new(store: &'a ShardedStore, ranges: &'a [(u32, u32)]) -> Self {
        Self {
            store,
            ranges,
            pools: &[],
            held: RefCell::new(None),
            written: Vec::new(),
        }
    }

    /// The same, balancing pool by pool.
    pub fn with_pools(mut self, pools: &'a [Vec<(u32, u32)>]) -> Self {
        self.pools = pools;
        self
    }

    /// Runs `step` on the shard of `address`, taking it (and letting the one held go) unless
    /// it is held already. `None` when the store is poisoned.
    fn in_shard<T>(&self, address: Ipv4Addr, step: impl FnOnce(&mut LeaseStore) -> T) -> Option<T> {
        let mut held = self.held.borrow_mut();
        // The layout cannot change while a shard is held (`lease::shards`).
        let wanted = self.store.layout().of_address(address);
        if !matches!(&*held, Some((index, _)) if *index == wanted) {
            *held = None;
            let guard = self.store.lock_address(address).ok()?;
            *held = Some((self.store.layout().of_address(address), guard));
        }
        held.as_mut().map(|(_, guard)| step(guard))
    }

    fn contains(&self, address: Ipv4Addr) -> bool {
        let address = u32::from(address);
        self.ranges
            .iter()
            .any(|&(low, high)| (low..=high).contains(&address))
    }

    /// The leases changed through [`Bindings::update`], in order: the caller must make them
    /// durable before sending what the machine queued. The shard held is let go.
    pub fn into_written(self) -> Vec<Lease> {
        drop(self.held);
        self.written
    }
}

impl Bindings for StoreBindings<'_> {
    fn lease(&self, address: Ipv4Addr) -> Option<Lease> {
        if !self.contains(address) {
            return None;
        }
        // ISC has a lease object for every pool address; a never-used one is FREE.
        self.in_shard(address, |store| {
            store
                .get(address)
                .cloned()
                .unwrap_or_else(|| Lease::free(address))
        })
    }

    fn update(&mut self, lease: Lease) {
        if !self.contains(lease.address) {
            return;
        }
        let stored = self.in_shard(lease.address, |store| store.upsert(lease.clone()));
        if stored.is_some() {
            self.written.push(lease);
        }
    }

    fn addresses(&self) -> Vec<Ipv4Addr> {
        self.ranges
            .iter()
            .flat_map(|&(low, high)| (low..=high).map(Ipv4Addr::from))
            .collect()
    }

    fn pool_stock(&self, address: Ipv4Addr) -> Option<(u64, u64)> {
        if !self.contains(address) {
            return None;
        }
        // The store keeps ISC's two counters per pool (O(1)).
        self.in_shard(address, |store| {
            store
                .pool_of(address)
                .map(|pool| (store.free_state_count(pool), store.backup_queue_count(pool)))
        })
        .flatten()
    }

    fn pools(&self) -> Vec<Vec<Ipv4Addr>> {
        if self.pools.is_empty() {
            return vec![self.addresses()];
        }
        self.pools
            .iter()
            .map(|ranges| {
                ranges
                    .iter()
                    .flat_map(|&(low, high)| (low..=high).map(Ipv4Addr::from))
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::record::BindingState;

    #[test]
    fn reads_and_writes_the_store_within_the_relationship() {
        let config = crate::config::parse_str(
            "failover peer \"fo\" { primary; address 10.0.0.1; peer address 10.0.0.2; \
             mclt 300; split 128; }\n\
             subnet 10.0.0.0 netmask 255.255.255.0 { pool { failover peer \"fo\"; \
             range 10.0.0.100 10.0.0.103; } pool { range 10.0.0.200 10.0.0.201; } }\n",
            "test.conf",
        )
        .expect("config");
        let ranges = relationship_ranges(&config, "fo");
        assert_eq!(ranges.len(), 1);
        let store = ShardedStore::new(std::sync::Arc::new(config), 1);
        let mut bindings = StoreBindings::new(&store, &ranges);
        assert_eq!(bindings.addresses().len(), 4);
        let inside = Ipv4Addr::new(10, 0, 0, 101);
        let lease = bindings.lease(inside).expect("pool address");
        assert_eq!(lease.binding_state, BindingState::Free);
        assert!(bindings.lease(Ipv4Addr::new(10, 0, 0, 200)).is_none());
        let mut backup = lease;
        backup.binding_state = BindingState::Backup;
        bindings.update(backup.clone());
        bindings.update(Lease::free(Ipv4Addr::new(10, 0, 0, 200)));
        assert_eq!(bindings.into_written(), vec![backup]);
        let store = store.lock(0).expect("store");
        assert_eq!(
            store.get(inside).map(|lease| lease.binding_state),
            Some(BindingState::Backup)
        );
        assert!(store.get(Ipv4Addr::new(10, 0, 0, 200)).is_none());
    }
}
