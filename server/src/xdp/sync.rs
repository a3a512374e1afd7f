//! Keeps the kernel's lease table and reply templates in step with userspace
//! (DESIGN.md "The fast path and its two bounds").
//!
//! Both paths agree by construction: a template is the userspace engine's own DHCPACK for a
//! renewal request of that client ([`prepare`]), and the kernel uses it only for a later request
//! whose options area is byte-for-byte the same (the fingerprint), from the same relay, with the
//! header fields the engine copies (xid, hops, flags, chaddr) patched in. Templates are shared
//! by every lease whose reply bytes are equal.
//!
//! Horizon rule: [`FastPath::publish`] takes the horizon as an argument, and the caller must
//! have made a lease record with `ends = horizon` durable (group commit) before calling it: the
//! kernel never promises more than what survives a crash.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use server_common::fastpath::{
    checksum_partial, options_fingerprint, LeaseKey, LeaseValue, Template, KEY_CLIENT_ID,
    KEY_HARDWARE, LEASE_ACTIVE, OPTIONS_OFFSET, TEMPLATE_MAX, TEMPLATE_OFFSET, TEMPLATE_SLOTS,
};

use super::bounds::{Bounded, FailoverBounds};
use super::maps::{FastPathMaps, MapsError};
use crate::config::model::Config;
use crate::engine::{Destination, Reply};
use crate::lease::record::{BindingState, Hardware, Lease, UnixTime};
use crate::lease::store::{lease_belongs_to, ClientKey};

/// Whether the store's `lease` backs a kernel entry for `key` up to `horizon`: the kernel may
/// only repeat an ACK the engine would still give, so the address must be ACTIVE for the same
/// client and end no earlier than the horizon the entry may extend to.
pub fn store_backs(lease: &Lease, key: &LeaseKey, horizon: UnixTime) -> bool {
    lease.binding_state == BindingState::Active
        && lease.ends >= horizon
        && kernel_client(key).is_some_and(|client| lease_belongs_to(lease, &client))
}

/// The store's client key for a kernel key (the same rule on both sides: option 61, else the
/// hardware address).
pub fn kernel_client(key: &LeaseKey) -> Option<ClientKey> {
    let bytes = key.bytes.get(..usize::from(key.len))?;
    match key.kind {
        KEY_CLIENT_ID => Some(ClientKey::ClientId(bytes.to_vec().into_boxed_slice())),
        KEY_HARDWARE => Hardware::new(key.htype, bytes).map(ClientKey::Hardware),
        _ => None,
    }
}

/// Why a renewal cannot be published for the kernel to repeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotEligible {
    #[error("not a DHCPREQUEST in RENEWING/REBINDING state (ciaddr set, no option 50/54)")]
    NotRenewal,
    #[error("not an Ethernet client (htype 1, hlen 6)")]
    NotEthernet,
    #[error("the client asked for a broadcast reply")]
    Broadcast,
    #[error("the reply is not routed to ciaddr or the relay")]
    Destination,
    #[error("the reply is larger than a template")]
    TooLarge,
    #[error("the reply has no finite lease time")]
    LeaseTime,
    #[error("the client key is longer than the kernel key")]
    KeyTooLong,
    #[error("the reply cannot be encoded")]
    Encode,
    #[error("the request payload is shorter than a BOOTP message with options")]
    Short,
    #[error(
        "the configuration makes replies depend on more than the options area (classes, \
         min-secs)"
    )]
    Configuration,
    #[error("the MCLT rule shortened the grant (docs/spec/failover.md §8.1)")]
    ShortenedGrant,
    #[error("the request or the reply uses option overload (RFC 2132 §9.3)")]
    Overloaded,
    #[error(
        "the ACK reused a young lease (dhcp-cache-threshold): its lease time is what was left"
    )]
    Reused,
}

