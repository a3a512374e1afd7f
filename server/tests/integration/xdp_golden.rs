//! Golden table for the XDP program, run through `BPF_PROG_TEST_RUN` (needs CAP_BPF/root): each
//! row is a description, an input frame, the expected action, the statistics slot it lands in
//! and — for renewals — the expected output frame. **Both paths agree**: for every renewal row
//! the DHCP payload the kernel produced equals, byte for byte and with nothing masked, what the
//! userspace engine's `Reply::encode` produces for the same request. The same holds for leases
//! of failover pools, up to the MCLT bound, past which both the kernel passes up and the engine
//! shortens the grant (`failover_renewals_agree_with_the_engine`).

use crate::common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use aya::maps::PerCpuArray;
use aya::programs::{TestRun, TestRunOptions};
use dhcp_test_messages::{encode, internet_checksum, ClientMessage, Frame};
use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, OptionCode};
use dhcproto::Decodable;
use server_common::fastpath::{
    FastPathConfig, LeaseKey, RenewalEvent, CONFIG_FAILOVER_NORMAL, CONFIG_RENEW, KEY_CLIENT_ID,
    KEY_HARDWARE,
};
use server_common::loadbalance;
use server_common::XdpStat;
use xdhcpd::config;
use xdhcpd::engine::fast_path;
use xdhcpd::engine::starvation::StarvationState;
use xdhcpd::engine::{Engine, Request, Snapshot};
use xdhcpd::lease::record::{flags, BindingState, Hardware, Lease};
use xdhcpd::lease::store::LeaseStore;
use xdhcpd::xdp::bounds;
use xdhcpd::xdp::maps::{AyaMaps, FastPathMaps};
use xdhcpd::xdp::sync::{self, FastPath};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

const CONFIG: &str = "
authoritative;
default-lease-time 3600;
max-lease-time 7200;
option domain-name \"example.net\";
option domain-name-servers 10.0.0.53, 10.0.0.54;
subnet 10.0.0.0 netmask 255.255.255.0 {
  range 10.0.0.100 10.0.0.199;
  option routers 10.0.0.1;
}
subnet 10.1.0.0 netmask 255.255.255.0 {
  range 10.1.0.100 10.1.0.199;
  option routers 10.1.0.1;
  dhcp-cache-threshold 0;
}
";

/// [`CONFIG`] with both ranges in failover pools (MCLT 300 s < the lease time, so the MCLT rule
/// bounds it): the kernel answers a failover lease exactly as far as the engine grants the
/// full lease time.
const FAILOVER_CONFIG: &str = "
authoritative;
default-lease-time 3600;
max-lease-time 7200;
option domain-name \"example.net\";
option domain-name-servers 10.0.0.53, 10.0.0.54;
failover peer \"fo\" { primary; address 10.0.0.1; peer address 10.0.0.2; mclt 300; split 128; }
subnet 10.0.0.0 netmask 255.255.255.0 {
  pool { failover peer \"fo\"; range 10.0.0.100 10.0.0.199; }
  option routers 10.0.0.1;
}
subnet 10.1.0.0 netmask 255.255.255.0 {
  pool { failover peer \"fo\"; range 10.1.0.100 10.1.0.199; }
  option routers 10.1.0.1;
}
";
/// MCLT of [`FAILOVER_CONFIG`].
const MCLT: u32 = 300;
/// The partner-acked tsfp of every failover lease of the fixture, relative to `now`.
const TSFP_AHEAD: u32 = 10_000;

const INTERFACE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const SERVER_MAC: [u8; 6] = [0x02, 0x5e, 0, 0, 0, 1];
const RELAY_MAC: [u8; 6] = [0x02, 0x5e, 0, 0, 0, 2];
const RELAY: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const LEASE_TIME: u32 = 3600;

/// One client of the table.
#[derive(Clone, Copy)]
struct Client {
    mac: [u8; 6],
    address: Ipv4Addr,
    client_id: Option<&'static [u8]>,
    relayed: bool,
}

const DIRECT: Client = Client {
    mac: [0x02, 0, 0, 0, 0, 0x0a],
    address: Ipv4Addr::new(10, 0, 0, 150),
    client_id: None,
    relayed: false,
};
const WITH_ID: Client = Client {
    mac: [0x02, 0, 0, 0, 0, 0x0b],
    address: Ipv4Addr::new(10, 0, 0, 151),
    client_id: Some(&[1, 0x02, 0, 0, 0, 0, 0x0b]),
    relayed: false,
};
const RELAYED: Client = Client {
    mac: [0x02, 0, 0, 0, 0, 0x0c],
    address: Ipv4Addr::new(10, 1, 0, 150),
    client_id: None,
    relayed: true,
};
const EXPIRED: Client = Client {
    mac: [0x02, 0, 0, 0, 0, 0x0d],
    address: Ipv4Addr::new(10, 0, 0, 152),
    client_id: None,
    relayed: false,
};
const NO_HORIZON: Client = Client {
    mac: [0x02, 0, 0, 0, 0, 0x0e],
    address: Ipv4Addr::new(10, 0, 0, 153),
    client_id: None,
    relayed: false,
};
const UNKNOWN: Client = Client {
    mac: [0x02, 0, 0, 0, 0, 0x0f],
    address: Ipv4Addr::new(10, 0, 0, 154),
    client_id: None,
    relayed: false,
};

/// The kernel's key of `client`: its client identifier, else its hardware address.
fn key_of(client: Client) -> LeaseKey {
    match client.client_id {
        Some(id) => LeaseKey::new(KEY_CLIENT_ID, 0, id),
        None => LeaseKey::new(KEY_HARDWARE, 1, &client.mac),
    }
    .expect("key")
}

/// The kernel's clock in seconds (`clock_seconds` of CLOCK_MONOTONIC, as the program reads it).
fn kernel_clock_seconds() -> i64 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer. The test aligns the kernel's clock offset with its fixed NOW;
    // no timing is measured.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut time) };
    let ns = (time.tv_sec as u64) * 1_000_000_000 + time.tv_nsec as u64;
    server_common::fastpath::clock_seconds(ns) as i64
}

/// The DHCP message of a request from `client`.
fn message(client: Client, kind: MessageType, xid: u32, renewing: bool) -> Message {
    let mut message = ClientMessage::new(kind, client.mac).xid(xid).secs(3);
    if client.relayed {
        message = message.relayed_by(RELAY);
    }
    if renewing {
        message = message.ciaddr(client.address);
    }
    if let Some(id) = client.client_id {
        message = message.client_id(id);
    }
    message
        .hostname("client")
        .requesting(&[
            OptionCode::SubnetMask,
            OptionCode::Router,
            OptionCode::DomainNameServer,
            OptionCode::DomainName,
            OptionCode::Renewal,
            OptionCode::Rebinding,
        ])
        .build()
}

#[expect(
    clippy::too_many_arguments,
    reason = "one argument per header field a row varies"
)]
/// Ethernet (with `vlans` 802.1Q tags) + IPv4 (with `ip_options` bytes of options) + UDP.
fn frame(
    destination_mac: [u8; 6],
    source_mac: [u8; 6],
    vlans: &[u16],
    ip_source: Ipv4Addr,
    ip_destination: Ipv4Addr,
    ports: (u16, u16),
    ip_options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    Frame::new(source_mac, destination_mac)
        .vlans(vlans)
        .addresses(ip_source, ip_destination)
        .ports(ports.0, ports.1)
        .ip_options(ip_options)
        .build(payload)
}

