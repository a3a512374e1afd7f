//! The OMAPI listener (docs/spec/omapi.md §1): TCP on 0.0.0.0:`omapi-port`, one task per connection, each
//! a thin driver around a [`Session`]. A connection that misbehaves, stalls or sends garbage is
//! closed alone; the DHCP path never waits on OMAPI except for the lease-store lock held for one
//! lookup or update.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::objects::Objects;
use super::session::Session;

/// A connection with no complete request for this long is closed (omshell sessions are
/// interactive, so this is generous).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Connections beyond this are refused at accept, bounding the memory OMAPI can use.
pub const MAX_CONNECTIONS: usize = 256;
/// A peer that does not read our replies for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Binds 0.0.0.0:`port` and serves OMAPI on a runtime of its own thread. Returns once bound.
pub fn spawn(port: u16, objects: Arc<Objects>) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let listener = runtime.block_on(TcpListener::bind(SocketAddrV4::new(
        Ipv4Addr::UNSPECIFIED,
        port,
    )))?;
    log::info!("OMAPI listening on 0.0.0.0:{port}");
    std::thread::Builder::new()
        .name("omapi".into())
        .spawn(move || runtime.block_on(serve(listener, objects)))
}

/// Accepts connections until the runtime stops.
pub async fn serve(listener: TcpListener, objects: Arc<Objects>) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut serial: u32 = 0;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                log::warn!("OMAPI accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            log::warn!("OMAPI connection from {peer} refused: {MAX_CONNECTIONS} already open");
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        serial = serial.wrapping_add(1);
        let first_id = first_message_id(serial);
        let objects = Arc::clone(&objects);
        let open = Arc::clone(&open);
        tokio::spawn(async move {
            if let Err(reason) = connection(stream, peer, &objects, first_id).await {
                log::info!("OMAPI connection from {peer} closed: {reason}");
            }
            open.fetch_sub(1, Ordering::Relaxed);
        });
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

fn unix_now() -> u32 {
    #[expect(clippy::disallowed_methods, reason = "driver owns the clock")]
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    u32::try_from(now).unwrap_or(u32::MAX)
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    objects: &Objects,
    first_id: u32,
) -> Result<(), String> {
    log::debug!("OMAPI connection from {peer}");
    let _ = stream.set_nodelay(true);
    let mut session = Session::new(first_id);
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        while let Some(bytes) = session.poll_transmit() {
            match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&bytes)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(error.to_string()),
                Err(_) => return Err("peer stopped reading".into()),
            }
            // Requests held back while replies were queued.
            session
                .process(unix_now(), objects)
                .map_err(|error| error.to_string())?;
        }
        let read = match tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut buffer)).await {
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(read)) => read,
            Ok(Err(error)) => return Err(error.to_string()),
            Err(_) => return Err("idle timeout".into()),
        };
        let received = buffer.get(..read).unwrap_or_default();
        // The store lock may be held by a DHCP worker for a moment; `block_in_place` is not
        // available on a current-thread runtime, and the wait is microseconds.
        session
            .handle_bytes(unix_now(), received, objects)
            .map_err(|error| error.to_string())?;
    }
}
