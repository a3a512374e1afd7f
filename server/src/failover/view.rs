//! Failover as the DHCP engine reads it: plain values, no atomics, no channels. The driver
//! copies each relationship's current state out of the shared [`super::hooks::FailoverHooks`]
//! once per batch of packets (or per expiry run) and passes the copy to the engine, which
//! therefore decides a whole batch under one failover state and can be driven with any state a
//! test likes (docs/spec/failover.md §6.1 service states, §8 lease rules, §11.3 balancing).

use std::net::Ipv4Addr;

use super::codes::ServerStateCode;
use super::rules::load_balance_mine;
use super::states::{service, Role, Service, State};
use crate::config::model::{Config, FailoverPeerConfig, PoolId, ScopeId};

/// One relationship's state at the moment the driver looked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelationshipView {
    pub role: Role,
    /// False until a driver runs this relationship: the engine then serves as without failover
    /// rules on state (unit tests, `-T`), but still applies MCLT and ownership.
    pub attached: bool,
    /// The local state as the driver last published it.
    pub state: State,
    /// The partner's state as last heard (`None`: never).
    pub partner: Option<ServerStateCode>,
    /// MCLT in force (a secondary learns it from the primary's CONNECT, §4.1).
    pub mclt: u32,
    /// The HBA in force, if known (§11.1).
    pub hba: Option<[u8; 32]>,
    pub load_balance_max_seconds: u32,
}

impl RelationshipView {
    /// The relationship of `peer` before any driver runs it.
    pub fn unattached(peer: &FailoverPeerConfig) -> Self {
        Self {
            role: if peer.primary {
                Role::Primary
            } else {
                Role::Secondary
            },
            attached: false,
            state: State::Startup {
                saved: ServerStateCode::Recover,
                until: 0,
            },
            partner: None,
            mclt: peer.mclt,
            hba: if peer.primary { peer.hba } else { None },
            load_balance_max_seconds: peer.load_balance_max_seconds,
        }
    }

    /// The state the lease rules (§8.2, §8.3) apply: NORMAL until a driver runs the
    /// relationship (unit tests, `-T`), so that each server keeps to its own free leases.
    pub fn rules_state(&self) -> State {
        if self.attached {
            self.state
        } else {
            State::Normal
        }
    }

    /// ISC's service state for the current states (§6.1).
    pub fn service(&self) -> Service {
        if !self.attached {
            return Service::Cooperating;
        }
        service(self.state, self.partner)
    }

    /// May this server answer a DHCPREQUEST / RELEASE / DECLINE about an address of this
    /// relationship (§6.1: not while STARTUP, RECOVER, POTENTIAL-CONFLICT, …)?
    pub fn serving(&self) -> bool {
        self.service() != Service::NotResponding
    }

    /// May this server answer a DHCPDISCOVER of this relationship (§6.1 service state, §11.3
    /// load balancing)? `key` is option 61 else chaddr[..hlen], `secs` the BOOTP field (already
    /// byte-swapped when `check-secs-byte-order` says so). `partner_has_free` is asked only when
    /// the bucket is the partner's: if the partner holds no lease in its free state in the
    /// client's shared network, ISC answers anyway ("cancel load balance to peer … no free
    /// leases", dhcp.c `dhcpdiscover`).
    pub fn may_offer(
        &self,
        key: &[u8],
        secs: u16,
        partner_has_free: impl FnOnce() -> bool,
    ) -> bool {
        match self.service() {
            Service::NotResponding => false,
            Service::Cooperating if self.attached => match &self.hba {
                Some(hba) => {
                    load_balance_mine(
                        self.role,
                        State::Normal,
                        hba,
                        key,
                        secs,
                        self.load_balance_max_seconds,
                    ) || !partner_has_free()
                }
                None => true,
            },
            _ => true,
        }
    }
}

