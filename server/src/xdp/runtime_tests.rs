//! Unit tests of the fast-path runtime: load balancing, kernel keys, ring-buffer events, and
//! the consumer with the in-memory maps (plain and failover leases).

use super::*;
use crate::lease::record::Hardware;
use crate::lease::store::ClientKey;

/// `store` as the daemon holds it (one shard: these configs have one shared network).
fn sharded(config: &crate::config::model::Config, store: LeaseStore) -> ShardedStore {
    ShardedStore::from_store(Arc::new(config.clone()), 1, store)
}

fn peer_config(primary: bool) -> &'static str {
    if primary {
        "failover peer \"fo\" { primary; address 10.0.0.1; peer address 10.0.0.2; mclt 300; split 128; load balance max seconds 3; }\nsubnet 10.0.0.0 netmask 255.255.255.0 { pool { failover peer \"fo\"; range 10.0.0.10 10.0.0.20; } }"
    } else {
        "failover peer \"fo\" { secondary; address 10.0.0.2; peer address 10.0.0.1; load balance max seconds 3; }\nsubnet 10.0.0.0 netmask 255.255.255.0 { pool { failover peer \"fo\"; range 10.0.0.10 10.0.0.20; } }"
    }
}

/// The kernel gets "my buckets": the HBA on a primary, its complement on a secondary, and
/// only while NORMAL (docs/spec/failover.md §11.1, §11.3).
#[test]
fn load_balancing_follows_role_and_state() {
    use crate::failover::codes::ServerStateCode;
    use crate::failover::states::State;
    let hba = server_common::loadbalance::split_to_hba(128);
    for primary in [true, false] {
        let config = crate::config::parse_str(peer_config(primary), "fo.conf").expect("config");
        let hooks = crate::failover::hooks::FailoverHooks::new(&config);
        let status = &hooks.relationships()[0];
        assert_eq!(LoadBalancing::of(status), None, "not attached yet");
        let (sender, _receiver) = tokio::sync::mpsc::channel(crate::failover::hooks::CHANGES_QUEUE);
        status.attach(sender);
        status.publish(
            State::Startup {
                saved: ServerStateCode::Normal,
                until: 0,
            },
            0,
            None,
            300,
            Some(hba),
        );
        assert_eq!(LoadBalancing::of(status), None, "not NORMAL");
        status.publish(
            State::Normal,
            0,
            Some(ServerStateCode::Normal),
            300,
            Some(hba),
        );
        let balancing = LoadBalancing::of(status).expect("NORMAL balances");
        assert_eq!(balancing.max_secs, 3);
        let expected = if primary { hba } else { hba.map(|byte| !byte) };
        assert_eq!(balancing.mine, expected);
    }
}

#[test]
fn kernel_keys_map_to_store_keys() {
    let id = LeaseKey::new(KEY_CLIENT_ID, 0, &[1, 2, 3]).expect("key");
    assert_eq!(
        sync::kernel_client(&id),
        Some(ClientKey::ClientId(vec![1, 2, 3].into_boxed_slice()))
    );
    let mac = [2, 0, 0, 0, 0, 9];
    let hardware = LeaseKey::new(KEY_HARDWARE, 1, &mac).expect("key");
    assert_eq!(
        sync::kernel_client(&hardware),
        Hardware::new(1, &mac).map(ClientKey::Hardware)
    );
    let mut bad = id;
    bad.kind = 7;
    assert_eq!(sync::kernel_client(&bad), None);
    bad.kind = KEY_CLIENT_ID;
    bad.len = 40;
    assert_eq!(sync::kernel_client(&bad), None);
}

#[test]
fn events_parse_and_short_records_are_skipped() {
    let event = RenewalEvent {
        key: LeaseKey::new(KEY_HARDWARE, 1, &[2, 0, 0, 0, 0, 9]).expect("key"),
        address: u32::from_ne_bytes([10, 0, 0, 9]),
        starts: 1000,
        ends: 4600,
        xid: 7,
    };
    // SAFETY: reading the bytes of a plain #[repr(C)] value.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&event as *const RenewalEvent).cast::<u8>(),
            std::mem::size_of::<RenewalEvent>(),
        )
    };
    assert_eq!(parse_event(bytes), Some(event));
    assert_eq!(parse_event(&bytes[..10]), None);
}