/// The frame a client sends for a request: RENEWING (unicast to the server), REBINDING
/// (broadcast), or through the relay.
fn request_frame(client: Client, message: &Message, broadcast: bool, vlans: &[u16]) -> Vec<u8> {
    let payload = encode(message);
    if client.relayed {
        return frame(
            SERVER_MAC,
            RELAY_MAC,
            vlans,
            RELAY,
            INTERFACE,
            (67, 67),
            &[],
            &payload,
        );
    }
    let (mac, ip) = if broadcast {
        ([0xff; 6], Ipv4Addr::BROADCAST)
    } else {
        (SERVER_MAC, INTERFACE)
    };
    frame(
        mac,
        client.mac,
        vlans,
        message.ciaddr(),
        ip,
        (68, 67),
        &[],
        &payload,
    )
}

struct Fixture {
    config: FastPathConfig,
    ebpf: aya::Ebpf,
    events: aya::maps::RingBuf<aya::maps::MapData>,
    fast_path: FastPath<AyaMaps>,
    engine: Engine,
    store: LeaseStore,
    starvation: StarvationState,
    now: u32,
}

impl Fixture {
    fn new() -> Self {
        Self::with(CONFIG, false)
    }

    /// The fixture over `text`; with `failover`, its leases are failover leases published as
    /// the daemon publishes them (relationship slot 0, which answers renewals, and the kernel
    /// horizon bounded by tsfp + MCLT), the partner having acked up to now + [`TSFP_AHEAD`].
    fn with(text: &str, failover: bool) -> Self {
        let config = Arc::new(config::parse_str(text, "golden.conf").expect("config"));
        assert!(sync::config_allows_fast_path(&config));
        let engine = Engine::new(config.clone());
        let mut store = LeaseStore::new(&config);
        let mut starvation = StarvationState::default();
        let mut ebpf = xdhcpd::xdp::load().expect("load the XDP object");
        // Unix time in the kernel = its clock's seconds + offset; pin it to a fixed NOW-like value so that
        // the expected lease times are known. Only the offset comes from the clock.
        let now: u32 = 1_795_836_305;
        let offset = i64::from(now) - kernel_clock_seconds();
        let mut fast_path = FastPath::new(AyaMaps::take(&mut ebpf).expect("maps"));
        let events = aya::maps::RingBuf::try_from(ebpf.take_map("EVENTS").expect("ring buffer"))
            .expect("ring buffer map");
        let fast_path_config = FastPathConfig {
            flags: CONFIG_RENEW | CONFIG_FAILOVER_NORMAL,
            server_port: 67,
            lb_max_secs: 10,
            time_offset: offset,
            hba: loadbalance::split_to_hba(128),
        };
        fast_path
            .maps_mut()
            .set_config(&fast_path_config)
            .expect("config map");
        // test_run delivers frames on the loopback device (ifindex 1).
        fast_path
            .maps_mut()
            .set_interface_mac(1, SERVER_MAC)
            .expect("interface map");
        let mut fixture_engine_store = |client: Client, ends: u32, horizon: u32| {
            // Bound one lease time before the template's renewal, so that the engine answers
            // that renewal with a fresh binding (a younger lease it would reuse as it stands,
            // dhcp-cache-threshold, and such an ACK is never a template).
            let mut lease = Lease::free(client.address);
            lease.binding_state = BindingState::Active;
            lease.starts = now - 1800 - LEASE_TIME;
            lease.cltt = lease.starts;
            lease.ends = ends;
            lease.hardware = Hardware::new(1, &client.mac);
            lease.set_uid(client.client_id);
            if failover {
                lease.tsfp = now + TSFP_AHEAD;
            }
            store.upsert(lease);
            // The template: the engine's own ACK to an earlier renewal (another xid).
            let request = message(client, MessageType::Request, 0x1111_0000, true);
            let payload = encode(&request);
            // No failover driver runs: the relationship counts as NORMAL (the empty snapshot).
            let decision = engine.handle(
                now - 1800,
                &Snapshot::default(),
                &Request {
                    message: &request,
                    source: SocketAddrV4::new(client.address, 68),
                    interface_address: Some(INTERFACE),
                    raw: None,
                },
                &mut store,
                &mut starvation,
            );
            let reply = decision.reply.expect("engine answers the renewal");
            let prepared = sync::prepare(&payload, &request, &reply).expect("eligible");
            if failover {
                let acked = store.get(client.address).expect("lease");
                assert!(
                    fast_path::full_grant(acked, prepared.lease_time),
                    "the template is a full grant"
                );
                let kernel =
                    bounds::kernel_horizon(horizon, prepared.lease_time, Some(acked.tsfp), MCLT);
                fast_path
                    .publish_in(&prepared, ends, kernel, 1)
                    .expect("publish");
            } else {
                fast_path
                    .publish(&prepared, ends, horizon)
                    .expect("publish");
            }
        };
        let horizon = now + 3 * LEASE_TIME;
        fixture_engine_store(DIRECT, now + 1800, horizon);
        fixture_engine_store(WITH_ID, now + 1800, horizon);
        fixture_engine_store(RELAYED, now + 1800, horizon);
        fixture_engine_store(EXPIRED, now - 10, horizon);
        fixture_engine_store(NO_HORIZON, now + 1800, now + 1000);
        if failover {
            fast_path
                .maps_mut()
                .set_relationship(0, true)
                .expect("relationships map");
        }
        Self {
            config: fast_path_config,
            ebpf,
            events,
            fast_path,
            engine,
            store,
            starvation,
            now,
        }
    }

