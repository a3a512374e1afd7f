//! Pure lease rules of failover that the engine and the machine both call: the MCLT rule for
//! lease times (docs/spec/failover.md §8.1), who may allocate a lease (§8.2), load balancing (§11.3), the
//! binding-transition checks for a received BNDUPD (§7.3) and duel resolution (§7.4).

use server_common::loadbalance::{bucket, hba_has};

use super::states::{Role, Service, State};
use crate::lease::record::{BindingState, Lease, UnixTime, NEVER};

/// The lease time to grant and the potential expiration (tstp) to send the partner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Seconds granted to the client.
    pub granted: u32,
    /// New `tstp` to record and send in the BNDUPD (only meaningful on an ACK).
    pub tstp: UnixTime,
    /// New `tsfp` (lowered to `tstp` when that is earlier, §8.1 step 2).
    pub tsfp: UnixTime,
}

/// The MCLT rule (docs/spec/failover.md §8.1, ISC `ack_lease`): a lease may not run past what the partner
/// acknowledged (tsfp) plus MCLT, so a partner that takes over after MCLT never hands out an
/// address a client still holds. `desired` is the lease time without failover
/// (`u32::MAX` = infinite).
pub fn grant(desired: u32, mclt: u32, tsfp: UnixTime, now: UnixTime) -> Grant {
    let granted = if desired > mclt {
        if tsfp <= now {
            mclt
        } else if u64::from(now) + u64::from(desired) > u64::from(tsfp) + u64::from(mclt) {
            (tsfp - now).saturating_add(mclt)
        } else {
            desired
        }
    } else {
        desired
    };
    // tstp = now + D + G/2 asks the partner to agree to more than we grant now, so the renewal
    // after its BNDACK can get the full D (§8.1 step 2).
    let tstp = if desired == u32::MAX {
        NEVER
    } else {
        let value = u64::from(now) + u64::from(desired) + u64::from(granted / 2);
        u32::try_from(value).unwrap_or(NEVER).min(NEVER - 1)
    };
    Grant {
        granted,
        tstp,
        tsfp: tsfp.min(tstp),
    }
}

/// The free state each role owns: FREE for the primary, BACKUP for the secondary (§7.1).
pub fn own_free_state(role: Role) -> BindingState {
    match role {
        Role::Primary => BindingState::Free,
        Role::Secondary => BindingState::Backup,
    }
}

/// May this server allocate `lease` to a client other than its last one (docs/spec/failover.md §8.2, ISC
/// `lease_mine_to_reallocate`)?
pub fn may_allocate(lease: &Lease, role: Role, state: State, mclt: u32, now: UnixTime) -> bool {
    let partner_down = matches!(state, State::PartnerDown { .. });
    // "if tsfp < STOS use STOS+MCLT else tsfp+MCLT", STOS being when this server entered
    // PARTNER-DOWN (§8.2, ISC `peer->me.stos`).
    let after_wait = || match state {
        State::PartnerDown { since } => {
            u64::from(now) > u64::from(since.max(lease.tsfp)) + u64::from(mclt)
        }
        _ => false,
    };
    match lease.binding_state {
        BindingState::Active => false,
        BindingState::Free | BindingState::Abandoned => role == Role::Primary || after_wait(),
        BindingState::Backup => role == Role::Secondary || after_wait(),
        BindingState::Expired | BindingState::Released => {
            lease.rewind_binding_state == own_free_state(role) || (partner_down && lease.tsfp < now)
        }
        BindingState::Reset => partner_down && lease.tsfp < now,
    }
}

/// The partner's free state: BACKUP for the primary, FREE for the secondary (§7.1).
pub fn partner_free_state(role: Role) -> BindingState {
    match role {
        Role::Primary => BindingState::Backup,
        Role::Secondary => BindingState::Free,
    }
}

/// Does a commit made now tell the partner soon, so that the lease's rewind state may step
/// forward to its new state (ISC `supersede_lease` with "propagate": only while cooperating or
/// not responding)? Out of contact (COMMUNICATIONS-INTERRUPTED, PARTNER-DOWN) the rewind state
/// stays what the partner last knew, so that a lease allocated and given back meanwhile can
/// return to its owner's free state (docs/spec/failover.md §8.2).
pub fn rewind_follows(service: Service) -> bool {
    matches!(service, Service::Cooperating | Service::NotResponding)
}

/// The state a lease of a failover pool takes when its client releases it (ISC
/// `release_lease`, docs/spec/failover.md §8.2): RELEASED, to become free once the partner acks (or
/// PARTNER-DOWN's wait passes); but out of contact (COMMUNICATIONS-INTERRUPTED), a lease the
/// partner last knew in this server's own free state goes straight back to it.
pub fn released_state(lease: &Lease, role: Role, service: Service) -> BindingState {
    if service == Service::NotCooperating && lease.rewind_binding_state == own_free_state(role) {
        lease.rewind_binding_state
    } else {
        BindingState::Released
    }
}

