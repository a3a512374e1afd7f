//! The base64 decoder of `key { secret …; }` (docs/spec/dhcpd-conf.md §3, docs/spec/omapi.md §6),
//! as ISC's `parse_base64` (common/parse.c) decodes: the RFC 4648 §4 alphabet, `=` only at the
//! end, and left-over bits of an incomplete quantum are allowed only when they are zero.

/// The RFC 4648 §4 alphabet with ISC's leniency: padding may be left out, but left-over bits of
/// an incomplete quantum must be zero.
const ISC_SECRET: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(false),
);

/// Decodes a secret; the error says what ISC would complain about.
pub(crate) fn decode(text: &[u8]) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let output = ISC_SECRET.decode(text).map_err(|error| match error {
        base64::DecodeError::InvalidByte(_, b'=') => {
            "stuff after the base64 `=` terminator".to_string()
        }
        base64::DecodeError::InvalidByte(_, byte) => format!("an invalid base64 character {byte}"),
        base64::DecodeError::InvalidLastSymbol(_, _) | base64::DecodeError::InvalidLength(_) => {
            "a partial base64 value left over".to_string()
        }
        base64::DecodeError::InvalidPadding => "stuff after the base64 `=` terminator".to_string(),
    })?;
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
