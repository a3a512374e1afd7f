//! The failover bounds of the fast path (issue 3 "Horizon"; docs/spec/failover.md §6.1, §8.1): for a
//! lease of a failover pool, the horizon the kernel may extend it to is the smaller of
//!
//! - the durable horizon (a record with `ends` = it is in the lease file), and
//! - the MCLT bound: `tsfp + MCLT`, with `tsfp` what the partner acknowledged. Within it the
//!   MCLT rule grants the full desired lease time (`failover::rules::grant`, the engine's
//!   `lease_time`), so the kernel's reply, which repeats the full lease time, is the one the
//!   engine would send; past it the engine would shorten the grant, and the kernel passes up;
//!
//! and, besides the horizon, the kernel answers a failover lease only while its relationship's
//! slot in the kernel's relationships map says that its service state answers requests (not
//! STARTUP, RECOVER*, PAUSED, SHUTDOWN, POTENTIAL-CONFLICT, nor with the partner in
//! PARTNER-DOWN…: `Service::NotResponding`, the same test as the engine's `serving`). A state
//! change is one map write, whatever the number of leases.
//!
//! Userspace follows both in the fast-path thread ([`super::runtime`]): a BNDACK raises `tsfp`
//! in the store, and the thread re-reads, once a second, the `tsfp` of the leases the MCLT bound
//! holds back; a change of service state is written to the relationships map on the thread's
//! next round (at most its 20 ms poll, or one batch when busy). In that window the kernel may
//! still answer a renewal the engine would refuse; it is recorded and sent to the partner as a
//! BNDUPD like any other (a documented bound: the driver does not write the map itself).

use std::collections::HashMap;
use std::net::Ipv4Addr;

use server_common::fastpath::{LeaseKey, RELATIONSHIP_SLOTS};

use crate::failover::hooks::{FailoverHooks, RelationshipStatus};
use crate::failover::states::Service;
use crate::lease::record::{BindingState, UnixTime};
use crate::lease::store::LeaseStore;

/// The latest expiry (`now + lease_time`) for which the MCLT rule still grants the full
/// `lease_time`, or `None` when the rule never shortens it (`lease_time <= mclt`).
///
/// `rules::grant(L, mclt, tsfp, now)` shortens exactly when `L > mclt` and
/// `now + L > tsfp + mclt` (which includes `tsfp <= now`), so the bound is `tsfp + mclt`.
pub fn mclt_bound(lease_time: u32, mclt: u32, tsfp: UnixTime) -> Option<UnixTime> {
    if lease_time <= mclt {
        return None;
    }
    Some(u32::try_from(u64::from(tsfp) + u64::from(mclt)).unwrap_or(u32::MAX))
}

/// Whether the relationship answers renewals now (the engine's `FailoverHooks::serving`).
pub fn serves_renewals(status: &RelationshipStatus) -> bool {
    status.service() != Service::NotResponding
}

/// The partner-acked `tsfp` of the store's lease at `address`, when it is ACTIVE (what
/// [`kernel_horizon`] needs, read under the store's lock before the maps' lock is taken).
pub fn active_tsfp(store: &LeaseStore, address: Ipv4Addr) -> Option<UnixTime> {
    store
        .get(address)
        .filter(|lease| lease.binding_state == BindingState::Active)
        .map(|lease| lease.tsfp)
}

/// The kernel horizon of a failover lease: `durable` bounded by the MCLT rule; `tsfp` is
/// [`active_tsfp`] (0 when the lease is no longer ACTIVE).
pub fn kernel_horizon(
    durable: UnixTime,
    lease_time: u32,
    tsfp: Option<UnixTime>,
    mclt: u32,
) -> UnixTime {
    let Some(tsfp) = tsfp else {
        return 0;
    };
    match mclt_bound(lease_time, mclt, tsfp) {
        Some(bound) => durable.min(bound),
        None => durable,
    }
}

/// A published lease of a failover pool, as the fast-path thread follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounded {
    pub address: Ipv4Addr,
    pub lease_time: u32,
    /// The horizon durable in the lease file.
    pub durable: UnixTime,
    /// The horizon last written to the kernel.
    pub kernel: UnixTime,
}

impl Bounded {
    /// Whether a raise of `tsfp` (BNDACK) or a state change could move the kernel horizon up.
    pub fn held_back(&self) -> bool {
        self.kernel < self.durable
    }
}

/// The published failover leases, and the service states last written to the kernel's
/// relationships map (by slot).
#[derive(Debug, Default)]
pub struct FailoverBounds {
    pub leases: HashMap<LeaseKey, Bounded>,
    pub serving: Vec<bool>,
}

/// Whether each relationship of `hooks` answers renewals now, by slot (the order of
/// `hooks.relationships()`).
pub fn serving(hooks: &FailoverHooks) -> Vec<bool> {
    hooks
        .relationships()
        .iter()
        .map(|status| serves_renewals(status))
        .collect()
}

/// The kernel's `LeaseValue::relationship` for `status` (1 + its slot), or `None` when it has
/// no slot (more relationships than the map holds: its leases stay in userspace).
pub fn relationship_value(hooks: &FailoverHooks, status: &RelationshipStatus) -> Option<u32> {
    let index = hooks
        .relationships()
        .iter()
        .position(|candidate| std::ptr::eq(&**candidate, status))?;
    let index = u32::try_from(index).ok()?;
    (index < RELATIONSHIP_SLOTS).then_some(index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failover::rules::grant;

    /// The bound is exactly where `rules::grant` (the MCLT rule the engine applies) stops
    /// granting the full lease time: at `now = bound - L` it grants L, one second later less.
    #[test]
    fn mclt_bound_is_where_the_rule_starts_shortening() {
        for (lease_time, mclt, tsfp) in [
            (3600, 300, 20_000),
            (3600, 3600, 20_000),
            (7200, 1800, 20_000),
            (86_400, 3600, 150_000),
            (43_200, 300, 50_000),
        ] {
            match mclt_bound(lease_time, mclt, tsfp) {
                Some(bound) => {
                    let last = bound - lease_time;
                    assert_eq!(grant(lease_time, mclt, tsfp, last).granted, lease_time);
                    assert!(grant(lease_time, mclt, tsfp, last + 1).granted < lease_time);
                }
                None => {
                    for now in [0, tsfp, tsfp + mclt, tsfp + 100_000] {
                        assert_eq!(grant(lease_time, mclt, tsfp, now).granted, lease_time);
                    }
                }
            }
        }
        // tsfp in the past: the rule grants MCLT only, and the bound refuses any renewal.
        let bound = mclt_bound(3600, 300, 1000).expect("bounded");
        assert!(2000 + 3600 > bound);
        assert_eq!(grant(3600, 300, 1000, 2000).granted, 300);
    }
}
