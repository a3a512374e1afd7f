//! Which event a changed lease is (sans-IO). A lease record says only where the lease is now;
//! whether an ACTIVE lease is a grant or a renewal, and whether a FREE one just expired or was
//! free already, depends on who held the address before. The classifier remembers that: the
//! client of every address it saw ACTIVE (seeded at start-up from the store's ACTIVE leases),
//! one hash per address.
//!
//! | state after the change | source | event |
//! |---|---|---|
//! | ACTIVE | kernel renewal | renew |
//! | ACTIVE | engine, OMAPI | renew when the same client held it, else grant |
//! | ABANDONED | engine, after a DHCPDECLINE | decline |
//! | ABANDONED | engine (answered ping), OMAPI | abandon |
//! | any other | engine, after a DHCPRELEASE | release |
//! | any other | engine, OMAPI | release when a client held it, else nothing |
//! | any other | expiry | expire when a client held it, else nothing |
//!
//! The partner's updates and DNS results are not events of this server (`changes::Effects`
//! `history`); the partner writes its own.

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};
use std::net::Ipv4Addr;

use super::{EventKind, Observed, Row, DHCPDECLINE, DHCPRELEASE};
use crate::changes::ChangeSource;
use crate::lease::record::{BindingState, Lease};

/// The holders of addresses, by what the history has seen.
#[derive(Debug, Default)]
pub struct Classifier {
    holders: HashMap<Ipv4Addr, u64>,
}

/// A client as the history tells clients apart: its identifier (option 61), else its hardware
/// address (ISC's order of lookup, server/dhcp.c `find_lease`).
fn client_key(client_id: Option<&[u8]>, htype: Option<u8>, hardware: Option<&[u8]>) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    match client_id {
        Some(id) => {
            1u8.hash(&mut hasher);
            id.hash(&mut hasher);
        }
        None => {
            2u8.hash(&mut hasher);
            htype.hash(&mut hasher);
            hardware.hash(&mut hasher);
        }
    }
    hasher.finish()
}

impl Classifier {
    /// Knows `lease`'s client as its address's holder when the lease is ACTIVE (start-up), or
    /// as the holder before a change that is about to be classified (leases that expired while
    /// the server was down).
    pub fn seed(&mut self, lease: &Lease) {
        let hardware = lease.hardware;
        self.holders.insert(
            lease.address,
            client_key(
                lease.uid(),
                hardware.map(|hardware| hardware.htype),
                hardware.as_ref().map(|hardware| hardware.address()),
            ),
        );
    }

