//! Rules that need the whole file (docs/spec/dhcpd-conf.md §2-§3, §6-§7, docs/spec/failover.md §13): subnet number
//! and mask, ranges inside their subnet and not overlapping, pools with ranges, failover peers
//! inherited from shared networks and referenced by some pool, `omapi-key` declared.

use super::declarations::subnet_text;
use super::Parser;
use crate::config::lexer::Span;
use crate::config::model::{AddressRange, PoolId};

impl Parser {
    pub(super) fn validate(&mut self) {
        self.validate_subnets();
        self.inherit_failover_peers();
        self.validate_pools();
        self.validate_range_overlaps();
        self.validate_peers_referenced();
        self.validate_omapi_key();
        self.resolve_option_spaces();
    }

    /// The mask must be contiguous ones and the network number must have no host bits.
    fn validate_subnets(&mut self) {
        for index in 0..self.config.subnets.len() {
            let subnet = self.config.subnets[index].clone();
            let span = self
                .side
                .subnet_spans
                .get(index)
                .copied()
                .unwrap_or_default();
            let mask = u32::from(subnet.netmask);
            if mask.leading_ones() + mask.trailing_zeros() != 32 {
                let error = self.invalid(
                    span,
                    "a netmask of contiguous one bits",
                    subnet.netmask.to_string(),
                );
                self.errors.push(error);
            } else if u32::from(subnet.network) & !mask != 0 {
                let error = self.invalid(
                    span,
                    format!(
                        "a network number with no host bits for netmask {}",
                        subnet.netmask
                    ),
                    subnet.network.to_string(),
                );
                self.errors.push(error);
            }
        }
    }

    /// docs/spec/dhcpd-conf.md §6: a shared network's `failover peer` applies to its pools unless the pool
    /// names its own or says `no failover peer;`.
    fn inherit_failover_peers(&mut self) {
        for index in 0..self.config.pools.len() {
            let pool = &self.config.pools[index];
            if pool.failover_peer.is_some()
                || self
                    .side
                    .pool_no_failover
                    .get(index)
                    .copied()
                    .unwrap_or(false)
            {
                continue;
            }
            let inherited = self
                .side
                .shared_network_peers
                .get(pool.shared_network.0 as usize)
                .cloned()
                .flatten();
            self.config.pools[index].failover_peer = inherited;
        }
    }

    /// Every pool needs a range; every range must lie inside the pool's subnet (or, for a pool
    /// declared in a shared network, inside one of its subnets); failover pools hold no
    /// dynamic-bootp ranges.
    fn validate_pools(&mut self) {
        for index in 0..self.config.pools.len() {
            let pool = self.config.pools[index].clone();
            let span = self.side.pool_spans.get(index).copied().unwrap_or_default();
            if pool.ranges.is_empty() {
                let error = self.invalid(span, "at least one `range` in the pool", "none");
                self.errors.push(error);
            }
        }
        let ranges = self.side.ranges.clone();
        for (pool_id, range, span) in ranges {
            let pool = self.config.pool(pool_id).clone();
            let candidates: Vec<_> = match pool.subnet {
                Some(subnet) => vec![subnet],
                None => self
                    .config
                    .shared_network(pool.shared_network)
                    .subnets
                    .clone(),
            };
            let inside = candidates.iter().any(|subnet| {
                let subnet = self.config.subnet(*subnet);
                subnet.contains(range.low) && subnet.contains(range.high)
            });
            if !inside {
                let expected = match pool.subnet {
                    Some(subnet) => {
                        let subnet = self.config.subnet(subnet);
                        format!(
                            "a range inside subnet {}",
                            subnet_text(subnet.network, subnet.netmask)
                        )
                    }
                    None => "a range inside one subnet of the shared network".to_string(),
                };
                let error = self.invalid(span, expected, range_text(&range));
                self.errors.push(error);
            }
            if range.dynamic_bootp && pool.failover_peer.is_some() {
                let error = self.invalid(
                    span,
                    "no `dynamic-bootp` range in a failover pool",
                    range_text(&range),
                );
                self.errors.push(error);
            }
        }
    }

    /// No address may belong to two ranges.
    fn validate_range_overlaps(&mut self) {
        let mut ranges: Vec<(PoolId, AddressRange, Span)> = self.side.ranges.clone();
        ranges.sort_by_key(|(_, range, _)| (u32::from(range.low), u32::from(range.high)));
        let mut widest: Option<(AddressRange, Span)> = None;
        for (_, range, span) in ranges {
            if let Some((previous, previous_span)) = widest {
                if u32::from(range.low) <= u32::from(previous.high) {
                    let error = self.invalid(
                        span,
                        format!(
                            "a range not overlapping {} (declared at {})",
                            range_text(&previous),
                            self.sources.locate(previous_span)
                        ),
                        range_text(&range),
                    );
                    self.errors.push(error);
                    if u32::from(range.high) <= u32::from(previous.high) {
                        continue;
                    }
                }
            }
            widest = Some((range, span));
        }
    }

    /// docs/spec/failover.md §13: a declared peer without referring pools stops ISC dhcpd.
    fn validate_peers_referenced(&mut self) {
        for index in 0..self.config.failover_peers.len() {
            let name = self.config.failover_peers[index].name.clone();
            let referenced = self
                .config
                .pools
                .iter()
                .any(|pool| pool.failover_peer.as_deref() == Some(name.as_str()));
            if !referenced {
                let span = self.side.peer_spans.get(index).copied().unwrap_or_default();
                let error = self.invalid(
                    span,
                    format!("a pool referring to failover peer \"{name}\""),
                    "none",
                );
                self.errors.push(error);
            }
        }
    }

    /// docs/spec/dhcpd-conf.md §7: `omapi-key` must name a declared key.
    fn validate_omapi_key(&mut self) {
        let Some(name) = self.config.omapi_key.clone() else {
            return;
        };
        if !self.config.keys.iter().any(|key| key.name == name) {
            let span = self.side.omapi_key_span.unwrap_or_default();
            let error = self.invalid(
                span,
                "the name of a declared key",
                format!("undeclared key \"{name}\""),
            );
            self.errors.push(error);
        }
    }
}

fn range_text(range: &AddressRange) -> String {
    format!("range {} {}", range.low, range.high)
}
