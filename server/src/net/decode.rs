//! Decoding a received datagram into a DHCP message without ever panicking.
//!
//! The options are read as ISC dhcpd 4.4 reads them (`parse_options` and `parse_option_buffer`
//! in common/options.c): no magic cookie means no options (a plain BOOTP request); the options
//! area is read up to END or the end of the packet; when option 52 says so (RFC 2132 §9.3), the
//! `file` field and then the `sname` field are read as more options; every instance of an option,
//! adjacent or not and in whichever area, is concatenated to the first in that order (RFC 3396
//! §7, ISC's `concat_duplicates`); an empty host name (12) is ignored. An option that runs past
//! the end of its area drops the packet, in the overloaded fields too.
//!
//! The options found are handed to dhcproto as one options area, each option once, with `file`
//! and `sname` cleared when they held options: dhcproto itself neither reads overloaded fields
//! nor concatenates instances that are not adjacent. dhcproto's decoder also trusts some option
//! lengths (`debug_assert!`s, and `len - N` subtractions that underflow) for options a server
//! never needs but an attacker can send: rapid commit (80), client FQDN (81), client network
//! interface (94), bulk leasequery (151-155). Those are checked on the concatenated values
//! first, and `catch_unwind` stays as the last line of defence, so that a hostile packet is a
//! counted drop, never a dead worker.

use dhcproto::v4::{Message, OptionCode};
use dhcproto::{Decodable, Decoder};

/// Where in the packet an option was found (RFC 2132 §9.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionArea {
    Options,
    File,
    Sname,
}

impl std::fmt::Display for OptionArea {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Options => "options area",
            Self::File => "overloaded file field",
            Self::Sname => "overloaded sname field",
        })
    }
}

/// Why a datagram was dropped before the engine saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("shorter than a BOOTP header")]
    Short,
    #[error("option {code} runs past the end of the {area}")]
    OptionOverrun { area: OptionArea, code: u8 },
    #[error("option {code} has an impossible length {length}")]
    OptionLength { code: u8, length: usize },
    #[error("not decodable as DHCP")]
    Undecodable,
}

/// Fixed BOOTP header (RFC 951, RFC 2131 §2) without the magic cookie.
const HEADER_LENGTH: usize = 236;
/// The fixed header plus the magic cookie.
const OPTIONS_OFFSET: usize = HEADER_LENGTH + 4;
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// RFC 2131 §2: `sname` (64 bytes) and `file` (128 bytes) in the fixed header.
const SNAME: std::ops::Range<usize> = 44..108;
const FILE: std::ops::Range<usize> = 108..236;
const PAD: u8 = 0;
const END: u8 = 255;
const HOST_NAME: u8 = 12;
const OPTION_OVERLOAD: u8 = 52;

/// Lengths dhcproto relies on without checking.
fn length_is_acceptable(code: u8, length: usize) -> bool {
    let code = OptionCode::from(code);
    match code {
        OptionCode::RapidCommit => length == 0,
        OptionCode::ClientFQDN => length >= 3,
        OptionCode::ClientNetworkInterface => length == 3,
        OptionCode::BulkLeaseQueryStatusCode => length >= 1,
        OptionCode::BulkLeaseQueryBaseTime
        | OptionCode::BulkLeasQueryStartTimeOfState
        | OptionCode::BulkLeaseQueryQueryStartTime
        | OptionCode::BulkLeaseQueryQueryEndTime => length == 4,
        _ => true,
    }
}

/// An option instance: its code and where its value lies in the datagram.
#[derive(Clone, Debug)]
struct Instance {
    code: u8,
    value: std::ops::Range<usize>,
}

/// The buffers a decoder keeps from one datagram to the next, so that a worker decoding a
/// stream of requests allocates nothing for them once they have grown (issue 14: decode into
/// reused buffers). Only the decoded [`Message`] itself is new for each datagram.
#[derive(Debug, Default)]
pub struct DecodeScratch {
    /// Option instances in reading order, then grouped by code.
    found: Vec<Instance>,
    /// The packet as dhcproto reads it.
    canonical: Vec<u8>,
}

