//! The sans-IO boundary (DESIGN.md "The sans-IO boundary"): the protocol logic — the DHCP
//! engine, the failover machine and its rules, the OMAPI session, the lease store and the
//! control API's decoder and commands — takes
//! time as an argument and returns effects as values. This test fails the test run when the
//! non-test code of those modules names a runtime, a clock, a socket, a thread, a channel, a
//! lock or an atomic, or the daemon's shared containers that hold them.
//!
//! A textual check rather than a crate boundary: the protocol modules share the config model,
//! the lease records and the wire codecs with the drivers, so a crate of their own would carry
//! most of `server` with it; a scan of their sources says the same thing in one place. Comments
//! and string literals are not code and are skipped, and so is whatever `#[cfg(test)]` guards
//! (tests may build channels and hooks to stand in for a driver).

use std::path::{Path, PathBuf};

/// The protocol modules, relative to `server/src`: a directory means every `.rs` file under it
/// except its `tests` directories and `tests.rs` files.
const PROTOCOL_MODULES: &[&str] = &[
    "engine",
    "failover/machine",
    "failover/rules.rs",
    "failover/view.rs",
    "omapi/session.rs",
    "lease/store.rs",
    "lease/store",
    "control_api/request.rs",
    "control_api/commands.rs",
    "control_api/lease_json.rs",
    "control_api/answer.rs",
    "control_api/auth.rs",
    "shadow/pairing.rs",
    "history/classify.rs",
];

/// What protocol code may not name (as whole words or paths).
const FORBIDDEN: &[&str] = &[
    "tokio",
    "std::thread",
    "mpsc",
    "Mutex",
    "RwLock",
    "Atomic",
    "UdpSocket",
    "TcpStream",
    "TcpListener",
    "Instant::now",
    "SystemTime::now",
    "OnceLock",
    "Condvar",
    // The daemon's shared containers of the above.
    "FailoverHooks",
    "RelationshipStatus",
    "DynamicHosts",
    "ReverseNames",
];

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every non-test `.rs` file of the protocol modules.
fn protocol_files() -> Vec<PathBuf> {
    fn walk(path: &Path, files: &mut Vec<PathBuf>) {
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name == "tests") {
                return;
            }
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .expect("readable source directory")
                .map(|entry| entry.expect("directory entry").path())
                .collect();
            entries.sort();
            for entry in entries {
                walk(&entry, files);
            }
        } else if path.extension().is_some_and(|extension| extension == "rs")
            && path.file_name().is_some_and(|name| name != "tests.rs")
        {
            files.push(path.to_path_buf());
        }
    }
    let root = source_root();
    let mut files = Vec::new();
    for module in PROTOCOL_MODULES {
        let path = root.join(module);
        assert!(
            path.exists(),
            "{} is gone: update PROTOCOL_MODULES",
            path.display()
        );
        walk(&path, &mut files);
    }
    files
}

