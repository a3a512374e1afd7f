//! The simulated clients: one state machine per client (RFC 2131 §4.4.1, figure 5: INIT →
//! SELECTING → REQUESTING → BOUND), driven by one loop that batches its sends and receives.
//! Requests are written from templates (copy, patch xid/chaddr/option values, recompute the
//! UDP checksum), so a DORA costs two small copies and two checksums, not an encoder; replies
//! are read from a PACKET_RX_RING, no system call per frame.

use crate::link::Link;
use crate::report::{self, Phase};
use anyhow::{Context as _, Result};
use benches::packet_socket::SendQueue;
use benches::wire::{self, Frame};
use rand::{RngExt as _, SeedableRng as _};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Client indices live in the low 24 bits of the xid and of the MAC.
pub const MAX_CLIENTS: u32 = 1 << 24;
/// The xid's high byte marks our exchanges, so stray replies are not counted.
const XID_TAG: u32 = 0x4400_0000;
const RECV_BATCH: usize = 256;
/// Frames queued before a `sendmmsg`.
const SEND_BATCH: usize = 256;

/// The simulated relay agent (RFC 3046), when the clients are relayed.
#[derive(Clone, Copy)]
pub struct Relay {
    pub giaddr: Ipv4Addr,
    pub server: Ipv4Addr,
    pub server_mac: [u8; 6],
    pub relay_mac: [u8; 6],
}

pub struct Options {
    /// `None`: the generator's own loopback ([`Link::loopback`]).
    pub interface: Option<String>,
    pub clients: u32,
    pub relay: Option<Relay>,
    pub renew: bool,
    pub release: bool,
    pub drain: f64,
    pub leases_out: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Idle,
    Selecting,
    Requesting,
    Bound,
    Renewing,
}

#[derive(Clone, Copy)]
struct Client {
    state: State,
    /// Nanoseconds since the generator's start: the exchange's first DISCOVER, and the last
    /// transmission of the current message.
    started: u64,
    sent: u64,
    /// Transmissions of the current message (1 after the first).
    tries: u8,
    /// REQUEST rounds of this exchange before it falls back to DISCOVER.
    request_rounds: u8,
    /// Bumped to cancel the pending timer.
    generation: u32,
    /// The phase the exchange counts in.
    phase: u16,
    offered: Ipv4Addr,
    server_id: Ipv4Addr,
    server_mac: [u8; 6],
}

/// What a timer does when it fires.
#[derive(Clone, Copy)]
enum Retry {
    /// Ladder: the exchange is lost after this long.
    GiveUp { after: u64 },
    /// Avalanche: retransmit with RFC 2131 §4.1 backoff.
    Backoff { base: u64 },
}

/// Offsets of the patched option values in the request templates (after the magic cookie).
mod layout {
    /// DISCOVER: 53, 55 (6), then 82.
    pub const DISCOVER_82: usize = 3 + 8;
    /// REQUEST: 53, 50, 54, 55 (6), then 82.
    pub const REQUEST_50: usize = 3 + 2;
    pub const REQUEST_54: usize = 3 + 6 + 2;
    pub const REQUEST_82: usize = 3 + 6 + 6 + 8;
    /// Inside option 82: circuit-id (sub-option 1, 4 bytes) and remote-id (2, 6 bytes).
    pub const CIRCUIT: usize = 4;
    pub const REMOTE: usize = 4 + 4 + 2;
}

pub struct Load {
    options: Options,
    link: Link,
    queue: SendQueue,
    epoch: Instant,
    clients: Vec<Client>,
    timers: BinaryHeap<Reverse<(u64, u32, u32)>>,
    retry: Retry,
    rng: rand::rngs::StdRng,
    discover_template: Vec<u8>,
    request_template: Vec<u8>,
    in_flight: usize,
    bound: usize,
    cursor: u32,
    last_ack: u64,
    /// Bound addresses → client, for answering ARP (only with --renew/--release).
    addresses: HashMap<Ipv4Addr, u32>,
    phases: Vec<Phase>,
    replies: Vec<wire::Dhcp>,
    arp_requests: Vec<([u8; 6], Ipv4Addr, Ipv4Addr)>,
}

/// The second octet of every client's MAC (`--mac-site`): set once at start, before any
/// frame is built.
static MAC_SITE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0x44);

/// Generators run side by side (one per server of a shared lease database) simulate
/// different clients: `02:SITE:00:…`.
pub fn set_mac_site(site: u8) {
    MAC_SITE.store(site, std::sync::atomic::Ordering::Relaxed);
}

