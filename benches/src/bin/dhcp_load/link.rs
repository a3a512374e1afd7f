//! Where the generator's frames go: an AF_PACKET socket on an interface, or its own loopback,
//! where an in-process [`Responder`] answers every DISCOVER and REQUEST.
//!
//! The loopback measures what the generator itself costs per DORA — templates, checksums,
//! parsing, the client state machines, timers and the latency histograms, plus the
//! responder's patching — with no kernel in the path. On a veth the kernel's work per frame
//! (an skb, the transmit, the delivery into the peer's packet socket, four times per DORA)
//! is most of the generator's CPU; on a NIC with AF_XDP in zero-copy mode it is a descriptor
//! per frame. The loopback is the generator's ceiling where that cost is gone.

use crate::reflect::Responder;
use anyhow::Result;
use benches::packet_socket::{PacketSocket, Protocols, RxRing, SendQueue};
use benches::wire;
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::Duration;

/// The loopback's server identifier and MAC (never on any wire).
pub const LOOPBACK_SERVER: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 1);

pub enum Link {
    Packet { socket: PacketSocket, ring: RxRing },
    Loopback(Loopback),
}

/// Replies the responder wrote and the generator has not read yet; spent buffers are reused.
pub struct Loopback {
    responder: Responder,
    pending: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
}

impl Link {
    pub fn packet(interface: &str) -> Result<Self> {
        let socket = PacketSocket::open(interface, Protocols::All, None)?;
        let ring = socket.rx_ring()?;
        Ok(Self::Packet { socket, ring })
    }

    pub fn loopback() -> Self {
        Self::Loopback(Loopback {
            responder: Responder::new(LOOPBACK_SERVER),
            pending: VecDeque::new(),
            spare: Vec::new(),
        })
    }

    /// Sends (or, on the loopback, answers) every queued frame.
    pub fn flush(&mut self, queue: &mut SendQueue) -> usize {
        match self {
            Self::Packet { socket, .. } => queue.flush(socket),
            Self::Loopback(loopback) => queue.drain_each(|frame| {
                let Some(request) = wire::parse(frame) else {
                    return;
                };
                let mut reply = loopback.spare.pop().unwrap_or_default();
                reply.clear();
                if loopback.responder.answer(&request, &mut reply) {
                    loopback.pending.push_back(reply);
                } else {
                    loopback.spare.push(reply);
                }
            }),
        }
    }

    /// Calls `each` with up to `max` received frames; returns how many.
    pub fn receive(&mut self, max: usize, mut each: impl FnMut(&[u8])) -> usize {
        match self {
            Self::Packet { ring, .. } => ring.receive(max, each),
            Self::Loopback(loopback) => {
                let mut count = 0;
                while count < max {
                    let Some(frame) = loopback.pending.pop_front() else {
                        break;
                    };
                    each(&frame);
                    loopback.spare.push(frame);
                    count += 1;
                }
                count
            }
        }
    }

    /// Sleeps until a frame arrives or `timeout` passes. On the loopback every reply is
    /// already there, so this is only the pacing's sleep.
    pub fn wait(&self, timeout: Duration) {
        match self {
            Self::Packet { socket, .. } => socket.wait(timeout),
            Self::Loopback(loopback) => {
                if loopback.pending.is_empty() {
                    std::thread::sleep(timeout);
                }
            }
        }
    }
}
