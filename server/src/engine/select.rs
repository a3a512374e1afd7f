//! Where the client is and which address it gets: ISC `locate_network`, `find_lease` and
//! `allocate_lease` (server/dhcp.c), over the lease store's public API.

use std::net::Ipv4Addr;

use crate::config::model::{PoolId, SharedNetworkId, SubnetId};
use crate::failover::rules::{may_allocate, own_free_state, partner_free_state};
use crate::failover::states::{Role, Service, State};
use crate::failover::view::FailoverView;
use crate::lease::record::{BindingState, Lease, UnixTime};
use crate::lease::store::{lease_belongs_to, ClientKey, FreeQueue, LeaseStore};

use super::classify::{pool_permits, Classification};
use super::packet::Inbound;
use super::Engine;

/// The network a packet came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Network {
    pub subnet: SubnetId,
    pub shared: SharedNetworkId,
}

/// The address chosen for a client.
#[derive(Clone, Debug)]
pub(crate) enum Candidate {
    /// A host's `fixed-address` (ISC `mockup_lease`): never stored as a dynamic lease.
    Fixed { address: Ipv4Addr, subnet: SubnetId },
    /// An address of a pool, with the store's record of it (if any).
    Dynamic {
        address: Ipv4Addr,
        pool: PoolId,
        subnet: SubnetId,
        existing: Option<Lease>,
    },
}

impl Candidate {
    pub fn address(&self) -> Ipv4Addr {
        match self {
            Candidate::Fixed { address, .. } | Candidate::Dynamic { address, .. } => *address,
        }
    }

    pub fn subnet(&self) -> SubnetId {
        match self {
            Candidate::Fixed { subnet, .. } | Candidate::Dynamic { subnet, .. } => *subnet,
        }
    }
}

/// ISC `find_lease`'s DHCPNAK text when the requested address cannot be had.
pub(crate) const NOT_AVAILABLE: &str = "requested address not available";

/// The result of [`Engine::find_lease`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Found {
    pub candidate: Option<Candidate>,
    /// ISC `ours`: the requested address is one this server manages, so a DHCPREQUEST for it
    /// that cannot be granted is NAKed (when authoritative) rather than ignored.
    pub ours: bool,
    /// The DHCPNAK message text (option 56), as ISC's `dhcp_message`.
    pub message: &'static str,
}

/// A failover pool's relationship as the lease rules see it (docs/spec/failover.md §6.1, §8.2, §8.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PoolRules {
    pub role: Role,
    pub state: State,
    pub service: Service,
    pub mclt: u32,
}

/// The store queue of a free state (§7.1).
fn queue_of(state: BindingState) -> FreeQueue {
    match state {
        BindingState::Backup => FreeQueue::Backup,
        _ => FreeQueue::Free,
    }
}

/// Which message `find_lease` serves; the rules differ slightly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    Discover,
    Request,
    Bootp,
}

impl Engine {
    /// ISC `locate_network`: the link-selection address (RFC 3527 sub-option 82.5, or RFC 3011
    /// option 118) when present, else giaddr for a relayed packet (RFC 2131 §4.3.1), else the
    /// receiving interface's address; then the subnet containing it and its shared network.
    pub(crate) fn locate_network(
        &self,
        inbound: &Inbound<'_>,
        interface_address: Option<Ipv4Addr>,
    ) -> Option<Network> {
        let address = inbound
            .link_selection
            .or_else(|| Some(inbound.giaddr).filter(|giaddr| !giaddr.is_unspecified()))
            .or(interface_address)?;
        self.network_of(address)
    }

    /// The subnet and shared network containing `address`.
    pub(crate) fn network_of(&self, address: Ipv4Addr) -> Option<Network> {
        let subnet = self.config.subnet_for(address)?;
        let shared = self.config.subnets.get(subnet.0 as usize)?.shared_network;
        Some(Network { subnet, shared })
    }

    /// The pool whose ranges contain `address` (a binary search of the config's address map).
    pub(crate) fn pool_of(&self, address: Ipv4Addr) -> Option<PoolId> {
        self.config.addresses().pool_of(address)
    }

