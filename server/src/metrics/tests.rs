//! Unit tests of the metrics: label mapping, the text exposition, pool usage counted in chunks,
//! histograms, and the kernel socket counters against /proc/net/udp.

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::collectors::{pool_usage, PoolUsage, Sources};
use super::*;
use crate::config::model::Config;
use crate::engine::{IgnoreReason, Malformation, Outcome};
use crate::lease::commit::{append_latency_bucket, CommitStats};
use crate::lease::record::{BindingState, Lease};
use crate::lease::shards::ShardedStore;
use crate::lease::store::LeaseStore;

const CONFIG: &str = "authoritative;\n\
    subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.19; }\n\
    subnet 10.1.0.0 netmask 255.255.0.0 { pool { range 10.1.0.1 10.1.1.0; } }\n";

fn lease(address: Ipv4Addr, state: BindingState) -> Lease {
    let mut lease = Lease::free(address);
    lease.starts = 1_000;
    lease.ends = 2_000;
    lease.binding_state = state;
    lease
}

fn sources(config: Config, store: LeaseStore) -> Sources {
    let config = Arc::new(config);
    let leases = Arc::new(ShardedStore::from_store(config.clone(), 2, store));
    Sources {
        config: Arc::new(move || config.clone()),
        leases,
        commit: Arc::new(CommitStats::default()),
        fast_path: None,
        failover: Vec::new(),
    }
}

#[test]
fn decisions_count_by_reply_type_and_drop_reason() {
    let metrics = Metrics::default();
    let address = Ipv4Addr::new(10, 0, 0, 5);
    metrics.count_decision(&Outcome::Offered(address));
    metrics.count_decision(&Outcome::Acked(address));
    metrics.count_decision(&Outcome::Informed);
    metrics.count_decision(&Outcome::Released(address));
    metrics.count_decision(&Outcome::Ignored(IgnoreReason::NoFreeAddress));
    metrics.count_decision(&Outcome::Ignored(IgnoreReason::Malformed(
        Malformation::NotBootRequest,
    )));
    metrics.count_malformed();
    metrics.commit_failures.increment();
    assert_eq!(metrics.sent(SentType::Offer), 1);
    assert_eq!(metrics.sent(SentType::Ack), 2);
    assert_eq!(metrics.drops(DropReason::PoolExhausted), 1);
    assert_eq!(metrics.drops(DropReason::Malformed), 2);
    assert_eq!(metrics.drops(DropReason::CommitFailed), 1);
}

#[test]
fn exposition_has_families_with_labels() {
    let metrics = Arc::new(Metrics::default());
    let mut discover = dhcproto::v4::Message::default();
    discover
        .opts_mut()
        .insert(dhcproto::v4::DhcpOption::MessageType(MessageType::Discover));
    metrics.count_received(&discover);
    metrics.count_received(&dhcproto::v4::Message::default());
    metrics.count_decision(&Outcome::Ignored(IgnoreReason::UnknownSubnet));
    metrics
        .ddns
        .count_update(crate::ddns::metrics::UpdateResult::TsigRejected);
    metrics.ddns.dropped.inc();
    let config = crate::config::parse_str(CONFIG, "test.conf").unwrap();
    let store = LeaseStore::new(&config);
    let registry = metrics.registry(sources(config, store));
    let text = render(&registry).unwrap();
    for expected in [
        "# TYPE xdhcpd_packets_received_total counter\n",
        "xdhcpd_packets_received_total{type=\"discover\"} 1\n",
        "xdhcpd_packets_received_total{type=\"bootp\"} 1\n",
        "xdhcpd_packets_sent_total{type=\"ack\"} 0\n",
        "xdhcpd_drops_total{reason=\"no_subnet\"} 1\n",
        "xdhcpd_drops_total{reason=\"pool_exhausted\"} 0\n",
        "xdhcpd_pool_addresses{subnet=\"10.0.0.0/24\",pool=\"0\"} 10\n",
        "xdhcpd_pool_free{subnet=\"10.1.0.0/16\",pool=\"1\"} 256\n",
        "# TYPE xdhcpd_lease_commit_fsync_seconds histogram\n",
        "xdhcpd_lease_commit_fsync_seconds_bucket{le=\"+Inf\"} 0\n",
        "xdhcpd_lease_commit_batch_records_count 0\n",
        "xdhcpd_ddns_updates_total{result=\"tsig_rejected\"} 1\n",
        "xdhcpd_ddns_updates_total{result=\"success\"} 0\n",
        "xdhcpd_ddns_operations_total{result=\"gave_up\"} 0\n",
        "xdhcpd_ddns_dropped_total 1\n",
        "xdhcpd_ddns_queue_depth 0\n",
        "# TYPE xdhcpd_ddns_update_latency_seconds histogram\n",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
}

#[test]
fn pool_usage_counts_states_from_the_store_counters() {
    let config = crate::config::parse_str(CONFIG, "test.conf").unwrap();
    let mut store = LeaseStore::new(&config);
    store.upsert(lease(Ipv4Addr::new(10, 0, 0, 10), BindingState::Active));
    store.upsert(lease(Ipv4Addr::new(10, 0, 0, 11), BindingState::Abandoned));
    store.upsert(lease(Ipv4Addr::new(10, 0, 0, 12), BindingState::Free));
    store.upsert(lease(Ipv4Addr::new(10, 0, 0, 13), BindingState::Backup));
    // Many leases on the same addresses: the counters follow replacements.
    for index in 0..5_000u32 {
        let address = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 1, 0, 1)) + index % 256);
        store.upsert(lease(address, BindingState::Active));
    }
    // Outside every pool: counted as a lease, in no pool.
    store.upsert(lease(Ipv4Addr::new(10, 0, 0, 200), BindingState::Active));
    // Two shards, one per shared network: each pool is counted in its own.
    let leases = ShardedStore::from_store(Arc::new(config.clone()), 2, store);
    assert!(!leases.lock(0).unwrap().is_empty() && !leases.lock(1).unwrap().is_empty());
    let (usage, count) = pool_usage(&config, &leases);
    assert_eq!(count, 4 + 256 + 1);
    assert_eq!(
        usage[0],
        PoolUsage {
            total: 10,
            active: 1,
            backup: 1,
            abandoned: 1
        }
    );
    assert_eq!(usage[0].free(), 7);
    assert_eq!(usage[1].total, 256);
    assert_eq!(usage[1].active, 256);
    assert_eq!(usage[1].free(), 0);
}

