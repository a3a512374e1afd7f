//! The OMAPI listener (docs/spec/omapi.md §1): TCP on `omapi::listen_address`:`omapi-port`, one
//! task per connection, each a thin driver around a [`Session`], admitted by an [`Admission`]
//! (at most `MAX_CONNECTIONS`, and a bound per source address). A connection that misbehaves,
//! stalls, sends garbage or does not authenticate in time is closed alone; the DHCP path never
//! waits on OMAPI except for the lease-store lock held for one lookup or update.

use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::admission::Admission;
use super::objects::Objects;
use super::session::{Session, SessionPolicy};

/// A connection with no complete request for this long is closed (omshell sessions are
/// interactive, so this is generous).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// A peer that does not read our replies for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Refused connections are logged at most this often (the rest are counted in the next line).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The configured bounds of the listener.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub session: SessionPolicy,
    /// Connections per source address (`option xdhcpd.omapi-connections-per-source`).
    pub per_source: u32,
}

/// Binds `address` and serves OMAPI as tasks of the control plane (`crate::control_plane`)
/// until `token` is cancelled. Returns once bound.
pub fn spawn(
    handle: &tokio::runtime::Handle,
    token: CancellationToken,
    address: SocketAddrV4,
    limits: Limits,
    objects: Arc<Objects>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = crate::control_plane::bind_tcp(handle, address.into())?;
    tracing::info!("OMAPI listening on {}", listener.local_addr()?);
    Ok(handle.spawn(async move {
        tokio::select! {
            () = serve(listener, limits, objects, token.clone()) => {}
            () = token.cancelled() => {}
        }
    }))
}

/// A connection's place in the [`Admission`], given back when the connection ends.
struct Slot {
    admission: Arc<Mutex<Admission>>,
    source: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .release(self.source);
    }
}

/// Accepts connections until the runtime stops; each connection ends when `token` is cancelled.
pub async fn serve(
    listener: TcpListener,
    limits: Limits,
    objects: Arc<Objects>,
    token: CancellationToken,
) {
    #[expect(clippy::disallowed_methods, reason = "driver owns the clock")]
    let clock = Instant::now();
    let admission = Arc::new(Mutex::new(Admission::new(limits.per_source)));
    let mut refusals = RefusalLog::default();
    let mut serial: u32 = 0;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("OMAPI accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let admitted = admission
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(peer.ip());
        if let Err(refusal) = admitted {
            refusals.refused(clock.elapsed(), peer, &refusal.to_string());
            drop(stream);
            continue;
        }
        let slot = Slot {
            admission: Arc::clone(&admission),
            source: peer.ip(),
        };
        serial = serial.wrapping_add(1);
        let first_id = first_message_id(serial);
        let objects = Arc::clone(&objects);
        let policy = limits.session;
        let token = token.clone();
        tokio::spawn(async move {
            let session = Session::new(first_id, clock.elapsed(), &policy);
            tokio::select! {
                closed = connection(stream, peer, session, &objects, clock) => {
                    if let Err(reason) = closed {
                        tracing::info!("OMAPI connection from {peer} closed: {reason}");
                    }
                }
                () = token.cancelled() => {}
            }
            drop(slot);
        });
    }
}

/// Logs refused connections without letting a flood of them flood the log.
#[derive(Default)]
struct RefusalLog {
    last: Option<Duration>,
    suppressed: u64,
}

impl RefusalLog {
    fn refused(&mut self, now: Duration, peer: SocketAddr, reason: &str) {
        if self
            .last
            .is_some_and(|last| now.saturating_sub(last) < REFUSAL_LOG_INTERVAL)
        {
            self.suppressed += 1;
            return;
        }
        let suppressed = std::mem::take(&mut self.suppressed);
        let more = if suppressed > 0 {
            format!(" ({suppressed} more refused since the last such line)")
        } else {
            String::new()
        };
        tracing::warn!("OMAPI connection from {peer} refused: {reason}{more}");
        self.last = Some(now);
    }
}

/// A per-connection starting id that differs between connections (ISC uses `random()`).
fn first_message_id(serial: u32) -> u32 {
    #[expect(clippy::disallowed_methods, reason = "driver owns the clock")]
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    (nanos ^ serial.wrapping_mul(0x9e37_79b9)) & 0x7fff_ffff
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    mut session: Session,
    objects: &Objects,
    clock: Instant,
) -> Result<(), String> {
    tracing::debug!("OMAPI connection from {peer}");
    let _ = stream.set_nodelay(true);
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        while let Some(bytes) = session.poll_transmit() {
            match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&bytes)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(error.to_string()),
                Err(_) => return Err("peer stopped reading".into()),
            }
            // Requests held back while replies were queued.
            crate::control_plane::blocking(|| session.process(crate::clock::unix_now(), objects))
                .map_err(|error| error.to_string())?;
        }
        // Wait for input until the idle timeout, or the authentication deadline if sooner.
        let wait = session.auth_deadline().map_or(IDLE_TIMEOUT, |deadline| {
            deadline.saturating_sub(clock.elapsed()).min(IDLE_TIMEOUT)
        });
        let read = tokio::time::timeout(wait, stream.read(&mut buffer)).await;
        // After every read too: a peer trickling bytes must not outlive its deadline.
        session
            .handle_timeout(clock.elapsed())
            .map_err(|error| error.to_string())?;
        let read = match read {
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(read)) => read,
            Ok(Err(error)) => return Err(error.to_string()),
            Err(_) => return Err("idle timeout".into()),
        };
        let received = buffer.get(..read).unwrap_or_default();
        // An update waits for its lease to be durable, and a failover command for its driver
        // (a task of the same runtime): `blocking` hands this thread's other tasks on meanwhile.
        crate::control_plane::blocking(|| {
            session.handle_bytes(crate::clock::unix_now(), received, objects)
        })
        .map_err(|error| error.to_string())?;
    }
}
