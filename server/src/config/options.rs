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
    /// A field that may be left out (ISC format `o`, only in built-in formats such as
    /// slp-service-scope's `fto`).
    Optional(Box<OptionType>),
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
                b'o' => {
                    let last = fields.pop()?;
                    fields.push(OptionType::Optional(Box::new(last)));
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

/// An option space (ISC "universe"), by its index in the [`OptionTable`]. The first ones are
/// ISC 4.4's built-in spaces (`common/tables.c`, `server/stables.c`); `option space NAME;`
/// (docs/spec/dhcpd-conf.md §5.2) adds more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OptionSpace(pub u16);

impl OptionSpace {
    /// The DHCPv4 options (RFC 2132 and later).
    pub const DHCP: OptionSpace = OptionSpace(0);
    /// Relay agent information sub-options (RFC 3046), ISC space `agent`.
    pub const AGENT: OptionSpace = OptionSpace(1);
}

/// One option space: ISC's `struct universe` as far as the parser needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpaceDefinition {
    pub name: String,
    /// Bytes of an option code on the wire (`code width`, 1, 2 or 4).
    pub code_width: u8,
    /// Bytes of an option length on the wire (`length width`; 0 for ISC's DHCPv6 vendor spaces).
    pub length_width: u8,
    /// A DHCPv6 space of ISC's: xdhcpd is a DHCPv4 server and carries no table for it, so its
    /// option names are taken on trust (ISC's `dhcpd -t` checks them against its v6 tables).
    pub unchecked_names: bool,
    /// An option encapsulates this space already. ISC keeps one encapsulating option per space
    /// (`universe.enc_opt`) and stops at a second `encapsulate` of it ("Internal
    /// inconsistency: storage value has not been initialized to zero").
    pub encapsulated: bool,
}

/// One option definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionDefinition {
    pub space: OptionSpace,
    pub name: String,
    /// The code as ISC stores it (`atoi` of the definition, not limited to the space's code
    /// width: ISC accepts `code 300` in the dhcp space, it can then never be sent).
    pub code: u32,
    pub kind: OptionType,
}

impl OptionDefinition {
    /// The code as one byte, when it fits (the dhcp and agent spaces).
    pub fn byte_code(&self) -> Option<u8> {
        u8::try_from(self.code).ok()
    }
}

/// One built-in option table: name, code, ISC format string.
type OptionTableData = &'static [(&'static str, u32, &'static str)];

/// ISC 4.4's built-in DHCPv4 spaces with their code and length widths (`tables.c`
/// `initialize_common_option_spaces`, `stables.c` `initialize_server_option_spaces`), in
/// [`OptionSpace`] index order. `server` is ISC's space of the server parameters; the parser
/// reads it on its own (`option server.NAME …`), it has no definitions here.
const BUILTIN_SPACES: &[(&str, u8, u8, OptionTableData)] = &[
    ("dhcp", 1, 1, DHCP_OPTIONS),
    ("agent", 1, 1, AGENT_OPTIONS),
    ("server", 4, 1, &[]),
    ("nwip", 1, 1, NWIP_OPTIONS),
    ("fqdn", 1, 1, FQDN_OPTIONS),
    ("vendor-class", 4, 1, VENDOR_CLASS_OPTIONS),
    ("vendor", 4, 1, VENDOR_OPTIONS),
    ("isc", 2, 2, ISC_OPTIONS),
];

/// ISC's DHCPv6 spaces, present in every 4.4 build (see [`SpaceDefinition::unchecked_names`]).
const DHCPV6_SPACES: &[(&str, u8, u8)] = &[("dhcp6", 2, 2), ("vsio", 4, 0), ("isc6", 4, 0)];

