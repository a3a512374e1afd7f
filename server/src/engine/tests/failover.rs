//! Failover lease rules in the engine (docs/spec/failover.md §8.2, §8.3, §11.3), with the relationship's
//! state published as a driver would and fixed times: who allocates which free address in each
//! state, release and expiry out of contact, the "peer has no free leases" exception to load
//! balancing, and REQUESTs for leases the partner owns.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, MessageType};

use super::*;
use crate::config::model::FailoverPeerConfig;
use crate::engine::{IgnoreReason, Outcome};
use crate::failover::codes::ServerStateCode;
use crate::failover::states::State;
use crate::failover::view::{FailoverView, RelationshipView};
use crate::lease::record::{BindingState, Lease};

const MCLT: u32 = 300;
/// Bucket 135 (docs/spec/failover.md §11.2): the secondary's with `split 128`.
const SECONDARY_BUCKET_MAC: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
/// Bucket 118: the primary's.
const PRIMARY_BUCKET_MAC: [u8; 6] = [0x6a, 0xd9, 0x3e, 0xff, 0xef, 0xc7];

fn pool_address(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, last)
}

/// [`base_config`] with pool 0 (10.0.0.100–109) in relationship "fo"; load balancing on
/// (`split 128`, `load balance max seconds 3`).
fn failover_config(primary: bool) -> Config {
    let mut config = base_config(true);
    // These tests drive the 10-address pool into its last addresses on purpose; the starvation
    // reserve (engine::starvation, tested on its own) would hold back unknown clients there.
    config.starvation.enabled = false;
    config.scopes[0].default_lease_time = Some(600);
    config.pools[0].failover_peer = Some("fo".into());
    config.failover_peers.push(FailoverPeerConfig {
        name: "fo".into(),
        primary,
        address: None,
        port: 647,
        peer_address: None,
        peer_port: 647,
        max_response_delay: 30,
        max_unacked_updates: 10,
        mclt: MCLT,
        hba: primary.then(|| server_common::loadbalance::split_to_hba(128)),
        load_balance_max_seconds: 3,
        max_lease_misbalance: 15,
        max_lease_ownership: 10,
        min_balance: 60,
        max_balance: 3600,
        auto_partner_down: 0,
    });
    config
}

/// A harness whose relationship is run by a (pretend) driver, in `state`.
struct Pair {
    harness: Harness,
}

impl Pair {
    fn new(primary: bool, state: State) -> Self {
        let harness = Harness::new(failover_config(primary));
        let mut pair = Self { harness };
        pair.publish(state);
        pair
    }

    /// The relationship in `state` (which carries its start time), as the worker copies it
    /// for the engine from what the driver published.
    fn publish(&mut self, state: State) {
        let partner = match state {
            State::Normal => Some(ServerStateCode::Normal),
            _ => Some(ServerStateCode::CommunicationsInterrupted),
        };
        let config = self.harness.engine.config().clone();
        self.harness.failover = FailoverView {
            relationships: vec![RelationshipView {
                attached: true,
                state,
                partner,
                mclt: MCLT,
                hba: Some(server_common::loadbalance::split_to_hba(128)),
                ..RelationshipView::unattached(&config.failover_peers[0])
            }],
        };
    }

    fn store(&mut self, address: Ipv4Addr, state: BindingState) {
        let mut lease = Lease::free(address);
        lease.binding_state = state;
        lease.next_binding_state = state;
        lease.rewind_binding_state = state;
        self.harness.leases.upsert(lease);
    }

    /// DISCOVER with `secs` 0 (load balancing applies).
    fn discover(&mut self, now: u32, mac: [u8; 6]) -> Decision {
        self.harness
            .handle(now, &client(MessageType::Discover, mac))
    }

    fn state_of(&self, address: Ipv4Addr) -> Option<BindingState> {
        self.harness
            .leases
            .get(address)
            .map(|lease| lease.binding_state)
    }
}

fn mac(last: u8) -> [u8; 6] {
    // Buckets do not matter where these are used: every one is primary-owned or the test
    // leaves the partner without free leases; see the load-balancing test for that rule.
    [0x02, 0, 0, 0, 1, last]
}

fn comm_int(since: u32) -> State {
    State::CommunicationsInterrupted {
        since,
        auto_partner_down_at: None,
    }
}

