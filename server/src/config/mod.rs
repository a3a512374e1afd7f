//! dhcpd.conf: lexer, parser (syntax tree with spans) and validation into [`model::Config`]
//! (shared/spec/dhcpd-conf.md).

pub mod expr;
pub mod lexer;
pub mod model;
