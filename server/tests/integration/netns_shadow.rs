//! Shadow mode (`xdhcpd --shadow`, server/src/shadow/) beside a real ISC dhcpd 4.4 serving real
//! clients (dhclient, busybox udhcpc, perfdhcp as a relay), in the lab's two namespaces:
//!
//! - the same dhcpd.conf for both: exchanges are compared and none differs (the `secs` field,
//!   which ISC copies from the request, counts as justified, as in the differential tests),
//!   also after ISC restarts and rewrites its lease file;
//! - xdhcpd given another `default-lease-time`: the difference is reported on option 51;
//! - xdhcpd alone (no ISC): a client's DISCOVERs get no answer, the server interface's transmit
//!   counter does not move, no UDP socket is bound, and the lease file is left byte for byte.
//!
//! Run: `cargo test -p server --test integration netns_shadow::` as root (skipped otherwise;
//! `REQUIRE_PRIVILEGED_TESTS=1` makes a missing capability fail). Each report is printed.

use crate::common;
use crate::netns;

use anyhow::{bail, Context as _, Result};
use netns::peers::{start_dhclient, start_udhcpc, Perfdhcp, ServerKind, ServerSetup};
use netns::{wait_for, DhcpConfig, Lab, Proc, Subnet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SERVER_CIDR: &str = "10.213.0.1/24";
const SERVER_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 1);
/// perfdhcp's relay address (giaddr), in the relayed subnet.
const RELAY_ADDRESS: &str = "10.214.0.1";
/// Shadow mode's metrics endpoint, inside the server namespace.
const METRICS: &str = "127.0.0.1:9169";

fn xdhcpd() -> PathBuf {
    env!("CARGO_BIN_EXE_xdhcpd").into()
}

/// The directly attached subnet with a pool for dhclient and udhcpc, and a relayed one for
/// perfdhcp.
fn config(default_lease_time: u32) -> DhcpConfig {
    DhcpConfig {
        subnets: vec![
            Subnet {
                network: Ipv4Addr::new(10, 213, 0, 0),
                prefix_len: 24,
                range: Some((
                    Ipv4Addr::new(10, 213, 0, 100),
                    Ipv4Addr::new(10, 213, 0, 199),
                )),
                routers: Some(SERVER_ADDRESS),
            },
            Subnet {
                network: Ipv4Addr::new(10, 214, 0, 0),
                prefix_len: 16,
                range: Some((Ipv4Addr::new(10, 214, 1, 0), Ipv4Addr::new(10, 214, 2, 255))),
                routers: Some(Ipv4Addr::new(10, 214, 0, 1)),
            },
        ],
        default_lease_time,
        ..DhcpConfig::lab_default()
    }
}

fn lab() -> Result<Lab> {
    let lab = Lab::new(SERVER_CIDR)?;
    lab.route_relay(RELAY_ADDRESS, "10.214.0.0/16", "10.213.0.0/24")?;
    Ok(lab)
}

/// `xdhcpd --shadow` in the server namespace on `conf`, following `leases`; returns once it
/// watches the interface.
struct Shadow {
    proc: Proc,
    state: PathBuf,
}

impl Shadow {
    fn start(lab: &Lab, conf: &Path, leases: &Path) -> Result<Self> {
        let state = lab.dir.join("shadow.state");
        let mut command = lab.server.command(&xdhcpd().to_string_lossy());
        command
            .args(["--shadow", "-f", "-d", "-cf"])
            .arg(conf)
            .arg("-lf")
            .arg(leases)
            .arg("--shadow-state")
            .arg(&state)
            .args(["--metrics-listen", METRICS])
            .arg(&lab.server_if);
        if let Some(filter) = std::env::var_os("XDH_SHADOW_LOG") {
            command.env("RUST_LOG", filter);
        }
        let mut proc = Proc::spawn("xdhcpd-shadow", command, lab.dir.join("shadow.log"))?;
        wait_for("xdhcpd --shadow to watch", Duration::from_secs(20), || {
            proc.check_running()?;
            Ok(proc.log_text().contains("shadow: watching").then_some(()))
        })
        .with_context(|| format!("shadow log:\n{}", proc.log_text()))?;
        Ok(Self { proc, state })
    }

    fn compared(&self, lab: &Lab) -> Result<u64> {
        lab.server.metric(METRICS, "xdhcpd_shadow_compared_total")
    }

