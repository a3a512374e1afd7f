//! The daemon's side of the fast path while it runs: publishes renewals the engine answered
//! (after their records are durable), consumes the kernel's renewal events from the ring buffer
//! (written to the lease log through the group commit, then the horizon moves on), and keeps the
//! clock offset of the configuration map current.
//!
//! Horizon rule (DESIGN.md "The fast path and its two bounds"): the kernel may extend a lease
//! up to its horizon, and a lease record with `ends = horizon` is durable before the horizon is
//! published. The engine's ACK of a renewal is written with `ends = horizon` (= the lease's end
//! plus one lease time) instead of its end; each kernel renewal is written with the next horizon
//! and that horizon is published only after the commit's fsync. So the log never says less than
//! what the kernel may have promised, and after a crash the address stays reserved for the client
//! at least as long as it was told.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use aya::maps::{MapData, RingBuf};
use dhcproto::v4::Message;
use server_common::fastpath::{
    FastPathConfig, LeaseKey, RenewalEvent, CONFIG_FAILOVER_NORMAL, CONFIG_RENEW, KEY_CLIENT_ID,
    KEY_HARDWARE,
};
use server_common::XdpStat;

use super::bounds::{kernel_horizon, Bounded};
use super::maps::{AyaMaps, FastPathMaps, MapsError};
use super::sync::{self, FastPath, Prepared};
use super::XdpAttachment;
use crate::engine::{fast_path, Decision, Outcome};
use crate::lease::record::{Lease, UnixTime};
use crate::lease::shards::ShardedStore;
use crate::lease::store::LeaseStore;

/// A renewal to publish once its record is durable.
#[derive(Debug)]
pub struct Publish {
    prepared: Prepared,
    ends: UnixTime,
    horizon: UnixTime,
    /// The configuration generation it was prepared under: one prepared before a reload
    /// carries a template of the old config and is not published.
    generation: u64,
}

/// How many map changes may wait for the fast-path thread (it drains them every round, 20 ms
/// at most when idle): far more than any burst of renewals between two rounds.
const UPDATE_QUEUE: usize = 65_536;

/// Map changes, applied by the fast-path thread in the order the workers queued them.
#[derive(Debug)]
enum Update {
    Publish(Box<Publish>),
    Withdraw(LeaseKey),
}

impl Publish {
    /// The end the lease record must carry: the horizon.
    pub fn horizon(&self) -> UnixTime {
        self.horizon
    }
}

/// How the daemon hands records to the lease log.
pub trait LeaseSink: Send + Sync + 'static {
    /// Applies a kernel renewal's lease change: its record for the group commit and, for a
    /// failover pool's lease, the BNDUPD (the daemon: `crate::changes::apply`).
    fn submit(&self, lease: &Lease);
    /// Returns once everything submitted before is durable; false when the log is gone.
    fn flush(&self) -> bool;
    /// The daemon's failover hooks: a kernel renewal of a failover pool's lease is bound under
    /// its relationship's state now and handed to its driver for a BNDUPD, as the engine's own
    /// commits are (docs/spec/failover.md §7.2). `None` when the daemon runs no failover.
    fn failover(&self) -> Option<FailoverRef<'_>> {
        None
    }
}

/// The failover hooks as a [`LeaseSink`] lends them (a reference, or a guard that keeps them
/// alive).
pub type FailoverRef<'a> =
    Box<dyn std::ops::Deref<Target = crate::failover::hooks::FailoverHooks> + 'a>;

/// The running fast path: the attached program, its maps and the consumer thread.
pub struct FastPathRuntime {
    /// In a mutex only so that [`FastPathRuntime::detach`] can unload through `&self`.
    attachment: Mutex<XdpAttachment>,
    fast_path: Mutex<FastPath<AyaMaps>>,
    updates: Mutex<mpsc::SyncSender<Update>>,
    /// Updates not queued because the queue was full (`xdhcpd_xdp_updates_dropped_total`).
    dropped_updates: AtomicU64,
    receiver: Mutex<Option<mpsc::Receiver<Update>>>,
    ring: Mutex<Option<RingBuf<MapData>>>,
    config: Mutex<FastPathConfig>,
    enabled: AtomicBool,
    /// The clients' port is the server's + 1, the one the kernel answers on (`net::ports`;
    /// fixed until a restart, as the sockets are).
    ports_allow_renewals: bool,
    /// Bumped by each config reload ([`FastPathRuntime::reconfigure`]).
    generation: AtomicU64,
    /// Which addresses of the running config are in a failover pool.
    failover_pools: std::sync::RwLock<FailoverPools>,
}

