//! [`Engine::store_network`] against what the engine does: the same exchanges run once with
//! one store holding every lease and once with the store in two shards (one per shared
//! network of [`base_config`]), each request handed only the shard the rule names. Wherever
//! the rule named the wrong network the second run would miss a lease (no ACK, another
//! address, a lease changed in the wrong shard) and the two runs would differ.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode};

use super::*;
use crate::config::model::SharedNetworkId;
use crate::engine::Outcome;
use crate::lease::record::Lease;
use crate::lease::shards::ShardedStore;

const RELAY: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const MAC_C: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];

/// One received packet: the message, its UDP source, the receiving interface's address.
struct Step {
    message: Message,
    source: SocketAddrV4,
    interface: Option<Ipv4Addr>,
}

fn direct(message: Message) -> Step {
    let source = match message.ciaddr() {
        ciaddr if ciaddr.is_unspecified() => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
        ciaddr => SocketAddrV4::new(ciaddr, 68),
    };
    Step {
        message,
        source,
        interface: Some(INTERFACE),
    }
}

fn relayed(mut message: Message) -> Step {
    message.set_giaddr(RELAY).set_hops(1);
    Step {
        message,
        source: SocketAddrV4::new(RELAY, 67),
        interface: Some(INTERFACE),
    }
}

fn with_ciaddr(mut message: Message, ciaddr: Ipv4Addr) -> Message {
    message.set_ciaddr(ciaddr);
    message
}

/// What a decision says, reply bytes included.
fn summary(decision: &Decision) -> String {
    let reply = decision
        .reply
        .as_ref()
        .map(|reply| (reply.encode().ok(), reply.destination));
    format!("{:?} {:?} {:?}", decision.outcome, decision.commit, reply)
}

/// The two stores, side by side.
struct Twins {
    engine: Engine,
    whole: LeaseStore,
    sharded: ShardedStore,
}

impl Twins {
    fn new() -> Self {
        let config = Arc::new(base_config(true));
        Self {
            engine: Engine::new(config.clone()),
            whole: LeaseStore::new(&config),
            sharded: ShardedStore::new(config, 2),
        }
    }

    /// Runs `step` on both; returns the (identical) decision and the shard the rule chose.
    fn run(&mut self, now: u32, step: &Step) -> (Decision, Option<SharedNetworkId>) {
        let request = Request {
            message: &step.message,
            source: step.source,
            interface_address: step.interface,
            raw: None,
        };
        let reference = self.engine.handle(
            now,
            &Snapshot::default(),
            &request,
            &mut self.whole,
            &mut StarvationState::default(),
        );
        let network = self.engine.store_network(&request);
        let shard = self.sharded.layout().of_network(network);
        let decision = {
            let mut store = self.sharded.lock(shard).expect("shard");
            self.engine.handle(
                now,
                &Snapshot::default(),
                &request,
                &mut store,
                &mut StarvationState::default(),
            )
        };
        assert_eq!(
            summary(&decision),
            summary(&reference),
            "{:?} decided differently in shard {shard}",
            step.message.opts().msg_type()
        );
        (decision, network)
    }

    /// Every lease of the sharded store is in its shard, and the two stores hold the same.
    fn assert_same_leases(&self) {
        let layout = self.sharded.layout();
        let mut sharded = Vec::new();
        self.sharded
            .for_each(|index, shard| {
                for lease in shard.iter() {
                    assert_eq!(index, layout.of_address(lease.address), "{lease:?}");
                    sharded.push(lease.clone());
                }
            })
            .expect("store");
        let mut whole: Vec<Lease> = self.whole.iter().cloned().collect();
        sharded.sort_by_key(|lease| lease.address);
        whole.sort_by_key(|lease| lease.address);
        assert_eq!(sharded, whole);
    }
}

