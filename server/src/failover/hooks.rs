//! The shared side of failover, between its drivers and the rest of the daemon: each
//! relationship's current state as its driver last published it (atomics), copied for the
//! engine into a plain [`FailoverView`] once per batch, and the hand-off of committed leases to
//! the driver (a non-blocking channel send, docs/spec/failover.md §7.2). Nothing here decides:
//! the service and lease rules read the view (`super::view`), and the engine never awaits the
//! peer.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::Sender;

use super::codes::ServerStateCode;
use super::command::Command;
use super::states::{Role, Service, State};
use super::view::{FailoverView, RelationshipMap, RelationshipView};
use crate::config::model::{Config, FailoverPeerConfig};
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
    /// Committed lease changes for the driver (set once by the driver), at most
    /// [`CHANGES_QUEUE`] waiting.
    changes: OnceLock<Sender<Ipv4Addr>>,
    /// A change did not fit in the queue: the driver resynchronises ([`Self::take_changes_lost`]).
    changes_lost: AtomicBool,
    /// Changes that did not fit, for the metrics endpoint.
    changes_dropped: AtomicU64,
    /// Operator commands for the driver (set once by the driver).
    commands: OnceLock<Sender<Command>>,
}

/// Lease changes that may wait for a relationship's driver. A burst beyond it (a reload's
/// re-homing, an expiry run of a large pool while the driver waits on the disk) is not lost:
/// the driver then queues every lease the partner has not acknowledged, which is what a
/// partner's UPDREQ would get (§7.5), so a dropped notice costs a scan, never a BNDUPD.
pub const CHANGES_QUEUE: usize = 65_536;
/// Operator commands that may wait (each caller waits for its own outcome).
pub const COMMANDS_QUEUE: usize = 16;

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
            changes_lost: AtomicBool::new(false),
            changes_dropped: AtomicU64::new(0),
            commands: OnceLock::new(),
        }
    }

    /// Called once by the driver: from now on the state rules apply.
    pub fn attach(&self, changes: Sender<Ipv4Addr>) {
        let _ = self.changes.set(changes);
        self.attached.store(true, Ordering::Release);
    }

    /// Called once by the driver: operator commands (OMAPI `local-state`) reach it here.
    pub fn attach_commands(&self, commands: Sender<Command>) {
        let _ = self.commands.set(commands);
    }

    /// The driver's command channel, once a driver runs this relationship.
    pub fn commands(&self) -> Option<&Sender<Command>> {
        self.commands.get()
    }

    /// Hands one committed change to the driver; never blocks. A full queue marks the
    /// relationship for a resynchronisation instead ([`CHANGES_QUEUE`]).
    fn lease_changed(&self, address: Ipv4Addr) {
        let Some(changes) = self.changes.get() else {
            return;
        };
        if let Err(TrySendError::Full(_)) = changes.try_send(address) {
            self.changes_dropped.fetch_add(1, Ordering::Relaxed);
            self.changes_lost.store(true, Ordering::Release);
        }
    }

    /// True once after changes were dropped (driver side): every unacknowledged lease must be
    /// queued again.
    pub fn take_changes_lost(&self) -> bool {
        self.changes_lost.swap(false, Ordering::AcqRel)
    }

    /// Changes that did not fit in the queue since start-up.
    pub fn changes_dropped(&self) -> u64 {
        self.changes_dropped.load(Ordering::Relaxed)
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

    /// The state as plain values, for the engine ([`FailoverHooks::view`]).
    pub fn view(&self) -> RelationshipView {
        RelationshipView {
            role: self.role,
            attached: self.is_attached(),
            state: self.state(),
            partner: self.partner(),
            mclt: self.mclt(),
            hba: self.hba(),
            load_balance_max_seconds: self.load_balance_max_seconds,
        }
    }

    /// ISC's service state for the current states (§6.1, [`RelationshipView::service`]).
    pub fn service(&self) -> Service {
        self.view().service()
    }
}

