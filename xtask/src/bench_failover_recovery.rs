//! Failover at ISP scale, in the lab of `server/tests/netns/failover.rs` (two server
//! namespaces on one bridge, the client side as a relay agent on the bridge):
//!
//! - `cargo xtask bench failover-recovery --leases N`: a pair in NORMAL holding N active leases
//!   (both lease files written as each server would have them after the BNDUPDs, with the
//!   failover state records saying NORMAL) loses the secondary's disk: the secondary is killed,
//!   its lease file emptied, and it is started again. It comes back in RECOVER (no saved state,
//!   docs/spec/failover.md §6.1), asks for everything (UPDREQALL), receives every lease
//!   (BNDUPD), UPDDONE, waits out STOS + MCLT (RECOVER-WAIT), and both return to NORMAL.
//!   Measured: time until the secondary has everything and until both are NORMAL (the
//!   `failover peer … state` records of both lease files, followed as they are written),
//!   leases per second over the channel, and renewals of the existing leases, sent by a relay
//!   agent throughout, answered / sent.
//! - `cargo xtask bench failover-takeover`: the primary dies under a stream of new clients, the
//!   operator puts the secondary in PARTNER-DOWN with ISC's `omshell` (docs/spec/omapi.md
//!   §8.5); the secondary serves its BACKUP leases at once and the primary's FREE ones only
//!   after MCLT (§8). Measured: clients refused and when the secondary first hands out one of
//!   the primary's leases.
//!
//! Servers run by hand in the namespaces (never as services); the client is
//! `server/tests/netns/relay_client.py`.

use crate::netns::{wait_for, Netns, Proc};
use crate::plot::{Mark, Series};
use crate::util::{build_release, root};
use anyhow::{bail, Context as _, Result};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{BufWriter, Read as _, Seek as _, SeekFrom, Write as _};
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::bench_failover::pair;
use pair::{PairLab, PairServer, ADDRESS_A, ADDRESS_B, RELATIONSHIP};

const RELAY_CLIENT: &str = include_str!("../../server/tests/netns/relay_client.py");
/// The pool lives in its own subnet of the lab's shared network (the bridge's /16 is too small
/// for a million addresses): 10.64.0.0/10, from 10.64.0.10 on.
const POOL_FIRST: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 10);
/// How long a pair started from its written files may take to say NORMAL.
const START_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(clap::Args)]
pub struct RecoveryArgs {
    /// Active leases in the pair's lease files.
    #[arg(long, default_value_t = 100_000)]
    pub leases: u32,
    /// Pairs, in order: xdhcpd, isc, mixed (xdhcpd primary + ISC secondary).
    #[arg(long, value_delimiter = ',', default_value = "xdhcpd,isc,mixed")]
    pub pairs: Vec<String>,
    /// MCLT in seconds (the recovering secondary waits STOS + MCLT in RECOVER-WAIT).
    #[arg(long, default_value_t = 5)]
    pub mclt: u32,
    /// Renewals per second sent during the recovery.
    #[arg(long, default_value_t = 50)]
    pub renew_rate: u32,
    /// Stop waiting for a pair's recovery after this many seconds (reported as capped).
    #[arg(long, default_value_t = 900)]
    pub cap: u64,
    /// max-unacked-updates on both servers.
    #[arg(long, default_value_t = 10)]
    pub max_unacked: u32,
}

#[derive(clap::Args)]
pub struct ChartArgs {
    /// `LABEL=PATH` of a `target/bench-failover-recovery.tsv` kept from a run: every pair in
    /// it becomes one line named `LABEL` (with the pair's name when the file holds several).
    #[arg(long = "series", required = true)]
    pub series: Vec<String>,
    /// The SVG to write.
    #[arg(long)]
    pub output: PathBuf,
    #[arg(long, default_value = "Secondary's recovery")]
    pub title: String,
}

#[derive(clap::Args)]
pub struct TakeoverArgs {
    /// Pairs, in order: xdhcpd, isc, mixed (xdhcpd primary + ISC secondary).
    #[arg(long, value_delimiter = ',', default_value = "xdhcpd,isc")]
    pub pairs: Vec<String>,
    /// Addresses in the pool, all free: half FREE (the primary's), half BACKUP.
    #[arg(long, default_value_t = 1_000)]
    pub pool: u32,
    /// New clients per second (DISCOVER, secs 0).
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// MCLT in seconds (short, for the bench).
    #[arg(long, default_value_t = 15)]
    pub mclt: u32,
    /// Seconds of load before the primary is killed.
    #[arg(long, default_value_t = 5)]
    pub before: u32,
    /// Seconds from the kill to the operator's PARTNER-DOWN.
    #[arg(long, default_value_t = 3)]
    pub operator_delay: u32,
    /// Seconds of load after PARTNER-DOWN + MCLT.
    #[arg(long, default_value_t = 5)]
    pub after: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Xdhcpd,
    Isc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PairKind {
    Xdhcpd,
    Isc,
    Mixed,
}

impl PairKind {
    fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "xdhcpd" => Self::Xdhcpd,
            "isc" => Self::Isc,
            "mixed" => Self::Mixed,
            other => bail!("unknown pair {other} (xdhcpd, isc, mixed)"),
        })
    }

    fn label(self) -> &'static str {
        match self {
            Self::Xdhcpd => "xdhcpd pair",
            Self::Isc => "ISC dhcpd 4.4 pair",
            Self::Mixed => "xdhcpd primary + ISC secondary",
        }
    }

    /// (primary, secondary)
    fn sides(self) -> (Kind, Kind) {
        match self {
            Self::Xdhcpd => (Kind::Xdhcpd, Kind::Xdhcpd),
            Self::Isc => (Kind::Isc, Kind::Isc),
            Self::Mixed => (Kind::Xdhcpd, Kind::Isc),
        }
    }
}

