//! Tier 1: the OMAPI listener's defences beyond ISC (README, OMAPI), against the real `xdhcpd`
//! binary on loopback: a keyless listener binds 127.0.0.1 only unless `xdhcpd.omapi-listen`
//! says otherwise; one source address cannot hold more than its share of connections while the
//! real `omshell` still gets in from another; a connection that does not open the `omapi-key`
//! authenticator in time is closed and its slot freed, one that does is not. Idle clients bind
//! 127.0.0.2 and 127.0.0.3 to be other sources than omshell's 127.0.0.1.

#![expect(
    clippy::disallowed_methods,
    reason = "drives the real server in real time"
)]

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xdhcpd::omapi::auth::{sign_message, Authenticator};
use xdhcpd::omapi::wire::{decode_message, find, Intro, Message, Opcode, Value};

use crate::loopback_support::{self, PortRange};

use loopback_support::{Server, TempDir};

const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZg==";
const OMSHELL: &str = "/usr/bin/omshell";
const IDLE_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const OTHER_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

fn port_for(test: u16) -> u16 {
    loopback_support::port(PortRange::OmapiLimits, test * 4)
}

/// dhcpd.conf serving loopback with OMAPI on `omapi_port`, a key when `keyed`, and `extra`
/// (xdhcpd options, whose definitions are included).
fn write_config(dir: &Path, omapi_port: u16, keyed: bool, extra: &str) {
    let key = if keyed {
        format!(
            "key omapi_key {{ algorithm hmac-md5; secret \"{SECRET}\"; }};\nomapi-key omapi_key;\n"
        )
    } else {
        String::new()
    };
    let text = format!(
        "{}{extra}authoritative;\nping-check false;\n{key}omapi-port {omapi_port};\n\
         subnet 127.0.0.0 netmask 255.0.0.0 {{\n  range 127.0.10.1 127.0.10.200;\n}}\n",
        xdhcpd::config::xdhcpd::DEFINITIONS
    );
    std::fs::write(dir.join("dhcpd.conf"), text).unwrap();
    std::fs::File::create(dir.join("dhcpd.leases")).unwrap();
}

/// The local address of the IPv4 TCP socket listening on `port` (/proc/net/tcp, proc(5)).
fn listening_address(port: u16) -> Option<Ipv4Addr> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (address, local_port) = fields.get(1)?.split_once(':')?;
        // State 0A is TCP_LISTEN; the address is the kernel's u32 in host (little-endian) order.
        if *fields.get(3)? != "0A" || u16::from_str_radix(local_port, 16).ok()? != port {
            return None;
        }
        let raw = u32::from_str_radix(address, 16).ok()?;
        Some(Ipv4Addr::from(raw.to_le_bytes()))
    })
}

/// Waits (bounded) until something listens on `port`; its address.
fn wait_for_listener(port: u16) -> Ipv4Addr {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if let Some(address) = listening_address(port) {
            return address;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on TCP port {port}");
}

/// A TCP connection from `source` to the OMAPI port on 127.0.0.1.
fn connect_from(source: Ipv4Addr, port: u16) -> TcpStream {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .unwrap();
    socket.bind(&SocketAddrV4::new(source, 0).into()).unwrap();
    socket
        .connect(&SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into())
        .unwrap();
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    stream
}

/// Whether the server admitted the connection: it sends its introduction to admitted ones and
/// closes refused ones without a byte.
fn admitted(stream: &mut TcpStream) -> bool {
    let mut intro = [0u8; 8];
    match stream.read_exact(&mut intro) {
        Ok(()) => {
            assert_eq!(intro, Intro::OURS.encode());
            true
        }
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
            ) =>
        {
            false
        }
        Err(error) => panic!("no intro and no close: {error}"),
    }
}

/// Whether the server closed `stream` (EOF or reset) rather than letting the read time out.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => panic!("unexpected data"),
        Err(error) if error.kind() == ErrorKind::ConnectionReset => true,
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(error) => panic!("read: {error}"),
    }
}

/// Runs omshell against 127.0.0.1:`port` with the key and `commands`; what it printed.
fn omshell(port: u16, commands: &str) -> String {
    let script =
        format!("server 127.0.0.1\nport {port}\nkey omapi_key {SECRET}\nconnect\n{commands}");
    let mut child = Command::new(OMSHELL)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run omshell");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("---- omshell ----\n{script}---- output ----\n{text}");
    text
}

fn omshell_available() -> bool {
    if Path::new(OMSHELL).exists() {
        return true;
    }
    assert!(
        std::env::var("REQUIRE_PRIVILEGED_TESTS").is_err(),
        "omshell is required (apt-get install isc-dhcp-client)"
    );
    eprintln!("skipped: {OMSHELL} not installed");
    false
}

/// Reads one OMAPI message (after the introduction) from `stream`.
fn read_message(stream: &mut TcpStream) -> Message {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(decoded) = decode_message(&received, 24, 1 << 20).unwrap() {
            return decoded.message;
        }
        let read = stream.read(&mut buffer).expect("a reply");
        assert!(read > 0, "closed before a reply");
        received.extend_from_slice(&buffer[..read]);
    }
}

