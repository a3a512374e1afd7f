//! A failover lab for the privileged scenarios and the pair benchmark: two server namespaces
//! (`a` = 10.215.0.1, `b` = 10.215.0.2, both on 10.215.0.0/16) and a client namespace whose
//! bridge `br0` joins them (10.215.0.250: perfdhcp's relay address). Any mix of xdhcpd, ISC
//! dhcpd 4.4 and Kea 2.2 runs in `a` and `b`; perfdhcp broadcasts relayed DISCOVERs
//! (giaddr = 10.215.0.250) so both servers see every one, as from a relay agent configured with
//! both server addresses, and each answers to the giaddr.
//!
//! Included with `#[path]` by `server/tests/integration/main.rs` (as `failover_pair`) and by xtask's
//! `bench_failover`, beside `crate::netns`; only std and anyhow.
// Each includer uses a different subset.
#![allow(dead_code)]

use crate::netns::leases::current_by_address;
use crate::netns::peers::{PerfdhcpReport, ServerKind, ServerSetup};
use crate::netns::{parse_lease_file, run, wait_for, DhcpConfig, Netns, Proc, TempDir};
use anyhow::{bail, Context as _, Result};
use std::collections::HashMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const ADDRESS_A: Ipv4Addr = Ipv4Addr::new(10, 215, 0, 1);
pub const ADDRESS_B: Ipv4Addr = Ipv4Addr::new(10, 215, 0, 2);
/// perfdhcp's source and giaddr on the client bridge.
pub const CLIENT_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 215, 0, 250);
pub const PREFIX_LEN: u8 = 16;
/// The relationship's name in every configuration.
pub const RELATIONSHIP: &str = "interop";
/// First address of every pool (the pool is `POOL_FIRST` .. `POOL_FIRST + size - 1`).
pub const POOL_FIRST: Ipv4Addr = Ipv4Addr::new(10, 215, 1, 0);

/// The three namespaces. Field order: namespaces (and every process inside) go first.
pub struct PairLab {
    pub client: Netns,
    pub a: Netns,
    pub b: Netns,
    pub dir: TempDir,
}

impl PairLab {
    pub fn new() -> Result<Self> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let tag = format!(
            "xdh-{}-fp{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let dir = TempDir::new("xdh-fopair")?;
        let a = Netns::create(format!("{tag}-a"))?;
        let b = Netns::create(format!("{tag}-b"))?;
        let client = Netns::create(format!("{tag}-c"))?;
        client.ip(&["link", "add", "br0", "type", "bridge"])?;
        for (server, port, address) in [(&a, "pa0", ADDRESS_A), (&b, "pb0", ADDRESS_B)] {
            server.ip(&[
                "link",
                "add",
                "s0",
                "type",
                "veth",
                "peer",
                "name",
                port,
                "netns",
                &client.name,
            ])?;
            server.ip(&[
                "addr",
                "add",
                &format!("{address}/{PREFIX_LEN}"),
                "dev",
                "s0",
            ])?;
            server.ip(&["link", "set", "s0", "up"])?;
            client.ip(&["link", "set", port, "master", "br0"])?;
            client.ip(&["link", "set", port, "up"])?;
        }
        client.ip(&[
            "addr",
            "add",
            &format!("{CLIENT_ADDRESS}/{PREFIX_LEN}"),
            "dev",
            "br0",
        ])?;
        client.ip(&["link", "set", "br0", "up"])?;
        let lab = Self { client, a, b, dir };
        // The bridge forwards only once its ports are up: prove the path each way with ARP (a
        // datagram from bash's /dev/udp makes the client resolve the server), not a sleep.
        for address in [ADDRESS_A, ADDRESS_B] {
            let probe = format!("echo probe > /dev/udp/{address}/9");
            wait_for("the bridge to forward", Duration::from_secs(10), || {
                let _ = lab.client.command("bash").args(["-c", &probe]).output();
                let neighbour =
                    lab.client
                        .exec_ok(&["ip", "neigh", "show", &address.to_string()])?;
                Ok(neighbour.contains("lladdr").then_some(()))
            })?;
        }
        Ok(lab)
    }

