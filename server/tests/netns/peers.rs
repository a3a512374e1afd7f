//! The programs the harness runs inside its namespaces: the server under test ([`ServerKind`]:
//! xdhcpd, ISC dhcpd 4.4 or Kea 2.2) and the real clients (dhclient, busybox udhcpc, dhcpcd,
//! perfdhcp, tshark). Each is started by hand with its state files in the lab's temp dir; none
//! is ever started as a system service.

use super::{run, wait_for, DhcpConfig, LeaseRecord, Netns, Proc};
use anyhow::{bail, Context as _, Result};
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long any server gets to bind its socket.
pub const SERVER_READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The DHCP server under test.
#[derive(Clone, Debug)]
pub enum ServerKind {
    /// Our daemon, with its ISC-compatible command line.
    Xdhcpd { binary: PathBuf, xdp: bool },
    /// ISC dhcpd 4.4 (`/usr/sbin/dhcpd`).
    IscDhcpd,
    /// Kea 2.2 `kea-dhcp4`, memfile leases, multi-threaded.
    Kea { threads: u32 },
}

impl ServerKind {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Xdhcpd { .. } => "xdhcpd",
            Self::IscDhcpd => "ISC dhcpd 4.4",
            Self::Kea { .. } => "Kea 2.2",
        }
    }

    /// Whether the server writes dhcpd.leases (Kea writes CSV).
    pub fn writes_dhcpd_leases(&self) -> bool {
        !matches!(self, Self::Kea { .. })
    }
}

/// A running server: killed on drop; its lease file lives on for a restart.
pub struct Server {
    pub kind: ServerKind,
    pub proc: Proc,
    pub lease_file: PathBuf,
    pub config_file: PathBuf,
}

/// Everything needed to (re)start a server in a namespace.
pub struct ServerSetup<'a> {
    pub netns: &'a Netns,
    pub dir: &'a Path,
    pub kind: ServerKind,
    pub config: DhcpConfig,
    pub interface: String,
    /// Kea only: relayed traffic needs UDP sockets, direct clients need raw ones.
    pub relayed: bool,
    /// dhcpd.conf text to use verbatim instead of rendering `config` (xdhcpd and ISC only).
    pub dhcpd_conf: Option<String>,
}

impl ServerSetup<'_> {
    fn dhcpd_conf_text(&self) -> String {
        self.dhcpd_conf
            .clone()
            .unwrap_or_else(|| self.config.to_dhcpd_conf())
    }

    /// Starts the server and waits until it has bound UDP port 67. The lease file
    /// (`server.leases` in the dir) is created empty if missing and reused otherwise.
    pub fn start(&self) -> Result<Server> {
        let log = self.dir.join("server.log");
        let (lease_file, config_file, command) = match &self.kind {
            ServerKind::Xdhcpd { binary, xdp } => {
                let lease_file = self.dir.join("server.leases");
                let config_file = self.dir.join("dhcpd.conf");
                fs::write(&config_file, self.dhcpd_conf_text())?;
                touch(&lease_file)?;
                let mut command = self.netns.command(&binary.to_string_lossy());
                command
                    .args(["-f", "-d", "-cf"])
                    .arg(&config_file)
                    .arg("-lf")
                    .arg(&lease_file);
                if !xdp {
                    command.arg("--no-xdp");
                }
                command.arg(&self.interface);
                (lease_file, config_file, command)
            }
            ServerKind::IscDhcpd => {
                let lease_file = self.dir.join("server.leases");
                let config_file = self.dir.join("dhcpd.conf");
                fs::write(&config_file, self.dhcpd_conf_text())?;
                // ISC refuses to start without an existing lease file.
                touch(&lease_file)?;
                let mut command = self.netns.command("/usr/sbin/dhcpd");
                command
                    .args(["-4", "-f", "-d", "-cf"])
                    .arg(&config_file)
                    .arg("-lf")
                    .arg(&lease_file)
                    .arg("-pf")
                    .arg(self.dir.join("dhcpd.pid"))
                    .arg(&self.interface);
                (lease_file, config_file, command)
            }
            ServerKind::Kea { threads } => {
                let lease_file = self.dir.join("kea-leases4.csv");
                let config_file = self.dir.join("kea-dhcp4.json");
                let socket_type = if self.relayed { "udp" } else { "raw" };
                fs::write(
                    &config_file,
                    self.config.to_kea_json(
                        &self.interface,
                        &lease_file.to_string_lossy(),
                        socket_type,
                        *threads,
                    ),
                )?;
                let mut command = self.netns.command("/usr/sbin/kea-dhcp4");
                command
                    .arg("-c")
                    .arg(&config_file)
                    .env("KEA_PIDFILE_DIR", self.dir)
                    .env("KEA_LOCKFILE_DIR", self.dir)
                    .env("KEA_LOGGER_DESTINATION", "stdout");
                (lease_file, config_file, command)
            }
        };
        let mut proc = Proc::spawn(self.kind.label(), command, log)?;
        let netns = self.netns;
        wait_for(
            &format!("{} to bind UDP port 67", self.kind.label()),
            SERVER_READY_TIMEOUT,
            || {
                proc.check_running()?;
                Ok(netns.udp_bound(67)?.then_some(()))
            },
        )
        .with_context(|| format!("server log:\n{}", proc.log_text()))?;
        Ok(Server {
            kind: self.kind.clone(),
            proc,
            lease_file,
            config_file,
        })
    }
}

