//! The tokio TCP driver of a failover relationship (STYLE.md §1: thin, around the sans-IO
//! [`Machine`]). It owns the clock, the sockets and the one timer; every protocol decision is
//! the machine's.
//!
//! As ISC does (docs/spec/failover.md §1.1): it listens on `address`:`port` and also connects to `peer
//! address`:`peer port` from `address`; an inbound connection is accepted only from the peer's
//! address; one connection at a time carries the session (a second one is closed at once, as
//! ISC's duplicate-connection answer does). Reconnection backs off from 2 s to 60 s.
//!
//! The DHCP workers never wait on it: they hand committed leases over a bounded channel
//! ([`super::hooks`]; a full one makes the driver queue every unacknowledged lease again) and
//! read the published state from atomics. Leases the machine changes are
//! written through the group commit and waited for *before* the messages that depend on them
//! (BNDACK, §7.3 step 10) are written to the socket; the failover state record is written on
//! every state change (§6.2, §12).
//!
//! The drivers are tasks of the control plane's runtime (`crate::control_plane`); waiting for
//! an fsync is done in `control_plane::blocking`, so it never stalls the runtime's other
//! tasks.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::bindings::{relationship_pools, relationship_ranges, StoreBindings};
use super::body::Typed;
use super::control::{Command, CommandError};
use super::hooks::{FailoverHooks, RelationshipStatus};
use super::machine::{Event, Machine, MachineConfig};
use super::persist::{saved_state, state_record};
use super::states::{Role, State};
use super::wire::StreamDecoder;
use crate::config::model::{Config, FailoverPeerConfig};
use crate::lease::file::FailoverStateRecord;
use crate::lease::record::{Lease, UnixTime};
use crate::lease::shards::ShardedStore;

/// Where the driver makes leases and failover states durable (the daemon's group commit).
pub trait LeaseSink: Send + Sync + 'static {
    /// Appends the records and returns once they are durable; `false` when the log is gone.
    fn write_durably(&self, leases: &[Lease], states: &[FailoverStateRecord]) -> bool;
}

impl<F> LeaseSink for F
where
    F: Fn(&[Lease], &[FailoverStateRecord]) -> bool + Send + Sync + 'static,
{
    fn write_durably(&self, leases: &[Lease], states: &[FailoverStateRecord]) -> bool {
        self(leases, states)
    }
}

/// ISC's vendor class, `isc-` + version (docs/spec/failover.md §3): peers log it, none validates it.
const VENDOR_CLASS: &[u8] = b"isc-4.4.3-P1";
/// First reconnect delay after a failed attempt or a dropped link, and the cap of the back-off.
const RECONNECT_FIRST: Duration = Duration::from_secs(2);
const RECONNECT_MAX: Duration = Duration::from_secs(60);
/// A TCP connect that has not completed by then counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts one driver per configured failover peer, each a task of the control plane
/// (`crate::control_plane`) that ends when its token is cancelled. Returns no task when the
/// configuration has no failover peer.
pub fn start(
    control_plane: &crate::control_plane::ControlPlane,
    config: &Config,
    hooks: &FailoverHooks,
    leases: &Arc<ShardedStore>,
    sink: Arc<dyn LeaseSink>,
    saved: &[FailoverStateRecord],
) -> Vec<tokio::task::JoinHandle<()>> {
    if config.failover_peers.is_empty() {
        return Vec::new();
    }
    let now = crate::clock::unix_now();
    let mut drivers = Vec::new();
    for (peer, status) in config.failover_peers.iter().zip(hooks.relationships()) {
        let saved = saved_state(saved, &peer.name, now);
        let role = if peer.primary {
            Role::Primary
        } else {
            Role::Secondary
        };
        let machine_config = MachineConfig {
            name: peer.name.clone(),
            role,
            // A secondary has no `mclt` statement: the last one learned, until the CONNECT.
            mclt: if peer.primary {
                peer.mclt
            } else {
                saved.mclt.unwrap_or(peer.mclt)
            },
            hba: peer.hba,
            max_unacked_updates: peer.max_unacked_updates,
            max_response_delay: peer.max_response_delay,
            auto_partner_down: peer.auto_partner_down,
            max_lease_misbalance: peer.max_lease_misbalance,
            max_lease_ownership: peer.max_lease_ownership,
            min_balance: peer.min_balance,
            max_balance: peer.max_balance,
            vendor_class: VENDOR_CLASS.to_vec(),
        };
        let machine = Machine::new(machine_config, saved.my_state, saved.partner_state, now);
        let (changes, changes_receiver) = mpsc::channel(super::hooks::CHANGES_QUEUE);
        status.attach(changes);
        let (commands, commands_receiver) = mpsc::channel(super::hooks::COMMANDS_QUEUE);
        status.attach_commands(commands);
        drivers.push(Driver {
            peer: peer.clone(),
            ranges: relationship_ranges(config, &peer.name),
            pools: relationship_pools(config, &peer.name),
            machine,
            status: status.clone(),
            leases: leases.clone(),
            sink: sink.clone(),
            changes: changes_receiver,
            commands: commands_receiver,
            pending_commands: Vec::new(),
            state_write_failed: false,
            link: None,
            decoder: StreamDecoder::new(),
        });
    }
    for driver in &drivers {
        driver.publish();
    }
    let token = control_plane.token();
    drivers
        .into_iter()
        .map(|driver| control_plane.handle().spawn(driver.run(token.clone())))
        .collect()
}

