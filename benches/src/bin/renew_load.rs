//! Renewal load generator (Linux, root), run inside the client namespace of the netns lab:
//! `renew_load dora IFACE CLIENTS OUT` binds CLIENTS simulated direct clients with raw
//! DISCOVER/REQUEST frames over AF_PACKET and writes `ip mac server-ip server-mac` lines to OUT;
//! `renew_load renew IFACE LEASES SECONDS [RATE]` replays RENEWING DHCPREQUESTs (RFC 2131
//! §4.3.2: ciaddr set, unicast, no option 50/54) with `sendmmsg` as fast as possible (or at
//! RATE/s) and counts the DHCPACKs a second thread receives. A UDP socket cannot do either: the
//! clients have no address on the link and each needs its own MAC.
#![expect(clippy::disallowed_methods, reason = "driver owns the clock")]

use anyhow::{bail, Context as _, Result};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ETH_P_IP: u16 = 0x0800;
const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// The parameter request list of every message: the fast path answers a renewal in the kernel
/// only when it matches the one the engine saw for the lease.
const PRL: [u8; 6] = [1, 3, 6, 15, 28, 51];
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

/// An AF_PACKET SOCK_RAW socket bound to one interface, IPv4 frames only.
struct RawSocket {
    fd: libc::c_int,
}

impl RawSocket {
    fn open(interface: &str) -> Result<Self> {
        let name = std::ffi::CString::new(interface)?;
        // SAFETY: plain libc calls with valid arguments; the fd is owned by the result.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            bail!("no interface {interface}");
        }
        let protocol = ETH_P_IP.to_be();
        // SAFETY: as above.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(protocol)) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("socket(AF_PACKET)");
        }
        let socket = Self { fd };
        // SAFETY: zeroed sockaddr_ll is valid; fields set below.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = protocol;
        address.sll_ifindex = index as i32;
        // SAFETY: address is a valid sockaddr_ll of the given length.
        let rc = unsafe {
            libc::bind(
                fd,
                (&raw const address).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error()).context("bind(AF_PACKET)");
        }
        // A big receive buffer: replies arrive in bursts while the sender runs.
        let size: libc::c_int = 64 << 20;
        // SAFETY: option value is a c_int of the given size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&raw const size).cast(),
                4,
            );
            let timeout = libc::timeval {
                tv_sec: 0,
                tv_usec: 20_000,
            };
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            );
        }
        Ok(socket)
    }

    fn send(&self, frame: &[u8]) -> Result<()> {
        // SAFETY: frame is a valid buffer; the socket is bound, so no address is needed.
        let rc = unsafe { libc::send(self.fd, frame.as_ptr().cast(), frame.len(), 0) };
        if rc < 0 {
            return Err(std::io::Error::last_os_error()).context("send");
        }
        Ok(())
    }

    /// Sends up to `frames.len()` frames in one `sendmmsg`; returns how many left.
    fn send_batch(&self, frames: &[&[u8]]) -> usize {
        let mut iovecs: Vec<libc::iovec> = frames
            .iter()
            .map(|frame| libc::iovec {
                iov_base: frame.as_ptr() as *mut libc::c_void,
                iov_len: frame.len(),
            })
            .collect();
        let mut headers: Vec<libc::mmsghdr> = iovecs
            .iter_mut()
            .map(|iovec| {
                // SAFETY: a zeroed msghdr is valid (no name, no control).
                let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
                header.msg_hdr.msg_iov = iovec;
                header.msg_hdr.msg_iovlen = 1;
                header
            })
            .collect();
        // SAFETY: headers point at iovecs that point at live frames.
        let sent =
            unsafe { libc::sendmmsg(self.fd, headers.as_mut_ptr(), headers.len() as u32, 0) };
        usize::try_from(sent).unwrap_or(0)
    }

    /// One frame, or None after the receive timeout.
    fn recv(&self, buffer: &mut [u8]) -> Option<usize> {
        // SAFETY: buffer is valid for its length.
        let rc = unsafe { libc::recv(self.fd, buffer.as_mut_ptr().cast(), buffer.len(), 0) };
        usize::try_from(rc).ok()
    }
}

impl Drop for RawSocket {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe { libc::close(self.fd) };
    }
}

fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = initial;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], chunk.get(1).copied().unwrap_or(0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

struct Frame<'a> {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    xid: u32,
    broadcast: bool,
    ciaddr: Ipv4Addr,
    options: &'a [u8],
}

