//! Executable statements evaluated per reply (dhcp-eval(5), dhcpd.conf(5)): `if`/`elsif`/
//! `else` bodies, options from expressions, `default`/`prepend`/`append`, regular expression
//! matches and `log`. Each case is what ISC 4.4 answers for the same configuration (the
//! difftest corpus `testdata/difftest/2*-*.conf` compares them with a live ISC dhcpd).

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode, UnknownOption};

use super::*;
use crate::config::model::LogPriority;

/// A 10.0.0.0/24 network on the harness's interface, `statements` in its subnet.
pub(super) fn config(global: &str, statements: &str) -> Config {
    let text = format!(
        "authoritative;\ndefault-lease-time 600;\nmax-lease-time 7200;\n{global}\n\
         subnet 10.0.0.0 netmask 255.255.255.0 {{\n  range 10.0.0.100 10.0.0.109;\n\
         {statements}\n}}\n"
    );
    crate::config::parse_str(&text, "statements.conf").expect("config parses")
}

pub(super) fn discover(mac: [u8; 6], options: &[(u8, &[u8])]) -> Message {
    let mut message = client(MessageType::Discover, mac);
    for (code, value) in options {
        message
            .opts_mut()
            .insert(DhcpOption::Unknown(UnknownOption::new(
                OptionCode::from(*code),
                value.to_vec(),
            )));
    }
    message
}

pub(super) fn reply(decision: &Decision) -> Message {
    decision.reply.as_ref().expect("a reply").decoded()
}

pub(super) fn option_bytes(decision: &Decision, code: u8) -> Option<Vec<u8>> {
    let message = reply(decision);
    message.opts().get(OptionCode::from(code)).map(|option| {
        let mut bytes = Vec::new();
        let mut encoder = dhcproto::Encoder::new(&mut bytes);
        dhcproto::Encodable::encode(option, &mut encoder).expect("encode");
        bytes[2..].to_vec()
    })
}

pub(super) fn file(decision: &Decision) -> Vec<u8> {
    let file = reply(decision).fname().unwrap_or_default().to_vec();
    file.into_iter().take_while(|byte| *byte != 0).collect()
}

const PXE: &str = r#"
  if exists user-class and option user-class = "iPXE" {
    filename "http://10.0.0.1/boot.ipxe";
  } elsif substring (option vendor-class-identifier, 0, 9) = "PXEClient" {
    next-server 10.0.0.1;
    if option pxe-system-type = 00:07 {
      filename "ipxe.efi";
    } else {
      filename "undionly.kpxe";
    }
  } else {
    option domain-name "other.example";
  }
"#;

#[test]
fn if_elsif_else_choose_the_boot_file_as_isc_does() {
    let mut harness = Harness::new(config("option arch code 93 = unsigned integer 16;", PXE));
    let ipxe = harness.handle(NOW, &discover(MAC_A, &[(77, b"iPXE")]));
    assert_eq!(file(&ipxe), b"http://10.0.0.1/boot.ipxe");
    let bios = harness.handle(NOW, &discover(MAC_A, &[(60, b"PXEClient:Arch:00000")]));
    assert_eq!(file(&bios), b"undionly.kpxe");
    assert_eq!(reply(&bios).siaddr(), Ipv4Addr::new(10, 0, 0, 1));
    let uefi = harness.handle(
        NOW,
        &discover(MAC_A, &[(60, b"PXEClient:Arch:00007"), (93, &[0, 7])]),
    );
    assert_eq!(file(&uefi), b"ipxe.efi");
    let other = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(file(&other), b"");
    assert_eq!(
        option_bytes(&other, 15).as_deref(),
        Some(&b"other.example"[..])
    );
    assert_eq!(option_bytes(&bios, 15), None);
}

