//! Group commit tests: ordering of write, fsync and callback, batching, failures, compaction.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::*;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    /// A batch written and fsynced.
    Append(Vec<u8>),
    Rewrite(Vec<u8>),
    RewriteFailed,
    Durable(Vec<u32>),
    Dropped(Vec<u32>),
}

/// What a test makes the fake file do.
#[derive(Default)]
struct Faults {
    /// The next append fails (as on a full disk: the next one cuts the tail off).
    fail_next: bool,
    /// Every rewrite fails.
    fail_rewrites: bool,
    /// The file was deleted: appends are refused until a rewrite.
    detached: bool,
}

/// A log that records what happens, can block an append until released, and can fail.
struct FakeLog {
    events: Arc<Mutex<Vec<Event>>>,
    gate: Option<mpsc::Receiver<()>>,
    /// Told when an append starts waiting at the gate.
    entered: Option<mpsc::Sender<()>>,
    faults: Arc<Mutex<Faults>>,
    appended: u64,
    /// A compaction's staging waits here until released.
    stage_gate: Option<Arc<Mutex<mpsc::Receiver<()>>>>,
}

impl LogFile for FakeLog {
    fn append(&mut self, records: &[u8]) -> Result<(), LeaseLogError> {
        if let Some(gate) = self.gate.take() {
            if let Some(entered) = self.entered.take() {
                let _ = entered.send(());
            }
            let _ = gate.recv();
        }
        let mut faults = self.faults.lock().unwrap();
        if faults.detached {
            return Err(LeaseLogError::Detached {
                path: PathBuf::from("fake"),
            });
        }
        if std::mem::take(&mut faults.fail_next) {
            return Err(LeaseLogError::Io {
                action: "fsync",
                path: PathBuf::from("fake"),
                source: std::io::Error::other("injected"),
            });
        }
        self.appended += records.len() as u64;
        self.events
            .lock()
            .unwrap()
            .push(Event::Append(records.to_vec()));
        Ok(())
    }
    fn rewrite(&mut self, snapshot: &[u8]) -> Result<(), LeaseLogError> {
        let mut faults = self.faults.lock().unwrap();
        if faults.fail_rewrites {
            self.events.lock().unwrap().push(Event::RewriteFailed);
            return Err(LeaseLogError::Io {
                action: "write",
                path: PathBuf::from("fake.new"),
                source: std::io::Error::from_raw_os_error(libc::ENOSPC),
            });
        }
        faults.detached = false;
        self.appended = 0;
        self.events
            .lock()
            .unwrap()
            .push(Event::Rewrite(snapshot.to_vec()));
        Ok(())
    }
    fn appended_bytes(&self) -> u64 {
        self.appended
    }
    fn compact_bytes(&self) -> u64 {
        0
    }
    fn needs_rewrite(&self) -> bool {
        self.faults.lock().unwrap().detached
    }
    fn is_detached(&self) -> bool {
        self.faults.lock().unwrap().detached
    }
    fn path(&self) -> &Path {
        Path::new("fake")
    }
    type Staged = Vec<u8>;
    fn stager(&self) -> Stager<Vec<u8>> {
        let gate = self.stage_gate.clone();
        Box::new(move |snapshot| {
            if let Some(gate) = gate {
                let _ = gate.lock().unwrap().recv();
            }
            Ok(snapshot.to_vec())
        })
    }
    fn install(&mut self, mut staged: Vec<u8>, tail: &[u8]) -> Result<(), LeaseLogError> {
        staged.extend_from_slice(tail);
        self.rewrite(&staged)
    }
}

struct Harness {
    commit: GroupCommit<u32>,
    events: Arc<Mutex<Vec<Event>>>,
    faults: Arc<Mutex<Faults>>,
}

impl Harness {
    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }
}

fn harness(gate: Option<mpsc::Receiver<()>>, entered: Option<mpsc::Sender<()>>) -> Harness {
    harness_with(
        GroupCommitConfig {
            min_compaction_bytes: u64::MAX,
            ..GroupCommitConfig::default()
        },
        gate,
        entered,
    )
}

