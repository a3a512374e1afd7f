//! The durable dhcpd.leases log (docs/spec/dhcpd-conf.md §8.3): a compact file written atomically, then
//! records appended with one `write` and one `fdatasync` per batch.
//!
//! A rewrite follows ISC's `new_lease_file` but never leaves a moment without a lease file:
//! write `<file>.new` and fsync it, hard-link the current file to `<file>~`, rename the new file
//! over the current one, fsync the directory. A rewrite that fails removes `<file>.new` (as ISC
//! does), so that a full disk is not made fuller by the attempt: the appends need that space.
//!
//! Beyond ISC: a lease file deleted or replaced while in use (an operator's `rm`) is noticed
//! before each append ([`LeaseLog::is_detached`]): ISC and a naive writer keep appending into
//! the unlinked inode and lose every lease at the next start. The log refuses to append there,
//! and the committer recreates the file from memory.

pub mod pacing;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What went wrong with the lease file; the path says which file.
#[derive(Debug, thiserror::Error)]
pub enum LeaseLogError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An earlier append failed part-way and the file could not be cut back; only a rewrite
    /// makes it usable again.
    #[error("lease file {path} needs a rewrite after a failed append")]
    NeedsRewrite { path: PathBuf },
    /// The path no longer names the open file (deleted, or replaced by another file): what is
    /// appended would not be read at the next start.
    #[error("lease file {path} was deleted or replaced while in use")]
    Detached { path: PathBuf },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LeaseLogError {
    let path = path.to_path_buf();
    move |source| LeaseLogError::Io {
        action,
        path,
        source,
    }
}

/// The open lease file.
#[derive(Debug)]
pub struct LeaseLog {
    path: PathBuf,
    file: File,
    /// Bytes known durable.
    length: u64,
    /// Length of the last compact file.
    compact_length: u64,
    /// An append failed; bytes past `length` may be garbage.
    damaged: bool,
    /// Appends are refused until a rewrite: the garbage could not be cut off, or the file was
    /// deleted or replaced.
    unusable: bool,
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Writes `contents` as `path` atomically and returns the new file, open for appending.
fn replace_file(path: &Path, contents: &[u8]) -> Result<File, LeaseLogError> {
    let temporary = sibling(path, ".new");
    let result = write_and_install(path, &temporary, contents);
    if result.is_err() {
        // Whatever part was written would hold space the appends need (ISC's `new_lease_file`
        // unlinks it too). Gone already after a successful rename, hence no error here.
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

fn write_and_install(
    path: &Path,
    temporary: &Path,
    contents: &[u8],
) -> Result<File, LeaseLogError> {
    let file = write_staged(temporary, contents)?;
    put_in_place(path, temporary)?;
    Ok(file)
}

/// Creates `temporary` with `contents`, durably.
fn write_staged(temporary: &Path, contents: &[u8]) -> Result<File, LeaseLogError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(temporary)
        .map_err(io_error("create", temporary))?;
    file.write_all(contents)
        .map_err(io_error("write", temporary))?;
    file.sync_all().map_err(io_error("fsync", temporary))?;
    Ok(file)
}

/// Keeps the current file as `<file>~` and renames the durable `temporary` over it.
fn put_in_place(path: &Path, temporary: &Path) -> Result<(), LeaseLogError> {
    // Keep the previous file as `<file>~`, as ISC does; a missing previous file is fine.
    let backup = sibling(path, "~");
    // The previous backup is freed in the background, a step at a time (`pacing::retire`):
    // held open here, its unlink frees nothing yet.
    let previous_backup = File::options().write(true).open(&backup).ok();
    match std::fs::remove_file(&backup) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error("remove", &backup)(error)),
    }
    match std::fs::hard_link(path, &backup) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => tracing::warn!(
            "cannot keep {} as {}: {error}",
            path.display(),
            backup.display()
        ),
    }
    std::fs::rename(temporary, path).map_err(io_error("rename", temporary))?;
    // The rename is durable only once the directory is.
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory)
        .and_then(|directory| directory.sync_all())
        .map_err(io_error("fsync directory of", path))?;
    if let Some(file) = previous_backup {
        pacing::retire(file);
    }
    Ok(())
}

