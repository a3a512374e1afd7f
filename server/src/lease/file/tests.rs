//! Tests of the lease file reader and writer against the lab samples (docs/spec/dhcpd-conf.md §8).

use super::*;
use crate::lease::record::{BindingState, NEVER};

const EX87: &str = include_str!("testdata/ex87.leases");
const EX_MISC: &str = include_str!("testdata/ex_misc.leases");
const EX_BAD: &str = include_str!("testdata/ex_bad.leases");

fn address(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

#[test]
fn ex87_loads_and_writes_back_byte_for_byte() {
    let file = parse(EX87.as_bytes(), "ex87.leases");
    assert_eq!(file.errors, vec![]);
    assert!(!file.torn_tail);
    assert_eq!(file.leases.len(), 3);
    assert_eq!(file.failover_states.len(), 1);
    let state = &file.failover_states[0];
    assert_eq!(state.peer, "lab-fo");
    assert_eq!(state.my_state, Some(PeerState::Normal));
    assert_eq!(state.my_time, Some(1_795_836_584));
    let first = &file.leases[0];
    assert_eq!(first.address, address("10.99.0.110"));
    assert_eq!(first.starts, 1_795_836_305);
    assert_eq!(first.binding_state, BindingState::Free);
    assert_eq!(first.next_binding_state, BindingState::Free);
    assert_eq!(
        first.hardware,
        Hardware::new(1, &[0x6a, 0xd9, 0x3e, 0xff, 0xef, 0xc7])
    );
    assert_eq!(file.leases[1].ends, 0);
    assert_eq!(file.leases[1].binding_state, BindingState::Backup);

    let mut out = Vec::new();
    write_file(&file, FileFormat::default(), &mut out);
    // Byte for byte, but for the comment that names the writer.
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        EX87.replace(
            "written by isc-dhcp-4.4.3-P1",
            concat!("written by xdhcpd-", env!("CARGO_PKG_VERSION"))
        )
    );
    let again = parse(&out, "again");
    assert_eq!(again.leases, file.leases);
    assert_eq!(again.failover_states, file.failover_states);
}

#[test]
fn spec_example_lease_is_written_exactly() {
    let text = "lease 10.99.0.105 {\n  starts 3 2025/01/01 00:00:00;\n  cltt 3 2025/01/01 00:00:00;\n  binding state free;\n  hardware ethernet 02:11:22:33:44:55;\n  uid \"\\001\\002\\021\\\"3DU\";\n  set remote-handle = %2;\n}\n";
    let file = parse(text.as_bytes(), "spec");
    assert_eq!(file.errors, vec![]);
    let lease = &file.leases[0];
    assert_eq!(lease.uid(), Some(&[1, 2, 0x11, 0x22, 0x33, 0x44, 0x55][..]));
    let mut out = Vec::new();
    write_lease(lease, &mut out);
    assert_eq!(String::from_utf8(out).unwrap(), text);
    let mut hex = Vec::new();
    write_lease_with(
        lease,
        FileFormat {
            ids: IdFormat::Hex,
            ..FileFormat::default()
        },
        &mut hex,
    );
    assert!(String::from_utf8(hex)
        .unwrap()
        .contains("  uid 01:02:11:22:33:44:55;\n"));
}

#[test]
fn ex_misc_loads_every_form() {
    let file = parse(EX_MISC.as_bytes(), "ex_misc.leases");
    assert_eq!(file.errors, vec![]);
    assert!(!file.torn_tail);
    let state = &file.failover_states[0];
    assert_eq!(state.my_state, Some(PeerState::PartnerDown));
    assert_eq!(state.my_time, None);
    assert_eq!(state.partner_time, Some(1_795_836_685));
    let first = &file.leases[0];
    assert_eq!(first.starts, 1_795_836_283);
    assert_eq!(first.ends, NEVER);
    assert_eq!(first.binding_state, BindingState::Active);
    assert_eq!(first.next_binding_state, BindingState::Expired);
    assert_eq!(first.uid(), Some(&[1, 2, 0, 0, 0xbe, 0xef, 1][..]));
    assert_eq!(first.client_hostname(), Some("x"));
    let extra = first.extra.as_deref().unwrap();
    assert_eq!(
        extra.variables,
        vec![
            ("vendor-class-identifier".into(), "\"MSFT 5.0\"".into()),
            ("foo".into(), "%5".into()),
            ("bar".into(), "true".into()),
        ]
    );
    let second = &file.leases[1];
    // `-3600` is added to the time (§8.1); 2040 reads as never.
    assert_eq!(second.starts, 1_735_689_600 - 3600);
    assert_eq!(second.ends, NEVER);
    assert_eq!(second.hardware.unwrap().htype, 0);
    let mut out = Vec::new();
    write_lease(second, &mut out);
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("  hardware unknown-0 02:aa:bb:cc:dd:01;\n"));
}

