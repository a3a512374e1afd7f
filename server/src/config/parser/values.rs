//! `option` statements (docs/spec/dhcpd-conf.md §5): setting an option (and `supersede`/`default`/
//! `prepend`/`append`), defining one (`option NAME code N = TYPE;`, §5.2), and encoding values to
//! wire bytes by type (dhcp-options(5); RFC 2132 §2 fixes network byte order, RFC 1035 §3.1 the
//! domain-name form, compressed as §4.1.4 for the `Dc` lists as ISC does, RFC 3397 §2).

use super::{Block, BlockKind, ParseResult, Parser};
use crate::config::expr::{Expr, ExprKind, OptionRef};
use crate::config::lexer::{Span, TokenKind};
use crate::config::model::{ComputedOption, HostIdentifier, OptionForm, OptionValue, Permission};
use crate::config::options::{
    encode_domain_name, CompressedDomainList, OptionDefinition, OptionSpace, OptionType,
};

/// DHCP client identifier option code (RFC 2132 §9.14): in a host it identifies the client.
const CLIENT_IDENTIFIER: u8 = 61;

impl Parser {
    /// `option NAME VALUE;` and friends, after the leading keyword (`form`) was read.
    pub(super) fn parse_option_statement(
        &mut self,
        block: Block,
        span: Span,
        form: &str,
    ) -> ParseResult<()> {
        if form == "option" && self.at_keyword("space") {
            // `option space xdhcpd;` only declares our own settings' space (config/xdhcpd.rs).
            if matches!(&self.peek_at(1).kind, TokenKind::Name(name) if name.eq_ignore_ascii_case(super::xdhcpd::SPACE))
            {
                self.skip_statement();
                return Ok(());
            }
            return self.parse_option_space_declaration(block, span);
        }
        let name_span = self.peek().span;
        let (space, name) = self.parse_option_name()?;
        let full_name = match &space {
            Some(space) => format!("{space}.{name}"),
            None => name.clone(),
        };
        let in_xdhcpd_space = space
            .as_deref()
            .is_some_and(|space| space.eq_ignore_ascii_case(super::xdhcpd::SPACE));
        if form == "option" && self.at_keyword("code") {
            if in_xdhcpd_space {
                // The definition is there for ISC dhcpd's sake; xdhcpd knows its own options.
                self.skip_statement();
                return Ok(());
            }
            return self.parse_option_definition(block, space.as_deref(), &name, name_span);
        }
        if in_xdhcpd_space {
            return self.parse_xdhcpd_option(block, &name, name_span);
        }
        let space = match space.as_deref() {
            None => OptionSpace::DHCP,
            Some(server) if server.eq_ignore_ascii_case("server") => {
                return self.parse_server_option(block, &name, name_span)
            }
            Some(space_name) => self.known_space(space_name, name_span)?,
        };
        let Some(definition) = self.options.by_name(space, &name).cloned() else {
            if self.space_names_unchecked(space) {
                self.warn(name_span, format!("option `{full_name}` is a DHCPv6 option, which a DHCPv4 server never sends (nor does ISC dhcpd); ignored"));
                return self.parse_loose_value();
            }
            // ISC: "unknown option SPACE.NAME".
            return Err(self.invalid(name_span, "a known option name", format!("`{full_name}`")));
        };
        let mut expression = None;
        let bytes = if self.at_punct(b'=') {
            self.bump();
            let value_span = self.peek().span;
            let value = self.parse_expression()?;
            self.expect_semicolon()?;
            // ISC writes option values back as `supersede NAME = DATA;` (host and group records
            // in dhcpd.leases, docs/spec/dhcpd-conf.md §8.5): constant data is the option's wire
            // value; any other data expression is evaluated per reply (`engine::scope`).
            match value {
                Expr::Data(bytes) => bytes,
                other => {
                    self.require_kind(&other, ExprKind::Data, value_span, "a data expression")?;
                    expression = Some(other);
                    Vec::new()
                }
            }
        } else {
            let mut bytes = Vec::new();
            let mut unresolved = false;
            if !(self.at_punct(b';') && definition.kind == OptionType::ZeroLength) {
                self.encode_value(&definition.kind, &mut bytes, &mut unresolved)?;
            }
            self.expect_semicolon()?;
            if unresolved {
                // parse_ip_or_hostname already warned about the name.
                return Ok(());
            }
            bytes
        };
        // The agent space (relay agent information sub-options) is kept like any other space;
        // the engine builds option 82 from it (`engine::encapsulation::relay_agent_chain`).
        if space != OptionSpace::DHCP {
            let value = match expression {
                Some(expression) => OptionValue::Expression(expression),
                None => OptionValue::Constant(bytes),
            };
            return self.store_space_option(block, &definition, form, value, name_span);
        }
        let Some(code) = definition.byte_code() else {
            // ISC stores such a definition under its full code and looks options up by the
            // one-byte codes of the request, so it never sends the option either.
            self.warn(
                name_span,
                format!(
                    "option `{full_name}` has code {}, which does not fit the dhcp space's one-byte codes; it is never sent",
                    definition.code
                ),
            );
            return Ok(());
        };
        if bytes.len() > 255 {
            self.warn(name_span, format!("option `{full_name}` is {} bytes long; it will be split into several options (RFC 3396)", bytes.len()));
        }
        let computed_form = match form {
            "default" => Some(OptionForm::Default),
            "prepend" => Some(OptionForm::Prepend),
            "append" => Some(OptionForm::Append),
            _ if expression.is_some() => Some(OptionForm::Supersede),
            _ => None,
        };
        if let Some(form) = computed_form {
            let value = match expression {
                Some(expression) => OptionValue::Expression(expression),
                None => OptionValue::Constant(bytes),
            };
            self.scope_mut(block.scope)
                .computed_options
                .push(ComputedOption {
                    code,
                    form,
                    value,
                    compressed_domain_list: matches!(
                        definition.kind,
                        OptionType::DomainList { compressed: true }
                    ),
                });
            return Ok(());
        }
        let _ = span;
        match form {
            // In a host it identifies the client and, like any option of the host's scope, is
            // sent when the client asks for it (ISC keeps it in the host's group).
            _ if block.kind == BlockKind::Host && code == CLIENT_IDENTIFIER => {
                self.host_mut(block).client_id = Some(bytes.clone());
                self.scope_mut(block.scope).options.push((code, bytes));
            }
            _ => {
                self.scope_mut(block.scope).options.push((code, bytes));
            }
        }
        Ok(())
    }

