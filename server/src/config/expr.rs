//! Expressions of dhcp-eval(5) used by `match if`, `match` and `if` (docs/spec/dhcpd-conf.md §9): the
//! syntax tree, the parser (`parse` submodule) and an evaluator over a [`PacketView`].
//!
//! Evaluation follows ISC `common/tree.c`: a data expression that cannot be computed (an absent
//! option, `host-decl-name` without a host…) yields [`Value::Null`]; comparisons treat two nulls
//! as equal and one null as different; `and`/`or`/`not` propagate null unless the other side
//! decides the result. A class matches only when `match if` yields `Boolean(true)`.

pub(crate) mod parse;

use std::net::Ipv4Addr;

/// Which option an `option NAME` / `exists NAME` expression reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OptionRef {
    /// An option of the DHCP space, by code.
    Dhcp(u8),
    /// A relay-agent-information (option 82) sub-option, by sub-option code (RFC 3046 §2.0).
    Agent(u8),
    /// An option of another space, inside the DHCP option that carries it
    /// ([`crate::config::spaces::SubOptionPath`]).
    SubOption(crate::config::spaces::SubOptionPath),
}

/// Binary operators, with ISC's precedence (`tree.c` `op_val`: lower binds tighter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Equal,
    NotEqual,
    And,
    Or,
    Add,
    Subtract,
    Multiply,
    Divide,
    Remainder,
    BitAnd,
    BitOr,
    BitXor,
    /// `~=` (regular expression match); parsed into [`Expr::RegexMatch`].
    RegexMatch,
    /// `~~` (case-insensitive regular expression match); parsed into [`Expr::RegexMatch`].
    IregexMatch,
}

