//! Deterministic two-peer harness (STYLE.md §9, quinn's `Pair`): two servers, each the real
//! [`Engine`] over a real [`LeaseStore`] with a [`Machine`] over that store, wired by in-memory
//! byte queues through the real codec, virtual time, partitions that lose whatever is in flight,
//! tampered bytes, restarts from the persisted state. Each node is driven as the daemon drives
//! it: the machine's state is published into [`FailoverHooks`] and copied into the engine's
//! view before every decision; committed leases go to the machine through the hooks' change
//! channel (`crate::changes`); the machine changes the store through [`StoreBindings`]. After
//! every delivered message and every client action the pair is checked: no address is bound to
//! two clients.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use tokio::sync::mpsc::Receiver;

use super::bindings::{relationship_ranges, StoreBindings};
use super::body::Typed;
use super::codes::ServerStateCode;
use super::hooks::FailoverHooks;
use super::machine::{Event, Machine, MachineConfig};
use super::memory::MemoryBindings;
use super::persist::{saved_state, state_record};
use super::rules::may_allocate;
use super::states::{Role, State};
use super::wire::StreamDecoder;
use crate::config::model::Config;
use crate::engine::starvation::StarvationState;
use crate::engine::{Decision, Engine, Outcome, Request, Snapshot};
use crate::lease::record::{BindingState, Lease, UnixTime};
use crate::lease::shards::ShardedStore;

const START: UnixTime = 1_795_836_305;
const MCLT: u32 = 300;
const LEASE_TIME: u32 = 600;
const LOW: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
const HIGH: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 119);
/// `load balance max seconds`; clients here have waited longer (`secs` above it), so that
/// either server answers their DISCOVER in NORMAL (docs/spec/failover.md §11.3).
const LOAD_BALANCE_MAX_SECONDS: u16 = 3;

fn config(role: Role) -> MachineConfig {
    MachineConfig {
        name: "lab-fo".into(),
        role,
        mclt: if role == Role::Primary { MCLT } else { 0 },
        hba: Some(server_common::loadbalance::split_to_hba(128)),
        max_unacked_updates: 10,
        max_response_delay: 30,
        max_lease_misbalance: 15,
        max_lease_ownership: 10,
        min_balance: 60,
        max_balance: 3600,
        auto_partner_down: 0,
        vendor_class: b"xdhcpd-test".to_vec(),
    }
}

/// The address each server has on the pool's subnet (the interface its clients arrive on).
fn interface(role: Role) -> Ipv4Addr {
    match role {
        Role::Primary => Ipv4Addr::new(10, 99, 0, 1),
        Role::Secondary => Ipv4Addr::new(10, 99, 0, 2),
    }
}

/// The dhcpd.conf of each server: one failover pool `LOW..=HIGH`, leases of `LEASE_TIME`.
fn server_config(role: Role) -> Config {
    let (me, partner) = (
        interface(role),
        interface(match role {
            Role::Primary => Role::Secondary,
            Role::Secondary => Role::Primary,
        }),
    );
    let peer = match role {
        Role::Primary => {
            format!("primary; address {me}; peer address {partner}; mclt {MCLT}; split 128;")
        }
        Role::Secondary => format!("secondary; address {me}; peer address {partner};"),
    };
    let text = format!(
        "authoritative;\ndefault-lease-time {LEASE_TIME};\nmax-lease-time {LEASE_TIME};\n\
         failover peer \"lab-fo\" {{ {peer} max-response-delay 30; max-unacked-updates 10; \
         load balance max seconds {LOAD_BALANCE_MAX_SECONDS}; }}\n\
         subnet 10.99.0.0 netmask 255.255.255.0 {{ pool {{ failover peer \"lab-fo\"; \
         range {LOW} {HIGH}; }} }}\n"
    );
    let mut config = crate::config::parse_str(&text, "pair.conf").expect("config");
    // A 20-address pool is in its starvation reserve after 18 leases; the reserve would hold
    // back these (unknown, never retransmitting) clients, which is not what is tested here.
    config.starvation.enabled = false;
    config
}