impl Server {
    /// The lease file's records, in file order (dhcpd.leases, or Kea's CSV).
    pub fn lease_records(&self) -> Result<Vec<LeaseRecord>> {
        let text = fs::read_to_string(&self.lease_file)
            .with_context(|| format!("read {}", self.lease_file.display()))?;
        Ok(if self.kind.writes_dhcpd_leases() {
            super::parse_lease_file(&text)
        } else {
            super::leases::parse_kea_csv(&text)
        })
    }
}

fn touch(path: &Path) -> Result<()> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    Ok(())
}

/// One line a client's event script logged: the event name and the address it carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientEvent {
    pub event: String,
    pub address: Option<Ipv4Addr>,
}

/// Writes an event script shared by dhclient (`$reason`), udhcpc (`$1`) and dhcpcd (`$reason`):
/// it appends `EVENT ADDRESS` to `events`, and with `apply` puts the address on the interface
/// (dhcpcd applies addresses itself). It never touches /etc: the distributions' scripts would
/// rewrite the host's resolv.conf.
pub fn write_event_script(path: &Path, events: &Path, apply: bool) -> Result<()> {
    let apply_line = if apply {
        r#"case "$event" in
  BOUND|RENEW|REBIND|REBOOT|bound|renew)
    [ -n "$addr" ] && ip addr replace "$addr/$mask" dev "$interface" ;;
esac"#
    } else {
        ""
    };
    let script = format!(
        r#"#!/bin/sh
# Generated by the xdhcpd netns harness: log the event, optionally apply the address.
event="${{reason:-$1}}"
addr="${{new_ip_address:-$ip}}"
mask="${{new_subnet_mask:-$subnet}}"
echo "$event $addr" >> '{}'
{apply_line}
exit 0
"#,
        events.display()
    );
    fs::write(path, script)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Parses an events file written by [`write_event_script`].
pub fn read_events(events: &Path) -> Vec<ClientEvent> {
    fs::read_to_string(events)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let event = parts.next()?.to_owned();
            let address = parts.next().and_then(|text| text.parse().ok());
            Some(ClientEvent { event, address })
        })
        .collect()
}

/// A DHCP client running in the client namespace, with its event log.
pub struct Client {
    pub proc: Proc,
    pub events: PathBuf,
    /// dhclient's lease file (empty path for the others).
    pub lease_file: PathBuf,
}

impl Client {
    pub fn events(&self) -> Vec<ClientEvent> {
        read_events(&self.events)
    }

    /// Waits until an event whose name is in `names` has been logged `count` times in total;
    /// returns the address of the last one.
    pub fn wait_event(
        &mut self,
        names: &[&str],
        count: usize,
        timeout: Duration,
    ) -> Result<Ipv4Addr> {
        let events = self.events.clone();
        let proc = &mut self.proc;
        let result = wait_for(
            &format!("{} to report {names:?} x{count}", proc.name),
            timeout,
            || {
                let matching: Vec<ClientEvent> = read_events(&events)
                    .into_iter()
                    .filter(|event| names.contains(&event.event.as_str()))
                    .collect();
                if matching.len() >= count {
                    if let Some(address) = matching.last().and_then(|event| event.address) {
                        return Ok(Some(address));
                    }
                }
                // A client that gave up is a failure now, not at the deadline.
                if let Some(status) = proc.child.try_wait()? {
                    bail!("{} exited ({status}) before {names:?}", proc.name);
                }
                Ok(None)
            },
        );
        result.with_context(|| {
            format!(
                "{} log:\n{}\nevents: {:?}",
                self.proc.name,
                self.proc.log_text(),
                read_events(&self.events)
            )
        })
    }
}

