//! Parser for the dhcp-eval(5) expression subset (docs/spec/dhcpd-conf.md §9; ISC `common/parse.c`
//! `parse_expression` / `parse_non_binary`). A constant like `01` is a number in a numeric
//! context and a colon-hex byte in a data context, as in ISC.

use super::{BinaryOp, Expr, ExprKind, OptionRef, Pattern};
use crate::config::lexer::{Span, TokenKind};
use crate::config::options::OptionSpace;
use crate::config::parser::{ParseResult, Parser};

/// What the surrounding grammar wants (decides how a bare number is read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Context {
    Any,
    Data,
    Numeric,
}

/// Binding power of a binary operator (higher binds tighter).
fn binding_power(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => 1,
        BinaryOp::And => 2,
        BinaryOp::Equal | BinaryOp::NotEqual | BinaryOp::RegexMatch | BinaryOp::IregexMatch => 3,
        BinaryOp::BitOr | BinaryOp::BitXor | BinaryOp::BitAnd => 4,
        BinaryOp::Add | BinaryOp::Subtract => 5,
        BinaryOp::Multiply | BinaryOp::Divide | BinaryOp::Remainder => 6,
    }
}

fn kind_name(kind: ExprKind) -> &'static str {
    match kind {
        ExprKind::Boolean => "a boolean expression",
        ExprKind::Data => "a data expression",
        ExprKind::Numeric => "a numeric expression",
        ExprKind::Any => "an expression",
    }
}

impl Parser {
    /// Any expression.
    pub(crate) fn parse_expression(&mut self) -> ParseResult<Expr> {
        self.parse_binary(0, Context::Any)
    }

    /// An expression that must yield a boolean (`match if`, `if`).
    pub(crate) fn parse_boolean_expression(&mut self, what: &str) -> ParseResult<Expr> {
        let span = self.peek().span;
        let expr = self.parse_expression()?;
        self.require_kind(&expr, ExprKind::Boolean, span, what)?;
        Ok(expr)
    }

    pub(crate) fn require_kind(
        &self,
        expr: &Expr,
        wanted: ExprKind,
        span: Span,
        what: &str,
    ) -> ParseResult<()> {
        let kind = expr.kind();
        // ISC's `is_numeric_expression` takes neither variables nor function calls: a numeric
        // operand must be numeric by its form ("expecting numeric expressions").
        if kind == wanted || (kind == ExprKind::Any && wanted != ExprKind::Numeric) {
            Ok(())
        } else {
            Err(self.invalid(span, what, kind_name(kind)))
        }
    }

    /// The arguments of a function call (ISC parse.c: any expressions, comma-separated).
    fn parse_call_arguments(&mut self) -> ParseResult<Vec<Expr>> {
        self.expect_punct(b'(')?;
        let mut arguments = Vec::new();
        if self.eat_punct(b')') {
            return Ok(arguments);
        }
        arguments.push(self.parse_expression()?);
        while self.eat_punct(b',') {
            arguments.push(self.parse_expression()?);
        }
        self.expect_punct(b')')?;
        Ok(arguments)
    }

    /// An expression ISC evaluates and xdhcpd does not: refused rather than evaluated as null
    /// (a reply would differ without a word).
    fn unsupported_expression(&mut self, span: Span, word: &str) -> crate::config::ConfigError {
        self.invalid(
            span,
            "an expression xdhcpd evaluates",
            format!("`{word}` (unsupported)"),
        )
    }

    pub(crate) fn parse_data_argument(&mut self) -> ParseResult<Expr> {
        let span = self.peek().span;
        let expr = self.parse_binary(0, Context::Data)?;
        self.require_kind(&expr, ExprKind::Data, span, "a data expression")?;
        Ok(expr)
    }

    pub(crate) fn parse_numeric_argument(&mut self) -> ParseResult<Expr> {
        let span = self.peek().span;
        let expr = self.parse_binary(0, Context::Numeric)?;
        self.require_kind(&expr, ExprKind::Numeric, span, "a numeric expression")?;
        Ok(expr)
    }