/// §8.2: the primary allocates FREE (never-used included) in NORMAL and COMM-INT; the
/// secondary's BACKUP leases only in PARTNER-DOWN once STOS + MCLT has passed.
#[test]
fn primary_takes_backup_leases_only_after_partner_down_plus_mclt() {
    let mut pair = Pair::new(true, State::Normal);
    for last in 100..=104 {
        pair.store(pool_address(last), BindingState::Backup);
    }
    // No load balancing in these steps: the secondary holds BACKUP leases, so the exception
    // does not apply; use clients waiting longer than `load balance max seconds`.
    let mut bound = Vec::new();
    for client_index in 0..5 {
        let mut discover = client(MessageType::Discover, mac(client_index));
        discover.set_secs(10);
        let offer = pair.harness.handle(NOW, &discover);
        let address = yiaddr(&offer).expect("own FREE lease offered");
        assert!(
            u32::from(address) >= u32::from(pool_address(105)),
            "{address}"
        );
        let ack = pair
            .harness
            .handle(NOW, &selecting(mac(client_index), address, INTERFACE));
        assert_eq!(ack.outcome, Outcome::Acked(address));
        bound.push(address);
    }
    let mut late = client(MessageType::Discover, mac(50));
    late.set_secs(10);
    // Own pool exhausted: NORMAL and COMM-INT never touch the partner's BACKUP leases.
    assert_eq!(
        pair.harness.handle(NOW, &late).outcome,
        Outcome::Ignored(IgnoreReason::NoFreeAddress)
    );
    pair.publish(comm_int(NOW));
    assert_eq!(
        pair.harness.handle(NOW + 10, &late).outcome,
        Outcome::Ignored(IgnoreReason::NoFreeAddress)
    );
    // PARTNER-DOWN from T: nothing of the partner's until T + MCLT has passed.
    let since = NOW + 20;
    pair.publish(State::PartnerDown { since });
    assert_eq!(
        pair.harness.handle(since + MCLT, &late).outcome,
        Outcome::Ignored(IgnoreReason::NoFreeAddress)
    );
    let offer = pair.harness.handle(since + MCLT + 1, &late);
    assert_eq!(offer.outcome, Outcome::Offered(pool_address(100)));
}

/// §8.2 from the secondary's side: BACKUP only (never the never-used addresses, which are the
/// primary's FREE leases), the primary's FREE ones in PARTNER-DOWN after the wait; a FREE lease
/// whose tsfp is later than STOS waits for tsfp + MCLT.
#[test]
fn secondary_allocates_backup_then_free_after_the_wait() {
    let mut pair = Pair::new(false, State::Normal);
    pair.store(pool_address(104), BindingState::Backup);
    let mut first = client(MessageType::Discover, mac(1));
    first.set_secs(10);
    assert_eq!(
        pair.harness.handle(NOW, &first).outcome,
        Outcome::Offered(pool_address(104))
    );
    let ack = pair
        .harness
        .handle(NOW, &selecting(mac(1), pool_address(104), INTERFACE));
    assert_eq!(ack.outcome, Outcome::Acked(pool_address(104)));
    let mut second = client(MessageType::Discover, mac(2));
    second.set_secs(10);
    assert_eq!(
        pair.harness.handle(NOW, &second).outcome,
        Outcome::Ignored(IgnoreReason::NoFreeAddress),
        "the primary's FREE leases are not the secondary's"
    );
    let since = NOW + 10;
    pair.publish(State::PartnerDown { since });
    assert_eq!(
        pair.harness.handle(since + 100, &second).outcome,
        Outcome::Ignored(IgnoreReason::NoFreeAddress)
    );
    let offer = pair.harness.handle(since + MCLT + 1, &second);
    assert_eq!(offer.outcome, Outcome::Offered(pool_address(100)));

    // A stored FREE lease whose tsfp lies after STOS: tsfp + MCLT rules (ISC
    // `lease_mine_to_reallocate`). Fill the never-used addresses first.
    let mut pair = Pair::new(false, State::PartnerDown { since });
    for last in 100..=109 {
        pair.store(pool_address(last), BindingState::Active);
    }
    let mut late_free = Lease::free(pool_address(107));
    late_free.tsfp = since + 1000;
    pair.harness.leases.upsert(late_free);
    assert_eq!(
        pair.harness.handle(since + MCLT + 1, &second).outcome,
        Outcome::Ignored(IgnoreReason::NoFreeAddress)
    );
    assert_eq!(
        pair.harness
            .handle(since + 1000 + MCLT + 1, &second)
            .outcome,
        Outcome::Offered(pool_address(107))
    );
}

