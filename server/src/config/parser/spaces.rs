//! Option spaces in the configuration (dhcp-options(5) "DEFINING NEW OPTIONS", "VENDOR
//! ENCAPSULATED OPTIONS"; dhcpd.conf(5) `vendor-option-space`, `site-option-space`):
//! `option space NAME …;`, values of options in spaces other than dhcp, and the two parameters
//! that choose a space for a reply. The values are encoded here with the option's type (as for
//! the dhcp space, `values.rs`); `engine::encapsulation` puts them on the wire with the space's
//! code and length widths.

use super::{Block, BlockKind, ParseResult, Parser};
use crate::config::expr::Expr;
use crate::config::lexer::{Span, TokenKind};
use crate::config::model::{OptionForm, OptionValue, ScopeId, SpaceOption};
use crate::config::options::{OptionDefinition, SpaceDefinition};
use crate::config::spaces::OptionSpaces;

/// Which of the two space parameters a statement set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SpaceParameter {
    Vendor,
    Site,
}

/// A `vendor-option-space` / `site-option-space` statement whose name is looked up once the
/// whole file is read (ISC looks the name up when it builds a reply, so the space may be
/// declared after the statement).
#[derive(Clone, Debug)]
pub(crate) struct PendingSpaceName {
    pub scope: ScopeId,
    pub parameter: SpaceParameter,
    pub name: String,
    pub span: Span,
}

/// ISC's built-in spaces whose options are encoded by functions of their own
/// (common/options.c `fqdn_option_space_encapsulate`, `nwip_option_space_encapsulate`): values
/// set in them are refused rather than sent differently.
const SPECIAL_SPACES: &[&str] = &["fqdn", "nwip"];

impl Parser {
    /// `option space NAME [code width 1|2|4] [length width 1|2] [hash size N];` after `option`
    /// (common/parse.c `parse_option_space_decl`): only at the top level.
    pub(super) fn parse_option_space_declaration(
        &mut self,
        block: Block,
        span: Span,
    ) -> ParseResult<()> {
        self.bump();
        if block.kind != BlockKind::Global {
            return Err(self.invalid(
                span,
                "`option space` at the top level",
                format!(
                    "`option space` inside a {} (ISC: option space definitions may not be scoped)",
                    super::declarations::block_name(block.kind)
                ),
            ));
        }
        let name = match self.peek().kind.clone() {
            TokenKind::Name(name) => {
                self.bump();
                name
            }
            _ => return Err(self.expected("an option space name")),
        };
        let mut definition = SpaceDefinition {
            name,
            code_width: 1,
            length_width: 1,
            unchecked_names: false,
            encapsulated: false,
        };
        loop {
            if self.eat_punct(b';') {
                break;
            }
            if self.eat_keyword("code") {
                self.expect_keyword("width")?;
                let (width, width_span) = self.parse_integer("a code width (1, 2 or 4)")?;
                if !matches!(width, 1 | 2 | 4) {
                    return Err(self.invalid(
                        width_span,
                        "a code width of 1, 2 or 4",
                        width.to_string(),
                    ));
                }
                definition.code_width = width as u8;
            } else if self.eat_keyword("length") {
                self.expect_keyword("width")?;
                // dhcp-options(5) lists 0 as valid, but `parse_option_space_decl` refuses it
                // ("invalid length width"): only ISC's own DHCPv6 spaces have no length.
                let (width, width_span) = self.parse_integer("a length width (1 or 2)")?;
                if !matches!(width, 1 | 2) {
                    return Err(self.invalid(
                        width_span,
                        "a length width of 1 or 2",
                        width.to_string(),
                    ));
                }
                definition.length_width = width as u8;
            } else if self.eat_keyword("hash") {
                self.expect_keyword("size")?;
                self.parse_number_in("a hash size", 0, i64::from(i32::MAX))?;
            } else {
                return Err(self.expected("`code width`, `length width`, `hash size` or `;`"));
            }
        }
        self.options.declare_space(definition);
        Ok(())
    }