struct Node {
    role: Role,
    machine: Machine,
    engine: Engine,
    /// One shard: the harness runs one shared network.
    store: ShardedStore,
    starvation: StarvationState,
    /// The relationship's shared state, as the daemon's driver publishes it.
    hooks: FailoverHooks,
    /// Committed leases handed to the driver (`FailoverHooks::leases_changed`).
    changes: Receiver<Ipv4Addr>,
    ranges: Vec<(u32, u32)>,
    /// Leases the machine wrote through its bindings (what its driver makes durable).
    writes: usize,
    /// Alive = the process runs; a dead node neither sends nor serves.
    alive: bool,
    /// Persisted `failover peer … state` record (what a restart reads).
    saved: Vec<crate::lease::file::FailoverStateRecord>,
    decoder: StreamDecoder,
}

impl Node {
    fn new(role: Role) -> Self {
        let server = server_config(role);
        let hooks = FailoverHooks::new(&server);
        let (sender, changes) = tokio::sync::mpsc::channel(crate::failover::hooks::CHANGES_QUEUE);
        hooks.relationships()[0].attach(sender);
        let node = Self {
            role,
            machine: Machine::new(config(role), None, None, START),
            store: ShardedStore::new(Arc::new(server.clone()), 1),
            starvation: StarvationState::default(),
            hooks,
            changes,
            ranges: relationship_ranges(&server, "lab-fo"),
            engine: Engine::new(Arc::new(server)),
            writes: 0,
            alive: true,
            saved: Vec::new(),
            decoder: StreamDecoder::new(),
        };
        node.publish();
        node
    }

    /// What the driver publishes after each step (`failover::peer`).
    fn publish(&self) {
        let partner = self.machine.partner();
        self.hooks.relationships()[0].publish(
            self.machine.state(),
            self.machine.stos(),
            partner.state,
            self.machine.mclt(),
            self.machine.hba(),
        );
    }

