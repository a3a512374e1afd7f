//! Builds the XDP object (`server-ebpf`) with aya-build, on the nightly toolchain, into
//! `$OUT_DIR/server`, where `xdp::loader` includes it.
//!
//! `AYA_BUILD_SKIP=1` skips that build; a placeholder keeps `include_bytes_aligned!` compiling
//! (docs/aya-setup.md P8). It is only for quick lint/unit runs: the placeholder cannot be loaded, and
//! the daemon then falls back to userspace with a log line.
use anyhow::{anyhow, Context as _};

fn main() -> anyhow::Result<()> {
    let out_dir = std::env::var("OUT_DIR").context("OUT_DIR")?;
    let skip = matches!(std::env::var("AYA_BUILD_SKIP").as_deref(), Ok("1" | "true"));
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    if skip {
        let object = std::path::Path::new(&out_dir).join("server");
        if !object.exists() {
            std::fs::write(&object, b"").context("write eBPF placeholder")?;
        }
        return Ok(());
    }
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let ebpf = metadata
        .packages
        .into_iter()
        .find(|package| package.name.as_str() == "server-ebpf")
        .ok_or_else(|| anyhow!("server-ebpf package not found"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("server-ebpf manifest has no parent"))?
        .as_str()
        .to_owned();
    aya_build::build_ebpf(
        [aya_build::Package {
            name: ebpf.name.as_str(),
            root_dir: &root_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
