//! `cargo xtask …`: set-up of the machine, the demo, the full test run (what CI runs) and the
//! benchmarks. Every task needs root on Debian 12; none needs sudo.

mod bench;
mod bench_failover;
mod bench_failover_recovery;
mod bench_load;
mod bench_pg;
mod ci;
mod demo;
mod difftest;
mod fuzz;
#[path = "../../server/tests/netns/mod.rs"]
mod netns;
mod package;
mod plot;
mod setup;
mod util;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "xdhcpd developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what the build and the tests need (idempotent; says what it did).
    Setup,
    /// Build, start xdhcpd in a private namespace, get leases with dhclient and udhcpc.
    Demo,
    /// fmt, clippy (host and eBPF), and every test including the privileged ones.
    Test,
    /// Build the .deb (target/package/xdhcpd_VERSION_ARCH.deb); never installs it.
    Package {
        /// Package this binary instead of building target/release/xdhcpd.
        #[arg(long)]
        binary: Option<std::path::PathBuf>,
        /// Output directory (default target/package).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Fuzz every target (fuzz/) for N minutes in total; crashes land in fuzz/regressions/.
    Fuzz {
        #[arg(long, default_value_t = 10)]
        minutes: u64,
    },
    /// Differential test against a live ISC dhcpd 4.4 over testdata/difftest/ (needs root).
    Difftest {
        /// Use this xdhcpd binary instead of building target/debug/xdhcpd.
        #[arg(long)]
        binary: Option<std::path::PathBuf>,
        /// Only the configs marked `ci` (the subset `cargo xtask test` runs).
        #[arg(long)]
        ci: bool,
        /// Print new differences as entries for known-differences.toml.
        #[arg(long)]
        suggest: bool,
        /// Only these configs (file names without `.conf`).
        configs: Vec<String>,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::run(),
        Task::Demo => demo::run(),
        Task::Test => ci::run(),
        Task::Fuzz { minutes } => fuzz::run(minutes),
        Task::Difftest {
            binary,
            ci,
            suggest,
            configs,
        } => difftest::run(difftest::Options {
            binary,
            configs,
            ci,
            suggest,
        }),
        Task::Bench { which } => bench::run(which),
        Task::Package { binary, out } => package::run(binary, out).map(|_| ()),
    }
}
