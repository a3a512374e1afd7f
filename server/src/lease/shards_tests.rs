//! Unit tests of the sharded store: where leases land, the loader, the snapshot, and a reload
//! that moves shared networks between shards.

use super::*;
use crate::lease::record::{BindingState, Hardware};
use crate::lease::store::ClientKey;

/// Three shared networks with pools (`a`, `b`, the implicit one of 10.3.0.0/24) and one
/// without (10.9.0.0/24, the server's own link).
const THREE_NETWORKS: &str = r#"
    subnet 10.9.0.0 netmask 255.255.255.0 { }
    shared-network a {
        subnet 10.1.0.0 netmask 255.255.255.0 { range 10.1.0.10 10.1.0.19; }
        subnet 10.1.1.0 netmask 255.255.255.0 { range 10.1.1.10 10.1.1.19; }
    }
    shared-network b {
        subnet 10.2.0.0 netmask 255.255.255.0 { range 10.2.0.10 10.2.0.19; }
    }
    subnet 10.3.0.0 netmask 255.255.255.0 { range 10.3.0.10 10.3.0.19; }
"#;

fn parse(text: &str) -> Arc<Config> {
    Arc::new(crate::config::parse_str(text, "test.conf").expect("valid config"))
}

fn active(address: Ipv4Addr, mac: u8) -> Lease {
    let mut lease = Lease::free(address);
    lease.binding_state = BindingState::Active;
    lease.next_binding_state = BindingState::Free;
    lease.starts = 1_000;
    lease.ends = 100_000;
    lease.hardware = Hardware::new(1, &[2, 0, 0, 0, 0, mac]);
    lease
}

fn hardware(mac: u8) -> Hardware {
    Hardware::new(1, &[2, 0, 0, 0, 0, mac]).expect("ethernet")
}

/// One lease in each pool, one in a subnet outside its pool, one outside every subnet.
fn some_leases() -> Vec<Lease> {
    [
        (Ipv4Addr::new(10, 1, 0, 11), 1),
        (Ipv4Addr::new(10, 1, 1, 12), 2),
        (Ipv4Addr::new(10, 2, 0, 13), 3),
        (Ipv4Addr::new(10, 3, 0, 14), 4),
        // In subnet 10.2.0.0/24 (network b) but in no pool.
        (Ipv4Addr::new(10, 2, 0, 200), 5),
        // In no subnet at all.
        (Ipv4Addr::new(192, 0, 2, 1), 6),
    ]
    .into_iter()
    .map(|(address, mac)| active(address, mac))
    .collect()
}

/// Every lease of every shard, with its shard, sorted by address.
fn contents(store: &ShardedStore) -> Vec<(Ipv4Addr, usize)> {
    let mut found = Vec::new();
    store
        .for_each(|index, shard| found.extend(shard.iter().map(|lease| (lease.address, index))))
        .expect("store");
    found.sort_unstable();
    found
}

#[test]
fn the_shard_count_follows_the_networks_with_pools_and_the_workers() {
    let config = parse(THREE_NETWORKS);
    assert_eq!(shard_count(&config, 8), 3);
    assert_eq!(shard_count(&config, 1), 3);
    assert_eq!(
        shard_count(&parse("subnet 10.9.0.0 netmask 255.255.255.0 { }"), 8),
        1
    );
}

