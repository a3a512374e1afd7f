//! Tier 1: RFC 6926 bulk leasequery against the real `xdhcpd` on loopback. The server starts
//! from a lease file with 1,000 active leases stashed with relay A's relay-id (option 82
//! sub-option 12, RFC 6925) and 300 with relay B's; a bulk leasequery client (below: TCP,
//! two-octet length framing, RFC 6926 §6.1) asks by relay-id and must get every lease of A,
//! none of B, then DHCPLEASEQUERYDONE. Without `allow leasequery` the answer is a
//! DHCPLEASEQUERYDONE with status NotAllowed; without `xdhcpd.bulk-leasequery-listen` nothing
//! listens. A third test grants 10,000 leases through real relayed DORA exchanges (option 82
//! with relay A's or relay B's relay-id) and asks by relay-id: every lease ACKed through A,
//! none of B's.

#![expect(
    clippy::disallowed_methods,
    reason = "drives the real server in real time"
)]

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode, UnknownOption};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};

use crate::loopback_support::{self, PortRange, Server, TempDir};
use dhcp_test_messages::ClientMessage;

const RELAY_A: &[u8] = b"relay-a";
const RELAY_B: &[u8] = b"relay-b";
const LEASES_A: u32 = 1_000;
const LEASES_B: u32 = 300;

fn ports(test: u16) -> (u16, u16) {
    (
        loopback_support::port(PortRange::BulkLeasequery, test * 2),
        loopback_support::port(PortRange::BulkLeasequery, test * 2 + 1),
    )
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The n-th address of the range 127.1.0.0/16.
fn address(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 1, 0, 1)) + n)
}

fn write_files(dir: &Path, tcp_port: u16, allow: bool) {
    let allow = if allow { "allow leasequery;" } else { "" };
    std::fs::write(
        dir.join("dhcpd.conf"),
        format!(
            "authoritative;\nping-check false;\n{allow}\n\
             option space xdhcpd;\n\
             option xdhcpd.bulk-leasequery-listen code 14 = text;\n\
             option xdhcpd.bulk-leasequery-listen \"127.0.0.1:{tcp_port}\";\n\
             subnet 127.0.0.0 netmask 255.0.0.0 {{\n  range 127.1.0.1 127.1.64.0;\n}}\n"
        ),
    )
    .unwrap();
    let mut leases = String::new();
    for n in 0..LEASES_A + LEASES_B {
        let relay = if n < LEASES_A { RELAY_A } else { RELAY_B };
        let mac = [0x02, 0, 0, (n >> 16) as u8, (n >> 8) as u8, n as u8];
        leases.push_str(&format!(
            "lease {} {{\n  starts 1 2025/01/06 00:00:00;\n  ends 1 2035/01/01 00:00:00;\n  \
             cltt 1 2025/01/06 00:00:00;\n  binding state active;\n  next binding state free;\n  \
             hardware ethernet {};\n  option agent.circuit-id \"port-{n}\";\n  \
             option agent.unknown-12 {};\n}}\n",
            address(n),
            colon_hex(&mac),
            colon_hex(relay),
        ));
    }
    std::fs::write(dir.join("dhcpd.leases"), leases).unwrap();
}

/// A DHCPBULKLEASEQUERY by relay-id (RFC 6926 §6.2.4: option 82 with sub-option 12).
fn query_by_relay_id(xid: u32, relay_id: &[u8]) -> Message {
    let mut agent = vec![12, relay_id.len() as u8];
    agent.extend_from_slice(relay_id);
    let mut message = dhcp_test_messages::ClientMessage::new(MessageType::BulkLeaseQuery, [0; 6])
        .xid(xid)
        .build();
    message.set_chaddr(&[]);
    message
        .opts_mut()
        .insert(DhcpOption::Unknown(UnknownOption::new(
            OptionCode::RelayAgentInformation,
            agent,
        )));
    message
}

