//! The binding half of the machine: BNDUPD / BNDACK (docs/spec/failover.md §7.2-§7.4),
//! UPDREQ / UPDREQALL answers (§7.5) and pool balancing (§10).

use std::net::Ipv4Addr;

use super::{Bindings, Event, Machine};
use crate::failover::body::{BindAck, BindUpdate, Body};
use crate::failover::codes::ServerStateCode;
use crate::failover::codes::{RejectReason, IP_FLAG_BOOTP, IP_FLAG_RESERVED};
use crate::failover::rules::{check_transition, local_copy_wins};
use crate::failover::states::{Role, State};
use crate::lease::record::{flags, BindingState, Hardware, Lease, UnixTime};

impl Machine {
    // ---- bindings (§7) ----

    pub(super) fn refuse(
        &mut self,
        now: UnixTime,
        xid: u32,
        address: Option<Ipv4Addr>,
        reason: RejectReason,
    ) {
        self.events
            .push_back(Event::RefusedUpdate { address, reason });
        self.send_reply(
            now,
            xid,
            Body::BindAck(BindAck {
                address,
                reject_reason: Some(reason),
                message: Some(reject_text(reason).as_bytes().to_vec()),
            }),
        );
    }

    pub(super) fn on_bind_update(
        &mut self,
        now: UnixTime,
        xid: u32,
        update: BindUpdate,
        bindings: &mut impl Bindings,
    ) {
        use BindingState::*;
        // §7.3 checks in ISC's order.
        let (Some(address), Some(status)) = (update.address, update.binding_status) else {
            self.refuse(now, xid, update.address, RejectReason::MissingBindingInfo);
            return;
        };
        let Some(incoming) = binding_state_of(status) else {
            self.refuse(now, xid, Some(address), RejectReason::MiscReject);
            return;
        };
        let Some(mut lease) = bindings.lease(address) else {
            self.refuse(now, xid, Some(address), RejectReason::IllegalIpAddress);
            return;
        };
        let stored = lease.clone();
        if let Some(ours) = self.in_flight.get(&address) {
            if local_copy_wins(
                ours.state,
                ours.cltt,
                incoming,
                update.cltt.unwrap_or(0),
                self.config.role,
            ) {
                self.refuse(
                    now,
                    xid,
                    Some(address),
                    RejectReason::LessCriticalBindingInfo,
                );
                return;
            }
            // The incoming copy wins: forget our outstanding update (§7.4).
            self.in_flight.remove(&address);
        }
        let hardware = match update.hardware.as_deref() {
            Some(_) if incoming == Abandoned => {
                self.refuse(now, xid, Some(address), RejectReason::MiscReject);
                return;
            }
            Some([htype, rest @ ..]) if rest.len() <= 16 => Hardware::new(*htype, rest),
            Some(_) => {
                self.refuse(now, xid, Some(address), RejectReason::MiscReject);
                return;
            }
            None if matches!(incoming, Active | Expired | Released) => {
                self.refuse(now, xid, Some(address), RejectReason::MissingBindingInfo);
                return;
            }
            None if incoming == Abandoned => None,
            None => lease.hardware,
        };
        if update.client_identifier.is_some() && incoming == Abandoned {
            self.refuse(now, xid, Some(address), RejectReason::MiscReject);
            return;
        }
        let potential = update.potential_expiration.unwrap_or(0);
        let cooperating = self.state == State::Normal;
        if let Err(refused) = check_transition(
            &lease,
            incoming,
            potential,
            self.config.role,
            cooperating,
            now,
        ) {
            let _ = refused;
            self.refuse(now, xid, Some(address), RejectReason::FatalConflict);
            return;
        }
        // Apply (§7.3 step 4-9). CLTT is not stored (§14.11).
        lease.hardware = hardware;
        match update.client_identifier.as_deref() {
            Some(uid) => lease.set_uid(Some(uid)),
            None if !matches!(incoming, Free | Backup | Reset) => lease.set_uid(None),
            None => {}
        }
        if let Some(stos) = update.start_time_of_state {
            lease.starts = stos;
        }
        if let Some(ends) = update.lease_expiration {
            lease.ends = ends;
            lease.flags &= !flags::HORIZON;
        }
        lease.tsfp = potential;
        lease.atsfp = potential;
        let ip_flags = update.ip_flags.unwrap_or(0);
        lease.flags &= !(flags::RESERVED | flags::BOOTP);
        if ip_flags & IP_FLAG_RESERVED != 0 {
            lease.flags |= flags::RESERVED;
        }
        if ip_flags & IP_FLAG_BOOTP != 0 {
            lease.flags |= flags::BOOTP;
        }
        // EXPIRED / RELEASED / RESET from the partner: straight to the free state (§7.3 step 9).
        let settled = match incoming {
            Expired | Released | Reset => {
                if self.config.role == Role::Secondary && lease.flags & flags::RESERVED != 0 {
                    Backup
                } else {
                    Free
                }
            }
            other => other,
        };
        lease.binding_state = settled;
        lease.next_binding_state = if settled == Active { Expired } else { settled };
        // The partner knows this state, so it is also the state to fall back to (§7.1).
        lease.rewind_binding_state = incoming;
        // A copy identical to ours (an UPDREQALL answer about a never-used address, a
        // repeated update) is already on disk: acked without another write and fsync.
        let returned_free = matches!(incoming, Expired | Released | Reset) && settled == Free;
        if lease != stored {
            bindings.update(lease.clone());
        }
        self.send_reply(
            now,
            xid,
            Body::BindAck(BindAck {
                address: Some(address),
                ..BindAck::default()
            }),
        );
        if returned_free {
            self.affinity(now, lease, bindings);
            self.flush(now, bindings);
        }
    }

