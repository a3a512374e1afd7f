//! The benchmarks driven by benches' `dhcp_load` generator (one thread, AF_PACKET batches):
//!
//! - `cargo xtask bench avalanche --clients N`: the reconnect storm. N relayed clients start at
//!   once and retransmit with RFC 2131 §4.1 backoff until every one is bound, against xdhcpd,
//!   Kea and ISC dhcpd in turn; afterwards the server's lease file must hold every client's
//!   address, and no address may have been acknowledged to two clients.
//! - `cargo xtask bench dora --generator dhcp_load`: the DORA ladder of `bench dora` with this
//!   generator instead of perfdhcp; CPU per DORA = (box busy time − generator CPU) / ACKs,
//!   box busy = the CPU time of every process on the box (steal shown apart).
//! - `cargo xtask bench generator`: the generator's own ceiling, against a reflector that
//!   answers from precomputed frames (no server).
//!
//! Topology: the lab of `bench dora` (two namespaces, one veth). The generator acts as the
//! relay agent; the server routes the relay's network over the veth, with a permanent
//! neighbour entry for giaddr (the client namespace holds no address, so its kernel neither
//! answers ARP nor sends ICMP for the replies; the generator reads them from its AF_PACKET
//! socket).

use crate::netns::peers::{ServerKind, ServerSetup};
use crate::netns::{DhcpConfig, Lab, Proc, Subnet};
use crate::plot::Series;
use crate::util::{build_release, command, root, status};
use anyhow::{bail, Context as _, Result};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SERVER_CIDR: &str = "10.213.0.1/24";
const SERVER_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 1);
/// The relayed network: room for 262,144 addresses, so 100,000 clients fit one pool.
const RELAY_NETWORK: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 0);
const RELAY_PREFIX: u8 = 14;
const GIADDR: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 1);
const POOL_FIRST: Ipv4Addr = Ipv4Addr::new(10, 64, 1, 0);

/// Servers by name, as `bench dora` names them.
pub fn server_kinds(
    names: &[String],
    xdhcpd: &dyn Fn() -> Result<PathBuf>,
) -> Result<Vec<(String, ServerKind)>> {
    names
        .iter()
        .map(|name| {
            Ok(match name.as_str() {
                "xdhcpd" => (
                    "xdhcpd".to_owned(),
                    ServerKind::Xdhcpd {
                        binary: xdhcpd()?,
                        xdp: true,
                    },
                ),
                "xdhcpd-no-xdp" => (
                    "xdhcpd --no-xdp".to_owned(),
                    ServerKind::Xdhcpd {
                        binary: xdhcpd()?,
                        xdp: false,
                    },
                ),
                "kea" => (
                    "Kea 2.2 (2 threads)".to_owned(),
                    ServerKind::Kea { threads: 2 },
                ),
                "isc" => ("ISC dhcpd 4.4".to_owned(), ServerKind::IscDhcpd),
                other => bail!("unknown server {other} (xdhcpd, xdhcpd-no-xdp, kea, isc)"),
            })
        })
        .collect()
}

/// The server's link (declared so every server listens there, no pool) and the relayed
/// network with `pool` addresses from 10.64.1.0.
pub(crate) fn relayed_config(pool: u32) -> DhcpConfig {
    DhcpConfig {
        subnets: vec![
            Subnet {
                network: Ipv4Addr::new(10, 213, 0, 0),
                prefix_len: 24,
                range: None,
                routers: None,
            },
            Subnet {
                network: RELAY_NETWORK,
                prefix_len: RELAY_PREFIX,
                range: Some((POOL_FIRST, Ipv4Addr::from(u32::from(POOL_FIRST) + pool - 1))),
                routers: Some(GIADDR),
            },
        ],
        hosts: Vec::new(),
        default_lease_time: 3600,
        max_lease_time: 7200,
        dns_servers: vec![SERVER_ADDRESS],
        domain_name: Some("bench.test".to_owned()),
    }
}

/// `cargo build -p server --bin xdhcpd` (the debug build; its XDP object may be skipped).
pub fn build_debug() -> Result<PathBuf> {
    println!("==> cargo build -p server --bin xdhcpd");
    status(command("cargo").args(["build", "-p", "server", "--bin", "xdhcpd"]))?;
    Ok(root().join("target/debug/xdhcpd"))
}

/// `cargo build [--release] -p benches --bin dhcp_load`; the binary's path.
pub fn build_generator(release: bool) -> Result<PathBuf> {
    let mut args = vec!["build", "-p", "benches", "--bin", "dhcp_load"];
    if release {
        args.insert(1, "--release");
    }
    println!("==> cargo {}", args.join(" "));
    status(command("cargo").args(&args))?;
    Ok(root().join(if release {
        "target/release/dhcp_load"
    } else {
        "target/debug/dhcp_load"
    }))
}

fn interface_mac(netns: &crate::netns::Netns, interface: &str) -> Result<String> {
    Ok(netns
        .exec_ok(&["cat", &format!("/sys/class/net/{interface}/address")])?
        .trim()
        .to_owned())
}

/// The simulated relay agent's MAC. Not the client interface's own: frames to it reach the
/// generator's AF_PACKET socket (a tap sees every frame on the veth) but the client
/// namespace's IPv4 stack drops them at once as PACKET_OTHERHOST (ip_rcv_core), instead of
/// routing each reply only to drop it (ip_route_input_slow, a large part of a frame's cost,
/// charged to whoever sent it: the server in a benchmark).
const RELAY_MAC: &str = "02:47:00:00:00:01";
/// The reflector's MAC in the self-test, for the same reason on its side.
const REFLECTOR_MAC: &str = "02:53:00:00:00:01";

