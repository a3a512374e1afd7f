//! Parser and validation tests with fixed inputs: diagnostics with `file:line:column`, several
//! errors in one run, scopes, option encodings, includes, failover peers, warnings.

use std::net::Ipv4Addr;

use crate::config::model::{Config, Permission, PermitKind, ScopeId};
use crate::config::{load_file, parse_str};

fn parse(text: &str) -> Config {
    parse_str(text, "test.conf").unwrap_or_else(|errors| panic!("{errors}"))
}

fn errors(text: &str) -> Vec<String> {
    match parse_str(text, "test.conf") {
        Ok(_) => panic!("expected errors"),
        Err(errors) => errors.errors.iter().map(ToString::to_string).collect(),
    }
}

/// The wire bytes of the last `option` set in the global scope.
fn global_option(text: &str) -> (u8, Vec<u8>) {
    let config = parse(text);
    config.scopes[0].options.last().cloned().expect("an option")
}

const PEER: &str = r#"failover peer "fo" { primary; address 10.0.0.1; peer address 10.0.0.2;
  mclt 300; split 128; }
"#;

#[test]
fn error_names_file_line_column_expected_and_found() {
    assert_eq!(
        errors("default-lease-time 600;\nsubnet 10.0.0.0 netmask 255.255.255.0 {\n  range 10.0.0.5 10.0.0;\n}\n"),
        vec!["test.conf:3:24: expected `.`, found `;`"]
    );
    assert_eq!(
        errors("max-lease-time x;"),
        vec!["test.conf:1:16: expected a time in seconds, found `x`"]
    );
}

#[test]
fn several_errors_are_reported_in_one_run() {
    let found = errors(
        "bogus-statement 1;\nsubnet 10.0.0.0 netmask 255.255.255.0 {\n  option routers 10.0.0.300;\n  default-lease-time 1x;\n}\noption no-such-option 1;\n",
    );
    // ISC reads an unknown name as the start of an expression (`eval`): "semicolon expected".
    assert_eq!(
        found,
        vec![
            "test.conf:1:17: expected `;`, found number `1`",
            "test.conf:3:25: expected an IPv4 address octet in 0..=255, found 300",
            "test.conf:4:22: expected a time in seconds, found number `1x`",
            "test.conf:6:8: expected a known option name, found `no-such-option`",
        ]
    );
}

#[test]
fn unclosed_block_and_stray_brace() {
    let found = errors("group {\n  default-lease-time 5;\n");
    assert_eq!(
        found,
        vec!["test.conf:3:1: expected `}` closing the block opened at test.conf:1:7, found end of file"]
    );
    assert_eq!(
        errors("}"),
        vec!["test.conf:1:1: expected a statement, found `}` without a matching `{`"]
    );
}

#[test]
fn scopes_chain_from_host_to_global() {
    let config = parse(
        r#"default-lease-time 100;
shared-network "net" {
  max-lease-time 200;
  subnet 10.0.0.0 netmask 255.255.255.0 {
    min-lease-time 30;
    pool { range 10.0.0.10 10.0.0.20; allow unknown-clients; }
    host h { hardware ethernet 00:11:22:33:44:55; fixed-address 10.0.0.5; default-lease-time 5; }
  }
}
subnet 10.1.0.0 netmask 255.255.0.0 { range 10.1.0.1 10.1.0.9; authoritative; }
group { not authoritative; host g { hardware ethernet 0a:0b:0c:0d:0e:0f; } }
"#,
    );
    let host = &config.hosts[0];
    let chain: Vec<_> = config.scope_chain(host.scope).collect();
    // host → subnet → shared network → global.
    assert_eq!(chain.len(), 4);
    assert_eq!(chain[0].default_lease_time, Some(5));
    assert_eq!(chain[1].min_lease_time, Some(30));
    assert_eq!(chain[2].max_lease_time, Some(200));
    assert_eq!(chain[3].default_lease_time, Some(100));
    assert_eq!(host.fixed_addresses, vec![Ipv4Addr::new(10, 0, 0, 5)]);
    assert_eq!(host.hardware.as_ref().map(|h| h.address.len()), Some(6));
    // The explicit pool's permit, and the implicit shared network and pool of the lone subnet.
    assert_eq!(config.pools[0].permits[0].kind, PermitKind::UnknownClients);
    assert_eq!(config.shared_networks.len(), 2);
    assert_eq!(config.shared_networks[1].name, None);
    assert_eq!(config.pools[1].subnet.map(|s| s.0), Some(1));
    assert_eq!(config.pools[1].ranges[0].len(), 9);
    let subnet = config.subnet(config.subnet_for(Ipv4Addr::new(10, 1, 2, 3)).unwrap());
    assert_eq!(config.scope(subnet.scope).authoritative, Some(true));
    let grouped = &config.hosts[1];
    let parent = config.scope(grouped.scope).parent.unwrap();
    assert_eq!(config.scope(parent).authoritative, Some(false));
    assert_eq!(config.scope(parent).parent, Some(ScopeId::GLOBAL));
}

