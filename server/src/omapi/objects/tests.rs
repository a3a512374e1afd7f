//! Tests of the OMAPI objects and session over an in-memory store: the capture's lease lookup
//! answered byte for byte, host create/delete reaching the engine's table and the lease file
//! records, and the authentication failures of docs/spec/omapi.md §6.4.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::host_table::DynamicHosts;
use crate::lease::record::{BindingState, Hardware, Lease};
use crate::lease::shards::ShardedStore;
use crate::lease::store::LeaseStore;
use crate::omapi::auth::{sign_message, Authenticator};
use crate::omapi::objects::{NoFailover, Objects};
use crate::omapi::session::{Session, SessionError, SessionPolicy, MAX_MESSAGE};
use crate::omapi::wire::WireError;
use crate::omapi::wire::{decode_message, find, Intro, Message, Opcode, Value};

const CONFIG: &str = "key omapi_key { algorithm hmac-md5; secret \"MDEyMzQ1Njc4OWFiY2RlZg==\"; }\n\
omapi-port 7911;\nomapi-key omapi_key;\n\
subnet 10.99.0.0 netmask 255.255.255.0 { range 10.99.0.100 10.99.0.199; }\n";

struct Harness {
    objects: Objects,
    store: Arc<ShardedStore>,
    hosts: Arc<DynamicHosts>,
    persisted: Arc<Mutex<Vec<String>>>,
    session: Session,
    key: Authenticator,
}

impl Harness {
    fn new() -> Self {
        let config = Arc::new(crate::config::parse_str(CONFIG, "test.conf").unwrap());
        let policy = SessionPolicy::of(&config);
        let mut store = LeaseStore::new(&config);
        let mut lease = Lease::free(Ipv4Addr::new(10, 99, 0, 105));
        lease.starts = 0x67748580;
        lease.ends = 0x70e11e80;
        lease.tstp = 0x70e11e80;
        lease.cltt = 0x67748580;
        lease.binding_state = BindingState::Active;
        lease.hardware = Hardware::new(1, &[2, 0x11, 0x22, 0x33, 0x44, 0x55]);
        lease.set_uid(Some(&[1, 2, 0x11, 0x22, 0x33, 0x44, 0x55]));
        lease.set_client_hostname(Some("labhost"));
        store.upsert(lease);
        let hosts = Arc::new(DynamicHosts::default());
        let persisted = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&persisted);
        let store = Arc::new(ShardedStore::from_store(config.clone(), 1, store));
        let lease_sink = Arc::clone(&persisted);
        let file_format = crate::lease::file::FileFormat::of(&config);
        let objects = Objects::new(
            config,
            Arc::clone(&store),
            Arc::clone(&hosts),
            Box::new(move |record| {
                sink.lock()
                    .unwrap()
                    .push(String::from_utf8(record).unwrap())
            }),
            Box::new(move |leases| {
                let mut record = Vec::new();
                for lease in leases {
                    crate::lease::file::write_lease_with(lease, file_format, &mut record);
                }
                lease_sink
                    .lock()
                    .unwrap()
                    .push(String::from_utf8(record).unwrap())
            }),
            Box::new(|| {}),
            Box::new(NoFailover),
        );
        let mut session = Session::new(0x0478bd76, Duration::ZERO, &policy);
        assert_eq!(session.poll_transmit(), Some(Intro::OURS.encode().to_vec()));
        session
            .handle_bytes(0, &Intro::OURS.encode(), &objects)
            .unwrap();
        Self {
            objects,
            store,
            hosts,
            persisted,
            session,
            key: Authenticator::hmac_md5("omapi_key", b"0123456789abcdef"),
        }
    }

    fn exchange(&mut self, request: &Message) -> Vec<Message> {
        self.session
            .handle_bytes(1_700_000_000, &request.to_bytes(), &self.objects)
            .unwrap();
        let bytes = self.session.poll_transmit().unwrap_or_default();
        let mut rest = bytes.as_slice();
        let mut replies = Vec::new();
        while let Some(decoded) = decode_message(rest, 24, 1 << 20).unwrap() {
            rest = &rest[decoded.length..];
            replies.push(decoded.message);
        }
        replies
    }

    /// The capture's authenticator OPEN; returns the authid.
    fn authenticate(&mut self) -> u32 {
        let mut open = Message::new(Opcode::OPEN, 0, 0x6b8b4567, 0);
        open.message_values
            .push(Value::new("type", "authenticator"));
        open.object_values.push(Value::new("name", "omapi_key"));
        open.object_values
            .push(Value::new("algorithm", "hmac-md5.SIG-ALG.REG.INT."));
        let replies = self.exchange(&open);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].header.op, Opcode::UPDATE);
        assert_eq!(replies[0].header.authid, 0);
        replies[0].header.handle
    }

    fn signed(&self, mut message: Message, authid: u32) -> Message {
        sign_message(&mut message, authid, &self.key);
        message
    }
}

