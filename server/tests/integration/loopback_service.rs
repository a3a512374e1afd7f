//! Tier 1, service life: the real `xdhcpd` on loopback under a fake systemd (a datagram socket
//! as `$NOTIFY_SOCKET`). SIGHUP applies a new dhcpd.conf and keeps the leases; a bad one is
//! refused and the old one keeps serving; SIGTERM exits cleanly with every lease on disk.
//! Readiness and reload completion are read from the notifications, never from sleeps.
//!
//! Faults (README "Reliability under faults"): a config that declares no subnet for the served
//! interface stops the start (ISC's "Not configured to listen on any interfaces!") and is
//! refused by SIGHUP; a lease file deleted while running is recreated with every lease.

#![expect(
    clippy::disallowed_methods,
    reason = "drives the real server in real time"
)]

use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};

use crate::loopback_support::{self, PortRange};

use loopback_support::{exchange, message, message_type, relay_socket, TempDir};

fn port_for(test: u16) -> u16 {
    loopback_support::port(PortRange::Service, test * 2)
}

/// `dhcp-cache-threshold 0`: the reload test asks again right away and wants the new lease
/// time, not the first lease's remaining time (ISC's 25 % reuse). `ping-check false`: every
/// 127/8 address answers pings here.
fn config(lease_time: u32, extra: &str) -> String {
    format!(
        "authoritative;\ndefault-lease-time {lease_time};\nmax-lease-time 7200;\n\
         dhcp-cache-threshold 0;\nping-check false;\n{extra}\n\
         subnet 127.0.0.0 netmask 255.0.0.0 {{\n  range 127.0.20.1 127.0.20.200;\n}}\n"
    )
}

/// The daemon with a fake systemd listening for its notifications; killed on drop.
struct Service {
    child: Child,
    notify: UnixDatagram,
}