/// `tables.c` `dhcp_options[]` as built by ISC 4.4.3 (every `RFCxxxx_OPTIONS` switch on): name,
/// code, format.
const DHCP_OPTIONS: &[(&str, u32, &str)] = &[
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
    ("vendor-encapsulated-options", 43, "E."),
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
    ("nwip-domain", 62, "t"),
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
    ("slp-service-scope", 79, "fto"),
    ("fqdn", 81, "Efqdn."),
    ("relay-agent-information", 82, "Eagent."),
    ("nds-servers", 85, "IA"),
    ("nds-tree-name", 86, "t"),
    ("nds-context", 87, "t"),
    ("bcms-controller-names", 88, "D"),
    ("bcms-controller-address", 89, "Ia"),
    ("client-last-transaction-time", 91, "L"),
    ("associated-ip", 92, "Ia"),
    ("pxe-system-type", 93, "Sa"),
    ("pxe-interface-id", 94, "BBB"),
    ("pxe-client-id", 97, "BX"),
    ("uap-servers", 98, "t"),
    ("geoconf-civic", 99, "X"),
    ("pcode", 100, "t"),
    ("tcode", 101, "t"),
    ("v6-only-preferred", 108, "L"),
    ("netinfo-server-address", 112, "Ia"),
    ("netinfo-server-tag", 113, "t"),
    ("default-url", 114, "t"),
    ("auto-config", 116, "B"),
    ("name-service-search", 117, "Sa"),
    ("subnet-selection", 118, "I"),
    ("domain-search", 119, "Dc"),
    ("vivco", 124, "Evendor-class."),
    ("vivso", 125, "Evendor."),
    ("pana-agent", 136, "Ia"),
    ("v4-lost", 137, "d"),
    ("capwap-ac-v4", 138, "Ia"),
    ("sip-ua-cs-domains", 141, "Dc"),
    ("ipv4-address-andsf", 142, "IA"),
    ("rdnss-selection", 146, "BIID"),
    ("tftp-server-address", 150, "Ia"),
    ("v4-portparams", 159, "BBS"),
    ("v4-captive-portal", 160, "t"),
    ("loader-configfile", 209, "t"),
    ("loader-pathprefix", 210, "t"),
    ("loader-reboottime", 211, "L"),
    ("option-6rd", 212, "BB6Ia"),
    ("v4-access-domain", 213, "d"),
];

/// `stables.c` `agent_options[]` (RFC 3046 and later sub-options).
const AGENT_OPTIONS: &[(&str, u32, &str)] = &[
    ("circuit-id", 1, "X"),
    ("remote-id", 2, "X"),
    ("agent-id", 3, "I"),
    ("DOCSIS-device-class", 4, "L"),
    ("link-selection", 5, "I"),
    ("relay-port", 19, "Z"),
];

/// `tables.c` `nwip_options[]` (RFC 2242); codes 1-4 have an empty format, as in ISC.
const NWIP_OPTIONS: &[(&str, u32, &str)] = &[
    ("illegal-1", 1, ""),
    ("illegal-2", 2, ""),
    ("illegal-3", 3, ""),
    ("illegal-4", 4, ""),
    ("nsq-broadcast", 5, "f"),
    ("preferred-dss", 6, "IA"),
    ("nearest-nwip-server", 7, "IA"),
    ("autoretries", 8, "B"),
    ("autoretry-secs", 9, "B"),
    ("nwip-1-1", 10, "f"),
    ("primary-dss", 11, "I"),
];

/// `tables.c` `fqdn_options[]`: ISC's view of the fields of option 81 (RFC 4702).
const FQDN_OPTIONS: &[(&str, u32, &str)] = &[
    ("no-client-update", 1, "f"),
    ("server-update", 2, "f"),
    ("encoded", 3, "f"),
    ("rcode1", 4, "B"),
    ("rcode2", 5, "B"),
    ("hostname", 6, "t"),
    ("domainname", 7, "t"),
    ("fqdn", 8, "t"),
];

/// `tables.c` `vendor_class_options[]` (option 124, RFC 3925: enterprise numbers as codes).
const VENDOR_CLASS_OPTIONS: &[(&str, u32, &str)] = &[("isc", 2495, "X")];

/// `tables.c` `vendor_options[]` (option 125, RFC 3925).
const VENDOR_OPTIONS: &[(&str, u32, &str)] = &[("isc", 2495, "Eisc.")];

/// `tables.c` `isc_options[]` (ISC's enterprise sub-options).
const ISC_OPTIONS: &[(&str, u32, &str)] = &[("media", 1, "t"), ("update-assist", 2, "X")];

/// The option spaces and definitions known while parsing: ISC's built-in tables plus
/// `option space …;` and `option … code …;`.
#[derive(Clone, Debug)]
pub struct OptionTable {
    spaces: Vec<SpaceDefinition>,
    definitions: Vec<OptionDefinition>,
}

impl Default for OptionTable {
    fn default() -> Self {
        Self::standard()
    }
}

