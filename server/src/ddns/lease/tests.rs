use std::net::Ipv4Addr;

use super::*;
use crate::ddns::plan::Step;
use crate::lease::record::Hardware;

/// ISC's `quotify_buf` (common/print.c), written out independently of the lease writer.
fn isc_quotify(bytes: &[u8]) -> String {
    let mut text = String::from("\"");
    for &byte in bytes {
        match byte {
            b'"' | b'\\' => {
                text.push('\\');
                text.push(byte as char);
            }
            0x20..=0x7e => text.push(byte as char),
            _ => text.push_str(&format!("\\{byte:03o}")),
        }
    }
    text.push('"');
    text
}

fn settings(style: Style) -> DdnsSettings {
    DdnsSettings {
        style: Some(style),
        fwd_name: Some("chi.example.com".into()),
        ..DdnsSettings::default()
    }
}

fn active_lease() -> Lease {
    let mut lease = Lease::free(Ipv4Addr::new(192, 0, 2, 2));
    lease.binding_state = BindingState::Active;
    lease.starts = 1_000;
    lease.ends = 1_600;
    lease.hardware = Hardware::new(1, &[2, 0, 0, 0, 0, 2]);
    lease.set_uid(Some(&[0x01, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c]));
    lease.set_client_hostname(Some("chi"));
    lease
}

/// A lease ISC added DNS for, as its dhcpd.leases has it: the removal uses exactly the stored
/// name, DHCID and reverse name.
#[test]
fn isc_leases_are_removed_with_their_stored_variables() {
    let dhcid = guard::guard(
        Style::Standard,
        ClientIdentity::ClientId(&[0x01, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c]),
        "chi.example.com",
    )
    .unwrap();
    let Guard::Dhcid(raw) = &dhcid else {
        unreachable!()
    };
    let text = format!(
        "lease 192.0.2.2 {{\n  starts 4 2024/01/04 10:00:00;\n  ends 4 2024/01/04 11:00:00;\n  \
         binding state active;\n  hardware ethernet 02:00:00:00:00:02;\n  \
         set ddns-rev-name = \"2.2.0.192.in-addr.arpa.\";\n  \
         set ddns-dhcid = {};\n  set ddns-fwd-name = \"chi.example.com\";\n  \
         client-hostname \"chi\";\n}}\n",
        isc_quotify(raw)
    );
    let file = crate::lease::file::parse(text.as_bytes(), "dhcpd.leases");
    assert_eq!(file.errors, vec![]);
    let lease = &file.leases[0];
    assert_eq!(stored_guard(lease), Some(dhcid.clone()));
    let removal = removal_for(lease, Policy::default()).unwrap();
    assert_eq!(removal.first_step(), Some(Step::FwdRem1));
    assert_eq!(
        removal.binding,
        Binding {
            address: Ipv4Addr::new(192, 0, 2, 2),
            fwd_name: Some("chi.example.com".into()),
            rev_name: Some("2.2.0.192.in-addr.arpa.".into()),
            guard: Some(dhcid),
            ttl: 0,
        }
    );
    // The interim form: `set ddns-txt = "31…";`.
    let text = "lease 192.0.2.3 {\n  binding state free;\n  \
                set ddns-txt = \"31900150983cd24fb0d6963f7d28e17f72\";\n  \
                set ddns-fwd-name = \"abc.example.com\";\n}\n";
    let file = crate::lease::file::parse(text.as_bytes(), "dhcpd.leases");
    let removal = removal_for(&file.leases[0], Policy::default()).unwrap();
    assert_eq!(
        removal.binding.guard,
        Some(Guard::Txt(b"31900150983cd24fb0d6963f7d28e17f72".to_vec()))
    );
    assert_eq!(removal.binding.rev_name, None);
    // No variables: nothing was added, nothing to remove.
    assert_eq!(removal_for(&active_lease(), Policy::default()), None);
}

