//! The durable dhcpd.leases log (docs/spec/dhcpd-conf.md §8.3): a compact file written atomically, then
//! records appended with one `write` and one `fdatasync` per batch.
//!
//! A rewrite follows ISC's `new_lease_file` but never leaves a moment without a lease file:
//! write `<file>.new` and fsync it, hard-link the current file to `<file>~`, rename the new file
//! over the current one, fsync the directory.

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
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Writes `contents` as `path` atomically and returns the new file, open for appending.
fn replace_file(path: &Path, contents: &[u8]) -> Result<File, LeaseLogError> {
    let temporary = sibling(path, ".new");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temporary)
        .map_err(io_error("create", &temporary))?;
    file.write_all(contents)
        .map_err(io_error("write", &temporary))?;
    file.sync_all().map_err(io_error("fsync", &temporary))?;
    // Keep the previous file as `<file>~`, as ISC does; a missing previous file is fine.
    let backup = sibling(path, "~");
    match std::fs::remove_file(&backup) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error("remove", &backup)(error)),
    }
    match std::fs::hard_link(path, &backup) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => log::warn!(
            "cannot keep {} as {}: {error}",
            path.display(),
            backup.display()
        ),
    }
    std::fs::rename(&temporary, path).map_err(io_error("rename", &temporary))?;
    // The rename is durable only once the directory is.
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory)
        .and_then(|directory| directory.sync_all())
        .map_err(io_error("fsync directory of", path))?;
    Ok(file)
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

    /// True when an append failed and the file has not been rewritten since.
    pub fn needs_rewrite(&self) -> bool {
        self.damaged
    }

    /// Appends a batch of formatted records with one write and one `fdatasync`. On error
    /// nothing of the batch may be counted as durable.
    pub fn append(&mut self, records: &[u8]) -> Result<(), LeaseLogError> {
        if self.damaged {
            // Cut off whatever a failed append left, or give up until a rewrite.
            if self.file.set_len(self.length).is_err() {
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

    /// Replaces the file with a compact `snapshot` atomically.
    pub fn rewrite(&mut self, snapshot: &[u8]) -> Result<(), LeaseLogError> {
        self.file = replace_file(&self.path, snapshot)?;
        self.length = snapshot.len() as u64;
        self.compact_length = self.length;
        self.damaged = false;
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
