//! The statement parser of dhcpd.leases (ISC `lease_file_subparse`, `parse_lease_declaration`,
//! docs/spec/dhcpd-conf.md §8.3–§8.6) over the shared tokenizer.
//!
//! Every parse function returns [`Fail::Eof`] when the input ends before the statement does (a
//! torn tail) and [`Fail::Syntax`] for anything else; the caller then skips to the end of the
//! top-level statement by brace depth, which the token stream tracks.

use std::net::Ipv4Addr;

use crate::config::lexer::{Token, TokenKind};
use crate::lease::billing::Billing;
use crate::lease::file::date::CivilTime;
use crate::lease::file::fast;
use crate::lease::file::grammar::{finish_lease, Seen, AGENT_OPTIONS, HARDWARE_TYPES};
use crate::lease::file::tokens::{expected, parse_hex_byte, syntax, word, Fail, Parsed, Tokens};
use crate::lease::file::write::{quote_into, render_tokens};
use crate::lease::file::{
    FailoverStateRecord, GroupRecord, HostRecord, LeaseFileError, PeerState, RecordSink,
};
use crate::lease::record::{flags, BindingState, Hardware, Lease, UnixTime, NEVER};

/// What [`parse_chunk`] did with its input.
#[derive(Debug, Default)]
pub struct ChunkOutcome {
    /// Errors of the statements that ended inside the chunk.
    pub errors: Vec<LeaseFileError>,
    /// Bytes up to the end of the last complete top-level statement; the rest belongs to a
    /// statement the chunk ends in.
    pub consumed: usize,
    /// The chunk ends inside a statement.
    pub torn: bool,
}

/// Reads the top-level statements of `input` into `sink`. `line_base` is the number of lines
/// before `input` in the file; `final_chunk` says whether the input ends where the file ends.
pub fn parse_chunk(
    input: &[u8],
    line_base: u32,
    final_chunk: bool,
    sink: &mut impl RecordSink,
) -> ChunkOutcome {
    let _ = final_chunk;
    let mut parser = Parser {
        tokens: Tokens::new(input, line_base),
        sink,
        pending: Vec::new(),
    };
    let mut outcome = ChunkOutcome::default();
    // Byte position between statements, its line and the offset where that line starts.
    let mut position = 0usize;
    let mut line = line_base + 1;
    let mut line_start = 0usize;
    loop {
        // Blanks and comments between statements.
        while let Some(&byte) = input.get(position) {
            match byte {
                b'\n' => {
                    position += 1;
                    line += 1;
                    line_start = position;
                }
                b' ' | b'\t' | b'\r' | 0x0b | 0x0c => position += 1,
                b'#' => {
                    position = input[position..]
                        .iter()
                        .position(|&byte| byte == b'\n')
                        .map_or(input.len(), |length| position + length);
                }
                _ => break,
            }
        }
        if position >= input.len() {
            break;
        }
        // Lease blocks as ISC and this writer write them take the byte-level fast path; any
        // other form falls back to the token parser for that statement.
        if let Some((lease, length, newlines)) = fast::lease(&input[position..]) {
            parser.sink.lease(lease);
            if newlines > 0 {
                line += newlines;
                let end = position + length;
                line_start = input[..end]
                    .iter()
                    .rposition(|&byte| byte == b'\n')
                    .map_or(line_start, |newline| newline + 1);
            }
            position += length;
            outcome.consumed = position;
            continue;
        }
        let column = (position - line_start + 1) as u32;
        parser.tokens.restart(position, line, column);
        let token = match parser.tokens.next_any() {
            Ok(token) => token,
            Err(Fail::Eof) => {
                outcome.torn = true;
                break;
            }
            Err(Fail::Syntax {
                line: error_line,
                column: error_column,
                message,
            }) => {
                // A byte the tokenizer rejects between statements: report it and go on after it.
                outcome.errors.push(LeaseFileError {
                    line: error_line,
                    column: error_column,
                    message,
                });
                position = parser.tokens.offset_of(error_line, error_column) + 1;
                line = error_line;
                line_start = position - error_column as usize;
                continue;
            }
        };
        if token.kind == TokenKind::Eof {
            break;
        }
        let result = parser.statement(token);
        let result = match result {
            Ok(()) => Ok(()),
            Err(Fail::Eof) => Err(()),
            Err(Fail::Syntax {
                line,
                column,
                message,
            }) => {
                parser.pending.push(LeaseFileError {
                    line,
                    column,
                    message,
                });
                parser.tokens.recover().map_err(|_| ())
            }
        };
        match result {
            Ok(()) => {
                outcome.errors.append(&mut parser.pending);
                position = parser.end_offset();
                outcome.consumed = position;
                let (end_line, end_column) = parser.tokens.last_position;
                line = end_line;
                line_start = position - end_column as usize;
            }
            Err(()) => {
                // Errors of a torn statement are not errors: the statement is cut short.
                parser.pending.clear();
                outcome.torn = true;
                break;
            }
        }
    }
    outcome
}

