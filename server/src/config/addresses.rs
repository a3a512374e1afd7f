//! The config's address map: one sorted table of non-overlapping address segments, each saying
//! which subnet (the most specific one, dhcpd.conf(5) "subnet") and which pool holds the
//! addresses in it. Built once per config, on first use, and then answered by binary search:
//! the subnet of a packet's network (ISC `locate_network`), the pool of an address (the engine,
//! the XDP runtime's failover check) and the shard of the lease store an address lives in
//! (`lease::shards`) are all one lookup here instead of a walk over every subnet and pool.
//!
//! Subnets are CIDR blocks, so two of them are either nested or apart; ranges are validated not
//! to overlap (`config::parser::validate`). The table is the "elementary intervals" of all of
//! them: wherever the set of covering subnets and pools changes, a segment ends.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::{Arc, OnceLock};

use super::model::{Config, PoolId, SharedNetworkId, SubnetId};

/// Addresses `low..=high` all have the same subnet and pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub low: u32,
    pub high: u32,
    /// The most specific subnet containing the segment (the longest mask; of two identical
    /// declarations the later one, as the former linear scan chose).
    pub subnet: Option<SubnetId>,
    /// The pool whose range contains the segment (the first declared, should ranges overlap).
    pub pool: Option<PoolId>,
    /// The shared network whose leases these addresses are: the pool's, else the subnet's.
    pub shared_network: Option<SharedNetworkId>,
}

/// The sorted segment table of one config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressIndex {
    segments: Vec<Segment>,
}

/// One covering declaration starting or ending at a boundary of the sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Cover {
    /// Ordered by mask, then declaration order: the last one is the most specific.
    Subnet(u32, u32),
    Pool(u32),
}

impl AddressIndex {
    /// The table of `config`: O((subnets + ranges) log) once.
    pub fn new(config: &Config) -> Self {
        // (position, +1 start / -1 end, what): an interval [low, high] starts at low and ends
        // at high + 1 (u64: 255.255.255.255 + 1 does not wrap).
        let mut events: Vec<(u64, bool, Cover)> = Vec::new();
        for (index, subnet) in config.subnets.iter().enumerate() {
            let mask = u32::from(subnet.netmask);
            let low = u32::from(subnet.network) & mask;
            let high = low | !mask;
            let cover = Cover::Subnet(mask, index as u32);
            events.push((u64::from(low), true, cover));
            events.push((u64::from(high) + 1, false, cover));
        }
        for (index, pool) in config.pools.iter().enumerate() {
            for range in &pool.ranges {
                let (a, b) = (u32::from(range.low), u32::from(range.high));
                let cover = Cover::Pool(index as u32);
                events.push((u64::from(a.min(b)), true, cover));
                events.push((u64::from(a.max(b)) + 1, false, cover));
            }
        }
        // Ends before starts at the same position: an interval ending there is not active.
        events.sort_unstable_by_key(|&(position, start, cover)| (position, start, cover));
        let mut subnets: BTreeSet<(u32, u32)> = BTreeSet::new();
        // A pool may cover one place twice only in a config that failed validation; counted,
        // so that its end removes one cover, not both.
        let mut pools: std::collections::BTreeMap<u32, u32> = std::collections::BTreeMap::new();
        let mut segments: Vec<Segment> = Vec::new();
        let mut index = 0;
        while index < events.len() {
            let position = events[index].0;
            while let Some(&(at, start, cover)) = events.get(index) {
                if at != position {
                    break;
                }
                match (cover, start) {
                    (Cover::Subnet(mask, id), true) => {
                        subnets.insert((mask, id));
                    }
                    (Cover::Subnet(mask, id), false) => {
                        subnets.remove(&(mask, id));
                    }
                    (Cover::Pool(id), true) => *pools.entry(id).or_default() += 1,
                    (Cover::Pool(id), false) => {
                        if let Some(count) = pools.get_mut(&id) {
                            *count -= 1;
                            if *count == 0 {
                                pools.remove(&id);
                            }
                        }
                    }
                }
                index += 1;
            }
            let Some(&(next, _, _)) = events.get(index) else {
                break;
            };
            let subnet = subnets.last().map(|&(_, id)| SubnetId(id));
            let pool = pools.keys().next().map(|&id| PoolId(id));
            if subnet.is_none() && pool.is_none() {
                continue;
            }
            let shared_network = pool
                .and_then(|pool| config.pools.get(pool.0 as usize))
                .map(|pool| pool.shared_network)
                .or_else(|| {
                    subnet
                        .and_then(|subnet| config.subnets.get(subnet.0 as usize))
                        .map(|subnet| subnet.shared_network)
                });
            // Both bounds fit in u32: `position` is a start (≤ u32::MAX) and `next` an end + 1.
            let (low, high) = (position as u32, (next - 1) as u32);
            match segments.last_mut() {
                Some(last)
                    if u64::from(last.high) + 1 == position
                        && (last.subnet, last.pool) == (subnet, pool) =>
                {
                    last.high = high;
                }
                _ => segments.push(Segment {
                    low,
                    high,
                    subnet,
                    pool,
                    shared_network,
                }),
            }
        }
        Self { segments }
    }

