//! Metrics read at scrape time rather than counted on the packet path: pool utilisation from the
//! lease store, the group committer's histograms, the XDP per-CPU counters and failover state.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::config::model::Config;
use crate::config::model::PoolId;
use crate::failover::hooks::RelationshipStatus;
use crate::failover::states::Role;
use crate::lease::commit::{CommitStats, APPEND_LATENCY_BOUNDS_MICROS, HISTOGRAM_BUCKETS};
use crate::lease::record::BindingState;
use crate::lease::shards::ShardedStore;
use crate::xdp::runtime::FastPathRuntime;

/// Reads the running configuration at scrape time.
pub type ConfigSource = Arc<dyn Fn() -> Arc<Config> + Send + Sync>;

/// What the scrape-time collectors read.
pub struct Sources {
    /// The running configuration (a reload swaps it; pools are labelled from it).
    pub config: ConfigSource,
    pub leases: Arc<ShardedStore>,
    pub commit: Arc<CommitStats>,
    pub fast_path: Option<Arc<FastPathRuntime>>,
    pub failover: Vec<Arc<RelationshipStatus>>,
}

impl Sources {
    pub(super) fn register(self, registry: &mut Registry) {
        registry.register_collector(Box::new(PoolCollector {
            config: self.config,
            leases: self.leases,
        }));
        registry.register_collector(Box::new(CommitCollector { stats: self.commit }));
        if let Some(fast_path) = self.fast_path {
            registry.register_collector(Box::new(XdpCollector { fast_path }));
        }
        if !self.failover.is_empty() {
            registry.register_collector(Box::new(FailoverCollector {
                relationships: self.failover,
            }));
        }
    }
}

/// A pool gauge: name, help, and the value it reads from a pool's usage.
type Column = (&'static str, &'static str, fn(&PoolUsage) -> u64);