    /// The operator at the cursor and how many tokens it takes.
    fn peek_operator(&mut self) -> Option<(BinaryOp, usize)> {
        let token = self.peek().clone();
        let op = match &token.kind {
            TokenKind::Name(word) if word.eq_ignore_ascii_case("and") => (BinaryOp::And, 1),
            TokenKind::Name(word) if word.eq_ignore_ascii_case("or") => (BinaryOp::Or, 1),
            TokenKind::Punct(b'=') => (BinaryOp::Equal, 1),
            TokenKind::Punct(b'!') if self.peek_at(1).is_punct(b'=') => (BinaryOp::NotEqual, 2),
            TokenKind::Punct(b'~') if self.peek_at(1).is_punct(b'=') => (BinaryOp::RegexMatch, 2),
            TokenKind::Punct(b'~') if self.peek_at(1).is_punct(b'~') => (BinaryOp::IregexMatch, 2),
            TokenKind::Punct(b'+') => (BinaryOp::Add, 1),
            TokenKind::Punct(b'-') => (BinaryOp::Subtract, 1),
            TokenKind::Punct(b'*') => (BinaryOp::Multiply, 1),
            TokenKind::Punct(b'/') => (BinaryOp::Divide, 1),
            TokenKind::Punct(b'%') => (BinaryOp::Remainder, 1),
            TokenKind::Punct(b'&') => (BinaryOp::BitAnd, 1),
            TokenKind::Punct(b'|') => (BinaryOp::BitOr, 1),
            TokenKind::Punct(b'^') => (BinaryOp::BitXor, 1),
            _ => return None,
        };
        Some(op)
    }

