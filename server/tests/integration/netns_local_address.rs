//! `local-address A;` on the wire (needs root), against ISC dhcpd 4.4 as the oracle.
//!
//! ISC's Linux (LPF) build sends some replies through its fallback UDP socket, which it binds to
//! `local-address` (common/socket.c `if_register_socket`): those leave from A, the others from
//! the interface's address. A client namespace with a relay address and a leased address sends,
//! with plain UDP sockets that report each reply's source:
//!
//! - a relayed DHCPDISCOVER (reply to giaddr: from A);
//! - a RENEWING DHCPREQUEST unicast from ciaddr (DHCPACK to ciaddr: from A);
//! - a DHCPINFORM from ciaddr (from A);
//! - a DHCPDISCOVER with the broadcast bit (broadcast DHCPOFFER: from the interface's address).
//!
//! A is on the server namespace's loopback, not on the interface served. An address that is not
//! the host's stops the start with ISC's lines.

use crate::common;
use crate::netns;

use anyhow::{ensure, Context as _, Result};
use netns::peers::{ServerKind, ServerSetup};
use netns::{DhcpConfig, Lab};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

/// Its own subnets, apart from the other netns tests'.
const SERVER_CIDR: &str = "10.218.0.1/24";
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 218, 0, 1);
/// `local-address`: on the server namespace's `lo`.
const LOCAL_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 218, 9, 1);
const RELAY: &str = "10.219.0.1";
/// The renewing client's address, leased to `RENEWING_MAC` in the starting lease file.
const LEASED: &str = "10.218.0.110";
const RENEWING_MAC: &str = "02:00:00:00:21:01";
const ISC_DHCPD: &str = "/usr/sbin/dhcpd";

fn dhcpd_conf(local_address: Ipv4Addr) -> String {
    format!(
        "authoritative;\nddns-update-style none;\nping-check false;\n\
         default-lease-time 600;\nmax-lease-time 7200;\nlocal-address {local_address};\n\
         subnet 10.218.0.0 netmask 255.255.255.0 {{ range 10.218.0.100 10.218.0.120; }}\n\
         subnet 10.219.0.0 netmask 255.255.255.0 {{ range 10.219.0.100 10.219.0.120; }}\n"
    )
}

#[expect(clippy::disallowed_methods, reason = "test driver owns the clock")]
fn lease_file() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    format!(
        "lease {LEASED} {{\n  starts epoch {};\n  ends epoch {};\n  cltt epoch {};\n  \
         binding state active;\n  next binding state free;\n  \
         hardware ethernet {RENEWING_MAC};\n}}\n",
        now - 60,
        now + 3600,
        now - 60
    )
}

/// The client: one request per step, each answer's source address and message type.
const CLIENT: &str = r#"
import socket, struct, sys
server, relay, leased, renewing_mac = sys.argv[1:5]

def mac(text):
    return bytes.fromhex(text.replace(":", ""))

def request(message_type, chaddr, xid, ciaddr="0.0.0.0", giaddr="0.0.0.0", flags=0):
    header = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 1 if giaddr != "0.0.0.0" else 0,
        xid, 0, flags, socket.inet_aton(ciaddr), bytes(4), bytes(4), socket.inet_aton(giaddr),
        chaddr.ljust(16, b"\0"), bytes(64), bytes(128))
    return header + bytes([99, 130, 83, 99, 53, 1, message_type, 255])

def udp(address, port, broadcast=False):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if broadcast:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.bind((address, port))
    sock.settimeout(3)
    return sock

def step(name, send, receive, payload, xid):
    send.sendto(payload, (server, 67))
    while True:
        try:
            data, (source, _) = receive.recvfrom(4096)
        except socket.timeout:
            print("%s none" % name, flush=True)
            return
        if len(data) >= 240 and struct.unpack("!I", data[4:8])[0] == xid:
            options = data[240:]
            kind = options[options.index(bytes([53, 1])) + 2] if bytes([53, 1]) in options else 0
            print("%s %s %d" % (name, source, kind), flush=True)
            return

relayed = udp(relay, 67)
renewing = udp(leased, 68)
broadcasts = udp("", 68, broadcast=True)
step("relayed-offer", relayed, relayed, request(1, mac("02:00:00:00:21:02"), 0x2101, giaddr=relay), 0x2101)
step("renewal-ack", renewing, renewing, request(3, mac(renewing_mac), 0x2102, ciaddr=leased), 0x2102)
step("inform-ack", renewing, renewing, request(8, mac(renewing_mac), 0x2103, ciaddr=leased), 0x2103)
step("broadcast-offer", renewing, broadcasts, request(1, mac("02:00:00:00:21:03"), 0x2104, flags=0x8000), 0x2104)
"#;

