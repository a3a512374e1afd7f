//! Tier-3 pool balancing under skewed load (needs root): a fresh pair reaches NORMAL and the
//! primary gives the secondary its half of the free leases (BACKUP); then 90 % of the new
//! clients hash to the secondary's half of the load balancing buckets and send `secs` 0, so
//! only the secondary answers them (docs/spec/failover.md §11) and it spends its BACKUP leases
//! nine times faster than the primary spends its FREE ones. The primary's balancing
//! (§10, ISC `dhcp_failover_pool_dobalance`; `min-balance 1`, `max-balance 3` so that it runs
//! every few seconds) must bring both servers' free stock back within ISC's
//! max-lease-misbalance bound: |lts| = |FREE − BACKUP| / 2 ≤ (FREE + BACKUP) × 15 % (the
//! default), the primary's FREE count read from its lease file, the secondary's BACKUP count
//! from its own, at every sample through the burst and 5 s after it. Without balancing during
//! the burst lts ends near 160 against a bound of about 90.
//!
//! 1. xdhcpd primary + ISC secondary (xdhcpd balances, ISC consumes).
//! 2. The same with two ISC dhcpd 4.4 servers: the reference that validates the scenario and
//!    the bound.
//!
//! 3. MAC address affinity: the primary's expired leases go to BACKUP when their client hashes
//!    to the secondary, to FREE otherwise, in both lease files (xdhcpd primary + ISC secondary,
//!    and two ISC servers as the reference; see the section further down).
//!
//! The clients are a relay agent's (server/tests/netns/relay_client.py): each DISCOVER is
//! broadcast on the bridge to both servers, with giaddr, as in `failover_pair`.

use crate::common;
use crate::failover_pair as pair;
use crate::netns;

use anyhow::{bail, Context as _, Result};
use netns::leases::current_by_address;
use netns::{parse_lease_file, wait_for, Proc};
use pair::{
    logs, start_isc, start_xdhcpd, wait_for_states, FailoverConf, PairLab, PairServer, ADDRESS_B,
    POOL_FIRST,
};
use server_common::loadbalance::bucket;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

const RELAY_CLIENT: &str = include_str!("../netns/relay_client.py");
/// Addresses in the pool.
const POOL: u32 = 1_000;
/// New clients in the skewed burst, and how many of each ten hash to the secondary.
const CLIENTS: u32 = 400;
const TO_SECONDARY_OF_TEN: u32 = 9;
/// DISCOVERs per second of the burst (20 s).
const RATE: u32 = 20;
/// Seconds the stock is still watched after the burst.
const SETTLE_SECONDS: f32 = 5.0;
/// dhcpd.conf(5) default max-lease-misbalance.
const MISBALANCE_PERCENT: i64 = 15;
const NORMAL_TIMEOUT: Duration = Duration::from_secs(40);

fn xdhcpd_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_xdhcpd"))
}

/// The lab's failover configuration with a balancing timer of a few seconds.
fn conf(primary: bool) -> String {
    FailoverConf::new(primary, POOL).dhcpd_conf().replace(
        "load balance max seconds 5;",
        "load balance max seconds 5;\n  min-balance 1;\n  max-balance 3;",
    )
}

/// `count` MACs whose load balancing bucket (RFC 3074 hash of the hardware address; no client
/// identifier is sent) belongs to the primary (buckets 0–127 with split 128) or not.
fn macs(primary: bool, count: u32, skip: &mut u32) -> Vec<String> {
    let mut found = Vec::new();
    while found.len() < count as usize {
        let [_, _, b, c] = skip.to_be_bytes();
        *skip += 1;
        let mac = [0x02, 0x60, 0x00, 0x00, b, c];
        if (bucket(&mac) < 128) == primary {
            found.push(
                mac.iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
            );
        }
    }
    found
}

