//! Tier-3 conformance (needs root): real DHCP clients — ISC dhclient, busybox udhcpc, dhcpcd —
//! get a lease from the server under test in a private network namespace and renew it; a
//! reserved MAC gets its fixed address.

use crate::common;
use crate::netns;

use netns::leases::records_for;
use netns::peers::{start_dhclient, start_dhcpcd, start_udhcpc, Server, ServerSetup};
use netns::{wait_for, DhcpConfig, Host, Lab};
use std::net::Ipv4Addr;
use std::time::Duration;

const SERVER_CIDR: &str = "10.213.0.1/24";

fn start_server(lab: &Lab, config: DhcpConfig) -> anyhow::Result<Server> {
    ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind: common::server_under_test(),
        config,
        interface: lab.server_if.clone(),
        relayed: false,
        dhcpd_conf: None,
    }
    .start()
}

/// Waits until the server's lease file holds at least `count` records for `mac`, each for
/// `address`, with strictly increasing `starts` from the first to the last.
fn wait_for_records(
    server: &mut Server,
    mac: &str,
    address: Ipv4Addr,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<usize> {
    let result = wait_for(&format!("{count} lease records for {mac}"), timeout, || {
        server.proc.check_running()?;
        let records = server.lease_records()?;
        let mine = records_for(&records, mac);
        let ok = mine.len() >= count
            && mine.iter().all(|record| record.address == address)
            && mine.first().and_then(|first| first.starts)
                < mine.last().and_then(|last| last.starts);
        Ok((ok || (count == 1 && !mine.is_empty())).then_some(mine.len()))
    });
    result.map_err(|error| {
        let text = std::fs::read_to_string(&server.lease_file).unwrap_or_default();
        error.context(format!(
            "lease file:\n{text}\nserver log:\n{}",
            server.proc.log_text()
        ))
    })
}

/// Lease time short enough that a client renews within the test.
fn short_lease_config(seconds: u32) -> DhcpConfig {
    DhcpConfig {
        default_lease_time: seconds,
        max_lease_time: seconds,
        ..DhcpConfig::lab_default()
    }
}

#[test]
fn dhclient_gets_a_lease_and_renews_it() -> anyhow::Result<()> {
    if !common::privileged("dhclient_gets_a_lease_and_renews_it") {
        return Ok(());
    }
    let lab = Lab::new(SERVER_CIDR)?;
    // dhclient renews at T1 = half the lease; 4 s keeps the test short.
    let mut server = start_server(&lab, short_lease_config(4))?;
    let mac = lab.client_mac(&lab.client_if)?;
    let mut client = start_dhclient(&lab.client, lab.dir.path(), &lab.client_if, true)?;
    let address = client.wait_event(&["BOUND"], 1, Duration::from_secs(30))?;
    assert!(DhcpConfig::lab_default().subnets[0].contains(address));
    wait_for_records(&mut server, &mac, address, 1, Duration::from_secs(10))?;
    let renewed = client.wait_event(&["RENEW"], 1, Duration::from_secs(30))?;
    assert_eq!(renewed, address, "the renewal keeps the address");
    wait_for_records(&mut server, &mac, address, 2, Duration::from_secs(10))?;
    Ok(())
}

#[test]
fn udhcpc_gets_a_lease_and_renews_it() -> anyhow::Result<()> {
    if !common::privileged("udhcpc_gets_a_lease_and_renews_it") {
        return Ok(());
    }
    let lab = Lab::new(SERVER_CIDR)?;
    let mut server = start_server(&lab, short_lease_config(8))?;
    let mac = lab.client_mac(&lab.client_if)?;
    let mut client = start_udhcpc(&lab.client, lab.dir.path(), &lab.client_if, false)?;
    let address = client.wait_event(&["bound"], 1, Duration::from_secs(30))?;
    assert!(DhcpConfig::lab_default().subnets[0].contains(address));
    let first = wait_for_records(&mut server, &mac, address, 1, Duration::from_secs(10))?;
    assert_eq!(first, 1);
    // busybox never renews before 61 s (it raises short leases to 122 s), so ask for the
    // renewal with SIGUSR1 (udhcpc(8)). Wait until the lease is a few seconds old first: a
    // server may answer a renewal within the same second from its cache without a new record
    // (ISC's cache-threshold), and `starts` must move.
    let born = netns::now();
    wait_for("the lease to age 3 s", Duration::from_secs(5), || {
        Ok((netns::now().duration_since(born) >= Duration::from_secs(3)).then_some(()))
    })?;
    client.proc.signal("USR1")?;
    let renewed = client.wait_event(&["renew"], 1, Duration::from_secs(20))?;
    assert_eq!(renewed, address, "the renewal keeps the address");
    wait_for_records(&mut server, &mac, address, 2, Duration::from_secs(10))?;
    Ok(())
}

#[test]
fn dhcpcd_gets_a_lease_and_renews_it() -> anyhow::Result<()> {
    if !common::privileged("dhcpcd_gets_a_lease_and_renews_it") {
        return Ok(());
    }
    let lab = Lab::new(SERVER_CIDR)?;
    // dhcpcd raises leases shorter than 20 s to 20 s; it renews at T1 = 10 s.
    let mut server = start_server(&lab, short_lease_config(20))?;
    let mac = lab.client_mac(&lab.client_if)?;
    let mut client = start_dhcpcd(&lab.client, lab.dir.path(), &lab.client_if)?;
    let address = client.wait_event(&["BOUND"], 1, Duration::from_secs(30))?;
    assert!(DhcpConfig::lab_default().subnets[0].contains(address));
    wait_for_records(&mut server, &mac, address, 1, Duration::from_secs(10))?;
    let renewed = client.wait_event(&["RENEW"], 1, Duration::from_secs(30))?;
    assert_eq!(renewed, address, "the renewal keeps the address");
    wait_for_records(&mut server, &mac, address, 2, Duration::from_secs(10))?;
    Ok(())
}

#[test]
fn reserved_mac_gets_its_fixed_address() -> anyhow::Result<()> {
    if !common::privileged("reserved_mac_gets_its_fixed_address") {
        return Ok(());
    }
    let lab = Lab::new(SERVER_CIDR)?;
    let mac = "02:00:0a:d5:00:2a";
    let fixed = Ipv4Addr::new(10, 213, 0, 42);
    lab.set_client_mac(mac)?;
    let config = DhcpConfig {
        hosts: vec![Host {
            name: "reserved".to_owned(),
            mac: mac.to_owned(),
            address: fixed,
        }],
        ..DhcpConfig::lab_default()
    };
    let _server = start_server(&lab, config)?;
    let mut client = start_dhclient(&lab.client, lab.dir.path(), &lab.client_if, true)?;
    let address = client.wait_event(&["BOUND"], 1, Duration::from_secs(30))?;
    assert_eq!(
        address, fixed,
        "a host with fixed-address gets that address"
    );
    Ok(())
}
