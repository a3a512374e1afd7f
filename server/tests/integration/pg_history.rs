//! The lease history in a private PostgreSQL (README "Lease history in PostgreSQL"): the real
//! `xdhcpd` on loopback with the lease file and `option xdhcpd.history-database`; a relayed
//! client's DORA, renewal and release end up as history rows with the relay, option 82 and
//! lease times; `xdhcpd history` answers who held the address; with the database stopped
//! leases are still ACKed and their events reach the database once it is back (spooled).
//!
//! Needs root and Debian's `postgresql` (skipped with a printed line otherwise; a failure
//! under `REQUIRE_PRIVILEGED_TESTS=1`): `cargo test -p server --test integration pg_history::`.

#![expect(
    clippy::disallowed_methods,
    reason = "drives the real server and database in real time"
)]

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use dhcproto::{Encodable, Encoder};

use crate::loopback_support::{self, exchange, relay_socket, PortRange, Server, TempDir, RELAY};
use crate::pg::PgServer;

const CIRCUIT: &[u8] = b"ge-0/0/7";
const REMOTE: &[u8] = b"subscriber-42";

fn write_config(dir: &Path, database: &str, metrics: SocketAddrV4) {
    let mut file = std::fs::File::create(dir.join("dhcpd.conf")).unwrap();
    writeln!(
        file,
        "authoritative;\ndefault-lease-time 600;\nmax-lease-time 7200;\nping-check false;\n\
         option space xdhcpd;\n\
         option xdhcpd.starvation-defence code 1 = boolean;\n\
         option xdhcpd.metrics-listen code 10 = text;\n\
         option xdhcpd.history-database code 16 = text;\n\
         option xdhcpd.history-retention-days code 17 = unsigned integer 32;\n\
         option xdhcpd.starvation-defence off;\n\
         option xdhcpd.metrics-listen \"{metrics}\";\n\
         option xdhcpd.history-database \"{database}\";\n\
         option xdhcpd.history-retention-days 30;\n\
         subnet 127.0.0.0 netmask 255.0.0.0 {{\n  range 127.0.40.1 127.0.40.50;\n}}"
    )
    .unwrap();
    std::fs::File::create(dir.join("dhcpd.leases")).unwrap();
}

fn agent_information() -> Vec<u8> {
    let mut value = vec![1, CIRCUIT.len() as u8];
    value.extend_from_slice(CIRCUIT);
    value.extend_from_slice(&[2, REMOTE.len() as u8]);
    value.extend_from_slice(REMOTE);
    value
}

fn request(kind: MessageType, mac: [u8; 6], xid: u32, ciaddr: Ipv4Addr) -> Message {
    dhcp_test_messages::ClientMessage::new(kind, mac)
        .xid(xid)
        .ciaddr(ciaddr)
        .relayed_by(RELAY)
        .requesting(&dhcp_test_messages::COMMON_PARAMETERS)
        .raw_option(82, &agent_information())
        .build()
}

fn server_id(reply: &Message) -> Ipv4Addr {
    match reply.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(id)) => *id,
        other => panic!("no server identifier: {other:?}"),
    }
}

fn acked(reply: Option<Message>, what: &str) -> Message {
    let reply = reply.unwrap_or_else(|| panic!("no answer to {what}"));
    assert_eq!(
        loopback_support::message_type(&reply),
        Some(MessageType::Ack),
        "{what}"
    );
    reply
}

/// DORA; the ACK.
fn dora(socket: &UdpSocket, port: u16, mac: [u8; 6], xid: u32) -> Message {
    let discover = request(MessageType::Discover, mac, xid, Ipv4Addr::UNSPECIFIED);
    let offer = exchange(socket, port, &discover, Duration::from_secs(20)).expect("no DHCPOFFER");
    let mut selecting = request(MessageType::Request, mac, xid + 1, Ipv4Addr::UNSPECIFIED);
    selecting
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(offer.yiaddr()));
    selecting
        .opts_mut()
        .insert(DhcpOption::ServerIdentifier(server_id(&offer)));
    acked(
        exchange(socket, port, &selecting, Duration::from_secs(5)),
        "the SELECTING request",
    )
}

/// One history row as the test reads it.
#[derive(Debug)]
struct HistoryRow {
    at: String,
    event: String,
    hardware: Option<Vec<u8>>,
    circuit_id: Option<Vec<u8>>,
    remote_id: Option<Vec<u8>>,
    relay: Option<String>,
    lease_seconds: Option<f64>,
    source: String,
}

fn rows_of(database: &str, address: Ipv4Addr) -> Result<Vec<HistoryRow>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = xdhcpd::history::writer::connect(database).await?;
        let rows = client
            .query(
                "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), event, \
                   hardware, circuit_id, remote_id, host(relay), \
                   extract(epoch FROM ends - starts)::float8, source, server \
                 FROM lease_history WHERE address = $1::text::inet ORDER BY at",
                &[&address.to_string()],
            )
            .await
            .map_err(|error| error.to_string())?;
        Ok(rows
            .iter()
            .map(|row| HistoryRow {
                at: row.get(0),
                event: row.get(1),
                hardware: row.get(2),
                circuit_id: row.get(3),
                remote_id: row.get(4),
                relay: row.get(5),
                lease_seconds: row.get(6),
                source: row.get(7),
            })
            .collect())
    })
}

