//! Group commit: one committer thread turns many lease updates into one `write` and one
//! `fdatasync`, and only then lets the replies go (DESIGN.md: a reply that promises a lease leaves
//! only after the lease is durable).
//!
//! Workers [`GroupCommit::submit`] a formatted record with a token (say, the DHCPACK to send).
//! The committer drains everything pending, appends it as one batch, fsyncs once and hands all
//! tokens of the batch to `on_durable`. When the append fails the tokens go to `on_dropped`,
//! never acknowledged: the clients retry. The committer also compacts the file every hour, or
//! when the appended part outgrows the compact part, from a snapshot the daemon takes.
//! Records of a batch are appended before a compaction's snapshot is taken, so the snapshot
//! holds them; records submitted later are appended to the new file.
//!
//! A compaction does not stop the appends (issue 14: no stall while the lease file is
//! rewritten; a million leases take seconds to copy, format and write): the snapshot is taken
//! and written to `<file>.new` on a thread of its own while batches go on being appended, and
//! made durable, in the current file. The committer keeps a copy of what it appended since the
//! snapshot began (the tail); once the staged file is durable it appends the tail there, syncs
//! it and renames it into place ([`LogFile::install`]). Every record made durable in the old
//! file is therefore in the new one, after the snapshot (a lease in both: the later record
//! wins, as when the file is read). Only a file that refuses appends (deleted, or a failed
//! append not cut back) is rewritten in the committer's own thread: nothing can be appended
//! until it is.
//!
//! Faults (README "Reliability under faults"):
//! - a failed append is cut off by the next one ([`LeaseLog::append`]); only a file that cannot
//!   be cut back, or that was deleted or replaced, needs a rewrite before appends resume;
//! - a failed rewrite is retried after a back-off that doubles from
//!   [`GroupCommitConfig::retry_after_failure`] up to the compaction interval (ISC retries
//!   hourly), or up to [`GroupCommitConfig::urgent_retry_limit`] while appends wait for it —
//!   never after every batch, which rebuilt the whole file per batch on a full disk;
//! - an idle committer still checks every [`GroupCommitConfig::check_interval`] that its file
//!   is in place, and recreates a deleted one from memory at once;
//! - failure lines are rate-limited ([`crate::log_limited!`]).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::lease::log::{LeaseLog, LeaseLogError};
use crate::logging::RateLimiter;

/// The file the committer writes to: [`LeaseLog`], or a fake in tests.
pub trait LogFile: Send + 'static {
    /// Appends and makes durable, or fails with nothing of the batch counted as durable.
    fn append(&mut self, records: &[u8]) -> Result<(), LeaseLogError>;
    /// Replaces the file with a compact snapshot atomically.
    fn rewrite(&mut self, snapshot: &[u8]) -> Result<(), LeaseLogError>;
    fn appended_bytes(&self) -> u64;
    fn compact_bytes(&self) -> u64;
    /// Appends are refused until a rewrite.
    fn needs_rewrite(&self) -> bool;
    /// The file was deleted or replaced while in use.
    fn is_detached(&self) -> bool;
    /// For the log lines.
    fn path(&self) -> &Path;
    /// Whether the committer compacts this log at all (a database compacts itself).
    fn compacts(&self) -> bool {
        true
    }
    /// A compaction written beside the file, durable, not yet in place.
    type Staged: Send + 'static;
    /// What writes a compact snapshot beside the file on the compaction thread (it must not
    /// touch the open file, which the committer goes on appending to).
    fn stager(&self) -> Stager<Self::Staged>;
    /// Appends `tail` (what was appended since the staged snapshot was taken) to `staged`,
    /// makes it durable and puts it in place of the file, atomically.
    fn install(&mut self, staged: Self::Staged, tail: &[u8]) -> Result<(), LeaseLogError>;
}

