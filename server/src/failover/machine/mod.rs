//! The sans-IO failover peer (STYLE.md §1): inputs are `handle_*(now, …)`, outputs are drained
//! with [`Machine::poll_transmit`], [`Machine::poll_event`], [`Machine::poll_timeout`]. It owns
//! the relationship's state (docs/spec/failover.md §6), the link handshake (§4.1, §4.2), keep-alives
//! (§1.2), the BNDUPD window (§7.2), resynchronisation (§7.5) and pool balancing (§10). The
//! leases themselves stay in the caller's store, reached through [`Bindings`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::Ipv4Addr;

use super::body::{Body, Connect, ConnectAck, Disconnect, StateMessage, Typed};
use super::codes::{RejectReason, ServerStateCode, SERVER_FLAG_STARTUP};
use super::states::{Role, State};
use crate::lease::record::{BindingState, Lease, UnixTime};

mod balance;
mod transitions;
mod updates;

use updates::reject_text;
pub use updates::{bind_update_of, binding_state_of};

/// ISC's link startup timer and STARTUP duration (§1.2, §6.2).
pub const STARTUP_SECONDS: u32 = 15;
/// Largest accepted clock difference at CONNECT / CONNECTACK (§1.2).
pub const MAX_TIME_SKEW: u32 = 60;

/// The leases of this relationship's pools, as the machine needs them.
pub trait Bindings {
    /// The lease for `address` if it is in a pool of this relationship; a never-used address
    /// of such a pool is `Lease::free(address)`. `None` = not ours (reject 1).
    fn lease(&self, address: Ipv4Addr) -> Option<Lease>;
    /// Stores (and makes durable) a lease the failover protocol changed.
    fn update(&mut self, lease: Lease);
    /// Every address of the relationship's pools (UPDREQALL, pool balancing).
    fn addresses(&self) -> Vec<Ipv4Addr>;
    /// The addresses of each pool of the relationship (balancing is per pool, §10); one pool
    /// unless the bindings know better.
    fn pools(&self) -> Vec<Vec<Ipv4Addr>> {
        vec![self.addresses()]
    }
    /// The FREE and BACKUP counts of the pool of `address` (reserved leases not counted: ISC's
    /// `free_leases` and `backup_leases`); counted from [`Bindings::pools`] unless the bindings
    /// keep them.
    fn pool_stock(&self, address: Ipv4Addr) -> Option<(u64, u64)> {
        let pool = self
            .pools()
            .into_iter()
            .find(|addresses| addresses.contains(&address))?;
        let mut stock = (0, 0);
        for lease in pool.into_iter().filter_map(|address| self.lease(address)) {
            if lease.flags & crate::lease::record::flags::RESERVED != 0 {
                continue;
            }
            match lease.binding_state {
                BindingState::Free => stock.0 += 1,
                BindingState::Backup => stock.1 += 1,
                _ => {}
            }
        }
        Some(stock)
    }
}

/// Relationship parameters (from `config::model::FailoverPeerConfig`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineConfig {
    pub name: String,
    pub role: Role,
    /// Primary: configured MCLT. Secondary: the last one learned (lease file), replaced by
    /// the CONNECT's.
    pub mclt: u32,
    /// Primary only: the HBA to send (§11.1).
    pub hba: Option<[u8; 32]>,
    pub max_unacked_updates: u32,
    pub max_response_delay: u32,
    /// `auto-partner-down` seconds, 0 = off.
    pub auto_partner_down: u32,
    /// Pool balancing (dhcpd.conf(5)): `max-lease-misbalance` and `max-lease-ownership` in
    /// percent, `min-balance` and `max-balance` in seconds (ISC's defaults 15, 10, 60, 3600).
    pub max_lease_misbalance: u32,
    pub max_lease_ownership: u32,
    pub min_balance: u32,
    pub max_balance: u32,
    pub vendor_class: Vec<u8>,
}

