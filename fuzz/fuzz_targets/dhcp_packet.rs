//! Fuzz target: arbitrary bytes decoded as a DHCPv4 message (as the daemon decodes: `net::decode`) and run through the engine (twice,
//! so that the second packet sees the state the first one left). Must never panic.

#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use xdhcpd::config::model::{
    AddressRange, Config, Pool, PoolId, Scope, ScopeId, SharedNetwork, SharedNetworkId, Subnet,
    SubnetId,
};
use xdhcpd::engine::{Engine, Request};
use xdhcpd::lease::store::LeaseStore;

fn config() -> Config {
    let child = |parent: u32| Scope {
        parent: Some(ScopeId(parent)),
        ..Scope::default()
    };
    Config {
        scopes: vec![
            Scope {
                authoritative: Some(true),
                options: vec![(3, vec![10, 0, 0, 1]), (15, b"example.net".to_vec())],
                ..Scope::default()
            },
            child(0),
            child(1),
            child(2),
        ],
        shared_networks: vec![SharedNetwork {
            name: None,
            scope: ScopeId(1),
            subnets: vec![SubnetId(0)],
            pools: vec![PoolId(0)],
        }],
        subnets: vec![Subnet {
            network: Ipv4Addr::new(10, 0, 0, 0),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            scope: ScopeId(2),
            shared_network: SharedNetworkId(0),
        }],
        pools: vec![Pool {
            scope: ScopeId(3),
            shared_network: SharedNetworkId(0),
            subnet: Some(SubnetId(0)),
            ranges: vec![AddressRange {
                low: Ipv4Addr::new(10, 0, 0, 100),
                high: Ipv4Addr::new(10, 0, 0, 103),
                dynamic_bootp: true,
            }],
            permits: Vec::new(),
            failover_peer: None,
        }],
        ..Config::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(message) = xdhcpd::net::decode::decode_message(data) else {
        return;
    };
    let config = config();
    let mut store = LeaseStore::new(&config);
    let engine = Engine::new(Arc::new(config));
    let request = Request {
        message: &message,
        source: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
        interface_address: Some(Ipv4Addr::new(10, 0, 0, 1)),
    };
    for now in [1_795_836_305, 1_795_836_306] {
        let decision = engine.handle(now, &request, &mut store);
        if let Some(reply) = decision.reply {
            let _ = reply.encode();
        }
    }
});
