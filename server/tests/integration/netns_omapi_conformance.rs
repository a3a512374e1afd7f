//! Tier-3 OMAPI conformance (needs root): the checked-in omshell script
//! `tests/omapi/conformance.omshell` is run against a real ISC dhcpd 4.4 and against xdhcpd, each
//! in private network namespaces after real dhclients got leases from it; the two transcripts,
//! normalised by [`normalise`], must agree line by line except for the entries of
//! `tests/omapi_known_differences.md`. Both transcripts are printed (visible with
//! `--nocapture`, and always on failure).

use crate::common;
use crate::netns;

use anyhow::{bail, Context as _, Result};
use netns::peers::{write_event_script, Client, Server, ServerKind, ServerSetup};
use netns::{wait_for, DhcpConfig, Lab, Netns, Proc};
use std::net::Ipv4Addr;
use std::time::Duration;

const SCRIPT: &str = include_str!("../omapi/conformance.omshell");
const KNOWN_DIFFERENCES: &str = include_str!("../omapi_known_differences.md");

const SERVER_CIDR: &str = "10.213.0.1/24";
const OMAPI_PORT: u16 = 7911;
const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZg==";
const WRONG_SECRET: &str = "d3JvbmcgZGhjcCBzZWNyZXQ=";
const OMSHELL: &str = "/usr/bin/omshell";

/// Client A and B share a MAC (two leases, told apart by client id); C has its own.
const MAC_AB: &str = "02:00:00:00:0a:01";
const MAC_C: &str = "02:00:00:00:0a:02";

/// The same dhcpd.conf for both servers: a three-address pool, one address per client.
fn dhcpd_conf() -> String {
    format!(
        "# omapi conformance (netns_omapi_conformance.rs)\n\
         authoritative;\nddns-update-style none;\nping-check false;\n\
         default-lease-time 600;\nmax-lease-time 7200;\n\
         key omapi_key {{ algorithm hmac-md5; secret \"{SECRET}\"; }};\n\
         omapi-port {OMAPI_PORT};\nomapi-key omapi_key;\n\
         subnet 10.213.0.0 netmask 255.255.255.0 {{\n  \
         range 10.213.0.100 10.213.0.102;\n  option routers 10.213.0.1;\n}}\n"
    )
}

/// `dhclient -d -1` with an optional client identifier; returns the address it was bound to and
/// kills it (no RELEASE: the lease stays active on the server).
fn dhclient_lease(
    lab: &Lab,
    interface: &str,
    tag: &str,
    client_id: Option<&str>,
) -> Result<Ipv4Addr> {
    let dir = lab.dir.path();
    let events = dir.join(format!("dhclient-{tag}.events"));
    let script = dir.join(format!("dhclient-{tag}.sh"));
    write_event_script(&script, &events, false)?;
    let config = dir.join(format!("dhclient-{tag}.conf"));
    let mut text = String::from("timeout 30;\nretry 1;\n");
    if let Some(id) = client_id {
        text.push_str(&format!("send dhcp-client-identifier \"{id}\";\n"));
    }
    std::fs::write(&config, text)?;
    let lease_file = dir.join(format!("dhclient-{tag}.leases"));
    let mut command = lab.client.command("/usr/sbin/dhclient");
    command
        .args(["-4", "-d", "-1", "-v", "-cf"])
        .arg(&config)
        .arg("-sf")
        .arg(&script)
        .arg("-pf")
        .arg(dir.join(format!("dhclient-{tag}.pid")))
        .arg("-lf")
        .arg(&lease_file)
        .arg(interface);
    let proc = Proc::spawn("dhclient", command, dir.join(format!("dhclient-{tag}.log")))?;
    let mut client = Client {
        proc,
        events,
        lease_file,
    };
    client.wait_event(&["BOUND"], 1, Duration::from_secs(30))
}

