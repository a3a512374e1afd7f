//! Where each reply option goes on the wire: ISC dhcpd 4.4's `store_options` and the tail of
//! `cons_options` (common/options.c), including option overload (RFC 2132 §9.3): when the
//! options area is full, options spill into the `file` field and then the `sname` field, and
//! option 52 says which fields carry options. Long options are split into 255-byte pieces, and an
//! option that does not fit whole is split across the areas (RFC 3396); one that does not fit at
//! all is left out and the next one is tried.
//!
//! The rules are ISC's byte for byte, because clients have only ever been tested against what
//! ISC sends: an option goes into the options area only if at least 4 bytes stay free after it
//! (room for option 52 and END), except the very last option of the priority list while nothing
//! has spilled yet, which only needs room for END.

/// RFC 2131 §2: size of the `file` field.
pub(crate) const FILE_LENGTH: usize = 128;
/// RFC 2131 §2: size of the `sname` field.
pub(crate) const SNAME_LENGTH: usize = 64;
/// RFC 2131 §3: the magic cookie 99.130.83.99 opens the options area.
pub(crate) const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// RFC 2132 §9.3.
pub(crate) const OPTION_OVERLOAD: u8 = 52;
const PAD: u8 = 0;
const END: u8 = 255;

/// Which header fields a reply may fill with options (ISC `dhcp_reply`: a field is available
/// when no `filename` / `server-name` is configured for it; NAK, INFORM and BOOTP replies to
/// fixed addresses use none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Overload {
    pub file: bool,
    pub sname: bool,
}

/// A reply's options as laid out for the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OptionLayout {
    /// The options area after the magic cookie: the options, option 52 when fields are
    /// overloaded, the relay agent information, and END unless the area is exactly full (ISC
    /// `cons_options` writes END only "if we need to").
    pub options: Vec<u8>,
    /// The `file` field when it carries options (options, END, zero padding).
    pub file: Option<[u8; FILE_LENGTH]>,
    /// The `sname` field when it carries options.
    pub sname: Option<[u8; SNAME_LENGTH]>,
}

impl OptionLayout {
    /// RFC 2132 §9.3 value of option 52 (1 file, 2 sname, 3 both), 0 without overload.
    pub fn overload(&self) -> u8 {
        u8::from(self.file.is_some()) | (u8::from(self.sname.is_some()) << 1)
    }
}

/// One of the three places an option piece can go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Area {
    Options,
    File,
    Sname,
}

/// The three write cursors of `store_options` (`bufix`, `six`, `tix`), as filled buffers.
#[derive(Default)]
struct Areas {
    options: Vec<u8>,
    file: Vec<u8>,
    sname: Vec<u8>,
}

impl Areas {
    fn area(&mut self, area: Area) -> &mut Vec<u8> {
        match area {
            Area::Options => &mut self.options,
            Area::File => &mut self.file,
            Area::Sname => &mut self.sname,
        }
    }

    fn lengths(&self) -> (usize, usize, usize) {
        (self.options.len(), self.file.len(), self.sname.len())
    }

    fn truncate(&mut self, (options, file, sname): (usize, usize, usize)) {
        self.options.truncate(options);
        self.file.truncate(file);
        self.sname.truncate(sname);
    }
}