/// What an expression yields, for the parser's type checks (ISC `is_boolean_expression`,
/// `is_data_expression`, `is_numeric_expression`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExprKind {
    Boolean,
    Data,
    Numeric,
    /// Variables and function calls: type known only at run time.
    Any,
}

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A constant data value: `"string"` or colon-hex `01:02:03`.
    Data(Vec<u8>),
    /// A numeric constant.
    Number(u32),
    /// `true` / `false`.
    Boolean(bool),
    /// `option NAME`: the option's bytes from the packet.
    Option(OptionRef),
    /// `exists NAME`.
    Exists(OptionRef),
    /// `substring(DATA, OFFSET, LENGTH)`.
    Substring(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `suffix(DATA, LENGTH)`.
    Suffix(Box<Expr>, Box<Expr>),
    /// `hardware`: hardware type then chaddr.
    Hardware,
    /// `binary-to-ascii(BASE, WIDTH, "SEPARATOR", DATA)`.
    BinaryToAscii {
        base: Box<Expr>,
        width: Box<Expr>,
        separator: Box<Expr>,
        data: Box<Expr>,
    },
    /// `concat(A, B, …)`.
    Concat(Vec<Expr>),
    /// `pick-first-value(A, B, …)`.
    PickFirstValue(Vec<Expr>),
    Lcase(Box<Expr>),
    Ucase(Box<Expr>),
    /// `packet(OFFSET, LENGTH)`: raw bytes of the DHCP message.
    Packet(Box<Expr>, Box<Expr>),
    /// `extract-int(DATA, WIDTH)`.
    ExtractInt(Box<Expr>, u8),
    /// `encode-int(NUMBER, WIDTH)`.
    EncodeInt(Box<Expr>, u8),
    /// `reverse(WIDTH, DATA)`.
    Reverse(Box<Expr>, Box<Expr>),
    LeasedAddress,
    /// `lease-time`: seconds left on the lease being answered (null without one, or ended).
    LeaseTime,
    /// `check "CLASS"`: whether the request is in that class (one matched before, while
    /// classes are matched).
    Check(String),
    /// `filename` / `server-name` in an expression: the request's `file` / `sname` field up to
    /// its first NUL, null when empty (ISC `expr_filename`, `expr_sname`).
    RequestFilename,
    RequestServerName,
    HostDeclName,
    Known,
    /// `static`: true for leases of fixed-address hosts; not known at classing time.
    Static,
    Not(Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `DATA ~= "REGEX"` / `DATA ~~ "REGEX"` (dhcp-eval(5)): whether the regular expression
    /// matches somewhere in the data.
    RegexMatch(Box<Expr>, Pattern),
    /// A variable reference: the lease's value of that name (set by `set`, or read from the
    /// lease file), null when it has none.
    Variable(String),
    /// `defined(NAME)`: whether the variable has a value.
    Defined(String),
    /// A construct that always yields null (`null`, an option of a space xdhcpd does not
    /// decode).
    Unsupported(String),
    /// `NAME(ARGUMENTS)`: a call of the function a `define` bound to NAME (tree.c
    /// `expr_funcall`); null when NAME is no function.
    Call(String, Vec<Expr>),
    /// `config-option NAME`: the value the configuration gives option NAME of the dhcp space
    /// for this reply, from the option statements executed so far (tree.c
    /// `expr_config_option`); null where no reply is being built (class matching).
    ConfigOption(u8),
    /// `client-state`: the DHCP client's state, a number in ISC's client; the server has no
    /// client state and ISC's evaluation fails (tree.c `expr_client_state` with no
    /// `client_state`), so it is null.
    ClientState,
}

impl Expr {
    /// The kind of value this expression yields.
    pub fn kind(&self) -> ExprKind {
        match self {
            Expr::Boolean(_)
            | Expr::Check(_)
            | Expr::RegexMatch(..)
            | Expr::Defined(_)
            | Expr::Exists(_)
            | Expr::Known
            | Expr::Static
            | Expr::Not(_)
            | Expr::Binary(
                BinaryOp::Equal
                | BinaryOp::NotEqual
                | BinaryOp::And
                | BinaryOp::Or
                | BinaryOp::RegexMatch
                | BinaryOp::IregexMatch,
                ..,
            ) => ExprKind::Boolean,
            Expr::Number(_)
            | Expr::ExtractInt(..)
            | Expr::Binary(..)
            | Expr::LeaseTime
            | Expr::ClientState => ExprKind::Numeric,
            Expr::Variable(_) | Expr::Unsupported(_) | Expr::Call(..) => ExprKind::Any,
            Expr::Data(_)
            | Expr::Option(_)
            | Expr::Substring(..)
            | Expr::Suffix(..)
            | Expr::Hardware
            | Expr::BinaryToAscii { .. }
            | Expr::Concat(_)
            | Expr::PickFirstValue(_)
            | Expr::Lcase(_)
            | Expr::Ucase(_)
            | Expr::Packet(..)
            | Expr::EncodeInt(..)
            | Expr::Reverse(..)
            | Expr::LeasedAddress
            | Expr::RequestFilename
            | Expr::RequestServerName
            | Expr::ConfigOption(_)
            | Expr::HostDeclName => ExprKind::Data,
        }
    }
}

/// The regular expression of `~=` / `~~`, compiled once when the configuration is read. ISC
/// compiles it with POSIX `regcomp(REG_EXTENDED)` (`REG_ICASE` for `~~`); the extended syntax
/// operators ISC configurations use (anchors, classes, alternation, repetition, bracket
/// expressions with `[:digit:]`-style classes) mean the same in the `regex` crate, and a
/// pattern it cannot compile is refused when the configuration is read.
#[derive(Clone, Debug)]
pub struct Pattern {
    pub source: String,
    pub case_insensitive: bool,
    regex: regex::bytes::Regex,
}

impl Pattern {
    pub fn new(source: &str, case_insensitive: bool) -> Result<Self, regex::Error> {
        let regex = regex::bytes::RegexBuilder::new(source)
            .case_insensitive(case_insensitive)
            // POSIX regexec works on bytes; `.` and classes match any byte, not UTF-8 only.
            .unicode(false)
            .build()?;
        Ok(Self {
            source: source.to_owned(),
            case_insensitive,
            regex,
        })
    }

    /// ISC hands regexec a C string: the data up to its first NUL byte.
    pub fn is_match(&self, data: &[u8]) -> bool {
        let end = data
            .iter()
            .position(|byte| *byte == 0)
            .unwrap_or(data.len());
        self.regex.is_match(&data[..end])
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.case_insensitive == other.case_insensitive
    }
}

/// The result of evaluating an expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Boolean(bool),
    Data(Vec<u8>),
    Number(u32),
    /// A function a `define` bound (index into `Config::functions`); equal only to itself,
    /// as ISC compares the definitions. Never written to the lease file (ISC logs
    /// "persistent functions not supported").
    Function(usize),
    /// Could not be computed (absent option, unsupported construct…).
    Null,
}

impl Value {
    /// True only for `Boolean(true)`: what `match if` and `if` need to select.
    pub fn is_true(&self) -> bool {
        matches!(self, Value::Boolean(true))
    }

