//! What the DHCP engine asks of failover, without waiting on it: each relationship's current
//! state as the driver last published it (atomics, read on the packet path), the service rules
//! of that state (docs/spec/failover.md §6.1, §11.3) and the hand-off of committed leases to the driver
//! (a non-blocking channel send, §7.2). The engine never awaits the peer.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use tokio::sync::mpsc::UnboundedSender;

use super::codes::ServerStateCode;
use super::control::Command;
use super::rules::load_balance_mine;
use super::states::{service, Role, Service, State};
use crate::config::model::{Config, FailoverPeerConfig, PoolId, ScopeId};
use crate::lease::record::{Lease, UnixTime};

/// `partner` value meaning "never heard of" (no wire state uses 255).
const PARTNER_UNKNOWN: u8 = 255;

/// One relationship's state, written by its driver, read by the DHCP workers.
#[derive(Debug)]
pub struct RelationshipStatus {
    pub name: String,
    pub role: Role,
    pub load_balance_max_seconds: u32,
    /// False until a driver runs this relationship: the engine then serves as without failover
    /// rules on state (unit tests, `-T`), but still applies MCLT and ownership.
    attached: AtomicBool,
    state: AtomicU8,
    partner: AtomicU8,
    stos: AtomicU32,
    mclt: AtomicU32,
    hba: RwLock<Option<[u8; 32]>>,
    /// When we last heard the partner's state (ISC's partner STOS, docs/spec/failover.md §14.18).
    partner_stos: AtomicU32,
    /// BNDUPDs sent and not yet acknowledged (OMAPI `cur-unacked-updates`).
    unacked: AtomicU32,
    /// When the last message of the partner arrived (0 = never), for the metrics endpoint.
    last_contact: AtomicU32,
    /// Committed lease changes for the driver (set once by the driver).
    changes: OnceLock<UnboundedSender<Ipv4Addr>>,
    /// Operator commands for the driver (set once by the driver).
    commands: OnceLock<UnboundedSender<Command>>,
}

impl RelationshipStatus {
    fn new(peer: &FailoverPeerConfig) -> Self {
        Self {
            name: peer.name.clone(),
            role: if peer.primary {
                Role::Primary
            } else {
                Role::Secondary
            },
            load_balance_max_seconds: peer.load_balance_max_seconds,
            attached: AtomicBool::new(false),
            state: AtomicU8::new(u8::from(ServerStateCode::Startup)),
            partner: AtomicU8::new(PARTNER_UNKNOWN),
            stos: AtomicU32::new(0),
            mclt: AtomicU32::new(peer.mclt),
            hba: RwLock::new(if peer.primary { peer.hba } else { None }),
            partner_stos: AtomicU32::new(0),
            unacked: AtomicU32::new(0),
            last_contact: AtomicU32::new(0),
            changes: OnceLock::new(),
            commands: OnceLock::new(),
        }
    }

    /// Called once by the driver: from now on the state rules apply.
    pub fn attach(&self, changes: UnboundedSender<Ipv4Addr>) {
        let _ = self.changes.set(changes);
        self.attached.store(true, Ordering::Release);
    }

    /// Called once by the driver: operator commands (OMAPI `local-state`) reach it here.
    pub fn attach_commands(&self, commands: UnboundedSender<Command>) {
        let _ = self.commands.set(commands);
    }

    /// The driver's command channel, once a driver runs this relationship.
    pub fn commands(&self) -> Option<&UnboundedSender<Command>> {
        self.commands.get()
    }

    /// Publishes what OMAPI reads besides the state (driver side).
    pub fn publish_counters(&self, partner_stos: UnixTime, unacked: usize) {
        self.partner_stos.store(partner_stos, Ordering::Release);
        self.unacked.store(
            u32::try_from(unacked).unwrap_or(u32::MAX),
            Ordering::Release,
        );
    }

    /// Publishes the machine's state (driver side).
    pub fn publish(
        &self,
        state: State,
        stos: UnixTime,
        partner: Option<ServerStateCode>,
        mclt: u32,
        hba: Option<[u8; 32]>,
    ) {
        self.state.store(u8::from(state.code()), Ordering::Release);
        self.stos.store(stos, Ordering::Release);
        self.partner
            .store(partner.map_or(PARTNER_UNKNOWN, u8::from), Ordering::Release);
        self.mclt.store(mclt, Ordering::Release);
        if let Ok(mut slot) = self.hba.write() {
            *slot = hba;
        }
    }

