//! The lease a renewal leaves, whoever answers it: the engine's DHCPACK (`request`'s
//! `bound_lease`) and the XDP program's repetition of that ACK in the kernel
//! (`xdp::runtime`, which only moves the results to and from the kernel). One function binds a
//! lease for both ([`bind`]), and the horizon rule of DESIGN.md "The fast path and its two
//! bounds" lives here too: a renewal the kernel may repeat is recorded with `ends` = its
//! horizon, one lease time past its end, so that the log never says less than what the kernel
//! may have promised.
//!
//! Sans-IO: times come in as arguments, the failover relationship as a plain
//! [`RelationshipView`].

use crate::failover::rules::rewind_follows;
use crate::failover::view::RelationshipView;
use crate::lease::record::{flags, BindingState, Lease, UnixTime};

use super::lease_time::{expiry, LeaseTime, MAX_TIME};

/// ISC `ack_lease`'s binding of `lease` at `now` for `times` (docs/spec/failover.md §8.1, §8.2):
/// starts = cltt = now, ends = now + granted, ACTIVE, next state FREE (EXPIRED under failover),
/// the rewind state ACTIVE unless the partner will not hear of it soon
/// ([`rewind_follows`]), and under failover the potential expiration tstp = now + desired +
/// granted / 2, which the partner acknowledges via BNDUPD (its tsfp never above it).
/// `failover` is the lease's relationship, `None` without failover. Who the client is
/// (hardware address, identifier, host name, relay options) is the caller's.
pub(crate) fn bind(
    lease: &mut Lease,
    now: UnixTime,
    times: LeaseTime,
    failover: Option<&RelationshipView>,
) {
    lease.starts = now;
    lease.ends = expiry(now, times.granted);
    lease.cltt = now;
    lease.binding_state = BindingState::Active;
    if failover.is_none_or(|relationship| rewind_follows(relationship.service())) {
        lease.rewind_binding_state = BindingState::Active;
    }
    lease.next_binding_state = if failover.is_some() {
        BindingState::Expired
    } else {
        BindingState::Free
    };
    // A fresh binding's `ends` is the end the client is told (the horizon, if any, is set
    // again by `stretch_to_horizon` or `kernel_renewal`).
    lease.flags &= !(flags::BOOTP | flags::HORIZON);
    if failover.is_some() {
        lease.tstp = expiry(now, times.desired.saturating_add(times.granted / 2));
        if lease.tstp < lease.tsfp {
            lease.tsfp = lease.tstp;
        }
    }
}

/// The horizon of a lease ending at `ends` that the kernel renews for `lease_time`: the end
/// its record carries while the kernel may repeat the ACK.
pub fn horizon(ends: UnixTime, lease_time: u32) -> UnixTime {
    ends.saturating_add(lease_time)
}

/// Moves the end of `lease` (bound from `starts` to `ends`, the end the client is told) to
/// `horizon`, and marks it ([`flags::HORIZON`]) when that end can be told back from the record
/// alone: the horizon is one lease time past it, so it is `starts + (horizon − starts) / 2`.
/// Where the times were clamped it cannot, and the lease is taken to end at the horizon (a
/// later cache-threshold answer then names the horizon, which is durable too).
fn set_horizon(lease: &mut Lease, horizon: UnixTime) {
    let told = lease.ends;
    lease.ends = horizon;
    if told >= lease.starts && horizon - told == told - lease.starts {
        lease.flags |= flags::HORIZON;
    } else {
        lease.flags &= !flags::HORIZON;
    }
}

/// The end the client was told for `lease`: its `ends`, or, while the record carries the fast
/// path's horizon ([`flags::HORIZON`]), the end one lease time before it. ISC keeps that end
/// in its lease (`ack_lease`); `dhcp-cache-threshold` measures the lease by it
/// (`lease_time::reuse`).
pub fn told_end(lease: &Lease) -> UnixTime {
    if lease.flags & flags::HORIZON != 0 && lease.ends >= lease.starts {
        lease.starts + (lease.ends - lease.starts) / 2
    } else {
        lease.ends
    }
}

/// Whether the engine's ACK that committed `lease` granted the full desired lease time: its
/// `tstp` is `starts + desired + granted / 2` ([`bind`]), which is `starts + 1.5 × granted`
/// only when nothing was cut. A shortened grant is not published: the kernel would repeat the
/// short time, where the engine gives more once the partner acks (xdp `bounds`).
pub fn full_grant(lease: &Lease, granted: u32) -> bool {
    let expected = u64::from(lease.starts) + u64::from(granted) + u64::from(granted / 2);
    // A clamped tstp cannot tell the two apart: not published.
    expected < u64::from(MAX_TIME) - 1 && u64::from(lease.tstp) == expected
}

/// The engine just committed `lease` in a DHCPACK of a renewal that the kernel is to repeat
/// with `lease_time`: the record's end moves to the horizon. Returns the lease's own end and
/// that horizon, or `None` (the lease untouched) when the lease is in a failover pool and its
/// grant was shortened by the MCLT rule ([`full_grant`]): such an ACK stays in userspace.
pub fn stretch_to_horizon(
    lease: &mut Lease,
    lease_time: u32,
    in_failover_pool: bool,
) -> Option<(UnixTime, UnixTime)> {
    if in_failover_pool && !full_grant(lease, lease_time) {
        return None;
    }
    let ends = lease.ends;
    set_horizon(lease, horizon(ends, lease_time));
    Some((ends, lease.ends))
}

