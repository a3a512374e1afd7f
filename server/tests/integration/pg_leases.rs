//! The PostgreSQL lease backend, one server (DESIGN.md "Leases in PostgreSQL"): the real
//! `xdhcpd` on loopback with `option xdhcpd.lease-database` pointing at a private PostgreSQL.
//! ACKed leases are rows of `leases` (and not in the lease file); after `kill -9` and a
//! restart the server knows them (a client is offered its own address again); with the
//! database stopped (`pg_ctl stop -m immediate`) no lease is ACKed, and ACKs resume once it is
//! back. Two servers on one database never bind one address to two clients, and a survivor
//! renews the leases of a killed one.
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

/// DISCOVER and REQUEST until a DHCPACK (a lost claim drops the first ACK, a NAK or a
/// retransmission follows); the ACK and how many attempts it took.
fn dora_until_acked(socket: &UdpSocket, port: u16, mac: [u8; 6], xid: u32) -> (Message, u32) {
    dora_until_acked_within(socket, port, mac, xid, Duration::from_secs(2))
}

fn dora_until_acked_within(
    socket: &UdpSocket,
    port: u16,
    mac: [u8; 6],
    xid: u32,
    wait: Duration,
) -> (Message, u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let offer = offer(socket, port, mac, xid + attempt * 10);
        if let Some(reply) = select(socket, port, mac, xid + attempt * 10 + 1, &offer, wait) {
            if loopback_support::message_type(&reply) == Some(MessageType::Ack) {
                return (reply, attempt);
            }
        }
        assert!(Instant::now() < deadline, "{mac:02x?}: never ACKed");
    }
}

#[test]
fn two_servers_on_one_database_never_bind_an_address_twice() {
    let first_port = loopback_support::port(PortRange::PgLeases, 10);
    let second_port = loopback_support::port(PortRange::PgLeases, 20);
    let Some(database) = PgServer::start(
        "pg_leases_two",
        loopback_support::port(PortRange::PgLeases, 51),
    ) else {
        return;
    };
    let url = database.url();
    let first_dir = TempDir::new("pg-leases-a");
    let second_dir = TempDir::new("pg-leases-b");
    write_config(&first_dir.0, &url);
    write_config(&second_dir.0, &url);
    let mut first_server = Server::start_with(&first_dir.0, first_port, &["--server-name", "a"]);
    // "a" and "b102" start their walks at the same address of the 50-address pool
    // (`lease::pg::spread_seed` modulo 50 is 46 for both), as two servers would without the
    // spread: the second offers what the first just bound.
    let second_metrics = std::net::SocketAddrV4::new(Ipv4Addr::LOCALHOST, second_port + 1);
    let _second_server = Server::start_with(
        &second_dir.0,
        second_port,
        &[
            "--server-name",
            "b102",
            "--metrics-listen",
            &second_metrics.to_string(),
        ],
    );
    let first_socket = relay_socket(first_port);
    let second_socket = relay_socket(second_port);
    let one = [0x02, 0x00, 0x5e, 0x12, 0x00, 0x01];
    let two = [0x02, 0x00, 0x5e, 0x12, 0x00, 0x02];
    // The second server offers the address the first just bound unless its poller already
    // brought the row, and then loses the claim.
    let (one_ack, _) = dora_until_acked(&first_socket, first_port, one, 100);
    let (two_ack, attempts) = dora_until_acked(&second_socket, second_port, two, 200);
    eprintln!("second server: ACK after {attempts} attempt(s)");
    if attempts > 1 {
        // The first attempt lost its claim: counted.
        let text = scrape(second_metrics);
        assert!(
            text.lines()
                .any(|line| line.starts_with("xdhcpd_lease_claims_lost_total")
                    && !line.ends_with(" 0")),
            "{text}"
        );
    }
    assert_ne!(one_ack.yiaddr(), two_ack.yiaddr());
    let rows = lease_rows(&url);
    let active: Vec<_> = rows
        .iter()
        .filter(|(_, state, _)| state == "active")
        .collect();
    assert_eq!(active.len(), 2, "{rows:?}");
    assert!(rows.contains(&(
        one_ack.yiaddr().to_string(),
        "active".into(),
        Some(one.to_vec())
    )));
    assert!(rows.contains(&(
        two_ack.yiaddr().to_string(),
        "active".into(),
        Some(two.to_vec())
    )));

    // The first server dies; the survivor renews its client's lease (REBINDING to any
    // server), once its poller has the row.
    first_server.kill();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rebind = message(MessageType::Request, one, 300, one_ack.yiaddr());
        let reply = exchange(&second_socket, second_port, &rebind, Duration::from_secs(2));
        if reply
            .as_ref()
            .is_some_and(|reply| loopback_support::message_type(reply) == Some(MessageType::Ack))
        {
            assert_eq!(reply.map(|reply| reply.yiaddr()), Some(one_ack.yiaddr()));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the survivor never renewed: {reply:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn three_servers_share_the_pool_through_a_kill_and_every_ack_is_a_row() {
    let ports: Vec<u16> = (0..3)
        .map(|index| loopback_support::port(PortRange::PgLeases, 30 + 5 * index))
        .collect();
    let Some(database) = PgServer::start(
        "pg_leases_three",
        loopback_support::port(PortRange::PgLeases, 52),
    ) else {
        return;
    };
    let url = database.url();
    let dirs: Vec<TempDir> = (0..3)
        .map(|index| TempDir::new(&format!("pg-leases-three-{index}")))
        .collect();
    let start = |index: usize| {
        write_config(&dirs[index].0, &url);
        Server::start_with(
            &dirs[index].0,
            ports[index],
            &["--server-name", &format!("s{index}")],
        )
    };
    let mut servers: Vec<Server> = (0..3).map(start).collect();
    let sockets: Vec<UdpSocket> = ports.iter().map(|port| relay_socket(*port)).collect();
    // 30 clients spread over the three servers; the first server is killed with SIGKILL after
    // the first 15 and started again.
    let mut acked: Vec<([u8; 6], Ipv4Addr)> = Vec::new();
    for client in 0..30u8 {
        if client == 15 {
            servers[0].kill();
            servers[0] = start(0);
        }
        let server = usize::from(client) % 3;
        let mac = [0x02, 0x00, 0x5e, 0x13, 0x00, client];
        let (ack, _) = dora_until_acked_within(
            &sockets[server],
            ports[server],
            mac,
            1_000 * u32::from(client),
            Duration::from_millis(700),
        );
        acked.push((mac, ack.yiaddr()));
    }
    let mut addresses: Vec<Ipv4Addr> = acked.iter().map(|(_, address)| *address).collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(
        addresses.len(),
        acked.len(),
        "an address ACKed twice: {acked:?}"
    );
    let rows = lease_rows(&url);
    for (mac, address) in &acked {
        assert!(
            rows.contains(&(address.to_string(), "active".into(), Some(mac.to_vec()))),
            "{mac:02x?} on {address} is not an active row: {rows:?}"
        );
    }
    drop(servers);
}

fn scrape(address: std::net::SocketAddrV4) -> String {
    use std::io::Read as _;
    let mut stream = std::net::TcpStream::connect(address).expect("metrics endpoint");
    stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}
