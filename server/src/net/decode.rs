//! Decoding a received datagram into a DHCP message without ever panicking.
//!
//! dhcproto's decoder trusts some option lengths (`debug_assert!`s, and `len - N` subtractions
//! that underflow) for options a server never needs but an attacker can send: rapid commit (80),
//! client FQDN (81), client network interface (94), bulk leasequery (151-155). We check the
//! option framing and those lengths first, and keep `catch_unwind` as the last line of defence,
//! so that a hostile packet is a counted drop, never a dead worker.

use dhcproto::v4::{Message, OptionCode};
use dhcproto::{Decodable, Decoder};

/// Why a datagram was dropped before the engine saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("shorter than a BOOTP header")]
    Short,
    #[error("option {code} runs past the end of the packet")]
    OptionOverrun { code: u8 },
    #[error("option {code} has an impossible length {length}")]
    OptionLength { code: u8, length: u8 },
    #[error("not decodable as DHCP")]
    Undecodable,
}

/// Fixed BOOTP header (RFC 2131 §2) plus the magic cookie.
const OPTIONS_OFFSET: usize = 240;
#[cfg(test)]
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

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

/// Walks the options area (RFC 2132 §2: pad 0 and end 255 have no length byte). dhcproto
/// concatenates *adjacent* instances of one option (RFC 3396 §5) and decodes each such run as
/// one option, so the lengths that matter are the totals of each run: two adjacent 4-byte
/// instances of a 4-byte option make an 8-byte one that trips its `debug_assert!`, and a
/// 0-byte instance followed elsewhere by a long one is still a 0-byte option (both found by the
/// `dhcp_packet` fuzz target).
fn check_options(bytes: &[u8]) -> Result<(), DecodeError> {
    // dhcproto decodes the bytes after offset 240 as options whether or not the magic cookie
    // is there (it does not check it), so they are walked whatever the cookie says.
    if bytes.len() < OPTIONS_OFFSET {
        return Ok(());
    }
    // The run being read: (code, total length so far).
    let mut run: Option<(u8, usize)> = None;
    let check = |run: Option<(u8, usize)>| match run {
        Some((code, total)) if !length_is_acceptable(code, total) => {
            Err(DecodeError::OptionLength {
                code,
                length: u8::try_from(total).unwrap_or(u8::MAX),
            })
        }
        _ => Ok(()),
    };
    let mut offset = OPTIONS_OFFSET;
    while let Some(&code) = bytes.get(offset) {
        match code {
            0 | 255 => {
                check(run.take())?;
                if code == 255 {
                    return Ok(());
                }
                offset += 1;
            }
            _ => {
                let Some(&length) = bytes.get(offset + 1) else {
                    return Err(DecodeError::OptionOverrun { code });
                };
                if offset + 2 + usize::from(length) > bytes.len() {
                    return Err(DecodeError::OptionOverrun { code });
                }
                run = match run {
                    Some((current, total)) if current == code => {
                        Some((code, total + usize::from(length)))
                    }
                    previous => {
                        check(previous)?;
                        Some((code, usize::from(length)))
                    }
                };
                offset += 2 + usize::from(length);
            }
        }
    }
    check(run)
}

/// Decodes `bytes` into a message, or says why not. Never panics.
pub fn decode_message(bytes: &[u8]) -> Result<Message, DecodeError> {
    // 236-byte fixed BOOTP header (RFC 951): anything shorter is not a request.
    if bytes.len() < 236 {
        return Err(DecodeError::Short);
    }
    check_options(bytes)?;
    std::panic::catch_unwind(|| Message::decode(&mut Decoder::new(bytes)))
        .map_err(|_| DecodeError::Undecodable)?
        .map_err(|_| DecodeError::Undecodable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_options(options: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0u8; 236];
        bytes[0] = 1;
        bytes[1] = 1;
        bytes[2] = 6;
        bytes.extend_from_slice(&MAGIC_COOKIE);
        bytes.extend_from_slice(options);
        bytes
    }

    #[test]
    fn dangerous_lengths_are_refused() {
        for (code, length) in [(94u8, 2u8), (81, 1), (151, 0), (152, 3), (80, 1)] {
            let mut options = vec![53, 1, 1, code, length];
            options.extend(std::iter::repeat_n(0u8, usize::from(length)));
            options.push(255);
            assert_eq!(
                decode_message(&with_options(&options)).unwrap_err(),
                DecodeError::OptionLength { code, length }
            );
        }
    }

    #[test]
    fn repeated_instances_are_checked_as_one_concatenated_option() {
        // RFC 3396: two 4-byte instances of option 152 decode as one 8-byte option.
        let options = [53, 1, 1, 152, 4, 0, 0, 0, 1, 152, 4, 0, 0, 0, 2, 255];
        assert_eq!(
            decode_message(&with_options(&options)).unwrap_err(),
            DecodeError::OptionLength {
                code: 152,
                length: 8
            }
        );
        let crash = include_bytes!(
            "../../../fuzz/regressions/dhcp_packet/crash-6b551d14f9c917efb778972859b464d388366663"
        );
        // Whatever the fuzzer's framing, no prefix of the input may panic the decoder.
        for start in 0..crash.len().min(8) {
            let _ = decode_message(&crash[start..]);
        }
    }

    #[test]
    fn overrun_and_short_are_refused() {
        assert_eq!(
            decode_message(&with_options(&[53, 1, 1, 12, 40, b'x'])).unwrap_err(),
            DecodeError::OptionOverrun { code: 12 }
        );
        assert_eq!(decode_message(&[1; 100]).unwrap_err(), DecodeError::Short);
    }

    #[test]
    fn a_plain_discover_decodes() {
        let message = decode_message(&with_options(&[53, 1, 1, 255])).unwrap();
        assert_eq!(message.xid(), 0);
    }
}
