//! The driver of [`super::plan`]: a bounded queue of operations and one task, on its own thread,
//! that sends each step's UPDATE and feeds the answer back to the plan.
//!
//! Never on the packet path: [`Updater::submit`] takes a short lock to push onto the queue and
//! returns; when the queue is full the oldest operation is dropped and counted
//! (`xdhcpd_ddns_dropped_total`). A server that does not answer delays only the updater: the
//! step is retried with exponential back-off, up to [`UpdaterSettings::max_attempts`] rounds
//! over the zone's servers, then the operation is given up and counted. Operations run one at
//! a time, in submission order, so that the add and the removal of one name never overtake
//! each other — the price is that a dead server holds up the queue behind it (which then
//! overflows, counted) until it answers or the retries run out.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::metrics::{DdnsMetrics, OperationResult, UpdateResult};
use super::plan::{Next, Operation, Outcome, Side, Step};
use super::transport::{exchange, ExchangeError};
use super::wire::{decode_answer, encode, AnswerError};
use super::zones::Zones;

/// How the updater queues and retries.
#[derive(Clone, Debug)]
pub struct UpdaterSettings {
    /// Operations waiting at most; beyond, the oldest is dropped.
    pub queue_capacity: usize,
    /// How long one exchange with one server may take.
    pub attempt_timeout: Duration,
    /// The first wait before a step is retried; doubled after each round, up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Rounds over the zone's servers before a step is given up.
    pub max_attempts: u32,
}

impl Default for UpdaterSettings {
    fn default() -> Self {
        Self {
            queue_capacity: 4096,
            attempt_timeout: Duration::from_secs(3),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            max_attempts: 8,
        }
    }
}

/// Why an operation ended without an outcome from the servers.
#[derive(Debug)]
pub enum Abandoned {
    /// No `zone` declaration covers the step's name.
    NoZone { step: Step, name: String },
    /// The step's message could not be built or encoded.
    Encode { step: Step, error: String },
    /// No server answered `step` within the retries.
    NoAnswer { step: Step, attempts: u32 },
    /// An answer to `step` was refused (TSIG, malformed).
    BadAnswer { step: Step, error: AnswerError },
    /// The updater stopped before the operation finished.
    Stopped,
}

/// An operation the updater is done with.
#[derive(Debug)]
pub struct Finished {
    pub operation: Operation,
    pub result: Result<Outcome, Abandoned>,
}

struct Shared {
    queue: Mutex<VecDeque<Operation>>,
    capacity: usize,
    wake: Notify,
    stop_wake: Notify,
    stopping: AtomicBool,
    zones: ArcSwap<Zones>,
    metrics: Arc<DdnsMetrics>,
}

/// The handle the daemon keeps; cheap to clone.
#[derive(Clone)]
pub struct Updater {
    shared: Arc<Shared>,
}

impl Updater {
    /// Starts the updater as a task of the control plane's runtime (`handle`,
    /// `crate::control_plane`). Each finished operation is sent to `finished` if given; a full
    /// channel holds the updater back (`control_plane::blocking`), it never grows.
    pub fn spawn(
        handle: &tokio::runtime::Handle,
        zones: Zones,
        settings: UpdaterSettings,
        metrics: Arc<DdnsMetrics>,
        finished: Option<std::sync::mpsc::SyncSender<Finished>>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            capacity: settings.queue_capacity.max(1),
            wake: Notify::new(),
            stop_wake: Notify::new(),
            stopping: AtomicBool::new(false),
            zones: ArcSwap::from_pointee(zones),
            metrics,
        });
        let worker = Worker {
            shared: shared.clone(),
            settings,
            finished,
        };
        let task = handle.spawn(worker.run());
        (Self { shared }, task)
    }

    /// Queues `operation`; returns false when it has nothing to update. Never blocks beyond a
    /// short lock; a full queue drops its oldest operation (counted).
    pub fn submit(&self, operation: Operation) -> bool {
        if operation.first_step().is_none() {
            return false;
        }
        let Ok(mut queue) = self.shared.queue.lock() else {
            return false;
        };
        if queue.len() >= self.shared.capacity {
            queue.pop_front();
            self.shared.metrics.dropped.inc();
        }
        queue.push_back(operation);
        self.shared.metrics.queue_depth.set(queue.len() as i64);
        drop(queue);
        self.shared.wake.notify_one();
        true
    }

    /// Replaces the zones (a configuration reload).
    pub fn set_zones(&self, zones: Zones) {
        self.shared.zones.store(Arc::new(zones));
    }

    /// Operations waiting, not counting the one in progress.
    pub fn queued(&self) -> usize {
        self.shared
            .queue
            .lock()
            .map(|queue| queue.len())
            .unwrap_or(0)
    }

    /// Asks the thread to stop: the operation in progress ends at its next wait, queued ones
    /// are not sent.
    pub fn stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        self.shared.stop_wake.notify_one();
    }
}

struct Worker {
    shared: Arc<Shared>,
    settings: UpdaterSettings,
    finished: Option<std::sync::mpsc::SyncSender<Finished>>,
}

