//! Tier-3 tests with Kea's perfdhcp (needs root): a relayed exchange lands in the giaddr's
//! subnet, 2,000 DORA/s offered for 10 s with every request that reached the server answered,
//! and no ACKed lease is lost when the server is
//! killed with SIGKILL mid-run.

use crate::common;
use crate::netns;

use netns::peers::{Capture, Perfdhcp, Server, ServerSetup};
use netns::{DhcpConfig, Lab, Subnet};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

const SERVER_CIDR: &str = "10.213.0.1/24";
const SERVER_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 1);
/// perfdhcp's relay address (its giaddr), in the relayed subnet below.
const RELAY_ADDRESS: &str = "10.214.0.1";

/// The two load tests take turns: on a 2-core machine, running them side by side would measure
/// each other.
static LOAD: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(crate) fn load_turn() -> std::sync::MutexGuard<'static, ()> {
    LOAD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The server's own subnet (no pool: directly attached clients get nothing) plus a relayed
/// 10.214.0.0/16 with `pool_size` addresses from 10.214.1.0.
pub(crate) fn relayed_config(pool_size: u32) -> DhcpConfig {
    let first = Ipv4Addr::new(10, 214, 1, 0);
    let last = Ipv4Addr::from(u32::from(first) + pool_size - 1);
    DhcpConfig {
        subnets: vec![
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
        default_lease_time: 3600,
        max_lease_time: 7200,
        ..DhcpConfig::lab_default()
    }
}

pub(crate) fn relayed_lab() -> anyhow::Result<Lab> {
    let lab = Lab::new(SERVER_CIDR)?;
    lab.route_relay(RELAY_ADDRESS, "10.214.0.0/16", "10.213.0.0/24")?;
    Ok(lab)
}

pub(crate) fn setup<'a>(lab: &'a Lab, config: DhcpConfig) -> ServerSetup<'a> {
    ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind: common::server_under_test(),
        config,
        interface: lab.server_if.clone(),
        relayed: true,
        dhcpd_conf: None,
    }
}

pub(crate) fn perfdhcp(lab: &Lab) -> Perfdhcp<'_> {
    Perfdhcp {
        netns: &lab.client,
        dir: lab.dir.path(),
        local: RELAY_ADDRESS.to_owned(),
        server: SERVER_ADDRESS,
        rate: None,
        clients: 1,
        seconds: 10,
        exchanges: None,
        extra: Vec::new(),
    }
}

#[test]
fn relayed_request_gets_an_address_from_the_giaddr_subnet() -> anyhow::Result<()> {
    if !common::privileged("relayed_request_gets_an_address_from_the_giaddr_subnet") {
        return Ok(());
    }
    let lab = relayed_lab()?;
    let config = relayed_config(100);
    let relayed_subnet = config.subnets[1].clone();
    let server = setup(&lab, config).start()?;
    let capture = Capture::start(&lab)?;
    let report = Perfdhcp {
        clients: 10,
        exchanges: Some(10),
        rate: Some(100),
        ..perfdhcp(&lab)
    }
    .run("perfdhcp-relay")?;
    assert!(
        report.ack_received >= 1,
        "no ACK through the relay:\n{}\nserver log:\n{}",
        report.raw,
        server.proc.log_text()
    );
    let acks = capture.finish()?;
    assert!(!acks.is_empty(), "tshark saw no DHCPACK");
    for (mac, address) in &acks {
        assert!(
            relayed_subnet.contains(*address),
            "{mac} got {address}, outside the giaddr's subnet"
        );
    }
    Ok(())
}