    /// `option server.NAME VALUE;` or ISC's canonical `supersede server.NAME = DATA;` (how it
    /// writes parameters such as `default-lease-time 300;` back to dhcpd.leases, docs/spec/dhcpd-conf.md
    /// §8.5): ISC's server option space holds the parameters, so they land in the scope's fields.
    pub(super) fn parse_server_option(
        &mut self,
        block: Block,
        name: &str,
        name_span: Span,
    ) -> ParseResult<()> {
        let lowered = name.to_ascii_lowercase();
        if matches!(
            lowered.as_str(),
            "vendor-option-space" | "site-option-space"
        ) {
            return self.parse_space_parameter_value(block, &lowered);
        }
        let Some(kind) = server_parameter_kind(&lowered) else {
            self.warn(
                name_span,
                format!("option `server.{name}` is not supported yet; ignored"),
            );
            return self.parse_loose_value();
        };
        let value = if self.eat_punct(b'=') {
            let span = self.peek().span;
            let expression = self.parse_expression()?;
            if matches!(kind, ServerKind::Text) && !matches!(expression, Expr::Data(_)) {
                // `filename = concat(…);`: evaluated per reply.
                self.require_kind(&expression, ExprKind::Data, span, "a data expression")?;
                self.expect_semicolon()?;
                let filename = lowered == "filename";
                self.set_boot_field(block.scope, filename, Err(expression));
                return Ok(());
            }
            server_value_from_expression(kind, &expression).ok_or_else(|| {
                self.invalid(
                    span,
                    format!("a constant {} for `server.{name}`", kind.describe()),
                    "another expression",
                )
            })?
        } else {
            match kind {
                ServerKind::Seconds => ServerValue::Number(self.parse_lease_interval()?),
                ServerKind::Byte => {
                    ServerValue::Number(self.parse_isc_integer(8, "an unsigned 8-bit integer")?)
                }
                ServerKind::Flag => ServerValue::Flag(self.parse_flag()?),
                ServerKind::Unsigned32 => {
                    ServerValue::Number(self.parse_isc_integer(32, "an unsigned 32-bit integer")?)
                }
                ServerKind::Port => {
                    ServerValue::Number(self.parse_isc_integer(16, "an unsigned 16-bit integer")?)
                }
                ServerKind::Permission => ServerValue::Permission(if self.parse_flag()? {
                    Permission::Allow
                } else {
                    Permission::Deny
                }),
                ServerKind::Address => match self.parse_ip_or_hostname()? {
                    Some(address) => ServerValue::Address(address),
                    None => {
                        self.expect_semicolon()?;
                        return Ok(());
                    }
                },
                ServerKind::Text => ServerValue::Text(self.parse_text("a quoted string")?),
            }
        };
        self.expect_semicolon()?;
        let scope = self.scope_mut(block.scope);
        match (lowered.as_str(), value) {
            ("default-lease-time", ServerValue::Number(value)) => {
                scope.default_lease_time = Some(value)
            }
            ("max-lease-time", ServerValue::Number(value)) => scope.max_lease_time = Some(value),
            ("min-lease-time", ServerValue::Number(value)) => scope.min_lease_time = Some(value),
            ("abandon-lease-time", ServerValue::Number(value)) => {
                scope.abandon_lease_time = Some(value)
            }
            ("min-secs", ServerValue::Number(value)) => scope.min_secs = u8::try_from(value).ok(),
            ("dhcp-cache-threshold", ServerValue::Number(value)) => {
                scope.dhcp_cache_threshold = u8::try_from(value).ok()
            }
            ("log-threshold-low", ServerValue::Number(value)) => {
                scope.log_threshold_low = u8::try_from(value).ok()
            }
            ("log-threshold-high", ServerValue::Number(value)) => {
                scope.log_threshold_high = u8::try_from(value).ok()
            }
            ("authoritative", ServerValue::Flag(value)) => scope.authoritative = Some(value),
            ("use-host-decl-names", ServerValue::Flag(value)) => {
                scope.use_host_decl_names = Some(value)
            }
            ("one-lease-per-client", ServerValue::Flag(value)) => {
                scope.one_lease_per_client = Some(value)
            }
            ("limited-broadcast-address", ServerValue::Address(value)) => {
                scope.limited_broadcast_address = Some(value)
            }
            ("use-lease-addr-for-default-route", ServerValue::Flag(value)) => {
                scope.use_lease_addr_for_default_route = Some(value)
            }
            ("ping-check", ServerValue::Flag(value)) => scope.ping_check = Some(value),
            ("ping-timeout", ServerValue::Number(value)) => scope.ping_timeout = Some(value),
            ("ping-timeout-ms", ServerValue::Number(value)) => scope.ping_timeout_ms = Some(value),
            ("ping-cltt-secs", ServerValue::Number(value)) => scope.ping_cltt_secs = Some(value),
            ("always-broadcast", ServerValue::Flag(value)) => scope.always_broadcast = Some(value),
            ("echo-client-id", ServerValue::Flag(value)) => scope.echo_client_id = Some(value),
            ("server-id-check", ServerValue::Flag(value)) => scope.server_id_check = Some(value),
            ("ignore-client-uids", ServerValue::Flag(value)) => {
                scope.ignore_client_uids = Some(value)
            }
            ("stash-agent-options", ServerValue::Flag(value)) => {
                scope.stash_agent_options = Some(value)
            }
            ("boot-unknown-clients", ServerValue::Permission(value)) => {
                scope.unknown_clients = Some(value)
            }
            ("allow-bootp", ServerValue::Permission(value)) => scope.bootp = Some(value),
            ("dynamic-bootp-lease-length", ServerValue::Number(value)) => {
                scope.dynamic_bootp_lease_length = Some(value)
            }
            ("dynamic-bootp-lease-cutoff", ServerValue::Number(value)) => {
                scope.dynamic_bootp_lease_cutoff = Some(value)
            }
            ("local-port", ServerValue::Number(value)) => {
                scope.local_port = u16::try_from(value).ok()
            }
            ("remote-port", ServerValue::Number(value)) => {
                scope.remote_port = u16::try_from(value).ok()
            }
            ("infinite-is-reserved", ServerValue::Flag(value)) => {
                scope.infinite_is_reserved = Some(value)
            }
            ("get-lease-hostnames", ServerValue::Flag(value)) => {
                scope.get_lease_hostnames = Some(value)
            }
            ("adaptive-lease-time-threshold", ServerValue::Number(value)) => {
                scope.adaptive_lease_time_threshold = u8::try_from(value).ok()
            }
            ("allow-booting", ServerValue::Permission(value)) => scope.booting = Some(value),
            ("declines", ServerValue::Permission(value)) => scope.declines = Some(value),
            ("leasequery", ServerValue::Permission(value)) => scope.leasequery = Some(value),
            ("server-identifier", ServerValue::Address(value)) => {
                scope.server_identifier = Some(value)
            }
            ("next-server", ServerValue::Address(value)) => scope.next_server = Some(value),
            ("local-address", ServerValue::Address(value)) => scope.local_address = Some(value),
            ("filename", ServerValue::Text(value)) => {
                scope.filename = Some(value);
                scope.filename_expression = None;
            }
            ("server-name", ServerValue::Text(value)) => {
                scope.server_name = Some(value);
                scope.server_name_expression = None;
            }
            // server_parameter_kind and the value parsers above agree on every name.
            _ => {}
        }
        Ok(())
    }

