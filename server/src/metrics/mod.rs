//! Metrics and the Prometheus text endpoint (`--metrics-listen`, or `option xdhcpd.metrics-listen
//! "ADDR:PORT";` in dhcpd.conf).
//!
//! Two kinds of metric, both encoded by `prometheus-client`:
//! - counters bumped on the packet path ([`Metrics`]): received by message type, sent by message
//!   type, drops by reason, … Each thread bumps its own cache-line-padded copy ([`striped`]), so
//!   a bump is one relaxed atomic add on a line no other core writes, never a label lookup; the
//!   copies are summed at scrape time;
//! - values read at scrape time ([`collectors`]): pool utilisation from the lease store, the
//!   group committer's batch and fsync histograms, the XDP per-CPU counters, failover state and
//!   the kernel's socket drop counters ([`socket`]).
//!
//! The endpoint is a small HTTP/1.0 responder on its own thread, so a slow scraper never touches
//! the packet path.

pub mod collectors;
pub mod socket;
pub mod striped;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dhcproto::v4::{Message, MessageType};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::engine::{IgnoreReason, Outcome};
use crate::net::socket::DhcpSocket;

/// One counter of the packet path: a slot of the per-thread copies ([`striped`]), exported by
/// the registry's collector as their sum (clones count into the same value).
#[derive(Clone, Debug)]
pub struct Counter {
    stripes: Arc<PacketStripes>,
    slot: usize,
}

impl Counter {
    pub fn add(&self, value: u64) {
        self.stripes.add(self.slot, value);
    }

    pub fn increment(&self) {
        self.add(1);
    }

    /// The sum over every thread's copy.
    pub fn get(&self) -> u64 {
        self.stripes.sum(self.slot)
    }
}

/// The upper bounds of [`LockHold`]'s buckets: 1 µs × 4^i, i = 0..10 (1 µs to 1.05 s), then +Inf.
const LOCK_HOLD_BOUNDS: usize = 11;

fn lock_hold_bound(bucket: usize) -> f64 {
    // As `prometheus_client::metrics::histogram::exponential_buckets(1e-6, 4.0, 11)`: the same
    // `le` labels as before (the bench scrapes them).
    1e-6 * 4f64.powf(bucket as f64)
}

/// How long a worker holds a shard of the lease store per received batch: a histogram kept in
/// the per-thread copies like the counters (a shared histogram would take a lock per
/// observation).
#[derive(Clone, Debug)]
pub struct LockHold {
    stripes: Arc<PacketStripes>,
}

impl LockHold {
    pub fn observe(&self, seconds: f64) {
        let bucket = (0..LOCK_HOLD_BOUNDS)
            .find(|&bucket| seconds <= lock_hold_bound(bucket))
            .unwrap_or(LOCK_HOLD_BOUNDS);
        self.stripes.add(slots::LOCK_HOLD + bucket, 1);
        self.stripes.add(slots::LOCK_HOLD_COUNT, 1);
        self.stripes
            .add(slots::LOCK_HOLD_NANOS, (seconds.max(0.0) * 1e9) as u64);
    }

    /// (sum in seconds, count, non-cumulative buckets with their upper bounds).
    fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let buckets = (0..=LOCK_HOLD_BOUNDS)
            .map(|bucket| {
                let bound = if bucket == LOCK_HOLD_BOUNDS {
                    f64::INFINITY
                } else {
                    lock_hold_bound(bucket)
                };
                (bound, self.stripes.sum(slots::LOCK_HOLD + bucket))
            })
            .collect();
        (
            self.stripes.sum(slots::LOCK_HOLD_NANOS) as f64 / 1e9,
            self.stripes.sum(slots::LOCK_HOLD_COUNT),
            buckets,
        )
    }
}

/// Where each packet-path counter lives in a stripe.
mod slots {
    use super::{DropReason, ExecuteResult, PingResult, ReceivedType, SentType, LOCK_HOLD_BOUNDS};
    use crate::changes::ChangeSource;

