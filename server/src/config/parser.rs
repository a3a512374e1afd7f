//! The dhcpd.conf statement parser (ISC `server/confpars.c`, `common/parse.c`): a token cursor
//! over a stack of files (for `include`), the primitive value parsers, and the driver that runs
//! the statement parser and then the validation pass.
//!
//! Submodules: `statements` (block bodies and parameters), `declarations` (subnet, pool, host,
//! class, key, include…), `values` (`option` statements and their wire encoding), `failover`
//! (`failover peer`), `validate` (cross-declaration rules run after parsing).

mod boot_parameters;
mod ddns;
mod declarations;
mod failover;
mod keywords;
mod numbers;
mod order;
mod ranges;
mod server_space;
mod spaces;
mod statements;
mod switch;
mod validate;
mod values;
mod xdhcpd;

use numbers::hex_octet;
pub(crate) use numbers::{convert_num, parse_number_text, ConvertError};

use std::collections::HashMap;
use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::lexer::{Lexer, SourceMap, Span, Token, TokenKind};
use super::model::{
    AddressRange, Config, PoolId, Scope, ScopeId, SharedNetworkId, SubnetId, Warning,
};
use super::options::OptionTable;
use super::{ConfigError, ConfigErrorKind, ConfigErrors};

pub(crate) type ParseResult<T> = Result<T, ConfigError>;

/// Deepest nesting of blocks and of parenthesised expressions accepted: real configs nest a few
/// levels; the bound keeps recursion on hostile input far from the stack's end.
pub(crate) const MAX_NESTING: u32 = 64;

/// Include files larger than this are refused (a config is kilobytes; this guards against
/// `include "/some/huge/file"`).
const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;
/// Deepest include nesting accepted (ISC has no limit; a loop is caught separately).
const MAX_INCLUDE_DEPTH: usize = 32;
/// After this many errors the rest are not worth reporting.
const MAX_ERRORS: usize = 200;

/// Reads a configuration file, refusing non-regular files (devices, FIFOs) and huge ones.
pub(crate) fn read_config_file(path: &Path) -> Result<Vec<u8>, String> {
    let metadata = std::fs::metadata(path).map_err(|error| error.to_string())?;
    if !metadata.is_file() {
        return Err("not a regular file".to_string());
    }
    let file = std::fs::File::open(path).map_err(|error| error.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| error.to_string())?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(format!("larger than {MAX_FILE_SIZE} bytes"));
    }
    Ok(bytes)
}

/// Parses `bytes` (the contents of `path`, named `name` in diagnostics) and validates the result.
pub(crate) fn parse_bytes(
    bytes: &[u8],
    name: &str,
    path: &Path,
    resolver: super::resolve::Resolver,
) -> Result<Config, ConfigErrors> {
    let mut parser = Parser::new();
    parser.resolver = resolver;
    let file = parser.sources.add(name);
    let tokens = parser.tokenize(bytes, file);
    parser.frames.push(Frame {
        tokens,
        position: 0,
        directory: path.parent().map(Path::to_path_buf),
        identity: std::fs::canonicalize(path).ok(),
    });
    parser.parse_global();
    parser.validate();
    if parser.errors.is_empty() {
        Ok(parser.config)
    } else {
        parser.errors.truncate(MAX_ERRORS);
        Err(ConfigErrors {
            errors: parser.errors,
        })
    }
}

/// The statements a host or group body may hold when it comes from outside dhcpd.conf (OMAPI's
/// `statements`, a dhcpd.leases host record): ISC parses them with `parse_executable_statements`,
/// which takes option statements and the server-space parameters but no declarations. Anything
/// else (`include` above all: it would read a file named by an OMAPI client) is refused.
const LIST_STATEMENTS: &[&str] = &[
    "option",
    "supersede",
    "default",
    "prepend",
    "append",
    "if",
    "on",
    "set",
    "unset",
    "log",
    "execute",
    "return",
    "eval",
    "add",
    "break",
    "authoritative",
    "not",
    "allow",
    "deny",
    "ignore",
    "default-lease-time",
    "max-lease-time",
    "min-lease-time",
    "abandon-lease-time",
    "use-host-decl-names",
    "one-lease-per-client",
    "ping-check",
    "always-broadcast",
    "echo-client-id",
    "ignore-client-uids",
    "min-secs",
    "dhcp-cache-threshold",
    "server-identifier",
    "next-server",
    "filename",
    "server-name",
];

