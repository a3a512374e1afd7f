//! `ping-check` on the real path (needs root): a host in the client namespace already uses the
//! first pool address (the kernel there answers pings to it). With `ping-check true;` the
//! server's ICMP echo request is answered, the address is abandoned (`binding state abandoned`
//! in the lease file, ISC "Abandoning IP address …: pinged before offer") and busybox udhcpc,
//! retransmitting its DISCOVER, gets the next address; with `ping-check false;` it gets the
//! first one. The same scenario runs against ISC dhcpd 4.4 as an oracle when it is installed.

use crate::common;
use crate::netns;

use anyhow::{ensure, Context as _, Result};
use netns::peers::{start_udhcpc, Server, ServerKind, ServerSetup};
use netns::{wait_for, DhcpConfig, Lab, Subnet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

/// Its own subnet, apart from the other netns tests' (10.213–10.215).
const SERVER_CIDR: &str = "10.217.0.1/24";
const FIRST: Ipv4Addr = Ipv4Addr::new(10, 217, 0, 100);
const SECOND: Ipv4Addr = Ipv4Addr::new(10, 217, 0, 101);
/// The squatter: a macvlan of its own in the client namespace, with its own MAC.
const SQUATTER_IF: &str = "xsq0";
const SQUATTER_MAC: &str = "02:00:00:00:5a:01";
/// Where the server namespace's metrics endpoint listens (its own loopback).
const METRICS: &str = "127.0.0.1:9168";
/// udhcpc retransmits every second; the first DISCOVER is dropped by the answered probe, the
/// second waits for its probe's 1 s timeout.
const LEASE_TIMEOUT: Duration = Duration::from_secs(30);
const ISC_DHCPD: &str = "/usr/sbin/dhcpd";

fn config() -> DhcpConfig {
    DhcpConfig {
        subnets: vec![Subnet {
            network: Ipv4Addr::new(10, 217, 0, 0),
            prefix_len: 24,
            range: Some((FIRST, Ipv4Addr::new(10, 217, 0, 119))),
            routers: Some(Ipv4Addr::new(10, 217, 0, 1)),
        }],
        dns_servers: vec![Ipv4Addr::new(10, 217, 0, 1)],
        ..DhcpConfig::lab_default()
    }
}

/// The harness's dhcpd.conf (which says `ping-check false;`) with ping-check as asked, plus
/// the metrics endpoint for xdhcpd.
fn dhcpd_conf(kind: &ServerKind, ping_check: bool) -> String {
    let base = config()
        .to_dhcpd_conf()
        .replace("ping-check false;", &format!("ping-check {ping_check};"));
    assert!(base.contains(&format!("ping-check {ping_check};")));
    match kind {
        ServerKind::Xdhcpd { .. } => format!(
            "{}option xdhcpd.metrics-listen \"{METRICS}\";\n{base}",
            xdhcpd::config::xdhcpd::DEFINITIONS
        ),
        _ => base,
    }
}

fn start_server(lab: &Lab, kind: &ServerKind, ping_check: bool) -> Result<Server> {
    ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind: kind.clone(),
        config: config(),
        interface: lab.server_if.clone(),
        relayed: false,
        dhcpd_conf: Some(dhcpd_conf(kind, ping_check)),
    }
    .start()
}

/// A lab whose client namespace has a host on the first pool address, reachable from the
/// server (checked with a ping from the server namespace).
fn lab_with_squatter() -> Result<Lab> {
    let lab = Lab::new(SERVER_CIDR)?;
    lab.add_client_macvlan(SQUATTER_IF, SQUATTER_MAC)?;
    lab.client
        .ip(&["addr", "add", &format!("{FIRST}/24"), "dev", SQUATTER_IF])?;
    lab.server
        .exec_ok(&["busybox", "ping", "-c", "1", "-W", "2", &FIRST.to_string()])
        .context("the squatter answers pings")?;
    Ok(lab)
}

/// udhcpc on the client's veth end until it has a lease; the address it got.
fn lease_of_udhcpc(lab: &Lab) -> Result<Ipv4Addr> {
    let mut client = start_udhcpc(&lab.client, lab.dir.path(), &lab.client_if, true)?;
    client.wait_event(&["bound"], 1, LEASE_TIMEOUT)
}

