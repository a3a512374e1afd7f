//! The dhcpd.leases writer, byte for byte as ISC's `write_lease`, `write_host`, `write_group`,
//! `write_failover_state` and `new_lease_file` (server/db.c) write (docs/spec/dhcpd-conf.md §8.3–§8.7).

use std::io::Write as _;

use crate::config::lexer::{Token, TokenKind};
use crate::lease::file::date::{write_time, TimeFormat};
use crate::lease::file::grammar::{AGENT_OPTIONS, HARDWARE_TYPES};
use crate::lease::file::{FailoverStateRecord, GroupRecord, HostRecord, LeaseFile};
use crate::lease::record::{flags, BindingState, Hardware, Lease, UnixTime};

/// How client identifiers are written: `lease-id-format octal` (the default) or `hex` (§8.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdFormat {
    #[default]
    Octal,
    Hex,
}

impl IdFormat {
    /// The format `config`'s `lease-id-format` asks for.
    pub fn of(config: &crate::config::model::Config) -> Self {
        if config.lease_id_format_hex {
            Self::Hex
        } else {
            Self::Octal
        }
    }
}

/// How a lease file is written: client identifiers (`lease-id-format`) and times
/// (`db-time-format`), both global settings of dhcpd.conf.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileFormat {
    pub ids: IdFormat,
    pub times: TimeFormat,
}

impl FileFormat {
    /// The format `config` asks for.
    pub fn of(config: &crate::config::model::Config) -> Self {
        Self {
            ids: IdFormat::of(config),
            times: if config.db_time_format_local {
                TimeFormat::Local
            } else {
                TimeFormat::Utc
            },
        }
    }
}

