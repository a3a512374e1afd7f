//! RFC 6926 bulk leasequery over TCP, off unless `option xdhcpd.bulk-leasequery-listen
//! "ADDR:PORT";` is set (ISC dhcpd 4.4 has no bulk leasequery). `framing` is the sans-IO
//! length-prefixed stream; the answers are the engine's (`Engine::bulk_lease_query`); this
//! module is the thin tokio driver: accept, read queries, stream the answers.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections at once, each closed after
//! [`IDLE_TIMEOUT`] without a query; a query is answered on `control_plane::blocking`, as
//! its lookups lock the store's shards one at a time.

pub mod framing;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::engine::{Engine, LeaseLookup, Snapshot};

/// RFC 6926 §7.6 leaves the limit to the server; a handful of relays or collectors at once.
pub const MAX_CONNECTIONS: usize = 16;
/// A connection with no query for this long is closed (RFC 6926 §7.6).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the listener reads of the daemon: the engine in force, the snapshot, the leases.
pub struct Sources {
    pub engine: Arc<dyn Fn() -> Arc<Engine> + Send + Sync>,
    pub snapshot: Arc<dyn Fn() -> Snapshot + Send + Sync>,
    pub leases: Arc<dyn LeaseLookup + Send + Sync>,
    pub now: Arc<dyn Fn() -> u32 + Send + Sync>,
}

/// Starts the listener on `listen` as a task of the control plane's runtime.
pub fn serve(
    handle: &tokio::runtime::Handle,
    token: tokio_util::sync::CancellationToken,
    listen: SocketAddr,
    sources: Sources,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = crate::control_plane::bind_tcp(handle, listen)?;
    let sources = Arc::new(sources);
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    Ok(handle.spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = token.cancelled() => return,
            };
            let Ok((stream, peer)) = accepted else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tracing::warn!("bulk leasequery from {peer}: too many connections, closed");
                continue;
            };
            let sources = sources.clone();
            let token = token.clone();
            tokio::spawn(async move {
                let _permit = permit;
                tokio::select! {
                    result = connection(stream, peer, &sources) => {
                        if let Err(error) = result {
                            tracing::info!("bulk leasequery from {peer}: {error}");
                        }
                    }
                    () = token.cancelled() => {}
                }
            });
        }
    }))
}

/// One requestor's connection: queries in, answers out, until it closes, idles or errs.
async fn connection(
    mut stream: tokio::net::TcpStream,
    peer: SocketAddr,
    sources: &Sources,
) -> std::io::Result<()> {
    let peer_address = match peer.ip() {
        IpAddr::V4(address) => address,
        IpAddr::V6(address) => address.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
    };
    let server_id = match stream.local_addr()?.ip() {
        IpAddr::V4(address) => Some(address),
        IpAddr::V6(address) => address.to_ipv4_mapped(),
    };
    let mut decoder = framing::FrameDecoder::default();
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut buffer))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle"))??;
        if read == 0 {
            return Ok(());
        }
        decoder.push(&buffer[..read]);
        while let Some(bytes) = decoder
            .next_message()
            .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))?
        {
            let Ok(query) = dhcproto::v4::Message::decode(&mut Decoder::new(&bytes)) else {
                // RFC 6926 §7.6: a message that cannot be parsed ends the connection.
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "a message that does not decode",
                ));
            };
            let answers = crate::control_plane::blocking(|| {
                let engine = (sources.engine)();
                engine.bulk_lease_query(
                    (sources.now)(),
                    &(sources.snapshot)(),
                    peer_address,
                    server_id,
                    &query,
                    &*sources.leases,
                )
            });
            tracing::info!(
                "DHCPBULKLEASEQUERY from {peer}: {} leases",
                answers.len().saturating_sub(1)
            );
            let mut out = Vec::new();
            for answer in &answers {
                let mut encoded = Vec::new();
                if answer.encode(&mut Encoder::new(&mut encoded)).is_err() {
                    continue;
                }
                out.extend(framing::frame(&encoded).unwrap_or_default());
                if out.len() >= 64 * 1024 {
                    stream.write_all(&out).await?;
                    out.clear();
                }
            }
            stream.write_all(&out).await?;
        }
    }
}
