//! `cargo xtask bench failover`: DORA/s of a failover pair under load, in one run on one box —
//! an xdhcpd pair (split 128, both answering), an ISC dhcpd 4.4 pair (split 128), a Kea 2.2 HA
//! load-balancing pair (libdhcp_ha + libdhcp_lease_cmds) and, as the baseline, a single
//! xdhcpd. Topology (`server/tests/netns/failover.rs`): two server namespaces on one bridge,
//! perfdhcp in the third broadcasting relayed DORA (giaddr on the bridge), so both servers of a
//! pair see every DISCOVER and the owner of its hash bucket answers, as behind a relay agent
//! configured with both servers. Fresh lease files and a fresh pair for every step.

use crate::netns::peers::PerfdhcpReport;
use crate::netns::{cpu_seconds, Proc};
use crate::util::{build_release, root};
use anyhow::{bail, Context as _, Result};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

#[path = "../../server/tests/netns/failover.rs"]
pub(crate) mod pair;

use pair::{FailoverConf, PairLab, PairServer};

/// How long a pair may take to reach NORMAL (or Kea's LOAD-BALANCING) from empty lease files:
/// both RECOVER and exchange the whole pool first.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setup {
    Single,
    XdhcpdPair,
    IscPair,
    KeaPair,
}

impl Setup {
    fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "single" => Self::Single,
            "xdhcpd" => Self::XdhcpdPair,
            "isc" => Self::IscPair,
            "kea" => Self::KeaPair,
            other => bail!("unknown setup {other} (single, xdhcpd, isc, kea)"),
        })
    }

    fn label(self) -> &'static str {
        match self {
            Self::Single => "xdhcpd, single server",
            Self::XdhcpdPair => "xdhcpd pair (split 128)",
            Self::IscPair => "ISC dhcpd 4.4 pair (split 128)",
            Self::KeaPair => "Kea 2.2 HA load-balancing pair",
        }
    }
}

struct Row {
    setup: Setup,
    rate: u32,
    report: Option<PerfdhcpReport>,
    ready_seconds: f64,
    server_cpu: f64,
    error: Option<String>,
}

pub fn run(setups: &[String], rates: &[u32], seconds: u32, clients: u32, pool: u32) -> Result<()> {
    crate::setup::run()?;
    if clients == 0 || clients > pool {
        bail!("--clients must be 1..=--pool ({pool})");
    }
    let setups = setups
        .iter()
        .map(|name| Setup::parse(name))
        .collect::<Result<Vec<_>>>()?;
    // `XDH_BENCH_XDHCPD=path` runs a given binary instead of building the release one.
    let binary = match std::env::var_os("XDH_BENCH_XDHCPD") {
        Some(path) => std::path::PathBuf::from(path),
        None => build_release()?,
    };
    let mut rows = Vec::new();
    for &setup in &setups {
        for &rate in rates {
            println!(
                "==> {} at {} for {seconds} s",
                setup.label(),
                rate_label(rate)
            );
            let row =
                step(&binary, setup, rate, seconds, clients, pool).unwrap_or_else(|error| Row {
                    setup,
                    rate,
                    report: None,
                    ready_seconds: 0.0,
                    server_cpu: 0.0,
                    error: Some(format!("{error:#}")),
                });
            match (&row.error, &row.report) {
                (Some(error), _) => println!("    failed: {error}"),
                (None, Some(report)) => println!(
                    "    {:.0} DORA/s, drops {:.2} %",
                    report.ack_received as f64 / f64::from(seconds.max(1)),
                    report.drop_percent()
                ),
                _ => {}
            }
            rows.push(row);
        }
    }
    let table = table(&rows, seconds, clients, pool);
    println!("\n{table}");
    let out = root().join("target/bench-failover.md");
    std::fs::write(&out, &table).with_context(|| format!("write {}", out.display()))?;
    println!("written to {}", out.display());
    Ok(())
}