    /// The bytes of a data value (`None` for anything else).
    pub fn as_data(&self) -> Option<&[u8]> {
        match self {
            Value::Data(bytes) => Some(bytes),
            _ => None,
        }
    }

    fn as_number(&self) -> Option<u32> {
        match self {
            Value::Number(number) => Some(*number),
            _ => None,
        }
    }
}

/// What the evaluator may ask about the packet being classified. The engine implements it over
/// its decoded request.
pub trait PacketView {
    /// The payload of DHCP option `code` (without code and length), if present. Option 82 gives
    /// the raw relay-agent-information; sub-options are extracted by the evaluator.
    fn option(&self, code: u8) -> Option<&[u8]>;
    /// `htype` and the first `hlen` bytes of `chaddr`.
    fn hardware(&self) -> (u8, &[u8]);
    /// Whether a host declaration matched this client (`known`).
    fn known(&self) -> bool;
    /// The whole DHCP message as received (for `packet(…)`); empty when not available.
    fn raw_packet(&self) -> &[u8] {
        &[]
    }
    /// The address being leased, once one is chosen (`leased-address`).
    fn leased_address(&self) -> Option<Ipv4Addr> {
        None
    }
    /// The name of the matching host declaration (`host-decl-name`).
    fn host_decl_name(&self) -> Option<&str> {
        None
    }
    /// Whether the request is in class `name` (`check`).
    fn in_class(&self, _name: &str) -> bool {
        false
    }
    /// Seconds left on the lease being answered (`lease-time`).
    fn lease_time(&self) -> Option<u32> {
        None
    }
    /// The request's `file` (true) or `sname` (false) header field.
    fn boot_field(&self, _file: bool) -> Option<&[u8]> {
        None
    }
    /// The value of variable `name` in the lease's scope (ISC `binding_scope`).
    fn variable(&self, _name: &str) -> Option<Value> {
        None
    }
    /// The value of calling the function bound to `name` with `arguments` (ISC
    /// `expr_funcall`); null where no function can be bound (class matching: ISC looks in
    /// its global scope, which statements of a reply do not fill).
    fn call(&self, _name: &str, _arguments: &[Expr]) -> Value {
        Value::Null
    }
    /// `config-option`: the configured value of option `code` for the reply being built.
    fn config_option(&self, _code: u8) -> Option<Vec<u8>> {
        None
    }
}

/// The fixed BOOTP header and the magic cookie (RFC 2131 §2, §3): the bytes `packet()` reads.
pub const PACKET_HEADER_LENGTH: usize = 240;

/// Relay Agent Information option code (RFC 3046).
const RELAY_AGENT_INFORMATION: u8 = 82;

/// Finds sub-option `code` inside an option 82 payload (RFC 3046 §2.0: code, length, value…).
/// A truncated sub-option ends the search.
pub fn agent_suboption(payload: &[u8], code: u8) -> Option<&[u8]> {
    let mut rest = payload;
    while let [sub_code, length, tail @ ..] = rest {
        let length = usize::from(*length);
        let value = tail.get(..length)?;
        if *sub_code == code {
            return Some(value);
        }
        rest = &tail[length..];
    }
    None
}

fn read_option(packet: &dyn PacketView, option: OptionRef) -> Option<&[u8]> {
    match option {
        OptionRef::Dhcp(code) => packet.option(code),
        OptionRef::Agent(code) => agent_suboption(packet.option(RELAY_AGENT_INFORMATION)?, code),
        OptionRef::SubOption(path) => path.find(packet.option(path.dhcp_code?)?),
    }
}

