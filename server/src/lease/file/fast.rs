//! Byte-level fast path for lease blocks in the exact form `write_lease` produces (two-space
//! indent, one statement per line, default date form, quoted `uid`). A million-lease file is
//! almost nothing else, and reading it without a token per word is what keeps startup within
//! seconds. Anything unusual returns `None` and the token parser reads the block instead, so the
//! fast path never decides an error or a torn tail.

use std::net::Ipv4Addr;

use crate::lease::file::date::CivilTime;
use crate::lease::file::grammar::{finish_lease, Seen, HARDWARE_TYPES};
use crate::lease::record::{flags, BindingState, Hardware, Lease, UnixTime, NEVER};

/// A cursor over one block.
struct Bytes<'a> {
    input: &'a [u8],
    position: usize,
}

impl Bytes<'_> {
    fn eat(&mut self, text: &[u8]) -> Option<()> {
        let end = self.position.checked_add(text.len())?;
        (self.input.get(self.position..end)? == text).then(|| self.position = end)
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.position).copied()
    }

    fn byte(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.position += 1;
        Some(byte)
    }

    /// A decimal number of at most `max_digits` digits.
    fn decimal(&mut self, max_digits: usize) -> Option<u32> {
        let mut value = 0u32;
        let mut digits = 0;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            if digits == max_digits {
                return None;
            }
            value = value * 10 + u32::from(digit - b'0');
            self.position += 1;
            digits += 1;
        }
        (digits > 0).then_some(value)
    }

    /// Up to the next `;` (exclusive), which must be on this line.
    fn word(&mut self) -> Option<&[u8]> {
        let start = self.position;
        while let Some(byte) = self.peek() {
            if byte == b';' {
                return Some(&self.input[start..self.position]);
            }
            if !(byte.is_ascii_alphanumeric() || byte == b'-') {
                return None;
            }
            self.position += 1;
        }
        None
    }

    fn address(&mut self) -> Option<Ipv4Addr> {
        let mut octets = [0u8; 4];
        for (index, octet) in octets.iter_mut().enumerate() {
            if index > 0 {
                self.eat(b".")?;
            }
            *octet = u8::try_from(self.decimal(3)?).ok()?;
        }
        Some(Ipv4Addr::from(octets))
    }

    /// `W YYYY/MM/DD HH:MM:SS` or `never`.
    fn date(&mut self) -> Option<UnixTime> {
        if self.eat(b"never").is_some() {
            return Some(NEVER);
        }
        self.decimal(1)?;
        self.eat(b" ")?;
        let year = self.decimal(4)?;
        self.eat(b"/")?;
        let month = self.decimal(2)?;
        self.eat(b"/")?;
        let day = self.decimal(2)?;
        self.eat(b" ")?;
        let hour = self.decimal(2)?;
        self.eat(b":")?;
        let minute = self.decimal(2)?;
        self.eat(b":")?;
        let second = self.decimal(2)?;
        CivilTime {
            year: i64::from(year),
            month,
            day,
            hour,
            minute,
            second,
        }
        .to_unix(0)
    }

    /// A quoted string with `\"`, `\\` and `\ooo` escapes, on one line.
    fn quoted(&mut self) -> Option<Vec<u8>> {
        self.eat(b"\"")?;
        let mut value = Vec::new();
        loop {
            match self.byte()? {
                b'"' => return Some(value),
                b'\n' => return None,
                b'\\' => match self.byte()? {
                    escaped @ (b'"' | b'\\') => value.push(escaped),
                    first @ b'0'..=b'3' => {
                        let second = self.byte()?;
                        let third = self.byte()?;
                        if !(b'0'..=b'7').contains(&second) || !(b'0'..=b'7').contains(&third) {
                            return None;
                        }
                        value.push((first - b'0') << 6 | (second - b'0') << 3 | (third - b'0'));
                    }
                    _ => return None,
                },
                byte => value.push(byte),
            }
        }
    }

    fn hex_byte(&mut self) -> Option<u8> {
        let high = (self.byte()? as char).to_digit(16)?;
        let low = (self.byte()? as char).to_digit(16)?;
        Some((high * 16 + low) as u8)
    }

    fn end_of_statement(&mut self) -> Option<()> {
        self.eat(b";\n")
    }
}

fn state(word: &[u8]) -> Option<BindingState> {
    BindingState::from_word(std::str::from_utf8(word).ok()?)
}

