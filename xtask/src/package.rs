//! `cargo xtask package`: a Debian package built with `dpkg-deb` from a staged tree (no
//! cargo-deb to install). It puts xdhcpd where isc-dhcp-server's files are, so that it replaces
//! that package on a Debian host:
//!
//! | path | what |
//! |---|---|
//! | /usr/sbin/xdhcpd | the daemon |
//! | /lib/systemd/system/xdhcpd.service | the hardened `Type=notify` unit (`packaging/`) |
//! | /etc/dhcp/dhcpd.conf | a default config, a dpkg conffile: never overwritten once changed |
//! | /var/lib/dhcp/dhcpd.leases | created by postinst when missing, an existing one kept |
//!
//! `Conflicts: isc-dhcp-server` and `Replaces: isc-dhcp-server`: both servers bind port 67 and
//! write the same lease file, so two installed at once is never right. `Replaces` hands
//! ISC's conffile /etc/dhcp/dhcpd.conf over to this package, so a later
//! `apt purge isc-dhcp-server` cannot delete the operator's configuration, and dpkg keeps the
//! operator's edited file (its usual conffile rule). No `Provides`: nothing in Debian depends
//! on isc-dhcp-server by name for its interface, and pretending to be it would let apt pick
//! xdhcpd where ISC's DHCPv6 server is meant.

use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};

use crate::util;

/// Where the unit, default config and maintainer scripts live in the repository.
fn packaging_dir() -> PathBuf {
    util::root().join("packaging")
}

/// `cargo xtask package [--binary FILE] [--out DIR]`: builds (or takes) the binary and writes
/// `xdhcpd_VERSION_ARCH.deb`; returns its path.
pub fn run(binary: Option<PathBuf>, out: Option<PathBuf>) -> Result<PathBuf> {
    let binary = match binary {
        Some(binary) => binary,
        None => util::build_release()?,
    };
    let out = out.unwrap_or_else(|| util::root().join("target/package"));
    let deb = build(&binary, &out, &packaging_dir())?;
    println!("==> {}", deb.display());
    Ok(deb)
}

/// The Debian architecture of this host (`dpkg --print-architecture`).
fn architecture() -> Result<String> {
    util::output(std::process::Command::new("dpkg").arg("--print-architecture"))
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
        .context("dpkg --print-architecture")
}

