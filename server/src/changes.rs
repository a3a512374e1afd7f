//! The one path every lease change takes after it is decided: the engine's commits, OMAPI
//! updates, the failover partner's binding updates, expiry and kernel renewals all end in
//! [`apply`], which does what each source's [`Effects`] say — the lease-log record (group
//! commit), the partner's BNDUPD, the kernel's copy, the dynamic DNS updates, the lease
//! history, the metrics. A new source of changes names its [`ChangeSource`] and gets the same
//! six; it cannot forget one.
//!
//! Which effects a source has is a plain table ([`ChangeSource::effects`]), tested without I/O.
//! The I/O itself — the committer, the failover drivers' channels, the BPF maps — belongs to the
//! targets the daemon lends ([`ChangeTargets`]).

use crate::failover::hooks::FailoverHooks;
use crate::lease::commit::GroupCommit;
use crate::lease::file::{FailoverStateRecord, FileFormat};
use crate::lease::record::Lease;
use crate::metrics::Metrics;
use crate::xdp::runtime::FastPathRuntime;

/// Where a lease change comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeSource {
    /// The engine's decision on a client's packet (ACK, release, decline, BOOTP, …). Its
    /// records carry the reply that waits for them; the kernel's copy is handled by the
    /// worker as it decides (publish after durable, withdraw at once), see `xdp::runtime`.
    Engine,
    /// A renewal the XDP program answered in the kernel.
    KernelRenewal,
    /// An OMAPI `update` of a lease (omshell: `set state`, `set ends`, …).
    Omapi,
    /// The failover partner's BNDUPD/BNDACK and reconciliation, applied by its driver.
    Partner,
    /// A command of the JSON control API (`lease4-add`, `lease4-update`, `lease4-del`,
    /// `lease4-wipe`, `crate::control_api`). Its HTTP answer says the change is done, so it
    /// waits for the record to be durable.
    ControlApi,
    /// The expiry ticker moved leases past their end.
    Expiry,
    /// A dynamic DNS update finished: the lease variables ISC keeps (`ddns-fwd-name`, …) were
    /// set or unset on the lease (server/ddns.c `ddns_update_lease_text`).
    Ddns,
    /// Another server of the same PostgreSQL lease database changed the lease (its row,
    /// brought by `lease::pg`'s poller or after a lost claim); already durable there.
    Database,
}

/// What a change asks of DNS (dhcpd.conf(5) "DYNAMIC DNS UPDATES").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsEffect {
    /// Nothing.
    None,
    /// Remove the names of leases that are no longer ACTIVE (ISC `ddns_removals` from
    /// `release_lease`, `abandon_lease` and `make_binding_state_transition`).
    Remove,
    /// That, and add the names of ACTIVE leases (ISC `ddns_updates` from `ack_lease`).
    AddAndRemove,
}

/// What applying a change of one source does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Effects {
    /// Append the leases to the lease log (group commit).
    pub record: bool,
    /// Return only once the records are durable: the partner's BNDACK follows the write
    /// (docs/spec/failover.md §7.2, ISC commits before it acknowledges).
    pub wait_durable: bool,
    /// Hand failover-pool leases to their relationship's driver for a BNDUPD
    /// (docs/spec/failover.md §7.2), once their record is durable ([`Durable`]). Not for the
    /// partner's own updates: they would echo.
    pub tell_partner: bool,
    /// Withdraw the kernel's entry of every changed address the store no longer backs: the
    /// kernel may only repeat an ACK the engine would still give.
    pub reconcile_kernel: bool,
    /// Dynamic DNS updates, handed to the updater (never waited for).
    pub dns: DnsEffect,
    /// Lease history events (`crate::history`), queued once the record is durable. Not for
    /// the partner's updates (the partner records its own events) nor DNS results (no lease
    /// event).
    pub history: bool,
}

impl ChangeSource {
    pub const ALL: [ChangeSource; 8] = [
        ChangeSource::Engine,
        ChangeSource::KernelRenewal,
        ChangeSource::Omapi,
        ChangeSource::Partner,
        ChangeSource::Expiry,
        ChangeSource::Ddns,
        ChangeSource::ControlApi,
        ChangeSource::Database,
    ];

