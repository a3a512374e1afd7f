//! Shadow mode (`xdhcpd --shadow`): xdhcpd beside a live ISC dhcpd, on the same host or on
//! one that sees the same traffic (a mirror port). It reads the same dhcpd.conf, follows ISC's
//! lease file ([`follow`]), sees the clients' messages and ISC's replies on the wire
//! ([`capture`]), computes with the engine the reply it would have sent, **sends nothing**,
//! and compares it field by field with ISC's ([`pairing`], then `dhcp_compare`, the
//! differential tests' comparison). What it finds goes to the log (rate-limited, both packets
//! decoded), to Prometheus counters and to a state file that `xdhcpd --shadow-report` prints
//! ([`report`]).
//!
//! What it never does: open ISC's lease file for writing (the follower opens it read-only and
//! shadow mode keeps no lease file of its own: its store lives in memory), bind a UDP socket
//! (port 67 or any other), send a datagram (the packet sockets are only read), write ISC's PID
//! file, touch the kernel's XDP or ARP state, run `execute`/`log` statements' effects, update
//! DNS or talk to a failover partner. The engine's own decisions (an OFFER's held address, an
//! ACK's lease) change its private copy of the store; ISC's lease file stays the truth: each
//! record ISC writes replaces the private copy's lease for that address.

pub mod capture;
pub mod follow;
pub mod pairing;
pub mod report;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dhcp_compare::lists::Entry;
use dhcp_compare::replies::{compare_replies, Reply};

use crate::cli::Cli;
use crate::clock::{monotonic, unix_now};
use crate::daemon::DaemonError;
use crate::engine::{Destination, Engine, Request, Snapshot};
use crate::lease::record::UnixTime;
use crate::lease::store::LeaseStore;
use crate::net::ports::Ports;
use capture::{Frame, PacketCapture};
use follow::Follower;
use pairing::{MessageKind, PairKey, Pairing};
use report::Totals;

/// How long ISC gets to answer a message before it counts as unanswered. ISC answers within
/// milliseconds, or after its `ping-check` (1 s by default, `ping-timeout`).
const PAIRING_TIMEOUT_MS: u64 = 5_000;
/// Messages waiting for ISC's reply at most.
const PAIRING_CAPACITY: usize = 65_536;
/// How often the state file is written.
const SAVE_INTERVAL: Duration = Duration::from_secs(5);
/// Difference lines logged per minute at most.
const LOG_LINES_PER_MINUTE: u32 = 10;
/// Frames read from one socket before the others get their turn.
const FRAMES_PER_TURN: usize = 256;

/// The differential tests' justified differences (testdata/difftest/justified.toml), of which
/// those for every config apply here too.
const JUSTIFIED_LIST: &str = include_str!("../../../testdata/difftest/justified.toml");

/// The state file: `--shadow-state`, else `xdhcpd-shadow.state` beside ISC's lease file.
pub fn state_path(cli: &Cli, leases_path: &Path) -> PathBuf {
    cli.shadow_state.clone().unwrap_or_else(|| {
        leases_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(report::DEFAULT_STATE_NAME)
    })
}

/// `xdhcpd --shadow-report`: the summary of the state file, or why there is none.
pub fn report_text(cli: &Cli) -> Result<String, String> {
    let path = match &cli.shadow_state {
        Some(path) => path.clone(),
        None => {
            let config = crate::config::load_file(&cli.config_path())
                .map_err(|errors| errors.to_string())?;
            state_path(cli, &crate::daemon::leases_path(cli, &config))
        }
    };
    match Totals::load(&path) {
        Ok(Ok(totals)) => Ok(format!(
            "{}\n(state file {})\n",
            totals.render(),
            path.display()
        )),
        Ok(Err(error)) => Err(format!("{}: {error}", path.display())),
        Err(error) => Err(format!(
            "{}: {error} (has `xdhcpd --shadow` run with this configuration?)",
            path.display()
        )),
    }
}

/// A client message waiting for ISC's reply: what it was, and what xdhcpd would have sent.
struct Waiting {
    exchange: String,
    kind: MessageKind,
    ours: Option<Reply>,
    /// The engine holds the offered address as ISC does while it pings it (`ping-check`): the
    /// probe ends when ISC's OFFER comes, or when ISC never answers.
    ping: Option<crate::engine::PingCheck>,
}