impl OptionTable {
    /// ISC 4.4's built-in spaces and tables.
    pub fn standard() -> Self {
        let mut spaces = Vec::new();
        let mut definitions = Vec::new();
        for (index, (name, code_width, length_width, table)) in BUILTIN_SPACES.iter().enumerate() {
            spaces.push(SpaceDefinition {
                name: (*name).to_string(),
                code_width: *code_width,
                length_width: *length_width,
                unchecked_names: false,
                encapsulated: false,
            });
            let space = OptionSpace(index as u16);
            definitions.extend(table.iter().filter_map(|(name, code, format)| {
                Some(OptionDefinition {
                    space,
                    name: (*name).to_string(),
                    code: *code,
                    kind: OptionType::from_format(format)?,
                })
            }));
        }
        for (name, code_width, length_width) in DHCPV6_SPACES {
            spaces.push(SpaceDefinition {
                name: (*name).to_string(),
                code_width: *code_width,
                length_width: *length_width,
                unchecked_names: true,
                encapsulated: false,
            });
        }
        let mut table = Self {
            spaces,
            definitions,
        };
        let encapsulated: Vec<String> = table
            .definitions
            .iter()
            .filter_map(|definition| match &definition.kind {
                OptionType::Encapsulate(space) if !space.is_empty() => Some(space.clone()),
                _ => None,
            })
            .collect();
        for name in encapsulated {
            if let Some(space) = table.space(&name) {
                table.spaces[usize::from(space.0)].encapsulated = true;
            }
        }
        table
    }

    /// A space by name, ignoring ASCII case (ISC's universe hash is case-insensitive).
    pub fn space(&self, name: &str) -> Option<OptionSpace> {
        self.spaces
            .iter()
            .rposition(|space| space.name.eq_ignore_ascii_case(name))
            .map(|index| OptionSpace(index as u16))
    }

    pub fn space_definition(&self, space: OptionSpace) -> Option<&SpaceDefinition> {
        self.spaces.get(usize::from(space.0))
    }

    /// Marks `space` as encapsulated by an option; false when it already was (see
    /// [`SpaceDefinition::encapsulated`]).
    pub fn encapsulate(&mut self, space: OptionSpace) -> bool {
        match self.spaces.get_mut(usize::from(space.0)) {
            Some(definition) => !std::mem::replace(&mut definition.encapsulated, true),
            None => false,
        }
    }

    /// `option space NAME …;`: declares a space (again: ISC adds a second universe of the same
    /// name, which then wins the lookups).
    pub fn declare_space(&mut self, definition: SpaceDefinition) -> OptionSpace {
        self.spaces.push(definition);
        OptionSpace((self.spaces.len() - 1) as u16)
    }

    /// Looks a name up in a space, ignoring ASCII case as ISC's hash tables do.
    pub fn by_name(&self, space: OptionSpace, name: &str) -> Option<&OptionDefinition> {
        self.definitions.iter().rev().find(|definition| {
            definition.space == space && definition.name.eq_ignore_ascii_case(name)
        })
    }

    pub fn by_code(&self, space: OptionSpace, code: u32) -> Option<&OptionDefinition> {
        self.definitions
            .iter()
            .rev()
            .find(|definition| definition.space == space && definition.code == code)
    }

    /// How many spaces there are ([`OptionSpace`] indexes run below this).
    pub fn space_count(&self) -> usize {
        self.spaces.len()
    }

    /// The codes defined in `space` (each as often as it is defined).
    pub fn codes(&self, space: OptionSpace) -> Vec<u32> {
        self.definitions
            .iter()
            .filter(|definition| definition.space == space)
            .map(|definition| definition.code)
            .collect()
    }

    /// The option whose type is exactly `encapsulate SPACE` for `space` (ISC's
    /// `universe.enc_opt`, set by the definition; a record holding an `encapsulate` field
    /// does not count, as in ISC's decoding and `search_subencapsulation`).
    pub fn carrier(&self, space: OptionSpace) -> Option<(OptionSpace, u32)> {
        self.definitions
            .iter()
            .rev()
            .find(|definition| match &definition.kind {
                OptionType::Encapsulate(name) => {
                    !name.is_empty() && self.space(name) == Some(space)
                }
                _ => false,
            })
            .map(|definition| (definition.space, definition.code))
    }

