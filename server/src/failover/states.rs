//! Failover endpoint states with the draft's names, their data, and their wire codes beside them
//! (docs/spec/failover.md §6.1, draft §9). ISC's RECOVER-WAIT is 254.

use super::codes::ServerStateCode;
use crate::lease::file::PeerState;
use crate::lease::record::UnixTime;

/// Primary or secondary of the relationship (`primary;` / `secondary;`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Primary,
    Secondary,
}

/// The local server's failover state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// 0: only reachable by an administrative change or an odd lease file.
    UnknownState,
    /// 1: after process start, until the partner's STATE or 15 s (§6.2). Never on the wire: the
    /// saved state is sent with the STARTUP flag (§4.3).
    Startup {
        saved: ServerStateCode,
        until: UnixTime,
    },
    /// 2
    Normal,
    /// 3: the link dropped while NORMAL. `auto_partner_down_at` is set when `auto-partner-down`
    /// is configured (§6.2).
    CommunicationsInterrupted {
        since: UnixTime,
        auto_partner_down_at: Option<UnixTime>,
    },
    /// 4
    PartnerDown { since: UnixTime },
    /// 5
    PotentialConflict,
    /// 6
    Recover,
    /// 7
    Paused,
    /// 8
    Shutdown,
    /// 9
    RecoverDone,
    /// 10
    ResolutionInterrupted,
    /// 11
    ConflictDone,
    /// 254 (ISC): waiting until STOS + MCLT before RECOVER-DONE (§6.2 UPDDONE table).
    RecoverWait { until: UnixTime },
}

impl State {
    /// The wire code (option 24).
    pub fn code(self) -> ServerStateCode {
        match self {
            State::UnknownState => ServerStateCode::UnknownState,
            State::Startup { .. } => ServerStateCode::Startup,
            State::Normal => ServerStateCode::Normal,
            State::CommunicationsInterrupted { .. } => ServerStateCode::CommunicationsInterrupted,
            State::PartnerDown { .. } => ServerStateCode::PartnerDown,
            State::PotentialConflict => ServerStateCode::PotentialConflict,
            State::Recover => ServerStateCode::Recover,
            State::Paused => ServerStateCode::Paused,
            State::Shutdown => ServerStateCode::Shutdown,
            State::RecoverDone => ServerStateCode::RecoverDone,
            State::ResolutionInterrupted => ServerStateCode::ResolutionInterrupted,
            State::ConflictDone => ServerStateCode::ConflictDone,
            State::RecoverWait { .. } => ServerStateCode::RecoverWait,
        }
    }

    /// The state a saved code stands for, its data filled from `stos`, `mclt` and the
    /// `auto-partner-down` delay (0 = off).
    pub fn from_code(
        code: ServerStateCode,
        stos: UnixTime,
        mclt: u32,
        auto_partner_down: u32,
    ) -> Option<Self> {
        Some(match code {
            ServerStateCode::UnknownState => State::UnknownState,
            ServerStateCode::Startup => return None,
            ServerStateCode::Normal => State::Normal,
            ServerStateCode::CommunicationsInterrupted => State::CommunicationsInterrupted {
                since: stos,
                auto_partner_down_at: (auto_partner_down > 0)
                    .then(|| stos.saturating_add(auto_partner_down)),
            },
            ServerStateCode::PartnerDown => State::PartnerDown { since: stos },
            ServerStateCode::PotentialConflict => State::PotentialConflict,
            ServerStateCode::Recover => State::Recover,
            ServerStateCode::Paused => State::Paused,
            ServerStateCode::Shutdown => State::Shutdown,
            ServerStateCode::RecoverDone => State::RecoverDone,
            ServerStateCode::ResolutionInterrupted => State::ResolutionInterrupted,
            ServerStateCode::ConflictDone => State::ConflictDone,
            ServerStateCode::RecoverWait => State::RecoverWait {
                until: stos.saturating_add(mclt),
            },
            ServerStateCode::Unknown(_) => return None,
        })
    }
}