/// Whether something in `netns` listens on TCP `port` (state 0A in /proc/net/tcp).
fn tcp_listening(netns: &Netns, port: u16) -> Result<bool> {
    let table = netns.exec_ok(&["cat", "/proc/net/tcp"])?;
    let needle = format!(":{port:04X}");
    Ok(table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1).is_some_and(|local| local.ends_with(&needle)) && fields.get(3) == Some(&"0A")
    }))
}

/// The script's sessions, placeholders filled in and comments dropped: (name, omshell input).
fn sessions(lease_a: Ipv4Addr, lease_c: Ipv4Addr) -> Vec<(String, String)> {
    let mut sessions: Vec<(String, String)> = Vec::new();
    for line in SCRIPT.lines() {
        if let Some(name) = line.strip_prefix("### session ") {
            sessions.push((name.trim().to_owned(), String::new()));
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some((_, input)) = sessions.last_mut() {
            let line = line
                .replace("@PORT@", &OMAPI_PORT.to_string())
                .replace("@WRONG_SECRET@", WRONG_SECRET)
                .replace("@SECRET@", SECRET)
                .replace("@LEASE_A@", &lease_a.to_string())
                .replace("@LEASE_C@", &lease_c.to_string());
            input.push_str(&line);
            input.push('\n');
        }
    }
    sessions
}

/// One server's run: the leases the clients got and the raw transcript.
struct Run {
    label: &'static str,
    leases: [Ipv4Addr; 3],
    transcript: String,
}

fn run_against(kind: ServerKind) -> Result<Run> {
    let label = kind.label();
    let lab = Lab::new(SERVER_CIDR)?;
    lab.set_client_mac(MAC_AB)?;
    lab.add_client_macvlan("xc1", MAC_C)?;
    let mut server: Server = ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind,
        config: DhcpConfig::lab_default(),
        interface: lab.server_if.clone(),
        relayed: false,
        dhcpd_conf: Some(dhcpd_conf()),
    }
    .start()?;
    let log = |server: &Server| format!("{label} log:\n{}", server.proc.log_text());
    let result = (|| -> Result<Run> {
        let netns = &lab.server;
        wait_for(
            &format!("{label} to listen on OMAPI port {OMAPI_PORT}"),
            Duration::from_secs(20),
            || {
                server.proc.check_running()?;
                Ok(tcp_listening(netns, OMAPI_PORT)?.then_some(()))
            },
        )?;
        let lease_a = dhclient_lease(&lab, &lab.client_if, "a", Some("conf-a"))?;
        let lease_b = dhclient_lease(&lab, &lab.client_if, "b", Some("conf-b"))?;
        let lease_c = dhclient_lease(&lab, "xc1", "c", None)?;
        if lease_a == lease_b {
            bail!("{label}: client ids conf-a and conf-b got the same lease {lease_a}");
        }
        let mut transcript = String::new();
        for (name, input) in sessions(lease_a, lease_c) {
            transcript.push_str(&format!("### session {name}\n"));
            transcript.push_str(&netns.omshell(&input)?);
            transcript.push('\n');
        }
        server.proc.check_running()?;
        Ok(Run {
            label,
            leases: [lease_a, lease_b, lease_c],
            transcript,
        })
    })();
    result.with_context(|| log(&server))
}

