//! Wires config, lease store, engine and packet I/O into the running server. This is the driver:
//! it owns the clock, the sockets and the threads; every protocol decision is the engine's.
//!
//! Threads: `threads` workers per interface reading one shared socket, the group
//! committer of the lease log (it also sends the replies that promise a lease, after fsync), one
//! expiry ticker, and optionally the metrics endpoint. The lease store is in shards by shared
//! network ([`ShardedStore`]): a worker groups a received batch by the shard each request needs
//! and takes each of those shards once; a decision holds its shard for a few microseconds.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cli::{Cli, DEFAULT_LEASES_PATH, DEFAULT_PID_PATH};
use crate::config::model::Config;
use crate::engine::Engine;
use crate::lease::commit::{GroupCommit, GroupCommitConfig};
use crate::lease::file::{FileFormat, LeaseFile};
use crate::lease::log::LeaseLog;
use crate::lease::record::UnixTime;
use crate::lease::shards::ShardedStore;
use crate::metrics::Metrics;
use crate::net::interfaces;
use crate::net::socket::{DhcpSocket, SendBatch};

mod commands;
mod control_api;
mod crew;
mod databases;
mod ping;
mod worker;

/// How long control-plane tasks get to finish at shutdown before they are dropped.
const CONTROL_PLANE_GRACE: Duration = Duration::from_secs(2);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(String),
    #[error("lease file {path}: {message}")]
    Leases { path: PathBuf, message: String },
    #[error("{0}")]
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
    #[error("{0}")]
    LocalAddress(#[from] crate::net::local_address::NotLocal),
}

use crate::clock::unix_now;

/// A reply that may leave only once its lease is durable.
pub struct PendingReply {
    socket: Arc<DhcpSocket>,
    payload: Vec<u8>,
    target: crate::net::socket::Target,
}

/// What every worker shares.
struct Shared {
    /// Swapped by a SIGHUP reload ([`crate::reload`]).
    engine: crate::reload::EngineCell,
    leases: Arc<ShardedStore>,
    metrics: Arc<Metrics>,
    committer: GroupCommit<crate::changes::Durable<PendingReply>>,
    /// The server port (67, `-p` or `local-port`) and the clients' (`remote-port`, else the
    /// command line's + 1).
    ports: crate::net::ports::Ports,
    /// `local-address` (global): the source of the replies ISC sends through its fallback
    /// socket (`net::local_address`).
    local_address: Option<std::net::Ipv4Addr>,
    /// Where broadcast replies go: `limited-broadcast-address`, else 255.255.255.255 (ISC
    /// `limited_broadcast`).
    limited_broadcast: std::net::Ipv4Addr,
    file_format: FileFormat,
    /// The XDP fast path when attached (renewals answered in the kernel).
    fast_path: Option<Arc<crate::xdp::runtime::FastPathRuntime>>,
    /// The failover relationships' shared state (written by their drivers) and the hand-off of
    /// committed leases to them; the workers copy it for the engine once per batch. Not
    /// swapped by a reload: the running relationships and their ranges stay
    /// (`crate::reload::prepare`).
    failover: Arc<crate::failover::hooks::FailoverHooks>,
    /// Hosts added over OMAPI; the workers take the current generation once per batch.
    hosts: Arc<crate::host_table::DynamicHosts>,
    /// The starvation defence's memory (`engine::starvation`), shared by the workers: taken
    /// with the store's lock, once per batch.
    starvation: Mutex<crate::engine::starvation::StarvationState>,
    /// Dynamic DNS updates, when `ddns-update-style` is not `none`.
    ddns: Option<crate::ddns::driver::DdnsRuntime>,
    /// Where OFFERs that wait for their `ping-check` go; `None` without an ICMP socket (no
    /// CAP_NET_RAW): the engine then offers without probing.
    ping: Option<ping::PingDriver>,
    /// Starts the commands of `execute` statements off the packet path.
    commands: commands::CommandRunner,
    /// `get-lease-hostnames`: the reverse names looked up off the packet path.
    reverse_names: Arc<crate::reverse_names::ReverseNames>,
    /// The lease history's writer, with a history database (`crate::history`).
    history: Option<crate::history::writer::HistorySink>,
    /// `--receive-coalesce-us` (`worker::ReceiveCoalescing`).
    receive_coalesce: std::time::Duration,
}

impl Shared {
    /// What the engine reads of the failover drivers, OMAPI hosts, the ping driver and the
    /// reverse-name table, copied for one batch (or one lease query).
    fn snapshot(&self) -> crate::engine::Snapshot {
        crate::engine::Snapshot {
            failover: self.failover.view(),
            hosts: self.hosts.snapshot(),
            ping_checks: self.ping.is_some(),
            reverse_names: self.reverse_names.table(),
        }
    }