    pub const RECEIVED: usize = 0;
    pub const SENT: usize = RECEIVED + ReceivedType::ALL.len();
    pub const DROPS: usize = SENT + SentType::ALL.len();
    pub const CHANGES: usize = DROPS + DropReason::ALL.len();
    pub const KERNEL_WITHDRAWALS: usize = CHANGES + ChangeSource::ALL.len();
    pub const DATAGRAMS_RECEIVED: usize = KERNEL_WITHDRAWALS + 1;
    pub const REPLIES_SENT: usize = DATAGRAMS_RECEIVED + 1;
    pub const LEASES_COMMITTED: usize = REPLIES_SENT + 1;
    pub const LEASES_EXPIRED: usize = LEASES_COMMITTED + 1;
    pub const LOG_LINES_SUPPRESSED: usize = LEASES_EXPIRED + 1;
    /// Buckets (the last one +Inf), then count and sum in nanoseconds.
    pub const LOCK_HOLD: usize = LOG_LINES_SUPPRESSED + 1;
    pub const LOCK_HOLD_COUNT: usize = LOCK_HOLD + LOCK_HOLD_BOUNDS + 1;
    pub const LOCK_HOLD_NANOS: usize = LOCK_HOLD_COUNT + 1;
    pub const PING_CHECKS: usize = LOCK_HOLD_NANOS + 1;
    pub const PING_REPLIES_IGNORED: usize = PING_CHECKS + PingResult::ALL.len();
    pub const EXECUTES: usize = PING_REPLIES_IGNORED + 1;
    pub const COUNT: usize = EXECUTES + ExecuteResult::ALL.len();
}

type PacketStripes = striped::Stripes<{ slots::COUNT }>;

/// Declares a label enum: variants, their label values, and `ALL` in declaration order.
macro_rules! declare_labels {
    ($(#[$meta:meta])* $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $label:literal, )* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];

            /// The Prometheus label value.
            pub const fn label(self) -> &'static str {
                match self {
                    $( $name::$variant => $label, )*
                }
            }
        }
    };
}

declare_labels! {
    /// Message type of a decoded request (RFC 2132 §9.6 option 53).
    ReceivedType {
        Discover => "discover",
        Request => "request",
        Decline => "decline",
        Release => "release",
        Inform => "inform",
        /// A BOOTREQUEST without option 53 (RFC 951 client).
        Bootp => "bootp",
        /// Server-to-client types and codes this server does not serve.
        Other => "other",
    }
}

declare_labels! {
    /// Message type of a reply.
    SentType {
        Offer => "offer",
        Ack => "ack",
        Nak => "nak",
        /// The BOOTREPLY to a BOOTP client.
        Bootreply => "bootreply",
        /// The answers to a DHCPLEASEQUERY (RFC 4388 §6.1).
        Leaseunassigned => "leaseunassigned",
        Leaseunknown => "leaseunknown",
        Leaseactive => "leaseactive",
    }
}

declare_labels! {
    /// How a `ping-check` probe ended (`engine::ping_check`, `daemon::ping`).
    PingResult {
        /// An ICMP echo request was sent and its OFFER parked.
        Sent => "sent",
        /// An echo reply came: the address was abandoned, the OFFER not sent.
        Answered => "answered",
        /// No echo reply within the timeout: the OFFER was sent.
        TimedOut => "timed_out",
        /// The echo request could not be sent: the OFFER was sent at once, unprobed.
        SendFailed => "send_failed",
        /// The address's hold was gone when the probe ended (an OMAPI or partner change of
        /// the lease): nothing was sent.
        Superseded => "superseded",
    }
}

declare_labels! {
    /// How a command of an `execute` statement ended (`daemon::commands`).
    ExecuteResult {
        /// Exited with status 0.
        Succeeded => "succeeded",
        /// Exited with another status, or by a signal.
        Failed => "failed",
        /// Could not be started (no such file, not executable…).
        NotStarted => "not_started",
        /// Still running at its time limit: killed.
        TimedOut => "timed_out",
        /// The queue of commands to start was full: not run.
        Dropped => "dropped",
    }
}

