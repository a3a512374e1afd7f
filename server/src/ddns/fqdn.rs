//! The client FQDN option (RFC 4702, option 81) as ISC dhcpd 4.4 reads and answers it, and the
//! choice of the name to register — sans-IO, from plain inputs the engine resolves through the
//! lease's scopes.
//!
//! - [`ClientFqdn::decode`]: common/options.c `fqdn_universe_decode` — the flags, and the name
//!   in ASCII or DNS wire form, split into host label and domain;
//! - [`choose`]: server/ddns.c `ddns_updates` — whether the client updates its own A record
//!   (`client-updates`, the S bit), the forward name (`ddns-hostname` by default
//!   `pick(option fqdn.hostname, option host-name, config-option host-name)`, server/dhcpd.c
//!   `std_nsupdate`, then `.` and `ddns-domainname`), and the option 81 of the reply
//!   (`fqdn_option_space_encapsulate`).

use crate::config::model::Permission;

/// Option 81's flag bits (RFC 4702 §2.1). ISC names bit O "no-client-update".
mod flag {
    pub const S: u8 = 1;
    pub const O: u8 = 2;
    pub const E: u8 = 4;
}

/// RCODE1 and RCODE2 of a server's option 81: ISC always sends 255 (RFC 4702 §2.2 deprecates
/// them; RFC 4702 §3.3 asks for 255).
const RCODE: u8 = 255;

/// Option 81 as a client sent it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientFqdn {
    /// S: the client asks the server to update the A record.
    pub server_update: bool,
    /// E: the name is in DNS wire form (and the reply should be too).
    pub encoded: bool,
    /// The first label.
    pub hostname: Option<String>,
    /// The labels after the first, without a final dot; `None` for a single label.
    pub domain_name: Option<String>,
    /// The whole name as text, without a final dot.
    pub fqdn: Option<String>,
}

impl ClientFqdn {
    /// The option's value (without code and length); `None` where ISC drops the option
    /// (shorter than 3 octets, a label longer than 63 or beyond the end).
    pub fn decode(value: &[u8]) -> Option<Self> {
        let (&flags, rest) = value.split_first()?;
        let name = rest.get(2..)?;
        let mut fqdn = Self {
            server_update: flags & flag::S != 0,
            encoded: flags & flag::E != 0,
            ..Self::default()
        };
        let text = if fqdn.encoded {
            let mut labels: Vec<&[u8]> = Vec::new();
            let mut rest = name;
            let mut terminated = false;
            while let Some((&length, tail)) = rest.split_first() {
                let length = usize::from(length);
                if length > 63 {
                    return None;
                }
                if length == 0 {
                    terminated = true;
                    break;
                }
                labels.push(tail.get(..length)?);
                rest = &tail[length..];
            }
            let whole = labels.join(&b'.');
            if !whole.is_empty() {
                // An unterminated (partial) name is all host name (ISC `first_len`).
                let first = if terminated {
                    labels[0].len()
                } else {
                    whole.len()
                };
                fqdn.hostname = Some(lossy(&whole[..first]));
                if first < whole.len() {
                    fqdn.domain_name = Some(lossy(&whole[first + 1..]));
                }
            }
            whole
        } else {
            // Some broken clients NUL-terminate the name.
            let name = name.strip_suffix(&[0]).unwrap_or(name);
            let dot = name.iter().position(|&byte| byte == b'.');
            let first = dot.unwrap_or(name.len());
            if first > 0 {
                fqdn.hostname = Some(lossy(&name[..first]));
            }
            if let Some(domain) = dot.map(|dot| &name[dot + 1..]).filter(|d| !d.is_empty()) {
                fqdn.domain_name = Some(lossy(domain));
            }
            name.to_vec()
        };
        if !text.is_empty() {
            fqdn.fqdn = Some(lossy(&text));
        }
        Some(fqdn)
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Option 81 of a server's reply (common/options.c `fqdn_option_space_encapsulate`): S and O
/// as `server_updates`, E as the client sent it, RCODEs 255, then `name` in the client's form
/// (DNS wire form ends with the root label).
pub fn reply_option(server_updates: bool, encoded: bool, name: &str) -> Vec<u8> {
    let mut flags = 0;
    if server_updates {
        flags |= flag::S | flag::O;
    }
    if encoded {
        flags |= flag::E;
    }
    let mut value = vec![flags, RCODE, RCODE];
    if encoded {
        for label in name.split('.') {
            if label.is_empty() {
                break;
            }
            let label = &label.as_bytes()[..label.len().min(63)];
            value.push(label.len() as u8);
            value.extend_from_slice(label);
        }
        value.push(0);
    } else {
        value.extend_from_slice(name.as_bytes());
    }
    value
}

/// What `ddns_updates` reads for one DHCPACK, resolved through the lease's scopes.
#[derive(Clone, Debug, Default)]
pub struct NameInputs<'a> {
    /// The client's option 81, if it sent a readable one.
    pub client_fqdn: Option<&'a ClientFqdn>,
    /// `allow|deny|ignore client-updates` (unset: allowed, as ISC).
    pub client_updates: Option<Permission>,
    /// `do-forward-updates` (default on).
    pub do_forward_updates: bool,
    /// `ddns-hostname` when configured.
    pub ddns_hostname: Option<&'a str>,
    /// The client's option 12.
    pub client_hostname: Option<&'a str>,
    /// The `host-name` option the reply carries: configured, or the host declaration's name
    /// under `use-host-decl-names`.
    pub configured_hostname: Option<&'a str>,
    /// `ddns-domainname`, else the `domain-name` option of the reply.
    pub domain_name: Option<&'a str>,
    /// `fqdn-reply` (default on).
    pub fqdn_reply: bool,
}

/// The name to register and the reply's option 81.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameChoice {
    /// ISC's `ddns_fwd_name`; `None` when there is none to register (a stored one is then
    /// removed).
    pub fwd_name: Option<String>,
    /// The client updates its own A record: the server adds only the PTR record.
    pub client_updates_a: bool,
    /// Option 81 for the DHCPACK, when the client sent one.
    pub reply: Option<Vec<u8>>,
}