/// A renewal the kernel answered, from `starts` to `ends`, for the store's lease `stored` (an
/// ACTIVE lease of the same client): the lease as the engine's ACK of the same request leaves
/// it ([`bind`]; the kernel only repeats unshortened grants, so desired = granted = its lease
/// time, and the request's options are the template's byte for byte, so the client's identity
/// is unchanged), its end moved to the next horizon. `failover` is the lease's relationship now.
pub fn kernel_renewal(
    stored: &Lease,
    starts: UnixTime,
    ends: UnixTime,
    failover: Option<&RelationshipView>,
) -> Lease {
    let lease_time = ends.saturating_sub(starts);
    let mut lease = stored.clone();
    bind(
        &mut lease,
        starts,
        LeaseTime {
            desired: lease_time,
            granted: lease_time,
        },
        failover,
    );
    set_horizon(&mut lease, horizon(ends, lease_time));
    lease
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::failover::codes::ServerStateCode;
    use crate::failover::rules::grant;
    use crate::failover::states::{Role, State};

    const NOW: UnixTime = 1_795_836_305;

    fn relationship(state: State) -> RelationshipView {
        RelationshipView {
            role: Role::Primary,
            attached: true,
            state,
            partner: Some(ServerStateCode::Normal),
            mclt: 300,
            hba: None,
            load_balance_max_seconds: 3,
        }
    }

    fn active(address: Ipv4Addr) -> Lease {
        let mut lease = Lease::free(address);
        lease.binding_state = BindingState::Active;
        lease.rewind_binding_state = BindingState::Active;
        lease.next_binding_state = BindingState::Expired;
        lease.starts = NOW - 600;
        lease.cltt = NOW - 600;
        lease.ends = NOW + 600;
        lease.tstp = NOW + 900;
        lease.tsfp = NOW + 900;
        lease
    }

    /// The kernel's renewal of a lease leaves exactly what the engine's ACK of the same
    /// request (a full grant of the same lease time) leaves, stretched to the horizon.
    #[test]
    fn a_kernel_renewal_is_the_engines_ack_at_the_horizon() {
        for failover in [
            None,
            Some(relationship(State::Normal)),
            Some(relationship(State::CommunicationsInterrupted {
                since: NOW - 10,
                auto_partner_down_at: None,
            })),
        ] {
            let stored = active(Ipv4Addr::new(10, 0, 0, 100));
            let mut acked = stored.clone();
            bind(
                &mut acked,
                NOW,
                LeaseTime {
                    desired: 1200,
                    granted: 1200,
                },
                failover.as_ref(),
            );
            let published = stretch_to_horizon(&mut acked, 1200, failover.is_some());
            assert_eq!(published, Some((NOW + 1200, NOW + 2400)));
            let renewed = kernel_renewal(&stored, NOW, NOW + 1200, failover.as_ref());
            assert_eq!(renewed, acked, "{failover:?}");
        }
    }

    /// Out of contact the rewind state stays what the partner last knew (§8.2); the potential
    /// expiration is asked for again and tsfp never exceeds it.
    #[test]
    fn failover_fields_follow_the_relationship() {
        let mut stored = active(Ipv4Addr::new(10, 0, 0, 100));
        stored.rewind_binding_state = BindingState::Free;
        stored.tsfp = NOW + 100_000;
        let interrupted = relationship(State::CommunicationsInterrupted {
            since: NOW - 10,
            auto_partner_down_at: None,
        });
        let renewed = kernel_renewal(&stored, NOW, NOW + 1200, Some(&interrupted));
        assert_eq!(renewed.rewind_binding_state, BindingState::Free);
        assert_eq!(renewed.tstp, NOW + 1800);
        assert_eq!(renewed.tsfp, NOW + 1800);
        assert_eq!(renewed.starts, NOW);
        assert_eq!(renewed.cltt, NOW);
        assert_eq!(renewed.ends, NOW + 2400);
        let plain = kernel_renewal(&stored, NOW, NOW + 1200, None);
        assert_eq!(plain.rewind_binding_state, BindingState::Active);
        assert_eq!(
            plain.tstp, stored.tstp,
            "no potential expiration without failover"
        );
        assert_eq!(plain.next_binding_state, BindingState::Free);
    }

    /// Only an unshortened grant is published: tstp = starts + D + G/2 equals starts + 1.5 G
    /// exactly when G = D.
    #[test]
    fn shortened_grants_are_not_full() {
        let mut lease = Lease::free(Ipv4Addr::new(10, 0, 0, 1));
        lease.starts = 10_000;
        let full = grant(3600, 300, 20_000, 10_000);
        assert_eq!(full.granted, 3600);
        lease.tstp = full.tstp;
        assert!(full_grant(&lease, full.granted));
        let short = grant(3600, 300, 11_000, 10_000);
        assert_eq!(short.granted, 1300);
        lease.tstp = short.tstp;
        assert!(!full_grant(&lease, short.granted));
        lease.ends = 10_000 + 1300;
        assert_eq!(stretch_to_horizon(&mut lease, 1300, true), None);
        assert_eq!(lease.ends, 11_300, "untouched");
        assert_eq!(
            stretch_to_horizon(&mut lease, 1300, false),
            Some((11_300, 12_600))
        );
        // A clamped potential expiration cannot tell: not published.
        lease.starts = 0x7fff_0000;
        lease.tstp = 0x7fff_fffe;
        assert!(!full_grant(&lease, 0x10_0000));
    }
}
