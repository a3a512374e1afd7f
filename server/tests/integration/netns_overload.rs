//! Option overload (RFC 2132 §9.3) against ISC dhcpd 4.4 as the oracle (needs root and
//! /usr/sbin/dhcpd): the same crafted relayed requests — message type in `file`, in `sname`,
//! options in both, a malformed overloaded `file`, a file name read as options, replies too
//! large for a 576-byte message — go to ISC and to xdhcpd in turn, and each server must answer
//! the same requests, with the same options area, `file` and `sname` bytes.
//!
//! Traffic stays inside the two namespaces of a [`Lab`]; the client side plays a relay agent
//! (giaddr), so that replies come back to a plain UDP socket on port 67.

use crate::common;
use crate::netns;

use netns::peers::{ServerKind, ServerSetup};
use netns::{DhcpConfig, Lab};

const SERVER_CIDR: &str = "10.215.0.1/24";
const RELAY: &str = "10.214.0.1";

/// Options sized so that a 576-byte reply overflows into `file` and `sname`.
fn dhcpd_conf() -> String {
    format!(
        "authoritative;\nddns-update-style none;\nping-check false;\n\
         default-lease-time 600;\nmax-lease-time 600;\n\
         subnet 10.215.0.0 netmask 255.255.255.0 {{\n}}\n\
         subnet 10.214.0.0 netmask 255.255.0.0 {{\n  range 10.214.0.10 10.214.0.200;\n  \
         option routers 10.214.0.1;\n  option domain-name \"{}\";\n  \
         option root-path \"{}\";\n  option extensions-path \"{}\";\n  \
         option nis-domain \"{}\";\n}}\n",
        "d".repeat(200),
        "r".repeat(120),
        "e".repeat(60),
        "n".repeat(40),
    )
}

/// Sends each request (hex, one per line of the file argv[1]) from the relay address to the
/// server and prints, per request, the reply's hex or `none` after 2 s.
const CLIENT: &str = r#"
import socket, sys, time
relay, server = sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((relay, 67))
for line in open(sys.argv[1]):
    packet = bytes.fromhex(line.strip())
    xid = packet[4:8]
    s.sendto(packet, (server, 67))
    deadline = time.time() + 2.0
    answer = "none"
    while time.time() < deadline:
        s.settimeout(max(0.01, deadline - time.time()))
        try:
            data, _ = s.recvfrom(4096)
        except socket.timeout:
            break
        if data[4:8] == xid and data[0] == 2:
            answer = data.hex()
            break
    print(answer, flush=True)
"#;

/// A relayed BOOTREQUEST: `options` after the cookie, `file` and `sname` zero padded.
fn request(xid: u32, options: &[u8], file: &[u8], sname: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8; 236];
    bytes[0] = 1;
    bytes[1] = 1;
    bytes[2] = 6;
    bytes[3] = 1;
    bytes[4..8].copy_from_slice(&xid.to_be_bytes());
    bytes[24..28].copy_from_slice(&[10, 214, 0, 1]);
    bytes[28..34].copy_from_slice(&[2, 0, 0x52, 0, 0, xid as u8]);
    bytes[44..44 + sname.len()].copy_from_slice(sname);
    bytes[108..108 + file.len()].copy_from_slice(file);
    bytes.extend_from_slice(&[99, 130, 83, 99]);
    bytes.extend_from_slice(options);
    bytes
}

/// The parameter request list every case sends (without one, ISC orders the configured options
/// by its hash table, which xdhcpd does not reproduce).
const PRL: [u8; 8] = [55, 6, 1, 3, 15, 17, 18, 40];

fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let with_prl = |head: &[u8]| {
        let mut options = head.to_vec();
        options.extend_from_slice(&PRL);
        options.push(255);
        options
    };
    let mut in_file = vec![53, 1, 1];
    in_file.extend_from_slice(&PRL);
    in_file.push(255);
    vec![
        (
            "message type and PRL in file",
            request(1, &[52, 1, 1, 255], &in_file, b""),
        ),
        (
            "message type in sname",
            request(2, &with_prl(&[52, 1, 2]), b"", &[0, 53, 1, 1, 255]),
        ),
        (
            "PRL split over options, file and sname",
            request(
                3,
                &[52, 1, 3, 55, 2, 1, 3, 255],
                &[55, 2, 15, 17, 255],
                &[53, 1, 1, 55, 2, 18, 40, 255],
            ),
        ),
        (
            "malformed overloaded file",
            request(4, &with_prl(&[53, 1, 1, 52, 1, 1]), &[15, 200, b'x'], b""),
        ),
        (
            "file name read as options",
            request(5, &with_prl(&[53, 1, 1, 52, 1, 1]), b"pxelinux.0", b""),
        ),
        (
            "malformed overloaded sname",
            request(6, &with_prl(&[53, 1, 1, 52, 1, 2]), b"", &[12, 70, b'x']),
        ),
        (
            "reply larger than 576 bytes",
            request(7, &with_prl(&[53, 1, 1, 57, 2, 2, 64]), b"", b""),
        ),
        (
            "reply within option 57",
            request(8, &with_prl(&[53, 1, 1, 57, 2, 5, 220]), b"", b""),
        ),
    ]
}

