//! Several xdhcpd servers on one PostgreSQL lease database under load (issue 16's proofs;
//! DESIGN.md "Leases in PostgreSQL"), through a relay: perfdhcp in each lab's client namespace
//! is the relay (giaddr = its `-l` address), every server's namespace reaches the private
//! PostgreSQL through its Unix socket.
//!
//! - Three servers, one perfdhcp each (clients with MACs of their own per server), the first
//!   server killed with SIGKILL mid-run and started again: every ACK the captures saw is an
//!   active row of `leases` with that client's hardware address, no address was ACKed to two
//!   clients, and the survivors ACKed while the first was down.
//! - The database stopped (`pg_ctl stop -m immediate`) under load: no new lease is ACKed
//!   while it is away (no ACK without a commit), `xdhcpd_lease_database_up` drops to 0 and the
//!   log says so; DISCOVERs are still answered with OFFERs (an offer promises nothing and
//!   writes nothing); once it is back (`pg_ctl start`) the gauge is 1 and ACKs resume; every
//!   ACKed lease is a row afterwards.
//!
//! Needs root, perfdhcp, dumpcap/tshark and Debian's `postgresql` (skipped with a printed line
//! otherwise): `cargo test -p server --test integration netns_pg_servers:: -- --nocapture`.

#![expect(
    clippy::disallowed_methods,
    reason = "compares the captures' wall-clock times with the database's outage"
)]

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context as _, Result};

use crate::common;
use crate::netns::peers::{Capture, Perfdhcp, SERVER_READY_TIMEOUT};
use crate::netns::{self, wait_for, Lab, Proc};
use crate::netns_perfdhcp::{load_turn, perfdhcp, relayed_config, relayed_lab};
use crate::pg::PgServer;

/// Each server's metrics endpoint, inside its own namespace.
const METRICS: &str = "127.0.0.1:9167";
/// The engine's ACK decisions; those whose commit failed were dropped, not sent.
const ACKS: &str = "xdhcpd_packets_sent_total{type=\"ack\"}";
const COMMIT_FAILED: &str = "xdhcpd_drops_total{reason=\"commit_failed\"}";
const OFFERS: &str = "xdhcpd_packets_sent_total{type=\"offer\"}";
const DATABASE_UP: &str = "xdhcpd_lease_database_up";

/// The libpq URL of `database` through its Unix socket (reachable from any namespace).
fn socket_url(database: &PgServer) -> String {
    format!(
        "host={} port={} user=postgres dbname=postgres",
        database.root().join("socket").display(),
        database.port()
    )
}

/// One xdhcpd (no XDP) in `lab`'s server namespace, named `name` in the database, with the
/// lease database and a metrics endpoint; waits until it bound port 67.
fn start_server(lab: &Lab, name: &str, database_url: &str) -> Result<Proc> {
    let netns::peers::ServerKind::Xdhcpd { binary, .. } = common::server_under_test() else {
        anyhow::bail!("xdhcpd only");
    };
    let mut text = relayed_config(60_000).to_dhcpd_conf();
    text.push_str(&format!(
        "option space xdhcpd;\noption xdhcpd.lease-database code 15 = text;\n\
         option xdhcpd.lease-database \"{database_url}\";\n"
    ));
    let config = lab.dir.join("dhcpd.conf");
    std::fs::write(&config, text)?;
    let leases = lab.dir.join("server.leases");
    std::fs::write(&leases, "")?;
    let mut command = lab.server.command(&binary.to_string_lossy());
    command
        .args(["-f", "-d", "-cf"])
        .arg(&config)
        .arg("-lf")
        .arg(&leases)
        .args([
            "--no-xdp",
            "--server-name",
            name,
            "--metrics-listen",
            METRICS,
        ])
        .arg(&lab.server_if);
    let mut proc = Proc::spawn(name, command, lab.dir.join(&format!("{name}.log")))?;
    wait_for(
        &format!("{name} to bind UDP port 67"),
        SERVER_READY_TIMEOUT,
        || {
            proc.check_running()?;
            Ok(lab.server.udp_bound(67)?.then_some(()))
        },
    )
    .with_context(|| format!("{name}'s log:\n{}", proc.log_text()))?;
    Ok(proc)
}

/// A sample of the server's metrics, 0 while the endpoint does not answer.
fn metric(lab: &Lab, name: &str) -> u64 {
    lab.server.metric(METRICS, name).unwrap_or(0)
}

/// ACKs that left: the engine's ACK decisions but those dropped for a failed commit.
fn acks_sent(lab: &Lab) -> u64 {
    metric(lab, ACKS).saturating_sub(metric(lab, COMMIT_FAILED))
}