    /// The effects of a change from this source.
    pub const fn effects(self) -> Effects {
        match self {
            // The worker withdraws or publishes as it decides (it knows the request's key).
            // DNS: ISC adds at DHCPACK and removes at release and decline.
            ChangeSource::Engine => Effects {
                record: true,
                wait_durable: false,
                tell_partner: true,
                reconcile_kernel: false,
                dns: DnsEffect::AddAndRemove,
                history: true,
            },
            // The kernel itself made the change; its entry moves on with the horizon. DNS: a
            // renewal keeps the name the DHCPACK registered (`update-optimization`).
            ChangeSource::KernelRenewal => Effects {
                record: true,
                wait_durable: false,
                tell_partner: true,
                reconcile_kernel: false,
                dns: DnsEffect::None,
                history: true,
            },
            // DNS: ISC's OMAPI state change goes through `supersede_lease` and
            // `make_binding_state_transition`, which removes the names of a lease leaving
            // ACTIVE; the expiry does the same.
            ChangeSource::Omapi | ChangeSource::Expiry => Effects {
                record: true,
                wait_durable: false,
                tell_partner: true,
                reconcile_kernel: true,
                dns: DnsEffect::Remove,
                history: true,
            },
            // As OMAPI (an operator's change), but the answer promises durability: Kea's
            // lease_cmds answers once the lease back end has stored the lease.
            ChangeSource::ControlApi => Effects {
                record: true,
                wait_durable: true,
                tell_partner: true,
                reconcile_kernel: true,
                dns: DnsEffect::Remove,
                history: true,
            },
            // DNS: the partner's server updates the names of the leases it gives.
            ChangeSource::Partner => Effects {
                record: true,
                wait_durable: true,
                tell_partner: false,
                reconcile_kernel: true,
                dns: DnsEffect::None,
                history: false,
            },
            // Only the variables changed: nothing for the partner (ISC's failover does not
            // carry them), the kernel or DNS.
            ChangeSource::Ddns => Effects {
                record: true,
                wait_durable: false,
                tell_partner: false,
                reconcile_kernel: false,
                dns: DnsEffect::None,
                history: false,
            },
            // The row is the other server's, written and recorded in its history there; this
            // server's kernel must stop answering for a lease it no longer backs.
            ChangeSource::Database => Effects {
                record: false,
                wait_durable: false,
                tell_partner: false,
                reconcile_kernel: true,
                dns: DnsEffect::None,
                history: false,
            },
        }
    }

    /// The Prometheus label value.
    pub const fn label(self) -> &'static str {
        match self {
            ChangeSource::Engine => "engine",
            ChangeSource::KernelRenewal => "kernel_renewal",
            ChangeSource::Omapi => "omapi",
            ChangeSource::Partner => "partner",
            ChangeSource::Expiry => "expiry",
            ChangeSource::Ddns => "ddns",
            ChangeSource::ControlApi => "control_api",
            ChangeSource::Database => "database",
        }
    }
}

/// One batch of changed leases (their state after the change) from one source.
#[derive(Clone, Copy, Debug)]
pub struct LeaseChange<'a> {
    pub source: ChangeSource,
    pub leases: &'a [Lease],
    /// Failover state records written in the same batch (the partner's driver), before the
    /// leases.
    pub failover_states: &'a [FailoverStateRecord],
    /// The DDNS settings of the engine's ACTIVE leases, by address (`Engine::ddns_settings`).
    pub dns_settings: &'a [(std::net::Ipv4Addr, crate::ddns::lease::DdnsSettings)],
    /// The client's request that made an engine change (relay, option 82, message type),
    /// for the lease history.
    pub request: Option<&'a crate::history::RequestContext>,
}

impl<'a> LeaseChange<'a> {
    pub fn new(source: ChangeSource, leases: &'a [Lease]) -> Self {
        Self {
            source,
            leases,
            failover_states: &[],
            dns_settings: &[],
            request: None,
        }
    }
}

/// What waits in the group commit for a record to be durable: the reply that promises its
/// lease, and the failover-pool addresses whose BNDUPD may leave only then — ISC writes a lease
/// before it queues the update (server/mdb.c `supersede_lease`: `write_lease`, then
/// `dhcp_failover_queue_update`), so the partner never knows more than our disk
/// (docs/spec/failover.md §7.2).
#[derive(Debug)]
pub struct Durable<T> {
    pub reply: Option<T>,
    pub partner: Vec<std::net::Ipv4Addr>,
    /// The lease history's events of the record, queued once it is durable (a record that
    /// never reaches the disk made no event).
    pub history: Vec<crate::history::Observed>,
}

impl<T> Durable<T> {
    /// A record nothing waits for.
    pub fn nothing() -> Self {
        Self {
            reply: None,
            partner: Vec::new(),
            history: Vec::new(),
        }
    }
}

