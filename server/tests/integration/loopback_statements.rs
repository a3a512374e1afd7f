//! Tier 1, the real `xdhcpd` binary on loopback (no root): dhcpd.conf statements that act
//! outside the reply (dhcp-eval(5) "EXECUTE", dhcpd.conf(5) "EVENTS"). An `on commit` body
//! sets a variable and runs a command, an `on release` body runs another: the commands run
//! (off the packet path, `daemon::commands`), with their arguments evaluated, and the lease
//! file holds the variables as ISC writes them (`set NAME = "…";`).

#![expect(
    clippy::disallowed_methods,
    reason = "drives the real server in real time"
)]

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, MessageType, OptionCode};

use crate::loopback_support::{self, PortRange};

use loopback_support::{exchange, message, message_type, relay_socket, Server, TempDir};

fn port() -> u16 {
    loopback_support::port(PortRange::Statements, 0)
}

fn write_config(dir: &Path) {
    let log = dir.join("commands.log");
    let mut file = std::fs::File::create(dir.join("dhcpd.conf")).unwrap();
    writeln!(
        file,
        // ping-check false: every 127/8 address answers pings here.
        "authoritative;\ndefault-lease-time 600;\nmax-lease-time 7200;\nping-check false;\n\
         subnet 127.0.0.0 netmask 255.0.0.0 {{\n  range 127.0.40.1 127.0.40.10;\n\
           set plan = \"gold\";\n\
           on commit {{\n\
             set who = binary-to-ascii(16, 8, \":\", substring(hardware, 1, 6));\n\
             execute (\"/bin/sh\", \"-c\", \"echo \\\"$0 $1 $2\\\" >> {log}\", \"commit\", \
                      binary-to-ascii(10, 8, \".\", leased-address), plan);\n\
           }}\n\
           on release {{\n\
             execute (\"/bin/sh\", \"-c\", \"echo \\\"$0 $1\\\" >> {log}\", \"release\", who);\n\
           }}\n\
         }}",
        log = log.display()
    )
    .unwrap();
    std::fs::File::create(dir.join("dhcpd.leases")).unwrap();
}

fn wait_for_file(path: &Path, deadline: Instant, done: impl Fn(&str) -> bool) -> String {
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{}:\n{text}", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn on_commit_and_on_release_run_their_commands_and_keep_variables() {
    let dir = TempDir::new("statements");
    write_config(&dir.0);
    let _server = Server::start(&dir.0, port());
    let socket = relay_socket(port());
    let mac = [0x02, 0, 0, 0x40, 0, 0x01];

    let offer = exchange(
        &socket,
        port(),
        &message(MessageType::Discover, mac, 0x4001, Ipv4Addr::UNSPECIFIED),
        Duration::from_secs(10),
    )
    .expect("an OFFER");
    assert_eq!(message_type(&offer), Some(MessageType::Offer));
    let address = offer.yiaddr();
    let server = match offer.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(id)) => *id,
        other => panic!("no server identifier: {other:?}"),
    };
    let mut request = message(MessageType::Request, mac, 0x4002, Ipv4Addr::UNSPECIFIED);
    request
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(address));
    request
        .opts_mut()
        .insert(DhcpOption::ServerIdentifier(server));
    let ack = exchange(&socket, port(), &request, Duration::from_secs(5)).expect("an ACK");
    assert_eq!(message_type(&ack), Some(MessageType::Ack));

    let deadline = Instant::now() + Duration::from_secs(10);
    let log = dir.0.join("commands.log");
    let text = wait_for_file(&log, deadline, |text| text.contains("commit"));
    assert_eq!(text.trim(), format!("commit {address} gold"));
    // The ACK waited for the record: the variables are in the lease file already.
    let leases = std::fs::read_to_string(dir.0.join("dhcpd.leases")).unwrap();
    assert!(
        leases.contains("set plan = \"gold\";") && leases.contains("set who = \"2:0:0:40:0:1\";"),
        "{leases}"
    );

    let release = message(MessageType::Release, mac, 0x4003, address);
    let mut release = release;
    release
        .opts_mut()
        .insert(DhcpOption::ServerIdentifier(server));
    let payload = {
        let mut bytes = Vec::new();
        dhcproto::Encodable::encode(&release, &mut dhcproto::Encoder::new(&mut bytes)).unwrap();
        bytes
    };
    socket
        .send_to(&payload, (Ipv4Addr::LOCALHOST, port()))
        .unwrap();
    let text = wait_for_file(&log, deadline, |text| text.contains("release"));
    assert!(
        text.lines().any(|line| line == "release 2:0:0:40:0:1"),
        "{text}"
    );
}
