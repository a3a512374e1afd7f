//! The history writer: one control-plane task that takes the observations of durable lease
//! changes from a bounded queue, classifies them ([`super::classify`]) and appends them to
//! `lease_history` in batches (one multi-row `INSERT … SELECT FROM unnest(…)` per batch of up
//! to [`BATCH`] rows), so the packet path never waits for the database: the committer's
//! `on_durable` hands the events over with `try_send` after the replies left.
//!
//! While the database is unreachable (or refuses a batch) rows go to the local spool
//! ([`super::spool`]) and the writer tries to reconnect every [`RETRY`]; once connected it
//! replays the spool, oldest first, before new rows. Nothing is lost unless the queue is full
//! (65,536 events: the writer cannot even spool that fast) or the spool reached its bound;
//! both are counted (`xdhcpd_history_events_dropped_total`). After the task stopped (shutdown)
//! the last events go straight to the spool from the submitting thread.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::classify::Classifier;
use super::spool::Spool;
use super::{schema, HistorySettings, Observed, Row};

/// Events waiting for the writer.
pub const QUEUE: usize = 65_536;
/// Rows per INSERT.
pub const BATCH: usize = 2_000;
/// Between reconnection attempts.
pub const RETRY: Duration = Duration::from_secs(5);
/// Between maintenance runs (partitions ahead, retention).
const MAINTENANCE: Duration = Duration::from_secs(3_600);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one batch may take before the database counts as unreachable.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The writer's Prometheus counters (`xdhcpd_history_*`).
#[derive(Clone, Debug, Default)]
pub struct HistoryMetrics {
    /// Rows inserted into the database (replayed spool rows included).
    pub written: Counter,
    /// Rows appended to the spool.
    pub spooled: Counter,
    /// Events lost, by reason: `queue_full`, `spool_full` (or unwritable), `spool_damaged`.
    pub dropped: Family<Vec<(String, String)>, Counter>,
    /// Batches the database refused or did not answer in time.
    pub write_errors: Counter,
    /// 1 while the writer holds a working connection.
    pub database_up: Gauge,
    /// Bytes waiting in the spool.
    pub spool_bytes: Gauge,
}

impl HistoryMetrics {
    fn drop_count(&self, reason: &str, count: usize) {
        self.dropped
            .get_or_create(&vec![("reason".to_owned(), reason.to_owned())])
            .inc_by(count as u64);
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "history_events_written",
            "lease history rows inserted into PostgreSQL",
            self.written.clone(),
        );
        registry.register(
            "history_events_spooled",
            "lease history rows kept in the local spool while the database was unreachable",
            self.spooled.clone(),
        );
        registry.register(
            "history_events_dropped",
            "lease history events lost: the writer's queue or the spool was full",
            self.dropped.clone(),
        );
        registry.register(
            "history_write_errors",
            "lease history batches the database refused or did not answer in time",
            self.write_errors.clone(),
        );
        registry.register(
            "history_database_up",
            "1 while the lease history writer is connected to its database",
            self.database_up.clone(),
        );
        registry.register(
            "history_spool_bytes",
            "bytes of lease history waiting in the local spool",
            self.spool_bytes.clone(),
        );
    }
}

/// Where `changes::apply` sends history events (through the committer's `on_durable`).
#[derive(Clone)]
pub struct HistorySink {
    sender: mpsc::Sender<Observed>,
    metrics: HistoryMetrics,
    /// For the events that arrive after the writer stopped.
    fallback: Arc<Mutex<(Classifier, Spool)>>,
}

impl std::fmt::Debug for HistorySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistorySink").finish_non_exhaustive()
    }
}

/// Microseconds since the epoch, now (the history's event time).
#[expect(clippy::disallowed_methods, reason = "driver owns the clock")]
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_micros() as i64)
}

/// This server's name in the history's `server` column: the host name (gethostname(2)).
pub fn server_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is writable for its length; gethostname NUL-terminates within it when
    // the name fits, and the last byte stays 0 otherwise.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len() - 1) };
    if result != 0 {
        return "xdhcpd".into();
    }
    let end = buffer.iter().position(|byte| *byte == 0).unwrap_or(0);
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