/// `dhclient -d -1`: stays in the foreground and renews at T1. `keep_running = false` adds
/// nothing; the caller kills it.
pub fn start_dhclient(netns: &Netns, dir: &Path, interface: &str, apply: bool) -> Result<Client> {
    let events = dir.join(format!("dhclient-{interface}.events"));
    let script = dir.join(format!("dhclient-{interface}.sh"));
    write_event_script(&script, &events, apply)?;
    let config = dir.join(format!("dhclient-{interface}.conf"));
    // A private config: the packaged one asks for many options and nothing else differs.
    fs::write(&config, "timeout 30;\nretry 1;\n")?;
    let lease_file = dir.join(format!("dhclient-{interface}.leases"));
    let mut command = netns.command("/usr/sbin/dhclient");
    command
        .args(["-4", "-d", "-1", "-v", "-cf"])
        .arg(&config)
        .arg("-sf")
        .arg(&script)
        .arg("-pf")
        .arg(dir.join(format!("dhclient-{interface}.pid")))
        .arg("-lf")
        .arg(&lease_file)
        .arg(interface);
    let proc = Proc::spawn(
        "dhclient",
        command,
        dir.join(format!("dhclient-{interface}.log")),
    )?;
    Ok(Client {
        proc,
        events,
        lease_file,
    })
}

/// busybox `udhcpc -f`: foreground, keeps running; SIGUSR1 makes it renew. With `quit`, it
/// exits after obtaining a lease (`-q`) and fails if it gets none (`-n`).
pub fn start_udhcpc(netns: &Netns, dir: &Path, interface: &str, quit: bool) -> Result<Client> {
    let events = dir.join(format!("udhcpc-{interface}.events"));
    let script = dir.join(format!("udhcpc-{interface}.sh"));
    write_event_script(&script, &events, true)?;
    let mut command = netns.command("/usr/sbin/udhcpc");
    command
        .args([
            "-f", "-i", interface, "-t", "10", "-T", "1", "-A", "1", "-s",
        ])
        .arg(&script)
        .arg("-p")
        .arg(dir.join(format!("udhcpc-{interface}.pid")));
    if quit {
        command.args(["-q", "-n"]);
    }
    let proc = Proc::spawn(
        "udhcpc",
        command,
        dir.join(format!("udhcpc-{interface}.log")),
    )?;
    Ok(Client {
        proc,
        events,
        lease_file: PathBuf::new(),
    })
}

/// dhcpcd 9 in the foreground, IPv4 only, with a private config and our event script. Its
/// compiled-in state dirs (/var/lib/dhcpcd, /run/dhcpcd) are covered by private mounts inside
/// the child's own mount namespace (`ip netns exec` already gave it one, slave to the host's),
/// so nothing is written outside the lab dir.
pub fn start_dhcpcd(netns: &Netns, dir: &Path, interface: &str) -> Result<Client> {
    let events = dir.join(format!("dhcpcd-{interface}.events"));
    let script = dir.join(format!("dhcpcd-{interface}.sh"));
    write_event_script(&script, &events, false)?;
    let config = dir.join(format!("dhcpcd-{interface}.conf"));
    fs::write(
        &config,
        "# private dhcpcd config for the netns harness\nipv4only\nnoipv4ll\nnoarp\noption subnet_mask, routers, domain_name_servers\n",
    )?;
    let state = dir.join("dhcpcd-db");
    let rundir = dir.join("dhcpcd-run");
    fs::create_dir_all(&state)?;
    fs::create_dir_all(&rundir)?;
    let inner = format!(
        "mount --bind '{state}' /var/lib/dhcpcd && mount -t tmpfs xdh-run /run && \
         exec /usr/sbin/dhcpcd -4 -B -d -t 30 -f '{config}' -c '{script}' {interface}",
        state = state.display(),
        config = config.display(),
        script = script.display(),
    );
    let mut command = netns.command("sh");
    command.args(["-c", &inner]);
    let proc = Proc::spawn(
        "dhcpcd",
        command,
        dir.join(format!("dhcpcd-{interface}.log")),
    )?;
    Ok(Client {
        proc,
        events,
        lease_file: PathBuf::new(),
    })
}

