//! RFC 4388 DHCPLEASEQUERY as ISC dhcpd 4.4 answers it (server/dhcpleasequery.c
//! `dhcpleasequery`): a relay agent asks what the server knows of an address, a client
//! identifier or a hardware address, and gets DHCPLEASEACTIVE, DHCPLEASEUNASSIGNED or
//! DHCPLEASEUNKNOWN back at its giaddr.
//!
//! ISC's rules, kept here:
//! - no giaddr, no reply ("missing giaddr");
//! - `allow leasequery` is looked up in the scope of the subnet holding giaddr (else the
//!   global scope) and the request's classes; the default is deny ("LEASEQUERY not allowed,
//!   query ignored");
//! - ciaddr names the address; without it the client identifier (option 61) names the client,
//!   else htype/chaddr: the client's newest lease answers (ISC `get_newest_lease`: among active
//!   leases the latest cltt, otherwise the latest end) and its other active leases are listed
//!   in option 92 (at most 40);
//! - an ACTIVE answer starts from an empty option set: chaddr/htype and option 61 of the lease,
//!   T1/T2 at 0.5 and 0.875 of starts..ends and option 51 (each relative to now, only when
//!   still ahead), option 60 as the client sent it at its DHCPACK, option 91 (seconds since
//!   cltt), option 92, and the lease's stashed relay agent information last;
//! - the other answers carry the options configured for the relay's scope, as ISC builds them
//!   in the same option state it asked `leasequery` of;
//! - the query's parameter request list is not consulted (ISC passes the PRL of the server's
//!   own option state to `cons_options`, which has none), so every option of the answer is
//!   sent, in `cons_options`' order for a client without one.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};

use crate::config::expr::Value;
use crate::config::model::{Permission, ScopeId};
use crate::lease::record::{BindingState, Hardware, Lease, UnixTime, NEVER};

use super::super::layout::{lay_out, Overload};
use super::super::options::{code, options_limit, ReplyOptions, ReplyValue};
use super::super::scope::ScopeStack;
use super::super::statements::value_of_written;
use super::super::{LeaseLookup, Reply};
use super::*;

/// RFC 4388 §6.1 option 91: seconds since the client's last transaction.
const CLIENT_LAST_TRANSACTION_TIME: u8 = 91;
/// ISC `dhcpleasequery`: `u_int32_t assoc_ips[40]` ("arbitrary maximum number of IPs").
pub const MAX_ASSOCIATED_IPS: usize = 40;
/// ISC `MAX_TIME`: how ISC's `ends` reads an infinite lease (0x7fffffff), which T1/T2 are
/// computed from.
const ISC_MAX_TIME: UnixTime = 0x7fff_ffff;

/// What a DHCPLEASEQUERY asks about (RFC 4388 §6.4), in ISC's order of precedence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseQueryTarget {
    /// ciaddr.
    Address(Ipv4Addr),
    /// Option 61.
    ClientId(Vec<u8>),
    /// htype, hlen and chaddr.
    Hardware(Hardware),
}

impl LeaseQueryTarget {
    /// The target of `message` as ISC's `dhcpleasequery` reads it; `None` when hlen does not
    /// fit chaddr (ISC: "hardware length too long, no reply sent").
    pub fn of(message: &Message) -> Option<Self> {
        if !message.ciaddr().is_unspecified() {
            return Some(Self::Address(message.ciaddr()));
        }
        if let Some(id) = message
            .opts()
            .get(OptionCode::ClientIdentifier)
            .and_then(option_value)
        {
            return Some(Self::ClientId(id));
        }
        if usize::from(message.hlen()) > 16 {
            return None;
        }
        Hardware::new(message.htype().into(), message.chaddr()).map(Self::Hardware)
    }