/// The binding state the lease file gives `address`, once it has a record for it.
fn wait_for_state(server: &Server, address: Ipv4Addr, state: &str) -> Result<()> {
    wait_for(
        &format!("{address} {state} in the lease file"),
        Duration::from_secs(10),
        || {
            Ok(server
                .lease_records()?
                .iter()
                .rev()
                .find(|record| record.address == address)
                .is_some_and(|record| record.binding_state.as_deref() == Some(state))
                .then_some(()))
        },
    )
    .with_context(|| {
        format!(
            "lease file:\n{}\nserver log:\n{}",
            std::fs::read_to_string(&server.lease_file).unwrap_or_default(),
            server.proc.log_text()
        )
    })
}

/// The pinged address is abandoned and the client gets the next one.
fn address_in_use_is_abandoned(kind: &ServerKind) -> Result<()> {
    let lab = lab_with_squatter()?;
    let server = start_server(&lab, kind, true)?;
    let address = lease_of_udhcpc(&lab)?;
    ensure!(
        address == SECOND,
        "{}: got {address}, expected {SECOND} (the first is in use)\n{}",
        kind.label(),
        server.proc.log_text()
    );
    wait_for_state(&server, FIRST, "abandoned")?;
    wait_for_state(&server, SECOND, "active")?;
    let log = server.proc.log_text();
    ensure!(
        log.contains(&format!(
            "Abandoning IP address {FIRST}: pinged before offer"
        )),
        "{}: no abandonment logged:\n{log}",
        kind.label()
    );
    if let ServerKind::Xdhcpd { .. } = kind {
        let metric = |result: &str| {
            lab.server.metric(
                METRICS,
                &format!("xdhcpd_ping_checks_total{{result=\"{result}\"}}"),
            )
        };
        ensure!(metric("answered")? == 1, "one probe answered");
        ensure!(
            metric("timed_out")? >= 1,
            "the second address's probe timed out"
        );
        ensure!(metric("sent")? >= 2, "two probes at least");
    }
    Ok(())
}

/// Without ping-check the first address is offered whoever uses it.
fn no_probe_without_ping_check(kind: &ServerKind) -> Result<()> {
    let lab = lab_with_squatter()?;
    let server = start_server(&lab, kind, false)?;
    let address = lease_of_udhcpc(&lab)?;
    ensure!(
        address == FIRST,
        "{}: got {address}, expected {FIRST} (ping-check false)\n{}",
        kind.label(),
        server.proc.log_text()
    );
    wait_for_state(&server, FIRST, "active")?;
    if let ServerKind::Xdhcpd { .. } = kind {
        let sent = lab
            .server
            .metric(METRICS, "xdhcpd_ping_checks_total{result=\"sent\"}")?;
        ensure!(sent == 0, "no probe with ping-check false");
    }
    Ok(())
}

fn xdhcpd() -> ServerKind {
    ServerKind::Xdhcpd {
        binary: env!("CARGO_BIN_EXE_xdhcpd").into(),
        xdp: false,
    }
}

#[test]
fn address_in_use_is_abandoned_and_the_client_gets_another() -> Result<()> {
    if !common::privileged("address_in_use_is_abandoned_and_the_client_gets_another") {
        return Ok(());
    }
    address_in_use_is_abandoned(&xdhcpd())
}

#[test]
fn ping_check_false_offers_the_address_in_use() -> Result<()> {
    if !common::privileged("ping_check_false_offers_the_address_in_use") {
        return Ok(());
    }
    no_probe_without_ping_check(&xdhcpd())
}

/// The oracle: ISC dhcpd 4.4 in the same scenarios (skipped when it is not installed).
#[test]
fn isc_dhcpd_abandons_the_address_in_use_too() -> Result<()> {
    if !common::privileged("isc_dhcpd_abandons_the_address_in_use_too") {
        return Ok(());
    }
    if !Path::new(ISC_DHCPD).exists() {
        eprintln!("SKIPPED isc_dhcpd_abandons_the_address_in_use_too: {ISC_DHCPD} not installed");
        return Ok(());
    }
    address_in_use_is_abandoned(&ServerKind::IscDhcpd)?;
    no_probe_without_ping_check(&ServerKind::IscDhcpd)
}