/// Seconds since the epoch (the driver owns the clock).
fn now() -> UnixTime {
    crate::clock::unix_now()
}

/// A new TCP connection to or from the peer, or a failed attempt.
enum Incoming {
    Accepted(TcpStream, SocketAddr),
    Connected(TcpStream),
    ConnectFailed(std::io::Error),
}

struct Link {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    remote: SocketAddr,
}

struct Driver {
    peer: FailoverPeerConfig,
    ranges: Vec<(u32, u32)>,
    pools: Vec<Vec<(u32, u32)>>,
    machine: Machine,
    status: Arc<RelationshipStatus>,
    leases: Arc<ShardedStore>,
    sink: Arc<dyn LeaseSink>,
    changes: mpsc::Receiver<Ipv4Addr>,
    /// Operator commands ([`super::control`]) and the callers waiting for their outcome.
    commands: mpsc::Receiver<Command>,
    pending_commands: Vec<std::sync::mpsc::SyncSender<Result<(), CommandError>>>,
    /// The last state record could not be written (reported to a waiting operator).
    state_write_failed: bool,
    link: Option<Link>,
    decoder: StreamDecoder,
}

impl Driver {
    fn name(&self) -> &str {
        &self.peer.name
    }

    fn local_address(&self) -> Ipv4Addr {
        self.peer.address.unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    async fn run(mut self, token: CancellationToken) {
        let (incoming_sender, mut incoming) = mpsc::unbounded_channel();
        let listener = tokio::spawn(listen(
            self.name().to_string(),
            SocketAddrV4::new(self.local_address(), self.peer.port),
            self.peer.peer_address,
            incoming_sender.clone(),
        ));
        let mut connecting = false;
        let mut next_attempt = tokio::time::Instant::now();
        let mut backoff = RECONNECT_FIRST;
        // Large enough for a full window of updates and more in one read (see `receive`).
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            if self.link.is_none() && !connecting && tokio::time::Instant::now() >= next_attempt {
                if let Some(peer_address) = self.peer.peer_address {
                    connecting = true;
                    tokio::spawn(connect(
                        self.local_address(),
                        SocketAddrV4::new(peer_address, self.peer.peer_port),
                        incoming_sender.clone(),
                    ));
                }
            }
            let timer = self.timer_duration();
            let reconnect_in = next_attempt.saturating_duration_since(tokio::time::Instant::now());
            let wait = if self.link.is_none() && !connecting {
                timer.min(reconnect_in.max(Duration::from_millis(100)))
            } else {
                timer
            };
            tokio::select! {
                () = token.cancelled() => {
                    listener.abort();
                    return;
                }
                Some(event) = incoming.recv() => match event {
                    Incoming::Accepted(stream, remote) => self.adopt(stream, remote),
                    Incoming::Connected(stream) => {
                        connecting = false;
                        if let Ok(remote) = stream.peer_addr() {
                            self.adopt(stream, remote);
                        }
                        if self.link.is_none() {
                            next_attempt = tokio::time::Instant::now() + backoff;
                            backoff = (backoff * 2).min(RECONNECT_MAX);
                        }
                    }
                    Incoming::ConnectFailed(error) => {
                        connecting = false;
                        tracing::debug!("failover peer {}: connect failed: {error}", self.name());
                        next_attempt = tokio::time::Instant::now() + backoff;
                        backoff = (backoff * 2).min(RECONNECT_MAX);
                    }
                },
                read = read_link(&mut self.link, &mut buffer) => match read {
                    Ok(0) | Err(_) => {
                        tracing::info!("failover peer {}: connection closed by peer", self.name());
                        self.drop_link();
                        next_attempt = tokio::time::Instant::now() + RECONNECT_FIRST;
                    }
                    Ok(length) => {
                        self.decoder.extend(&buffer[..length]);
                        self.receive();
                    }
                },
                Some(address) = self.changes.recv() => {
                    let mut addresses = vec![address];
                    while let Ok(address) = self.changes.try_recv() {
                        addresses.push(address);
                    }
                    let now = now();
                    // Changes that did not fit in the queue: every lease the partner has not
                    // acknowledged goes again (the queued ones among them are sent once).
                    let resync = self.status.take_changes_lost();
                    if resync {
                        tracing::warn!(
                            "failover peer {}: lease changes came faster than the queue holds; \
                             queuing every unacknowledged lease again",
                            self.name()
                        );
                    }
                    self.with_bindings(|machine, bindings| {
                        if resync {
                            machine.handle_lost_changes(now, bindings);
                        }
                        for address in addresses {
                            machine.handle_lease_change(now, address, bindings);
                        }
                    });
                },
                Some(command) = self.commands.recv() => self.handle_command(command),
                () = tokio::time::sleep(wait) => {},
            }
            // Due timers fire whatever woke the loop: the sleep is re-armed every turn, so
            // under steady traffic (lease changes, partner messages) it would never complete
            // and the balancing timer, RECOVER-WAIT's end, STARTUP's end and auto-partner-down
            // would wait for a lull (measured: no pool balancing during a skewed burst,
            // netns_failover_balance).
            let now = now();
            if self
                .machine
                .poll_timeout()
                .is_some_and(|deadline| deadline <= now)
            {
                self.with_bindings(|machine, bindings| machine.handle_timeout(now, bindings));
            }
            let was_linked = self.machine.is_linked();
            self.state_write_failed = false;
            self.pump().await;
            // The forced state is durable (or failed to be) only now (§6.2: commit, then act).
            for done in self.pending_commands.drain(..) {
                let outcome = if self.state_write_failed {
                    Err(CommandError::NotPersisted)
                } else {
                    Ok(())
                };
                let _ = done.try_send(outcome);
            }
            if self.machine.is_linked() && !was_linked {
                backoff = RECONNECT_FIRST;
            }
            if self.link.is_none() && !connecting && next_attempt < tokio::time::Instant::now() {
                // A link that just closed: ISC retries about 5 s later (§1.2).
                next_attempt = next_attempt.max(tokio::time::Instant::now() + RECONNECT_FIRST);
            }
        }
    }

