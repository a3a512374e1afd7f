//! The in-memory lease store: every known lease with indices by address, hardware address and
//! client identifier, plus per-pool free-address allocation. Pure data structure: time comes in
//! as an argument; durability is the job of `lease::log`.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::config::model::{Config, PoolId};
use crate::lease::record::{BindingState, Hardware, Lease, UnixTime};

/// Who a client is, by the rule ISC and the XDP fast path share: the client identifier (option
/// 61) when the client sent one, else its hardware address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientKey {
    ClientId(Box<[u8]>),
    Hardware(Hardware),
}

/// The addresses of one pool and how far allocation has walked through never-used ones.
#[derive(Clone, Debug)]
struct PoolAddresses {
    /// Inclusive ranges as `u32`.
    ranges: Vec<(u32, u32)>,
    /// Next never-touched candidate: (range index, address).
    cursor: (usize, u64),
}

/// An address offered to a client but not yet requested (not persisted; RFC 2131 §4.3.1 lets
/// the server reserve it briefly so that two clients are not offered the same address).
#[derive(Clone, Debug)]
struct Offer {
    client: ClientKey,
    until: UnixTime,
}

/// All leases.
#[derive(Debug, Default)]
pub struct LeaseStore {
    leases: HashMap<Ipv4Addr, Lease>,
    by_client_id: HashMap<Box<[u8]>, Ipv4Addr>,
    by_hardware: HashMap<Hardware, Ipv4Addr>,
    pools: Vec<PoolAddresses>,
    offers: HashMap<Ipv4Addr, Offer>,
}

impl LeaseStore {
    /// An empty store that knows the pools of `config` (their ranges, for allocation).
    pub fn new(config: &Config) -> Self {
        let pools = config
            .pools
            .iter()
            .map(|pool| PoolAddresses {
                ranges: pool
                    .ranges
                    .iter()
                    .map(|range| (u32::from(range.low), u32::from(range.high)))
                    .collect(),
                cursor: (0, 0),
            })
            .collect();
        Self {
            pools,
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.leases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    pub fn get(&self, address: Ipv4Addr) -> Option<&Lease> {
        self.leases.get(&address)
    }

    /// The lease most recently bound to this client identifier.
    pub fn find_by_client_id(&self, client_id: &[u8]) -> Option<&Lease> {
        self.by_client_id
            .get(client_id)
            .and_then(|address| self.leases.get(address))
    }

    /// The lease most recently bound to this hardware address.
    pub fn find_by_hardware(&self, hardware: &Hardware) -> Option<&Lease> {
        self.by_hardware
            .get(hardware)
            .and_then(|address| self.leases.get(address))
    }

    /// The client's lease by the shared key rule (see [`ClientKey`]).
    pub fn find_by_client(&self, client: &ClientKey) -> Option<&Lease> {
        match client {
            ClientKey::ClientId(id) => self.find_by_client_id(id),
            ClientKey::Hardware(hardware) => self.find_by_hardware(hardware),
        }
    }

    /// Inserts or replaces the lease for `lease.address` and updates the indices.
    pub fn upsert(&mut self, lease: Lease) {
        if let Some(old) = self.leases.get(&lease.address) {
            if let Some(uid) = &old.uid {
                if self.by_client_id.get(uid) == Some(&old.address) && old.uid != lease.uid {
                    self.by_client_id.remove(uid);
                }
            }
            if let Some(hardware) = &old.hardware {
                if self.by_hardware.get(hardware) == Some(&old.address)
                    && old.hardware != lease.hardware
                {
                    self.by_hardware.remove(hardware);
                }
            }
        }
        if let Some(uid) = &lease.uid {
            self.by_client_id.insert(uid.clone(), lease.address);
        }
        if let Some(hardware) = lease.hardware {
            self.by_hardware.insert(hardware, lease.address);
        }
        self.offers.remove(&lease.address);
        self.leases.insert(lease.address, lease);
    }

    /// Remembers that `address` was offered to `client` until `until`.
    pub fn hold_offer(&mut self, address: Ipv4Addr, client: ClientKey, until: UnixTime) {
        self.offers.insert(address, Offer { client, until });
    }

    /// True when `address` may be given to `client` at `now`: no other client's binding or
    /// pending offer holds it, and it is not abandoned.
    pub fn is_available(&self, address: Ipv4Addr, client: &ClientKey, now: UnixTime) -> bool {
        if let Some(offer) = self.offers.get(&address) {
            if offer.until > now && &offer.client != client {
                return false;
            }
        }
        match self.leases.get(&address) {
            None => true,
            Some(lease) => match lease.binding_state {
                BindingState::Active => !lease.is_active_at(now) || lease_belongs_to(lease, client),
                BindingState::Abandoned | BindingState::Backup | BindingState::Reset => false,
                BindingState::Free | BindingState::Expired | BindingState::Released => true,
            },
        }
    }

    /// A free address of `pool` for `client` at `now`: first a never-used one, then the free
    /// lease that has been free the longest (as ISC's free queue does). `None` when the pool is
    /// exhausted.
    pub fn allocate(
        &mut self,
        pool: PoolId,
        client: &ClientKey,
        now: UnixTime,
    ) -> Option<Ipv4Addr> {
        let index = pool.0 as usize;
        let pool_addresses = self.pools.get(index)?.clone();
        // Never-used addresses, walking the cursor.
        let (mut range_index, mut offset) = pool_addresses.cursor;
        while let Some(&(low, high)) = pool_addresses.ranges.get(range_index) {
            let span = u64::from(high) - u64::from(low) + 1;
            while offset < span {
                let address = Ipv4Addr::from(low + offset as u32);
                offset += 1;
                if !self.leases.contains_key(&address) && self.is_available(address, client, now) {
                    self.pools[index].cursor = (range_index, offset);
                    return Some(address);
                }
            }
            range_index += 1;
            offset = 0;
        }
        self.pools[index].cursor = (range_index, offset);
        // Then the oldest free lease of the pool.
        self.leases
            .values()
            .filter(|lease| {
                pool_addresses
                    .ranges
                    .iter()
                    .any(|&(low, high)| (low..=high).contains(&u32::from(lease.address)))
                    && matches!(
                        lease.binding_state,
                        BindingState::Free | BindingState::Expired | BindingState::Released
                    )
                    && self.is_available(lease.address, client, now)
            })
            .min_by_key(|lease| (lease.ends, u32::from(lease.address)))
            .map(|lease| lease.address)
    }

    /// Moves every ACTIVE lease whose end has passed to its next binding state; returns the
    /// changed leases so that the caller can persist them.
    pub fn expire(&mut self, now: UnixTime) -> Vec<Lease> {
        let mut changed = Vec::new();
        for lease in self.leases.values_mut() {
            if lease.binding_state == BindingState::Active && lease.ends <= now {
                lease.binding_state = match lease.next_binding_state {
                    BindingState::Active => BindingState::Free,
                    next => next,
                };
                lease.next_binding_state = lease.binding_state;
                changed.push(lease.clone());
            }
        }
        self.offers.retain(|_, offer| offer.until > now);
        changed
    }

    /// Every lease, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Lease> + '_ {
        self.leases.values()
    }
}

/// True when `lease` is bound to `client` by the shared key rule.
pub fn lease_belongs_to(lease: &Lease, client: &ClientKey) -> bool {
    match client {
        ClientKey::ClientId(id) => lease.uid.as_deref() == Some(&**id),
        ClientKey::Hardware(hardware) => {
            lease.uid.is_none() && lease.hardware.as_ref() == Some(hardware)
        }
    }
}
