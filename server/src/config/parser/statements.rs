//! Statement dispatch (ISC `confpars.c` `parse_statement`) and the server parameters of
//! docs/spec/dhcpd-conf.md §3.1 and §4: each fills its [`Scope`](crate::config::model::Scope) field or
//! [`Config`](crate::config::model::Config) setting; statements tagged "later" are read and
//! produce a warning; executable statements (`if`, `on`, `set`, `log`, `execute`, …) are kept in
//! the scope for `engine::scope` and `engine::statements` to run.

use super::{Block, BlockKind, ParseResult, Parser};
use crate::config::expr::{Expr, ExprKind};
use crate::config::lexer::{Span, TokenKind};
use crate::config::model::{
    Branch, Conditional, EventStatement, ExecuteStatement, LeaseEvents, LogPriority, LogStatement,
    Permission, ScopeId, Step, VariableStatement,
};

/// Parameters tagged "later" that have no field in the model: accepted with a warning.
const LATER_PARAMETERS: &[&str] = &[
    "local-address6",
    "dont-use-fsync",
    "release-on-roam",
    "limit-addrs-per-ia",
    "persist-eui-64-leases",
    "server-duid",
    "dhcpv6-lease-file-name",
    "dhcpv6-pid-file-name",
    "preferred-lifetime",
    "prefix-length-mode",
    "abandon-lease-time-v6",
];

/// Must-parse parameters without behaviour yet, or whose behaviour xdhcpd always has: accepted
/// silently. `delayed-ack`/`max-ack-delay` tune ISC's batching of DHCPACKs behind one fsync,
/// which xdhcpd's group commit always does (`lease::commit`).
const ACCEPTED_PARAMETERS: &[&str] = &[
    "delayed-ack",
    "max-ack-delay",
    "ddns-local-address4",
    "ddns-local-address6",
    "ddns-dual-stack-mixed-mode",
    "ddns-other-guard-is-dynamic",
];

/// Declarations and statements of DHCPv6 or other unsupported areas: a block or a statement.
const LATER_DECLARATIONS: &[&str] = &["fixed-address6", "fixed-prefix6", "host-identifier"];

/// syslog facilities accepted by `log-facility` (docs/spec/dhcpd-conf.md §4).
const FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

