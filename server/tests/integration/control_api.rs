//! Tier 1: the JSON control API (Kea's commands, README "JSON control API (Kea commands)")
//! against the real `xdhcpd` on loopback, driven by `curl` and by Kea's own `kea-shell`. Lease
//! changes are in dhcpd.leases when the answer arrives and a DHCP client sees them;
//! unauthenticated and wrongly authenticated requests change nothing and are counted; HTTPS
//! with client certificates from a CA made here (rcgen).

#![expect(
    clippy::disallowed_methods,
    reason = "drives the real server in real time"
)]

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dhcproto::v4::MessageType;
use serde_json::{json, Value};

use crate::loopback_support::{
    self, exchange, message, message_type, relay_socket, PortRange, Server, TempDir,
};

const USER: &str = "operator";
const PASSWORD: &str = "s3cret";

fn ports(test: u16) -> (u16, u16) {
    (
        loopback_support::port(PortRange::ControlApi, test * 2),
        loopback_support::port(PortRange::ControlApi, test * 2 + 1),
    )
}

/// Whether `name` is installed; without it the test says so and is skipped, unless
/// `REQUIRE_PRIVILEGED_TESTS` is set (CI), which makes the missing tool a failure
/// (`cargo xtask setup` installs curl and kea-shell).
fn tool(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found && std::env::var_os("REQUIRE_PRIVILEGED_TESTS").is_some() {
        panic!(
            "{name} is missing and REQUIRE_PRIVILEGED_TESTS is set (cargo xtask setup installs it)"
        );
    }
    found
}

