//! `failover peer` declarations and references (docs/spec/dhcpd-conf.md §6, docs/spec/failover.md §13, ISC
//! `confpars.c` `parse_failover_peer`): defaults, `split` → HBA (docs/spec/failover.md §11.1) and the
//! per-declaration rules (role, `peer address`, primary's `mclt` and `split`/`hba`).

use super::declarations::block_name;
use super::{Block, BlockKind, ParseResult, Parser};
use crate::config::lexer::{Span, TokenKind};
use crate::config::model::FailoverPeerConfig;

/// docs/spec/failover.md §13 defaults.
const DEFAULT_PORT: u16 = 647;
const DEFAULT_MAX_RESPONSE_DELAY: u32 = 20;
const DEFAULT_MAX_UNACKED_UPDATES: u32 = 100;
const DEFAULT_MAX_LEASE_MISBALANCE: u32 = 15;
const DEFAULT_MAX_LEASE_OWNERSHIP: u32 = 10;
const DEFAULT_MIN_BALANCE: u32 = 60;
const DEFAULT_MAX_BALANCE: u32 = 3600;

/// The HBA of `split N` (docs/spec/failover.md §11.1), shared with the XDP program.
pub(crate) use server_common::loadbalance::split_to_hba;

/// What the declaration said, before defaults and rules are applied.
#[derive(Default)]
struct PeerStatements {
    primary: Option<bool>,
    address: Option<std::net::Ipv4Addr>,
    port: Option<u16>,
    peer_address: Option<std::net::Ipv4Addr>,
    peer_address_given: bool,
    peer_port: Option<u16>,
    max_response_delay: Option<u32>,
    max_unacked_updates: Option<u32>,
    mclt: Option<u32>,
    hba: Option<[u8; 32]>,
    load_balance_max_seconds: Option<u32>,
    max_lease_misbalance: Option<u32>,
    max_lease_ownership: Option<u32>,
    min_balance: Option<u32>,
    max_balance: Option<u32>,
    auto_partner_down: Option<u32>,
}

impl Parser {
    /// `failover peer NAME { … }` (declaration) or `failover peer "NAME";` (reference).
    pub(super) fn parse_failover(&mut self, block: Block) -> ParseResult<()> {
        let span = self.bump().span;
        self.expect_keyword("peer")?;
        let name_token = self.peek().clone();
        let quoted = matches!(name_token.kind, TokenKind::String(_));
        let name = self.parse_name_or_string("a failover peer name")?;
        if self.at_punct(b';') {
            self.bump();
            if !quoted {
                return Err(self.invalid(
                    name_token.span,
                    "a quoted peer name in a `failover peer` reference",
                    name_token.kind.to_string(),
                ));
            }
            return self.reference_peer(block, &name, name_token.span);
        }
        if self.at_keyword("state") {
            return Err(self.invalid(
                self.peek_at(0).span,
                "`{` (failover state blocks belong in dhcpd.leases)",
                "`state`",
            ));
        }
        let open = self.expect_punct(b'{')?;
        let mut statements = PeerStatements::default();
        loop {
            let token = self.peek().clone();
            match token.kind {
                TokenKind::Punct(b'}') => {
                    self.bump();
                    break;
                }
                TokenKind::Eof => {
                    let expected = format!(
                        "`}}` closing the failover peer opened at {}",
                        self.sources.locate(open)
                    );
                    return Err(self.invalid(token.span, expected, "end of file"));
                }
                _ => {}
            }
            if let Err(error) = self.parse_peer_statement(&mut statements) {
                self.errors.push(error);
                self.recover();
            }
        }
        if !matches!(block.kind, BlockKind::Global | BlockKind::SharedNetwork) {
            return Err(self.invalid(
                span,
                "a `failover peer` declaration at top level or in a shared-network",
                format!("one inside a {}", block_name(block.kind)),
            ));
        }
        if self
            .config
            .failover_peers
            .iter()
            .any(|peer| peer.name == name)
        {
            return Err(self.invalid(
                name_token.span,
                "a failover peer name not declared before",
                format!("\"{name}\" declared again"),
            ));
        }
        let peer = self.finish_peer(name, statements, name_token.span)?;
        self.config.failover_peers.push(peer);
        self.side.peer_spans.push(name_token.span);
        Ok(())
    }

