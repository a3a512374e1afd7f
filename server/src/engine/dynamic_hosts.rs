//! Host declarations added at run time (OMAPI `host` objects, docs/spec/omapi.md §8.2) and rubouts of
//! dhcpd.conf hosts, consulted by [`super::classify`] after the configuration's own hosts, as
//! ISC's host hash holds both.
//!
//! The engine reads one immutable generation, a [`HostSet`], that the driver takes from the
//! shared table (`crate::host_table::DynamicHosts`, written by OMAPI) once per batch and passes
//! in the engine's `Snapshot`.

use std::sync::Arc;

use crate::config::model::{HardwareAddress, Host, Scope, ScopeId};
use crate::lease::file::HostRecord;

/// A host added at run time: its declaration, and the scope its `statements` describe (empty
/// without statements). The scope is the most specific one for the client, as a dhcpd.conf
/// host's own scope is (dhcpd.conf(5): host > class > pool > subnet > shared-network > global).
#[derive(Clone, Debug, PartialEq)]
pub struct DynamicHost {
    pub host: Host,
    pub scope: Scope,
}

/// One immutable generation of the table.
#[derive(Clone, Debug, Default)]
pub struct HostSet {
    /// Hosts created over OMAPI (or read back from dhcpd.leases), in creation order.
    pub hosts: Vec<Arc<DynamicHost>>,
    /// Names of dhcpd.conf hosts deleted over OMAPI (`deleted;` rubouts): they no longer match.
    pub deleted: Vec<String>,
    /// What a compacted dhcpd.leases must hold: every live dynamic host, and the rubouts of
    /// dhcpd.conf hosts (docs/spec/dhcpd-conf.md §8.5).
    pub records: Vec<HostRecord>,
}

/// The engine's view of a persisted host record. The declaration's `scope` is the global one
/// (which adds nothing above the subnet's in a [`super::scope::ScopeStack`]); the host's own
/// options and parameters are [`DynamicHost::scope`], parsed from the record's statements.
pub fn host_from_record(record: &HostRecord) -> DynamicHost {
    DynamicHost {
        host: Host {
            name: record.name.clone(),
            scope: ScopeId::GLOBAL,
            hardware: record.hardware.map(|hardware| HardwareAddress {
                htype: hardware.htype,
                address: hardware.address().to_vec(),
            }),
            client_id: record.uid.clone(),
            fixed_addresses: record.fixed_addresses.clone(),
        },
        scope: statements_scope(&record.name, &record.statements),
    }
}

/// The scope of a host record's statements. OMAPI checks them at create time; a record read
/// back from a (possibly hand-edited, or ISC-written) dhcpd.leases keeps the statements that
/// parse, as ISC's reader skips a bad statement and keeps the rest.
pub fn statements_scope(name: &str, statements: &[String]) -> Scope {
    if statements.is_empty() {
        return Scope::default();
    }
    let label = format!("host {name} statements");
    match crate::config::parse_statements(&statements.join("\n"), &label) {
        Ok(parsed) => parsed.scope,
        Err(_) => {
            let good: Vec<&str> = statements
                .iter()
                .filter(|statement| crate::config::parse_statements(statement, &label).is_ok())
                .map(String::as_str)
                .collect();
            crate::config::parse_statements(&good.join("\n"), &label)
                .map(|parsed| parsed.scope)
                .unwrap_or_default()
        }
    }
}

impl HostSet {
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.deleted.is_empty()
    }

    pub fn is_deleted(&self, name: &str) -> bool {
        self.deleted.iter().any(|deleted| deleted == name)
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<DynamicHost>> {
        self.hosts.iter().find(|dynamic| dynamic.host.name == name)
    }

    pub fn record(&self, name: &str) -> Option<&HostRecord> {
        self.records
            .iter()
            .find(|record| record.name == name && !record.deleted)
    }

    /// Applies one record as the lease file reader would: a later record of a name replaces
    /// the earlier one; a rubout removes it, and hides a dhcpd.conf host of that name when
    /// `configured` says there is one.
    pub fn apply(&mut self, record: HostRecord, configured: bool) {
        self.hosts
            .retain(|dynamic| dynamic.host.name != record.name);
        self.records.retain(|old| old.name != record.name);
        self.deleted.retain(|name| *name != record.name);
        if record.deleted {
            if configured {
                self.deleted.push(record.name.clone());
                self.records.push(record);
            }
        } else {
            self.hosts.push(Arc::new(host_from_record(&record)));
            self.records.push(record);
        }
    }
}