/// Writes a compact snapshot beside the lease file (see [`LogFile::stager`]).
pub type Stager<P> = Box<dyn FnOnce(&[u8]) -> Result<P, LeaseLogError> + Send>;

impl LogFile for LeaseLog {
    fn append(&mut self, records: &[u8]) -> Result<(), LeaseLogError> {
        LeaseLog::append(self, records)
    }
    fn rewrite(&mut self, snapshot: &[u8]) -> Result<(), LeaseLogError> {
        LeaseLog::rewrite(self, snapshot)
    }
    fn appended_bytes(&self) -> u64 {
        LeaseLog::appended_bytes(self)
    }
    fn compact_bytes(&self) -> u64 {
        LeaseLog::compact_bytes(self)
    }
    fn needs_rewrite(&self) -> bool {
        LeaseLog::needs_rewrite(self)
    }
    fn is_detached(&self) -> bool {
        LeaseLog::is_detached(self)
    }
    fn path(&self) -> &Path {
        LeaseLog::path(self)
    }
    type Staged = crate::lease::log::StagedRewrite;
    fn stager(&self) -> Stager<Self::Staged> {
        let path = self.path().to_path_buf();
        Box::new(move |snapshot| crate::lease::log::StagedRewrite::write(&path, snapshot))
    }
    fn install(&mut self, staged: Self::Staged, tail: &[u8]) -> Result<(), LeaseLogError> {
        LeaseLog::install(self, staged, tail)
    }
}

/// When the committer compacts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupCommitConfig {
    /// ISC's `LEASE_REWRITE_PERIOD` (3600 s).
    pub compaction_interval: Duration,
    /// Compact when the appended part exceeds this many times the compact part…
    pub growth_factor: u64,
    /// …and at least this many bytes (so that a nearly empty file is not rewritten every batch).
    pub min_compaction_bytes: u64,
    /// The first wait after a failed rewrite; each further failure doubles it.
    pub retry_after_failure: Duration,
    /// The longest wait between attempts when appends are refused until a rewrite succeeds
    /// (the file was deleted, or a failed append could not be cut off).
    pub urgent_retry_limit: Duration,
    /// How often an idle committer checks that its file was not deleted.
    pub check_interval: Duration,
    /// The shortest time between the starts of two group commits ([`commit_wait`]); zero
    /// commits as soon as a record is pending.
    pub commit_interval: Duration,
    /// Compactions are written on a thread of their own while the appends go on (the module
    /// documentation); false rewrites in the committer's thread, stopping the appends.
    pub background_compaction: bool,
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        Self {
            compaction_interval: Duration::from_secs(3600),
            growth_factor: 2,
            min_compaction_bytes: 1 << 20,
            retry_after_failure: Duration::from_secs(10),
            urgent_retry_limit: Duration::from_secs(60),
            check_interval: Duration::from_secs(1),
            commit_interval: Duration::from_millis(4),
            background_compaction: true,
        }
    }
}

/// Adaptive group commit: how long pending records wait before their write and fsync. A
/// commit starts at least `interval` after the previous one began, so under load one fsync
/// covers every record of the interval (at 5,000 ACKs/s and 4 ms, twenty) instead of the one
/// or two that arrived during the last fsync; each fsync costs CPU in the kernel and its
/// journal thread, and a wake-up of the committer. A record arriving after a quiet spell of
/// `interval` or more is committed at once. Replies still leave only once their batch is
/// durable.
pub fn commit_wait(interval: Duration, since_last_commit: Duration) -> Duration {
    interval.saturating_sub(since_last_commit)
}

/// Failed batch lines: 5 at once, then one per 10 s.
static FAILED_BATCH_LOG: RateLimiter = RateLimiter::per_interval(10_000_000_000, 5);
/// Failed rewrite lines (already spaced by the back-off): 5 at once, then one a minute.
static FAILED_REWRITE_LOG: RateLimiter = RateLimiter::per_interval(60_000_000_000, 5);