/// The state an ACTIVE lease of a failover pool moves to when it reaches its end (ISC
/// `pool_timer`, docs/spec/failover.md §8.3), or `None` to leave it ACTIVE: a secondary in NORMAL leaves
/// expiry to the primary, whose BNDUPD(EXPIRED) it will receive. Out of contact, a lease the
/// partner last knew in this server's own free state goes straight back to it; otherwise
/// EXPIRED, free once the partner acks.
pub fn expiry_state(
    lease: &Lease,
    role: Role,
    state: State,
    service: Service,
) -> Option<BindingState> {
    if role == Role::Secondary && state == State::Normal {
        return None;
    }
    let next = match lease.next_binding_state {
        BindingState::Active => BindingState::Expired,
        next => next,
    };
    if service == Service::NotCooperating
        && next == BindingState::Expired
        && lease.rewind_binding_state == own_free_state(role)
    {
        return Some(lease.rewind_binding_state);
    }
    Some(next)
}

/// Load balancing of a DHCPDISCOVER (docs/spec/failover.md §11.3): `true` when this server answers.
/// `key` is the client-identifier contents, else `chaddr[..hlen]`. Only NORMAL balances; a
/// `max_seconds` of 0 or a client waiting longer than it is answered by both.
pub fn load_balance_mine(
    role: Role,
    state: State,
    hba: &[u8; 32],
    key: &[u8],
    secs: u16,
    max_seconds: u32,
) -> bool {
    if state != State::Normal || max_seconds == 0 || u32::from(secs) > max_seconds {
        return true;
    }
    // ISC polarity: a set bit is the primary's bucket (§11.1).
    hba_has(hba, bucket(key)) == (role == Role::Primary)
}

/// Why a received binding transition is refused (reject reason 2, §7.3 step 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransitionRefused {
    pub from: BindingState,
    pub to: BindingState,
}

/// ISC's allowance for clock skew (60 s) plus fudge in the EXPIRED check (§7.3).
const EXPIRY_SKEW: u32 = 65;

/// May the receiver move `local` to `incoming` (docs/spec/failover.md §7.3)? `cooperating` selects the
/// NORMAL table (`normal_binding_state_transition_check`), else the conflict table.
pub fn check_transition(
    local: &Lease,
    incoming: BindingState,
    incoming_potential_expiration: UnixTime,
    role: Role,
    cooperating: bool,
    now: UnixTime,
) -> Result<(), TransitionRefused> {
    use BindingState::*;
    let from = local.binding_state;
    let refuse = Err(TransitionRefused { from, to: incoming });
    if from == incoming {
        return Ok(());
    }
    let ends_passed = local.ends.saturating_sub(EXPIRY_SKEW) <= now;
    if !cooperating {
        return match (from, incoming) {
            (Active, Free | Backup) => refuse,
            (Active, Expired) if !ends_passed => refuse,
            _ => Ok(()),
        };
    }
    let ok = match (from, incoming) {
        (Free | Abandoned | Released | Backup, _) => true,
        (Active, Released | Abandoned) => true,
        (Active, _) if role == Role::Primary => false,
        (Active, Free | Backup) => incoming_potential_expiration <= now,
        (Active, Expired) => ends_passed,
        (Active, _) => true,
        (Expired | Reset, Free | Backup) => incoming_potential_expiration <= now,
        (Expired | Reset, _) => true,
    };
    if ok {
        Ok(())
    } else {
        refuse
    }
}

