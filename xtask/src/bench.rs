//! `cargo xtask bench dora|renew|leases|micro|history|xdp|failover|avalanche|generator` (failover:
//! `bench_failover.rs`; avalanche, generator and `dora --generator dhcp_load`: `bench_load.rs`).
//!
//! `dora` runs perfdhcp from a client namespace, acting as a relay (giaddr 10.214.0.1), against
//! xdhcpd, Kea 2.2 and ISC dhcpd 4.4 in turn: same topology, same pool (60,000 addresses of
//! 10.214.0.0/16), same client count, the same rate ladder, a fresh lease file per step. All
//! three keep durable leases (xdhcpd and ISC fsync; Kea memfile with persist=true).
//! `renew` binds direct clients with raw frames (benches' `renew_load`) and replays RENEWING
//! DHCPREQUESTs over AF_PACKET as fast as it can against xdhcpd with XDP, xdhcpd `--no-xdp` and
//! Kea 2.2, counting DHCPACKs.
//! `leases` measures loading a 1,000,000-lease dhcpd.leases. `micro` runs the Criterion benches.
//! `history` fills a private PostgreSQL with lease history and times `xdhcpd history`'s queries.

use crate::netns::peers::{Perfdhcp, PerfdhcpReport, ServerKind, ServerSetup};
use crate::netns::{cpu_seconds, run as run_command, DhcpConfig, Lab, Proc, Subnet};
use crate::util::{build_release, command, root, status};
use anyhow::{bail, Context as _, Result};
use clap::Subcommand;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

#[derive(Subcommand)]
pub enum Which {
    /// DORA throughput and latency: xdhcpd vs Kea vs ISC dhcpd, with perfdhcp.
    Dora {
        /// Servers, in order: xdhcpd, kea, isc; `xdhcpd-Nw` runs xdhcpd with N workers
        /// (`--threads N`; plain `xdhcpd` uses one per core).
        #[arg(long, value_delimiter = ',', default_value = "xdhcpd,kea,isc")]
        servers: Vec<String>,
        /// Offered exchanges per second; 0 means unbounded.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "1000,2000,5000,10000,20000,0"
        )]
        rates: Vec<u32>,
        /// Seconds per step (perfdhcp -p).
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Distinct simulated clients (perfdhcp -R).
        #[arg(long, default_value_t = 50_000)]
        clients: u32,
        /// Run xdhcpd without its XDP program.
        #[arg(long)]
        no_xdp: bool,
        /// The load generator: `perfdhcp` (Kea's), or `dhcp_load` (benches', one thread over
        /// AF_PACKET; `bench_load.rs`).
        #[arg(long, default_value = "perfdhcp")]
        generator: String,
        /// `postgresql`: xdhcpd's leases in a private PostgreSQL, one and three servers on
        /// one database, beside the lease file and Kea's PostgreSQL backend (dhcp_load only;
        /// `--servers` is ignored; `bench_pg.rs`).
        #[arg(long, default_value = "file")]
        backend: String,
    },
    /// Reconnect storm: N relayed clients start at once and retransmit with RFC 2131 backoff
    /// until all are bound; time to the last ACK, then a lease-file check (`bench_load.rs`).
    Avalanche {
        /// Simulated clients, all starting at once.
        #[arg(long, default_value_t = 10_000)]
        clients: u32,
        /// Servers, in order: xdhcpd, xdhcpd-no-xdp, kea, isc.
        #[arg(long, value_delimiter = ',', default_value = "xdhcpd,kea,isc")]
        servers: Vec<String>,
        /// First retransmission delay in seconds (RFC 2131 §4.1: 4).
        #[arg(long, default_value_t = 4.0)]
        base: f64,
        /// Give up after this many seconds per server.
        #[arg(long, default_value_t = 900.0)]
        deadline: f64,
        /// Debug builds of xdhcpd (XDP off) and the generator: what `cargo xtask test` runs.
        #[arg(long)]
        debug: bool,
    },
    /// The avalanche check of `cargo xtask test` alone (200 clients, debug xdhcpd).
    AvalancheCi,
    /// The dhcp_load generator's own ceiling, against a reflector (no server).
    Generator {
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Exchanges in flight.
        #[arg(long, default_value_t = 4096)]
        window: usize,
        #[arg(long, default_value_t = 100_000)]
        clients: u32,
    },
    /// End-to-end renewals/s over the veth: xdhcpd (XDP on), xdhcpd --no-xdp, Kea 2.2.
    Renew {
        /// Servers, in order: xdhcpd, xdhcpd-no-xdp, kea.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "xdhcpd,xdhcpd-no-xdp,kea"
        )]
        servers: Vec<String>,
        /// Distinct clients, bound once by DORA before the renewals.
        #[arg(long, default_value_t = 2_000)]
        clients: u32,
        /// Seconds of renewals.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Renewals offered per second, one step per rate (a ladder: `--rates 5000,10000`);
        /// 0 means as fast as the generator goes.
        #[arg(long, alias = "rate", value_delimiter = ',', default_value = "0")]
        rates: Vec<u32>,
    },
    /// Load time, max RSS and bytes per lease of a 1,000,000-lease dhcpd.leases.
    Leases {
        #[arg(long, default_value_t = 1_000_000)]
        count: u32,
    },
    /// DORA latency while the lease file of `--leases` leases is rewritten (the start-up
    /// rewrite, then one asked for over the control API at `--rewrite-at`), with the dhcp_load
    /// generator.
    Compaction {
        #[arg(long, default_value_t = 1_000_000)]
        leases: u32,
        /// Offered DORA/s.
        #[arg(long, default_value_t = 2_000)]
        rate: u32,
        #[arg(long, default_value_t = 30)]
        seconds: u32,
        #[arg(long, default_value_t = 20_000)]
        clients: u32,
        /// Seconds into the load at which the control API's `lease-file-rewrite` asks for a
        /// second rewrite, once the start-up one is over (0: none).
        #[arg(long, default_value_t = 15)]
        rewrite_at: u32,
    },
    /// Criterion micro-benchmarks (`cargo bench -p benches`).
    Micro,
    /// Lease history in a private PostgreSQL (root): insert rate and `xdhcpd history`
    /// point-in-time and by-MAC query latency after EVENTS events (benches' `history_query`).
    History {
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        /// Distinct addresses the events fall on.
        #[arg(long, default_value_t = 10_000)]
        addresses: u64,
        /// Days the events span (one partition per week).
        #[arg(long, default_value_t = 30)]
        days: u64,
        #[arg(long, default_value_t = 1_000)]
        queries: u64,
    },
    /// ns/packet of the XDP program through BPF_PROG_TEST_RUN (root): renew hit, miss,
    /// load-balancing drop, non-DHCP pass.
    Xdp,
    /// DORA/s of failover pairs (xdhcpd, ISC dhcpd, Kea HA) vs a single xdhcpd
    /// (`bench_failover.rs`).
    Failover {
        /// Setups, in order: single, xdhcpd, isc, kea.
        #[arg(long, value_delimiter = ',', default_value = "single,xdhcpd,isc,kea")]
        setups: Vec<String>,
        /// Offered exchanges per second; 0 means unbounded.
        #[arg(long, value_delimiter = ',', default_value = "1000,2000,4000")]
        rates: Vec<u32>,
        /// Seconds per step (perfdhcp -p).
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Distinct simulated clients (perfdhcp -R).
        #[arg(long, default_value_t = 3_000)]
        clients: u32,
        /// Addresses in the shared pool.
        #[arg(long, default_value_t = 4_096)]
        pool: u32,
    },
    /// A failover pair recovering a secondary that lost its disk (`bench_failover_recovery.rs`).
    FailoverRecovery(crate::bench_failover_recovery::RecoveryArgs),
    /// Partner-down takeover under load (`bench_failover_recovery.rs`).
    FailoverTakeover(crate::bench_failover_recovery::TakeoverArgs),
    /// One chart from several `failover-recovery` series files (e.g. one pair at several
    /// sizes): no servers are run.
    FailoverRecoveryChart(crate::bench_failover_recovery::ChartArgs),
}

