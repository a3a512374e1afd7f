//! The JSON control API beside OMAPI: Kea's control-channel commands over HTTP(S), so that
//! Kea's tooling (`kea-shell`, scripts written for Kea's control agent) drives xdhcpd
//! (README "JSON control API (Kea commands)"). Off unless `option xdhcpd.control-api-listen`
//! is set.
//!
//! `request` decodes a body (sans-IO, fuzzed), `commands` decides the answer against a
//! `Backend` (sans-IO), `lease_json` maps ISC leases to Kea's JSON, `auth` checks basic
//! authentication, `http` is the listener (a control-plane task) and `backend` the daemon's
//! backend: the lease store, the OMAPI host layer, `changes::apply` with
//! `ChangeSource::ControlApi` (durable before the answer), reload and statistics.

pub mod answer;
pub mod auth;
pub mod backend;
pub mod commands;
pub mod http;
pub mod lease_json;
pub mod request;

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::config::model::Config;

/// Labels of the API's counters.
type Labels = Vec<(String, String)>;

/// The API's counters (registered in the daemon's Prometheus registry).
#[derive(Debug, Default)]
pub struct ControlApiMetrics {
    /// Answers sent, by command result (0 success, 1 error, 2 unsupported, 3 empty, 4
    /// conflict).
    answers: Family<Labels, Counter>,
    /// Requests refused before any command ran: `missing` or `wrong` basic-auth credentials,
    /// a failed TLS handshake (`tls_handshake`: no or a bad client certificate), or a
    /// connection over the bounds (`connection_limit`).
    unauthorized: Family<Labels, Counter>,
}

impl ControlApiMetrics {
    pub fn count_refusal(&self, reason: &str) {
        self.unauthorized
            .get_or_create(&vec![("reason".to_string(), reason.to_string())])
            .inc();
    }

    pub fn count_answers(&self, answers: &[answer::Answer]) {
        for answer in answers {
            self.answers
                .get_or_create(&vec![("result".to_string(), answer.result.to_string())])
                .inc();
        }
    }

    /// The refusals counted for `reason`.
    pub fn refusals(&self, reason: &str) -> u64 {
        self.unauthorized
            .get_or_create(&vec![("reason".to_string(), reason.to_string())])
            .get()
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "control_api_answers",
            "JSON control API answers, by Kea result code",
            self.answers.clone(),
        );
        registry.register(
            "control_api_unauthorized",
            "JSON control API requests refused before any command ran, by reason",
            self.unauthorized.clone(),
        );
    }
}

/// The listener's settings, read and checked at start-up.
pub struct Listener {
    pub address: std::net::SocketAddr,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub credentials: Option<auth::Credentials>,
    /// TLS with required client certificates: the handshake authenticates the client.
    pub mutual_tls: bool,
}

impl Listener {
    /// The listener `config` asks for, or `None` when the API is off. Errors name the file
    /// or setting that is wrong; the daemon does not start with them.
    pub fn of(config: &Config) -> Result<Option<Self>, String> {
        let settings = &config.control_api;
        let Some(address) = settings.listen else {
            return Ok(None);
        };
        let tls = http::tls_config(settings)?;
        let credentials = match &settings.auth_file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|error| format!("{path}: {error}"))?;
                Some(auth::Credentials::parse(&text).map_err(|error| format!("{path}: {error}"))?)
            }
            None => None,
        };
        Ok(Some(Self {
            address,
            mutual_tls: tls.is_some() && settings.trust_anchor.is_some() && settings.cert_required,
            tls,
            credentials,
        }))
    }
}

/// Starts the listener as a task of the control plane; returns the bound address.
pub fn start(
    control_plane: &crate::control_plane::ControlPlane,
    listener: Listener,
    backend: Arc<dyn commands::Backend + Send + Sync>,
    metrics: Arc<ControlApiMetrics>,
) -> std::io::Result<std::net::SocketAddr> {
    let scheme = if listener.tls.is_some() {
        "https"
    } else {
        "http"
    };
    if listener.credentials.is_none() && !listener.mutual_tls {
        tracing::warn!(
            "the JSON control API has no control-api-auth-file: whoever reaches {} controls \
             the leases and hosts",
            listener.address
        );
    }
    let service = Arc::new(http::Service {
        backend,
        credentials: listener.credentials,
        metrics,
        now: Arc::new(crate::clock::unix_now),
    });
    let (bound, _task) = http::spawn(
        control_plane.handle(),
        control_plane.token(),
        listener.address,
        listener.tls,
        service,
    )?;
    tracing::info!("JSON control API (Kea commands) on {scheme}://{bound}/");
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(settings: &str) -> Config {
        crate::config::parse_str(
            &format!("{}{settings}", crate::config::xdhcpd::DEFINITIONS),
            "test.conf",
        )
        .expect("parses")
    }

    #[test]
    fn the_listener_is_off_without_an_address_and_refuses_files_it_cannot_use() {
        assert!(Listener::of(&config("")).expect("off").is_none());
        let missing_users = config(
            "option xdhcpd.control-api-listen \"127.0.0.1:8000\";\n\
             option xdhcpd.control-api-auth-file \"/nonexistent/api-users\";\n",
        );
        let error = Listener::of(&missing_users).err().expect("refused");
        assert!(error.starts_with("/nonexistent/api-users"), "{error}");
        let key_without_cert = config(
            "option xdhcpd.control-api-listen \"127.0.0.1:8000\";\n\
             option xdhcpd.control-api-key-file \"/etc/key.pem\";\n",
        );
        assert!(Listener::of(&key_without_cert).is_err());
        let plain = config("option xdhcpd.control-api-listen \"127.0.0.1:8000\";\n");
        let listener = Listener::of(&plain).expect("valid").expect("on");
        assert!(listener.tls.is_none() && listener.credentials.is_none() && !listener.mutual_tls);
    }
}