struct Parser<'t, 's, S> {
    tokens: Tokens<'t>,
    sink: &'s mut S,
    pending: Vec<LeaseFileError>,
}

impl<S: RecordSink> Parser<'_, '_, S> {
    /// Byte offset just after the token that ended the last statement.
    fn end_offset(&mut self) -> usize {
        // Every top-level statement ends in `;` or `}`, one byte long.
        let (line, column) = self.tokens.last_position;
        (self.tokens.offset_of(line, column) + 1).min(self.tokens.input.len())
    }

    fn statement(&mut self, token: Token) -> Parsed<()> {
        let TokenKind::Name(keyword) = &token.kind else {
            return expected(&token, "a lease file statement");
        };
        match keyword.to_ascii_lowercase().as_str() {
            "lease" => {
                let lease = self.lease()?;
                self.sink.lease(lease);
            }
            "failover" => {
                let record = self.failover_state()?;
                self.sink.failover_state(record);
            }
            "host" => {
                let record = self.host()?;
                self.sink.host(record);
            }
            "group" => {
                let record = self.group()?;
                self.sink.group(record);
            }
            "server-duid" => {
                let duid = self.string_or_hex()?;
                self.semicolon()?;
                self.sink.server_duid(duid);
            }
            "authoring-byte-order" => {
                let order = self.tokens.next()?;
                if !(order.is_keyword("little-endian") || order.is_keyword("big-endian")) {
                    return expected(&order, "`little-endian` or `big-endian`");
                }
                self.semicolon()?;
            }
            // Run-time classes and DHCPv6 bindings: accepted and not kept (§8.3).
            "class" | "subclass" | "ia-na" | "ia-ta" | "ia-pd" => {
                self.skip_statement()?;
            }
            _ => {
                return syntax(
                    &token,
                    format!(
                        "Corrupt lease file - possible data loss! unexpected {}",
                        token.kind
                    ),
                )
            }
        }
        Ok(())
    }
}

/// A code by its name in `table` (case-insensitive), or ISC's `unknown-N` form for codes
/// without a name (used for hardware types and relay-agent sub-options, docs/spec/dhcpd-conf.md §8.2/§8.4).
fn code_by_name(table: &[(u8, &str)], name: &str) -> Option<u8> {
    if let Some((code, _)) = table
        .iter()
        .find(|(_, known)| known.eq_ignore_ascii_case(name))
    {
        return Some(*code);
    }
    name.get(..8)
        .filter(|prefix| prefix.eq_ignore_ascii_case("unknown-"))
        .and_then(|_| name.get(8..)?.parse().ok())
}

impl<S: RecordSink> Parser<'_, '_, S> {
    fn semicolon(&mut self) -> Parsed<()> {
        let token = self.tokens.next()?;
        if !token.is_punct(b';') {
            return expected(&token, "`;`");
        }
        Ok(())
    }

    fn open_brace(&mut self) -> Parsed<()> {
        let token = self.tokens.next()?;
        if !token.is_punct(b'{') {
            return expected(&token, "`{`");
        }
        Ok(())
    }

