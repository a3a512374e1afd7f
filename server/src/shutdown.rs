//! The failover part of a graceful stop (SIGTERM), as ISC dhcpd does it
//! (`dhcp_io_shutdown_countdown`, docs/spec/failover.md §6.2 "Administrative"): every relationship in
//! NORMAL moves to SHUTDOWN, which its driver writes to the lease file and sends to the partner
//! as a STATE message; the partner answers by moving to PARTNER-DOWN (§6.3: NORMAL seeing
//! SHUTDOWN → PARTNER-DOWN) and takes over alone. We wait a few seconds for that, then write
//! RECOVER as the last state, so that the next start resynchronises with the partner instead of
//! sitting in SHUTDOWN.

use std::time::Duration;

use crate::failover::codes::ServerStateCode;
use crate::failover::control::FailoverControl;
use crate::failover::hooks::{FailoverHooks, RelationshipStatus};
use crate::failover::states::{peer_state_of, Role, State};
use crate::lease::file::FailoverStateRecord;
use crate::lease::record::UnixTime;

/// How long ISC-style shutdown waits for the partners to reach PARTNER-DOWN.
pub const PARTNER_DOWN_WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(100);

/// Moves every NORMAL relationship to SHUTDOWN, waits (at most [`PARTNER_DOWN_WAIT`]) for
/// their partners to acknowledge with PARTNER-DOWN, and returns the RECOVER records to write
/// last. A relationship whose driver does not confirm is logged and left as it is.
pub fn failover_shutdown(
    hooks: &FailoverHooks,
    now: impl Fn() -> UnixTime,
) -> Vec<FailoverStateRecord> {
    let control = FailoverControl::new(hooks);
    let mut shut = Vec::new();
    for status in hooks.relationships() {
        if !status.is_attached() || !matches!(status.state(), State::Normal) {
            continue;
        }
        match control.force_state(
            status.name.as_bytes(),
            u32::from(u8::from(ServerStateCode::Shutdown)),
        ) {
            Ok(()) => {
                tracing::info!(
                    "failover peer {}: SHUTDOWN sent to the partner",
                    status.name
                );
                shut.push(status.clone());
            }
            Err(error) => tracing::warn!(
                "failover peer {}: cannot enter SHUTDOWN: {error}",
                status.name
            ),
        }
    }
    if shut.is_empty() {
        return Vec::new();
    }
    let rounds = PARTNER_DOWN_WAIT.as_millis() / POLL.as_millis();
    for _ in 0..rounds {
        if shut
            .iter()
            .all(|status| status.partner() == Some(ServerStateCode::PartnerDown))
        {
            break;
        }
        std::thread::sleep(POLL);
    }
    let now = now();
    shut.iter()
        .filter_map(|status| {
            if status.partner() != Some(ServerStateCode::PartnerDown) {
                tracing::warn!(
                    "failover peer {}: the partner did not reach PARTNER-DOWN in {:?}",
                    status.name,
                    PARTNER_DOWN_WAIT
                );
            }
            recover_record(status, now)
        })
        .collect()
}

