//! The validated configuration: what the parser produces and what the engine, the lease store and
//! the drivers consume. Nothing here refers to syntax; spans survive only in diagnostics.
//!
//! Scopes form a tree in an arena ([`Config::scopes`]): global → group / shared-network → subnet →
//! pool / host / group … Each declaration points at its own [`ScopeId`]; a scope's
//! [`Scope::parent`] links to the enclosing one, so the engine resolves a parameter by walking from
//! the most specific scope up to the global one (dhcpd.conf(5): host > class > pool > subnet >
//! shared-network > global).

use std::net::Ipv4Addr;

/// Index into [`Config::scopes`]. `ScopeId(0)` is the global scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeId(pub u32);

impl ScopeId {
    pub const GLOBAL: ScopeId = ScopeId(0);
}

/// Index into [`Config::subnets`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubnetId(pub u32);

/// Index into [`Config::pools`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolId(pub u32);

/// Index into [`Config::shared_networks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SharedNetworkId(pub u32);

/// Index into [`Config::hosts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostId(pub u32);

/// Index into [`Config::classes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassId(pub u32);

/// `allow`, `deny` or `ignore` for a server-behaviour flag (docs/spec/dhcpd-conf.md §3.1). `Ignore` is
/// `Deny` without logging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    Allow,
    Deny,
    Ignore,
}

