//! Keeping a rewrite's disk traffic from stalling the appends.
//!
//! Every reply the group commit sends waits for an `fdatasync` of the lease file
//! (`lease::commit`). That sync shares the device with the rewrite of the whole file (hundreds
//! of megabytes for a million leases) and with the freeing of the file the rewrite replaces.
//! Measured on a virtio disk (BENCHMARKS.md, "No stall while the lease file is rewritten"):
//! a rewrite written and synced 4 MiB at a time at full speed put the appends' syncs at a p99
//! of 14 ms and a worst of 45 ms, and unlinking a 305 MB file freed all its blocks in one
//! journal commit (a worst sync of 75–107 ms). Written 1 MiB at a time at a bounded rate, and
//! freed by shrinking it step by step, the appends' worst sync stayed under 10 ms. RocksDB
//! deletes its files the same way for the same reason (`DeleteScheduler`, truncation in
//! chunks).

use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::time::{Duration, Instant};

/// Bytes of a staged rewrite written between two syncs.
pub const PIECE: usize = 1 << 20;

/// The rate a staged rewrite is written at: a million leases (~300 MB) in about 5 s, a
/// fraction of any disk's bandwidth, and rewrites happen once an hour.
pub const REWRITE_BYTES_PER_SECOND: u64 = 64 << 20;

/// What a retired file shrinks by per step, and the pause between two steps.
const SHRINK_STEP: u64 = 16 << 20;
const SHRINK_PAUSE: Duration = Duration::from_millis(5);

/// Paces a writer to `bytes_per_second`: [`Pacer::wrote`] sleeps until the bytes written so
/// far are due.
pub struct Pacer {
    started: Instant,
    written: u64,
    bytes_per_second: u64,
}

#[expect(
    clippy::disallowed_methods,
    reason = "the compaction thread's own pacing, not a protocol decision"
)]
fn monotonic_now() -> Instant {
    Instant::now()
}

impl Pacer {
    pub fn new(bytes_per_second: u64) -> Self {
        Self {
            started: monotonic_now(),
            written: 0,
            bytes_per_second: bytes_per_second.max(1),
        }
    }

    /// How long to wait after `bytes` more, `elapsed` since the start.
    fn wait_after(&mut self, bytes: u64, elapsed: Duration) -> Duration {
        self.written += bytes;
        let due = Duration::from_secs_f64(self.written as f64 / self.bytes_per_second as f64);
        due.saturating_sub(elapsed)
    }

    pub fn wrote(&mut self, bytes: usize) {
        let elapsed = self.started.elapsed();
        let wait = self.wait_after(bytes as u64, elapsed);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// Frees a replaced lease file in the background: shrinks it [`SHRINK_STEP`] at a time,
/// each step synced, so that no journal commit carries hundreds of megabytes of freed blocks
/// in front of an append's sync. Only a file no name refers to any more is shrunk (another
/// hard link — an operator's backup — keeps its contents); the last close frees the rest.
/// Without a thread to spare, the file is closed here, freed in one go as before.
pub fn retire(file: File) {
    let spawned = std::thread::Builder::new()
        .name("lease-retire".into())
        .spawn(move || {
            crate::lease::commit::lower_priority();
            if file.metadata().is_ok_and(|metadata| metadata.nlink() == 0) {
                let _ = shrink_to_nothing(&file, SHRINK_STEP, SHRINK_PAUSE);
            }
        });
    // A failed spawn dropped the closure, and the file with it.
    drop(spawned);
}

fn shrink_to_nothing(file: &File, step: u64, pause: Duration) -> std::io::Result<()> {
    let mut length = file.metadata()?.len();
    while length > 0 {
        length = length.saturating_sub(step.max(1));
        file.set_len(length)?;
        file.sync_data()?;
        if length > 0 {
            std::thread::sleep(pause);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn the_pacer_waits_until_the_bytes_are_due() {
        let mut pacer = Pacer::new(1 << 20);
        // 512 KiB at 1 MiB/s are due after 0.5 s: 0.3 s in, 0.2 s are left.
        assert_eq!(
            pacer.wait_after(512 << 10, Duration::from_millis(300)),
            Duration::from_millis(200)
        );
        // Behind schedule: no wait.
        assert_eq!(
            pacer.wait_after(512 << 10, Duration::from_secs(2)),
            Duration::ZERO
        );
    }

    #[test]
    fn a_retired_file_shrinks_to_nothing_in_steps() {
        let directory = crate::lease::log::tests::temp_dir("retire-shrink");
        let path = directory.join("old.leases");
        let mut file = File::create(&path).unwrap();
        file.write_all(&vec![b'x'; 5 << 20]).unwrap();
        shrink_to_nothing(&file, 2 << 20, Duration::ZERO).unwrap();
        assert_eq!(file.metadata().unwrap().len(), 0);
    }

    #[test]
    fn a_file_another_name_still_holds_is_not_shrunk() {
        let directory = crate::lease::log::tests::temp_dir("retire-linked");
        let path = directory.join("old.leases");
        std::fs::write(&path, vec![b'x'; 3 << 20]).unwrap();
        let file = File::options().write(true).open(&path).unwrap();
        retire(file);
        // The thread runs detached: give it time to do what it must not.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 3 << 20);
    }
}
