//! OMAPI, ISC's control channel (`docs/spec/omapi.md`): `wire` (codec), `decoder` (the
//! incremental stream decoder), `auth` (HMAC-MD5 keys), `session` (sans-IO connection state
//! machine), `admission` (connection bounds), `objects` (lease, host, control, failover-state)
//! and `server` (the tokio listener on `omapi-port`).

pub mod admission;
pub mod auth;
pub mod decoder;
pub mod objects;
pub mod result;
pub mod server;
pub mod session;
pub mod wire;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use crate::config::model::Config;
use crate::engine::dynamic_hosts::HostSet;
use crate::host_table::DynamicHosts;
use crate::lease::file::HostRecord;

/// The dynamic host table from the host records of dhcpd.leases (later records win; rubouts of
/// dhcpd.conf hosts hide them), as ISC rebuilds its host hash at start-up.
pub fn host_table(config: &Config, records: Vec<HostRecord>) -> Arc<DynamicHosts> {
    let mut set = HostSet::default();
    for record in records {
        let configured = config.hosts.iter().any(|host| host.name == record.name);
        set.apply(record, configured);
    }
    Arc::new(DynamicHosts::new(set))
}

/// The address the listener binds: `option xdhcpd.omapi-listen`, else ISC's 0.0.0.0 when an
/// `omapi-key` guards the listener, else 127.0.0.1 — beyond ISC (README, OMAPI): without a key,
/// whoever connects has full control (leases, hosts, shutdown), so only local users may.
pub fn listen_address(config: &Config) -> Ipv4Addr {
    match (config.omapi.listen, &config.omapi_key) {
        (Some(address), _) => address,
        (None, Some(_)) => Ipv4Addr::UNSPECIFIED,
        (None, None) => Ipv4Addr::LOCALHOST,
    }
}

/// Starts the OMAPI listener, a task of the control plane, when dhcpd.conf has `omapi-port`
/// (ISC runs none otherwise), on [`listen_address`], serving `objects` (built by the daemon
/// with [`objects::Objects::new`] over the same `config`).
pub fn start(
    control_plane: &crate::control_plane::ControlPlane,
    config: &Config,
    objects: objects::Objects,
) -> std::io::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(port) = config.omapi_port else {
        return Ok(None);
    };
    let address = SocketAddrV4::new(listen_address(config), port);
    if config.omapi_key.is_none() && config.omapi.listen.is_none() {
        tracing::warn!(
            "OMAPI has no omapi-key, so any client that connects controls the server: \
             listening on {address} only (option xdhcpd.omapi-listen chooses the address)"
        );
    }
    let limits = server::Limits {
        session: session::SessionPolicy::of(config),
        per_source: config.omapi.connections_per_source,
    };
    server::spawn(
        control_plane.handle(),
        control_plane.token(),
        address,
        limits,
        Arc::new(objects),
    )
    .map(Some)
}
