//! Who the client is: its host declaration (by client identifier, then hardware address, as ISC
//! `find_lease` looks them up), the classes it belongs to, and whether a pool's permit list lets
//! it in (ISC `permitted`, docs/spec/dhcpd-conf.md §3.1).
//!
//! Class membership evaluates `match if` / `match` expressions with `config::expr::evaluate`
//! over a [`PacketView`] of the request.

use crate::config::expr::{agent_suboption, evaluate, OptionRef, PacketView};
use std::sync::Arc;

use crate::config::model::{ClassId, Config, Host, HostId, PermitKind, Pool, ScopeId};
use crate::lease::record::UnixTime;

use super::dynamic_hosts::{DynamicHost, HostSet};
use super::packet::{option_value, Inbound};

/// The client's identity as far as configuration is concerned.
#[derive(Clone, Debug, Default)]
pub(crate) struct Classification {
    /// The host declaration matching the client (ISC `packet->known`).
    pub host: Option<HostId>,
    /// A host added over OMAPI when no dhcpd.conf host matched (docs/spec/omapi.md §8.2).
    pub dynamic_host: Option<Arc<DynamicHost>>,
    /// Matching classes in declaration order, with the scope that applies (a subclass's own scope
    /// when it has a body, else the class's).
    pub classes: Vec<(ClassId, ScopeId)>,
    /// Beside each of `classes`: the data of the subclass the client is in (declared or
    /// spawned), `None` when it is in the class itself. ISC puts the subclass in the packet's
    /// classes, and bills to it (`engine::billing`).
    pub subclass_data: Vec<Option<Vec<u8>>>,
}

impl Classification {
    pub fn known(&self) -> bool {
        self.host.is_some() || self.dynamic_host.is_some()
    }

    /// The matching host declaration, from dhcpd.conf or added over OMAPI.
    pub fn host<'a>(&'a self, config: &'a Config) -> Option<&'a Host> {
        match self.host {
            Some(id) => config.hosts.get(id.0 as usize),
            None => self.dynamic_host.as_deref().map(|dynamic| &dynamic.host),
        }
    }

    pub fn is_member(&self, class: ClassId) -> bool {
        self.classes.iter().any(|(member, _)| *member == class)
    }
}

/// Classifies `inbound` against `config` and the OMAPI hosts `dynamic` (`None` when there are
/// none).
pub(crate) fn classify(
    config: &Config,
    dynamic: Option<&HostSet>,
    inbound: &Inbound<'_>,
) -> Classification {
    let host = find_host(config, dynamic, inbound);
    let dynamic_host = match (host, dynamic) {
        (None, Some(set)) => find_dynamic_host(set, inbound),
        _ => None,
    };
    let name = match host {
        Some(id) => Some(config.host(id).name.as_str()),
        None => dynamic_host
            .as_deref()
            .map(|dynamic| dynamic.host.name.as_str()),
    };
    let (classes, subclass_data) = matching_classes(config, inbound, name);
    Classification {
        host,
        dynamic_host,
        classes,
        subclass_data,
    }
}

/// The same search over the OMAPI hosts (ISC keeps both in one hash; dhcpd.conf ones come first
/// here, which only matters when both declare the same client).
fn find_dynamic_host(set: &HostSet, inbound: &Inbound<'_>) -> Option<Arc<DynamicHost>> {
    let pick = |matches: &dyn Fn(&Host) -> bool| {
        let mut first = None;
        for dynamic in set.hosts.iter().filter(|dynamic| matches(&dynamic.host)) {
            if !dynamic.host.fixed_addresses.is_empty() {
                return Some(Arc::clone(dynamic));
            }
            first.get_or_insert_with(|| Arc::clone(dynamic));
        }
        first
    };
    let by_id = inbound
        .client_id
        .and_then(|id| pick(&|host: &Host| host.client_id.as_deref() == Some(id)));
    by_id.or_else(|| {
        pick(&|host: &Host| {
            host.hardware.as_ref().is_some_and(|hardware| {
                hardware.htype == inbound.hardware.htype
                    && hardware.address == inbound.hardware.address()
            })
        })
    })
}