/// Timer slack of 1 µs for the calling thread: its sleeps (the commit interval, a worker's
/// receive coalescing) end when asked instead of up to 50 µs later (prctl(2)
/// `PR_SET_TIMERSLACK`; the default slack of a normal thread is 50 µs). A reply waits out those
/// sleeps, so their slack is reply latency. Best effort.
pub(crate) fn tight_timer_slack() {
    const SLACK_NS: libc::c_ulong = 1_000;
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and touches no memory of ours.
    unsafe {
        let _ = libc::prctl(libc::PR_SET_TIMERSLACK, SLACK_NS, 0, 0, 0);
    }
}

/// The compaction thread yields the CPU to the workers: seconds of formatting a million leases
/// must not delay the replies that wait for a core (setpriority(2) on a thread id sets that
/// thread's nice value on Linux). Best effort: at the default priority otherwise.
pub(crate) fn lower_priority() {
    const COMPACTION_NICE: libc::c_int = 10;
    // SAFETY: gettid and setpriority take and return plain integers and touch no memory of
    // ours.
    unsafe {
        let thread = libc::gettid();
        let _ = libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, COMPACTION_NICE);
    }
}

/// How often a committer with a compaction in progress looks whether it finished.
const COMPACTION_POLL: Duration = Duration::from_millis(5);

/// Buckets of the batch-size histogram: bucket `i` counts batches of `2^i ..= 2^(i+1) - 1`
/// records, the last one everything larger.
pub const HISTOGRAM_BUCKETS: usize = 16;

/// Upper bounds in microseconds of the append (write + fdatasync) latency histogram; one more
/// bucket counts anything slower. From an SSD's sub-millisecond fsync to a busy disk's second.
pub const APPEND_LATENCY_BOUNDS_MICROS: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// Buckets of the append latency histogram: one per bound plus the overflow bucket.
pub const APPEND_LATENCY_BUCKETS: usize = APPEND_LATENCY_BOUNDS_MICROS.len() + 1;

/// The append latency bucket of `micros` (the first bound it does not exceed).
pub fn append_latency_bucket(micros: u64) -> usize {
    APPEND_LATENCY_BOUNDS_MICROS
        .iter()
        .position(|bound| micros <= *bound)
        .unwrap_or(APPEND_LATENCY_BOUNDS_MICROS.len())
}

/// Batch statistics, updated by the committer and readable from anywhere.
#[derive(Debug, Default)]
pub struct CommitStats {
    pub batches: AtomicU64,
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    pub max_batch: AtomicU64,
    pub failed_batches: AtomicU64,
    /// Tokens dropped because their batch did not become durable.
    pub dropped_records: AtomicU64,
    pub compactions: AtomicU64,
    pub failed_compactions: AtomicU64,
    pub histogram: [AtomicU64; HISTOGRAM_BUCKETS],
    /// Appends (successful or not) by write + fdatasync latency, see
    /// [`APPEND_LATENCY_BOUNDS_MICROS`].
    pub append_latency: [AtomicU64; APPEND_LATENCY_BUCKETS],
    pub append_latency_sum_micros: AtomicU64,
}

/// A plain copy of [`CommitStats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitStatsSnapshot {
    pub batches: u64,
    pub records: u64,
    pub bytes: u64,
    pub max_batch: u64,
    pub failed_batches: u64,
    pub dropped_records: u64,
    pub compactions: u64,
    pub failed_compactions: u64,
    pub histogram: [u64; HISTOGRAM_BUCKETS],
    pub append_latency: [u64; APPEND_LATENCY_BUCKETS],
    pub append_latency_sum_micros: u64,
}

/// The histogram bucket of a batch of `size` records (`size` ≥ 1).
pub fn histogram_bucket(size: u64) -> usize {
    (size.max(1).ilog2() as usize).min(HISTOGRAM_BUCKETS - 1)
}

