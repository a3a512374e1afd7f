//! The `failover-state` object over a machine: attributes in ISC's order and encodings
//! (docs/spec/omapi.md §8.5), `local-state` forced through the command channel as a driver applies it.

use std::sync::Arc;

use super::FailoverStateObjects;
use crate::failover::codes::ServerStateCode;
use crate::failover::control::Command;
use crate::failover::hooks::{FailoverHooks, RelationshipStatus};
use crate::failover::machine::{Machine, MachineConfig};
use crate::failover::memory::MemoryBindings;
use crate::failover::states::{Role, State};
use crate::lease::record::UnixTime;
use crate::omapi::objects::FailoverStates;
use crate::omapi::result::ResultCode;
use crate::omapi::wire::{find, Value};

const NOW: UnixTime = 1_795_836_305;

fn config() -> crate::config::model::Config {
    crate::config::parse_str(
        "failover peer \"fo\" { primary; address 10.0.0.1; port 647; peer address 10.0.0.2; \
         peer port 847; max-response-delay 30; max-unacked-updates 10; mclt 300; split 128; \
         load balance max seconds 3; }\n\
         subnet 10.0.0.0 netmask 255.255.255.0 { pool { failover peer \"fo\"; \
         range 10.0.0.100 10.0.0.119; } }\n",
        "test.conf",
    )
    .expect("config")
}

fn u32_of(values: &[Value], name: &str) -> Option<u32> {
    find(values, name).and_then(Value::as_u32)
}

/// What the tokio driver does with a command (peer.rs `handle_command` + `pump`), on a thread:
/// apply it to the machine at a fixed time, publish, answer; returns the machine after `count`
/// commands.
fn spawn_driver(status: Arc<RelationshipStatus>, count: usize) -> std::thread::JoinHandle<Machine> {
    let (sender, mut receiver) =
        tokio::sync::mpsc::channel::<Command>(crate::failover::hooks::COMMANDS_QUEUE);
    status.attach_commands(sender);
    std::thread::spawn(move || {
        let machine_config = MachineConfig {
            name: "fo".into(),
            role: Role::Primary,
            mclt: 300,
            hba: Some(server_common::loadbalance::split_to_hba(128)),
            max_unacked_updates: 10,
            max_response_delay: 30,
            max_lease_misbalance: 15,
            max_lease_ownership: 10,
            min_balance: 60,
            max_balance: 3600,
            auto_partner_down: 0,
            vendor_class: b"xdhcpd-test".to_vec(),
        };
        let mut machine = Machine::new(
            machine_config,
            Some((ServerStateCode::Normal, NOW - 1000)),
            Some((ServerStateCode::Normal, NOW - 1000)),
            NOW - 20,
        );
        let mut bindings = MemoryBindings::default();
        for _ in 0..count {
            let Some(command) = receiver.blocking_recv() else {
                break;
            };
            let Some(state) = State::from_code(command.state, NOW, machine.mclt(), 0) else {
                continue;
            };
            machine.handle_command(NOW, state, &mut bindings);
            while machine.poll_event().is_some() {}
            let partner = machine.partner();
            status.publish(
                machine.state(),
                machine.stos(),
                partner.state,
                machine.mclt(),
                machine.hba(),
            );
            status.publish_counters(partner.since, machine.unacked());
            let _ = command.done.try_send(Ok(()));
        }
        machine
    })
}

