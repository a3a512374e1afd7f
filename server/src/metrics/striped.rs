//! The packet path's counters, one copy per thread, summed when Prometheus scrapes (issue 9 §4).
//!
//! A counter that every worker bumps is one cache line that every core writes: each increment
//! takes the line away from the core that wrote it last, and at tens of thousands of packets a
//! second on 16 or 64 cores that traffic, not the add, is the cost. Here every thread bumps its
//! own stripe — all the packet path's counters in one array, padded to whole cache lines — with
//! a relaxed add on a line no other core writes; a scrape adds the stripes up.
//!
//! Threads take stripes in turn as they first count (the workers start one after the other, so
//! each gets its own); with more threads than stripes some share one, which stays correct (the
//! adds are atomic), only slower.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

/// The next stripe a thread takes.
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's stripe number (taken modulo the stripe count of each counter set).
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed);
}

/// `SLOTS` counters, one padded copy per stripe.
pub struct Stripes<const SLOTS: usize> {
    stripes: Box<[CachePadded<[AtomicU64; SLOTS]>]>,
}

impl<const SLOTS: usize> std::fmt::Debug for Stripes<SLOTS> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Stripes")
            .field("stripes", &self.stripes.len())
            .field("slots", &SLOTS)
            .finish()
    }
}

impl<const SLOTS: usize> Default for Stripes<SLOTS> {
    /// Four stripes per CPU (threads beyond the workers count too: the committer, the failover
    /// driver, the XDP consumer), at least 8, at most 256.
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        Self::with_stripes((cpus * 4).clamp(8, 256))
    }
}

impl<const SLOTS: usize> Stripes<SLOTS> {
    pub fn with_stripes(count: usize) -> Self {
        Self {
            stripes: (0..count.max(1))
                .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
        }
    }

    /// The calling thread's copy.
    fn local(&self) -> &[AtomicU64; SLOTS] {
        let index = STRIPE.with(|stripe| *stripe) % self.stripes.len();
        &self.stripes[index]
    }

    /// Adds `value` to counter `slot` (this thread's copy).
    pub fn add(&self, slot: usize, value: u64) {
        if let Some(counter) = self.local().get(slot) {
            counter.fetch_add(value, Ordering::Relaxed);
        }
    }

    /// Counter `slot`, summed over the stripes.
    pub fn sum(&self, slot: usize) -> u64 {
        self.stripes
            .iter()
            .filter_map(|stripe| stripe.get(slot))
            .map(|counter| counter.load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn each_thread_counts_in_its_own_stripe_and_the_sum_is_exact() {
        let stripes: Arc<Stripes<3>> = Arc::new(Stripes::with_stripes(4));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let stripes = stripes.clone();
                std::thread::spawn(move || {
                    for _ in 0..1_000 {
                        stripes.add(1, 2);
                    }
                    stripes.add(7, 1); // past the slots: ignored
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("thread");
        }
        assert_eq!(stripes.sum(1), 12_000);
        assert_eq!(stripes.sum(0), 0);
    }
}
