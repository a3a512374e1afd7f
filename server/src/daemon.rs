//! Wires config, lease store, engine and packet I/O into the running server. This is the driver:
//! it owns the clock, the sockets and the threads; every protocol decision is the engine's.
//!
//! Threads: `threads` workers per interface reading one shared socket, the group
//! committer of the lease log (it also sends the replies that promise a lease, after fsync), one
//! expiry ticker, and optionally the metrics endpoint. The lease store is in shards by shared
//! network ([`ShardedStore`]): a worker groups a received batch by the shard each request needs
//! and takes each of those shards once; a decision holds its shard for a few microseconds.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cli::{Cli, DEFAULT_LEASES_PATH, DEFAULT_PID_PATH};
use crate::config::model::Config;
use crate::engine::{Decision, Destination, Engine, Outcome, Request, Snapshot};
use crate::lease::commit::{GroupCommit, GroupCommitConfig};
use crate::lease::file::{IdFormat, LeaseFile};
use crate::lease::log::LeaseLog;
use crate::lease::record::UnixTime;
use crate::lease::shards::ShardedStore;
use crate::metrics::Metrics;
use crate::net::interfaces::{self, Interface};
use crate::net::socket::{DhcpSocket, ReceiveBatch, SendBatch};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(String),
    #[error("lease file {path}: {message}")]
    Leases { path: PathBuf, message: String },
    #[error("interface: {0}")]
    Interface(#[from] interfaces::InterfaceError),
    #[error("Not configured to listen on any interfaces!")]
    NoInterfaces,
    #[error("socket on {interface}: {source}")]
    Socket {
        interface: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

use crate::clock::unix_now;

/// A reply that may leave only once its lease is durable.
pub struct PendingReply {
    socket: Arc<DhcpSocket>,
    payload: Vec<u8>,
    destination: SocketAddrV4,
}

/// What every worker shares.
struct Shared {
    /// Swapped by a SIGHUP reload ([`crate::reload`]).
    engine: crate::reload::EngineCell,
    leases: Arc<ShardedStore>,
    metrics: Arc<Metrics>,
    committer: GroupCommit<Option<PendingReply>>,
    /// The server port (67 or `-p`); clients are answered on port + 1 (RFC 2131 §4.1).
    port: u16,
    id_format: IdFormat,
    /// The XDP fast path when attached (renewals answered in the kernel).
    fast_path: Option<Arc<crate::xdp::runtime::FastPathRuntime>>,
    /// The failover relationships' shared state (written by their drivers) and the hand-off of
    /// committed leases to them; the workers copy it for the engine once per batch. Not
    /// swapped by a reload: the running relationships and their ranges stay
    /// (`crate::reload::prepare`).
    failover: crate::failover::hooks::FailoverHooks,
    /// Hosts added over OMAPI; the workers take the current generation once per batch.
    hosts: Arc<crate::host_table::DynamicHosts>,
    /// The starvation defence's memory (`engine::starvation`), shared by the workers: taken
    /// with the store's lock, once per batch.
    starvation: Mutex<crate::engine::starvation::StarvationState>,
    /// Dynamic DNS updates, when `ddns-update-style` is not `none`.
    ddns: Option<crate::ddns::driver::DdnsRuntime>,
}

impl Shared {
    /// Every lease change the daemon makes or receives goes through here: one path, the
    /// source's effects ([`crate::changes`]). `token` is the reply that waits for the record.
    fn apply(&self, change: crate::changes::LeaseChange<'_>, token: Option<PendingReply>) -> bool {
        let targets = crate::changes::ChangeTargets {
            committer: &self.committer,
            id_format: self.id_format,
            failover: &self.failover,
            fast_path: self.fast_path.as_deref(),
            metrics: &self.metrics,
            dns: self
                .ddns
                .as_ref()
                .map(|ddns| (&ddns.updater, self.engine.load().config().ddns.policy())),
        };
        crate::changes::apply(&targets, change, token)
    }
}

/// The lease log as the XDP fast path writes to it (kernel renewals, horizons).
impl crate::xdp::runtime::LeaseSink for Shared {
    fn submit(&self, lease: &crate::lease::record::Lease) {
        self.apply(
            crate::changes::LeaseChange::new(
                crate::changes::ChangeSource::KernelRenewal,
                std::slice::from_ref(lease),
            ),
            None,
        );
    }

    fn flush(&self) -> bool {
        self.committer.flush().is_ok()
    }

    fn failover(&self) -> Option<crate::xdp::runtime::FailoverRef<'_>> {
        Some(Box::new(&self.failover))
    }
}

/// The lease file path: `-lf`, else the config's `lease-file-name`, else Debian's default.
pub fn leases_path(cli: &Cli, config: &Config) -> PathBuf {
    cli.leases
        .clone()
        .or_else(|| config.lease_file_name.as_ref().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LEASES_PATH))
}

