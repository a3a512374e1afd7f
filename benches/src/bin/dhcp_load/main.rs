//! `dhcp_load`: a DHCPv4 load generator that should never be the limit of a benchmark (Linux,
//! root, run inside the client namespace of the netns lab). One thread, AF_PACKET with
//! `sendmmsg`/`recvmmsg` batches; every simulated client is stateful (RFC 2131 §4.4.1:
//! DISCOVER → OFFER → REQUEST → ACK) with its own MAC, either broadcasting on the link or
//! behind a simulated relay agent (giaddr and option 82, RFC 3046).
//!
//! - `dhcp_load rate …`: a paced ladder of DORA rates (`--rates 1000,5000,0`, 0 = as fast as
//!   the window of exchanges in flight allows), one report per step.
//! - `dhcp_load avalanche …`: every client starts at once and retransmits with RFC 2131 §4.1's
//!   backoff (4 s, 8 s, … 64 s, ±1 s; `--base` scales it) until all are bound: the
//!   reconnect storm after a power cut. Reports the time to the last ACK.
//! - both can then renew (`--renew`: one RENEWING DHCPREQUEST per bound client, §4.3.2) and
//!   release (`--release`, §4.4.4); the generator answers ARP for its clients' addresses, so a
//!   server answering a renewal through its kernel reaches them.
//! - `dhcp_load reflect …`: the other end of the veth for the self-test: answers DISCOVER with
//!   OFFER and REQUEST with ACK from precomputed replies, so the generator's own capacity can be
//!   measured with no server.
//!
//! Every report ends with a `RESULT key value …` line for the harness (`cargo xtask bench`),
//! including the generator's own CPU time (getrusage).
#![expect(clippy::disallowed_methods, reason = "driver owns the clock")]

mod engine;
mod link;
mod reflect;
mod report;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use std::net::Ipv4Addr;

#[derive(Parser)]
#[command(name = "dhcp_load", about = "DHCPv4 load generator over AF_PACKET")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Paced DORA ladder: one step per rate.
    Rate {
        #[command(flatten)]
        common: Common,
        /// DORA exchanges started per second, one step each; 0 = unbounded.
        #[arg(long, value_delimiter = ',', default_value = "1000")]
        rates: Vec<u32>,
        /// Seconds per step.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Exchanges in flight at most (the unbounded step's only limit).
        #[arg(long, default_value_t = 4096)]
        window: usize,
        /// An exchange without its ACK after this many seconds is lost (no retransmission in
        /// this mode, as perfdhcp).
        #[arg(long, default_value_t = 2.0)]
        timeout: f64,
    },
    /// Every client starts at once and retransmits with RFC 2131 §4.1 backoff until bound.
    Avalanche {
        #[command(flatten)]
        common: Common,
        /// First retransmission delay in seconds (RFC 2131 §4.1: 4); doubled up to 16× it
        /// (64 s), randomised by ± a quarter of it (±1 s).
        #[arg(long, default_value_t = 4.0)]
        base: f64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600.0)]
        deadline: f64,
    },
    /// Answer DISCOVER/REQUEST with precomputed OFFER/ACK frames (the self-test's far end).
    Reflect {
        /// Interface to answer on.
        #[arg(long)]
        interface: String,
        /// The server identifier the replies carry.
        #[arg(long, default_value = "10.213.0.1")]
        server_id: Ipv4Addr,
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 3600.0)]
        seconds: f64,
    },
}

/// What every client-side mode shares.
#[derive(Args, Clone)]
struct Common {
    /// Interface to send on (the client end of the veth).
    #[arg(long, required_unless_present = "loopback")]
    interface: Option<String>,
    /// No interface: the generator's own loopback, where an in-process responder answers
    /// (the generator's ceiling without the kernel's per-frame cost).
    #[arg(long, conflicts_with = "interface")]
    loopback: bool,
    /// Distinct simulated clients (MACs 02:44:…); a ladder reuses them round-robin.
    #[arg(long, default_value_t = 10_000)]
    clients: u32,
    /// Act as a relay agent with this giaddr (RFC 3046 option 82 added); the server must
    /// know the address (a subnet containing it). Without it the clients broadcast.
    #[arg(long)]
    relay: Option<Ipv4Addr>,
    /// The server's address (relayed requests, renewals and releases are unicast to it).
    #[arg(long)]
    server: Option<Ipv4Addr>,
    /// The server's MAC (relayed requests go to it; learnt from the replies otherwise).
    #[arg(long)]
    server_mac: Option<String>,
    /// Our MAC on the interface (the relay agent's source MAC).
    #[arg(long)]
    relay_mac: Option<String>,
    /// After the main phase, renew every bound client once (RENEWING DHCPREQUEST).
    #[arg(long)]
    renew: bool,
    /// Then release every bound client (DHCPRELEASE).
    #[arg(long)]
    release: bool,
    /// Seconds to keep reading replies after a phase's last send.
    #[arg(long, default_value_t = 2.0)]
    drain: f64,
    /// Write `address mac` of every bound client here.
    #[arg(long)]
    leases_out: Option<std::path::PathBuf>,
    /// The second octet of the clients' MACs (02:SITE:…): generators run side by side
    /// against the servers of one lease database simulate different clients.
    #[arg(long, default_value_t = 0x44)]
    mac_site: u8,
}

fn main() {
    if let Err(error) = run() {
        eprintln!("dhcp_load: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    match Cli::parse().mode {
        Mode::Rate {
            common,
            rates,
            seconds,
            window,
            timeout,
        } => {
            if rates.is_empty() || seconds <= 0.0 || window == 0 {
                bail!("--rates, --seconds and --window must be positive");
            }
            let mut load = engine::Load::new(&common.into_options()?)?;
            for rate in rates {
                load.rate_step(rate, seconds, window, timeout);
            }
            load.after_phases()
        }
        Mode::Avalanche {
            common,
            base,
            deadline,
        } => {
            if base <= 0.0 {
                bail!("--base must be positive");
            }
            let mut load = engine::Load::new(&common.into_options()?)?;
            let all_bound = load.avalanche(base, deadline);
            load.after_phases()?;
            if !all_bound {
                bail!("not every client was bound before the deadline");
            }
            Ok(())
        }
        Mode::Reflect {
            interface,
            server_id,
            seconds,
        } => reflect::run(&interface, server_id, seconds),
    }
}

impl Common {
    fn into_options(self) -> Result<engine::Options> {
        let parse_mac = |text: &Option<String>| -> Result<Option<[u8; 6]>> {
            text.as_deref().map(benches::wire::parse_mac).transpose()
        };
        let server_mac = parse_mac(&self.server_mac)?;
        let relay_mac = parse_mac(&self.relay_mac)?;
        if self.clients == 0 || self.clients > engine::MAX_CLIENTS {
            bail!("--clients must be 1..={}", engine::MAX_CLIENTS);
        }
        let relay = match self.relay {
            Some(giaddr) => {
                let (Some(server), Some(server_mac), Some(relay_mac)) =
                    (self.server, server_mac, relay_mac)
                else {
                    bail!("--relay needs --server, --server-mac and --relay-mac");
                };
                Some(engine::Relay {
                    giaddr,
                    server,
                    server_mac,
                    relay_mac,
                })
            }
            None => None,
        };
        engine::set_mac_site(self.mac_site);
        Ok(engine::Options {
            interface: self.interface,
            clients: self.clients,
            relay,
            renew: self.renew,
            release: self.release,
            drain: self.drain,
            leases_out: self.leases_out,
        })
    }
}