    /// An operator forces a state (docs/spec/failover.md §6.2 "Administrative"); answered after the
    /// next [`Driver::pump`] has written the state record.
    fn handle_command(&mut self, command: Command) {
        let now = now();
        let state = State::from_code(
            command.state,
            now,
            self.machine.mclt(),
            self.peer.auto_partner_down,
        );
        let Some(state) = state else {
            let _ = command
                .done
                .try_send(Err(CommandError::InvalidState(u32::from(u8::from(
                    command.state,
                )))));
            return;
        };
        tracing::info!(
            "failover peer {}: operator forces {:?}",
            self.name(),
            command.state
        );
        self.with_bindings(|machine, bindings| machine.handle_command(now, state, bindings));
        self.pending_commands.push(command.done);
    }

    /// Time until the machine's next deadline (at least 100 ms, at most 60 s).
    fn timer_duration(&self) -> Duration {
        let Some(deadline) = self.machine.poll_timeout() else {
            return Duration::from_secs(60);
        };
        let now = now();
        Duration::from_secs(u64::from(deadline.saturating_sub(now)).min(60))
            .max(Duration::from_millis(100))
    }

    /// A new connection: it carries the session unless one already does (§1.1).
    fn adopt(&mut self, stream: TcpStream, remote: SocketAddr) {
        if self.link.is_some() {
            tracing::debug!(
                "failover peer {}: second connection from {remote} closed",
                self.name()
            );
            return;
        }
        let _ = stream.set_nodelay(true);
        tracing::info!("failover peer {}: connected to {remote}", self.name());
        let (reader, writer) = stream.into_split();
        self.link = Some(Link {
            reader,
            writer,
            remote,
        });
        self.decoder = StreamDecoder::new();
        self.machine.handle_connected(now());
    }