/// The shadow run's state besides the sockets.
struct Shadow {
    engine: Engine,
    store: LeaseStore,
    starvation: crate::engine::starvation::StarvationState,
    pairing: Pairing<Waiting>,
    totals: Arc<Mutex<Totals>>,
    justified: Vec<Entry>,
    ports: Ports,
    limited_broadcast: Ipv4Addr,
    follower: Follower,
    /// OMAPI hosts from ISC's lease file (the last record of each name), and the engine's
    /// view of them and of ping checks.
    hosts: Vec<crate::lease::file::HostRecord>,
    snapshot: Snapshot,
    /// ISC replied since the follower last looked: its lease records are in the file by now
    /// (ISC writes, then answers), and are read before the next message is decided.
    follow_due: bool,
    log_limit: LogLimit,
}

/// Runs shadow mode until SIGTERM/SIGINT.
pub fn run(cli: &Cli) -> Result<(), DaemonError> {
    let signals = crate::signals::Signals::install()?;
    let config = crate::config::load_file(&cli.config_path())
        .map_err(|errors| DaemonError::Config(errors.to_string()))?;
    for warning in &config.warnings {
        tracing::warn!("{}: {}", warning.location, warning.message);
    }
    let leases_path = crate::daemon::leases_path(cli, &config);
    let state_path = state_path(cli, &leases_path);
    let selection = crate::daemon::select_interfaces(cli, &config)?;
    crate::daemon::log_ignored_interfaces(&selection);
    if selection.chosen.is_empty() {
        return Err(DaemonError::NoInterfaces);
    }
    let ports = Ports::of(&config, cli.port);
    let limited_broadcast = config
        .scopes
        .first()
        .and_then(|global| global.limited_broadcast_address)
        .unwrap_or(Ipv4Addr::BROADCAST);
    let justified = report::shadow_justified(
        dhcp_compare::lists::parse_list(JUSTIFIED_LIST, "reason")
            .map_err(|error| DaemonError::Config(format!("justified.toml: {error:#}")))?,
    );
    let now = unix_now();
    let totals = match Totals::load(&state_path) {
        Ok(Ok(totals)) => {
            tracing::info!(
                "shadow: continuing the totals of {} ({} exchanges so far)",
                state_path.display(),
                totals.compared
            );
            totals
        }
        Ok(Err(error)) => {
            return Err(DaemonError::Config(format!(
                "{}: {error}",
                state_path.display()
            )))
        }
        Err(_) => Totals::new(now),
    };
    // Written once now, so that a state directory we cannot write stops the start.
    totals.save(&state_path)?;
    let totals = Arc::new(Mutex::new(totals));
    let config = Arc::new(config);
    let mut shadow = Shadow {
        store: LeaseStore::new(&config),
        engine: Engine::new(config.clone()),
        starvation: Default::default(),
        pairing: Pairing::new(PAIRING_CAPACITY, PAIRING_TIMEOUT_MS),
        totals: totals.clone(),
        justified,
        ports,
        limited_broadcast,
        follower: Follower::new(&leases_path),
        hosts: Vec::new(),
        // ISC's OFFER of a new address waits for its ping (ping-check, on by default): the
        // engine then holds the address and ignores the client's retransmissions, as ISC does.
        snapshot: Snapshot {
            ping_checks: true,
            ..Snapshot::default()
        },
        follow_due: false,
        log_limit: LogLimit::default(),
    };
    // ISC's lease file as it is now, then whatever ISC appends.
    while shadow.follow().map_err(|error| DaemonError::Leases {
        path: leases_path.clone(),
        message: error.to_string(),
    })? > 0
    {}
    let _ = shadow
        .engine
        .expire(now, &Default::default(), &mut shadow.store);
    tracing::info!(
        "shadow: {} leases from {} (followed, read-only); nothing will be sent",
        shadow.store.len(),
        leases_path.display()
    );
    let mut captures = Vec::new();
    let mut names = Vec::new();
    for interface in &selection.chosen {
        let capture = PacketCapture::open(interface.index, [ports.server, ports.client]).map_err(
            |source| DaemonError::Socket {
                interface: interface.name.clone(),
                source,
            },
        )?;
        captures.push((capture, interface.clone()));
        names.push(interface.name.clone());
    }
    tracing::info!(
        "shadow: watching {} (UDP {} and {}), state in {}",
        names.join(", "),
        ports.server,
        ports.client,
        state_path.display()
    );
    let control_plane = match cli.metrics_listen.or(config.metrics_listen) {
        Some(listen) => {
            let control_plane = crate::control_plane::ControlPlane::start()?;
            let mut registry = prometheus_client::registry::Registry::with_prefix("xdhcpd");
            registry.register_collector(Box::new(report::ShadowCollector {
                totals: totals.clone(),
            }));
            crate::metrics::serve(
                control_plane.handle(),
                control_plane.token(),
                listen,
                registry,
            )?;
            tracing::info!("metrics on http://{listen}/metrics");
            Some(control_plane)
        }
        None => None,
    };
    let mut buffer = vec![0u8; 65_536];
    let started = monotonic();
    let mut last_save = monotonic();
    let mut last_expiry = unix_now();
    let fds: Vec<i32> = captures
        .iter()
        .map(|(capture, _)| capture.raw_fd())
        .collect();
    while !signals.shutdown_requested() {
        capture::wait_readable(&fds, 100);
        for (capture, interface) in &captures {
            for _ in 0..FRAMES_PER_TURN {
                let length = match capture.receive(&mut buffer) {
                    Ok(Some(length)) => length,
                    Ok(None) => break,
                    Err(error) => {
                        tracing::error!("shadow: capture on {}: {error}", interface.name);
                        std::thread::sleep(Duration::from_millis(100));
                        break;
                    }
                };
                if let Some(frame) = capture::parse_frame(&buffer[..length]) {
                    let now_ms = started.elapsed().as_millis() as u64;
                    shadow.frame(&frame, interface.address, now_ms);
                }
            }
        }
        let now_ms = started.elapsed().as_millis() as u64;
        shadow.expire_waiting(now_ms);
        let now = unix_now();
        if now != last_expiry {
            last_expiry = now;
            // Leases end in the private copy as they do in ISC (ISC writes few of these
            // transitions itself).
            let _ = shadow
                .engine
                .expire(now, &Default::default(), &mut shadow.store);
            let dropped: u64 = captures.iter().map(|(capture, _)| capture.dropped()).sum();
            if dropped > 0 {
                shadow.totals().capture_drops += dropped;
            }
            if let Err(error) = shadow.follow() {
                tracing::warn!("shadow: {}: {error}", leases_path.display());
            }
        }
        if last_save.elapsed() >= SAVE_INTERVAL {
            last_save = monotonic();
            shadow.save(&state_path);
        }
    }
    // What is still waiting is not compared: ISC may yet answer it.
    shadow.save(&state_path);
    let totals = shadow.totals();
    tracing::info!(
        "shadow: {} exchanges compared, {} identical, {} with differences (xdhcpd --shadow-report)",
        totals.compared,
        totals.identical,
        totals.differing()
    );
    if let Some(control_plane) = control_plane {
        control_plane.shutdown(Duration::from_secs(2));
    }
    Ok(())
}