    /// True (and consumed) when the next token is `}`.
    fn close_brace(&mut self) -> Parsed<bool> {
        if self.tokens.peek()?.is_punct(b'}') {
            self.tokens.next()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn keyword(&mut self, keyword: &str) -> Parsed<()> {
        let token = self.tokens.next()?;
        if !token.is_keyword(keyword) {
            return expected(&token, &format!("`{keyword}`"));
        }
        Ok(())
    }

    /// A top-level statement not kept: to its `;` or its balanced `{ … }`.
    fn skip_statement(&mut self) -> Parsed<()> {
        loop {
            let token = self.tokens.next()?;
            if self.tokens.depth == 0 && (token.is_punct(b';') || token.is_punct(b'}')) {
                return Ok(());
            }
        }
    }

    /// The tokens of one statement inside a block, starting with `first`: up to its `;` or to the
    /// `}` closing a block it opened. The `}` of the enclosing block is left in place.
    fn collect_statement(&mut self, first: Token) -> Parsed<Vec<Token>> {
        let base = self.tokens.depth;
        if first.is_punct(b';') {
            return Ok(vec![first]);
        }
        let mut tokens = vec![first];
        loop {
            if self.tokens.depth == base && self.tokens.peek()?.is_punct(b'}') {
                let token = self.tokens.peek()?.clone();
                return expected(&token, "`;`");
            }
            let token = self.tokens.next()?;
            let ends = (token.is_punct(b';') || token.is_punct(b'}')) && self.tokens.depth == base;
            tokens.push(token);
            if ends {
                return Ok(tokens);
            }
        }
    }

    fn number(&mut self) -> Parsed<u32> {
        let token = self.tokens.next()?;
        match &token.kind {
            TokenKind::Number(text) => match text.parse() {
                Ok(value) => Ok(value),
                Err(_) => expected(&token, "a decimal number"),
            },
            _ => expected(&token, "a number"),
        }
    }

    fn signed_number(token: &Token) -> Parsed<i64> {
        match &token.kind {
            TokenKind::Number(text) => match text.parse::<i64>() {
                Ok(value) => Ok(value),
                Err(_) => expected(token, "a decimal number"),
            },
            _ => expected(token, "a number"),
        }
    }

    fn punct(&mut self, punct: u8) -> Parsed<()> {
        let token = self.tokens.next()?;
        if !token.is_punct(punct) {
            return expected(&token, &format!("`{}`", char::from(punct)));
        }
        Ok(())
    }

    fn address(&mut self) -> Parsed<Ipv4Addr> {
        let mut octets = [0u8; 4];
        for (index, octet) in octets.iter_mut().enumerate() {
            if index > 0 {
                self.punct(b'.')?;
            }
            let token = self.tokens.next()?;
            *octet = match &token.kind {
                TokenKind::Number(text) => match text.parse() {
                    Ok(value) => value,
                    Err(_) => return expected(&token, "an address octet (0-255)"),
                },
                _ => return expected(&token, "an IPv4 address"),
            };
        }
        Ok(Ipv4Addr::from(octets))
    }

    /// `xx:xx:…`, each element one or two hex digits.
    fn hex_list(&mut self) -> Parsed<Vec<u8>> {
        let mut bytes = Vec::new();
        loop {
            let token = self.tokens.next()?;
            match word(&token).and_then(parse_hex_byte) {
                Some(byte) => bytes.push(byte),
                None => return expected(&token, "a hex byte"),
            }
            if !self.tokens.peek()?.is_punct(b':') {
                return Ok(bytes);
            }
            self.tokens.next()?;
        }
    }

    /// A quoted string or a colon-hex list (`lease-id-format octal` or `hex`, §8.2).
    fn string_or_hex(&mut self) -> Parsed<Vec<u8>> {
        if let TokenKind::String(_) = self.tokens.peek()?.kind {
            let token = self.tokens.next()?;
            if let TokenKind::String(bytes) = token.kind {
                return Ok(bytes);
            }
        }
        self.hex_list()
    }

    /// A date up to, not including, its `;` (§8.1).
    fn date(&mut self) -> Parsed<UnixTime> {
        let first = self.tokens.next()?;
        if first.is_keyword("never") {
            return Ok(NEVER);
        }
        if first.is_keyword("epoch") {
            let token = self.tokens.next()?;
            return match &token.kind {
                TokenKind::Number(text) => match text.parse::<u64>() {
                    Ok(seconds) => Ok(u32::try_from(seconds).unwrap_or(NEVER)),
                    Err(_) => expected(&token, "seconds since the epoch"),
                },
                _ => expected(&token, "seconds since the epoch"),
            };
        }
        // The weekday is for humans and ignored (§8.1).
        if !matches!(first.kind, TokenKind::Number(_)) {
            return expected(
                &first,
                "a date (`W YYYY/MM/DD HH:MM:SS`, `epoch N` or `never`)",
            );
        }
        let year_token = self.tokens.next()?;
        let year = Self::signed_number(&year_token)?;
        self.punct(b'/')?;
        let month = self.number()?;
        self.punct(b'/')?;
        let day = self.number()?;
        let hour = self.number()?;
        self.punct(b':')?;
        let minute = self.number()?;
        self.punct(b':')?;
        let second = self.number()?;
        let mut offset = 0;
        if matches!(self.tokens.peek()?.kind, TokenKind::Number(_)) {
            let token = self.tokens.next()?;
            offset = Self::signed_number(&token)?;
        }
        let civil = CivilTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        };
        match civil.to_unix(offset) {
            Some(time) => Ok(time),
            None => syntax(&year_token, "date out of range"),
        }
    }

    fn hardware(&mut self) -> Parsed<Hardware> {
        let token = self.tokens.next()?;
        let Some(name) = word(&token) else {
            return expected(&token, "a hardware type");
        };
        let Some(htype) = code_by_name(&HARDWARE_TYPES, name) else {
            return expected(&token, "a hardware type");
        };
        let address_token = self.tokens.peek()?.clone();
        let address = self.hex_list()?;
        match Hardware::new(htype, &address) {
            Some(hardware) => Ok(hardware),
            None => syntax(&address_token, "hardware address longer than 16 bytes"),
        }
    }

    /// `"text"` or a bare dotted name (old `client-hostname` form).
    fn hostname(&mut self) -> Parsed<String> {
        let token = self.tokens.next()?;
        match &token.kind {
            TokenKind::String(bytes) => Ok(String::from_utf8_lossy(bytes).into_owned()),
            TokenKind::Name(first) => {
                let mut name = first.clone();
                while self.tokens.peek()?.is_punct(b'.') {
                    self.tokens.next()?;
                    let part = self.tokens.next()?;
                    match word(&part) {
                        Some(text) => {
                            name.push('.');
                            name.push_str(text);
                        }
                        None => return expected(&part, "a host name"),
                    }
                }
                Ok(name)
            }
            _ => expected(&token, "a host name"),
        }
    }

    fn binding_state(&mut self, lease: &mut Lease) -> Parsed<BindingState> {
        let token = self.tokens.next()?;
        let Some(name) = word(&token) else {
            return expected(&token, "a binding state");
        };
        // Old files say `reserved` or `bootp`: active with the flag (§8.4).
        if name.eq_ignore_ascii_case("reserved") {
            lease.flags |= flags::RESERVED;
            return Ok(BindingState::Active);
        }
        if name.eq_ignore_ascii_case("bootp") {
            lease.flags |= flags::BOOTP;
            return Ok(BindingState::Active);
        }
        match BindingState::from_word(name) {
            Some(state) => Ok(state),
            None => expected(&token, "a binding state"),
        }
    }

    /// `set NAME = VALUE;` after `set`: VALUE kept as the writer writes it.
    fn variable_value(&mut self) -> Parsed<String> {
        let token = self.tokens.peek()?.clone();
        match &token.kind {
            TokenKind::String(bytes) => {
                self.tokens.next()?;
                let mut value = Vec::with_capacity(bytes.len() + 2);
                quote_into(bytes, &mut value);
                Ok(String::from_utf8_lossy(&value).into_owned())
            }
            TokenKind::Punct(b'%') => {
                self.tokens.next()?;
                let number = self.tokens.next()?;
                let value = Self::signed_number(&number)?;
                Ok(format!("%{value}"))
            }
            TokenKind::Name(name)
                if name.eq_ignore_ascii_case("true") || name.eq_ignore_ascii_case("false") =>
            {
                self.tokens.next()?;
                Ok(name.to_ascii_lowercase())
            }
            TokenKind::Name(_) | TokenKind::Number(_) => {
                let bytes = self.hex_list()?;
                let mut value = Vec::with_capacity(bytes.len() + 2);
                quote_into(&bytes, &mut value);
                Ok(String::from_utf8_lossy(&value).into_owned())
            }
            _ => expected(&token, "a variable value (string, %N, true, false or hex)"),
        }
    }

    fn variable_name(&mut self) -> Parsed<String> {
        let token = self.tokens.next()?;
        match &token.kind {
            TokenKind::Name(name) => Ok(name.clone()),
            _ => expected(&token, "a variable name"),
        }
    }

    /// `option agent.NAME VALUE;` after `option`/`supersede`.
    fn agent_option(&mut self) -> Parsed<(u8, Vec<u8>)> {
        let space = self.tokens.next()?;
        if !space.is_keyword("agent") {
            return syntax(&space, "only `agent.` options may be stored in a lease");
        }
        self.punct(b'.')?;
        let name_token = self.tokens.next()?;
        let Some(name) = word(&name_token) else {
            return expected(&name_token, "an agent sub-option name");
        };
        let Some(code) = code_by_name(&AGENT_OPTIONS, name) else {
            return expected(&name_token, "an agent sub-option name");
        };
        let bytes = if let TokenKind::String(_) = self.tokens.peek()?.kind {
            self.string_or_hex()?
        } else if self.is_dotted_quad_ahead() {
            // `link-selection`, `agent-id`: an address.
            self.address()?.octets().to_vec()
        } else {
            self.hex_list()?
        };
        Ok((code, bytes))
    }

    /// Cheap look-ahead for `N.`: a dotted quad rather than a hex list. The tokenizer has one
    /// token of look-ahead only, so peek at the bytes after the peeked token.
    fn is_dotted_quad_ahead(&mut self) -> bool {
        let Ok(token) = self.tokens.peek() else {
            return false;
        };
        let (line, column) = (token.span.line, token.span.column);
        let TokenKind::Number(text) = &token.kind else {
            return false;
        };
        let length = text.len();
        let offset = self.tokens.offset_of(line, column);
        self.tokens.input.get(offset + length) == Some(&b'.')
    }

    fn lease(&mut self) -> Parsed<Lease> {
        let address = self.address()?;
        self.open_brace()?;
        let mut lease = Lease::free(address);
        let mut seen = Seen::default();
        while !self.close_brace()? {
            self.lease_statement(&mut lease, &mut seen)?;
        }
        finish_lease(&mut lease, &seen);
        lease.shrink_extra();
        Ok(lease)
    }

    fn lease_statement(&mut self, lease: &mut Lease, seen: &mut Seen) -> Parsed<()> {
        let token = self.tokens.next()?;
        let Some(keyword) = (match &token.kind {
            TokenKind::Name(name) => Some(name.to_ascii_lowercase()),
            _ => None,
        }) else {
            return expected(&token, "a lease statement");
        };
        match keyword.as_str() {
            "starts" | "ends" | "tstp" | "tsfp" | "atsfp" | "cltt" => {
                let time = self.date()?;
                self.semicolon()?;
                match keyword.as_str() {
                    "starts" => lease.starts = time,
                    "ends" => lease.ends = time,
                    "tstp" => {
                        lease.tstp = time;
                        seen.tstp = true;
                    }
                    "tsfp" => lease.tsfp = time,
                    "atsfp" => lease.atsfp = time,
                    _ => lease.cltt = time,
                }
            }
            "binding" => {
                self.keyword("state")?;
                lease.binding_state = self.binding_state(lease)?;
                seen.binding_state = true;
                self.semicolon()?;
            }
            "next" | "rewind" => {
                self.keyword("binding")?;
                self.keyword("state")?;
                let state = self.binding_state(lease)?;
                if keyword == "next" {
                    lease.next_binding_state = state;
                    seen.next_binding_state = true;
                } else {
                    lease.rewind_binding_state = state;
                    seen.rewind_binding_state = true;
                }
                self.semicolon()?;
            }
            "abandoned" => {
                lease.binding_state = BindingState::Abandoned;
                seen.binding_state = true;
                self.semicolon()?;
            }
            "reserved" => {
                lease.flags |= flags::RESERVED;
                self.semicolon()?;
            }
            "dynamic-bootp" | "bootp" => {
                lease.flags |= flags::BOOTP;
                self.semicolon()?;
            }
            "hardware" => {
                lease.hardware = Some(self.hardware()?);
                self.semicolon()?;
            }
            "uid" => {
                lease.set_uid(Some(&self.string_or_hex()?));
                self.semicolon()?;
            }
            "client-hostname" => {
                let name = self.hostname()?;
                self.semicolon()?;
                lease.set_client_hostname(Some(&name));
            }
            "set" => {
                let name = self.variable_name()?;
                self.punct(b'=')?;
                let value = self.variable_value()?;
                self.semicolon()?;
                set_variable(lease, name, value);
            }
            "option" | "supersede" => {
                let (code, bytes) = self.agent_option()?;
                self.semicolon()?;
                let options = &mut lease.extra_mut().agent_options;
                options.retain(|(existing, _)| *existing != code);
                options.push((code, bytes));
            }
            "billing" => {
                // `billing class "NAME";` or `billing subclass "NAME" DATA;` (ISC server/db.c
                // `write_billing_class`); another form stays verbatim.
                let next = self.tokens.peek()?;
                if next.is_keyword("class") || next.is_keyword("subclass") {
                    let subclass = self.tokens.next()?.is_keyword("subclass");
                    let name = self.tokens.next()?;
                    let TokenKind::String(name) = name.kind else {
                        return expected(&name, "a class name (a quoted string)");
                    };
                    let name = String::from_utf8_lossy(&name).into_owned();
                    let billing = if subclass {
                        Billing::subclass(&name, &self.string_or_hex()?)
                    } else {
                        Billing::class(&name)
                    };
                    self.semicolon()?;
                    lease.extra_mut().billing = Some(billing);
                } else {
                    let tokens = self.collect_statement(token)?;
                    lease.extra_mut().verbatim.push(render_tokens(&tokens));
                }
            }
            "on" => {
                let tokens = self.collect_statement(token)?;
                lease.extra_mut().verbatim.push(render_tokens(&tokens));
            }
            "class" => {
                self.collect_statement(token)?;
            }
            _ => {
                // Old files write lease variables without `set` and `=` (§8.4).
                if let TokenKind::String(_) = self.tokens.peek()?.kind {
                    let value = self.variable_value()?;
                    self.semicolon()?;
                    if let TokenKind::Name(name) = token.kind {
                        set_variable(lease, name, value);
                    }
                } else {
                    return syntax(
                        &token,
                        format!("unexpected {} in lease declaration", token.kind),
                    );
                }
            }
        }
        Ok(())
    }

    fn failover_state(&mut self) -> Parsed<FailoverStateRecord> {
        self.keyword("peer")?;
        let name_token = self.tokens.next()?;
        let peer = match &name_token.kind {
            TokenKind::String(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            TokenKind::Name(name) => name.clone(),
            _ => return expected(&name_token, "a failover peer name"),
        };
        self.keyword("state")?;
        self.open_brace()?;
        let mut record = FailoverStateRecord {
            peer,
            my_state: None,
            my_time: None,
            partner_state: None,
            partner_time: None,
            mclt: None,
        };
        while !self.close_brace()? {
            let token = self.tokens.next()?;
            if token.is_keyword("mclt") {
                record.mclt = Some(self.number()?);
                self.semicolon()?;
                continue;
            }
            let mine = token.is_keyword("my");
            if !mine && !token.is_keyword("partner") {
                // dhcpd.leases(5) shows `peer state`, which ISC's parser rejects (§8.6).
                return expected(
                    &token,
                    "state setting (`my state`, `partner state` or `mclt`)",
                );
            }
            self.keyword("state")?;
            let state_token = self.tokens.next()?;
            let Some(state) = word(&state_token).and_then(PeerState::from_word) else {
                return expected(&state_token, "a failover state");
            };
            let mut time = None;
            if self.tokens.peek()?.is_keyword("at") {
                self.tokens.next()?;
                time = Some(self.date()?);
            }
            self.semicolon()?;
            if mine {
                record.my_state = Some(state);
                record.my_time = time;
            } else {
                record.partner_state = Some(state);
                record.partner_time = time;
            }
        }
        Ok(record)
    }

    /// A host or group name: a string or a dotted name.
    fn record_name(&mut self) -> Parsed<String> {
        if let TokenKind::Number(_) = self.tokens.peek()?.kind {
            let token = self.tokens.next()?;
            let mut name = word(&token).unwrap_or_default().to_owned();
            while self.tokens.peek()?.is_punct(b'.') {
                self.tokens.next()?;
                let part = self.tokens.next()?;
                match word(&part) {
                    Some(text) => {
                        name.push('.');
                        name.push_str(text);
                    }
                    None => return expected(&part, "a name"),
                }
            }
            return Ok(name);
        }
        self.hostname()
    }

    fn host(&mut self) -> Parsed<HostRecord> {
        let mut record = HostRecord {
            name: self.record_name()?,
            ..HostRecord::default()
        };
        self.open_brace()?;
        while !self.close_brace()? {
            let token = self.tokens.next()?;
            let keyword = match &token.kind {
                TokenKind::Name(name) => name.to_ascii_lowercase(),
                _ => String::new(),
            };
            match keyword.as_str() {
                "dynamic" => {
                    record.dynamic = true;
                    self.semicolon()?;
                }
                "deleted" => {
                    record.deleted = true;
                    self.semicolon()?;
                }
                "hardware" => {
                    record.hardware = Some(self.hardware()?);
                    self.semicolon()?;
                }
                "uid" => {
                    record.uid = Some(self.string_or_hex()?);
                    self.semicolon()?;
                }
                "group" => {
                    record.group = Some(self.record_name()?);
                    self.semicolon()?;
                }
                "fixed-address" if self.is_dotted_quad_ahead() => loop {
                    record.fixed_addresses.push(self.address()?);
                    let token = self.tokens.next()?;
                    if token.is_punct(b';') {
                        break;
                    }
                    if !token.is_punct(b',') {
                        return expected(&token, "`,` or `;`");
                    }
                },
                _ => {
                    let tokens = self.collect_statement(token)?;
                    record.statements.push(render_tokens(&tokens));
                }
            }
        }
        Ok(record)
    }

    fn group(&mut self) -> Parsed<GroupRecord> {
        let mut record = GroupRecord {
            name: self.record_name()?,
            ..GroupRecord::default()
        };
        self.open_brace()?;
        while !self.close_brace()? {
            let token = self.tokens.next()?;
            if (token.is_keyword("dynamic")
                || token.is_keyword("static")
                || token.is_keyword("deleted"))
                && self.tokens.peek()?.is_punct(b';')
            {
                {
                    if token.is_keyword("dynamic") {
                        record.dynamic = true;
                    } else if token.is_keyword("static") {
                        record.static_ = true;
                    } else {
                        record.deleted = true;
                    }
                    self.semicolon()?;
                    continue;
                }
            }
            let tokens = self.collect_statement(token)?;
            record.statements.push(render_tokens(&tokens));
        }
        Ok(record)
    }
}

/// Sets a lease variable, replacing an earlier value of the same name.
fn set_variable(lease: &mut Lease, name: String, value: String) {
    let variables = &mut lease.extra_mut().variables;
    match variables.iter_mut().find(|(existing, _)| *existing == name) {
        Some(entry) => entry.1 = value,
        None => variables.push((name, value)),
    }
}
