//! Tier 1: the lease store in shards (DESIGN.md "Scaling the store"), end to end on loopback.
//! Two shared networks, reached through the test relay with the subnet-selection option (RFC
//! 3011), land in two shards of a 2-worker server; a SIGHUP with the networks reordered moves
//! one network's leases to the other shard. Every client keeps its address, and no new client
//! is offered an address that is bound: a lease left behind in its old shard would be unknown
//! to the requests of its network, and its address handed out again.

#![expect(
    clippy::disallowed_methods,
    reason = "drives the real server in real time"
)]

use std::collections::HashSet;
use std::io::Write as _;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};

use crate::loopback_support::{self, PortRange};

use loopback_support::{exchange, message, message_type, relay_socket, Server, TempDir};

fn port() -> u16 {
    loopback_support::port(PortRange::Shards, 0)
}

const NETWORKS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 50, 0, 1), Ipv4Addr::new(10, 51, 0, 1)];

fn write_config(dir: &Path, text: &str) {
    let mut file = std::fs::File::create(dir.join("dhcpd.conf")).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

// `ping-check false` below: the pools are not on any network of this host, and an echo request
// to them would leave by the host's default route.

/// Before: 10.50 then 10.51 (one shard each).
const BEFORE: &str = "authoritative;\ndefault-lease-time 600;\nmax-lease-time 7200;\n\
    dhcp-cache-threshold 0;\nping-check false;\n\
    subnet 127.0.0.0 netmask 255.0.0.0 { }\n\
    subnet 10.50.0.0 netmask 255.255.255.0 { range 10.50.0.10 10.50.0.29; }\n\
    subnet 10.51.0.0 netmask 255.255.255.0 { range 10.51.0.10 10.51.0.29; }\n";

/// After: 10.51 first, a new network, then 10.50: 10.51 changes shard. The lease time tells
/// when the reload is in force (`dhcp-cache-threshold 0`: renewals get a fresh lease time).
const AFTER: &str = "authoritative;\ndefault-lease-time 900;\nmax-lease-time 7200;\n\
    dhcp-cache-threshold 0;\nping-check false;\n\
    subnet 127.0.0.0 netmask 255.0.0.0 { }\n\
    subnet 10.51.0.0 netmask 255.255.255.0 { range 10.51.0.10 10.51.0.29; }\n\
    subnet 10.52.0.0 netmask 255.255.255.0 { range 10.52.0.10 10.52.0.29; }\n\
    subnet 10.50.0.0 netmask 255.255.255.0 { range 10.50.0.10 10.50.0.29; }\n";

/// A message of `kind` from `mac` on `network` (subnet selection) through the relay.
fn on(network: Ipv4Addr, kind: MessageType, mac: [u8; 6], xid: u32, ciaddr: Ipv4Addr) -> Message {
    let mut message = message(kind, mac, xid, ciaddr);
    message
        .opts_mut()
        .insert(DhcpOption::SubnetSelection(network));
    message
}

fn lease_time(reply: &Message) -> Option<u32> {
    match reply.opts().get(OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(seconds)) => Some(*seconds),
        _ => None,
    }
}

fn server_id(reply: &Message) -> Ipv4Addr {
    match reply.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(id)) => *id,
        other => panic!("no server identifier: {other:?}"),
    }
}

fn same_subnet(a: Ipv4Addr, b: Ipv4Addr) -> bool {
    a.octets()[..3] == b.octets()[..3]
}

/// DISCOVER, REQUEST: the bound address.
fn dora(socket: &UdpSocket, network: Ipv4Addr, mac: [u8; 6], xid: u32) -> Ipv4Addr {
    let offer = exchange(
        socket,
        port(),
        &on(
            network,
            MessageType::Discover,
            mac,
            xid,
            Ipv4Addr::UNSPECIFIED,
        ),
        Duration::from_secs(20),
    )
    .expect("no DHCPOFFER");
    let address = offer.yiaddr();
    assert!(
        same_subnet(address, network),
        "{address} offered on {network}"
    );
    let mut request = on(
        network,
        MessageType::Request,
        mac,
        xid + 1,
        Ipv4Addr::UNSPECIFIED,
    );
    request
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(address));
    request
        .opts_mut()
        .insert(DhcpOption::ServerIdentifier(server_id(&offer)));
    let ack = exchange(socket, port(), &request, Duration::from_secs(5)).expect("no DHCPACK");
    assert_eq!(message_type(&ack), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), address);
    address
}

/// A relayed RENEWING request for `address`.
fn renew(
    socket: &UdpSocket,
    network: Ipv4Addr,
    mac: [u8; 6],
    xid: u32,
    address: Ipv4Addr,
) -> Message {
    exchange(
        socket,
        port(),
        &on(network, MessageType::Request, mac, xid, address),
        Duration::from_secs(5),
    )
    .expect("no answer to a renewal")
}

#[test]
fn a_reload_that_moves_a_network_to_another_shard_keeps_its_leases() {
    let dir = TempDir::new("loopback-shards");
    write_config(&dir.0, BEFORE);
    std::fs::File::create(dir.0.join("dhcpd.leases")).unwrap();
    let socket = relay_socket(port());
    let mut server = Server::start(&dir.0, port());
    let mut bound = Vec::new();
    for (index, network) in NETWORKS.into_iter().enumerate() {
        for client in 0..5u8 {
            let mac = [0x02, 0, 0, 0, index as u8, client];
            let xid = 0x100 * (index as u32 + 1) + u32::from(client) * 2;
            bound.push((network, mac, dora(&socket, network, mac, xid)));
        }
    }

    write_config(&dir.0, AFTER);
    // SAFETY: a signal to our own child.
    assert_eq!(
        unsafe { libc::kill(server.pid() as libc::pid_t, libc::SIGHUP) },
        0
    );
    // Poll with a client of 10.50, which stays in its shard.
    let (network, mac, address) = bound[0];
    let started = Instant::now();
    let mut xid = 0x1000;
    loop {
        xid += 1;
        let ack = renew(&socket, network, mac, xid, address);
        if lease_time(&ack) == Some(900) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the reload took no effect"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // New clients first (a renewal would store its lease again wherever the request went):
    // they get addresses nobody holds.
    let taken: HashSet<Ipv4Addr> = bound.iter().map(|&(_, _, address)| address).collect();
    for (index, network) in NETWORKS.into_iter().enumerate() {
        for client in 0..5u8 {
            let mac = [0x02, 0, 0, 1, index as u8, client];
            xid += 2;
            let address = dora(&socket, network, mac, xid);
            assert!(!taken.contains(&address), "{address} handed out twice");
        }
    }
    // Every client renews its own address, on both networks.
    for &(network, mac, address) in &bound {
        xid += 1;
        let ack = renew(&socket, network, mac, xid, address);
        assert_eq!(message_type(&ack), Some(MessageType::Ack), "{address}");
        assert_eq!(ack.yiaddr(), address);
    }
    server.kill();
    let leases = std::fs::read_to_string(dir.0.join("dhcpd.leases")).unwrap();
    for address in taken {
        assert!(
            leases.contains(&format!("lease {address} {{")),
            "{address} lost"
        );
    }
}