/// One server's dhcpd.conf: the failover block of the lab (split 128, load balance max
/// seconds 5) and a shared network holding the bridge's subnet (where the relay's giaddr is)
/// and the pool's.
#[derive(Clone, Debug)]
struct Conf {
    primary: bool,
    pool_size: u32,
    mclt: u32,
    max_unacked: u32,
    omapi: bool,
}

/// OMAPI port and key of the secondary (the operator's omshell runs in its namespace).
const OMAPI_PORT: u16 = 7911;
const OMAPI_SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZg==";

impl Conf {
    fn text(&self) -> String {
        let (address, peer) = if self.primary {
            (ADDRESS_A, ADDRESS_B)
        } else {
            (ADDRESS_B, ADDRESS_A)
        };
        let role = if self.primary {
            format!("primary;\n  mclt {};\n  split 128;", self.mclt)
        } else {
            "secondary;".to_owned()
        };
        let omapi = if self.omapi {
            format!(
                "key omapi_key {{ algorithm hmac-md5; secret \"{OMAPI_SECRET}\"; }};\n\
                 omapi-port {OMAPI_PORT};\nomapi-key omapi_key;\n"
            )
        } else {
            String::new()
        };
        format!(
            "authoritative;\nddns-update-style none;\nping-check false;\n\
             default-lease-time 3600;\nmax-lease-time 7200;\n\
             server-identifier {address};\n{omapi}\
             failover peer \"{RELATIONSHIP}\" {{\n  {role}\n  address {address};\n  port 647;\n  \
             peer address {peer};\n  peer port 647;\n  max-response-delay 30;\n  \
             max-unacked-updates {unacked};\n  load balance max seconds 5;\n}}\n\
             shared-network lab {{\n  subnet 10.215.0.0 netmask 255.255.0.0 {{ }}\n  \
             subnet 10.64.0.0 netmask 255.192.0.0 {{\n    pool {{\n      \
             failover peer \"{RELATIONSHIP}\";\n      range {first} {last};\n    }}\n  }}\n}}\n",
            unacked = self.max_unacked,
            first = POOL_FIRST,
            last = pool_address(self.pool_size.max(1) - 1),
        )
    }
}

fn pool_address(index: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(POOL_FIRST) + index)
}