    /// `host-identifier option NAME DATA;` in a host (confpars.c `parse_host_declaration`): one
    /// per host, an option of the dhcp or agent space with its value in the option's format.
    /// `host-identifier v6relopt N …` concerns DHCPv6 relays only.
    pub(super) fn parse_host_identifier(&mut self, block: Block) -> ParseResult<()> {
        let span = self.bump().span;
        if self.at_keyword("v6relopt") {
            self.warn(
                span,
                "`host-identifier v6relopt` (DHCPv6) is not supported; ignored",
            );
            self.skip_statement();
            return Ok(());
        }
        if !self.eat_keyword("option") {
            // confpars.c: "host-identifier must be an option or v6relopt".
            return Err(self.expected("`option` or `v6relopt` after `host-identifier`"));
        }
        let name_span = self.peek().span;
        let (space, name) = self.parse_option_name()?;
        let space = match space.as_deref() {
            None => OptionSpace::DHCP,
            Some(space_name) => self.known_space(space_name, name_span)?,
        };
        let Some(definition) = self.options.by_name(space, &name).cloned() else {
            return Err(self.invalid(name_span, "a known option name", format!("`{name}`")));
        };
        let mut data = Vec::new();
        let mut unresolved = false;
        self.encode_value(&definition.kind, &mut data, &mut unresolved)?;
        self.expect_semicolon()?;
        let Some(host) = block.host else {
            return Ok(());
        };
        let option = match (space, definition.byte_code()) {
            (OptionSpace::DHCP, Some(code)) => OptionRef::Dhcp(code),
            (OptionSpace::AGENT, Some(code)) => OptionRef::Agent(code),
            _ => {
                self.warn(
                    name_span,
                    format!("`host-identifier option {name}`: only dhcp and agent options identify hosts; ignored"),
                );
                return Ok(());
            }
        };
        if self
            .config
            .host_identifiers
            .iter()
            .any(|identifier| identifier.host == host)
        {
            // confpars.c: "only one host-identifier allowed per host".
            return Err(self.invalid(span, "one `host-identifier` per host", "a second one"));
        }
        self.config
            .host_identifiers
            .push(HostIdentifier { host, option, data });
        Ok(())
    }

