//! The configuration the engine benchmarks decide against: one subnet, one 64k-address
//! pool, a router and a name server at the top, and a scope at every level ISC has.

use std::net::Ipv4Addr;

use xdhcpd::config::model::{
    AddressRange, Config, Pool, PoolId, Scope, ScopeId, SharedNetwork, SharedNetworkId, Subnet,
    SubnetId,
};

pub fn engine_bench_config() -> Config {
    let child = |parent: u32| Scope {
        parent: Some(ScopeId(parent)),
        ..Scope::default()
    };
    Config {
        scopes: vec![
            Scope {
                authoritative: Some(true),
                options: vec![(3, vec![10, 0, 0, 1]), (6, vec![192, 0, 2, 53])],
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
            netmask: Ipv4Addr::new(255, 255, 0, 0),
            scope: ScopeId(2),
            shared_network: SharedNetworkId(0),
        }],
        pools: vec![Pool {
            scope: ScopeId(3),
            shared_network: SharedNetworkId(0),
            subnet: Some(SubnetId(0)),
            ranges: vec![AddressRange {
                low: Ipv4Addr::new(10, 0, 1, 0),
                high: Ipv4Addr::new(10, 0, 255, 254),
                dynamic_bootp: false,
            }],
            permits: Vec::new(),
            failover_peer: None,
        }],
        ..Config::default()
    }
}
