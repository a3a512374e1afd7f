//! Dynamic DNS at DHCPACK time (server/dhcp.c `ack_lease` → server/ddns.c `ddns_updates`):
//! the parameters and the name, resolved through the scopes of the lease being acknowledged,
//! and the option 81 the DHCPACK answers with. The updates themselves are the daemon's
//! (`crate::changes` hands the operations to `crate::ddns::Updater`); the engine only decides.

use std::net::Ipv4Addr;

use super::*;
use crate::ddns::fqdn::{choose, ClientFqdn, NameChoice, NameInputs};
use crate::ddns::guard::ClientIdentity;
use crate::ddns::lease::DdnsSettings;
use crate::engine::scope::DdnsText;

/// Option 15 (RFC 2132 §3.17), `config-option domain-name` of ISC's default
/// `ddns-domainname`.
const DOMAIN_NAME: u8 = 15;

/// What DDNS means for one acknowledged lease.
pub(crate) struct DdnsDecision {
    pub settings: DdnsSettings,
    pub reply: Option<Vec<u8>>,
}

impl Context<'_, '_> {
    /// ISC's `ddns_updates` for a DHCPACK with `scopes`; `None` when no update is made
    /// (`ddns-update-style none`, `ddns-updates off`).
    pub(super) fn ddns(&self, scopes: &ScopeStack<'_>) -> Option<DdnsDecision> {
        let config = &*self.engine.config;
        let style = config.ddns.style?;
        if !scopes.find(|scope| scope.ddns.updates).unwrap_or(true) {
            return None;
        }
        let client_fqdn = self
            .inbound
            .option_bytes(super::super::options::code::FQDN)
            .and_then(|value| ClientFqdn::decode(&value));
        let configured_hostname = scopes
            .option(super::super::options::code::HOST_NAME)
            .map(String::from_utf8_lossy)
            .map(|name| name.trim_end_matches('\0').to_string())
            .or_else(|| self.host_name(scopes).map(str::to_string));
        let domain_name = scopes.ddns_text(DdnsText::DomainName).or_else(|| {
            scopes.option(DOMAIN_NAME).map(|name| {
                String::from_utf8_lossy(name)
                    .trim_end_matches('\0')
                    .to_string()
            })
        });
        let ddns_hostname = scopes.ddns_text(DdnsText::Hostname);
        let choice: NameChoice = choose(&NameInputs {
            client_fqdn: client_fqdn.as_ref(),
            client_updates: scopes.find(|scope| scope.ddns.client_updates),
            do_forward_updates: scopes
                .find(|scope| scope.ddns.do_forward_updates)
                .unwrap_or(true),
            ddns_hostname: ddns_hostname.as_deref(),
            client_hostname: self.inbound.hostname,
            configured_hostname: configured_hostname.as_deref(),
            domain_name: domain_name.as_deref(),
            fqdn_reply: scopes.find(|scope| scope.ddns.fqdn_reply).unwrap_or(true),
        });
        let reverse = scopes
            .find(|scope| scope.ddns.do_reverse_updates)
            .unwrap_or(true);
        let settings = DdnsSettings {
            style: Some(style),
            fwd_name: choice.fwd_name,
            client_updates_a: choice.client_updates_a,
            rev_domain_name: reverse.then(|| {
                scopes
                    .ddns_text(DdnsText::RevDomainName)
                    .unwrap_or_else(|| "in-addr.arpa.".into())
            }),
            ttl: scopes.find(|scope| scope.ddns.ttl),
            policy: config.ddns.policy(),
            update_optimization: scopes
                .find(|scope| scope.ddns.update_optimization)
                .unwrap_or(true),
        };
        Some(DdnsDecision {
            settings,
            reply: choice.reply,
        })
    }
}

impl Context<'_, '_> {
    /// ISC `ddns_updates` for the DHCPACK of a fixed address (`lease->flags & STATIC_LEASE`),
    /// granted for `seconds`: the option 81 to answer and the add to make. Only with
    /// `update-static-leases` (dhcpd.conf(5)), or when the client updates its own A record: ISC
    /// skips its static-lease test then, and adds the PTR record. Otherwise ISC leaves
    /// (`goto out`) before answering option 81 too.
    pub(super) fn static_lease_ddns(
        &self,
        scopes: &ScopeStack<'_>,
        address: Ipv4Addr,
        seconds: u32,
    ) -> (Option<Vec<u8>>, Option<crate::ddns::Operation>) {
        let Some(decision) = self.ddns(scopes) else {
            return (None, None);
        };
        let update_static_leases = scopes
            .find(|scope| scope.ddns.update_static_leases)
            .unwrap_or(false);
        if !update_static_leases && !decision.settings.client_updates_a {
            return (None, None);
        }
        // ISC's mocked-up lease takes the client identifier and the hardware address from
        // the request (`ack_lease`), as a dynamic lease does.
        let hardware = &self.inbound.hardware;
        let client = match self.inbound.client_id {
            Some(client_id) if !client_id.is_empty() => ClientIdentity::ClientId(client_id),
            _ => ClientIdentity::Hardware {
                htype: hardware.htype,
                address: hardware
                    .bytes
                    .get(..usize::from(hardware.len))
                    .unwrap_or_default(),
            },
        };
        let ends = crate::engine::lease_time::expiry(self.now, seconds);
        let operation = crate::ddns::lease::operation_for_static_lease(
            address,
            client,
            &decision.settings,
            ends,
            self.now,
        );
        (decision.reply, operation)
    }
}

/// The DDNS settings of `address`, just acknowledged to the client of `request` (ISC resolves
/// them while it builds the DHCPACK; the daemon asks again once the lease is committed, so
/// that the decision path carries nothing more). `None` without updates, or for an address
/// outside the pools (a fixed address's update is decided with its DHCPACK:
/// `Context::static_lease_ddns`).
pub(crate) fn settings_for(
    engine: &Engine,
    now: UnixTime,
    snapshot: &Snapshot,
    request: &Request<'_>,
    address: Ipv4Addr,
) -> Option<DdnsSettings> {
    engine.config.ddns.style?;
    let inbound = Inbound::parse(request.message).ok()?;
    // No billing here: the lease is already decided.
    let no_billing = crate::lease::billing::BillingTotals::default();
    let context = Context {
        engine,
        now,
        snapshot,
        request,
        classification: classify(&engine.config, snapshot.hosts.as_deref(), &inbound),
        inbound,
        options: std::cell::OnceCell::new(),
        billing: &no_billing,
    };
    let pool = engine.pool_of(address)?;
    let base = engine.config.pools.get(pool.0 as usize)?.scope;
    // The same scopes as the DHCPACK's, with its address (`leased-address` in a
    // `ddns-hostname = …` expression).
    let scopes = context.scopes_at(base, Some(address), None);
    context.ddns(&scopes).map(|decision| decision.settings)
}