    /// A per-server state directory inside the lab's.
    pub fn server_dir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.dir.join(name);
        fs::create_dir_all(&dir)?;
        Ok(dir)
    }
}

/// The failover part of one server's dhcpd.conf.
#[derive(Clone, Debug)]
pub struct FailoverConf {
    pub primary: bool,
    pub address: Ipv4Addr,
    pub peer_address: Ipv4Addr,
    pub pool_size: u32,
    pub default_lease_time: u32,
    pub max_lease_time: u32,
    pub mclt: u32,
    pub max_unacked_updates: u32,
}

impl FailoverConf {
    /// `a` primary, `b` secondary (or the reverse with `primary = false`), split 128.
    pub fn new(primary: bool, pool_size: u32) -> Self {
        let (address, peer_address) = if primary {
            (ADDRESS_A, ADDRESS_B)
        } else {
            (ADDRESS_B, ADDRESS_A)
        };
        Self {
            primary,
            address,
            peer_address,
            pool_size,
            default_lease_time: 600,
            max_lease_time: 7200,
            mclt: 300,
            max_unacked_updates: 10,
        }
    }

    pub fn pool_last(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(POOL_FIRST) + self.pool_size.max(1) - 1)
    }

    /// dhcpd.conf for xdhcpd and ISC alike (docs/spec/failover.md §1.1): the primary carries `mclt` and
    /// `split`; both listen on port 647 of their own address and connect to the other.
    pub fn dhcpd_conf(&self) -> String {
        let role = if self.primary {
            format!("primary;\n  mclt {};\n  split 128;", self.mclt)
        } else {
            "secondary;".to_owned()
        };
        format!(
            "authoritative;\nddns-update-style none;\nping-check false;\n\
             default-lease-time {dlt};\nmax-lease-time {mlt};\n\
             server-identifier {address};\n\
             failover peer \"{RELATIONSHIP}\" {{\n  {role}\n  address {address};\n  port 647;\n  \
             peer address {peer};\n  peer port 647;\n  max-response-delay 30;\n  \
             max-unacked-updates {unacked};\n  load balance max seconds 5;\n}}\n\
             subnet 10.215.0.0 netmask 255.255.0.0 {{\n  pool {{\n    \
             failover peer \"{RELATIONSHIP}\";\n    range {first} {last};\n  }}\n}}\n",
            dlt = self.default_lease_time,
            mlt = self.max_lease_time,
            address = self.address,
            peer = self.peer_address,
            unacked = self.max_unacked_updates,
            first = POOL_FIRST,
            last = self.pool_last(),
        )
    }

    /// The same server without failover (the single-server baseline of the benchmark).
    pub fn standalone_conf(&self) -> String {
        format!(
            "authoritative;\nddns-update-style none;\nping-check false;\n\
             default-lease-time {dlt};\nmax-lease-time {mlt};\n\
             server-identifier {address};\n\
             subnet 10.215.0.0 netmask 255.255.0.0 {{\n  range {first} {last};\n}}\n",
            dlt = self.default_lease_time,
            mlt = self.max_lease_time,
            address = self.address,
            first = POOL_FIRST,
            last = self.pool_last(),
        )
    }

    /// Kea 2.2 with the HA hook in load-balancing mode (and lease_cmds, which HA needs to send
    /// lease updates): this server is `server1` (primary) or `server2` (secondary). HA's own
    /// HTTP listener runs inside kea-dhcp4 (multi-threaded HA, dedicated listener), so no
    /// Control Agent is needed.
    pub fn kea_ha_json(&self, interface: &str, lease_file: &Path, hooks_dir: &Path) -> String {
        let (this, first_url, second_url) = if self.primary {
            ("server1", self.address, self.peer_address)
        } else {
            ("server2", self.peer_address, self.address)
        };
        format!(
            r#"{{ "Dhcp4": {{
  "interfaces-config": {{ "interfaces": [ "{interface}" ], "dhcp-socket-type": "raw" }},
  "lease-database": {{ "type": "memfile", "persist": true, "name": "{lease_file}", "lfc-interval": 0 }},
  "multi-threading": {{ "enable-multi-threading": true, "thread-pool-size": 2, "packet-queue-size": 64 }},
  "authoritative": true,
  "valid-lifetime": {dlt},
  "max-valid-lifetime": {mlt},
  "hooks-libraries": [
    {{ "library": "{hooks}/libdhcp_lease_cmds.so", "parameters": {{ }} }},
    {{ "library": "{hooks}/libdhcp_ha.so", "parameters": {{ "high-availability": [ {{
      "this-server-name": "{this}",
      "mode": "load-balancing",
      "heartbeat-delay": 10000,
      "max-response-delay": 60000,
      "max-ack-delay": 5000,
      "max-unacked-clients": 5,
      "multi-threading": {{ "enable-multi-threading": true, "http-dedicated-listener": true, "http-listener-threads": 2, "http-client-threads": 2 }},
      "peers": [
        {{ "name": "server1", "url": "http://{first_url}:8001/", "role": "primary", "auto-failover": true }},
        {{ "name": "server2", "url": "http://{second_url}:8001/", "role": "secondary", "auto-failover": true }}
      ]
    }} ] }} }}
  ],
  "subnet4": [ {{ "id": 1, "subnet": "10.215.0.0/16", "pools": [ {{ "pool": "{first} - {last}" }} ] }} ],
  "loggers": [ {{ "name": "kea-dhcp4", "output_options": [ {{ "output": "stdout" }} ], "severity": "INFO" }} ]
}} }}
"#,
            lease_file = lease_file.display(),
            hooks = hooks_dir.display(),
            dlt = self.default_lease_time,
            mlt = self.max_lease_time,
            first = POOL_FIRST,
            last = self.pool_last(),
        )
    }
}

