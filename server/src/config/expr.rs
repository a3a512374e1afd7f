//! Expressions of dhcp-eval(5) used by `match if`, `match` and `if` (placeholder until the
//! parser lands).

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A constant data value.
    Data(Vec<u8>),
}
