//! What each command does (Kea ARM `lease_cmds`, `host_cmds`, the daemon's own commands),
//! against a [`Backend`]: the daemon's lease store, hosts and configuration
//! (`control_api::backend`), or an in-memory one in the tests. The decisions are here and take
//! time as an argument; the backend only reads, stores under its locks and makes changes
//! durable through `changes::apply`.

use std::net::Ipv4Addr;

use serde_json::{json, Map, Value};

use super::answer::Answer;
use super::lease_json::{self, is_listed};
use super::request::{
    Command, HostSelector, IdentifierKind, LeaseArguments, LeaseSelector, Request, Reservation,
    COMMANDS,
};
use crate::config::model::Config;
use crate::lease::file::HostRecord;
use crate::lease::record::{Hardware, Lease, UnixTime};

/// A command's decision on one address: the store's record in, the new record out
/// (`Ok(None)`: no change).
pub type Decide<'a> = dyn FnMut(Option<&Lease>) -> Result<Option<Lease>, Answer> + 'a;

/// Which leases a selector matches.
type LeaseMatch = Box<dyn Fn(&Lease) -> bool>;

/// What the commands operate on.
pub trait Backend {
    /// The running configuration.
    fn config(&self) -> std::sync::Arc<Config>;
    /// The store's record of `address`.
    fn lease(&self, address: Ipv4Addr) -> Option<Lease>;
    /// Every lease record that `keep` keeps, in no particular order.
    fn leases(&self, keep: &dyn Fn(&Lease) -> bool) -> Vec<Lease>;
    /// For each of `addresses`, under the lock of its shard: `decide` sees the current record
    /// and returns the new one (`Ok(None)`: no change); the changes are stored, then made
    /// durable and told to the partner, the kernel and DNS (`changes::apply` with
    /// `ChangeSource::ControlApi`) before this returns them. An `Err` from `decide` stops
    /// there (what was decided before it is still applied) and is returned.
    fn change_leases(
        &self,
        addresses: &[Ipv4Addr],
        decide: &mut Decide<'_>,
    ) -> Result<Vec<Lease>, Answer>;
    /// Whether `address` is in a pool of a failover relationship.
    fn in_failover_pool(&self, address: Ipv4Addr) -> bool;
    /// The `default-lease-time` in force at `address`.
    fn default_lease_time(&self, address: Ipv4Addr) -> u32;
    /// Every live host: dhcpd.conf's not deleted, and the dynamic ones.
    fn hosts(&self) -> Vec<HostRecord>;
    /// Enters a host (or a rubout) into the host table and makes its record durable.
    fn store_host(&self, record: HostRecord) -> Result<(), Answer>;
    /// Parses (and checks) a configuration: `text`, or the file the daemon was started with.
    fn test_config(&self, text: Option<&str>) -> Result<String, String>;
    /// Reloads the configuration file as SIGHUP does.
    fn reload(&self) -> Result<String, String>;
    /// Every statistic: (name, value).
    fn statistics(&self) -> Vec<(String, f64)>;
    /// The process id, and the seconds since start and since the last reload.
    fn status(&self, now: UnixTime) -> Value;
    /// Starts a rewrite of the lease file; `Err` says why there is none to start.
    fn rewrite_lease_file(&self) -> Result<(), String>;
}

/// Answers one request. Services other than `dhcp4` are not served (Kea's agent would forward
/// to a server of that kind).
pub fn execute(backend: &dyn Backend, request: &Request, now: UnixTime) -> Vec<Answer> {
    if request.services.is_empty() {
        return vec![run(backend, &request.command, now)];
    }
    request
        .services
        .iter()
        .map(|service| {
            if service == "dhcp4" {
                run(backend, &request.command, now)
            } else {
                Answer::error(format!(
                    "forwarding socket is not configured for the server type {service}"
                ))
            }
        })
        .collect()
}

/// Decodes and answers a request body: the whole API without HTTP.
pub fn answer(backend: &dyn Backend, body: &[u8], now: UnixTime) -> Vec<Answer> {
    match super::request::parse(body) {
        Ok(request) => execute(backend, &request, now),
        Err(answer) => vec![answer],
    }
}