/// Every configured relationship, in the order of the config's `failover peer` declarations
/// (a reload keeps that list, `crate::reload::prepare`). A relationship missing from the view
/// counts as not run by any driver ([`RelationshipView::unattached`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailoverView {
    pub relationships: Vec<RelationshipView>,
}

impl FailoverView {
    /// The relationships of `config` as no driver runs them.
    pub fn unattached(config: &Config) -> Self {
        Self {
            relationships: config
                .failover_peers
                .iter()
                .map(RelationshipView::unattached)
                .collect(),
        }
    }

    pub fn get(&self, index: usize) -> Option<&RelationshipView> {
        self.relationships.get(index)
    }
}

/// Which relationship each pool and each address belongs to, from the config: the pool →
/// relationship table and the sorted failover ranges, so that a lookup by address is a binary
/// search, not a scan of the pools.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelationshipMap {
    /// Per pool index: the relationship index.
    pool_relationship: Vec<Option<usize>>,
    /// (low, high, relationship) of every failover pool range, sorted by `low`.
    ranges: Vec<(u32, u32, usize)>,
    /// Global `check-secs-byte-order` (§11.3).
    check_secs_byte_order: bool,
}

impl RelationshipMap {
    pub fn new(config: &Config) -> Self {
        let pool_relationship: Vec<Option<usize>> = config
            .pools
            .iter()
            .map(|pool| {
                let name = pool.failover_peer.as_deref()?;
                config
                    .failover_peers
                    .iter()
                    .position(|peer| peer.name == name)
            })
            .collect();
        let mut ranges = Vec::new();
        for (pool, relationship) in config.pools.iter().zip(&pool_relationship) {
            if let Some(relationship) = relationship {
                for range in &pool.ranges {
                    ranges.push((u32::from(range.low), u32::from(range.high), *relationship));
                }
            }
        }
        ranges.sort_unstable();
        Self {
            pool_relationship,
            ranges,
            check_secs_byte_order: config
                .scopes
                .get(ScopeId::GLOBAL.0 as usize)
                .and_then(|scope| scope.check_secs_byte_order)
                .unwrap_or(false),
        }
    }

    /// The relationship index of `pool`, if it has a failover peer.
    pub fn of_pool(&self, pool: PoolId) -> Option<usize> {
        *self.pool_relationship.get(pool.0 as usize)?
    }

    /// The relationship index whose pools contain `address`.
    pub fn of_address(&self, address: Ipv4Addr) -> Option<usize> {
        let address = u32::from(address);
        let after = self.ranges.partition_point(|&(low, _, _)| low <= address);
        let &(_, high, index) = self.ranges.get(after.checked_sub(1)?)?;
        (address <= high).then_some(index)
    }

    /// `secs` as load balancing reads it: `check-secs-byte-order` (ISC `load_balance_mine`,
    /// docs/spec/failover.md §11.3) takes a value above 255 with a zero low byte as sent
    /// little-endian.
    pub fn balancing_secs(&self, secs: u16) -> u16 {
        if self.check_secs_byte_order {
            byte_swapped_secs(secs)
        } else {
            secs
        }
    }
}

