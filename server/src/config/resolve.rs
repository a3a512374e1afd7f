//! Host names in dhcpd.conf where ISC accepts an address or a name (`fixed-address`,
//! `next-server`, `server-identifier`, values of options of type ip-address; dhcpd.conf(5)
//! "REFERENCE: DECLARATIONS", common/parse.c `parse_ip_addr_or_hostname`).
//!
//! ISC turns such a name into a lookup (`gethostbyname`, common/tree.c `do_host_lookup`) that
//! runs when the value is first needed and is kept an hour; a name that does not resolve logs
//! "NAME: host unknown." and the value is left out: a `fixed-address` list gives the host no
//! address at all, an option is not sent, `next-server` and `server-identifier` fall back as
//! if unset. `fixed-address` takes every address of the name, the other places its first.
//!
//! xdhcpd looks the names up when the configuration is loaded (start-up and every reload),
//! outside the engine, which sees addresses only; the outcome for a name that does not resolve
//! is ISC's, with a warning at its place in the file. That a name is not looked up again
//! while the configuration runs is README "Differs".

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};

/// Turns a host name into its IPv4 addresses, in the resolver's order; `None` when it has none.
pub type Resolver = fn(&str) -> Option<Vec<Ipv4Addr>>;

/// The system's resolver (getaddrinfo: /etc/hosts, then DNS as nsswitch.conf says), IPv4
/// addresses only, as `gethostbyname` gives them.
pub fn system(name: &str) -> Option<Vec<Ipv4Addr>> {
    let found = (name, 0u16).to_socket_addrs().ok()?;
    let mut addresses: Vec<Ipv4Addr> = Vec::new();
    for address in found {
        if let SocketAddr::V4(address) = address {
            if !addresses.contains(address.ip()) {
                addresses.push(*address.ip());
            }
        }
    }
    (!addresses.is_empty()).then_some(addresses)
}

/// Knows no name: for text parsed without a file behind it (fuzzing, OMAPI statements are
/// not affected) and for tests that must not depend on the machine's resolver.
pub fn offline(_name: &str) -> Option<Vec<Ipv4Addr>> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_resolves_from_the_hosts_file() {
        let addresses = system("localhost").expect("localhost is in /etc/hosts");
        assert!(addresses.contains(&Ipv4Addr::LOCALHOST), "{addresses:?}");
    }

    #[test]
    fn offline_knows_nothing() {
        assert_eq!(offline("localhost"), None);
    }

    /// A resolver for the tests below: two names, one with two addresses.
    fn lab(name: &str) -> Option<Vec<Ipv4Addr>> {
        match name {
            "gw.lab" => Some(vec![Ipv4Addr::new(10, 0, 0, 254)]),
            "pair.lab" => Some(vec![
                Ipv4Addr::new(10, 0, 0, 60),
                Ipv4Addr::new(10, 0, 0, 61),
            ]),
            _ => None,
        }
    }

    fn parse(text: &str, resolver: Resolver) -> crate::config::Config {
        crate::config::parse_str_resolving(text, "names.conf", resolver).expect("parses")
    }

    #[test]
    fn names_take_their_addresses_where_isc_looks_them_up() {
        let config = parse(
            "next-server gw.lab;
server-identifier pair.lab;
             option routers gw.lab, pair.lab;
option domain-name-servers 10.0.0.2;
             host a { hardware ethernet 02:00:00:00:00:01; fixed-address pair.lab, 10.0.0.70; }
             subnet 10.0.0.0 netmask 255.255.255.0 { }
",
            lab,
        );
        let global = &config.scopes[0];
        assert_eq!(global.next_server, Some(Ipv4Addr::new(10, 0, 0, 254)));
        // One address where ISC limits the lookup to 4 bytes: the first.
        assert_eq!(global.server_identifier, Some(Ipv4Addr::new(10, 0, 0, 60)));
        assert_eq!(global.options[0], (3, vec![10, 0, 0, 254, 10, 0, 0, 60]));
        // `fixed-address` takes every address of a name, in order.
        assert_eq!(
            config.hosts[0].fixed_addresses,
            [
                Ipv4Addr::new(10, 0, 0, 60),
                Ipv4Addr::new(10, 0, 0, 61),
                Ipv4Addr::new(10, 0, 0, 70)
            ]
        );
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    /// ISC's lookup fails: the option is not sent, the host gets no fixed address at all
    /// (the addresses are one concatenation), `next-server` stays unset.
    #[test]
    fn a_name_that_does_not_resolve_leaves_the_value_out() {
        let config = parse(
            "next-server nowhere.lab;
option routers gw.lab, nowhere.lab;
             host a { hardware ethernet 02:00:00:00:00:01; fixed-address 10.0.0.70, nowhere.lab; }
             subnet 10.0.0.0 netmask 255.255.255.0 { }
",
            lab,
        );
        let global = &config.scopes[0];
        assert_eq!(global.next_server, None);
        assert!(global.options.is_empty());
        assert!(config.hosts[0].fixed_addresses.is_empty());
        let warnings: Vec<String> = config
            .warnings
            .iter()
            .map(|warning| format!("{}: {}", warning.location, warning.message))
            .collect();
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].starts_with("names.conf:1:13: `nowhere.lab`: host unknown"));
    }

    #[test]
    fn the_system_resolver_reads_the_hosts_file() {
        let config = parse(
            "host a { hardware ethernet 02:00:00:00:00:01; fixed-address localhost; }
",
            system,
        );
        assert!(config.hosts[0]
            .fixed_addresses
            .contains(&Ipv4Addr::LOCALHOST));
        // Without a resolver the name is unknown.
        let offline = parse(
            "host a { hardware ethernet 02:00:00:00:00:01; fixed-address localhost; }
",
            offline,
        );
        assert!(offline.hosts[0].fixed_addresses.is_empty());
    }
}
