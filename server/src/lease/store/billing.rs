//! The store's billing index: how many of its leases are billed to each class or subclass,
//! kept as changes since the last report so that the shards of `lease::shards` can add them
//! into one [`BillingTotals`]. `link` and `unlink` keep it, so every lease change counts.

use std::collections::hash_map::Entry;

use super::{LeaseStore, Slot};
use crate::lease::billing::{billing_of, Billing, BillingDeltas, BillingTotals};

impl LeaseStore {
    /// Counts the billing of the lease in `slot` once more (`delta` 1, when linked) or once
    /// less (−1, when unlinked).
    pub(super) fn count_billing(&mut self, slot: Slot, delta: i64) {
        let Some(billing) = billing_of(&self.leases[slot as usize]) else {
            return;
        };
        match self.billing.entry(billing.clone()) {
            Entry::Occupied(mut entry) => {
                *entry.get_mut() += delta;
                if *entry.get() == 0 {
                    entry.remove();
                }
            }
            Entry::Vacant(entry) => {
                entry.insert(delta);
            }
        }
    }

    /// The leases billed to `billing` in every shard: what the shards reported (`reported`)
    /// plus this store's changes since its last report. For a store that never reports (one
    /// store, the tests) `reported` is empty and the changes are its whole count.
    pub fn billed(&self, billing: &Billing, reported: &BillingTotals) -> u64 {
        let total = reported.get(billing) + self.billing.get(billing).copied().unwrap_or(0);
        u64::try_from(total).unwrap_or(0)
    }

    /// Drops the billing of every lease for which `keep` is false (the start-up check of
    /// `lease::shards::ShardedStore::load_path`). O(leases).
    pub fn settle_billing(&mut self, mut keep: impl FnMut(&Billing) -> bool) {
        let dropped: Vec<_> = self
            .leases
            .iter()
            .filter(|lease| billing_of(lease).is_some_and(|billing| !keep(billing)))
            .map(|lease| lease.address)
            .collect();
        for address in dropped {
            if let Some(mut lease) = self.get(address).cloned() {
                if let Some(extra) = lease.extra.as_mut() {
                    extra.billing = None;
                }
                lease.shrink_extra();
                self.put(lease);
            }
        }
    }

    /// True when the store has billing changes to report.
    pub fn has_billing_deltas(&self) -> bool {
        !self.billing.is_empty()
    }

    /// The billing changes since the last report, handed to [`BillingTotals::add`].
    pub fn take_billing_deltas(&mut self) -> BillingDeltas {
        std::mem::take(&mut self.billing)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use crate::config::parse_str;
    use crate::lease::billing::{Billing, BillingTotals};
    use crate::lease::record::{BindingState, Lease};
    use crate::lease::store::LeaseStore;

    fn billed(address: [u8; 4], billing: &Billing) -> Lease {
        let mut lease = Lease::free(Ipv4Addr::from(address));
        lease.binding_state = BindingState::Active;
        lease.next_binding_state = BindingState::Free;
        lease.starts = 1_000;
        lease.ends = 2_000;
        lease.extra_mut().billing = Some(billing.clone());
        lease
    }

    #[test]
    fn the_index_follows_every_change_of_a_billed_lease() {
        let config = parse_str(
            "subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.20; }",
            "t.conf",
        )
        .unwrap();
        let mut store = LeaseStore::new(&config);
        let none = BillingTotals::default();
        let modem = Billing::subclass("modems", b"cm-1");
        store.upsert(billed([10, 0, 0, 10], &modem));
        store.upsert(billed([10, 0, 0, 11], &modem));
        assert_eq!(store.billed(&modem, &none), 2);
        // A renewal keeps the billing: still two.
        let mut renewed = billed([10, 0, 0, 11], &modem);
        renewed.ends = 3_000;
        store.upsert(renewed);
        assert_eq!(store.billed(&modem, &none), 2);
        // A release to FREE unbills, whatever the record says.
        let mut released = billed([10, 0, 0, 10], &modem);
        released.binding_state = BindingState::Free;
        store.upsert(released);
        assert_eq!(store.billed(&modem, &none), 1);
        assert!(store
            .get(Ipv4Addr::new(10, 0, 0, 10))
            .unwrap()
            .extra
            .is_none());
        // Expiry unbills.
        let changed = store.expire(2_500);
        assert!(changed.is_empty(), "10.0.0.11 now ends at 3000");
        store.expire(3_000);
        assert_eq!(store.billed(&modem, &none), 0);
        // A report moves the count into the totals, and the sum stays.
        store.upsert(billed([10, 0, 0, 12], &modem));
        let mut totals = BillingTotals::default();
        totals.add(store.take_billing_deltas());
        assert!(!store.has_billing_deltas());
        assert_eq!(store.billed(&modem, &totals), 1);
        assert_eq!(totals.get(&modem), 1);
    }
}