/// ISC `find_lease`: a host whose `dhcp-client-identifier` equals option 61 first
/// (`find_hosts_by_uid`), then one whose `hardware` equals htype/chaddr (`find_hosts_by_haddr`).
/// Among several, one with a fixed address wins (ISC chains such hosts and `mockup_lease` picks
/// the one with an address on the network; the caller checks the network).
fn find_host(config: &Config, dynamic: Option<&HostSet>, inbound: &Inbound<'_>) -> Option<HostId> {
    // A dhcpd.conf host deleted over OMAPI no longer matches.
    let live = |host: &Host| dynamic.is_none_or(|set| !set.is_deleted(&host.name));
    let by_id = inbound.client_id.and_then(|id| {
        first_preferring_fixed(
            config
                .hosts
                .iter()
                .enumerate()
                .filter(|(_, host)| live(host) && host.client_id.as_deref() == Some(id)),
        )
    });
    by_id
        .or_else(|| {
            first_preferring_fixed(config.hosts.iter().enumerate().filter(|(_, host)| {
                live(host)
                    && host.hardware.as_ref().is_some_and(|hardware| {
                        hardware.htype == inbound.hardware.htype
                            && hardware.address == inbound.hardware.address()
                    })
            }))
        })
        .or_else(|| find_host_by_identifier(config, inbound, &live))
}

/// ISC `find_hosts_by_option`, tried last: the first host whose `host-identifier option` value
/// the request carries. A relay agent sub-option is read from option 82, or from the relay
/// agent information stashed on the lease of a unicast renewal.
fn find_host_by_identifier(
    config: &Config,
    inbound: &Inbound<'_>,
    live: &dyn Fn(&Host) -> bool,
) -> Option<HostId> {
    if config.host_identifiers.is_empty() {
        return None;
    }
    let agent = inbound
        .relay_agent
        .as_deref()
        .or(inbound.stashed_agent_options.as_deref());
    config
        .host_identifiers
        .iter()
        .find(|identifier| {
            let value = match identifier.option {
                OptionRef::Dhcp(code) => inbound.option_bytes(code),
                OptionRef::Agent(code) => agent
                    .and_then(|agent| agent_suboption(agent, code))
                    .map(<[u8]>::to_vec),
                // The parser takes host identifiers of the dhcp and agent spaces only.
                OptionRef::SubOption(_) => None,
            };
            value.as_deref() == Some(identifier.data.as_slice())
                && config
                    .hosts
                    .get(identifier.host.0 as usize)
                    .is_some_and(live)
        })
        .map(|identifier| identifier.host)
}

fn first_preferring_fixed<'c>(
    hosts: impl Iterator<Item = (usize, &'c crate::config::model::Host)>,
) -> Option<HostId> {
    let mut first = None;
    for (index, host) in hosts {
        let id = HostId(index as u32);
        if !host.fixed_addresses.is_empty() {
            return Some(id);
        }
        first.get_or_insert(id);
    }
    first
}