impl Parser {
    /// One statement of any kind, in the context of `block`.
    pub(crate) fn parse_statement(&mut self, block: Block) -> ParseResult<()> {
        let token = self.peek().clone();
        let word = match &token.kind {
            TokenKind::Name(word) => word.to_ascii_lowercase(),
            // A lone `;` is an empty statement (ISC tolerates it after blocks).
            TokenKind::Punct(b';') => {
                self.bump();
                return Ok(());
            }
            _ => return Err(self.expected("a statement")),
        };
        let conditional = matches!(block.kind, BlockKind::Conditional | BlockKind::Event);
        match word.as_str() {
            "option" => {
                self.bump();
                self.parse_option_statement(block, token.span, "option")
            }
            "parse-vendor-option" => Err(self.unsupported_parse_vendor_option(token.span)),
            "supersede" | "default" | "prepend" | "append" => {
                self.bump();
                self.parse_option_statement(block, token.span, &word)
            }
            "if" => self.parse_if(block),
            "switch" => self.parse_switch(block),
            "on" => self.parse_on(block),
            "set" | "unset" | "log" | "execute" | "return" | "eval" | "add" | "break"
            | "define" => self.parse_executable(block, &word),
            "include" => self.parse_include(),
            _ if conditional => self.parse_conditional_statement(block, &word, token.span),
            "subnet" => self.parse_subnet(block),
            "shared-network" => self.parse_shared_network(block),
            "pool" => self.parse_pool(block),
            "range" => self.parse_range(block),
            "host" => self.parse_host(block),
            "group" => self.parse_group(block),
            "class" => self.parse_class(block),
            "subclass" => self.parse_subclass(block),
            "failover" => self.parse_failover(block),
            "no" => self.parse_no_failover(block),
            "key" => self.parse_key(),
            "zone" => self.parse_zone(block),
            "allow" | "deny" | "ignore" => self.parse_allow_deny(block, &word),
            "hardware" => self.parse_hardware(block),
            "fixed-address" => self.parse_fixed_address(block),
            "match" | "spawn" | "lease" => self.parse_class_statement(block, &word),
            "host-identifier" if block.kind == BlockKind::Host => self.parse_host_identifier(block),
            "uid" if block.kind == BlockKind::Host => {
                self.bump();
                let id = self.parse_data("client identifier data")?;
                self.expect_semicolon()?;
                self.host_mut(block).client_id = Some(id);
                Ok(())
            }
            "authoritative" => {
                let span = self.bump().span;
                self.expect_semicolon()?;
                self.refuse_authority_in_host(block, span)?;
                self.scope_mut(block.scope).authoritative = Some(true);
                Ok(())
            }
            "not" => {
                self.bump();
                let span = self.expect_keyword("authoritative")?;
                self.expect_semicolon()?;
                self.refuse_authority_in_host(block, span)?;
                self.scope_mut(block.scope).authoritative = Some(false);
                Ok(())
            }
            // ISC's DHCPv4 server refuses DHCPv6 declarations (confpars.c: "subnet6 statement is
            // only supported in DHCPv6 mode.", also range6 and prefix6; the lease-file `ia-*`
            // blocks are no dhcpd.conf declaration: "expecting a declaration").
            "subnet6" | "range6" | "prefix6" | "ia-na" | "ia-ta" | "ia-pd" => Err(self.invalid(
                token.span,
                "a DHCPv4 declaration (dhcpd -4)",
                format!("`{word}` (only supported in DHCPv6 mode, as ISC dhcpd says)"),
            )),
            _ if LATER_DECLARATIONS.contains(&word.as_str()) => {
                self.bump();
                self.warn(
                    token.span,
                    format!("`{word}` is not supported yet; ignored"),
                );
                self.skip_statement();
                Ok(())
            }
            _ => self.parse_parameter(block, &word, token.span),
        }
    }

    /// confpars.c: "authority makes no sense here." in a host.
    fn refuse_authority_in_host(&mut self, block: Block, span: Span) -> ParseResult<()> {
        if block.kind == BlockKind::Host {
            return Err(self.invalid(
                span,
                "`authoritative` outside hosts",
                "`authoritative` in a host (authority makes no sense there)",
            ));
        }
        Ok(())
    }

