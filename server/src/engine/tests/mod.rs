//! Engine tests: hand-built configs, fixed packets and fixed times; one test per RFC 2131 / ISC
//! rule, plus the golden capture of ISC dhcpd 4.4 (`capture.rs`).

mod agent_options;
mod billing;
mod bootp;
mod cache_threshold;
mod capture;
mod ddns;
mod decline;
mod failover;
mod functions;
mod lease;
mod lease_events;
mod lease_policy;
mod leasequery;
mod one_lease;
mod options;
mod ping_check;
mod renewal;
mod reverse_names;
mod selection;
mod spaces;
mod statement_order;
mod statements;
mod store_network;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};

use super::starvation::StarvationState;
use super::{Decision, Engine, Request, Snapshot};
use crate::config::model::{
    AddressRange, Config, Pool, PoolId, Scope, ScopeId, SharedNetwork, SharedNetworkId, Subnet,
    SubnetId,
};
use crate::failover::view::FailoverView;
use crate::host_table::DynamicHosts;
use crate::lease::store::LeaseStore;

/// A fixed "now": 2026-11-28 03:25:05 UTC.
pub(super) const NOW: u32 = 1_795_836_305;
/// The address of the interface direct clients arrive on.
pub(super) const INTERFACE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub(super) const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub(super) const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

/// Scope ids of [`base_config`].
pub(super) const GLOBAL: ScopeId = ScopeId(0);
pub(super) const SUBNET_LOCAL: ScopeId = ScopeId(2);
pub(super) const POOL_LOCAL: ScopeId = ScopeId(3);
pub(super) const SUBNET_RELAYED: ScopeId = ScopeId(5);

pub(super) fn scope(parent: ScopeId) -> Scope {
    Scope {
        parent: Some(parent),
        ..Scope::default()
    }
}

/// Two subnets, each alone on its shared network:
/// - 10.0.0.0/24 (local, interface 10.0.0.1), pool 10.0.0.100–10.0.0.109;
/// - 10.1.0.0/24 (behind relay 10.1.0.1), pool 10.1.0.50–10.1.0.59.
pub(super) fn base_config(authoritative: bool) -> Config {
    let global = Scope {
        authoritative: Some(authoritative),
        ..Scope::default()
    };
    Config {
        scopes: vec![
            global,
            scope(GLOBAL),         // 1: shared network of 10.0.0.0/24
            scope(ScopeId(1)),     // 2: subnet 10.0.0.0/24
            scope(SUBNET_LOCAL),   // 3: its pool
            scope(GLOBAL),         // 4: shared network of 10.1.0.0/24
            scope(ScopeId(4)),     // 5: subnet 10.1.0.0/24
            scope(SUBNET_RELAYED), // 6: its pool
        ],
        shared_networks: vec![
            SharedNetwork {
                name: None,
                scope: ScopeId(1),
                subnets: vec![SubnetId(0)],
                pools: vec![PoolId(0)],
            },
            SharedNetwork {
                name: None,
                scope: ScopeId(4),
                subnets: vec![SubnetId(1)],
                pools: vec![PoolId(1)],
            },
        ],
        subnets: vec![
            Subnet {
                network: Ipv4Addr::new(10, 0, 0, 0),
                netmask: Ipv4Addr::new(255, 255, 255, 0),
                scope: SUBNET_LOCAL,
                shared_network: SharedNetworkId(0),
            },
            Subnet {
                network: Ipv4Addr::new(10, 1, 0, 0),
                netmask: Ipv4Addr::new(255, 255, 255, 0),
                scope: SUBNET_RELAYED,
                shared_network: SharedNetworkId(1),
            },
        ],
        pools: vec![
            Pool {
                scope: POOL_LOCAL,
                shared_network: SharedNetworkId(0),
                subnet: Some(SubnetId(0)),
                ranges: vec![AddressRange {
                    low: Ipv4Addr::new(10, 0, 0, 100),
                    high: Ipv4Addr::new(10, 0, 0, 109),
                    dynamic_bootp: false,
                }],
                permits: Vec::new(),
                failover_peer: None,
            },
            Pool {
                scope: ScopeId(6),
                shared_network: SharedNetworkId(1),
                subnet: Some(SubnetId(1)),
                ranges: vec![AddressRange {
                    low: Ipv4Addr::new(10, 1, 0, 50),
                    high: Ipv4Addr::new(10, 1, 0, 59),
                    dynamic_bootp: false,
                }],
                permits: Vec::new(),
                failover_peer: None,
            },
        ],
        ..Config::default()
    }
}