    /// Waits until the compared count stops moving (every message answered or timed out: the
    /// pairing timeout is 5 s), then stops shadow mode, which saves its state. Returns what
    /// `--shadow-report` prints and the last scrape of the metrics.
    fn finish(mut self, lab: &Lab) -> Result<(String, String)> {
        let mut last = u64::MAX;
        wait_for(
            "the shadow totals to settle",
            Duration::from_secs(40),
            || {
                std::thread::sleep(Duration::from_secs(6));
                let now = self.compared(lab)?;
                let settled = now == last;
                last = now;
                Ok(settled.then_some(()))
            },
        )?;
        let metrics = lab.server.scrape_metrics(METRICS)?;
        self.proc.check_running()?;
        self.proc.signal("TERM")?;
        self.proc.wait_exit(Duration::from_secs(10))?;
        let output = lab
            .server
            .command(&xdhcpd().to_string_lossy())
            .arg("--shadow-report")
            .arg("--shadow-state")
            .arg(&self.state)
            .output()?;
        if !output.status.success() {
            bail!(
                "--shadow-report failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let report = String::from_utf8_lossy(&output.stdout).into_owned();
        eprintln!("{report}");
        if std::env::var_os("XDH_SHADOW_LOG").is_some() {
            eprintln!("{}", self.proc.log_text());
        }
        Ok((report, metrics))
    }
}

/// ISC dhcpd on `conf` in the lab, its lease file `server.leases`.
fn isc_setup<'a>(lab: &'a Lab, conf: &DhcpConfig) -> ServerSetup<'a> {
    ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind: ServerKind::IscDhcpd,
        config: conf.clone(),
        interface: lab.server_if.clone(),
        relayed: true,
        dhcpd_conf: None,
    }
}

fn start_isc(lab: &Lab, conf: &DhcpConfig) -> Result<netns::peers::Server> {
    isc_setup(lab, conf).start()
}

/// The number in front of `what` in a report line (`   412 exchanges compared`).
fn count(report: &str, what: &str) -> u64 {
    report
        .lines()
        .find_map(|line| line.trim().strip_suffix(what)?.trim().parse().ok())
        .unwrap_or(0)
}

/// dhclient and udhcpc get a lease from ISC directly, perfdhcp runs `exchanges` DORAs as a
/// relay.
fn clients(lab: &Lab, exchanges: u32) -> Result<()> {
    let mut dhclient = start_dhclient(&lab.client, lab.dir.path(), &lab.client_if, false)?;
    dhclient.wait_event(&["BOUND"], 1, Duration::from_secs(30))?;
    lab.add_client_macvlan("xm0", "02:00:5e:10:00:01")?;
    let mut udhcpc = start_udhcpc(&lab.client, lab.dir.path(), "xm0", true)?;
    udhcpc.wait_event(&["bound"], 1, Duration::from_secs(30))?;
    perfdhcp(lab, exchanges, "perfdhcp-shadow")?;
    dhclient.proc.kill();
    Ok(())
}

/// perfdhcp as a relay: `exchanges` DORAs of `exchanges / 2` clients (its MACs are the same
/// from one run to the next).
fn perfdhcp(lab: &Lab, exchanges: u32, name: &str) -> Result<()> {
    let report = Perfdhcp {
        netns: &lab.client,
        dir: lab.dir.path(),
        local: RELAY_ADDRESS.to_owned(),
        server: SERVER_ADDRESS,
        rate: Some(50),
        clients: exchanges / 2,
        seconds: 30,
        exchanges: Some(exchanges),
        extra: Vec::new(),
    }
    .run(name)?;
    if report.ack_received == 0 {
        bail!("perfdhcp got no DHCPACK from ISC:\n{}", report.raw);
    }
    Ok(())
}

#[test]
fn same_config_gives_no_difference() -> Result<()> {
    if !common::privileged("same_config_gives_no_difference") {
        return Ok(());
    }
    let lab = lab()?;
    // ISC's default ping-check on the directly attached subnet: its OFFERs wait for the ping
    // (1 s), which shadow mode follows; perfdhcp's relayed subnet goes without (perfdhcp
    // counts an OFFER after 1 s as lost).
    let conf = config(600).to_dhcpd_conf().replace(
        "subnet 10.213.0.0 netmask 255.255.255.0 {",
        "subnet 10.213.0.0 netmask 255.255.255.0 {\n  ping-check true;",
    );
    assert!(conf.contains("ping-check true;"));
    let setup = ServerSetup {
        dhcpd_conf: Some(conf),
        ..isc_setup(&lab, &config(600))
    };
    let mut isc = setup.start()?;
    let shadow = Shadow::start(&lab, &isc.config_file, &isc.lease_file)?;
    clients(&lab, 200)?;
    // ISC restarted: it rewrites its lease file (dhcpd.leases.new renamed over it), which
    // shadow mode reads again; the same perfdhcp clients then renew their leases, which only
    // that file knows of.
    let inode = |path: &Path| -> Result<u64> {
        use std::os::unix::fs::MetadataExt as _;
        Ok(std::fs::metadata(path)?.ino())
    };
    let before_restart = inode(&isc.lease_file)?;
    isc.proc.signal("TERM")?;
    isc.proc.wait_exit(Duration::from_secs(10))?;
    let isc = setup.start()?;
    wait_for(
        "ISC to rewrite its lease file",
        Duration::from_secs(10),
        || Ok((inode(&isc.lease_file)? != before_restart).then_some(())),
    )?;
    perfdhcp(&lab, 100, "perfdhcp-after-restart")?;
    let (report, metrics) = shadow.finish(&lab)?;
    assert!(
        metrics.contains(&format!(
            "xdhcpd_shadow_compared_total {}",
            count(&report, "exchanges compared")
        )),
        "{metrics}"
    );
    assert!(
        !metrics.contains("xdhcpd_shadow_differences_total{"),
        "{metrics}"
    );
    let compared = count(&report, "exchanges compared");
    assert!(compared >= 500, "too few exchanges compared:\n{report}");
    assert!(report.contains("No differences."), "{report}");
    assert!(
        report.contains(&format!("{compared:>10} identical (100.00 %)")),
        "{report}"
    );
    Ok(())
}