/// `check-secs-byte-order` (ISC `load_balance_mine`, docs/spec/failover.md §11.3): some clients
/// send `secs` little-endian; a value above 255 with a zero low byte is taken as swapped.
pub fn byte_swapped_secs(secs: u16) -> u16 {
    if secs > 255 && secs & 0xff == 0 {
        secs.swap_bytes()
    } else {
        secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        crate::config::parse_str(
            &format!(
                "{extra}failover peer \"fo\" {{ primary; address 10.0.0.1; peer address 10.0.0.2; \
                 mclt 300; split 128; load balance max seconds 3; }}\n\
                 subnet 10.0.0.0 netmask 255.255.255.0 {{ pool {{ failover peer \"fo\"; \
                 range 10.0.0.100 10.0.0.119; }} }}\n"
            ),
            "test.conf",
        )
        .expect("config")
    }

    fn attached(state: State, partner: Option<ServerStateCode>) -> RelationshipView {
        RelationshipView {
            attached: true,
            state,
            partner,
            hba: Some(server_common::loadbalance::split_to_hba(128)),
            ..RelationshipView::unattached(&config("").failover_peers[0])
        }
    }

    /// Bucket 135 is the secondary's with `split 128` (docs/spec/failover.md §11.2), 118 the
    /// primary's.
    const SECONDARY_BUCKET: [u8; 6] = [0, 0x11, 0x22, 0x33, 0x44, 0x55];
    const PRIMARY_BUCKET: [u8; 6] = [0x6a, 0xd9, 0x3e, 0xff, 0xef, 0xc7];

    #[test]
    fn unattached_relationship_serves_everything() {
        let config = config("");
        let view = FailoverView::unattached(&config);
        let relationship = view.get(0).expect("one relationship");
        assert!(relationship.serving());
        assert!(relationship.may_offer(&SECONDARY_BUCKET, 0, || true));
        assert_eq!(relationship.mclt, 300);
        assert_eq!(relationship.rules_state(), State::Normal);
        let map = RelationshipMap::new(&config);
        assert_eq!(map.of_pool(PoolId(0)), Some(0));
        assert_eq!(map.of_address(Ipv4Addr::new(10, 0, 0, 119)), Some(0));
        assert_eq!(map.of_address(Ipv4Addr::new(10, 0, 0, 120)), None);
        assert_eq!(map.of_address(Ipv4Addr::new(10, 0, 0, 99)), None);
    }

    #[test]
    fn states_gate_service_and_normal_balances() {
        let startup = RelationshipView {
            attached: true,
            ..RelationshipView::unattached(&config("").failover_peers[0])
        };
        assert!(!startup.serving(), "STARTUP is silent");
        let normal = attached(State::Normal, Some(ServerStateCode::Normal));
        assert!(normal.serving());
        assert!(!normal.may_offer(&SECONDARY_BUCKET, 0, || true));
        assert!(normal.may_offer(&PRIMARY_BUCKET, 0, || true));
        // The partner's bucket, but the partner has no free lease to give: answered (§11.3).
        assert!(normal.may_offer(&SECONDARY_BUCKET, 0, || false));
        // A client waiting longer than `load balance max seconds` gets an answer anyway.
        assert!(normal.may_offer(&SECONDARY_BUCKET, 4, || true));
        let interrupted = attached(
            State::CommunicationsInterrupted {
                since: 100,
                auto_partner_down_at: None,
            },
            Some(ServerStateCode::Normal),
        );
        assert!(interrupted.may_offer(&SECONDARY_BUCKET, 0, || true));
        // The partner in PARTNER-DOWN silences us (§6.1).
        let silenced = attached(State::Normal, Some(ServerStateCode::PartnerDown));
        assert!(!silenced.serving());
        assert!(!silenced.may_offer(&PRIMARY_BUCKET, 0, || true));
    }

    /// `check-secs-byte-order`: 0x0300 is 3 seconds sent little-endian, within `load balance
    /// max seconds 3`, so the partner's bucket stays the partner's.
    #[test]
    fn check_secs_byte_order_swaps_little_endian_secs() {
        assert_eq!(byte_swapped_secs(0x0300), 3);
        assert_eq!(byte_swapped_secs(0x0301), 0x0301);
        assert_eq!(byte_swapped_secs(200), 200);
        let normal = attached(State::Normal, Some(ServerStateCode::Normal));
        for (config, swapped_is_long_wait) in [
            (config("check-secs-byte-order on;\n"), false),
            (config(""), true),
        ] {
            let secs = RelationshipMap::new(&config).balancing_secs(0x0300);
            assert_eq!(
                normal.may_offer(&SECONDARY_BUCKET, secs, || true),
                swapped_is_long_wait
            );
        }
    }
}