/// The bulk leasequery client: connects (retrying while the server starts), sends `query`
/// framed, reads framed replies until DHCPLEASEQUERYDONE.
fn bulk_query(port: u16, query: &Message) -> Vec<Message> {
    let started = Instant::now();
    let mut stream = loop {
        match TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)) {
            Ok(stream) => break stream,
            Err(error) if started.elapsed() > Duration::from_secs(20) => {
                panic!("no bulk leasequery listener: {error}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut payload = Vec::new();
    query.encode(&mut Encoder::new(&mut payload)).unwrap();
    let mut framed = (payload.len() as u16).to_be_bytes().to_vec();
    framed.extend(payload);
    stream.write_all(&framed).unwrap();
    let mut replies = Vec::new();
    loop {
        let mut length = [0u8; 2];
        stream.read_exact(&mut length).expect("a reply's length");
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut body).expect("a reply");
        let reply = Message::decode(&mut Decoder::new(&body)).expect("a DHCP message");
        assert_eq!(
            reply.xid(),
            query.xid(),
            "every reply carries the query's xid"
        );
        let done = reply.opts().msg_type() == Some(MessageType::LeaseQueryDone);
        replies.push(reply);
        if done {
            return replies;
        }
    }
}

fn agent_value(reply: &Message) -> Vec<u8> {
    let Some(option) = reply.opts().get(OptionCode::RelayAgentInformation) else {
        return Vec::new();
    };
    let mut wire = Vec::new();
    option.encode(&mut Encoder::new(&mut wire)).unwrap();
    wire.get(2..).unwrap_or_default().to_vec()
}

#[test]
fn by_relay_id_streams_every_lease_of_that_relay_and_none_of_another() {
    let dir = TempDir::new("bulk-leasequery");
    let (udp_port, tcp_port) = ports(0);
    write_files(&dir.0, tcp_port, true);
    let _server = Server::start(&dir.0, udp_port);

    let replies = bulk_query(tcp_port, &query_by_relay_id(0xb1, RELAY_A));
    let (done, leases) = replies.split_last().unwrap();
    assert!(done
        .opts()
        .get(OptionCode::BulkLeaseQueryStatusCode)
        .is_none());
    assert_eq!(leases.len(), LEASES_A as usize);
    let addresses: BTreeSet<Ipv4Addr> = leases.iter().map(Message::ciaddr).collect();
    let expected: BTreeSet<Ipv4Addr> = (0..LEASES_A).map(address).collect();
    assert_eq!(addresses, expected, "every lease of relay A, once");
    for lease in leases {
        assert_eq!(lease.opts().msg_type(), Some(MessageType::LeaseActive));
        let agent = agent_value(lease);
        assert!(
            agent.windows(RELAY_A.len()).any(|window| window == RELAY_A),
            "{} carries relay A's id",
            lease.ciaddr()
        );
    }

    let replies = bulk_query(tcp_port, &query_by_relay_id(0xb2, RELAY_B));
    assert_eq!(replies.len(), LEASES_B as usize + 1);
    let replies = bulk_query(tcp_port, &query_by_relay_id(0xb3, b"relay-c"));
    assert_eq!(replies.len(), 1, "only DHCPLEASEQUERYDONE");
}

#[test]
fn refused_without_allow_leasequery() {
    let dir = TempDir::new("bulk-leasequery-denied");
    let (udp_port, tcp_port) = ports(1);
    write_files(&dir.0, tcp_port, false);
    let _server = Server::start(&dir.0, udp_port);
    let replies = bulk_query(tcp_port, &query_by_relay_id(0xb4, RELAY_A));
    assert_eq!(replies.len(), 1);
    let status = replies[0]
        .opts()
        .get(OptionCode::BulkLeaseQueryStatusCode)
        .expect("a status code");
    let mut wire = Vec::new();
    status.encode(&mut Encoder::new(&mut wire)).unwrap();
    assert_eq!(wire[2], 4, "NotAllowed (RFC 6926 §6.2.2)");
}

/// Relay agent information with `relay_id` as sub-option 12 (RFC 6925) and a circuit-id.
fn agent_information(relay_id: &[u8], circuit: u32) -> Vec<u8> {
    let circuit = format!("port-{circuit}");
    let mut agent = vec![1, circuit.len() as u8];
    agent.extend_from_slice(circuit.as_bytes());
    agent.extend([12, relay_id.len() as u8]);
    agent.extend_from_slice(relay_id);
    agent
}

/// The client of `index`: relayed by relay A when `index` is a multiple of three, else by B.
fn relay_of(index: u32) -> &'static [u8] {
    if index.is_multiple_of(3) {
        RELAY_A
    } else {
        RELAY_B
    }
}

