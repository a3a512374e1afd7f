//! The two checked-in lists of the differential harness, in a small subset of TOML (an array of
//! `[[difference]]` tables whose values are basic strings), read without a TOML crate so that
//! this crate links only std and anyhow (xtask builds it):
//!
//! - `testdata/difftest/justified.toml`: differences that stay, each with its `reason` (xdhcpd
//!   better per an RFC and harmless, or ISC nondeterminism);
//! - `testdata/difftest/known-differences.toml`: differences still to fix (`description`), so
//!   that the CI subset passes today while showing what remains.
//!
//! Each entry is keyed by `config`, `exchange`, `step` and `field` as the harness names them
//! (`*` matches any value: keep it for differences that are the same everywhere);
//! `isc` and `xdhcpd` record the values seen when the entry was written (informative: lease
//! times move by a second between runs, so values are not matched).

use anyhow::{anyhow, bail, Context as _, Result};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub config: String,
    pub exchange: String,
    pub step: String,
    pub field: String,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} / {} / {} / {}",
            self.config, self.exchange, self.step, self.field
        )
    }
}

impl Key {
    /// Whether this (list) key covers `other`: each part equal, or `*` in the list's key —
    /// for a systematic difference, such as one field of every reply, that would otherwise
    /// need an entry per request.
    pub fn covers(&self, other: &Key) -> bool {
        let part = |mine: &str, theirs: &str| mine == "*" || mine == theirs;
        part(&self.config, &other.config)
            && part(&self.exchange, &other.exchange)
            && part(&self.step, &other.step)
            && part(&self.field, &other.field)
    }
}

/// One entry of a list: its key and the text that says why it is there.
#[derive(Clone, Debug)]
pub struct Entry {
    pub key: Key,
    pub why: String,
}

/// Reads a list; `why_key` is `reason` (justified) or `description` (known differences).
pub fn load_list(path: &Path, why_key: &str) -> Result<Vec<Entry>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).with_context(|| format!("read {}", path.display())),
    };
    parse_list(&text, why_key).with_context(|| format!("in {}", path.display()))
}

pub fn parse_list(text: &str, why_key: &str) -> Result<Vec<Entry>> {
    let mut tables: Vec<BTreeMap<String, String>> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "[[difference]]" {
            tables.push(BTreeMap::new());
            continue;
        }
        let table = tables
            .last_mut()
            .ok_or_else(|| anyhow!("line {}: a value before [[difference]]", index + 1))?;
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| anyhow!("line {}: expected KEY = \"VALUE\"", index + 1))?;
        let value = basic_string(value.trim())
            .with_context(|| format!("line {}: value of {}", index + 1, key.trim()))?;
        if table.insert(key.trim().to_owned(), value).is_some() {
            bail!("line {}: {} given twice", index + 1, key.trim());
        }
    }
    let mut entries = Vec::new();
    for (index, mut table) in tables.into_iter().enumerate() {
        let mut take = |name: &str| {
            table
                .remove(name)
                .ok_or_else(|| anyhow!("entry {} has no {name}", index + 1))
        };
        let key = Key {
            config: take("config")?,
            exchange: take("exchange")?,
            step: take("step")?,
            field: take("field")?,
        };
        let why = take(why_key)?;
        if why.trim().is_empty() {
            bail!("entry {} ({key}): empty {why_key}", index + 1);
        }
        table.remove("isc");
        table.remove("xdhcpd");
        if let Some(other) = table.keys().next() {
            bail!("entry {} ({key}): unknown key {other}", index + 1);
        }
        entries.push(Entry { key, why });
    }
    Ok(entries)
}

/// A TOML basic string ("…" with \" \\ \n \t escapes), followed by nothing but a comment.
fn basic_string(text: &str) -> Result<String> {
    let rest = text
        .strip_prefix('"')
        .ok_or_else(|| anyhow!("expected a \"string\""))?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(character) = chars.next() {
        match character {
            '"' => {
                let tail = chars.as_str().trim();
                if !tail.is_empty() && !tail.starts_with('#') {
                    bail!("unexpected `{tail}` after the string");
                }
                return Ok(out);
            }
            '\\' => match chars.next() {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                other => bail!("unsupported escape \\{other:?}"),
            },
            c => out.push(c),
        }
    }
    bail!("unterminated string")
}

/// Quotes `text` as a TOML basic string.
pub fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_entries() {
        let text = "# c\n[[difference]]\nconfig = \"a\"\nexchange = \"b\"\nstep = \"1-discover\"\n\
                    field = \"option 61\"\nisc = \"\\\"x\\\"\"\nreason = \"why\" # c\n";
        let entries = parse_list(text, "reason").unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].key.field, "option 61");
        assert!(parse_list("[[difference]]\nconfig = \"a\"\n", "reason").is_err());
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
    }
}