/// Something the driver or the engine must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The local state changed: write `failover peer … state` to the lease file.
    StateChanged {
        from: ServerStateCode,
        to: ServerStateCode,
        at: UnixTime,
    },
    /// The partner reported a new state.
    PartnerStateChanged {
        state: ServerStateCode,
        at: UnixTime,
    },
    /// The handshake completed; the session is up.
    LinkUp,
    /// Close the TCP connection (the machine already considers it gone).
    CloseConnection { reason: CloseReason },
    /// The partner refused one of our BNDUPDs; it will not be retransmitted (§7.2).
    UpdateRejected {
        address: Ipv4Addr,
        reason: RejectReason,
        message: Vec<u8>,
    },
    /// We refused one of the partner's BNDUPDs.
    RefusedUpdate {
        address: Option<Ipv4Addr>,
        reason: RejectReason,
    },
    /// The partner learned HBA (secondary) or the configured one (primary) is in force.
    HbaLearned([u8; 32]),
}

/// Why the machine asked for the link to be closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// We refused the partner's CONNECT / CONNECTACK.
    Refused(RejectReason),
    /// The partner refused ours.
    RejectedByPartner(RejectReason),
    /// The partner sent DISCONNECT.
    Disconnected(Option<RejectReason>),
    /// Nothing received for max-response-delay (§1.2).
    ReceiveTimeout,
    /// No CONNECT / CONNECTACK within 15 s (§1.2).
    StartupTimeout,
    /// A message ISC would treat as a protocol error.
    ProtocolError,
}

