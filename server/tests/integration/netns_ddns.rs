//! Dynamic DNS with the daemon in the loop, against a real BIND 9 (needs root, /usr/sbin/named,
//! dig and busybox udhcpc). ISC's `zone` statement takes no port, so named runs where the
//! server's updates go: on 127.0.0.1:53 *inside the lab's server namespace* (never the host's
//! port 53, never as a service). The server under test (xdhcpd, or ISC dhcpd 4.4 as the oracle
//! with `XDH_TEST_SERVER=isc`) serves the lab's veth; busybox udhcpc in the client namespace
//! asks with a host name. Checked with dig: A + DHCID (standard) or A + TXT (interim) and PTR
//! after the DHCPACK; removed at DHCPRELEASE and at expiry; the lease file carries
//! `set ddns-fwd-name = …;` as ISC writes it; with named stopped the DHCPACK still comes and
//! the update goes through once named is back.
//!
//! Run: `cargo test -p server --test netns_ddns` (as root; REQUIRE_PRIVILEGED_TESTS=1 turns a
//! skip into a failure).

use crate::common;
use crate::netns;

use std::path::Path;

use anyhow::{bail, Context as _, Result};
use netns::named::{dhcpd_zone_statements, Named, ZoneFile, DIG, DNS_WAIT, NAMED};
use netns::peers::{Server, ServerSetup};
use netns::{run, wait_for, DhcpConfig, Lab};

const UDHCPC: &str = "/usr/sbin/udhcpc";

fn can_run(test: &str) -> bool {
    if !common::privileged(test) {
        return false;
    }
    if [NAMED, DIG, UDHCPC]
        .iter()
        .all(|path| Path::new(path).exists())
    {
        return true;
    }
    assert!(
        std::env::var("REQUIRE_PRIVILEGED_TESTS").as_deref() != Ok("1"),
        "{test}: needs {NAMED}, {DIG} and {UDHCPC}"
    );
    eprintln!("SKIPPED {test}: needs {NAMED}, {DIG} and {UDHCPC}");
    false
}

/// named in the lab's server namespace with the lab's forward zone (`extra_forward` added to
/// it) and reverse zone.
fn start_named<'a>(lab: &'a Lab, extra_forward: &str) -> Result<Named<'a>> {
    Named::start(
        &lab.server,
        lab.dir.path(),
        &[
            ZoneFile {
                name: "lab.test",
                records: &format!("ns IN A 127.0.0.1\n{extra_forward}"),
            },
            ZoneFile {
                name: "0.213.10.in-addr.arpa",
                records: "",
            },
        ],
    )
}

/// dhcpd.conf of the lab with DDNS on.
fn dhcpd_conf(style: &str) -> String {
    let base = DhcpConfig::lab_default()
        .to_dhcpd_conf()
        .replace("ddns-update-style none;", "");
    format!(
        "ddns-update-style {style};\n\
         ddns-domainname \"lab.test\";\n\
         {zones}\
         # A short lease for the expiry case.\n\
         host shortlived {{ hardware ethernet 02:00:00:00:dd:02; default-lease-time 6; max-lease-time 6; }}\n\
         {base}",
        zones = dhcpd_zone_statements(&["lab.test", "0.213.10.in-addr.arpa"]),
    )
}

fn start_server(lab: &Lab, style: &str) -> Result<Server> {
    ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind: common::server_under_test(),
        config: DhcpConfig::lab_default(),
        interface: lab.server_if.clone(),
        relayed: false,
        dhcpd_conf: Some(dhcpd_conf(style)),
    }
    .start()
}

/// One udhcpc run in the client namespace with `mac`, sending host name `name`: obtains a
/// lease, puts its address on the interface and exits (`-q -n`). Bounded: at most 4
/// DISCOVERs a second apart.
fn udhcpc(lab: &Lab, mac: &str, name: &str) -> Result<()> {
    lab.set_client_mac(mac)?;
    // The previous client's address goes first.
    lab.client.ip(&["addr", "flush", "dev", &lab.client_if])?;
    let script = lab.dir.join("udhcpc.sh");
    netns::peers::write_event_script(&script, &lab.dir.join("udhcpc.events"), true)?;
    let mut command = lab.client.command(UDHCPC);
    command
        .args(["-f", "-q", "-n", "-t", "4", "-T", "1", "-A", "1", "-i"])
        .arg(&lab.client_if)
        .args(["-x", &format!("hostname:{name}"), "-s"])
        .arg(&script);
    run(&mut command).map(|_| ())
}

