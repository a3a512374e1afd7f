//! The daemon's side of the JSON control API: the [`DaemonBackend`] over the daemon's shared
//! state (`crate::control_api::backend`).

use std::sync::Arc;

use super::{interfaces, unix_now, Shared};
use crate::control_api::backend::DaemonBackend;
use crate::lease::shards::ShardedStore;

/// The control API's view of the daemon (`crate::control_api::backend`).
pub(super) fn backend(
    shared: &Arc<Shared>,
    config: &Arc<crate::config::model::Config>,
    leases: &Arc<ShardedStore>,
    dynamic_hosts: &Arc<crate::host_table::DynamicHosts>,
    config_path: &std::path::Path,
    interfaces: &[interfaces::Interface],
) -> DaemonBackend {
    let persist_shared = shared.clone();
    // The same host layer as OMAPI's; its host records go to the group commit, and the
    // backend waits for them to be durable before it answers.
    let hosts = crate::omapi::objects::Objects::new(
        config.clone(),
        leases.clone(),
        dynamic_hosts.clone(),
        super::host_persister(persist_shared, "control API host"),
        Box::new(|_: &[crate::lease::record::Lease]| {}),
        Box::new(|| {}),
        Box::new(crate::omapi::objects::NoFailover),
    );
    let registry = shared
        .metrics
        .registry(crate::metrics::collectors::Sources {
            config: {
                let shared = shared.clone();
                Arc::new(move || shared.engine.load().config().clone())
            },
            leases: leases.clone(),
            commit: shared.committer.stats(),
            fast_path: shared.fast_path.clone(),
            failover: shared.failover.relationships().to_vec(),
        });
    let reload_shared = shared.clone();
    let reload_leases = leases.clone();
    let reload_path = config_path.to_path_buf();
    let reload_interfaces = interfaces.to_vec();
    DaemonBackend {
        config: {
            let shared = shared.clone();
            Box::new(move || shared.engine.load().config().clone())
        },
        leases: leases.clone(),
        hosts,
        apply: {
            let shared = shared.clone();
            Box::new(move |changed| {
                shared.apply(
                    crate::changes::LeaseChange::new(
                        crate::changes::ChangeSource::ControlApi,
                        changed,
                    ),
                    None,
                )
            })
        },
        flush: {
            let shared = shared.clone();
            Box::new(move || shared.committer.flush().is_ok())
        },
        rewrite: {
            let shared = shared.clone();
            Box::new(move || {
                if !shared.committer.compacts() {
                    return Err(
                        "the leases are in a database: there is no lease file to rewrite"
                            .to_owned(),
                    );
                }
                tracing::info!("control API: lease file rewrite requested");
                shared
                    .committer
                    .request_compaction()
                    .map_err(|error| error.to_string())
            })
        },
        failover_pool: {
            let shared = shared.clone();
            Box::new(move |address| shared.failover.of_address(address).is_some())
        },
        config_path: config_path.to_path_buf(),
        reload: Box::new(move || {
            let shared = &reload_shared;
            let running = shared.engine.load();
            tracing::info!("control API: reloading {}", reload_path.display());
            let summary = crate::reload::reload(&crate::reload::ReloadTargets {
                config_path: &reload_path,
                engine: &shared.engine,
                leases: &reload_leases,
                fast_path: shared.fast_path.as_deref(),
                interfaces: &reload_interfaces,
            })
            .map_err(|error| {
                tracing::error!("control API reload refused: {error}");
                error.to_string()
            })?;
            if let Some(ddns) = &shared.ddns {
                ddns.reload(shared.engine.load().config());
            }
            let reloaded = shared.engine.load();
            if !Arc::ptr_eq(&running, &reloaded) {
                if let Err(error) = shared.reverse_names.start(reloaded.config()) {
                    tracing::warn!("control API reload: get-lease-hostnames: {error}");
                }
            }
            let mut text = format!(
                "{} subnets, {} pools, {} hosts; {} leases kept",
                summary.subnets, summary.pools, summary.hosts, summary.leases_kept
            );
            for note in &summary.needs_restart {
                text.push_str(&format!("; needs a restart: {note}"));
            }
            tracing::info!("control API reload: new configuration in force ({text})");
            Ok(text)
        }),
        metrics_text: Box::new(move || crate::metrics::render(&registry).unwrap_or_default()),
        metrics: shared.metrics.clone(),
        started: unix_now(),
        last_reload: std::sync::atomic::AtomicU32::new(0),
    }
}