/// One scope's own parameters. `None` means "not set here, ask the parent".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scope {
    /// The enclosing scope; `None` only for the global scope.
    pub parent: Option<ScopeId>,
    /// `option NAME VALUE;` statements, already encoded to their wire bytes (the value part of
    /// a DHCP option, without code and length), in declaration order; a later statement of the same
    /// code wins.
    pub options: Vec<(u8, Vec<u8>)>,
    pub default_lease_time: Option<u32>,
    pub max_lease_time: Option<u32>,
    pub min_lease_time: Option<u32>,
    pub authoritative: Option<bool>,
    pub server_identifier: Option<Ipv4Addr>,
    pub next_server: Option<Ipv4Addr>,
    pub filename: Option<Vec<u8>>,
    pub server_name: Option<Vec<u8>>,
    /// `filename = EXPR;` / `server-name = EXPR;`: evaluated per reply; a scope sets either
    /// the constant or the expression (the later statement wins).
    pub filename_expression: Option<crate::config::expr::Expr>,
    pub server_name_expression: Option<crate::config::expr::Expr>,
    pub unknown_clients: Option<Permission>,
    pub bootp: Option<Permission>,
    pub booting: Option<Permission>,
    pub declines: Option<Permission>,
    /// `allow|deny|ignore leasequery;` (dhcpd.conf(5) "allow leasequery"): whether a relay
    /// agent in this scope may ask about leases (RFC 4388 DHCPLEASEQUERY). ISC's default is
    /// deny (server/dhcpleasequery.c: "LEASEQUERY has some privacy concerns").
    pub leasequery: Option<Permission>,
    pub use_host_decl_names: Option<bool>,
    pub always_broadcast: Option<bool>,
    pub abandon_lease_time: Option<u32>,
    pub one_lease_per_client: Option<bool>,
    /// `use-lease-addr-for-default-route flag;` (ISC `ack_lease`): an OFFER or ACK without a
    /// configured `routers` option names the leased address itself as the router.
    pub use_lease_addr_for_default_route: Option<bool>,
    /// `limited-broadcast-address A;` (global, read once at start, ISC `postconf_initialization`):
    /// where broadcast replies go instead of 255.255.255.255.
    pub limited_broadcast_address: Option<Ipv4Addr>,
    /// `allow|deny|ignore duplicates;` (dhcpd.conf(5)): with `one-lease-per-client`, `deny`
    /// also releases the other leases of a host-declared client's hardware address when its
    /// host has no client identifier (ISC `ack_lease`); allow (the default) and ignore do not.
    pub duplicates: Option<Permission>,
    /// `ping-check flag;` (dhcpd.conf(5), default true): an ICMP echo request to a new
    /// address before it is offered (`engine::ping_check`).
    pub ping_check: Option<bool>,
    /// `ping-timeout T;`: seconds the OFFER waits for an echo reply (ISC default 1).
    pub ping_timeout: Option<u32>,
    /// `ping-timeout-ms N;`: the wait in milliseconds; when above 0 it overrides
    /// `ping-timeout` (ISC 4.4 `do_ping_check`).
    pub ping_timeout_ms: Option<u32>,
    /// `ping-cltt-secs T;`: an address offered to its previous client is not pinged again
    /// within this many seconds of that client's last transaction (ISC default 60).
    pub ping_cltt_secs: Option<u32>,
    pub min_secs: Option<u8>,
    /// `log-threshold-high PCT;` / `log-threshold-low PCT;` (dhcpd.conf(5)): log when a
    /// pool's use crosses the high mark at a DHCPACK, again after it fell to the low one.
    pub log_threshold_high: Option<u8>,
    pub log_threshold_low: Option<u8>,
    /// `dhcp-cache-threshold PCT;` (0..255 as ISC parses it; dhcpd.conf(5)): a renewal within
    /// this share of its lease's time is answered from the lease as it stands
    /// (`engine::lease_time::reuse`).
    pub dhcp_cache_threshold: Option<u8>,
    pub echo_client_id: Option<bool>,
    pub ignore_client_uids: Option<bool>,
    /// `stash-agent-options` (dhcpd.conf(5)): whether a DHCPACK keeps the request's relay
    /// agent information on the lease for unicast renewals (ISC `ack_lease`; on unless false).
    pub stash_agent_options: Option<bool>,
    /// `check-secs-byte-order` (global in ISC): swap a little-endian `secs` before load
    /// balancing (docs/spec/failover.md §11.3).
    pub check_secs_byte_order: Option<bool>,
    /// `server-id-check` (global in ISC, default false): a DHCPREQUEST for a lease of a
    /// failover pool that names another server identifier is dropped (dhcpd.conf(5)).
    pub server_id_check: Option<bool>,
    /// The DDNS parameters ISC evaluates in the lease's scopes.
    pub ddns: DdnsScope,
    /// Option statements evaluated per reply (`engine::scope`): values given by expressions
    /// (`option NAME = EXPR;`) and the `default`, `prepend` and `append` forms, which depend
    /// on what the enclosing scopes set (dhcpd.conf(5) "REFERENCE: OPTION STATEMENTS").
    pub computed_options: Vec<ComputedOption>,
    /// `if`/`elsif`/`else` statements, in declaration order (dhcp-eval(5) "CONDITIONAL
    /// BEHAVIOUR"). A taken branch's body is a scope of its own that acts just inside this one.
    pub conditionals: Vec<Conditional>,
    /// `log (PRIORITY, EXPR);` statements, executed for each reply built in this scope.
    pub logs: Vec<LogStatement>,
    /// `set NAME = EXPR;` and `unset NAME;`, in order: the lease's variables (dhcp-eval(5)
    /// "REFERENCE: DYNAMIC DNS UPDATES"/"VARIABLES"), written to the lease file on commit.
    pub variables: Vec<VariableStatement>,
    /// `execute ("COMMAND", ARG, …);` statements (dhcp-eval(5) "EXECUTE").
    pub executes: Vec<ExecuteStatement>,
    /// `on commit|expiry|release { … }` (dhcpd.conf(5) "EVENTS"): the body is a scope of its
    /// own, executed when the event happens to a lease of this scope.
    pub events: Vec<EventStatement>,
    /// `switch (EXPR) { case …: … }` statements (dhcp-eval(5) "CONDITIONAL BEHAVIOUR:
    /// SWITCH"), in declaration order.
    pub switches: Vec<Switch>,
    /// Option statements of spaces other than dhcp (`option SPACE.NAME VALUE;` and the
    /// `supersede`/`default`/`prepend`/`append` forms), in declaration order; sent inside the
    /// option that encapsulates their space, or as DHCP options from a `site-option-space`
    /// (`engine::encapsulation`).
    pub space_options: Vec<SpaceOption>,
    /// `vendor-option-space NAME;`: option 43 is built from this space's options when no
    /// value of its own is set (dhcp-options(5) "VENDOR ENCAPSULATED OPTIONS").
    pub vendor_option_space: Option<crate::config::options::OptionSpace>,
    /// `site-option-space "NAME";`: DHCP option codes from the space's lowest code (224 at
    /// most, RFC 3942) up are taken from this space instead (dhcpd.conf(5)).
    pub site_option_space: Option<crate::config::options::OptionSpace>,
    /// `dynamic-bootp-lease-length N;`: seconds a dynamic BOOTP lease lasts (ISC default:
    /// for ever); `dynamic-bootp-lease-cutoff T;`: the date (seconds since the epoch) every
    /// dynamic BOOTP lease ends, which wins (`engine::request::bootp`).
    pub dynamic_bootp_lease_length: Option<u32>,
    pub dynamic_bootp_lease_cutoff: Option<u32>,
    /// `local-port N;` (global in ISC, `postconf_initialization`): the UDP port the server
    /// listens on, which overrides `-p` (dhcpd.conf(5)); clients are answered on the next.
    pub local_port: Option<u16>,
    /// `remote-port N;` (global in ISC, `postconf_initialization`): the UDP port clients are
    /// answered on, instead of the server's port from the command line + 1 (dhcpd.conf(5)).
    /// Replies through a relay still go to the server port.
    pub remote_port: Option<u16>,
    /// `local-address A;` (global in ISC, `postconf_initialization`): the source address of
    /// the replies ISC's LPF build sends through its fallback UDP socket, which it binds to A
    /// (common/socket.c `if_register_socket`): replies through a relay, DHCPACKs unicast to a
    /// renewing client's ciaddr and DHCPINFORM replies (`net::ports::ReplySource`).
    pub local_address: Option<std::net::Ipv4Addr>,
    /// `get-lease-hostnames flag;` (ISC `ack_lease`): a DHCPOFFER or DHCPACK without a
    /// `host-name` option gets the address's reverse DNS name (`crate::reverse_names`).
    pub get_lease_hostnames: Option<bool>,
    /// `infinite-is-reserved flag;` (ISC `ack_lease`): a client asking for an infinite lease
    /// time (option 51 = 0xffffffff) gets its lease marked `reserved`.
    pub infinite_is_reserved: Option<bool>,
    /// `adaptive-lease-time-threshold PCT;` (ISC `ack_lease`): while the pool is at least PCT
    /// percent in use (1-99; other values do nothing), leases are cut to `min-lease-time`.
    pub adaptive_lease_time_threshold: Option<u8>,
    /// The statements above that ISC executes in order (`execute_statements`), in file order:
    /// options of every form, `set`/`unset`, `log`, `execute`, `on`, `switch`, `if`, and where
    /// the parameters written after an `if` or `switch` take effect again ([`Step::Parameters`]).
    pub steps: Vec<Step>,
    /// `define NAME (ARGS) { … }`: indices into [`Config::functions`]; executing one binds
    /// the function to its name among the variables (ISC `define_statement`).
    pub defines: Vec<usize>,
    /// `return EXPR;` and `eval EXPR;`, evaluated where they stand.
    pub evaluations: Vec<Evaluation>,
    /// `add "CLASS";` (ISC `add_statement`): puts the request in that class when executed.
    pub adds: Vec<ClassId>,
}

