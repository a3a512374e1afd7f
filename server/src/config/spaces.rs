//! Option spaces as the engine needs them (dhcp-options(5) "DEFINING NEW OPTIONS" and "VENDOR
//! ENCAPSULATED OPTIONS"): the wire layout of each space (`code width`, `length width`), which
//! option carries it (ISC's `universe.enc_opt`), which options of a space are themselves a plain
//! `encapsulate SPACE`, and the lowest site code of a space used as `site-option-space`. Built
//! once from the parser's [`OptionTable`]; the reply side is `engine::encapsulation`.
//!
//! Also the receiving side: [`SubOptionPath`] finds a sub-option in a client's option the way
//! ISC decodes encapsulated options on receipt (common/options.c `parse_option_buffer`, which
//! parses every option whose format starts with `E` and names a space into that space).

use super::options::{OptionSpace, OptionTable, OptionType};

/// What an option of type `encapsulate …` carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encapsulated {
    /// A named space.
    Space(OptionSpace),
    /// ISC's format `E.` (option 43): the space `vendor-option-space` names in the reply's
    /// scopes (common/options.c `store_options`).
    VendorOptionSpace,
}

/// One space's layout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpaceLayout {
    pub code_width: u8,
    pub length_width: u8,
    /// The option (space and code) whose type is exactly `encapsulate THIS` (ISC `enc_opt`,
    /// used by `search_subencapsulation` when that option has no value of its own).
    pub carried_by: Option<(OptionSpace, u32)>,
    /// Codes of this space whose (newest) definition is exactly `encapsulate SPACE`, with what
    /// they carry: sent from the carried space's options when they have no value of their own.
    pub encapsulating: Vec<(u32, Encapsulated)>,
    /// Codes of type `zerolen`: sent with an empty value (ISC `append_option` drops other empty
    /// values).
    pub zero_length: Vec<u32>,
    /// ISC `find_min_site_code` when this space is a `site-option-space`: its lowest option
    /// code if below 224 (RFC 3942), never below 128.
    pub site_code_min: u8,
}

/// Every space's layout, indexed by [`OptionSpace`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OptionSpaces {
    pub spaces: Vec<SpaceLayout>,
}

impl OptionSpaces {
    pub fn from_table(table: &OptionTable) -> Self {
        let count = table.space_count();
        let mut spaces: Vec<SpaceLayout> = (0..count)
            .map(|index| {
                let space = OptionSpace(index as u16);
                let definition = table.space_definition(space);
                SpaceLayout {
                    code_width: definition.map_or(1, |d| d.code_width),
                    length_width: definition.map_or(1, |d| d.length_width),
                    site_code_min: 224,
                    ..SpaceLayout::default()
                }
            })
            .collect();
        for (index, layout) in spaces.iter_mut().enumerate() {
            let space = OptionSpace(index as u16);
            let mut codes: Vec<u32> = table.codes(space);
            codes.sort_unstable();
            codes.dedup();
            for code in codes {
                let Some(definition) = table.by_code(space, code) else {
                    continue;
                };
                layout.site_code_min = layout.site_code_min.min(code.clamp(128, 224) as u8);
                match &definition.kind {
                    OptionType::Encapsulate(name) if name.is_empty() => layout
                        .encapsulating
                        .push((code, Encapsulated::VendorOptionSpace)),
                    OptionType::Encapsulate(name) => {
                        if let Some(target) = table.space(name) {
                            layout
                                .encapsulating
                                .push((code, Encapsulated::Space(target)));
                        }
                    }
                    OptionType::ZeroLength => layout.zero_length.push(code),
                    _ => {}
                }
            }
        }
        for (index, layout) in spaces.iter_mut().enumerate() {
            layout.carried_by = table.carrier(OptionSpace(index as u16));
        }
        Self { spaces }
    }

    pub fn layout(&self, space: OptionSpace) -> Option<&SpaceLayout> {
        self.spaces.get(usize::from(space.0))
    }
}

/// ISC's bucket of an option code in an option state's hash table (includes/dhcpd.h
/// `compute_option_hash`, `OPTION_HASH_SIZE` 17): a space's options are encapsulated bucket by
/// bucket, which fixes the order of sub-options on the wire.
pub fn isc_option_hash(code: u32) -> usize {
    (((code & 31) + ((code >> 5) & 31)) % 17) as usize
}