/// The label pairs of one sample.
pub(crate) type Pairs = Vec<(&'static str, String)>;

/// Writes one gauge family: a descriptor, then one sample per label set.
pub(super) fn gauges(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Pairs, i64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes one counter family (the encoder adds `_total`).
pub(crate) fn counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Pairs, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge_value(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Lease counts of one pool, ISC's categories (dhcpd.leases binding states, docs/spec/dhcpd-conf.md §8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolUsage {
    /// Addresses in the pool's ranges.
    pub total: u64,
    pub active: u64,
    pub backup: u64,
    pub abandoned: u64,
}

impl PoolUsage {
    /// Everything not bound, reserved for the partner or abandoned: free, expired, released,
    /// reset and never-used addresses (ISC counts all of these as free).
    pub fn free(&self) -> u64 {
        self.total
            .saturating_sub(self.active + self.backup + self.abandoned)
    }
}

/// Per-pool usage from the store's per-state counters (kept on every change, so a scrape is
/// O(pools) under short holds of the shards' locks, one at a time, whatever the number of
/// leases; each pool is read in the shard that holds it). Also returns the number of leases in
/// the store. `config` must be the one the store was last built from (the engine's, which a
/// reload swaps together with the store's pools).
pub fn pool_usage(config: &Config, leases: &ShardedStore) -> (Vec<PoolUsage>, u64) {
    let mut usage: Vec<PoolUsage> = config
        .pools
        .iter()
        .map(|pool| PoolUsage {
            total: pool
                .ranges
                .iter()
                .map(|range| {
                    u64::from(u32::from(range.high).saturating_sub(u32::from(range.low))) + 1
                })
                .sum(),
            ..PoolUsage::default()
        })
        .collect();
    let mut stored = 0;
    let visited = leases.for_each(|_, store| {
        stored += store.len() as u64;
        for (index, pool) in usage.iter_mut().enumerate() {
            let id = PoolId(index as u32);
            if store.holds_pool(id) {
                pool.active = store.state_count(id, BindingState::Active);
                pool.backup = store.state_count(id, BindingState::Backup);
                pool.abandoned = store.state_count(id, BindingState::Abandoned);
            }
        }
    });
    if visited.is_err() {
        return (Vec::new(), 0);
    }
    (usage, stored)
}

/// `10.0.0.0/24`: the subnet of a pool (its declaring subnet, else the one holding its first
/// range, for a pool declared directly in a shared network).
fn subnet_label(config: &Config, index: usize) -> String {
    let Some(pool) = config.pools.get(index) else {
        return String::new();
    };
    let subnet = pool.subnet.or_else(|| {
        pool.ranges
            .first()
            .and_then(|range| config.subnet_for(range.low))
    });
    match subnet {
        Some(id) => {
            let subnet = config.subnet(id);
            let prefix = u32::from(subnet.netmask).leading_ones();
            format!("{}/{prefix}", subnet.network)
        }
        None => String::new(),
    }
}

struct PoolCollector {
    config: ConfigSource,
    leases: Arc<ShardedStore>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Sources").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PoolCollector {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PoolCollector")
            .finish_non_exhaustive()
    }
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let config = (self.config)();
        let (usage, leases) = pool_usage(&config, &self.leases);
        gauges(
            &mut encoder,
            "leases",
            "lease records in the store",
            [(Vec::new(), gauge_value(leases))],
        )?;
        let labels: Vec<Pairs> = (0..usage.len())
            .map(|index| {
                let mut labels = vec![
                    ("subnet", subnet_label(&config, index)),
                    ("pool", index.to_string()),
                ];
                if let Some(peer) = &config.pools[index].failover_peer {
                    labels.push(("failover_peer", peer.clone()));
                }
                labels
            })
            .collect();
        let columns: [Column; 5] = [
            ("pool_addresses", "addresses in the pool's ranges", |u| {
                u.total
            }),
            ("pool_active", "active leases of the pool", |u| u.active),
            (
                "pool_free",
                "free addresses of the pool (free, expired, released, never used)",
                PoolUsage::free,
            ),
            (
                "pool_backup",
                "addresses reserved for the failover secondary",
                |u| u.backup,
            ),
            ("pool_abandoned", "abandoned addresses of the pool", |u| {
                u.abandoned
            }),
        ];
        for (name, help, column) in columns {
            gauges(
                &mut encoder,
                name,
                help,
                labels
                    .iter()
                    .zip(&usage)
                    .map(|(labels, usage)| (labels.clone(), gauge_value(column(usage)))),
            )?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct CommitCollector {
    stats: Arc<CommitStats>,
}

impl Collector for CommitCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.stats.snapshot();
        // Batch sizes: bucket i counts batches of 2^i ..= 2^(i+1) - 1 records.
        let mut buckets: Vec<(f64, u64)> = (0..HISTOGRAM_BUCKETS - 1)
            .map(|bucket| (((1u64 << (bucket + 1)) - 1) as f64, stats.histogram[bucket]))
            .collect();
        buckets.push((f64::INFINITY, stats.histogram[HISTOGRAM_BUCKETS - 1]));
        encoder
            .encode_descriptor(
                "lease_commit_batch_records",
                "lease records per group commit (one write and one fdatasync)",
                None,
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(stats.records as f64, stats.batches, &buckets, None)?;
        let mut latency: Vec<(f64, u64)> = APPEND_LATENCY_BOUNDS_MICROS
            .iter()
            .zip(&stats.append_latency)
            .map(|(bound, count)| (*bound as f64 / 1e6, *count))
            .collect();
        latency.push((
            f64::INFINITY,
            stats.append_latency[APPEND_LATENCY_BOUNDS_MICROS.len()],
        ));
        let appends: u64 = stats.append_latency.iter().sum();
        encoder
            .encode_descriptor(
                "lease_commit_fsync_seconds",
                "time to append one batch to the lease file and fdatasync it",
                None,
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(
                stats.append_latency_sum_micros as f64 / 1e6,
                appends,
                &latency,
                None,
            )?;
        let plain: [(&str, &str, u64); 5] = [
            (
                "lease_commit_bytes",
                "bytes appended to the lease file",
                stats.bytes,
            ),
            (
                "lease_commit_failed_batches",
                "batches whose append or fsync failed",
                stats.failed_batches,
            ),
            (
                "lease_commit_dropped_records",
                "records (and their replies) dropped with a failed batch",
                stats.dropped_records,
            ),
            (
                "lease_file_compactions",
                "lease file rewrites",
                stats.compactions,
            ),
            (
                "lease_file_failed_compactions",
                "lease file rewrites that failed",
                stats.failed_compactions,
            ),
        ];
        for (name, help, value) in plain {
            counters(&mut encoder, name, help, [(Vec::new(), value)])?;
        }
        Ok(())
    }
}

struct XdpCollector {
    fast_path: Arc<FastPathRuntime>,
}

impl std::fmt::Debug for XdpCollector {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("XdpCollector")
            .finish_non_exhaustive()
    }
}

impl Collector for XdpCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // The program's per-CPU counters, summed over CPUs.
        counters(
            &mut encoder,
            "xdp_frames",
            "frames seen by the XDP program, by outcome (renewed = answered in the kernel, \
             dropped_for_partner = load balancing, passed_* = handed to userspace and why)",
            server_common::XdpStat::ALL.iter().map(|stat| {
                (
                    vec![("outcome", stat.name().to_string())],
                    self.fast_path.stat(*stat),
                )
            }),
        )?;
        counters(
            &mut encoder,
            "xdp_updates_dropped",
            "kernel map updates not queued because the fast-path thread's queue was full \
             (the renewals concerned are answered in userspace)",
            std::iter::once((Pairs::new(), self.fast_path.dropped_updates())),
        )
    }
}