    /// `NAME` or `SPACE.NAME`.
    pub(crate) fn parse_option_name(&mut self) -> ParseResult<(Option<String>, String)> {
        let first = match self.peek().kind.clone() {
            TokenKind::Name(name) => name,
            _ => return Err(self.expected("an option name")),
        };
        self.bump();
        if self.at_punct(b'.')
            && matches!(
                self.peek_at(1).kind,
                TokenKind::Name(_) | TokenKind::Number(_)
            )
        {
            self.bump();
            let second = match self.bump().kind {
                TokenKind::Name(name) | TokenKind::Number(name) => name,
                _ => String::new(),
            };
            return Ok((Some(first), second));
        }
        Ok((None, first))
    }

    /// A space named in `SPACE.NAME`; ISC: "no option space named SPACE."
    fn known_space(&mut self, name: &str, span: Span) -> ParseResult<OptionSpace> {
        self.options.space(name).ok_or_else(|| {
            self.invalid(
                span,
                "a declared option space (`option space NAME;`)",
                format!("no option space named `{name}`"),
            )
        })
    }

    fn space_names_unchecked(&self, space: OptionSpace) -> bool {
        self.options
            .space_definition(space)
            .is_some_and(|definition| definition.unchecked_names)
    }

    /// `option [SPACE.]NAME code N = TYPE;` after NAME: only at the top level, in a declared
    /// space. ISC takes the code with `atoi` and checks no range, whatever the space's code
    /// width (a zero-touch space's `code 0`, an enterprise number as a `vendor` code).
    fn parse_option_definition(
        &mut self,
        block: Block,
        space: Option<&str>,
        name: &str,
        name_span: Span,
    ) -> ParseResult<()> {
        let code_keyword = self.bump().span;
        if block.kind != BlockKind::Global {
            return Err(self.invalid(
                code_keyword,
                "an option definition at the top level",
                format!(
                    "a definition inside a {} (ISC: option definitions may not be scoped)",
                    super::declarations::block_name(block.kind)
                ),
            ));
        }
        let space = match space {
            None => OptionSpace::DHCP,
            Some(space_name) => self.known_space(space_name, name_span)?,
        };
        let code = self.parse_option_code()?;
        self.expect_punct(b'=')?;
        let type_span = self.peek().span;
        let kind = self.parse_option_type()?;
        self.expect_semicolon()?;
        if let Some(target) = encapsulated_space(&kind) {
            let target_space = self.options.space(target).ok_or_else(|| {
                self.invalid(
                    type_span,
                    "a declared option space to encapsulate",
                    format!("unknown option space `{target}`"),
                )
            })?;
            if !self.options.encapsulate(target_space) {
                return Err(self.invalid(
                    type_span,
                    "an option space no other option encapsulates",
                    format!("`{target}`, encapsulated already (ISC stops with an internal inconsistency)"),
                ));
            }
        }
        self.options.define(OptionDefinition {
            space,
            name: name.to_string(),
            code,
            kind,
        });
        Ok(())
    }

