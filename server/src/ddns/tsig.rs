//! TSIG (RFC 8945): signing our UPDATE requests and verifying the server's answers, with the
//! keys of dhcpd.conf's `key NAME { algorithm ALG; secret "…"; }` statements.
//!
//! hickory-proto signs only the SHA-2 family, and only with the `ring`/`aws-lc-rs` back ends; ISC
//! keys are mostly `hmac-md5`. So the MAC is computed here with the `hmac` crate over the exact
//! wire bytes (RFC 8945 §4.3: the message, then the "TSIG variables"), and the TSIG record is
//! appended by hand (§4.2); the message itself is encoded by hickory (`super::wire`).

use hmac::Hmac;
use md5::Md5;
use sha2::{Sha224, Sha256, Sha384, Sha512};

use super::guard::name_to_wire;

/// TSIG's RR type (RFC 8945 §4.2).
pub const TSIG_TYPE: u16 = 250;
/// CLASS ANY (RFC 1035 §3.2.5), the class of a TSIG record.
pub const CLASS_ANY: u16 = 255;
/// The fudge ISC and BIND use (seconds of clock skew allowed, RFC 8945 §5.2.3).
pub const FUDGE: u16 = 300;

/// The HMAC algorithms of RFC 8945 §6 that ISC dhcpd's `key` statement accepts
/// (dhcpd.conf(5) "REFERENCE: KEY"), without `hmac-sha1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    HmacMd5,
    HmacSha224,
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl Algorithm {
    /// The algorithm a `key` statement names; ISC accepts the short names and the
    /// `hmac-md5.sig-alg.reg.int` form, with or without the final dot, in any case.
    pub fn from_config(name: &str) -> Option<Self> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        Some(match name.as_str() {
            "hmac-md5" | "hmac-md5.sig-alg.reg.int" => Self::HmacMd5,
            "hmac-sha224" => Self::HmacSha224,
            "hmac-sha256" => Self::HmacSha256,
            "hmac-sha384" => Self::HmacSha384,
            "hmac-sha512" => Self::HmacSha512,
            _ => return None,
        })
    }

    /// The algorithm's domain name in TSIG RDATA (RFC 8945 §6 table 3).
    pub fn wire_name(self) -> &'static str {
        match self {
            Self::HmacMd5 => "hmac-md5.sig-alg.reg.int.",
            Self::HmacSha224 => "hmac-sha224.",
            Self::HmacSha256 => "hmac-sha256.",
            Self::HmacSha384 => "hmac-sha384.",
            Self::HmacSha512 => "hmac-sha512.",
        }
    }

    fn mac(self, secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: hmac::Mac + hmac::digest::KeyInit>(secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            // HMAC accepts a key of any length (RFC 2104 §2), so this cannot fail.
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Self::HmacMd5 => run::<Hmac<Md5>>(secret, parts),
            Self::HmacSha224 => run::<Hmac<Sha224>>(secret, parts),
            Self::HmacSha256 => run::<Hmac<Sha256>>(secret, parts),
            Self::HmacSha384 => run::<Hmac<Sha384>>(secret, parts),
            Self::HmacSha512 => run::<Hmac<Sha512>>(secret, parts),
        }
    }
}

/// A TSIG key, ready to sign.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    /// The key's name as a domain name (dhcpd.conf's key name; BIND's `key "NAME"` must match).
    pub name: String,
    pub algorithm: Algorithm,
    pub secret: Vec<u8>,
    /// The key name in canonical wire form (lowercase, uncompressed; RFC 8945 §4.3.3).
    name_wire: Vec<u8>,
    algorithm_wire: Vec<u8>,
}

impl std::fmt::Debug for TsigKey {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Why a `key` statement cannot sign updates.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key {key}: algorithm `{algorithm}` is not supported for DNS updates (use hmac-md5 or hmac-sha224/256/384/512)")]
    Algorithm { key: String, algorithm: String },
    #[error("key {0}: the name is not a valid domain name")]
    Name(String),
}

impl TsigKey {
    pub fn new(name: &str, algorithm: Algorithm, secret: Vec<u8>) -> Result<Self, KeyError> {
        let name_wire = name_to_wire(&name.to_ascii_lowercase())
            .ok_or_else(|| KeyError::Name(name.to_string()))?;
        let algorithm_wire = name_to_wire(algorithm.wire_name())
            .unwrap_or_else(|| unreachable!("the algorithm names are valid"));
        Ok(Self {
            name: name.to_string(),
            algorithm,
            secret,
            name_wire,
            algorithm_wire,
        })
    }

    /// A key from dhcpd.conf.
    pub fn from_config(key: &crate::config::model::Key) -> Result<Self, KeyError> {
        let algorithm =
            Algorithm::from_config(&key.algorithm).ok_or_else(|| KeyError::Algorithm {
                key: key.name.clone(),
                algorithm: key.algorithm.clone(),
            })?;
        Self::new(&key.name, algorithm, key.secret.clone())
    }

