//! The DHCP option table (dhcp-options(5), ISC `common/tables.c`) as data, user definitions
//! (`option NAME code N = TYPE;`, docs/spec/dhcpd-conf.md §5.2) and the wire encodings that do not need the
//! token stream (RFC 1035 §3.1 domain names).
//!
//! Types are written in ISC's format-string notation (`tables.c`): `I` ip-address, `l`/`L`
//! signed/unsigned 32-bit, `s`/`S` 16-bit, `b`/`B` 8-bit, `f` boolean, `t` text, `X` data,
//! `d` domain-name, `D` domain-list (`Dc` compressed), `Z` zero-length, `E…` encapsulation,
//! `A` repeats the whole record, `a` repeats its last field.

/// The type of an option value (docs/spec/dhcpd-conf.md §5.2 TYPE grammar).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OptionType {
    Boolean,
    Integer {
        bits: u8,
        signed: bool,
    },
    IpAddress,
    Ip6Address,
    Text,
    /// `string`: data written as a quoted string or colon-hex.
    String,
    DomainName,
    DomainList {
        compressed: bool,
    },
    /// `encapsulate SPACE`: values are given as data.
    Encapsulate(String),
    ZeroLength,
    Array(Box<OptionType>),
    /// `{ T, T, … }`; the last field may be an array.
    Record(Vec<OptionType>),
}

impl OptionType {
    /// Parses an ISC format string (`tables.c`); `None` for a malformed one.
    fn from_format(format: &str) -> Option<OptionType> {
        let bytes = format.as_bytes();
        let mut fields = Vec::new();
        let mut index = 0;
        let mut whole_array = false;
        while index < bytes.len() {
            let field = match bytes[index] {
                b'I' => OptionType::IpAddress,
                b'6' => OptionType::Ip6Address,
                b'l' => OptionType::Integer {
                    bits: 32,
                    signed: true,
                },
                b'L' => OptionType::Integer {
                    bits: 32,
                    signed: false,
                },
                b's' => OptionType::Integer {
                    bits: 16,
                    signed: true,
                },
                b'S' => OptionType::Integer {
                    bits: 16,
                    signed: false,
                },
                b'b' => OptionType::Integer {
                    bits: 8,
                    signed: true,
                },
                b'B' => OptionType::Integer {
                    bits: 8,
                    signed: false,
                },
                b'f' => OptionType::Boolean,
                b't' => OptionType::Text,
                b'X' => OptionType::String,
                b'd' => OptionType::DomainName,
                b'D' => {
                    let compressed = bytes.get(index + 1) == Some(&b'c');
                    if compressed {
                        index += 1;
                    }
                    OptionType::DomainList { compressed }
                }
                b'Z' => OptionType::ZeroLength,
                b'E' => {
                    let rest = &format[index + 1..];
                    let end = rest.find('.')?;
                    index += end + 1;
                    OptionType::Encapsulate(rest[..end].to_string())
                }
                b'A' => {
                    whole_array = true;
                    index += 1;
                    continue;
                }
                b'a' => {
                    let last = fields.pop()?;
                    fields.push(OptionType::Array(Box::new(last)));
                    index += 1;
                    continue;
                }
                _ => return None,
            };
            fields.push(field);
            index += 1;
        }
        let single = if fields.len() == 1 {
            fields.pop()?
        } else {
            OptionType::Record(fields)
        };
        Some(if whole_array {
            OptionType::Array(Box::new(single))
        } else {
            single
        })
    }
}

/// Which option space a definition belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionSpace {
    /// The DHCPv4 options (RFC 2132 and later).
    Dhcp,
    /// Relay agent information sub-options (RFC 3046), ISC space `agent`.
    Agent,
}

/// One option definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionDefinition {
    pub space: OptionSpace,
    pub name: String,
    pub code: u8,
    pub kind: OptionType,
}