/// The skewed client list: of every ten, nine hash to the secondary.
fn skewed_clients() -> String {
    let mut skip = 0;
    let to_secondary = CLIENTS * TO_SECONDARY_OF_TEN / 10;
    let mut secondary = macs(false, to_secondary, &mut skip).into_iter();
    let mut primary = macs(true, CLIENTS - to_secondary, &mut skip).into_iter();
    let mut list = String::new();
    for index in 0..CLIENTS {
        let mac = if index % 10 < TO_SECONDARY_OF_TEN {
            secondary.next()
        } else {
            primary.next()
        };
        if let Some(mac) = mac.or_else(|| secondary.next()).or_else(|| primary.next()) {
            list.push_str(&mac);
            list.push('\n');
        }
    }
    list
}

/// How many pool addresses a lease file holds in `state` (its last record for each address).
/// An address without a record is FREE: a server writes never-used addresses lazily.
fn count_in_state(lease_file: &Path, state: &str) -> i64 {
    let text = std::fs::read_to_string(lease_file).unwrap_or_default();
    let records = parse_lease_file(&text);
    let current = current_by_address(&records);
    let first = u32::from(POOL_FIRST);
    let in_pool = |address: &Ipv4Addr| (first..first + POOL).contains(&u32::from(*address));
    let matching = current
        .iter()
        .filter(|(address, record)| {
            in_pool(address) && record.binding_state.as_deref() == Some(state)
        })
        .count() as i64;
    if state != "free" {
        return matching;
    }
    let other = current
        .iter()
        .filter(|(address, record)| {
            in_pool(address) && record.binding_state.as_deref().unwrap_or("free") != "free"
        })
        .count() as i64;
    i64::from(POOL) - other
}

/// The primary's FREE (its own file) and the secondary's BACKUP (its own file).
fn stock(primary: &PairServer, secondary: &PairServer) -> (i64, i64) {
    (
        count_in_state(&primary.lease_file, "free"),
        count_in_state(&secondary.lease_file, "backup"),
    )
}

/// ISC's bound (dhcpd.conf(5) max-lease-misbalance; failover.c `dhcp_failover_pool_dobalance`):
/// lts = (FREE − BACKUP) / 2 within ±thresh, thresh = (total × misbalance + 50) / 100.
fn within_misbalance((free, backup): (i64, i64)) -> bool {
    let lts = (free - backup) / 2;
    let thresh = ((free + backup) * MISBALANCE_PERCENT + 50) / 100;
    lts.abs() <= thresh
}

fn debug(servers: &[&PairServer], lab: &PairLab) -> String {
    let mut parts = Vec::new();
    for server in servers {
        parts.push((format!("{} log", server.name), server.log()));
        parts.push((format!("{} leases", server.name), server.lease_file.clone()));
    }
    parts.push(("clients".into(), lab.dir.join("clients.log")));
    let borrowed: Vec<(&str, &Path)> = parts
        .iter()
        .map(|(name, path)| (name.as_str(), path.as_path()))
        .collect();
    logs(&borrowed)
}