/// The failover pools of a config, looked up through its address map (one binary search).
#[derive(Debug)]
struct FailoverPools {
    addresses: Arc<crate::config::addresses::AddressIndex>,
    /// By pool index: the pool names a failover peer.
    failover: Vec<bool>,
}

impl FailoverPools {
    fn of(config: &crate::config::model::Config) -> Self {
        Self {
            addresses: config.addresses().clone(),
            failover: config
                .pools
                .iter()
                .map(|pool| pool.failover_peer.is_some())
                .collect(),
        }
    }

    fn contains(&self, address: std::net::Ipv4Addr) -> bool {
        self.addresses
            .pool_of(address)
            .and_then(|pool| self.failover.get(pool.0 as usize).copied())
            .unwrap_or(false)
    }
}

impl std::fmt::Debug for FastPathRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPathRuntime")
            .field("attachment", &self.attachment)
            .field("enabled", &self.enabled.load(Ordering::Relaxed))
            .finish()
    }
}

/// The kernel's clock offset ([`server_common::fastpath::clock_offset`]): the program computes
/// Unix time from `bpf_ktime_get_coarse_ns` (CLOCK_MONOTONIC) and this offset. `current` is the
/// offset in force, kept while still right to within a second.
fn clock_offset(current: Option<i64>) -> i64 {
    let read = |clock| {
        let mut time = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid out pointer.
        unsafe { libc::clock_gettime(clock, &mut time) };
        time.tv_sec
            .saturating_mul(1_000_000_000)
            .saturating_add(time.tv_nsec)
    };
    let unix = read(libc::CLOCK_REALTIME);
    let monotonic = u64::try_from(read(libc::CLOCK_MONOTONIC)).unwrap_or(0);
    server_common::fastpath::clock_offset(unix, monotonic, current)
}

/// Whole seconds of CLOCK_MONOTONIC (the fast-path thread's once-a-second work).
fn monotonic_seconds() -> i64 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut time) };
    time.tv_sec
}

/// The MAC address of an interface from sysfs.
fn interface_mac(name: &str) -> Option<[u8; 6]> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/address")).ok()?;
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    Some(mac)
}

/// What the kernel needs to drop the partner's DISCOVERs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadBalancing {
    /// Bit set = a bucket THIS server answers (the HBA itself on a primary, its complement on a
    /// secondary: ISC's HBA marks the primary's buckets, docs/spec/failover.md §11.1).
    pub mine: [u8; 32],
    /// `load balance max seconds`: requests with `secs` at or above it are passed up.
    pub max_secs: u16,
}

impl LoadBalancing {
    /// From a relationship's status: `None` unless it is NORMAL with a known HBA and a non-zero
    /// `load balance max seconds` (0 disables load balancing in ISC).
    pub fn of(status: &crate::failover::hooks::RelationshipStatus) -> Option<Self> {
        use crate::failover::states::{Role, State};
        if !status.is_attached() || !matches!(status.state(), State::Normal) {
            return None;
        }
        if status.load_balance_max_seconds == 0 {
            return None;
        }
        let hba = status.hba()?;
        let mine = match status.role {
            Role::Primary => hba,
            Role::Secondary => hba.map(|byte| !byte),
        };
        Some(Self {
            mine,
            max_secs: u16::try_from(status.load_balance_max_seconds).unwrap_or(u16::MAX),
        })
    }
}

