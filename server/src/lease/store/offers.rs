//! Offers and allocation: addresses held for a client between OFFER and REQUEST (with the
//! `ping-check` probe), and the choice of a new address from a pool's queues (ISC
//! `allocate_lease`); split from `store.rs`.

use super::*;

impl LeaseStore {
    /// Remembers that `address` was offered to `client` until `until`.
    pub fn hold_offer(&mut self, address: Ipv4Addr, client: ClientKey, until: UnixTime) {
        self.hold_offer_at(address, client, until, 0, 0);
    }

    /// [`LeaseStore::hold_offer`], with when the offer was made and, when an ICMP echo request
    /// is to precede it (`ping-check`), until when its answer is awaited (0: no probe).
    pub fn hold_offer_at(
        &mut self,
        address: Ipv4Addr,
        client: ClientKey,
        until: UnixTime,
        made: UnixTime,
        probe_until: UnixTime,
    ) {
        self.drop_offer(address);
        let pool = self.pool_of(address);
        let failover = pool
            .and_then(|pool| self.pool_state(pool))
            .is_some_and(|pool| pool.failover);
        // Never-used addresses and leases waiting in a free-state queue are what a new client
        // takes from the pool's stock; re-offering a client its own binding takes nothing, and
        // neither does an abandoned address (not counted as available in the first place).
        let reusable = self.get(address).is_none_or(|lease| {
            queue_of_reserved(lease.binding_state, is_reserved(lease), failover)
                .is_some_and(|queue| queue != FreeQueue::Abandoned)
        });
        let counted_in = pool.filter(|_| reusable);
        if let Some(pool) = counted_in.and_then(|pool| self.pool_state_mut(pool)) {
            pool.offered += 1;
        }
        self.offers.insert(
            address,
            Offer {
                client,
                until,
                made,
                probe_until,
                counted_in,
            },
        );
        self.offer_expiry.insert((until, u32::from(address)));
    }

