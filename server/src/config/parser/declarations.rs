//! Declarations (docs/spec/dhcpd-conf.md §2-§3, §7): `subnet`, `shared-network`, `pool`, `range`, `host`
//! (`hardware`, `fixed-address`), `group`, `class`, `subclass`, pool permit lists and `key`.
//! Structural rules follow `confpars.c`: a lone subnet gets an implicit shared network, ranges
//! written directly in a subnet form its implicit pool.

use std::net::Ipv4Addr;

use super::{Block, BlockKind, ParseResult, Parser};
use crate::config::base64;
use crate::config::expr::ExprKind;
use crate::config::lexer::{Span, TokenKind};
use crate::config::model::{
    Class, ClassId, HardwareAddress, Host, HostId, Key, Permit, PermitKind, Pool, PoolId,
    SharedNetwork, SharedNetworkId, Subclass, Subnet, SubnetId,
};

/// TSIG/OMAPI algorithms accepted by `key` (docs/spec/dhcpd-conf.md §3), with ISC's canonical names.
const KEY_ALGORITHMS: &[(&str, &str)] = &[
    ("hmac-md5", "hmac-md5.SIG-ALG.REG.INT."),
    ("hmac-md5.sig-alg.reg.int", "hmac-md5.SIG-ALG.REG.INT."),
    ("hmac-md5.sig-alg.reg.int.", "hmac-md5.SIG-ALG.REG.INT."),
    ("hmac-sha1", "hmac-sha1"),
    ("hmac-sha224", "hmac-sha224"),
    ("hmac-sha256", "hmac-sha256"),
    ("hmac-sha384", "hmac-sha384"),
    ("hmac-sha512", "hmac-sha512"),
];

/// The most addresses one `range` may hold. ISC 4.4 (mdb.c `new_address_range`, built with
/// COMPACT_LEASES as Debian does) allocates the range's leases in one block whose size, an
/// `unsigned`, is (addresses + 1) × sizeof(struct lease), 304 bytes on x86-64, and refuses
/// the range as "an overly large address range" when that overflows 32 bits. Measured with
/// `dhcpd -t` 4.4.3: 10.0.0.0-10.215.148.51 passes, 10.0.0.0-10.215.148.52 does not.
pub(super) const MAX_RANGE_ADDRESSES: u64 = (u32::MAX as u64) / 304 - 1;

/// Largest hardware address accepted (ISC `HARDWARE_ADDR_LEN`).
const MAX_HARDWARE_LENGTH: usize = 20;

impl Parser {
    /// `subnet A netmask M { … }`.
    pub(super) fn parse_subnet(&mut self, block: Block) -> ParseResult<()> {
        let span = self.bump().span;
        if !matches!(
            block.kind,
            BlockKind::Global | BlockKind::Group | BlockKind::SharedNetwork
        ) {
            return Err(self.invalid(
                span,
                "`subnet` at top level, in a group or in a shared-network",
                format!("`subnet` inside a {}", block_name(block.kind)),
            ));
        }
        let network = self.parse_ip()?;
        self.expect_keyword("netmask")?;
        let netmask = self.parse_ip()?;
        let open = self.expect_punct(b'{')?;
        // docs/spec/dhcpd-conf.md §2: a subnet outside a shared-network gets an implicit one.
        let (shared_network, parent) = match block.shared_network {
            Some(id) if block.kind == BlockKind::SharedNetwork => (id, block.scope),
            _ => {
                let scope = self.new_scope(block.scope);
                let id = SharedNetworkId(self.config.shared_networks.len() as u32);
                self.config.shared_networks.push(SharedNetwork {
                    name: None,
                    scope,
                    subnets: Vec::new(),
                    pools: Vec::new(),
                });
                self.side.shared_network_peers.push(None);
                (id, scope)
            }
        };
        let scope = self.new_scope(parent);
        let id = SubnetId(self.config.subnets.len() as u32);
        self.config.subnets.push(Subnet {
            network,
            netmask,
            scope,
            shared_network,
        });
        self.side.subnet_spans.push(span);
        if let Some(network) = self
            .config
            .shared_networks
            .get_mut(shared_network.0 as usize)
        {
            network.subnets.push(id);
        }
        let inner = Block {
            kind: BlockKind::Subnet,
            scope,
            shared_network: Some(shared_network),
            subnet: Some(id),
            pool: None,
            host: None,
            class: None,
        };
        self.parse_block_body(inner, open);
        Ok(())
    }