impl FastPathRuntime {
    /// Takes the maps of `attachment`, writes the configuration and the interfaces' MAC
    /// addresses. Renewals are answered in the kernel only when `config_allows_fast_path`.
    pub fn new(
        mut attachment: XdpAttachment,
        config: &crate::config::model::Config,
        ports: crate::net::ports::Ports,
        interfaces: &[(String, u32)],
    ) -> Result<Self, MapsError> {
        let maps = AyaMaps::take(attachment.ebpf_mut())?;
        let ring = attachment
            .ebpf_mut()
            .take_map("EVENTS")
            .ok_or(MapsError::MissingMap("EVENTS"))?;
        let ring = RingBuf::try_from(ring)?;
        let enabled = sync::config_allows_fast_path(config);
        if !enabled {
            tracing::info!(
                "XDP: renewals stay in userspace: the configuration has classes, min-secs, \
                 executable statements, adaptive lease times, infinite-is-reserved, local-address or get-lease-hostnames, which make \
                 replies depend on more than the kernel checks"
            );
        }
        // The kernel answers clients on the server's port + 1 only.
        let enabled = enabled && ports.client_is_next();
        if !ports.client_is_next() {
            tracing::info!(
                "XDP: renewals stay in userspace: clients are answered on port {} \
                 (remote-port, or local-port with another -p), not the server's port + 1",
                ports.client
            );
        }
        let fast_path_config = FastPathConfig {
            flags: if enabled { CONFIG_RENEW } else { 0 },
            server_port: ports.server,
            lb_max_secs: 0,
            time_offset: clock_offset(None),
            hba: [0xff; 32],
        };
        let mut fast_path = FastPath::new(maps);
        fast_path.maps_mut().set_config(&fast_path_config)?;
        for (name, index) in interfaces {
            if let Some(mac) = interface_mac(name) {
                fast_path.maps_mut().set_interface_mac(*index, mac)?;
            }
        }
        let (sender, receiver) = mpsc::sync_channel(UPDATE_QUEUE);
        Ok(Self {
            attachment: Mutex::new(attachment),
            fast_path: Mutex::new(fast_path),
            updates: Mutex::new(sender),
            dropped_updates: AtomicU64::new(0),
            receiver: Mutex::new(Some(receiver)),
            ring: Mutex::new(Some(ring)),
            config: Mutex::new(fast_path_config),
            enabled: AtomicBool::new(enabled),
            ports_allow_renewals: ports.client_is_next(),
            generation: AtomicU64::new(0),
            failover_pools: std::sync::RwLock::new(FailoverPools::of(config)),
        })
    }

    /// Sum over CPUs of one statistics slot.
    pub fn stat(&self, stat: XdpStat) -> u64 {
        self.attachment
            .lock()
            .map_or(0, |attachment| attachment.stat(stat))
    }

    /// The per-CPU counters of the program, summed, as Prometheus metric names and values.
    pub fn metric_values(&self) -> Vec<(String, u64)> {
        XdpStat::ALL
            .iter()
            .map(|stat| {
                (
                    format!("xdhcpd_xdp_{}_total", stat.name()),
                    self.stat(*stat),
                )
            })
            .collect()
    }

    /// One log line with every counter (at shutdown).
    pub fn log_statistics(&self) {
        let counts: Vec<String> = XdpStat::ALL
            .iter()
            .map(|stat| format!("{} {}", stat.name(), self.stat(*stat)))
            .collect();
        tracing::info!(
            "XDP: {} renewals answered in the kernel ({})",
            self.stat(XdpStat::Renewed),
            counts.join(", ")
        );
    }

    /// Whether the worker should keep the raw payload of `message` for [`Self::prepare`]:
    /// only renewal-shaped requests can become templates.
    pub fn wants_payload(&self, message: &Message) -> bool {
        self.enabled.load(Ordering::Relaxed) && !message.ciaddr().is_unspecified()
    }

    /// After the engine decided: for an ACK to a renewal the kernel can repeat, the publication
    /// to make once durable; the committed record's end moves to the horizon (see module doc).
    ///
    /// The store's copy of the lease ends at the horizon too: a compaction rewrites the lease
    /// file from the store, and it must not write less than the published horizon.
    pub fn prepare(
        &self,
        payload: &[u8],
        message: &Message,
        decision: &mut Decision,
        store: &mut LeaseStore,
    ) -> Option<Publish> {
        let Outcome::Acked(address) = decision.outcome else {
            return None;
        };
        let reply = decision.reply.as_ref()?;
        let prepared = match sync::prepare(payload, message, reply) {
            Ok(prepared) => prepared,
            Err(reason) => {
                tracing::debug!("XDP: renewal of {address} stays in userspace: {reason}");
                return None;
            }
        };
        let lease = decision
            .commit
            .iter_mut()
            .find(|lease| lease.address == address)?;
        let in_failover_pool = self
            .failover_pools
            .read()
            .is_ok_and(|pools| pools.contains(address));
        let Some((ends, horizon)) =
            fast_path::stretch_to_horizon(lease, prepared.lease_time, in_failover_pool)
        else {
            tracing::debug!(
                "XDP: renewal of {address} stays in userspace: {}",
                sync::NotEligible::ShortenedGrant
            );
            return None;
        };
        store.upsert(lease.clone());
        Some(Publish {
            prepared,
            ends,
            horizon,
            generation: self.generation.load(Ordering::Acquire),
        })
    }