#[test]
fn another_lease_time_is_reported_on_option_51() -> Result<()> {
    if !common::privileged("another_lease_time_is_reported_on_option_51") {
        return Ok(());
    }
    let lab = lab()?;
    let isc = start_isc(&lab, &config(600))?;
    let ours = lab.dir.join("xdhcpd.conf");
    std::fs::write(&ours, config(900).to_dhcpd_conf())?;
    let shadow = Shadow::start(&lab, &ours, &isc.lease_file)?;
    clients(&lab, 20)?;
    let (report, metrics) = shadow.finish(&lab)?;
    assert!(
        metrics.contains("xdhcpd_shadow_differences_total{field=\"option 51\"}"),
        "{metrics}"
    );
    let field_line = report
        .lines()
        .find(|line| line.trim().ends_with("option 51"))
        .with_context(|| format!("no option 51 difference:\n{report}"))?;
    assert!(
        report.contains("ISC 600, xdhcpd 900") || report.contains("ISC 599, xdhcpd 900"),
        "{report}"
    );
    // dhclient's and udhcpc's OFFERs and ACKs at least (they ask for no lease time).
    let differing: u64 = field_line
        .split_whitespace()
        .next()
        .unwrap_or("0")
        .parse()?;
    assert!(differing >= 4, "{report}");
    Ok(())
}

#[test]
fn nothing_is_sent_and_the_lease_file_is_left_alone() -> Result<()> {
    if !common::privileged("nothing_is_sent_and_the_lease_file_is_left_alone") {
        return Ok(());
    }
    let lab = lab()?;
    let conf_path = lab.dir.join("dhcpd.conf");
    std::fs::write(&conf_path, config(600).to_dhcpd_conf())?;
    // A lease file as ISC would have left it: the shadow must only read it.
    let leases = lab.dir.join("server.leases");
    let text = "# ISC's\nlease 10.213.0.150 {\n  starts 4 2026/12/03 10:00:00;\n  ends 4 2036/12/03 11:00:00;\n  binding state active;\n  next binding state free;\n  hardware ethernet 02:00:5e:10:00:99;\n}\n";
    std::fs::write(&leases, text)?;
    let tx_packets = || -> Result<u64> {
        Ok(lab
            .server
            .exec_ok(&[
                "cat",
                &format!("/sys/class/net/{}/statistics/tx_packets", lab.server_if),
            ])?
            .trim()
            .parse()?)
    };
    let files = |dir: &Path| -> Result<Vec<String>> {
        let mut names: Vec<String> = std::fs::read_dir(dir)?
            .map(|entry| Ok(entry?.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_>>()?;
        names.sort();
        Ok(names)
    };
    let mut expected = files(lab.dir.path())?;
    let shadow = Shadow::start(&lab, &conf_path, &leases)?;
    assert!(!lab.server.udp_bound(67)?, "shadow mode bound UDP port 67");
    let before = tx_packets()?;
    // Broadcast DISCOVERs only: a unicast to the server's address with no UDP listener would
    // make the kernel (not xdhcpd) answer with an ICMP port unreachable.
    let udhcpc = lab
        .client
        .command("/usr/sbin/udhcpc")
        .args([
            "-f",
            "-q",
            "-n",
            "-i",
            &lab.client_if,
            "-t",
            "4",
            "-T",
            "1",
            "-s",
            "/bin/true",
        ])
        .output()?;
    assert!(
        !udhcpc.status.success(),
        "udhcpc got a lease with only shadow mode running:\n{}",
        String::from_utf8_lossy(&udhcpc.stderr)
    );
    let after = tx_packets()?;
    assert!(!lab.server.udp_bound(67)?, "shadow mode bound UDP port 67");
    let (report, _) = shadow.finish(&lab)?;
    assert_eq!(before, after, "packets left the server interface");
    assert_eq!(
        std::fs::read_to_string(&leases)?,
        text,
        "the lease file changed"
    );
    // Beside the lease file, only its own state file (and the harness's log of it).
    expected.extend(["shadow.log".to_owned(), "shadow.state".to_owned()]);
    expected.sort();
    assert_eq!(files(lab.dir.path())?, expected);
    // It computed the OFFERs it did not send: ISC's silence against them.
    assert!(count(&report, "exchanges compared") >= 4, "{report}");
    assert!(
        report.contains("ISC no reply, xdhcpd DHCPOFFER"),
        "{report}"
    );
    Ok(())
}
