//! `xdhcpd history`: the questions an abuse desk asks of the lease history, answered by
//! indexed queries (`lease_history_address_at`, `lease_history_hardware_at`).
//!
//! - `--address A --at TIME`: who held A at TIME — the newest event of A at or before TIME
//!   decides (a grant or renewal whose lease had not ended by then names the holder; a
//!   release, expiry, decline or abandon, or a lease that had ended, means nobody), printed
//!   with the events before it.
//! - `--hardware MAC`: the events of that hardware address, newest first.
//!
//! TIME is anything PostgreSQL reads as a `timestamptz` (`2026-03-03 14:02`, ISO 8601 with a
//! zone, `now`); without a zone it is UTC. Times are printed in UTC.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use tokio_postgres::Client;

/// `xdhcpd history …`
#[derive(Debug, Clone, Parser, PartialEq, Eq)]
#[command(
    name = "xdhcpd history",
    about = "Query the lease history kept in PostgreSQL (option xdhcpd.history-database)"
)]
pub struct HistoryCli {
    /// The address whose holder to find (with --at).
    #[arg(
        long = "address",
        value_name = "A",
        requires = "at",
        conflicts_with = "hardware"
    )]
    pub address: Option<Ipv4Addr>,
    /// The time to ask about, e.g. "2026-03-03 14:02" (UTC unless a zone is given).
    #[arg(long = "at", value_name = "TIME")]
    pub at: Option<String>,
    /// A hardware address (aa:bb:cc:dd:ee:ff): its leases, newest first.
    #[arg(long = "hardware", value_name = "MAC")]
    pub hardware: Option<String>,
    /// Rows to print at most.
    #[arg(long = "limit", value_name = "N", default_value_t = 20)]
    pub limit: i64,
    /// The database (a libpq connection string or postgresql:// URL); defaults to the
    /// configuration's xdhcpd.history-database, else xdhcpd.lease-database.
    #[arg(long = "database", value_name = "URL")]
    pub database: Option<String>,
    /// Configuration file to read the database from.
    #[arg(long = "config", short = 'c', value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
}

/// A hardware address as `aa:bb:cc:dd:ee:ff` (also `-` or no separators); `None` when it is not
/// hex bytes.
pub fn parse_hardware(text: &str) -> Option<Vec<u8>> {
    let digits: String = text
        .chars()
        .filter(|character| !matches!(character, ':' | '-' | '.'))
        .collect();
    if digits.is_empty() || !digits.len().is_multiple_of(2) || digits.len() > 32 {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(digits.get(index..index + 2)?, 16).ok())
        .collect()
}

/// One printed event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLine {
    pub at: String,
    pub event: String,
    pub address: String,
    pub hardware: String,
    pub client_id: String,
    pub circuit_id: String,
    pub remote_id: String,
    pub relay: String,
    pub starts: String,
    pub ends: String,
    pub server: String,
}

const COLUMNS: [&str; 11] = [
    "time (UTC)",
    "event",
    "address",
    "hardware",
    "client-id",
    "circuit-id",
    "remote-id",
    "relay",
    "starts",
    "ends",
    "server",
];