#[test]
fn leases_land_in_the_shard_of_their_shared_network() {
    let config = parse(THREE_NETWORKS);
    let mut single = LeaseStore::new(&config);
    for lease in some_leases() {
        single.upsert(lease);
    }
    let store = ShardedStore::from_store(config.clone(), 3, single);
    let layout = store.layout();
    // Pool-bearing networks take the shards in turn: a → 0, b → 1, 10.3.0.0/24 → 2.
    let network = |name: &str| {
        config
            .shared_networks
            .iter()
            .position(|network| network.name.as_deref() == Some(name))
            .map(|index| SharedNetworkId(index as u32))
    };
    assert_eq!(layout.of_network(network("a")), 0);
    assert_eq!(layout.of_network(network("b")), 1);
    assert_eq!(
        contents(&store),
        vec![
            (Ipv4Addr::new(10, 1, 0, 11), 0),
            (Ipv4Addr::new(10, 1, 1, 12), 0),
            (Ipv4Addr::new(10, 2, 0, 13), 1),
            // Outside the pools: by its subnet's shared network.
            (Ipv4Addr::new(10, 2, 0, 200), 1),
            (Ipv4Addr::new(10, 3, 0, 14), 2),
            // Outside every subnet: shard 0.
            (Ipv4Addr::new(192, 0, 2, 1), 0),
        ]
    );
    // Each shard holds its own pools only: counts, allocation and the client indices.
    let shard = store.lock(1).expect("shard");
    assert!(shard.holds_pool(PoolId(2)) && !shard.holds_pool(PoolId(0)));
    assert_eq!(shard.state_count(PoolId(2), BindingState::Active), 1);
    assert_eq!(shard.pool_size(PoolId(0)), 0);
    assert!(shard.find_by_hardware(&hardware(3)).is_some());
    assert!(shard.find_by_hardware(&hardware(1)).is_none());
    drop(shard);
    let shard = store
        .lock_address(Ipv4Addr::new(10, 1, 1, 12))
        .expect("shard");
    assert!(shard.get(Ipv4Addr::new(10, 1, 1, 12)).is_some());
    drop(shard);
    assert_eq!(store.len(), 6);
    assert_eq!(store.leases().expect("copy").len(), 6);
}

