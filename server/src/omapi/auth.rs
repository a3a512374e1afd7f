//! OMAPI authenticators (docs/spec/omapi.md §6): keys from dhcpd.conf, the algorithm-name normalisation
//! ISC applies, and HMAC-MD5 over bytes [4, end of object values] of a message, verified in
//! constant time.

use hmac::{Hmac, Mac};
use md5::Md5;

use crate::config::model::Key;

/// ISC appends this to an algorithm name without a dot (docs/spec/omapi.md §6.1).
const ALGORITHM_SUFFIX: &str = ".SIG-ALG.REG.INT.";
/// The one algorithm we sign with.
pub const HMAC_MD5: &str = "hmac-md5.SIG-ALG.REG.INT.";
/// HMAC-MD5 signature length.
pub const SIGNATURE_LEN: usize = 16;

/// ISC's normalisation of an algorithm name: `hmac-md5` → `hmac-md5.SIG-ALG.REG.INT.`; a dotted
/// name gets a trailing dot.
pub fn normalize_algorithm(name: &str) -> String {
    if !name.contains('.') {
        format!("{name}{ALGORITHM_SUFFIX}")
    } else if !name.ends_with('.') {
        format!("{name}.")
    } else {
        name.to_string()
    }
}

/// A key usable for signing: only HMAC-MD5 is implemented (the default and the one omshell
/// uses; the other HMACs ISC accepts are refused as "not found" at authenticator OPEN).
#[derive(Clone)]
pub struct Authenticator {
    pub name: String,
    /// Normalised algorithm name, as sent back to the client.
    pub algorithm: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for Authenticator {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// `None` when the key's algorithm is not HMAC-MD5.
    pub fn from_key(key: &Key) -> Option<Self> {
        let algorithm = normalize_algorithm(&key.algorithm);
        algorithm
            .eq_ignore_ascii_case(HMAC_MD5)
            .then(|| Self::hmac_md5(&key.name, &key.secret))
    }

    pub fn hmac_md5(name: &str, secret: &[u8]) -> Self {
        Self {
            name: name.to_string(),
            algorithm: HMAC_MD5.to_string(),
            secret: secret.to_vec(),
        }
    }

    /// Whether an authenticator OPEN's `name` and `algorithm` select this key: names compare
    /// case-insensitively, the algorithm after normalisation, also case-insensitively
    /// (`omapi_auth_key_lookup`).
    pub fn matches(&self, name: &[u8], algorithm: Option<&[u8]>) -> bool {
        if !self.name.as_bytes().eq_ignore_ascii_case(name) {
            return false;
        }
        match algorithm {
            None => true,
            Some(algorithm) => std::str::from_utf8(algorithm)
                .is_ok_and(|text| normalize_algorithm(text).eq_ignore_ascii_case(&self.algorithm)),
        }
    }

    fn mac(&self) -> Hmac<Md5> {
        // HMAC accepts keys of any length (RFC 2104 §2), so this cannot fail.
        <Hmac<Md5> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }

    /// The signature of `signed` (bytes [4, end of object values], docs/spec/omapi.md §6.3).
    pub fn sign(&self, signed: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut mac = self.mac();
        mac.update(signed);
        mac.finalize().into_bytes().into()
    }

    /// Constant-time comparison of `signature` with the signature of `signed`.
    pub fn verify(&self, signed: &[u8], signature: &[u8]) -> bool {
        let mut mac = self.mac();
        mac.update(signed);
        mac.verify_slice(signature).is_ok()
    }
}

/// Signs `message` in place with `key` under `authid`.
pub fn sign_message(message: &mut super::wire::Message, authid: u32, key: &Authenticator) {
    message.header.authid = authid;
    message.header.authlen = SIGNATURE_LEN as u32;
    let mut signed = Vec::new();
    message.encode_signed_part(&mut signed);
    message.signature = key.sign(&signed).to_vec();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::omapi::wire::decode_message;

    fn key() -> Authenticator {
        Authenticator::hmac_md5("omapi_key", b"0123456789abcdef")
    }

    #[test]
    fn recomputes_the_spec_signatures() {
        let mut message =
            crate::omapi::wire::Message::new(crate::omapi::wire::Opcode::OPEN, 0, 0x6b8b4568, 0);
        message
            .message_values
            .push(crate::omapi::wire::Value::new("type", "lease"));
        message.object_values.push(crate::omapi::wire::Value::new(
            "ip-address",
            vec![10, 99, 0, 105],
        ));
        sign_message(&mut message, 1, &key());
        let expected = crate::omapi::wire::tests::hex("fd972718d0c6a912b75471f821966682");
        assert_eq!(message.signature, expected);
        assert_eq!(message.to_bytes().len(), 79);

        let reply = crate::omapi::wire::tests::hex(crate::omapi::wire::tests::LEASE_UPDATE);
        let decoded = decode_message(&reply, 24, 65536).unwrap().unwrap();
        assert!(key().verify(&decoded.signed, &decoded.message.signature));
        let mut wrong = decoded.signed.clone();
        wrong[0] ^= 1;
        assert!(!key().verify(&wrong, &decoded.message.signature));
        assert!(!Authenticator::hmac_md5("omapi_key", b"wrong")
            .verify(&decoded.signed, &decoded.message.signature));
    }

    #[test]
    fn algorithm_names_are_normalised_and_compared_without_case() {
        assert_eq!(normalize_algorithm("hmac-md5"), HMAC_MD5);
        assert_eq!(
            normalize_algorithm("HMAC-MD5.SIG-ALG.REG.INT"),
            "HMAC-MD5.SIG-ALG.REG.INT."
        );
        let key = key();
        assert!(key.matches(b"OMAPI_KEY", Some(b"HMAC-MD5.SIG-ALG.REG.INT.")));
        assert!(key.matches(b"omapi_key", Some(b"hmac-md5")));
        assert!(!key.matches(b"omapi_key", Some(b"hmac-sha256")));
        assert!(!key.matches(b"other", None));
        let config_key = Key {
            name: "k".into(),
            algorithm: "hmac-sha256".into(),
            secret: vec![1],
        };
        assert!(Authenticator::from_key(&config_key).is_none());
    }
}
