//! What ISC dhcpd 4.4 sends to add or remove a lease's names, and what it does with each
//! answer — sans-IO: a [`Operation`] gives the UPDATE message of each [`Step`]
//! ([`Operation::message`]) and, from the server's response code, the next step or the end
//! ([`Operation::next`]). The driver (`super::updater`) only sends and waits.
//!
//! The messages are those of common/dns.c (`build_fwd_add1`, `build_fwd_add2`,
//! `build_fwd_rem1`, `build_fwd_rem2`, `ddns_modify_ptr`) and the transitions those of
//! server/ddns.c (`ddns_fwd_srv_add1/add2`, `ddns_fwd_srv_rem1/rem2`, `ddns_ptr_add/remove`),
//! which implement RFC 4703 §5.3 (adding) and §5.5 (removing) with RFC 2136 prerequisites.
//! Not done: the dual-stack mixed mode's third step (`ddns-dual-stack-mixed-mode`) and client
//! updates (`ddns_cb` without `DDNS_UPDATE_ADDR`).

use std::net::Ipv4Addr;

use super::guard::{rtype, Guard};

/// An RR's class in an UPDATE message (RFC 2136 §2.4, §2.5): IN for data, NONE and ANY for
/// the prerequisite and delete forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    In,
    None,
    Any,
}

impl Class {
    pub fn code(self) -> u16 {
        match self {
            Class::In => 1,
            Class::None => 254,
            Class::Any => 255,
        }
    }
}

/// RDATA of the records ISC writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    A(Ipv4Addr),
    /// A domain name in presentation form.
    Ptr(String),
    /// A guard record's RDATA ([`Guard::rdata`]), of the guard's type.
    Guard(Guard),
}

/// One RR of a prerequisite or update section. `data: None` is RDLENGTH 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rr {
    pub name: String,
    pub class: Class,
    pub rtype: u16,
    pub ttl: u32,
    pub data: Option<Data>,
}

impl Rr {
    fn empty(name: &str, class: Class, rtype: u16) -> Self {
        Self {
            name: name.to_string(),
            class,
            rtype,
            ttl: 0,
            data: None,
        }
    }

    fn with(name: &str, class: Class, ttl: u32, data: Data) -> Self {
        let rtype = match &data {
            Data::A(_) => rtype::A,
            Data::Ptr(_) => rtype::PTR,
            Data::Guard(guard) => guard.record_type(),
        };
        Self {
            name: name.to_string(),
            class,
            rtype,
            ttl,
            data: Some(data),
        }
    }
}

/// Which zone an UPDATE goes to: the one holding the forward name or the reverse name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
}

/// One UPDATE message, before its zone is known (`super::zones` finds it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub direction: Direction,
    /// The name whose zone the message updates.
    pub name: String,
    pub prerequisites: Vec<Rr>,
    pub updates: Vec<Rr>,
}

/// The names and values of one lease in DNS (ISC's `ddns_cb`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub address: Ipv4Addr,
    /// The A record's name (`ddns-fwd-name`); without it only the PTR is touched.
    pub fwd_name: Option<String>,
    /// The PTR record's name (`ddns-rev-name`); without it only the A record is touched.
    pub rev_name: Option<String>,
    /// The guard; without it the A record is not touched (ISC clears `DDNS_UPDATE_ADDR`).
    pub guard: Option<Guard>,
    /// TTL of added records.
    pub ttl: u32,
}

/// ISC's conflict flags (server/ddns.c `get_conflict_mask`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `update-conflict-detection` (default on).
    pub conflict_detection: bool,
    /// `ddns-guard-id-must-match` (default on; off when conflict detection is off).
    pub guard_id_must_match: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            conflict_detection: true,
            guard_id_must_match: true,
        }
    }
}

impl Policy {
    /// The flags as ISC derives them: without conflict detection the guard need not match.
    pub fn new(conflict_detection: bool, guard_id_must_match: bool) -> Self {
        Self {
            conflict_detection,
            guard_id_must_match: conflict_detection && guard_id_must_match,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Add,
    Remove,
}

/// The steps of an operation, named after ISC's states (`DDNS_STATE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// The name is not in use: add A and guard (`ADD_FW_NXDOMAIN`).
    FwdAdd1,
    /// The name is in use: replace the A record if the guard is ours (`ADD_FW_YXDHCID`).
    FwdAdd2,
    /// Replace the PTR record (`ADD_PTR`).
    PtrAdd,
    /// Delete our A record if the guard is ours (`REM_FW_YXDHCID`).
    FwdRem1,
    /// Delete the guard if no address record is left (`REM_FW_NXRR`).
    FwdRem2,
    /// Delete the PTR record (`REM_PTR`).
    PtrRem,
}

/// RFC 1035 §4.1.1 and RFC 2136 §2.2 response codes.
pub mod rcode {
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const SERVFAIL: u16 = 2;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
    pub const YXDOMAIN: u16 = 6;
    pub const YXRRSET: u16 = 7;
    pub const NXRRSET: u16 = 8;
    pub const NOTAUTH: u16 = 9;
    pub const NOTZONE: u16 = 10;
}

/// How one side (the A record with its guard, or the PTR record) of an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Not part of the operation: no name, or no guard to prove the A record ours.
    Untouched,
    /// Added, removed, or found already gone.
    Done,
    /// Not tried because the forward side did not succeed (ISC adds the PTR record only
    /// after the A record).
    Skipped,
    /// The name belongs to another client, or to a record without guard (RFC 4703 §5.3.1):
    /// nothing was changed. ISC logs "DHCID mismatch, belongs to another client." or "Has an
    /// address record but no DHCID, not mine.".
    Conflict(u16),
    /// The server answered `step` with this response code.
    Failed { step: Step, rcode: u16 },
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub forward: Side,
    pub reverse: Side,
}

