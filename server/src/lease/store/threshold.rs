//! `log-threshold-high` / `log-threshold-low` (dhcpd.conf(5); ISC server/dhcp.c
//! `check_pool_threshold`): at a DHCPACK, when a pool's use reaches the high mark, one line is
//! logged, and no other until the use has fallen to the low mark (then a "reset" line). Use is
//! what ISC counts: the pool's addresses less its free and backup leases, before the lease being
//! acknowledged changes state.

use crate::config::model::PoolId;
use crate::lease::record::BindingState;

use super::LeaseStore;

/// What [`LeaseStore::check_pool_threshold`] found to log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThresholdCrossing {
    /// "Pool threshold exceeded": `high` percent, `used` of `size`.
    Exceeded { high: u8, used: u64, size: u64 },
    /// "Pool threshold reset": `used` of `size`, at or below the low mark.
    Reset { used: u64, size: u64 },
}

/// ISC `FIND_PERCENT`.
fn percent_of(count: u64, percent: u64) -> u64 {
    if count > i32::MAX as u64 / 100 {
        count / 100 * percent
    } else {
        count * percent / 100
    }
}

impl LeaseStore {
    /// The threshold check of a DHCPACK in `pool`, with the scope's `high` and `low` marks.
    pub fn check_pool_threshold(
        &mut self,
        pool: PoolId,
        high: Option<u8>,
        low: Option<u8>,
    ) -> Option<ThresholdCrossing> {
        let state = self.pool_state_mut(pool)?;
        let size = state.size;
        let free = state.counts[BindingState::Free as usize]
            + state.counts[BindingState::Backup as usize]
            + (size - state.stored.min(size));
        let used = size.saturating_sub(free);
        if state.threshold_logged {
            if used <= state.low_threshold {
                state.threshold_logged = false;
                state.low_threshold = 0;
                return Some(ThresholdCrossing::Reset { used, size });
            }
            return None;
        }
        let high = high.filter(|high| (1..=100).contains(high))?;
        if used < percent_of(size, u64::from(high)) {
            return None;
        }
        // A low mark above 100 counts as none (0); one not below the high mark leaves the
        // line logged at every DHCPACK above the high mark, as in ISC.
        let low = low.filter(|low| *low <= 100).unwrap_or(0);
        if low < high {
            state.threshold_logged = true;
            state.low_threshold = percent_of(size, u64::from(low));
        }
        Some(ThresholdCrossing::Exceeded { high, used, size })
    }
}