/// What perfdhcp reported at the end of a run (DHCPv4 DORA).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PerfdhcpReport {
    pub discover_sent: u64,
    pub offer_received: u64,
    pub request_sent: u64,
    pub ack_received: u64,
    pub discover_drops: u64,
    pub request_drops: u64,
    /// Average and maximum DISCOVER→OFFER and REQUEST→ACK delays, in ms.
    pub do_avg_ms: Option<f64>,
    pub do_max_ms: Option<f64>,
    pub ra_avg_ms: Option<f64>,
    pub ra_max_ms: Option<f64>,
    /// Replies that came after perfdhcp had counted their exchange as dropped (`orphans:`,
    /// both sections): answered, late.
    pub orphans: u64,
    pub raw: String,
}

impl PerfdhcpReport {
    /// Parses perfdhcp 2.2's statistics text: two sections, `***** Statistics for: DISCOVER-OFFER
    /// *****` and `… REQUEST-ACK …`, each with `sent packets:`, `received packets:`, `drops:`,
    /// `orphans:`, `avg delay:` and `max delay:` lines.
    pub fn parse(text: &str) -> Self {
        let mut report = Self {
            raw: text.to_owned(),
            ..Self::default()
        };
        let mut section = "";
        for line in text.lines() {
            let line = line.trim();
            if line.contains("Statistics for: DISCOVER-OFFER") {
                section = "do";
                continue;
            }
            if line.contains("Statistics for: REQUEST-ACK") {
                section = "ra";
                continue;
            }
            if line.starts_with("*****") && !line.contains("Statistics for") {
                section = "";
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            let count = value
                .split_whitespace()
                .next()
                .and_then(|number| number.parse::<u64>().ok());
            let delay = value
                .split_whitespace()
                .next()
                .and_then(|number| number.parse::<f64>().ok());
            match (section, key.trim()) {
                ("do" | "ra", "orphans") => report.orphans += count.unwrap_or(0),
                ("do", "sent packets") => report.discover_sent = count.unwrap_or(0),
                ("do", "received packets") => report.offer_received = count.unwrap_or(0),
                ("do", "drops") => report.discover_drops = count.unwrap_or(0),
                ("do", "avg delay") => report.do_avg_ms = delay,
                ("do", "max delay") => report.do_max_ms = delay,
                ("ra", "sent packets") => report.request_sent = count.unwrap_or(0),
                ("ra", "received packets") => report.ack_received = count.unwrap_or(0),
                ("ra", "drops") => report.request_drops = count.unwrap_or(0),
                ("ra", "avg delay") => report.ra_avg_ms = delay,
                ("ra", "max delay") => report.ra_max_ms = delay,
                _ => {}
            }
        }
        report
    }

    pub fn total_drops(&self) -> u64 {
        self.discover_drops + self.request_drops
    }

    /// Drops as a share of the exchanges started, in percent.
    pub fn drop_percent(&self) -> f64 {
        if self.discover_sent == 0 {
            return 0.0;
        }
        100.0 * (self.discover_sent.saturating_sub(self.ack_received)) as f64
            / self.discover_sent as f64
    }
}

/// A perfdhcp run: `-4 -l LOCAL -R CLIENTS -p SECONDS [-r RATE] SERVER`. With `-l` set to a
/// local address and a unicast server, perfdhcp behaves as a relay (giaddr = that address,
/// source port 67).
pub struct Perfdhcp<'a> {
    pub netns: &'a Netns,
    pub dir: &'a Path,
    pub local: String,
    pub server: Ipv4Addr,
    pub rate: Option<u32>,
    pub clients: u32,
    pub seconds: u32,
    /// `-n`: stop after this many exchanges.
    pub exchanges: Option<u32>,
    pub extra: Vec<String>,
}

