//! dhcpd.leases: the reader ([`parse`], [`read_path`]), the writer ([`write`]) and the `-T`
//! check ([`check`]) (docs/spec/dhcpd-conf.md §8).
//!
//! The reader follows ISC's `lease_file_subparse` / `parse_lease_declaration`: a statement it
//! cannot parse is recorded as an error and skipped, and the rest of the file still loads
//! (§8.3: dhcpd starts anyway). A final statement cut short by the end of the file is what a
//! crash in the middle of an append leaves behind; it is dropped and flagged as a torn tail, not
//! reported as an error.

pub mod date;
mod fast;
mod grammar;
mod parse;
mod tokens;
pub mod write;

use std::collections::HashMap;
use std::io::Read;
use std::net::Ipv4Addr;
use std::path::Path;

use crate::lease::record::{Hardware, Lease, UnixTime};

pub use parse::{parse_chunk, ChunkOutcome};
pub use write::{
    write_failover_state, write_file, write_group, write_header, write_host, write_lease,
    write_lease_with, write_server_duid, FileFormat, IdFormat,
};

/// Failover states as the lease file names them (docs/spec/dhcpd-conf.md §8.6, docs/spec/failover.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerState {
    UnknownState,
    PartnerDown,
    Normal,
    CommunicationsInterrupted,
    ConflictDone,
    ResolutionInterrupted,
    PotentialConflict,
    Recover,
    RecoverWait,
    RecoverDone,
    Shutdown,
    Paused,
    Startup,
}

impl PeerState {
    const WORDS: [(PeerState, &'static str); 13] = [
        (PeerState::UnknownState, "unknown-state"),
        (PeerState::PartnerDown, "partner-down"),
        (PeerState::Normal, "normal"),
        (
            PeerState::CommunicationsInterrupted,
            "communications-interrupted",
        ),
        (PeerState::ConflictDone, "conflict-done"),
        (PeerState::ResolutionInterrupted, "resolution-interrupted"),
        (PeerState::PotentialConflict, "potential-conflict"),
        (PeerState::Recover, "recover"),
        (PeerState::RecoverWait, "recover-wait"),
        (PeerState::RecoverDone, "recover-done"),
        (PeerState::Shutdown, "shutdown"),
        (PeerState::Paused, "paused"),
        (PeerState::Startup, "startup"),
    ];

    /// The word the lease file uses.
    pub fn as_str(self) -> &'static str {
        Self::WORDS
            .iter()
            .find(|(state, _)| *state == self)
            .map_or("unknown-state", |(_, word)| word)
    }

    pub fn from_word(word: &str) -> Option<Self> {
        Self::WORDS
            .iter()
            .find(|(_, known)| known.eq_ignore_ascii_case(word))
            .map(|(state, _)| *state)
    }
}

/// `failover peer "NAME" state { … }` (docs/spec/dhcpd-conf.md §8.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailoverStateRecord {
    pub peer: String,
    pub my_state: Option<PeerState>,
    /// `None` when `at DATE` was omitted: the state holds since "now" (the admin's way to force
    /// partner-down while the server is stopped).
    pub my_time: Option<UnixTime>,
    pub partner_state: Option<PeerState>,
    pub partner_time: Option<UnixTime>,
    /// Written by a secondary only.
    pub mclt: Option<u32>,
}

/// `host NAME { … }` persisted by OMAPI (docs/spec/dhcpd-conf.md §8.5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostRecord {
    pub name: String,
    pub dynamic: bool,
    /// A rubout: hides an earlier (or dhcpd.conf) host of the same name.
    pub deleted: bool,
    pub hardware: Option<Hardware>,
    pub uid: Option<Vec<u8>>,
    pub fixed_addresses: Vec<Ipv4Addr>,
    pub group: Option<String>,
    /// Every other statement, in ISC's canonical text, without indentation or newline.
    pub statements: Vec<String>,
}

/// `group NAME { … }` persisted by OMAPI (docs/spec/dhcpd-conf.md §8.5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupRecord {
    pub name: String,
    pub dynamic: bool,
    pub static_: bool,
    pub deleted: bool,
    pub statements: Vec<String>,
}

/// A statement the reader could not use: 1-based line and column, and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseFileError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// Everything a lease file holds, with later records already winning over earlier ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseFile {
    /// One lease per address, the last record of each address, in order of first appearance.
    pub leases: Vec<Lease>,
    /// The last record of each peer.
    pub failover_states: Vec<FailoverStateRecord>,
    /// The last record of each host name (rubouts included).
    pub hosts: Vec<HostRecord>,
    /// The last record of each group name.
    pub groups: Vec<GroupRecord>,
    pub server_duid: Option<Vec<u8>>,
    pub errors: Vec<LeaseFileError>,
    /// The file ended in the middle of a statement (a crash while appending); that statement was
    /// dropped.
    pub torn_tail: bool,
}