/// The lab with the relay's network routed from the server to the client end and giaddr's
/// MAC pinned (nothing answers ARP for it).
pub(crate) fn relay_lab() -> Result<(Lab, Vec<String>)> {
    let lab = Lab::new(SERVER_CIDR)?;
    let network = format!("{RELAY_NETWORK}/{RELAY_PREFIX}");
    lab.server
        .ip(&["route", "add", &network, "dev", &lab.server_if])?;
    let client_mac = RELAY_MAC.to_owned();
    lab.server.ip(&[
        "neigh",
        "replace",
        &GIADDR.to_string(),
        "lladdr",
        &client_mac,
        "dev",
        &lab.server_if,
        "nud",
        "permanent",
    ])?;
    let server_mac = interface_mac(&lab.server, &lab.server_if)?;
    let args = vec![
        "--interface".to_owned(),
        lab.client_if.clone(),
        "--relay".to_owned(),
        GIADDR.to_string(),
        "--server".to_owned(),
        SERVER_ADDRESS.to_string(),
        "--server-mac".to_owned(),
        server_mac,
        "--relay-mac".to_owned(),
        client_mac,
    ];
    Ok((lab, args))
}

/// The `RESULT key value …` lines of a dhcp_load (or reflector) log.
pub fn results(text: &str) -> Vec<HashMap<String, String>> {
    text.lines()
        .filter_map(|line| line.strip_prefix("RESULT "))
        .map(|rest| {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields
                .chunks(2)
                .filter_map(|pair| match pair {
                    [key, value] => Some(((*key).to_owned(), (*value).to_owned())),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

pub(crate) fn number(result: &HashMap<String, String>, key: &str) -> f64 {
    result
        .get(key)
        .and_then(|value| value.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The whole box's CPU time over a step.
///
/// Busy time is the sum of the CPU time of every process on the box, kernel threads included
/// (/proc/PID/stat utime + stime + the children's): the scheduler's exact runtime, without
/// steal (`CONFIG_PARAVIRT_TIME_ACCOUNTING`). /proc/stat's own busy fields do not serve on this
/// VM: they are sampled at the tick (`CONFIG_TICK_CPU_ACCOUNTING`) and miss most of a thread
/// that wakes for 50 µs between ticks (`cargo run --release -p benches --bin cpu_accounting --
/// 10000 20 10`: the process's own 2.30 s seen as 1.16 s), and on a busy host its idle and
/// steal overlap. Steal — time the hypervisor ran something else while a vCPU wanted to run —
/// is shown apart so that a noisy step can be seen. Softirq work done while a CPU was idle is
/// charged to no process and is missed; the veth's delivery runs in the sending process's
/// context and is counted.
#[derive(Clone, Copy)]
struct BoxTime {
    tasks: f64,
    steal: f64,
}

/// CPU seconds used so far by every process on the box (kernel threads included), with
/// what their reaped children used.
fn all_processes_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut ticks = 0u64;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name
            .to_string_lossy()
            .bytes()
            .all(|byte| byte.is_ascii_digit())
        {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command (which may hold spaces) start at the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime, stime, cutime, cstime: fields 14-17, i.e. 11-14 after the state (field 3).
        ticks += fields
            .get(11..15)
            .unwrap_or_default()
            .iter()
            .filter_map(|field| field.parse::<i64>().ok())
            .map(|value| value.max(0) as u64)
            .sum::<u64>();
    }
    ticks as f64 / 100.0
}

impl BoxTime {
    fn now() -> Self {
        // /proc/stat's first line: "cpu user nice system idle iowait irq softirq steal …".
        let steal_ticks = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|stat| stat.split_whitespace().nth(8)?.parse::<u64>().ok())
            .unwrap_or(0);
        Self {
            tasks: all_processes_cpu_seconds(),
            steal: steal_ticks as f64 / 100.0,
        }
    }

    /// Busy and steal seconds since `before`.
    fn since(self, before: Self) -> (f64, f64) {
        (
            (self.tasks - before.tasks).max(0.0),
            self.steal - before.steal,
        )
    }
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// The generator's `address mac` lines as a map, refused when an address was acknowledged
/// to two clients or when not exactly `expected` clients hold one.
fn acknowledged(text: &str, expected: u32) -> Result<HashMap<Ipv4Addr, &str>> {
    let mut by_address: HashMap<Ipv4Addr, &str> = HashMap::new();
    for line in text.lines() {
        let Some((address, mac)) = line.split_once(' ') else {
            bail!("bad line {line:?} in the generator's lease list");
        };
        let address: Ipv4Addr = address.parse()?;
        if let Some(other) = by_address.insert(address, mac) {
            bail!("{address} was acknowledged to {other} and to {mac}");
        }
    }
    if by_address.len() != expected as usize {
        bail!("{} of {expected} clients hold a lease", by_address.len());
    }
    Ok(by_address)
}

/// The server's lease file agrees with what the generator was acknowledged: every client has
/// its address there, active and with its MAC, and no address went to two clients. Returns
/// the number of clients checked.
fn check_leases(
    server: &crate::netns::peers::Server,
    acked: &Path,
    expected: u32,
    state: &str,
) -> Result<usize> {
    let text =
        std::fs::read_to_string(acked).with_context(|| format!("read {}", acked.display()))?;
    let by_address = acknowledged(&text, expected)?;
    let clients = by_address.len();
    let records = server.lease_records()?;
    let current = crate::netns::leases::current_by_address(&records);
    for (address, mac) in &by_address {
        let Some(record) = current.get(address) else {
            bail!("{address} ({mac}) is not in the lease file");
        };
        if record.mac.as_deref() != Some(*mac) || record.binding_state.as_deref() != Some(state) {
            bail!(
                "{address}: the lease file says {record:?}; expected {state} for {mac}, to whom \
                 it was acknowledged"
            );
        }
    }
    Ok(clients)
}

struct AvalancheRow {
    server: String,
    clients: u32,
    result: Option<HashMap<String, String>>,
    /// UDP datagrams dropped for a full receive buffer in the server's namespace.
    rcvbuf_errors: Option<u64>,
    /// (seconds since the start, % of clients bound), from the generator's CURVE line.
    curve: Vec<(f64, f64)>,
    /// The `renew` phase's result, when asked for.
    renewals: Option<HashMap<String, String>>,
    server_cpu: f64,
    check: Result<usize>,
}

/// One avalanche against one server in a fresh lab; `Ok` even when the check failed (the row
/// says so).
fn avalanche_step(
    generator: &Path,
    label: &str,
    kind: &ServerKind,
    clients: u32,
    base: f64,
    deadline: f64,
    extra: &[&str],
) -> Result<AvalancheRow> {
    let (lab, mut args) = relay_lab()?;
    // A quarter more addresses than clients: a pool that runs dry is another benchmark.
    let pool = clients + clients / 4 + 100;
    let mut server = ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind: kind.clone(),
        config: relayed_config(pool),
        interface: lab.server_if.clone(),
        relayed: true,
        dhcpd_conf: None,
    }
    .start()?;
    let acked = lab.dir.join("acked.txt");
    args.extend([
        "--clients".to_owned(),
        clients.to_string(),
        "--base".to_owned(),
        base.to_string(),
        "--deadline".to_owned(),
        deadline.to_string(),
        "--leases-out".to_owned(),
        acked.to_string_lossy().into_owned(),
    ]);
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    let cpu_before = server.proc.cpu_seconds();
    let mut command = lab.client.command(&generator.to_string_lossy());
    command.arg("avalanche").args(&args);
    let mut proc = Proc::spawn(
        "dhcp_load avalanche",
        command,
        lab.dir.join("avalanche.log"),
    )?;
    let exit = proc.wait_exit(Duration::from_secs_f64(deadline + 60.0))?;
    let server_cpu = server.proc.cpu_seconds() - cpu_before;
    let rcvbuf_errors = lab
        .server
        .exec_ok(&["cat", "/proc/net/snmp"])
        .ok()
        .and_then(|snmp| crate::bench::udp_counter(&snmp, "RcvbufErrors"));
    let text = proc.log_text();
    print!("{text}");
    let phase = |name: &str| {
        results(&text)
            .into_iter()
            .find(|result| result.get("phase").map(String::as_str) == Some(name))
    };
    let (result, renewals) = (phase("avalanche"), phase("renew"));
    let curve = text
        .lines()
        .find_map(|line| line.strip_prefix("CURVE avalanche "))
        .map(|rest| {
            let values: Vec<f64> = rest
                .split_whitespace()
                .filter_map(|value| value.parse().ok())
                .collect();
            values
                .chunks(2)
                .filter_map(|pair| match pair {
                    [seconds, fraction] => Some((*seconds, fraction * 100.0)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    // After `--release` every lease must end free (dhcpd.leases(5) "binding state free", as
    // ISC writes a released lease); the DHCPRELEASEs get no reply, so the server is given up
    // to 10 s to have written them all.
    let state = if extra.contains(&"--release") {
        "free"
    } else {
        "active"
    };
    if state == "free" && exit.success() {
        let _ = crate::netns::wait_for("the released leases", Duration::from_secs(10), || {
            Ok(check_leases(&server, &acked, clients, state).ok())
        });
    }
    // Stopped before the lease file is read: every write has reached it.
    server.proc.signal("TERM")?;
    let _ = server.proc.wait_exit(Duration::from_secs(30));
    let check = if exit.success() {
        check_leases(&server, &acked, clients, state)
    } else {
        Err(anyhow::anyhow!("dhcp_load failed ({exit})"))
    };
    if let Err(error) = &check {
        println!("    check failed for {label}: {error:#}");
    }
    Ok(AvalancheRow {
        server: label.to_owned(),
        clients,
        result,
        rcvbuf_errors,
        curve,
        renewals,
        server_cpu,
        check,
    })
}

pub fn avalanche(
    servers: &[String],
    clients: u32,
    base: f64,
    deadline: f64,
    debug: bool,
) -> Result<()> {
    let generator = build_generator(!debug)?;
    // `XDH_BENCH_XDHCPD=path` runs a given binary instead of building one (A/B).
    let given = std::env::var_os("XDH_BENCH_XDHCPD").map(PathBuf::from);
    let mut kinds = if let Some(path) = given {
        server_kinds(servers, &move || Ok(path.clone()))?
    } else if debug {
        server_kinds(servers, &build_debug)?
    } else {
        server_kinds(servers, &build_release)?
    };
    if debug {
        for (_, kind) in &mut kinds {
            if let ServerKind::Xdhcpd { xdp, .. } = kind {
                *xdp = false;
            }
        }
    }
    let mut rows = Vec::new();
    for (label, kind) in &kinds {
        println!(
            "==> {label}: avalanche of {clients} clients (load average {})",
            load_average()
        );
        rows.push(
            avalanche_step(&generator, label, kind, clients, base, deadline, &[]).unwrap_or_else(
                |error| AvalancheRow {
                    server: label.clone(),
                    clients,
                    result: None,
                    rcvbuf_errors: None,
                    curve: Vec::new(),
                    renewals: None,
                    server_cpu: 0.0,
                    check: Err(error),
                },
            ),
        );
    }
    let mut table = format!(
        "dhcp_load avalanche: {clients} relayed clients (giaddr {GIADDR}, option 82) start at \
         once, RFC 2131 §4.1 backoff from {base} s (±{} s) until bound; fresh lab and lease \
         file per server.\n\n",
        base / 4.0
    );
    table.push_str(
        "| server | clients | time to last ACK s | DISCOVER / REQUEST retransmissions | NAKs | DORA p50 / p99 / max s | generator CPU s | server CPU s | UDP RcvbufErrors, server netns | lease file check |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for row in &rows {
        let check = match &row.check {
            Ok(count) => format!("{count} bound, no address twice"),
            Err(error) => format!(
                "FAILED: {}",
                format!("{error:#}").lines().next().unwrap_or("?")
            ),
        };
        let Some(result) = &row.result else {
            let _ = writeln!(
                table,
                "| {} | {} | – | – | – | – | – | {:.2} | – | {check} |",
                row.server, row.clients, row.server_cpu
            );
            continue;
        };
        let _ = writeln!(
            table,
            "| {} | {} | {:.2} | {:.0} / {:.0} | {:.0} | {:.2} / {:.2} / {:.2} | {:.2} | {:.2} | {} | {check} |",
            row.server,
            row.clients,
            number(result, "seconds"),
            number(result, "discover_retx"),
            number(result, "request_retx"),
            number(result, "naks"),
            number(result, "dora_p50_ms") / 1000.0,
            number(result, "dora_p99_ms") / 1000.0,
            number(result, "dora_max_ms") / 1000.0,
            number(result, "cpu_s"),
            row.server_cpu,
            row.rcvbuf_errors
                .map_or_else(|| "–".to_owned(), |count| count.to_string()),
        );
    }
    println!("\n{table}");
    let out = root().join("target/bench-avalanche.md");
    std::fs::write(&out, &table).with_context(|| format!("write {}", out.display()))?;
    println!("written to {}", out.display());
    let chart = root().join("target/bench-avalanche.svg");
    let series: Vec<Series> = rows
        .iter()
        .map(|row| Series {
            name: row.server.clone(),
            points: row.curve.clone(),
        })
        .collect();
    crate::plot::line_chart(
        &chart,
        &format!("Avalanche of {clients} clients: share bound over time"),
        "seconds since the storm began",
        "% of clients bound",
        &series,
    )?;
    println!("chart: {}", chart.display());
    if rows.iter().any(|row| row.check.is_err()) {
        bail!("an avalanche check failed");
    }
    Ok(())
}

/// The CI check (`cargo xtask test`): a small avalanche against the debug xdhcpd; every
/// client bound, every address acknowledged once, every client renewed (RENEWING
/// DHCPREQUEST unicast; the ACK reaches the client through the generator's ARP answers),
/// then released, and the lease file holding each acknowledged address, released by the
/// client it was acknowledged to. Not timed: the deadlines only bound a hung run.
pub fn ci_avalanche(xdhcpd: &Path, generator: &Path, clients: u32) -> Result<()> {
    let kind = ServerKind::Xdhcpd {
        binary: xdhcpd.to_path_buf(),
        xdp: false,
    };
    let row = avalanche_step(
        generator,
        "xdhcpd",
        &kind,
        clients,
        0.5,
        20.0,
        &["--renew", "--release"],
    )?;
    let count = row.check?;
    let renewed = row
        .renewals
        .map(|renewals| number(&renewals, "acked"))
        .unwrap_or(0.0);
    if renewed != f64::from(clients) {
        bail!("{renewed} of {clients} renewals acknowledged");
    }
    println!(
        "avalanche: {count} clients bound, no address acknowledged twice, all renewed, all \
         released in the lease file"
    );
    Ok(())
}

/// `bench dora --generator dhcp_load`: the ladder, one fresh lab per step.
pub fn dora(
    servers: &[String],
    rates: &[u32],
    seconds: u32,
    clients: u32,
    xdp: bool,
) -> Result<()> {
    let generator = build_generator(true)?;
    // `XDH_BENCH_XDHCPD=path` runs a given binary instead of building the release one (A/B).
    let xdhcpd = || match std::env::var_os("XDH_BENCH_XDHCPD") {
        Some(path) => Ok(PathBuf::from(path)),
        None => build_release(),
    };
    let mut kinds = server_kinds(servers, &xdhcpd)?;
    for (_, kind) in &mut kinds {
        if let ServerKind::Xdhcpd { xdp: on, .. } = kind {
            *on = xdp;
        }
    }
    let mut table = format!(
        "dhcp_load DORA ladder, relayed (giaddr {GIADDR}, option 82), pool 60000 addresses, \
         {clients} clients round-robin, {seconds} s per step, no retransmission (lost after \
         2 s), fresh lab and lease file per step, xdhcpd XDP {}.\n\n",
        if xdp { "on" } else { "off" }
    );
    table.push_str(
        "| server | offered | DORA/s | loss % | DORA p50 / p99 / max ms | DISCOVER→OFFER / REQUEST→ACK p99 ms | server CPU s | generator CPU s | box busy s | steal s | CPU per DORA µs | server CPU per DORA µs | fsyncs per ACK | load avg |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut answered = Vec::new();
    let mut latency = Vec::new();
    let mut cpu = Vec::new();
    for (label, kind) in &kinds {
        let mut points = Vec::new();
        for &rate in rates {
            println!(
                "==> {label} at {}",
                if rate == 0 {
                    "unbounded".to_owned()
                } else {
                    format!("{rate}/s")
                }
            );
            match dora_step(&generator, label, kind, rate, seconds, clients) {
                Ok((line, result)) => {
                    table.push_str(&line);
                    points.push(result);
                }
                Err(error) => table.push_str(&format!(
                    "| {label} | {rate} | failed: {} | | | | | | | | | | | |\n",
                    format!("{error:#}").lines().next().unwrap_or("?")
                )),
            }
        }
        // Offered = exchanges started per second (the unbounded step at what it reached).
        let offered = |result: &HashMap<String, String>| {
            number(result, "started") / number(result, "seconds").max(1e-9)
        };
        answered.push(Series {
            name: label.clone(),
            points: points
                .iter()
                .map(|result| (offered(result), number(result, "per_second")))
                .collect(),
        });
        cpu.push(Series {
            name: label.clone(),
            points: points
                .iter()
                .map(|result| (offered(result), number(result, "cpu_per_dora_us")))
                .collect(),
        });
        for (quantile, key) in [("p50", "dora_p50_ms"), ("p99", "dora_p99_ms")] {
            latency.push(Series {
                name: format!("{label} {quantile}"),
                points: points
                    .iter()
                    .map(|result| (offered(result), number(result, key)))
                    .collect(),
            });
        }
    }
    println!("\n{table}");
    let out = root().join("target/bench-dora-dhcp_load.md");
    std::fs::write(&out, &table)?;
    println!("written to {}", out.display());
    let charts = [
        (
            "target/bench-dora-dhcp_load.svg",
            "DORA/s answered vs offered (dhcp_load)",
            "DORA/s answered",
            answered,
        ),
        (
            "target/bench-dora-dhcp_load-latency.svg",
            "DORA latency vs offered (dhcp_load)",
            "ms, first DISCOVER to ACK",
            latency,
        ),
        (
            "target/bench-dora-dhcp_load-cpu.svg",
            "Box CPU per DORA vs offered (dhcp_load; box busy − generator, no steal)",
            "µs per DORA",
            cpu,
        ),
    ];
    for (path, title, y_label, series) in &charts {
        let path = root().join(path);
        crate::plot::line_chart(&path, title, "DORA/s offered", y_label, series)?;
        println!("chart: {}", path.display());
    }
    Ok(())
}

fn dora_step(
    generator: &Path,
    label: &str,
    kind: &ServerKind,
    rate: u32,
    seconds: u32,
    clients: u32,
) -> Result<(String, HashMap<String, String>)> {
    let (lab, mut args) = relay_lab()?;
    let config = relayed_config(60_000);
    // xdhcpd serves its metrics in its namespace: the group commit's fsync count.
    let dhcpd_conf = matches!(kind, ServerKind::Xdhcpd { .. }).then(|| {
        format!(
            "{}option xdhcpd.metrics-listen \"{}\";\n{}",
            crate::bench::xdhcpd_option_space(),
            crate::bench::METRICS_LISTEN,
            config.to_dhcpd_conf()
        )
    });
    let server = ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind: kind.clone(),
        config,
        interface: lab.server_if.clone(),
        relayed: true,
        dhcpd_conf,
    }
    .start()?;
    rate_args(&mut args, clients, rate, seconds);
    let load_before = load_average();
    let cpu_before = server.proc.cpu_seconds();
    let box_before = BoxTime::now();
    let profile = profile_server(label, rate, server.proc.pid(), seconds)?;
    let result = run_rate(generator, &lab, &args, seconds);
    if let Some(profile) = profile {
        profile.finish()?;
    }
    let result = result?;
    let (busy, steal) = BoxTime::now().since(box_before);
    let server_cpu = server.proc.cpu_seconds() - cpu_before;
    let generator_cpu = number(&result, "cpu_s");
    let acked = number(&result, "acked");
    let hold = crate::bench::lock_hold(&lab);
    // A stalled append holds every reply of its batch: say how many there were.
    if let Some((slow, slowest)) = hold.as_ref().and_then(|hold| hold.slow_appends) {
        println!(
            "    appends (write + fdatasync) over 10 ms: {slow:.0}; the slowest under {} ms",
            slowest * 1e3
        );
    }
    let fsyncs_per_ack = hold.and_then(|hold| hold.fsyncs).map_or_else(
        || "–".to_owned(),
        |fsyncs| format!("{:.3}", fsyncs / acked.max(1.0)),
    );
    let cpu_per_dora = (busy - generator_cpu) / acked.max(1.0) * 1e6;
    let line = format!(
        "| {label} | {} | {:.0} | {:.2} | {:.2} / {:.2} / {:.2} | {:.2} / {:.2} | {server_cpu:.2} | {generator_cpu:.2} | {busy:.2} | {steal:.2} | {:.1} | {:.1} | {fsyncs_per_ack} | {load_before} → {} |\n",
        if rate == 0 { "unbounded".to_owned() } else { format!("{rate}/s") },
        number(&result, "per_second"),
        number(&result, "loss_pct"),
        number(&result, "dora_p50_ms"),
        number(&result, "dora_p99_ms"),
        number(&result, "dora_max_ms"),
        number(&result, "do_p99_ms"),
        number(&result, "ra_p99_ms"),
        cpu_per_dora,
        server_cpu / acked.max(1.0) * 1e6,
        load_average(),
    );
    let mut result = result;
    result.insert("cpu_per_dora_us".to_owned(), cpu_per_dora.to_string());
    Ok((line, result))
}

/// Where `bench compaction`'s server serves the control API, in its own namespace.
const CONTROL_API_LISTEN: &str = "127.0.0.1:8000";

/// Where `bench compaction` puts its stored leases (a subnet of their own, not the relay's).
const STORED_FIRST: Ipv4Addr = Ipv4Addr::new(10, 128, 0, 0);

/// `bench compaction`: xdhcpd (release, XDP off) starts from a lease file of `leases` active
/// leases (and a backup as large) and is loaded at `rate` DORA/s at once, while it rewrites
/// that file in the background (its start-up rewrite, ISC's `new_lease_file`); `rewrite_at`
/// seconds into the load the control API's `lease-file-rewrite` asks for another, in the middle
/// of a steady load. The generator's latency per second says whether a rewrite stalls replies
/// (issue 14: p99 ≤ 10 ms, max ≤ 50 ms at 2,000/s with 1,000,000 leases); the server's log
/// says how long each rewrite took.
pub fn compaction(
    leases: u32,
    rate: u32,
    seconds: u32,
    clients: u32,
    rewrite_at: u32,
) -> Result<()> {
    // 10.128.0.0/12 holds 1,048,576 addresses.
    if leases > 1 << 20 {
        bail!("at most {} leases", 1 << 20);
    }
    let generator = build_generator(true)?;
    let binary = match std::env::var_os("XDH_BENCH_XDHCPD") {
        Some(path) => PathBuf::from(path),
        None => build_release()?,
    };
    let (lab, mut args) = relay_lab()?;
    println!("==> writing {leases} leases");
    let lease_file = lab.dir.join("server.leases");
    crate::bench::write_lease_file(&lease_file, leases, STORED_FIRST)?;
    // The backup an earlier rewrite left (ISC's and ours, `<file>~`): the compaction replaces
    // it, and freeing a file that size is disk work of its own.
    let backup = lab.dir.join("server.leases~");
    std::fs::copy(&lease_file, &backup)?;
    std::fs::File::open(&backup)?.sync_all()?;
    let mut config = relayed_config(60_000);
    config.subnets.push(Subnet {
        network: STORED_FIRST,
        prefix_len: 12,
        range: Some((
            STORED_FIRST,
            Ipv4Addr::from(u32::from(STORED_FIRST) + leases.max(1) - 1),
        )),
        routers: None,
    });
    println!("==> xdhcpd with {leases} leases, {rate} DORA/s for {seconds} s");
    // The control API in the server's namespace: `lease-file-rewrite` in the middle of the load.
    let dhcpd_conf = format!(
        "{}option xdhcpd.control-api-listen \"{CONTROL_API_LISTEN}\";\n{}",
        crate::bench::xdhcpd_option_space(),
        config.to_dhcpd_conf()
    );
    let server = ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind: ServerKind::Xdhcpd { binary, xdp: false },
        config,
        interface: lab.server_if.clone(),
        relayed: true,
        dhcpd_conf: Some(dhcpd_conf),
    }
    .start()?;
    rate_args(&mut args, clients, rate, seconds);
    let load_before = load_average();
    let profile = profile_server("compaction", rate, server.proc.pid(), seconds)?;
    let requester = (rewrite_at > 0 && rewrite_at < seconds).then(|| {
        let mut curl = lab.server.command("curl");
        curl.args([
            "-sS",
            "--max-time",
            "5",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"command": "lease-file-rewrite"}"#,
            &format!("http://{CONTROL_API_LISTEN}/"),
        ]);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(u64::from(rewrite_at)));
            curl.output()
        })
    });
    let result = run_rate(&generator, &lab, &args, seconds);
    if let Some(requester) = requester {
        match requester.join() {
            Ok(Ok(output)) => println!(
                "lease-file-rewrite at {rewrite_at} s: {}",
                String::from_utf8_lossy(&output.stdout).trim()
            ),
            Ok(Err(error)) => println!("lease-file-rewrite at {rewrite_at} s: curl: {error}"),
            Err(_) => println!("lease-file-rewrite at {rewrite_at} s: the request thread panicked"),
        }
    }
    if let Some(profile) = profile {
        profile.finish()?;
    }
    let result = result?;
    drop(server);
    let log = std::fs::read_to_string(lab.dir.join("server.log")).unwrap_or_default();
    // "compacted in D s": the start-up rewrite (it starts as the server serves, which is when
    // the load starts) and the requested one (it starts at `rewrite_at`).
    let rewrites: Vec<(&str, f64)> = log
        .lines()
        .filter_map(|line| {
            let rest = line.split("compacted in ").nth(1)?;
            let duration = rest.split(" s").next()?.trim().parse::<f64>().ok()?;
            Some((line.split("INFO").last().unwrap_or(line).trim(), duration))
        })
        .collect();
    let mut windows = Vec::new();
    if let Some(&(_, duration)) = rewrites.first() {
        windows.push(("start-up", 0.0, duration));
    }
    if let (true, Some(&(_, duration))) = (rewrite_at > 0, rewrites.get(1)) {
        windows.push((
            "requested",
            f64::from(rewrite_at),
            f64::from(rewrite_at) + duration,
        ));
    }
    let compacted = if rewrites.is_empty() {
        "no compaction finished during the run".to_owned()
    } else {
        rewrites
            .iter()
            .map(|(line, _)| *line)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let rate_log = std::fs::read_to_string(lab.dir.join("rate.log")).unwrap_or_default();
    let mut by_second = String::from(
        "| second of the load | rewriting | DORAs ACKed | DORA p50 / p99 / max ms |\n\
         |---:|---|---:|---:|\n",
    );
    let mut worst = String::new();
    let mut worst_by_window: Vec<(f64, f64)> = vec![(0.0, 0.0); windows.len()];
    for line in rate_log.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let ["SECOND", _, second, acked, p50, p99, max] = fields[..] else {
            continue;
        };
        let Ok(index) = second.parse::<f64>() else {
            continue;
        };
        // A second overlaps a window when it starts before the window's end and ends after
        // its start.
        let window = windows
            .iter()
            .position(|&(_, start, end)| index < end && index + 1.0 > start);
        if let Some(window) = window {
            let (p99_worst, max_worst) = &mut worst_by_window[window];
            *p99_worst = p99_worst.max(p99.parse().unwrap_or(f64::NAN));
            *max_worst = max_worst.max(max.parse().unwrap_or(f64::NAN));
        }
        let _ = writeln!(
            by_second,
            "| {second} | {} | {acked} | {p50} / {p99} / {max} |",
            window.map_or("", |window| windows[window].0)
        );
    }
    for ((name, start, end), (p99, max)) in windows.iter().zip(&worst_by_window) {
        let _ = write!(
            worst,
            "While the {name} rewrite ran ({start:.1}–{end:.1} s of the load): worst p99 of a \
             second {p99:.2} ms, worst reply {max:.2} ms.\n\n"
        );
    }
    let table = format!(
        "xdhcpd (release, XDP off) starting from {leases} leases, dhcp_load relayed DORA at \
         {rate}/s for {seconds} s from the moment it serves, {clients} clients; the start-up \
         rewrite runs in the background meanwhile, and `lease-file-rewrite` asks for another \
         {rewrite_at} s into the load (0: none).\n\n\
         | leases | offered | DORA/s | loss % | DORA p50 / p99 / max ms | DISCOVER→OFFER / REQUEST→ACK p99 ms | load avg |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n\
         | {leases} | {rate}/s | {:.0} | {:.2} | {:.2} / {:.2} / {:.2} | {:.2} / {:.2} | {load_before} → {} |\n\n\
         Server log: {compacted}\n\n{worst}{by_second}",
        number(&result, "per_second"),
        number(&result, "loss_pct"),
        number(&result, "dora_p50_ms"),
        number(&result, "dora_p99_ms"),
        number(&result, "dora_max_ms"),
        number(&result, "do_p99_ms"),
        number(&result, "ra_p99_ms"),
        load_average(),
    );
    println!("\n{table}");
    let out = root().join("target/bench-compaction.md");
    std::fs::write(&out, &table)?;
    println!("written to {}", out.display());
    Ok(())
}

pub(crate) fn rate_args(args: &mut Vec<String>, clients: u32, rate: u32, seconds: u32) {
    args.extend([
        "--clients".to_owned(),
        clients.to_string(),
        "--rates".to_owned(),
        rate.to_string(),
        "--seconds".to_owned(),
        seconds.to_string(),
    ]);
}

/// Runs `dhcp_load rate` with `args` from the lab's client side; its RESULT line.
fn run_rate(
    generator: &Path,
    lab: &Lab,
    args: &[String],
    seconds: u32,
) -> Result<HashMap<String, String>> {
    let mut command = lab.client.command(&generator.to_string_lossy());
    command.arg("rate").args(args);
    let mut proc = Proc::spawn("dhcp_load rate", command, lab.dir.join("rate.log"))?;
    let exit = proc.wait_exit(Duration::from_secs(u64::from(seconds) + 60))?;
    let text = proc.log_text();
    if !exit.success() {
        bail!("dhcp_load failed ({exit}):\n{text}");
    }
    results(&text)
        .into_iter()
        .next()
        .with_context(|| format!("no RESULT in:\n{text}"))
}

/// A `perf record` of the server during one step (`XDH_BENCH_PERF=1`): where its CPU goes.
struct Profile {
    recorder: std::process::Child,
    data: PathBuf,
    report: PathBuf,
}

/// With `XDH_BENCH_PERF=1`, records the server (`pid`) with call graphs for `seconds` into
/// `target/perf-LABEL-RATE.data`; [`Profile::finish`] writes the report's top entries next to
/// it (`.txt`) — the figures BENCHMARKS.md quotes.
fn profile_server(label: &str, rate: u32, pid: u32, seconds: u32) -> Result<Option<Profile>> {
    if std::env::var_os("XDH_BENCH_PERF").is_none() {
        return Ok(None);
    }
    let stem: String = format!("perf-{label}-{rate}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let data = root().join(format!("target/{stem}.data"));
    let recorder = command("perf")
        .args([
            "record",
            "-F",
            "999",
            "--call-graph",
            if std::env::var_os("XDH_BENCH_PERF_DWARF").is_some() {
                "dwarf,16384"
            } else {
                "fp"
            },
            "-p",
            &pid.to_string(),
            "-o",
        ])
        .arg(&data)
        .args(["--", "sleep", &seconds.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("perf record (apt install linux-perf)")?;
    Ok(Some(Profile {
        recorder,
        report: data.with_extension("txt"),
        data,
    }))
}

impl Profile {
    fn finish(mut self) -> Result<()> {
        self.recorder.wait()?;
        let report = command("perf")
            .args([
                "report",
                "--no-children",
                "--percent-limit",
                "0.7",
                "--stdio",
                "-g",
                "none",
                "-i",
            ])
            .arg(&self.data)
            .output()?;
        let text: String = String::from_utf8_lossy(&report.stdout)
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .take(40)
            .map(|line| format!("{line}\n"))
            .collect();
        std::fs::write(&self.report, &text)?;
        println!(
            "    profile: {} (top entries in {})",
            self.data.display(),
            self.report.display()
        );
        Ok(())
    }
}

/// `bench generator`: dhcp_load against the reflector, no server: the generator's ceiling.
pub fn generator(seconds: u32, window: usize, clients: u32) -> Result<()> {
    let generator = build_generator(true)?;
    let mut table = format!(
        "dhcp_load against its reflector (precomputed OFFER/ACK frames, no server), unbounded, \
         window {window} exchanges, {clients} clients, {seconds} s.\n\n\
         | clients | DORA/s | loss % | frames/s through the generator | generator CPU s | generator CPU per DORA µs | reflector CPU s | DORA p50 / p99 ms |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for relayed in [true, false] {
        let (lab, relay_args) = relay_lab()?;
        // No address on the server side: its kernel must not answer (ICMP) what the
        // reflector answers.
        lab.server.ip(&["addr", "flush", "dev", &lab.server_if])?;
        let mut reflector = lab.server.command(&generator.to_string_lossy());
        reflector.args([
            "reflect",
            "--interface",
            &lab.server_if,
            "--seconds",
            &(seconds + 6).to_string(),
        ]);
        let mut reflector = Proc::spawn("reflector", reflector, lab.dir.join("reflect.log"))?;
        std::thread::sleep(Duration::from_millis(300));
        let mut args = if relayed {
            let mut args = relay_args;
            let at = args
                .iter()
                .position(|arg| arg == "--server-mac")
                .map_or(0, |at| at + 1);
            args[at] = REFLECTOR_MAC.to_owned();
            args
        } else {
            vec!["--interface".to_owned(), lab.client_if.clone()]
        };
        args.extend([
            "--clients".to_owned(),
            clients.to_string(),
            "--rates".to_owned(),
            "0".to_owned(),
            "--seconds".to_owned(),
            seconds.to_string(),
            "--window".to_owned(),
            window.to_string(),
        ]);
        let mut command = lab.client.command(&generator.to_string_lossy());
        command.arg("rate").args(&args);
        let mut proc = Proc::spawn("dhcp_load rate", command, lab.dir.join("rate.log"))?;
        proc.wait_exit(Duration::from_secs(u64::from(seconds) + 60))?;
        reflector.wait_exit(Duration::from_secs(30))?;
        let text = proc.log_text();
        print!("{text}{}", reflector.log_text());
        let result = results(&text).into_iter().next().context("no RESULT")?;
        let reflected = results(&reflector.log_text())
            .into_iter()
            .next()
            .context("no reflector RESULT")?;
        let per_second = number(&result, "per_second");
        let cpu = number(&result, "cpu_s");
        let _ =
            writeln!(
            table,
            "| {} | {per_second:.0} | {:.2} | {:.0} | {cpu:.2} | {:.2} | {:.2} | {:.2} / {:.2} |",
            if relayed { "relayed" } else { "direct (broadcast)" },
            number(&result, "loss_pct"),
            4.0 * per_second,
            cpu / number(&result, "acked").max(1.0) * 1e6,
            number(&reflected, "cpu_s"),
            number(&result, "dora_p50_ms"),
            number(&result, "dora_p99_ms"),
        );
    }
    table.push_str(&generator_loopback(&generator, seconds, window, clients)?);
    println!("\n{table}");
    let out = root().join("target/bench-generator.md");
    std::fs::write(&out, &table)?;
    println!("written to {}", out.display());
    Ok(())
}

/// The generator on its own loopback (`dhcp_load rate --loopback`): an in-process responder
/// answers, no frame enters the kernel, so this is what the generator's code costs per DORA —
/// its capacity on one core where a NIC (AF_XDP zero-copy) leaves the kernel nearly no
/// per-frame work. The responder's patching runs on the same core and is counted in.
fn generator_loopback(
    generator: &Path,
    seconds: u32,
    window: usize,
    clients: u32,
) -> Result<String> {
    let mut table = format!(
        "\nThe same generator on its own loopback (`dhcp_load rate --loopback`, in-process \
         responder, no kernel), unbounded, window {window}, {clients} clients, {seconds} s, one \
         thread.\n\n\
         | clients | DORA/s | loss % | generator CPU s | generator CPU per DORA µs | capacity on one core, DORA/s | DORA p50 / p99 ms |\n|---|---:|---:|---:|---:|---:|---:|\n"
    );
    for relayed in [true, false] {
        let mut command = std::process::Command::new(generator);
        command.args([
            "rate",
            "--loopback",
            "--clients",
            &clients.to_string(),
            "--rates",
            "0",
            "--seconds",
            &seconds.to_string(),
            "--window",
            &window.to_string(),
        ]);
        if relayed {
            command.args([
                "--relay",
                "10.64.0.1",
                "--server",
                "10.213.0.1",
                "--server-mac",
                REFLECTOR_MAC,
                "--relay-mac",
                "02:52:00:00:00:01",
            ]);
        }
        let output = command.output().context("running dhcp_load --loopback")?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "dhcp_load --loopback failed: {}{text}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let result = results(&text).into_iter().next().context("no RESULT")?;
        let acked = number(&result, "acked").max(1.0);
        let cpu = number(&result, "cpu_s");
        let _ = writeln!(
            table,
            "| {} | {:.0} | {:.2} | {cpu:.2} | {:.3} | {:.0} | {:.2} / {:.2} |",
            if relayed {
                "relayed"
            } else {
                "direct (broadcast)"
            },
            number(&result, "per_second"),
            number(&result, "loss_pct"),
            cpu / acked * 1e6,
            acked / cpu.max(1e-9),
            number(&result, "dora_p50_ms"),
            number(&result, "dora_p99_ms"),
        );
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_acknowledged_to_two_clients_is_refused() {
        let twice = "10.64.1.0 02:44:00:00:00:00\n10.64.1.0 02:44:00:00:00:01\n";
        let error = acknowledged(twice, 2).unwrap_err().to_string();
        assert!(error.contains("acknowledged to"), "{error}");
        let fine = "10.64.1.0 02:44:00:00:00:00\n10.64.1.1 02:44:00:00:00:01\n";
        assert_eq!(acknowledged(fine, 2).unwrap().len(), 2);
        assert!(acknowledged(fine, 3).is_err(), "a client without a lease");
    }

    #[test]
    fn result_lines_parse_into_fields() {
        let text = "noise\nRESULT phase avalanche acked 10 seconds 1.5\n";
        let results = results(text);
        assert_eq!(results.len(), 1);
        assert_eq!(number(&results[0], "acked"), 10.0);
        assert!(number(&results[0], "missing").is_nan());
    }
}