    /// Queues a publication whose record has been submitted to the group commit.
    pub fn queue(&self, publish: Publish) {
        self.send(Update::Publish(Box::new(publish)));
    }

    /// Queues `update` for the fast-path thread without ever blocking a worker. When the
    /// queue is full (the thread stalled) the update is dropped and counted, which is safe:
    /// a dropped publication leaves the kernel without the new entry (the next renewal goes
    /// to userspace), and a withdrawal was already applied to the maps at once; the queued
    /// copy only orders it after earlier publications, which the thread checks against the
    /// store before writing them anyway (`sync::store_backs`).
    fn send(&self, update: Update) {
        if let Ok(sender) = self.updates.lock() {
            if let Err(mpsc::TrySendError::Full(_)) = sender.try_send(update) {
                self.dropped_updates.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Updates dropped because the queue was full.
    pub fn dropped_updates(&self) -> u64 {
        self.dropped_updates.load(Ordering::Relaxed)
    }

    /// Takes a client's lease out of the kernel: any request userspace answered without
    /// publishing (a DISCOVER, a request for another address, a release, a decline) means the
    /// kernel's copy may be stale. It is also what keeps the horizon rule: such an answer writes
    /// the lease with its plain end, which can be earlier than the horizon published before, so
    /// the kernel must stop extending it. Deleted at once, and once more in queue order so that
    /// a publication queued earlier cannot bring it back.
    pub fn withdraw(&self, message: &Message) {
        let key = match message
            .opts()
            .get(dhcproto::v4::OptionCode::ClientIdentifier)
        {
            Some(dhcproto::v4::DhcpOption::ClientIdentifier(id)) => {
                LeaseKey::new(KEY_CLIENT_ID, 0, id)
            }
            // dhcproto's `chaddr()` slices by hlen and panics past the 16-byte field.
            _ if message.hlen() > 16 => None,
            _ => message
                .chaddr()
                .get(..usize::from(message.hlen()))
                .and_then(|chaddr| LeaseKey::new(KEY_HARDWARE, u8::from(message.htype()), chaddr)),
        };
        let Some(key) = key else {
            return;
        };
        if let Ok(mut fast_path) = self.fast_path.lock() {
            if fast_path.is_published(&key) {
                if let Err(error) = fast_path.withdraw(&key) {
                    tracing::warn!("XDP: withdrawing a lease: {error}");
                }
                self.send(Update::Withdraw(key));
            }
        }
    }

    /// After a lease change that did not come from the engine's ACK (OMAPI, the partner's
    /// BNDUPD, expiry): the kernel's entry for each changed address goes when the store no
    /// longer backs it ([`FastPath::stale_entry`]), at once and once more in queue order (see
    /// [`Self::withdraw`]). Returns how many entries were withdrawn.
    pub fn reconcile(&self, changed: &[Lease]) -> usize {
        let Ok(mut fast_path) = self.fast_path.lock() else {
            return 0;
        };
        let mut withdrawn = 0;
        for lease in changed {
            let Some(key) = fast_path.stale_entry(lease) else {
                continue;
            };
            if let Err(error) = fast_path.withdraw(&key) {
                tracing::warn!("XDP: withdrawing the lease of {}: {error}", lease.address);
            }
            self.send(Update::Withdraw(key));
            withdrawn += 1;
        }
        withdrawn
    }

    /// Starts the thread that publishes durable renewals and consumes kernel renewals.
    pub fn spawn(
        self: &Arc<Self>,
        leases: Arc<ShardedStore>,
        sink: Arc<dyn LeaseSink>,
        shutdown: Arc<std::sync::atomic::AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let runtime = self.clone();
        std::thread::Builder::new()
            .name("xdp-sync".into())
            .spawn(move || runtime.run(&leases, sink.as_ref(), &shutdown))
    }

    fn run(
        &self,
        leases: &ShardedStore,
        sink: &dyn LeaseSink,
        shutdown: &std::sync::atomic::AtomicBool,
    ) {
        let Some(receiver) = self.receiver.lock().ok().and_then(|mut slot| slot.take()) else {
            return;
        };
        let Some(mut ring) = self.ring.lock().ok().and_then(|mut slot| slot.take()) else {
            return;
        };
        let mut ticks = 0u32;
        let mut last_second = monotonic_seconds();
        while !shutdown.load(std::sync::atomic::Ordering::Relaxed) {
            // Failover (see `super::bounds`): every round writes a changed service state to the
            // kernel's relationships map; once a second, held-back horizons follow the BNDACKs.
            if let Some(hooks) = sink.failover() {
                let serving = super::bounds::serving(&hooks);
                if let Ok(mut fast_path) = self.fast_path.lock() {
                    if let Err(error) = fast_path.set_relationships(&serving) {
                        tracing::warn!("XDP: writing the failover states: {error}");
                    }
                }
                let second = monotonic_seconds();
                if second != last_second {
                    last_second = second;
                    follow_failover(&self.fast_path, leases, &hooks);
                }
            }
            let pending: Vec<Update> = receiver.try_iter().collect();
            let mut events = Vec::new();
            while let Some(item) = ring.next() {
                if let Some(event) = parse_event(&item) {
                    events.push(event);
                }
            }
            if !pending.is_empty() || !events.is_empty() {
                let generation = self.generation.load(Ordering::Acquire);
                if !consume(&self.fast_path, leases, sink, pending, &events, generation) {
                    return;
                }
                continue;
            }
            // Idle: wait for the ring buffer (or a publication) for a short while.
            let mut poll = libc::pollfd {
                fd: ring.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut poll, 1, 20) };
            ticks += 1;
            if ticks.is_multiple_of(500) {
                self.refresh_clock();
            }
        }
    }

    /// Turns the kernel's DISCOVER load balancing on (with the buckets this server answers) or
    /// off. The failover driver owns the state; the daemon calls this when it changes
    /// (docs/spec/failover.md §11.3: only in NORMAL).
    pub fn set_load_balancing(&self, balancing: Option<LoadBalancing>) {
        let Ok(mut config) = self.config.lock() else {
            return;
        };
        let mut next = *config;
        match balancing {
            Some(balancing) => {
                next.flags |= CONFIG_FAILOVER_NORMAL;
                next.hba = balancing.mine;
                next.lb_max_secs = balancing.max_secs;
            }
            None => next.flags &= !CONFIG_FAILOVER_NORMAL,
        }
        if next.flags == config.flags
            && next.hba == config.hba
            && next.lb_max_secs == config.lb_max_secs
        {
            return;
        }
        if let Ok(mut fast_path) = self.fast_path.lock() {
            if fast_path.maps_mut().set_config(&next).is_ok() {
                *config = next;
                tracing::info!(
                    "XDP: load balancing of DISCOVERs in the kernel {}",
                    if balancing.is_some() { "on" } else { "off" }
                );
            }
        }
    }

    /// A reloaded config (SIGHUP), first half, run while the reload holds every shard of the
    /// lease store (under which every `prepare` runs): publications prepared before are
    /// dropped from now on (the generation splits them exactly) and the failover pools are the
    /// new config's. No map is touched here; [`Self::reconfigure_maps`] follows once the shards
    /// are let go.
    pub fn switch_generation(&self, config: &crate::config::model::Config) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut pools) = self.failover_pools.write() {
            *pools = FailoverPools::of(config);
        }
        self.enabled.store(
            self.ports_allow_renewals && sync::config_allows_fast_path(config),
            Ordering::Relaxed,
        );
    }