    /// `option NAME code N = TYPE;`: replaces the definition of that name (confpars.c deletes
    /// the known option from both hashes first). Another name with the same code stays known
    /// by its name; lookups by code find the newest definition.
    pub fn define(&mut self, definition: OptionDefinition) {
        self.definitions.retain(|existing| {
            existing.space != definition.space
                || !existing.name.eq_ignore_ascii_case(&definition.name)
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

/// A domain list with RFC 1035 §4.1.4 compression, as RFC 3397 §2 allows for option 119 and
/// ISC encodes its `Dc` options (common/parse.c `parse_domain_list`, BIND's
/// `ns_name_compress`): each name ends in a pointer to the longest suffix already written
/// (compared without regard to case), offsets counted from the start of the option data.
/// Every label written in full can be pointed to later.
#[derive(Debug, Default)]
pub struct CompressedDomainList {
    /// Where a label was written in full, and the name from there on (lowercase labels).
    targets: Vec<(usize, Vec<Vec<u8>>)>,
}

/// The names of a domain-name list in wire form (RFC 1035 §3.1, compressed as §4.1.4 with
/// offsets from the list's first byte, RFC 3397 §2), as dotted text; `None` when malformed (a
/// pointer forward or out of the data, a loop, a truncated label).
pub fn decode_domain_list(data: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    let mut position = 0;
    while position < data.len() {
        let mut name: Vec<u8> = Vec::new();
        let mut cursor = position;
        let mut next_name = None;
        let mut jumps = 0;
        loop {
            let length = *data.get(cursor)?;
            if length & 0xc0 == 0xc0 {
                let target =
                    usize::from(u16::from_be_bytes([length & 0x3f, *data.get(cursor + 1)?]));
                next_name.get_or_insert(cursor + 2);
                jumps += 1;
                // Pointers go backwards only (RFC 3397 §2), so a loop cannot be followed.
                if target >= cursor || jumps > data.len() {
                    return None;
                }
                cursor = target;
                continue;
            }
            if length == 0 {
                next_name.get_or_insert(cursor + 1);
                break;
            }
            let label = data.get(cursor + 1..cursor + 1 + usize::from(length))?;
            if !name.is_empty() {
                name.push(b'.');
            }
            name.extend_from_slice(label);
            cursor += 1 + usize::from(length);
        }
        names.push(name);
        position = next_name?;
    }
    Some(names)
}

/// ISC `expr_concat_dclist` (`prepend`/`append` on a compressed domain list): both lists
/// decompressed, joined, and compressed again as one list; `None` when either is malformed.
pub fn concat_domain_lists(first: &[u8], second: &[u8]) -> Option<Vec<u8>> {
    let mut names = decode_domain_list(first)?;
    names.extend(decode_domain_list(second)?);
    let mut list = CompressedDomainList::default();
    let mut out = Vec::new();
    for name in &names {
        list.push(name, &mut out).ok()?;
    }
    Some(out)
}

/// The largest offset a compression pointer can hold (14 bits).
const MAX_POINTER: usize = 0x3fff;

impl CompressedDomainList {
    /// Appends `name` to `out`, which holds this list's data from its first byte.
    pub fn push(&mut self, name: &[u8], out: &mut Vec<u8>) -> Result<(), DomainNameError> {
        // Validate and measure as the uncompressed form would be.
        let mut plain = Vec::new();
        encode_domain_name(name, &mut plain)?;
        let trimmed = name.strip_suffix(b".").unwrap_or(name);
        let labels: Vec<&[u8]> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split(|byte| *byte == b'.').collect()
        };
        let lowercase: Vec<Vec<u8>> = labels.iter().map(|l| l.to_ascii_lowercase()).collect();
        for start in 0..labels.len() {
            let suffix = &lowercase[start..];
            if let Some(&(offset, _)) = self
                .targets
                .iter()
                .find(|(_, written)| written.as_slice() == suffix)
            {
                self.write_labels(&labels[..start], &lowercase, out);
                out.extend_from_slice(&(0xc000 | offset as u16).to_be_bytes());
                return Ok(());
            }
        }
        self.write_labels(&labels, &lowercase, out);
        out.push(0);
        Ok(())
    }

    /// Writes `labels` (the head of the name whose lowercase labels are `lowercase`) in full,
    /// remembering where each starts.
    fn write_labels(&mut self, labels: &[&[u8]], lowercase: &[Vec<u8>], out: &mut Vec<u8>) {
        for (index, label) in labels.iter().enumerate() {
            if out.len() <= MAX_POINTER {
                self.targets.push((out.len(), lowercase[index..].to_vec()));
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_iscs() {
        let table = OptionTable::standard();
        for code in (1..=79u32).chain([81, 82, 119, 124, 125, 150, 209, 213]) {
            assert!(
                table.by_code(OptionSpace::DHCP, code).is_some(),
                "code {code} missing"
            );
        }
        // Not in ISC 4.4's table: `option rapid-commit;` is an unknown option there.
        for code in [80, 90, 121, 249, 252] {
            assert!(table.by_code(OptionSpace::DHCP, code).is_none(), "{code}");
        }
        assert_eq!(
            table
                .by_name(OptionSpace::DHCP, "tftp-server-address")
                .map(|d| (d.code, d.kind.clone())),
            Some((150, OptionType::Array(Box::new(OptionType::IpAddress))))
        );
        assert_eq!(
            table
                .by_name(OptionSpace::AGENT, "circuit-id")
                .map(|d| d.code),
            Some(1)
        );
        let vendor = table.space("vendor").unwrap();
        assert_eq!(table.space_definition(vendor).unwrap().code_width, 4);
        assert_eq!(table.by_name(vendor, "ISC").map(|d| d.code), Some(2495));
        assert!(table.space("dhcp6").is_some());
        assert!(table.space("ztp").is_none());
        let tables: usize = BUILTIN_SPACES.iter().map(|space| space.3.len()).sum();
        assert_eq!(tables, table.definitions.len());
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
        assert_eq!(
            OptionType::from_format("fto"),
            Some(OptionType::Record(vec![
                OptionType::Boolean,
                OptionType::Optional(Box::new(OptionType::Text))
            ]))
        );
    }

    #[test]
    fn a_definition_replaces_its_name_only() {
        let mut table = OptionTable::standard();
        table.define(OptionDefinition {
            space: OptionSpace::DHCP,
            name: "my-routers".into(),
            code: 3,
            kind: OptionType::String,
        });
        assert_eq!(
            table.by_code(OptionSpace::DHCP, 3).map(|d| d.name.as_str()),
            Some("my-routers")
        );
        // ISC keeps `routers` in its name hash.
        assert!(table.by_name(OptionSpace::DHCP, "routers").is_some());
        table.define(OptionDefinition {
            space: OptionSpace::DHCP,
            name: "routers".into(),
            code: 200,
            kind: OptionType::Text,
        });
        assert_eq!(
            table.by_name(OptionSpace::DHCP, "routers").map(|d| d.code),
            Some(200)
        );
    }

    #[test]
    fn domain_names_are_length_prefixed() {
        let mut out = Vec::new();
        encode_domain_name(b"a.example.", &mut out).unwrap();
        assert_eq!(out, b"\x01a\x07example\x00");
        assert!(encode_domain_name(b"a..b", &mut out).is_err());
    }

    #[test]
    fn domain_lists_are_compressed_as_isc_does() {
        // ISC 4.4 for `option domain-search "office.example", "example";` (captured by the
        // differential test): the second name is a pointer to offset 7.
        let mut list = CompressedDomainList::default();
        let mut out = Vec::new();
        list.push(b"office.example", &mut out).unwrap();
        list.push(b"example", &mut out).unwrap();
        assert_eq!(out, b"\x06office\x07example\x00\xc0\x07".to_vec());
        // A longer shared suffix wins; case does not matter; a new head is written in full.
        list.push(b"lab.Office.Example.", &mut out).unwrap();
        assert_eq!(&out[18..], b"\x03lab\xc0\x00");
        list.push(b"other.net", &mut out).unwrap();
        assert_eq!(&out[24..], b"\x05other\x03net\x00");
        list.push(b"", &mut out).unwrap();
        assert_eq!(out.last(), Some(&0));
    }

    #[test]
    fn compressed_lists_join_as_one() {
        let mut first = Vec::new();
        CompressedDomainList::default()
            .push(b"sales.corp.example", &mut first)
            .unwrap();
        let mut second = Vec::new();
        let mut list = CompressedDomainList::default();
        list.push(b"corp.example", &mut second).unwrap();
        list.push(b"example", &mut second).unwrap();
        assert_eq!(
            decode_domain_list(&second),
            Some(vec![b"corp.example".to_vec(), b"example".to_vec()])
        );
        // What ISC sends for `prepend domain-search "sales.corp.example"` onto the other two
        // (testdata/difftest/41-supersede-append).
        assert_eq!(
            concat_domain_lists(&first, &second).unwrap(),
            b"\x05sales\x04corp\x07example\x00\xc0\x06\xc0\x0b".to_vec()
        );
        assert_eq!(decode_domain_list(b"\xc0\x00"), None);
        assert_eq!(decode_domain_list(b"\x05ab"), None);
    }
}
