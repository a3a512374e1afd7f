//! Every sample and capture dhcpd.conf in `testdata/` parses and validates (hickory-style test over
//! every sample config), plus file-based checks of what the example yields.

use std::path::PathBuf;

use xdhcpd::config::{load_file, Config};

/// The repository's `testdata/` folder.
fn testdata_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

fn load(relative: &str) -> Config {
    let path = testdata_dir().join(relative);
    load_file(&path).unwrap_or_else(|errors| panic!("{}:\n{errors}", path.display()))
}

#[test]
fn samples_dhcpd_example_conf() {
    let config = load("samples/dhcpd-example.conf");
    // The include beside the file was found and its host added.
    assert!(config.hosts.iter().any(|host| host.name == "extra1"));
    assert!(config.hosts.iter().any(|host| host.name == "printer1"));
    assert_eq!(config.omapi_port, Some(7911));
    assert_eq!(config.omapi_key.as_deref(), Some("omapi_key"));
    assert_eq!(config.keys[0].secret, b"0123456789abcdef");
    assert_eq!(config.classes.len(), 2);
    assert_eq!(config.classes[1].subclasses[0].data, b"port-1/1/1");
    let peer = &config.failover_peers[0];
    assert_eq!(peer.name, "dhcp-fo");
    assert_eq!(peer.mclt, 1800);
    assert_eq!(peer.load_balance_max_seconds, 3);
    assert_eq!(config.pools.len(), 2);
    assert!(config
        .pools
        .iter()
        .all(|pool| pool.failover_peer.as_deref() == Some("dhcp-fo")));
    assert_eq!(config.shared_networks[0].subnets.len(), 2);
    assert_eq!(config.log_facility.as_deref(), Some("local7"));
    let warnings: Vec<_> = config.warnings.iter().map(|w| &w.message).collect();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn captures_fo_primary_conf() {
    let config = load("captures/fo-primary.conf");
    let peer = &config.failover_peers[0];
    assert!(peer.primary);
    assert_eq!(peer.hba.map(|hba| hba[0]), Some(0xff));
    assert_eq!(config.pools[0].failover_peer.as_deref(), Some("lab-fo"));
}

#[test]
fn captures_fo_secondary_conf() {
    let config = load("captures/fo-secondary.conf");
    let peer = &config.failover_peers[0];
    assert!(!peer.primary);
    assert_eq!(peer.hba, None);
    assert_eq!(peer.max_lease_misbalance, 15);
    assert_eq!(config.omapi_port, Some(7912));
}

/// Any `.conf` added to `testdata/` later is covered too.
#[test]
fn every_testdata_conf_file_parses() {
    for folder in ["samples", "captures"] {
        let Ok(entries) = std::fs::read_dir(testdata_dir().join(folder)) else {
            panic!("missing {}", testdata_dir().join(folder).display());
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path
                .extension()
                .is_some_and(|extension| extension == "conf")
            {
                if let Err(errors) = load_file(&path) {
                    panic!("{}:\n{errors}", path.display());
                }
            }
        }
    }
}