#[derive(Debug)]
struct FailoverCollector {
    relationships: Vec<Arc<RelationshipStatus>>,
}

fn state_name(code: crate::failover::codes::ServerStateCode) -> String {
    code.name()
        .map_or_else(|| format!("unknown-{}", u8::from(code)), str::to_string)
}

impl Collector for FailoverCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let peer = |status: &RelationshipStatus| vec![("peer", status.name.clone())];
        gauges(
            &mut encoder,
            "failover_state",
            "failover states of each relationship (always 1; the states are labels)",
            self.relationships.iter().map(|status| {
                let mut labels = peer(status);
                labels.push(("local", state_name(status.state().code())));
                labels.push((
                    "partner",
                    status
                        .partner()
                        .map_or_else(|| "unknown".to_string(), state_name),
                ));
                labels.push((
                    "role",
                    match status.role {
                        Role::Primary => "primary",
                        Role::Secondary => "secondary",
                    }
                    .to_string(),
                ));
                (labels, 1)
            }),
        )?;
        gauges(
            &mut encoder,
            "failover_local_state_code",
            "local failover state as its wire code (docs/spec/failover.md §6.1; 2 = normal)",
            self.relationships
                .iter()
                .map(|status| (peer(status), i64::from(u8::from(status.state().code())))),
        )?;
        gauges(
            &mut encoder,
            "failover_unacked_updates",
            "BNDUPDs sent and not yet acknowledged",
            self.relationships
                .iter()
                .map(|status| (peer(status), i64::from(status.unacked()))),
        )?;
        counters(
            &mut encoder,
            "failover_changes_dropped",
            "lease changes that did not fit in the driver's queue (each makes it queue every \
             unacknowledged lease again)",
            self.relationships
                .iter()
                .map(|status| (peer(status), status.changes_dropped())),
        )?;
        gauges(
            &mut encoder,
            "failover_last_contact_timestamp_seconds",
            "Unix time of the partner's last message (0 = never)",
            self.relationships
                .iter()
                .map(|status| (peer(status), i64::from(status.last_contact()))),
        )?;
        gauges(
            &mut encoder,
            "failover_local_state_since_timestamp_seconds",
            "Unix time the local state was entered (STOS)",
            self.relationships
                .iter()
                .map(|status| (peer(status), i64::from(status.stos()))),
        )?;
        gauges(
            &mut encoder,
            "failover_partner_state_since_timestamp_seconds",
            "Unix time the partner says it entered its state (0 = unknown)",
            self.relationships
                .iter()
                .map(|status| (peer(status), i64::from(status.partner_stos()))),
        )
    }
}
