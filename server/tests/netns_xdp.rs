//! Tier-2 tests of the XDP fast path (needs root): xdhcpd with its program attached to the
//! server's veth answers dhclient's renewals in the kernel, the lease file keeps the extended
//! expiry across a restart, and `kill -9` leaves no program attached.

mod common;
mod netns;

use netns::leases::records_for;
use netns::peers::{start_dhclient, Server, ServerKind, ServerSetup};
use netns::{wait_for, DhcpConfig, Lab};
use std::time::Duration;

const SERVER_CIDR: &str = "10.213.0.1/24";

fn start_server(lab: &Lab, lease_time: u32) -> anyhow::Result<Server> {
    ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind: ServerKind::Xdhcpd {
            binary: env!("CARGO_BIN_EXE_xdhcpd").into(),
            xdp: true,
        },
        config: DhcpConfig {
            default_lease_time: lease_time,
            max_lease_time: lease_time,
            ..DhcpConfig::lab_default()
        },
        interface: lab.server_if.clone(),
        relayed: false,
        dhcpd_conf: None,
    }
    .start()
}

/// Waits for the program to show on the server's veth (the daemon binds its sockets, which
/// `start` waits for, before it attaches).
fn wait_attached(lab: &Lab, server: &mut Server) -> anyhow::Result<String> {
    wait_for(
        "the XDP program on the veth",
        Duration::from_secs(15),
        || {
            server.proc.check_running()?;
            let text = link(lab)?;
            Ok(text.contains("xdp").then_some(text))
        },
    )
    .map_err(|error| error.context(format!("server log:\n{}", server.proc.log_text())))
}

/// `ip link show` of the server's veth.
fn link(lab: &Lab) -> anyhow::Result<String> {
    lab.server
        .exec_ok(&["ip", "link", "show", "dev", &lab.server_if])
}

/// The number in the server's shutdown line `XDP: N renewals answered in the kernel, …`.
fn kernel_renewals(log: &str) -> Option<u64> {
    log.lines()
        .filter(|line| line.contains("renewals answered in the kernel"))
        .find_map(|line| line.split("XDP: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

#[test]
fn dhclient_renewals_are_answered_in_the_kernel() -> anyhow::Result<()> {
    if !common::privileged("dhclient_renewals_are_answered_in_the_kernel") {
        return Ok(());
    }
    let lab = Lab::new(SERVER_CIDR)?;
    // dhclient renews at T1 = 2 s: the first renewal is answered in userspace and becomes the
    // template, the following ones in the kernel.
    let mut server = start_server(&lab, 4)?;
    wait_attached(&lab, &mut server)?;
    let mac = lab.client_mac(&lab.client_if)?;
    let mut client = start_dhclient(&lab.client, lab.dir.path(), &lab.client_if, true)?;
    let address = client.wait_event(&["BOUND"], 1, Duration::from_secs(30))?;
    // The first renewal (userspace) leaves a record; remember its start.
    client.wait_event(&["RENEW"], 1, Duration::from_secs(30))?;
    let first_renewal = wait_for(
        "the first renewal's record",
        Duration::from_secs(10),
        || {
            let records = server.lease_records()?;
            let starts = records_for(&records, &mac)
                .iter()
                .filter_map(|record| record.starts)
                .max();
            Ok(starts.filter(|_| records_for(&records, &mac).len() >= 2))
        },
    )?;
    let renewed = client
        .wait_event(&["RENEW"], 4, Duration::from_secs(40))
        .map_err(|error| error.context(format!("server log:\n{}", server.proc.log_text())))?;
    assert_eq!(renewed, address, "renewals keep the address");
    // Every renewal was answered: the client never fell back to DISCOVER (a kernel reply that
    // does not reach the client shows as a lease running out and a new DORA).
    let bound = client
        .events()
        .iter()
        .filter(|event| event.event == "BOUND")
        .count();
    assert_eq!(
        bound,
        1,
        "the client had to start over: {:?}",
        client.events()
    );
    client.proc.kill();
    server.proc.signal("TERM")?;
    server.proc.wait_exit(Duration::from_secs(20))?;
    let log = server.proc.log_text();
    let in_kernel = kernel_renewals(&log).unwrap_or(0);
    let attach_line = log
        .lines()
        .filter(|line| line.contains("XDP attached") || line.contains("answered in the kernel"))
        .collect::<Vec<_>>()
        .join(" / ");
    // Visible with --nocapture: the numbers for the report.
    eprintln!("netns_xdp: {in_kernel} renewals answered in the kernel; {attach_line}");
    assert!(
        in_kernel >= 2,
        "expected renewals answered in the kernel, got {in_kernel}; log:\n{log}"
    );

    // Restart: the lease file read back (and rewritten) has the kernel renewals: a start at
    // least one renewal period (2 s) after the userspace renewal, and an end at least one lease
    // time after that start (the horizon record).
    let mut server = start_server(&lab, 4)?;
    let records = server.lease_records()?;
    let mine = records_for(&records, &mac);
    let last = mine
        .last()
        .ok_or_else(|| anyhow::anyhow!("no record for {mac} after restart"))?;
    let starts = last.starts.unwrap_or(0);
    let ends = last.ends.unwrap_or(0);
    assert!(
        starts >= first_renewal + 2 && ends >= starts + 4,
        "lease file after restart lacks the kernel renewals (first userspace renewal started at \
         {first_renewal}): {mine:?}"
    );
    server.proc.check_running()?;
    Ok(())
}

#[test]
fn kill_9_leaves_no_program_attached() -> anyhow::Result<()> {
    if !common::privileged("kill_9_leaves_no_program_attached") {
        return Ok(());
    }
    let lab = Lab::new(SERVER_CIDR)?;
    let mut server = start_server(&lab, 600)?;
    wait_attached(&lab, &mut server)?;
    server.proc.kill();
    let detached = wait_for("the XDP link to go", Duration::from_secs(10), || {
        let text = link(&lab)?;
        Ok((!text.contains("xdp")).then_some(text))
    })?;
    assert!(!detached.contains("xdp"));
    Ok(())
}