/// ISC `parse_option_buffer`: the option instances of the area `area_range` of `bytes`, in
/// order, up to END or the end of the area (RFC 2132 §2: pad 0 and end 255 have no length
/// byte).
fn read_area(
    area: OptionArea,
    bytes: &[u8],
    area_range: std::ops::Range<usize>,
    found: &mut Vec<Instance>,
) -> Result<(), DecodeError> {
    let end = area_range.end.min(bytes.len());
    let mut offset = area_range.start;
    while offset < end {
        let code = bytes[offset];
        offset += 1;
        match code {
            END => break,
            PAD => continue,
            _ => {}
        }
        let overrun = DecodeError::OptionOverrun { area, code };
        if offset >= end {
            return Err(overrun);
        }
        let length = usize::from(bytes[offset]);
        offset += 1;
        if offset + length > end {
            return Err(overrun);
        }
        let value = offset..offset + length;
        offset += length;
        // ISC: "non-compliant clients can send it; we'll just drop it and go on".
        if code == HOST_NAME && value.is_empty() {
            continue;
        }
        found.push(Instance { code, value });
    }
    Ok(())
}

/// Every option instance of the packet, in ISC's reading order (options area, then `file`,
/// then `sname`), into `found`; returns the fields that held options.
fn read_options(bytes: &[u8], found: &mut Vec<Instance>) -> Result<u8, DecodeError> {
    found.clear();
    // ISC `parse_options`: "If we don't see the magic cookie, there's nothing to parse."
    if bytes[HEADER_LENGTH..OPTIONS_OFFSET] != MAGIC_COOKIE {
        return Ok(0);
    }
    read_area(
        OptionArea::Options,
        bytes,
        OPTIONS_OFFSET..bytes.len(),
        found,
    )?;
    // ISC reads the first byte of option 52 as the options area left it (instances in `file`
    // would be concatenated behind it). An empty option 52 names no field.
    let overload = found
        .iter()
        .filter(|instance| instance.code == OPTION_OVERLOAD)
        .find_map(|instance| bytes.get(instance.value.clone())?.first().copied())
        .unwrap_or(0)
        & 3;
    if overload & 1 != 0 {
        read_area(OptionArea::File, bytes, FILE, found)?;
    }
    if overload & 2 != 0 {
        read_area(OptionArea::Sname, bytes, SNAME, found)?;
    }
    Ok(overload)
}

/// Options kept out of dhcproto and handed to the engine as the client's bytes (an unknown
/// option holding the instances joined):
/// - the client FQDN option (RFC 4702): dhcproto reads its name in DNS wire form whatever the
///   E flag says (an ASCII name, E clear, came out mangled); the engine reads the client's
///   bytes (`crate::ddns::fqdn`);
/// - the relay agent information (RFC 3046), as ISC reads it ([`agent_information_as_isc_reads`]):
///   dhcproto's map of sub-options by code sorts them and keeps the last of each, where ISC
///   keeps the relay's order and the first; and the engine reads it in place, without a
///   decoded copy per request.
const KEPT_RAW: [u8; 2] = [CLIENT_FQDN, RELAY_AGENT_INFORMATION];
const CLIENT_FQDN: u8 = 81;
const RELAY_AGENT_INFORMATION: u8 = 82;

/// The options of [`KEPT_RAW`] a packet holds, by their place there: instances joined.
type Kept = [Option<Vec<u8>>; KEPT_RAW.len()];

/// Option 82 as ISC 4.4 reads it and then echoes and stashes it: parsed into the agent
/// universe (`parse_encapsulated_suboptions`), whose failure on a sub-option cut short is
/// ignored and keeps those before it, each code saved once — the first instance — then
/// encoded again in that order (`cons_options`). Compared with a live ISC by the difftest
/// corpus (05-isp-option82: a remote-id before the circuit-id and a second circuit-id; lists
/// cut short). In place: the result is never longer than what the relay sent.
fn agent_information_as_isc_reads(value: &mut Vec<u8>) {
    let mut seen = [false; 256];
    let (mut read, mut written) = (0, 0);
    while let [code, length, ..] = value[read..] {
        let end = read + 2 + usize::from(length);
        if end > value.len() {
            break;
        }
        if !std::mem::replace(&mut seen[usize::from(code)], true) {
            value.copy_within(read..end, written);
            written += end - read;
        }
        read = end;
    }
    value.truncate(written);
}

