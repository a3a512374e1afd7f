//! Settings that only xdhcpd reads, written as options of a user-defined option space
//! `xdhcpd` so that the same dhcpd.conf still passes `dhcpd -t` (ISC accepts any user option
//! space whose options are defined before use, docs/spec/dhcpd-conf.md §5.2, and never sends options of a
//! space that no `encapsulate` or `vendor-option-space` refers to).
//!
//! ```text
//! option space xdhcpd;
//! option xdhcpd.new-leases-per-mac code 2 = unsigned integer 32;
//! option xdhcpd.new-leases-per-mac 4;
//! ```
//!
//! xdhcpd knows the names below and ignores the definitions (codes and types are only there for
//! ISC's parser; [`DEFINITIONS`] is the block to paste). Only the global scope is read.

/// The ISC definitions of every xdhcpd option, ready to paste at the top of dhcpd.conf.
pub const DEFINITIONS: &str = "\
option space xdhcpd;
option xdhcpd.starvation-defence code 1 = boolean;
option xdhcpd.new-leases-per-mac code 2 = unsigned integer 32;
option xdhcpd.new-leases-per-mac-window code 3 = unsigned integer 32;
option xdhcpd.new-leases-per-circuit code 4 = unsigned integer 32;
option xdhcpd.new-leases-per-circuit-window code 5 = unsigned integer 32;
option xdhcpd.pool-reserve-percent code 6 = unsigned integer 8;
option xdhcpd.new-leases-per-relay-in-reserve code 7 = unsigned integer 32;
option xdhcpd.new-leases-per-relay-window code 8 = unsigned integer 32;
option xdhcpd.starvation-table-size code 9 = unsigned integer 32;
option xdhcpd.metrics-listen code 10 = text;
option xdhcpd.omapi-listen code 11 = ip-address;
option xdhcpd.omapi-auth-timeout code 12 = unsigned integer 32;
option xdhcpd.omapi-connections-per-source code 13 = unsigned integer 32;
option xdhcpd.bulk-leasequery-listen code 14 = text;
option xdhcpd.control-api-listen code 20 = text;
option xdhcpd.control-api-cert-file code 21 = text;
option xdhcpd.control-api-key-file code 22 = text;
option xdhcpd.control-api-trust-anchor code 23 = text;
option xdhcpd.control-api-cert-required code 24 = boolean;
option xdhcpd.control-api-auth-file code 25 = text;
option xdhcpd.lease-database code 15 = text;
option xdhcpd.history-database code 16 = text;
option xdhcpd.history-retention-days code 17 = unsigned integer 32;
";

/// The JSON control API's settings (README "JSON control API (Kea commands)",
/// `crate::control_api`), named after Kea's control agent: `http-host`/`http-port`,
/// `cert-file`, `key-file`, `trust-anchor`, `cert-required`, and the basic-authentication
/// clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlApiSettings {
    /// `xdhcpd.control-api-listen "ADDR:PORT"`: off without it.
    pub listen: Option<std::net::SocketAddr>,
    /// `xdhcpd.control-api-cert-file`: the server's certificate chain (PEM); with the key,
    /// the API speaks HTTPS.
    pub cert_file: Option<String>,
    /// `xdhcpd.control-api-key-file`: the server's private key (PEM).
    pub key_file: Option<String>,
    /// `xdhcpd.control-api-trust-anchor`: CA certificates (PEM) that client certificates must
    /// chain to (mutual TLS).
    pub trust_anchor: Option<String>,
    /// `xdhcpd.control-api-cert-required` (default on, as Kea's `cert-required`): with a trust
    /// anchor, a client without a certificate is refused during the handshake; off, a client
    /// may also come without one (and then needs basic authentication if that is configured).
    pub cert_required: bool,
    /// `xdhcpd.control-api-auth-file`: `user:password` lines, one per client, as the files of
    /// Kea's `password-file` without `user`; every request must carry one of them in HTTP
    /// basic authentication (RFC 7617).
    pub auth_file: Option<String>,
}

impl Default for ControlApiSettings {
    fn default() -> Self {
        Self {
            listen: None,
            cert_file: None,
            key_file: None,
            trust_anchor: None,
            cert_required: true,
            auth_file: None,
        }
    }
}

