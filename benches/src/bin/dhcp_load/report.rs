//! What `dhcp_load` measures and prints: latency histograms (HdrHistogram, microseconds),
//! counters per phase, and its own CPU time (getrusage(2), RUSAGE_SELF: one thread).

use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// Microsecond latencies from 1 µs to 20 minutes, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 1_200_000_000, 3).expect("static bounds are valid")
}

pub fn record(histogram: &mut Histogram<u64>, nanos: u64) {
    histogram.saturating_record((nanos / 1_000).max(1));
}

/// User + system CPU seconds of this process so far.
pub fn cpu_seconds() -> f64 {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to an rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut usage) };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Counters of one phase (a ladder step, the avalanche, the renewals).
pub struct Phase {
    pub name: String,
    /// Offered starts per second (0 = unbounded; the avalanche: every client at once).
    pub rate: u32,
    /// Seconds from the first send to the last send (ladder) or to the last ACK (avalanche).
    pub seconds: f64,
    pub started: u64,
    pub acked: u64,
    pub offers: u64,
    pub naks: u64,
    /// Exchanges given up (ladder: no ACK within the timeout; avalanche: unbound at the
    /// deadline).
    pub lost: u64,
    pub discover_retransmissions: u64,
    pub request_retransmissions: u64,
    /// Replies to an exchange already answered (duplicates from retransmissions).
    pub duplicates: u64,
    /// Frames the kernel refused to queue (transmit ring full).
    pub refused: u64,
    pub cpu_seconds: f64,
    /// DISCOVER → OFFER (from the last DISCOVER sent), REQUEST → ACK, and the whole exchange
    /// from the first DISCOVER to the ACK.
    pub discover_offer: Histogram<u64>,
    pub request_ack: Histogram<u64>,
    pub dora: Histogram<u64>,
    /// When the phase began (the engine's clock, ns) and, by second since then, the whole
    /// exchanges ACKed in that second: what a stall looks like over time (a lease file
    /// rewrite under load is a few seconds of a longer step).
    pub began: u64,
    pub by_second: Vec<Histogram<u64>>,
}

impl Phase {
    pub fn new(name: &str, rate: u32, began: u64) -> Self {
        Self {
            name: name.to_owned(),
            rate,
            seconds: 0.0,
            started: 0,
            acked: 0,
            offers: 0,
            naks: 0,
            lost: 0,
            discover_retransmissions: 0,
            request_retransmissions: 0,
            duplicates: 0,
            refused: 0,
            cpu_seconds: 0.0,
            discover_offer: histogram(),
            request_ack: histogram(),
            dora: histogram(),
            began,
            by_second: Vec::new(),
        }
    }

    /// Records a whole exchange (first send → ACK) that ended at `now`.
    pub fn record_exchange(&mut self, now: u64, nanos: u64) {
        record(&mut self.dora, nanos);
        let second = (now.saturating_sub(self.began) / 1_000_000_000) as usize;
        // An avalanche can last minutes: one histogram per second up to an hour is plenty.
        if second < 3600 {
            if self.by_second.len() <= second {
                self.by_second.resize_with(second + 1, histogram);
            }
            record(&mut self.by_second[second], nanos);
        }
    }

    /// `SECOND phase index acked p50_ms p99_ms max_ms`, one line per second of the phase.
    pub fn print_seconds(&self) {
        for (index, histogram) in self.by_second.iter().enumerate() {
            let ms = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
            println!(
                "SECOND {} {index} {} {:.3} {:.3} {:.3}",
                self.name,
                histogram.len(),
                ms(0.5),
                ms(0.99),
                histogram.max() as f64 / 1000.0
            );
        }
    }

    /// A human line, then the `RESULT` line the harness parses.
    pub fn print(&self) {
        let per_second = self.acked as f64 / self.seconds.max(1e-9);
        let loss =
            100.0 * self.started.saturating_sub(self.acked) as f64 / self.started.max(1) as f64;
        let ms = |histogram: &Histogram<u64>, quantile: f64| -> f64 {
            if histogram.is_empty() {
                0.0
            } else {
                histogram.value_at_quantile(quantile) as f64 / 1000.0
            }
        };
        let max = |histogram: &Histogram<u64>| histogram.max() as f64 / 1000.0;
        println!(
            "{}: started {} acked {} in {:.2} s = {:.0}/s, loss {:.2} %, retransmissions {}+{}, \
             latency (first send → ACK) p50 {:.2} ms p99 {:.2} ms max {:.2} ms, generator CPU {:.2} s",
            self.name,
            self.started,
            self.acked,
            self.seconds,
            per_second,
            loss,
            self.discover_retransmissions,
            self.request_retransmissions,
            ms(&self.dora, 0.5),
            ms(&self.dora, 0.99),
            max(&self.dora),
            self.cpu_seconds
        );
        let mut line = String::from("RESULT");
        let mut field = |key: &str, value: String| {
            let _ = write!(line, " {key} {value}");
        };
        field("phase", self.name.clone());
        field("rate", self.rate.to_string());
        field("seconds", format!("{:.3}", self.seconds));
        field("started", self.started.to_string());
        field("acked", self.acked.to_string());
        field("per_second", format!("{per_second:.1}"));
        field("loss_pct", format!("{loss:.3}"));
        field("offers", self.offers.to_string());
        field("naks", self.naks.to_string());
        field("lost", self.lost.to_string());
        field("discover_retx", self.discover_retransmissions.to_string());
        field("request_retx", self.request_retransmissions.to_string());
        field("duplicates", self.duplicates.to_string());
        field("refused", self.refused.to_string());
        field("cpu_s", format!("{:.3}", self.cpu_seconds));
        for (name, histogram) in [
            ("do", &self.discover_offer),
            ("ra", &self.request_ack),
            ("dora", &self.dora),
        ] {
            field(
                &format!("{name}_p50_ms"),
                format!("{:.3}", ms(histogram, 0.5)),
            );
            field(
                &format!("{name}_p99_ms"),
                format!("{:.3}", ms(histogram, 0.99)),
            );
            field(&format!("{name}_max_ms"), format!("{:.3}", max(histogram)));
        }
        println!("{line}");
    }

    /// `CURVE phase seconds fraction …`: when each share of the exchanges had its ACK, from
    /// its first DISCOVER (201 points of the latency distribution). In an avalanche every
    /// client starts at once, so this is the share of clients bound over time.
    pub fn print_curve(&self) {
        if self.dora.is_empty() {
            return;
        }
        let mut line = format!("CURVE {}", self.name);
        for step in 0..=200 {
            let fraction = f64::from(step) / 200.0;
            let seconds = self.dora.value_at_quantile(fraction) as f64 / 1e6;
            let _ = write!(line, " {seconds:.4} {fraction:.3}");
        }
        println!("{line}");
    }
}
