//! The OMAPI `failover-state` object (docs/spec/omapi.md §8.5, ISC `dhcp_failover_state_lookup`,
//! `_get_value`, `_stuff_values`, `_set_value` in server/failover.c) over the running failover
//! drivers: attributes read from the state each driver publishes ([`super::hooks`]) and the
//! configuration, `local-state` written through [`super::control`].

use std::net::Ipv4Addr;

use super::codes::ServerStateCode;
use super::control::{CommandError, FailoverControl};
use super::hooks::FailoverHooks;
use super::states::Role;
use crate::config::model::{Config, FailoverPeerConfig};
use crate::omapi::objects::FailoverStates;
use crate::omapi::result::ResultCode;
use crate::omapi::wire::Value;

/// Every configured relationship as a `failover-state` object.
#[derive(Clone, Debug)]
pub struct FailoverStateObjects {
    peers: Vec<FailoverPeerConfig>,
    control: FailoverControl,
}

impl FailoverStateObjects {
    pub fn new(config: &Config, hooks: &FailoverHooks) -> Self {
        Self {
            peers: config.failover_peers.clone(),
            control: FailoverControl::new(hooks),
        }
    }
}

/// An IPv4 address as 4 bytes. ISC publishes 8 bytes of its C pointer here (a bug, docs/spec/failover.md
/// §14.22: "do not copy"); the address itself is what a tool can use.
fn address_value(name: &str, address: Option<Ipv4Addr>) -> Value {
    Value::new(
        name,
        address.unwrap_or(Ipv4Addr::UNSPECIFIED).octets().to_vec(),
    )
}

impl FailoverStates for FailoverStateObjects {
    /// ISC's `dhcp_failover_state_stuff_values`, names and order of docs/spec/omapi.md §8.5.
    fn lookup(&self, name: &[u8]) -> Option<Vec<Value>> {
        let status = self.control.relationship(name)?;
        let peer = self.peers.iter().find(|peer| peer.name == status.name)?;
        // In STARTUP the published code is 1 (ISC's `me.state` is startup then too).
        let local_state = status.state().code();
        let partner_state = status.partner().unwrap_or(ServerStateCode::UnknownState);
        let mut values = vec![
            Value::new("name", peer.name.as_bytes().to_vec()),
            address_value("partner-address", peer.peer_address),
            Value::u32("partner-port", u32::from(peer.peer_port)),
            address_value("local-address", peer.address),
            Value::u32("local-port", u32::from(peer.port)),
            Value::u32("max-outstanding-updates", peer.max_unacked_updates),
            Value::u32("mclt", status.mclt()),
            Value::u32("load-balance-max-secs", peer.load_balance_max_seconds),
        ];
        // Only when an HBA is known (a secondary learns it at CONNECT, §11.1).
        if let Some(hba) = status.hba() {
            values.push(Value::new("load-balance-hba", hba.to_vec()));
        }
        values.extend([
            Value::u32("partner-state", u32::from(u8::from(partner_state))),
            Value::u32("local-state", u32::from(u8::from(local_state))),
            Value::u32("partner-stos", status.partner_stos()),
            Value::u32("local-stos", status.stos()),
            Value::u32(
                "hierarchy",
                match status.role {
                    Role::Primary => 0,
                    Role::Secondary => 1,
                },
            ),
            // ISC 4.4 never fills these three in (docs/spec/omapi.md §8.5).
            Value::u32("last-packet-sent", 0),
            Value::u32("last-timestamp-received", 0),
            Value::u32("skew", 0),
            Value::u32("max-response-delay", peer.max_response_delay),
            Value::u32("cur-unacked-updates", status.unacked()),
        ]);
        Some(values)
    }

    /// `set local-state = N` + `update`: ISC's `dhcp_failover_set_state` with any state number
    /// (docs/spec/failover.md §6.2 "Administrative"), e.g. 4 = PARTNER-DOWN.
    fn set_local_state(&self, name: &[u8], state: u32) -> Result<(), ResultCode> {
        self.control
            .force_state(name, state)
            .map_err(|error| match error {
                CommandError::UnknownRelationship => ResultCode::NOTFOUND,
                CommandError::InvalidState(_) => ResultCode::INVALIDARG,
                CommandError::TimedOut | CommandError::Busy => ResultCode::TIMEDOUT,
                CommandError::NotRunning | CommandError::NotPersisted => ResultCode::FAILURE,
            })
    }
}

#[cfg(test)]
mod tests;
