//! DHCPDECLINE and abandoned leases (RFC 2131 §4.3.3; ISC `dhcpdecline`, `abandon_lease`,
//! `pool_timer`, `allocate_lease`'s "Reclaiming abandoned lease"), and what xdhcpd adds: a
//! decline of another client's address is ignored and counted, declines are limited per MAC.
//! Failover pools: `failover.rs`.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, MessageType};

use super::*;
use crate::engine::starvation::StarvationLimit;
use crate::engine::{IgnoreReason, Outcome};
use crate::lease::record::{BindingState, Lease};
use crate::metrics::{DropReason, Metrics};

/// The local pool 10.0.0.100–10.0.0.109 of [`base_config`].
fn local(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, last)
}

fn decline_of(mac: [u8; 6], address: Ipv4Addr) -> Message {
    let decline = with(
        client(MessageType::Decline, mac),
        DhcpOption::RequestedIpAddress(address),
    );
    with(decline, DhcpOption::ServerIdentifier(INTERFACE))
}

fn mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x0d, n]
}

/// `abandon-lease-time` set globally; the starvation defence on or off.
fn config(abandon_lease_time: Option<u32>, defence: bool) -> Config {
    let mut config = base_config(true);
    config.scopes[0].abandon_lease_time = abandon_lease_time;
    config.starvation.enabled = defence;
    config
}

fn state_of(harness: &Harness, address: Ipv4Addr) -> Option<BindingState> {
    harness.leases.get(address).map(|lease| lease.binding_state)
}

/// Beyond ISC: only the client an address was given to can find it in use (RFC 2131 §4.4.1),
/// so a DECLINE of an address bound to, or offered to, another client keeps the binding and
/// is counted as `drops_total{reason="decline_other_client"}`. The holder's own decline, with
/// or without the client identifier it bound with, is taken.
#[test]
fn decline_of_another_clients_address_is_ignored_and_counted() {
    let mut harness = Harness::new(config(None, true));
    let metrics = Metrics::default();
    let bound = yiaddr(&bind(&mut harness, NOW, MAC_A)).expect("A bound");

    let decision = harness.handle(NOW + 1, &decline_of(MAC_B, bound));
    assert_eq!(
        decision.outcome,
        Outcome::Ignored(IgnoreReason::DeclineOfOtherClient)
    );
    assert!(decision.commit.is_empty() && decision.reply.is_none());
    metrics.count_decision(&decision.outcome);
    let lease = harness.leases.get(bound).expect("A's lease");
    assert_eq!(lease.binding_state, BindingState::Active);
    assert_eq!(
        lease.hardware.map(|h| h.address().to_vec()),
        Some(MAC_A.to_vec())
    );

    // An address offered to C (not yet requested) is C's as well.
    let mac_c = mac(0xc);
    let offered = yiaddr(&harness.handle(NOW + 2, &client(MessageType::Discover, mac_c)))
        .expect("offer to C");
    let decision = harness.handle(NOW + 2, &decline_of(MAC_B, offered));
    assert_eq!(
        decision.outcome,
        Outcome::Ignored(IgnoreReason::DeclineOfOtherClient)
    );
    metrics.count_decision(&decision.outcome);
    let ack = harness.handle(NOW + 3, &selecting(mac_c, offered, INTERFACE));
    assert_eq!(reply_type(&ack), Some(MessageType::Ack), "C still gets it");
    assert_eq!(metrics.drops(DropReason::DeclineOtherClient), 2);

    // The holder's decline is taken; a client that bound with option 61 may leave it out.
    let decision = harness.handle(NOW + 4, &decline_of(MAC_A, bound));
    assert_eq!(decision.outcome, Outcome::Declined(bound));
    let mac_d = mac(0xd);
    let id = DhcpOption::ClientIdentifier(vec![0xff, 1, 2, 3, 4]);
    let offer = harness.handle(
        NOW + 5,
        &with(client(MessageType::Discover, mac_d), id.clone()),
    );
    let address = yiaddr(&offer).expect("offer to D");
    let ack = harness.handle(NOW + 5, &with(selecting(mac_d, address, INTERFACE), id));
    assert_eq!(reply_type(&ack), Some(MessageType::Ack));
    let decision = harness.handle(NOW + 6, &decline_of(mac_d, address));
    assert_eq!(decision.outcome, Outcome::Declined(address));
    assert_eq!(state_of(&harness, address), Some(BindingState::Abandoned));
}

