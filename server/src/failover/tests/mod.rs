//! Deterministic two-peer harness (STYLE.md §9, quinn's `Pair`): two [`Machine`]s wired by
//! in-memory byte queues through the real codec, virtual time, partitions that lose whatever is
//! in flight, tampered bytes, restarts from the persisted state. After every delivered message
//! and every client action the pair is checked: no address is bound to two clients.

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use super::body::Typed;
use super::codes::ServerStateCode;
use super::machine::{Bindings, Event, Machine, MachineConfig};
use super::memory::MemoryBindings;
use super::persist::{saved_state, state_record};
use super::rules::{expiry_state, grant, may_allocate, released_state, rewind_follows};
use super::states::{service, Role, Service, State};
use super::wire::StreamDecoder;
use crate::lease::record::{BindingState, Hardware, Lease, UnixTime};

const START: UnixTime = 1_795_836_305;
const MCLT: u32 = 300;
const LEASE_TIME: u32 = 600;
const LOW: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
const HIGH: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 119);

fn config(role: Role) -> MachineConfig {
    MachineConfig {
        name: "lab-fo".into(),
        role,
        mclt: if role == Role::Primary { MCLT } else { 0 },
        hba: Some(server_common::loadbalance::split_to_hba(128)),
        max_unacked_updates: 10,
        max_response_delay: 30,
        auto_partner_down: 0,
        vendor_class: b"xdhcpd-test".to_vec(),
    }
}

struct Node {
    machine: Machine,
    bindings: MemoryBindings,
    /// Alive = the process runs; a dead node neither sends nor serves.
    alive: bool,
    /// Persisted `failover peer … state` record (what a restart reads).
    saved: Vec<crate::lease::file::FailoverStateRecord>,
    decoder: StreamDecoder,
}

struct Pair {
    now: UnixTime,
    nodes: [Node; 2],
    /// Bytes in flight towards node i.
    wires: [VecDeque<Vec<u8>>; 2],
    connected: bool,
    partitioned: bool,
    /// Corrupt the next message sent by node i.
    tamper: [bool; 2],
    delivered: usize,
}

impl Pair {
    fn new() -> Self {
        let node = |role| Node {
            machine: Machine::new(config(role), None, None, START),
            bindings: MemoryBindings::new(LOW, HIGH),
            alive: true,
            saved: Vec::new(),
            decoder: StreamDecoder::new(),
        };
        Self {
            now: START,
            nodes: [node(Role::Primary), node(Role::Secondary)],
            wires: [VecDeque::new(), VecDeque::new()],
            connected: false,
            partitioned: false,
            tamper: [false, false],
            delivered: 0,
        }
    }

    fn state(&self, index: usize) -> ServerStateCode {
        self.nodes[index].machine.state().code()
    }

    fn connect(&mut self) {
        if self.connected || self.partitioned || !self.nodes.iter().all(|node| node.alive) {
            return;
        }
        self.connected = true;
        for node in &mut self.nodes {
            node.decoder = StreamDecoder::new();
            node.machine.handle_connected(self.now);
        }
        self.run();
    }

    /// The TCP connection ends for both ends (a partition loses the bytes in flight).
    fn disconnect(&mut self) {
        if !self.connected {
            return;
        }
        self.connected = false;
        self.wires = [VecDeque::new(), VecDeque::new()];
        for node in self.nodes.iter_mut().filter(|node| node.alive) {
            node.machine
                .handle_disconnected(self.now, &mut node.bindings);
        }
        self.collect();
    }

    /// Moves transmits onto the wires and handles events.
    fn collect(&mut self) {
        let mut close = false;
        for index in 0..2 {
            let node = &mut self.nodes[index];
            while let Some(message) = node.machine.poll_transmit() {
                let mut bytes = message.encode().expect("machine builds valid messages");
                if std::mem::take(&mut self.tamper[index]) {
                    bytes[0] = 0xff;
                }
                if self.connected && node.alive {
                    self.wires[1 - index].push_back(bytes);
                }
            }
            while let Some(event) = node.machine.poll_event() {
                match event {
                    Event::CloseConnection { .. } => close = true,
                    Event::StateChanged { .. } | Event::PartnerStateChanged { .. } => {
                        node.saved.push(state_record("lab-fo", &node.machine));
                    }
                    _ => {}
                }
            }
        }
        if close {
            self.disconnect();
        }
    }

