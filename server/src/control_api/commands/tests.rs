//! The commands against an in-memory backend: request JSON, store state and time in; answers
//! and the changes handed to `changes::apply` out.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::*;
use crate::lease::record::BindingState;

const NOW: UnixTime = 1_700_000_000;

struct Memory {
    config: Arc<Config>,
    leases: RefCell<BTreeMap<Ipv4Addr, Lease>>,
    hosts: RefCell<Vec<HostRecord>>,
    /// Every batch handed to `changes::apply`.
    applied: RefCell<Vec<Vec<Lease>>>,
    failover: bool,
    /// False for a backend whose leases are in a database.
    lease_file: bool,
}

impl Memory {
    fn new() -> Self {
        let config = crate::config::parse_str(
            "default-lease-time 600;\n\
             subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.50; }\n\
             subnet 10.0.1.0 netmask 255.255.255.0 { range 10.0.1.10 10.0.1.50; }\n\
             host printer { hardware ethernet 00:11:22:33:44:55; fixed-address 10.0.0.5; }\n",
            "test.conf",
        )
        .expect("parses");
        Self {
            config: Arc::new(config),
            leases: RefCell::default(),
            hosts: RefCell::default(),
            applied: RefCell::default(),
            failover: false,
            lease_file: true,
        }
    }

    fn with_active(self, address: [u8; 4], mac: [u8; 6]) -> Self {
        let address = Ipv4Addr::from(address);
        let mut lease = Lease::free(address);
        lease.binding_state = BindingState::Active;
        lease.starts = NOW - 100;
        lease.cltt = NOW - 100;
        lease.ends = NOW + 500;
        lease.hardware = Hardware::new(1, &mac);
        self.leases.borrow_mut().insert(address, lease);
        self
    }

    fn ask(&self, request: Value) -> Answer {
        let body = serde_json::to_vec(&request).expect("json");
        let mut answers = answer(self, &body, NOW);
        assert_eq!(answers.len(), 1, "{answers:?}");
        answers.remove(0)
    }
}

impl Backend for Memory {
    fn config(&self) -> Arc<Config> {
        self.config.clone()
    }

    fn lease(&self, address: Ipv4Addr) -> Option<Lease> {
        self.leases.borrow().get(&address).cloned()
    }

    fn leases(&self, keep: &dyn Fn(&Lease) -> bool) -> Vec<Lease> {
        self.leases
            .borrow()
            .values()
            .filter(|lease| keep(lease))
            .cloned()
            .collect()
    }

    fn change_leases(
        &self,
        addresses: &[Ipv4Addr],
        decide: &mut Decide<'_>,
    ) -> Result<Vec<Lease>, Answer> {
        let mut changed = Vec::new();
        let mut refused = None;
        for address in addresses {
            let current = self.leases.borrow().get(address).cloned();
            match decide(current.as_ref()) {
                Ok(Some(lease)) => {
                    if current.as_ref() != Some(&lease) {
                        self.leases.borrow_mut().insert(*address, lease.clone());
                        changed.push(lease);
                    }
                }
                Ok(None) => {}
                Err(answer) => {
                    refused = Some(answer);
                    break;
                }
            }
        }
        if !changed.is_empty() {
            self.applied.borrow_mut().push(changed.clone());
        }
        match refused {
            Some(answer) => Err(answer),
            None => Ok(changed),
        }
    }

    fn in_failover_pool(&self, _address: Ipv4Addr) -> bool {
        self.failover
    }

    fn default_lease_time(&self, address: Ipv4Addr) -> u32 {
        super::super::backend::default_lease_time(&self.config, address)
    }

    fn hosts(&self) -> Vec<HostRecord> {
        let dynamic = self.hosts.borrow();
        let mut hosts: Vec<HostRecord> = dynamic
            .iter()
            .filter(|host| !host.deleted)
            .cloned()
            .collect();
        for host in &self.config.hosts {
            if !dynamic.iter().any(|record| record.name == host.name) {
                hosts.push(HostRecord {
                    name: host.name.clone(),
                    hardware: host
                        .hardware
                        .as_ref()
                        .and_then(|hardware| Hardware::new(hardware.htype, &hardware.address)),
                    uid: host.client_id.clone(),
                    fixed_addresses: host.fixed_addresses.clone(),
                    ..HostRecord::default()
                });
            }
        }
        hosts
    }