/// Writes the packet as dhcproto should see it into `scratch.canonical` — the fixed header
/// (`file` and `sname` zeroed when they held options), the cookie, and each option once, its
/// instances adjacent in reading order (dhcproto concatenates adjacent instances, RFC 3396
/// §5), then END — and returns the options kept out of it.
fn canonical_packet(bytes: &[u8], scratch: &mut DecodeScratch) -> Result<Kept, DecodeError> {
    let overload = read_options(bytes, &mut scratch.found)?;
    let found = &mut scratch.found;
    // Group the instances by code, codes in order of first appearance, instances in order
    // (a stable sort).
    let mut rank = [u16::MAX; 256];
    let mut next = 0u16;
    for instance in found.iter() {
        let slot = &mut rank[usize::from(instance.code)];
        if *slot == u16::MAX {
            *slot = next;
            next += 1;
        }
    }
    found.sort_by_key(|instance| rank[usize::from(instance.code)]);
    let mut total = 0;
    for (index, instance) in found.iter().enumerate() {
        total += instance.value.len();
        let run_ends = found
            .get(index + 1)
            .is_none_or(|next| next.code != instance.code);
        if run_ends {
            if !length_is_acceptable(instance.code, total) {
                return Err(DecodeError::OptionLength {
                    code: instance.code,
                    length: total,
                });
            }
            total = 0;
        }
    }
    let canonical = &mut scratch.canonical;
    canonical.clear();
    canonical.extend_from_slice(&bytes[..OPTIONS_OFFSET]);
    if overload & 1 != 0 {
        canonical[FILE].fill(0);
    }
    if overload & 2 != 0 {
        canonical[SNAME].fill(0);
    }
    let mut kept = Kept::default();
    for instance in found.iter() {
        let value = &bytes[instance.value.clone()];
        if let Some(place) = KEPT_RAW.iter().position(|code| *code == instance.code) {
            kept[place]
                .get_or_insert_with(Vec::new)
                .extend_from_slice(value);
            continue;
        }
        canonical.push(instance.code);
        canonical.push(value.len() as u8);
        canonical.extend_from_slice(value);
    }
    canonical.push(END);
    Ok(kept)
}

/// Decodes `bytes` into a message, or says why not. Never panics.
pub fn decode_message(bytes: &[u8]) -> Result<Message, DecodeError> {
    decode_message_with(bytes, &mut DecodeScratch::default())
}