fn result(message: &Message) -> Option<u32> {
    find(&message.message_values, "result").and_then(Value::as_u32)
}

#[test]
fn the_capture_lease_lookup_is_answered_byte_for_byte() {
    let mut harness = Harness::new();
    let authid = harness.authenticate();
    assert_eq!(authid, 1);
    let mut open = Message::new(Opcode::OPEN, 0, 0x6b8b4568, 0);
    open.message_values.push(Value::new("type", "lease"));
    open.object_values
        .push(Value::new("ip-address", vec![10, 99, 0, 105]));
    let open = harness.signed(open, authid);
    let replies = harness.exchange(&open);
    let expected = crate::omapi::wire::tests::hex(crate::omapi::wire::tests::LEASE_UPDATE);
    assert_eq!(replies[0].to_bytes(), expected);
}

#[test]
fn hosts_reach_the_engine_table_and_the_lease_file() {
    let mut harness = Harness::new();
    let authid = harness.authenticate();
    let mut create = Message::new(Opcode::OPEN, 0, 10, 0);
    create.message_values.push(Value::u32("create", 1));
    create.message_values.push(Value::u32("exclusive", 1));
    create.message_values.push(Value::new("type", "host"));
    create.object_values.push(Value::new("name", "newhost"));
    create.object_values.push(Value::new(
        "hardware-address",
        vec![2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee],
    ));
    create.object_values.push(Value::u32("hardware-type", 1));
    create
        .object_values
        .push(Value::new("ip-address", vec![10, 99, 0, 60]));
    let replies = harness.exchange(&harness.signed(create.clone(), authid));
    let reply = &replies[0];
    assert_eq!(reply.header.op, Opcode::UPDATE, "{reply:?}");
    let names: Vec<_> = reply
        .object_values
        .iter()
        .map(|value| String::from_utf8_lossy(&value.name).into_owned())
        .collect();
    assert_eq!(
        names,
        ["ip-address", "name", "hardware-address", "hardware-type"]
    );
    let host = harness.hosts.snapshot().unwrap();
    assert_eq!(
        host.hosts[0].host.fixed_addresses,
        [Ipv4Addr::new(10, 99, 0, 60)]
    );
    assert_eq!(
        harness.persisted.lock().unwrap()[0],
        "host newhost {\n  dynamic;\n  hardware ethernet 02:aa:bb:cc:dd:ee;\n  \
         fixed-address 10.99.0.60;\n}\n"
    );

    // Create again, exclusive: "already exists" (docs/spec/omapi.md §10.1).
    create.header.id = 11;
    let replies = harness.exchange(&harness.signed(create, authid));
    assert_eq!(result(&replies[0]), Some(0x12));

    // Delete by handle: a rubout, and the engine no longer sees it.
    let delete = Message::new(Opcode::DELETE, reply.header.handle, 12, 0);
    let replies = harness.exchange(&harness.signed(delete, authid));
    assert_eq!(result(&replies[0]), Some(0));
    assert!(harness.hosts.snapshot().is_none());
    assert_eq!(
        harness.persisted.lock().unwrap()[1],
        "host newhost {\n  dynamic;\n  deleted;\n}\n"
    );
}

#[test]
fn lease_updates_are_committed() {
    let mut harness = Harness::new();
    let authid = harness.authenticate();
    let mut open = Message::new(Opcode::OPEN, 0, 20, 0);
    open.message_values.push(Value::new("type", "lease"));
    open.object_values.push(Value::new(
        "hardware-address",
        vec![2, 0x11, 0x22, 0x33, 0x44, 0x55],
    ));
    let replies = harness.exchange(&harness.signed(open, authid));
    let handle = replies[0].header.handle;
    let mut update = Message::new(Opcode::UPDATE, handle, 21, 0);
    update.object_values.push(Value::u32("ends", 0));
    let replies = harness.exchange(&harness.signed(update, authid));
    assert_eq!(result(&replies[0]), Some(0));
    let record = harness.persisted.lock().unwrap()[0].clone();
    assert!(record.starts_with("lease 10.99.0.105 {"), "{record}");
    assert!(!record.contains("ends 6 2030"), "{record}");
    let mut refused = Message::new(Opcode::UPDATE, handle, 22, 0);
    refused.object_values.push(Value::u32("starts", 0));
    let replies = harness.exchange(&harness.signed(refused, authid));
    assert_eq!(result(&replies[0]), Some(6));
}