pub fn run(which: Which) -> Result<()> {
    match which {
        Which::Dora {
            servers,
            rates,
            seconds,
            clients,
            no_xdp,
            generator,
            backend,
        } => match (generator.as_str(), backend.as_str()) {
            (_, "postgresql") => crate::bench_pg::dora(&rates, seconds, clients),
            (_, other) if other != "file" => bail!("unknown backend {other} (file, postgresql)"),
            ("perfdhcp", _) => dora(&servers, &rates, seconds, clients, !no_xdp),
            ("dhcp_load", _) => {
                crate::bench_load::dora(&servers, &rates, seconds, clients, !no_xdp)
            }
            (other, _) => bail!("unknown generator {other} (perfdhcp, dhcp_load)"),
        },
        Which::Avalanche {
            clients,
            servers,
            base,
            deadline,
            debug,
        } => crate::bench_load::avalanche(&servers, clients, base, deadline, debug),
        Which::AvalancheCi => crate::ci::avalanche(),
        Which::Compaction {
            leases,
            rate,
            seconds,
            clients,
            rewrite_at,
        } => crate::bench_load::compaction(leases, rate, seconds, clients, rewrite_at),
        Which::Generator {
            seconds,
            window,
            clients,
        } => crate::bench_load::generator(seconds, window, clients),
        Which::Renew {
            servers,
            clients,
            seconds,
            rates,
        } => renew(&servers, clients, seconds, &rates),
        Which::Leases { count } => leases(count),
        Which::Micro => status(command("cargo").args(["bench", "-p", "benches"])),
        Which::History {
            events,
            addresses,
            days,
            queries,
        } => status(
            command("cargo")
                .args([
                    "run",
                    "--release",
                    "-p",
                    "benches",
                    "--bin",
                    "history_query",
                    "--",
                ])
                .args([events, addresses, days, queries].map(|value| value.to_string())),
        ),
        // The eBPF object is always built optimised (aya-build); the harness's own profile
        // does not enter the kernel's timing, so the debug build is enough.
        Which::Xdp => status(command("cargo").args([
            "run",
            "--quiet",
            "-p",
            "benches",
            "--bin",
            "xdp_test_run",
        ])),
        Which::Failover {
            setups,
            rates,
            seconds,
            clients,
            pool,
        } => crate::bench_failover::run(&setups, &rates, seconds, clients, pool),
        Which::FailoverRecovery(args) => crate::bench_failover_recovery::recovery(&args),
        Which::FailoverTakeover(args) => crate::bench_failover_recovery::takeover(&args),
        Which::FailoverRecoveryChart(args) => crate::bench_failover_recovery::chart(&args),
    }
}