impl Shadow {
    fn totals(&self) -> std::sync::MutexGuard<'_, Totals> {
        self.totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn save(&self, path: &Path) {
        let totals = self.totals().clone();
        if let Err(error) = totals.save(path) {
            tracing::warn!("shadow: cannot write {}: {error}", path.display());
        }
    }

    /// Reads what ISC appended to its lease file into the private store; returns the number of
    /// bytes read.
    fn follow(&mut self) -> std::io::Result<usize> {
        self.follow_due = false;
        let followed = self.follower.poll()?;
        if followed.restarted {
            tracing::debug!(
                "shadow: reading {} from its start",
                self.follower.path().display()
            );
        }
        for error in &followed.errors {
            tracing::warn!(
                "shadow: {}:{}:{}: {}",
                self.follower.path().display(),
                error.line,
                error.column,
                error.message
            );
        }
        for lease in followed.leases {
            self.store.upsert(lease);
        }
        if !followed.hosts.is_empty() {
            for record in followed.hosts {
                match self.hosts.iter_mut().find(|host| host.name == record.name) {
                    Some(host) => *host = record,
                    None => self.hosts.push(record),
                }
            }
            let table = crate::omapi::host_table(self.engine.config(), self.hosts.clone());
            self.snapshot.hosts = table.snapshot();
        }
        Ok(followed.bytes)
    }