/// A compaction written to `<file>.new` and made durable on the compaction thread, waiting
/// to be put in place ([`LeaseLog::install`]). Dropped without being installed, it removes
/// its file: a partial or abandoned one would hold space the appends need.
#[derive(Debug)]
pub struct StagedRewrite {
    file: File,
    temporary: PathBuf,
    length: u64,
    installed: bool,
}

impl StagedRewrite {
    /// Writes `snapshot` to `<path>.new` durably, without touching `path`.
    ///
    /// Written and synced a megabyte at a time, at a bounded rate (`pacing`): hundreds of
    /// megabytes of dirty pages synced at once fill the device's queue, and the appends'
    /// `fdatasync` — which the replies wait for — would queue behind them for as long.
    pub fn write(path: &Path, snapshot: &[u8]) -> Result<Self, LeaseLogError> {
        let temporary = sibling(path, ".new");
        let written = write_staged(&temporary, &[]).and_then(|mut file| {
            let mut pacer = pacing::Pacer::new(pacing::REWRITE_BYTES_PER_SECOND);
            for piece in snapshot.chunks(pacing::PIECE) {
                file.write_all(piece)
                    .map_err(io_error("write", &temporary))?;
                file.sync_data().map_err(io_error("fsync", &temporary))?;
                pacer.wrote(piece.len());
            }
            file.sync_all().map_err(io_error("fsync", &temporary))?;
            Ok(file)
        });
        match written {
            Ok(file) => Ok(Self {
                file,
                temporary,
                length: snapshot.len() as u64,
                installed: false,
            }),
            Err(error) => {
                let _ = std::fs::remove_file(&temporary);
                Err(error)
            }
        }
    }
}

