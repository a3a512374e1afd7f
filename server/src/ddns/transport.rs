//! One request, one answer: over UDP, or over TCP when the request is too large for a
//! datagram or the answer comes back truncated (RFC 2136 §6.1, RFC 1035 §4.2, RFC 7766).
//! Bounded by one deadline for the whole exchange.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

use super::wire::{Answer, AnswerError, MAX_UDP_REQUEST};

/// Why an exchange produced no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("no answer in time")]
    Timeout,
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// An answer came and was refused (bad signature, malformed …).
    #[error(transparent)]
    Answer(#[from] AnswerError),
}

/// The largest answer read over UDP; a DNS server answers an UPDATE with a few hundred octets.
const MAX_UDP_ANSWER: usize = 4096;

/// Sends `request` to `server` and returns its answer as `check` accepts it. A datagram that
/// answers another request (wrong ID: late, or forged) is ignored and the wait goes on.
pub async fn exchange(
    server: SocketAddr,
    request: &[u8],
    timeout: Duration,
    check: impl Fn(&[u8]) -> Result<Answer, AnswerError>,
) -> Result<Answer, ExchangeError> {
    let deadline = Instant::now() + timeout;
    if request.len() <= MAX_UDP_REQUEST {
        let answer = match timeout_at(deadline, udp(server, request, &check)).await {
            Ok(result) => result?,
            Err(_) => return Err(ExchangeError::Timeout),
        };
        if !answer.truncated {
            return Ok(answer);
        }
    }
    match timeout_at(deadline, tcp(server, request, &check)).await {
        Ok(result) => result,
        Err(_) => Err(ExchangeError::Timeout),
    }
}

async fn udp(
    server: SocketAddr,
    request: &[u8],
    check: &impl Fn(&[u8]) -> Result<Answer, AnswerError>,
) -> Result<Answer, ExchangeError> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    // A connected socket receives only the server's datagrams.
    socket.connect(server).await?;
    socket.send(request).await?;
    let mut buffer = vec![0u8; MAX_UDP_ANSWER];
    loop {
        let length = match socket.recv(&mut buffer).await {
            Ok(length) => length,
            // ICMP port unreachable: nobody listens (yet); keep waiting until the deadline
            // so that a server restarting within it is still heard.
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                socket.send(request).await?;
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        match check(&buffer[..length]) {
            Err(AnswerError::WrongId { .. }) => continue,
            other => return Ok(other?),
        }
    }
}

async fn tcp(
    server: SocketAddr,
    request: &[u8],
    check: &impl Fn(&[u8]) -> Result<Answer, AnswerError>,
) -> Result<Answer, ExchangeError> {
    let length = u16::try_from(request.len()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "request over 65535 octets",
        )
    })?;
    let mut stream = TcpStream::connect(server).await?;
    let mut framed = Vec::with_capacity(request.len() + 2);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(request);
    stream.write_all(&framed).await?;
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).await?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut answer).await?;
    Ok(check(&answer)?)
}
