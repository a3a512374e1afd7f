//! The UDP ports of the server and its clients, chosen as ISC dhcpd 4.4 chooses them
//! (server/dhcpd.c `main` and `postconf_initialization`).

use crate::config::model::Config;

/// The port requests arrive on and the port clients are answered on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    /// `local-port` (global) when set, else `-p`, else 67. Relay agents are answered here too
    /// (ISC sends relayed replies to its `local_port`).
    pub server: u16,
    /// `remote-port` (global) when set, else the command line's port (`-p`, else 67) + 1. ISC
    /// computes this default before it reads the config, so `local-port` does not move it
    /// (server/dhcpd.c: `remote_port = htons(ntohs(local_port) + 1)` right after `-p`).
    pub client: u16,
}

impl Ports {
    /// The ports for `config` with `-p` given as `command_line`.
    pub fn of(config: &Config, command_line: Option<u16>) -> Self {
        let global = config.scopes.first();
        let command_line = command_line.unwrap_or(server_common::DHCP_SERVER_PORT);
        Self {
            server: global
                .and_then(|global| global.local_port)
                .unwrap_or(command_line),
            client: global
                .and_then(|global| global.remote_port)
                .unwrap_or(command_line.wrapping_add(1)),
        }
    }

    /// True when clients are answered on the port after the server's, the only port the XDP
    /// program answers renewals on (server-ebpf `renew`).
    pub fn client_is_next(&self) -> bool {
        self.client == self.server.wrapping_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(text: &str, command_line: Option<u16>) -> Ports {
        let config = crate::config::parse_str(text, "ports.conf").expect("parses");
        Ports::of(&config, command_line)
    }

    #[test]
    fn ports_follow_isc() {
        assert_eq!(
            ports("", None),
            Ports {
                server: 67,
                client: 68
            }
        );
        assert_eq!(
            ports("", Some(6767)),
            Ports {
                server: 6767,
                client: 6768
            }
        );
        // `local-port` moves only the server's port; `remote-port` only the clients'.
        assert_eq!(
            ports("local-port 6767;", None),
            Ports {
                server: 6767,
                client: 68
            }
        );
        assert_eq!(
            ports("local-port 6767;", Some(1067)),
            Ports {
                server: 6767,
                client: 1068
            }
        );
        assert_eq!(
            ports("remote-port 1068;", None),
            Ports {
                server: 67,
                client: 1068
            }
        );
        assert_eq!(
            ports("option server.remote-port 2068;", Some(2067)),
            Ports {
                server: 2067,
                client: 2068
            }
        );
        // Only the global scope's values count (ISC reads them from the root group).
        assert_eq!(
            ports(
                "subnet 10.0.0.0 netmask 255.255.255.0 { remote-port 1068; local-port 1067; }",
                None
            ),
            Ports {
                server: 67,
                client: 68
            }
        );
        assert!(ports("", None).client_is_next());
        assert!(!ports("remote-port 1068;", None).client_is_next());
        assert!(!ports("local-port 6767;", None).client_is_next());
    }
}
