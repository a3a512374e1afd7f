//! A small RFC 4648 §4 base64 decoder for `key { secret "…"; }` (docs/spec/dhcpd-conf.md §3, docs/spec/omapi.md §6);
//! whitespace is skipped, padding is optional, anything else is an error.

/// Decodes standard base64; `None` when the text holds a character outside the alphabet, data
/// after padding, or a dangling single character.
pub(crate) fn decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut output = Vec::with_capacity(text.len() / 4 * 3);
    let mut accumulator: u32 = 0;
    let mut bits = 0u32;
    let mut symbols = 0usize;
    let mut padding = 0usize;
    for &byte in text {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        if padding > 0 {
            return None;
        }
        symbols += 1;
        accumulator = (accumulator << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            output.push((accumulator >> bits) as u8);
            accumulator &= (1 << bits) - 1;
        }
    }
    if symbols % 4 == 1 || padding > 2 {
        return None;
    }
    Some(output)
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_the_omapi_sample_key() {
        assert_eq!(
            decode(b"MDEyMzQ1Njc4OWFiY2RlZg==").as_deref(),
            Some(&b"0123456789abcdef"[..])
        );
        assert_eq!(decode(b"Zm9vYg").as_deref(), Some(&b"foob"[..]));
        assert_eq!(decode(b"").as_deref(), Some(&b""[..]));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(decode(b"Zm9v!"), None);
        assert_eq!(decode(b"Z"), None);
        assert_eq!(decode(b"Zg==Zg"), None);
    }
}