    /// Every lease change the daemon makes or receives goes through here: one path, the
    /// source's effects ([`crate::changes`]). `token` is the reply that waits for the record.
    fn apply(&self, change: crate::changes::LeaseChange<'_>, token: Option<PendingReply>) -> bool {
        let targets = crate::changes::ChangeTargets {
            committer: &self.committer,
            file_format: self.file_format,
            failover: &self.failover,
            fast_path: self.fast_path.as_deref(),
            metrics: &self.metrics,
            dns: self
                .ddns
                .as_ref()
                .map(|ddns| (&ddns.updater, self.engine.load().config().ddns.policy())),
            history: self.history.as_ref(),
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
        Some(Box::new(&*self.failover))
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
    let candidates = interfaces::candidates()?;
    // `interface NAME;` in a subnet or shared network: ISC's checks, then the name joins the
    // command line's (`interfaces::requested`).
    interfaces::check_declared(&config.interfaces, &candidates, |address| {
        config
            .subnet_for(address)
            .map(|subnet| config.subnet(subnet).shared_network)
    })?;
    Ok(interfaces::select(
        &interfaces::requested(&cli.all_interfaces(), &config.interfaces),
        &candidates,
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
    // `option xdhcpd.lease-database` / `--lease-database`: the leases live in PostgreSQL
    // (`lease::pg`), and the file is not read.
    let lease_database = databases::lease_database(cli, &config);
    let (mut other_records, mut database_log) =
        databases::load(cli, lease_database.as_deref(), &store, &leases_path)?;
    // A torn last record must be rewritten away before anything is appended after it.
    let rewrite_at_start = other_records.torn_tail;
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
        if database_log.is_some() {
            "the lease database".into()
        } else {
            leases_path.display().to_string()
        },
        expired.len(),
        store.shard_count()
    );
    if let Some(log) = database_log.as_mut() {
        databases::write_expired(log, &expired, &config)?;
    }
    let leases = Arc::new(store);
    let metrics = Arc::new(Metrics::default());

    let selection = select_interfaces(cli, &config)?;
    log_ignored_interfaces(&selection);
    if selection.chosen.is_empty() {
        return Err(DaemonError::NoInterfaces);
    }
    let chosen = selection.chosen;
    // ISC binds its fallback socket to `local-address` once it has found its interfaces and
    // stops when it cannot (common/socket.c `if_register_socket`).
    let local_address = crate::net::local_address::of(&config);
    if let Some(address) = local_address {
        crate::net::local_address::check(address)?;
    }
    // ISC reads `local-port` after the command line: the config's wins over `-p`; clients are
    // answered on `remote-port`, else `-p` + 1.
    let ports = crate::net::ports::Ports::of(&config, cli.port);
    let port = ports.server;
    let file_format = FileFormat::of(&config);
    // docs/spec/failover.md §12: the saved failover states the peer drivers resume from; the latest record
    // of each peer is kept here so that compactions write the current state, not the one read at
    // start-up.
    let failover_saved = std::mem::take(&mut other_records.failover_states);
    let latest_failover_states = Arc::new(Mutex::new(failover_saved.clone()));
    let failover_hooks = Arc::new(crate::failover::hooks::FailoverHooks::new(&config));
    // Failover, OMAPI, metrics, DNS updates and the lease history: tasks of one runtime
    // (crate::control_plane).
    let control_plane = crate::control_plane::ControlPlane::start()?;
    let history = databases::start_history(
        cli,
        &config,
        &control_plane,
        &leases,
        &leases_path,
        &expired,
    )?;
    let database_hooks = database_log
        .as_mut()
        .map(|log| databases::share_store(log, &leases, cli));
    let committer = spawn_committer(
        &leases_path,
        Snapshot {
            leases: &leases,
            other_records: Arc::new(other_records),
            dynamic_hosts: &dynamic_hosts,
            failover_states: &latest_failover_states,
        },
        &metrics,
        file_format,
        &failover_hooks,
        history.clone(),
        (
            match database_log.take() {
                Some(log) => LeaseBacking::Database(Box::new(log)),
                None => LeaseBacking::File { rewrite_at_start },
            },
            std::time::Duration::from_micros(cli.commit_interval_us),
        ),
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
        match crate::xdp::runtime::FastPathRuntime::new(attachment, &config, ports, &indices) {
            Ok(runtime) => Some(Arc::new(runtime)),
            Err(error) => {
                tracing::warn!("XDP maps not usable ({error}); serving everything from userspace");
                None
            }
        }
    });

    // ISC opens its ICMP socket at start-up whatever the config says (`icmp_startup`).
    let (ping_driver, ping_start) = ping::open(ping_check_wanted(&config)).unzip();
    let shared = Arc::new(Shared {
        engine: crate::reload::EngineCell::new(Engine::new(config.clone())),
        leases: leases.clone(),
        metrics: metrics.clone(),
        committer,
        ports,
        local_address,
        limited_broadcast: config
            .scopes
            .first()
            .and_then(|global| global.limited_broadcast_address)
            .unwrap_or(std::net::Ipv4Addr::BROADCAST),
        file_format,
        fast_path,
        failover: failover_hooks,
        hosts: dynamic_hosts.clone(),
        starvation: Mutex::default(),
        ddns: crate::ddns::driver::DdnsRuntime::start(&config, &control_plane)?,
        ping: ping_driver,
        commands: commands::CommandRunner::spawn(metrics.clone(), signals.shutdown_flag())?,
        reverse_names: crate::reverse_names::ReverseNames::new(
            crate::reverse_names::system,
            signals.shutdown_flag(),
        ),
        history,
        receive_coalesce: std::time::Duration::from_micros(cli.receive_coalesce_us),
    });
    shared.reverse_names.start(&config)?;
    let ping_threads = match ping_start {
        Some(start) => start.spawn(shared.clone(), signals.shutdown_flag())?,
        None => Vec::new(),
    };
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

    // Several servers on one lease database: the others' changes reach the store every
    // second and go the one path (`lease::pg`, `ChangeSource::Database`).
    if let (Some(database), Some(hooks)) = (&lease_database, &database_hooks) {
        databases::start_poller(&shared, &control_plane, database, hooks, cli);
    }

    // Failover peers (docs/spec/failover.md): one driver thread, when the config declares a peer.
    let _failover = crate::failover::peer::start(
        &control_plane,
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
                            request: None,
                        },
                        None,
                    )
                },
            )
        },
        &failover_saved,
    );

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
        if let Some(history) = &shared.history {
            history.metrics().register(&mut registry);
        }
        if let Some(hooks) = &database_hooks {
            registry.register(
                "lease_claims_lost",
                "new leases not ACKed because another server of the lease database bound the \
                 address first",
                hooks.claims_lost.clone(),
            );
            registry.register(
                "lease_database_up",
                "1 while the last lease commit reached the lease database, 0 after one failed \
                 for want of it (nothing is ACKed until it returns)",
                hooks.database_up.clone(),
            );
        }
        crate::metrics::serve(
            control_plane.handle(),
            control_plane.token(),
            listen,
            registry,
        )?;
        tracing::info!("metrics on http://{listen}/metrics");
    }

    // RFC 6926 bulk leasequery: only with `option xdhcpd.bulk-leasequery-listen` (ISC has none).
    if let Some(listen) = config.bulk_leasequery_listen {
        let engine_shared = shared.clone();
        let snapshot_shared = shared.clone();
        crate::bulk_leasequery::serve(
            control_plane.handle(),
            control_plane.token(),
            listen,
            crate::bulk_leasequery::Sources {
                engine: Arc::new(move || engine_shared.engine.load()),
                snapshot: Arc::new(move || snapshot_shared.snapshot()),
                leases: leases.clone(),
                now: Arc::new(unix_now),
            },
        )?;
        tracing::info!("bulk leasequery (RFC 6926) on tcp {listen}");
    }

    let omapi_shared = shared.clone();
    let omapi_leases_shared = shared.clone();
    // `persist` takes dhcpd.leases host records; lease changes are applied like every other
    // (`crate::changes`); `shutdown` begins a graceful stop.
    let omapi_objects = crate::omapi::objects::Objects::new(
        config.clone(),
        leases.clone(),
        dynamic_hosts.clone(),
        host_persister(omapi_shared, "OMAPI change"),
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
    );
    let _omapi = crate::omapi::start(&control_plane, &config, omapi_objects)?;

    // The JSON control API (Kea's commands): only with `option xdhcpd.control-api-listen`.
    if let Some(listener) = crate::control_api::Listener::of(&config)
        .map_err(|error| DaemonError::Config(format!("control API: {error}")))?
    {
        let backend = control_api::backend(
            &shared,
            &config,
            &leases,
            &dynamic_hosts,
            &config_path,
            &chosen,
        );
        crate::control_api::start(
            &control_plane,
            listener,
            Arc::new(backend),
            metrics.control_api.clone(),
        )?;
    }

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
        // The first worker of a socket leads; with receive coalescing the others rest while
        // traffic is light (`crew`).
        let crew = Arc::new(crew::Crew::default());
        for thread in 0..threads {
            let role = if thread == 0 || shared.receive_coalesce.is_zero() {
                crew::Role::Lead(crew.clone())
            } else {
                crew::Role::Helper(crew.clone(), crew::HelperPace::default())
            };
            sockets.push((socket.clone(), interface.clone(), role));
        }
    }

    let mut workers = Vec::new();
    for (index, (socket, interface, role)) in sockets.into_iter().enumerate() {
        let shared = shared.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("dhcp-{}-{index}", interface.name))
                .spawn({
                    let signals = signals.clone();
                    move || worker::worker(&shared, &socket, &interface, role, &signals)
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
            let running = shared.engine.load();
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
            let reloaded = shared.engine.load();
            if !Arc::ptr_eq(&running, &reloaded) {
                shared.reverse_names.start(reloaded.config())?;
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
    shared.reverse_names.stop();
    // First, so that the kernel stops answering renewals that nobody would record any more.
    if let Some(fast_path) = &shared.fast_path {
        fast_path.detach();
    }
    // docs/spec/failover.md §6.2: NORMAL relationships say SHUTDOWN to their partners before we go.
    for record in crate::shutdown::failover_shutdown(&shared.failover, unix_now) {
        let mut buffer = Vec::new();
        crate::lease::file::write_failover_state(&record, shared.file_format.times, &mut buffer);
        if let Ok(mut latest) = latest_failover_states.lock() {
            latest.retain(|known| known.peer != record.peer);
            latest.push(record);
        }
        let _ = shared
            .committer
            .submit(buffer, crate::changes::Durable::nothing());
    }
    // Workers finish their batch (its replies go out, its leases reach the committer).
    for worker in workers {
        let _ = worker.join();
    }
    // OFFERs still waiting for their ping are dropped: their clients retransmit.
    for thread in ping_threads {
        let _ = thread.join();
    }
    if let Some(ddns) = &shared.ddns {
        ddns.stop();
    }
    // OMAPI connections, failover links and the metrics endpoint close; a task busy with the
    // disk gets a moment to finish (the state records above are already queued).
    control_plane.shutdown(CONTROL_PLANE_GRACE);
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

/// Whether the config pings before offering anywhere: `ping-check` is on unless the global
/// scope turns it off and no other scope turns it back on (dhcpd.conf(5): default true).
fn ping_check_wanted(config: &Config) -> bool {
    let global_off = config
        .scopes
        .first()
        .is_some_and(|global| global.ping_check == Some(false));
    !global_off
        || config
            .scopes
            .iter()
            .any(|scope| scope.ping_check == Some(true))
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
        let (changed, executed) = match shared.leases.lock(index) {
            Ok(mut store) => {
                // Copied under the shard's lock, so it matches the leases a driver just changed.
                let failover = shared.failover.view();
                let engine = shared.engine.load();
                let mut changed = engine.expire(now, &failover, &mut store);
                let executed = engine.run_expiry_statements(&mut store, &mut changed);
                (changed, executed)
            }
            Err(_) => return,
        };
        crate::logging::statement_lines(&executed.log_lines);
        shared.commands.start(&executed.commands);
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

/// How OMAPI's and the control API's host layer persists a host record: to the group commit,
/// like any lease record (`what` names the caller in the error line).
fn host_persister(shared: Arc<Shared>, what: &'static str) -> Box<dyn Fn(Vec<u8>) + Send + Sync> {
    Box::new(move |record| {
        if shared
            .committer
            .submit(record, crate::changes::Durable::nothing())
            .is_err()
        {
            tracing::error!("{what} not persisted: the lease committer stopped");
        }
    })
}

/// Where the committer writes the leases.
enum LeaseBacking {
    /// dhcpd.leases; a torn last record is rewritten away before anything is appended.
    File { rewrite_at_start: bool },
    /// PostgreSQL (`option xdhcpd.lease-database`).
    Database(Box<crate::lease::pg::PgLeaseLog>),
}

/// What a rewrite of the lease file is made of.
struct Snapshot<'a> {
    leases: &'a Arc<ShardedStore>,
    /// Records of the file that are not leases (hosts, groups, failover states, server DUID).
    other_records: Arc<LeaseFile>,
    dynamic_hosts: &'a Arc<crate::host_table::DynamicHosts>,
    failover_states: &'a Arc<Mutex<Vec<crate::lease::file::FailoverStateRecord>>>,
}

/// The group committer: writes and fsyncs batches of lease records, then sends the replies that
/// waited for them. The file is rewritten compactly at start-up, as ISC does, but in the
/// background (`lease::commit`): the file just read is appended to meanwhile, so that a server
/// with a million leases answers within a second of starting instead of after a rewrite of
/// hundreds of megabytes. Only a file with a torn last record is rewritten before anything
/// else (`rewrite_at_start`).
fn spawn_committer(
    path: &Path,
    Snapshot {
        leases,
        other_records,
        dynamic_hosts,
        failover_states,
    }: Snapshot<'_>,
    metrics: &Arc<Metrics>,
    file_format: FileFormat,
    failover: &Arc<crate::failover::hooks::FailoverHooks>,
    history: Option<crate::history::writer::HistorySink>,
    (backing, commit_interval): (LeaseBacking, std::time::Duration),
) -> Result<GroupCommit<crate::changes::Durable<PendingReply>>, DaemonError> {
    let commit_config = GroupCommitConfig {
        commit_interval,
        ..GroupCommitConfig::default()
    };
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
        crate::lease::file::write_file(&other_records, file_format, buffer);
        for record in &snapshot_hosts.current().records {
            crate::lease::file::write_host(record, buffer);
        }
        for state in &states {
            crate::lease::file::write_failover_state(state, file_format.times, buffer);
        }
        for lease in &leases {
            crate::lease::file::write_lease_with(lease, file_format, buffer);
        }
        true
    };
    // The file backend appends to the file it read and rewrites it in the background (a
    // torn one is rewritten first); the database backend has its rows already (`run` wrote
    // the start-up expiry's changes).
    let existing = matches!(
        backing,
        LeaseBacking::File {
            rewrite_at_start: false
        }
    ) && path.exists();
    enum Backend {
        File(LeaseLog),
        Database(Box<crate::lease::pg::PgLeaseLog>),
    }
    let backend = match backing {
        LeaseBacking::Database(log) => Backend::Database(log),
        LeaseBacking::File { .. } => {
            let log = if existing {
                LeaseLog::open_existing(path)
            } else {
                let mut initial = Vec::new();
                if !snapshot(&mut initial) {
                    return Err(DaemonError::Leases {
                        path: path.to_path_buf(),
                        message: "the lease store is unusable".into(),
                    });
                }
                LeaseLog::open(path, &initial)
            };
            Backend::File(log.map_err(|error| DaemonError::Leases {
                path: path.to_path_buf(),
                message: error.to_string(),
            })?)
        }
    };
    let dropped_metrics = metrics.clone();
    // README: `drops_total{reason="commit_failed"}` counts the replies that did not go out
    // because their lease could not be made durable.
    let on_dropped = move |tokens: Vec<crate::changes::Durable<PendingReply>>| {
        let replies: Vec<Option<PendingReply>> =
            tokens.into_iter().map(|token| token.reply).collect();
        dropped_metrics.count_commit_failures(&replies);
    };
    let metrics = metrics.clone();
    let failover = failover.clone();
    let mut outgoing = SendBatch::default();
    let on_durable = move |tokens: Vec<crate::changes::Durable<PendingReply>>| {
        metrics.leases_committed.add(tokens.len() as u64);
        let mut replies = Vec::with_capacity(tokens.len());
        let mut events = Vec::new();
        for token in tokens {
            // The records are on disk: their BNDUPDs may go (`changes::Durable`).
            failover.addresses_changed(token.partner);
            replies.extend(token.reply);
            events.extend(token.history);
        }
        // One sendmmsg per socket for the whole batch (almost always a single socket).
        while let Some(first) = replies.first() {
            let socket = first.socket.clone();
            let (same, rest): (Vec<_>, Vec<_>) = replies
                .into_iter()
                .partition(|reply| Arc::ptr_eq(&reply.socket, &socket));
            replies = rest;
            for reply in same {
                outgoing.push(reply.payload, reply.target);
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
        // After the replies: the history never delays an ACK (`history::writer`).
        if let Some(history) = &history {
            if !events.is_empty() {
                history.submit(events);
            }
        }
    };
    let committer = match backend {
        Backend::File(log) => {
            GroupCommit::spawn(log, commit_config, on_durable, on_dropped, snapshot)?
        }
        Backend::Database(log) => {
            GroupCommit::spawn(*log, commit_config, on_durable, on_dropped, snapshot)?
        }
    };
    if existing {
        // ISC's start-up rewrite (`new_lease_file` from `db_startup`), off the serving path.
        let _ = committer.request_compaction();
    }
    Ok(committer)
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
