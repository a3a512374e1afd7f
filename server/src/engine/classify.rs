//! Who the client is: its host declaration (by client identifier, then hardware address, as ISC
//! `find_lease` looks them up), the classes it belongs to, and whether a pool's permit list lets
//! it in (ISC `permitted`, dhcpd-conf.md §3.1).
//!
//! Class membership evaluates `match if` / `match` expressions. Until the expression evaluator
//! (`config::expr::evaluate` with a `PacketView`) lands, [`evaluate_expression`] understands
//! constant data only; it is the single place to wire the evaluator into.

use crate::config::expr::Expr;
use crate::config::model::{ClassId, Config, HostId, PermitKind, Pool, ScopeId};
use crate::lease::record::UnixTime;

use super::packet::Inbound;

/// The client's identity as far as configuration is concerned.
#[derive(Clone, Debug, Default)]
pub(crate) struct Classification {
    /// The host declaration matching the client (ISC `packet->known`).
    pub host: Option<HostId>,
    /// Matching classes in declaration order, with the scope that applies (a subclass's own scope
    /// when it has a body, else the class's).
    pub classes: Vec<(ClassId, ScopeId)>,
}

impl Classification {
    pub fn known(&self) -> bool {
        self.host.is_some()
    }

    pub fn is_member(&self, class: ClassId) -> bool {
        self.classes.iter().any(|(member, _)| *member == class)
    }
}

/// Classifies `inbound` against `config`.
pub(crate) fn classify(config: &Config, inbound: &Inbound<'_>) -> Classification {
    Classification {
        host: find_host(config, inbound),
        classes: matching_classes(config, inbound),
    }
}

/// ISC `find_lease`: a host whose `dhcp-client-identifier` equals option 61 first
/// (`find_hosts_by_uid`), then one whose `hardware` equals htype/chaddr (`find_hosts_by_haddr`).
/// Among several, one with a fixed address wins (ISC chains such hosts and `mockup_lease` picks
/// the one with an address on the network; the caller checks the network).
fn find_host(config: &Config, inbound: &Inbound<'_>) -> Option<HostId> {
    let by_id = inbound.client_id.as_deref().and_then(|id| {
        first_preferring_fixed(
            config
                .hosts
                .iter()
                .enumerate()
                .filter(|(_, host)| host.client_id.as_deref() == Some(id)),
        )
    });
    by_id.or_else(|| {
        first_preferring_fixed(config.hosts.iter().enumerate().filter(|(_, host)| {
            host.hardware.as_ref().is_some_and(|hardware| {
                hardware.htype == inbound.hardware.htype
                    && hardware.address == inbound.hardware.address()
            })
        }))
    })
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

/// Classes whose `match if` is true, or whose `match` data equals one of their subclasses.
fn matching_classes(config: &Config, inbound: &Inbound<'_>) -> Vec<(ClassId, ScopeId)> {
    let mut members = Vec::new();
    for (index, class) in config.classes.iter().enumerate() {
        let id = ClassId(index as u32);
        if let Some(condition) = &class.match_if {
            if evaluate_expression(condition, inbound).is_some_and(|value| is_true(&value)) {
                members.push((id, class.scope));
                continue;
            }
        }
        if let Some(data) = &class.match_data {
            let Some(value) = evaluate_expression(data, inbound) else {
                continue;
            };
            if let Some((_, scope)) = class
                .subclasses
                .iter()
                .find(|(subclass_data, _)| *subclass_data == value)
            {
                members.push((id, scope.unwrap_or(class.scope)));
            }
        }
    }
    members
}

/// Evaluates a class expression against the request. `None` when the expression has no value
/// (an absent option, dhcp-eval(5) "null").
///
/// Wiring point for `config::expr::evaluate`: only constant data is understood today.
pub(crate) fn evaluate_expression(expression: &Expr, _inbound: &Inbound<'_>) -> Option<Vec<u8>> {
    match expression {
        Expr::Data(data) => Some(data.clone()),
    }
}

/// dhcp-eval(5): a boolean context treats non-empty data with a non-zero byte as true.
fn is_true(value: &[u8]) -> bool {
    value.iter().any(|byte| *byte != 0)
}

/// ISC `permitted` over a pool's permit list: a client may use the pool when no `deny` entry
/// matches it and, if there are `allow` entries, one of them matches (dhcpd-conf.md §3.1).
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