/// A renewal ready for the kernel: its key, the lease-table value without the times, and the
/// reply template.
#[derive(Clone)]
pub struct Prepared {
    pub key: LeaseKey,
    pub address: u32,
    pub lease_time: u32,
    pub giaddr: u32,
    pub fingerprint: u64,
    /// The `dhcp-cache-threshold` in force for the lease (0 = off): a later renewal younger
    /// than that share of `lease_time` is passed up ([`cache_remaining`]).
    pub cache_threshold: u8,
    pub template: Template,
}

/// [`LeaseValue::cache_remaining`] of a lease granted `lease_time` seconds under `threshold`
/// percent: the engine reuses a lease aged at most `reuse_limit(lease_time, threshold)`
/// (`engine::lease_time::reuse`), that is, one with at least `lease_time − limit` seconds
/// left. Both sides compute the limit with the one function, so the kernel passes up exactly
/// the renewals the engine would not answer with the template.
pub fn cache_remaining(lease_time: u32, threshold: u8) -> u32 {
    if threshold == 0 {
        return server_common::fastpath::CACHE_OFF;
    }
    let limit = crate::engine::lease_time::reuse_limit(i64::from(lease_time), threshold);
    u32::try_from(i64::from(lease_time) - limit).unwrap_or(0)
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("key", &self.key)
            .field("lease_time", &self.lease_time)
            .field("template_len", &self.template.len)
            .finish()
    }
}

/// True when the configuration lets a reply depend only on what the fast path checks: no
/// classes (their expressions may read any header field), no `min-secs` (secs varies between
/// retransmissions), no executable statements (`if` conditions and option expressions may
/// read any part of the request; `log`, `set`, `execute` and `on commit` act at each reply;
/// DESIGN.md "How both paths agree"). Failover pools are allowed: the MCLT rule and the failover state
/// reach the kernel through the horizon ([`super::bounds`]). No `lease limit` either: a
/// renewal from a client no longer in the class its lease is billed to is billed anew, or not
/// answered when its classes are full (`engine::billing`), which the kernel cannot know (a
/// limit needs a class, so the first rule covers it; the second says why). No
/// `adaptive-lease-time-threshold` (1-99: the lease time depends on the pool's use), no
/// `infinite-is-reserved true` (the DHCPACK marks the lease reserved and logs a line). No
/// `local-address`: a renewal's DHCPACK then leaves from that address (`net::local_address`),
/// the kernel's from the server identifier. No `get-lease-hostnames true`: the name is looked
/// up again while the lease runs (`crate::reverse_names`) and a missing one logs a line. No
/// `agent` options: a DHCPACK's option 82 then comes from the configuration merged with what
/// the relay sent, or with nothing for a renewal past the relay
/// (`engine::encapsulation::relay_agent_chain`), and the lease's stashed sub-options change
/// with it, none of which the kernel's template repeats.
pub fn config_allows_fast_path(config: &Config) -> bool {
    config.classes.is_empty()
        && !config.billing_classes
        && crate::net::local_address::of(config).is_none()
        // The kernel's replies go to 255.255.255.255 or the client, not to
        // `limited-broadcast-address`.
        && config
            .scopes
            .first()
            .is_none_or(|global| global.limited_broadcast_address.is_none())
        && config.scopes.iter().all(|scope| {
            scope.min_secs.is_none()
                && scope.use_lease_addr_for_default_route != Some(true)
                && !scope.has_executable_statements()
                && !scope
                    .adaptive_lease_time_threshold
                    .is_some_and(|threshold| (1..100).contains(&threshold))
                && scope.infinite_is_reserved != Some(true)
                && scope.get_lease_hostnames != Some(true)
                && scope.space_options.iter().all(|option| {
                    matches!(option.value, crate::config::model::OptionValue::Constant(_))
                        && option.space != crate::config::options::OptionSpace::AGENT
                })
        })
}

