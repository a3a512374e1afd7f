//! ISC leases as Kea's lease JSON and back (sans-IO).
//!
//! The mapping, documented in README "JSON control API (Kea commands)":
//! - `state`: ACTIVE is 0 (default), ABANDONED 1 (declined: ISC abandons a declined address),
//!   EXPIRED and RELEASED 2 (expired-reclaimed). FREE, BACKUP and RESET records are no lease in
//!   Kea's sense (the address is available): `lease4-get` does not find them.
//! - `subnet-id`: ISC has no subnet ids; a subnet's id is its place among the `subnet`
//!   declarations of dhcpd.conf, from 1 (0 for an address in no subnet). Adding or removing a
//!   subnet before another renumbers it.
//! - `cltt` is the lease's `cltt` (its `starts` when the file has none); `valid-lft` is the end
//!   the client was told minus `cltt` (4294967295 for `ends never`), so that Kea's
//!   `expire = cltt + valid-lft` is ISC's `ends`.
//! - `fqdn-fwd`/`fqdn-rev`: whether the lease holds ISC's `ddns-fwd-name`/`ddns-rev-name`
//!   (DNS was updated for it); `hostname`: the `client-hostname`.
//! - `user-context.isc`: ISC's binding state by name and the lease's `set` variables.

use std::net::Ipv4Addr;

use serde_json::{json, Map, Value};

use super::answer::Answer;
use super::request::LeaseArguments;
use crate::config::model::Config;
use crate::lease::record::{flags, BindingState, Lease, UnixTime, NEVER};

/// ISC's default `default-lease-time` (dhcpd.conf(5)): the lifetime of a lease added without
/// `valid-lft` when no scope of its subnet sets one.
pub const DEFAULT_LEASE_TIME: u32 = 43_200;

/// Kea's `state` of an ISC binding state; `None` for a record that is no lease in Kea's sense.
pub fn kea_state(state: BindingState) -> Option<u8> {
    match state {
        BindingState::Active => Some(0),
        BindingState::Abandoned => Some(1),
        BindingState::Expired | BindingState::Released => Some(2),
        BindingState::Free | BindingState::Backup | BindingState::Reset => None,
    }
}

/// Whether the API shows `lease` (Kea's lease back end would hold it).
pub fn is_listed(lease: &Lease) -> bool {
    kea_state(lease.binding_state).is_some()
}

/// The subnet id of `address`: its subnet's place in dhcpd.conf from 1, 0 for none.
pub fn subnet_id(config: &Config, address: Ipv4Addr) -> u32 {
    config.subnet_for(address).map_or(0, |subnet| subnet.0 + 1)
}