/// The lease log and failover as the consumer sees them: records submitted, flushes, and
/// the engine's failover hooks.
struct TestSink {
    submitted: Mutex<Vec<Lease>>,
    flushes: std::sync::atomic::AtomicU32,
    hooks: crate::failover::hooks::FailoverHooks,
}

impl LeaseSink for TestSink {
    fn submit(&self, lease: &Lease) {
        self.submitted.lock().expect("lock").push(lease.clone());
        // As the daemon's `crate::changes::apply` does for a kernel renewal.
        self.hooks.leases_changed(std::slice::from_ref(lease));
    }

    fn flush(&self) -> bool {
        self.flushes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        true
    }

    fn failover(&self) -> Option<FailoverRef<'_>> {
        Some(Box::new(&self.hooks))
    }
}

/// A kernel renewal is applied as the engine's ACK would be: the store's lease (starts,
/// cltt, ends = the next horizon, tstp = now + 1.5 × lease time), one record for the log,
/// the address handed to the failover driver for a BNDUPD (docs/spec/failover.md §7.2), and after the
/// flush the kernel's horizon moves on. A lease outside failover pools is not handed over.
#[test]
fn kernel_renewals_are_logged_and_queued_as_bndupds() {
    use crate::lease::record::BindingState;
    use crate::xdp::maps::FakeMaps;
    use server_common::fastpath::Template;
    let config = crate::config::parse_str(
        &format!(
            "{}\nsubnet 10.0.1.0 netmask 255.255.255.0 {{ range 10.0.1.10 10.0.1.20; }}",
            peer_config(true)
        ),
        "fo.conf",
    )
    .expect("config");
    let hooks = crate::failover::hooks::FailoverHooks::new(&config);
    let (sender, mut changes) = tokio::sync::mpsc::channel(crate::failover::hooks::CHANGES_QUEUE);
    hooks.relationships()[0].attach(sender);
    publish_state(&hooks, true);
    let sink = TestSink {
        submitted: Mutex::new(Vec::new()),
        flushes: std::sync::atomic::AtomicU32::new(0),
        hooks,
    };
    let mut store = LeaseStore::new(&config);
    let fast_path = Mutex::new(FastPath::new(FakeMaps::default()));
    let mut events = Vec::new();
    for (last, address, relationship) in [(1u8, [10, 0, 0, 11], 1), (2, [10, 0, 1, 11], 0)] {
        let mac = [2, 0, 0, 0, 0, last];
        let mut lease = Lease::free(std::net::Ipv4Addr::from(address));
        lease.binding_state = BindingState::Active;
        lease.hardware = Hardware::new(1, &mac);
        lease.starts = 10_000;
        lease.ends = 17_200;
        lease.tstp = 15_400;
        lease.tsfp = 15_400;
        store.upsert(lease);
        let key = LeaseKey::new(KEY_HARDWARE, 1, &mac).expect("key");
        let prepared = Prepared {
            key,
            address: u32::from_ne_bytes(address),
            lease_time: 3600,
            giaddr: 0,
            fingerprint: 1,
            cache_threshold: 25,
            template: Template::EMPTY,
        };
        fast_path
            .lock()
            .expect("lock")
            .publish_in(&prepared, 13_600, 17_200, relationship)
            .expect("publish");
        events.push(RenewalEvent {
            key,
            address: u32::from_ne_bytes(address),
            starts: 12_000,
            ends: 15_600,
            xid: 7,
        });
    }
    let leases = sharded(&config, store);
    assert!(consume(&fast_path, &leases, &sink, Vec::new(), &events, 0));

    assert_eq!(sink.flushes.load(std::sync::atomic::Ordering::Relaxed), 1);
    let submitted = sink.submitted.lock().expect("lock").clone();
    assert_eq!(submitted.len(), 2, "both renewals go to the lease log");
    let failover_lease = &submitted[0];
    assert_eq!(
        (
            failover_lease.starts,
            failover_lease.cltt,
            failover_lease.ends
        ),
        (12_000, 12_000, 15_600 + 3600)
    );
    // tstp = now + desired + granted / 2; tsfp stays what the partner acked.
    assert_eq!(
        (failover_lease.tstp, failover_lease.tsfp),
        (12_000 + 5400, 15_400)
    );
    // In NORMAL the partner hears of it soon: the rewind state steps to ACTIVE (§8.2).
    assert_eq!(failover_lease.rewind_binding_state, BindingState::Active);
    let plain_lease = &submitted[1];
    assert_eq!((plain_lease.tstp, plain_lease.tsfp), (15_400, 15_400));
    // Only the failover pool's lease becomes a BNDUPD.
    assert_eq!(
        changes.try_recv().ok(),
        Some(std::net::Ipv4Addr::new(10, 0, 0, 11))
    );
    assert!(changes.try_recv().is_err());
    // The store holds what the log holds (the driver reads the lease from there).
    let stored = leases
        .lock(0)
        .expect("lock")
        .get(std::net::Ipv4Addr::new(10, 0, 0, 11))
        .cloned()
        .expect("lease");
    assert_eq!(&stored, failover_lease);
    // After the flush, the kernel may extend up to the new horizon; the failover lease only
    // up to tsfp + MCLT (15_400 + 300), where the engine would start shortening the grant.
    let horizons = |fast_path: &Mutex<FastPath<FakeMaps>>| {
        let fast_path = fast_path.lock().expect("lock");
        events
            .iter()
            .map(|event| {
                let value = fast_path.maps().lease(&event.key).expect("published");
                (value.ends, value.horizon)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        horizons(&fast_path),
        vec![(15_600, 15_700), (15_600, 15_600 + 3600)]
    );
    // The partner's BNDACK raises tsfp to the tstp sent: the held-back horizon follows, up to
    // the durable one.
    let acked = std::net::Ipv4Addr::new(10, 0, 0, 11);
    set_tsfp(&leases, acked, 17_400);
    follow_failover(&fast_path, &leases, &sink.hooks);
    assert_eq!(horizons(&fast_path)[0], (15_600, 17_700));
    set_tsfp(&leases, acked, 30_000);
    follow_failover(&fast_path, &leases, &sink.hooks);
    assert_eq!(horizons(&fast_path)[0], (15_600, 15_600 + 3600));
    // No longer held back: not followed any more.
    set_tsfp(&leases, acked, 16_000);
    follow_failover(&fast_path, &leases, &sink.hooks);
    assert_eq!(horizons(&fast_path)[0], (15_600, 15_600 + 3600));
}

/// The service state of each relationship goes to the kernel's relationships map (one write
/// per change, whatever the number of leases); a reload writes every slot again.
#[test]
fn relationship_states_reach_the_kernel_on_change() {
    use crate::xdp::maps::{FastPathMaps, MapsError};
    /// Fake maps that count relationship writes.
    #[derive(Default)]
    struct Counting(FakeMapsCounter);
    #[derive(Default)]
    struct FakeMapsCounter {
        inner: crate::xdp::maps::FakeMaps,
        writes: u32,
    }
    impl FastPathMaps for Counting {
        fn set_config(
            &mut self,
            c: &server_common::fastpath::FastPathConfig,
        ) -> Result<(), MapsError> {
            self.0.inner.set_config(c)
        }
        fn set_interface_mac(&mut self, i: u32, m: [u8; 6]) -> Result<(), MapsError> {
            self.0.inner.set_interface_mac(i, m)
        }
        fn put_template(
            &mut self,
            i: u32,
            t: &server_common::fastpath::Template,
        ) -> Result<(), MapsError> {
            self.0.inner.put_template(i, t)
        }
        fn remove_template(&mut self, i: u32) -> Result<(), MapsError> {
            self.0.inner.remove_template(i)
        }
        fn put_lease(
            &mut self,
            k: &LeaseKey,
            v: &server_common::fastpath::LeaseValue,
        ) -> Result<(), MapsError> {
            self.0.inner.put_lease(k, v)
        }
        fn remove_lease(&mut self, k: &LeaseKey) -> Result<(), MapsError> {
            self.0.inner.remove_lease(k)
        }
        fn set_relationship(&mut self, i: u32, serves: bool) -> Result<(), MapsError> {
            self.0.writes += 1;
            self.0.inner.set_relationship(i, serves)
        }
        fn lease(&self, k: &LeaseKey) -> Option<server_common::fastpath::LeaseValue> {
            self.0.inner.lease(k)
        }
    }
    let config = crate::config::parse_str(peer_config(true), "fo.conf").expect("config");
    let hooks = crate::failover::hooks::FailoverHooks::new(&config);
    let (sender, _changes) = tokio::sync::mpsc::channel(crate::failover::hooks::CHANGES_QUEUE);
    hooks.relationships()[0].attach(sender);
    let mut fast_path = FastPath::new(Counting::default());
    let sync = |fast_path: &mut FastPath<Counting>| {
        fast_path
            .set_relationships(&crate::xdp::bounds::serving(&hooks))
            .expect("write");
        (
            fast_path.maps().0.inner.relationships.get(&0).copied(),
            fast_path.maps().0.writes,
        )
    };
    // STARTUP: closed.
    assert_eq!(sync(&mut fast_path), (Some(false), 1));
    assert_eq!(
        sync(&mut fast_path),
        (Some(false), 1),
        "no change, no write"
    );
    publish_state(&hooks, true);
    assert_eq!(sync(&mut fast_path), (Some(true), 2));
    // The partner in PARTNER-DOWN silences us although we are NORMAL (docs/spec/failover.md §6.1).
    hooks.relationships()[0].publish(
        crate::failover::states::State::Normal,
        0,
        Some(crate::failover::codes::ServerStateCode::PartnerDown),
        300,
        None,
    );
    assert_eq!(sync(&mut fast_path), (Some(false), 3));
    publish_state(&hooks, true);
    assert_eq!(sync(&mut fast_path), (Some(true), 4));
    fast_path.withdraw_all().expect("withdraw");
    assert_eq!(
        sync(&mut fast_path),
        (Some(true), 5),
        "rewritten after a reload"
    );
}

/// Publishes NORMAL (partner NORMAL) or STARTUP on the only relationship of `hooks`.
fn publish_state(hooks: &crate::failover::hooks::FailoverHooks, normal: bool) {
    use crate::failover::codes::ServerStateCode;
    use crate::failover::states::State;
    let state = if normal {
        State::Normal
    } else {
        State::Startup {
            saved: ServerStateCode::Normal,
            until: 0,
        }
    };
    hooks.relationships()[0].publish(state, 0, Some(ServerStateCode::Normal), 300, None);
}

/// What the failover driver does on a BNDACK: the store's lease gets the acked tsfp.
fn set_tsfp(leases: &ShardedStore, address: std::net::Ipv4Addr, tsfp: UnixTime) {
    let mut store = leases.lock_address(address).expect("lock");
    let mut lease = store.get(address).cloned().expect("lease");
    lease.tsfp = tsfp;
    store.upsert(lease);
}

/// A renewal the engine answered in a failover pool is published with the kernel horizon
/// min(durable horizon, tsfp + MCLT) and its relationship's slot.
#[test]
fn failover_publications_are_bounded_by_mclt_and_state() {
    use crate::lease::record::BindingState;
    use crate::xdp::maps::FakeMaps;
    use server_common::fastpath::Template;
    let config = crate::config::parse_str(peer_config(true), "fo.conf").expect("config");
    let hooks = crate::failover::hooks::FailoverHooks::new(&config);
    let (sender, _changes) = tokio::sync::mpsc::channel(crate::failover::hooks::CHANGES_QUEUE);
    hooks.relationships()[0].attach(sender);
    let sink = TestSink {
        submitted: Mutex::new(Vec::new()),
        flushes: std::sync::atomic::AtomicU32::new(0),
        hooks,
    };
    let address = std::net::Ipv4Addr::new(10, 0, 0, 12);
    let mac = [2, 0, 0, 0, 0, 12];
    let mut store = LeaseStore::new(&config);
    let mut lease = Lease::free(address);
    lease.binding_state = BindingState::Active;
    lease.hardware = Hardware::new(1, &mac);
    // The engine's full 3600 s grant at 10_000, with the partner's ack of 14_000.
    lease.starts = 10_000;
    lease.ends = 13_600 + 3600;
    lease.tstp = 10_000 + 5400;
    lease.tsfp = 14_000;
    store.upsert(lease);
    let leases = sharded(&config, store);
    let key = LeaseKey::new(KEY_HARDWARE, 1, &mac).expect("key");
    let publication = || {
        vec![Update::Publish(Box::new(Publish {
            prepared: Prepared {
                key,
                address: u32::from_ne_bytes(address.octets()),
                lease_time: 3600,
                giaddr: 0,
                fingerprint: 1,
                cache_threshold: 25,
                template: Template::EMPTY,
            },
            ends: 13_600,
            horizon: 13_600 + 3600,
            generation: 0,
        }))]
    };
    let fast_path = Mutex::new(FastPath::new(FakeMaps::default()));
    assert!(consume(&fast_path, &leases, &sink, publication(), &[], 0));
    let published = |fast_path: &Mutex<FastPath<FakeMaps>>| {
        let fast_path = fast_path.lock().expect("lock");
        fast_path
            .maps()
            .lease(&key)
            .map(|value| (value.horizon, value.relationship))
    };
    // tsfp + MCLT < durable; the lease names its relationship's slot (0) + 1.
    assert_eq!(published(&fast_path), Some((14_300, 1)));
    let bounded = fast_path.lock().expect("lock").failover.leases[&key];
    assert!(bounded.held_back());
    assert_eq!(bounded.durable, 17_200);
    // Withdrawn (userspace answered differently): no longer followed.
    fast_path
        .lock()
        .expect("lock")
        .withdraw(&key)
        .expect("withdraw");
    assert!(fast_path.lock().expect("lock").failover.leases.is_empty());
}

/// A plain (non-failover) config, its store with one ACTIVE lease published in the kernel.
struct Published {
    config: crate::config::model::Config,
    leases: ShardedStore,
    fast_path: Mutex<FastPath<crate::xdp::maps::FakeMaps>>,
    key: LeaseKey,
    address: std::net::Ipv4Addr,
}

fn published_lease() -> Published {
    use crate::lease::record::BindingState;
    let config = crate::config::parse_str(
        "subnet 10.0.1.0 netmask 255.255.255.0 { range 10.0.1.10 10.0.1.20; }",
        "plain.conf",
    )
    .expect("config");
    let address = std::net::Ipv4Addr::new(10, 0, 1, 11);
    let mac = [2, 0, 0, 0, 0, 11];
    let mut store = LeaseStore::new(&config);
    let mut lease = Lease::free(address);
    lease.binding_state = BindingState::Active;
    lease.hardware = Hardware::new(1, &mac);
    lease.starts = 10_000;
    // The engine's ACK is stored with ends = horizon (see `FastPathRuntime::prepare`).
    lease.ends = 17_200;
    store.upsert(lease);
    let key = LeaseKey::new(KEY_HARDWARE, 1, &mac).expect("key");
    let mut fast_path = FastPath::new(crate::xdp::maps::FakeMaps::default());
    fast_path
        .publish(&prepared_for(key, address), 13_600, 17_200)
        .expect("publish");
    Published {
        leases: sharded(&config, store),
        config,
        fast_path: Mutex::new(fast_path),
        key,
        address,
    }
}

fn prepared_for(key: LeaseKey, address: std::net::Ipv4Addr) -> Prepared {
    Prepared {
        key,
        address: u32::from_ne_bytes(address.octets()),
        lease_time: 3600,
        giaddr: 0,
        fingerprint: 1,
        cache_threshold: 25,
        template: server_common::fastpath::Template::EMPTY,
    }
}

/// What OMAPI (`set state = 1`, `set ends = 0`), a partner's BNDUPD or expiry can leave in
/// the store: the kernel's entry is stale exactly when the store no longer holds the address
/// ACTIVE for the same client up to the published horizon.
#[test]
fn kernel_entries_are_stale_once_the_store_no_longer_backs_them() {
    use crate::lease::record::BindingState;
    let published = published_lease();
    let fast_path = published.fast_path.lock().expect("lock");
    let stored = published
        .leases
        .lock(0)
        .expect("lock")
        .get(published.address)
        .cloned()
        .expect("lease");
    assert_eq!(fast_path.key_at(published.address), Some(published.key));
    assert_eq!(fast_path.stale_entry(&stored), None, "backed as published");

    let mut freed = stored.clone();
    freed.binding_state = BindingState::Free;
    assert_eq!(fast_path.stale_entry(&freed), Some(published.key));

    let mut shortened = stored.clone();
    shortened.ends = 0;
    assert_eq!(fast_path.stale_entry(&shortened), Some(published.key));

    let mut other_client = stored.clone();
    other_client.hardware = Hardware::new(1, &[2, 0, 0, 0, 0, 99]);
    assert_eq!(fast_path.stale_entry(&other_client), Some(published.key));

    let unpublished = Lease::free(std::net::Ipv4Addr::new(10, 0, 1, 12));
    assert_eq!(fast_path.stale_entry(&unpublished), None);
}

/// A kernel renewal of a lease the store freed since publication is not written back as
/// ACTIVE: the store keeps what OMAPI (or the partner) said and the entry is withdrawn.
#[test]
fn kernel_renewals_of_a_freed_lease_withdraw_it_instead_of_reviving_it() {
    use crate::lease::record::BindingState;
    let published = published_lease();
    let hooks = crate::failover::hooks::FailoverHooks::new(&published.config);
    let sink = TestSink {
        submitted: Mutex::new(Vec::new()),
        flushes: std::sync::atomic::AtomicU32::new(0),
        hooks,
    };
    {
        let mut store = published.leases.lock(0).expect("lock");
        let mut lease = store.get(published.address).cloned().expect("lease");
        lease.binding_state = BindingState::Free;
        lease.next_binding_state = BindingState::Free;
        store.upsert(lease);
    }
    let event = RenewalEvent {
        key: published.key,
        address: u32::from_ne_bytes(published.address.octets()),
        starts: 12_000,
        ends: 15_600,
        xid: 7,
    };
    assert!(consume(
        &published.fast_path,
        &published.leases,
        &sink,
        Vec::new(),
        &[event],
        0
    ));
    assert!(sink.submitted.lock().expect("lock").is_empty());
    let store = published.leases.lock(0).expect("lock");
    assert_eq!(
        store
            .get(published.address)
            .map(|lease| lease.binding_state),
        Some(BindingState::Free)
    );
    let fast_path = published.fast_path.lock().expect("lock");
    assert!(!fast_path.is_published(&published.key));
    assert_eq!(fast_path.key_at(published.address), None);
}

/// A publication prepared under the store's lock but queued after an OMAPI change freed the
/// lease is dropped: the change wins over the older ACK.
#[test]
fn publications_the_store_no_longer_backs_are_dropped() {
    use crate::lease::record::BindingState;
    let published = published_lease();
    let hooks = crate::failover::hooks::FailoverHooks::new(&published.config);
    let sink = TestSink {
        submitted: Mutex::new(Vec::new()),
        flushes: std::sync::atomic::AtomicU32::new(0),
        hooks,
    };
    published
        .fast_path
        .lock()
        .expect("lock")
        .withdraw(&published.key)
        .expect("withdraw");
    let publication = || {
        vec![Update::Publish(Box::new(Publish {
            prepared: prepared_for(published.key, published.address),
            ends: 13_600,
            horizon: 17_200,
            generation: 0,
        }))]
    };
    {
        let mut store = published.leases.lock(0).expect("lock");
        let mut lease = store.get(published.address).cloned().expect("lease");
        lease.binding_state = BindingState::Free;
        store.upsert(lease);
    }
    assert!(consume(
        &published.fast_path,
        &published.leases,
        &sink,
        publication(),
        &[],
        0
    ));
    assert!(!published
        .fast_path
        .lock()
        .expect("lock")
        .is_published(&published.key));
    // Still ACTIVE up to the horizon: published.
    {
        let mut store = published.leases.lock(0).expect("lock");
        let mut lease = store.get(published.address).cloned().expect("lease");
        lease.binding_state = BindingState::Active;
        store.upsert(lease);
    }
    assert!(consume(
        &published.fast_path,
        &published.leases,
        &sink,
        publication(),
        &[],
        0
    ));
    assert!(published
        .fast_path
        .lock()
        .expect("lock")
        .is_published(&published.key));
}