/// `return EXPR;` (`returns`) or `eval EXPR;`: ISC evaluates both; `return` inside a function
/// call ends it with the value when the value is not null (execute.c `return_statement`; the
/// statement loop stops once a result is set), elsewhere the value is dropped.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub expression: crate::config::expr::Expr,
    pub returns: bool,
}

/// A function of `define NAME (PARAMETERS) { BODY }` (dhcp-eval(5); ISC parse.c
/// `define_statement`, tree.c `expr_funcall`).
#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    pub name: String,
    pub parameters: Vec<String>,
    /// The body's statements, a scope of the arena that no stack ever holds.
    pub body: ScopeId,
}

/// One statement of a scope in execution order: an index into the scope's list of that kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Option(usize),
    ComputedOption(usize),
    SpaceOption(usize),
    Variable(usize),
    Log(usize),
    Execute(usize),
    Event(usize),
    Switch(usize),
    Conditional(usize),
    /// `define`: index into [`Scope::defines`].
    Define(usize),
    /// `return` / `eval`: index into [`Scope::evaluations`].
    Evaluate(usize),
    /// `add`: index into [`Scope::adds`].
    Add(usize),
    /// `break;` (ISC `break_statement`): ends the statement list it is in (a `switch` case,
    /// an `if` body, a scope's statements); what follows it in that list never runs.
    Break,
    /// The parameters (`filename`, `default-lease-time`, …) written after an `if` or `switch`
    /// up to the next one, kept in a scope of their own (child of this one) besides this
    /// scope's: executed here, they override what the body before them set, as ISC's
    /// `supersede` of a later statement does. The scope itself holds every parameter, the last
    /// statement's value, for readers that do not execute statements.
    Parameters(ScopeId),
}

