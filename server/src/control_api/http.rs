//! The HTTP(S) listener of the control API: a task of the control plane, one task per
//! connection, admitted as OMAPI's are (`omapi::admission`: at most 256 at once and
//! [`PER_SOURCE`] per source address, so that one host's idle connections cannot lock the
//! operators out), HTTP/1.1 (hyper), optionally TLS (rustls with the ring provider) with or
//! without client certificates, and basic authentication. Like Kea's
//! control agent it answers a request without valid credentials with HTTP 401 and
//! `WWW-Authenticate`, and POSTs of a JSON command with a JSON list.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::{Mutex, PoisonError};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::omapi::admission::Admission;

use super::answer::Answer;
use super::auth::Credentials;
use super::commands::Backend;
use super::request::MAX_BODY;
use super::ControlApiMetrics;

/// Connections one source address may hold at once (an automation host needs a few).
pub const PER_SOURCE: u32 = 8;
/// A client must send a request's headers (and complete a TLS handshake) within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's body must arrive within this once its headers did.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection (keep-alive included) ends after this.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(300);
/// Kea's control agent realm (`kea-control-agent`).
const REALM: &str = "xdhcpd";

/// What every connection shares.
pub struct Service {
    pub backend: Arc<dyn Backend + Send + Sync>,
    pub credentials: Option<Credentials>,
    pub metrics: Arc<ControlApiMetrics>,
    /// The current time (the daemon's clock; a test's fixed one).
    pub now: Arc<dyn Fn() -> u32 + Send + Sync>,
}

/// Binds `address` and serves until `token` is cancelled. Returns once bound.
pub fn spawn(
    handle: &tokio::runtime::Handle,
    token: CancellationToken,
    address: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    service: Arc<Service>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = crate::control_plane::bind_tcp(handle, address)?;
    let bound = listener.local_addr()?;
    let task = handle.spawn(async move {
        tokio::select! {
            () = serve(listener, tls, service, token.clone()) => {}
            () = token.cancelled() => {}
        }
    });
    Ok((bound, task))
}

async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    service: Arc<Service>,
    token: CancellationToken,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let admission = Arc::new(Mutex::new(Admission::new(PER_SOURCE)));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!("control API accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let admitted = admission
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(peer.ip());
        if let Err(refusal) = admitted {
            tracing::debug!("control API connection from {peer} refused: {refusal}");
            service.metrics.count_refusal("connection_limit");
            continue;
        }
        let slot = Slot {
            admission: admission.clone(),
            source: peer.ip(),
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let acceptor = acceptor.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let served = async {
                match acceptor {
                    Some(acceptor) => {
                        match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => connection(TokioIo::new(stream), peer, service).await,
                            Ok(Err(error)) => {
                                service.metrics.count_refusal("tls_handshake");
                                tracing::info!(
                                    "control API: TLS handshake with {peer} failed: {error}"
                                );
                            }
                            Err(_) => {
                                service.metrics.count_refusal("tls_handshake");
                            }
                        }
                    }
                    None => connection(TokioIo::new(stream), peer, service).await,
                }
            };
            tokio::select! {
                _ = tokio::time::timeout(CONNECTION_TIMEOUT, served) => {}
                () = token.cancelled() => {}
            }
            drop(slot);
        });
    }
}

/// A connection's place in the [`Admission`], given back when the connection ends.
struct Slot {
    admission: Arc<Mutex<Admission>>,
    source: std::net::IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .release(self.source);
    }
}

async fn connection<S>(io: TokioIo<S>, peer: SocketAddr, service: Arc<Service>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let handler = hyper::service::service_fn(move |request| {
        let service = service.clone();
        async move { Ok::<_, Infallible>(handle(&service, request).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(io, handler)
        .await;
    if let Err(error) = served {
        tracing::debug!("control API connection from {peer}: {error}");
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Kea's control agent's HTTP error bodies: `{"result": <status>, "text": "<reason>"}`.
fn http_error(status: StatusCode) -> Response<Full<Bytes>> {
    let body = serde_json::json!({
        "result": status.as_u16(),
        "text": status.canonical_reason().unwrap_or("Error"),
    });
    json_response(status, serde_json::to_vec(&body).unwrap_or_default())
}

async fn handle(service: &Service, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if let Some(credentials) = &service.credentials {
        let header = request
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .map(|value| value.as_bytes());
        if let Err(refusal) = credentials.check(header) {
            service.metrics.count_refusal(refusal.label());
            let mut response = http_error(StatusCode::UNAUTHORIZED);
            if let Ok(value) =
                hyper::header::HeaderValue::from_str(&format!("Basic realm=\"{REALM}\""))
            {
                response
                    .headers_mut()
                    .insert(hyper::header::WWW_AUTHENTICATE, value);
            }
            return response;
        }
    }
    if request.method() != hyper::Method::POST {
        return http_error(StatusCode::METHOD_NOT_ALLOWED);
    }
    let body = Limited::new(request.into_body(), MAX_BODY).collect();
    let body = match tokio::time::timeout(BODY_TIMEOUT, body).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) => return http_error(StatusCode::PAYLOAD_TOO_LARGE),
        Err(_) => return http_error(StatusCode::REQUEST_TIMEOUT),
    };
    let now = (service.now)();
    let backend = service.backend.clone();
    // A change waits for its record's fsync: the runtime's other tasks move on meanwhile.
    let answers =
        crate::control_plane::blocking(|| super::commands::answer(backend.as_ref(), &body, now));
    service.metrics.count_answers(&answers);
    json_response(StatusCode::OK, Answer::body(&answers))
}

/// The rustls configuration of the settings: the server's certificate and key, and with a
/// trust anchor the client certificates it accepts (required unless `cert_required` is off).
pub fn tls_config(
    settings: &crate::config::xdhcpd::ControlApiSettings,
) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let (cert_file, key_file) = match (&settings.cert_file, &settings.key_file) {
        (None, None) => {
            if settings.trust_anchor.is_some() {
                return Err(
                    "control-api-trust-anchor needs control-api-cert-file and control-api-key-file"
                        .to_string(),
                );
            }
            return Ok(None);
        }
        (Some(cert), Some(key)) => (cert, key),
        _ => return Err("control-api-cert-file and control-api-key-file go together".to_string()),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect())
        .map_err(|error| format!("{cert_file}: {error}"))?;
    if certs.is_empty() {
        return Err(format!("{cert_file}: no certificate"));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_file).map_err(|error| format!("{key_file}: {error}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?;
    let builder = match &settings.trust_anchor {
        Some(anchor) => {
            let mut roots = rustls::RootCertStore::empty();
            let anchors: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(anchor)
                .and_then(|certs| certs.collect())
                .map_err(|error| format!("{anchor}: {error}"))?;
            for certificate in anchors {
                roots
                    .add(certificate)
                    .map_err(|error| format!("{anchor}: {error}"))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let verifier = if settings.cert_required {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|error| error.to_string())?)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|error| format!("{cert_file}: {error}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}
