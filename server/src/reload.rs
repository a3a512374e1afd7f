//! SIGHUP: re-reads dhcpd.conf while the server keeps running. (ISC dhcpd has no reload — it
//! must be restarted, dropping its failover connection; this is xdhcpd's addition.)
//!
//! A reload either applies a whole new configuration or none of it:
//! 1. parse and validate the file; any error is logged (every one, with file:line:column) and the
//!    running configuration keeps serving;
//! 2. ISC's interface rule ([`check_interfaces`]): a config that declares no subnet for any of
//!    the interfaces being served (an empty file, say) is refused, as ISC refuses to start with
//!    "Not configured to listen on any interfaces!"; an interface it leaves without a subnet
//!    gets ISC's "No subnet declaration" lines and its requests are ignored;
//! 3. [`prepare`] fits the new config to what cannot change without a restart (failover peers,
//!    the lease file, OMAPI, …): those keep their running values, each with a log line saying a
//!    restart is needed; a pool naming a failover peer that is not running refuses the reload;
//! 4. holding every shard of the lease store, in index order (so that no decision runs half
//!    under each config): leases whose shared network the new config puts in another shard move
//!    there, each shard's pool indices are rebuilt from the new pools
//!    ([`ShardedStore::reconfigure`], every lease stays), the engine is swapped ([`EngineCell`])
//!    and publications prepared under the old config are voided; once the shards are let go,
//!    the XDP program's renewal templates, built from the old config, are withdrawn.
//!
//! The failover connection is untouched: the relationships' state lives with their drivers
//! (`failover::hooks`), not in the engine, and the new engine reads it through the same
//! per-batch view, indexed by the `failover peer` list that [`prepare`] keeps.

use std::path::Path;
use std::sync::Arc;

use crate::config::model::Config;
use crate::engine::Engine;
use crate::lease::shards::ShardedStore;
use crate::net::interfaces::{self, Interface};
use crate::xdp::runtime::FastPathRuntime;

/// The engine the workers use, replaceable while they run: an `ArcSwap`, so that taking it
/// (once per received batch) is a lock-free load and a reload never waits for a worker.
#[derive(Debug)]
pub struct EngineCell {
    current: arc_swap::ArcSwap<Engine>,
}

impl EngineCell {
    pub fn new(engine: Engine) -> Self {
        Self {
            current: arc_swap::ArcSwap::from_pointee(engine),
        }
    }

    /// The engine in force now.
    pub fn load(&self) -> Arc<Engine> {
        self.current.load_full()
    }

    fn replace(&self, engine: Engine) {
        self.current.store(Arc::new(engine));
    }
}

/// Why a reload was refused; the running configuration keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file does not parse or validate (every error, one per line).
    #[error("{0}")]
    Config(String),
    /// The new config needs something only a restart can give.
    #[error("a restart is needed: {0}")]
    NeedsRestart(String),
    /// The lease store's lock was poisoned (a worker panicked); nothing was changed.
    #[error("the lease store is unusable")]
    LeaseStore,
    /// No interface being served would keep a subnet declaration (ISC's fatal start-up error);
    /// `ignored` holds ISC's message for each of them.
    #[error("Not configured to listen on any interfaces!")]
    NoInterfaces { ignored: Vec<String> },
}

/// What a successful reload changed, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub subnets: usize,
    pub pools: usize,
    pub hosts: usize,
    pub leases_kept: usize,
    /// Settings that kept their running value (each needs a restart to change).
    pub needs_restart: Vec<String>,
    /// ISC's message for each served interface the new config gives no subnet declaration.
    pub ignored_interfaces: Vec<String>,
}