#[test]
fn authentication_failures_are_reported_as_isc_does() {
    let mut harness = Harness::new();
    // Unsigned request on a keyed server.
    let mut open = Message::new(Opcode::OPEN, 0, 30, 0);
    open.message_values.push(Value::new("type", "lease"));
    open.object_values
        .push(Value::new("ip-address", vec![10, 99, 0, 105]));
    let replies = harness.exchange(&open);
    assert_eq!(result(&replies[0]), Some(0x60009));
    assert_eq!(
        find(&replies[0].message_values, "message").unwrap().value,
        b"No authenticator on message"
    );
    // Wrong secret: unsigned STATUS with authid 0, INVALIDKEY.
    let authid = harness.authenticate();
    let mut wrong = open.clone();
    sign_message(
        &mut wrong,
        authid,
        &Authenticator::hmac_md5("omapi_key", b"wrong"),
    );
    let replies = harness.exchange(&wrong);
    assert_eq!(replies[0].header.authid, 0);
    assert_eq!(result(&replies[0]), Some(0x6000b));
    // Unknown key name at authenticator OPEN: not found.
    let mut unknown = Message::new(Opcode::OPEN, 0, 31, 0);
    unknown
        .message_values
        .push(Value::new("type", "authenticator"));
    unknown.object_values.push(Value::new("name", "other"));
    let replies = harness.exchange(&unknown);
    assert_eq!(result(&replies[0]), Some(23));
    // An authid never opened closes the connection.
    let stray = harness.signed(open, 99);
    assert_eq!(
        harness
            .session
            .handle_bytes(0, &stray.to_bytes(), &harness.objects),
        Err(SessionError::UnknownAuthenticator(99))
    );
}

#[test]
fn hostile_input_is_bounded() {
    let mut harness = Harness::new();
    let mut huge = Message::new(Opcode::OPEN, 0, 40, 0).to_bytes();
    huge.truncate(24);
    huge.extend_from_slice(&[0, 1, b'x', 0xff, 0xff, 0xff, 0xff]);
    assert!(harness
        .session
        .handle_bytes(0, &huge, &harness.objects)
        .is_err());
    let mut other = Session::new(
        1,
        Duration::ZERO,
        &SessionPolicy::of(harness.objects.config()),
    );
    let _ = other.poll_transmit();
    assert!(other
        .handle_bytes(0, &[0, 0, 0, 99, 0, 0, 0, 24], &harness.objects)
        .is_err());
}

#[test]
fn lease_updates_set_remote_handle_as_isc_does() {
    let mut harness = Harness::new();
    let authid = harness.authenticate();
    let mut open = Message::new(Opcode::OPEN, 0, 30, 0);
    open.message_values.push(Value::new("type", "lease"));
    open.object_values
        .push(Value::new("ip-address", vec![10, 99, 0, 105]));
    let replies = harness.exchange(&harness.signed(open, authid));
    let handle = replies[0].header.handle;
    let mut update = Message::new(Opcode::UPDATE, handle, 31, 0);
    update.object_values.push(Value::new("my-note", "hello"));
    let replies = harness.exchange(&harness.signed(update, authid));
    assert_eq!(result(&replies[0]), Some(0));
    // [lab] ISC: `set remote-handle = %2;` written before the older `set my-note`.
    let record = harness.persisted.lock().unwrap()[0].clone();
    let remote = record
        .find(&format!("set remote-handle = %{handle};"))
        .unwrap_or_else(|| panic!("{record}"));
    let note = record
        .find("set my-note = \"hello\";")
        .unwrap_or_else(|| panic!("{record}"));
    assert!(remote < note, "{record}");
    // Numeric variables are not published; the string one is.
    let refreshed = harness.objects.refresh(handle).unwrap();
    assert!(find(&refreshed, "remote-handle").is_none());
    assert_eq!(
        find(&refreshed, "my-note").map(|value| value.value.clone()),
        Some(b"hello".to_vec())
    );
}

