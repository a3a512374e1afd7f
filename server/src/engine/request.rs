//! One handler per message type (RFC 2131 §4.3), following ISC `dhcpdiscover`, `dhcprequest`,
//! `dhcpdecline`, `dhcprelease`, `dhcpinform` and `bootp`.

use std::net::Ipv4Addr;

use dhcproto::v4::{Message, MessageType};

use crate::config::model::{Permission, ScopeId};
use crate::failover::rules::{may_allocate, released_state, rewind_follows};
use crate::failover::states::Service;
use crate::lease::record::{BindingState, Lease, LeaseExtra, UnixTime, NEVER};
use crate::lease::store::LeaseStore;

use super::classify::{classify, pool_permits, Classification, RequestView};
use super::lease_time::{
    cache_threshold, expiry, lease_time, reuse_for, LeaseTime, DEFAULT_ABANDON_LEASE_TIME, MAX_TIME,
};
use super::options::{finish, reply_header, with_broadcast, Assembly};
use super::packet::Inbound;
use super::scope::ScopeStack;
use super::select::{Candidate, Network, PoolRules, Purpose, NOT_AVAILABLE};
use super::starvation::StarvationState;
use super::statements::apply_variables;
use super::{
    Decision, Destination, Engine, IgnoreReason, Malformation, Outcome, Request, Snapshot,
    OFFER_HOLD_SECONDS,
};

mod acknowledge;
mod billing;
mod bootp;
mod bulk_leasequery;
mod ddns;
mod leasequery;
mod notices;
mod one_lease;

#[cfg(test)]
pub(crate) use bootp::bootp_lease_end;
pub(crate) use bulk_leasequery::answer as bulk_answer;
pub use bulk_leasequery::BulkStatus;
pub(crate) use ddns::settings_for as ddns_settings_for;
pub use leasequery::{answer_name, LeaseQueryTarget, MAX_ASSOCIATED_IPS};
pub(crate) use notices::abandoned;

/// Option 60 (RFC 2132 §9.13).
const VENDOR_CLASS_IDENTIFIER: u8 = 60;

/// Entry point: validate, then dispatch on the message type (RFC 2131 §3, table 2).
pub(crate) fn handle(
    engine: &Engine,
    now: UnixTime,
    snapshot: &Snapshot,
    request: &Request<'_>,
    leases: &mut LeaseStore,
    starvation: &mut StarvationState,
    billing: &crate::lease::billing::BillingTotals,
) -> Decision {
    let mut inbound = match Inbound::parse(request.message) {
        Ok(inbound) => inbound,
        Err(malformation) => return Decision::ignored(IgnoreReason::Malformed(malformation)),
    };
    inbound.raw = request.raw;
    if let Some(sub_options) = stashed_agent_options(&inbound, leases, now) {
        inbound.stash_agent_options(&sub_options);
    }
    let context = Context {
        engine,
        now,
        snapshot,
        request,
        classification: classify(&engine.config, snapshot.hosts.as_deref(), &inbound),
        inbound,
        options: std::cell::OnceCell::new(),
        billing,
    };
    match context.inbound.message_type {
        None => context.bootp(leases, starvation),
        Some(MessageType::Discover) => context.discover(leases, starvation),
        Some(MessageType::Request) => context.request(leases),
        Some(MessageType::Decline) => context.decline(leases, starvation),
        Some(MessageType::Release) => context.release(leases),
        Some(MessageType::Inform) => context.inform(leases),
        Some(MessageType::LeaseQuery) => context.lease_query(&*leases),
        // Server-to-client messages are not requests this server answers.
        Some(other) => Decision::ignored(IgnoreReason::UnsupportedMessageType(u8::from(other))),
    }
}

/// A DHCPLEASEQUERY (RFC 4388) answered from `lookup`, which may span every shard of the
/// store: a query by client identifier or hardware address is not bound to one network.
pub(crate) fn handle_lease_query(
    engine: &Engine,
    now: UnixTime,
    snapshot: &Snapshot,
    request: &Request<'_>,
    lookup: &dyn super::LeaseLookup,
) -> Decision {
    let mut inbound = match Inbound::parse(request.message) {
        Ok(inbound) => inbound,
        Err(malformation) => return Decision::ignored(IgnoreReason::Malformed(malformation)),
    };
    inbound.raw = request.raw;
    let billing = crate::lease::billing::BillingTotals::default();
    let context = Context {
        engine,
        now,
        snapshot,
        request,
        classification: classify(&engine.config, snapshot.hosts.as_deref(), &inbound),
        inbound,
        options: std::cell::OnceCell::new(),
        billing: &billing,
    };
    context.lease_query(lookup)
}