    /// How ISC's log lines name it (`dbg_info`): `IP A.B.C.D`, `client-id 01:02:…`,
    /// `MAC address aa:bb:…`.
    pub fn describe(&self) -> String {
        let hex = |bytes: &[u8]| {
            bytes
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        match self {
            Self::Address(address) => format!("IP {address}"),
            // ISC `print_hex_1(len, data, 60)`: at most 60 characters.
            Self::ClientId(id) => {
                let mut text = hex(id);
                text.truncate(60);
                format!("client-id {text}")
            }
            Self::Hardware(hardware) => format!("MAC address {}", hex(hardware.address())),
        }
    }
}

/// The answer's message type as ISC logs it.
pub fn answer_name(message_type: u8) -> &'static str {
    match message_type {
        11 => "DHCPLEASEUNASSIGNED",
        12 => "DHCPLEASEUNKNOWN",
        13 => "DHCPLEASEACTIVE",
        _ => "unknown",
    }
}

impl Context<'_, '_> {
    /// RFC 4388 §6.4 / ISC `dhcpleasequery`.
    pub(super) fn lease_query(&self, lookup: &dyn LeaseLookup) -> Decision {
        let inbound = &self.inbound;
        let giaddr = inbound.giaddr;
        // ISC: "missing giaddr, ciaddr is …, no reply sent".
        if giaddr.is_unspecified() {
            return Decision::ignored(IgnoreReason::Malformed(Malformation::MissingField(
                "giaddr",
            )));
        }
        let relay_scopes = self.relay_scopes(giaddr);
        if relay_scopes.find(|scope| scope.leasequery) != Some(Permission::Allow) {
            return Decision::ignored(IgnoreReason::Denied);
        }
        let Some(target) = LeaseQueryTarget::of(inbound.message) else {
            return Decision::ignored(IgnoreReason::Malformed(
                Malformation::HardwareAddressTooLong,
            ));
        };
        let (lease, associated) = match &target {
            LeaseQueryTarget::Address(address) => (
                // ISC has a lease structure for every address of its ranges: one never used
                // is FREE, so it is "unassigned", not "unknown".
                lookup
                    .by_address(*address)
                    .or_else(|| self.engine.pool_of(*address).map(|_| Lease::free(*address))),
                Vec::new(),
            ),
            LeaseQueryTarget::ClientId(id) => newest_and_associated(lookup.by_client_id(id)),
            LeaseQueryTarget::Hardware(hardware) => {
                newest_and_associated(lookup.by_hardware(hardware))
            }
        };
        let active = lease
            .as_ref()
            .filter(|lease| lease.binding_state == BindingState::Active);
        let answer = match (&lease, active) {
            (None, _) => MessageType::LeaseUnknown,
            (Some(_), Some(_)) => MessageType::LeaseActive,
            (Some(_), None) => MessageType::LeaseUnassigned,
        };
        let mut message = reply_header(inbound);
        let request = inbound.message;
        message
            .set_secs(request.secs())
            .set_ciaddr(request.ciaddr())
            .set_yiaddr(request.yiaddr())
            .set_siaddr(request.siaddr());
        // A lease found by client identifier or hardware address: ciaddr says which.
        if let (Some(lease), false) = (&lease, matches!(target, LeaseQueryTarget::Address(_))) {
            message.set_ciaddr(lease.address);
        }
        let mut available = ReplyOptions::new();
        let mut agent = None;
        let server_id;
        match active {
            Some(lease) => {
                // ISC restarts from an empty option state: nothing of the relay's scope.
                server_id = self.request.interface_address;
                if let Some(hardware) = &lease.hardware {
                    message
                        .set_htype(hardware.htype.into())
                        .set_chaddr(hardware.address());
                }
                if let Some(uid) = lease.uid().filter(|uid| !uid.is_empty()) {
                    available.push((code::CLIENT_IDENTIFIER, ReplyValue::from_slice(uid)));
                }
                for (option, value) in lease_times(lease, self.now) {
                    available.push((option, ReplyValue::from_slice(&value.to_be_bytes())));
                }
                if let Some(vendor) = saved_vendor_class(lease) {
                    available.push((VENDOR_CLASS_IDENTIFIER, ReplyValue::from_vec(vendor)));
                }
                // ISC: "lease files that were saved before running a timestamp-aware version
                // of the server" have no cltt.
                if lease.cltt != 0 {
                    let since = self.now.saturating_sub(lease.cltt);
                    available.push((
                        CLIENT_LAST_TRANSACTION_TIME,
                        ReplyValue::from_slice(&since.to_be_bytes()),
                    ));
                }
                if !associated.is_empty() {
                    let addresses = associated
                        .iter()
                        .take(MAX_ASSOCIATED_IPS)
                        .flat_map(|address| address.octets())
                        .collect();
                    available.push((code::ASSOCIATED_IP, ReplyValue::from_vec(addresses)));
                }
                agent = lease
                    .extra
                    .as_deref()
                    .map(|extra| &extra.agent_options)
                    .filter(|sub_options| !sub_options.is_empty())
                    .map(|sub_options| {
                        sub_options
                            .iter()
                            .flat_map(|(sub, value)| {
                                let length = value.len().min(255);
                                [*sub, length as u8]
                                    .into_iter()
                                    .chain(value[..length].iter().copied())
                            })
                            .collect::<Vec<u8>>()
                    });
            }
            None => {
                // The option state `leasequery` was looked up in, as it stands.
                server_id = self.server_id(&relay_scopes);
                for option in relay_scopes.option_codes() {
                    if let Some(value) = relay_scopes.option(option) {
                        available.push((option, ReplyValue::from_slice(value)));
                    }
                }
                super::super::encapsulation::add_space_options(&relay_scopes, &mut available);
                available.retain(|(option, _)| *option != code::AGENT_OPTIONS);
            }
        }
        let mut put = |option: u8, value: &[u8]| {
            available.retain(|(have, _)| *have != option);
            available.push((option, ReplyValue::from_slice(value)));
        };
        put(code::MESSAGE_TYPE, &[u8::from(answer)]);
        if let Some(server_id) = server_id {
            put(code::SERVER_IDENTIFIER, &server_id.octets());
        }
        let order = priority_without_prl(&available);
        let limit = options_limit(inbound, agent.as_deref());
        let value_of = |option: u8| {
            available
                .iter()
                .find(|(have, _)| *have == option)
                .map(|(_, value)| value.as_slice())
        };
        let (layout, stored) = lay_out(
            &order,
            value_of,
            agent.as_deref().map(|value| (code::AGENT_OPTIONS, value)),
            limit,
            Overload::default(),
        );
        let destination = if giaddr == Ipv4Addr::LOCALHOST {
            // ISC sends to `remote_port` for a giaddr of 127.0.0.1 ("For debugging").
            Destination::Unicast(giaddr)
        } else {
            Destination::Relay(giaddr)
        };
        let associated_count = associated.len().min(usize::from(u16::MAX)) as u16;
        Decision {
            reply: Some(Reply {
                header: message,
                destination,
                option_order: stored,
                layout,
                cache_threshold: None,
                static_lease_dns: None,
                executed: Default::default(),
            }),
            commit: Vec::new(),
            outcome: Outcome::LeaseQueried {
                answer: u8::from(answer),
                associated: associated_count,
            },
            ping_check: None,
            executed: Default::default(),
        }
    }

