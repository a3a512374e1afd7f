//! The messages and transitions of ISC dhcpd 4.4 (common/dns.c, server/ddns.c), step by step.

use super::*;
use crate::ddns::guard::{guard, ClientIdentity, Style};

const NAME: &str = "host.example.org";
const REV: &str = "20.2.0.192.in-addr.arpa.";

fn dhcid() -> Guard {
    guard(
        Style::Standard,
        ClientIdentity::Hardware {
            htype: 1,
            address: &[2, 0, 0, 0, 0, 1],
        },
        NAME,
    )
    .unwrap()
}

fn binding(guard: Guard) -> Binding {
    Binding {
        address: Ipv4Addr::new(192, 0, 2, 20),
        fwd_name: Some(NAME.into()),
        rev_name: Some(REV.into()),
        guard: Some(guard),
        ttl: 300,
    }
}

fn a(class: Class, ttl: u32) -> Rr {
    Rr {
        name: NAME.into(),
        class,
        rtype: rtype::A,
        ttl,
        data: Some(Data::A(Ipv4Addr::new(192, 0, 2, 20))),
    }
}

fn guard_rr(guard: &Guard, class: Class, ttl: u32) -> Rr {
    Rr {
        name: NAME.into(),
        class,
        rtype: guard.record_type(),
        ttl,
        data: Some(Data::Guard(guard.clone())),
    }
}

fn empty(name: &str, class: Class, rtype: u16) -> Rr {
    Rr {
        name: name.into(),
        class,
        rtype,
        ttl: 0,
        data: None,
    }
}

#[test]
fn add1_requires_the_name_unused_and_adds_a_and_guard() {
    let guard = dhcid();
    let operation = Operation::add(binding(guard.clone()), Policy::default());
    assert_eq!(operation.first_step(), Some(Step::FwdAdd1));
    let message = operation.message(Step::FwdAdd1).unwrap();
    assert_eq!(message.direction, Direction::Forward);
    assert_eq!(message.name, NAME);
    assert_eq!(
        message.prerequisites,
        [empty(NAME, Class::None, rtype::ANY)]
    );
    assert_eq!(
        message.updates,
        [a(Class::In, 300), guard_rr(&guard, Class::In, 300)]
    );
}

#[test]
fn add2_with_conflict_detection_requires_our_guard() {
    let guard = dhcid();
    let operation = Operation::add(binding(guard.clone()), Policy::default());
    let message = operation.message(Step::FwdAdd2).unwrap();
    assert_eq!(message.prerequisites, [guard_rr(&guard, Class::In, 0)]);
    assert_eq!(
        message.updates,
        [empty(NAME, Class::Any, rtype::A), a(Class::In, 300)]
    );
    // ddns-guard-id-must-match off: any guard of the type will do.
    let operation = Operation::add(binding(guard.clone()), Policy::new(true, false));
    let message = operation.message(Step::FwdAdd2).unwrap();
    assert_eq!(
        message.prerequisites,
        [empty(NAME, Class::Any, rtype::DHCID)]
    );
}

#[test]
fn add2_without_conflict_detection_replaces_the_guard() {
    let guard = guard(
        Style::Interim,
        ClientIdentity::ClientId(b"\x01\x02\x00\x00\x00\x00\x01"),
        NAME,
    )
    .unwrap();
    let operation = Operation::add(binding(guard.clone()), Policy::new(false, true));
    assert!(!operation.policy.guard_id_must_match);
    let message = operation.message(Step::FwdAdd2).unwrap();
    assert!(message.prerequisites.is_empty());
    assert_eq!(
        message.updates,
        [
            empty(NAME, Class::Any, rtype::TXT),
            guard_rr(&guard, Class::In, 300),
            empty(NAME, Class::Any, rtype::A),
            a(Class::In, 300),
        ]
    );
}

#[test]
fn ptr_add_replaces_the_ptr_rrset() {
    let operation = Operation::add(binding(dhcid()), Policy::default());
    let message = operation.message(Step::PtrAdd).unwrap();
    assert_eq!(message.direction, Direction::Reverse);
    assert_eq!(message.name, REV);
    assert!(message.prerequisites.is_empty());
    assert_eq!(
        message.updates,
        [
            empty(REV, Class::Any, rtype::PTR),
            Rr {
                name: REV.into(),
                class: Class::In,
                rtype: rtype::PTR,
                ttl: 300,
                data: Some(Data::Ptr(NAME.into())),
            }
        ]
    );
}

#[test]
fn removal_deletes_our_address_then_the_guard_then_the_ptr() {
    let guard = dhcid();
    let operation = Operation::remove(binding(guard.clone()), Policy::default());
    assert_eq!(operation.first_step(), Some(Step::FwdRem1));
    let rem1 = operation.message(Step::FwdRem1).unwrap();
    assert_eq!(rem1.prerequisites, [guard_rr(&guard, Class::In, 0)]);
    assert_eq!(rem1.updates, [a(Class::None, 0)]);
    let rem2 = operation.message(Step::FwdRem2).unwrap();
    assert_eq!(
        rem2.prerequisites,
        [
            empty(NAME, Class::None, rtype::A),
            empty(NAME, Class::None, rtype::AAAA)
        ]
    );
    assert_eq!(rem2.updates, [guard_rr(&guard, Class::None, 0)]);
    let ptr = operation.message(Step::PtrRem).unwrap();
    assert_eq!(ptr.updates, [empty(REV, Class::Any, rtype::PTR)]);
    // Without conflict detection: no prerequisite, and any guard of the type goes.
    let operation = Operation::remove(binding(guard.clone()), Policy::new(false, true));
    assert!(operation
        .message(Step::FwdRem1)
        .unwrap()
        .prerequisites
        .is_empty());
    assert_eq!(
        operation.message(Step::FwdRem2).unwrap().updates,
        [empty(NAME, Class::Any, rtype::DHCID)]
    );
}

