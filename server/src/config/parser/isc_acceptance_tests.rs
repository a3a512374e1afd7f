//! "What ISC dhcpd 4.4 accepts, xdhcpd accepts; what ISC refuses, xdhcpd refuses": one test per
//! construct found in real configurations. Each input was run through `dhcpd -t` 4.4.3 and
//! the comment says what ISC did with it; the end-to-end comparison of both binaries is
//! `server/tests/integration/isc_config_acceptance.rs` over `testdata/configs/`.

use crate::config::model::{Config, Permission, ScopeId};
use crate::config::parse_str;

fn parse(text: &str) -> Config {
    parse_str(text, "test.conf").unwrap_or_else(|errors| panic!("{errors}"))
}

fn errors(text: &str) -> Vec<String> {
    match parse_str(text, "test.conf") {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(errors) => errors.errors.iter().map(ToString::to_string).collect(),
    }
}

fn warnings(config: &Config) -> Vec<String> {
    config
        .warnings
        .iter()
        .map(|warning| format!("{}: {}", warning.location, warning.message))
        .collect()
}

const SUBNET: &str = "subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.20; }\n";

#[test]
fn if_bodies_take_server_parameters() {
    // ISC: parse_executable_statement takes every server-space name in an if-body.
    let config = parse(
        r#"if option vendor-class-identifier = "PXEClient" {
  filename "pxelinux.0";
  next-server 10.0.0.1;
  default-lease-time -1;
  authoritative true;
  allow unknown-clients;
  use-lease-addr-for-default-route on;
} elsif exists host-name {
  filename = concat("boot-", option host-name);
} else {
  filename bare;
  next-server boot.example;
  key k { algorithm hmac-md5; secret AAAA; }
}
"#,
    );
    // The bodies are scopes of their own, taken per reply (engine::scope); nothing leaks
    // into the global scope.
    assert_eq!(config.scopes[0].filename, None);
    assert_eq!(config.scopes[0].next_server, None);
    let branches = &config.scopes[0].conditionals[0].branches;
    assert_eq!(branches.len(), 3);
    let pxe = config.scope(branches[0].body);
    assert_eq!(pxe.filename.as_deref(), Some(&b"pxelinux.0"[..]));
    assert_eq!(pxe.next_server, Some(std::net::Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(pxe.authoritative, Some(true));
    assert_eq!(pxe.unknown_clients, Some(Permission::Allow));
    assert!(config.scope(branches[1].body).filename_expression.is_some());
    assert_eq!(
        config.scope(branches[2].body).filename.as_deref(),
        Some(&b"bare"[..])
    );
    assert_eq!(config.keys.len(), 1);
    // What ISC refuses in an if-body stays refused: `authoritative;` needs a value there,
    // declarations are not executable statements.
    assert!(!errors("if exists host-name { authoritative; }").is_empty());
    assert!(!errors("if exists host-name { host h { } }").is_empty());
    assert!(!errors("if exists host-name { fixed-address 10.0.0.1; }").is_empty());
    assert!(!errors("if exists host-name { server-identifier 10.0.0.1; }").is_empty());
    assert!(!errors("if exists host-name { min-secs 300; }").is_empty());
}

#[test]
fn classes_go_in_any_block_but_a_class() {
    let config = parse(
        r#"subnet 10.0.0.0 netmask 255.255.255.0 {
  range 10.0.0.10 10.0.0.20;
  class "in-subnet" { match if option vendor-class-identifier = "a"; option domain-name "s"; }
  pool { range 10.0.0.30 10.0.0.40; class "in-pool" { match if 1 = 1; } }
}
shared-network net {
  class "in-network" { match if option vendor-class-identifier = "b"; }
  subnet 10.1.0.0 netmask 255.255.255.0 { }
}
host h { class "in-host" { } }
"#,
    );
    let names: Vec<_> = config.classes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["in-subnet", "in-pool", "in-network", "in-host"]);
    // The class's scope sits under the block it was declared in (ISC clones that group).
    let subnet_scope = config.subnets[0].scope;
    assert_eq!(
        config.scope(config.classes[0].scope).parent,
        Some(subnet_scope)
    );
    assert_eq!(
        config.scope(config.classes[0].scope).options,
        vec![(15, b"s".to_vec())]
    );
    assert!(!errors("class \"a\" { class \"b\" { } }").is_empty());
    // ISC: "Expecting class name" for an unquoted one.
    assert!(!errors("class a { }").is_empty());
}