    /// Server parameters (docs/spec/dhcpd-conf.md §4).
    fn parse_parameter(&mut self, block: Block, word: &str, span: Span) -> ParseResult<()> {
        let scope = block.scope;
        match word {
            // ISC format `T` (server/stables.c), like the lease times.
            "ping-timeout" | "ping-timeout-ms" | "ping-cltt-secs" => {
                self.bump();
                let value = self.parse_lease_interval()?;
                self.expect_semicolon()?;
                let target = self.scope_mut(scope);
                match word {
                    "ping-timeout" => target.ping_timeout = Some(value),
                    "ping-timeout-ms" => target.ping_timeout_ms = Some(value),
                    _ => target.ping_cltt_secs = Some(value),
                }
            }
            "default-lease-time" | "max-lease-time" | "min-lease-time" | "abandon-lease-time" => {
                self.bump();
                let value = self.parse_lease_interval()?;
                self.expect_semicolon()?;
                let target = self.scope_mut(scope);
                match word {
                    "default-lease-time" => target.default_lease_time = Some(value),
                    "max-lease-time" => target.max_lease_time = Some(value),
                    "min-lease-time" => target.min_lease_time = Some(value),
                    _ => target.abandon_lease_time = Some(value),
                }
            }
            "use-host-decl-names"
            | "one-lease-per-client"
            | "ping-check"
            | "always-broadcast"
            | "echo-client-id"
            | "ignore-client-uids"
            | "stash-agent-options"
            | "check-secs-byte-order"
            | "server-id-check" => {
                self.bump();
                let value = self.parse_flag()?;
                self.expect_semicolon()?;
                let target = self.scope_mut(scope);
                match word {
                    "use-host-decl-names" => target.use_host_decl_names = Some(value),
                    "one-lease-per-client" => target.one_lease_per_client = Some(value),
                    "ping-check" => target.ping_check = Some(value),
                    "always-broadcast" => target.always_broadcast = Some(value),
                    "echo-client-id" => target.echo_client_id = Some(value),
                    "check-secs-byte-order" => target.check_secs_byte_order = Some(value),
                    "server-id-check" => target.server_id_check = Some(value),
                    "stash-agent-options" => target.stash_agent_options = Some(value),
                    _ => target.ignore_client_uids = Some(value),
                }
            }
            "log-threshold-low" | "log-threshold-high" => {
                self.bump();
                let value = self.parse_isc_integer(8, "a percentage")? as u8;
                self.expect_semicolon()?;
                let target = self.scope_mut(scope);
                if word == "log-threshold-low" {
                    target.log_threshold_low = Some(value);
                } else {
                    target.log_threshold_high = Some(value);
                }
            }
            "min-secs" => {
                self.bump();
                let value = self.parse_isc_integer(8, "seconds")?;
                self.expect_semicolon()?;
                self.scope_mut(scope).min_secs = Some(value as u8);
            }
            "dhcp-cache-threshold" => {
                // ISC's format `B` (server/stables.c): any 8-bit value parses; `reuse_lease`
                // uses it only below 100.
                self.bump();
                let value = self.parse_isc_integer(8, "a percentage")?;
                self.expect_semicolon()?;
                self.scope_mut(scope).dhcp_cache_threshold = Some(value as u8);
            }
            "server-identifier" | "next-server" | "local-address" => {
                self.bump();
                let address = self.parse_ip_or_hostname()?;
                self.expect_semicolon()?;
                let target = self.scope_mut(scope);
                match word {
                    "server-identifier" => {
                        target.server_identifier = address.or(target.server_identifier)
                    }
                    "next-server" => target.next_server = address.or(target.next_server),
                    _ => target.local_address = address.or(target.local_address),
                }
            }
            "filename" | "server-name" => {
                self.bump();
                let value = self.parse_string_or_expression()?;
                self.expect_semicolon()?;
                self.set_boot_field(scope, word == "filename", value);
            }
            "log-facility" => {
                self.bump();
                let facility = self.peek().clone();
                match &facility.kind {
                    TokenKind::Name(name)
                        if FACILITIES
                            .iter()
                            .any(|known| name.eq_ignore_ascii_case(known)) =>
                    {
                        let name = name.to_ascii_lowercase();
                        self.bump();
                        self.expect_semicolon()?;
                        self.config.log_facility = Some(name);
                    }
                    _ => {
                        return Err(
                            self.expected("a syslog facility (`daemon`, `local0`…`local7`, …)")
                        )
                    }
                }
            }
            "lease-file-name" | "pid-file-name" => {
                self.bump();
                let path = self.parse_text("a quoted path")?;
                self.expect_semicolon()?;
                let path = String::from_utf8_lossy(&path).into_owned();
                if word == "lease-file-name" {
                    self.config.lease_file_name = Some(path);
                } else {
                    self.config.pid_file_name = Some(path);
                }
            }
            "db-time-format" => {
                self.bump();
                // A setting of the whole server, taken when read, the last one winning (ISC
                // common/parse.c sets the global `db_time_format` as it parses): `local` writes
                // lease times as `epoch N; # local time` (common/print.c `print_time`).
                if self.eat_keyword("local") {
                    self.config.db_time_format_local = true;
                } else if self.eat_keyword("default") {
                    self.config.db_time_format_local = false;
                } else {
                    return Err(self.expected("`default` or `local`"));
                }
                self.expect_semicolon()?;
            }
            "lease-id-format" => {
                self.bump();
                if self.eat_keyword("hex") {
                    self.config.lease_id_format_hex = true;
                } else if self.eat_keyword("octal") {
                    self.config.lease_id_format_hex = false;
                } else {
                    return Err(self.expected("`octal` or `hex`"));
                }
                self.expect_semicolon()?;
            }
            "omapi-port" => {
                self.bump();
                let port = self.parse_u16("a port number")?;
                self.expect_semicolon()?;
                self.config.omapi_port = Some(port);
            }
            "omapi-key" => {
                self.bump();
                let name_span = self.peek().span;
                let name = self.parse_name_or_string("a key name")?;
                self.expect_semicolon()?;
                self.config.omapi_key = Some(name);
                self.side.omapi_key_span = Some(name_span);
            }
            _ if super::ddns::is_ddns_parameter(word) => {
                self.parse_ddns_parameter(block, word, span)?;
            }
            // Through the server option space's value syntax (`values::parse_server_option`).
            "use-lease-addr-for-default-route" | "limited-broadcast-address" => {
                self.bump();
                self.parse_server_option(block, word, span)?;
            }
            _ if ACCEPTED_PARAMETERS.contains(&word) => {
                self.bump();
                self.parse_loose_value()?;
            }
            "vendor-option-space" | "site-option-space" => {
                self.parse_space_parameter(block, word, span)?;
            }
            // BOOTP and port parameters: acted on or refused (parser/boot_parameters.rs).
            _ if super::boot_parameters::is_boot_parameter(word) => {
                self.parse_boot_parameter(block, word, span)?;
            }
            _ if LATER_PARAMETERS.contains(&word) => {
                self.bump();
                self.warn(span, format!("`{word}` is not supported yet; ignored"));
                self.parse_loose_value()?;
            }
            "interface" if matches!(block.kind, BlockKind::Subnet | BlockKind::SharedNetwork) => {
                self.parse_interface(block, span)?;
            }
            _ => {
                if let Some(format) = super::server_space::server_option_format(word) {
                    // A server parameter xdhcpd has no field for (confpars.c reads it through
                    // the server option space): the same path as the "later" parameters.
                    self.bump();
                    self.warn(span, format!("`{word}` is not supported yet; ignored"));
                    return self.parse_server_space_value(format);
                }
                return self.parse_bare_identifier(span);
            }
        }
        Ok(())
    }