impl HistorySink {
    /// Queues `events` without waiting; a full queue drops and counts.
    pub fn submit(&self, events: Vec<Observed>) {
        let mut late = Vec::new();
        for event in events {
            match self.sender.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.metrics.drop_count("queue_full", 1);
                }
                Err(mpsc::error::TrySendError::Closed(event)) => late.push(event),
            }
        }
        if !late.is_empty() {
            // The writer has stopped (shutdown): straight to the spool, replayed at next start.
            if let Ok(mut fallback) = self.fallback.lock() {
                let (classifier, spool) = &mut *fallback;
                let rows = classifier.rows(late);
                let appended = spool.append(&rows);
                self.metrics.spooled.inc_by(appended.written as u64);
                self.metrics.drop_count("spool_full", appended.dropped);
            }
        }
    }

    pub fn metrics(&self) -> &HistoryMetrics {
        &self.metrics
    }
}

/// The writer's connection and what it knows of the partitions.
struct Connection {
    client: Client,
    partitions: std::collections::HashSet<i64>,
}

/// Connects, applies the migrations and the maintenance.
pub async fn connect(database: &str) -> Result<Client, String> {
    let (client, connection) = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_postgres::connect(database, tokio_postgres::NoTls),
    )
    .await
    .map_err(|_| "connection timed out".to_owned())?
    .map_err(|error| error.to_string())?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!("history database connection ended: {error}");
        }
    });
    // `CREATE … IF NOT EXISTS` of a partition another server made is no news.
    client
        .batch_execute("SET client_min_messages TO warning")
        .await
        .map_err(|error| error.to_string())?;
    Ok(client)
}

async fn open(settings: &HistorySettings) -> Result<Connection, String> {
    let mut client = connect(&settings.database).await?;
    let applied = schema::migrate(&mut client)
        .await
        .map_err(|error| format!("migrations: {error}"))?;
    if !applied.is_empty() {
        tracing::info!("history database: applied schema migrations {applied:?}");
    }
    Ok(Connection {
        client,
        partitions: std::collections::HashSet::new(),
    })
}

/// Inserts `rows` in one statement, after making sure their days have partitions.
pub async fn insert(
    connection: &mut Client,
    known_partitions: &mut std::collections::HashSet<i64>,
    server: &str,
    rows: &[Row],
) -> Result<(), tokio_postgres::Error> {
    let mut days: Vec<i64> = rows
        .iter()
        .map(|row| schema::partition_start(schema::day_of_micros(row.at_micros)))
        .filter(|day| !known_partitions.contains(day))
        .collect();
    days.sort_unstable();
    days.dedup();
    if !days.is_empty() {
        schema::ensure_partitions(connection, days.iter().copied()).await?;
        known_partitions.extend(days);
    }
    let time = |seconds: u32| UNIX_EPOCH + Duration::from_secs(u64::from(seconds));
    let at: Vec<SystemTime> = rows
        .iter()
        .map(|row| UNIX_EPOCH + Duration::from_micros(row.at_micros.max(0) as u64))
        .collect();
    let event: Vec<&str> = rows.iter().map(|row| row.kind.as_str()).collect();
    let address: Vec<IpAddr> = rows.iter().map(|row| IpAddr::V4(row.address)).collect();
    let htype: Vec<Option<i16>> = rows.iter().map(|row| row.htype.map(i16::from)).collect();
    let bytes = |get: fn(&Row) -> &Option<Vec<u8>>| -> Vec<Option<&[u8]>> {
        rows.iter().map(|row| get(row).as_deref()).collect()
    };
    let hardware = bytes(|row| &row.hardware);
    let client_id = bytes(|row| &row.client_id);
    let circuit_id = bytes(|row| &row.circuit_id);
    let remote_id = bytes(|row| &row.remote_id);
    let relay: Vec<Option<IpAddr>> = rows.iter().map(|row| row.relay.map(IpAddr::V4)).collect();
    let starts: Vec<Option<SystemTime>> = rows.iter().map(|row| row.starts.map(time)).collect();
    let ends: Vec<Option<SystemTime>> = rows.iter().map(|row| row.ends.map(time)).collect();
    let source: Vec<&str> = rows.iter().map(|row| row.source.as_str()).collect();
    connection
        .execute(
            "INSERT INTO lease_history (at, event, address, htype, hardware, client_id, \
               circuit_id, remote_id, relay, starts, ends, server, source) \
             SELECT a, e, ad, h, hw, c, ci, r, rl, s, en, $12, so FROM unnest(\
               $1::timestamptz[], $2::text[], $3::inet[], $4::int2[], $5::bytea[], \
               $6::bytea[], $7::bytea[], $8::bytea[], $9::inet[], $10::timestamptz[], \
               $11::timestamptz[], $13::text[]) \
             AS t(a, e, ad, h, hw, c, ci, r, rl, s, en, so)",
            &[
                &at,
                &event,
                &address,
                &htype,
                &hardware,
                &client_id,
                &circuit_id,
                &remote_id,
                &relay,
                &starts,
                &ends,
                &server,
                &source,
            ],
        )
        .await?;
    Ok(())
}

