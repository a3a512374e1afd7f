//! Tests of the lease store: allocation order, indices after re-binding, expiry, offers, size.

use super::*;
use crate::config::model::{AddressRange, Pool, ScopeId, SharedNetworkId};

fn config(ranges: &[(&str, &str)]) -> Config {
    Config {
        pools: vec![Pool {
            scope: ScopeId::GLOBAL,
            shared_network: SharedNetworkId(0),
            subnet: None,
            ranges: ranges
                .iter()
                .map(|(low, high)| AddressRange {
                    low: low.parse().unwrap(),
                    high: high.parse().unwrap(),
                    dynamic_bootp: false,
                })
                .collect(),
            permits: Vec::new(),
            failover_peer: None,
        }],
        ..Config::default()
    }
}

fn address(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

fn mac(last: u8) -> Hardware {
    Hardware::new(1, &[2, 0, 0, 0, 0, last]).unwrap()
}

fn active(address_text: &str, hardware: Hardware, uid: Option<&[u8]>, ends: UnixTime) -> Lease {
    let mut lease = Lease::free(address(address_text));
    lease.binding_state = BindingState::Active;
    lease.next_binding_state = BindingState::Free;
    lease.starts = 1000;
    lease.ends = ends;
    lease.hardware = Some(hardware);
    lease.set_uid(uid);
    lease
}

const POOL: PoolId = PoolId(0);

#[test]
fn allocates_never_used_in_order_then_oldest_free() {
    let mut store = LeaseStore::new(&config(&[
        ("10.0.0.1", "10.0.0.2"),
        ("10.0.1.5", "10.0.1.5"),
    ]));
    let client = ClientKey::Hardware(mac(1));
    // 10.0.0.2 is already in use: skipped by the cursor.
    store.upsert(active("10.0.0.2", mac(9), None, 5000));
    assert_eq!(
        store.allocate(POOL, &client, 100),
        Some(address("10.0.0.1"))
    );
    assert_eq!(
        store.allocate(POOL, &client, 100),
        Some(address("10.0.1.5"))
    );
    assert_eq!(store.allocate(POOL, &client, 100), None);
    // Two freed leases: the one that ended first comes first.
    let mut late = Lease::free(address("10.0.0.1"));
    late.ends = 300;
    let mut early = Lease::free(address("10.0.1.5"));
    early.ends = 200;
    store.upsert(late);
    store.upsert(early);
    assert_eq!(store.free_count(POOL), 2);
    assert_eq!(
        store.allocate(POOL, &client, 100),
        Some(address("10.0.1.5"))
    );
    // Held for another client: the next one.
    store.hold_offer(address("10.0.1.5"), ClientKey::Hardware(mac(2)), 160);
    assert_eq!(
        store.allocate(POOL, &client, 100),
        Some(address("10.0.0.1"))
    );
    // Abandoned and active leases are never allocated.
    let mut abandoned = Lease::free(address("10.0.0.1"));
    abandoned.binding_state = BindingState::Abandoned;
    store.upsert(abandoned);
    assert_eq!(store.allocate(POOL, &client, 100), None);
    assert_eq!(
        store.allocate(POOL, &client, 200),
        Some(address("10.0.1.5"))
    );
}

#[test]
fn indices_follow_a_client_to_another_address() {
    let mut store = LeaseStore::new(&config(&[("10.0.0.1", "10.0.0.9")]));
    store.upsert(active("10.0.0.1", mac(1), Some(b"\x01id"), 5000));
    assert_eq!(
        store.find_by_client_id(b"\x01id").unwrap().address,
        address("10.0.0.1")
    );
    // Re-bound to .2: both indices move; .1 is freed and keeps its hardware for affinity.
    store.upsert(active("10.0.0.2", mac(1), Some(b"\x01id"), 6000));
    let mut freed = Lease::free(address("10.0.0.1"));
    freed.hardware = Some(mac(1));
    store.upsert(freed);
    assert_eq!(
        store.find_by_client_id(b"\x01id").unwrap().address,
        address("10.0.0.2")
    );
    // The last upsert with this hardware was the freed .1 (most recent wins).
    assert_eq!(
        store.find_by_hardware(&mac(1)).unwrap().address,
        address("10.0.0.1")
    );
    // Both leases are on the client's hardware chain (ISC's hash chains keep every lease).
    let mut chain: Vec<Ipv4Addr> = store
        .leases_of_hardware(&mac(1))
        .map(|lease| lease.address)
        .collect();
    chain.sort_unstable();
    assert_eq!(chain, vec![address("10.0.0.1"), address("10.0.0.2")]);
    // Another client takes .1: the old client's hardware entry for .1 goes away, its lease on
    // .2 is what the hardware address finds now.
    store.upsert(active("10.0.0.1", mac(7), None, 7000));
    assert_eq!(
        store.find_by_hardware(&mac(1)).unwrap().address,
        address("10.0.0.2")
    );
    assert_eq!(store.leases_of_hardware(&mac(1)).count(), 1);
    assert_eq!(
        store.find_by_hardware(&mac(7)).unwrap().address,
        address("10.0.0.1")
    );
    assert_eq!(
        store
            .find_by_client(&ClientKey::ClientId(b"\x01id"[..].into()))
            .unwrap()
            .address,
        address("10.0.0.2")
    );
    // The client id changes on .2: the old id is gone from the index.
    store.upsert(active("10.0.0.2", mac(1), Some(b"\x01new"), 6000));
    assert!(store.find_by_client_id(b"\x01id").is_none());
    assert_eq!(
        store.find_by_client_id(b"\x01new").unwrap().address,
        address("10.0.0.2")
    );
    assert_eq!(store.len(), 2);
    assert_eq!(store.iter().count(), 2);
}

#[test]
fn expiry_pops_only_what_ended() {
    let mut store = LeaseStore::new(&config(&[("10.0.0.1", "10.0.0.9")]));
    store.upsert(active("10.0.0.1", mac(1), None, 100));
    store.upsert(active("10.0.0.2", mac(2), None, 200));
    let mut to_expired = active("10.0.0.3", mac(3), None, 150);
    to_expired.next_binding_state = BindingState::Expired;
    store.upsert(to_expired);
    store.upsert(active("10.0.0.4", mac(4), None, NEVER));
    // Renewed before it ended: the old end time must not expire it.
    store.upsert(active("10.0.0.1", mac(1), None, 1000));
    let changed = store.expire(160);
    let addresses: Vec<Ipv4Addr> = changed.iter().map(|lease| lease.address).collect();
    assert_eq!(addresses, vec![address("10.0.0.3")]);
    assert_eq!(changed[0].binding_state, BindingState::Expired);
    assert!(store.expire(160).is_empty());
    let changed = store.expire(5000);
    let addresses: Vec<Ipv4Addr> = changed.iter().map(|lease| lease.address).collect();
    assert_eq!(addresses, vec![address("10.0.0.2"), address("10.0.0.1")]);
    assert_eq!(
        store.get(address("10.0.0.1")).unwrap().binding_state,
        BindingState::Free
    );
    assert_eq!(
        store.get(address("10.0.0.4")).unwrap().binding_state,
        BindingState::Active
    );
    // Expired leases are reusable, the hardware index still finds them.
    assert_eq!(store.free_count(POOL), 3);
    assert_eq!(
        store.find_by_hardware(&mac(2)).unwrap().address,
        address("10.0.0.2")
    );
}

#[test]
fn offers_block_others_until_they_lapse() {
    let mut store = LeaseStore::new(&config(&[("10.0.0.1", "10.0.0.1")]));
    let first = ClientKey::Hardware(mac(1));
    let second = ClientKey::Hardware(mac(2));
    let offered = store.allocate(POOL, &first, 100).unwrap();
    store.hold_offer(offered, first.clone(), 130);
    assert!(store.is_available(offered, &first, 110));
    assert!(!store.is_available(offered, &second, 110));
    assert_eq!(store.allocate(POOL, &second, 110), None);
    // The offer lapses without a request: the address comes back through the free queue.
    assert!(store.expire(130).is_empty());
    assert!(store.is_available(offered, &second, 131));
    assert_eq!(store.allocate(POOL, &second, 131), Some(offered));
    // A binding clears the offer.
    store.hold_offer(offered, second.clone(), 500);
    store.upsert(active("10.0.0.1", mac(2), None, 1000));
    assert!(!store.is_available(offered, &first, 200));
    assert!(store.is_available(offered, &second, 200));
    assert!(store.is_available(offered, &first, 1000));
}

#[test]
fn load_and_pool_lookup() {
    let mut store = LeaseStore::new(&config(&[("10.99.0.100", "10.99.0.120")]));
    let file = crate::lease::file::parse(
        include_bytes!("../file/testdata/ex87.leases"),
        "ex87.leases",
    );
    store.load(file);
    assert_eq!(store.len(), 3);
    assert_eq!(store.pool_of(address("10.99.0.110")), Some(POOL));
    assert_eq!(store.pool_of(address("10.99.0.121")), None);
    assert_eq!(store.pool_of(address("10.99.0.99")), None);
    // .110 is free; .100 and .109 are backup (the partner's).
    assert_eq!(store.free_count(POOL), 1);
}

/// The 1 M-lease goal (≤ 200 bytes per lease with indices) checked at 10,000 leases of the
/// benchmark's mix: every lease with hardware, half with a client id, a quarter with a name.
#[test]
fn per_lease_memory_stays_under_budget() {
    let mut bytes = Vec::new();
    crate::lease::file::generate_example(10_000, &mut bytes).unwrap();
    let mut store = LeaseStore::new(&config(&[("10.0.0.1", "10.0.255.255")]));
    let file = crate::lease::file::parse(&bytes, "generated");
    assert_eq!(file.leases.len(), 10_000);
    store.load(file);
    let memory = store.memory();
    let per_lease = memory.total / store.len();
    assert!(per_lease <= 200, "{memory:?}: {per_lease} bytes per lease");
}

/// A failover pool keeps FREE, BACKUP and EXPIRED/RELEASED/RESET leases in separate queues
/// (docs/spec/failover.md §7.1), counts them, and `allocate_from` stops after a bounded number of
/// refusals instead of walking the pool.
#[test]
fn failover_queues_counts_and_bounded_refusals() {
    let mut config = config(&[("10.0.0.1", "10.0.0.40")]);
    config.pools[0].failover_peer = Some("fo".into());
    let mut store = LeaseStore::new(&config);
    let client = ClientKey::Hardware(mac(1));
    let with_state = |text: &str, state: BindingState, tsfp: UnixTime| {
        let mut lease = Lease::free(address(text));
        lease.binding_state = state;
        lease.tsfp = tsfp;
        lease
    };
    for last in 1..=30 {
        store.upsert(with_state(
            &format!("10.0.0.{last}"),
            BindingState::Backup,
            last,
        ));
    }
    store.upsert(with_state("10.0.0.31", BindingState::Expired, 0));
    store.upsert(with_state("10.0.0.32", BindingState::Released, 0));
    store.upsert(with_state("10.0.0.33", BindingState::Free, 0));
    assert_eq!(store.state_count(POOL, BindingState::Backup), 30);
    assert_eq!(store.never_used(POOL), 7);
    assert_eq!(store.free_state_count(POOL), 8);
    assert_eq!(store.free_count(POOL), 3, "FREE + EXPIRED + RELEASED");
    // The FREE queue never yields a BACKUP or EXPIRED lease.
    let mut taken = Vec::new();
    while let Some(found) = store.allocate(POOL, &client, 100) {
        store.upsert(active(&found.to_string(), mac(2), None, 5000));
        taken.push(found);
    }
    assert_eq!(taken.len(), 8);
    assert!(taken.contains(&address("10.0.0.33")));
    assert_eq!(store.free_state_count(POOL), 0);
    // BACKUP leases accepted only from tsfp 20 on: the first 16 refusals end the search.
    let late = |lease: &Lease| lease.tsfp >= 20;
    assert_eq!(
        store.allocate_from(POOL, FreeQueue::Backup, &client, 100, late),
        None
    );
    let from_ten = |lease: &Lease| lease.tsfp >= 10;
    assert_eq!(
        store.allocate_from(POOL, FreeQueue::Backup, &client, 100, from_ten),
        Some(address("10.0.0.10"))
    );
    assert_eq!(
        store.allocate_from(POOL, FreeQueue::Reclaim, &client, 100, |_| true),
        Some(address("10.0.0.31"))
    );
    // Counts follow every change.
    store.upsert(with_state("10.0.0.1", BindingState::Free, 0));
    assert_eq!(store.state_count(POOL, BindingState::Backup), 29);
    assert_eq!(store.free_state_count(POOL), 1);
    // Reserved leases wait in ISC's `reserved` queue: not in its free or backup counts, which
    // failover's pool balancing reads (`engine::select`).
    assert_eq!(store.backup_queue_count(POOL), 29);
    for (text, state) in [
        ("10.0.0.2", BindingState::Free),
        ("10.0.0.3", BindingState::Backup),
    ] {
        let mut lease = with_state(text, state, 0);
        lease.flags |= crate::lease::record::flags::RESERVED;
        store.upsert(lease);
    }
    assert_eq!(store.state_count(POOL, BindingState::Free), 2);
    assert_eq!(store.free_state_count(POOL), 1);
    assert_eq!(store.backup_queue_count(POOL), 27);
}

/// `expire_with` lets the caller leave a lease ACTIVE (a failover secondary in NORMAL) or
/// choose its next state; a lease left ACTIVE is looked at again on the next call.
#[test]
fn expire_with_defers_and_chooses() {
    let mut store = LeaseStore::new(&config(&[("10.0.0.1", "10.0.0.9")]));
    store.upsert(active("10.0.0.1", mac(1), None, 100));
    store.upsert(active("10.0.0.2", mac(2), None, 200));
    assert!(store.expire_with(300, |_| None).is_empty());
    let changed = store.expire_with(300, |lease| {
        (lease.address == address("10.0.0.2")).then_some(BindingState::Expired)
    });
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].binding_state, BindingState::Expired);
    let changed = store.expire(300);
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].address, address("10.0.0.1"));
    assert_eq!(changed[0].binding_state, BindingState::Free);
}