    /// A statement inside an `if`/`elsif`/`else` or `on` body that is not an option or
    /// executable keyword: ISC's `parse_executable_statement` also takes `allow`/`deny`/
    /// `ignore` and every name of the server option space, with that option's value syntax
    /// (`filename "pxe.0";`, `next-server 10.0.0.1;`, `filename = concat(…);`,
    /// `authoritative true;`). The values go to the body's scope (see `parse_if`); an `on`
    /// body's scope is dropped.
    fn parse_conditional_statement(
        &mut self,
        block: Block,
        word: &str,
        span: Span,
    ) -> ParseResult<()> {
        match word {
            "allow" | "deny" | "ignore" => self.parse_allow_deny(block, word),
            "key" => self.parse_key(),
            // ISC enters a zone while parsing, whatever the condition.
            "zone" => self.parse_zone(block),
            "vendor-option-space" | "site-option-space" => {
                self.parse_space_parameter(block, word, span)
            }
            _ => match super::server_space::server_option_format(word) {
                // Parameters the model holds land in the body's scope, as in any other scope.
                Some(_) if super::values::server_parameter_kind(word).is_some() => {
                    self.bump();
                    self.parse_server_option(block, word, span)
                }
                Some(_) if super::ddns::is_ddns_parameter(word) => {
                    self.parse_ddns_parameter(block, word, span)
                }
                Some(format) => {
                    self.bump();
                    if block.kind == BlockKind::Conditional {
                        self.warn(span, format!("`{word}` is not supported yet; ignored"));
                    }
                    self.parse_server_space_value(format)
                }
                None => self.parse_bare_identifier(span),
            },
        }
    }

    /// A name that starts no statement ISC knows (`authorative;`, `DHCPDARGS=eth0;` left from a
    /// shell file): ISC's `parse_executable_statement` reads it as the expression of an `eval`
    /// statement (a variable reference, `NAME = VALUE` a comparison), accepts it without a
    /// word and evaluates it to no effect. xdhcpd does the same and says so, because the name
    /// is usually a typo of a statement that would have had an effect.
    fn parse_bare_identifier(&mut self, span: Span) -> ParseResult<()> {
        let word = match &self.peek().kind {
            TokenKind::Name(word) => word.clone(),
            _ => return Err(self.expected("a statement")),
        };
        let warnings = self.config.warnings.len();
        self.parse_expression()?;
        self.expect_semicolon()?;
        // The expression parser's "variable is not evaluated" notes say less than this one.
        self.config.warnings.truncate(warnings);
        self.warn(
            span,
            format!("`{word}` is not a statement; read as ISC does, as `eval {word}…;`, which has no effect (a misspelt keyword?)"),
        );
        Ok(())
    }