/// §11.3: in NORMAL a DISCOVER in the partner's bucket is left to the partner, unless the
/// partner holds no lease in its free state in the shared network.
#[test]
fn partner_without_free_leases_cancels_load_balancing() {
    let mut pair = Pair::new(true, State::Normal);
    // The secondary has no BACKUP lease: the primary answers a secondary-bucket client.
    let offer = pair.discover(NOW, SECONDARY_BUCKET_MAC);
    assert!(matches!(offer.outcome, Outcome::Offered(_)), "{offer:?}");
    pair.store(pool_address(109), BindingState::Backup);
    assert_eq!(
        pair.discover(NOW + 1, SECONDARY_BUCKET_MAC).outcome,
        Outcome::Ignored(IgnoreReason::NotForUs)
    );
    assert!(matches!(
        pair.discover(NOW + 1, PRIMARY_BUCKET_MAC).outcome,
        Outcome::Offered(_)
    ));

    // The kernel's balancer cannot see shared networks: it is told to stand aside.
    let store = &pair.harness.leases;
    assert!(!pair
        .harness
        .engine
        .partner_short_of_free_leases(&pair.harness.failover, store));
    let empty = Pair::new(true, State::Normal);
    assert!(empty
        .harness
        .engine
        .partner_short_of_free_leases(&empty.harness.failover, &empty.harness.leases));

    // The secondary: the primary's free leases include the never-used addresses.
    let mut pair = Pair::new(false, State::Normal);
    pair.store(pool_address(100), BindingState::Backup);
    assert_eq!(
        pair.discover(NOW, PRIMARY_BUCKET_MAC).outcome,
        Outcome::Ignored(IgnoreReason::NotForUs)
    );
    for last in 101..=109 {
        pair.store(pool_address(last), BindingState::Active);
    }
    assert_eq!(
        pair.discover(NOW, PRIMARY_BUCKET_MAC).outcome,
        Outcome::Offered(pool_address(100))
    );
}

/// §8.2 / ISC `release_lease`: in NORMAL a release is RELEASED (tstp = now) until the
/// partner acks; in COMM-INT a lease bound while out of contact (the partner last knew it
/// FREE) goes straight back to FREE and can be given to the next client.
#[test]
fn release_in_normal_waits_for_the_partner_in_comm_int_returns_to_free() {
    let mut pair = Pair::new(true, State::Normal);
    let ack = bind(&mut pair.harness, NOW, PRIMARY_BUCKET_MAC);
    let address = yiaddr(&ack).expect("bound");
    let mut release = client(MessageType::Release, PRIMARY_BUCKET_MAC);
    release.set_ciaddr(address);
    let decision = pair.harness.handle(NOW + 10, &release);
    assert_eq!(decision.outcome, Outcome::Released(address));
    let lease = &decision.commit[0];
    assert_eq!(lease.binding_state, BindingState::Released);
    assert_eq!(lease.rewind_binding_state, BindingState::Released);
    assert_eq!(lease.tstp, NOW + 10);
    // Not anyone's until the partner acks.
    let mut other = client(MessageType::Discover, mac(7));
    other.set_secs(10);
    assert_ne!(
        yiaddr(&pair.harness.handle(NOW + 11, &other)),
        Some(address)
    );

    let mut pair = Pair::new(true, comm_int(NOW - 100));
    let ack = bind(&mut pair.harness, NOW, PRIMARY_BUCKET_MAC);
    let address = yiaddr(&ack).expect("bound in COMM-INT");
    assert_eq!(ack.commit[0].rewind_binding_state, BindingState::Free);
    let decision = pair.harness.handle(NOW + 10, &release_of(address));
    assert_eq!(decision.commit[0].binding_state, BindingState::Free);
    assert_eq!(pair.state_of(address), Some(BindingState::Free));
    // A lease the partner saw ACTIVE (bound in NORMAL) is RELEASED even in COMM-INT.
    let mut pair = Pair::new(true, State::Normal);
    let ack = bind(&mut pair.harness, NOW, PRIMARY_BUCKET_MAC);
    let address = yiaddr(&ack).expect("bound");
    // A server that does not serve (RECOVER) ignores a release (ISC `dhcprelease`).
    pair.publish(State::Recover);
    let decision = pair.harness.handle(NOW + 3, &release_of(address));
    assert_eq!(decision.outcome, Outcome::Ignored(IgnoreReason::NotForUs));
    pair.publish(comm_int(NOW + 5));
    let decision = pair.harness.handle(NOW + 10, &release_of(address));
    assert_eq!(decision.commit[0].binding_state, BindingState::Released);
    assert_eq!(
        decision.commit[0].rewind_binding_state,
        BindingState::Active
    );
}