impl ControlApiSettings {
    /// Applies one parsed path-valued setting; false when `name` is not one.
    pub(crate) fn set_path(&mut self, name: &str, path: String) -> bool {
        let slot = match name {
            "control-api-cert-file" => &mut self.cert_file,
            "control-api-key-file" => &mut self.key_file,
            "control-api-trust-anchor" => &mut self.trust_anchor,
            "control-api-auth-file" => &mut self.auth_file,
            _ => return false,
        };
        *slot = Some(path);
        true
    }

    /// Applies one parsed flag; false when `name` is not one of these settings.
    pub(crate) fn set(&mut self, name: &str, value: u32) -> bool {
        match name {
            "control-api-cert-required" => self.cert_required = value != 0,
            _ => return false,
        }
        true
    }
}

/// The OMAPI listener's settings beyond ISC (README, OMAPI; `omapi::admission`,
/// `omapi::session::SessionPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OmapiSettings {
    /// `xdhcpd.omapi-listen`: the address to listen on. Without it: 0.0.0.0 when dhcpd.conf
    /// has an `omapi-key` (ISC's behaviour), else 127.0.0.1 only, because a keyless listener
    /// gives whoever connects full control.
    pub listen: Option<std::net::Ipv4Addr>,
    /// `xdhcpd.omapi-auth-timeout`: seconds a connection to a keyed listener has to open the
    /// `omapi-key` authenticator (0: no limit).
    pub auth_timeout: u32,
    /// `xdhcpd.omapi-connections-per-source`: connections one source address may hold at once
    /// (0: only the global bound).
    pub connections_per_source: u32,
}

impl Default for OmapiSettings {
    fn default() -> Self {
        Self {
            listen: None,
            auth_timeout: 10,
            connections_per_source: crate::omapi::admission::DEFAULT_PER_SOURCE,
        }
    }
}

/// At most `count` new leases per `window` seconds (a token bucket of `count` tokens refilled
/// at `count / window` per second); `count == 0` means no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub count: u32,
    pub window: u32,
}

impl Limit {
    pub const UNLIMITED: Limit = Limit {
        count: 0,
        window: 1,
    };

    pub fn is_unlimited(&self) -> bool {
        self.count == 0 || self.window == 0
    }
}

/// The pool-exhaustion (starvation) defence of `engine::starvation`; see its module doc for
/// why these limits and these defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StarvationConfig {
    /// `xdhcpd.starvation-defence` (default on).
    pub enabled: bool,
    /// `xdhcpd.new-leases-per-mac[-window]`: new leases per client hardware address.
    pub per_mac: Limit,
    /// `xdhcpd.new-leases-per-circuit[-window]`: new leases per relay agent circuit-id
    /// (option 82 sub-option 1, RFC 3046 §2.0) of one relay.
    pub per_circuit: Limit,
    /// `xdhcpd.pool-reserve-percent`: the share of each pool kept for clients the server
    /// already knows; below it, unknown clients are limited by `per_relay_in_reserve`.
    pub reserve_percent: u8,
    /// `xdhcpd.new-leases-per-relay-in-reserve` / `xdhcpd.new-leases-per-relay-window`:
    /// new leases per relay (giaddr, or the receiving interface) for unknown clients while their
    /// pool is in its reserve.
    pub per_relay_in_reserve: Limit,
    /// `xdhcpd.starvation-table-size`: entries kept per table (MACs, circuits, relays); the
    /// oldest are forgotten first, so memory stays bounded under a flood of random MACs.
    pub table_size: u32,
}

impl Default for StarvationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            per_mac: Limit {
                count: 4,
                window: 60,
            },
            per_circuit: Limit {
                count: 32,
                window: 60,
            },
            reserve_percent: 10,
            per_relay_in_reserve: Limit {
                count: 16,
                window: 60,
            },
            table_size: 65_536,
        }
    }
}

/// The type of an xdhcpd option value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Flag,
    Number,
    Percent,
    /// A quoted `ADDRESS:PORT` (`metrics-listen`, `bulk-leasequery-listen`,
    /// `control-api-listen`).
    SocketAddress,
    /// A dotted-quad IPv4 address (`omapi-listen`).
    Address,
    /// A quoted file name (`control-api-cert-file`, …).
    Path,
    /// A quoted PostgreSQL connection string (`lease-database`, `history-database`).
    Database,
}