    /// One captured datagram: a client's (or relay's) message to the server port, or ISC's
    /// reply from it.
    fn frame(&mut self, frame: &Frame<'_>, interface_address: Ipv4Addr, now_ms: u64) {
        let Some(key) = pair_key(frame.payload) else {
            return;
        };
        let Ok(message) = crate::net::decode::decode_message(frame.payload) else {
            return;
        };
        let kind: MessageKind = message.opts().msg_type().map(u8::from);
        match frame.payload[0] {
            // BOOTREQUEST to the server's port.
            1 if frame.udp_destination == self.ports.server => {
                if self.follow_due {
                    if let Err(error) = self.follow() {
                        tracing::warn!("shadow: {}: {error}", self.follower.path().display());
                    }
                }
                let (ours, ping) = self.decide(frame, &message, interface_address);
                let waiting = Waiting {
                    exchange: exchange_text(frame.payload, kind),
                    kind,
                    ours,
                    ping,
                };
                if self.pairing.insert(now_ms, key, kind, waiting).is_some() {
                    self.totals().overflow += 1;
                }
            }
            // BOOTREPLY from the server's port: ISC's answer.
            2 if frame.udp_source == self.ports.server => {
                self.follow_due = true;
                let isc = isc_reply(frame);
                match self.pairing.take(&key, kind) {
                    Some(waiting) => self.compare(waiting, Some(&isc)),
                    None => self.totals().unpaired_replies += 1,
                }
            }
            _ => {}
        }
    }

    /// The reply xdhcpd would have sent, as it would have addressed it (`None` when it would
    /// have said nothing), and the ping check it would have made first. Nothing is sent,
    /// committed or executed.
    fn decide(
        &mut self,
        frame: &Frame<'_>,
        message: &dhcproto::v4::Message,
        interface_address: Ipv4Addr,
    ) -> (Option<Reply>, Option<crate::engine::PingCheck>) {
        let request = Request {
            message,
            source: SocketAddrV4::new(frame.ip_source, frame.udp_source),
            interface_address: Some(interface_address),
            raw: self.engine.config().reads_packet.then_some(frame.payload),
        };
        // A DHCPLEASEQUERY (RFC 4388) is answered from the store without changing it, as the
        // workers answer it (`Engine::lease_query`).
        let decision = if message.opts().msg_type() == Some(dhcproto::v4::MessageType::LeaseQuery) {
            self.engine
                .lease_query(unix_now(), &self.snapshot, &request, &self.store)
        } else {
            self.engine.handle(
                unix_now(),
                &self.snapshot,
                &request,
                &mut self.store,
                &mut self.starvation,
            )
        };
        let ping = decision.ping_check;
        let Some(reply) = decision.reply else {
            return (None, ping);
        };
        let bootp = match reply.encode() {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!("shadow: cannot encode xdhcpd's reply: {error}");
                return (None, ping);
            }
        };
        let (ip_dst, udp_dport, link) = match reply.destination {
            Destination::Relay(giaddr) => (giaddr, self.ports.server, "unicast"),
            Destination::Unicast(address) => (address, self.ports.client, "unicast"),
            Destination::Broadcast => (self.limited_broadcast, self.ports.client, "broadcast"),
            Destination::Hardware { address, .. } => (address, self.ports.client, "chaddr"),
        };
        let reply = Reply {
            link: link.to_owned(),
            ip_dst,
            udp_dport,
            bootp,
        };
        (Some(reply), ping)
    }

    /// Messages ISC did not answer in time: compared as ISC's silence.
    fn expire_waiting(&mut self, now_ms: u64) {
        for waiting in self.pairing.expire(now_ms) {
            if expects_answer(waiting.kind) {
                self.totals().isc_silent += 1;
            }
            self.compare(waiting, None);
        }
    }

    fn compare(&mut self, waiting: Waiting, isc: Option<&Reply>) {
        // ISC's ping of the address is over (it offered, or it never will): so is ours. When
        // the address answered ISC's ping, ISC's lease file says it is abandoned.
        if let Some(check) = &waiting.ping {
            let _ = self
                .engine
                .ping_timed_out(unix_now(), check, &mut self.store);
        }
        let key = report::key(&waiting.exchange);
        let differences = compare_replies(&key, isc, waiting.ours.as_ref());
        let now = unix_now();
        let remaining = self.totals().record(
            now,
            &waiting.exchange,
            differences,
            &self.justified,
            (isc, waiting.ours.as_ref()),
        );
        let show = |reply: Option<&Reply>| {
            reply.map_or_else(|| "no reply".to_owned(), dhcp_compare::replies::describe)
        };
        if remaining.is_empty() {
            tracing::debug!(
                "shadow: {} identical; ISC: {}; xdhcpd: {}",
                waiting.exchange,
                show(isc),
                show(waiting.ours.as_ref())
            );
            return;
        }
        if let Some(suppressed) = self.log_limit.admit(now) {
            if suppressed > 0 {
                tracing::warn!("shadow: {suppressed} difference lines suppressed");
            }
            let fields: Vec<String> = remaining
                .iter()
                .map(|difference| {
                    format!(
                        "{} (ISC {}, xdhcpd {})",
                        difference.key.field, difference.isc, difference.xdhcpd
                    )
                })
                .collect();
            tracing::warn!(
                "shadow: {} differs: {}; ISC: {}; xdhcpd: {}",
                waiting.exchange,
                fields.join(", "),
                show(isc),
                show(waiting.ours.as_ref())
            );
        }
    }
}

