//! dhcpd.conf: lexer, parser (statements with spans) and validation into [`model::Config`]
//! (docs/spec/dhcpd-conf.md).
//!
//! Entry points: [`parse_str`] for text already in memory and [`load_file`] for a file on disk;
//! both follow `include "PATH";`. [`parse_statements`] reads a bare statement list (OMAPI host
//! `statements`). Every problem found in one run is reported (the parser
//! resynchronises at the next `;` or at the end of the enclosing block), as
//! `file:line:column: expected X, found Y`.

pub mod addresses;
mod base64;
pub mod expr;
pub mod lexer;
pub mod model;
pub mod options;
mod parser;
pub mod resolve;
pub mod spaces;
pub mod xdhcpd;

use std::fmt;
use std::path::Path;

pub use model::Config;
pub(crate) use parser::parse_event_body;

/// What went wrong at one place in the configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigErrorKind {
    /// The general parse or validation failure: what the grammar or a rule wanted and what the
    /// file holds instead.
    #[error("expected {expected}, found {found}")]
    Expected { expected: String, found: String },
    /// Bytes that are not a token.
    #[error("{0}")]
    Lex(#[from] lexer::LexError),
    /// An included (or the main) file could not be read.
    #[error("expected a readable file \"{path}\", found an error: {reason}")]
    Read { path: String, reason: String },
    /// A file includes itself, directly or through others.
    #[error("expected no include loop, found \"{path}\" already being read")]
    IncludeLoop { path: String },
    /// A statement ISC 4.4 itself rejects.
    #[error("{what} is no longer supported")]
    Unsupported { what: String },
}

/// One diagnostic: where (`file:line:column`) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub location: String,
    pub kind: ConfigErrorKind,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.kind)
    }
}

impl std::error::Error for ConfigError {}

/// Every error of one parse, in file order (validation errors after parse errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    /// One line per error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.errors.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Parses and validates configuration text. `file_name` names the text in diagnostics; relative
/// `include` paths that do not exist relative to the working directory are tried relative to
/// `file_name`'s directory.
/// Host names are not looked up ([`resolve::offline`]: each is a name that does not resolve);
/// [`parse_str_resolving`] says how to.
pub fn parse_str(text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
    parse_str_resolving(text, file_name, resolve::offline)
}

/// [`parse_str`], with host names looked up by `resolver` ([`resolve`]).
pub fn parse_str_resolving(
    text: &str,
    file_name: &str,
    resolver: resolve::Resolver,
) -> Result<Config, ConfigErrors> {
    parser::parse_bytes(text.as_bytes(), file_name, Path::new(file_name), resolver)
}

/// A statement list parsed on its own: the scope it describes and the statements it holds that
/// were accepted but are not applied (see [`parse_statements`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Statements {
    /// Options and parameters, as in a `host { … }` body; `parent` is `None`.
    pub scope: model::Scope,
    pub warnings: Vec<model::Warning>,
}

/// Parses a list of statements as found in an OMAPI `statements` attribute or a host record of
/// dhcpd.leases (docs/spec/omapi.md §8.2, docs/spec/dhcpd-conf.md §8.5): `option NAME VALUE;`, `supersede NAME =
/// DATA;` (ISC's canonical form, constant data is the wire value), `default-lease-time N;` and
/// the other parameters, or `supersede server.PARAMETER = DATA;` with integers as colon-hex.
/// Declarations (`host`, `subnet`, `include`, …) are errors. `name` names the text in
/// diagnostics.
pub fn parse_statements(text: &str, name: &str) -> Result<Statements, ConfigErrors> {
    parser::parse_statement_list(text.as_bytes(), name)
        .map(|(scope, warnings)| Statements { scope, warnings })
}

/// Reads, parses and validates a dhcpd.conf file and its includes; host names are looked up
/// with the system's resolver ([`resolve::system`]).
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let name = path.display().to_string();
    match parser::read_config_file(path) {
        Ok(bytes) => parser::parse_bytes(&bytes, &name, path, resolve::system),
        Err(reason) => Err(ConfigErrors {
            errors: vec![ConfigError {
                location: name.clone(),
                kind: ConfigErrorKind::Read { path: name, reason },
            }],
        }),
    }
}