    /// A reloaded config, second half, with no shard of the store held (one BPF syscall per
    /// entry): every template in the kernel was built by the old engine, so all leases are
    /// withdrawn; renewals in the kernel are switched on or off for the new config. Until
    /// this runs the kernel may still answer a renewal with the old config's reply, as it did
    /// a moment before the reload.
    pub fn reconfigure_maps(&self, config: &crate::config::model::Config) {
        let enabled = self.ports_allow_renewals && sync::config_allows_fast_path(config);
        let Ok(mut current) = self.config.lock() else {
            return;
        };
        let Ok(mut fast_path) = self.fast_path.lock() else {
            return;
        };
        match fast_path.withdraw_all() {
            Ok(count) => {
                tracing::info!("XDP: {count} renewal templates withdrawn for the new config")
            }
            Err(error) => {
                tracing::warn!("XDP: withdrawing the templates of the old config: {error}")
            }
        }
        let mut next = *current;
        if enabled {
            next.flags |= CONFIG_RENEW;
        } else {
            next.flags &= !CONFIG_RENEW;
        }
        if next.flags != current.flags {
            match fast_path.maps_mut().set_config(&next) {
                Ok(()) => {
                    *current = next;
                    tracing::info!(
                        "XDP: renewals in the kernel {} by the new config",
                        if enabled { "enabled" } else { "disabled" }
                    );
                }
                Err(error) => tracing::warn!("XDP: updating the configuration map: {error}"),
            }
        }
    }

