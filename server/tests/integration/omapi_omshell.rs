//! Tier 1: ISC's real `omshell` (Debian isc-dhcp-client) against the real `xdhcpd` binary on
//! loopback (docs/spec/omapi.md §7): lease lookups by IP and MAC, a host reservation honoured at once and
//! after a restart, deletion, host `statements` reaching the client, and the refusals for a
//! wrong or missing key. Skipped when omshell
//! is not installed, unless REQUIRE_PRIVILEGED_TESTS=1 (CI), where that is a failure.

#![expect(
    clippy::disallowed_methods,
    reason = "drives the real server in real time"
)]

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};

const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZg==";
const OMSHELL: &str = "/usr/bin/omshell";

use crate::loopback_support::{self, PortRange};

use loopback_support::{exchange, message, message_type, relay_socket, Server, TempDir};

fn port_for(test: u16) -> u16 {
    loopback_support::port(PortRange::OmapiOmshell, test * 4)
}

fn write_config(dir: &Path, omapi_port: u16) {
    let mut file = std::fs::File::create(dir.join("dhcpd.conf")).unwrap();
    writeln!(
        file,
        // dhcp-cache-threshold 0: the tests run DORA again right after a host change and want
        // the new host's lease time, not the first lease's remaining time (ISC's 25 % reuse).
        "authoritative;\ndefault-lease-time 600;\nmax-lease-time 7200;\ndhcp-cache-threshold 0;\n\
         ping-check false;\n\
         key omapi_key {{ algorithm hmac-md5; secret \"{SECRET}\"; }};\n\
         omapi-port {omapi_port};\nomapi-key omapi_key;\n\
         subnet 127.0.0.0 netmask 255.0.0.0 {{\n  option routers 127.0.0.1;\n  \
         range 127.0.10.1 127.0.10.200;\n}}"
    )
    .unwrap();
}

/// Waits until the OMAPI port accepts connections (bounded).
fn wait_for_omapi(port: u16) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("OMAPI port {port} never opened");
}

/// Runs omshell with `key` (None: no key) and `commands`, returns what it printed.
fn omshell(port: u16, key: Option<&str>, commands: &str) -> String {
    let mut script = format!("server 127.0.0.1\nport {port}\n");
    if let Some(secret) = key {
        script.push_str(&format!("key omapi_key {secret}\n"));
    }
    script.push_str("connect\n");
    script.push_str(commands);
    let mut child = Command::new(OMSHELL)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run omshell");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    // omshell exits at end of input; bound the wait anyway.
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("---- omshell ----\n{script}---- output ----\n{text}");
    text
}

fn omshell_available() -> bool {
    if Path::new(OMSHELL).exists() {
        return true;
    }
    assert!(
        std::env::var("REQUIRE_PRIVILEGED_TESTS").is_err(),
        "omshell is required (apt-get install isc-dhcp-client)"
    );
    eprintln!("skipped: {OMSHELL} not installed");
    false
}

/// DISCOVER + REQUEST through the relay; the ACKed address.
fn dora(socket: &UdpSocket, port: u16, mac: [u8; 6], xid: u32) -> Ipv4Addr {
    dora_ack(socket, port, mac, xid).yiaddr()
}