/// An engine and an empty store for `config`, with what a driver would lend it: the failover
/// states (as no driver runs them unless a test sets them), the OMAPI host table and the
/// starvation defence's memory.
pub(super) struct Harness {
    pub engine: Engine,
    pub leases: LeaseStore,
    pub failover: FailoverView,
    pub hosts: DynamicHosts,
    pub starvation: StarvationState,
    /// Whether the driver can ping (`Snapshot::ping_checks`); off unless a test turns it on.
    pub ping_checks: bool,
    /// The reverse names the driver looked up (`Snapshot::reverse_names`).
    pub reverse_names: Option<Arc<crate::reverse_names::Table>>,
}

impl Harness {
    pub fn new(config: Config) -> Self {
        let leases = LeaseStore::new(&config);
        Self {
            engine: Engine::new(Arc::new(config)),
            leases,
            failover: FailoverView::default(),
            hosts: DynamicHosts::default(),
            starvation: StarvationState::default(),
            ping_checks: false,
            reverse_names: None,
        }
    }

    /// What the driver copies for a batch.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            reverse_names: self.reverse_names.clone(),
            failover: self.failover.clone(),
            hosts: self.hosts.snapshot(),
            ping_checks: self.ping_checks,
        }
    }

    /// The expiry ticker at `now`.
    pub fn expire(&mut self, now: u32) -> Vec<crate::lease::record::Lease> {
        self.engine.expire(now, &self.failover, &mut self.leases)
    }

    /// Handles `message` as if received directly on the 10.0.0.1 interface.
    pub fn handle(&mut self, now: u32, message: &Message) -> Decision {
        self.handle_on(now, message, Some(INTERFACE))
    }

    pub fn handle_on(
        &mut self,
        now: u32,
        message: &Message,
        interface_address: Option<Ipv4Addr>,
    ) -> Decision {
        let source = if message.ciaddr().is_unspecified() {
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68)
        } else {
            SocketAddrV4::new(message.ciaddr(), 68)
        };
        // The datagram as the daemon keeps it for `packet(…)`.
        let mut raw = Vec::new();
        dhcproto::Encodable::encode(message, &mut dhcproto::Encoder::new(&mut raw))
            .expect("test messages encode");
        let request = Request {
            message,
            source,
            interface_address,
            raw: Some(&raw),
        };
        let snapshot = self.snapshot();
        self.engine.handle(
            now,
            &snapshot,
            &request,
            &mut self.leases,
            &mut self.starvation,
        )
    }
}

/// A client message of `kind` from `mac` with xid 0x1234 (`dhcp_test_messages`).
pub(super) fn client(kind: MessageType, mac: [u8; 6]) -> Message {
    dhcp_test_messages::ClientMessage::new(kind, mac).build()
}

pub(super) fn with(mut message: Message, option: DhcpOption) -> Message {
    message.opts_mut().insert(option);
    message
}

/// DHCPREQUEST in SELECTING state for `address` from server `server`.
pub(super) fn selecting(mac: [u8; 6], address: Ipv4Addr, server: Ipv4Addr) -> Message {
    dhcp_test_messages::ClientMessage::new(MessageType::Request, mac)
        .requested(address)
        .server_id(server)
        .build()
}

/// The reply's message type.
pub(super) fn reply_type(decision: &Decision) -> Option<MessageType> {
    decision.reply.as_ref()?.decoded().opts().msg_type()
}

/// The reply's option 51.
pub(super) fn reply_lease_time(decision: &Decision) -> Option<u32> {
    match decision
        .reply
        .as_ref()?
        .decoded()
        .opts()
        .get(OptionCode::AddressLeaseTime)?
    {
        DhcpOption::AddressLeaseTime(seconds) => Some(*seconds),
        _ => None,
    }
}

/// The reply's yiaddr.
pub(super) fn yiaddr(decision: &Decision) -> Option<Ipv4Addr> {
    Some(decision.reply.as_ref()?.decoded().yiaddr())
}

/// DISCOVER then REQUEST (SELECTING) for `mac`; returns the ACK decision.
pub(super) fn bind(harness: &mut Harness, now: u32, mac: [u8; 6]) -> Decision {
    let offer = harness.handle(now, &client(MessageType::Discover, mac));
    let address = yiaddr(&offer).expect("an offer");
    harness.handle(now, &selecting(mac, address, INTERFACE))
}
