//! The objects dhcpd publishes over OMAPI (docs/spec/omapi.md §8): `lease`, `host`, `control` and
//! `failover-state`, with ISC's lookup keys, attribute names, encodings and order, and the
//! server-wide handle table (docs/spec/omapi.md §5: handles start at 1, are shared by all connections and
//! never reused).
//!
//! Changes reach the lease store and the dynamic host table at once and are persisted through
//! the caller's `persist` hook (the daemon's group commit) in dhcpd.leases format.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use crate::config::model::Config;
use crate::host_table::DynamicHosts;
use crate::lease::file::{write_host, HostRecord};
use crate::lease::record::{flags, BindingState, Hardware, Lease, UnixTime};
use crate::lease::shards::{ShardGuard, ShardedStore};

use super::result::{ResultCode, Status};
use super::wire::{find, Value};

/// Something the server can name by handle.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ObjectRef {
    /// A key, by lower-cased name.
    Authenticator(String),
    Lease(Ipv4Addr),
    /// A host by name (dhcpd.conf or dynamic).
    Host(String),
    Control,
    Subnet(u32),
    Pool(u32),
    FailoverState(Vec<u8>),
}

/// The failover machine's side of the `failover-state` object (docs/spec/omapi.md §8.5). The failover
/// module implements it; until then [`NoFailover`] answers "not found" like ISC does for an
/// unconfigured relationship.
pub trait FailoverStates: Send + Sync {
    /// The published attributes of relationship `name`, in ISC's order, or `None`.
    fn lookup(&self, name: &[u8]) -> Option<Vec<Value>>;
    /// `set local-state = N` + `update`: force the local state (e.g. 4 = partner-down).
    fn set_local_state(&self, name: &[u8], state: u32) -> Result<(), ResultCode>;
}

/// No failover machine attached: every relationship is unknown.
#[derive(Debug, Default)]
pub struct NoFailover;

impl FailoverStates for NoFailover {
    fn lookup(&self, _name: &[u8]) -> Option<Vec<Value>> {
        None
    }

    fn set_local_state(&self, _name: &[u8], _state: u32) -> Result<(), ResultCode> {
        Err(ResultCode::NOTFOUND)
    }
}

/// OPEN's message values (docs/spec/omapi.md §4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenFlags {
    pub create: bool,
    pub exclusive: bool,
    pub update: bool,
}

#[derive(Debug, Default)]
struct Handles {
    by_object: HashMap<ObjectRef, u32>,
    by_handle: HashMap<u32, ObjectRef>,
    last: u32,
}

/// Where an updated lease goes (the daemon: `crate::changes::apply` with the OMAPI source — its
/// record, the partner's BNDUPD and the kernel's copy).
pub type LeaseChanged = Box<dyn Fn(&[Lease]) + Send + Sync>;

/// Everything OMAPI operates on, shared by all connections.
pub struct Objects {
    config: Arc<Config>,
    leases: Arc<ShardedStore>,
    hosts: Arc<DynamicHosts>,
    persist: Box<dyn Fn(Vec<u8>) + Send + Sync>,
    lease_changed: LeaseChanged,
    shutdown: Box<dyn Fn() + Send + Sync>,
    failover: Box<dyn FailoverStates>,
    handles: Mutex<Handles>,
}

const NOT_FOUND: Status = Status::new(ResultCode::NOTFOUND, "no object matches specification");
const LOOKUP_FAILED: &str = "object lookup failed";
const CANT_UPDATE: &str = "can't update object";
const CANT_CREATE: &str = "can't create new object";