/// Where the reader delivers complete records, in file order.
pub trait RecordSink {
    fn lease(&mut self, lease: Lease);
    fn failover_state(&mut self, record: FailoverStateRecord);
    fn host(&mut self, record: HostRecord);
    fn group(&mut self, record: GroupRecord);
    fn server_duid(&mut self, duid: Vec<u8>);
}

/// Collects records into a [`LeaseFile`], the last record of each key winning.
#[derive(Default)]
pub struct Collector {
    file: LeaseFile,
    lease_index: HashMap<Ipv4Addr, usize>,
}

impl Collector {
    pub fn finish(self) -> LeaseFile {
        self.file
    }
}

fn replace_or_push<T>(records: &mut Vec<T>, record: T, same: impl Fn(&T) -> bool) {
    match records.iter_mut().find(|existing| same(existing)) {
        Some(existing) => *existing = record,
        None => records.push(record),
    }
}

impl RecordSink for Collector {
    fn lease(&mut self, lease: Lease) {
        match self.lease_index.get(&lease.address) {
            Some(&index) => self.file.leases[index] = lease,
            None => {
                self.lease_index
                    .insert(lease.address, self.file.leases.len());
                self.file.leases.push(lease);
            }
        }
    }

    fn failover_state(&mut self, record: FailoverStateRecord) {
        let peer = record.peer.clone();
        replace_or_push(&mut self.file.failover_states, record, |old| {
            old.peer == peer
        });
    }

    fn host(&mut self, record: HostRecord) {
        let name = record.name.clone();
        replace_or_push(&mut self.file.hosts, record, |old| old.name == name);
    }

    fn group(&mut self, record: GroupRecord) {
        let name = record.name.clone();
        replace_or_push(&mut self.file.groups, record, |old| old.name == name);
    }

    fn server_duid(&mut self, duid: Vec<u8>) {
        self.file.server_duid = Some(duid);
    }
}

/// Reads a whole lease file held in memory. `file_name` is for the caller's diagnostics only.
pub fn parse(bytes: &[u8], file_name: &str) -> LeaseFile {
    let _ = file_name;
    let mut collector = Collector::default();
    let outcome = parse_chunk(bytes, 0, true, &mut collector);
    let mut file = collector.finish();
    file.errors = outcome.errors;
    file.torn_tail = outcome.torn;
    file
}

/// What [`read_path`] found besides the records it delivered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadSummary {
    pub errors: Vec<LeaseFileError>,
    pub torn_tail: bool,
    pub bytes: u64,
}

/// Size of one read: large enough to amortise the syscalls, small enough that a 1 M-lease file
/// never sits in memory whole.
const CHUNK: usize = 4 << 20;

/// Streams the lease file at `path`: each lease to `lease` (as it is read, the last record of an
/// address coming last), the other records collected; returns those in a [`LeaseFile`] without
/// leases, with the read's errors and torn-tail flag. What a store loading from disk needs.
///
/// Reading and parsing run on a thread of their own while the caller's `lease` runs on the
/// calling thread, leases passing between them in batches through a bounded channel (in file
/// order): a store's inserts (hash tables, queues) cost about as much as the parse, so start-up
/// with a million leases takes the longer of the two instead of their sum.
pub fn read_leases_into(path: &Path, mut lease: impl FnMut(Lease)) -> std::io::Result<LeaseFile> {
    /// Leases per batch: large enough that the channel costs nothing per lease, small enough
    /// that the two threads overlap from the first megabyte.
    const BATCH: usize = 2048;
    /// Batches in flight: bounds the memory the parser can run ahead by.
    const IN_FLIGHT: usize = 8;

    struct Sink {
        batch: Vec<Lease>,
        batches: std::sync::mpsc::SyncSender<Vec<Lease>>,
        rest: Collector,
    }
    impl Sink {
        fn flush(&mut self) {
            if !self.batch.is_empty() {
                let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
                // The receiver lives until this thread is joined; a send fails only if it
                // panicked, and then the scope re-raises that panic.
                let _ = self.batches.send(batch);
            }
        }
    }
    impl RecordSink for Sink {
        fn lease(&mut self, lease: Lease) {
            self.batch.push(lease);
            if self.batch.len() == BATCH {
                self.flush();
            }
        }
        fn failover_state(&mut self, record: FailoverStateRecord) {
            self.rest.failover_state(record);
        }
        fn host(&mut self, record: HostRecord) {
            self.rest.host(record);
        }
        fn group(&mut self, record: GroupRecord) {
            self.rest.group(record);
        }
        fn server_duid(&mut self, duid: Vec<u8>) {
            self.rest.server_duid(duid);
        }
    }

    let (batches, received) = std::sync::mpsc::sync_channel(IN_FLIGHT);
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("lease-file-read".into())
            .spawn_scoped(scope, move || {
                let mut sink = Sink {
                    batch: Vec::with_capacity(BATCH),
                    batches,
                    rest: Collector::default(),
                };
                let summary = read_path(path, &mut sink);
                sink.flush();
                summary.map(|summary| (summary, sink.rest))
            })?;
        for batch in received {
            batch.into_iter().for_each(&mut lease);
        }
        let (summary, rest) = match reader.join() {
            Ok(result) => result?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let mut file = rest.finish();
        file.errors = summary.errors;
        file.torn_tail = summary.torn_tail;
        Ok(file)
    })
}