/// What follows an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Send(Step),
    Finished(Outcome),
}

/// One lease's add or removal, and how far it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub kind: Kind,
    pub binding: Binding,
    pub policy: Policy,
    /// A removal of the name an ACTIVE lease gives up for a new one, whose add follows (ISC's
    /// `do_remove` with `next_op`): when it ends, the lease's variables are the add's business.
    pub then_add: bool,
    /// The add of a fixed address's names (ISC's `DDNS_STATIC_LEASE`): no lease record keeps
    /// its variables, so nothing is written back when it ends.
    pub static_lease: bool,
    /// The forward side's end, once known.
    forward_side: Option<Side>,
}

impl Operation {
    pub fn add(binding: Binding, policy: Policy) -> Self {
        Self {
            kind: Kind::Add,
            binding,
            policy,
            then_add: false,
            static_lease: false,
            forward_side: None,
        }
    }

    pub fn remove(binding: Binding, policy: Policy) -> Self {
        Self {
            kind: Kind::Remove,
            binding,
            policy,
            then_add: false,
            static_lease: false,
            forward_side: None,
        }
    }

    fn forward(&self) -> Option<(&str, &Guard)> {
        Some((
            self.binding.fwd_name.as_deref()?,
            self.binding.guard.as_ref()?,
        ))
    }

    fn reverse(&self) -> bool {
        self.binding.rev_name.is_some()
            // A PTR record needs the name it points to.
            && (self.kind == Kind::Remove || self.binding.fwd_name.is_some())
    }

    /// The first step, or `None` when there is nothing to update.
    pub fn first_step(&self) -> Option<Step> {
        match (self.kind, self.forward().is_some(), self.reverse()) {
            (Kind::Add, true, _) => Some(Step::FwdAdd1),
            (Kind::Add, false, true) => Some(Step::PtrAdd),
            (Kind::Remove, true, _) => Some(Step::FwdRem1),
            (Kind::Remove, false, true) => Some(Step::PtrRem),
            (_, false, false) => None,
        }
    }

    /// The UPDATE message of `step`; `None` when the binding lacks what the step needs.
    pub fn message(&self, step: Step) -> Option<Message> {
        let address = self.binding.address;
        let ttl = self.binding.ttl;
        let policy = self.policy;
        let forward = |prerequisites, updates| {
            let (name, _) = self.forward()?;
            Some(Message {
                direction: Direction::Forward,
                name: name.to_string(),
                prerequisites,
                updates,
            })
        };
        // The guard prerequisite of add2 and rem1: our guard exists (value-dependent, TTL 0,
        // RFC 2136 §2.4.2), or any guard of its type when the id need not match (§2.4.1).
        let guard_exists = |name: &str, guard: &Guard| {
            if policy.guard_id_must_match {
                Rr::with(name, Class::In, 0, Data::Guard(guard.clone()))
            } else {
                Rr::empty(name, Class::Any, guard.record_type())
            }
        };
        match step {
            Step::FwdAdd1 => {
                let (name, guard) = self.forward()?;
                forward(
                    // §2.4.5 "Name Is Not In Use".
                    vec![Rr::empty(name, Class::None, rtype::ANY)],
                    vec![
                        Rr::with(name, Class::In, ttl, Data::A(address)),
                        Rr::with(name, Class::In, ttl, Data::Guard(guard.clone())),
                    ],
                )
            }
            Step::FwdAdd2 => {
                let (name, guard) = self.forward()?;
                let mut prerequisites = Vec::new();
                let mut updates = Vec::new();
                if policy.conflict_detection {
                    prerequisites.push(guard_exists(name, guard));
                } else {
                    // Conflict override: the guard is replaced by ours.
                    updates.push(Rr::empty(name, Class::Any, guard.record_type()));
                    updates.push(Rr::with(name, Class::In, ttl, Data::Guard(guard.clone())));
                }
                updates.push(Rr::empty(name, Class::Any, rtype::A));
                updates.push(Rr::with(name, Class::In, ttl, Data::A(address)));
                forward(prerequisites, updates)
            }
            Step::FwdRem1 => {
                let (name, guard) = self.forward()?;
                let prerequisites = if policy.conflict_detection {
                    vec![guard_exists(name, guard)]
                } else {
                    Vec::new()
                };
                // §2.5.4 "Delete An RR From An RRset": only our address.
                forward(
                    prerequisites,
                    vec![Rr::with(name, Class::None, 0, Data::A(address))],
                )
            }
            Step::FwdRem2 => {
                let (name, guard) = self.forward()?;
                let delete_guard = if policy.guard_id_must_match {
                    Rr::with(name, Class::None, 0, Data::Guard(guard.clone()))
                } else {
                    Rr::empty(name, Class::Any, guard.record_type())
                };
                forward(
                    // §2.4.3 "RRset Does Not Exist": no address of either family is left.
                    vec![
                        Rr::empty(name, Class::None, rtype::A),
                        Rr::empty(name, Class::None, rtype::AAAA),
                    ],
                    vec![delete_guard],
                )
            }
            Step::PtrAdd | Step::PtrRem => {
                let rev_name = self.binding.rev_name.as_deref()?;
                // PTR updates have no prerequisites: the PTR RRset is replaced.
                let mut updates = vec![Rr::empty(rev_name, Class::Any, rtype::PTR)];
                if step == Step::PtrAdd {
                    let target = self.binding.fwd_name.as_deref()?;
                    updates.push(Rr::with(
                        rev_name,
                        Class::In,
                        ttl,
                        Data::Ptr(target.to_string()),
                    ));
                }
                Some(Message {
                    direction: Direction::Reverse,
                    name: rev_name.to_string(),
                    prerequisites: Vec::new(),
                    updates,
                })
            }
        }
    }

