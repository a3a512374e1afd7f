//! Golden trace: `captures/dhcp.pcap` (dhclient DORA against an ISC dhcpd 4.4 failover pair on
//! 10.99.0.0/24, primary 10.99.0.1, secondary 10.99.0.2, configs `fo-primary.conf` /
//! `fo-secondary.conf`). Every DHCP packet is decoded; each DISCOVER and REQUEST runs through
//! the engine configured like the server that answered it, and the reply must match ISC's in
//! message type, yiaddr, lease time, option set and order, and destination.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder};

use super::*;
use crate::config::model::FailoverPeerConfig;
use crate::engine::Destination;
use crate::lease::record::{BindingState, Hardware, Lease};

/// One UDP datagram of the capture.
struct Datagram {
    time: u32,
    source: Ipv4Addr,
    destination: Ipv4Addr,
    payload: Vec<u8>,
}

/// The repository's `testdata/` folder (captures and samples checked in with the code).
fn testdata_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

/// A minimal pcap reader: 24-byte global header, 16-byte record headers, Ethernet II / IPv4 /
/// UDP. Little- or big-endian files; anything else is skipped.
fn read_pcap(bytes: &[u8]) -> Vec<Datagram> {
    let Some(magic) = bytes.get(..4) else {
        return Vec::new();
    };
    let little = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] => false,
        _ => return Vec::new(),
    };
    let read_u32 = |at: &[u8]| -> u32 {
        let array = [at[0], at[1], at[2], at[3]];
        if little {
            u32::from_le_bytes(array)
        } else {
            u32::from_be_bytes(array)
        }
    };
    let mut datagrams = Vec::new();
    let mut offset = 24;
    while let Some(header) = bytes.get(offset..offset + 16) {
        let time = read_u32(&header[0..4]);
        let length = read_u32(&header[8..12]) as usize;
        offset += 16;
        let Some(frame) = bytes.get(offset..offset + length) else {
            break;
        };
        offset += length;
        // Ethernet II carrying IPv4.
        if frame.len() < 14 || frame[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &frame[14..];
        if ip.len() < 20 || ip[9] != 17 {
            continue;
        }
        let header_length = usize::from(ip[0] & 0x0f) * 4;
        let Some(udp) = ip.get(header_length..) else {
            continue;
        };
        if udp.len() < 8 {
            continue;
        }
        datagrams.push(Datagram {
            time,
            source: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
            destination: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
            payload: udp[8..].to_vec(),
        });
    }
    datagrams
}

/// `fo-primary.conf` / `fo-secondary.conf`: authoritative, default 600, max 7200, one subnet,
/// one failover pool 10.99.0.100–119 with MCLT 300.
fn lab_config(primary: bool) -> Config {
    let global = Scope {
        authoritative: Some(true),
        default_lease_time: Some(600),
        max_lease_time: Some(7200),
        ..Scope::default()
    };
    Config {
        scopes: vec![global, scope(GLOBAL), scope(ScopeId(1)), scope(ScopeId(2))],
        shared_networks: vec![SharedNetwork {
            name: None,
            scope: ScopeId(1),
            subnets: vec![SubnetId(0)],
            pools: vec![PoolId(0)],
        }],
        subnets: vec![Subnet {
            network: Ipv4Addr::new(10, 99, 0, 0),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            scope: ScopeId(2),
            shared_network: SharedNetworkId(0),
        }],
        pools: vec![Pool {
            scope: ScopeId(3),
            shared_network: SharedNetworkId(0),
            subnet: Some(SubnetId(0)),
            ranges: vec![AddressRange {
                low: Ipv4Addr::new(10, 99, 0, 100),
                high: Ipv4Addr::new(10, 99, 0, 119),
                dynamic_bootp: false,
            }],
            permits: Vec::new(),
            failover_peer: Some("lab-fo".into()),
        }],
        failover_peers: vec![FailoverPeerConfig {
            name: "lab-fo".into(),
            primary,
            address: Some(Ipv4Addr::new(10, 99, 0, if primary { 1 } else { 2 })),
            port: 647,
            peer_address: Some(Ipv4Addr::new(10, 99, 0, if primary { 2 } else { 1 })),
            peer_port: 647,
            max_response_delay: 30,
            max_unacked_updates: 10,
            mclt: 300,
            hba: None,
            load_balance_max_seconds: 3,
            max_lease_misbalance: 15,
            max_lease_ownership: 10,
            min_balance: 60,
            max_balance: 3600,
            auto_partner_down: 0,
        }],
        ..Config::default()
    }
}