#[derive(Clone, Debug, PartialEq)]
pub enum VariableStatement {
    Set(String, crate::config::expr::Expr),
    Unset(String),
}

/// `execute`: the command (a constant path, ISC requires a string) and its arguments, data or
/// numeric expressions evaluated when the statement runs.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecuteStatement {
    pub command: String,
    pub arguments: Vec<crate::config::expr::Expr>,
}

/// `switch (SUBJECT) { case VALUE: … [break;] … default: … }`: execution starts at the first
/// `case` whose constant equals the subject (else at `default`) and runs on through the
/// following segments until a `break` or the end (ISC `statement.c` `find_matching_case`).
#[derive(Clone, Debug, PartialEq)]
pub struct Switch {
    pub subject: crate::config::expr::Expr,
    /// Each `case` constant and the segment it starts.
    pub cases: Vec<(crate::config::expr::Expr, usize)>,
    /// The segment `default:` starts.
    pub default: Option<usize>,
    pub segments: Vec<SwitchSegment>,
}

/// The statements between two labels (or a label and a `break`), as a scope of their own.
#[derive(Clone, Debug, PartialEq)]
pub struct SwitchSegment {
    pub body: ScopeId,
    /// The segment ends with `break;`: execution stops there.
    pub breaks: bool,
}

/// Which lease events an `on` statement names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaseEvents {
    pub commit: bool,
    pub expiry: bool,
    pub release: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventStatement {
    pub events: LeaseEvents,
    pub body: ScopeId,
    /// The body's text, its tokens as the lease file writes statements
    /// (`lease::file::write::render_tokens`): what a lease keeps of an `on expiry`/`on
    /// release` executed at its DHCPACK (ISC `lease->on_star`, written by db.c `write_lease`),
    /// and what finds the statement again after a reload or a restart. `None` when the body
    /// spans an `include`.
    pub text: Option<std::sync::Arc<str>>,
}

/// An option statement of a space other than dhcp.
#[derive(Clone, Debug, PartialEq)]
pub struct SpaceOption {
    pub space: crate::config::options::OptionSpace,
    /// The code in its space (as wide as the space's `code width`).
    pub code: u32,
    pub form: OptionForm,
    pub value: OptionValue,
}

impl Scope {
    /// Whether the scope holds statements evaluated per request (`engine::scope`): what makes
    /// a reply depend on more than the scope's constants.
    pub fn has_executable_statements(&self) -> bool {
        !self.conditionals.is_empty()
            || !self.switches.is_empty()
            || !self.variables.is_empty()
            || !self.executes.is_empty()
            || !self.events.is_empty()
            || !self.computed_options.is_empty()
            || !self.logs.is_empty()
            || !self.defines.is_empty()
            || !self.evaluations.is_empty()
            || !self.adds.is_empty()
            || self.filename_expression.is_some()
            || self.server_name_expression.is_some()
            || self.ddns.hostname_expression.is_some()
            || self.ddns.domain_name_expression.is_some()
            || self.ddns.rev_domain_name_expression.is_some()
    }
}

