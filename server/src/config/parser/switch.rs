//! `switch (EXPR) { case VALUE: … break; default: … }` (dhcp-eval(5) "CONDITIONAL BEHAVIOUR:
//! SWITCH"; ISC `parse.c` `parse_switch_statement`, `parse_case_statement`): the statements
//! between labels become scopes of their own (segments), run by `engine::statements`.

use super::{Block, BlockKind, ParseResult, Parser};
use crate::config::expr::{Expr, ExprKind};
use crate::config::lexer::TokenKind;
use crate::config::model::{Switch, SwitchSegment};

impl Parser {
    pub(super) fn parse_switch(&mut self, block: Block) -> ParseResult<()> {
        self.bump();
        self.expect_punct(b'(')?;
        let subject_span = self.peek().span;
        let subject = self.parse_expression()?;
        // ISC: "switch expression must be a data or numeric expression".
        let numeric = match subject.kind() {
            ExprKind::Numeric => true,
            ExprKind::Data | ExprKind::Any => false,
            ExprKind::Boolean => {
                return Err(self.invalid(
                    subject_span,
                    "a data or numeric expression",
                    "a boolean expression",
                ))
            }
        };
        self.expect_punct(b')')?;
        self.expect_punct(b'{')?;
        let mut switch = Switch {
            subject,
            cases: Vec::new(),
            default: None,
            segments: Vec::new(),
        };
        // The segment statements go to; `None` after a `break` (until the next label).
        let mut current: Option<usize> = None;
        loop {
            let token = self.peek().clone();
            match &token.kind {
                TokenKind::Punct(b'}') => {
                    self.bump();
                    break;
                }
                TokenKind::Eof => return Err(self.expected("`}` closing the switch")),
                TokenKind::Name(word) if word.eq_ignore_ascii_case("case") => {
                    self.bump();
                    let value_span = self.peek().span;
                    let value = if numeric {
                        self.parse_numeric_argument()?
                    } else {
                        self.parse_data_argument()?
                    };
                    let constant = matches!(
                        (&value, numeric),
                        (Expr::Number(_), true) | (Expr::Data(_), false)
                    );
                    if !constant {
                        return Err(self.invalid(
                            value_span,
                            if numeric {
                                "a constant number after `case`"
                            } else {
                                "a constant string or colon-hex data after `case`"
                            },
                            "another expression",
                        ));
                    }
                    self.expect_punct(b':')?;
                    let index = self.new_segment(block, &mut switch);
                    switch.cases.push((value, index));
                    current = Some(index);
                }
                TokenKind::Name(word)
                    if word.eq_ignore_ascii_case("default") && self.peek_at(1).is_punct(b':') =>
                {
                    self.bump();
                    self.bump();
                    if switch.default.is_some() {
                        // ISC: "duplicate default statement in switch".
                        return Err(self.invalid(
                            token.span,
                            "one `default:` per switch",
                            "a second one",
                        ));
                    }
                    let index = self.new_segment(block, &mut switch);
                    switch.default = Some(index);
                    current = Some(index);
                }
                TokenKind::Name(word) if word.eq_ignore_ascii_case("break") => {
                    self.bump();
                    self.expect_semicolon()?;
                    if let Some(index) = current.take() {
                        switch.segments[index].breaks = true;
                    }
                }
                _ => {
                    let index = match current {
                        Some(index) => index,
                        // Statements after a `break` (or before any label) are never run;
                        // ISC parses them all the same.
                        None => {
                            let index = self.new_segment(block, &mut switch);
                            current = Some(index);
                            index
                        }
                    };
                    let body = switch.segments[index].body;
                    self.statement_with_recovery(block.nested(BlockKind::Conditional, body));
                }
            }
        }
        self.scope_mut(block.scope).switches.push(switch);
        Ok(())
    }

    fn new_segment(&mut self, block: Block, switch: &mut Switch) -> usize {
        let body = self.new_scope(block.scope);
        switch.segments.push(SwitchSegment {
            body,
            breaks: false,
        });
        switch.segments.len() - 1
    }
}