    /// Delivers until both wires are empty.
    fn run(&mut self) {
        for _ in 0..100_000 {
            self.collect();
            let Some(index) = (0..2).find(|&index| !self.wires[index].is_empty()) else {
                return;
            };
            let Some(bytes) = self.wires[index].pop_front() else {
                return;
            };
            let node = &mut self.nodes[index];
            node.decoder.extend(&bytes);
            loop {
                match node.decoder.next_message() {
                    Ok(Some(message)) => {
                        let typed = Typed::from_message(&message).expect("valid message");
                        node.machine
                            .handle_message(self.now, typed, &mut node.bindings);
                        self.delivered += 1;
                    }
                    Ok(None) => break,
                    Err(_) => {
                        // A broken stream: the receiver closes the connection, like ISC.
                        self.disconnect();
                        return;
                    }
                }
            }
            self.check_invariant();
        }
        panic!("the pair never went quiet");
    }

    /// Advances virtual time second by second, firing timers.
    fn advance(&mut self, seconds: u32) {
        for _ in 0..seconds {
            self.now += 1;
            for node in self.nodes.iter_mut().filter(|node| node.alive) {
                if node.machine.poll_timeout().is_some_and(|at| at <= self.now) {
                    node.machine.handle_timeout(self.now, &mut node.bindings);
                }
            }
            self.run();
        }
    }

    fn kill(&mut self, index: usize) {
        self.nodes[index].alive = false;
        self.disconnect();
    }

    /// Restarts node `index` from its persisted state and leases.
    fn restart(&mut self, index: usize) {
        let role = if index == 0 {
            Role::Primary
        } else {
            Role::Secondary
        };
        let node = &mut self.nodes[index];
        let saved = saved_state(&node.saved, "lab-fo", self.now);
        let mut config = config(role);
        if let Some(mclt) = saved.mclt {
            config.mclt = mclt;
        }
        node.machine = Machine::new(config, saved.my_state, saved.partner_state, self.now);
        node.alive = true;
        self.collect();
    }

    fn command(&mut self, index: usize, state: State) {
        let node = &mut self.nodes[index];
        node.machine
            .handle_command(self.now, state, &mut node.bindings);
        self.run();
    }

    /// A client DORA (or renewal) against node `index`, the engine's failover rules applied:
    /// renew the client's lease, else allocate a lease this server may allocate (§8.2), lease
    /// time by the MCLT rule (§8.1), then BNDUPD.
    fn client(&mut self, index: usize, client: u8) -> Option<Ipv4Addr> {
        let now = self.now;
        let node = &mut self.nodes[index];
        if !node.alive {
            return None;
        }
        let machine = &node.machine;
        let partner = machine.partner().state;
        let serving = service(machine.state(), partner);
        if serving == Service::NotResponding {
            return None;
        }
        let hardware = Hardware::new(1, &[2, 0, 0, 0, 0, client])?;
        let existing = node.bindings.addresses().into_iter().find_map(|address| {
            let lease = node.bindings.lease(address)?;
            (lease.binding_state == BindingState::Active
                && lease.hardware == Some(hardware)
                && lease.ends > now)
                .then_some(lease)
        });
        let mut lease: Lease = match existing {
            Some(lease) => lease,
            None => node.bindings.addresses().into_iter().find_map(|address| {
                let lease = node.bindings.lease(address)?;
                may_allocate(&lease, machine.role(), machine.state(), machine.mclt(), now)
                    .then_some(lease)
            })?,
        };
        let terms = grant(LEASE_TIME, machine.mclt(), lease.tsfp, now);
        lease.binding_state = BindingState::Active;
        // Out of contact the rewind state stays what the partner last knew (§8.2).
        if rewind_follows(serving) {
            lease.rewind_binding_state = BindingState::Active;
        }
        lease.next_binding_state = BindingState::Expired;
        lease.hardware = Some(hardware);
        lease.starts = now;
        lease.cltt = now;
        lease.ends = now + terms.granted;
        lease.tstp = terms.tstp;
        lease.tsfp = terms.tsfp;
        let address = lease.address;
        node.bindings.update(lease);
        node.machine
            .handle_lease_change(now, address, &mut node.bindings);
        self.check_invariant();
        self.run();
        Some(address)
    }