impl CommitStats {
    fn record_batch(&self, records: u64, bytes: u64) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.max_batch.fetch_max(records, Ordering::Relaxed);
        self.histogram[histogram_bucket(records)].fetch_add(1, Ordering::Relaxed);
    }

    fn record_append_latency(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.append_latency[append_latency_bucket(micros)].fetch_add(1, Ordering::Relaxed);
        self.append_latency_sum_micros
            .fetch_add(micros, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CommitStatsSnapshot {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CommitStatsSnapshot {
            batches: load(&self.batches),
            records: load(&self.records),
            bytes: load(&self.bytes),
            max_batch: load(&self.max_batch),
            failed_batches: load(&self.failed_batches),
            dropped_records: load(&self.dropped_records),
            compactions: load(&self.compactions),
            failed_compactions: load(&self.failed_compactions),
            histogram: std::array::from_fn(|index| load(&self.histogram[index])),
            append_latency: std::array::from_fn(|index| load(&self.append_latency[index])),
            append_latency_sum_micros: load(&self.append_latency_sum_micros),
        }
    }
}

/// The wait after `failures` rewrites failed in a row: `retry_after_failure`, doubled for each
/// further failure, up to the compaction interval (ISC's `LEASE_REWRITE_PERIOD`), or up to
/// `urgent_retry_limit` when appends are refused until a rewrite succeeds.
fn retry_delay(config: &GroupCommitConfig, failures: u32, urgent: bool) -> Duration {
    let limit = if urgent {
        config.urgent_retry_limit
    } else {
        config.compaction_interval
    };
    let doublings = failures.saturating_sub(1).min(20);
    config
        .retry_after_failure
        .saturating_mul(1 << doublings)
        .min(limit)
}

/// The committer thread is gone (it panicked or was shut down).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the lease committer has stopped")]
pub struct CommitClosed;

/// Records that may wait for the committer. A full queue makes `submit` wait: the disk is the
/// bound, and a worker that waits decides no more leases than can be made durable (its replies
/// wait for the fsync anyway). Nothing on the committer's own thread submits, so the wait
/// always ends.
pub const COMMIT_QUEUE: usize = 65_536;

enum Message<T> {
    Record(Vec<u8>, T),
    Compact,
    /// Answered once everything submitted before it is durable or dropped.
    Flush(mpsc::SyncSender<()>),
    /// As `Flush`, and once a compaction in progress is in place (or failed).
    Settle(mpsc::SyncSender<()>),
}

/// Handle to the committer thread; `submit` may be called from any thread (`&self`).
pub struct GroupCommit<T> {
    sender: Option<mpsc::SyncSender<Message<T>>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<CommitStats>,
    /// Whether the log is a file this committer rewrites ([`LogFile::compacts`]).
    compacts: bool,
}

impl<T: Send + 'static> GroupCommit<T> {
    /// Starts the committer over `log`. `on_durable` receives the tokens of each batch after
    /// its write and fsync succeeded, `on_dropped` those of a batch that failed; `snapshot`
    /// appends a whole compact lease file (header included) to the buffer it is given, or
    /// returns false when it cannot (the rewrite is then skipped, as a failed one).
    pub fn spawn<L, D, F, S>(
        log: L,
        config: GroupCommitConfig,
        on_durable: D,
        on_dropped: F,
        snapshot: S,
    ) -> std::io::Result<Self>
    where
        L: LogFile,
        D: FnMut(Vec<T>) + Send + 'static,
        F: FnMut(Vec<T>) + Send + 'static,
        S: Fn(&mut Vec<u8>) -> bool + Send + Sync + 'static,
    {
        let (sender, receiver) = mpsc::sync_channel(COMMIT_QUEUE);
        let stats = Arc::new(CommitStats::default());
        let started = monotonic_now();
        let compacts = log.compacts();
        let committer = Committer {
            log,
            config,
            on_durable,
            on_dropped,
            snapshot: Arc::new(snapshot),
            compaction: None,
            receiver,
            stats: Arc::clone(&stats),
            buffer: Vec::new(),
            snapshot_buffer: Vec::new(),
            next_compaction: started + config.compaction_interval,
            rewrite_failures: 0,
            last_rewrite_failure: None,
            detachment_reported: false,
            last_commit: started,
        };
        let thread = std::thread::Builder::new()
            .name("lease-commit".into())
            .spawn(move || committer.run())?;
        Ok(Self {
            sender: Some(sender),
            thread: Some(thread),
            stats,
            compacts,
        })
    }

    /// Whether [`Self::request_compaction`] rewrites anything (a database compacts itself).
    pub fn compacts(&self) -> bool {
        self.compacts
    }

    fn send(&self, message: Message<T>) -> Result<(), CommitClosed> {
        self.sender
            .as_ref()
            .ok_or(CommitClosed)?
            .send(message)
            .map_err(|_| CommitClosed)
    }

    /// Queues a formatted record; `token` comes back through `on_durable` once it is durable.
    pub fn submit(&self, record: Vec<u8>, token: T) -> Result<(), CommitClosed> {
        self.send(Message::Record(record, token))
    }

    /// Asks for a compaction after the current batch.
    pub fn request_compaction(&self) -> Result<(), CommitClosed> {
        self.send(Message::Compact)
    }

    /// Waits until everything submitted so far is durable (or dropped after an error). A
    /// compaction in progress is not waited for.
    pub fn flush(&self) -> Result<(), CommitClosed> {
        let (done, wait) = mpsc::sync_channel(1);
        self.send(Message::Flush(done))?;
        wait.recv().map_err(|_| CommitClosed)
    }

    /// [`GroupCommit::flush`], then waits for a compaction in progress to be in place (or to
    /// fail).
    pub fn settle(&self) -> Result<(), CommitClosed> {
        let (done, wait) = mpsc::sync_channel(1);
        self.send(Message::Settle(done))?;
        wait.recv().map_err(|_| CommitClosed)
    }

    pub fn stats(&self) -> Arc<CommitStats> {
        Arc::clone(&self.stats)
    }

    /// Commits what is pending and stops the thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the lease committer panicked");
            }
        }
    }
}