fn client_mac(index: u32) -> [u8; 6] {
    let [_, a, b, c] = index.to_be_bytes();
    let site = MAC_SITE.load(std::sync::atomic::Ordering::Relaxed);
    [0x02, site, 0x00, a, b, c]
}

fn option_82(index: u32) -> [u8; 16] {
    let mut option = [82, 14, 1, 4, 0, 0, 0, 0, 2, 6, 0, 0, 0, 0, 0, 0];
    option[layout::CIRCUIT..layout::CIRCUIT + 4].copy_from_slice(&index.to_be_bytes());
    option[layout::REMOTE..layout::REMOTE + 6].copy_from_slice(&client_mac(index));
    option
}

impl Load {
    pub fn new(options: &Options) -> Result<Self> {
        let link = match &options.interface {
            Some(interface) => Link::packet(interface)?,
            None => Link::loopback(),
        };
        let template = |kind: u8| -> Vec<u8> {
            let mut body = vec![53, 1, kind];
            if kind == wire::REQUEST {
                body.extend_from_slice(&[50, 4, 0, 0, 0, 0, 54, 4, 0, 0, 0, 0]);
            }
            body.extend_from_slice(&[55, wire::PRL.len() as u8]);
            body.extend_from_slice(&wire::PRL);
            if options.relay.is_some() {
                body.extend_from_slice(&option_82(0));
            }
            let mut frame = Frame::request(
                [0; 6],
                wire::BROADCAST_MAC,
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::BROADCAST,
                0,
                &body,
            );
            match options.relay {
                Some(relay) => {
                    frame.src_mac = relay.relay_mac;
                    frame.dst_mac = relay.server_mac;
                    frame.src_ip = relay.giaddr;
                    frame.dst_ip = relay.server;
                    frame.src_port = 67;
                    frame.hops = 1;
                    frame.giaddr = relay.giaddr;
                }
                // No address yet: ask for broadcast replies (RFC 2131 §4.1).
                None => frame.broadcast = true,
            }
            wire::build(&frame)
        };
        let now = Instant::now();
        Ok(Self {
            discover_template: template(wire::DISCOVER),
            request_template: template(wire::REQUEST),
            options: Options {
                interface: options.interface.clone(),
                clients: options.clients,
                relay: options.relay,
                renew: options.renew,
                release: options.release,
                drain: options.drain,
                leases_out: options.leases_out.clone(),
            },
            link,
            queue: SendQueue::new(),
            epoch: now,
            clients: vec![
                Client {
                    state: State::Idle,
                    started: 0,
                    sent: 0,
                    tries: 0,
                    request_rounds: 0,
                    generation: 0,
                    phase: 0,
                    offered: Ipv4Addr::UNSPECIFIED,
                    server_id: Ipv4Addr::UNSPECIFIED,
                    server_mac: [0; 6],
                };
                options.clients as usize
            ],
            timers: BinaryHeap::new(),
            retry: Retry::GiveUp { after: 0 },
            rng: rand::rngs::StdRng::seed_from_u64(0x5eed),
            in_flight: 0,
            bound: 0,
            cursor: 0,
            last_ack: 0,
            addresses: HashMap::new(),
            phases: Vec::new(),
            replies: Vec::new(),
            arp_requests: Vec::new(),
        })
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn phase(&mut self, client: u32) -> &mut Phase {
        let index = usize::from(self.clients[client as usize].phase);
        &mut self.phases[index]
    }

    /// Writes the DISCOVER (or REQUEST) of `index` into the send queue.
    fn queue_request(&mut self, index: u32) {
        let client = self.clients[index as usize];
        let relayed = self.options.relay.is_some();
        let mac = client_mac(index);
        let (template, option_82_at) = match client.state {
            State::Requesting => (&self.request_template, layout::REQUEST_82),
            _ => (&self.discover_template, layout::DISCOVER_82),
        };
        let slot = self.queue.next_slot();
        slot.extend_from_slice(template);
        if !relayed {
            slot[6..12].copy_from_slice(&mac);
        }
        slot[wire::XID_OFFSET..wire::XID_OFFSET + 4]
            .copy_from_slice(&(XID_TAG | index).to_be_bytes());
        slot[wire::CHADDR_OFFSET..wire::CHADDR_OFFSET + 6].copy_from_slice(&mac);
        let options = wire::OPTIONS_OFFSET;
        if client.state == State::Requesting {
            slot[options + layout::REQUEST_50..options + layout::REQUEST_50 + 4]
                .copy_from_slice(&client.offered.octets());
            slot[options + layout::REQUEST_54..options + layout::REQUEST_54 + 4]
                .copy_from_slice(&client.server_id.octets());
        }
        if relayed {
            let at = options + option_82_at;
            slot[at..at + 16].copy_from_slice(&option_82(index));
        }
        wire::fill_udp_checksum(slot);
        if self.queue.len() >= SEND_BATCH {
            self.link.flush(&mut self.queue);
        }
    }

    fn arm(&mut self, index: u32, now: u64) {
        let client = &mut self.clients[index as usize];
        client.generation = client.generation.wrapping_add(1);
        let delay = match self.retry {
            Retry::GiveUp { after } => after,
            // RFC 2131 §4.1: 4 s, doubled per retransmission up to 64 s, ±1 s uniform.
            Retry::Backoff { base } => {
                let doubling = u32::from(client.tries.saturating_sub(1).min(4));
                let jitter = base / 4;
                (base << doubling) - jitter + self.rng.random_range(0..=2 * jitter)
            }
        };
        self.timers
            .push(Reverse((now + delay, index, client.generation)));
    }

    fn start(&mut self, index: u32, phase: u16, now: u64) {
        let client = &mut self.clients[index as usize];
        client.state = State::Selecting;
        client.started = now;
        client.sent = now;
        client.tries = 1;
        client.request_rounds = 0;
        client.phase = phase;
        self.in_flight += 1;
        self.phases[usize::from(phase)].started += 1;
        self.queue_request(index);
        self.arm(index, now);
    }

    /// The next client not in an exchange, round-robin.
    fn next_free(&mut self) -> Option<u32> {
        for _ in 0..self.clients.len() {
            let index = self.cursor;
            self.cursor = (self.cursor + 1) % self.options.clients;
            if !matches!(
                self.clients[index as usize].state,
                State::Selecting | State::Requesting
            ) {
                return Some(index);
            }
        }
        None
    }

    fn fire_timers(&mut self, now: u64) {
        while let Some(&Reverse((due, index, generation))) = self.timers.peek() {
            if due > now {
                break;
            }
            self.timers.pop();
            let client = self.clients[index as usize];
            if client.generation != generation
                || !matches!(client.state, State::Selecting | State::Requesting)
            {
                continue;
            }
            match self.retry {
                Retry::GiveUp { .. } => {
                    self.clients[index as usize].state = State::Idle;
                    self.in_flight -= 1;
                    self.phase(index).lost += 1;
                }
                Retry::Backoff { .. } => {
                    let client = &mut self.clients[index as usize];
                    if client.state == State::Requesting && client.tries >= 4 {
                        // §4.4.1: no ACK to the REQUESTs: back to INIT.
                        client.state = State::Selecting;
                        client.tries = 0;
                    }
                    client.tries = client.tries.saturating_add(1);
                    client.sent = now;
                    let requesting = client.state == State::Requesting;
                    let phase = self.phase(index);
                    if requesting {
                        phase.request_retransmissions += 1;
                    } else {
                        phase.discover_retransmissions += 1;
                    }
                    self.queue_request(index);
                    self.arm(index, now);
                }
            }
        }
    }

    /// Reads every pending frame and answers what needs an answer; returns how many frames.
    fn receive(&mut self) -> usize {
        let mut total = 0;
        loop {
            // Scratch vectors kept across batches: no allocation per batch once warm.
            let mut replies = std::mem::take(&mut self.replies);
            let mut arp = std::mem::take(&mut self.arp_requests);
            let count = self.link.receive(RECV_BATCH, |frame| {
                if let Some(reply) = wire::parse(frame) {
                    if reply.op == 2 && reply.xid & 0xff00_0000 == XID_TAG {
                        replies.push(reply);
                    }
                } else if let Some(request) = wire::parse_arp_request(frame) {
                    arp.push(request);
                }
            });
            if count == 0 {
                self.replies = replies;
                self.arp_requests = arp;
                return total;
            }
            total += count;
            let now = self.now();
            for reply in replies.drain(..) {
                self.handle(&reply, now);
            }
            for (requester_mac, requester_ip, target) in arp.drain(..) {
                if let Some(&index) = self.addresses.get(&target) {
                    self.queue.push(&wire::arp_reply(
                        client_mac(index),
                        target,
                        requester_mac,
                        requester_ip,
                    ));
                }
            }
            self.replies = replies;
            self.arp_requests = arp;
            self.link.flush(&mut self.queue);
            if count < RECV_BATCH {
                return total;
            }
        }
    }

    fn handle(&mut self, reply: &wire::Dhcp, now: u64) {
        let index = reply.xid & 0x00ff_ffff;
        let Some(&client) = self.clients.get(index as usize) else {
            return;
        };
        if reply.chaddr != client_mac(index) {
            return;
        }
        match (client.state, reply.kind) {
            (State::Selecting, wire::OFFER) => {
                let Some(server_id) = reply.server_id else {
                    return;
                };
                let phase = self.phase(index);
                phase.offers += 1;
                report::record(&mut phase.discover_offer, now.saturating_sub(client.sent));
                let client = &mut self.clients[index as usize];
                client.state = State::Requesting;
                client.offered = reply.yiaddr;
                client.server_id = server_id;
                client.server_mac = reply.src_mac;
                client.sent = now;
                client.tries = 1;
                client.request_rounds += 1;
                self.queue_request(index);
                if matches!(self.retry, Retry::Backoff { .. }) {
                    self.arm(index, now);
                }
            }
            (State::Requesting, wire::ACK) => {
                let phase = self.phase(index);
                phase.acked += 1;
                report::record(&mut phase.request_ack, now.saturating_sub(client.sent));
                phase.record_exchange(now, now.saturating_sub(client.started));
                let client = &mut self.clients[index as usize];
                client.state = State::Bound;
                client.offered = reply.yiaddr;
                client.generation = client.generation.wrapping_add(1);
                self.in_flight -= 1;
                self.bound += 1;
                self.last_ack = now;
                if self.options.renew || self.options.release {
                    self.addresses.insert(reply.yiaddr, index);
                }
            }
            (State::Requesting, wire::NAK) => {
                // §4.4.1: a DHCPNAK sends the client back to INIT.
                self.phase(index).naks += 1;
                let client = &mut self.clients[index as usize];
                client.state = State::Selecting;
                client.sent = now;
                client.tries = 1;
                self.queue_request(index);
                if matches!(self.retry, Retry::Backoff { .. }) {
                    self.arm(index, now);
                }
            }
            (State::Renewing, wire::ACK) => {
                let phase = self.phase(index);
                phase.acked += 1;
                report::record(&mut phase.request_ack, now.saturating_sub(client.sent));
                phase.record_exchange(now, now.saturating_sub(client.sent));
                self.clients[index as usize].state = State::Bound;
                self.in_flight -= 1;
                self.last_ack = now;
            }
            (State::Renewing, wire::NAK) => {
                self.phase(index).naks += 1;
                self.clients[index as usize].state = State::Idle;
                self.in_flight -= 1;
            }
            _ => self.phase(index).duplicates += 1,
        }
    }

    /// Sleeps until a frame arrives or `until` (ns since the epoch), at most 10 ms.
    fn wait_until(&self, until: u64) {
        let now = self.now();
        let next_timer = self
            .timers
            .peek()
            .map_or(u64::MAX, |Reverse((due, _, _))| *due);
        let until = until.min(next_timer);
        if until > now {
            self.link
                .wait(Duration::from_nanos((until - now).min(10_000_000)));
        }
    }

    fn begin_phase(&mut self, name: &str, rate: u32) -> u16 {
        let began = self.now();
        self.phases.push(Phase::new(name, rate, began));
        self.queue.refused = 0;
        (self.phases.len() - 1) as u16
    }

    fn end_phase(&mut self, phase: u16, cpu_before: f64) {
        let refused = self.queue.refused;
        let phase = &mut self.phases[usize::from(phase)];
        phase.cpu_seconds = report::cpu_seconds() - cpu_before;
        phase.refused = refused;
        phase.print();
        phase.print_seconds();
    }

    /// One step of the ladder: DORAs started at `rate`/s (0: as fast as `window` allows) for
    /// `seconds`, then `drain` seconds to collect late replies. No retransmissions: an
    /// exchange without its ACK after `timeout` seconds is lost.
    pub fn rate_step(&mut self, rate: u32, seconds: f64, window: usize, timeout: f64) {
        let cpu_before = report::cpu_seconds();
        let name = if rate == 0 {
            "rate-unbounded".to_owned()
        } else {
            format!("rate-{rate}")
        };
        let phase = self.begin_phase(&name, rate);
        self.retry = Retry::GiveUp {
            after: (timeout * 1e9) as u64,
        };
        let begin = self.now();
        let end = begin + (seconds * 1e9) as u64;
        let mut started = 0u64;
        loop {
            let now = self.now();
            if now >= end {
                break;
            }
            let due = if rate == 0 {
                u64::MAX
            } else {
                ((now - begin) as f64 * f64::from(rate) / 1e9) as u64 + 1
            };
            let mut budget = 4 * SEND_BATCH;
            while started < due && self.in_flight < window && budget > 0 {
                let Some(index) = self.next_free() else {
                    break;
                };
                self.start(index, phase, now);
                started += 1;
                budget -= 1;
            }
            self.fire_timers(now);
            self.link.flush(&mut self.queue);
            if self.receive() == 0 && (started >= due || self.in_flight >= window) {
                // A full window waits for a reply or a timeout (the next timer), never for the
                // pacing: behind schedule, the next start is already due and the loop would
                // spin, taking the CPU the server under test needs.
                let next_start = if rate == 0 || self.in_flight >= window {
                    u64::MAX
                } else {
                    begin + (started as f64 * 1e9 / f64::from(rate)) as u64
                };
                self.wait_until(next_start.min(end));
            }
        }
        let sending = self.now() - begin;
        self.drain(self.now() + (self.options.drain.max(timeout) * 1e9) as u64);
        self.phases[usize::from(phase)].seconds = sending as f64 / 1e9;
        self.end_phase(phase, cpu_before);
    }

    /// Reads replies and fires timers until nothing is in flight or `until`.
    fn drain(&mut self, until: u64) {
        while self.in_flight > 0 && self.now() < until {
            let now = self.now();
            self.fire_timers(now);
            self.link.flush(&mut self.queue);
            if self.receive() == 0 {
                self.wait_until(until);
            }
        }
    }

    /// Every client starts at once; retransmissions with RFC 2131 §4.1 backoff (`base` s
    /// first) until all are bound or `deadline` s passed. Returns whether all were bound.
    pub fn avalanche(&mut self, base: f64, deadline: f64) -> bool {
        let cpu_before = report::cpu_seconds();
        let phase = self.begin_phase("avalanche", 0);
        self.retry = Retry::Backoff {
            base: (base * 1e9) as u64,
        };
        let begin = self.now();
        let end = begin + (deadline * 1e9) as u64;
        for index in 0..self.options.clients {
            let now = self.now();
            self.start(index, phase, now);
            if index % 1024 == 1023 {
                self.link.flush(&mut self.queue);
                self.receive();
            }
        }
        self.link.flush(&mut self.queue);
        while self.bound < self.clients.len() && self.now() < end {
            let now = self.now();
            self.fire_timers(now);
            self.link.flush(&mut self.queue);
            if self.receive() == 0 {
                self.wait_until(end);
            }
        }
        let all = self.bound == self.clients.len();
        let unbound = (self.clients.len() - self.bound) as u64;
        let phase_stats = &mut self.phases[usize::from(phase)];
        phase_stats.lost = unbound;
        phase_stats.seconds = self.last_ack.saturating_sub(begin) as f64 / 1e9;
        println!(
            "time to last ACK {:.3} s ({} of {} clients bound)",
            phase_stats.seconds, self.bound, self.options.clients
        );
        phase_stats.print_curve();
        self.end_phase(phase, cpu_before);
        all
    }

    /// Renewals and releases of the bound clients, then the lease list.
    pub fn after_phases(&mut self) -> Result<()> {
        if let Some(path) = &self.options.leases_out {
            let mut text = String::new();
            for (index, client) in self.clients.iter().enumerate() {
                if client.state == State::Bound {
                    text.push_str(&format!(
                        "{} {}\n",
                        client.offered,
                        wire::mac_text(&client_mac(index as u32))
                    ));
                }
            }
            std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
        }
        if self.options.renew {
            self.renew_all();
        }
        if self.options.release {
            self.release_all();
        }
        Ok(())
    }

    /// A RENEWING DHCPREQUEST (§4.3.2: ciaddr and source address = the lease, unicast to the
    /// server, no option 50/54) or a DHCPRELEASE (§4.4.4: ciaddr, option 54).
    fn unicast(&self, index: u32, kind: u8) -> Vec<u8> {
        let client = self.clients[index as usize];
        let mut body = vec![53, 1, kind];
        if kind == wire::RELEASE {
            body.extend_from_slice(&[54, 4]);
            body.extend_from_slice(&client.server_id.octets());
        } else {
            body.extend_from_slice(&[55, wire::PRL.len() as u8]);
            body.extend_from_slice(&wire::PRL);
        }
        let mut frame = Frame::request(
            client_mac(index),
            client.server_mac,
            client.offered,
            client.server_id,
            XID_TAG | index,
            &body,
        );
        frame.ciaddr = client.offered;
        wire::build(&frame)
    }

    fn renew_all(&mut self) {
        let cpu_before = report::cpu_seconds();
        let phase = self.begin_phase("renew", 0);
        let begin = self.now();
        for index in 0..self.options.clients {
            if self.clients[index as usize].state != State::Bound {
                continue;
            }
            let frame = self.unicast(index, wire::REQUEST);
            let now = self.now();
            let client = &mut self.clients[index as usize];
            client.state = State::Renewing;
            client.sent = now;
            client.phase = phase;
            self.in_flight += 1;
            self.phases[usize::from(phase)].started += 1;
            self.queue.push(&frame);
            if self.queue.len() >= SEND_BATCH {
                self.link.flush(&mut self.queue);
                self.receive();
            }
        }
        self.link.flush(&mut self.queue);
        let sending = self.now() - begin;
        self.drain(self.now() + (self.options.drain * 1e9) as u64);
        let unanswered = self
            .clients
            .iter_mut()
            .filter(|client| client.state == State::Renewing)
            .map(|client| client.state = State::Bound)
            .count();
        self.in_flight -= unanswered;
        let phase_stats = &mut self.phases[usize::from(phase)];
        phase_stats.lost = unanswered as u64;
        phase_stats.seconds = sending as f64 / 1e9;
        self.end_phase(phase, cpu_before);
    }

    fn release_all(&mut self) {
        let cpu_before = report::cpu_seconds();
        let phase = self.begin_phase("release", 0);
        let begin = self.now();
        for index in 0..self.options.clients {
            if self.clients[index as usize].state != State::Bound {
                continue;
            }
            let frame = self.unicast(index, wire::RELEASE);
            self.clients[index as usize].state = State::Idle;
            self.phases[usize::from(phase)].started += 1;
            self.queue.push(&frame);
            if self.queue.len() >= SEND_BATCH {
                self.link.flush(&mut self.queue);
            }
        }
        self.link.flush(&mut self.queue);
        self.addresses.clear();
        let seconds = (self.now() - begin) as f64 / 1e9;
        let phase_stats = &mut self.phases[usize::from(phase)];
        // §4.4.4: a DHCPRELEASE gets no reply; sent is done.
        phase_stats.acked = phase_stats.started;
        phase_stats.seconds = seconds;
        self.end_phase(phase, cpu_before);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback(clients: u32, relay: Option<Relay>) -> Load {
        Load::new(&Options {
            interface: None,
            clients,
            relay,
            renew: false,
            release: false,
            drain: 0.5,
            leases_out: None,
        })
        .expect("the loopback needs no interface")
    }

    /// The loopback answers every exchange, relayed (giaddr and option 82) and direct: what
    /// the generator measures there is its own cost, not losses.
    #[test]
    fn every_exchange_on_the_loopback_is_acknowledged() {
        let relay = Relay {
            giaddr: Ipv4Addr::new(10, 64, 0, 1),
            server: crate::link::LOOPBACK_SERVER,
            server_mac: [2, 0, 0, 0, 0, 1],
            relay_mac: [2, 0, 0, 0, 0, 2],
        };
        for relay in [Some(relay), None] {
            let mut load = loopback(1_000, relay);
            load.rate_step(0, 0.2, 256, 1.0);
            let phase = &load.phases[0];
            assert!(phase.acked > 1_000, "acked {}", phase.acked);
            assert_eq!(phase.acked, phase.started);
            assert_eq!(phase.lost, 0);
            assert_eq!(phase.naks, 0);
        }
    }

    #[test]
    fn an_avalanche_on_the_loopback_binds_every_client_once() {
        let mut load = loopback(5_000, None);
        assert!(load.avalanche(4.0, 10.0));
        assert_eq!(load.bound, 5_000);
        assert_eq!(load.phases[0].discover_retransmissions, 0);
    }
}
