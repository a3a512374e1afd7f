//! Fails early with a clear message when bpf-linker is missing (docs/aya-setup.md P5).
fn main() {
    let linker = which::which("bpf-linker")
        .expect("bpf-linker not on PATH: run `cargo xtask setup` and put ~/.cargo/bin on PATH");
    println!("cargo:rerun-if-changed={}", linker.display());
}
