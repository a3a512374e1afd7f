//! `get-lease-hostnames true;` (ISC `ack_lease`): a DHCPOFFER, a DHCPACK and the BOOTREPLY of a
//! dynamic BOOTP lease without any other host name carry the address's reverse DNS name as
//! option 12, NUL included; no name logs "No hostname for A"; the names come from the table
//! the driver filled (`crate::reverse_names`), and an address not looked up yet gets none.

use std::net::Ipv4Addr;
use std::sync::Arc;

use dhcproto::v4::{Message, MessageType};

use super::*;
use crate::config::model::LogPriority;
use crate::reverse_names::Table;

const FIRST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);

fn config(global: &str, subnet: &str) -> Config {
    let text = format!(
        "authoritative;\nping-check false;\n{global}\n\
         subnet 10.0.0.0 netmask 255.255.255.0 {{\n  range 10.0.0.10 10.0.0.11;\n{subnet}\n}}\n\
         host kiosk {{ hardware ethernet 02:00:00:00:00:0b; }}\n"
    );
    crate::config::parse_str(&text, "names.conf").expect("config parses")
}

/// The table the driver would have filled: 10.0.0.10 has a name, 10.0.0.11 none.
fn table() -> Arc<Table> {
    let mut table = Table::default();
    table.insert(FIRST, Some("pc10.lab.test"));
    table.insert(Ipv4Addr::new(10, 0, 0, 11), None);
    Arc::new(table)
}

fn named(config: Config) -> Harness {
    let mut harness = Harness::new(config);
    harness.reverse_names = Some(table());
    harness
}

/// Option 12 of the encoded reply, as the client reads it.
fn host_name(decision: &Decision) -> Option<Vec<u8>> {
    let reply = decision.reply.as_ref().expect("a reply");
    let bytes = reply.encode().expect("encodes");
    let mut options = &bytes[240..];
    while let [code, rest @ ..] = options {
        match code {
            0 => options = rest,
            255 => return None,
            _ => {
                let length = usize::from(rest[0]);
                if *code == 12 {
                    return Some(rest[1..1 + length].to_vec());
                }
                options = &rest[1 + length..];
            }
        }
    }
    None
}

fn log_lines(decision: &Decision) -> Vec<(LogPriority, String)> {
    decision
        .reply
        .as_ref()
        .map(|reply| reply.executed.log_lines.clone())
        .unwrap_or_default()
}

#[test]
fn offer_and_ack_carry_the_reverse_name_with_its_nul() {
    let mut harness = named(config("get-lease-hostnames true;", ""));
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    assert_eq!(yiaddr(&offer), Some(FIRST));
    assert_eq!(host_name(&offer), Some(b"pc10.lab.test\0".to_vec()));
    assert!(log_lines(&offer).is_empty());
    let ack = harness.handle(NOW, &selecting(MAC_A, FIRST, INTERFACE));
    assert_eq!(reply_type(&ack), Some(MessageType::Ack));
    assert_eq!(host_name(&ack), Some(b"pc10.lab.test\0".to_vec()));
}

#[test]
fn an_address_without_a_name_logs_isc_line() {
    let mut harness = named(config("get-lease-hostnames true;", ""));
    let _first = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    // The second client gets the second address, which has no name.
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_B));
    assert_eq!(yiaddr(&offer), Some(Ipv4Addr::new(10, 0, 0, 11)));
    assert_eq!(host_name(&offer), None);
    assert_eq!(
        log_lines(&offer),
        vec![(LogPriority::Error, "No hostname for 10.0.0.11".to_owned())]
    );
}

#[test]
fn other_host_names_win_and_the_flag_follows_the_scopes() {
    // Without the statement, or with `false`: no lookup.
    for global in ["", "get-lease-hostnames false;"] {
        let mut harness = named(config(global, ""));
        let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
        assert_eq!(host_name(&offer), None, "{global}");
    }
    // Set in the subnet only.
    let mut harness = named(config("", "  get-lease-hostnames true;"));
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    assert_eq!(host_name(&offer), Some(b"pc10.lab.test\0".to_vec()));
    // A configured host-name option comes first (ISC looks only when none is set).
    let mut harness = named(config(
        "get-lease-hostnames true;\noption host-name \"fixed\";",
        "",
    ));
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    assert_eq!(host_name(&offer), Some(b"fixed".to_vec()));
    // So does the host declaration's name under `use-host-decl-names`.
    let mut harness = named(config(
        "get-lease-hostnames true;\nuse-host-decl-names true;",
        "",
    ));
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_B));
    assert_eq!(yiaddr(&offer), Some(FIRST));
    assert_eq!(host_name(&offer), Some(b"kiosk".to_vec()));
}

#[test]
fn an_address_not_looked_up_yet_gets_no_name() {
    let mut harness = Harness::new(config("get-lease-hostnames true;", ""));
    harness.reverse_names = Some(Arc::new(Table::default()));
    let offer = harness.handle(NOW, &client(MessageType::Discover, MAC_A));
    assert_eq!(host_name(&offer), None);
    assert!(log_lines(&offer).is_empty());
}

#[test]
fn a_dynamic_bootp_lease_is_named_too() {
    let mut harness = named(config(
        "get-lease-hostnames true;",
        "  range dynamic-bootp 10.0.0.100 10.0.0.100;",
    ));
    let mut table = Table::default();
    table.insert(Ipv4Addr::new(10, 0, 0, 100), Some("boot100.lab.test"));
    harness.reverse_names = Some(Arc::new(table));
    let unspecified = Ipv4Addr::UNSPECIFIED;
    let request = Message::new_with_id(
        0x99,
        unspecified,
        unspecified,
        unspecified,
        unspecified,
        &MAC_A,
    );
    let reply = harness.handle(NOW, &request);
    assert_eq!(yiaddr(&reply), Some(Ipv4Addr::new(10, 0, 0, 100)));
    assert_eq!(host_name(&reply), Some(b"boot100.lab.test\0".to_vec()));
}
