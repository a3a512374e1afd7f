//! The daemon's PostgreSQL wiring (README "Lease history in PostgreSQL", "Leases in
//! PostgreSQL"): where the leases are loaded from, the start-up expiry written to the lease
//! database, the lease history's writer, and the hooks that let several servers share one
//! database (the store a lost claim refreshes, the poller of the other servers' rows).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{load_leases, DaemonError, Shared};
use crate::cli::Cli;
use crate::config::model::Config;
use crate::lease::file::{FileFormat, LeaseFile};
use crate::lease::pg::{LeasesChanged, PgLeaseLog};
use crate::lease::shards::ShardedStore;

fn database_error(message: String) -> DaemonError {
    DaemonError::Leases {
        path: PathBuf::from("lease database"),
        message,
    }
}

/// `--lease-database`, else the config's `xdhcpd.lease-database`.
pub(super) fn lease_database(cli: &Cli, config: &Config) -> Option<String> {
    cli.lease_database
        .clone()
        .or_else(|| config.lease_database.clone())
}

/// Loads the store from the lease database (connecting, migrating) or from the lease file;
/// the records that are not leases, and the database's log for the committer.
pub(super) fn load(
    cli: &Cli,
    database: Option<&str>,
    store: &ShardedStore,
    leases_path: &Path,
) -> Result<(LeaseFile, Option<PgLeaseLog>), DaemonError> {
    match database {
        Some(database) => {
            let mut log = PgLeaseLog::open(database, cli.server_name()).map_err(database_error)?;
            let file = log.load_into(store).map_err(database_error)?;
            Ok((file, Some(log)))
        }
        None => Ok((load_leases(store, leases_path)?, None)),
    }
}

/// With the lease database, only what changed at start-up is written (the file backend
/// rewrites its whole file): another server's rows are not rewritten as this one's.
pub(super) fn write_expired(
    log: &mut PgLeaseLog,
    expired: &[crate::lease::record::Lease],
    config: &Config,
) -> Result<(), DaemonError> {
    let mut records = Vec::new();
    for lease in expired {
        crate::lease::file::write_lease_with(lease, FileFormat::of(config), &mut records);
    }
    log.write_snapshot(&records)
        .map_err(|error| database_error(error.to_string()))
}

/// What the daemon keeps of the lease database's log once the committer owns it.
pub(super) struct DatabaseHooks {
    /// `xdhcpd_lease_claims_lost_total`.
    pub claims_lost: prometheus_client::metrics::counter::Counter,
    /// `xdhcpd_lease_database_up`.
    pub database_up: prometheus_client::metrics::gauge::Gauge,
    /// Where a lost claim's refresh goes (set by [`start_poller`]).
    refreshed: Arc<std::sync::OnceLock<LeasesChanged>>,
}

/// Several servers on one lease database: a lost claim refreshes `leases`, and this server
/// starts its pools' never-used addresses at a place of its own.
pub(super) fn share_store(
    log: &mut PgLeaseLog,
    leases: &Arc<ShardedStore>,
    cli: &Cli,
) -> DatabaseHooks {
    log.attach_store(leases.clone());
    let _ = leases.spread_never_used(crate::lease::pg::spread_seed(&cli.server_name()));
    DatabaseHooks {
        claims_lost: log.claims_lost(),
        database_up: log.database_up(),
        refreshed: log.changed_hook(),
    }
}

/// The other servers' changes reach the store every second, and they and a lost claim's
/// refresh go the one path (`changes::apply`, `ChangeSource::Database`).
pub(super) fn start_poller(
    shared: &Arc<Shared>,
    control_plane: &crate::control_plane::ControlPlane,
    database: &str,
    hooks: &DatabaseHooks,
    cli: &Cli,
) {
    let applier = Arc::downgrade(shared);
    let apply: LeasesChanged = Arc::new(move |changed: &[crate::lease::record::Lease]| {
        if let Some(shared) = applier.upgrade() {
            shared.apply(
                crate::changes::LeaseChange::new(crate::changes::ChangeSource::Database, changed),
                None,
            );
        }
    });
    // The committer thread calls the refresh's; `Database` changes are not recorded, so it
    // never waits on itself.
    let _ = hooks.refreshed.set(apply.clone());
    crate::lease::pg::spawn_poller(
        control_plane.handle(),
        control_plane.token(),
        database.to_owned(),
        cli.server_name(),
        shared.leases.clone(),
        apply,
    );
}

/// Starts the lease history's writer when a history database is configured: its classifier
/// knows the holders of the store's ACTIVE leases, and the leases that expired while the
/// server was down are its first events.
pub(super) fn start_history(
    cli: &Cli,
    config: &Config,
    control_plane: &crate::control_plane::ControlPlane,
    leases: &ShardedStore,
    leases_path: &Path,
    expired: &[crate::lease::record::Lease],
) -> Result<Option<crate::history::writer::HistorySink>, DaemonError> {
    let Some(settings) = cli.history_settings(config) else {
        return Ok(None);
    };
    let mut classifier = crate::history::classify::Classifier::default();
    leases
        .for_each(|_, shard| classifier.seed_active(shard.iter()))
        .map_err(|error| DaemonError::Leases {
            path: leases_path.to_path_buf(),
            message: error.to_string(),
        })?;
    for lease in expired {
        classifier.seed(lease);
    }
    let spool =
        crate::history::spool::Spool::new(crate::history::spool::Spool::beside(leases_path));
    tracing::info!(
        "lease history to PostgreSQL ({} days kept; {} holders known; spool {})",
        settings.retention_days,
        classifier.holders(),
        spool.path().display()
    );
    let sink = crate::history::writer::spawn(
        control_plane.handle(),
        control_plane.token(),
        settings,
        cli.server_name(),
        spool,
        classifier,
    );
    let at = crate::history::writer::now_micros();
    sink.submit(
        expired
            .iter()
            .map(|lease| {
                crate::history::Observed::of(lease, crate::changes::ChangeSource::Expiry, None, at)
            })
            .collect(),
    );
    Ok(Some(sink))
}
