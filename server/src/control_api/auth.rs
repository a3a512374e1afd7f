//! HTTP basic authentication (RFC 7617) as Kea's control agent does it: a request must carry
//! the `user:password` of one configured client. The clients come from
//! `option xdhcpd.control-api-auth-file`, one `user:password` line each — the content of a
//! Kea `password-file` given without `user`, one line per client; `#` starts a comment line.

use base64::Engine as _;

/// The configured clients.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `user:password`, as the client sends it base64-encoded.
    clients: Vec<Vec<u8>>,
}

/// Why a request was refused (the `reason` of `xdhcpd_control_api_unauthorized_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization` header, or not `Basic`.
    Missing,
    /// Credentials that match no client (or do not decode).
    Wrong,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Wrong => "wrong",
        }
    }
}

impl Credentials {
    /// Reads the clients from the text of an auth file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut clients = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(':') {
                Some((user, _)) if !user.is_empty() => clients.push(line.as_bytes().to_vec()),
                _ => {
                    return Err(format!(
                        "line {}: expected user:password (a user name cannot be empty)",
                        number + 1
                    ))
                }
            }
        }
        if clients.is_empty() {
            return Err("no user:password line".to_string());
        }
        Ok(Self { clients })
    }

    /// Checks an `Authorization` header's value.
    pub fn check(&self, header: Option<&[u8]>) -> Result<(), Refusal> {
        let header = header.ok_or(Refusal::Missing)?;
        let encoded = header
            .strip_prefix(b"Basic ")
            .or_else(|| header.strip_prefix(b"basic "))
            .ok_or(Refusal::Missing)?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim_ascii())
            .map_err(|_| Refusal::Wrong)?;
        // Every client is compared, each in time independent of where they differ.
        let matched = self.clients.iter().fold(false, |matched, client| {
            matched | same_bytes(client, &decoded)
        });
        if matched {
            Ok(())
        } else {
            Err(Refusal::Wrong)
        }
    }
}

/// Compares without an early exit on the first differing byte.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user_password: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_password)
        )
        .into_bytes()
    }

    #[test]
    fn only_a_configured_user_and_password_pass() {
        let credentials = Credentials::parse("# operators\nadmin:s3cret\nstork:pass:with:colons\n")
            .expect("parses");
        assert_eq!(credentials.check(Some(&header("admin:s3cret"))), Ok(()));
        assert_eq!(
            credentials.check(Some(&header("stork:pass:with:colons"))),
            Ok(())
        );
        assert_eq!(
            credentials.check(Some(&header("admin:wrong"))),
            Err(Refusal::Wrong)
        );
        assert_eq!(credentials.check(None), Err(Refusal::Missing));
        assert_eq!(
            credentials.check(Some(b"Bearer abc")),
            Err(Refusal::Missing)
        );
        assert_eq!(credentials.check(Some(b"Basic !!!")), Err(Refusal::Wrong));
    }

    #[test]
    fn a_file_without_clients_or_with_a_bad_line_is_refused() {
        assert!(Credentials::parse("# nothing\n").is_err());
        assert!(Credentials::parse("no-colon\n").is_err());
        assert!(Credentials::parse(":password\n").is_err());
    }
}