impl<T> Drop for GroupCommit<T> {
    fn drop(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What one turn of the committer's loop took from its queue (the records' bytes go straight
/// into the committer's buffer).
struct Gathered<T> {
    tokens: Vec<T>,
    flushes: Vec<mpsc::SyncSender<()>>,
    settles: Vec<mpsc::SyncSender<()>>,
    compact: bool,
}

impl<T> Gathered<T> {
    /// Nothing taken from the queue yet.
    fn is_empty(&self) -> bool {
        self.tokens.is_empty()
            && self.flushes.is_empty()
            && self.settles.is_empty()
            && !self.compact
    }
}

impl<T> Default for Gathered<T> {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            flushes: Vec::new(),
            settles: Vec::new(),
            compact: false,
        }
    }
}

/// A compaction being written on its own thread.
struct Compaction<P> {
    thread: JoinHandle<Result<P, String>>,
    started: Instant,
    /// What was appended to the current file since the snapshot began.
    tail: Vec<u8>,
}

struct Committer<L: LogFile, D, F, S, T> {
    log: L,
    config: GroupCommitConfig,
    on_durable: D,
    on_dropped: F,
    snapshot: Arc<S>,
    compaction: Option<Compaction<L::Staged>>,
    receiver: mpsc::Receiver<Message<T>>,
    stats: Arc<CommitStats>,
    buffer: Vec<u8>,
    snapshot_buffer: Vec<u8>,
    /// When the periodic compaction is due.
    next_compaction: Instant,
    /// Rewrites failed in a row, and when the last one did.
    rewrite_failures: u32,
    last_rewrite_failure: Option<Instant>,
    /// The loud line about a deleted file was logged; reset once the file is recreated.
    detachment_reported: bool,
    /// When the last commit began: what [`commit_wait`] decides from.
    last_commit: Instant,
}

