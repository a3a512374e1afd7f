//! One OMAPI connection as a sans-IO state machine (docs/spec/omapi.md §2, §5, §6): bytes in through
//! [`Session::handle_bytes`], bytes out through [`Session::poll_transmit`], the pre-authentication
//! deadline through [`Session::auth_deadline`] and [`Session::handle_timeout`]. It owns the
//! authenticators opened on this connection and bounds its buffers, so a hostile peer costs at
//! most [`MAX_MESSAGE`] bytes of input, one batch of replies, and — on a listener with an
//! `omapi-key` — the authentication timeout of [`SessionPolicy`].

use std::time::Duration;

use thiserror::Error;

use crate::config::model::Config;
use crate::lease::record::UnixTime;

use super::auth::{sign_message, Authenticator, SIGNATURE_LEN};
use super::decoder::MessageDecoder;
use super::objects::{ObjectRef, Objects, OpenFlags};
use super::result::{ResultCode, Status};
use super::wire::{find, Intro, Message, Opcode, Value, WireError, INTRO_LEN};

/// The largest message we accept. omshell's requests are a few hundred bytes; a host with long
/// `statements` stays far below this.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Replies queued beyond this stop request processing until the peer reads them.
const MAX_PENDING_OUTPUT: usize = 256 * 1024;
/// Received bytes held back while replies wait to be read (the driver reads again only after
/// writing them all, so this is one read's worth in practice).
const MAX_PENDING_INPUT: usize = 2 * MAX_MESSAGE;

/// Why a connection must be closed.
#[derive(Debug, PartialEq, Eq, Error)]
pub enum SessionError {
    #[error("malformed input: {0}")]
    Wire(#[from] WireError),
    /// docs/spec/omapi.md §6.4: ISC closes the connection on an authid it did not open.
    #[error("message signed with authenticator {0}, which this connection did not open")]
    UnknownAuthenticator(u32),
    /// docs/spec/omapi.md §5 step 2: a server sends no requests, so a response matches nothing.
    #[error("unexpected response (rid {0})")]
    UnexpectedResponse(u32),
    #[error("peer sent more than {MAX_PENDING_INPUT} bytes while its replies were unread")]
    InputTooLarge,
    /// Beyond ISC: an `omapi-key` listener gives each connection this long to open the key's
    /// authenticator, so idle or trickling peers cannot hold connection slots (README, OMAPI).
    #[error("no authenticator opened within {0:?} of connecting")]
    AuthTimeout(Duration),
}

/// What a listener's configuration asks of every session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    /// How long a new connection has to open the `omapi-key` authenticator; `None` without a
    /// key (every request is accepted unsigned, so there is nothing to wait for) or when
    /// `option xdhcpd.omapi-auth-timeout 0;` turns the limit off.
    pub auth_timeout: Option<Duration>,
}

impl SessionPolicy {
    pub fn of(config: &Config) -> Self {
        let seconds = config.omapi.auth_timeout;
        Self {
            auth_timeout: (config.omapi_key.is_some() && seconds > 0)
                .then(|| Duration::from_secs(u64::from(seconds))),
        }
    }
}

enum State {
    /// Waiting for the peer's introduction.
    Intro,
    Open(MessageDecoder),
}

/// One connection's protocol state.
pub struct Session {
    state: State,
    /// Bytes received and not yet decoded: a partial introduction, or what arrived while
    /// replies waited to be read.
    input: Vec<u8>,
    output: Vec<u8>,
    /// Authenticators opened on this connection, by the handle used as authid.
    authenticators: Vec<(u32, Authenticator)>,
    next_id: u32,
    /// Until the `omapi-key` authenticator is open: when the connection is closed, on the
    /// driver's monotonic clock, and the timeout it came from.
    auth_deadline: Option<(Duration, Duration)>,
}

impl Session {
    /// A new connection, accepted at `now` on the driver's monotonic clock (any fixed origin);
    /// our introduction is queued at once (docs/spec/omapi.md §11.1). `first_id` seeds the
    /// message-id counter (ISC starts it at `random()`).
    pub fn new(first_id: u32, now: Duration, policy: &SessionPolicy) -> Self {
        Self {
            state: State::Intro,
            input: Vec::new(),
            output: Intro::OURS.encode().to_vec(),
            authenticators: Vec::new(),
            next_id: first_id,
            auth_deadline: policy
                .auth_timeout
                .map(|timeout| (now.saturating_add(timeout), timeout)),
        }
    }

    /// Whether the driver should read more: output is drained and nothing complete is pending.
    pub fn wants_input(&self) -> bool {
        self.output.is_empty()
    }

    /// When [`Session::handle_timeout`] must be called (monotonic), while the connection has not
    /// yet opened the `omapi-key` authenticator.
    pub fn auth_deadline(&self) -> Option<Duration> {
        self.auth_deadline.map(|(deadline, _)| deadline)
    }