/// Beyond ISC: DECLINEs that would abandon an address are limited per MAC at the
/// `new-leases-per-mac` rate (4 per 60 s by default; one more every 15 s), counted as
/// `RateLimited(DeclinePerMac)`; other MACs have their own budget. With the defence off every
/// decline is taken, as ISC does.
#[test]
fn declines_are_rate_limited_per_mac() {
    let mut harness = Harness::new(config(None, true));
    let outcomes: Vec<Outcome> = (100..=109)
        .map(|last| harness.handle(NOW, &decline_of(MAC_A, local(last))).outcome)
        .collect();
    for (index, outcome) in outcomes.iter().enumerate() {
        let expected = if index < 4 {
            Outcome::Declined(local(100 + index as u8))
        } else {
            Outcome::Ignored(IgnoreReason::RateLimited(StarvationLimit::DeclinePerMac))
        };
        assert_eq!(*outcome, expected, "decline {index}");
    }
    assert_eq!(
        state_of(&harness, local(104)),
        None,
        "refused: nothing stored"
    );
    assert_eq!(harness.starvation.refusals().decline_per_mac, 6);
    let metrics = Metrics::default();
    for outcome in &outcomes {
        metrics.count_decision(outcome);
    }
    assert_eq!(metrics.drops(DropReason::RateLimited), 6);
    // A token back after 15 s; another MAC is not limited by A's declines.
    assert_eq!(
        harness
            .handle(NOW + 14, &decline_of(MAC_A, local(104)))
            .outcome,
        Outcome::Ignored(IgnoreReason::RateLimited(StarvationLimit::DeclinePerMac))
    );
    assert_eq!(
        harness
            .handle(NOW + 15, &decline_of(MAC_A, local(104)))
            .outcome,
        Outcome::Declined(local(104))
    );
    assert_eq!(
        harness
            .handle(NOW + 15, &decline_of(MAC_B, local(105)))
            .outcome,
        Outcome::Declined(local(105))
    );

    let mut harness = Harness::new(config(None, false));
    for last in 100..=109 {
        assert_eq!(
            harness.handle(NOW, &decline_of(MAC_A, local(last))).outcome,
            Outcome::Declined(local(last))
        );
    }
}

/// ISC `abandon_lease` + `pool_timer`: a declined lease ends at now + `abandon-lease-time`
/// with next state FREE, and the expiry run frees it then — not before.
#[test]
fn abandoned_lease_becomes_free_after_abandon_lease_time() {
    let mut harness = Harness::new(config(Some(5), true));
    let address = yiaddr(&bind(&mut harness, NOW, MAC_A)).expect("bound");
    let decision = harness.handle(NOW + 1, &decline_of(MAC_A, address));
    assert_eq!(decision.outcome, Outcome::Declined(address));
    let abandoned = &decision.commit[0];
    assert_eq!(abandoned.binding_state, BindingState::Abandoned);
    assert_eq!(abandoned.next_binding_state, BindingState::Free);
    assert_eq!(abandoned.ends, NOW + 6);
    assert_eq!((abandoned.hardware, abandoned.uid()), (None, None));

    assert!(harness.expire(NOW + 5).is_empty());
    assert_eq!(state_of(&harness, address), Some(BindingState::Abandoned));
    let changed = harness.expire(NOW + 6);
    assert_eq!(changed.len(), 1, "the freed lease is returned to persist");
    assert_eq!(changed[0].address, address);
    assert_eq!(changed[0].binding_state, BindingState::Free);
    assert_eq!(state_of(&harness, address), Some(BindingState::Free));
    let pool = harness.leases.pool_of(address).expect("pool");
    assert_eq!(harness.leases.state_count(pool, BindingState::Abandoned), 0);
    assert!(harness.expire(NOW + 7).is_empty());
}