/// The driver-side record of every configured relationship: one shared status each (written by
/// its driver, read by the workers, OMAPI, metrics and the fast path) and the address →
/// relationship map for routing committed leases to their driver. The engine never sees it:
/// the workers pass it a [`FailoverView`] copied with [`FailoverHooks::view`].
#[derive(Debug, Default)]
pub struct FailoverHooks {
    relationships: Vec<Arc<RelationshipStatus>>,
    map: RelationshipMap,
}

impl FailoverHooks {
    pub fn new(config: &Config) -> Self {
        Self {
            relationships: config
                .failover_peers
                .iter()
                .map(|peer| Arc::new(RelationshipStatus::new(peer)))
                .collect(),
            map: RelationshipMap::new(config),
        }
    }

    pub fn relationships(&self) -> &[Arc<RelationshipStatus>] {
        &self.relationships
    }

    /// Every relationship's state now, as plain values for the engine (once per batch).
    pub fn view(&self) -> FailoverView {
        FailoverView {
            relationships: self
                .relationships
                .iter()
                .map(|status| status.view())
                .collect(),
        }
    }

    /// The relationship whose pools contain `address`.
    pub fn of_address(&self, address: Ipv4Addr) -> Option<&RelationshipStatus> {
        let index = self.map.of_address(address)?;
        self.relationships.get(index).map(|status| &**status)
    }

    /// Hands the committed leases of failover pools to their drivers for BNDUPD (§7.2). Never
    /// blocks: a full queue is a resynchronisation, not a wait ([`CHANGES_QUEUE`]).
    pub fn leases_changed(&self, leases: &[Lease]) {
        self.addresses_changed(leases.iter().map(|lease| lease.address));
    }

    /// [`Self::leases_changed`] by address (the group commit's `on_durable` holds addresses).
    pub fn addresses_changed(&self, addresses: impl IntoIterator<Item = Ipv4Addr>) {
        for address in addresses {
            if let Some(status) = self.of_address(address) {
                status.lease_changed(address);
            }
        }
    }

    /// The addresses of `leases` that belong to a failover relationship's pools.
    pub fn failover_addresses(&self, leases: &[Lease]) -> Vec<Ipv4Addr> {
        if self.relationships.is_empty() {
            return Vec::new();
        }
        leases
            .iter()
            .map(|lease| lease.address)
            .filter(|address| self.of_address(*address).is_some())
            .collect()
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
    fn the_view_copies_what_the_driver_published() {
        let config = config();
        let hooks = FailoverHooks::new(&config);
        assert_eq!(hooks.view(), FailoverView::unattached(&config));
        let status = &hooks.relationships()[0];
        let (sender, mut receiver) = tokio::sync::mpsc::channel(CHANGES_QUEUE);
        status.attach(sender);
        let hba = server_common::loadbalance::split_to_hba(128);
        status.publish(
            State::Normal,
            100,
            Some(ServerStateCode::PartnerDown),
            250,
            Some(hba),
        );
        let view = hooks.view();
        let relationship = view.get(0).expect("one relationship");
        assert!(relationship.attached);
        assert_eq!(relationship.state, State::Normal);
        assert_eq!(relationship.partner, Some(ServerStateCode::PartnerDown));
        assert_eq!(relationship.mclt, 250);
        assert_eq!(relationship.hba, Some(hba));
        assert_eq!(relationship.service(), status.service());
        assert!(
            !relationship.serving(),
            "the partner in PARTNER-DOWN silences us"
        );
        let lease = Lease::free(Ipv4Addr::new(10, 0, 0, 101));
        hooks.leases_changed(&[lease, Lease::free(Ipv4Addr::new(10, 0, 1, 1))]);
        assert_eq!(receiver.try_recv().ok(), Some(Ipv4Addr::new(10, 0, 0, 101)));
        assert!(receiver.try_recv().is_err());
    }
}