/// Appends `code` in `width` bytes, network byte order (ISC `putUChar`/`putUShort`/`putULong`,
/// which keep the low bytes).
pub fn put_width(out: &mut Vec<u8>, value: u32, width: u8) {
    let bytes = value.to_be_bytes();
    out.extend_from_slice(&bytes[4 - usize::from(width.min(4))..]);
}

/// Reads a `width`-byte big-endian number.
fn get_width(bytes: &[u8], width: u8) -> Option<(u32, &[u8])> {
    let width = usize::from(width);
    if bytes.len() < width {
        return None;
    }
    let value = bytes[..width]
        .iter()
        .fold(0u32, |acc, byte| (acc << 8) | u32::from(*byte));
    Some((value, &bytes[width..]))
}

/// How deep a sub-option may sit below the DHCP option that carries it (option 125 → an
/// enterprise → its space is two levels).
pub const MAX_SUBOPTION_DEPTH: usize = 3;

/// A space nested deeper than [`MAX_SUBOPTION_DEPTH`] below the DHCP option carrying it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooDeep;

/// One level of a [`SubOptionPath`]: the code to find in a buffer laid out with these widths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SubOptionStep {
    pub code: u32,
    pub code_width: u8,
    pub length_width: u8,
}

/// Where `option SPACE.NAME` is found in a request: the DHCP option that carries the space
/// (through plain `encapsulate` options), then one step per level. ISC decodes these on
/// receipt; a space no DHCP option carries (option 43's `vendor-option-space` among them,
/// which ISC decodes only on `parse-vendor-option;`) has no path and reads as null.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubOptionPath {
    /// `None`: no DHCP option carries the space, the option is never present.
    pub dhcp_code: Option<u8>,
    steps: [SubOptionStep; MAX_SUBOPTION_DEPTH],
    depth: u8,
}

impl SubOptionPath {
    /// An option no request carries.
    pub fn absent() -> Self {
        Self {
            dhcp_code: None,
            steps: [SubOptionStep::default(); MAX_SUBOPTION_DEPTH],
            depth: 0,
        }
    }

    /// The path to option `code` of `space`, when a chain of plain `encapsulate` options leads
    /// to it from a one-byte DHCP option; `Ok(None)` when nothing carries the space.
    pub fn to(table: &OptionTable, space: OptionSpace, code: u32) -> Result<Option<Self>, TooDeep> {
        let mut reversed = Vec::new();
        let mut current = (space, code);
        loop {
            let Some(definition) = table.space_definition(current.0) else {
                return Ok(None);
            };
            reversed.push(SubOptionStep {
                code: current.1,
                code_width: definition.code_width,
                length_width: definition.length_width,
            });
            let Some(carrier) = table.carrier(current.0) else {
                return Ok(None);
            };
            if carrier.0 == OptionSpace::DHCP {
                let Ok(dhcp_code) = u8::try_from(carrier.1) else {
                    return Ok(None);
                };
                if reversed.len() > MAX_SUBOPTION_DEPTH {
                    return Err(TooDeep);
                }
                let mut steps = [SubOptionStep::default(); MAX_SUBOPTION_DEPTH];
                for (slot, step) in steps.iter_mut().zip(reversed.iter().rev()) {
                    *slot = *step;
                }
                return Ok(Some(Self {
                    dhcp_code: Some(dhcp_code),
                    steps,
                    depth: reversed.len() as u8,
                }));
            }
            if reversed.len() > MAX_SUBOPTION_DEPTH {
                return Err(TooDeep);
            }
            current = carrier;
        }
    }

    /// The sub-option's value in `payload` (the carrying DHCP option's value).
    pub fn find<'p>(&self, payload: &'p [u8]) -> Option<&'p [u8]> {
        let mut buffer = payload;
        for step in &self.steps[..usize::from(self.depth)] {
            buffer = find_in_buffer(buffer, *step)?;
        }
        Some(buffer)
    }
}