    /// `shared-network NAME { … }`.
    pub(super) fn parse_shared_network(&mut self, block: Block) -> ParseResult<()> {
        let span = self.bump().span;
        if !matches!(block.kind, BlockKind::Global | BlockKind::Group) {
            return Err(self.invalid(
                span,
                "`shared-network` at top level or in a group",
                format!("`shared-network` inside a {}", block_name(block.kind)),
            ));
        }
        let name = self.parse_name_or_string("a shared-network name")?;
        let open = self.expect_punct(b'{')?;
        let scope = self.new_scope(block.scope);
        let id = SharedNetworkId(self.config.shared_networks.len() as u32);
        self.config.shared_networks.push(SharedNetwork {
            name: Some(name),
            scope,
            subnets: Vec::new(),
            pools: Vec::new(),
        });
        self.side.shared_network_peers.push(None);
        let inner = Block {
            kind: BlockKind::SharedNetwork,
            scope,
            shared_network: Some(id),
            subnet: None,
            pool: None,
            host: None,
            class: None,
        };
        self.parse_block_body(inner, open);
        if self.config.shared_networks[id.0 as usize]
            .subnets
            .is_empty()
        {
            // confpars.c: "empty shared-network decl".
            return Err(self.invalid(
                span,
                "at least one subnet in the shared-network",
                "an empty shared-network",
            ));
        }
        Ok(())
    }

    /// Adds a pool (explicit or implicit) to the arena and its shared network.
    pub(super) fn add_pool(&mut self, block: Block, span: Span) -> Option<PoolId> {
        let shared_network = block.shared_network?;
        let scope = self.new_scope(block.scope);
        let id = PoolId(self.config.pools.len() as u32);
        self.config.pools.push(Pool {
            scope,
            shared_network,
            subnet: block.subnet,
            ranges: Vec::new(),
            permits: Vec::new(),
            failover_peer: None,
        });
        self.side.pool_spans.push(span);
        self.side.pool_no_failover.push(false);
        if let Some(network) = self
            .config
            .shared_networks
            .get_mut(shared_network.0 as usize)
        {
            network.pools.push(id);
        }
        Some(id)
    }

    /// `pool { … }` inside a subnet or shared-network.
    pub(super) fn parse_pool(&mut self, block: Block) -> ParseResult<()> {
        let span = self.bump().span;
        let allowed = matches!(block.kind, BlockKind::Subnet | BlockKind::SharedNetwork);
        let open = self.expect_punct(b'{')?;
        let pool = if allowed {
            self.add_pool(block, span)
        } else {
            None
        };
        let Some(pool) = pool else {
            let error = self.invalid(
                span,
                "`pool` inside a subnet or shared-network",
                format!("`pool` inside a {}", block_name(block.kind)),
            );
            self.errors.push(error);
            // Skip the body so that its statements do not leak into this scope.
            self.recover_block_body();
            return Ok(());
        };
        let scope = self.config.pool(pool).scope;
        let inner = Block {
            kind: BlockKind::Pool,
            scope,
            pool: Some(pool),
            ..block
        };
        self.parse_block_body(inner, open);
        Ok(())
    }