const SERVER_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 1);
const RELAY_ADDRESS: &str = "10.214.0.1";
const POOL_SIZE: u32 = 60_000;

fn bench_config() -> DhcpConfig {
    let first = Ipv4Addr::new(10, 214, 1, 0);
    let last = Ipv4Addr::from(u32::from(first) + POOL_SIZE - 1);
    DhcpConfig {
        subnets: vec![
            // The server's own link: declared so every server listens on it; no pool.
            Subnet {
                network: Ipv4Addr::new(10, 213, 0, 0),
                prefix_len: 24,
                range: None,
                routers: None,
            },
            Subnet {
                network: Ipv4Addr::new(10, 214, 0, 0),
                prefix_len: 16,
                range: Some((first, last)),
                routers: Some(Ipv4Addr::new(10, 214, 0, 1)),
            },
        ],
        hosts: Vec::new(),
        default_lease_time: 3600,
        max_lease_time: 7200,
        dns_servers: vec![SERVER_ADDRESS],
        domain_name: Some("bench.test".to_owned()),
    }
}

struct Row {
    server: String,
    rate: u32,
    report: Option<PerfdhcpReport>,
    seconds: u32,
    server_cpu: f64,
    perfdhcp_cpu: Option<f64>,
    /// UDP datagrams the kernel dropped at perfdhcp's own socket (its receive buffer was full):
    /// `RcvbufErrors` of the generator's namespace. perfdhcp counts them as the server's drops.
    generator_drops: Option<u64>,
    /// xdhcpd only: the store lock's hold time per batch (mean, and the bucket bound under
    /// which 99 % of batches fall), from `xdhcpd_store_lock_hold_seconds`.
    lock_hold: Option<LockHold>,
    error: Option<String>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct LockHold {
    batches: u64,
    mean_us: f64,
    p99_le_us: f64,
    /// Group commits (write + fdatasync) per lease record made durable, from
    /// `xdhcpd_lease_commit_fsync_seconds_count` / `xdhcpd_lease_commit_batch_records_sum`.
    pub(crate) fsyncs_per_record: Option<f64>,
    /// Group commits in all (`xdhcpd_lease_commit_fsync_seconds_count`).
    pub(crate) fsyncs: Option<f64>,
    /// Appends (write + fdatasync) that took over 10 ms, and the bucket bound in seconds the
    /// slowest stayed under: a reply waits for its batch's append.
    pub(crate) slow_appends: Option<(f64, f64)>,
}

/// Where a benchmarked xdhcpd serves its metrics (its namespace's own loopback).
pub(crate) const METRICS_LISTEN: &str = "127.0.0.1:9167";

/// The part of xdhcpd's option space the benchmarks' configs use (the full block is
/// `xdhcpd::config::xdhcpd::DEFINITIONS`; xtask does not link the server crate).
pub(crate) fn xdhcpd_option_space() -> &'static str {
    "option space xdhcpd;\noption xdhcpd.metrics-listen code 10 = text;\n\
     option xdhcpd.control-api-listen code 20 = text;\n"
}

/// The cumulative buckets (upper bound, count) of histogram `name` in a metrics scrape.
fn histogram_buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&format!("{name}_bucket{{le=\""))?;
            let (bound, count) = rest.split_once("\"}")?;
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().ok()?
            };
            Some((bound, count.trim().parse().ok()?))
        })
        .collect()
}

/// `xdhcpd_store_lock_hold_seconds` scraped in the server's namespace.
pub(crate) fn lock_hold(lab: &Lab) -> Option<LockHold> {
    let text = lab.server.scrape_metrics(METRICS_LISTEN).ok()?;
    let value = |line: &str, prefix: &str| -> Option<f64> {
        line.strip_prefix(prefix)?.trim().parse().ok()
    };
    let name = "xdhcpd_store_lock_hold_seconds";
    let sum = text
        .lines()
        .find_map(|line| value(line, &format!("{name}_sum ")))?;
    let count = text
        .lines()
        .find_map(|line| value(line, &format!("{name}_count ")))?;
    let buckets = histogram_buckets(&text, name);
    let p99 = buckets
        .iter()
        .find(|(_, cumulative)| *cumulative >= 0.99 * count)
        .map_or(f64::INFINITY, |(bound, _)| *bound);
    let fsyncs = text
        .lines()
        .find_map(|line| value(line, "xdhcpd_lease_commit_fsync_seconds_count "));
    let records = text
        .lines()
        .find_map(|line| value(line, "xdhcpd_lease_commit_batch_records_sum "));
    let fsyncs_per_record = match (fsyncs, records) {
        (Some(fsyncs), Some(records)) if records > 0.0 => Some(fsyncs / records),
        _ => None,
    };
    let append_buckets = histogram_buckets(&text, "xdhcpd_lease_commit_fsync_seconds");
    let slow_appends = fsyncs.and_then(|fsyncs| {
        let within_10_ms = append_buckets
            .iter()
            .find(|(bound, _)| (*bound - 0.01).abs() < 1e-9)?
            .1;
        let slowest = append_buckets
            .iter()
            .find(|(_, cumulative)| *cumulative >= fsyncs)
            .map_or(f64::INFINITY, |(bound, _)| *bound);
        Some((fsyncs - within_10_ms, slowest))
    });
    (count > 0.0).then_some(LockHold {
        batches: count as u64,
        mean_us: sum / count * 1e6,
        p99_le_us: p99 * 1e6,
        fsyncs_per_record,
        fsyncs,
        slow_appends,
    })
}