/// Polls the database until `address` has `events` rows.
fn wait_for_rows(
    database: &str,
    address: Ipv4Addr,
    events: usize,
    within: Duration,
) -> Vec<HistoryRow> {
    let deadline = Instant::now() + within;
    loop {
        let rows = rows_of(database, address);
        match &rows {
            Ok(rows) if rows.len() >= events => return rows_of(database, address).unwrap(),
            _ if Instant::now() > deadline => {
                panic!("{address}: expected {events} history rows, have {rows:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn history_command(database: &str, arguments: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_xdhcpd"))
        .arg("history")
        .args(["--database", database])
        .args(arguments)
        .output()
        .expect("xdhcpd history");
    assert!(
        output.status.success(),
        "xdhcpd history {arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn scrape(address: SocketAddrV4) -> String {
    use std::io::Read as _;
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return String::new();
    };
    let _ = stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|value| value as u64)
        .sum()
}

#[test]
fn dora_renew_release_are_in_the_history_and_survive_a_database_outage() {
    let port = loopback_support::port(PortRange::PgHistory, 0);
    let Some(database) = PgServer::start(
        "pg_history",
        loopback_support::port(PortRange::PgHistory, 50),
    ) else {
        return;
    };
    let url = database.url();
    let dir = TempDir::new("pg-history");
    let metrics = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port + 1);
    write_config(&dir.0, &url, metrics);
    // `--db-init` applies the migrations once, then finds the schema up to date.
    let db_init = || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_xdhcpd"))
            .arg("--db-init")
            .arg("-cf")
            .arg(dir.0.join("dhcpd.conf"))
            .output()
            .expect("xdhcpd --db-init");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(db_init().contains("applied migrations [1, 2]"));
    assert!(db_init().contains("up to date"));
    let socket = relay_socket(port);
    let _server = Server::start(&dir.0, port);
    let mac = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];

    // DORA, a renewal (RENEWING: ciaddr, no option 50/54), a release.
    let ack = dora(&socket, port, mac, 10);
    let address = ack.yiaddr();
    acked(
        exchange(
            &socket,
            port,
            &request(MessageType::Request, mac, 20, address),
            Duration::from_secs(5),
        ),
        "the renewal",
    );
    let rows = wait_for_rows(&url, address, 2, Duration::from_secs(20));
    let renewed_at = rows[1].at.clone();
    let mut release = request(MessageType::Release, mac, 30, address);
    release
        .opts_mut()
        .insert(DhcpOption::ServerIdentifier(server_id(&ack)));
    let mut payload = Vec::new();
    release.encode(&mut Encoder::new(&mut payload)).unwrap();
    socket
        .send_to(&payload, SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
        .unwrap();
    let rows = wait_for_rows(&url, address, 3, Duration::from_secs(20));
    let events: Vec<&str> = rows.iter().map(|row| row.event.as_str()).collect();
    assert_eq!(events, ["grant", "renew", "release"], "{rows:?}");
    for row in &rows {
        assert_eq!(row.hardware.as_deref(), Some(&mac[..]), "{row:?}");
        assert_eq!(row.circuit_id.as_deref(), Some(CIRCUIT), "{row:?}");
        assert_eq!(row.remote_id.as_deref(), Some(REMOTE), "{row:?}");
        assert_eq!(row.relay.as_deref(), Some("127.0.0.2"), "{row:?}");
        assert_eq!(row.source, "engine");
    }
    assert_eq!(rows[0].lease_seconds, Some(600.0), "{:?}", rows[0]);

    // `xdhcpd history`: the holder at the renewal, nobody after the release, the MAC's leases.
    let at_renewal = history_command(
        &url,
        &["--address", &address.to_string(), "--at", &renewed_at],
    );
    assert!(
        at_renewal.contains("held by 02:00:5e:10:00:01"),
        "{at_renewal}"
    );
    assert!(at_renewal.contains("\"ge-0/0/7\""), "{at_renewal}");
    let now = history_command(&url, &["--address", &address.to_string(), "--at", "now"]);
    assert!(now.contains("not held (last event: release"), "{now}");
    // A time PostgreSQL cannot read: its message, exit status 1.
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_xdhcpd"))
        .args([
            "history",
            "--database",
            &url,
            "--address",
            "127.0.40.1",
            "--at",
            "yesterday-ish",
        ])
        .output()
        .expect("xdhcpd history");
    assert!(!bad.status.success());
    let message = String::from_utf8_lossy(&bad.stderr);
    assert!(message.contains("invalid input syntax"), "{message}");
    let by_mac = history_command(&url, &["--hardware", "02:00:5e:10:00:01"]);
    let listed: Vec<&str> = by_mac
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(2))
        .collect();
    assert_eq!(listed, ["release", "renew", "grant"], "{by_mac}");

    // The database goes away: leases are still ACKed (the lease file is the backend) and
    // their events wait in the spool.
    database.stop("fast");
    let second = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x02];
    let second_address = dora(&socket, port, second, 40).yiaddr();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = scrape(metrics);
        if metric(&text, "xdhcpd_history_events_spooled") >= 1
            && metric(&text, "xdhcpd_history_database_up") == 0
        {
            break;
        }
        assert!(Instant::now() < deadline, "nothing spooled:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(dir.0.join("dhcpd.leases.history-spool").exists());

    // Back: the spool is replayed.
    database.start_again();
    let rows = wait_for_rows(&url, second_address, 1, Duration::from_secs(30));
    assert_eq!(rows[0].event, "grant");
    assert_eq!(rows[0].hardware.as_deref(), Some(&second[..]));
    let text = scrape(metrics);
    assert_eq!(metric(&text, "xdhcpd_history_events_dropped"), 0, "{text}");
}