    /// One machine step over the store, as the driver runs it.
    fn step<R>(&mut self, step: impl FnOnce(&mut Machine, &mut StoreBindings<'_>) -> R) -> R {
        let mut bindings = StoreBindings::new(&self.store, &self.ranges);
        let result = step(&mut self.machine, &mut bindings);
        self.writes += bindings.into_written().len();
        self.publish();
        result
    }

    /// The engine's decision on `message`, with the failover state copied for it as the
    /// daemon's worker copies it for a batch.
    fn dhcp(&mut self, now: UnixTime, message: &Message) -> Decision {
        let snapshot = Snapshot::of_failover(self.hooks.view());
        let request = Request {
            message,
            source: SocketAddrV4::new(message.ciaddr(), 68),
            interface_address: Some(interface(self.role)),
            raw: None,
        };
        self.engine.handle(
            now,
            &snapshot,
            &request,
            &mut self.store.lock(0).expect("store"),
            &mut self.starvation,
        )
    }

    /// Applies changed leases as `crate::changes::apply` does for a failover pool: the driver
    /// hears of them and the machine sends BNDUPDs (docs/spec/failover.md §7.2).
    fn apply(&mut self, now: UnixTime, changed: &[Lease]) {
        self.hooks.leases_changed(changed);
        while let Ok(address) = self.changes.try_recv() {
            self.step(|machine, bindings| machine.handle_lease_change(now, address, bindings));
        }
        if self.hooks.relationships()[0].take_changes_lost() {
            self.step(|machine, bindings| machine.handle_lost_changes(now, bindings));
        }
    }

    /// The store's lease of `address`; a never-used pool address is FREE.
    fn lease(&self, address: Ipv4Addr) -> Lease {
        self.store
            .lock(0)
            .expect("store")
            .get(address)
            .cloned()
            .unwrap_or_else(|| Lease::free(address))
    }

    fn addresses(&self) -> Vec<Ipv4Addr> {
        (u32::from(LOW)..=u32::from(HIGH))
            .map(Ipv4Addr::from)
            .collect()
    }
}

/// A client message of `kind` from client number `client`, which has waited past
/// `load balance max seconds`.
fn client_message(kind: MessageType, client: u8) -> Message {
    let unspecified = Ipv4Addr::UNSPECIFIED;
    let mut message = Message::new_with_id(
        0x5000 + u32::from(client),
        unspecified,
        unspecified,
        unspecified,
        unspecified,
        &client_mac(client),
    );
    message.set_secs(LOAD_BALANCE_MAX_SECONDS + 7);
    message.opts_mut().insert(DhcpOption::MessageType(kind));
    message
}

fn client_mac(client: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, client]
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
        Self {
            now: START,
            nodes: [Node::new(Role::Primary), Node::new(Role::Secondary)],
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
            node.publish();
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
        let now = self.now;
        for node in self.nodes.iter_mut().filter(|node| node.alive) {
            node.step(|machine, bindings| machine.handle_disconnected(now, bindings));
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
            let now = self.now;
            let node = &mut self.nodes[index];
            node.decoder.extend(&bytes);
            loop {
                match node.decoder.next_message() {
                    Ok(Some(message)) => {
                        let typed = Typed::from_message(&message).expect("valid message");
                        node.step(|machine, bindings| machine.handle_message(now, typed, bindings));
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
            let now = self.now;
            for node in self.nodes.iter_mut().filter(|node| node.alive) {
                if node.machine.poll_timeout().is_some_and(|at| at <= now) {
                    node.step(|machine, bindings| machine.handle_timeout(now, bindings));
                }
            }
            self.run();
        }
    }

    fn kill(&mut self, index: usize) {
        self.nodes[index].alive = false;
        self.disconnect();
    }

    /// Restarts node `index` from its persisted state; its leases are the store's (the lease
    /// file the daemon would read back).
    fn restart(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        let saved = saved_state(&node.saved, "lab-fo", self.now);
        let mut config = config(node.role);
        if let Some(mclt) = saved.mclt {
            config.mclt = mclt;
        }
        node.machine = Machine::new(config, saved.my_state, saved.partner_state, self.now);
        node.alive = true;
        node.publish();
        self.collect();
    }

    fn command(&mut self, index: usize, state: State) {
        let now = self.now;
        self.nodes[index].step(|machine, bindings| machine.handle_command(now, state, bindings));
        self.run();
    }

    /// Client `client` asks node `index` for a lease, DHCPDISCOVER then DHCPREQUEST, through
    /// the real engine (its own lease again if it has one: a renewal). Returns the address
    /// ACKed, if the node answered.
    fn client(&mut self, index: usize, client: u8) -> Option<Ipv4Addr> {
        let now = self.now;
        let node = &mut self.nodes[index];
        if !node.alive {
            return None;
        }
        let offer = node.dhcp(now, &client_message(MessageType::Discover, client));
        let Outcome::Offered(offered) = offer.outcome else {
            return None;
        };
        let server_id = offer.reply.as_ref().and_then(|reply| {
            match reply.decoded().opts().get(OptionCode::ServerIdentifier) {
                Some(DhcpOption::ServerIdentifier(id)) => Some(*id),
                _ => None,
            }
        })?;
        let mut request = client_message(MessageType::Request, client);
        request
            .opts_mut()
            .insert(DhcpOption::RequestedIpAddress(offered));
        request
            .opts_mut()
            .insert(DhcpOption::ServerIdentifier(server_id));
        let ack = node.dhcp(now, &request);
        let Outcome::Acked(address) = ack.outcome else {
            return None;
        };
        node.apply(now, &ack.commit);
        self.check_invariant();
        self.run();
        Some(address)
    }

    /// Client `client` releases its lease on node `index` (DHCPRELEASE through the engine,
    /// ISC `release_lease`): RELEASED until the partner acks, or straight back to the own free
    /// state out of contact when the partner never saw the binding.
    fn release(&mut self, index: usize, client: u8) -> Option<Ipv4Addr> {
        let now = self.now;
        let node = &mut self.nodes[index];
        if !node.alive {
            return None;
        }
        let hardware = crate::lease::record::Hardware::new(1, &client_mac(client))?;
        let bound = node
            .store
            .lock(0)
            .expect("store")
            .iter()
            .find(|lease| {
                lease.binding_state == BindingState::Active
                    && lease.hardware == Some(hardware)
                    && lease.ends > now
            })
            .map(|lease| lease.address)?;
        let mut release = client_message(MessageType::Release, client);
        release.set_ciaddr(bound);
        release
            .opts_mut()
            .insert(DhcpOption::ServerIdentifier(interface(node.role)));
        let decision = node.dhcp(now, &release);
        let Outcome::Released(address) = decision.outcome else {
            return None;
        };
        node.apply(now, &decision.commit);
        self.check_invariant();
        self.run();
        Some(address)
    }

    /// The expiry ticker on node `index` (`Engine::expire`, ISC `pool_timer`), its changes
    /// applied as the daemon applies them. Returns how many leases changed.
    fn expire(&mut self, index: usize) -> usize {
        let now = self.now;
        let node = &mut self.nodes[index];
        if !node.alive {
            return 0;
        }
        let view = node.hooks.view();
        let changed = node
            .engine
            .expire(now, &view, &mut node.store.lock(0).expect("store"));
        node.apply(now, &changed);
        self.check_invariant();
        self.run();
        changed.len()
    }

    /// No address is bound to two different clients across the pair.
    fn check_invariant(&self) {
        let [first, second] = &self.nodes;
        let (first, second) = (
            first.store.lock(0).expect("store"),
            second.store.lock(0).expect("store"),
        );
        for lease in first.iter() {
            let Some(other) = second.get(lease.address) else {
                continue;
            };
            let bound = |lease: &Lease| {
                lease.binding_state == BindingState::Active && lease.ends > self.now
            };
            if bound(lease) && bound(other) {
                assert_eq!(
                    lease.hardware, other.hardware,
                    "{} bound to two clients at {}",
                    lease.address, self.now
                );
            }
        }
    }

    fn count(&self, index: usize, state: BindingState) -> usize {
        let node = &self.nodes[index];
        node.addresses()
            .into_iter()
            .filter(|&address| node.lease(address).binding_state == state)
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
    assert_eq!(pair.nodes[1].writes, 10);
    assert_eq!(pair.nodes[0].writes, 30);
    assert_eq!(pair.nodes[1].store.lock(0).expect("store").len(), 10);
}

#[test]
fn leases_propagate_and_keepalives_hold_the_link() {
    let mut pair = normal_pair();
    let first = pair.client(0, 1).expect("primary serves");
    let second = pair.client(1, 2).expect("secondary serves");
    for (address, client) in [(first, 1), (second, 2)] {
        for node in &pair.nodes {
            let lease = node.lease(address);
            assert_eq!(lease.binding_state, BindingState::Active);
            assert_eq!(lease.hardware.unwrap().address()[5], client);
        }
    }
    // First ACK is bounded by MCLT, the acked potential expiration allows the full time next.
    let lease = pair.nodes[0].lease(first);
    assert_eq!(lease.ends, pair.now + MCLT);
    assert_eq!(lease.tsfp, lease.tstp);
    pair.advance(100);
    pair.client(0, 1);
    let lease = pair.nodes[0].lease(first);
    assert_eq!(lease.ends, pair.now + LEASE_TIME);
    // Ten minutes of silence: CONTACTs keep the link up.
    pair.advance(600);
    assert!(pair.connected);
    assert_eq!(pair.state(0), ServerStateCode::Normal);
}

#[test]
fn a_change_dropped_by_a_full_queue_still_reaches_the_partner() {
    let mut pair = normal_pair();
    // A burst fills the driver's queue (hooks::CHANGES_QUEUE) before the client is bound.
    let filler = [Lease::free(HIGH)];
    for _ in 0..crate::failover::hooks::CHANGES_QUEUE {
        pair.nodes[0].hooks.leases_changed(&filler);
    }
    let address = pair.client(0, 1).expect("primary serves");
    assert_eq!(pair.nodes[0].hooks.relationships()[0].changes_dropped(), 1);
    // The driver queued every unacknowledged lease again: the partner has the binding.
    let lease = pair.nodes[1].lease(address);
    assert_eq!(lease.binding_state, BindingState::Active);
    assert_eq!(lease.hardware.unwrap().address()[5], 1);
    assert!(!pair.nodes[0].hooks.relationships()[0].take_changes_lost());
}

/// ISC's MAC address affinity (`dhcp_failover_process_bind_update`): a lease released by a
/// client of the secondary's half comes back FREE to the primary, which hands it straight to
/// the secondary (BACKUP), the server that client will ask next; the pool stays balanced.
#[test]
fn released_leases_go_back_to_the_server_of_their_clients_half() {
    let mut pair = normal_pair();
    let hba = server_common::loadbalance::split_to_hba(128);
    let secondary_clients: Vec<u8> = (1..=255u8)
        .filter(|client| {
            !server_common::loadbalance::hba_has(
                &hba,
                server_common::loadbalance::bucket(&client_mac(*client)),
            )
        })
        .take(8)
        .collect();
    for &client in &secondary_clients {
        pair.client(1, client).expect("the secondary serves");
    }
    pair.advance(2);
    for &client in &secondary_clients {
        pair.release(1, client).expect("released");
    }
    pair.advance(2);
    let count = |pair: &Pair, index: usize, state: BindingState| {
        pair.nodes[index]
            .addresses()
            .into_iter()
            .filter(|address| pair.nodes[index].lease(*address).binding_state == state)
            .count()
    };
    // Without affinity the primary would hold 18 FREE leases against 2 BACKUP.
    assert_eq!(count(&pair, 0, BindingState::Free), 10);
    assert_eq!(count(&pair, 1, BindingState::Backup), 10);
    for index in 0..2 {
        let returned: Vec<u8> = pair.nodes[index]
            .addresses()
            .into_iter()
            .map(|address| pair.nodes[index].lease(address))
            .filter(|lease| lease.binding_state == BindingState::Backup)
            .filter_map(|lease| lease.hardware.map(|hardware| hardware.address()[5]))
            .collect();
        assert_eq!(returned.len(), 8, "node {index}");
        assert!(returned
            .iter()
            .all(|client| secondary_clients.contains(client)));
    }
    // The balancing timer (within max-balance) finds nothing to move.
    pair.advance(3_700);
    assert_eq!(count(&pair, 0, BindingState::Free), 10);
    assert_eq!(count(&pair, 1, BindingState::Backup), 10);
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
        .addresses()
        .into_iter()
        .find(|&address| pair.nodes[0].lease(address).binding_state == BindingState::Backup)
        .expect("a backup lease");
    let lease = pair.nodes[0].lease(backup);
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
        let primary_store = pair.nodes[0].store.lock(0).expect("store");
        let on_primary = primary_store.iter().find(|lease| {
            lease.binding_state == BindingState::Active
                && lease.hardware.map(|h| h.address()[5]) == Some(client)
        });
        if let Some(lease) = on_primary {
            let mirror = pair.nodes[1].lease(lease.address);
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
            let lease = node.lease(address);
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
    let mut acked = 0;
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
                if pair.client(random(2) as usize, random(30) as u8).is_some() {
                    acked += 1;
                }
            }
        }
    }
    pair.partitioned = false;
    pair.connect();
    pair.advance(5);
    assert_eq!(pair.state(0), ServerStateCode::Normal);
    assert_eq!(pair.state(1), ServerStateCode::Normal);
    assert!(pair.delivered > 1_000);
    assert!(acked > 500, "the engines answered {acked} client exchanges");
}

#[test]
fn persisted_record_is_isc_shaped() {
    let pair = normal_pair();
    let record = state_record("lab-fo", &pair.nodes[1].machine);
    let mut out = Vec::new();
    crate::lease::file::write_failover_state(&record, Default::default(), &mut out);
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
        pair.nodes[0].lease(unseen).binding_state,
        BindingState::Free
    );
    // The allocator hands out the lease free the longest first (ISC's free queue): new
    // clients reach the released one within the primary's free leases.
    let reused = (4..20).find(|&client| pair.client(0, client) == Some(unseen));
    assert!(reused.is_some(), "reusable at once");
    // Seen by the partner: RELEASED, not reusable until the partner acks.
    assert_eq!(pair.release(0, 1), Some(seen));
    assert_eq!(
        pair.nodes[0].lease(seen).binding_state,
        BindingState::Released
    );
    // The secondary expires its lease itself while out of contact; it was seen → EXPIRED.
    let unseen_secondary = pair.client(1, 5).expect("own BACKUP lease");
    pair.advance(LEASE_TIME + 1);
    pair.expire(0);
    pair.expire(1);
    let state = |pair: &Pair, index: usize, address| pair.nodes[index].lease(address).binding_state;
    assert_eq!(state(&pair, 1, seen_secondary), BindingState::Expired);
    assert_eq!(state(&pair, 1, unseen_secondary), BindingState::Backup);
    assert_eq!(state(&pair, 0, unseen), BindingState::Free);
    // Reconnect: the partner acks RELEASED / EXPIRED, both become FREE on both sides — or
    // BACKUP when the last client hashes to the secondary (ISC's MAC address affinity).
    pair.partitioned = false;
    pair.connect();
    pair.advance(5);
    assert_eq!(pair.state(0), ServerStateCode::Normal);
    assert_eq!(pair.state(1), ServerStateCode::Normal);
    let hba = server_common::loadbalance::split_to_hba(128);
    for address in [seen, seen_secondary] {
        let client = pair.nodes[0]
            .lease(address)
            .hardware
            .expect("last client")
            .address()
            .to_vec();
        let expected = if server_common::loadbalance::hba_has(
            &hba,
            server_common::loadbalance::bucket(&client),
        ) {
            BindingState::Free
        } else {
            BindingState::Backup
        };
        for index in 0..2 {
            assert_eq!(state(&pair, index, address), expected, "{address}");
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