/// The MAC of the client holding the `index`th lease.
fn lease_mac(index: u32) -> String {
    let [a, b, c, d] = index.to_be_bytes();
    format!("02:40:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// What the pool holds when the pair is written: `active` leases from the first address, then
/// `free` FREE (the primary's) and `backup` BACKUP (the secondary's) addresses.
#[derive(Clone, Copy, Debug)]
struct Layout {
    active: u32,
    free: u32,
    backup: u32,
}

impl Layout {
    fn size(&self) -> u32 {
        self.active + self.free + self.backup
    }
}

/// Writes a lease file as a server of a pair in NORMAL has it once every lease has been
/// acknowledged by the partner (dhcpd.leases(5); `epoch` dates as `db-time-format local`
/// writes them): active leases with tstp = tsfp = atsfp = ends, FREE and BACKUP leases with
/// their transfer times, and the state record (a secondary also records the MCLT, §12).
fn write_pair_lease_file(path: &Path, primary: bool, layout: Layout, mclt: u32) -> Result<()> {
    let now = unix_now();
    let starts = now - 3600;
    let ends = now + 30 * 86_400;
    let file = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    writeln!(
        out,
        "# The format of this file is documented in the dhcpd.leases(5) manual page.\n\
         # Written by cargo xtask bench failover-recovery\n\n\
         authoring-byte-order little-endian;\n"
    )?;
    for index in 0..layout.active {
        writeln!(
            out,
            "lease {} {{\n  starts epoch {starts};\n  ends epoch {ends};\n  tstp epoch {ends};\n  \
             tsfp epoch {ends};\n  atsfp epoch {ends};\n  cltt epoch {starts};\n  \
             binding state active;\n  next binding state expired;\n  \
             hardware ethernet {};\n}}",
            pool_address(index),
            lease_mac(index)
        )?;
    }
    for index in layout.active..layout.size() {
        let state = if index - layout.active < layout.free {
            "free"
        } else {
            "backup"
        };
        writeln!(
            out,
            "lease {} {{\n  starts epoch {starts};\n  tstp epoch {starts};\n  tsfp epoch {starts};\n  \
             atsfp epoch {starts};\n  binding state {state};\n}}",
            pool_address(index)
        )?;
    }
    let mclt_line = if primary {
        String::new()
    } else {
        format!("  mclt {mclt};\n")
    };
    writeln!(
        out,
        "\nfailover peer \"{RELATIONSHIP}\" state {{\n  my state normal at epoch {starts};\n  \
         partner state normal at epoch {starts};\n{mclt_line}}}"
    )?;
    out.flush()?;
    Ok(())
}

/// The bench is a driver: it owns the clock. Wall-clock time, because relay_client.py stamps
/// its transactions with it.
#[expect(clippy::disallowed_methods, reason = "benchmark driver owns the clock")]
fn system_now() -> SystemTime {
    SystemTime::now()
}

fn unix_now() -> u64 {
    system_now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Seconds since the epoch, as relay_client.py writes them.
fn wall_clock() -> f64 {
    epoch_seconds(system_now())
}

fn epoch_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

fn lease_file(kind: Kind, dir: &Path) -> PathBuf {
    match kind {
        Kind::Xdhcpd => dir.join("server.leases"),
        Kind::Isc => dir.join("isc.leases"),
    }
}

fn start(kind: Kind, binary: &Path, netns: &Netns, dir: &Path, conf: &Conf) -> Result<PairServer> {
    match kind {
        Kind::Xdhcpd => pair::start_xdhcpd(binary, netns, dir, conf.text()),
        Kind::Isc => pair::start_isc(netns, dir, &conf.text(), false),
    }
}

/// Follows a lease file as it is written (appended; a rewrite — new inode or a shorter file —
/// starts over): the `my state` of every failover state record, and how many records say
/// `binding state active`.
struct LeaseFollower {
    path: PathBuf,
    inode: u64,
    offset: u64,
    partial: String,
    in_state_block: bool,
    state: Option<String>,
    active_records: u64,
    /// Each `my state` seen, with when this follower saw it.
    transitions: Vec<(Instant, String)>,
}

impl LeaseFollower {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            inode: 0,
            offset: 0,
            partial: String::new(),
            in_state_block: false,
            state: None,
            active_records: 0,
            transitions: Vec::new(),
        }
    }

    fn poll(&mut self) -> Result<()> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Ok(());
        };
        let metadata = file.metadata()?;
        if metadata.ino() != self.inode || metadata.len() < self.offset {
            self.inode = metadata.ino();
            self.offset = 0;
            self.partial.clear();
            self.in_state_block = false;
            self.active_records = 0;
        }
        if metadata.len() == self.offset {
            return Ok(());
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let Some(end) = self.partial.rfind('\n') else {
            return Ok(());
        };
        let complete: String = self.partial.drain(..=end).collect();
        for line in complete.lines() {
            let line = line.trim();
            if line == "binding state active;" {
                self.active_records += 1;
            } else if line.starts_with("failover peer ") && line.ends_with("state {") {
                self.in_state_block = true;
            } else if self.in_state_block {
                if let Some(rest) = line.strip_prefix("my state ") {
                    let state = rest.split([' ', ';']).next().unwrap_or_default().to_owned();
                    if self.state.as_deref() != Some(&state) {
                        self.transitions.push((crate::netns::now(), state.clone()));
                    }
                    self.state = Some(state);
                } else if line == "}" {
                    self.in_state_block = false;
                }
            }
        }
        Ok(())
    }
}

/// One transaction of relay_client.py.
#[derive(Clone, Debug)]
struct Transaction {
    start: f64,
    end: f64,
    result: String,
    server: Option<Ipv4Addr>,
    yiaddr: Option<Ipv4Addr>,
}

fn parse_transactions(text: &str) -> Vec<Transaction> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() != 6 {
                return None;
            }
            Some(Transaction {
                start: fields[0].parse().ok()?,
                end: fields[1].parse().ok()?,
                result: fields[3].to_owned(),
                server: fields[4].parse().ok(),
                yiaddr: fields[5].parse().ok(),
            })
        })
        .collect()
}

/// relay_client.py in the lab's client namespace.
fn spawn_relay_client(
    lab: &PairLab,
    mode: &str,
    input: &str,
    name: &str,
    keys: &[String],
) -> Result<(Proc, PathBuf)> {
    let script = lab.dir.join("relay_client.py");
    std::fs::write(&script, RELAY_CLIENT)?;
    let input_path = lab.dir.join(&format!("{name}.in"));
    std::fs::write(&input_path, input)?;
    let output = lab.dir.join(&format!("{name}.out"));
    let mut command = lab.client.command("python3");
    command
        .arg(&script)
        .arg(mode)
        .arg(&input_path)
        .arg(&output)
        .args(keys);
    let proc = Proc::spawn(name, command, lab.dir.join(&format!("{name}.log")))?;
    Ok((proc, output))
}

fn wait_normal(
    servers: &mut [&mut PairServer],
    followers: &mut [&mut LeaseFollower],
    timeout: Duration,
) -> Result<()> {
    wait_for("both servers in NORMAL", timeout, || {
        for server in servers.iter_mut() {
            server.check_running()?;
        }
        for follower in followers.iter_mut() {
            follower.poll()?;
        }
        Ok(followers
            .iter()
            .all(|follower| follower.state.as_deref() == Some("normal"))
            .then_some(()))
    })
}