/// One `if` statement with its `elsif` and `else` branches: the first branch whose condition
/// is true (an `else` has none) is taken; null and false both pass to the next branch (ISC
/// `statement.c` `if_statement`).
#[derive(Clone, Debug, PartialEq)]
pub struct Conditional {
    pub branches: Vec<Branch>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Branch {
    /// `None` for `else`.
    pub condition: Option<crate::config::expr::Expr>,
    /// The body's scope in the arena; its parent is the scope holding the `if`.
    pub body: ScopeId,
}

/// How an option statement combines with what scopes executed before it set (ISC executes the
/// scopes from the global one inwards, `execute_statements_in_scope`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionForm {
    /// `option` and `supersede`: replaces any earlier value.
    Supersede,
    /// `default`: used only when no earlier statement set the option.
    Default,
    /// `prepend`: before the earlier value.
    Prepend,
    /// `append`: after the earlier value.
    Append,
}

/// An option statement the engine evaluates per reply.
#[derive(Clone, Debug, PartialEq)]
pub struct ComputedOption {
    pub code: u8,
    pub form: OptionForm,
    /// A constant wire value or a data expression; an expression that evaluates to null sets
    /// nothing (ISC `evaluate_option_cache` fails and the option is not sent).
    pub value: OptionValue,
    /// The option is a compressed domain-name list (`domain-list compressed`, e.g. 119):
    /// `prepend`/`append` join the lists and compress them again (ISC `expr_concat_dclist`).
    pub compressed_domain_list: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OptionValue {
    Constant(Vec<u8>),
    Expression(crate::config::expr::Expr),
}

/// Priority of a `log` statement (dhcp-eval(5) "LOGGING").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogPriority {
    Fatal,
    Error,
    Info,
    Debug,
}

/// `log (PRIORITY, EXPR);`: the data expression is written to the log when executed; a null
/// value writes nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct LogStatement {
    pub priority: LogPriority,
    pub text: crate::config::expr::Expr,
}

/// The dynamic DNS parameters of one scope (dhcpd.conf(5) "DYNAMIC DNS UPDATES"), each
/// evaluated by ISC in the scopes of the lease being acknowledged (server/ddns.c
/// `ddns_updates`). `None` means "not set here". The expression forms (`ddns-hostname = …;`)
/// are evaluated per reply.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DdnsScope {
    /// `ddns-updates` (default on).
    pub updates: Option<bool>,
    /// `ddns-domainname` (default: the `domain-name` option given to the client).
    pub domain_name: Option<String>,
    /// `ddns-rev-domainname` (default `in-addr.arpa.`).
    pub rev_domain_name: Option<String>,
    /// `ddns-hostname` (default: the client's FQDN host label, its host-name option, or the
    /// configured `host-name` option).
    pub hostname: Option<String>,
    /// `ddns-ttl` (default half the lease time, at most an hour).
    pub ttl: Option<u32>,
    /// `update-optimization` (default on).
    pub update_optimization: Option<bool>,
    /// `update-static-leases` (default off).
    pub update_static_leases: Option<bool>,
    /// `do-forward-updates` (default on).
    pub do_forward_updates: Option<bool>,
    /// `do-reverse-updates` (default on).
    pub do_reverse_updates: Option<bool>,
    /// `allow|deny|ignore client-updates` or `client-updates FLAG`: `Some(Permission::Allow)`
    /// lets a client that asks to (RFC 4702 S bit clear) update its own A record.
    pub client_updates: Option<Permission>,
    /// `fqdn-reply` (default on): whether option 81 is answered.
    pub fqdn_reply: Option<bool>,
    /// `ddns-hostname = EXPR;`, `ddns-domainname = EXPR;`, `ddns-rev-domainname = EXPR;`:
    /// evaluated per reply (`engine::scope`); a scope sets either the text or the expression.
    pub hostname_expression: Option<crate::config::expr::Expr>,
    pub domain_name_expression: Option<crate::config::expr::Expr>,
    pub rev_domain_name_expression: Option<crate::config::expr::Expr>,
}

/// The DDNS settings ISC reads only from the global scope (server/dhcpd.c
/// `postconf_initialization`: the update style and the conflict mask).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DdnsGlobal {
    /// `ddns-update-style`; `None` is `none`, ISC's default.
    pub style: Option<crate::ddns::Style>,
    /// `update-conflict-detection` (default on).
    pub conflict_detection: Option<bool>,
    /// `ddns-guard-id-must-match` (default on).
    pub guard_id_must_match: Option<bool>,
    /// `zone NAME { primary …; secondary …; key …; }` declarations, in order.
    pub zones: Vec<crate::ddns::ZoneDeclaration>,
}

