//! The guard record ISC writes next to each A record it adds, and which it checks before it
//! touches that A record again (RFC 4703 §5, conflict resolution): an RFC 4701 DHCID record
//! under `ddns-update-style standard`, ISC's own TXT record under `interim`.
//!
//! The values are computed exactly as ISC dhcpd 4.4 does (server/ddns.c `ddns_updates`,
//! common/dns.c `get_std_dhcid` and `get_int_dhcid`), because a server that takes over from ISC
//! must recognise — and be recognised by — the guards ISC left in the zone and in the lease file.

use md5::Md5;
use sha2::{Digest as _, Sha256};

/// `ddns-update-style` (dhcpd.conf(5) "DYNAMIC DNS UPDATES"); `none` is the absence of a style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// RFC 4701/4703: a DHCID record guards the name.
    Standard,
    /// ISC's pre-standard scheme: a TXT record with an MD5 hash guards the name.
    Interim,
}

/// DNS type codes of the records ISC updates (RFC 1035 §3.2.2, RFC 3596, RFC 4701).
pub mod rtype {
    pub const A: u16 = 1;
    pub const PTR: u16 = 12;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const DHCID: u16 = 49;
    pub const ANY: u16 = 255;
}

/// The lease-file variables ISC binds to a lease it updated DNS for (server/ddns.c
/// `ddns_update_lease_text`; dhcpd.leases(5) "DYNAMIC DNS UPDATES").
pub mod var {
    pub const FWD_NAME: &str = "ddns-fwd-name";
    pub const REV_NAME: &str = "ddns-rev-name";
    /// The standard style's DHCID RDATA.
    pub const DHCID: &str = "ddns-dhcid";
    /// The interim style's TXT string.
    pub const TXT: &str = "ddns-txt";
    /// The name a client registered itself, which the server's PTR record points to.
    pub const CLIENT_FQDN: &str = "ddns-client-fqdn";
}

/// A guard record's value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Guard {
    /// The DHCID RDATA (RFC 4701 §3.3): identifier type (2 octets), digest type 1 (SHA-256),
    /// then the 32-octet digest.
    Dhcid(Vec<u8>),
    /// The TXT string, without its length octet: two type characters, then the MD5 digest of
    /// the identifier in lowercase hex (34 characters, "31…" for a client identifier).
    Txt(Vec<u8>),
}

impl Guard {
    /// The guard's record type.
    pub fn record_type(&self) -> u16 {
        match self {
            Guard::Dhcid(_) => rtype::DHCID,
            Guard::Txt(_) => rtype::TXT,
        }
    }

    /// The style that writes this guard.
    pub fn style(&self) -> Style {
        match self {
            Guard::Dhcid(_) => Style::Standard,
            Guard::Txt(_) => Style::Interim,
        }
    }

    /// The record's RDATA on the wire. A TXT string longer than 255 octets cannot come from
    /// ISC (its value is 34 characters); it is cut, never a panic.
    pub fn rdata(&self) -> Vec<u8> {
        match self {
            Guard::Dhcid(rdata) => rdata.clone(),
            Guard::Txt(text) => {
                let text = &text[..text.len().min(255)];
                let mut rdata = Vec::with_capacity(text.len() + 1);
                rdata.push(text.len() as u8);
                rdata.extend_from_slice(text);
                rdata
            }
        }
    }

    /// The lease-file variable ISC keeps the guard in, and its value (server/ddns.c: the
    /// DHCID as is under `ddns-dhcid`; the TXT without its length octet under `ddns-txt`).
    pub fn lease_variable(&self) -> (&'static str, &[u8]) {
        match self {
            Guard::Dhcid(rdata) => (var::DHCID, rdata),
            Guard::Txt(text) => (var::TXT, text),
        }
    }
}