/// Evaluates `expr` against a packet.
pub fn evaluate(expr: &Expr, packet: &dyn PacketView) -> Value {
    match expr {
        Expr::Data(bytes) => Value::Data(bytes.clone()),
        Expr::Number(number) => Value::Number(*number),
        Expr::Boolean(value) => Value::Boolean(*value),
        Expr::Option(option) => {
            read_option(packet, *option).map_or(Value::Null, |bytes| Value::Data(bytes.to_vec()))
        }
        Expr::Exists(option) => Value::Boolean(read_option(packet, *option).is_some()),
        Expr::Substring(data, offset, length) => {
            let (Some(data), Some(offset), Some(length)) = (
                data_of(data, packet),
                number_of(offset, packet),
                number_of(length, packet),
            ) else {
                return Value::Null;
            };
            // tree.c: an offset past the end gives an empty string, a length past it is cut.
            let start = (offset as usize).min(data.len());
            let end = start.saturating_add(length as usize).min(data.len());
            Value::Data(data[start..end].to_vec())
        }
        Expr::Suffix(data, length) => {
            let (Some(data), Some(length)) = (data_of(data, packet), number_of(length, packet))
            else {
                return Value::Null;
            };
            let start = data.len().saturating_sub(length as usize);
            Value::Data(data[start..].to_vec())
        }
        Expr::Hardware => {
            let (htype, address) = packet.hardware();
            let mut bytes = Vec::with_capacity(address.len() + 1);
            bytes.push(htype);
            bytes.extend_from_slice(address);
            Value::Data(bytes)
        }
        Expr::BinaryToAscii {
            base,
            width,
            separator,
            data,
        } => {
            let (Some(base), Some(width), Some(separator), Some(data)) = (
                number_of(base, packet),
                number_of(width, packet),
                data_of(separator, packet),
                data_of(data, packet),
            ) else {
                return Value::Null;
            };
            binary_to_ascii(base, width, &separator, &data)
        }
        Expr::Concat(parts) => {
            // dhcp-eval(5): if any part is null, the concatenation is null.
            let mut bytes = Vec::new();
            for part in parts {
                match data_of(part, packet) {
                    Some(data) => bytes.extend_from_slice(&data),
                    None => return Value::Null,
                }
            }
            Value::Data(bytes)
        }
        Expr::PickFirstValue(parts) => parts
            .iter()
            .find_map(|part| data_of(part, packet))
            .map_or(Value::Null, Value::Data),
        Expr::Lcase(data) => {
            data_of(data, packet).map_or(Value::Null, |data| Value::Data(data.to_ascii_lowercase()))
        }
        Expr::Ucase(data) => {
            data_of(data, packet).map_or(Value::Null, |data| Value::Data(data.to_ascii_uppercase()))
        }
        Expr::Packet(offset, length) => {
            let (Some(offset), Some(length)) =
                (number_of(offset, packet), number_of(length, packet))
            else {
                return Value::Null;
            };
            let raw = packet.raw_packet();
            let start = (offset as usize).min(raw.len());
            let end = start.saturating_add(length as usize).min(raw.len());
            Value::Data(raw[start..end].to_vec())
        }
        Expr::ExtractInt(data, width) => {
            let Some(data) = data_of(data, packet) else {
                return Value::Null;
            };
            let size = usize::from(*width / 8);
            // tree.c: too few bytes → the evaluation fails.
            match data.get(..size) {
                Some(bytes) => Value::Number(
                    bytes
                        .iter()
                        .fold(0u32, |acc, byte| (acc << 8) | u32::from(*byte)),
                ),
                None => Value::Null,
            }
        }
        Expr::EncodeInt(number, width) => {
            let Some(number) = number_of(number, packet) else {
                return Value::Null;
            };
            let bytes = number.to_be_bytes();
            let size = usize::from(*width / 8).min(4);
            Value::Data(bytes[4 - size..].to_vec())
        }
        Expr::Reverse(width, data) => {
            let (Some(width), Some(data)) = (number_of(width, packet), data_of(data, packet))
            else {
                return Value::Null;
            };
            let width = width as usize;
            if width == 0 || data.len() % width != 0 {
                return Value::Null;
            }
            let mut bytes = Vec::with_capacity(data.len());
            for chunk in data.chunks(width).rev() {
                bytes.extend_from_slice(chunk);
            }
            Value::Data(bytes)
        }
        Expr::LeasedAddress => packet.leased_address().map_or(Value::Null, |address| {
            Value::Data(address.octets().to_vec())
        }),
        Expr::LeaseTime => packet.lease_time().map_or(Value::Null, Value::Number),
        Expr::Check(name) => Value::Boolean(packet.in_class(name)),
        Expr::RequestFilename | Expr::RequestServerName => packet
            .boot_field(matches!(expr, Expr::RequestFilename))
            .map(|field| {
                &field[..field
                    .iter()
                    .position(|byte| *byte == 0)
                    .unwrap_or(field.len())]
            })
            .filter(|field| !field.is_empty())
            .map_or(Value::Null, |field| Value::Data(field.to_vec())),
        Expr::HostDeclName => packet
            .host_decl_name()
            .map_or(Value::Null, |name| Value::Data(name.as_bytes().to_vec())),
        Expr::Known => Value::Boolean(packet.known()),
        Expr::Static => Value::Boolean(false),
        Expr::Not(inner) => match evaluate(inner, packet) {
            Value::Boolean(value) => Value::Boolean(!value),
            _ => Value::Null,
        },
        Expr::Binary(op, left, right) => evaluate_binary(*op, left, right, packet),
        // tree.c: a null subject makes the evaluation fail.
        Expr::RegexMatch(subject, pattern) => data_of(subject, packet)
            .map_or(Value::Null, |data| Value::Boolean(pattern.is_match(&data))),
        Expr::Variable(name) => packet.variable(name).unwrap_or(Value::Null),
        Expr::Defined(name) => Value::Boolean(packet.variable(name).is_some()),
        Expr::Call(name, arguments) => packet.call(name, arguments),
        Expr::ConfigOption(code) => packet.config_option(*code).map_or(Value::Null, Value::Data),
        Expr::Unsupported(_) | Expr::ClientState => Value::Null,
    }
}