#[test]
fn every_message_type_is_decided_in_the_shard_the_rule_names() {
    let local = Some(SharedNetworkId(0));
    let behind_relay = Some(SharedNetworkId(1));
    let mut twins = Twins::new();
    let mut now = NOW;
    let mut next = || {
        now += 1;
        now
    };

    // A: DISCOVER and SELECTING on the local wire, network 0.
    let (offer, network) = twins.run(next(), &direct(client(MessageType::Discover, MAC_A)));
    assert_eq!(network, local);
    let a = yiaddr(&offer).expect("offer");
    let (ack, network) = twins.run(next(), &direct(selecting(MAC_A, a, INTERFACE)));
    assert_eq!((ack.outcome, network), (Outcome::Acked(a), local));

    // B: the same through the relay, network 1.
    let (offer, network) = twins.run(next(), &relayed(client(MessageType::Discover, MAC_B)));
    assert_eq!(network, behind_relay);
    let b = yiaddr(&offer).expect("offer");
    let (ack, _) = twins.run(next(), &relayed(selecting(MAC_B, b, INTERFACE)));
    assert_eq!(ack.outcome, Outcome::Acked(b));

    // B renews by unicast, without giaddr, arriving on the local interface: the engine looks
    // up ciaddr's network (1), not the packet's (0).
    let renewing = with_ciaddr(client(MessageType::Request, MAC_B), b);
    let (ack, network) = twins.run(next(), &direct(renewing));
    assert_eq!((ack.outcome, network), (Outcome::Acked(b), behind_relay));

    // A rebinds through the relay of the other network: checked against the packet's network
    // and NAKed, nothing changed.
    let rebinding = with_ciaddr(client(MessageType::Request, MAC_A), a);
    let (nak, network) = twins.run(next(), &relayed(rebinding));
    assert_eq!((nak.outcome, network), (Outcome::Nacked, behind_relay));

    // INIT-REBOOT on the local wire for an address of network 1: wrong network.
    let init_reboot = with(
        client(MessageType::Request, MAC_A),
        DhcpOption::RequestedIpAddress(b),
    );
    let (nak, network) = twins.run(next(), &direct(init_reboot));
    assert_eq!((nak.outcome, network), (Outcome::Nacked, local));

    // C is offered an address through the relay, then names another server in its REQUEST:
    // ISC 4.4 (server-id-check off, its default) serves it like any other, in network 1's
    // shard.
    let (offer, _) = twins.run(next(), &relayed(client(MessageType::Discover, MAC_C)));
    let c = yiaddr(&offer).expect("offer");
    let elsewhere = selecting(MAC_C, c, Ipv4Addr::new(10, 9, 9, 9));
    let (served, network) = twins.run(next(), &relayed(elsewhere));
    assert_eq!(network, behind_relay);
    assert_eq!(served.outcome, Outcome::Acked(c));

    // INFORM from B's address, received on the local interface: B's lease chooses the scope.
    let inform = with_ciaddr(client(MessageType::Inform, MAC_B), b);
    let (informed, network) = twins.run(next(), &direct(inform));
    assert_eq!(
        (informed.outcome, network),
        (Outcome::Informed, behind_relay)
    );

    // B declines its address, A releases its own: each in the shard of the address.
    let decline = with(
        client(MessageType::Decline, MAC_B),
        DhcpOption::RequestedIpAddress(b),
    );
    let (declined, network) = twins.run(next(), &direct(decline));
    assert_eq!(
        (declined.outcome, network),
        (Outcome::Declined(b), behind_relay)
    );
    let release = with_ciaddr(client(MessageType::Release, MAC_A), a);
    let (released, network) = twins.run(next(), &relayed(release));
    assert_eq!((released.outcome, network), (Outcome::Released(a), local));

    // A moves to the relayed network: a new address there.
    let (offer, network) = twins.run(next(), &relayed(client(MessageType::Discover, MAC_A)));
    assert_eq!(network, behind_relay);
    let moved = yiaddr(&offer).expect("offer");
    let (ack, _) = twins.run(next(), &relayed(selecting(MAC_A, moved, INTERFACE)));
    assert_eq!(ack.outcome, Outcome::Acked(moved));

    // What touches no lease names no network.
    let mut reply = client(MessageType::Discover, MAC_C);
    reply.set_opcode(Opcode::BootReply);
    let (_, network) = twins.run(next(), &direct(reply));
    assert_eq!(network, None);
    let (_, network) = twins.run(next(), &direct(client(MessageType::Offer, MAC_C)));
    assert_eq!(network, None);
    // A BOOTP request goes by the packet's network, like a DISCOVER.
    let unspecified = Ipv4Addr::UNSPECIFIED;
    let bootp = Message::new_with_id(
        0x1234,
        unspecified,
        unspecified,
        unspecified,
        unspecified,
        &MAC_C,
    );
    let (_, network) = twins.run(next(), &relayed(bootp));
    assert_eq!(network, behind_relay);

    twins.assert_same_leases();
}

/// Where sharding differs from one store (DESIGN.md "Scaling the store"): a client with
/// leases on two shared networks in different shards finds, on each, its lease of that
/// network, as ISC's `find_lease` does by walking the hardware hash chain; one store indexes
/// only its most recent binding and the client got a new address instead.
#[test]
fn a_client_back_on_a_network_finds_its_lease_of_that_network() {
    let config = Arc::new(base_config(true));
    let engine = Engine::new(config.clone());
    let sharded = ShardedStore::new(config, 2);
    let run = |now: u32, step: &Step| {
        let request = Request {
            message: &step.message,
            source: step.source,
            interface_address: step.interface,
            raw: None,
        };
        let shard = sharded.layout().of_network(engine.store_network(&request));
        let mut store = sharded.lock(shard).expect("shard");
        engine.handle(
            now,
            &Snapshot::default(),
            &request,
            &mut store,
            &mut StarvationState::default(),
        )
    };
    let offer = run(NOW, &direct(client(MessageType::Discover, MAC_A)));
    let local = yiaddr(&offer).expect("offer");
    let _ = run(NOW, &direct(selecting(MAC_A, local, INTERFACE)));
    let offer = run(NOW + 1, &relayed(client(MessageType::Discover, MAC_A)));
    let remote = yiaddr(&offer).expect("offer");
    let _ = run(NOW + 1, &relayed(selecting(MAC_A, remote, INTERFACE)));
    // Back on the local wire: the same address as before.
    let again = run(NOW + 2, &direct(client(MessageType::Discover, MAC_A)));
    assert_eq!(yiaddr(&again), Some(local));
}
