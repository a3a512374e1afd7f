//! Operator commands into the running failover drivers (docs/spec/failover.md §6.2 "Administrative"):
//! forcing the local state, e.g. PARTNER-DOWN after the operator has made sure the partner is
//! really down. The OMAPI `failover-state` object (docs/spec/omapi.md §8.5) is the caller.
//!
//! A command travels over the relationship's channel to its driver, which applies it with
//! [`super::machine::Machine::handle_command`], writes the new state record durably (as for any
//! state change, §6.2) and only then answers, so that a successful `update` in omshell means the
//! state is in the lease file.

use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::Arc;

use super::codes::ServerStateCode;
use super::hooks::{FailoverHooks, RelationshipStatus};

pub use super::command::{Command, CommandError, COMMAND_TIMEOUT};

/// The command side of every relationship (cheap to clone; shares the hooks' statuses).
#[derive(Clone, Debug, Default)]
pub struct FailoverControl {
    relationships: Vec<Arc<RelationshipStatus>>,
}

impl FailoverControl {
    pub fn new(hooks: &FailoverHooks) -> Self {
        Self {
            relationships: hooks.relationships().to_vec(),
        }
    }

    /// The relationship named `name` (exact bytes, as ISC's `dhcp_failover_state_lookup`).
    pub fn relationship(&self, name: &[u8]) -> Option<&Arc<RelationshipStatus>> {
        self.relationships
            .iter()
            .find(|status| status.name.as_bytes() == name)
    }

    /// Forces relationship `name` into the state with wire code `code` (docs/spec/failover.md §6.1) and
    /// waits (at most [`COMMAND_TIMEOUT`]) until its driver has applied and persisted it.
    /// ISC accepts any state number here (§6.2 "Administrative"); STARTUP and codes that name
    /// no state have no meaning to force and are refused.
    pub fn force_state(&self, name: &[u8], code: u32) -> Result<(), CommandError> {
        let status = self
            .relationship(name)
            .ok_or(CommandError::UnknownRelationship)?;
        let state = u8::try_from(code)
            .map(ServerStateCode::from)
            .ok()
            .filter(|state| {
                ServerStateCode::ALL.contains(state) && *state != ServerStateCode::Startup
            })
            .ok_or(CommandError::InvalidState(code))?;
        let commands = status.commands().ok_or(CommandError::NotRunning)?;
        let (done, outcome) = sync_channel(1);
        commands
            .try_send(Command { state, done })
            .map_err(|error| match error {
                tokio::sync::mpsc::error::TrySendError::Full(_) => CommandError::Busy,
                tokio::sync::mpsc::error::TrySendError::Closed(_) => CommandError::NotRunning,
            })?;
        match outcome.recv_timeout(COMMAND_TIMEOUT) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(CommandError::TimedOut),
            Err(RecvTimeoutError::Disconnected) => Err(CommandError::NotRunning),
        }
    }
}