/// The lease state the lab servers had (docs/spec/dhcpd-conf.md §8.7 shows these records): the first
/// client's earlier free lease on the primary; BACKUP leases on the secondary, one of them with
/// the second client's hardware address.
fn lab_leases(harness: &mut Harness, primary: bool) {
    let mut add = |address: [u8; 4], state: BindingState, mac: Option<[u8; 6]>| {
        let mut lease = Lease::free(Ipv4Addr::from(address));
        lease.binding_state = state;
        lease.next_binding_state = state;
        lease.rewind_binding_state = state;
        lease.hardware = mac.and_then(|mac| Hardware::new(1, &mac));
        harness.leases.upsert(lease);
    };
    if primary {
        add(
            [10, 99, 0, 110],
            BindingState::Free,
            Some([0x6a, 0xd9, 0x3e, 0xff, 0xef, 0xc7]),
        );
    } else {
        add(
            [10, 99, 0, 109],
            BindingState::Backup,
            Some([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]),
        );
        add([10, 99, 0, 108], BindingState::Backup, None);
    }
}

fn option_codes(message: &Message) -> Vec<u8> {
    let mut codes: Vec<u8> = message
        .opts()
        .iter()
        .map(|(code, _)| u8::from(*code))
        .collect();
    codes.sort_unstable();
    codes
}

/// The option codes of an encoded reply in wire order.
fn wire_order(payload: &[u8]) -> Vec<u8> {
    let mut codes = Vec::new();
    let mut rest = payload.get(240..).unwrap_or_default();
    while let [code, tail @ ..] = rest {
        match code {
            0 => rest = tail,
            255 => break,
            _ => {
                let Some((&length, tail)) = tail.split_first() else {
                    break;
                };
                codes.push(*code);
                rest = tail.get(usize::from(length)..).unwrap_or_default();
            }
        }
    }
    codes
}

#[test]
fn isc_capture_dora_matches() {
    let path = testdata_dir().join("captures/dhcp.pcap");
    let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let datagrams = read_pcap(&bytes);
    assert_eq!(datagrams.len(), 12, "dhcp.pcap holds three DORA exchanges");
    let messages: Vec<Message> = datagrams
        .iter()
        .map(|datagram| {
            Message::decode(&mut Decoder::new(&datagram.payload)).expect("every packet decodes")
        })
        .collect();

    let mut primary = Harness::new(lab_config(true));
    lab_leases(&mut primary, true);
    let mut secondary = Harness::new(lab_config(false));
    lab_leases(&mut secondary, false);

    let mut compared = 0;
    for (index, pair) in messages.chunks(2).enumerate() {
        let [request, isc_reply] = pair else {
            panic!("packets come in request/reply pairs");
        };
        let server = datagrams[index * 2 + 1].source;
        let harness = if server == Ipv4Addr::new(10, 99, 0, 1) {
            &mut primary
        } else {
            &mut secondary
        };
        let now = datagrams[index * 2].time;
        let decision = harness.handle_on(now, request, Some(server));
        let reply = decision
            .reply
            .as_ref()
            .unwrap_or_else(|| panic!("packet {}: no reply ({:?})", index * 2, decision.outcome));
        let ours = &reply.decoded();
        assert_eq!(
            ours.opts().msg_type(),
            isc_reply.opts().msg_type(),
            "packet {}: message type",
            index * 2
        );
        assert_eq!(
            ours.yiaddr(),
            isc_reply.yiaddr(),
            "packet {}: yiaddr",
            index * 2
        );
        assert_eq!(
            ours.opts().get(OptionCode::AddressLeaseTime),
            isc_reply.opts().get(OptionCode::AddressLeaseTime),
            "packet {}: lease time",
            index * 2
        );
        assert_eq!(
            option_codes(ours),
            option_codes(isc_reply),
            "packet {}: option set",
            index * 2
        );
        assert_eq!(
            ours.opts().get(OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier(server))
        );
        // ISC unicast these replies to yiaddr (no broadcast bit, no ciaddr).
        assert_eq!(datagrams[index * 2 + 1].destination, isc_reply.yiaddr());
        assert!(
            matches!(reply.destination, Destination::Hardware { address, .. } if address == isc_reply.yiaddr())
        );
        // Same option order on the wire, and the same bytes.
        let encoded = reply.encode().expect("encodes");
        let isc_bytes = &datagrams[index * 2 + 1].payload;
        assert_eq!(
            wire_order(&encoded),
            wire_order(isc_bytes),
            "packet {}: order",
            index * 2
        );
        assert_eq!(&encoded, isc_bytes, "packet {}: bytes", index * 2);
        if request.opts().msg_type() == Some(MessageType::Request) {
            assert_eq!(decision.commit.len(), 1);
            assert_eq!(decision.commit[0].ends, now + 300);
        }
        compared += 1;
    }
    assert_eq!(compared, 6);
}