    /// ISC's `relay_group`: the scopes of the subnet holding giaddr, else the global scope,
    /// with the request's classes inside (no host: ISC runs no host's statements here).
    pub(super) fn relay_scopes(&self, giaddr: Ipv4Addr) -> ScopeStack<'_> {
        let engine = self.engine;
        let base = engine
            .network_of(giaddr)
            .map(|network| self.subnet_scope(network.subnet))
            .unwrap_or(ScopeId::GLOBAL);
        let classes: Vec<ScopeId> = self
            .classification
            .classes
            .iter()
            .map(|(_, scope)| *scope)
            .collect();
        let scopes = ScopeStack::new(&engine.config, None, &classes, base);
        if !scopes.has_executable_statements() && !scopes.has_space_statements() {
            return scopes;
        }
        let view = self.view(None, None);
        scopes.evaluate(&view).resolve_spaces(&view)
    }
}

/// ISC `get_newest_lease` and `get_associated_ips` over the client's leases: the newest is
/// the active one with the latest cltt if the first one is active, else the one ending last;
/// the others that are active are associated. `leases` come in address order (ISC walks its
/// hash chain; no order is specified by RFC 4388 §6.4.2).
fn newest_and_associated(leases: Vec<Lease>) -> (Option<Lease>, Vec<Ipv4Addr>) {
    let mut iter = leases.iter().enumerate();
    let Some((mut newest, first)) = iter.next() else {
        return (None, Vec::new());
    };
    let mut best = first;
    for (index, lease) in iter {
        let better = if best.binding_state == BindingState::Active {
            lease.binding_state == BindingState::Active && lease.cltt > best.cltt
        } else {
            lease.ends > best.ends
        };
        if better {
            best = lease;
            newest = index;
        }
    }
    let associated = leases
        .iter()
        .enumerate()
        .filter(|(index, lease)| *index != newest && lease.binding_state == BindingState::Active)
        .map(|(_, lease)| lease.address)
        .collect();
    (leases.into_iter().nth(newest), associated)
}