fn dora(servers: &[String], rates: &[u32], seconds: u32, clients: u32, xdp: bool) -> Result<()> {
    crate::setup::run()?;
    let mut kinds = Vec::new();
    for name in servers {
        let workers = name
            .strip_prefix("xdhcpd-")
            .and_then(|rest| rest.strip_suffix('w'))
            .and_then(|count| count.parse::<u32>().ok());
        kinds.push(match (name.as_str(), workers) {
            ("xdhcpd", _) => (
                "xdhcpd".to_owned(),
                ServerKind::Xdhcpd {
                    binary: build_release()?,
                    xdp,
                },
            ),
            (_, Some(workers)) => (
                format!(
                    "xdhcpd ({workers} worker{})",
                    if workers == 1 { "" } else { "s" }
                ),
                ServerKind::Xdhcpd {
                    binary: with_workers(&build_release()?, workers)?,
                    xdp,
                },
            ),
            ("kea", _) => ("Kea 2.2".to_owned(), ServerKind::Kea { threads: 2 }),
            ("isc", _) => ("ISC dhcpd 4.4".to_owned(), ServerKind::IscDhcpd),
            (other, _) => bail!("unknown server {other} (xdhcpd, xdhcpd-Nw, kea, isc)"),
        });
    }
    let mut rows = Vec::new();
    for (label, kind) in &kinds {
        for &rate in rates {
            println!("==> {label} at {} for {seconds} s", rate_label(rate));
            let row = dora_step(label, kind, rate, seconds, clients).unwrap_or_else(|error| Row {
                server: label.clone(),
                lock_hold: None,
                rate,
                report: None,
                seconds,
                server_cpu: 0.0,
                perfdhcp_cpu: None,
                generator_drops: None,
                error: Some(format!("{error:#}")),
            });
            if let Some(error) = &row.error {
                println!("    failed: {error}");
            }
            rows.push(row);
        }
    }
    let table = dora_table(&rows, seconds, clients, xdp);
    println!("\n{table}");
    let out = root().join("target/bench-dora.md");
    std::fs::write(&out, &table).with_context(|| format!("write {}", out.display()))?;
    println!("written to {}", out.display());
    Ok(())
}

/// A launcher that runs `binary` with `--threads workers` (the harness starts servers by path).
fn with_workers(binary: &Path, workers: u32) -> Result<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let launcher = root().join(format!("target/xdhcpd-{workers}-workers.sh"));
    std::fs::write(
        &launcher,
        format!(
            "#!/bin/sh\nexec '{}' --threads {workers} \"$@\"\n",
            binary.display()
        ),
    )?;
    std::fs::set_permissions(&launcher, std::fs::Permissions::from_mode(0o755))?;
    Ok(launcher)
}

