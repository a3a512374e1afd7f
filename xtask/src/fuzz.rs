//! `cargo xtask fuzz --minutes N`: the fuzz campaign of fuzz/ (cargo-fuzz, nightly, outside the
//! workspace). Installs cargo-fuzz when missing, writes seed corpora extracted from
//! `testdata/captures` (DHCP, failover and OMAPI payloads of the pcaps) and `testdata/samples`
//! (configs, lease files) into each target's corpus, runs every target for N minutes **in
//! total** (split evenly, one after the other: two cores are shared), prints the executions per
//! target and copies every crash into `fuzz/regressions/<target>/`, which
//! `server/tests/integration/fuzz_regressions.rs` replays on stable.

use std::fs;
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::util::{command, output, root};

const TARGETS: &[&str] = &[
    "config_parse",
    "lease_file",
    "dhcp_packet",
    "failover_message",
    "omapi_message",
    "engine_decision",
    "failover_machine",
    "ddns_answer",
    "icmp_reply",
    "bulk_leasequery_stream",
    "control_api_request",
    "shadow_input",
    "history_spool",
];

pub fn run(minutes: u64) -> Result<()> {
    let fuzz = root().join("fuzz");
    if output(command("cargo").args(["fuzz", "--version"])).is_none() {
        println!("==> installing cargo-fuzz");
        crate::util::status(command("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    // The same folder as the tests: the repository's testdata/.
    let seeds = extract_seeds(&root().join("testdata"))?;
    let per_target = (minutes * 60 / TARGETS.len() as u64).max(10);
    println!(
        "==> {} targets, {per_target} s each ({} seeds extracted)",
        TARGETS.len(),
        seeds
    );
    let mut summary = Vec::new();
    for target in TARGETS {
        let corpus = fuzz.join("corpus").join(target);
        fs::create_dir_all(&corpus)?;
        copy_dir(&fuzz.join("seeds").join(target), &corpus)?;
        let artifacts = fuzz.join("artifacts").join(target);
        fs::create_dir_all(&artifacts)?;
        let log = command("cargo")
            .current_dir(&fuzz)
            .args(["+nightly", "fuzz", "run", target])
            .arg(&corpus)
            .arg("--")
            .arg(format!("-max_total_time={per_target}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg("-print_final_stats=1")
            .output()
            .with_context(|| format!("cargo fuzz run {target}"))?;
        let text = String::from_utf8_lossy(&log.stderr).into_owned();
        let executions = text
            .lines()
            .find_map(|line| line.strip_prefix("stat::number_of_executed_units:"))
            .map(|value| value.trim().to_owned())
            .unwrap_or_else(|| "?".to_owned());
        let mut crashes = 0;
        for entry in fs::read_dir(&artifacts)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("crash-")
                || name.starts_with("oom-")
                || name.starts_with("timeout-")
            {
                let dest = fuzz.join("regressions").join(target);
                fs::create_dir_all(&dest)?;
                fs::copy(entry.path(), dest.join(&name))?;
                crashes += 1;
            }
        }
        if !log.status.success() && crashes == 0 {
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            println!(
                "    {target}: fuzzer failed:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        println!("    {target}: {executions} executions, {crashes} crash file(s)");
        summary.push((target, executions, crashes));
    }
    println!("==> executions per target ({per_target} s each)");
    for (target, executions, crashes) in summary {
        println!("    {target:<18} {executions:>12}  crashes: {crashes}");
    }
    Ok(())
}

/// Writes the seed corpora into `fuzz/seeds/<target>/`; returns how many files.
fn extract_seeds(testdata: &Path) -> Result<usize> {
    let seeds = root().join("fuzz").join("seeds");
    let mut count = 0;
    let mut put = |target: &str, name: &str, data: &[u8]| -> Result<()> {
        let dir = seeds.join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(name), data)?;
        count += 1;
        Ok(())
    };
    for entry in fs::read_dir(testdata.join("samples"))?.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let data = fs::read(&path)?;
        if name.ends_with(".leases") {
            put("lease_file", &name, &data)?;
        } else if name.ends_with(".conf") || name.ends_with(".inc") {
            put("config_parse", &name, &data)?;
        }
    }
    for entry in fs::read_dir(testdata.join("captures"))?.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".conf") {
            put("config_parse", &name, &fs::read(&path)?)?;
            continue;
        }
        if !name.ends_with(".pcap") {
            continue;
        }
        let stem = name.trim_end_matches(".pcap");
        let mut dhcp_sequence = Vec::new();
        let mut streams: std::collections::BTreeMap<(u16, u16), Vec<u8>> = Default::default();
        for (index, (source, destination, payload)) in
            udp_tcp_payloads(&fs::read(&path)?).into_iter().enumerate()
        {
            let ports = [source, destination];
            if ports.contains(&67) || ports.contains(&68) {
                if index % 8 == 0 || dhcp_sequence.len() < 4096 {
                    put("dhcp_packet", &format!("{stem}-{index}"), &payload)?;
                }
                if dhcp_sequence.len() < 8192 {
                    let length = u16::try_from(payload.len()).unwrap_or(u16::MAX);
                    dhcp_sequence.extend_from_slice(&length.to_be_bytes());
                    dhcp_sequence.push(0);
                    dhcp_sequence.extend_from_slice(&payload);
                }
            } else if ports.contains(&647) || ports.contains(&847) || ports.contains(&7911) {
                streams
                    .entry((source, destination))
                    .or_default()
                    .extend(payload);
            }
        }
        if !dhcp_sequence.is_empty() {
            put(
                "engine_decision",
                &format!("{stem}-sequence"),
                &dhcp_sequence,
            )?;
        }
        for ((source, destination), stream) in streams {
            let stream = &stream[..stream.len().min(64 * 1024)];
            let label = format!("{stem}-{source}-{destination}");
            if source == 7911 || destination == 7911 {
                put("omapi_message", &label, stream)?;
            } else {
                put("failover_message", &label, stream)?;
                for selector in [0u8, 1] {
                    let mut data = vec![selector];
                    data.extend_from_slice(stream);
                    put("failover_machine", &format!("{label}-{selector}"), &data)?;
                }
            }
        }
    }
    Ok(count)
}

/// (source port, destination port, payload) of every IPv4 UDP or TCP packet with a payload in
/// a classic little-endian Ethernet pcap.
fn udp_tcp_payloads(pcap: &[u8]) -> Vec<(u16, u16, Vec<u8>)> {
    let mut packets = Vec::new();
    let mut offset = 24;
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(pcap.get(at..at + 4)?.try_into().ok()?))
    };
    while let Some(captured) = u32_at(offset + 8) {
        let start = offset + 16;
        let end = start + captured as usize;
        let Some(frame) = pcap.get(start..end) else {
            break;
        };
        offset = end;
        let Some(ip) = frame
            .get(14..)
            .filter(|_| frame.get(12..14) == Some(&[8, 0]))
        else {
            continue;
        };
        let Some(&first) = ip.first() else { continue };
        let header = usize::from(first & 0x0f) * 4;
        let total = ip
            .get(2..4)
            .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
        let ip = &ip[..total.min(ip.len())];
        let Some(transport) = ip.get(header..) else {
            continue;
        };
        let port = |at: usize| {
            transport
                .get(at..at + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
        };
        let (Some(source), Some(destination)) = (port(0), port(2)) else {
            continue;
        };
        let payload = match ip.get(9) {
            Some(17) => transport.get(8..),
            Some(6) => transport
                .get(12)
                .and_then(|&b| transport.get(usize::from(b >> 4) * 4..)),
            _ => None,
        };
        if let Some(payload) = payload.filter(|payload| !payload.is_empty()) {
            packets.push((source, destination, payload.to_vec()));
        }
    }
    packets
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(from) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo xtask fuzz` runs every target `fuzz/fuzz_targets/` defines.
    #[test]
    fn every_fuzz_target_is_run() {
        let directory = root().join("fuzz/fuzz_targets");
        let mut defined: Vec<String> = std::fs::read_dir(&directory)
            .expect("fuzz/fuzz_targets")
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                Some(name.strip_suffix(".rs")?.to_owned())
            })
            .collect();
        defined.sort();
        let mut run: Vec<String> = TARGETS.iter().map(|target| (*target).to_owned()).collect();
        run.sort();
        assert_eq!(defined, run);
    }
}
