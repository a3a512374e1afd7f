//! Server parameters of ISC's server option space (server/stables.c) that concern BOOTP, the
//! daemon's ports and the leases' names and times, each acted on as ISC does
//! (docs/spec/dhcpd-conf.md §4):
//!
//! - `dynamic-bootp-lease-length`, `dynamic-bootp-lease-cutoff`, `boot-unknown-clients`,
//!   `local-port`, `remote-port`, `infinite-is-reserved` and `adaptive-lease-time-threshold`
//!   land in the scope (`values::parse_server_option`), so `option server.NAME …` sets them
//!   the same way;
//! - `get-lease-hostnames` lands in the scope too; the names come from `crate::reverse_names`;
//! - `always-reply-rfc1048` is accepted with either value: xdhcpd always answers with RFC 1048
//!   options, which is what ISC does for every request that carries the magic cookie (README
//!   "Differs" for one without).

use super::{Block, ParseResult, Parser};
use crate::config::lexer::Span;

/// The statement words this module reads.
pub(super) fn is_boot_parameter(word: &str) -> bool {
    matches!(
        word,
        "dynamic-bootp-lease-length"
            | "dynamic-bootp-lease-cutoff"
            | "boot-unknown-clients"
            | "local-port"
            | "remote-port"
            | "always-reply-rfc1048"
            | "get-lease-hostnames"
            | "infinite-is-reserved"
            | "adaptive-lease-time-threshold"
    )
}

impl Parser {
    /// One of [`is_boot_parameter`]'s statements, its word not yet taken.
    pub(super) fn parse_boot_parameter(
        &mut self,
        block: Block,
        word: &str,
        span: Span,
    ) -> ParseResult<()> {
        self.bump();
        match word {
            "always-reply-rfc1048" => {
                self.parse_flag()?;
                self.expect_semicolon()
            }
            _ => self.parse_server_option(block, word, span),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::model::Permission;

    fn parse(text: &str) -> Result<crate::config::model::Config, String> {
        crate::config::parse_str(text, "boot.conf").map_err(|errors| errors.to_string())
    }

    #[test]
    fn acted_on_parameters_land_in_the_scope() {
        let config = parse(
            "dynamic-bootp-lease-length 3600;\ndynamic-bootp-lease-cutoff 1800000000;\n\
             boot-unknown-clients false;\nlocal-port 6767;\nalways-reply-rfc1048 true;\n\
             get-lease-hostnames false;\ninfinite-is-reserved off;\n\
             adaptive-lease-time-threshold 0;\n\
             option server.dynamic-bootp-lease-length 60;\n",
        )
        .expect("parses");
        let global = &config.scopes[0];
        assert_eq!(global.dynamic_bootp_lease_length, Some(60));
        assert_eq!(global.dynamic_bootp_lease_cutoff, Some(1_800_000_000));
        assert_eq!(global.unknown_clients, Some(Permission::Deny));
        assert_eq!(global.local_port, Some(6767));
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn ports_names_and_lease_time_parameters_land_in_the_scope() {
        let config = parse(
            "remote-port 1068;\nget-lease-hostnames false;\n\
             subnet 10.0.0.0 netmask 255.255.255.0 {\n\
               infinite-is-reserved on;\nadaptive-lease-time-threshold 50;\n}\n\
             option server.adaptive-lease-time-threshold 10;\n",
        )
        .expect("parses");
        let global = &config.scopes[0];
        assert_eq!(global.remote_port, Some(1068));
        assert_eq!(global.adaptive_lease_time_threshold, Some(10));
        let subnet = &config.scopes[config.subnets[0].scope.0 as usize];
        assert_eq!(subnet.infinite_is_reserved, Some(true));
        assert_eq!(subnet.adaptive_lease_time_threshold, Some(50));
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert_eq!(global.get_lease_hostnames, Some(false));
        let config = parse(
            "subnet 10.0.0.0 netmask 255.255.255.0 { get-lease-hostnames true; }
             option server.get-lease-hostnames on;
",
        )
        .expect("parses");
        assert_eq!(config.scopes[0].get_lease_hostnames, Some(true));
        let subnet = &config.scopes[config.subnets[0].scope.0 as usize];
        assert_eq!(subnet.get_lease_hostnames, Some(true));
        // `S` is 16 bits, `B` 8 (ISC: "expecting number" past them).
        assert!(parse("remote-port 70000;").is_err());
        assert!(parse("adaptive-lease-time-threshold 256;").is_err());
        // `L` takes no `infinite` (ISC: "expecting number").
        assert!(parse("dynamic-bootp-lease-length infinite;").is_err());
    }
}