/// ISC `allocate_lease`: an abandoned lease is given out only when no permitted pool has a
/// free address ("Reclaiming abandoned lease"), the one abandoned longest ago first; the client
/// that was offered it gets it ACKed.
#[test]
fn abandoned_lease_is_reclaimed_when_the_pool_has_no_free_address() {
    let mut harness = Harness::new(config(None, false));
    // .100–.108 abandoned, .105 first (earliest end), .109 never used.
    assert_eq!(
        harness.handle(NOW, &decline_of(MAC_A, local(105))).outcome,
        Outcome::Declined(local(105))
    );
    for last in (100..=108).filter(|&last| last != 105) {
        assert_eq!(
            harness
                .handle(NOW + 1, &decline_of(MAC_A, local(last)))
                .outcome,
            Outcome::Declined(local(last))
        );
    }
    let ack = bind(&mut harness, NOW + 2, mac(1));
    assert_eq!(yiaddr(&ack), Some(local(109)), "a free address first");

    let offer = harness.handle(NOW + 3, &client(MessageType::Discover, mac(2)));
    assert_eq!(offer.outcome, Outcome::Offered(local(105)));
    // The hold is two minutes, not the abandonment's day: offered to someone else meanwhile,
    // the next abandoned lease is taken.
    let other = harness.handle(NOW + 3, &client(MessageType::Discover, mac(3)));
    assert_eq!(other.outcome, Outcome::Offered(local(100)));
    // A retransmitted DISCOVER is offered the same address.
    let again = harness.handle(NOW + 4, &client(MessageType::Discover, mac(2)));
    assert_eq!(again.outcome, Outcome::Offered(local(105)));
    let ack = harness.handle(NOW + 5, &selecting(mac(2), local(105), INTERFACE));
    assert_eq!(ack.outcome, Outcome::Acked(local(105)));
    let lease = harness.leases.get(local(105)).expect("lease");
    assert_eq!(lease.binding_state, BindingState::Active);
    assert_eq!(
        lease.hardware.map(|h| h.address().to_vec()),
        Some(mac(2).to_vec())
    );
    assert_eq!(ack.commit, vec![lease.clone()]);
    // Someone else's REQUEST for an abandoned address it was not offered gets nothing.
    let stolen = harness.handle(NOW + 5, &selecting(mac(4), local(101), INTERFACE));
    assert_ne!(reply_type(&stolen), Some(MessageType::Ack));
    assert_eq!(
        state_of(&harness, local(101)),
        Some(BindingState::Abandoned)
    );
    // The offer to mac(3) lapses after two minutes: .100 is reclaimable again for others.
    let late = harness.handle(NOW + 200, &client(MessageType::Discover, mac(5)));
    assert_eq!(late.outcome, Outcome::Offered(local(100)));
}

/// The whole pool declined by one client (defence off, as in ISC): the next new client is
/// reclaimed an address at once, and after `abandon-lease-time` the expiry run gives the pool
/// back.
#[test]
fn a_pool_declined_by_one_client_is_not_lost() {
    let mut harness = Harness::new(config(Some(5), false));
    for last in 100..=109 {
        let _ = harness.handle(NOW, &decline_of(MAC_A, local(last)));
    }
    let pool = harness.leases.pool_of(local(100)).expect("pool");
    assert_eq!(
        harness.leases.state_count(pool, BindingState::Abandoned),
        10
    );
    let ack = bind(&mut harness, NOW + 1, mac(1));
    assert_eq!(
        reply_type(&ack),
        Some(MessageType::Ack),
        "reclaimed at once"
    );
    let freed = harness.expire(NOW + 7);
    assert_eq!(freed.len(), 9);
    for n in 2..=4 {
        let ack = bind(&mut harness, NOW + 7, mac(n));
        assert_eq!(reply_type(&ack), Some(MessageType::Ack), "client {n}");
    }
}

