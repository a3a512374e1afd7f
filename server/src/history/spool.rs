//! The history spool: rows the database could not take yet, appended to a local file next to
//! the lease file (`<lease file>.history-spool`) and replayed, oldest first, once the database
//! answers again. Bounded ([`MAX_SPOOL_BYTES`]): past it a row is dropped and counted, so a
//! database that stays away for weeks cannot fill the disk the lease file needs.
//!
//! One row per line, tab-separated, `-` for NULL, bytes in hex: written and read only by
//! xdhcpd, but read back after a crash, so a torn or damaged line is skipped (and counted),
//! never a panic ([`decode_line`], fuzzed by `history_spool`).

use std::io::{BufRead as _, Write as _};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::{EventKind, Row};

/// Past this size new rows are dropped (about 1.5 million rows).
pub const MAX_SPOOL_BYTES: u64 = 256 * 1024 * 1024;

const FIELDS: usize = 12;

fn hex(bytes: &[u8], out: &mut String) {
    use std::fmt::Write as _;
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&text[index..index + 2], 16).ok())
        .collect()
}

/// One row as a spool line (with its `\n`).
pub fn encode_line(row: &Row) -> String {
    use std::fmt::Write as _;
    let mut line = String::with_capacity(160);
    let bytes = |value: &Option<Vec<u8>>, line: &mut String| match value {
        Some(value) => hex(value, line),
        None => line.push('-'),
    };
    let _ = write!(
        line,
        "{}\t{}\t{}\t",
        row.at_micros,
        row.kind.as_str(),
        row.address
    );
    match row.htype {
        Some(htype) => {
            let _ = write!(line, "{htype}");
        }
        None => line.push('-'),
    }
    for value in [
        &row.hardware,
        &row.client_id,
        &row.circuit_id,
        &row.remote_id,
    ] {
        line.push('\t');
        bytes(value, &mut line);
    }
    line.push('\t');
    match row.relay {
        Some(relay) => {
            let _ = write!(line, "{relay}");
        }
        None => line.push('-'),
    }
    for time in [row.starts, row.ends] {
        line.push('\t');
        match time {
            Some(time) => {
                let _ = write!(line, "{time}");
            }
            None => line.push('-'),
        }
    }
    line.push('\t');
    line.push_str(&row.source);
    line.push('\n');
    line
}

/// A spool line back into its row; `None` for a damaged line.
pub fn decode_line(line: &str) -> Option<Row> {
    let fields: Vec<&str> = line.trim_end_matches('\n').split('\t').collect();
    if fields.len() != FIELDS {
        return None;
    }
    fn optional(text: &str) -> Option<&str> {
        (text != "-").then_some(text)
    }
    let bytes = |text: &str| -> Option<Option<Vec<u8>>> {
        match optional(text) {
            Some(text) => unhex(text).map(Some),
            None => Some(None),
        }
    };
    let number = |text: &str| -> Option<Option<u32>> {
        match optional(text) {
            Some(text) => text.parse().ok().map(Some),
            None => Some(None),
        }
    };
    let source = fields[11];
    if source.is_empty()
        || !source
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte == b'_')
    {
        return None;
    }
    Some(Row {
        at_micros: fields[0].parse().ok()?,
        kind: EventKind::from_word(fields[1])?,
        address: fields[2].parse().ok()?,
        htype: match optional(fields[3]) {
            Some(text) => Some(text.parse().ok()?),
            None => None,
        },
        hardware: bytes(fields[4])?,
        client_id: bytes(fields[5])?,
        circuit_id: bytes(fields[6])?,
        remote_id: bytes(fields[7])?,
        relay: match optional(fields[8]) {
            Some(text) => Some(text.parse::<Ipv4Addr>().ok()?),
            None => None,
        },
        starts: number(fields[9])?,
        ends: number(fields[10])?,
        source: source.to_owned(),
    })
}

/// What a spool append did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Appended {
    pub written: usize,
    /// Rows past [`MAX_SPOOL_BYTES`], or all of them when the file cannot be written.
    pub dropped: usize,
}

/// The spool file.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    limit: u64,
}

impl Spool {
    pub fn new(path: PathBuf) -> Self {
        Self::with_limit(path, MAX_SPOOL_BYTES)
    }