/// What we know of the partner's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartnerView {
    /// `None` = unknown (never heard of).
    pub state: Option<ServerStateCode>,
    /// ISC records its own receive time, not the partner's STOS (§14.18).
    pub since: UnixTime,
    pub startup: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Link {
    Down,
    /// TCP up, CONNECT / CONNECTACK not yet exchanged.
    Handshake {
        deadline: UnixTime,
    },
    Up(Session),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Session {
    partner_max_unacked: u32,
    partner_receive_timer: u32,
    last_received: UnixTime,
    last_sent: UnixTime,
}

/// One of our BNDUPDs waiting for its BNDACK.
#[derive(Clone, Debug, PartialEq, Eq)]
struct InFlight {
    xid: u32,
    state: BindingState,
    tstp: UnixTime,
    cltt: UnixTime,
}

/// The failover peer of one relationship.
#[derive(Debug)]
pub struct Machine {
    config: MachineConfig,
    state: State,
    stos: UnixTime,
    partner: PartnerView,
    link: Link,
    next_xid: u32,
    hba: Option<[u8; 32]>,
    /// Leases to send, in order, and the same as a set.
    send_queue: VecDeque<Ipv4Addr>,
    queued: HashSet<Ipv4Addr>,
    in_flight: HashMap<Ipv4Addr, InFlight>,
    /// The partner's UPDREQ / UPDREQALL we are answering: its xid (UPDDONE echoes it, §2).
    update_request: Option<u32>,
    transmit: VecDeque<Typed>,
    events: VecDeque<Event>,
    /// When pool balancing last ran (0 = never) and when it runs next (ISC `last_balance`,
    /// `sched_balance`).
    last_balance: UnixTime,
    next_balance: Option<UnixTime>,
}

impl Machine {
    /// A machine after process start (§6.2 "Process start"): STARTUP over the saved state,
    /// which is RECOVER when the lease file had none (§6.1).
    pub fn new(
        config: MachineConfig,
        saved: Option<(ServerStateCode, UnixTime)>,
        partner: Option<(ServerStateCode, UnixTime)>,
        now: UnixTime,
    ) -> Self {
        let (saved, stos) = saved
            .filter(|(code, _)| *code != ServerStateCode::Startup)
            .unwrap_or((ServerStateCode::Recover, now));
        let hba = match config.role {
            Role::Primary => config.hba,
            Role::Secondary => None,
        };
        Self {
            config,
            state: State::Startup {
                saved,
                until: now.saturating_add(STARTUP_SECONDS),
            },
            stos,
            partner: PartnerView {
                state: partner.map(|(state, _)| state),
                since: partner.map_or(0, |(_, since)| since),
                startup: false,
            },
            link: Link::Down,
            next_xid: 0,
            hba,
            send_queue: VecDeque::new(),
            queued: HashSet::new(),
            in_flight: HashMap::new(),
            update_request: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            last_balance: 0,
            next_balance: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Start time of the current state.
    pub fn stos(&self) -> UnixTime {
        self.stos
    }

    pub fn partner(&self) -> PartnerView {
        self.partner
    }

    pub fn role(&self) -> Role {
        self.config.role
    }

    /// The MCLT in force (the secondary's is the primary's, learned at CONNECT).
    pub fn mclt(&self) -> u32 {
        self.config.mclt
    }

    /// The HBA in force, if known.
    pub fn hba(&self) -> Option<[u8; 32]> {
        self.hba
    }

    pub fn is_linked(&self) -> bool {
        matches!(self.link, Link::Up(_))
    }

    /// Number of BNDUPDs sent and not yet acknowledged.
    pub fn unacked(&self) -> usize {
        self.in_flight.len()
    }

    /// Number of leases waiting to be sent.
    pub fn queued(&self) -> usize {
        self.send_queue.len()
    }

    // ---- outputs ----

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Typed> {
        self.transmit.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest time [`Machine::handle_timeout`] has work to do.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<UnixTime> {
        let mut deadlines = Vec::new();
        match &self.link {
            Link::Down => {}
            Link::Handshake { deadline } => deadlines.push(*deadline),
            Link::Up(session) => {
                deadlines.push(
                    session
                        .last_received
                        .saturating_add(self.config.max_response_delay.max(1)),
                );
                deadlines.push(
                    session
                        .last_sent
                        .saturating_add((session.partner_receive_timer / 3).max(1)),
                );
            }
        }
        match self.state {
            State::Startup { until, .. } | State::RecoverWait { until } => deadlines.push(until),
            State::CommunicationsInterrupted {
                auto_partner_down_at: Some(at),
                ..
            } => deadlines.push(at),
            _ => {}
        }
        deadlines.extend(self.next_balance);
        deadlines.into_iter().min()
    }

    // ---- inputs ----

    /// A TCP connection to the partner is established (either direction, §1.1). The primary
    /// sends CONNECT on every connection; the secondary waits for one.
    pub fn handle_connected(&mut self, now: UnixTime) {
        if self.is_linked() {
            return;
        }
        self.link = Link::Handshake {
            deadline: now.saturating_add(STARTUP_SECONDS),
        };
        self.next_xid = 0;
        if self.config.role == Role::Primary {
            let connect = Connect {
                relationship_name: Some(self.config.name.clone().into_bytes()),
                max_unacked_bndupd: Some(self.config.max_unacked_updates),
                receive_timer: Some(self.config.max_response_delay),
                vendor_class: Some(self.config.vendor_class.clone()),
                protocol_version: Some(1),
                tls_request: Some(0),
                mclt: Some(self.config.mclt),
                hba: self.hba.map(|hba| hba.to_vec()),
            };
            self.send_new(now, Body::Connect(connect));
        }
    }

    /// The TCP connection is gone (§6.2 "Connection lost").
    pub fn handle_disconnected(&mut self, now: UnixTime, bindings: &mut impl Bindings) {
        let was_linked = self.is_linked();
        self.link = Link::Down;
        self.requeue_in_flight();
        self.update_request = None;
        self.transmit.clear();
        if was_linked {
            self.connection_lost(now, bindings);
        }
    }

    /// Timers: receive timeout, CONTACT, link startup, STARTUP end, RECOVER-WAIT end,
    /// auto-partner-down.
    pub fn handle_timeout(&mut self, now: UnixTime, bindings: &mut impl Bindings) {
        match &self.link {
            Link::Handshake { deadline } if now >= *deadline => {
                self.close(now, CloseReason::StartupTimeout, bindings);
            }
            Link::Up(session) => {
                if now
                    >= session
                        .last_received
                        .saturating_add(self.config.max_response_delay.max(1))
                {
                    self.close(now, CloseReason::ReceiveTimeout, bindings);
                } else if now
                    >= session
                        .last_sent
                        .saturating_add((session.partner_receive_timer / 3).max(1))
                {
                    self.send_new(now, Body::Contact);
                }
            }
            _ => {}
        }
        match self.state {
            // STARTUP expired: behave as "connection lost" on the saved state (§6.2).
            State::Startup { until, .. } if now >= until => self.connection_lost(now, bindings),
            State::RecoverWait { until } if now >= until => {
                self.set_state(now, State::RecoverDone, bindings);
            }
            State::CommunicationsInterrupted {
                auto_partner_down_at: Some(at),
                ..
            } if now >= at => {
                self.set_state(now, State::PartnerDown { since: now }, bindings);
            }
            _ => {}
        }
        if self.next_balance.is_some_and(|at| now >= at) {
            self.rebalance(now, bindings);
        }
    }

    /// The engine committed a change to the lease at `address` (ACK, release, expiry, …): it
    /// is queued for a BNDUPD (§7.2). The engine has already applied the MCLT rule and set tstp.
    pub fn handle_lease_change(
        &mut self,
        now: UnixTime,
        address: Ipv4Addr,
        bindings: &mut impl Bindings,
    ) {
        self.enqueue(address);
        self.flush(now, bindings);
    }

    /// Operator command (OMAPI `local-state`, CLI): force a state, e.g. PARTNER-DOWN.
    pub fn handle_command(&mut self, now: UnixTime, state: State, bindings: &mut impl Bindings) {
        self.set_state(now, state, bindings);
    }

    /// A message from the partner.
    pub fn handle_message(&mut self, now: UnixTime, message: Typed, bindings: &mut impl Bindings) {
        if let Link::Up(session) = &mut self.link {
            session.last_received = now;
        }
        let xid = message.xid;
        match message.body {
            Body::Connect(connect) => self.on_connect(now, message.time, xid, connect),
            Body::ConnectAck(ack) => self.on_connect_ack(now, message.time, ack, bindings),
            _ if !self.is_linked() => {
                // Anything before the handshake is a protocol error for ISC.
                self.close(now, CloseReason::ProtocolError, bindings);
            }
            Body::State(state) => self.on_state(now, state, bindings),
            Body::Contact | Body::Other(_) => {}
            Body::Disconnect(Disconnect { reject_reason, .. }) => {
                self.close(now, CloseReason::Disconnected(reject_reason), bindings);
            }
            Body::BindUpdate(update) => self.on_bind_update(now, xid, update, bindings),
            Body::BindAck(ack) => self.on_bind_ack(now, xid, ack, bindings),
            Body::UpdateRequest => self.on_update_request(now, xid, false, bindings),
            Body::UpdateRequestAll => self.on_update_request(now, xid, true, bindings),
            Body::UpdateDone => self.on_update_done(now, bindings),
            Body::PoolRequest => {
                let moved = self.balance(now, bindings).moved;
                self.send_reply(
                    now,
                    xid,
                    Body::PoolResponse {
                        addresses_transferred: Some(moved),
                    },
                );
                self.flush(now, bindings);
            }
            Body::PoolResponse { .. } => {}
        }
    }

    // ---- handshake (§4.1, §4.2) ----

    fn on_connect(&mut self, now: UnixTime, time: UnixTime, xid: u32, connect: Connect) {
        let name = connect.relationship_name.clone();
        let mut ack = ConnectAck {
            relationship_name: name.clone(),
            vendor_class: Some(self.config.vendor_class.clone()),
            protocol_version: Some(1),
            tls_reply: connect.tls_request.map(|_| 0),
            ..ConnectAck::default()
        };
        // ISC's checks, in ISC's order (§4.1).
        let hba: Option<[u8; 32]> = connect.hba.as_deref().and_then(|hba| hba.try_into().ok());
        // A CONNECT to a primary, or for another relationship, names no partner we have.
        let refusal = if self.config.role == Role::Primary
            || name.as_deref() != Some(self.config.name.as_bytes())
        {
            Some(RejectReason::InvalidPartner)
        } else if time.abs_diff(now) > MAX_TIME_SKEW {
            Some(RejectReason::TimeMismatch)
        } else if hba.is_none() {
            Some(RejectReason::HbaConflict)
        } else if self.is_linked() {
            Some(RejectReason::DuplicateConnection)
        } else if connect.mclt.is_none() {
            Some(RejectReason::InvalidMclt)
        } else {
            None
        };
        if let Some(reason) = refusal {
            ack.reject_reason = Some(reason);
            ack.message = Some(reject_text(reason).as_bytes().to_vec());
            self.send_reply(now, xid, Body::ConnectAck(ack));
            self.events.push_back(Event::CloseConnection {
                reason: CloseReason::Refused(reason),
            });
            if !self.is_linked() {
                self.link = Link::Down;
            }
            return;
        }
        ack.max_unacked_bndupd = Some(self.config.max_unacked_updates);
        ack.receive_timer = Some(self.config.max_response_delay);
        // The secondary adopts the primary's MCLT and HBA (§4.1 step 7, §11.1).
        if let Some(mclt) = connect.mclt {
            self.config.mclt = mclt;
        }
        if let Some(hba) = hba {
            self.hba = Some(hba);
            self.events.push_back(Event::HbaLearned(hba));
        }
        self.link_up(now, connect.max_unacked_bndupd, connect.receive_timer);
        self.send_reply(now, xid, Body::ConnectAck(ack));
        self.send_state(now);
    }

    fn on_connect_ack(
        &mut self,
        now: UnixTime,
        time: UnixTime,
        ack: ConnectAck,
        bindings: &mut impl Bindings,
    ) {
        if let Some(reason) = ack.reject_reason {
            self.close(now, CloseReason::RejectedByPartner(reason), bindings);
            return;
        }
        // ISC primary's checks (§4.2); each refusal is a DISCONNECT and a close.
        let refusal = if self.config.role == Role::Secondary
            || ack.relationship_name.as_deref() != Some(self.config.name.as_bytes())
        {
            Some(RejectReason::InvalidPartner)
        } else if self.is_linked() {
            Some(RejectReason::DuplicateConnection)
        } else if time.abs_diff(now) > MAX_TIME_SKEW {
            Some(RejectReason::TimeMismatch)
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.send_new(
                now,
                Body::Disconnect(Disconnect {
                    reject_reason: Some(reason),
                    message: Some(reject_text(reason).as_bytes().to_vec()),
                }),
            );
            self.link = Link::Down;
            self.events.push_back(Event::CloseConnection {
                reason: CloseReason::Refused(reason),
            });
            return;
        }
        self.link_up(now, ack.max_unacked_bndupd, ack.receive_timer);
        if let Some(hba) = self.hba {
            self.events.push_back(Event::HbaLearned(hba));
        }
        self.send_state(now);
    }

    fn link_up(&mut self, now: UnixTime, max_unacked: Option<u32>, receive_timer: Option<u32>) {
        self.link = Link::Up(Session {
            // ISC's defaults when the partner omits them (§9).
            partner_max_unacked: max_unacked.unwrap_or(100).max(1),
            partner_receive_timer: receive_timer.unwrap_or(20),
            last_received: now,
            last_sent: now,
        });
        self.events.push_back(Event::LinkUp);
    }

    fn close(&mut self, now: UnixTime, reason: CloseReason, bindings: &mut impl Bindings) {
        self.events.push_back(Event::CloseConnection { reason });
        self.handle_disconnected(now, bindings);
    }

    // ---- sending ----

    fn take_xid(&mut self) -> u32 {
        let xid = self.next_xid;
        self.next_xid = self.next_xid.wrapping_add(1);
        xid
    }

    /// Sends a message that opens a transaction (new xid, §2).
    fn send_new(&mut self, now: UnixTime, body: Body) -> u32 {
        let mut xid = self.take_xid();
        // BNDUPD never uses xid 0 (§2): its ack is matched by xid.
        if xid == 0 && matches!(body, Body::BindUpdate(_)) {
            xid = self.take_xid();
        }
        self.push(now, xid, body);
        xid
    }

    fn send_reply(&mut self, now: UnixTime, xid: u32, body: Body) {
        self.push(now, xid, body);
    }

    fn push(&mut self, now: UnixTime, xid: u32, body: Body) {
        if let Link::Up(session) = &mut self.link {
            session.last_sent = now;
        }
        self.transmit.push_back(Typed::new(now, xid, body));
    }

    /// STATE with our state; in STARTUP the saved state with the STARTUP flag (§4.3).
    fn send_state(&mut self, now: UnixTime) {
        if !self.is_linked() {
            return;
        }
        let (code, flags) = match self.state {
            State::Startup { saved, .. } => (saved, SERVER_FLAG_STARTUP),
            other => (other.code(), 0),
        };
        let body = Body::State(StateMessage {
            server_state: Some(code),
            server_flags: Some(flags),
            start_time_of_state: Some(self.stos),
        });
        self.send_new(now, body);
    }

    fn enqueue(&mut self, address: Ipv4Addr) {
        if self.queued.insert(address) {
            self.send_queue.push_back(address);
        }
    }

    fn requeue_in_flight(&mut self) {
        let mut addresses: Vec<Ipv4Addr> =
            self.in_flight.drain().map(|(address, _)| address).collect();
        addresses.sort_unstable();
        for address in addresses {
            self.enqueue(address);
        }
    }

    /// Updates flow while NORMAL, or while answering the partner's UPDREQ / UPDREQALL (§6.2,
    /// §7.5).
    fn may_send_updates(&self) -> bool {
        self.is_linked() && (self.state == State::Normal || self.update_request.is_some())
    }

    /// Sends queued BNDUPDs up to the partner's max-unacked-bndupd (§7.2), and UPDDONE when an
    /// update request has been fully answered (§7.5).
    fn flush(&mut self, now: UnixTime, bindings: &mut impl Bindings) {
        if !self.may_send_updates() {
            return;
        }
        let window = match &self.link {
            Link::Up(session) => session.partner_max_unacked as usize,
            _ => return,
        };
        while self.in_flight.len() < window {
            let Some(address) = self.send_queue.pop_front() else {
                break;
            };
            self.queued.remove(&address);
            if self.in_flight.contains_key(&address) {
                // One update per lease in flight; the newer state goes after the ack.
                self.enqueue(address);
                if self.send_queue.len() <= self.in_flight.len() {
                    break;
                }
                continue;
            }
            let Some(mut lease) = bindings.lease(address) else {
                continue;
            };
            // The partner may have seen this state even if no ack comes (§7.2). Written only
            // when it changes: an UPDREQALL answer or a renewal would otherwise rewrite (and
            // fsync) an unchanged lease before every BNDUPD.
            let rewind_changed = lease.rewind_binding_state != lease.binding_state;
            lease.rewind_binding_state = lease.binding_state;
            let update = bind_update_of(&lease, self.config.role);
            let xid = self.send_new(now, Body::BindUpdate(update));
            self.in_flight.insert(
                address,
                InFlight {
                    xid,
                    state: lease.binding_state,
                    tstp: lease.tstp,
                    cltt: lease.cltt,
                },
            );
            if rewind_changed {
                bindings.update(lease);
            }
        }
        if let Some(xid) = self.update_request {
            if self.send_queue.is_empty() && self.in_flight.is_empty() {
                self.update_request = None;
                self.send_reply(now, xid, Body::UpdateDone);
            }
        }
    }
}
