//! Lease store and lease log benchmarks: formatting a lease, store upsert and allocation, and
//! committing a batch of 64 leases (one write, one fdatasync) to a file in the temp directory.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use xdhcpd::config::model::{AddressRange, Config, Pool, PoolId, ScopeId, SharedNetworkId};
use xdhcpd::lease::file::{write_header, write_lease};
use xdhcpd::lease::log::LeaseLog;
use xdhcpd::lease::record::{BindingState, Hardware, Lease};
use xdhcpd::lease::store::{ClientKey, LeaseStore};

fn sample_lease(index: u32) -> Lease {
    let mut lease = Lease::free(Ipv4Addr::from(0x0a00_0000 + index));
    lease.starts = 1_795_836_305;
    lease.ends = 1_795_836_305 + 86_400;
    lease.cltt = lease.starts;
    lease.binding_state = BindingState::Active;
    lease.next_binding_state = BindingState::Free;
    let mac = [
        2,
        0,
        0,
        (index >> 16) as u8,
        (index >> 8) as u8,
        index as u8,
    ];
    lease.hardware = Hardware::new(1, &mac);
    lease.set_uid(Some(&[&[1u8][..], &mac].concat()));
    lease.set_client_hostname(Some("laptop"));
    lease
}

fn pool_config() -> Config {
    Config {
        pools: vec![Pool {
            scope: ScopeId::GLOBAL,
            shared_network: SharedNetworkId(0),
            subnet: None,
            ranges: vec![AddressRange {
                low: Ipv4Addr::new(10, 0, 0, 1),
                high: Ipv4Addr::new(10, 15, 255, 254),
                dynamic_bootp: false,
            }],
            permits: Vec::new(),
            failover_peer: None,
        }],
        ..Config::default()
    }
}

fn format(c: &mut Criterion) {
    let lease = sample_lease(7);
    let mut out = Vec::with_capacity(512);
    c.bench_function("lease/format", |b| {
        b.iter(|| {
            out.clear();
            write_lease(black_box(&lease), &mut out);
            black_box(out.len())
        })
    });
}

fn store(c: &mut Criterion) {
    let config = pool_config();
    let mut store = LeaseStore::new(&config);
    for index in 1..=100_000 {
        store.upsert(sample_lease(index));
    }
    let mut index = 0u32;
    c.bench_function("lease/store_upsert_100k", |b| {
        b.iter(|| {
            index = index % 100_000 + 1;
            store.upsert(black_box(sample_lease(index)));
        })
    });
    c.bench_function("lease/store_allocate", |b| {
        b.iter_batched_ref(
            || LeaseStore::new(&config),
            |store| {
                let client =
                    ClientKey::Hardware(Hardware::new(1, &[2, 0, 0, 0, 0, 1]).unwrap_or_default());
                for _ in 0..64 {
                    let address = store.allocate(PoolId(0), &client, 1000);
                    black_box(address);
                }
            },
            BatchSize::SmallInput,
        )
    });
}

fn commit(c: &mut Criterion) {
    let directory = std::env::temp_dir().join(format!("xdhcpd-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&directory);
    let path = directory.join("dhcpd.leases");
    let mut header = Vec::new();
    write_header(&mut header);
    let Ok(mut log) = LeaseLog::open(&path, &header) else {
        eprintln!("cannot create {}", path.display());
        return;
    };
    let mut batch = Vec::new();
    for index in 0..64 {
        write_lease(&sample_lease(index), &mut batch);
    }
    c.bench_function("lease/commit_batch_64", |b| {
        b.iter(|| {
            if let Err(error) = log.append(black_box(&batch)) {
                eprintln!("{error}");
            }
            if log.appended_bytes() > 64 << 20 {
                let _ = log.rewrite(&header);
            }
        })
    });
    let _ = std::fs::remove_dir_all(&directory);
}

criterion_group!(benches, format, store, commit);
criterion_main!(benches);