/// What identifies a client for its guard, as ISC picks it (server/ddns.c `ddns_updates`): the
/// client identifier (option 61) when the lease has one, else the hardware type followed by
/// the hardware address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientIdentity<'a> {
    ClientId(&'a [u8]),
    /// `htype` and `chaddr` (ISC's `hardware_addr.hbuf`, whose first octet is the type).
    Hardware {
        htype: u8,
        address: &'a [u8],
    },
}

/// Why no guard could be computed (ISC logs and skips the update: `goto badfqdn`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("the name `{0}` is not a valid domain name")]
    BadName(String),
    #[error("an RFC 4361 client identifier shorter than its 5-octet header")]
    ShortRfc4361Id,
}

/// The guard `style` writes for `client` under the forward name `fqdn`.
pub fn guard(style: Style, client: ClientIdentity<'_>, fqdn: &str) -> Result<Guard, GuardError> {
    match style {
        Style::Standard => {
            let wire = name_to_wire(fqdn).ok_or_else(|| GuardError::BadName(fqdn.to_string()))?;
            // RFC 4701 §3.3 identifier types: 0 = htype + chaddr, 1 = client identifier,
            // 2 = DUID. ISC takes an RFC 4361 identifier (type 255: IAID, then DUID) as a DUID.
            let (identifier_type, identifier): (u16, Vec<u8>) = match client {
                ClientIdentity::ClientId(uid) if uid.first() == Some(&255) => {
                    let duid = uid.get(5..).ok_or(GuardError::ShortRfc4361Id)?;
                    (2, duid.to_vec())
                }
                ClientIdentity::ClientId(uid) => (1, uid.to_vec()),
                ClientIdentity::Hardware { htype, address } => (0, hardware_buffer(htype, address)),
            };
            Ok(Guard::Dhcid(
                standard_dhcid(identifier_type, &identifier, &wire).to_vec(),
            ))
        }
        Style::Interim => Ok(Guard::Txt(match client {
            // ISC passes DHO_DHCP_CLIENT_IDENTIFIER (61) as the "type" of a client identifier
            // and 0 for a hardware address.
            ClientIdentity::ClientId(uid) => interim_txt(61, uid),
            ClientIdentity::Hardware { htype, address } => {
                interim_txt(0, &hardware_buffer(htype, address))
            }
        })),
    }
}

fn hardware_buffer(htype: u8, address: &[u8]) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(address.len() + 1);
    buffer.push(htype);
    buffer.extend_from_slice(address);
    buffer
}

/// RFC 4701 §3.3–3.5: identifier type, digest type 1, SHA-256(identifier ‖ FQDN in wire form).
/// ISC digests the name as written (common/dns.c `get_std_dhcid`: `MRns_name_pton`, no
/// lowercasing), which is what the RFC's examples do too.
pub fn standard_dhcid(identifier_type: u16, identifier: &[u8], fqdn_wire: &[u8]) -> [u8; 35] {
    let digest = Sha256::new()
        .chain_update(identifier)
        .chain_update(fqdn_wire)
        .finalize();
    let mut rdata = [0u8; 35];
    rdata[..2].copy_from_slice(&identifier_type.to_be_bytes());
    rdata[2] = 1;
    rdata[3..].copy_from_slice(&digest);
    rdata
}

/// ISC's interim TXT value (common/dns.c `get_int_dhcid`): two hex characters from the type,
/// then the MD5 of the identifier in lowercase hex. The second character is `type % 15`, not
/// `type & 15` — a slip ISC kept so as not to disturb records already in use, and which every
/// server sharing those names must repeat.
pub fn interim_txt(identifier_type: u16, identifier: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Md5::digest(identifier);
    let mut text = Vec::with_capacity(34);
    text.push(HEX[usize::from((identifier_type >> 4) & 0xf)]);
    text.push(HEX[usize::from(identifier_type % 15)]);
    for byte in digest {
        text.push(HEX[usize::from(byte >> 4)]);
        text.push(HEX[usize::from(byte & 0xf)]);
    }
    text
}