    /// Client `client` releases its lease on node `index` (the engine's RELEASE, ISC
    /// `release_lease`): RELEASED until the partner acks, or straight back to the own free
    /// state out of contact when the partner never saw the binding.
    fn release(&mut self, index: usize, client: u8) -> Option<Ipv4Addr> {
        let now = self.now;
        let node = &mut self.nodes[index];
        if !node.alive {
            return None;
        }
        let serving = service(node.machine.state(), node.machine.partner().state);
        if serving == Service::NotResponding {
            return None;
        }
        let hardware = Hardware::new(1, &[2, 0, 0, 0, 0, client])?;
        let mut lease = node
            .bindings
            .leases
            .values()
            .find(|lease| {
                lease.binding_state == BindingState::Active
                    && lease.hardware == Some(hardware)
                    && lease.ends > now
            })?
            .clone();
        lease.binding_state = released_state(&lease, node.machine.role(), serving);
        lease.next_binding_state = match lease.binding_state {
            BindingState::Released => BindingState::Free,
            state => state,
        };
        lease.ends = now;
        lease.tstp = now;
        if rewind_follows(serving) {
            lease.rewind_binding_state = lease.binding_state;
        }
        let address = lease.address;
        node.bindings.update(lease);
        node.machine
            .handle_lease_change(now, address, &mut node.bindings);
        self.check_invariant();
        self.run();
        Some(address)
    }

    /// The expiry ticker on node `index` (the engine's `expire`, ISC `pool_timer`).
    fn expire(&mut self, index: usize) -> usize {
        let now = self.now;
        let node = &mut self.nodes[index];
        if !node.alive {
            return 0;
        }
        let serving = service(node.machine.state(), node.machine.partner().state);
        let due: Vec<Lease> = node
            .bindings
            .leases
            .values()
            .filter(|lease| lease.binding_state == BindingState::Active && lease.ends <= now)
            .cloned()
            .collect();
        let mut changed = 0;
        for mut lease in due {
            let Some(next) =
                expiry_state(&lease, node.machine.role(), node.machine.state(), serving)
            else {
                continue;
            };
            lease.binding_state = next;
            lease.next_binding_state = next;
            let address = lease.address;
            node.bindings.update(lease);
            node.machine
                .handle_lease_change(now, address, &mut node.bindings);
            changed += 1;
        }
        self.check_invariant();
        self.run();
        changed
    }

    /// No address is bound to two different clients across the pair.
    fn check_invariant(&self) {
        let [first, second] = &self.nodes;
        for (address, lease) in &first.bindings.leases {
            let Some(other) = second.bindings.leases.get(address) else {
                continue;
            };
            let bound = |lease: &Lease| {
                lease.binding_state == BindingState::Active && lease.ends > self.now
            };
            if bound(lease) && bound(other) {
                assert_eq!(
                    lease.hardware, other.hardware,
                    "{address} bound to two clients at {}",
                    self.now
                );
            }
        }
    }

    fn count(&self, index: usize, state: BindingState) -> usize {
        let bindings = &self.nodes[index].bindings;
        bindings
            .addresses()
            .into_iter()
            .filter(|&address| bindings.lease(address).map(|l| l.binding_state) == Some(state))
            .count()
    }
}

fn normal_pair() -> Pair {
    let mut pair = Pair::new();
    pair.connect();
    pair.advance(1);
    assert_eq!(pair.state(0), ServerStateCode::Normal);
    assert_eq!(pair.state(1), ServerStateCode::Normal);
    pair
}

#[test]
fn fresh_pair_reaches_normal_and_balances_pools() {
    let pair = normal_pair();
    // §10: the primary gave half its free leases to the secondary.
    assert_eq!(pair.count(0, BindingState::Backup), 10);
    assert_eq!(pair.count(1, BindingState::Backup), 10);
    assert_eq!(pair.count(0, BindingState::Free), 10);
    assert!(pair.nodes.iter().all(|node| node.machine.unacked() == 0));
    assert_eq!(
        pair.nodes[1].machine.mclt(),
        MCLT,
        "secondary learned the MCLT"
    );
    assert_eq!(
        pair.nodes[1].machine.hba(),
        Some(server_common::loadbalance::split_to_hba(128))
    );
}