/// [`decode_message`] with the decoder's buffers kept in `scratch` (a worker's, reused for
/// every datagram it receives).
pub fn decode_message_with(
    bytes: &[u8],
    scratch: &mut DecodeScratch,
) -> Result<Message, DecodeError> {
    if bytes.len() < HEADER_LENGTH {
        return Err(DecodeError::Short);
    }
    // A fixed header without the magic cookie: dhcproto cannot read it.
    if bytes.len() < OPTIONS_OFFSET {
        return Err(DecodeError::Undecodable);
    }
    let kept = canonical_packet(bytes, scratch)?;
    let canonical = scratch.canonical.as_slice();
    let mut message = std::panic::catch_unwind(|| Message::decode(&mut Decoder::new(canonical)))
        .map_err(|_| DecodeError::Undecodable)?
        .map_err(|_| DecodeError::Undecodable)?;
    for (code, value) in KEPT_RAW.into_iter().zip(kept) {
        let Some(value) = value else {
            continue;
        };
        let mut value = value;
        if code == RELAY_AGENT_INFORMATION {
            agent_information_as_isc_reads(&mut value);
        }
        message.opts_mut().insert(dhcproto::v4::DhcpOption::Unknown(
            dhcproto::v4::UnknownOption::new(OptionCode::from(code), value),
        ));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::v4::{DhcpOption, MessageType};

    fn with_options(options: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0u8; HEADER_LENGTH];
        bytes[0] = 1;
        bytes[1] = 1;
        bytes[2] = 6;
        bytes.extend_from_slice(&MAGIC_COOKIE);
        bytes.extend_from_slice(options);
        bytes
    }

    /// A request with `options` in the options area, `file` and `sname` (each padded with
    /// zeros to its field).
    fn overloaded(options: &[u8], file: &[u8], sname: &[u8]) -> Vec<u8> {
        let mut bytes = with_options(options);
        bytes[FILE][..file.len()].copy_from_slice(file);
        bytes[SNAME][..sname.len()].copy_from_slice(sname);
        bytes
    }

    fn message_type(message: &Message) -> Option<MessageType> {
        message.opts().msg_type()
    }

    #[test]
    fn dangerous_lengths_are_refused() {
        for (code, length) in [(94u8, 2u8), (81, 1), (151, 0), (152, 3), (80, 1)] {
            let mut options = vec![53, 1, 1, code, length];
            options.extend(std::iter::repeat_n(0u8, usize::from(length)));
            options.push(255);
            assert_eq!(
                decode_message(&with_options(&options)).unwrap_err(),
                DecodeError::OptionLength {
                    code,
                    length: usize::from(length)
                }
            );
        }
    }

    #[test]
    fn repeated_instances_are_checked_as_one_concatenated_option() {
        // RFC 3396: two 4-byte instances of option 152 decode as one 8-byte option, adjacent
        // or not.
        for options in [
            &[53, 1, 1, 152, 4, 0, 0, 0, 1, 152, 4, 0, 0, 0, 2, 255][..],
            &[152, 4, 0, 0, 0, 1, 53, 1, 1, 0, 152, 4, 0, 0, 0, 2, 255][..],
        ] {
            assert_eq!(
                decode_message(&with_options(options)).unwrap_err(),
                DecodeError::OptionLength {
                    code: 152,
                    length: 8
                }
            );
        }
        let crash = include_bytes!(
            "../../../fuzz/regressions/dhcp_packet/crash-6b551d14f9c917efb778972859b464d388366663"
        );
        // Whatever the fuzzer's framing, no prefix of the input may panic the decoder.
        for start in 0..crash.len().min(8) {
            let _ = decode_message(&crash[start..]);
        }
    }

    #[test]
    fn instances_apart_are_concatenated_as_isc_does() {
        // Host name "ab" in two instances with another option between them.
        let message =
            decode_message(&with_options(&[12, 1, b'a', 53, 1, 1, 12, 1, b'b', 255])).unwrap();
        assert_eq!(
            message.opts().get(OptionCode::Hostname),
            Some(&DhcpOption::Hostname("ab".into()))
        );
        assert_eq!(message_type(&message), Some(MessageType::Discover));
    }

    #[test]
    fn overrun_and_short_are_refused() {
        assert_eq!(
            decode_message(&with_options(&[53, 1, 1, 12, 40, b'x'])).unwrap_err(),
            DecodeError::OptionOverrun {
                area: OptionArea::Options,
                code: 12
            }
        );
        // A code in the last byte has no length byte.
        assert_eq!(
            decode_message(&with_options(&[53, 1, 1, 12])).unwrap_err(),
            DecodeError::OptionOverrun {
                area: OptionArea::Options,
                code: 12
            }
        );
        assert_eq!(decode_message(&[1; 100]).unwrap_err(), DecodeError::Short);
        assert_eq!(
            decode_message(&[1; 238]).unwrap_err(),
            DecodeError::Undecodable
        );
    }

    #[test]
    fn a_plain_discover_decodes() {
        let message = decode_message(&with_options(&[53, 1, 1, 255])).unwrap();
        assert_eq!(message.xid(), 0);
        assert_eq!(message_type(&message), Some(MessageType::Discover));
    }

    #[test]
    fn without_the_magic_cookie_there_are_no_options() {
        // ISC `parse_options`: a BOOTP request with another vendor area format.
        let mut bytes = with_options(&[53, 1, 1, 12, 200, 255]);
        bytes[HEADER_LENGTH..OPTIONS_OFFSET].copy_from_slice(&[1, 2, 3, 4]);
        let message = decode_message(&bytes).unwrap();
        assert!(message.opts().iter().next().is_none());
    }

    #[test]
    fn message_type_in_the_file_field() {
        let bytes = overloaded(&[52, 1, 1, 255], &[53, 1, 1, 255], b"");
        let message = decode_message(&bytes).unwrap();
        assert_eq!(message_type(&message), Some(MessageType::Discover));
        // The field held options, not a boot file name.
        assert_eq!(message.fname(), None);
    }

    #[test]
    fn message_type_in_the_sname_field() {
        let bytes = overloaded(&[52, 1, 2, 255], b"pxelinux.0", &[0, 0, 53, 1, 3, 255]);
        let message = decode_message(&bytes).unwrap();
        assert_eq!(message_type(&message), Some(MessageType::Request));
        assert_eq!(message.sname(), None);
        // Overload 2 leaves `file` a file name.
        assert_eq!(message.fname(), Some(&b"pxelinux.0\0"[..]));
    }

    #[test]
    fn options_in_both_fields_concatenate_in_rfc_3396_order() {
        // Options area, then file, then sname (RFC 3396 §7): host name "abc".
        let bytes = overloaded(
            &[52, 1, 3, 12, 1, b'a', 255],
            &[12, 1, b'b', 53, 1, 1, 255],
            &[12, 1, b'c', 61, 7, 1, 2, 0, 0, 0, 0, 1],
        );
        let message = decode_message(&bytes).unwrap();
        assert_eq!(message_type(&message), Some(MessageType::Discover));
        assert_eq!(
            message.opts().get(OptionCode::Hostname),
            Some(&DhcpOption::Hostname("abc".into()))
        );
        assert_eq!(
            message.opts().get(OptionCode::ClientIdentifier),
            Some(&DhcpOption::ClientIdentifier(vec![1, 2, 0, 0, 0, 0, 1]))
        );
        // Without option 52 the same fields are names, not options.
        let plain = overloaded(&[53, 1, 1, 255], &[12, 1, b'b'], &[12, 1, b'c']);
        let message = decode_message(&plain).unwrap();
        assert_eq!(message.opts().get(OptionCode::Hostname), None);
    }

    #[test]
    fn a_malformed_overloaded_field_drops_the_packet() {
        // ISC drops a packet whose `file` options overrun the field ...
        let bytes = overloaded(&[53, 1, 1, 52, 1, 1, 255], &[15, 200, b'x'], b"");
        assert_eq!(
            decode_message(&bytes).unwrap_err(),
            DecodeError::OptionOverrun {
                area: OptionArea::File,
                code: 15
            }
        );
        // ... or end in a code without a length byte, and the same for `sname`.
        let mut file = [0u8; 128];
        file[127] = 15;
        let bytes = overloaded(&[53, 1, 1, 52, 1, 1, 255], &file, b"");
        assert!(matches!(
            decode_message(&bytes),
            Err(DecodeError::OptionOverrun {
                area: OptionArea::File,
                ..
            })
        ));
        let bytes = overloaded(&[53, 1, 1, 52, 1, 3, 255], &[255], &[43, 64]);
        assert_eq!(
            decode_message(&bytes).unwrap_err(),
            DecodeError::OptionOverrun {
                area: OptionArea::Sname,
                code: 43
            }
        );
        // A dangerous length assembled across areas is refused too.
        let bytes = overloaded(&[53, 1, 1, 52, 1, 1, 80, 0, 255], &[80, 1, 0, 255], b"");
        assert_eq!(
            decode_message(&bytes).unwrap_err(),
            DecodeError::OptionLength {
                code: 80,
                length: 1
            }
        );
    }

    #[test]
    fn overload_over_plain_names_reads_them_as_options() {
        // Option 52 over a field that holds a file name: ISC reads the name as options.
        // "pxelinux.0" frames as option 112 ('p') with 120 ('x') bytes, then padding.
        let bytes = overloaded(&[53, 1, 1, 52, 1, 1, 255], b"pxelinux.0", b"");
        let message = decode_message(&bytes).unwrap();
        assert_eq!(message_type(&message), Some(MessageType::Discover));
        assert_eq!(message.fname(), None);
        assert!(message.opts().get(OptionCode::from(b'p')).is_some());
        // A name whose framing runs past the field drops the packet: option 97 ('a') with 122
        // ('z') bytes ends at 124, where 'q' claims 113 more.
        let mut name = vec![b'a', b'z'];
        name.resize(124, b'.');
        name.extend_from_slice(b"q...");
        let bytes = overloaded(&[53, 1, 1, 52, 1, 1, 255], &name, b"");
        assert_eq!(
            decode_message(&bytes).unwrap_err(),
            DecodeError::OptionOverrun {
                area: OptionArea::File,
                code: b'q'
            }
        );
        // Overload bits beyond 1 and 2, and an empty option 52, name no field.
        for options in [&[53, 1, 1, 52, 1, 4, 255][..], &[53, 1, 1, 52, 0, 255][..]] {
            let bytes = overloaded(options, &[15, 200], &[15, 200]);
            assert_eq!(
                message_type(&decode_message(&bytes).unwrap()),
                Some(MessageType::Discover)
            );
        }
    }

    #[test]
    fn an_empty_host_name_is_ignored() {
        let message = decode_message(&with_options(&[53, 1, 1, 12, 0, 255])).unwrap();
        assert_eq!(message.opts().get(OptionCode::Hostname), None);
    }

    /// The value of an option kept as the client's bytes.
    fn raw(message: &Message, code: u8) -> Option<Vec<u8>> {
        match message.opts().get(OptionCode::from(code)) {
            Some(DhcpOption::Unknown(option)) => Some(option.data().to_vec()),
            _ => None,
        }
    }

    #[test]
    fn relay_agent_information_is_read_as_isc_reads_it() {
        // Sub-options out of code order, one repeated, and a second instance of option 82
        // after another option: one value (RFC 3396 §7), in the relay's order, the first
        // instance of each code — what a live ISC dhcpd echoes (difftest 05-isp-option82).
        let bytes = with_options(&[
            53, 1, 1, 82, 6, 2, 1, b'r', 1, 1, b'c', 12, 1, b'h', 82, 3, 2, 1, b's', 255,
        ]);
        let message = decode_message(&bytes).unwrap();
        assert_eq!(raw(&message, 82), Some(vec![2, 1, b'r', 1, 1, b'c']));
        // A sub-option that runs past its option ends the list, the sub-options before it
        // kept (ISC ignores `parse_encapsulated_suboptions`' failure), and the options after
        // option 82 still count.
        let bytes = with_options(&[53, 1, 3, 82, 6, 1, 1, b'p', 1, 9, b'x', 12, 1, b'h', 255]);
        let message = decode_message(&bytes).unwrap();
        assert_eq!(raw(&message, 82), Some(vec![1, 1, b'p']));
        assert_eq!(message_type(&message), Some(MessageType::Request));
        assert!(message.opts().get(OptionCode::Hostname).is_some());
    }

    #[test]
    fn a_reused_scratch_decodes_each_datagram_as_a_fresh_one() {
        // A worker keeps one scratch for every datagram: nothing of one packet (its options,
        // its overloaded fields, its option 82) may leak into the next.
        let packets = [
            overloaded(
                &[53, 1, 1, 52, 1, 3, 255],
                &[15, 1, b'f', 255],
                &[17, 1, b's', 255],
            ),
            with_options(&[53, 1, 3, 82, 3, 1, 1, b'c', 81, 3, 0, 0, 0, 255]),
            with_options(&[53, 1, 8, 255]),
            with_options(&[53, 1, 1, 94, 2, 0, 0, 255]),
            with_options(&[53, 1, 7, 61, 2, 1, 2, 255]),
        ];
        let mut scratch = DecodeScratch::default();
        for _ in 0..2 {
            for bytes in &packets {
                assert_eq!(
                    decode_message_with(bytes, &mut scratch),
                    decode_message(bytes)
                );
            }
        }
    }
}
