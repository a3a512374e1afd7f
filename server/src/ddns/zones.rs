//! Which server an update goes to, and with which key: dhcpd.conf's
//! `zone NAME { primary ADDR[, ADDR…]; secondary …; key KEYNAME; }` declarations, matched as
//! ISC does (common/dns.c `find_cached_zone`): the name itself, then each parent in turn, so the
//! longest declared zone wins.
//!
//! When no declaration matches, ISC 4.4 (built with `DNS_ZONE_LOOKUP`) starts a resolver query
//! for the name's NS records and fails this update; a later update of a name in the same zone
//! finds the zone it cached then (without key). This implementation does no such discovery: an
//! update whose name has no `zone` declaration is not sent and is counted
//! (`xdhcpd_ddns_updates_total{result="no_zone"}`). Declare every zone.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::tsig::{KeyError, TsigKey};

/// The port ISC sends updates to (`NS_DEFAULTPORT`).
pub const DNS_PORT: u16 = 53;

/// One `zone` declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    /// The zone's name, lowercase, with the final dot (ISC adds it).
    pub name: String,
    /// The servers to try, in order: `primary` then `secondary` addresses (ISC's order).
    pub servers: Vec<SocketAddr>,
    pub key: Option<Arc<TsigKey>>,
}

/// A `zone` declaration as the configuration holds it (names, not resolved keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneDeclaration {
    pub name: String,
    pub primaries: Vec<IpAddr>,
    pub secondaries: Vec<IpAddr>,
    pub key: Option<String>,
}

/// Why the zones cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    #[error("zone {zone}: key {key} is not declared")]
    UnknownKey { zone: String, key: String },
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// The declared zones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Zones {
    zones: Vec<Zone>,
}

/// A zone name as ISC keeps it: the final dot added; lowercase here so that names compare
/// without case (RFC 4343).
pub fn canonical(name: &str) -> String {
    let mut name = name.to_ascii_lowercase();
    if !name.ends_with('.') {
        name.push('.');
    }
    name
}

impl Zones {
    pub fn new(zones: Vec<Zone>) -> Self {
        Self { zones }
    }

    /// The zones of `declarations`, their keys looked up in `keys`; servers on `port` (53
    /// unless a test says otherwise).
    pub fn from_declarations(
        declarations: &[ZoneDeclaration],
        keys: &[crate::config::model::Key],
        port: u16,
    ) -> Result<Self, ZoneError> {
        let mut zones = Vec::with_capacity(declarations.len());
        for declaration in declarations {
            let key = match &declaration.key {
                None => None,
                Some(key_name) => {
                    let key = keys
                        .iter()
                        .find(|key| key.name.eq_ignore_ascii_case(key_name))
                        .ok_or_else(|| ZoneError::UnknownKey {
                            zone: declaration.name.clone(),
                            key: key_name.clone(),
                        })?;
                    Some(Arc::new(TsigKey::from_config(key)?))
                }
            };
            zones.push(Zone {
                name: canonical(&declaration.name),
                servers: declaration
                    .primaries
                    .iter()
                    .chain(&declaration.secondaries)
                    .map(|address| SocketAddr::new(*address, port))
                    .collect(),
                key,
            });
        }
        Ok(Self { zones })
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// The zone of `name`: the longest declared zone that is `name` or one of its parents.
    pub fn find(&self, name: &str) -> Option<&Zone> {
        let name = canonical(name);
        let mut rest = name.as_str();
        loop {
            if let Some(zone) = self.zones.iter().find(|zone| zone.name == rest) {
                return Some(zone);
            }
            // The next parent: after the first unescaped dot.
            let cut = label_end(rest)?;
            rest = &rest[cut + 1..];
            if rest.is_empty() {
                return None;
            }
        }
    }
}

/// The index of the dot that ends the first label, skipping `\.` escapes.
fn label_end(name: &str) -> Option<usize> {
    let bytes = name.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' => index += 2,
            b'.' => return Some(index),
            _ => index += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn declaration(name: &str, last: u8, key: Option<&str>) -> ZoneDeclaration {
        ZoneDeclaration {
            name: name.into(),
            primaries: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))],
            secondaries: vec![IpAddr::V4(Ipv4Addr::new(198, 51, 100, last))],
            key: key.map(str::to_string),
        }
    }

    fn keys() -> Vec<crate::config::model::Key> {
        vec![crate::config::model::Key {
            name: "DHCP_UPDATER".into(),
            algorithm: "hmac-md5".into(),
            secret: b"0123456789abcdef".to_vec(),
        }]
    }

    #[test]
    fn longest_declared_zone_wins() {
        let zones = Zones::from_declarations(
            &[
                declaration("example.org", 1, None),
                declaration("Lab.Example.Org.", 2, Some("dhcp_updater")),
                declaration("2.0.192.in-addr.arpa", 3, None),
            ],
            &keys(),
            5353,
        )
        .unwrap();
        let lab = zones.find("host.lab.example.org").unwrap();
        assert_eq!(lab.name, "lab.example.org.");
        assert_eq!(
            lab.servers,
            [
                "192.0.2.2:5353".parse().unwrap(),
                "198.51.100.2:5353".parse().unwrap()
            ]
        );
        assert_eq!(lab.key.as_ref().unwrap().name, "DHCP_UPDATER");
        assert_eq!(
            zones.find("HOST.example.org.").unwrap().name,
            "example.org."
        );
        assert_eq!(zones.find("example.org").unwrap().name, "example.org.");
        assert_eq!(
            zones.find("20.2.0.192.in-addr.arpa.").unwrap().name,
            "2.0.192.in-addr.arpa."
        );
        assert_eq!(zones.find("host.example.net"), None);
        assert_eq!(zones.find("org"), None);
        assert_eq!(zones.find(""), None);
        // An escaped dot does not split a label.
        assert_eq!(
            zones.find(r"a\.lab.example.org").unwrap().name,
            "example.org."
        );
    }

    #[test]
    fn undeclared_or_unusable_keys_are_errors() {
        assert_eq!(
            Zones::from_declarations(&[declaration("example.org", 1, Some("nokey"))], &keys(), 53),
            Err(ZoneError::UnknownKey {
                zone: "example.org".into(),
                key: "nokey".into()
            })
        );
        let mut sha1 = keys();
        sha1[0].algorithm = "hmac-sha1".into();
        assert!(matches!(
            Zones::from_declarations(
                &[declaration("example.org", 1, Some("DHCP_UPDATER"))],
                &sha1,
                53
            ),
            Err(ZoneError::Key(_))
        ));
    }
}
