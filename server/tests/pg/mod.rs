//! A private PostgreSQL server for the database tests: `initdb` into a scratch folder, then
//! `pg_ctl start` on its own port on 127.0.0.1 and its own Unix socket folder, stopped and
//! removed on drop. Never the packaged service.
//!
//! PostgreSQL refuses to run as root, so the server runs as the `postgres` user
//! (`runuser -u postgres --`, which needs root) in a folder that user owns. Without root or
//! without the binaries (Debian's `postgresql`, installed by `cargo xtask setup`, keeps them in
//! /usr/lib/postgresql/VERSION/bin, off PATH) [`PgServer::start`] prints a SKIPPED line and
//! returns `None`; under `REQUIRE_PRIVILEGED_TESTS=1` it panics instead.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running private PostgreSQL.
pub struct PgServer {
    bin: PathBuf,
    root: PathBuf,
    port: u16,
}

fn skip(test: &str, why: &str) -> Option<PgServer> {
    assert!(
        std::env::var("REQUIRE_PRIVILEGED_TESTS").as_deref() != Ok("1"),
        "{test}: {why} and REQUIRE_PRIVILEGED_TESTS=1 is set"
    );
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    None
}

/// The newest installed PostgreSQL's bin folder.
fn binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The `postgres` account's user and group ids.
fn postgres_ids() -> Option<(u32, u32)> {
    // SAFETY: getpwnam returns a pointer into static storage or null; read at once.
    unsafe {
        let entry = libc::getpwnam(c"postgres".as_ptr());
        if entry.is_null() {
            return None;
        }
        Some(((*entry).pw_uid, (*entry).pw_gid))
    }
}

impl PgServer {
    /// Starts a server on 127.0.0.1:`port`; `None` (skipped) without root or PostgreSQL.
    pub fn start(test: &str, port: u16) -> Option<Self> {
        // SAFETY: no arguments, no memory.
        if unsafe { libc::geteuid() } != 0 {
            return skip(test, "needs root (PostgreSQL runs as the postgres user)");
        }
        let Some(bin) = binaries() else {
            return skip(
                test,
                "needs PostgreSQL (/usr/lib/postgresql/*/bin; cargo xtask setup installs it)",
            );
        };
        let Some((uid, gid)) = postgres_ids() else {
            return skip(
                test,
                "needs the postgres user (Debian's postgresql package)",
            );
        };
        let root = std::env::temp_dir().join(format!("xdhcpd-pg-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("socket")).unwrap();
        for path in [root.clone(), root.join("socket")] {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        }
        let server = Self { bin, root, port };
        let status = server
            .as_postgres("initdb")
            .args([
                "--auth=trust",
                "--username=postgres",
                "--no-sync",
                "--encoding=UTF8",
            ])
            .arg("-D")
            .arg(server.data())
            .stdout(Stdio::null())
            .status()
            .expect("initdb");
        assert!(status.success(), "initdb failed");
        server.start_again();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn as_postgres(&self, program: &str) -> Command {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program));
        command
    }

    /// `pg_ctl start`, waiting until it accepts connections. `synchronous_commit` stays on: a
    /// commit the server was told of is in the WAL before `pg_ctl stop -m immediate` (which
    /// drops unwritten WAL buffers) can take it away; `fsync` is off, the machine does not
    /// crash in a test.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.root.join("socket").display()
        );
        let status = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "-l"])
            .arg(self.root.join("log"))
            .args(["-w", "-t", "30", "start"])
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl start");
        assert!(
            status.success(),
            "pg_ctl start failed: {}",
            std::fs::read_to_string(self.root.join("log")).unwrap_or_default()
        );
    }

    /// `pg_ctl stop` (`fast`: connections are cut, as when a database goes away).
    pub fn stop(&self, mode: &str) {
        let _ = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", mode, "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// A libpq connection string for the `postgres` database.
    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop("immediate");
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