/// A DHCPRELEASE (RFC 2131 §4.4.6) of `address` by `mac` (client identifier 1+MAC, as udhcpc
/// sends it), unicast from the address to the server, as a client sends it. (busybox
/// udhcpc's `-R` did not send one here.)
fn release(lab: &Lab, mac: &str, address: &str) -> Result<()> {
    let program = format!(
        "import socket, struct\n\
         mac = bytes.fromhex('{mac}'.replace(':', ''))\n\
         ciaddr = socket.inet_aton('{address}')\n\
         server = socket.inet_aton('{server}')\n\
         packet = struct.pack('!BBBBIHH', 1, 1, 6, 0, 0x5eed, 0, 0) + ciaddr + bytes(12)\n\
         packet += mac + bytes(10) + bytes(192) + bytes([99, 130, 83, 99])\n\
         packet += bytes([53, 1, 7, 54, 4]) + server + bytes([61, 7, 1]) + mac + bytes([255])\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.bind(('{address}', 68))\n\
         s.sendto(packet, ('{server}', 67))\n",
        server = lab.server_address,
    );
    run(lab.client.command("python3").args(["-c", &program]))?;
    Ok(())
}

/// The last block for `address` in `path`, or what went wrong, for a message.
fn last_block_of(path: &Path, address: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.rfind(&format!("lease {address} {{"))
        .map(|start| text[start..].split("\n}").next().unwrap_or("").to_string())
        .unwrap_or_else(|| format!("no lease {address}"))
}

/// The lease file's last block for `address`, as text.
fn last_block(server: &Server, address: &str) -> Result<String> {
    let text = std::fs::read_to_string(&server.lease_file)?;
    let start = text
        .rfind(&format!("lease {address} {{"))
        .with_context(|| format!("no lease {address} in:\n{text}"))?;
    let end = text[start..]
        .find("\n}")
        .map_or(text.len(), |end| start + end + 2);
    Ok(text[start..end].to_string())
}

fn scenario(test: &str, style: &str, guard_type: &str) -> Result<()> {
    let lab = Lab::new("10.213.0.1/24")?;
    let mut named = start_named(&lab, "")?;
    let server = start_server(&lab, style)?;

    // DHCPACK: A, guard and PTR.
    udhcpc(&lab, "02:00:00:00:dd:01", "alpha")?;
    let mut address = String::new();
    wait_for("alpha's A record", DNS_WAIT, || {
        address = named.dig("alpha.lab.test", "A")?;
        Ok((!address.is_empty()).then_some(()))
    })
    .with_context(|| {
        format!(
            "named log:\n{}\nserver log:\n{}",
            named.logs(),
            server.proc.log_text()
        )
    })?;
    let octets: Vec<&str> = address.split('.').collect();
    let reverse = format!(
        "{}.{}.{}.{}.in-addr.arpa",
        octets[3], octets[2], octets[1], octets[0]
    );
    named.wait(&reverse, "PTR", "alpha.lab.test.")?;
    if named.dig("alpha.lab.test", guard_type)?.is_empty() {
        bail!("{test}: no {guard_type} guard next to alpha's A record");
    }
    // The lease file says what ISC's says once the update is done.
    wait_for("the DDNS variables in the lease file", DNS_WAIT, || {
        let block = last_block(&server, &address)?;
        Ok(block.contains("set ddns-rev-name = ").then_some(block))
    })
    .and_then(|block| {
        let guard_variable = if guard_type == "DHCID" {
            "set ddns-dhcid = \""
        } else {
            "set ddns-txt = \""
        };
        // In ISC's order: the latest binding first.
        let mut from = 0;
        for expected in [
            format!("set ddns-rev-name = \"{reverse}.\";"),
            guard_variable.to_string(),
            "set ddns-fwd-name = \"alpha.lab.test\";".to_string(),
        ] {
            match block[from..].find(&expected) {
                Some(at) => from += at + expected.len(),
                None => bail!("{expected} missing from (or out of ISC's order in)\n{block}"),
            }
        }
        Ok(())
    })?;

    // DHCPRELEASE: the names go.
    release(&lab, "02:00:00:00:dd:01", &address)?;
    named.wait("alpha.lab.test", "A", "")?;
    named.wait("alpha.lab.test", guard_type, "")?;
    named.wait(&reverse, "PTR", "")?;

    // Expiry of a six-second lease: the names come, then go.
    udhcpc(&lab, "02:00:00:00:dd:02", "beta")?;
    let mut beta = String::new();
    wait_for("beta's A record", DNS_WAIT, || {
        beta = named.dig("beta.lab.test", "A")?;
        Ok((!beta.is_empty()).then_some(()))
    })?;
    named.wait("beta.lab.test", "A", "")?;
    named.wait("beta.lab.test", guard_type, "")?;

    // named stopped: the DHCPACK does not wait for DNS; the update follows once named is back.
    named.stop();
    udhcpc(&lab, "02:00:00:00:dd:03", "gamma").context("the DHCPACK came while named was down")?;
    named.spawn()?;
    wait_for("gamma's A record after named came back", DNS_WAIT, || {
        Ok((!named.dig("gamma.lab.test", "A")?.is_empty()).then_some(()))
    })
    .with_context(|| format!("server log:\n{}", server.proc.log_text()))?;
    drop(server);
    Ok(())
}

