//! Where the client is and which address it gets: ISC `locate_network`, `find_lease` and
//! `allocate_lease` (server/dhcp.c), over the lease store's public API.

use std::net::Ipv4Addr;

use crate::config::model::{PoolId, SharedNetworkId, SubnetId};
use crate::lease::record::{BindingState, Lease, UnixTime};
use crate::lease::store::{lease_belongs_to, LeaseStore};

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

    /// The pool whose ranges contain `address`.
    pub(crate) fn pool_of(&self, address: Ipv4Addr) -> Option<PoolId> {
        self.config
            .pools
            .iter()
            .position(|pool| pool.ranges.iter().any(|range| range.contains(address)))
            .map(|index| PoolId(index as u32))
    }

    /// ISC `lease_mine_to_reallocate`: without failover, FREE and BACKUP leases; with failover,
    /// FREE/ABANDONED on the primary and BACKUP on the secondary (normal state assumed; the
    /// failover machine owns partner-down).
    fn mine_to_reallocate(&self, lease: &Lease, pool: Option<PoolId>) -> bool {
        let role = pool.and_then(|pool| self.pool_failover.get(pool.0 as usize).copied().flatten());
        match role {
            None => matches!(
                lease.binding_state,
                BindingState::Free | BindingState::Backup
            ),
            Some(role) => match lease.binding_state {
                BindingState::Free | BindingState::Abandoned => role.primary,
                BindingState::Backup => !role.primary,
                _ => false,
            },
        }
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
        inbound: &Inbound<'_>,
        classification: &Classification,
        share: SharedNetworkId,
        purpose: Purpose,
        now: UnixTime,
        leases: &LeaseStore,
    ) -> Found {
        let mut found = Found {
            message: "requested address not available",
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
            (lease.binding_state == BindingState::Active || self.mine_to_reallocate(lease, pool))
                && in_share(lease.address)
                && permitted(pool)
        };
        let mut uid_lease = inbound
            .client_id
            .as_deref()
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
                    && lease.uid() != inbound.client_id.as_deref();
                !other_identifier && usable(lease)
            })
            .cloned();

        let mut ip_lease = requested.and_then(|address| self.lease_at(leases, address));
        if ip_lease.is_some() {
            found.ours = true;
        }
        if let Some((lease, _)) = &ip_lease {
            if !in_share(lease.address) {
                found.message = "requested address on bad subnet";
                ip_lease = None;
            }
        }
        if let Some((lease, _)) = &ip_lease {
            let same_client = match lease.uid() {
                Some(uid) => inbound.client_id.as_deref() == Some(uid),
                None => lease.hardware == Some(inbound.hardware),
            };
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
                && !self.mine_to_reallocate(lease, *pool)
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
                Some(uid) => match inbound.client_id.as_deref() {
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
    /// that has one. BOOTP clients only get addresses of `dynamic-bootp` ranges.
    pub(crate) fn allocate(
        &self,
        inbound: &Inbound<'_>,
        classification: &Classification,
        share: SharedNetworkId,
        bootp: bool,
        now: UnixTime,
        leases: &mut LeaseStore,
    ) -> Option<Candidate> {
        let shared = self.config.shared_networks.get(share.0 as usize)?;
        for &pool_id in &shared.pools {
            let Some(pool) = self.config.pools.get(pool_id.0 as usize) else {
                continue;
            };
            if !pool_permits(pool, classification, bootp, now) {
                continue;
            }
            let role = self
                .pool_failover
                .get(pool_id.0 as usize)
                .copied()
                .flatten();
            let address = if bootp {
                self.allocate_bootp(pool_id, inbound, now, leases)
            } else if role.is_some_and(|role| !role.primary) {
                // The secondary allocates only from its BACKUP leases (failover.md, ISC
                // `lease_mine_to_reallocate`). `LeaseStore::is_available` counts BACKUP as
                // unavailable, so pending offers of BACKUP leases are not checked here.
                leases
                    .iter()
                    .filter(|lease| {
                        lease.binding_state == BindingState::Backup
                            && self.pool_of(lease.address) == Some(pool_id)
                    })
                    .min_by_key(|lease| (lease.ends, u32::from(lease.address)))
                    .map(|lease| lease.address)
            } else {
                leases.allocate(pool_id, &inbound.key, now)
            };
            let Some(address) = address else {
                continue;
            };
            let Some(network) = self.network_of(address) else {
                continue;
            };
            return Some(Candidate::Dynamic {
                address,
                pool: pool_id,
                subnet: network.subnet,
                existing: leases.get(address).cloned(),
            });
        }
        None
    }

    /// A free address of a `dynamic-bootp` range of `pool`.
    fn allocate_bootp(
        &self,
        pool: PoolId,
        inbound: &Inbound<'_>,
        now: UnixTime,
        leases: &LeaseStore,
    ) -> Option<Ipv4Addr> {
        let pool_config = self.config.pools.get(pool.0 as usize)?;
        pool_config
            .ranges
            .iter()
            .filter(|range| range.dynamic_bootp)
            .flat_map(|range| (u32::from(range.low)..=u32::from(range.high)).map(Ipv4Addr::from))
            .find(|address| {
                let free = leases.get(*address).is_none_or(|lease| {
                    matches!(
                        lease.binding_state,
                        BindingState::Free | BindingState::Expired | BindingState::Released
                    )
                });
                free && leases.is_available(*address, &inbound.key, now)
            })
    }
}