/// The classes the client is in (ISC `check_collection`), each with the data of the subclass
/// it is in, if any. A `match if` that is false ends the class; true, it makes the client a
/// member unless the class also has `match`/`spawn with`, whose data then decides: the
/// declared subclass of that data, else, for `spawn with`, the subclass spawned for it
/// (dhcpd.conf(5) "SPAWNING CLASSES": it has the class's scope and `lease limit`, and lives
/// as long as the server; here it is the same whenever the data is, so it needs no record).
/// Empty data matches no subclass.
#[allow(clippy::type_complexity)]
fn matching_classes(
    config: &Config,
    inbound: &Inbound<'_>,
    host: Option<&str>,
) -> (Vec<(ClassId, ScopeId)>, Vec<Option<Vec<u8>>>) {
    let mut members = Vec::new();
    let mut subclass_data = Vec::new();
    if config.classes.is_empty() {
        return (members, subclass_data);
    }
    let mut view = RequestView::new(inbound, host);
    for (index, class) in config.classes.iter().enumerate() {
        let id = ClassId(index as u32);
        if let Some(condition) = &class.match_if {
            if !evaluate(condition, &view).is_true() {
                continue;
            }
            if class.match_data.is_none() {
                members.push((id, class.scope));
                subclass_data.push(None);
                view.classes.push(&class.name);
                continue;
            }
        }
        let Some(data) = &class.match_data else {
            continue;
        };
        let value = evaluate(data, &view);
        let Some(value) = value.as_data().filter(|value| !value.is_empty()) else {
            continue;
        };
        let scope = match class.subclass(value) {
            Some(subclass) => subclass.scope.unwrap_or(class.scope),
            None if class.spawning => class.scope,
            None => continue,
        };
        members.push((id, scope));
        subclass_data.push(Some(value.to_vec()));
        view.classes.push(&class.name);
    }
    (members, subclass_data)
}

/// The request's options as wire values, for [`RequestView`]: a unicast renewal is seen with
/// the relay agent information stashed on its lease.
pub(crate) fn request_options(inbound: &Inbound<'_>) -> Vec<(u8, Vec<u8>)> {
    let mut options: Vec<(u8, Vec<u8>)> = inbound
        .message
        .opts()
        .iter()
        .filter_map(|(code, option)| option_value(option).map(|value| (u8::from(*code), value)))
        .collect();
    if let Some(stashed) = &inbound.stashed_agent_options {
        options.push((82, stashed.clone()));
    }
    options
}

/// What expressions may read of a request (dhcp-eval(5)): its options as wire bytes, its
/// hardware address, whether a host declaration knows it and, once an address is chosen for a
/// reply, that address (`leased-address`).
pub(crate) struct RequestView<'a> {
    /// The request's options as wire values: built once per request and shared by every
    /// view of it (classification, each reply's scopes, `on commit`).
    options: std::borrow::Cow<'a, [(u8, Vec<u8>)]>,
    hardware: (u8, &'a [u8]),
    host_name: Option<&'a str>,
    leased_address: Option<std::net::Ipv4Addr>,
    /// The variables of the lease concerned (`set` statements, the lease file's `set` lines).
    variables: Vec<(String, crate::config::expr::Value)>,
    /// The request's fixed header and cookie as received, encoded on first use (`packet()`).
    header: std::cell::OnceCell<Vec<u8>>,
    message: &'a dhcproto::v4::Message,
    /// The datagram as received, when the daemon kept it.
    raw: Option<&'a [u8]>,
    /// Seconds left on the lease concerned (`lease-time`).
    lease_time: Option<u32>,
    /// Names of the classes the request is in (`check`): those matched so far while
    /// classifying, all of them afterwards.
    classes: Vec<&'a str>,
}

impl<'a> RequestView<'a> {
    /// With the time left at `now` on `lease` (ISC `expr_lease_time`: null once it ended).
    pub fn with_lease_time(
        mut self,
        lease: Option<&crate::lease::record::Lease>,
        now: crate::lease::record::UnixTime,
    ) -> Self {
        self.lease_time = lease
            .filter(|lease| lease.ends >= now)
            .map(|lease| lease.ends - now);
        self
    }

    /// In the classes named `classes`.
    pub fn with_classes(mut self, classes: Vec<&'a str>) -> Self {
        self.classes = classes;
        self
    }

    /// With the variables of `lease`.
    pub fn with_variables(mut self, lease: Option<&crate::lease::record::Lease>) -> Self {
        self.variables = lease
            .and_then(|lease| lease.extra.as_deref())
            .map(|extra| {
                extra
                    .variables
                    .iter()
                    .filter_map(|(name, written)| {
                        super::statements::value_of_written(written)
                            .map(|value| (name.clone(), value))
                    })
                    .collect()
            })
            .unwrap_or_default();
        self
    }

