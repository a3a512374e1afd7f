//! What a client tells the server rather than asks of it (RFC 2131 §4.3.3 DHCPDECLINE,
//! §4.3.4 DHCPRELEASE) and DHCPINFORM (§4.3.5): no lease is allocated, so these live apart from
//! the DISCOVER/REQUEST path of `request.rs`.

use super::*;

impl Context<'_, '_> {
    /// RFC 2131 §4.3.3 DHCPDECLINE: the address is in use by someone else; ISC `dhcpdecline`
    /// abandons it for `abandon-lease-time` unless `deny declines`, and ignores it while a
    /// failover relationship does not answer. Beyond ISC: a decline of an address bound or
    /// offered to another client is ignored (only the client an address was given to can find
    /// it in use, §4.4.1), and declines are limited per MAC by the starvation defence
    /// (`engine::starvation`, point 6), so that one client cannot empty a pool.
    pub(super) fn decline(
        &self,
        leases: &mut LeaseStore,
        starvation: &mut StarvationState,
    ) -> Decision {
        let Some(address) = self.inbound.requested_address else {
            // ISC: "DHCPDECLINE must specify address."
            return Decision::ignored(IgnoreReason::Malformed(Malformation::MissingField(
                "requested address (option 50)",
            )));
        };
        let engine = self.engine;
        let Some(pool) = engine.pool_of(address) else {
            return Decision::ignored(IgnoreReason::UnknownLease);
        };
        let base = engine
            .config
            .pools
            .get(pool.0 as usize)
            .map(|pool| pool.scope)
            .unwrap_or(ScopeId::GLOBAL);
        let scopes = self.scopes_for(base);
        if matches!(
            scopes.find(|scope| scope.declines),
            Some(Permission::Deny | Permission::Ignore)
        ) {
            return Decision::ignored(IgnoreReason::Denied);
        }
        // ISC `dhcpdecline`: "ignored" while the relationship is not responding or starting up.
        if self
            .pool_rules(pool)
            .is_some_and(|rules| rules.service == Service::NotResponding)
        {
            return Decision::ignored(IgnoreReason::NotForUs);
        }
        if self.held_by_other_client(address, leases) {
            return Decision::ignored(IgnoreReason::DeclineOfOtherClient);
        }
        if let Err(limit) = engine.admit_decline(starvation, self.now, &self.inbound) {
            return Decision::ignored(IgnoreReason::RateLimited(limit));
        }
        let abandon_time = scopes
            .find(|scope| scope.abandon_lease_time)
            .unwrap_or(DEFAULT_ABANDON_LEASE_TIME);
        let lease = leases
            .get(address)
            .cloned()
            .unwrap_or_else(|| Lease::free(address));
        let lease = abandoned(lease, self.now, abandon_time, self.rewind_follows(address));
        leases.upsert(lease.clone());
        Decision {
            reply: None,
            commit: vec![lease],
            outcome: Outcome::Declined(address),
            ping_check: None,
            executed: Default::default(),
        }
    }

    /// True when `address` is bound to a client other than the sender of this DHCPDECLINE (an
    /// ACTIVE lease not yet ended), or held by a pending offer to another client. The sender is
    /// the lease's client when either its client identifier or its hardware address matches:
    /// RFC 2131 table 5 makes option 61 optional in a DHCPDECLINE even when the client used it
    /// to get the lease.
    fn held_by_other_client(&self, address: Ipv4Addr, leases: &LeaseStore) -> bool {
        let inbound = &self.inbound;
        let bound_to_other = leases.get(address).is_some_and(|lease| {
            let sender = lease
                .uid()
                .is_some_and(|uid| inbound.client_id == Some(uid))
                || lease.hardware == Some(inbound.hardware);
            lease.is_active_at(self.now) && !sender
        });
        bound_to_other || leases.offered_to_other(address, &inbound.key, self.now)
    }

