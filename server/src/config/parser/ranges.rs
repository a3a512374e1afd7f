//! `range [dynamic-bootp] LOW [HIGH];` (docs/spec/dhcpd-conf.md §2) and the implicit pools of
//! ranges written directly in a subnet, as ISC's confpars.c `parse_address_range` makes them.

use super::declarations::{block_name, MAX_RANGE_ADDRESSES};
use super::{Block, BlockKind, ParseResult, Parser};
use crate::config::lexer::Span;
use crate::config::model::{AddressRange, Permit, PermitKind, PoolId, SubnetId};

/// The permit list ISC gives an implicit pool: `allow all clients` for `dynamic-bootp` ranges,
/// `deny dynamic bootp clients` for the others (confpars.c "Dynamic pools permit all clients.
/// Otherwise we prohibit BOOTP clients.").
fn implicit_permit(dynamic_bootp: bool) -> Permit {
    if dynamic_bootp {
        Permit {
            allow: true,
            kind: PermitKind::AllClients,
        }
    } else {
        Permit {
            allow: false,
            kind: PermitKind::DynamicBootpClients,
        }
    }
}

impl Parser {
    /// `range [dynamic-bootp] LOW [HIGH];` in a subnet (implicit pool) or pool. In a `pool`
    /// the flag changes nothing but the failover check (the pool's permits decide who may
    /// use it, BOOTP clients included: ISC `allocate_lease`).
    pub(super) fn parse_range(&mut self, block: Block) -> ParseResult<()> {
        let span = self.bump().span;
        let dynamic_bootp = self.eat_keyword("dynamic-bootp");
        let low = self.parse_ip()?;
        let high = if self.at_punct(b';') {
            low
        } else {
            self.parse_ip()?
        };
        self.expect_semicolon()?;
        // mdb.c `new_address_range`: "Allow range to be specified high-to-low as well as
        // low-to-high."
        let (low, high) = if u32::from(low) > u32::from(high) {
            (high, low)
        } else {
            (low, high)
        };
        let addresses = u64::from(u32::from(high)) - u64::from(u32::from(low)) + 1;
        if addresses > MAX_RANGE_ADDRESSES {
            return Err(self.invalid(
                span,
                format!("a range of at most {MAX_RANGE_ADDRESSES} addresses"),
                format!("{low}-{high}, an overly large address range ({addresses} addresses)"),
            ));
        }
        if block.kind == BlockKind::Pool && block.subnet.is_none() {
            // A pool written in a shared-network: confpars.c `parse_address_range` looks for
            // the range's subnet among the subnets declared so far ("address range not on
            // network NAME").
            let declared = block
                .shared_network
                .and_then(|id| self.config.shared_networks.get(id.0 as usize))
                .is_some_and(|network| {
                    network
                        .subnets
                        .iter()
                        .any(|subnet| self.config.subnet(*subnet).contains(low))
                });
            if !declared {
                return Err(self.invalid(
                    span,
                    "a range in a subnet declared before it in the shared-network",
                    format!("{low}-{high}, not on the network (yet)"),
                ));
            }
        }
        let pool = match block.kind {
            BlockKind::Pool => block.pool,
            BlockKind::Subnet => match block.subnet {
                Some(subnet) => self.implicit_pool(block, subnet, dynamic_bootp, span),
                None => None,
            },
            _ => None,
        };
        let Some(pool) = pool else {
            return Err(self.invalid(
                span,
                "`range` inside a subnet or pool",
                format!("`range` inside a {}", block_name(block.kind)),
            ));
        };
        let range = AddressRange {
            low,
            high,
            dynamic_bootp,
        };
        if let Some(target) = self.config.pools.get_mut(pool.0 as usize) {
            target.ranges.push(range);
        }
        self.side.ranges.push((pool, range, span));
        Ok(())
    }

    /// The implicit pool a range written directly in `subnet` joins (confpars.c
    /// `parse_address_range`, `!inpool`): the first pool whose permit list is exactly the
    /// one ISC gives such a range ([`implicit_permit`]), else a new one with that list.
    ///
    /// ISC takes, when the matching pool is not the first one looked at, the pool looked at
    /// just before it (`pool_reference (&pool, last, MDL)`): a second `range dynamic-bootp`
    /// after a plain `range` joins the plain ranges' pool, closed to BOOTP clients, and a
    /// plain range after that joins the first pool. xdhcpd does the same. ISC looks through
    /// every pool of the shared network; xdhcpd through the implicit pools of the subnet
    /// (README "Differs").
    fn implicit_pool(
        &mut self,
        block: Block,
        subnet: SubnetId,
        dynamic_bootp: bool,
        span: Span,
    ) -> Option<PoolId> {
        let wanted = implicit_permit(dynamic_bootp);
        let pools = self
            .side
            .implicit_pools
            .get(&subnet)
            .cloned()
            .unwrap_or_default();
        let mut last = None;
        for &pool in &pools {
            if self.config.pool(pool).permits == [wanted.clone()] {
                return Some(last.unwrap_or(pools[0]));
            }
            last = Some(pool);
        }
        let pool = self.add_pool(block, span)?;
        if let Some(target) = self.config.pools.get_mut(pool.0 as usize) {
            target.permits.push(wanted);
        }
        self.side
            .implicit_pools
            .entry(subnet)
            .or_default()
            .push(pool);
        Some(pool)
    }
}
