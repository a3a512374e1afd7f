//! The PostgreSQL lease backend, first step (DESIGN.md "Leases in PostgreSQL"): one server's
//! leases in a database instead of dhcpd.leases. It is a [`LogFile`] for the group committer,
//! so nothing else changes: the workers format records as for the file, the committer hands
//! one batch to [`PgLeaseLog::append`], which reads the batch's records back
//! (`lease::file::parse`) and upserts them in **one transaction**; only once it committed does
//! `on_durable` send the batch's replies (a reply that promises a lease leaves only after its
//! transaction committed). At start-up [`PgLeaseLog::load_into`] fills the store from the
//! table.
//!
//! The committer thread blocks on the database as it blocks on fsync: the log owns a
//! current-thread tokio runtime and drives the connection in `block_on`, so the log keeps
//! working after the control plane stopped (the final flush at shutdown). A lost connection is
//! reopened at the next batch; a batch that fails is not durable (its replies are dropped and
//! counted, `drops_total{reason="commit_failed"}`), exactly as a failed fsync.
//!
//! Several servers may serve from one database (DESIGN.md "Leases in PostgreSQL"): each
//! change claims its address in the upsert ([`UPSERT`]); a batch with a lost ACTIVE claim is
//! not durable (its replies are dropped, the clients retransmit) and the lost rows replace the
//! store's copies; [`spawn_poller`] brings the other servers' changes into the store. The
//! periodic rewrite is a no-op: the database compacts itself.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_postgres::Client;

use super::commit::LogFile;
use super::file::{FileFormat, LeaseFile};
use super::log::LeaseLogError;
use super::record::{Lease, NEVER};
use super::shards::ShardedStore;

/// Why a batch failed when one of its ACTIVE leases lost its claim.
pub const CLAIM_LOST: &str = "an address of the batch is held by another server's client";

/// The upsert of a batch's leases. A row is replaced only when the change may claim it: the
/// address is not ACTIVE, its lease ended, or it is the same client's (a renewal, release or
/// expiry of that client's lease, whichever server granted it). Not "the row is this server's
/// own": a stale copy in this server's store (another server's row applied late by the
/// poller) must not overwrite a newer binding. `RETURNING` names the rows
/// written; an address missing from it lost its claim (DESIGN.md "Leases in PostgreSQL").
const UPSERT: &str = "INSERT INTO leases (address, state, htype, hardware, client_id, \
       starts, ends, server, record, updated_at) \
     SELECT a, s, h, hw, c, st, en, $9, r, now() FROM unnest(\
       $1::inet[], $2::text[], $3::int2[], $4::bytea[], $5::bytea[], \
       $6::timestamptz[], $7::timestamptz[], $8::text[]) \
       AS t(a, s, h, hw, c, st, en, r) \
     ON CONFLICT (address) DO UPDATE SET state = EXCLUDED.state, \
       htype = EXCLUDED.htype, hardware = EXCLUDED.hardware, \
       client_id = EXCLUDED.client_id, starts = EXCLUDED.starts, \
       ends = EXCLUDED.ends, server = EXCLUDED.server, \
       record = EXCLUDED.record, updated_at = now() \
     WHERE leases.state <> 'active' \
        OR coalesce(leases.ends, 'infinity') < now() \
        OR coalesce(leases.client_id, leases.hardware) \
           IS NOT DISTINCT FROM coalesce(EXCLUDED.client_id, EXCLUDED.hardware) \
     RETURNING address";