/// `tables.c` `dhcp_options[]`: name, code, format. Codes 1-82, the common later ones, and ISC's
/// defaults for 121/249 as sites define them (docs/spec/dhcpd-conf.md §5.2).
const DHCP_OPTIONS: &[(&str, u8, &str)] = &[
    ("subnet-mask", 1, "I"),
    ("time-offset", 2, "l"),
    ("routers", 3, "IA"),
    ("time-servers", 4, "IA"),
    ("ien116-name-servers", 5, "IA"),
    ("domain-name-servers", 6, "IA"),
    ("log-servers", 7, "IA"),
    ("cookie-servers", 8, "IA"),
    ("lpr-servers", 9, "IA"),
    ("impress-servers", 10, "IA"),
    ("resource-location-servers", 11, "IA"),
    ("host-name", 12, "t"),
    ("boot-size", 13, "S"),
    ("merit-dump", 14, "t"),
    ("domain-name", 15, "t"),
    ("swap-server", 16, "I"),
    ("root-path", 17, "t"),
    ("extensions-path", 18, "t"),
    ("ip-forwarding", 19, "f"),
    ("non-local-source-routing", 20, "f"),
    ("policy-filter", 21, "IIA"),
    ("max-dgram-reassembly", 22, "S"),
    ("default-ip-ttl", 23, "B"),
    ("path-mtu-aging-timeout", 24, "L"),
    ("path-mtu-plateau-table", 25, "SA"),
    ("interface-mtu", 26, "S"),
    ("all-subnets-local", 27, "f"),
    ("broadcast-address", 28, "I"),
    ("perform-mask-discovery", 29, "f"),
    ("mask-supplier", 30, "f"),
    ("router-discovery", 31, "f"),
    ("router-solicitation-address", 32, "I"),
    ("static-routes", 33, "IIA"),
    ("trailer-encapsulation", 34, "f"),
    ("arp-cache-timeout", 35, "L"),
    ("ieee802-3-encapsulation", 36, "f"),
    ("default-tcp-ttl", 37, "B"),
    ("tcp-keepalive-interval", 38, "L"),
    ("tcp-keepalive-garbage", 39, "f"),
    ("nis-domain", 40, "t"),
    ("nis-servers", 41, "IA"),
    ("ntp-servers", 42, "IA"),
    ("vendor-encapsulated-options", 43, "Evendor."),
    ("netbios-name-servers", 44, "IA"),
    ("netbios-dd-server", 45, "IA"),
    ("netbios-node-type", 46, "B"),
    ("netbios-scope", 47, "t"),
    ("font-servers", 48, "IA"),
    ("x-display-manager", 49, "IA"),
    ("dhcp-requested-address", 50, "I"),
    ("dhcp-lease-time", 51, "L"),
    ("dhcp-option-overload", 52, "B"),
    ("dhcp-message-type", 53, "B"),
    ("dhcp-server-identifier", 54, "I"),
    ("dhcp-parameter-request-list", 55, "BA"),
    ("dhcp-message", 56, "t"),
    ("dhcp-max-message-size", 57, "S"),
    ("dhcp-renewal-time", 58, "L"),
    ("dhcp-rebinding-time", 59, "L"),
    ("vendor-class-identifier", 60, "X"),
    ("dhcp-client-identifier", 61, "X"),
    ("nwip-domain", 62, "X"),
    ("nwip-suboptions", 63, "Enwip."),
    ("nisplus-domain", 64, "t"),
    ("nisplus-servers", 65, "IA"),
    ("tftp-server-name", 66, "t"),
    ("bootfile-name", 67, "t"),
    ("mobile-ip-home-agent", 68, "IA"),
    ("smtp-server", 69, "IA"),
    ("pop-server", 70, "IA"),
    ("nntp-server", 71, "IA"),
    ("www-server", 72, "IA"),
    ("finger-server", 73, "IA"),
    ("irc-server", 74, "IA"),
    ("streettalk-server", 75, "IA"),
    ("streettalk-directory-assistance-server", 76, "IA"),
    ("user-class", 77, "t"),
    ("slp-directory-agent", 78, "fIa"),
    ("slp-service-scope", 79, "ft"),
    ("rapid-commit", 80, "Z"),
    ("fqdn", 81, "Efqdn."),
    ("relay-agent-information", 82, "Eagent."),
    ("nds-servers", 85, "IA"),
    ("nds-tree-name", 86, "t"),
    ("nds-context", 87, "t"),
    ("bcms-controller-names", 88, "D"),
    ("bcms-controller-address", 89, "IA"),
    ("authenticate", 90, "X"),
    ("client-last-transaction-time", 91, "L"),
    ("associated-ip", 92, "IA"),
    ("pxe-system-type", 93, "SA"),
    ("pxe-interface-id", 94, "BBB"),
    ("pxe-client-id", 97, "BX"),
    ("uap-servers", 98, "t"),
    ("geoconf-civic", 99, "X"),
    ("pcode", 100, "t"),
    ("tcode", 101, "t"),
    ("v6-only-preferred", 108, "L"),
    ("netinfo-server-address", 112, "IA"),
    ("netinfo-server-tag", 113, "t"),
    ("default-url", 114, "t"),
    ("auto-config", 116, "B"),
    ("name-service-search", 117, "SA"),
    ("subnet-selection", 118, "I"),
    ("domain-search", 119, "Dc"),
    ("vivco", 124, "Evivco."),
    ("vivso", 125, "Evivso."),
    ("pana-agent", 136, "IA"),
    ("v4-lost", 137, "d"),
    ("capwap-ac-v4", 138, "IA"),
    ("sip-ua-cs-domains", 141, "Dc"),
    ("rdnss-selection", 146, "BIID"),
    ("v4-portparams", 159, "BBS"),
    ("v4-captive-portal", 160, "t"),
    ("option-6rd", 212, "BB6Ia"),
    ("v4-access-domain", 213, "d"),
    // Not in tables.c: sites declare these (docs/spec/dhcpd-conf.md §5.2); carried so that configs which
    // use them without a definition still load, and a definition simply replaces them.
    ("rfc3442-classless-static-routes", 121, "BA"),
    ("ms-classless-static-routes", 249, "BA"),
    ("wpad", 252, "t"),
];