    /// Skips the rest of a block whose `{` was just read, including its `}`.
    fn recover_block_body(&mut self) {
        let mut depth = 1usize;
        loop {
            match self.bump().kind {
                TokenKind::Eof => return,
                TokenKind::Punct(b'{') => depth += 1,
                TokenKind::Punct(b'}') => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// `host NAME { … }` (confpars.c `parse_host_declaration`): anywhere but in a host or a
    /// class. NAME is a host name (`parse_host_name`: names and numbers joined by dots), not a
    /// quoted string, and unique. Hosts are global whatever the block: only the parameters of
    /// the enclosing scopes reach them.
    pub(super) fn parse_host(&mut self, block: Block) -> ParseResult<()> {
        let span = self.bump().span;
        if matches!(
            block.kind,
            BlockKind::Host | BlockKind::Class | BlockKind::Subclass
        ) {
            return Err(self.invalid(
                span,
                "`host` outside hosts and classes",
                format!("`host` inside a {}", block_name(block.kind)),
            ));
        }
        let name_span = self.peek().span;
        let name =
            self.parse_dotted_name("a name for the host declaration (not a quoted string)")?;
        let open = self.expect_punct(b'{')?;
        if self.config.hosts.iter().any(|host| host.name == name) {
            let error = self.invalid(
                name_span,
                "a host name not declared before",
                format!("host {name}: already exists"),
            );
            self.errors.push(error);
            self.recover_block_body();
            return Ok(());
        }
        if matches!(block.kind, BlockKind::Subnet | BlockKind::SharedNetwork)
            && !self.side.warned_global_hosts
        {
            // ISC's own warning, once per configuration.
            self.side.warned_global_hosts = true;
            self.warn(
                span,
                "Host declarations are global.  They are not limited to the scope you declared them in.",
            );
        }
        let scope = self.new_scope(block.scope);
        let id = HostId(self.config.hosts.len() as u32);
        self.config.hosts.push(Host {
            name,
            scope,
            hardware: None,
            client_id: None,
            fixed_addresses: Vec::new(),
        });
        let inner = Block {
            kind: BlockKind::Host,
            scope,
            host: Some(id),
            ..block
        };
        self.parse_block_body(inner, open);
        Ok(())
    }

    pub(super) fn host_mut(&mut self, block: Block) -> &mut Host {
        let index = block.host.map_or(0, |id| id.0 as usize);
        &mut self.config.hosts[index]
    }

    /// `hardware TYPE xx:xx:…;` inside a host.
    pub(super) fn parse_hardware(&mut self, block: Block) -> ParseResult<()> {
        let span = self.bump().span;
        let kind = self.peek().clone();
        let TokenKind::Name(type_name) = &kind.kind else {
            return Err(
                self.expected("a hardware type (`ethernet`, `token-ring`, `fddi`, `infiniband`)")
            );
        };
        let lower = type_name.to_ascii_lowercase();
        let htype = match lower.as_str() {
            "ethernet" => Some(1u8),
            "token-ring" => Some(6),
            "fddi" => Some(8),
            "infiniband" => Some(32),
            other => other
                .strip_prefix("unknown-")
                .and_then(|number| number.parse::<u8>().ok()),
        };
        let Some(htype) = htype else {
            return Err(
                self.expected("a hardware type (`ethernet`, `token-ring`, `fddi`, `infiniband`)")
            );
        };
        self.bump();
        let address = self.parse_hex_list("a colon-separated hardware address")?;
        self.expect_semicolon()?;
        if address.len() > MAX_HARDWARE_LENGTH {
            return Err(self.invalid(
                span,
                format!("a hardware address of at most {MAX_HARDWARE_LENGTH} bytes"),
                format!("{} bytes", address.len()),
            ));
        }
        if block.kind != BlockKind::Host {
            return Err(self.invalid(
                span,
                "`hardware` inside a host",
                format!("`hardware` inside a {}", block_name(block.kind)),
            ));
        }
        if self.host_mut(block).hardware.is_some() {
            // confpars.c: "Host NAME hardware address already configured."
            let name = self.host_mut(block).name.clone();
            return Err(self.invalid(
                span,
                "one `hardware` statement per host",
                format!("host {name}: hardware address already configured"),
            ));
        }
        // Any type matches requests of that `htype` (`engine::classify::find_host`).
        self.host_mut(block).hardware = Some(HardwareAddress { htype, address });
        Ok(())
    }

    /// `fixed-address ADDR[, ADDR…];` inside a host.
    pub(super) fn parse_fixed_address(&mut self, block: Block) -> ParseResult<()> {
        let span = self.bump().span;
        // ISC concatenates the lookups (confpars.c `parse_fixed_addr_param`): one name that
        // does not resolve leaves the host without any fixed address.
        let mut addresses = Some(Vec::new());
        loop {
            match (self.parse_ip_or_hostname_all()?, addresses.as_mut()) {
                (Some(found), Some(addresses)) => addresses.extend(found),
                _ => addresses = None,
            }
            if !self.eat_punct(b',') {
                break;
            }
        }
        let addresses = addresses.unwrap_or_default();
        self.expect_semicolon()?;
        if block.kind != BlockKind::Host {
            return Err(self.invalid(
                span,
                "`fixed-address` inside a host",
                format!("`fixed-address` inside a {}", block_name(block.kind)),
            ));
        }
        let host = block.host.map_or(0, |id| id.0);
        if !self.side.hosts_with_fixed_address.insert(host) {
            // confpars.c: "Only one fixed address declaration per host." (list the addresses
            // in one statement instead).
            return Err(self.invalid(
                span,
                "one `fixed-address` statement per host",
                "a second one",
            ));
        }
        self.host_mut(block).fixed_addresses.extend(addresses);
        Ok(())
    }

    /// `group [NAME] { … }`; a `group "NAME";` reference (lease-file host form) is ignored.
    pub(super) fn parse_group(&mut self, block: Block) -> ParseResult<()> {
        let span = self.bump().span;
        if !self.at_punct(b'{') {
            self.parse_name_or_string("a group name")?;
            if self.eat_punct(b';') {
                self.warn(
                    span,
                    "`group NAME;` references are not supported yet; ignored",
                );
                return Ok(());
            }
        }
        let open = self.expect_punct(b'{')?;
        if !matches!(
            block.kind,
            BlockKind::Global | BlockKind::Group | BlockKind::SharedNetwork | BlockKind::Subnet
        ) {
            let error = self.invalid(
                span,
                "`group` at top level or in a group, shared-network or subnet",
                format!("`group` inside a {}", block_name(block.kind)),
            );
            self.errors.push(error);
            self.recover_block_body();
            return Ok(());
        }
        let scope = self.new_scope(block.scope);
        // A group inside a subnet or shared-network keeps that context, so that the hosts,
        // pools or subnets it holds still belong there; its scope sits in between.
        let kind = match block.kind {
            BlockKind::Global | BlockKind::Group => BlockKind::Group,
            other => other,
        };
        let inner = block.nested(kind, scope);
        self.parse_block_body(inner, open);
        Ok(())
    }

    /// Looks a class up by name.
    pub(super) fn class_by_name(&self, name: &str) -> Option<ClassId> {
        self.config
            .classes
            .iter()
            .position(|class| class.name == name)
            .map(|index| ClassId(index as u32))
    }

    /// `class "NAME" { … }` (confpars.c `parse_class_declaration`): anywhere but inside a
    /// class; NAME is a quoted string. Classes are global; the class's scope sits under the
    /// block it is declared in. Declaring a name again reopens that class: its body adds to
    /// the first one.
    pub(super) fn parse_class(&mut self, block: Block) -> ParseResult<()> {
        let span = self.bump().span;
        let name = self.parse_class_name()?;
        let open = self.expect_punct(b'{')?;
        if matches!(block.kind, BlockKind::Class | BlockKind::Subclass) {
            let error = self.invalid(
                span,
                "`class` outside a class",
                format!("`class` inside a {}", block_name(block.kind)),
            );
            self.errors.push(error);
            self.recover_block_body();
            return Ok(());
        }
        let id = match self.class_by_name(&name) {
            Some(id) => id,
            None => {
                let scope = self.new_scope(block.scope);
                let id = ClassId(self.config.classes.len() as u32);
                self.config.classes.push(Class {
                    name,
                    scope,
                    match_if: None,
                    match_data: None,
                    spawning: false,
                    lease_limit: 0,
                    subclasses: Vec::new(),
                });
                id
            }
        };
        let scope = self.config.classes[id.0 as usize].scope;
        let inner = Block {
            kind: BlockKind::Class,
            scope,
            class: Some(id),
            ..Block::global()
        };
        self.side.class_body_matches = (false, false);
        self.parse_block_body(inner, open);
        Ok(())
    }

    /// The name of a class in `class`/`subclass`: ISC wants a quoted string ("Expecting class
    /// name").
    fn parse_class_name(&mut self) -> ParseResult<String> {
        match self.peek().kind.clone() {
            TokenKind::String(bytes) => {
                self.bump();
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => Err(self.expected("a class name (a quoted string)")),
        }
    }

    /// Inside a class: `match if EXPR;`, `match EXPR;`, `spawn with EXPR;`, `lease limit N;`.
    pub(super) fn parse_class_statement(&mut self, block: Block, word: &str) -> ParseResult<()> {
        let span = self.bump().span;
        // A subclass takes `lease limit` (ISC reads it for every kind of class) but neither
        // `match` nor `spawn` ("invalid match in subclass").
        let class = match (block.kind, block.class) {
            (BlockKind::Class, Some(class)) => class,
            (BlockKind::Subclass, Some(class)) if word == "lease" => {
                let limit = self.parse_lease_limit()?;
                // `parse_subclass` enters the subclass before its body.
                if let Some(subclass) = self.config.classes[class.0 as usize].subclasses.last_mut()
                {
                    subclass.lease_limit = limit;
                }
                return Ok(());
            }
            _ => {
                return Err(self.invalid(
                    span,
                    format!("`{word}` inside a class"),
                    format!("`{word}` inside a {}", block_name(block.kind)),
                ));
            }
        };
        let index = class.0 as usize;
        match word {
            "match" => {
                if self.eat_keyword("if") {
                    if std::mem::replace(&mut self.side.class_body_matches.0, true) {
                        return Err(self.invalid(
                            span,
                            "one `match if` per class declaration",
                            "a second one",
                        ));
                    }
                    let expr = self.parse_boolean_expression("a boolean expression")?;
                    self.expect_semicolon()?;
                    self.config.classes[index].match_if = Some(expr);
                } else {
                    self.refuse_second_submatch(span)?;
                    let expr = self.parse_expression()?;
                    if expr.kind() == ExprKind::Boolean || expr.kind() == ExprKind::Numeric {
                        return Err(self.invalid(
                            span,
                            "a data expression after `match`",
                            "a boolean or numeric expression",
                        ));
                    }
                    self.expect_semicolon()?;
                    self.config.classes[index].match_data = Some(expr);
                }
            }
            "spawn" => {
                self.expect_keyword("with")?;
                self.refuse_second_submatch(span)?;
                let expr = self.parse_expression()?;
                if expr.kind() == ExprKind::Boolean || expr.kind() == ExprKind::Numeric {
                    return Err(self.invalid(
                        span,
                        "a data expression after `spawn with`",
                        "a boolean or numeric expression",
                    ));
                }
                self.expect_semicolon()?;
                // A client whose data no subclass has gets a subclass of its own at run time
                // (`engine::classify`, ISC `check_collection`).
                self.config.classes[index].match_data = Some(expr);
                self.config.classes[index].spawning = true;
            }
            _ => {
                let limit = self.parse_lease_limit()?;
                self.config.classes[index].lease_limit = limit;
            }
        }
        Ok(())
    }

    /// `lease limit N;` after `lease` (confpars.c `parse_class_declaration`): any class or
    /// subclass; it makes the server bill leases to classes (`Config::billing_classes`).
    fn parse_lease_limit(&mut self) -> ParseResult<u32> {
        self.expect_keyword("limit")?;
        let limit = self.parse_u32("a lease limit")?;
        self.expect_semicolon()?;
        self.config.billing_classes = true;
        Ok(limit)
    }

    /// confpars.c: "can't override existing submatch/spawn." within one class declaration.
    fn refuse_second_submatch(&mut self, span: Span) -> ParseResult<()> {
        if std::mem::replace(&mut self.side.class_body_matches.1, true) {
            return Err(self.invalid(
                span,
                "one `match` or `spawn with` per class declaration",
                "a second one",
            ));
        }
        Ok(())
    }

    /// `subclass "CLASS" DATA;` or `subclass "CLASS" DATA { … }`, anywhere but inside a class
    /// (confpars.c); the subclass's scope sits under its class.
    pub(super) fn parse_subclass(&mut self, block: Block) -> ParseResult<()> {
        let span = self.bump().span;
        let name_span = self.peek().span;
        let name = self.parse_class_name()?;
        let data = self.parse_data("subclass data (a quoted string or colon-hex)")?;
        let Some(class) = self.class_by_name(&name) else {
            if self.at_punct(b'{') {
                self.bump();
                self.recover_block_body();
            } else {
                self.expect_semicolon()?;
            }
            return Err(self.invalid(
                name_span,
                "the name of a class declared before",
                format!("undeclared class \"{name}\""),
            ));
        };
        if matches!(block.kind, BlockKind::Class | BlockKind::Subclass) {
            return Err(self.invalid(
                span,
                "`subclass` outside a class",
                format!("`subclass` inside a {}", block_name(block.kind)),
            ));
        }
        let index = class.0 as usize;
        // ISC gives a new subclass its class's limit as declared so far; its body may set its
        // own (`parse_class_statement`, which finds it last in the list).
        let lease_limit = self.config.classes[index].lease_limit;
        if self.at_punct(b'{') {
            let open = self.bump().span;
            let parent = self.config.classes[index].scope;
            let scope = self.new_scope(parent);
            self.config.classes[index].subclasses.push(Subclass {
                data,
                scope: Some(scope),
                lease_limit,
            });
            let inner = Block {
                kind: BlockKind::Subclass,
                scope,
                class: Some(class),
                ..Block::global()
            };
            self.parse_block_body(inner, open);
            self.eat_punct(b';');
        } else {
            self.expect_semicolon()?;
            self.config.classes[index].subclasses.push(Subclass {
                data,
                scope: None,
                lease_limit,
            });
        }
        Ok(())
    }

    /// A pool's `allow|deny PERMIT[, PERMIT…];` (ISC `parse_permit_list`).
    pub(super) fn parse_permit_list(&mut self, pool: PoolId, allow: bool) -> ParseResult<()> {
        let mut permits = Vec::new();
        loop {
            let token = self.peek().clone();
            let TokenKind::Name(word) = &token.kind else {
                return Err(self.expected("a permit (`known-clients`, `unknown-clients`, `members of \"CLASS\"`, `all clients`, …)"));
            };
            let word = word.to_ascii_lowercase();
            self.bump();
            let kind = match word.as_str() {
                "known-clients" => PermitKind::KnownClients,
                "unknown-clients" => PermitKind::UnknownClients,
                "known" => {
                    self.expect_keyword("clients")?;
                    PermitKind::KnownClients
                }
                "unknown" => {
                    self.expect_keyword("clients")?;
                    PermitKind::UnknownClients
                }
                "all" => {
                    self.expect_keyword("clients")?;
                    PermitKind::AllClients
                }
                "members" => {
                    self.expect_keyword("of")?;
                    let name_span = self.peek().span;
                    let name = self.parse_name_or_string("a quoted class name")?;
                    match self.class_by_name(&name) {
                        Some(class) => PermitKind::MembersOf(class),
                        None => {
                            return Err(self.invalid(
                                name_span,
                                "the name of a class declared before",
                                format!("undeclared class \"{name}\""),
                            ));
                        }
                    }
                }
                "dynamic" => {
                    self.expect_keyword("bootp")?;
                    self.expect_keyword("clients")?;
                    // ISC `permitted`: a request without DHCP message type (BOOTP).
                    PermitKind::DynamicBootpClients
                }
                "after" => {
                    // Evaluated by `engine::classify::pool_permits` (ISC `permitted`).
                    PermitKind::After(self.parse_date()?)
                }
                "authenticated" | "unauthenticated" => {
                    self.expect_keyword("clients")?;
                    // ISC does not implement these either (docs/spec/dhcpd-conf.md §3.1).
                    self.warn(
                        token.span,
                        format!("`{word} clients` is not supported; ignored"),
                    );
                    if !self.eat_punct(b',') {
                        break;
                    }
                    continue;
                }
                "bootp" | "booting" | "declines" | "duplicates" | "client-updates"
                | "leasequery" => {
                    return Err(self.invalid(
                        token.span,
                        "a pool permit (`known-clients`, `unknown-clients`, `members of \"CLASS\"`, `all clients`, …)",
                        format!("`{word}` (put it outside the pool)"),
                    ));
                }
                _ => {
                    return Err(self.invalid(
                        token.span,
                        "a pool permit (`known-clients`, `unknown-clients`, `members of \"CLASS\"`, `all clients`, …)",
                        format!("`{word}`"),
                    ));
                }
            };
            permits.push(Permit { allow, kind });
            if !self.eat_punct(b',') {
                break;
            }
        }
        self.expect_semicolon()?;
        if let Some(target) = self.config.pools.get_mut(pool.0 as usize) {
            target.permits.extend(permits);
        }
        Ok(())
    }

    /// A date (docs/spec/dhcpd-conf.md §8.1): `W YYYY/MM/DD HH:MM:SS [TZ-OFFSET]`, `epoch N` or `never`,
    /// as seconds since the epoch (`u32::MAX` for never and for years ≥ 2038, as ISC 4.4).
    pub(super) fn parse_date(&mut self) -> ParseResult<u32> {
        if self.eat_keyword("never") {
            return Ok(u32::MAX);
        }
        if self.eat_keyword("epoch") {
            return self.parse_u32("seconds since the epoch");
        }
        self.parse_number_in("a weekday (0-6)", 0, 6)?;
        let (mut year, year_span) = self.parse_integer("a year")?;
        if year < 1900 {
            year += 1900;
        }
        self.expect_punct(b'/')?;
        let month = self.parse_number_in("a month", 1, 12)?;
        self.expect_punct(b'/')?;
        let day = self.parse_number_in("a day", 1, 31)?;
        let hour = self.parse_number_in("an hour", 0, 23)?;
        self.expect_punct(b':')?;
        let minute = self.parse_number_in("minutes", 0, 59)?;
        self.expect_punct(b':')?;
        let second = self.parse_number_in("seconds", 0, 60)?;
        let offset = if matches!(self.peek().kind, TokenKind::Number(_)) {
            self.parse_integer("a time-zone offset in seconds")?.0
        } else {
            0
        };
        if year >= 2038 {
            return Ok(u32::MAX);
        }
        if year < 1970 {
            return Err(self.invalid(year_span, "a year from 1970", year.to_string()));
        }
        let days = days_from_civil(year, month, day);
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second + offset;
        Ok(seconds.clamp(0, i64::from(u32::MAX)) as u32)
    }

    /// `key NAME { algorithm ALG; secret "BASE64"; }` (optional trailing `;`). ISC reads `key`
    /// as an executable statement (common/parse.c), so in any block, and enters it globally.
    pub(super) fn parse_key(&mut self) -> ParseResult<()> {
        self.bump();
        let name_span = self.peek().span;
        let name = self.parse_name_or_string("a key name")?;
        let open = self.expect_punct(b'{')?;
        let mut algorithm = None;
        let mut secret = None;
        loop {
            let token = self.peek().clone();
            match &token.kind {
                TokenKind::Punct(b'}') => {
                    self.bump();
                    break;
                }
                TokenKind::Eof => {
                    let expected = format!(
                        "`}}` closing the key opened at {}",
                        self.sources.locate(open)
                    );
                    return Err(self.invalid(token.span, expected, "end of file"));
                }
                _ => {}
            }
            let result = self.parse_key_statement(&mut algorithm, &mut secret);
            if let Err(error) = result {
                self.errors.push(error);
                self.recover();
            }
        }
        self.eat_punct(b';');
        let Some(algorithm) = algorithm else {
            return Err(self.invalid(name_span, "an `algorithm` statement in the key", "none"));
        };
        let Some(secret) = secret else {
            return Err(self.invalid(name_span, "a `secret` statement in the key", "none"));
        };
        // ISC (omapi_auth_key_enter) replaces a key declared again.
        self.config.keys.retain(|key| key.name != name);
        self.config.keys.push(Key {
            name,
            algorithm,
            secret,
        });
        Ok(())
    }

    fn parse_key_statement(
        &mut self,
        algorithm: &mut Option<String>,
        secret: &mut Option<Vec<u8>>,
    ) -> ParseResult<()> {
        if self.eat_keyword("algorithm") {
            let span = self.peek().span;
            let name = self.parse_name_or_string("a key algorithm")?;
            self.expect_semicolon()?;
            let canonical = KEY_ALGORITHMS
                .iter()
                .find(|(known, _)| name.eq_ignore_ascii_case(known))
                .map(|(_, canonical)| (*canonical).to_string());
            match canonical {
                Some(canonical) => *algorithm = Some(canonical),
                None => {
                    return Err(self.invalid(span, "`hmac-md5`, `hmac-sha1`, `hmac-sha224`, `hmac-sha256`, `hmac-sha384` or `hmac-sha512`", format!("`{name}`")));
                }
            }
        } else if self.eat_keyword("secret") {
            let span = self.peek().span;
            let text = self.parse_base64_text()?;
            self.expect_semicolon()?;
            match base64::decode(&text) {
                Ok(bytes) => *secret = Some(bytes),
                Err(problem) => {
                    return Err(self.invalid(
                        span,
                        "a base64 secret",
                        format!("\"{}\": {problem}", String::from_utf8_lossy(&text)),
                    ));
                }
            }
        } else {
            return Err(self.expected("`algorithm` or `secret`"));
        }
        Ok(())
    }
}

impl Parser {
    /// The text of a key's secret as common/parse.c `parse_base64` collects it: the next
    /// token, quoted or not, then every following token made only of base64 characters (an
    /// unquoted `AAAA==` is the tokens `AAAA`, `=`, `=`; a `/` or `+` splits a name too).
    fn parse_base64_text(&mut self) -> ParseResult<Vec<u8>> {
        let mut text = match token_text(&self.peek().kind) {
            Some(text) => text,
            None => return Err(self.expected("a base64 secret")),
        };
        self.bump();
        while let Some(next) = token_text(&self.peek().kind) {
            if !base64::is_base64_text(&next) {
                break;
            }
            self.bump();
            text.extend_from_slice(&next);
        }
        Ok(text)
    }
}

/// The characters of a token as conflex.c returns them in `val`.
fn token_text(kind: &TokenKind) -> Option<Vec<u8>> {
    match kind {
        TokenKind::Name(text) | TokenKind::Number(text) => Some(text.clone().into_bytes()),
        TokenKind::String(bytes) => Some(bytes.clone()),
        TokenKind::Punct(byte) => Some(vec![*byte]),
        TokenKind::Eof => None,
    }
}

/// How a block kind is named in messages.
pub(super) fn block_name(kind: BlockKind) -> &'static str {
    match kind {
        BlockKind::Global => "the top level",
        BlockKind::Group => "group",
        BlockKind::SharedNetwork => "shared-network",
        BlockKind::Subnet => "subnet",
        BlockKind::Pool => "pool",
        BlockKind::Host => "host",
        BlockKind::Class => "class",
        BlockKind::Subclass => "subclass",
        BlockKind::Conditional => "conditional block",
        BlockKind::Event => "event block",
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub(super) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// For messages about subnets: `A netmask M`.
pub(super) fn subnet_text(network: Ipv4Addr, netmask: Ipv4Addr) -> String {
    format!("{network} netmask {netmask}")
}
