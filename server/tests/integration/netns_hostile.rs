//! Hostile input (needs root): the Debian starvation tools `dhcpstarv` and `dhcpig` against
//! xdhcpd with its starvation defence (`engine::starvation`) leave free addresses for a real
//! client, which still gets a lease during the attack; perfdhcp's avalanche scenario (a mass
//! reconnect) still gets every lease with the defence on; random, truncated and oversized frames
//! sent from a raw socket leave the daemon (with and without XDP) up and answering. Also checks
//! that ISC dhcpd accepts the `option xdhcpd.*` settings (`dhcpd -t`).

use crate::common;
use crate::netns;

use netns::peers::{start_udhcpc, Perfdhcp, Server, ServerKind, ServerSetup};
use netns::{wait_for, DhcpConfig, Lab, Proc};
use std::net::Ipv4Addr;
use std::time::Duration;

const SERVER_CIDR: &str = "10.215.0.1/24";
const POOL_FIRST: u8 = 10;
const POOL_SIZE: u8 = 100;

/// dhcpd.conf for the direct-attached lab: 10.215.0.10–10.215.0.109 with `settings` (lines of
/// `option xdhcpd.…;`) after the definitions.
fn hostile_conf(settings: &str) -> String {
    format!(
        "{}{settings}\nauthoritative;\nddns-update-style none;\nping-check false;\n\
         default-lease-time 600;\nmax-lease-time 600;\n\
         subnet 10.215.0.0 netmask 255.255.255.0 {{\n  range 10.215.0.{POOL_FIRST} 10.215.0.{};\n  \
         option routers 10.215.0.1;\n}}\n",
        xdhcpd::config::xdhcpd::DEFINITIONS,
        u16::from(POOL_FIRST) + u16::from(POOL_SIZE) - 1,
    )
}

fn start(lab: &Lab, kind: ServerKind, conf: String) -> anyhow::Result<Server> {
    ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind,
        config: DhcpConfig::lab_default(),
        interface: lab.server_if.clone(),
        relayed: false,
        dhcpd_conf: Some(conf),
    }
    .start()
}

fn xdhcpd(xdp: bool) -> ServerKind {
    ServerKind::Xdhcpd {
        binary: env!("CARGO_BIN_EXE_xdhcpd").into(),
        xdp,
    }
}

/// Addresses of the pool bound in the lease file right now (last record per address wins).
fn active_addresses(server: &Server) -> anyhow::Result<usize> {
    let records = server.lease_records()?;
    let mut state = std::collections::HashMap::new();
    for record in &records {
        state.insert(record.address, record.binding_state.clone());
    }
    Ok(state
        .values()
        .filter(|binding| binding.as_deref() == Some("active"))
        .count())
}

