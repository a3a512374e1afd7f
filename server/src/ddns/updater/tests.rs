//! The updater against in-process fake servers on 127.0.0.1 (the real BIND 9 is in
//! server/tests/integration/ddns_bind.rs): retries, give-up, TCP fallback, refused answers, the queue bound.
//! Every wait is bounded.

use crate::control_plane::ControlPlane;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::mpsc;
use std::time::Duration;

use super::*;
use crate::ddns::guard::{guard, ClientIdentity, Style};
use crate::ddns::plan::{Binding, Policy};
use crate::ddns::tsig::{Algorithm, TsigKey};
use crate::ddns::wire::{last_record_offset, skip_name};
use crate::ddns::zones::Zone;

const WAIT: Duration = Duration::from_secs(20);

fn key(secret: &[u8]) -> TsigKey {
    TsigKey::new("test-key", Algorithm::HmacSha256, secret.to_vec()).unwrap()
}

fn zones(server: SocketAddr, key: Option<TsigKey>) -> Zones {
    Zones::new(
        ["example.org.", "2.0.192.in-addr.arpa."]
            .into_iter()
            .map(|name| Zone {
                name: name.into(),
                servers: vec![server],
                key: key.clone().map(Arc::new),
            })
            .collect(),
    )
}

fn add(host: &str) -> Operation {
    let fwd_name = format!("{host}.example.org");
    let guard = guard(
        Style::Standard,
        ClientIdentity::ClientId(host.as_bytes()),
        &fwd_name,
    )
    .unwrap();
    Operation::add(
        Binding {
            address: Ipv4Addr::new(192, 0, 2, 7),
            fwd_name: Some(fwd_name),
            rev_name: Some("7.2.0.192.in-addr.arpa.".into()),
            guard: Some(guard),
            ttl: 60,
        },
        Policy::default(),
    )
}

fn quick() -> UpdaterSettings {
    UpdaterSettings {
        queue_capacity: 16,
        attempt_timeout: Duration::from_millis(200),
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(40),
        max_attempts: 3,
    }
}

/// The MAC of a signed request (its TSIG record's MAC field).
fn request_mac(request: &[u8]) -> Vec<u8> {
    let Some(offset) = last_record_offset(request) else {
        return Vec::new();
    };
    let rdata = skip_name(request, offset).unwrap() + 10;
    let after_algorithm = skip_name(request, rdata).unwrap();
    let size_at = after_algorithm + 8;
    let size = usize::from(u16::from_be_bytes([request[size_at], request[size_at + 1]]));
    request[size_at + 2..size_at + 2 + size].to_vec()
}

/// An answer to `request`: header with QR and `rcode`, zone echoed, signed with `key`.
fn answer(request: &[u8], rcode: u8, truncated: bool, key: Option<&TsigKey>) -> Vec<u8> {
    let zone_end = skip_name(request, 12).unwrap() + 4;
    let mut answer = request[..zone_end].to_vec();
    answer[2] |= 0x80 | if truncated { 0x02 } else { 0 };
    answer[3] = (answer[3] & 0xf0) | rcode;
    answer[6..12].fill(0);
    if let Some(key) = key {
        let now = u64::from(crate::clock::unix_now());
        key.sign_answer(&mut answer, now, &request_mac(request))
            .unwrap();
    }
    answer
}

/// A fake server on 127.0.0.1: UDP answers with TC set (`udp_truncates`) or `rcode`; TCP
/// answers `rcode`. Signs with `key`. Serves until `requests` have been answered.
fn fake_server(
    rcode: u8,
    udp_truncates: bool,
    key: Option<TsigKey>,
    requests: usize,
) -> (SocketAddr, std::thread::JoinHandle<usize>) {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = udp.local_addr().unwrap();
    let tcp = TcpListener::bind(address).unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    tcp.set_nonblocking(true).unwrap();
    let thread = std::thread::spawn(move || {
        let deadline = crate::clock::monotonic() + WAIT;
        let mut answered = 0;
        let mut buffer = [0u8; 2048];
        while answered < requests && crate::clock::monotonic() < deadline {
            if let Ok((length, peer)) = udp.recv_from(&mut buffer) {
                let reply = answer(&buffer[..length], rcode, udp_truncates, key.as_ref());
                udp.send_to(&reply, peer).unwrap();
                if !udp_truncates {
                    answered += 1;
                }
            }
            if let Ok((mut stream, _)) = tcp.accept() {
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                let mut length = [0u8; 2];
                stream.read_exact(&mut length).unwrap();
                let mut request = vec![0u8; usize::from(u16::from_be_bytes(length))];
                stream.read_exact(&mut request).unwrap();
                let reply = answer(&request, rcode, false, key.as_ref());
                stream
                    .write_all(&(reply.len() as u16).to_be_bytes())
                    .unwrap();
                stream.write_all(&reply).unwrap();
                answered += 1;
            }
        }
        answered
    });
    (address, thread)
}