/// The group committer's log in PostgreSQL.
pub struct PgLeaseLog {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    database: String,
    server: String,
    /// For the log lines (`LogFile::path`).
    label: PathBuf,
    store: Option<Arc<ShardedStore>>,
    /// `xdhcpd_lease_claims_lost_total`: ACTIVE leases whose address another server's client
    /// held (each failed its batch).
    claims_lost: prometheus_client::metrics::counter::Counter,
    /// `xdhcpd_lease_database_up`: 1 while the last commit attempt reached the database, 0
    /// once one failed for want of it (no lease is ACKed then); logged at each change.
    database_up: prometheus_client::metrics::gauge::Gauge,
    /// Where the leases a refresh put in the store go next (the daemon: `changes::apply` as
    /// `ChangeSource::Database`); set once the daemon's shared state exists.
    changed: Arc<std::sync::OnceLock<LeasesChanged>>,
}

fn failed(action: &'static str, label: &Path, error: impl std::fmt::Display) -> LeaseLogError {
    LeaseLogError::Io {
        action,
        path: label.to_path_buf(),
        source: std::io::Error::other(error.to_string()),
    }
}

/// The rows of one batch, as `unnest` arrays.
#[derive(Default)]
struct LeaseRows {
    address: Vec<IpAddr>,
    state: Vec<&'static str>,
    htype: Vec<Option<i16>>,
    hardware: Vec<Option<Vec<u8>>>,
    client_id: Vec<Option<Vec<u8>>>,
    starts: Vec<Option<SystemTime>>,
    ends: Vec<Option<SystemTime>>,
    record: Vec<String>,
}

impl LeaseRows {
    fn of(leases: &[Lease]) -> Self {
        let time = |seconds: u32| UNIX_EPOCH + Duration::from_secs(u64::from(seconds));
        let mut rows = Self::default();
        for lease in leases {
            let mut record = Vec::with_capacity(256);
            super::file::write_lease_with(lease, FileFormat::default(), &mut record);
            rows.address.push(IpAddr::V4(lease.address));
            rows.state.push(lease.binding_state.as_str());
            rows.htype
                .push(lease.hardware.map(|hardware| i16::from(hardware.htype)));
            rows.hardware
                .push(lease.hardware.map(|hardware| hardware.address().to_vec()));
            rows.client_id.push(lease.uid().map(<[u8]>::to_vec));
            rows.starts
                .push((lease.starts != 0).then(|| time(lease.starts)));
            rows.ends
                .push((lease.ends != 0 && lease.ends != NEVER).then(|| time(lease.ends)));
            rows.record
                .push(String::from_utf8_lossy(&record).into_owned());
        }
        rows
    }
}

/// The non-lease records of `file`, by key.
fn other_records(file: &LeaseFile) -> Vec<(String, String)> {
    let mut records = Vec::new();
    for state in &file.failover_states {
        let mut text = Vec::new();
        super::file::write_failover_state(state, FileFormat::default().times, &mut text);
        records.push((
            format!("failover peer {}", state.peer),
            String::from_utf8_lossy(&text).into_owned(),
        ));
    }
    for host in &file.hosts {
        let mut text = Vec::new();
        super::file::write_host(host, &mut text);
        records.push((
            format!("host {}", host.name),
            String::from_utf8_lossy(&text).into_owned(),
        ));
    }
    for group in &file.groups {
        let mut text = Vec::new();
        super::file::write_group(group, &mut text);
        records.push((
            format!("group {}", group.name),
            String::from_utf8_lossy(&text).into_owned(),
        ));
    }
    if let Some(duid) = &file.server_duid {
        let mut text = Vec::new();
        super::file::write_server_duid(duid, &mut text);
        records.push((
            "server-duid".into(),
            String::from_utf8_lossy(&text).into_owned(),
        ));
    }
    records
}