/// Whether a server answers this message (RFC 2131 table 3: nothing answers a DHCPDECLINE or
/// a DHCPRELEASE).
fn expects_answer(kind: MessageKind) -> bool {
    !matches!(kind, Some(4 | 7))
}

/// The pairing key of a BOOTP message, read from its fixed header (RFC 951).
fn pair_key(bootp: &[u8]) -> Option<PairKey> {
    if bootp.len() < 240 {
        return None;
    }
    let mut chaddr = [0u8; 16];
    let length = usize::from(bootp[2]).min(16);
    chaddr[..length].copy_from_slice(&bootp[28..28 + length]);
    Some(PairKey {
        xid: u32::from_be_bytes([bootp[4], bootp[5], bootp[6], bootp[7]]),
        htype: bootp[1],
        chaddr,
    })
}

/// How a person recognises the exchange: `DHCPREQUEST xid 0x… from MAC [via GIADDR]`.
fn exchange_text(bootp: &[u8], kind: MessageKind) -> String {
    let name = kind.map_or("BOOTREQUEST", dhcp_compare::replies::message_name);
    let length = usize::from(bootp[2]).min(16);
    let mac = dhcp_compare::replies::hex(&bootp[28..28 + length]);
    let giaddr = Ipv4Addr::new(bootp[24], bootp[25], bootp[26], bootp[27]);
    let via = if giaddr.is_unspecified() {
        String::new()
    } else {
        format!(" via {giaddr}")
    };
    format!(
        "{name} xid 0x{:08x} from {mac}{via}",
        u32::from_be_bytes([bootp[4], bootp[5], bootp[6], bootp[7]])
    )
}

/// ISC's reply as the comparison takes it: how it was addressed on the link, as the
/// differential harness names it (difftest_client.py `link_destination`): `broadcast`,
/// `unicast` to the relay or to the client's own address (ciaddr), `chaddr` to the client's
/// hardware address, else the MAC it went to.
fn isc_reply(frame: &Frame<'_>) -> Reply {
    let bootp = frame.payload;
    let field = |at: usize| Ipv4Addr::new(bootp[at], bootp[at + 1], bootp[at + 2], bootp[at + 3]);
    let (ciaddr, giaddr) = (field(12), field(24));
    let to = frame.ip_destination;
    let link = if frame.ethernet_destination == [0xff; 6] {
        "broadcast".to_owned()
    } else if (!giaddr.is_unspecified() && to == giaddr)
        || (!ciaddr.is_unspecified() && to == ciaddr)
    {
        "unicast".to_owned()
    } else if frame.ethernet_destination[..] == bootp[28..34] {
        "chaddr".to_owned()
    } else {
        dhcp_compare::replies::hex(&frame.ethernet_destination)
    };
    Reply {
        link,
        ip_dst: to,
        udp_dport: frame.udp_destination,
        bootp: bootp.to_vec(),
    }
}

