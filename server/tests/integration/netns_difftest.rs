//! The CI subset of the differential harness against ISC dhcpd 4.4 (netns/difftest.rs): the
//! configs of testdata/difftest/ marked `ci` run against ISC dhcpd and xdhcpd in turn, and any
//! difference that is neither justified (testdata/difftest/justified.toml) nor known
//! (testdata/difftest/known-differences.toml) fails. `cargo xtask difftest` runs the whole
//! corpus. Needs root and /usr/sbin/dhcpd.

use crate::common;
use crate::netns;

use netns::difftest;
use std::path::Path;

#[test]
fn ci_subset_matches_isc_dhcpd_or_is_listed() -> anyhow::Result<()> {
    if !common::privileged("ci_subset_matches_isc_dhcpd_or_is_listed") {
        return Ok(());
    }
    if !Path::new("/usr/sbin/dhcpd").exists() {
        assert!(
            std::env::var("REQUIRE_PRIVILEGED_TESTS").as_deref() != Ok("1"),
            "ISC dhcpd is not installed"
        );
        eprintln!("SKIPPED ci_subset_matches_isc_dhcpd_or_is_listed: no /usr/sbin/dhcpd");
        return Ok(());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let corpus_dir = difftest::corpus_dir(&root);
    let configs: Vec<_> = difftest::script::load_corpus(&corpus_dir)?
        .into_iter()
        .filter(|config| config.ci)
        .collect();
    assert!(
        !configs.is_empty(),
        "no config of the corpus is marked `ci`"
    );
    let scratch = netns::TempDir::new("xdh-difftest")?;
    let (outcomes, verdict) = difftest::run_corpus(
        &configs,
        &corpus_dir,
        Path::new(env!("CARGO_BIN_EXE_xdhcpd")),
        scratch.path(),
        |line| eprintln!("{line}"),
    )?;
    eprintln!("{}", difftest::report(&outcomes, &verdict));
    assert!(
        verdict.passed(),
        "differences from ISC dhcpd 4.4 that are in neither list:\n{}",
        difftest::suggested_entries(&verdict.new)
    );
    Ok(())
}
