//! What the updater counts, exported with the daemon's other metrics (`crate::metrics`):
//! `xdhcpd_ddns_updates_total{result}` (each UPDATE message), `xdhcpd_ddns_operations_total
//! {result}` (each lease's add or removal), `xdhcpd_ddns_dropped_total` (queue overflow),
//! `xdhcpd_ddns_queue_depth` and `xdhcpd_ddns_update_latency_seconds`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::plan::rcode;
use super::tsig::TsigFailure;
use super::wire::AnswerError;

/// The result of one UPDATE message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpdateResult {
    /// NOERROR: the update was applied.
    Success,
    /// YXDOMAIN, YXRRSET, NXDOMAIN, NXRRSET: a prerequisite did not hold — the expected step
    /// of ISC's dance (name in use) or a conflict (another client's guard).
    PrerequisiteFailed,
    /// REFUSED, NOTAUTH, NOTZONE: the server does not take updates for this zone from us.
    Refused,
    /// FORMERR, SERVFAIL, NOTIMP and other codes.
    ServerError,
    /// The server did not accept our TSIG (its answer's TSIG error BADSIG, BADKEY, BADTIME).
    TsigRejected,
    /// The answer's TSIG is missing or does not verify (RFC 8945 §5.3): it was discarded.
    BadAnswerSignature,
    /// The answer could not be decoded or was no answer to our request.
    MalformedAnswer,
    /// No server of the zone answered in time (the message is retried).
    Timeout,
    /// No `zone` declaration covers the name: nothing was sent.
    NoZone,
    /// The message could not be encoded (an invalid name): nothing was sent.
    EncodeFailed,
}

impl UpdateResult {
    pub const ALL: [UpdateResult; 10] = [
        Self::Success,
        Self::PrerequisiteFailed,
        Self::Refused,
        Self::ServerError,
        Self::TsigRejected,
        Self::BadAnswerSignature,
        Self::MalformedAnswer,
        Self::Timeout,
        Self::NoZone,
        Self::EncodeFailed,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::PrerequisiteFailed => "prerequisite_failed",
            Self::Refused => "refused",
            Self::ServerError => "server_error",
            Self::TsigRejected => "tsig_rejected",
            Self::BadAnswerSignature => "bad_answer_signature",
            Self::MalformedAnswer => "malformed_answer",
            Self::Timeout => "timeout",
            Self::NoZone => "no_zone",
            Self::EncodeFailed => "encode_failed",
        }
    }

    pub fn of_rcode(code: u16) -> Self {
        match code {
            rcode::NOERROR => Self::Success,
            rcode::YXDOMAIN | rcode::YXRRSET | rcode::NXDOMAIN | rcode::NXRRSET => {
                Self::PrerequisiteFailed
            }
            rcode::REFUSED | rcode::NOTAUTH | rcode::NOTZONE => Self::Refused,
            _ => Self::ServerError,
        }
    }

    pub fn of_answer_error(error: &AnswerError) -> Self {
        match error {
            AnswerError::Tsig(TsigFailure::ServerRejected(_)) => Self::TsigRejected,
            AnswerError::Tsig(_) => Self::BadAnswerSignature,
            AnswerError::Malformed(_)
            | AnswerError::WrongId { .. }
            | AnswerError::NotAnUpdateAnswer => Self::MalformedAnswer,
        }
    }
}

/// How a lease's add or removal ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperationResult {
    /// Every side the operation was for is done.
    Done,
    /// The name belongs to another client (RFC 4703 conflict): left alone.
    Conflict,
    /// A step was answered with an error, or the answer was refused.
    Failed,
    /// No server answered within the retries, or no zone covers a name.
    GaveUp,
}

impl OperationResult {
    pub const ALL: [OperationResult; 4] = [Self::Done, Self::Conflict, Self::Failed, Self::GaveUp];

    pub const fn label(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Conflict => "conflict",
            Self::Failed => "failed",
            Self::GaveUp => "gave_up",
        }
    }
}

type Labels = [(&'static str, &'static str); 1];

/// The updater's metrics; every label value is created up front.
#[derive(Debug)]
pub struct DdnsMetrics {
    updates_family: Family<Labels, Counter>,
    updates: Vec<Counter>,
    operations_family: Family<Labels, Counter>,
    operations: Vec<Counter>,
    /// Operations dropped because the queue was full (the oldest goes).
    pub dropped: Counter,
    pub queue_depth: Gauge,
    /// From sending a message to accepting its answer.
    pub latency: Histogram,
}

impl Default for DdnsMetrics {
    fn default() -> Self {
        let updates_family = Family::<Labels, Counter>::default();
        let updates = UpdateResult::ALL
            .iter()
            .map(|result| updates_family.get_or_create_owned(&[("result", result.label())]))
            .collect();
        let operations_family = Family::<Labels, Counter>::default();
        let operations = OperationResult::ALL
            .iter()
            .map(|result| operations_family.get_or_create_owned(&[("result", result.label())]))
            .collect();
        Self {
            updates_family,
            updates,
            operations_family,
            operations,
            dropped: Counter::default(),
            queue_depth: Gauge::default(),
            // 1 ms … ~16 s.
            latency: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
        }
    }
}

impl DdnsMetrics {
    pub fn count_update(&self, result: UpdateResult) {
        self.updates[result as usize].inc();
    }

    pub fn updates(&self, result: UpdateResult) -> u64 {
        self.updates[result as usize].get()
    }

    pub fn count_operation(&self, result: OperationResult) {
        self.operations[result as usize].inc();
    }

    pub fn operations(&self, result: OperationResult) -> u64 {
        self.operations[result as usize].get()
    }

    /// Registers the metrics in `registry` (prefix `xdhcpd_` from the caller's registry).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "ddns_updates",
            "DNS UPDATE messages by result (RFC 2136 response code, TSIG, timeout)",
            self.updates_family.clone(),
        );
        registry.register(
            "ddns_operations",
            "dynamic DNS adds and removals of leases by result",
            self.operations_family.clone(),
        );
        registry.register(
            "ddns_dropped",
            "dynamic DNS operations dropped because the updater's queue was full",
            self.dropped.clone(),
        );
        registry.register(
            "ddns_queue_depth",
            "dynamic DNS operations waiting in the updater's queue",
            self.queue_depth.clone(),
        );
        registry.register(
            "ddns_update_latency_seconds",
            "time from sending a DNS UPDATE to accepting its answer",
            self.latency.clone(),
        );
    }
}