/// Builds the kernel's copy of the engine's DHCPACK `reply` to `request` (raw UDP payload
/// `payload`). Checks every condition under which the kernel's rewrite of a later identical
/// request equals the engine's reply.
pub fn prepare(payload: &[u8], request: &Message, reply: &Reply) -> Result<Prepared, NotEligible> {
    let options = request.opts();
    let renewal = matches!(
        options.get(OptionCode::MessageType),
        Some(DhcpOption::MessageType(MessageType::Request))
    ) && !request.ciaddr().is_unspecified()
        && options.get(OptionCode::RequestedIpAddress).is_none()
        && options.get(OptionCode::ServerIdentifier).is_none();
    if !renewal || reply.message_type() != Some(MessageType::Ack) {
        return Err(NotEligible::NotRenewal);
    }
    let cache_threshold = reply.cache_threshold.ok_or(NotEligible::Reused)?;
    if u8::from(request.htype()) != 1 || request.hlen() != 6 {
        return Err(NotEligible::NotEthernet);
    }
    if request.flags().broadcast() || reply.header.flags().broadcast() {
        return Err(NotEligible::Broadcast);
    }
    let routed = match reply.destination {
        Destination::Unicast(address) => address == request.ciaddr(),
        Destination::Relay(giaddr) => giaddr == request.giaddr(),
        _ => false,
    };
    if !routed || reply.header.yiaddr() != request.ciaddr() {
        return Err(NotEligible::Destination);
    }
    if payload.len() < OPTIONS_OFFSET {
        return Err(NotEligible::Short);
    }
    // The kernel compares only the options area of later requests, so options a request keeps
    // in `file` or `sname` would go unseen; and an overloaded reply is not worth a template.
    // Both stay in userspace (a later request without option 52 differs in its options area
    // from one with it, so it never matches such a request's fingerprint either).
    if options.get(OptionCode::OptionOverload).is_some() || reply.layout.overload() != 0 {
        return Err(NotEligible::Overloaded);
    }
    let lease_time = match reply.lease_time() {
        Some(seconds) if seconds != u32::MAX => seconds,
        _ => return Err(NotEligible::LeaseTime),
    };
    let server_id = reply.server_identifier().ok_or(NotEligible::Destination)?;
    let key = match options.get(OptionCode::ClientIdentifier) {
        Some(DhcpOption::ClientIdentifier(id)) => LeaseKey::new(KEY_CLIENT_ID, 0, id),
        _ => {
            let chaddr = request.chaddr().get(..6).ok_or(NotEligible::NotEthernet)?;
            LeaseKey::new(KEY_HARDWARE, 1, chaddr)
        }
    }
    .ok_or(NotEligible::KeyTooLong)?;
    let bytes = reply.encode().map_err(|_| NotEligible::Encode)?;
    let body = bytes.get(TEMPLATE_OFFSET..).ok_or(NotEligible::Encode)?;
    if body.len() > TEMPLATE_MAX {
        return Err(NotEligible::TooLarge);
    }
    let mut template = Template::EMPTY;
    template.len = body.len() as u32;
    template.bytes[..body.len()].copy_from_slice(body);
    template.siaddr = u32::from_ne_bytes(reply.header.siaddr().octets());
    template.server_id = u32::from_ne_bytes(server_id.octets());
    template.checksum = checksum_partial(body);
    Ok(Prepared {
        key,
        address: u32::from_ne_bytes(request.ciaddr().octets()),
        lease_time,
        giaddr: u32::from_ne_bytes(request.giaddr().octets()),
        fingerprint: options_fingerprint(&payload[OPTIONS_OFFSET..]),
        cache_threshold,
        template,
    })
}

/// Identity of a template's content, for sharing.
type TemplateContent = (u32, u32, Vec<u8>);