impl PgLeaseLog {
    /// Connects and applies the migrations.
    pub fn open(database: &str, server: String) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| error.to_string())?;
        let mut log = Self {
            runtime,
            client: None,
            database: database.to_owned(),
            server,
            label: PathBuf::from("postgresql lease database"),
            store: None,
            claims_lost: prometheus_client::metrics::counter::Counter::default(),
            database_up: prometheus_client::metrics::gauge::Gauge::default(),
            changed: Arc::default(),
        };
        log.connect()?;
        log.database_up.set(1);
        Ok(log)
    }

    /// Where the leases of a lost claim's refresh go once they are in the store (set later by
    /// the daemon, which builds its `changes::apply` after the committer).
    pub fn changed_hook(&self) -> Arc<std::sync::OnceLock<LeasesChanged>> {
        self.changed.clone()
    }

    /// The lost-claims counter, for the metrics registry.
    pub fn claims_lost(&self) -> prometheus_client::metrics::counter::Counter {
        self.claims_lost.clone()
    }

    /// The database-up gauge, for the metrics registry.
    pub fn database_up(&self) -> prometheus_client::metrics::gauge::Gauge {
        self.database_up.clone()
    }

    /// The store that learns the rows other servers won (a lost claim refreshes it).
    pub fn attach_store(&mut self, store: Arc<ShardedStore>) {
        self.store = Some(store);
    }

    /// Opens the connection when there is none (or it broke).
    fn connect(&mut self) -> Result<(), String> {
        if self
            .client
            .as_ref()
            .is_some_and(|client| !client.is_closed())
        {
            return Ok(());
        }
        self.client = None;
        let database = self.database.clone();
        let client = self.runtime.block_on(async {
            let mut client = crate::history::writer::connect(&database).await?;
            crate::history::schema::migrate(&mut client)
                .await
                .map_err(|error| format!("migrations: {error}"))?;
            Ok::<_, String>(client)
        })?;
        self.client = Some(client);
        Ok(())
    }

    /// Fills `store` from the database; returns the non-lease records (for the daemon's
    /// rewrites, as `load_leases` does for the file).
    pub fn load_into(&mut self, store: &ShardedStore) -> Result<LeaseFile, String> {
        self.connect()?;
        let client = self.client.as_ref().ok_or("not connected")?;
        let text = self.runtime.block_on(async {
            let mut text = String::new();
            for query in [
                "SELECT record FROM lease_file_records ORDER BY key",
                "SELECT record FROM leases ORDER BY address",
            ] {
                for row in client
                    .query(query, &[])
                    .await
                    .map_err(|error| error.to_string())?
                {
                    text.push_str(row.get::<_, &str>(0));
                }
            }
            Ok::<_, String>(text)
        })?;
        Ok(store.load_bytes(text.as_bytes()))
    }

    /// Writes `records` (dhcpd.leases text) in one transaction.
    fn write(&mut self, records: &[u8]) -> Result<(), String> {
        let file = super::file::parse(records, "batch");
        if !file.errors.is_empty() {
            // The committer only sees records the daemon formatted: a parse error is a bug,
            // and the batch must not count as durable.
            return Err(format!("unreadable batch: {:?}", file.errors[0]));
        }
        let rows = LeaseRows::of(&file.leases);
        let others = other_records(&file);
        let server = self.server.clone();
        self.connect()?;
        let client = self.client.as_ref().ok_or("not connected")?;
        let outcome = self.runtime.block_on(async {
            // `Client::transaction` needs `&mut`; the statements are sent in order on the one
            // connection, so BEGIN … COMMIT by hand is the same transaction.
            client
                .batch_execute("BEGIN")
                .await
                .map_err(|error| error.to_string())?;
            type Lost = Vec<(IpAddr, bool)>;
            let result: Result<Result<Lost, Lost>, tokio_postgres::Error> = async {
                let mut lost = Vec::new();
                if !rows.address.is_empty() {
                    let won: std::collections::HashSet<IpAddr> = client
                        .query(
                            UPSERT,
                            &[
                                &rows.address,
                                &rows.state,
                                &rows.htype,
                                &rows.hardware,
                                &rows.client_id,
                                &rows.starts,
                                &rows.ends,
                                &rows.record,
                                &server,
                            ],
                        )
                        .await?
                        .iter()
                        .map(|row| row.get(0))
                        .collect();
                    lost = rows
                        .address
                        .iter()
                        .zip(&rows.state)
                        .filter(|(address, _)| !won.contains(address))
                        .map(|(address, state)| (*address, *state == "active"))
                        .collect();
                }
                if lost.iter().any(|(_, active)| *active) {
                    // An ACTIVE lease of the batch is another server's client's: nothing of the
                    // batch is durable, so none of its replies leave.
                    client.batch_execute("ROLLBACK").await?;
                    return Ok(Err(lost));
                }
                for (key, record) in &others {
                    client
                        .execute(
                            "INSERT INTO lease_file_records (key, record) VALUES ($1, $2) \
                             ON CONFLICT (key) DO UPDATE SET record = EXCLUDED.record, \
                               updated_at = now()",
                            &[key, record],
                        )
                        .await?;
                }
                client.batch_execute("COMMIT").await?;
                Ok(Ok(lost))
            }
            .await;
            match result {
                Ok(outcome) => Ok(outcome),
                Err(error) => {
                    let _ = client.batch_execute("ROLLBACK").await;
                    Err(error.to_string())
                }
            }
        })?;
        // The rows other servers hold replace this server's copies, so the engine stops
        // offering (or renewing) those addresses; the client's retransmission is then NAKed or
        // offered another address.
        let (lost, result) = match outcome {
            Ok(lost) => (lost, Ok(())),
            Err(lost) => {
                let active = lost.iter().filter(|(_, active)| *active).count();
                self.claims_lost.inc_by(active as u64);
                (lost, Err(CLAIM_LOST.to_owned()))
            }
        };
        if !lost.is_empty() {
            let addresses: Vec<IpAddr> = lost.iter().map(|(address, _)| *address).collect();
            if let Err(error) = self.refresh(&addresses) {
                tracing::warn!("lease database: refresh after a lost claim failed: {error}");
            }
        }
        result
    }

    /// Reads the rows of `addresses` into the store, and every row another server changed in
    /// the last seconds: a lost claim says this server's store is behind, and the next
    /// offers would lose again until the poller's next look.
    fn refresh(&self, addresses: &[IpAddr]) -> Result<(), String> {
        let (Some(store), Some(client)) = (&self.store, &self.client) else {
            return Ok(());
        };
        let text = self.runtime.block_on(async {
            let mut text = String::new();
            for row in client
                .query(
                    "SELECT record FROM leases WHERE address = ANY($1::inet[]) \
                     OR (server <> $2 AND updated_at > now() - interval '5 seconds')",
                    &[&addresses, &self.server],
                )
                .await
                .map_err(|error| error.to_string())?
            {
                text.push_str(row.get::<_, &str>(0));
            }
            Ok::<_, String>(text)
        })?;
        let leases = super::file::parse(text.as_bytes(), "lease database").leases;
        store.upsert_each(leases.clone());
        if let Some(changed) = self.changed.get() {
            changed(&leases);
        }
        Ok(())
    }
}