    /// Records the value of option `definition` of a space other than dhcp, agent and server
    /// (already parsed: constant wire bytes or a data expression), for the scope of `block`.
    pub(super) fn store_space_option(
        &mut self,
        block: Block,
        definition: &OptionDefinition,
        form: &str,
        value: OptionValue,
        name_span: Span,
    ) -> ParseResult<()> {
        let Some(space) = self.options.space_definition(definition.space).cloned() else {
            return Ok(());
        };
        let full_name = format!("{}.{}", space.name, definition.name);
        if space.unchecked_names {
            // ISC's DHCPv6 spaces: a DHCPv4 server stores such values and never sends them.
            self.warn(
                name_span,
                format!("option `{full_name}` is a DHCPv6 option, which a DHCPv4 server never sends (nor does ISC dhcpd); ignored"),
            );
            return Ok(());
        }
        if SPECIAL_SPACES
            .iter()
            .any(|special| space.name.eq_ignore_ascii_case(special))
        {
            return Err(self.invalid(
                name_span,
                "an option of a space xdhcpd builds (a declared `option space`, `vendor`, `vendor-class`, `isc`)",
                format!("`{full_name}` (values in ISC's `{}` space are unsupported)", space.name),
            ));
        }
        let max_code = if space.code_width >= 4 {
            u32::MAX
        } else {
            (1u32 << (8 * u32::from(space.code_width))) - 1
        };
        if definition.code > max_code {
            self.warn(
                name_span,
                format!(
                    "option `{full_name}` has code {}, more than the space's code width of {} byte(s) holds; only its low bytes are sent, as ISC does",
                    definition.code, space.code_width
                ),
            );
        }
        if let OptionValue::Constant(bytes) = &value {
            let max_length = (1usize << (8 * usize::from(space.length_width))) - 1;
            if bytes.len() > max_length {
                self.warn(
                    name_span,
                    format!(
                        "option `{full_name}` is {} bytes long, more than the space's length width of {} byte(s) holds; its length is sent cut to its low bytes, as ISC does",
                        bytes.len(),
                        space.length_width
                    ),
                );
            }
        }
        let form = match form {
            "default" => OptionForm::Default,
            "prepend" => OptionForm::Prepend,
            "append" => OptionForm::Append,
            _ => OptionForm::Supersede,
        };
        self.scope_mut(block.scope).space_options.push(SpaceOption {
            space: definition.space,
            code: definition.code,
            form,
            value,
        });
        Ok(())
    }

    /// `vendor-option-space NAME;` (ISC server option format `U`: an identifier) and
    /// `site-option-space "NAME";` (format `X`: a string or colon-hex), with the keyword next.
    /// The name is looked up after the whole file is read ([`Self::resolve_option_spaces`]).
    pub(super) fn parse_space_parameter(
        &mut self,
        block: Block,
        word: &str,
        span: Span,
    ) -> ParseResult<()> {
        self.bump();
        let _ = span;
        self.parse_space_parameter_value(block, word)
    }

    /// The value of `vendor-option-space` / `site-option-space` (`word`), also reached as
    /// `option server.vendor-option-space …;`.
    pub(super) fn parse_space_parameter_value(
        &mut self,
        block: Block,
        word: &str,
    ) -> ParseResult<()> {
        let parameter = if word.eq_ignore_ascii_case("vendor-option-space") {
            SpaceParameter::Vendor
        } else {
            SpaceParameter::Site
        };
        let value_span = self.peek().span;
        if self.at_punct(b'=') {
            self.bump();
            let expression = self.parse_expression()?;
            self.expect_semicolon()?;
            let Expr::Data(bytes) = expression else {
                return Err(self.invalid(
                    value_span,
                    format!("a constant space name for `{word}`"),
                    "an expression (computed option space names are unsupported)",
                ));
            };
            return self.note_space_name(block, parameter, &bytes, value_span);
        }
        let name = match parameter {
            SpaceParameter::Vendor => match self.peek().kind.clone() {
                TokenKind::Name(name) => {
                    self.bump();
                    name.into_bytes()
                }
                _ => return Err(self.expected("an option space name")),
            },
            SpaceParameter::Site => {
                self.parse_data("an option space name as a quoted string or colon-hex")?
            }
        };
        self.expect_semicolon()?;
        self.note_space_name(block, parameter, &name, value_span)
    }

    fn note_space_name(
        &mut self,
        block: Block,
        parameter: SpaceParameter,
        name: &[u8],
        span: Span,
    ) -> ParseResult<()> {
        // ISC's constant data for a `U` value is NUL-terminated in memory, not in its length.
        let name = String::from_utf8_lossy(name).into_owned();
        self.side.pending_space_names.push(PendingSpaceName {
            scope: block.scope,
            parameter,
            name,
            span,
        });
        Ok(())
    }

    /// `parse-vendor-option;` (ISC common/execute.c: decodes the request's option 43 into the
    /// `vendor-option-space` for later expressions): refused, xdhcpd reads no option 43.
    pub(super) fn unsupported_parse_vendor_option(&mut self, span: Span) -> super::ConfigError {
        self.invalid(
            span,
            "a statement xdhcpd acts on",
            "`parse-vendor-option` (decoding option 43 into the vendor option space is unsupported)",
        )
    }