#[test]
fn an_unused_never_used_address_stays_allocatable() {
    // A failover DISCOVER for the partner's bucket: the cursor passed 10.0.0.1, the engine
    // did not offer it and hands it back.
    let mut store = LeaseStore::new(&config(&[("10.0.0.1", "10.0.0.2")]));
    let client = ClientKey::Hardware(mac(1));
    let passed = store.allocate(POOL, &client, 100);
    assert_eq!(passed, Some(address("10.0.0.1")));
    store.return_unused(address("10.0.0.1"));
    // Outside every pool: nothing stored.
    store.return_unused(address("10.9.9.9"));
    assert!(store.get(address("10.9.9.9")).is_none());
    let mut got = vec![
        store.allocate(POOL, &client, 100),
        store.allocate(POOL, &client, 100),
    ];
    got.sort();
    assert_eq!(
        got,
        vec![Some(address("10.0.0.1")), Some(address("10.0.0.2"))]
    );
}

/// ABANDONED leases wait in a queue of their own, by end: [`FreeQueue::Abandoned`] gives the
/// one that ends first (ISC `pool->abandoned`), skipping other clients' offers; expiry frees
/// them at their end, `next binding state abandoned` (older lease files) included; `ends never`
/// keeps one abandoned; a reload of the config keeps the queue.
#[test]
fn abandoned_leases_queue_by_end_and_expire_to_free() {
    let mut store = LeaseStore::new(&config(&[("10.0.0.1", "10.0.0.4")]));
    let abandoned = |text: &str, ends: UnixTime, next: BindingState| {
        let mut lease = Lease::free(address(text));
        lease.binding_state = BindingState::Abandoned;
        lease.next_binding_state = next;
        lease.ends = ends;
        lease
    };
    store.upsert(abandoned("10.0.0.1", 500, BindingState::Abandoned));
    store.upsert(abandoned("10.0.0.2", 300, BindingState::Free));
    store.upsert(abandoned("10.0.0.4", NEVER, BindingState::Free));
    let client = ClientKey::Hardware(mac(1));
    let from_abandoned = |store: &mut LeaseStore, client: &ClientKey| {
        store.allocate_from(POOL, FreeQueue::Abandoned, client, 100, |_| true)
    };
    assert_eq!(store.available_count(POOL), 1, "only 10.0.0.3");
    assert_eq!(store.state_count(POOL, BindingState::Abandoned), 3);
    assert_eq!(
        store.allocate(POOL, &client, 100),
        Some(address("10.0.0.3"))
    );
    assert_eq!(
        from_abandoned(&mut store, &client),
        Some(address("10.0.0.2"))
    );
    store.hold_offer(address("10.0.0.2"), ClientKey::Hardware(mac(2)), 200);
    assert_eq!(
        store.available_count(POOL),
        1,
        "an abandoned offer takes no stock"
    );
    assert_eq!(
        from_abandoned(&mut store, &client),
        Some(address("10.0.0.1"))
    );
    assert!(store.offered_to(address("10.0.0.2"), &ClientKey::Hardware(mac(2)), 100));
    assert!(!store.offered_to(address("10.0.0.2"), &client, 100));

    store.reconfigure(&config(&[("10.0.0.1", "10.0.0.4")]));
    assert_eq!(store.state_count(POOL, BindingState::Abandoned), 3);
    assert!(store.expire(299).is_empty());
    let freed: Vec<Ipv4Addr> = store.expire(300).iter().map(|l| l.address).collect();
    assert_eq!(freed, vec![address("10.0.0.2")]);
    let freed = store.expire(500);
    assert_eq!(freed.len(), 1);
    assert_eq!(
        (
            freed[0].address,
            freed[0].binding_state,
            freed[0].next_binding_state
        ),
        (address("10.0.0.1"), BindingState::Free, BindingState::Free)
    );
    assert!(store.expire(u32::MAX - 1).is_empty());
    assert_eq!(
        store.get(address("10.0.0.4")).map(|l| l.binding_state),
        Some(BindingState::Abandoned)
    );
    assert_eq!(
        from_abandoned(&mut store, &client),
        Some(address("10.0.0.4"))
    );
    assert_eq!(store.free_count(POOL), 2);
}

#[test]
fn a_spread_walk_starts_at_its_seed_and_wraps_around_once() {
    let pools = config(&[("10.0.0.1", "10.0.0.3"), ("10.0.1.1", "10.0.1.2")]);
    let mut store = LeaseStore::new(&pools);
    // Five addresses: seed 7 starts at the third (10.0.0.3).
    store.spread_never_used(7);
    let client = ClientKey::Hardware(mac(1));
    let walk: Vec<Option<Ipv4Addr>> = (0..6).map(|_| store.allocate(POOL, &client, 100)).collect();
    assert_eq!(
        walk,
        [
            Some(address("10.0.0.3")),
            Some(address("10.0.1.1")),
            Some(address("10.0.1.2")),
            Some(address("10.0.0.1")),
            Some(address("10.0.0.2")),
            None
        ]
    );
    // A reload rebuilds the pools with the same start.
    store.reconfigure(&pools);
    assert_eq!(
        store.allocate(POOL, &client, 100),
        Some(address("10.0.0.3"))
    );
}
