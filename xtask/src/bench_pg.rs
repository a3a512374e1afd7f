//! `cargo xtask bench dora --generator dhcp_load --backend postgresql` (issue 16): DORA/s of
//! xdhcpd with its leases in PostgreSQL, one server and three servers on one database, beside
//! xdhcpd with its lease file and Kea 2.2 with its PostgreSQL lease backend, in one run.
//!
//! Every step gets a fresh lab and a fresh private PostgreSQL (`initdb` in a scratch folder,
//! Unix socket only, run as the `postgres` user; never the packaged service) with **fsync
//! and synchronous_commit on**, as a production database would run: a lease is ACKed only
//! once its commit is on disk, in both xdhcpd and Kea. xdhcpd runs without XDP (DORA needs a
//! commit either way). Three servers: three labs, one dhcp_load each (its own clients,
//! `--mac-site`), each offered a third of the rate; the row is their sum.

use crate::bench_load::{
    build_generator, load_average, number, rate_args, relay_lab, relayed_config, results,
};
use crate::netns::{wait_for, Lab, Proc};
use crate::util::build_release;
use anyhow::{bail, Context as _, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A private PostgreSQL for one step, stopped and removed on drop.
struct PrivatePg {
    bin: PathBuf,
    root: PathBuf,
    port: u16,
}

impl PrivatePg {
    fn start(port: u16) -> Result<Self> {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .context("PostgreSQL is not installed (cargo xtask setup)")?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let version = entry.file_name().to_str()?.parse().ok()?;
                Some((version, entry.path().join("bin")))
            })
            .collect();
        versions.sort();
        let (_, bin) = versions.pop().context("no /usr/lib/postgresql/*/bin")?;
        let root =
            std::env::temp_dir().join(format!("xdhcpd-bench-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("socket"))?;
        crate::netns::run(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&root),
        )?;
        let pg = Self { bin, root, port };
        crate::netns::run(
            pg.as_postgres("initdb")
                .args(["--auth=trust", "--username=postgres", "--no-sync"])
                .arg("-D")
                .arg(pg.root.join("data")),
        )?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses='' -c fsync=on -c synchronous_commit=on",
            pg.socket().display()
        );
        crate::netns::run(
            pg.as_postgres("pg_ctl")
                .arg("-D")
                .arg(pg.root.join("data"))
                .args(["-o", &options, "-l"])
                .arg(pg.root.join("log"))
                .args(["-w", "-t", "30", "start"]),
        )?;
        Ok(pg)
    }

    fn as_postgres(&self, program: &str) -> Command {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program));
        command
    }

    fn socket(&self) -> PathBuf {
        self.root.join("socket")
    }

    /// libpq's URL through the Unix socket (reachable from every namespace).
    fn url(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.socket().display(),
            self.port
        )
    }

    /// Kea's schema (Debian's kea-common ships it).
    fn kea_schema(&self) -> Result<()> {
        crate::netns::run(
            self.as_postgres("psql")
                .args(["-q", "-h"])
                .arg(self.socket())
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                ])
                .args(["-f", "/usr/share/kea/scripts/pgsql/dhcpdb_create.pgsql"]),
        )?;
        Ok(())
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.root.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[derive(Clone, Copy)]
enum Row {
    File,
    Postgresql { servers: usize },
    KeaPostgresql,
}

impl Row {
    fn label(self) -> String {
        match self {
            Self::File => "xdhcpd, lease file".into(),
            Self::Postgresql { servers: 1 } => "xdhcpd, PostgreSQL, 1 server".into(),
            Self::Postgresql { servers } => format!("xdhcpd, PostgreSQL, {servers} servers"),
            Self::KeaPostgresql => "Kea 2.2 (2 threads), PostgreSQL".into(),
        }
    }
}

/// Starts the row's server in `lab` and waits until it bound port 67.
fn start_server(
    row: Row,
    lab: &Lab,
    index: usize,
    xdhcpd: &Path,
    database: Option<&PrivatePg>,
) -> Result<Proc> {
    let config = relayed_config(60_000);
    let mut command = match row {
        Row::File | Row::Postgresql { .. } => {
            let mut text = config.to_dhcpd_conf();
            if let Some(database) = database {
                text.push_str(&format!(
                    "option space xdhcpd;\noption xdhcpd.lease-database code 15 = text;\n\
                     option xdhcpd.lease-database \"{}\";\n",
                    database.url()
                ));
            }
            let config_file = lab.dir.join("dhcpd.conf");
            std::fs::write(&config_file, text)?;
            let leases = lab.dir.join("server.leases");
            std::fs::write(&leases, "")?;
            let mut command = lab.server.command(&xdhcpd.to_string_lossy());
            command
                .args(["-f", "-d", "-cf"])
                .arg(&config_file)
                .arg("-lf")
                .arg(&leases)
                .args(["--no-xdp", "--server-name", &format!("bench-{index}")])
                .arg(&lab.server_if);
            command
        }
        Row::KeaPostgresql => {
            let database = database.context("Kea's row needs its database")?;
            let memfile = config.to_kea_json(&lab.server_if, "unused.csv", "udp", 2);
            let backend = format!(
                r#"  "lease-database": {{ "type": "postgresql", "name": "postgres", "host": "{}", "port": {}, "user": "postgres" }},"#,
                database.socket().display(),
                database.port
            );
            let json: Vec<String> = memfile
                .lines()
                .map(|line| {
                    if line.trim_start().starts_with("\"lease-database\"") {
                        backend.clone()
                    } else {
                        line.to_owned()
                    }
                })
                .collect();
            let config_file = lab.dir.join("kea-dhcp4.json");
            std::fs::write(&config_file, json.join("\n"))?;
            let mut command = lab.server.command("/usr/sbin/kea-dhcp4");
            command
                .arg("-c")
                .arg(&config_file)
                .env("KEA_PIDFILE_DIR", lab.dir.path())
                .env("KEA_LOCKFILE_DIR", lab.dir.path())
                .env("KEA_LOGGER_DESTINATION", "stdout");
            command
        }
    };
    command.stdin(std::process::Stdio::null());
    let mut proc = Proc::spawn("server", command, lab.dir.join("server.log"))?;
    wait_for(
        "the server to bind UDP port 67",
        Duration::from_secs(30),
        || {
            proc.check_running()?;
            Ok(lab.server.udp_bound(67)?.then_some(()))
        },
    )
    .with_context(|| format!("server log:\n{}", proc.log_text()))?;
    Ok(proc)
}