    /// Takes the program off every interface (graceful shutdown): without this, a program
    /// attached through netlink (kernels without bpf_link for XDP) would outlive the process
    /// and keep answering renewals that nobody records.
    pub fn detach(&self) {
        let Ok(mut attachment) = self.attachment.lock() else {
            return;
        };
        match super::program(attachment.ebpf_mut()).map(|program| program.unload()) {
            Ok(Ok(())) => tracing::info!("XDP: program detached"),
            Ok(Err(error)) => tracing::warn!("XDP: detaching: {error}"),
            Err(error) => tracing::warn!("XDP: detaching: {error}"),
        }
    }

    /// Re-reads the clock offset (the wall clock may have been stepped).
    fn refresh_clock(&self) {
        let Ok(mut config) = self.config.lock() else {
            return;
        };
        let offset = clock_offset(Some(config.time_offset));
        if offset != config.time_offset {
            config.time_offset = offset;
            if let Ok(mut fast_path) = self.fast_path.lock() {
                let _ = fast_path.maps_mut().set_config(&config);
            }
        }
    }
}

/// One round of the consumer: the kernel renewals read from the ring buffer are applied to the
/// store and submitted to the lease log (and handed to failover), then, once the log is
/// durable, the queued publications and the kernel renewals' new horizons go to the maps.
/// False when the lease log is gone.
fn consume<M: FastPathMaps>(
    fast_path: &Mutex<FastPath<M>>,
    leases: &ShardedStore,
    sink: &dyn LeaseSink,
    pending: Vec<Update>,
    events: &[RenewalEvent],
    generation: u64,
) -> bool {
    let mut horizons: HashMap<LeaseKey, (RenewalEvent, UnixTime)> = HashMap::new();
    // Kernel renewals of failover leases: (key, bounds with `kernel` still to compute, tsfp).
    let mut renewed_bounds = Vec::new();
    // Kernel renewals of leases the store no longer holds ACTIVE for that client (changed over
    // OMAPI, by the partner or by expiry since publication): their entries go.
    let mut unbacked = Vec::new();
    for event in events {
        match record_kernel_renewal(leases, sink, event) {
            Some((horizon, Some(tsfp))) => renewed_bounds.push((event.key, *event, horizon, tsfp)),
            Some((horizon, None)) => {
                horizons.insert(event.key, (*event, horizon));
            }
            None => unbacked.push(event.key),
        }
    }
    // Everything queued above was submitted before this flush: once it returns, the records are
    // durable and the horizons may be published.
    if !sink.flush() {
        return false;
    }
    let hooks = sink.failover();
    let status_of = |address: u32| {
        hooks
            .as_ref()
            .and_then(|hooks| hooks.of_address(std::net::Ipv4Addr::from(address.to_ne_bytes())))
    };
    // The store's tsfp of the failover leases to publish, and which publications the store
    // still backs, read before the maps' lock (the workers take the store's lock, then the
    // maps'). A publication is prepared under the store's lock but queued after it: a change
    // made in between (OMAPI, the partner, expiry) must win over it. Each address is read in
    // its own shard, one shard held at a time.
    let mut tsfps: HashMap<u32, Option<UnixTime>> = HashMap::new();
    let mut backed: std::collections::HashSet<LeaseKey> = std::collections::HashSet::new();
    for update in &pending {
        let Update::Publish(publish) = update else {
            continue;
        };
        let address = publish.prepared.address;
        let ip = std::net::Ipv4Addr::from(address.to_ne_bytes());
        if let Ok(store) = leases.lock_address(ip) {
            let still_backed = store.get(ip).is_some_and(|lease| {
                sync::store_backs(lease, &publish.prepared.key, publish.horizon)
            });
            if still_backed {
                backed.insert(publish.prepared.key);
            }
            if status_of(address).is_some() {
                tsfps.insert(address, super::bounds::active_tsfp(&store, ip));
            }
        }
    }
    let Ok(mut fast_path) = fast_path.lock() else {
        return true;
    };
    for key in &unbacked {
        if fast_path.is_published(key) {
            if let Err(error) = fast_path.withdraw(key) {
                tracing::warn!("XDP: withdrawing a lease the store no longer holds: {error}");
            }
        }
    }
    for update in pending {
        let result = match update {
            Update::Publish(publish) if !backed.contains(&publish.prepared.key) => {
                tracing::debug!(
                    "XDP: publication of {} dropped: the lease changed since the ACK",
                    std::net::Ipv4Addr::from(publish.prepared.address.to_ne_bytes())
                );
                Ok(())
            }
            Update::Publish(publish) if publish.generation == generation => {
                let prepared = &publish.prepared;
                let relationship = |status| {
                    hooks
                        .as_ref()
                        .and_then(|hooks| super::bounds::relationship_value(hooks, status))
                };
                match status_of(prepared.address) {
                    Some(status) => match relationship(status) {
                        Some(relationship) => {
                            let tsfp = tsfps.get(&prepared.address).copied().flatten();
                            let bounded = Bounded {
                                address: std::net::Ipv4Addr::from(prepared.address.to_ne_bytes()),
                                lease_time: prepared.lease_time,
                                durable: publish.horizon,
                                kernel: kernel_horizon(
                                    publish.horizon,
                                    prepared.lease_time,
                                    tsfp,
                                    status.mclt(),
                                ),
                            };
                            fast_path
                                .publish_in(prepared, publish.ends, bounded.kernel, relationship)
                                .and_then(|()| fast_path.set_bounded(&prepared.key, bounded))
                        }
                        // No slot in the kernel's relationships map: stays in userspace.
                        None if fast_path.is_published(&prepared.key) => {
                            fast_path.withdraw(&prepared.key)
                        }
                        None => Ok(()),
                    },
                    None => {
                        fast_path.failover.leases.remove(&prepared.key);
                        fast_path.publish(prepared, publish.ends, publish.horizon)
                    }
                }
            }
            // Prepared under a config since replaced (see `reconfigure`).
            Update::Publish(_) => Ok(()),
            Update::Withdraw(key) if fast_path.is_published(&key) => fast_path.withdraw(&key),
            Update::Withdraw(_) => Ok(()),
        };
        if let Err(error) = result {
            tracing::warn!("XDP: updating the lease map: {error}");
        }
    }
    for (key, (event, horizon)) in horizons {
        let Some(mut value) = fast_path.maps().lease(&key) else {
            continue;
        };
        value.horizon = value.horizon.max(horizon);
        value.ends = value.ends.max(event.ends);
        if let Err(error) = fast_path.maps_mut().put_lease(&key, &value) {
            tracing::warn!("XDP: moving a horizon: {error}");
        }
    }
    // A kernel renewal of a failover lease: the durable horizon moved on, the kernel's is that
    // bounded by the MCLT rule with the tsfp the renewal left (raised later by the BNDACK).
    for (key, event, durable, tsfp) in renewed_bounds {
        let Some(status) = status_of(event.address) else {
            continue;
        };
        let Some(mut value) = fast_path.maps().lease(&key) else {
            continue;
        };
        let lease_time = event.ends.saturating_sub(event.starts);
        let bounded = Bounded {
            address: std::net::Ipv4Addr::from(event.address.to_ne_bytes()),
            lease_time,
            durable,
            kernel: kernel_horizon(durable, lease_time, Some(tsfp), status.mclt()),
        };
        value.ends = value.ends.max(event.ends);
        value.horizon = bounded.kernel;
        let result = fast_path
            .maps_mut()
            .put_lease(&key, &value)
            .and_then(|()| fast_path.set_bounded(&key, bounded));
        if let Err(error) = result {
            tracing::warn!("XDP: moving a horizon: {error}");
        }
    }
    true
}

