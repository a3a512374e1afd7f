//! `get-lease-hostnames true;` (dhcpd.conf(5)): the reverse DNS name of a leased address as its
//! `host-name` option, looked up off the packet path.
//!
//! ISC's `ack_lease` (server/dhcp.c) calls `gethostbyaddr` for the address at every DHCPOFFER
//! and DHCPACK (and the BOOTREPLY of a dynamic BOOTP lease) whose options have no `host-name`
//! yet, in its only thread, and sends the name as option 12 with a trailing NUL
//! (`make_const_data(…, strlen(h_name) + 1, …)`); no name logs "No hostname for A".
//!
//! xdhcpd never blocks a worker on the resolver. When a configuration enables the statement in
//! any scope, [`ReverseNames::start`] looks up every address of its ranges and every fixed
//! address of its hosts on a few threads of its own ([`PARALLEL_LOOKUPS`] at once, each lookup
//! bounded by the resolver's own timeout, resolv.conf(5) `timeout`/`attempts`), again each
//! [`REFRESH`], and after each reload; the engine reads the results as a plain [`Table`]
//! through its `Snapshot`. An address whose lookup has not finished yet gets no name (README
//! "Differs").

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use crate::config::model::Config;

/// How many lookups run at once.
pub const PARALLEL_LOOKUPS: usize = 8;

/// How often every address is looked up again (ISC: at each reply; its forward lookups are
/// kept an hour, common/tree.c `do_host_lookup`).
pub const REFRESH: Duration = Duration::from_secs(3600);

/// How often finished lookups are published to the workers while a round runs.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// The reverse names known so far: `Some(name)`, or `None` when the lookup found none. An
/// address missing from the table has not been looked up yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    names: HashMap<Ipv4Addr, Option<Arc<str>>>,
}

/// What the table says of one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup<'t> {
    /// Its name.
    Name(&'t str),
    /// The lookup found no name (ISC: "No hostname for A").
    NoName,
    /// Not looked up yet.
    Pending,
}

