//! The differential harness against a live ISC dhcpd 4.4 (issue 10, "drop-in"): for each
//! configuration of the corpus (testdata/difftest/, see [`script`]), ISC dhcpd and xdhcpd run
//! in turn — each in its own [`Lab`] of identical topology, on the same dhcpd.conf and a copy of
//! the same starting lease file — and the same scripted client (difftest_client.py, raw frames
//! in the client namespace, fixed xids and MACs) talks to each. Every reply is compared field
//! by field ([`compare::compare_replies`]: destination, header, every option value and the
//! option order) and so are the final lease files ([`compare::compare_leases`]).
//!
//! A difference must be listed, either as justified (testdata/difftest/justified.toml, with
//! the reason) or as known and still to fix (testdata/difftest/known-differences.toml);
//! anything else fails the run. Used by `cargo xtask difftest` (the whole corpus) and by
//! server/tests/integration/netns_difftest.rs (the configs marked `ci`).
//!
//! Topology (each server's lab): the server namespace has 10.220.0.1/24 on its veth (the
//! directly attached subnet) and a route to 10.224.0.0/11 over it; the client namespace holds
//! the relay agents' addresses 10.230.0.1, 10.231.0.1 and 10.232.0.1, so a config serves
//! directly attached clients on 10.220.0.0/24 and relayed ones on 10.230–10.232.0.0/24.

pub mod compare;
pub mod script;
pub use dhcp_compare::lists;

use super::peers::{Server, ServerKind, ServerSetup};
use super::{run, DhcpConfig, Lab, Proc};
use anyhow::{anyhow, bail, Context as _, Result};
use compare::{Difference, LeaseState, Reply};
use lists::{Entry, Key};
use script::CorpusConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const SERVER_CIDR: &str = "10.220.0.1/24";
pub const SERVER_ADDRESS: &str = "10.220.0.1";
/// The relay agents' addresses (giaddr), held by the client namespace.
pub const RELAY_ADDRESSES: [&str; 3] = ["10.230.0.1", "10.231.0.1", "10.232.0.1"];
/// Routed from the server namespace to the client namespace (covers every relayed subnet).
const RELAYED_ROUTE: &str = "10.224.0.0/11";

const CLIENT: &str = include_str!("difftest_client.py");

/// Where the corpus and the lists live, relative to the workspace root.
pub const CORPUS_DIR: &str = "testdata/difftest";
pub const JUSTIFIED_LIST: &str = "justified.toml";
pub const KNOWN_LIST: &str = "known-differences.toml";

/// What one server did with one config.
pub struct ServerRun {
    /// Reply per `exchange/step`, in script order.
    pub replies: Vec<(String, Option<Reply>)>,
    pub leases: BTreeMap<Ipv4Addr, LeaseState>,
    pub log: String,
}

