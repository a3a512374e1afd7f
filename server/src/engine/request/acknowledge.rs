//! DHCPACK (ISC `ack_lease` with `offer` DHCPACK): the lease bound for the client, its
//! variables and `on commit` statements, the pool's usage threshold, and the reply; split from
//! `request.rs`, which decides when to acknowledge.

use super::*;
use crate::engine::encapsulation::relay_agent_chain;
use crate::engine::packet::agent_sub_options;

impl Context<'_, '_> {
    /// DHCPACK for `candidate`: builds the new lease (ISC `ack_lease`), upserts it and returns
    /// it for commit.
    pub(super) fn acknowledge(
        &self,
        candidate: Candidate,
        packet_network: Option<Network>,
        leases: &mut LeaseStore,
    ) -> Decision {
        // Failover: no DHCPACK while the state does not serve (docs/spec/failover.md §6.1).
        if let Candidate::Dynamic { pool, .. } = &candidate {
            if self
                .engine
                .relationship_of_pool(&self.snapshot.failover, *pool)
                .is_some_and(|relationship| !relationship.serving())
            {
                return Decision::ignored(IgnoreReason::NotForUs);
            }
        }
        let scopes = self.scopes_for_candidate(&candidate);
        if !self.admitted(&scopes) {
            return Decision::ignored(IgnoreReason::Denied);
        }
        let billing = match self.billing(&candidate, scopes.added_classes(), false, leases) {
            Ok(billing) => billing,
            Err(reason) => return Decision::ignored(reason),
        };
        let (failover, tsfp) = self.failover(&candidate);
        let times = lease_time(
            &scopes,
            self.inbound.requested_lease_time,
            self.pool_use(&candidate, leases),
            failover,
            tsfp,
            self.now,
        );
        let reserves = self.reserves_infinite(&scopes);
        let reused = self.reusable(&candidate, &scopes).filter(|_| {
            billing
                .as_ref()
                .is_none_or(|billing| billing.allows_reuse())
                && !becomes_reserved(&candidate, reserves)
        });
        let seconds = reused.unwrap_or(times.granted);
        let address = candidate.address();
        // ISC `ack_lease`: the `on commit` statements run for a DHCPACK.
        let committed = if scopes.has_executable_statements() {
            let existing = match &candidate {
                Candidate::Dynamic { existing, .. } => existing.as_ref(),
                Candidate::Fixed { .. } => None,
            };
            scopes.run_commit(&self.view(Some(address), existing))
        } else {
            Default::default()
        };
        // `one-lease-per-client`: the client's other leases are released first (ISC does it
        // before its permission checks; here after them, so that nothing is released for a
        // request that is then ignored and commits nothing).
        let (mut commit, released_executed) =
            self.release_other_leases(candidate.address(), &scopes, leases);
        let threshold_line = match (&candidate, reused) {
            (Candidate::Dynamic { pool, .. }, None) => {
                self.pool_threshold_line(*pool, address, &scopes, leases)
            }
            _ => None,
        };
        if let Candidate::Dynamic { existing, .. } = &candidate {
            let lease = match (reused, existing) {
                // ISC answers from the lease as it stands and does not commit it. xdhcpd
                // writes it again, unchanged, and the ACK waits for that record like any other:
                // the store may hold the lease before (or without) its record being durable —
                // the ACK that bound it may still wait for its fsync (a duplicate through a
                // second relay), or that commit failed, and the store keeps the change while the
                // client retries — so the record already written does not necessarily cover the
                // time this ACK promises, but the new one does (DESIGN.md: a lease is ACKed
                // only after it is durable).
                (Some(_), Some(existing)) => existing.clone(),
                _ => {
                    let mut lease = self.bound_lease(address, existing.as_ref(), times, &scopes);
                    if reserves {
                        lease.flags |= crate::lease::record::flags::RESERVED;
                    }
                    // ISC `lease->on_star`: the `on expiry`/`on release` bodies the statements
                    // just executed leave with the lease, in its record.
                    crate::engine::lease_events::at_ack(
                        existing.as_ref(),
                        self.now,
                        scopes.events(),
                    )
                    .write_into(&mut lease);
                    if let Some(billing) = &billing {
                        billing.apply_to(&mut lease);
                    }
                    // The variables the statements set (`set`, `on commit`) are the lease's
                    // (ISC keeps them in its binding scope and writes `set NAME = …;`).
                    let mut changes = committed.1.clone();
                    // ISC `ack_lease` saves the client's vendor-class-identifier in the lease's
                    // bindings (for DHCPLEASEQUERY).
                    if let Some(vendor) = self.inbound.option_bytes(VENDOR_CLASS_IDENTIFIER) {
                        if !vendor.is_empty() {
                            changes.push((
                                "vendor-class-identifier".to_owned(),
                                Some(crate::config::expr::Value::Data(vendor)),
                            ));
                        }
                    }
                    if !changes.is_empty() {
                        let extra = lease
                            .extra
                            .get_or_insert_with(|| Box::new(LeaseExtra::default()));
                        apply_variables(&mut extra.variables, &changes);
                    }
                    leases.upsert(lease.clone());
                    lease
                }
            };
            commit.push(lease);
        }
        let message = self.lease_header(address, &scopes);
        let same_network = match (packet_network, self.engine.network_of(address)) {
            (Some(packet), Some(lease)) => packet.shared == lease.shared,
            _ => false,
        };
        let destination = self.destination(&message, same_network);
        // ISC `ddns_updates` answers the client's option 81 (for dynamic leases the
        // operations follow from the committed lease, `crate::changes`; a fixed address has
        // no lease record, so its add goes with the reply).
        let (fqdn, static_lease_dns) = match candidate {
            Candidate::Dynamic { .. } => (self.ddns(&scopes).and_then(|ddns| ddns.reply), None),
            Candidate::Fixed { .. } => self.static_lease_ddns(&scopes, address, seconds),
        };
        let (reverse_name, no_reverse_name) = self.reverse_name(&scopes, address);
        let mut reply = finish(
            message,
            &self.inbound,
            Some(&scopes),
            // ISC `dhcp_reply` may overload `file` and `sname`.
            &Assembly {
                may_overload: true,
                fqdn,
                reverse_name,
                ..self.configured_assembly(
                    &scopes,
                    Some(MessageType::Ack),
                    Some(seconds),
                    candidate.subnet(),
                )
            },
            destination,
        );
        // What the XDP fast path needs to repeat a fresh binding: a fixed address is never
        // reused (ISC skips `reuse_lease` for a static lease).
        reply.cache_threshold = match (&candidate, reused) {
            (_, Some(_)) => None,
            (Candidate::Dynamic { .. }, None) => Some(cache_threshold(&scopes)),
            (Candidate::Fixed { .. }, None) => Some(0),
        };
        reply.executed.log_lines.extend(no_reverse_name);
        // ISC updates a static lease's names at every DHCPACK: its renewals must reach
        // userspace, so the fast path does not repeat this reply.
        if static_lease_dns.is_some() {
            reply.cache_threshold = None;
        }
        reply.static_lease_dns = static_lease_dns;
        reply.executed.extend(released_executed);
        reply.executed.extend(committed.0);
        reply
            .executed
            .log_lines
            .extend(self.reservation_line(&candidate, reserves));
        reply.executed.log_lines.extend(threshold_line);
        Decision {
            reply: Some(reply),
            commit,
            outcome: Outcome::Acked(address),
            ping_check: None,
            executed: Default::default(),
        }
    }