fn dora_step(label: &str, kind: &ServerKind, rate: u32, seconds: u32, clients: u32) -> Result<Row> {
    let lab = Lab::new("10.213.0.1/24")?;
    lab.route_relay(RELAY_ADDRESS, "10.214.0.0/16", "10.213.0.0/24")?;
    let server = ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind: kind.clone(),
        config: bench_config(),
        interface: lab.server_if.clone(),
        relayed: true,
        // xdhcpd serves its metrics, for the store lock's hold time.
        dhcpd_conf: matches!(kind, ServerKind::Xdhcpd { .. }).then(|| {
            format!(
                "{}option xdhcpd.metrics-listen \"{METRICS_LISTEN}\";\n{}",
                xdhcpd_option_space(),
                bench_config().to_dhcpd_conf()
            )
        }),
    }
    .start()?;
    let perfdhcp = Perfdhcp {
        netns: &lab.client,
        dir: lab.dir.path(),
        local: RELAY_ADDRESS.to_owned(),
        server: SERVER_ADDRESS,
        rate: (rate > 0).then_some(rate),
        clients,
        seconds,
        exchanges: None,
        extra: Vec::new(),
    };
    let cpu_before = server.proc.cpu_seconds();
    // /usr/bin/time reports perfdhcp's own CPU time once it has exited.
    let command = perfdhcp.command_wrapped(&["/usr/bin/time", "-f", "XDH_CPU %U %S"]);
    let mut proc = Proc::spawn("perfdhcp", command, lab.dir.join("perfdhcp.log"))?;
    let exit = proc.wait_exit(Duration::from_secs(u64::from(seconds) + 60))?;
    let server_cpu = cpu_seconds(server.proc.pid()) - cpu_before;
    let text = proc.log_text();
    if !matches!(exit.code(), Some(0 | 3)) {
        bail!("perfdhcp failed ({exit}):\n{text}");
    }
    let perfdhcp_cpu = text.lines().find_map(|line| {
        let rest = line.strip_prefix("XDH_CPU ")?;
        let mut parts = rest.split_whitespace().map(str::parse::<f64>);
        Some(parts.next()?.ok()? + parts.next()?.ok()?)
    });
    let generator_drops = lab
        .client
        .exec_ok(&["cat", "/proc/net/snmp"])
        .ok()
        .and_then(|snmp| udp_counter(&snmp, "RcvbufErrors"));
    let lock_hold = matches!(kind, ServerKind::Xdhcpd { .. })
        .then(|| lock_hold(&lab))
        .flatten();
    Ok(Row {
        server: label.to_owned(),
        lock_hold,
        rate,
        report: Some(PerfdhcpReport::parse(&text)),
        seconds,
        server_cpu,
        perfdhcp_cpu,
        generator_drops,
        error: None,
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

/// One counter of the `Udp:` lines of /proc/net/snmp (a header line, then a value line).
pub(crate) fn udp_counter(snmp: &str, name: &str) -> Option<u64> {
    let mut lines = snmp.lines().filter(|line| line.starts_with("Udp:"));
    let header = lines.next()?;
    let values = lines.next()?;
    let index = header.split_whitespace().position(|field| field == name)?;
    values.split_whitespace().nth(index)?.parse().ok()
}

fn dora_table(rows: &[Row], seconds: u32, clients: u32, xdp: bool) -> String {
    let mut table = String::new();
    let _ = writeln!(
        table,
        "perfdhcp DORA, relayed (giaddr {RELAY_ADDRESS}), pool {POOL_SIZE} addresses, \
         {clients} clients, {seconds} s per step, fresh lease file per step, xdhcpd XDP {}.\n",
        if xdp { "on" } else { "off" }
    );
    let _ = writeln!(
        table,
        "| server | offered | DORA/s | drops % | datagrams lost at perfdhcp's socket | D-O avg / max ms | R-A avg / max ms | server CPU s | perfdhcp CPU s | store lock per batch: mean / p99 ≤ µs (batches) | fsyncs per lease record |"
    );
    let _ = writeln!(
        table,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for row in rows {
        let Some(report) = &row.report else {
            let _ = writeln!(
                table,
                "| {} | {} | failed: {} | | | | | | | | |",
                row.server,
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
        let _ = writeln!(
            table,
            "| {} | {} | {:.0} | {:.2} | {} | {} / {} | {} / {} | {:.2} | {} | {} | {} |",
            row.server,
            rate_label(row.rate),
            report.ack_received as f64 / f64::from(row.seconds.max(1)),
            report.drop_percent(),
            row.generator_drops
                .map_or_else(|| "–".to_owned(), |drops| drops.to_string()),
            ms(report.do_avg_ms),
            ms(report.do_max_ms),
            ms(report.ra_avg_ms),
            ms(report.ra_max_ms),
            row.server_cpu,
            row.perfdhcp_cpu
                .map_or_else(|| "–".to_owned(), |cpu| format!("{cpu:.2}")),
            row.lock_hold.map_or_else(
                || "–".to_owned(),
                |hold| format!(
                    "{:.1} / {:.0} ({})",
                    hold.mean_us, hold.p99_le_us, hold.batches
                )
            ),
            row.lock_hold
                .and_then(|hold| hold.fsyncs_per_record)
                .map_or_else(|| "–".to_owned(), |ratio| format!("{ratio:.3}")),
        );
    }
    table
}

/// Writes `count` active leases in ISC's format (dhcpd.leases(5), as 4.4 writes them), from
/// `base` on.
pub(crate) fn write_lease_file(path: &Path, count: u32, base: Ipv4Addr) -> Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(
        out,
        "# The format of this file is documented in the dhcpd.leases(5) manual page.\n\
         # This lease file was generated by cargo xtask bench leases\n\n\
         # authoring-byte-order entry is generated, DO NOT DELETE\n\
         authoring-byte-order little-endian;\n"
    )?;
    let base = u32::from(base);
    for index in 0..count {
        let address = Ipv4Addr::from(base + index);
        let [a, b, c, d] = index.to_be_bytes();
        writeln!(
            out,
            "lease {address} {{\n  starts 6 2026/11/28 03:25:05;\n  ends 0 2037/11/29 03:25:05;\n  \
             cltt 6 2026/11/28 03:25:05;\n  binding state active;\n  next binding state free;\n  \
             rewind binding state free;\n  hardware ethernet 02:00:{a:02x}:{b:02x}:{c:02x}:{d:02x};\n  \
             uid \"\\001\\002\\000\\{a:03o}\\{b:03o}\\{c:03o}\\{d:03o}\";\n  client-hostname \"host-{index}\";\n}}"
        )?;
    }
    // A generated file is otherwise hundreds of MB of dirty page cache: the server's first
    // fsync of it would wait for all of it to reach the disk and measure the bench's own write.
    out.into_inner()?.sync_all()?;
    Ok(())
}

/// Max RSS (KiB) and wall time (s) from `/usr/bin/time -v` output.
fn time_v(text: &str) -> (Option<u64>, Option<f64>) {
    let mut rss = None;
    let mut wall = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(value) = line.strip_prefix("Maximum resident set size (kbytes):") {
            rss = value.trim().parse().ok();
        }
        if let Some(value) = line.strip_prefix("Elapsed (wall clock) time (h:mm:ss or m:ss):") {
            wall = value.trim().split(':').try_fold(0.0, |total, part| {
                Some(total * 60.0 + part.parse::<f64>().ok()?)
            });
        }
    }
    (rss, wall)
}

fn leases(count: u32) -> Result<()> {
    let binary = build_release()?;
    let dir = root().join("target/bench-leases");
    std::fs::create_dir_all(&dir)?;
    let lease_file = dir.join("dhcpd.leases");
    println!("==> writing {count} leases to {}", lease_file.display());
    write_lease_file(&lease_file, count, Ipv4Addr::new(10, 64, 0, 0))?;
    let size = std::fs::metadata(&lease_file)?.len();
    let config = dir.join("dhcpd.conf");
    std::fs::write(
        &config,
        "authoritative;\nddns-update-style none;\nsubnet 10.0.0.0 netmask 255.0.0.0 {\n  range 10.64.0.0 10.127.255.255;\n}\n",
    )?;
    let mut report = format!(
        "dhcpd.leases with {count} leases ({:.1} MB)\n\n| server | load s | max RSS MiB | bytes/lease (RSS) |\n|---|---:|---:|---:|\n",
        size as f64 / 1e6
    );
    for (label, program) in [
        ("xdhcpd", binary.to_string_lossy().into_owned()),
        ("ISC dhcpd 4.4", "/usr/sbin/dhcpd".to_owned()),
    ] {
        println!("==> {label} -T");
        let output = command("/usr/bin/time")
            .args(["-v", &program, "-T", "-cf"])
            .arg(&config)
            .arg("-lf")
            .arg(&lease_file)
            .output()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let (rss, wall) = time_v(&stderr);
        if !output.status.success() {
            println!("    {label} failed ({}):\n{stderr}", output.status);
            let _ = writeln!(report, "| {label} | failed | | |");
            continue;
        }
        let (Some(rss), Some(wall)) = (rss, wall) else {
            bail!("no /usr/bin/time -v figures in:\n{stderr}");
        };
        let _ = writeln!(
            report,
            "| {label} | {wall:.2} | {:.1} | {:.0} |",
            rss as f64 / 1024.0,
            rss as f64 * 1024.0 / f64::from(count.max(1))
        );
    }
    report.push_str(
        "\nStart-up: from exec to the line saying the server serves, with the same lease file \
         (a fresh copy each). xdhcpd: \"xdhcpd serving\" on loopback (its start-up rewrite \
         runs in the background). ISC refuses a loopback interface (\"Unsupported device type \
         772\"), so its figure is a lower bound: exec to \"Wrote N leases to leases file.\", \
         the end of its start-up rewrite, after which it opens its interfaces.\n\n\
         | server | start-up s |\n|---|---:|\n",
    );
    let serving_config = dir.join("dhcpd-serving.conf");
    std::fs::write(
        &serving_config,
        "authoritative;\nddns-update-style none;\nsubnet 10.0.0.0 netmask 255.0.0.0 {\n  range 10.64.0.0 10.127.255.255;\n}\nsubnet 127.0.0.0 netmask 255.0.0.0 {\n}\n",
    )?;
    for (label, program, extra) in [
        (
            "xdhcpd",
            binary.to_string_lossy().into_owned(),
            &["--no-xdp"][..],
        ),
        (
            "ISC dhcpd 4.4 (lower bound)",
            "/usr/sbin/dhcpd".to_owned(),
            &[][..],
        ),
    ] {
        let copy = dir.join("serving.leases");
        std::fs::copy(&lease_file, &copy)?;
        let seconds = time_to_serving(&program, &serving_config, &copy, extra)?;
        let cell = seconds.map_or_else(
            || "not serving after 180 s".to_owned(),
            |s| format!("{s:.2}"),
        );
        println!("    {label}: start-up {cell}");
        let _ = writeln!(report, "| {label} | {cell} |");
        let _ = std::fs::remove_file(&copy);
        let _ = std::fs::remove_file(dir.join("serving.leases~"));
    }
    println!("\n{report}");
    std::fs::write(root().join("target/bench-leases.md"), &report)?;
    Ok(())
}

/// Starts `program` in the foreground on `lo` (port 20967, away from the tests' ports) and
/// returns the seconds until its stderr says it serves, then stops it; `None` after 180 s.
#[expect(clippy::disallowed_methods, reason = "benchmark driver owns the clock")]
fn time_to_serving(
    program: &str,
    config: &Path,
    leases: &Path,
    extra: &[&str],
) -> Result<Option<f64>> {
    use std::io::BufRead as _;
    const SERVING: [&str; 2] = ["xdhcpd serving", "leases to leases file."];
    let started = std::time::Instant::now();
    let mut child = command(program)
        .args(["-f", "-d", "-cf"])
        .arg(config)
        .arg("-lf")
        .arg(leases)
        .args(["-pf", "/tmp/xdhcpd-bench-startup.pid", "-p", "20967"])
        .args(extra)
        .arg("lo")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("start {program}"))?;
    let stderr = child.stderr.take().context("stderr")?;
    let (seen, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if SERVING.iter().any(|marker| line.contains(marker)) {
                let _ = seen.send(started.elapsed().as_secs_f64());
            }
        }
    });
    let seconds = wait.recv_timeout(Duration::from_secs(180)).ok();
    let _ = child.kill();
    let _ = child.wait();
    Ok(seconds)
}