fn release_of(address: Ipv4Addr) -> dhcproto::v4::Message {
    let mut release = client(MessageType::Release, PRIMARY_BUCKET_MAC);
    release.set_ciaddr(address);
    release
}

/// §8.3 / ISC `pool_timer`: a secondary in NORMAL leaves expiry of active leases to the
/// primary; out of contact it expires them itself, a lease the partner never saw bound going
/// straight back to its own free state.
#[test]
fn expiry_follows_pool_timer() {
    let mut pair = Pair::new(false, State::Normal);
    pair.store(pool_address(100), BindingState::Backup);
    let ack = bind(&mut pair.harness, NOW, SECONDARY_BUCKET_MAC);
    let address = yiaddr(&ack).expect("bound");
    let ends = ack.commit[0].ends;
    let changed = pair.harness.expire(ends + 1);
    assert!(changed.is_empty(), "the primary expires it");
    assert_eq!(pair.state_of(address), Some(BindingState::Active));
    pair.publish(comm_int(ends + 2));
    let changed = pair.harness.expire(ends + 3);
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].binding_state, BindingState::Expired);

    // Primary in COMM-INT: bound while out of contact → back to FREE at expiry.
    let mut pair = Pair::new(true, comm_int(NOW - 100));
    let ack = bind(&mut pair.harness, NOW, PRIMARY_BUCKET_MAC);
    let address = yiaddr(&ack).expect("bound");
    let ends = ack.commit[0].ends;
    let changed = pair.harness.expire(ends);
    assert_eq!(changed.len(), 1);
    assert_eq!(pair.state_of(address), Some(BindingState::Free));
    // Primary in NORMAL: EXPIRED, waiting for the partner's ack.
    let mut pair = Pair::new(true, State::Normal);
    let ack = bind(&mut pair.harness, NOW, PRIMARY_BUCKET_MAC);
    let address = yiaddr(&ack).expect("bound");
    let ends = ack.commit[0].ends;
    pair.harness.expire(ends);
    assert_eq!(pair.state_of(address), Some(BindingState::Expired));
}

/// §8.2 / ISC `dhcprequest`: a REQUEST for a FREE/BACKUP lease this server may not allocate is
/// the partner's to answer (silence), a RESET lease is NAKed; a DISCOVER naming such an
/// address gets another one.
#[test]
fn requests_for_partner_owned_leases() {
    let mut pair = Pair::new(false, State::Normal);
    pair.store(pool_address(105), BindingState::Backup);
    // A RESET lease of this very client (ISC's `find_lease` only passes the client's own).
    let mut reset = Lease::free(pool_address(106));
    reset.binding_state = BindingState::Reset;
    reset.hardware = crate::lease::record::Hardware::new(1, &SECONDARY_BUCKET_MAC);
    pair.harness.leases.upsert(reset);
    let init_reboot = |address| {
        with(
            client(MessageType::Request, SECONDARY_BUCKET_MAC),
            DhcpOption::RequestedIpAddress(address),
        )
    };
    // 10.0.0.100 is never used: FREE, the primary's.
    let decision = pair.harness.handle(NOW, &init_reboot(pool_address(100)));
    assert_eq!(decision.outcome, Outcome::Ignored(IgnoreReason::NotForUs));
    assert_eq!(
        pair.harness
            .handle(NOW, &init_reboot(pool_address(106)))
            .outcome,
        Outcome::Nacked
    );
    let decision = pair.harness.handle(NOW, &init_reboot(pool_address(105)));
    assert_eq!(decision.outcome, Outcome::Acked(pool_address(105)));
    // DISCOVER asking for the primary's address: offered our own instead.
    let mut pair = Pair::new(false, State::Normal);
    pair.store(pool_address(105), BindingState::Backup);
    let discover = with(
        client(MessageType::Discover, SECONDARY_BUCKET_MAC),
        DhcpOption::RequestedIpAddress(pool_address(100)),
    );
    assert_eq!(
        pair.harness.handle(NOW, &discover).outcome,
        Outcome::Offered(pool_address(105))
    );
}