/// Everything known about one request.
struct Context<'e, 'r> {
    engine: &'e Engine,
    now: UnixTime,
    /// The failover states and OMAPI hosts as the driver copied them for this batch.
    snapshot: &'r Snapshot,
    request: &'r Request<'r>,
    inbound: Inbound<'r>,
    classification: Classification,
    /// The billed leases of the other shards (`engine::billing`).
    billing: &'r crate::lease::billing::BillingTotals,
    /// The request's options as expressions read them, built on first use and shared by every
    /// evaluation of this request's statements.
    options: std::cell::OnceCell<Vec<(u8, Vec<u8>)>>,
}

impl<'e> Context<'e, '_> {
    /// The scopes for a reply about `candidate` (or about a bare subnet).
    fn scopes_for(&self, base: ScopeId) -> ScopeStack<'e> {
        self.scopes_at(base, None, None)
    }

    /// The scopes for a reply from `base`, about `address` when one is chosen, executed with
    /// the variables of `lease` (the lease being renewed, as the lease file has them).
    fn scopes_at(
        &self,
        base: ScopeId,
        address: Option<Ipv4Addr>,
        lease: Option<&Lease>,
    ) -> ScopeStack<'e> {
        let config = &*self.engine.config;
        let host = self.classification.host(config).map(|host| host.scope);
        let classes: Vec<ScopeId> = self
            .classification
            .classes
            .iter()
            .map(|(_, scope)| *scope)
            .collect();
        let scopes = ScopeStack::new(config, host, &classes, base)
            .with_dynamic_host(self.classification.dynamic_host.clone());
        if !scopes.has_executable_statements() && !scopes.has_space_statements() {
            return scopes;
        }
        let view = self.view(address, lease);
        scopes.evaluate(&view).resolve_spaces(&view)
    }

    /// What expressions see of this request, about `address` and its `lease`.
    fn view(&self, address: Option<Ipv4Addr>, lease: Option<&Lease>) -> RequestView<'_> {
        let host_name = self
            .classification
            .host(&self.engine.config)
            .map(|host| host.name.as_str());
        let config = &self.engine.config;
        let classes = self
            .classification
            .classes
            .iter()
            .filter_map(|(class, _)| config.classes.get(class.0 as usize))
            .map(|class| class.name.as_str())
            .collect();
        let options = self
            .options
            .get_or_init(|| super::classify::request_options(&self.inbound));
        RequestView::with_options(
            &self.inbound,
            host_name,
            std::borrow::Cow::Borrowed(options),
        )
        .with_leased_address(address)
        .with_variables(lease)
        .with_lease_time(lease, self.now)
        .with_classes(classes)
    }

    /// The scopes for a reply about `candidate`: its pool's or subnet's, evaluated with its
    /// address as `leased-address`.
    fn scopes_for_candidate(&self, candidate: &Candidate) -> ScopeStack<'e> {
        let existing = match candidate {
            Candidate::Dynamic { existing, .. } => existing.as_ref(),
            Candidate::Fixed { .. } => None,
        };
        self.scopes_at(
            self.base_scope(candidate),
            Some(candidate.address()),
            existing,
        )
    }

    fn base_scope(&self, candidate: &Candidate) -> ScopeId {
        let config = &self.engine.config;
        match candidate {
            Candidate::Dynamic { pool, .. } => config
                .pools
                .get(pool.0 as usize)
                .map(|pool| pool.scope)
                .unwrap_or(ScopeId::GLOBAL),
            Candidate::Fixed { subnet, .. } => self.subnet_scope(*subnet),
        }
    }

    fn subnet_scope(&self, subnet: crate::config::model::SubnetId) -> ScopeId {
        self.engine
            .config
            .subnets
            .get(subnet.0 as usize)
            .map(|subnet| subnet.scope)
            .unwrap_or(ScopeId::GLOBAL)
    }

    fn subnet_mask(&self, subnet: crate::config::model::SubnetId) -> Option<Ipv4Addr> {
        self.engine
            .config
            .subnets
            .get(subnet.0 as usize)
            .map(|subnet| subnet.netmask)
    }

    /// Option 54: `server-identifier` from the scopes, else the receiving interface's address
    /// (ISC `get_server_source_address`).
    fn server_id(&self, scopes: &ScopeStack<'_>) -> Option<Ipv4Addr> {
        scopes
            .find(|scope| scope.server_identifier)
            .or(self.request.interface_address)
    }

    /// The assembly of a reply that carries the configured options (OFFER, ACK, INFORM's ACK,
    /// BOOTREPLY): server identifier, host name and the subnet's mask resolved the same way for
    /// all of them.
    fn configured_assembly(
        &self,
        scopes: &ScopeStack<'_>,
        message_type: Option<MessageType>,
        lease_time: Option<u32>,
        subnet: crate::config::model::SubnetId,
    ) -> Assembly<'_> {
        Assembly {
            message_type,
            server_id: self.server_id(scopes),
            lease_time,
            subnet_mask: self.subnet_mask(subnet),
            host_name: self.host_name(scopes),
            reverse_name: None,
            message: None,
            configured: true,
            echo_client_id: true,
            may_overload: false,
            fqdn: None,
            echo_relay_agent: true,
        }
    }

    /// `use-host-decl-names`: the host declaration's name becomes option 12.
    fn host_name(&self, scopes: &ScopeStack<'_>) -> Option<&str> {
        if !scopes
            .find(|scope| scope.use_host_decl_names)
            .unwrap_or(false)
        {
            return None;
        }
        self.classification
            .host(&self.engine.config)
            .map(|host| host.name.as_str())
    }

    /// `get-lease-hostnames` (ISC `ack_lease`, after `use_host_decl_name`): the reverse DNS
    /// name of `address` as option 12 when the reply has no host name otherwise, from the
    /// names the driver looked up (`crate::reverse_names`); ISC's error line when the lookup
    /// found none. An address not looked up yet gets neither.
    fn reverse_name(
        &self,
        scopes: &ScopeStack<'_>,
        address: Ipv4Addr,
    ) -> (
        Option<Vec<u8>>,
        Option<(crate::config::model::LogPriority, String)>,
    ) {
        use crate::reverse_names::Lookup;
        if !scopes
            .find(|scope| scope.get_lease_hostnames)
            .unwrap_or(false)
            || self.host_name(scopes).is_some()
            || scopes
                .option(crate::engine::options::code::HOST_NAME)
                .is_some()
        {
            return (None, None);
        }
        match self
            .snapshot
            .reverse_names
            .as_deref()
            .map(|table| table.get(address))
        {
            Some(Lookup::Name(name)) => (Some(crate::reverse_names::option_value(name)), None),
            Some(Lookup::NoName) => (
                None,
                Some((
                    crate::config::model::LogPriority::Error,
                    format!("No hostname for {address}"),
                )),
            ),
            Some(Lookup::Pending) | None => (None, None),
        }
    }

    /// ISC `ack_lease` admission: `deny unknown-clients` for clients without a host declaration,
    /// `deny booting` in the host's scopes, `deny bootp` for BOOTP clients.
    fn admitted(&self, scopes: &ScopeStack<'_>) -> bool {
        let denied = |permission: Option<Permission>| {
            matches!(permission, Some(Permission::Deny | Permission::Ignore))
        };
        if !self.classification.known() && denied(scopes.find(|scope| scope.unknown_clients)) {
            return false;
        }
        if self.classification.known() && denied(scopes.find(|scope| scope.booting)) {
            return false;
        }
        if self.inbound.is_bootp() && denied(scopes.find(|scope| scope.bootp)) {
            return false;
        }
        true
    }

    /// Why ISC `ack_lease` drops a reply built in `scopes`, in its order: an OFFER (`offer`)
    /// while secs is below `min-secs`, then a client [`Context::admitted`] refuses.
    fn dropped(&self, scopes: &ScopeStack<'_>, offer: bool) -> Option<IgnoreReason> {
        if offer {
            if let Some(min_secs) = scopes.find(|scope| scope.min_secs) {
                if self.inbound.message.secs() < u16::from(min_secs) {
                    return Some(IgnoreReason::TooEarly);
                }
            }
        }
        (!self.admitted(scopes)).then_some(IgnoreReason::Denied)
    }

    /// The drop of [`Context::dropped`] when every pool of `shared` the client may use agrees on
    /// it, checked before a new address is allocated. ISC's `allocate_lease` only points at the
    /// head of a free queue and `ack_lease`'s drop leaves it there, so the next DISCOVER gets
    /// the same address; the store's allocator moves on once asked, so the drop must come
    /// first. O(1) when the first permitted pool does not drop (the usual case).
    fn dropped_in_every_pool(
        &self,
        shared: crate::config::model::SharedNetworkId,
        bootp: bool,
    ) -> Option<IgnoreReason> {
        let config = &*self.engine.config;
        let mut pools = config
            .shared_networks
            .get(shared.0 as usize)?
            .pools
            .iter()
            .filter_map(|pool| config.pools.get(pool.0 as usize))
            .filter(|pool| pool_permits(pool, &self.classification, bootp, self.now));
        let first = self.dropped(&self.scopes_for(pools.next()?.scope), !bootp)?;
        pools
            .all(|pool| self.dropped(&self.scopes_for(pool.scope), !bootp) == Some(first))
            .then_some(first)
    }

    /// RFC 2131 §4.1 reply routing for OFFER/ACK (ISC `dhcp_reply`): to the relay when giaddr
    /// is set; to ciaddr for a RENEWING client; broadcast when the client asked for it; else
    /// unicast to the new address at the client's hardware address.
    fn destination(&self, reply: &Message, same_network: bool) -> Destination {
        let inbound = &self.inbound;
        if !inbound.giaddr.is_unspecified() {
            return Destination::Relay(inbound.giaddr);
        }
        // ISC: a client that sent both ciaddr and a server identifier (or the broadcast bit) on
        // the local wire may not be reachable at ciaddr yet; broadcast or unicast by hardware.
        if !inbound.ciaddr.is_unspecified()
            && !((inbound.server_id.is_some() || reply.flags().broadcast()) && same_network)
            && inbound.message_type == Some(MessageType::Request)
        {
            return Destination::Unicast(inbound.ciaddr);
        }
        if reply.flags().broadcast() {
            return Destination::Broadcast;
        }
        Destination::Hardware {
            address: reply.yiaddr(),
            hardware: inbound.hardware,
        }
    }

    /// The client-facing header of an OFFER/ACK/BOOTREPLY for `address`.
    fn lease_header(&self, address: Ipv4Addr, scopes: &ScopeStack<'_>) -> Message {
        let mut message = reply_header(&self.inbound);
        message.set_yiaddr(address);
        // RFC 2131 table 3: ciaddr is echoed in an ACK; ISC echoes it in an OFFER too.
        message.set_ciaddr(self.inbound.ciaddr);
        set_boot_fields(&mut message, scopes);
        // `always-broadcast` (ISC `bootp_flags`).
        if scopes.find(|scope| scope.always_broadcast).unwrap_or(false) {
            with_broadcast(&mut message);
        }
        message
    }

    /// May a commit of `address` step its rewind state forward (ISC `supersede_lease`,
    /// docs/spec/failover.md §8.2)? Always without failover.
    fn rewind_follows(&self, address: Ipv4Addr) -> bool {
        // By address range (binary search), not a scan of the pools.
        self.engine
            .relationship_of_address(&self.snapshot.failover, address)
            .is_none_or(|relationship| rewind_follows(relationship.service()))
    }

    /// The failover relationship of `pool` as the lease rules see it ([`Engine::pool_rules`]).
    fn pool_rules(&self, pool: crate::config::model::PoolId) -> Option<PoolRules> {
        self.engine.pool_rules(&self.snapshot.failover, pool)
    }

    /// The failover role and current tsfp that bound the lease time of `candidate`.
    fn failover(&self, candidate: &Candidate) -> (Option<super::FailoverRole>, UnixTime) {
        match candidate {
            Candidate::Dynamic { pool, existing, .. } => (
                self.pool_rules(*pool)
                    .map(|rules| super::FailoverRole { mclt: rules.mclt }),
                existing.as_ref().map_or(0, |lease| lease.tsfp),
            ),
            Candidate::Fixed { .. } => (None, 0),
        }
    }

    /// RFC 2131 §4.3.1: DHCPDISCOVER → DHCPOFFER.
    fn discover(&self, leases: &mut LeaseStore, starvation: &mut StarvationState) -> Decision {
        let engine = self.engine;
        let Some(network) = engine.locate_network(&self.inbound, self.request.interface_address)
        else {
            return Decision::ignored(IgnoreReason::UnknownSubnet);
        };
        let failover = &self.snapshot.failover;
        let found = engine.find_lease(
            failover,
            &self.inbound,
            &self.classification,
            network.shared,
            Purpose::Discover,
            self.now,
            leases,
        );
        // RFC 2131 §4.3.1: the client's current or previous binding, else the requested address,
        // else a new one (ISC `allocate_lease`). Under failover a found lease that is neither
        // the client's nor ours to reallocate is dropped first (docs/spec/failover.md §8.2).
        let found_candidate = found
            .candidate
            .filter(|candidate| engine.may_offer_lease(failover, candidate, self.now));
        let candidate = match found_candidate {
            Some(candidate) => candidate,
            None => match self.new_candidate(network.shared, false, leases, starvation) {
                Ok(candidate) => candidate,
                Err(reason) => return Decision::ignored(reason),
            },
        };
        // Failover: silent unless the state serves, and in NORMAL only for our hash buckets
        // (docs/spec/failover.md §6.1, §11.3).
        if !self.balanced_to_us(&candidate, || {
            engine.partner_has_free_leases(failover, network.shared, leases)
        }) {
            // The allocation cursor may have passed a never-used address for this client.
            leases.return_unused(candidate.address());
            return Decision::ignored(IgnoreReason::NotForUs);
        }
        // ISC `ack_lease`: no second answer while the OFFER of this address waits for its
        // ping (only this client can have found it: the address is held for it).
        if leases.probing(candidate.address(), self.now) {
            return Decision::ignored(IgnoreReason::PingCheckPending);
        }
        let scopes = self.scopes_for_candidate(&candidate);
        if let Some(reason) = self.dropped(&scopes, true) {
            // Pools that disagree on the drop: the address goes back to the allocator.
            leases.return_unused(candidate.address());
            return Decision::ignored(reason);
        }
        if let Err(reason) = self.billing(&candidate, scopes.added_classes(), true, leases) {
            leases.return_unused(candidate.address());
            return Decision::ignored(reason);
        }
        let (failover, tsfp) = self.failover(&candidate);
        let times = lease_time(
            &scopes,
            self.inbound.requested_lease_time,
            self.pool_use(&candidate, leases),
            failover,
            tsfp,
            self.now,
        );
        // ISC `ack_lease` checks `dhcp-cache-threshold` for an OFFER too: a young lease is
        // offered for the time it has left (not one about to be reserved).
        let reserves = self.reserves_infinite(&scopes);
        let seconds = self
            .reusable(&candidate, &scopes)
            .filter(|_| !acknowledge::becomes_reserved(&candidate, reserves))
            .unwrap_or(times.granted);
        let address = candidate.address();
        // ciaddr is the DISCOVER's, as ISC `ack_lease` copies it (RFC 2131 table 3 has 0; the
        // client in INIT state does not read it, and it is the address the client sent).
        let message = self.lease_header(address, &scopes);
        let destination = self.destination(&message, true);
        let (reverse_name, no_reverse_name) = self.reverse_name(&scopes, address);
        let mut reply = finish(
            message,
            &self.inbound,
            Some(&scopes),
            // ISC `dhcp_reply` may overload `file` and `sname`.
            &Assembly {
                may_overload: true,
                reverse_name,
                ..self.configured_assembly(
                    &scopes,
                    Some(MessageType::Offer),
                    Some(seconds),
                    candidate.subnet(),
                )
            },
            destination,
        );
        reply.executed.log_lines.extend(no_reverse_name);
        reply
            .executed
            .log_lines
            .extend(self.reservation_line(&candidate, reserves));
        // ISC `do_ping_check` (after `ack_lease` built the OFFER): an ICMP echo request first,
        // when the driver can send one.
        let ping_check = self
            .snapshot
            .ping_checks
            .then(|| {
                super::ping_check::wanted(&scopes, &candidate, &self.inbound, leases, self.now)
            })
            .flatten()
            .map(|timeout_ms| super::PingCheck {
                address,
                client: self.inbound.key.clone(),
                timeout_ms,
                abandon_seconds: scopes
                    .find(|scope| scope.abandon_lease_time)
                    .unwrap_or(DEFAULT_ABANDON_LEASE_TIME),
            });
        // RFC 2131 §4.3.1: the offered address is reserved for the client for a while (ISC: two
        // minutes, or until the current lease ends if later) so that concurrent DISCOVERs get
        // different addresses, and while its ping is pending. The offer is not persisted.
        if let Candidate::Dynamic { existing, .. } = &candidate {
            if leases.get(address).is_none() {
                // Record the never-used address in memory (as ISC's lease object), so that the
                // allocator finds it again if the offer is not taken.
                let mut lease = Lease::free(address);
                lease.hardware = Some(self.inbound.hardware);
                leases.upsert(lease);
            }
            // An abandoned lease's end is when its abandonment lapses, not a binding to honour.
            let until = (self.now.saturating_add(OFFER_HOLD_SECONDS)).max(
                existing
                    .as_ref()
                    .filter(|lease| lease.binding_state != BindingState::Abandoned)
                    .map_or(0, |lease| lease.ends),
            );
            // When the offer is made: ISC's offer sets the lease's `cltt`, which
            // `ping-cltt-secs` measures a later DISCOVER of the same client from.
            let probe_until = ping_check
                .as_ref()
                .map_or(0, |check| check.pending_until(self.now));
            leases.hold_offer_at(
                address,
                self.inbound.key.clone(),
                until,
                self.now,
                probe_until,
            );
        }
        Decision {
            reply: Some(reply),
            commit: Vec::new(),
            outcome: Outcome::Offered(address),
            ping_check,
            executed: Default::default(),
        }
    }

    /// A new address when `find_lease` found none for the client (ISC `allocate_lease`): none
    /// when every pool drops the request, when every class with a lease limit is full (checked
    /// before an address is taken, `engine::billing`), or when no pool has one.
    fn new_candidate(
        &self,
        shared: crate::config::model::SharedNetworkId,
        bootp: bool,
        leases: &mut LeaseStore,
        starvation: &mut StarvationState,
    ) -> Result<Candidate, IgnoreReason> {
        if let Some(reason) = self.dropped_in_every_pool(shared, bootp) {
            return Err(reason);
        }
        self.billing_allows_new(!bootp, leases)?;
        self.allocate_new(shared, bootp, leases, starvation)
    }

    /// Whether failover load balancing lets this server answer for `candidate` (docs/spec/
    /// failover.md §6.1, §11.3): always outside failover pools; else as the relationship's state
    /// and hash buckets say, `partner_has_free` deciding ISC's exception for a partner short
    /// of free leases.
    fn balanced_to_us(&self, candidate: &Candidate, partner_has_free: impl Fn() -> bool) -> bool {
        let Candidate::Dynamic { pool, .. } = candidate else {
            return true;
        };
        let engine = self.engine;
        let secs = engine.balancing_secs(self.inbound.message.secs());
        engine
            .relationship_of_pool(&self.snapshot.failover, *pool)
            .is_none_or(|relationship| {
                relationship.may_offer(self.inbound.key.hashed_bytes(), secs, partner_has_free)
            })
    }

    /// RFC 2131 §4.3.2: DHCPREQUEST in SELECTING, INIT-REBOOT, RENEWING or REBINDING state.
    fn request(&self, leases: &mut LeaseStore) -> Decision {
        let engine = self.engine;
        let inbound = &self.inbound;
        let packet_network = engine.locate_network(inbound, self.request.interface_address);

        // The address asked for: option 50 (SELECTING, INIT-REBOOT), else ciaddr (RENEWING,
        // REBINDING) (§4.3.2, ISC `dhcprequest`).
        let requested = inbound
            .requested_address
            .or_else(|| Some(inbound.ciaddr).filter(|ciaddr| !ciaddr.is_unspecified()));
        let Some(requested) = requested else {
            return Decision::ignored(IgnoreReason::Malformed(Malformation::MissingField(
                "requested address (option 50) or ciaddr",
            )));
        };
        let claimed_network = engine.network_of(requested);
        let found = claimed_network.map(|network| {
            engine.find_lease(
                &self.snapshot.failover,
                inbound,
                &self.classification,
                network.shared,
                Purpose::Request,
                self.now,
                leases,
            )
        });

        // The server identifier (RFC 2131 §4.3.2 SELECTING) is checked as ISC 4.4 does: only
        // with `server-id-check true` (default false, dhcpd.conf(5)) and only for a lease of a
        // failover pool (`dhcprequest`). Otherwise a REQUEST naming another server is served
        // as any other: the address this server offered is ACKed, an address it does not
        // manage stays unanswered (or NAKed from the wrong network), and this server's own
        // offer is held for its two minutes.
        if let (Some(server_id), Some(Candidate::Dynamic { pool, .. })) = (
            inbound.server_id,
            found.as_ref().and_then(|found| found.candidate.as_ref()),
        ) {
            if self.server_id_check()
                && !server_id.is_unspecified()
                && engine
                    .relationship_of_pool(&self.snapshot.failover, *pool)
                    .is_some()
                && self.our_server_id(packet_network) != Some(server_id)
            {
                return Decision::ignored(IgnoreReason::NotForUs);
            }
        }

        // The DHCPNAK text (option 56) is ISC's `dhcp_message`, which only `find_lease` writes:
        // a NAK for the wrong network says what `find_lease` found of the address (ISC logs
        // "wrong network" but does not send it). Without a subnet for the address ISC's
        // `find_lease` does not run and the text of an earlier packet stays; the text it most
        // often leaves is the one used here.
        let nak_text = found.as_ref().map_or(NOT_AVAILABLE, |found| found.message);

        // §4.3.2 INIT-REBOOT / REBINDING through a relay: the server can check the client's
        // network. ISC trusts the source network for broadcast requests with option 50 and for
        // relayed requests with ciaddr; a direct unicast RENEWING request is taken as local.
        let checkable = packet_network.is_none()
            || (!inbound.ciaddr.is_unspecified() && !inbound.giaddr.is_unspecified())
            || (inbound.requested_address.is_some() && inbound.ciaddr.is_unspecified());
        if checkable {
            match packet_network {
                None => {
                    // We do not know where the packet came from, but do know where it claims to
                    // be from: it is not there.
                    return match claimed_network {
                        Some(network) if self.authoritative_for_subnet(network) => {
                            self.nak(nak_text, Some(network))
                        }
                        Some(_) => Decision::ignored(IgnoreReason::NotAuthoritative),
                        None => Decision::ignored(IgnoreReason::UnknownSubnet),
                    };
                }
                Some(network) => {
                    let same =
                        claimed_network.is_some_and(|claimed| claimed.shared == network.shared);
                    if !same {
                        // §4.3.2: "DHCPNAK if the requested IP address is incorrect or is on the
                        // wrong network" — only an authoritative server says so.
                        return if self.authoritative_for_subnet(network) {
                            self.nak(nak_text, Some(network))
                        } else {
                            Decision::ignored(IgnoreReason::NotAuthoritative)
                        };
                    }
                }
            }
        }

        let found = found.unwrap_or_default();
        if let Some(candidate) = &found.candidate {
            match self.peer_owned(candidate) {
                PeerOwned::No => {}
                PeerOwned::Ignore => return Decision::ignored(IgnoreReason::NotForUs),
                PeerOwned::Nak => return self.nak(nak_text, claimed_network),
            }
        }
        match found.candidate {
            Some(candidate) => self.acknowledge(candidate, packet_network, leases),
            // ISC NAKs an address of its own pools that this client cannot have (bound to
            // another client, abandoned, or not the host's fixed address) whether or not it is
            // authoritative (`dhcprequest`: `!lease && ours`).
            None if found.ours => self.nak(found.message, claimed_network),
            // §4.3.2 INIT-REBOOT: "If the DHCP server has no record of this client, then it
            // MUST remain silent".
            None => Decision::ignored(IgnoreReason::UnknownLease),
        }
    }

    /// ISC `dhcprequest` under failover (docs/spec/failover.md §8.2): no load balancing for a REQUEST,
    /// lease ownership decides. A FREE/BACKUP lease this server may not allocate is the
    /// partner's ("lease owned by peer": silence); an EXPIRED/RELEASED one that was not last
    /// ACTIVE and cannot be rewound is in transition (silence); a RESET one is NAKed.
    /// A new address for a client without a usable binding (ISC `allocate_lease`), if the
    /// starvation defence admits one more new lease for it (`engine::starvation`).
    fn allocate_new(
        &self,
        shared: crate::config::model::SharedNetworkId,
        bootp: bool,
        leases: &mut LeaseStore,
        starvation: &mut StarvationState,
    ) -> Result<Candidate, IgnoreReason> {
        let engine = self.engine;
        let candidate = engine
            .allocate(
                &self.snapshot.failover,
                &self.inbound,
                &self.classification,
                shared,
                bootp,
                self.now,
                leases,
            )
            .ok_or(IgnoreReason::NoFreeAddress)?;
        if let Err(limit) = engine.admit_new_lease(
            starvation,
            self.now,
            &self.inbound,
            self.request.interface_address,
            &self.classification,
            &candidate,
            leases,
        ) {
            // The allocation cursor may have passed a never-used address for this client.
            leases.return_unused(candidate.address());
            return Err(IgnoreReason::RateLimited(limit));
        }
        Ok(candidate)
    }

    fn peer_owned(&self, candidate: &Candidate) -> PeerOwned {
        let Candidate::Dynamic {
            address,
            pool,
            existing,
            ..
        } = candidate
        else {
            return PeerOwned::No;
        };
        let Some(rules) = self.pool_rules(*pool) else {
            return PeerOwned::No;
        };
        let lease = existing.clone().unwrap_or_else(|| Lease::free(*address));
        let mine = may_allocate(&lease, rules.role, rules.state, rules.mclt, self.now);
        match lease.binding_state {
            BindingState::Free | BindingState::Backup if !mine => PeerOwned::Ignore,
            BindingState::Expired | BindingState::Released
                if lease.rewind_binding_state != BindingState::Active && !mine =>
            {
                PeerOwned::Ignore
            }
            BindingState::Reset if !mine => PeerOwned::Nak,
            _ => PeerOwned::No,
        }
    }

    /// `server-id-check` (global in ISC: read once at start-up).
    fn server_id_check(&self) -> bool {
        self.engine
            .config
            .scopes
            .get(ScopeId::GLOBAL.0 as usize)
            .and_then(|scope| scope.server_id_check)
            .unwrap_or(false)
    }

    /// The server identifier `server-id-check` compares with (ISC `eval_network_statements`
    /// and `get_server_source_address`): the `server-identifier` of the packet's network (or
    /// the global one), else the receiving interface's address; `None` when neither is known.
    fn our_server_id(&self, network: Option<Network>) -> Option<Ipv4Addr> {
        let base = network.map_or(ScopeId::GLOBAL, |network| self.subnet_scope(network.subnet));
        self.scopes_for(base)
            .find(|scope| scope.server_identifier)
            .or(self.request.interface_address)
    }

    /// `authoritative;` as seen from a subnet (ISC `subnet->group->authoritative`).
    fn authoritative_for_subnet(&self, network: Network) -> bool {
        self.scopes_for(self.subnet_scope(network.subnet))
            .authoritative()
    }

    /// DHCPNAK (RFC 2131 §4.3.2, ISC `nak_lease`): message type, server identifier and a text
    /// message only; broadcast, or through the relay with the broadcast bit set.
    fn nak(&self, text: &str, network: Option<Network>) -> Decision {
        // The subnet's scopes (else the global one) with the classes' and host's: where ISC
        // `nak_lease` looks for `echo-client-id`.
        let base = network.map_or(ScopeId::GLOBAL, |network| self.subnet_scope(network.subnet));
        let scopes = self.scopes_for(base);
        let server_id = network
            .and_then(|_| scopes.find(|scope| scope.server_identifier))
            .or(self.request.interface_address);
        let mut message = reply_header(&self.inbound);
        // RFC 2131 §4.3.2: a NAK through a relay is broadcast by the relay.
        with_broadcast(&mut message);
        let destination = if self.inbound.giaddr.is_unspecified() {
            Destination::Broadcast
        } else {
            Destination::Relay(self.inbound.giaddr)
        };
        let reply = finish(
            message,
            &self.inbound,
            Some(&scopes),
            &Assembly {
                message_type: Some(MessageType::Nak),
                server_id,
                message: Some(text),
                configured: false,
                echo_client_id: true,
                echo_relay_agent: true,
                ..Assembly::default()
            },
            destination,
        );
        Decision {
            reply: Some(reply),
            commit: Vec::new(),
            outcome: Outcome::Nacked,
            ping_check: None,
            executed: Default::default(),
        }
    }
}