    /// The code of a definition: a decimal NUMBER token read as C's `atoi` reads it into an
    /// `unsigned` (so `-1` is 4294967295).
    fn parse_option_code(&mut self) -> ParseResult<u32> {
        let token = self.peek().clone();
        let TokenKind::Number(text) = &token.kind else {
            return Err(self.expected("an option code number"));
        };
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(self.expected("an option code number"));
        }
        self.bump();
        // strtol saturates at the long range; atoi then keeps the low 32 bits.
        let value = text.parse::<i64>().unwrap_or(if text.starts_with('-') {
            i64::MIN
        } else {
            i64::MAX
        });
        Ok(value as i32 as u32)
    }

    /// TYPE of docs/spec/dhcpd-conf.md §5.2 (`parse_option_code_definition`).
    fn parse_option_type(&mut self) -> ParseResult<OptionType> {
        if self.at_punct(b'{') {
            self.bump();
            let mut fields = vec![self.parse_option_type()?];
            while self.eat_punct(b',') {
                fields.push(self.parse_option_type()?);
            }
            self.expect_punct(b'}')?;
            // Only the last field of a record may be an array.
            if fields[..fields.len() - 1]
                .iter()
                .any(|field| matches!(field, OptionType::Array(_)))
            {
                return Err(self.expected("an array only as the last field of a record"));
            }
            return Ok(OptionType::Record(fields));
        }
        let token = self.peek().clone();
        let TokenKind::Name(word) = &token.kind else {
            return Err(self.expected("an option type"));
        };
        let word = word.to_ascii_lowercase();
        self.bump();
        let kind = match word.as_str() {
            "boolean" => OptionType::Boolean,
            "signed" | "unsigned" | "integer" => {
                let signed = word == "signed";
                if word != "integer" {
                    self.expect_keyword("integer")?;
                }
                let bits = self.parse_integer("8, 16 or 32")?;
                if !matches!(bits.0, 8 | 16 | 32) {
                    return Err(self.invalid(bits.1, "8, 16 or 32", bits.0.to_string()));
                }
                OptionType::Integer {
                    bits: bits.0 as u8,
                    signed,
                }
            }
            "ip-address" => OptionType::IpAddress,
            "ip6-address" => OptionType::Ip6Address,
            "text" => OptionType::Text,
            "string" => OptionType::String,
            "domain-name" => OptionType::DomainName,
            "domain-list" => OptionType::DomainList {
                compressed: self.eat_keyword("compressed"),
            },
            "encapsulate" => {
                let space = self.parse_name_or_string("an option space name")?;
                OptionType::Encapsulate(space)
            }
            "zerolen" => OptionType::ZeroLength,
            "array" => {
                self.expect_keyword("of")?;
                let inner = self.parse_option_type()?;
                if matches!(inner, OptionType::Array(_)) {
                    return Err(self.invalid(
                        token.span,
                        "an array of a non-array type",
                        "an array of arrays",
                    ));
                }
                OptionType::Array(Box::new(inner))
            }
            _ => {
                return Err(self.invalid(token.span, "an option type (`boolean`, `integer 8`, `ip-address`, `text`, `string`, `domain-list`, `array of …`, `{ … }`, …)", format!("`{word}`")));
            }
        };
        Ok(kind)
    }

    /// Parses one value of `kind` and appends its wire form. Host names set `unresolved`.
    pub(crate) fn encode_value(
        &mut self,
        kind: &OptionType,
        out: &mut Vec<u8>,
        unresolved: &mut bool,
    ) -> ParseResult<()> {
        match kind {
            OptionType::Boolean => {
                // common/parse.c `parse_option_token` 'f': `ignore` is 2.
                if self.eat_keyword("ignore") {
                    out.push(2);
                } else {
                    let value = self.parse_flag()?;
                    out.push(u8::from(value));
                }
            }
            OptionType::Integer { bits, signed } => {
                // ISC reads every integer with `convert_num`, signed or not (see there).
                let what = if *signed {
                    format!("a signed {bits}-bit integer")
                } else {
                    format!("an unsigned {bits}-bit integer")
                };
                let value = self.parse_isc_integer(u32::from(*bits), &what)?;
                let bytes = value.to_be_bytes();
                out.extend_from_slice(&bytes[4 - usize::from(*bits / 8)..]);
            }
            OptionType::IpAddress => match self.parse_ip_or_hostname()? {
                Some(address) => out.extend_from_slice(&address.octets()),
                None => *unresolved = true,
            },
            OptionType::Ip6Address => {
                let span = self.peek().span;
                let mut text = String::new();
                loop {
                    match self.peek().kind.clone() {
                        TokenKind::Name(part) | TokenKind::Number(part) => text.push_str(&part),
                        TokenKind::Punct(b':') => text.push(':'),
                        TokenKind::Punct(b'.') => text.push('.'),
                        _ => break,
                    }
                    self.bump();
                }
                match text.parse::<std::net::Ipv6Addr>() {
                    Ok(address) => out.extend_from_slice(&address.octets()),
                    Err(_) => {
                        return Err(self.invalid(span, "an IPv6 address", format!("`{text}`")))
                    }
                }
            }
            OptionType::Text => {
                let text = self.parse_text("a quoted string")?;
                out.extend_from_slice(&text);
            }
            OptionType::String | OptionType::Encapsulate(_) => {
                let data = self.parse_data("a quoted string or colon-separated hex bytes")?;
                out.extend_from_slice(&data);
            }
            OptionType::DomainName => {
                // 'd' is parse_domain_name: an unquoted host name (ISC refuses a string here).
                let span = self.peek().span;
                let name = self
                    .parse_dotted_name("an unquoted domain name")?
                    .into_bytes();
                if let Err(error) = encode_domain_name(&name, out) {
                    return Err(self.invalid(
                        span,
                        error.to_string().replacen("expected ", "", 1),
                        format!("\"{}\"", String::from_utf8_lossy(&name)),
                    ));
                }
            }
            OptionType::DomainList { compressed } => {
                // Compression pointers count from the start of this option's data.
                let mut list = Vec::new();
                let mut compression = compressed.then(CompressedDomainList::default);
                loop {
                    let span = self.peek().span;
                    let name = self.parse_string("a quoted domain name")?;
                    let encoded = match compression.as_mut() {
                        Some(compression) => compression.push(&name, &mut list),
                        None => encode_domain_name(&name, &mut list),
                    };
                    if let Err(error) = encoded {
                        return Err(self.invalid(
                            span,
                            error.to_string().replacen("expected ", "", 1),
                            format!("\"{}\"", String::from_utf8_lossy(&name)),
                        ));
                    }
                    if !self.eat_punct(b',') {
                        break;
                    }
                }
                out.extend_from_slice(&list);
            }
            OptionType::ZeroLength => {}
            OptionType::Array(inner) => loop {
                self.encode_value(inner, out, unresolved)?;
                if !self.eat_punct(b',') {
                    break;
                }
            },
            OptionType::Record(fields) => {
                for field in fields {
                    self.encode_value(field, out, unresolved)?;
                }
            }
            OptionType::Optional(inner) => {
                if !self.at_punct(b';') {
                    self.encode_value(inner, out, unresolved)?;
                }
            }
        }
        Ok(())
    }
}