    fn drop_link(&mut self) {
        if self.link.take().is_some() {
            let now = now();
            self.with_bindings(|machine, bindings| machine.handle_disconnected(now, bindings));
        }
    }

    /// Feeds every complete message to the machine; a framing error ends the link (after the
    /// messages before it).
    ///
    /// All messages of one read go through one [`Driver::with_bindings`]: one hold of each
    /// store shard their leases are in (consecutive ones in the same shard), one durable write for every lease they changed, and their answers (BNDACKs, the next
    /// BNDUPDs) leave together in the following [`Driver::pump`]. §7.3 step 10 only asks that
    /// a lease be on disk before its BNDACK, so one fsync may cover a whole burst of BNDUPDs —
    /// one fsync per message capped a relationship at a few hundred updates a second.
    fn receive(&mut self) {
        let mut messages = Vec::new();
        let mut broken = None;
        loop {
            match self.decoder.next_message() {
                Ok(None) => break,
                Ok(Some(raw)) => match Typed::from_message(&raw) {
                    Ok(message) => {
                        tracing::debug!(
                            "failover peer {}: received {:?}",
                            self.name(),
                            message.body
                        );
                        messages.push(message);
                    }
                    Err(error) => {
                        broken = Some(format!("bad message ({error})"));
                        break;
                    }
                },
                Err(error) => {
                    broken = Some(format!("bad stream ({error})"));
                    break;
                }
            }
        }
        if !messages.is_empty() {
            let now = now();
            self.status.note_contact(now);
            self.with_bindings(|machine, bindings| {
                for message in messages {
                    machine.handle_message(now, message, bindings);
                }
            });
        }
        if let Some(reason) = broken {
            tracing::warn!("failover peer {}: {reason}; closing", self.name());
            self.drop_link();
        }
    }