/// ISC `parse_option_buffer` over a space's buffer: options until the end code (0 in every
/// space but dhcp's), the first one of a code wins (`lookup_option` returns the head of the
/// list; only the dhcp space concatenates duplicates); a malformed option ends the parse, the
/// options before it stay decoded.
fn find_in_buffer(buffer: &[u8], step: SubOptionStep) -> Option<&[u8]> {
    let mut rest = buffer;
    loop {
        let (code, after_code) = get_width(rest, step.code_width)?;
        if code == 0 {
            return None;
        }
        let (length, value_and_rest) = if step.length_width == 0 {
            (after_code.len(), after_code)
        } else {
            let (length, tail) = get_width(after_code, step.length_width)?;
            (length as usize, tail)
        };
        let value = value_and_rest.get(..length)?;
        if code == step.code {
            return Some(value);
        }
        rest = &value_and_rest[length..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::options::{OptionDefinition, SpaceDefinition};

    fn space(name: &str, code_width: u8, length_width: u8) -> SpaceDefinition {
        SpaceDefinition {
            name: name.into(),
            code_width,
            length_width,
            unchecked_names: false,
            encapsulated: false,
        }
    }

    #[test]
    fn hash_buckets_are_iscs() {
        assert_eq!(isc_option_hash(1), 1);
        assert_eq!(isc_option_hash(17), 0);
        assert_eq!(isc_option_hash(18), 1);
        // 4491 = 0b1_0001_1000_1011: 11 + (140 & 31 = 12) = 23 % 17.
        assert_eq!(isc_option_hash(4491), 6);
    }

    #[test]
    fn layouts_follow_the_table() {
        let mut table = OptionTable::standard();
        let local = table.declare_space(space("local", 1, 1));
        table.define(OptionDefinition {
            space: local,
            name: "low".into(),
            code: 180,
            kind: OptionType::Text,
        });
        let docsis = table.declare_space(space("docsis", 2, 2));
        table.define(OptionDefinition {
            space: OptionSpace::DHCP,
            name: "docsis-enc".into(),
            code: 122,
            kind: OptionType::Encapsulate("docsis".into()),
        });
        let spaces = OptionSpaces::from_table(&table);
        assert_eq!(spaces.layout(local).unwrap().site_code_min, 180);
        assert_eq!(spaces.layout(docsis).unwrap().site_code_min, 224);
        assert_eq!(
            spaces.layout(docsis).unwrap().carried_by,
            Some((OptionSpace::DHCP, 122))
        );
        let dhcp = spaces.layout(OptionSpace::DHCP).unwrap();
        assert!(dhcp
            .encapsulating
            .contains(&(43, Encapsulated::VendorOptionSpace)));
        assert!(dhcp
            .encapsulating
            .contains(&(122, Encapsulated::Space(docsis))));
        let vendor = table.space("vendor").unwrap();
        assert_eq!(
            spaces.layout(vendor).unwrap().carried_by,
            Some((OptionSpace::DHCP, 125))
        );
    }

    #[test]
    fn sub_options_are_found_through_every_level() {
        let mut table = OptionTable::standard();
        let docsis = table.declare_space(space("docsis", 2, 2));
        table.define(OptionDefinition {
            space: docsis,
            name: "device-id".into(),
            code: 36,
            kind: OptionType::String,
        });
        let vendor = table.space("vendor").unwrap();
        table.define(OptionDefinition {
            space: vendor,
            name: "docsis".into(),
            code: 4491,
            kind: OptionType::Encapsulate("docsis".into()),
        });
        let path = SubOptionPath::to(&table, docsis, 36).unwrap().unwrap();
        assert_eq!(path.dhcp_code, Some(125));
        // Option 125: enterprise 9 (skipped), then 4491 holding docsis options 1 and 36.
        let payload = [
            0, 0, 0, 9, 1, 0xff, //
            0, 0, 0x11, 0x8b, 11, 0, 1, 0, 1, 7, 0, 36, 0, 2, 0xab, 0xcd,
        ];
        assert_eq!(path.find(&payload), Some(&[0xab, 0xcd][..]));
        assert_eq!(path.find(&payload[..20]), None, "truncated");
        let unknown = table.declare_space(space("nowhere", 1, 1));
        assert_eq!(SubOptionPath::to(&table, unknown, 1), Ok(None));
    }

    #[test]
    fn widths_are_written_in_network_order() {
        let mut out = Vec::new();
        put_width(&mut out, 4491, 4);
        put_width(&mut out, 300, 2);
        put_width(&mut out, 7, 1);
        assert_eq!(out, [0, 0, 0x11, 0x8b, 1, 44, 7]);
    }
}