/// Checks that ISC dhcpd accepts the config (`dhcpd -t`), as every corpus file must.
pub fn isc_accepts(config: &CorpusConfig, dir: &Path) -> Result<()> {
    let path = dir.join(format!("{}.check.conf", config.name));
    std::fs::write(&path, &config.conf_text)?;
    let output = Command::new("/usr/sbin/dhcpd")
        .args(["-4", "-t", "-q", "-cf"])
        .arg(&path)
        .output()
        .context("run /usr/sbin/dhcpd -t")?;
    let _ = std::fs::remove_file(&path);
    if !output.status.success() {
        bail!(
            "ISC dhcpd rejects {}.conf:\n{}{}",
            config.name,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Runs the config's script against one server in a fresh lab, starting from `leases_text`
/// (the config's lease file with its times filled in, [`fill_lease_times`]).
pub fn run_server(config: &CorpusConfig, leases_text: &str, kind: ServerKind) -> Result<ServerRun> {
    let lab = Lab::new(SERVER_CIDR)?;
    for relay in RELAY_ADDRESSES {
        lab.client
            .ip(&["addr", "add", &format!("{relay}/32"), "dev", &lab.client_if])?;
    }
    lab.server
        .ip(&["route", "add", RELAYED_ROUTE, "dev", &lab.server_if])?;
    std::fs::write(lab.dir.join("server.leases"), leases_text)?;
    let mut server = ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind: kind.clone(),
        config: DhcpConfig::lab_default(),
        interface: lab.server_if.clone(),
        relayed: true,
        dhcpd_conf: Some(config.conf_text.clone()),
    }
    .start()
    .with_context(|| format!("start {} on {}", kind.label(), config.name))?;
    let client_log = run_script(&lab, config, &mut server)?;
    server
        .proc
        .check_running()
        .with_context(|| format!("{} on {}", kind.label(), config.name))?;
    server.proc.signal("TERM")?;
    let _ = server.proc.wait_exit(Duration::from_secs(10));
    let lease_text = std::fs::read_to_string(&server.lease_file).unwrap_or_default();
    let replies = parse_client_output(&client_log)?;
    let expected = config
        .exchanges
        .iter()
        .flat_map(|exchange| &exchange.steps)
        .filter(|step| matches!(step, script::Step::Send { .. }))
        .count();
    if replies.len() != expected {
        bail!(
            "{} results for {expected} steps on {} against {}:\n{client_log}",
            replies.len(),
            config.name,
            kind.label()
        );
    }
    Ok(ServerRun {
        replies,
        leases: compare::lease_states(&lease_text),
        log: server.proc.log_text(),
    })
}

/// Runs the config's script with the scripted client in the lab's client namespace against
/// `server` (serving the lab's veth); returns the client's output.
pub fn run_script(lab: &Lab, config: &CorpusConfig, server: &mut Server) -> Result<String> {
    let server_mac = lab
        .server
        .exec_ok(&["cat", &format!("/sys/class/net/{}/address", lab.server_if)])?
        .trim()
        .to_owned();
    let steps = lab.dir.join("steps.txt");
    std::fs::write(&steps, script::render_steps(config)?)?;
    let client_script = lab.dir.join("difftest_client.py");
    std::fs::write(&client_script, CLIENT)?;
    let mut command = lab.client.command("python3");
    command
        .arg(&client_script)
        .arg(&steps)
        .arg(&lab.client_if)
        .arg(lab.server_address.to_string())
        .arg(&server_mac);
    let mut client = Proc::spawn("difftest client", command, lab.dir.join("client.log"))?;
    let status = client.wait_exit(script_bound(config))?;
    let client_log = client.log_text();
    if !status.success() {
        bail!(
            "the client failed ({status}) on {} against {}:\n{client_log}\nserver log:\n{}",
            config.name,
            server.kind.label(),
            server.proc.log_text()
        );
    }
    Ok(client_log)
}

/// The harness is a driver: it owns the clock (STYLE.md §2).
#[expect(clippy::disallowed_methods, reason = "test driver owns the clock")]
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Replaces `@now`, `@now+SECONDS` and `@now-SECONDS` in a corpus lease file with that time
/// as dhcpd.leases(5) writes it (`W YYYY/MM/DD HH:MM:SS`, UTC), so that a lease can be
/// active, young or old whenever the harness runs (ISC's `dhcp-cache-threshold` compares a
/// lease's age with its length).
pub fn fill_lease_times(text: &str, now: u64) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(index) = rest.find("@now") {
        out.push_str(&rest[..index]);
        let after = &rest[index + 4..];
        let digits_end = |text: &str| {
            text.find(|c: char| !c.is_ascii_digit())
                .unwrap_or(text.len())
        };
        let (time, tail) = match after.chars().next() {
            Some(sign @ ('+' | '-')) => {
                let end = 1 + digits_end(&after[1..]);
                let offset: u64 = after[1..end]
                    .parse()
                    .with_context(|| format!("lease time `@now{}`", &after[..end]))?;
                let time = if sign == '+' {
                    now + offset
                } else {
                    now.saturating_sub(offset)
                };
                (time, &after[end..])
            }
            _ => (now, after),
        };
        out.push_str(&lease_date(time));
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// `W YYYY/MM/DD HH:MM:SS` of a Unix time (UTC; W = 0 for Sunday), as ISC's `print_time`.
fn lease_date(time: u64) -> String {
    let days = (time / 86_400) as i64;
    let seconds = time % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // 1970-01-01 was a Thursday (4).
    let weekday = (days + 4).rem_euclid(7);
    format!(
        "{weekday} {year}/{month:02}/{day:02} {:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// An upper bound of the client's run time: every wait and sleep, plus start-up.
fn script_bound(config: &CorpusConfig) -> Duration {
    let seconds: f64 = config
        .exchanges
        .iter()
        .flat_map(|exchange| &exchange.steps)
        .map(|step| match step {
            script::Step::Sleep(seconds) => *seconds,
            script::Step::Send { settings, .. } => {
                settings
                    .get("wait")
                    .and_then(|wait| wait.parse().ok())
                    .unwrap_or(2.0)
                    + 0.5
            }
        })
        .sum();
    Duration::from_secs_f64(seconds + 30.0)
}

pub fn parse_client_output(text: &str) -> Result<Vec<(String, Option<Reply>)>> {
    let mut replies = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["result", name, "none"] => replies.push(((*name).to_owned(), None)),
            ["result", name, link, ip_dst, dport, payload] => {
                let bootp = (0..payload.len() / 2)
                    .map(|index| u8::from_str_radix(&payload[2 * index..2 * index + 2], 16))
                    .collect::<Result<Vec<u8>, _>>()
                    .with_context(|| format!("reply hex of {name}"))?;
                replies.push((
                    (*name).to_owned(),
                    Some(Reply {
                        link: (*link).to_owned(),
                        ip_dst: ip_dst.parse()?,
                        udp_dport: dport.parse()?,
                        bootp,
                    }),
                ));
            }
            _ => {}
        }
    }
    Ok(replies)
}

/// The comparison of one config.
pub struct ConfigOutcome {
    pub config: String,
    pub exchanges: usize,
    pub steps: usize,
    /// Requests ISC dhcpd answered (a corpus whose requests go unanswered proves little).
    pub isc_answered: usize,
    pub differences: Vec<Difference>,
    /// The servers' logs, for a failing run.
    pub isc_log: String,
    pub xdhcpd_log: String,
}

/// xdhcpd's verdict on the config (`xdhcpd -t -cf`): `Err` with its messages when it refuses
/// it (a difference in itself: ISC accepts every corpus config).
fn xdhcpd_accepts(config: &CorpusConfig, xdhcpd: &Path, dir: &Path) -> Result<Result<(), String>> {
    let path = dir.join(format!("{}.xdhcpd-check.conf", config.name));
    std::fs::write(&path, &config.conf_text)?;
    let output = Command::new(xdhcpd)
        .args(["-t", "-cf"])
        .arg(&path)
        .output()
        .with_context(|| format!("run {} -t", xdhcpd.display()))?;
    let _ = std::fs::remove_file(&path);
    if output.status.success() {
        return Ok(Ok(()));
    }
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    // Error lines without the scratch path, so that the list can quote them.
    let lines: Vec<String> = text
        .lines()
        .filter(|line| line.contains(".conf:"))
        .map(|line| {
            line.rsplit_once(".conf:")
                .map_or(line, |(_, rest)| rest)
                .trim()
                .to_owned()
        })
        .collect();
    Ok(Err(if lines.is_empty() {
        text.trim().to_owned()
    } else {
        lines.join("; ")
    }))
}

/// Runs ISC dhcpd and xdhcpd (in two labs at once: the labs share nothing) on one config and
/// compares what they did. When xdhcpd refuses the config, that is the one difference
/// (`exchange = config`, `step = check`, `field = accepted`).
pub fn difftest_config(
    config: &CorpusConfig,
    xdhcpd: &Path,
    scratch: &Path,
) -> Result<ConfigOutcome> {
    if let Err(errors) = xdhcpd_accepts(config, xdhcpd, scratch)? {
        return Ok(ConfigOutcome {
            config: config.name.clone(),
            exchanges: 0,
            steps: 0,
            isc_answered: 0,
            differences: vec![Difference {
                key: Key {
                    config: config.name.clone(),
                    exchange: "config".to_owned(),
                    step: "check".to_owned(),
                    field: "accepted".to_owned(),
                },
                isc: "accepted".to_owned(),
                xdhcpd: format!("refused: {errors}"),
            }],
            isc_log: String::new(),
            xdhcpd_log: String::new(),
        });
    }
    let ours_kind = ServerKind::Xdhcpd {
        binary: xdhcpd.to_path_buf(),
        xdp: false,
    };
    // One clock reading for both: the two servers start from the same file.
    let leases_text = fill_lease_times(&config.leases_text, unix_now())?;
    let (isc, ours) = std::thread::scope(|scope| {
        let isc = scope.spawn(|| run_server(config, &leases_text, ServerKind::IscDhcpd));
        let ours = scope.spawn(|| run_server(config, &leases_text, ours_kind));
        let join = |handle: std::thread::ScopedJoinHandle<'_, Result<ServerRun>>| {
            handle
                .join()
                .unwrap_or_else(|_| Err(anyhow!("a server run panicked")))
        };
        (join(isc), join(ours))
    });
    let (isc, ours) = (isc?, ours?);
    let mut differences = Vec::new();
    let mut exchanges = BTreeSet::new();
    for ((name, isc_reply), (_, our_reply)) in isc.replies.iter().zip(&ours.replies) {
        let (exchange, step) = name.split_once('/').unwrap_or((name.as_str(), ""));
        exchanges.insert(exchange.to_owned());
        let key = Key {
            config: config.name.clone(),
            exchange: exchange.to_owned(),
            step: step.to_owned(),
            field: String::new(),
        };
        differences.extend(compare::compare_replies(
            &key,
            isc_reply.as_ref(),
            our_reply.as_ref(),
        ));
    }
    differences.extend(compare::compare_leases(
        &config.name,
        &isc.leases,
        &ours.leases,
    ));
    Ok(ConfigOutcome {
        config: config.name.clone(),
        exchanges: exchanges.len(),
        steps: isc.replies.len(),
        isc_answered: isc
            .replies
            .iter()
            .filter(|(_, reply)| reply.is_some())
            .count(),
        differences,
        isc_log: isc.log,
        xdhcpd_log: ours.log,
    })
}

/// Every difference of a run, sorted against the two lists.
#[derive(Default)]
pub struct Verdict {
    pub justified: Vec<(Difference, String)>,
    pub known: Vec<(Difference, String)>,
    /// Neither justified nor known: these fail the run.
    pub new: Vec<Difference>,
    /// Entries of the lists (for configs that ran) that no longer match a difference.
    pub stale: Vec<Key>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.new.is_empty()
    }
}

/// The two lists of `corpus_dir`.
pub fn load_lists(corpus_dir: &Path) -> Result<(Vec<Entry>, Vec<Entry>)> {
    Ok((
        lists::load_list(&corpus_dir.join(JUSTIFIED_LIST), "reason")?,
        lists::load_list(&corpus_dir.join(KNOWN_LIST), "description")?,
    ))
}

pub fn classify<'a>(
    outcomes: &[ConfigOutcome],
    justified: &'a [Entry],
    known: &'a [Entry],
) -> Verdict {
    let mut verdict = Verdict::default();
    let mut matched = BTreeSet::new();
    for difference in outcomes.iter().flat_map(|outcome| &outcome.differences) {
        let covering =
            |list: &'a [Entry]| list.iter().find(|entry| entry.key.covers(&difference.key));
        if let Some(entry) = covering(justified) {
            matched.insert(entry.key.clone());
            verdict
                .justified
                .push((difference.clone(), entry.why.clone()));
        } else if let Some(entry) = covering(known) {
            matched.insert(entry.key.clone());
            verdict.known.push((difference.clone(), entry.why.clone()));
        } else {
            verdict.new.push(difference.clone());
        }
    }
    let ran: BTreeSet<&str> = outcomes
        .iter()
        .map(|outcome| outcome.config.as_str())
        .collect();
    // An entry for every config (`config = "*"`) is never reported: a subset cannot tell.
    verdict.stale = justified
        .iter()
        .chain(known)
        .filter(|entry| ran.contains(entry.key.config.as_str()) && !matched.contains(&entry.key))
        .map(|entry| entry.key.clone())
        .collect();
    verdict
}