/// The state to leave in the lease file for a relationship stopped in SHUTDOWN: RECOVER, the
/// partner as last heard (ISC sets RECOVER once the shutdown countdown is done).
///
/// Its STOS follows ISC's special case (docs/spec/failover.md §6.2 "Entering any state"): SHUTDOWN →
/// RECOVER while the partner is PARTNER-DOWN and nothing is queued sets STOS = now − MCLT. The
/// partner took over with our acknowledgement and every update reached it, so the restart needs
/// no MCLT wait: without this, a restarted server sits in RECOVER-WAIT for a whole MCLT after
/// its partner's UPDDONE. Otherwise (the partner did not confirm, or updates were still
/// unacknowledged) STOS = now, and the restart waits out the MCLT as after a crash.
pub fn recover_record(status: &RelationshipStatus, now: UnixTime) -> Option<FailoverStateRecord> {
    if !matches!(status.state(), State::Shutdown) {
        return None;
    }
    let handed_over =
        status.partner() == Some(ServerStateCode::PartnerDown) && status.unacked() == 0;
    let stos = if handed_over {
        now.saturating_sub(status.mclt())
    } else {
        now
    };
    Some(FailoverStateRecord {
        peer: status.name.clone(),
        my_state: Some(peer_state_of(ServerStateCode::Recover)),
        my_time: Some(stos),
        partner_state: status.partner().map(peer_state_of),
        partner_time: Some(status.partner_stos()),
        // A secondary keeps the MCLT it learned (docs/spec/failover.md §12).
        mclt: (status.role == Role::Secondary).then(|| status.mclt()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::file::PeerState;

    fn hooks(role: &str) -> FailoverHooks {
        let text = format!(
            r#"
            failover peer "fo" {{
                {role}; address 10.0.0.1; port 647; peer address 10.0.0.2; peer port 647;
                max-response-delay 60; max-unacked-updates 10; {extra}
                load balance max seconds 3;
            }}
            subnet 10.0.0.0 netmask 255.255.255.0 {{
                pool {{ failover peer "fo"; range 10.0.0.10 10.0.0.20; }}
            }}
            "#,
            extra = if role == "primary" {
                "mclt 600; split 128;"
            } else {
                ""
            }
        );
        let config = crate::config::parse_str(&text, "dhcpd.conf").expect("config");
        FailoverHooks::new(&config)
    }

    #[test]
    fn a_relationship_stopped_in_shutdown_is_left_in_recover() {
        let hooks = hooks("secondary");
        let [status] = hooks.relationships() else {
            panic!("one relationship");
        };
        status.publish(
            State::Shutdown,
            1_000,
            Some(ServerStateCode::PartnerDown),
            600,
            None,
        );
        let record = recover_record(status, 2_000).expect("a record");
        assert_eq!(record.peer, "fo");
        assert_eq!(record.my_state, Some(PeerState::Recover));
        // Handed over (partner PARTNER-DOWN, nothing unacked): STOS = now − MCLT.
        assert_eq!(record.my_time, Some(1_400));
        assert_eq!(record.partner_state, Some(PeerState::PartnerDown));
        assert_eq!(record.mclt, Some(600), "a secondary keeps the learned MCLT");
    }

    #[test]
    fn without_the_partners_acknowledgement_the_restart_waits_out_the_mclt() {
        let hooks = hooks("secondary");
        let [status] = hooks.relationships() else {
            panic!("one relationship");
        };
        status.publish(
            State::Shutdown,
            1_000,
            Some(ServerStateCode::Normal),
            600,
            None,
        );
        let record = recover_record(status, 2_000).expect("a record");
        assert_eq!(record.my_time, Some(2_000));
        assert_eq!(record.partner_state, Some(PeerState::Normal));
        status.publish(
            State::Shutdown,
            1_000,
            Some(ServerStateCode::PartnerDown),
            600,
            None,
        );
        status.publish_counters(0, 3);
        let record = recover_record(status, 2_000).expect("a record");
        assert_eq!(
            record.my_time,
            Some(2_000),
            "updates were still unacknowledged"
        );
    }

    #[test]
    fn other_states_are_left_as_the_driver_wrote_them() {
        let hooks = hooks("primary");
        let [status] = hooks.relationships() else {
            panic!("one relationship");
        };
        status.publish(
            State::Normal,
            1_000,
            Some(ServerStateCode::Normal),
            600,
            None,
        );
        assert_eq!(recover_record(status, 2_000), None);
    }

    #[test]
    fn without_running_drivers_nothing_is_sent_or_waited_for() {
        // Unattached relationships (no driver): shutdown must return at once.
        let hooks = hooks("primary");
        assert!(failover_shutdown(&hooks, || 2_000).is_empty());
    }
}
