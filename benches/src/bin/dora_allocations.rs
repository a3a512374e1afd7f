//! Heap allocations per DORA on the worker's path, counted by a global allocator: each request
//! is decoded from its wire bytes as the worker decodes it (`net::decode`), decided by the
//! engine against a 64k-address pool, and its reply encoded, for `COUNT` clients in a row.
//! `dora_allocations [COUNT]` prints allocations and bytes per DISCOVER→OFFER and per
//! REQUEST→ACK (issue 14 §2: "no allocation per packet on the DORA path").

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dhcproto::v4::MessageType;
use xdhcpd::engine::starvation::StarvationState;
use xdhcpd::engine::{Engine, Request, Snapshot};
use xdhcpd::lease::store::LeaseStore;

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
) -> Option<(Ipv4Addr, usize)> {
    let (message, allocations, size) = counted(|| xdhcpd::net::decode::decode_message(bytes));
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

fn main() {
    let count: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let config = benches::engine_bench_config();
    let engine = Engine::new(Arc::new(config.clone()));
    let mut state = (LeaseStore::new(&config), StarvationState::default());
    let (mut offers, mut acks) = (Phases::default(), Phases::default());
    for client in 0..count {
        let mac = [
            2,
            0,
            (client >> 24) as u8,
            (client >> 16) as u8,
            (client >> 8) as u8,
            client as u8,
        ];
        let discover = dhcp_test_messages::ClientMessage::new(MessageType::Discover, mac)
            .xid(client)
            .encode();
        let (offered, _) = exchange(&engine, &mut state, &discover, &mut offers).expect("an offer");
        let request = dhcp_test_messages::ClientMessage::new(MessageType::Request, mac)
            .xid(client)
            .requested(offered)
            .server_id(INTERFACE)
            .encode();
        let (_, records) = exchange(&engine, &mut state, &request, &mut acks).expect("an ack");
        assert_eq!(records, 1, "an ACK commits its lease");
    }
    println!("{count} clients, allocations per packet");
    offers.print("DISCOVER→OFFER", count);
    acks.print("REQUEST→ACK", count);
}