    /// Pins the kernel's clock to `now` again (the test has been running for a while): rows
    /// that sit a few seconds from a bound then hold.
    fn pin_clock(&mut self) {
        self.config.time_offset = i64::from(self.now) - kernel_clock_seconds();
        let config = self.config;
        self.fast_path
            .maps_mut()
            .set_config(&config)
            .expect("config map");
    }

    /// Makes `client`'s lease `age` seconds old on both sides, as if bound then for
    /// [`LEASE_TIME`]: the kernel's end, the store's start and end (without a horizon).
    fn age(&mut self, client: Client, age: u32) {
        let key = key_of(client);
        let mut value = self.fast_path.maps().lease(&key).expect("published");
        value.ends = self.now - age + LEASE_TIME;
        self.fast_path
            .maps_mut()
            .put_lease(&key, &value)
            .expect("lease map");
        let mut lease = self.store.get(client.address).cloned().expect("stored");
        lease.starts = self.now - age;
        lease.cltt = lease.starts;
        lease.ends = lease.starts + LEASE_TIME;
        lease.flags &= !flags::HORIZON;
        self.store.upsert(lease);
    }

    /// The kernel renewals on the ring buffer since the last call.
    fn drain_events(&mut self) -> Vec<RenewalEvent> {
        let mut events = Vec::new();
        while let Some(item) = self.events.next() {
            assert_eq!(item.len(), std::mem::size_of::<RenewalEvent>());
            // SAFETY: the kernel wrote a RenewalEvent (plain #[repr(C)] data) of this size.
            events.push(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<RenewalEvent>()) });
        }
        events
    }

    /// The engine's decision on `message` now.
    fn engine_decision(
        &mut self,
        message: &Message,
        source: SocketAddrV4,
    ) -> xdhcpd::engine::Decision {
        self.engine.handle(
            self.now,
            &Snapshot::default(),
            &Request {
                message,
                source,
                interface_address: Some(INTERFACE),
                raw: None,
            },
            &mut self.store,
            &mut self.starvation,
        )
    }

    /// Runs one frame; returns the action and the output frame.
    fn run(&mut self, input: &[u8]) -> (u32, Vec<u8>) {
        let program = xdhcpd::xdp::program(&mut self.ebpf).expect("program");
        let mut output = vec![0u8; 4096];
        let mut options = TestRunOptions::new();
        options.data_in = Some(input);
        options.data_out = Some(&mut output);
        let result = program.test_run(options).expect("test_run");
        output.truncate(result.data_size_out as usize);
        (result.return_value, output)
    }

    fn stat(&self, stat: XdpStat) -> u64 {
        let map = self.ebpf.map("STATS").expect("stats map");
        let array = PerCpuArray::<_, u64>::try_from(map).expect("per-cpu array");
        array
            .get(&(stat as u32), 0)
            .map(|values| values.iter().sum())
            .unwrap_or(0)
    }

    /// The engine's reply payload to `message` now.
    fn engine_reply(&mut self, message: &Message, source: SocketAddrV4) -> Vec<u8> {
        self.engine_decision(message, source)
            .reply
            .expect("engine reply")
            .encode()
            .expect("encode reply")
    }
}