/// The kind of the xdhcpd option `name` (lower case), if it is one.
pub(crate) fn kind_of(name: &str) -> Option<Kind> {
    Some(match name {
        "starvation-defence" | "control-api-cert-required" => Kind::Flag,
        "metrics-listen" | "bulk-leasequery-listen" | "control-api-listen" => Kind::SocketAddress,
        "control-api-cert-file"
        | "control-api-key-file"
        | "control-api-trust-anchor"
        | "control-api-auth-file" => Kind::Path,
        "omapi-listen" => Kind::Address,
        "lease-database" | "history-database" => Kind::Database,
        "pool-reserve-percent" => Kind::Percent,
        "new-leases-per-mac"
        | "new-leases-per-mac-window"
        | "new-leases-per-circuit"
        | "new-leases-per-circuit-window"
        | "new-leases-per-relay-in-reserve"
        | "new-leases-per-relay-window"
        | "starvation-table-size"
        | "omapi-auth-timeout"
        | "omapi-connections-per-source"
        | "history-retention-days" => Kind::Number,
        _ => return None,
    })
}

impl OmapiSettings {
    /// Applies one parsed numeric xdhcpd option; false when `name` is not an OMAPI setting.
    pub(crate) fn set(&mut self, name: &str, value: u32) -> bool {
        match name {
            "omapi-auth-timeout" => self.auth_timeout = value,
            "omapi-connections-per-source" => self.connections_per_source = value,
            _ => return false,
        }
        true
    }
}