/// The scenario over a started pair: both NORMAL, the secondary holds its half, the skewed
/// burst, then the free stock back within the bound.
fn skewed_load_scenario(
    lab: &PairLab,
    mut primary: PairServer,
    mut secondary: PairServer,
) -> Result<()> {
    let debug = |primary: &PairServer, secondary: &PairServer| debug(&[primary, secondary], lab);
    wait_for_states(
        &mut [&mut primary, &mut secondary],
        "normal",
        NORMAL_TIMEOUT,
    )
    .with_context(|| debug(&primary, &secondary))?;
    // The primary's balancing on entering NORMAL gives the secondary about half.
    let mut start_stock = (0, 0);
    wait_for(
        "the secondary to hold its half of the pool",
        Duration::from_secs(20),
        || {
            start_stock = stock(&primary, &secondary);
            Ok(
                (start_stock.1 >= i64::from(POOL) * 2 / 5 && within_misbalance(start_stock))
                    .then_some(()),
            )
        },
    )
    .with_context(|| debug(&primary, &secondary))?;

    let script = lab.dir.join("relay_client.py");
    std::fs::write(&script, RELAY_CLIENT)?;
    let input = lab.dir.join("clients.in");
    std::fs::write(&input, skewed_clients())?;
    let output = lab.dir.join("clients.out");
    let mut command = lab.client.command("python3");
    command
        .arg(&script)
        .arg("dora")
        .arg(&input)
        .arg(&output)
        .args([format!("rate={RATE}"), "timeout=2".into(), "secs=0".into()]);
    let mut clients = Proc::spawn("relay client", command, lab.dir.join("clients.log"))?;
    // Sample both servers' stock through the burst and a few seconds after it: every sample
    // must be within the bound. A balancing run is at most max-balance + 4 s away (ISC adds
    // up to 4 s at random), in which the skew moves lts by at most ~65 (18 leases/s to the
    // secondary, 2/s to the primary), well under the bound (90 at the end of the burst).
    let burst_started = netns::now();
    let mut timeline: Vec<(f32, (i64, i64))> = Vec::new();
    let mut finished = None;
    let mut out_of_bound = None;
    wait_for(
        "the skewed burst and the settling after it",
        Duration::from_secs(u64::from(CLIENTS / RATE) + 30),
        || {
            primary.check_running()?;
            secondary.check_running()?;
            let now = stock(&primary, &secondary);
            let at = burst_started.elapsed().as_secs_f32();
            // One sample per half second for the report (every sample is checked).
            if timeline.last().is_none_or(|(last, _)| at - last >= 0.5) {
                timeline.push((at, now));
            }
            if !within_misbalance(now) && out_of_bound.is_none() {
                out_of_bound = Some((at, now));
            }
            if finished.is_none() {
                finished = clients.child.try_wait()?.map(|status| (at, status));
            }
            Ok(finished
                .filter(|(ended, _)| at >= ended + SETTLE_SECONDS)
                .map(|_| ()))
        },
    )
    .with_context(|| {
        format!(
            "stock timeline {timeline:?}\n{}",
            debug(&primary, &secondary)
        )
    })?;
    let (burst_seconds, status) = finished.context("burst status")?;
    if !status.success() {
        bail!(
            "the relay client failed ({status}): {}\n{}",
            clients.log_text(),
            debug(&primary, &secondary)
        );
    }
    let summary = std::fs::read_to_string(&output)?;
    let done = summary
        .lines()
        .last()
        .and_then(|line| line.strip_prefix("done "))
        .context("relay client summary")?
        .split_whitespace()
        .map(|field| field.parse::<u64>().unwrap_or(0))
        .collect::<Vec<_>>();
    let (sent, acked) = (done[0], done[1]);
    let by_secondary = summary
        .lines()
        .filter(|line| line.contains(" ack 10.215.0.2 "))
        .count() as u64;
    eprintln!(
        "stock (s, (primary FREE, secondary BACKUP)), burst of {burst_seconds:.1} s: {timeline:?}; \
         {acked}/{sent} clients bound, {by_secondary} by the secondary"
    );
    assert!(
        acked * 10 >= sent * 9,
        "most clients are served: {acked}/{sent}\n{}",
        debug(&primary, &secondary)
    );
    assert!(
        by_secondary * 10 >= acked * 8,
        "the skew reached the secondary: {by_secondary} of {acked}\n{}",
        debug(&primary, &secondary)
    );
    // The skew spent about 320 more BACKUP than FREE leases: without balancing during the
    // burst lts ends near 160 against a bound of about 90.
    assert!(
        out_of_bound.is_none(),
        "free stock (primary FREE, secondary BACKUP) beyond max-lease-misbalance at {out_of_bound:?} s; \
         timeline {timeline:?}\n{}",
        debug(&primary, &secondary)
    );
    Ok(())
}

