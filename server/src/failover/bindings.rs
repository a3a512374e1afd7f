//! [`Bindings`] over the daemon's [`LeaseStore`]: the machine reads and changes the leases of one
//! relationship's pools in the store itself, and every change is remembered so that the driver
//! writes it to the lease log (group commit) before anything that depends on it goes to the
//! partner (docs/spec/failover.md §7.3 step 10: the lease is written, then the BNDACK is sent).

use std::net::Ipv4Addr;

use super::machine::Bindings;
use crate::config::model::Config;
use crate::lease::record::Lease;
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

/// One relationship's view of the store for the length of one machine call (the caller holds
/// the store's lock meanwhile).
pub struct StoreBindings<'a> {
    store: &'a mut LeaseStore,
    ranges: &'a [(u32, u32)],
    written: Vec<Lease>,
}

impl<'a> StoreBindings<'a> {
    pub fn new(store: &'a mut LeaseStore, ranges: &'a [(u32, u32)]) -> Self {
        Self {
            store,
            ranges,
            written: Vec::new(),
        }
    }

    fn contains(&self, address: Ipv4Addr) -> bool {
        let address = u32::from(address);
        self.ranges
            .iter()
            .any(|&(low, high)| (low..=high).contains(&address))
    }

    /// The leases changed through [`Bindings::update`], in order: the caller must make them
    /// durable before sending what the machine queued.
    pub fn into_written(self) -> Vec<Lease> {
        self.written
    }
}

impl Bindings for StoreBindings<'_> {
    fn lease(&self, address: Ipv4Addr) -> Option<Lease> {
        if !self.contains(address) {
            return None;
        }
        // ISC has a lease object for every pool address; a never-used one is FREE.
        Some(
            self.store
                .get(address)
                .cloned()
                .unwrap_or_else(|| Lease::free(address)),
        )
    }

    fn update(&mut self, lease: Lease) {
        if !self.contains(lease.address) {
            return;
        }
        self.store.upsert(lease.clone());
        self.written.push(lease);
    }

    fn addresses(&self) -> Vec<Ipv4Addr> {
        self.ranges
            .iter()
            .flat_map(|&(low, high)| (low..=high).map(Ipv4Addr::from))
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
        let mut store = LeaseStore::new(&config);
        let mut bindings = StoreBindings::new(&mut store, &ranges);
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
        assert_eq!(
            store.get(inside).map(|lease| lease.binding_state),
            Some(BindingState::Backup)
        );
        assert!(store.get(Ipv4Addr::new(10, 0, 0, 200)).is_none());
    }
}