#[test]
fn isc_dhcpd_accepts_the_xdhcpd_settings() -> anyhow::Result<()> {
    if !std::path::Path::new("/usr/sbin/dhcpd").exists() {
        assert!(
            std::env::var("REQUIRE_PRIVILEGED_TESTS").as_deref() != Ok("1"),
            "ISC dhcpd is not installed"
        );
        eprintln!("SKIPPED isc_dhcpd_accepts_the_xdhcpd_settings: no /usr/sbin/dhcpd");
        return Ok(());
    }
    let dir = netns::TempDir::new("xdh-conf")?;
    let path = dir.join("dhcpd.conf");
    let settings = "option xdhcpd.starvation-defence on;\n\
                    option xdhcpd.new-leases-per-mac 4;\n\
                    option xdhcpd.new-leases-per-mac-window 60;\n\
                    option xdhcpd.new-leases-per-circuit 32;\n\
                    option xdhcpd.new-leases-per-circuit-window 60;\n\
                    option xdhcpd.pool-reserve-percent 20;\n\
                    option xdhcpd.new-leases-per-relay-in-reserve 8;\n\
                    option xdhcpd.new-leases-per-relay-window 60;\n\
                    option xdhcpd.starvation-table-size 10000;\n";
    std::fs::write(&path, hostile_conf(settings))?;
    let output = std::process::Command::new("/usr/sbin/dhcpd")
        .args(["-t", "-4", "-cf"])
        .arg(&path)
        .output()?;
    assert!(
        output.status.success(),
        "dhcpd -t rejected the file:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config = xdhcpd::config::load_file(&path).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert_eq!(config.starvation.reserve_percent, 20);
    assert_eq!(config.starvation.table_size, 10_000);
    Ok(())
}

/// Starts `program args` in the client namespace, logging to the lab dir.
fn attacker(lab: &Lab, name: &str, args: &[&str]) -> anyhow::Result<Proc> {
    let mut command = lab.client.command(args[0]);
    command.args(&args[1..]);
    Proc::spawn(name, command, lab.dir.join(&format!("{name}.log")))
}

#[test]
fn starvation_tools_leave_addresses_for_a_real_client() -> anyhow::Result<()> {
    if !common::privileged("starvation_tools_leave_addresses_for_a_real_client") {
        return Ok(());
    }
    for tool in ["dhcpstarv", "dhcpig"] {
        anyhow::ensure!(
            std::path::Path::new(&format!("/usr/bin/{tool}")).exists()
                || std::path::Path::new(&format!("/usr/sbin/{tool}")).exists(),
            "{tool} is not installed (cargo xtask setup installs it)"
        );
    }
    let lab = Lab::new(SERVER_CIDR)?;
    // A 20 % reserve (20 addresses) and 4 new leases per minute for unknown clients inside it.
    let settings = "option xdhcpd.pool-reserve-percent 20;\n\
                    option xdhcpd.new-leases-per-relay-in-reserve 4;\n";
    let mut server = start(&lab, xdhcpd(false), hostile_conf(settings))?;
    // The real client on its own MAC (a macvlan on the same link as the attackers).
    lab.add_client_macvlan("xl0", "02:15:00:00:00:01")?;
    let mut starv = attacker(&lab, "dhcpstarv", &["dhcpstarv", "-i", &lab.client_if])?;
    let mut pig = attacker(&lab, "dhcpig", &["dhcpig", "-v", "1", &lab.client_if])?;
    // Let the attack eat the unreserved part of the pool (80 addresses).
    let eaten = wait_for(
        "the attack to bind the unreserved part of the pool",
        Duration::from_secs(25),
        || {
            server.proc.check_running()?;
            let active = active_addresses(&server)?;
            Ok((active >= usize::from(POOL_SIZE) * 8 / 10).then_some(active))
        },
    )
    .map_err(|error| {
        error.context(format!(
            "dhcpstarv:\n{}\ndhcpig:\n{}\nserver:\n{}",
            starv.log_text(),
            pig.log_text(),
            server.proc.log_text()
        ))
    })?;
    // The real client joins while the attack goes on.
    let started = netns::now();
    let mut client = start_udhcpc(&lab.client, lab.dir.path(), "xl0", false)?;
    let address = client
        .wait_event(&["bound"], 1, Duration::from_secs(30))
        .map_err(|error| error.context(format!("server:\n{}", server.proc.log_text())))?;
    let latency = netns::now().duration_since(started);
    // Keep attacking a little longer, then look at the pool.
    std::thread::sleep(Duration::from_secs(3));
    server.proc.check_running()?;
    let active = active_addresses(&server)?;
    starv.kill();
    pig.kill();
    let free = usize::from(POOL_SIZE).saturating_sub(active);
    eprintln!(
        "starvation: {eaten} bound when the client started, {active} bound at the end, {free} of \
         {POOL_SIZE} free; real client got {address} after {} ms",
        latency.as_millis()
    );
    assert!((u32::from(Ipv4Addr::new(10, 215, 0, POOL_FIRST))
        ..u32::from(Ipv4Addr::new(10, 215, 0, POOL_FIRST + POOL_SIZE)))
        .contains(&u32::from(address)));
    // The reserve held: the tools got at most the unreserved part plus a few per minute.
    assert!(free >= 10, "only {free} addresses left");
    Ok(())
}

#[test]
fn perfdhcp_avalanche_gets_every_lease_with_the_defence_on() -> anyhow::Result<()> {
    if !common::privileged("perfdhcp_avalanche_gets_every_lease_with_the_defence_on") {
        return Ok(());
    }
    const CLIENTS: u32 = 1000;
    let lab = Lab::new("10.213.0.1/24")?;
    lab.route_relay("10.214.0.1", "10.214.0.0/16", "10.213.0.0/24")?;
    // A pool 10 % larger than the crowd: the last clients arrive while the pool is inside its
    // default 10 % reserve, so the reserve rule is exercised, not bypassed.
    let pool_last = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 214, 1, 0)) + CLIENTS * 11 / 10 - 1);
    let conf = format!(
        "{}authoritative;\nddns-update-style none;\nping-check false;\n\
         default-lease-time 3600;\nmax-lease-time 3600;\n\
         subnet 10.213.0.0 netmask 255.255.255.0 {{ }}\n\
         subnet 10.214.0.0 netmask 255.255.0.0 {{\n  range 10.214.1.0 {pool_last};\n  \
         option routers 10.214.0.1;\n}}\n",
        xdhcpd::config::xdhcpd::DEFINITIONS
    );
    let server = ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind: xdhcpd(false),
        config: DhcpConfig::lab_default(),
        interface: lab.server_if.clone(),
        relayed: true,
        dhcpd_conf: Some(conf),
    }
    .start()?;
    let report = Perfdhcp {
        netns: &lab.client,
        dir: lab.dir.path(),
        local: "10.214.0.1".to_owned(),
        server: Ipv4Addr::new(10, 213, 0, 1),
        rate: None,
        clients: CLIENTS,
        seconds: 40,
        exchanges: None,
        extra: vec!["--scenario".to_owned(), "avalanche".to_owned()],
    }
    .run("perfdhcp-avalanche")?;
    eprintln!("avalanche report:\n{}", report.raw);
    let active = active_addresses(&server)?;
    assert_eq!(
        active as u32,
        CLIENTS,
        "every avalanche client is bound\n{}\nserver:\n{}",
        report.raw,
        server.proc.log_text()
    );
    Ok(())
}