    /// ISC `check_pool_threshold` at a DHCPACK: the line to log when `pool`'s use crosses
    /// `log-threshold-high` (or falls back to `log-threshold-low`).
    pub(super) fn pool_threshold_line(
        &self,
        pool: crate::config::model::PoolId,
        address: Ipv4Addr,
        scopes: &ScopeStack<'_>,
        leases: &mut LeaseStore,
    ) -> Option<(crate::config::model::LogPriority, String)> {
        use crate::lease::store::ThresholdCrossing;
        let high = scopes.find(|scope| scope.log_threshold_high);
        let low = scopes.find(|scope| scope.log_threshold_low);
        let crossing = leases.check_pool_threshold(pool, high, low)?;
        let config = &self.engine.config;
        // An implicit shared network is named by its subnet, `NET/BITS` (ISC confpars.c
        // `piaddrmask`).
        let network = config
            .pools
            .get(pool.0 as usize)
            .and_then(|pool| config.shared_networks.get(pool.shared_network.0 as usize));
        let shared = match network {
            Some(network) => network.name.clone().unwrap_or_else(|| {
                network
                    .subnets
                    .first()
                    .and_then(|subnet| config.subnets.get(subnet.0 as usize))
                    .map_or_else(
                        || "no name".to_owned(),
                        |subnet| {
                            let bits = u32::from(subnet.netmask).count_ones();
                            format!("{}/{bits}", subnet.network)
                        },
                    )
            }),
            None => "no name".to_owned(),
        };
        let line = match crossing {
            ThresholdCrossing::Exceeded { high, used, size } => format!(
                "Pool threshold exceeded - shared subnet: {shared}; address: {address}; high \
                 threshold {high}% {used}/{size}."
            ),
            ThresholdCrossing::Reset { used, size } => format!(
                "Pool threshold reset - shared subnet: {shared}; address: {address}; low \
                 threshold {used}/{size}."
            ),
        };
        Some((crate::config::model::LogPriority::Error, line))
    }