/// `source` with comments, string and character literals blanked out (newlines kept, so that
/// line numbers stay right).
fn code_only(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = String::with_capacity(source.len());
    let mut index = 0;
    let blank = |text: &str, out: &mut String| {
        out.extend(text.chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
    };
    while index < bytes.len() {
        let rest = &source[index..];
        let skipped = if rest.starts_with("//") {
            rest.find('\n').unwrap_or(rest.len())
        } else if rest.starts_with("/*") {
            // Nested block comments, as Rust allows.
            let mut depth = 0usize;
            let mut at = 0;
            while at < rest.len() {
                if rest[at..].starts_with("/*") {
                    depth += 1;
                    at += 2;
                } else if rest[at..].starts_with("*/") {
                    depth -= 1;
                    at += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    at += rest[at..].chars().next().map_or(1, char::len_utf8);
                }
            }
            at
        } else if let Some(length) = raw_string_length(rest) {
            length
        } else if rest.starts_with('"') || rest.starts_with("b\"") {
            let start = rest.find('"').unwrap_or(0) + 1;
            let mut at = start;
            let tail = rest.as_bytes();
            while at < tail.len() && tail[at] != b'"' {
                at += if tail[at] == b'\\' { 2 } else { 1 };
            }
            (at + 1).min(rest.len())
        } else {
            // A character literal, or nothing to skip (0).
            char_literal_length(rest).unwrap_or_default()
        };
        if skipped > 0 {
            blank(&rest[..skipped], &mut out);
            index += skipped;
        } else {
            let c = rest.chars().next().expect("not at the end");
            out.push(c);
            index += c.len_utf8();
        }
    }
    out
}

/// The length of a raw string literal (`r"…"`, `r#"…"#`, `br"…"`) at the start of `text`.
fn raw_string_length(text: &str) -> Option<usize> {
    let after_prefix = text.strip_prefix("br").or_else(|| text.strip_prefix('r'))?;
    let hashes = after_prefix.len() - after_prefix.trim_start_matches('#').len();
    let body = after_prefix[hashes..].strip_prefix('"')?;
    let close = format!("\"{}", "#".repeat(hashes));
    let end = body.find(&close)?;
    Some(text.len() - body.len() + end + close.len())
}

/// The length of a character literal (`'a'`, `'\n'`, `b'\''`) at the start of `text`; `None`
/// for a lifetime.
fn char_literal_length(text: &str) -> Option<usize> {
    let offset = usize::from(text.starts_with("b'"));
    let body = text[offset..].strip_prefix('\'')?;
    let mut chars = body.char_indices();
    let (_, first) = chars.next()?;
    let end = if first == '\\' {
        body[1..].find('\'')? + 1
    } else {
        let (at, next) = chars.next()?;
        if next != '\'' {
            return None;
        }
        at
    };
    Some(offset + 1 + end + 1)
}

/// `code` without the items that `#[cfg(test)]` guards: a `mod name;` line, or an item with a
/// `{ … }` body (braces counted; comments and literals are already blank).
fn without_test_items(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let semicolon = item.find(';');
        let brace = item.find('{');
        let end = match (semicolon, brace) {
            (Some(semicolon), Some(brace)) if semicolon < brace => semicolon + 1,
            (_, Some(brace)) => {
                let mut depth = 0usize;
                let mut end = item.len();
                for (offset, c) in item[brace..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = brace + offset + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (Some(semicolon), None) => semicolon + 1,
            (None, None) => item.len(),
        };
        out.extend(
            item[..end]
                .chars()
                .map(|c| if c == '\n' { '\n' } else { ' ' }),
        );
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// Whether `word` occurs in `line` not as part of a longer identifier.
fn names(line: &str, word: &str) -> bool {
    let is_identifier = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + word.len()..].chars().next();
        // "Atomic" also forbids AtomicU32 and friends; other words must stand alone.
        let prefix_only = word == "Atomic";
        before.is_none_or(|c| !is_identifier(c))
            && (prefix_only || after.is_none_or(|c| !is_identifier(c)))
    })
}

/// The forbidden names in `source`'s non-test code, as (line, name).
fn violations(source: &str) -> Vec<(usize, &'static str)> {
    let code = without_test_items(&code_only(source));
    let mut found = Vec::new();
    for (number, line) in code.lines().enumerate() {
        for word in FORBIDDEN {
            if names(line, word) {
                found.push((number + 1, *word));
            }
        }
    }
    found
}

#[test]
fn protocol_modules_name_no_runtime_clock_socket_thread_channel_or_lock() {
    let files = protocol_files();
    assert!(
        files.len() > 10,
        "the protocol modules were found: {files:?}"
    );
    let mut report = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).expect("readable source");
        for (line, word) in violations(&source) {
            report.push(format!("{}:{line}: {word}", file.display()));
        }
    }
    assert!(
        report.is_empty(),
        "protocol logic must stay sans-IO (DESIGN.md \"The sans-IO boundary\"); move these to \
         the driver and pass values in:\n{}",
        report.join("\n")
    );
}

/// The scan itself: code is caught, comments, literals and test items are not.
#[test]
fn the_scan_sees_code_only() {
    let source = r##"
//! Uses no tokio (a comment).
use std::sync::Mutex;
fn f() -> &'static str { "tokio::spawn" }
fn g() { let c = '"'; let t = std::time::SystemTime::now(); }
/* std::thread::spawn /* nested */ still a comment */
const RAW: &str = r#"RwLock "quoted" "#;
fn h(x: AtomicU32, y: MyMutexGuard) {}
#[cfg(test)]
mod tests { use tokio::sync::mpsc; fn t() { { let _ = std::thread::spawn(|| {}); } } }
#[cfg(test)]
mod more;
fn after() { let _ = TcpStream::connect; }
"##;
    let found: Vec<&str> = violations(source)
        .into_iter()
        .map(|(_, word)| word)
        .collect();
    assert_eq!(
        found,
        ["Mutex", "SystemTime::now", "Atomic", "TcpStream"],
        "{:?}",
        violations(source)
    );
    assert_eq!(violations(source)[0].0, 3, "line numbers are kept");
}