    /// Seeds every ACTIVE lease of `leases`.
    pub fn seed_active<'a>(&mut self, leases: impl IntoIterator<Item = &'a Lease>) {
        for lease in leases {
            if lease.binding_state == BindingState::Active {
                self.seed(lease);
            }
        }
    }

    /// Addresses with a known holder.
    pub fn holders(&self) -> usize {
        self.holders.len()
    }

    /// The event `observed` is, if any; remembers the holder it leaves.
    pub fn classify(&mut self, observed: &Observed) -> Option<EventKind> {
        let key = client_key(
            observed.client_id.as_deref(),
            observed.htype,
            observed.hardware.as_deref(),
        );
        let address = observed.address;
        let held = |holders: &mut HashMap<Ipv4Addr, u64>| holders.remove(&address).is_some();
        match (observed.state, observed.source) {
            (BindingState::Active, ChangeSource::KernelRenewal) => {
                self.holders.insert(address, key);
                Some(EventKind::Renew)
            }
            (
                BindingState::Active,
                ChangeSource::Engine | ChangeSource::Omapi | ChangeSource::ControlApi,
            ) => {
                let before = self.holders.insert(address, key);
                Some(if before == Some(key) {
                    EventKind::Renew
                } else {
                    EventKind::Grant
                })
            }
            (BindingState::Abandoned, ChangeSource::Engine) => {
                self.holders.remove(&address);
                Some(if observed.message_type == Some(DHCPDECLINE) {
                    EventKind::Decline
                } else {
                    EventKind::Abandon
                })
            }
            (BindingState::Abandoned, ChangeSource::Omapi | ChangeSource::ControlApi) => {
                self.holders.remove(&address);
                Some(EventKind::Abandon)
            }
            (_, ChangeSource::Engine) if observed.message_type == Some(DHCPRELEASE) => {
                self.holders.remove(&address);
                Some(EventKind::Release)
            }
            // lease4-del / lease4-wipe end a lease as a release does.
            (_, ChangeSource::Engine | ChangeSource::Omapi | ChangeSource::ControlApi) => {
                held(&mut self.holders).then_some(EventKind::Release)
            }
            (_, ChangeSource::Expiry) => held(&mut self.holders).then_some(EventKind::Expire),
            // Not events of this server (`changes::Effects::history` is false for them).
            (
                _,
                ChangeSource::Partner
                | ChangeSource::Ddns
                | ChangeSource::KernelRenewal
                | ChangeSource::Database,
            ) => None,
        }
    }

    /// The rows of `observed`, in order; changes that are no event are left out.
    pub fn rows(&mut self, observed: impl IntoIterator<Item = Observed>) -> Vec<Row> {
        observed
            .into_iter()
            .filter_map(|observed| {
                let kind = self.classify(&observed)?;
                Some(Row::new(observed, kind))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::RequestContext;
    use crate::lease::record::Hardware;

    fn lease(address: [u8; 4], mac: u8, state: BindingState) -> Lease {
        let mut lease = Lease::free(Ipv4Addr::from(address));
        lease.binding_state = state;
        lease.hardware = Hardware::new(1, &[0, 1, 2, 3, 4, mac]);
        lease.starts = 1_000;
        lease.ends = 1_600;
        lease
    }

    fn observe(
        classifier: &mut Classifier,
        lease: &Lease,
        source: ChangeSource,
        message_type: Option<u8>,
    ) -> Option<EventKind> {
        let request = RequestContext {
            message_type,
            ..RequestContext::default()
        };
        classifier.classify(&Observed::of(lease, source, Some(&request), 0))
    }

    #[test]
    fn a_new_client_is_a_grant_and_the_same_client_again_a_renewal() {
        let mut classifier = Classifier::default();
        let active = lease([10, 0, 0, 1], 1, BindingState::Active);
        let engine = ChangeSource::Engine;
        assert_eq!(
            observe(&mut classifier, &active, engine, Some(3)),
            Some(EventKind::Grant)
        );
        assert_eq!(
            observe(&mut classifier, &active, engine, Some(3)),
            Some(EventKind::Renew)
        );
        assert_eq!(
            observe(&mut classifier, &active, ChangeSource::KernelRenewal, None),
            Some(EventKind::Renew)
        );
        // Another client on the same address: a grant.
        let other = lease([10, 0, 0, 1], 2, BindingState::Active);
        assert_eq!(
            observe(&mut classifier, &other, engine, Some(3)),
            Some(EventKind::Grant)
        );
    }

    #[test]
    fn a_seeded_holder_renews_after_a_restart() {
        let mut classifier = Classifier::default();
        let active = lease([10, 0, 0, 1], 1, BindingState::Active);
        classifier.seed_active([&active, &lease([10, 0, 0, 2], 2, BindingState::Free)]);
        assert_eq!(classifier.holders(), 1);
        assert_eq!(
            observe(&mut classifier, &active, ChangeSource::Engine, Some(3)),
            Some(EventKind::Renew)
        );
    }

    #[test]
    fn leases_leaving_active_release_expire_decline_or_abandon() {
        let mut classifier = Classifier::default();
        let engine = ChangeSource::Engine;
        let active = lease([10, 0, 0, 1], 1, BindingState::Active);
        let released = lease([10, 0, 0, 1], 1, BindingState::Released);
        observe(&mut classifier, &active, engine, Some(3));
        assert_eq!(
            observe(&mut classifier, &released, engine, Some(DHCPRELEASE)),
            Some(EventKind::Release)
        );
        // Expiry of a lease nobody holds any more is no event.
        let free = lease([10, 0, 0, 1], 1, BindingState::Free);
        assert_eq!(
            observe(&mut classifier, &free, ChangeSource::Expiry, None),
            None
        );
        observe(&mut classifier, &active, engine, Some(3));
        assert_eq!(
            observe(&mut classifier, &free, ChangeSource::Expiry, None),
            Some(EventKind::Expire)
        );
        let abandoned = lease([10, 0, 0, 1], 1, BindingState::Abandoned);
        assert_eq!(
            observe(&mut classifier, &abandoned, engine, Some(DHCPDECLINE)),
            Some(EventKind::Decline)
        );
        assert_eq!(
            observe(&mut classifier, &abandoned, engine, None),
            Some(EventKind::Abandon)
        );
        observe(&mut classifier, &active, ChangeSource::Omapi, None);
        assert_eq!(
            observe(&mut classifier, &free, ChangeSource::Omapi, None),
            Some(EventKind::Release)
        );
        assert_eq!(
            observe(&mut classifier, &active, ChangeSource::Partner, None),
            None
        );
    }

    #[test]
    fn rows_carry_the_request_relay_and_the_end_the_client_was_told() {
        let mut classifier = Classifier::default();
        let mut active = lease([10, 0, 0, 1], 1, BindingState::Active);
        // The fast path's horizon: one lease time past the told end.
        active.ends = 2_200;
        active.flags |= crate::lease::record::flags::HORIZON;
        let request = RequestContext {
            relay: Some(Ipv4Addr::new(10, 0, 0, 254)),
            circuit_id: Some(b"eth0/1".to_vec()),
            remote_id: None,
            message_type: Some(3),
        };
        let rows = classifier.rows([Observed::of(
            &active,
            ChangeSource::Engine,
            Some(&request),
            5,
        )]);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.kind, EventKind::Grant);
        assert_eq!(row.ends, Some(1_600));
        assert_eq!(row.starts, Some(1_000));
        assert_eq!(row.relay, Some(Ipv4Addr::new(10, 0, 0, 254)));
        assert_eq!(row.circuit_id.as_deref(), Some(&b"eth0/1"[..]));
        assert_eq!(row.hardware.as_deref(), Some(&[0, 1, 2, 3, 4, 1][..]));
        assert_eq!(row.source, "engine");
    }
}