/// DISCOVER + REQUEST through the relay; the DHCPACK.
fn dora_ack(socket: &UdpSocket, port: u16, mac: [u8; 6], xid: u32) -> Message {
    let offer = exchange(
        socket,
        port,
        &message(MessageType::Discover, mac, xid, Ipv4Addr::UNSPECIFIED),
        Duration::from_secs(20),
    )
    .expect("no DHCPOFFER");
    assert_eq!(message_type(&offer), Some(MessageType::Offer));
    let address = offer.yiaddr();
    let server_id = match offer.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(id)) => *id,
        other => panic!("no server identifier: {other:?}"),
    };
    let mut request = message(MessageType::Request, mac, xid + 1, Ipv4Addr::UNSPECIFIED);
    request
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(address));
    request
        .opts_mut()
        .insert(DhcpOption::ServerIdentifier(server_id));
    let ack = exchange(socket, port, &request, Duration::from_secs(10)).expect("no DHCPACK");
    assert_eq!(message_type(&ack), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), address);
    ack
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[test]
fn omshell_leases_hosts_and_keys() {
    if !omshell_available() {
        return;
    }
    let dir = TempDir::new("omapi-omshell");
    let port = port_for(0);
    let omapi_port = port + 1;
    write_config(&dir.0, omapi_port);
    std::fs::File::create(dir.0.join("dhcpd.leases")).unwrap();
    let socket = relay_socket(port);
    let mut server = Server::start(&dir.0, port);
    wait_for_omapi(omapi_port);

    // A real client gets a lease; omshell finds it by IP and by MAC.
    let client = [0x02, 0x00, 0x00, 0x00, 0x0a, 0x01];
    let address = dora(&socket, port, client, 100);
    let by_ip = omshell(
        omapi_port,
        Some(SECRET),
        &format!("new lease\nset ip-address = {address}\nopen\n"),
    );
    assert!(
        by_ip.contains(&format!("hardware-address = {}", colon_hex(&client))),
        "{by_ip}"
    );
    assert!(by_ip.contains("state = 00:00:00:02"), "{by_ip}");
    let by_mac = omshell(
        omapi_port,
        Some(SECRET),
        &format!(
            "new lease\nset hardware-address = {}\nopen\n",
            colon_hex(&client)
        ),
    );
    assert!(
        by_mac.contains(&format!("ip-address = {}", colon_hex(&address.octets()))),
        "{by_mac}"
    );

    // A host reservation applies to a new client at once.
    let reserved = [0x02, 0x00, 0x00, 0x00, 0x0b, 0x01];
    let fixed = Ipv4Addr::new(127, 0, 20, 5);
    let created = omshell(
        omapi_port,
        Some(SECRET),
        &format!(
            "new host\nset name = \"omhost\"\nset hardware-address = {}\n\
             set hardware-type = 1\nset ip-address = {fixed}\ncreate\n",
            colon_hex(&reserved)
        ),
    );
    assert!(created.contains("name = \"omhost\""), "{created}");
    assert!(!created.contains("can't"), "{created}");
    assert_eq!(dora(&socket, port, reserved, 200), fixed);
    let duplicate = omshell(
        omapi_port,
        Some(SECRET),
        &format!(
            "new host\nset name = \"omhost\"\nset hardware-address = {}\n\
             set hardware-type = 1\ncreate\n",
            colon_hex(&reserved)
        ),
    );
    assert!(duplicate.contains("already exists"), "{duplicate}");

    // It survives a restart (persisted as `host omhost { dynamic; … }`).
    server.kill();
    let leases = std::fs::read_to_string(dir.0.join("dhcpd.leases")).unwrap();
    assert!(
        leases.contains("host omhost {") && leases.contains("dynamic;"),
        "{leases}"
    );
    let mut server = Server::start(&dir.0, port);
    wait_for_omapi(omapi_port);
    let reopened = omshell(
        omapi_port,
        Some(SECRET),
        "new host\nset name = \"omhost\"\nopen\n",
    );
    assert!(
        reopened.contains(&format!("hardware-address = {}", colon_hex(&reserved))),
        "{reopened}"
    );
    assert_eq!(dora(&socket, port, reserved, 300), fixed);

    // Deleted: the client gets a dynamic address again, also after another restart.
    let removed = omshell(
        omapi_port,
        Some(SECRET),
        "new host\nset name = \"omhost\"\nopen\nremove\n",
    );
    assert!(!removed.contains("can't destroy"), "{removed}");
    assert_ne!(dora(&socket, port, reserved, 400), fixed);
    server.kill();
    let _server = Server::start(&dir.0, port);
    wait_for_omapi(omapi_port);
    let gone = omshell(
        omapi_port,
        Some(SECRET),
        "new host\nset name = \"omhost\"\nopen\n",
    );
    assert!(gone.contains("can't open object: not found"), "{gone}");

    // Wrong key: the signature check fails and omshell gets no usable answer.
    let wrong = omshell(
        omapi_port,
        Some("d3JvbmcgZGhjcCBzZWNyZXQ="),
        &format!("new lease\nset ip-address = {address}\nopen\n"),
    );
    assert!(wrong.contains("can't open object"), "{wrong}");
    assert!(!wrong.contains("hardware-address ="), "{wrong}");

    // No key on a server that requires one.
    let keyless = omshell(
        omapi_port,
        None,
        &format!("new lease\nset ip-address = {address}\nopen\n"),
    );
    assert!(
        keyless.contains("can't open object: no key specified"),
        "{keyless}"
    );
}