    /// Closes a connection that is past its authentication deadline at `now` (monotonic). The
    /// driver calls this when the deadline's timer fires and after every read, so a peer that
    /// keeps trickling bytes is cut as surely as an idle one.
    pub fn handle_timeout(&mut self, now: Duration) -> Result<(), SessionError> {
        match self.auth_deadline {
            Some((deadline, timeout)) if now >= deadline => Err(SessionError::AuthTimeout(timeout)),
            _ => Ok(()),
        }
    }

    /// Feeds received bytes and processes every complete message.
    pub fn handle_bytes(
        &mut self,
        now: UnixTime,
        bytes: &[u8],
        objects: &Objects,
    ) -> Result<(), SessionError> {
        if self.input.len() + bytes.len() > MAX_PENDING_INPUT {
            return Err(SessionError::InputTooLarge);
        }
        self.input.extend_from_slice(bytes);
        self.process(now, objects)
    }

    /// Processes what is buffered (call again after draining output). Each byte goes to the
    /// decoder once: it keeps its place in an unfinished message across calls.
    pub fn process(&mut self, now: UnixTime, objects: &Objects) -> Result<(), SessionError> {
        let mut consumed = 0;
        let result = loop {
            if self.output.len() > MAX_PENDING_OUTPUT {
                break Ok(());
            }
            let rest = &self.input[consumed..];
            match &mut self.state {
                State::Intro => match Intro::decode(rest) {
                    Ok(Some(intro)) => {
                        consumed += INTRO_LEN;
                        self.state =
                            State::Open(MessageDecoder::new(intro.header_size, MAX_MESSAGE));
                    }
                    Ok(None) => break Ok(()),
                    Err(error) => break Err(error.into()),
                },
                State::Open(decoder) => match decoder.decode(rest) {
                    Ok((taken, Some(decoded))) => {
                        consumed += taken;
                        if let Err(error) =
                            self.handle_message(now, decoded.message, &decoded.signed, objects)
                        {
                            break Err(error);
                        }
                    }
                    Ok((taken, None)) => {
                        consumed += taken;
                        break Ok(());
                    }
                    Err(error) => break Err(error.into()),
                },
            }
        };
        self.input.drain(..consumed);
        if self.input.capacity() > MAX_MESSAGE && self.input.len() < MAX_MESSAGE / 2 {
            self.input.shrink_to(MAX_MESSAGE / 2);
        }
        result
    }

    /// Bytes of the unfinished message the decoder holds plus bytes not yet decoded.
    pub fn buffered_input(&self) -> usize {
        let decoding = match &self.state {
            State::Intro => 0,
            State::Open(decoder) => decoder.buffered(),
        };
        self.input.len() + decoding
    }