/// At most [`LOG_LINES_PER_MINUTE`] difference lines a minute.
#[derive(Debug, Default)]
struct LogLimit {
    minute: UnixTime,
    logged: u32,
    suppressed: u64,
}

impl LogLimit {
    /// `Some(lines suppressed since the last one logged)` when a line may be logged now.
    fn admit(&mut self, now: UnixTime) -> Option<u64> {
        let minute = now / 60;
        if minute != self.minute {
            self.minute = minute;
            self.logged = 0;
        }
        if self.logged >= LOG_LINES_PER_MINUTE {
            self.suppressed += 1;
            return None;
        }
        self.logged += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BOOTREPLY to a client `02:00:00:00:00:01` with `ciaddr` and `giaddr`.
    fn bootreply(ciaddr: [u8; 4], giaddr: [u8; 4]) -> Vec<u8> {
        let mut bootp = vec![0u8; 240];
        bootp[..4].copy_from_slice(&[2, 1, 6, 0]);
        bootp[4..8].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        bootp[12..16].copy_from_slice(&ciaddr);
        bootp[24..28].copy_from_slice(&giaddr);
        bootp[28..34].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        bootp
    }

    fn link(ethernet: [u8; 6], to: [u8; 4], bootp: &[u8]) -> String {
        isc_reply(&Frame {
            ethernet_destination: ethernet,
            ip_source: Ipv4Addr::new(10, 0, 0, 1),
            ip_destination: Ipv4Addr::from(to),
            udp_source: 67,
            udp_destination: 68,
            payload: bootp,
        })
        .link
    }

    #[test]
    fn names_isc_replies_links_as_the_differential_harness() {
        let client = [2, 0, 0, 0, 0, 1];
        let direct = bootreply([0; 4], [0; 4]);
        assert_eq!(link([0xff; 6], [255; 4], &direct), "broadcast");
        assert_eq!(link(client, [10, 0, 0, 5], &direct), "chaddr");
        assert_eq!(
            link([2, 0, 0, 0, 0, 9], [10, 0, 0, 5], &direct),
            "02:00:00:00:00:09"
        );
        let renewing = bootreply([10, 0, 0, 5], [0; 4]);
        assert_eq!(link(client, [10, 0, 0, 5], &renewing), "unicast");
        let relayed = bootreply([0; 4], [10, 1, 0, 1]);
        assert_eq!(link([2, 0, 0, 0, 0, 7], [10, 1, 0, 1], &relayed), "unicast");
    }

    #[test]
    fn keys_and_names_an_exchange_by_its_header() {
        let bootp = bootreply([0; 4], [10, 1, 0, 1]);
        let key = pair_key(&bootp).unwrap();
        assert_eq!(key.xid, 0xdead_beef);
        assert_eq!(&key.chaddr[..7], &[2, 0, 0, 0, 0, 1, 0]);
        assert_eq!(
            exchange_text(&bootp, Some(3)),
            "DHCPREQUEST xid 0xdeadbeef from 02:00:00:00:00:01 via 10.1.0.1"
        );
        assert!(pair_key(&bootp[..239]).is_none());
        assert!(!expects_answer(Some(7)) && expects_answer(None));
    }

    #[test]
    fn logs_ten_lines_a_minute_then_says_how_many_it_left_out() {
        let mut limit = LogLimit::default();
        for _ in 0..LOG_LINES_PER_MINUTE {
            assert_eq!(limit.admit(120), Some(0));
        }
        assert_eq!(limit.admit(121), None);
        assert_eq!(limit.admit(150), None);
        assert_eq!(limit.admit(180), Some(2));
    }

    #[test]
    fn the_justified_list_is_read() {
        let entries = dhcp_compare::lists::parse_list(JUSTIFIED_LIST, "reason").unwrap();
        let every_config = report::shadow_justified(entries);
        assert!(every_config.iter().any(|entry| entry.key.field == "secs"));
    }
}
