//! Criterion benchmarks of the protocol engine: one DISCOVER→OFFER and one REQUEST→ACK decision,
//! the reply encoded, against a store with a 64k-address pool.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use dhcproto::v4::{DhcpOption, Message, MessageType};
use xdhcpd::config::model::Config;
use xdhcpd::engine::starvation::StarvationState;
use xdhcpd::engine::{Engine, Request, Snapshot};
use xdhcpd::lease::store::LeaseStore;

const INTERFACE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const NOW: u32 = 1_795_836_305;

fn message(kind: MessageType, client: u32) -> Message {
    let mac = [
        2,
        0,
        (client >> 24) as u8,
        (client >> 16) as u8,
        (client >> 8) as u8,
        client as u8,
    ];
    dhcp_test_messages::ClientMessage::new(kind, mac)
        .xid(client)
        .build()
}

/// A lease store and the starvation defence's memory, fresh for each iteration: a memory kept
/// across iterations would refuse the same MAC's fifth new lease at the same `NOW` and measure
/// the refusal instead of the allocation.
struct State {
    store: LeaseStore,
    starvation: StarvationState,
}

impl State {
    fn new(config: &Config) -> Self {
        Self {
            store: LeaseStore::new(config),
            starvation: StarvationState::default(),
        }
    }
}

fn handle(engine: &Engine, state: &mut State, message: &Message) -> Option<Ipv4Addr> {
    let request = Request {
        message,
        source: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
        interface_address: Some(INTERFACE),
        raw: None,
    };
    let decision = engine.handle(
        NOW,
        &Snapshot::default(),
        &request,
        &mut state.store,
        &mut state.starvation,
    );
    // The reply as the worker sends it: encoding is part of the per-packet cost.
    decision.reply.map(|reply| {
        std::hint::black_box(reply.encode().ok());
        reply.header.yiaddr()
    })
}

fn bench(criterion: &mut Criterion) {
    let config = benches::engine_bench_config();
    let engine = Engine::new(Arc::new(config.clone()));

    criterion.bench_function("discover_to_offer", |bencher| {
        bencher.iter_batched(
            || (State::new(&config), message(MessageType::Discover, 1)),
            |(mut state, discover)| handle(&engine, &mut state, &discover),
            BatchSize::SmallInput,
        )
    });

    criterion.bench_function("request_to_ack", |bencher| {
        bencher.iter_batched(
            || {
                let mut state = State::new(&config);
                let address = handle(&engine, &mut state, &message(MessageType::Discover, 1))
                    .unwrap_or(Ipv4Addr::UNSPECIFIED);
                let mut request = message(MessageType::Request, 1);
                request
                    .opts_mut()
                    .insert(DhcpOption::RequestedIpAddress(address));
                request
                    .opts_mut()
                    .insert(DhcpOption::ServerIdentifier(INTERFACE));
                (state, request)
            },
            |(mut state, request)| handle(&engine, &mut state, &request),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