    /// Bytes to write; the driver writes them all before calling again.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        (!self.output.is_empty()).then(|| std::mem::take(&mut self.output))
    }

    fn next_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    fn handle_message(
        &mut self,
        now: UnixTime,
        request: Message,
        signed: &[u8],
        objects: &Objects,
    ) -> Result<(), SessionError> {
        let header = request.header;
        // §5 step 1: authentication. An authid we never opened closes the connection.
        let signer = if header.authid != 0 {
            let Some((_, key)) = self
                .authenticators
                .iter()
                .find(|(handle, _)| *handle == header.authid)
            else {
                return Err(SessionError::UnknownAuthenticator(header.authid));
            };
            let valid =
                header.authlen as usize == SIGNATURE_LEN && key.verify(signed, &request.signature);
            if !valid {
                // §6.4: a bad signature gets an unsigned STATUS with authid 0.
                self.send_status(header.id, None, Status::bare(ResultCode::INVALIDKEY));
                return Ok(());
            }
            Some((header.authid, key.clone()))
        } else {
            None
        };
        if header.rid != 0 {
            return Err(SessionError::UnexpectedResponse(header.rid));
        }
        let kind = request
            .message_value("type")
            .map(|value| value.value.clone());
        let opens_authenticator =
            header.op == Opcode::OPEN && kind.as_deref() == Some(b"authenticator".as_slice());
        if signer.is_none() && objects.config().omapi_key.is_some() && !opens_authenticator {
            self.send_status(
                header.id,
                None,
                Status::new(ResultCode::NOKEYS, "No authenticator on message"),
            );
            return Ok(());
        }
        let reply = match header.op {
            Opcode::OPEN if opens_authenticator => self.open_authenticator(&request, objects),
            Opcode::OPEN => open(now, &request, kind.as_deref(), objects),
            Opcode::REFRESH => refresh(header.handle, objects),
            Opcode::UPDATE => objects
                .update(header.handle, &request.object_values, now)
                .map(|()| Reply::Status(Status::bare(ResultCode::SUCCESS)))
                .unwrap_or_else(Reply::Status),
            Opcode::DELETE => objects
                .remove(header.handle)
                .map(|()| Reply::Status(Status::bare(ResultCode::SUCCESS)))
                .unwrap_or_else(Reply::Status),
            Opcode::NOTIFY => Reply::Status(Status::new(
                ResultCode::NOTIMPLEMENTED,
                "notify not implemented yet",
            )),
            // §5 step 7: a STATUS answers nothing we sent.
            _ => return Err(SessionError::UnexpectedResponse(header.id)),
        };
        match reply {
            Reply::Object { handle, values } => {
                let mut message = Message::new(Opcode::UPDATE, handle, self.next_id(), header.id);
                message.object_values = values;
                self.send(message, signer.as_ref());
            }
            Reply::Status(status) => self.send_status(header.id, signer.as_ref(), status),
        }
        Ok(())
    }

    /// docs/spec/omapi.md §6.2: select a configured key by name and algorithm.
    fn open_authenticator(&mut self, request: &Message, objects: &Objects) -> Reply {
        let name = find(&request.object_values, "name").map(|value| value.value.as_slice());
        let algorithm =
            find(&request.object_values, "algorithm").map(|value| value.value.as_slice());
        let config = objects.config();
        let key = name.and_then(|name| {
            config
                .keys
                .iter()
                .filter_map(Authenticator::from_key)
                .find(|key| key.matches(name, algorithm))
        });
        let Some(key) = key else {
            return Reply::Status(Status::new(
                ResultCode::NOTFOUND,
                "no object matches specification",
            ));
        };
        if let Some(required) = &config.omapi_key {
            if !required.eq_ignore_ascii_case(&key.name) {
                return Reply::Status(Status::new(
                    ResultCode::INVALIDKEY,
                    "can't select authenticator",
                ));
            }
        }
        let handle = objects.handle_of(ObjectRef::Authenticator(key.name.to_ascii_lowercase()));
        let values = vec![
            Value::new("name", key.name.as_bytes().to_vec()),
            Value::new("algorithm", key.algorithm.as_bytes().to_vec()),
        ];
        if !self.authenticators.iter().any(|(open, _)| *open == handle) {
            self.authenticators.push((handle, key));
        }
        // Beyond ISC: the `omapi-key` authenticator is open, so the connection is no longer
        // subject to the pre-authentication deadline (an interactive omshell opens it at
        // `connect` and may then sit at its prompt for as long as the idle timeout allows).
        self.auth_deadline = None;
        Reply::Object { handle, values }
    }

    fn send_status(&mut self, rid: u32, signer: Option<&(u32, Authenticator)>, status: Status) {
        let mut message = Message::new(Opcode::STATUS, 0, self.next_id(), rid);
        message
            .message_values
            .push(Value::u32("result", status.result.0));
        if let Some(text) = status.message {
            message
                .message_values
                .push(Value::new("message", text.as_bytes().to_vec()));
        }
        self.send(message, signer);
    }

    fn send(&mut self, mut message: Message, signer: Option<&(u32, Authenticator)>) {
        if let Some((authid, key)) = signer {
            sign_message(&mut message, *authid, key);
        }
        message.encode(&mut self.output);
    }
}

enum Reply {
    Object { handle: u32, values: Vec<Value> },
    Status(Status),
}

fn flag(request: &Message, name: &str) -> bool {
    request
        .message_value(name)
        .and_then(Value::as_u32)
        .is_some_and(|value| value != 0)
}

/// docs/spec/omapi.md §5 step 3.
fn open(now: UnixTime, request: &Message, kind: Option<&[u8]>, objects: &Objects) -> Reply {
    let flags = OpenFlags {
        create: flag(request, "create"),
        exclusive: flag(request, "exclusive"),
        update: flag(request, "update"),
    };
    const KNOWN: &[&[u8]] = &[
        b"lease",
        b"host",
        b"group",
        b"control",
        b"failover-state",
        b"class",
        b"subclass",
        b"pool",
        b"subnet",
        b"shared-network",
    ];
    let kind = kind.filter(|kind| KNOWN.contains(kind));
    let Some(kind) = kind else {
        // No (or an unregistered) type: invalid with create, else a REFRESH of `handle`.
        if flags.create {
            return Reply::Status(Status::new(
                ResultCode::INVALIDARG,
                "type required on create",
            ));
        }
        return refresh(request.header.handle, objects);
    };
    match objects.open(kind, &request.object_values, flags, now) {
        Ok((handle, values)) => Reply::Object { handle, values },
        Err(status) => Reply::Status(status),
    }
}

fn refresh(handle: u32, objects: &Objects) -> Reply {
    match objects.refresh(handle) {
        Some(values) => Reply::Object { handle, values },
        None => Reply::Status(Status::new(ResultCode::NOTFOUND, "no matching handle")),
    }
}