#[test]
fn lookups_matching_several_leases_are_refused_as_multiple() {
    let mut harness = Harness::new();
    let authid = harness.authenticate();
    let mut second = Lease::free(Ipv4Addr::new(10, 99, 0, 106));
    second.binding_state = BindingState::Active;
    second.ends = 0x70e11e80;
    second.hardware = Hardware::new(1, &[2, 0x11, 0x22, 0x33, 0x44, 0x55]);
    second.set_uid(Some(b"other-id"));
    harness.store.lock(0).unwrap().upsert(second);
    let mut by_mac = Message::new(Opcode::OPEN, 0, 40, 0);
    by_mac.message_values.push(Value::new("type", "lease"));
    by_mac.object_values.push(Value::new(
        "hardware-address",
        vec![2, 0x11, 0x22, 0x33, 0x44, 0x55],
    ));
    let replies = harness.exchange(&harness.signed(by_mac, authid));
    assert_eq!(replies[0].header.op, Opcode::STATUS);
    assert_eq!(result(&replies[0]), Some(0x60006));
    // Each client id still names one lease.
    let mut by_uid = Message::new(Opcode::OPEN, 0, 41, 0);
    by_uid.message_values.push(Value::new("type", "lease"));
    by_uid
        .object_values
        .push(Value::new("dhcp-client-identifier", "other-id"));
    let replies = harness.exchange(&harness.signed(by_uid, authid));
    assert_eq!(replies[0].header.op, Opcode::UPDATE);
    let address = find(&replies[0].object_values, "ip-address").map(|value| value.value.clone());
    assert_eq!(address, Some(vec![10, 99, 0, 106]));
}

/// `statements` are parsed at create time: refused with DHCP_R_BADPARSE when the statement
/// parser does not take them, else applied to the host's scope and written to the lease file.
#[test]
fn host_statements_are_checked_applied_and_persisted() {
    let mut harness = Harness::new();
    let authid = harness.authenticate();
    let create = |id: u32, name: &str, statements: &str| {
        let mut create = Message::new(Opcode::OPEN, 0, id, 0);
        create.message_values.push(Value::u32("create", 1));
        create.message_values.push(Value::new("type", "host"));
        create.object_values.push(Value::new("name", name));
        create.object_values.push(Value::new(
            "hardware-address",
            vec![2, 0xaa, 0xbb, 0xcc, 0xdd, 0xef],
        ));
        create.object_values.push(Value::u32("hardware-type", 1));
        create
            .object_values
            .push(Value::new("statements", statements.as_bytes().to_vec()));
        create
    };
    for (id, bad) in [
        (30, "option no-such-option 1;"),
        (31, "include \"/etc/passwd\";"),
        (32, "if exists host-name { option host-name \"a\"; }"),
        (33, "default-lease-time soon;"),
    ] {
        let replies = harness.exchange(&harness.signed(create(id, "bad", bad), authid));
        assert_eq!(result(&replies[0]), Some(0x60008), "{bad}");
    }
    assert!(harness.hosts.snapshot().is_none());

    let good = "option domain-name \"omapi.example\"; default-lease-time 300;";
    let replies = harness.exchange(&harness.signed(create(34, "stmt", good), authid));
    assert_eq!(replies[0].header.op, Opcode::UPDATE, "{:?}", replies[0]);
    let set = harness.hosts.snapshot().unwrap();
    let scope = &set.hosts[0].scope;
    assert_eq!(scope.options, vec![(15, b"omapi.example".to_vec())]);
    assert_eq!(scope.default_lease_time, Some(300));
    let persisted = harness.persisted.lock().unwrap()[0].clone();
    assert!(
        persisted.contains("option domain-name \"omapi.example\";")
            && persisted.contains("default-lease-time 300;"),
        "{persisted}"
    );
    // What was written reads back to the same scope (restart, docs/spec/dhcpd-conf.md §8.5).
    let file = crate::lease::file::parse(persisted.as_bytes(), "dhcpd.leases");
    let record = file.hosts.into_iter().next().expect("a host record");
    assert_eq!(
        crate::engine::dynamic_hosts::host_from_record(&record).scope,
        *scope
    );
}

/// A message of `size` bytes or more made of one-byte pairs, unsigned.
fn message_of_small_pairs(size: usize) -> Vec<u8> {
    let mut message = Message::new(Opcode::OPEN, 0, 50, 0);
    message.message_values.push(Value::new("type", "lease"));
    let mut bytes = message.to_bytes();
    bytes.truncate(bytes.len() - 2);
    while bytes.len() + 2 < size {
        bytes.extend_from_slice(&[0, 1, b'x', 0, 0, 0, 1, 7]);
    }
    bytes.extend_from_slice(&[0, 0]);
    bytes
}

