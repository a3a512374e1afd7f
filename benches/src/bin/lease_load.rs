//! Load test of the lease store: `lease_load generate N FILE` writes an N-lease dhcpd.leases;
//! `lease_load load FILE` streams it into a store and prints the time taken and the store's own
//! memory count. Run under `/usr/bin/time -v` for the maximum resident set size.

use std::io::BufWriter;
use std::path::Path;

use xdhcpd::config::model::{AddressRange, Config, Pool, ScopeId, SharedNetworkId};
use xdhcpd::lease::file::generate_example;
use xdhcpd::lease::store::LeaseStore;

#[expect(clippy::disallowed_methods, reason = "driver owns the clock")]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

fn main() -> std::io::Result<()> {
    let arguments: Vec<String> = std::env::args().collect();
    match arguments.get(1).map(String::as_str) {
        Some("generate") if arguments.len() == 4 => {
            let count: u32 = arguments[2].parse().map_err(std::io::Error::other)?;
            let file = std::fs::File::create(&arguments[3])?;
            generate_example(count, &mut BufWriter::new(file))
        }
        Some("load") if arguments.len() == 3 => {
            let config = Config {
                pools: vec![Pool {
                    scope: ScopeId::GLOBAL,
                    shared_network: SharedNetworkId(0),
                    subnet: None,
                    ranges: vec![AddressRange {
                        low: "10.0.0.1".parse().map_err(std::io::Error::other)?,
                        high: "10.255.255.254".parse().map_err(std::io::Error::other)?,
                        dynamic_bootp: false,
                    }],
                    permits: Vec::new(),
                    failover_peer: None,
                }],
                ..Config::default()
            };
            let mut store = LeaseStore::new(&config);
            let started = now();
            let rest = store.load_path(Path::new(&arguments[2]))?;
            let elapsed = started.elapsed();
            let memory = store.memory();
            println!(
                "{} leases in {:.3} s, {} errors, torn tail {}; store {} bytes = {} per lease ({memory:?})",
                store.len(),
                elapsed.as_secs_f64(),
                rest.errors.len(),
                rest.torn_tail,
                memory.total,
                memory.total / store.len().max(1),
            );
            Ok(())
        }
        _ => {
            eprintln!("usage: lease_load generate N FILE | lease_load load FILE");
            std::process::exit(2);
        }
    }
}
