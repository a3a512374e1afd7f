//! Which shared network's leases a request needs, known before the lease store is locked: a
//! driver that keeps the store in shards by shared network (`lease::shards`) locks that one
//! shard and hands it to [`Engine::handle`]. The rule mirrors where each handler of
//! `request.rs` and `request/notices.rs` reads and writes leases; the tests of
//! `tests/store_network.rs` hold every message type to it against a store split in two.

use std::net::Ipv4Addr;

use dhcproto::v4::MessageType;

use super::packet::Inbound;
use super::{Engine, Request};
use crate::config::model::SharedNetworkId;

impl Engine {
    /// The shared network whose leases [`Engine::handle`] consults for `request`:
    /// - DHCPDISCOVER and BOOTP: the packet's network (ISC `locate_network`: link selection,
    ///   else giaddr, else the receiving interface);
    /// - DHCPREQUEST: the network of the address asked for (option 50, else ciaddr), whose
    ///   leases `dhcprequest` looks up. Where the engine checks the packet's network against it
    ///   (SELECTING, INIT-REBOOT, relayed REBINDING: anything but a request with ciaddr and no
    ///   giaddr) and they differ, it NAKs or stays silent without changing a lease, and the
    ///   packet's network is named — the one whose offer a SELECTING request for another server
    ///   lets go of;
    /// - DHCPDECLINE: the network of option 50; DHCPRELEASE: that of ciaddr; DHCPINFORM: that of
    ///   ciaddr, else of the source address (the lease it reads);
    ///
    /// where an address's network is that of its pool, else of its subnet (the shard rule of
    /// `lease::shards`). `None` when the engine consults no lease (malformed, unknown network,
    /// server-to-client types): any shard will do.
    pub fn store_network(&self, request: &Request<'_>) -> Option<SharedNetworkId> {
        let inbound = Inbound::parse(request.message).ok()?;
        let addresses = self.config.addresses();
        let of_address = |address: Ipv4Addr| addresses.shared_network_of(address);
        let packet_network = || {
            self.locate_network(&inbound, request.interface_address)
                .map(|network| network.shared)
        };
        let ciaddr = Some(inbound.ciaddr).filter(|ciaddr| !ciaddr.is_unspecified());
        match inbound.message_type {
            None | Some(MessageType::Discover) => packet_network(),
            Some(MessageType::Request) => {
                let claimed = inbound
                    .requested_address
                    .or(ciaddr)
                    .and_then(|address| self.network_of(address))
                    .map(|network| network.shared);
                // `Context::request`'s `checkable`.
                let checkable = (ciaddr.is_some() && !inbound.giaddr.is_unspecified())
                    || (inbound.requested_address.is_some() && ciaddr.is_none());
                match packet_network() {
                    Some(packet) if checkable => Some(packet),
                    // A request naming no address it knows still lets go of an offer to another
                    // server in the packet's network (`Context::request`, SELECTING).
                    packet => claimed.or(packet),
                }
            }
            Some(MessageType::Decline) => inbound.requested_address.and_then(of_address),
            Some(MessageType::Release) => ciaddr.and_then(of_address),
            Some(MessageType::Inform) => of_address(ciaddr.unwrap_or(*request.source.ip())),
            Some(_) => None,
        }
    }
}