    /// Applies defaults and the rules of docs/spec/failover.md §11.1 and §13.
    fn finish_peer(
        &mut self,
        name: String,
        statements: PeerStatements,
        span: Span,
    ) -> ParseResult<FailoverPeerConfig> {
        let Some(primary) = statements.primary else {
            return Err(self.invalid(
                span,
                "`primary;` or `secondary;` in the failover peer",
                "neither",
            ));
        };
        if !statements.peer_address_given {
            return Err(self.invalid(span, "a `peer address` in the failover peer", "none"));
        }
        if primary {
            if statements.mclt.is_none() {
                return Err(self.invalid(span, "`mclt` in the primary's failover peer", "none"));
            }
            if statements.hba.is_none() {
                return Err(self.invalid(
                    span,
                    "`split` or `hba` in the primary's failover peer",
                    "neither",
                ));
            }
        } else if statements.hba.is_some() {
            return Err(self.invalid(
                span,
                "no `split` or `hba` in a secondary's failover peer (the primary sends it)",
                "one",
            ));
        }
        Ok(FailoverPeerConfig {
            name,
            primary,
            address: statements.address,
            port: statements.port.unwrap_or(DEFAULT_PORT),
            peer_address: statements.peer_address,
            peer_port: statements.peer_port.unwrap_or(DEFAULT_PORT),
            max_response_delay: statements
                .max_response_delay
                .unwrap_or(DEFAULT_MAX_RESPONSE_DELAY),
            max_unacked_updates: statements
                .max_unacked_updates
                .unwrap_or(DEFAULT_MAX_UNACKED_UPDATES),
            mclt: statements.mclt.unwrap_or(0),
            hba: statements.hba,
            load_balance_max_seconds: statements.load_balance_max_seconds.unwrap_or(0),
            max_lease_misbalance: statements
                .max_lease_misbalance
                .unwrap_or(DEFAULT_MAX_LEASE_MISBALANCE),
            max_lease_ownership: statements
                .max_lease_ownership
                .unwrap_or(DEFAULT_MAX_LEASE_OWNERSHIP),
            min_balance: statements.min_balance.unwrap_or(DEFAULT_MIN_BALANCE),
            max_balance: statements.max_balance.unwrap_or(DEFAULT_MAX_BALANCE),
            auto_partner_down: statements.auto_partner_down.unwrap_or(0),
        })
    }