/// The renewal lab: direct clients on the server's own /16 (the fast path answers renewals
/// of directly attached clients: the reply goes back over the same link).
const RENEW_SERVER_CIDR: &str = "10.213.0.1/16";
const RENEW_POOL_FIRST: Ipv4Addr = Ipv4Addr::new(10, 213, 1, 0);

fn renew_config() -> DhcpConfig {
    let last = Ipv4Addr::from(u32::from(RENEW_POOL_FIRST) + POOL_SIZE - 1);
    DhcpConfig {
        subnets: vec![Subnet {
            network: Ipv4Addr::new(10, 213, 0, 0),
            prefix_len: 16,
            range: Some((RENEW_POOL_FIRST, last)),
            routers: Some(SERVER_ADDRESS),
        }],
        hosts: Vec::new(),
        default_lease_time: 3600,
        max_lease_time: 7200,
        dns_servers: vec![SERVER_ADDRESS],
        domain_name: Some("bench.test".to_owned()),
    }
}

/// What `renew_load renew` printed, plus the server's side.
struct RenewRow {
    server: String,
    /// Offered renewals/s (0 = unbounded).
    rate: u32,
    bind_seconds: Option<f64>,
    sent: u64,
    acked: u64,
    seconds: f64,
    server_cpu: f64,
    /// xdhcpd only: renewals its XDP program answered (shutdown log line).
    kernel_renewals: Option<u64>,
    error: Option<String>,
}

