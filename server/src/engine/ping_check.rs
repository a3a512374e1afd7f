//! `ping-check` (dhcpd.conf(5) "ping-check", "ping-timeout", "ping-timeout-ms",
//! "ping-cltt-secs"): before a new address is offered, one ICMP echo request goes to it; an
//! answer means some host already uses the address, which is then abandoned and the DISCOVER
//! goes unanswered (the client retransmits and gets another address); no answer within the
//! timeout lets the OFFER go. As ISC dhcpd 4.4 does it: `do_ping_check` and `ack_lease`
//! (server/dhcp.c) decide, `lease_pinged` and `lease_ping_timeout` (server/dhcpd.c) resolve.
//!
//! Sans-IO: the engine's decision carries a [`PingCheck`] next to the OFFER it holds back; the
//! driver sends the echo request, keeps the OFFER until `timeout_ms` has passed, and reports
//! the outcome through [`Engine::ping_timed_out`] (send the OFFER) or [`Engine::ping_answered`]
//! (the lease change that abandons the address). Meanwhile the store holds the address for the
//! client with the probe marked ([`LeaseStore::probing`]): another client cannot be offered it,
//! and a retransmitted DISCOVER of the same client is ignored, as ISC's `ack_lease` returns
//! early for a lease whose `state` (the parked OFFER) is set.

use std::net::Ipv4Addr;

use crate::lease::record::{BindingState, Lease, UnixTime};
use crate::lease::store::{ClientKey, LeaseStore};

use super::packet::Inbound;
use super::scope::ScopeStack;
use super::select::Candidate;
use super::{Engine, Snapshot};

/// `ping-timeout` when not set (ISC `DEFAULT_PING_TIMEOUT`, includes/dhcpd.h).
pub const DEFAULT_PING_TIMEOUT: u32 = 1;
/// `ping-cltt-secs` when not set (ISC `DEFAULT_PING_CLTT_SECS`).
pub const DEFAULT_PING_CLTT_SECS: u32 = 60;

/// An ICMP echo request the driver must send to `address` before the decision's OFFER leaves:
/// the OFFER goes once `timeout_ms` has passed without an echo reply from `address`
/// ([`Engine::ping_timed_out`]); a reply abandons the address instead
/// ([`Engine::ping_answered`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingCheck {
    pub address: Ipv4Addr,
    /// The client the address is held for meanwhile.
    pub client: ClientKey,
    /// How long to wait for the echo reply: `ping-timeout-ms` when above 0, else
    /// `ping-timeout` seconds (ISC `do_ping_check`).
    pub timeout_ms: u64,
    /// `abandon-lease-time` in the address's scopes, for an abandonment.
    pub abandon_seconds: u32,
}

impl PingCheck {
    /// The latest `now` (whole seconds) at which the probe can still be pending, given that it
    /// was decided at `now`: the store's bound on the hold ([`LeaseStore::hold_offer_at`]).
    pub(crate) fn pending_until(&self, now: UnixTime) -> UnixTime {
        let seconds = self.timeout_ms.div_ceil(1000).min(u64::from(u32::MAX)) as u32;
        // One second for the fraction of `now` already gone, one for the driver's latency.
        now.saturating_add(seconds).saturating_add(2)
    }
}