    fn store_host(&self, record: HostRecord) -> Result<(), Answer> {
        let mut hosts = self.hosts.borrow_mut();
        hosts.retain(|host| host.name != record.name);
        hosts.push(record);
        Ok(())
    }

    fn test_config(&self, text: Option<&str>) -> Result<String, String> {
        match text {
            Some(text) => crate::config::parse_str(text, "dhcpd-conf")
                .map(|config| format!("{} subnets", config.subnets.len()))
                .map_err(|errors| errors.to_string()),
            None => Ok("file".into()),
        }
    }

    fn reload(&self) -> Result<String, String> {
        Ok("reloaded".into())
    }

    fn statistics(&self) -> Vec<(String, f64)> {
        vec![("xdhcpd_datagrams_received_total".into(), 7.0)]
    }

    fn status(&self, now: UnixTime) -> Value {
        json!({ "pid": 1, "uptime": now - NOW })
    }

    fn rewrite_lease_file(&self) -> Result<(), String> {
        if self.lease_file {
            Ok(())
        } else {
            Err("no lease file".into())
        }
    }
}

#[test]
fn lease_file_rewrite_starts_one_or_says_why_not() {
    let memory = Memory::new();
    let started = memory.ask(json!({ "command": "lease-file-rewrite" }));
    assert_eq!(started.result, 0, "{started:?}");
    let without_file = Memory {
        lease_file: false,
        ..Memory::new()
    };
    let refused = without_file.ask(json!({ "command": "lease-file-rewrite" }));
    assert_eq!(
        (refused.result, refused.text.as_str()),
        (1, "no lease file")
    );
}

#[test]
fn lease4_get_finds_an_active_lease_by_address_and_by_identifier() {
    let memory = Memory::new().with_active([10, 0, 0, 20], [1, 2, 3, 4, 5, 6]);
    let found = memory.ask(json!({
        "command": "lease4-get", "arguments": { "ip-address": "10.0.0.20" }
    }));
    assert_eq!(found.result, 0, "{found:?}");
    assert_eq!(found.text, "IPv4 lease found.");
    let lease = found.arguments.expect("lease");
    assert_eq!(lease["hw-address"], "01:02:03:04:05:06");
    assert_eq!(lease["valid-lft"], 600);
    assert_eq!(lease["subnet-id"], 1);
    let by_mac = memory.ask(json!({
        "command": "lease4-get",
        "arguments": { "identifier-type": "hw-address", "identifier": "01:02:03:04:05:06", "subnet-id": 1 }
    }));
    assert_eq!(by_mac.result, 0, "{by_mac:?}");
    let elsewhere = memory.ask(json!({
        "command": "lease4-get",
        "arguments": { "identifier-type": "hw-address", "identifier": "01:02:03:04:05:06", "subnet-id": 2 }
    }));
    assert_eq!(elsewhere.result, 3);
    let missing = memory.ask(json!({
        "command": "lease4-get", "arguments": { "ip-address": "10.0.0.21" }
    }));
    assert_eq!(
        (missing.result, missing.text.as_str()),
        (3, "Lease not found.")
    );
}