struct RecoveryRow {
    pair: PairKind,
    error: Option<String>,
    capped: bool,
    /// Seconds from the restart until the secondary left RECOVER (it has every lease).
    transfer_done: Option<f64>,
    /// Seconds from the restart until both said NORMAL.
    normal: Option<f64>,
    /// Active lease records the secondary wrote, and over how long (first to last seen).
    received: u64,
    stream_seconds: f64,
    renewals_sent: u64,
    renewals_answered: u64,
    renewals_answered_by_secondary: u64,
    cpu: f64,
    /// (seconds since restart, active leases the secondary has written)
    series: Vec<(f64, u64)>,
    states: Vec<(f64, &'static str, String)>,
}

impl RecoveryRow {
    fn failed(pair: PairKind, error: String) -> Self {
        Self {
            pair,
            error: Some(error),
            capped: false,
            transfer_done: None,
            normal: None,
            received: 0,
            stream_seconds: 0.0,
            renewals_sent: 0,
            renewals_answered: 0,
            renewals_answered_by_secondary: 0,
            cpu: 0.0,
            series: Vec::new(),
            states: Vec::new(),
        }
    }
}

fn xdhcpd_binary() -> Result<PathBuf> {
    // `XDH_BENCH_XDHCPD=path` runs a given binary instead of building the release one.
    Ok(match std::env::var_os("XDH_BENCH_XDHCPD") {
        Some(path) => PathBuf::from(path),
        None => build_release()?,
    })
}

pub fn recovery(args: &RecoveryArgs) -> Result<()> {
    crate::setup::run()?;
    if args.leases == 0 || args.leases > 3_000_000 {
        bail!("--leases must be 1..=3000000 (the pool subnet holds 4 million addresses)");
    }
    let pairs = args
        .pairs
        .iter()
        .map(|name| PairKind::parse(name))
        .collect::<Result<Vec<_>>>()?;
    let binary = xdhcpd_binary()?;
    let mut rows = Vec::new();
    for &pair in &pairs {
        println!(
            "==> {}: {} active leases, secondary loses its disk",
            pair.label(),
            args.leases
        );
        let row = recovery_step(&binary, pair, args)
            .unwrap_or_else(|error| RecoveryRow::failed(pair, format!("{error:#}")));
        match &row.error {
            Some(error) => println!("    failed: {error}"),
            None => println!(
                "    transfer done after {}, both NORMAL after {}, renewals {}/{} answered",
                seconds(row.transfer_done),
                seconds(row.normal),
                row.renewals_answered,
                row.renewals_sent
            ),
        }
        rows.push(row);
    }
    let table = recovery_table(&rows, args);
    println!("\n{table}");
    let out = root().join("target/bench-failover-recovery.md");
    std::fs::write(&out, &table).with_context(|| format!("write {}", out.display()))?;
    let series = root().join("target/bench-failover-recovery.tsv");
    std::fs::write(&series, series_tsv(&rows))?;
    let chart = root().join("target/bench-failover-recovery.svg");
    recovery_chart(&chart, &rows, args)?;
    println!(
        "written to {}, {} and {}",
        out.display(),
        series.display(),
        chart.display()
    );
    Ok(())
}

/// `cargo xtask bench failover-recovery-chart`: the series of earlier runs on one chart.
pub fn chart(args: &ChartArgs) -> Result<()> {
    let mut rows = Vec::new();
    for spec in &args.series {
        let (label, path) = spec
            .split_once('=')
            .with_context(|| format!("--series {spec}: expected LABEL=PATH"))?;
        let text = std::fs::read_to_string(path).with_context(|| format!("read {path}"))?;
        let mut by_pair: Vec<(String, Vec<(f64, u64)>)> = Vec::new();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split('\t').collect();
            let [pair, at, count] = fields[..] else {
                continue;
            };
            let (Ok(at), Ok(count)) = (at.parse::<f64>(), count.parse::<u64>()) else {
                continue;
            };
            match by_pair.iter_mut().find(|(name, _)| name == pair) {
                Some((_, points)) => points.push((at, count)),
                None => by_pair.push((pair.to_owned(), vec![(at, count)])),
            }
        }
        let several = by_pair.len() > 1;
        for (pair, points) in by_pair {
            let name = if several {
                format!("{label}: {pair}")
            } else {
                label.to_owned()
            };
            rows.push(Series {
                name,
                points: changes_only(&points),
            });
        }
    }
    crate::plot::line_chart_marked(
        &args.output,
        &args.title,
        "seconds since the secondary's restart",
        "active leases written by the secondary",
        &rows,
        &[],
        false,
        plotters::prelude::SeriesLabelPosition::LowerRight,
    )?;
    println!("chart: {}", args.output.display());
    Ok(())
}

/// The samples where a count changes, and the one before each change (so flat stretches stay
/// flat), and the last.
fn changes_only(series: &[(f64, u64)]) -> Vec<(f64, f64)> {
    let mut points = Vec::new();
    for (index, &(at, count)) in series.iter().enumerate() {
        let changes_next = series.get(index + 1).is_none_or(|&(_, next)| next != count);
        let changed = index == 0 || series[index - 1].1 != count;
        if changed || changes_next {
            points.push((at, count as f64));
        }
    }
    points
}

/// Leases the secondary has written against seconds since its restart, one line per pair; a
/// sample is kept where the count changes (and the one before, so flat stretches stay flat).
fn recovery_chart(path: &Path, rows: &[RecoveryRow], args: &RecoveryArgs) -> Result<()> {
    let series: Vec<Series> = rows
        .iter()
        .filter(|row| row.error.is_none())
        .map(|row| {
            let points = changes_only(&row.series);
            let label = match (row.normal, row.capped) {
                (Some(normal), _) => format!("{} (NORMAL at {normal:.1} s)", row.pair.label()),
                (None, true) => format!("{} (capped at {} s)", row.pair.label(), args.cap),
                (None, false) => row.pair.label().to_owned(),
            };
            Series {
                name: label,
                points,
            }
        })
        .collect();
    crate::plot::line_chart_marked(
        path,
        &format!(
            "Secondary's recovery of {} leases (max-unacked-updates {}, mclt {})",
            args.leases, args.max_unacked, args.mclt
        ),
        "seconds since the secondary's restart",
        "active leases written by the secondary",
        &series,
        &[],
        false,
        plotters::prelude::SeriesLabelPosition::LowerRight,
    )
}