/// The interfaces to serve by ISC's rule ([`interfaces::select`]): the named ones, else every
/// broadcast interface, each only with a subnet declaration for its address.
pub fn select_interfaces(cli: &Cli, config: &Config) -> Result<interfaces::Selection, DaemonError> {
    Ok(interfaces::select(
        &cli.all_interfaces(),
        &interfaces::candidates()?,
        |address| config.subnet_for(address).is_some(),
    ))
}

/// ISC's multi-line complaint about an interface left out, one log line each (as ISC logs it).
pub fn log_ignored_interfaces(selection: &interfaces::Selection) {
    for message in &selection.ignored {
        for line in message.lines() {
            tracing::error!("{line}");
        }
    }
}

/// Runs the server until SIGTERM/SIGINT.
pub fn run(cli: &Cli) -> Result<(), DaemonError> {
    // From the start: a SIGHUP during start-up is a reload request, and a SIGTERM a graceful
    // stop, not the end of the process.
    let signals = crate::signals::Signals::install()?;
    let config_path = cli.config_path();
    let config = crate::config::load_file(&config_path)
        .map_err(|errors| DaemonError::Config(errors.to_string()))?;
    for warning in &config.warnings {
        tracing::warn!("{}: {}", warning.location, warning.message);
    }
    let config = Arc::new(config);
    let leases_path = leases_path(cli, &config);
    let now = unix_now();
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);

    // Load the lease file (ISC: a missing lease file is fatal; parse errors are logged and the
    // rewrite below drops what could not be read). Streamed straight into the store's shards.
    let store = ShardedStore::new(
        config.clone(),
        crate::lease::shards::shard_count(&config, threads),
    );
    let mut other_records = load_leases(&store, &leases_path)?;
    let loaded = store.len();
    // Hosts, groups and failover states of the file are not the store's: keep them for rewrites.
    other_records.errors = Vec::new();
    // OMAPI hosts live in the engine's table; compaction writes them from there.
    let dynamic_hosts = crate::omapi::host_table(&config, std::mem::take(&mut other_records.hosts));
    // Kept for DDNS: their names go once the updater runs.
    let mut expired = Vec::new();
    store
        .for_each(|_, shard| expired.extend(shard.expire(now)))
        .map_err(|error| DaemonError::Leases {
            path: leases_path.clone(),
            message: error.to_string(),
        })?;
    tracing::info!(
        "loaded {loaded} leases from {} ({} expired since; {} store shard(s))",
        leases_path.display(),
        expired.len(),
        store.shard_count()
    );
    let leases = Arc::new(store);
    let metrics = Arc::new(Metrics::default());

    let selection = select_interfaces(cli, &config)?;
    log_ignored_interfaces(&selection);
    if selection.chosen.is_empty() {
        return Err(DaemonError::NoInterfaces);
    }
    let chosen = selection.chosen;
    let port = cli.port.unwrap_or(server_common::DHCP_SERVER_PORT);
    let id_format = IdFormat::of(&config);
    // docs/spec/failover.md §12: the saved failover states the peer drivers resume from; the latest record
    // of each peer is kept here so that compactions write the current state, not the one read at
    // start-up.
    let failover_saved = std::mem::take(&mut other_records.failover_states);
    let latest_failover_states = Arc::new(Mutex::new(failover_saved.clone()));
    let committer = spawn_committer(
        &leases_path,
        &leases,
        Arc::new(other_records),
        &dynamic_hosts,
        &latest_failover_states,
        &metrics,
        id_format,
    )?;
    // XDP: the fast path; without it (no privilege, old kernel) userspace serves everything.
    let interface_names: Vec<String> = chosen
        .iter()
        .map(|interface| interface.name.clone())
        .collect();
    let xdp = if cli.no_xdp {
        tracing::info!("XDP disabled by --no-xdp; serving from userspace");
        None
    } else {
        match crate::xdp::attach(&interface_names) {
            Ok(attachment) => {
                tracing::info!("XDP attached: {:?}", attachment.interfaces);
                Some(attachment)
            }
            Err(error) => {
                tracing::warn!("XDP not available ({error}); serving everything from userspace");
                None
            }
        }
    };

    let fast_path = xdp.and_then(|attachment| {
        let indices: Vec<(String, u32)> = chosen
            .iter()
            .map(|interface| (interface.name.clone(), interface.index))
            .collect();
        match crate::xdp::runtime::FastPathRuntime::new(attachment, &config, port, &indices) {
            Ok(runtime) => Some(Arc::new(runtime)),
            Err(error) => {
                tracing::warn!("XDP maps not usable ({error}); serving everything from userspace");
                None
            }
        }
    });

    let shared = Arc::new(Shared {
        engine: crate::reload::EngineCell::new(Engine::new(config.clone())),
        leases: leases.clone(),
        metrics: metrics.clone(),
        committer,
        port,
        id_format,
        fast_path,
        failover: crate::failover::hooks::FailoverHooks::new(&config),
        hosts: dynamic_hosts.clone(),
        starvation: Mutex::default(),
        ddns: crate::ddns::driver::DdnsRuntime::start(&config)?,
    });
    if let Some(ddns) = &shared.ddns {
        let recorder = Arc::downgrade(&shared);
        ddns.spawn_results(leases.clone(), move |lease| {
            if let Some(shared) = recorder.upgrade() {
                shared.apply(
                    crate::changes::LeaseChange::new(
                        crate::changes::ChangeSource::Ddns,
                        std::slice::from_ref(lease),
                    ),
                    None,
                );
            }
        })?;
        // Leases that ended while the server was down: their names go now (ISC's first
        // expiry run after start-up removes them).
        let policy = config.ddns.policy();
        for lease in &expired {
            for operation in
                crate::ddns::lease::operations_for_change(lease, None, false, policy, now)
            {
                ddns.updater.submit(operation);
            }
        }
    }

    // Failover peers (docs/spec/failover.md): one driver thread, when the config declares a peer.
    let _failover = crate::failover::peer::start(
        &config,
        &shared.failover,
        &leases,
        {
            let shared = shared.clone();
            let latest = latest_failover_states.clone();
            Arc::new(
                move |leases: &[crate::lease::record::Lease],
                      states: &[crate::lease::file::FailoverStateRecord]| {
                    if let Ok(mut latest) = latest.lock() {
                        for state in states {
                            latest.retain(|known| known.peer != state.peer);
                            latest.push(state.clone());
                        }
                    }
                    shared.apply(
                        crate::changes::LeaseChange {
                            source: crate::changes::ChangeSource::Partner,
                            leases,
                            failover_states: states,
                            dns_settings: &[],
                        },
                        None,
                    )
                },
            )
        },
        &failover_saved,
    )?;

    let _fast_path_thread = match &shared.fast_path {
        Some(runtime) => {
            Some(runtime.spawn(leases.clone(), shared.clone(), signals.shutdown_flag())?)
        }
        None => None,
    };

    // `--metrics-listen` overrides the config's `option xdhcpd.metrics-listen`.
    if let Some(listen) = cli.metrics_listen.or(config.metrics_listen) {
        let mut registry = metrics.registry(crate::metrics::collectors::Sources {
            config: {
                let shared = shared.clone();
                Arc::new(move || shared.engine.load().config().clone())
            },
            leases: leases.clone(),
            commit: shared.committer.stats(),
            fast_path: shared.fast_path.clone(),
            failover: shared.failover.relationships().to_vec(),
        });
        if let Some(ddns) = &shared.ddns {
            ddns.metrics.register(&mut registry);
        }
        crate::metrics::serve(listen, registry)?;
        tracing::info!("metrics on http://{listen}/metrics");
    }

    let omapi_shared = shared.clone();
    let omapi_leases_shared = shared.clone();
    let _omapi = crate::omapi::start(
        config.clone(),
        leases.clone(),
        dynamic_hosts,
        Box::new(move |record| {
            if omapi_shared.committer.submit(record, None).is_err() {
                tracing::error!("OMAPI change not persisted: the lease committer stopped");
            }
        }),
        Box::new(move |changed: &[crate::lease::record::Lease]| {
            let change =
                crate::changes::LeaseChange::new(crate::changes::ChangeSource::Omapi, changed);
            if !omapi_leases_shared.apply(change, None) {
                tracing::error!("OMAPI change not persisted: the lease committer stopped");
            }
        }),
        {
            let signals = signals.clone();
            Box::new(move || signals.request_shutdown())
        },
        Box::new(crate::failover::omapi::FailoverStateObjects::new(
            &config,
            &shared.failover,
        )),
    )?;

    // Bound last, right before the workers start: a client (or a readiness probe) that sees
    // the port open is answered at once, not after the XDP verifier and the lease-file rewrite.
    // One socket per interface, read by `threads` workers at once: the kernel hands each
    // datagram to exactly one reader. (One SO_REUSEPORT socket per worker would be the usual
    // way, but Linux delivers a *copy of every broadcast* to each socket of a reuseport group,
    // and most DHCP requests are broadcasts: every client would get one reply per worker.)
    let mut sockets = Vec::new();
    for interface in &chosen {
        let socket = DhcpSocket::bind(port, Some(&interface.name), Duration::from_millis(250))
            .map_err(|source| DaemonError::Socket {
                interface: interface.name.clone(),
                source,
            })?;
        let socket = Arc::new(socket);
        metrics.watch_socket(&interface.name, &socket);
        for _ in 0..threads {
            sockets.push((socket.clone(), interface.clone()));
        }
    }

    let mut workers = Vec::new();
    for (index, (socket, interface)) in sockets.into_iter().enumerate() {
        let shared = shared.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("dhcp-{}-{index}", interface.name))
                .spawn({
                    let signals = signals.clone();
                    move || worker(&shared, &socket, &interface, &signals)
                })?,
        );
    }
    tracing::info!(
        "xdhcpd serving {} on port {port} with {threads} worker(s) each; leases in {}",
        interface_names.join(", "),
        leases_path.display()
    );

    crate::sd_notify::ready("serving");

    // The main thread drives expiry once a second and reloads on SIGHUP until told to stop.
    let mut last_expiry = unix_now();
    while !signals.shutdown_requested() {
        std::thread::sleep(Duration::from_millis(200));
        if signals.take_reload() {
            crate::reload::handle_request(&crate::reload::ReloadTargets {
                config_path: &config_path,
                engine: &shared.engine,
                leases: &leases,
                fast_path: shared.fast_path.as_deref(),
                interfaces: &chosen,
            });
            if let Some(ddns) = &shared.ddns {
                ddns.reload(shared.engine.load().config());
            }
        }
        let now = unix_now();
        if now != last_expiry {
            last_expiry = now;
            expire(&shared, now);
            sync_kernel_load_balancing(&shared);
        }
    }
    tracing::info!("shutting down");
    crate::sd_notify::stopping();
    // First, so that the kernel stops answering renewals that nobody would record any more.
    if let Some(fast_path) = &shared.fast_path {
        fast_path.detach();
    }
    // docs/spec/failover.md §6.2: NORMAL relationships say SHUTDOWN to their partners before we go.
    for record in crate::shutdown::failover_shutdown(&shared.failover, unix_now) {
        let mut buffer = Vec::new();
        crate::lease::file::write_failover_state(&record, &mut buffer);
        if let Ok(mut latest) = latest_failover_states.lock() {
            latest.retain(|known| known.peer != record.peer);
            latest.push(record);
        }
        let _ = shared.committer.submit(buffer, None);
    }
    // Workers finish their batch (its replies go out, its leases reach the committer).
    for worker in workers {
        let _ = worker.join();
    }
    if let Some(ddns) = &shared.ddns {
        ddns.stop();
    }
    // Everything decided so far reaches the disk (and its replies the wire) before we exit.
    if shared.committer.flush().is_err() {
        tracing::error!("the lease committer stopped before shutdown");
    }
    log_commit_statistics(&shared.committer.stats().snapshot());
    if let Some(fast_path) = &shared.fast_path {
        fast_path.log_statistics();
    }
    Ok(())
}