    /// What `adaptive-lease-time-threshold` looks at for `candidate` (ISC `ack_lease`): its
    /// pool's use, and how long the address's lease still runs — until the end of this
    /// client's pending offer when there is one (ISC's OFFER moved the lease's end there),
    /// else to the end the client was told. `None` for a fixed address (no pool).
    pub(super) fn pool_use(
        &self,
        candidate: &Candidate,
        leases: &LeaseStore,
    ) -> Option<super::super::lease_time::PoolUse> {
        let Candidate::Dynamic {
            address,
            pool,
            existing,
            ..
        } = candidate
        else {
            return None;
        };
        let ends = leases
            .offer_until(*address, &self.inbound.key, self.now)
            .or_else(|| existing.as_ref().map(super::super::fast_path::told_end))
            .unwrap_or(0);
        Some(super::super::lease_time::PoolUse {
            size: leases.pool_size(*pool),
            free: leases.unallocated_count(*pool),
            remaining: i64::from(ends) - i64::from(self.now),
        })
    }

    /// True when the client asks for an infinite lease (option 51 = 0xffffffff) where
    /// `infinite-is-reserved` is on: ISC `ack_lease` then marks the lease reserved.
    pub(super) fn reserves_infinite(&self, scopes: &ScopeStack<'_>) -> bool {
        self.inbound.requested_lease_time == Some(u32::MAX)
            && scopes
                .find(|scope| scope.infinite_is_reserved)
                .unwrap_or(false)
    }

    /// ISC's "Infinite-leasetime reservation made on ADDRESS." (info), logged by `ack_lease`
    /// for an OFFER and a DHCPACK that reserve a dynamic lease.
    pub(super) fn reservation_line(
        &self,
        candidate: &Candidate,
        reserves: bool,
    ) -> Option<(crate::config::model::LogPriority, String)> {
        (reserves && matches!(candidate, Candidate::Dynamic { .. })).then(|| {
            (
                crate::config::model::LogPriority::Info,
                format!(
                    "Infinite-leasetime reservation made on {}.",
                    candidate.address()
                ),
            )
        })
    }