    /// The local state as last published.
    pub fn state(&self) -> State {
        let code = ServerStateCode::from(self.state.load(Ordering::Acquire));
        let stos = self.stos.load(Ordering::Acquire);
        State::from_code(code, stos, self.mclt(), 0).unwrap_or(State::Startup {
            saved: ServerStateCode::Recover,
            until: stos,
        })
    }

    pub fn partner(&self) -> Option<ServerStateCode> {
        match self.partner.load(Ordering::Acquire) {
            PARTNER_UNKNOWN => None,
            code => Some(ServerStateCode::from(code)),
        }
    }

    /// Start time of the local state.
    pub fn stos(&self) -> UnixTime {
        self.stos.load(Ordering::Acquire)
    }

    /// When the partner's state was last heard of (0 = never).
    pub fn partner_stos(&self) -> UnixTime {
        self.partner_stos.load(Ordering::Acquire)
    }

    /// Records that a message of the partner arrived at `now` (driver side).
    pub fn note_contact(&self, now: UnixTime) {
        self.last_contact.store(now, Ordering::Release);
    }

    /// When the last message of the partner arrived (0 = never).
    pub fn last_contact(&self) -> UnixTime {
        self.last_contact.load(Ordering::Acquire)
    }

    /// BNDUPDs in flight, as last published.
    pub fn unacked(&self) -> u32 {
        self.unacked.load(Ordering::Acquire)
    }

    /// The HBA in force, if known.
    pub fn hba(&self) -> Option<[u8; 32]> {
        self.hba.read().ok().and_then(|hba| *hba)
    }

    /// MCLT in force (a secondary's is learned from the primary's CONNECT, §4.1).
    pub fn mclt(&self) -> u32 {
        self.mclt.load(Ordering::Acquire)
    }

    pub fn is_attached(&self) -> bool {
        self.attached.load(Ordering::Acquire)
    }

    /// The state the lease rules (§8.2, §8.3) apply: NORMAL until a driver runs the
    /// relationship (unit tests, `-T`), so that each server keeps to its own free leases.
    pub fn rules_state(&self) -> State {
        if self.is_attached() {
            self.state()
        } else {
            State::Normal
        }
    }

    /// ISC's service state for the current states (§6.1).
    pub fn service(&self) -> Service {
        if !self.is_attached() {
            return Service::Cooperating;
        }
        service(self.state(), self.partner())
    }
}

/// Failover as the engine sees it: one status per configured relationship and the pool →
/// relationship map.
#[derive(Debug, Default)]
pub struct FailoverHooks {
    relationships: Vec<Arc<RelationshipStatus>>,
    /// Per pool index: the relationship index.
    pool_relationship: Vec<Option<usize>>,
    /// (low, high, relationship) of every failover pool range, sorted by `low`.
    ranges: Vec<(u32, u32, usize)>,
    /// Global `check-secs-byte-order` (§11.3).
    check_secs_byte_order: bool,
}