/// Checks a renewal answered in the kernel: Ethernet, IPv4, UDP headers and checksums per
/// RFC 2131 §4.1, and the DHCP payload against the engine's.
fn check_reply(
    fixture: &mut Fixture,
    description: &str,
    client: Client,
    message: &Message,
    output: &[u8],
    l3: usize,
    expected_mac_source: [u8; 6],
) {
    let expected_destination_mac = if client.relayed {
        RELAY_MAC
    } else {
        client.mac
    };
    assert_eq!(
        output[0..6],
        expected_destination_mac,
        "{description}: eth dst"
    );
    assert_eq!(output[6..12], expected_mac_source, "{description}: eth src");
    let ip = &output[l3..];
    assert_eq!(ip[0], 0x45, "{description}: version/ihl");
    assert_eq!(
        internet_checksum(&ip[..20]),
        0,
        "{description}: IP checksum"
    );
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    assert_eq!(total, output.len() - l3, "{description}: IP total length");
    assert_eq!(ip[12..16], INTERFACE.octets(), "{description}: IP source");
    let (destination, port) = if client.relayed {
        (RELAY, 67)
    } else {
        (client.address, 68)
    };
    assert_eq!(ip[16..20], destination.octets(), "{description}: IP dst");
    let udp = &ip[20..];
    assert_eq!(u16::from_be_bytes([udp[0], udp[1]]), 67, "{description}");
    assert_eq!(
        u16::from_be_bytes([udp[2], udp[3]]),
        port,
        "{description}: UDP dst port"
    );
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    assert_eq!(udp_len, total - 20, "{description}: UDP length");
    // UDP checksum over the pseudo header and the datagram must verify (RFC 768).
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&ip[12..20]);
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
    assert_ne!(
        [udp[6], udp[7]],
        [0, 0],
        "{description}: UDP checksum present"
    );
    pseudo.extend_from_slice(&udp[..udp_len]);
    assert_eq!(internet_checksum(&pseudo), 0, "{description}: UDP checksum");
    let kernel = &udp[8..udp_len];
    let source = if client.relayed {
        SocketAddrV4::new(RELAY, 67)
    } else {
        SocketAddrV4::new(client.address, 68)
    };
    let engine = fixture.engine_reply(message, source);
    assert_eq!(
        kernel,
        engine.as_slice(),
        "{description}: kernel and engine replies differ"
    );
}

