//! Following ISC dhcpd's lease file as ISC writes it (dhcpd.leases(5)): ISC appends one record
//! per change (server/db.c `write_lease`, then `commit_leases` flushes), and now and then
//! rewrites the whole file as `dhcpd.leases.new`, renamed over `dhcpd.leases` (db.c
//! `new_lease_file`). The follower reads what was appended since its last look, hands over the
//! complete records only (a record ISC is still writing waits for its end), and starts again
//! from the beginning when the file was replaced (another inode) or shrank.
//!
//! The file is only ever opened for reading. The decisions ([`FollowState`], [`next_read`]) are
//! plain functions of what `stat` and `read` returned, unit-tested without files; [`Follower`]
//! is the thin part that does the I/O.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use crate::lease::file::{
    parse_chunk, FailoverStateRecord, GroupRecord, HostRecord, LeaseFileError, RecordSink,
};
use crate::lease::record::Lease;

/// Which file a path names: a rename over the path gives another identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileIdentity {
    pub device: u64,
    pub inode: u64,
}

/// What to do after a `stat` of the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextRead {
    /// The same file, grown or not: read from this offset.
    From(u64),
    /// Another file (ISC's rewrite renamed over it) or a shorter one: read it all again.
    Restart,
}

/// Where to read next, given the file followed so far (`known`, `offset` bytes read) and what
/// the path names now.
pub fn next_read(
    known: Option<FileIdentity>,
    offset: u64,
    now: FileIdentity,
    size: u64,
) -> NextRead {
    match known {
        Some(known) if known == now && size >= offset => NextRead::From(offset),
        _ => NextRead::Restart,
    }
}

/// The bytes read but not yet parsed: the tail of a record ISC is still writing.
#[derive(Debug, Default)]
pub struct FollowState {
    pending: Vec<u8>,
    /// Lines before `pending`, for the parser's error positions.
    line_base: u32,
}

impl FollowState {
    /// Parses the complete records of `pending` + `bytes` into `sink` and keeps the rest;
    /// returns the errors of the statements that ended. Only whole lines reach the parser (no
    /// token is cut in two), and of those only whole top-level statements are consumed.
    pub fn feed(&mut self, bytes: &[u8], sink: &mut impl RecordSink) -> Vec<LeaseFileError> {
        self.pending.extend_from_slice(bytes);
        let Some(last_newline) = self.pending.iter().rposition(|&byte| byte == b'\n') else {
            return Vec::new();
        };
        let outcome = parse_chunk(&self.pending[..=last_newline], self.line_base, false, sink);
        let consumed = outcome.consumed.min(last_newline + 1);
        self.line_base += self.pending[..consumed]
            .iter()
            .filter(|&&byte| byte == b'\n')
            .count() as u32;
        self.pending.drain(..consumed);
        outcome.errors
    }

    /// Bytes waiting for the rest of their record.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// The leases and hosts (OMAPI's, which ISC keeps in its lease file) of the records read, in
/// file order; the other records (failover states, groups) are not used by the comparison.
#[derive(Default)]
pub struct LeaseRecords(pub Vec<Lease>, pub Vec<HostRecord>);

impl RecordSink for LeaseRecords {
    fn lease(&mut self, lease: Lease) {
        self.0.push(lease);
    }
    fn failover_state(&mut self, _: FailoverStateRecord) {}
    fn host(&mut self, record: HostRecord) {
        self.1.push(record);
    }
    fn group(&mut self, _: GroupRecord) {}
    fn server_duid(&mut self, _: Vec<u8>) {}
}

/// What one look at the file found.
#[derive(Debug, Default)]
pub struct Followed {
    pub leases: Vec<Lease>,
    pub hosts: Vec<HostRecord>,
    /// The file was read from its start again (first look, or ISC rewrote it).
    pub restarted: bool,
    /// Bytes read by this look.
    pub bytes: usize,
    pub errors: Vec<LeaseFileError>,
}

/// Follows one lease file, read-only.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    identity: Option<FileIdentity>,
    offset: u64,
    state: FollowState,
}

/// At most this much is read per look, so one look never holds a huge file in memory at once
/// (a first read of a large file takes several looks).
const READ_LIMIT: u64 = 16 << 20;