#[test]
fn ex_bad_is_rejected_at_line_3() {
    let file = parse(EX_BAD.as_bytes(), "ex_bad.leases");
    assert_eq!(file.errors.len(), 1, "{:?}", file.errors);
    assert_eq!(file.errors[0].line, 3);
    assert_eq!(file.errors[0].column, 3);
    assert!(file.failover_states.is_empty());
    assert!(!file.torn_tail);

    let directory = std::env::temp_dir().join(format!("xdhcpd-check-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let bad = directory.join("ex_bad.leases");
    std::fs::write(&bad, EX_BAD).unwrap();
    let good = directory.join("ex87.leases");
    std::fs::write(&good, EX87).unwrap();
    match check(&bad) {
        Err(LeaseCheckError::Invalid { report, count }) => {
            assert_eq!(count, 1);
            assert!(
                report.starts_with(&format!("{}:3:3: ", bad.display())),
                "{report}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(check(&good).is_ok());
    assert!(matches!(
        check(&directory.join("missing")),
        Err(LeaseCheckError::Io { .. })
    ));
    std::fs::remove_dir_all(&directory).unwrap();
}

#[test]
fn an_error_drops_only_its_lease() {
    let text = "lease 10.0.0.1 {\n  starts 3 2025/01/01 00:00:00;\n  bogus 1 2 3;\n  on expiry { set x = 1; }\n}\nlease 10.0.0.2 {\n  binding state active;\n  ends 3 2025/01/01 00:00:00;\n}\nnonsense;\nlease 10.0.0.3 { binding state sleepy; }\n";
    let file = parse(text.as_bytes(), "t");
    assert_eq!(file.leases.len(), 1);
    assert_eq!(file.leases[0].address, address("10.0.0.2"));
    let lines: Vec<u32> = file.errors.iter().map(|error| error.line).collect();
    assert_eq!(lines, vec![3, 10, 11]);
    assert!(!file.torn_tail);
}

#[test]
fn later_records_win_and_defaults_apply() {
    let text = "lease 10.0.0.1 { binding state active; ends epoch 100; }\nlease 10.0.0.9 { ends epoch 5; }\nlease 10.0.0.1 { binding state released; client-hostname pc.example; abandoned; }\n";
    let file = parse(text.as_bytes(), "t");
    assert_eq!(file.errors, vec![]);
    assert_eq!(file.leases.len(), 2);
    assert_eq!(file.leases[0].binding_state, BindingState::Abandoned);
    assert_eq!(file.leases[0].client_hostname(), Some("pc.example"));
    // No binding state and an end: active, then free (parse_lease_declaration); tstp = ends.
    assert_eq!(file.leases[1].binding_state, BindingState::Active);
    assert_eq!(file.leases[1].next_binding_state, BindingState::Free);
    assert_eq!(file.leases[1].tstp, 5);
}

#[test]
fn old_forms_and_agent_options() {
    let text = "lease 10.0.0.1 {\n  binding state bootp;\n  ddns-fwd-name \"a.example\";\n  option agent.circuit-id \"eth0:1\";\n  option agent.remote-id 00:01:02;\n  billing class \"c1\";\n  on expiry { set x = \"y\"; }\n  class \"foo\";\n}\n";
    let file = parse(text.as_bytes(), "t");
    assert_eq!(file.errors, vec![]);
    let lease = &file.leases[0];
    assert_eq!(lease.binding_state, BindingState::Active);
    assert_eq!(lease.flags, crate::lease::record::flags::BOOTP);
    let extra = lease.extra.as_deref().unwrap();
    assert_eq!(
        extra.variables,
        vec![("ddns-fwd-name".into(), "\"a.example\"".into())]
    );
    assert_eq!(
        extra.agent_options,
        vec![(1, b"eth0:1".to_vec()), (2, vec![0, 1, 2])]
    );
    assert_eq!(
        extra.billing,
        Some(crate::lease::billing::Billing::class("c1"))
    );
    assert_eq!(
        extra.verbatim,
        vec!["on expiry { set x = \"y\"; }".to_owned()]
    );
    let mut out = Vec::new();
    write_lease(lease, &mut out);
    let written = String::from_utf8(out).unwrap();
    assert_eq!(
        written,
        "lease 10.0.0.1 {\n  binding state active;\n  dynamic-bootp;\n  billing class \"c1\";\n  set ddns-fwd-name = \"a.example\";\n  option agent.circuit-id \"eth0:1\";\n  option agent.remote-id 00:01:02;\n  on expiry { set x = \"y\"; }\n}\n"
    );
    assert_eq!(parse(written.as_bytes(), "again").leases[0], *lease);
}

/// `billing subclass "CLASS" DATA;` as ISC writes it (server/db.c `write_billing_class`):
/// printable data quoted, other data colon-hex; read back to the same billing.
#[test]
fn billing_subclass_lines_round_trip() {
    let text = "lease 10.0.0.2 {\n  starts epoch 1;\n  ends epoch 2000000000;\n  binding state active;\n  next binding state free;\n  billing subclass \"modems\" \"cm-1\";\n  hardware ethernet 02:00:00:00:00:01;\n}\nlease 10.0.0.3 {\n  starts epoch 1;\n  ends epoch 2000000000;\n  binding state active;\n  next binding state free;\n  billing subclass \"c\" 1:2:0:0:0:0:1;\n}\n";
    let file = parse(text.as_bytes(), "t");
    assert_eq!(file.errors, vec![]);
    let billing = |index: usize| {
        file.leases[index]
            .extra
            .as_deref()
            .and_then(|extra| extra.billing.clone())
    };
    use crate::lease::billing::Billing;
    assert_eq!(billing(0), Some(Billing::subclass("modems", b"cm-1")));
    assert_eq!(
        billing(1),
        Some(Billing::subclass("c", &[1, 2, 0, 0, 0, 0, 1]))
    );
    let mut out = Vec::new();
    write_lease(&file.leases[1], &mut out);
    let written = String::from_utf8(out).unwrap();
    assert!(
        written.contains("  billing subclass \"c\" 01:02:00:00:00:00:01;\n"),
        "{written}"
    );
    assert_eq!(parse(written.as_bytes(), "again").leases[0], file.leases[1]);
    // Only an ACTIVE lease's billing is written (ISC: one that has not ended).
    let mut free = file.leases[0].clone();
    free.binding_state = BindingState::Free;
    let mut out = Vec::new();
    write_lease(&free, &mut out);
    assert!(!String::from_utf8(out).unwrap().contains("billing"));
}

#[test]
fn host_and_group_records_round_trip() {
    let text = "group g1 {\n  dynamic;\n        supersede server.default-lease-time = 00:00:01:2c;\n}\nhost newhost {\n  dynamic;\n  deleted;\n}\nhost h2 {\n  dynamic;\n  hardware unknown-0 02:aa:bb:cc:dd:01;\n  group \"g1\";\n        supersede host-name = \"h2\";\n}\nhost newhost2 {\n  dynamic;\n  hardware ethernet 02:aa:bb:cc:dd:ee;\n  fixed-address 10.99.0.60;\n}\n";
    let file = parse(text.as_bytes(), "t");
    assert_eq!(file.errors, vec![]);
    assert_eq!(file.groups.len(), 1);
    assert_eq!(file.hosts.len(), 3);
    assert!(file.hosts[0].deleted);
    assert_eq!(file.hosts[1].group.as_deref(), Some("g1"));
    assert_eq!(
        file.hosts[1].statements,
        vec!["supersede host-name = \"h2\";"]
    );
    assert_eq!(file.hosts[2].fixed_addresses, vec![address("10.99.0.60")]);
    let mut out = Vec::new();
    for group in &file.groups {
        write_group(group, &mut out);
    }
    for host in &file.hosts {
        write_host(host, &mut out);
    }
    assert_eq!(String::from_utf8(out).unwrap(), text);
}

#[test]
fn later_host_record_replaces_earlier() {
    let text =
        "host a { dynamic; hardware ethernet 00:00:00:00:00:01; }\nhost a { dynamic; deleted; }\n";
    let file = parse(text.as_bytes(), "t");
    assert_eq!(file.hosts.len(), 1);
    assert!(file.hosts[0].deleted);
}

#[test]
fn torn_last_record_at_every_offset() {
    let last_start = EX87.rfind("lease 10.99.0.109").unwrap();
    let complete = parse(EX87.as_bytes(), "full");
    for cut in last_start..EX87.len() {
        let file = parse(&EX87.as_bytes()[..cut], "cut");
        assert_eq!(file.errors, vec![], "cut at {cut}");
        // Only whitespace before the record, or the record whole but for its newline.
        let torn = cut > last_start && cut < EX87.len() - 1;
        assert_eq!(file.torn_tail, torn, "cut at {cut}");
        if !torn && cut > last_start {
            assert_eq!(file.leases, complete.leases);
            continue;
        }
        assert_eq!(file.leases[..], complete.leases[..2], "cut at {cut}");
    }
    // Cut anywhere in the file: never a panic, and what loads is a prefix.
    for cut in 0..EX_MISC.len() {
        let file = parse(&EX_MISC.as_bytes()[..cut], "cut");
        assert!(file.leases.len() <= 2);
    }
}

#[test]
fn unexpected_bytes_are_errors_not_panics() {
    let text = b"lease 10.0.0.1 { starts @ 3; }\n\x01\x02 lease 10.0.0.2 { binding state free; }\n";
    let file = parse(text, "t");
    assert_eq!(file.leases.len(), 1);
    assert_eq!(file.errors[0].line, 1);
    assert_eq!(file.errors[0].column, 25);
}

#[test]
fn read_path_streams_across_chunks() {
    let directory = std::env::temp_dir().join(format!("xdhcpd-read-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("big.leases");
    let mut bytes = Vec::new();
    generate_example(30_000, &mut bytes).unwrap();
    assert!(bytes.len() > CHUNK, "{}", bytes.len());
    // A torn record at the end too.
    bytes.extend_from_slice(b"lease 10.255.0.1 {\n  starts 6 2026/11/28");
    std::fs::write(&path, &bytes).unwrap();
    let mut collector = Collector::default();
    let summary = read_path(&path, &mut collector).unwrap();
    assert_eq!(summary.errors, vec![]);
    assert!(summary.torn_tail);
    let streamed = collector.finish();
    let whole = parse(&bytes, "whole");
    assert_eq!(streamed.leases.len(), 30_000);
    assert_eq!(streamed.leases, whole.leases);
    std::fs::remove_dir_all(&directory).unwrap();
}

#[test]
fn local_time_format_is_written_as_epoch_and_read_back() {
    // dhcpd.conf(5) `db-time-format local`: `starts epoch N; # local time` (common/print.c
    // `print_time`); the comment is a comment to both readers.
    let text = "lease 10.0.0.7 {\n  starts 3 2025/01/01 00:00:00;\n  ends 3 2025/01/01 01:00:00;\n  cltt 3 2025/01/01 00:00:00;\n  binding state active;\n  next binding state free;\n  hardware ethernet 02:00:00:00:00:07;\n}\n\nfailover peer \"p\" state {\n  my state normal at 3 2025/01/01 00:00:00;\n  partner state normal at 3 2025/01/01 00:00:01;\n  mclt 300;\n}\n";
    let file = parse(text.as_bytes(), "utc");
    assert_eq!(file.errors, vec![]);
    let format = FileFormat {
        times: date::TimeFormat::Local,
        ..FileFormat::default()
    };
    let mut out = Vec::new();
    write_lease_with(&file.leases[0], format, &mut out);
    write_failover_state(&file.failover_states[0], format.times, &mut out);
    let written = String::from_utf8(out.clone()).unwrap();
    assert!(
        written.contains("\n  starts epoch 1735689600; # ")
            && written.contains("\n  ends epoch 1735693200; # ")
            && written.contains("  my state normal at epoch 1735689600; # ")
            && written.contains("  partner state normal at epoch 1735689601; # "),
        "{written}"
    );
    let again = parse(&out, "local");
    assert_eq!(again.errors, vec![]);
    assert_eq!(again.leases, file.leases);
    assert_eq!(again.failover_states, file.failover_states);
}