#[test]
fn a_class_declared_again_is_reopened() {
    // ISC finds the class by name and adds the second body to it.
    let config = parse(
        "class \"c\" { match if option host-name = \"a\"; option domain-name \"one\"; }\n\
         class \"c\" { match if option host-name = \"b\"; option root-path \"two\"; }\n",
    );
    assert_eq!(config.classes.len(), 1);
    assert_eq!(
        config.scope(config.classes[0].scope).options,
        vec![(15, b"one".to_vec()), (17, b"two".to_vec())]
    );
    // Within one declaration, one `match if` and one `match`/`spawn`.
    assert!(!errors("class \"c\" { match if 1 = 1; match if 2 = 2; }").is_empty());
    assert!(
        !errors("class \"c\" { match option host-name; spawn with option host-name; }").is_empty()
    );
}

#[test]
fn hosts_go_in_pools() {
    let config = parse(
        r#"subnet 10.0.0.0 netmask 255.255.255.0 {
  pool {
    range 10.0.0.30 10.0.0.40;
    default-lease-time 600;
    host printer { hardware ethernet 00:11:22:33:44:55; fixed-address 10.0.0.50; }
  }
}
"#,
    );
    let pool_scope = config.pools[0].scope;
    assert_eq!(config.scope(config.hosts[0].scope).parent, Some(pool_scope));
    // ISC warns only for hosts written in a subnet or shared network.
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let config = parse(
        "subnet 10.0.0.0 netmask 255.255.255.0 { host a { } host b { } }\n\
         shared-network n { host c { } subnet 10.1.0.0 netmask 255.255.255.0 { } }\n",
    );
    assert_eq!(
        warnings(&config),
        ["test.conf:1:41: Host declarations are global.  They are not limited to the scope you declared them in."]
    );
    assert!(!errors("host a { host b { } }").is_empty());
    assert!(!errors("class \"c\" { host b { } }").is_empty());
}

#[test]
fn option_codes_follow_isc_not_the_space_width() {
    // Zero-touch provisioning spaces number from 0; vivso enterprise numbers are codes of the
    // `vendor` space (4-byte codes); ISC checks no range at all (`atoi`).
    let config = parse(
        r#"option space ztp code width 1 length width 1 hash size 3;
option ztp.image code 0 = text;
option ztp.config code 254 = text;
option space acme code width 4 length width 1;
option acme.server code 1 = ip-address;
option vendor.acme code 42623 = encapsulate acme;
option space other;
option vendor.ISC code 2495 = encapsulate other;
option space wide code width 2 length width 2;
option wide.x code 65535 = unsigned integer 16;
option ztp.image "firmware.bin";
option acme.server 10.0.0.1;
option wide.x -1;
"#,
    );
    // Values of other spaces are kept with their space and code, for encapsulation.
    let warnings = warnings(&config);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(config.scopes[0].options.is_empty());
    let codes: Vec<u32> = config.scopes[0]
        .space_options
        .iter()
        .map(|option| option.code)
        .collect();
    assert_eq!(codes, [0, 1, 65535]);
    // Values are still checked against the definition, as ISC does.
    assert!(
        !errors("option space s;\noption s.a code 1 = ip-address;\noption s.a \"text\";")
            .is_empty()
    );
    // What ISC refuses: an undeclared space, an unknown name, a code width of 3, a scoped
    // space or definition.
    assert!(!errors("option s.a code 1 = text;").is_empty());
    assert!(!errors("option space s;\noption s.a \"x\";").is_empty());
    assert!(!errors("option space s code width 3;").is_empty());
    assert!(!errors("option space s length width 0;").is_empty());
    assert!(!errors(&format!("{}group {{ option space s; }}", SUBNET)).is_empty());
    assert!(!errors("group { option foo code 200 = text; }").is_empty());
    assert!(!errors("option vivso.x code 1 = text;").is_empty());
}

#[test]
fn a_dhcp_option_code_over_255_is_accepted_and_never_sent() {
    // ISC stores it under code 300 and looks requested options up by one-byte codes.
    let config =
        parse("option big code 300 = text;\noption big \"x\";\noption neg code -1 = text;");
    assert!(config.scopes[0].options.is_empty());
    assert!(config.warnings[0].message.contains("code 300"));
}

#[test]
fn the_option_table_is_iscs() {
    let config = parse(
        "option tftp-server-address 10.0.0.1, 10.0.0.2;\n\
         option v4-access-domain example.net;\n\
         option loader-configfile \"x\";\n\
         option slp-service-scope true;\n\
         option pxe-system-type 0, 7;\n",
    );
    assert_eq!(
        config.scopes[0].options,
        vec![
            (150, vec![10, 0, 0, 1, 10, 0, 0, 2]),
            (213, b"\x07example\x03net\x00".to_vec()),
            (209, b"x".to_vec()),
            (79, vec![1]),
            (93, vec![0, 0, 0, 7]),
        ]
    );
    // Not in ISC 4.4's table without a definition.
    for name in [
        "rapid-commit",
        "ms-classless-static-routes 1",
        "wpad \"x\"",
        "agent.subscriber-id \"x\"",
    ] {
        assert!(!errors(&format!("option {name};")).is_empty(), "{name}");
    }
    // 'd' takes an unquoted name only.
    assert!(!errors("option v4-lost \"a.b\";").is_empty());
}