    /// What follows the server's answer `rcode` to `step`.
    pub fn next(&mut self, step: Step, rcode: u16) -> Next {
        use rcode::*;
        let reverse = self.reverse();
        match step {
            Step::FwdAdd1 | Step::FwdAdd2 | Step::FwdRem1 | Step::FwdRem2 => {
                let side = match (step, rcode) {
                    (Step::FwdAdd1, YXDOMAIN) => return Next::Send(Step::FwdAdd2),
                    (Step::FwdRem1, NOERROR) => return Next::Send(Step::FwdRem2),
                    (Step::FwdAdd1 | Step::FwdAdd2, NOERROR) => Side::Done,
                    // The guard is missing or another client's: the name is not ours.
                    (Step::FwdAdd2, YXRRSET | YXDOMAIN | NXRRSET | NXDOMAIN) => {
                        Side::Conflict(rcode)
                    }
                    // No guard of ours: nothing of ours to delete, or a static entry
                    // (server/ddns.c `ddns_fwd_srv_rem1`).
                    (Step::FwdRem1, NXRRSET | NXDOMAIN) => Side::Done,
                    // YXRRSET: another address record keeps the guard alive, as it should.
                    (Step::FwdRem2, NOERROR | YXRRSET) => Side::Done,
                    (step, rcode) => Side::Failed { step, rcode },
                };
                self.forward_side = Some(side);
                let adding = self.kind == Kind::Add;
                match (reverse, adding, side) {
                    (true, true, Side::Done) => Next::Send(Step::PtrAdd),
                    // ISC removes the PTR record even when the forward removal failed.
                    (true, false, _) => Next::Send(Step::PtrRem),
                    (false, _, _) => Next::Finished(Outcome {
                        forward: side,
                        reverse: Side::Untouched,
                    }),
                    (true, true, _) => Next::Finished(Outcome {
                        forward: side,
                        reverse: Side::Skipped,
                    }),
                }
            }
            Step::PtrAdd | Step::PtrRem => {
                let side = match (step, rcode) {
                    (_, NOERROR) => Side::Done,
                    // No PTR record is the same as a removed one.
                    (Step::PtrRem, NXRRSET | NXDOMAIN) => Side::Done,
                    (step, rcode) => Side::Failed { step, rcode },
                };
                Next::Finished(Outcome {
                    forward: self.forward_side.unwrap_or(Side::Untouched),
                    reverse: side,
                })
            }
        }
    }
}

/// ISC's reverse name for `address` under `rev_domain` (server/ddns.c: the four octets in
/// reverse order, a dot, then `ddns-rev-domainname`, default `in-addr.arpa.`).
pub fn reverse_name(address: Ipv4Addr, rev_domain: &str) -> String {
    let [a, b, c, d] = address.octets();
    format!("{d}.{c}.{b}.{a}.{rev_domain}")
}

/// ISC's forward name: `ddns-hostname` (by default the client's host name), a dot, then
/// `ddns-domainname` (server/ddns.c `ddns_updates`). `None` when either is empty or the name
/// is longer than ISC allows (253 octets for both parts).
pub fn forward_name(hostname: &str, domain: &str) -> Option<String> {
    if hostname.is_empty() || domain.is_empty() || hostname.len() + domain.len() > 253 {
        return None;
    }
    Some(format!("{hostname}.{domain}"))
}

/// ISC's TTL of added records (server/ddns.c): `ddns-ttl` if set, else half the time left on
/// the lease, at most 3600 seconds (`MAX_DEFAULT_DDNS_TTL`), 0 for a lease already over.
pub fn default_ttl(now: u32, ends: u32) -> u32 {
    (ends.saturating_sub(now) / 2).min(3600)
}

#[cfg(test)]
mod tests;