/// Parses a statement list (see [`LIST_STATEMENTS`]) into a scope of its own (no parent), with
/// the warnings about statements accepted but not applied.
pub(crate) fn parse_statement_list(
    text: &[u8],
    name: &str,
) -> Result<(Scope, Vec<Warning>), ConfigErrors> {
    let mut parser = Parser::new();
    let file = parser.sources.add(name);
    let tokens = parser.tokenize(text, file);
    parser.frames.push(Frame {
        tokens,
        position: 0,
        directory: None,
        identity: None,
    });
    let scope = parser.new_scope(ScopeId::GLOBAL);
    let block = Block::global().nested(BlockKind::Group, scope);
    loop {
        if parser.errors.len() > MAX_ERRORS {
            break;
        }
        let token = parser.peek().clone();
        match &token.kind {
            TokenKind::Eof => break,
            TokenKind::Name(word)
                if LIST_STATEMENTS.contains(&word.to_ascii_lowercase().as_str()) =>
            {
                parser.statement_with_recovery(block);
            }
            TokenKind::Punct(b';') => {
                parser.bump();
            }
            _ => {
                let before = parser.position_marker();
                let error = parser.expected("an option statement or a parameter");
                parser.errors.push(error);
                parser.recover();
                // Never loop on the same token (a stray `}`).
                if parser.position_marker() == before {
                    parser.bump();
                }
            }
        }
    }
    if !parser.errors.is_empty() {
        parser.errors.truncate(MAX_ERRORS);
        return Err(ConfigErrors {
            errors: parser.errors,
        });
    }
    let mut scope = std::mem::take(parser.scope_mut(scope));
    scope.parent = None;
    Ok((scope, std::mem::take(&mut parser.config.warnings)))
}

/// The body of an `on` statement a lease kept (its text, as the lease file holds it) parsed on
/// its own when no statement of the running configuration has that text: the statements as in
/// an `on { … }` of dhcpd.conf, in an arena of their own (`None` when they do not parse, e.g.
/// they name an option the configuration defined).
pub(crate) fn parse_event_body(text: &str) -> Option<(Config, ScopeId)> {
    let mut parser = Parser::new();
    let file = parser.sources.add("lease event statements");
    let tokens = parser.tokenize(text.as_bytes(), file);
    // A lease file's statements never read other files.
    let includes = tokens
        .iter()
        .any(|token| matches!(&token.kind, TokenKind::Name(word) if word.eq_ignore_ascii_case("include")));
    if !parser.errors.is_empty() || includes {
        return None;
    }
    parser.frames.push(Frame {
        tokens,
        position: 0,
        directory: None,
        identity: None,
    });
    let scope = parser.new_scope(ScopeId::GLOBAL);
    let block = Block::global().nested(BlockKind::Event, scope);
    while parser.errors.is_empty() {
        let token = parser.peek().clone();
        match &token.kind {
            TokenKind::Eof => break,
            _ => parser.statement_with_recovery(block),
        }
    }
    parser.errors.is_empty().then_some((parser.config, scope))
}

/// One file being read: its tokens (ending with `Eof`) and where reading is.
pub(crate) struct Frame {
    tokens: Vec<Token>,
    position: usize,
    /// The directory of the file, for relative includes.
    directory: Option<PathBuf>,
    /// The canonical path, for include-loop detection.
    identity: Option<PathBuf>,
}

