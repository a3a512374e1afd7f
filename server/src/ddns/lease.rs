//! From leases to operations and back, as ISC dhcpd 4.4 does it (server/ddns.c
//! `ddns_updates`, `ddns_removals`, `ddns_update_lease_text`) — sans-IO, for the
//! `crate::changes` effect that will drive the updater:
//!
//! - [`operations_for_active`]: what an ACTIVE lease needs — nothing when its stored
//!   `ddns-fwd-name` is already the name (`update-optimization`, on by default), a removal of
//!   the old name first when it changed, then the add;
//! - [`removal_for`]: what a lease leaving ACTIVE (release, expiry, abandon) needs, from the
//!   variables stored on it — so that names ISC added (its dhcpd.leases carries
//!   `set ddns-fwd-name = …; set ddns-dhcid = …; set ddns-rev-name = …;`) are removed too;
//! - [`variables_after`]: the variables ISC binds or unsets once DNS answered, to be written
//!   back to the lease and the lease log.

use super::guard::{self, var, ClientIdentity, Guard, Style};
use super::plan::{default_ttl, reverse_name, Binding, Kind, Operation, Outcome, Policy, Side};
use crate::lease::record::{BindingState, Lease};

/// The DDNS parameters in effect for a lease (dhcpd.conf(5) "DYNAMIC DNS UPDATES"), with the
/// name already chosen (`super::fqdn::choose`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DdnsSettings {
    /// `ddns-update-style`; `None` is `none` (the default): no updates.
    pub style: Option<Style>,
    /// The forward name (ISC's `ddns_fwd_name`: `ddns-hostname`.`ddns-domainname`, or the
    /// client's own FQDN when it updates its A record); `None`: no name to register.
    pub fwd_name: Option<String>,
    /// The client updates its A record itself (`client-updates`, RFC 4702 S bit clear): only
    /// the PTR record is the server's.
    pub client_updates_a: bool,
    /// `ddns-rev-domainname`, default `in-addr.arpa.`; `None` under `do-reverse-updates off`.
    pub rev_domain_name: Option<String>,
    /// `ddns-ttl`; by default half the lease time left, at most an hour.
    pub ttl: Option<u32>,
    /// `update-conflict-detection`, `ddns-guard-id-must-match`.
    pub policy: Policy,
    /// `update-optimization` (default on): skip the update when the stored name is the name.
    pub update_optimization: bool,
}

impl Default for DdnsSettings {
    fn default() -> Self {
        Self {
            style: None,
            fwd_name: None,
            client_updates_a: false,
            rev_domain_name: Some("in-addr.arpa.".into()),
            ttl: None,
            policy: Policy::default(),
            update_optimization: true,
        }
    }
}

/// A lease variable to bind (`Some(text)`, as the lease file writes it) or unset (`None`).
pub type VariableChange = (&'static str, Option<String>);

/// The value of lease variable `name`, unquoted (ISC's `quotify_buf` form: `\"`, `\\`,
/// `\ooo`); `None` when absent or not a quoted string.
pub fn variable(lease: &Lease, name: &str) -> Option<Vec<u8>> {
    let (_, text) = lease
        .extra
        .as_deref()?
        .variables
        .iter()
        .find(|(existing, _)| existing == name)?;
    unquote(text)
}

fn unquote(text: &str) -> Option<Vec<u8>> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?.as_bytes();
    let mut value = Vec::with_capacity(inner.len());
    let mut index = 0;
    while index < inner.len() {
        match inner[index] {
            b'\\' => {
                let next = *inner.get(index + 1)?;
                if (b'0'..=b'3').contains(&next) {
                    let digits = inner.get(index + 1..index + 4)?;
                    if !digits.iter().all(|digit| (b'0'..=b'7').contains(digit)) {
                        return None;
                    }
                    value.push(
                        digits
                            .iter()
                            .fold(0u8, |acc, digit| acc << 3 | (digit - b'0')),
                    );
                    index += 4;
                } else {
                    value.push(next);
                    index += 2;
                }
            }
            byte => {
                value.push(byte);
                index += 1;
            }
        }
    }
    Some(value)
}

