//! A command for one relationship's failover driver and its outcome: the values that travel
//! between the operator's side ([`super::control`]) and the driver's channel in the hooks
//! ([`super::hooks`]), in their own module so that those two do not depend on each other.

use std::sync::mpsc::SyncSender;
use std::time::Duration;

use super::codes::ServerStateCode;

/// How long the caller waits for the driver to apply and persist a command. The driver may be
/// waiting on an fsync of the lease log; past this the command still takes effect.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// A command for one relationship's driver.
#[derive(Debug)]
pub struct Command {
    /// The state to force (never STARTUP, never an unknown code: `control::FailoverControl` checks).
    pub state: ServerStateCode,
    /// Where the driver reports the outcome, once the state record is durable.
    pub done: SyncSender<Result<(), CommandError>>,
}

/// Why a command was not carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("no failover relationship named so")]
    UnknownRelationship,
    #[error("state code {0} cannot be forced")]
    InvalidState(u32),
    #[error("no failover driver is running for this relationship")]
    NotRunning,
    #[error("the failover driver did not confirm within {COMMAND_TIMEOUT:?}")]
    TimedOut,
    #[error("the failover driver has too many commands waiting")]
    Busy,
    #[error("the new state could not be written to the lease file")]
    NotPersisted,
}