fn run(operation: &mut Operation, answers: &[(Step, u16)]) -> Next {
    let mut step = operation.first_step().unwrap();
    for &(expected, rcode) in answers {
        assert_eq!(step, expected);
        match operation.next(step, rcode) {
            Next::Send(next) => step = next,
            finished => return finished,
        }
    }
    Next::Send(step)
}

#[test]
fn add_transitions() {
    let done = Outcome {
        forward: Side::Done,
        reverse: Side::Done,
    };
    let mut fresh = Operation::add(binding(dhcid()), Policy::default());
    assert_eq!(
        run(
            &mut fresh,
            &[
                (Step::FwdAdd1, rcode::NOERROR),
                (Step::PtrAdd, rcode::NOERROR)
            ]
        ),
        Next::Finished(done)
    );
    // The name exists: the second step; ours, so the A record is replaced.
    let mut renewed = Operation::add(binding(dhcid()), Policy::default());
    assert_eq!(
        run(
            &mut renewed,
            &[
                (Step::FwdAdd1, rcode::YXDOMAIN),
                (Step::FwdAdd2, rcode::NOERROR),
                (Step::PtrAdd, rcode::NOERROR)
            ]
        ),
        Next::Finished(done)
    );
    // Another client's guard (or none): a conflict, and no PTR record.
    let mut taken = Operation::add(binding(dhcid()), Policy::default());
    assert_eq!(
        run(
            &mut taken,
            &[
                (Step::FwdAdd1, rcode::YXDOMAIN),
                (Step::FwdAdd2, rcode::NXRRSET)
            ]
        ),
        Next::Finished(Outcome {
            forward: Side::Conflict(rcode::NXRRSET),
            reverse: Side::Skipped,
        })
    );
    let mut refused = Operation::add(binding(dhcid()), Policy::default());
    assert_eq!(
        run(&mut refused, &[(Step::FwdAdd1, rcode::REFUSED)]),
        Next::Finished(Outcome {
            forward: Side::Failed {
                step: Step::FwdAdd1,
                rcode: rcode::REFUSED
            },
            reverse: Side::Skipped,
        })
    );
}

#[test]
fn remove_transitions() {
    let mut removal = Operation::remove(binding(dhcid()), Policy::default());
    assert_eq!(
        run(
            &mut removal,
            &[
                (Step::FwdRem1, rcode::NOERROR),
                (Step::FwdRem2, rcode::YXRRSET),
                (Step::PtrRem, rcode::NOERROR)
            ]
        ),
        Next::Finished(Outcome {
            forward: Side::Done,
            reverse: Side::Done
        })
    );
    // Not our guard: the A record stays, the PTR record goes (ISC does the same).
    let mut foreign = Operation::remove(binding(dhcid()), Policy::default());
    assert_eq!(
        run(
            &mut foreign,
            &[
                (Step::FwdRem1, rcode::NXRRSET),
                (Step::PtrRem, rcode::NXDOMAIN)
            ]
        ),
        Next::Finished(Outcome {
            forward: Side::Done,
            reverse: Side::Done
        })
    );
    let mut refused = Operation::remove(binding(dhcid()), Policy::default());
    assert_eq!(
        run(
            &mut refused,
            &[
                (Step::FwdRem1, rcode::NOTAUTH),
                (Step::PtrRem, rcode::NOERROR)
            ]
        ),
        Next::Finished(Outcome {
            forward: Side::Failed {
                step: Step::FwdRem1,
                rcode: rcode::NOTAUTH
            },
            reverse: Side::Done
        })
    );
}

#[test]
fn partial_bindings() {
    // A lease ISC added without guard (no ddns-dhcid/ddns-txt): only the PTR is removed.
    let mut no_guard = binding(dhcid());
    no_guard.guard = None;
    let mut operation = Operation::remove(no_guard.clone(), Policy::default());
    assert_eq!(operation.first_step(), Some(Step::PtrRem));
    assert_eq!(operation.message(Step::FwdRem1), None);
    assert_eq!(
        operation.next(Step::PtrRem, rcode::NOERROR),
        Next::Finished(Outcome {
            forward: Side::Untouched,
            reverse: Side::Done
        })
    );
    // Without a reverse name only the forward side runs.
    let mut no_rev = binding(dhcid());
    no_rev.rev_name = None;
    let mut operation = Operation::add(no_rev, Policy::default());
    assert_eq!(
        operation.next(Step::FwdAdd1, rcode::NOERROR),
        Next::Finished(Outcome {
            forward: Side::Done,
            reverse: Side::Untouched
        })
    );
    // Nothing at all.
    let nothing = Binding {
        address: Ipv4Addr::new(192, 0, 2, 1),
        fwd_name: None,
        rev_name: Some(REV.into()),
        guard: None,
        ttl: 0,
    };
    assert_eq!(
        Operation::add(nothing.clone(), Policy::default()).first_step(),
        None
    );
    assert_eq!(
        Operation::remove(nothing, Policy::default()).first_step(),
        Some(Step::PtrRem)
    );
}

#[test]
fn isc_names_and_ttl() {
    assert_eq!(
        reverse_name(Ipv4Addr::new(192, 0, 2, 20), "in-addr.arpa."),
        REV
    );
    assert_eq!(forward_name("host", "example.org").as_deref(), Some(NAME));
    assert_eq!(forward_name("", "example.org"), None);
    assert_eq!(forward_name(&"a".repeat(250), "example"), None);
    assert_eq!(default_ttl(1000, 1600), 300);
    assert_eq!(default_ttl(1000, 1_000_000), 3600);
    assert_eq!(default_ttl(1000, 900), 0);
}
