//! RFC 951/1542 BOOTP (a BOOTREQUEST without option 53), as ISC's server/bootp.c `bootp` and,
//! for dynamic leases, `ack_lease` with `offer` 0 answer it.

use crate::lease::record::{flags, BindingState, Lease, UnixTime, NEVER};
use crate::lease::store::LeaseStore;

use super::super::lease_time::MAX_TIME;
use super::super::options::{finish, Assembly};
use super::super::scope::ScopeStack;
use super::super::select::{Candidate, Purpose};
use super::super::starvation::StarvationState;
use super::super::{Decision, IgnoreReason, Outcome};
use super::Context;

impl Context<'_, '_> {
    /// ISC `bootp`: the client's host's fixed address on the packet's network; else the lease
    /// `find_lease` finds for it (its pool must permit the client: an implicit pool of plain
    /// ranges denies `dynamic bootp clients`); else a new address from the first pool that
    /// permits it (ISC `allocate_lease`, as for a DHCPDISCOVER). A dynamic address is leased
    /// as ISC `ack_lease` does for BOOTP: flagged `dynamic-bootp`, for ever unless
    /// `dynamic-bootp-lease-length` or `dynamic-bootp-lease-cutoff` say otherwise.
    pub(super) fn bootp(
        &self,
        leases: &mut LeaseStore,
        starvation: &mut StarvationState,
    ) -> Decision {
        let engine = self.engine;
        let Some(network) = engine.locate_network(&self.inbound, self.request.interface_address)
        else {
            return Decision::ignored(IgnoreReason::UnknownSubnet);
        };
        let failover = &self.snapshot.failover;
        let found = engine.find_lease(
            failover,
            &self.inbound,
            &self.classification,
            network.shared,
            Purpose::Bootp,
            self.now,
            leases,
        );
        let candidate = match found.candidate {
            Some(candidate) => candidate,
            None => match self.new_candidate(network.shared, true, leases, starvation) {
                Ok(candidate) => candidate,
                Err(reason) => return Decision::ignored(reason),
            },
        };
        // ISC `bootp` under failover: silent unless the state serves, and in a cooperating
        // state only for this server's hash buckets, without `dhcpdiscover`'s exception for
        // a partner short of free leases (docs/spec/failover.md §6.1, §11.3).
        if !self.balanced_to_us(&candidate, || true) {
            leases.return_unused(candidate.address());
            return Decision::ignored(IgnoreReason::NotForUs);
        }
        let scopes = self.scopes_for_candidate(&candidate);
        if let Some(reason) = self.dropped(&scopes, false) {
            leases.return_unused(candidate.address());
            return Decision::ignored(reason);
        }
        let billing = match self.billing(&candidate, scopes.added_classes(), false, leases) {
            Ok(billing) => billing,
            Err(reason) => {
                leases.return_unused(candidate.address());
                return Decision::ignored(reason);
            }
        };
        let address = candidate.address();
        let mut commit = Vec::new();
        if let Candidate::Dynamic { existing, .. } = &candidate {
            let mut lease = self.bootp_lease(address, existing.as_ref(), &scopes);
            if let Some(billing) = &billing {
                billing.apply_to(&mut lease);
            }
            leases.upsert(lease.clone());
            commit.push(lease);
        }
        let mut message = self.lease_header(address, &scopes);
        // server/bootp.c: without `next-server`, siaddr is the server's own address (that of
        // the interface the lease's shared network is attached to, else of the receiving
        // interface; xdhcpd takes the receiving interface's). ISC `ack_lease`, which answers a
        // dynamic BOOTP lease, leaves it 0.
        if matches!(candidate, Candidate::Fixed { .. })
            && scopes.find(|scope| scope.next_server).is_none()
        {
            if let Some(own) = self.request.interface_address {
                message.set_siaddr(own);
            }
        }
        let destination = self.destination(&message, true);
        // ISC's `ack_lease` answers a dynamic BOOTP lease and looks its name up
        // (`get-lease-hostnames`); `bootp` itself answers a fixed address and does not.
        let (reverse_name, no_reverse_name) = match candidate {
            Candidate::Dynamic { .. } => self.reverse_name(&scopes, address),
            Candidate::Fixed { .. } => (None, None),
        };
        let mut reply = finish(
            message,
            &self.inbound,
            Some(&scopes),
            // BOOTP replies carry no DHCP message type, no server identifier and no lease time
            // (RFC 1534). A dynamic BOOTP lease is answered by ISC's `dhcp_reply`, which may
            // overload; a fixed address by `bootp` itself, which never does.
            &Assembly {
                server_id: None,
                may_overload: matches!(candidate, Candidate::Dynamic { .. }),
                echo_relay_agent: matches!(candidate, Candidate::Dynamic { .. }),
                reverse_name,
                ..self.configured_assembly(&scopes, None, None, candidate.subnet())
            },
            destination,
        );
        reply.executed.log_lines.extend(no_reverse_name);
        Decision {
            reply: Some(reply),
            commit,
            outcome: Outcome::BootReplied(address),
            ping_check: None,
            executed: Default::default(),
        }
    }

    /// The lease ISC `ack_lease` writes for a BOOTP client (`offer` 0): bound now, ACTIVE with
    /// ACTIVE as next state, flagged `dynamic-bootp`, ending at [`bootp_lease_end`], with the
    /// client's hardware address, identifier and host name.
    fn bootp_lease(
        &self,
        address: std::net::Ipv4Addr,
        existing: Option<&Lease>,
        scopes: &ScopeStack<'_>,
    ) -> Lease {
        let mut lease = existing.cloned().unwrap_or_else(|| Lease::free(address));
        lease.starts = self.now;
        lease.ends = bootp_lease_end(
            self.now,
            scopes.find(|scope| scope.dynamic_bootp_lease_length),
            scopes.find(|scope| scope.dynamic_bootp_lease_cutoff),
        );
        lease.cltt = self.now;
        lease.binding_state = BindingState::Active;
        lease.next_binding_state = BindingState::Active;
        lease.rewind_binding_state = BindingState::Active;
        lease.flags = (lease.flags & !flags::HORIZON) | flags::BOOTP;
        lease.hardware = Some(self.inbound.hardware);
        let ignore_uids = scopes
            .find(|scope| scope.ignore_client_uids)
            .unwrap_or(false);
        lease.set_uid(if ignore_uids {
            None
        } else {
            self.inbound.client_id
        });
        lease.set_client_hostname(self.inbound.hostname);
        // ISC answers a dynamic BOOTP lease with `ack_lease`, which stashes option 82 too.
        self.stash_relay_agent_information(&mut lease, scopes);
        lease
    }
}

/// The end of a dynamic BOOTP lease bound at `now` (ISC `ack_lease`, dhcpd.conf(5)
/// "dynamic-bootp-lease-cutoff", "dynamic-bootp-lease-length"): `MAX_TIME` ("never") unless
/// `dynamic-bootp-lease-length` gives a length, and `dynamic-bootp-lease-cutoff` (seconds since
/// the epoch) a date, which wins, even a past one. An end from 2038 on is "never", as the lease
/// file reads it.
pub(crate) fn bootp_lease_end(now: UnixTime, length: Option<u32>, cutoff: Option<u32>) -> UnixTime {
    let ends = match (cutoff, length) {
        (Some(cutoff), _) => u64::from(cutoff),
        (None, Some(length)) => u64::from(now) + u64::from(length),
        (None, None) => u64::from(MAX_TIME),
    };
    if ends >= u64::from(MAX_TIME) {
        NEVER
    } else {
        ends as UnixTime
    }
}