    /// The segment holding `address`.
    pub fn segment(&self, address: Ipv4Addr) -> Option<&Segment> {
        let address = u32::from(address);
        let after = self
            .segments
            .partition_point(|segment| segment.low <= address);
        let segment = self.segments.get(after.checked_sub(1)?)?;
        (address <= segment.high).then_some(segment)
    }

    /// The most specific subnet containing `address`.
    pub fn subnet_for(&self, address: Ipv4Addr) -> Option<SubnetId> {
        self.segment(address)?.subnet
    }

    /// The pool whose ranges contain `address`.
    pub fn pool_of(&self, address: Ipv4Addr) -> Option<PoolId> {
        self.segment(address)?.pool
    }

    /// The shared network `address`'s lease belongs to: its pool's, else its subnet's.
    pub fn shared_network_of(&self, address: Ipv4Addr) -> Option<SharedNetworkId> {
        self.segment(address)?.shared_network
    }

    /// Every segment, sorted by address.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
}

/// The config's [`AddressIndex`], built on first use. A clone starts empty (a cloned config is
/// usually edited before use: a reload's `prepare`, tests), and two configs compare equal
/// whatever their caches hold: the index is derived data. A config's declarations must not
/// change after it was first looked up in.
#[derive(Default)]
pub struct AddressIndexCell(OnceLock<Arc<AddressIndex>>);

impl AddressIndexCell {
    pub fn get_or_build(&self, config: &Config) -> &Arc<AddressIndex> {
        self.0.get_or_init(|| Arc::new(AddressIndex::new(config)))
    }
}

impl Clone for AddressIndexCell {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for AddressIndexCell {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for AddressIndexCell {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("AddressIndexCell")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        crate::config::parse_str(text, "test.conf").expect("valid config")
    }

    /// The linear scans the table replaces, kept here as the reference.
    fn scan_subnet(config: &Config, address: Ipv4Addr) -> Option<SubnetId> {
        config
            .subnets
            .iter()
            .enumerate()
            .filter(|(_, subnet)| subnet.contains(address))
            .max_by_key(|(_, subnet)| u32::from(subnet.netmask))
            .map(|(index, _)| SubnetId(index as u32))
    }

    fn scan_pool(config: &Config, address: Ipv4Addr) -> Option<PoolId> {
        config
            .pools
            .iter()
            .position(|pool| pool.ranges.iter().any(|range| range.contains(address)))
            .map(|index| PoolId(index as u32))
    }

    #[test]
    fn lookups_agree_with_the_linear_scans_everywhere() {
        let config = parse(
            r#"
            subnet 10.0.0.0 netmask 255.255.0.0 { range 10.0.5.1 10.0.5.9; }
            subnet 10.0.1.0 netmask 255.255.255.0 {
                pool { range 10.0.1.10 10.0.1.20; }
                pool { range 10.0.1.21 10.0.1.21; range 10.0.1.30 10.0.1.40; }
            }
            shared-network wide {
                subnet 192.168.0.0 netmask 255.255.255.128 { range 192.168.0.1 192.168.0.100; }
                subnet 192.168.0.128 netmask 255.255.255.128 { }
                pool { range 192.168.0.130 192.168.0.140; }
            }
            subnet 255.255.255.0 netmask 255.255.255.0 { range 255.255.255.200 255.255.255.255; }
            subnet 0.0.0.0 netmask 255.255.255.0 { range 0.0.0.0 0.0.0.3; }
            "#,
        );
        let index = AddressIndex::new(&config);
        // Sorted and apart.
        for pair in index.segments().windows(2) {
            assert!(pair[0].high < pair[1].low, "{pair:?}");
        }
        let probes = (0u32..=260)
            .chain(u32::from(Ipv4Addr::new(10, 0, 0, 0))..=u32::from(Ipv4Addr::new(10, 0, 6, 0)))
            .chain(
                u32::from(Ipv4Addr::new(192, 167, 255, 250))
                    ..=u32::from(Ipv4Addr::new(192, 168, 1, 5)),
            )
            .chain(u32::MAX - 300..=u32::MAX);
        for value in probes {
            let address = Ipv4Addr::from(value);
            assert_eq!(
                index.subnet_for(address),
                scan_subnet(&config, address),
                "{address}"
            );
            assert_eq!(
                index.pool_of(address),
                scan_pool(&config, address),
                "{address}"
            );
            let expected_network = scan_pool(&config, address)
                .map(|pool| config.pool(pool).shared_network)
                .or_else(|| {
                    scan_subnet(&config, address).map(|subnet| config.subnet(subnet).shared_network)
                });
            assert_eq!(
                index.shared_network_of(address),
                expected_network,
                "{address}"
            );
        }
    }

    #[test]
    fn a_clone_rebuilds_its_index_after_an_edit() {
        let config = parse("subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.20; }");
        assert_eq!(
            config.addresses().pool_of(Ipv4Addr::new(10, 0, 0, 30)),
            None
        );
        let mut edited = config.clone();
        edited.pools[0].ranges[0].high = Ipv4Addr::new(10, 0, 0, 40);
        assert_eq!(
            edited.addresses().pool_of(Ipv4Addr::new(10, 0, 0, 30)),
            Some(PoolId(0))
        );
        assert_eq!(
            config.clone(),
            config,
            "the cache takes no part in equality"
        );
    }
}
