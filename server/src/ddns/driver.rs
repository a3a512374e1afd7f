//! The daemon's side of dynamic DNS: the updater started when `ddns-update-style` is not
//! `none` (ISC starts its DNS client only then, server/dhcpd.c), its zones refreshed on reload,
//! and the thread that takes finished operations back to the leases — the variables ISC keeps
//! (`ddns-fwd-name`, `ddns-dhcid`/`ddns-txt`, `ddns-rev-name`) set or unset on the store's
//! lease and recorded through `crate::changes` (source `Ddns`), as ISC's
//! `ddns_update_lease_text` writes the lease.

use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

use super::lease::{apply_variables, followup, Followup};
use super::updater::{Finished, Updater, UpdaterSettings};
use super::zones::{Zones, DNS_PORT};
use super::DdnsMetrics;
use crate::config::model::Config;
use crate::lease::record::Lease;
use crate::lease::shards::ShardedStore;

/// The running updater.
pub struct DdnsRuntime {
    pub updater: Updater,
    pub metrics: Arc<DdnsMetrics>,
    finished: Mutex<Option<Receiver<Finished>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    runtime: tokio::runtime::Handle,
}

/// The zones of `config` (keys resolved); an unusable one is logged and left out.
pub fn zones_of(config: &Config) -> Zones {
    let mut usable = Vec::new();
    for declaration in &config.ddns.zones {
        match Zones::from_declarations(std::slice::from_ref(declaration), &config.keys, DNS_PORT) {
            Ok(_) => usable.push(declaration.clone()),
            Err(error) => tracing::error!("DDNS: zone {} not used: {error}", declaration.name),
        }
    }
    Zones::from_declarations(&usable, &config.keys, DNS_PORT).unwrap_or_default()
}

impl DdnsRuntime {
    /// Starts the updater, on the control plane, when the configuration asks for updates.
    pub fn start(
        config: &Config,
        control_plane: &crate::control_plane::ControlPlane,
    ) -> std::io::Result<Option<Self>> {
        let Some(style) = config.ddns.style else {
            return Ok(None);
        };
        let metrics = Arc::new(DdnsMetrics::default());
        let settings = UpdaterSettings::default();
        // As many finished operations as the updater may hold queued.
        let (sink, finished) = std::sync::mpsc::sync_channel(settings.queue_capacity.max(1));
        let zones = zones_of(config);
        if zones.is_empty() {
            tracing::warn!(
                "ddns-update-style {style:?} without any `zone` declaration: no update will be sent (xdhcpd does not look zones up)"
            );
        }
        let (updater, task) = Updater::spawn(
            control_plane.handle(),
            zones,
            settings,
            metrics.clone(),
            Some(sink),
        );
        tracing::info!("DDNS: {style:?} updates");
        Ok(Some(Self {
            updater,
            metrics,
            finished: Mutex::new(Some(finished)),
            task: Mutex::new(Some(task)),
            runtime: control_plane.handle().clone(),
        }))
    }

    /// A reload: the new configuration's zones (the update style itself needs a restart).
    pub fn reload(&self, config: &Config) {
        if config.ddns.style.is_none() {
            tracing::warn!("DDNS: ddns-update-style none takes effect at the next start");
        }
        self.updater.set_zones(zones_of(config));
    }

    /// Starts the thread that applies finished operations to the leases of `store` and hands
    /// each changed lease to `record` (the daemon: `changes::apply` with source `Ddns`).
    pub fn spawn_results(
        &self,
        store: Arc<ShardedStore>,
        record: impl Fn(&Lease) + Send + 'static,
    ) -> std::io::Result<()> {
        let Some(finished) = self.finished.lock().ok().and_then(|mut slot| slot.take()) else {
            return Ok(());
        };
        let updater = self.updater.clone();
        std::thread::Builder::new()
            .name("ddns-results".into())
            .spawn(move || {
                // Ends when the updater's thread ends (the channel closes).
                while let Ok(done) = finished.recv() {
                    let Ok(outcome) = &done.result else {
                        continue;
                    };
                    let address = done.operation.binding.address;
                    let now = crate::clock::unix_now();
                    let changed = {
                        let Ok(mut store) = store.lock_address(address) else {
                            return;
                        };
                        let Some(lease) = store.get(address) else {
                            continue;
                        };
                        match followup(&done.operation, outcome, lease, now) {
                            Followup::Nothing => None,
                            Followup::Readd(operation) => {
                                updater.submit(operation);
                                None
                            }
                            Followup::Variables(changes) => {
                                let mut lease = lease.clone();
                                apply_variables(&mut lease, &changes);
                                store.upsert(lease.clone());
                                Some(lease)
                            }
                        }
                    };
                    if let Some(lease) = changed {
                        record(&lease);
                    }
                }
            })?;
        Ok(())
    }

    /// Stops the updater: the operation in progress ends at its next wait.
    pub fn stop(&self) {
        self.updater.stop();
        if let Some(task) = self.task.lock().ok().and_then(|mut slot| slot.take()) {
            let _ = self.runtime.block_on(task);
        }
    }
}
