//! What the lease-file reader ([`super::parse`]), its fast path ([`super::fast`]) and the
//! writer ([`super::write`]) share of dhcpd.leases' grammar (docs/spec/dhcpd-conf.md §8): the
//! name tables and the defaults a lease statement gets at its end. Its own module so that the
//! three depend on it, not on each other in a cycle.

use crate::lease::record::{BindingState, Lease};

/// Hardware type names (docs/spec/dhcpd-conf.md §3): ARP types with a name, `unknown-N` otherwise.
pub(crate) const HARDWARE_TYPES: [(u8, &str); 4] = [
    (1, "ethernet"),
    (6, "token-ring"),
    (8, "fddi"),
    (32, "infiniband"),
];

/// Relay agent sub-options by name (RFC 3046, ISC `agent_options`).
pub(crate) const AGENT_OPTIONS: [(u8, &str); 6] = [
    (1, "circuit-id"),
    (2, "remote-id"),
    (3, "agent-id"),
    (4, "DOCSIS-device-class"),
    (5, "link-selection"),
    (6, "subscriber-id"),
];

/// What a lease statement saw, for the defaults applied at its end (`parse_lease_declaration`).
#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) binding_state: bool,
    pub(crate) next_binding_state: bool,
    pub(crate) rewind_binding_state: bool,
    pub(crate) tstp: bool,
}

/// Defaults of `parse_lease_declaration` (§8.4) for what the block did not say.
pub(crate) fn finish_lease(lease: &mut Lease, seen: &Seen) {
    // Defaults of `parse_lease_declaration` (§8.4). Without a binding state the lease is
    // active while it has an end; the store's expiry run settles it against the clock.
    if !seen.binding_state {
        // Then `next binding state` stays free, as `Lease::free` has it.
        lease.binding_state = if lease.ends != 0 {
            BindingState::Active
        } else {
            BindingState::Free
        };
    } else if !seen.next_binding_state {
        lease.next_binding_state = lease.binding_state;
    }
    if !seen.rewind_binding_state {
        lease.rewind_binding_state = lease.binding_state;
    }
    if !seen.tstp {
        lease.tstp = lease.ends;
    }
}