/// Options 58, 59 and 51 of an active lease, each only while still ahead of `now` (ISC: T1 and
/// T2 "hard-coded … to 0.5 and 0.875 of the lease time", from `starts`).
fn lease_times(lease: &Lease, now: UnixTime) -> Vec<(u8, u32)> {
    let ends = if lease.ends == NEVER {
        ISC_MAX_TIME
    } else {
        lease.ends
    };
    let duration = ends.wrapping_sub(lease.starts);
    let renewal = lease.starts.wrapping_add(duration / 2);
    let rebinding = lease
        .starts
        .wrapping_add(duration / 2)
        .wrapping_add(duration / 4)
        .wrapping_add(duration / 8);
    let mut times = Vec::with_capacity(3);
    if renewal > now {
        times.push((code::RENEWAL_TIME, renewal - now));
    }
    if rebinding > now {
        times.push((code::REBINDING_TIME, rebinding - now));
    }
    if ends > now {
        times.push((code::LEASE_TIME, ends - now));
    }
    times
}

/// The `vendor-class-identifier` ISC's `ack_lease` binds in the lease's scope, as bytes.
fn saved_vendor_class(lease: &Lease) -> Option<Vec<u8>> {
    let (_, text) = lease
        .extra
        .as_deref()?
        .variables
        .iter()
        .find(|(name, _)| name == "vendor-class-identifier")?;
    match value_of_written(text) {
        Some(Value::Data(bytes)) => Some(bytes),
        // Written in colon-hex when not printable (db.c `write_binding_scope`).
        _ => text
            .split(':')
            .map(|byte| u8::from_str_radix(byte, 16).ok())
            .collect(),
    }
    .filter(|bytes: &Vec<u8>| !bytes.is_empty())
}

/// ISC `cons_options` without a parameter request list: the protocol options, then 1, 3, 6,
/// 12, 81, then every other option of the answer (ISC walks its option hash; code order here,
/// as `options::priority_list` does), then 43. Option 82 is never in the list: it goes last.
fn priority_without_prl(available: &[(u8, ReplyValue)]) -> Vec<u8> {
    let mut list = vec![
        code::MESSAGE_TYPE,
        code::SERVER_IDENTIFIER,
        code::LEASE_TIME,
        code::RENEWAL_TIME,
        code::REBINDING_TIME,
        code::MESSAGE,
        code::REQUESTED_ADDRESS,
        code::ASSOCIATED_IP,
        code::SUBNET_MASK,
        code::ROUTERS,
        code::DOMAIN_NAME_SERVERS,
        code::HOST_NAME,
        code::FQDN,
    ];
    let mut rest: Vec<u8> = available
        .iter()
        .map(|(option, _)| *option)
        .filter(|option| *option != code::AGENT_OPTIONS)
        .collect();
    rest.sort_unstable();
    list.extend(rest);
    list.push(code::VENDOR_ENCAPSULATED);
    let mut seen = [false; 256];
    list.retain(|option| !std::mem::replace(&mut seen[usize::from(*option)], true));
    list
}

/// The option's value bytes (dhcproto keeps 61 typed).
fn option_value(option: &DhcpOption) -> Option<Vec<u8>> {
    super::super::packet::option_value(option)
}