    /// `interface NAME;` directly in a subnet or shared-network (confpars.c, mdb.c
    /// `new_shared_network_interface`): ties the shared network to that interface; a second
    /// one is an error. Recorded in the model; xdhcpd chooses interfaces by their addresses.
    fn parse_interface(&mut self, block: Block, span: Span) -> ParseResult<()> {
        self.bump();
        let name = match self.peek().kind.clone() {
            TokenKind::Name(name) | TokenKind::Number(name) => {
                self.bump();
                name
            }
            TokenKind::String(bytes) => {
                self.bump();
                String::from_utf8_lossy(&bytes).into_owned()
            }
            _ => return Err(self.expected("an interface name")),
        };
        self.expect_semicolon()?;
        let Some(network) = block.shared_network else {
            return Ok(());
        };
        if self.config.interfaces.iter().any(|(_, id)| *id == network) {
            return Err(self.invalid(
                span,
                "one `interface` per subnet or shared network",
                "a second one (ISC: a subnet or shared network can't be connected to two interfaces)",
            ));
        }
        // Acted on at start-up as ISC's `new_shared_network_interface` does: the interface joins
        // the ones to listen on (`net::interfaces::requested`, `check_declared`).
        self.config.interfaces.push((name, network));
        Ok(())
    }

    /// The value of a parameter that is accepted but not interpreted: `= EXPR;` or any tokens
    /// up to `;` (no blocks).
    pub(crate) fn parse_loose_value(&mut self) -> ParseResult<()> {
        if self.eat_punct(b'=') {
            self.parse_expression()?;
            return self.expect_semicolon();
        }
        loop {
            let token = self.peek().clone();
            match token.kind {
                TokenKind::Punct(b';') => {
                    self.bump();
                    return Ok(());
                }
                TokenKind::Punct(b'{' | b'}') | TokenKind::Eof => return Err(self.expected("`;`")),
                _ => {
                    self.bump();
                }
            }
        }
    }

    /// `filename "F";` also takes `= EXPR;` (ISC stores it as an expression); the expression
    /// form is not evaluated (`None`).
    fn parse_string_or_expression(&mut self) -> ParseResult<Result<Vec<u8>, Expr>> {
        if self.eat_punct(b'=') {
            let span = self.peek().span;
            let expression = self.parse_expression()?;
            self.require_kind(&expression, ExprKind::Data, span, "a data expression")?;
            return Ok(match expression {
                Expr::Data(bytes) => Ok(bytes),
                other => Err(other),
            });
        }
        self.parse_text("a quoted string").map(Ok)
    }

    /// Sets `filename` (or `server-name`) of `scope` to a constant or an expression evaluated
    /// per reply; the later statement replaces the other form.
    pub(super) fn set_boot_field(
        &mut self,
        scope: ScopeId,
        filename: bool,
        value: Result<Vec<u8>, Expr>,
    ) {
        let target = self.scope_mut(scope);
        let (constant, expression) = if filename {
            (&mut target.filename, &mut target.filename_expression)
        } else {
            (&mut target.server_name, &mut target.server_name_expression)
        };
        match value {
            Ok(bytes) => {
                *constant = Some(bytes);
                *expression = None;
            }
            Err(computed) => {
                *constant = None;
                *expression = Some(computed);
            }
        }
    }

