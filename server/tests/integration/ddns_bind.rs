//! Dynamic DNS updates against a real BIND 9 (needs root and /usr/sbin/named from Debian's
//! `bind9`): each test starts its own `named` by hand — generated named.conf, TSIG keys, a
//! forward and a reverse zone, in a private directory, listening on 127.0.0.1 on a free port
//! (never port 53, never as a service) — drives `xdhcpd::ddns::Updater` against it, and checks
//! the zone with `dig @127.0.0.1 -p PORT`. named is killed and its directory removed when the
//! test ends; every wait is bounded.
//!
//! Run: `cargo test -p server --test ddns_bind` (as root; REQUIRE_PRIVILEGED_TESTS=1 turns a
//! skip into a failure).

use crate::common;
// `common` names the netns server kinds.

use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use xdhcpd::config::model::Key;
use xdhcpd::ddns::guard::{guard, ClientIdentity, Guard, Style};
use xdhcpd::ddns::metrics::{OperationResult, UpdateResult};
use xdhcpd::ddns::plan::{forward_name, reverse_name, Outcome, Side};
use xdhcpd::ddns::updater::{Abandoned, Finished};
use xdhcpd::ddns::{
    Binding, DdnsMetrics, Operation, Policy, Updater, UpdaterSettings, ZoneDeclaration, Zones,
};

const NAMED: &str = "/usr/sbin/named";
const DIG: &str = "/usr/bin/dig";
const MD5_SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZg==";
const SHA256_SECRET: &str = "dGhlIHNoYTI1NiBzZWNyZXQgb2YgZGRucyB0ZXN0cyE=";
const WAIT: Duration = Duration::from_secs(30);

/// Whether this test can run: root (like the other privileged tests) and named installed.
fn can_run(test: &str) -> bool {
    if !common::privileged(test) {
        return false;
    }
    if Path::new(NAMED).exists() && Path::new(DIG).exists() {
        return true;
    }
    assert!(
        std::env::var("REQUIRE_PRIVILEGED_TESTS").as_deref() != Ok("1"),
        "{test}: needs {NAMED} and {DIG} (apt-get install bind9 bind9-utils dnsutils)"
    );
    eprintln!("SKIPPED {test}: needs {NAMED} and {DIG}");
    false
}

/// A named of our own.
struct Named {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

/// A port free on 127.0.0.1 for both UDP and TCP right now.
fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1");
}

const ZONE_HEADER: &str = "$TTL 300\n\
    @ IN SOA ns.example.org. hostmaster.example.org. ( 1 3600 600 86400 300 )\n\
    @ IN NS ns.example.org.\n";

