//! The lease history's queries at size (issue 16: "after 100,000 leases and renewals,
//! `xdhcpd history` answers a point-in-time query in < 10 ms"). Starts a private PostgreSQL
//! (as root; the same helper as the integration tests, `server/tests/pg`), writes EVENTS
//! history rows through the daemon's own writer path (`history::writer::insert`, batches of
//! 2,000) spread over DAYS days (weekly partitions), then times QUERIES point-in-time questions
//! (`history::query::holder_at`) at random addresses and times, and QUERIES `--hardware` ones,
//! and prints the plan of one (EXPLAIN ANALYZE).
//!
//! `cargo run -p benches --bin history_query -- [EVENTS] [ADDRESSES] [DAYS] [QUERIES]`
//! (defaults 100000 10000 30 1000), or `cargo xtask bench history`.

use std::net::Ipv4Addr;
use std::time::Duration;

use rand::RngExt as _;
use xdhcpd::history::{EventKind, Row};

#[path = "../../../server/tests/pg/mod.rs"]
mod pg;

#[expect(clippy::disallowed_methods, reason = "driver owns the clock")]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

fn argument(index: usize, default: u64) -> u64 {
    std::env::args()
        .nth(index)
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

fn address(index: u64) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + index as u32)
}

fn mac(index: u64, epoch: u64) -> Vec<u8> {
    let value = index * 7 + epoch * 1_000_003;
    vec![
        0x02,
        (value >> 32) as u8,
        (value >> 24) as u8,
        (value >> 16) as u8,
        (value >> 8) as u8,
        value as u8,
    ]
}

fn percentile(sorted: &[Duration], share: f64) -> Duration {
    sorted[((sorted.len() as f64 * share) as usize).min(sorted.len() - 1)]
}

fn report(what: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    println!(
        "{what}: {} queries, median {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        latencies.len(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().map_or(0.0, |max| max.as_secs_f64() * 1e3),
    );
}

fn main() -> anyhow::Result<()> {
    let events = argument(1, 100_000);
    let addresses = argument(2, 10_000).max(1);
    let days = argument(3, 30).max(1);
    let queries = argument(4, 1_000).max(1);
    let port = 29_000 + (std::process::id() % 900) as u16;
    let Some(database) = pg::PgServer::start("history_query", port) else {
        anyhow::bail!("no private PostgreSQL (needs root and Debian's postgresql)");
    };
    let url = database.url();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut client = xdhcpd::history::writer::connect(&url)
            .await
            .map_err(anyhow::Error::msg)?;
        xdhcpd::history::schema::migrate(&mut client).await?;
        // Events end now and go back DAYS days; each address's events are its client's
        // grant and renewals, a new client (MAC) every 10 events of the address.
        let end_micros = xdhcpd::history::writer::now_micros();
        let span_micros = days as i64 * 86_400_000_000;
        let start_micros = end_micros - span_micros;
        let step = span_micros / events as i64;
        let mut rows = Vec::with_capacity(events as usize);
        for index in 0..events {
            let slot = index % addresses;
            let round = index / addresses;
            let at_micros = start_micros + step * index as i64;
            let starts = (at_micros / 1_000_000) as u32;
            rows.push(Row {
                at_micros,
                kind: if round.is_multiple_of(10) {
                    EventKind::Grant
                } else {
                    EventKind::Renew
                },
                address: address(slot),
                htype: Some(1),
                hardware: Some(mac(slot, round / 10)),
                client_id: None,
                circuit_id: Some(format!("ge-0/0/{}", slot % 48).into_bytes()),
                remote_id: None,
                relay: Some(Ipv4Addr::new(100, 64, 255, 1)),
                starts: Some(starts),
                ends: Some(starts + 7_200),
                source: "engine".into(),
            });
        }
        let mut partitions = std::collections::HashSet::new();
        let started = now();
        for batch in rows.chunks(xdhcpd::history::writer::BATCH) {
            xdhcpd::history::writer::insert(&mut client, &mut partitions, "bench", batch).await?;
        }
        let elapsed = started.elapsed();
        println!(
            "inserted {events} events ({addresses} addresses, {} partitions) in {:.2} s: {:.0} rows/s",
            partitions.len(),
            elapsed.as_secs_f64(),
            events as f64 / elapsed.as_secs_f64()
        );
        client.batch_execute("ANALYZE lease_history").await?;
        client.batch_execute("SET TIME ZONE 'UTC'").await?;
        let mut random = rand::rng();
        let time_of = |micros: i64| {
            std::time::UNIX_EPOCH + Duration::from_micros(micros.max(0) as u64)
        };
        let mut point = Vec::with_capacity(queries as usize);
        let mut held = 0;
        for _ in 0..queries {
            let target = address(random.random_range(0..addresses));
            let at = time_of(random.random_range(start_micros..end_micros));
            let started = now();
            let (_, is_held) =
                xdhcpd::history::query::holder_at(&client, target, at, 20).await?;
            point.push(started.elapsed());
            held += usize::from(is_held);
        }
        report("point in time (--address A --at T)", point);
        println!("  ({held} of {queries} found a holder)");
        let mut by_mac = Vec::with_capacity(queries as usize);
        for _ in 0..queries {
            let hardware = mac(
                random.random_range(0..addresses),
                random.random_range(0..(events / addresses / 10).max(1)),
            );
            let started = now();
            xdhcpd::history::query::of_hardware(&client, &hardware, time_of(end_micros), 20)
                .await?;
            by_mac.push(started.elapsed());
        }
        report("by hardware (--hardware MAC)", by_mac);
        let target = std::net::IpAddr::V4(address(addresses / 2));
        let at = time_of(start_micros + span_micros / 2);
        let from = at - xdhcpd::history::query::WINDOWS[0].unwrap_or_default();
        let plan = client
            .query(
                "EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) SELECT * FROM lease_history \
                 WHERE address = $1 AND at <= $2 AND at > $3 ORDER BY at DESC LIMIT 20",
                &[&target, &at, &from],
            )
            .await?;
        println!("EXPLAIN ANALYZE of one point-in-time query (its first window):");
        for line in plan.iter().take(12) {
            println!("  {}", line.get::<_, String>(0));
        }
        if plan.len() > 12 {
            println!("  … ({} more plan lines)", plan.len() - 14);
            for line in &plan[plan.len() - 2..] {
                println!("  {}", line.get::<_, String>(0));
            }
        }
        Ok::<_, anyhow::Error>(())
    })?;
    drop(database);
    Ok(())
}