/// ISC `store_options` over `priority` (codes, already without duplicates) taking values from
/// `value_of`; `capacity` is the room after the cookie in the options area. Returns the filled
/// areas and the codes stored.
fn store_options<'v>(
    priority: &[u8],
    value_of: impl Fn(u8) -> Option<&'v [u8]>,
    capacity: usize,
    overload: Overload,
) -> (Areas, Vec<u8>) {
    let file_capacity = if overload.file { FILE_LENGTH } else { 0 };
    let sname_capacity = if overload.sname { SNAME_LENGTH } else { 0 };
    // Sized once: the options area never grows past `capacity` (at most ISC's 1,236-byte
    // `mb_size`, `options::options_limit`), and each stored code is one of `priority` (a reply
    // is built without reallocating either, issue 14).
    let mut areas = Areas {
        options: Vec::with_capacity(capacity),
        ..Areas::default()
    };
    let mut stored = Vec::with_capacity(priority.len() + 1);
    for (index, &code) in priority.iter().enumerate() {
        // ISC skips options whose value is empty (`if (!od.len) continue`).
        let Some(value) = value_of(code).filter(|value| !value.is_empty()) else {
            continue;
        };
        let last = index + 1 == priority.len();
        let mut splitup = value.len() > 255;
        let start = areas.lengths();
        let mut rest = value;
        while !rest.is_empty() {
            let length = rest.len();
            let (used, file_used, sname_used) = areas.lengths();
            // The conditions are ISC's strict `<` comparisons, kept as written.
            let (area, room) = if !splitup
                && ((file_used == 0 && sname_used == 0 && last && used + 2 + length < capacity)
                    || used + 5 + length < capacity)
            {
                (Area::Options, length)
            } else if !splitup && overload.file && file_used + 3 + length < file_capacity {
                (Area::File, length)
            } else if !splitup && overload.sname && sname_used + 3 + length < sname_capacity {
                (Area::Sname, length)
            } else {
                splitup = true;
                if used + 6 < capacity {
                    (Area::Options, capacity - used - 5)
                } else if overload.file && file_used + 4 < file_capacity {
                    (Area::File, file_capacity - file_used - 3)
                } else if overload.sname && sname_used + 4 < sname_capacity {
                    (Area::Sname, sname_capacity - sname_used - 3)
                } else {
                    // Nowhere left: roll this option back and try the next one.
                    areas.truncate(start);
                    break;
                }
            };
            let piece = room.min(length).min(255);
            let buffer = areas.area(area);
            buffer.push(code);
            buffer.push(piece as u8);
            buffer.extend_from_slice(&rest[..piece]);
            rest = &rest[piece..];
        }
        if rest.is_empty() {
            stored.push(code);
        }
    }
    (areas, stored)
}

