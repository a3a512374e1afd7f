//! Metrics and the Prometheus text endpoint (`--metrics-listen`, or `option xdhcpd.metrics-listen
//! "ADDR:PORT";` in dhcpd.conf).
//!
//! Two kinds of metric, both encoded by `prometheus-client`:
//! - counters bumped on the packet path ([`Metrics`]): received by message type, sent by message
//!   type, drops by reason. Every labelled counter is created up front, so a bump is one relaxed
//!   atomic add, never a label lookup;
//! - values read at scrape time ([`collectors`]): pool utilisation from the lease store, the
//!   group committer's batch and fsync histograms, the XDP per-CPU counters, failover state and
//!   the kernel's socket drop counters ([`socket`]).
//!
//! The endpoint is a small HTTP/1.0 responder on its own thread, so a slow scraper never touches
//! the packet path.

pub mod collectors;
pub mod socket;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dhcproto::v4::{Message, MessageType};
use prometheus_client::metrics::counter::Counter as PrometheusCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::engine::{IgnoreReason, Outcome};
use crate::net::socket::DhcpSocket;

/// One counter, shared with the registry that exports it (clones count into the same value).
#[derive(Clone, Debug, Default)]
pub struct Counter(PrometheusCounter);

impl Counter {
    pub fn add(&self, value: u64) {
        self.0.inc_by(value);
    }

    pub fn increment(&self) {
        self.0.inc();
    }

    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

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

type Labels = [(&'static str, &'static str); 1];

/// A labelled counter family with every label value created up front.
#[derive(Debug)]
struct LabelledCounters {
    family: Family<Labels, PrometheusCounter>,
    counters: Vec<Counter>,
}

impl LabelledCounters {
    fn new(key: &'static str, values: impl Iterator<Item = &'static str>) -> Self {
        let family = Family::<Labels, PrometheusCounter>::default();
        let counters = values
            .map(|value| Counter(family.get_or_create_owned(&[(key, value)])))
            .collect();
        Self { family, counters }
    }

    fn get(&self, index: usize) -> &Counter {
        &self.counters[index]
    }
}

/// Every counter of the packet path.
#[derive(Debug)]
pub struct Metrics {
    received: LabelledCounters,
    sent: LabelledCounters,
    drops: LabelledCounters,
    /// Leases changed, by source ([`crate::changes::ChangeSource`]).
    lease_changes: LabelledCounters,
    /// How long a worker holds the lease store's lock per received batch (DESIGN.md "Locks").
    pub store_lock_hold: Histogram,
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
    /// The dynamic DNS updater's counters, queue depth and latency ([`crate::ddns`]).
    pub ddns: Arc<crate::ddns::DdnsMetrics>,
    /// The DHCP sockets whose kernel counters are exported, by interface.
    sockets: Mutex<Vec<(String, Arc<DhcpSocket>)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let received = LabelledCounters::new("type", ReceivedType::ALL.iter().map(|t| t.label()));
        let sent = LabelledCounters::new("type", SentType::ALL.iter().map(|t| t.label()));
        let drops = LabelledCounters::new("reason", DropReason::ALL.iter().map(|r| r.label()));
        let lease_changes = LabelledCounters::new(
            "source",
            crate::changes::ChangeSource::ALL
                .iter()
                .map(|source| source.label()),
        );
        let send_errors = drops.get(DropReason::SendFailed as usize).clone();
        let commit_failures = drops.get(DropReason::CommitFailed as usize).clone();
        Self {
            received,
            sent,
            drops,
            lease_changes,
            kernel_withdrawals: Counter::default(),
            store_lock_hold: Histogram::new(exponential_buckets(1e-6, 4.0, 11)),
            packets_received: Counter::default(),
            replies_sent: Counter::default(),
            send_errors,
            leases_committed: Counter::default(),
            commit_failures,
            leases_expired: Counter::default(),
            log_lines_suppressed: Counter::default(),
            ddns: Arc::default(),
            sockets: Mutex::default(),
        }
    }
}