impl StarvationConfig {
    /// Applies one parsed xdhcpd option (`kind_of(name)` said its kind; flags come as 0/1).
    pub(crate) fn set(&mut self, name: &str, value: u32) {
        match name {
            "starvation-defence" => self.enabled = value != 0,
            "new-leases-per-mac" => self.per_mac.count = value,
            "new-leases-per-mac-window" => self.per_mac.window = value,
            "new-leases-per-circuit" => self.per_circuit.count = value,
            "new-leases-per-circuit-window" => self.per_circuit.window = value,
            "pool-reserve-percent" => self.reserve_percent = value.min(100) as u8,
            "new-leases-per-relay-in-reserve" => self.per_relay_in_reserve.count = value,
            "new-leases-per-relay-window" => self.per_relay_in_reserve.window = value,
            "starvation-table-size" => self.table_size = value,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_of_the_xdhcpd_space_set_the_defence_and_need_no_warning() {
        let text = format!(
            "{DEFINITIONS}option xdhcpd.new-leases-per-mac 2;\n\
             option xdhcpd.new-leases-per-mac-window 30;\n\
             option xdhcpd.pool-reserve-percent 25;\n\
             option xdhcpd.starvation-defence off;\n\
             subnet 10.0.0.0 netmask 255.255.255.0 {{ range 10.0.0.10 10.0.0.20; }}\n"
        );
        let config = crate::config::parse_str(&text, "test.conf").expect("parses");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let starvation = config.starvation;
        assert_eq!(
            starvation.per_mac,
            Limit {
                count: 2,
                window: 30
            }
        );
        assert_eq!(starvation.reserve_percent, 25);
        assert!(!starvation.enabled);
        assert_eq!(
            starvation.per_circuit,
            StarvationConfig::default().per_circuit
        );
    }

    /// Bulk leasequery (RFC 6926) is off by default: ISC 4.4 has none.
    #[test]
    fn the_control_api_is_off_unless_configured() {
        let config = crate::config::parse_str(
            &format!(
                "{DEFINITIONS}option xdhcpd.control-api-listen \"127.0.0.1:8000\";\n\
                 option xdhcpd.control-api-cert-file \"/etc/xdhcpd/api.pem\";\n\
                 option xdhcpd.control-api-key-file \"/etc/xdhcpd/api.key\";\n\
                 option xdhcpd.control-api-trust-anchor \"/etc/xdhcpd/ca.pem\";\n\
                 option xdhcpd.control-api-cert-required false;\n\
                 option xdhcpd.control-api-auth-file \"/etc/xdhcpd/api-users\";\n"
            ),
            "test.conf",
        )
        .expect("parses");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let settings = &config.control_api;
        assert_eq!(
            settings.listen,
            Some("127.0.0.1:8000".parse().expect("address"))
        );
        assert_eq!(settings.cert_file.as_deref(), Some("/etc/xdhcpd/api.pem"));
        assert_eq!(settings.key_file.as_deref(), Some("/etc/xdhcpd/api.key"));
        assert_eq!(settings.trust_anchor.as_deref(), Some("/etc/xdhcpd/ca.pem"));
        assert!(!settings.cert_required);
        assert_eq!(settings.auth_file.as_deref(), Some("/etc/xdhcpd/api-users"));
        let default = crate::config::parse_str(DEFINITIONS, "test.conf").expect("parses");
        assert_eq!(default.control_api, ControlApiSettings::default());
        assert!(default.control_api.cert_required);
    }

    #[test]
    fn bulk_leasequery_listens_only_when_configured() {
        let text = format!(
            "{DEFINITIONS}option xdhcpd.bulk-leasequery-listen \"10.0.0.1:67\";\n\
             option xdhcpd.metrics-listen \"127.0.0.1:9167\";\n"
        );
        let config = crate::config::parse_str(&text, "test.conf").expect("parses");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert_eq!(
            config.bulk_leasequery_listen,
            Some("10.0.0.1:67".parse().unwrap())
        );
        assert_eq!(
            config.metrics_listen,
            Some("127.0.0.1:9167".parse().unwrap())
        );
        let config = crate::config::parse_str(DEFINITIONS, "test.conf").expect("parses");
        assert_eq!(config.bulk_leasequery_listen, None);
    }

    #[test]
    fn database_settings_are_read_from_the_xdhcpd_space() {
        let text = format!(
            "{DEFINITIONS}option xdhcpd.lease-database \"postgresql://xdhcpd@db/leases\";\n\
             option xdhcpd.history-database \"host=/run/postgresql dbname=history\";\n\
             option xdhcpd.history-retention-days 400;\n"
        );
        let config = crate::config::parse_str(&text, "test.conf").expect("parses");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert_eq!(
            config.lease_database.as_deref(),
            Some("postgresql://xdhcpd@db/leases")
        );
        assert_eq!(
            config.history_database.as_deref(),
            Some("host=/run/postgresql dbname=history")
        );
        assert_eq!(config.history_retention_days, Some(400));
        let config = crate::config::parse_str(DEFINITIONS, "test.conf").expect("parses");
        assert_eq!(config.history_database, None);
        assert_eq!(config.history_retention_days, None);
        // Not a string: a clear error, not a panic.
        let text = format!("{DEFINITIONS}option xdhcpd.history-database 10.0.0.1;\n");
        assert!(crate::config::parse_str(&text, "test.conf").is_err());
    }

    #[test]
    fn omapi_settings_are_read_from_the_xdhcpd_space() {
        let text = format!(
            "{DEFINITIONS}option xdhcpd.omapi-listen 10.0.0.1;\n\
             option xdhcpd.omapi-auth-timeout 3;\n\
             option xdhcpd.omapi-connections-per-source 2;\n"
        );
        let config = crate::config::parse_str(&text, "test.conf").expect("parses");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert_eq!(
            config.omapi,
            OmapiSettings {
                listen: Some(std::net::Ipv4Addr::new(10, 0, 0, 1)),
                auth_timeout: 3,
                connections_per_source: 2,
            }
        );
        assert_eq!(
            crate::config::parse_str("", "test.conf").unwrap().omapi,
            OmapiSettings::default()
        );
        let errors = crate::config::parse_str("option xdhcpd.omapi-listen \"x\";", "test.conf")
            .expect_err("not an address");
        assert!(errors.to_string().contains("IPv4"), "{errors}");
    }

    #[test]
    fn defaults_apply_without_xdhcpd_options() {
        let config = crate::config::parse_str("", "test.conf").expect("parses");
        assert_eq!(config.starvation, StarvationConfig::default());
    }

    #[test]
    fn bad_values_and_unknown_names_are_reported() {
        let errors =
            crate::config::parse_str("option xdhcpd.pool-reserve-percent 101;", "test.conf")
                .expect_err("out of range");
        assert!(errors.to_string().contains("percentage"), "{errors}");
        let config = crate::config::parse_str("option xdhcpd.frobnicate 3;", "test.conf")
            .expect("an unknown name is a warning");
        assert_eq!(config.warnings.len(), 1);
        let config = crate::config::parse_str(
            "subnet 10.0.0.0 netmask 255.255.255.0 { option xdhcpd.new-leases-per-mac 1; }",
            "test.conf",
        )
        .expect("a scoped setting is a warning");
        assert_eq!(config.warnings.len(), 1);
        assert_eq!(config.starvation, StarvationConfig::default());
    }
}