fn run(backend: &dyn Backend, command: &Command, now: UnixTime) -> Answer {
    let config = backend.config();
    match command {
        Command::LeaseGet(selector) => match find_lease(backend, &config, selector) {
            Ok(Some(lease)) => {
                Answer::with_arguments("IPv4 lease found.", lease_json::to_json(&config, &lease))
            }
            Ok(None) => Answer::empty("Lease not found."),
            Err(answer) => answer,
        },
        Command::LeaseGetByHwAddress(hardware) => {
            let hardware = *hardware;
            lease_list(
                &config,
                backend.leases(&|lease| is_listed(lease) && same_hardware(lease, &hardware)),
            )
        }
        Command::LeaseGetByClientId(client_id) => lease_list(
            &config,
            backend.leases(&|lease| is_listed(lease) && lease.uid() == Some(&client_id[..])),
        ),
        Command::LeaseGetPage { from, limit } => {
            let from = *from;
            let mut page = backend
                .leases(&|lease| is_listed(lease) && from.is_none_or(|from| lease.address > from));
            page.sort_unstable_by_key(|lease| lease.address);
            page.truncate(*limit);
            let count = page.len();
            let leases: Vec<Value> = page
                .iter()
                .map(|lease| lease_json::to_json(&config, lease))
                .collect();
            Answer::new(
                if count == 0 {
                    super::answer::result::EMPTY
                } else {
                    super::answer::result::SUCCESS
                },
                format!("{count} IPv4 lease(s) found."),
                Some(json!({ "leases": leases, "count": count })),
            )
        }
        Command::LeaseAdd(args) => add_lease(backend, &config, args, now),
        Command::LeaseUpdate(args) => update_lease(backend, &config, args, now),
        Command::LeaseDel(selector) => delete_lease(backend, &config, selector, now),
        Command::LeaseWipe { subnet_id } => wipe(backend, &config, *subnet_id, now),
        Command::ReservationGet(selector) => match find_host(backend, &config, selector) {
            Some(host) => Answer::with_arguments("Host found.", host_json(&config, &host)),
            None => Answer::empty("Host not found."),
        },
        Command::ReservationAdd(reservation) => add_host(backend, &config, reservation),
        Command::ReservationDel(selector) => match find_host(backend, &config, selector) {
            Some(host) => {
                let rubout = HostRecord {
                    name: host.name,
                    dynamic: true,
                    deleted: true,
                    ..HostRecord::default()
                };
                match backend.store_host(rubout) {
                    Ok(()) => Answer::success("Host deleted."),
                    Err(answer) => answer,
                }
            }
            None => Answer::empty("Host not deleted (not found)."),
        },
        Command::ConfigTest { text } => match backend.test_config(text.as_deref()) {
            Ok(summary) => Answer::success(format!("Configuration seems sane. {summary}")),
            Err(errors) => Answer::error(errors),
        },
        Command::ConfigReload => match backend.reload() {
            Ok(summary) => Answer::success(format!("Configuration successful. {summary}")),
            Err(error) => Answer::error(format!("Config reload failed: {error}")),
        },
        Command::StatisticGetAll => {
            let stamp = kea_timestamp(now);
            let statistics: Map<String, Value> = backend
                .statistics()
                .into_iter()
                .map(|(name, value)| (name, json!([[number(value), stamp]])))
                .collect();
            Answer::with_arguments("", Value::Object(statistics))
        }
        Command::StatusGet => Answer::with_arguments("", backend.status(now)),
        Command::LeaseFileRewrite => match backend.rewrite_lease_file() {
            Ok(()) => Answer::success(
                "Lease file rewrite started; the server log says when it is in place.",
            ),
            Err(why) => Answer::error(why),
        },
        Command::VersionGet => Answer::with_arguments(
            env!("CARGO_PKG_VERSION"),
            json!({ "extended": format!(
                "xdhcpd {} (ISC dhcpd 4.4 compatible; Kea control API)",
                env!("CARGO_PKG_VERSION")
            ) }),
        ),
        Command::BuildReport => Answer::success(format!(
            "xdhcpd {} built with Rust for {}",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH
        )),
        Command::ListCommands => Answer::with_arguments("", json!(COMMANDS)),
    }
}

/// An integer-valued statistic as a JSON integer, others as floats (Kea's are integers).
fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