/// Group-commit batch sizes since start: how many records one fsync covered.
fn log_commit_statistics(stats: &crate::lease::commit::CommitStatsSnapshot) {
    let mean = if stats.batches == 0 {
        0.0
    } else {
        stats.records as f64 / stats.batches as f64
    };
    let histogram: Vec<String> = stats
        .histogram
        .iter()
        .enumerate()
        .filter(|(_, count)| **count > 0)
        .map(|(bucket, count)| format!("{}-{}:{count}", 1u64 << bucket, (1u64 << (bucket + 1)) - 1))
        .collect();
    tracing::info!(
        "group commit: {} records in {} fsyncs (mean {mean:.1}, max {}); batch sizes {}",
        stats.records,
        stats.batches,
        stats.max_batch,
        histogram.join(" ")
    );
}

/// Streams the lease file into `store`; logs what had to be skipped. Returns the records that
/// are not leases (hosts, groups, failover states, server DUID).
pub fn load_leases(store: &ShardedStore, path: &Path) -> Result<LeaseFile, DaemonError> {
    let file = store.load_path(path).map_err(|error| DaemonError::Leases {
        path: path.to_path_buf(),
        message: format!("{error} (create an empty file to start without leases)"),
    })?;
    for error in &file.errors {
        tracing::error!(
            "{}:{}:{}: {} (statement skipped)",
            path.display(),
            error.line,
            error.column,
            error.message
        );
    }
    if file.torn_tail {
        tracing::warn!(
            "{}: the last record was incomplete (crash while writing); it was dropped",
            path.display()
        );
    }
    Ok(file)
}

