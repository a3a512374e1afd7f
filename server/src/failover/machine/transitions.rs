//! The state half of the machine: entering a state (docs/spec/failover.md §6.2), connection loss, and
//! the reaction to the partner's STATE (§6.3), each table as ISC implements it.

use super::{Bindings, Event, Machine, PartnerView};
use crate::failover::body::{Body, StateMessage};
use crate::failover::codes::{ServerStateCode, SERVER_FLAG_STARTUP};
use crate::failover::rules::own_free_state;
use crate::failover::states::{Role, State};
use crate::lease::record::{BindingState, UnixTime};

impl Machine {
    // ---- states (§6) ----

    /// The state that counts for the tables: the saved one while in STARTUP.
    pub(super) fn effective_state(&self) -> State {
        match self.state {
            State::Startup { saved, .. } => State::from_code(
                saved,
                self.stos,
                self.config.mclt,
                self.config.auto_partner_down,
            )
            .unwrap_or(State::Recover),
            other => other,
        }
    }

    /// §6.2 "Connection lost / startup timer expired".
    pub(super) fn connection_lost(&mut self, now: UnixTime, bindings: &mut impl Bindings) {
        let current = self.effective_state();
        let next = match current {
            State::Normal => State::CommunicationsInterrupted {
                since: now,
                auto_partner_down_at: (self.config.auto_partner_down > 0)
                    .then(|| now.saturating_add(self.config.auto_partner_down)),
            },
            State::PotentialConflict | State::UnknownState => State::ResolutionInterrupted,
            other => other,
        };
        if matches!(self.state, State::Startup { .. }) || next != current {
            self.set_state(now, next, bindings);
        }
    }

    /// §6.2 "Entering any state".
    pub(super) fn set_state(&mut self, now: UnixTime, next: State, bindings: &mut impl Bindings) {
        let previous = self.state;
        let leaving_startup = matches!(previous, State::Startup { .. });
        if matches!(
            previous,
            State::Normal | State::PotentialConflict | State::PartnerDown { .. }
        ) {
            self.requeue_in_flight();
        }
        let keep_stos = leaving_startup && next.code() == self.effective_state().code()
            || matches!(next, State::RecoverWait { .. } | State::Startup { .. });
        if !keep_stos {
            self.stos = now;
        }
        let next = match next {
            // Timers derived from the (possibly kept) STOS.
            State::CommunicationsInterrupted { .. } if leaving_startup => State::from_code(
                next.code(),
                self.stos,
                self.config.mclt,
                self.config.auto_partner_down,
            )
            .unwrap_or(next),
            State::PartnerDown { .. } => State::PartnerDown { since: self.stos },
            other => other,
        };
        self.state = next;
        self.events.push_back(Event::StateChanged {
            from: previous.code(),
            to: next.code(),
            at: now,
        });
        self.send_state(now);
        match next {
            State::Normal => {
                // ISC `dhcp_failover_pool_balance` on entering NORMAL (no POOLREQ: the partner
                // balances on its own entry), which also schedules the next run.
                let _ = self.balance(now, bindings);
                // Everything the partner has not acked (§6.2 NORMAL).
                let mut addresses = bindings.addresses();
                addresses.sort_unstable();
                for address in addresses {
                    if let Some(lease) = bindings.lease(address) {
                        if lease.tstp > lease.atsfp
                            || (matches!(
                                lease.binding_state,
                                BindingState::Expired
                                    | BindingState::Released
                                    | BindingState::Reset
                            ) && lease.rewind_binding_state != own_free_state(self.config.role))
                        {
                            self.enqueue(address);
                        }
                    }
                }
            }
            // The primary asks first; the secondary once the primary is CONFLICT-DONE.
            State::PotentialConflict
                if self.is_linked()
                    && (self.config.role == Role::Primary
                        || self.partner.state == Some(ServerStateCode::ConflictDone)) =>
            {
                self.send_new(now, Body::UpdateRequest);
            }
            // ISC always asks for everything in RECOVER (§14.15).
            State::Recover if self.is_linked() => {
                self.send_new(now, Body::UpdateRequestAll);
            }
            State::RecoverWait { until } if until <= now => {
                self.set_state(now, State::RecoverDone, bindings);
                return;
            }
            State::PartnerDown { since } => {
                // Leases on their way to FREE may turn FREE at STOS + MCLT (§6.2).
                let reclaim = since.saturating_add(self.config.mclt);
                for address in bindings.addresses() {
                    if let Some(mut lease) = bindings.lease(address) {
                        if matches!(
                            lease.binding_state,
                            BindingState::Expired | BindingState::Released | BindingState::Reset
                        ) {
                            lease.tsfp = reclaim;
                            bindings.update(lease);
                        }
                    }
                }
            }
            _ => {}
        }
        self.flush(now, bindings);
    }

