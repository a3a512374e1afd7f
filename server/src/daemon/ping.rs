//! The `ping-check` driver (dhcpd.conf(5) "ping-check"; the decision is the engine's,
//! `engine::ping_check`): one raw ICMP socket, as ISC's `icmp_startup` opens it
//! (common/icmp.c), a reader thread that passes on the echo replies to our identifier, and a
//! timer thread that owns the parked OFFERs: it sends each one's echo request, sends the OFFER
//! when the timeout passes unanswered (ISC `lease_ping_timeout`) and abandons the address when
//! a reply comes first (ISC `lease_pinged`), both through the engine under the address's shard
//! lock; the abandonment is a lease change like any other (`Shared::apply`).
//!
//! Replies are matched by identifier (this process's) and source address; the sequence number
//! only tells the probes apart in the logs. ISC matches by source address alone.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::Shared;
use crate::engine::{Destination, Outcome, PingCheck, Snapshot};
use crate::metrics::PingResult;
use crate::net::icmp;
use crate::net::interfaces::Interface;
use crate::net::socket::{DhcpSocket, SendBatch};

/// How often the threads look at the shutdown flag while idle.
const IDLE_WAKE: Duration = Duration::from_millis(250);

/// An OFFER held back until its probe ends.
pub(super) struct Parked {
    pub check: PingCheck,
    pub payload: Vec<u8>,
    /// Routed when sent, not before: a unicast OFFER sets an ARP entry for the address, which
    /// must not point at the client while the echo request looks for another host there.
    pub destination: Destination,
    pub socket: Arc<DhcpSocket>,
    pub interface: Interface,
}

enum Event {
    Probe(Box<Parked>),
    /// An echo reply to our identifier.
    Reply {
        from: Ipv4Addr,
        sequence: u16,
    },
}

/// The workers' side: where parked OFFERs go.
pub(super) struct PingDriver {
    events: mpsc::SyncSender<Event>,
}

/// Probes and replies that may wait for the timer thread. Beyond it a new OFFER goes out
/// unprobed (as when ICMP is unavailable) and an echo reply is ignored (counted): a flood of
/// forged replies cannot grow the queue.
const EVENT_QUEUE: usize = 65_536;

/// The socket and the channel, opened before the daemon's shared state; the threads start once
/// that exists ([`PingStart::spawn`]).
pub(super) struct PingStart {
    socket: Arc<Socket>,
    events: mpsc::Receiver<Event>,
    sender: mpsc::SyncSender<Event>,
}

/// Opens the raw ICMP socket. Without CAP_NET_RAW ISC logs "unable to create icmp socket" and
/// goes on without pinging; so does xdhcpd, with an error when the config asks for ping-check
/// (`wanted`) — new addresses are then offered at once. (ISC still holds each OFFER back for
/// the ping timeout without a probe behind it; xdhcpd does not wait for nothing.)
pub(super) fn open(wanted: bool) -> Option<(PingDriver, PingStart)> {
    let socket = match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)) {
        Ok(socket) => socket,
        Err(error) => {
            if wanted {
                tracing::error!(
                    "unable to create icmp socket: {error}; ping-check is off: new addresses are \
                     offered without probing them first (the server needs CAP_NET_RAW)"
                );
            } else {
                tracing::info!("unable to create icmp socket: {error} (ping-check is not used)");
            }
            return None;
        }
    };
    if let Err(error) = socket.set_read_timeout(Some(IDLE_WAKE)) {
        tracing::error!("icmp socket: {error}; ping-check is off");
        return None;
    }
    let (sender, events) = mpsc::sync_channel(EVENT_QUEUE);
    Some((
        PingDriver {
            events: sender.clone(),
        },
        PingStart {
            socket: Arc::new(socket),
            events,
            sender,
        },
    ))
}

impl PingDriver {
    /// Hands an OFFER to the timer thread; gives it back when that thread is gone (shutdown)
    /// or has [`EVENT_QUEUE`] events waiting.
    pub fn park(&self, parked: Parked) -> Result<(), Box<Parked>> {
        self.events
            .try_send(Event::Probe(Box::new(parked)))
            .map_err(|error| match error {
                mpsc::TrySendError::Full(Event::Probe(parked))
                | mpsc::TrySendError::Disconnected(Event::Probe(parked)) => parked,
                mpsc::TrySendError::Full(Event::Reply { .. })
                | mpsc::TrySendError::Disconnected(Event::Reply { .. }) => {
                    unreachable!("only probes are sent here")
                }
            })
    }
}