impl DdnsGlobal {
    /// The conflict flags (server/ddns.c `get_conflict_mask`).
    pub fn policy(&self) -> crate::ddns::Policy {
        crate::ddns::Policy::new(
            self.conflict_detection.unwrap_or(true),
            self.guard_id_must_match.unwrap_or(true),
        )
    }
}

/// `subnet A netmask M { … }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub netmask: Ipv4Addr,
    pub scope: ScopeId,
    /// The shared network this subnet is on (an implicit one when it is not declared inside a
    /// `shared-network`).
    pub shared_network: SharedNetworkId,
}

impl Subnet {
    pub fn contains(&self, address: Ipv4Addr) -> bool {
        let mask = u32::from(self.netmask);
        u32::from(address) & mask == u32::from(self.network) & mask
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !u32::from(self.netmask))
    }
}

/// `shared-network NAME { … }`, or the implicit one around a lone subnet.
#[derive(Clone, Debug, PartialEq)]
pub struct SharedNetwork {
    /// `None` for an implicit shared network.
    pub name: Option<String>,
    pub scope: ScopeId,
    pub subnets: Vec<SubnetId>,
    pub pools: Vec<PoolId>,
}

/// `range [dynamic-bootp] LOW [HIGH];`, inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressRange {
    pub low: Ipv4Addr,
    pub high: Ipv4Addr,
    pub dynamic_bootp: bool,
}

impl AddressRange {
    pub fn contains(&self, address: Ipv4Addr) -> bool {
        (u32::from(self.low)..=u32::from(self.high)).contains(&u32::from(address))
    }

    pub fn len(&self) -> u64 {
        u64::from(u32::from(self.high)) - u64::from(u32::from(self.low)) + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// One entry of a pool's permit list (docs/spec/dhcpd-conf.md §3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PermitKind {
    KnownClients,
    UnknownClients,
    AllClients,
    DynamicBootpClients,
    MembersOf(ClassId),
    /// `after DATE`, seconds since the epoch.
    After(u32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permit {
    pub allow: bool,
    pub kind: PermitKind,
}

/// `pool { … }` (or the implicit pool of `range` statements directly inside a subnet).
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    pub scope: ScopeId,
    pub shared_network: SharedNetworkId,
    /// The subnet the pool was declared in; `None` when declared directly in a shared network.
    pub subnet: Option<SubnetId>,
    pub ranges: Vec<AddressRange>,
    /// Empty means every client is eligible.
    pub permits: Vec<Permit>,
    /// `failover peer "NAME";` (inherited from the shared network unless `no failover peer;`).
    pub failover_peer: Option<String>,
}

/// A hardware address: ARP type (1 = Ethernet) and up to 16 bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HardwareAddress {
    pub htype: u8,
    pub address: Vec<u8>,
}

/// `host NAME { … }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    pub name: String,
    pub scope: ScopeId,
    pub hardware: Option<HardwareAddress>,
    /// `option dhcp-client-identifier …;` inside the host, which identifies the client.
    pub client_id: Option<Vec<u8>>,
    /// `fixed-address`; the one inside the client's subnet is used.
    pub fixed_addresses: Vec<Ipv4Addr>,
}

/// `host-identifier option NAME DATA;` in a host: the host is the client whose request carries
/// that option with that value (ISC `find_hosts_by_option`, tried after the client identifier
/// and the hardware address).
#[derive(Clone, Debug, PartialEq)]
pub struct HostIdentifier {
    pub host: HostId,
    /// An option of the dhcp space or a relay agent sub-option (`agent.circuit-id`, …).
    pub option: crate::config::expr::OptionRef,
    pub data: Vec<u8>,
}