/// Dueling updates (docs/spec/failover.md §7.4, ISC `failover_lease_is_better`): `true` when the
/// receiver's own un-acked copy wins over the incoming one (→ reject 16).
pub fn local_copy_wins(
    local_state: BindingState,
    local_cltt: UnixTime,
    incoming_state: BindingState,
    incoming_cltt: UnixTime,
    role: Role,
) -> bool {
    use BindingState::*;
    let primary = role == Role::Primary;
    match (local_state, incoming_state) {
        (Active, Active) => {
            if local_cltt != incoming_cltt {
                local_cltt > incoming_cltt
            } else {
                primary
            }
        }
        (Active, Expired) => false,
        (Active, _) => primary,
        (_, Active) => false,
        _ => primary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const NOW: UnixTime = 1_795_836_305;

    /// docs/spec/failover.md §8.1 [lab]: default-lease-time 600, MCLT 300 → 300 s granted, potential
    /// expiration start + 750.
    #[test]
    fn first_ack_gets_mclt_and_asks_for_more() {
        let grant = grant(600, 300, 0, NOW);
        assert_eq!(grant.granted, 300);
        assert_eq!(grant.tstp, NOW + 750);
        assert_eq!(grant.tsfp, 0);
        // After the partner acked tstp, the renewal gets the whole 600.
        let renewal = super::grant(600, 300, NOW + 750, NOW + 150);
        assert_eq!(renewal.granted, 600);
        // Partner acked less: bounded by tsfp + MCLT.
        let bounded = super::grant(600, 300, NOW + 100, NOW);
        assert_eq!(bounded.granted, 400);
        // Short leases are not touched.
        assert_eq!(super::grant(200, 300, 0, NOW).granted, 200);
        assert_eq!(super::grant(u32::MAX, 300, 0, NOW).tstp, NEVER);
    }

    fn lease(state: BindingState) -> Lease {
        let mut lease = Lease::free(Ipv4Addr::new(10, 0, 0, 1));
        lease.binding_state = state;
        lease.starts = NOW;
        lease
    }

    #[test]
    fn allocation_ownership() {
        let free = lease(BindingState::Free);
        let backup = lease(BindingState::Backup);
        let down = State::PartnerDown { since: NOW };
        assert!(may_allocate(&free, Role::Primary, State::Normal, 300, NOW));
        assert!(!may_allocate(
            &free,
            Role::Secondary,
            State::Normal,
            300,
            NOW
        ));
        assert!(!may_allocate(&free, Role::Secondary, down, 300, NOW + 300));
        assert!(may_allocate(&free, Role::Secondary, down, 300, NOW + 301));
        assert!(may_allocate(
            &backup,
            Role::Secondary,
            State::Normal,
            300,
            NOW
        ));
        assert!(!may_allocate(&backup, Role::Primary, down, 300, NOW + 10));
        let mut expired = lease(BindingState::Expired);
        expired.rewind_binding_state = BindingState::Active;
        expired.tsfp = NOW + 10;
        assert!(!may_allocate(
            &expired,
            Role::Primary,
            State::Normal,
            300,
            NOW + 20
        ));
        assert!(may_allocate(&expired, Role::Primary, down, 300, NOW + 20));
        expired.rewind_binding_state = BindingState::Free;
        assert!(may_allocate(
            &expired,
            Role::Primary,
            State::Normal,
            300,
            NOW
        ));
        assert!(!may_allocate(
            &lease(BindingState::Active),
            Role::Primary,
            down,
            0,
            NOW
        ));
    }

    #[test]
    fn load_balancing_follows_isc_polarity() {
        let hba = server_common::loadbalance::split_to_hba(128);
        let key = [0x6a, 0xd9, 0x3e, 0xff, 0xef, 0xc7]; // bucket 118: primary
        assert!(load_balance_mine(
            Role::Primary,
            State::Normal,
            &hba,
            &key,
            0,
            3
        ));
        assert!(!load_balance_mine(
            Role::Secondary,
            State::Normal,
            &hba,
            &key,
            0,
            3
        ));
        assert!(load_balance_mine(
            Role::Secondary,
            State::Normal,
            &hba,
            &key,
            4,
            3
        ));
        assert!(load_balance_mine(
            Role::Secondary,
            State::Normal,
            &hba,
            &key,
            0,
            0
        ));
        let down = State::PartnerDown { since: 0 };
        assert!(load_balance_mine(Role::Secondary, down, &hba, &key, 0, 3));
    }

    #[test]
    fn transition_tables() {
        use BindingState::*;
        let active = {
            let mut lease = lease(Active);
            lease.ends = NOW + 100;
            lease
        };
        let check = |local: &Lease, to, potential, role, cooperating| {
            check_transition(local, to, potential, role, cooperating, NOW).is_ok()
        };
        assert!(!check(&active, Free, 0, Role::Primary, true));
        assert!(check(&active, Released, 0, Role::Primary, true));
        assert!(check(&active, Free, NOW, Role::Secondary, true));
        assert!(!check(&active, Free, NOW + 1, Role::Secondary, true));
        assert!(!check(&active, Expired, 0, Role::Secondary, true));
        assert!(!check(&active, Backup, 0, Role::Secondary, false));
        assert!(check(&lease(Expired), Free, 0, Role::Primary, true));
        assert!(!check(&lease(Expired), Free, NOW + 5, Role::Primary, true));
        assert!(check(&lease(Free), Active, 0, Role::Primary, true));
    }

    #[test]
    fn duels() {
        use BindingState::*;
        assert!(local_copy_wins(Free, 0, Free, 0, Role::Primary));
        assert!(!local_copy_wins(Free, 0, Free, 0, Role::Secondary));
        assert!(!local_copy_wins(Free, 0, Active, 0, Role::Primary));
        assert!(local_copy_wins(Active, 5, Active, 4, Role::Secondary));
        assert!(!local_copy_wins(Active, 5, Expired, 0, Role::Primary));
    }
}
