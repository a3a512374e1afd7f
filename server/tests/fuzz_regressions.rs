//! Replays every checked-in fuzz input — crashes found by `cargo xtask fuzz`
//! (`fuzz/regressions/<target>/`) and the seed corpora (`fuzz/seeds/<target>/`) — through the
//! same entry points the fuzz targets call (fuzz/src/lib.rs), on stable, so that CI keeps every
//! fixed crash fixed.

#[path = "../../fuzz/src/lib.rs"]
mod entry;

use std::path::Path;

#[test]
fn every_regression_and_seed_replays_without_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut replayed = 0;
    for (target, run) in entry::TARGETS {
        for kind in ["regressions", "seeds"] {
            let Ok(entries) = std::fs::read_dir(root.join(kind).join(target)) else {
                continue;
            };
            let mut files: Vec<_> = entries
                .filter_map(|entry| Some(entry.ok()?.path()))
                .collect();
            files.sort();
            for file in files {
                let data = std::fs::read(&file).unwrap_or_else(|error| {
                    panic!("read {}: {error}", file.display());
                });
                let outcome = std::panic::catch_unwind(|| run(&data));
                assert!(outcome.is_ok(), "{target}: {} panics", file.display());
                replayed += 1;
            }
        }
    }
    eprintln!("replayed {replayed} fuzz inputs");
    assert!(
        replayed > 0,
        "no fuzz inputs found under {}",
        root.display()
    );
}