fn run_one(
    zones: Zones,
    settings: UpdaterSettings,
    operation: Operation,
) -> (Finished, Arc<DdnsMetrics>) {
    let metrics = Arc::new(DdnsMetrics::default());
    let plane = ControlPlane::start().unwrap();
    let (sink, finished) = mpsc::sync_channel(16);
    let (updater, task) =
        Updater::spawn(plane.handle(), zones, settings, metrics.clone(), Some(sink));
    assert!(updater.submit(operation));
    let done = finished.recv_timeout(WAIT).expect("the operation finishes");
    updater.stop();
    plane.handle().block_on(task).unwrap();
    (done, metrics)
}

#[test]
fn truncated_udp_answers_are_asked_again_over_tcp() {
    let key = key(b"shared secret");
    let (server, fake) = fake_server(0, true, Some(key.clone()), 2);
    let (done, metrics) = run_one(zones(server, Some(key)), quick(), add("tcp"));
    assert_eq!(
        done.result.unwrap(),
        Outcome {
            forward: Side::Done,
            reverse: Side::Done
        }
    );
    assert_eq!(metrics.updates(UpdateResult::Success), 2);
    assert_eq!(metrics.operations(OperationResult::Done), 1);
    assert_eq!(fake.join().unwrap(), 2);
}

#[test]
fn a_silent_server_is_retried_then_given_up() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (done, metrics) = run_one(
        zones(silent.local_addr().unwrap(), None),
        quick(),
        add("silent"),
    );
    assert!(matches!(
        done.result,
        Err(Abandoned::NoAnswer {
            step: Step::FwdAdd1,
            attempts: 3
        })
    ));
    assert_eq!(metrics.updates(UpdateResult::Timeout), 3);
    assert_eq!(metrics.operations(OperationResult::GaveUp), 1);
}

#[test]
fn an_answer_signed_with_another_secret_is_refused_and_counted() {
    let (server, _fake) = fake_server(0, false, Some(key(b"not ours")), 1);
    let (done, metrics) = run_one(zones(server, Some(key(b"ours"))), quick(), add("forged"));
    assert!(matches!(
        done.result,
        Err(Abandoned::BadAnswer {
            step: Step::FwdAdd1,
            error: AnswerError::Tsig(crate::ddns::tsig::TsigFailure::BadSignature)
        })
    ));
    assert_eq!(metrics.updates(UpdateResult::BadAnswerSignature), 1);
    assert_eq!(metrics.operations(OperationResult::Failed), 1);
}

#[test]
fn refusals_end_the_operation() {
    let (server, _fake) = fake_server(5, false, None, 1);
    let (done, metrics) = run_one(zones(server, None), quick(), add("refused"));
    assert_eq!(
        done.result.unwrap(),
        Outcome {
            forward: Side::Failed {
                step: Step::FwdAdd1,
                rcode: 5
            },
            reverse: Side::Skipped
        }
    );
    assert_eq!(metrics.updates(UpdateResult::Refused), 1);
}

#[test]
fn names_without_a_zone_are_not_sent() {
    let (done, metrics) = run_one(Zones::default(), quick(), add("nozone"));
    assert!(matches!(done.result, Err(Abandoned::NoZone { .. })));
    assert_eq!(metrics.updates(UpdateResult::NoZone), 1);
}

#[test]
fn a_full_queue_drops_its_oldest_and_counts_it() {
    let metrics = Arc::new(DdnsMetrics::default());
    let plane = ControlPlane::start().unwrap();
    let (updater, task) = Updater::spawn(
        plane.handle(),
        Zones::default(),
        UpdaterSettings {
            queue_capacity: 3,
            ..quick()
        },
        metrics.clone(),
        None,
    );
    // Stopped first, so that nothing is taken off the queue while it fills.
    updater.stop();
    plane.handle().block_on(task).unwrap();
    for index in 0..5 {
        assert!(updater.submit(add(&format!("h{index}"))));
    }
    assert_eq!(updater.queued(), 3);
    assert_eq!(metrics.dropped.get(), 2);
    assert_eq!(metrics.queue_depth.get(), 3);
    // An operation with nothing to do is not queued.
    let mut nothing = add("x");
    nothing.binding.fwd_name = None;
    assert!(!updater.submit(nothing));
}