impl Service {
    fn start(dir: &Path, port: u16) -> Self {
        let notify_path = dir.join("notify");
        let notify = UnixDatagram::bind(&notify_path).expect("fake NOTIFY_SOCKET");
        notify
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let child = Command::new(env!("CARGO_BIN_EXE_xdhcpd"))
            .args(["-f", "-d", "-cf"])
            .arg(dir.join("dhcpd.conf"))
            .arg("-lf")
            .arg(dir.join("dhcpd.leases"))
            .arg("-pf")
            .arg(dir.join("dhcpd.pid"))
            .args(["-p", &port.to_string(), "--no-xdp", "--threads", "2"])
            .arg("lo")
            .env("NOTIFY_SOCKET", &notify_path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start xdhcpd");
        let mut service = Self { child, notify };
        service.expect_notification("READY=1", Duration::from_secs(30));
        service
    }

    /// Waits for a notification containing `needle`; returns it.
    fn expect_notification(&mut self, needle: &str, deadline: Duration) -> String {
        let started = Instant::now();
        let mut buffer = [0u8; 1024];
        while started.elapsed() < deadline {
            if let Ok(length) = self.notify.recv(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
                if text.contains(needle) {
                    return text;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("xdhcpd exited ({status}) before notifying {needle}");
            }
        }
        panic!("no {needle} notification within {deadline:?}");
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: a signal to our own child.
        let result = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(result, 0, "kill failed");
    }

    fn reload(&mut self) -> String {
        self.signal(libc::SIGHUP);
        self.expect_notification("RELOADING=1", Duration::from_secs(10));
        self.expect_notification("READY=1", Duration::from_secs(10))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// DISCOVER then REQUEST through the relay; returns the ACK.
fn dora(socket: &UdpSocket, port: u16, mac: [u8; 6], xid: u32) -> Message {
    let offer = exchange(
        socket,
        port,
        &message(MessageType::Discover, mac, xid, Ipv4Addr::UNSPECIFIED),
        Duration::from_secs(10),
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
    let ack = exchange(socket, port, &request, Duration::from_secs(10)).expect("no DHCPACK");
    assert_eq!(message_type(&ack), Some(MessageType::Ack));
    ack
}

fn lease_time(reply: &Message) -> Option<u32> {
    match reply.opts().get(OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(seconds)) => Some(*seconds),
        _ => None,
    }
}

#[test]
fn sighup_applies_a_new_config_and_refuses_a_bad_one() {
    let dir = TempDir::new("service-reload");
    std::fs::write(dir.0.join("dhcpd.conf"), config(600, "")).expect("config");
    std::fs::File::create(dir.0.join("dhcpd.leases")).expect("leases");
    let port = port_for(0);
    let socket = relay_socket(port);
    let mut service = Service::start(&dir.0, port);
    let mac = [0x02, 0x00, 0x00, 0x00, 0x06, 0x01];

    let first = dora(&socket, port, mac, 100);
    assert_eq!(lease_time(&first), Some(600));
    let address = first.yiaddr();

    // A new lease time and a reservation for another client.
    let host = "host fixed { hardware ethernet 02:00:00:00:06:02; fixed-address 127.0.30.7; }";
    std::fs::write(dir.0.join("dhcpd.conf"), config(900, host)).expect("config");
    let status = service.reload();
    assert!(status.contains("reloaded"), "{status}");

    // The same client keeps its address (the lease survived), now with the new lease time.
    let again = dora(&socket, port, mac, 200);
    assert_eq!(again.yiaddr(), address);
    assert_eq!(lease_time(&again), Some(900));
    let fixed = dora(&socket, port, [0x02, 0x00, 0x00, 0x00, 0x06, 0x02], 300);
    assert_eq!(fixed.yiaddr(), Ipv4Addr::new(127, 0, 30, 7));

    // A config with a syntax error is refused; the running one keeps serving.
    std::fs::write(dir.0.join("dhcpd.conf"), "default-lease-time 60\nsubnet {").expect("config");
    let status = service.reload();
    assert!(status.contains("refused"), "{status}");
    let third = dora(&socket, port, mac, 400);
    assert_eq!(third.yiaddr(), address);
    assert_eq!(lease_time(&third), Some(900));
}

#[test]
fn sigterm_exits_cleanly_with_the_leases_on_disk() {
    let dir = TempDir::new("service-term");
    std::fs::write(dir.0.join("dhcpd.conf"), config(600, "")).expect("config");
    std::fs::File::create(dir.0.join("dhcpd.leases")).expect("leases");
    let port = port_for(1);
    let socket = relay_socket(port);
    let mut service = Service::start(&dir.0, port);
    let mut addresses = Vec::new();
    for client in 0..5u8 {
        let ack = dora(
            &socket,
            port,
            [0x02, 0x00, 0x00, 0x00, 0x07, client],
            10 * u32::from(client),
        );
        addresses.push(ack.yiaddr());
    }
    service.signal(libc::SIGTERM);
    service.expect_notification("STOPPING=1", Duration::from_secs(10));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = service.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "xdhcpd did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    let leases = std::fs::read_to_string(dir.0.join("dhcpd.leases")).expect("leases");
    for address in addresses {
        assert!(
            leases.contains(&format!("lease {address} {{")),
            "{address} missing:\n{leases}"
        );
    }
    assert!(
        !dir.0.join("dhcpd.pid").exists(),
        "the PID file is removed on a clean exit"
    );
}

/// The lines ISC dhcpd 4.4 prints for `dhcpd -f -cf EMPTY lo` (common/discover.c).
const ISC_NO_SUBNET: [&str; 3] = [
    "No subnet declaration for lo (127.0.0.1).",
    "** Ignoring requests on lo.  If this is not what",
    "Not configured to listen on any interfaces!",
];

/// Runs xdhcpd on `dir` with `extra` arguments until it exits (30 s at most); its status and
/// standard error. A process left behind (a daemon that forked) is killed by its PID file.
fn run_to_exit(dir: &Path, port: u16, extra: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xdhcpd"))
        .args(extra)
        .arg("-cf")
        .arg(dir.join("dhcpd.conf"))
        .arg("-lf")
        .arg(dir.join("dhcpd.leases"))
        .arg("-pf")
        .arg(dir.join("dhcpd.pid"))
        .args(["-p", &port.to_string(), "--no-xdp", "--threads", "1", "lo"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start xdhcpd");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    use std::io::Read as _;
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr);
    if let Ok(pid) = std::fs::read_to_string(dir.join("dhcpd.pid")) {
        if let Ok(pid) = pid.trim().parse::<libc::pid_t>() {
            // SAFETY: a signal to the daemon this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    (status, stderr)
}

/// The defect: with an empty dhcpd.conf xdhcpd started and served nothing, where ISC exits.
#[test]
fn an_empty_config_stops_the_start_with_isc_message() {
    let dir = TempDir::new("service-empty-start");
    std::fs::write(dir.0.join("dhcpd.conf"), "").expect("config");
    std::fs::File::create(dir.0.join("dhcpd.leases")).expect("leases");
    let port = port_for(2);
    // In the foreground (the log on standard error) and as a daemon (checked before the
    // fork, so that the command itself fails, as ISC's does).
    for extra in [&["-f", "-d"][..], &[][..]] {
        let (status, stderr) = run_to_exit(&dir.0, port, extra);
        assert!(
            !status.success(),
            "{extra:?}: exit status {status}\n{stderr}"
        );
        for line in ISC_NO_SUBNET {
            assert!(
                stderr.contains(line),
                "{extra:?}: no {line:?} in:\n{stderr}"
            );
        }
    }
}

/// The defect: `: > dhcpd.conf; kill -HUP` was accepted ("0 subnets, 0 pools") and every reply
/// stopped. Now refused like any broken config; the running one keeps serving.
#[test]
fn sighup_with_an_empty_config_keeps_the_running_one() {
    let dir = TempDir::new("service-empty-reload");
    std::fs::write(dir.0.join("dhcpd.conf"), config(600, "")).expect("config");
    std::fs::File::create(dir.0.join("dhcpd.leases")).expect("leases");
    let port = port_for(3);
    let socket = relay_socket(port);
    let mut service = Service::start(&dir.0, port);
    let mac = [0x02, 0x00, 0x00, 0x00, 0x08, 0x01];
    let first = dora(&socket, port, mac, 100);
    for empty in ["", "# nothing but a comment\n", "default-lease-time 60;\n"] {
        std::fs::write(dir.0.join("dhcpd.conf"), empty).expect("config");
        let status = service.reload();
        assert!(status.contains("refused"), "{empty:?}: {status}");
    }
    let second = dora(&socket, port, [0x02, 0x00, 0x00, 0x00, 0x08, 0x02], 200);
    assert_eq!(lease_time(&second), Some(600));
    let again = dora(&socket, port, mac, 300);
    assert_eq!(again.yiaddr(), first.yiaddr());
}

/// Beyond ISC: an operator's `rm dhcpd.leases` while the server runs. ISC (and xdhcpd before)
/// kept writing into the deleted file and lost every lease at the next start; now the next
/// write notices and recreates the file from memory, before the reply that needs it leaves.
#[test]
fn a_deleted_lease_file_is_recreated_with_every_lease() {
    let dir = TempDir::new("service-deleted-leases");
    std::fs::write(dir.0.join("dhcpd.conf"), config(600, "")).expect("config");
    let path = dir.0.join("dhcpd.leases");
    std::fs::File::create(&path).expect("leases");
    let port = port_for(4);
    let socket = relay_socket(port);
    let _service = Service::start(&dir.0, port);
    let before = dora(&socket, port, [0x02, 0x00, 0x00, 0x00, 0x09, 0x01], 100).yiaddr();
    std::fs::remove_file(&path).expect("rm dhcpd.leases");
    let after = dora(&socket, port, [0x02, 0x00, 0x00, 0x00, 0x09, 0x02], 200).yiaddr();
    // The ACK left only once its lease was durable: in the recreated file.
    let leases = std::fs::read_to_string(&path).expect("the lease file exists again");
    for address in [before, after] {
        assert!(
            leases.contains(&format!("lease {address} {{")),
            "{address} missing:\n{leases}"
        );
    }
}