/// ISC's `ddns_updates` up to the first message: who updates the A record, under which name,
/// and what the reply's option 81 says.
pub fn choose(inputs: &NameInputs<'_>) -> NameChoice {
    let client = inputs.client_fqdn;
    let client_allowed = matches!(inputs.client_updates, None | Some(Permission::Allow));
    // The client may update its own A record when it asks to (S clear) and gives a qualified
    // name ("Win98 and Win2k will happily claim to be willing to update an unqualified domain
    // name").
    if client_allowed {
        if let Some(fqdn) = client.filter(|fqdn| !fqdn.server_update) {
            if let (Some(_), Some(name)) = (&fqdn.domain_name, &fqdn.fqdn) {
                let name = name.clone();
                return NameChoice {
                    reply: inputs
                        .fqdn_reply
                        .then(|| reply_option(false, fqdn.encoded, &name)),
                    fwd_name: Some(name),
                    client_updates_a: true,
                };
            }
        }
    }
    if !inputs.do_forward_updates {
        return NameChoice::default();
    }
    let hostname = inputs
        .ddns_hostname
        .or_else(|| client.and_then(|fqdn| fqdn.hostname.as_deref()))
        .or(inputs.client_hostname)
        .or(inputs.configured_hostname)
        .filter(|name| !name.is_empty());
    let fwd_name = match (hostname, inputs.domain_name) {
        (Some(host), Some(domain)) => super::plan::forward_name(host, domain),
        _ => None,
    }
    .filter(|name| name.len() <= 255);
    let Some(name) = fwd_name else {
        return NameChoice::default();
    };
    let reply = match client {
        Some(_) if !inputs.fqdn_reply => None,
        // `ignore client-updates` and a client that asked to update: the "white lie" — the
        // server updates, and tells the client to update its own name as it likes.
        Some(fqdn) if inputs.client_updates == Some(Permission::Ignore) && !fqdn.server_update => {
            fqdn.fqdn
                .as_deref()
                .map(|own| reply_option(false, fqdn.encoded, own))
        }
        Some(fqdn) => Some(reply_option(true, fqdn.encoded, &name)),
        None => None,
    };
    NameChoice {
        fwd_name: Some(name),
        client_updates_a: false,
        reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(client: Option<&ClientFqdn>) -> NameInputs<'_> {
        NameInputs {
            client_fqdn: client,
            do_forward_updates: true,
            client_hostname: Some("opt12"),
            domain_name: Some("example.org"),
            fqdn_reply: true,
            ..NameInputs::default()
        }
    }

    #[test]
    fn decodes_ascii_and_wire_names_as_isc() {
        let ascii = ClientFqdn::decode(b"\x01\x00\x00host.lab.example.org\x00").unwrap();
        assert!(ascii.server_update && !ascii.encoded);
        assert_eq!(ascii.hostname.as_deref(), Some("host"));
        assert_eq!(ascii.domain_name.as_deref(), Some("lab.example.org"));
        assert_eq!(ascii.fqdn.as_deref(), Some("host.lab.example.org"));
        let wire = ClientFqdn::decode(b"\x05\xff\xff\x04host\x07example\x03org\x00").unwrap();
        assert!(wire.server_update && wire.encoded);
        assert_eq!(wire.hostname.as_deref(), Some("host"));
        assert_eq!(wire.domain_name.as_deref(), Some("example.org"));
        assert_eq!(wire.fqdn.as_deref(), Some("host.example.org"));
        let single = ClientFqdn::decode(b"\x04\x00\x00\x04host\x00").unwrap();
        assert_eq!(single.hostname.as_deref(), Some("host"));
        assert_eq!(single.domain_name, None);
        // A partial (unterminated) name is all host name.
        let partial = ClientFqdn::decode(b"\x04\x00\x00\x01a\x01b").unwrap();
        assert_eq!(partial.hostname.as_deref(), Some("a.b"));
        assert_eq!(partial.domain_name, None);
        assert_eq!(ClientFqdn::decode(b"\x01\x00"), None);
        assert_eq!(ClientFqdn::decode(b"\x04\x00\x00\x40"), None);
        assert_eq!(ClientFqdn::decode(b"\x04\x00\x00\x05ab"), None);
        let empty = ClientFqdn::decode(b"\x01\x00\x00").unwrap();
        assert_eq!(empty.fqdn, None);
    }

    #[test]
    fn the_server_names_the_client_and_says_so() {
        // No option 81: the host-name option, no reply option.
        let plain = choose(&inputs(None));
        assert_eq!(plain.fwd_name.as_deref(), Some("opt12.example.org"));
        assert_eq!(plain.reply, None);
        // S set: the FQDN's host label under ddns-domainname; S and O answered, E echoed.
        let fqdn = ClientFqdn::decode(b"\x05\x00\x00\x04host\x03lab\x00").unwrap();
        let choice = choose(&inputs(Some(&fqdn)));
        assert_eq!(choice.fwd_name.as_deref(), Some("host.example.org"));
        assert!(!choice.client_updates_a);
        assert_eq!(
            choice.reply.unwrap(),
            b"\x07\xff\xff\x04host\x07example\x03org\x00"
        );
        // ddns-hostname wins over everything.
        let configured = choose(&NameInputs {
            ddns_hostname: Some("fixed"),
            ..inputs(Some(&fqdn))
        });
        assert_eq!(configured.fwd_name.as_deref(), Some("fixed.example.org"));
        // No domain: no name, no reply.
        let nothing = choose(&NameInputs {
            domain_name: None,
            ..inputs(Some(&fqdn))
        });
        assert_eq!(nothing, NameChoice::default());
        // do-forward-updates off without client participation: nothing.
        let off = choose(&NameInputs {
            do_forward_updates: false,
            ..inputs(None)
        });
        assert_eq!(off, NameChoice::default());
    }

    #[test]
    fn a_client_may_update_its_own_name() {
        let own = ClientFqdn::decode(b"\x00\x00\x00me.client.net").unwrap();
        let choice = choose(&inputs(Some(&own)));
        assert_eq!(choice.fwd_name.as_deref(), Some("me.client.net"));
        assert!(choice.client_updates_a);
        assert_eq!(choice.reply.unwrap(), b"\x00\xff\xffme.client.net");
        // deny client-updates: the server updates under its own name.
        let denied = choose(&NameInputs {
            client_updates: Some(Permission::Deny),
            ..inputs(Some(&own))
        });
        assert_eq!(denied.fwd_name.as_deref(), Some("me.example.org"));
        assert!(!denied.client_updates_a);
        assert_eq!(denied.reply.unwrap(), b"\x03\xff\xffme.example.org");
        // ignore client-updates: the server updates and tells the client it did not.
        let ignored = choose(&NameInputs {
            client_updates: Some(Permission::Ignore),
            ..inputs(Some(&own))
        });
        assert_eq!(ignored.fwd_name.as_deref(), Some("me.example.org"));
        assert_eq!(ignored.reply.unwrap(), b"\x00\xff\xffme.client.net");
        // An unqualified name is not the client's to update.
        let bare = ClientFqdn::decode(b"\x00\x00\x00bare").unwrap();
        let choice = choose(&inputs(Some(&bare)));
        assert_eq!(choice.fwd_name.as_deref(), Some("bare.example.org"));
        assert!(!choice.client_updates_a);
        // fqdn-reply off: no option 81.
        let quiet = choose(&NameInputs {
            fqdn_reply: false,
            ..inputs(Some(&own))
        });
        assert_eq!(quiet.reply, None);
    }
}
