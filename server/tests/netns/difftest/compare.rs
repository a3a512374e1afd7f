//! Field-by-field comparison of two servers' replies and final lease files.

use super::lists::Key;
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// A reply as the client saw it on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// How it was addressed on the link (difftest_client.py `link_destination`).
    pub link: String,
    pub ip_dst: Ipv4Addr,
    pub udp_dport: u16,
    pub bootp: Vec<u8>,
}

/// One difference between ISC dhcpd's and xdhcpd's behaviour.
#[derive(Clone, Debug)]
pub struct Difference {
    pub key: Key,
    pub isc: String,
    pub xdhcpd: String,
}

/// Options whose values are lease times: a second apart is the same answer (both servers
/// count from their own clock reading).
/// 91 (RFC 4388 client-last-transaction-time) counts seconds since then.
const TIME_OPTIONS: [u8; 4] = [51, 58, 59, 91];

/// Options made of IPv4 addresses (dhcp-options(5)).
const ADDRESS_OPTIONS: [u8; 28] = [
    1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 28, 32, 41, 42, 44, 45, 48, 49, 50, 54, 65, 68, 69, 70, 71,
    92, 118,
];

fn ip(bytes: &[u8]) -> String {
    match <[u8; 4]>::try_from(bytes) {
        Ok(octets) => Ipv4Addr::from(octets).to_string(),
        Err(_) => hex(bytes),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "(empty)".to_owned();
    }
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Printable ASCII as "text", anything else as hex.
fn text_or_hex(bytes: &[u8]) -> String {
    if !bytes.is_empty() && bytes.iter().all(|byte| (0x20..0x7f).contains(byte)) {
        format!("{:?}", String::from_utf8_lossy(bytes))
    } else {
        hex(bytes)
    }
}

/// A C string field (sname, file): up to the first NUL.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(bytes.len());
    if bytes[end..].iter().any(|&byte| byte != 0) {
        // Overloaded options or garbage after the NUL: show everything.
        return hex(bytes);
    }
    format!("{:?}", String::from_utf8_lossy(&bytes[..end]))
}

pub fn option_value(code: u8, value: &[u8]) -> String {
    if ADDRESS_OPTIONS.contains(&code) && !value.is_empty() && value.len().is_multiple_of(4) {
        return value.chunks(4).map(ip).collect::<Vec<_>>().join(", ");
    }
    if TIME_OPTIONS.contains(&code) && value.len() == 4 {
        return u32::from_be_bytes([value[0], value[1], value[2], value[3]]).to_string();
    }
    if code == 53 && value.len() == 1 {
        return message_name(value[0]).to_owned();
    }
    text_or_hex(value)
}

pub fn message_name(message: u8) -> &'static str {
    match message {
        1 => "DHCPDISCOVER",
        2 => "DHCPOFFER",
        3 => "DHCPREQUEST",
        4 => "DHCPDECLINE",
        5 => "DHCPACK",
        6 => "DHCPNAK",
        7 => "DHCPRELEASE",
        8 => "DHCPINFORM",
        10 => "DHCPLEASEQUERY",
        11 => "DHCPLEASEUNASSIGNED",
        12 => "DHCPLEASEUNKNOWN",
        13 => "DHCPLEASEACTIVE",
        _ => "unknown",
    }
}