/// `tables.c` `agent_options[]` (RFC 3046 and later sub-options).
const AGENT_OPTIONS: &[(&str, u8, &str)] = &[
    ("circuit-id", 1, "X"),
    ("remote-id", 2, "X"),
    ("agent-id", 3, "I"),
    ("DOCSIS-device-class", 4, "L"),
    ("link-selection", 5, "I"),
    ("subscriber-id", 6, "t"),
    ("relay-port", 19, "Z"),
];

/// The option definitions known while parsing: the standard tables plus `option … code …`.
#[derive(Clone, Debug)]
pub struct OptionTable {
    definitions: Vec<OptionDefinition>,
}

impl Default for OptionTable {
    fn default() -> Self {
        Self::standard()
    }
}

impl OptionTable {
    /// The standard DHCP and agent tables.
    pub fn standard() -> Self {
        let spaces = [
            (OptionSpace::Dhcp, DHCP_OPTIONS),
            (OptionSpace::Agent, AGENT_OPTIONS),
        ];
        let definitions = spaces
            .iter()
            .flat_map(|(space, table)| {
                table.iter().filter_map(|(name, code, format)| {
                    Some(OptionDefinition {
                        space: *space,
                        name: (*name).to_string(),
                        code: *code,
                        kind: OptionType::from_format(format)?,
                    })
                })
            })
            .collect();
        Self { definitions }
    }

    /// Looks a name up in a space, ignoring ASCII case as ISC's hash tables do.
    pub fn by_name(&self, space: OptionSpace, name: &str) -> Option<&OptionDefinition> {
        self.definitions.iter().rev().find(|definition| {
            definition.space == space && definition.name.eq_ignore_ascii_case(name)
        })
    }