#[test]
fn recovery_of_never_used_addresses_writes_nothing() {
    // Both fresh: RECOVER, UPDREQALL each way over 20 never-used addresses. Those answers
    // change no lease, so neither side writes (and fsyncs) them; only the balancing moves
    // (§10) are written — the secondary's 10 BACKUP leases, and on the primary each move,
    // its rewind state at the send and its acked tsfp.
    let pair = normal_pair();
    assert_eq!(pair.nodes[1].bindings.writes, 10);
    assert_eq!(pair.nodes[0].bindings.writes, 30);
    assert_eq!(pair.nodes[1].bindings.leases.len(), 10);
}

#[test]
fn leases_propagate_and_keepalives_hold_the_link() {
    let mut pair = normal_pair();
    let first = pair.client(0, 1).expect("primary serves");
    let second = pair.client(1, 2).expect("secondary serves");
    for (address, client) in [(first, 1), (second, 2)] {
        for node in &pair.nodes {
            let lease = node.bindings.lease(address).unwrap();
            assert_eq!(lease.binding_state, BindingState::Active);
            assert_eq!(lease.hardware.unwrap().address()[5], client);
        }
    }
    // First ACK is bounded by MCLT, the acked potential expiration allows the full time next.
    let lease = pair.nodes[0].bindings.lease(first).unwrap();
    assert_eq!(lease.ends, pair.now + MCLT);
    assert_eq!(lease.tsfp, lease.tstp);
    pair.advance(100);
    pair.client(0, 1);
    let lease = pair.nodes[0].bindings.lease(first).unwrap();
    assert_eq!(lease.ends, pair.now + LEASE_TIME);
    // Ten minutes of silence: CONTACTs keep the link up.
    pair.advance(600);
    assert!(pair.connected);
    assert_eq!(pair.state(0), ServerStateCode::Normal);
}

#[test]
fn partner_down_reclaims_after_mclt_then_recovers() {
    let mut pair = normal_pair();
    let address = pair.client(1, 7).expect("secondary serves");
    pair.kill(1);
    assert!(matches!(
        pair.nodes[0].machine.state(),
        State::CommunicationsInterrupted { .. }
    ));
    // COMM-INT: renewals and own free leases only.
    let renewed = pair.client(0, 7).expect("renewal served");
    assert_eq!(renewed, address);
    pair.command(0, State::PartnerDown { since: 0 });
    assert_eq!(pair.state(0), ServerStateCode::PartnerDown);
    // The secondary's BACKUP leases stay untouchable until STOS + MCLT (§8.2).
    let backup = pair.nodes[0]
        .bindings
        .addresses()
        .into_iter()
        .find(|&address| {
            pair.nodes[0]
                .bindings
                .lease(address)
                .map(|lease| lease.binding_state)
                == Some(BindingState::Backup)
        })
        .expect("a backup lease");
    let lease = pair.nodes[0].bindings.lease(backup).unwrap();
    let machine = &pair.nodes[0].machine;
    assert!(!may_allocate(
        &lease,
        Role::Primary,
        machine.state(),
        MCLT,
        pair.now + MCLT
    ));
    assert!(may_allocate(
        &lease,
        Role::Primary,
        machine.state(),
        MCLT,
        pair.now + MCLT + 1
    ));
    pair.advance(MCLT + 1);
    for client in 20..40 {
        pair.client(0, client);
    }
    assert_eq!(pair.count(0, BindingState::Backup), 0, "all reclaimed");
    // The secondary comes back: STARTUP → RECOVER → UPDREQALL → RECOVER-WAIT/DONE → NORMAL.
    pair.restart(1);
    pair.connect();
    pair.advance(MCLT + 20);
    assert_eq!(pair.state(0), ServerStateCode::Normal);
    assert_eq!(pair.state(1), ServerStateCode::Normal);
    // The secondary learned every binding the primary made while it was away.
    for client in 20..40u8 {
        let on_primary = pair.nodes[0].bindings.leases.values().find(|lease| {
            lease.binding_state == BindingState::Active
                && lease.hardware.map(|h| h.address()[5]) == Some(client)
        });
        if let Some(lease) = on_primary {
            let mirror = pair.nodes[1].bindings.lease(lease.address).unwrap();
            assert_eq!(mirror.binding_state, BindingState::Active);
            assert_eq!(mirror.hardware, lease.hardware);
        }
    }
}

