//! The dynamic DNS parameters (dhcpd.conf(5) "DYNAMIC DNS UPDATES") and `zone` declarations
//! (common/parse.c `parse_zone`). The per-scope parameters fill [`DdnsScope`]; the update style
//! and the conflict flags are global, as ISC reads them only from the global scope
//! (server/dhcpd.c `postconf_initialization`).
//!
//! [`DdnsScope`]: crate::config::model::DdnsScope

use std::net::IpAddr;

use super::{Block, ParseResult, Parser};
use crate::config::expr::{Expr, ExprKind};
use crate::config::lexer::{Span, TokenKind};
use crate::config::model::{Permission, ScopeId};
use crate::config::ConfigErrorKind;
use crate::ddns::{Style, ZoneDeclaration};

/// The flag parameters of the DDNS family (ISC format `f`).
const FLAGS: &[&str] = &[
    "ddns-updates",
    "update-optimization",
    "update-static-leases",
    "do-forward-updates",
    "do-reverse-updates",
    "fqdn-reply",
    "client-updates",
    "update-conflict-detection",
    "ddns-guard-id-must-match",
];

/// The text parameters (ISC format `t`).
const TEXTS: &[&str] = &["ddns-domainname", "ddns-rev-domainname", "ddns-hostname"];

/// Whether `word` is a DDNS parameter [`Parser::parse_ddns_parameter`] reads.
pub(super) fn is_ddns_parameter(word: &str) -> bool {
    FLAGS.contains(&word)
        || TEXTS.contains(&word)
        || word == "ddns-ttl"
        || word == "ddns-update-style"
}

impl Parser {
    /// One DDNS parameter statement, its name not yet consumed.
    pub(super) fn parse_ddns_parameter(
        &mut self,
        block: Block,
        word: &str,
        span: Span,
    ) -> ParseResult<()> {
        let scope = block.scope;
        if word == "ddns-update-style" {
            return self.parse_update_style(scope);
        }
        self.bump();
        if self.at_punct(b'=') {
            self.bump();
            let value_span = self.peek().span;
            let expression = self.parse_expression()?;
            self.expect_semicolon()?;
            if !TEXTS.contains(&word) {
                // The flags and `ddns-ttl` take a constant here (ISC's server-space values).
                match (&expression, FLAGS.contains(&word)) {
                    (Expr::Boolean(flag), true) => {
                        let ddns = &mut self.scope_mut(scope).ddns;
                        match word {
                            "ddns-updates" => ddns.updates = Some(*flag),
                            "update-optimization" => ddns.update_optimization = Some(*flag),
                            "update-static-leases" => ddns.update_static_leases = Some(*flag),
                            "do-forward-updates" => ddns.do_forward_updates = Some(*flag),
                            "do-reverse-updates" => ddns.do_reverse_updates = Some(*flag),
                            "fqdn-reply" => ddns.fqdn_reply = Some(*flag),
                            _ => {
                                return Err(self.invalid(
                                    value_span,
                                    format!("`{word} FLAG;`"),
                                    "an expression (unsupported for this parameter)",
                                ))
                            }
                        }
                        return Ok(());
                    }
                    (Expr::Number(ttl), false) if word == "ddns-ttl" => {
                        self.scope_mut(scope).ddns.ttl = Some(*ttl);
                        return Ok(());
                    }
                    _ => {
                        return Err(self.invalid(
                            value_span,
                            format!("a constant value for `{word}`"),
                            "an expression (unsupported for this parameter)",
                        ))
                    }
                }
            }
            self.require_kind(&expression, ExprKind::Data, value_span, "a data expression")?;
            let ddns = &mut self.scope_mut(scope).ddns;
            let (text, computed) = match word {
                "ddns-domainname" => (&mut ddns.domain_name, &mut ddns.domain_name_expression),
                "ddns-rev-domainname" => (
                    &mut ddns.rev_domain_name,
                    &mut ddns.rev_domain_name_expression,
                ),
                _ => (&mut ddns.hostname, &mut ddns.hostname_expression),
            };
            match expression {
                Expr::Data(bytes) => {
                    *text = Some(String::from_utf8_lossy(&bytes).into_owned());
                    *computed = None;
                }
                other => {
                    *text = None;
                    *computed = Some(other);
                }
            }
            return Ok(());
        }
        if FLAGS.contains(&word) {
            // ISC's flag format also takes `ignore`: false, and for `client-updates` the
            // "white lie" of server/ddns.c (the client is told to update).
            let value = if self.eat_keyword("ignore") {
                Permission::Ignore
            } else if self.parse_flag()? {
                Permission::Allow
            } else {
                Permission::Deny
            };
            self.expect_semicolon()?;
            let flag = value == Permission::Allow;
            let global = scope == ScopeId::GLOBAL;
            match word {
                "update-conflict-detection" | "ddns-guard-id-must-match" => {
                    if !global {
                        self.warn_global_only(span, word);
                        return Ok(());
                    }
                    let ddns = &mut self.config.ddns;
                    if word == "update-conflict-detection" {
                        ddns.conflict_detection = Some(flag);
                    } else {
                        ddns.guard_id_must_match = Some(flag);
                    }
                }
                _ => {
                    let ddns = &mut self.scope_mut(scope).ddns;
                    match word {
                        "ddns-updates" => ddns.updates = Some(flag),
                        "update-optimization" => ddns.update_optimization = Some(flag),
                        "update-static-leases" => ddns.update_static_leases = Some(flag),
                        "do-forward-updates" => ddns.do_forward_updates = Some(flag),
                        "do-reverse-updates" => ddns.do_reverse_updates = Some(flag),
                        "fqdn-reply" => ddns.fqdn_reply = Some(flag),
                        _ => ddns.client_updates = Some(value),
                    }
                }
            }
            return Ok(());
        }
        if word == "ddns-ttl" {
            let ttl = self.parse_lease_interval()?;
            self.expect_semicolon()?;
            self.scope_mut(scope).ddns.ttl = Some(ttl);
            return Ok(());
        }
        let text = self.parse_text("a quoted string")?;
        self.expect_semicolon()?;
        let text = String::from_utf8_lossy(&text).into_owned();
        let ddns = &mut self.scope_mut(scope).ddns;
        match word {
            "ddns-domainname" => {
                ddns.domain_name = Some(text);
                ddns.domain_name_expression = None;
            }
            "ddns-rev-domainname" => {
                ddns.rev_domain_name = Some(text);
                ddns.rev_domain_name_expression = None;
            }
            _ => {
                ddns.hostname = Some(text);
                ddns.hostname_expression = None;
            }
        }
        Ok(())
    }