#[test]
fn append_latency_buckets_follow_their_bounds() {
    assert_eq!(append_latency_bucket(0), 0);
    assert_eq!(append_latency_bucket(100), 0);
    assert_eq!(append_latency_bucket(101), 1);
    assert_eq!(append_latency_bucket(1_000_000), 11);
    assert_eq!(append_latency_bucket(u64::MAX), 12);
}

#[test]
fn proc_net_udp_drops_column_is_found_by_inode() {
    let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
         \x20 1: 00000000:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17\n\
         \x20 2: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4243 2 0000000000000000 0\n";
    assert_eq!(socket::proc_net_udp_drops(table, 4242), Some(17));
    assert_eq!(socket::proc_net_udp_drops(table, 4243), Some(0));
    assert_eq!(socket::proc_net_udp_drops(table, 1), None);
}

/// A socket that is never read overflows its receive buffer: the kernel's drop counter, read
/// with SO_MEMINFO, sees every datagram lost, and agrees with /proc/net/udp.
#[test]
fn kernel_socket_drops_are_read() {
    use std::os::fd::AsRawFd as _;
    let receiver = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .unwrap();
    receiver.set_recv_buffer_size(4096).unwrap();
    receiver
        .bind(&std::net::SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0).into())
        .unwrap();
    let target = receiver.local_addr().unwrap().as_socket().unwrap();
    let sender = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    for _ in 0..200 {
        sender.send_to(&[0u8; 512], target).unwrap();
    }
    let counters = socket::socket_counters(receiver.as_raw_fd()).unwrap();
    assert!(counters.drops > 0, "{counters:?}");
    assert!(counters.receive_queue_bytes > 0, "{counters:?}");
    let inode = socket::socket_inode(receiver.as_raw_fd()).unwrap();
    let table = std::fs::read_to_string("/proc/net/udp").unwrap();
    assert_eq!(
        socket::proc_net_udp_drops(&table, inode),
        Some(counters.drops)
    );
}

/// `option xdhcpd.metrics-listen` (with the declarations ISC dhcpd 4.4 needs to accept the same
/// file) sets the endpoint without a warning; a bad address is an error with its location.
#[test]
fn config_statement_sets_the_endpoint() {
    let text = "option space xdhcpd;\n\
        option xdhcpd.metrics-listen code 10 = text;\n\
        option xdhcpd.metrics-listen \"127.0.0.1:9167\";\n\
        subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.19; }\n";
    let config = crate::config::parse_str(text, "test.conf").unwrap();
    assert_eq!(
        config.metrics_listen,
        Some("127.0.0.1:9167".parse().unwrap())
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let bad = text.replace("127.0.0.1:9167", "localhost");
    let errors = crate::config::parse_str(&bad, "test.conf").unwrap_err();
    assert!(errors.to_string().contains("test.conf:3"), "{errors}");
}

/// A lease file that never takes an append (as on a full disk).
struct FullDisk;

impl crate::lease::commit::LogFile for FullDisk {
    fn append(&mut self, _: &[u8]) -> Result<(), crate::lease::log::LeaseLogError> {
        Err(crate::lease::log::LeaseLogError::Io {
            action: "append to",
            path: "dhcpd.leases".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOSPC),
        })
    }
    fn rewrite(&mut self, _: &[u8]) -> Result<(), crate::lease::log::LeaseLogError> {
        Ok(())
    }
    fn appended_bytes(&self) -> u64 {
        0
    }
    fn compact_bytes(&self) -> u64 {
        0
    }
    fn needs_rewrite(&self) -> bool {
        false
    }
    fn is_detached(&self) -> bool {
        false
    }
    fn path(&self) -> &std::path::Path {
        std::path::Path::new("dhcpd.leases")
    }
    type Staged = ();
    fn stager(&self) -> crate::lease::commit::Stager<()> {
        Box::new(|_| Ok(()))
    }
    fn install(&mut self, (): (), _: &[u8]) -> Result<(), crate::lease::log::LeaseLogError> {
        Ok(())
    }
}