    /// One statement inside `failover peer … { }`.
    fn parse_peer_statement(&mut self, statements: &mut PeerStatements) -> ParseResult<()> {
        let token = self.peek().clone();
        let TokenKind::Name(word) = &token.kind else {
            return Err(self.expected("a failover peer statement"));
        };
        let word = word.to_ascii_lowercase();
        self.bump();
        match word.as_str() {
            "primary" => statements.primary = Some(true),
            "secondary" => statements.primary = Some(false),
            "address" => statements.address = self.parse_ip_or_hostname()?,
            "port" => statements.port = Some(self.parse_u16("a port number")?),
            "peer" => {
                if self.eat_keyword("address") {
                    statements.peer_address = self.parse_ip_or_hostname()?;
                    statements.peer_address_given = true;
                } else if self.eat_keyword("port") {
                    statements.peer_port = Some(self.parse_u16("a port number")?);
                } else {
                    return Err(self.expected("`address` or `port`"));
                }
            }
            "max-response-delay" => {
                statements.max_response_delay = Some(self.parse_u32("seconds")?)
            }
            "max-unacked-updates" => {
                statements.max_unacked_updates = Some(self.parse_u32("a number of updates")?)
            }
            "mclt" => statements.mclt = Some(self.parse_u32("seconds")?),
            "split" => {
                let split = self.parse_number_in("a split", 0, 256)?;
                statements.hba = Some(split_to_hba(split as u16));
            }
            "hba" => {
                let span = self.peek().span;
                let bytes = self.parse_hex_list("32 colon-separated hex bytes")?;
                let hba: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    self.invalid(
                        span,
                        "exactly 32 hex bytes",
                        format!("{} bytes", bytes.len()),
                    )
                })?;
                statements.hba = Some(hba);
            }
            "load" => {
                // `load balance max seconds S;` — four words (docs/spec/dhcpd-conf.md §6).
                self.expect_keyword("balance")?;
                self.expect_keyword("max")?;
                self.expect_keyword("seconds")?;
                statements.load_balance_max_seconds = Some(self.parse_u32("seconds")?);
            }
            "max-lease-misbalance" => {
                statements.max_lease_misbalance =
                    Some(self.parse_number_in("a percentage", 0, 100)? as u32)
            }
            "max-lease-ownership" => {
                statements.max_lease_ownership =
                    Some(self.parse_number_in("a percentage", 0, 100)? as u32)
            }
            "min-balance" => statements.min_balance = Some(self.parse_u32("seconds")?),
            "max-balance" => statements.max_balance = Some(self.parse_u32("seconds")?),
            "auto-partner-down" => statements.auto_partner_down = Some(self.parse_u32("seconds")?),
            _ => {
                return Err(self.invalid(token.span, "a failover peer statement (`primary`, `address`, `peer address`, `mclt`, `split`, …)", token.kind.to_string()));
            }
        }
        self.expect_semicolon()
    }

    /// `failover peer "NAME";` in a pool or shared network.
    fn reference_peer(&mut self, block: Block, name: &str, span: Span) -> ParseResult<()> {
        if !self
            .config
            .failover_peers
            .iter()
            .any(|peer| peer.name == name)
        {
            return Err(self.invalid(
                span,
                "the name of a failover peer declared before",
                format!("undeclared failover peer \"{name}\""),
            ));
        }
        match block.kind {
            BlockKind::Pool => {
                if let Some(pool) = block
                    .pool
                    .and_then(|pool| self.config.pools.get_mut(pool.0 as usize))
                {
                    pool.failover_peer = Some(name.to_string());
                }
            }
            BlockKind::SharedNetwork => {
                if let Some(slot) = block
                    .shared_network
                    .and_then(|network| self.side.shared_network_peers.get_mut(network.0 as usize))
                {
                    *slot = Some(name.to_string());
                }
            }
            other => {
                return Err(self.invalid(
                    span,
                    "a `failover peer` reference inside a pool or shared-network",
                    format!("one inside a {}", block_name(other)),
                ));
            }
        }
        Ok(())
    }

    /// `no failover peer;` in a pool: cancels an inherited reference.
    pub(super) fn parse_no_failover(&mut self, block: Block) -> ParseResult<()> {
        let span = self.bump().span;
        self.expect_keyword("failover")?;
        self.expect_keyword("peer")?;
        self.expect_semicolon()?;
        match (block.kind, block.pool) {
            (BlockKind::Pool, Some(pool)) => {
                if let Some(flag) = self.side.pool_no_failover.get_mut(pool.0 as usize) {
                    *flag = true;
                }
                if let Some(pool) = self.config.pools.get_mut(pool.0 as usize) {
                    pool.failover_peer = None;
                }
                Ok(())
            }
            _ => Err(self.invalid(
                span,
                "`no failover peer` inside a pool",
                format!("one inside a {}", block_name(block.kind)),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_to_hba;

    #[test]
    fn split_sets_low_buckets_lsb_first() {
        let hba = split_to_hba(128);
        assert_eq!(&hba[..16], &[0xff; 16]);
        assert_eq!(&hba[16..], &[0; 16]);
        let hba = split_to_hba(100);
        assert_eq!(&hba[..12], &[0xff; 12]);
        assert_eq!(hba[12], 0x0f);
        assert_eq!(&hba[13..], &[0; 19]);
        assert_eq!(split_to_hba(0), [0; 32]);
        assert_eq!(split_to_hba(256), [0xff; 32]);
    }
}