fn quote(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    crate::lease::file::write::quote_into(bytes, &mut out);
    // `quote_into` writes only ASCII.
    String::from_utf8_lossy(&out).into_owned()
}

fn text_variable(lease: &Lease, name: &str) -> Option<String> {
    String::from_utf8(variable(lease, name)?).ok()
}

/// The guard stored on a lease: `ddns-dhcid` (standard) or `ddns-txt` (interim), as ISC's
/// `ddns_removals` looks for them.
pub fn stored_guard(lease: &Lease) -> Option<Guard> {
    if let Some(dhcid) = variable(lease, var::DHCID) {
        return Some(Guard::Dhcid(dhcid));
    }
    variable(lease, var::TXT).map(Guard::Txt)
}

/// The removal of what a lease's variables say was added; `None` when they say nothing
/// (ISC: "No scope implies that DDNS has not been performed for this lease"). A name the
/// client registered itself (`ddns-client-fqdn`) keeps its A record; only the PTR goes.
pub fn removal_for(lease: &Lease, policy: Policy) -> Option<Operation> {
    let (fwd_name, guard) = match text_variable(lease, var::FWD_NAME) {
        Some(name) => (Some(name), stored_guard(lease)),
        None => (text_variable(lease, var::CLIENT_FQDN), None),
    };
    let binding = Binding {
        address: lease.address,
        fwd_name,
        rev_name: text_variable(lease, var::REV_NAME),
        guard,
        ttl: 0,
    };
    let operation = Operation::remove(binding, policy);
    operation.first_step().is_some().then_some(operation)
}

/// Whether the lease carries variables of names added to DNS (a removal is due when it stops
/// being ACTIVE).
pub fn has_dns_variables(lease: &Lease) -> bool {
    lease.extra.as_deref().is_some_and(|extra| {
        extra.variables.iter().any(|(name, _)| {
            matches!(
                name.as_str(),
                var::FWD_NAME | var::REV_NAME | var::CLIENT_FQDN | var::DHCID | var::TXT
            )
        })
    })
}

/// The client identity of a lease, as ISC picks it for the guard.
fn identity(lease: &Lease) -> Option<ClientIdentity<'_>> {
    if let Some(uid) = lease.uid().filter(|uid| !uid.is_empty()) {
        return Some(ClientIdentity::ClientId(uid));
    }
    let hardware = lease.hardware.as_ref()?;
    Some(ClientIdentity::Hardware {
        htype: hardware.htype,
        address: hardware.bytes.get(..usize::from(hardware.len))?,
    })
}

/// The operations an ACTIVE lease needs at `now`, in order; empty when updates are off, there
/// is no name, or the stored name is already this one (`update-optimization`).
pub fn operations_for_active(lease: &Lease, settings: &DdnsSettings, now: u32) -> Vec<Operation> {
    let Some(style) = settings.style else {
        return Vec::new();
    };
    if lease.binding_state != BindingState::Active {
        return Vec::new();
    }
    let fwd_name = settings.fwd_name.as_deref();
    let mut operations = Vec::new();
    if let Some(stored) = text_variable(lease, var::FWD_NAME) {
        if fwd_name == Some(stored.as_str()) && settings.update_optimization {
            return Vec::new();
        }
        // A new name (or none): the old one goes first (ISC's `do_remove`).
        if fwd_name != Some(stored.as_str()) {
            operations.extend(removal_for(lease, settings.policy).map(|mut removal| {
                removal.then_add = fwd_name.is_some();
                removal
            }));
        }
    } else if let Some(stored) = text_variable(lease, var::CLIENT_FQDN) {
        // The client's own name, PTR already added: nothing to do while it stays.
        if fwd_name == Some(stored.as_str()) && settings.update_optimization {
            return Vec::new();
        }
    }
    operations.extend(add_operation(
        lease.address,
        identity(lease),
        settings,
        style,
        settings.ttl.unwrap_or_else(|| default_ttl(now, lease.ends)),
    ));
    operations
}

