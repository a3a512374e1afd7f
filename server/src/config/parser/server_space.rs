//! ISC's `server` option space (server/stables.c `server_options[]`): the names by which ISC
//! knows the server parameters, with their formats. ISC parses every parameter that has no
//! keyword of its own through this table (common/parse.c `parse_executable_statement`, default
//! case), so these names are accepted wherever an executable statement is — also in `if` and
//! `else` bodies — with the value syntax of their format.

use super::{ParseResult, Parser};
use crate::config::lexer::TokenKind;

/// `server_options[]` of ISC 4.4.3 as Debian builds it (failover on, LDAP and EUI-64 off):
/// name and format (`T` lease interval, `L` unsigned 32-bit, `S` 16-bit, `B` 8-bit, `f` flag,
/// `t` text, `I` address, `X` data, `6` IPv6 address, `k` key name, `U` space name, `N…`
/// enumeration).
const SERVER_OPTIONS: &[(&str, &str)] = &[
    ("default-lease-time", "T"),
    ("max-lease-time", "T"),
    ("min-lease-time", "T"),
    ("dynamic-bootp-lease-cutoff", "T"),
    ("dynamic-bootp-lease-length", "L"),
    ("boot-unknown-clients", "f"),
    ("dynamic-bootp", "f"),
    ("allow-bootp", "f"),
    ("allow-booting", "f"),
    ("one-lease-per-client", "f"),
    ("get-lease-hostnames", "f"),
    ("use-host-decl-names", "f"),
    ("use-lease-addr-for-default-route", "f"),
    ("min-secs", "B"),
    ("filename", "t"),
    ("server-name", "t"),
    ("next-server", "I"),
    ("authoritative", "f"),
    ("vendor-option-space", "U"),
    ("always-reply-rfc1048", "f"),
    ("site-option-space", "X"),
    ("always-broadcast", "f"),
    ("ddns-domainname", "t"),
    ("ddns-hostname", "t"),
    ("ddns-rev-domainname", "t"),
    ("lease-file-name", "t"),
    ("pid-file-name", "t"),
    ("duplicates", "f"),
    ("declines", "f"),
    ("ddns-updates", "f"),
    ("omapi-port", "S"),
    ("local-port", "S"),
    ("limited-broadcast-address", "I"),
    ("remote-port", "S"),
    ("local-address", "I"),
    ("omapi-key", "k"),
    ("stash-agent-options", "f"),
    ("ddns-ttl", "T"),
    ("ddns-update-style", "N"),
    ("client-updates", "f"),
    ("update-optimization", "f"),
    ("ping-check", "f"),
    ("update-static-leases", "f"),
    ("log-facility", "N"),
    ("do-forward-updates", "f"),
    ("ping-timeout", "T"),
    ("infinite-is-reserved", "f"),
    ("update-conflict-detection", "f"),
    ("leasequery", "f"),
    ("adaptive-lease-time-threshold", "B"),
    ("do-reverse-updates", "f"),
    ("fqdn-reply", "f"),
    ("preferred-lifetime", "T"),
    ("dhcpv6-lease-file-name", "t"),
    ("dhcpv6-pid-file-name", "t"),
    ("limit-addrs-per-ia", "L"),
    ("limit-prefs-per-ia", "L"),
    ("delayed-ack", "S"),
    ("max-ack-delay", "L"),
    ("dhcp-cache-threshold", "B"),
    ("dont-use-fsync", "f"),
    ("ddns-local-address4", "I"),
    ("ddns-local-address6", "6"),
    ("ignore-client-uids", "f"),
    ("log-threshold-low", "B"),
    ("log-threshold-high", "B"),
    ("echo-client-id", "f"),
    ("server-id-check", "f"),
    ("prefix-length-mode", "N"),
    ("dhcpv6-set-tee-times", "f"),
    ("abandon-lease-time", "T"),
    ("check-secs-byte-order", "f"),
    ("ddns-dual-stack-mixed-mode", "f"),
    ("ddns-guard-id-must-match", "f"),
    ("ddns-other-guard-is-dynamic", "f"),
    ("release-on-roam", "f"),
    ("local-address6", "6"),
    ("bind-local-address6", "f"),
    ("ping-cltt-secs", "T"),
    ("ping-timeout-ms", "T"),
];

/// The format of a server-space name (lower case), if ISC knows it.
pub(super) fn server_option_format(name: &str) -> Option<&'static str> {
    SERVER_OPTIONS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, format)| *format)
}

impl Parser {
    /// The value of a server-space option and its `;` (common/parse.c `parse_option_statement`
    /// with the option's format), or `= EXPR;`. Only checked: used where the value is not kept.
    pub(super) fn parse_server_space_value(&mut self, format: &str) -> ParseResult<()> {
        if self.eat_punct(b'=') {
            self.parse_expression()?;
            return self.expect_semicolon();
        }
        match format {
            "T" => {
                self.parse_lease_interval()?;
            }
            "L" => {
                self.parse_isc_integer(32, "an unsigned 32-bit integer")?;
            }
            "S" => {
                self.parse_isc_integer(16, "an unsigned 16-bit integer")?;
            }
            "B" => {
                self.parse_isc_integer(8, "an unsigned 8-bit integer")?;
            }
            "f" => {
                if !self.eat_keyword("ignore") {
                    self.parse_flag()?;
                }
            }
            "t" => {
                self.parse_text("a quoted string")?;
            }
            "I" => {
                self.parse_ip_or_hostname()?;
            }
            "X" => {
                self.parse_data("a quoted string or colon-separated hex bytes")?;
            }
            "k" => {
                self.parse_name_or_string("a key name")?;
            }
            // "U", "N…" and "6": one identifier (an option space, an enumeration value) or an
            // IPv6 address, taken up to the `;`.
            _ => {
                if !matches!(self.peek().kind, TokenKind::Name(_) | TokenKind::Number(_)) {
                    return Err(self.expected("a value"));
                }
                while !self.at_punct(b';') && !matches!(self.peek().kind, TokenKind::Eof) {
                    if self.at_punct(b'{') || self.at_punct(b'}') {
                        return Err(self.expected("`;`"));
                    }
                    self.bump();
                }
            }
        }
        self.expect_semicolon()
    }

    /// A lease interval (ISC format `T`): `infinite` or a 32-bit number as `convert_num` reads
    /// it, so `-1` is 0xffffffff, the infinite lease time.
    pub(super) fn parse_lease_interval(&mut self) -> ParseResult<u32> {
        if self.eat_keyword("infinite") {
            return Ok(u32::MAX);
        }
        self.parse_isc_integer(32, "a time in seconds")
    }
}