#[test]
fn lookup_publishes_isc_attributes_in_order() {
    let config = config();
    let hooks = FailoverHooks::new(&config);
    let objects = FailoverStateObjects::new(&config, &hooks);
    assert!(objects.lookup(b"other").is_none());
    assert!(objects.lookup(b"FO").is_none(), "names are exact bytes");
    let values = objects.lookup(b"fo").expect("configured relationship");
    let names: Vec<&[u8]> = values.iter().map(|value| value.name.as_slice()).collect();
    let expected: [&[u8]; 19] = [
        b"name",
        b"partner-address",
        b"partner-port",
        b"local-address",
        b"local-port",
        b"max-outstanding-updates",
        b"mclt",
        b"load-balance-max-secs",
        b"load-balance-hba",
        b"partner-state",
        b"local-state",
        b"partner-stos",
        b"local-stos",
        b"hierarchy",
        b"last-packet-sent",
        b"last-timestamp-received",
        b"skew",
        b"max-response-delay",
        b"cur-unacked-updates",
    ];
    assert_eq!(names, expected);
    assert_eq!(
        find(&values, "name").map(|v| v.value.as_slice()),
        Some(&b"fo"[..])
    );
    assert_eq!(
        find(&values, "partner-address").map(|v| v.value.as_slice()),
        Some(&[10, 0, 0, 2][..])
    );
    assert_eq!(u32_of(&values, "partner-port"), Some(847));
    assert_eq!(
        find(&values, "local-address").map(|v| v.value.as_slice()),
        Some(&[10, 0, 0, 1][..])
    );
    assert_eq!(u32_of(&values, "local-port"), Some(647));
    assert_eq!(u32_of(&values, "max-outstanding-updates"), Some(10));
    assert_eq!(u32_of(&values, "mclt"), Some(300));
    assert_eq!(u32_of(&values, "load-balance-max-secs"), Some(3));
    // split 128: the primary's half of the buckets (docs/spec/failover.md §11.2).
    assert_eq!(
        find(&values, "load-balance-hba").map(|v| v.value.clone()),
        Some(server_common::loadbalance::split_to_hba(128).to_vec())
    );
    // Before the driver runs: STARTUP, partner unknown-state.
    assert_eq!(u32_of(&values, "local-state"), Some(1));
    assert_eq!(u32_of(&values, "partner-state"), Some(0));
    assert_eq!(u32_of(&values, "hierarchy"), Some(0));
    assert_eq!(u32_of(&values, "skew"), Some(0));
    assert_eq!(u32_of(&values, "max-response-delay"), Some(30));
    assert_eq!(u32_of(&values, "cur-unacked-updates"), Some(0));
}

#[test]
fn secondary_without_hba_omits_it_and_reports_hierarchy_1() {
    let config = crate::config::parse_str(
        "failover peer \"fo\" { secondary; address 10.0.0.2; peer address 10.0.0.1; \
         max-response-delay 30; max-unacked-updates 10; }\n\
         subnet 10.0.0.0 netmask 255.255.255.0 { pool { failover peer \"fo\"; \
         range 10.0.0.100 10.0.0.119; } }\n",
        "test.conf",
    )
    .expect("config");
    let hooks = FailoverHooks::new(&config);
    let values = FailoverStateObjects::new(&config, &hooks)
        .lookup(b"fo")
        .expect("configured");
    assert!(find(&values, "load-balance-hba").is_none());
    assert_eq!(values.len(), 18);
    assert_eq!(u32_of(&values, "hierarchy"), Some(1));
}

#[test]
fn set_local_state_forces_partner_down_through_the_driver() {
    let config = config();
    let hooks = FailoverHooks::new(&config);
    let objects = FailoverStateObjects::new(&config, &hooks);
    // No driver yet: nothing can carry the command out.
    assert_eq!(objects.set_local_state(b"fo", 4), Err(ResultCode::FAILURE));
    let driver = spawn_driver(hooks.relationships()[0].clone(), 2);

    // ISC's dhcp_failover_set_state(4): PARTNER-DOWN at once, STOS now.
    assert_eq!(objects.set_local_state(b"fo", 4), Ok(()));
    let values = objects.lookup(b"fo").expect("configured");
    assert_eq!(u32_of(&values, "local-state"), Some(4));
    assert_eq!(u32_of(&values, "local-stos"), Some(NOW));
    assert_eq!(u32_of(&values, "partner-state"), Some(2));
    assert_eq!(
        hooks.relationships()[0].state(),
        State::PartnerDown { since: NOW }
    );

    // Refused without reaching the machine: STARTUP, codes naming no state, other names.
    assert_eq!(
        objects.set_local_state(b"fo", 1),
        Err(ResultCode::INVALIDARG)
    );
    assert_eq!(
        objects.set_local_state(b"fo", 12),
        Err(ResultCode::INVALIDARG)
    );
    assert_eq!(
        objects.set_local_state(b"fo", 260),
        Err(ResultCode::INVALIDARG)
    );
    assert_eq!(objects.set_local_state(b"x", 4), Err(ResultCode::NOTFOUND));

    // Any other state number is forced as ISC does, e.g. RECOVER (6).
    assert_eq!(objects.set_local_state(b"fo", 6), Ok(()));
    assert_eq!(
        objects
            .lookup(b"fo")
            .and_then(|values| u32_of(&values, "local-state")),
        Some(6)
    );
    // The machine itself holds the last forced state.
    let machine = driver.join().expect("driver thread");
    assert_eq!(machine.state(), State::Recover);
}
