//! Numbers as ISC's lexer and `convert_num` read them (common/conflex.c, common/parse.c);
//! split from `parser.rs`.

/// Numbers as conflex.c reads them: decimal with optional `-`, or `0x` hex.
pub(crate) fn parse_number_text(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()
    } else {
        text.parse::<i64>().ok()
    }
}

/// Why [`convert_num`] refused a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConvertError {
    /// "Bogus number": a character that is no digit of the base.
    NotANumber,
    /// "exceeds max … for precision".
    TooLarge,
}

/// common/parse.c `convert_num` with base 0: the value in `bits` bits.
pub(crate) fn convert_num(text: &str, bits: u32) -> Result<u32, ConvertError> {
    let (negative, magnitude) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (base, digits) = if let Some(hex) = magnitude.strip_prefix("0x") {
        (16, hex)
    } else if magnitude.len() > 1
        && magnitude.starts_with('0')
        && magnitude.as_bytes()[1].is_ascii_digit()
    {
        (8, &magnitude[1..])
    } else {
        (10, magnitude)
    };
    if digits.is_empty() {
        return Err(ConvertError::NotANumber);
    }
    // ISC accumulates in a u_int32_t, so 4294967296 wraps to 0 before the range check.
    let mut value: u32 = 0;
    for digit in digits.chars() {
        let Some(digit) = digit.to_digit(base) else {
            return Err(ConvertError::NotANumber);
        };
        value = value.wrapping_mul(base).wrapping_add(digit);
    }
    let max = if negative {
        1u64 << (bits - 1)
    } else {
        (1u64 << bits) - 1
    };
    if u64::from(value) > max {
        return Err(ConvertError::TooLarge);
    }
    let mask = if bits == 32 {
        u32::MAX
    } else {
        (1u32 << bits) - 1
    };
    Ok(if negative {
        value.wrapping_neg() & mask
    } else {
        value
    })
}

/// One or two hex digits.
pub(super) fn hex_octet(text: &str) -> Option<u8> {
    if text.is_empty() || text.len() > 2 {
        return None;
    }
    u8::from_str_radix(text, 16).ok()
}
