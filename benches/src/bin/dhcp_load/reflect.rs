//! The self-test's far end: a responder that answers every DISCOVER with an OFFER and every
//! REQUEST with an ACK, copied from two precomputed frames and patched (addresses, xid,
//! chaddr, IPv4 checksum), with no state, no lease and no fsync. Whatever rate the generator
//! reaches against it is the generator's own ceiling (or this responder's, which does less
//! work per exchange than the generator).
//!
//! The UDP checksum of the replies is left at 0 ("no checksum", RFC 768): the generator does
//! not verify it and the replies never reach a kernel socket.

use anyhow::Result;
use benches::packet_socket::{PacketSocket, Protocols, SendQueue};
use benches::wire::{self, Frame};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// The pool the reflector "allocates" from: the client's index decides the address.
const POOL: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 0);

fn template(kind: u8, server_id: Ipv4Addr) -> Vec<u8> {
    let mut options = vec![53, 1, kind, 54, 4];
    options.extend_from_slice(&server_id.octets());
    options.extend_from_slice(&[51, 4, 0, 0, 0x0e, 0x10, 1, 4, 255, 224, 0, 0]);
    let mut frame = Frame::request(
        [0x02, 0x52, 0x46, 0x4c, 0x43, 0x54],
        wire::BROADCAST_MAC,
        server_id,
        Ipv4Addr::BROADCAST,
        0,
        &options,
    );
    frame.op = 2;
    frame.src_port = 67;
    frame.dst_port = 68;
    wire::build(&frame)
}

/// The two precomputed replies and the patching that turns one into the answer to a request.
pub struct Responder {
    offer: Vec<u8>,
    ack: Vec<u8>,
}

impl Responder {
    pub fn new(server_id: Ipv4Addr) -> Self {
        Self {
            offer: template(wire::OFFER, server_id),
            ack: template(wire::ACK, server_id),
        }
    }

    /// Writes the answer to `request` into `slot` (cleared by the caller); false when the
    /// request gets none (not a DISCOVER or REQUEST).
    pub fn answer(&self, request: &wire::Dhcp, slot: &mut Vec<u8>) -> bool {
        let template = match (request.op, request.kind) {
            (1, wire::DISCOVER) => &self.offer,
            (1, wire::REQUEST) => &self.ack,
            _ => return false,
        };
        slot.extend_from_slice(template);
        let relayed = !request.giaddr.is_unspecified();
        // RFC 2131 §4.1: to the relay's port 67 at giaddr, else broadcast to port 68.
        let (dst_mac, dst_ip, dst_port) = if relayed {
            (request.src_mac, request.giaddr, 67u16)
        } else {
            (wire::BROADCAST_MAC, Ipv4Addr::BROADCAST, 68)
        };
        slot[0..6].copy_from_slice(&dst_mac);
        slot[30..34].copy_from_slice(&dst_ip.octets());
        slot[36..38].copy_from_slice(&dst_port.to_be_bytes());
        slot[24..26].copy_from_slice(&[0, 0]);
        let ip_sum = wire::checksum(&slot[14..34], 0);
        slot[24..26].copy_from_slice(&ip_sum.to_be_bytes());
        slot[40..42].copy_from_slice(&[0, 0]);
        slot[wire::XID_OFFSET..wire::XID_OFFSET + 4].copy_from_slice(&request.xid.to_be_bytes());
        let [_, a, b, c] =
            u32::from_be_bytes([0, request.chaddr[3], request.chaddr[4], request.chaddr[5]])
                .to_be_bytes();
        let yiaddr = Ipv4Addr::from(u32::from(POOL) | u32::from_be_bytes([0, a, b, c]));
        slot[wire::YIADDR_OFFSET..wire::YIADDR_OFFSET + 4].copy_from_slice(&yiaddr.octets());
        slot[wire::BOOTP_OFFSET + 24..wire::BOOTP_OFFSET + 28]
            .copy_from_slice(&request.giaddr.octets());
        slot[wire::CHADDR_OFFSET..wire::CHADDR_OFFSET + 6].copy_from_slice(&request.chaddr);
        true
    }
}

pub fn run(interface: &str, server_id: Ipv4Addr, seconds: f64) -> Result<()> {
    let socket = PacketSocket::open(interface, Protocols::All, None)?;
    let responder = Responder::new(server_id);
    let mut ring = socket.rx_ring()?;
    let mut queue = SendQueue::new();
    let start = Instant::now();
    let end = Duration::from_secs_f64(seconds);
    let mut answered = 0u64;
    let cpu_before = crate::report::cpu_seconds();
    println!("reflecting on {interface}");
    let mut requests = Vec::new();
    while start.elapsed() < end {
        requests.clear();
        if ring.receive(256, |frame| requests.extend(wire::parse(frame))) == 0 {
            socket.wait(Duration::from_millis(50));
            continue;
        }
        for request in &requests {
            if responder.answer(request, queue.next_slot()) {
                answered += 1;
            } else {
                queue.unqueue_last();
            }
        }
        queue.flush(&socket);
    }
    println!(
        "RESULT phase reflect answered {answered} refused {} cpu_s {:.3}",
        queue.refused,
        crate::report::cpu_seconds() - cpu_before
    );
    Ok(())
}