    /// The view of a reply about `leased_address`.
    pub fn with_leased_address(mut self, leased_address: Option<std::net::Ipv4Addr>) -> Self {
        self.leased_address = leased_address;
        self
    }

    pub fn new(inbound: &'a Inbound<'_>, host_name: Option<&'a str>) -> Self {
        Self::with_options(
            inbound,
            host_name,
            std::borrow::Cow::Owned(request_options(inbound)),
        )
    }

    /// A view over options already built by [`request_options`].
    pub fn with_options(
        inbound: &'a Inbound<'_>,
        host_name: Option<&'a str>,
        options: std::borrow::Cow<'a, [(u8, Vec<u8>)]>,
    ) -> Self {
        Self {
            options,
            hardware: (inbound.hardware.htype, inbound.hardware.address()),
            host_name,
            leased_address: None,
            variables: Vec::new(),
            header: std::cell::OnceCell::new(),
            message: inbound.message,
            raw: inbound.raw,
            lease_time: None,
            classes: Vec::new(),
        }
    }
}

impl PacketView for RequestView<'_> {
    fn option(&self, code: u8) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(option, _)| *option == code)
            .map(|(_, value)| value.as_slice())
    }

    fn hardware(&self) -> (u8, &[u8]) {
        self.hardware
    }

    fn known(&self) -> bool {
        self.host_name.is_some()
    }

    fn host_decl_name(&self) -> Option<&str> {
        self.host_name
    }

    fn leased_address(&self) -> Option<std::net::Ipv4Addr> {
        self.leased_address
    }

    fn lease_time(&self) -> Option<u32> {
        self.lease_time
    }

    fn in_class(&self, name: &str) -> bool {
        self.classes.contains(&name)
    }

    fn boot_field(&self, file: bool) -> Option<&[u8]> {
        Some(if file {
            self.message.fname().unwrap_or_default()
        } else {
            self.message.sname().unwrap_or_default()
        })
    }

    fn raw_packet(&self) -> &[u8] {
        if let Some(raw) = self.raw {
            return raw;
        }
        self.header.get_or_init(|| {
            // The header fields and the cookie encode exactly as received (RFC 2131 §2).
            let mut bytes = Vec::new();
            let mut encoder = dhcproto::Encoder::new(&mut bytes);
            if dhcproto::Encodable::encode(self.message, &mut encoder).is_err() {
                return Vec::new();
            }
            bytes.truncate(crate::config::expr::PACKET_HEADER_LENGTH);
            bytes
        })
    }

    fn variable(&self, name: &str) -> Option<crate::config::expr::Value> {
        self.variables
            .iter()
            .find(|(have, _)| have == name)
            .map(|(_, value)| value.clone())
    }
}

/// ISC `permitted` over a pool's permit list: a client may use the pool when no `deny` entry
/// matches it and, if there are `allow` entries, one of them matches (docs/spec/dhcpd-conf.md §3.1).
pub(crate) fn pool_permits(
    pool: &Pool,
    classification: &Classification,
    bootp: bool,
    now: UnixTime,
) -> bool {
    let matches = |kind: &PermitKind| match kind {
        PermitKind::KnownClients => classification.known(),
        PermitKind::UnknownClients => !classification.known(),
        PermitKind::AllClients => true,
        PermitKind::DynamicBootpClients => bootp,
        PermitKind::MembersOf(class) => classification.is_member(*class),
        PermitKind::After(date) => now > *date,
    };
    let mut has_allow = false;
    let mut allowed = false;
    for permit in &pool.permits {
        if permit.allow {
            has_allow = true;
            allowed |= matches(&permit.kind);
        } else if matches(&permit.kind) {
            return false;
        }
    }
    !has_allow || allowed
}