/// Abandoned leases of a failover pool (docs/spec/failover.md §7.1, §8.2, §8.3; ISC
/// `allocate_lease`, `lease_mine_to_reallocate`, `pool_timer`, `dhcpdecline`): the last resort
/// of the primary always, of the secondary only in PARTNER-DOWN after STOS + MCLT; FREE once
/// `abandon-lease-time` has passed on either server in any state; a DECLINE while the
/// relationship does not serve is ignored.
#[test]
fn abandoned_leases_follow_the_ownership_rules() {
    let abandon_all = |pair: &mut Pair, ends: u32| {
        for last in 100..=109 {
            let mut lease = Lease::free(pool_address(last));
            lease.binding_state = BindingState::Abandoned;
            lease.next_binding_state = BindingState::Free;
            lease.rewind_binding_state = BindingState::Abandoned;
            lease.ends = ends;
            pair.harness.leases.upsert(lease);
        }
    };
    // Clients waiting longer than `load balance max seconds`: both servers answer them.
    let waiting = |mac: [u8; 6]| {
        let mut discover = client(MessageType::Discover, mac);
        discover.set_secs(10);
        discover
    };
    let mut pair = Pair::new(true, State::Normal);
    abandon_all(&mut pair, NOW + 1000);
    assert_eq!(
        pair.harness
            .handle(NOW, &waiting(PRIMARY_BUCKET_MAC))
            .outcome,
        Outcome::Offered(pool_address(100))
    );

    let mut pair = Pair::new(false, State::Normal);
    abandon_all(&mut pair, NOW + 1000);
    assert_eq!(
        pair.harness
            .handle(NOW, &waiting(SECONDARY_BUCKET_MAC))
            .outcome,
        Outcome::Ignored(IgnoreReason::NoFreeAddress)
    );
    pair.publish(State::PartnerDown { since: NOW - 1000 });
    assert_eq!(
        pair.harness
            .handle(NOW, &waiting(SECONDARY_BUCKET_MAC))
            .outcome,
        Outcome::Offered(pool_address(100))
    );

    // A secondary in NORMAL leaves active leases to the primary, not abandoned ones.
    let mut pair = Pair::new(false, State::Normal);
    abandon_all(&mut pair, NOW + 5);
    assert!(pair.harness.expire(NOW + 4).is_empty());
    let changed = pair.harness.expire(NOW + 5);
    assert_eq!(changed.len(), 10);
    assert!(changed
        .iter()
        .all(|lease| lease.binding_state == BindingState::Free));

    let mut pair = Pair::new(true, State::Recover);
    let decline = with(
        client(MessageType::Decline, PRIMARY_BUCKET_MAC),
        DhcpOption::RequestedIpAddress(pool_address(100)),
    );
    assert_eq!(
        pair.harness.handle(NOW, &decline).outcome,
        Outcome::Ignored(IgnoreReason::NotForUs)
    );
    assert_eq!(pair.state_of(pool_address(100)), None);
    pair.publish(State::Normal);
    assert_eq!(
        pair.harness.handle(NOW, &decline).outcome,
        Outcome::Declined(pool_address(100))
    );
}

/// `server-id-check true` (dhcpd.conf(5), ISC `dhcprequest`): a REQUEST for a lease of a
/// failover pool naming another server identifier is dropped; without the statement (ISC's
/// default) it is served.
#[test]
fn server_id_check_drops_requests_naming_the_partner_in_failover_pools() {
    let request = |server: Ipv4Addr| {
        with(
            with(
                client(MessageType::Request, PRIMARY_BUCKET_MAC),
                DhcpOption::RequestedIpAddress(pool_address(100)),
            ),
            DhcpOption::ServerIdentifier(server),
        )
    };
    let partner = Ipv4Addr::new(10, 0, 0, 2);
    let mut pair = Pair::new(true, State::Normal);
    assert_eq!(
        pair.harness.handle(NOW, &request(partner)).outcome,
        Outcome::Acked(pool_address(100))
    );

    let mut config = failover_config(true);
    config.scopes[0].server_id_check = Some(true);
    let mut pair = Pair {
        harness: Harness::new(config),
    };
    pair.publish(State::Normal);
    assert_eq!(
        pair.harness.handle(NOW, &request(partner)).outcome,
        Outcome::Ignored(IgnoreReason::NotForUs)
    );
    // Our own identifier (the receiving interface's address) passes.
    assert_eq!(
        pair.harness.handle(NOW, &request(INTERFACE)).outcome,
        Outcome::Acked(pool_address(100))
    );
}