    pub(super) fn on_bind_ack(
        &mut self,
        now: UnixTime,
        xid: u32,
        ack: BindAck,
        bindings: &mut impl Bindings,
    ) {
        let Some(address) = ack.address else {
            return;
        };
        // Matched by address and xid; an ack for something else is ignored (§2).
        match self.in_flight.get(&address) {
            Some(flight) if flight.xid == xid => {}
            _ => return,
        }
        let Some(flight) = self.in_flight.remove(&address) else {
            return;
        };
        if let Some(reason) = ack.reject_reason {
            // Not retransmitted (§7.2).
            self.events.push_back(Event::UpdateRejected {
                address,
                reason,
                message: ack.message.unwrap_or_default(),
            });
        } else if let Some(mut lease) = bindings.lease(address) {
            let before = lease.clone();
            lease.tsfp = flight.tstp;
            lease.atsfp = flight.tstp;
            if lease.binding_state == flight.state
                && matches!(
                    flight.state,
                    BindingState::Expired | BindingState::Released | BindingState::Reset
                )
            {
                // The partner knows the lease is over: it becomes FREE (secondary + reserved:
                // BACKUP) and tstp := ends (§7.2, §8.3).
                let free =
                    if self.config.role == Role::Secondary && lease.flags & flags::RESERVED != 0 {
                        BindingState::Backup
                    } else {
                        BindingState::Free
                    };
                lease.binding_state = free;
                lease.next_binding_state = free;
                lease.tstp = lease.ends;
            }
            let returned_free = before.binding_state != lease.binding_state
                && lease.binding_state == BindingState::Free;
            // An ack that changes nothing (e.g. for an UPDREQALL answer about a lease the
            // partner already knew) is not written again.
            if lease != before {
                bindings.update(lease.clone());
            }
            if returned_free {
                self.affinity(now, lease, bindings);
            }
        }
        self.flush(now, bindings);
    }

    // ---- resynchronisation (§7.5) ----

    pub(super) fn on_update_request(
        &mut self,
        now: UnixTime,
        xid: u32,
        all: bool,
        bindings: &mut impl Bindings,
    ) {
        // A new request replaces one in progress.
        self.update_request = Some(xid);
        // Leases in flight are answered by their BNDACK.
        self.enqueue_unacknowledged(all, false, bindings);
        self.flush(now, bindings);
    }

    /// Notices of committed changes were dropped (the driver's queue was full,
    /// `hooks::CHANGES_QUEUE`): every lease the partner may not have is queued, as for an
    /// UPDREQ, and so is every lease in flight (its dropped change may be newer than the copy
    /// sent; as for any change, it is sent again after its BNDACK).
    pub fn handle_lost_changes(&mut self, now: UnixTime, bindings: &mut impl Bindings) {
        self.enqueue_unacknowledged(false, true, bindings);
        self.flush(now, bindings);
    }