impl Named {
    fn start(test: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xdhcpd-ddns-{test}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            "options {{\n\
             \tdirectory \"{d}\";\n\
             \tpid-file \"{d}/named.pid\";\n\
             \tsession-keyfile \"{d}/session.key\";\n\
             \tmanaged-keys-directory \"{d}\";\n\
             \tlisten-on port {port} {{ 127.0.0.1; }};\n\
             \tlisten-on-v6 {{ none; }};\n\
             \trecursion no;\n\
             \tdnssec-validation no;\n\
             \tnotify no;\n\
             \tallow-transfer {{ none; }};\n\
             }};\n\
             controls {{ }};\n\
             logging {{ channel log {{ file \"{d}/named.log\"; severity info; print-time yes; }};\n\
             \tcategory default {{ log; }}; category update {{ log; }}; category security {{ log; }}; }};\n\
             key \"ddns-md5\" {{ algorithm hmac-md5; secret \"{MD5_SECRET}\"; }};\n\
             key \"ddns-sha256\" {{ algorithm hmac-sha256; secret \"{SHA256_SECRET}\"; }};\n\
             zone \"example.org\" {{ type primary; file \"{d}/example.org.db\";\n\
             \tallow-update {{ key \"ddns-md5\"; key \"ddns-sha256\"; }}; }};\n\
             zone \"2.0.192.in-addr.arpa\" {{ type primary; file \"{d}/rev.db\";\n\
             \tallow-update {{ key \"ddns-md5\"; key \"ddns-sha256\"; }}; }};\n"
        );
        std::fs::write(dir.join("named.conf"), conf).unwrap();
        // A static record without guard: ISC's "Has an address record but no DHCID, not mine."
        std::fs::write(
            dir.join("example.org.db"),
            format!("{ZONE_HEADER}ns IN A 127.0.0.1\nstatic IN A 192.0.2.99\n"),
        )
        .unwrap();
        std::fs::write(dir.join("rev.db"), ZONE_HEADER).unwrap();
        let mut named = Self {
            dir,
            port,
            child: None,
        };
        named.spawn();
        named
    }

    /// Starts named (again) on the same directory and port and waits until it answers.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("named.stderr"))
            .unwrap();
        let child = Command::new(NAMED)
            // Foreground, one worker, our configuration; no service, no rndc.
            .args(["-f", "-n", "1", "-4", "-c"])
            .arg(self.dir.join("named.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start named");
        self.child = Some(child);
        let deadline = xdhcpd::clock::monotonic() + WAIT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok())
                .flatten()
            {
                panic!("named exited with {status}:\n{}", self.logs());
            }
            if !self.dig("example.org", "SOA").is_empty() {
                return;
            }
            assert!(
                xdhcpd::clock::monotonic() < deadline,
                "named did not answer within {WAIT:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("{}{}", read("named.stderr"), read("named.log"))
    }

    /// `dig +short` of `name`/`rtype`, one line per record, sorted.
    fn dig(&self, name: &str, rtype: &str) -> String {
        let output = Command::new(DIG)
            .args(["@127.0.0.1", "-p", &self.port.to_string()])
            .args(["+short", "+time=1", "+tries=1", name, rtype])
            .output()
            .expect("run dig");
        let mut lines: Vec<&str> = std::str::from_utf8(&output.stdout)
            .unwrap_or("")
            .lines()
            // dig prints ";; …" lines when no server answers.
            .filter(|line| !line.starts_with(";;"))
            .collect();
        lines.sort();
        lines.join("\n")
    }

    /// Both zones on this named, signed with `key` (or unsigned).
    fn zones(&self, key: Option<Key>) -> Zones {
        let declarations: Vec<ZoneDeclaration> = ["example.org", "2.0.192.in-addr.arpa."]
            .into_iter()
            .map(|zone| ZoneDeclaration {
                name: zone.into(),
                primaries: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
                secondaries: Vec::new(),
                key: key.as_ref().map(|key| key.name.clone()),
            })
            .collect();
        Zones::from_declarations(&declarations, key.as_slice(), self.port).unwrap()
    }
}

/// The keys of named.conf, as dhcpd.conf's `key` statements give them.
fn md5_key() -> Key {
    Key {
        name: "ddns-md5".into(),
        algorithm: "hmac-md5".into(),
        secret: b"0123456789abcdef".to_vec(),
    }
}

fn sha256_key() -> Key {
    Key {
        name: "ddns-sha256".into(),
        algorithm: "hmac-sha256".into(),
        secret: b"the sha256 secret of ddns tests!".to_vec(),
    }
}

