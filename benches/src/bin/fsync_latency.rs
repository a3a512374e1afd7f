//! How long this machine's disk takes to make an append durable: `fsync_latency COUNT
//! INTERVAL_US BYTES [DIR]` appends BYTES to a file in DIR (default: the system's temporary
//! folder) COUNT times, INTERVAL_US apart, calling `fdatasync` after each as the group committer
//! does after a batch, and prints the latency percentiles of the `fdatasync` calls. A reply waits
//! for its batch's sync, so this bounds the reply latency any durable server reaches here.

use std::io::Write;
use std::time::Duration;

#[expect(clippy::disallowed_methods, reason = "driver owns the clock")]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut number = |default: u64| -> u64 {
        args.next()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let count = number(2000);
    let interval = Duration::from_micros(number(4000));
    let bytes = number(5000) as usize;
    let folder = std::env::args()
        .nth(4)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = folder.join(format!("fsync_latency.{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    let record = vec![b'x'; bytes];
    let mut latencies = Vec::with_capacity(count as usize);
    for _ in 0..count {
        file.write_all(&record)?;
        let started = now();
        file.sync_data()?;
        latencies.push(started.elapsed());
        std::thread::sleep(interval);
    }
    drop(file);
    std::fs::remove_file(&path)?;
    latencies.sort();
    let at = |quantile: f64| {
        let index = ((latencies.len() as f64 * quantile).ceil() as usize).saturating_sub(1);
        latencies
            .get(index)
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3
    };
    println!(
        "{count} appends of {bytes} bytes, {} µs apart, fdatasync ms: p50 {:.2}, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}",
        interval.as_micros(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        at(1.0)
    );
    Ok(())
}