#[expect(clippy::disallowed_methods, reason = "driver owns the clock")]
fn monotonic_now() -> Instant {
    Instant::now()
}

impl<L, D, F, S, T> Committer<L, D, F, S, T>
where
    L: LogFile,
    D: FnMut(Vec<T>),
    F: FnMut(Vec<T>),
    S: Fn(&mut Vec<u8>) -> bool + Send + Sync + 'static,
{
    fn run(mut self) {
        tight_timer_slack();
        let mut gathered = Gathered::default();
        // Whether the last turn committed records: the load is steady.
        let mut under_load = false;
        loop {
            // At most `check_interval`, also once a compaction is overdue (a failed one waits
            // for its back-off: no busy loop).
            let until_compaction = self
                .next_compaction
                .saturating_duration_since(monotonic_now());
            let mut timeout = if until_compaction.is_zero() {
                self.config.check_interval
            } else {
                until_compaction.min(self.config.check_interval)
            };
            if self.compaction.is_some() {
                // Put a finished compaction in place soon, busy or idle.
                timeout = timeout.min(COMPACTION_POLL);
            }
            gathered.compact = false;
            let mut disconnected = false;
            // Under a steady load the next records arrive before the interval is over: sleep
            // to its end and take them all then, rather than being woken by the first one and
            // going back to sleep for the rest (a context switch less per commit). The first
            // quiet interval falls back to waiting on the queue.
            if under_load {
                let wait = commit_wait(
                    self.config.commit_interval,
                    monotonic_now().saturating_duration_since(self.last_commit),
                );
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
                disconnected |= self.take_pending(&mut gathered);
            }
            if gathered.is_empty() && !disconnected {
                match self.receiver.recv_timeout(timeout) {
                    Ok(message) => self.take(message, &mut gathered),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => disconnected = true,
                }
                // Everything pending joins this batch.
                disconnected |= self.take_pending(&mut gathered);
            }
            // Under load, records arriving until the interval is over share this batch's
            // fsync. Slept, not received: a wait that woke for every record would cost the
            // context switches the batching saves.
            let wait = commit_wait(
                self.config.commit_interval,
                monotonic_now().saturating_duration_since(self.last_commit),
            );
            if !gathered.tokens.is_empty() && !wait.is_zero() && !disconnected {
                std::thread::sleep(wait);
                disconnected |= self.take_pending(&mut gathered);
            }
            let committed = !gathered.tokens.is_empty();
            under_load = committed;
            if committed {
                self.commit_batch(std::mem::take(&mut gathered.tokens));
            } else if self.log.is_detached() {
                // Idle: nothing else would notice a deleted file before the next lease.
                self.report_detachment();
            }
            let now = monotonic_now();
            let threshold = (self.log.compact_bytes() * self.config.growth_factor)
                .max(self.config.min_compaction_bytes);
            let urgent = self.log.needs_rewrite() || self.detachment_reported;
            let wanted = self.log.compacts()
                && (gathered.compact
                    || now >= self.next_compaction
                    || self.log.appended_bytes() > threshold);
            let settle = !gathered.settles.is_empty() || disconnected;
            if urgent {
                // Nothing can be appended until the file is rewritten: here, now.
                if self.rewrite_allowed(now, true) {
                    self.compact(now);
                }
            } else if self.compaction.is_some() {
                self.finish_compaction(settle);
            } else if wanted && self.rewrite_allowed(now, false) {
                if self.config.background_compaction {
                    self.start_compaction(now);
                    if settle {
                        self.finish_compaction(true);
                    }
                } else {
                    self.compact(now);
                }
            }
            for done in gathered.flushes.drain(..).chain(gathered.settles.drain(..)) {
                let _ = done.send(());
            }
            if disconnected {
                return;
            }
        }
    }

    /// Takes every message already queued; true when every sender is gone.
    fn take_pending(&mut self, gathered: &mut Gathered<T>) -> bool {
        loop {
            match self.receiver.try_recv() {
                Ok(message) => self.take(message, gathered),
                Err(mpsc::TryRecvError::Empty) => return false,
                Err(mpsc::TryRecvError::Disconnected) => return true,
            }
        }
    }

    fn take(&mut self, message: Message<T>, gathered: &mut Gathered<T>) {
        match message {
            Message::Record(record, token) => {
                self.buffer.extend_from_slice(&record);
                gathered.tokens.push(token);
            }
            Message::Compact => gathered.compact = true,
            Message::Flush(done) => gathered.flushes.push(done),
            Message::Settle(done) => gathered.settles.push(done),
        }
    }

    /// Starts a compaction on a thread of its own: the snapshot, its formatting and the
    /// staged file's write and fsync happen there while the appends go on.
    fn start_compaction(&mut self, now: Instant) {
        let snapshot = Arc::clone(&self.snapshot);
        let stage = self.log.stager();
        let spawned = std::thread::Builder::new()
            .name("lease-compact".into())
            .spawn(move || {
                lower_priority();
                let mut buffer = Vec::new();
                if !snapshot(&mut buffer) {
                    return Err("no snapshot of the leases could be taken".to_string());
                }
                stage(&buffer).map_err(|error| error.to_string())
            });
        match spawned {
            Ok(thread) => {
                // Not again before this one is in place (or failed).
                self.next_compaction = now + self.config.compaction_interval;
                self.compaction = Some(Compaction {
                    thread,
                    started: now,
                    tail: Vec::new(),
                });
            }
            // No thread to spare: rewrite here, as without background compaction.
            Err(_) => {
                self.compact(now);
            }
        }
    }

    /// Puts a finished compaction in place (with `wait`, waits for it to finish).
    fn finish_compaction(&mut self, wait: bool) {
        let finished = self
            .compaction
            .as_ref()
            .is_some_and(|compaction| compaction.thread.is_finished());
        if !(finished || wait) {
            return;
        }
        let Some(Compaction {
            thread,
            started,
            tail,
        }) = self.compaction.take()
        else {
            return;
        };
        let result = match thread.join() {
            Ok(Ok(staged)) => self
                .log
                .install(staged, &tail)
                .map_err(|error| error.to_string()),
            Ok(Err(error)) => Err(error),
            Err(_) => Err("the compaction thread panicked".to_string()),
        };
        if result.is_ok() {
            tracing::info!(
                "lease file {} compacted in {:.2} s, {} bytes appended meanwhile",
                self.log.path().display(),
                monotonic_now()
                    .saturating_duration_since(started)
                    .as_secs_f64(),
                tail.len()
            );
        }
        self.compaction_done(monotonic_now(), result);
    }

    /// A compaction that an urgent rewrite makes useless: waited for, its file removed.
    fn abandon_compaction(&mut self) {
        if let Some(Compaction { thread, .. }) = self.compaction.take() {
            if let Ok(Ok(staged)) = thread.join() {
                drop(staged);
            }
        }
    }

    /// After a failed rewrite, the next one waits `retry_after_failure`, doubled for each
    /// further failure, up to the compaction interval (ISC's hourly retry) — or up to
    /// `urgent_retry_limit` while appends are refused until a rewrite succeeds.
    fn rewrite_allowed(&self, now: Instant, urgent: bool) -> bool {
        let Some(failed) = self.last_rewrite_failure else {
            return true;
        };
        now >= failed + self.retry_delay(urgent)
    }

    fn retry_delay(&self, urgent: bool) -> Duration {
        retry_delay(&self.config, self.rewrite_failures, urgent)
    }

    /// The loud line, once per deletion.
    fn report_detachment(&mut self) {
        if !self.detachment_reported {
            self.detachment_reported = true;
            tracing::error!(
                "lease file {} was deleted or replaced while in use: recreating it from the \
                 leases in memory (nothing written to the deleted file would survive a restart)",
                self.log.path().display()
            );
        }
    }

    /// One write, one fsync, then the callback; on failure the tokens are dropped.
    fn commit_batch(&mut self, tokens: Vec<T>) {
        let count = tokens.len() as u64;
        let bytes = self.buffer.len() as u64;
        let now = monotonic_now();
        // A file that refuses appends is rewritten first, from a snapshot (which already holds
        // this batch's leases: the daemon stored them before submitting).
        if self.log.needs_rewrite() && self.rewrite_allowed(now, true) {
            self.compact(now);
        }
        let started = monotonic_now();
        self.last_commit = started;
        let mut result = self.log.append(&self.buffer);
        if let Err(LeaseLogError::Detached { .. }) = result {
            // Noticed by this append: recreate the file now and append there.
            self.report_detachment();
            if self.rewrite_allowed(now, true) && self.compact(now) {
                result = self.log.append(&self.buffer);
            }
        }
        let took = monotonic_now().saturating_duration_since(started);
        self.stats.record_append_latency(took);
        if result.is_ok() {
            if let Some(compaction) = &mut self.compaction {
                compaction.tail.extend_from_slice(&self.buffer);
            }
        }
        self.buffer.clear();
        match result {
            Ok(()) => {
                self.stats.record_batch(count, bytes);
                (self.on_durable)(tokens);
            }
            Err(error) => {
                crate::log_limited!(
                    FAILED_BATCH_LOG,
                    error,
                    "lease batch of {count} records not durable, dropped: {error}"
                );
                self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .dropped_records
                    .fetch_add(count, Ordering::Relaxed);
                (self.on_dropped)(tokens);
            }
        }
    }

    /// Rewrites the file from a snapshot in this thread; true when it succeeded. A compaction
    /// in progress is superseded (waited for and dropped: both would write `<file>.new`).
    fn compact(&mut self, now: Instant) -> bool {
        self.abandon_compaction();
        self.snapshot_buffer.clear();
        let result = if (self.snapshot)(&mut self.snapshot_buffer) {
            self.log
                .rewrite(&self.snapshot_buffer)
                .map_err(|error| error.to_string())
        } else {
            Err("no snapshot of the leases could be taken".to_string())
        };
        // Do not keep a huge snapshot buffer around for an hour.
        self.snapshot_buffer = Vec::new();
        self.compaction_done(now, result)
    }

    /// Counts and logs a compaction's outcome; true when it succeeded.
    fn compaction_done(&mut self, now: Instant, result: Result<(), String>) -> bool {
        match result {
            Ok(()) => {
                self.stats.compactions.fetch_add(1, Ordering::Relaxed);
                if self.detachment_reported {
                    tracing::warn!(
                        "lease file {} recreated from the leases in memory",
                        self.log.path().display()
                    );
                }
                self.detachment_reported = false;
                self.rewrite_failures = 0;
                self.last_rewrite_failure = None;
                self.next_compaction = now + self.config.compaction_interval;
                true
            }
            Err(error) => {
                self.stats
                    .failed_compactions
                    .fetch_add(1, Ordering::Relaxed);
                self.rewrite_failures = self.rewrite_failures.saturating_add(1);
                self.last_rewrite_failure = Some(now);
                let urgent = self.log.needs_rewrite() || self.detachment_reported;
                crate::log_limited!(
                    FAILED_REWRITE_LOG,
                    error,
                    "lease file rewrite failed: {error}; next attempt in {} s",
                    self.retry_delay(urgent).as_secs()
                );
                false
            }
        }
    }
}

#[cfg(test)]
mod tests;