fn harness_with(
    config: GroupCommitConfig,
    gate: Option<mpsc::Receiver<()>>,
    entered: Option<mpsc::Sender<()>>,
) -> Harness {
    let events = Arc::new(Mutex::new(Vec::new()));
    let faults = Arc::new(Mutex::new(Faults::default()));
    let log = FakeLog {
        events: Arc::clone(&events),
        gate,
        entered,
        faults: Arc::clone(&faults),
        appended: 0,
        stage_gate: None,
    };
    let durable_events = Arc::clone(&events);
    let dropped_events = Arc::clone(&events);
    let commit = GroupCommit::spawn(
        log,
        config,
        move |tokens| durable_events.lock().unwrap().push(Event::Durable(tokens)),
        move |tokens| dropped_events.lock().unwrap().push(Event::Dropped(tokens)),
        |out: &mut Vec<u8>| {
            out.extend_from_slice(b"SNAPSHOT");
            true
        },
    )
    .unwrap();
    Harness {
        commit,
        events,
        faults,
    }
}

#[test]
fn tokens_come_back_only_after_their_batch_is_durable() {
    let harness = harness(None, None);
    for (token, record) in [(1, b"a;"), (2, b"b;"), (3, b"c;"), (4, b"d;")] {
        harness.commit.submit(record.to_vec(), token).unwrap();
    }
    harness.commit.flush().unwrap();
    let events = harness.events.lock().unwrap().clone();
    // Whatever the batching, every Durable follows the Append that holds its records, and
    // every record is appended exactly once, in order.
    let mut written = Vec::new();
    let mut durable = Vec::new();
    for event in &events {
        match event {
            Event::Append(bytes) => written.extend_from_slice(bytes),
            Event::Durable(tokens) => {
                for token in tokens {
                    let record = format!("{};", (b'a' + *token as u8 - 1) as char);
                    let text = String::from_utf8_lossy(&written).into_owned();
                    assert!(
                        text.contains(&record),
                        "{token} acked before written: {events:?}"
                    );
                    durable.push(*token);
                }
            }
            Event::Rewrite(_) | Event::RewriteFailed | Event::Dropped(_) => {}
        }
    }
    assert_eq!(written, b"a;b;c;d;");
    assert_eq!(durable, vec![1, 2, 3, 4]);
    let stats = harness.commit.stats().snapshot();
    assert_eq!(stats.records, 4);
    assert_eq!(stats.histogram.iter().sum::<u64>(), stats.batches);
}

#[test]
fn records_queued_behind_a_slow_fsync_share_one_batch() {
    let (release, gate) = mpsc::channel();
    let (entered_sender, entered) = mpsc::channel();
    let harness = harness(Some(gate), Some(entered_sender));
    harness.commit.submit(b"1".to_vec(), 1).unwrap();
    // The committer has taken record 1 and waits inside its append: what comes now queues up
    // and must go out as one batch once the append returns.
    entered.recv().unwrap();
    for token in 2..=4 {
        harness
            .commit
            .submit(token.to_string().into_bytes(), token)
            .unwrap();
    }
    release.send(()).unwrap();
    harness.commit.flush().unwrap();
    let events = harness.events.lock().unwrap().clone();
    assert_eq!(
        events,
        vec![
            Event::Append(b"1".to_vec()),
            Event::Durable(vec![1]),
            Event::Append(b"234".to_vec()),
            Event::Durable(vec![2, 3, 4]),
        ]
    );
    let stats = harness.commit.stats().snapshot();
    assert_eq!((stats.batches, stats.records, stats.max_batch), (2, 4, 3));
    assert_eq!(stats.histogram[0], 1);
    assert_eq!(stats.histogram[1], 1);
}