/// The normaliser: what may differ between two correct servers, replaced by a placeholder.
/// - omshell splits its output at each `> ` prompt; each prompt starts a line here, so the
///   transcripts compare line by line whatever the prompts were glued to;
/// - lease times (`starts`, `ends`, `cltt`, `tstp`, `tsfp`, `atsfp`) that are not zero become
///   `<time>`: they are wall-clock times of the run;
/// - `subnet`, `pool` (handles of other objects) become `<handle>`: handles are numbered in the
///   order each server happens to create objects;
/// - the addresses the clients got, as omshell prints them (colon-hex), become `<lease-a>`,
///   `<lease-b>`, `<lease-c>`: each server chooses its own free address.
fn normalise(transcript: &str, leases: &[Ipv4Addr; 3]) -> Vec<String> {
    let hex = |address: &Ipv4Addr| {
        address
            .octets()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let mut lines = Vec::new();
    for raw in transcript.replace("> ", "\n> ").lines() {
        let mut line = raw.trim_end().to_owned();
        if line.is_empty() {
            continue;
        }
        if let Some((name, value)) = line.clone().split_once(" = ") {
            let attribute = name.trim_start_matches("> ");
            let is_time = matches!(
                attribute,
                "starts" | "ends" | "cltt" | "tstp" | "tsfp" | "atsfp"
            );
            if is_time && value != "00:00:00:00" {
                line = format!("{name} = <time>");
            }
            if matches!(attribute, "subnet" | "pool") {
                line = format!("{name} = <handle>");
            }
        }
        for (address, tag) in leases.iter().zip(["<lease-a>", "<lease-b>", "<lease-c>"]) {
            line = line.replace(&hex(address), tag);
        }
        lines.push(line);
    }
    lines
}

/// One row of the known-differences table: ISC's line and ours (`*` matches any text; `None`
/// stands for "no line"), and why.
#[derive(Debug)]
struct KnownDifference {
    isc: Option<String>,
    xdhcpd: Option<String>,
    reason: String,
}

/// Rows of the table under `## Transcript differences` in omapi_known_differences.md:
/// `| \`ISC line\` | \`xdhcpd line\` | reason |`, `(none)` for an absent line.
fn known_differences() -> Vec<KnownDifference> {
    let section = KNOWN_DIFFERENCES
        .split("## Transcript differences")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap_or_default();
    let cell = |text: &str| {
        let text = text.trim();
        (text != "(none)").then(|| text.trim_matches('`').to_owned())
    };
    section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().strip_prefix('|')?.split('|').collect();
            let [isc, ours, reason, ..] = cells.as_slice() else {
                return None;
            };
            if !isc.trim().starts_with('`') && isc.trim() != "(none)" {
                return None; // header and separator rows
            }
            Some(KnownDifference {
                isc: cell(isc),
                xdhcpd: cell(ours),
                reason: reason.trim().to_owned(),
            })
        })
        .collect()
}

/// Glob match with `*` for any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (index, part) in parts.iter().enumerate() {
        if index + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

fn matches(pattern: &Option<String>, line: Option<&str>) -> bool {
    match (pattern, line) {
        (None, None) => true,
        (Some(pattern), Some(line)) => glob(pattern, line),
        _ => false,
    }
}

/// Line diff (longest common subsequence): the differing lines as (ISC line, xdhcpd line)
/// pairs, paired in order inside each run of differences.
fn differences<'a>(
    isc: &'a [String],
    ours: &'a [String],
) -> Vec<(Option<&'a str>, Option<&'a str>)> {
    let (n, m) = (isc.len(), ours.len());
    let mut common = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if isc[i] == ours[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let mut pairs = Vec::new();
    let (mut removed, mut added): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    let mut flush = |removed: &mut Vec<&'a str>, added: &mut Vec<&'a str>| {
        for index in 0..removed.len().max(added.len()) {
            pairs.push((removed.get(index).copied(), added.get(index).copied()));
        }
        removed.clear();
        added.clear();
    };
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && isc[i] == ours[j] {
            flush(&mut removed, &mut added);
            i += 1;
            j += 1;
        } else if j == m || (i < n && common[i + 1][j] >= common[i][j + 1]) {
            removed.push(&isc[i]);
            i += 1;
        } else {
            added.push(&ours[j]);
            j += 1;
        }
    }
    flush(&mut removed, &mut added);
    pairs
}