/// ISC's interface rule (common/discover.c, `discover_interfaces`) applied to a new config and
/// the interfaces being served: ISC's "No subnet declaration" message for each interface left
/// without a subnet, or the refusal when that is every one of them. Pure, unit-tested.
pub fn check_interfaces(
    config: &Config,
    serving: &[Interface],
) -> Result<Vec<String>, ReloadError> {
    let ignored: Vec<String> = serving
        .iter()
        .filter(|interface| config.subnet_for(interface.address).is_none())
        .map(|interface| interfaces::no_subnet_message(&interface.name, Some(interface.address)))
        .collect();
    if ignored.len() == serving.len() {
        return Err(ReloadError::NoInterfaces { ignored });
    }
    Ok(ignored)
}

/// Fits `new` to the running config: settings that only a restart can change keep their running
/// values, listed in the returned notes. Pure: no I/O, so every rule is unit-tested.
pub fn prepare(running: &Config, mut new: Config) -> Result<(Config, Vec<String>), ReloadError> {
    let mut notes = Vec::new();
    // The failover drivers run with the declarations read at start (docs/spec/failover.md §13): their
    // connection, role, MCLT and split carry on; a changed declaration waits for a restart.
    if new.failover_peers != running.failover_peers {
        for peer in &running.failover_peers {
            match new.failover_peers.iter().find(|new| new.name == peer.name) {
                Some(changed) if changed != peer => notes.push(format!(
                    "failover peer \"{}\" changed: the running declaration stays until a restart",
                    peer.name
                )),
                Some(_) => {}
                None => notes.push(format!(
                    "failover peer \"{}\" removed: it keeps running until a restart",
                    peer.name
                )),
            }
        }
        for peer in &new.failover_peers {
            if !running
                .failover_peers
                .iter()
                .any(|old| old.name == peer.name)
            {
                notes.push(format!(
                    "failover peer \"{}\" added: it starts only after a restart",
                    peer.name
                ));
            }
        }
        new.failover_peers = running.failover_peers.clone();
    }
    // A pool of a relationship that does not run would be served without its partner's
    // consent (two servers allocating the same addresses): refuse instead.
    for pool in &new.pools {
        if let Some(name) = &pool.failover_peer {
            if !running.failover_peers.iter().any(|peer| &peer.name == name) {
                return Err(ReloadError::NeedsRestart(format!(
                    "a pool names failover peer \"{name}\", which is not running"
                )));
            }
        }
    }
    if failover_ranges(&new) != failover_ranges(running) {
        notes.push(
            "failover pool ranges changed: the failover driver balances and recovers the old \
             ranges until a restart"
                .to_string(),
        );
    }
    if new.hosts != running.hosts {
        notes.push(
            "host declarations changed: DHCP uses the new ones; OMAPI lookups and the JSON \
             control API's reservations see the start-up ones until a restart"
                .to_string(),
        );
    }
    macro_rules! keep {
        ($field:ident, $what:expr) => {
            if new.$field != running.$field {
                notes.push(format!("{} changed: takes effect after a restart", $what));
                new.$field = running.$field.clone();
            }
        };
    }
    keep!(lease_file_name, "lease-file-name");
    keep!(pid_file_name, "pid-file-name");
    keep!(log_facility, "log-facility");
    keep!(omapi_port, "omapi-port");
    keep!(omapi_key, "omapi-key");
    keep!(keys, "key statements (OMAPI)");
    keep!(
        control_api,
        "the xdhcpd.control-api-* settings (JSON control API)"
    );
    keep!(lease_id_format_hex, "lease-id-format");
    keep!(db_time_format_local, "db-time-format");
    // The sockets are bound once and the ports chosen with them (dhcpd.conf(5) `local-port`,
    // `remote-port`, global); ISC binds its fallback socket to `local-address` once too.
    macro_rules! keep_global {
        ($field:ident, $what:expr) => {
            let value = |config: &Config| config.scopes.first().and_then(|scope| scope.$field);
            if value(&new) != value(running) {
                notes.push(format!("{} changed: takes effect after a restart", $what));
                let running_value = value(running);
                if let Some(global) = new.scopes.first_mut() {
                    global.$field = running_value;
                }
            }
        };
    }
    keep_global!(local_port, "local-port");
    keep_global!(remote_port, "remote-port");
    keep_global!(local_address, "local-address");
    keep_global!(limited_broadcast_address, "limited-broadcast-address");
    // The interfaces listened on are chosen once, `interface NAME;` statements included
    // (`net::interfaces::requested`).
    let names = |config: &Config| -> Vec<String> {
        config
            .interfaces
            .iter()
            .map(|(name, _)| name.clone())
            .collect()
    };
    if names(&new) != names(running) {
        notes.push("interface statements changed: take effect after a restart".to_string());
    }
    Ok((new, notes))
}