/// A server of the pair; its files live in `dir` and survive a kill for the restart.
pub struct PairServer {
    pub name: &'static str,
    pub dir: PathBuf,
    pub lease_file: PathBuf,
    pub proc: Proc,
}

impl PairServer {
    pub fn log(&self) -> PathBuf {
        self.proc.log.clone()
    }

    pub fn check_running(&mut self) -> Result<()> {
        self.proc.check_running()
    }

    /// The `my state` ISC and xdhcpd last wrote to their lease file.
    pub fn my_state(&self) -> Option<String> {
        my_state(&self.lease_file)
    }
}

/// Starts xdhcpd on `s0` in `netns` with `conf`; the lease file in `dir` is kept if present.
pub fn start_xdhcpd(binary: &Path, netns: &Netns, dir: &Path, conf: String) -> Result<PairServer> {
    let server = ServerSetup {
        netns,
        dir,
        kind: ServerKind::Xdhcpd {
            binary: binary.to_owned(),
            xdp: false,
        },
        config: DhcpConfig::lab_default(),
        interface: "s0".into(),
        relayed: true,
        dhcpd_conf: Some(conf),
    }
    .start()?;
    Ok(PairServer {
        name: "xdhcpd",
        dir: dir.to_owned(),
        lease_file: server.lease_file.clone(),
        proc: server.proc,
    })
}

/// Starts ISC dhcpd 4.4 by hand on `s0` in `netns`; `fresh` empties its lease file, otherwise
/// it is kept (a restart).
pub fn start_isc(netns: &Netns, dir: &Path, conf: &str, fresh: bool) -> Result<PairServer> {
    let config_file = dir.join("isc.conf");
    let lease_file = dir.join("isc.leases");
    fs::write(&config_file, conf)?;
    if fresh || !lease_file.exists() {
        fs::write(&lease_file, "")?;
    }
    let mut command = netns.command("/usr/sbin/dhcpd");
    command
        .args(["-4", "-f", "-d", "-cf"])
        .arg(&config_file)
        .arg("-lf")
        .arg(&lease_file)
        .arg("-pf")
        .arg(dir.join("isc.pid"))
        .arg("s0");
    let mut proc = Proc::spawn("isc-dhcpd", command, dir.join("isc.log"))?;
    // ISC listens with a raw socket (no UDP port 67 to see); its failover listener on 647 says
    // it has finished reading its files. It reads about a million leases (300 MB) in 20 s on
    // this kind of machine: a big lease file (the failover benches') gets more time.
    let lease_bytes = fs::metadata(&lease_file).map_or(0, |metadata| metadata.len());
    wait_for(
        "ISC dhcpd to listen on 647",
        Duration::from_secs(20 + lease_bytes / 2_000_000),
        || {
            proc.check_running()?;
            let table = netns.exec_ok(&["cat", "/proc/net/tcp"])?;
            Ok(table
                .lines()
                .skip(1)
                .any(|line| {
                    let mut fields = line.split_whitespace();
                    let local = fields.nth(1).unwrap_or_default();
                    // st 0A = LISTEN
                    local.ends_with(":0287") && fields.nth(1) == Some("0A")
                })
                .then_some(()))
        },
    )
    .with_context(|| format!("ISC log:\n{}", proc.log_text()))?;
    Ok(PairServer {
        name: "isc-dhcpd",
        dir: dir.to_owned(),
        lease_file,
        proc,
    })
}

