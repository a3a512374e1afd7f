//! Field-by-field comparison of two servers' replies to the same request: the destination, every
//! BOOTP header field, every option value and the option order. Shared by the differential
//! harness (server/tests/netns/difftest.rs, `cargo xtask difftest`) and shadow mode
//! (server/src/shadow/), so that both judge a difference the same way.

use crate::lists::Key;
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

/// The message type of a reply (`DHCPOFFER`, `BOOTREPLY`…), `no reply`, or why it cannot be read.
pub fn reply_summary(reply: Option<&Reply>) -> String {
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

/// A reply decoded on one line, for a person: its header fields (zero and empty ones left out)
/// and its options in the order sent, each value as [`option_value`] shows it.
pub fn describe(reply: &Reply) -> String {
    let decoded = match decode(reply) {
        Ok(decoded) => decoded,
        Err(error) => return format!("undecodable ({error}): {}", hex(&reply.bootp)),
    };
    let mut parts: Vec<String> = decoded
        .header
        .iter()
        .filter(|(_, value)| !matches!(value.as_str(), "0" | "0.0.0.0" | "\"\"" | "0x0000"))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    for code in &decoded.order {
        if let Some(value) = decoded.options.get(code) {
            parts.push(format!("{code}={}", option_value(*code, value)));
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(yiaddr: [u8; 4], lease_time: u32, secs: u16) -> Reply {
        let mut bootp = vec![0u8; 240];
        bootp[0] = 2;
        bootp[1] = 1;
        bootp[2] = 6;
        bootp[4..8].copy_from_slice(&[1, 2, 3, 4]);
        bootp[8..10].copy_from_slice(&secs.to_be_bytes());
        bootp[16..20].copy_from_slice(&yiaddr);
        bootp[28..34].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        bootp[236..240].copy_from_slice(&[99, 130, 83, 99]);
        bootp.extend_from_slice(&[53, 1, 2, 54, 4, 10, 0, 0, 1, 51, 4]);
        bootp.extend_from_slice(&lease_time.to_be_bytes());
        bootp.push(255);
        Reply {
            link: "broadcast".to_owned(),
            ip_dst: Ipv4Addr::BROADCAST,
            udp_dport: 68,
            bootp,
        }
    }

    fn key() -> Key {
        Key {
            config: "c".to_owned(),
            exchange: "e".to_owned(),
            step: "s".to_owned(),
            field: String::new(),
        }
    }

    #[test]
    fn same_replies_and_a_second_of_lease_time_are_identical() {
        let differences = compare_replies(
            &key(),
            Some(&offer([10, 0, 0, 5], 600, 0)),
            Some(&offer([10, 0, 0, 5], 599, 0)),
        );
        assert!(differences.is_empty(), "{differences:?}");
    }

    #[test]
    fn names_the_fields_that_differ() {
        let differences = compare_replies(
            &key(),
            Some(&offer([10, 0, 0, 5], 600, 4)),
            Some(&offer([10, 0, 0, 6], 3600, 0)),
        );
        let fields: Vec<&str> = differences.iter().map(|d| d.key.field.as_str()).collect();
        assert_eq!(fields, ["secs", "yiaddr", "option 51"]);
        assert_eq!(differences[2].isc, "600");
        assert_eq!(differences[2].xdhcpd, "3600");
        let missing = compare_replies(&key(), None, Some(&offer([10, 0, 0, 5], 600, 0)));
        assert_eq!(missing[0].key.field, "reply");
        assert_eq!(
            (missing[0].isc.as_str(), missing[0].xdhcpd.as_str()),
            ("no reply", "DHCPOFFER")
        );
    }

    #[test]
    fn describes_a_reply_on_one_line() {
        let text = describe(&offer([10, 0, 0, 5], 600, 0));
        assert!(text.contains("yiaddr=10.0.0.5"), "{text}");
        assert!(text.contains("53=DHCPOFFER 54=10.0.0.1 51=600"), "{text}");
    }
}
