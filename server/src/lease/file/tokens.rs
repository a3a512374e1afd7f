//! The token stream under the lease file parser: absolute positions across chunks, brace depth
//! for skipping a broken statement, and recovery from bytes the shared tokenizer rejects.

use crate::config::lexer::{LexError, Lexer, Token, TokenKind};

/// Why a statement could not be read.
pub(super) enum Fail {
    /// The input ended first.
    Eof,
    Syntax {
        line: u32,
        column: u32,
        message: String,
    },
}

pub(super) type Parsed<T> = Result<T, Fail>;

/// Tokens with absolute positions, brace depth, and recovery from bytes the lexer rejects.
pub(super) struct Tokens<'a> {
    pub(super) input: &'a [u8],
    pub(super) lexer: Lexer<'a>,
    /// Where the current lexer starts: byte offset, absolute line, column of its first byte.
    pub(super) start_offset: usize,
    pub(super) start_line: u32,
    pub(super) start_column: u32,
    pub(super) peeked: Option<Token>,
    pub(super) depth: u32,
    /// The last consumed token ended a top-level statement (`;` or `}` at depth 0).
    pub(super) at_statement_end: bool,
    /// (line, column) of the last consumed token.
    pub(super) last_position: (u32, u32),
    /// Cursor of the line → offset mapping: line `cursor_line` starts at `cursor_offset`.
    pub(super) cursor_line: u32,
    pub(super) cursor_offset: usize,
}

impl<'a> Tokens<'a> {
    pub(super) fn new(input: &'a [u8], line_base: u32) -> Self {
        Self {
            input,
            lexer: Lexer::new(input, 0),
            start_offset: 0,
            start_line: line_base + 1,
            start_column: 1,
            peeked: None,
            depth: 0,
            at_statement_end: true,
            last_position: (line_base + 1, 1),
            cursor_line: line_base + 1,
            cursor_offset: 0,
        }
    }

    /// Starts over at byte `offset`, which is at absolute (`line`, `column`), between two
    /// top-level statements.
    pub(super) fn restart(&mut self, offset: usize, line: u32, column: u32) {
        let offset = offset.min(self.input.len());
        self.lexer = Lexer::new(&self.input[offset..], 0);
        self.start_offset = offset;
        self.start_line = line;
        self.start_column = column;
        self.peeked = None;
        self.depth = 0;
        self.at_statement_end = true;
        self.last_position = (line, column);
        self.cursor_line = line;
        self.cursor_offset = offset + 1 - column as usize;
    }

    /// Byte offset of an absolute (line, column); positions only move forward, so the scan is
    /// amortised linear.
    pub(super) fn offset_of(&mut self, line: u32, column: u32) -> usize {
        while self.cursor_line < line {
            match self.input[self.cursor_offset..]
                .iter()
                .position(|&byte| byte == b'\n')
            {
                Some(position) => {
                    self.cursor_offset += position + 1;
                    self.cursor_line += 1;
                }
                None => return self.input.len(),
            }
        }
        (self.cursor_offset + column as usize - 1).min(self.input.len())
    }

    pub(super) fn lex(&mut self) -> Parsed<Token> {
        {
            match self.lexer.next_token() {
                Ok(mut token) => {
                    if token.span.line == 1 {
                        token.span.column += self.start_column - 1;
                    }
                    token.span.line += self.start_line - 1;
                    Ok(token)
                }
                // An unterminated string runs to the end of the input: a torn tail.
                Err(LexError::UnterminatedString { .. }) => Err(Fail::Eof),
                Err(LexError::UnexpectedByte { span, byte }) => {
                    let line = span.line + self.start_line - 1;
                    let column = if span.line == 1 {
                        span.column + self.start_column - 1
                    } else {
                        span.column
                    };
                    // Restart the lexer after the bad byte.
                    let offset = self.offset_of(line, column) + 1;
                    self.start_offset = offset.min(self.input.len());
                    self.start_line = line;
                    self.start_column = column + 1;
                    self.lexer = Lexer::new(&self.input[self.start_offset..], 0);
                    Err(Fail::Syntax {
                        line,
                        column,
                        message: format!("unexpected character {byte:#04x}"),
                    })
                }
            }
        }
    }

    pub(super) fn peek(&mut self) -> Parsed<&Token> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lex()?);
        }
        match &self.peeked {
            Some(token) => Ok(token),
            None => Err(Fail::Eof),
        }
    }

    /// The next token; `Eof` tokens are returned, not failed, so that the top level can end.
    pub(super) fn next_any(&mut self) -> Parsed<Token> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lex()?,
        };
        self.last_position = (token.span.line, token.span.column);
        match token.kind {
            TokenKind::Punct(b'{') => {
                self.depth += 1;
                self.at_statement_end = false;
            }
            TokenKind::Punct(b'}') => {
                self.depth = self.depth.saturating_sub(1);
                self.at_statement_end = self.depth == 0;
            }
            TokenKind::Punct(b';') => self.at_statement_end = self.depth == 0,
            _ => self.at_statement_end = false,
        }
        Ok(token)
    }

    /// The next token, failing with `Eof` at the end of the input.
    pub(super) fn next(&mut self) -> Parsed<Token> {
        let token = self.next_any()?;
        if token.kind == TokenKind::Eof {
            return Err(Fail::Eof);
        }
        Ok(token)
    }

    /// Skips to the end of the current top-level statement.
    pub(super) fn recover(&mut self) -> Parsed<()> {
        while !self.at_statement_end {
            self.next()?;
        }
        Ok(())
    }
}

pub(super) fn syntax<T>(token: &Token, message: impl Into<String>) -> Parsed<T> {
    Err(Fail::Syntax {
        line: token.span.line,
        column: token.span.column,
        message: message.into(),
    })
}

pub(super) fn expected<T>(token: &Token, what: &str) -> Parsed<T> {
    syntax(token, format!("expected {what}, found {}", token.kind))
}

pub(super) fn parse_hex_byte(text: &str) -> Option<u8> {
    if text.is_empty() || text.len() > 2 {
        return None;
    }
    u8::from_str_radix(text, 16).ok()
}

pub(super) fn word(token: &Token) -> Option<&str> {
    match &token.kind {
        TokenKind::Name(text) | TokenKind::Number(text) => Some(text),
        _ => None,
    }
}