/// The writer task's state.
struct Writer {
    settings: HistorySettings,
    server: String,
    metrics: HistoryMetrics,
    fallback: Arc<Mutex<(Classifier, Spool)>>,
    connection: Option<Connection>,
    next_attempt: tokio::time::Instant,
    next_maintenance: tokio::time::Instant,
    /// Logged once per outage.
    down_since: Option<tokio::time::Instant>,
}

impl Writer {
    fn spool(&self, rows: &[Row]) {
        if rows.is_empty() {
            return;
        }
        if let Ok(fallback) = self.fallback.lock() {
            let appended = fallback.1.append(rows);
            self.metrics.spooled.inc_by(appended.written as u64);
            self.metrics.drop_count("spool_full", appended.dropped);
            self.metrics.spool_bytes.set(fallback.1.size() as i64);
        }
    }

    fn lost_connection(&mut self, error: &str) {
        self.metrics.write_errors.inc();
        self.metrics.database_up.set(0);
        self.connection = None;
        self.next_attempt = tokio::time::Instant::now() + RETRY;
        if self.down_since.is_none() {
            self.down_since = Some(tokio::time::Instant::now());
            tracing::error!(
                "history database unreachable ({error}); spooling lease history to {}",
                self.fallback
                    .lock()
                    .map(|fallback| fallback.1.path().display().to_string())
                    .unwrap_or_default()
            );
        }
    }

    async fn reconnect(&mut self) {
        if self.connection.is_some() || tokio::time::Instant::now() < self.next_attempt {
            return;
        }
        match open(&self.settings).await {
            Ok(connection) => {
                self.connection = Some(connection);
                self.metrics.database_up.set(1);
                if self.down_since.take().is_some() {
                    tracing::info!("history database reachable again");
                }
                self.next_maintenance = tokio::time::Instant::now();
            }
            Err(error) => self.lost_connection(&error),
        }
    }

    /// Inserts `rows` in batches; false (and the connection dropped) on the first failure,
    /// with the rows from that batch on left in `rows`.
    async fn write(&mut self, rows: &mut Vec<Row>) -> bool {
        while !rows.is_empty() {
            let Some(connection) = self.connection.as_mut() else {
                return false;
            };
            let take = rows.len().min(BATCH);
            let result = tokio::time::timeout(
                WRITE_TIMEOUT,
                insert(
                    &mut connection.client,
                    &mut connection.partitions,
                    &self.server,
                    &rows[..take],
                ),
            )
            .await;
            match result {
                Ok(Ok(())) => {
                    self.metrics.written.inc_by(take as u64);
                    rows.drain(..take);
                }
                Ok(Err(error)) => {
                    self.lost_connection(&error.to_string());
                    return false;
                }
                Err(_) => {
                    self.lost_connection("write timed out");
                    return false;
                }
            }
        }
        true
    }