/// A reply decoded for comparison: header fields in wire order, then the options (values of
/// repeated codes concatenated, RFC 3396) with their order.
pub struct Decoded {
    pub header: Vec<(&'static str, String)>,
    pub options: BTreeMap<u8, Vec<u8>>,
    pub order: Vec<u8>,
}

pub fn decode(reply: &Reply) -> Result<Decoded> {
    let bootp = &reply.bootp;
    if bootp.len() < 240 || bootp[236..240] != [99, 130, 83, 99] {
        bail!("not a DHCP message ({} bytes)", bootp.len());
    }
    let header: Vec<(&'static str, String)> = vec![
        ("destination", destination(reply, bootp)),
        ("op", bootp[0].to_string()),
        ("htype", bootp[1].to_string()),
        ("hlen", bootp[2].to_string()),
        ("hops", bootp[3].to_string()),
        ("xid", hex(&bootp[4..8])),
        ("secs", u16::from_be_bytes([bootp[8], bootp[9]]).to_string()),
        (
            "flags",
            format!("{:#06x}", u16::from_be_bytes([bootp[10], bootp[11]])),
        ),
        ("ciaddr", ip(&bootp[12..16])),
        ("yiaddr", ip(&bootp[16..20])),
        ("siaddr", ip(&bootp[20..24])),
        ("giaddr", ip(&bootp[24..28])),
        ("chaddr", hex(&bootp[28..44])),
        ("sname", c_string(&bootp[44..108])),
        ("file", c_string(&bootp[108..236])),
    ];
    let mut options: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
    let mut order = Vec::new();
    read_options(&bootp[240..], &mut options, &mut order)?;
    // Option overload (RFC 2132 §9.3): `file` then `sname` continue the options area, and
    // values of a code split over them are concatenated (RFC 3396). Those fields then show
    // as "(options)" and their content is compared option by option.
    let overload = options.get(&52).and_then(|value| value.first().copied());
    let mut header = header;
    for (bit, field, range) in [(1u8, "file", 108..236), (2, "sname", 44..108)] {
        if overload.is_some_and(|value| value & bit != 0) {
            read_options(&bootp[range], &mut options, &mut order)?;
            if let Some(entry) = header.iter_mut().find(|(name, _)| *name == field) {
                entry.1 = "(options)".to_owned();
            }
        }
    }
    Ok(Decoded {
        header,
        options,
        order,
    })
}

/// Appends the options of one area to `options` (values of a repeated code concatenated) and
/// their first appearance to `order`.
fn read_options(
    mut rest: &[u8],
    options: &mut BTreeMap<u8, Vec<u8>>,
    order: &mut Vec<u8>,
) -> Result<()> {
    while let [code, tail @ ..] = rest {
        match code {
            0 => rest = tail,
            255 => break,
            _ => {
                let [length, tail @ ..] = tail else { break };
                let Some(value) = tail.get(..usize::from(*length)) else {
                    bail!("option {code} overruns its field");
                };
                if !options.contains_key(code) {
                    order.push(*code);
                }
                options.entry(*code).or_default().extend_from_slice(value);
                rest = &tail[usize::from(*length)..];
            }
        }
    }
    Ok(())
}

/// Where the reply went, by role (the addresses themselves are compared as header fields):
/// `broadcast`, `yiaddr`, `ciaddr`, `giaddr` or the address, with the UDP port and how it was
/// addressed on the link.
fn destination(reply: &Reply, bootp: &[u8]) -> String {
    let field =
        |range: std::ops::Range<usize>| <[u8; 4]>::try_from(&bootp[range]).map(Ipv4Addr::from).ok();
    let to = reply.ip_dst;
    let role = if to == Ipv4Addr::BROADCAST {
        "broadcast".to_owned()
    } else if Some(to) == field(24..28) {
        "giaddr".to_owned()
    } else if Some(to) == field(12..16) {
        "ciaddr".to_owned()
    } else if Some(to) == field(16..20) {
        "yiaddr".to_owned()
    } else {
        to.to_string()
    };
    format!("{role}:{} {}", reply.udp_dport, reply.link)
}

fn reply_summary(reply: Option<&Reply>) -> String {
    match reply {
        None => "no reply".to_owned(),
        Some(reply) => match decode(reply) {
            Ok(decoded) => decoded
                .options
                .get(&53)
                .map_or("BOOTREPLY", |value| {
                    value.first().map_or("unknown", |&m| message_name(m))
                })
                .to_owned(),
            Err(error) => format!("undecodable: {error}"),
        },
    }
}

/// Differences between two replies to the same request. When only one server answers, or the
/// message types differ, that one difference stands for all (`field = reply`).
pub fn compare_replies(key: &Key, isc: Option<&Reply>, ours: Option<&Reply>) -> Vec<Difference> {
    let at = |field: String| Key {
        field,
        ..key.clone()
    };
    let (isc_summary, our_summary) = (reply_summary(isc), reply_summary(ours));
    let (Some(isc), Some(ours)) = (isc, ours) else {
        if isc_summary == our_summary {
            return Vec::new();
        }
        return vec![Difference {
            key: at("reply".to_owned()),
            isc: isc_summary,
            xdhcpd: our_summary,
        }];
    };
    let (Ok(isc), Ok(ours)) = (decode(isc), decode(ours)) else {
        return vec![Difference {
            key: at("reply".to_owned()),
            isc: isc_summary,
            xdhcpd: our_summary,
        }];
    };
    if isc_summary != our_summary {
        return vec![Difference {
            key: at("reply".to_owned()),
            isc: isc_summary,
            xdhcpd: our_summary,
        }];
    }
    let mut differences = Vec::new();
    for ((name, isc_value), (_, our_value)) in isc.header.iter().zip(&ours.header) {
        if isc_value != our_value {
            differences.push(Difference {
                key: at((*name).to_owned()),
                isc: isc_value.clone(),
                xdhcpd: our_value.clone(),
            });
        }
    }
    let codes: std::collections::BTreeSet<u8> = isc
        .options
        .keys()
        .chain(ours.options.keys())
        .copied()
        .collect();
    for code in codes {
        let (isc_value, our_value) = (isc.options.get(&code), ours.options.get(&code));
        let same = match (isc_value, our_value) {
            (Some(a), Some(b)) if TIME_OPTIONS.contains(&code) && a.len() == 4 && b.len() == 4 => {
                let a = u32::from_be_bytes([a[0], a[1], a[2], a[3]]);
                let b = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                a.abs_diff(b) <= 1
            }
            (a, b) => a == b,
        };
        if !same {
            let show = |value: Option<&Vec<u8>>| {
                value.map_or_else(|| "absent".to_owned(), |value| option_value(code, value))
            };
            differences.push(Difference {
                key: at(format!("option {code}")),
                isc: show(isc_value),
                xdhcpd: show(our_value),
            });
        }
    }
    // The order of the options both sent (a missing option is its own difference above).
    let common = |order: &[u8], other: &BTreeMap<u8, Vec<u8>>| -> Vec<u8> {
        order
            .iter()
            .copied()
            .filter(|code| other.contains_key(code))
            .collect()
    };
    let (isc_order, our_order) = (
        common(&isc.order, &ours.options),
        common(&ours.order, &isc.options),
    );
    if isc_order != our_order {
        let show = |order: &[u8]| {
            order
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        differences.push(Difference {
            key: at("option-order".to_owned()),
            isc: show(&isc_order),
            xdhcpd: show(&our_order),
        });
    }
    differences
}

/// The current state of one address in a lease file (its last block).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseState {
    pub binding_state: String,
    pub hardware: String,
    pub uid: String,
    pub client_hostname: String,
    /// `ends − starts` of an active lease (the granted time), in seconds.
    pub duration: Option<u64>,
    /// The lease's variables, `set NAME = VALUE;` (dhcp-eval(5)), sorted by name, each
    /// value's bytes in hex (ISC writes data quoted or in colon-hex).
    pub variables: String,
    /// `billing class "NAME";` as `class NAME`, `billing subclass "NAME" DATA;` as
    /// `subclass NAME HEX` (dhcpd.conf(5) "PER-CLASS LIMITS ON DYNAMIC LEASES").
    pub billing: String,
}

/// Reads dhcpd.leases(5): the last block of each address wins.
pub fn lease_states(text: &str) -> BTreeMap<Ipv4Addr, LeaseState> {
    let mut states = BTreeMap::new();
    let mut current: Option<(Ipv4Addr, LeaseState, Option<u64>, Option<u64>)> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("lease ") {
            current = rest
                .trim_end_matches('{')
                .trim()
                .parse()
                .ok()
                .map(|address| (address, LeaseState::default(), None, None));
            continue;
        }
        let Some((_, state, starts, ends)) = current.as_mut() else {
            continue;
        };
        let value = line.trim_end_matches(';').trim();
        if line == "}" {
            if let Some((address, mut state, starts, ends)) = current.take() {
                if state.binding_state == "active" {
                    state.duration = starts.zip(ends).map(|(s, e)| e.saturating_sub(s));
                }
                // ISC writes a free lease only when something identifies its last client
                // (server/mdb.c `write_leases4`); a free record without one says nothing more
                // than no record at all.
                let anonymous_free = matches!(state.binding_state.as_str(), "free" | "backup")
                    && state.hardware.is_empty()
                    && state.uid.is_empty();
                if anonymous_free {
                    states.remove(&address);
                } else {
                    states.insert(address, state);
                }
            }
        } else if let Some(rest) = value.strip_prefix("starts ") {
            *starts = super::super::leases::parse_date(rest);
        } else if let Some(rest) = value.strip_prefix("ends ") {
            *ends = super::super::leases::parse_date(rest);
        } else if let Some(rest) = value.strip_prefix("binding state ") {
            state.binding_state = rest.to_owned();
        } else if let Some(rest) = value.strip_prefix("hardware ") {
            state.hardware = rest.to_ascii_lowercase();
        } else if let Some(rest) = value.strip_prefix("uid ") {
            state.uid = hex(&identifier_bytes(rest));
        } else if let Some(rest) = value.strip_prefix("client-hostname ") {
            state.client_hostname = rest.to_owned();
        } else if let Some(rest) = value.strip_prefix("billing class ") {
            state.billing = format!("class {}", rest.trim_matches('"'));
        } else if let Some(rest) = value.strip_prefix("billing subclass ") {
            // The name is quoted, the data quoted or colon-hex.
            let (name, data) = rest
                .strip_prefix('"')
                .and_then(|rest| rest.split_once("\" "))
                .unwrap_or((rest, ""));
            state.billing = format!("subclass {name} {}", hex(&identifier_bytes(data.trim())));
        } else if let Some(rest) = value.strip_prefix("set ") {
            if let Some((name, written)) = rest.split_once(" = ") {
                let value = match written {
                    number if number.starts_with('%') => number.to_owned(),
                    "true" | "false" => written.to_owned(),
                    data => hex(&identifier_bytes(data)),
                };
                let mut variables: Vec<String> = state
                    .variables
                    .split(", ")
                    .filter(|entry| !entry.is_empty() && !entry.starts_with(&format!("{name}=")))
                    .map(str::to_owned)
                    .collect();
                variables.push(format!("{name}={value}"));
                variables.sort();
                state.variables = variables.join(", ");
            }
        }
    }
    states
}

