//! DORA through a relay with perfdhcp (root), the same load against the lease file and
//! against the PostgreSQL lease backend (a private PostgreSQL, reached from the server's
//! namespace through its Unix socket). Prints ACKs per second and the REQUEST→ACK delay of
//! each — a measurement for BENCHMARKS.md, not a timed assertion — and checks that the database
//! backend's ACKed leases are rows of `leases` (perfdhcp draws its clients at random among
//! 20,000, so a client may be ACKed twice: the rows are printed beside the ACKs, not equated).
//! `cargo test -p server --test integration netns_pg_dora:: -- --nocapture`.

use crate::common;
use crate::netns_perfdhcp::{load_turn, perfdhcp, relayed_config, relayed_lab, setup};
use crate::pg::PgServer;

/// Offered DORA/s, one step each.
const RATES: [u32; 2] = [1_000, 3_000];

fn active_leases(url: &str) -> i64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = xdhcpd::history::writer::connect(url).await.unwrap();
        let count: i64 = client
            .query_one("SELECT count(*) FROM leases WHERE state = 'active'", &[])
            .await
            .unwrap()
            .get(0);
        client
            .batch_execute("TRUNCATE leases, lease_file_records, lease_history")
            .await
            .unwrap();
        count
    })
}

#[test]
fn dora_rate_with_the_lease_file_and_with_postgresql() -> anyhow::Result<()> {
    if !common::privileged("dora_rate_with_the_lease_file_and_with_postgresql") {
        return Ok(());
    }
    let port = 29_950 + (std::process::id() % 40) as u16;
    let Some(database) = PgServer::start("netns_pg_dora", port) else {
        return Ok(());
    };
    let _turn = load_turn();
    let socket_url = format!(
        "host={} port={} user=postgres dbname=postgres",
        database.root().join("socket").display(),
        database.port()
    );
    let mut results = Vec::new();
    for backend in ["file", "postgresql"] {
        for rate in RATES {
            let lab = relayed_lab()?;
            let config = relayed_config(60_000);
            let mut text = config.to_dhcpd_conf();
            if backend == "postgresql" {
                text.push_str(&format!(
                    "option space xdhcpd;\noption xdhcpd.lease-database code 15 = text;\n\
                     option xdhcpd.lease-database \"{socket_url}\";\n"
                ));
            }
            let mut server_setup = setup(&lab, config);
            server_setup.dhcpd_conf = Some(text);
            let server = server_setup.start()?;
            let report = crate::netns::peers::Perfdhcp {
                rate: Some(rate),
                clients: 20_000,
                seconds: 10,
                ..perfdhcp(&lab)
            }
            .run(&format!("perfdhcp-{backend}-{rate}"))?;
            drop(server);
            let rows = if backend == "postgresql" {
                let rows = active_leases(&database.url());
                assert!(
                    report.ack_received == 0 || rows > 0,
                    "no active row for {} ACKs",
                    report.ack_received
                );
                Some(rows)
            } else {
                None
            };
            results.push(format!(
                "{backend:>10} offered {rate:>5}/s: {:>6.0} ACK/s, REQUEST→ACK avg {:.2} ms max {:.2} ms, drops {}{}",
                report.ack_received as f64 / 10.0,
                report.ra_avg_ms.unwrap_or(f64::NAN),
                report.ra_max_ms.unwrap_or(f64::NAN),
                report.total_drops(),
                rows.map(|rows| format!(", {rows} active rows")).unwrap_or_default()
            ));
            assert!(report.ack_received > 0, "no ACK: {}", report.raw);
        }
    }
    for line in &results {
        eprintln!("{line}");
    }
    Ok(())
}