/// The frame generator run in the client namespace: `count` frames from a fixed seed — random
/// bytes, DHCP frames cut at random lengths, frames whose IP/UDP lengths lie, DHCP payloads with
/// overlong options and maximum-size frames — broadcast on `interface`.
const FRAME_GENERATOR: &str = r#"
import random, socket, struct, sys
interface, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261128)
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((interface, 0))
src = bytes([0x02, 0x66, 0, 0, 0, 1])
def checksum(data):
    if len(data) % 2: data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16: total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff
def dhcp(options):
    body = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, rng.getrandbits(32), 0, 0x8000,
        b"\0"*4, b"\0"*4, b"\0"*4, b"\0"*4, bytes([2, 0x66, 1, 2, 3, rng.randrange(256)]) + b"\0"*10,
        b"\0"*64, b"\0"*128)
    return body + b"\x63\x82\x53\x63" + options
def frame(payload, ip_len=None, udp_len=None):
    udp_len = udp_len if udp_len is not None else 8 + len(payload)
    udp = struct.pack("!HHHH", 68, 67, udp_len & 0xffff, 0) + payload
    ip_len = ip_len if ip_len is not None else 20 + len(udp)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len & 0xffff, 0, 0, 64, 17, 0, b"\0"*4, b"\xff"*4)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return b"\xff"*6 + src + b"\x08\x00" + ip + udp
sent = 0
for i in range(count):
    kind = i % 5
    discover = dhcp(b"\x35\x01\x01" + b"\xff")
    if kind == 0:
        data = b"\xff"*6 + src + bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 1500)))
    elif kind == 1:
        data = frame(discover)[: rng.randrange(14, 14 + 28 + len(discover))]
    elif kind == 2:
        data = frame(discover, ip_len=rng.randrange(0, 65536), udp_len=rng.randrange(0, 65536))
    elif kind == 3:
        opts = b"\x35\x01\x01" + bytes([rng.randrange(1, 255), 255]) + bytes(rng.getrandbits(8) for _ in range(40))
        data = frame(dhcp(opts))
    else:
        opts = b"\x35\x01\x01" + bytes(rng.getrandbits(8) for _ in range(1500 - 14 - 28 - 240 - 3))
        data = frame(dhcp(opts))[:1514]
    if len(data) < 14:
        data = data + b"\0" * (14 - len(data))
    try:
        sock.send(data[:1514])
        sent += 1
    except OSError:
        pass
print("sent", sent)
"#;

