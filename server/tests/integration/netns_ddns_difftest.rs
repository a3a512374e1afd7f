//! Dynamic DNS, differential against ISC dhcpd 4.4 through BIND's zone contents: for each case
//! of [`CASES`] (a dhcpd.conf fragment and a client script in the difftest `.exchanges` form,
//! netns/difftest/script.rs), ISC dhcpd and xdhcpd each run in a lab of their own with a fresh
//! BIND 9 (netns/named.rs: forward zone `lab.test`, reverse zone `0.214.10.in-addr.arpa`, TSIG
//! hmac-sha256), the same scripted client (raw frames, fixed MACs and xids) talks to each, and
//! once DNS has settled the two servers' results are compared:
//!
//! - `dig AXFR` of both zones, SOA serial left out (each update increments it). Nothing else is
//!   normalised: same client, same algorithm, so the DHCID and TXT values must be the same;
//! - the DHCPACKs' message type, `yiaddr` and option 81 (RFC 4702 flags and RCODEs);
//! - the `set ddns-…` variables of each address's last block in the lease file.
//!
//! Some cases also say which records xdhcpd's zone must (not) hold, so that a behaviour both
//! servers share is pinned down too (RFC 4703 conflict detection: the second client claiming a
//! name is refused and the first keeps its records; with `update-conflict-detection false` the
//! second takes the name over).
//!
//! Needs root, /usr/sbin/dhcpd, /usr/sbin/named and dig. Run:
//! `REQUIRE_PRIVILEGED_TESTS=1 cargo test -p server --test integration netns_ddns_difftest::`.

use crate::common;
use crate::netns;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use netns::difftest::{self, compare, script};
use netns::named::{dhcpd_zone_statements, Named, ZoneFile, DIG, NAMED};
use netns::peers::{ServerKind, ServerSetup};
use netns::{DhcpConfig, Lab};

const LAB_CIDR: &str = "10.214.0.1/24";
const FORWARD_ZONE: &str = "lab.test";
const REVERSE_ZONE: &str = "0.214.10.in-addr.arpa";
const ISC_DHCPD: &str = "/usr/sbin/dhcpd";
/// How long the zones must stay unchanged to count as settled, and the bound of the wait.
const SETTLED_FOR: Duration = Duration::from_millis(3000);
const SETTLE_BOUND: Duration = Duration::from_secs(30);
/// Cases run at once.
const CASES_AT_ONCE: usize = 3;