impl PingStart {
    /// Starts the reader and the timer threads; both end at shutdown.
    pub fn spawn(
        self,
        shared: Arc<Shared>,
        shutdown: Arc<std::sync::atomic::AtomicBool>,
    ) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
        // ICMP identifiers are per host: this process's id keeps our replies apart from other
        // pingers' (a raw socket sees them all).
        let identifier = std::process::id() as u16;
        let reader = {
            let socket = self.socket.clone();
            let sender = self.sender;
            let shutdown = shutdown.clone();
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("ping-reader".into())
                .spawn(move || read_replies(&socket, identifier, &sender, &shared, &shutdown))?
        };
        let socket = self.socket;
        let events = self.events;
        let timer = std::thread::Builder::new()
            .name("ping-timer".into())
            .spawn(move || {
                Timer {
                    shared: &shared,
                    socket: &socket,
                    identifier,
                    next_sequence: 0,
                    by_deadline: BTreeMap::new(),
                    by_address: HashMap::new(),
                }
                .run(&events, &shutdown)
            })?;
        Ok(vec![reader, timer])
    }
}

/// The reader thread: every echo reply to `identifier` becomes an event; other echo replies
/// are counted as ignored, other ICMP messages skipped (ISC: "silently discard").
fn read_replies(
    socket: &Socket,
    identifier: u16,
    sender: &mpsc::SyncSender<Event>,
    shared: &Shared,
    shutdown: &std::sync::atomic::AtomicBool,
) {
    let mut buffer = [std::mem::MaybeUninit::<u8>::uninit(); 1500];
    while !shutdown.load(std::sync::atomic::Ordering::Relaxed) {
        let (length, from) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(error) => {
                tracing::error!("icmp_echoreply: {error}");
                std::thread::sleep(IDLE_WAKE);
                continue;
            }
        };
        // SAFETY: `recv_from` initialised the first `length` bytes.
        let datagram: &[u8] =
            unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), length) };
        let Some(reply) = icmp::parse_echo_reply(datagram) else {
            continue;
        };
        let Some(from) = from.as_socket_ipv4().map(|address| *address.ip()) else {
            continue;
        };
        if reply.identifier != identifier {
            shared.metrics.ping_replies_ignored.increment();
            continue;
        }
        let event = Event::Reply {
            from,
            sequence: reply.sequence,
        };
        match sender.try_send(event) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(_)) => shared.metrics.ping_replies_ignored.increment(),
            Err(mpsc::TrySendError::Disconnected(_)) => return,
        }
    }
}

/// A parked OFFER with its probe's sequence number.
struct Pending {
    parked: Parked,
    sequence: u16,
}

/// The timer thread's state: the parked OFFERs by deadline, and by address for the replies.
struct Timer<'a> {
    shared: &'a Shared,
    socket: &'a Socket,
    identifier: u16,
    next_sequence: u64,
    by_deadline: BTreeMap<(Instant, u64), Pending>,
    by_address: HashMap<Ipv4Addr, (Instant, u64)>,
}