#[test]
fn the_loader_puts_each_lease_of_the_file_in_its_shard() {
    let config = parse(THREE_NETWORKS);
    let mut text = Vec::new();
    for lease in some_leases() {
        crate::lease::file::write_lease(&lease, &mut text);
    }
    let directory = std::env::temp_dir().join(format!("xdhcpd-shards-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("directory");
    let path = directory.join("dhcpd.leases");
    std::fs::write(&path, &text).expect("write");
    let store = ShardedStore::new(config, 3);
    let rest = store.load_path(&path).expect("load");
    assert!(rest.errors.is_empty(), "{:?}", rest.errors);
    let layout = store.layout();
    let found = contents(&store);
    assert_eq!(found.len(), 6);
    for (address, shard) in found {
        assert_eq!(shard, layout.of_address(address), "{address}");
    }
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn taking_a_lease_out_keeps_the_other_leases_indexed() {
    let config = parse(THREE_NETWORKS);
    let mut store = LeaseStore::new(&config);
    let leases = some_leases();
    for lease in &leases {
        store.upsert(lease.clone());
    }
    store.hold_offer(
        Ipv4Addr::new(10, 1, 0, 15),
        ClientKey::Hardware(hardware(9)),
        5_000,
    );
    // The first lease's slot is taken by the arena's last one.
    let (taken, offer) = store.take(leases[0].address);
    assert_eq!(taken.as_ref(), Some(&leases[0]));
    assert!(offer.is_none());
    assert!(store.get(leases[0].address).is_none());
    assert!(store.find_by_hardware(&hardware(1)).is_none());
    assert_eq!(store.state_count(PoolId(0), BindingState::Active), 0);
    for (index, lease) in leases.iter().enumerate().skip(1) {
        assert_eq!(store.get(lease.address), Some(lease));
        assert_eq!(
            store.find_by_hardware(&hardware(index as u8 + 1)),
            Some(lease)
        );
    }
    let (lease, offer) = store.take(Ipv4Addr::new(10, 1, 0, 15));
    assert!(lease.is_none());
    assert_eq!(offer.map(|offer| offer.until), Some(5_000));
    assert!(store.is_available(
        Ipv4Addr::new(10, 1, 0, 15),
        &ClientKey::Hardware(hardware(1)),
        1_000
    ));
}

/// The defect a reload could cause: a config that reorders or adds shared networks puts some
/// of them in other shards; a lease left in its old shard would be invisible to the requests of
/// its network (and allocated twice).
#[test]
fn a_reload_moves_leases_to_their_new_shard_and_keeps_every_one() {
    let config = parse(THREE_NETWORKS);
    let mut single = LeaseStore::new(&config);
    for lease in some_leases() {
        single.upsert(lease);
    }
    // An offer of a never-used address of network b moves with it.
    let offered = Ipv4Addr::new(10, 2, 0, 17);
    let client = ClientKey::Hardware(hardware(7));
    single.hold_offer(offered, client.clone(), 5_000);
    let store = ShardedStore::from_store(config, 3, single);
    assert_eq!(store.layout().of_address(offered), 1);
    // Network b comes first now, and a new network takes the second place: every network
    // with pools changes shard.
    let reordered = parse(
        r#"
        subnet 10.9.0.0 netmask 255.255.255.0 { }
        shared-network b {
            subnet 10.2.0.0 netmask 255.255.255.0 { range 10.2.0.10 10.2.0.19; }
        }
        subnet 10.4.0.0 netmask 255.255.255.0 { range 10.4.0.10 10.4.0.19; }
        shared-network a {
            subnet 10.1.0.0 netmask 255.255.255.0 { range 10.1.0.10 10.1.0.19; }
            subnet 10.1.1.0 netmask 255.255.255.0 { range 10.1.1.10 10.1.1.19; }
        }
        subnet 10.3.0.0 netmask 255.255.255.0 { range 10.3.0.10 10.3.0.19; }
        "#,
    );
    let mut during = false;
    let kept = store
        .reconfigure(reordered.clone(), || during = true)
        .expect("reload");
    assert!(during, "the engine swap runs while the shards are held");
    assert_eq!(kept, 6);
    let layout = store.layout();
    assert!(Arc::ptr_eq(layout.config(), &reordered));
    let found = contents(&store);
    let mut expected: Vec<Ipv4Addr> = some_leases().iter().map(|lease| lease.address).collect();
    expected.sort_unstable();
    assert_eq!(
        found
            .iter()
            .map(|(address, _)| *address)
            .collect::<Vec<_>>(),
        expected,
        "every lease, once"
    );
    for (address, shard) in &found {
        assert_eq!(*shard, layout.of_address(*address), "{address}");
    }
    assert_eq!(layout.of_address(Ipv4Addr::new(10, 2, 0, 13)), 0);
    assert_eq!(layout.of_address(Ipv4Addr::new(10, 1, 0, 11)), 2);
    // The new shards count, index and allocate what they received.
    let shard = store
        .lock_address(Ipv4Addr::new(10, 1, 0, 11))
        .expect("shard");
    let pool_a = reordered
        .addresses()
        .pool_of(Ipv4Addr::new(10, 1, 0, 11))
        .expect("pool");
    assert_eq!(shard.state_count(pool_a, BindingState::Active), 1);
    assert!(shard.find_by_hardware(&hardware(1)).is_some());
    drop(shard);
    let shard = store.lock_address(offered).expect("shard");
    assert!(
        shard.offered_to(offered, &client, 1_000),
        "the offer moved too"
    );
    let pool_b = reordered.addresses().pool_of(offered).expect("pool");
    assert_eq!(shard.available_count(pool_b), 10 - 1 - 1);
}

/// A class's billed leases in two shards count as one total: a shard's changes reach the
/// totals when it is let go (or when a worker reports them), and a reload that moves a billed
/// lease to another shard leaves the total as it was.
#[test]
fn billing_counts_add_up_across_shards() {
    use crate::lease::billing::Billing;
    let config = parse(THREE_NETWORKS);
    let sharded = ShardedStore::new(config.clone(), 3);
    let layout = sharded.layout();
    let class = Billing::class("c");
    let billed = |address: Ipv4Addr, mac: u8| {
        let mut lease = active(address, mac);
        lease.extra_mut().billing = Some(class.clone());
        lease
    };
    let first = Ipv4Addr::new(10, 1, 0, 10);
    let second = Ipv4Addr::new(10, 2, 0, 10);
    assert_ne!(layout.of_address(first), layout.of_address(second));
    sharded
        .lock(layout.of_address(first))
        .unwrap()
        .upsert(billed(first, 1));
    {
        // A worker under the second shard, holding the totals: the first shard's lease counts,
        // and so does its own billing once made.
        let mut shard = sharded.lock(layout.of_address(second)).unwrap();
        let mut totals = sharded.billing();
        assert_eq!(shard.billed(&class, &totals), 1);
        shard.upsert(billed(second, 2));
        assert_eq!(shard.billed(&class, &totals), 2);
        ShardedStore::report_billing(&mut totals, &mut shard);
        assert_eq!(totals.get(&class), 2);
    }
    // A reload that moves the networks to other shards keeps the total.
    let swapped = parse(
        r#"
    subnet 10.9.0.0 netmask 255.255.255.0 { }
    subnet 10.3.0.0 netmask 255.255.255.0 { range 10.3.0.10 10.3.0.19; }
    shared-network b {
        subnet 10.2.0.0 netmask 255.255.255.0 { range 10.2.0.10 10.2.0.19; }
    }
    shared-network a {
        subnet 10.1.0.0 netmask 255.255.255.0 { range 10.1.0.10 10.1.0.19; }
        subnet 10.1.1.0 netmask 255.255.255.0 { range 10.1.1.10 10.1.1.19; }
    }
"#,
    );
    sharded.reconfigure(swapped, || {}).unwrap();
    assert_eq!(sharded.billing().get(&class), 2);
    let shard = sharded.lock(0).unwrap();
    assert!(!shard.has_billing_deltas());
    // Released in its shard: the total follows when the shard is let go.
    drop(shard);
    let layout = sharded.layout();
    let mut freed = active(first, 1);
    freed.binding_state = BindingState::Free;
    sharded
        .lock(layout.of_address(first))
        .unwrap()
        .upsert(freed);
    assert_eq!(sharded.billing().get(&class), 1);
}

/// ISC `lease_instantiate` bills each loaded lease with `bill_class`: a class that is full, has
/// no limit or is not declared any more keeps none of the file's billing beyond its room.
#[test]
fn loading_bills_only_what_the_classes_have_room_for() {
    use crate::lease::billing::{billing_of, Billing};
    let config = parse(&format!(
        "class \"c\" {{ match hardware; lease limit 2; }}\nclass \"free\" {{ match hardware; }}\n{THREE_NETWORKS}"
    ));
    let billed = |address: [u8; 4], mac: u8, class: &str| {
        let mut lease = active(Ipv4Addr::from(address), mac);
        lease.extra_mut().billing = Some(Billing::class(class));
        lease
    };
    let mut text = Vec::new();
    for lease in [
        billed([10, 1, 0, 10], 1, "c"),
        billed([10, 2, 0, 10], 2, "c"),
        billed([10, 3, 0, 10], 3, "c"),
        billed([10, 1, 0, 11], 4, "free"),
        billed([10, 1, 0, 12], 5, "gone"),
    ] {
        crate::lease::file::write_lease(&lease, &mut text);
    }
    let directory =
        std::env::temp_dir().join(format!("xdhcpd-shards-billing-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("directory");
    let path = directory.join("dhcpd.leases");
    std::fs::write(&path, &text).expect("write");
    let store = ShardedStore::new(config, 3);
    store.load_path(&path).expect("load");
    assert_eq!(store.billing().get(&Billing::class("c")), 2);
    assert_eq!(store.billing().iter().count(), 1);
    let mut billed_leases = 0;
    store
        .for_each(|_, shard| {
            billed_leases += shard
                .iter()
                .filter(|lease| billing_of(lease).is_some())
                .count()
        })
        .unwrap();
    assert_eq!(billed_leases, 2);
    let _ = std::fs::remove_dir_all(&directory);
}

/// The compaction's copy takes a shard's lock for a few thousand leases at a time; a shard
/// larger than that is still copied whole, each lease once, while another thread changes
/// leases in place and adds new ones between the holds.
#[test]
fn the_copy_of_a_large_shard_holds_its_lock_in_parts_and_misses_no_lease() {
    let config = parse("subnet 10.0.0.0 netmask 255.0.0.0 { range 10.0.0.1 10.0.255.254; }");
    let store = Arc::new(ShardedStore::new(config, 1));
    for index in 0..20_000u32 {
        let address = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 1)) + index);
        store
            .lock_address(address)
            .expect("shard")
            .upsert(active(address, (index % 250) as u8));
    }
    let writer = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            for index in 0..5_000u32 {
                // In place (an existing address) and new (past the first 20,000).
                for offset in [index, 20_000 + index] {
                    let address = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 1)) + offset);
                    store
                        .lock_address(address)
                        .expect("shard")
                        .upsert(active(address, 7));
                }
            }
        })
    };
    let copy = store.leases().expect("copy");
    writer.join().expect("writer");
    let mut addresses: Vec<Ipv4Addr> = copy.iter().map(|lease| lease.address).collect();
    addresses.sort_unstable();
    let before = addresses.len();
    addresses.dedup();
    assert_eq!(addresses.len(), before, "each lease once");
    let first = u32::from(Ipv4Addr::new(10, 0, 0, 1));
    for index in 0..20_000u32 {
        assert!(
            addresses
                .binary_search(&Ipv4Addr::from(first + index))
                .is_ok(),
            "lease {index} copied"
        );
    }
}