/// Lease-file word of a wire state (docs/spec/failover.md §12).
pub fn peer_state_of(code: ServerStateCode) -> PeerState {
    match code {
        ServerStateCode::Startup => PeerState::Startup,
        ServerStateCode::Normal => PeerState::Normal,
        ServerStateCode::CommunicationsInterrupted => PeerState::CommunicationsInterrupted,
        ServerStateCode::PartnerDown => PeerState::PartnerDown,
        ServerStateCode::PotentialConflict => PeerState::PotentialConflict,
        ServerStateCode::Recover => PeerState::Recover,
        ServerStateCode::Paused => PeerState::Paused,
        ServerStateCode::Shutdown => PeerState::Shutdown,
        ServerStateCode::RecoverDone => PeerState::RecoverDone,
        ServerStateCode::ResolutionInterrupted => PeerState::ResolutionInterrupted,
        ServerStateCode::ConflictDone => PeerState::ConflictDone,
        ServerStateCode::RecoverWait => PeerState::RecoverWait,
        ServerStateCode::UnknownState | ServerStateCode::Unknown(_) => PeerState::UnknownState,
    }
}

/// Wire state of a lease-file word.
pub fn code_of(state: PeerState) -> ServerStateCode {
    match state {
        PeerState::UnknownState => ServerStateCode::UnknownState,
        PeerState::PartnerDown => ServerStateCode::PartnerDown,
        PeerState::Normal => ServerStateCode::Normal,
        PeerState::CommunicationsInterrupted => ServerStateCode::CommunicationsInterrupted,
        PeerState::ConflictDone => ServerStateCode::ConflictDone,
        PeerState::ResolutionInterrupted => ServerStateCode::ResolutionInterrupted,
        PeerState::PotentialConflict => ServerStateCode::PotentialConflict,
        PeerState::Recover => ServerStateCode::Recover,
        PeerState::RecoverWait => ServerStateCode::RecoverWait,
        PeerState::RecoverDone => ServerStateCode::RecoverDone,
        PeerState::Shutdown => ServerStateCode::Shutdown,
        PeerState::Paused => ServerStateCode::Paused,
        PeerState::Startup => ServerStateCode::Startup,
    }
}

/// What a server may do for DHCP clients (ISC "service state", docs/spec/failover.md §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Not answering at all.
    NotResponding,
    /// NORMAL: load balancing applies, only own free leases.
    Cooperating,
    /// COMMUNICATIONS-INTERRUPTED: no load balancing, own pool only, renewals within MCLT.
    NotCooperating,
    /// PARTNER-DOWN: everything, the partner's leases after STOS + MCLT.
    PartnerDown,
}

/// The service state of `local` when the partner last said `partner` (§6.1: ISC stops serving
/// when the partner reports PARTNER-DOWN, POTENTIAL-CONFLICT, CONFLICT-DONE or
/// RESOLUTION-INTERRUPTED, whatever its own state).
pub fn service(local: State, partner: Option<ServerStateCode>) -> Service {
    if matches!(
        partner,
        Some(
            ServerStateCode::PartnerDown
                | ServerStateCode::PotentialConflict
                | ServerStateCode::ConflictDone
                | ServerStateCode::ResolutionInterrupted
        )
    ) {
        return Service::NotResponding;
    }
    match local {
        State::Normal => Service::Cooperating,
        State::CommunicationsInterrupted { .. } => Service::NotCooperating,
        State::PartnerDown { .. } => Service::PartnerDown,
        _ => Service::NotResponding,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_words_agree() {
        for &code in ServerStateCode::ALL {
            assert_eq!(code_of(peer_state_of(code)), code);
            if let Some(state) = State::from_code(code, 100, 300, 0) {
                assert_eq!(state.code(), code);
            }
        }
        assert_eq!(u8::from(State::RecoverWait { until: 0 }.code()), 254);
    }

    #[test]
    fn partner_states_that_silence_us() {
        assert_eq!(service(State::Normal, None), Service::Cooperating);
        assert_eq!(
            service(State::Normal, Some(ServerStateCode::PartnerDown)),
            Service::NotResponding
        );
        assert_eq!(service(State::Recover, None), Service::NotResponding);
    }
}
