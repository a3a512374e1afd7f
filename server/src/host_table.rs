//! The table of hosts added at run time (OMAPI `host` objects, docs/spec/omapi.md §8.2), shared
//! between OMAPI, which writes it, the lease-file compaction and the DHCP workers, which take one
//! generation ([`HostSet`]) per batch for the engine (`engine::Snapshot::hosts`).
//!
//! Reading costs one atomic load while the table is empty (the common case), else a short
//! `RwLock` read to clone the `Arc`. Writers (OMAPI, rare) build a new generation and swap it in.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::engine::dynamic_hosts::HostSet;

/// The shared table: OMAPI writes, the workers take generations for the engine.
#[derive(Debug, Default)]
pub struct DynamicHosts {
    current: RwLock<Arc<HostSet>>,
    /// False while the table is empty, so the packet path skips the lock entirely.
    in_use: AtomicBool,
}

impl DynamicHosts {
    pub fn new(set: HostSet) -> Self {
        let in_use = !set.is_empty();
        Self {
            current: RwLock::new(Arc::new(set)),
            in_use: AtomicBool::new(in_use),
        }
    }

    /// The current generation, or `None` when there is nothing in it.
    pub fn snapshot(&self) -> Option<Arc<HostSet>> {
        if !self.in_use.load(Ordering::Acquire) {
            return None;
        }
        self.current.read().ok().map(|set| Arc::clone(&set))
    }

    /// The current generation, even when empty (for lease-file snapshots and OMAPI).
    pub fn current(&self) -> Arc<HostSet> {
        match self.current.read() {
            Ok(set) => Arc::clone(&set),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the table with `change` applied to a copy of it; returns what `change` returned.
    pub fn modify<R>(&self, change: impl FnOnce(&mut HostSet) -> R) -> R {
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            // A writer panicked mid-swap; the Arc it left is still a whole generation.
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = HostSet::clone(&guard);
        let result = change(&mut next);
        self.in_use.store(!next.is_empty(), Ordering::Release);
        *guard = Arc::new(next);
        result
    }
}
