//! Replays every checked-in fuzz input — crashes found by `cargo xtask fuzz`
//! (`fuzz/regressions/<target>/`) and the seed corpora (`fuzz/seeds/<target>/`) — through the
//! same entry points the fuzz targets call (fuzz/src/lib.rs), on stable, so that CI keeps every
//! fixed crash fixed.

use crate::fuzz_entry as entry;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Panics seen anywhere, even those a `catch_unwind` inside the server swallows (the decoder's
/// last line of defence): libFuzzer aborts on them, so they are crashes to fix, not to hide.
static PANICS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn every_regression_and_seed_replays_without_panic() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
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
                let before = PANICS.load(Ordering::SeqCst);
                let outcome = std::panic::catch_unwind(|| run(&data));
                assert!(outcome.is_ok(), "{target}: {} panics", file.display());
                assert_eq!(
                    PANICS.load(Ordering::SeqCst),
                    before,
                    "{target}: {} panics inside a catch_unwind",
                    file.display()
                );
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