fn renew(servers: &[String], clients: u32, seconds: u32, rates: &[u32]) -> Result<()> {
    crate::setup::run()?;
    if clients == 0 || clients > POOL_SIZE {
        bail!("--clients must be 1..={POOL_SIZE}");
    }
    let mut kinds = Vec::new();
    for name in servers {
        kinds.push(match name.as_str() {
            "xdhcpd" => (
                "xdhcpd (XDP)",
                ServerKind::Xdhcpd {
                    binary: build_release()?,
                    xdp: true,
                },
            ),
            "xdhcpd-no-xdp" => (
                "xdhcpd --no-xdp",
                ServerKind::Xdhcpd {
                    binary: build_release()?,
                    xdp: false,
                },
            ),
            "kea" => ("Kea 2.2 (2 threads)", ServerKind::Kea { threads: 2 }),
            other => bail!("unknown server {other} (xdhcpd, xdhcpd-no-xdp, kea)"),
        });
    }
    println!("==> cargo build --release -p benches --bin renew_load");
    status(command("cargo").args(["build", "--release", "-p", "benches", "--bin", "renew_load"]))?;
    let generator = root().join("target/release/renew_load");
    let mut rows = Vec::new();
    for (label, kind) in &kinds {
        for &rate in rates {
            println!(
                "==> {label}: {clients} clients, {seconds} s of renewals, offered {}",
                rate_label(rate)
            );
            let row =
                renew_step(&generator, kind, clients, seconds, rate).unwrap_or_else(|error| {
                    RenewRow {
                        server: String::new(),
                        rate,
                        bind_seconds: None,
                        sent: 0,
                        acked: 0,
                        seconds: 0.0,
                        server_cpu: 0.0,
                        kernel_renewals: None,
                        error: Some(format!("{error:#}")),
                    }
                });
            if let Some(error) = &row.error {
                println!("    failed: {error}");
            }
            rows.push(RenewRow {
                server: (*label).to_owned(),
                ..row
            });
        }
    }
    let table = renew_table(&rows, clients, seconds);
    println!("\n{table}");
    let out = root().join("target/bench-renew.md");
    std::fs::write(&out, &table).with_context(|| format!("write {}", out.display()))?;
    println!("written to {}", out.display());
    Ok(())
}