/// `class "NAME" { … }` with its subclasses.
#[derive(Clone, Debug, PartialEq)]
pub struct Class {
    pub name: String,
    pub scope: ScopeId,
    /// `match if EXPR;` — a member when it evaluates true.
    pub match_if: Option<crate::config::expr::Expr>,
    /// `match EXPR;` or `spawn with EXPR;` — the data a subclass must equal.
    pub match_data: Option<crate::config::expr::Expr>,
    /// `spawn with EXPR;` rather than `match EXPR;`: a client whose data no declared subclass
    /// has joins the subclass of that data, made for it (dhcpd.conf(5) "SPAWNING CLASSES",
    /// ISC `check_collection`).
    pub spawning: bool,
    /// `lease limit N;` (0: none): at most N leases billed to the class at a time
    /// (dhcpd.conf(5) "PER-CLASS LIMITS ON DYNAMIC LEASES"). Spawned subclasses take it.
    pub lease_limit: u32,
    /// `subclass "NAME" DATA [{ … }]`, in declaration order.
    pub subclasses: Vec<Subclass>,
}

/// `subclass "CLASS" DATA [{ … }]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Subclass {
    pub data: Vec<u8>,
    /// The subclass's own scope, if it has a body.
    pub scope: Option<ScopeId>,
    /// Its `lease limit`, else its class's as declared before it (ISC copies the class's limit
    /// when it makes the subclass, confpars.c `parse_class_declaration`).
    pub lease_limit: u32,
}

impl Class {
    /// The subclass declared (or, for a spawning class, made) for `data`, if any.
    pub fn subclass(&self, data: &[u8]) -> Option<&Subclass> {
        self.subclasses
            .iter()
            .find(|subclass| subclass.data.as_slice() == data)
    }
}

/// `failover peer "NAME" { … }` (docs/spec/failover.md §13). Only parsed and validated here; the failover
/// issue implements the protocol.
#[derive(Clone, Debug, PartialEq)]
pub struct FailoverPeerConfig {
    pub name: String,
    pub primary: bool,
    pub address: Option<Ipv4Addr>,
    pub port: u16,
    pub peer_address: Option<Ipv4Addr>,
    pub peer_port: u16,
    pub max_response_delay: u32,
    pub max_unacked_updates: u32,
    pub mclt: u32,
    /// `split N` (0-256) or `hba` converted to the 32-byte bitmap, primary's buckets set.
    pub hba: Option<[u8; 32]>,
    pub load_balance_max_seconds: u32,
    pub max_lease_misbalance: u32,
    pub max_lease_ownership: u32,
    pub min_balance: u32,
    pub max_balance: u32,
    pub auto_partner_down: u32,
}

/// `key NAME { algorithm ALG; secret "BASE64"; }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub name: String,
    pub algorithm: String,
    /// The decoded secret.
    pub secret: Vec<u8>,
}

/// A non-fatal diagnostic (statements tagged "later" in docs/spec/dhcpd-conf.md): printed as
/// `file:line:column: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub location: String,
    pub message: String,
}