/// BIND's md5 key name with another secret.
fn wrong_key() -> Key {
    Key {
        secret: b"not the secret".to_vec(),
        ..md5_key()
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("named logs ({}):\n{}", self.dir.display(), self.logs());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An updater with its finished-operations channel.
struct Harness {
    updater: Updater,
    plane: Option<xdhcpd::control_plane::ControlPlane>,
    task: Option<tokio::task::JoinHandle<()>>,
    finished: mpsc::Receiver<Finished>,
    metrics: Arc<DdnsMetrics>,
}

impl Harness {
    fn new(zones: Zones, settings: UpdaterSettings) -> Self {
        let metrics = Arc::new(DdnsMetrics::default());
        let (sink, finished) = mpsc::sync_channel(16);
        let plane = xdhcpd::control_plane::ControlPlane::start().unwrap();
        let (updater, task) =
            Updater::spawn(plane.handle(), zones, settings, metrics.clone(), Some(sink));
        Self {
            updater,
            plane: Some(plane),
            task: Some(task),
            finished,
            metrics,
        }
    }

    fn run(&self, operation: Operation) -> Finished {
        assert!(self.updater.submit(operation));
        self.finished
            .recv_timeout(WAIT)
            .expect("the operation finishes in time")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.updater.stop();
        if let (Some(plane), Some(task)) = (self.plane.take(), self.task.take()) {
            let _ = plane.handle().block_on(task);
            plane.shutdown(Duration::from_secs(1));
        }
    }
}

fn settings() -> UpdaterSettings {
    UpdaterSettings {
        attempt_timeout: Duration::from_secs(2),
        retry_initial: Duration::from_millis(200),
        retry_max: Duration::from_secs(1),
        max_attempts: 3,
        ..UpdaterSettings::default()
    }
}

fn binding(style: Style, host: &str, client_id: &[u8], last_octet: u8) -> Binding {
    let fwd_name = forward_name(host, "example.org").unwrap();
    let address = Ipv4Addr::new(192, 0, 2, last_octet);
    Binding {
        address,
        guard: Some(guard(style, ClientIdentity::ClientId(client_id), &fwd_name).unwrap()),
        fwd_name: Some(fwd_name),
        rev_name: Some(reverse_name(address, "in-addr.arpa.")),
        ttl: 300,
    }
}

const DONE: Outcome = Outcome {
    forward: Side::Done,
    reverse: Side::Done,
};

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in bytes.chunks(3) {
        let block = chunk.iter().enumerate().fold(0u32, |acc, (index, &byte)| {
            acc | u32::from(byte) << (16 - 8 * index)
        });
        for position in 0..4 {
            text.push(if position <= chunk.len() {
                ALPHABET[(block >> (18 - 6 * position) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    text
}

#[test]
fn standard_style_adds_and_removes_a_dhcid_and_ptr_with_hmac_md5() {
    if !can_run("standard_style_adds_and_removes_a_dhcid_and_ptr_with_hmac_md5") {
        return;
    }
    let named = Named::start("standard");
    let harness = Harness::new(named.zones(Some(md5_key())), settings());
    let binding = binding(
        Style::Standard,
        "alpha",
        b"\x01\x02\x00\x00\x00\x00\x01",
        10,
    );
    let Some(Guard::Dhcid(dhcid)) = binding.guard.clone() else {
        unreachable!()
    };
    let added = harness.run(Operation::add(binding.clone(), Policy::default()));
    assert_eq!(added.result.unwrap(), DONE);
    assert_eq!(named.dig("alpha.example.org", "A"), "192.0.2.10");
    assert_eq!(named.dig("alpha.example.org", "DHCID"), base64(&dhcid));
    assert_eq!(
        named.dig("10.2.0.192.in-addr.arpa", "PTR"),
        "alpha.example.org."
    );
    // The same lease again (a renewal after a restart): the name is ours, replaced in place.
    let again = harness.run(Operation::add(binding.clone(), Policy::default()));
    assert_eq!(again.result.unwrap(), DONE);
    assert_eq!(
        harness.metrics.updates(UpdateResult::PrerequisiteFailed),
        1,
        "the second add went through ISC's second step"
    );
    let removed = harness.run(Operation::remove(binding, Policy::default()));
    assert_eq!(removed.result.unwrap(), DONE);
    assert_eq!(named.dig("alpha.example.org", "A"), "");
    assert_eq!(named.dig("alpha.example.org", "DHCID"), "");
    assert_eq!(named.dig("10.2.0.192.in-addr.arpa", "PTR"), "");
    assert_eq!(harness.metrics.operations(OperationResult::Done), 3);
}

#[test]
fn interim_style_adds_and_removes_a_txt_and_ptr_with_hmac_sha256() {
    if !can_run("interim_style_adds_and_removes_a_txt_and_ptr_with_hmac_sha256") {
        return;
    }
    let named = Named::start("interim");
    let harness = Harness::new(named.zones(Some(sha256_key())), settings());
    let binding = binding(Style::Interim, "beta", b"\x01\x02\x00\x00\x00\x00\x02", 11);
    let Some(Guard::Txt(text)) = binding.guard.clone() else {
        unreachable!()
    };
    assert!(text.starts_with(b"31"), "ISC's client-identifier TXT form");
    let added = harness.run(Operation::add(binding.clone(), Policy::default()));
    assert_eq!(added.result.unwrap(), DONE);
    assert_eq!(named.dig("beta.example.org", "A"), "192.0.2.11");
    assert_eq!(
        named.dig("beta.example.org", "TXT"),
        format!("\"{}\"", String::from_utf8(text).unwrap())
    );
    assert_eq!(
        named.dig("11.2.0.192.in-addr.arpa", "PTR"),
        "beta.example.org."
    );
    let removed = harness.run(Operation::remove(binding, Policy::default()));
    assert_eq!(removed.result.unwrap(), DONE);
    assert_eq!(named.dig("beta.example.org", "A"), "");
    assert_eq!(named.dig("beta.example.org", "TXT"), "");
    assert_eq!(named.dig("11.2.0.192.in-addr.arpa", "PTR"), "");
}

#[test]
fn conflict_detection_keeps_a_name_for_its_client() {
    if !can_run("conflict_detection_keeps_a_name_for_its_client") {
        return;
    }
    let named = Named::start("conflict");
    let harness = Harness::new(named.zones(Some(md5_key())), settings());
    let first = binding(Style::Standard, "gamma", b"\x01first", 20);
    let second = binding(Style::Standard, "gamma", b"\x01second", 21);
    assert_eq!(
        harness
            .run(Operation::add(first.clone(), Policy::default()))
            .result
            .unwrap(),
        DONE
    );
    // Another client asks for the same name: its DHCID does not match, nothing changes.
    let refused = harness.run(Operation::add(second.clone(), Policy::default()));
    assert_eq!(
        refused.result.unwrap(),
        Outcome {
            forward: Side::Conflict(8),
            reverse: Side::Skipped
        }
    );
    assert_eq!(named.dig("gamma.example.org", "A"), "192.0.2.20");
    assert_eq!(harness.metrics.operations(OperationResult::Conflict), 1);
    // Its removal leaves the first client's A record too (the guard is not its own).
    let removal = harness.run(Operation::remove(second.clone(), Policy::default()));
    assert_eq!(removal.result.unwrap(), DONE);
    assert_eq!(named.dig("gamma.example.org", "A"), "192.0.2.20");
    // A static record without guard is "not mine" either.
    let mut static_name = binding(Style::Standard, "static", b"\x01third", 22);
    static_name.rev_name = None;
    let refused = harness.run(Operation::add(static_name, Policy::default()));
    assert_eq!(
        refused.result.unwrap(),
        Outcome {
            forward: Side::Conflict(8),
            reverse: Side::Untouched
        }
    );
    assert_eq!(named.dig("static.example.org", "A"), "192.0.2.99");
    // update-conflict-detection off: the second client takes the name over.
    let taken = harness.run(Operation::add(second.clone(), Policy::new(false, true)));
    assert_eq!(taken.result.unwrap(), DONE);
    assert_eq!(named.dig("gamma.example.org", "A"), "192.0.2.21");
    let Some(Guard::Dhcid(dhcid)) = second.guard else {
        unreachable!()
    };
    assert_eq!(named.dig("gamma.example.org", "DHCID"), base64(&dhcid));
}

#[test]
fn a_wrong_tsig_key_is_rejected_and_counted() {
    if !can_run("a_wrong_tsig_key_is_rejected_and_counted") {
        return;
    }
    let named = Named::start("wrongkey");
    let harness = Harness::new(named.zones(Some(wrong_key())), settings());
    let finished = harness.run(Operation::add(
        binding(Style::Standard, "delta", b"\x01delta", 30),
        Policy::default(),
    ));
    assert!(
        matches!(finished.result, Err(Abandoned::BadAnswer { .. })),
        "{:?}",
        finished.result
    );
    assert_eq!(harness.metrics.updates(UpdateResult::TsigRejected), 1);
    assert_eq!(harness.metrics.operations(OperationResult::Failed), 1);
    assert_eq!(named.dig("delta.example.org", "A"), "");
    // Unsigned updates are refused by the zone's policy.
    let unsigned = Harness::new(named.zones(None), settings());
    let finished = unsigned.run(Operation::add(
        binding(Style::Standard, "delta", b"\x01delta", 30),
        Policy::default(),
    ));
    assert_eq!(
        finished.result.unwrap(),
        Outcome {
            forward: Side::Failed {
                step: xdhcpd::ddns::plan::Step::FwdAdd1,
                rcode: 5
            },
            reverse: Side::Skipped
        }
    );
    assert_eq!(unsigned.metrics.updates(UpdateResult::Refused), 1);
}

#[test]
fn updates_wait_for_a_stopped_server_and_go_through_when_it_is_back() {
    if !can_run("updates_wait_for_a_stopped_server_and_go_through_when_it_is_back") {
        return;
    }
    let mut named = Named::start("restart");
    let harness = Harness::new(
        named.zones(Some(sha256_key())),
        UpdaterSettings {
            attempt_timeout: Duration::from_millis(500),
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_millis(500),
            max_attempts: 200,
            ..UpdaterSettings::default()
        },
    );
    named.stop();
    let submitted = xdhcpd::clock::monotonic();
    assert!(harness.updater.submit(Operation::add(
        binding(Style::Standard, "epsilon", b"\x01epsilon", 40),
        Policy::default(),
    )));
    // Nothing answers: the operation waits, retrying.
    assert!(harness
        .finished
        .recv_timeout(Duration::from_millis(1500))
        .is_err());
    assert!(harness.metrics.updates(UpdateResult::Timeout) >= 1);
    named.spawn();
    let finished = harness
        .finished
        .recv_timeout(WAIT)
        .expect("the update goes through once named is back");
    assert_eq!(finished.result.unwrap(), DONE);
    eprintln!("went through {:?} after submission", submitted.elapsed());
    assert_eq!(named.dig("epsilon.example.org", "A"), "192.0.2.40");
    assert_eq!(
        named.dig("40.2.0.192.in-addr.arpa", "PTR"),
        "epsilon.example.org."
    );
}
