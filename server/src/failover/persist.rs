//! The failover state in dhcpd.leases (docs/spec/failover.md §12): a [`FailoverStateRecord`] from a
//! running machine, and the saved states a restarted machine resumes from.

use super::codes::ServerStateCode;
use super::machine::Machine;
use super::states::{code_of, peer_state_of, Role, State};
use crate::lease::file::FailoverStateRecord;
use crate::lease::record::UnixTime;

/// The record ISC writes on every state change (`write_failover_state`): `my state` (the saved
/// state while in STARTUP, §12), `partner state`, and `mclt` from a secondary only.
pub fn state_record(name: &str, machine: &Machine) -> FailoverStateRecord {
    let my_state = match machine.state() {
        State::Startup { saved, .. } => saved,
        other => other.code(),
    };
    let partner = machine.partner();
    FailoverStateRecord {
        peer: name.to_string(),
        my_state: Some(peer_state_of(my_state)),
        my_time: Some(machine.stos()),
        partner_state: Some(peer_state_of(
            partner.state.unwrap_or(ServerStateCode::UnknownState),
        )),
        partner_time: Some(partner.since),
        mclt: (machine.role() == Role::Secondary).then_some(machine.mclt()),
    }
}

/// What a restarted machine resumes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedFailoverState {
    pub my_state: Option<(ServerStateCode, UnixTime)>,
    pub partner_state: Option<(ServerStateCode, UnixTime)>,
    pub mclt: Option<u32>,
}

/// Reads the last record for `name` (the last block in the file wins, §12). A state without
/// `at DATE` holds since `now`.
pub fn saved_state<'a>(
    records: impl IntoIterator<Item = &'a FailoverStateRecord>,
    name: &str,
    now: UnixTime,
) -> SavedFailoverState {
    let last = records
        .into_iter()
        .filter(|record| record.peer == name)
        .last();
    let Some(record) = last else {
        return SavedFailoverState {
            my_state: None,
            partner_state: None,
            mclt: None,
        };
    };
    SavedFailoverState {
        my_state: record
            .my_state
            .map(|state| (code_of(state), record.my_time.unwrap_or(now))),
        partner_state: record
            .partner_state
            .map(|state| (code_of(state), record.partner_time.unwrap_or(now))),
        mclt: record.mclt,
    }
}