/// Where the parser is: the kind of block and the declarations that enclose it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockKind {
    Global,
    Group,
    SharedNetwork,
    Subnet,
    Pool,
    Host,
    Class,
    Subclass,
    /// The body of `if`, `elsif` or `else`: executable statements, evaluated per reply.
    Conditional,
    /// The body of `on commit|expiry|release`: executable statements run at the event.
    Event,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Block {
    pub kind: BlockKind,
    pub scope: ScopeId,
    pub shared_network: Option<SharedNetworkId>,
    pub subnet: Option<SubnetId>,
    pub pool: Option<PoolId>,
    pub host: Option<super::model::HostId>,
    pub class: Option<super::model::ClassId>,
}

impl Block {
    fn global() -> Self {
        Self {
            kind: BlockKind::Global,
            scope: ScopeId::GLOBAL,
            shared_network: None,
            subnet: None,
            pool: None,
            host: None,
            class: None,
        }
    }

    fn nested(self, kind: BlockKind, scope: ScopeId) -> Self {
        Self {
            kind,
            scope,
            ..self
        }
    }
}

/// Facts kept beside the [`Config`] for validation and diagnostics.
#[derive(Default)]
pub(crate) struct SideTables {
    /// Each range as declared, with its pool and where it was written.
    pub ranges: Vec<(PoolId, AddressRange, Span)>,
    /// Where each pool starts (index = pool id).
    pub pool_spans: Vec<Span>,
    /// `no failover peer;` was given in the pool (index = pool id).
    pub pool_no_failover: Vec<bool>,
    /// Where each subnet was declared (index = subnet id).
    pub subnet_spans: Vec<Span>,
    /// Where each failover peer was declared (index = peer position).
    pub peer_spans: Vec<Span>,
    /// `failover peer "NAME";` inside a shared network (index = shared-network id).
    pub shared_network_peers: Vec<Option<String>>,
    /// The implicit pools of ranges written directly inside a subnet, in creation order
    /// (`ranges::implicit_pool`).
    pub implicit_pools: HashMap<SubnetId, Vec<PoolId>>,
    /// `omapi-key NAME;`, checked against the keys once all are declared.
    pub omapi_key_span: Option<Span>,
    /// ISC's "Host declarations are global" warning was given (it gives it once).
    pub warned_global_hosts: bool,
    /// Hosts (by index) that had a `fixed-address` statement.
    pub hosts_with_fixed_address: std::collections::HashSet<u32>,
    /// The class body being read had a `match if` / a `match` or `spawn with` (ISC allows one
    /// of each per declaration).
    pub class_body_matches: (bool, bool),
    /// `vendor-option-space` / `site-option-space` names, looked up after the whole file.
    pub pending_space_names: Vec<spaces::PendingSpaceName>,
}

pub(crate) struct Parser {
    pub frames: Vec<Frame>,
    pub sources: SourceMap,
    pub config: Config,
    pub errors: Vec<ConfigError>,
    pub options: OptionTable,
    pub side: SideTables,
    /// The last token taken, for spans of errors found after a statement was read.
    pub last_span: Span,
    /// The last token taken was `;` or `}`: an error raised now concerns a statement already
    /// read completely, so there is nothing to skip.
    pub after_terminator: bool,
    /// Current depth of nested blocks and expressions (bounded by [`MAX_NESTING`]).
    pub nesting: u32,
    /// Looks up host names (`config::resolve`).
    pub resolver: super::resolve::Resolver,
}

impl Parser {
    fn new() -> Self {
        let config = Config {
            scopes: vec![Scope::default()],
            ..Config::default()
        };
        Self {
            frames: Vec::new(),
            sources: SourceMap::new(),
            config,
            errors: Vec::new(),
            options: OptionTable::standard(),
            side: SideTables::default(),
            last_span: Span::default(),
            after_terminator: false,
            nesting: 0,
            resolver: super::resolve::offline,
        }
    }