#[test]
fn omshell_script_gives_the_same_transcript_as_isc_dhcpd() -> Result<()> {
    if !common::privileged("omshell_script_gives_the_same_transcript_as_isc_dhcpd") {
        return Ok(());
    }
    for tool in [OMSHELL, "/usr/sbin/dhcpd", "/usr/sbin/dhclient"] {
        if !std::path::Path::new(tool).exists() {
            bail!("{tool} is required (isc-dhcp-client, isc-dhcp-server)");
        }
    }
    let isc = run_against(ServerKind::IscDhcpd)?;
    let ours = run_against(ServerKind::Xdhcpd {
        binary: env!("CARGO_BIN_EXE_xdhcpd").into(),
        xdp: false,
    })?;
    let isc_lines = normalise(&isc.transcript, &isc.leases);
    let our_lines = normalise(&ours.transcript, &ours.leases);
    let show = |run: &Run, lines: &[String]| {
        format!(
            "==== {} (leases {:?}), normalised ====\n{}\n",
            run.label,
            run.leases,
            lines.join("\n")
        )
    };
    let both = format!("{}{}", show(&isc, &isc_lines), show(&ours, &our_lines));
    eprintln!("{both}");

    let known = known_differences();
    assert!(
        !known.is_empty(),
        "no rows parsed from omapi_known_differences.md"
    );
    let mut unexplained = Vec::new();
    for (isc_line, our_line) in differences(&isc_lines, &our_lines) {
        match known
            .iter()
            .find(|entry| matches(&entry.isc, isc_line) && matches(&entry.xdhcpd, our_line))
        {
            Some(entry) => eprintln!(
                "known difference: ISC {isc_line:?} / xdhcpd {our_line:?}: {}",
                entry.reason
            ),
            None => unexplained.push(format!("ISC {isc_line:?} / xdhcpd {our_line:?}")),
        }
    }
    assert!(
        unexplained.is_empty(),
        "differences not in omapi_known_differences.md:\n{}\n\n{both}",
        unexplained.join("\n")
    );
    Ok(())
}

#[test]
fn the_normaliser_and_the_difference_list_work() {
    let leases = [
        Ipv4Addr::new(10, 213, 0, 100),
        Ipv4Addr::new(10, 213, 0, 101),
        Ipv4Addr::new(10, 213, 0, 102),
    ];
    let lines = normalise(
        "> obj: lease\nip-address = 0a:d5:00:66\nends = 6b:0a:65:89\ntstp = 00:00:00:00\n\
         subnet = 00:00:00:03\n> > can't open object: not found\n",
        &leases,
    );
    assert_eq!(
        lines,
        [
            "> obj: lease",
            "ip-address = <lease-c>",
            "ends = <time>",
            "tstp = 00:00:00:00",
            "subnet = <handle>",
            ">",
            "> can't open object: not found"
        ]
    );
    assert!(glob("my-note = *:*:*:*", "my-note = ca:3a:f1:b0"));
    assert!(!glob("my-note = *:*:*:*", "my-note = \"hello\""));
    assert!(glob("my-note = \"*\"", "my-note = \"a#v`\""));
    assert!(glob("a*", "a"));
    let isc: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let ours: Vec<String> = ["a", "x", "c", "d"].map(String::from).to_vec();
    assert_eq!(
        differences(&isc, &ours),
        [(Some("b"), Some("x")), (None, Some("d"))]
    );
    assert!(!known_differences().is_empty());
}

/// The dhcpd.conf of the renewal runs: 4 s leases (dhclient renews every 2 s), every renewal
/// decided afresh (`dhcp-cache-threshold 0`, for ISC and xdhcpd alike).
fn renewal_conf() -> String {
    format!(
        "# omapi change then renewal (netns_omapi_conformance.rs)\n\
         authoritative;\nddns-update-style none;\nping-check false;\n\
         default-lease-time 4;\nmax-lease-time 4;\ndhcp-cache-threshold 0;\n\
         key omapi_key {{ algorithm hmac-md5; secret \"{SECRET}\"; }};\n\
         omapi-port {OMAPI_PORT};\nomapi-key omapi_key;\n\
         subnet 10.213.0.0 netmask 255.255.255.0 {{\n  \
         range 10.213.0.100 10.213.0.102;\n  option routers 10.213.0.1;\n}}\n"
    )
}

