//! Tier 1: the real `xdhcpd` binary on loopback, no root needed. A test client plays a relay
//! agent at 127.0.0.2 (giaddr), so replies come back to it by unicast (RFC 2131 §4.1) and no
//! broadcast or raw socket is involved.

#![expect(
    clippy::disallowed_methods,
    reason = "drives the real server in real time"
)]

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use dhcproto::v4::{DhcpOption, MessageType, OptionCode};

use crate::loopback_support::{self, PortRange};

use loopback_support::{exchange, message, message_type, relay_socket, Server, TempDir};

fn port_for(test: u16) -> u16 {
    loopback_support::port(PortRange::Loopback, test * 2)
}

fn write_config(dir: &Path) {
    let mut file = std::fs::File::create(dir.join("dhcpd.conf")).unwrap();
    writeln!(
        file,
        // ping-check false: every 127/8 address answers pings here, so each would be abandoned
        // (and each OFFER wait a second).
        "authoritative;\ndefault-lease-time 600;\nmax-lease-time 7200;\nping-check false;\n\
         option domain-name-servers 127.0.0.53;\n\
         subnet 127.0.0.0 netmask 255.0.0.0 {{\n  option routers 127.0.0.1;\n  \
         range 127.0.10.1 127.0.10.200;\n}}"
    )
    .unwrap();
    std::fs::File::create(dir.join("dhcpd.leases")).unwrap();
}

/// DORA through a relay; the ACKed lease survives `kill -9`; a renewal after restart keeps it.
#[test]
fn dora_then_kill_then_renew() {
    let dir = TempDir::new("loopback-dora");
    write_config(&dir.0);
    let port = port_for(0);
    let socket = relay_socket(port);
    let mut server = Server::start(&dir.0, port);
    let mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];

    let offer = exchange(
        &socket,
        port,
        &message(MessageType::Discover, mac, 1, Ipv4Addr::UNSPECIFIED),
        Duration::from_secs(20),
    )
    .expect("no DHCPOFFER");
    assert_eq!(message_type(&offer), Some(MessageType::Offer));
    let address = offer.yiaddr();
    assert!(u32::from(address) >= u32::from(Ipv4Addr::new(127, 0, 10, 1)));
    let server_id = match offer.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(id)) => *id,
        other => panic!("no server identifier: {other:?}"),
    };

    let mut request = message(MessageType::Request, mac, 2, Ipv4Addr::UNSPECIFIED);
    request
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(address));
    request
        .opts_mut()
        .insert(DhcpOption::ServerIdentifier(server_id));
    let ack = exchange(&socket, port, &request, Duration::from_secs(5)).expect("no DHCPACK");
    assert_eq!(message_type(&ack), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), address);

    // The ACK left only after the lease was durable: it is in the file even after kill -9.
    server.kill();
    let leases = std::fs::read_to_string(dir.0.join("dhcpd.leases")).unwrap();
    assert!(
        leases.contains(&format!("lease {address} {{"))
            && leases.contains("hardware ethernet 02:00:00:00:00:01;"),
        "lease not durable:\n{leases}"
    );

    let _server = Server::start(&dir.0, port);
    let renew = message(MessageType::Request, mac, 3, address);
    let ack =
        exchange(&socket, port, &renew, Duration::from_secs(20)).expect("no DHCPACK to renewal");
    assert_eq!(message_type(&ack), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), address);
}

/// One scrape of the Prometheus endpoint.
fn scrape(address: SocketAddrV4) -> String {
    use std::io::Read as _;
    let mut stream = std::net::TcpStream::connect(address).expect("metrics endpoint");
    stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

/// Garbage does not kill the server: every bad datagram is counted as a drop, and the server
/// keeps answering valid clients.
#[test]
fn garbage_is_dropped() {
    let dir = TempDir::new("loopback-garbage");
    write_config(&dir.0);
    let port = port_for(1);
    let metrics = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port + 1);
    let socket = relay_socket(port);
    let _server = Server::start_with(&dir.0, port, &["--metrics-listen", &metrics.to_string()]);
    let mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
    // Wait until it serves.
    exchange(
        &socket,
        port,
        &message(MessageType::Discover, mac, 10, Ipv4Addr::UNSPECIFIED),
        Duration::from_secs(20),
    )
    .expect("server did not start");
    for length in [0usize, 1, 27, 236, 240, 241, 300] {
        let garbage: Vec<u8> = (0..length)
            .map(|index| (index * 7 + length) as u8)
            .collect();
        socket
            .send_to(&garbage, SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
            .unwrap();
    }
    // A flood of truncated requests (shorter than the BOOTP header) before the next valid one.
    let truncated = [1u8; 100];
    for _ in 0..2000 {
        socket
            .send_to(&truncated, SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
            .unwrap();
    }
    let offer = exchange(
        &socket,
        port,
        &message(MessageType::Discover, mac, 11, Ipv4Addr::UNSPECIFIED),
        Duration::from_secs(5),
    );
    assert_eq!(
        offer.as_ref().and_then(message_type),
        Some(MessageType::Offer)
    );
    // The workers may still be draining the socket when the OFFER comes back: poll the counter
    // (each bad datagram is counted as a drop) with a bound.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(metrics);
        let malformed = counter(&text, "xdhcpd_drops_total{reason=\"malformed\"}");
        if malformed >= 2000 {
            assert!(
                counter(&text, "xdhcpd_packets_sent_total{type=\"offer\"}") >= 2,
                "{text}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {malformed} of 2000+ bad datagrams counted:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