    /// Replays the spool once connected; false when the database failed meanwhile.
    async fn replay(&mut self) -> bool {
        let read = match self.fallback.lock() {
            Ok(fallback) if fallback.1.size() > 0 => fallback.1.read(),
            _ => return true,
        };
        let (mut rows, damaged) = match read {
            Ok(read) => read,
            Err(error) => {
                tracing::error!("history spool unreadable: {error}");
                return true;
            }
        };
        self.metrics.drop_count("spool_damaged", damaged);
        let total = rows.len();
        if self.write(&mut rows).await {
            if let Ok(fallback) = self.fallback.lock() {
                if let Err(error) = fallback.1.clear() {
                    tracing::error!("history spool not cleared: {error}");
                }
                self.metrics.spool_bytes.set(0);
            }
            tracing::info!("history: replayed {total} spooled event(s)");
            return true;
        }
        // What was written stays written; the spool keeps only the rest (the rows come back
        // in order, so rewriting it after the replayed ones keeps the order).
        if let Ok(fallback) = self.fallback.lock() {
            let _ = fallback.1.clear();
            let appended = fallback.1.append(&rows);
            self.metrics.drop_count("spool_full", appended.dropped);
            self.metrics.spool_bytes.set(fallback.1.size() as i64);
        }
        false
    }

    async fn maintain(&mut self) {
        if tokio::time::Instant::now() < self.next_maintenance {
            return;
        }
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        self.next_maintenance = tokio::time::Instant::now() + MAINTENANCE;
        let today = schema::day_of_micros(now_micros());
        match schema::maintain(&mut connection.client, today, self.settings.retention_days).await {
            Ok((ensured, dropped)) => {
                connection.partitions.extend(ensured);
                for name in dropped {
                    if let Some(day) = schema::partition_day(&name) {
                        connection.partitions.remove(&day);
                    }
                    tracing::info!("history: dropped partition {name} (past the retention)");
                }
            }
            Err(error) => self.lost_connection(&format!("maintenance: {error}")),
        }
    }

    /// One round: classify, reconnect if due, replay, write or spool.
    async fn round(&mut self, observed: Vec<Observed>) {
        let mut rows = match self.fallback.lock() {
            Ok(mut fallback) => fallback.0.rows(observed),
            Err(_) => return,
        };
        self.reconnect().await;
        if self.connection.is_some() && self.replay().await {
            self.maintain().await;
            self.write(&mut rows).await;
        }
        self.spool(&rows);
    }
}

/// Starts the writer on the control plane. `seed` are the leases whose holders the classifier
/// knows at start (the store's ACTIVE leases).
pub fn spawn(
    handle: &tokio::runtime::Handle,
    token: tokio_util::sync::CancellationToken,
    settings: HistorySettings,
    server: String,
    spool: Spool,
    classifier: Classifier,
) -> HistorySink {
    let (sender, mut receiver) = mpsc::channel::<Observed>(QUEUE);
    let metrics = HistoryMetrics::default();
    let fallback = Arc::new(Mutex::new((classifier, spool)));
    let mut writer = Writer {
        settings,
        server,
        metrics: metrics.clone(),
        fallback: fallback.clone(),
        connection: None,
        next_attempt: tokio::time::Instant::now(),
        next_maintenance: tokio::time::Instant::now(),
        down_since: None,
    };
    handle.spawn(async move {
        let mut buffer = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                received = receiver.recv_many(&mut buffer, BATCH) => {
                    if received == 0 {
                        break;
                    }
                }
                // Reconnects and replays even when no lease changes.
                _ = tokio::time::sleep(RETRY) => {}
            }
            let observed = std::mem::take(&mut buffer);
            writer.round(observed).await;
        }
        // Shutdown: what is queued is written (or spooled); later events go to the spool from
        // their thread (`HistorySink::submit`).
        receiver.close();
        let mut rest = Vec::new();
        while let Ok(event) = receiver.try_recv() {
            rest.push(event);
        }
        writer.round(rest).await;
    });
    HistorySink {
        sender,
        metrics,
        fallback,
    }
}