#[test]
fn parameters_in_a_taken_body_override_the_enclosing_scope() {
    let mut harness = Harness::new(config(
        "",
        "default-lease-time 300;\n if option dhcp-client-identifier = \"long\" { default-lease-time 3000; }",
    ));
    let plain = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(reply_lease_time(&plain), Some(300));
    let long = harness.handle(NOW, &discover(MAC_B, &[(61, b"long")]));
    assert_eq!(reply_lease_time(&long), Some(3000));
}

#[test]
fn options_from_expressions_are_evaluated_per_reply() {
    let mut harness = Harness::new(config(
        "",
        r#"option host-name = concat("dhcp-", binary-to-ascii(10, 8, "-", leased-address));
           option root-path = pick-first-value(option agent.circuit-id, "none");"#,
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    let address = yiaddr(&offer).expect("offer");
    let [a, b, c, d] = address.octets();
    assert_eq!(
        option_bytes(&offer, 12),
        Some(format!("dhcp-{a}-{b}-{c}-{d}").into_bytes())
    );
    assert_eq!(option_bytes(&offer, 17).as_deref(), Some(&b"none"[..]));
}

#[test]
fn a_null_expression_sends_no_option() {
    let mut harness = Harness::new(config("", "option root-path = option user-class;"));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(option_bytes(&offer, 17), None);
    let with = harness.handle(NOW, &discover(MAC_A, &[(77, b"abc")]));
    assert_eq!(option_bytes(&with, 17).as_deref(), Some(&b"abc"[..]));
}

#[test]
fn default_prepend_and_append_combine_with_outer_scopes() {
    let mut harness = Harness::new(config(
        "option domain-name \"outer.example\";\noption domain-search \"a.example\";",
        "default domain-name \"inner.example\";\n default root-path \"/srv\";\n\
         append domain-name-servers 10.0.0.9;\n prepend domain-name-servers 10.0.0.8;",
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    // `default` loses to the global value, fills in what nothing set.
    assert_eq!(
        option_bytes(&offer, 15).as_deref(),
        Some(&b"outer.example"[..])
    );
    assert_eq!(option_bytes(&offer, 17).as_deref(), Some(&b"/srv"[..]));
    assert_eq!(
        option_bytes(&offer, 6),
        Some(vec![10, 0, 0, 8, 10, 0, 0, 9])
    );
}

#[test]
fn regular_expressions_match_like_posix_regexec() {
    let mut harness = Harness::new(config(
        "",
        r#"if option vendor-class-identifier ~= "^MSFT [0-9]+" { option domain-name "ms.example"; }
           elsif option vendor-class-identifier ~~ "^android" { option domain-name "android.example"; }"#,
    ));
    let ms = harness.handle(NOW, &discover(MAC_A, &[(60, b"MSFT 5.0")]));
    assert_eq!(option_bytes(&ms, 15).as_deref(), Some(&b"ms.example"[..]));
    let android = harness.handle(NOW, &discover(MAC_A, &[(60, b"ANDROID-dhcp-13")]));
    assert_eq!(
        option_bytes(&android, 15).as_deref(),
        Some(&b"android.example"[..])
    );
    let neither = harness.handle(NOW, &discover(MAC_A, &[(60, b"msft 5.0")]));
    assert_eq!(option_bytes(&neither, 15), None);
}

#[test]
fn log_statements_write_a_line_per_reply() {
    let mut harness = Harness::new(config(
        "",
        r#"log (info, concat("offer to ", binary-to-ascii(16, 8, ":", substring(hardware, 1, 6))));
           if exists user-class { log (error, "user class seen"); }"#,
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[(77, b"x")]));
    assert_eq!(
        offer.reply.as_ref().expect("reply").executed.log_lines,
        vec![
            (LogPriority::Info, "offer to 2:0:0:0:0:a".to_string()),
            (LogPriority::Error, "user class seen".to_string()),
        ]
    );
}

#[test]
fn a_pattern_the_regex_engine_cannot_compile_is_refused() {
    let text = "subnet 10.0.0.0 netmask 255.255.255.0 {\n if option user-class ~= \"(\" { }\n}\n";
    assert!(crate::config::parse_str(text, "bad-regex.conf").is_err());
}

fn variables(harness: &Harness, address: Ipv4Addr) -> Vec<(String, String)> {
    harness
        .leases
        .get(address)
        .and_then(|lease| lease.extra.as_deref())
        .map(|extra| extra.variables.clone())
        .unwrap_or_default()
}

const EVENTS: &str = r#"
  set vendor-name = pick-first-value(option vendor-class-identifier, "none");
  on commit {
    set circuit = "c-1";
    log (info, concat("commit ", vendor-name));
    execute ("/usr/local/bin/account", "commit", binary-to-ascii(10, 8, ".", leased-address), vendor-name);
    if defined(seen) { set renewed = true; } else { set seen = 1; }
  }
  on release or expiry {
    unset circuit;
    log (info, concat("gone ", vendor-name));
    execute ("/usr/local/bin/account", "stop");
  }
"#;

#[test]
fn on_commit_runs_at_ack_and_its_variables_are_the_leases() {
    let mut harness = Harness::new(config("", EVENTS));
    let offer = harness.handle(NOW, &discover(MAC_A, &[(60, b"MSFT 5.0")]));
    // An OFFER runs the scope's `set` but no `on commit`.
    assert!(offer.reply.as_ref().expect("offer").executed.is_empty());
    let address = yiaddr(&offer).expect("offer");
    let mut request = with(
        selecting(MAC_A, address, INTERFACE),
        DhcpOption::ClassIdentifier(b"MSFT 5.0".to_vec()),
    );
    let ack = harness.handle(NOW, &request);
    let executed = &ack.reply.as_ref().expect("ack").executed;
    assert_eq!(
        executed.log_lines,
        vec![(LogPriority::Info, "commit MSFT 5.0".to_string())]
    );
    let [a, b, c, d] = address.octets();
    assert_eq!(
        executed.commands,
        vec![crate::engine::statements::Command {
            program: "/usr/local/bin/account".into(),
            arguments: vec![
                b"commit".to_vec(),
                format!("{a}.{b}.{c}.{d}").into_bytes(),
                b"MSFT 5.0".to_vec(),
            ],
        }]
    );
    let expected = vec![
        ("vendor-name".to_string(), "\"MSFT 5.0\"".to_string()),
        ("circuit".to_string(), "\"c-1\"".to_string()),
        ("seen".to_string(), "%1".to_string()),
        // ISC `ack_lease` keeps the client's vendor class for DHCPLEASEQUERY.
        (
            "vendor-class-identifier".to_string(),
            "\"MSFT 5.0\"".to_string(),
        ),
    ];
    assert_eq!(variables(&harness, address), expected);
    assert_eq!(
        ack.commit[0].extra.as_deref().map(|extra| &extra.variables),
        Some(&expected)
    );
    // The renewal sees the lease's variables: `seen` is defined now.
    request.set_ciaddr(address);
    let renewal = harness.handle(NOW + 400, &renewing(MAC_A, address));
    assert_eq!(reply_type(&renewal), Some(MessageType::Ack));
    assert!(variables(&harness, address).contains(&("renewed".to_string(), "true".to_string())));
}

fn renewing(mac: [u8; 6], address: Ipv4Addr) -> Message {
    let mut message = client(MessageType::Request, mac);
    message.set_ciaddr(address);
    message
}

#[test]
fn on_release_and_on_expiry_run_with_the_leases_variables() {
    let mut harness = Harness::new(config("", EVENTS));
    let address = yiaddr(&bind(&mut harness, NOW, MAC_A)).expect("bound");
    let mut release = client(MessageType::Release, MAC_A);
    release.set_ciaddr(address);
    let released = harness.handle(NOW + 10, &release);
    assert_eq!(
        released.executed.log_lines,
        vec![(LogPriority::Info, "gone none".to_string())]
    );
    assert_eq!(released.executed.commands.len(), 1);
    // ISC `release_lease` drops the lease's bindings once `on release` ran.
    assert!(variables(&harness, address).is_empty());

    let address = yiaddr(&bind(&mut harness, NOW + 20, MAC_B)).expect("bound");
    let mut changed = harness.expire(NOW + 20 + 700);
    assert!(changed.iter().any(|lease| lease.address == address));
    let executed = harness
        .engine
        .run_expiry_statements(&mut harness.leases, &mut changed);
    assert_eq!(
        executed.log_lines,
        vec![(LogPriority::Info, "gone none".to_string())]
    );
    assert!(!variables(&harness, address)
        .iter()
        .any(|(name, _)| name == "circuit"));
}

#[test]
fn switch_falls_through_until_break_and_defaults() {
    let mut harness = Harness::new(config(
        "",
        r#"switch (option user-class) {
             case "accounting":
               option domain-name "accounting.example";
               break;
             case "sales":
               option root-path "/sales";
             case "engineering":
               option domain-name "eng.example";
               break;
             default:
               option domain-name "misc.example";
           }
           switch (extract-int(option pxe-system-type, 16)) {
             case 7:
               filename "ipxe.efi";
               break;
             case 0:
               filename "undionly.kpxe";
           }"#,
    ));
    let accounting = harness.handle(NOW, &discover(MAC_A, &[(77, b"accounting")]));
    assert_eq!(
        option_bytes(&accounting, 15).as_deref(),
        Some(&b"accounting.example"[..])
    );
    assert_eq!(option_bytes(&accounting, 17), None);
    // Falls through `sales` into `engineering` and stops at its break.
    let sales = harness.handle(NOW, &discover(MAC_A, &[(77, b"sales")]));
    assert_eq!(option_bytes(&sales, 17).as_deref(), Some(&b"/sales"[..]));
    assert_eq!(
        option_bytes(&sales, 15).as_deref(),
        Some(&b"eng.example"[..])
    );
    let other = harness.handle(NOW, &discover(MAC_A, &[(77, b"x")]));
    assert_eq!(
        option_bytes(&other, 15).as_deref(),
        Some(&b"misc.example"[..])
    );
    let absent = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(
        option_bytes(&absent, 15).as_deref(),
        Some(&b"misc.example"[..])
    );
    let uefi = harness.handle(NOW, &discover(MAC_A, &[(93, &[0, 7])]));
    assert_eq!(file(&uefi), b"ipxe.efi");
    let bios = harness.handle(NOW, &discover(MAC_A, &[(93, &[0, 0])]));
    assert_eq!(file(&bios), b"undionly.kpxe");
}

/// `hardware token-ring|fddi|infiniband|unknown-N` (dhcpd.conf(5) "The hardware statement"):
/// a host matches a request with that `htype` and address (ISC `find_hosts_by_haddr`).
#[test]
fn hosts_of_other_hardware_types_match_by_htype() {
    let mut harness = Harness::new(config(
        "host ring { hardware token-ring 02:00:00:00:00:0a; fixed-address 10.0.0.50; }",
        "",
    ));
    let mut ring = discover(MAC_A, &[]);
    ring.set_htype(dhcproto::v4::HType::from(6u8));
    assert_eq!(
        yiaddr(&harness.handle(NOW, &ring)),
        Some(Ipv4Addr::new(10, 0, 0, 50))
    );
    // The same address on ethernet is another client.
    let ethernet = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_ne!(yiaddr(&ethernet), Some(Ipv4Addr::new(10, 0, 0, 50)));
}

/// `log-threshold-high`/`-low` (ISC `check_pool_threshold`): one line when a DHCPACK finds the
/// pool's use at the high mark, none after until the use falls to the low mark.
#[test]
fn pool_thresholds_log_once_until_reset() {
    // 10 addresses: 50 % is 5 used, 20 % is 2.
    let mut harness = Harness::new(config("log-threshold-high 50;\nlog-threshold-low 20;", ""));
    let mut lines = Vec::new();
    let mut bound = Vec::new();
    for index in 0..7u8 {
        let mac = [0x02, 0, 0, 0, 0x77, index];
        let ack = bind(&mut harness, NOW, mac);
        bound.push((mac, yiaddr(&ack).expect("ack")));
        lines.extend(ack.reply.expect("ack").executed.log_lines);
    }
    let address = bound[5].1;
    assert_eq!(
        lines,
        vec![(
            LogPriority::Error,
            format!(
                "Pool threshold exceeded - shared subnet: 10.0.0.0/24; address: {address}; \
                 high threshold 50% 5/10."
            )
        )]
    );
    // Releases bring the use down to 2; the next DHCPACK logs the reset.
    for (mac, address) in &bound[..5] {
        let mut release = client(MessageType::Release, *mac);
        release.set_ciaddr(*address);
        let _ = harness.handle(NOW + 1, &release);
    }
    let ack = bind(&mut harness, NOW + 2, [0x02, 0, 0, 0, 0x78, 0]);
    let lines = ack.reply.expect("ack").executed.log_lines;
    assert_eq!(lines.len(), 1);
    assert!(lines[0].1.starts_with("Pool threshold reset"), "{lines:?}");
}

/// `packet(OFFSET, LENGTH)` reads the request's header as received (dhcp-eval(5)): here the
/// hardware type (offset 1) and the start of chaddr (offset 28).
#[test]
fn packet_reads_the_header() {
    let mut harness = Harness::new(config(
        "",
        "if packet(1, 1) = 01 and packet(28, 2) = 02:00 { option domain-name \"ether.example\"; }",
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(
        option_bytes(&offer, 15).as_deref(),
        Some(&b"ether.example"[..])
    );
    let mut other = discover([0x0a, 0, 0, 0, 0, 1], &[]);
    other.set_xid(7);
    assert_eq!(option_bytes(&harness.handle(NOW, &other), 15), None);
}

/// `lease-time` (seconds left on the client's lease, null without one) and `filename` (the
/// request's `file` field) in expressions (dhcp-eval(5)).
#[test]
fn lease_time_and_request_filename() {
    let mut harness = Harness::new(config(
        "",
        r#"option root-path = pick-first-value(
               concat("left ", binary-to-ascii(10, 32, "", encode-int(lease-time, 32))), "new");
           if filename = "pxelinux.0" { option domain-name "asked.example"; }"#,
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(option_bytes(&offer, 17).as_deref(), Some(&b"new"[..]));
    let address = yiaddr(&bind(&mut harness, NOW, MAC_A)).expect("bound");
    let mut renewal = client(MessageType::Request, MAC_A);
    renewal.set_ciaddr(address);
    renewal.set_fname_str("pxelinux.0");
    let ack = harness.handle(NOW + 100, &renewal);
    assert_eq!(option_bytes(&ack, 17).as_deref(), Some(&b"left 500"[..]));
    assert_eq!(
        option_bytes(&ack, 15).as_deref(),
        Some(&b"asked.example"[..])
    );
}

/// `check "CLASS"` (dhcp-eval(5)): in a later class's `match if`, the classes matched so far;
/// in a scope's `if`, every class of the request.
#[test]
fn check_tests_class_membership() {
    let mut harness = Harness::new(config(
        r#"class "users" { match if exists user-class; }
           class "known-users" { match if check "users"; option domain-name "users.example"; }"#,
        r#"if check "known-users" { option root-path "/users"; }"#,
    ));
    let user = harness.handle(NOW, &discover(MAC_A, &[(77, b"u")]));
    assert_eq!(
        option_bytes(&user, 15).as_deref(),
        Some(&b"users.example"[..])
    );
    assert_eq!(option_bytes(&user, 17).as_deref(), Some(&b"/users"[..]));
    let other = harness.handle(NOW, &discover(MAC_B, &[]));
    assert_eq!(option_bytes(&other, 15), None);
    assert_eq!(option_bytes(&other, 17), None);
}