/// The whole validated configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// `scopes[0]` is the global scope.
    pub scopes: Vec<Scope>,
    pub shared_networks: Vec<SharedNetwork>,
    pub subnets: Vec<Subnet>,
    pub pools: Vec<Pool>,
    pub hosts: Vec<Host>,
    /// The hosts' `host-identifier option` statements, in declaration order.
    pub host_identifiers: Vec<HostIdentifier>,
    pub classes: Vec<Class>,
    /// The functions of `define` statements, in the order read.
    pub functions: Vec<Function>,
    /// Some class or subclass says `lease limit` (ISC `have_billing_classes`): only then are
    /// leases billed to classes at all (server/dhcp.c `ack_lease`).
    pub billing_classes: bool,
    /// Some expression reads `packet(…)`: the daemon keeps each request's datagram for it
    /// (`engine::Request::raw`).
    pub reads_packet: bool,
    pub failover_peers: Vec<FailoverPeerConfig>,
    /// `interface NAME;` statements written in a shared network or one of its subnets
    /// (confpars.c): ISC listens on that interface and takes its packets as from that network.
    pub interfaces: Vec<(String, SharedNetworkId)>,
    pub keys: Vec<Key>,
    pub omapi_port: Option<u16>,
    pub omapi_key: Option<String>,
    pub lease_file_name: Option<String>,
    pub pid_file_name: Option<String>,
    pub log_facility: Option<String>,
    /// `option xdhcpd.metrics-listen "ADDR:PORT";` (the Prometheus endpoint; `--metrics-listen`
    /// overrides it).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `option xdhcpd.bulk-leasequery-listen "ADDR:PORT";`: where RFC 6926 bulk leasequery
    /// connections are accepted (TCP, normally port 67). ISC 4.4 has no bulk leasequery, so
    /// it is off without this setting.
    pub bulk_leasequery_listen: Option<std::net::SocketAddr>,
    /// `option xdhcpd.lease-database "postgresql://…";`: the PostgreSQL database of the
    /// leases (`--lease-database` overrides it). The lease history goes there too unless
    /// `history-database` names another.
    pub lease_database: Option<String>,
    /// `option xdhcpd.history-database "postgresql://…";`: where the lease history goes
    /// (`crate::history`), whatever keeps the leases.
    pub history_database: Option<String>,
    /// `option xdhcpd.history-retention-days N;`: days of lease history kept (default
    /// `crate::history::DEFAULT_RETENTION_DAYS`).
    pub history_retention_days: Option<u32>,
    /// `lease-id-format hex` (default octal) for `uid` in the lease file.
    pub lease_id_format_hex: bool,
    /// `db-time-format local` (default `default`): how times are written to the lease file.
    pub db_time_format_local: bool,
    /// `option xdhcpd.*` starvation-defence settings (config/xdhcpd.rs).
    pub starvation: super::xdhcpd::StarvationConfig,
    /// `option xdhcpd.omapi-*` settings of the OMAPI listener (config/xdhcpd.rs).
    pub omapi: super::xdhcpd::OmapiSettings,
    /// `option xdhcpd.control-api-*`: the JSON control API (`crate::control_api`).
    pub control_api: super::xdhcpd::ControlApiSettings,
    /// `ddns-update-style`, the conflict flags and the `zone` declarations.
    pub ddns: DdnsGlobal,
    pub warnings: Vec<Warning>,
    /// The option spaces' layouts, for building encapsulated options (`config::spaces`).
    pub option_spaces: super::spaces::OptionSpaces,
    /// The address map, built on first lookup ([`Config::addresses`]).
    pub address_index: super::addresses::AddressIndexCell,
}

impl Config {
    pub fn scope(&self, id: ScopeId) -> &Scope {
        &self.scopes[id.0 as usize]
    }

    /// Some scope says `one-lease-per-client true;`: a client's DHCPREQUEST may release its
    /// leases in any shared network (ISC walks the client's hash chains over every lease), so
    /// the lease store must be one shard (`lease::shards::shard_count`).
    pub fn releases_other_leases(&self) -> bool {
        self.scopes
            .iter()
            .any(|scope| scope.one_lease_per_client == Some(true))
    }

    /// The chain of scopes from `id` up to the global scope, most specific first.
    pub fn scope_chain(&self, id: ScopeId) -> impl Iterator<Item = &Scope> + '_ {
        let mut next = Some(id);
        std::iter::from_fn(move || {
            let current = self.scopes.get(next?.0 as usize)?;
            next = current.parent;
            Some(current)
        })
    }

    /// The subnet containing `address`, most specific (longest mask) first: one binary search
    /// of the address map.
    pub fn subnet_for(&self, address: Ipv4Addr) -> Option<SubnetId> {
        self.addresses().subnet_for(address)
    }

    /// The sorted table of subnets and pool ranges ([`super::addresses`]), built on first use.
    pub fn addresses(&self) -> &std::sync::Arc<super::addresses::AddressIndex> {
        self.address_index.get_or_build(self)
    }

    pub fn subnet(&self, id: SubnetId) -> &Subnet {
        &self.subnets[id.0 as usize]
    }

    pub fn pool(&self, id: PoolId) -> &Pool {
        &self.pools[id.0 as usize]
    }

    pub fn shared_network(&self, id: SharedNetworkId) -> &SharedNetwork {
        &self.shared_networks[id.0 as usize]
    }

    pub fn host(&self, id: HostId) -> &Host {
        &self.hosts[id.0 as usize]
    }

    pub fn class(&self, id: ClassId) -> &Class {
        &self.classes[id.0 as usize]
    }
}