/// The lab: the relay's address and the leased address on the client's end, A on the server
/// namespace's loopback.
fn lab() -> Result<Lab> {
    let lab = Lab::new(SERVER_CIDR)?;
    lab.route_relay(RELAY, "10.219.0.0/24", "10.218.0.0/24")?;
    lab.client.ip(&[
        "addr",
        "add",
        &format!("{LEASED}/32"),
        "dev",
        &lab.client_if,
    ])?;
    lab.server
        .ip(&["addr", "add", &format!("{LOCAL_ADDRESS}/32"), "dev", "lo"])?;
    Ok(lab)
}

fn setup<'a>(lab: &'a Lab, kind: &ServerKind, local_address: Ipv4Addr) -> ServerSetup<'a> {
    ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind: kind.clone(),
        config: DhcpConfig::lab_default(),
        interface: lab.server_if.clone(),
        relayed: false,
        dhcpd_conf: Some(dhcpd_conf(local_address)),
    }
}

/// Each step's answer: (source address, DHCP message type).
fn reply_sources(kind: &ServerKind) -> Result<BTreeMap<String, (Ipv4Addr, u8)>> {
    let lab = lab()?;
    std::fs::write(lab.dir.join("server.leases"), lease_file())?;
    let server = setup(&lab, kind, LOCAL_ADDRESS).start()?;
    let script = lab.dir.join("client.py");
    std::fs::write(&script, CLIENT)?;
    let output = lab
        .client
        .exec_ok(&[
            "timeout",
            "30",
            "python3",
            &script.to_string_lossy(),
            &SERVER.to_string(),
            RELAY,
            LEASED,
            RENEWING_MAC,
        ])
        .with_context(|| format!("server log:\n{}", server.proc.log_text()))?;
    let mut replies = BTreeMap::new();
    for line in output.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        ensure!(
            words.len() == 3,
            "{}: {line}\nserver log:\n{}",
            kind.label(),
            server.proc.log_text()
        );
        replies.insert(words[0].to_owned(), (words[1].parse()?, words[2].parse()?));
    }
    Ok(replies)
}

/// What ISC dhcpd 4.4 does (checked by `isc_dhcpd_sends_from_its_local_address`).
fn expected() -> BTreeMap<String, (Ipv4Addr, u8)> {
    [
        ("relayed-offer", (LOCAL_ADDRESS, 2)),
        ("renewal-ack", (LOCAL_ADDRESS, 5)),
        ("inform-ack", (LOCAL_ADDRESS, 5)),
        ("broadcast-offer", (SERVER, 2)),
    ]
    .into_iter()
    .map(|(step, reply)| (step.to_owned(), reply))
    .collect()
}

fn sends_from_the_local_address(kind: &ServerKind) -> Result<()> {
    let replies = reply_sources(kind)?;
    ensure!(
        replies == expected(),
        "{}: replies {replies:?}, expected {:?}",
        kind.label(),
        expected()
    );
    Ok(())
}

/// An address that is not the host's: the start fails with ISC's first line.
fn refuses_a_foreign_address(kind: &ServerKind) -> Result<()> {
    let lab = lab()?;
    let started = setup(&lab, kind, Ipv4Addr::new(10, 218, 77, 1)).start();
    ensure!(started.is_err(), "{}: started", kind.label());
    let log = std::fs::read_to_string(lab.dir.join("server.log"))?;
    ensure!(
        log.contains("Can't bind to dhcp address: Cannot assign requested address")
            && log.contains("includes a bootp server."),
        "{}: {log}",
        kind.label()
    );
    Ok(())
}

fn xdhcpd() -> ServerKind {
    ServerKind::Xdhcpd {
        binary: env!("CARGO_BIN_EXE_xdhcpd").into(),
        xdp: false,
    }
}

#[test]
fn replies_isc_sends_through_its_fallback_socket_leave_from_local_address() -> Result<()> {
    if !common::privileged("replies_isc_sends_through_its_fallback_socket_leave_from_local_address")
    {
        return Ok(());
    }
    sends_from_the_local_address(&xdhcpd())
}

#[test]
fn a_local_address_not_of_this_host_stops_the_start() -> Result<()> {
    if !common::privileged("a_local_address_not_of_this_host_stops_the_start") {
        return Ok(());
    }
    refuses_a_foreign_address(&xdhcpd())
}

/// The oracle: ISC dhcpd 4.4 in the same scenarios (skipped when it is not installed).
#[test]
fn isc_dhcpd_sends_from_its_local_address() -> Result<()> {
    if !common::privileged("isc_dhcpd_sends_from_its_local_address") {
        return Ok(());
    }
    if !Path::new(ISC_DHCPD).exists() {
        eprintln!("SKIPPED isc_dhcpd_sends_from_its_local_address: {ISC_DHCPD} not installed");
        return Ok(());
    }
    sends_from_the_local_address(&ServerKind::IscDhcpd)?;
    refuses_a_foreign_address(&ServerKind::IscDhcpd)
}