#[test]
fn partition_then_partner_down_leads_to_potential_conflict_and_resolution() {
    let mut pair = normal_pair();
    pair.client(0, 1);
    pair.partitioned = true;
    pair.disconnect();
    for index in 0..2 {
        assert_eq!(
            pair.state(index),
            ServerStateCode::CommunicationsInterrupted
        );
    }
    // Each side keeps serving from its own pool only.
    let a = pair.client(0, 2).unwrap();
    let b = pair.client(1, 3).unwrap();
    assert_ne!(a, b);
    pair.command(0, State::PartnerDown { since: 0 });
    pair.advance(60);
    pair.partitioned = false;
    pair.connect();
    pair.advance(5);
    for index in 0..2 {
        assert_eq!(pair.state(index), ServerStateCode::Normal, "node {index}");
    }
    // Both now know both bindings.
    for (address, client) in [(a, 2), (b, 3)] {
        for node in &pair.nodes {
            let lease = node.bindings.lease(address).unwrap();
            assert_eq!(lease.hardware.unwrap().address()[5], client);
        }
    }
}

#[test]
fn tampered_stream_closes_and_reconnect_recovers() {
    let mut pair = normal_pair();
    pair.tamper[1] = true;
    pair.client(1, 9);
    assert!(!pair.connected, "a broken stream closes the link");
    assert_eq!(pair.state(0), ServerStateCode::CommunicationsInterrupted);
    pair.advance(5);
    pair.connect();
    pair.advance(2);
    assert_eq!(pair.state(0), ServerStateCode::Normal);
    assert_eq!(pair.state(1), ServerStateCode::Normal);
    assert!(pair.nodes.iter().all(|node| node.machine.queued() == 0));
}

#[test]
fn receive_timeout_when_partner_goes_silent() {
    let mut pair = normal_pair();
    // The secondary hangs: alive for TCP, but sends nothing.
    pair.nodes[1].alive = false;
    pair.advance(31);
    assert_eq!(pair.state(0), ServerStateCode::CommunicationsInterrupted);
}

#[test]
fn restart_resumes_saved_state() {
    let mut pair = normal_pair();
    pair.kill(1);
    pair.restart(1);
    assert!(matches!(
        pair.nodes[1].machine.state(),
        State::Startup {
            saved: ServerStateCode::Normal,
            ..
        }
    ));
    pair.connect();
    pair.advance(2);
    assert_eq!(pair.state(0), ServerStateCode::Normal);
    assert_eq!(pair.state(1), ServerStateCode::Normal);
    // Without the partner, STARTUP ends after 15 s in COMM-INT (saved NORMAL, §6.2).
    pair.kill(1);
    pair.restart(1);
    pair.advance(16);
    assert_eq!(pair.state(1), ServerStateCode::CommunicationsInterrupted);
}

/// Random clients, partitions and reconnects (no operator partner-down, so no take-over):
/// the invariant must hold throughout, and the pair must converge back to NORMAL.
#[test]
fn random_partitions_keep_addresses_unique() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut random = move |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    let mut pair = normal_pair();
    for _ in 0..2_000 {
        match random(20) {
            0 => {
                pair.partitioned = true;
                pair.disconnect();
            }
            1 => {
                pair.partitioned = false;
                pair.connect();
            }
            2..=4 => pair.advance(random(40) as u32),
            5 | 6 => {
                pair.release(random(2) as usize, random(30) as u8);
            }
            7 => {
                pair.expire(0);
                pair.expire(1);
            }
            _ => {
                pair.client(random(2) as usize, random(30) as u8);
            }
        }
    }
    pair.partitioned = false;
    pair.connect();
    pair.advance(5);
    assert_eq!(pair.state(0), ServerStateCode::Normal);
    assert_eq!(pair.state(1), ServerStateCode::Normal);
    assert!(pair.delivered > 1_000);
}