/// One configuration and script.
struct Case {
    name: &'static str,
    /// `standard` or `interim`.
    style: &'static str,
    /// Global statements added to the base dhcpd.conf.
    conf: &'static str,
    /// The client script (`client` and `exchange` lines; `{fqdn:FLAGS:NAME}` is replaced by
    /// the hex of an option 81 value, see [`expand`]).
    script: &'static str,
    /// Records (as [`Named::zone_records`] prints them) xdhcpd's zones must hold.
    present: &'static [&'static str],
    /// Record prefixes xdhcpd's zones must not hold.
    absent: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "standard-host-name",
        style: "standard",
        conf: "",
        script: "client alpha mac=02:00:00:14:00:01 hostname=\"alpha\"\n\
                 exchange dora client=alpha\n discover\n request-selecting\n sleep 1\n \
                 request-renewing\n",
        present: &["alpha.lab.test. 300 IN A 10.214.0.100"],
        absent: &[],
    },
    Case {
        name: "interim-host-name",
        style: "interim",
        conf: "",
        script: "client alpha mac=02:00:00:14:00:01 client-id=01:02:00:00:14:00:01 \
                 hostname=\"alpha\"\n\
                 exchange dora client=alpha\n discover\n request-selecting\n",
        present: &["alpha.lab.test. 300 IN A 10.214.0.100"],
        absent: &[],
    },
    Case {
        // S bit set: the server updates A and PTR, with the host label of the client's name
        // (ISC) under ddns-domainname; one client in the canonical wire format (E bit), one
        // in ASCII.
        name: "fqdn-server-updates",
        style: "standard",
        conf: "",
        script: "client bravo mac=02:00:00:14:00:02 option.81={fqdn:05:bravo.elsewhere.test.}\n\
                 client charlie mac=02:00:00:14:00:03 option.81={fqdn:01:charlie}\n\
                 exchange one client=bravo\n discover\n request-selecting\n sleep 1\n\
                 exchange two client=charlie\n discover\n request-selecting\n",
        present: &[],
        absent: &[],
    },
    Case {
        // S bit clear: the client updates its own A record, the server only the PTR record.
        name: "fqdn-client-updates",
        style: "standard",
        conf: "",
        script: "client delta mac=02:00:00:14:00:04 option.81={fqdn:04:delta.lab.test.}\n\
                 exchange dora client=delta\n discover\n request-selecting\n",
        present: &[],
        absent: &["delta.lab.test."],
    },
    Case {
        // The same client, refused: the server updates both (and says so with the O bit).
        name: "deny-client-updates",
        style: "standard",
        conf: "deny client-updates;\n",
        script: "client delta mac=02:00:00:14:00:04 option.81={fqdn:04:delta.lab.test.}\n\
                 exchange dora client=delta\n discover\n request-selecting\n",
        present: &[],
        absent: &[],
    },
    Case {
        // Names from the configuration: an expression globally, a text in a host.
        name: "configured-names",
        style: "standard",
        conf: "ddns-hostname = concat(\"dhcp-\", binary-to-ascii(10, 8, \"-\", leased-address));\n\
               ddns-domainname \"dyn.lab.test\";\n\
               host printer { hardware ethernet 02:00:00:14:00:06; ddns-hostname \"printer\"; }\n",
        script: "client echo mac=02:00:00:14:00:05 hostname=\"echo\"\n\
                 client printer mac=02:00:00:14:00:06 hostname=\"ignored\"\n\
                 exchange one client=echo\n discover\n request-selecting\n sleep 1\n\
                 exchange two client=printer\n discover\n request-selecting\n",
        present: &["dhcp-10-214-0-100.dyn.lab.test. 300 IN A 10.214.0.100"],
        absent: &[],
    },
    Case {
        // Without update-optimization each renewal updates again; a new host name replaces
        // the old one (removed first).
        name: "no-update-optimization",
        style: "standard",
        conf: "update-optimization off;\n",
        script: "client foxtrot mac=02:00:00:14:00:07 hostname=\"foxtrot\"\n\
                 exchange dora client=foxtrot\n discover\n request-selecting\n sleep 1\n \
                 request-renewing\n sleep 1\n request-renewing hostname=\"golf\"\n",
        present: &[],
        absent: &["foxtrot.lab.test."],
    },
    Case {
        name: "ddns-ttl",
        style: "interim",
        conf: "ddns-ttl 1234;\n",
        script: "client hotel mac=02:00:00:14:00:08 hostname=\"hotel\"\n\
                 exchange dora client=hotel\n discover\n request-selecting\n",
        present: &["hotel.lab.test. 1234 IN A 10.214.0.100"],
        absent: &[],
    },
    Case {
        // A release removes A, guard and PTR; another client's names stay.
        name: "release",
        style: "standard",
        conf: "",
        script: "client india mac=02:00:00:14:00:09 hostname=\"india\"\n\
                 client juliet mac=02:00:00:14:00:0a hostname=\"juliet\"\n\
                 exchange one client=india\n discover\n request-selecting\n\
                 exchange two client=juliet\n discover\n request-selecting\n sleep 1\n\
                 exchange three client=india\n release ciaddr=10.214.0.100 server-id=10.214.0.1\n",
        present: &[],
        absent: &["india.lab.test.", "100.0.214.10.in-addr.arpa."],
    },
    Case {
        // RFC 4703 §5.3.1: the second client claiming a name finds another client's DHCID
        // and is refused (no A record, and no PTR record either); the first keeps its
        // records, also when the second releases its lease.
        name: "conflict-detection",
        style: "standard",
        conf: "",
        script: "client kilo mac=02:00:00:14:00:0b hostname=\"shared\"\n\
                 client lima mac=02:00:00:14:00:0c hostname=\"shared\"\n\
                 exchange one client=kilo\n discover\n request-selecting\n sleep 1\n\
                 exchange two client=lima\n discover\n request-selecting\n sleep 1\n \
                 release\n",
        present: &[
            "shared.lab.test. 300 IN A 10.214.0.100",
            "100.0.214.10.in-addr.arpa. 300 IN PTR shared.lab.test.",
        ],
        absent: &[
            "shared.lab.test. 300 IN A 10.214.0.101",
            "101.0.214.10.in-addr.arpa.",
        ],
    },
    Case {
        // update-conflict-detection false: the second client's add replaces the A record and
        // the DHCID (ISC's conflict override).
        name: "no-conflict-detection",
        style: "standard",
        conf: "update-conflict-detection false;\n",
        script: "client kilo mac=02:00:00:14:00:0b hostname=\"shared\"\n\
                 client lima mac=02:00:00:14:00:0c hostname=\"shared\"\n\
                 exchange one client=kilo\n discover\n request-selecting\n sleep 1\n\
                 exchange two client=lima\n discover\n request-selecting\n",
        present: &["shared.lab.test. 300 IN A 10.214.0.101"],
        absent: &["shared.lab.test. 300 IN A 10.214.0.100"],
    },
    Case {
        // update-static-leases (dhcpd.conf(5)): a fixed address's names are added at every
        // DHCPACK, a new name does not remove the old one, and a release removes nothing (no
        // lease record keeps the names: ISC "will not delete the record when it is not in
        // use").
        name: "update-static-leases",
        style: "standard",
        conf: "update-static-leases on;\n\
               host fixed { hardware ethernet 02:00:00:14:00:0d; fixed-address 10.214.0.50; }\n",
        script: "client mike mac=02:00:00:14:00:0d hostname=\"static1\"\n\
                 exchange dora client=mike\n discover\n request-selecting\n sleep 1\n \
                 request-renewing\n sleep 1\n request-renewing hostname=\"static2\"\n sleep 1\n \
                 release\n",
        present: &[
            "static1.lab.test. 300 IN A 10.214.0.50",
            "static2.lab.test. 300 IN A 10.214.0.50",
            "50.0.214.10.in-addr.arpa. 300 IN PTR static2.lab.test.",
        ],
        absent: &[],
    },
    Case {
        // The same without update-static-leases: no update, no option 81 in the DHCPACK.
        name: "static-lease-without-updates",
        style: "standard",
        conf: "host fixed { hardware ethernet 02:00:00:14:00:0d; fixed-address 10.214.0.50; }\n",
        script: "client mike mac=02:00:00:14:00:0d hostname=\"static1\" \
                 option.81={fqdn:05:static1.lab.test.}\n\
                 exchange dora client=mike\n discover\n request-selecting\n",
        present: &[],
        absent: &["static1.lab.test.", "50.0.214.10.in-addr.arpa."],
    },
    Case {
        // A fixed address whose client updates its own A record: ISC skips its static-lease
        // test and adds the PTR record even without update-static-leases.
        name: "static-lease-client-updates",
        style: "interim",
        conf: "host fixed { hardware ethernet 02:00:00:14:00:0d; fixed-address 10.214.0.50; }\n",
        script: "client mike mac=02:00:00:14:00:0d option.81={fqdn:04:mike.lab.test.}\n\
                 exchange dora client=mike\n discover\n request-selecting\n",
        present: &["50.0.214.10.in-addr.arpa. 300 IN PTR mike.lab.test."],
        absent: &["mike.lab.test."],
    },
];