    pub fn with_limit(path: PathBuf, limit: u64) -> Self {
        Self { path, limit }
    }

    /// Next to the lease file.
    pub fn beside(leases: &Path) -> PathBuf {
        let mut name = leases.as_os_str().to_owned();
        name.push(".history-spool");
        PathBuf::from(name)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes waiting (0 when there is no file).
    pub fn size(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |metadata| metadata.len())
    }

    /// Appends `rows` as far as the bound allows, then syncs the file (a spooled row survives
    /// a crash, as the leases it records do).
    pub fn append(&self, rows: &[Row]) -> Appended {
        if rows.is_empty() {
            return Appended::default();
        }
        let mut size = self.size();
        let mut text = String::new();
        let mut written = 0;
        for row in rows {
            let line = encode_line(row);
            if size + line.len() as u64 > self.limit {
                break;
            }
            size += line.len() as u64;
            text.push_str(&line);
            written += 1;
        }
        let result = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut file| {
                file.write_all(text.as_bytes())?;
                file.sync_data()
            });
        match result {
            Ok(()) => Appended {
                written,
                dropped: rows.len() - written,
            },
            Err(error) => {
                tracing::error!(
                    "history spool {}: {error}; {} event(s) lost",
                    self.path.display(),
                    rows.len()
                );
                Appended {
                    written: 0,
                    dropped: rows.len(),
                }
            }
        }
    }

    /// Every row of the spool, and how many lines were damaged.
    pub fn read(&self) -> std::io::Result<(Vec<Row>, usize)> {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Vec::new(), 0))
            }
            Err(error) => return Err(error),
        };
        let mut rows = Vec::new();
        let mut damaged = 0;
        for line in std::io::BufReader::new(file).split(b'\n') {
            let line = line?;
            match std::str::from_utf8(&line).ok().and_then(decode_line) {
                Some(row) => rows.push(row),
                None => damaged += 1,
            }
        }
        Ok((rows, damaged))
    }

    /// Empties the spool once its rows are in the database.
    pub fn clear(&self) -> std::io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(at: i64) -> Row {
        Row {
            at_micros: at,
            kind: EventKind::Grant,
            address: Ipv4Addr::new(100, 64, 3, 7),
            htype: Some(1),
            hardware: Some(vec![0, 0x1b, 0x21, 0xaa, 0xbb, 0xcc]),
            client_id: None,
            circuit_id: Some(b"ge-0/0/1".to_vec()),
            remote_id: Some(vec![]),
            relay: Some(Ipv4Addr::new(100, 64, 0, 1)),
            starts: Some(1_700_000_000),
            ends: None,
            source: "kernel_renewal".into(),
        }
    }

    #[test]
    fn lines_read_back_as_written() {
        let original = row(1_700_000_000_123_456);
        assert_eq!(decode_line(&encode_line(&original)), Some(original));
    }

    #[test]
    fn damaged_lines_are_refused() {
        let line = encode_line(&row(1));
        for damaged in [
            "",
            "1\tgrant",
            &line.replace("grant", "stolen"),
            &line.replace("100.64.3.7", "100.64.3"),
            &line.replace("001b21", "0x1b21"),
            &line[..line.len() / 2],
        ] {
            assert_eq!(decode_line(damaged), None, "{damaged:?}");
        }
    }

    #[test]
    fn the_spool_keeps_rows_up_to_its_bound_and_empties() {
        let dir = std::env::temp_dir().join(format!("xdhcpd-spool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let line = encode_line(&row(1)).len() as u64;
        let spool = Spool::with_limit(dir.join("spool"), line * 3);
        let rows: Vec<Row> = (1..=2).map(row).collect();
        assert_eq!(
            spool.append(&rows),
            Appended {
                written: 2,
                dropped: 0
            }
        );
        assert_eq!(
            spool.append(&rows),
            Appended {
                written: 1,
                dropped: 1
            }
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(spool.path())
            .unwrap()
            .write_all(b"torn\n")
            .unwrap();
        let (read, damaged) = spool.read().unwrap();
        assert_eq!(read.len(), 3);
        assert_eq!(read[0], rows[0]);
        assert_eq!(damaged, 1);
        spool.clear().unwrap();
        assert_eq!(spool.read().unwrap().0.len(), 0);
        let _ = std::fs::remove_dir_all(dir);
    }
}