/// A human-readable report of a run.
pub fn report(outcomes: &[ConfigOutcome], verdict: &Verdict) -> String {
    let mut out = String::new();
    let exchanges: usize = outcomes.iter().map(|outcome| outcome.exchanges).sum();
    let steps: usize = outcomes.iter().map(|outcome| outcome.steps).sum();
    let _ = writeln!(
        out,
        "difftest: {} configs, {exchanges} exchanges, {steps} requests compared against ISC dhcpd 4.4",
        outcomes.len()
    );
    let line = |out: &mut String, difference: &Difference, why: Option<&str>| {
        let _ = writeln!(
            out,
            "  {}\n      ISC    {}\n      xdhcpd {}",
            difference.key, difference.isc, difference.xdhcpd
        );
        if let Some(why) = why {
            let _ = writeln!(out, "      ({why})");
        }
    };
    let _ = writeln!(out, "justified differences: {}", verdict.justified.len());
    for (difference, reason) in &verdict.justified {
        line(&mut out, difference, Some(reason));
    }
    let _ = writeln!(out, "known differences (to fix): {}", verdict.known.len());
    for (difference, description) in &verdict.known {
        line(&mut out, difference, Some(description));
    }
    let _ = writeln!(out, "NEW differences (fail): {}", verdict.new.len());
    for difference in &verdict.new {
        line(&mut out, difference, None);
    }
    if !verdict.stale.is_empty() {
        let _ = writeln!(
            out,
            "list entries that matched nothing (fixed? remove them): {}",
            verdict.stale.len()
        );
        for key in &verdict.stale {
            let _ = writeln!(out, "  {key}");
        }
    }
    out
}

