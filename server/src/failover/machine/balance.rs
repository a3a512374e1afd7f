//! Pool balancing as ISC dhcpd 4.4 does it (server/failover.c `dhcp_failover_pool_dobalance`,
//! `dhcp_failover_pool_check`, `peer_wants_lease`; dhcpd.conf(5) "max-lease-misbalance",
//! "max-lease-ownership", "min-balance", "max-balance"; docs/spec/failover.md §10).
//!
//! Per pool, the server holding more free leases than its partner gives away half the
//! difference (`lts`), in two passes over its free queue, oldest first (ISC's queue order:
//! `ends`, never-used leases first):
//! 1. leases whose last client hashes to the partner's half of the HBA (`peer_wants_lease`),
//!    until the partner is up to `hold` (`max-lease-ownership` % of the pool's free leases)
//!    leases ahead;
//! 2. then any lease, until `lts` reaches `hold` in our favour for used leases, 0 for
//!    never-used ones.
//!
//! It runs on entering NORMAL, on the partner's POOLREQ, and on a timer scheduled from the age
//! of the oldest free leases (bounded by `min-balance` and `max-balance`); only the timer may
//! send a POOLREQ, when this server is short by more than twice `max-lease-misbalance` %.

use std::net::Ipv4Addr;

use super::{Bindings, Machine, State};
use crate::failover::rules::own_free_state;
use crate::failover::states::Role;
use crate::lease::record::{flags, BindingState, Lease, UnixTime};
use server_common::loadbalance::{bucket, hba_has};

/// One pool's free stock as ISC counts it (reserved leases are in neither queue).
#[derive(Debug, Default)]
struct Stock {
    /// Leases in our free state, oldest first (ISC's queue order).
    mine: Vec<Lease>,
    /// Leases in the partner's free state.
    partner: i64,
}

/// ISC sorts FREE and BACKUP queues by `ends` (server/mdb.c `lease_enqueue`); the address
/// breaks ties, where ISC keeps insertion order.
fn queue_order(lease: &Lease) -> (UnixTime, Ipv4Addr) {
    (lease.ends, lease.address)
}

/// ISC `peer_wants_lease`: the lease's last client (client identifier, else hardware address)
/// hashes to the partner's half of the HBA (§11.1).
fn peer_wants_lease(lease: &Lease, role: Role, hba: Option<&[u8; 32]>) -> bool {
    let Some(hba) = hba else {
        return false;
    };
    let key = match (lease.uid(), lease.hardware) {
        (Some(uid), _) if !uid.is_empty() => uid.to_vec(),
        (_, Some(hardware)) if !hardware.address().is_empty() => hardware.address().to_vec(),
        _ => return false,
    };
    // ISC polarity: a set bit is the primary's bucket.
    let primarys = hba_has(hba, bucket(&key));
    match role {
        Role::Primary => !primarys,
        Role::Secondary => primarys,
    }
}

/// ISC `secondary_not_hoarding`: the secondary holds fewer than `hold` leases beyond an even
/// split of the pool's free stock.
fn secondary_not_hoarding(stock: (u64, u64), ownership: u32) -> bool {
    let (free, backup) = (stock.0 as i64, stock.1 as i64);
    let hold = ((free + backup) * i64::from(ownership) + 50) / 100;
    (free - backup) / 2 > -hold
}

/// What one balancing run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balanced {
    /// Leases given to the partner (queued for BNDUPD).
    pub moved: u32,
    /// Some pool is short by more than twice the misbalance: ask the partner (POOLREQ).
    pub short: bool,
}

impl Machine {
    /// The free stock of each pool of the relationship, leases in flight or queued left out
    /// (their state is on its way to the partner).
    fn stock(&self, bindings: &impl Bindings) -> Vec<Stock> {
        let own = own_free_state(self.config.role);
        let theirs = match own {
            BindingState::Free => BindingState::Backup,
            _ => BindingState::Free,
        };
        bindings
            .pools()
            .into_iter()
            .map(|addresses| {
                let mut stock = Stock::default();
                for address in addresses {
                    let Some(lease) = bindings.lease(address) else {
                        continue;
                    };
                    if lease.flags & flags::RESERVED != 0 {
                        continue;
                    }
                    if lease.binding_state == own {
                        if !self.in_flight.contains_key(&address) && !self.queued.contains(&address)
                        {
                            stock.mine.push(lease);
                        }
                    } else if lease.binding_state == theirs {
                        stock.partner += 1;
                    }
                }
                stock.mine.sort_by_key(queue_order);
                stock
            })
            .collect()
    }

