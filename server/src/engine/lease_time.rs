//! Lease durations as ISC `ack_lease` computes them (docs/spec/dhcpd-conf.md §4 "lease time rule",
//! docs/spec/failover.md §8.1 for the MCLT rule).

use crate::lease::record::{BindingState, Lease, UnixTime};

use super::packet::Inbound;
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
/// ISC `DEFAULT_CACHE_THRESHOLD` (includes/dhcpd.h): `dhcp-cache-threshold` when not set.
pub const DEFAULT_CACHE_THRESHOLD: u8 = 25;

/// The lease time granted to a client.
///
/// docs/spec/dhcpd-conf.md §4: D = the client's requested time (option 51) if present, else
/// `default-lease-time`; clamp to `max-lease-time`; cut by `adaptive-lease-time-threshold`
/// ([`adaptive`]); if below `min-lease-time` use min (or the
/// default when min is 0). `min-lease-time` defaults to 300 capped at max. Then, for a pool
/// with a failover peer, the MCLT rule: a lease longer than MCLT may only run to
/// `tsfp + MCLT`, and to MCLT itself when the partner has not acknowledged anything beyond now
/// (ISC `ack_lease`, docs/spec/failover.md §8.1).
///
/// `pool` is the address's pool use for `adaptive-lease-time-threshold` (dynamic leases only,
/// as ISC checks it only for a lease with a pool).
pub(crate) fn lease_time(
    scopes: &ScopeStack<'_>,
    requested: Option<u32>,
    pool: Option<PoolUse>,
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
    if let Some(pool) = pool {
        let threshold = scopes.find(|scope| scope.adaptive_lease_time_threshold);
        time = adaptive(time, min, threshold, pool);
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

/// How full an address's pool is, and how long the address's current lease (or the offer
/// that holds it) still runs: what `adaptive-lease-time-threshold` looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PoolUse {
    /// Addresses of the pool (ISC `pool->lease_count`).
    pub size: u64,
    /// Of them, FREE or BACKUP and not reserved (ISC `free_leases + backup_leases`).
    pub free: u64,
    /// `ends − now` of the address's lease record, negative once it has ended (ISC reads the
    /// end of its lease structure, which an OFFER moved to the end of its hold).
    pub remaining: i64,
}

impl PoolUse {
    /// The pool's use in percent as ISC computes it (`poolfilled`, C `int` arithmetic).
    pub fn filled_percent(&self) -> i64 {
        let count = self.size as i64;
        let used = count - self.free as i64;
        if count == 0 {
            return 0;
        }
        if used > i64::from(i32::MAX) / 100 {
            // ISC divides by `count / 100` there, which is not 0 for such a pool.
            used / (count / 100).max(1)
        } else {
            used * 100 / count
        }
    }
}

/// ISC `ack_lease` "adaptive-lease-time-threshold": while the pool is at least `threshold`
/// percent in use (a threshold of 1-99; others do nothing), a lease `time` longer than the
/// adaptive time is cut to it: `min-lease-time` (300 when it is 0), or the time the current
/// lease still runs when that is longer, so that a renewing client keeps what it has.
fn adaptive(time: u32, min: u32, threshold: Option<u8>, pool: PoolUse) -> u32 {
    let Some(threshold) = threshold.filter(|threshold| (1..100).contains(threshold)) else {
        return time;
    };
    let mut adaptive_time = i64::from(if min != 0 {
        min
    } else {
        DEFAULT_MIN_LEASE_TIME
    });
    if pool.remaining > adaptive_time {
        adaptive_time = pool.remaining;
    }
    if pool.filled_percent() >= i64::from(threshold) && i64::from(time) > adaptive_time {
        // `adaptive_time` < `time` here, so it fits.
        adaptive_time as u32
    } else {
        time
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

/// The `dhcp-cache-threshold` in force in `scopes` (dhcpd.conf(5)), as ISC `reuse_lease` reads
/// it: the configured percentage when it is below 100, else [`DEFAULT_CACHE_THRESHOLD`] (a
/// configured 100..255 parses but falls back to the default). 0 turns reuse off.
pub(crate) fn cache_threshold(scopes: &ScopeStack<'_>) -> u8 {
    match scopes.find(|scope| scope.dhcp_cache_threshold) {
        Some(threshold) if threshold < 100 => threshold,
        _ => DEFAULT_CACHE_THRESHOLD,
    }
}

/// ISC `reuse_lease`'s age limit in seconds for a lease `length` seconds long under
/// `threshold` percent: `length × threshold / 100`, or `length / 100 × threshold` where the
/// product would overflow ISC's `int` (C integer division, towards zero, in both).
pub fn reuse_limit(length: i64, threshold: u8) -> i64 {
    let threshold = i64::from(threshold);
    if threshold == 0 {
        return 0;
    }
    if length <= i64::from(i32::MAX) / threshold {
        length * threshold / 100
    } else {
        length / 100 * threshold
    }
}

/// ISC `reuse_lease` (server/dhcp.c; dhcpd.conf(5) `dhcp-cache-threshold`): the lease time to
/// answer with when `lease` is young enough to be handed out again as it stands — ACTIVE, and
/// `now − starts` at most `threshold` percent of its length (`ends − starts`) — `None`
/// otherwise (then the request gets a fresh binding). The answer is the time left, `ends −
/// now`, and the lease itself does not change (ISC neither supersedes nor commits it).
///
/// `ends` here is the end the client was told ([`super::fast_path::told_end`]), not the
/// fast path's horizon the record may carry. Whether the request comes from the same client
/// with nothing else changed (ISC's other conditions) is the caller's to check.
pub(crate) fn reuse(lease: &Lease, threshold: u8, now: UnixTime) -> Option<u32> {
    if threshold == 0 || lease.binding_state != BindingState::Active {
        return None;
    }
    let starts = i64::from(lease.starts);
    let ends = i64::from(super::fast_path::told_end(lease));
    let age = i64::from(now) - starts;
    if age > reuse_limit(ends - starts, threshold) {
        return None;
    }
    u32::try_from(ends - i64::from(now)).ok()
}

/// [`reuse`] for a request: the lease time to answer `inbound` with from its current lease
/// `lease` as it stands, when ISC `reuse_lease` would (the threshold of `scopes`), else `None`.
/// Besides the lease's age, nothing about the client may have changed (ISC `reuse_lease`
/// "same client", and the `cannot_reuse` that `ack_lease` sets): the same client identifier
/// (none under `ignore-client-uids`, which records none) and hardware address, and a host
/// name (option 12), when sent, equal to the lease's `client-hostname`.
///
/// A lease whose billing to a class changed is not reused either (ISC `cannot_reuse`); the
/// caller checks that (`engine::billing::BillingDecision::allows_reuse`).
/// A lease that becomes reserved (`infinite-is-reserved`) is not reused either (ISC
/// `cannot_reuse`); the caller checks that.
/// Not modelled, because xdhcpd has none of them yet: DDNS updates, and ISC's in-memory `lease->host` (which a restart
/// clears, so ISC does not reuse the first time a client with a host declaration returns).
pub(crate) fn reuse_for(
    lease: &Lease,
    inbound: &Inbound<'_>,
    scopes: &ScopeStack<'_>,
    now: UnixTime,
) -> Option<u32> {
    let ignore_uids = scopes
        .find(|scope| scope.ignore_client_uids)
        .unwrap_or(false);
    let uid = if ignore_uids { None } else { inbound.client_id };
    let same_client = lease.uid() == uid && lease.hardware == Some(inbound.hardware);
    let hostname_kept = inbound
        .hostname
        .is_none_or(|name| lease.client_hostname() == Some(name));
    if !same_client || !hostname_kept {
        return None;
    }
    reuse(lease, cache_threshold(scopes), now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(size: u64, free: u64, remaining: i64) -> PoolUse {
        PoolUse {
            size,
            free,
            remaining,
        }
    }

    #[test]
    fn adaptive_threshold_cuts_new_leases_to_min_lease_time() {
        // 10 addresses, 5 free: 50 % in use.
        assert_eq!(adaptive(3600, 600, Some(50), pool(10, 5, -10)), 600);
        assert_eq!(adaptive(3600, 600, Some(51), pool(10, 5, -10)), 3600);
        // 0 and 100 and above do nothing.
        assert_eq!(adaptive(3600, 600, Some(0), pool(10, 0, 0)), 3600);
        assert_eq!(adaptive(3600, 600, Some(100), pool(10, 0, 0)), 3600);
        assert_eq!(adaptive(3600, 600, None, pool(10, 0, 0)), 3600);
        // min-lease-time 0: ISC's default minimum, 300.
        assert_eq!(adaptive(3600, 0, Some(10), pool(10, 0, 0)), 300);
        // A renewing client keeps the time its lease still runs.
        assert_eq!(adaptive(3600, 600, Some(10), pool(10, 0, 2000)), 2000);
        assert_eq!(adaptive(1800, 600, Some(10), pool(10, 0, 2000)), 1800);
        // A shorter time stays.
        assert_eq!(adaptive(400, 600, Some(10), pool(10, 0, 0)), 400);
    }

    #[test]
    fn pool_fill_is_computed_as_isc_does() {
        assert_eq!(pool(3, 2, 0).filled_percent(), 33);
        assert_eq!(pool(0, 0, 0).filled_percent(), 0);
        // Past INT_MAX / 100 used addresses: used / (count / 100).
        assert_eq!(pool(1 << 25, 0, 0).filled_percent(), 100);
    }
}