/// Where this server starts walking its pools' never-used addresses
/// (`LeaseStore::spread_never_used`): a hash of its name (FNV-1a), so that servers of one
/// database start at different places without being told about each other.
pub fn spread_seed(server: &str) -> u64 {
    server.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Where the poller hands the leases it put in the store.
pub type LeasesChanged = Arc<dyn Fn(&[Lease]) + Send + Sync>;

/// How often the poller reads the other servers' changes.
pub const POLL: Duration = Duration::from_secs(1);
/// How far back each poll looks past the newest change it saw: transactions commit out of the
/// order of their `now()`, so a row may appear with a time before one already seen.
const POLL_OVERLAP: Duration = Duration::from_secs(2);

/// The other servers' changes into this server's store, every [`POLL`]: rows written by
/// another server since the last look (the `leases_updated_at` index). A control-plane task
/// with a connection of its own. Leases applied late are harmless: a claim made from a stale
/// copy loses and refreshes it (`PgLeaseLog::write`).
/// `changed` gets the leases once they are in the store (the daemon applies them as
/// `ChangeSource::Database` changes: the kernel's entries they no longer back go).
pub fn spawn_poller(
    handle: &tokio::runtime::Handle,
    token: tokio_util::sync::CancellationToken,
    database: String,
    server: String,
    store: Arc<ShardedStore>,
    changed: LeasesChanged,
) {
    handle.spawn(async move {
        let mut client: Option<Client> = None;
        let mut since = UNIX_EPOCH;
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(POLL) => {}
            }
            if client.as_ref().is_none_or(Client::is_closed) {
                client = crate::history::writer::connect(&database).await.ok();
            }
            let Some(connection) = &client else {
                continue;
            };
            let from = since.checked_sub(POLL_OVERLAP).unwrap_or(UNIX_EPOCH);
            let rows = match connection
                .query(
                    "SELECT record, updated_at FROM leases \
                     WHERE server <> $1 AND updated_at > $2 ORDER BY updated_at",
                    &[&server, &from],
                )
                .await
            {
                Ok(rows) => rows,
                Err(error) => {
                    tracing::debug!("lease database poll: {error}");
                    client = None;
                    continue;
                }
            };
            let mut text = String::new();
            for row in &rows {
                text.push_str(row.get::<_, &str>(0));
                since = since.max(row.get::<_, SystemTime>(1));
            }
            if !text.is_empty() {
                let leases = super::file::parse(text.as_bytes(), "lease database").leases;
                let store = store.clone();
                let changed = changed.clone();
                crate::control_plane::blocking(move || {
                    store.upsert_each(leases.clone());
                    changed(&leases);
                });
            }
        }
    });
}