fn control(version: &str, architecture: &str, installed_kib: u64) -> String {
    format!(
        "Package: xdhcpd\n\
         Version: {version}\n\
         Architecture: {architecture}\n\
         Maintainer: xdhcpd developers <xdhcpd@localhost>\n\
         Installed-Size: {installed_kib}\n\
         Depends: libc6 (>= 2.34)\n\
         Recommends: systemd\n\
         Conflicts: isc-dhcp-server\n\
         Replaces: isc-dhcp-server\n\
         Section: net\n\
         Priority: optional\n\
         Description: DHCPv4 server, drop-in replacement for ISC dhcpd 4.4\n \
         xdhcpd reads ISC dhcpd's dhcpd.conf and dhcpd.leases unchanged, speaks ISC's\n \
         failover protocol with an ISC partner and answers omshell over OMAPI. Lease\n \
         renewals are answered by an XDP program in the kernel when the config allows.\n"
    )
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("copy {} to {}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Stages the tree under `out` and runs `dpkg-deb --build`.
pub fn build(binary: &Path, out: &Path, packaging: &Path) -> Result<PathBuf> {
    if !binary.is_file() {
        bail!("no binary at {}", binary.display());
    }
    let version = env!("CARGO_PKG_VERSION");
    let architecture = architecture()?;
    let name = format!("xdhcpd_{version}_{architecture}");
    let stage = out.join(&name);
    if stage.exists() {
        std::fs::remove_dir_all(&stage)?;
    }
    copy(binary, &stage.join("usr/sbin/xdhcpd"), 0o755)?;
    copy(
        &packaging.join("xdhcpd.service"),
        &stage.join("lib/systemd/system/xdhcpd.service"),
        0o644,
    )?;
    copy(
        &packaging.join("dhcpd.conf"),
        &stage.join("etc/dhcp/dhcpd.conf"),
        0o644,
    )?;
    std::fs::create_dir_all(stage.join("var/lib/dhcp"))?;
    for script in ["postinst", "prerm", "postrm"] {
        copy(
            &packaging.join("debian").join(script),
            &stage.join("DEBIAN").join(script),
            0o755,
        )?;
    }
    std::fs::write(stage.join("DEBIAN/conffiles"), "/etc/dhcp/dhcpd.conf\n")?;
    let installed = std::fs::metadata(binary)?.len() / 1024 + 16;
    std::fs::write(
        stage.join("DEBIAN/control"),
        control(version, &architecture, installed),
    )?;
    let deb = out.join(format!("{name}.deb"));
    util::status(
        std::process::Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            .arg(&stage)
            .arg(&deb),
    )?;
    Ok(deb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn have(tool: &str) -> bool {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|output| output.status.success())
    }

    /// Builds the package around a stand-in binary and checks what dpkg-deb says is inside.
    /// Nothing is installed.
    #[test]
    fn package_holds_binary_unit_config_and_replaces_isc() -> Result<()> {
        if !have("dpkg-deb") || !have("dpkg") {
            println!("skipped: dpkg-deb is not installed");
            return Ok(());
        }
        let out = std::env::temp_dir().join(format!("xdhcpd-package-{}", std::process::id()));
        std::fs::create_dir_all(&out)?;
        let binary = out.join("xdhcpd");
        std::fs::copy("/bin/true", &binary)?;
        let deb = build(&binary, &out, &packaging_dir())?;
        let contents = util::output(std::process::Command::new("dpkg-deb").arg("-c").arg(&deb))
            .context("dpkg-deb -c")?;
        for path in [
            "./usr/sbin/xdhcpd",
            "./lib/systemd/system/xdhcpd.service",
            "./etc/dhcp/dhcpd.conf",
            "./var/lib/dhcp/",
        ] {
            assert!(
                contents.lines().any(|line| line.ends_with(path)),
                "{path} missing:\n{contents}"
            );
        }
        assert!(contents.contains("-rwxr-xr-x root/root"), "{contents}");
        // Created by postinst, never shipped: an existing lease file must not be replaced.
        assert!(!contents.contains("dhcpd.leases"), "{contents}");
        let info = util::output(std::process::Command::new("dpkg-deb").arg("-I").arg(&deb))
            .context("dpkg-deb -I")?;
        for field in [
            "Package: xdhcpd",
            "Conflicts: isc-dhcp-server",
            "Replaces: isc-dhcp-server",
            "conffiles",
            "postinst",
        ] {
            assert!(info.contains(field), "{field} missing:\n{info}");
        }
        std::fs::remove_dir_all(&out)?;
        Ok(())
    }

    /// `systemd-analyze verify` on the unit, with ExecStart pointing at an existing binary.
    #[test]
    fn unit_file_verifies() -> Result<()> {
        if !have("systemd-analyze") {
            println!("skipped: systemd-analyze is not installed");
            return Ok(());
        }
        let unit = std::fs::read_to_string(packaging_dir().join("xdhcpd.service"))?;
        let directory = std::env::temp_dir().join(format!("xdhcpd-unit-{}", std::process::id()));
        std::fs::create_dir_all(&directory)?;
        let stand_in = directory.join("xdhcpd");
        std::fs::copy("/bin/true", &stand_in)?;
        let path = directory.join("xdhcpd.service");
        std::fs::write(
            &path,
            unit.replace("/usr/sbin/xdhcpd", &stand_in.display().to_string()),
        )?;
        let output = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()?;
        let messages = String::from_utf8_lossy(&output.stderr);
        std::fs::remove_dir_all(&directory)?;
        // Lines about other units on this host (their own warnings) are not ours.
        let ours: Vec<&str> = messages
            .lines()
            .filter(|line| line.contains("xdhcpd.service"))
            .collect();
        assert!(output.status.success() && ours.is_empty(), "{messages}");
        Ok(())
    }
}
