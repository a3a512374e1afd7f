//! Server parameters of ISC's server option space (server/stables.c) that concern BOOTP and the
//! daemon's ports, each either acted on exactly or refused (docs/spec/dhcpd-conf.md §4):
//!
//! - `dynamic-bootp-lease-length`, `dynamic-bootp-lease-cutoff`, `boot-unknown-clients` and
//!   `local-port` land in the scope (`values::parse_server_option`);
//! - `always-reply-rfc1048` is accepted with either value: xdhcpd always answers with RFC 1048
//!   options, which is what ISC does for every request that carries the magic cookie (README
//!   "Differs" for one without);
//! - `get-lease-hostnames`, `infinite-is-reserved` and `adaptive-lease-time-threshold` are
//!   accepted with the value that leaves ISC's behaviour as it is (`false`, `false`, 0 or
//!   100 and above) and refused with any other, which xdhcpd does not act on;
//! - `remote-port` is refused: the kernel's fast path answers clients on the port after the
//!   server's.

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
            "remote-port" => Err(self.invalid(
                span,
                "a statement xdhcpd acts on",
                "`remote-port` (replies to clients on another port than the server's + 1 are unsupported)",
            )),
            "always-reply-rfc1048" => {
                self.parse_flag()?;
                self.expect_semicolon()
            }
            "get-lease-hostnames" | "infinite-is-reserved" => {
                let value_span = self.peek().span;
                if self.parse_flag()? {
                    return Err(self.invalid(
                        value_span,
                        format!("`{word} false` (the only value xdhcpd acts on)"),
                        format!("`{word} true` (unsupported)"),
                    ));
                }
                self.expect_semicolon()
            }
            "adaptive-lease-time-threshold" => {
                let value_span = self.peek().span;
                let percent = self.parse_isc_integer(8, "a percentage")?;
                // ISC `ack_lease` applies the threshold only between 1 and 99.
                if (1..100).contains(&percent) {
                    return Err(self.invalid(
                        value_span,
                        "0 or 100 and above (the values xdhcpd acts on)",
                        format!("{percent} (adaptive lease times are unsupported)"),
                    ));
                }
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
    fn parameters_xdhcpd_does_not_act_on_are_errors() {
        for (text, found) in [
            ("remote-port 1068;", "`remote-port`"),
            ("get-lease-hostnames true;", "`get-lease-hostnames true`"),
            ("infinite-is-reserved on;", "`infinite-is-reserved true`"),
            ("adaptive-lease-time-threshold 50;", "50 (adaptive"),
        ] {
            let error = parse(text).expect_err(text);
            assert!(error.starts_with("boot.conf:1:"), "{error}");
            assert!(error.contains(found), "{error}");
            assert!(error.contains("unsupported"), "{error}");
        }
        // `L` takes no `infinite` (ISC: "expecting number").
        assert!(parse("dynamic-bootp-lease-length infinite;").is_err());
    }
}
