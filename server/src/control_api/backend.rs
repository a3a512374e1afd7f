//! The daemon's [`Backend`]: the sharded lease store (one shard locked at a time), the OMAPI
//! host layer (`omapi::objects::Objects`: the same host table and host records in
//! dhcpd.leases), `changes::apply` with `ChangeSource::ControlApi`, the reload of SIGHUP and
//! the Prometheus registry as statistics.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use super::answer::Answer;
use super::commands::Backend;
use crate::config::model::Config;
use crate::lease::file::HostRecord;
use crate::lease::record::{BindingState, Lease, UnixTime};
use crate::lease::shards::ShardedStore;
use crate::omapi::objects::Objects;

/// `changes::apply` of a batch of leases; true once durable.
pub type ApplyChanges = Box<dyn Fn(&[Lease]) -> bool + Send + Sync>;

/// What the daemon lends the API.
pub struct DaemonBackend {
    /// The running configuration (swapped by reloads).
    pub config: Box<dyn Fn() -> Arc<Config> + Send + Sync>,
    pub leases: Arc<ShardedStore>,
    /// The OMAPI host layer; its `persist` submits host records to the group commit.
    pub hosts: Objects,
    /// `changes::apply` with `ChangeSource::ControlApi`: true once the records are durable.
    pub apply: ApplyChanges,
    /// Waits until everything submitted to the group commit is durable; false if it stopped.
    pub flush: Box<dyn Fn() -> bool + Send + Sync>,
    /// Whether an address is in a pool of a failover relationship.
    pub failover_pool: Box<dyn Fn(Ipv4Addr) -> bool + Send + Sync>,
    /// The file the daemon was started with (`config-test` without text).
    pub config_path: PathBuf,
    /// SIGHUP's reload: a summary, or why the running configuration was kept.
    pub reload: Box<dyn Fn() -> Result<String, String> + Send + Sync>,
    /// Asks the group commit for a rewrite of the lease file now.
    pub rewrite: Box<dyn Fn() -> Result<(), String> + Send + Sync>,
    /// The Prometheus text exposition of the daemon's metrics.
    pub metrics_text: Box<dyn Fn() -> String + Send + Sync>,
    /// The packet path's counters, for Kea's `pkt4-*` statistics.
    pub metrics: Arc<crate::metrics::Metrics>,
    pub started: UnixTime,
    pub last_reload: AtomicU32,
}

impl Backend for DaemonBackend {
    fn config(&self) -> Arc<Config> {
        (self.config)()
    }

    fn lease(&self, address: Ipv4Addr) -> Option<Lease> {
        let store = self.leases.lock_address(address).ok()?;
        store.get(address).cloned()
    }

    fn leases(&self, keep: &dyn Fn(&Lease) -> bool) -> Vec<Lease> {
        let mut kept = Vec::new();
        let _ = self.leases.for_each(|_, store| {
            kept.extend(store.iter().filter(|lease| keep(lease)).cloned());
        });
        kept
    }

    fn change_leases(
        &self,
        addresses: &[Ipv4Addr],
        decide: &mut super::commands::Decide<'_>,
    ) -> Result<Vec<Lease>, Answer> {
        let mut changed = Vec::new();
        let mut refused = None;
        for address in addresses {
            let Ok(mut store) = self.leases.lock_address(*address) else {
                refused = Some(Answer::error("the lease store is unusable"));
                break;
            };
            match decide(store.get(*address)) {
                Ok(Some(lease)) => {
                    if store.get(*address) != Some(&lease) {
                        store.upsert(lease.clone());
                        changed.push(lease);
                    }
                }
                Ok(None) => {}
                Err(answer) => {
                    refused = Some(answer);
                    break;
                }
            }
        }
        // One group commit for the batch, after the shard locks are let go.
        if !changed.is_empty() && !(self.apply)(&changed) {
            return Err(Answer::error(
                "the lease log could not be written: the change is in memory only",
            ));
        }
        match refused {
            Some(answer) => Err(answer),
            None => Ok(changed),
        }
    }

    fn in_failover_pool(&self, address: Ipv4Addr) -> bool {
        (self.failover_pool)(address)
    }

    fn default_lease_time(&self, address: Ipv4Addr) -> u32 {
        let config = self.config();
        default_lease_time(&config, address)
    }

    fn hosts(&self) -> Vec<HostRecord> {
        self.hosts.host_records()
    }

    fn store_host(&self, record: HostRecord) -> Result<(), Answer> {
        self.hosts.store_host(record);
        if (self.flush)() {
            Ok(())
        } else {
            Err(Answer::error(
                "the lease log could not be written: the host is in memory only",
            ))
        }
    }

    fn test_config(&self, text: Option<&str>) -> Result<String, String> {
        let parsed =
            match text {
                Some(text) => crate::config::parse_str(text, "dhcpd-conf")
                    .map_err(|errors| errors.to_string())?,
                None => crate::config::load_file(&self.config_path)
                    .map_err(|errors| errors.to_string())?,
            };
        let (config, needs_restart) =
            crate::reload::prepare(&self.config(), parsed).map_err(|error| error.to_string())?;
        let mut summary = format!(
            "{} subnets, {} pools, {} hosts",
            config.subnets.len(),
            config.pools.len(),
            config.hosts.len()
        );
        for warning in &config.warnings {
            summary.push_str(&format!(
                "; warning: {}: {}",
                warning.location, warning.message
            ));
        }
        for note in needs_restart {
            summary.push_str(&format!("; needs a restart: {note}"));
        }
        Ok(summary)
    }