#[test]
fn skewed_load_xdhcpd_primary_keeps_isc_secondarys_stock_balanced() -> Result<()> {
    if !common::privileged("skewed_load_xdhcpd_primary_keeps_isc_secondarys_stock_balanced") {
        return Ok(());
    }
    let lab = PairLab::new()?;
    let primary = start_xdhcpd(xdhcpd_binary(), &lab.a, &lab.server_dir("a")?, conf(true))?;
    let secondary = start_isc(&lab.b, &lab.server_dir("b")?, &conf(false), true)?;
    skewed_load_scenario(&lab, primary, secondary)
}

/// The reference: two ISC dhcpd 4.4 servers meet the same bound in the same scenario.
#[test]
fn skewed_load_isc_pair_keeps_stock_balanced_reference() -> Result<()> {
    if !common::privileged("skewed_load_isc_pair_keeps_stock_balanced_reference") {
        return Ok(());
    }
    let lab = PairLab::new()?;
    let primary = start_isc(&lab.a, &lab.server_dir("a")?, &conf(true), true)?;
    let secondary = start_isc(&lab.b, &lab.server_dir("b")?, &conf(false), true)?;
    skewed_load_scenario(&lab, primary, secondary)
}

// ---------------------------------------------------------------------------------------------
// MAC address affinity (ISC failover.c `dhcp_failover_process_bind_ack` /
// `dhcp_failover_process_bind_update`, `peer_wants_lease`, `secondary_not_hoarding`): when a
// primary returns a lease to FREE from EXPIRED, RELEASED or RESET and the lease's last client
// hashes to the secondary's half of the load balancing buckets (RFC 3074 over the hardware
// address; these clients send no client identifier), the primary moves it on to BACKUP with a
// BNDUPD, so that the client, if it comes back, is answered by the server that will see its
// DISCOVERs. The others stay FREE.
//
// Clients of both halves bind through the pair (each answered by the server of its bucket),
// their 10 s leases run out, the primary expires them (EXPIRED, BNDUPD, BNDACK, FREE), and then
// every lease whose client hashes to the secondary must be `binding state backup` and every
// other `binding state free`, in the primary's and the secondary's lease files alike.
//
// 1. xdhcpd primary + ISC secondary (`Machine::affinity` against ISC's view).
// 2. ISC primary + ISC secondary: the reference, ISC's own behaviour in the same scenario.
// ---------------------------------------------------------------------------------------------

/// Addresses in the affinity scenario's pool (balanced 50 / 50 on entering NORMAL).
const AFFINITY_POOL: u32 = 100;
/// Clients of each half of the buckets.
const AFFINITY_CLIENTS_PER_HALF: u32 = 12;
/// Lease time of the affinity scenario (below MCLT, so granted whole).
const AFFINITY_LEASE_SECONDS: u32 = 10;

fn affinity_conf(primary: bool) -> String {
    FailoverConf {
        default_lease_time: AFFINITY_LEASE_SECONDS,
        max_lease_time: AFFINITY_LEASE_SECONDS,
        ..FailoverConf::new(primary, AFFINITY_POOL)
    }
    .dhcpd_conf()
}

/// The current binding state of `address` in a lease file (None: no record, i.e. FREE).
fn binding_state(lease_file: &Path, address: Ipv4Addr) -> Option<String> {
    let text = std::fs::read_to_string(lease_file).unwrap_or_default();
    current_by_address(&parse_lease_file(&text))
        .get(&address)
        .and_then(|record| record.binding_state.clone())
}

/// Every bound client's lease whose state in `lease_file` is not the one affinity gives it:
/// (address, MAC, expected, found).
fn affinity_mismatches(
    lease_file: &Path,
    bound: &[(String, Ipv4Addr)],
) -> Vec<(Ipv4Addr, String, &'static str, Option<String>)> {
    bound
        .iter()
        .filter_map(|(mac, address)| {
            let expected = expected_after_expiry(mac);
            let found = binding_state(lease_file, *address);
            (found.as_deref() != Some(expected)).then(|| (*address, mac.clone(), expected, found))
        })
        .collect()
}