impl FailoverHooks {
    pub fn new(config: &Config) -> Self {
        let relationships: Vec<Arc<RelationshipStatus>> = config
            .failover_peers
            .iter()
            .map(|peer| Arc::new(RelationshipStatus::new(peer)))
            .collect();
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
            relationships,
            pool_relationship,
            ranges,
            check_secs_byte_order: config
                .scopes
                .get(ScopeId::GLOBAL.0 as usize)
                .and_then(|scope| scope.check_secs_byte_order)
                .unwrap_or(false),
        }
    }

    /// Hooks for a reloaded config that keep the running relationships (their state, and the
    /// channels to their drivers) by name: a SIGHUP must not drop the failover connection. The
    /// reload keeps the running `failover peer` declarations, so every name is found; a
    /// relationship that is not running stays the new, unattached one.
    #[must_use]
    pub fn keeping_relationships_of(mut self, running: &FailoverHooks) -> Self {
        for status in &mut self.relationships {
            if let Some(old) = running
                .relationships
                .iter()
                .find(|old| old.name == status.name)
            {
                *status = old.clone();
            }
        }
        self
    }

    pub fn relationships(&self) -> &[Arc<RelationshipStatus>] {
        &self.relationships
    }

    /// The relationship of `pool`, if it has a failover peer.
    pub fn of_pool(&self, pool: PoolId) -> Option<&RelationshipStatus> {
        let index = (*self.pool_relationship.get(pool.0 as usize)?)?;
        self.relationships.get(index).map(|status| &**status)
    }

    /// The relationship whose pools contain `address`.
    pub fn of_address(&self, address: Ipv4Addr) -> Option<&RelationshipStatus> {
        let address = u32::from(address);
        let after = self.ranges.partition_point(|&(low, _, _)| low <= address);
        let &(_, high, index) = self.ranges.get(after.checked_sub(1)?)?;
        if address > high {
            return None;
        }
        self.relationships.get(index).map(|status| &**status)
    }

    /// The MCLT that bounds lease times in `pool` (§8.1), when it is a failover pool.
    pub fn mclt(&self, pool: PoolId) -> Option<u32> {
        self.of_pool(pool).map(RelationshipStatus::mclt)
    }

    /// May this server answer a DHCPDISCOVER for an address of `pool` (§6.1 service state,
    /// §11.3 load balancing)? `key` is option 61 else chaddr[..hlen], `secs` the BOOTP field.
    /// `partner_has_free` is asked only when the bucket is the partner's: if the partner holds
    /// no lease in its free state in the client's shared network, ISC answers anyway ("cancel
    /// load balance to peer … no free leases", dhcp.c `dhcpdiscover`).
    pub fn may_offer(
        &self,
        pool: PoolId,
        key: &[u8],
        secs: u16,
        partner_has_free: impl FnOnce() -> bool,
    ) -> bool {
        let Some(status) = self.of_pool(pool) else {
            return true;
        };
        match status.service() {
            Service::NotResponding => false,
            Service::Cooperating if status.is_attached() => {
                let Ok(hba) = status.hba.read() else {
                    return true;
                };
                match *hba {
                    Some(hba) => {
                        let secs = if self.check_secs_byte_order {
                            byte_swapped_secs(secs)
                        } else {
                            secs
                        };
                        load_balance_mine(
                            status.role,
                            State::Normal,
                            &hba,
                            key,
                            secs,
                            status.load_balance_max_seconds,
                        ) || !partner_has_free()
                    }
                    None => true,
                }
            }
            _ => true,
        }
    }

    /// May this server answer a DHCPREQUEST / RELEASE / DECLINE about an address of `pool`
    /// (§6.1: not while STARTUP, RECOVER, POTENTIAL-CONFLICT, …)?
    pub fn serving(&self, pool: PoolId) -> bool {
        self.of_pool(pool)
            .is_none_or(|status| status.service() != Service::NotResponding)
    }

    /// Hands the committed leases of failover pools to their drivers for BNDUPD (§7.2). Never
    /// blocks: an unbounded channel send.
    pub fn leases_changed(&self, leases: &[Lease]) {
        for lease in leases {
            if let Some(status) = self.of_address(lease.address) {
                if let Some(changes) = status.changes.get() {
                    let _ = changes.send(lease.address);
                }
            }
        }
    }
}

