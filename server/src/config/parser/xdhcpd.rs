//! `option xdhcpd.NAME VALUE;` (config/xdhcpd.rs): settings only xdhcpd reads, in a user option
//! space that ISC dhcpd parses and ignores.

use super::{Block, BlockKind, ParseResult, Parser};
use crate::config::lexer::Span;
use crate::config::xdhcpd::{kind_of, Kind};

/// The option space name.
pub(super) const SPACE: &str = "xdhcpd";

impl Parser {
    /// After `option xdhcpd.NAME`: the value and `;`.
    pub(super) fn parse_xdhcpd_option(
        &mut self,
        block: Block,
        name: &str,
        name_span: Span,
    ) -> ParseResult<()> {
        let lowered = name.to_ascii_lowercase();
        let Some(kind) = kind_of(&lowered) else {
            self.warn(
                name_span,
                format!("option `xdhcpd.{name}` is not an xdhcpd setting; ignored"),
            );
            return self.parse_loose_value();
        };
        let value = match kind {
            Kind::Flag => u32::from(self.parse_flag()?),
            Kind::Percent => self.parse_number_in("a percentage", 0, 100)? as u32,
            Kind::Number => self.parse_u32("an unsigned 32-bit integer")?,
        };
        self.expect_semicolon()?;
        if block.kind != BlockKind::Global {
            self.warn(
                name_span,
                format!("option `xdhcpd.{name}` is only read at the global scope; ignored"),
            );
            return Ok(());
        }
        self.config.starvation.set(&lowered, value);
        Ok(())
    }
}