#[test]
fn lease4_get_by_hw_address_and_client_id_list_every_match() {
    let memory = Memory::new()
        .with_active([10, 0, 0, 20], [1, 2, 3, 4, 5, 6])
        .with_active([10, 0, 1, 20], [1, 2, 3, 4, 5, 6]);
    let found = memory.ask(json!({
        "command": "lease4-get-by-hw-address", "arguments": { "hw-address": "01:02:03:04:05:06" }
    }));
    assert_eq!(found.text, "2 IPv4 lease(s) found.");
    assert_eq!(
        found.arguments.expect("leases")["leases"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let none = memory.ask(json!({
        "command": "lease4-get-by-client-id", "arguments": { "client-id": "01:02" }
    }));
    assert_eq!(
        (none.result, none.text.as_str()),
        (3, "0 IPv4 lease(s) found.")
    );
}

#[test]
fn lease4_get_page_walks_the_leases_in_address_order() {
    let memory = Memory::new()
        .with_active([10, 0, 1, 20], [1, 1, 1, 1, 1, 3])
        .with_active([10, 0, 0, 30], [1, 1, 1, 1, 1, 2])
        .with_active([10, 0, 0, 20], [1, 1, 1, 1, 1, 1]);
    let first = memory.ask(json!({
        "command": "lease4-get-page", "arguments": { "from": "start", "limit": 2 }
    }));
    let arguments = first.arguments.expect("page");
    assert_eq!(arguments["count"], 2);
    assert_eq!(arguments["leases"][0]["ip-address"], "10.0.0.20");
    assert_eq!(arguments["leases"][1]["ip-address"], "10.0.0.30");
    let second = memory.ask(json!({
        "command": "lease4-get-page", "arguments": { "from": "10.0.0.30", "limit": 2 }
    }));
    let arguments = second.arguments.expect("page");
    assert_eq!(arguments["count"], 1);
    assert_eq!(arguments["leases"][0]["ip-address"], "10.0.1.20");
    let end = memory.ask(json!({
        "command": "lease4-get-page", "arguments": { "from": "10.0.1.20", "limit": 2 }
    }));
    assert_eq!(end.result, 3);
    let zero = memory.ask(json!({
        "command": "lease4-get-page", "arguments": { "from": "start", "limit": 0 }
    }));
    assert_eq!(zero.result, 1);
}

#[test]
fn lease4_add_stores_and_applies_a_lease_and_refuses_a_second() {
    let memory = Memory::new();
    let add = json!({
        "command": "lease4-add",
        "arguments": { "ip-address": "10.0.0.40", "hw-address": "1a:1b:1c:1d:1e:1f", "hostname": "pc" }
    });
    let added = memory.ask(add.clone());
    assert_eq!(
        (added.result, added.text.as_str()),
        (0, "Lease for address 10.0.0.40, subnet-id 1 added.")
    );
    let applied = memory.applied.borrow().clone();
    assert_eq!(applied.len(), 1);
    let lease = &applied[0][0];
    assert_eq!(lease.binding_state, BindingState::Active);
    // `default-lease-time 600` of the configuration, from now.
    assert_eq!((lease.starts, lease.ends), (NOW, NOW + 600));
    assert_eq!(lease.client_hostname(), Some("pc"));
    let again = memory.ask(add);
    assert_eq!(
        (again.result, again.text.as_str()),
        (4, "IPv4 lease already exists.")
    );
    assert_eq!(memory.applied.borrow().len(), 1);
    let outside = memory.ask(json!({
        "command": "lease4-add",
        "arguments": { "ip-address": "192.0.2.1", "hw-address": "1a:1b:1c:1d:1e:1f" }
    }));
    assert_eq!(outside.result, 1);
    let wrong_subnet = memory.ask(json!({
        "command": "lease4-add",
        "arguments": { "ip-address": "10.0.0.41", "hw-address": "1a:1b:1c:1d:1e:1f", "subnet-id": 2 }
    }));
    assert_eq!(wrong_subnet.result, 1);
}

#[test]
fn lease4_update_needs_a_lease_unless_forced() {
    let memory = Memory::new().with_active([10, 0, 0, 20], [1, 2, 3, 4, 5, 6]);
    let updated = memory.ask(json!({
        "command": "lease4-update",
        "arguments": { "ip-address": "10.0.0.20", "hw-address": "01:02:03:04:05:06", "valid-lft": 7200, "cltt": NOW }
    }));
    assert_eq!(
        (updated.result, updated.text.as_str()),
        (0, "IPv4 lease updated.")
    );
    assert_eq!(
        memory
            .lease(Ipv4Addr::new(10, 0, 0, 20))
            .expect("lease")
            .ends,
        NOW + 7200
    );
    let missing = memory.ask(json!({
        "command": "lease4-update",
        "arguments": { "ip-address": "10.0.0.21", "hw-address": "01:02:03:04:05:06" }
    }));
    assert_eq!(missing.result, 3);
    let forced = memory.ask(json!({
        "command": "lease4-update",
        "arguments": { "ip-address": "10.0.0.21", "hw-address": "01:02:03:04:05:06", "force-create": true, "state": 1 }
    }));
    assert_eq!(forced.result, 0, "{forced:?}");
    assert_eq!(
        memory
            .lease(Ipv4Addr::new(10, 0, 0, 21))
            .expect("lease")
            .binding_state,
        BindingState::Abandoned
    );
}

#[test]
fn lease4_del_and_wipe_give_the_addresses_back() {
    let mut memory = Memory::new()
        .with_active([10, 0, 0, 20], [1, 2, 3, 4, 5, 6])
        .with_active([10, 0, 0, 21], [1, 2, 3, 4, 5, 7])
        .with_active([10, 0, 1, 20], [1, 2, 3, 4, 5, 8]);
    let deleted = memory.ask(json!({
        "command": "lease4-del", "arguments": { "ip-address": "10.0.0.20" }
    }));
    assert_eq!(
        (deleted.result, deleted.text.as_str()),
        (0, "IPv4 lease deleted.")
    );
    let lease = memory.lease(Ipv4Addr::new(10, 0, 0, 20)).expect("record");
    assert_eq!((lease.binding_state, lease.ends), (BindingState::Free, NOW));
    let again = memory.ask(json!({
        "command": "lease4-del", "arguments": { "ip-address": "10.0.0.20" }
    }));
    assert_eq!(again.result, 3);
    memory.failover = true;
    let wiped = memory.ask(json!({ "command": "lease4-wipe", "arguments": { "subnet-id": 1 } }));
    assert_eq!(
        (wiped.result, wiped.text.as_str()),
        (0, "Deleted 1 IPv4 lease(s) from subnet(s) 1")
    );
    // Under failover the address waits for the partner's ack as RELEASED.
    assert_eq!(
        memory
            .lease(Ipv4Addr::new(10, 0, 0, 21))
            .expect("record")
            .binding_state,
        BindingState::Released
    );
    assert_eq!(
        memory
            .lease(Ipv4Addr::new(10, 0, 1, 20))
            .expect("record")
            .binding_state,
        BindingState::Active
    );
    let everything = memory.ask(json!({ "command": "lease4-wipe" }));
    assert_eq!(
        everything.text,
        "Deleted 1 IPv4 lease(s) from subnet(s) 1 2"
    );
}

#[test]
fn reservations_are_isc_hosts() {
    let memory = Memory::new();
    let added = memory.ask(json!({
        "command": "reservation-add",
        "arguments": { "reservation": {
            "subnet-id": 1, "hw-address": "aa:bb:cc:dd:ee:ff", "ip-address": "10.0.0.7", "hostname": "camera"
        } }
    }));
    assert_eq!((added.result, added.text.as_str()), (0, "Host added."));
    let host = memory.hosts.borrow()[0].clone();
    assert_eq!(host.name, "camera");
    assert_eq!(host.fixed_addresses, vec![Ipv4Addr::new(10, 0, 0, 7)]);
    assert_eq!(
        host.statements,
        vec!["option host-name \"camera\";".to_string()]
    );
    let found = memory.ask(json!({
        "command": "reservation-get",
        "arguments": { "subnet-id": 1, "identifier-type": "hw-address", "identifier": "aa:bb:cc:dd:ee:ff" }
    }));
    assert_eq!(found.result, 0, "{found:?}");
    let arguments = found.arguments.expect("host");
    assert_eq!(arguments["ip-address"], "10.0.0.7");
    assert_eq!(arguments["hostname"], "camera");
    assert_eq!(arguments["subnet-id"], 1);
    let duplicate = memory.ask(json!({
        "command": "reservation-add",
        "arguments": { "reservation": { "hw-address": "aa:bb:cc:dd:ee:ff" } }
    }));
    assert_eq!(duplicate.result, 1);
    // dhcpd.conf's host, by its fixed address.
    let configured = memory.ask(json!({
        "command": "reservation-get", "arguments": { "subnet-id": 1, "ip-address": "10.0.0.5" }
    }));
    assert_eq!(configured.result, 0);
    let deleted = memory.ask(json!({
        "command": "reservation-del", "arguments": { "subnet-id": 1, "ip-address": "10.0.0.5" }
    }));
    assert_eq!(
        (deleted.result, deleted.text.as_str()),
        (0, "Host deleted.")
    );
    assert!(memory
        .hosts
        .borrow()
        .iter()
        .any(|host| host.name == "printer" && host.deleted));
    let gone = memory.ask(json!({
        "command": "reservation-get", "arguments": { "subnet-id": 1, "ip-address": "10.0.0.5" }
    }));
    assert_eq!(gone.result, 3);
}

#[test]
fn malformed_requests_get_result_1_and_unknown_commands_result_2() {
    let memory = Memory::new();
    for (body, text) in [
        (&b"{not json"[..], "invalid JSON"),
        (b"[1,2]", "the request must be a JSON map"),
        (b"{\"arguments\": {}}", "'command' parameter missing"),
        (b"{\"command\": 5}", "'command' must be a string"),
        (
            b"{\"command\": \"lease4-get\", \"arguments\": {\"ip-address\": \"300.1.1.1\"}}",
            "'ip-address' is not an IPv4 address",
        ),
        (
            b"{\"command\": \"lease4-add\", \"arguments\": {\"ip-address\": \"10.0.0.9\"}}",
            "'hw-address' parameter not specified",
        ),
        (
            b"{\"command\": \"lease4-get\", \"arguments\": []}",
            "'arguments' must be a map",
        ),
    ] {
        let answers = answer(&memory, body, NOW);
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].result, 1, "{}", String::from_utf8_lossy(body));
        assert!(
            answers[0].text.contains(text),
            "{:?} lacks {text}",
            answers[0].text
        );
    }
    let unknown = memory.ask(json!({ "command": "subnet4-list" }));
    assert_eq!(
        (unknown.result, unknown.text.as_str()),
        (2, "'subnet4-list' command not supported.")
    );
    assert!(memory.applied.borrow().is_empty());
}