/// A restart: the abandoned lease written to the lease file (as the commit carries it) is read
/// back and still freed at its end; one written by an ISC that did not record `next binding
/// state free` is freed at its end too (ISC would keep it abandoned until reclaimed), and
/// before its end a reloaded abandoned lease is reclaimed when the pool has nothing else.
#[test]
fn abandoned_lease_survives_a_restart() {
    let mut before = Harness::new(config(Some(5), false));
    let address = local(100);
    let decision = before.handle(NOW, &decline_of(MAC_A, address));
    let mut text = Vec::new();
    crate::lease::file::write::write_lease(&decision.commit[0], &mut text);
    let written = String::from_utf8(text.clone()).expect("text");
    assert!(written.contains("binding state abandoned;"), "{written}");
    assert!(written.contains("next binding state free;"), "{written}");
    // An older record of .101: abandoned, no next state.
    let older = format!(
        "lease 10.0.0.101 {{\n  starts epoch {};\n  ends epoch {};\n  binding state abandoned;\n}}\n",
        NOW - 10,
        NOW + 5
    );
    text.extend_from_slice(older.as_bytes());

    let restarted = || {
        let mut harness = Harness::new(config(Some(5), false));
        let file = crate::lease::file::parse(&text, "dhcpd.leases");
        assert!(file.errors.is_empty(), "{:?}", file.errors);
        harness.leases.load(file);
        harness
    };
    let mut after = restarted();
    assert_eq!(state_of(&after, address), Some(BindingState::Abandoned));
    assert_eq!(state_of(&after, local(101)), Some(BindingState::Abandoned));
    assert!(after.expire(NOW + 4).is_empty());
    let freed = after.expire(NOW + 5);
    let mut freed: Vec<Ipv4Addr> = freed.iter().map(|lease| lease.address).collect();
    freed.sort();
    assert_eq!(freed, vec![address, local(101)]);
    assert_eq!(state_of(&after, address), Some(BindingState::Free));

    // Before their end: the eight never-used addresses go first, then the reloaded abandoned
    // ones are reclaimed.
    let mut after = restarted();
    let mut given: Vec<Ipv4Addr> = (1..=10)
        .map(|n| yiaddr(&bind(&mut after, NOW + 1, mac(n))).expect("an address"))
        .collect();
    assert_eq!(&given[8..], &[address, local(101)]);
    given.sort();
    given.dedup();
    assert_eq!(given.len(), 10);
}

/// The store keeps an abandoned lease out of every free count, so the starvation reserve and
/// the pool gauges see it as used; freeing it gives the count back.
#[test]
fn abandoned_leases_are_not_counted_as_available() {
    let mut harness = Harness::new(config(Some(5), false));
    let pool = harness.leases.pool_of(local(100)).expect("pool");
    assert_eq!(harness.leases.available_count(pool), 10);
    let _ = harness.handle(NOW, &decline_of(MAC_A, local(100)));
    assert_eq!(harness.leases.available_count(pool), 9);
    let mut abandoned = Lease::free(local(101));
    abandoned.binding_state = BindingState::Abandoned;
    abandoned.next_binding_state = BindingState::Free;
    abandoned.ends = NOW + 100;
    harness.leases.upsert(abandoned);
    assert_eq!(harness.leases.available_count(pool), 8);
    let _ = harness.expire(NOW + 5);
    assert_eq!(harness.leases.available_count(pool), 9);
}