#[test]
fn persisted_record_is_isc_shaped() {
    let pair = normal_pair();
    let record = state_record("lab-fo", &pair.nodes[1].machine);
    let mut out = Vec::new();
    crate::lease::file::write_failover_state(&record, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("failover peer \"lab-fo\" state {"), "{text}");
    assert!(text.contains("my state normal at"), "{text}");
    assert!(text.contains("partner state normal at"), "{text}");
    assert!(text.contains("mclt 300;"), "{text}");
    let primary = state_record("lab-fo", &pair.nodes[0].machine);
    assert_eq!(primary.mclt, None, "only a secondary writes mclt");
    let parsed = crate::lease::file::parse(text.as_bytes(), "test");
    let saved = saved_state(&parsed.failover_states, "lab-fo", 0);
    assert_eq!(
        saved.my_state.map(|(state, _)| state),
        Some(ServerStateCode::Normal)
    );
    assert_eq!(saved.mclt, Some(MCLT));
}

/// Our CONNECT is ISC's (docs/spec/failover.md §4.1 [lab]) byte for byte once the vendor class matches,
/// and an ISC CONNECT gets CONNECTACK (xid echoed, TLS-reply 0) then STATE; bad ones get
/// ISC's reject reasons.
#[test]
fn connect_matches_isc_and_rejects_like_isc() {
    use super::body::{Body, Connect};
    use super::codes::RejectReason;
    let isc_connect_time = 0x6b0a_497b;
    let mut primary_config = config(Role::Primary);
    primary_config.vendor_class = b"isc-4.4.3-P1".to_vec();
    let mut primary = Machine::new(primary_config, None, None, isc_connect_time);
    primary.handle_connected(isc_connect_time);
    let connect = primary.poll_transmit().expect("primary sends CONNECT");
    let expected = "006c050c6b0a497b00000000001600066c61622d666f000e00040000000a\
        00130004 0000001e001c000c6973632d342e342e332d5031001400010 1001b000100000f00040000012c\
        000b0020ffffffffffffffffffffffffffffffff00000000000000000000000000000000";
    let expected: Vec<u8> = expected
        .split_whitespace()
        .collect::<String>()
        .as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect();
    assert_eq!(connect.encode().unwrap(), expected);

    let answer = |connect: Connect, time: UnixTime| {
        let mut secondary = Machine::new(config(Role::Secondary), None, None, START);
        let mut bindings = MemoryBindings::new(LOW, HIGH);
        secondary.handle_connected(START);
        let message = Typed::new(time, 7, Body::Connect(connect));
        secondary.handle_message(START, message, &mut bindings);
        let mut out = Vec::new();
        while let Some(message) = secondary.poll_transmit() {
            out.push(message);
        }
        out
    };
    let Body::Connect(good) = connect.body else {
        panic!("not a CONNECT")
    };
    let replies = answer(good.clone(), START);
    let Body::ConnectAck(ack) = &replies[0].body else {
        panic!("no CONNECTACK")
    };
    assert_eq!(replies[0].xid, 7);
    assert_eq!(ack.reject_reason, None);
    assert_eq!(ack.tls_reply, Some(0));
    assert!(matches!(replies[1].body, Body::State(_)));
    let reject = |connect: Connect, time| match &answer(connect, time)[0].body {
        Body::ConnectAck(ack) => ack.reject_reason,
        _ => None,
    };
    let mut wrong_name = good.clone();
    wrong_name.relationship_name = Some(b"nope".to_vec());
    assert_eq!(
        reject(wrong_name, START),
        Some(RejectReason::InvalidPartner)
    );
    assert_eq!(
        reject(good.clone(), START + 61),
        Some(RejectReason::TimeMismatch)
    );
    let mut short_hba = good.clone();
    short_hba.hba = Some(vec![0xff; 31]);
    assert_eq!(reject(short_hba, START), Some(RejectReason::HbaConflict));
    let mut no_mclt = good;
    no_mclt.mclt = None;
    assert_eq!(reject(no_mclt, START), Some(RejectReason::InvalidMclt));
}