    /// Runs `step` with the store as the machine's bindings (each lease in its shard, one
    /// shard held at a time: [`StoreBindings`]), then, with no shard held, makes the changed
    /// leases durable before anything the step queued is sent (done by [`Driver::pump`]).
    fn with_bindings(&mut self, step: impl FnOnce(&mut Machine, &mut StoreBindings<'_>)) {
        let written = {
            let mut bindings =
                StoreBindings::new(&self.leases, &self.ranges).with_pools(&self.pools);
            step(&mut self.machine, &mut bindings);
            bindings.into_written()
        };
        if !written.is_empty()
            && !crate::control_plane::blocking(|| self.sink.write_durably(&written, &[]))
        {
            tracing::error!("failover: the lease log is gone; leases not written");
        }
    }

    fn publish(&self) {
        let partner = self.machine.partner();
        self.status.publish(
            self.machine.state(),
            self.machine.stos(),
            partner.state,
            self.machine.mclt(),
            self.machine.hba(),
        );
        self.status
            .publish_counters(partner.since, self.machine.unacked());
    }

    /// Writes the state record durably (ISC commits the state before acting on it, §6.2).
    fn write_state_record(&mut self) {
        let record = state_record(self.name(), &self.machine);
        if !crate::control_plane::blocking(|| self.sink.write_durably(&[], &[record])) {
            tracing::error!("failover: the lease log is gone; state not written");
            self.state_write_failed = true;
        }
    }

    /// Acts on the machine's events (state record, close), publishes the state, then writes
    /// queued messages to the socket.
    async fn pump(&mut self) {
        let mut close = false;
        let mut state_changed = false;
        while let Some(event) = self.machine.poll_event() {
            match event {
                Event::StateChanged { from, to, .. } => {
                    tracing::info!(
                        "failover peer {}: I move from {from:?} to {to:?}",
                        self.name()
                    );
                    state_changed = true;
                }
                Event::PartnerStateChanged { state, .. } => {
                    tracing::info!("failover peer {}: peer moves to {state:?}", self.name());
                    state_changed = true;
                }
                Event::LinkUp => tracing::info!("failover peer {}: session up", self.name()),
                Event::CloseConnection { reason } => {
                    tracing::info!("failover peer {}: closing link: {reason:?}", self.name());
                    close = true;
                }
                Event::UpdateRejected {
                    address,
                    reason,
                    message,
                } => tracing::warn!(
                    "failover peer {}: bind update on {address} rejected: {reason:?} {}",
                    self.name(),
                    String::from_utf8_lossy(&message)
                ),
                Event::RefusedUpdate { address, reason } => tracing::debug!(
                    "failover peer {}: refused update for {address:?}: {reason:?}",
                    self.name()
                ),
                Event::HbaLearned(_) => {}
            }
        }
        if state_changed {
            self.write_state_record();
        }
        self.publish();
        let mut bytes = Vec::new();
        while let Some(message) = self.machine.poll_transmit() {
            match message.encode() {
                Ok(encoded) => bytes.extend_from_slice(&encoded),
                Err(error) => tracing::error!("failover: cannot encode {message:?}: {error}"),
            }
        }
        if !bytes.is_empty() {
            if let Some(link) = self.link.as_mut() {
                let limit = Duration::from_secs(u64::from(self.peer.max_response_delay.max(1)));
                let written = tokio::time::timeout(limit, link.writer.write_all(&bytes)).await;
                if !matches!(written, Ok(Ok(()))) {
                    tracing::info!(
                        "failover peer {}: write to {} failed",
                        self.peer.name,
                        link.remote
                    );
                    close = true;
                }
            }
        }
        if close {
            self.drop_link();
            // The machine may have more to say after the close (state change).
            self.drain_after_close();
        }
    }

    /// After a close: write the state record if it changed, publish, discard transmits.
    fn drain_after_close(&mut self) {
        let mut state_changed = false;
        while let Some(event) = self.machine.poll_event() {
            if let Event::StateChanged { from, to, .. } = event {
                tracing::info!(
                    "failover peer {}: I move from {from:?} to {to:?}",
                    self.name()
                );
                state_changed = true;
            }
        }
        while self.machine.poll_transmit().is_some() {}
        if state_changed {
            self.write_state_record();
        }
        self.publish();
    }
}

async fn read_link(link: &mut Option<Link>, buffer: &mut [u8]) -> std::io::Result<usize> {
    match link {
        Some(link) => link.reader.read(buffer).await,
        None => std::future::pending().await,
    }
}

/// "no matching state" lines: 10 at once, then one per 10 s.
static REFUSED_CONNECTIONS_LOG: crate::logging::RateLimiter =
    crate::logging::RateLimiter::per_interval(10_000_000_000, 10);

/// Accepts connections on `address`, keeps those from `peer` (ISC "no matching state" closes
/// the others, §1.1). Retries the bind every 90 s when the address is not (yet) there.
async fn listen(
    name: String,
    address: SocketAddrV4,
    peer: Option<Ipv4Addr>,
    incoming: mpsc::UnboundedSender<Incoming>,
) {
    let listener = loop {
        match bind_listener(address) {
            Ok(listener) => break listener,
            Err(error) => {
                tracing::warn!(
                    "failover peer {name}: cannot listen on {address}: {error}; retrying"
                );
                tokio::time::sleep(Duration::from_secs(90)).await;
            }
        }
    };
    tracing::info!("failover peer {name}: listening on {address}");
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                let from_peer = match remote {
                    SocketAddr::V4(remote) => Some(*remote.ip()) == peer,
                    SocketAddr::V6(_) => false,
                };
                if !from_peer {
                    // Anyone can connect: a scan or a flood must not flood the log too.
                    crate::log_limited!(
                        REFUSED_CONNECTIONS_LOG,
                        info,
                        "failover peer {name}: connection from {remote}: no matching state"
                    );
                    continue;
                }
                if incoming.send(Incoming::Accepted(stream, remote)).is_err() {
                    return;
                }
            }
            Err(error) => {
                tracing::warn!("failover peer {name}: accept: {error}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

fn bind_listener(address: SocketAddrV4) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::V4(address))?;
    socket.listen(16)
}

/// One outbound attempt from `local` (ephemeral port) to the peer (§1.1).
async fn connect(local: Ipv4Addr, remote: SocketAddrV4, incoming: mpsc::UnboundedSender<Incoming>) {
    let attempt = async {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::V4(SocketAddrV4::new(local, 0)))?;
        socket.connect(SocketAddr::V4(remote)).await
    };
    let result = match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(Ok(stream)) => Incoming::Connected(stream),
        Ok(Err(error)) => Incoming::ConnectFailed(error),
        Err(_) => Incoming::ConnectFailed(std::io::ErrorKind::TimedOut.into()),
    };
    let _ = incoming.send(result);
}
