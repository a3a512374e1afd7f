//! OMAPI result codes (docs/spec/omapi.md §9): BIND `isc_result_t` values, class 0 generic and class 6
//! DHCP, as ISC dhcpd 4.4 puts them in a STATUS message's `result`.

/// A result code; open-world, printed in hex when unknown.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResultCode(pub u32);

impl ResultCode {
    pub const SUCCESS: Self = Self(0);
    pub const TIMEDOUT: Self = Self(2);
    pub const NOPERM: Self = Self(6);
    pub const EXISTS: Self = Self(18);
    pub const NOTFOUND: Self = Self(23);
    pub const FAILURE: Self = Self(25);
    pub const IOERROR: Self = Self(26);
    pub const NOTIMPLEMENTED: Self = Self(27);
    pub const INVALIDARG: Self = Self(0x60003);
    pub const UNCHANGED: Self = Self(0x60005);
    pub const MULTIPLE: Self = Self(0x60006);
    pub const KEYCONFLICT: Self = Self(0x60007);
    pub const BADPARSE: Self = Self(0x60008);
    pub const NOKEYS: Self = Self(0x60009);
    pub const INVALIDKEY: Self = Self(0x6000b);
    pub const UNKNOWNATTRIBUTE: Self = Self(0x60020);

    /// `isc_result_totext`, as omshell prints it.
    pub fn text(self) -> Option<&'static str> {
        Some(match self {
            Self::SUCCESS => "success",
            Self::TIMEDOUT => "timed out",
            Self::NOPERM => "permission denied",
            Self::EXISTS => "already exists",
            Self::NOTFOUND => "not found",
            Self::FAILURE => "failure",
            Self::IOERROR => "I/O error",
            Self::NOTIMPLEMENTED => "not implemented",
            Self::INVALIDARG => "invalid argument",
            Self::UNCHANGED => "object unchanged",
            Self::MULTIPLE => "more than one object matches key",
            Self::KEYCONFLICT => "key conflict",
            Self::BADPARSE => "parse error(s) occurred",
            Self::NOKEYS => "no key specified",
            Self::INVALIDKEY => "invalid TSIG key",
            Self::UNKNOWNATTRIBUTE => "unknown attribute",
            _ => return None,
        })
    }
}

impl std::fmt::Debug for ResultCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.text() {
            Some(text) => write!(f, "{text} ({:#x})", self.0),
            None => write!(f, "ResultCode({:#x})", self.0),
        }
    }
}

/// A failed request: the code and ISC's optional `message` text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub result: ResultCode,
    pub message: Option<&'static str>,
}

impl Status {
    pub const fn new(result: ResultCode, message: &'static str) -> Self {
        Self {
            result,
            message: Some(message),
        }
    }

    pub const fn bare(result: ResultCode) -> Self {
        Self {
            result,
            message: None,
        }
    }
}