/// ISC `do_ping_check`: whether an OFFER of `candidate` in `scopes` waits for a ping, and for
/// how long (milliseconds). No ping for a fixed address (a static lease), an ACTIVE lease, or
/// with `ping-check false`; an address last given to this same client (by hardware address
/// and client identifier, ISC `reuse_lease`'s `same_client`) within `ping-cltt-secs` of its
/// last transaction is not pinged again unless it was abandoned. A lease never handed out has
/// no transaction time and is always pinged. A pending offer to this client counts as its
/// transaction (ISC's offer writes the lease's `cltt`).
pub(crate) fn wanted(
    scopes: &ScopeStack<'_>,
    candidate: &Candidate,
    inbound: &Inbound<'_>,
    leases: &LeaseStore,
    now: UnixTime,
) -> Option<u64> {
    let Candidate::Dynamic {
        address, existing, ..
    } = candidate
    else {
        return None;
    };
    let state = existing
        .as_ref()
        .map_or(BindingState::Free, |lease| lease.binding_state);
    if state == BindingState::Active {
        return None;
    }
    if !scopes.find(|scope| scope.ping_check).unwrap_or(true) {
        return None;
    }
    let (same_client, original_cltt) = match leases.offer_made(*address, &inbound.key, now) {
        Some(made) => (true, made),
        None => existing.as_ref().map_or((false, 0), |lease| {
            (same_client(lease, inbound, scopes), lease.cltt)
        }),
    };
    if same_client && original_cltt != 0 && state != BindingState::Abandoned {
        let cltt_secs = scopes
            .find(|scope| scope.ping_cltt_secs)
            .unwrap_or(DEFAULT_PING_CLTT_SECS);
        if now.saturating_sub(original_cltt) < cltt_secs {
            return None;
        }
    }
    let timeout_ms = match scopes.find(|scope| scope.ping_timeout_ms) {
        Some(milliseconds) if milliseconds > 0 => u64::from(milliseconds),
        _ => {
            let seconds = scopes
                .find(|scope| scope.ping_timeout)
                .unwrap_or(DEFAULT_PING_TIMEOUT);
            u64::from(seconds) * 1000
        }
    };
    Some(timeout_ms)
}

/// ISC `reuse_lease`'s `same_client`: the lease's client identifier (none when
/// `ignore-client-uids`) and hardware address are the request's.
fn same_client(lease: &Lease, inbound: &Inbound<'_>, scopes: &ScopeStack<'_>) -> bool {
    let ignore_uids = scopes
        .find(|scope| scope.ignore_client_uids)
        .unwrap_or(false);
    let uid = if ignore_uids { None } else { inbound.client_id };
    lease.uid() == uid && lease.hardware == Some(inbound.hardware)
}

impl Engine {
    /// The probe of `check` went unanswered for its timeout (ISC `lease_ping_timeout`): true
    /// when its OFFER is to be sent now — the address is still held for the client, no longer
    /// marked as probed. False when the hold is gone meanwhile (an OMAPI or partner change of
    /// the lease, a reload that dropped its pool): the OFFER would promise what the store no
    /// longer keeps.
    pub fn ping_timed_out(
        &self,
        now: UnixTime,
        check: &PingCheck,
        leases: &mut LeaseStore,
    ) -> bool {
        leases.end_probe(check.address, &check.client, now)
    }

    /// An ICMP echo reply came from `check.address` while its OFFER waited (ISC `lease_pinged`):
    /// some host uses the address, so it is abandoned for `abandon-lease-time` ("Abandoning IP
    /// address …: pinged before offer", ISC `abandon_lease`) and the OFFER is not sent.
    /// Returns the abandoned lease, to apply as the engine's lease change
    /// (`crate::changes::apply`: lease log, failover partner, DNS); `None` when no probe of
    /// the address is pending any more (a late or spurious reply, which ISC ignores too).
    pub fn ping_answered(
        &self,
        now: UnixTime,
        snapshot: &Snapshot,
        check: &PingCheck,
        leases: &mut LeaseStore,
    ) -> Option<Lease> {
        if !leases.end_probe(check.address, &check.client, now) {
            return None;
        }
        let lease = leases
            .get(check.address)
            .cloned()
            .unwrap_or_else(|| Lease::free(check.address));
        let rewind_follows = self
            .relationship_of_address(&snapshot.failover, check.address)
            .is_none_or(|relationship| {
                crate::failover::rules::rewind_follows(relationship.service())
            });
        let lease = super::request::abandoned(lease, now, check.abandon_seconds, rewind_follows);
        // The upsert drops the pending offer with the probe.
        leases.upsert(lease.clone());
        Some(lease)
    }
}