    pub fn by_code(&self, space: OptionSpace, code: u8) -> Option<&OptionDefinition> {
        self.definitions
            .iter()
            .rev()
            .find(|definition| definition.space == space && definition.code == code)
    }

    /// `option NAME code N = TYPE;`: replaces any definition with the same name or code (a
    /// standard code may be redefined under a new name, §5.2).
    pub fn define(&mut self, definition: OptionDefinition) {
        self.definitions.retain(|existing| {
            existing.space != definition.space
                || (existing.code != definition.code
                    && !existing.name.eq_ignore_ascii_case(&definition.name))
        });
        self.definitions.push(definition);
    }
}

/// Why a domain name cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainNameError {
    #[error("expected labels of 1-63 bytes, found an empty or longer label")]
    BadLabel,
    #[error("expected a name of at most 255 bytes")]
    TooLong,
}

/// RFC 1035 §3.1 wire form of one name: length-prefixed labels and a terminating zero byte. A
/// trailing dot is allowed; the root name `""` or `"."` is the single zero byte.
pub fn encode_domain_name(name: &[u8], out: &mut Vec<u8>) -> Result<(), DomainNameError> {
    let start = out.len();
    let trimmed = name.strip_suffix(b".").unwrap_or(name);
    if !trimmed.is_empty() {
        for label in trimmed.split(|byte| *byte == b'.') {
            if label.is_empty() || label.len() > 63 {
                out.truncate(start);
                return Err(DomainNameError::BadLabel);
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label);
        }
    }
    out.push(0);
    if out.len() - start > 255 {
        out.truncate(start);
        return Err(DomainNameError::TooLong);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_codes_1_to_82() {
        let table = OptionTable::standard();
        for code in 1..=82u8 {
            assert!(
                table.by_code(OptionSpace::Dhcp, code).is_some(),
                "code {code} missing"
            );
        }
        for code in [118, 119, 121, 249, 252] {
            assert!(table.by_code(OptionSpace::Dhcp, code).is_some());
        }
        assert_eq!(
            table
                .by_name(OptionSpace::Agent, "circuit-id")
                .map(|d| d.code),
            Some(1)
        );
        assert_eq!(
            DHCP_OPTIONS.len() + AGENT_OPTIONS.len(),
            table.definitions.len()
        );
    }

    #[test]
    fn formats_become_types() {
        assert_eq!(
            OptionType::from_format("IIA"),
            Some(OptionType::Array(Box::new(OptionType::Record(vec![
                OptionType::IpAddress,
                OptionType::IpAddress
            ]))))
        );
        assert_eq!(
            OptionType::from_format("fIa"),
            Some(OptionType::Record(vec![
                OptionType::Boolean,
                OptionType::Array(Box::new(OptionType::IpAddress))
            ]))
        );
        assert_eq!(
            OptionType::from_format("Eagent."),
            Some(OptionType::Encapsulate("agent".into()))
        );
    }

    #[test]
    fn definitions_replace_by_code_and_name() {
        let mut table = OptionTable::standard();
        table.define(OptionDefinition {
            space: OptionSpace::Dhcp,
            name: "my-routes".into(),
            code: 121,
            kind: OptionType::String,
        });
        assert_eq!(
            table
                .by_code(OptionSpace::Dhcp, 121)
                .map(|d| d.name.as_str()),
            Some("my-routes")
        );
        assert!(table
            .by_name(OptionSpace::Dhcp, "rfc3442-classless-static-routes")
            .is_none());
    }

    #[test]
    fn domain_names_are_length_prefixed() {
        let mut out = Vec::new();
        encode_domain_name(b"a.example.", &mut out).unwrap();
        assert_eq!(out, b"\x01a\x07example\x00");
        assert!(encode_domain_name(b"a..b", &mut out).is_err());
    }
}