impl Follower {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            identity: None,
            offset: 0,
            state: FollowState::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what was appended since the last look (or everything, after a rewrite).
    pub fn poll(&mut self) -> std::io::Result<Followed> {
        let mut file = std::fs::File::open(&self.path)?;
        let metadata = file.metadata()?;
        let now = FileIdentity {
            device: metadata.dev(),
            inode: metadata.ino(),
        };
        let mut followed = Followed::default();
        match next_read(self.identity, self.offset, now, metadata.len()) {
            NextRead::From(offset) if offset == metadata.len() => return Ok(followed),
            NextRead::From(_) => {}
            NextRead::Restart => {
                self.identity = Some(now);
                self.offset = 0;
                self.state = FollowState::default();
                followed.restarted = true;
            }
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        (&mut file).take(READ_LIMIT).read_to_end(&mut bytes)?;
        self.offset += bytes.len() as u64;
        followed.bytes = bytes.len();
        let mut records = LeaseRecords::default();
        followed.errors = self.state.feed(&bytes, &mut records);
        followed.leases = records.0;
        followed.hosts = records.1;
        Ok(followed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE_A: &str = "lease 10.0.0.10 {\n  starts 4 2026/12/03 10:00:00;\n  ends 4 2026/12/03 11:00:00;\n  binding state active;\n  next binding state free;\n  hardware ethernet 02:00:00:00:00:0a;\n}\n";
    const LEASE_B: &str = "lease 10.0.0.11 {\n  starts 4 2026/12/03 10:00:00;\n  ends 4 2026/12/03 11:00:00;\n  binding state active;\n  next binding state free;\n  hardware ethernet 02:00:00:00:00:0b;\n}\n";

    fn addresses(records: &LeaseRecords) -> Vec<String> {
        records
            .0
            .iter()
            .map(|lease| lease.address.to_string())
            .collect()
    }

    #[test]
    fn appended_records_are_read_once() {
        let mut state = FollowState::default();
        let mut records = LeaseRecords::default();
        assert!(state.feed(LEASE_A.as_bytes(), &mut records).is_empty());
        assert_eq!(addresses(&records), ["10.0.0.10"]);
        let mut more = LeaseRecords::default();
        state.feed(LEASE_B.as_bytes(), &mut more);
        assert_eq!(addresses(&more), ["10.0.0.11"]);
        assert_eq!(state.pending(), 0);
    }

    #[test]
    fn a_partial_record_waits_for_its_end() {
        let mut state = FollowState::default();
        let mut records = LeaseRecords::default();
        // Cut inside a line, then after a whole line, then the rest.
        let (first, rest) = LEASE_A.split_at(30);
        let (second, third) = rest.split_at(40);
        for part in [first, second] {
            let errors = state.feed(part.as_bytes(), &mut records);
            assert!(errors.is_empty(), "{errors:?}");
            assert!(records.0.is_empty());
        }
        state.feed(third.as_bytes(), &mut records);
        assert_eq!(addresses(&records), ["10.0.0.10"]);
        assert_eq!(
            records.0[0].hardware.map(|h| h.address().to_vec()),
            Some(vec![2, 0, 0, 0, 0, 10])
        );
        assert_eq!(state.pending(), 0);
    }

    #[test]
    fn a_rewrite_or_a_shorter_file_is_read_again() {
        let file = FileIdentity {
            device: 1,
            inode: 7,
        };
        assert_eq!(next_read(None, 0, file, 100), NextRead::Restart);
        assert_eq!(next_read(Some(file), 60, file, 100), NextRead::From(60));
        assert_eq!(next_read(Some(file), 100, file, 100), NextRead::From(100));
        // dhcpd.leases.new renamed over the path: another inode.
        let renamed = FileIdentity {
            device: 1,
            inode: 8,
        };
        assert_eq!(next_read(Some(file), 60, renamed, 500), NextRead::Restart);
        // Truncated in place.
        assert_eq!(next_read(Some(file), 60, file, 10), NextRead::Restart);
    }

    #[test]
    fn follows_a_file_through_appends_and_a_rename() {
        let dir = std::env::temp_dir().join(format!("xdhcpd-follow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dhcpd.leases");
        std::fs::write(&path, LEASE_A).unwrap();
        let mut follower = Follower::new(&path);
        let first = follower.poll().unwrap();
        assert!(first.restarted);
        assert_eq!(first.leases.len(), 1);
        assert!(follower.poll().unwrap().leases.is_empty());
        // ISC appends half a record, then the rest.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        use std::io::Write as _;
        file.write_all(&LEASE_B.as_bytes()[..50]).unwrap();
        assert!(follower.poll().unwrap().leases.is_empty());
        file.write_all(&LEASE_B.as_bytes()[50..]).unwrap();
        let appended = follower.poll().unwrap();
        assert!(!appended.restarted);
        assert_eq!(appended.leases[0].address.to_string(), "10.0.0.11");
        // ISC's rewrite: dhcpd.leases.new renamed over dhcpd.leases.
        let new = dir.join("dhcpd.leases.new");
        std::fs::write(&new, format!("{LEASE_B}{LEASE_A}")).unwrap();
        std::fs::rename(&new, &path).unwrap();
        let rewritten = follower.poll().unwrap();
        assert!(rewritten.restarted);
        assert_eq!(rewritten.leases.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