/// Userspace's record of what is in the kernel maps.
pub struct FastPath<M> {
    maps: M,
    /// Template content → (index, leases using it).
    templates: HashMap<TemplateContent, (u32, usize)>,
    /// Lease key → the content of its template.
    lease_templates: HashMap<LeaseKey, TemplateContent>,
    /// Published address (network order, as in the maps) → its lease key: a change made by
    /// anyone but the engine's ACK (OMAPI, the partner, expiry) names an address, not a key.
    keys_by_address: HashMap<u32, LeaseKey>,
    /// Lease key → its published address (the other direction of `keys_by_address`).
    addresses_by_key: HashMap<LeaseKey, u32>,
    free_indices: Vec<u32>,
    next_index: u32,
    /// The published leases of failover pools and their bounds.
    pub failover: FailoverBounds,
}

impl<M: std::fmt::Debug> std::fmt::Debug for FastPath<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPath")
            .field("maps", &self.maps)
            .field("templates", &self.templates.len())
            .field("leases", &self.lease_templates.len())
            .finish()
    }
}

impl<M: FastPathMaps> FastPath<M> {
    pub fn new(maps: M) -> Self {
        Self {
            maps,
            templates: HashMap::new(),
            lease_templates: HashMap::new(),
            keys_by_address: HashMap::new(),
            addresses_by_key: HashMap::new(),
            free_indices: Vec::new(),
            next_index: 0,
            failover: FailoverBounds::default(),
        }
    }

    pub fn maps(&self) -> &M {
        &self.maps
    }

    pub fn maps_mut(&mut self) -> &mut M {
        &mut self.maps
    }

    /// Whether `key` has a lease in the kernel.
    pub fn is_published(&self, key: &LeaseKey) -> bool {
        self.lease_templates.contains_key(key)
    }

    /// The key the kernel answers renewals of `address` for, if any.
    pub fn key_at(&self, address: Ipv4Addr) -> Option<LeaseKey> {
        self.keys_by_address
            .get(&u32::from_ne_bytes(address.octets()))
            .copied()
    }

    /// The kernel's entry for `lease`'s address when the store's `lease` no longer backs it:
    /// the kernel may only repeat an ACK the engine would give, so its copy goes as soon as
    /// the address is not ACTIVE for the same client up to the published horizon (an OMAPI
    /// `set state`/`set ends`, a partner's BNDUPD, expiry). `None` when nothing is published
    /// for the address or the entry is still backed.
    pub fn stale_entry(&self, lease: &Lease) -> Option<LeaseKey> {
        let key = self.key_at(lease.address)?;
        let backed = self
            .maps
            .lease(&key)
            .is_some_and(|value| store_backs(lease, &key, value.horizon));
        (!backed).then_some(key)
    }

    /// Number of distinct templates in the kernel.
    pub fn template_count(&self) -> usize {
        self.templates.len()
    }

    /// Publishes a renewal: the lease ends at `ends`, and the kernel may extend it up to
    /// `horizon`, which the caller has already made durable.
    pub fn publish(
        &mut self,
        prepared: &Prepared,
        ends: UnixTime,
        horizon: UnixTime,
    ) -> Result<(), MapsError> {
        self.publish_in(prepared, ends, horizon, 0)
    }