/// Sends the hostile frames, then checks the daemon is up and a real client still gets a lease;
/// returns the server log.
fn hostile_frames_against(xdp: bool) -> anyhow::Result<String> {
    let lab = Lab::new(SERVER_CIDR)?;
    // The metrics endpoint on the server namespace's own loopback explains the drops.
    let mut server = start(
        &lab,
        xdhcpd(xdp),
        hostile_conf(&format!("option xdhcpd.metrics-listen \"{METRICS}\";")),
    )?;
    if xdp {
        // Generous: the verifier's pass over the program is slow on a loaded 2-core machine
        // while other tests run beside this one.
        wait_for("the XDP program", Duration::from_secs(45), || {
            server.proc.check_running()?;
            let text = lab
                .server
                .exec_ok(&["ip", "link", "show", "dev", &lab.server_if])?;
            Ok(text.contains("xdp").then_some(()))
        })
        .map_err(|error| error.context(format!("server log:\n{}", server.proc.log_text())))?;
    }
    let script = lab.dir.join("frames.py");
    std::fs::write(&script, FRAME_GENERATOR)?;
    let output = netns::run(
        lab.client
            .command("python3")
            .arg(&script)
            .arg(&lab.client_if)
            .arg("5000"),
    )?;
    let sent = String::from_utf8_lossy(&output.stdout).into_owned();
    server.proc.check_running()?;
    let mut client = start_udhcpc(&lab.client, lab.dir.path(), &lab.client_if, false)?;
    client
        .wait_event(&["bound"], 1, Duration::from_secs(30))
        .map_err(|error| error.context(format!("server:\n{}", server.proc.log_text())))?;
    server.proc.check_running()?;
    let scrape = lab.server.scrape_metrics(METRICS)?;
    server.proc.signal("TERM")?;
    let _ = server.proc.wait_exit(Duration::from_secs(10));
    eprintln!("raw frames (xdp: {xdp}): {}", sent.trim());
    // Every frame the daemon saw and did not answer is counted with a reason; with XDP the
    // program's own counters say what it passed up and why.
    let explained: Vec<&str> = scrape
        .lines()
        .filter(|line| {
            !line.starts_with('#')
                && (line.starts_with("xdhcpd_drops_total")
                    || line.starts_with("xdhcpd_datagrams_received_total")
                    || line.starts_with("xdhcpd_socket_drops_total")
                    || line.starts_with("xdhcpd_xdp_frames_total"))
                && !line.ends_with(" 0")
        })
        .collect();
    eprintln!("counters after the frames:\n  {}", explained.join("\n  "));
    let malformed = metric(&scrape, "xdhcpd_drops_total{reason=\"malformed\"}");
    assert!(
        malformed > 0.0,
        "5,000 hostile frames but no malformed drop counted:\n{scrape}"
    );
    if xdp {
        let passed_malformed = scrape
            .lines()
            .filter(|line| {
                line.starts_with("xdhcpd_xdp_frames_total") && line.contains("malformed")
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
        assert!(
            passed_malformed > 0.0,
            "XDP counted no malformed frame:\n{scrape}"
        );
    }
    Ok(server.proc.log_text())
}

/// Where the server namespace's metrics endpoint listens (its own loopback).
const METRICS: &str = "127.0.0.1:9167";

/// The value of the sample `name` (labels included, as printed) in a Prometheus scrape.
fn metric(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn hostile_frames_leave_the_daemon_answering() -> anyhow::Result<()> {
    if !common::privileged("hostile_frames_leave_the_daemon_answering") {
        return Ok(());
    }
    let log = hostile_frames_against(false)?;
    for line in log.lines().filter(|line| {
        line.contains("malformed") || line.contains("dropped") || line.contains("XDP")
    }) {
        eprintln!("  {line}");
    }
    Ok(())
}

#[test]
fn hostile_frames_leave_the_daemon_answering_with_xdp() -> anyhow::Result<()> {
    if !common::privileged("hostile_frames_leave_the_daemon_answering_with_xdp") {
        return Ok(());
    }
    let log = hostile_frames_against(true)?;
    for line in log.lines().filter(|line| {
        line.contains("malformed") || line.contains("passed") || line.contains("XDP")
    }) {
        eprintln!("  {line}");
    }
    Ok(())
}
