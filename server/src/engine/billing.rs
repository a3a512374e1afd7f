//! Per-class lease limits (dhcpd.conf(5) "PER-CLASS LIMITS ON DYNAMIC LEASES"), as ISC
//! `ack_lease` (server/dhcp.c) applies them to a dynamic lease it is about to offer or
//! acknowledge, once some class says `lease limit` (ISC `have_billing_classes`):
//!
//! 1. a lease billed to a class (or subclass) the client is no longer in is unbilled;
//! 2. a lease not billed is billed to the first of the client's classes, in the order it
//!    matched them, that has a limit and room under it (ISC `bill_class`);
//! 3. when some of its classes have limits and none has room, the request gets no answer at all
//!    ("no available billing: lease limit reached in all matching classes");
//! 4. a DHCPOFFER of a lease that is not ACTIVE bills nothing (ISC undoes the billing: the
//!    DHCPREQUEST bills again), and a lease whose billing changed is not answered from as it
//!    stands (`dhcp-cache-threshold` reuse, ISC `cannot_reuse`).
//!
//! A subclass the client is in — declared, or spawned for its data by `spawn with` — is billed
//! as itself, with its own limit (a spawned one has its class's); the count of a class or
//! subclass is the store's billing index (`lease::billing`), never a scan.

use crate::config::model::{ClassId, Config};
use crate::lease::billing::{billing_of, Billing, BillingTotals};
use crate::lease::record::{BindingState, Lease};
use crate::lease::store::LeaseStore;

use super::classify::Classification;

/// What `ack_lease` decided for the billing of a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BillingDecision {
    /// The lease's billing from now on.
    pub billing: Option<Billing>,
    /// It differs from what the lease had.
    pub changed: bool,
}

impl BillingDecision {
    /// ISC `cannot_reuse` after a billing change: the lease is acknowledged anew.
    pub fn allows_reuse(&self) -> bool {
        !self.changed
    }

    /// Writes the billing into the lease about to be bound.
    pub fn apply_to(&self, lease: &mut Lease) {
        if self.billing.is_none() && lease.extra.is_none() {
            return;
        }
        lease.extra_mut().billing = self.billing.clone();
        lease.shrink_extra();
    }
}

/// No class had room for the lease: the class of the last limit tried (ISC logs its name, the
/// subclass's class for a subclass).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoAvailableBilling(pub ClassId);

/// The lease limit of the client's `index`-th class: a subclass's own (declared or, spawned,
/// its class's), else the class's. 0 is no limit.
fn limit(config: &Config, class: ClassId, subclass: Option<&[u8]>) -> u32 {
    let Some(class) = config.classes.get(class.0 as usize) else {
        return 0;
    };
    match subclass {
        Some(data) => class
            .subclass(data)
            .map_or(class.lease_limit, |subclass| subclass.lease_limit),
        None => class.lease_limit,
    }
}

/// What the client's `index`-th class bills to.
fn billing_key(config: &Config, classification: &Classification, index: usize) -> Option<Billing> {
    let (class, _) = classification.classes.get(index)?;
    let name = &config.classes.get(class.0 as usize)?.name;
    Some(
        match classification
            .subclass_data
            .get(index)
            .and_then(Option::as_deref)
        {
            Some(data) => Billing::subclass(name, data),
            None => Billing::class(name),
        },
    )
}

/// ISC `ack_lease`'s billing of the dynamic lease `existing` (`None`: a never-used address)
/// for a client in `classification`'s classes, counting with `leases` and the other shards'
/// `totals`. `offer`: for a DHCPOFFER. `Ok(None)` when no class has a limit.
pub(crate) fn decide(
    config: &Config,
    classification: &Classification,
    existing: Option<&Lease>,
    offer: bool,
    leases: &LeaseStore,
    totals: &BillingTotals,
) -> Result<Option<BillingDecision>, NoAvailableBilling> {
    if !config.billing_classes {
        return Ok(None);
    }
    let current = existing.and_then(billing_of);
    let keys: Vec<Option<Billing>> = (0..classification.classes.len())
        .map(|index| billing_key(config, classification, index))
        .collect();
    // Still in the class it is billed to: it stays billed there, whatever the count.
    if let Some(current) = current {
        if keys.iter().flatten().any(|key| key == current) {
            return Ok(Some(BillingDecision {
                billing: Some(current.clone()),
                changed: false,
            }));
        }
    }
    let mut last_tried = None;
    let mut billed = None;
    for (index, key) in keys.into_iter().enumerate() {
        let (class, _) = classification.classes[index];
        let data = classification.subclass_data[index].as_deref();
        let limit = u64::from(limit(config, class, data));
        let Some(key) = key.filter(|_| limit != 0) else {
            continue;
        };
        last_tried = Some(class);
        if leases.billed(&key, totals) < limit {
            billed = Some(key);
            break;
        }
    }
    if billed.is_none() {
        if let Some(class) = last_tried {
            return Err(NoAvailableBilling(class));
        }
    }
    // An OFFER of a lease that is not bound bills nothing yet (the REQUEST bills it again).
    let active = existing.is_some_and(|lease| lease.binding_state == BindingState::Active);
    if offer && !active {
        billed = None;
    }
    Ok(Some(BillingDecision {
        changed: billed.as_ref() != current,
        billing: billed,
    }))
}