/// Starts kea-dhcp4 (HA load-balancing) on `s0` in `netns`; waits for its HA listener (8001).
pub fn start_kea_ha(netns: &Netns, dir: &Path, conf: &FailoverConf) -> Result<PairServer> {
    let lease_file = dir.join("kea-leases4.csv");
    let config_file = dir.join("kea-dhcp4.json");
    fs::write(
        &config_file,
        conf.kea_ha_json("s0", &lease_file, &kea_hooks_dir()?),
    )?;
    let mut command = netns.command("/usr/sbin/kea-dhcp4");
    command
        .arg("-c")
        .arg(&config_file)
        .env("KEA_PIDFILE_DIR", dir)
        .env("KEA_LOCKFILE_DIR", dir)
        .env("KEA_LOGGER_DESTINATION", "stdout");
    let mut proc = Proc::spawn("kea-dhcp4", command, dir.join("kea.log"))?;
    wait_for("Kea's HA listener on 8001", Duration::from_secs(20), || {
        proc.check_running()?;
        let table = netns.exec_ok(&["cat", "/proc/net/tcp"])?;
        Ok(table
            .lines()
            .skip(1)
            .any(|line| {
                let mut fields = line.split_whitespace();
                let local = fields.nth(1).unwrap_or_default();
                local.ends_with(":1F41") && fields.nth(1) == Some("0A")
            })
            .then_some(()))
    })
    .with_context(|| format!("Kea log:\n{}", proc.log_text()))?;
    Ok(PairServer {
        name: "kea-dhcp4",
        dir: dir.to_owned(),
        lease_file,
        proc,
    })
}

/// Where Debian's Kea keeps its hook libraries (package kea-common / kea-dhcp4-server).
pub fn kea_hooks_dir() -> Result<PathBuf> {
    for candidate in [
        "/usr/lib/x86_64-linux-gnu/kea/hooks",
        "/usr/lib/aarch64-linux-gnu/kea/hooks",
        "/usr/lib/kea/hooks",
    ] {
        let dir = PathBuf::from(candidate);
        if dir.join("libdhcp_ha.so").exists() && dir.join("libdhcp_lease_cmds.so").exists() {
            return Ok(dir);
        }
    }
    bail!("libdhcp_ha.so / libdhcp_lease_cmds.so not found (is kea-dhcp4-server installed?)")
}

/// The `my state` of the last `failover peer "interop" state` block of a lease file (§12).
pub fn my_state(lease_file: &Path) -> Option<String> {
    let text = fs::read_to_string(lease_file).ok()?;
    let header = format!("failover peer \"{RELATIONSHIP}\" state {{");
    if !text.contains(&header) {
        return None;
    }
    let block = text.rsplit(&header).next()?;
    let line = block
        .lines()
        .find(|line| line.trim().starts_with("my state "))?;
    line.trim()
        .strip_prefix("my state ")?
        .split([' ', ';'])
        .next()
        .map(str::to_owned)
}

/// Waits until every server's lease file says `state` (and all are still running).
pub fn wait_for_states(
    servers: &mut [&mut PairServer],
    state: &str,
    timeout: Duration,
) -> Result<()> {
    wait_for(
        &format!("{} in {state}", server_names(servers)),
        timeout,
        || {
            for server in servers.iter_mut() {
                server.check_running()?;
            }
            Ok(servers
                .iter()
                .all(|server| server.my_state().as_deref() == Some(state))
                .then_some(()))
        },
    )
}