    /// Tokenizes a whole file, reporting (and stepping over) bytes that are not tokens.
    fn tokenize(&mut self, bytes: &[u8], file: super::lexer::FileId) -> Vec<Token> {
        let mut lexer = Lexer::new(bytes, file);
        let mut tokens = Vec::new();
        loop {
            match lexer.next_token() {
                Ok(token) => {
                    let end = token.kind == TokenKind::Eof;
                    tokens.push(token);
                    if end {
                        return tokens;
                    }
                }
                Err(error) => {
                    let span = error.span();
                    self.push_error(span, ConfigErrorKind::Lex(error));
                }
            }
        }
    }

    // ---- cursor ------------------------------------------------------------------------

    /// Drops finished include files so that the next token comes from the includer.
    fn normalize(&mut self) {
        while self.frames.len() > 1 {
            let finished = self.frames.last().is_none_or(|frame| {
                frame
                    .tokens
                    .get(frame.position)
                    .is_none_or(|t| t.kind == TokenKind::Eof)
            });
            if finished {
                self.frames.pop();
            } else {
                break;
            }
        }
    }

    /// The next token without taking it.
    pub fn peek(&mut self) -> &Token {
        self.normalize();
        self.peek_at(0)
    }

    /// The token `offset` places ahead in the current file (the file's `Eof` past its end).
    pub fn peek_at(&self, offset: usize) -> &Token {
        static EOF: Token = Token {
            kind: TokenKind::Eof,
            span: Span {
                file: 0,
                line: 0,
                column: 0,
            },
        };
        let Some(frame) = self.frames.last() else {
            return &EOF;
        };
        let index = (frame.position + offset).min(frame.tokens.len().saturating_sub(1));
        frame.tokens.get(index).unwrap_or(&EOF)
    }

    /// Takes the next token (stays on `Eof`).
    pub fn bump(&mut self) -> Token {
        self.normalize();
        let token = self.peek_at(0).clone();
        if token.kind != TokenKind::Eof {
            if let Some(frame) = self.frames.last_mut() {
                frame.position += 1;
            }
        }
        self.last_span = token.span;
        self.after_terminator = matches!(token.kind, TokenKind::Punct(b';' | b'}'));
        token
    }

    pub fn at_keyword(&mut self, keyword: &str) -> bool {
        self.peek().is_keyword(keyword)
    }

    pub fn at_punct(&mut self, punct: u8) -> bool {
        self.peek().is_punct(punct)
    }