    /// ISC takes one `primary`, `secondary`, `primary6`, `secondary6` per zone: a repeat is an
    /// error (recorded; parsing goes on).
    fn once_per_zone(&mut self, seen: &mut bool, span: Span, word: &str) {
        if std::mem::replace(seen, true) {
            let error = self.invalid(
                span,
                format!("one `{word}` statement per zone"),
                format!("more than one {word}"),
            );
            self.errors.push(error);
        }
    }

    fn warn_global_only(&mut self, span: Span, word: &str) {
        self.warn(
            span,
            format!("`{word}` counts only at the top level (as in ISC dhcpd); ignored here"),
        );
    }

    /// `ddns-update-style none|interim|standard;` (`ad-hoc` is no longer supported, as ISC
    /// 4.4 says).
    fn parse_update_style(&mut self, scope: ScopeId) -> ParseResult<()> {
        let keyword = self.bump().span;
        let style = self.peek().clone();
        let TokenKind::Name(name) = &style.kind else {
            return Err(self.expected("`none`, `interim` or `standard`"));
        };
        let value = match name.to_ascii_lowercase().as_str() {
            "ad-hoc" => {
                return Err(self.error_at(
                    style.span,
                    ConfigErrorKind::Unsupported {
                        what: "`ddns-update-style ad-hoc`".to_string(),
                    },
                ));
            }
            "none" => None,
            "interim" => Some(Style::Interim),
            "standard" => Some(Style::Standard),
            _ => return Err(self.expected("`none`, `interim` or `standard`")),
        };
        self.bump();
        self.expect_semicolon()?;
        if scope == ScopeId::GLOBAL {
            self.config.ddns.style = value;
        } else {
            self.warn_global_only(keyword, "ddns-update-style");
        }
        Ok(())
    }

