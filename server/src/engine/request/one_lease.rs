//! `one-lease-per-client` (dhcpd.conf(5); ISC `ack_lease`): on a DHCPREQUEST the client's
//! other leases are released, on the assumption that a client with one interface remembers
//! only one lease. ISC walks the client's uid hash chain when the new lease has a client
//! identifier, and its hardware chain when it has none — or, with `deny duplicates`, when the
//! client's host declaration has no client identifier. A lease already RELEASED, EXPIRED,
//! RESET, FREE or BACKUP is left as it is; the others go through `release_lease` (its `on
//! release` body, then RELEASED or FREE). The lease store is one shard with this statement
//! (`Config::releases_other_leases`), so every lease of the client is in `leases`.

use super::*;
use crate::engine::statements::Executed;

impl Context<'_, '_> {
    /// The leases released for the DHCPREQUEST whose lease will be at `address`, already
    /// stored, with what their `on release` statements logged and started.
    pub(super) fn release_other_leases(
        &self,
        address: Ipv4Addr,
        scopes: &ScopeStack<'_>,
        leases: &mut LeaseStore,
    ) -> (Vec<Lease>, Executed) {
        let mut released = Vec::new();
        let mut executed = Executed::default();
        if self.inbound.message_type != Some(MessageType::Request)
            || !scopes
                .find(|scope| scope.one_lease_per_client)
                .unwrap_or(false)
        {
            return (released, executed);
        }
        let config = &self.engine.config;
        let host = self.classification.host(config);
        // The uid the new lease gets: the host's identifier for a fixed address (ISC
        // `mockup_lease`), else the client's unless `ignore-client-uids`.
        let uid: Option<Vec<u8>> = match host.filter(|host| !host.fixed_addresses.is_empty()) {
            Some(host) if host.fixed_addresses.contains(&address) => host.client_id.clone(),
            _ if scopes
                .find(|scope| scope.ignore_client_uids)
                .unwrap_or(false) =>
            {
                None
            }
            _ => self.inbound.client_id.map(<[u8]>::to_vec),
        };
        let deny_duplicates = host.is_some_and(|host| host.client_id.is_none())
            && scopes.find(|scope| scope.duplicates) == Some(Permission::Deny);
        let mut others: Vec<Ipv4Addr> = Vec::new();
        if let Some(uid) = uid.as_deref() {
            others.extend(leases.leases_of_client_id(uid).map(|lease| lease.address));
        }
        if uid.is_none() || deny_duplicates {
            let hardware = self.inbound.hardware;
            others.extend(
                leases
                    .leases_of_hardware(&hardware)
                    .map(|lease| lease.address),
            );
        }
        others.sort_unstable();
        others.dedup();
        for other in others {
            if other == address {
                continue;
            }
            let Some(lease) = leases.get(other) else {
                continue;
            };
            if !matches!(
                lease.binding_state,
                BindingState::Active | BindingState::Abandoned
            ) {
                continue;
            }
            // ISC `release_lease`: the kept `on release` body runs, then the lease ends.
            let mut lease = lease.clone();
            let view_lease = lease.clone();
            let (ran, changes) = crate::engine::lease_events::run(
                config,
                &mut lease,
                crate::engine::lease_events::Event::Release,
                &self.view(Some(view_lease.address), Some(&view_lease)),
            )
            .unwrap_or_default();
            if !changes.is_empty() {
                let extra = lease
                    .extra
                    .get_or_insert_with(|| Box::new(LeaseExtra::default()));
                apply_variables(&mut extra.variables, &changes);
            }
            executed.extend(ran);
            let lease = self.released(lease);
            leases.upsert(lease.clone());
            released.push(lease);
        }
        (released, executed)
    }
}
