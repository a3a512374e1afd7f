//! The packet workers: receive a batch, decide it shard by shard under the store's locks
//! ([`decide_batch`]), then send each reply now or hand it to the group commit behind its lease
//! records ([`dispatch`]). Everything a decision changes goes through `crate::changes::apply`.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use super::{unix_now, PendingReply, Shared};
use crate::engine::{Decision, Destination, Engine, Outcome, Request};
use crate::lease::record::UnixTime;
use crate::net::interfaces::Interface;
use crate::net::socket::{DhcpSocket, ReceiveBatch, SendBatch, Target};

/// One worker: receive a batch, decide each packet, send or hand over to the committer.
pub(super) fn worker(
    shared: &Shared,
    socket: &Arc<DhcpSocket>,
    interface: &Interface,
    mut role: super::crew::Role,
    signals: &crate::signals::Signals,
) {
    crate::lease::commit::tight_timer_slack();
    let mut incoming = ReceiveBatch::new();
    let mut outgoing = SendBatch::default();
    let mut messages = Vec::with_capacity(crate::net::socket::BATCH);
    let mut decisions = Vec::with_capacity(crate::net::socket::BATCH);
    let mut scratch = crate::net::decode::DecodeScratch::default();
    // Whether the engine in force declares a subnet for this interface, worked out again only
    // when a reload swaps the engine.
    let mut subnet_known: Option<(Arc<Engine>, bool)> = None;
    let mut coalescing = ReceiveCoalescing::new(shared.receive_coalesce);
    while !signals.shutdown_requested() {
        role.before_receive(&|| signals.shutdown_requested());
        coalescing.before_receive();
        let received = socket.receive_batch(&mut incoming);
        let count = received.as_ref().map_or(0, |&count| count);
        coalescing.after_receive(count);
        role.after_receive(count);
        let received = match received {
            Ok(0) => continue,
            Ok(count) => count,
            Err(error) => {
                tracing::error!("receive on {}: {error}", interface.name);
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let now = unix_now();
        messages.clear();
        shared.metrics.packets_received.add(received as u64);
        // `packet(…)` in the configuration reads the datagram as received.
        let reads_packet = shared.engine.load().config().reads_packet;
        for (payload, source) in incoming.iter() {
            match crate::net::decode::decode_message_with(payload, &mut scratch) {
                Ok(message) => {
                    shared.metrics.count_received(&message);
                    // Renewal-shaped requests keep their bytes: the XDP template needs them.
                    let raw = (reads_packet
                        || shared
                            .fast_path
                            .as_ref()
                            .is_some_and(|fast_path| fast_path.wants_payload(&message)))
                    .then(|| payload.to_vec());
                    messages.push((message, source, raw))
                }
                Err(error) => {
                    shared.metrics.count_malformed();
                    tracing::debug!("dropped a datagram from {source}: {error}");
                }
            }
        }
        if messages.is_empty() {
            continue;
        }
        // ISC listens only on interfaces with a subnet declaration ("** Ignoring requests on
        // IFACE", common/discover.c). A reload may take an interface's subnet away (it refuses
        // to take all of them): its requests, relayed ones too, are then ignored as ISC would.
        let engine = shared.engine.load();
        let has_subnet = match &subnet_known {
            Some((known, has_subnet)) if Arc::ptr_eq(known, &engine) => *has_subnet,
            _ => {
                let has_subnet = engine.config().subnet_for(interface.address).is_some();
                subnet_known = Some((engine, has_subnet));
                has_subnet
            }
        };
        if !has_subnet {
            for _ in &messages {
                shared
                    .metrics
                    .count_drop(crate::metrics::DropReason::NoSubnet);
            }
            continue;
        }
        decisions.clear();
        decisions.resize_with(messages.len(), || None);
        // Kernel entries to take out once the store is unlocked: no BPF syscall under it.
        let mut withdrawals = Vec::new();
        if decide_batch(
            shared,
            interface,
            now,
            &messages,
            &mut decisions,
            &mut withdrawals,
        )
        .is_err()
        {
            return;
        }
        if let Some(fast_path) = &shared.fast_path {
            for &index in &withdrawals {
                fast_path.withdraw(&messages[index].0);
            }
        }
        for (decided, (message, _, _)) in decisions.drain(..).zip(&messages) {
            let Some((decision, publish, dns)) = decided else {
                continue;
            };
            dispatch(
                shared,
                socket,
                interface,
                message,
                decision,
                &dns,
                &mut outgoing,
            );
            // Published by the fast-path thread once the record submitted above is durable.
            if let (Some(fast_path), Some(publish)) = (&shared.fast_path, publish) {
                fast_path.queue(publish);
            }
        }
        if !outgoing.is_empty() {
            let queued = outgoing.len() as u64;
            match socket.send_batch(&mut outgoing) {
                Ok(sent) => {
                    shared.metrics.replies_sent.add(sent as u64);
                    shared.metrics.send_errors.add(queued - sent as u64);
                }
                Err(_) => shared.metrics.send_errors.add(queued),
            }
        }
    }
}

/// Receive coalescing (`--receive-coalesce-us`): at a few thousand requests a second, each
/// request arrives at an idle worker, and the wake-up costs more CPU than the decision
/// (BENCHMARKS.md, issue 14: `finish_task_switch` led the profile). A worker whose last
/// receive was a small batch that had not waited long for its first datagram — requests are
/// arriving faster than `wait` apart — waits `wait` before the next receive, so that one
/// wake-up takes the requests of that time, as a NIC's interrupt moderation does. A request
/// after a quiet spell finds the worker blocked in its receive and is taken at once; under
/// heavy load batches are full and nothing waits.
struct ReceiveCoalescing {
    wait: Duration,
    /// When the current receive call began.
    receive_began: std::time::Instant,
    /// Whether the next receive waits `wait` first.
    coalesce_next: bool,
}

/// Batches smaller than this count as "small" (fewer than a quarter of [`BATCH`]).
///
/// [`BATCH`]: crate::net::socket::BATCH
pub(super) const SMALL_BATCH: usize = crate::net::socket::BATCH / 4;

#[expect(
    clippy::disallowed_methods,
    reason = "the worker's own pacing of its receive calls, not a protocol decision"
)]
fn monotonic_now() -> std::time::Instant {
    std::time::Instant::now()
}