/// The add of `settings`' names for `address` leased to `client` (server/ddns.c
/// `ddns_updates` from "Compute the RR TTL" on); `None` without a (valid) name.
fn add_operation(
    address: std::net::Ipv4Addr,
    client: Option<ClientIdentity<'_>>,
    settings: &DdnsSettings,
    style: Style,
    ttl: u32,
) -> Option<Operation> {
    let fwd_name = settings
        .fwd_name
        .as_deref()
        .filter(|name| name.len() <= 255)?;
    let guard = if settings.client_updates_a {
        None
    } else {
        Some(guard::guard(style, client?, fwd_name).ok()?)
    };
    let rev_name = settings
        .rev_domain_name
        .as_deref()
        .map(|domain| reverse_name(address, domain))
        .filter(|name| name.len() <= 255);
    Some(Operation::add(
        Binding {
            address,
            fwd_name: Some(fwd_name.to_string()),
            rev_name,
            guard,
            ttl,
        },
        settings.policy,
    ))
}

/// The add a DHCPACK of a fixed address makes (ISC `ddns_updates` on the mocked-up lease of a
/// host's `fixed-address`, flagged `DDNS_STATIC_LEASE`): the lease has no stored variables,
/// so nothing is skipped as already done (`update-optimization`) and no old name is removed,
/// and once DNS answered nothing is written back (`ddns_update_lease_text` returns at once for
/// a static lease). Nothing removes the names later either: a fixed address is never released
/// nor expires (dhcpd.conf(5) `update-static-leases`: "will not delete the record when it is
/// not in use"). `ends` is the end of the time the DHCPACK gives (ISC's TTL: half of it, at
/// most an hour, unless `ddns-ttl`).
pub fn operation_for_static_lease(
    address: std::net::Ipv4Addr,
    client: ClientIdentity<'_>,
    settings: &DdnsSettings,
    ends: u32,
    now: u32,
) -> Option<Operation> {
    let style = settings.style?;
    let ttl = settings.ttl.unwrap_or_else(|| default_ttl(now, ends));
    let mut operation = add_operation(address, Some(client), settings, style, ttl)?;
    operation.static_lease = true;
    Some(operation)
}

/// The variables ISC binds or unsets on the lease once `operation` ended with `outcome`
/// (server/ddns.c `ddns_update_lease_text`), to be written back to the lease.
pub fn variables_after(operation: &Operation, outcome: &Outcome) -> Vec<VariableChange> {
    let binding = &operation.binding;
    let mut changes = Vec::new();
    match operation.kind {
        Kind::Add => {
            if outcome.forward == Side::Done {
                if let (Some(name), Some(guard)) = (&binding.fwd_name, &binding.guard) {
                    changes.push((var::FWD_NAME, Some(quote(name.as_bytes()))));
                    let (variable, value) = guard.lease_variable();
                    changes.push((variable, Some(quote(value))));
                }
            }
            if outcome.reverse == Side::Done {
                if let Some(rev_name) = &binding.rev_name {
                    changes.push((var::REV_NAME, Some(quote(rev_name.as_bytes()))));
                }
                // The client's own name, which its PTR record points to (ISC `ADD_PTR`
                // without `DDNS_UPDATE_ADDR`).
                if let (None, Some(name)) = (&binding.guard, &binding.fwd_name) {
                    changes.push((var::CLIENT_FQDN, Some(quote(name.as_bytes()))));
                }
            }
        }
        Kind::Remove => {
            if outcome.forward == Side::Done {
                changes.push((var::FWD_NAME, None));
                if let Some(guard) = &binding.guard {
                    changes.push((guard.lease_variable().0, None));
                }
            }
            if outcome.reverse == Side::Done {
                changes.push((var::REV_NAME, None));
                if binding.guard.is_none() {
                    changes.push((var::CLIENT_FQDN, None));
                }
            }
        }
    }
    changes
}