#[test]
fn golden_table() {
    if !common::privileged("xdp_golden::golden_table") {
        return;
    }
    let mut fixture = Fixture::new();
    let mut expected_renewed = 0;

    // --- Renewal hits: RENEWING, REBINDING, client id, relayed, one and two VLAN tags.
    let hits: [(&str, Client, bool, &[u16]); 6] = [
        ("renew hit", DIRECT, false, &[]),
        ("rebinding hit (broadcast)", DIRECT, true, &[]),
        ("renew hit with client id", WITH_ID, false, &[]),
        ("relayed renew", RELAYED, false, &[]),
        ("renew in one VLAN", DIRECT, false, &[100]),
        ("renew in two VLANs", DIRECT, false, &[100, 200]),
    ];
    for (index, (description, client, broadcast, vlans)) in hits.into_iter().enumerate() {
        // Half its time gone: past the default dhcp-cache-threshold (25 %), so the engine
        // binds it afresh and the template is its reply.
        fixture.age(client, 1800);
        let message = message(
            client,
            MessageType::Request,
            0x2222_0000 + index as u32,
            true,
        );
        let input = request_frame(client, &message, broadcast, vlans);
        let (action, output) = fixture.run(&input);
        assert_eq!(action, XDP_TX, "{description}");
        expected_renewed += 1;
        let l3 = 14 + 4 * vlans.len();
        assert_eq!(
            output[12..l3],
            input[12..l3],
            "{description}: VLAN tags kept"
        );
        check_reply(
            &mut fixture,
            description,
            client,
            &message,
            &output,
            l3,
            // Unicast requests came to our MAC, broadcast ones get the interface's: the same here.
            SERVER_MAC,
        );
    }
    assert_eq!(fixture.stat(XdpStat::Renewed), expected_renewed);
    // Each renewal is on the ring buffer for userspace: client key, address, new start and end.
    let events = fixture.drain_events();
    assert_eq!(events.len() as u64, expected_renewed);
    let first = events[0];
    assert_eq!(
        first.key,
        LeaseKey::new(server_common::fastpath::KEY_HARDWARE, 1, &DIRECT.mac).expect("key")
    );
    assert_eq!(first.address.to_ne_bytes(), DIRECT.address.octets());
    assert_eq!(first.ends - first.starts, LEASE_TIME);
    assert_eq!(first.xid.to_ne_bytes(), 0x2222_0000u32.to_be_bytes());
    let with_id = events[2];
    assert_eq!(
        with_id.key,
        LeaseKey::new(
            server_common::fastpath::KEY_CLIENT_ID,
            0,
            WITH_ID.client_id.expect("id")
        )
        .expect("key")
    );

    // --- Renewal-shaped requests that must go up, unchanged, with the slot that says why.
    let passes: Vec<(&str, Vec<u8>, XdpStat)> = vec![
        (
            "unknown client",
            request_frame(
                UNKNOWN,
                &message(UNKNOWN, MessageType::Request, 7, true),
                false,
                &[],
            ),
            XdpStat::PassedNoLease,
        ),
        (
            "expired lease",
            request_frame(
                EXPIRED,
                &message(EXPIRED, MessageType::Request, 8, true),
                false,
                &[],
            ),
            XdpStat::PassedNoLease,
        ),
        (
            "wrong ciaddr",
            {
                let mut message = message(DIRECT, MessageType::Request, 9, true);
                message.set_ciaddr(Ipv4Addr::new(10, 0, 0, 160));
                request_frame(DIRECT, &message, false, &[])
            },
            XdpStat::PassedNoLease,
        ),
        (
            "horizon exceeded",
            request_frame(
                NO_HORIZON,
                &message(NO_HORIZON, MessageType::Request, 10, true),
                false,
                &[],
            ),
            XdpStat::PassedNoHorizon,
        ),
        (
            "other options (shape differs from the template)",
            {
                let mut message = message(DIRECT, MessageType::Request, 11, true);
                message.opts_mut().insert(DhcpOption::AddressLeaseTime(600));
                request_frame(DIRECT, &message, false, &[])
            },
            XdpStat::PassedShape,
        ),
        (
            "renewal unicast to another server",
            {
                let message = message(DIRECT, MessageType::Request, 21, true);
                frame(
                    SERVER_MAC,
                    DIRECT.mac,
                    &[],
                    DIRECT.address,
                    Ipv4Addr::new(10, 0, 0, 2),
                    (68, 67),
                    &[],
                    &encode(&message),
                )
            },
            XdpStat::PassedShape,
        ),
        (
            "broadcast flag",
            {
                let mut message = message(DIRECT, MessageType::Request, 12, true);
                message.set_flags(Flags::default().set_broadcast());
                request_frame(DIRECT, &message, false, &[])
            },
            XdpStat::PassedUnsupported,
        ),
        (
            "IP options",
            {
                let message = message(DIRECT, MessageType::Request, 13, true);
                frame(
                    SERVER_MAC,
                    DIRECT.mac,
                    &[],
                    DIRECT.address,
                    INTERFACE,
                    (68, 67),
                    &[1, 1, 1, 0],
                    &encode(&message),
                )
            },
            XdpStat::PassedUnsupported,
        ),
        (
            "non-DHCP UDP",
            frame(
                SERVER_MAC,
                DIRECT.mac,
                &[],
                DIRECT.address,
                INTERFACE,
                (5353, 53),
                &[],
                &[0; 40],
            ),
            XdpStat::PassedNotDhcp,
        ),
        (
            "DHCPINFORM",
            request_frame(
                DIRECT,
                &message(DIRECT, MessageType::Inform, 14, true),
                false,
                &[],
            ),
            XdpStat::Passed,
        ),
    ];
    for (description, input, stat) in passes {
        let before = fixture.stat(stat);
        let (action, output) = fixture.run(&input);
        assert_eq!(action, XDP_PASS, "{description}");
        assert_eq!(output, input, "{description}: frame unchanged");
        assert_eq!(fixture.stat(stat), before + 1, "{description}: {stat:?}");
    }

    // --- Load balancing (split 128: this server answers buckets 0..128).
    let discover = |client_id: Option<&'static [u8]>, mac: [u8; 6], secs: u16| {
        let mut message = message(
            Client {
                mac,
                address: Ipv4Addr::UNSPECIFIED,
                client_id,
                relayed: false,
            },
            MessageType::Discover,
            15,
            false,
        );
        message.set_secs(secs);
        frame(
            [0xff; 6],
            mac,
            &[],
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            (68, 67),
            &[],
            &encode(&message),
        )
    };
    // docs/spec/failover.md §11.2 vectors: 00:11:22:33:44:55 → bucket 135 (partner's);
    // 6a:d9:3e:ff:ef:c7 → 118 (ours); client id 01:00:11:22:33:44:55 → 223 (partner's).
    let partner_mac = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
    let own_mac = [0x6a, 0xd9, 0x3e, 0xff, 0xef, 0xc7];
    let lb_rows: Vec<(&str, Vec<u8>, u32, XdpStat)> = vec![
        (
            "partner bucket DISCOVER dropped",
            discover(None, partner_mac, 0),
            XDP_DROP,
            XdpStat::DroppedForPartner,
        ),
        (
            "partner bucket by client id dropped",
            discover(
                Some(&[0x01, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55]),
                own_mac,
                0,
            ),
            XDP_DROP,
            XdpStat::DroppedForPartner,
        ),
        (
            "partner bucket DISCOVER with IP options dropped (variable IHL parsed)",
            {
                let mut message = message(
                    Client {
                        mac: partner_mac,
                        address: Ipv4Addr::UNSPECIFIED,
                        client_id: None,
                        relayed: false,
                    },
                    MessageType::Discover,
                    19,
                    false,
                );
                message.set_secs(0);
                frame(
                    [0xff; 6],
                    partner_mac,
                    &[],
                    Ipv4Addr::UNSPECIFIED,
                    Ipv4Addr::BROADCAST,
                    (68, 67),
                    // Router alert (RFC 2113): 4 bytes.
                    &[0x94, 0x04, 0x00, 0x00],
                    &encode(&message),
                )
            },
            XDP_DROP,
            XdpStat::DroppedForPartner,
        ),
        (
            "partner bucket DISCOVER in a VLAN dropped",
            {
                let mut message = message(
                    Client {
                        mac: partner_mac,
                        address: Ipv4Addr::UNSPECIFIED,
                        client_id: None,
                        relayed: false,
                    },
                    MessageType::Discover,
                    20,
                    false,
                );
                message.set_secs(0);
                frame(
                    [0xff; 6],
                    partner_mac,
                    &[42],
                    Ipv4Addr::UNSPECIFIED,
                    Ipv4Addr::BROADCAST,
                    (68, 67),
                    &[],
                    &encode(&message),
                )
            },
            XDP_DROP,
            XdpStat::DroppedForPartner,
        ),
        (
            "own bucket passed",
            discover(None, own_mac, 0),
            XDP_PASS,
            XdpStat::Passed,
        ),
        (
            "secs >= max passed",
            discover(None, partner_mac, 10),
            XDP_PASS,
            XdpStat::Passed,
        ),
        (
            "partner bucket REQUEST never dropped",
            request_frame(
                DIRECT,
                &{
                    let mut message = message(
                        Client {
                            mac: partner_mac,
                            ..UNKNOWN
                        },
                        MessageType::Request,
                        16,
                        false,
                    );
                    message
                        .opts_mut()
                        .insert(DhcpOption::RequestedIpAddress(UNKNOWN.address));
                    message
                },
                true,
                &[],
            ),
            XDP_PASS,
            XdpStat::Passed,
        ),
    ];
    for (description, input, expected, stat) in lb_rows {
        let before = fixture.stat(stat);
        let (action, _) = fixture.run(&input);
        assert_eq!(action, expected, "{description}");
        assert_eq!(fixture.stat(stat), before + 1, "{description}: {stat:?}");
    }

    // --- Truncated frames of every length from 14 bytes to the full request: never answered,
    // never dropped, never changed.
    let full = request_frame(
        DIRECT,
        &message(DIRECT, MessageType::Request, 17, true),
        false,
        &[],
    );
    for len in 14..full.len() {
        let input = &full[..len];
        let (action, output) = fixture.run(input);
        assert_eq!(action, XDP_PASS, "truncated to {len}");
        assert_eq!(output, input, "truncated to {len}: unchanged");
    }
    // A truncated relayed VLAN frame, same rule.
    let vlan_full = request_frame(
        RELAYED,
        &message(RELAYED, MessageType::Request, 18, true),
        false,
        &[7, 8],
    );
    for len in 14..vlan_full.len() {
        let (action, _) = fixture.run(&vlan_full[..len]);
        assert_eq!(action, XDP_PASS, "VLAN frame truncated to {len}");
    }

    // --- dhcp-cache-threshold (ISC `reuse_lease`, default 25 %: 900 s of 3600): a renewal of
    // a younger lease is passed up, and the engine answers it with the time left, which the
    // template does not say; past it, the kernel answers as the engine does.
    fixture.pin_clock();
    let direct_source = SocketAddrV4::new(DIRECT.address, 68);
    for (description, age, xid) in [
        (
            "renewal inside the cache threshold (age 600 of 3600)",
            600,
            0x4444_0001,
        ),
        (
            "renewal just inside the cache threshold (age 895)",
            895,
            0x4444_0002,
        ),
    ] {
        fixture.age(DIRECT, age);
        let message = message(DIRECT, MessageType::Request, xid, true);
        let input = request_frame(DIRECT, &message, false, &[]);
        let before = fixture.stat(XdpStat::PassedCacheThreshold);
        let (action, output) = fixture.run(&input);
        assert_eq!(action, XDP_PASS, "{description}");
        assert_eq!(output, input, "{description}: unchanged");
        assert_eq!(fixture.stat(XdpStat::PassedCacheThreshold), before + 1);
        let stored = fixture.store.get(DIRECT.address).cloned().expect("stored");
        let decision = fixture.engine_decision(&message, direct_source);
        assert_eq!(
            decision
                .reply
                .as_ref()
                .expect("ack")
                .decoded()
                .opts()
                .get(OptionCode::AddressLeaseTime),
            Some(&DhcpOption::AddressLeaseTime(LEASE_TIME - age)),
            "{description}: the engine answers with the time left"
        );
        assert_eq!(
            decision.commit,
            vec![stored],
            "{description}: lease as it stands"
        );
    }
    for (description, client, age, xid) in [
        (
            "renewal just past the cache threshold (age 905)",
            DIRECT,
            905,
            0x4444_0003,
        ),
        (
            "renewal at age 0 where dhcp-cache-threshold is 0",
            RELAYED,
            0,
            0x4444_0004,
        ),
    ] {
        fixture.age(client, age);
        let message = message(client, MessageType::Request, xid, true);
        let input = request_frame(client, &message, false, &[]);
        let (action, output) = fixture.run(&input);
        assert_eq!(action, XDP_TX, "{description}");
        check_reply(
            &mut fixture,
            description,
            client,
            &message,
            &output,
            14,
            SERVER_MAC,
        );
    }
    // A retransmission right after a kernel renewal, once the daemon has recorded it
    // (`fast_path::kernel_renewal`, its end at the horizon): passed up, and the engine reuses
    // the lease by the end the kernel told the client.
    fixture.drain_events();
    fixture.age(DIRECT, 1800);
    let retransmitted = message(DIRECT, MessageType::Request, 0x4444_0005, true);
    let input = request_frame(DIRECT, &retransmitted, false, &[]);
    let (action, _) = fixture.run(&input);
    assert_eq!(action, XDP_TX, "renewal before the retransmission");
    let events = fixture.drain_events();
    assert_eq!(events.len(), 1);
    let stored = fixture.store.get(DIRECT.address).cloned().expect("stored");
    let renewed = fast_path::kernel_renewal(&stored, events[0].starts, events[0].ends, None);
    fixture.store.upsert(renewed.clone());
    let before = fixture.stat(XdpStat::PassedCacheThreshold);
    let (action, output) = fixture.run(&input);
    assert_eq!(action, XDP_PASS, "retransmission");
    assert_eq!(output, input, "retransmission: unchanged");
    assert_eq!(fixture.stat(XdpStat::PassedCacheThreshold), before + 1);
    let decision = fixture.engine_decision(&retransmitted, direct_source);
    assert_eq!(
        decision
            .reply
            .as_ref()
            .expect("ack")
            .decoded()
            .opts()
            .get(OptionCode::AddressLeaseTime),
        Some(&DhcpOption::AddressLeaseTime(events[0].ends - fixture.now)),
        "retransmission: the time left to the end the kernel told"
    );
    assert_eq!(
        decision.commit,
        vec![renewed],
        "retransmission: lease as it stands"
    );

    // The lease table records kernel renewals: DIRECT's end moved to now + lease time.
    let key = LeaseKey::new(server_common::fastpath::KEY_HARDWARE, 1, &DIRECT.mac).expect("key");
    let lease = fixture
        .fast_path
        .maps()
        .lease(&key)
        .expect("lease in the map");
    assert!(
        (fixture.now + LEASE_TIME..fixture.now + LEASE_TIME + 5).contains(&lease.ends),
        "kernel-side end {} not now + lease time",
        lease.ends
    );

    // --- A failover lease (relationship slot 0): passed up while that relationship's state
    // does not answer renewals (the slot's initial 0, docs/spec/failover.md §6.1), answered once userspace
    // says it does, passed again when it stops.
    let mut failover_lease = lease;
    failover_lease.relationship = 1;
    // Past the cache threshold: only the relationship decides.
    failover_lease.ends = fixture.now + 1800;
    fixture
        .fast_path
        .maps_mut()
        .put_lease(&key, &failover_lease)
        .expect("lease map");
    let renew = |xid| {
        request_frame(
            DIRECT,
            &message(DIRECT, MessageType::Request, xid, true),
            false,
            &[],
        )
    };
    for (description, serves, xid, expected, stat) in [
        (
            "failover relationship not serving",
            None,
            30,
            XDP_PASS,
            XdpStat::PassedNoHorizon,
        ),
        (
            "failover relationship serving",
            Some(true),
            31,
            XDP_TX,
            XdpStat::Renewed,
        ),
        (
            "failover relationship stopped serving",
            Some(false),
            32,
            XDP_PASS,
            XdpStat::PassedNoHorizon,
        ),
    ] {
        if let Some(serves) = serves {
            fixture
                .fast_path
                .maps_mut()
                .set_relationship(0, serves)
                .expect("relationships map");
        }
        let input = renew(xid);
        let before = fixture.stat(stat);
        let (action, output) = fixture.run(&input);
        assert_eq!(action, expected, "{description}");
        assert_eq!(fixture.stat(stat), before + 1, "{description}: {stat:?}");
        if expected == XDP_PASS {
            assert_eq!(output, input, "{description}: unchanged");
        }
    }
}