fn server_names(servers: &[&mut PairServer]) -> String {
    servers
        .iter()
        .map(|server| server.name)
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The current `binding state active` leases of a lease file: address → MAC.
pub fn active_leases(lease_file: &Path) -> HashMap<Ipv4Addr, String> {
    let text = fs::read_to_string(lease_file).unwrap_or_default();
    let records = parse_lease_file(&text);
    current_by_address(&records)
        .into_iter()
        .filter(|(_, record)| record.binding_state.as_deref() == Some("active"))
        .filter_map(|(address, record)| Some((address, record.mac.clone()?)))
        .collect()
}

/// Addresses active for two different MACs across two lease files (each file's current view).
pub fn conflicting_bindings(
    first: &HashMap<Ipv4Addr, String>,
    second: &HashMap<Ipv4Addr, String>,
) -> Vec<(Ipv4Addr, String, String)> {
    let mut conflicts: Vec<_> = first
        .iter()
        .filter_map(|(address, mac)| {
            let other = second.get(address)?;
            (other != mac).then(|| (*address, mac.clone(), other.clone()))
        })
        .collect();
    conflicts.sort();
    conflicts
}

/// perfdhcp broadcasting relayed DORA from the client bridge (`-l br0 … all`: giaddr =
/// 10.215.0.250, sent to 255.255.255.255 with SO_BROADCAST), from MACs under `base_mac`.
pub struct PairPerfdhcp<'a> {
    pub lab: &'a PairLab,
    pub base_mac: String,
    pub clients: u32,
    pub rate: Option<u32>,
    pub exchanges: Option<u32>,
    pub seconds: u32,
    pub extra: Vec<String>,
}

pub fn perfdhcp<'a>(lab: &'a PairLab, base_mac: &str) -> PairPerfdhcp<'a> {
    PairPerfdhcp {
        lab,
        base_mac: base_mac.to_owned(),
        clients: 1,
        rate: None,
        exchanges: None,
        seconds: 10,
        extra: Vec::new(),
    }
}

impl PairPerfdhcp<'_> {
    /// The command, run under `wrapper` (e.g. `/usr/bin/time -f …`) inside the namespace.
    pub fn command_wrapped(&self, wrapper: &[&str]) -> Command {
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = self.lab.client.command(program);
                command.args(rest).arg("/usr/sbin/perfdhcp");
                command
            }
            None => self.lab.client.command("/usr/sbin/perfdhcp"),
        };
        command.args(["-4", "-l", "br0", "-R", &self.clients.to_string()]);
        command.args(["-b", &format!("mac={}", self.base_mac)]);
        command.args(["-p", &self.seconds.to_string(), "-W", "1000000"]);
        if let Some(rate) = self.rate {
            command.args(["-r", &rate.to_string()]);
        }
        if let Some(exchanges) = self.exchanges {
            command.args(["-n", &exchanges.to_string()]);
        }
        command.args(&self.extra).arg("all");
        command
    }

    pub fn spawn(&self, name: &str) -> Result<Proc> {
        Proc::spawn(
            name,
            self.command_wrapped(&[]),
            self.lab.dir.join(&format!("{name}.log")),
        )
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

/// dumpcap on the client bridge: every DHCP datagram the clients send and receive.
pub struct BridgeCapture {
    pub proc: Proc,
    pub file: PathBuf,
}

/// One DHCP reply seen on the bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// 2 = OFFER, 5 = ACK, 6 = NAK.
    pub message_type: u8,
    pub server_id: Option<Ipv4Addr>,
    pub chaddr: String,
    pub yiaddr: Option<Ipv4Addr>,
}