#[test]
fn text_values_may_be_one_identifier() {
    let config = parse(
        "option domain-name example;\noption merit-dump some-string;\nfilename pxelinux;\nserver-name boot-1;\n",
    );
    assert_eq!(
        config.scopes[0].options,
        vec![(15, b"example".to_vec()), (14, b"some-string".to_vec())]
    );
    assert_eq!(config.scopes[0].filename.as_deref(), Some(&b"pxelinux"[..]));
    assert_eq!(
        config.scopes[0].server_name.as_deref(),
        Some(&b"boot-1"[..])
    );
    // ISC: "semicolon expected" after `example`, "expecting string" for a number.
    assert!(!errors("option domain-name example.com;").is_empty());
    assert!(!errors("option host-name 123;").is_empty());
}

#[test]
fn integers_are_read_as_convert_num_reads_them() {
    let config = parse(
        "default-lease-time -1;\nmax-lease-time infinite;\nmin-lease-time 0600;\nmin-secs -1;\n\
         abandon-lease-time 4294967296;\noption interface-mtu -1;\noption time-offset 0x10;\n",
    );
    let global = &config.scopes[0];
    assert_eq!(global.default_lease_time, Some(u32::MAX));
    assert_eq!(global.max_lease_time, Some(u32::MAX));
    // A leading zero is octal.
    assert_eq!(global.min_lease_time, Some(0o600));
    assert_eq!(global.min_secs, Some(255));
    // ISC accumulates in 32 bits: 2^32 wraps to 0.
    assert_eq!(global.abandon_lease_time, Some(0));
    assert_eq!(
        global.options,
        vec![(26, vec![0xff, 0xff]), (2, vec![0, 0, 0, 0x10])]
    );
    assert!(!errors("min-secs 256;").is_empty());
    assert!(!errors("option interface-mtu 65536;").is_empty());
    assert!(!errors("option interface-mtu -32769;").is_empty());
    assert!(!errors("default-lease-time 09;").is_empty());
}