/// An option 81 value (RFC 4702 §2): flags, RCODE1 and RCODE2 (255, as a client sends them),
/// then the name: in the canonical wire format when the E bit (4) is set, else ASCII.
fn fqdn_option(flags: u8, name: &str) -> String {
    let mut value = vec![flags, 255, 255];
    if flags & 4 != 0 {
        for label in name.split('.').filter(|label| !label.is_empty()) {
            value.push(label.len() as u8);
            value.extend_from_slice(label.as_bytes());
        }
        if name.ends_with('.') {
            value.push(0);
        }
    } else {
        value.extend_from_slice(name.as_bytes());
    }
    value
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The script with each `{fqdn:FLAGS:NAME}` replaced.
fn expand(script: &str) -> Result<String> {
    let mut out = String::new();
    let mut rest = script;
    while let Some(start) = rest.find("{fqdn:") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').context("unterminated {fqdn:…}")? + start;
        let (flags, name) = rest[start + 6..end]
            .split_once(':')
            .context("{fqdn:FLAGS:NAME}")?;
        out.push_str(&fqdn_option(u8::from_str_radix(flags, 16)?, name));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn dhcpd_conf(case: &Case) -> String {
    format!(
        "authoritative;\n\
         ping-check false;\n\
         default-lease-time 600;\n\
         max-lease-time 7200;\n\
         ddns-update-style {style};\n\
         option domain-name \"lab.test\";\n\
         ddns-domainname \"lab.test\";\n\
         {zones}\
         {conf}\
         subnet 10.214.0.0 netmask 255.255.255.0 {{\n\
           range 10.214.0.100 10.214.0.149;\n\
           option routers 10.214.0.1;\n\
         }}\n",
        style = case.style,
        zones = dhcpd_zone_statements(&[FORWARD_ZONE, REVERSE_ZONE]),
        conf = case.conf,
    )
}

/// What one server left behind.
struct Run {
    /// Forward then reverse zone records.
    zones: Vec<String>,
    /// `exchange/step: TYPE yiaddr option-81` of each reply.
    replies: Vec<String>,
    /// `address: set ddns-…` lines of each address's last lease block.
    variables: Vec<String>,
    log: String,
}

/// Reads both zones until they have not changed for [`SETTLED_FOR`].
fn settled_zones(named: &Named<'_>) -> Result<Vec<String>> {
    let read = || -> Result<Vec<String>> {
        let mut records = named.zone_records(FORWARD_ZONE)?;
        records.extend(named.zone_records(REVERSE_ZONE)?);
        Ok(records)
    };
    let deadline = netns::now() + SETTLE_BOUND;
    let mut last = read()?;
    let mut since = netns::now();
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let records = read()?;
        if records != last {
            last = records;
            since = netns::now();
        } else if netns::now() - since >= SETTLED_FOR {
            return Ok(last);
        }
        if netns::now() >= deadline {
            bail!("the zones kept changing for {SETTLE_BOUND:?}");
        }
    }
}

fn reply_summaries(client_log: &str) -> Result<Vec<String>> {
    Ok(difftest::parse_client_output(client_log)?
        .into_iter()
        .map(|(step, reply)| {
            let summary = match reply.as_ref().map(compare::decode) {
                None => "none".to_owned(),
                Some(Err(error)) => format!("undecodable: {error}"),
                Some(Ok(decoded)) => {
                    let message = decoded
                        .options
                        .get(&53)
                        .and_then(|value| value.first().copied())
                        .map_or("BOOTP", compare::message_name);
                    let bootp = &reply.as_ref().map(|reply| &reply.bootp[..]).unwrap_or(&[]);
                    let yiaddr =
                        std::net::Ipv4Addr::new(bootp[16], bootp[17], bootp[18], bootp[19]);
                    let fqdn = decoded
                        .options
                        .get(&81)
                        .map_or("-".to_owned(), |value| compare::hex(value));
                    format!("{message} yiaddr {yiaddr} option-81 {fqdn}")
                }
            };
            format!("{step}: {summary}")
        })
        .collect())
}

/// `ADDRESS: set ddns-…;` of each address's last block in a dhcpd.leases text, sorted.
fn ddns_variables(lease_text: &str) -> Vec<String> {
    let mut last_blocks: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in lease_text.lines() {
        let line = line.trim();
        if let Some(address) = line
            .strip_prefix("lease ")
            .and_then(|rest| rest.strip_suffix(" {"))
        {
            current = Some((address.to_owned(), Vec::new()));
        } else if line == "}" {
            if let Some((address, variables)) = current.take() {
                last_blocks.insert(address, variables);
            }
        } else if let Some((_, variables)) = current.as_mut() {
            if line.starts_with("set ddns-") {
                variables.push(line.to_owned());
            }
        }
    }
    let mut lines: Vec<String> = last_blocks
        .into_iter()
        .flat_map(|(address, mut variables)| {
            variables.sort();
            variables
                .into_iter()
                .map(move |line| format!("{address}: {line}"))
        })
        .collect();
    lines.sort();
    lines
}

fn run_case(case: &Case, config: &script::CorpusConfig, kind: ServerKind) -> Result<Run> {
    let lab = Lab::new(LAB_CIDR)?;
    let named = Named::start(
        &lab.server,
        lab.dir.path(),
        &[
            ZoneFile {
                name: FORWARD_ZONE,
                records: "ns IN A 127.0.0.1\n",
            },
            ZoneFile {
                name: REVERSE_ZONE,
                records: "",
            },
        ],
    )?;
    let mut server = ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind: kind.clone(),
        config: DhcpConfig::lab_default(),
        interface: lab.server_if.clone(),
        relayed: false,
        dhcpd_conf: Some(config.conf_text.clone()),
    }
    .start()
    .with_context(|| format!("start {} on {}", kind.label(), case.name))?;
    let client_log = difftest::run_script(&lab, config, &mut server)?;
    let zones = settled_zones(&named)
        .with_context(|| format!("{} on {}: {}", kind.label(), case.name, named.logs()))?;
    server
        .proc
        .check_running()
        .with_context(|| format!("{} on {}", kind.label(), case.name))?;
    let lease_text = std::fs::read_to_string(&server.lease_file).unwrap_or_default();
    Ok(Run {
        zones,
        replies: reply_summaries(&client_log)?,
        variables: ddns_variables(&lease_text),
        log: format!(
            "{} log:\n{}\nnamed log:\n{}",
            kind.label(),
            server.proc.log_text(),
            named.logs()
        ),
    })
}