    /// The lease time left on `candidate`'s current lease when ISC would hand it out again as
    /// it stands (`dhcp-cache-threshold`, [`reuse_for`]); `None` for a fixed address (ISC's
    /// static leases are never reused) and an address without a lease.
    pub(super) fn reusable(&self, candidate: &Candidate, scopes: &ScopeStack<'_>) -> Option<u32> {
        match candidate {
            Candidate::Dynamic {
                existing: Some(lease),
                ..
            } => reuse_for(lease, &self.inbound, scopes, self.now),
            _ => None,
        }
    }

    /// The lease as ISC `ack_lease` writes it for a DHCPACK: bound at now for `times`
    /// ([`super::fast_path::bind`], shared with the kernel's renewals), with the client's
    /// hardware address, identifier and hostname, the relay agent sub-options stashed for
    /// renewals.
    pub(super) fn bound_lease(
        &self,
        address: Ipv4Addr,
        existing: Option<&Lease>,
        times: LeaseTime,
        scopes: &ScopeStack<'_>,
    ) -> Lease {
        let inbound = &self.inbound;
        let mut lease = existing.cloned().unwrap_or_else(|| Lease::free(address));
        // ISC `allocate_lease`/`ack_lease`: an expired lease given out again loses its old
        // bindings (`set` variables); DNS names were removed at its expiry.
        if lease.ends < self.now && lease.ends != NEVER {
            if let Some(extra) = lease.extra.as_mut() {
                extra
                    .variables
                    .retain(|(name, _)| name.starts_with("ddns-"));
            }
        }
        let relationship = self
            .engine
            .relationship_of_address(&self.snapshot.failover, address);
        crate::engine::fast_path::bind(&mut lease, self.now, times, relationship);
        lease.hardware = Some(inbound.hardware);
        let ignore_uids = scopes
            .find(|scope| scope.ignore_client_uids)
            .unwrap_or(false);
        lease.set_uid(if ignore_uids { None } else { inbound.client_id });
        lease.set_client_hostname(inbound.hostname);
        self.stash_relay_agent_information(&mut lease, scopes);
        lease
    }

    /// ISC `ack_lease` stashes the request's relay agent information on the lease for unicast
    /// renewals, which carry none (server/dhcp.c "cache them for renewal"): the list the
    /// reply's statements executed into when a scope sets an `agent` option (ISC shares that
    /// list between the request and the reply), else the sub-options as received. A request
    /// without option 82, or a scope's `stash-agent-options false`, leaves the lease's
    /// sub-options as they were.
    pub(super) fn stash_relay_agent_information(&self, lease: &mut Lease, scopes: &ScopeStack<'_>) {
        let Some(echoed) = self.inbound.relay_agent.as_deref() else {
            return;
        };
        if !scopes
            .find(|scope| scope.stash_agent_options)
            .unwrap_or(true)
        {
            return;
        }
        let sub_options: Vec<(u8, Vec<u8>)> = match relay_agent_chain(scopes, Some(echoed)) {
            Some(chain) => chain
                .into_iter()
                .filter_map(|(code, value)| Some((u8::try_from(code).ok()?, value?)))
                .collect(),
            None => agent_sub_options(echoed),
        };
        if !sub_options.is_empty() {
            let extra = lease
                .extra
                .get_or_insert_with(|| Box::new(LeaseExtra::default()));
            extra.agent_options = sub_options;
        }
    }
}

/// ISC `ack_lease` "Cannot reuse: lease is changing to RESERVED": a lease about to be reserved
/// is bound afresh, not reused (`dhcp-cache-threshold`).
pub(super) fn becomes_reserved(candidate: &Candidate, reserves: bool) -> bool {
    reserves
        && match candidate {
            Candidate::Dynamic { existing, .. } => existing
                .as_ref()
                .is_none_or(|lease| lease.flags & crate::lease::record::flags::RESERVED == 0),
            Candidate::Fixed { .. } => false,
        }
}