/// Appends `bytes` as a quoted string (ISC `quotify_buf`): printable ASCII as is, `"` and `\`
/// escaped, everything else `\ooo`.
pub fn quote_into(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &byte in bytes {
        match byte {
            b'"' | b'\\' => {
                out.push(b'\\');
                out.push(byte);
            }
            0x20..=0x7e => out.push(byte),
            _ => out.extend_from_slice(&[
                b'\\',
                b'0' + (byte >> 6),
                b'0' + ((byte >> 3) & 7),
                b'0' + (byte & 7),
            ]),
        }
    }
    out.push(b'"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `xx:xx:…`, lowercase.
pub fn hex_into(bytes: &[u8], out: &mut Vec<u8>) {
    for (index, &byte) in bytes.iter().enumerate() {
        if index > 0 {
            out.push(b':');
        }
        out.push(HEX[usize::from(byte >> 4)]);
        out.push(HEX[usize::from(byte & 15)]);
    }
}

fn identifier_into(bytes: &[u8], format: IdFormat, out: &mut Vec<u8>) {
    match format {
        IdFormat::Octal => quote_into(bytes, out),
        IdFormat::Hex => hex_into(bytes, out),
    }
}

fn hardware_into(hardware: &Hardware, out: &mut Vec<u8>) {
    match HARDWARE_TYPES
        .iter()
        .find(|(htype, _)| *htype == hardware.htype)
    {
        Some((_, name)) => out.extend_from_slice(name.as_bytes()),
        None => {
            let _ = write!(out, "unknown-{}", hardware.htype);
        }
    }
    out.push(b' ');
    hex_into(hardware.address(), out);
}

fn time_line(keyword: &str, time: UnixTime, format: TimeFormat, out: &mut Vec<u8>) {
    if time == 0 {
        return;
    }
    out.extend_from_slice(b"  ");
    out.extend_from_slice(keyword.as_bytes());
    out.push(b' ');
    write_time(time, format, out);
    out.push(b'\n');
}

fn is_printable(text: &str) -> bool {
    text.bytes().all(|byte| (0x20..=0x7e).contains(&byte))
}

/// One lease block, client identifier and times in the default forms.
pub fn write_lease(lease: &Lease, out: &mut Vec<u8>) {
    write_lease_with(lease, FileFormat::default(), out);
}

/// One lease block in `write_lease` order (§8.4).
pub fn write_lease_with(lease: &Lease, format: FileFormat, out: &mut Vec<u8>) {
    let octets = lease.address.octets();
    let _ = writeln!(
        out,
        "lease {}.{}.{}.{} {{",
        octets[0], octets[1], octets[2], octets[3]
    );
    time_line("starts", lease.starts, format.times, out);
    time_line("ends", lease.ends, format.times, out);
    time_line("tstp", lease.tstp, format.times, out);
    time_line("tsfp", lease.tsfp, format.times, out);
    time_line("atsfp", lease.atsfp, format.times, out);
    time_line("cltt", lease.cltt, format.times, out);
    out.extend_from_slice(b"  binding state ");
    out.extend_from_slice(lease.binding_state.as_str().as_bytes());
    out.extend_from_slice(b";\n");
    if lease.next_binding_state != lease.binding_state {
        out.extend_from_slice(b"  next binding state ");
        out.extend_from_slice(lease.next_binding_state.as_str().as_bytes());
        out.extend_from_slice(b";\n");
    }
    if lease.rewind_binding_state != lease.binding_state {
        out.extend_from_slice(b"  rewind binding state ");
        out.extend_from_slice(lease.rewind_binding_state.as_str().as_bytes());
        out.extend_from_slice(b";\n");
    }
    if lease.flags & flags::RESERVED != 0 {
        out.extend_from_slice(b"  reserved;\n");
    }
    if lease.flags & flags::BOOTP != 0 {
        out.extend_from_slice(b"  dynamic-bootp;\n");
    }
    let extra = lease.extra.as_deref();
    let verbatim = extra.map_or(&[][..], |extra| &extra.verbatim[..]);
    // `billing …` comes before the hardware, `on …` events last (§8.4). ISC writes the billing
    // of a lease that has not ended (server/db.c `write_lease`: `ends > cur_time`), which is
    // an ACTIVE one: an EXPIRED or RELEASED lease ended.
    if let Some(billing) = extra
        .and_then(|extra| extra.billing.as_ref())
        .filter(|_| lease.binding_state == BindingState::Active)
    {
        out.extend_from_slice(b"  ");
        billing.write_into(out);
        out.push(b'\n');
    }
    for statement in verbatim
        .iter()
        .filter(|statement| !statement.starts_with("on "))
    {
        out.extend_from_slice(b"  ");
        out.extend_from_slice(statement.as_bytes());
        out.push(b'\n');
    }
    if let Some(hardware) = &lease.hardware {
        out.extend_from_slice(b"  hardware ");
        hardware_into(hardware, out);
        out.extend_from_slice(b";\n");
    }
    if let Some(uid) = lease.uid() {
        out.extend_from_slice(b"  uid ");
        identifier_into(uid, format.ids, out);
        out.extend_from_slice(b";\n");
    }
    if let Some(extra) = extra {
        for (name, value) in &extra.variables {
            let _ = writeln!(out, "  set {name} = {value};");
        }
        for (code, bytes) in &extra.agent_options {
            out.extend_from_slice(b"  option agent.");
            match AGENT_OPTIONS.iter().find(|(known, _)| known == code) {
                Some((_, name)) => out.extend_from_slice(name.as_bytes()),
                None => {
                    let _ = write!(out, "unknown-{code}");
                }
            }
            out.push(b' ');
            if bytes.iter().all(|byte| (0x20..=0x7e).contains(byte)) && !bytes.is_empty() {
                quote_into(bytes, out);
            } else {
                hex_into(bytes, out);
            }
            out.extend_from_slice(b";\n");
        }
    }
    if let Some(hostname) = lease.client_hostname() {
        // ISC writes the host name only when it is printable (§8.2).
        if is_printable(hostname) {
            out.extend_from_slice(b"  client-hostname ");
            quote_into(hostname.as_bytes(), out);
            out.extend_from_slice(b";\n");
        }
    }
    for statement in verbatim
        .iter()
        .filter(|statement| statement.starts_with("on "))
    {
        out.extend_from_slice(b"  ");
        out.extend_from_slice(statement.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"}\n");
}

/// `failover peer "NAME" state { … }` (§8.6), preceded by the blank line ISC writes.
pub fn write_failover_state(record: &FailoverStateRecord, times: TimeFormat, out: &mut Vec<u8>) {
    out.extend_from_slice(b"\nfailover peer ");
    quote_into(record.peer.as_bytes(), out);
    out.extend_from_slice(b" state {\n");
    for (word, state, time) in [
        ("my", record.my_state, record.my_time),
        ("partner", record.partner_state, record.partner_time),
    ] {
        let Some(state) = state else { continue };
        let _ = write!(out, "  {word} state {}", state.as_str());
        if let Some(time) = time {
            out.extend_from_slice(b" at ");
            write_time(time, times, out);
            out.push(b'\n');
        } else {
            out.extend_from_slice(b";\n");
        }
    }
    if let Some(mclt) = record.mclt {
        let _ = writeln!(out, "  mclt {mclt};");
    }
    out.extend_from_slice(b"}\n");
}

/// A host or group name: bare when it is a plain name, quoted otherwise.
fn name_into(name: &str, out: &mut Vec<u8>) {
    let plain = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
    if plain {
        out.extend_from_slice(name.as_bytes());
    } else {
        quote_into(name.as_bytes(), out);
    }
}

/// `host NAME { … }` (§8.5): a rubout carries only `dynamic;` and `deleted;`.
pub fn write_host(record: &HostRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(b"host ");
    name_into(&record.name, out);
    out.extend_from_slice(b" {\n");
    if record.dynamic {
        out.extend_from_slice(b"  dynamic;\n");
    }
    if record.deleted {
        out.extend_from_slice(b"  deleted;\n}\n");
        return;
    }
    if let Some(hardware) = &record.hardware {
        out.extend_from_slice(b"  hardware ");
        hardware_into(hardware, out);
        out.extend_from_slice(b";\n");
    }
    if let Some(uid) = &record.uid {
        out.extend_from_slice(b"  uid ");
        // "written as `uid "…";` when printable, else as colon-hex" (§8.5).
        if uid.iter().all(|byte| (0x20..=0x7e).contains(byte)) {
            quote_into(uid, out);
        } else {
            hex_into(uid, out);
        }
        out.extend_from_slice(b";\n");
    }
    if !record.fixed_addresses.is_empty() {
        out.extend_from_slice(b"  fixed-address ");
        for (index, address) in record.fixed_addresses.iter().enumerate() {
            if index > 0 {
                out.extend_from_slice(b", ");
            }
            let _ = write!(out, "{address}");
        }
        out.extend_from_slice(b";\n");
    }
    if let Some(group) = &record.group {
        out.extend_from_slice(b"  group ");
        quote_into(group.as_bytes(), out);
        out.extend_from_slice(b";\n");
    }
    for statement in &record.statements {
        // `write_statements` indents by eight.
        let _ = writeln!(out, "        {statement}");
    }
    out.extend_from_slice(b"}\n");
}

/// `group NAME { … }` (§8.5).
pub fn write_group(record: &GroupRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(b"group ");
    name_into(&record.name, out);
    out.extend_from_slice(b" {\n");
    if record.dynamic {
        out.extend_from_slice(b"  dynamic;\n");
    }
    if record.static_ {
        out.extend_from_slice(b"  static;\n");
    }
    if record.deleted {
        out.extend_from_slice(b"  deleted;\n");
    }
    for statement in &record.statements {
        let _ = writeln!(out, "        {statement}");
    }
    out.extend_from_slice(b"}\n");
}

/// `server-duid "…";`.
pub fn write_server_duid(duid: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"server-duid ");
    quote_into(duid, out);
    out.extend_from_slice(b";\n");
}

/// The head of a fresh file (`new_lease_file`, §8.3). ISC's second line names the writer; we
/// name ourselves there (it is a comment, so ISC dhcpd reads the file all the same).
pub fn write_header(out: &mut Vec<u8>) {
    out.extend_from_slice(
        b"# The format of this file is documented in the dhcpd.leases(5) manual page.\n\
          # This lease file was written by xdhcpd-",
    );
    out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    out.extend_from_slice(
        b"\n\
          \n\
          # authoring-byte-order entry is generated, DO NOT DELETE\n\
          authoring-byte-order little-endian;\n\
          \n",
    );
}

/// A whole fresh file in `new_lease_file` order: groups, host rubouts, dynamic hosts, failover
/// states, leases, server DUID (§8.3).
pub fn write_file(file: &LeaseFile, format: FileFormat, out: &mut Vec<u8>) {
    write_header(out);
    for group in &file.groups {
        write_group(group, out);
    }
    for host in file.hosts.iter().filter(|host| host.deleted) {
        write_host(host, out);
    }
    for host in file.hosts.iter().filter(|host| !host.deleted) {
        write_host(host, out);
    }
    for record in &file.failover_states {
        write_failover_state(record, format.times, out);
    }
    for lease in &file.leases {
        write_lease_with(lease, format, out);
    }
    if let Some(duid) = &file.server_duid {
        write_server_duid(duid, out);
    }
}

/// Tokens back to text for statements kept verbatim: one space between tokens, none around `.`
/// and `:` and none before `;` and `,`.
pub fn render_tokens(tokens: &[Token]) -> String {
    let mut out = Vec::new();
    let mut glue_next = true;
    for token in tokens {
        let glue = match token.kind {
            TokenKind::Punct(b'.' | b':' | b';' | b',' | b')' | b']') => true,
            _ => glue_next,
        };
        if !glue {
            out.push(b' ');
        }
        glue_next = matches!(
            token.kind,
            TokenKind::Punct(b'.' | b':' | b'(' | b'[' | b'%')
        );
        match &token.kind {
            TokenKind::Name(text) | TokenKind::Number(text) => {
                out.extend_from_slice(text.as_bytes())
            }
            TokenKind::String(bytes) => quote_into(bytes, &mut out),
            TokenKind::Punct(punct) => out.push(*punct),
            TokenKind::Eof => {}
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