/// A domain name in presentation form (`host.example.com`, with or without the final dot,
/// `\.` and `\DDD` escapes as in RFC 1035 §5.1) in uncompressed wire form, case kept.
/// `None` for an empty label, a label over 63 octets, a name over 255 octets or a bad escape.
pub fn name_to_wire(name: &str) -> Option<Vec<u8>> {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return None;
    }
    let mut wire = Vec::with_capacity(bytes.len() + 2);
    let mut label = Vec::with_capacity(63);
    let mut index = 0;
    let mut ended_with_dot = false;
    while index < bytes.len() {
        ended_with_dot = false;
        match bytes[index] {
            b'.' => {
                if label.is_empty() {
                    // Only "." itself (the root) may have an empty label.
                    if bytes.len() == 1 {
                        break;
                    }
                    return None;
                }
                push_label(&mut wire, &label)?;
                label.clear();
                ended_with_dot = true;
                index += 1;
            }
            b'\\' => {
                let next = *bytes.get(index + 1)?;
                if next.is_ascii_digit() {
                    let digits = bytes.get(index + 1..index + 4)?;
                    if !digits.iter().all(u8::is_ascii_digit) {
                        return None;
                    }
                    let value = digits
                        .iter()
                        .fold(0u32, |acc, digit| acc * 10 + u32::from(digit - b'0'));
                    label.push(u8::try_from(value).ok()?);
                    index += 4;
                } else {
                    label.push(next);
                    index += 2;
                }
            }
            byte => {
                label.push(byte);
                index += 1;
            }
        }
    }
    if !label.is_empty() {
        push_label(&mut wire, &label)?;
    } else if !ended_with_dot && !wire.is_empty() {
        return None;
    }
    wire.push(0);
    (wire.len() <= 255).then_some(wire)
}