#[test]
fn key_secrets_may_be_unquoted() {
    let quoted = parse(r#"key k { algorithm hmac-md5; secret "MDEyMzQ1Njc4OWFiY2RlZg=="; }"#);
    let bare = parse("key k { algorithm hmac-md5; secret MDEyMzQ1Njc4OWFiY2RlZg==; }");
    assert_eq!(bare.keys, quoted.keys);
    // `/` and `+` split a name into several tokens; ISC joins them back.
    let split = parse("key k { algorithm hmac-md5; secret ab/cd+ef; }");
    assert_eq!(split.keys[0].secret, [105, 191, 220, 119, 231, 159]);
    // "partial base64 value left over: 5."
    assert!(!errors("key k { algorithm hmac-md5; secret abcdEF; }").is_empty());
    // Declared again: the later one wins (omapi_auth_key_enter).
    let twice = parse(
        "key k { algorithm hmac-md5; secret AAAA; }\nkey k { algorithm hmac-sha256; secret AAAA; }",
    );
    assert_eq!(twice.keys.len(), 1);
    assert_eq!(twice.keys[0].algorithm, "hmac-sha256");
    let anywhere = parse(
        "subnet 10.0.0.0 netmask 255.255.255.0 { key k { algorithm hmac-md5; secret AAAA; } }",
    );
    assert_eq!(anywhere.keys.len(), 1);
}

#[test]
fn bare_identifiers_are_evals_as_in_isc() {
    // ISC: an eval of a variable reference, accepted without a word; we say it.
    let config =
        parse("authorative;\nDHCPDARGS=eth0;\nINTERFACESv4=\"eth0 eth1\";\nfoo-bar;\nfoo(1);\n");
    let warnings = warnings(&config);
    assert_eq!(warnings.len(), 5, "{warnings:?}");
    assert!(warnings[0].starts_with("test.conf:1:1: `authorative` is not a statement"));
    assert_eq!(config.scopes[0].authoritative, None);
    // Two names in a row: "semicolon expected".
    assert_eq!(
        errors("foo bar;"),
        ["test.conf:1:5: expected `;`, found `bar`"]
    );
}

#[test]
fn interface_statements_are_recorded() {
    let config = parse(
        "subnet 10.0.0.0 netmask 255.255.255.0 { interface eth0; }\n\
         shared-network n { interface eth1; subnet 10.1.0.0 netmask 255.255.255.0 { } }\n",
    );
    let interfaces: Vec<_> = config
        .interfaces
        .iter()
        .map(|(name, network)| (name.as_str(), *network))
        .collect();
    assert_eq!(
        interfaces,
        [
            ("eth0", config.subnets[0].shared_network),
            ("eth1", config.subnets[1].shared_network)
        ]
    );
    // Acted on at start-up (`net::interfaces::requested`): no warning.
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    // "A subnet or shared network can't be connected to two interfaces."
    assert!(!errors(
        "shared-network n { interface a; subnet 10.1.0.0 netmask 255.255.255.0 { interface b; } }"
    )
    .is_empty());
    assert!(!errors("interface eth0;").is_empty());
    assert!(!errors(
        "subnet 10.0.0.0 netmask 255.255.255.0 { pool { interface eth0; range 10.0.0.5; } }"
    )
    .is_empty());
}

#[test]
fn subclasses_take_lease_limit_and_go_in_any_block() {
    let config = parse(
        r#"class "c" { match option vendor-class-identifier; lease limit 10; }
subclass "c" "x" { lease limit 4; option domain-name "x"; }
subnet 10.0.0.0 netmask 255.255.255.0 {
  subclass "c" "y";
  pool { range 10.0.0.5; subclass "c" "z" { lease limit 2; } }
}
"#,
    );
    let subclasses: Vec<_> = config.classes[0]
        .subclasses
        .iter()
        .map(|subclass| (subclass.data.as_slice(), subclass.lease_limit))
        .collect();
    // A subclass takes its class's limit unless it says its own (confpars.c).
    assert_eq!(subclasses, [(&b"x"[..], 4), (b"y", 10), (b"z", 2)]);
    assert_eq!(config.classes[0].lease_limit, 10);
    assert!(config.billing_classes);
    // Acted upon: no warning.
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    // "invalid match in subclass", "invalid spawn in subclass".
    let class = "class \"c\" { match option host-name; }\n";
    assert!(!errors(&format!(
        "{class}subclass \"c\" \"x\" {{ match if 1 = 1; }}"
    ))
    .is_empty());
    assert!(!errors(&format!(
        "{class}subclass \"c\" \"x\" {{ spawn with option host-name; }}"
    ))
    .is_empty());
    assert!(!errors(&format!("{class}subclass c \"x\";")).is_empty());
}

#[test]
fn ranges_as_isc_reads_them() {
    // Written high to low: ISC swaps them.
    let config = parse("subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.9 10.0.0.5; }");
    let range = config.pools[0].ranges[0];
    assert_eq!((range.low.octets()[3], range.high.octets()[3]), (5, 9));
    // The largest range ISC 4.4 takes on x86-64, and one address more ("an overly large
    // address range").
    parse("subnet 10.0.0.0 netmask 255.0.0.0 { range 10.0.0.0 10.215.148.51; }");
    let found = errors("subnet 10.0.0.0 netmask 255.0.0.0 { range 10.0.0.0 10.255.255.255; }");
    assert!(found[0].contains("overly large address range"), "{found:?}");
    assert!(
        !errors("subnet 10.0.0.0 netmask 255.0.0.0 { range 10.0.0.0 10.215.148.52; }").is_empty()
    );
    // A pool of a shared network may only name subnets declared before it.
    assert!(!errors(
        "shared-network s { pool { range 10.0.0.1 10.0.0.2; } subnet 10.0.0.0 netmask 255.255.255.0 { } }"
    )
    .is_empty());
    parse("shared-network s { subnet 10.0.0.0 netmask 255.255.255.0 { } pool { range 10.0.0.1 10.0.0.2; } }");
}

#[test]
fn what_isc_refuses_is_refused() {
    for (text, why) in [
        ("host h { }\nhost h { }", "host h: already exists"),
        ("host \"h\" { }", "expecting a name for host declaration"),
        ("shared-network s { }", "empty shared-network decl"),
        (
            "host h { fixed-address 10.0.0.1; fixed-address 10.0.0.2; }",
            "Only one fixed address declaration per host",
        ),
        (
            "host h { hardware ethernet 0:1:2:3:4:5; hardware ethernet 0:1:2:3:4:6; }",
            "hardware address already configured",
        ),
        ("host h { authoritative; }", "authority makes no sense here"),
        (
            "host h { not authoritative; }",
            "authority makes no sense here",
        ),
    ] {
        match parse_str(text, "test.conf") {
            Ok(_) => panic!("accepted ({why}): {text}"),
            Err(found) => assert!(!found.errors.is_empty()),
        }
    }
    // Dotted names and addresses are host names.
    let config = parse("host h.example.com { }\nhost 10.0.0.1 { }");
    assert_eq!(config.hosts[1].name, "10.0.0.1");
    assert_eq!(config.scopes.len(), 3);
    assert_eq!(config.hosts[0].scope, ScopeId(1));
}