/// A lease block at the start of `input` in writer form: the lease, the bytes it takes (through
/// the newline after `}`) and the newlines in it.
pub(super) fn lease(input: &[u8]) -> Option<(Lease, usize, u32)> {
    let mut bytes = Bytes { input, position: 0 };
    bytes.eat(b"lease ")?;
    let address = bytes.address()?;
    bytes.eat(b" {\n")?;
    let mut lease = Lease::free(address);
    let mut seen = Seen::default();
    let mut newlines = 1;
    loop {
        if bytes.eat(b"}\n").is_some() {
            newlines += 1;
            break;
        }
        bytes.eat(b"  ")?;
        let keyword_start = bytes.position;
        while bytes
            .peek()
            .is_some_and(|byte| byte.is_ascii_lowercase() || byte == b'-')
        {
            bytes.position += 1;
        }
        let keyword = &input[keyword_start..bytes.position];
        match keyword {
            b"starts" | b"ends" | b"tstp" | b"tsfp" | b"atsfp" | b"cltt" => {
                bytes.eat(b" ")?;
                let time = bytes.date()?;
                match keyword {
                    b"starts" => lease.starts = time,
                    b"ends" => lease.ends = time,
                    b"tstp" => {
                        lease.tstp = time;
                        seen.tstp = true;
                    }
                    b"tsfp" => lease.tsfp = time,
                    b"atsfp" => lease.atsfp = time,
                    _ => lease.cltt = time,
                }
            }
            b"binding" => {
                bytes.eat(b" state ")?;
                lease.binding_state = state(bytes.word()?)?;
                seen.binding_state = true;
            }
            b"next" | b"rewind" => {
                bytes.eat(b" binding state ")?;
                let value = state(bytes.word()?)?;
                if keyword == b"next" {
                    lease.next_binding_state = value;
                    seen.next_binding_state = true;
                } else {
                    lease.rewind_binding_state = value;
                    seen.rewind_binding_state = true;
                }
            }
            b"reserved" => lease.flags |= flags::RESERVED,
            b"dynamic-bootp" => lease.flags |= flags::BOOTP,
            b"hardware" => {
                bytes.eat(b" ")?;
                let type_start = bytes.position;
                while bytes
                    .peek()
                    .is_some_and(|byte| byte != b' ' && byte != b'\n')
                {
                    bytes.position += 1;
                }
                let type_name = &input[type_start..bytes.position];
                let htype = HARDWARE_TYPES
                    .iter()
                    .find(|(_, name)| name.as_bytes() == type_name)?
                    .0;
                bytes.eat(b" ")?;
                let mut address = [0u8; 16];
                let mut length = 0;
                loop {
                    *address.get_mut(length)? = bytes.hex_byte()?;
                    length += 1;
                    if bytes.eat(b":").is_none() {
                        break;
                    }
                }
                lease.hardware = Some(Hardware::new(htype, &address[..length])?);
            }
            b"uid" => {
                bytes.eat(b" ")?;
                lease.set_uid(Some(&bytes.quoted()?));
            }
            b"client-hostname" => {
                bytes.eat(b" ")?;
                let name = String::from_utf8(bytes.quoted()?).ok()?;
                lease.set_client_hostname(Some(&name));
            }
            _ => return None,
        }
        bytes.end_of_statement()?;
        newlines += 1;
    }
    finish_lease(&mut lease, &seen);
    Some((lease, bytes.position, newlines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::file::write_lease;

    #[test]
    fn reads_what_the_writer_writes() {
        let mut original = Lease::free(Ipv4Addr::new(10, 1, 2, 3));
        original.starts = 1_795_836_305;
        original.ends = NEVER;
        original.tstp = 1_795_836_305;
        original.binding_state = BindingState::Active;
        original.next_binding_state = BindingState::Free;
        original.flags = flags::RESERVED;
        original.hardware = Hardware::new(1, &[0x6a, 0xd9, 0x3e, 0xff, 0xef, 0xc7]);
        original.set_uid(Some(b"\x01j\xd9\"\\ x"));
        original.set_client_hostname(Some("pc"));
        let mut text = Vec::new();
        write_lease(&original, &mut text);
        let (lease, length, newlines) = lease(&text).unwrap();
        assert_eq!(lease, original);
        assert_eq!(length, text.len());
        assert_eq!(
            newlines as usize,
            text.iter().filter(|&&byte| byte == b'\n').count()
        );
    }

    #[test]
    fn unusual_forms_fall_back() {
        for text in [
            &b"lease 10.0.0.1 {\n  starts epoch 5;\n}\n"[..],
            b"lease 10.0.0.1 {\n  uid 01:02;\n}\n",
            b"lease 10.0.0.1 { binding state free; }\n",
            b"lease 10.0.0.1 {\n  set x = %1;\n}\n",
            b"lease 10.0.0.1 {\n  binding state free;\n}",
            b"lease 10.0.0.1 {\n  starts 6 2026/11/28 03:25:05 -3600;\n}\n",
        ] {
            assert!(lease(text).is_none(), "{}", String::from_utf8_lossy(text));
        }
    }
}