    /// RFC 2131 §4.3.4 DHCPRELEASE: the client gives its lease back (ISC `dhcprelease` and
    /// `release_lease`): only a lease with the client's hardware address, still running; it ends
    /// now and becomes free (released under failover).
    pub(super) fn release(&self, leases: &mut LeaseStore) -> Decision {
        let inbound = &self.inbound;
        if inbound.ciaddr.is_unspecified() {
            return Decision::ignored(IgnoreReason::Malformed(Malformation::MissingField(
                "ciaddr",
            )));
        }
        let by_id = inbound
            .client_id
            .and_then(|id| leases.find_by_client_id(id))
            .filter(|lease| lease.address == inbound.ciaddr);
        let Some(lease) = by_id.or_else(|| leases.get(inbound.ciaddr)) else {
            return Decision::ignored(IgnoreReason::UnknownLease);
        };
        if lease.hardware != Some(inbound.hardware) {
            return Decision::ignored(IgnoreReason::NotForUs);
        }
        if lease.ends <= self.now && lease.ends != NEVER {
            return Decision::ignored(IgnoreReason::UnknownLease);
        }
        let view = self
            .engine
            .pool_of(lease.address)
            .and_then(|pool| self.pool_rules(pool));
        // Failover: no release while the state does not serve (ISC `dhcprelease`, §6.1).
        if view.is_some_and(|view| view.service == Service::NotResponding) {
            return Decision::ignored(IgnoreReason::NotForUs);
        }
        // ISC `release_lease`: the `on release` body the lease kept from its DHCPACK runs,
        // with the lease's variables; what it sets stays with the lease (until `released`
        // drops the bindings). The lease keeps neither body afterwards.
        let mut lease = lease.clone();
        let view_lease = lease.clone();
        let (executed, changes) = crate::engine::lease_events::run(
            &self.engine.config,
            &mut lease,
            crate::engine::lease_events::Event::Release,
            &self.view(Some(view_lease.address), Some(&view_lease)),
        )
        .unwrap_or_default();
        // What the statements set, then ISC's "blow away any bindings" in `released`.
        if !changes.is_empty() {
            let extra = lease
                .extra
                .get_or_insert_with(|| Box::new(crate::lease::record::LeaseExtra::default()));
            super::apply_variables(&mut extra.variables, &changes);
        }
        let lease = self.released(lease);
        let address = lease.address;
        leases.upsert(lease.clone());
        Decision {
            reply: None,
            commit: vec![lease],
            outcome: Outcome::Released(address),
            ping_check: None,
            executed,
        }
    }

    /// `lease` as ISC `release_lease` leaves it: a lease not already free or ended ends now
    /// and becomes free (RELEASED under failover), and loses what only an active lease keeps
    /// — the client's hostname and the stashed relay agent sub-options (ISC
    /// `make_binding_state_transition`, "client-specific bindings that are only correct when
    /// the lease is active"). The client's hardware address and identifier stay.
    pub(super) fn released(&self, mut lease: Lease) -> Lease {
        if matches!(
            lease.binding_state,
            BindingState::Free
                | BindingState::Backup
                | BindingState::Released
                | BindingState::Expired
                | BindingState::Reset
        ) {
            return lease;
        }
        let view = self
            .engine
            .pool_of(lease.address)
            .and_then(|pool| self.pool_rules(pool));
        lease.ends = self.now;
        lease.binding_state = match view {
            // RELEASED until the partner acks; out of contact straight back to the own
            // free state when the partner never heard of the binding (docs/spec/failover.md §8.2).
            Some(view) => released_state(&lease, view.role, view.service),
            None => BindingState::Free,
        };
        // A RELEASED lease becomes FREE on the partner's ack (§7.2).
        lease.next_binding_state = match lease.binding_state {
            BindingState::Released => BindingState::Free,
            state => state,
        };
        if view.is_some() {
            // ISC `release_lease`: the BNDUPD carries tstp = now as potential expiration.
            lease.tstp = self.now;
        }
        if view.is_none_or(|view| rewind_follows(view.service)) {
            lease.rewind_binding_state = lease.binding_state;
        }
        lease.set_client_hostname(None);
        if let Some(extra) = lease.extra.as_mut() {
            extra.agent_options.clear();
            // ISC `release_lease` "blows away" the lease's bindings after its `on release`
            // statements ran. The `ddns-*` ones stay until the DNS removal they drive is done
            // (ISC removes the names first, then drops them; `crate::ddns::lease`).
            extra
                .variables
                .retain(|(name, _)| name.starts_with("ddns-"));
        }
        lease.shrink_extra();
        lease
    }