/// `check-secs-byte-order` (ISC `load_balance_mine`, docs/spec/failover.md §11.3): some clients send
/// `secs` little-endian; a value above 255 with a zero low byte is taken as swapped.
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

    fn config() -> Config {
        crate::config::parse_str(
            "failover peer \"fo\" { primary; address 10.0.0.1; peer address 10.0.0.2; \
             mclt 300; split 128; load balance max seconds 3; }\n\
             subnet 10.0.0.0 netmask 255.255.255.0 { pool { failover peer \"fo\"; \
             range 10.0.0.100 10.0.0.119; } }\n",
            "test.conf",
        )
        .expect("config")
    }

    #[test]
    fn unattached_relationship_serves_everything() {
        let hooks = FailoverHooks::new(&config());
        assert!(hooks.serving(PoolId(0)));
        assert!(hooks.may_offer(PoolId(0), &[0, 0x11, 0x22, 0x33, 0x44, 0x55], 0, || true));
        assert_eq!(hooks.mclt(PoolId(0)), Some(300));
        assert!(hooks.of_address(Ipv4Addr::new(10, 0, 0, 119)).is_some());
        assert!(hooks.of_address(Ipv4Addr::new(10, 0, 0, 120)).is_none());
    }

    /// `check-secs-byte-order`: 0x0300 is 3 seconds sent little-endian, within `load balance
    /// max seconds 3`, so the partner's bucket stays the partner's.
    #[test]
    fn check_secs_byte_order_swaps_little_endian_secs() {
        assert_eq!(byte_swapped_secs(0x0300), 3);
        assert_eq!(byte_swapped_secs(0x0301), 0x0301);
        assert_eq!(byte_swapped_secs(200), 200);
        let text = "check-secs-byte-order on;\n\
             failover peer \"fo\" { primary; address 10.0.0.1; peer address 10.0.0.2; \
             mclt 300; split 128; load balance max seconds 3; }\n\
             subnet 10.0.0.0 netmask 255.255.255.0 { pool { failover peer \"fo\"; \
             range 10.0.0.100 10.0.0.119; } }\n";
        let config = crate::config::parse_str(text, "test.conf").expect("config");
        let peer_bucket = [0, 0x11, 0x22, 0x33, 0x44, 0x55];
        for (config, swapped_is_long_wait) in [(config, false), (self::config(), true)] {
            let hooks = FailoverHooks::new(&config);
            let (sender, _receiver) = tokio::sync::mpsc::unbounded_channel();
            hooks.relationships()[0].attach(sender);
            hooks.relationships()[0].publish(
                State::Normal,
                100,
                Some(ServerStateCode::Normal),
                300,
                Some(server_common::loadbalance::split_to_hba(128)),
            );
            assert_eq!(
                hooks.may_offer(PoolId(0), &peer_bucket, 0x0300, || true),
                swapped_is_long_wait
            );
        }
    }

    #[test]
    fn states_gate_service_and_normal_balances() {
        let hooks = FailoverHooks::new(&config());
        let status = &hooks.relationships()[0];
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        status.attach(sender);
        // STARTUP: silent.
        assert!(!hooks.serving(PoolId(0)));
        let hba = server_common::loadbalance::split_to_hba(128);
        status.publish(
            State::Normal,
            100,
            Some(ServerStateCode::Normal),
            300,
            Some(hba),
        );
        assert!(hooks.serving(PoolId(0)));
        // Bucket 135 is the secondary's (docs/spec/failover.md §11.2), 118 the primary's.
        assert!(!hooks.may_offer(PoolId(0), &[0, 0x11, 0x22, 0x33, 0x44, 0x55], 0, || true));
        assert!(hooks.may_offer(PoolId(0), &[0x6a, 0xd9, 0x3e, 0xff, 0xef, 0xc7], 0, || true));
        // The partner's bucket, but the partner has no free lease to give: answered (§11.3).
        assert!(hooks.may_offer(PoolId(0), &[0, 0x11, 0x22, 0x33, 0x44, 0x55], 0, || false));
        // A client waiting longer than `load balance max seconds` gets an answer anyway.
        assert!(hooks.may_offer(PoolId(0), &[0, 0x11, 0x22, 0x33, 0x44, 0x55], 4, || true));
        status.publish(
            State::CommunicationsInterrupted {
                since: 100,
                auto_partner_down_at: None,
            },
            100,
            Some(ServerStateCode::Normal),
            300,
            Some(hba),
        );
        assert!(hooks.may_offer(PoolId(0), &[0, 0x11, 0x22, 0x33, 0x44, 0x55], 0, || true));
        // The partner in PARTNER-DOWN silences us (§6.1).
        status.publish(
            State::Normal,
            100,
            Some(ServerStateCode::PartnerDown),
            300,
            None,
        );
        assert!(!hooks.serving(PoolId(0)));
        let lease = Lease::free(Ipv4Addr::new(10, 0, 0, 101));
        hooks.leases_changed(&[lease, Lease::free(Ipv4Addr::new(10, 0, 1, 1))]);
        assert_eq!(receiver.try_recv().ok(), Some(Ipv4Addr::new(10, 0, 0, 101)));
        assert!(receiver.try_recv().is_err());
    }
}