    /// True when `address` may be given to `client` at `now`: no other client's binding or
    /// pending offer holds it, and it is not abandoned (an abandoned address is given out only
    /// as the allocator's last resort, [`FreeQueue::Abandoned`]).
    pub fn is_available(&self, address: Ipv4Addr, client: &ClientKey, now: UnixTime) -> bool {
        if let Some(offer) = self.offers.get(&address) {
            if offer.until > now && &offer.client != client {
                return false;
            }
        }
        match self.get(address) {
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
    /// exhausted. Amortised O(1) for never-used addresses, O(log n) for reused ones (plus one
    /// step per address another client holds an offer for). In a failover pool this is the
    /// FREE queue only: see [`LeaseStore::allocate_from`].
    pub fn allocate(
        &mut self,
        pool: PoolId,
        client: &ClientKey,
        now: UnixTime,
    ) -> Option<Ipv4Addr> {
        self.allocate_from(pool, FreeQueue::Free, client, now, |_| true)
    }

    /// A free address of `pool` from `queue` for `client` at `now` that `accept` allows (the
    /// failover ownership rule, docs/spec/failover.md §8.2): for [`FreeQueue::Free`] never-used addresses
    /// first (asked about once, as `Lease::free`), then the queue's lease free the longest.
    /// Addresses another client holds an offer for are passed over; after
    /// [`REFUSED_SCAN_LIMIT`] leases `accept` refused the search stops, so a DISCOVER never walks
    /// the pool. O(log n) plus those steps.
    pub fn allocate_from(
        &mut self,
        pool: PoolId,
        queue: FreeQueue,
        client: &ClientKey,
        now: UnixTime,
        accept: impl Fn(&Lease) -> bool,
    ) -> Option<Ipv4Addr> {
        let index = *self.pool_slots.get(pool.0 as usize)? as usize;
        let state = self.pools.get(index)?;
        // Never-used addresses (FREE, tsfp 0, all alike, so `accept` is asked once).
        let never_used_allowed = queue == FreeQueue::Free
            && state
                .ranges
                .first()
                .is_some_and(|&(low, _)| accept(&Lease::free(Ipv4Addr::from(low))));
        if never_used_allowed {
            if let Some(found) = self.next_never_used(index, client, now) {
                return Some(found);
            }
        }
        // Then the queued lease free the longest.
        let mut refused = 0;
        for &(_, address) in self.pools[index].queue(queue) {
            let address = Ipv4Addr::from(address);
            if self.offered_to_other(address, client, now) {
                continue;
            }
            let Some(lease) = self.get(address) else {
                continue;
            };
            if accept(lease) {
                return Some(address);
            }
            refused += 1;
            if refused >= REFUSED_SCAN_LIMIT {
                break;
            }
        }
        None
    }

    /// The next never-used address of held pool `index` (in `pools`) available to `client`,
    /// walking the pool's addresses (ranges in order) from its start, wrapping around once;
    /// each address is passed once.
    fn next_never_used(
        &mut self,
        index: usize,
        client: &ClientKey,
        now: UnixTime,
    ) -> Option<Ipv4Addr> {
        let pool = self.pools.get(index)?;
        let (size, start, mut walked) = (pool.size, pool.start, pool.walked);
        let mut found = None;
        while walked < size {
            let position = (start + walked) % size;
            walked += 1;
            let Some(address) = address_at(&self.pools[index].ranges, position) else {
                break;
            };
            if self.slot(address).is_none() && self.is_available(address, client, now) {
                found = Some(address);
                break;
            }
        }
        self.pools[index].walked = walked;
        found
    }

    /// An address [`LeaseStore::allocate_from`] returned but the caller did not use (a failover
    /// DISCOVER left to the partner's hash bucket): a never-used address stays allocatable as a
    /// FREE record, since the never-used cursor has passed it and will not come back.
    pub fn return_unused(&mut self, address: Ipv4Addr) {
        if self.slot(address).is_none() && self.pool_of(address).is_some() {
            self.put(Lease::free(address));
        }
    }

    /// True when `client` holds a pending offer for `address` (RFC 2131 §4.3.1).
    pub fn offered_to(&self, address: Ipv4Addr, client: &ClientKey, now: UnixTime) -> bool {
        self.offers
            .get(&address)
            .is_some_and(|offer| offer.until > now && &offer.client == client)
    }

    /// Until when `client`'s pending offer of `address` holds it; `None` without such an offer.
    pub fn offer_until(
        &self,
        address: Ipv4Addr,
        client: &ClientKey,
        now: UnixTime,
    ) -> Option<UnixTime> {
        self.offers
            .get(&address)
            .filter(|offer| offer.until > now && &offer.client == client)
            .map(|offer| offer.until)
    }

    /// When `client`'s pending offer of `address` was made (0 when unknown); `None` without
    /// such an offer.
    pub fn offer_made(
        &self,
        address: Ipv4Addr,
        client: &ClientKey,
        now: UnixTime,
    ) -> Option<UnixTime> {
        self.offers
            .get(&address)
            .filter(|offer| offer.until > now && &offer.client == client)
            .map(|offer| offer.made)
    }

    /// True while the OFFER of `address` waits for the answer to an ICMP echo request.
    pub fn probing(&self, address: Ipv4Addr, now: UnixTime) -> bool {
        self.offers
            .get(&address)
            .is_some_and(|offer| offer.until > now && offer.probe_until > now)
    }

    /// Ends the probe of `address` for `client`'s offer: true when one was pending (the offer
    /// then stands without it), false when the offer is gone or no longer that client's.
    pub fn end_probe(&mut self, address: Ipv4Addr, client: &ClientKey, now: UnixTime) -> bool {
        match self.offers.get_mut(&address) {
            // Not bounded by `probe_until`: a driver late to resolve still resolves.
            Some(offer)
                if offer.until > now && offer.probe_until != 0 && &offer.client == client =>
            {
                offer.probe_until = 0;
                true
            }
            _ => false,
        }
    }

    /// True when another client holds a pending offer for `address` (RFC 2131 §4.3.1).
    pub fn offered_to_other(&self, address: Ipv4Addr, client: &ClientKey, now: UnixTime) -> bool {
        self.offers
            .get(&address)
            .is_some_and(|offer| offer.until > now && &offer.client != client)
    }
}

/// The address at `position` among `ranges`' addresses, ranges in order.
fn address_at(ranges: &[(u32, u32)], mut position: u64) -> Option<Ipv4Addr> {
    for &(low, high) in ranges {
        let span = u64::from(high.saturating_sub(low)) + 1;
        if position < span {
            return Some(Ipv4Addr::from(low.wrapping_add(position as u32)));
        }
        position -= span;
    }
    None
}