fn data_of(expr: &Expr, packet: &dyn PacketView) -> Option<Vec<u8>> {
    match evaluate(expr, packet) {
        Value::Data(bytes) => Some(bytes),
        _ => None,
    }
}

fn number_of(expr: &Expr, packet: &dyn PacketView) -> Option<u32> {
    evaluate(expr, packet).as_number()
}

fn evaluate_binary(op: BinaryOp, left: &Expr, right: &Expr, packet: &dyn PacketView) -> Value {
    match op {
        BinaryOp::Equal | BinaryOp::NotEqual => {
            let left = evaluate(left, packet);
            let right = evaluate(right, packet);
            // tree.c expr_equal: two nulls are equal, one null differs from anything.
            let equal = left == right;
            Value::Boolean(equal == (op == BinaryOp::Equal))
        }
        BinaryOp::And => match (evaluate(left, packet), evaluate(right, packet)) {
            (Value::Boolean(false), _) | (_, Value::Boolean(false)) => Value::Boolean(false),
            (Value::Boolean(true), Value::Boolean(true)) => Value::Boolean(true),
            _ => Value::Null,
        },
        BinaryOp::Or => match (evaluate(left, packet), evaluate(right, packet)) {
            (Value::Boolean(true), _) | (_, Value::Boolean(true)) => Value::Boolean(true),
            (Value::Boolean(false), Value::Boolean(false)) => Value::Boolean(false),
            _ => Value::Null,
        },
        BinaryOp::RegexMatch | BinaryOp::IregexMatch => Value::Null,
        BinaryOp::Add
        | BinaryOp::Subtract
        | BinaryOp::Multiply
        | BinaryOp::Divide
        | BinaryOp::Remainder
        | BinaryOp::BitAnd
        | BinaryOp::BitOr
        | BinaryOp::BitXor => {
            let (Some(a), Some(b)) = (number_of(left, packet), number_of(right, packet)) else {
                return Value::Null;
            };
            let result = match op {
                BinaryOp::Add => Some(a.wrapping_add(b)),
                BinaryOp::Subtract => Some(a.wrapping_sub(b)),
                BinaryOp::Multiply => Some(a.wrapping_mul(b)),
                // tree.c: division by zero makes the evaluation fail.
                BinaryOp::Divide => a.checked_div(b),
                BinaryOp::Remainder => a.checked_rem(b),
                BinaryOp::BitAnd => Some(a & b),
                BinaryOp::BitOr => Some(a | b),
                _ => Some(a ^ b),
            };
            result.map_or(Value::Null, Value::Number)
        }
    }
}