    fn reload(&self) -> Result<String, String> {
        let summary = (self.reload)()?;
        self.last_reload
            .store(crate::clock::unix_now(), Ordering::Relaxed);
        Ok(summary)
    }

    fn rewrite_lease_file(&self) -> Result<(), String> {
        (self.rewrite)()
    }

    fn statistics(&self) -> Vec<(String, f64)> {
        let mut statistics = subnet_statistics(
            &self.config(),
            &self.leases(&|lease| {
                matches!(
                    lease.binding_state,
                    BindingState::Active | BindingState::Abandoned
                )
            }),
        );
        statistics.extend(kea_packet_statistics(&self.metrics));
        statistics.extend(prometheus_samples(&(self.metrics_text)()));
        statistics
    }

    fn status(&self, now: UnixTime) -> Value {
        let last_reload = self.last_reload.load(Ordering::Relaxed);
        json!({
            "pid": std::process::id(),
            "uptime": now.saturating_sub(self.started),
            "reload": now.saturating_sub(if last_reload == 0 { self.started } else { last_reload }),
            "multi-threading-enabled": true,
        })
    }
}

/// `default-lease-time` of the innermost scope that sets it (the pool's, else the subnet's,
/// up to the global one); ISC's default otherwise.
pub fn default_lease_time(config: &Config, address: Ipv4Addr) -> u32 {
    let scope = match config.addresses().pool_of(address) {
        Some(pool) => Some(config.pools[pool.0 as usize].scope),
        None => config
            .subnet_for(address)
            .map(|subnet| config.subnet(subnet).scope),
    };
    scope
        .and_then(|scope| {
            config
                .scope_chain(scope)
                .find_map(|scope| scope.default_lease_time)
        })
        .unwrap_or(super::lease_json::DEFAULT_LEASE_TIME)
}

/// Kea's per-subnet statistics (`subnet[ID].total-addresses`, `.assigned-addresses`,
/// `.declined-addresses`) from the pools and the ACTIVE and ABANDONED leases.
pub fn subnet_statistics(config: &Config, leases: &[Lease]) -> Vec<(String, f64)> {
    let count = config.subnets.len();
    let mut total = vec![0u64; count];
    let mut assigned = vec![0u64; count];
    let mut declined = vec![0u64; count];
    for pool in &config.pools {
        if let Some(subnet) = pool.subnet {
            for range in &pool.ranges {
                let size = u64::from(u32::from(range.high))
                    .saturating_sub(u64::from(u32::from(range.low)))
                    + 1;
                if let Some(slot) = total.get_mut(subnet.0 as usize) {
                    *slot += size;
                }
            }
        }
    }
    for lease in leases {
        let Some(subnet) = config.subnet_for(lease.address) else {
            continue;
        };
        let counts = match lease.binding_state {
            BindingState::Active => &mut assigned,
            BindingState::Abandoned => &mut declined,
            _ => continue,
        };
        if let Some(slot) = counts.get_mut(subnet.0 as usize) {
            *slot += 1;
        }
    }
    let mut statistics = Vec::with_capacity(3 * count);
    for index in 0..count {
        let id = index + 1;
        statistics.push((format!("subnet[{id}].total-addresses"), total[index] as f64));
        statistics.push((
            format!("subnet[{id}].assigned-addresses"),
            assigned[index] as f64,
        ));
        statistics.push((
            format!("subnet[{id}].declined-addresses"),
            declined[index] as f64,
        ));
    }
    statistics
}

/// Kea's global packet statistics (Kea ARM "DHCPv4 Statistics") from the packet path's
/// counters: `pkt4-received` counts decoded requests (Kea counts every packet it reads, and
/// undecodable ones again in `pkt4-parse-failed`), `pkt4-receive-drop` the requests not
/// answered for any reason (`xdhcpd_drops_total` without the send failures).
pub fn kea_packet_statistics(metrics: &crate::metrics::Metrics) -> Vec<(String, f64)> {
    use crate::metrics::{DropReason, ReceivedType, SentType};
    let received = |kind| metrics.received(kind) as f64;
    let sent = |kind| metrics.sent(kind) as f64;
    let all_received: f64 = ReceivedType::ALL.iter().map(|kind| received(*kind)).sum();
    let all_sent: f64 = SentType::ALL.iter().map(|kind| sent(*kind)).sum();
    let dropped: f64 = DropReason::ALL
        .iter()
        .filter(|reason| !matches!(reason, DropReason::SendFailed | DropReason::Malformed))
        .map(|reason| metrics.drops(*reason) as f64)
        .sum();
    [
        ("pkt4-received", all_received),
        ("pkt4-discover-received", received(ReceivedType::Discover)),
        ("pkt4-request-received", received(ReceivedType::Request)),
        ("pkt4-decline-received", received(ReceivedType::Decline)),
        ("pkt4-release-received", received(ReceivedType::Release)),
        ("pkt4-inform-received", received(ReceivedType::Inform)),
        ("pkt4-unknown-received", received(ReceivedType::Other)),
        (
            "pkt4-parse-failed",
            metrics.drops(DropReason::Malformed) as f64,
        ),
        ("pkt4-receive-drop", dropped),
        ("pkt4-sent", all_sent),
        ("pkt4-offer-sent", sent(SentType::Offer)),
        ("pkt4-ack-sent", sent(SentType::Ack)),
        ("pkt4-nak-sent", sent(SentType::Nak)),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

/// The samples of a Prometheus text exposition: `name{labels}` and value.
pub fn prometheus_samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_string(), value.parse::<f64>().ok()?))
        })
        .collect()
}