/// Every failover pool's ranges with its peer, sorted.
fn failover_ranges(config: &Config) -> Vec<(String, u32, u32)> {
    let mut ranges: Vec<(String, u32, u32)> = config
        .pools
        .iter()
        .filter_map(|pool| Some((pool.failover_peer.as_ref()?, &pool.ranges)))
        .flat_map(|(peer, ranges)| {
            ranges
                .iter()
                .map(move |range| (peer.clone(), u32::from(range.low), u32::from(range.high)))
        })
        .collect();
    ranges.sort_unstable();
    ranges
}

/// What a reload swaps.
pub struct ReloadTargets<'a> {
    pub config_path: &'a Path,
    pub engine: &'a EngineCell,
    pub leases: &'a ShardedStore,
    pub fast_path: Option<&'a FastPathRuntime>,
    /// The interfaces being served (their sockets stay; a reload cannot add any).
    pub interfaces: &'a [Interface],
}

/// Reads `config_path` and, when it is valid, swaps it in (see the module doc). On `Err` nothing
/// changed.
pub fn reload(targets: &ReloadTargets<'_>) -> Result<ReloadSummary, ReloadError> {
    let new = crate::config::load_file(targets.config_path)
        .map_err(|errors| ReloadError::Config(errors.to_string()))?;
    apply(targets, new)
}

/// Swaps a parsed config in (the part of [`reload`] after reading the file).
pub fn apply(targets: &ReloadTargets<'_>, new: Config) -> Result<ReloadSummary, ReloadError> {
    let ignored_interfaces = check_interfaces(&new, targets.interfaces)?;
    let running = targets.engine.load();
    let (config, needs_restart) = prepare(running.config(), new)?;
    if config.releases_other_leases() && targets.leases.shard_count() > 1 {
        return Err(ReloadError::NeedsRestart(
            "one-lease-per-client needs the lease store in one shard (a client's leases in every \
             shared network): restart to turn it on"
                .to_string(),
        ));
    }
    for warning in &config.warnings {
        tracing::warn!("{}: {}", warning.location, warning.message);
    }
    let config = Arc::new(config);
    // Built outside the lock: the engine's tables depend only on the config.
    let engine = Engine::new(config.clone());
    let leases_kept = targets
        .leases
        .reconfigure(config.clone(), || {
            targets.engine.replace(engine);
            if let Some(fast_path) = targets.fast_path {
                fast_path.switch_generation(&config);
            }
        })
        .map_err(|_| ReloadError::LeaseStore)?;
    // The kernel's maps once the shards are let go: no syscall under a shard's lock.
    if let Some(fast_path) = targets.fast_path {
        fast_path.reconfigure_maps(&config);
    }
    Ok(ReloadSummary {
        subnets: config.subnets.len(),
        pools: config.pools.len(),
        hosts: config.hosts.len(),
        leases_kept,
        needs_restart,
        ignored_interfaces,
    })
}