impl BridgeCapture {
    /// Starts dumpcap on `br0`; ready once it has counted a probe datagram (proven by traffic,
    /// not by a sleep).
    pub fn start(lab: &PairLab) -> Result<Self> {
        let file = lab.dir.join("bridge.pcapng");
        let mut command = lab.client.command("/usr/bin/dumpcap");
        command
            .args(["-i", "br0", "-B", "64", "-f", "udp", "-w"])
            .arg(&file);
        let mut proc = Proc::spawn("dumpcap", command, lab.dir.join("dumpcap.log"))?;
        let probe = format!("echo probe > /dev/udp/{ADDRESS_A}/9");
        wait_for("dumpcap to capture", Duration::from_secs(20), || {
            proc.check_running()?;
            if proc.log_text().contains("Packets: ") {
                return Ok(Some(()));
            }
            let _ = lab.client.command("bash").args(["-c", &probe]).output();
            Ok(None)
        })?;
        Ok(Self { proc, file })
    }

    /// Stops the capture and returns every DHCP reply in it.
    pub fn finish(mut self) -> Result<Vec<Reply>> {
        let settle = crate::netns::now() + Duration::from_millis(500);
        wait_for("in-flight packets", Duration::from_secs(2), || {
            Ok((crate::netns::now() >= settle).then_some(()))
        })?;
        self.proc.signal("INT")?;
        self.proc.wait_exit(Duration::from_secs(20))?;
        let output = run(Command::new("/usr/bin/tshark")
            .args(["-n", "-r"])
            .arg(&self.file)
            .args([
                "-Y",
                "dhcp.option.dhcp == 2 || dhcp.option.dhcp == 5 || dhcp.option.dhcp == 6",
                "-T",
                "fields",
                "-e",
                "dhcp.option.dhcp",
                "-e",
                "dhcp.option.dhcp_server_id",
                "-e",
                "dhcp.hw.mac_addr",
                "-e",
                "dhcp.ip.your",
            ]))?;
        let text = String::from_utf8_lossy(&output.stdout);
        Ok(text
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('\t');
                let message_type = fields.next()?.trim().parse().ok()?;
                let server_id = fields.next()?.trim().parse().ok();
                let chaddr = fields.next()?.trim().to_ascii_lowercase();
                let yiaddr = fields
                    .next()
                    .and_then(|field| field.trim().parse().ok())
                    .filter(|address: &Ipv4Addr| !address.is_unspecified());
                Some(Reply {
                    message_type,
                    server_id,
                    chaddr,
                    yiaddr,
                })
            })
            .collect())
    }
}

/// The lab's files, for a failure message.
pub fn logs(parts: &[(&str, &Path)]) -> String {
    parts
        .iter()
        .map(|(name, path)| {
            let text = fs::read_to_string(path).unwrap_or_default();
            // Long lease files: the tail says what happened last.
            let cut = (text.len().saturating_sub(12_000)..text.len())
                .find(|&index| text.is_char_boundary(index))
                .unwrap_or(0);
            let tail = match text.get(cut..) {
                Some(tail) if cut > 0 => format!("[… {cut} bytes cut …]\n{tail}"),
                _ => text.clone(),
            };
            format!("--- {name} ({}):\n{tail}\n", path.display())
        })
        .collect()
}

/// perfdhcp's statistics sections (`***Statistics for: NAME***`, e.g. `DISCOVER-OFFER`,
/// `REQUEST-ACK`, `REQUEST-ACK (renewal)`), each with its `key: number` lines.
pub fn perfdhcp_sections(text: &str) -> Vec<(String, HashMap<String, u64>)> {
    let mut sections: Vec<(String, HashMap<String, u64>)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.split_once("Statistics for:").map(|(_, rest)| rest) {
            sections.push((rest.trim_matches(['*', ' ']).to_owned(), HashMap::new()));
            continue;
        }
        let Some((_, values)) = sections.last_mut() else {
            continue;
        };
        if let Some((key, value)) = line.split_once(':') {
            if let Some(number) = value
                .split_whitespace()
                .next()
                .and_then(|number| number.parse().ok())
            {
                values.insert(key.trim().to_owned(), number);
            }
        }
    }
    sections
}

/// One counter of one section (0 when absent).
pub fn perfdhcp_counter(text: &str, section: &str, key: &str) -> u64 {
    perfdhcp_sections(text)
        .into_iter()
        .find(|(name, _)| name == section)
        .and_then(|(_, values)| values.get(key).copied())
        .unwrap_or(0)
}