    /// The failover relationship of `pool` as the lease rules see it; `None` without failover.
    /// Until a driver runs the relationship it counts as NORMAL (each server keeps to its own).
    pub(crate) fn pool_rules(&self, failover: &FailoverView, pool: PoolId) -> Option<PoolRules> {
        let relationship = self.relationship_of_pool(failover, pool)?;
        Some(PoolRules {
            role: relationship.role,
            state: relationship.rules_state(),
            service: relationship.service(),
            // The MCLT in force: a secondary learns it from the CONNECT (docs/spec/failover.md §4.1).
            mclt: relationship.mclt,
        })
    }

    /// ISC `lease_mine_to_reallocate`: without failover, FREE and BACKUP leases; with failover,
    /// the ownership rule of the relationship's current state (docs/spec/failover.md §8.2): own free
    /// state always, the partner's only in PARTNER-DOWN after MCLT, EXPIRED/RELEASED when they
    /// can be rewound to the own free state or in PARTNER-DOWN once tsfp has passed.
    fn mine_to_reallocate(
        &self,
        failover: &FailoverView,
        lease: &Lease,
        pool: Option<PoolId>,
        now: UnixTime,
    ) -> bool {
        match pool.and_then(|pool| self.pool_rules(failover, pool)) {
            None => matches!(
                lease.binding_state,
                BindingState::Free | BindingState::Backup
            ),
            Some(view) => may_allocate(lease, view.role, view.state, view.mclt, now),
        }
    }

    /// ISC `dhcpdiscover`: a lease `find_lease` chose is kept only if it is ACTIVE, was last
    /// ACTIVE (the same client's, rewound), or is this server's to reallocate (docs/spec/failover.md
    /// §8.2); otherwise a new one is allocated. Without failover everything is kept.
    pub(crate) fn may_offer_lease(
        &self,
        failover: &FailoverView,
        candidate: &Candidate,
        now: UnixTime,
    ) -> bool {
        let Candidate::Dynamic {
            address,
            pool,
            existing,
            ..
        } = candidate
        else {
            return true;
        };
        if self.pool_rules(failover, *pool).is_none() {
            return true;
        }
        let lease = existing.clone().unwrap_or_else(|| Lease::free(*address));
        lease.binding_state == BindingState::Active
            || lease.rewind_binding_state == BindingState::Active
            || self.mine_to_reallocate(failover, &lease, Some(*pool), now)
    }

    /// ISC `dhcpdiscover` / `find_lease` "peer has leases": does the partner hold any lease in
    /// its free state (BACKUP when we are primary, FREE when secondary) in a failover pool of
    /// `share`? From the store's counters, O(pools).
    pub(crate) fn partner_has_free_leases(
        &self,
        failover: &FailoverView,
        share: SharedNetworkId,
        leases: &LeaseStore,
    ) -> bool {
        let Some(shared) = self.config.shared_networks.get(share.0 as usize) else {
            return true;
        };
        shared
            .pools
            .iter()
            .any(|&pool| match self.pool_rules(failover, pool) {
                Some(rules) => match partner_free_state(rules.role) {
                    BindingState::Backup => leases.backup_queue_count(pool) > 0,
                    _ => leases.free_state_count(pool) > 0,
                },
                None => false,
            })
    }

    /// The store's record of `address`, or a never-used free lease when the address belongs to a
    /// pool (ISC creates lease objects for every pool address at startup).
    fn lease_at(&self, leases: &LeaseStore, address: Ipv4Addr) -> Option<(Lease, Option<PoolId>)> {
        let pool = self.pool_of(address);
        match leases.get(address) {
            Some(lease) => Some((lease.clone(), pool)),
            None => pool.map(|pool| (Lease::free(address), Some(pool))),
        }
    }

    /// A dynamic candidate for `lease`, keeping the store's record when there is one.
    fn dynamic(
        &self,
        lease: Lease,
        pool: Option<PoolId>,
        leases: &LeaseStore,
    ) -> Option<Candidate> {
        let network = self.network_of(lease.address)?;
        Some(Candidate::Dynamic {
            address: lease.address,
            pool: pool?,
            subnet: network.subnet,
            existing: leases.get(lease.address).cloned(),
        })
    }