/// ISC `do_packet` (server/dhcp.c): a DHCPREQUEST with ciaddr, without giaddr and without
/// option 82 is a renewal unicast past the relay agent, which therefore added no relay agent
/// information (RFC 3046 §2.1 concerns broadcasts it relays). When ciaddr's lease is still
/// running, is the sender's (by client identifier when the lease has one, else by hardware
/// address) and has relay agent sub-options stashed from the request that bound it, the
/// request is classified with those: a subscriber admitted to a pool by its remote-id keeps
/// its pool at T1 instead of being NAKed.
fn stashed_agent_options(
    inbound: &Inbound<'_>,
    leases: &LeaseStore,
    now: UnixTime,
) -> Option<Vec<(u8, Vec<u8>)>> {
    if inbound.message_type != Some(MessageType::Request)
        || inbound.ciaddr.is_unspecified()
        || !inbound.giaddr.is_unspecified()
        || inbound.relay_agent.is_some()
    {
        return None;
    }
    let lease = leases.get(inbound.ciaddr)?;
    let sub_options = &lease.extra.as_ref()?.agent_options;
    // "The client should not be unicasting a renewal if its lease has expired."
    if sub_options.is_empty() || lease.ends < now {
        return None;
    }
    let sender = match lease.uid() {
        Some(uid) => inbound.client_id == Some(uid),
        None => lease.hardware == Some(inbound.hardware),
    };
    sender.then(|| sub_options.clone())
}

/// What `dhcprequest` does with a lease under failover (see [`Context::peer_owned`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PeerOwned {
    No,
    Ignore,
    Nak,
}

/// `next-server`, `filename` and `server-name` of the innermost scope that sets each, into the
/// BOOTP header (siaddr, file, sname: RFC 2131 §2, table 3), for every reply that carries them.
/// A name longer than its field is truncated to the field, as ISC `dhcp_reply` does.
fn set_boot_fields(message: &mut Message, scopes: &ScopeStack<'_>) {
    if let Some(next_server) = scopes.find(|scope| scope.next_server) {
        message.set_siaddr(next_server);
    }
    if let Some(filename) = scopes.filename() {
        message.set_fname(&filename[..filename.len().min(128)]);
    }
    if let Some(server_name) = scopes.server_name() {
        message.set_sname(&server_name[..server_name.len().min(64)]);
    }
}