    /// [`Self::publish`] for a lease of a failover pool: `relationship` is 1 + its
    /// relationship's slot in the kernel's relationships map (0: no failover).
    pub fn publish_in(
        &mut self,
        prepared: &Prepared,
        ends: UnixTime,
        horizon: UnixTime,
        relationship: u32,
    ) -> Result<(), MapsError> {
        let template = &prepared.template;
        let content: TemplateContent = (
            template.siaddr,
            template.server_id,
            template.bytes[..template.len as usize].to_vec(),
        );
        let index = match self.templates.get_mut(&content) {
            Some((index, _)) if self.lease_templates.get(&prepared.key) == Some(&content) => *index,
            Some((index, users)) => {
                *users += 1;
                let index = *index;
                self.release_template_of(&prepared.key)?;
                index
            }
            None => {
                let index = match self.free_indices.pop() {
                    Some(index) => index,
                    None if self.next_index < TEMPLATE_SLOTS => {
                        self.next_index += 1;
                        self.next_index - 1
                    }
                    None => return Err(MapsError::TemplatesFull(TEMPLATE_SLOTS)),
                };
                if let Err(error) = self.maps.put_template(index, template) {
                    self.free_indices.push(index);
                    return Err(error);
                }
                self.release_template_of(&prepared.key)?;
                self.templates.insert(content.clone(), (index, 1));
                index
            }
        };
        self.lease_templates.insert(prepared.key, content);
        if let Some(previous) = self.addresses_by_key.insert(prepared.key, prepared.address) {
            if previous != prepared.address {
                self.keys_by_address.remove(&previous);
            }
        }
        if let Some(other) = self.keys_by_address.insert(prepared.address, prepared.key) {
            // One address, one client in the kernel: the engine moved the address to another
            // client, so the old client's entry must not answer for it any more.
            if other != prepared.key {
                self.withdraw(&other)?;
                self.keys_by_address.insert(prepared.address, prepared.key);
            }
        }
        let value = LeaseValue {
            address: prepared.address,
            ends,
            horizon,
            lease_time: prepared.lease_time,
            template: index,
            flags: LEASE_ACTIVE,
            giaddr: prepared.giaddr,
            relationship,
            fingerprint: prepared.fingerprint,
            cache_remaining: cache_remaining(prepared.lease_time, prepared.cache_threshold),
            _pad: 0,
        };
        self.maps.put_lease(&prepared.key, &value)
    }

    /// Takes a lease out of the kernel (released, expired, or answered by userspace in a way
    /// the kernel cannot repeat).
    pub fn withdraw(&mut self, key: &LeaseKey) -> Result<(), MapsError> {
        self.failover.leases.remove(key);
        if let Some(address) = self.addresses_by_key.remove(key) {
            if self.keys_by_address.get(&address) == Some(key) {
                self.keys_by_address.remove(&address);
            }
        }
        self.maps.remove_lease(key)?;
        self.release_template_of(key)
    }

    /// Takes every lease out of the kernel (a reloaded config makes every template stale);
    /// returns how many were withdrawn. Each client's next renewal goes through the engine and
    /// is published again with a template built from the new config.
    pub fn withdraw_all(&mut self) -> Result<usize, MapsError> {
        // The relationships of the new config may sit in other slots: all are written again.
        self.failover.serving.clear();
        let keys: Vec<LeaseKey> = self.lease_templates.keys().copied().collect();
        for key in &keys {
            self.withdraw(key)?;
        }
        Ok(keys.len())
    }

    /// Writes the relationships' service states (`serving`, by slot) where they changed since
    /// the last call.
    pub fn set_relationships(&mut self, serving: &[bool]) -> Result<(), MapsError> {
        for (index, serves) in serving.iter().enumerate() {
            let Ok(slot) = u32::try_from(index) else {
                break;
            };
            if slot >= server_common::fastpath::RELATIONSHIP_SLOTS {
                break;
            }
            if self.failover.serving.get(index) != Some(serves) {
                self.maps.set_relationship(slot, *serves)?;
            }
        }
        self.failover.serving = serving.to_vec();
        Ok(())
    }

    /// Writes a failover lease's kernel horizon (`bounded.kernel`) into its published value
    /// and remembers its bounds; nothing when `key` is not published.
    pub fn set_bounded(&mut self, key: &LeaseKey, bounded: Bounded) -> Result<(), MapsError> {
        if !self.is_published(key) {
            return Ok(());
        }
        self.failover.leases.insert(*key, bounded);
        let Some(mut value) = self.maps.lease(key) else {
            return Ok(());
        };
        if value.horizon == bounded.kernel {
            return Ok(());
        }
        value.horizon = bounded.kernel;
        self.maps.put_lease(key, &value)
    }

