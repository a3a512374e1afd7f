//! The database schema: the migrations shipped in `server/migrations/` (applied in order by
//! `xdhcpd --db-init` and at start, each once, recorded in `schema_version`), and the weekly
//! partitions of `lease_history` (created ahead, dropped past the retention).
//!
//! Several servers may start at once against one database: the migrations and the partition
//! maintenance each run in one transaction under a PostgreSQL advisory lock, so the second
//! server waits and then finds the work done.

use tokio_postgres::Client;

/// The migrations, in order: (version, file name, SQL).
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "0001_lease_history.sql",
        include_str!("../../migrations/0001_lease_history.sql"),
    ),
    (
        2,
        "0002_leases.sql",
        include_str!("../../migrations/0002_leases.sql"),
    ),
];

/// The advisory-lock key of schema changes (any constant the database's other users do not
/// take; "xdhcpd" in ASCII).
const SCHEMA_LOCK: i64 = 0x7864_6863_7064;

/// Days of partitions created ahead of today, so that a maintenance run that fails for a few
/// days does not stop the inserts.
pub const DAYS_AHEAD: i64 = 7;

/// Days per partition: a week, Monday to Sunday (UTC). Daily partitions made a query that
/// spans the retention plan over 180 of them (12 ms of planning for 1 ms of work); weekly ones
/// keep six months at 26, and the retention is still kept to within a week (a partition goes
/// once its whole week is past it).
pub const PARTITION_DAYS: i64 = 7;

/// The first day (Monday) of the partition that holds day `day` (day 0, 1970-01-01, was a
/// Thursday).
pub fn partition_start(day: i64) -> i64 {
    day - (day + 3).rem_euclid(PARTITION_DAYS)
}

const SECONDS_PER_DAY: i64 = 86_400;

/// The civil date (year, month, day) of day `days` since 1970-01-01 (the lease file's own
/// conversion).
pub use crate::lease::file::date::civil_from_days;

/// Day number (since 1970-01-01) of a time in microseconds since the epoch.
pub fn day_of_micros(micros: i64) -> i64 {
    micros.div_euclid(1_000_000).div_euclid(SECONDS_PER_DAY)
}

/// `lease_history_YYYYMMDD`, named by its first day.
pub fn partition_name(day: i64) -> String {
    let (year, month, day) = civil_from_days(day);
    format!("lease_history_{year:04}{month:02}{day:02}")
}

/// The day of a partition's name, if it is one of ours.
pub fn partition_day(name: &str) -> Option<i64> {
    let digits = name.strip_prefix("lease_history_")?;
    if digits.len() != 8 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let year: i64 = digits[..4].parse().ok()?;
    let month: u32 = digits[4..6].parse().ok()?;
    let day: u32 = digits[6..].parse().ok()?;
    let days = crate::lease::file::date::days_from_civil(year, month, day);
    (partition_name(days) == name).then_some(days)
}

/// The statement that creates the partition that starts on day `day` (a [`partition_start`]).
pub fn create_partition_sql(day: i64) -> String {
    let bound = |day: i64| {
        let (year, month, day) = civil_from_days(day);
        format!("'{year:04}-{month:02}-{day:02} 00:00:00+00'")
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {} PARTITION OF lease_history FOR VALUES FROM ({}) TO ({})",
        partition_name(day),
        bound(day),
        bound(day + PARTITION_DAYS)
    )
}

/// The partitions among `existing` whose whole week lies before the retention window that
/// ends today.
pub fn partitions_past_retention(
    existing: &[String],
    today: i64,
    retention_days: u32,
) -> Vec<String> {
    let first_kept = today - i64::from(retention_days);
    existing
        .iter()
        .filter(|name| partition_day(name).is_some_and(|day| day + PARTITION_DAYS <= first_kept))
        .cloned()
        .collect()
}

/// Applies the migrations the database has not seen; returns the versions applied.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (\
               version integer PRIMARY KEY, \
               name text NOT NULL, \
               applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    let current: i32 = transaction
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .await?
        .get(0);
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if *version <= current {
            continue;
        }
        transaction.batch_execute(sql).await?;
        transaction
            .execute(
                "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await?;
        applied.push(*version);
    }
    transaction.commit().await?;
    Ok(applied)
}