/// New differences as entries to paste into known-differences.toml (descriptions to write).
pub fn suggested_entries(new: &[Difference]) -> String {
    let mut out = String::new();
    for difference in new {
        let _ = writeln!(
            out,
            "[[difference]]\nconfig = {}\nexchange = {}\nstep = {}\nfield = {}\nisc = {}\nxdhcpd = {}\ndescription = \"TODO\"\n",
            lists::quote(&difference.key.config),
            lists::quote(&difference.key.exchange),
            lists::quote(&difference.key.step),
            lists::quote(&difference.key.field),
            lists::quote(&difference.isc),
            lists::quote(&difference.xdhcpd),
        );
    }
    out
}

/// Runs `configs` (after checking each with `dhcpd -t`) and classifies the differences.
/// `progress` gets one line per config.
pub fn run_corpus(
    configs: &[CorpusConfig],
    corpus_dir: &Path,
    xdhcpd: &Path,
    scratch: &Path,
    mut progress: impl FnMut(&str),
) -> Result<(Vec<ConfigOutcome>, Verdict)> {
    let (justified, known) = load_lists(corpus_dir)?;
    for config in configs {
        isc_accepts(config, scratch)?;
    }
    let mut outcomes = Vec::new();
    for config in configs {
        let started = super::now();
        let outcome = difftest_config(config, xdhcpd, scratch)?;
        progress(&format!(
            "{}: {} exchanges, {} requests ({} answered by ISC), {} differences ({:.1} s)",
            outcome.config,
            outcome.exchanges,
            outcome.steps,
            outcome.isc_answered,
            outcome.differences.len(),
            super::now().duration_since(started).as_secs_f64()
        ));
        outcomes.push(outcome);
    }
    let verdict = classify(&outcomes, &justified, &known);
    Ok((outcomes, verdict))
}

/// The corpus directory under a workspace root.
pub fn corpus_dir(workspace_root: &Path) -> PathBuf {
    workspace_root.join(CORPUS_DIR)
}

#[cfg(test)]
mod tests {
    #[test]
    fn fills_lease_times() {
        let text = "starts @now-60;\nends @now+3540;\ncltt @now;\n";
        let filled = super::fill_lease_times(text, 1_795_836_305).unwrap();
        assert_eq!(
            filled,
            "starts 6 2026/11/28 03:24:05;\nends 6 2026/11/28 04:24:05;\ncltt 6 2026/11/28 03:25:05;\n"
        );
        let dates = super::super::parse_lease_file(&format!("lease 10.0.0.1 {{\n{filled}}}\n"));
        assert_eq!(dates[0].starts, Some(1_795_836_245));
    }
}
