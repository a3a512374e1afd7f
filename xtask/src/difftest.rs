//! `cargo xtask difftest`: the differential harness against a live ISC dhcpd 4.4 over the whole
//! corpus (testdata/difftest/; the harness is server/tests/netns/difftest.rs, whose CI subset
//! runs as server/tests/integration/netns_difftest.rs). Fails on any difference that is neither justified
//! nor known (testdata/difftest/justified.toml, known-differences.toml).

use crate::netns::{self, difftest};
use crate::util::{command, root, status};
use anyhow::{bail, Result};
use std::path::PathBuf;

pub struct Options {
    /// Use this xdhcpd instead of building target/debug/xdhcpd.
    pub binary: Option<PathBuf>,
    /// Only these configs (names without `.conf`); all when empty.
    pub configs: Vec<String>,
    /// Only the configs marked `ci` (what `cargo xtask test` runs).
    pub ci: bool,
    /// Print the new differences as list entries to paste.
    pub suggest: bool,
}

pub fn run(options: Options) -> Result<()> {
    if !std::path::Path::new("/usr/sbin/dhcpd").exists() {
        bail!("/usr/sbin/dhcpd (ISC dhcpd 4.4) is missing: run `cargo xtask setup`");
    }
    let binary = match options.binary {
        Some(binary) => binary,
        None => {
            // The debug build, as the tests use (XDP is not used: the servers run --no-xdp).
            println!("==> cargo build -p server --bin xdhcpd");
            status(command("cargo").args(["build", "-p", "server", "--bin", "xdhcpd"]))?;
            root().join("target/debug/xdhcpd")
        }
    };
    let corpus_dir = difftest::corpus_dir(&root());
    let configs: Vec<_> = difftest::script::load_corpus(&corpus_dir)?
        .into_iter()
        .filter(|config| !options.ci || config.ci)
        .filter(|config| options.configs.is_empty() || options.configs.contains(&config.name))
        .collect();
    if let Some(missing) = options
        .configs
        .iter()
        .find(|name| !configs.iter().any(|config| &config.name == *name))
    {
        bail!("no config {missing}.conf in {}", corpus_dir.display());
    }
    let scratch = netns::TempDir::new("xdh-difftest")?;
    let started = netns::now();
    let (outcomes, verdict) =
        difftest::run_corpus(&configs, &corpus_dir, &binary, scratch.path(), |line| {
            println!("{line}")
        })?;
    println!("\n{}", difftest::report(&outcomes, &verdict));
    println!(
        "took {:.1} s",
        netns::now().duration_since(started).as_secs_f64()
    );
    if options.suggest && !verdict.new.is_empty() {
        println!(
            "\n# entries for {}:\n{}",
            difftest::KNOWN_LIST,
            difftest::suggested_entries(&verdict.new)
        );
    }
    if !verdict.passed() {
        bail!(
            "{} differences from ISC dhcpd 4.4 are in neither list",
            verdict.new.len()
        );
    }
    Ok(())
}
