//! Helpers for the tier-1 tests that drive the real `xdhcpd` binary on loopback: a scratch
//! directory, the server process (killed on drop), and a test client that plays a relay agent at
//! 127.0.0.2 so that replies come back by unicast (RFC 2131 §4.1).
// Each test binary uses a different subset.
#![allow(dead_code)]
#![expect(
    clippy::disallowed_methods,
    reason = "drives the real server in real time"
)]

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};

pub const RELAY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!("xdhcpd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The server process, killed on drop.
pub struct Server {
    child: Child,
}

impl Server {
    pub fn start(dir: &Path, port: u16) -> Self {
        Self::start_with(dir, port, &[])
    }

    pub fn start_with(dir: &Path, port: u16, extra: &[&str]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_xdhcpd"))
            .args(["-f", "-d", "-cf"])
            .arg(dir.join("dhcpd.conf"))
            .arg("-lf")
            .arg(dir.join("dhcpd.leases"))
            .arg("-pf")
            .arg(dir.join("dhcpd.pid"))
            .args(["-p", &port.to_string(), "--no-xdp", "--threads", "2"])
            .args(extra)
            .arg("lo")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start xdhcpd");
        Self { child }
    }

    /// The server's process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The relay's socket: `127.0.0.2:PORT`, more specific than the server's wildcard bind.
pub fn relay_socket(port: u16) -> UdpSocket {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .unwrap();
    socket.set_reuse_address(true).unwrap();
    socket.set_reuse_port(true).unwrap();
    socket.bind(&SocketAddrV4::new(RELAY, port).into()).unwrap();
    let socket: UdpSocket = socket.into();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    socket
}

pub fn message(kind: MessageType, mac: [u8; 6], xid: u32, ciaddr: Ipv4Addr) -> Message {
    dhcp_test_messages::ClientMessage::new(kind, mac)
        .xid(xid)
        .ciaddr(ciaddr)
        .relayed_by(RELAY)
        .requesting(&dhcp_test_messages::COMMON_PARAMETERS)
        .build()
}

/// Sends `request` until a reply with the same xid arrives or `deadline` passes.
pub fn exchange(
    socket: &UdpSocket,
    port: u16,
    request: &Message,
    deadline: Duration,
) -> Option<Message> {
    let mut payload = Vec::new();
    request.encode(&mut Encoder::new(&mut payload)).unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 1500];
    while started.elapsed() < deadline {
        socket
            .send_to(&payload, SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
            .unwrap();
        while let Ok((length, _)) = socket.recv_from(&mut buffer) {
            if let Ok(reply) = Message::decode(&mut Decoder::new(&buffer[..length])) {
                if reply.xid() == request.xid() {
                    return Some(reply);
                }
            }
        }
    }
    None
}

pub fn message_type(message: &Message) -> Option<MessageType> {
    match message.opts().get(OptionCode::MessageType) {
        Some(DhcpOption::MessageType(kind)) => Some(*kind),
        _ => None,
    }
}

/// The loopback modules' port ranges: one hundred ports each, so that the modules of the one
/// test binary never share a port while their tests run at once.
#[derive(Clone, Copy)]
pub enum PortRange {
    Loopback,
    Decline,
    Service,
    Shards,
    Metrics,
    OmapiLimits,
    OmapiOmshell,
    Statements,
    BulkLeasequery,
    ControlApi,
    PgHistory,
    PgLeases,
}

/// Port `offset` of `range` on 127.0.0.1, placed by the process id so that two test runs on one
/// machine are unlikely to meet (20000 to about 30800, below Linux's ephemeral ports).
pub fn port(range: PortRange, offset: u16) -> u16 {
    assert!(offset < 100, "a module has one hundred ports");
    20_000 + (std::process::id() % 10_000) as u16 + range as u16 * 100 + offset
}
