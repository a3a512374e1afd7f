//! Renewal load generator (Linux, root), run inside the client namespace of the netns lab:
//! `renew_load dora IFACE CLIENTS OUT` binds CLIENTS simulated direct clients with raw
//! DISCOVER/REQUEST frames over AF_PACKET and writes `ip mac server-ip server-mac` lines to OUT;
//! `renew_load renew IFACE LEASES SECONDS [RATE]` replays RENEWING DHCPREQUESTs (RFC 2131
//! §4.3.2: ciaddr set, unicast, no option 50/54) with `sendmmsg` as fast as possible (or at
//! RATE/s) and counts the DHCPACKs a second thread receives. A UDP socket cannot do either: the
//! clients have no address on the link and each needs its own MAC.
#![expect(clippy::disallowed_methods, reason = "driver owns the clock")]

use anyhow::{bail, Context as _, Result};
use benches::packet_socket::{PacketSocket, Protocols};
use benches::wire::{build, mac_text, parse, parse_mac, Frame, BROADCAST_MAC, PRL};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Marks our xids (high byte) so stray replies are not counted.
const XID_TAG: u32 = 0x5200_0000;

fn main() {
    if let Err(error) = run() {
        eprintln!("renew_load: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: renew_load dora IFACE CLIENTS OUT | renew IFACE LEASES SECONDS [RATE]";
    match args.get(1).map(String::as_str) {
        Some("dora") if args.len() == 5 => dora(&args[2], args[3].parse()?, &args[4]),
        Some("renew") if args.len() == 5 || args.len() == 6 => {
            let rate = args.get(5).map(|rate| rate.parse()).transpose()?;
            renew(&args[2], &args[3], args[4].parse()?, rate)
        }
        _ => bail!("{usage}"),
    }
}

fn client_mac(index: u32) -> [u8; 6] {
    let [a, b, c, d] = index.to_be_bytes();
    [0x02, 0x52, a, b, c, d]
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Idle,
    Discovering,
    Requesting,
    Bound,
}

struct Client {
    state: State,
    sent: Option<Instant>,
    tries: u32,
    offer: Option<(Ipv4Addr, Ipv4Addr, [u8; 6])>,
}

/// Binds `count` clients, `WINDOW` exchanges in flight, retransmitting after 2 s.
fn dora(interface: &str, count: u32, out: &str) -> Result<()> {
    const WINDOW: usize = 128;
    const RETRY: Duration = Duration::from_secs(2);
    let socket = PacketSocket::open(interface, Protocols::Ipv4, Some(Duration::from_millis(20)))?;
    let mut clients: Vec<Client> = (0..count)
        .map(|_| Client {
            state: State::Idle,
            sent: None,
            tries: 0,
            offer: None,
        })
        .collect();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(120);
    let mut next = 0usize;
    let mut bound = 0usize;
    let mut buffer = vec![0u8; 2048];
    let send = |index: usize, client: &Client| -> Result<()> {
        let mac = client_mac(index as u32);
        let mut options = vec![55, PRL.len() as u8];
        options.extend_from_slice(&PRL);
        match (client.state, client.offer) {
            (State::Requesting, Some((yiaddr, server_id, _))) => {
                options.extend_from_slice(&[53, 1, 3, 50, 4]);
                options.extend_from_slice(&yiaddr.octets());
                options.extend_from_slice(&[54, 4]);
                options.extend_from_slice(&server_id.octets());
            }
            _ => options.extend_from_slice(&[53, 1, 1]),
        }
        let mut frame = Frame::request(
            mac,
            BROADCAST_MAC,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            XID_TAG | index as u32,
            &options,
        );
        frame.broadcast = true;
        socket.send(&build(&frame))
    };
    while bound < clients.len() {
        if Instant::now() > deadline {
            bail!("only {bound} of {count} clients bound after 120 s");
        }
        let in_flight = clients
            .iter()
            .filter(|client| matches!(client.state, State::Discovering | State::Requesting))
            .count();
        for _ in in_flight..WINDOW {
            if next >= clients.len() {
                break;
            }
            clients[next].state = State::Discovering;
            clients[next].sent = Some(Instant::now());
            send(next, &clients[next])?;
            next += 1;
        }
        for (index, client) in clients.iter_mut().enumerate() {
            if matches!(client.state, State::Discovering | State::Requesting)
                && client.sent.is_some_and(|sent| sent.elapsed() > RETRY)
            {
                client.tries += 1;
                if client.tries > 5 {
                    bail!("client {index} got no answer after 5 retries");
                }
                // Start over with a DISCOVER: the offer may have expired.
                client.state = State::Discovering;
                client.sent = Some(Instant::now());
                send(index, client)?;
            }
        }
        while let Some(len) = socket.recv(&mut buffer) {
            let Some(reply) = parse(&buffer[..len]) else {
                continue;
            };
            if reply.op != 2 || reply.xid & 0xff00_0000 != XID_TAG {
                continue;
            }
            let index = (reply.xid & 0x00ff_ffff) as usize;
            let Some(client) = clients.get_mut(index) else {
                continue;
            };
            match (client.state, reply.kind) {
                (State::Discovering, 2) => {
                    let Some(server_id) = reply.server_id else {
                        continue;
                    };
                    client.offer = Some((reply.yiaddr, server_id, reply.src_mac));
                    client.state = State::Requesting;
                    client.sent = Some(Instant::now());
                    send(index, client)?;
                }
                (State::Requesting, 5) => {
                    client.state = State::Bound;
                    bound += 1;
                }
                (State::Requesting, 6) => {
                    client.state = State::Discovering;
                    client.sent = Some(Instant::now());
                    send(index, client)?;
                }
                _ => {}
            }
        }
    }
    let mut text = String::new();
    for (index, client) in clients.iter().enumerate() {
        if let Some((yiaddr, server_id, server_mac)) = client.offer {
            text.push_str(&format!(
                "{yiaddr} {} {server_id} {}\n",
                mac_text(&client_mac(index as u32)),
                mac_text(&server_mac)
            ));
        }
    }
    std::fs::write(out, text).with_context(|| format!("write {out}"))?;
    println!(
        "bound {bound} clients in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn renew(interface: &str, leases: &str, seconds: u64, rate: Option<u64>) -> Result<()> {
    const BATCH: usize = 64;
    let text = std::fs::read_to_string(leases).with_context(|| format!("read {leases}"))?;
    let mut options = vec![53, 1, 3, 55, PRL.len() as u8];
    options.extend_from_slice(&PRL);
    let mut frames = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [yiaddr, mac, server_id, server_mac] = fields[..] else {
            bail!("bad line {line:?} in {leases}");
        };
        let yiaddr: Ipv4Addr = yiaddr.parse()?;
        let mut frame = Frame::request(
            parse_mac(mac)?,
            parse_mac(server_mac)?,
            yiaddr,
            server_id.parse()?,
            XID_TAG | index as u32,
            &options,
        );
        frame.ciaddr = yiaddr;
        frames.push(build(&frame));
    }
    if frames.is_empty() {
        bail!("no leases in {leases}");
    }
    let socket = Arc::new(PacketSocket::open(
        interface,
        Protocols::Ipv4,
        Some(Duration::from_millis(20)),
    )?);
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = {
        let (socket, acked, stop) = (socket.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buffer = vec![0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                let Some(len) = socket.recv(&mut buffer) else {
                    continue;
                };
                if let Some(reply) = parse(&buffer[..len]) {
                    if reply.op == 2 && reply.kind == 5 && reply.xid & 0xff00_0000 == XID_TAG {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let start = Instant::now();
    let duration = Duration::from_secs(seconds);
    let mut sent = 0u64;
    let mut next = 0usize;
    let mut batch: Vec<&[u8]> = Vec::with_capacity(BATCH);
    while start.elapsed() < duration {
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        batch.clear();
        for _ in 0..BATCH {
            batch.push(&frames[next]);
            next = (next + 1) % frames.len();
        }
        sent += socket.send_batch(&batch) as u64;
    }
    let elapsed = start.elapsed().as_secs_f64();
    // Late replies (the userspace servers' group commit) still count.
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let _ = receiver.join();
    let acked = acked.load(Ordering::Relaxed);
    let loss = if sent == 0 {
        0.0
    } else {
        100.0 * (sent.saturating_sub(acked)) as f64 / sent as f64
    };
    println!(
        "RENEW clients {} seconds {elapsed:.2} sent {sent} acked {acked} sent/s {:.0} acked/s {:.0} loss% {loss:.2}",
        frames.len(),
        sent as f64 / elapsed,
        acked as f64 / elapsed
    );
    Ok(())
}