impl Table {
    pub fn get(&self, address: Ipv4Addr) -> Lookup<'_> {
        match self.names.get(&address) {
            Some(Some(name)) => Lookup::Name(name),
            Some(None) => Lookup::NoName,
            None => Lookup::Pending,
        }
    }

    pub fn insert(&mut self, address: Ipv4Addr, name: Option<&str>) {
        self.names.insert(address, name.map(Arc::from));
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The value of option 12 for `name`, as ISC sends it: the name and a NUL.
pub fn option_value(name: &str) -> Vec<u8> {
    let mut value = Vec::with_capacity(name.len() + 1);
    value.extend_from_slice(name.as_bytes());
    value.push(0);
    value
}

/// Whether any scope of `config` says `get-lease-hostnames true` (a host, class, pool, subnet
/// or shared network may, for the addresses it reaches).
pub fn wanted(config: &Config) -> bool {
    config
        .scopes
        .iter()
        .any(|scope| scope.get_lease_hostnames == Some(true))
}

/// Every address a reply of `config` may name: its ranges' and its hosts' fixed addresses,
/// each once.
pub fn addresses(config: &Config) -> Vec<Ipv4Addr> {
    let mut addresses: Vec<Ipv4Addr> = config
        .pools
        .iter()
        .flat_map(|pool| pool.ranges.iter())
        .flat_map(|range| (u32::from(range.low)..=u32::from(range.high)).map(Ipv4Addr::from))
        .chain(
            config
                .hosts
                .iter()
                .flat_map(|host| host.fixed_addresses.iter().copied()),
        )
        .collect();
    addresses.sort_unstable();
    addresses.dedup();
    addresses
}

/// Looks one address up: its name, or `None`.
pub type Resolver = fn(Ipv4Addr) -> Option<String>;

/// The system's resolver: getnameinfo(3) with `NI_NAMEREQD` (/etc/hosts, then DNS, as
/// nsswitch.conf says), which gives the canonical name as `gethostbyaddr`'s `h_name`.
pub fn system(address: Ipv4Addr) -> Option<String> {
    let socket_address = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(address).to_be(),
        },
        sin_zero: [0; 8],
    };
    let mut host = [0 as libc::c_char; libc::NI_MAXHOST as usize];
    // SAFETY: a valid sockaddr_in of the length given and a host buffer of the length given;
    // no service buffer.
    let result = unsafe {
        libc::getnameinfo(
            (&socket_address as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if result != 0 {
        return None;
    }
    // SAFETY: getnameinfo wrote a NUL-terminated string into `host` on success.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    let name = name.to_str().ok()?;
    (!name.is_empty()).then(|| name.to_owned())
}

/// The daemon's side: the table the workers read and the threads that fill it.
pub struct ReverseNames {
    table: arc_swap::ArcSwapOption<Table>,
    /// Bumped by each [`Self::start`]: a round of an older configuration stops.
    generation: AtomicU64,
    resolver: Resolver,
    shutdown: Arc<std::sync::atomic::AtomicBool>,
    /// Wakes a round's coordinator when a newer one starts or the daemon stops.
    wake: Mutex<Option<mpsc::Sender<()>>>,
}

impl ReverseNames {
    pub fn new(resolver: Resolver, shutdown: Arc<std::sync::atomic::AtomicBool>) -> Arc<Self> {
        Arc::new(Self {
            table: arc_swap::ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
            resolver,
            shutdown,
            wake: Mutex::new(None),
        })
    }

    /// The table for the engine's snapshot; `None` while no configuration wants names.
    pub fn table(&self) -> Option<Arc<Table>> {
        self.table.load_full()
    }

    /// Starts looking up the addresses of `config` (start-up and each reload), keeping the
    /// names already known meanwhile; stops the lookups of the previous configuration.
    pub fn start(self: &Arc<Self>, config: &Config) -> std::io::Result<()> {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let (wake, woken) = mpsc::channel();
        if let Ok(mut previous) = self.wake.lock() {
            if let Some(previous) = previous.replace(wake) {
                let _ = previous.send(());
            }
        }
        if !wanted(config) {
            self.table.store(None);
            return Ok(());
        }
        let addresses = addresses(config);
        if self.table.load().is_none() {
            self.table.store(Some(Arc::new(Table::default())));
        }
        let this = self.clone();
        std::thread::Builder::new()
            .name("reverse-names".into())
            .spawn(move || this.run(generation, &addresses, &woken))?;
        Ok(())
    }

    fn current(&self, generation: u64) -> bool {
        self.generation.load(Ordering::Acquire) == generation
            && !self.shutdown.load(Ordering::Relaxed)
    }

    /// Rounds of lookups for one configuration, [`REFRESH`] apart, until a newer one starts.
    fn run(&self, generation: u64, addresses: &[Ipv4Addr], woken: &mpsc::Receiver<()>) {
        loop {
            let started = crate::clock::monotonic();
            if !self.round(generation, addresses) {
                return;
            }
            tracing::info!(
                "get-lease-hostnames: {} addresses looked up in {:.1} s",
                addresses.len(),
                started.elapsed().as_secs_f64()
            );
            // Sleeps until the next round, a newer configuration or the end (in steps, so a
            // stop without a wake-up is seen too).
            let mut slept = Duration::ZERO;
            while slept < REFRESH {
                match woken.recv_timeout(Duration::from_secs(1)) {
                    Err(mpsc::RecvTimeoutError::Timeout) => slept += Duration::from_secs(1),
                    _ => return,
                }
                if !self.current(generation) {
                    return;
                }
            }
        }
    }

    /// One lookup of each address on [`PARALLEL_LOOKUPS`] threads, published as they finish;
    /// false when a newer configuration or the end stopped it.
    fn round(&self, generation: u64, addresses: &[Ipv4Addr]) -> bool {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (results, finished) = mpsc::channel::<(Ipv4Addr, Option<String>)>();
        let resolver = self.resolver;
        std::thread::scope(|threads| {
            for _ in 0..PARALLEL_LOOKUPS.min(addresses.len()) {
                let results = results.clone();
                let next = &next;
                threads.spawn(move || loop {
                    if !self.current(generation) {
                        return;
                    }
                    let Some(&address) = addresses.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    if results.send((address, resolver(address))).is_err() {
                        return;
                    }
                });
            }
            drop(results);
            let mut pending: Vec<(Ipv4Addr, Option<String>)> = Vec::new();
            let mut last = crate::clock::monotonic();
            loop {
                let received = finished.recv_timeout(PUBLISH_EVERY);
                let done = matches!(received, Err(mpsc::RecvTimeoutError::Disconnected));
                if let Ok(result) = received {
                    pending.push(result);
                }
                if (done || last.elapsed() >= PUBLISH_EVERY) && !pending.is_empty() {
                    self.publish(generation, pending.drain(..));
                    last = crate::clock::monotonic();
                }
                if done {
                    break;
                }
            }
        });
        self.current(generation)
    }

    /// A new table: the current one with `results`, unless a newer configuration took over.
    fn publish(&self, generation: u64, results: impl Iterator<Item = (Ipv4Addr, Option<String>)>) {
        if !self.current(generation) {
            return;
        }
        let mut table = self
            .table
            .load_full()
            .map_or_else(Table::default, |table| (*table).clone());
        for (address, name) in results {
            table.insert(address, name.as_deref());
        }
        self.table.store(Some(Arc::new(table)));
    }

    /// Stops the lookups (daemon shutdown).
    pub fn stop(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut wake) = self.wake.lock() {
            if let Some(wake) = wake.take() {
                let _ = wake.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(address: Ipv4Addr) -> Option<String> {
        match address.octets() {
            [10, 0, 0, 10] => Some("pc10.lab.test".to_owned()),
            [10, 0, 0, 70] => Some("printer.lab.test".to_owned()),
            _ => None,
        }
    }

    fn config(text: &str) -> Config {
        crate::config::parse_str(text, "names.conf").expect("parses")
    }

    #[test]
    fn the_option_carries_a_nul_as_isc_sends_it() {
        assert_eq!(option_value("pc.lab"), b"pc.lab\0".to_vec());
    }

    #[test]
    fn every_range_and_fixed_address_is_looked_up_when_a_scope_wants_names() {
        let text = "subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.12; \
                    pool { range 10.0.0.13 10.0.0.13; } }\n\
                    host p { hardware ethernet 02:00:00:00:00:07; fixed-address 10.0.0.70; }\n\
                    host q { hardware ethernet 02:00:00:00:00:08; fixed-address 10.0.0.12; }\n";
        assert!(!wanted(&config(text)));
        assert!(!wanted(&config(&format!(
            "get-lease-hostnames false;\n{text}"
        ))));
        let config = config(&text.replace("host p {", "host p { get-lease-hostnames true;"));
        assert!(wanted(&config));
        let expected: Vec<Ipv4Addr> = [10, 11, 12, 13, 70]
            .into_iter()
            .map(|last| Ipv4Addr::new(10, 0, 0, last))
            .collect();
        assert_eq!(addresses(&config), expected);
    }

    #[test]
    fn lookups_fill_the_table_off_the_caller() {
        let shutdown = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let names = ReverseNames::new(lab, shutdown);
        let text = "get-lease-hostnames true;\n\
                    subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.30; }\n";
        names.start(&config(text)).expect("starts");
        let deadline = crate::clock::monotonic() + Duration::from_secs(10);
        let table = loop {
            if let Some(table) = names.table().filter(|table| table.len() == 21) {
                break table;
            }
            assert!(
                crate::clock::monotonic() < deadline,
                "every address looked up"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(
            table.get(Ipv4Addr::new(10, 0, 0, 10)),
            Lookup::Name("pc10.lab.test")
        );
        assert_eq!(table.get(Ipv4Addr::new(10, 0, 0, 11)), Lookup::NoName);
        assert_eq!(table.get(Ipv4Addr::new(10, 0, 0, 31)), Lookup::Pending);
        // A configuration without the statement takes the table away.
        names
            .start(&config("subnet 10.0.0.0 netmask 255.255.255.0 { }"))
            .expect("starts");
        assert!(names.table().is_none());
        names.stop();
    }

    #[test]
    fn the_system_resolver_reads_the_hosts_file() {
        // /etc/hosts names 127.0.0.1 on every system this runs on.
        assert!(system(Ipv4Addr::LOCALHOST).is_some());
    }
}