fn domain_name(message: &Message) -> Option<String> {
    match message.opts().get(OptionCode::DomainName) {
        Some(DhcpOption::DomainName(name)) => Some(name.clone()),
        _ => None,
    }
}

fn lease_time(message: &Message) -> Option<u32> {
    match message.opts().get(OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(seconds)) => Some(*seconds),
        _ => None,
    }
}

/// A host created with `statements` (docs/spec/omapi.md §8.2): the client's ACK carries what they set,
/// at once and after a restart (the statements are read back from dhcpd.leases); statements the
/// parser refuses are a parse error for omshell.
#[test]
fn omshell_host_statements_reach_the_client() {
    if !omshell_available() {
        return;
    }
    let dir = TempDir::new("omapi-statements");
    let port = port_for(1);
    let omapi_port = port + 1;
    write_config(&dir.0, omapi_port);
    std::fs::File::create(dir.0.join("dhcpd.leases")).unwrap();
    let socket = relay_socket(port);
    let mut server = Server::start(&dir.0, port);
    wait_for_omapi(omapi_port);

    let client = [0x02, 0x00, 0x00, 0x00, 0x0c, 0x01];
    let plain = dora_ack(&socket, port, client, 500);
    assert_eq!(domain_name(&plain), None);
    assert_eq!(lease_time(&plain), Some(600));

    let refused = omshell(
        omapi_port,
        Some(SECRET),
        &format!(
            "new host\nset name = \"badstmt\"\nset hardware-address = {}\n\
             set hardware-type = 1\nset statements = \"option no-such-option 1;\"\ncreate\n",
            colon_hex(&client)
        ),
    );
    assert!(refused.contains("parse error"), "{refused}");

    let created = omshell(
        omapi_port,
        Some(SECRET),
        &format!(
            "new host\nset name = \"stmthost\"\nset hardware-address = {}\n\
             set hardware-type = 1\n\
             set statements = \"option domain-name \\\"omapi.example\\\"; default-lease-time 300;\"\n\
             create\n",
            colon_hex(&client)
        ),
    );
    assert!(created.contains("name = \"stmthost\""), "{created}");
    assert!(!created.contains("can't"), "{created}");
    let ack = dora_ack(&socket, port, client, 600);
    assert_eq!(domain_name(&ack).as_deref(), Some("omapi.example"));
    assert_eq!(lease_time(&ack), Some(300));

    // Persisted in the host record, and applied again after a restart.
    server.kill();
    let leases = std::fs::read_to_string(dir.0.join("dhcpd.leases")).unwrap();
    assert!(
        leases.contains("host stmthost {")
            && leases.contains("option domain-name \"omapi.example\";"),
        "{leases}"
    );
    let _server = Server::start(&dir.0, port);
    wait_for_omapi(omapi_port);
    let ack = dora_ack(&socket, port, client, 700);
    assert_eq!(domain_name(&ack).as_deref(), Some("omapi.example"));
    assert_eq!(lease_time(&ack), Some(300));
}
