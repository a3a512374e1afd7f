//! `cargo xtask test`: everything CI checks, in order, with a summary (the cargo steps, then
//! a 200-client avalanche against xdhcpd: `bench_load::ci_avalanche`). Privileged tests run
//! because we are root; `REQUIRE_PRIVILEGED_TESTS=1` (set by `.ci/run`) makes them fail rather
//! than skip when the capabilities are missing.

use crate::util::command;
use anyhow::{bail, Result};
use std::process::Command;
use std::time::Duration;

struct Step {
    name: &'static str,
    command: Command,
}

/// A check run in this process after the cargo steps.
struct Check {
    name: &'static str,
    run: fn() -> Result<()>,
}

/// Run after the cargo steps, in order.
const CHECKS: &[Check] = &[Check {
    name: "avalanche (200 clients)",
    run: avalanche,
}];

/// Clients of the CI avalanche: enough that they arrive as a burst, few enough for < 30 s.
const CI_AVALANCHE_CLIENTS: u32 = 200;

/// A small reconnect storm against the debug xdhcpd (benches' `dhcp_load avalanche`): every
/// client bound, no address acknowledged twice, the lease file agreeing. Privileged: skipped
/// without the capabilities unless `REQUIRE_PRIVILEGED_TESTS=1`, which makes that a failure.
pub fn avalanche() -> Result<()> {
    if !crate::netns::has_lab_capabilities() {
        if std::env::var("REQUIRE_PRIVILEGED_TESTS").as_deref() == Ok("1") {
            bail!("needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and REQUIRE_PRIVILEGED_TESTS=1 is set");
        }
        println!("SKIPPED avalanche: needs root (CAP_NET_ADMIN)");
        return Ok(());
    }
    let xdhcpd = crate::bench_load::build_debug()?;
    let generator = crate::bench_load::build_generator(false)?;
    crate::bench_load::ci_avalanche(&xdhcpd, &generator, CI_AVALANCHE_CLIENTS)
}

fn cargo(args: &[&str]) -> Command {
    let mut command = command("cargo");
    command.args(args);
    command
}

pub fn run() -> Result<()> {
    crate::setup::run()?;
    let steps = vec![
        Step {
            name: "fmt",
            command: cargo(&["fmt", "--all", "--", "--check"]),
        },
        Step {
            name: "clippy (host)",
            command: cargo(&[
                "clippy",
                "--workspace",
                "--exclude",
                "server-ebpf",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        },
        Step {
            // The eBPF crate is linted for the host target, as the aya template does
            // (docs/aya-setup.md §5).
            name: "clippy (eBPF, nightly)",
            command: cargo(&[
                "+nightly",
                "clippy",
                "-p",
                "server-ebpf",
                "--all-targets",
                "--",
                "-D",
                "warnings",
                "-C",
                "panic=abort",
                "-Zpanic_abort_tests",
            ]),
        },
        Step {
            // Unit, integration and the privileged netns tests (they use the xdhcpd binary
            // that cargo builds for the test run: CARGO_BIN_EXE_xdhcpd).
            name: "test",
            command: cargo(&[
                "test",
                "--workspace",
                "--exclude",
                "server-ebpf",
                "--no-fail-fast",
            ]),
        },
    ];
    let mut results = Vec::new();
    for mut step in steps {
        let args: Vec<String> = step
            .command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        println!("==> {}: cargo {}", step.name, args.join(" "));
        let started = crate::netns::now();
        let ok = step.command.status().is_ok_and(|status| status.success());
        let took = crate::netns::now().duration_since(started);
        println!("<== {}: {}", step.name, verdict(ok));
        results.push((step.name, ok, took));
    }
    for check in CHECKS {
        println!("==> {}", check.name);
        let started = crate::netns::now();
        let result = (check.run)();
        if let Err(error) = &result {
            println!("    {error:#}");
        }
        let took = crate::netns::now().duration_since(started);
        println!("<== {}: {}", check.name, verdict(result.is_ok()));
        results.push((check.name, result.is_ok(), took));
    }
    println!("\nsummary:");
    for (name, ok, took) in &results {
        println!("  {:<24} {:<6} {}", name, verdict(*ok), seconds(*took));
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, ok, _)| !ok)
        .map(|(name, _, _)| *name)
        .collect();
    if !failed.is_empty() {
        bail!("failed: {}", failed.join(", "));
    }
    println!("all passed");
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "FAILED"
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}