/// One step: the row's servers, one generator each, `rate` offered in all (0: unbounded);
/// the table line.
fn step(
    row: Row,
    generator: &Path,
    xdhcpd: &Path,
    rate: u32,
    seconds: u32,
    clients: u32,
    port: u16,
) -> Result<String> {
    let database = match row {
        Row::File => None,
        _ => Some(PrivatePg::start(port)?),
    };
    if matches!(row, Row::KeaPostgresql) {
        database.as_ref().map(PrivatePg::kea_schema).transpose()?;
    }
    let servers = match row {
        Row::Postgresql { servers } => servers,
        _ => 1,
    };
    let mut labs = Vec::new();
    for index in 0..servers {
        let (lab, args) = relay_lab()?;
        let server = start_server(row, &lab, index, xdhcpd, database.as_ref())?;
        labs.push((lab, args, server));
    }
    let load_before = load_average();
    let share = |total: u32| total / servers as u32;
    let mut generators = Vec::new();
    for (index, (lab, args, _)) in labs.iter().enumerate() {
        let mut args = args.clone();
        rate_args(&mut args, share(clients), share(rate), seconds);
        args.extend(["--mac-site".to_owned(), (0x44 + index).to_string()]);
        let mut command = lab.client.command(&generator.to_string_lossy());
        command.arg("rate").args(&args);
        generators.push(Proc::spawn(
            "dhcp_load rate",
            command,
            lab.dir.join("rate.log"),
        )?);
    }
    let mut per_second = 0.0;
    let mut loss = Vec::new();
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for mut proc in generators {
        let exit = proc.wait_exit(Duration::from_secs(u64::from(seconds) + 60))?;
        let text = proc.log_text();
        if !exit.success() {
            bail!("dhcp_load failed ({exit}):\n{text}");
        }
        let result: HashMap<String, String> = results(&text)
            .into_iter()
            .next()
            .with_context(|| format!("no RESULT in:\n{text}"))?;
        per_second += number(&result, "per_second");
        loss.push(format!("{:.2}", number(&result, "loss_pct")));
        p50.push(format!("{:.2}", number(&result, "dora_p50_ms")));
        p99.push(format!("{:.2}", number(&result, "dora_p99_ms")));
    }
    Ok(format!(
        "| {} | {} | {per_second:.0} | {} | {} / {} | {load_before} → {} |\n",
        row.label(),
        if rate == 0 {
            "unbounded".to_owned()
        } else {
            format!("{rate}/s")
        },
        loss.join(", "),
        p50.join(", "),
        p99.join(", "),
        load_average(),
    ))
}

/// The table: each rate, each row in turn.
pub fn dora(rates: &[u32], seconds: u32, clients: u32) -> Result<()> {
    let generator = build_generator(true)?;
    let xdhcpd = match std::env::var_os("XDH_BENCH_XDHCPD") {
        Some(path) => PathBuf::from(path),
        None => build_release()?,
    };
    let rows = [
        Row::File,
        Row::Postgresql { servers: 1 },
        Row::Postgresql { servers: 3 },
        Row::KeaPostgresql,
    ];
    let mut table = format!(
        "dhcp_load DORA, relayed, pool 60000 addresses, {clients} clients per step (split \
         among the servers' generators), {seconds} s per step, fresh lab and database per \
         step; PostgreSQL private, fsync and synchronous_commit on; xdhcpd release, XDP off.\n\n\
         | server | offered | DORA/s | loss % | DORA p50 / p99 ms | load avg |\n\
         |---|---:|---:|---:|---:|---:|\n"
    );
    let port = 29_700 + (std::process::id() % 100) as u16;
    for &rate in rates {
        for row in rows {
            println!("==> {} at {rate}/s (0: unbounded)", row.label());
            match step(row, &generator, &xdhcpd, rate, seconds, clients, port) {
                Ok(line) => table.push_str(&line),
                Err(error) => table.push_str(&format!(
                    "| {} | {rate} | failed: {} | | | |\n",
                    row.label(),
                    format!("{error:#}").lines().next().unwrap_or("?")
                )),
            }
        }
    }
    println!("\n{table}");
    let out = crate::util::root().join("target/bench-dora-postgresql.md");
    std::fs::write(&out, &table)?;
    println!("written to {}", out.display());
    Ok(())
}
