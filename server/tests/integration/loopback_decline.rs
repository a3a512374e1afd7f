//! Tier 1, the real `xdhcpd` binary on loopback (no root): a hostile client declines every
//! address of a 10-address pool (RFC 2131 §4.3.3 DHCPDECLINE, option 50 = each address,
//! option 54 = the server). The pool is abandoned for `abandon-lease-time 5` only: after 7 s
//! three new clients all get leases. The starvation defence, which would already refuse most of
//! those declines (engine::starvation, point 6), is off here so that every decline is taken,
//! as ISC dhcpd takes them. A DECLINE of an address bound to another client is then ignored and
//! counted.

#![expect(
    clippy::disallowed_methods,
    reason = "drives the real server in real time"
)]

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use dhcproto::{Encodable, Encoder};

use crate::loopback_support::{self, PortRange};

use loopback_support::{exchange, message, message_type, relay_socket, Server, TempDir};

const POOL_SIZE: u8 = 10;

fn write_config(dir: &Path) {
    let mut file = std::fs::File::create(dir.join("dhcpd.conf")).unwrap();
    writeln!(
        file,
        // ping-check false: every 127/8 address answers pings here.
        "authoritative;\ndefault-lease-time 600;\nmax-lease-time 7200;\nabandon-lease-time 5;\n\
         ping-check false;\n\
         option space xdhcpd;\n\
         option xdhcpd.starvation-defence code 1 = boolean;\n\
         option xdhcpd.starvation-defence off;\n\
         subnet 127.0.0.0 netmask 255.0.0.0 {{\n  option routers 127.0.0.1;\n  \
         range 127.0.30.1 127.0.30.{POOL_SIZE};\n}}"
    )
    .unwrap();
    std::fs::File::create(dir.join("dhcpd.leases")).unwrap();
}

fn scrape(address: SocketAddrV4) -> String {
    let mut stream = std::net::TcpStream::connect(address).expect("metrics endpoint");
    stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

/// The sum of every sample of `family` (e.g. one gauge over its label sets).
fn sum(text: &str, family: &str) -> u64 {
    text.lines()
        .filter(|line| line.starts_with(family))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Scrapes until `done(text)` holds, at most until `deadline`.
fn wait_for(metrics: SocketAddrV4, deadline: Instant, what: &str, done: impl Fn(&str) -> bool) {
    loop {
        let text = scrape(metrics);
        if done(&text) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn server_id(reply: &Message) -> Ipv4Addr {
    match reply.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(id)) => *id,
        other => panic!("no server identifier: {other:?}"),
    }
}

/// DISCOVER, OFFER, REQUEST, ACK for `mac`; the ACKed address.
fn dora(socket: &std::net::UdpSocket, port: u16, mac: [u8; 6], xid: u32) -> Ipv4Addr {
    let discover = message(MessageType::Discover, mac, xid, Ipv4Addr::UNSPECIFIED);
    let offer = exchange(socket, port, &discover, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no DHCPOFFER for {mac:02x?}"));
    assert_eq!(message_type(&offer), Some(MessageType::Offer));
    let mut request = message(MessageType::Request, mac, xid + 1, Ipv4Addr::UNSPECIFIED);
    request
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(offer.yiaddr()));
    request
        .opts_mut()
        .insert(DhcpOption::ServerIdentifier(server_id(&offer)));
    let ack = exchange(socket, port, &request, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no DHCPACK for {mac:02x?}"));
    assert_eq!(message_type(&ack), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), offer.yiaddr());
    ack.yiaddr()
}

#[test]
fn a_pool_declined_by_one_client_comes_back_after_abandon_lease_time() {
    let dir = TempDir::new("loopback-decline");
    write_config(&dir.0);
    let port = loopback_support::port(PortRange::Decline, 0);
    let metrics = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port + 1);
    let socket = relay_socket(port);
    let _server = Server::start_with(&dir.0, port, &["--metrics-listen", &metrics.to_string()]);
    let hostile = [0x02, 0xde, 0xc1, 0x1e, 0x00, 0x01];

    // The hostile client's own DISCOVER: the server serves, and names itself (option 54).
    let offer = exchange(
        &socket,
        port,
        &message(MessageType::Discover, hostile, 1, Ipv4Addr::UNSPECIFIED),
        Duration::from_secs(20),
    )
    .expect("server did not start");
    let server = server_id(&offer);
    let decline = |address: Ipv4Addr, xid: u32| {
        let mut decline = message(MessageType::Decline, hostile, xid, Ipv4Addr::UNSPECIFIED);
        decline
            .opts_mut()
            .insert(DhcpOption::RequestedIpAddress(address));
        decline
            .opts_mut()
            .insert(DhcpOption::ServerIdentifier(server));
        let mut payload = Vec::new();
        decline.encode(&mut Encoder::new(&mut payload)).unwrap();
        socket
            .send_to(&payload, SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
            .unwrap();
    };
    for last in 1..=POOL_SIZE {
        decline(Ipv4Addr::new(127, 0, 30, last), 100 + u32::from(last));
    }
    let declined_at = Instant::now();
    // A DECLINE has no answer (§4.3.3): watch the pool gauge instead.
    wait_for(
        metrics,
        declined_at + Duration::from_secs(4),
        "not every address abandoned",
        |text| sum(text, "xdhcpd_pool_abandoned{") == u64::from(POOL_SIZE),
    );

    // abandon-lease-time 5: the expiry run (once a second) frees them by 7 s.
    std::thread::sleep(Duration::from_secs(7).saturating_sub(declined_at.elapsed()));
    wait_for(
        metrics,
        declined_at + Duration::from_secs(12),
        "abandoned addresses not freed after abandon-lease-time",
        |text| {
            sum(text, "xdhcpd_pool_abandoned{") == 0
                && sum(text, "xdhcpd_leases_expired_total") >= u64::from(POOL_SIZE)
        },
    );
    let mut bound = Vec::new();
    for n in 1..=3u8 {
        bound.push(dora(
            &socket,
            port,
            [0x02, 0, 0, 0, 0x30, n],
            1000 * u32::from(n),
        ));
    }
    bound.sort();
    bound.dedup();
    assert_eq!(bound.len(), 3, "three distinct leases: {bound:?}");

    // Declining an address bound to another client is ignored and counted; the client keeps it.
    decline(bound[0], 500);
    wait_for(
        metrics,
        Instant::now() + Duration::from_secs(5),
        "foreign decline not counted",
        |text| sum(text, "xdhcpd_drops_total{reason=\"decline_other_client\"}") == 1,
    );
    let text = scrape(metrics);
    assert_eq!(sum(&text, "xdhcpd_pool_abandoned{"), 0, "{text}");
    assert_eq!(sum(&text, "xdhcpd_pool_active{"), 3, "{text}");
}