fn step(
    binary: &Path,
    setup: Setup,
    rate: u32,
    seconds: u32,
    clients: u32,
    pool: u32,
) -> Result<Row> {
    let lab = PairLab::new()?;
    let primary = FailoverConf {
        default_lease_time: 3600,
        ..FailoverConf::new(true, pool)
    };
    let secondary = FailoverConf {
        default_lease_time: 3600,
        ..FailoverConf::new(false, pool)
    };
    let started = crate::netns::now();
    let mut servers: Vec<PairServer> = Vec::new();
    match setup {
        Setup::Single => {
            servers.push(pair::start_xdhcpd(
                binary,
                &lab.a,
                &lab.server_dir("a")?,
                primary.standalone_conf(),
            )?);
        }
        Setup::XdhcpdPair => {
            servers.push(pair::start_xdhcpd(
                binary,
                &lab.a,
                &lab.server_dir("a")?,
                primary.dhcpd_conf(),
            )?);
            servers.push(pair::start_xdhcpd(
                binary,
                &lab.b,
                &lab.server_dir("b")?,
                secondary.dhcpd_conf(),
            )?);
        }
        Setup::IscPair => {
            servers.push(pair::start_isc(
                &lab.a,
                &lab.server_dir("a")?,
                &primary.dhcpd_conf(),
                true,
            )?);
            servers.push(pair::start_isc(
                &lab.b,
                &lab.server_dir("b")?,
                &secondary.dhcpd_conf(),
                true,
            )?);
        }
        Setup::KeaPair => {
            servers.push(pair::start_kea_ha(&lab.a, &lab.server_dir("a")?, &primary)?);
            servers.push(pair::start_kea_ha(
                &lab.b,
                &lab.server_dir("b")?,
                &secondary,
            )?);
        }
    }
    wait_ready(setup, &mut servers)?;
    let ready_seconds = started.elapsed().as_secs_f64();
    let mut load = pair::perfdhcp(&lab, "02:20:00:00:00:00");
    load.clients = clients;
    load.rate = (rate > 0).then_some(rate);
    load.seconds = seconds;
    let cpu_before: f64 = servers.iter().map(|server| server.proc.cpu_seconds()).sum();
    let mut proc = Proc::spawn(
        "perfdhcp",
        load.command_wrapped(&[]),
        lab.dir.join("perfdhcp.log"),
    )?;
    let exit = proc.wait_exit(Duration::from_secs(u64::from(seconds) + 60))?;
    let server_cpu: f64 = servers
        .iter()
        .map(|server| cpu_seconds(server.proc.pid()))
        .sum::<f64>()
        - cpu_before;
    let text = proc.log_text();
    if !matches!(exit.code(), Some(0 | 3)) {
        bail!("perfdhcp failed ({exit}):\n{text}");
    }
    for server in &mut servers {
        server.check_running()?;
    }
    Ok(Row {
        setup,
        rate,
        report: Some(PerfdhcpReport::parse(&text)),
        ready_seconds,
        server_cpu,
        error: None,
    })
}

/// A pair is ready when both say NORMAL (their lease files) or, for Kea, when both logged the
/// transition to LOAD-BALANCING; a single server once it is bound.
fn wait_ready(setup: Setup, servers: &mut [PairServer]) -> Result<()> {
    let result = match setup {
        Setup::Single => Ok(()),
        Setup::XdhcpdPair | Setup::IscPair => {
            let mut refs: Vec<&mut PairServer> = servers.iter_mut().collect();
            pair::wait_for_states(&mut refs, "normal", READY_TIMEOUT)
        }
        Setup::KeaPair => {
            crate::netns::wait_for("both Kea servers in LOAD-BALANCING", READY_TIMEOUT, || {
                for server in servers.iter_mut() {
                    server.check_running()?;
                }
                Ok(servers
                    .iter()
                    .all(|server| server.proc.log_text().contains("to LOAD-BALANCING state"))
                    .then_some(()))
            })
        }
    };
    result.with_context(|| {
        servers
            .iter()
            .map(|server| {
                let log = server.proc.log_text();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                format!(
                    "--- {} log (last lines):\n{}\n",
                    server.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<String>()
    })
}

fn rate_label(rate: u32) -> String {
    if rate == 0 {
        "unbounded".to_owned()
    } else {
        format!("{rate}/s")
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |value| format!("{value:.2}"))
}

fn table(rows: &[Row], seconds: u32, clients: u32, pool: u32) -> String {
    let mut table = String::new();
    let _ = writeln!(
        table,
        "perfdhcp DORA broadcast as a relay (giaddr 10.215.0.250) to both servers of the pair, \
         pool {pool} addresses, {clients} clients, {seconds} s per step, fresh pair and lease \
         files per step; xdhcpd release build, XDP off (both servers' load balancing in \
         userspace).\n"
    );
    let _ = writeln!(
        table,
        "| setup | offered | DORA/s | drops % | vs single xdhcpd | D-O avg / max ms | R-A avg / max ms | CPU s, both servers | ready after s |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let single = |rate: u32| {
        rows.iter()
            .find(|row| row.setup == Setup::Single && row.rate == rate)
            .and_then(|row| row.report.as_ref())
            .map(|report| report.ack_received as f64)
    };
    for row in rows {
        let Some(report) = &row.report else {
            let _ = writeln!(
                table,
                "| {} | {} | failed: {} | | | | | | |",
                row.setup.label(),
                rate_label(row.rate),
                row.error
                    .as_deref()
                    .unwrap_or("?")
                    .lines()
                    .next()
                    .unwrap_or("?")
            );
            continue;
        };
        let ratio = single(row.rate).filter(|single| *single > 0.0).map_or_else(
            || "–".to_owned(),
            |single| format!("{:.0} %", 100.0 * report.ack_received as f64 / single),
        );
        let _ = writeln!(
            table,
            "| {} | {} | {:.0} | {:.2} | {ratio} | {} / {} | {} / {} | {:.2} | {:.1} |",
            row.setup.label(),
            rate_label(row.rate),
            report.ack_received as f64 / f64::from(seconds.max(1)),
            report.drop_percent(),
            ms(report.do_avg_ms),
            ms(report.do_max_ms),
            ms(report.ra_avg_ms),
            ms(report.ra_max_ms),
            row.server_cpu,
            row.ready_seconds,
        );
    }
    table
}