/// Lays out a reply's options as ISC `cons_options` does. `limit` is the size of the options
/// area from the cookie on, relay agent information included (ISC `mb_size`); `priority` the
/// deduplicated priority list; `agent` the relay agent information to echo last. Returns the
/// layout and the codes stored, in the order stored (relay agent information last).
pub(crate) fn lay_out<'v>(
    priority: &[u8],
    value_of: impl Fn(u8) -> Option<&'v [u8]>,
    agent: Option<(u8, &[u8])>,
    limit: usize,
    overload: Overload,
) -> (OptionLayout, Vec<u8>) {
    // The relay agent option is stored on its own first (`agentopts`) and its room kept free.
    let (agent_bytes, agent_stored) = match agent {
        Some((code, value)) => store_options(
            &[code],
            |wanted| (wanted == code).then_some(value),
            1024,
            Overload::default(),
        ),
        None => (Areas::default(), Vec::new()),
    };
    let agent_bytes = agent_bytes.options;
    let main = if limit > agent_bytes.len() {
        limit - agent_bytes.len()
    } else {
        limit
    };
    let capacity = main.saturating_sub(MAGIC_COOKIE.len());
    let (areas, mut stored) = store_options(priority, value_of, capacity, overload);
    let mut options = areas.options;
    let field = |bytes: &[u8]| -> Option<Vec<u8>> {
        (!bytes.is_empty()).then(|| {
            let mut field = bytes.to_vec();
            field.push(END);
            field
        })
    };
    let file = field(&areas.file).map(|bytes| {
        let mut field = [PAD; FILE_LENGTH];
        field[..bytes.len()].copy_from_slice(&bytes);
        field
    });
    let sname = field(&areas.sname).map(|bytes| {
        let mut field = [PAD; SNAME_LENGTH];
        field[..bytes.len()].copy_from_slice(&bytes);
        field
    });
    let mut layout = OptionLayout {
        options: Vec::new(),
        file,
        sname,
    };
    let overload_value = layout.overload();
    // Room for option 52, the relay agent information and END without reallocating.
    options.reserve(3 + agent_bytes.len() + 1);
    if overload_value != 0 {
        // `store_options` always leaves these 3 bytes when it spills.
        options.extend_from_slice(&[OPTION_OVERLOAD, 1, overload_value]);
    }
    let mut index = MAGIC_COOKIE.len() + options.len();
    if !agent_bytes.is_empty() && limit.saturating_sub(index) >= agent_bytes.len() {
        options.extend_from_slice(&agent_bytes);
        index += agent_bytes.len();
        stored.extend(agent_stored);
    }
    if index < limit {
        options.push(END);
    }
    layout.options = options;
    (layout, stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'o>(options: &'o [(u8, Vec<u8>)]) -> impl Fn(u8) -> Option<&'o [u8]> + 'o {
        move |code| {
            options
                .iter()
                .find(|(have, _)| *have == code)
                .map(|(_, value)| value.as_slice())
        }
    }

    #[test]
    fn small_replies_stay_in_the_options_area() {
        let options = vec![(53, vec![2]), (54, vec![10, 0, 0, 1])];
        let (layout, stored) = lay_out(
            &[53, 54],
            values(&options),
            None,
            312,
            Overload {
                file: true,
                sname: true,
            },
        );
        assert_eq!(layout.options, vec![53, 1, 2, 54, 4, 10, 0, 0, 1, 255]);
        assert_eq!((layout.file, layout.sname), (None, None));
        assert_eq!(stored, vec![53, 54]);
    }

    #[test]
    fn three_bytes_stay_free_except_for_the_last_option() {
        // 312 - 4 (cookie) = 308 bytes of room; after 53 and 15, 53 are left.
        let options = vec![(53, vec![2]), (15, vec![b'a'; 250]), (17, vec![b'b'; 49])];
        // Not last: 17 would leave 2 bytes, less than option 52 needs.
        let (layout, stored) = lay_out(
            &[53, 15, 17, 43],
            values(&options),
            None,
            312,
            Overload::default(),
        );
        assert_eq!(stored, vec![53, 15]);
        assert_eq!(layout.options.len(), 3 + 252 + 1);
        // Last in the priority list: only room for END is needed.
        let (layout, stored) = lay_out(
            &[53, 15, 17],
            values(&options),
            None,
            312,
            Overload::default(),
        );
        assert_eq!(stored, vec![53, 15, 17]);
        assert_eq!(layout.options.len(), 3 + 252 + 51 + 1);
        // One byte less and it fits anywhere in the list.
        let options = vec![(53, vec![2]), (15, vec![b'a'; 250]), (17, vec![b'b'; 48])];
        let (_, stored) = lay_out(
            &[53, 15, 17, 43],
            values(&options),
            None,
            312,
            Overload::default(),
        );
        assert_eq!(stored, vec![53, 15, 17]);
    }

    #[test]
    fn spill_goes_to_file_then_sname_with_option_52() {
        let options = vec![
            (53, vec![2]),
            (15, vec![b'a'; 250]),
            (17, vec![b'b'; 100]),
            (40, vec![b'c'; 60]),
        ];
        let (layout, stored) = lay_out(
            &[53, 15, 17, 40],
            values(&options),
            None,
            312,
            Overload {
                file: true,
                sname: true,
            },
        );
        assert_eq!(stored, vec![53, 15, 17, 40]);
        let file = layout.file.expect("file used");
        assert_eq!(&file[..2], &[17, 100]);
        assert_eq!(file[102], 255);
        let sname = layout.sname.expect("sname used");
        assert_eq!(&sname[..2], &[40, 60]);
        assert_eq!(sname[62], 255);
        assert!(sname[63..].iter().all(|byte| *byte == 0));
        let tail = &layout.options[layout.options.len() - 4..];
        assert_eq!(tail, &[52, 1, 3, 255]);
    }

    #[test]
    fn configured_filename_keeps_options_out_of_file() {
        let options = vec![(53, vec![2]), (15, vec![b'a'; 250]), (17, vec![b'b'; 50])];
        let (layout, _) = lay_out(
            &[53, 15, 17, 43],
            values(&options),
            None,
            312,
            Overload {
                file: false,
                sname: true,
            },
        );
        assert_eq!(layout.file, None);
        assert_eq!(&layout.sname.expect("sname")[..2], &[17, 50]);
        assert_eq!(layout.overload(), 2);
    }
}