impl Drop for StagedRewrite {
    fn drop(&mut self) {
        if !self.installed {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

impl LeaseLog {
    /// Replaces `path` with `snapshot` (the store as just loaded, header included) and opens it
    /// for appending.
    pub fn open(path: &Path, snapshot: &[u8]) -> Result<Self, LeaseLogError> {
        let file = replace_file(path, snapshot)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            length: snapshot.len() as u64,
            compact_length: snapshot.len() as u64,
            damaged: false,
            unusable: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes appended since the last rewrite.
    pub fn appended_bytes(&self) -> u64 {
        self.length - self.compact_length
    }

    /// Size of the last compact file.
    pub fn compact_bytes(&self) -> u64 {
        self.compact_length
    }

    /// True when appends are refused until a rewrite: a failed append's tail could not be cut
    /// off, or the file was deleted or replaced.
    pub fn needs_rewrite(&self) -> bool {
        self.unusable
    }

    /// True when the path no longer names the open file: deleted (no link left) or replaced by
    /// another one. Two `stat` calls, cheap enough for every batch.
    pub fn is_detached(&self) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        let Ok(open) = self.file.metadata() else {
            return false;
        };
        if open.nlink() == 0 {
            return true;
        }
        match std::fs::metadata(&self.path) {
            Ok(named) => (named.dev(), named.ino()) != (open.dev(), open.ino()),
            Err(error) => error.kind() == std::io::ErrorKind::NotFound,
        }
    }

    /// Appends a batch of formatted records with one write and one `fdatasync`. On error
    /// nothing of the batch may be counted as durable.
    pub fn append(&mut self, records: &[u8]) -> Result<(), LeaseLogError> {
        let detached = self.is_detached();
        if self.unusable || detached {
            self.unusable = true;
            return Err(if detached {
                LeaseLogError::Detached {
                    path: self.path.clone(),
                }
            } else {
                LeaseLogError::NeedsRewrite {
                    path: self.path.clone(),
                }
            });
        }
        if self.damaged {
            // Cut off whatever a failed append left, or give up until a rewrite.
            if self.file.set_len(self.length).is_err() {
                self.unusable = true;
                return Err(LeaseLogError::NeedsRewrite {
                    path: self.path.clone(),
                });
            }
            self.damaged = false;
        }
        let result = self
            .file
            .write_all(records)
            .map_err(io_error("append to", &self.path))
            .and_then(|()| self.file.sync_data().map_err(io_error("fsync", &self.path)));
        match result {
            Ok(()) => {
                self.length += records.len() as u64;
                Ok(())
            }
            Err(error) => {
                // After a failed fsync the page cache cannot be trusted (a retried fsync may
                // "succeed" without the data): treat the tail as garbage.
                self.damaged = true;
                Err(error)
            }
        }
    }

    /// Opens the lease file just read, as it is, for appending (no rewrite at start-up: the
    /// committer compacts it in the background). For a file the reader found whole: a torn
    /// tail must be rewritten away first ([`LeaseLog::open`]).
    pub fn open_existing(path: &Path) -> Result<Self, LeaseLogError> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io_error("open", path))?;
        let length = file.metadata().map_err(io_error("stat", path))?.len();
        // A file just copied or written by a tool may still be hundreds of MB of dirty page
        // cache: its writeback belongs to start-up, not to the first group commit's fsync,
        // which would hold the first ACKs for all of it (fsync(2) flushes the whole file).
        file.sync_data().map_err(io_error("fsync", path))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            length,
            compact_length: length,
            damaged: false,
            unusable: false,
        })
    }

    /// Puts a staged compaction in place: `tail` (what was appended here since its snapshot
    /// was taken) is appended to it and made durable first, so that nothing durable in the
    /// current file is missing from the new one.
    pub fn install(&mut self, mut staged: StagedRewrite, tail: &[u8]) -> Result<(), LeaseLogError> {
        staged
            .file
            .write_all(tail)
            .map_err(io_error("write", &staged.temporary))?;
        staged
            .file
            .sync_data()
            .map_err(io_error("fsync", &staged.temporary))?;
        put_in_place(&self.path, &staged.temporary)?;
        staged.installed = true;
        let file = staged
            .file
            .try_clone()
            .map_err(io_error("reopen", &self.path))?;
        self.file = file;
        self.compact_length = staged.length;
        self.length = staged.length + tail.len() as u64;
        self.damaged = false;
        self.unusable = false;
        Ok(())
    }

    /// Replaces the file with a compact `snapshot` atomically.
    pub fn rewrite(&mut self, snapshot: &[u8]) -> Result<(), LeaseLogError> {
        self.file = replace_file(&self.path, snapshot)?;
        self.length = snapshot.len() as u64;
        self.compact_length = self.length;
        self.damaged = false;
        self.unusable = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::Config;
    use crate::lease::file::{write_header, write_lease};
    use crate::lease::record::{BindingState, Lease};
    use crate::lease::store::LeaseStore;
    use std::net::Ipv4Addr;

    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        let directory = std::env::temp_dir().join(format!("xdhcpd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).unwrap();
        directory
    }

    fn lease(index: u8) -> Lease {
        let mut lease = Lease::free(Ipv4Addr::new(10, 0, 0, index));
        lease.binding_state = BindingState::Active;
        lease.starts = 1_795_836_305;
        lease.ends = 1_795_836_305 + u32::from(index);
        lease.tstp = lease.ends;
        lease.set_uid(Some(&[1, index, 0x22]));
        lease.set_client_hostname(Some("torn"));
        lease
    }

    #[test]
    fn rewrite_keeps_a_backup_and_appends_follow() {
        let directory = temp_dir("log-rewrite");
        let path = directory.join("dhcpd.leases");
        let mut header = Vec::new();
        write_header(&mut header);
        let mut log = LeaseLog::open(&path, &header).unwrap();
        let mut record = Vec::new();
        write_lease(&lease(1), &mut record);
        log.append(&record).unwrap();
        assert_eq!(log.appended_bytes(), record.len() as u64);
        let mut snapshot = header.clone();
        snapshot.extend_from_slice(&record);
        log.rewrite(&snapshot).unwrap();
        assert_eq!(log.appended_bytes(), 0);
        let mut second = Vec::new();
        write_lease(&lease(2), &mut second);
        log.append(&second).unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk, [snapshot.clone(), second].concat());
        assert_eq!(std::fs::read(sibling(&path, "~")).unwrap(), snapshot);
        assert!(!sibling(&path, ".new").exists());
        std::fs::remove_dir_all(&directory).unwrap();
    }

    /// The start-up path: the file read is appended to as it is; a compaction staged beside
    /// it while appends go on is put in place with what was appended meanwhile, and appends
    /// follow in the new file. A staged compaction dropped unused leaves no file.
    #[test]
    fn a_staged_compaction_takes_the_tail_appended_meanwhile() {
        let directory = temp_dir("log-staged");
        let path = directory.join("dhcpd.leases");
        let mut header = Vec::new();
        write_header(&mut header);
        let [first, second, third] = [1, 2, 3].map(|index| {
            let mut record = Vec::new();
            write_lease(&lease(index), &mut record);
            record
        });
        std::fs::write(&path, [header.clone(), first.clone()].concat()).unwrap();
        let mut log = LeaseLog::open_existing(&path).unwrap();
        let snapshot = [header.clone(), first.clone()].concat();
        let staged = StagedRewrite::write(&path, &snapshot).unwrap();
        log.append(&second).unwrap();
        log.install(staged, &second).unwrap();
        assert_eq!(log.appended_bytes(), second.len() as u64);
        log.append(&third).unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk, [snapshot.clone(), second.clone(), third].concat());
        assert_eq!(
            std::fs::read(sibling(&path, "~")).unwrap(),
            [header, first, second].concat()
        );
        let unused = StagedRewrite::write(&path, &snapshot).unwrap();
        assert!(sibling(&path, ".new").exists());
        drop(unused);
        assert!(!sibling(&path, ".new").exists());
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn a_failed_rewrite_leaves_no_new_file() {
        let directory = temp_dir("log-failed-rewrite");
        // A non-empty directory where the lease file should be: the rename fails after the new
        // file was written in full.
        let path = directory.join("dhcpd.leases");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), b"x").unwrap();
        let mut header = Vec::new();
        write_header(&mut header);
        let error = LeaseLog::open(&path, &header).unwrap_err();
        assert!(error.to_string().contains("rename"), "{error}");
        assert!(!sibling(&path, ".new").exists());
        std::fs::remove_dir_all(&directory).unwrap();
    }

    /// A tmpfs of `size` mounted on a fresh directory, unmounted and removed on drop.
    struct TinyFilesystem(PathBuf);

    impl TinyFilesystem {
        /// `None` (with a note) without root, unless `REQUIRE_PRIVILEGED_TESTS=1`.
        fn mount(name: &str, size: &str) -> Option<Self> {
            // SAFETY: plain syscall.
            if unsafe { libc::geteuid() } != 0 {
                assert!(
                    std::env::var("REQUIRE_PRIVILEGED_TESTS").as_deref() != Ok("1"),
                    "{name}: needs root to mount a tmpfs"
                );
                eprintln!("{name}: skipped, needs root to mount a tmpfs");
                return None;
            }
            let directory = temp_dir(name);
            let target = std::ffi::CString::new(directory.as_os_str().as_encoded_bytes()).unwrap();
            let options = std::ffi::CString::new(format!("size={size},mode=0700")).unwrap();
            // SAFETY: valid C strings; the mount is undone in `drop`.
            let result = unsafe {
                libc::mount(
                    c"tmpfs".as_ptr(),
                    target.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    options.as_ptr().cast(),
                )
            };
            assert_eq!(result, 0, "mount: {}", std::io::Error::last_os_error());
            Some(Self(directory))
        }
    }

    impl Drop for TinyFilesystem {
        fn drop(&mut self) {
            let target = std::ffi::CString::new(self.0.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: unmounts what `mount` mounted.
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The defect this guards against: a rewrite that ran out of space left `<file>.new`
    /// behind, holding the space the appends needed, and every later ACK failed.
    #[test]
    fn a_rewrite_that_runs_out_of_space_frees_it_for_the_appends() {
        let Some(filesystem) = TinyFilesystem::mount("log-full", "160k") else {
            return;
        };
        let path = filesystem.0.join("dhcpd.leases");
        let mut header = Vec::new();
        write_header(&mut header);
        let mut log = LeaseLog::open(&path, &header).unwrap();
        let mut record = Vec::new();
        write_lease(&lease(1), &mut record);
        // About 60 KiB of appends, then a rewrite of about 120 KiB: it cannot fit.
        let mut appended = 0;
        while appended < 60 * 1024 {
            log.append(&record).unwrap();
            appended += record.len();
        }
        let snapshot = record.repeat(120 * 1024 / record.len());
        let error = log.rewrite(&snapshot).unwrap_err();
        assert!(error.to_string().contains(".new"), "{error}");
        assert!(!sibling(&path, ".new").exists(), "the partial file stayed");
        // The space is back: appends go on, the file is still the old one.
        for _ in 0..20 {
            log.append(&record).unwrap();
        }
        assert!(!log.needs_rewrite());
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk.len(), header.len() + appended + 20 * record.len());
    }

    #[test]
    fn a_deleted_file_is_noticed_and_a_rewrite_recreates_it() {
        let directory = temp_dir("log-deleted");
        let path = directory.join("dhcpd.leases");
        let mut header = Vec::new();
        write_header(&mut header);
        let mut log = LeaseLog::open(&path, &header).unwrap();
        let mut record = Vec::new();
        write_lease(&lease(1), &mut record);
        log.append(&record).unwrap();
        assert!(!log.is_detached());
        std::fs::remove_file(&path).unwrap();
        assert!(log.is_detached());
        assert!(matches!(
            log.append(&record),
            Err(LeaseLogError::Detached { .. })
        ));
        assert!(log.needs_rewrite());
        let snapshot = [header.clone(), record.clone()].concat();
        log.rewrite(&snapshot).unwrap();
        assert!(!log.is_detached() && !log.needs_rewrite());
        log.append(&record).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            [snapshot, record.clone()].concat()
        );
        // Replaced by another file (moved away, a new one put in its place): the same.
        std::fs::rename(&path, directory.join("moved")).unwrap();
        std::fs::write(&path, b"").unwrap();
        assert!(log.is_detached());
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn truncated_last_record_loads_all_complete_ones() {
        let directory = temp_dir("log-torn");
        let path = directory.join("dhcpd.leases");
        let mut header = Vec::new();
        write_header(&mut header);
        let mut log = LeaseLog::open(&path, &header).unwrap();
        for index in 1..=3 {
            let mut record = Vec::new();
            write_lease(&lease(index), &mut record);
            log.append(&record).unwrap();
        }
        let full = std::fs::read(&path).unwrap();
        let mut last = Vec::new();
        write_lease(&lease(3), &mut last);
        let last_start = full.len() - last.len();
        for cut in last_start..=full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let mut store = LeaseStore::new(&Config::default());
            let rest = store.load_path(&path).unwrap();
            assert!(rest.errors.is_empty(), "cut {cut}: {:?}", rest.errors);
            let whole = cut >= full.len() - 1;
            assert_eq!(store.len(), if whole { 3 } else { 2 }, "cut {cut}");
            assert_eq!(rest.torn_tail, cut > last_start && !whole, "cut {cut}");
            assert_eq!(store.get(Ipv4Addr::new(10, 0, 0, 2)), Some(&lease(2)));
        }
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