    /// After the whole file: looks up the names of `vendor-option-space` and
    /// `site-option-space`, and builds the spaces' layouts for the engine. A name no space has
    /// is an error: ISC logs "unknown option space" for every reply and sends no option 43 for
    /// the vendor space; for a site space it sends no reply at all (server/dhcp.c `ack_lease`,
    /// `dhcpinform` return).
    pub(super) fn resolve_option_spaces(&mut self) {
        let pending = std::mem::take(&mut self.side.pending_space_names);
        for entry in pending {
            let Some(space) = self.options.space(&entry.name) else {
                let what = match entry.parameter {
                    SpaceParameter::Vendor => "`vendor-option-space`",
                    SpaceParameter::Site => "`site-option-space`",
                };
                let error = self.invalid(
                    entry.span,
                    format!("the name of a declared option space for {what}"),
                    format!("no option space named `{}`", entry.name),
                );
                self.errors.push(error);
                continue;
            };
            let Some(scope) = self.config.scopes.get_mut(entry.scope.0 as usize) else {
                continue;
            };
            match entry.parameter {
                SpaceParameter::Vendor => scope.vendor_option_space = Some(space),
                SpaceParameter::Site => scope.site_option_space = Some(space),
            }
        }
        self.config.option_spaces = OptionSpaces::from_table(&self.options);
    }
}

#[cfg(test)]
mod tests {
    use crate::config::model::{OptionForm, OptionValue};
    use crate::config::options::OptionSpace;
    use crate::config::parse_str;

    fn errors(text: &str) -> Vec<String> {
        match parse_str(text, "test.conf") {
            Ok(_) => panic!("expected errors"),
            Err(errors) => errors.errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn space_options_are_encoded_by_type_and_kept_with_their_space() {
        let config = parse_str(
            r#"option space acme code width 2 length width 2;
option acme.servers code 258 = array of { ip-address, unsigned integer 16 };
option acme.name code 3 = text;
group {
  vendor-option-space acme;
  option acme.servers 10.0.0.1 80, 10.0.0.2 81;
  append acme.name "x";
  default acme.name = concat("a", "b");
}
site-option-space "acme";
"#,
            "test.conf",
        )
        .unwrap_or_else(|errors| panic!("{errors}"));
        let group = config
            .scopes
            .iter()
            .find(|scope| !scope.space_options.is_empty())
            .expect("the group");
        let acme = group.vendor_option_space.expect("vendor-option-space");
        assert_ne!(acme, OptionSpace::DHCP);
        assert_eq!(config.scopes[0].site_option_space, Some(acme));
        let options: Vec<_> = group
            .space_options
            .iter()
            .map(|option| (option.space, option.code, option.form))
            .collect();
        assert_eq!(
            options,
            [
                (acme, 258, OptionForm::Supersede),
                (acme, 3, OptionForm::Append),
                (acme, 3, OptionForm::Default)
            ]
        );
        assert_eq!(
            group.space_options[0].value,
            OptionValue::Constant(vec![10, 0, 0, 1, 0, 80, 10, 0, 0, 2, 0, 81])
        );
        assert!(matches!(
            group.space_options[2].value,
            OptionValue::Expression(_)
        ));
        let layout = config.option_spaces.layout(acme).unwrap();
        assert_eq!((layout.code_width, layout.length_width), (2, 2));
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn a_space_may_be_named_before_it_is_declared() {
        let config = parse_str(
            "vendor-option-space later;\noption space later;\n",
            "test.conf",
        )
        .unwrap_or_else(|errors| panic!("{errors}"));
        assert!(config.scopes[0].vendor_option_space.is_some());
    }

    #[test]
    fn what_is_not_acted_on_is_an_error() {
        let unknown = errors("vendor-option-space nowhere;\n");
        assert!(unknown[0].starts_with("test.conf:1:21:"), "{unknown:?}");
        assert!(unknown[0].contains("no option space named `nowhere`"));
        let site = errors("site-option-space \"nowhere\";\n");
        assert!(site[0].contains("`site-option-space`"), "{site:?}");
        let fqdn = errors("option fqdn.hostname \"a\";\n");
        assert!(fqdn[0].contains("unsupported"), "{fqdn:?}");
        let parse = errors("class \"c\" { parse-vendor-option; }\n");
        assert!(parse[0].contains("unsupported"), "{parse:?}");
        let computed = errors("vendor-option-space = concat(\"a\", \"b\");\n");
        assert!(computed[0].contains("unsupported"), "{computed:?}");
        let read = errors("class \"c\" { match if option fqdn.hostname = \"a\"; }\n");
        assert!(read[0].contains("unsupported"), "{read:?}");
    }

    #[test]
    fn site_space_names_are_strings_as_in_isc() {
        // ISC's format `X`: an unquoted name is "expecting string or hexadecimal data".
        assert!(!errors("option space local;\nsite-option-space local;\n").is_empty());
    }
}