/// The space an `encapsulate SPACE` type (alone or as a record's field) names.
fn encapsulated_space(kind: &OptionType) -> Option<&str> {
    match kind {
        OptionType::Encapsulate(space) => Some(space),
        OptionType::Record(fields) => fields.iter().find_map(encapsulated_space),
        OptionType::Array(inner) | OptionType::Optional(inner) => encapsulated_space(inner),
        _ => None,
    }
}

/// The type of one of ISC's server-space options (`server/stables.c` `server_options`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ServerKind {
    /// `T`: 32-bit seconds.
    Seconds,
    /// `B`: one byte.
    Byte,
    /// `L`: an unsigned 32-bit integer (no `infinite`).
    Unsigned32,
    /// `S`: an unsigned 16-bit integer (a UDP port).
    Port,
    /// `f`: boolean.
    Flag,
    /// `f` used by `allow`/`deny`/`ignore` (0 deny, 1 allow, 2 ignore).
    Permission,
    /// `I`: an IPv4 address.
    Address,
    /// `t`: text.
    Text,
}

impl ServerKind {
    fn describe(self) -> &'static str {
        match self {
            Self::Seconds | Self::Unsigned32 => "32-bit integer",
            Self::Port => "16-bit integer",
            Self::Byte => "8-bit integer",
            Self::Flag | Self::Permission => "boolean",
            Self::Address => "IPv4 address",
            Self::Text => "string",
        }
    }
}