#[test]
fn option_encodings_by_type() {
    // ip-address array
    assert_eq!(
        global_option("option domain-name-servers 192.0.2.53, 192.0.2.54;"),
        (6, vec![192, 0, 2, 53, 192, 0, 2, 54])
    );
    // signed 32-bit
    assert_eq!(
        global_option("option time-offset -3600;"),
        (2, (-3600i32).to_be_bytes().to_vec())
    );
    // unsigned 16 and 8
    assert_eq!(
        global_option("option interface-mtu 1500;"),
        (26, vec![0x05, 0xdc])
    );
    assert_eq!(global_option("option default-ip-ttl 64;"), (23, vec![64]));
    // boolean
    assert_eq!(global_option("option ip-forwarding off;"), (19, vec![0]));
    // text
    assert_eq!(
        global_option(r#"option domain-name "example.com";"#),
        (15, b"example.com".to_vec())
    );
    // string as colon-hex and as quoted text
    assert_eq!(
        global_option("option vendor-class-identifier 01:0a:ff;"),
        (60, vec![1, 10, 255])
    );
    assert_eq!(
        global_option(r#"option vendor-class-identifier "ab";"#),
        (60, b"ab".to_vec())
    );
    // domain-list, compressed for `Dc` options (RFC 1035 §4.1.4, RFC 3397 §2, as ISC does)
    assert_eq!(
        global_option(r#"option domain-search "a.example", "example";"#),
        (119, b"\x01a\x07example\x00\xc0\x02".to_vec())
    );
    // array of records
    assert_eq!(
        global_option("option static-routes 10.1.0.0 10.0.0.1, 10.2.0.0 10.0.0.2;"),
        (33, vec![10, 1, 0, 0, 10, 0, 0, 1, 10, 2, 0, 0, 10, 0, 0, 2])
    );
    // record with an array as its last field
    assert_eq!(
        global_option("option slp-directory-agent true 10.0.0.1, 10.0.0.2;"),
        (78, vec![1, 10, 0, 0, 1, 10, 0, 0, 2])
    );
    // user definition: array of integer 8
    assert_eq!(
        global_option(
            "option rfc3442-classless-static-routes code 121 = array of integer 8;\noption rfc3442-classless-static-routes 24, 192, 168, 1, 10, 0, 0, 1;"
        ),
        (121, vec![24, 192, 168, 1, 10, 0, 0, 1])
    );
    // user definition: record, domain-name, signed 16
    assert_eq!(
        global_option(
            "option my-rec code 200 = { unsigned integer 16, ip-address, text };\noption my-rec 258 10.0.0.1 \"x\";"
        ),
        (200, vec![1, 2, 10, 0, 0, 1, b'x'])
    );
    assert_eq!(
        global_option("option my-name code 201 = domain-name;\noption my-name a.b;"),
        (201, b"\x01a\x01b\x00".to_vec())
    );
    assert_eq!(
        global_option("option my-int code 202 = signed integer 16;\noption my-int -2;"),
        (202, vec![0xff, 0xfe])
    );
    assert_eq!(
        global_option("option my-flag code 203 = zerolen;\noption my-flag;"),
        (203, vec![])
    );
}

#[test]
fn option_values_out_of_range_are_errors() {
    assert_eq!(
        errors("option default-ip-ttl 256;"),
        vec!["test.conf:1:23: expected an unsigned 8-bit integer in -128..=255, found 256"]
    );
    assert_eq!(
        errors("option ip-forwarding maybe;"),
        vec!["test.conf:1:22: expected `true`, `false`, `on` or `off`, found `maybe`"]
    );
    // ISC takes any code (`atoi`); a code is refused only when it is not a number.
    assert_eq!(
        errors("option foo code x = text;"),
        vec!["test.conf:1:17: expected an option code number, found `x`"]
    );
}

#[test]
fn client_identifier_in_host_identifies_the_client() {
    let config = parse("host h { option dhcp-client-identifier 01:00:11:22:33:44:55; }");
    assert_eq!(
        config.hosts[0].client_id,
        Some(vec![1, 0, 0x11, 0x22, 0x33, 0x44, 0x55])
    );
    // Also an option of the host's scope, sent when asked for (ISC keeps it in the group).
    assert_eq!(
        config.scopes[config.hosts[0].scope.0 as usize].options,
        vec![(61, vec![1, 0, 0x11, 0x22, 0x33, 0x44, 0x55])]
    );
}

#[test]
fn host_identifier_option_identifies_the_host() {
    use crate::config::expr::OptionRef;
    let config = parse(
        r#"host port-bound { host-identifier option agent.circuit-id "sw1/port7"; fixed-address 10.0.0.8; }
host by-class { host-identifier option vendor-class-identifier "box"; }"#,
    );
    assert_eq!(config.host_identifiers.len(), 2);
    assert_eq!(config.host_identifiers[0].host.0, 0);
    assert_eq!(config.host_identifiers[0].option, OptionRef::Agent(1));
    assert_eq!(config.host_identifiers[0].data, b"sw1/port7");
    assert_eq!(config.host_identifiers[1].option, OptionRef::Dhcp(60));
    // confpars.c: one per host.
    assert_eq!(
        errors(r#"host h { host-identifier option agent.remote-id "a"; host-identifier option agent.remote-id "b"; }"#).len(),
        1
    );
}

#[test]
fn failover_peer_fields_and_defaults() {
    let config = parse(&format!(
        r#"failover peer "fo" {{
  primary; address 10.0.0.1; port 847; peer address 10.0.0.2; peer port 848;
  max-response-delay 30; max-unacked-updates 10; mclt 1800;
  hba {};
  load balance max seconds 5; max-lease-misbalance 20; max-lease-ownership 5;
  min-balance 30; max-balance 600; auto-partner-down 3600;
}}
shared-network s {{
  failover peer "fo";
  subnet 10.0.0.0 netmask 255.255.255.0 {{
    pool {{ range 10.0.0.10 10.0.0.20; }}
    pool {{ no failover peer; range 10.0.0.30 10.0.0.40; }}
  }}
}}
"#,
        ["0f"; 32].join(":")
    ));
    let peer = &config.failover_peers[0];
    assert!(peer.primary);
    assert_eq!((peer.port, peer.peer_port), (847, 848));
    assert_eq!(peer.peer_address, Some(Ipv4Addr::new(10, 0, 0, 2)));
    assert_eq!(
        (peer.max_response_delay, peer.max_unacked_updates, peer.mclt),
        (30, 10, 1800)
    );
    assert_eq!(peer.hba, Some([0x0f; 32]));
    assert_eq!(peer.load_balance_max_seconds, 5);
    assert_eq!(
        (peer.max_lease_misbalance, peer.max_lease_ownership),
        (20, 5)
    );
    assert_eq!(
        (peer.min_balance, peer.max_balance, peer.auto_partner_down),
        (30, 600, 3600)
    );
    // Inherited from the shared network, cancelled by `no failover peer`.
    assert_eq!(config.pools[0].failover_peer.as_deref(), Some("fo"));
    assert_eq!(config.pools[1].failover_peer, None);

    let config = parse(
        r#"failover peer s { secondary; peer address 10.0.0.1; }
subnet 10.0.0.0 netmask 255.255.255.0 { pool { failover peer "s"; range 10.0.0.2 10.0.0.3; } }"#,
    );
    let peer = &config.failover_peers[0];
    assert_eq!(
        (peer.port, peer.max_response_delay, peer.max_unacked_updates),
        (647, 20, 100)
    );
    assert_eq!(
        (
            peer.min_balance,
            peer.max_balance,
            peer.load_balance_max_seconds
        ),
        (60, 3600, 0)
    );
}

#[test]
fn failover_rules() {
    assert_eq!(
        errors(r#"failover peer "fo" { primary; peer address 10.0.0.2; split 128; }"#),
        vec!["test.conf:1:15: expected `mclt` in the primary's failover peer, found none",]
    );
    assert_eq!(
        errors(PEER),
        vec!["test.conf:1:15: expected a pool referring to failover peer \"fo\", found none"]
    );
    assert_eq!(
        errors(r#"subnet 10.0.0.0 netmask 255.0.0.0 { pool { failover peer "nope"; range 10.0.0.1; } }"#),
        vec!["test.conf:1:58: expected the name of a failover peer declared before, found undeclared failover peer \"nope\""]
    );
    assert_eq!(
        errors(r#"failover peer "fo" { primary; peer address 10.0.0.2; mclt 1; hba 01:02; }"#)[0],
        "test.conf:1:66: expected exactly 32 hex bytes, found 2 bytes"
    );
    assert_eq!(
        errors(
            r#"failover peer "fo" { primary; peer address 10.0.0.2; mclt 1; load balance max 3; }"#
        )[0],
        "test.conf:1:79: expected `seconds`, found number `3`"
    );
}

#[test]
fn ranges_and_pools_are_validated() {
    let found = errors(
        r#"subnet 10.0.0.0 netmask 255.255.255.0 {
  range 10.0.0.10 10.0.1.5;
  pool { allow all clients; }
  range 10.0.0.20 10.0.0.30;
  range 10.0.0.25;
}
subnet 10.0.0.1 netmask 255.255.0.0 { }
"#,
    );
    assert_eq!(
        found,
        vec![
            "test.conf:7:1: expected a network number with no host bits for netmask 255.255.0.0, found 10.0.0.1",
            "test.conf:3:3: expected at least one `range` in the pool, found none",
            "test.conf:2:3: expected a range inside subnet 10.0.0.0 netmask 255.255.255.0, found range 10.0.0.10 10.0.1.5",
            "test.conf:4:3: expected a range not overlapping range 10.0.0.10 10.0.1.5 (declared at test.conf:2:3), found range 10.0.0.20 10.0.0.30",
            "test.conf:5:3: expected a range not overlapping range 10.0.0.10 10.0.1.5 (declared at test.conf:2:3), found range 10.0.0.25 10.0.0.25",
        ]
    );
}

#[test]
fn references_must_be_declared() {
    assert_eq!(
        errors("omapi-port 7911;\nomapi-key k;"),
        vec!["test.conf:2:11: expected the name of a declared key, found undeclared key \"k\""]
    );
    assert_eq!(
        errors(r#"subclass "nope" "x";"#),
        vec!["test.conf:1:10: expected the name of a class declared before, found undeclared class \"nope\""]
    );
    assert_eq!(
        errors(r#"subnet 10.0.0.0 netmask 255.0.0.0 { pool { allow members of "c"; range 10.0.0.1; } }"#),
        vec!["test.conf:1:61: expected the name of a class declared before, found undeclared class \"c\""]
    );
    assert_eq!(
        errors("ddns-update-style ad-hoc;"),
        vec!["test.conf:1:19: `ddns-update-style ad-hoc` is no longer supported"]
    );
}

#[test]
fn keys_classes_and_permits() {
    let config = parse(
        r#"key "k" { algorithm hmac-sha256; secret "Zm9vYmFy"; };
key k2 { algorithm HMAC-MD5.SIG-ALG.REG.INT; secret "YQ=="; }
omapi-key k2;
class "vip" { match hardware; default-lease-time 99; }
subclass "vip" 1:00:11:22:33:44:55 { max-lease-time 100; }
subclass "vip" "x";
subnet 10.0.0.0 netmask 255.0.0.0 {
  pool { deny members of "vip"; allow known-clients, unknown clients; range 10.0.0.1 10.0.0.2; }
  deny bootp; ignore declines; allow booting; allow leasequery;
}
"#,
    );
    assert_eq!(config.keys[0].secret, b"foobar");
    assert_eq!(config.keys[0].algorithm, "hmac-sha256");
    assert_eq!(config.keys[1].algorithm, "hmac-md5.SIG-ALG.REG.INT.");
    let class = &config.classes[0];
    assert_eq!(
        class.subclasses[0].data,
        vec![1, 0, 0x11, 0x22, 0x33, 0x44, 0x55]
    );
    let subclass_scope = class.subclasses[0].scope.unwrap();
    assert_eq!(config.scope(subclass_scope).parent, Some(class.scope));
    assert_eq!(
        (&class.subclasses[1].data[..], class.subclasses[1].scope),
        (&b"x"[..], None)
    );
    let permits = &config.pools[0].permits;
    assert_eq!(permits.len(), 3);
    assert!(!permits[0].allow);
    assert_eq!(
        permits[0].kind,
        PermitKind::MembersOf(crate::config::model::ClassId(0))
    );
    let subnet_scope = config.scope(config.subnets[0].scope);
    assert_eq!(subnet_scope.bootp, Some(Permission::Deny));
    assert_eq!(subnet_scope.declines, Some(Permission::Ignore));
    assert_eq!(subnet_scope.booting, Some(Permission::Allow));
    assert_eq!(subnet_scope.leasequery, Some(Permission::Allow));
    assert!(
        config
            .warnings
            .iter()
            .all(|w| !w.message.contains("leasequery")),
        "`allow leasequery` is acted on, not warned about"
    );
}

#[test]
fn later_statements_warn_with_location() {
    let config = parse(
        r#"dont-use-fsync true;
key k { algorithm hmac-md5; secret "YQ=="; } zone example.com. { primary 10.0.0.1; key k; }
if option user-class = "x" { option domain-name "y"; } elsif known { set a = 1; } else { log(info, "z"); }
on commit { execute("/bin/true", "a"); }
host h { hardware token-ring 00:11; fixed-address printer.example.com; }
ddns-update-style interim;
ping-check on; ddns-updates off; ddns-domainname "x."; stash-agent-options true;
supersede domain-name "z"; prepend domain-name-servers 10.0.0.1;
"#,
    );
    let warnings: Vec<_> = config
        .warnings
        .iter()
        .map(|warning| format!("{}: {}", warning.location, warning.message))
        .collect();
    assert_eq!(
        warnings,
        vec![
            "test.conf:1:1: `dont-use-fsync` is not supported yet; ignored",
            "test.conf:5:51: `printer.example.com`: host unknown; the value is left out, as ISC does",
        ]
    );
    // The `if` body did not leak into the global scope (it is a scope of its own, taken per
    // reply); `supersede` acts like `option`; `prepend` is evaluated per reply.
    assert_eq!(config.scopes[0].options, vec![(15, b"z".to_vec())]);
    assert_eq!(config.scopes[0].conditionals.len(), 1);
    assert_eq!(config.scopes[0].conditionals[0].branches.len(), 3);
    assert_eq!(config.scopes[0].computed_options.len(), 1);
    // `on commit` is kept with its body (a scope holding the `execute`).
    let event = &config.scopes[0].events[0];
    assert!(event.events.commit && !event.events.expiry);
    assert_eq!(config.scope(event.body).executes.len(), 1);
    assert_eq!(config.scopes[0].ping_check, Some(true));
    assert_eq!(config.hosts[0].fixed_addresses, Vec::<Ipv4Addr>::new());
}

#[test]
fn agent_space_values_are_kept_for_option_82_without_a_warning() {
    let config = parse(
        r#"option agent.circuit-id "port-1";
subnet 10.0.0.0 netmask 255.255.255.0 { default agent.agent-id 10.9.9.9; stash-agent-options false; }
"#,
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let global = &config.scopes[0].space_options;
    assert_eq!(global.len(), 1);
    assert_eq!(global[0].space, crate::config::options::OptionSpace::AGENT);
    assert_eq!(global[0].code, 1);
    assert_eq!(
        global[0].value,
        crate::config::model::OptionValue::Constant(b"port-1".to_vec())
    );
    let subnet = config.scope(config.subnets[0].scope);
    assert_eq!(subnet.space_options[0].code, 3);
    assert_eq!(
        subnet.space_options[0].form,
        crate::config::model::OptionForm::Default
    );
    assert_eq!(subnet.stash_agent_options, Some(false));
}

#[test]
fn include_is_textual_and_loops_are_caught() {
    let dir = std::env::temp_dir().join(format!("xdhcpd-config-include-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("inner.inc"),
        "  default-lease-time 77;\n  range 10.0.0.5 10.0.0.6;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("main.conf"),
        "subnet 10.0.0.0 netmask 255.255.255.0 {\n  include \"inner.inc\";\n}\n",
    )
    .unwrap();
    let config = load_file(&dir.join("main.conf")).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(
        config.scope(config.subnets[0].scope).default_lease_time,
        Some(77)
    );
    assert_eq!(config.pools[0].ranges.len(), 1);

    std::fs::write(dir.join("loop.conf"), "include \"loop.conf\";\n").unwrap();
    let found = load_file(&dir.join("loop.conf")).unwrap_err().to_string();
    assert!(
        found.ends_with(
            "loop.conf:1:9: expected no include loop, found \"loop.conf\" already being read"
        ),
        "{found}"
    );

    std::fs::write(dir.join("bad.inc"), "max-lease-time nope;\n").unwrap();
    std::fs::write(
        dir.join("outer.conf"),
        "include \"bad.inc\";\nmin-lease-time 1;\n",
    )
    .unwrap();
    let found = load_file(&dir.join("outer.conf")).unwrap_err().to_string();
    assert!(
        found.ends_with("bad.inc:1:16: expected a time in seconds, found `nope`"),
        "{found}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    let found = errors("include \"/nonexistent/xdhcpd.inc\";");
    assert!(
        found[0].starts_with("test.conf:1:9: expected a readable file \"/nonexistent/xdhcpd.inc\"")
    );
}

#[test]
fn lexer_errors_are_reported_and_parsing_goes_on() {
    let found = errors("default-lease-time 1;\n@\nmax-lease-time x;\n");
    assert_eq!(
        found,
        vec![
            "test.conf:2:1: unexpected character 0x40",
            "test.conf:3:16: expected a time in seconds, found `x`",
        ]
    );
}

#[test]
fn global_parameters() {
    let config = parse(
        r#"lease-file-name "/tmp/l"; pid-file-name "/tmp/p"; db-time-format default;
lease-id-format hex; log-facility daemon; server-identifier 10.0.0.1; next-server 10.0.0.2;
filename "pxelinux.0"; server-name "boot"; use-host-decl-names on; min-secs 3;
abandon-lease-time 600; one-lease-per-client true; always-broadcast on;
"#,
    );
    assert_eq!(config.lease_file_name.as_deref(), Some("/tmp/l"));
    assert_eq!(config.pid_file_name.as_deref(), Some("/tmp/p"));
    assert!(!config.db_time_format_local && config.lease_id_format_hex);
    let global = &config.scopes[0];
    assert_eq!(global.server_identifier, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(global.next_server, Some(Ipv4Addr::new(10, 0, 0, 2)));
    assert_eq!(global.filename.as_deref(), Some(&b"pxelinux.0"[..]));
    assert_eq!(global.server_name.as_deref(), Some(&b"boot"[..]));
    assert_eq!(global.use_host_decl_names, Some(true));
    assert_eq!(global.min_secs, Some(3));
    assert_eq!(global.abandon_lease_time, Some(600));
    assert_eq!(global.always_broadcast, Some(true));
    assert!(config.warnings.is_empty());
}

/// A poor man's fuzz run with fixed inputs: every prefix of a config, and the config with each
/// byte replaced by punctuation, parse or fail without panicking.
#[test]
fn truncated_and_mutated_inputs_never_panic() {
    let text = format!(
        "{PEER}{}",
        r#"key k { algorithm hmac-md5; secret "YQ=="; };
class "c" { match if substring(option agent.circuit-id, 0, 2) = "ab" or not known; }
subclass "c" 01:02 { option domain-name "x"; }
shared-network s { failover peer "fo";
  subnet 10.0.0.0 netmask 255.255.255.0 { pool { deny members of "c"; range 10.0.0.1 10.0.0.9; }
    host h { hardware ethernet 00:11:22:33:44:55; fixed-address 10.0.0.2, 10.0.0.3; } } }
option domain-search "a.b", "c"; if exists agent.remote-id { set x = concat("a", 01); }
"#
    );
    for end in 0..=text.len() {
        let _ = parse_str(&text[..end], "t.conf");
    }
    let bytes = text.as_bytes();
    for index in 0..bytes.len() {
        for replacement in [b'{', b'}', b';', b'"', b'.', b'('] {
            let mut mutated = bytes.to_vec();
            mutated[index] = replacement;
            let _ = parse_str(&String::from_utf8_lossy(&mutated), "t.conf");
        }
    }
}

#[test]
fn hostile_nesting_is_an_error_not_a_stack_overflow() {
    let blocks = format!("{}{}", "group { ".repeat(5000), "} ".repeat(5000));
    assert!(crate::config::parse_str(&blocks, "deep.conf").is_err());
    let expression = format!(
        "class \"c\" {{ match if {}true{}; }}",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    assert!(crate::config::parse_str(&expression, "deep.conf").is_err());
}

// ---- statement lists (OMAPI `statements`, dhcpd.leases host bodies) ------------------------

fn statements(text: &str) -> crate::config::Statements {
    crate::config::parse_statements(text, "statements").unwrap_or_else(|errors| panic!("{errors}"))
}

#[test]
fn statement_list_takes_isc_canonical_forms() {
    // docs/spec/dhcpd-conf.md §8.5 and the docs/spec/omapi.md §8.3 lab note, verbatim.
    let parsed = statements(
        "supersede host-name = \"h2\";\n\
         supersede server.default-lease-time = 00:00:01:2c;",
    );
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    assert_eq!(parsed.scope.parent, None);
    assert_eq!(parsed.scope.options, vec![(12, b"h2".to_vec())]);
    assert_eq!(parsed.scope.default_lease_time, Some(300));
}

#[test]
fn statement_list_takes_plain_forms_and_server_space_values() {
    let parsed = statements(
        "option domain-name \"omapi.example\"; default-lease-time 600; \
         option routers 10.0.0.1; supersede domain-name-servers = 0a:00:00:35; \
         option server.max-lease-time 7200; supersede server.next-server = 0a:00:00:09; \
         supersede server.filename = \"pxelinux.0\"; supersede server.allow-booting = 00; \
         supersede server.ping-check = 01;",
    );
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let scope = parsed.scope;
    assert_eq!(
        scope.options,
        vec![
            (15, b"omapi.example".to_vec()),
            (3, vec![10, 0, 0, 1]),
            (6, vec![10, 0, 0, 53]),
        ]
    );
    assert_eq!(scope.default_lease_time, Some(600));
    assert_eq!(scope.max_lease_time, Some(7200));
    assert_eq!(scope.next_server, Some(Ipv4Addr::new(10, 0, 0, 9)));
    assert_eq!(scope.filename.as_deref(), Some(&b"pxelinux.0"[..]));
    assert_eq!(scope.booting, Some(Permission::Deny));
    assert_eq!(scope.ping_check, Some(true));
}

#[test]
fn statement_list_refuses_declarations_and_bad_values() {
    for text in [
        "include \"/etc/passwd\";",
        "host h { hardware ethernet 02:00:00:00:00:01; }",
        "subnet 10.0.0.0 netmask 255.0.0.0 { }",
        "fixed-address 10.0.0.5;",
        "} option host-name \"x\";",
        "option no-such-option 1;",
        "option host-name;",
        "default-lease-time \"soon\";",
        "supersede server.default-lease-time = 01:2c;",
        "option host-name \"x\"",
    ] {
        assert!(
            crate::config::parse_statements(text, "statements").is_err(),
            "{text} was accepted"
        );
    }
}

#[test]
fn statement_list_reports_what_it_does_not_apply() {
    let parsed =
        statements("option host-name = concat(\"a\", \"b\"); option dhcp6.name-servers ::1;");
    assert_eq!(parsed.warnings.len(), 1, "{:?}", parsed.warnings);
    assert!(parsed.scope.options.is_empty());
    // The expression is kept and evaluated per reply.
    assert_eq!(parsed.scope.computed_options.len(), 1);
    assert!(statements("").scope == crate::config::model::Scope::default());
}

#[test]
fn config_file_takes_constant_option_expressions_and_server_space() {
    let config = parse(
        "supersede host-name = \"h2\";\nsupersede server.default-lease-time = 00:00:01:2c;\n",
    );
    assert_eq!(config.scopes[0].options, vec![(12, b"h2".to_vec())]);
    assert_eq!(config.scopes[0].default_lease_time, Some(300));
}

#[test]
fn server_id_check_is_a_flag_of_the_scope() {
    let config = parse("server-id-check true;");
    assert_eq!(config.scopes[0].server_id_check, Some(true));
    let config = parse("option server.server-id-check = false;");
    assert_eq!(config.scopes[0].server_id_check, Some(false));
    assert_eq!(parse("").scopes[0].server_id_check, None);
}

#[test]
fn ddns_parameters_and_zones() {
    let config = parse(
        r#"ddns-update-style standard;
update-conflict-detection false;
key "upd" { algorithm hmac-sha256; secret "Zm9vYmFy"; }
zone example.org { primary 192.0.2.53, 192.0.2.54; secondary 198.51.100.53; key upd; }
zone 2.0.192.in-addr.arpa. { primary 192.0.2.53; key "upd"; }
ddns-domainname "example.org"; ddns-ttl 600; deny client-updates;
subnet 192.0.2.0 netmask 255.255.255.0 {
  ddns-updates off; ddns-rev-domainname "in-addr.arpa."; update-optimization false;
  client-updates ignore; do-forward-updates off; ddns-hostname = "x";
  ddns-update-style interim;
}
"#,
    );
    use crate::ddns::Style;
    assert_eq!(config.ddns.style, Some(Style::Standard));
    assert_eq!(config.ddns.policy(), crate::ddns::Policy::new(false, true));
    assert_eq!(config.ddns.zones.len(), 2);
    let zone = &config.ddns.zones[0];
    assert_eq!(zone.name, "example.org");
    assert_eq!(zone.primaries.len(), 2);
    assert_eq!(zone.secondaries.len(), 1);
    assert_eq!(zone.key.as_deref(), Some("upd"));
    assert_eq!(config.ddns.zones[1].key.as_deref(), Some("upd"));
    let global = &config.scopes[0].ddns;
    assert_eq!(global.domain_name.as_deref(), Some("example.org"));
    assert_eq!(global.ttl, Some(600));
    assert_eq!(global.client_updates, Some(Permission::Deny));
    let subnet = &config.scope(config.subnets[0].scope).ddns;
    assert_eq!(subnet.updates, Some(false));
    assert_eq!(subnet.update_optimization, Some(false));
    assert_eq!(subnet.client_updates, Some(Permission::Ignore));
    assert_eq!(subnet.do_forward_updates, Some(false));
    // `= "x"` is a constant expression: the text itself.
    assert_eq!(subnet.hostname.as_deref(), Some("x"));
    let warnings: Vec<_> = config
        .warnings
        .iter()
        .map(|warning| format!("{}: {}", warning.location, warning.message))
        .collect();
    assert_eq!(
        warnings,
        vec![
            "test.conf:10:3: `ddns-update-style` counts only at the top level (as in ISC dhcpd); ignored here",
        ]
    );
    // ISC looks the key up while it reads the zone: it must be declared before.
    assert_eq!(
        errors("zone example.org { primary 10.0.0.1; key later; }\nkey later { algorithm hmac-md5; secret \"YQ==\"; }"),
        vec!["test.conf:1:42: expected the name of a key declared before, found unknown key later"]
    );
    assert_eq!(
        errors("zone example.org { primary 10.0.0.1; primary 10.0.0.2; }"),
        vec!["test.conf:1:38: expected one `primary` statement per zone, found more than one primary"]
    );
}

/// `dhcp-cache-threshold` (ISC format `B`): any 8-bit value parses, per scope, also as
/// `option server.dhcp-cache-threshold`; the engine decides what 100..255 mean.
#[test]
fn dhcp_cache_threshold_is_kept_per_scope() {
    let config = parse(
        "dhcp-cache-threshold 200;\n\
         subnet 10.0.0.0 netmask 255.255.255.0 { dhcp-cache-threshold 0; }\n\
         subnet 10.1.0.0 netmask 255.255.255.0 { option server.dhcp-cache-threshold 40; }\n",
    );
    assert_eq!(config.scopes[0].dhcp_cache_threshold, Some(200));
    let subnet = |index: usize| &config.scopes[config.subnets[index].scope.0 as usize];
    assert_eq!(subnet(0).dhcp_cache_threshold, Some(0));
    assert_eq!(subnet(1).dhcp_cache_threshold, Some(40));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}