    /// The TSIG variables of RFC 8945 §4.3.3, for time `time` and error `error`, no other data.
    fn variables(&self, time: u64, fudge: u16, error: u16, other: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.name_wire.len() + self.algorithm_wire.len() + 20);
        out.extend_from_slice(&self.name_wire);
        out.extend_from_slice(&CLASS_ANY.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&self.algorithm_wire);
        out.extend_from_slice(&time.to_be_bytes()[2..]);
        out.extend_from_slice(&fudge.to_be_bytes());
        out.extend_from_slice(&error.to_be_bytes());
        out.extend_from_slice(&(other.len() as u16).to_be_bytes());
        out.extend_from_slice(other);
        out
    }

    /// Signs `message` (a complete DNS message without TSIG) at `time` (seconds since the
    /// epoch): appends the TSIG record and counts it in ARCOUNT (RFC 8945 §4.2, §4.3.1).
    /// Returns the request's MAC, which the answer's MAC covers (§4.3.2).
    pub fn sign(&self, message: &mut Vec<u8>, time: u64) -> Option<Vec<u8>> {
        self.sign_with(message, time, None)
    }

    /// Signs an answer to a request whose MAC was `request_mac`, as a server does (RFC 8945
    /// §4.3.2); for tests and fake servers.
    pub fn sign_answer(
        &self,
        message: &mut Vec<u8>,
        time: u64,
        request_mac: &[u8],
    ) -> Option<Vec<u8>> {
        self.sign_with(message, time, Some(request_mac))
    }

    fn sign_with(
        &self,
        message: &mut Vec<u8>,
        time: u64,
        request_mac: Option<&[u8]>,
    ) -> Option<Vec<u8>> {
        if message.len() < 12 {
            return None;
        }
        let id = u16::from_be_bytes([message[0], message[1]]);
        let prior = request_mac.unwrap_or_default();
        let prior_length = (prior.len() as u16).to_be_bytes();
        let prior_length: &[u8] = if request_mac.is_some() {
            &prior_length
        } else {
            &[]
        };
        let mac = self.algorithm.mac(
            &self.secret,
            &[
                prior_length,
                prior,
                message,
                &self.variables(time, FUDGE, 0, &[]),
            ],
        );
        let arcount = u16::from_be_bytes([message[10], message[11]]).checked_add(1)?;
        message[10..12].copy_from_slice(&arcount.to_be_bytes());
        // The TSIG RR (§4.2), names uncompressed, the key name in lowercase (names compare
        // without case, RFC 4343).
        let rdata_length = self.algorithm_wire.len() + 16 + mac.len();
        message.extend_from_slice(&self.name_wire);
        message.extend_from_slice(&TSIG_TYPE.to_be_bytes());
        message.extend_from_slice(&CLASS_ANY.to_be_bytes());
        message.extend_from_slice(&0u32.to_be_bytes());
        message.extend_from_slice(&(rdata_length as u16).to_be_bytes());
        message.extend_from_slice(&self.algorithm_wire);
        message.extend_from_slice(&time.to_be_bytes()[2..]);
        message.extend_from_slice(&FUDGE.to_be_bytes());
        message.extend_from_slice(&(mac.len() as u16).to_be_bytes());
        message.extend_from_slice(&mac);
        message.extend_from_slice(&id.to_be_bytes());
        message.extend_from_slice(&0u16.to_be_bytes());
        message.extend_from_slice(&0u16.to_be_bytes());
        Some(mac)
    }

    /// Verifies the TSIG of an answer (RFC 8945 §5.3). `unsigned` is the answer's bytes up to
    /// its TSIG record, `tsig` that record's fields; `request_mac` the MAC of our request;
    /// `now` the current time (§5.2.3: the answer's time must be within its fudge).
    pub fn verify(
        &self,
        unsigned: &[u8],
        tsig: &TsigRecord,
        request_mac: &[u8],
        now: u64,
    ) -> Result<(), TsigFailure> {
        if !tsig.key_name.eq_ignore_ascii_case(&self.name_wire) {
            return Err(TsigFailure::WrongKey);
        }
        if !tsig.algorithm.eq_ignore_ascii_case(&self.algorithm_wire) {
            return Err(TsigFailure::WrongAlgorithm);
        }
        // §5.3.2: an error in the answer's TSIG means the server did not accept our request's
        // signature (BADSIG, BADKEY) or time (BADTIME); such answers carry no MAC to check.
        if tsig.error != 0 {
            return Err(TsigFailure::ServerRejected(tsig.error));
        }
        if unsigned.len() < 12 {
            return Err(TsigFailure::Malformed);
        }
        // §4.3.1: the digest covers the message as it was before the TSIG was added: original
        // ID, ARCOUNT without the TSIG record.
        let mut header = [0u8; 12];
        header.copy_from_slice(&unsigned[..12]);
        header[..2].copy_from_slice(&tsig.original_id.to_be_bytes());
        let arcount = u16::from_be_bytes([header[10], header[11]])
            .checked_sub(1)
            .ok_or(TsigFailure::Malformed)?;
        header[10..12].copy_from_slice(&arcount.to_be_bytes());
        let expected = self.algorithm.mac(
            &self.secret,
            &[
                &(request_mac.len() as u16).to_be_bytes(),
                request_mac,
                &header,
                &unsigned[12..],
                &self.variables(tsig.time, tsig.fudge, tsig.error, &tsig.other),
            ],
        );
        // Truncated MACs (§5.2.2.1) are not used by BIND or ISC; only full ones are accepted.
        if tsig.mac.len() != expected.len() || !constant_time_eq(&tsig.mac, &expected) {
            return Err(TsigFailure::BadSignature);
        }
        if now.abs_diff(tsig.time) > u64::from(tsig.fudge) {
            return Err(TsigFailure::BadTime);
        }
        Ok(())
    }
}

fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A TSIG record's fields, as an answer carries them (RFC 8945 §4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsigRecord {
    /// The owner name in uncompressed wire form.
    pub key_name: Vec<u8>,
    /// The algorithm name in uncompressed wire form.
    pub algorithm: Vec<u8>,
    pub time: u64,
    pub fudge: u16,
    pub mac: Vec<u8>,
    pub original_id: u16,
    pub error: u16,
    pub other: Vec<u8>,
}

/// Why an answer's signature is not accepted. Each is a counted failure of the update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TsigFailure {
    #[error("the answer is not signed")]
    Unsigned,
    #[error("the answer is signed with another key")]
    WrongKey,
    #[error("the answer is signed with another algorithm")]
    WrongAlgorithm,
    #[error("the server rejected our signature (TSIG error {0})")]
    ServerRejected(u16),
    #[error("the answer's signature does not verify")]
    BadSignature,
    #[error("the answer's signing time is outside its fudge")]
    BadTime,
    #[error("the answer's TSIG record is malformed")]
    Malformed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isc_algorithm_names() {
        for name in [
            "hmac-md5",
            "HMAC-MD5",
            "hmac-md5.sig-alg.reg.int",
            "HMAC-MD5.SIG-ALG.REG.INT.",
        ] {
            assert_eq!(
                Algorithm::from_config(name),
                Some(Algorithm::HmacMd5),
                "{name}"
            );
        }
        assert_eq!(
            Algorithm::from_config("hmac-sha256"),
            Some(Algorithm::HmacSha256)
        );
        assert_eq!(Algorithm::from_config("hmac-sha1"), None);
        assert_eq!(Algorithm::from_config("rsa"), None);
        let key = crate::config::model::Key {
            name: "k".into(),
            algorithm: "gss-tsig".into(),
            secret: vec![1],
        };
        assert!(matches!(
            TsigKey::from_config(&key),
            Err(KeyError::Algorithm { .. })
        ));
    }

    /// RFC 2202 §2 test case 2 (HMAC-MD5, key "Jefe") and RFC 4231 §4.3 (HMAC-SHA-256): the
    /// MACs are the crates', checked here so that a wrong wiring of algorithms shows.
    #[test]
    fn hmac_known_answers() {
        let md5 = Algorithm::HmacMd5.mac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex(&md5), "750c783e6ab0b503eaa86e310a5db738");
        let sha256 = Algorithm::HmacSha256.mac(b"Jefe", &[b"what do ya want for nothing?"]);
        assert_eq!(
            hex(&sha256),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// A signed request's layout: ARCOUNT + 1, then the TSIG record of RFC 8945 §4.2.
    #[test]
    fn signing_appends_the_tsig_record() {
        let key = TsigKey::new("DHCP_UPDATER", Algorithm::HmacMd5, b"secret".to_vec()).unwrap();
        let mut message = vec![0x12, 0x34, 0x28, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        message.extend_from_slice(&[0, 0, 6, 0, 1]);
        let unsigned = message.clone();
        let mac = key.sign(&mut message, 0x0102_0304_0506).unwrap();
        assert_eq!(mac.len(), 16);
        assert_eq!(&message[10..12], &[0, 1]);
        let record = &message[unsigned.len()..];
        let name = b"\x0cdhcp_updater\x00";
        assert_eq!(&record[..name.len()], name);
        let rest = &record[name.len()..];
        assert_eq!(&rest[..8], &[0, 250, 0, 255, 0, 0, 0, 0]);
        let algorithm = b"\x08hmac-md5\x07sig-alg\x03reg\x03int\x00";
        assert_eq!(&rest[10..10 + algorithm.len()], algorithm);
        let fields = &rest[10 + algorithm.len()..];
        assert_eq!(&fields[..6], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(&fields[6..8], &FUDGE.to_be_bytes());
        assert_eq!(&fields[8..10], &[0, 16]);
        assert_eq!(&fields[10..26], &mac[..]);
        assert_eq!(&fields[26..], &[0x12, 0x34, 0, 0, 0, 0]);
        // The MAC covers the unsigned message and the variables (§4.3).
        let expected = Algorithm::HmacMd5.mac(
            b"secret",
            &[&unsigned, &key.variables(0x0102_0304_0506, FUDGE, 0, &[])],
        );
        assert_eq!(mac, expected);
    }
}
