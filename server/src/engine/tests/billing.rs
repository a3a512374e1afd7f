//! Spawning classes and per-class lease limits (dhcpd.conf(5) "SPAWNING CLASSES",
//! "PER-CLASS LIMITS ON DYNAMIC LEASES"; ISC `check_collection`, `ack_lease`, `bill_class`).
//! The difftest corpus `testdata/difftest/3*-billing-*.conf` compares the same with ISC.

use std::net::Ipv4Addr;

use dhcproto::v4::{relay, DhcpOption, Message, MessageType};

use super::*;
use crate::engine::{IgnoreReason, Outcome};
use crate::lease::billing::{billing_of, Billing};

const RELAY: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const MAC_C: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];
const MAC_D: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0d];

/// The DOCSIS form: every cable modem's remote-id spawns a subclass allowed two leases.
fn modems(extra: &str) -> Config {
    let text = format!(
        "authoritative;\ndefault-lease-time 600;\nmax-lease-time 7200;\n\
         class \"modems\" {{ match if exists agent.remote-id; spawn with option agent.remote-id; lease limit 2; }}\n\
         {extra}\n\
         subnet 10.0.0.0 netmask 255.255.255.0 {{ range 10.0.0.100 10.0.0.109; }}\n\
         subnet 10.1.0.0 netmask 255.255.255.0 {{ range 10.1.0.50 10.1.0.59; }}\n"
    );
    crate::config::parse_str(&text, "billing.conf").expect("config parses")
}

fn relayed(mut message: Message, remote_id: &[u8]) -> Message {
    let mut info = relay::RelayAgentInformation::default();
    info.insert(relay::RelayInfo::AgentCircuitId(b"cmts1/1".to_vec()));
    info.insert(relay::RelayInfo::AgentRemoteId(remote_id.to_vec()));
    message.set_giaddr(RELAY);
    with(message, DhcpOption::RelayAgentInformation(info))
}

/// DISCOVER and SELECTING REQUEST through the relay; the ACK's decision, or the refused
/// DISCOVER's.
fn bind_behind(harness: &mut Harness, now: u32, mac: [u8; 6], remote_id: &[u8]) -> Decision {
    let offer = harness.handle_on(
        now,
        &relayed(client(MessageType::Discover, mac), remote_id),
        Some(INTERFACE),
    );
    let Some(address) = yiaddr(&offer) else {
        return offer;
    };
    harness.handle_on(
        now,
        &relayed(selecting(mac, address, INTERFACE), remote_id),
        Some(INTERFACE),
    )
}

fn refused(decision: &Decision) -> bool {
    matches!(
        decision.outcome,
        Outcome::Ignored(IgnoreReason::NoAvailableBilling(_))
    ) && decision.reply.is_none()
}

fn billed_to(harness: &Harness, address: Ipv4Addr) -> Option<Billing> {
    harness.leases.get(address).and_then(billing_of).cloned()
}

fn count(harness: &Harness, billing: &Billing) -> u64 {
    harness
        .leases
        .billed(billing, &crate::lease::billing::BillingTotals::default())
}

#[test]
fn spawned_subclass_per_remote_id_limits_its_leases() {
    let mut harness = Harness::new(modems(""));
    let cm1 = Billing::subclass("modems", b"cm-1");
    let first = bind_behind(&mut harness, NOW, MAC_A, b"cm-1");
    assert_eq!(reply_type(&first), Some(MessageType::Ack));
    let second = bind_behind(&mut harness, NOW, MAC_B, b"cm-1");
    assert_eq!(reply_type(&second), Some(MessageType::Ack));
    // The third client behind cm-1: no OFFER at all (ISC: "no available billing").
    let third = bind_behind(&mut harness, NOW, MAC_C, b"cm-1");
    assert!(refused(&third), "{:?}", third.outcome);
    assert!(third.commit.is_empty());
    // Another modem's subclass still has room.
    let other = bind_behind(&mut harness, NOW, MAC_D, b"cm-2");
    assert_eq!(reply_type(&other), Some(MessageType::Ack));
    let first_address = yiaddr(&first).unwrap();
    assert_eq!(billed_to(&harness, first_address), Some(cm1.clone()));
    assert_eq!(
        first.commit[0].extra.as_ref().unwrap().billing,
        Some(cm1.clone())
    );
    assert_eq!(
        billed_to(&harness, yiaddr(&other).unwrap()),
        Some(Billing::subclass("modems", b"cm-2"))
    );
    assert_eq!(count(&harness, &cm1), 2);
    // A renewal of a billed lease stays billed, even with the subclass full.
    let renewal = harness.handle_on(
        NOW + 300,
        &relayed(selecting(MAC_A, first_address, INTERFACE), b"cm-1"),
        Some(INTERFACE),
    );
    assert_eq!(reply_type(&renewal), Some(MessageType::Ack));
    assert_eq!(count(&harness, &cm1), 2);
}

#[test]
fn a_release_frees_the_slot() {
    let mut harness = Harness::new(modems(""));
    let first = bind_behind(&mut harness, NOW, MAC_A, b"cm-1");
    assert_eq!(
        reply_type(&bind_behind(&mut harness, NOW, MAC_B, b"cm-1")),
        Some(MessageType::Ack)
    );
    assert!(refused(&bind_behind(&mut harness, NOW, MAC_C, b"cm-1")));
    let mut release = client(MessageType::Release, MAC_A);
    release.set_ciaddr(yiaddr(&first).unwrap());
    let released = harness.handle(NOW + 10, &release);
    assert!(matches!(released.outcome, Outcome::Released(_)));
    assert_eq!(billed_to(&harness, yiaddr(&first).unwrap()), None);
    let third = bind_behind(&mut harness, NOW + 20, MAC_C, b"cm-1");
    assert_eq!(reply_type(&third), Some(MessageType::Ack));
}