impl ReceiveCoalescing {
    fn new(wait: Duration) -> Self {
        Self {
            wait,
            receive_began: monotonic_now(),
            coalesce_next: false,
        }
    }

    fn before_receive(&mut self) {
        if self.coalesce_next {
            std::thread::sleep(self.wait);
        }
        self.receive_began = monotonic_now();
    }

    fn after_receive(&mut self, received: usize) {
        self.coalesce_next = coalesces(self.wait, received, self.receive_began.elapsed());
    }
}

/// Whether a receive of `received` datagrams that blocked for `blocked` is followed by a
/// wait of `wait` ([`ReceiveCoalescing`]).
fn coalesces(wait: Duration, received: usize, blocked: Duration) -> bool {
    !wait.is_zero() && (1..SMALL_BATCH).contains(&received) && blocked < wait
}

/// A received message: the decoded request, its source, and its bytes when the XDP fast path
/// may make a template of its answer.
type Received = (dhcproto::v4::Message, SocketAddrV4, Option<Vec<u8>>);

/// A decision, the kernel publication prepared with it, and the DDNS name and settings of each
/// lease it binds.
type Decided = (
    Decision,
    Option<crate::xdp::runtime::Publish>,
    Vec<(Ipv4Addr, crate::ddns::lease::DdnsSettings)>,
);

