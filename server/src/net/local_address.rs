//! `local-address A;` (dhcpd.conf(5)) as ISC dhcpd 4.4's Linux (LPF) build acts on it.
//!
//! ISC reads the global value in `postconf_initialization` (server/dhcpd.c) and uses it in one
//! place: the bind address of its *fallback* UDP socket (common/socket.c `if_register_socket`,
//! reached through `maybe_setup_fallback` at the end of `discover_interfaces`). In the LPF build
//! every other reply leaves through the interface's packet socket with the interface's address,
//! so `local-address` is the source address of exactly the replies ISC sends through the
//! fallback socket (server/dhcp.c `ack_lease`/`dhcp_reply`, `nak_lease`, `dhcpinform`,
//! server/bootp.c `bootp`):
//!
//! - replies through a relay agent (to giaddr), DHCPNAKs included;
//! - DHCPACKs unicast to a RENEWING client's ciaddr;
//! - DHCPINFORM replies (ISC sends every one through the fallback socket).
//!
//! These are the engine's [`Destination::Relay`] and [`Destination::Unicast`] (broadcasts and
//! unicasts by hardware address are ISC's packet-socket replies). ISC binds the fallback socket
//! at start-up and stops when that fails: an address that is not the host's ends the start with
//! ISC's lines ([`check`]).

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::config::model::Config;
use crate::engine::Destination;

/// The global `local-address`, the only one ISC reads (its root group's options).
pub fn of(config: &Config) -> Option<Ipv4Addr> {
    config
        .scopes
        .first()
        .and_then(|global| global.local_address)
}

/// The source address a reply to `destination` leaves from: `local` for the replies ISC sends
/// through its fallback socket, else the kernel's choice (`None`).
pub fn source_for(local: Option<Ipv4Addr>, destination: &Destination) -> Option<Ipv4Addr> {
    match destination {
        Destination::Relay(_) | Destination::Unicast(_) => local,
        Destination::Broadcast | Destination::Hardware { .. } => None,
    }
}

/// ISC's start-up failure when the fallback socket cannot be bound to `local-address`: one
/// line each, as `if_register_socket` logs them before `log_fatal`.
#[derive(Debug, thiserror::Error)]
#[error(
    "Can't bind to dhcp address: {reason}\n\
     Please make sure there is no other dhcp server\n\
     running and that there's no entry for dhcp or\n\
     bootp in /etc/inetd.conf.   Also make sure you\n\
     are not running HP JetAdmin software, which\n\
     includes a bootp server."
)]
pub struct NotLocal {
    /// strerror(3) of the bind's error ("Cannot assign requested address").
    pub reason: String,
}

/// Whether `address` is one of the host's: a UDP socket can be bound to it (ISC binds its
/// fallback socket to `address`:67; port 0 here, as xdhcpd's own sockets hold port 67).
pub fn check(address: Ipv4Addr) -> Result<(), NotLocal> {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .map_err(|error| NotLocal {
        reason: strerror(&error),
    })?;
    socket
        .bind(&SocketAddrV4::new(address, 0).into())
        .map_err(|error| NotLocal {
            reason: strerror(&error),
        })
}

/// The C library's text of an OS error, without Rust's " (os error N)".
fn strerror(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::record::Hardware;

    #[test]
    fn only_the_fallback_socket_replies_take_the_local_address() {
        let local = Some(Ipv4Addr::new(10, 9, 9, 9));
        let address = Ipv4Addr::new(10, 0, 0, 5);
        assert_eq!(source_for(local, &Destination::Relay(address)), local);
        assert_eq!(source_for(local, &Destination::Unicast(address)), local);
        assert_eq!(source_for(local, &Destination::Broadcast), None);
        assert_eq!(
            source_for(
                local,
                &Destination::Hardware {
                    address,
                    hardware: Hardware::new(1, &[2, 0, 0, 0, 0, 1]).expect("hardware"),
                }
            ),
            None
        );
        assert_eq!(source_for(None, &Destination::Relay(address)), None);
    }

    #[test]
    fn only_the_global_value_counts() {
        let config = crate::config::parse_str(
            "local-address 127.0.0.3;\n\
             subnet 10.0.0.0 netmask 255.255.255.0 { local-address 127.0.0.4; }",
            "local.conf",
        )
        .expect("parses");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert_eq!(of(&config), Some(Ipv4Addr::new(127, 0, 0, 3)));
        let config =
            crate::config::parse_str("option server.local-address 127.0.0.5;", "local.conf")
                .expect("parses");
        assert_eq!(of(&config), Some(Ipv4Addr::new(127, 0, 0, 5)));
        assert_eq!(
            of(&crate::config::parse_str("", "local.conf").unwrap()),
            None
        );
    }

    #[test]
    fn an_address_not_of_this_host_is_refused_with_isc_lines() {
        assert!(check(Ipv4Addr::new(127, 0, 0, 3)).is_ok());
        let error = check(Ipv4Addr::new(192, 0, 2, 1)).expect_err("not local");
        let text = error.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "Can't bind to dhcp address: Cannot assign requested address"
        );
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[5], "includes a bootp server.");
    }
}