#[test]
fn expiry_frees_the_slots() {
    let mut harness = Harness::new(modems(""));
    assert_eq!(
        reply_type(&bind_behind(&mut harness, NOW, MAC_A, b"cm-1")),
        Some(MessageType::Ack)
    );
    assert_eq!(
        reply_type(&bind_behind(&mut harness, NOW, MAC_B, b"cm-1")),
        Some(MessageType::Ack)
    );
    assert!(refused(&bind_behind(&mut harness, NOW, MAC_C, b"cm-1")));
    let expired = harness.expire(NOW + 601);
    assert_eq!(expired.len(), 2);
    assert!(expired.iter().all(|lease| billing_of(lease).is_none()));
    assert_eq!(count(&harness, &Billing::subclass("modems", b"cm-1")), 0);
    let third = bind_behind(&mut harness, NOW + 602, MAC_C, b"cm-1");
    assert_eq!(reply_type(&third), Some(MessageType::Ack));
}

/// The billing is written to the lease file and read back at start-up (ISC `write_lease`,
/// `lease_instantiate`): the restarted server still refuses the third client.
#[test]
fn billing_survives_a_restart_through_the_lease_file() {
    let mut harness = Harness::new(modems(""));
    assert_eq!(
        reply_type(&bind_behind(&mut harness, NOW, MAC_A, b"cm-1")),
        Some(MessageType::Ack)
    );
    assert_eq!(
        reply_type(&bind_behind(&mut harness, NOW, MAC_B, b"cm-1")),
        Some(MessageType::Ack)
    );
    let mut file = Vec::new();
    for lease in harness.leases.iter() {
        crate::lease::file::write_lease(lease, &mut file);
    }
    let text = String::from_utf8(file.clone()).unwrap();
    assert_eq!(
        text.matches("  billing subclass \"modems\" \"cm-1\";\n")
            .count(),
        2,
        "{text}"
    );
    let mut restarted = Harness::new(modems(""));
    restarted
        .leases
        .load(crate::lease::file::parse(&file, "dhcpd.leases"));
    assert_eq!(count(&restarted, &Billing::subclass("modems", b"cm-1")), 2);
    assert!(refused(&bind_behind(
        &mut restarted,
        NOW + 5,
        MAC_C,
        b"cm-1"
    )));
}

/// A reload keeps the leases and so their billing; the counts are the store's.
#[test]
fn a_reload_keeps_the_counts() {
    let mut harness = Harness::new(modems(""));
    assert_eq!(
        reply_type(&bind_behind(&mut harness, NOW, MAC_A, b"cm-1")),
        Some(MessageType::Ack)
    );
    assert_eq!(
        reply_type(&bind_behind(&mut harness, NOW, MAC_B, b"cm-1")),
        Some(MessageType::Ack)
    );
    let reloaded = modems("# reloaded");
    harness.leases.reconfigure(&reloaded);
    harness.engine = crate::engine::Engine::new(std::sync::Arc::new(reloaded));
    assert_eq!(count(&harness, &Billing::subclass("modems", b"cm-1")), 2);
    assert!(refused(&bind_behind(&mut harness, NOW + 5, MAC_C, b"cm-1")));
}

/// A declared subclass has its own limit; the first limited class with room is billed.
#[test]
fn declared_subclasses_and_class_limits() {
    let text = "authoritative;\ndefault-lease-time 600;\n\
        class \"c\" { match hardware; lease limit 1; }\n\
        subclass \"c\" 1:02:00:00:00:00:0a;\n\
        subclass \"c\" 1:02:00:00:00:00:0b { lease limit 0; }\n\
        class \"all\" { match if substring(hardware, 1, 1) = 02; lease limit 1; }\n\
        subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.100 10.0.0.109; }\n";
    let config = crate::config::parse_str(text, "c.conf").expect("config parses");
    let mut harness = Harness::new(config);
    // A: subclass c/…0a (limit 1) has room.
    let a = bind(&mut harness, NOW, MAC_A);
    assert_eq!(
        billed_to(&harness, yiaddr(&a).unwrap()),
        Some(Billing::subclass("c", &[1, 2, 0, 0, 0, 0, 0x0a]))
    );
    // B: its subclass has no limit, so the class "all" is billed.
    let b = bind(&mut harness, NOW, MAC_B);
    assert_eq!(
        billed_to(&harness, yiaddr(&b).unwrap()),
        Some(Billing::class("all"))
    );
    // C: in no subclass of "c"; "all" is full.
    let c = harness.handle(NOW, &client(MessageType::Discover, MAC_C));
    assert!(refused(&c), "{:?}", c.outcome);
}

/// ISC `check_collection`: a false `match if` ends the class (nothing spawned); a
/// non-spawning class with data no subclass has does not match.
#[test]
fn spawning_follows_match_if() {
    let mut harness = Harness::new(modems(""));
    // A direct client has no remote-id: in no class, no limit.
    let direct = bind(&mut harness, NOW, MAC_A);
    assert_eq!(reply_type(&direct), Some(MessageType::Ack));
    assert_eq!(billed_to(&harness, yiaddr(&direct).unwrap()), None);
}