/// What [`apply`] acts on: the daemon's committer, failover hooks, fast path and metrics.
pub struct ChangeTargets<'a, T: Send + 'static> {
    pub committer: &'a GroupCommit<Durable<T>>,
    /// `lease-id-format` and `db-time-format`.
    pub file_format: FileFormat,
    pub failover: &'a FailoverHooks,
    pub fast_path: Option<&'a FastPathRuntime>,
    pub metrics: &'a Metrics,
    /// The DDNS updater when `ddns-update-style` is not `none`, with the conflict flags.
    pub dns: Option<(&'a crate::ddns::Updater, crate::ddns::Policy)>,
    /// The lease history's writer, when a history database is configured.
    pub history: Option<&'a crate::history::writer::HistorySink>,
}

/// Applies one change with its source's effects. The record goes to the group commit with
/// `token` (the engine's reply, sent once durable). Returns false when the lease log is gone
/// (the change is then not durable; a reply it carried counts as a commit failure).
pub fn apply<T: Send + 'static>(
    targets: &ChangeTargets<'_, T>,
    change: LeaseChange<'_>,
    token: Option<T>,
) -> bool {
    let effects = change.source.effects();
    if change.leases.is_empty() && change.failover_states.is_empty() {
        return true;
    }
    // First, so that the kernel stops answering for an address the store gave up before
    // anything else can hand it to another client.
    if effects.reconcile_kernel {
        if let Some(fast_path) = targets.fast_path {
            let withdrawn = fast_path.reconcile(change.leases);
            targets.metrics.kernel_withdrawals.add(withdrawn as u64);
        }
    }
    targets
        .metrics
        .count_lease_changes(change.source, change.leases.len());
    let mut durable = true;
    if effects.record {
        let mut record =
            Vec::with_capacity(256 * (change.leases.len() + change.failover_states.len()));
        for state in change.failover_states {
            crate::lease::file::write_failover_state(state, targets.file_format.times, &mut record);
        }
        for lease in change.leases {
            crate::lease::file::write_lease_with(lease, targets.file_format, &mut record);
        }
        let carries_reply = token.is_some();
        // The partner hears of failover-pool leases once they are durable (the committer's
        // `on_durable`); a failed write tells it nothing.
        let partner = if effects.tell_partner {
            targets.failover.failover_addresses(change.leases)
        } else {
            Vec::new()
        };
        let history = match (effects.history, targets.history) {
            (true, Some(_)) => {
                let at = crate::history::writer::now_micros();
                change
                    .leases
                    .iter()
                    .map(|lease| {
                        crate::history::Observed::of(lease, change.source, change.request, at)
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        let waiting = Durable {
            reply: token,
            partner,
            history,
        };
        durable = targets.committer.submit(record, waiting).is_ok();
        // `drops_total{reason="commit_failed"}` counts replies that were not sent (a batch
        // that fails later is counted by the committer's `on_dropped`).
        if !durable && carries_reply {
            targets.metrics.commit_failures.increment();
        }
        if durable && effects.wait_durable {
            durable = targets.committer.flush().is_ok();
        }
    }
    if let (Some((updater, policy)), true) = (targets.dns, effects.dns != DnsEffect::None) {
        let now = crate::clock::unix_now();
        for lease in change.leases {
            let settings = change
                .dns_settings
                .iter()
                .find(|(address, _)| *address == lease.address)
                .map(|(_, settings)| settings);
            let may_add = effects.dns == DnsEffect::AddAndRemove;
            for operation in
                crate::ddns::lease::operations_for_change(lease, settings, may_add, policy, now)
            {
                updater.submit(operation);
            }
        }
    }
    durable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_is_recorded_and_only_the_partner_is_not_told_back() {
        for source in ChangeSource::ALL {
            let effects = source.effects();
            // Another server's change is durable in the database already.
            assert_eq!(
                effects.record,
                source != ChangeSource::Database,
                "{source:?} must reach the lease log"
            );
            assert_eq!(
                effects.tell_partner,
                !matches!(
                    source,
                    ChangeSource::Partner | ChangeSource::Ddns | ChangeSource::Database
                )
            );
            assert_eq!(
                effects.wait_durable,
                matches!(source, ChangeSource::Partner | ChangeSource::ControlApi)
            );
            assert_eq!(
                effects.history,
                !matches!(
                    source,
                    ChangeSource::Partner | ChangeSource::Ddns | ChangeSource::Database
                ),
                "{source:?}: every lease event of this server is in the history, once"
            );
        }
    }

    #[test]
    fn dns_is_updated_as_isc_does() {
        let dns: Vec<(ChangeSource, DnsEffect)> = ChangeSource::ALL
            .into_iter()
            .map(|source| (source, source.effects().dns))
            .collect();
        assert_eq!(
            dns,
            [
                (ChangeSource::Engine, DnsEffect::AddAndRemove),
                (ChangeSource::KernelRenewal, DnsEffect::None),
                (ChangeSource::Omapi, DnsEffect::Remove),
                (ChangeSource::Partner, DnsEffect::None),
                (ChangeSource::Expiry, DnsEffect::Remove),
                (ChangeSource::Ddns, DnsEffect::None),
                (ChangeSource::ControlApi, DnsEffect::Remove),
                (ChangeSource::Database, DnsEffect::None),
            ]
        );
    }

    #[test]
    fn changes_made_outside_the_engine_and_the_kernel_reconcile_the_kernel() {
        let reconciled: Vec<ChangeSource> = ChangeSource::ALL
            .into_iter()
            .filter(|source| source.effects().reconcile_kernel)
            .collect();
        assert_eq!(
            reconciled,
            [
                ChangeSource::Omapi,
                ChangeSource::Partner,
                ChangeSource::Expiry,
                ChangeSource::ControlApi,
                ChangeSource::Database
            ]
        );
    }
}