    /// A STATE from the partner (§6.3, ISC `dhcp_failover_peer_state_changed`).
    pub(super) fn on_state(
        &mut self,
        now: UnixTime,
        message: StateMessage,
        bindings: &mut impl Bindings,
    ) {
        use ServerStateCode as P;
        let Some(new) = message.server_state else {
            return;
        };
        let startup_flag = message.server_flags.unwrap_or(0) & SERVER_FLAG_STARTUP != 0;
        let in_startup = matches!(self.state, State::Startup { .. });
        if matches!(new, P::Unknown(_) | P::Startup) {
            self.set_state(now, State::Shutdown, bindings);
            return;
        }
        let previous_partner = self.partner.state;
        let same = previous_partner == Some(new) && self.partner.startup == startup_flag;
        self.partner = PartnerView {
            state: Some(new),
            since: now,
            startup: startup_flag,
        };
        if !same {
            self.events.push_back(Event::PartnerStateChanged {
                state: new,
                at: now,
            });
        }
        let mine = self.effective_state();
        let repeat_matters = in_startup
            || matches!(
                mine,
                State::PartnerDown { .. }
                    | State::CommunicationsInterrupted { .. }
                    | State::ResolutionInterrupted
                    | State::Recover
                    | State::ConflictDone
            );
        if same && !repeat_matters {
            return;
        }
        let next: Option<State> = match mine {
            State::Normal => match new {
                P::PartnerDown if in_startup => Some(State::Recover),
                P::PartnerDown => Some(State::PotentialConflict),
                P::PotentialConflict | P::ResolutionInterrupted | P::ConflictDone => {
                    Some(State::Shutdown)
                }
                P::Recover | P::Shutdown => Some(State::PartnerDown { since: now }),
                P::Paused => Some(self.communications_interrupted(now)),
                _ => None,
            },
            State::Recover => match new {
                P::Recover | P::PartnerDown | P::CommunicationsInterrupted => {
                    if !in_startup && self.update_request_wanted() {
                        self.send_new(now, Body::UpdateRequestAll);
                    }
                    None
                }
                P::PotentialConflict | P::ResolutionInterrupted | P::ConflictDone | P::Normal => {
                    Some(State::PotentialConflict)
                }
                P::Shutdown => Some(State::PartnerDown { since: now }),
                _ => None,
            },
            State::PotentialConflict => match new {
                P::Normal => Some(State::Shutdown),
                P::ConflictDone => {
                    if previous_partner == Some(P::PotentialConflict) {
                        self.send_new(now, Body::UpdateRequest);
                    }
                    None
                }
                P::Recover => Some(State::Recover),
                P::Shutdown => Some(State::PartnerDown { since: now }),
                _ => None,
            },
            State::ConflictDone => match new {
                P::Normal => Some(State::Normal),
                P::Shutdown => Some(State::Shutdown),
                _ => None,
            },
            State::PartnerDown { .. } if startup_flag => None,
            State::PartnerDown { .. } => match new {
                P::RecoverDone => Some(State::Normal),
                P::Normal
                | P::PotentialConflict
                | P::PartnerDown
                | P::CommunicationsInterrupted
                | P::ResolutionInterrupted
                | P::ConflictDone => Some(State::PotentialConflict),
                _ => None,
            },
            State::CommunicationsInterrupted { .. } => match new {
                P::Recover => Some(State::PartnerDown { since: now }),
                P::Normal | P::CommunicationsInterrupted | P::RecoverDone | P::RecoverWait => {
                    Some(State::Normal)
                }
                P::PotentialConflict
                | P::PartnerDown
                | P::ResolutionInterrupted
                | P::ConflictDone => Some(State::PotentialConflict),
                P::Shutdown => Some(State::PartnerDown { since: now }),
                _ => None,
            },
            State::ResolutionInterrupted => match new {
                P::Shutdown => Some(State::PartnerDown { since: now }),
                P::Paused | P::UnknownState | P::Startup | P::Unknown(_) => None,
                _ => Some(State::PotentialConflict),
            },
            State::RecoverDone => match new {
                P::RecoverDone | P::Normal => Some(State::Normal),
                P::Shutdown => Some(State::PartnerDown { since: now }),
                _ => None,
            },
            _ => None,
        };
        match next {
            Some(next) => self.set_state(now, next, bindings),
            None if in_startup => {
                // Finally, still in STARTUP: move to the saved state (§6.3).
                let saved = self.effective_state();
                let saved = if saved == State::ResolutionInterrupted {
                    State::PotentialConflict
                } else {
                    saved
                };
                self.set_state(now, saved, bindings);
            }
            None => {}
        }
    }

    pub(super) fn update_request_wanted(&self) -> bool {
        self.is_linked()
    }

    pub(super) fn communications_interrupted(&self, now: UnixTime) -> State {
        State::CommunicationsInterrupted {
            since: now,
            auto_partner_down_at: (self.config.auto_partner_down > 0)
                .then(|| now.saturating_add(self.config.auto_partner_down)),
        }
    }
}