/// The README promises `drops_total{reason="commit_failed"}` for replies dropped because their
/// lease could not be made durable; it stayed 0 while the committer dropped them.
#[test]
fn replies_of_a_failed_batch_count_as_commit_failed() {
    use crate::lease::commit::{GroupCommit, GroupCommitConfig};
    let metrics = Arc::new(Metrics::default());
    let counted = Arc::clone(&metrics);
    let commit = GroupCommit::spawn(
        FullDisk,
        GroupCommitConfig::default(),
        |_: Vec<Option<&'static str>>| panic!("nothing is durable on a full disk"),
        move |tokens: Vec<Option<&'static str>>| counted.count_commit_failures(&tokens),
        |_: &mut Vec<u8>| true,
    )
    .unwrap();
    // Two leases with their DHCPACKs and an expiry record without a reply.
    commit.submit(b"lease a".to_vec(), Some("ack a")).unwrap();
    commit.submit(b"lease b".to_vec(), Some("ack b")).unwrap();
    commit.submit(b"expiry".to_vec(), None).unwrap();
    commit.flush().unwrap();
    commit.shutdown();
    assert_eq!(metrics.drops(DropReason::CommitFailed), 2);
    let config = crate::config::parse_str(CONFIG, "test.conf").unwrap();
    let store = LeaseStore::new(&config);
    let text = render(&metrics.registry(sources(config, store))).unwrap();
    assert!(
        text.contains("xdhcpd_drops_total{reason=\"commit_failed\"} 2\n"),
        "{text}"
    );
}

/// The packet path's counters are per-thread copies summed at scrape time: what many workers
/// counted adds up exactly, and the lock-hold histogram renders as the shared
/// `prometheus_client` histogram it replaced did (same `le` labels: the bench scrapes them).
#[test]
fn counters_of_many_threads_are_summed_at_scrape_time() {
    let metrics = Arc::new(Metrics::default());
    let holds = [0.5e-6, 3e-6, 2e-5, 0.004, 2.0];
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let metrics = metrics.clone();
            std::thread::spawn(move || {
                let mut discover = dhcproto::v4::Message::default();
                discover
                    .opts_mut()
                    .insert(dhcproto::v4::DhcpOption::MessageType(MessageType::Discover));
                for _ in 0..100 {
                    metrics.count_received(&discover);
                    metrics.packets_received.increment();
                    metrics.send_errors.add(2);
                }
                for hold in holds {
                    metrics.store_lock_hold.observe(hold);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
    assert_eq!(metrics.received(ReceivedType::Discover), 400);
    assert_eq!(metrics.drops(DropReason::SendFailed), 800);
    let config = crate::config::parse_str(CONFIG, "test.conf").unwrap();
    let store = LeaseStore::new(&config);
    let text = render(&metrics.registry(sources(config, store))).unwrap();
    for expected in [
        "xdhcpd_packets_received_total{type=\"discover\"} 400\n",
        "xdhcpd_datagrams_received_total 400\n",
        "xdhcpd_send_errors_total 800\n",
        "xdhcpd_drops_total{reason=\"send_failed\"} 800\n",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    // The same observations in the shared histogram of before.
    let reference = prometheus_client::metrics::histogram::Histogram::new(
        prometheus_client::metrics::histogram::exponential_buckets(1e-6, 4.0, 11),
    );
    for _ in 0..4 {
        for hold in holds {
            reference.observe(hold);
        }
    }
    let mut registry = prometheus_client::registry::Registry::with_prefix("xdhcpd");
    registry.register(
        "store_lock_hold_seconds",
        "time a worker holds the lease store's lock for one received batch",
        reference,
    );
    let expected = render(&registry).unwrap();
    let histogram_lines = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| line.contains("store_lock_hold_seconds"))
            .filter(|line| !line.contains("_sum"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(histogram_lines(&text), histogram_lines(&expected));
    assert!(
        text.contains("xdhcpd_store_lock_hold_seconds_count 20\n"),
        "{text}"
    );
}