/// Creates the partitions that hold `days`, those that do not exist yet; returns their starts.
pub async fn ensure_partitions(
    client: &mut Client,
    days: impl IntoIterator<Item = i64>,
) -> Result<Vec<i64>, tokio_postgres::Error> {
    let mut starts: Vec<i64> = days.into_iter().map(partition_start).collect();
    starts.sort_unstable();
    starts.dedup();
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await?;
    for start in &starts {
        transaction
            .batch_execute(&create_partition_sql(*start))
            .await?;
    }
    transaction.commit().await?;
    Ok(starts)
}

/// The names of `lease_history`'s partitions.
pub async fn partitions(client: &Client) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'lease_history'::regclass",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// The maintenance run: partitions from today to [`DAYS_AHEAD`] days ahead, and the drop of
/// those past the retention. Returns the starts of the partitions made sure of and the names
/// of those dropped.
pub async fn maintain(
    client: &mut Client,
    today: i64,
    retention_days: u32,
) -> Result<(Vec<i64>, Vec<String>), tokio_postgres::Error> {
    let ensured = ensure_partitions(client, today..=today + DAYS_AHEAD).await?;
    let existing = partitions(client).await?;
    let expired = partitions_past_retention(&existing, today, retention_days);
    if !expired.is_empty() {
        let transaction = client.transaction().await?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await?;
        for name in &expired {
            // The names come from `partition_day`'s check: digits only, no quoting needed.
            transaction
                .batch_execute(&format!("DROP TABLE IF EXISTS {name}"))
                .await?;
        }
        transaction.commit().await?;
    }
    Ok((ensured, expired))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_partition_names_agree() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        // 2024-02-29, a leap day.
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(partition_name(19_782), "lease_history_20240229");
        for day in (-800..80_000).step_by(7) {
            assert_eq!(partition_day(&partition_name(day)), Some(day));
        }
        assert_eq!(partition_day("lease_history_20240230"), None);
        assert_eq!(partition_day("lease_history_2024022"), None);
        assert_eq!(partition_day("schema_version"), None);
        assert_eq!(day_of_micros(86_400_000_000), 1);
        assert_eq!(day_of_micros(-1), -1);
    }

    #[test]
    fn partitions_bound_one_utc_week_from_monday() {
        // 2024-02-29 was a Thursday: its week began on Monday 2024-02-26.
        assert_eq!(partition_start(19_782), 19_779);
        assert_eq!(partition_name(19_779), "lease_history_20240226");
        assert_eq!(partition_start(19_779), 19_779);
        assert_eq!(partition_start(19_785), 19_779);
        assert_eq!(partition_start(19_786), 19_786);
        assert_eq!(partition_start(0), -3);
        assert_eq!(
            create_partition_sql(19_779),
            "CREATE TABLE IF NOT EXISTS lease_history_20240226 PARTITION OF lease_history \
             FOR VALUES FROM ('2024-02-26 00:00:00+00') TO ('2024-03-04 00:00:00+00')"
        );
    }

    #[test]
    fn only_whole_weeks_before_the_retention_are_dropped() {
        // Weeks starting on days 95, 102, 109 (Mondays); today 120, 14 days kept: the first
        // kept day is 106, so only the week of 95..=101 goes (102..=108 still holds 106).
        let existing: Vec<String> = [95, 102, 109].map(partition_name).to_vec();
        let mut with_other = existing.clone();
        with_other.push("lease_history_default".into());
        assert_eq!(
            partitions_past_retention(&with_other, 120, 14),
            existing[..1].to_vec()
        );
        assert!(partitions_past_retention(&existing, 120, 180).is_empty());
    }

    #[test]
    fn migrations_are_numbered_in_order_from_one() {
        for (index, (version, name, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version as usize, index + 1);
            assert!(name.starts_with(&format!("{version:04}_")));
            assert!(!sql.trim().is_empty());
        }
    }
}