/// The operations a changed lease needs: the adds (and removals of a replaced name) of an ACTIVE
/// lease with `settings` when `may_add`, the removal of what the variables of a lease that is
/// no longer ACTIVE say was added.
pub fn operations_for_change(
    lease: &Lease,
    settings: Option<&DdnsSettings>,
    may_add: bool,
    policy: Policy,
    now: u32,
) -> Vec<Operation> {
    if lease.binding_state == BindingState::Active {
        return match settings {
            Some(settings) if may_add => operations_for_active(lease, settings, now),
            _ => Vec::new(),
        };
    }
    if !has_dns_variables(lease) {
        return Vec::new();
    }
    removal_for(lease, policy).into_iter().collect()
}

/// What to do once `operation` ended with `outcome`, given the lease the store now holds at
/// its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Followup {
    /// Nothing: the lease has moved on (another client, other names).
    Nothing,
    /// Set or unset these variables on the lease and record it (ISC
    /// `ddns_update_lease_text`).
    Variables(Vec<VariableChange>),
    /// The names were removed while the same client took the lease again (a release, then a
    /// new DHCPACK that found its names still stored): add them again.
    Readd(Operation),
}

/// The follow-up of a finished operation on `lease` (the store's lease at the operation's
/// address) at `now`.
pub fn followup(operation: &Operation, outcome: &Outcome, lease: &Lease, now: u32) -> Followup {
    // ISC `ddns_update_lease_text`: "If the lease was static (for a fixed address) we don't
    // need to do any work" — even when a dynamic lease holds the same address.
    if operation.static_lease {
        return Followup::Nothing;
    }
    let binding = &operation.binding;
    let changes = variables_after(operation, outcome);
    match operation.kind {
        Kind::Add => {
            // Only for the lease of the client the names were added for.
            let same_client = lease.binding_state == BindingState::Active
                && match (&binding.guard, &binding.fwd_name) {
                    (Some(guard), Some(name)) => {
                        identity(lease)
                            .and_then(|client| guard::guard(guard.style(), client, name).ok())
                            .as_ref()
                            == Some(guard)
                    }
                    _ => true,
                };
            if same_client && !changes.is_empty() {
                Followup::Variables(changes)
            } else {
                Followup::Nothing
            }
        }
        Kind::Remove => {
            let stored_name = text_variable(lease, var::FWD_NAME)
                .or_else(|| text_variable(lease, var::CLIENT_FQDN));
            let same_names = stored_name == binding.fwd_name
                && text_variable(lease, var::REV_NAME) == binding.rev_name;
            if !same_names || changes.is_empty() {
                return Followup::Nothing;
            }
            if lease.binding_state == BindingState::Active && !operation.then_add {
                // The client whose names these are holds the lease again: they must stay.
                let readd = Operation::add(
                    Binding {
                        ttl: default_ttl(now, lease.ends),
                        ..binding.clone()
                    },
                    operation.policy,
                );
                let same_client = match (&binding.guard, &binding.fwd_name) {
                    (Some(guard), Some(name)) => {
                        identity(lease)
                            .and_then(|client| guard::guard(guard.style(), client, name).ok())
                            .as_ref()
                            == Some(guard)
                    }
                    _ => true,
                };
                return if same_client {
                    Followup::Readd(readd)
                } else {
                    Followup::Nothing
                };
            }
            Followup::Variables(changes)
        }
    }
}

/// Applies `changes` to the lease's variables.
pub fn apply_variables(lease: &mut Lease, changes: &[VariableChange]) {
    for (name, value) in changes {
        match value {
            Some(value) => {
                let variables = &mut lease.extra_mut().variables;
                match variables.iter_mut().find(|(existing, _)| existing == name) {
                    Some(entry) => entry.1 = value.clone(),
                    // ISC binds a new variable at the head of the lease's scope, so its file
                    // lists the latest first (`ddns-rev-name`, the guard, `ddns-fwd-name`).
                    None => variables.insert(0, (name.to_string(), value.clone())),
                }
            }
            None => {
                if let Some(extra) = lease.extra.as_deref_mut() {
                    extra.variables.retain(|(existing, _)| existing != name);
                }
            }
        }
    }
    lease.shrink_extra();
}

#[cfg(test)]
mod tests;