/// Failover pools (issue 3, docs/spec/failover.md §8.1): within the kernel horizon min(durable, tsfp +
/// MCLT) the kernel's reply is the engine's, byte for byte, at the same time; where tsfp + MCLT
/// is short of now + lease time, the kernel passes the renewal up and the engine indeed
/// shortens the grant (so a kernel reply would have differed).
#[test]
fn failover_renewals_agree_with_the_engine() {
    if !common::privileged("xdp_golden::failover_renewals_agree_with_the_engine") {
        return;
    }
    let mut fixture = Fixture::with(FAILOVER_CONFIG, true);
    for (index, (description, client, broadcast)) in [
        ("failover renew hit", DIRECT, false),
        ("failover rebinding hit", DIRECT, true),
        ("failover renew hit with client id", WITH_ID, false),
        ("failover relayed renew", RELAYED, false),
    ]
    .into_iter()
    .enumerate()
    {
        fixture.age(client, 1800);
        let message = message(
            client,
            MessageType::Request,
            0x3333_0000 + index as u32,
            true,
        );
        let input = request_frame(client, &message, broadcast, &[]);
        let (action, output) = fixture.run(&input);
        assert_eq!(action, XDP_TX, "{description}");
        check_reply(
            &mut fixture,
            description,
            client,
            &message,
            &output,
            14,
            SERVER_MAC,
        );
    }

    // The partner acked less: tsfp + MCLT = now + 3300 < now + 3600. Published as the daemon
    // would, the kernel passes the renewal up; the engine grants 3300 s, not the template's 3600.
    let tsfp = fixture.now + 3000;
    fixture.age(DIRECT, 1800);
    let key = LeaseKey::new(server_common::fastpath::KEY_HARDWARE, 1, &DIRECT.mac).expect("key");
    let mut value = fixture.fast_path.maps().lease(&key).expect("published");
    value.horizon = bounds::kernel_horizon(value.horizon, LEASE_TIME, Some(tsfp), MCLT);
    assert_eq!(value.horizon, tsfp + MCLT);
    fixture
        .fast_path
        .maps_mut()
        .put_lease(&key, &value)
        .expect("lease map");
    let mut lease = fixture.store.get(DIRECT.address).cloned().expect("lease");
    lease.tsfp = tsfp;
    fixture.store.upsert(lease);
    let message = message(DIRECT, MessageType::Request, 0x3333_0100, true);
    let input = request_frame(DIRECT, &message, false, &[]);
    let before = fixture.stat(XdpStat::PassedNoHorizon);
    let (action, output) = fixture.run(&input);
    assert_eq!(action, XDP_PASS, "MCLT bound");
    assert_eq!(output, input, "MCLT bound: unchanged");
    assert_eq!(fixture.stat(XdpStat::PassedNoHorizon), before + 1);
    let reply = fixture.engine_reply(&message, SocketAddrV4::new(DIRECT.address, 68));
    let reply = Message::decode(&mut dhcproto::Decoder::new(&reply)).expect("decode");
    assert_eq!(
        reply.opts().get(OptionCode::AddressLeaseTime),
        Some(&DhcpOption::AddressLeaseTime(tsfp + MCLT - fixture.now)),
        "the engine shortens the grant where the kernel passes"
    );
}