impl Metrics {
    /// Counts a decoded request by its message type.
    pub fn count_received(&self, message: &Message) {
        self.received
            .get(ReceivedType::of(message) as usize)
            .increment();
    }

    /// Counts a datagram that is not a decodable BOOTP/DHCP message.
    pub fn count_malformed(&self) {
        self.count_drop(DropReason::Malformed);
    }

    pub fn count_drop(&self, reason: DropReason) {
        self.drops.get(reason as usize).increment();
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
            Outcome::Released(_) | Outcome::Declined(_) => return,
            Outcome::Ignored(reason) => return self.count_drop(DropReason::of(reason)),
        };
        self.sent.get(sent as usize).increment();
    }

    /// Counts `count` leases changed by `source`.
    pub fn count_lease_changes(&self, source: crate::changes::ChangeSource, count: usize) {
        self.lease_changes.get(source as usize).add(count as u64);
    }

    pub fn lease_changes(&self, source: crate::changes::ChangeSource) -> u64 {
        self.lease_changes.get(source as usize).get()
    }

    pub fn received(&self, kind: ReceivedType) -> u64 {
        self.received.get(kind as usize).get()
    }

    pub fn sent(&self, kind: SentType) -> u64 {
        self.sent.get(kind as usize).get()
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops.get(reason as usize).get()
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
        registry.register(
            "packets_received",
            "DHCP requests decoded, by message type (option 53; bootp = none)",
            self.received.family.clone(),
        );
        registry.register(
            "packets_sent",
            "DHCP replies handed to the send path, by message type",
            self.sent.family.clone(),
        );
        registry.register(
            "drops",
            "datagrams or replies dropped, by reason",
            self.drops.family.clone(),
        );
        registry.register(
            "store_lock_hold_seconds",
            "time a worker holds the lease store's lock for one received batch",
            self.store_lock_hold.clone(),
        );
        registry.register(
            "lease_changes",
            "leases changed, by the source of the change (all take one path: crate::changes)",
            self.lease_changes.family.clone(),
        );
        let plain: [(&str, &str, &Counter); 7] = [
            (
                "kernel_withdrawals",
                "kernel renewal entries withdrawn after a change outside the engine (OMAPI, partner, expiry)",
                &self.kernel_withdrawals,
            ),
            (
                "datagrams_received",
                "UDP datagrams read from the DHCP sockets",
                &self.packets_received,
            ),
            (
                "replies_kernel_accepted",
                "replies the kernel accepted for sending",
                &self.replies_sent,
            ),
            (
                "leases_committed",
                "lease records made durable for a reply",
                &self.leases_committed,
            ),
            (
                "leases_expired",
                "leases moved out of active by expiry",
                &self.leases_expired,
            ),
            (
                "log_lines_suppressed",
                "exchange log lines suppressed by the flood limiter",
                &self.log_lines_suppressed,
            ),
            (
                "send_errors",
                "replies the kernel refused (also drops{reason=\"send_failed\"})",
                &self.send_errors,
            ),
        ];
        for (name, help, counter) in plain {
            registry.register(name, help, counter.0.clone());
        }
        self.ddns.register(&mut registry);
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

/// The Prometheus text exposition (format 0.0.4) of `registry`.
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::with_capacity(16 * 1024);
    prometheus_client::encoding::prometheus_text::encode(&mut text, registry)?;
    Ok(text)
}

/// Serves `registry` at any path of `listen` over HTTP until the process exits.
pub fn serve(
    listen: SocketAddr,
    registry: Registry,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let listener = TcpListener::bind(listen)?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request);
                let _ = match render(&registry) {
                    Ok(body) => write!(
                        stream,
                        "HTTP/1.0 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n{body}",
                        prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                        body.len()
                    ),
                    Err(_) => write!(
                        stream,
                        "HTTP/1.0 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
                    ),
                };
            }
        })
}

#[cfg(test)]
mod tests;