/// Kea's statistic timestamp: `YYYY-MM-DD HH:MM:SS.ffffff`, UTC.
fn kea_timestamp(now: UnixTime) -> String {
    let mut date = Vec::new();
    // "W YYYY/MM/DD HH:MM:SS", dhcpd.leases' date.
    crate::lease::file::date::write_date(now, &mut date);
    let date = String::from_utf8_lossy(&date);
    let date = date.split_once(' ').map_or(&*date, |(_, rest)| rest);
    format!("{}.000000", date.replace('/', "-"))
}

fn same_hardware(lease: &Lease, hardware: &Hardware) -> bool {
    lease
        .hardware
        .as_ref()
        .is_some_and(|own| own.address() == hardware.address())
}

fn lease_list(config: &Config, mut leases: Vec<Lease>) -> Answer {
    leases.sort_unstable_by_key(|lease| lease.address);
    let count = leases.len();
    let leases: Vec<Value> = leases
        .iter()
        .map(|lease| lease_json::to_json(config, lease))
        .collect();
    Answer::new(
        if count == 0 {
            super::answer::result::EMPTY
        } else {
            super::answer::result::SUCCESS
        },
        format!("{count} IPv4 lease(s) found."),
        Some(json!({ "leases": leases })),
    )
}

fn check_subnet(config: &Config, subnet_id: u32) -> Result<(), Answer> {
    if lease_json::subnet_exists(config, subnet_id) {
        Ok(())
    } else {
        Err(Answer::error(format!(
            "Invalid subnet-id: No IPv4 subnet with subnet-id={subnet_id} currently configured."
        )))
    }
}

/// The listed lease `selector` names; by identifier, the most recent (highest `cltt`) of the
/// client's leases in the subnet.
fn find_lease(
    backend: &dyn Backend,
    config: &Config,
    selector: &LeaseSelector,
) -> Result<Option<Lease>, Answer> {
    let (matches, subnet_id): (LeaseMatch, u32) = match selector {
        LeaseSelector::Address(address) => {
            return Ok(backend.lease(*address).filter(is_listed));
        }
        LeaseSelector::Hardware {
            hardware,
            subnet_id,
        } => {
            let hardware = *hardware;
            (
                Box::new(move |lease| same_hardware(lease, &hardware)),
                *subnet_id,
            )
        }
        LeaseSelector::ClientId {
            client_id,
            subnet_id,
        } => {
            let client_id = client_id.clone();
            (
                Box::new(move |lease| lease.uid() == Some(&client_id[..])),
                *subnet_id,
            )
        }
    };
    check_subnet(config, subnet_id)?;
    let leases = backend.leases(&|lease| {
        is_listed(lease)
            && lease_json::subnet_id(config, lease.address) == subnet_id
            && matches(lease)
    });
    Ok(leases.into_iter().max_by_key(|lease| lease.cltt))
}

/// The address of a `lease4-add`/`lease4-update`, checked against the subnet id if given.
fn lease_address(config: &Config, args: &LeaseArguments) -> Result<Ipv4Addr, Answer> {
    let address = args
        .address
        .ok_or_else(|| Answer::error("'ip-address' parameter not specified"))?;
    let actual = lease_json::subnet_id(config, address);
    if actual == 0 {
        return Err(Answer::error(format!(
            "subnet-id not specified and couldn't select subnet for address {address}"
        )));
    }
    if let Some(wanted) = args.subnet_id {
        check_subnet(config, wanted)?;
        if wanted != actual {
            return Err(Answer::error(format!(
                "The address {address} does not belong to subnet {wanted}, subnet-id {actual} \
                 holds it"
            )));
        }
    }
    Ok(address)
}

fn add_lease(
    backend: &dyn Backend,
    config: &Config,
    args: &LeaseArguments,
    now: UnixTime,
) -> Answer {
    let address = match lease_address(config, args) {
        Ok(address) => address,
        Err(answer) => return answer,
    };
    let failover = backend.in_failover_pool(address);
    let lifetime = backend.default_lease_time(address);
    let changed = backend.change_leases(&[address], &mut |existing| {
        if existing.is_some_and(is_listed) {
            return Err(Answer::conflict("IPv4 lease already exists."));
        }
        lease_json::written(args, address, existing, lifetime, failover, now).map(Some)
    });
    match changed {
        Ok(_) => Answer::success(format!(
            "Lease for address {address}, subnet-id {} added.",
            lease_json::subnet_id(config, address)
        )),
        Err(answer) => answer,
    }
}