/// Keeps the XDP program's DISCOVER load balancing in step with the failover state (NORMAL
/// only, docs/spec/failover.md §11.3). With several relationships the kernel cannot tell which one a
/// DISCOVER belongs to, so it balances only when there is exactly one; userspace balances the rest.
fn sync_kernel_load_balancing(shared: &Shared) {
    let Some(fast_path) = &shared.fast_path else {
        return;
    };
    let balancing = match shared.failover.relationships() {
        [only] => crate::xdp::runtime::LoadBalancing::of(only),
        _ => None,
    };
    // Where the partner has no free lease to give, the engine answers its buckets too (§11.3).
    // Each shard answers for the shared networks it holds, one shard locked at a time.
    let balancing = balancing.filter(|_| {
        let mut short = false;
        let visited = shared.leases.for_each(|_, store| {
            let failover = shared.failover.view();
            short = short
                || shared
                    .engine
                    .load()
                    .partner_short_of_free_leases(&failover, store);
        });
        visited.is_ok() && !short
    });
    fast_path.set_load_balancing(balancing);
}

/// Moves leases past their end to their next state and logs the change, one shard at a time
/// (each change applied once its shard is let go).
fn expire(shared: &Shared, now: UnixTime) {
    for index in 0..shared.leases.shard_count() {
        let changed = match shared.leases.lock(index) {
            Ok(mut store) => {
                // Copied under the shard's lock, so it matches the leases a driver just changed.
                let failover = shared.failover.view();
                shared.engine.load().expire(now, &failover, &mut store)
            }
            Err(_) => return,
        };
        if changed.is_empty() {
            continue;
        }
        shared.metrics.leases_expired.add(changed.len() as u64);
        shared.apply(
            crate::changes::LeaseChange::new(crate::changes::ChangeSource::Expiry, &changed),
            None,
        );
    }
}