impl Worker {
    fn stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::SeqCst)
    }

    async fn run(self) {
        while !self.stopping() {
            let next = self.shared.queue.lock().ok().and_then(|mut queue| {
                let next = queue.pop_front();
                self.shared.metrics.queue_depth.set(queue.len() as i64);
                next
            });
            let Some(operation) = next else {
                self.shared.wake.notified().await;
                continue;
            };
            let finished = self.perform(operation).await;
            let counted = match &finished.result {
                Ok(Outcome { forward, reverse }) => {
                    let sides = [*forward, *reverse];
                    if sides.iter().any(|side| matches!(side, Side::Conflict(_))) {
                        OperationResult::Conflict
                    } else if sides.iter().any(|side| matches!(side, Side::Failed { .. })) {
                        OperationResult::Failed
                    } else {
                        OperationResult::Done
                    }
                }
                Err(Abandoned::BadAnswer { .. }) => OperationResult::Failed,
                Err(_) => OperationResult::GaveUp,
            };
            self.shared.metrics.count_operation(counted);
            log_finished(&finished);
            if let Some(sink) = &self.finished {
                let _ = crate::control_plane::blocking(|| sink.send(finished).is_ok());
            }
        }
    }

    async fn perform(&self, mut operation: Operation) -> Finished {
        let Some(mut step) = operation.first_step() else {
            return Finished {
                result: Ok(Outcome {
                    forward: Side::Untouched,
                    reverse: Side::Untouched,
                }),
                operation,
            };
        };
        loop {
            let rcode = match self.send_step(&operation, step).await {
                Ok(rcode) => rcode,
                Err(abandoned) => {
                    return Finished {
                        operation,
                        result: Err(abandoned),
                    }
                }
            };
            match operation.next(step, rcode) {
                Next::Send(next) => step = next,
                Next::Finished(outcome) => {
                    return Finished {
                        operation,
                        result: Ok(outcome),
                    }
                }
            }
        }
    }

    /// Sends one step until a server answers it; returns the answer's response code.
    async fn send_step(&self, operation: &Operation, step: Step) -> Result<u16, Abandoned> {
        let metrics = &self.shared.metrics;
        let Some(message) = operation.message(step) else {
            metrics.count_update(UpdateResult::EncodeFailed);
            return Err(Abandoned::Encode {
                step,
                error: "the binding lacks what the step needs".into(),
            });
        };
        let mut backoff = self.settings.retry_initial;
        for attempt in 1..=self.settings.max_attempts.max(1) {
            if self.stopping() {
                return Err(Abandoned::Stopped);
            }
            // Looked up on each round: a reload may have fixed the zones meanwhile.
            let zones = self.shared.zones.load();
            let Some(zone) = zones.find(&message.name) else {
                metrics.count_update(UpdateResult::NoZone);
                return Err(Abandoned::NoZone {
                    step,
                    name: message.name.clone(),
                });
            };
            for server in &zone.servers {
                let id: u16 = rand::random();
                let mut request = match encode(&message, &zone.name, id) {
                    Ok(request) => request,
                    Err(error) => {
                        metrics.count_update(UpdateResult::EncodeFailed);
                        return Err(Abandoned::Encode {
                            step,
                            error: error.to_string(),
                        });
                    }
                };
                let key = zone.key.as_deref();
                let mut request_mac = Vec::new();
                if let Some(key) = key {
                    match key.sign(&mut request, unix_now()) {
                        Some(mac) => request_mac = mac,
                        None => {
                            metrics.count_update(UpdateResult::EncodeFailed);
                            return Err(Abandoned::Encode {
                                step,
                                error: "could not sign".into(),
                            });
                        }
                    }
                }
                let started = Instant::now();
                let answer = exchange(*server, &request, self.settings.attempt_timeout, |bytes| {
                    decode_answer(bytes, id, key, &request_mac, unix_now())
                })
                .await;
                match answer {
                    Ok(answer) => {
                        metrics.latency.observe(started.elapsed().as_secs_f64());
                        metrics.count_update(UpdateResult::of_rcode(answer.rcode));
                        return Ok(answer.rcode);
                    }
                    Err(ExchangeError::Answer(error)) => {
                        metrics.count_update(UpdateResult::of_answer_error(&error));
                        return Err(Abandoned::BadAnswer { step, error });
                    }
                    Err(ExchangeError::Timeout | ExchangeError::Io(_)) => {
                        metrics.count_update(UpdateResult::Timeout);
                    }
                }
            }
            if attempt < self.settings.max_attempts {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = self.shared.stop_wake.notified() => return Err(Abandoned::Stopped),
                }
                backoff = (backoff * 2).min(self.settings.retry_max);
            }
        }
        Err(Abandoned::NoAnswer {
            step,
            attempts: self.settings.max_attempts,
        })
    }
}

/// TSIG's clock (RFC 8945 §5.2.3 compares it with the server's).
fn unix_now() -> u64 {
    u64::from(crate::clock::unix_now())
}

/// ISC's log lines, in substance (server/ddns.c): one line per finished operation.
fn log_finished(finished: &Finished) {
    let binding = &finished.operation.binding;
    let name = binding.fwd_name.as_deref().unwrap_or("-");
    let what = match finished.operation.kind {
        super::plan::Kind::Add => "add",
        super::plan::Kind::Remove => "remove",
    };
    match &finished.result {
        Ok(Outcome { forward, reverse }) => {
            if matches!(forward, Side::Conflict(_)) {
                tracing::warn!(
                    "DDNS {what} {name} -> {}: FAILED: the name belongs to another client (RFC 4703 conflict)",
                    binding.address
                );
            } else if matches!(forward, Side::Failed { .. })
                || matches!(reverse, Side::Failed { .. })
            {
                tracing::warn!(
                    "DDNS {what} {name} -> {}: forward {forward:?}, reverse {reverse:?}",
                    binding.address
                );
            } else {
                tracing::info!(
                    "DDNS {what} {name} -> {}: forward {forward:?}, reverse {reverse:?}",
                    binding.address
                );
            }
        }
        Err(abandoned) => tracing::warn!(
            "DDNS {what} {name} -> {}: given up: {abandoned:?}",
            binding.address
        ),
    }
}

#[cfg(test)]
mod tests;
