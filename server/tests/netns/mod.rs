//! Privileged test harness: private network namespaces joined by veth pairs, a DHCP server under
//! test (xdhcpd, ISC dhcpd or Kea) and the real client peers (dhclient, udhcpc, dhcpcd, perfdhcp,
//! tshark) run inside them by hand.
//!
//! Everything created here is owned by an RAII guard: dropping a [`Netns`] kills every process
//! still inside it and deletes it, dropping a [`Proc`] kills its child, dropping a [`TempDir`]
//! removes the state files. Nothing here touches the host's interfaces or namespaces other than
//! the ones it creates (names `xdh-<pid>-<n>-…`). Readiness is always polled with a deadline,
//! never waited for with a fixed sleep.
//!
//! The module is shared: the integration test binary includes it (`server/tests/integration/
//! main.rs`), and xtask (demo, bench) with `#[path = "../../server/tests/netns/mod.rs"]`, so it
//! only uses std and anyhow.
// Each includer uses a different subset of the harness.
#![allow(dead_code, unused_imports)]

pub mod config;
pub mod difftest;
pub mod leases;
pub mod named;
pub mod peers;

use anyhow::{anyhow, bail, Context as _, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use config::{DhcpConfig, Host, Subnet};
pub use leases::{parse_lease_file, LeaseRecord};

/// The harness is a driver: it owns the clock (STYLE.md §2).
#[expect(clippy::disallowed_methods, reason = "test driver owns the clock")]
pub fn now() -> Instant {
    Instant::now()
}

/// CAP_NET_ADMIN (namespaces, veth, addresses) and CAP_SYS_ADMIN (`ip netns`, mounts): what
/// every test of this harness needs.
pub fn has_lab_capabilities() -> bool {
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_SYS_ADMIN: u32 = 21;
    let caps = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(0);
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    has(CAP_NET_ADMIN) && has(CAP_SYS_ADMIN)
}

/// Polls `probe` every 20 ms until it yields a value or `timeout` passes.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = now() + timeout;
    loop {
        if let Some(value) = probe()? {
            return Ok(value);
        }
        if now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a command to completion and fails with its stderr when it exits non-zero.
pub fn run(command: &mut Command) -> Result<Output> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("spawn {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

fn unique_tag() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "xdh-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A scratch directory removed on drop (unless `XDH_KEEP_TMP=1`, for debugging).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> Result<Self> {
        let base = std::env::var_os("TMPDIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        let path = base.join(format!("{tag}-{}", unique_tag()));
        fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("XDH_KEEP_TMP").is_none() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A network namespace created by us, with IPv6 off and loopback up. Dropping it kills every
/// process still inside and deletes it.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn create(name: String) -> Result<Self> {
        if !name.starts_with("xdh-") {
            bail!("refusing to manage namespace {name}: only xdh-* namespaces are ours");
        }
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let netns = Self { name };
        // IPv6 off keeps dhclient/dhcpcd quiet; rp_filter off lets relayed replies (to a giaddr
        // that is only routed, not assigned on the server side) through.
        netns.exec_ok(&[
            "sysctl",
            "-q",
            "-w",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
        ])?;
        netns.ip(&["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    /// `ip netns exec NAME program` — the program replaces `ip` (no fork), so the child's pid is
    /// the program's pid.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Runs `args` inside the namespace to completion; returns stdout.
    pub fn exec_ok(&self, args: &[&str]) -> Result<String> {
        let (program, rest) = args.split_first().ok_or_else(|| anyhow!("empty command"))?;
        let output = run(self.command(program).args(rest))?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The Prometheus text of a metrics endpoint listening at `listen` (e.g. `127.0.0.1:9167`)
    /// inside the namespace, fetched with python3 (no HTTP client crate in the harness).
    pub fn scrape_metrics(&self, listen: &str) -> Result<String> {
        self.exec_ok(&[
            "python3",
            "-c",
            &format!(
                "import urllib.request; print(urllib.request.urlopen('http://{listen}/metrics', \
                 timeout=5).read().decode())"
            ),
        ])
    }

    /// One sample of [`Self::scrape_metrics`]: `name` with its labels, as an integer.
    pub fn metric(&self, listen: &str, name: &str) -> Result<u64> {
        let text = self.scrape_metrics(listen)?;
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
            .map(|value| value as u64)
            .ok_or_else(|| anyhow!("no {name} in the scrape:\n{text}"))
    }

    /// ISC's `omshell` (/usr/bin/omshell) run inside the namespace on `input` (its stdin),
    /// bounded: killed after 20 s; stdout then stderr.
    pub fn omshell(&self, input: &str) -> Result<String> {
        use std::io::Write as _;
        let mut child = self
            .command("/usr/bin/omshell")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawn omshell")?;
        child
            .stdin
            .take()
            .context("omshell stdin")?
            .write_all(input.as_bytes())?;
        // omshell exits at the end of its input; a server that never answers must not hang us.
        let exited = wait_for("omshell to exit", Duration::from_secs(20), || {
            Ok(child.try_wait()?)
        });
        if exited.is_err() {
            let _ = child.kill();
        }
        let output = child.wait_with_output()?;
        Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }

    /// `ip -n NAME args…`.
    pub fn ip(&self, args: &[&str]) -> Result<()> {
        run(Command::new("ip").args(["-n", &self.name]).args(args))?;
        Ok(())
    }

    /// Whether something in the namespace has a UDP socket bound to `port` (any address).
    pub fn udp_bound(&self, port: u16) -> Result<bool> {
        let table = self.exec_ok(&["cat", "/proc/net/udp"])?;
        let needle = format!(":{port:04X}");
        Ok(table.lines().skip(1).any(|line| {
            line.split_whitespace()
                .nth(1)
                .is_some_and(|local| local.ends_with(&needle))
        }))
    }

    fn pids(&self) -> Vec<String> {
        Command::new("ip")
            .args(["netns", "pids", &self.name])
            .stderr(Stdio::null())
            .output()
            .map(|output| {
                String::from_utf8_lossy(&output.stdout)
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for _ in 0..50 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(&pids)
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct Proc {
    pub name: String,
    pub child: Child,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `command` with stdout+stderr appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: PathBuf) -> Result<Self> {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("open {}", log.display()))?;
        let err = out.try_clone()?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("spawn {name}: {command:?}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails with the log when the process has already exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited early ({status}); its log:\n{}",
                self.name,
                self.log_text()
            );
        }
        Ok(())
    }

    /// Sends a signal by name (`USR1`, `TERM`, …).
    pub fn signal(&self, signal: &str) -> Result<()> {
        run(Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string()))?;
        Ok(())
    }

    /// Waits for exit with a deadline; kills it when the deadline passes.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let child = &mut self.child;
        let result = wait_for(&format!("{} to exit", self.name), timeout, || {
            Ok(child.try_wait()?)
        });
        if result.is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        result
    }

    /// User+system CPU seconds so far (from /proc/PID/stat; 0 once reaped).
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.pid())
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// utime+stime of a live process (and its reaped children), in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the `(comm)`, which may contain spaces: state is field 3, utime 14, stime 15,
    // cutime 16, cstime 17.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12, 13, 14]
        .iter()
        .filter_map(|&index| fields.get(index)?.parse::<u64>().ok())
        .sum();
    // USER_HZ is 100 on every Linux ABI we run on.
    ticks as f64 / 100.0
}

/// Two namespaces joined by a veth pair: `server` (address `server_cidr` on `server_if`) and
/// `client` (link up, no address unless the test adds one).
pub struct Lab {
    pub tag: String,
    // Field order matters for drop: processes referencing the dir die with the namespaces first.
    pub client: Netns,
    pub server: Netns,
    pub dir: TempDir,
    pub server_if: String,
    pub client_if: String,
    /// The server's address and prefix length on `server_if`.
    pub server_address: std::net::Ipv4Addr,
    pub server_prefix_len: u8,
}

impl Lab {
    pub const SERVER_IF: &'static str = "xs0";
    pub const CLIENT_IF: &'static str = "xc0";

    pub fn new(server_cidr: &str) -> Result<Self> {
        let (address, prefix_len) = server_cidr
            .split_once('/')
            .ok_or_else(|| anyhow!("{server_cidr} is not ADDRESS/PREFIX"))?;
        let server_address = address.parse()?;
        let server_prefix_len = prefix_len.parse()?;
        let tag = unique_tag();
        let dir = TempDir::new("xdh-lab")?;
        let server = Netns::create(format!("{tag}-srv"))?;
        let client = Netns::create(format!("{tag}-cli"))?;
        // Created directly inside the server namespace with its peer in the client namespace:
        // the host's namespace never sees either end.
        server.ip(&[
            "link",
            "add",
            Self::SERVER_IF,
            "type",
            "veth",
            "peer",
            "name",
            Self::CLIENT_IF,
            "netns",
            &client.name,
        ])?;
        server.ip(&["addr", "add", server_cidr, "dev", Self::SERVER_IF])?;
        server.ip(&["link", "set", Self::SERVER_IF, "up"])?;
        client.ip(&["link", "set", Self::CLIENT_IF, "up"])?;
        Ok(Self {
            tag,
            client,
            server,
            dir,
            server_if: Self::SERVER_IF.to_owned(),
            client_if: Self::CLIENT_IF.to_owned(),
            server_address,
            server_prefix_len,
        })
    }

    /// An address on the server's subnet that nobody holds (the last but one): sending to it
    /// from the server namespace makes ARP requests cross the veth.
    pub fn unused_server_side_address(&self) -> std::net::Ipv4Addr {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.server_prefix_len))
            .unwrap_or(0);
        let network = u32::from(self.server_address) & mask;
        std::net::Ipv4Addr::from(network | (!mask - 1))
    }

    /// A second client interface: a macvlan on the client end of the veth, with its own MAC.
    pub fn add_client_macvlan(&self, name: &str, mac: &str) -> Result<()> {
        self.client.ip(&[
            "link",
            "add",
            name,
            "link",
            &self.client_if,
            "address",
            mac,
            "type",
            "macvlan",
            "mode",
            "bridge",
        ])?;
        self.client.ip(&["link", "set", name, "up"])
    }

    pub fn set_client_mac(&self, mac: &str) -> Result<()> {
        self.client
            .ip(&["link", "set", &self.client_if, "address", mac])
    }

    /// MAC address of an interface in the client namespace.
    pub fn client_mac(&self, ifname: &str) -> Result<String> {
        let text = self
            .client
            .exec_ok(&["cat", &format!("/sys/class/net/{ifname}/address")])?;
        Ok(text.trim().to_owned())
    }

    /// Makes the client side look like a relay agent: `relay_addr` (e.g. `10.214.0.1`) is
    /// assigned to the client end and routed from the server, so a packet with that giaddr gets
    /// its reply. The server's interface keeps a single subnet.
    pub fn route_relay(&self, relay_addr: &str, relay_net: &str, server_net: &str) -> Result<()> {
        self.client.ip(&[
            "addr",
            "add",
            &format!("{relay_addr}/32"),
            "dev",
            &self.client_if,
        ])?;
        self.client
            .ip(&["route", "add", server_net, "dev", &self.client_if])?;
        self.server
            .ip(&["route", "add", relay_net, "dev", &self.server_if])
    }
}
