//! `cargo xtask …`: set-up, demo, test, bench.
fn main() {}