fn recovery_step(binary: &Path, pair: PairKind, args: &RecoveryArgs) -> Result<RecoveryRow> {
    let lab = PairLab::new()?;
    let (primary_kind, secondary_kind) = pair.sides();
    let dir_a = lab.server_dir("a")?;
    let dir_b = lab.server_dir("b")?;
    let margin = (args.leases / 100).max(1_000);
    let layout = Layout {
        active: args.leases,
        free: margin / 2,
        backup: margin - margin / 2,
    };
    let conf = |primary: bool| Conf {
        primary,
        pool_size: layout.size(),
        mclt: args.mclt,
        max_unacked: args.max_unacked,
        omapi: false,
    };
    let file_a = lease_file(primary_kind, &dir_a);
    let file_b = lease_file(secondary_kind, &dir_b);
    write_pair_lease_file(&file_a, true, layout, args.mclt)?;
    write_pair_lease_file(&file_b, false, layout, args.mclt)?;
    let mut primary = start(primary_kind, binary, &lab.a, &dir_a, &conf(true))?;
    let mut secondary = start(secondary_kind, binary, &lab.b, &dir_b, &conf(false))?;
    let mut follow_a = LeaseFollower::new(&file_a);
    let mut follow_b = LeaseFollower::new(&file_b);
    wait_normal(
        &mut [&mut primary, &mut secondary],
        &mut [&mut follow_a, &mut follow_b],
        START_TIMEOUT,
    )
    .context("the pair written in NORMAL did not say NORMAL")?;
    println!("    pair in NORMAL; killing the secondary and emptying its lease file");

    // Renewals of leases spread over the whole pool, cycled, from a relay agent.
    let step = (args.leases / 2_000).max(1);
    let renew_input: String = (0..args.leases)
        .step_by(step as usize)
        .map(|index| format!("{} {}\n", lease_mac(index), pool_address(index)))
        .collect();
    let stop = lab.dir.join("renewer.stop");
    let (mut renewer, renew_output) = spawn_relay_client(
        &lab,
        "renew",
        &renew_input,
        "renewer",
        &[
            format!("rate={}", args.renew_rate),
            "timeout=2".into(),
            format!("seconds={}", args.cap + 120),
            format!("stop={}", stop.display()),
        ],
    )?;

    secondary.proc.kill();
    std::fs::write(&file_b, "")?;
    let restart = crate::netns::now();
    let restart_epoch = wall_clock();
    let cpu_a_before = primary.proc.cpu_seconds();
    let mut secondary = start(secondary_kind, binary, &lab.b, &dir_b, &conf(false))?;
    let mut follow_b = LeaseFollower::new(&file_b);
    let transitions_a_before = follow_a.transitions.len();

    let mut series = Vec::new();
    let mut transfer_done = None;
    let mut normal = None;
    let mut first_received: Option<f64> = None;
    let mut last_received = (0.0, 0u64);
    let mut capped = false;
    loop {
        primary.check_running()?;
        secondary.check_running()?;
        follow_a.poll()?;
        follow_b.poll()?;
        let elapsed = restart.elapsed().as_secs_f64();
        let received = follow_b.active_records;
        if received > 0 && first_received.is_none() {
            first_received = Some(elapsed);
        }
        // The stream ends when the secondary leaves RECOVER; later active records are the
        // renewals.
        if received > last_received.1 && transfer_done.is_none() {
            last_received = (elapsed, received);
        }
        series.push((elapsed, received));
        if transfer_done.is_none()
            && matches!(
                follow_b.state.as_deref(),
                Some("recover-wait" | "recover-done" | "normal")
            )
        {
            transfer_done = Some(elapsed);
        }
        let primary_left_normal = follow_a.transitions[transitions_a_before..]
            .iter()
            .any(|(_, state)| state != "normal");
        if follow_b.state.as_deref() == Some("normal")
            && follow_a.state.as_deref() == Some("normal")
            && primary_left_normal
        {
            normal = Some(elapsed);
            break;
        }
        if elapsed > args.cap as f64 {
            capped = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let cpu = primary.proc.cpu_seconds() - cpu_a_before + secondary.proc.cpu_seconds();
    std::fs::write(&stop, "")?;
    renewer.wait_exit(Duration::from_secs(30))?;
    let end_epoch = restart_epoch + normal.unwrap_or(args.cap as f64);
    let renewals: Vec<Transaction> =
        parse_transactions(&std::fs::read_to_string(&renew_output).unwrap_or_default())
            .into_iter()
            .filter(|renewal| renewal.start >= restart_epoch && renewal.start <= end_epoch)
            .collect();
    let answered = renewals.iter().filter(|renewal| renewal.result == "ack");
    let states = follow_a.transitions[transitions_a_before..]
        .iter()
        .map(|(at, state)| (*at, "primary", state.clone()))
        .chain(
            follow_b
                .transitions
                .iter()
                .map(|(at, state)| (*at, "secondary", state.clone())),
        )
        .map(|(at, side, state)| {
            (
                at.saturating_duration_since(restart).as_secs_f64(),
                side,
                state,
            )
        })
        .collect();
    Ok(RecoveryRow {
        pair,
        error: None,
        capped,
        transfer_done,
        normal,
        received: last_received.1,
        stream_seconds: last_received.0 - first_received.unwrap_or(last_received.0),
        renewals_sent: renewals.len() as u64,
        renewals_answered: answered.clone().count() as u64,
        renewals_answered_by_secondary: answered
            .filter(|renewal| renewal.server == Some(ADDRESS_B))
            .count() as u64,
        cpu,
        series,
        states,
    })
}

fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |value| format!("{value:.1} s"))
}