    /// `allow|deny|ignore …;` (docs/spec/dhcpd-conf.md §3.1). In a pool `allow`/`deny` build its permit
    /// list; elsewhere they set a scope flag.
    fn parse_allow_deny(&mut self, block: Block, word: &str) -> ParseResult<()> {
        self.bump();
        let permission = match word {
            "allow" => Permission::Allow,
            "deny" => Permission::Deny,
            _ => Permission::Ignore,
        };
        if block.kind == BlockKind::Pool && permission != Permission::Ignore {
            if let Some(pool) = block.pool {
                return self.parse_permit_list(pool, permission == Permission::Allow);
            }
        }
        let flag = self.peek().clone();
        let TokenKind::Name(name) = &flag.kind else {
            return Err(self.expected("`unknown-clients`, `bootp`, `booting`, `declines`, …"));
        };
        let name = name.to_ascii_lowercase();
        let scope = block.scope;
        match name.as_str() {
            "unknown-clients" => self.scope_mut(scope).unknown_clients = Some(permission),
            "bootp" => self.scope_mut(scope).bootp = Some(permission),
            "booting" => self.scope_mut(scope).booting = Some(permission),
            "declines" => self.scope_mut(scope).declines = Some(permission),
            "client-updates" => self.scope_mut(scope).ddns.client_updates = Some(permission),
            "duplicates" => self.scope_mut(scope).duplicates = Some(permission),
            "leasequery" => self.scope_mut(scope).leasequery = Some(permission),
            "known-clients" | "members" | "all" | "dynamic" | "after" | "known" | "unknown"
            | "authenticated" | "unauthenticated" => {
                return Err(self.invalid(
                    flag.span,
                    "this permit inside a `pool { … }`",
                    format!("`{word} {name}` outside a pool"),
                ));
            }
            _ => {
                return Err(self.expected("`unknown-clients`, `bootp`, `booting`, `declines`, …"));
            }
        }
        self.bump();
        self.expect_semicolon()
    }

    /// `if EXPR { … } [elsif EXPR { … }]… [else { … }]` (dhcp-eval(5)): each body becomes a
    /// scope of its own, the statement a [`Conditional`] of the enclosing scope.
    fn parse_if(&mut self, block: Block) -> ParseResult<()> {
        self.bump();
        let mut branches = Vec::new();
        let condition = self.parse_boolean_expression("a boolean expression")?;
        let body = self.parse_conditional_body(block, true)?;
        branches.push(Branch {
            condition: Some(condition),
            body,
        });
        loop {
            let condition = if self.at_keyword("elsif") {
                self.bump();
                Some(self.parse_boolean_expression("a boolean expression")?)
            } else if self.at_keyword("else") {
                self.bump();
                if self.at_keyword("if") {
                    self.bump();
                    Some(self.parse_boolean_expression("a boolean expression")?)
                } else {
                    None
                }
            } else {
                break;
            };
            let body = self.parse_conditional_body(block, true)?;
            branches.push(Branch { condition, body });
        }
        self.scope_mut(block.scope)
            .conditionals
            .push(Conditional { branches });
        Ok(())
    }

    /// `on commit|expiry|release [or …] { … }` (dhcpd.conf(5) "EVENTS"): the body is kept as a
    /// scope of its own and executed when the event happens (`engine::statements`).
    fn parse_on(&mut self, block: Block) -> ParseResult<()> {
        let span = self.bump().span;
        let start = self.position_marker();
        let mut events = LeaseEvents::default();
        let mut transmission = false;
        loop {
            let event = self.peek().clone();
            if event.is_keyword("commit") {
                events.commit = true;
            } else if event.is_keyword("expiry") {
                events.expiry = true;
            } else if event.is_keyword("release") {
                events.release = true;
            } else if event.is_keyword("transmission") {
                // DHCPv6 only in ISC (the reply to a client is about to be sent).
                transmission = true;
            } else {
                return Err(self.expected("`commit`, `expiry` or `release`"));
            }
            self.bump();
            if !(self.eat_keyword("or") || self.eat_punct(b'|')) {
                break;
            }
        }
        let body = self.parse_conditional_body(block, false)?;
        if transmission && events == LeaseEvents::default() {
            self.warn(span, "`on transmission` concerns DHCPv6 only; ignored");
            return Ok(());
        }
        let text = self.body_text(start);
        self.scope_mut(block.scope)
            .events
            .push(EventStatement { events, body, text });
        Ok(())
    }

