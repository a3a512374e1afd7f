//! The base64 decoder of `key { secret …; }` (docs/spec/dhcpd-conf.md §3, docs/spec/omapi.md §6),
//! as ISC's `parse_base64` (common/parse.c) decodes: the RFC 4648 §4 alphabet, `=` only at the
//! end, and left-over bits of an incomplete quantum are allowed only when they are zero.

/// Decodes a secret; the error says what ISC would complain about.
pub(crate) fn decode(text: &[u8]) -> Result<Vec<u8>, String> {
    let mut output = Vec::with_capacity(text.len() / 4 * 3);
    let mut accumulator: u32 = 0;
    let mut count = 0usize;
    let mut terminated = false;
    for &byte in text {
        if byte == b'=' {
            terminated = true;
            count += 1;
            continue;
        }
        if terminated {
            return Err("stuff after the base64 `=` terminator".to_string());
        }
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("an invalid base64 character {byte}")),
        };
        accumulator = (accumulator << 6) | u32::from(value);
        match count % 4 {
            1 => {
                output.push((accumulator >> 4) as u8);
                accumulator &= 0x0f;
            }
            2 => {
                output.push((accumulator >> 2) as u8);
                accumulator &= 0x03;
            }
            3 => {
                output.push(accumulator as u8);
                accumulator = 0;
            }
            _ => {}
        }
        count += 1;
    }
    if !count.is_multiple_of(4) && accumulator != 0 {
        return Err(format!("a partial base64 value left over ({accumulator})"));
    }
    if output.is_empty() {
        return Err("an empty secret".to_string());
    }
    Ok(output)
}

/// True when every byte of `text` may continue a base64 secret that ISC reads across tokens
/// (`parse_base64` joins the following tokens while they hold only these characters).
pub(crate) fn is_base64_text(text: &[u8]) -> bool {
    !text.is_empty()
        && text
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'='))
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_the_omapi_sample_key() {
        assert_eq!(
            decode(b"MDEyMzQ1Njc4OWFiY2RlZg==").as_deref(),
            Ok(&b"0123456789abcdef"[..])
        );
        // Padding may be left out when the left-over bits are zero.
        assert_eq!(decode(b"Zm9vYg").as_deref(), Ok(&b"foob"[..]));
    }

    #[test]
    fn refuses_what_isc_refuses() {
        assert!(decode(b"Zm9v!").is_err());
        assert!(decode(b"Z").is_err());
        assert!(decode(b"Zg==Zg").is_err());
        // dhcpd -t: "partial base64 value left over: 5."
        assert!(decode(b"abcdEF").is_err());
        assert!(decode(b"").is_err());
        assert!(decode(b"Zm 9v").is_err());
    }
}
