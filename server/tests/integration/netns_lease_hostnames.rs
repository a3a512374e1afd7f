//! `get-lease-hostnames true;` on the wire (needs root), against ISC dhcpd 4.4 as the oracle.
//!
//! The server namespace gets a hosts file of its own through `ip netns exec`'s
//! `/etc/netns/NAME/` bind mounts (ip-netns(8)): one pool address has a name, the other none,
//! and the resolver's DNS server is the namespace's own loopback, where nothing answers, so no
//! lookup leaves the lab. A relay agent asks for both addresses: the first DHCPOFFER carries
//! the name as option 12 with a trailing NUL, the second none, and the server logs "No hostname
//! for A". The host's own /etc/hosts and /etc/resolv.conf are not touched.

use crate::common;
use crate::netns;

use anyhow::{ensure, Context as _, Result};
use netns::peers::{ServerKind, ServerSetup};
use netns::{wait_for, DhcpConfig, Lab};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Its own subnets, apart from the other netns tests'.
const SERVER_CIDR: &str = "10.220.9.1/24";
const RELAY: &str = "10.221.9.1";
const NAMED: &str = "10.221.9.100";
const UNNAMED: &str = "10.221.9.101";
const ISC_DHCPD: &str = "/usr/sbin/dhcpd";

const DHCPD_CONF: &str = "authoritative;\nddns-update-style none;\nping-check false;\n\
    get-lease-hostnames true;\n\
    subnet 10.220.9.0 netmask 255.255.255.0 { }\n\
    subnet 10.221.9.0 netmask 255.255.255.0 { range 10.221.9.100 10.221.9.101; }\n";

/// A relay agent's DHCPDISCOVER per MAC; prints `MAC YIADDR OPTION-12-HEX` (`-` when absent)
/// or `MAC none`.
const CLIENT: &str = r#"
import socket, struct, sys
server, relay = sys.argv[1:3]
def discover(chaddr, xid):
    header = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 1, xid, 0, 0, bytes(4), bytes(4),
        bytes(4), socket.inet_aton(relay), chaddr.ljust(16, b"\0"), bytes(64), bytes(128))
    return header + bytes([99, 130, 83, 99, 53, 1, 1, 255])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind((relay, 67))
sock.settimeout(3)
for index, mac in enumerate(sys.argv[3:]):
    sock.sendto(discover(bytes.fromhex(mac), 0x3100 + index), (server, 67))
    try:
        data, _ = sock.recvfrom(4096)
    except socket.timeout:
        print(mac, "none", flush=True)
        continue
    options, at, name = data[240:], 0, "-"
    while at < len(options) and options[at] != 255:
        if options[at] == 0:
            at += 1
            continue
        code, length = options[at], options[at + 1]
        if code == 12:
            name = options[at + 2:at + 2 + length].hex()
        at += 2 + length
    print(mac, socket.inet_ntoa(data[16:20]), name, flush=True)
"#;

/// `/etc/netns/NAME/`, removed on drop (and `/etc/netns` when it is left empty).
struct NetnsEtc {
    path: PathBuf,
}

impl NetnsEtc {
    fn new(netns: &str, files: &[(&str, &str)]) -> Result<Self> {
        ensure!(netns.starts_with("xdh-"), "only our own namespaces");
        let path = Path::new("/etc/netns").join(netns);
        std::fs::create_dir_all(&path)?;
        let etc = Self { path };
        for (name, text) in files {
            std::fs::write(etc.path.join(name), text)?;
        }
        Ok(etc)
    }
}

impl Drop for NetnsEtc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        let _ = std::fs::remove_dir("/etc/netns");
    }
}

fn offers(kind: &ServerKind) -> Result<Vec<String>> {
    let lab = Lab::new(SERVER_CIDR)?;
    lab.route_relay(RELAY, "10.221.9.0/24", "10.220.9.0/24")?;
    let _etc = NetnsEtc::new(
        &lab.server.name,
        &[
            (
                "hosts",
                &format!("127.0.0.1 localhost\n{NAMED} pc100.lab.test pc100\n"),
            ),
            (
                "resolv.conf",
                "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
            ),
        ],
    )?;
    let server = ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind: kind.clone(),
        config: DhcpConfig::lab_default(),
        interface: lab.server_if.clone(),
        relayed: true,
        dhcpd_conf: Some(DHCPD_CONF.to_owned()),
    }
    .start()?;
    if let ServerKind::Xdhcpd { .. } = kind {
        // Looked up off the packet path, at start-up.
        wait_for("the pool's reverse names", Duration::from_secs(20), || {
            Ok(server
                .proc
                .log_text()
                .contains("get-lease-hostnames: 2 addresses looked up")
                .then_some(()))
        })?;
    }
    let script = lab.dir.join("client.py");
    std::fs::write(&script, CLIENT)?;
    let output = lab
        .client
        .exec_ok(&[
            "timeout",
            "30",
            "python3",
            &script.to_string_lossy(),
            &lab.server_address.to_string(),
            RELAY,
            "020000003101",
            "020000003102",
        ])
        .with_context(|| format!("server log:\n{}", server.proc.log_text()))?;
    let log = server.proc.log_text();
    ensure!(
        log.contains(&format!("No hostname for {UNNAMED}")),
        "{}: no 'No hostname' line:\n{log}",
        kind.label()
    );
    Ok(output.lines().map(str::to_owned).collect())
}

fn names_the_offers(kind: &ServerKind) -> Result<()> {
    let offers = offers(kind)?;
    let expected = vec![
        format!("020000003101 {NAMED} {}", hex(b"pc100.lab.test\0")),
        format!("020000003102 {UNNAMED} -"),
    ];
    ensure!(
        offers == expected,
        "{}: offers {offers:?}, expected {expected:?}",
        kind.label()
    );
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn offers_carry_the_reverse_name_of_their_address() -> Result<()> {
    if !common::privileged("offers_carry_the_reverse_name_of_their_address") {
        return Ok(());
    }
    names_the_offers(&ServerKind::Xdhcpd {
        binary: env!("CARGO_BIN_EXE_xdhcpd").into(),
        xdp: false,
    })
}

/// The oracle: ISC dhcpd 4.4 in the same scenario (skipped when it is not installed).
#[test]
fn isc_dhcpd_names_its_offers_the_same_way() -> Result<()> {
    if !common::privileged("isc_dhcpd_names_its_offers_the_same_way") {
        return Ok(());
    }
    if !Path::new(ISC_DHCPD).exists() {
        eprintln!("SKIPPED isc_dhcpd_names_its_offers_the_same_way: {ISC_DHCPD} not installed");
        return Ok(());
    }
    names_the_offers(&ServerKind::IscDhcpd)
}