impl Perfdhcp<'_> {
    pub fn command(&self) -> Command {
        self.command_wrapped(&[])
    }

    /// The command, run under `wrapper` (e.g. `/usr/bin/time -f …`) inside the namespace.
    pub fn command_wrapped(&self, wrapper: &[&str]) -> Command {
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = self.netns.command(program);
                command.args(rest).arg("/usr/sbin/perfdhcp");
                command
            }
            None => self.netns.command("/usr/sbin/perfdhcp"),
        };
        command.args(["-4", "-l", &self.local, "-R", &self.clients.to_string()]);
        command.args(["-p", &self.seconds.to_string()]);
        // Wait 1 s after the last request so that answers still in flight when the period ends
        // are counted as answers, not drops (perfdhcp's default exit wait is 0).
        command.args(["-W", "1000000"]);
        if let Some(rate) = self.rate {
            command.args(["-r", &rate.to_string()]);
        }
        if let Some(exchanges) = self.exchanges {
            command.args(["-n", &exchanges.to_string()]);
        }
        command.args(&self.extra);
        command.arg(self.server.to_string());
        command
    }

    /// Starts perfdhcp in the background.
    pub fn spawn(&self, name: &str) -> Result<Proc> {
        Proc::spawn(name, self.command(), self.dir.join(format!("{name}.log")))
    }

    /// Runs to completion (bounded by `-p` plus a margin) and parses its report.
    pub fn run(&self, name: &str) -> Result<PerfdhcpReport> {
        let mut proc = self.spawn(name)?;
        let status = proc.wait_exit(Duration::from_secs(u64::from(self.seconds) + 30))?;
        let text = proc.log_text();
        // perfdhcp exits 3 when drops occurred; the report is still complete.
        if !matches!(status.code(), Some(0 | 3)) {
            bail!("perfdhcp failed ({status}):\n{text}");
        }
        Ok(PerfdhcpReport::parse(&text))
    }
}

/// dumpcap capturing DHCP on an interface to a file until dropped or [`Capture::finish`]; tshark
/// decodes it.
pub struct Capture {
    pub proc: Proc,
    pub file: PathBuf,
}

impl Capture {
    /// Starts capturing on the lab's client interface. dumpcap says "File:" before its socket
    /// sees traffic, so readiness is proven by traffic: ARP requests that the server namespace
    /// sends for an unused address, until dumpcap counts a packet.
    pub fn start(lab: &super::Lab) -> Result<Self> {
        let dir = lab.dir.path();
        let file = dir.join(format!("capture-{}.pcapng", lab.client_if));
        // dumpcap (tshark's capture engine) directly: on SIGINT it flushes and closes the file
        // itself, where tshark may stop it before the last packets are written.
        let mut command = lab.client.command("/usr/bin/dumpcap");
        command
            .args([
                "-i",
                &lab.client_if,
                "-f",
                "udp port 67 or udp port 68 or arp",
                "-w",
            ])
            .arg(&file);
        let mut proc = Proc::spawn("dumpcap", command, dir.join("dumpcap.log"))?;
        let probe = format!(
            "echo probe > /dev/udp/{}/9",
            lab.unused_server_side_address()
        );
        wait_for("dumpcap to capture", Duration::from_secs(20), || {
            proc.check_running()?;
            if proc.log_text().contains("Packets: ") {
                return Ok(Some(()));
            }
            // bash's /dev/udp: no extra tool needed. The send itself may fail; the ARP goes out.
            let _ = lab.server.command("bash").args(["-c", &probe]).output();
            Ok(None)
        })?;
        Ok(Self { proc, file })
    }

    /// Stops the capture (SIGINT flushes the file) and returns (chaddr, yiaddr) of every
    /// DHCPACK in it.
    pub fn finish(mut self) -> Result<Vec<(String, Ipv4Addr)>> {
        // Let packets in flight reach the capture before stopping it.
        let settle = super::now() + Duration::from_millis(300);
        wait_for("in-flight packets", Duration::from_secs(1), || {
            Ok((super::now() >= settle).then_some(()))
        })?;
        self.proc.signal("INT")?;
        self.proc.wait_exit(Duration::from_secs(20))?;
        let output = run(Command::new("/usr/bin/tshark")
            .args(["-n", "-r"])
            .arg(&self.file)
            .args([
                "-Y",
                "dhcp.option.dhcp == 5",
                "-T",
                "fields",
                "-e",
                "dhcp.hw.mac_addr",
                "-e",
                "dhcp.ip.your",
            ]))?;
        let text = String::from_utf8_lossy(&output.stdout);
        let mut acks = Vec::new();
        for line in text.lines() {
            let mut fields = line.split('\t');
            let (Some(mac), Some(address)) = (fields.next(), fields.next()) else {
                continue;
            };
            if let Ok(address) = address.trim().parse() {
                acks.push((mac.trim().to_ascii_lowercase(), address));
            }
        }
        Ok(acks)
    }
}