    /// RFC 2131 §4.3.5 DHCPINFORM: configuration only — an ACK with the options, no lease time,
    /// yiaddr 0, as ISC `dhcpinform` answers it. The client's address is ciaddr, else the
    /// packet's source; without either there is no one to answer. The subnet is the one of the
    /// link selection (RFC 3527 sub-option 82.5, RFC 3011 option 118) when present, else of
    /// that address (of giaddr for a relayed INFORM without ciaddr); an address in no declared
    /// subnet, or a subnet this server is not authoritative for, gets no answer. The ACK goes
    /// to the client's address on port 68 — also through a relay when ciaddr is set (§4.3.5:
    /// "unicast to ciaddr") — and only to the relay (broadcast bit set) when ciaddr is 0.
    pub(super) fn inform(&self, leases: &LeaseStore) -> Decision {
        let engine = self.engine;
        let inbound = &self.inbound;
        let relayed = !inbound.giaddr.is_unspecified();
        let client_address = if inbound.ciaddr.is_unspecified() {
            *self.request.source.ip()
        } else {
            inbound.ciaddr
        };
        // ISC: "ignored (null source address)".
        if client_address.is_unspecified() {
            return Decision::ignored(IgnoreReason::Malformed(Malformation::MissingField(
                "ciaddr or a source address",
            )));
        }
        let subnet_address =
            inbound
                .link_selection
                .unwrap_or(if inbound.ciaddr.is_unspecified() && relayed {
                    inbound.giaddr
                } else {
                    client_address
                });
        let Some(network) = engine.network_of(subnet_address) else {
            return Decision::ignored(IgnoreReason::UnknownSubnet);
        };
        if !self.authoritative_for_subnet(network) {
            return Decision::ignored(IgnoreReason::NotAuthoritative);
        }
        // The pool of ciaddr's lease adds its options (ISC overlays pool options).
        let base = Some(inbound.ciaddr)
            .filter(|ciaddr| !ciaddr.is_unspecified() && leases.get(*ciaddr).is_some())
            .and_then(|ciaddr| engine.pool_of(ciaddr))
            .and_then(|pool| engine.config.pools.get(pool.0 as usize))
            .map(|pool| pool.scope)
            .unwrap_or_else(|| self.subnet_scope(network.subnet));
        let scopes = self.scopes_for(base);
        let mut message = reply_header(inbound);
        message.set_ciaddr(inbound.ciaddr);
        set_boot_fields(&mut message, &scopes);
        let destination = if inbound.ciaddr.is_unspecified() && relayed {
            // The relay cannot tell where to send an answer without yiaddr (ISC).
            with_broadcast(&mut message);
            Destination::Relay(inbound.giaddr)
        } else {
            Destination::Unicast(client_address)
        };
        let reply = finish(
            message,
            inbound,
            Some(&scopes),
            &Assembly {
                // ISC `dhcpinform` does not call `echo_client_id` (RFC 6842 §3 asks for it; a
                // client accepts an answer without option 61, as from any RFC 2131 server).
                echo_client_id: false,
                ..self.configured_assembly(&scopes, Some(MessageType::Ack), None, network.subnet)
            },
            destination,
        );
        Decision {
            reply: Some(reply),
            commit: Vec::new(),
            outcome: Outcome::Informed,
            ping_check: None,
            executed: Default::default(),
        }
    }
}

/// `lease` as ISC `abandon_lease` leaves it (a DHCPDECLINE, or an echo reply to `ping-check`):
/// ends = now + `abandon_seconds` (clamped to MAX_TIME), the client binding removed;
/// `make_binding_state_transition` then gives ABANDONED the next state FREE, which the expiry
/// run applies at `ends` (`LeaseStore::expire`). Until then the address is only given out when
/// its pool has nothing else (`Engine::allocate`). `rewind_follows`: see
/// [`Context::rewind_follows`].
pub(crate) fn abandoned(
    mut lease: Lease,
    now: UnixTime,
    abandon_seconds: u32,
    rewind_follows: bool,
) -> Lease {
    lease.binding_state = BindingState::Abandoned;
    lease.next_binding_state = BindingState::Free;
    if rewind_follows {
        lease.rewind_binding_state = BindingState::Abandoned;
    }
    lease.ends = expiry(now, abandon_seconds).min(MAX_TIME);
    lease.hardware = None;
    lease.set_uid(None);
    lease
}