/// A decoded server-space value.
enum ServerValue {
    Number(u32),
    Flag(bool),
    Permission(Permission),
    Address(std::net::Ipv4Addr),
    Text(Vec<u8>),
}

/// The server-space options that have a field in [`crate::config::model::Scope`].
pub(super) fn server_parameter_kind(name: &str) -> Option<ServerKind> {
    Some(match name {
        "default-lease-time" | "max-lease-time" | "min-lease-time" | "abandon-lease-time"
        | "ping-timeout" | "ping-timeout-ms" | "ping-cltt-secs" => ServerKind::Seconds,
        "min-secs"
        | "dhcp-cache-threshold"
        | "log-threshold-low"
        | "log-threshold-high"
        | "adaptive-lease-time-threshold" => ServerKind::Byte,
        "dynamic-bootp-lease-cutoff" => ServerKind::Seconds,
        "dynamic-bootp-lease-length" => ServerKind::Unsigned32,
        "local-port" | "remote-port" => ServerKind::Port,
        "authoritative"
        | "use-host-decl-names"
        | "one-lease-per-client"
        | "use-lease-addr-for-default-route"
        | "ping-check"
        | "always-broadcast"
        | "echo-client-id"
        | "ignore-client-uids"
        | "stash-agent-options"
        | "server-id-check"
        | "infinite-is-reserved"
        | "get-lease-hostnames" => ServerKind::Flag,
        "boot-unknown-clients" | "allow-bootp" | "allow-booting" | "declines" | "leasequery" => {
            ServerKind::Permission
        }
        "server-identifier" | "next-server" | "local-address" | "limited-broadcast-address" => {
            ServerKind::Address
        }
        "filename" | "server-name" => ServerKind::Text,
        _ => return None,
    })
}