    pub fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.at_keyword(keyword);
        if found {
            self.bump();
        }
        found
    }

    pub fn eat_punct(&mut self, punct: u8) -> bool {
        let found = self.at_punct(punct);
        if found {
            self.bump();
        }
        found
    }

    // ---- diagnostics -------------------------------------------------------------------

    pub fn error_at(&self, span: Span, kind: ConfigErrorKind) -> ConfigError {
        ConfigError {
            location: self.sources.locate(span),
            kind,
        }
    }

    pub fn push_error(&mut self, span: Span, kind: ConfigErrorKind) {
        let error = self.error_at(span, kind);
        self.errors.push(error);
    }

    /// "expected `what`, found <next token>" at the next token.
    pub fn expected(&mut self, what: &str) -> ConfigError {
        let token = self.peek().clone();
        self.error_at(
            token.span,
            ConfigErrorKind::Expected {
                expected: what.to_string(),
                found: token.kind.to_string(),
            },
        )
    }

    /// A semantic error: "expected `expected`, found `found`" at `span`.
    pub fn invalid(
        &self,
        span: Span,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> ConfigError {
        self.error_at(
            span,
            ConfigErrorKind::Expected {
                expected: expected.into(),
                found: found.into(),
            },
        )
    }

    pub fn warn(&mut self, span: Span, message: impl Into<String>) {
        let location = self.sources.locate(span);
        self.config.warnings.push(Warning {
            location,
            message: message.into(),
        });
    }

    /// After an error: skip to just past the next `;` at this nesting level, past a complete
    /// `{ … }` block, or up to (not past) the `}` closing the enclosing block.
    pub fn recover(&mut self) {
        let mut depth = 0usize;
        loop {
            let token = self.peek().clone();
            match token.kind {
                TokenKind::Eof => return,
                TokenKind::Punct(b';') if depth == 0 => {
                    self.bump();
                    return;
                }
                TokenKind::Punct(b'{') => depth += 1,
                TokenKind::Punct(b'}') => {
                    if depth == 0 {
                        return;
                    }
                    depth -= 1;
                    if depth == 0 {
                        self.bump();
                        // A `;` right after a block (`key { … };`) belongs to it.
                        self.eat_punct(b';');
                        return;
                    }
                }
                _ => {}
            }
            self.bump();
        }
    }

    /// Skips a statement the parser accepts without interpreting it (tagged "later"): the
    /// tokens up to `;`, or a whole `{ … }` block.
    pub fn skip_statement(&mut self) {
        self.recover();
    }

    // ---- primitive values --------------------------------------------------------------

    pub fn expect_punct(&mut self, punct: u8) -> ParseResult<Span> {
        if self.at_punct(punct) {
            Ok(self.bump().span)
        } else {
            Err(self.expected(&format!("`{}`", char::from(punct))))
        }
    }

    pub fn expect_semicolon(&mut self) -> ParseResult<()> {
        self.expect_punct(b';').map(|_| ())
    }

    pub fn expect_keyword(&mut self, keyword: &str) -> ParseResult<Span> {
        if self.at_keyword(keyword) {
            Ok(self.bump().span)
        } else {
            Err(self.expected(&format!("`{keyword}`")))
        }
    }

    /// A number token as a signed value: decimal, or hex with `0x` (conflex.c numbers).
    pub fn parse_integer(&mut self, what: &str) -> ParseResult<(i64, Span)> {
        let token = self.peek().clone();
        let TokenKind::Number(text) = &token.kind else {
            return Err(self.expected(what));
        };
        let value = parse_number_text(text).ok_or_else(|| self.expected(what))?;
        self.bump();
        Ok((value, token.span))
    }

    /// A number in `min..=max`.
    pub fn parse_number_in(&mut self, what: &str, min: i64, max: i64) -> ParseResult<i64> {
        let (value, span) = self.parse_integer(what)?;
        if value < min || value > max {
            return Err(self.invalid(span, format!("{what} in {min}..={max}"), value.to_string()));
        }
        Ok(value)
    }

    pub fn parse_u32(&mut self, what: &str) -> ParseResult<u32> {
        self.parse_number_in(what, 0, i64::from(u32::MAX))
            .map(|value| value as u32)
    }

    pub fn parse_u16(&mut self, what: &str) -> ParseResult<u16> {
        self.parse_number_in(what, 0, i64::from(u16::MAX))
            .map(|value| value as u16)
    }

    /// An integer option or parameter value as ISC's `convert_num` reads it (common/parse.c):
    /// `0x` hex, a leading `0` octal, else decimal; a leading `-` is allowed whatever the
    /// signedness, down to -2^(bits-1), and up to 2^bits - 1; the result is the two's
    /// complement in `bits` bits (so `default-lease-time -1;` is 0xffffffff, infinite).
    pub fn parse_isc_integer(&mut self, bits: u32, what: &str) -> ParseResult<u32> {
        let token = self.peek().clone();
        let TokenKind::Number(text) = &token.kind else {
            return Err(self.expected(what));
        };
        match convert_num(text, bits) {
            Ok(value) => {
                self.bump();
                Ok(value)
            }
            Err(ConvertError::NotANumber) => Err(self.expected(what)),
            Err(ConvertError::TooLarge) => Err(self.invalid(
                token.span,
                format!("{what} in -{}..={}", 1u64 << (bits - 1), (1u64 << bits) - 1),
                text.clone(),
            )),
        }
    }

    /// Text (ISC format `t`): a quoted string, or one identifier taken as the string
    /// (`option domain-name example;`); a decimal number is not an identifier.
    pub fn parse_text(&mut self, what: &str) -> ParseResult<Vec<u8>> {
        match self.peek().kind.clone() {
            TokenKind::String(bytes) => {
                self.bump();
                Ok(bytes)
            }
            TokenKind::Name(word) => {
                self.bump();
                Ok(word.into_bytes())
            }
            // conflex.c NUMBER_OR_NAME (`3com`, `0a`) is an identifier, NUMBER (`-12`) is not.
            TokenKind::Number(word)
                if !word
                    .strip_prefix('-')
                    .unwrap_or(&word)
                    .bytes()
                    .all(|byte| byte.is_ascii_digit()) =>
            {
                self.bump();
                Ok(word.into_bytes())
            }
            _ => Err(self.expected(what)),
        }
    }

    /// `A.B.C.D` (four numbers 0-255 and three dots).
    pub fn parse_ip(&mut self) -> ParseResult<Ipv4Addr> {
        let mut octets = [0u8; 4];
        for (index, octet) in octets.iter_mut().enumerate() {
            if index > 0 {
                self.expect_punct(b'.')?;
            }
            *octet = self.parse_number_in("an IPv4 address octet", 0, 255)? as u8;
        }
        Ok(Ipv4Addr::from(octets))
    }

    /// An IP address or a host name (docs/spec/dhcpd-conf.md §1 "IP vs hostname"): the
    /// address, or the first address of the name; `None` for a name that does not resolve
    /// (`config::resolve`: ISC leaves such a value out).
    pub fn parse_ip_or_hostname(&mut self) -> ParseResult<Option<Ipv4Addr>> {
        Ok(self
            .parse_ip_or_hostname_all()?
            .and_then(|addresses| addresses.first().copied()))
    }

    /// [`Parser::parse_ip_or_hostname`] with every address of a name (`fixed-address`).
    pub fn parse_ip_or_hostname_all(&mut self) -> ParseResult<Option<Vec<Ipv4Addr>>> {
        let token = self.peek().clone();
        match &token.kind {
            TokenKind::Number(_)
                if self.peek_at(1).is_punct(b'.')
                    && matches!(self.peek_at(2).kind, TokenKind::Number(_)) =>
            {
                self.parse_ip().map(|address| Some(vec![address]))
            }
            TokenKind::Name(_) | TokenKind::Number(_) => {
                let name = self.parse_dotted_name("an IP address or host name")?;
                let addresses = (self.resolver)(&name);
                if addresses.is_none() {
                    self.warn(
                        token.span,
                        format!("`{name}`: host unknown; the value is left out, as ISC does"),
                    );
                }
                Ok(addresses)
            }
            _ => Err(self.expected("an IP address or host name")),
        }
    }

    /// `NAME(.NAME)*`, each part a name or number token.
    pub fn parse_dotted_name(&mut self, what: &str) -> ParseResult<String> {
        let mut name = String::new();
        loop {
            match self.peek().kind.clone() {
                TokenKind::Name(part) | TokenKind::Number(part) => {
                    self.bump();
                    name.push_str(&part);
                }
                _ => return Err(self.expected(what)),
            }
            if self.at_punct(b'.')
                && matches!(
                    self.peek_at(1).kind,
                    TokenKind::Name(_) | TokenKind::Number(_)
                )
            {
                self.bump();
                name.push('.');
            } else {
                // A trailing dot of a fully qualified name.
                if self.at_punct(b'.') {
                    self.bump();
                    name.push('.');
                }
                return Ok(name);
            }
        }
    }

    /// An identifier, dotted name or quoted string (names of hosts, keys, groups, peers).
    pub fn parse_name_or_string(&mut self, what: &str) -> ParseResult<String> {
        match self.peek().kind.clone() {
            TokenKind::String(bytes) => {
                self.bump();
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
            TokenKind::Name(_) | TokenKind::Number(_) => self.parse_dotted_name(what),
            _ => Err(self.expected(what)),
        }
    }

    /// A quoted string's bytes.
    pub fn parse_string(&mut self, what: &str) -> ParseResult<Vec<u8>> {
        match self.peek().kind.clone() {
            TokenKind::String(bytes) => {
                self.bump();
                Ok(bytes)
            }
            _ => Err(self.expected(what)),
        }
    }

    /// True when the next token can start a colon-hex list.
    pub fn at_hex_octet(&mut self) -> bool {
        match &self.peek().kind {
            TokenKind::Name(text) | TokenKind::Number(text) => hex_octet(text).is_some(),
            _ => false,
        }
    }

    /// `xx:xx:…` (common/parse.c `parse_cshl`): one or more hex octets.
    pub fn parse_hex_list(&mut self, what: &str) -> ParseResult<Vec<u8>> {
        let mut bytes = Vec::new();
        loop {
            let token = self.peek().clone();
            let octet = match &token.kind {
                TokenKind::Name(text) | TokenKind::Number(text) => hex_octet(text),
                _ => None,
            };
            match octet {
                Some(octet) => {
                    self.bump();
                    bytes.push(octet);
                }
                None => return Err(self.expected(what)),
            }
            if !self.eat_punct(b':') {
                return Ok(bytes);
            }
        }
    }

    /// Data: a quoted string or a colon-hex list.
    pub fn parse_data(&mut self, what: &str) -> ParseResult<Vec<u8>> {
        if matches!(self.peek().kind, TokenKind::String(_)) {
            self.parse_string(what)
        } else if self.at_hex_octet() {
            self.parse_hex_list(what)
        } else {
            Err(self.expected(what))
        }
    }

    /// `true|false|on|off` (docs/spec/dhcpd-conf.md §4 "flag").
    pub fn parse_flag(&mut self) -> ParseResult<bool> {
        let value = match &self.peek().kind {
            TokenKind::Name(word) => match word.to_ascii_lowercase().as_str() {
                "true" | "on" => Some(true),
                "false" | "off" => Some(false),
                _ => None,
            },
            _ => None,
        };
        match value {
            Some(value) => {
                self.bump();
                Ok(value)
            }
            None => Err(self.expected("`true`, `false`, `on` or `off`")),
        }
    }

    /// A new scope in the arena under `parent`.
    pub fn new_scope(&mut self, parent: ScopeId) -> ScopeId {
        let id = ScopeId(self.config.scopes.len() as u32);
        self.config.scopes.push(Scope {
            parent: Some(parent),
            ..Scope::default()
        });
        id
    }

    pub fn scope_mut(&mut self, id: ScopeId) -> &mut Scope {
        let index = id.0 as usize;
        if index >= self.config.scopes.len() {
            // Unreachable by construction; keep the global scope as a harmless target.
            return &mut self.config.scopes[0];
        }
        &mut self.config.scopes[index]
    }

    /// Opens an included file after `include "PATH";` was read: tried relative to the working
    /// directory as ISC does, then relative to the including file's directory.
    pub fn open_include(&mut self, raw_path: &[u8], span: Span) {
        let text = String::from_utf8_lossy(raw_path).into_owned();
        let mut path = PathBuf::from(&text);
        if path.is_relative() && !path.exists() {
            if let Some(directory) = self.frames.last().and_then(|frame| frame.directory.clone()) {
                let beside = directory.join(&path);
                if beside.exists() {
                    path = beside;
                }
            }
        }
        let identity = std::fs::canonicalize(&path).ok();
        if identity.is_some()
            && self
                .frames
                .iter()
                .any(|frame| frame.identity.is_some() && frame.identity == identity)
        {
            self.push_error(span, ConfigErrorKind::IncludeLoop { path: text });
            return;
        }
        if self.frames.len() >= MAX_INCLUDE_DEPTH {
            self.push_error(span, ConfigErrorKind::IncludeLoop { path: text });
            return;
        }
        match read_config_file(&path) {
            Ok(bytes) => {
                let file = self.sources.add(path.display().to_string());
                let tokens = self.tokenize(&bytes, file);
                self.normalize();
                self.frames.push(Frame {
                    tokens,
                    position: 0,
                    directory: path.parent().map(Path::to_path_buf),
                    identity,
                });
            }
            Err(reason) => self.push_error(span, ConfigErrorKind::Read { path: text, reason }),
        }
    }

    /// The whole input: global statements until the end of the main file.
    fn parse_global(&mut self) {
        let block = Block::global();
        loop {
            if self.errors.len() > MAX_ERRORS {
                return;
            }
            let token = self.peek().clone();
            match token.kind {
                TokenKind::Eof => return,
                TokenKind::Punct(b'}') => {
                    let error =
                        self.invalid(token.span, "a statement", "`}` without a matching `{`");
                    self.errors.push(error);
                    self.bump();
                }
                _ => self.statement_with_recovery(block),
            }
        }
    }

    /// Parses one statement; on error records it and resynchronises.
    pub fn statement_with_recovery(&mut self, block: Block) {
        self.peek();
        let before = self.position_marker();
        self.after_terminator = false;
        if let Err(error) = self.ordered_statement(block) {
            self.errors.push(error);
            if !self.after_terminator {
                self.recover();
            }
            // Never loop on the same token.
            if self.position_marker() == before {
                self.bump();
            }
        }
    }

    /// The text of the `{ … }` body read since `start` (the tokens inside the outermost braces,
    /// rendered as the lease file writes statements); `None` when the body crossed a file.
    pub(crate) fn body_text(&self, start: (usize, usize)) -> Option<std::sync::Arc<str>> {
        if self.position_marker().0 != start.0 {
            return None;
        }
        let frame = self.frames.last()?;
        let tokens = frame.tokens.get(start.1..frame.position)?;
        let open = tokens.iter().position(|token| token.is_punct(b'{'))?;
        let close = tokens.iter().rposition(|token| token.is_punct(b'}'))?;
        let body = tokens.get(open + 1..close)?;
        Some(crate::lease::file::write::render_tokens(body).into())
    }

    /// Identifies the cursor position (file depth and index) to detect lack of progress.
    fn position_marker(&self) -> (usize, usize) {
        self.frames
            .last()
            .map_or((0, 0), |frame| (self.frames.len(), frame.position))
    }

    /// `{ statements }` after the opening brace was read; consumes the closing brace.
    pub fn parse_block_body(&mut self, block: Block, open: Span) {
        // Blocks recurse: bound the depth so that hostile input cannot overflow the stack.
        if self.nesting >= MAX_NESTING {
            let error = self.invalid(
                open,
                format!("at most {MAX_NESTING} nested blocks"),
                "deeper nesting",
            );
            self.errors.push(error);
            self.skip_to_matching_brace();
            return;
        }
        self.nesting += 1;
        self.parse_block_body_unbounded(block, open);
        self.nesting -= 1;
    }

    /// Skips everything up to and including the `}` that closes the current block.
    fn skip_to_matching_brace(&mut self) {
        let mut depth = 1usize;
        loop {
            match self.peek().kind {
                TokenKind::Eof => return,
                TokenKind::Punct(b'{') => depth += 1,
                TokenKind::Punct(b'}') => {
                    depth -= 1;
                    if depth == 0 {
                        self.bump();
                        return;
                    }
                }
                _ => {}
            }
            self.bump();
        }
    }

    fn parse_block_body_unbounded(&mut self, block: Block, open: Span) {
        loop {
            if self.errors.len() > MAX_ERRORS {
                return;
            }
            let token = self.peek().clone();
            match token.kind {
                TokenKind::Punct(b'}') => {
                    self.bump();
                    return;
                }
                TokenKind::Eof => {
                    let expected = format!(
                        "`}}` closing the block opened at {}",
                        self.sources.locate(open)
                    );
                    let error = self.invalid(token.span, expected, "end of file");
                    self.errors.push(error);
                    return;
                }
                _ => self.statement_with_recovery(block),
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod isc_acceptance_tests;