fn update_lease(
    backend: &dyn Backend,
    config: &Config,
    args: &LeaseArguments,
    now: UnixTime,
) -> Answer {
    let address = match lease_address(config, args) {
        Ok(address) => address,
        Err(answer) => return answer,
    };
    let failover = backend.in_failover_pool(address);
    let lifetime = backend.default_lease_time(address);
    let changed = backend.change_leases(&[address], &mut |existing| {
        if !existing.is_some_and(is_listed) && !args.force_create {
            return Err(Answer::empty(format!(
                "failed to update the lease with address {address} - no such lease"
            )));
        }
        lease_json::written(args, address, existing, lifetime, failover, now).map(Some)
    });
    match changed {
        Ok(_) => Answer::success("IPv4 lease updated."),
        Err(answer) => answer,
    }
}

fn delete_lease(
    backend: &dyn Backend,
    config: &Config,
    selector: &LeaseSelector,
    now: UnixTime,
) -> Answer {
    let lease = match find_lease(backend, config, selector) {
        Ok(Some(lease)) => lease,
        Ok(None) => return Answer::empty("IPv4 lease not found."),
        Err(answer) => return answer,
    };
    let failover = backend.in_failover_pool(lease.address);
    let changed = backend.change_leases(&[lease.address], &mut |current| {
        // Checked again under the lock: the client may have changed it meanwhile.
        match current {
            Some(current) if is_listed(current) && same_client(current, &lease) => {
                Ok(Some(lease_json::given_back(current.clone(), failover, now)))
            }
            _ => Err(Answer::empty("IPv4 lease not found.")),
        }
    });
    match changed {
        Ok(_) => Answer::success("IPv4 lease deleted."),
        Err(answer) => answer,
    }
}

fn same_client(current: &Lease, seen: &Lease) -> bool {
    current.hardware == seen.hardware && current.uid() == seen.uid()
}

fn wipe(backend: &dyn Backend, config: &Config, subnet_id: Option<u32>, now: UnixTime) -> Answer {
    if let Some(id) = subnet_id {
        if let Err(answer) = check_subnet(config, id) {
            return answer;
        }
    }
    let in_scope =
        |address: Ipv4Addr| subnet_id.is_none_or(|id| lease_json::subnet_id(config, address) == id);
    let mut addresses: Vec<Ipv4Addr> = backend
        .leases(&|lease| is_listed(lease) && in_scope(lease.address))
        .iter()
        .map(|lease| lease.address)
        .collect();
    addresses.sort_unstable();
    let changed = backend.change_leases(&addresses, &mut |current| {
        Ok(current.filter(|lease| is_listed(lease)).map(|lease| {
            let failover = backend.in_failover_pool(lease.address);
            lease_json::given_back(lease.clone(), failover, now)
        }))
    });
    let subnets = match subnet_id {
        Some(id) => id.to_string(),
        None => (1..=config.subnets.len())
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join(" "),
    };
    match changed {
        Ok(changed) => Answer::new(
            if changed.is_empty() {
                super::answer::result::EMPTY
            } else {
                super::answer::result::SUCCESS
            },
            format!(
                "Deleted {} IPv4 lease(s) from subnet(s) {subnets}",
                changed.len()
            ),
            None,
        ),
        Err(answer) => answer,
    }
}

// ---- reservations (ISC host declarations, `host_cmds`) ----

/// The host-name a host's statements give (`option host-name "NAME";`).
fn host_hostname(host: &HostRecord) -> Option<String> {
    host.statements.iter().find_map(|statement| {
        statement
            .strip_prefix("option host-name \"")
            .and_then(|rest| rest.strip_suffix("\";"))
            .map(str::to_string)
    })
}

/// A host's subnet id: that of its first fixed address, 0 (Kea's global) without one.
fn host_subnet_id(config: &Config, host: &HostRecord) -> u32 {
    host.fixed_addresses
        .first()
        .map_or(0, |address| lease_json::subnet_id(config, *address))
}