/// The differences between ISC's and xdhcpd's lines (`-` ISC only, `+` xdhcpd only).
fn line_differences(what: &str, isc: &[String], ours: &[String]) -> Vec<String> {
    let mut differences = Vec::new();
    for line in isc.iter().filter(|line| !ours.contains(line)) {
        differences.push(format!("{what}: - {line}"));
    }
    for line in ours.iter().filter(|line| !isc.contains(line)) {
        differences.push(format!("{what}: + {line}"));
    }
    differences
}

/// Runs one case against both servers (at once: the labs share nothing) and returns what
/// differs or is missing; empty when they agree.
fn check_case(case: &Case) -> Result<Vec<String>> {
    let config = script::parse_config(case.name, &dhcpd_conf(case), &expand(case.script)?)?;
    let xdhcpd = ServerKind::Xdhcpd {
        binary: env!("CARGO_BIN_EXE_xdhcpd").into(),
        xdp: false,
    };
    let (isc, ours) = std::thread::scope(|threads| {
        let isc = threads.spawn(|| run_case(case, &config, ServerKind::IscDhcpd));
        let ours = run_case(case, &config, xdhcpd);
        (isc.join(), ours)
    });
    let isc = isc.map_err(|_| anyhow::anyhow!("the ISC run panicked"))??;
    let ours = ours?;
    let mut problems = line_differences("zone", &isc.zones, &ours.zones);
    problems.extend(line_differences("reply", &isc.replies, &ours.replies));
    problems.extend(line_differences("lease", &isc.variables, &ours.variables));
    for record in case.present {
        if !ours.zones.iter().any(|line| line == record) {
            problems.push(format!("xdhcpd's zone lacks `{record}`"));
        }
    }
    for prefix in case.absent {
        if let Some(line) = ours.zones.iter().find(|line| line.starts_with(prefix)) {
            problems.push(format!("xdhcpd's zone holds `{line}`"));
        }
    }
    if !problems.is_empty() {
        problems.push(format!(
            "ISC's zones:\n  {}\nxdhcpd's zones:\n  {}\nISC's replies:\n  {}\n{}\n{}",
            isc.zones.join("\n  "),
            ours.zones.join("\n  "),
            isc.replies.join("\n  "),
            isc.log,
            ours.log
        ));
    }
    Ok(problems)
}