/// The daemon's SIGHUP step: reload, then log the outcome. systemd hears `RELOADING=1` before
/// and `READY=1` after, whether the reload was applied or refused (the service runs either way).
pub fn handle_request(targets: &ReloadTargets<'_>) {
    crate::sd_notify::reloading();
    tracing::info!("SIGHUP: reloading {}", targets.config_path.display());
    match reload(targets) {
        Ok(summary) => {
            for line in summary.ignored_interfaces.iter().flat_map(|m| m.lines()) {
                tracing::error!("{line}");
            }
            for note in &summary.needs_restart {
                tracing::warn!("reload: {note}");
            }
            tracing::info!(
                "reload: new configuration in force ({} subnets, {} pools, {} hosts); {} leases kept",
                summary.subnets,
                summary.pools,
                summary.hosts,
                summary.leases_kept
            );
            crate::sd_notify::ready("serving (configuration reloaded)");
        }
        Err(ReloadError::Config(errors)) => {
            for line in errors.lines() {
                tracing::error!("{line}");
            }
            tracing::error!(
                "Configuration file errors encountered -- keeping the running configuration"
            );
            crate::sd_notify::ready("serving (reload refused: configuration errors)");
        }
        Err(error) => {
            if let ReloadError::NoInterfaces { ignored } = &error {
                for line in ignored.iter().flat_map(|m| m.lines()) {
                    tracing::error!("{line}");
                }
            }
            tracing::error!("reload refused: {error}; keeping the running configuration");
            crate::sd_notify::ready("serving (reload refused)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::record::{BindingState, Lease};
    use crate::lease::store::ClientKey;
    use std::net::Ipv4Addr;

    const BASE: &str = r#"
        default-lease-time 600;
        max-lease-time 7200;
        authoritative;
        subnet 10.0.0.0 netmask 255.255.255.0 {
            range 10.0.0.10 10.0.0.20;
        }
    "#;

    fn parse(text: &str) -> Config {
        crate::config::parse_str(text, "dhcpd.conf").expect("valid config")
    }

    fn failover(text_inside_pool: &str, peer_port: u16) -> String {
        format!(
            r#"
            failover peer "fo" {{
                primary; address 10.0.0.1; port 647; peer address 10.0.0.2; peer port {peer_port};
                max-response-delay 60; max-unacked-updates 10; mclt 600; split 128;
                load balance max seconds 3;
            }}
            subnet 10.0.0.0 netmask 255.255.255.0 {{
                pool {{ {text_inside_pool} range 10.0.0.10 10.0.0.20; }}
            }}
            "#
        )
    }

    /// An interface inside BASE's subnet.
    fn ten_zero_zero_one() -> Interface {
        Interface {
            name: "eth0".into(),
            index: 2,
            address: Ipv4Addr::new(10, 0, 0, 1),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            is_loopback: false,
        }
    }

    /// The defect: `: > dhcpd.conf; kill -HUP` was applied ("0 subnets, 0 pools") and every
    /// reply stopped. ISC refuses to start with such a file; the reload refuses it.
    #[test]
    fn a_config_without_a_subnet_for_any_served_interface_is_refused() {
        let served = [ten_zero_zero_one()];
        let Err(ReloadError::NoInterfaces { ignored }) = check_interfaces(&parse(""), &served)
        else {
            panic!("an empty config must be refused");
        };
        assert_eq!(
            ignored,
            [interfaces::no_subnet_message(
                "eth0",
                Some(Ipv4Addr::new(10, 0, 0, 1))
            )]
        );
        let elsewhere =
            parse("subnet 10.9.0.0 netmask 255.255.255.0 { range 10.9.0.10 10.9.0.20; }");
        assert!(check_interfaces(&elsewhere, &served).is_err());
        assert_eq!(
            check_interfaces(&parse(BASE), &served).unwrap(),
            Vec::<String>::new()
        );
        // One of two interfaces keeps its subnet: accepted, the other one named.
        let mut second = ten_zero_zero_one();
        second.name = "eth1".into();
        second.address = Ipv4Addr::new(192, 168, 1, 1);
        let ignored = check_interfaces(&parse(BASE), &[ten_zero_zero_one(), second]).unwrap();
        assert_eq!(ignored.len(), 1);
        assert!(ignored[0].starts_with("No subnet declaration for eth1 (192.168.1.1)."));
    }

    #[test]
    fn an_empty_file_changes_nothing() {
        let running = parse(BASE);
        let engine = EngineCell::new(Engine::new(Arc::new(running.clone())));
        let before = engine.load();
        let leases = ShardedStore::new(Arc::new(running.clone()), 1);
        let targets = ReloadTargets {
            config_path: Path::new("unused"),
            engine: &engine,
            leases: &leases,
            fast_path: None,
            interfaces: &[ten_zero_zero_one()],
        };
        assert!(matches!(
            apply(&targets, parse("")),
            Err(ReloadError::NoInterfaces { .. })
        ));
        assert!(Arc::ptr_eq(&before, &engine.load()));
    }

    #[test]
    fn an_unchanged_config_needs_no_restart() {
        let (config, notes) = prepare(&parse(BASE), parse(BASE)).expect("accepted");
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(config.pools.len(), 1);
    }

    #[test]
    fn restart_only_settings_keep_their_running_values() {
        let running = parse(&format!("omapi-port 7911;\n{BASE}"));
        let new = parse(&format!(
            "omapi-port 7912;\nlease-file-name \"/tmp/other.leases\";\n{BASE}"
        ));
        let (config, notes) = prepare(&running, new).expect("accepted");
        assert_eq!(config.omapi_port, Some(7911));
        assert_eq!(config.lease_file_name, None);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes.iter().any(|note| note.contains("omapi-port")));
        assert!(notes.iter().any(|note| note.contains("lease-file-name")));
    }

    /// The replies' source address is fixed at start-up, as ISC's fallback socket is bound
    /// once (`net::local_address`).
    #[test]
    fn a_changed_local_address_waits_for_a_restart() {
        let running = parse(&format!("local-address 127.0.0.1;\n{BASE}"));
        let new = parse(&format!("local-address 127.0.0.2;\n{BASE}"));
        let (config, notes) = prepare(&running, new).expect("accepted");
        assert_eq!(
            crate::net::local_address::of(&config),
            Some(Ipv4Addr::new(127, 0, 0, 1))
        );
        assert_eq!(
            notes,
            vec!["local-address changed: takes effect after a restart".to_string()]
        );
    }

    #[test]
    fn a_changed_failover_peer_keeps_the_running_declaration() {
        let running = parse(&failover("failover peer \"fo\";", 647));
        let new = parse(&failover("failover peer \"fo\";", 648));
        let (config, notes) = prepare(&running, new).expect("accepted");
        assert_eq!(config.failover_peers, running.failover_peers);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("failover peer \"fo\" changed"));
    }

    /// The engine reads each relationship's state from the driver's view by its place in the
    /// `failover peer` list; a reload that moves the failover pool (a pool declared before it)
    /// still finds the running relationship for its addresses and its pool.
    #[test]
    fn the_new_engine_reads_the_running_failover_relationships() {
        let running = parse(&failover("failover peer \"fo\";", 647));
        let engine = Engine::new(Arc::new(running.clone()));
        let new = format!(
            "subnet 10.9.0.0 netmask 255.255.255.0 {{ range 10.9.0.10 10.9.0.20; }}\n{}",
            failover("failover peer \"fo\"; max-lease-time 300;", 647)
        );
        let (new, notes) = prepare(&running, parse(&new)).expect("accepted");
        assert!(notes.is_empty(), "{notes:?}");
        let reloaded = Engine::new(Arc::new(new));
        let hooks = crate::failover::hooks::FailoverHooks::new(&running);
        let (sender, _receiver) = tokio::sync::mpsc::channel(crate::failover::hooks::CHANGES_QUEUE);
        hooks.relationships()[0].attach(sender);
        hooks.relationships()[0].publish(
            crate::failover::states::State::Recover,
            100,
            None,
            600,
            None,
        );
        let view = hooks.view();
        let address = Ipv4Addr::new(10, 0, 0, 15);
        for engine in [&engine, &reloaded] {
            let relationship = engine
                .relationship_of_address(&view, address)
                .expect("a failover address");
            assert_eq!(relationship, &view.relationships[0]);
            assert!(!relationship.serving(), "RECOVER, as the driver published");
        }
    }

    #[test]
    fn a_pool_of_a_peer_that_does_not_run_refuses_the_reload() {
        let running = parse(BASE);
        let new = parse(&failover("failover peer \"fo\";", 647));
        assert!(matches!(
            prepare(&running, new),
            Err(ReloadError::NeedsRestart(_))
        ));
    }

    #[test]
    fn the_swap_keeps_every_lease_and_uses_the_new_pools() {
        let running = parse(BASE);
        let engine = EngineCell::new(Engine::new(Arc::new(running.clone())));
        let mut store = crate::lease::store::LeaseStore::new(&running);
        let mut bound = Lease::free(Ipv4Addr::new(10, 0, 0, 10));
        bound.binding_state = BindingState::Active;
        bound.next_binding_state = BindingState::Free;
        bound.starts = 1_000;
        bound.ends = 1_600;
        store.upsert(bound.clone());
        // A free lease in a range the new config drops: it stays a record, never allocated.
        store.upsert(Lease::free(Ipv4Addr::new(10, 0, 0, 20)));
        let leases = ShardedStore::from_store(Arc::new(running.clone()), 1, store);
        let new = parse(
            r#"
            default-lease-time 900;
            max-lease-time 7200;
            authoritative;
            subnet 10.0.0.0 netmask 255.255.255.0 {
                range 10.0.0.10 10.0.0.12;
            }
            "#,
        );
        let targets = ReloadTargets {
            config_path: Path::new("unused"),
            engine: &engine,
            leases: &leases,
            fast_path: None,
            interfaces: &[ten_zero_zero_one()],
        };
        let summary = apply(&targets, new).expect("applied");
        assert_eq!(summary.leases_kept, 2);
        assert_eq!(
            engine.load().config().pools[0].ranges[0].high,
            Ipv4Addr::new(10, 0, 0, 12)
        );
        let mut store = leases.lock(0).expect("store");
        assert_eq!(store.get(bound.address), Some(&bound));
        assert!(store.get(Ipv4Addr::new(10, 0, 0, 20)).is_some());
        assert_eq!(store.pool_of(Ipv4Addr::new(10, 0, 0, 20)), None);
        let hardware = |last: u8| {
            ClientKey::Hardware(
                crate::lease::record::Hardware::new(1, &[2, 0, 0, 0, 0, last]).expect("ethernet"),
            )
        };
        let mut allocated = Vec::new();
        while let Some(address) =
            store.allocate(crate::config::model::PoolId(0), &hardware(0), 2_000)
        {
            // Each address goes to another client, so that the next allocation moves on.
            store.hold_offer(address, hardware(allocated.len() as u8 + 1), 3_000);
            allocated.push(address);
            if allocated.len() > 5 {
                break;
            }
        }
        assert_eq!(
            allocated,
            vec![Ipv4Addr::new(10, 0, 0, 11), Ipv4Addr::new(10, 0, 0, 12)]
        );
    }

    #[test]
    fn a_bad_file_changes_nothing() {
        let running = parse(BASE);
        let engine = EngineCell::new(Engine::new(Arc::new(running.clone())));
        let before = engine.load();
        let leases = ShardedStore::new(Arc::new(running.clone()), 1);
        let directory = std::env::temp_dir().join(format!("xdhcpd-reload-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("directory");
        let path = directory.join("dhcpd.conf");
        std::fs::write(
            &path,
            "subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10; \n",
        )
        .expect("write");
        let targets = ReloadTargets {
            config_path: &path,
            engine: &engine,
            leases: &leases,
            fast_path: None,
            interfaces: &[ten_zero_zero_one()],
        };
        assert!(matches!(reload(&targets), Err(ReloadError::Config(_))));
        assert!(Arc::ptr_eq(&before, &engine.load()));
        let _ = std::fs::remove_dir_all(&directory);
    }
}
