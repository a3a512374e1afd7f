//! Tokenizer for ISC's configuration language, shared by dhcpd.conf and dhcpd.leases.
//!
//! Follows ISC `common/conflex.c` (docs/spec/dhcpd-conf.md §1): every punctuation character is
//! its own token, so an IPv4 address is `NUMBER . NUMBER . NUMBER . NUMBER` and a MAC address is
//! `HEX : HEX : …`; `#` starts a comment outside strings; strings take C-like escapes. Keywords are
//! not decided here: a [`TokenKind::Name`] is a keyword when the parser expects one
//! (case-insensitive, see [`Token::is_keyword`]).

use std::fmt;

/// Index of a source file in a [`SourceMap`].
pub type FileId = u16;

/// Where a token starts: file, 1-based line and 1-based column (in bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    pub file: FileId,
    pub line: u32,
    pub column: u32,
}

/// The names of the files read so far (the main config and its `include`s), so that a
/// [`Span`] can be printed as `file:line:column`.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<String>,
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a file name and returns its id.
    pub fn add(&mut self, name: impl Into<String>) -> FileId {
        self.files.push(name.into());
        FileId::try_from(self.files.len() - 1).unwrap_or(FileId::MAX)
    }

    pub fn name(&self, file: FileId) -> &str {
        self.files
            .get(usize::from(file))
            .map_or("<unknown>", String::as_str)
    }

    /// `file:line:column` for a span, the prefix of every diagnostic.
    pub fn locate(&self, span: Span) -> String {
        format!("{}:{}:{}", self.name(span.file), span.line, span.column)
    }
}

/// What a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Starts with a letter: letters, digits, `-`, `_`. May be a keyword.
    Name(String),
    /// Starts with a digit (or `-` then a digit): digits, hex letters, `-`, `_` may follow, so
    /// `0a`, `3com` and `-3600` are numbers here; never a keyword (conflex.c `read_num_or_name`).
    Number(String),
    /// A quoted string with escapes resolved; bytes, since `\ooo` may produce any byte.
    String(Vec<u8>),
    /// One punctuation character.
    Punct(u8),
    /// End of the input.
    Eof,
}

/// One token and where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

impl Token {
    /// True when this is a name equal to `keyword`, ignoring ASCII case.
    pub fn is_keyword(&self, keyword: &str) -> bool {
        matches!(&self.kind, TokenKind::Name(name) if name.eq_ignore_ascii_case(keyword))
    }

    pub fn is_punct(&self, punct: u8) -> bool {
        self.kind == TokenKind::Punct(punct)
    }
}

impl fmt::Display for TokenKind {
    /// How a token is named in "expected X, found Y" messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenKind::Name(name) => write!(f, "`{name}`"),
            TokenKind::Number(number) => write!(f, "number `{number}`"),
            TokenKind::String(bytes) => write!(f, "string \"{}\"", String::from_utf8_lossy(bytes)),
            TokenKind::Punct(punct) => write!(f, "`{}`", char::from(*punct)),
            TokenKind::Eof => f.write_str("end of file"),
        }
    }
}

/// A byte sequence the lexer cannot turn into a token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    #[error("unterminated string (started here)")]
    UnterminatedString { span: Span },
    #[error("unexpected character {byte:#04x}")]
    UnexpectedByte { span: Span, byte: u8 },
}

impl LexError {
    pub fn span(&self) -> Span {
        match self {
            LexError::UnterminatedString { span } | LexError::UnexpectedByte { span, .. } => *span,
        }
    }
}

/// Punctuation characters that are tokens of their own (docs/spec/dhcpd-conf.md §1).
const PUNCTUATION: &[u8] = b"{};,=.:/()[]!~+-*&|^%";

/// Streaming tokenizer over one file's bytes.
pub struct Lexer<'a> {
    input: &'a [u8],
    position: usize,
    line: u32,
    column: u32,
    file: FileId,
}

impl<'a> Lexer<'a> {
    pub fn new(input: &'a [u8], file: FileId) -> Self {
        Self {
            input,
            position: 0,
            line: 1,
            column: 1,
            file,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.position).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.input.get(self.position + offset).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.position += 1;
        if byte == b'\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(byte)
    }

    fn span(&self) -> Span {
        Span {
            file: self.file,
            line: self.line,
            column: self.column,
        }
    }

    fn skip_blanks_and_comments(&mut self) {
        while let Some(byte) = self.peek() {
            match byte {
                b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c => {
                    self.bump();
                }
                b'#' => {
                    while let Some(byte) = self.bump() {
                        if byte == b'\n' {
                            break;
                        }
                    }
                }
                _ => break,
            }
        }
    }