/// Issue 12: a configuration with executable statements keeps every renewal in userspace. An
/// `if` condition, an option expression or a `filename = …` may read what the kernel's
/// template does not cover (the header, `known`, `leased-address`), and `log` writes a line
/// per reply; the rule is per configuration (`config_allows_fast_path`, DESIGN.md). Runs
/// without privileges: it is the decision, not the program.
#[test]
fn fast_path_off_for_executable_statements() {
    let subnet = "subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.20; BODY }";
    let allows = |body: &str| {
        let text = subnet.replace("BODY", body);
        let config = config::parse_str(&text, "golden.conf").expect("config");
        sync::config_allows_fast_path(&config)
    };
    assert!(allows(
        "option domain-name \"plain.example\"; filename \"pxe.0\";"
    ));
    for body in [
        "if exists user-class { filename \"ipxe.efi\"; }",
        "if option vendor-class-identifier ~~ \"^msft\" { } else { }",
        "option host-name = concat(\"h-\", binary-to-ascii(10, 8, \"-\", leased-address));",
        "default domain-name \"d.example\";",
        "append domain-name-servers 10.0.0.9;",
        "filename = concat(\"boot/\", option user-class);",
        "log (info, \"renewed\");",
        "set plan = \"gold\";",
        "on commit { execute (\"/bin/true\"); }",
        "ddns-hostname = concat(\"h-\", binary-to-ascii(10, 8, \"-\", leased-address));",
        // The lease time follows the pool's use; the DHCPACK reserves the lease.
        "adaptive-lease-time-threshold 80;",
        "infinite-is-reserved true;",
        // The name is looked up again while the lease runs; a missing one logs a line.
        "get-lease-hostnames true;",
        // Option 82 comes from the configuration merged with the relay's, and the lease's
        // stashed sub-options change with it.
        "option agent.circuit-id \"port-1\";",
    ] {
        assert!(!allows(body), "{body}: renewals must stay in userspace");
    }
    // `local-address` (global, the only place ISC reads it): a renewal's DHCPACK leaves from
    // that address, the kernel's from the server identifier.
    let config = config::parse_str(
        &format!("local-address 10.0.0.1;\n{}", subnet.replace("BODY", "")),
        "golden.conf",
    )
    .expect("config");
    assert!(!sync::config_allows_fast_path(&config));
    assert!(
        allows("local-address 10.0.0.1;"),
        "ISC ignores it in a subnet"
    );
    // `limited-broadcast-address` (global): broadcast replies go there, the kernel's do not.
    let config = config::parse_str(
        &format!(
            "limited-broadcast-address 10.0.0.255;\n{}",
            subnet.replace("BODY", "")
        ),
        "golden.conf",
    )
    .expect("config");
    assert!(!sync::config_allows_fast_path(&config));
    // The lease's own address as router: a value per lease, which a pool's reply template
    // cannot hold.
    assert!(!allows("use-lease-addr-for-default-route true;"));
    assert!(allows("use-lease-addr-for-default-route false;"));
    // Values that change nothing in ISC leave the fast path on.
    for body in [
        "adaptive-lease-time-threshold 0;",
        "adaptive-lease-time-threshold 100;",
        "infinite-is-reserved false;",
        "get-lease-hostnames false;",
    ] {
        assert!(allows(body), "{body}");
    }
    // The kernel answers clients on the server's port + 1 only (`remote-port`, or a
    // `local-port` that moves the server's port but not the clients', as in ISC).
    for (text, cli, allowed) in [
        ("", None, true),
        ("", Some(1067), true),
        ("remote-port 1068;", None, false),
        ("local-port 1067;", None, false),
        ("local-port 1067;", Some(1067), true),
    ] {
        let config = config::parse_str(text, "golden.conf").expect("config");
        let ports = xdhcpd::net::ports::Ports::of(&config, cli);
        assert_eq!(ports.client_is_next(), allowed, "{text} -p {cli:?}");
    }
    // Billing classes: a renewal may have to be billed anew, or refused (issue 12).
    let text = format!(
        "class \"m\" {{ match if exists agent.remote-id; spawn with option agent.remote-id; \
         lease limit 2; }}\n{}",
        subnet.replace("BODY", "")
    );
    let config = config::parse_str(&text, "golden.conf").expect("config");
    assert!(config.billing_classes);
    assert!(!sync::config_allows_fast_path(&config));
}