/// dhcpd.conf with the API on `api_port`, `extra` settings, and a lease file with one active
/// lease (127.1.0.5 for 02:00:00:00:00:05, client id 01:02:00:00:00:00:05).
fn write_files(dir: &Path, api_port: u16, extra: &str) {
    std::fs::write(
        dir.join("api-users"),
        format!("# test\n{USER}:{PASSWORD}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("dhcpd.conf"),
        format!(
            "authoritative;\nping-check false;\ndefault-lease-time 600;\n\
             option space xdhcpd;\n\
             option xdhcpd.control-api-listen code 20 = text;\n\
             option xdhcpd.control-api-cert-file code 21 = text;\n\
             option xdhcpd.control-api-key-file code 22 = text;\n\
             option xdhcpd.control-api-trust-anchor code 23 = text;\n\
             option xdhcpd.control-api-cert-required code 24 = boolean;\n\
             option xdhcpd.control-api-auth-file code 25 = text;\n\
             option xdhcpd.control-api-listen \"127.0.0.1:{api_port}\";\n\
             option xdhcpd.control-api-auth-file \"{}\";\n{extra}\
             subnet 127.0.0.0 netmask 255.0.0.0 {{\n  range 127.1.0.1 127.1.0.100;\n}}\n",
            dir.join("api-users").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("dhcpd.leases"),
        "lease 127.1.0.5 {\n  starts 1 2025/01/06 00:00:00;\n  ends 1 2035/01/01 00:00:00;\n  \
         cltt 1 2025/01/06 00:00:00;\n  binding state active;\n  next binding state free;\n  \
         hardware ethernet 02:00:00:00:00:05;\n  uid \"\\001\\002\\000\\000\\000\\000\\005\";\n}\n",
    )
    .unwrap();
}

/// An HTTP exchange with curl: the status and the body as JSON (Null when it is not JSON).
struct Curl<'a> {
    url: String,
    extra: Vec<&'a str>,
}

impl<'a> Curl<'a> {
    fn http(port: u16) -> Self {
        Self {
            url: format!("http://127.0.0.1:{port}/"),
            extra: Vec::new(),
        }
    }

    fn post(&self, auth: Option<(&str, &str)>, body: &str) -> (u16, Value) {
        let mut command = Command::new("curl");
        command
            .args(["-s", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"])
            .args(["-X", "POST", "-H", "Content-Type: application/json"])
            .args(["--data-binary", "@-"])
            .args(&self.extra);
        if let Some((user, password)) = auth {
            command.args(["-u", &format!("{user}:{password}")]);
        }
        let mut child = command
            .arg(&self.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("curl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        (
            status.trim().parse().unwrap_or(0),
            serde_json::from_str(body).unwrap_or(Value::Null),
        )
    }

    /// One authenticated command; the one answer of the list.
    fn command(&self, command: &str, arguments: Value) -> Value {
        let (status, body) = self.post(
            Some((USER, PASSWORD)),
            &json!({ "command": command, "service": ["dhcp4"], "arguments": arguments })
                .to_string(),
        );
        assert_eq!(status, 200, "{command}: {body}");
        body[0].clone()
    }

    /// Waits until the listener answers.
    fn wait_ready(&self) {
        let started = Instant::now();
        while self.post(None, "{}").0 == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "control API did not come up at {}",
                self.url
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn lease_file(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("dhcpd.leases")).unwrap()
}

/// The last record of `address` in the lease file.
fn last_record(dir: &Path, address: &str) -> String {
    let text = lease_file(dir);
    let start = text
        .rfind(&format!("lease {address} {{"))
        .unwrap_or_else(|| panic!("no record of {address} in\n{text}"));
    let end = text[start..]
        .find("\n}")
        .map_or(text.len(), |end| start + end);
    text[start..end].to_string()
}

fn statistic(curl: &Curl<'_>, name: &str) -> Option<i64> {
    let statistics = curl.command("statistic-get-all", Value::Null);
    statistics["arguments"][name][0][0].as_i64()
}

#[test]
fn lease_commands_over_curl_are_durable_and_seen_by_dhcp_clients() {
    if !tool("curl") {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let (dhcp_port, api_port) = ports(0);
    let dir = TempDir::new("control-api-curl");
    write_files(&dir.0, api_port, "");
    let _server = Server::start(&dir.0, dhcp_port);
    let curl = Curl::http(api_port);
    curl.wait_ready();

    let found = curl.command("lease4-get", json!({ "ip-address": "127.1.0.5" }));
    assert_eq!(found["result"], 0, "{found}");
    assert_eq!(found["arguments"]["hw-address"], "02:00:00:00:00:05");
    assert_eq!(found["arguments"]["subnet-id"], 1);
    assert_eq!(found["arguments"]["state"], 0);
    let by_mac = curl.command(
        "lease4-get-by-hw-address",
        json!({ "hw-address": "02:00:00:00:00:05" }),
    );
    assert_eq!(by_mac["text"], "1 IPv4 lease(s) found.", "{by_mac}");
    let by_id = curl.command(
        "lease4-get-by-client-id",
        json!({ "client-id": "01:02:00:00:00:00:05" }),
    );
    assert_eq!(by_id["result"], 0, "{by_id}");
    let page = curl.command("lease4-get-page", json!({ "from": "start", "limit": 10 }));
    assert_eq!(page["arguments"]["count"], 1, "{page}");

    // lease4-add: in the lease file once answered, and the client's renewal is ACKed.
    let mac = [0x02, 0, 0, 0, 0, 0x50];
    let added = curl.command(
        "lease4-add",
        json!({ "ip-address": "127.1.0.50", "hw-address": "02:00:00:00:00:50", "valid-lft": 3600 }),
    );
    assert_eq!(added["result"], 0, "{added}");
    let record = last_record(&dir.0, "127.1.0.50");
    assert!(record.contains("binding state active;"), "{record}");
    assert!(
        record.contains("hardware ethernet 02:00:00:00:00:50;"),
        "{record}"
    );
    let again = curl.command(
        "lease4-add",
        json!({ "ip-address": "127.1.0.50", "hw-address": "02:00:00:00:00:51" }),
    );
    assert_eq!(again["result"], 4, "{again}");
    let socket = relay_socket(dhcp_port);
    let address = Ipv4Addr::new(127, 1, 0, 50);
    let renew = message(MessageType::Request, mac, 0x5001, address);
    let ack = exchange(&socket, dhcp_port, &renew, Duration::from_secs(5)).expect("no reply");
    assert_eq!(message_type(&ack), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), address);

    // lease4-update: the new lifetime is in the file.
    let updated = curl.command(
        "lease4-update",
        json!({ "ip-address": "127.1.0.5", "hw-address": "02:00:00:00:00:05",
                "cltt": 1_800_000_000u32, "valid-lft": 1000 }),
    );
    assert_eq!(updated["result"], 0, "{updated}");
    let record = last_record(&dir.0, "127.1.0.5");
    // 1800001000 = Fri 2027/01/15 08:16:40 UTC.
    assert!(record.contains("ends 5 2027/01/15 08:16:40;"), "{record}");

    // While the lease is the added client's, another client asking for the address is
    // refused; once lease4-del has freed it, the same request gets it (ISC lets a client
    // claim a free address by asking for it).
    let other = [0x02, 0, 0, 0, 0, 0x52];
    let claim = message(MessageType::Request, other, 0x5002, address);
    let reply = exchange(&socket, dhcp_port, &claim, Duration::from_secs(2));
    assert_ne!(
        reply.as_ref().and_then(message_type),
        Some(MessageType::Ack),
        "another client's lease was given away"
    );
    let deleted = curl.command("lease4-del", json!({ "ip-address": "127.1.0.50" }));
    assert_eq!(deleted["result"], 0, "{deleted}");
    let record = last_record(&dir.0, "127.1.0.50");
    assert!(record.contains("binding state free;"), "{record}");
    let gone = curl.command("lease4-get", json!({ "ip-address": "127.1.0.50" }));
    assert_eq!(gone["result"], 3, "{gone}");
    let claim = message(MessageType::Request, other, 0x5003, address);
    let ack = exchange(&socket, dhcp_port, &claim, Duration::from_secs(5)).expect("no reply");
    assert_eq!(message_type(&ack), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), address);
    let found = curl.command("lease4-get", json!({ "ip-address": "127.1.0.50" }));
    assert_eq!(
        found["arguments"]["hw-address"], "02:00:00:00:00:52",
        "{found}"
    );

    // lease4-wipe: nothing left.
    let wiped = curl.command("lease4-wipe", json!({ "subnet-id": 1 }));
    assert_eq!(wiped["result"], 0, "{wiped}");
    assert!(last_record(&dir.0, "127.1.0.5").contains("binding state free;"));
    let empty = curl.command("lease4-get-page", json!({ "from": "start", "limit": 10 }));
    assert_eq!(empty["result"], 3, "{empty}");

    // Reservations are ISC hosts, persisted in the lease file like OMAPI's.
    let reserved = curl.command(
        "reservation-add",
        json!({ "reservation": { "subnet-id": 1, "hw-address": "02:00:00:00:00:77",
                "ip-address": "127.1.0.77", "hostname": "camera" } }),
    );
    assert_eq!(reserved["result"], 0, "{reserved}");
    assert!(lease_file(&dir.0).contains("host camera {"));
    let host = curl.command(
        "reservation-get",
        json!({ "subnet-id": 1, "identifier-type": "hw-address", "identifier": "02:00:00:00:00:77" }),
    );
    assert_eq!(host["arguments"]["ip-address"], "127.1.0.77", "{host}");
    let removed = curl.command(
        "reservation-del",
        json!({ "subnet-id": 1, "ip-address": "127.1.0.77" }),
    );
    assert_eq!(removed["result"], 0, "{removed}");
    assert!(lease_file(&dir.0).contains("deleted;"));

    for command in [
        "config-test",
        "config-reload",
        "status-get",
        "version-get",
        "list-commands",
    ] {
        let answer = curl.command(command, Value::Null);
        assert_eq!(answer["result"], 0, "{command}: {answer}");
    }
    assert_eq!(
        statistic(&curl, "subnet[1].total-addresses"),
        Some(100),
        "Kea's subnet statistics"
    );
    // Kea's packet statistics: the two REQUESTs ACKed above.
    assert_eq!(statistic(&curl, "pkt4-ack-sent"), Some(2));
    let unsupported = curl.command("subnet4-list", Value::Null);
    assert_eq!(unsupported["result"], 2, "{unsupported}");
    let (status, malformed) = curl.post(Some((USER, PASSWORD)), "{\"command\": \"lease4-get\",");
    assert_eq!(status, 200);
    assert_eq!(malformed[0]["result"], 1, "{malformed}");
    assert!(
        malformed[0]["text"]
            .as_str()
            .is_some_and(|text| text.starts_with("invalid JSON")),
        "{malformed}"
    );
}

#[test]
fn unauthenticated_and_wrong_password_requests_change_nothing_and_are_counted() {
    if !tool("curl") {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let (dhcp_port, api_port) = ports(1);
    let dir = TempDir::new("control-api-auth");
    write_files(&dir.0, api_port, "");
    let _server = Server::start(&dir.0, dhcp_port);
    let curl = Curl::http(api_port);
    curl.wait_ready();
    let before = lease_file(&dir.0);
    let add = json!({ "command": "lease4-add",
        "arguments": { "ip-address": "127.1.0.60", "hw-address": "02:00:00:00:00:60" } })
    .to_string();
    let wipe = json!({ "command": "lease4-wipe" }).to_string();
    let (status, body) = curl.post(None, &add);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["result"], 401);
    assert_eq!(curl.post(Some((USER, "wrong")), &add).0, 401);
    assert_eq!(curl.post(Some(("nobody", PASSWORD)), &wipe).0, 401);
    assert_eq!(
        lease_file(&dir.0),
        before,
        "a refused request changed the leases"
    );
    // Oversized bodies are refused before parsing; the server stays up.
    let huge = format!(
        "{{\"command\": \"list-commands\", \"pad\": \"{}\"}}",
        "x".repeat(70_000)
    );
    assert_eq!(curl.post(Some((USER, PASSWORD)), &huge).0, 413);
    let lease = curl.command("lease4-get", json!({ "ip-address": "127.1.0.60" }));
    assert_eq!(lease["result"], 3, "{lease}");
    // Two: this test's and the readiness probe's.
    assert_eq!(
        statistic(
            &curl,
            "xdhcpd_control_api_unauthorized_total{reason=\"missing\"}"
        ),
        Some(2)
    );
    assert_eq!(
        statistic(
            &curl,
            "xdhcpd_control_api_unauthorized_total{reason=\"wrong\"}"
        ),
        Some(2)
    );
}

/// Runs kea-shell with `arguments` (the inside of Kea's `arguments` map) on stdin.
fn kea_shell(options: &[&str], command: &str, arguments: &str) -> Value {
    let mut child = Command::new("kea-shell")
        .args(options)
        .args(["--timeout", "10", "--service", "dhcp4", command])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kea-shell");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(arguments.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str::<Value>(&text).unwrap_or_else(|_| {
        panic!(
            "kea-shell {command}: {text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })[0]
        .clone()
}

#[test]
fn kea_shell_drives_the_api() {
    if !tool("kea-shell") || !tool("curl") {
        eprintln!("skipped: kea-shell (kea-ctrl-agent) or curl is not installed");
        return;
    }
    let (dhcp_port, api_port) = ports(2);
    let dir = TempDir::new("control-api-kea-shell");
    write_files(&dir.0, api_port, "");
    let _server = Server::start(&dir.0, dhcp_port);
    Curl::http(api_port).wait_ready();
    let port = api_port.to_string();
    let options = [
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--auth-user",
        USER,
        "--auth-password",
        PASSWORD,
    ];
    let commands = kea_shell(&options, "list-commands", "");
    assert_eq!(commands["result"], 0, "{commands}");
    let added = kea_shell(
        &options,
        "lease4-add",
        "\"ip-address\": \"127.1.0.70\", \"hw-address\": \"02:00:00:00:00:70\"",
    );
    assert_eq!(added["result"], 0, "{added}");
    assert!(last_record(&dir.0, "127.1.0.70").contains("binding state active;"));
    let found = kea_shell(&options, "lease4-get", "\"ip-address\": \"127.1.0.70\"");
    assert_eq!(
        found["arguments"]["hw-address"], "02:00:00:00:00:70",
        "{found}"
    );
    let deleted = kea_shell(&options, "lease4-del", "\"ip-address\": \"127.1.0.70\"");
    assert_eq!(deleted["result"], 0, "{deleted}");
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in `dir`.
fn make_certificates(dir: &Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "xdhcpd test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    for (name, purpose) in [
        ("server", ExtendedKeyUsagePurpose::ServerAuth),
        ("client", ExtendedKeyUsagePurpose::ClientAuth),
    ] {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![purpose];
        let certificate = params.signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), certificate.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

#[test]
fn https_with_client_certificates_refuses_clients_without_one() {
    if !tool("curl") {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let (dhcp_port, api_port) = ports(3);
    let dir = TempDir::new("control-api-tls");
    make_certificates(&dir.0);
    let path = |name: &str| dir.0.join(name).display().to_string();
    let tls = format!(
        "option xdhcpd.control-api-cert-file \"{}\";\n\
         option xdhcpd.control-api-key-file \"{}\";\n\
         option xdhcpd.control-api-trust-anchor \"{}\";\n",
        path("server.pem"),
        path("server.key"),
        path("ca.pem"),
    );
    write_files(&dir.0, api_port, &tls);
    let _server = Server::start(&dir.0, dhcp_port);
    let (ca, cert, key) = (path("ca.pem"), path("client.pem"), path("client.key"));
    let with_certificate = Curl {
        url: format!("https://127.0.0.1:{api_port}/"),
        extra: vec!["--cacert", &ca, "--cert", &cert, "--key", &key],
    };
    with_certificate.wait_ready();
    let before = lease_file(&dir.0);
    let without_certificate = Curl {
        url: format!("https://127.0.0.1:{api_port}/"),
        extra: vec!["--cacert", &ca],
    };
    let add = json!({ "command": "lease4-add",
        "arguments": { "ip-address": "127.1.0.61", "hw-address": "02:00:00:00:00:61" } })
    .to_string();
    let (status, _) = without_certificate.post(Some((USER, PASSWORD)), &add);
    assert_eq!(
        status, 0,
        "the handshake must fail without a client certificate"
    );
    assert_eq!(lease_file(&dir.0), before);
    let found = with_certificate.command("lease4-get", json!({ "ip-address": "127.1.0.5" }));
    assert_eq!(found["result"], 0, "{found}");
    assert!(statistic(
        &with_certificate,
        "xdhcpd_control_api_unauthorized_total{reason=\"tls_handshake\"}"
    )
    .is_some_and(|count| count >= 1));
    if tool("kea-shell") {
        let port = api_port.to_string();
        let options = [
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--ca",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "--auth-user",
            USER,
            "--auth-password",
            PASSWORD,
        ];
        let found = kea_shell(&options, "lease4-get", "\"ip-address\": \"127.1.0.5\"");
        assert_eq!(found["result"], 0, "{found}");
    }
}

/// The inode of `path`.
fn inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).ok().map(|metadata| metadata.ino())
}

#[test]
fn lease_file_rewrite_replaces_the_file_and_keeps_every_lease() {
    if !tool("curl") {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let (dhcp_port, api_port) = ports(4);
    let dir = TempDir::new("control-api-rewrite");
    write_files(&dir.0, api_port, "");
    let _server = Server::start(&dir.0, dhcp_port);
    let curl = Curl::http(api_port);
    curl.wait_ready();
    let path = dir.0.join("dhcpd.leases");
    let backup = dir.0.join("dhcpd.leases~");
    // The start-up rewrite (in the background) leaves the file it replaced as the backup.
    crate::netns::wait_for("the start-up rewrite", Duration::from_secs(20), || {
        Ok(inode(&backup))
    })
    .expect("no start-up rewrite");
    let added = curl.command(
        "lease4-add",
        json!({ "ip-address": "127.1.0.61", "hw-address": "02:00:00:00:00:61" }),
    );
    assert_eq!(added["result"], 0, "{added}");
    let before = inode(&path);
    let appended = lease_file(&dir.0);
    let rewrite = curl.command("lease-file-rewrite", Value::Null);
    assert_eq!(rewrite["result"], 0, "{rewrite}");
    crate::netns::wait_for("the requested rewrite", Duration::from_secs(20), || {
        Ok((inode(&path) != before).then_some(()))
    })
    .expect("the file was not replaced");
    // The new file holds every lease once; the one it replaced is the backup.
    let rewritten = lease_file(&dir.0);
    for address in ["127.1.0.5", "127.1.0.61"] {
        assert_eq!(
            rewritten.matches(&format!("lease {address} {{")).count(),
            1,
            "{address} in\n{rewritten}"
        );
    }
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), appended);
}