/// `binary-to-ascii`: each `width`-bit big-endian chunk written in `base` (2-16, lowercase
/// digits, no padding), joined by `separator`. Incomplete trailing chunks are ignored.
fn binary_to_ascii(base: u32, width: u32, separator: &[u8], data: &[u8]) -> Value {
    if !(2..=16).contains(&base) || !matches!(width, 8 | 16 | 32) {
        return Value::Null;
    }
    let size = (width / 8) as usize;
    let mut text = Vec::new();
    for (index, chunk) in data.chunks_exact(size).enumerate() {
        if index > 0 {
            text.extend_from_slice(separator);
        }
        let mut number = chunk
            .iter()
            .fold(0u32, |acc, byte| (acc << 8) | u32::from(*byte));
        let mut digits = Vec::new();
        loop {
            let digit = number % base;
            digits.push(b"0123456789abcdef"[digit as usize]);
            number /= base;
            if number == 0 {
                break;
            }
        }
        digits.reverse();
        text.extend_from_slice(&digits);
    }
    Value::Data(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet with a few options and a fixed hardware address.
    pub(crate) struct FakePacket {
        pub options: Vec<(u8, Vec<u8>)>,
        pub chaddr: Vec<u8>,
        pub known: bool,
    }

    impl PacketView for FakePacket {
        fn option(&self, code: u8) -> Option<&[u8]> {
            self.options
                .iter()
                .find(|(option, _)| *option == code)
                .map(|(_, value)| value.as_slice())
        }
        fn hardware(&self) -> (u8, &[u8]) {
            (1, &self.chaddr)
        }
        fn known(&self) -> bool {
            self.known
        }
    }

    fn packet() -> FakePacket {
        FakePacket {
            options: vec![
                (60, b"docsis3.0".to_vec()),
                (82, vec![1, 3, b'p', b'-', b'1', 2, 2, 0xab, 0xcd]),
            ],
            chaddr: vec![0x00, 0x11, 0x22, 0x33, 0x44, 0x55],
            known: false,
        }
    }

    fn data(text: &str) -> Box<Expr> {
        Box::new(Expr::Data(text.as_bytes().to_vec()))
    }

    #[test]
    fn substring_of_vendor_class_matches() {
        let expr = Expr::Binary(
            BinaryOp::Equal,
            Box::new(Expr::Substring(
                Box::new(Expr::Option(OptionRef::Dhcp(60))),
                Box::new(Expr::Number(0)),
                Box::new(Expr::Number(4)),
            )),
            data("docs"),
        );
        assert_eq!(evaluate(&expr, &packet()), Value::Boolean(true));
    }

    #[test]
    fn agent_suboptions_come_from_option_82() {
        let circuit = Expr::Option(OptionRef::Agent(1));
        assert_eq!(evaluate(&circuit, &packet()), Value::Data(b"p-1".to_vec()));
        let remote = Expr::Option(OptionRef::Agent(2));
        assert_eq!(evaluate(&remote, &packet()), Value::Data(vec![0xab, 0xcd]));
        assert_eq!(
            evaluate(&Expr::Exists(OptionRef::Agent(6)), &packet()),
            Value::Boolean(false)
        );
    }

    #[test]
    fn hardware_and_binary_to_ascii() {
        let expr = Expr::BinaryToAscii {
            base: Box::new(Expr::Number(16)),
            width: Box::new(Expr::Number(8)),
            separator: data(":"),
            data: Box::new(Expr::Suffix(
                Box::new(Expr::Hardware),
                Box::new(Expr::Number(6)),
            )),
        };
        assert_eq!(
            evaluate(&expr, &packet()),
            Value::Data(b"0:11:22:33:44:55".to_vec())
        );
    }

    #[test]
    fn nulls_propagate_like_isc() {
        let absent = Box::new(Expr::Option(OptionRef::Dhcp(77)));
        let concat = Expr::Concat(vec![*data("a"), (*absent).clone()]);
        assert_eq!(evaluate(&concat, &packet()), Value::Null);
        let pick = Expr::PickFirstValue(vec![(*absent).clone(), *data("b")]);
        assert_eq!(evaluate(&pick, &packet()), Value::Data(b"b".to_vec()));
        let equal = Expr::Binary(BinaryOp::Equal, absent.clone(), data("x"));
        assert_eq!(evaluate(&equal, &packet()), Value::Boolean(false));
        let both_null = Expr::Binary(BinaryOp::Equal, absent.clone(), absent.clone());
        assert_eq!(evaluate(&both_null, &packet()), Value::Boolean(true));
        let and = Expr::Binary(
            BinaryOp::And,
            Box::new(Expr::Known),
            Box::new(Expr::Not(Box::new(Expr::Variable("v".into())))),
        );
        assert_eq!(evaluate(&and, &packet()), Value::Boolean(false));
    }

    #[test]
    fn integers_encode_and_extract() {
        let expr = Expr::ExtractInt(
            Box::new(Expr::EncodeInt(Box::new(Expr::Number(0x1234)), 16)),
            16,
        );
        assert_eq!(evaluate(&expr, &packet()), Value::Number(0x1234));
        let lower = Expr::Lcase(data("AbC"));
        assert_eq!(evaluate(&lower, &packet()), Value::Data(b"abc".to_vec()));
    }
}