#[test]
fn standard_style_updates_bind_from_the_daemon() {
    let test = "standard_style_updates_bind_from_the_daemon";
    if !can_run(test) {
        return;
    }
    scenario(test, "standard", "DHCID").unwrap();
}

#[test]
fn interim_style_updates_bind_from_the_daemon() {
    let test = "interim_style_updates_bind_from_the_daemon";
    if !can_run(test) {
        return;
    }
    scenario(test, "interim", "TXT").unwrap();
}

/// Issue 13, interop: ISC dhcpd 4.4 leases a name (A, DHCID, PTR in BIND, `set ddns-*` in its
/// lease file) and stops; xdhcpd starts on ISC's lease file, and the client's DHCPRELEASE makes
/// xdhcpd remove the records ISC added, from the variables ISC wrote.
#[test]
fn xdhcpd_removes_the_names_isc_added() {
    let test = "xdhcpd_removes_the_names_isc_added";
    if !can_run(test) || !Path::new("/usr/sbin/dhcpd").exists() {
        return;
    }
    let lab = Lab::new("10.213.0.1/24").unwrap();
    let named = start_named(&lab, "").unwrap();
    let setup = |kind| ServerSetup {
        netns: &lab.server,
        dir: lab.dir.path(),
        kind,
        config: DhcpConfig::lab_default(),
        interface: lab.server_if.clone(),
        relayed: false,
        dhcpd_conf: Some(dhcpd_conf("standard")),
    };
    let isc = setup(netns::peers::ServerKind::IscDhcpd).start().unwrap();
    udhcpc(&lab, "02:00:00:00:dd:04", "delta").unwrap();
    let mut address = String::new();
    wait_for("delta's A record, added by ISC", DNS_WAIT, || {
        address = named.dig("delta.lab.test", "A")?;
        Ok((!address.is_empty()).then_some(()))
    })
    .unwrap();
    assert!(!named.dig("delta.lab.test", "DHCID").unwrap().is_empty());
    wait_for("ISC's DDNS variables in its lease file", DNS_WAIT, || {
        let block = last_block(&isc, &address)?;
        Ok(block.contains("set ddns-fwd-name = ").then_some(()))
    })
    .unwrap();
    let lease_file = isc.lease_file.clone();
    drop(isc);
    eprintln!(
        "{test}: ISC leased {address} and wrote:\n{}",
        last_block_of(&lease_file, &address)
    );

    let xdhcpd = setup(netns::peers::ServerKind::Xdhcpd {
        binary: env!("CARGO_BIN_EXE_xdhcpd").into(),
        xdp: false,
    })
    .start()
    .unwrap();
    assert_eq!(xdhcpd.lease_file, lease_file, "xdhcpd reads ISC's file");
    release(&lab, "02:00:00:00:dd:04", &address).unwrap();
    let octets: Vec<&str> = address.split('.').collect();
    let reverse = format!(
        "{}.{}.{}.{}.in-addr.arpa",
        octets[3], octets[2], octets[1], octets[0]
    );
    let removed = named
        .wait("delta.lab.test", "A", "")
        .and_then(|()| named.wait("delta.lab.test", "DHCID", ""))
        .and_then(|()| named.wait(&reverse, "PTR", ""));
    if let Err(error) = removed {
        panic!(
            "{error:#}\nnamed log:\n{}\nxdhcpd log:\n{}",
            named.logs(),
            xdhcpd.proc.log_text()
        );
    }
}