fn host_json(config: &Config, host: &HostRecord) -> Value {
    let mut map = Map::new();
    if let Some(hardware) = &host.hardware {
        map.insert(
            "hw-address".into(),
            json!(hardware
                .address()
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect::<Vec<_>>()
                .join(":")),
        );
    }
    if let Some(uid) = &host.uid {
        map.insert(
            "client-id".into(),
            json!(uid
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect::<Vec<_>>()
                .join(":")),
        );
    }
    map.insert(
        "ip-address".into(),
        json!(host
            .fixed_addresses
            .first()
            .map_or("0.0.0.0".to_string(), |address| address.to_string())),
    );
    map.insert(
        "hostname".into(),
        json!(host_hostname(host).unwrap_or_default()),
    );
    map.insert("subnet-id".into(), json!(host_subnet_id(config, host)));
    map.insert("next-server".into(), json!("0.0.0.0"));
    map.insert("server-hostname".into(), json!(""));
    map.insert("boot-file-name".into(), json!(""));
    map.insert("client-classes".into(), json!([]));
    map.insert("option-data".into(), json!([]));
    map.insert(
        "user-context".into(),
        json!({ "isc": { "host": host.name, "dynamic": host.dynamic } }),
    );
    Value::Object(map)
}

fn host_matches(config: &Config, host: &HostRecord, selector: &HostSelector) -> bool {
    let (subnet_id, matched) = match selector {
        HostSelector::Address { subnet_id, address } => {
            (*subnet_id, host.fixed_addresses.contains(address))
        }
        HostSelector::Identifier {
            subnet_id,
            kind,
            value,
        } => (
            *subnet_id,
            match kind {
                IdentifierKind::HwAddress => host
                    .hardware
                    .as_ref()
                    .is_some_and(|hardware| hardware.address() == &value[..]),
                IdentifierKind::ClientId => host.uid.as_deref() == Some(&value[..]),
            },
        ),
    };
    // An ISC host is global; Kea's subnet id is matched against its fixed address's subnet
    // when it has one.
    matched
        && subnet_id.is_none_or(|id| {
            host.fixed_addresses.is_empty() || id == 0 || host_subnet_id(config, host) == id
        })
}

fn find_host(
    backend: &dyn Backend,
    config: &Config,
    selector: &HostSelector,
) -> Option<HostRecord> {
    backend
        .hosts()
        .into_iter()
        .find(|host| host_matches(config, host, selector))
}

fn add_host(backend: &dyn Backend, config: &Config, reservation: &Reservation) -> Answer {
    if let (Some(address), Some(id)) = (reservation.address, reservation.subnet_id) {
        if id != 0 {
            if let Err(answer) = check_subnet(config, id) {
                return answer;
            }
            if lease_json::subnet_id(config, address) != id {
                return Answer::error(format!(
                    "specified reservation address {address} is not within the subnet-id {id}"
                ));
            }
        }
    }
    let selector = HostSelector::Identifier {
        subnet_id: None,
        kind: reservation.kind,
        value: reservation.identifier.clone(),
    };
    let hosts = backend.hosts();
    if hosts
        .iter()
        .any(|host| host_matches(config, host, &selector))
    {
        return Answer::error(format!(
            "Host with the {} {} already exists.",
            reservation.kind.name(),
            reservation
                .identifier
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        ));
    }
    if let Some(address) = reservation.address {
        if hosts
            .iter()
            .any(|host| host.fixed_addresses.contains(&address))
        {
            return Answer::error(format!(
                "Host with the reserved address {address} already exists."
            ));
        }
    }
    let identifier_name = reservation
        .identifier
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join("-");
    // An ISC host needs a unique name; Kea's hostname is what the client is told.
    let name = match &reservation.hostname {
        Some(hostname) if !hosts.iter().any(|host| &host.name == hostname) => hostname.clone(),
        _ => format!("kea-{}-{identifier_name}", reservation.kind.name()),
    };
    let (hardware, uid) = match reservation.kind {
        IdentifierKind::HwAddress => (Hardware::new(1, &reservation.identifier), None),
        IdentifierKind::ClientId => (None, Some(reservation.identifier.clone())),
    };
    let record = HostRecord {
        name,
        dynamic: true,
        deleted: false,
        hardware,
        uid,
        fixed_addresses: reservation.address.into_iter().collect(),
        group: None,
        statements: reservation
            .hostname
            .iter()
            .map(|hostname| format!("option host-name \"{hostname}\";"))
            .collect(),
    };
    match backend.store_host(record) {
        Ok(()) => Answer::success("Host added."),
        Err(answer) => answer,
    }
}

#[cfg(test)]
mod tests;