#[test]
fn a_failed_batch_is_never_acknowledged() {
    let harness = harness(None, None);
    harness.faults.lock().unwrap().fail_next = true;
    harness.commit.submit(b"x".to_vec(), 7).unwrap();
    harness.commit.flush().unwrap();
    harness.commit.submit(b"y".to_vec(), 8).unwrap();
    harness.commit.flush().unwrap();
    // The failed batch's tokens are dropped (counted by the daemon as `commit_failed`), and
    // the next append simply goes on: the log cuts the failed tail off itself. No rewrite of
    // the whole file (on a full disk that rewrite is what ate the appends' space).
    assert_eq!(
        harness.events(),
        vec![
            Event::Dropped(vec![7]),
            Event::Append(b"y".to_vec()),
            Event::Durable(vec![8]),
        ]
    );
    let stats = harness.commit.stats().snapshot();
    assert_eq!((stats.failed_batches, stats.dropped_records), (1, 1));
}

/// The defect: a rewrite that failed (no space) was retried after every batch, rebuilding the
/// whole store each time.
#[test]
fn a_failing_rewrite_backs_off_and_the_appends_go_on() {
    let harness = harness_with(
        GroupCommitConfig {
            // Every batch outgrows the compact part: a compaction is wanted each time.
            min_compaction_bytes: 0,
            ..GroupCommitConfig::default()
        },
        None,
        None,
    );
    harness.faults.lock().unwrap().fail_rewrites = true;
    for token in 0..10u32 {
        harness.commit.submit(vec![b'r'], token).unwrap();
        harness.commit.flush().unwrap();
    }
    // The compaction runs beside the appends: its failure is known once it finished.
    harness.commit.settle().unwrap();
    let events = harness.events();
    let attempts = events
        .iter()
        .filter(|event| **event == Event::RewriteFailed)
        .count();
    assert_eq!(attempts, 1, "{events:?}");
    let durable: Vec<u32> = events
        .iter()
        .flat_map(|event| match event {
            Event::Durable(tokens) => tokens.clone(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(durable, (0..10).collect::<Vec<_>>());
    assert_eq!(harness.commit.stats().snapshot().failed_compactions, 1);
}

#[test]
fn rewrite_retries_double_up_to_the_hour_or_a_minute_when_appends_wait() {
    let config = GroupCommitConfig::default();
    let delays: Vec<u64> = (1..=11)
        .map(|failures| retry_delay(&config, failures, false).as_secs())
        .collect();
    assert_eq!(
        delays,
        [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
    );
    let urgent: Vec<u64> = (1..=5)
        .map(|failures| retry_delay(&config, failures, true).as_secs())
        .collect();
    assert_eq!(urgent, [10, 20, 40, 60, 60]);
    assert_eq!(retry_delay(&config, u32::MAX, false).as_secs(), 3600);
}

#[test]
fn a_deleted_file_is_recreated_before_the_next_append() {
    let harness = harness(None, None);
    harness.commit.submit(b"a".to_vec(), 1).unwrap();
    harness.commit.flush().unwrap();
    harness.faults.lock().unwrap().detached = true;
    harness.commit.submit(b"b".to_vec(), 2).unwrap();
    harness.commit.flush().unwrap();
    assert_eq!(
        harness.events(),
        vec![
            Event::Append(b"a".to_vec()),
            Event::Durable(vec![1]),
            Event::Rewrite(b"SNAPSHOT".to_vec()),
            Event::Append(b"b".to_vec()),
            Event::Durable(vec![2]),
        ]
    );
}

#[test]
fn an_idle_committer_notices_a_deleted_file() {
    let harness = harness_with(
        GroupCommitConfig {
            min_compaction_bytes: u64::MAX,
            check_interval: Duration::from_millis(10),
            ..GroupCommitConfig::default()
        },
        None,
        None,
    );
    harness.faults.lock().unwrap().detached = true;
    // No lease comes; the periodic check alone recreates the file.
    let deadline = monotonic_now() + Duration::from_secs(10);
    while !harness
        .events()
        .contains(&Event::Rewrite(b"SNAPSHOT".to_vec()))
    {
        assert!(monotonic_now() < deadline, "never recreated");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!harness.faults.lock().unwrap().detached);
}

#[test]
fn compaction_comes_after_the_batch_it_covers() {
    // In the committer's thread (the rewrite of a file that refuses appends).
    let harness = harness_with(
        GroupCommitConfig {
            min_compaction_bytes: u64::MAX,
            background_compaction: false,
            ..GroupCommitConfig::default()
        },
        None,
        None,
    );
    harness.commit.submit(b"r1".to_vec(), 1).unwrap();
    harness.commit.request_compaction().unwrap();
    harness.commit.flush().unwrap();
    harness.commit.submit(b"r2".to_vec(), 2).unwrap();
    harness.commit.shutdown();
    let events = harness.events.lock().unwrap().clone();
    assert_eq!(
        events,
        vec![
            Event::Append(b"r1".to_vec()),
            Event::Durable(vec![1]),
            Event::Rewrite(b"SNAPSHOT".to_vec()),
            Event::Append(b"r2".to_vec()),
            Event::Durable(vec![2]),
        ]
    );
}

/// Issue 14 (no stall while the lease file is rewritten): while a compaction's snapshot is
/// being written, batches go on being appended and acknowledged; the new file is the snapshot
/// followed by what was appended meanwhile, so nothing acknowledged is missing from it.
#[test]
fn appends_go_on_while_a_compaction_is_written_and_it_keeps_them() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let (release, gate) = mpsc::channel();
    let log = FakeLog {
        events: Arc::clone(&events),
        gate: None,
        entered: None,
        faults: Arc::default(),
        appended: 0,
        stage_gate: Some(Arc::new(Mutex::new(gate))),
    };
    let durable_events = Arc::clone(&events);
    let commit = GroupCommit::spawn(
        log,
        GroupCommitConfig {
            min_compaction_bytes: u64::MAX,
            ..GroupCommitConfig::default()
        },
        move |tokens| durable_events.lock().unwrap().push(Event::Durable(tokens)),
        |_| panic!("nothing fails here"),
        |out: &mut Vec<u8>| {
            out.extend_from_slice(b"SNAPSHOT");
            true
        },
    )
    .unwrap();
    commit.submit(b"r1".to_vec(), 1).unwrap();
    commit.request_compaction().unwrap();
    commit.flush().unwrap();
    // The snapshot's write is held up: these are appended and acknowledged meanwhile.
    for index in 2..=4u8 {
        commit
            .submit(vec![b'r', b'0' + index], u32::from(index))
            .unwrap();
        commit.flush().unwrap();
    }
    assert_eq!(commit.stats().snapshot().compactions, 0);
    release.send(()).unwrap();
    commit.settle().unwrap();
    assert_eq!(commit.stats().snapshot().compactions, 1);
    commit.submit(b"r5".to_vec(), 5).unwrap();
    commit.shutdown();
    let events = events.lock().unwrap().clone();
    assert_eq!(
        events,
        vec![
            Event::Append(b"r1".to_vec()),
            Event::Durable(vec![1]),
            Event::Append(b"r2".to_vec()),
            Event::Durable(vec![2]),
            Event::Append(b"r3".to_vec()),
            Event::Durable(vec![3]),
            Event::Append(b"r4".to_vec()),
            Event::Durable(vec![4]),
            Event::Rewrite(b"SNAPSHOTr2r3r4".to_vec()),
            Event::Append(b"r5".to_vec()),
            Event::Durable(vec![5]),
        ]
    );
}

/// A file deleted while a compaction is being written: the committer cannot wait for it (no
/// append can go anywhere); it rewrites at once and the staged compaction is dropped.
#[test]
fn a_deleted_file_during_a_compaction_is_recreated_at_once() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let faults: Arc<Mutex<Faults>> = Arc::default();
    let (release, gate) = mpsc::channel();
    let log = FakeLog {
        events: Arc::clone(&events),
        gate: None,
        entered: None,
        faults: Arc::clone(&faults),
        appended: 0,
        stage_gate: Some(Arc::new(Mutex::new(gate))),
    };
    let commit = GroupCommit::spawn(
        log,
        GroupCommitConfig {
            min_compaction_bytes: u64::MAX,
            ..GroupCommitConfig::default()
        },
        |_: Vec<u32>| {},
        |_| {},
        |out: &mut Vec<u8>| {
            out.extend_from_slice(b"SNAPSHOT");
            true
        },
    )
    .unwrap();
    commit.request_compaction().unwrap();
    commit.flush().unwrap();
    faults.lock().unwrap().detached = true;
    // The abandoned compaction is waited for: let it finish.
    release.send(()).unwrap();
    commit.submit(b"r1".to_vec(), 1).unwrap();
    commit.settle().unwrap();
    commit.shutdown();
    let rewrites: Vec<Event> = events
        .lock()
        .unwrap()
        .iter()
        .filter(|event| matches!(event, Event::Rewrite(_)))
        .cloned()
        .collect();
    assert_eq!(rewrites, vec![Event::Rewrite(b"SNAPSHOT".to_vec())]);
}

#[test]
fn histogram_buckets_are_powers_of_two() {
    assert_eq!(histogram_bucket(1), 0);
    assert_eq!(histogram_bucket(2), 1);
    assert_eq!(histogram_bucket(3), 1);
    assert_eq!(histogram_bucket(64), 6);
    assert_eq!(histogram_bucket(u64::MAX), HISTOGRAM_BUCKETS - 1);
}

/// The real file: records committed before a compaction are in the new file, later ones are
/// appended after it, and everything loads back.
#[test]
fn real_log_rewrite_keeps_everything() {
    use crate::config::model::Config;
    use crate::lease::file::{write_header, write_lease};
    use crate::lease::record::{BindingState, Lease};
    use crate::lease::store::LeaseStore;
    use std::net::Ipv4Addr;

    let directory = std::env::temp_dir().join(format!("xdhcpd-commit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("dhcpd.leases");
    let store = Arc::new(Mutex::new(LeaseStore::new(&Config::default())));
    let snapshot_store = Arc::clone(&store);
    let snapshot = move |out: &mut Vec<u8>| {
        write_header(out);
        for lease in snapshot_store.lock().unwrap().iter() {
            write_lease(lease, out);
        }
        true
    };
    let mut initial = Vec::new();
    write_header(&mut initial);
    let log = LeaseLog::open(&path, &initial).unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let acked_by_callback = Arc::clone(&acked);
    let commit = GroupCommit::spawn(
        log,
        GroupCommitConfig::default(),
        move |tokens: Vec<u8>| acked_by_callback.lock().unwrap().extend(tokens),
        |_| panic!("nothing fails here"),
        snapshot,
    )
    .unwrap();
    let submit = |index: u8| {
        let mut lease = Lease::free(Ipv4Addr::new(10, 1, 0, index));
        lease.binding_state = BindingState::Active;
        lease.next_binding_state = BindingState::Active;
        lease.rewind_binding_state = BindingState::Active;
        lease.ends = 1_795_836_305;
        lease.tstp = lease.ends;
        let mut record = Vec::new();
        write_lease(&lease, &mut record);
        // As the daemon does: store first, then submit.
        store.lock().unwrap().upsert(lease);
        commit.submit(record, index).unwrap();
    };
    for index in 1..=5 {
        submit(index);
    }
    commit.request_compaction().unwrap();
    commit.flush().unwrap();
    for index in 6..=8 {
        submit(index);
    }
    commit.settle().unwrap();
    assert_eq!(*acked.lock().unwrap(), (1..=8).collect::<Vec<u8>>());
    let stats = commit.stats().snapshot();
    assert_eq!(stats.compactions, 1);
    commit.shutdown();
    let mut loaded = LeaseStore::new(&Config::default());
    let rest = loaded.load_path(&path).unwrap();
    assert!(rest.errors.is_empty() && !rest.torn_tail);
    assert_eq!(loaded.len(), 8);
    for lease in store.lock().unwrap().iter() {
        assert_eq!(loaded.get(lease.address), Some(lease));
    }
    std::fs::remove_dir_all(&directory).unwrap();
}

/// The real file deleted while the committer runs: the next batch recreates it from the
/// snapshot, and it holds the leases from before and after.
#[test]
fn real_log_recreates_a_deleted_file() {
    use crate::config::model::Config;
    use crate::lease::file::{write_header, write_lease};
    use crate::lease::record::{BindingState, Lease};
    use crate::lease::store::LeaseStore;
    use std::net::Ipv4Addr;

    let directory =
        std::env::temp_dir().join(format!("xdhcpd-commit-deleted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("dhcpd.leases");
    let store = Arc::new(Mutex::new(LeaseStore::new(&Config::default())));
    let snapshot_store = Arc::clone(&store);
    let mut initial = Vec::new();
    write_header(&mut initial);
    let commit = GroupCommit::spawn(
        LeaseLog::open(&path, &initial).unwrap(),
        GroupCommitConfig::default(),
        |_: Vec<u8>| {},
        |_| panic!("the batch after the deletion must be durable"),
        move |out: &mut Vec<u8>| {
            write_header(out);
            for lease in snapshot_store.lock().unwrap().iter() {
                write_lease(lease, out);
            }
            true
        },
    )
    .unwrap();
    let submit = |index: u8| {
        let mut lease = Lease::free(Ipv4Addr::new(10, 2, 0, index));
        lease.binding_state = BindingState::Active;
        lease.ends = 1_795_836_305;
        let mut record = Vec::new();
        write_lease(&lease, &mut record);
        store.lock().unwrap().upsert(lease);
        commit.submit(record, index).unwrap();
        commit.flush().unwrap();
    };
    submit(1);
    std::fs::remove_file(&path).unwrap();
    submit(2);
    assert!(path.exists());
    let mut loaded = LeaseStore::new(&Config::default());
    loaded.load_path(&path).unwrap();
    assert_eq!(loaded.len(), 2);
    commit.shutdown();
    std::fs::remove_dir_all(&directory).unwrap();
}

#[test]
fn a_commit_waits_only_until_the_interval_since_the_last_one_is_over() {
    let interval = Duration::from_millis(4);
    // After a quiet spell: at once.
    assert_eq!(
        commit_wait(interval, Duration::from_secs(1)),
        Duration::ZERO
    );
    assert_eq!(commit_wait(interval, interval), Duration::ZERO);
    // Under load: until the interval is over.
    assert_eq!(
        commit_wait(interval, Duration::from_millis(1)),
        Duration::from_millis(3)
    );
    // Off.
    assert_eq!(commit_wait(Duration::ZERO, Duration::ZERO), Duration::ZERO);
}

#[test]
fn records_arriving_within_the_interval_share_one_fsync() {
    let harness = harness_with(
        GroupCommitConfig {
            min_compaction_bytes: u64::MAX,
            commit_interval: Duration::from_millis(200),
            ..GroupCommitConfig::default()
        },
        None,
        None,
    );
    // The first record after a quiet spell is committed at once…
    harness.commit.submit(b"1".to_vec(), 1).unwrap();
    let mut polls = 0;
    while harness.commit.stats().snapshot().batches == 0 {
        polls += 1;
        assert!(polls < 5_000, "the first record was never committed");
        std::thread::sleep(Duration::from_millis(1));
    }
    // …the ten that follow within the interval wait for it to end and share one commit.
    for token in 2..=11 {
        harness
            .commit
            .submit(token.to_string().into_bytes(), token)
            .unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    harness.commit.flush().unwrap();
    let stats = harness.commit.stats().snapshot();
    assert_eq!((stats.batches, stats.records, stats.max_batch), (2, 11, 10));
}