/// perfdhcp as the relay of `lab`, its clients' MACs starting with `02:<site>:…`.
fn load(lab: &Lab, site: u8, rate: u32, clients: u32, seconds: u32) -> Result<Proc> {
    Perfdhcp {
        rate: Some(rate),
        clients,
        seconds,
        extra: vec!["-b".into(), format!("mac=02:{site:02x}:5e:00:00:00")],
        ..perfdhcp(lab)
    }
    .spawn(&format!("perfdhcp-{site}"))
}

/// One DHCPACK a capture saw: when (Unix seconds), to which hardware address, which address.
struct Ack {
    at: f64,
    mac: String,
    address: Ipv4Addr,
}

/// Stops `capture` and decodes its DHCPACKs with their times.
fn acks(mut capture: Capture) -> Result<Vec<Ack>> {
    capture.proc.signal("INT")?;
    capture.proc.wait_exit(Duration::from_secs(20))?;
    let output = netns::run(
        Command::new("/usr/bin/tshark")
            .args(["-n", "-r"])
            .arg(&capture.file)
            .args(["-Y", "dhcp.option.dhcp == 5", "-T", "fields"])
            .args(["-e", "frame.time_epoch", "-e", "dhcp.hw.mac_addr"])
            .args(["-e", "dhcp.ip.your"]),
    )?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            Some(Ack {
                at: fields.next()?.trim().parse().ok()?,
                mac: fields.next()?.trim().to_ascii_lowercase(),
                address: fields.next()?.trim().parse().ok()?,
            })
        })
        .collect())
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// address → (state, hardware as aa:bb:…) of every row of `leases`.
fn lease_rows(url: &str) -> HashMap<Ipv4Addr, (String, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = xdhcpd::history::writer::connect(url).await.unwrap();
        client
            .query("SELECT host(address), state, hardware FROM leases", &[])
            .await
            .unwrap()
            .iter()
            .map(|row| {
                let address: String = row.get(0);
                let hardware: Option<Vec<u8>> = row.get(2);
                let mac = hardware
                    .unwrap_or_default()
                    .iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect::<Vec<_>>()
                    .join(":");
                (address.parse().unwrap(), (row.get(1), mac))
            })
            .collect()
    })
}

/// Every client's last ACK is an active row with its hardware address, and no address was
/// ACKed to two clients; returns how many clients were checked.
fn every_ack_is_a_row(acks: &[Ack], rows: &HashMap<Ipv4Addr, (String, String)>) -> Result<usize> {
    let mut holders: HashMap<Ipv4Addr, HashSet<&str>> = HashMap::new();
    let mut last: HashMap<&str, Ipv4Addr> = HashMap::new();
    for ack in acks {
        holders.entry(ack.address).or_default().insert(&ack.mac);
        last.insert(&ack.mac, ack.address);
    }
    for (address, macs) in &holders {
        ensure!(macs.len() == 1, "{address} ACKed to {macs:?}");
    }
    for (mac, address) in &last {
        let row = rows.get(address);
        ensure!(
            row.is_some_and(|(state, hardware)| state == "active" && hardware == mac),
            "{mac} was ACKed {address}; the database has {row:?}"
        );
    }
    Ok(last.len())
}

#[test]
fn three_servers_one_database_through_a_sigkill() -> Result<()> {
    if !common::privileged("three_servers_one_database_through_a_sigkill") {
        return Ok(());
    }
    let port = 29_900 + (std::process::id() % 40) as u16;
    let Some(database) = PgServer::start("netns_pg_three", port) else {
        return Ok(());
    };
    let _turn = load_turn();
    let url = socket_url(&database);
    let labs: Vec<Lab> = (0..3).map(|_| relayed_lab()).collect::<Result<_>>()?;
    let names = ["pg-a", "pg-b", "pg-c"];
    let mut servers: Vec<Proc> = labs
        .iter()
        .zip(names)
        .map(|(lab, name)| start_server(lab, name, &url))
        .collect::<Result<_>>()?;
    let captures: Vec<Capture> = labs.iter().map(Capture::start).collect::<Result<_>>()?;
    // 150 DORA/s per server, 3,000 clients each: small enough for CI's 2 cores. The loads are
    // stopped once the restarted server has ACKed (60 s only bounds a hung run): a fixed
    // duration ran out before a slow restart under CI's parallel tests.
    let mut loads: Vec<Proc> = labs
        .iter()
        .zip(1u8..)
        .map(|(lab, site)| load(lab, site, 150, 3_000, 60))
        .collect::<Result<_>>()?;
    wait_for(
        "100 ACKs from the first server",
        Duration::from_secs(20),
        || Ok((acks_sent(&labs[0]) >= 100).then_some(())),
    )?;
    let before: Vec<u64> = labs[1..].iter().map(acks_sent).collect();
    servers[0].signal("KILL")?;
    servers[0].wait_exit(Duration::from_secs(10))?;
    // The survivors keep ACKing while the first is down.
    for (lab, before) in labs[1..].iter().zip(&before) {
        wait_for("a survivor's ACKs", Duration::from_secs(10), || {
            Ok((acks_sent(lab) >= before + 50).then_some(()))
        })?;
    }
    servers[0] = start_server(&labs[0], names[0], &url)?;
    wait_for(
        "ACKs from the restarted server",
        Duration::from_secs(30),
        || Ok((acks_sent(&labs[0]) >= 50).then_some(())),
    )?;
    for load in &mut loads {
        load.signal("INT")?;
        load.wait_exit(Duration::from_secs(20))?;
    }
    let mut all = Vec::new();
    for (capture, lab) in captures.into_iter().zip(&labs) {
        let seen = acks(capture)?;
        ensure!(!seen.is_empty(), "no ACK captured in {}", lab.tag);
        all.extend(seen);
    }
    drop(servers);
    let rows = lease_rows(&database.url());
    let clients = every_ack_is_a_row(&all, &rows)?;
    eprintln!(
        "three servers, one database, a SIGKILL: {} ACKs to {clients} clients, each an active \
         row with its hardware address; {} rows",
        all.len(),
        rows.len()
    );
    Ok(())
}