declare_labels! {
    /// Why a datagram got no reply (the engine's [`IgnoreReason`] plus the driver's own).
    DropReason {
        /// Undecodable datagram, or a request missing what RFC 2131 table 5 requires.
        Malformed => "malformed",
        UnsupportedMessageType => "unsupported_message_type",
        /// RFC 2131 §4.3.2: a wrong address from a non-authoritative server stays unanswered.
        NotAuthoritative => "not_authoritative",
        /// No subnet declaration covers the client's network.
        NoSubnet => "no_subnet",
        /// Every permitted pool is exhausted.
        PoolExhausted => "pool_exhausted",
        /// Another server's client: its server identifier, its lease, or the partner's
        /// load-balancing bucket (docs/spec/failover.md §11.3).
        NotOurs => "not_ours",
        /// A request for a lease the server has no record of (RFC 2131 §4.3.2).
        UnknownLease => "unknown_lease",
        /// `deny unknown-clients`, `deny booting`, `deny bootp`, a pool's permit list.
        Denied => "denied",
        /// `min-secs` not reached yet.
        MinSecs => "min_secs",
        /// A new lease or a DHCPDECLINE refused by the starvation defence (`engine::starvation`).
        RateLimited => "rate_limited",
        /// A DHCPDECLINE of an address bound or offered to another client: ignored, the
        /// binding kept (`engine::request::notices`).
        DeclineOtherClient => "decline_other_client",
        /// A retransmitted DISCOVER while the OFFER for its address waits for the ping-check
        /// (`engine::ping_check`); the pending OFFER answers it.
        PingCheckPending => "ping_check_pending",
        /// Every class of the client with a `lease limit` is full (`engine::billing`).
        NoAvailableBilling => "no_available_billing",
        /// The reply could not be encoded.
        EncodeFailed => "encode_failed",
        /// The lease log stopped: the reply that promised the lease was not sent.
        CommitFailed => "commit_failed",
        /// The kernel refused to send the reply.
        SendFailed => "send_failed",
    }
}

impl DropReason {
    /// The metric reason of an engine decision not to answer.
    pub fn of(reason: &IgnoreReason) -> Self {
        match reason {
            IgnoreReason::Malformed(_) => Self::Malformed,
            IgnoreReason::UnsupportedMessageType(_) => Self::UnsupportedMessageType,
            IgnoreReason::NotAuthoritative => Self::NotAuthoritative,
            IgnoreReason::UnknownSubnet => Self::NoSubnet,
            IgnoreReason::NoFreeAddress => Self::PoolExhausted,
            IgnoreReason::NotForUs => Self::NotOurs,
            IgnoreReason::UnknownLease => Self::UnknownLease,
            IgnoreReason::Denied => Self::Denied,
            IgnoreReason::TooEarly => Self::MinSecs,
            IgnoreReason::RateLimited(_) => Self::RateLimited,
            IgnoreReason::DeclineOfOtherClient => Self::DeclineOtherClient,
            IgnoreReason::PingCheckPending => Self::PingCheckPending,
            IgnoreReason::NoAvailableBilling(_) => Self::NoAvailableBilling,
        }
    }
}

impl ReceivedType {
    pub fn of(message: &Message) -> Self {
        match message.opts().msg_type() {
            None => Self::Bootp,
            Some(MessageType::Discover) => Self::Discover,
            Some(MessageType::Request) => Self::Request,
            Some(MessageType::Decline) => Self::Decline,
            Some(MessageType::Release) => Self::Release,
            Some(MessageType::Inform) => Self::Inform,
            Some(_) => Self::Other,
        }
    }
}