fn relayed(kind: MessageType, index: u32, requested: Option<Ipv4Addr>) -> Vec<u8> {
    let mac = [
        0x02,
        0x10,
        0,
        (index >> 16) as u8,
        (index >> 8) as u8,
        index as u8,
    ];
    let mut message = ClientMessage::new(kind, mac)
        .xid(0x5000_0000 | index)
        .relayed_by(loopback_support::RELAY)
        .raw_option(82, &agent_information(relay_of(index), index));
    if let Some(address) = requested {
        message = message.requested(address).server_id(Ipv4Addr::LOCALHOST);
    }
    message.encode()
}

/// Sends the messages of `indices` built by `build`, then collects replies of type `expected`
/// (by xid) until all came or `deadline` passed; sends the missing ones again every 500 ms.
fn pipelined(
    socket: &UdpSocket,
    port: u16,
    indices: &[u32],
    build: impl Fn(u32) -> Vec<u8>,
    expected: MessageType,
    deadline: Duration,
) -> BTreeMap<u32, Ipv4Addr> {
    let server = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let mut answered = BTreeMap::new();
    let started = Instant::now();
    let mut buffer = [0u8; 1500];
    while answered.len() < indices.len() && started.elapsed() < deadline {
        for &index in indices
            .iter()
            .filter(|index| !answered.contains_key(*index))
        {
            socket.send_to(&build(index), server).unwrap();
        }
        let round = Instant::now();
        while answered.len() < indices.len() && round.elapsed() < Duration::from_millis(500) {
            let Ok((length, _)) = socket.recv_from(&mut buffer) else {
                continue;
            };
            let Ok(reply) = Message::decode(&mut Decoder::new(&buffer[..length])) else {
                continue;
            };
            let index = reply.xid() & 0x00ff_ffff;
            if reply.xid() & 0xff00_0000 == 0x5000_0000 && reply.opts().msg_type() == Some(expected)
            {
                answered.insert(index, reply.yiaddr());
            }
        }
    }
    answered
}

#[test]
fn after_ten_thousand_relayed_leases_by_relay_id_streams_exactly_that_relays_leases() {
    const CLIENTS: u32 = 10_000;
    const WINDOW: usize = 500;
    let dir = TempDir::new("bulk-leasequery-10k");
    let (udp_port, tcp_port) = ports(2);
    write_files(&dir.0, tcp_port, true);
    std::fs::write(dir.0.join("dhcpd.leases"), "").unwrap();
    let _server = Server::start(&dir.0, udp_port);
    let socket = loopback_support::relay_socket(udp_port);
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();

    // Windows of DISCOVERs then REQUESTs, so group commit sees batches and the socket's
    // buffers never overflow.
    let indices: Vec<u32> = (0..CLIENTS).collect();
    let mut acked = BTreeMap::new();
    for window in indices.chunks(WINDOW) {
        let offers = pipelined(
            &socket,
            udp_port,
            window,
            |index| relayed(MessageType::Discover, index, None),
            MessageType::Offer,
            Duration::from_secs(20),
        );
        assert_eq!(offers.len(), window.len(), "every DISCOVER is offered");
        let acks = pipelined(
            &socket,
            udp_port,
            window,
            |index| relayed(MessageType::Request, index, Some(offers[&index])),
            MessageType::Ack,
            Duration::from_secs(20),
        );
        assert_eq!(acks.len(), window.len(), "every REQUEST is acknowledged");
        acked.extend(acks);
    }
    let expected = |relay: &[u8]| -> BTreeSet<Ipv4Addr> {
        acked
            .iter()
            .filter(|(index, _)| relay_of(**index) == relay)
            .map(|(_, address)| *address)
            .collect()
    };

    for (xid, relay) in [(0xc1, RELAY_A), (0xc2, RELAY_B)] {
        let replies = bulk_query(tcp_port, &query_by_relay_id(xid, relay));
        let (done, leases) = replies.split_last().unwrap();
        assert_eq!(done.opts().msg_type(), Some(MessageType::LeaseQueryDone));
        let streamed: Vec<Ipv4Addr> = leases.iter().map(Message::ciaddr).collect();
        let unique: BTreeSet<Ipv4Addr> = streamed.iter().copied().collect();
        assert_eq!(streamed.len(), unique.len(), "each lease streamed once");
        assert_eq!(
            unique,
            expected(relay),
            "every lease of this relay, none of another's"
        );
        for lease in leases {
            assert_eq!(lease.opts().msg_type(), Some(MessageType::LeaseActive));
            assert!(agent_value(lease)
                .windows(relay.len())
                .any(|window| window == relay));
        }
    }
}