/// Graceful stop (docs/spec/failover.md §6.2 "Administrative", ISC `dhcp_io_shutdown_countdown`): the
/// stopping server goes NORMAL → SHUTDOWN and says so; its partner, in NORMAL, answers a
/// partner in SHUTDOWN by taking over (§6.3: → PARTNER-DOWN).
#[test]
fn shutdown_tells_the_partner_which_takes_over() {
    let mut pair = normal_pair();
    pair.command(0, State::Shutdown);
    assert_eq!(pair.state(0), ServerStateCode::Shutdown);
    assert_eq!(pair.state(1), ServerStateCode::PartnerDown);
    assert_eq!(
        pair.nodes[1].machine.partner().state,
        Some(ServerStateCode::Shutdown)
    );
}

/// Out of contact (COMMUNICATIONS-INTERRUPTED) a lease bound meanwhile goes straight back to
/// its owner's free state when released or expired (ISC `release_lease`, `pool_timer`,
/// docs/spec/failover.md §8.2), so it can serve the next client at once; a lease the partner saw bound
/// is RELEASED / EXPIRED and becomes free on the partner's ack after reconnecting. The
/// secondary in NORMAL leaves expiry to the primary (§8.3).
#[test]
fn comm_int_release_and_expiry_return_leases_to_their_owner() {
    let mut pair = normal_pair();
    let seen = pair.client(0, 1).expect("bound in NORMAL");
    let seen_secondary = pair.client(1, 2).expect("secondary binds");
    pair.partitioned = true;
    pair.disconnect();
    assert_eq!(pair.state(0), ServerStateCode::CommunicationsInterrupted);
    // Bound while out of contact, released: FREE again, and the next client may have it.
    let unseen = pair.client(0, 3).expect("own FREE lease");
    assert_eq!(pair.release(0, 3), Some(unseen));
    assert_eq!(
        pair.nodes[0].bindings.lease(unseen).unwrap().binding_state,
        BindingState::Free
    );
    assert_eq!(pair.client(0, 4), Some(unseen), "reusable at once");
    // Seen by the partner: RELEASED, not reusable until the partner acks.
    assert_eq!(pair.release(0, 1), Some(seen));
    assert_eq!(
        pair.nodes[0].bindings.lease(seen).unwrap().binding_state,
        BindingState::Released
    );
    // The secondary expires its lease itself while out of contact; it was seen → EXPIRED.
    let unseen_secondary = pair.client(1, 5).expect("own BACKUP lease");
    pair.advance(LEASE_TIME + 1);
    pair.expire(0);
    pair.expire(1);
    let state = |pair: &Pair, index: usize, address| {
        pair.nodes[index]
            .bindings
            .lease(address)
            .unwrap()
            .binding_state
    };
    assert_eq!(state(&pair, 1, seen_secondary), BindingState::Expired);
    assert_eq!(state(&pair, 1, unseen_secondary), BindingState::Backup);
    assert_eq!(state(&pair, 0, unseen), BindingState::Free);
    // Reconnect: the partner acks RELEASED / EXPIRED, both become FREE on both sides.
    pair.partitioned = false;
    pair.connect();
    pair.advance(5);
    assert_eq!(pair.state(0), ServerStateCode::Normal);
    assert_eq!(pair.state(1), ServerStateCode::Normal);
    for address in [seen, seen_secondary] {
        for index in 0..2 {
            assert_eq!(
                state(&pair, index, address),
                BindingState::Free,
                "{address}"
            );
        }
    }
    // NORMAL again: the secondary leaves expiry to the primary.
    let bound = pair.client(1, 6).expect("secondary binds");
    pair.advance(LEASE_TIME + 1);
    assert_eq!(pair.expire(1), 0);
    assert_eq!(state(&pair, 1, bound), BindingState::Active);
    assert_eq!(
        pair.expire(0),
        1,
        "the primary expires it and tells the secondary"
    );
    assert_eq!(state(&pair, 0, bound), BindingState::Free);
    assert_eq!(state(&pair, 1, bound), BindingState::Free);
}