impl Objects {
    /// `persist` receives dhcpd.leases host records (the daemon submits them to its group
    /// commit); `lease_changed` the leases an update changed; `shutdown` starts a graceful stop
    /// (control `state` = 2).
    pub fn new(
        config: Arc<Config>,
        leases: Arc<ShardedStore>,
        hosts: Arc<DynamicHosts>,
        persist: Box<dyn Fn(Vec<u8>) + Send + Sync>,
        lease_changed: LeaseChanged,
        shutdown: Box<dyn Fn() + Send + Sync>,
        failover: Box<dyn FailoverStates>,
    ) -> Self {
        Self {
            config,
            leases,
            hosts,
            persist,
            lease_changed,
            shutdown,
            failover,
            handles: Mutex::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The handle of `object`, assigned on first use (ISC `omapi_object_handle`).
    pub fn handle_of(&self, object: ObjectRef) -> u32 {
        let mut handles = match self.handles.lock() {
            Ok(handles) => handles,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(handle) = handles.by_object.get(&object) {
            return *handle;
        }
        handles.last = handles.last.wrapping_add(1).max(1);
        let handle = handles.last;
        handles.by_object.insert(object.clone(), handle);
        handles.by_handle.insert(handle, object);
        handle
    }

    pub fn object(&self, handle: u32) -> Option<ObjectRef> {
        let handles = match self.handles.lock() {
            Ok(handles) => handles,
            Err(poisoned) => poisoned.into_inner(),
        };
        handles.by_handle.get(&handle).cloned()
    }

    /// The store shard holding `address` (`lease::shards`); `None` once the store is unusable.
    fn shard(&self, address: Ipv4Addr) -> Option<ShardGuard<'_>> {
        self.leases.lock_address(address).ok()
    }

    /// The address of the one lease `matches` picks, looking at one shard at a time: ISC's
    /// `dhcp_lease_lookup` answers `DHCP_R_MULTIPLE` for a uid or hardware hash chain of more
    /// than one lease (docs/spec/omapi.md §8.1). The store's indices keep only the most recent
    /// binding per shard, so the leases are scanned; OMAPI lookups are rare next to DHCP
    /// traffic, and the scan stops at the second match.
    fn the_lease_matching(
        &self,
        matches: impl Fn(&Lease) -> bool,
    ) -> Result<Option<Ipv4Addr>, ResultCode> {
        let mut found: Vec<Ipv4Addr> = Vec::new();
        self.leases
            .for_each(|_, store| {
                for lease in store.iter().filter(|lease| matches(lease)) {
                    if found.len() < 2 && !found.contains(&lease.address) {
                        found.push(lease.address);
                    }
                }
            })
            .map_err(|_| ResultCode::NOTFOUND)?;
        match found.as_slice() {
            [] => Ok(None),
            [only] => Ok(Some(*only)),
            _ => Err(ResultCode::MULTIPLE),
        }
    }

    /// OPEN of a registered type (docs/spec/omapi.md §5 step 3): lookup, optional create, optional
    /// update; answers the object's handle and published values.
    pub fn open(
        &self,
        kind: &[u8],
        keys: &[Value],
        open: OpenFlags,
        now: UnixTime,
    ) -> Result<(u32, Vec<Value>), Status> {
        let found = match kind {
            b"lease" => self.lookup_lease(keys),
            b"host" => self.lookup_host(keys),
            b"control" => Ok(ObjectRef::Control),
            b"failover-state" => {
                let name = find(keys, "name").map(|value| value.value.clone());
                match name {
                    Some(name) if self.failover.lookup(&name).is_some() => {
                        Ok(ObjectRef::FailoverState(name))
                    }
                    Some(_) => Err(ResultCode::NOTFOUND),
                    None => Err(ResultCode::NOKEYS),
                }
            }
            // Runtime groups and classes are not kept: nothing to find.
            b"group" | b"class" | b"subclass" => Err(ResultCode::NOTFOUND),
            _ => {
                return Err(Status::new(
                    ResultCode::NOTIMPLEMENTED,
                    "unsearchable object type",
                ))
            }
        };
        let object = match found {
            Ok(object) => {
                if open.create && open.exclusive {
                    return Err(Status::new(
                        ResultCode::EXISTS,
                        "specified object already exists",
                    ));
                }
                if open.create || open.update {
                    self.update_object(&object, keys, now)
                        .map_err(|code| Status::new(code, CANT_UPDATE))?;
                }
                object
            }
            Err(ResultCode::NOTFOUND | ResultCode::NOKEYS) if open.create => {
                if kind != b"host" {
                    let code = match kind {
                        b"control" => ResultCode::NOPERM,
                        _ => ResultCode::NOTIMPLEMENTED,
                    };
                    return Err(Status::new(code, CANT_CREATE));
                }
                self.create_host(keys, now)
                    .map_err(|code| Status::new(code, CANT_UPDATE))?
            }
            Err(ResultCode::NOTFOUND | ResultCode::NOKEYS) => return Err(NOT_FOUND),
            Err(code) => return Err(Status::new(code, LOOKUP_FAILED)),
        };
        let handle = self.handle_of(object.clone());
        let values = self
            .publish(&object)
            .ok_or(Status::new(ResultCode::NOTFOUND, "no matching handle"))?;
        Ok((handle, values))
    }

    /// The published attributes of the object behind `handle` (REFRESH, docs/spec/omapi.md §5 step 4).
    pub fn refresh(&self, handle: u32) -> Option<Vec<Value>> {
        self.publish(&self.object(handle)?)
    }

    /// UPDATE of the object behind `handle` (docs/spec/omapi.md §5 step 5).
    pub fn update(&self, handle: u32, values: &[Value], now: UnixTime) -> Result<(), Status> {
        let object = self
            .object(handle)
            .ok_or(Status::new(ResultCode::NOTFOUND, "no matching handle"))?;
        match object {
            // ISC's `omapi_object_update` ends by setting `remote-handle` to the request's header
            // handle; on a lease that lands in its binding scope as a numeric variable, written
            // to the lease file as `set remote-handle = %N;` (docs/spec/omapi.md §8.1 quirk, [lab]).
            ObjectRef::Lease(address) => self.update_lease(address, values, Some(handle)),
            object => self.update_object(&object, values, now),
        }
        .map_err(|code| Status::new(code, CANT_UPDATE))
    }

    /// DELETE of the object behind `handle` (docs/spec/omapi.md §5 step 6).
    pub fn remove(&self, handle: u32) -> Result<(), Status> {
        let object = self
            .object(handle)
            .ok_or(Status::new(ResultCode::NOTFOUND, "no matching handle"))?;
        match object {
            ObjectRef::Host(name) => self.remove_host(&name).map_err(Status::bare),
            ObjectRef::Control => Err(Status::bare(ResultCode::NOPERM)),
            // Leases cannot be destroyed ([lab] "can't destroy object: not implemented").
            ObjectRef::Lease(_) | ObjectRef::FailoverState(_) => {
                Err(Status::bare(ResultCode::NOTIMPLEMENTED))
            }
            ObjectRef::Authenticator(_) | ObjectRef::Subnet(_) | ObjectRef::Pool(_) => Err(
                Status::new(ResultCode::NOTIMPLEMENTED, "no remove method for object"),
            ),
        }
    }

    fn publish(&self, object: &ObjectRef) -> Option<Vec<Value>> {
        match object {
            ObjectRef::Lease(address) => {
                let store = self.shard(*address)?;
                let lease = store.get(*address)?.clone();
                let pool = store.pool_of(*address);
                drop(store);
                Some(self.lease_values(&lease, pool.map(|pool| pool.0)))
            }
            ObjectRef::Host(name) => self.host_record(name).map(|record| host_values(&record)),
            ObjectRef::Control => Some(vec![Value::u32("state", 0)]),
            ObjectRef::FailoverState(name) => self.failover.lookup(name),
            ObjectRef::Pool(pool) => {
                let pool = crate::config::model::PoolId(*pool);
                let free = self
                    .leases
                    .lock_pool(pool)
                    .map_or(0, |store| store.free_count(pool));
                Some(vec![Value::u32("free-leases", free as u32)])
            }
            ObjectRef::Subnet(_) => Some(Vec::new()),
            ObjectRef::Authenticator(_) => None,
        }
    }

    fn update_object(
        &self,
        object: &ObjectRef,
        values: &[Value],
        now: UnixTime,
    ) -> Result<(), ResultCode> {
        match object {
            // OPEN with `update` passes no handle: no `remote-handle` (docs/spec/omapi.md §8.1).
            ObjectRef::Lease(address) => self.update_lease(*address, values, None),
            ObjectRef::Host(name) => self.update_host(name, values, now),
            ObjectRef::Control => {
                for value in values {
                    if value.name == b"state" {
                        // dhcp_set_control_state: only "shutdown" (2) does anything.
                        match value.as_u32() {
                            Some(2) => (self.shutdown)(),
                            _ => return Err(ResultCode::INVALIDARG),
                        }
                    }
                }
                Ok(())
            }
            ObjectRef::FailoverState(name) => {
                for value in values {
                    if value.name == b"local-state" {
                        let state = value.as_u32().ok_or(ResultCode::INVALIDARG)?;
                        self.failover.set_local_state(name, state)?;
                    }
                }
                Ok(())
            }
            ObjectRef::Authenticator(_) => Err(ResultCode::NOPERM),
            ObjectRef::Subnet(_) | ObjectRef::Pool(_) => Err(ResultCode::NOTIMPLEMENTED),
        }
    }

    // ---- lease (docs/spec/omapi.md §8.1) ----

    fn lookup_lease(&self, keys: &[Value]) -> Result<ObjectRef, ResultCode> {
        let mut found: Option<Ipv4Addr> = None;
        let mut merge = |address: Option<Ipv4Addr>| -> Result<(), ResultCode> {
            let address = address.ok_or(ResultCode::NOTFOUND)?;
            match found {
                Some(other) if other != address => Err(ResultCode::KEYCONFLICT),
                _ => {
                    found = Some(address);
                    Ok(())
                }
            }
        };
        for key in keys {
            match key.name.as_slice() {
                b"ip-address" => {
                    let octets: [u8; 4] = key
                        .value
                        .as_slice()
                        .try_into()
                        .map_err(|_| ResultCode::INVALIDARG)?;
                    let address = Ipv4Addr::from(octets);
                    let known = self
                        .shard(address)
                        .and_then(|store| store.get(address).map(|lease| lease.address));
                    merge(known)?;
                }
                b"dhcp-client-identifier" => {
                    // dhcp_lease_lookup: a uid hash chain of more than one lease is
                    // `DHCP_R_MULTIPLE` (docs/spec/omapi.md §8.1).
                    merge(self.the_lease_matching(|lease| lease.uid() == Some(&key.value[..]))?)?;
                }
                b"hardware-address" => {
                    let hardware = lookup_hardware(keys, &key.value)?;
                    // Same rule for the hardware hash chain ([lab]: two leases of one MAC with
                    // different client ids → "more than one object matches key").
                    merge(
                        self.the_lease_matching(|lease| {
                            lease.hardware.as_ref() == Some(&hardware)
                        })?,
                    )?;
                }
                _ => {}
            }
        }
        found.map(ObjectRef::Lease).ok_or(ResultCode::NOKEYS)
    }

    fn lease_values(&self, lease: &Lease, pool: Option<u32>) -> Vec<Value> {
        let mut values = vec![
            Value::u32("state", lease.binding_state as u32),
            Value::new("ip-address", lease.address.octets().to_vec()),
        ];
        if let Some(uid) = lease.uid() {
            values.push(Value::new("dhcp-client-identifier", uid.to_vec()));
        }
        if let Some(name) = lease.client_hostname() {
            values.push(Value::new("client-hostname", name.as_bytes().to_vec()));
        }
        if let Some(subnet) = self.config.subnet_for(lease.address) {
            let handle = self.handle_of(ObjectRef::Subnet(subnet.0));
            values.push(Value::u32("subnet", handle));
        }
        if let Some(pool) = pool {
            let handle = self.handle_of(ObjectRef::Pool(pool));
            values.push(Value::u32("pool", handle));
        }
        if let Some(hardware) = &lease.hardware {
            values.push(Value::new("hardware-address", hardware.address().to_vec()));
            values.push(Value::u32("hardware-type", u32::from(hardware.htype)));
        }
        for (name, time) in [
            ("ends", lease.ends),
            ("starts", lease.starts),
            ("tstp", lease.tstp),
            ("tsfp", lease.tsfp),
            ("atsfp", lease.atsfp),
            ("cltt", lease.cltt),
        ] {
            values.push(Value::u32(name, time));
        }
        values.push(Value::new("flags", vec![isc_flags(lease.flags)]));
        if let Some(extra) = &lease.extra {
            // Numeric variables (`%N`, e.g. `remote-handle`) are not published: [lab] ISC wrote
            // `set remote-handle = %2;` to the lease file but never returned it in a reply.
            for (name, text) in extra.variables.iter().filter(|(_, text)| !is_numeric(text)) {
                values.push(Value::new(name, variable_bytes(text)));
            }
        }
        values
    }

    /// Applies a client's values to a lease; `remote_handle` is the UPDATE's header handle
    /// (None for OPEN with `update`).
    fn update_lease(
        &self,
        address: Ipv4Addr,
        values: &[Value],
        remote_handle: Option<u32>,
    ) -> Result<(), ResultCode> {
        let mut store = self.shard(address).ok_or(ResultCode::NOTFOUND)?;
        let mut lease = store.get(address).ok_or(ResultCode::NOTFOUND)?.clone();
        let before = lease.clone();
        for value in values {
            match value.name.as_slice() {
                b"state" => {
                    let state = value
                        .as_u32()
                        .and_then(binding_state)
                        .ok_or(ResultCode::INVALIDARG)?;
                    if state != lease.binding_state {
                        lease.binding_state = state;
                        lease.next_binding_state = match state {
                            BindingState::Active => BindingState::Free,
                            other => other,
                        };
                    }
                }
                b"ends" => {
                    lease.ends = value.as_u32().ok_or(ResultCode::INVALIDARG)?;
                    lease.flags &= !flags::HORIZON;
                }
                b"flags" => {
                    let bits = match value.value.as_slice() {
                        [bits] => *bits,
                        [0, 0, 0, bits] => *bits,
                        _ => return Err(ResultCode::INVALIDARG),
                    };
                    lease.flags = (lease.flags & !(flags::BOOTP | flags::RESERVED))
                        | if bits & 0x02 != 0 { flags::BOOTP } else { 0 }
                        | if bits & 0x04 != 0 { flags::RESERVED } else { 0 };
                }
                b"ip-address" | b"starts" | b"pool" => return Err(ResultCode::NOPERM),
                b"subnet" => return Err(ResultCode::INVALIDARG),
                b"dhcp-client-identifier"
                | b"client-hostname"
                | b"host"
                | b"billing-class"
                | b"hardware-address"
                | b"hardware-type"
                | b"tstp"
                | b"tsfp"
                | b"atsfp"
                | b"cltt" => {}
                name => {
                    // Any other name is a lease variable, persisted as `set NAME = VALUE;`.
                    let name = std::str::from_utf8(name)
                        .ok()
                        .filter(|name| valid_variable_name(name))
                        .ok_or(ResultCode::INVALIDARG)?;
                    let text = (!value.value.is_empty()).then(|| variable_text(&value.value));
                    set_variable(&mut lease, name, text);
                }
            }
        }
        if let Some(handle) = remote_handle {
            set_variable(&mut lease, "remote-handle", Some(format!("%{handle}")));
        }
        if lease == before {
            return Ok(());
        }
        store.upsert(lease.clone());
        drop(store);
        (self.lease_changed)(std::slice::from_ref(&lease));
        Ok(())
    }

    // ---- host (docs/spec/omapi.md §8.2) ----

    /// Every live host record, dynamic ones first (the JSON control API's reservations share
    /// this host layer: `crate::control_api::backend`).
    pub fn host_records(&self) -> Vec<HostRecord> {
        self.host_names()
            .iter()
            .filter_map(|name| self.host_record(name))
            .collect()
    }

    /// The record of host `name`: dynamic, else dhcpd.conf's unless a rubout hides it.
    pub fn host_record(&self, name: &str) -> Option<HostRecord> {
        let set = self.hosts.current();
        if let Some(record) = set.record(name) {
            return Some(record.clone());
        }
        if set.is_deleted(name) {
            return None;
        }
        let host = self.config.hosts.iter().find(|host| host.name == name)?;
        Some(HostRecord {
            name: host.name.clone(),
            hardware: host
                .hardware
                .as_ref()
                .and_then(|hardware| Hardware::new(hardware.htype, &hardware.address)),
            uid: host.client_id.clone(),
            fixed_addresses: host.fixed_addresses.clone(),
            ..HostRecord::default()
        })
    }

    /// Every live host name, dynamic ones first.
    fn host_names(&self) -> Vec<String> {
        let set = self.hosts.current();
        let mut names: Vec<String> = set
            .records
            .iter()
            .filter(|record| !record.deleted)
            .map(|record| record.name.clone())
            .collect();
        for host in &self.config.hosts {
            if !set.is_deleted(&host.name) && !names.contains(&host.name) {
                names.push(host.name.clone());
            }
        }
        names
    }

    fn lookup_host(&self, keys: &[Value]) -> Result<ObjectRef, ResultCode> {
        let mut found: Option<String> = None;
        let mut merge = |name: Option<String>| -> Result<(), ResultCode> {
            let name = name.ok_or(ResultCode::NOTFOUND)?;
            match &found {
                Some(other) if *other != name => Err(ResultCode::KEYCONFLICT),
                _ => {
                    found = Some(name);
                    Ok(())
                }
            }
        };
        let find_by = |matches: &dyn Fn(&HostRecord) -> bool| {
            self.host_names().into_iter().find(|name| {
                self.host_record(name)
                    .is_some_and(|record| matches(&record))
            })
        };
        for key in keys {
            match key.name.as_slice() {
                b"name" => {
                    let name = String::from_utf8_lossy(&key.value).into_owned();
                    merge(self.host_record(&name).map(|record| record.name))?;
                }
                b"hardware-address" => {
                    let hardware = lookup_hardware(keys, &key.value)?;
                    merge(find_by(&|record| record.hardware == Some(hardware)))?;
                }
                b"dhcp-client-identifier" => {
                    merge(find_by(&|record| {
                        record.uid.as_deref() == Some(key.value.as_slice())
                    }))?;
                }
                b"ip-address" => {
                    // ISC: the lease with that address, then the host with its hardware.
                    let octets: [u8; 4] = key
                        .value
                        .as_slice()
                        .try_into()
                        .map_err(|_| ResultCode::INVALIDARG)?;
                    let address = Ipv4Addr::from(octets);
                    let hardware = self
                        .shard(address)
                        .and_then(|store| store.get(address).and_then(|lease| lease.hardware));
                    let hardware = hardware.ok_or(ResultCode::NOTFOUND)?;
                    merge(find_by(&|record| record.hardware == Some(hardware)))?;
                }
                _ => {}
            }
        }
        found.map(ObjectRef::Host).ok_or(ResultCode::NOKEYS)
    }

    fn create_host(&self, values: &[Value], now: UnixTime) -> Result<ObjectRef, ResultCode> {
        let mut record = HostRecord {
            dynamic: true,
            ..HostRecord::default()
        };
        apply_host_values(&mut record, values, true)?;
        // The "updated" signal: a host needs something to recognise its client by.
        if record.hardware.is_none() && record.uid.is_none() {
            return Err(ResultCode::INVALIDARG);
        }
        if record.name.is_empty() {
            // ISC names it `nh<time hex><pointer hex>`; a counter stands in for the pointer.
            let serial = self.handle_of(ObjectRef::Host(String::new()));
            record.name = format!("nh{now:08x}{serial:x}");
        }
        if self.host_record(&record.name).is_some() {
            return Err(ResultCode::EXISTS);
        }
        let name = record.name.clone();
        self.store_host(record);
        Ok(ObjectRef::Host(name))
    }

    fn update_host(&self, name: &str, values: &[Value], _now: UnixTime) -> Result<(), ResultCode> {
        let mut record = self.host_record(name).ok_or(ResultCode::NOTFOUND)?;
        if values.is_empty() {
            return Ok(());
        }
        apply_host_values(&mut record, values, false)?;
        if record.hardware.is_none() && record.uid.is_none() {
            return Err(ResultCode::INVALIDARG);
        }
        record.dynamic = true;
        self.store_host(record);
        Ok(())
    }

    fn remove_host(&self, name: &str) -> Result<(), ResultCode> {
        if self.host_record(name).is_none() {
            return Err(ResultCode::NOTFOUND);
        }
        self.store_host(HostRecord {
            name: name.to_string(),
            dynamic: true,
            deleted: true,
            ..HostRecord::default()
        });
        Ok(())
    }

    /// Enters `record` (a host, or a rubout) into the table the engine reads, then persists
    /// it through `persist`.
    pub fn store_host(&self, record: HostRecord) {
        let configured = self
            .config
            .hosts
            .iter()
            .any(|host| host.name == record.name);
        let mut bytes = Vec::new();
        write_host(&record, &mut bytes);
        self.hosts.modify(|set| set.apply(record, configured));
        (self.persist)(bytes);
    }
}

/// `hardware-address` with `hardware-type` (default 1; `00 00 00 tt`) as a lookup key.
fn lookup_hardware(keys: &[Value], address: &[u8]) -> Result<Hardware, ResultCode> {
    let htype = match find(keys, "hardware-type") {
        Some(value) => match value.value.as_slice() {
            [0, 0, 0, htype] => *htype,
            _ => return Err(ResultCode::INVALIDARG),
        },
        None => 1,
    };
    Hardware::new(htype, address).ok_or(ResultCode::INVALIDARG)
}

fn host_values(record: &HostRecord) -> Vec<Value> {
    let mut values = Vec::new();
    if !record.fixed_addresses.is_empty() {
        let bytes: Vec<u8> = record
            .fixed_addresses
            .iter()
            .flat_map(|address| address.octets())
            .collect();
        values.push(Value::new("ip-address", bytes));
    }
    if let Some(uid) = &record.uid {
        values.push(Value::new("dhcp-client-identifier", uid.clone()));
    }
    values.push(Value::new("name", record.name.as_bytes().to_vec()));
    if let Some(hardware) = &record.hardware {
        values.push(Value::new("hardware-address", hardware.address().to_vec()));
        values.push(Value::u32("hardware-type", u32::from(hardware.htype)));
    }
    values
}

/// ISC `dhcp_host_set_value` for each attribute (docs/spec/omapi.md §8.2 table).
fn apply_host_values(
    record: &mut HostRecord,
    values: &[Value],
    fresh: bool,
) -> Result<(), ResultCode> {
    for value in values {
        let bytes = value.value.as_slice();
        match value.name.as_slice() {
            b"name" => {
                if bytes.is_empty() {
                    continue;
                }
                let name = std::str::from_utf8(bytes).map_err(|_| ResultCode::INVALIDARG)?;
                if !fresh && record.name != name {
                    return Err(ResultCode::EXISTS);
                }
                if name.bytes().any(|byte| byte < 0x20 || byte == 0x7f) {
                    return Err(ResultCode::INVALIDARG);
                }
                record.name = name.to_string();
            }
            b"hardware-address" => {
                if bytes.is_empty() {
                    record.hardware = None;
                    continue;
                }
                // If omitted, the type stays 0 as in ISC (`hardware unknown-0 …` [lab]).
                let htype = record.hardware.map_or(0, |hardware| hardware.htype);
                record.hardware = Some(Hardware::new(htype, bytes).ok_or(ResultCode::INVALIDARG)?);
            }
            b"hardware-type" => {
                let htype = value
                    .as_u32()
                    .and_then(|htype| u8::try_from(htype).ok())
                    .ok_or(ResultCode::INVALIDARG)?;
                let hardware = record.hardware.unwrap_or_default();
                record.hardware = Hardware::new(htype, hardware.address());
                if hardware.len == 0 {
                    // Remember the type for a hardware-address that follows.
                    record.hardware = Hardware::new(htype, &[]);
                }
            }
            b"dhcp-client-identifier" => {
                if bytes.is_empty() {
                    record.uid = None;
                } else if !fresh && record.uid.as_deref().is_some_and(|uid| uid != bytes) {
                    return Err(ResultCode::EXISTS);
                } else {
                    record.uid = Some(bytes.to_vec());
                }
            }
            b"ip-address" => {
                if bytes.len() % 4 != 0 {
                    return Err(ResultCode::INVALIDARG);
                }
                record.fixed_addresses = bytes
                    .chunks_exact(4)
                    .map(|chunk| Ipv4Addr::new(chunk[0], chunk[1], chunk[2], chunk[3]))
                    .collect();
            }
            b"statements" => {
                let text = std::str::from_utf8(bytes).map_err(|_| ResultCode::BADPARSE)?;
                record.statements = parse_statements(text)?;
            }
            b"group" => {
                record.group =
                    (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).into_owned());
            }
            b"known" => {}
            _ => return Err(ResultCode::UNKNOWNATTRIBUTE),
        }
    }
    // A type without an address is only a placeholder.
    if record.hardware.is_some_and(|hardware| hardware.len == 0) {
        record.hardware = None;
    }
    Ok(())
}

/// Splits `statements` into `;`-terminated statements for the lease file. Only flat statements
/// are accepted (no blocks, balanced quotes), so the text cannot break the lease file's syntax;
/// and only what the dhcpd.conf statement parser accepts and the engine applies (an option or a
/// parameter), so what the operator set is what clients get (docs/spec/omapi.md §8.2: parse error →
/// `DHCP_R_BADPARSE`).
fn parse_statements(text: &str) -> Result<Vec<String>, ResultCode> {
    match crate::config::parse_statements(text, "statements") {
        Ok(parsed) if parsed.warnings.is_empty() => {}
        _ => return Err(ResultCode::BADPARSE),
    }
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for character in text.chars() {
        match character {
            '"' => quoted = !quoted,
            '{' | '}' | '\n' | '\r' if !quoted => return Err(ResultCode::BADPARSE),
            '\\' if quoted => return Err(ResultCode::BADPARSE),
            _ => {}
        }
        current.push(character);
        if character == ';' && !quoted {
            let statement = current.trim().to_string();
            if statement.len() > 1 {
                statements.push(statement);
            }
            current.clear();
        }
    }
    if quoted || !current.trim().is_empty() {
        return Err(ResultCode::BADPARSE);
    }
    Ok(statements)
}

fn binding_state(code: u32) -> Option<BindingState> {
    Some(match code {
        1 => BindingState::Free,
        2 => BindingState::Active,
        3 => BindingState::Expired,
        4 => BindingState::Released,
        5 => BindingState::Abandoned,
        6 => BindingState::Reset,
        7 => BindingState::Backup,
        _ => return None,
    })
}

/// Our lease flag bits as ISC's (0x02 BOOTP, 0x04 RESERVED).
fn isc_flags(ours: u8) -> u8 {
    (if ours & flags::BOOTP != 0 { 0x02 } else { 0 })
        | (if ours & flags::RESERVED != 0 { 0x04 } else { 0 })
}

/// Sets (Some) or unsets (None) a lease variable the way ISC's binding scope does: an existing
/// variable keeps its place, a new one goes first ([lab]: `set remote-handle` was written before
/// the older `set my-note`).
fn set_variable(lease: &mut Lease, name: &str, text: Option<String>) {
    let variables = &mut lease.extra_mut().variables;
    match (variables.iter().position(|(old, _)| old == name), text) {
        (Some(index), Some(text)) => variables[index].1 = text,
        (Some(index), None) => {
            variables.remove(index);
        }
        (None, Some(text)) => variables.insert(0, (name.to_string(), text)),
        (None, None) => {}
    }
}

/// Whether a variable's lease-file text is an ISC numeric binding (`%N`).
fn is_numeric(text: &str) -> bool {
    text.strip_prefix('%')
        .is_some_and(|number| number.parse::<i64>().is_ok())
}

fn valid_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// A lease variable as the lease file writes it: printable text quoted, else colon-hex.
fn variable_text(bytes: &[u8]) -> String {
    if bytes
        .iter()
        .all(|byte| (0x20..0x7f).contains(byte) && *byte != b'"' && *byte != b'\\')
    {
        format!("\"{}\"", String::from_utf8_lossy(bytes))
    } else {
        bytes
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// A lease variable's lease-file text as OMAPI bytes (`binding_scope_stuff_values`): strings
/// as their bytes, `%N` numbers and booleans as 4-byte integers.
fn variable_bytes(text: &str) -> Vec<u8> {
    if let Some(inner) = text
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        return inner.as_bytes().to_vec();
    }
    if let Some(number) = text.strip_prefix('%').and_then(|n| n.parse::<i64>().ok()) {
        return (number as u32).to_be_bytes().to_vec();
    }
    match text {
        "true" => 1u32.to_be_bytes().to_vec(),
        "false" => 0u32.to_be_bytes().to_vec(),
        _ => {
            let hex: Option<Vec<u8>> = text
                .split(':')
                .map(|part| u8::from_str_radix(part, 16).ok())
                .collect();
            hex.unwrap_or_else(|| text.as_bytes().to_vec())
        }
    }
}

#[cfg(test)]
mod tests;
