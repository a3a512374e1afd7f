//! An in-memory [`Bindings`]: the leases of one relationship's address range in a `BTreeMap`.
//! Used by unit tests of the machine alone and by the fuzz target; the two-peer harness runs
//! the real lease store ([`super::bindings::StoreBindings`]).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::machine::Bindings;
use crate::lease::record::Lease;

/// Leases of the addresses `low..=high`; never-used addresses read as `Lease::free`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryBindings {
    pub low: u32,
    pub high: u32,
    pub leases: BTreeMap<Ipv4Addr, Lease>,
    /// Every lease written through [`Bindings::update`], in order (what would go to the log).
    pub writes: usize,
}

impl MemoryBindings {
    pub fn new(low: Ipv4Addr, high: Ipv4Addr) -> Self {
        Self {
            low: u32::from(low),
            high: u32::from(high),
            ..Self::default()
        }
    }

    fn contains(&self, address: Ipv4Addr) -> bool {
        (self.low..=self.high).contains(&u32::from(address))
    }
}

impl Bindings for MemoryBindings {
    fn lease(&self, address: Ipv4Addr) -> Option<Lease> {
        if !self.contains(address) {
            return None;
        }
        Some(
            self.leases
                .get(&address)
                .cloned()
                .unwrap_or_else(|| Lease::free(address)),
        )
    }

    fn update(&mut self, lease: Lease) {
        if self.contains(lease.address) {
            self.writes += 1;
            self.leases.insert(lease.address, lease);
        }
    }

    fn addresses(&self) -> Vec<Ipv4Addr> {
        (self.low..=self.high).map(Ipv4Addr::from).collect()
    }
}