/// Bytes as ISC prints identifiers: printable text in quotes, else colon-separated hex.
pub fn readable(bytes: Option<&[u8]>) -> String {
    match bytes {
        None => "-".into(),
        Some([]) => "\"\"".into(),
        Some(bytes)
            if bytes
                .iter()
                .all(|byte| byte.is_ascii_graphic() || *byte == b' ') =>
        {
            format!("\"{}\"", String::from_utf8_lossy(bytes))
        }
        Some(bytes) => bytes
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

/// The events as an aligned table.
pub fn table(lines: &[EventLine]) -> String {
    let cells: Vec<[&str; 11]> = lines
        .iter()
        .map(|line| {
            [
                line.at.as_str(),
                &line.event,
                &line.address,
                &line.hardware,
                &line.client_id,
                &line.circuit_id,
                &line.remote_id,
                &line.relay,
                &line.starts,
                &line.ends,
                &line.server,
            ]
        })
        .collect();
    let mut widths = COLUMNS.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let mut push_row = |row: &[&str; 11]| {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if index + 1 < row.len() {
                line.push_str(&" ".repeat(width - cell.chars().count()));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    };
    push_row(&COLUMNS);
    for row in &cells {
        push_row(row);
    }
    text
}

const SELECT: &str = "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), event, \
       host(address), hardware, client_id, circuit_id, remote_id, host(relay), \
       to_char(starts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), \
       coalesce(to_char(ends AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), 'never'), server, \
       (event IN ('grant', 'renew') AND (ends IS NULL OR ends > $2)) \
     FROM lease_history";

/// How far back a question looks, narrowest first. Planning a query over every partition of
/// the retention can cost more than running it (it did with 181 daily partitions: 12 ms
/// planned, 1 ms run), and a typed lower bound lets the planner leave out every partition
/// before it. The
/// newest events up to a time are in the narrowest window that has any (or enough), so
/// widening only when it is empty gives the same answer: one query for an address with
/// events in the last two days before the time asked (leases of hours renew well within it).
pub const WINDOWS: [Option<Duration>; 3] = [
    Some(Duration::from_secs(2 * 86_400)),
    Some(Duration::from_secs(62 * 86_400)),
    None,
];

/// TIME as PostgreSQL reads it (a `timestamptz`, in the session's zone, UTC).
pub async fn resolve_time(
    client: &Client,
    text: &str,
) -> Result<SystemTime, tokio_postgres::Error> {
    Ok(client
        .query_one("SELECT $1::text::timestamptz", &[&text])
        .await?
        .get(0))
}

fn event_line(row: &tokio_postgres::Row) -> EventLine {
    let text = |index: usize| -> String {
        row.get::<_, Option<String>>(index)
            .unwrap_or_else(|| "-".into())
    };
    let bytes = |index: usize| readable(row.get::<_, Option<Vec<u8>>>(index).as_deref());
    let hardware = row
        .get::<_, Option<Vec<u8>>>(3)
        .map(|bytes| {
            bytes
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        })
        .unwrap_or_else(|| "-".into());
    EventLine {
        at: text(0),
        event: text(1),
        address: text(2),
        hardware,
        client_id: bytes(4),
        circuit_id: bytes(5),
        remote_id: bytes(6),
        relay: text(7),
        starts: text(8),
        ends: text(9),
        server: text(10),
    }
}

/// Who held `address` at `at`: the events of the address up to `at`, newest first, and whether
/// the newest one leaves the address held then.
pub async fn holder_at(
    client: &Client,
    address: Ipv4Addr,
    at: SystemTime,
    limit: i64,
) -> Result<(Vec<EventLine>, bool), tokio_postgres::Error> {
    let address = IpAddr::V4(address);
    let limit = limit.max(1);
    for window in WINDOWS {
        let rows = match window.and_then(|window| at.checked_sub(window)) {
            Some(from) => {
                let sql = format!(
                    "{SELECT} WHERE address = $1 AND at <= $2 AND at > $4 \
                     ORDER BY at DESC LIMIT $3"
                );
                client.query(&sql, &[&address, &at, &limit, &from]).await?
            }
            None => {
                let sql =
                    format!("{SELECT} WHERE address = $1 AND at <= $2 ORDER BY at DESC LIMIT $3");
                client.query(&sql, &[&address, &at, &limit]).await?
            }
        };
        if !rows.is_empty() || window.is_none() {
            let held = rows.first().is_some_and(|row| row.get::<_, bool>(11));
            return Ok((rows.iter().map(event_line).collect(), held));
        }
    }
    Ok((Vec::new(), false))
}

/// The events of hardware address `hardware`, newest first.
pub async fn of_hardware(
    client: &Client,
    hardware: &[u8],
    now: SystemTime,
    limit: i64,
) -> Result<Vec<EventLine>, tokio_postgres::Error> {
    let limit = limit.max(1);
    // `$2` is only read by the `held` column, which this question ignores.
    for window in WINDOWS {
        let rows = match window.and_then(|window| now.checked_sub(window)) {
            Some(from) => {
                let sql =
                    format!("{SELECT} WHERE hardware = $1 AND at > $4 ORDER BY at DESC LIMIT $3");
                client
                    .query(&sql, &[&hardware, &now, &limit, &from])
                    .await?
            }
            None => {
                let sql = format!("{SELECT} WHERE hardware = $1 ORDER BY at DESC LIMIT $3");
                client.query(&sql, &[&hardware, &now, &limit]).await?
            }
        };
        if rows.len() as i64 >= limit || window.is_none() {
            return Ok(rows.iter().map(event_line).collect());
        }
    }
    Ok(Vec::new())
}

/// Runs the command; the text to print, or the error to report.
pub async fn run(cli: &HistoryCli, database: &str) -> Result<String, String> {
    let client = super::writer::connect(database)
        .await
        .map_err(|error| format!("cannot connect to the history database: {error}"))?;
    client
        .batch_execute("SET TIME ZONE 'UTC'")
        .await
        .map_err(|error| error.to_string())?;
    if let (Some(address), Some(at)) = (cli.address, cli.at.as_deref()) {
        let time = resolve_time(&client, at)
            .await
            .map_err(|error| describe(&error))?;
        let (lines, held) = holder_at(&client, address, time, cli.limit)
            .await
            .map_err(|error| describe(&error))?;
        let verdict = match lines.first() {
            Some(line) if held => format!(
                "{address} at {at}: held by {} (client-id {}, circuit-id {}, remote-id {})\n",
                line.hardware, line.client_id, line.circuit_id, line.remote_id
            ),
            Some(line) => format!(
                "{address} at {at}: not held (last event: {} at {})\n",
                line.event, line.at
            ),
            None => format!("{address} at {at}: no event in the history\n"),
        };
        return Ok(if lines.is_empty() {
            verdict
        } else {
            format!("{verdict}\n{}", table(&lines))
        });
    }
    if let Some(text) = &cli.hardware {
        let hardware =
            parse_hardware(text).ok_or_else(|| format!("--hardware {text}: not a MAC address"))?;
        let now = UNIX_EPOCH + Duration::from_micros(super::writer::now_micros().max(0) as u64);
        let lines = of_hardware(&client, &hardware, now, cli.limit)
            .await
            .map_err(|error| describe(&error))?;
        return Ok(if lines.is_empty() {
            format!("{text}: no event in the history\n")
        } else {
            table(&lines)
        });
    }
    Err("say --address A --at TIME or --hardware MAC".into())
}

/// A database error with PostgreSQL's own message (e.g. a TIME it cannot read).
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_addresses_are_read_in_the_usual_spellings() {
        let expected = Some(vec![0, 0x1b, 0x21, 0xaa, 0xbb, 0xcc]);
        assert_eq!(parse_hardware("00:1b:21:aa:bb:cc"), expected);
        assert_eq!(parse_hardware("00-1B-21-AA-BB-CC"), expected);
        assert_eq!(parse_hardware("001b.21aa.bbcc"), expected);
        assert_eq!(parse_hardware("00:1b:2"), None);
        assert_eq!(parse_hardware("zz:zz"), None);
        assert_eq!(parse_hardware(""), None);
    }

    #[test]
    fn identifiers_print_as_text_when_printable() {
        assert_eq!(readable(Some(b"ge-0/0/1")), "\"ge-0/0/1\"");
        assert_eq!(readable(Some(&[1, 0xaa])), "01:aa");
        assert_eq!(readable(None), "-");
    }

    #[test]
    fn the_table_aligns_its_columns() {
        let line = EventLine {
            at: "2026-03-03 14:02:00.000000".into(),
            event: "grant".into(),
            address: "100.64.3.7".into(),
            hardware: "00:1b:21:aa:bb:cc".into(),
            client_id: "-".into(),
            circuit_id: "\"ge-0/0/1\"".into(),
            remote_id: "-".into(),
            relay: "100.64.0.1".into(),
            starts: "2026-03-03 14:02:00".into(),
            ends: "2026-03-03 16:02:00".into(),
            server: "dhcp1".into(),
        };
        let text = table(&[line]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].find("event"), lines[1].find("grant"));
        assert_eq!(lines[0].find("server"), lines[1].find("dhcp1"));
    }
}
