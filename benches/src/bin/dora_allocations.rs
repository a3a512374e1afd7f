//! Heap allocations per DORA on the worker's path, counted by a global allocator: each request
//! is decoded from its wire bytes as the worker decodes it (`net::decode`), decided by the
//! engine against a 64k-address pool, and its reply encoded, for `COUNT` clients in a row.
//! `dora_allocations [COUNT]` prints allocations and bytes per DISCOVER→OFFER and per
//! REQUEST→ACK (issue 14 §2: "no allocation per packet on the DORA path").

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dhcp_test_messages::ClientMessage;
use dhcproto::v4::{DhcpOption, MessageType, OptionCode};
use xdhcpd::engine::starvation::StarvationState;
use xdhcpd::engine::{Engine, Request, Snapshot};
use xdhcpd::lease::store::LeaseStore;
use xdhcpd::net::decode::{decode_message_with, DecodeScratch};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(pointer, layout) }
    }
    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(size as u64, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(pointer, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<T>(work: impl FnOnce() -> T) -> (T, u64, u64) {
    let (before, bytes_before) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    let value = work();
    (
        value,
        ALLOCATIONS.load(Ordering::Relaxed) - before,
        BYTES.load(Ordering::Relaxed) - bytes_before,
    )
}

/// Allocations and bytes, per phase: decode, decision, encode.
#[derive(Default)]
struct Phases([(u64, u64); 3]);

impl Phases {
    fn add(&mut self, phase: usize, (allocations, bytes): (u64, u64)) {
        self.0[phase].0 += allocations;
        self.0[phase].1 += bytes;
    }

    fn print(&self, name: &str, count: u32) {
        let per = |total: u64| total as f64 / f64::from(count);
        let total: (u64, u64) = self
            .0
            .iter()
            .fold((0, 0), |sum, phase| (sum.0 + phase.0, sum.1 + phase.1));
        println!(
            "{name}: {:.1} allocations ({:.0} bytes): decode {:.1}, decision {:.1}, encode {:.1}",
            per(total.0),
            per(total.1),
            per(self.0[0].0),
            per(self.0[1].0),
            per(self.0[2].0)
        );
    }
}

/// Decodes, decides and encodes one request as the worker does, counting each phase.
fn exchange(
    engine: &Engine,
    state: &mut (LeaseStore, StarvationState),
    bytes: &[u8],
    phases: &mut Phases,
    scratch: &mut DecodeScratch,
) -> Option<(Ipv4Addr, usize)> {
    let (message, allocations, size) = counted(|| decode_message_with(bytes, scratch));
    phases.add(0, (allocations, size));
    let message = message.ok()?;
    let request = Request {
        message: &message,
        source: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
        interface_address: Some(INTERFACE),
        raw: None,
    };
    let (decision, allocations, size) = counted(|| {
        engine.handle(
            NOW,
            &Snapshot::default(),
            &request,
            &mut state.0,
            &mut state.1,
        )
    });
    phases.add(1, (allocations, size));
    let reply = decision.reply?;
    let (encoded, allocations, size) = counted(|| reply.encode());
    phases.add(2, (allocations, size));
    std::hint::black_box(encoded.ok());
    Some((reply.header.yiaddr(), decision.commit.len()))
}

const INTERFACE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const NOW: u32 = 1_795_836_305;

/// What the clients send besides options 53, 50 and 54.
#[derive(Clone, Copy)]
enum Shape {
    /// Nothing else (perfdhcp's default).
    Bare,
    /// As `dhcp_load` sends through its relay: a 6-code parameter request list, giaddr, and
    /// option 82 with a circuit id and a remote id.
    Relayed,
    /// As dhclient sends: a 13-code parameter request list, a client identifier, a host name
    /// and a maximum message size.
    Dhclient,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Self::Bare => "bare (53, 50, 54)",
            Self::Relayed => "relayed as dhcp_load (55, 82, giaddr)",
            Self::Dhclient => "dhclient-like (55, 61, 12, 57)",
        }
    }

    fn dress(self, client: ClientMessage, mac: [u8; 6]) -> ClientMessage {
        let codes = |codes: &[u8]| {
            codes
                .iter()
                .map(|&code| OptionCode::from(code))
                .collect::<Vec<_>>()
        };
        match self {
            Self::Bare => client,
            Self::Relayed => client
                .relayed_by(Ipv4Addr::new(10, 0, 0, 2))
                .requesting(&codes(&[1, 3, 6, 15, 28, 51]))
                .raw_option(82, &agent_information(mac)),
            Self::Dhclient => {
                let mut id = vec![1];
                id.extend_from_slice(&mac);
                client
                    .requesting(&codes(&[1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42]))
                    .client_id(&id)
                    .hostname("laptop")
                    .option(DhcpOption::MaxMessageSize(1500))
            }
        }
    }
}

/// Option 82 as a relay sends it: a circuit id per subscriber line (one client per line here;
/// the starvation defence limits new clients per circuit) and a remote id.
fn agent_information(mac: [u8; 6]) -> Vec<u8> {
    let mut value = vec![1, 6];
    value.extend_from_slice(&mac);
    value.extend_from_slice(&[2, 4, b'b', b'n', b'g', b'1']);
    value
}

fn main() {
    let count: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let config = benches::engine_bench_config();
    let engine = Engine::new(Arc::new(config.clone()));
    let mut state = (LeaseStore::new(&config), StarvationState::default());
    // The worker's decoder buffers, kept from one datagram to the next as the worker keeps them.
    let mut scratch = DecodeScratch::default();
    println!("{count} clients of each shape, heap allocations per packet");
    for (index, shape) in [Shape::Bare, Shape::Relayed, Shape::Dhclient]
        .into_iter()
        .enumerate()
    {
        let (mut offers, mut acks) = (Phases::default(), Phases::default());
        for client in 0..count {
            let mac = [
                2,
                index as u8,
                (client >> 24) as u8,
                (client >> 16) as u8,
                (client >> 8) as u8,
                client as u8,
            ];
            let discover = shape
                .dress(
                    ClientMessage::new(MessageType::Discover, mac).xid(client),
                    mac,
                )
                .encode();
            let (offered, _) = exchange(&engine, &mut state, &discover, &mut offers, &mut scratch)
                .expect("an offer");
            let request = shape
                .dress(
                    ClientMessage::new(MessageType::Request, mac)
                        .xid(client)
                        .requested(offered)
                        .server_id(INTERFACE),
                    mac,
                )
                .encode();
            let (_, records) =
                exchange(&engine, &mut state, &request, &mut acks, &mut scratch).expect("an ack");
            assert_eq!(records, 1, "an ACK commits its lease");
        }
        println!("{}", shape.name());
        offers.print("  DISCOVER→OFFER", count);
        acks.print("  REQUEST→ACK", count);
    }
}