/// Streams a lease file from disk into `sink`, a few megabytes at a time, so that loading a
/// million leases does not first hold the whole file in memory.
pub fn read_path(path: &Path, sink: &mut impl RecordSink) -> std::io::Result<ReadSummary> {
    let mut file = std::fs::File::open(path)?;
    let mut buffer: Vec<u8> = Vec::with_capacity(CHUNK * 2);
    let mut summary = ReadSummary::default();
    let mut line_base = 0u32;
    let mut end_of_file = false;
    loop {
        // Fill up to one more chunk.
        let target = buffer.len() + CHUNK;
        while buffer.len() < target {
            let start = buffer.len();
            buffer.resize(target, 0);
            let read = loop {
                match file.read(&mut buffer[start..]) {
                    Ok(read) => break read,
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(error) => return Err(error),
                }
            };
            buffer.truncate(start + read);
            summary.bytes += read as u64;
            if read == 0 {
                end_of_file = true;
                break;
            }
        }
        // Only whole lines go to the parser, so that no token or comment is cut in two.
        let cut = if end_of_file {
            buffer.len()
        } else {
            match buffer.iter().rposition(|&byte| byte == b'\n') {
                Some(position) => position + 1,
                None => continue,
            }
        };
        let outcome = parse_chunk(&buffer[..cut], line_base, end_of_file, sink);
        summary.errors.extend(outcome.errors);
        if end_of_file {
            summary.torn_tail = outcome.torn;
            return Ok(summary);
        }
        let consumed = outcome.consumed;
        line_base += buffer[..consumed]
            .iter()
            .filter(|&&byte| byte == b'\n')
            .count() as u32;
        buffer.drain(..consumed);
    }
}

/// Why `xdhcpd -T -lf FILE` fails.
#[derive(Debug, thiserror::Error)]
pub enum LeaseCheckError {
    #[error("cannot read lease file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// One `file:line:column: message` line per error.
    #[error("{report}")]
    Invalid { report: String, count: usize },
}

/// `xdhcpd -T -lf FILE`: reads the file and reports every statement the reader had to skip.
/// A torn tail is not an error (it is what crash recovery expects to find).
pub fn check(path: &Path) -> Result<ReadSummary, LeaseCheckError> {
    let name = path.display().to_string();
    let mut collector = Collector::default();
    let summary = read_path(path, &mut collector).map_err(|source| LeaseCheckError::Io {
        path: name.clone(),
        source,
    })?;
    if summary.errors.is_empty() {
        return Ok(summary);
    }
    let report = summary
        .errors
        .iter()
        .map(|error| format!("{name}:{}:{}: {}", error.line, error.column, error.message))
        .collect::<Vec<_>>()
        .join("\n");
    Err(LeaseCheckError::Invalid {
        report,
        count: summary.errors.len(),
    })
}

/// Writes a dhcpd.leases of `count` active leases in 10.0.0.0/8 (hardware for all, a client
/// identifier for every second, a host name for every fourth) — the input of `cargo xtask bench
/// leases` and of the load benchmarks.
pub fn generate_example(count: u32, writer: &mut impl std::io::Write) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(64 << 10);
    write_header(&mut out);
    let base = u32::from(Ipv4Addr::new(10, 0, 0, 1));
    for index in 0..count {
        let starts: UnixTime = 1_795_836_305 + index % 3600;
        let mut lease = Lease::free(Ipv4Addr::from(base.wrapping_add(index)));
        lease.starts = starts;
        lease.ends = starts + 86_400;
        lease.cltt = starts;
        lease.binding_state = crate::lease::record::BindingState::Active;
        lease.next_binding_state = crate::lease::record::BindingState::Free;
        let mac = [
            0x02,
            0x00,
            (index >> 24) as u8,
            (index >> 16) as u8,
            (index >> 8) as u8,
            index as u8,
        ];
        lease.hardware = Hardware::new(1, &mac);
        if index % 2 == 0 {
            let mut uid = vec![1];
            uid.extend_from_slice(&mac);
            lease.set_uid(Some(&uid));
        }
        if index % 4 == 0 {
            lease.set_client_hostname(Some(&format!("host-{index}")));
        }
        write_lease(&lease, &mut out);
        if out.len() >= 60 << 10 {
            writer.write_all(&out)?;
            out.clear();
        }
    }
    writer.write_all(&out)
}

#[cfg(test)]
mod tests;