impl Timer<'_> {
    fn run(&mut self, events: &mpsc::Receiver<Event>, shutdown: &std::sync::atomic::AtomicBool) {
        while !shutdown.load(std::sync::atomic::Ordering::Relaxed) {
            let wait = self
                .by_deadline
                .keys()
                .next()
                .map_or(IDLE_WAKE, |(deadline, _)| {
                    deadline
                        .saturating_duration_since(crate::clock::monotonic())
                        .min(IDLE_WAKE)
                });
            match events.recv_timeout(wait) {
                Ok(Event::Probe(parked)) => self.probe(*parked),
                Ok(Event::Reply { from, sequence }) => self.answered(from, sequence),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            let now = crate::clock::monotonic();
            while let Some(entry) = self.by_deadline.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let pending = entry.remove();
                self.by_address.remove(&pending.parked.check.address);
                self.release(pending.parked, PingResult::TimedOut);
            }
        }
    }

    /// ISC `icmp_echorequest`, then the OFFER waits for the timeout.
    fn probe(&mut self, parked: Parked) {
        let serial = self.next_sequence;
        self.next_sequence += 1;
        let sequence = serial as u16;
        let address = parked.check.address;
        let request = icmp::echo_request(self.identifier, sequence);
        let target = SockAddr::from(SocketAddrV4::new(address, 0));
        if let Err(error) = self.socket.send_to(&request, &target) {
            // No probe went out: nothing to wait for (ISC logs and waits anyway).
            tracing::error!("icmp_echorequest {address}: {error}");
            self.release(parked, PingResult::SendFailed);
            return;
        }
        self.shared.metrics.count_ping(PingResult::Sent);
        tracing::debug!(
            "Pinging {address} (sequence {sequence}), timeout {} ms",
            parked.check.timeout_ms
        );
        let deadline = crate::clock::monotonic() + Duration::from_millis(parked.check.timeout_ms);
        // An older probe of the address (not expected: the engine does not park an address
        // twice) ends now as if unanswered.
        if let Some(key) = self.by_address.insert(address, (deadline, serial)) {
            if let Some(older) = self.by_deadline.remove(&key) {
                self.release(older.parked, PingResult::TimedOut);
            }
        }
        self.by_deadline
            .insert((deadline, serial), Pending { parked, sequence });
    }

    /// ISC `lease_ping_timeout`: the OFFER goes (`result`: its probe timed out, or could not
    /// be sent).
    fn release(&self, parked: Parked, result: PingResult) {
        let now = crate::clock::unix_now();
        let stands = match self.shared.leases.lock_address(parked.check.address) {
            Ok(mut store) => {
                self.shared
                    .engine
                    .load()
                    .ping_timed_out(now, &parked.check, &mut store)
            }
            Err(_) => false,
        };
        if stands {
            self.shared.metrics.count_ping(result);
            self.send_offer(parked);
        } else {
            self.shared.metrics.count_ping(PingResult::Superseded);
        }
    }

    /// Sends a parked OFFER, counted as the worker counts the replies it sends.
    fn send_offer(&self, parked: Parked) {
        let shared = self.shared;
        shared
            .metrics
            .count_decision(&Outcome::Offered(parked.check.address));
        let target = super::worker::route(
            shared,
            &parked.socket,
            &parked.interface,
            &parked.destination,
        );
        let mut batch = SendBatch::default();
        batch.push(parked.payload, target);
        match parked.socket.send_batch(&mut batch) {
            Ok(sent) => {
                shared.metrics.replies_sent.add(sent as u64);
                shared.metrics.send_errors.add(1 - sent.min(1) as u64);
            }
            Err(_) => shared.metrics.send_errors.increment(),
        }
    }

    /// ISC `lease_pinged`: the address is in use; it is abandoned and the OFFER dropped.
    fn answered(&mut self, from: Ipv4Addr, sequence: u16) {
        let Some(key) = self.by_address.remove(&from) else {
            // ISC: "unexpected ICMP Echo Reply" / "late or spurious".
            tracing::debug!("ICMP Echo Reply for {from} late or spurious (sequence {sequence})");
            self.shared.metrics.ping_replies_ignored.increment();
            return;
        };
        let Some(pending) = self.by_deadline.remove(&key) else {
            return;
        };
        let check = &pending.parked.check;
        let shared = self.shared;
        let now = crate::clock::unix_now();
        let abandoned = match shared.leases.lock_address(check.address) {
            Ok(mut store) => {
                let snapshot = Snapshot {
                    failover: shared.failover.view(),
                    hosts: None,
                    ping_checks: true,
                    // Only the probed address's fate is decided here: no reply is built.
                    reverse_names: None,
                };
                shared
                    .engine
                    .load()
                    .ping_answered(now, &snapshot, check, &mut store)
            }
            Err(_) => None,
        };
        let Some(lease) = abandoned else {
            shared.metrics.count_ping(PingResult::Superseded);
            return;
        };
        tracing::error!(
            "Abandoning IP address {}: pinged before offer (ICMP echo reply, sequence {})",
            check.address,
            pending.sequence
        );
        shared.metrics.count_ping(PingResult::Answered);
        // The kernel may answer renewals only for bindings the store backs.
        if let Some(fast_path) = &shared.fast_path {
            let withdrawn = fast_path.reconcile(std::slice::from_ref(&lease));
            shared.metrics.kernel_withdrawals.add(withdrawn as u64);
        }
        shared.apply(
            crate::changes::LeaseChange::new(
                crate::changes::ChangeSource::Engine,
                std::slice::from_ref(&lease),
            ),
            None,
        );
    }
}