/// The server's answer (`DHCPACK on A` / `DHCPNAK on A`) to the first DHCPREQUEST for
/// `address` logged after byte `from` of `log`, and the address a DHCPACK gave.
fn answer_after(log: &str, from: usize, address: Ipv4Addr) -> Option<String> {
    let tail = log.get(from..)?;
    let request = tail.find(&format!("DHCPREQUEST for {address}"))?;
    tail.get(request..)?.lines().find_map(|line| {
        ["DHCPACK on", "DHCPNAK on"].iter().find_map(|word| {
            let at = line.find(word)?;
            Some(
                line.get(at..)?
                    .split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        })
    })
}

/// One server: a dhclient binds, an operator makes `change` to its lease over OMAPI, and the
/// answer to the client's next DHCPREQUEST is returned, as the server logged it.
fn renewal_after_change(kind: ServerKind, change: &str) -> Result<(Ipv4Addr, String)> {
    let label = kind.label();
    let lab = Lab::new(SERVER_CIDR)?;
    let mut server: Server = ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind,
        config: DhcpConfig::lab_default(),
        interface: lab.server_if.clone(),
        relayed: false,
        dhcpd_conf: Some(renewal_conf()),
    }
    .start()?;
    let result = (|| -> Result<(Ipv4Addr, String)> {
        wait_for(
            &format!("{label} to listen on OMAPI port {OMAPI_PORT}"),
            Duration::from_secs(20),
            || {
                server.proc.check_running()?;
                Ok(tcp_listening(&lab.server, OMAPI_PORT)?.then_some(()))
            },
        )?;
        let mut client =
            netns::peers::start_dhclient(&lab.client, lab.dir.path(), &lab.client_if, true)?;
        let address = client.wait_event(&["BOUND"], 1, Duration::from_secs(30))?;
        // One renewal first, so that the lease is a renewed one, as in the field.
        client.wait_event(&["RENEW"], 1, Duration::from_secs(10))?;
        let transcript = lab.server.omshell(&format!(
            "server 127.0.0.1\nport {OMAPI_PORT}\nkey omapi_key {SECRET}\nconnect\nnew lease\n\
             set ip-address = {address}\nopen\n{change}\nupdate\n"
        ))?;
        if transcript.contains("can't") || !transcript.contains("ip-address") {
            bail!("omshell `{change}` failed:\n{transcript}");
        }
        let from = server.proc.log_text().len();
        let answer = wait_for(
            &format!("{label}: the client's next DHCPREQUEST answered"),
            Duration::from_secs(15),
            || {
                server.proc.check_running()?;
                Ok(answer_after(&server.proc.log_text(), from, address))
            },
        )?;
        client.proc.kill();
        Ok((address, answer))
    })();
    result.with_context(|| format!("{label} log:\n{}", server.proc.log_text()))
}

/// Issue 9's OMAPI change, compared with ISC: a lease freed (`set state = 1`) or ended (`set
/// ends = 0`) by an operator while its client renews; the client's next DHCPREQUEST gets the
/// answer ISC dhcpd 4.4 gives (the same message type, for the same address).
#[test]
fn a_renewal_after_an_omapi_change_is_answered_as_isc_answers_it() -> Result<()> {
    if !common::privileged("a_renewal_after_an_omapi_change_is_answered_as_isc_answers_it") {
        return Ok(());
    }
    for tool in [OMSHELL, "/usr/sbin/dhcpd", "/usr/sbin/dhclient"] {
        if !std::path::Path::new(tool).exists() {
            bail!("{tool} is required (isc-dhcp-client, isc-dhcp-server)");
        }
    }
    for change in ["set state = 1", "set ends = 0"] {
        let (isc_address, isc) = renewal_after_change(ServerKind::IscDhcpd, change)?;
        let (our_address, ours) = renewal_after_change(
            ServerKind::Xdhcpd {
                binary: env!("CARGO_BIN_EXE_xdhcpd").into(),
                xdp: false,
            },
            change,
        )?;
        eprintln!("after `{change}`: ISC dhcpd 4.4 `{isc}`, xdhcpd `{ours}`");
        assert_eq!(
            ours.replace(&our_address.to_string(), "<lease>"),
            isc.replace(&isc_address.to_string(), "<lease>"),
            "the answer to the renewal after `{change}` differs from ISC's"
        );
    }
    Ok(())
}