/// The group committer: writes and fsyncs batches of lease records, then sends the replies that
/// waited for them. Opening the log rewrites the file compactly, as ISC does at start-up.
fn spawn_committer(
    path: &Path,
    leases: &Arc<ShardedStore>,
    other_records: Arc<LeaseFile>,
    dynamic_hosts: &Arc<crate::host_table::DynamicHosts>,
    failover_states: &Arc<Mutex<Vec<crate::lease::file::FailoverStateRecord>>>,
    metrics: &Arc<Metrics>,
    id_format: IdFormat,
) -> Result<GroupCommit<Option<PendingReply>>, DaemonError> {
    let snapshot_leases = leases.clone();
    let snapshot_hosts = dynamic_hosts.clone();
    let snapshot_failover_states = failover_states.clone();
    // The store is copied one shard at a time, each under its own lock, and formatted outside
    // them: formatting 200,000 leases under the lock stalled every worker for tens of
    // milliseconds. A poisoned lock gives no snapshot (an empty one would replace the file and
    // lose every lease).
    let snapshot = move |buffer: &mut Vec<u8>| {
        let Ok(states) = snapshot_failover_states.lock().map(|states| states.clone()) else {
            return false;
        };
        let Ok(leases) = snapshot_leases.leases() else {
            return false;
        };
        crate::lease::file::write_file(&other_records, id_format, buffer);
        for record in &snapshot_hosts.current().records {
            crate::lease::file::write_host(record, buffer);
        }
        for state in &states {
            crate::lease::file::write_failover_state(state, buffer);
        }
        for lease in &leases {
            crate::lease::file::write_lease_with(lease, id_format, buffer);
        }
        true
    };
    let mut initial = Vec::new();
    if !snapshot(&mut initial) {
        return Err(DaemonError::Leases {
            path: path.to_path_buf(),
            message: "the lease store is unusable".into(),
        });
    }
    let log = LeaseLog::open(path, &initial).map_err(|error| DaemonError::Leases {
        path: path.to_path_buf(),
        message: error.to_string(),
    })?;
    drop(initial);
    let dropped_metrics = metrics.clone();
    // README: `drops_total{reason="commit_failed"}` counts the replies that did not go out
    // because their lease could not be made durable.
    let on_dropped = move |tokens: Vec<Option<PendingReply>>| {
        dropped_metrics.count_commit_failures(&tokens);
    };
    let metrics = metrics.clone();
    let mut outgoing = SendBatch::default();
    let on_durable = move |tokens: Vec<Option<PendingReply>>| {
        metrics.leases_committed.add(tokens.len() as u64);
        // One sendmmsg per socket for the whole batch (almost always a single socket).
        let mut replies: Vec<PendingReply> = tokens.into_iter().flatten().collect();
        while let Some(first) = replies.first() {
            let socket = first.socket.clone();
            let (same, rest): (Vec<_>, Vec<_>) = replies
                .into_iter()
                .partition(|reply| Arc::ptr_eq(&reply.socket, &socket));
            replies = rest;
            for reply in same {
                outgoing.push(reply.payload, reply.destination);
            }
            let queued = outgoing.len() as u64;
            match socket.send_batch(&mut outgoing) {
                Ok(sent) => {
                    metrics.replies_sent.add(sent as u64);
                    metrics.send_errors.add(queued - sent as u64);
                }
                Err(_) => metrics.send_errors.add(queued),
            }
        }
    };
    Ok(GroupCommit::spawn(
        log,
        GroupCommitConfig::default(),
        on_durable,
        on_dropped,
        snapshot,
    )?)
}