/// A constant expression as a server-space value: ISC writes integers as colon-hex in network
/// byte order (`00:00:01:2c` is 300) and text as a quoted string.
fn server_value_from_expression(kind: ServerKind, expression: &Expr) -> Option<ServerValue> {
    match (kind, expression) {
        (ServerKind::Seconds, Expr::Number(value)) => Some(ServerValue::Number(*value)),
        (ServerKind::Seconds, Expr::Data(bytes)) => Some(ServerValue::Number(u32::from_be_bytes(
            bytes.as_slice().try_into().ok()?,
        ))),
        (ServerKind::Unsigned32, Expr::Number(value)) => Some(ServerValue::Number(*value)),
        (ServerKind::Unsigned32, Expr::Data(bytes)) => Some(ServerValue::Number(
            u32::from_be_bytes(bytes.as_slice().try_into().ok()?),
        )),
        (ServerKind::Port, Expr::Number(value)) if *value <= 0xffff => {
            Some(ServerValue::Number(*value))
        }
        (ServerKind::Port, Expr::Data(bytes)) => Some(ServerValue::Number(u32::from(
            u16::from_be_bytes(bytes.as_slice().try_into().ok()?),
        ))),
        (ServerKind::Byte, Expr::Number(value)) if *value <= 255 => {
            Some(ServerValue::Number(*value))
        }
        (ServerKind::Byte, Expr::Data(bytes)) if bytes.len() == 1 => {
            Some(ServerValue::Number(u32::from(bytes[0])))
        }
        (ServerKind::Flag, Expr::Boolean(value)) => Some(ServerValue::Flag(*value)),
        // A lone colon-hex byte (`01`) reads as a number.
        (ServerKind::Flag, Expr::Number(value)) => Some(ServerValue::Flag(*value != 0)),
        (ServerKind::Permission, Expr::Number(value)) => {
            server_value_from_expression(kind, &Expr::Data(vec![u8::try_from(*value).ok()?]))
        }
        (ServerKind::Flag, Expr::Data(bytes)) if bytes.len() == 1 => {
            Some(ServerValue::Flag(bytes[0] != 0))
        }
        (ServerKind::Permission, Expr::Boolean(value)) => {
            Some(ServerValue::Permission(if *value {
                Permission::Allow
            } else {
                Permission::Deny
            }))
        }
        (ServerKind::Permission, Expr::Data(bytes)) if bytes.len() == 1 => {
            Some(ServerValue::Permission(match bytes[0] {
                0 => Permission::Deny,
                1 => Permission::Allow,
                2 => Permission::Ignore,
                _ => return None,
            }))
        }
        (ServerKind::Address, Expr::Data(bytes)) => {
            let octets: [u8; 4] = bytes.as_slice().try_into().ok()?;
            Some(ServerValue::Address(octets.into()))
        }
        (ServerKind::Text, Expr::Data(bytes)) => Some(ServerValue::Text(bytes.clone())),
        _ => None,
    }
}