    /// `zone NAME { primary ADDR[, ADDR…]; secondary …; primary6 …; secondary6 …; key KEY; }`
    /// (common/parse.c `parse_zone`). ISC enters the zone while it parses, wherever the
    /// statement stands (also in `if` bodies), and looks its key up then: the key must be
    /// declared before (ISC: "unknown key"). Host names are not resolved (a warning); IPv6
    /// servers are read and not used (updates go over IPv4).
    pub(super) fn parse_zone(&mut self, _block: Block) -> ParseResult<()> {
        self.bump();
        let name = self.parse_dotted_name("a zone name")?;
        let open = self.expect_punct(b'{')?;
        let mut zone = ZoneDeclaration {
            name,
            primaries: Vec::new(),
            secondaries: Vec::new(),
            key: None,
        };
        let (mut primary, mut secondary, mut primary6, mut secondary6) =
            (false, false, false, false);
        loop {
            let token = self.peek().clone();
            let word = match &token.kind {
                TokenKind::Punct(b'}') => {
                    self.bump();
                    break;
                }
                TokenKind::Name(word) => word.to_ascii_lowercase(),
                TokenKind::Eof => {
                    let expected = format!(
                        "`}}` closing the zone opened at {}",
                        self.sources.locate(open)
                    );
                    return Err(self.invalid(token.span, expected, "end of file"));
                }
                _ => return Err(self.expected("`primary`, `secondary` or `key`")),
            };
            match word.as_str() {
                "primary" | "secondary" => {
                    let seen = if word == "primary" {
                        &mut primary
                    } else {
                        &mut secondary
                    };
                    self.once_per_zone(seen, token.span, &word);
                    self.bump();
                    loop {
                        if let Some(address) = self.parse_ip_or_hostname()? {
                            let list = if word == "primary" {
                                &mut zone.primaries
                            } else {
                                &mut zone.secondaries
                            };
                            list.push(IpAddr::V4(address));
                        }
                        if !self.eat_punct(b',') {
                            break;
                        }
                    }
                    self.expect_semicolon()?;
                }
                "primary6" | "secondary6" => {
                    let seen = if word == "primary6" {
                        &mut primary6
                    } else {
                        &mut secondary6
                    };
                    self.once_per_zone(seen, token.span, &word);
                    self.bump();
                    // IPv6 addresses (ISC `parse_ip6_addr_expr`): read to the `;`.
                    while !self.at_punct(b';') {
                        if self.at_punct(b'{') || self.at_punct(b'}') || self.at_eof() {
                            return Err(self.expected("`;`"));
                        }
                        self.bump();
                    }
                    self.expect_semicolon()?;
                    self.warn(
                        token.span,
                        format!("`{word}` servers are not used (updates are sent over IPv4)"),
                    );
                }
                "key" => {
                    self.bump();
                    let span = self.peek().span;
                    let key = self.parse_name_or_string("a key name")?;
                    self.expect_semicolon()?;
                    // Errors inside the braces are kept and the zone read on, so that its
                    // closing brace is not taken for a stray one.
                    if zone.key.is_some() {
                        // ISC: log_fatal("Multiple key definitions for zone %s.").
                        let error = self.invalid(
                            span,
                            "one `key` per zone",
                            format!("a second key for zone {}", zone.name),
                        );
                        self.errors.push(error);
                    } else if !self
                        .config
                        .keys
                        .iter()
                        .any(|known| known.name.eq_ignore_ascii_case(&key))
                    {
                        let error = self.invalid(
                            span,
                            "the name of a key declared before",
                            format!("unknown key {key}"),
                        );
                        self.errors.push(error);
                    }
                    zone.key = Some(key);
                }
                _ => return Err(self.expected("`primary`, `secondary` or `key`")),
            }
        }
        self.eat_punct(b';');
        // ISC's `enter_dns_zone`: a zone declared again replaces the earlier one.
        let canonical = crate::ddns::zones::canonical(&zone.name);
        self.config
            .ddns
            .zones
            .retain(|known| crate::ddns::zones::canonical(&known.name) != canonical);
        self.config.ddns.zones.push(zone);
        Ok(())
    }

    fn at_eof(&mut self) -> bool {
        matches!(self.peek().kind, TokenKind::Eof)
    }
}