fn recovery_table(rows: &[RecoveryRow], args: &RecoveryArgs) -> String {
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{} active leases (+ {} free-state addresses) in both lease files, pair in NORMAL; the \
         secondary is killed, its lease file emptied, and it is restarted (RECOVER, UPDREQALL, \
         every lease by BNDUPD, UPDDONE, RECOVER-WAIT until STOS + MCLT, NORMAL). mclt {}, \
         max-unacked-updates {}, split 128; renewals of existing leases from a relay agent at \
         {}/s throughout (each sent once to both servers, 2 s to answer); xdhcpd release \
         build, --no-xdp. Times from the restart of the secondary.\n",
        args.leases,
        (args.leases / 100).max(1_000),
        args.mclt,
        args.max_unacked,
        args.renew_rate
    );
    let _ = writeln!(
        table,
        "| pair | secondary has every lease | both NORMAL | leases/s over the channel | renewals answered / sent | by the secondary | CPU s, both | ISC pair's time / this: every lease, NORMAL |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let isc = rows
        .iter()
        .find(|row| row.pair == PairKind::Isc && row.error.is_none());
    // A capped ISC run counts as the cap (the ratio is then a lower bound, marked ">").
    let ratio = |isc_time: Option<f64>, isc_capped: bool, this: Option<f64>| match (isc_time, this)
    {
        (Some(isc), Some(this)) if this > 0.0 => format!("{:.1}×", isc / this),
        (None, Some(this)) if isc_capped && this > 0.0 => {
            format!("> {:.1}×", args.cap as f64 / this)
        }
        _ => "–".to_owned(),
    };
    for row in rows {
        if let Some(error) = &row.error {
            let _ = writeln!(
                table,
                "| {} | failed: {} | | | | | | |",
                row.pair.label(),
                error.lines().next().unwrap_or("?")
            );
            continue;
        }
        let normal = match (row.normal, row.capped) {
            (Some(normal), _) => format!("{normal:.1} s"),
            (None, true) => format!("> {} s (capped)", args.cap),
            (None, false) => "–".to_owned(),
        };
        let rate = if row.stream_seconds > 0.0 {
            format!("{:.0}", row.received as f64 / row.stream_seconds)
        } else {
            "–".to_owned()
        };
        let ratio = match isc {
            Some(isc) if row.pair != PairKind::Isc => format!(
                "{}, {}",
                ratio(isc.transfer_done, isc.capped, row.transfer_done),
                ratio(isc.normal, isc.capped, row.normal)
            ),
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            table,
            "| {} | {} | {normal} | {rate} ({} in {:.1} s) | {} / {} | {} | {:.1} | {ratio} |",
            row.pair.label(),
            match (row.transfer_done, row.capped) {
                (None, true) => format!("> {} s (capped)", args.cap),
                (done, _) => seconds(done),
            },
            row.received,
            row.stream_seconds,
            row.renewals_answered,
            row.renewals_sent,
            row.renewals_answered_by_secondary,
            row.cpu,
        );
    }
    let _ = writeln!(table, "\nState changes (seconds after the restart):\n");
    for row in rows.iter().filter(|row| row.error.is_none()) {
        let changes: Vec<String> = row
            .states
            .iter()
            .map(|(at, side, state)| format!("{at:.1} {side} {state}"))
            .collect();
        let _ = writeln!(table, "- {}: {}", row.pair.label(), changes.join(", "));
    }
    table
}