    /// A `{ … }` of executable statements parsed into a scope of its own under `block`'s
    /// (ISC's `if` body acts as statements executed in the enclosing scope; here it is a scope
    /// just inside it, see `engine::scope`).
    fn parse_conditional_body(&mut self, block: Block, evaluated: bool) -> ParseResult<ScopeId> {
        let open = self.expect_punct(b'{')?;
        let body = self.new_scope(block.scope);
        let kind = if evaluated {
            BlockKind::Conditional
        } else {
            BlockKind::Event
        };
        let inner = block.nested(kind, body);
        self.parse_block_body(inner, open);
        Ok(body)
    }

    /// `log ([PRIORITY,] EXPR);`, `set NAME = EXPR;`, `unset NAME;` and `execute ("CMD", …);`
    /// (kept in the scope, executed by `engine::statements`); `return EXPR;` and `eval EXPR;`:
    /// parsed, not evaluated.
    fn parse_executable(&mut self, block: Block, word: &str) -> ParseResult<()> {
        let span = self.bump().span;
        match word {
            "set" => {
                let name = self.parse_variable_name()?;
                self.expect_punct(b'=')?;
                let value = self.parse_expression()?;
                self.expect_semicolon()?;
                self.scope_mut(block.scope)
                    .variables
                    .push(VariableStatement::Set(name, value));
                return Ok(());
            }
            "unset" => {
                let name = self.parse_variable_name()?;
                self.expect_semicolon()?;
                self.scope_mut(block.scope)
                    .variables
                    .push(VariableStatement::Unset(name));
                return Ok(());
            }
            "log" => {
                self.expect_punct(b'(')?;
                // dhcp-eval(5) "LOGGING": the priority is optional, `info` by default.
                let mut priority = LogPriority::Info;
                if self.peek_at(1).is_punct(b',') {
                    for (name, value) in [
                        ("fatal", LogPriority::Fatal),
                        ("error", LogPriority::Error),
                        ("info", LogPriority::Info),
                        ("debug", LogPriority::Debug),
                    ] {
                        if self.peek().is_keyword(name) {
                            priority = value;
                            self.bump();
                            self.bump();
                            break;
                        }
                    }
                }
                let text_span = self.peek().span;
                let text = self.parse_expression()?;
                self.require_kind(&text, ExprKind::Data, text_span, "a data expression")?;
                self.expect_punct(b')')?;
                self.expect_semicolon()?;
                self.scope_mut(block.scope)
                    .logs
                    .push(LogStatement { priority, text });
                return Ok(());
            }
            "execute" => {
                // dhcp-eval(5) "EXECUTE": the command is a quoted path, the arguments data or
                // numeric expressions.
                self.expect_punct(b'(')?;
                let command = self.parse_string("a quoted command path")?;
                let mut arguments = Vec::new();
                while self.eat_punct(b',') {
                    arguments.push(self.parse_expression()?);
                }
                self.expect_punct(b')')?;
                self.expect_semicolon()?;
                self.scope_mut(block.scope).executes.push(ExecuteStatement {
                    command: String::from_utf8_lossy(&command).into_owned(),
                    arguments,
                });
                return Ok(());
            }
            // ISC `break_statement`: ends the statement list it is in (an `if` body, an `on`
            // body, a scope's statements; a `switch` case's `break` is read by `parse_switch`).
            "break" => {
                self.expect_semicolon()?;
                self.scope_mut(block.scope).steps.push(Step::Break);
                return Ok(());
            }
            // ISC evaluates both where they stand (`eval_statement`, `return_statement`); the
            // value of `return` ends a function call, elsewhere it is dropped.
            "eval" | "return" => {
                let expression = self.parse_expression()?;
                self.expect_semicolon()?;
                self.scope_mut(block.scope)
                    .evaluations
                    .push(crate::config::model::Evaluation {
                        expression,
                        returns: word == "return",
                    });
                return Ok(());
            }
            // ISC `add_statement`: the class must be declared before ("class NAME: not found").
            "add" => {
                let name_span = self.peek().span;
                let name = self.parse_string("a quoted class name")?;
                let name = String::from_utf8_lossy(&name).into_owned();
                let Some(class) = self.class_by_name(&name) else {
                    return Err(self.invalid(
                        name_span,
                        "a class declared before",
                        format!("class {name}: not found"),
                    ));
                };
                self.expect_semicolon()?;
                self.scope_mut(block.scope).adds.push(class);
                return Ok(());
            }
            "define" => return self.parse_define(block, span),
            _ => {}
        }
        Err(self.invalid(
            span,
            "a statement xdhcpd acts on",
            format!("`{word}` (unsupported)"),
        ))
    }