/// Decides a received batch one store shard at a time: each request goes to the shard of the
/// shared network whose leases it needs ([`Engine::store_network`], asked before anything is
/// locked), and each shard is locked once, its requests decided in arrival order. A reload
/// between the choice and the lock (the layout or the engine changed) sends the rest of the
/// batch back to be grouped again under the new config. `decisions[i]` receives message `i`'s;
/// `withdrawals` the messages whose kernel entries must go once every shard is let go.
fn decide_batch(
    shared: &Shared,
    interface: &Interface,
    now: UnixTime,
    messages: &[Received],
    decisions: &mut [Option<Decided>],
    withdrawals: &mut Vec<usize>,
) -> Result<(), crate::lease::shards::Poisoned> {
    let request = |index: usize| {
        let (message, source, raw) = &messages[index];
        Request {
            message,
            source: *source,
            interface_address: Some(interface.address),
            raw: raw.as_deref(),
        }
    };
    let mut shard_of = vec![0usize; messages.len()];
    // A DHCPLEASEQUERY (RFC 4388) may need every shard (by client identifier or hardware
    // address): it is answered first, holding no shard, each shard locked in turn by the
    // lookup. It changes no lease.
    let (lease_queries, mut pending): (Vec<usize>, Vec<usize>) =
        (0..messages.len()).partition(|&index| {
            messages[index].0.opts().msg_type() == Some(dhcproto::v4::MessageType::LeaseQuery)
        });
    if !lease_queries.is_empty() {
        let engine = shared.engine.load();
        let snapshot = shared.snapshot();
        for index in lease_queries {
            let decision = engine.lease_query(now, &snapshot, &request(index), &*shared.leases);
            decisions[index] = Some((decision, None, Vec::new()));
        }
    }
    while !pending.is_empty() {
        let engine = shared.engine.load();
        let layout = shared.leases.layout();
        for &index in &pending {
            shard_of[index] = layout.of_network(engine.store_network(&request(index)));
        }
        // Stable: requests of one shard keep their arrival order.
        pending.sort_by_key(|&index| shard_of[index]);
        let mut regroup = Vec::new();
        for group in pending.chunk_by(|&a, &b| shard_of[a] == shard_of[b]) {
            if !regroup.is_empty() {
                regroup.extend_from_slice(group);
                continue;
            }
            let mut store = shared.leases.lock(shard_of[group[0]])?;
            // A reload swaps layout and engine while it holds every shard: once this shard is
            // held, both are what the choice was made with, or the choice is made again.
            if !shared.leases.is_current(&layout) || !Arc::ptr_eq(&shared.engine.load(), &engine) {
                drop(store);
                regroup.extend_from_slice(group);
                continue;
            }
            let locked = crate::clock::monotonic();
            // What the engine reads of the failover drivers and OMAPI, copied for the group
            // under the shard's lock (a driver changes leases under it, then publishes).
            let snapshot = shared.snapshot();
            // The buckets are plain data: a panic elsewhere mid-update leaves them usable.
            let mut starvation = shared
                .starvation
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // With `lease limit`s, the other shards' billed leases, held (after the shard)
            // until this shard's own billing changes are reported into them below: no other
            // worker counts a class without the leases billed here (`lease::shards`).
            let mut billing = engine
                .config()
                .billing_classes
                .then(|| shared.leases.billing());
            let no_billing = crate::lease::billing::BillingTotals::default();
            for &index in group {
                let (message, _, raw) = &messages[index];
                let mut decision = engine.handle_billed(
                    now,
                    &snapshot,
                    &request(index),
                    &mut store,
                    &mut starvation,
                    billing.as_deref().unwrap_or(&no_billing),
                );
                // The DDNS name and settings of each lease the decision binds.
                let dns: Vec<(Ipv4Addr, crate::ddns::lease::DdnsSettings)> =
                    match (&shared.ddns, decision.outcome) {
                        (Some(_), Outcome::Acked(_) | Outcome::BootReplied(_)) => decision
                            .commit
                            .iter()
                            .filter_map(|lease| {
                                engine
                                    .ddns_settings(now, &snapshot, &request(index), lease.address)
                                    .map(|settings| (lease.address, settings))
                            })
                            .collect(),
                        _ => Vec::new(),
                    };
                let mut publish = None;
                if let Some(fast_path) = &shared.fast_path {
                    if let Some(raw) = raw {
                        publish = fast_path.prepare(raw, message, &mut decision, &mut store);
                    }
                    // A binding userspace changed (ACK not republished, release, decline) or
                    // refused (NAK) leaves the kernel's copy stale. OFFERs and INFORMs change
                    // no binding: no map lookup for them on the DISCOVER path.
                    if publish.is_none()
                        && (!decision.commit.is_empty()
                            || matches!(decision.outcome, Outcome::Nacked))
                    {
                        withdrawals.push(index);
                    }
                }
                decisions[index] = Some((decision, publish, dns));
            }
            if let Some(mut totals) = billing.take() {
                crate::lease::shards::ShardedStore::report_billing(&mut totals, &mut store);
            }
            drop(starvation);
            drop(store);
            shared
                .metrics
                .store_lock_hold
                .observe(locked.elapsed().as_secs_f64());
        }
        pending = regroup;
    }
    Ok(())
}

/// Counts a decision, then sends its reply now (nothing to make durable) or queues it behind its
/// lease records in the group committer.
fn dispatch(
    shared: &Shared,
    socket: &Arc<DhcpSocket>,
    interface: &Interface,
    message: &dhcproto::v4::Message,
    decision: Decision,
    dns_settings: &[(Ipv4Addr, crate::ddns::lease::DdnsSettings)],
    outgoing: &mut SendBatch,
) {
    let metrics = &shared.metrics;
    // What `log` and `execute` statements produced (dhcp-eval(5)): logged now, commands
    // started off the packet path.
    for executed in decision
        .reply
        .as_ref()
        .map(|reply| &reply.executed)
        .into_iter()
        .chain(std::iter::once(&decision.executed))
    {
        crate::logging::statement_lines(&executed.log_lines);
        shared.commands.start(&executed.commands);
    }
    // ISC logs the DHCPOFFER before its ping (`ack_lease`); it is counted when it leaves.
    metrics.log_lines_suppressed.add(crate::logging::exchange(
        message,
        &decision.outcome,
        &interface.name,
    ));
    let mut decision = match park(shared, socket, interface, decision) {
        Some(decision) => decision,
        None => return,
    };
    // A fixed address's DNS add (`update-static-leases`): queued, never waited for.
    if let Some(operation) = decision
        .reply
        .as_mut()
        .and_then(|reply| reply.static_lease_dns.take())
    {
        if let Some(ddns) = &shared.ddns {
            ddns.updater.submit(operation);
        }
    }
    metrics.count_decision(&decision.outcome);
    // `Reply::encode` keeps ISC's option order (dhcproto alone would sort by code).
    let reply = decision.reply.and_then(|reply| match reply.encode() {
        Ok(payload) => Some((
            payload,
            route(shared, socket, interface, &reply.destination),
        )),
        Err(error) => {
            tracing::warn!("cannot encode a reply: {error}");
            metrics.count_drop(crate::metrics::DropReason::EncodeFailed);
            None
        }
    });
    if decision.commit.is_empty() {
        if let Some((payload, target)) = reply {
            outgoing.push(payload, target);
        }
        return;
    }
    let pending = reply.map(|(payload, target)| PendingReply {
        socket: socket.clone(),
        payload,
        target,
    });
    let request = shared
        .history
        .is_some()
        .then(|| crate::history::RequestContext::of(message));
    shared.apply(
        crate::changes::LeaseChange {
            dns_settings,
            request: request.as_ref(),
            ..crate::changes::LeaseChange::new(
                crate::changes::ChangeSource::Engine,
                &decision.commit,
            )
        },
        pending,
    );
}