#[test]
fn perfdhcp_2000_dora_per_second_every_received_request_is_answered() -> anyhow::Result<()> {
    if !common::privileged("perfdhcp_2000_dora_per_second_every_received_request_is_answered") {
        return Ok(());
    }
    let _turn = load_turn();
    let lab = relayed_lab()?;
    let server = setup(&lab, relayed_config(60_000)).start()?;
    let report = Perfdhcp {
        rate: Some(2000),
        clients: 20_000,
        seconds: 10,
        ..perfdhcp(&lab)
    }
    .run("perfdhcp-2000")?;
    // The generator's own UDP counters: when perfdhcp is starved of CPU (a loaded 2-core box),
    // replies pile up in its 208 KiB socket buffer and the kernel drops them there
    // (`RcvbufErrors`); printed so that such a failure is not mistaken for the server's.
    let generator_udp = lab
        .client
        .exec_ok(&["cat", "/proc/net/snmp"])
        .map(|text| {
            text.lines()
                .filter(|line| line.starts_with("Udp:"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let server_udp = lab
        .server
        .exec_ok(&["cat", "/proc/net/snmp"])
        .map(|text| {
            text.lines()
                .filter(|line| line.starts_with("Udp:"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let context = format!(
        "{}\ngenerator namespace UDP counters:\n{generator_udp}\nserver namespace UDP \
         counters:\n{server_udp}\nserver log tail:\n{}",
        report.raw,
        tail(&server, 20)
    );
    assert!(report.discover_sent >= 15_000, "too few sent: {context}");
    // The server must answer every request it received. A drop is allowed only where a socket
    // buffer overflowed for want of CPU (a loaded 2-core machine: perfdhcp, the server and
    // builds share the cores): the generator's own socket (a reply the server did send) or the
    // server's (a request it never saw), each counted by the kernel as `RcvbufErrors` in its
    // namespace, which holds no other UDP receiver. A quiet machine shows 0 everywhere. How
    // fast the server is, is the benchmarks' business (`cargo xtask bench dora`), not a test's.
    let generator_overflow = udp_counter(&generator_udp, "RcvbufErrors");
    let server_overflow = udp_counter(&server_udp, "RcvbufErrors");
    // perfdhcp's "orphans": replies that arrived after it had counted their exchange as
    // dropped (answered, late: CPU starvation again).
    let late = report.orphans;
    let unanswered = report.total_drops();
    assert!(
        unanswered <= generator_overflow + server_overflow + late,
        "{unanswered} drops, only {generator_overflow} + {server_overflow} explained by socket \
         overflows and {late} by late replies: {context}"
    );
    if unanswered > 0 {
        eprintln!(
            "note: {unanswered} exchanges lost to socket overflows (generator {generator_overflow}, \
             server {server_overflow}); the server answered every request it read"
        );
    }
    Ok(())
}

#[test]
fn no_acked_lease_is_lost_on_sigkill() -> anyhow::Result<()> {
    if !common::privileged("no_acked_lease_is_lost_on_sigkill") {
        return Ok(());
    }
    let kind = common::server_under_test();
    if !kind.writes_dhcpd_leases() {
        // Kea's CSV would need its own reader; this property is about dhcpd.leases.
        return Ok(());
    }
    let _turn = load_turn();
    let lab = relayed_lab()?;
    let setup = setup(&lab, relayed_config(60_000));
    let mut server = setup.start()?;
    let capture = Capture::start(&lab)?;
    let mut load = Perfdhcp {
        clients: 50_000,
        seconds: 6,
        ..perfdhcp(&lab)
    }
    .spawn("perfdhcp-flood")?;
    // Kill once the server has committed a good number of leases, so the log is mid-write.
    let lease_file = server.lease_file.clone();
    netns::wait_for("1,000 lease records", Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&lease_file)?;
        Ok((text.matches("\nlease ").count() >= 1000).then_some(()))
    })?;
    server.proc.signal("KILL")?;
    server.proc.wait_exit(Duration::from_secs(10))?;
    load.wait_exit(Duration::from_secs(30))?;
    let acks = capture.finish()?;
    // The kill lands when 1,000 records are on disk, but the ACKs of the last batch are sent only
    // after its fsync and the capture itself can miss frames on a loaded machine (CI saw 994), so
    // the sample is checked for being large enough to mean something, not for an exact count.
    assert!(acks.len() >= 500, "only {} ACKs captured", acks.len());

    let restarted: Server = setup.start()?;
    let records = restarted.lease_records()?;
    let current: HashMap<Ipv4Addr, &netns::LeaseRecord> = records
        .iter()
        .map(|record| (record.address, record))
        .collect();
    let mut checked = 0;
    for (mac, address) in &acks {
        let record = current
            .get(address)
            .unwrap_or_else(|| panic!("ACKed {address} to {mac} is not in the lease file"));
        assert_eq!(
            record.mac.as_deref(),
            Some(mac.as_str()),
            "ACKed {address} to {mac}, the lease file says {record:?}"
        );
        assert_eq!(
            record.binding_state.as_deref(),
            Some("active"),
            "{record:?}"
        );
        checked += 1;
    }
    let _ = std::io::Write::write_fmt(
        &mut std::io::stderr(),
        format_args!(
            "durability: {checked} ACKed leases checked against the restarted lease file\n"
        ),
    );
    Ok(())
}

/// One column of the `Udp:` lines of /proc/net/snmp (a header line, then a value line).
fn udp_counter(snmp_udp: &str, name: &str) -> u64 {
    let mut lines = snmp_udp.lines();
    let (Some(header), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    header
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(column, _)| *column == name)
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

fn tail(server: &Server, lines: usize) -> String {
    let text = server.proc.log_text();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