    /// ISC `dhcp_failover_pool_dobalance`, over every pool of the relationship.
    pub(super) fn balance(&mut self, now: UnixTime, bindings: &mut impl Bindings) -> Balanced {
        let mut result = Balanced::default();
        if self.state != State::Normal {
            return result;
        }
        self.last_balance = now;
        let theirs = match own_free_state(self.config.role) {
            BindingState::Free => BindingState::Backup,
            _ => BindingState::Free,
        };
        let misbalance = i64::from(self.config.max_lease_misbalance);
        let ownership = i64::from(self.config.max_lease_ownership);
        for stock in self.stock(bindings) {
            let mine = stock.mine.len() as i64;
            // C integer division, towards zero.
            let mut lts = (mine - stock.partner) / 2;
            let total = mine + stock.partner;
            let thresh = (total * misbalance + 50) / 100;
            let hold = (total * ownership + 50) / 100;
            let panic = match thresh * -2 {
                0 => -1,
                panic => panic,
            };
            if lts < panic {
                result.short = true;
            }
            let mut given = vec![false; stock.mine.len()];
            'passes: for pass in 0..2 {
                for (index, lease) in stock.mine.iter().enumerate() {
                    if given[index] {
                        continue;
                    }
                    let balanced = if pass == 1 {
                        if lease.ends != 0 {
                            lts <= hold
                        } else {
                            lts <= 0
                        }
                    } else {
                        lts <= -hold
                    };
                    if balanced {
                        break 'passes;
                    }
                    if pass == 1 || peer_wants_lease(lease, self.config.role, self.hba.as_ref()) {
                        let mut lease = lease.clone();
                        lease.binding_state = theirs;
                        lease.next_binding_state = theirs;
                        lease.tstp = now;
                        lease.starts = now;
                        // ISC `scrub_lease`: the last client's host name goes.
                        lease.set_client_hostname(None);
                        let address = lease.address;
                        bindings.update(lease);
                        self.enqueue(address);
                        given[index] = true;
                        lts -= 1;
                        result.moved += 1;
                    }
                }
            }
        }
        self.schedule_balance(now, bindings);
        result
    }

    /// ISC `dhcp_failover_pool_check`: when to balance next, from the age of each pool's
    /// oldest free leases (a pool takes about that long to run out), scaled by the misbalance
    /// and bounded by `min-balance` after the last run and `max-balance` from now. Only ever
    /// moves the scheduled time earlier.
    pub(super) fn schedule_balance(&mut self, now: UnixTime, bindings: &impl Bindings) {
        if self.state != State::Normal {
            self.next_balance = None;
            return;
        }
        let own = own_free_state(self.config.role);
        let misbalance = u64::from(self.config.max_lease_misbalance);
        let mut earliest: Option<UnixTime> = None;
        for addresses in bindings.pools() {
            let (mut oldest_free, mut oldest_backup): (Option<UnixTime>, Option<UnixTime>) =
                (None, None);
            for address in addresses {
                let Some(lease) = bindings.lease(address) else {
                    continue;
                };
                if lease.flags & flags::RESERVED != 0 {
                    continue;
                }
                let slot = match lease.binding_state {
                    BindingState::Free => &mut oldest_free,
                    BindingState::Backup => &mut oldest_backup,
                    _ => continue,
                };
                *slot = Some(slot.map_or(lease.ends, |ends| ends.min(lease.ends)));
            }
            let age = |oldest: Option<UnixTime>| {
                oldest
                    .filter(|ends| *ends < now)
                    .map_or(0, |ends| u64::from(now - ends))
            };
            let mut free_estimate = (age(oldest_free) * misbalance + 50) / 100;
            let mut backup_estimate = (age(oldest_backup) * misbalance + 50) / 100;
            // When this server would start asking for leases (twice the misbalance).
            if own == BindingState::Free {
                free_estimate *= 2;
            } else {
                backup_estimate *= 2;
            }
            let wait = free_estimate
                .min(backup_estimate)
                .min(u64::from(self.config.max_balance));
            let mut at = now.saturating_add(u32::try_from(wait).unwrap_or(u32::MAX));
            if self.last_balance != 0 {
                at = at.max(self.last_balance.saturating_add(self.config.min_balance));
            }
            // ISC adds `random() % 5`: the two servers should not balance at the same second.
            at = at.saturating_add(self.next_xid % 5);
            earliest = Some(earliest.map_or(at, |earliest| earliest.min(at)));
        }
        if let Some(at) = earliest {
            if self.next_balance.is_none_or(|scheduled| at < scheduled) {
                self.next_balance = Some(at);
            }
        }
    }

    /// MAC address affinity (ISC `dhcp_failover_process_bind_update` / `_bind_ack`): a lease
    /// that a primary just returned to FREE from EXPIRED, RELEASED or RESET goes to the
    /// secondary (BACKUP, with a BNDUPD) when its last client hashes to the secondary, which
    /// is then the server that client will ask, unless the secondary already holds more than
    /// its share.
    pub(super) fn affinity(
        &mut self,
        now: UnixTime,
        mut lease: Lease,
        bindings: &mut impl Bindings,
    ) {
        if self.config.role != Role::Primary
            || lease.binding_state != BindingState::Free
            || lease.flags & (flags::RESERVED | flags::BOOTP) != 0
            || !peer_wants_lease(&lease, self.config.role, self.hba.as_ref())
        {
            return;
        }
        let Some(stock) = bindings.pool_stock(lease.address) else {
            return;
        };
        if !secondary_not_hoarding(stock, self.config.max_lease_ownership) {
            return;
        }
        lease.binding_state = BindingState::Backup;
        lease.next_binding_state = BindingState::Backup;
        lease.tstp = now;
        lease.starts = now;
        let address = lease.address;
        bindings.update(lease);
        self.enqueue(address);
    }

    /// The balancing timer fired (ISC `dhcp_failover_pool_rebalance`): balance, send the
    /// updates, and ask the partner for leases when short.
    pub(super) fn rebalance(&mut self, now: UnixTime, bindings: &mut impl Bindings) {
        self.next_balance = None;
        let balanced = self.balance(now, bindings);
        if balanced.moved > 0 {
            self.flush(now, bindings);
        }
        if balanced.short && self.is_linked() {
            self.send_new(now, super::Body::PoolRequest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failover::machine::MachineConfig;
    use crate::failover::memory::MemoryBindings;
    use crate::lease::record::Hardware;

    const NOW: UnixTime = 1_795_836_305;

    /// A primary in NORMAL over a 20-address pool held in memory.
    fn primary() -> (Machine, MemoryBindings) {
        let config = MachineConfig {
            name: "fo".into(),
            role: Role::Primary,
            mclt: 300,
            hba: Some(server_common::loadbalance::split_to_hba(128)),
            max_unacked_updates: 10,
            max_response_delay: 30,
            auto_partner_down: 0,
            max_lease_misbalance: 15,
            max_lease_ownership: 10,
            min_balance: 60,
            max_balance: 3600,
            vendor_class: Vec::new(),
        };
        let mut machine = Machine::new(config, None, None, NOW);
        machine.state = State::Normal;
        let bindings = MemoryBindings::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 20));
        (machine, bindings)
    }

    fn used(address: u8, ends: UnixTime, mac: Option<[u8; 6]>) -> Lease {
        let mut lease = Lease::free(Ipv4Addr::new(10, 0, 0, address));
        lease.ends = ends;
        lease.hardware = mac.and_then(|mac| Hardware::new(1, &mac));
        lease
    }

    fn mac_of(primarys: bool) -> impl Iterator<Item = [u8; 6]> {
        let hba = server_common::loadbalance::split_to_hba(128);
        (0u8..=255)
            .map(|last| [2, 0, 0, 0, 1, last])
            .filter(move |mac| hba_has(&hba, bucket(mac)) == primarys)
    }

    #[test]
    fn the_partners_clients_go_first_then_never_used_leases_up_to_an_even_split() {
        let (mut machine, mut bindings) = primary();
        // Four leases last held by clients of the secondary's half, two by the primary's,
        // older; fourteen never used. The partner holds nothing: lts = 10, hold = 2.
        let partners: Vec<[u8; 6]> = mac_of(false).take(4).collect();
        let ours: Vec<[u8; 6]> = mac_of(true).take(2).collect();
        for (index, mac) in partners.iter().enumerate() {
            let lease = used(1 + index as u8, 1_000, Some(*mac));
            bindings.leases.insert(lease.address, lease);
        }
        for (index, mac) in ours.iter().enumerate() {
            let lease = used(5 + index as u8, 500, Some(*mac));
            bindings.leases.insert(lease.address, lease);
        }
        let balanced = machine.balance(NOW, &mut bindings);
        assert_eq!(balanced.moved, 10);
        let state = |bindings: &MemoryBindings, address: u8| {
            bindings
                .lease(Ipv4Addr::new(10, 0, 0, address))
                .map(|lease| lease.binding_state)
        };
        for address in 1..=4 {
            assert_eq!(state(&bindings, address), Some(BindingState::Backup));
        }
        // The primary's own clients' leases stay, although older: pass 2 takes never-used
        // leases first (ISC's queue order) and stops at an even split.
        for address in 5..=6 {
            assert_eq!(state(&bindings, address), Some(BindingState::Free));
        }
        assert!(machine.next_balance.is_some(), "the next run is scheduled");
    }

    #[test]
    fn used_leases_are_given_only_down_to_hold_in_our_favour() {
        let (mut machine, mut bindings) = primary();
        for address in 1..=20 {
            let lease = used(address, 1_000, None);
            bindings.leases.insert(lease.address, lease);
        }
        // lts = 10, hold = 2: eight leases go, the primary keeps two more than the secondary.
        assert_eq!(machine.balance(NOW, &mut bindings).moved, 8);
        assert!(!machine.balance(NOW, &mut bindings).short);
    }

    fn lease_of(mac: [u8; 6]) -> Lease {
        let mut lease = Lease::free(Ipv4Addr::new(10, 0, 0, 1));
        lease.hardware = Hardware::new(1, &mac);
        lease
    }

    #[test]
    fn the_secondary_hoards_beyond_its_share_of_the_free_stock() {
        // 20 free leases, hold = 2: lts = (free - backup) / 2 must stay above -2.
        assert!(secondary_not_hoarding((10, 10), 10));
        assert!(secondary_not_hoarding((9, 11), 10));
        assert!(!secondary_not_hoarding((8, 12), 10));
        // An empty pool: hold 0, lts 0, not above -0.
        assert!(!secondary_not_hoarding((0, 0), 10));
    }

    #[test]
    fn the_partner_wants_leases_whose_last_client_hashes_to_its_half() {
        let hba = server_common::loadbalance::split_to_hba(128);
        // Bucket 118 is the primary's with split 128 (rules.rs tests), another is not.
        let primary_key = [0x6a, 0xd9, 0x3e, 0xff, 0xef, 0xc7];
        let lease = lease_of(primary_key);
        assert!(!peer_wants_lease(&lease, Role::Primary, Some(&hba)));
        assert!(peer_wants_lease(&lease, Role::Secondary, Some(&hba)));
        let secondary_key = (0u8..=255)
            .map(|last| [2, 0, 0, 0, 0, last])
            .find(|mac| !hba_has(&hba, bucket(mac)))
            .expect("a MAC of the secondary's half");
        let lease = lease_of(secondary_key);
        assert!(peer_wants_lease(&lease, Role::Primary, Some(&hba)));
        // No client, or no HBA: nobody wants it first.
        assert!(!peer_wants_lease(
            &Lease::free(Ipv4Addr::new(10, 0, 0, 2)),
            Role::Primary,
            Some(&hba)
        ));
        assert!(!peer_wants_lease(&lease, Role::Primary, None));
    }
}
