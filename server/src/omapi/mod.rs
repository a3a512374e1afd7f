//! OMAPI, ISC's control channel (`../shared/spec/omapi.md`): `wire` (codec), `auth` (HMAC-MD5
//! keys), `session` (sans-IO connection state machine), `objects` (lease, host, control,
//! failover-state) and `server` (the tokio listener on `omapi-port`).

pub mod auth;
pub mod objects;
pub mod result;
pub mod server;
pub mod session;
pub mod wire;