/// Moves the kernel horizons of the published failover leases that the MCLT bound holds back:
/// a BNDACK may have raised their tsfp. Reads the store between two short holds of the maps'
/// lock, never under it (lock order: store, then maps), each address in its own shard.
fn follow_failover<M: FastPathMaps>(
    fast_path: &Mutex<FastPath<M>>,
    leases: &ShardedStore,
    hooks: &crate::failover::hooks::FailoverHooks,
) {
    let targets: Vec<(LeaseKey, std::net::Ipv4Addr)> = match fast_path.lock() {
        Ok(fast_path) => fast_path
            .failover
            .leases
            .iter()
            .filter(|(_, bounded)| bounded.held_back())
            .map(|(key, bounded)| (*key, bounded.address))
            .collect(),
        Err(_) => return,
    };
    if targets.is_empty() {
        return;
    }
    let mut tsfps: Vec<Option<UnixTime>> = Vec::with_capacity(targets.len());
    for (_, address) in &targets {
        let Ok(store) = leases.lock_address(*address) else {
            return;
        };
        tsfps.push(super::bounds::active_tsfp(&store, *address));
    }
    let Ok(mut fast_path) = fast_path.lock() else {
        return;
    };
    for ((key, address), tsfp) in targets.into_iter().zip(tsfps) {
        // Withdrawn or republished meanwhile: its entry is the current one.
        let Some(current) = fast_path.failover.leases.get(&key).copied() else {
            continue;
        };
        let Some(status) = hooks.of_address(address) else {
            continue;
        };
        let kernel = kernel_horizon(current.durable, current.lease_time, tsfp, status.mclt());
        if kernel != current.kernel {
            if let Err(error) = fast_path.set_bounded(&key, Bounded { kernel, ..current }) {
                tracing::warn!("XDP: moving a failover horizon: {error}");
            }
        }
    }
}

