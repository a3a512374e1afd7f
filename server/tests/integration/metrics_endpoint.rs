//! Tier 1: the real `xdhcpd` binary on loopback serves a few DHCP exchanges through a test relay
//! at 127.0.0.2, then its Prometheus endpoint is scraped over 127.0.0.1: every metric family is
//! there with values that match the exchanges, and the exchanges are logged in ISC's words.

#![expect(
    clippy::disallowed_methods,
    reason = "drives the real server in real time"
)]

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, MessageType, OptionCode};

use crate::loopback_support::{self, PortRange};

use loopback_support::{exchange, message, message_type, relay_socket, TempDir};

/// The server with its standard error in a file, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path, port: u16, metrics: SocketAddrV4) -> Server {
    let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_xdhcpd"))
        .args(["-f", "-d", "-cf"])
        .arg(dir.join("dhcpd.conf"))
        .arg("-lf")
        .arg(dir.join("dhcpd.leases"))
        .arg("-pf")
        .arg(dir.join("dhcpd.pid"))
        .args(["-p", &port.to_string(), "--no-xdp", "--threads", "2"])
        .args(["--metrics-listen", &metrics.to_string()])
        .arg("lo")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start xdhcpd");
    Server(child)
}

fn scrape(address: SocketAddrV4) -> String {
    let mut stream = TcpStream::connect(address).expect("metrics endpoint");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

/// The value of the sample `name` (with its labels), if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn value(text: &str, name: &str) -> f64 {
    sample(text, name).unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

/// DORA for three clients, one undecodable datagram; then every family is checked.
#[test]
fn scrape_after_exchanges_has_every_family() {
    let dir = TempDir::new("metrics-endpoint");
    let port = loopback_support::port(PortRange::Metrics, 0);
    let from_config = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port.wrapping_add(1));
    let from_cli = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port.wrapping_add(2));
    // The xdhcpd statement in the form ISC dhcpd 4.4 also parses; the command line overrides it.
    std::fs::write(
        dir.0.join("dhcpd.conf"),
        format!(
            "option space xdhcpd;\n\
             option xdhcpd.metrics-listen code 10 = text;\n\
             option xdhcpd.metrics-listen \"{from_config}\";\n\
             authoritative;\ndefault-lease-time 600;\nping-check false;\n\
             subnet 127.0.0.0 netmask 255.0.0.0 {{\n  range 127.0.10.1 127.0.10.200;\n}}\n"
        ),
    )
    .unwrap();
    std::fs::File::create(dir.0.join("dhcpd.leases")).unwrap();
    let socket = relay_socket(port);
    let _server = start(&dir.0, port, from_cli);

    let mut addresses = Vec::new();
    for client in 0..3u8 {
        let mac = [0x02, 0, 0, 0, 0, 0x11 + client];
        let xid = 100 + u32::from(client) * 2;
        let offer = exchange(
            &socket,
            port,
            &message(MessageType::Discover, mac, xid, Ipv4Addr::UNSPECIFIED),
            Duration::from_secs(20),
        )
        .expect("no DHCPOFFER");
        let server_id = match offer.opts().get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(id)) => *id,
            other => panic!("no server identifier: {other:?}"),
        };
        let mut request = message(MessageType::Request, mac, xid + 1, Ipv4Addr::UNSPECIFIED);
        request
            .opts_mut()
            .insert(DhcpOption::RequestedIpAddress(offer.yiaddr()));
        request
            .opts_mut()
            .insert(DhcpOption::ServerIdentifier(server_id));
        let ack = exchange(&socket, port, &request, Duration::from_secs(5)).expect("no DHCPACK");
        assert_eq!(message_type(&ack), Some(MessageType::Ack));
        addresses.push(ack.yiaddr());
    }
    socket
        .send_to(&[0u8; 20], SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
        .unwrap();

    // The undecodable datagram may still be in the socket: poll with a bound.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = scrape(from_cli);
        // The committer counts a reply as accepted after its sendmmsg returns, which can be
        // after the client already holds the ACK: wait for both counts too.
        if sample(&text, "xdhcpd_drops_total{reason=\"malformed\"}").unwrap_or(0.0) >= 1.0
            && sample(&text, "xdhcpd_replies_kernel_accepted_total").unwrap_or(0.0) >= 6.0
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "malformed drop or sent replies not counted:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Printed for the closing note (`cargo test … -- --nocapture`).
    println!("{text}");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");

    // At least: retransmissions under load may add more.
    for (name, minimum) in [
        ("xdhcpd_packets_received_total{type=\"discover\"}", 3.0),
        ("xdhcpd_packets_received_total{type=\"request\"}", 3.0),
        ("xdhcpd_packets_sent_total{type=\"offer\"}", 3.0),
        ("xdhcpd_packets_sent_total{type=\"ack\"}", 3.0),
        ("xdhcpd_datagrams_received_total", 7.0),
        ("xdhcpd_replies_kernel_accepted_total", 6.0),
        ("xdhcpd_leases_committed_total", 3.0),
        ("xdhcpd_lease_commit_batch_records_count", 1.0),
        ("xdhcpd_lease_commit_batch_records_sum", 3.0),
        ("xdhcpd_lease_commit_fsync_seconds_count", 1.0),
        ("xdhcpd_leases", 3.0),
    ] {
        let found = value(body, name);
        assert!(found >= minimum, "{name} = {found} < {minimum}:\n{body}");
    }
    for (name, expected) in [
        ("xdhcpd_drops_total{reason=\"pool_exhausted\"}", 0.0),
        ("xdhcpd_packets_sent_total{type=\"nak\"}", 0.0),
        (
            "xdhcpd_pool_addresses{subnet=\"127.0.0.0/8\",pool=\"0\"}",
            200.0,
        ),
        ("xdhcpd_pool_active{subnet=\"127.0.0.0/8\",pool=\"0\"}", 3.0),
        ("xdhcpd_pool_free{subnet=\"127.0.0.0/8\",pool=\"0\"}", 197.0),
        ("xdhcpd_pool_backup{subnet=\"127.0.0.0/8\",pool=\"0\"}", 0.0),
        (
            "xdhcpd_pool_abandoned{subnet=\"127.0.0.0/8\",pool=\"0\"}",
            0.0,
        ),
        ("xdhcpd_lease_commit_fsync_seconds_bucket{le=\"+Inf\"}", {
            value(body, "xdhcpd_lease_commit_fsync_seconds_count")
        }),
    ] {
        assert_eq!(value(body, name), expected, "{name}:\n{body}");
    }
    // The kernel's counters of the DHCP socket on lo (no drop expected at this rate).
    assert!(value(body, "xdhcpd_socket_drops_total{interface=\"lo\"}") >= 0.0);
    assert!(value(body, "xdhcpd_socket_receive_buffer_bytes{interface=\"lo\"}") > 0.0);
    // No XDP (--no-xdp) and no failover peer: those families are absent, not zero.
    assert!(!body.contains("xdhcpd_xdp_frames_total"), "{body}");
    assert!(!body.contains("xdhcpd_failover_state"), "{body}");
    // The command line overrode the config's address.
    assert!(TcpStream::connect(from_config).is_err());

    // ISC's one-line summaries, `via` the relay (giaddr).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(dir.0.join("stderr.log")).unwrap();
        let expected = [
            "DHCPDISCOVER from 02:00:00:00:00:11 via 127.0.0.2".to_string(),
            format!(
                "DHCPOFFER on {} to 02:00:00:00:00:11 via 127.0.0.2",
                addresses[0]
            ),
            format!(
                "DHCPREQUEST for {} (127.0.0.1) from 02:00:00:00:00:12 via 127.0.0.2",
                addresses[1]
            ),
            format!(
                "DHCPACK on {} to 02:00:00:00:00:13 via 127.0.0.2",
                addresses[2]
            ),
        ];
        if expected.iter().all(|line| log.contains(line.as_str())) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "missing one of {expected:#?} in:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
