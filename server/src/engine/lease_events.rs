//! The `on expiry` and `on release` statements a lease keeps from its DHCPACK (ISC
//! `lease->on_star`, dhcpd.conf(5) "EVENTS"): executing the scopes' statements at the DHCPACK
//! sets one body per event, the last `on` statement executed naming it; the lease keeps them
//! until the event (or the other one) happens, and the lease file holds them as ISC's
//! `write_lease` writes them (`on expiry { … }`, `on release { … }`, or `on expiry or release
//! { … }` when one statement named both), among the lease's `verbatim` statements.
//!
//! A body is found again by its text: the running configuration's `on` statement with the same
//! body text (after a reload or a restart too), else the text parsed on its own
//! ([`crate::config::parse_event_body`]), as ISC's lease file reader parses it.

use std::sync::Arc;

use crate::config::lexer::{tokenize, TokenKind};
use crate::config::model::{Config, EventStatement, LeaseEvents, ScopeId};
use crate::lease::file::write::render_tokens;
use crate::lease::record::{Lease, LeaseExtra, UnixTime};

use super::statements::{run_scope, Env, Executed, Run};

/// The bodies a lease keeps, by their text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Kept {
    pub expiry: Option<Arc<str>>,
    pub release: Option<Arc<str>>,
}

impl Kept {
    /// What `lease`'s record holds (its `on …` statements).
    pub fn of(lease: &Lease) -> Self {
        let mut kept = Kept::default();
        let Some(extra) = lease.extra.as_deref() else {
            return kept;
        };
        for statement in extra.verbatim.iter().filter(|text| text.starts_with("on ")) {
            let Some((events, body)) = read_statement(statement) else {
                continue;
            };
            let body: Arc<str> = body.into();
            if events.expiry {
                kept.expiry = Some(body.clone());
            }
            if events.release {
                kept.release = Some(body);
            }
        }
        kept
    }

    /// Replaces the `on …` statements of `lease`'s record with these.
    pub fn write_into(&self, lease: &mut Lease) {
        let has_any = self.expiry.is_some() || self.release.is_some();
        if !has_any
            && lease
                .extra
                .as_deref()
                .is_none_or(|extra| !extra.verbatim.iter().any(|text| text.starts_with("on ")))
        {
            return;
        }
        let extra = lease
            .extra
            .get_or_insert_with(|| Box::new(LeaseExtra::default()));
        extra.verbatim.retain(|text| !text.starts_with("on "));
        match (&self.expiry, &self.release) {
            (Some(expiry), Some(release)) if expiry == release => {
                extra.verbatim.push(statement("expiry or release", expiry));
            }
            (expiry, release) => {
                if let Some(body) = expiry {
                    extra.verbatim.push(statement("expiry", body));
                }
                if let Some(body) = release {
                    extra.verbatim.push(statement("release", body));
                }
            }
        }
        if extra.verbatim.is_empty()
            && extra.variables.is_empty()
            && extra.agent_options.is_empty()
            && extra.billing.is_none()
        {
            lease.extra = None;
        }
    }
}

fn statement(events: &str, body: &str) -> String {
    if body.is_empty() {
        format!("on {events} {{ }}")
    } else {
        format!("on {events} {{ {body} }}")
    }
}

/// The events and the body text of an `on` statement as the lease file holds it.
fn read_statement(text: &str) -> Option<(LeaseEvents, String)> {
    let tokens = tokenize(text.as_bytes(), 0).ok()?;
    let mut events = LeaseEvents::default();
    let mut index = 1;
    loop {
        let token = tokens.get(index)?;
        match &token.kind {
            TokenKind::Name(word) => match word.to_ascii_lowercase().as_str() {
                "expiry" => events.expiry = true,
                "release" => events.release = true,
                "commit" => events.commit = true,
                "or" => {}
                _ => return None,
            },
            TokenKind::Punct(b'|') => {}
            TokenKind::Punct(b'{') => break,
            _ => return None,
        }
        index += 1;
    }
    let close = tokens.iter().rposition(|token| token.is_punct(b'}'))?;
    let body = tokens.get(index + 1..close)?;
    Some((events, render_tokens(body)))
}

/// The bodies a lease keeps after a DHCPACK that executed the `on` statements `executed` (in
/// order): ISC `ack_lease` forgets the old ones only when the lease had ended (a renewal
/// keeps those no statement replaced), then each `on` statement executed replaces the body of
/// the events it names.
pub(crate) fn at_ack(
    existing: Option<&Lease>,
    now: UnixTime,
    executed: &[&EventStatement],
) -> Kept {
    let mut kept = match existing {
        Some(lease) if lease.ends > now => Kept::of(lease),
        _ => Kept::default(),
    };
    for statement in executed {
        // A body that spans an `include` has no text to keep.
        let Some(text) = &statement.text else {
            continue;
        };
        if statement.events.expiry {
            kept.expiry = Some(text.clone());
        }
        if statement.events.release {
            kept.release = Some(text.clone());
        }
    }
    kept
}

/// Variable changes of executed statements, in order (`None`: unset).
pub(crate) type VariableChanges = Vec<(String, Option<crate::config::expr::Value>)>;

/// Which kept body an event runs.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Event {
    Expiry,
    Release,
}

/// Runs the body `lease` keeps for `event`, with the variables and the request `view` shows,
/// and drops both kept bodies from the lease (ISC: a lease that expired is not released, a
/// released one does not expire). Returns what the body ran and its variable changes.
pub(crate) fn run(
    config: &Config,
    lease: &mut Lease,
    event: Event,
    view: &dyn crate::config::expr::PacketView,
) -> Option<(Executed, VariableChanges)> {
    let kept = Kept::of(lease);
    let body = match event {
        Event::Expiry => kept.expiry.clone(),
        Event::Release => kept.release.clone(),
    };
    if kept.expiry.is_none() && kept.release.is_none() {
        return None;
    }
    Kept::default().write_into(lease);
    let body = body?;
    match statement_of(config, &body) {
        Some(id) => {
            let env = Env::new(config, view);
            let mut run_state = Run::default();
            run_scope(config, id, &env, &mut run_state);
            env.drain_into(&mut run_state.executed);
            Some((run_state.executed, env.final_changes()))
        }
        None => {
            let (parsed, id) = crate::config::parse_event_body(&body)?;
            let env = Env::new(&parsed, view);
            let mut parsed_run = Run::default();
            run_scope(&parsed, id, &env, &mut parsed_run);
            env.drain_into(&mut parsed_run.executed);
            Some((parsed_run.executed, env.final_changes()))
        }
    }
}

/// The body of the configuration's `on` statement whose text is `body`.
fn statement_of(config: &Config, body: &str) -> Option<ScopeId> {
    config
        .scopes
        .iter()
        .flat_map(|scope| scope.events.iter())
        .find(|statement| statement.text.as_deref() == Some(body))
        .map(|statement| statement.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_read_back_as_written() {
        let kept = Kept {
            expiry: Some("set a = \"x\"; log (info, \"gone\");".into()),
            release: Some("set a = \"x\"; log (info, \"gone\");".into()),
        };
        let mut lease = Lease::free(std::net::Ipv4Addr::new(10, 0, 0, 1));
        kept.write_into(&mut lease);
        assert_eq!(
            lease.extra.as_ref().expect("extra").verbatim,
            vec!["on expiry or release { set a = \"x\"; log (info, \"gone\"); }".to_string()]
        );
        assert_eq!(Kept::of(&lease), kept);
        Kept::default().write_into(&mut lease);
        assert_eq!(lease.extra, None);
    }
}