/// Applies one kernel renewal to the store exactly as the engine's ACK of the same renewal
/// would (`engine::fast_path::kernel_renewal`, with the relationship's state now), submits its
/// record with the next horizon, and hands a failover pool's lease to its driver for a BNDUPD
/// (§7.2), as every change is applied. Returns that horizon and, for a failover pool's lease,
/// its tsfp after the renewal.
fn record_kernel_renewal(
    leases: &ShardedStore,
    sink: &dyn LeaseSink,
    event: &RenewalEvent,
) -> Option<(UnixTime, Option<UnixTime>)> {
    let key = sync::kernel_client(&event.key)?;
    let address = std::net::Ipv4Addr::from(event.address.to_ne_bytes());
    // The lease's shard: the one of its address (`lease::shards`).
    let mut store = leases.lock_address(address).ok()?;
    // Only a lease the store still holds ACTIVE for this client is extended: one freed or
    // moved since publication (OMAPI, the partner, expiry) is left as the store says, and the
    // caller withdraws the kernel's entry.
    let stored = store.find_by_client(&key).filter(|lease| {
        lease.address == address
            && lease.binding_state == crate::lease::record::BindingState::Active
    })?;
    let failover = sink
        .failover()
        .and_then(|hooks| hooks.of_address(address).map(|status| status.view()));
    let lease = fast_path::kernel_renewal(stored, event.starts, event.ends, failover.as_ref());
    let horizon = lease.ends;
    store.upsert(lease.clone());
    drop(store);
    // The sink applies it as every change is applied (`crate::changes`): the record, and the
    // BNDUPD of a failover lease.
    sink.submit(&lease);
    let tsfp = failover.as_ref().map(|_| lease.tsfp);
    Some((horizon, tsfp))
}

fn parse_event(bytes: &[u8]) -> Option<RenewalEvent> {
    if bytes.len() < std::mem::size_of::<RenewalEvent>() {
        return None;
    }
    // SAFETY: RenewalEvent is plain #[repr(C)] data (aya::Pod); the length was checked and
    // read_unaligned does not need alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<RenewalEvent>()) })
}

#[cfg(test)]
#[path = "runtime_tests.rs"]
mod tests;