impl LogFile for PgLeaseLog {
    fn append(&mut self, records: &[u8]) -> Result<(), LeaseLogError> {
        let result = self.write(records);
        let reached =
            result.as_ref().is_ok() || result.as_ref().is_err_and(|error| error == CLAIM_LOST);
        if !reached {
            // The next batch opens a new connection (the old one may be mid-transaction).
            self.client = None;
        }
        // Logged once per change, not per batch: under load a lost database fails every batch.
        match (self.database_up.get() == 1, reached) {
            (true, false) => tracing::error!(
                "lease database unreachable: no lease is ACKed until it returns ({})",
                result.as_ref().err().map_or("", String::as_str)
            ),
            (false, true) => tracing::warn!("lease database reachable again: ACKs resume"),
            _ => {}
        }
        self.database_up.set(i64::from(reached));
        result.map_err(|error| failed("commit to", &self.label, error))
    }

    /// The database compacts itself; the committer's hourly rewrite has nothing to do.
    fn rewrite(&mut self, _snapshot: &[u8]) -> Result<(), LeaseLogError> {
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

    fn path(&self) -> &Path {
        &self.label
    }

    /// Nothing to compact: no snapshot is taken.
    fn compacts(&self) -> bool {
        false
    }

    type Staged = ();
    fn stager(&self) -> crate::lease::commit::Stager<()> {
        Box::new(|_| Ok(()))
    }
    fn install(&mut self, (): (), _tail: &[u8]) -> Result<(), LeaseLogError> {
        Ok(())
    }
}

impl PgLeaseLog {
    /// Writes the start-up changes (the leases that ended while the server was down), as the
    /// file backend rewrites its file at start.
    pub fn write_snapshot(&mut self, snapshot: &[u8]) -> Result<(), LeaseLogError> {
        self.append(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_seeds_differ_by_name_and_stay_put() {
        // FNV-1a: fixed across builds, so a restarted server walks where it walked before.
        assert_eq!(spread_seed(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(spread_seed("a") % 50, 46);
        assert_eq!(spread_seed("b102") % 50, 46);
        assert_ne!(spread_seed("dhcp1"), spread_seed("dhcp2"));
    }
}