/// A lease file identifier: "quoted with \ooo octal escapes" or colon-hex (dhcpd.leases(5),
/// docs/spec/dhcpd-conf.md §8.2).
fn identifier_bytes(text: &str) -> Vec<u8> {
    let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return text
            .split(':')
            .filter_map(|byte| u8::from_str_radix(byte, 16).ok())
            .collect();
    };
    let bytes = inner.as_bytes();
    let mut out = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\' && index + 1 < bytes.len() {
            let octal = &bytes[index + 1..(index + 4).min(bytes.len())];
            if octal.len() == 3 && octal.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let value = octal
                    .iter()
                    .fold(0u32, |acc, digit| acc * 8 + u32::from(digit - b'0'));
                out.push(value as u8);
                index += 4;
                continue;
            }
            out.push(bytes[index + 1]);
            index += 2;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    out
}

/// Differences between the two final lease files, address by address (`exchange = leases`,
/// `step` = the address).
pub fn compare_leases(
    config: &str,
    isc: &BTreeMap<Ipv4Addr, LeaseState>,
    ours: &BTreeMap<Ipv4Addr, LeaseState>,
) -> Vec<Difference> {
    let addresses: std::collections::BTreeSet<Ipv4Addr> =
        isc.keys().chain(ours.keys()).copied().collect();
    let mut differences = Vec::new();
    for address in addresses {
        let key = |field: &str| Key {
            config: config.to_owned(),
            exchange: "leases".to_owned(),
            step: address.to_string(),
            field: field.to_owned(),
        };
        let (Some(a), Some(b)) = (isc.get(&address), ours.get(&address)) else {
            let show = |state: Option<&LeaseState>| {
                state.map_or_else(
                    || "no record".to_owned(),
                    |state| format!("{} {}", state.binding_state, state.hardware),
                )
            };
            differences.push(Difference {
                key: key("record"),
                isc: show(isc.get(&address)),
                xdhcpd: show(ours.get(&address)),
            });
            continue;
        };
        let duration = |state: &LeaseState| {
            state
                .duration
                .map_or_else(|| "-".to_owned(), |seconds| seconds.to_string())
        };
        // Only between two active leases: otherwise the binding state says it all.
        let durations_differ = match (a.duration, b.duration) {
            (Some(x), Some(y)) => x.abs_diff(y) > 1,
            _ => false,
        };
        for (field, isc_value, our_value, differ) in [
            (
                "binding-state",
                a.binding_state.clone(),
                b.binding_state.clone(),
                a.binding_state != b.binding_state,
            ),
            (
                "hardware",
                a.hardware.clone(),
                b.hardware.clone(),
                a.hardware != b.hardware,
            ),
            ("uid", a.uid.clone(), b.uid.clone(), a.uid != b.uid),
            (
                "client-hostname",
                a.client_hostname.clone(),
                b.client_hostname.clone(),
                a.client_hostname != b.client_hostname,
            ),
            ("duration", duration(a), duration(b), durations_differ),
            (
                "variables",
                a.variables.clone(),
                b.variables.clone(),
                a.variables != b.variables,
            ),
            (
                "billing",
                a.billing.clone(),
                b.billing.clone(),
                a.billing != b.billing,
            ),
        ] {
            if differ {
                differences.push(Difference {
                    key: key(field),
                    isc: isc_value,
                    xdhcpd: our_value,
                });
            }
        }
    }
    differences
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_octal_and_hex_identifiers() {
        assert_eq!(identifier_bytes("\"\\001\\002a\""), vec![1, 2, b'a']);
        assert_eq!(identifier_bytes("01:0a"), vec![1, 10]);
    }

    #[test]
    fn reads_billing_lines() {
        let text = "lease 10.0.0.1 {\n  binding state active;\n  billing subclass \"oui\" 01:02:00:01;\n}\nlease 10.0.0.2 {\n  binding state active;\n  billing subclass \"m\" \"cm-1\";\n}\nlease 10.0.0.3 {\n  binding state active;\n  billing class \"c\";\n}\n";
        let states = lease_states(text);
        let billing = |last: u8| states[&Ipv4Addr::new(10, 0, 0, last)].billing.clone();
        assert_eq!(billing(1), "subclass oui 01:02:00:01");
        assert_eq!(billing(2), "subclass m 63:6d:2d:31");
        assert_eq!(billing(3), "class c");
    }
}
