//! Counters and the Prometheus text endpoint (`--metrics-listen`).
//!
//! Counters are plain relaxed atomics bumped on the packet path; the endpoint is a tiny HTTP/1.0
//! responder on its own thread, so a slow scraper never touches the packet path.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One named counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    pub fn increment(&self) {
        self.add(1);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Every counter of the daemon.
#[derive(Debug, Default)]
pub struct Metrics {
    pub packets_received: Counter,
    /// Datagrams that are not a decodable BOOTP/DHCP message: counted and dropped.
    pub packets_malformed: Counter,
    pub offers: Counter,
    pub acks: Counter,
    pub naks: Counter,
    pub informs: Counter,
    pub releases: Counter,
    pub declines: Counter,
    /// Requests the engine decided not to answer (not ours, unknown subnet, pool exhausted…).
    pub ignored: Counter,
    pub replies_sent: Counter,
    pub send_errors: Counter,
    /// Records handed to the lease log.
    pub leases_committed: Counter,
    /// Replies dropped because their lease could not be made durable.
    pub commit_failures: Counter,
    pub leases_expired: Counter,
}

impl Metrics {
    /// The Prometheus text exposition of every counter, with extra gauges appended by the caller.
    pub fn render(&self, extra: &[(&str, &str, u64)]) -> String {
        let counters: [(&str, &str, &Counter); 14] = [
            (
                "xdhcpd_packets_received_total",
                "DHCP datagrams received",
                &self.packets_received,
            ),
            (
                "xdhcpd_packets_malformed_total",
                "datagrams dropped as undecodable",
                &self.packets_malformed,
            ),
            ("xdhcpd_offers_total", "DHCPOFFERs decided", &self.offers),
            ("xdhcpd_acks_total", "DHCPACKs decided", &self.acks),
            ("xdhcpd_naks_total", "DHCPNAKs decided", &self.naks),
            (
                "xdhcpd_informs_total",
                "DHCPINFORMs answered",
                &self.informs,
            ),
            (
                "xdhcpd_releases_total",
                "DHCPRELEASEs processed",
                &self.releases,
            ),
            (
                "xdhcpd_declines_total",
                "DHCPDECLINEs processed",
                &self.declines,
            ),
            (
                "xdhcpd_ignored_total",
                "requests not answered",
                &self.ignored,
            ),
            (
                "xdhcpd_replies_sent_total",
                "replies handed to the kernel",
                &self.replies_sent,
            ),
            (
                "xdhcpd_send_errors_total",
                "replies the kernel refused",
                &self.send_errors,
            ),
            (
                "xdhcpd_leases_committed_total",
                "lease records made durable",
                &self.leases_committed,
            ),
            (
                "xdhcpd_commit_failures_total",
                "replies dropped because the lease log failed",
                &self.commit_failures,
            ),
            (
                "xdhcpd_leases_expired_total",
                "leases moved out of active by expiry",
                &self.leases_expired,
            ),
        ];
        let mut text = String::new();
        for (name, help, counter) in counters {
            let _ = writeln!(
                text,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                counter.get()
            );
        }
        for (name, help, value) in extra {
            let _ = writeln!(
                text,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        text
    }
}

/// Serves `render()` at any path of `listen` over HTTP until the process exits.
pub fn serve(
    listen: SocketAddr,
    render: Arc<dyn Fn() -> String + Send + Sync>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let listener = TcpListener::bind(listen)?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request);
                let body = render();
                let _ = write!(
                    stream,
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_help_type_and_value() {
        let metrics = Metrics::default();
        metrics.acks.add(3);
        let text = metrics.render(&[("xdhcpd_leases", "leases in the store", 7)]);
        assert!(text.contains("# TYPE xdhcpd_acks_total counter\nxdhcpd_acks_total 3\n"));
        assert!(text.contains("xdhcpd_leases 7\n"));
    }
}