/// One worker: receive a batch, decide each packet, send or hand over to the committer.
fn worker(
    shared: &Shared,
    socket: &Arc<DhcpSocket>,
    interface: &Interface,
    signals: &crate::signals::Signals,
) {
    let mut incoming = ReceiveBatch::new();
    let mut outgoing = SendBatch::default();
    let mut messages = Vec::with_capacity(crate::net::socket::BATCH);
    let mut decisions = Vec::with_capacity(crate::net::socket::BATCH);
    // Whether the engine in force declares a subnet for this interface, worked out again only
    // when a reload swaps the engine.
    let mut subnet_known: Option<(Arc<Engine>, bool)> = None;
    while !signals.shutdown_requested() {
        let received = match socket.receive_batch(&mut incoming) {
            Ok(0) => continue,
            Ok(count) => count,
            Err(error) => {
                tracing::error!("receive on {}: {error}", interface.name);
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let now = unix_now();
        messages.clear();
        shared.metrics.packets_received.add(received as u64);
        for (payload, source) in incoming.iter() {
            match crate::net::decode::decode_message(payload) {
                Ok(message) => {
                    shared.metrics.count_received(&message);
                    // Renewal-shaped requests keep their bytes: the XDP template needs them.
                    let raw = shared
                        .fast_path
                        .as_ref()
                        .filter(|fast_path| fast_path.wants_payload(&message))
                        .map(|_| payload.to_vec());
                    messages.push((message, source, raw))
                }
                Err(error) => {
                    shared.metrics.count_malformed();
                    tracing::debug!("dropped a datagram from {source}: {error}");
                }
            }
        }
        if messages.is_empty() {
            continue;
        }
        // ISC listens only on interfaces with a subnet declaration ("** Ignoring requests on
        // IFACE", common/discover.c). A reload may take an interface's subnet away (it refuses
        // to take all of them): its requests, relayed ones too, are then ignored as ISC would.
        let engine = shared.engine.load();
        let has_subnet = match &subnet_known {
            Some((known, has_subnet)) if Arc::ptr_eq(known, &engine) => *has_subnet,
            _ => {
                let has_subnet = engine.config().subnet_for(interface.address).is_some();
                subnet_known = Some((engine, has_subnet));
                has_subnet
            }
        };
        if !has_subnet {
            for _ in &messages {
                shared
                    .metrics
                    .count_drop(crate::metrics::DropReason::NoSubnet);
            }
            continue;
        }
        decisions.clear();
        decisions.resize_with(messages.len(), || None);
        // Kernel entries to take out once the store is unlocked: no BPF syscall under it.
        let mut withdrawals = Vec::new();
        if decide_batch(
            shared,
            interface,
            now,
            &messages,
            &mut decisions,
            &mut withdrawals,
        )
        .is_err()
        {
            return;
        }
        if let Some(fast_path) = &shared.fast_path {
            for &index in &withdrawals {
                fast_path.withdraw(&messages[index].0);
            }
        }
        for (decided, (message, _, _)) in decisions.drain(..).zip(&messages) {
            let Some((decision, publish, dns)) = decided else {
                continue;
            };
            dispatch(
                shared,
                socket,
                interface,
                message,
                decision,
                &dns,
                &mut outgoing,
            );
            // Published by the fast-path thread once the record submitted above is durable.
            if let (Some(fast_path), Some(publish)) = (&shared.fast_path, publish) {
                fast_path.queue(publish);
            }
        }
        if !outgoing.is_empty() {
            let queued = outgoing.len() as u64;
            match socket.send_batch(&mut outgoing) {
                Ok(sent) => {
                    shared.metrics.replies_sent.add(sent as u64);
                    shared.metrics.send_errors.add(queued - sent as u64);
                }
                Err(_) => shared.metrics.send_errors.add(queued),
            }
        }
    }
}

/// A received message: the decoded request, its source, and its bytes when the XDP fast path
/// may make a template of its answer.
type Received = (dhcproto::v4::Message, SocketAddrV4, Option<Vec<u8>>);

/// A decision, the kernel publication prepared with it, and the DDNS name and settings of each
/// lease it binds.
type Decided = (
    Decision,
    Option<crate::xdp::runtime::Publish>,
    Vec<(Ipv4Addr, crate::ddns::lease::DdnsSettings)>,
);

/// Decides a received batch one store shard at a time: each request goes to the shard of the
/// shared network whose leases it needs ([`Engine::store_network`], asked before anything is
/// locked), and each shard is locked once, its requests decided in arrival order. A reload
/// between the choice and the lock (the layout or the engine changed) sends the rest of the
/// batch back to be grouped again under the new config. `decisions[i]` receives message `i`'s;
/// `withdrawals` the messages whose kernel entries must go once every shard is let go.
fn decide_batch(
    shared: &Shared,
    interface: &Interface,
    now: UnixTime,
    messages: &[Received],
    decisions: &mut [Option<Decided>],
    withdrawals: &mut Vec<usize>,
) -> Result<(), crate::lease::shards::Poisoned> {
    let request = |index: usize| {
        let (message, source, _) = &messages[index];
        Request {
            message,
            source: *source,
            interface_address: Some(interface.address),
        }
    };
    let mut shard_of = vec![0usize; messages.len()];
    let mut pending: Vec<usize> = (0..messages.len()).collect();
    while !pending.is_empty() {
        let engine = shared.engine.load();
        let layout = shared.leases.layout();
        for &index in &pending {
            shard_of[index] = layout.of_network(engine.store_network(&request(index)));
        }
        // Stable: requests of one shard keep their arrival order.
        pending.sort_by_key(|&index| shard_of[index]);
        let mut regroup = Vec::new();
        for group in pending.chunk_by(|&a, &b| shard_of[a] == shard_of[b]) {
            if !regroup.is_empty() {
                regroup.extend_from_slice(group);
                continue;
            }
            let mut store = shared.leases.lock(shard_of[group[0]])?;
            // A reload swaps layout and engine while it holds every shard: once this shard is
            // held, both are what the choice was made with, or the choice is made again.
            if !shared.leases.is_current(&layout) || !Arc::ptr_eq(&shared.engine.load(), &engine) {
                drop(store);
                regroup.extend_from_slice(group);
                continue;
            }
            let locked = crate::clock::monotonic();
            // What the engine reads of the failover drivers and OMAPI, copied for the group
            // under the shard's lock (a driver changes leases under it, then publishes).
            let snapshot = Snapshot {
                failover: shared.failover.view(),
                hosts: shared.hosts.snapshot(),
            };
            // The buckets are plain data: a panic elsewhere mid-update leaves them usable.
            let mut starvation = shared
                .starvation
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for &index in group {
                let (message, _, raw) = &messages[index];
                let mut decision =
                    engine.handle(now, &snapshot, &request(index), &mut store, &mut starvation);
                // The DDNS name and settings of each lease the decision binds.
                let dns: Vec<(Ipv4Addr, crate::ddns::lease::DdnsSettings)> =
                    match (&shared.ddns, decision.outcome) {
                        (Some(_), Outcome::Acked(_) | Outcome::BootReplied(_)) => decision
                            .commit
                            .iter()
                            .filter_map(|lease| {
                                engine
                                    .ddns_settings(now, &snapshot, &request(index), lease.address)
                                    .map(|settings| (lease.address, settings))
                            })
                            .collect(),
                        _ => Vec::new(),
                    };
                let mut publish = None;
                if let Some(fast_path) = &shared.fast_path {
                    if let Some(raw) = raw {
                        publish = fast_path.prepare(raw, message, &mut decision, &mut store);
                    }
                    // A binding userspace changed (ACK not republished, release, decline) or
                    // refused (NAK) leaves the kernel's copy stale. OFFERs and INFORMs change
                    // no binding: no map lookup for them on the DISCOVER path.
                    if publish.is_none()
                        && (!decision.commit.is_empty()
                            || matches!(decision.outcome, Outcome::Nacked))
                    {
                        withdrawals.push(index);
                    }
                }
                decisions[index] = Some((decision, publish, dns));
            }
            drop(starvation);
            drop(store);
            shared
                .metrics
                .store_lock_hold
                .observe(locked.elapsed().as_secs_f64());
        }
        pending = regroup;
    }
    Ok(())
}

/// Counts a decision, then sends its reply now (nothing to make durable) or queues it behind its
/// lease records in the group committer.
fn dispatch(
    shared: &Shared,
    socket: &Arc<DhcpSocket>,
    interface: &Interface,
    message: &dhcproto::v4::Message,
    decision: Decision,
    dns_settings: &[(Ipv4Addr, crate::ddns::lease::DdnsSettings)],
    outgoing: &mut SendBatch,
) {
    let metrics = &shared.metrics;
    metrics.count_decision(&decision.outcome);
    metrics.log_lines_suppressed.add(crate::logging::exchange(
        message,
        &decision.outcome,
        &interface.name,
    ));
    // `Reply::encode` keeps ISC's option order (dhcproto alone would sort by code).
    let reply = decision.reply.and_then(|reply| match reply.encode() {
        Ok(payload) => Some((
            payload,
            route(shared, socket, interface, &reply.destination),
        )),
        Err(error) => {
            tracing::warn!("cannot encode a reply: {error}");
            metrics.count_drop(crate::metrics::DropReason::EncodeFailed);
            None
        }
    });
    if decision.commit.is_empty() {
        if let Some((payload, destination)) = reply {
            outgoing.push(payload, destination);
        }
        return;
    }
    let pending = reply.map(|(payload, destination)| PendingReply {
        socket: socket.clone(),
        payload,
        destination,
    });
    shared.apply(
        crate::changes::LeaseChange {
            dns_settings,
            ..crate::changes::LeaseChange::new(
                crate::changes::ChangeSource::Engine,
                &decision.commit,
            )
        },
        pending,
    );
}

/// The UDP destination of a reply (RFC 2131 §4.1).
fn route(
    shared: &Shared,
    socket: &DhcpSocket,
    interface: &Interface,
    destination: &Destination,
) -> SocketAddrV4 {
    let client_port = shared.port.wrapping_add(1);
    match destination {
        // Relay agents listen on the server port (ISC sends to the relay's `local_port`).
        Destination::Relay(giaddr) => SocketAddrV4::new(*giaddr, shared.port),
        Destination::Unicast(address) => SocketAddrV4::new(*address, client_port),
        Destination::Broadcast => SocketAddrV4::new(Ipv4Addr::BROADCAST, client_port),
        Destination::Hardware { address, hardware } => {
            match crate::net::arp::set_entry(
                socket.raw_fd(),
                &interface.name,
                *address,
                hardware.address(),
            ) {
                Ok(()) => SocketAddrV4::new(*address, client_port),
                Err(_) => SocketAddrV4::new(Ipv4Addr::BROADCAST, client_port),
            }
        }
    }
}

/// Writes the PID file: `-pf`, else the config's `pid-file-name`, else /var/run/dhcpd.pid.
pub fn write_pid_file(cli: &Cli, config_pid_file: Option<&str>) -> Option<PathBuf> {
    let path = cli
        .pid_file
        .clone()
        .or_else(|| config_pid_file.map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PID_PATH));
    match std::fs::write(&path, format!("{}\n", std::process::id())) {
        Ok(()) => Some(path),
        Err(error) => {
            tracing::warn!("cannot write PID file {}: {error}", path.display());
            None
        }
    }
}