/// `backup` when the MAC hashes to the secondary (bucket ≥ 128 with split 128), else `free`.
fn expected_after_expiry(mac: &str) -> &'static str {
    let bytes: Vec<u8> = mac
        .split(':')
        .filter_map(|part| u8::from_str_radix(part, 16).ok())
        .collect();
    if bucket(&bytes) < 128 {
        "free"
    } else {
        "backup"
    }
}

fn expired_leases_follow_their_clients_hash(
    lab: &PairLab,
    mut primary: PairServer,
    mut secondary: PairServer,
) -> Result<()> {
    let debug = |primary: &PairServer, secondary: &PairServer| debug(&[primary, secondary], lab);
    wait_for_states(
        &mut [&mut primary, &mut secondary],
        "normal",
        NORMAL_TIMEOUT,
    )
    .with_context(|| debug(&primary, &secondary))?;
    let half = i64::from(AFFINITY_POOL) * 2 / 5;
    wait_for(
        "the secondary to hold its half of the pool",
        Duration::from_secs(20),
        || {
            let backup = count_in_state(&secondary.lease_file, "backup");
            Ok((backup >= half).then_some(()))
        },
    )
    .with_context(|| debug(&primary, &secondary))?;

    // Alternating halves, so both servers hand out leases at the same pace.
    let mut skip = 0;
    let to_primary = macs(true, AFFINITY_CLIENTS_PER_HALF, &mut skip);
    let to_secondary = macs(false, AFFINITY_CLIENTS_PER_HALF, &mut skip);
    let list: String = to_primary
        .iter()
        .zip(&to_secondary)
        .flat_map(|(first, second)| [first, second])
        .map(|mac| format!("{mac}\n"))
        .collect();
    let script = lab.dir.join("relay_client.py");
    std::fs::write(&script, RELAY_CLIENT)?;
    let input = lab.dir.join("clients.in");
    std::fs::write(&input, list)?;
    let output = lab.dir.join("clients.out");
    let mut command = lab.client.command("python3");
    command
        .arg(&script)
        .arg("dora")
        .arg(&input)
        .arg(&output)
        .args(["rate=10", "timeout=2", "secs=0"]);
    let mut clients = Proc::spawn("relay client", command, lab.dir.join("clients.log"))?;
    let status = clients.wait_exit(Duration::from_secs(30))?;
    if !status.success() {
        bail!(
            "the relay client failed ({status}): {}\n{}",
            clients.log_text(),
            debug(&primary, &secondary)
        );
    }
    // `START END MAC ack SERVER YIADDR` for each bound client.
    let summary = std::fs::read_to_string(&output)?;
    let bound: Vec<(String, Ipv4Addr, String)> = summary
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [_, _, mac, "ack", server, yiaddr] => Some((
                    (*mac).to_owned(),
                    yiaddr.parse().ok()?,
                    (*server).to_owned(),
                )),
                _ => None,
            }
        })
        .collect();
    let served_by_secondary = bound
        .iter()
        .filter(|(mac, _, server)| {
            expected_after_expiry(mac) == "backup" && server == &ADDRESS_B.to_string()
        })
        .count();
    eprintln!(
        "affinity: {} of {} clients bound, {served_by_secondary} of the secondary's half by the \
         secondary",
        bound.len(),
        2 * AFFINITY_CLIENTS_PER_HALF
    );
    let bound: Vec<(String, Ipv4Addr)> = bound
        .into_iter()
        .map(|(mac, address, _)| (mac, address))
        .collect();
    for half in ["free", "backup"] {
        let count = bound
            .iter()
            .filter(|(mac, _)| expected_after_expiry(mac) == half)
            .count();
        assert!(
            count * 10 >= AFFINITY_CLIENTS_PER_HALF as usize * 8,
            "most clients of the {half} half are bound: {count}\n{summary}\n{}",
            debug(&primary, &secondary)
        );
    }
    // Every bound lease is active on both sides (BNDUPD) before it expires.
    for server in [&primary, &secondary] {
        let active = pair::active_leases(&server.lease_file);
        wait_for(
            &format!("every bound lease active in the {}'s file", server.name),
            Duration::from_secs(10),
            || {
                let active = pair::active_leases(&server.lease_file);
                Ok(bound
                    .iter()
                    .all(|(mac, address)| active.get(address) == Some(mac))
                    .then_some(()))
            },
        )
        .with_context(|| format!("{active:?}\n{}", debug(&primary, &secondary)))?;
    }

    // The leases end (10 s), the primary expires them, and affinity decides FREE or BACKUP.
    let mut last = (Vec::new(), Vec::new());
    let settled = wait_for(
        "every expired lease in the state its client's hash gives, on both servers",
        Duration::from_secs(u64::from(AFFINITY_LEASE_SECONDS) + 40),
        || {
            primary.check_running()?;
            secondary.check_running()?;
            last = (
                affinity_mismatches(&primary.lease_file, &bound),
                affinity_mismatches(&secondary.lease_file, &bound),
            );
            Ok((last.0.is_empty() && last.1.is_empty()).then_some(()))
        },
    );
    if settled.is_err() {
        bail!(
            "leases not in their affinity state (address, MAC, expected, found):\n  \
             {} primary: {:?}\n  {} secondary: {:?}\n{}",
            primary.name,
            last.0,
            secondary.name,
            last.1,
            debug(&primary, &secondary)
        );
    }
    // And it stays so (no later move of these leases by a balancing run or a stray BNDUPD).
    let steady = netns::now() + Duration::from_secs(3);
    wait_for("a few seconds more", Duration::from_secs(10), || {
        Ok((netns::now() >= steady).then_some(()))
    })?;
    let after = (
        affinity_mismatches(&primary.lease_file, &bound),
        affinity_mismatches(&secondary.lease_file, &bound),
    );
    assert!(
        after.0.is_empty() && after.1.is_empty(),
        "affinity states changed afterwards: {after:?}\n{}",
        debug(&primary, &secondary)
    );
    let to_backup = bound
        .iter()
        .filter(|(mac, _)| expected_after_expiry(mac) == "backup")
        .count();
    eprintln!(
        "affinity: {to_backup} expired leases went to BACKUP, {} to FREE, on both servers",
        bound.len() - to_backup
    );
    Ok(())
}

