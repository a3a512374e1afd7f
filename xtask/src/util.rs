//! Small helpers: the workspace root, commands with `~/.cargo/bin` on PATH, and checked runs.

use anyhow::{bail, Context as _, Result};
use std::path::PathBuf;
use std::process::Command;

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), PathBuf::from)
}

/// PATH with `$HOME/.cargo/bin` first: rustup, cargo and bpf-linker live there
/// (docs/aya-setup.md P5).
pub fn path_env() -> String {
    let current = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    match std::env::var("HOME") {
        Ok(home) => {
            let cargo_bin = format!("{home}/.cargo/bin");
            if current.split(':').any(|entry| entry == cargo_bin) {
                current
            } else {
                format!("{cargo_bin}:{current}")
            }
        }
        Err(_) => current,
    }
}

/// A command run from the workspace root with the PATH above.
pub fn command(program: &str) -> Command {
    let mut command = Command::new(program);
    command.current_dir(root()).env("PATH", path_env());
    command
}

/// Runs with inherited stdio; fails on a non-zero exit.
pub fn status(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("spawn {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed: {status}");
    }
    Ok(())
}

/// Runs and returns stdout (stderr passes through); `None` when it cannot be run or fails.
pub fn output(command: &mut Command) -> Option<String> {
    let output = command.output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `cargo build --release` of the daemon; returns the binary's path.
pub fn build_release() -> Result<PathBuf> {
    println!("==> cargo build --release -p server");
    status(command("cargo").args(["build", "--release", "-p", "server", "--bin", "xdhcpd"]))?;
    Ok(root().join("target/release/xdhcpd"))
}
