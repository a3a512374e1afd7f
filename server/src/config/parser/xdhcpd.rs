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
        if kind == Kind::SocketAddress {
            return self.parse_xdhcpd_socket_address(block, name, name_span);
        }
        if kind == Kind::Path {
            let path = self.parse_string("a quoted file name")?;
            self.expect_semicolon()?;
            if self.global_only(block, name, name_span) {
                let path = String::from_utf8_lossy(&path).into_owned();
                self.config.control_api.set_path(&lowered, path);
            }
            return Ok(());
        }
        if kind == Kind::Database {
            let value_span = self.peek().span;
            let text = self.parse_string("a quoted PostgreSQL connection string")?;
            self.expect_semicolon()?;
            let text = String::from_utf8(text).map_err(|text| {
                self.invalid(
                    value_span,
                    "a connection string, e.g. \"postgresql://xdhcpd@db/dhcp\"",
                    format!("\"{}\"", String::from_utf8_lossy(text.as_bytes())),
                )
            })?;
            if self.global_only(block, name, name_span) {
                if lowered == "lease-database" {
                    self.config.lease_database = Some(text);
                } else {
                    self.config.history_database = Some(text);
                }
            }
            return Ok(());
        }
        if kind == Kind::Address {
            let address = self.parse_ip()?;
            self.expect_semicolon()?;
            if self.global_only(block, name, name_span) {
                self.config.omapi.listen = Some(address);
            }
            return Ok(());
        }
        let value = match kind {
            Kind::SocketAddress | Kind::Address | Kind::Path | Kind::Database => {
                unreachable!("handled above")
            }
            Kind::Flag => u32::from(self.parse_flag()?),
            Kind::Percent => self.parse_number_in("a percentage", 0, 100)? as u32,
            Kind::Number => self.parse_u32("an unsigned 32-bit integer")?,
        };
        self.expect_semicolon()?;
        if self.global_only(block, name, name_span) {
            if lowered == "history-retention-days" {
                self.config.history_retention_days = Some(value);
            } else if !self.config.omapi.set(&lowered, value)
                && !self.config.control_api.set(&lowered, value)
            {
                self.config.starvation.set(&lowered, value);
            }
        }
        Ok(())
    }

    /// Whether the setting is at the global scope; elsewhere it is ignored with a warning.
    fn global_only(&mut self, block: Block, name: &str, name_span: Span) -> bool {
        if block.kind == BlockKind::Global {
            return true;
        }
        self.warn(
            name_span,
            format!("option `xdhcpd.{name}` is only read at the global scope; ignored"),
        );
        false
    }

    /// `option xdhcpd.metrics-listen "ADDR:PORT";`: the Prometheus endpoint (`--metrics-listen`
    /// overrides it); `option xdhcpd.bulk-leasequery-listen "ADDR:PORT";`: the RFC 6926 TCP
    /// listener (`crate::bulk_leasequery`).
    fn parse_xdhcpd_socket_address(
        &mut self,
        block: Block,
        name: &str,
        name_span: Span,
    ) -> ParseResult<()> {
        let value_span = self.peek().span;
        let text = self.parse_string("a quoted ADDRESS:PORT")?;
        self.expect_semicolon()?;
        let address = std::str::from_utf8(&text)
            .ok()
            .and_then(|text| text.parse::<std::net::SocketAddr>().ok())
            .ok_or_else(|| {
                self.invalid(
                    value_span,
                    "ADDRESS:PORT, e.g. \"127.0.0.1:9167\"",
                    format!("\"{}\"", String::from_utf8_lossy(&text)),
                )
            })?;
        if self.global_only(block, name, name_span) {
            if name.eq_ignore_ascii_case("bulk-leasequery-listen") {
                self.config.bulk_leasequery_listen = Some(address);
            } else if name.eq_ignore_ascii_case("control-api-listen") {
                self.config.control_api.listen = Some(address);
            } else {
                self.config.metrics_listen = Some(address);
            }
        }
        Ok(())
    }
}
