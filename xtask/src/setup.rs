//! `cargo xtask setup`: makes a Debian 12 machine (as root) ready to build, test and benchmark,
//! and reports what it did and what was already there. Safe to run again.
//!
//! Order (docs/aya-setup.md §2): policy-rc.d before any apt-get install, so no packaged
//! DHCP daemon starts as a service; apt packages; rust-src for nightly; bpf-linker 0.13.0 built
//! against LLVM 22.

use crate::util::{command, output, status};
use anyhow::{Context as _, Result};
use std::fs;
use std::os::unix::fs::PermissionsExt as _;

const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

/// Packages the build (llvm-22-dev for bpf-linker), the tests (the real peers) and the
/// benchmarks (perfdhcp comes with kea-admin) need.
const PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "iproute2",
    "isc-dhcp-server",
    "isc-dhcp-client",
    "kea-dhcp4-server",
    "kea-admin",
    "udhcpc",
    "dhcpcd-base",
    "tshark",
    "procps",
    "time",
    // Starvation attack tools for server/tests/integration/netns_hostile.rs.
    "dhcpstarv",
    "dhcpig",
    // Raw-frame generator of the same tests.
    "python3",
    // The DNS server, nsupdate and dig of the dynamic DNS tests (server/tests/integration/ddns_bind.rs),
    // which start named by hand on a loopback port; policy-rc.d keeps it from starting as a
    // service.
    "bind9",
    "bind9-utils",
    "dnsutils",
    // Kea's own control-channel client (kea-shell), which the JSON control API tests run
    // against xdhcpd (server/tests/integration/control_api.rs).
    "python3-kea-connector",
    "curl",           // the other client of the same tests
    "kea-ctrl-agent", // ships /usr/sbin/kea-shell; policy-rc.d keeps the agent from starting
    // The lease database of the PostgreSQL backend and the lease history: tests start a
    // private instance (initdb in a temporary folder, own socket), never the service.
    "postgresql",
];

const BPF_LINKER_VERSION: &str = "bpf-linker 0.13.0";

pub fn run() -> Result<()> {
    println!("==> setup");
    policy_rc_d()?;
    packages()?;
    report_packaged_daemons();
    rust_src()?;
    bpf_linker()?;
    println!("==> setup done");
    Ok(())
}

fn policy_rc_d() -> Result<()> {
    if fs::metadata(POLICY_RC_D).is_ok() {
        println!("    {POLICY_RC_D}: already there");
        return Ok(());
    }
    fs::write(
        POLICY_RC_D,
        "#!/bin/sh\n# xdhcpd: never let packaged daemons start as services\nexit 101\n",
    )
    .with_context(|| format!("write {POLICY_RC_D}"))?;
    fs::set_permissions(POLICY_RC_D, fs::Permissions::from_mode(0o755))?;
    println!("    {POLICY_RC_D}: written (exit 101: packages never start services)");
    Ok(())
}

fn installed(package: &str) -> bool {
    output(command("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|status| status.trim() == "install ok installed")
}

fn packages() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|package| !installed(package))
        .collect();
    if missing.is_empty() {
        println!("    apt packages: all {} already installed", PACKAGES.len());
        return Ok(());
    }
    println!("    apt packages missing: {}", missing.join(" "));
    status(
        command("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    status(
        command("apt-get")
            .args(["install", "-y"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    println!("    apt packages: installed {}", missing.join(" "));
    Ok(())
}

/// dhcpd, kea-dhcp4 or named running in the host's network namespace would be a packaged service
/// (policy-rc.d should have prevented it). Reported, not killed: they are not ours.
fn report_packaged_daemons() {
    let own = fs::read_link("/proc/self/ns/net").ok();
    for name in ["dhcpd", "kea-dhcp4", "named"] {
        let Some(pids) = output(command("pgrep").args(["-x", name])) else {
            continue;
        };
        for pid in pids.split_whitespace() {
            let netns = fs::read_link(format!("/proc/{pid}/ns/net")).ok();
            if netns.is_some() && netns == own {
                println!(
                    "    WARNING: {name} (pid {pid}) runs in the host's network namespace; \
                     it is not ours and was left alone"
                );
            }
        }
    }
}

fn rust_src() -> Result<()> {
    let listed = output(command("rustup").args(["+nightly", "component", "list", "--installed"]))
        .unwrap_or_default();
    if listed.lines().any(|line| line.starts_with("rust-src")) {
        println!("    rust-src (nightly): already installed");
        return Ok(());
    }
    status(command("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))?;
    println!("    rust-src (nightly): installed");
    Ok(())
}

fn bpf_linker() -> Result<()> {
    let version = output(command("bpf-linker").arg("--version")).unwrap_or_default();
    if version.trim() == BPF_LINKER_VERSION {
        println!("    {BPF_LINKER_VERSION}: already installed");
        return Ok(());
    }
    // Debian's default llvm-config is LLVM 14 (P4) and bpf-linker's default feature is llvm-23
    // (P3): point it at LLVM 22 explicitly.
    status(
        command("cargo")
            .args([
                "install",
                "--locked",
                "bpf-linker@0.13.0",
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            .env("LLVM_PREFIX", "/usr/lib/llvm-22"),
    )?;
    println!("    {BPF_LINKER_VERSION}: installed");
    Ok(())
}