#[test]
fn ddns_zone_contents_match_isc_dhcpd() {
    let test = "ddns_zone_contents_match_isc_dhcpd";
    if !common::privileged(test) {
        return;
    }
    let needed = [ISC_DHCPD, NAMED, DIG];
    if let Some(missing) = needed.iter().find(|path| !Path::new(path).exists()) {
        assert!(
            std::env::var("REQUIRE_PRIVILEGED_TESTS").as_deref() != Ok("1"),
            "{test}: needs {missing}"
        );
        eprintln!("SKIPPED {test}: needs {missing}");
        return;
    }
    let only = std::env::var("XDH_DDNS_CASE").ok();
    let cases: Vec<&Case> = CASES
        .iter()
        .filter(|case| only.as_deref().is_none_or(|only| only == case.name))
        .collect();
    let mut failures = Vec::new();
    // A few cases at once (each is two labs that share nothing): most of a case is waiting.
    for chunk in cases.chunks(CASES_AT_ONCE) {
        let results: Vec<(&Case, Result<Vec<String>>)> = std::thread::scope(|threads| {
            let running: Vec<_> = chunk
                .iter()
                .map(|case| (*case, threads.spawn(|| check_case(case))))
                .collect();
            running
                .into_iter()
                .map(|(case, thread)| {
                    let result = thread
                        .join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("the case panicked")));
                    (case, result)
                })
                .collect()
        });
        for (case, result) in results {
            match result {
                Ok(problems) if problems.is_empty() => {
                    eprintln!("{test}: {} agrees", case.name)
                }
                Ok(problems) => failures.push(format!("{}:\n{}", case.name, problems.join("\n"))),
                Err(error) => failures.push(format!("{}: {error:#}", case.name)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