    /// The next token, [`TokenKind::Eof`] at the end (and again on every later call).
    pub fn next_token(&mut self) -> Result<Token, LexError> {
        self.skip_blanks_and_comments();
        let span = self.span();
        let Some(byte) = self.peek() else {
            return Ok(Token {
                kind: TokenKind::Eof,
                span,
            });
        };
        let kind = if byte == b'"' {
            self.bump();
            TokenKind::String(self.read_string(span)?)
        } else if byte.is_ascii_digit()
            || (byte == b'-' && self.peek_at(1).is_some_and(|next| next.is_ascii_digit()))
        {
            TokenKind::Number(self.read_word())
        } else if byte.is_ascii_alphabetic() {
            TokenKind::Name(self.read_word())
        } else if PUNCTUATION.contains(&byte) {
            self.bump();
            TokenKind::Punct(byte)
        } else {
            // Step over the byte so that a caller may report it and keep tokenizing.
            self.bump();
            return Err(LexError::UnexpectedByte { span, byte });
        };
        Ok(Token { kind, span })
    }

    /// A name or number: the first byte, then letters, digits, `-` and `_`.
    fn read_word(&mut self) -> String {
        let start = self.position;
        self.bump();
        while let Some(byte) = self.peek() {
            if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
                self.bump();
            } else {
                break;
            }
        }
        // Only ASCII bytes were consumed.
        String::from_utf8_lossy(&self.input[start..self.position]).into_owned()
    }

    /// The body of a quoted string after its opening quote (conflex.c `read_string`).
    fn read_string(&mut self, start: Span) -> Result<Vec<u8>, LexError> {
        let mut value = Vec::new();
        loop {
            let Some(byte) = self.bump() else {
                return Err(LexError::UnterminatedString { span: start });
            };
            match byte {
                b'"' => return Ok(value),
                b'\\' => {
                    let Some(escaped) = self.bump() else {
                        return Err(LexError::UnterminatedString { span: start });
                    };
                    match escaped {
                        b't' => value.push(b'\t'),
                        b'r' => value.push(b'\r'),
                        b'n' => value.push(b'\n'),
                        b'b' => value.push(0x08),
                        b'0'..=b'7' => {
                            let mut code = u32::from(escaped - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(digit @ b'0'..=b'7') => {
                                        self.bump();
                                        code = code * 8 + u32::from(digit - b'0');
                                    }
                                    _ => break,
                                }
                            }
                            value.push((code & 0xff) as u8);
                        }
                        b'x' => {
                            let mut code = 0u32;
                            for _ in 0..2 {
                                match self.peek().and_then(|digit| (digit as char).to_digit(16)) {
                                    Some(digit) => {
                                        self.bump();
                                        code = code * 16 + digit;
                                    }
                                    None => break,
                                }
                            }
                            value.push(code as u8);
                        }
                        other => value.push(other),
                    }
                }
                other => value.push(other),
            }
        }
    }
}

/// Tokenizes a whole file; the last token is [`TokenKind::Eof`].
pub fn tokenize(input: &[u8], file: FileId) -> Result<Vec<Token>, LexError> {
    let mut lexer = Lexer::new(input, file);
    let mut tokens = Vec::new();
    loop {
        let token = lexer.next_token()?;
        let end = token.kind == TokenKind::Eof;
        tokens.push(token);
        if end {
            return Ok(tokens);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<TokenKind> {
        tokenize(input.as_bytes(), 0)
            .unwrap()
            .into_iter()
            .map(|token| token.kind)
            .collect()
    }

    #[test]
    fn address_is_four_numbers_and_dots() {
        assert_eq!(
            kinds("range 10.0.0.1;"),
            vec![
                TokenKind::Name("range".into()),
                TokenKind::Number("10".into()),
                TokenKind::Punct(b'.'),
                TokenKind::Number("0".into()),
                TokenKind::Punct(b'.'),
                TokenKind::Number("0".into()),
                TokenKind::Punct(b'.'),
                TokenKind::Number("1".into()),
                TokenKind::Punct(b';'),
                TokenKind::Eof,
            ]
        );
    }

    #[test]
    fn mac_mixes_numbers_and_names() {
        assert_eq!(
            kinds("6a:d9")[..3],
            [
                TokenKind::Number("6a".into()),
                TokenKind::Punct(b':'),
                TokenKind::Name("d9".into()),
            ]
        );
    }

    #[test]
    fn string_escapes_follow_conflex() {
        assert_eq!(
            kinds(r#""\001j\331>\"\\\x41""#)[0],
            TokenKind::String(vec![1, b'j', 0o331, b'>', b'"', b'\\', b'A'])
        );
    }

    #[test]
    fn comments_and_negative_numbers() {
        assert_eq!(
            kinds("# c\n -3600 - x"),
            vec![
                TokenKind::Number("-3600".into()),
                TokenKind::Punct(b'-'),
                TokenKind::Name("x".into()),
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn spans_are_one_based() {
        let tokens = tokenize(b"a\n  b", 0).unwrap();
        assert_eq!((tokens[1].span.line, tokens[1].span.column), (2, 3));
    }

    #[test]
    fn unterminated_string_is_an_error() {
        assert!(matches!(
            tokenize(b"x \"abc", 0),
            Err(LexError::UnterminatedString { .. })
        ));
    }
}