#[test]
fn one_answer_per_service_and_only_dhcp4_is_served() {
    let memory = Memory::new();
    let body = serde_json::to_vec(&json!({
        "command": "version-get", "service": ["dhcp4", "dhcp6"]
    }))
    .expect("json");
    let answers = answer(&memory, &body, NOW);
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0].result, 0);
    assert_eq!(answers[1].result, 1);
}

#[test]
fn daemon_commands_answer_in_keas_shapes() {
    let memory = Memory::new();
    let commands = memory.ask(json!({ "command": "list-commands" }));
    let list = commands.arguments.expect("list");
    assert!(list
        .as_array()
        .is_some_and(|list| list.contains(&json!("lease4-get-page"))));
    let statistics = memory.ask(json!({ "command": "statistic-get-all" }));
    let statistics = statistics.arguments.expect("statistics");
    assert_eq!(statistics["xdhcpd_datagrams_received_total"][0][0], 7);
    assert_eq!(
        statistics["xdhcpd_datagrams_received_total"][0][1],
        "2023-11-14 22:13:20.000000"
    );
    let test = memory.ask(json!({
        "command": "config-test", "arguments": { "dhcpd-conf": "subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.300; }" }
    }));
    assert_eq!(test.result, 1, "{test:?}");
    let sane = memory.ask(json!({ "command": "config-test" }));
    assert_eq!(sane.result, 0);
    assert_eq!(memory.ask(json!({ "command": "config-reload" })).result, 0);
    assert_eq!(memory.ask(json!({ "command": "status-get" })).result, 0);
}
