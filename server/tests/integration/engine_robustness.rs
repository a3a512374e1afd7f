//! Bad input never panics the engine: many deterministic mutations (byte flips, truncations,
//! extensions, option soup) of real requests go through decode → `Engine::handle` against a store
//! that keeps the leases of earlier rounds, with a config that has classes, hosts and relays.
//! A cheap stand-in for the fuzzer (fuzz/fuzz_targets/dhcp_packet.rs) that runs in every CI pass.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Encodable, Encoder};
use xdhcpd::engine::starvation::StarvationState;
use xdhcpd::engine::{Engine, Request, Snapshot};
use xdhcpd::lease::store::LeaseStore;

const CONFIG: &str = r#"
authoritative;
default-lease-time 600;
max-lease-time 7200;
option domain-name "example.net";
option domain-name-servers 192.0.2.53, 192.0.2.54;
option rfc3442-classless-static-routes code 121 = array of integer 8;
class "cpe" { match if substring(option vendor-class-identifier, 0, 4) = "docs"; }
class "by-circuit" { match option agent.circuit-id; }
subclass "by-circuit" "port-1";
subnet 10.0.0.0 netmask 255.255.255.0 {
  option routers 10.0.0.1;
  range 10.0.0.100 10.0.0.140;
}
subnet 10.1.0.0 netmask 255.255.255.0 {
  option routers 10.1.0.1;
  pool { deny members of "cpe"; range 10.1.0.10 10.1.0.20; }
  pool { allow members of "cpe"; range dynamic-bootp 10.1.0.30 10.1.0.40; }
}
host fixed { hardware ethernet 02:00:00:00:00:07; fixed-address 10.0.0.7; }
"#;

/// xorshift64*: deterministic, no dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

fn seed_requests() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (kind, ciaddr, giaddr) in [
        (
            MessageType::Discover,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
        ),
        (
            MessageType::Request,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::new(10, 1, 0, 1),
        ),
        (
            MessageType::Request,
            Ipv4Addr::new(10, 0, 0, 101),
            Ipv4Addr::UNSPECIFIED,
        ),
        (
            MessageType::Release,
            Ipv4Addr::new(10, 0, 0, 101),
            Ipv4Addr::UNSPECIFIED,
        ),
        (
            MessageType::Decline,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
        ),
        (
            MessageType::Inform,
            Ipv4Addr::new(10, 0, 0, 50),
            Ipv4Addr::UNSPECIFIED,
        ),
    ] {
        let mut message = Message::default();
        message
            .set_opcode(Opcode::BootRequest)
            .set_xid(7)
            .set_flags(Flags::default())
            .set_ciaddr(ciaddr)
            .set_giaddr(giaddr)
            .set_chaddr(&[0x02, 0, 0, 0, 0, 0x01]);
        let options = message.opts_mut();
        options.insert(DhcpOption::MessageType(kind));
        options.insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 0, 0, 101)));
        options.insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 0, 1)));
        options.insert(DhcpOption::ClientIdentifier(vec![1, 2, 0, 0, 0, 0, 1]));
        options.insert(DhcpOption::ClassIdentifier(b"docsis3.0".to_vec()));
        options.insert(DhcpOption::ParameterRequestList(vec![
            OptionCode::SubnetMask,
            OptionCode::Router,
            OptionCode::DomainNameServer,
            OptionCode::from(121),
        ]));
        let mut bytes = Vec::new();
        message.encode(&mut Encoder::new(&mut bytes)).unwrap();
        seeds.push(bytes);
    }
    seeds
}

fn mutate(random: &mut Random, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    match random.below(5) {
        0 => {
            for _ in 0..=random.below(8) {
                let index = random.below(bytes.len());
                bytes[index] = random.next() as u8;
            }
        }
        1 => bytes.truncate(random.below(bytes.len() + 1)),
        2 => {
            // Rewrite the options area with random code/length/value soup.
            bytes.truncate(240.min(bytes.len()));
            for _ in 0..random.below(40) {
                bytes.push(random.next() as u8);
            }
        }
        3 => {
            // Lie about lengths: pick an option length byte and change it.
            let index = 240 + random.below(bytes.len().saturating_sub(240).max(1));
            if index < bytes.len() {
                bytes[index] = random.next() as u8;
            }
        }
        _ => {
            // hlen, htype, hops, op fields.
            for index in [0usize, 1, 2, 3] {
                if random.below(2) == 0 {
                    bytes[index] = random.next() as u8;
                }
            }
        }
    }
    bytes
}

#[test]
fn mutated_requests_never_panic_the_engine() {
    let config = Arc::new(xdhcpd::config::parse_str(CONFIG, "robustness.conf").unwrap());
    let engine = Engine::new(config.clone());
    let mut leases = LeaseStore::new(&config);
    let mut starvation = StarvationState::default();
    let seeds = seed_requests();
    let mut random = Random(0x5eed_1234_abcd_0042);
    let mut decoded = 0;
    let mut now = 1_795_836_305u32;
    for round in 0..30_000 {
        let seed = &seeds[round % seeds.len()];
        let bytes = if round < seeds.len() {
            seed.clone()
        } else {
            mutate(&mut random, seed)
        };
        let Ok(message) = xdhcpd::net::decode::decode_message(&bytes) else {
            continue;
        };
        decoded += 1;
        for source in [
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
            SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 1), 67),
        ] {
            let request = Request {
                message: &message,
                source,
                interface_address: Some(Ipv4Addr::new(10, 0, 0, 1)),
                raw: None,
            };
            let decision = engine.handle(
                now,
                &Snapshot::default(),
                &request,
                &mut leases,
                &mut starvation,
            );
            if let Some(reply) = decision.reply {
                // Whatever the engine decided must also encode.
                let _ = reply.encode();
            }
        }
        if round % 1000 == 0 {
            now += 301;
            let _ = leases.expire(now);
        }
    }
    assert!(decoded > 5_000, "too few mutations decoded: {decoded}");
}
