//! `cargo xtask …`: set-up of the machine, the demo, the full test run (what CI runs) and the
//! benchmarks. Every task needs root on Debian 12; none needs sudo.

mod bench;
mod bench_failover;
mod ci;
mod demo;
mod fuzz;
#[path = "../../server/tests/netns/mod.rs"]
mod netns;
mod package;
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
        Task::Bench { which } => bench::run(which),
        Task::Package { binary, out } => package::run(binary, out).map(|_| ()),
    }
}