/// An OFFER that waits for its `ping-check` goes to the ping driver (`super::ping`), which
/// sends it once the probe's timeout passes unanswered; `None` then. Any other decision comes
/// back to be sent now. An OFFER that cannot be encoded is dropped here as in [`dispatch`].
fn park(
    shared: &Shared,
    socket: &Arc<DhcpSocket>,
    interface: &Interface,
    mut decision: Decision,
) -> Option<Decision> {
    let (Some(check), Some(driver)) = (decision.ping_check.take(), &shared.ping) else {
        return Some(decision);
    };
    let reply = decision.reply.take()?;
    let payload = match reply.encode() {
        Ok(payload) => payload,
        Err(error) => {
            tracing::warn!("cannot encode a reply: {error}");
            shared
                .metrics
                .count_drop(crate::metrics::DropReason::EncodeFailed);
            return None;
        }
    };
    let parked = super::ping::Parked {
        check,
        payload,
        destination: reply.destination,
        socket: socket.clone(),
        interface: interface.clone(),
    };
    if let Err(parked) = driver.park(parked) {
        // The driver is gone (shutting down) or its queue is full: the OFFER goes unprobed.
        let target = route(shared, socket, interface, &parked.destination);
        shared.metrics.count_decision(&decision.outcome);
        let _ = socket.send_to(&parked.payload, target);
    }
    None
}

/// The UDP destination of a reply (RFC 2131 §4.1), and its source address when `local-address`
/// says (`net::local_address`).
pub(super) fn route(
    shared: &Shared,
    socket: &DhcpSocket,
    interface: &Interface,
    destination: &Destination,
) -> Target {
    Target {
        destination: route_destination(shared, socket, interface, destination),
        source: crate::net::local_address::source_for(shared.local_address, destination),
    }
}

fn route_destination(
    shared: &Shared,
    socket: &DhcpSocket,
    interface: &Interface,
    destination: &Destination,
) -> SocketAddrV4 {
    // `remote-port`, else the command line's port + 1 (`net::ports`).
    let client_port = shared.ports.client;
    match destination {
        // Relay agents listen on the server port (ISC sends to the relay's `local_port`).
        Destination::Relay(giaddr) => SocketAddrV4::new(*giaddr, shared.ports.server),
        Destination::Unicast(address) => SocketAddrV4::new(*address, client_port),
        Destination::Broadcast => SocketAddrV4::new(shared.limited_broadcast, client_port),
        Destination::Hardware { address, hardware } => {
            match crate::net::arp::set_entry(
                socket.raw_fd(),
                &interface.name,
                *address,
                hardware.address(),
            ) {
                Ok(()) => SocketAddrV4::new(*address, client_port),
                Err(_) => SocketAddrV4::new(shared.limited_broadcast, client_port),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_small_batch_of_steady_traffic_is_coalesced() {
        let wait = Duration::from_micros(500);
        // Requests arriving 100 µs apart, one per receive: wait and take several at once.
        assert!(coalesces(wait, 1, Duration::from_micros(100)));
        // After a quiet spell the next request is taken at once, and so is its successor.
        assert!(!coalesces(wait, 1, Duration::from_millis(20)));
        // Heavy load: full batches never wait.
        assert!(!coalesces(wait, crate::net::socket::BATCH, Duration::ZERO));
        // A timed-out receive, or coalescing off.
        assert!(!coalesces(wait, 0, Duration::ZERO));
        assert!(!coalesces(Duration::ZERO, 1, Duration::ZERO));
    }
}
