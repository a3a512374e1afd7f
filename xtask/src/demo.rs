//! `cargo xtask demo`: builds xdhcpd, starts it in a private namespace pair with the embedded
//! configuration below, lets ISC dhclient and busybox udhcpc get leases from it, prints what
//! they got and the server's lease file, and tears everything down. Fails if a client got no
//! lease.

use crate::netns::peers::{start_dhclient, start_udhcpc, ServerKind, ServerSetup};
use crate::netns::{DhcpConfig, Lab};
use anyhow::{bail, Result};
use std::time::Duration;

/// The demo's dhcpd.conf, as an ISC user would write it.
const DEMO_CONFIG: &str = r#"# xdhcpd demo: one subnet on the server's veth
authoritative;
ddns-update-style none;
ping-check false;
default-lease-time 600;
max-lease-time 7200;
option domain-name "demo.test";
option domain-name-servers 10.213.0.1;

subnet 10.213.0.0 netmask 255.255.255.0 {
  range 10.213.0.100 10.213.0.199;
  option routers 10.213.0.1;
  option broadcast-address 10.213.0.255;
}
"#;

/// The second client's own MAC (a macvlan on the client end of the veth).
const SECOND_CLIENT_MAC: &str = "02:00:0a:d5:00:02";

pub fn run() -> Result<()> {
    crate::setup::run()?;
    // XDH_DEMO_SERVER=isc runs the same demo against ISC dhcpd, to check the demo itself.
    let kind = if std::env::var("XDH_DEMO_SERVER").as_deref() == Ok("isc") {
        ServerKind::IscDhcpd
    } else {
        ServerKind::Xdhcpd {
            binary: crate::util::build_release()?,
            xdp: true,
        }
    };
    let label = kind.label();
    let lab = Lab::new("10.213.0.1/24")?;
    lab.add_client_macvlan("xc1", SECOND_CLIENT_MAC)?;
    println!(
        "==> namespaces {} and {}, veth {} (10.213.0.1/24) <-> {}; second client on macvlan xc1",
        lab.server.name, lab.client.name, lab.server_if, lab.client_if
    );
    let server = ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind,
        config: DhcpConfig::lab_default(),
        interface: lab.server_if.clone(),
        relayed: false,
        dhcpd_conf: Some(DEMO_CONFIG.to_owned()),
    }
    .start()?;
    println!("==> {label} is listening (pid {})", server.proc.pid());

    let mut dhclient = start_dhclient(&lab.client, lab.dir.path(), &lab.client_if, false)?;
    let mut udhcpc = start_udhcpc(&lab.client, lab.dir.path(), "xc1", true)?;
    let timeout = Duration::from_secs(30);
    let got_dhclient = dhclient.wait_event(&["BOUND"], 1, timeout);
    let got_udhcpc = udhcpc.wait_event(&["bound"], 1, timeout);

    match &got_dhclient {
        Ok(address) => println!("\n==> dhclient on {} got {address}", lab.client_if),
        Err(error) => println!("\n==> dhclient got no lease: {error:#}"),
    }
    if let Ok(text) = std::fs::read_to_string(&dhclient.lease_file) {
        println!("--- dhclient's lease file\n{}", text.trim_end());
    }
    match &got_udhcpc {
        Ok(address) => println!("\n==> udhcpc on xc1 ({SECOND_CLIENT_MAC}) got {address}"),
        Err(error) => println!("\n==> udhcpc got no lease: {error:#}"),
    }
    let leases = std::fs::read_to_string(&server.lease_file).unwrap_or_default();
    println!(
        "\n--- server lease file {}\n{}",
        server.lease_file.display(),
        leases.trim_end()
    );
    drop(dhclient);
    drop(udhcpc);
    drop(server);
    drop(lab);
    println!("\n==> torn down");
    if got_dhclient.is_err() || got_udhcpc.is_err() {
        bail!("a client got no lease");
    }
    Ok(())
}