    /// ISC `find_lease`: the lease this client should get on `share`, if an existing one fits.
    ///
    /// Order of preference (ISC): the host's fixed address on this network, then the lease of the
    /// requested address (ciaddr, else option 50), then the lease bound to the client identifier,
    /// then the one bound to the hardware address.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn find_lease(
        &self,
        failover: &FailoverView,
        inbound: &Inbound<'_>,
        classification: &Classification,
        share: SharedNetworkId,
        purpose: Purpose,
        now: UnixTime,
        leases: &LeaseStore,
    ) -> Found {
        let mut found = Found {
            message: NOT_AVAILABLE,
            ..Found::default()
        };
        let bootp = purpose == Purpose::Bootp;
        let requested = if !inbound.ciaddr.is_unspecified() {
            Some(inbound.ciaddr)
        } else {
            inbound.requested_address
        };
        let in_share = |address: Ipv4Addr| {
            self.network_of(address)
                .is_some_and(|network| network.shared == share)
        };
        let permitted = |pool: Option<PoolId>| {
            pool.and_then(|pool| self.config.pools.get(pool.0 as usize))
                .is_some_and(|pool| pool_permits(pool, classification, bootp, now))
        };

        // A host declaration with a fixed address on this shared network (ISC `mockup_lease`).
        let fixed = classification.host(&self.config).and_then(|host| {
            host.fixed_addresses.iter().find_map(|address| {
                let network = self.network_of(*address)?;
                (network.shared == share).then_some(Candidate::Fixed {
                    address: *address,
                    subnet: network.subnet,
                })
            })
        });
        // A DHCPREQUEST for anything but the fixed address can get no other lease.
        if purpose == Purpose::Request {
            if let Some(fixed) = &fixed {
                if Some(fixed.address()) != requested {
                    found.ours = true;
                    found.message = "requested address is incorrect";
                    return found;
                }
            }
        }

        let usable = |lease: &Lease| {
            let pool = self.pool_of(lease.address);
            (lease.binding_state == BindingState::Active
                || self.mine_to_reallocate(failover, lease, pool, now))
                && in_share(lease.address)
                && permitted(pool)
        };
        let mut uid_lease = inbound
            .client_id
            .and_then(|id| leases.find_by_client_id(id))
            .filter(|lease| usable(lease))
            .cloned();
        let mut hw_lease = leases
            .find_by_hardware(&inbound.hardware)
            .filter(|lease| {
                // A lease that may still be in use by a client with another identifier on the
                // same hardware is not this client's.
                let other_identifier = !matches!(
                    lease.binding_state,
                    BindingState::Free | BindingState::Backup
                ) && lease.uid().is_some()
                    && lease.uid() != inbound.client_id;
                !other_identifier && usable(lease)
            })
            .cloned();

        let mut ip_lease = requested.and_then(|address| self.lease_at(leases, address));
        if ip_lease.is_some() {
            found.ours = true;
        }
        if let Some((lease, _)) = &ip_lease {
            if !in_share(lease.address) {
                // ISC writes "requested address on bad subnet" here, then overwrites it with
                // "requested address not available" once the requested lease is gone.
                ip_lease = None;
            }
        }
        if let Some((lease, _)) = &ip_lease {
            let same_client = match lease.uid() {
                Some(uid) => inbound.client_id == Some(uid),
                None => lease.hardware == Some(inbound.hardware),
            }
                // An abandoned lease carries no client (ISC `abandon_lease`); the allocator's
                // last resort offered it to this client, which now REQUESTs it (ISC records the
                // client on the offered lease; the store keeps it in the offer).
                || (lease.binding_state == BindingState::Abandoned
                    && leases.offered_to(lease.address, &inbound.key, now));
            if !same_client
                && !matches!(
                    lease.binding_state,
                    BindingState::Free | BindingState::Backup
                )
            {
                // Only an address bound to someone else is a reason to NAK.
                if lease.binding_state != BindingState::Active {
                    found.ours = false;
                }
                ip_lease = None;
            } else if !leases.is_available(lease.address, &inbound.key, now)
                && !lease_belongs_to(lease, &inbound.key)
                // `is_available` rejects these states outright; only pending offers matter here.
                && !matches!(
                    lease.binding_state,
                    BindingState::Abandoned | BindingState::Backup
                )
            {
                // Held by a pending offer to another client (RFC 2131 §4.3.1).
                ip_lease = None;
            }
        }
        if let Some((lease, pool)) = &ip_lease {
            if (uid_lease.is_some() || hw_lease.is_some())
                && lease.binding_state != BindingState::Active
                && !self.mine_to_reallocate(failover, lease, *pool, now)
                && purpose == Purpose::Discover
            {
                ip_lease = None;
            }
        }
        // Toss duplicate references to the same lease.
        let same = |a: &Option<Lease>, b: Ipv4Addr| a.as_ref().is_some_and(|l| l.address == b);
        if let (Some(hw), Some(uid)) = (&hw_lease, &uid_lease) {
            if hw.address == uid.address {
                hw_lease = None;
            }
        }
        if let Some((lease, _)) = &ip_lease {
            if same(&hw_lease, lease.address) {
                hw_lease = None;
            }
            if same(&uid_lease, lease.address) {
                uid_lease = None;
            }
        }
        // The client must be permitted to use the requested address's pool.
        if let Some((_, pool)) = &ip_lease {
            if !permitted(*pool) {
                ip_lease = None;
            }
        }
        if purpose == Purpose::Request && ip_lease.is_none() && fixed.is_none() {
            return found;
        }

        let chosen = if let Some(fixed) = fixed {
            Some(fixed)
        } else if let Some((lease, pool)) = ip_lease.clone() {
            self.dynamic(lease, pool, leases)
        } else if let Some(lease) = uid_lease {
            let pool = self.pool_of(lease.address);
            self.dynamic(lease, pool, leases)
        } else if let Some(lease) = hw_lease {
            // ISC is lax with BOOTP clients (no identifier) whose lease has one.
            let fits = match lease.uid() {
                None => true,
                Some(uid) => match inbound.client_id {
                    Some(id) => id == uid,
                    None => bootp,
                },
            };
            let pool = self.pool_of(lease.address);
            fits.then(|| self.dynamic(lease, pool, leases)).flatten()
        } else {
            None
        };
        // An abandoned lease is only reclaimed when the client explicitly REQUESTs it; otherwise
        // the client is sent back to DISCOVER (ISC `find_lease`).
        if let Some(Candidate::Dynamic {
            existing: Some(lease),
            address,
            ..
        }) = &chosen
        {
            let requested_this = ip_lease
                .as_ref()
                .is_some_and(|(l, _)| l.address == *address);
            if lease.binding_state == BindingState::Abandoned
                && !(requested_this && purpose == Purpose::Request)
            {
                found.ours = true;
                return found;
            }
        }
        found.candidate = chosen;
        found
    }

    /// ISC `allocate_lease`: a free address from the first permitted pool of the shared network
    /// that has one; when no permitted pool has one, the lease abandoned longest ago that this
    /// server may reallocate ("Reclaiming abandoned lease", [`Engine::reclaim_abandoned`]).
    /// BOOTP clients are allocated alike: the pools' permits say whether they may (an
    /// implicit pool of plain ranges denies `dynamic bootp clients`, `config::parser::ranges`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn allocate(
        &self,
        failover: &FailoverView,
        inbound: &Inbound<'_>,
        classification: &Classification,
        share: SharedNetworkId,
        bootp: bool,
        now: UnixTime,
        leases: &mut LeaseStore,
    ) -> Option<Candidate> {
        let shared = self.config.shared_networks.get(share.0 as usize)?;
        let permitted = |pool_id: &&PoolId| {
            self.config
                .pools
                .get(pool_id.0 as usize)
                .is_some_and(|pool| pool_permits(pool, classification, bootp, now))
        };
        for &pool_id in shared.pools.iter().filter(permitted) {
            let address = if let Some(rules) = self.pool_rules(failover, pool_id) {
                self.allocate_failover(pool_id, rules, &inbound.key, now, leases)
            } else {
                leases.allocate(pool_id, &inbound.key, now)
            };
            if let Some(candidate) =
                address.and_then(|address| self.candidate(address, pool_id, leases))
            {
                return Some(candidate);
            }
        }
        let pools: Vec<PoolId> = shared.pools.iter().filter(permitted).copied().collect();
        let (address, pool_id) =
            self.reclaim_abandoned(failover, &pools, &inbound.key, now, leases)?;
        self.candidate(address, pool_id, leases)
    }

    /// A dynamic candidate for an address the allocator chose in `pool`.
    fn candidate(&self, address: Ipv4Addr, pool: PoolId, leases: &LeaseStore) -> Option<Candidate> {
        let network = self.network_of(address)?;
        Some(Candidate::Dynamic {
            address,
            pool,
            subnet: network.subnet,
            existing: leases.get(address).cloned(),
        })
    }

    /// ISC `allocate_lease`'s last resort: of the ABANDONED leases of `pools` that this server
    /// may reallocate (without failover any; with failover the primary's always, the
    /// secondary's only in PARTNER-DOWN after the wait, docs/spec/failover.md §8.2), the one
    /// abandoned the longest ago, i.e. with the earliest end. Each pool's queue is ordered by
    /// end, so this looks at one lease per pool (plus those held by offers to other clients).
    fn reclaim_abandoned(
        &self,
        failover: &FailoverView,
        pools: &[PoolId],
        client: &ClientKey,
        now: UnixTime,
        leases: &mut LeaseStore,
    ) -> Option<(Ipv4Addr, PoolId)> {
        let mut best: Option<(UnixTime, Ipv4Addr, PoolId)> = None;
        for &pool in pools {
            let rules = self.pool_rules(failover, pool);
            let accept = |lease: &Lease| match rules {
                Some(rules) => may_allocate(lease, rules.role, rules.state, rules.mclt, now),
                None => true,
            };
            let Some(address) =
                leases.allocate_from(pool, FreeQueue::Abandoned, client, now, accept)
            else {
                continue;
            };
            let ends = leases.get(address).map_or(0, |lease| lease.ends);
            if best.is_none_or(|(best_ends, _, _)| ends < best_ends) {
                best = Some((ends, address, pool));
            }
        }
        best.map(|(_, address, pool)| (address, pool))
    }

    /// True when in some shared network with failover pools the partner holds no lease in its
    /// free state, so that this server answers DISCOVERs of the partner's buckets there
    /// (docs/spec/failover.md §11.3). A load balancer that cannot tell shared networks apart (the XDP
    /// program) must then leave balancing to [`Engine::handle`]. `failover` is the
    /// relationships' state now. O(pools). Only the shared networks whose pools `leases` holds
    /// are looked at (a store shard answers for its own, `lease::shards`).
    pub fn partner_short_of_free_leases(
        &self,
        failover: &FailoverView,
        leases: &LeaseStore,
    ) -> bool {
        self.config
            .shared_networks
            .iter()
            .enumerate()
            .any(|(index, shared)| {
                shared.pools.iter().any(|&pool| {
                    leases.holds_pool(pool) && self.relationships.of_pool(pool).is_some()
                }) && !self.partner_has_free_leases(failover, SharedNetworkId(index as u32), leases)
            })
    }

    /// ISC `allocate_lease` in a failover pool (docs/spec/failover.md §8.2): this server's own free
    /// state first (primary: FREE, never-used addresses included; secondary: BACKUP); in
    /// PARTNER-DOWN then the partner's free state, each lease only once STOS + MCLT (or
    /// tsfp + MCLT, whichever is later) has passed, and EXPIRED/RELEASED/RESET leases whose
    /// tsfp has passed (ISC frees those by timer in PARTNER-DOWN). In NORMAL and
    /// COMMUNICATIONS-INTERRUPTED only the own free state. Each step is a bounded walk of one
    /// store queue ([`LeaseStore::allocate_from`]), never a scan of the pool.
    fn allocate_failover(
        &self,
        pool: PoolId,
        rules: PoolRules,
        client: &ClientKey,
        now: UnixTime,
        leases: &mut LeaseStore,
    ) -> Option<Ipv4Addr> {
        let accept = |lease: &Lease| may_allocate(lease, rules.role, rules.state, rules.mclt, now);
        let own = queue_of(own_free_state(rules.role));
        if let Some(address) = leases.allocate_from(pool, own, client, now, accept) {
            return Some(address);
        }
        if !matches!(rules.state, State::PartnerDown { .. }) {
            return None;
        }
        let partner = queue_of(partner_free_state(rules.role));
        leases
            .allocate_from(pool, partner, client, now, accept)
            .or_else(|| leases.allocate_from(pool, FreeQueue::Reclaim, client, now, accept))
    }
}