/// Ethernet + IPv4 + UDP 68→67 + BOOTREQUEST, checksums filled in.
fn build(frame: &Frame) -> Vec<u8> {
    let mut dhcp = vec![0u8; 236];
    dhcp[0] = 1; // BOOTREQUEST
    dhcp[1] = 1; // Ethernet
    dhcp[2] = 6;
    dhcp[4..8].copy_from_slice(&frame.xid.to_be_bytes());
    if frame.broadcast {
        dhcp[10] = 0x80;
    }
    dhcp[12..16].copy_from_slice(&frame.ciaddr.octets());
    dhcp[28..34].copy_from_slice(&frame.src_mac);
    dhcp.extend_from_slice(&MAGIC);
    dhcp.extend_from_slice(frame.options);
    dhcp.push(255);
    // BOOTP minimum (RFC 1542 §3.1.1 relays and old servers expect 300 bytes).
    dhcp.resize(dhcp.len().max(300), 0);
    let udp_len = (8 + dhcp.len()) as u16;
    let mut out = Vec::with_capacity(14 + 20 + usize::from(udp_len));
    out.extend_from_slice(&frame.dst_mac);
    out.extend_from_slice(&frame.src_mac);
    out.extend_from_slice(&ETH_P_IP.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(20 + udp_len).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&frame.src_ip.octets());
    ip[16..20].copy_from_slice(&frame.dst_ip.octets());
    let ip_sum = checksum(&ip, 0);
    ip[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    out.extend_from_slice(&ip);
    let mut udp = Vec::with_capacity(usize::from(udp_len));
    udp.extend_from_slice(&68u16.to_be_bytes());
    udp.extend_from_slice(&67u16.to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&dhcp);
    let mut pseudo = 0u32;
    for word in [
        frame.src_ip.octets(),
        frame.dst_ip.octets(),
        [0, 17, (udp_len >> 8) as u8, udp_len as u8],
    ] {
        pseudo += u32::from(u16::from_be_bytes([word[0], word[1]]));
        pseudo += u32::from(u16::from_be_bytes([word[2], word[3]]));
    }
    let udp_sum = match checksum(&udp, pseudo) {
        0 => 0xffff,
        sum => sum,
    };
    udp[6..8].copy_from_slice(&udp_sum.to_be_bytes());
    out.extend_from_slice(&udp);
    out
}

/// The parts of a BOOTREPLY to port 68 we need.
struct Reply {
    server_mac: [u8; 6],
    xid: u32,
    yiaddr: Ipv4Addr,
    kind: u8,
    server_id: Option<Ipv4Addr>,
}

fn parse(frame: &[u8]) -> Option<Reply> {
    if frame.len() < 14 + 20 + 8 + 240 || frame[12..14] != ETH_P_IP.to_be_bytes() {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[9] != 17 || ip.len() < ihl + 8 + 240 {
        return None;
    }
    let udp = &ip[ihl..];
    if udp[2..4] != 68u16.to_be_bytes() {
        return None;
    }
    let dhcp = &udp[8..];
    if dhcp[0] != 2 || dhcp[236..240] != MAGIC {
        return None;
    }
    let mut reply = Reply {
        server_mac: frame[6..12].try_into().ok()?,
        xid: u32::from_be_bytes(dhcp[4..8].try_into().ok()?),
        yiaddr: Ipv4Addr::new(dhcp[16], dhcp[17], dhcp[18], dhcp[19]),
        kind: 0,
        server_id: None,
    };
    let mut options = &dhcp[240..];
    while let [code, rest @ ..] = options {
        match code {
            0 => options = rest,
            255 => break,
            _ => {
                let (&len, rest) = rest.split_first()?;
                let value = rest.get(..usize::from(len))?;
                match (code, value) {
                    (53, [kind]) => reply.kind = *kind,
                    (54, [a, b, c, d]) => reply.server_id = Some(Ipv4Addr::new(*a, *b, *c, *d)),
                    _ => {}
                }
                options = &rest[usize::from(len)..];
            }
        }
    }
    Some(reply)
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
    let socket = RawSocket::open(interface)?;
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
    let broadcast_mac = [0xff; 6];
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
        socket.send(&build(&Frame {
            src_mac: mac,
            dst_mac: broadcast_mac,
            src_ip: Ipv4Addr::UNSPECIFIED,
            dst_ip: Ipv4Addr::BROADCAST,
            xid: XID_TAG | index as u32,
            broadcast: true,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            options: &options,
        }))
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
            if reply.xid & 0xff00_0000 != XID_TAG {
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
                    client.offer = Some((reply.yiaddr, server_id, reply.server_mac));
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

fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|part| u8::from_str_radix(part, 16))
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad MAC {text}"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("bad MAC {text}"))
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
        frames.push(build(&Frame {
            src_mac: parse_mac(mac)?,
            dst_mac: parse_mac(server_mac)?,
            src_ip: yiaddr,
            dst_ip: server_id.parse()?,
            xid: XID_TAG | index as u32,
            broadcast: false,
            ciaddr: yiaddr,
            options: &options,
        }));
    }
    if frames.is_empty() {
        bail!("no leases in {leases}");
    }
    let socket = Arc::new(RawSocket::open(interface)?);
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
                    if reply.kind == 5 && reply.xid & 0xff00_0000 == XID_TAG {
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