/// Every counter of the packet path.
#[derive(Debug)]
pub struct Metrics {
    /// Every counter below, one copy per thread ([`striped`]); also: received by message type,
    /// sent by message type, drops by reason, leases changed by source
    /// ([`crate::changes::ChangeSource`]).
    stripes: Arc<PacketStripes>,
    /// How long a worker holds a lease store shard's lock per received batch (DESIGN.md
    /// "Scaling the store").
    pub store_lock_hold: LockHold,
    /// Kernel entries withdrawn because a change outside the engine left them unbacked.
    pub kernel_withdrawals: Counter,
    /// Datagrams read from the sockets, decodable or not.
    pub packets_received: Counter,
    /// Replies the kernel accepted.
    pub replies_sent: Counter,
    /// Replies the kernel refused (the `send_failed` drop reason).
    pub send_errors: Counter,
    /// Records handed to the lease log and made durable.
    pub leases_committed: Counter,
    /// Replies dropped because their lease could not be made durable (the `commit_failed` drop
    /// reason).
    pub commit_failures: Counter,
    pub leases_expired: Counter,
    /// Exchange log lines suppressed by the flood limiter ([`crate::logging`]).
    pub log_lines_suppressed: Counter,
    /// ICMP messages read by the ping-check socket that answer none of its probes (other
    /// processes' pings, late or forged replies): counted and dropped.
    pub ping_replies_ignored: Counter,
    /// The dynamic DNS updater's counters, queue depth and latency ([`crate::ddns`]).
    pub ddns: Arc<crate::ddns::DdnsMetrics>,
    /// The JSON control API's answers and refusals ([`crate::control_api`]).
    pub control_api: Arc<crate::control_api::ControlApiMetrics>,
    /// The DHCP sockets whose kernel counters are exported, by interface.
    sockets: Mutex<Vec<(String, Arc<DhcpSocket>)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let stripes = Arc::new(PacketStripes::default());
        let counter = |slot| Counter {
            stripes: stripes.clone(),
            slot,
        };
        Self {
            kernel_withdrawals: counter(slots::KERNEL_WITHDRAWALS),
            store_lock_hold: LockHold {
                stripes: stripes.clone(),
            },
            packets_received: counter(slots::DATAGRAMS_RECEIVED),
            replies_sent: counter(slots::REPLIES_SENT),
            send_errors: counter(slots::DROPS + DropReason::SendFailed as usize),
            leases_committed: counter(slots::LEASES_COMMITTED),
            commit_failures: counter(slots::DROPS + DropReason::CommitFailed as usize),
            leases_expired: counter(slots::LEASES_EXPIRED),
            log_lines_suppressed: counter(slots::LOG_LINES_SUPPRESSED),
            ping_replies_ignored: counter(slots::PING_REPLIES_IGNORED),
            ddns: Arc::default(),
            control_api: Arc::default(),
            sockets: Mutex::default(),
            stripes,
        }
    }
}

impl Metrics {
    /// Counts a decoded request by its message type.
    pub fn count_received(&self, message: &Message) {
        self.stripes
            .add(slots::RECEIVED + ReceivedType::of(message) as usize, 1);
    }

    /// Counts a datagram that is not a decodable BOOTP/DHCP message.
    pub fn count_malformed(&self) {
        self.count_drop(DropReason::Malformed);
    }

    pub fn count_drop(&self, reason: DropReason) {
        self.stripes.add(slots::DROPS + reason as usize, 1);
    }

    /// Counts the replies of a lease batch that could not be made durable (the committer's
    /// dropped tokens; a token without a reply, such as an expiry record, is no drop).
    pub fn count_commit_failures<R>(&self, tokens: &[Option<R>]) {
        self.commit_failures
            .add(tokens.iter().filter(|token| token.is_some()).count() as u64);
    }

    /// Counts an engine decision: the reply type it sends, or why it sends nothing.
    /// RELEASE and DECLINE are answered by nothing and are not drops (RFC 2131 §4.3.4, §4.3.5).
    pub fn count_decision(&self, outcome: &Outcome) {
        let sent = match outcome {
            Outcome::Offered(_) => SentType::Offer,
            // RFC 2131 §4.3.5: DHCPINFORM is answered with a DHCPACK.
            Outcome::Acked(_) | Outcome::Informed => SentType::Ack,
            Outcome::Nacked => SentType::Nak,
            Outcome::BootReplied(_) => SentType::Bootreply,
            Outcome::LeaseQueried { answer: 11, .. } => SentType::Leaseunassigned,
            Outcome::LeaseQueried { answer: 13, .. } => SentType::Leaseactive,
            Outcome::LeaseQueried { .. } => SentType::Leaseunknown,
            Outcome::Released(_) | Outcome::Declined(_) => return,
            Outcome::Ignored(reason) => return self.count_drop(DropReason::of(reason)),
        };
        self.stripes.add(slots::SENT + sent as usize, 1);
    }