/// Per case: `None` without a reply, else the reply's sname, file and options area (from the
/// cookie on, trailing padding removed).
fn run_against(kind: ServerKind) -> anyhow::Result<Vec<Option<Vec<u8>>>> {
    let lab = Lab::new(SERVER_CIDR)?;
    lab.route_relay(RELAY, "10.214.0.0/16", "10.215.0.0/24")?;
    let mut server = ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind,
        config: DhcpConfig::lab_default(),
        interface: lab.server_if.clone(),
        relayed: true,
        dhcpd_conf: Some(dhcpd_conf()),
    }
    .start()?;
    let requests = lab.dir.join("requests.hex");
    let lines: Vec<String> = cases()
        .iter()
        .map(|(_, bytes)| bytes.iter().map(|byte| format!("{byte:02x}")).collect())
        .collect();
    std::fs::write(&requests, lines.join("\n") + "\n")?;
    let script = lab.dir.join("client.py");
    std::fs::write(&script, CLIENT)?;
    let output = netns::run(
        lab.client
            .command("python3")
            .arg(&script)
            .arg(&requests)
            .arg(RELAY)
            .arg("10.215.0.1"),
    )?;
    server.proc.check_running()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut replies = Vec::new();
    for line in text.lines() {
        if line == "none" {
            replies.push(None);
            continue;
        }
        let bytes: Vec<u8> = (0..line.len() / 2)
            .map(|index| u8::from_str_radix(&line[2 * index..2 * index + 2], 16))
            .collect::<Result<_, _>>()?;
        let mut fields = bytes.get(44..).unwrap_or_default().to_vec();
        while fields.last() == Some(&0) {
            fields.pop();
        }
        replies.push(Some(fields));
    }
    anyhow::ensure!(
        replies.len() == cases().len(),
        "{} answers for {} requests:\n{text}\nserver log:\n{}",
        replies.len(),
        cases().len(),
        server.proc.log_text()
    );
    Ok(replies)
}

#[test]
fn overloaded_requests_and_replies_match_isc_dhcpd() -> anyhow::Result<()> {
    if !common::privileged("overloaded_requests_and_replies_match_isc_dhcpd") {
        return Ok(());
    }
    if !std::path::Path::new("/usr/sbin/dhcpd").exists() {
        assert!(
            std::env::var("REQUIRE_PRIVILEGED_TESTS").as_deref() != Ok("1"),
            "ISC dhcpd is not installed"
        );
        eprintln!("SKIPPED overloaded_requests_and_replies_match_isc_dhcpd: no /usr/sbin/dhcpd");
        return Ok(());
    }
    let isc = run_against(ServerKind::IscDhcpd)?;
    let ours = run_against(ServerKind::Xdhcpd {
        binary: env!("CARGO_BIN_EXE_xdhcpd").into(),
        xdp: false,
    })?;
    let mut differences = Vec::new();
    for (((name, _), isc), ours) in cases().iter().zip(&isc).zip(&ours) {
        eprintln!(
            "{name}: ISC {}, xdhcpd {}",
            if isc.is_some() { "answers" } else { "drops" },
            if ours.is_some() { "answers" } else { "drops" }
        );
        if isc != ours {
            differences.push(format!(
                "{name}:\n  ISC    {}\n  xdhcpd {}",
                hex(isc.as_deref()),
                hex(ours.as_deref())
            ));
        }
    }
    // The oracle did what the RFC says: answered the overloaded requests and overloaded its
    // reply to a 576-byte client.
    assert!(isc[0].is_some() && isc[1].is_some() && isc[2].is_some() && isc[3].is_none());
    let overload = |fields: &[u8]| {
        let mut rest = fields.get(64 + 128 + 4..).unwrap_or_default();
        while let [code, tail @ ..] = rest {
            match code {
                0 => rest = tail,
                255 => break,
                _ => {
                    let [length, tail @ ..] = tail else { break };
                    if *code == 52 {
                        return tail.first().copied();
                    }
                    rest = tail.get(usize::from(*length)..).unwrap_or_default();
                }
            }
        }
        None
    };
    assert_eq!(isc[6].as_deref().and_then(overload), Some(3));
    assert_eq!(isc[7].as_deref().and_then(overload), None);
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    Ok(())
}

fn hex(bytes: Option<&[u8]>) -> String {
    bytes.map_or_else(
        || "no reply".to_owned(),
        |bytes| bytes.iter().map(|byte| format!("{byte:02x}")).collect(),
    )
}
