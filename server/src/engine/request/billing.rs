//! The billing step of ISC `ack_lease` for a request's chosen lease (`engine::billing`).

use crate::lease::store::LeaseStore;

use super::super::billing::{decide, BillingDecision, NoAvailableBilling};
use super::super::select::Candidate;
use super::super::IgnoreReason;
use super::Context;

impl Context<'_, '_> {
    /// The billing of `candidate` for this client (`offer`: for a DHCPOFFER); `Ok(None)` for
    /// a fixed address (ISC skips `STATIC_LEASE`s) or a config without `lease limit`s. No room
    /// in any limited class of the client: no answer.
    /// `added`: the classes `add` statements put the request in, billed after the classes
    /// matched (ISC `ack_lease` bills from the packet's classes once the statements ran).
    pub(super) fn billing(
        &self,
        candidate: &Candidate,
        added: &[crate::config::model::ClassId],
        offer: bool,
        leases: &LeaseStore,
    ) -> Result<Option<BillingDecision>, IgnoreReason> {
        let Candidate::Dynamic { existing, .. } = candidate else {
            return Ok(None);
        };
        let with_added;
        let classification = if added.is_empty() {
            &self.classification
        } else {
            let mut classification = self.classification.clone();
            for class in added {
                if let Some(declared) = self.engine.config.classes.get(class.0 as usize) {
                    classification.classes.push((*class, declared.scope));
                    classification.subclass_data.push(None);
                }
            }
            with_added = classification;
            &with_added
        };
        decide(
            &self.engine.config,
            classification,
            existing.as_ref(),
            offer,
            leases,
            self.billing,
        )
        .map_err(|NoAvailableBilling(class)| IgnoreReason::NoAvailableBilling(class))
    }

    /// The billing check for an address not yet allocated, made before the allocator is
    /// asked: ISC's `allocate_lease` only points at the head of a free queue and `ack_lease`'s
    /// refusal leaves it there, so the next client gets that address; the store's allocator
    /// moves on once asked (as for `Context::dropped_in_every_pool`). A never-used or free
    /// address has no billing to keep, so this is the check `ack_lease` makes for it.
    pub(super) fn billing_allows_new(
        &self,
        offer: bool,
        leases: &LeaseStore,
    ) -> Result<(), IgnoreReason> {
        decide(
            &self.engine.config,
            &self.classification,
            None,
            offer,
            leases,
            self.billing,
        )
        .map(|_| ())
        .map_err(|NoAvailableBilling(class)| IgnoreReason::NoAvailableBilling(class))
    }
}