    /// Counts the end (or the start, [`PingResult::Sent`]) of a `ping-check` probe.
    pub fn count_ping(&self, result: PingResult) {
        self.stripes.add(slots::PING_CHECKS + result as usize, 1);
    }

    pub fn pings(&self, result: PingResult) -> u64 {
        self.stripes.sum(slots::PING_CHECKS + result as usize)
    }

    /// Counts how a command of an `execute` statement ended.
    pub fn count_execute(&self, result: ExecuteResult) {
        self.stripes.add(slots::EXECUTES + result as usize, 1);
    }

    pub fn executes(&self, result: ExecuteResult) -> u64 {
        self.stripes.sum(slots::EXECUTES + result as usize)
    }

    /// Counts `count` leases changed by `source`.
    pub fn count_lease_changes(&self, source: crate::changes::ChangeSource, count: usize) {
        self.stripes
            .add(slots::CHANGES + source as usize, count as u64);
    }

    pub fn lease_changes(&self, source: crate::changes::ChangeSource) -> u64 {
        self.stripes.sum(slots::CHANGES + source as usize)
    }

    pub fn received(&self, kind: ReceivedType) -> u64 {
        self.stripes.sum(slots::RECEIVED + kind as usize)
    }

    pub fn sent(&self, kind: SentType) -> u64 {
        self.stripes.sum(slots::SENT + kind as usize)
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.stripes.sum(slots::DROPS + reason as usize)
    }

    /// Exports the kernel counters of `socket` (drops before we read, receive queue).
    pub fn watch_socket(&self, interface: &str, socket: &Arc<DhcpSocket>) {
        if let Ok(mut sockets) = self.sockets.lock() {
            sockets.push((interface.to_string(), socket.clone()));
        }
    }

    /// The registry of the packet-path counters plus the scrape-time `collectors`.
    pub fn registry(self: &Arc<Self>, collectors: collectors::Sources) -> Registry {
        let mut registry = Registry::with_prefix("xdhcpd");
        registry.register_collector(Box::new(PacketPathCollector {
            metrics: self.clone(),
        }));
        self.ddns.register(&mut registry);
        self.control_api.register(&mut registry);
        registry.register_collector(Box::new(socket::SocketCollector {
            metrics: self.clone(),
        }));
        collectors.register(&mut registry);
        registry
    }

    fn sockets(&self) -> Vec<(String, Arc<DhcpSocket>)> {
        self.sockets
            .lock()
            .map(|sockets| sockets.clone())
            .unwrap_or_default()
    }
}

/// The packet path's counters at scrape time: each the sum of every thread's copy. The help
/// texts end with a full stop, as the registry wrote them when these were registered metrics.
#[derive(Debug)]
struct PacketPathCollector {
    metrics: Arc<Metrics>,
}