#[test]
fn a_keyless_listener_binds_loopback_unless_told_otherwise() {
    let dir = TempDir::new("omapi-listen");
    let port = port_for(0);
    let omapi_port = port + 1;
    // No key: 127.0.0.1 only.
    write_config(&dir.0, omapi_port, false, "");
    let mut server = Server::start(&dir.0, port);
    assert_eq!(wait_for_listener(omapi_port), Ipv4Addr::LOCALHOST);
    server.kill();
    // No key, and the operator asks for every address.
    write_config(
        &dir.0,
        omapi_port,
        false,
        "option xdhcpd.omapi-listen 0.0.0.0;\n",
    );
    let mut server = Server::start(&dir.0, port);
    assert_eq!(wait_for_listener(omapi_port), Ipv4Addr::UNSPECIFIED);
    server.kill();
    // A key: every address, as ISC; or the address asked for.
    write_config(&dir.0, omapi_port, true, "");
    let mut server = Server::start(&dir.0, port);
    assert_eq!(wait_for_listener(omapi_port), Ipv4Addr::UNSPECIFIED);
    server.kill();
    write_config(
        &dir.0,
        omapi_port,
        true,
        "option xdhcpd.omapi-listen 127.0.0.1;\n",
    );
    let _server = Server::start(&dir.0, port);
    assert_eq!(wait_for_listener(omapi_port), Ipv4Addr::LOCALHOST);
}

/// The default bound (16 connections per source) with the authentication timeout off, so that
/// nothing here depends on how fast the test runs.
#[test]
fn idle_connections_from_one_address_cannot_lock_out_the_operator() {
    if !omshell_available() {
        return;
    }
    let dir = TempDir::new("omapi-per-source");
    let port = port_for(1);
    let omapi_port = port + 1;
    write_config(
        &dir.0,
        omapi_port,
        true,
        "option xdhcpd.omapi-auth-timeout 0;\n",
    );
    let _server = Server::start(&dir.0, port);
    wait_for_listener(omapi_port);

    let mut idle: Vec<TcpStream> = (0..16)
        .map(|index| {
            let mut stream = connect_from(IDLE_SOURCE, omapi_port);
            assert!(admitted(&mut stream), "connection {index} refused");
            stream
        })
        .collect();
    let mut extra = connect_from(IDLE_SOURCE, omapi_port);
    assert!(!admitted(&mut extra), "a 17th connection from one address");

    // The operator, from another address, still gets in with the real omshell.
    let created = omshell(
        omapi_port,
        "new host\nset name = \"limits\"\nset hardware-address = 02:00:00:00:0d:01\n\
         set hardware-type = 1\ncreate\n",
    );
    assert!(created.contains("name = \"limits\""), "{created}");
    assert!(!created.contains("can't"), "{created}");

    // A closed connection gives its slot back.
    drop(idle.pop());
    let started = Instant::now();
    loop {
        let mut again = connect_from(IDLE_SOURCE, omapi_port);
        if admitted(&mut again) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the slot never came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `omapi-auth-timeout 2` and one connection per source: an idle connection is closed after
/// the timeout and its source may connect again; a connection that opened the authenticator
/// outlives the timeout and is still answered.
#[test]
fn unauthenticated_connections_are_closed_after_the_timeout() {
    let dir = TempDir::new("omapi-auth-timeout");
    let port = port_for(2);
    let omapi_port = port + 1;
    write_config(
        &dir.0,
        omapi_port,
        true,
        "option xdhcpd.omapi-auth-timeout 2;\noption xdhcpd.omapi-connections-per-source 1;\n",
    );
    let _server = Server::start(&dir.0, port);
    wait_for_listener(omapi_port);

    // Authenticated, from its own address.
    let mut operator = connect_from(OTHER_SOURCE, omapi_port);
    assert!(admitted(&mut operator));
    let mut open = Message::new(Opcode::OPEN, 0, 1, 0);
    open.message_values
        .push(Value::new("type", "authenticator"));
    open.object_values.push(Value::new("name", "omapi_key"));
    open.object_values
        .push(Value::new("algorithm", "hmac-md5.SIG-ALG.REG.INT."));
    let mut bytes = Intro::OURS.encode().to_vec();
    open.encode(&mut bytes);
    operator.write_all(&bytes).unwrap();
    let reply = read_message(&mut operator);
    assert_eq!(reply.header.op, Opcode::UPDATE);
    let authid = reply.header.handle;

    // Idle: closed by the server after its two seconds, then its address is admitted again.
    let mut idle = connect_from(IDLE_SOURCE, omapi_port);
    assert!(admitted(&mut idle));
    assert!(closed_by_server(&mut idle), "still open after 15 s");
    drop(idle);
    let started = Instant::now();
    loop {
        let mut again = connect_from(IDLE_SOURCE, omapi_port);
        if admitted(&mut again) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the slot never came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The authenticated connection is past its deadline and still answered, signed.
    let key = Authenticator::hmac_md5("omapi_key", b"0123456789abcdef");
    let mut lookup = Message::new(Opcode::OPEN, 0, 2, 0);
    lookup.message_values.push(Value::new("type", "lease"));
    lookup
        .object_values
        .push(Value::new("ip-address", vec![127, 0, 99, 99]));
    sign_message(&mut lookup, authid, &key);
    operator.write_all(&lookup.to_bytes()).unwrap();
    let reply = read_message(&mut operator);
    assert_eq!((reply.header.rid, reply.header.authid), (2, authid));
    assert_ne!(
        find(&reply.message_values, "result").and_then(Value::as_u32),
        Some(0x6000b),
        "signature refused"
    );
}
