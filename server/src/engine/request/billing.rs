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
    pub(super) fn billing(
        &self,
        candidate: &Candidate,
        offer: bool,
        leases: &LeaseStore,
    ) -> Result<Option<BillingDecision>, IgnoreReason> {
        let Candidate::Dynamic { existing, .. } = candidate else {
            return Ok(None);
        };
        decide(
            &self.engine.config,
            &self.classification,
            existing.as_ref(),
            offer,
            leases,
            self.billing,
        )
        .map_err(|NoAvailableBilling(class)| IgnoreReason::NoAvailableBilling(class))
    }
}