impl Collector for PacketPathCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let metrics = &self.metrics;
        let labelled = |key: &'static str, label: &'static str, value: u64| {
            (vec![(key, label.to_string())], value)
        };
        collectors::counters(
            &mut encoder,
            "packets_received",
            "DHCP requests decoded, by message type (option 53; bootp = none).",
            ReceivedType::ALL
                .iter()
                .map(|kind| labelled("type", kind.label(), metrics.received(*kind))),
        )?;
        collectors::counters(
            &mut encoder,
            "packets_sent",
            "DHCP replies handed to the send path, by message type.",
            SentType::ALL
                .iter()
                .map(|kind| labelled("type", kind.label(), metrics.sent(*kind))),
        )?;
        collectors::counters(
            &mut encoder,
            "drops",
            "datagrams or replies dropped, by reason.",
            DropReason::ALL
                .iter()
                .map(|reason| labelled("reason", reason.label(), metrics.drops(*reason))),
        )?;
        let (sum, count, buckets) = metrics.store_lock_hold.snapshot();
        encoder
            .encode_descriptor(
                "store_lock_hold_seconds",
                "time a worker holds the lease store's lock for one received batch.",
                None,
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        collectors::counters(
            &mut encoder,
            "lease_changes",
            "leases changed, by the source of the change (all take one path: crate::changes).",
            crate::changes::ChangeSource::ALL
                .iter()
                .map(|source| labelled("source", source.label(), metrics.lease_changes(*source))),
        )?;
        collectors::counters(
            &mut encoder,
            "ping_checks",
            "ping-check probes before an OFFER: sent, and how each ended (answered = address abandoned).",
            PingResult::ALL
                .iter()
                .map(|result| labelled("result", result.label(), metrics.pings(*result))),
        )?;
        collectors::counters(
            &mut encoder,
            "executes",
            "commands of dhcpd.conf `execute` statements, by how they ended.",
            ExecuteResult::ALL
                .iter()
                .map(|result| labelled("result", result.label(), metrics.executes(*result))),
        )?;
        let plain: [(&str, &str, &Counter); 8] = [
            (
                "kernel_withdrawals",
                "kernel renewal entries withdrawn after a change outside the engine (OMAPI, partner, expiry).",
                &metrics.kernel_withdrawals,
            ),
            (
                "datagrams_received",
                "UDP datagrams read from the DHCP sockets.",
                &metrics.packets_received,
            ),
            (
                "replies_kernel_accepted",
                "replies the kernel accepted for sending.",
                &metrics.replies_sent,
            ),
            (
                "leases_committed",
                "lease records made durable for a reply.",
                &metrics.leases_committed,
            ),
            (
                "leases_expired",
                "leases moved out of active by expiry.",
                &metrics.leases_expired,
            ),
            (
                "log_lines_suppressed",
                "exchange log lines suppressed by the flood limiter.",
                &metrics.log_lines_suppressed,
            ),
            (
                "ping_replies_ignored",
                "ICMP messages on the ping-check socket that answer none of its probes.",
                &metrics.ping_replies_ignored,
            ),
            (
                "send_errors",
                "replies the kernel refused (also drops{reason=\"send_failed\"}).",
                &metrics.send_errors,
            ),
        ];
        for (name, help, counter) in plain {
            ConstCounter::new(counter.get()).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                MetricType::Counter,
            )?)?;
        }
        Ok(())
    }
}

/// The Prometheus text exposition (format 0.0.4) of `registry`.
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::with_capacity(16 * 1024);
    prometheus_client::encoding::prometheus_text::encode(&mut text, registry)?;
    Ok(text)
}

/// Serves `registry` at any path of `listen` over HTTP, as tasks of the control plane
/// (`crate::control_plane`), until `token` is cancelled. Binds before returning, so a busy
/// port is a start-up error. A scraper that stalls holds only its own task.
pub fn serve(
    handle: &tokio::runtime::Handle,
    token: tokio_util::sync::CancellationToken,
    listen: SocketAddr,
    registry: Registry,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = crate::control_plane::bind_tcp(handle, listen)?;
    let registry = Arc::new(registry);
    Ok(handle.spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = token.cancelled() => return,
            };
            let Ok((stream, _)) = accepted else {
                // EMFILE and friends: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let registry = registry.clone();
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(SCRAPE_TIMEOUT, answer_scrape(stream, &registry)).await;
            });
        }
    }))
}

/// A scrape that has not been read and answered by then is dropped.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads (and ignores) one request and writes the exposition: every path is `/metrics`.
async fn answer_scrape(
    mut stream: tokio::net::TcpStream,
    registry: &Registry,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut request = [0u8; 1024];
    let _ = stream.read(&mut request).await?;
    let response = match render(registry) {
        Ok(body) => format!(
            "HTTP/1.0 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n{body}",
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            body.len()
        ),
        Err(_) => "HTTP/1.0 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n".into(),
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests;