fn series_tsv(rows: &[RecoveryRow]) -> String {
    let mut text = String::from("pair\tseconds\tactive_leases_received\n");
    for row in rows {
        for (at, count) in &row.series {
            let _ = writeln!(text, "{}\t{at:.2}\t{count}", row.pair.label());
        }
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Partner-down takeover

struct TakeoverRow {
    pair: PairKind,
    error: Option<String>,
    /// Clients started in each phase and how many got no lease: before the kill, from the kill
    /// to PARTNER-DOWN, from PARTNER-DOWN to + MCLT, after.
    phases: [(u64, u64); 4],
    /// Seconds from PARTNER-DOWN (the omshell update) to the first ACK of one of the primary's
    /// FREE addresses by the secondary.
    first_primary_lease: Option<f64>,
    /// Seconds from the kill until the secondary's lease file said partner-down.
    partner_down_seen: Option<f64>,
    /// Leases the secondary ACKed after the kill: from its BACKUP stock, from the primary's.
    after_kill_backup: u64,
    after_kill_primary: u64,
    /// Seconds from the start of the load to the kill, to PARTNER-DOWN and to its + MCLT.
    moments: [f64; 3],
    /// Per second of the load (by start time): clients answered with a lease, refused.
    per_second: Vec<(u64, u64)>,
}

pub fn takeover(args: &TakeoverArgs) -> Result<()> {
    crate::setup::run()?;
    if args.pool < 10 || args.rate == 0 {
        bail!("--pool must be at least 10 and --rate above 0");
    }
    let pairs = args
        .pairs
        .iter()
        .map(|name| PairKind::parse(name))
        .collect::<Result<Vec<_>>>()?;
    let binary = xdhcpd_binary()?;
    let mut rows = Vec::new();
    for &pair in &pairs {
        println!("==> {}: primary dies under load", pair.label());
        let row = takeover_step(&binary, pair, args).unwrap_or_else(|error| TakeoverRow {
            pair,
            error: Some(format!("{error:#}")),
            phases: [(0, 0); 4],
            first_primary_lease: None,
            partner_down_seen: None,
            after_kill_backup: 0,
            after_kill_primary: 0,
            moments: [0.0; 3],
            per_second: Vec::new(),
        });
        if let Some(error) = &row.error {
            println!("    failed: {error}");
        }
        rows.push(row);
    }
    let table = takeover_table(&rows, args);
    println!("\n{table}");
    let out = root().join("target/bench-failover-takeover.md");
    std::fs::write(&out, &table).with_context(|| format!("write {}", out.display()))?;
    let series = root().join("target/bench-failover-takeover.tsv");
    std::fs::write(&series, takeover_tsv(&rows))?;
    let chart = root().join("target/bench-failover-takeover.svg");
    takeover_chart(&chart, &rows, args)?;
    println!(
        "written to {}, {} and {}",
        out.display(),
        series.display(),
        chart.display()
    );
    Ok(())
}

fn takeover_tsv(rows: &[TakeoverRow]) -> String {
    let mut text = String::from("pair\tsecond\taccepted\trefused\n");
    for row in rows.iter().filter(|row| row.error.is_none()) {
        for (second, (accepted, refused)) in row.per_second.iter().enumerate() {
            let _ = writeln!(
                text,
                "{}\t{second}\t{accepted}\t{refused}",
                row.pair.label()
            );
        }
    }
    text
}

/// Clients per second answered with a lease and refused, one pair of lines per pair, with the
/// kill, PARTNER-DOWN and PARTNER-DOWN + MCLT marked (the first pair's moments; every pair's
/// are the same to a few milliseconds, set by the bench's clock).
fn takeover_chart(path: &Path, rows: &[TakeoverRow], args: &TakeoverArgs) -> Result<()> {
    let done: Vec<&TakeoverRow> = rows.iter().filter(|row| row.error.is_none()).collect();
    let mut series = Vec::new();
    for row in &done {
        for (what, pick) in [
            (
                "accepted",
                (|entry: &(u64, u64)| entry.0) as fn(&(u64, u64)) -> u64,
            ),
            ("refused", |entry: &(u64, u64)| entry.1),
        ] {
            series.push(Series {
                name: format!("{}: {what}", row.pair.label()),
                points: row
                    .per_second
                    .iter()
                    .enumerate()
                    .map(|(second, entry)| (second as f64 + 0.5, pick(entry) as f64))
                    .collect(),
            });
        }
    }
    let marks: Vec<Mark> = done
        .first()
        .map(|row| {
            ["kill", "PARTNER-DOWN", "+ MCLT"]
                .iter()
                .zip(row.moments)
                .map(|(label, x)| Mark {
                    x,
                    label: (*label).to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    crate::plot::line_chart_marked(
        path,
        &format!(
            "Partner-down takeover: {} new clients/s, pool {}, mclt {}",
            args.rate, args.pool, args.mclt
        ),
        "seconds since the load began",
        "clients per second",
        &series,
        &marks,
        true,
        plotters::prelude::SeriesLabelPosition::MiddleRight,
    )
}

fn takeover_step(binary: &Path, pair: PairKind, args: &TakeoverArgs) -> Result<TakeoverRow> {
    let lab = PairLab::new()?;
    let (primary_kind, secondary_kind) = pair.sides();
    let dir_a = lab.server_dir("a")?;
    let dir_b = lab.server_dir("b")?;
    let layout = Layout {
        active: 0,
        free: args.pool / 2,
        backup: args.pool - args.pool / 2,
    };
    let conf = |primary: bool| Conf {
        primary,
        pool_size: layout.size(),
        mclt: args.mclt,
        max_unacked: 10,
        omapi: !primary,
    };
    let file_a = lease_file(primary_kind, &dir_a);
    let file_b = lease_file(secondary_kind, &dir_b);
    write_pair_lease_file(&file_a, true, layout, args.mclt)?;
    write_pair_lease_file(&file_b, false, layout, args.mclt)?;
    let primary_free: HashSet<Ipv4Addr> = (0..layout.free).map(pool_address).collect();
    let mut primary = start(primary_kind, binary, &lab.a, &dir_a, &conf(true))?;
    let mut secondary = start(secondary_kind, binary, &lab.b, &dir_b, &conf(false))?;
    let mut follow_a = LeaseFollower::new(&file_a);
    let mut follow_b = LeaseFollower::new(&file_b);
    wait_normal(
        &mut [&mut primary, &mut secondary],
        &mut [&mut follow_a, &mut follow_b],
        START_TIMEOUT,
    )?;
    let total_seconds = args.before + args.operator_delay + args.mclt + args.after;
    let clients = u64::from(args.rate) * u64::from(total_seconds);
    let macs: String = (0..clients)
        .map(|index| {
            let [_, b, c, d] = (index as u32).to_be_bytes();
            format!("02:50:00:{b:02x}:{c:02x}:{d:02x}\n")
        })
        .collect();
    let load_epoch = wall_clock();
    let (mut load, load_output) = spawn_relay_client(
        &lab,
        "dora",
        &macs,
        "clients",
        &[
            format!("rate={}", args.rate),
            "timeout=2".into(),
            format!("seconds={total_seconds}"),
        ],
    )?;
    sleep_until(load_epoch + f64::from(args.before));
    primary.proc.kill();
    let kill_epoch = wall_clock();
    let kill_instant = crate::netns::now();
    sleep_until(kill_epoch + f64::from(args.operator_delay));
    let pd_epoch = wall_clock();
    let transcript = lab.b.omshell(&format!(
        "server 127.0.0.1\nport {OMAPI_PORT}\nkey omapi_key {OMAPI_SECRET}\nconnect\n\
         new failover-state\nset name = \"{RELATIONSHIP}\"\nopen\n\
         set local-state = 4\nupdate\n"
    ))?;
    if transcript.contains("can't") || transcript.contains("not found") {
        bail!("omshell failed:\n{transcript}");
    }
    let mut partner_down_seen = None;
    let _ = wait_for(
        "the secondary in partner-down",
        Duration::from_secs(10),
        || {
            follow_b.poll()?;
            Ok((follow_b.state.as_deref() == Some("partner-down")).then_some(()))
        },
    )
    .map(|()| partner_down_seen = Some(kill_instant.elapsed().as_secs_f64()));
    load.wait_exit(Duration::from_secs(u64::from(total_seconds) + 60))?;
    secondary.check_running()?;
    let transactions =
        parse_transactions(&std::fs::read_to_string(&load_output).unwrap_or_default());
    let mclt_end = pd_epoch + f64::from(args.mclt);
    let mut phases = [(0u64, 0u64); 4];
    let mut first_primary_lease: Option<f64> = None;
    let (mut after_kill_backup, mut after_kill_primary) = (0, 0);
    for transaction in &transactions {
        let phase = if transaction.start < kill_epoch {
            0
        } else if transaction.start < pd_epoch {
            1
        } else if transaction.start < mclt_end {
            2
        } else {
            3
        };
        phases[phase].0 += 1;
        if transaction.result != "ack" {
            phases[phase].1 += 1;
            continue;
        }
        if transaction.start < kill_epoch || transaction.server != Some(ADDRESS_B) {
            continue;
        }
        let Some(address) = transaction.yiaddr else {
            continue;
        };
        if primary_free.contains(&address) {
            after_kill_primary += 1;
            let at = transaction.end - pd_epoch;
            first_primary_lease = Some(first_primary_lease.map_or(at, |first| first.min(at)));
        } else {
            after_kill_backup += 1;
        }
    }
    let mut per_second = vec![(0u64, 0u64); total_seconds as usize];
    for transaction in &transactions {
        let second = (transaction.start - load_epoch).max(0.0) as usize;
        if let Some(entry) = per_second.get_mut(second) {
            if transaction.result == "ack" {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        }
    }
    Ok(TakeoverRow {
        pair,
        error: None,
        phases,
        first_primary_lease,
        partner_down_seen,
        after_kill_backup,
        after_kill_primary,
        moments: [
            kill_epoch - load_epoch,
            pd_epoch - load_epoch,
            mclt_end - load_epoch,
        ],
        per_second,
    })
}

fn sleep_until(epoch: f64) {
    let now = wall_clock();
    if epoch > now {
        std::thread::sleep(Duration::from_secs_f64(epoch - now));
    }
}

fn takeover_table(rows: &[TakeoverRow], args: &TakeoverArgs) -> String {
    let mut table = String::new();
    let _ = writeln!(
        table,
        "Pool of {} addresses, all free: {} FREE (primary), {} BACKUP (secondary), pair in \
         NORMAL; {} new clients/s (DISCOVER from a relay agent to both servers, secs 0, 2 s to \
         be answered, no retransmission); the primary is SIGKILLed after {} s, the operator \
         sets the secondary to PARTNER-DOWN with omshell {} s later; mclt {} (short for the \
         bench); load goes on {} s past PARTNER-DOWN + MCLT.\n",
        args.pool,
        args.pool / 2,
        args.pool - args.pool / 2,
        args.rate,
        args.before,
        args.operator_delay,
        args.mclt,
        args.after
    );
    let _ = writeln!(
        table,
        "| pair | refused / clients: before the kill | kill → PARTNER-DOWN | PARTNER-DOWN → + MCLT | after | secondary in partner-down (s after kill) | first of the primary's leases handed out (s after PARTNER-DOWN) | secondary's ACKs after the kill: BACKUP / primary's FREE |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        if let Some(error) = &row.error {
            let _ = writeln!(
                table,
                "| {} | failed: {} | | | | | | |",
                row.pair.label(),
                error.lines().next().unwrap_or("?")
            );
            continue;
        }
        let phase = |index: usize| format!("{} / {}", row.phases[index].1, row.phases[index].0);
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} | {} | {} / {} |",
            row.pair.label(),
            phase(0),
            phase(1),
            phase(2),
            phase(3),
            seconds(row.partner_down_seen),
            seconds(row.first_primary_lease),
            row.after_kill_backup,
            row.after_kill_primary,
        );
    }
    table
}
