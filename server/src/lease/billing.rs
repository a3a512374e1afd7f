//! Billing of leases to classes (dhcpd.conf(5) "PER-CLASS LIMITS ON DYNAMIC LEASES"): which
//! class or subclass a lease is billed to, how the lease file says it, and the counts of
//! billed leases that the `lease limit` of a class is checked against.
//!
//! The lease record is the truth ([`crate::lease::record::LeaseExtra::billing`]); each store
//! shard counts its billed leases in an index kept on every lease change (`LeaseStore`), and
//! [`BillingTotals`] adds up what the shards reported, so that a class whose leases sit in
//! several shards is limited as a whole (`lease::shards`).

use std::collections::HashMap;

use super::record::{BindingState, Lease};

/// What a lease is billed to (ISC `lease->billing_class`): a class by name, or one of its
/// subclasses (declared or spawned) by its data. Names, not indices, so that a billing
/// outlives a reload of the config that numbered the classes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Billing {
    /// The class, or the subclass's class (ISC's superclass).
    pub class: Box<str>,
    /// The subclass's data (its `subclass "NAME" DATA`, or the spawned value).
    pub subclass: Option<Box<[u8]>>,
}

impl Billing {
    pub fn class(name: &str) -> Self {
        Self {
            class: name.into(),
            subclass: None,
        }
    }

    pub fn subclass(name: &str, data: &[u8]) -> Self {
        Self {
            class: name.into(),
            subclass: Some(data.into()),
        }
    }

    /// The lease-file statement, without the indentation and newline: `billing class "NAME";`
    /// or `billing subclass "NAME" DATA;`, DATA quoted when printable, else colon-hex (ISC
    /// server/db.c `write_billing_class`, `print_hash_string`).
    pub fn write_into(&self, out: &mut Vec<u8>) {
        use super::file::write::{hex_into, quote_into};
        match &self.subclass {
            None => {
                out.extend_from_slice(b"billing class ");
                quote_into(self.class.as_bytes(), out);
            }
            Some(data) => {
                out.extend_from_slice(b"billing subclass ");
                quote_into(self.class.as_bytes(), out);
                out.push(b' ');
                if !data.is_empty() && data.iter().all(|byte| (0x20..=0x7e).contains(byte)) {
                    quote_into(data, out);
                } else {
                    hex_into(data, out);
                }
            }
        }
        out.push(b';');
    }
}

/// True when a lease in `state` may stay billed: ISC bills a lease read from the lease file
/// only in these states (server/mdb.c `lease_instantiate`), and its state transitions unbill a
/// lease that leaves ACTIVE for FREE, BACKUP or ABANDONED (`make_binding_state_transition`;
/// under failover a lease stays billed through EXPIRED and RELEASED until it is FREE).
pub fn billable(state: BindingState) -> bool {
    matches!(
        state,
        BindingState::Active | BindingState::Expired | BindingState::Released | BindingState::Reset
    )
}

/// The billing `lease` holds, if it may hold one in its state.
pub fn billing_of(lease: &Lease) -> Option<&Billing> {
    lease
        .extra
        .as_deref()
        .and_then(|extra| extra.billing.as_ref())
        .filter(|_| billable(lease.binding_state))
}

/// Drops the billing of a lease whose state may not keep one (see [`billable`]).
pub fn settle(lease: &mut Lease) {
    if billable(lease.binding_state) {
        return;
    }
    if let Some(extra) = lease.extra.as_mut() {
        if extra.billing.take().is_some() {
            lease.shrink_extra();
        }
    }
}

/// The `lease limit` of what `billing` names in `config`: a subclass's own (a declared one's,
/// else its class's, as ISC gives a subclass re-created from the lease file), else the
/// class's; `None` when the class is not declared.
pub fn limit_of(config: &crate::config::model::Config, billing: &Billing) -> Option<u32> {
    let class = config
        .classes
        .iter()
        .find(|class| *class.name == *billing.class)?;
    Some(match &billing.subclass {
        Some(data) => class
            .subclass(data)
            .map_or(class.lease_limit, |subclass| subclass.lease_limit),
        None => class.lease_limit,
    })
}

/// Changes of billed-lease counts one store made since it last reported them.
pub type BillingDeltas = HashMap<Billing, i64>;

/// The billed leases of every class and subclass, as the store's shards reported them
/// ([`crate::lease::store::LeaseStore::take_billing_deltas`]). A shard's own changes since its
/// last report are added by the reader (`LeaseStore::billed`).
#[derive(Clone, Debug, Default)]
pub struct BillingTotals {
    counts: HashMap<Billing, i64>,
}

impl BillingTotals {
    /// Billed leases of `billing` that the shards reported.
    pub fn get(&self, billing: &Billing) -> i64 {
        self.counts.get(billing).copied().unwrap_or(0)
    }

    /// Adds one shard's report.
    pub fn add(&mut self, deltas: BillingDeltas) {
        use std::collections::hash_map::Entry;
        for (billing, delta) in deltas {
            match self.counts.entry(billing) {
                Entry::Occupied(mut entry) => {
                    *entry.get_mut() += delta;
                    if *entry.get() == 0 {
                        entry.remove();
                    }
                }
                Entry::Vacant(entry) => {
                    if delta != 0 {
                        entry.insert(delta);
                    }
                }
            }
        }
    }

    /// The classes and subclasses with billed leases, and how many (tests, metrics).
    pub fn iter(&self) -> impl Iterator<Item = (&Billing, i64)> + '_ {
        self.counts.iter().map(|(billing, &count)| (billing, count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn lease_file_statements_are_written_as_isc_writes_them() {
        let mut out = Vec::new();
        Billing::class("vip").write_into(&mut out);
        assert_eq!(out, b"billing class \"vip\";");
        out.clear();
        Billing::subclass("modems", b"cm-1").write_into(&mut out);
        assert_eq!(out, b"billing subclass \"modems\" \"cm-1\";");
        out.clear();
        Billing::subclass("c", &[1, 2, 0, 0xab]).write_into(&mut out);
        assert_eq!(out, b"billing subclass \"c\" 01:02:00:ab;");
    }

    #[test]
    fn only_bound_states_keep_their_billing() {
        let mut lease = Lease::free(Ipv4Addr::new(10, 0, 0, 5));
        lease.binding_state = BindingState::Active;
        lease.extra_mut().billing = Some(Billing::class("c"));
        settle(&mut lease);
        assert!(billing_of(&lease).is_some());
        lease.binding_state = BindingState::Free;
        assert!(billing_of(&lease).is_none());
        settle(&mut lease);
        assert!(lease.extra.is_none());
    }

    #[test]
    fn totals_add_reports_and_forget_zeroes() {
        let mut totals = BillingTotals::default();
        let key = Billing::subclass("m", b"a");
        totals.add(BillingDeltas::from([(key.clone(), 2)]));
        assert_eq!(totals.get(&key), 2);
        totals.add(BillingDeltas::from([(key.clone(), -2)]));
        assert_eq!(totals.get(&key), 0);
        assert_eq!(totals.iter().count(), 0);
    }
}