    /// `define NAME (PARAMETERS) { STATEMENTS }` (dhcp-eval(5), ISC parse.c `DEFINE`): the
    /// function is bound to NAME among the variables when the statement is executed.
    fn parse_define(&mut self, block: Block, span: Span) -> ParseResult<()> {
        let name = self.parse_variable_name()?;
        if !self.at_punct(b'(') {
            // ISC takes `define NAME = EXPR;` and binds the expression's memory as if it were
            // a function definition (execute.c `define_statement` reads `data.func` of any
            // expression): nothing to do the same way.
            return Err(self.invalid(
                span,
                "`define NAME (ARGUMENTS) { … }`",
                "`define NAME = …` (unsupported)",
            ));
        }
        self.bump();
        let mut parameters = Vec::new();
        if !self.eat_punct(b')') {
            loop {
                parameters.push(self.parse_name_or_string("an argument name")?);
                if self.eat_punct(b')') {
                    break;
                }
                self.expect_punct(b',')?;
            }
        }
        let first_scope = self.config.scopes.len();
        let body = self.parse_conditional_body(block, true)?;
        // ISC runs a function's option statements into the reply being built at the moment
        // of the call and its `on` statements into the lease: refused rather than run
        // differently. The body and the scopes nested in it hold executable statements only.
        let refused = (first_scope..self.config.scopes.len()).any(|index| {
            self.config
                .scopes
                .get(index)
                .is_some_and(|scope| !holds_only_function_statements(scope))
        });
        if refused {
            return Err(self.invalid(
                span,
                "a function body of set, unset, log, execute, if, switch, return, eval, add, define and break",
                "option statements, parameters or `on` in it (unsupported)",
            ));
        }
        let index = self.config.functions.len();
        self.config.functions.push(crate::config::model::Function {
            name,
            parameters,
            body,
        });
        self.scope_mut(block.scope).defines.push(index);
        Ok(())
    }

    /// The name after `set`, `unset` or inside `defined (…)`: ISC takes a plain name, and
    /// refuses a word its lexer makes a keyword ("NAME can't be a variable name").
    pub(crate) fn parse_variable_name(&mut self) -> ParseResult<String> {
        let span = self.peek().span;
        let name = self.parse_name_or_string("a variable name")?;
        if super::keywords::is_isc_keyword(&name) {
            return Err(self.invalid(
                span,
                "a variable name",
                format!("`{name}`, a keyword of ISC's configuration language"),
            ));
        }
        Ok(name)
    }

    /// `include "PATH";`.
    fn parse_include(&mut self) -> ParseResult<()> {
        self.bump();
        let path_span = self.peek().span;
        let path = self.parse_string("a quoted file name")?;
        self.expect_semicolon()?;
        self.open_include(&path, path_span);
        Ok(())
    }
}

/// Whether `scope` holds nothing but the statements a function body may run (see
/// `Parser::parse_define`).
fn holds_only_function_statements(scope: &crate::config::model::Scope) -> bool {
    let mut rest = scope.clone();
    rest.variables.clear();
    rest.logs.clear();
    rest.executes.clear();
    rest.switches.clear();
    rest.conditionals.clear();
    rest.defines.clear();
    rest.evaluations.clear();
    rest.adds.clear();
    rest.steps.retain(|step| {
        !matches!(
            step,
            Step::Variable(_)
                | Step::Log(_)
                | Step::Execute(_)
                | Step::Switch(_)
                | Step::Conditional(_)
                | Step::Define(_)
                | Step::Evaluate(_)
                | Step::Add(_)
                | Step::Break
        )
    });
    rest == crate::config::model::Scope {
        parent: scope.parent,
        ..Default::default()
    }
}