#[test]
fn expired_leases_of_an_xdhcpd_primary_follow_their_clients_hash_on_isc_secondary() -> Result<()> {
    if !common::privileged(
        "expired_leases_of_an_xdhcpd_primary_follow_their_clients_hash_on_isc_secondary",
    ) {
        return Ok(());
    }
    let lab = PairLab::new()?;
    let primary = start_xdhcpd(
        xdhcpd_binary(),
        &lab.a,
        &lab.server_dir("a")?,
        affinity_conf(true),
    )?;
    let secondary = start_isc(&lab.b, &lab.server_dir("b")?, &affinity_conf(false), true)?;
    expired_leases_follow_their_clients_hash(&lab, primary, secondary)
}

/// The reference: an ISC primary does the same with an ISC secondary.
#[test]
fn expired_leases_of_an_isc_primary_follow_their_clients_hash_reference() -> Result<()> {
    if !common::privileged("expired_leases_of_an_isc_primary_follow_their_clients_hash_reference") {
        return Ok(());
    }
    let lab = PairLab::new()?;
    let primary = start_isc(&lab.a, &lab.server_dir("a")?, &affinity_conf(true), true)?;
    let secondary = start_isc(&lab.b, &lab.server_dir("b")?, &affinity_conf(false), true)?;
    expired_leases_follow_their_clients_hash(&lab, primary, secondary)
}
