//! Options of other spaces in replies (dhcp-options(5) "VENDOR ENCAPSULATED OPTIONS",
//! dhcpd.conf(5) `vendor-option-space`, `site-option-space`). The expected bytes are what
//! ISC 4.4 sends for the same configurations (the difftest corpus
//! `testdata/difftest/18-vendor-spaces`, `22-docsis-spaces` … `25-site-space` compares them with
//! a live ISC dhcpd).

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode, UnknownOption};

use super::*;

fn config(text: &str) -> Config {
    let text = format!(
        "authoritative;\ndefault-lease-time 600;\nmax-lease-time 7200;\n{text}\n\
         subnet 10.0.0.0 netmask 255.255.255.0 {{\n  range 10.0.0.100 10.0.0.109;\n}}\n"
    );
    crate::config::parse_str(&text, "spaces.conf").expect("config parses")
}

fn discover(options: &[(u8, &[u8])]) -> Message {
    let mut message = client(MessageType::Discover, MAC_A);
    for (code, value) in options {
        if *code == 55 {
            // The engine reads the parameter request list from its typed form.
            let list = value.iter().map(|code| OptionCode::from(*code)).collect();
            message
                .opts_mut()
                .insert(DhcpOption::ParameterRequestList(list));
            continue;
        }
        message
            .opts_mut()
            .insert(DhcpOption::Unknown(UnknownOption::new(
                OptionCode::from(*code),
                value.to_vec(),
            )));
    }
    message
}

fn option_bytes(decision: &Decision, code: u8) -> Option<Vec<u8>> {
    let message = &decision.reply.as_ref().expect("a reply").decoded();
    message.opts().get(OptionCode::from(code)).map(|option| {
        let mut bytes = Vec::new();
        let mut encoder = dhcproto::Encoder::new(&mut bytes);
        dhcproto::Encodable::encode(option, &mut encoder).expect("encode");
        bytes[2..].to_vec()
    })
}

const UBNT: &str = r#"
option space ubnt code width 1 length width 1;
option ubnt.unifi-address code 1 = ip-address;
option ubnt.name code 2 = text;
class "ubnt" {
  match if option vendor-class-identifier = "ubnt";
  vendor-option-space ubnt;
  option ubnt.unifi-address 10.0.0.8;
}
option ubnt.name "ap";
"#;

#[test]
fn vendor_option_space_builds_option_43_for_a_client_asking_for_it() {
    let mut harness = Harness::new(config(UBNT));
    let ap = harness.handle(NOW, &discover(&[(60, b"ubnt"), (55, &[1, 3, 43])]));
    // Every option of the space in the reply's scopes, in ISC's hash order (code 1, code 2).
    assert_eq!(
        option_bytes(&ap, 43),
        Some(vec![1, 4, 10, 0, 0, 8, 2, 2, b'a', b'p'])
    );
    let not_asked = harness.handle(NOW, &discover(&[(60, b"ubnt"), (55, &[1, 3])]));
    assert_eq!(option_bytes(&not_asked, 43), None);
    // Outside the class no vendor-option-space applies.
    let other = harness.handle(NOW, &discover(&[(55, &[1, 3, 43])]));
    assert_eq!(option_bytes(&other, 43), None);
}

#[test]
fn an_explicit_option_43_wins_over_the_vendor_space() {
    let text = format!("{UBNT}\noption vendor-encapsulated-options 01:02:03;");
    let mut harness = Harness::new(config(&text));
    let ap = harness.handle(NOW, &discover(&[(60, b"ubnt"), (55, &[43])]));
    assert_eq!(option_bytes(&ap, 43), Some(vec![1, 2, 3]));
}

#[test]
fn an_encapsulate_option_carries_its_space_in_the_spaces_widths() {
    let text = r#"
option space docsis code width 2 length width 2;
option docsis.tftp code 32 = ip-address;
option docsis-enc code 122 = encapsulate docsis;
option docsis.tftp 10.0.0.69;
"#;
    let mut harness = Harness::new(config(text));
    let modem = harness.handle(NOW, &discover(&[(55, &[1, 122])]));
    assert_eq!(
        option_bytes(&modem, 122),
        Some(vec![0, 32, 0, 4, 10, 0, 0, 69])
    );
}

#[test]
fn site_option_space_replaces_dhcp_codes_from_its_cutoff() {
    let text = r#"
option wpad code 252 = text;
option low code 200 = text;
option space local;
option local.proxy code 252 = text;
option local.vlan code 240 = unsigned integer 16;
site-option-space "local";
option wpad "dhcp space";
option low "kept";
option local.proxy "site space";
option local.vlan 42;
"#;
    let mut harness = Harness::new(config(text));
    let reply = harness.handle(NOW, &discover(&[(55, &[200, 240, 252])]));
    assert_eq!(option_bytes(&reply, 252), Some(b"site space".to_vec()));
    assert_eq!(option_bytes(&reply, 240), Some(vec![0, 42]));
    assert_eq!(option_bytes(&reply, 200), Some(b"kept".to_vec()));
}

#[test]
fn sub_options_of_a_carried_space_are_read_from_the_request() {
    let text = r#"
option space docsis code width 1 length width 1;
option docsis.oro code 1 = array of unsigned integer 8;
option vendor.cablelabs code 4491 = encapsulate docsis;
class "oro" {
  match if option docsis.oro = 02:03;
  option domain-name "matched";
}
class "absent" {
  match if not exists docsis.oro;
  option domain-name "absent";
}
"#;
    let mut harness = Harness::new(config(text));
    let with = harness.handle(
        NOW,
        &discover(&[(55, &[15]), (125, &[0, 0, 0x11, 0x8b, 4, 1, 2, 2, 3])]),
    );
    assert_eq!(option_bytes(&with, 15), Some(b"matched".to_vec()));
    let without = harness.handle(NOW, &discover(&[(55, &[15])]));
    assert_eq!(option_bytes(&without, 15), Some(b"absent".to_vec()));
}