/// Whether subnet id `id` exists.
pub fn subnet_exists(config: &Config, id: u32) -> bool {
    id >= 1 && (id as usize) <= config.subnets.len()
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The lease as Kea's `lease4-get` shows it.
pub fn to_json(config: &Config, lease: &Lease) -> Value {
    let cltt = if lease.cltt != 0 {
        lease.cltt
    } else {
        lease.starts
    };
    let ends = crate::engine::fast_path::told_end(lease);
    let valid_lifetime = if ends == NEVER {
        u32::MAX
    } else {
        ends.saturating_sub(cltt)
    };
    let variable = |name: &str| {
        lease
            .extra
            .as_ref()
            .is_some_and(|extra| extra.variables.iter().any(|(known, _)| known == name))
    };
    let mut map = Map::new();
    map.insert("ip-address".into(), json!(lease.address.to_string()));
    map.insert(
        "hw-address".into(),
        json!(lease
            .hardware
            .as_ref()
            .map_or(String::new(), |hardware| colon_hex(hardware.address()))),
    );
    if let Some(uid) = lease.uid() {
        map.insert("client-id".into(), json!(colon_hex(uid)));
    }
    map.insert("valid-lft".into(), json!(valid_lifetime));
    map.insert("cltt".into(), json!(cltt));
    map.insert("subnet-id".into(), json!(subnet_id(config, lease.address)));
    map.insert("fqdn-fwd".into(), json!(variable("ddns-fwd-name")));
    map.insert("fqdn-rev".into(), json!(variable("ddns-rev-name")));
    map.insert(
        "hostname".into(),
        json!(lease.client_hostname().unwrap_or_default()),
    );
    map.insert(
        "state".into(),
        json!(kea_state(lease.binding_state).unwrap_or(0)),
    );
    let mut isc = Map::new();
    isc.insert("binding-state".into(), json!(lease.binding_state.as_str()));
    if let Some(extra) = lease
        .extra
        .as_ref()
        .filter(|extra| !extra.variables.is_empty())
    {
        let variables: Map<String, Value> = extra
            .variables
            .iter()
            .map(|(name, text)| (name.clone(), json!(text)))
            .collect();
        isc.insert("variables".into(), Value::Object(variables));
    }
    map.insert("user-context".into(), json!({ "isc": isc }));
    Value::Object(map)
}

/// How a lease is given back (`lease4-del`, `lease4-wipe`, state 2): as ISC's `release_lease`
/// leaves it — ended now, FREE, or RELEASED in a failover pool (free once the partner
/// acknowledges, docs/spec/failover.md §8.2). A FREE record drops the client's identity, since
/// the lease is deleted in Kea's sense; a RELEASED one keeps the hardware address and client
/// identifier, as ISC's release does: the partner refuses a RELEASED BNDUPD without a
/// client-hardware-address ("BNDUPD without CHADDR", reject reason 3, docs/spec/failover.md
/// §7.3 step 4), and MAC address affinity (§7.2, §7.3) hashes them when the lease returns to
/// FREE.
pub fn given_back(mut lease: Lease, failover_pool: bool, now: UnixTime) -> Lease {
    // Not a lease, or given back already (by the API or by the client) and waiting for the
    // partner's ack.
    let waiting = failover_pool && lease.binding_state == BindingState::Released;
    if !is_listed(&lease) || waiting {
        return lease;
    }
    lease.ends = now;
    lease.flags &= !flags::HORIZON;
    if failover_pool {
        lease.binding_state = BindingState::Released;
        lease.next_binding_state = BindingState::Free;
        lease.tstp = now;
    } else {
        lease.binding_state = BindingState::Free;
        lease.next_binding_state = BindingState::Free;
        lease.rewind_binding_state = BindingState::Free;
        lease.hardware = None;
        lease.set_uid(None);
    }
    lease.set_client_hostname(None);
    if let Some(extra) = lease.extra.as_mut() {
        extra.agent_options.clear();
        // The `ddns-*` names stay until the DNS removal they drive is done (`crate::ddns`).
        extra
            .variables
            .retain(|(name, _)| name.starts_with("ddns-"));
    }
    lease.shrink_extra();
    lease
}

/// The lease `lease4-add` or `lease4-update` writes at `address`, over `existing` (the store's
/// record, if any). `default_lifetime` is the subnet's `default-lease-time`.
pub fn written(
    args: &LeaseArguments,
    address: Ipv4Addr,
    existing: Option<&Lease>,
    default_lifetime: u32,
    failover_pool: bool,
    now: UnixTime,
) -> Result<Lease, Answer> {
    let mut base = existing.cloned().unwrap_or_else(|| Lease::free(address));
    if args.state == Some(2) {
        // Kea's expired-reclaimed: the address is given back as `lease4-del` does.
        base.binding_state = BindingState::Active;
        return Ok(given_back(base, failover_pool, now));
    }
    let mut lease = base;
    let listed_before = existing.is_some_and(is_listed);
    let lifetime = args.valid_lifetime.unwrap_or_else(|| {
        existing
            .filter(|_| listed_before)
            .map(|lease| {
                crate::engine::fast_path::told_end(lease).saturating_sub(if lease.cltt != 0 {
                    lease.cltt
                } else {
                    lease.starts
                })
            })
            .filter(|lifetime| *lifetime > 0)
            .unwrap_or(default_lifetime)
    });
    let cltt = match (args.cltt, args.expire) {
        (Some(cltt), _) => cltt,
        (None, Some(expire)) => {
            if lifetime == u32::MAX {
                return Err(Answer::error(
                    "'expire' cannot be combined with an infinite 'valid-lft'",
                ));
            }
            expire.checked_sub(lifetime).ok_or_else(|| {
                Answer::error("expiration time must be greater than valid lifetime")
            })?
        }
        (None, None) => now,
    };
    lease.cltt = cltt;
    lease.starts = cltt;
    lease.ends = if lifetime == u32::MAX {
        NEVER
    } else {
        cltt.saturating_add(lifetime).min(NEVER - 1)
    };
    lease.flags &= !flags::HORIZON;
    let state = match args.state {
        Some(1) => BindingState::Abandoned,
        _ => BindingState::Active,
    };
    lease.binding_state = state;
    // As OMAPI's `set state` (`omapi::objects`): an ACTIVE lease becomes FREE at its end.
    lease.next_binding_state = match state {
        BindingState::Active => BindingState::Free,
        other => other,
    };
    let same_client = lease.hardware == args.hardware && lease.uid() == args.client_id.as_deref();
    if !same_client {
        // What belonged to the record's previous client goes: its relay agent options, its
        // `on` statements, its class billing and its variables — but the `ddns-*` ones, which
        // name DNS records still to be removed (`crate::ddns`).
        if let Some(extra) = lease.extra.as_mut() {
            extra.agent_options.clear();
            extra.verbatim.clear();
            extra.billing = None;
            extra
                .variables
                .retain(|(name, _)| name.starts_with("ddns-"));
        }
        lease.shrink_extra();
    }
    lease.hardware = args.hardware;
    lease.set_uid(args.client_id.as_deref());
    lease.set_client_hostname(args.hostname.as_deref());
    if failover_pool {
        // The potential expiration the partner is told (docs/spec/failover.md §7.1): the end
        // the operator set.
        lease.tstp = lease.ends;
    }
    Ok(lease)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::record::Hardware;

    fn config() -> Config {
        crate::config::parse_str(
            "subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.20; }\n\
             subnet 10.0.1.0 netmask 255.255.255.0 { }\n",
            "test.conf",
        )
        .expect("parses")
    }

    fn active(address: Ipv4Addr) -> Lease {
        let mut lease = Lease::free(address);
        lease.binding_state = BindingState::Active;
        lease.starts = 1_000;
        lease.cltt = 1_000;
        lease.ends = 4_600;
        lease.hardware = Hardware::new(1, &[1, 2, 3, 4, 5, 6]);
        lease.set_uid(Some(&[1, 1, 2, 3, 4, 5, 6]));
        lease.set_client_hostname(Some("printer"));
        lease
    }

    #[test]
    fn an_active_lease_shows_as_kea_writes_it() {
        let config = config();
        let json = to_json(&config, &active(Ipv4Addr::new(10, 0, 1, 5)));
        assert_eq!(json["ip-address"], "10.0.1.5");
        assert_eq!(json["hw-address"], "01:02:03:04:05:06");
        assert_eq!(json["client-id"], "01:01:02:03:04:05:06");
        assert_eq!(json["valid-lft"], 3_600);
        assert_eq!(json["cltt"], 1_000);
        assert_eq!(json["subnet-id"], 2);
        assert_eq!(json["state"], 0);
        assert_eq!(json["hostname"], "printer");
        assert_eq!(json["fqdn-fwd"], false);
        assert_eq!(json["user-context"]["isc"]["binding-state"], "active");
    }

    #[test]
    fn states_map_to_keas_and_free_records_are_no_leases() {
        assert_eq!(kea_state(BindingState::Active), Some(0));
        assert_eq!(kea_state(BindingState::Abandoned), Some(1));
        assert_eq!(kea_state(BindingState::Expired), Some(2));
        assert_eq!(kea_state(BindingState::Released), Some(2));
        assert_eq!(kea_state(BindingState::Free), None);
        assert_eq!(kea_state(BindingState::Backup), None);
    }

    #[test]
    fn a_written_lease_ends_at_cltt_plus_valid_lifetime() {
        let args = LeaseArguments {
            address: Some(Ipv4Addr::new(10, 0, 0, 12)),
            hardware: Hardware::new(1, &[9, 9, 9, 9, 9, 9]),
            valid_lifetime: Some(600),
            ..LeaseArguments::default()
        };
        let lease = written(
            &args,
            Ipv4Addr::new(10, 0, 0, 12),
            None,
            43_200,
            false,
            5_000,
        )
        .expect("written");
        assert_eq!(
            (lease.starts, lease.cltt, lease.ends),
            (5_000, 5_000, 5_600)
        );
        assert_eq!(lease.binding_state, BindingState::Active);
        assert_eq!(lease.next_binding_state, BindingState::Free);
        let expire = LeaseArguments {
            expire: Some(9_000),
            ..args
        };
        let lease = written(
            &expire,
            Ipv4Addr::new(10, 0, 0, 12),
            None,
            43_200,
            false,
            5_000,
        )
        .expect("written");
        assert_eq!((lease.cltt, lease.ends), (8_400, 9_000));
    }

    #[test]
    fn a_record_written_for_another_client_forgets_the_previous_ones_bindings() {
        let address = Ipv4Addr::new(10, 0, 0, 12);
        let mut previous = active(address);
        previous.extra_mut().variables = vec![
            ("ddns-fwd-name".into(), "\"old.example.\"".into()),
            ("note".into(), "\"x\"".into()),
        ];
        previous.extra_mut().agent_options = vec![(1, b"port-1".to_vec())];
        let args = LeaseArguments {
            address: Some(address),
            hardware: Hardware::new(1, &[9, 9, 9, 9, 9, 9]),
            ..LeaseArguments::default()
        };
        let lease = written(&args, address, Some(&previous), 600, false, 5_000).expect("written");
        let extra = lease.extra.as_deref().expect("ddns variable kept");
        assert_eq!(extra.variables.len(), 1);
        assert_eq!(extra.variables[0].0, "ddns-fwd-name");
        assert!(extra.agent_options.is_empty());
        assert_eq!(lease.client_hostname(), None);
    }

    #[test]
    fn a_lease_given_back_is_free_or_released_under_failover() {
        let lease = active(Ipv4Addr::new(10, 0, 0, 12));
        let free = given_back(lease.clone(), false, 2_000);
        assert_eq!(free.binding_state, BindingState::Free);
        assert_eq!(free.ends, 2_000);
        assert!(free.hardware.is_none() && free.uid().is_none());
        let released = given_back(lease.clone(), true, 2_000);
        assert_eq!(released.binding_state, BindingState::Released);
        assert_eq!(released.next_binding_state, BindingState::Free);
        assert_eq!(released.ends, 2_000);
        // The partner's BNDUPD for RELEASED needs the chaddr (ISC refuses it without).
        assert_eq!(released.hardware, lease.hardware);
        assert_eq!(released.uid(), lease.uid());
        assert_eq!(released.client_hostname(), None);
        // Given back again while the partner has not acked: unchanged.
        assert_eq!(given_back(released.clone(), true, 3_000), released);
    }
}