#[test]
fn the_database_stopped_under_load_no_ack_without_a_commit() -> Result<()> {
    if !common::privileged("the_database_stopped_under_load_no_ack_without_a_commit") {
        return Ok(());
    }
    let port = 29_860 + (std::process::id() % 40) as u16;
    let Some(database) = PgServer::start("netns_pg_stop", port) else {
        return Ok(());
    };
    let _turn = load_turn();
    let url = socket_url(&database);
    let lab = relayed_lab()?;
    let server = start_server(&lab, "pg-stop", &url)?;
    let capture = Capture::start(&lab)?;
    let mut perfdhcp = load(&lab, 9, 300, 4_000, 16)?;
    wait_for("200 ACKs", Duration::from_secs(20), || {
        Ok((acks_sent(&lab) >= 200).then_some(()))
    })?;
    database.stop("immediate");
    let stopped = unix_now();
    wait_for("the gauge to say down", Duration::from_secs(10), || {
        Ok((metric(&lab, DATABASE_UP) == 0).then_some(()))
    })?;
    let (decided_down, offers_down) = (metric(&lab, ACKS), metric(&lab, OFFERS));
    // Three seconds of load against a server without its database.
    let outage_end = netns::now() + Duration::from_secs(3);
    wait_for("the outage", Duration::from_secs(5), || {
        Ok((netns::now() >= outage_end).then_some(()))
    })?;
    let (decided_during, offers_during) = (
        metric(&lab, ACKS).saturating_sub(decided_down),
        metric(&lab, OFFERS).saturating_sub(offers_down),
    );
    let restarted = unix_now();
    database.start_again();
    wait_for("the gauge to say up", Duration::from_secs(20), || {
        Ok((metric(&lab, DATABASE_UP) == 1).then_some(()))
    })?;
    let acks_back = acks_sent(&lab);
    wait_for("ACKs to resume", Duration::from_secs(15), || {
        Ok((acks_sent(&lab) >= acks_back + 50).then_some(()))
    })?;
    perfdhcp.wait_exit(Duration::from_secs(40))?;
    let seen = acks(capture)?;
    let log = server.log_text();
    drop(server);
    ensure!(
        log.contains("lease database unreachable")
            && log.contains("lease database reachable again"),
        "the log says nothing of the outage:\n{log}"
    );
    ensure!(offers_during > 0, "no OFFER while the database was away");
    // A client ACKed while the database was away (after the batches in flight at the stop
    // finished) held its lease before: a new lease needs a commit.
    let settled = stopped + 0.5;
    let before: HashSet<&str> = seen
        .iter()
        .filter(|ack| ack.at < stopped)
        .map(|ack| ack.mac.as_str())
        .collect();
    let in_outage: Vec<&Ack> = seen
        .iter()
        .filter(|ack| ack.at > settled && ack.at < restarted)
        .collect();
    let new_in_outage: Vec<_> = in_outage
        .iter()
        .filter(|ack| !before.contains(ack.mac.as_str()))
        .map(|ack| (ack.mac.clone(), ack.address))
        .collect();
    ensure!(
        new_in_outage.is_empty(),
        "new leases ACKed without the database: {new_in_outage:?}"
    );
    let rows = lease_rows(&database.url());
    let clients = every_ack_is_a_row(&seen, &rows)?;
    eprintln!(
        "database stopped for {:.1} s under 300 DORA/s: meanwhile {offers_during} OFFERs, \
         {decided_during} ACKs decided by the engine (dropped, commit_failed) and {} ACKs \
         captured; {} ACKs captured in all, {clients} clients each an \
         active row with its hardware address",
        restarted - stopped,
        in_outage.len(),
        seen.len()
    );
    Ok(())
}
