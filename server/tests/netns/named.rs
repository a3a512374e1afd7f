//! BIND 9 `named` started by hand inside a lab namespace, as the DNS server of dynamic DNS
//! tests (server/tests/integration/netns_ddns*.rs). ISC's `zone` statement takes no port, so
//! named listens where the DHCP server's updates go: 127.0.0.1:53 *inside the namespace* (never
//! the host's port 53, never as a service). Its zones are primary, updatable with one TSIG key
//! (`ddns-key`, hmac-sha256, [`SECRET`]) and transferable from 127.0.0.1 (`dig AXFR`). Killed
//! on drop; every wait is bounded.

use super::{wait_for, Netns, Proc};
use anyhow::{Context as _, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const NAMED: &str = "/usr/sbin/named";
pub const DIG: &str = "/usr/bin/dig";
/// The secret of the `ddns-key` both named and the DHCP server use.
pub const SECRET: &str = "dGhlIHNoYTI1NiBzZWNyZXQgb2YgZGRucyB0ZXN0cyE=";
/// Every wait on DNS is bounded by this.
pub const DNS_WAIT: Duration = Duration::from_secs(60);

const ZONE_HEADER: &str = "$TTL 300\n\
    @ IN SOA ns.lab.test. hostmaster.lab.test. ( 1 3600 600 86400 300 )\n\
    @ IN NS ns.lab.test.\n";

/// One primary zone: its name (no final dot) and the records it starts with, besides the SOA
/// and NS records.
pub struct ZoneFile<'z> {
    pub name: &'z str,
    pub records: &'z str,
}

/// The `key` and `zone` statements of a dhcpd.conf whose updates go to this named.
pub fn dhcpd_zone_statements(zones: &[&str]) -> String {
    let mut text = format!("key ddns-key {{ algorithm hmac-sha256; secret \"{SECRET}\"; }}\n");
    for zone in zones {
        text.push_str(&format!(
            "zone {zone}. {{ primary 127.0.0.1; key ddns-key; }}\n"
        ));
    }
    text
}

/// named in a namespace, on 127.0.0.1:53 there.
pub struct Named<'a> {
    netns: &'a Netns,
    dir: PathBuf,
    proc: Option<Proc>,
    /// The first zone: asked for its SOA to know named is up.
    probe_zone: String,
}

impl<'a> Named<'a> {
    /// Writes named.conf and the zone files under `dir/named` and starts named.
    pub fn start(netns: &'a Netns, dir: &Path, zones: &[ZoneFile<'_>]) -> Result<Self> {
        let dir = dir.join("named");
        std::fs::create_dir_all(&dir)?;
        let d = dir.display();
        let mut conf = format!(
            "options {{ directory \"{d}\"; pid-file \"{d}/named.pid\"; \
             session-keyfile \"{d}/session.key\"; managed-keys-directory \"{d}\";\n\
             listen-on port 53 {{ 127.0.0.1; }}; listen-on-v6 {{ none; }}; recursion no;\n\
             dnssec-validation no; notify no; allow-transfer {{ 127.0.0.1; }}; }};\n\
             controls {{ }};\n\
             logging {{ channel log {{ file \"{d}/named.log\"; severity info; }};\n\
             category default {{ log; }}; category update {{ log; }}; }};\n\
             key \"ddns-key\" {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};\n"
        );
        for (index, zone) in zones.iter().enumerate() {
            let file = format!("zone{index}.db");
            conf.push_str(&format!(
                "zone \"{}\" {{ type primary; file \"{d}/{file}\";\n\
                 allow-update {{ key \"ddns-key\"; }}; }};\n",
                zone.name
            ));
            std::fs::write(dir.join(file), format!("{ZONE_HEADER}{}", zone.records))?;
        }
        std::fs::write(dir.join("named.conf"), conf)?;
        let mut named = Self {
            netns,
            dir,
            proc: None,
            probe_zone: zones
                .first()
                .map_or("lab.test", |zone| zone.name)
                .to_owned(),
        };
        named.spawn()?;
        Ok(named)
    }

    /// Starts (again) the named of this directory and waits until it answers.
    pub fn spawn(&mut self) -> Result<()> {
        let mut command = self.netns.command(NAMED);
        command
            .args(["-f", "-n", "1", "-4", "-c"])
            .arg(self.dir.join("named.conf"));
        let mut proc = Proc::spawn("named", command, self.dir.join("named.stderr"))?;
        let probe_zone = self.probe_zone.clone();
        wait_for("named to answer", DNS_WAIT, || {
            proc.check_running()?;
            Ok((!self.dig(&probe_zone, "SOA")?.is_empty()).then_some(()))
        })
        .with_context(|| self.logs())?;
        self.proc = Some(proc);
        Ok(())
    }

    pub fn stop(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill();
        }
    }

    pub fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("{}{}", read("named.stderr"), read("named.log"))
    }

    fn dig_lines(&self, args: &[&str]) -> Result<Vec<String>> {
        // No answer (named stopped) prints only ";" lines: nothing there.
        let output = self
            .netns
            .command(DIG)
            .args(["@127.0.0.1", "+time=1", "+tries=1"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .context("run dig")?;
        let text = String::from_utf8_lossy(&output.stdout);
        let mut lines: Vec<String> = text
            .lines()
            .filter(|line| !line.starts_with(';') && !line.trim().is_empty())
            .map(str::to_owned)
            .collect();
        lines.sort();
        Ok(lines)
    }

    /// `dig +short`, sorted lines.
    pub fn dig(&self, name: &str, rtype: &str) -> Result<String> {
        Ok(self.dig_lines(&["+short", name, rtype])?.join("\n"))
    }

    /// The zone's records (`dig AXFR`), one per line with single spaces, sorted, the SOA
    /// record without its serial (each update increments it) and listed once. Empty when
    /// named did not answer.
    pub fn zone_records(&self, zone: &str) -> Result<Vec<String>> {
        let mut records: Vec<String> = self
            .dig_lines(&["+nocmd", "+nostats", "+noall", "+answer", zone, "AXFR"])?
            .iter()
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                match fields.as_slice() {
                    [name, ttl, class, "SOA", mname, rname, _serial, rest @ ..] => format!(
                        "{name} {ttl} {class} SOA {mname} {rname} SERIAL {}",
                        rest.join(" ")
                    ),
                    _ => fields.join(" "),
                }
            })
            .collect();
        records.dedup();
        Ok(records)
    }

    /// Waits until `dig name rtype` says `expected` ("" for no record).
    pub fn wait(&self, name: &str, rtype: &str, expected: &str) -> Result<()> {
        let mut last = String::new();
        wait_for(&format!("{name} {rtype} = {expected:?}"), DNS_WAIT, || {
            last = self.dig(name, rtype)?;
            Ok((last == expected).then_some(()))
        })
        .with_context(|| format!("last answer {last:?}; named log:\n{}", self.logs()))
    }
}

impl Drop for Named<'_> {
    fn drop(&mut self) {
        self.stop();
    }
}