    /// Precedence climbing over [`binding_power`]; operators are left-associative.
    fn parse_binary(&mut self, min_power: u8, context: Context) -> ParseResult<Expr> {
        let mut left = self.parse_non_binary(context)?;
        while let Some((op, length)) = self.peek_operator() {
            let power = binding_power(op);
            if power <= min_power {
                break;
            }
            let op_span = self.peek().span;
            for _ in 0..length {
                self.bump();
            }
            let right_span = self.peek().span;
            let right = match op {
                BinaryOp::Equal | BinaryOp::NotEqual => {
                    // The left side decides how a bare constant on the right is read.
                    let context = match left.kind() {
                        ExprKind::Data => Context::Data,
                        ExprKind::Numeric => Context::Numeric,
                        _ => Context::Any,
                    };
                    self.parse_binary(power, context)?
                }
                BinaryOp::And | BinaryOp::Or => {
                    self.require_kind(
                        &left,
                        ExprKind::Boolean,
                        op_span,
                        "a boolean expression before `and`/`or`",
                    )?;
                    let right = self.parse_binary(power, Context::Any)?;
                    self.require_kind(
                        &right,
                        ExprKind::Boolean,
                        right_span,
                        "a boolean expression after `and`/`or`",
                    )?;
                    right
                }
                BinaryOp::RegexMatch | BinaryOp::IregexMatch => {
                    let right = self.parse_binary(power, Context::Data)?;
                    let Expr::Data(source) = &right else {
                        return Err(self.invalid(
                            right_span,
                            "a quoted regular expression",
                            "a computed one (unsupported)",
                        ));
                    };
                    let source = String::from_utf8_lossy(source).into_owned();
                    let pattern =
                        Pattern::new(&source, op == BinaryOp::IregexMatch).map_err(|error| {
                            self.invalid(
                                right_span,
                                "a regular expression",
                                format!("`{source}` ({error})"),
                            )
                        })?;
                    left = Expr::RegexMatch(Box::new(left), pattern);
                    continue;
                }
                _ => {
                    self.require_kind(
                        &left,
                        ExprKind::Numeric,
                        op_span,
                        "a numeric expression before an arithmetic operator",
                    )?;
                    let right = self.parse_binary(power, Context::Numeric)?;
                    self.require_kind(
                        &right,
                        ExprKind::Numeric,
                        right_span,
                        "a numeric expression after an arithmetic operator",
                    )?;
                    right
                }
            };
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `option NAME` / `exists NAME`: a DHCP or relay-agent option.
    fn parse_option_reference(&mut self) -> ParseResult<Option<OptionRef>> {
        let span = self.peek().span;
        let (space, name) = self.parse_option_name()?;
        let full = match &space {
            Some(space) => format!("{space}.{name}"),
            None => name.clone(),
        };
        let space_id = match space.as_deref() {
            None => OptionSpace::DHCP,
            Some(space_name) => self.options.space(space_name).ok_or_else(|| {
                self.invalid(
                    span,
                    "a declared option space (`option space NAME;`)",
                    format!("no option space named `{space_name}`"),
                )
            })?,
        };
        let unchecked = self
            .options
            .space_definition(space_id)
            .is_some_and(|definition| definition.unchecked_names);
        let Some(definition) = self.options.by_name(space_id, &name) else {
            if unchecked {
                self.warn(
                    span,
                    format!("option `{full}`: only the dhcp and agent spaces are evaluated"),
                );
                return Ok(None);
            }
            return Err(self.invalid(span, "a known option name", format!("`{full}`")));
        };
        let code = definition.byte_code();
        match (space_id, code) {
            (OptionSpace::DHCP, Some(code)) => Ok(Some(OptionRef::Dhcp(code))),
            (OptionSpace::AGENT, Some(code)) => Ok(Some(OptionRef::Agent(code))),
            (OptionSpace::DHCP | OptionSpace::AGENT, None) => {
                // ISC looks the request's options up by their one-byte codes: never present.
                Ok(Some(OptionRef::SubOption(
                    crate::config::spaces::SubOptionPath::absent(),
                )))
            }
            _ => {
                let code = definition.code;
                self.suboption_reference(space_id, code, &full, span)
            }
        }
    }

    /// `option SPACE.NAME` of a space other than dhcp and agent: found in the request when a
    /// DHCP option carries the space (ISC decodes such options on receipt); otherwise never
    /// present (ISC decodes option 43 into the `vendor-option-space` only on
    /// `parse-vendor-option;`).
    fn suboption_reference(
        &mut self,
        space: OptionSpace,
        code: u32,
        full: &str,
        span: crate::config::lexer::Span,
    ) -> ParseResult<Option<OptionRef>> {
        let special = self
            .options
            .space_definition(space)
            .is_some_and(|definition| {
                ["fqdn", "nwip", "server"]
                    .iter()
                    .any(|name| definition.name.eq_ignore_ascii_case(name))
            });
        if special {
            // ISC decodes these spaces by functions of their own (fqdn_universe_decode…).
            return Err(self.invalid(
                span,
                "an option of the dhcp or agent space or of a space a DHCP option encapsulates",
                format!("`{full}` (reading ISC's fqdn, nwip and server spaces is unsupported)"),
            ));
        }
        match crate::config::spaces::SubOptionPath::to(&self.options, space, code) {
            Ok(Some(path)) => Ok(Some(OptionRef::SubOption(path))),
            Ok(None) => Ok(Some(OptionRef::SubOption(
                crate::config::spaces::SubOptionPath::absent(),
            ))),
            Err(crate::config::spaces::TooDeep) => Err(self.invalid(
                span,
                format!(
                    "an option at most {} encapsulations deep",
                    crate::config::spaces::MAX_SUBOPTION_DEPTH
                ),
                format!("`{full}`, deeper (unsupported)"),
            )),
        }
    }

    /// `config-option NAME` of the dhcp space (tree.c `expr_config_option`).
    fn parse_config_option(&mut self, span: Span) -> ParseResult<Expr> {
        match self.parse_option_reference()? {
            Some(OptionRef::Dhcp(code)) => Ok(Expr::ConfigOption(code)),
            _ => Err(self.invalid(
                span,
                "`config-option` of an option of the dhcp space",
                "an option of another space (unsupported)",
            )),
        }
    }

    /// `( A, B, … )` of data expressions (at least one).
    fn parse_data_list(&mut self) -> ParseResult<Vec<Expr>> {
        self.expect_punct(b'(')?;
        let mut parts = vec![self.parse_data_argument()?];
        while self.eat_punct(b',') {
            parts.push(self.parse_data_argument()?);
        }
        self.expect_punct(b')')?;
        Ok(parts)
    }

    /// `8`, `16` or `32` (the width argument of `extract-int` / `encode-int`).
    fn parse_width(&mut self) -> ParseResult<u8> {
        let (width, span) = self.parse_integer("8, 16 or 32")?;
        match width {
            8 | 16 | 32 => Ok(width as u8),
            _ => Err(self.invalid(span, "8, 16 or 32", width.to_string())),
        }
    }

    /// A primary expression (ISC `parse_non_binary`).
    fn parse_non_binary(&mut self, context: Context) -> ParseResult<Expr> {
        // Every level of expression recursion passes here: bound it (see MAX_NESTING).
        if self.nesting >= crate::config::parser::MAX_NESTING {
            let span = self.peek().span;
            return Err(self.invalid(
                span,
                format!(
                    "at most {} nested expressions",
                    crate::config::parser::MAX_NESTING
                ),
                "deeper nesting",
            ));
        }
        self.nesting += 1;
        let result = self.parse_non_binary_unbounded(context);
        self.nesting -= 1;
        result
    }

    fn parse_non_binary_unbounded(&mut self, context: Context) -> ParseResult<Expr> {
        let token = self.peek().clone();
        match &token.kind {
            TokenKind::String(bytes) => {
                self.bump();
                Ok(Expr::Data(bytes.clone()))
            }
            TokenKind::Punct(b'(') => {
                self.bump();
                let inner = self.parse_expression()?;
                self.expect_punct(b')')?;
                Ok(inner)
            }
            TokenKind::Number(text) => {
                let next = self.peek_at(1).clone();
                // ISC `parse_non_binary`: a NUMBER in a numeric context is the number even
                // before a `:` (`case 7:`); elsewhere it starts colon-hex data.
                if (next.is_punct(b':') && context != Context::Numeric)
                    || (context == Context::Data && self.at_hex_octet())
                {
                    return Ok(Expr::Data(
                        self.parse_hex_list("colon-separated hex bytes")?,
                    ));
                }
                if next.is_punct(b'.') && matches!(self.peek_at(2).kind, TokenKind::Number(_)) {
                    return Ok(Expr::Data(self.parse_ip()?.octets().to_vec()));
                }
                // ISC `read_number` takes a leading `-`, and `parse_non_binary` stores
                // `atoi` of it in a C int: a negative constant is its two's complement
                // (`encode-int(-3600, 32)` is ff:ff:f1:f0).
                let value = super::super::parser::parse_number_text(text).and_then(|value| {
                    u32::try_from(value)
                        .ok()
                        .or_else(|| i32::try_from(value).ok().map(|value| value as u32))
                });
                match value {
                    Some(value) => {
                        self.bump();
                        Ok(Expr::Number(value))
                    }
                    None => Err(self.expected("an unsigned 32-bit number")),
                }
            }
            TokenKind::Name(word) => {
                let lower = word.to_ascii_lowercase();
                if (self.peek_at(1).is_punct(b':') || context == Context::Data)
                    && self.at_hex_octet()
                    && !self.peek_at(1).is_punct(b'(')
                {
                    // `ab:cd` (a name token that is hex), or a single hex byte where data is wanted.
                    let is_keyword = matches!(lower.as_str(), "known" | "static" | "hardware");
                    if !is_keyword {
                        return Ok(Expr::Data(
                            self.parse_hex_list("colon-separated hex bytes")?,
                        ));
                    }
                }
                self.bump();
                self.parse_named(&lower, token.span)
            }
            _ => Err(self.expected("an expression")),
        }
    }

    /// A primary expression that starts with a name (already taken).
    fn parse_named(&mut self, word: &str, span: Span) -> ParseResult<Expr> {
        let expr = match word {
            "not" => {
                let operand_span = self.peek().span;
                let operand = self.parse_non_binary(Context::Any)?;
                self.require_kind(
                    &operand,
                    ExprKind::Boolean,
                    operand_span,
                    "a boolean expression after `not`",
                )?;
                Expr::Not(Box::new(operand))
            }
            "exists" => match self.parse_option_reference()? {
                Some(option) => Expr::Exists(option),
                None => Expr::Unsupported("exists".into()),
            },
            "option" => match self.parse_option_reference()? {
                Some(option) => Expr::Option(option),
                None => Expr::Unsupported("option".into()),
            },
            "config-option" => self.parse_config_option(span)?,
            "known" => Expr::Known,
            "static" => Expr::Static,
            "hardware" => Expr::Hardware,
            "leased-address" => Expr::LeasedAddress,
            "host-decl-name" => Expr::HostDeclName,
            "true" => Expr::Boolean(true),
            "false" => Expr::Boolean(false),
            "null" => Expr::Unsupported(word.into()),
            "substring" => {
                self.expect_punct(b'(')?;
                let data = self.parse_data_argument()?;
                self.expect_punct(b',')?;
                let offset = self.parse_numeric_argument()?;
                self.expect_punct(b',')?;
                let length = self.parse_numeric_argument()?;
                self.expect_punct(b')')?;
                Expr::Substring(Box::new(data), Box::new(offset), Box::new(length))
            }
            "suffix" => {
                self.expect_punct(b'(')?;
                let data = self.parse_data_argument()?;
                self.expect_punct(b',')?;
                let length = self.parse_numeric_argument()?;
                self.expect_punct(b')')?;
                Expr::Suffix(Box::new(data), Box::new(length))
            }
            "lcase" | "ucase" => {
                self.expect_punct(b'(')?;
                let data = Box::new(self.parse_data_argument()?);
                self.expect_punct(b')')?;
                if word == "lcase" {
                    Expr::Lcase(data)
                } else {
                    Expr::Ucase(data)
                }
            }
            "concat" => Expr::Concat(self.parse_data_list()?),
            "pick-first-value" => Expr::PickFirstValue(self.parse_data_list()?),
            "binary-to-ascii" => {
                self.expect_punct(b'(')?;
                let base = self.parse_numeric_argument()?;
                self.expect_punct(b',')?;
                let width = self.parse_numeric_argument()?;
                self.expect_punct(b',')?;
                let separator = self.parse_data_argument()?;
                self.expect_punct(b',')?;
                let data = self.parse_data_argument()?;
                self.expect_punct(b')')?;
                Expr::BinaryToAscii {
                    base: Box::new(base),
                    width: Box::new(width),
                    separator: Box::new(separator),
                    data: Box::new(data),
                }
            }
            // tree.c `expr_packet`: bytes of the datagram as received (header, cookie and
            // options area), cut at its end.
            "packet" => {
                self.expect_punct(b'(')?;
                let offset = self.parse_numeric_argument()?;
                self.expect_punct(b',')?;
                let length = self.parse_numeric_argument()?;
                self.expect_punct(b')')?;
                self.config.reads_packet = true;
                Expr::Packet(Box::new(offset), Box::new(length))
            }
            "extract-int" => {
                self.expect_punct(b'(')?;
                let data = self.parse_data_argument()?;
                self.expect_punct(b',')?;
                let width = self.parse_width()?;
                self.expect_punct(b')')?;
                Expr::ExtractInt(Box::new(data), width)
            }
            "encode-int" => {
                self.expect_punct(b'(')?;
                let number = self.parse_numeric_argument()?;
                self.expect_punct(b',')?;
                let width = self.parse_width()?;
                self.expect_punct(b')')?;
                Expr::EncodeInt(Box::new(number), width)
            }
            "reverse" => {
                self.expect_punct(b'(')?;
                let width = self.parse_numeric_argument()?;
                self.expect_punct(b',')?;
                let data = self.parse_data_argument()?;
                self.expect_punct(b')')?;
                Expr::Reverse(Box::new(width), Box::new(data))
            }
            "defined" => {
                self.expect_punct(b'(')?;
                let name = self.parse_variable_name()?;
                self.expect_punct(b')')?;
                Expr::Defined(name)
            }
            "lease-time" => Expr::LeaseTime,
            "filename" => Expr::RequestFilename,
            "server-name" => Expr::RequestServerName,
            "check" => Expr::Check(
                String::from_utf8_lossy(&self.parse_string("a quoted class name")?).into_owned(),
            ),
            "client-state" => Expr::ClientState,
            // ISC tree.c `expr_gethostname`: the system's host name (the one this process has
            // when the configuration is read).
            "gethostname" => {
                self.expect_punct(b'(')?;
                self.expect_punct(b')')?;
                Expr::Data(system_host_name())
            }
            "ddns-fwd-name" | "ddns-rev-name" | "gethostbyname" => {
                return Err(self.unsupported_expression(span, word))
            }
            _ => {
                if self.at_punct(b'(') {
                    // A call of the function a `define` binds to the name when it runs.
                    Expr::Call(word.into(), self.parse_call_arguments()?)
                } else {
                    Expr::Variable(word.into())
                }
            }
        };
        Ok(expr)
    }
}

/// The host name `gethostname(2)` gives (empty if it fails, as ISC's buffer stays empty).
fn system_host_name() -> Vec<u8> {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let status = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if status != 0 {
        return Vec::new();
    }
    let end = buffer
        .iter()
        .position(|byte| *byte == 0)
        .unwrap_or(buffer.len());
    buffer[..end].to_vec()
}

#[cfg(test)]
mod tests {
    use crate::config::expr::{evaluate, BinaryOp, Expr, OptionRef, PacketView, Value};
    use crate::config::parse_str;

    /// Parses a one-class config and returns its `match if` / `match` expression.
    fn class_expr(statement: &str) -> Expr {
        let text = format!("class \"c\" {{ {statement} }}");
        let config = parse_str(&text, "test.conf").unwrap_or_else(|errors| panic!("{errors}"));
        let class = &config.classes[0];
        class
            .match_if
            .clone()
            .or_else(|| class.match_data.clone())
            .expect("an expression")
    }

    struct Packet;

    impl PacketView for Packet {
        fn option(&self, code: u8) -> Option<&[u8]> {
            match code {
                60 => Some(b"docsis3.0"),
                61 => Some(&[1, 0xaa, 0xbb]),
                82 => Some(&[1, 4, b'p', b'o', b'r', b't', 2, 1, 0x07]),
                _ => None,
            }
        }
        fn hardware(&self) -> (u8, &[u8]) {
            (1, &[0x02, 0, 0, 0, 0, 0x01])
        }
        fn known(&self) -> bool {
            true
        }
    }

    #[test]
    fn vendor_class_prefix() {
        let expr =
            class_expr(r#"match if substring(option vendor-class-identifier, 0, 4) = "docs";"#);
        assert_eq!(
            expr,
            Expr::Binary(
                BinaryOp::Equal,
                Box::new(Expr::Substring(
                    Box::new(Expr::Option(OptionRef::Dhcp(60))),
                    Box::new(Expr::Number(0)),
                    Box::new(Expr::Number(4))
                )),
                Box::new(Expr::Data(b"docs".to_vec()))
            )
        );
        assert!(evaluate(&expr, &Packet).is_true());
    }

    #[test]
    fn agent_circuit_id_match_data() {
        let expr = class_expr("match option agent.circuit-id;");
        assert_eq!(expr, Expr::Option(OptionRef::Agent(1)));
        assert_eq!(evaluate(&expr, &Packet), Value::Data(b"port".to_vec()));
    }

    #[test]
    fn hex_constants_in_data_context_and_boolean_operators() {
        let expr = class_expr(
            "match if (substring(option dhcp-client-identifier, 0, 1) = 01 and known) or not exists agent.remote-id;",
        );
        assert!(evaluate(&expr, &Packet).is_true());
        let expr = class_expr("match if option agent.remote-id = 07 and hardware = 1:2:0:0:0:0:1;");
        assert!(evaluate(&expr, &Packet).is_true());
    }

    #[test]
    fn functions_of_section_9() {
        let expr = class_expr(
            r#"match if lcase(concat(binary-to-ascii(16, 8, ":", suffix(hardware, 2)), "-", ucase("x"))) = "0:1-x";"#,
        );
        assert!(evaluate(&expr, &Packet).is_true());
        let expr = class_expr(
            r#"match pick-first-value(option host-name, leased-address, host-decl-name, "d");"#,
        );
        assert_eq!(evaluate(&expr, &Packet), Value::Data(b"d".to_vec()));
        // What xdhcpd does not evaluate is refused, not evaluated as null.
        let text = "class \"c\" { match config-option agent.circuit-id; }";
        let errors = parse_str(text, "t.conf").unwrap_err().to_string();
        assert!(errors.contains("(unsupported)"), "{errors}");
        let expr = class_expr(
            "match if extract-int(option dhcp-client-identifier, 8) + 1 = 2 and 3 * 2 != 5;",
        );
        assert!(evaluate(&expr, &Packet).is_true());
    }

    #[test]
    fn client_state_is_null_and_gethostname_the_systems_name() {
        // ISC's server evaluates `client-state` with no client state: it fails (null).
        let expr = class_expr("match if client-state = 1;");
        assert!(matches!(expr, Expr::Binary(_, ref left, _) if **left == Expr::ClientState));
        assert_eq!(evaluate(&Expr::ClientState, &Packet), Value::Null);
        let errors = parse_str(
            "class \"c\" { match if concat(client-state, \"x\") = \"x\"; }",
            "t.conf",
        );
        assert!(errors.is_err(), "client-state is numeric");
        let expr = class_expr("match gethostname();");
        assert_eq!(
            evaluate(&expr, &Packet),
            Value::Data(super::system_host_name())
        );
        assert!(!super::system_host_name().is_empty());
    }

    #[test]
    fn calls_packet_and_config_option_parse() {
        let expr = class_expr("match if myfn(option host-name, 2) = \"x\";");
        assert!(matches!(
            expr,
            Expr::Binary(_, ref left, _)
                if matches!(**left, Expr::Call(ref name, ref arguments)
                    if name == "myfn" && arguments.len() == 2)
        ));
        assert_eq!(
            class_expr("match packet(300, 4);"),
            Expr::Packet(Box::new(Expr::Number(300)), Box::new(Expr::Number(4)))
        );
        let text = "option domain-name = config-option host-name;";
        assert!(parse_str(text, "t.conf").is_ok());
        // ISC's `is_numeric_expression` takes no variable or call ("expecting numeric
        // expressions").
        for numeric in ["v + 1", "myfn(1) * 2", "substring(\"ab\", v, 1) = \"b\""] {
            let text = format!("class \"c\" {{ match if {numeric}; }}");
            assert!(parse_str(&text, "t.conf").is_err(), "{numeric}");
        }
    }

    #[test]
    fn define_add_return_and_their_errors() {
        let config = parse_str(
            "class \"c\" { }\n\
             define myfn (one, two) { if one = two { return \"same\"; } set x = one; return two; }\n\
             subnet 10.0.0.0 netmask 255.0.0.0 { add \"c\"; eval myfn(1, 2); }",
            "t.conf",
        )
        .unwrap_or_else(|errors| panic!("{errors}"));
        assert_eq!(config.functions.len(), 1);
        assert_eq!(config.functions[0].parameters, ["one", "two"]);
        for (text, wanted) in [
            (
                "subnet 10.0.0.0 netmask 255.0.0.0 { add \"nosuch\"; }",
                "class nosuch: not found",
            ),
            ("define myfn = \"x\";", "(unsupported)"),
            (
                "define myfn (a) { option domain-name \"x\"; }",
                "(unsupported)",
            ),
            ("define myfn (a) { default-lease-time 5; }", "(unsupported)"),
            (
                "define myfn (a) { if true { on commit { } } }",
                "(unsupported)",
            ),
        ] {
            let errors = parse_str(text, "t.conf").unwrap_err().to_string();
            assert!(errors.contains(wanted), "{text}: {errors}");
        }
    }

    #[test]
    fn type_errors_are_reported() {
        let errors = parse_str("class \"c\" { match if option host-name; }", "t.conf").unwrap_err();
        assert_eq!(
            errors.to_string(),
            "t.conf:1:22: expected a boolean expression, found a data expression"
        );
        let errors =
            parse_str("class \"c\" { match if option no-such = 1; }", "t.conf").unwrap_err();
        assert!(errors
            .to_string()
            .contains("expected a known option name, found `no-such`"));
    }
}
