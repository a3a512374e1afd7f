//! The workers that read one socket: while traffic is light, one of them is enough, and the
//! others rest instead of competing for each datagram.
//!
//! Two workers blocked on one socket undo receive coalescing (`worker::ReceiveCoalescing`):
//! while one waits out its coalescing interval, the kernel wakes the other for each datagram.
//! At 5,000 DORA/s on the project's VM a thread's sleep and wake-up costs ~12 µs of CPU, and
//! the wake-ups were a quarter of the server's CPU (BENCHMARKS.md, issue 14's fourth pass).
//! So the first worker of a socket (the lead) always reads; a helper that has seen only
//! small batches for a while goes to rest on a condition variable, where nothing wakes it per
//! datagram, and the lead calls the helpers back as soon as one receive fills half a batch —
//! requests are then queued faster than one worker takes them, as in a reconnect storm. A
//! resting helper also takes a look at the socket itself every 20 ms, so that a lead held up
//! elsewhere never leaves the socket unread for longer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use super::worker::SMALL_BATCH;
use crate::net::socket::BATCH;

/// Consecutive small receives (fewer than [`SMALL_BATCH`] datagrams, or none) after which a
/// helper rests: about 30 ms of light traffic at a 500 µs coalescing interval.
const REST_AFTER: u32 = 64;

/// A receive of this many datagrams calls the helpers back: half a batch means requests are
/// queued faster than the lead takes them (at 5,000 DORA/s it takes ~5 per receive).
const CALL_BACK_AT: usize = BATCH / 2;

/// How long a helper rests at most before it takes one look at the socket itself: the lead
/// calls it back only when it receives, so a lead held up elsewhere (a slow log sink, a lock)
/// leaves the socket unread for no longer than this. Fifty looks a second cost far less than
/// the wake-ups resting saves (one per datagram).
const REST_AT_MOST: Duration = Duration::from_millis(20);

/// What the workers of one socket share.
#[derive(Debug, Default)]
pub(super) struct Crew {
    resting: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Crew {
    /// Called by the lead after each receive: half a batch or more calls resting helpers back.
    pub(super) fn lead_received(&self, count: usize) {
        if count >= CALL_BACK_AT && self.resting.load(Ordering::Acquire) {
            let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.resting.store(false, Ordering::Release);
            self.wake.notify_all();
        }
    }

    /// Blocks a helper until the lead calls it back, shutdown is asked for, or
    /// [`REST_AT_MOST`] has passed; true when it was called back.
    fn rest(&self, shutdown: &dyn Fn() -> bool) -> bool {
        let guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.resting.store(true, Ordering::Release);
        let (_guard, _) = self
            .wake
            .wait_timeout_while(guard, REST_AT_MOST, |_| {
                self.resting.load(Ordering::Acquire) && !shutdown()
            })
            .unwrap_or_else(PoisonError::into_inner);
        !self.resting.load(Ordering::Acquire)
    }
}

/// A helper's count of small receives in a row.
#[derive(Debug, Default)]
pub(super) struct HelperPace {
    small_in_a_row: u32,
    /// Rest before the next receive (the datagrams of the last one are handled first).
    rest_next: bool,
}

impl HelperPace {
    /// After a rest that ended without a call back: one more small receive, and the helper
    /// rests again.
    fn looked(&mut self) {
        self.small_in_a_row = REST_AFTER - 1;
    }

    /// After a helper's receive of `count` datagrams: true when it should rest now.
    pub(super) fn received(&mut self, count: usize) -> bool {
        if count < SMALL_BATCH {
            self.small_in_a_row += 1;
        } else {
            self.small_in_a_row = 0;
        }
        if self.small_in_a_row >= REST_AFTER {
            self.small_in_a_row = 0;
            return true;
        }
        false
    }
}

/// A worker's place in its socket's crew.
#[derive(Debug)]
pub(super) enum Role {
    /// Reads always; calls the helpers back when a receive brings half a batch.
    Lead(std::sync::Arc<Crew>),
    /// Rests while traffic is light (only when the receive is coalesced: without it one
    /// worker is not meant to carry the load alone).
    Helper(std::sync::Arc<Crew>, HelperPace),
}

impl Role {
    /// After a receive of `count` datagrams (0 on a timeout): the lead may call the helpers
    /// back; a helper may decide to rest before its next receive.
    pub(super) fn after_receive(&mut self, count: usize) {
        match self {
            Self::Lead(crew) => crew.lead_received(count),
            Self::Helper(_, pace) => pace.rest_next = pace.received(count),
        }
    }

    /// Before a receive: a helper that decided to rest does so now, its last datagrams
    /// handled, until the lead calls it back, shutdown is asked for, or it is time to look.
    pub(super) fn before_receive(&mut self, shutdown: &dyn Fn() -> bool) {
        if let Self::Helper(crew, pace) = self {
            if std::mem::take(&mut pace.rest_next) && !crew.rest(shutdown) {
                pace.looked();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_helper_rests_after_small_batches_and_a_full_batch_calls_it_back() {
        let mut pace = HelperPace::default();
        for _ in 1..REST_AFTER {
            assert!(!pace.received(1));
        }
        // A batch that is not small starts the count again.
        assert!(!pace.received(BATCH / 2));
        for _ in 1..REST_AFTER {
            assert!(!pace.received(0));
        }
        assert!(pace.received(0));

        // After a rest that ended on its own, one small receive sends it back to rest.
        pace.looked();
        assert!(pace.received(1));

        let crew = Arc::new(Crew::default());
        let helper = std::thread::spawn({
            let crew = crew.clone();
            // Called back before REST_AT_MOST, or rested out: rest until called.
            move || while !crew.rest(&|| false) {}
        });
        while !crew.resting.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        // Smaller receives leave it resting; half a batch calls it back.
        crew.lead_received(CALL_BACK_AT - 1);
        assert!(crew.resting.load(Ordering::Acquire));
        crew.lead_received(CALL_BACK_AT);
        helper.join().unwrap();
        assert!(!crew.resting.load(Ordering::Acquire));
    }

    #[test]
    fn a_resting_helper_leaves_at_shutdown() {
        let crew = Crew::default();
        // Shutdown already asked for: `rest` returns at once instead of waiting for a call.
        assert!(!crew.rest(&|| true));
        // Nobody calls it back: it returns after REST_AT_MOST to take a look itself.
        assert!(!crew.rest(&|| false));
    }
}
