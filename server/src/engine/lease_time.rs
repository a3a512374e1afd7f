//! Lease durations as ISC `ack_lease` computes them (docs/spec/dhcpd-conf.md §4 "lease time rule",
//! docs/spec/failover.md §8.1 for the MCLT rule).

use crate::lease::record::UnixTime;

use super::scope::ScopeStack;
use super::FailoverRole;

/// ISC `DEFAULT_DEFAULT_LEASE_TIME` (includes/dhcpd.h).
pub const DEFAULT_LEASE_TIME: u32 = 43_200;
/// ISC `DEFAULT_MAX_LEASE_TIME`.
pub const DEFAULT_MAX_LEASE_TIME: u32 = 86_400;
/// ISC `DEFAULT_MIN_LEASE_TIME`.
pub const DEFAULT_MIN_LEASE_TIME: u32 = 300;
/// ISC `DEFAULT_ABANDON_LEASE_TIME`.
pub const DEFAULT_ABANDON_LEASE_TIME: u32 = 86_400;
/// ISC `MAX_TIME`: expiries are clamped below the 32-bit signed limit (`leaseTimeCheck`).
pub const MAX_TIME: UnixTime = 0x7fff_ffff;

/// The lease time granted to a client.
///
/// docs/spec/dhcpd-conf.md §4: D = the client's requested time (option 51) if present, else
/// `default-lease-time`; clamp to `max-lease-time`; if below `min-lease-time` use min (or the
/// default when min is 0). `min-lease-time` defaults to 300 capped at max. Then, for a pool
/// with a failover peer, the MCLT rule: a lease longer than MCLT may only run to
/// `tsfp + MCLT`, and to MCLT itself when the partner has not acknowledged anything beyond now
/// (ISC `ack_lease`, docs/spec/failover.md §8.1).
pub(crate) fn lease_time(
    scopes: &ScopeStack<'_>,
    requested: Option<u32>,
    failover: Option<FailoverRole>,
    tsfp: UnixTime,
    now: UnixTime,
) -> LeaseTime {
    let default = scopes
        .find(|scope| scope.default_lease_time)
        .unwrap_or(DEFAULT_LEASE_TIME);
    let max = scopes
        .find(|scope| scope.max_lease_time)
        .unwrap_or(DEFAULT_MAX_LEASE_TIME);
    let min = scopes
        .find(|scope| scope.min_lease_time)
        .unwrap_or(DEFAULT_MIN_LEASE_TIME.min(max));
    let mut time = requested.unwrap_or(default);
    if time > max {
        time = max;
    }
    if time < min {
        time = if min != 0 { min } else { default };
    }
    let desired = time;
    if let Some(role) = failover {
        if time > role.mclt {
            if tsfp <= now {
                time = role.mclt;
            } else if u64::from(now) + u64::from(time) > u64::from(tsfp) + u64::from(role.mclt) {
                time = tsfp - now + role.mclt;
            }
        }
    }
    LeaseTime {
        desired,
        granted: time,
    }
}

/// A lease time before and after the failover MCLT rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LeaseTime {
    /// What the configuration grants without failover.
    pub desired: u32,
    /// What the client gets.
    pub granted: u32,
}

/// `now + seconds`, clamped as ISC's `leaseTimeCheck` does (`MAX_TIME - 1`); an infinite lease
/// (0xffffffff) is `MAX_TIME`.
pub(crate) fn expiry(now: UnixTime, seconds: u32) -> UnixTime {
    if seconds == u32::MAX {
        return MAX_TIME;
    }
    let end = u64::from(now) + u64::from(seconds);
    if end >= u64::from(MAX_TIME) {
        MAX_TIME - 1
    } else {
        end as UnixTime
    }
}
