//! Field-by-field comparison of two servers' final lease files; the replies' comparison is
//! `dhcp_compare::replies` (shared with shadow mode), re-exported here.

use dhcp_compare::lists::Key;
pub use dhcp_compare::replies::{
    compare_replies, decode, hex, message_name, option_value, Decoded, Difference, Reply,
};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

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
