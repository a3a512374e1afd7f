//! The PostgreSQL lease backend, one server (DESIGN.md "Leases in PostgreSQL"): the real
//! `xdhcpd` on loopback with `option xdhcpd.lease-database` pointing at a private PostgreSQL.
//! ACKed leases are rows of `leases` (and not in the lease file); a second server on the same
//! database is refused; after `kill -9` and a
//! restart the server knows them (a client is offered its own address again); with the
//! database stopped (`pg_ctl stop -m immediate`) no lease is ACKed, and ACKs resume once it is
//! back.
//!
//! Needs root and Debian's `postgresql` (skipped with a printed line otherwise):
//! `cargo test -p server --test integration pg_leases::`.

#![expect(
    clippy::disallowed_methods,
    reason = "drives the real server and database in real time"
)]

use std::io::Write as _;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};

use crate::loopback_support::{self, exchange, message, relay_socket, PortRange, Server, TempDir};
use crate::pg::PgServer;

fn write_config(dir: &Path, database: &str) {
    let mut file = std::fs::File::create(dir.join("dhcpd.conf")).unwrap();
    writeln!(
        file,
        "authoritative;\ndefault-lease-time 600;\nmax-lease-time 7200;\nping-check false;\n\
         option space xdhcpd;\n\
         option xdhcpd.starvation-defence code 1 = boolean;\n\
         option xdhcpd.lease-database code 15 = text;\n\
         option xdhcpd.starvation-defence off;\n\
         option xdhcpd.lease-database \"{database}\";\n\
         subnet 127.0.0.0 netmask 255.0.0.0 {{\n  range 127.0.41.1 127.0.41.50;\n}}"
    )
    .unwrap();
    std::fs::File::create(dir.join("dhcpd.leases")).unwrap();
}

fn server_id(reply: &Message) -> Ipv4Addr {
    match reply.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(id)) => *id,
        other => panic!("no server identifier: {other:?}"),
    }
}

fn offer(socket: &UdpSocket, port: u16, mac: [u8; 6], xid: u32) -> Message {
    let discover = message(MessageType::Discover, mac, xid, Ipv4Addr::UNSPECIFIED);
    exchange(socket, port, &discover, Duration::from_secs(20)).expect("no DHCPOFFER")
}

/// The SELECTING request for `offer`; its answer within `wait`, if any.
fn select(
    socket: &UdpSocket,
    port: u16,
    mac: [u8; 6],
    xid: u32,
    offer: &Message,
    wait: Duration,
) -> Option<Message> {
    let mut request = message(MessageType::Request, mac, xid, Ipv4Addr::UNSPECIFIED);
    request
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(offer.yiaddr()));
    request
        .opts_mut()
        .insert(DhcpOption::ServerIdentifier(server_id(offer)));
    exchange(socket, port, &request, wait)
}

fn dora(socket: &UdpSocket, port: u16, mac: [u8; 6], xid: u32) -> Ipv4Addr {
    let offer = offer(socket, port, mac, xid);
    let ack = select(socket, port, mac, xid + 1, &offer, Duration::from_secs(5)).expect("no ACK");
    assert_eq!(loopback_support::message_type(&ack), Some(MessageType::Ack));
    ack.yiaddr()
}

/// (address, state, hardware) of every row of `leases`.
fn lease_rows(database: &str) -> Vec<(String, String, Option<Vec<u8>>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = xdhcpd::history::writer::connect(database).await.unwrap();
        client
            .query(
                "SELECT host(address), state, hardware FROM leases ORDER BY address",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect()
    })
}

#[test]
fn leases_live_in_the_database_across_a_kill_and_acks_wait_for_it() {
    let port = loopback_support::port(PortRange::PgLeases, 0);
    let Some(database) =
        PgServer::start("pg_leases", loopback_support::port(PortRange::PgLeases, 50))
    else {
        return;
    };
    let url = database.url();
    let dir = TempDir::new("pg-leases");
    write_config(&dir.0, &url);
    let socket = relay_socket(port);
    let first = [0x02, 0x00, 0x5e, 0x11, 0x00, 0x01];
    let second = [0x02, 0x00, 0x5e, 0x11, 0x00, 0x02];
    let mut server = Server::start(&dir.0, port);
    let first_address = dora(&socket, port, first, 10);
    let second_address = dora(&socket, port, second, 20);
    assert_ne!(first_address, second_address);
    // ACKed means committed: the rows are there as soon as the ACK arrived.
    let rows = lease_rows(&url);
    assert!(
        rows.contains(&(
            first_address.to_string(),
            "active".into(),
            Some(first.to_vec())
        )),
        "{rows:?}"
    );
    assert!(
        rows.contains(&(
            second_address.to_string(),
            "active".into(),
            Some(second.to_vec())
        )),
        "{rows:?}"
    );
    assert_eq!(
        std::fs::metadata(dir.0.join("dhcpd.leases")).unwrap().len(),
        0,
        "the lease file is not the backend"
    );

    // A second server on the same database is refused (several servers on one database are
    // not supported yet: it would bind the same addresses).
    let other = TempDir::new("pg-leases-other");
    write_config(&other.0, &url);
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_xdhcpd"))
        .args(["-f", "-d", "-cf"])
        .arg(other.0.join("dhcpd.conf"))
        .arg("-lf")
        .arg(other.0.join("dhcpd.leases"))
        .arg("-pf")
        .arg(other.0.join("dhcpd.pid"))
        .args(["-p", &(port + 2).to_string(), "--no-xdp", "lo"])
        .output()
        .expect("second xdhcpd");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("another xdhcpd server"), "{stderr}");

    // kill -9, restart: the second client asks first and still gets its own address (a
    // server without the leases would offer the pool's first address).
    server.kill();
    let mut server = Server::start(&dir.0, port);
    assert_eq!(offer(&socket, port, second, 30).yiaddr(), second_address);

    // The database goes away: no commit, no ACK.
    database.stop("immediate");
    let third = [0x02, 0x00, 0x5e, 0x11, 0x00, 0x03];
    let third_offer = offer(&socket, port, third, 40);
    let refused = select(
        &socket,
        port,
        third,
        41,
        &third_offer,
        Duration::from_secs(3),
    );
    assert!(refused.is_none(), "ACK without a commit: {refused:?}");
    // Back: the client's retransmission is ACKed and committed.
    database.start_again();
    let deadline = Instant::now() + Duration::from_secs(30);
    let ack = loop {
        if let Some(ack) = select(
            &socket,
            port,
            third,
            42,
            &third_offer,
            Duration::from_secs(2),
        ) {
            break ack;
        }
        assert!(
            Instant::now() < deadline,
            "no ACK once the database is back"
        );
    };
    assert_eq!(loopback_support::message_type(&ack), Some(MessageType::Ack));
    let rows = lease_rows(&url);
    assert!(
        rows.iter()
            .any(|(address, state, _)| *address == ack.yiaddr().to_string() && state == "active"),
        "{rows:?}"
    );
    server.kill();
}