#[test]
fn an_active_lease_is_added_once_then_left_alone() {
    let mut lease = active_lease();
    let operations = operations_for_active(&lease, &settings(Style::Standard), 1_000);
    assert_eq!(operations.len(), 1);
    let add = &operations[0];
    assert_eq!(add.kind, Kind::Add);
    assert_eq!(add.binding.fwd_name.as_deref(), Some("chi.example.com"));
    assert_eq!(
        add.binding.rev_name.as_deref(),
        Some("2.2.0.192.in-addr.arpa.")
    );
    // Half the 600 s left.
    assert_eq!(add.binding.ttl, 300);
    // The RFC 4701 §3.6.2 DHCID: the client identifier, type 1.
    assert_eq!(add.binding.guard.as_ref().unwrap().rdata()[..3], [0, 1, 1]);
    let done = Outcome {
        forward: Side::Done,
        reverse: Side::Done,
    };
    let changes = variables_after(add, &done);
    apply_variables(&mut lease, &changes);
    assert_eq!(
        text_variable(&lease, var::FWD_NAME).as_deref(),
        Some("chi.example.com")
    );
    assert_eq!(stored_guard(&lease), add.binding.guard);
    // What the lease file will say is what ISC reads back.
    let mut record = Vec::new();
    crate::lease::file::write::write_lease_with(
        &lease,
        crate::lease::file::FileFormat::default(),
        &mut record,
    );
    let reread = crate::lease::file::parse(&record, "dhcpd.leases");
    assert_eq!(reread.errors, vec![]);
    assert_eq!(stored_guard(&reread.leases[0]), add.binding.guard);
    // A renewal: the name is stored, update-optimization skips it.
    assert!(operations_for_active(&lease, &settings(Style::Standard), 1_300).is_empty());
    let mut always = settings(Style::Standard);
    always.update_optimization = false;
    assert_eq!(operations_for_active(&lease, &always, 1_300).len(), 1);
    // A new host name: the old name goes first.
    let mut renamed = settings(Style::Standard);
    renamed.fwd_name = Some("chi2.example.com".into());
    let operations = operations_for_active(&lease, &renamed, 1_300);
    assert_eq!(
        operations
            .iter()
            .map(|operation| (operation.kind, operation.binding.fwd_name.clone()))
            .collect::<Vec<_>>(),
        [
            (Kind::Remove, Some("chi.example.com".into())),
            (Kind::Add, Some("chi2.example.com".into()))
        ]
    );
    // After the removal, the variables are gone.
    let removal = removal_for(&lease, Policy::default()).unwrap();
    apply_variables(&mut lease, &variables_after(&removal, &done));
    assert!(lease.extra.is_none());
}

#[test]
fn nothing_without_style_name_domain_or_active_state() {
    let lease = active_lease();
    assert!(operations_for_active(&lease, &DdnsSettings::default(), 1_000).is_empty());
    let mut no_name = settings(Style::Interim);
    no_name.fwd_name = None;
    assert!(operations_for_active(&lease, &no_name, 1_000).is_empty());
    let mut free = active_lease();
    free.binding_state = BindingState::Free;
    assert!(operations_for_active(&free, &settings(Style::Interim), 1_000).is_empty());
    // Without a client identifier the hardware address identifies the client.
    let mut by_mac = active_lease();
    by_mac.set_uid(None);
    let operations = operations_for_active(&by_mac, &settings(Style::Interim), 1_000);
    let Some(Guard::Txt(text)) = &operations[0].binding.guard else {
        panic!("interim writes TXT")
    };
    assert!(text.starts_with(b"00"));
}

#[test]
fn partial_outcomes_set_only_what_was_done() {
    let lease = active_lease();
    let add = operations_for_active(&lease, &settings(Style::Interim), 1_000).remove(0);
    let forward_only = variables_after(
        &add,
        &Outcome {
            forward: Side::Done,
            reverse: Side::Failed {
                step: Step::PtrAdd,
                rcode: 5,
            },
        },
    );
    assert_eq!(
        forward_only
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>(),
        [var::FWD_NAME, var::TXT]
    );
    let conflict = variables_after(
        &add,
        &Outcome {
            forward: Side::Conflict(8),
            reverse: Side::Skipped,
        },
    );
    assert!(conflict.is_empty());
    assert_eq!(unquote(r#""a\"b\\c\001""#), Some(b"a\"b\\c\x01".to_vec()));
    assert_eq!(unquote("noquotes"), None);
    assert_eq!(unquote(r#""\9""#), Some(b"9".to_vec()));
    assert_eq!(unquote(r#""\01""#), None);
}

/// A fixed address (ISC's `DDNS_STATIC_LEASE`): the same add as a dynamic lease's, TTL from
/// the DHCPACK's time, and nothing written back once DNS answered — not even to a dynamic
/// lease the store may hold at that address.
#[test]
fn a_static_lease_is_added_and_never_written_back() {
    let client = [0x01, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c];
    let add = operation_for_static_lease(
        Ipv4Addr::new(192, 0, 2, 2),
        ClientIdentity::ClientId(&client),
        &settings(Style::Standard),
        1_000 + 10_000,
        1_000,
    )
    .unwrap();
    assert!(add.static_lease);
    let dynamic = operations_for_active(&active_lease(), &settings(Style::Standard), 1_000);
    assert_eq!(add.binding.guard, dynamic[0].binding.guard);
    assert_eq!(add.binding.rev_name, dynamic[0].binding.rev_name);
    // Half of 10,000 s, at most an hour.
    assert_eq!(add.binding.ttl, 3600);
    let done = Outcome {
        forward: Side::Done,
        reverse: Side::Done,
    };
    assert_eq!(
        followup(&add, &done, &active_lease(), 1_001),
        Followup::Nothing
    );
    let no_style = DdnsSettings {
        style: None,
        ..settings(Style::Standard)
    };
    assert!(operation_for_static_lease(
        Ipv4Addr::new(192, 0, 2, 2),
        ClientIdentity::ClientId(&client),
        &no_style,
        2_000,
        1_000,
    )
    .is_none());
}