fn push_label(wire: &mut Vec<u8>, label: &[u8]) -> Option<()> {
    if label.is_empty() || label.len() > 63 {
        return None;
    }
    wire.push(label.len() as u8);
    wire.extend_from_slice(label);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 §4 base64, for comparing with the RFC's presentation form.
    fn base64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut text = String::new();
        for chunk in bytes.chunks(3) {
            let block = chunk.iter().enumerate().fold(0u32, |acc, (index, &byte)| {
                acc | u32::from(byte) << (16 - 8 * index)
            });
            for position in 0..4 {
                if position <= chunk.len() {
                    text.push(ALPHABET[(block >> (18 - 6 * position) & 63) as usize] as char);
                } else {
                    text.push('=');
                }
            }
        }
        text
    }

    /// RFC 4701 §3.6.1: a DHCPv6 client's DUID, type 2.
    #[test]
    fn rfc4701_example_duid() {
        let duid = [
            0x00, 0x01, 0x00, 0x06, 0x41, 0x2d, 0xf1, 0x66, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
        ];
        let wire = name_to_wire("chi6.example.com").unwrap();
        assert_eq!(
            base64(&standard_dhcid(2, &duid, &wire)),
            "AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA="
        );
    }

    /// RFC 4701 §3.6.2: a DHCPv4 client identifier, type 1, through ISC's selection.
    #[test]
    fn rfc4701_example_client_identifier() {
        let uid = [0x01, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c];
        let guard = guard(
            Style::Standard,
            ClientIdentity::ClientId(&uid),
            "chi.example.com",
        )
        .unwrap();
        let Guard::Dhcid(rdata) = guard else {
            panic!("standard style writes DHCID")
        };
        assert_eq!(
            base64(&rdata),
            "AAEBOSD+XR3Os/0LozeXVqcNc7FwCfQdWL3b/NaiUDlW2No="
        );
    }

    /// RFC 4701 §3.6.3: htype 1 and chaddr 01:02:03:04:05:06, type 0 — the final dot changes
    /// nothing.
    #[test]
    fn rfc4701_example_hardware_address() {
        let guard = guard(
            Style::Standard,
            ClientIdentity::Hardware {
                htype: 1,
                address: &[1, 2, 3, 4, 5, 6],
            },
            "client.example.com.",
        )
        .unwrap();
        assert_eq!(
            base64(&guard.rdata()),
            "AAABxLmlskllE0MVjd57zHcWmEH3pCQ6VytcKD//7es/deY="
        );
        assert_eq!(guard.lease_variable().0, "ddns-dhcid");
    }

    /// ISC takes an RFC 4361 client identifier (type 255, IAID, DUID) as a DUID (type 2).
    #[test]
    fn rfc4361_client_identifier_is_digested_as_a_duid() {
        let mut uid = vec![255, 0, 0, 0, 1];
        let duid = [
            0x00, 0x01, 0x00, 0x06, 0x41, 0x2d, 0xf1, 0x66, 1, 2, 3, 4, 5, 6,
        ];
        uid.extend_from_slice(&duid);
        let guard = guard(
            Style::Standard,
            ClientIdentity::ClientId(&uid),
            "chi6.example.com",
        )
        .unwrap();
        assert_eq!(
            base64(&guard.rdata()),
            "AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA="
        );
        assert_eq!(
            super::guard(
                Style::Standard,
                ClientIdentity::ClientId(&[255, 0, 0]),
                "a.example"
            ),
            Err(GuardError::ShortRfc4361Id)
        );
    }

    /// The interim TXT: "31" (61 >> 4 = 3, 61 % 15 = 1) and the MD5 of the client identifier;
    /// "00" and the MD5 of htype ‖ chaddr without one. MD5 values from RFC 1321 §A.5 inputs.
    #[test]
    fn interim_txt_is_isc_type_characters_and_md5_hex() {
        // MD5("abc") = 900150983cd24fb0d6963f7d28e17f72 (RFC 1321 test suite).
        let guard = guard(
            Style::Interim,
            ClientIdentity::ClientId(b"abc"),
            "whatever.example",
        )
        .unwrap();
        assert_eq!(
            guard,
            Guard::Txt(b"31900150983cd24fb0d6963f7d28e17f72".to_vec())
        );
        assert_eq!(guard.rdata()[0], 34);
        assert_eq!(&guard.rdata()[1..], b"31900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(guard.lease_variable().0, "ddns-txt");
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661; htype 0x61 = 'a' with no address.
        assert_eq!(
            super::guard(
                Style::Interim,
                ClientIdentity::Hardware {
                    htype: b'a',
                    address: &[]
                },
                "x"
            )
            .unwrap(),
            Guard::Txt(b"000cc175b9c0f1b6a831c399e269772661".to_vec())
        );
        // ISC's `type % 15`: type 15 gives "00", not "0f".
        assert_eq!(&interim_txt(15, b"")[..2], b"00");
        assert_eq!(&interim_txt(14, b"")[..2], b"0e");
    }

    #[test]
    fn names_in_wire_form() {
        assert_eq!(
            name_to_wire("a.bc").unwrap(),
            [1, b'a', 2, b'b', b'c', 0].to_vec()
        );
        assert_eq!(name_to_wire("a.bc."), name_to_wire("a.bc"));
        assert_eq!(name_to_wire(".").unwrap(), vec![0]);
        assert_eq!(
            name_to_wire(r"a\.b.c\065").unwrap(),
            [3, b'a', b'.', b'b', 2, b'c', b'A', 0].to_vec()
        );
        for bad in ["", "a..b", ".a", r"a\", r"a\25", r"a\256", "a.b.."] {
            assert_eq!(name_to_wire(bad), None, "{bad:?}");
        }
        assert_eq!(name_to_wire(&"x".repeat(64)), None);
        let long = vec!["abcdefghi"; 26].join(".");
        assert_eq!(name_to_wire(&long), None);
    }
}