/// A 62 KB message trickled 8 bytes at a time is decoded as it arrives: each piece is taken
/// at once (nothing re-buffered for a re-parse), and the complete message is answered.
#[test]
fn a_trickled_message_is_decoded_as_it_arrives() {
    let mut harness = Harness::new();
    let bytes = message_of_small_pairs(62 * 1024);
    for (index, piece) in bytes.chunks(8).enumerate() {
        harness
            .session
            .handle_bytes(0, piece, &harness.objects)
            .unwrap();
        let held = harness.session.buffered_input();
        assert!(held == (index + 1) * 8 || held == 0, "{held} after {index}");
    }
    assert_eq!(harness.session.buffered_input(), 0);
    let reply = harness.session.poll_transmit().unwrap();
    let decoded = decode_message(&reply, 24, 1 << 20).unwrap().unwrap();
    // Unsigned on a keyed listener: refused, and the connection stays usable.
    assert_eq!(result(&decoded.message), Some(0x60009));
    harness.authenticate();
}

/// A message beyond MAX_MESSAGE closes the connection with a clear reason, holding at most
/// MAX_MESSAGE bytes on the way, whether it arrives whole or in pieces.
#[test]
fn an_oversized_message_closes_the_connection() {
    let bytes = message_of_small_pairs(MAX_MESSAGE + 100);
    for piece in [8, 1000, bytes.len()] {
        let mut harness = Harness::new();
        let mut outcome = Ok(());
        for chunk in bytes.chunks(piece) {
            outcome = harness.session.handle_bytes(0, chunk, &harness.objects);
            if outcome.is_err() {
                break;
            }
            assert!(harness.session.buffered_input() <= MAX_MESSAGE);
        }
        let error = outcome.unwrap_err();
        assert_eq!(
            error,
            SessionError::Wire(WireError::TooLong { limit: MAX_MESSAGE })
        );
        assert_eq!(
            error.to_string(),
            "malformed input: message longer than the 65536-byte limit"
        );
    }
}

/// Beyond ISC: on a keyed listener a connection that has not opened the authenticator within
/// the timeout is closed — idle or trickling — and one that has is not.
#[test]
fn the_authentication_deadline_closes_unauthenticated_connections_only() {
    let config = crate::config::parse_str(CONFIG, "test.conf").unwrap();
    let policy = SessionPolicy::of(&config);
    assert_eq!(policy.auth_timeout, Some(Duration::from_secs(10)));
    let opened = Duration::from_secs(1000);
    let idle = Session::new(1, opened, &policy);
    assert_eq!(idle.auth_deadline(), Some(Duration::from_secs(1010)));
    let mut idle = idle;
    assert_eq!(idle.handle_timeout(Duration::from_secs(1009)), Ok(()));
    assert_eq!(
        idle.handle_timeout(Duration::from_secs(1010)),
        Err(SessionError::AuthTimeout(Duration::from_secs(10)))
    );

    // Bytes do not move the deadline.
    let mut harness = Harness::new();
    let trickle = message_of_small_pairs(1000);
    harness
        .session
        .handle_bytes(0, &trickle[..500], &harness.objects)
        .unwrap();
    assert!(harness.session.auth_deadline().is_some());
    assert!(harness
        .session
        .handle_timeout(Duration::from_secs(10))
        .is_err());

    // Opening the omapi-key authenticator lifts it.
    let mut harness = Harness::new();
    harness.authenticate();
    assert_eq!(harness.session.auth_deadline(), None);
    assert_eq!(harness.session.handle_timeout(Duration::MAX), Ok(()));

    // A keyless listener has no deadline; `omapi-auth-timeout 0` turns it off.
    let keyless = crate::config::parse_str("omapi-port 7911;", "test.conf").unwrap();
    assert_eq!(SessionPolicy::of(&keyless).auth_timeout, None);
    let off = format!(
        "{}{CONFIG}option xdhcpd.omapi-auth-timeout 0;\n",
        crate::config::xdhcpd::DEFINITIONS
    );
    let off = crate::config::parse_str(&off, "test.conf").unwrap();
    assert_eq!(SessionPolicy::of(&off).auth_timeout, None);
    let configured = format!(
        "{}{CONFIG}option xdhcpd.omapi-auth-timeout 2;\n",
        crate::config::xdhcpd::DEFINITIONS
    );
    let configured = crate::config::parse_str(&configured, "test.conf").unwrap();
    assert_eq!(
        SessionPolicy::of(&configured).auth_timeout,
        Some(Duration::from_secs(2))
    );
}
