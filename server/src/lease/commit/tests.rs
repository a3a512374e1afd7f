//! Group commit tests: ordering of write, fsync and callback, batching, failures, compaction.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::*;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    /// A batch written and fsynced.
    Append(Vec<u8>),
    Rewrite(Vec<u8>),
    Durable(Vec<u32>),
}

/// A log that records what happens, can block an append until released, and can fail.
struct FakeLog {
    events: Arc<Mutex<Vec<Event>>>,
    gate: Option<mpsc::Receiver<()>>,
    /// Told when an append starts waiting at the gate.
    entered: Option<mpsc::Sender<()>>,
    fail_next: Arc<Mutex<bool>>,
    damaged: bool,
    appended: u64,
}

impl LogFile for FakeLog {
    fn append(&mut self, records: &[u8]) -> Result<(), LeaseLogError> {
        if let Some(gate) = self.gate.take() {
            if let Some(entered) = self.entered.take() {
                let _ = entered.send(());
            }
            let _ = gate.recv();
        }
        if std::mem::take(&mut *self.fail_next.lock().unwrap()) {
            self.damaged = true;
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
        self.damaged = false;
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
        self.damaged
    }
}

struct Harness {
    commit: GroupCommit<u32>,
    events: Arc<Mutex<Vec<Event>>>,
    fail_next: Arc<Mutex<bool>>,
}

fn harness(gate: Option<mpsc::Receiver<()>>, entered: Option<mpsc::Sender<()>>) -> Harness {
    let events = Arc::new(Mutex::new(Vec::new()));
    let fail_next = Arc::new(Mutex::new(false));
    let log = FakeLog {
        events: Arc::clone(&events),
        gate,
        entered,
        fail_next: Arc::clone(&fail_next),
        damaged: false,
        appended: 0,
    };
    let durable_events = Arc::clone(&events);
    let commit = GroupCommit::spawn(
        log,
        GroupCommitConfig {
            min_compaction_bytes: u64::MAX,
            ..GroupCommitConfig::default()
        },
        move |tokens| durable_events.lock().unwrap().push(Event::Durable(tokens)),
        |out: &mut Vec<u8>| out.extend_from_slice(b"SNAPSHOT"),
    )
    .unwrap();
    Harness {
        commit,
        events,
        fail_next,
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
            Event::Rewrite(_) => {}
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
    *harness.fail_next.lock().unwrap() = true;
    harness.commit.submit(b"x".to_vec(), 7).unwrap();
    harness.commit.flush().unwrap();
    harness.commit.submit(b"y".to_vec(), 8).unwrap();
    harness.commit.flush().unwrap();
    let events = harness.events.lock().unwrap().clone();
    // The failed batch left the file damaged: a rewrite from the snapshot comes first.
    assert_eq!(
        events,
        vec![
            Event::Rewrite(b"SNAPSHOT".to_vec()),
            Event::Append(b"y".to_vec()),
            Event::Durable(vec![8]),
        ]
    );
    let stats = harness.commit.stats().snapshot();
    assert_eq!((stats.failed_batches, stats.dropped_records), (1, 1));
}

#[test]
fn compaction_comes_after_the_batch_it_covers() {
    let harness = harness(None, None);
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
    commit.flush().unwrap();
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