    /// Drops `key`'s use of its current template, removing the template when unused.
    fn release_template_of(&mut self, key: &LeaseKey) -> Result<(), MapsError> {
        let Some(content) = self.lease_templates.remove(key) else {
            return Ok(());
        };
        if let Some((index, users)) = self.templates.get_mut(&content) {
            *users -= 1;
            if *users == 0 {
                let index = *index;
                self.templates.remove(&content);
                self.maps.remove_template(index)?;
                self.free_indices.push(index);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdp::maps::FakeMaps;

    fn prepared(mac_last: u8, option_byte: u8) -> Prepared {
        let mut template = Template::EMPTY;
        template.len = 300;
        template.bytes[200] = option_byte;
        Prepared {
            key: LeaseKey::new(KEY_HARDWARE, 1, &[2, 0, 0, 0, 0, mac_last]).expect("key"),
            address: u32::from_ne_bytes([10, 0, 0, mac_last]),
            lease_time: 3600,
            giaddr: 0,
            fingerprint: 42,
            cache_threshold: 25,
            template,
        }
    }

    /// The kernel passes up a renewal while `ends − now ≥ cache_remaining`, which is the
    /// engine's `now − starts ≤ limit` for a lease that started at `ends − lease_time`.
    #[test]
    fn cache_remaining_is_the_engines_age_limit_from_the_end() {
        assert_eq!(cache_remaining(3600, 25), 2700);
        assert_eq!(cache_remaining(600, 10), 540);
        assert_eq!(cache_remaining(7, 25), 6);
        assert_eq!(cache_remaining(3600, 0), server_common::fastpath::CACHE_OFF);
        for (lease_time, threshold) in [(600u32, 25u8), (7, 25), (3600, 99), (86_400, 1)] {
            let remaining = cache_remaining(lease_time, threshold);
            let starts = 1_000_000u32;
            let ends = starts + lease_time;
            for now in starts..=ends {
                let kernel_young = u64::from(ends) >= u64::from(now) + u64::from(remaining);
                let limit =
                    crate::engine::lease_time::reuse_limit(i64::from(lease_time), threshold);
                let engine_young = i64::from(now - starts) <= limit;
                assert_eq!(kernel_young, engine_young, "{lease_time} {threshold} {now}");
            }
        }
        let mut fast_path = FastPath::new(FakeMaps::default());
        let mut young = prepared(1, 1);
        young.cache_threshold = 0;
        fast_path.publish(&young, 100, 200).expect("publish");
        let value = fast_path.maps().lease(&young.key).expect("published");
        assert_eq!(value.cache_remaining, server_common::fastpath::CACHE_OFF);
    }

    #[test]
    fn equal_replies_share_one_template_and_unused_ones_go() {
        let mut fast_path = FastPath::new(FakeMaps::default());
        fast_path
            .publish(&prepared(1, 7), 1000, 5000)
            .expect("publish");
        fast_path
            .publish(&prepared(2, 7), 1000, 5000)
            .expect("publish");
        assert_eq!(fast_path.template_count(), 1);
        assert_eq!(fast_path.maps().templates.len(), 1);
        assert_eq!(fast_path.maps().leases.len(), 2);
        // A lease whose reply changed moves to a new template; the old one stays for the other.
        fast_path
            .publish(&prepared(2, 8), 1000, 5000)
            .expect("publish");
        assert_eq!(fast_path.maps().templates.len(), 2);
        let first = prepared(1, 7).key;
        fast_path.withdraw(&first).expect("withdraw");
        assert_eq!(fast_path.maps().templates.len(), 1);
        assert_eq!(fast_path.maps().leases.len(), 1);
        let value = fast_path
            .maps()
            .lease(&prepared(2, 8).key)
            .expect("published lease");
        assert_eq!(
            (value.ends, value.horizon, value.lease_time),
            (1000, 5000, 3600)
        );
        assert_eq!(value.flags, LEASE_ACTIVE);
        // Re-publishing the same lease with the same reply keeps one user of the template.
        fast_path
            .publish(&prepared(2, 8), 1100, 5000)
            .expect("publish");
        assert_eq!(fast_path.maps().templates.len(), 1);
    }
}