    /// Queues every lease of the relationship (`all`, UPDREQALL) or those the partner has not
    /// acknowledged: a change newer than the partner's copy (tstp > atsfp) or a state the
    /// partner must see become free (§7.5).
    fn enqueue_unacknowledged(
        &mut self,
        all: bool,
        in_flight_too: bool,
        bindings: &mut impl Bindings,
    ) {
        let mut addresses = bindings.addresses();
        addresses.sort_unstable();
        for address in addresses {
            let in_flight = self.in_flight.contains_key(&address);
            if in_flight && !in_flight_too {
                continue;
            }
            if in_flight {
                self.enqueue(address);
                continue;
            }
            let wanted = all
                || bindings.lease(address).is_some_and(|lease| {
                    lease.tstp > lease.atsfp
                        || matches!(
                            lease.binding_state,
                            BindingState::Expired | BindingState::Released | BindingState::Reset
                        )
                });
            if wanted {
                self.enqueue(address);
            }
        }
    }

    pub(super) fn on_update_done(&mut self, now: UnixTime, bindings: &mut impl Bindings) {
        let partner = self.partner.state;
        match self.state {
            State::PotentialConflict => {
                if partner == Some(ServerStateCode::ConflictDone) {
                    let next = match self.config.role {
                        Role::Secondary => State::Normal,
                        Role::Primary => State::Shutdown,
                    };
                    self.set_state(now, next, bindings);
                } else if self.config.role == Role::Primary {
                    self.set_state(now, State::ConflictDone, bindings);
                }
            }
            State::Recover => {
                let until = self.stos.saturating_add(self.config.mclt);
                let partner_recovering = matches!(
                    partner,
                    Some(ServerStateCode::Recover | ServerStateCode::RecoverDone)
                );
                if until > now && !partner_recovering {
                    self.set_state(now, State::RecoverWait { until }, bindings);
                } else {
                    self.set_state(now, State::RecoverDone, bindings);
                }
            }
            _ => {}
        }
    }
}

/// A BNDUPD for `lease` as ISC builds it (§7.2): a RESERVED lease in the own free state is sent
/// as the partner's free state so that it may serve the named client.
pub fn bind_update_of(lease: &Lease, role: Role) -> BindUpdate {
    let mut state = lease.binding_state;
    if lease.flags & flags::RESERVED != 0 {
        state = match (role, state) {
            (Role::Primary, BindingState::Free) => BindingState::Backup,
            (Role::Secondary, BindingState::Backup) => BindingState::Free,
            (_, other) => other,
        };
    }
    let mut ip_flags = 0;
    if lease.flags & flags::RESERVED != 0 {
        ip_flags |= IP_FLAG_RESERVED;
    }
    if lease.flags & flags::BOOTP != 0 {
        ip_flags |= IP_FLAG_BOOTP;
    }
    BindUpdate {
        address: Some(lease.address),
        binding_status: Some(state as u8),
        client_identifier: lease.uid().map(<[u8]>::to_vec),
        hardware: lease.hardware.map(|hardware| {
            let mut bytes = vec![hardware.htype];
            bytes.extend_from_slice(hardware.address());
            bytes
        }),
        lease_expiration: Some(lease.ends),
        potential_expiration: Some(lease.tstp),
        start_time_of_state: Some(lease.starts),
        cltt: (lease.cltt != 0).then_some(lease.cltt),
        ip_flags: (ip_flags != 0).then_some(ip_flags),
    }
}

/// The binding state of option 3 (§7.1).
pub fn binding_state_of(value: u8) -> Option<BindingState> {
    use BindingState::*;
    Some(match value {
        1 => Free,
        2 => Active,
        3 => Expired,
        4 => Released,
        5 => Abandoned,
        6 => Reset,
        7 => Backup,
        _ => return None,
    })
}

/// The message text ISC puts beside a reject reason (§3.1).
pub(super) fn reject_text(reason: RejectReason) -> &'static str {
    match reason {
        RejectReason::InvalidPartner => "unknown failover relationship name",
        RejectReason::TimeMismatch => "time offset too large",
        RejectReason::HbaConflict => "invalid HBA",
        RejectReason::InvalidMclt => "no MCLT provided",
        RejectReason::DuplicateConnection => "duplicate connection",
        RejectReason::LessCriticalBindingInfo => {
            "incoming update is less critical than outgoing update"
        }
        RejectReason::MissingBindingInfo => "missing binding information",
        RejectReason::IllegalIpAddress => "unknown IP address",
        RejectReason::FatalConflict => "invalid state transition",
        _ => "rejected",
    }
}