fn renew_step(
    generator: &Path,
    kind: &ServerKind,
    clients: u32,
    seconds: u32,
    rate: u32,
) -> Result<RenewRow> {
    let lab = Lab::new(RENEW_SERVER_CIDR)?;
    let mut server = ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind: kind.clone(),
        config: renew_config(),
        interface: lab.server_if.clone(),
        relayed: false,
        // The replay renews each lease seconds after binding it, within ISC's default
        // `dhcp-cache-threshold` (25 %), where xdhcpd answers from the lease as it stands in
        // userspace; Kea's `cache-threshold` is off by default, so it is off here too.
        dhcpd_conf: matches!(kind, ServerKind::Xdhcpd { .. }).then(|| {
            format!(
                "dhcp-cache-threshold 0;\n{}",
                renew_config().to_dhcpd_conf()
            )
        }),
    }
    .start()?;
    let generator = generator.to_string_lossy();
    let leases = lab.dir.join("clients.txt");
    let mut command = lab.client.command(&generator);
    command
        .args(["dora", &lab.client_if, &clients.to_string()])
        .arg(&leases);
    let mut proc = Proc::spawn("renew_load dora", command, lab.dir.join("dora.log"))?;
    let exit = proc.wait_exit(Duration::from_secs(180))?;
    let text = proc.log_text();
    if !exit.success() {
        bail!("renew_load dora failed ({exit}):\n{text}");
    }
    let bind_seconds = text.lines().find_map(|line| {
        let rest = line.strip_prefix("bound ")?;
        rest.split_whitespace().nth(3)?.parse().ok()
    });
    // Servers answering from userspace send the ACK to ciaddr through the kernel, which would
    // ARP for each client: the clients have no stack, so their neighbours are made permanent.
    let mut batch = String::new();
    for line in std::fs::read_to_string(&leases)?.lines() {
        let mut fields = line.split_whitespace();
        if let (Some(ip), Some(mac)) = (fields.next(), fields.next()) {
            let _ = writeln!(
                batch,
                "neigh replace {ip} lladdr {mac} dev {} nud permanent",
                lab.server_if
            );
        }
    }
    let batch_file = lab.dir.join("neigh.batch");
    std::fs::write(&batch_file, batch)?;
    run_command(lab.server.command("ip").arg("-batch").arg(&batch_file))?;
    let cpu_before = server.proc.cpu_seconds();
    let mut command = lab.client.command(&generator);
    command
        .args(["renew", &lab.client_if])
        .arg(&leases)
        .arg(seconds.to_string());
    if rate > 0 {
        command.arg(rate.to_string());
    }
    let mut proc = Proc::spawn("renew_load renew", command, lab.dir.join("renew.log"))?;
    let exit = proc.wait_exit(Duration::from_secs(u64::from(seconds) + 60))?;
    let server_cpu = server.proc.cpu_seconds() - cpu_before;
    let text = proc.log_text();
    if !exit.success() {
        bail!("renew_load renew failed ({exit}):\n{text}");
    }
    let fields: Vec<&str> = text
        .lines()
        .find(|line| line.starts_with("RENEW "))
        .with_context(|| format!("no RENEW line in:\n{text}"))?
        .split_whitespace()
        .collect();
    let field = |name: &str| -> Result<f64> {
        let index = fields
            .iter()
            .position(|field| *field == name)
            .with_context(|| format!("no {name} in renew_load's output"))?;
        fields
            .get(index + 1)
            .and_then(|value| value.parse().ok())
            .with_context(|| format!("bad {name} in renew_load's output"))
    };
    let (sent, acked, elapsed) = (field("sent")?, field("acked")?, field("seconds")?);
    let mut kernel_renewals = None;
    if matches!(kind, ServerKind::Xdhcpd { .. }) {
        server.proc.signal("TERM")?;
        let _ = server.proc.wait_exit(Duration::from_secs(30));
        kernel_renewals = server.proc.log_text().lines().find_map(|line| {
            let (before, _) = line.split_once(" renewals answered in the kernel")?;
            before.rsplit(' ').next()?.parse().ok()
        });
        if kernel_renewals.is_none() {
            kernel_renewals = Some(0);
        }
    }
    Ok(RenewRow {
        server: String::new(),
        rate,
        bind_seconds,
        sent: sent as u64,
        acked: acked as u64,
        seconds: elapsed,
        server_cpu,
        kernel_renewals,
        error: None,
    })
}

/// A step is clean when at most this share of the renewals went unanswered.
const CLEAN_LOSS_PERCENT: f64 = 0.1;

fn renew_table(rows: &[RenewRow], clients: u32, seconds: u32) -> String {
    let mut table = String::new();
    let _ = writeln!(
        table,
        "renew_load: {clients} direct clients bound by DORA, then RENEWING DHCPREQUESTs replayed \
         over AF_PACKET (sendmmsg, 64 per batch) for {seconds} s per step; server on a veth in \
         its own namespace, fresh lab and lease file per step.\n"
    );
    let _ = writeln!(
        table,
        "| server | offered/s | DORA of all clients s | renewals sent/s | renewals answered/s | loss % | server CPU s | answered in the kernel |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let loss =
        |row: &RenewRow| 100.0 * row.sent.saturating_sub(row.acked) as f64 / row.sent.max(1) as f64;
    let per_second = |row: &RenewRow, count: u64| count as f64 / row.seconds.max(0.001);
    for row in rows {
        if let Some(error) = &row.error {
            let _ = writeln!(
                table,
                "| {} | {} | failed: {} | | | | | |",
                row.server,
                rate_label(row.rate),
                error.lines().next().unwrap_or("?")
            );
            continue;
        }
        let _ = writeln!(
            table,
            "| {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {} |",
            row.server,
            rate_label(row.rate),
            row.bind_seconds
                .map_or_else(|| "–".to_owned(), |seconds| format!("{seconds:.2}")),
            per_second(row, row.sent),
            per_second(row, row.acked),
            loss(row),
            row.server_cpu,
            row.kernel_renewals
                .map_or_else(|| "–".to_owned(), |count| count.to_string()),
        );
    }
    // The clean rate brackets a server's capacity: the highest answered rate of a step that lost
    // at most CLEAN_LOSS_PERCENT, and the next offered rate it could not keep up with.
    let _ = writeln!(
        table,
        "\nClean rate (loss ≤ {CLEAN_LOSS_PERCENT} %), per server: the best clean step and the \
         lowest offered rate that was not clean."
    );
    let mut servers: Vec<&str> = rows.iter().map(|row| row.server.as_str()).collect();
    servers.dedup();
    for server in servers {
        let steps: Vec<&RenewRow> = rows
            .iter()
            .filter(|row| row.server == server && row.error.is_none())
            .collect();
        let clean = steps
            .iter()
            .filter(|row| loss(row) <= CLEAN_LOSS_PERCENT)
            .map(|row| per_second(row, row.acked))
            .fold(None, |best: Option<f64>, rate| {
                Some(best.map_or(rate, |best| best.max(rate)))
            });
        let first_unclean = steps
            .iter()
            .filter(|row| row.rate != 0 && loss(row) > CLEAN_LOSS_PERCENT)
            .map(|row| row.rate)
            .min();
        let _ = writeln!(
            table,
            "- {server}: clean up to {} answered/s; first unclean offered rate: {}",
            clean.map_or_else(|| "none".to_owned(), |rate| format!("{rate:.0}")),
            first_unclean.map_or_else(|| "none in this ladder".to_owned(), rate_label),
        );
    }
    table
}
