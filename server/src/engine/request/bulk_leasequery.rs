//! RFC 6926 bulk leasequery, the answers (sans-IO; the TCP framing and listener are
//! `crate::bulk_leasequery`). ISC dhcpd 4.4 has none; this follows the RFC and Kea's
//! `lease_query` hook: a DHCPBULKLEASEQUERY (14) asks by ciaddr, chaddr, client identifier,
//! relay-id (option 82 sub-option 12, RFC 6925), remote-id (sub-option 2), or for every
//! active lease, optionally limited to the leases whose last transaction falls between
//! query-start-time (154) and query-end-time (155). Each lease found is one DHCPLEASEACTIVE
//! (13) or DHCPLEASEUNASSIGNED (11) with the query's xid, then one DHCPLEASEQUERYDONE (15)
//! ends the answer (§7.4). A refused or malformed query gets a DHCPLEASEQUERYDONE with a
//! status code (151, §6.2.2).

use std::net::{Ipv4Addr, SocketAddrV4};

use dhcproto::v4::{Message, MessageType, OptionCode};

use crate::config::model::Permission;
use crate::lease::record::{BindingState, Lease, UnixTime, NEVER};

use super::super::options::{code, typed_option};
use super::super::LeaseLookup;
use super::leasequery::LeaseQueryTarget;
use super::*;

/// RFC 6926 §6.2.2 status codes (option 151).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum BulkStatus {
    Success = 0,
    UnspecFail = 1,
    QueryTerminated = 2,
    MalformedQuery = 3,
    NotAllowed = 4,
}

/// RFC 6926 §6.2 options.
const STATUS_CODE: u8 = 151;
const BASE_TIME: u8 = 152;
const QUERY_START_TIME: u8 = 154;
const QUERY_END_TIME: u8 = 155;
/// RFC 4388 option 91.
const CLIENT_LAST_TRANSACTION_TIME: u8 = 91;
/// RFC 6925 relay-id and RFC 3046 remote-id, sub-options of option 82.
const RELAY_ID: u8 = 12;
const REMOTE_ID: u8 = 2;

/// What a bulk query selects (RFC 6926 §7.2).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Selection {
    Single(LeaseQueryTarget),
    /// Active leases whose stashed option 82 has this sub-option with this value.
    AgentSubOption(u8, Vec<u8>),
    /// Every active lease.
    All,
}

/// The whole answer to one DHCPBULKLEASEQUERY from `peer` (the TCP peer's address, which
/// `allow leasequery` is looked up for as for a giaddr): the messages to stream, in order,
/// the last a DHCPLEASEQUERYDONE.
pub(crate) fn answer(
    engine: &Engine,
    now: UnixTime,
    snapshot: &Snapshot,
    peer: Ipv4Addr,
    server_id: Option<Ipv4Addr>,
    query: &Message,
    lookup: &dyn LeaseLookup,
) -> Vec<Message> {
    let done = |status: Option<(BulkStatus, &str)>| {
        let mut message = header(query, now, server_id, MessageType::LeaseQueryDone);
        if let Some((status, text)) = status {
            let mut value = vec![status as u8];
            value.extend_from_slice(text.as_bytes());
            message.opts_mut().insert(typed_option(STATUS_CODE, &value));
        }
        message
    };
    if query.opts().msg_type() != Some(MessageType::BulkLeaseQuery) {
        return vec![done(Some((
            BulkStatus::MalformedQuery,
            "not a DHCPBULKLEASEQUERY",
        )))];
    }
    let source = SocketAddrV4::new(peer, 0);
    let request = Request {
        message: query,
        source,
        interface_address: server_id,
        raw: None,
    };
    let inbound = match Inbound::parse(query) {
        Ok(inbound) => inbound,
        Err(_) => {
            return vec![done(Some((BulkStatus::MalformedQuery, "malformed query")))];
        }
    };
    let billing = crate::lease::billing::BillingTotals::default();
    let context = Context {
        engine,
        now,
        snapshot,
        request: &request,
        classification: classify(&engine.config, snapshot.hosts.as_deref(), &inbound),
        inbound,
        options: std::cell::OnceCell::new(),
        billing: &billing,
    };
    let scopes = context.relay_scopes(peer);
    if scopes.find(|scope| scope.leasequery) != Some(Permission::Allow) {
        return vec![done(Some((
            BulkStatus::NotAllowed,
            "leasequery not allowed for this requestor",
        )))];
    }
    let selection = match selection(query) {
        Ok(selection) => selection,
        Err(text) => return vec![done(Some((BulkStatus::MalformedQuery, text)))],
    };
    let start = time_option(query, QUERY_START_TIME);
    let end = time_option(query, QUERY_END_TIME);
    let in_window = |lease: &Lease| {
        start.is_none_or(|start| lease.cltt >= start) && end.is_none_or(|end| lease.cltt <= end)
    };
    let mut found: Vec<Lease> = match &selection {
        Selection::Single(LeaseQueryTarget::Address(address)) => {
            lookup.by_address(*address).into_iter().collect()
        }
        Selection::Single(LeaseQueryTarget::ClientId(id)) => lookup.by_client_id(id),
        Selection::Single(LeaseQueryTarget::Hardware(hardware)) => lookup.by_hardware(hardware),
        Selection::AgentSubOption(sub, value) => {
            let mut found = Vec::new();
            lookup.each_active(now, &mut |lease| {
                if has_sub_option(lease, *sub, value) {
                    found.push(lease.clone());
                }
            });
            found
        }
        Selection::All => {
            let mut found = Vec::new();
            lookup.each_active(now, &mut |lease| found.push(lease.clone()));
            found
        }
    };
    found.retain(in_window);
    found.sort_by_key(|lease| lease.address);
    let mut messages: Vec<Message> = found
        .iter()
        .map(|lease| lease_message(query, now, server_id, lease))
        .collect();
    messages.push(done(None));
    messages
}

/// What the query asks for, in RFC 6926 §6.2's order; more than one kind is malformed.
fn selection(query: &Message) -> Result<Selection, &'static str> {
    let sub_options = query
        .opts()
        .get(OptionCode::RelayAgentInformation)
        .and_then(super::super::packet::option_value)
        .map(|value| sub_options(&value))
        .unwrap_or_default();
    let sub = |code: u8| {
        sub_options
            .iter()
            .find(|(have, _)| *have == code)
            .map(|(_, value)| value.clone())
    };
    let mut kinds = Vec::new();
    if !query.ciaddr().is_unspecified() {
        kinds.push(Selection::Single(LeaseQueryTarget::Address(query.ciaddr())));
    }
    if let Some(id) = query
        .opts()
        .get(OptionCode::ClientIdentifier)
        .and_then(super::super::packet::option_value)
    {
        kinds.push(Selection::Single(LeaseQueryTarget::ClientId(id)));
    }
    if query.hlen() > 0 && query.chaddr().iter().any(|byte| *byte != 0) {
        if let Some(target) =
            crate::lease::record::Hardware::new(query.htype().into(), query.chaddr())
        {
            kinds.push(Selection::Single(LeaseQueryTarget::Hardware(target)));
        }
    }
    if let Some(relay_id) = sub(RELAY_ID) {
        kinds.push(Selection::AgentSubOption(RELAY_ID, relay_id));
    }
    if let Some(remote_id) = sub(REMOTE_ID) {
        kinds.push(Selection::AgentSubOption(REMOTE_ID, remote_id));
    }
    match kinds.len() {
        0 => Ok(Selection::All),
        1 => Ok(kinds.remove(0)),
        _ => Err("more than one query type"),
    }
}

/// RFC 3046 sub-options of an option 82 value (a truncated tail is dropped).
fn sub_options(rest: &[u8]) -> Vec<(u8, Vec<u8>)> {
    super::super::packet::agent_sub_options(rest)
}

fn has_sub_option(lease: &Lease, code: u8, value: &[u8]) -> bool {
    lease.extra.as_deref().is_some_and(|extra| {
        extra
            .agent_options
            .iter()
            .any(|(have, bytes)| *have == code && bytes == value)
    })
}

fn time_option(query: &Message, option: u8) -> Option<u32> {
    let value = query
        .opts()
        .get(OptionCode::from(option))
        .and_then(super::super::packet::option_value)?;
    Some(u32::from_be_bytes(value.as_slice().try_into().ok()?))
}

/// A reply's header: op 2, the query's xid (RFC 6926 §7.4: every message of the answer
/// carries it), message type, server identifier and base-time (152, the server's now).
fn header(
    query: &Message,
    now: UnixTime,
    server_id: Option<Ipv4Addr>,
    kind: MessageType,
) -> Message {
    let mut message = Message::default();
    message
        .set_opcode(dhcproto::v4::Opcode::BootReply)
        .set_xid(query.xid())
        .set_htype(query.htype())
        .set_chaddr(&[])
        .set_giaddr(query.giaddr());
    let options = message.opts_mut();
    options.insert(typed_option(code::MESSAGE_TYPE, &[u8::from(kind)]));
    if let Some(server_id) = server_id {
        options.insert(typed_option(code::SERVER_IDENTIFIER, &server_id.octets()));
    }
    options.insert(typed_option(BASE_TIME, &now.to_be_bytes()));
    message
}

/// One lease as RFC 6926 §7.4.2 reports it: ciaddr, chaddr, option 61, 51 (remaining),
/// 91 (since cltt), and the stashed relay agent information.
fn lease_message(
    query: &Message,
    now: UnixTime,
    server_id: Option<Ipv4Addr>,
    lease: &Lease,
) -> Message {
    let active = lease.binding_state == BindingState::Active;
    let kind = if active {
        MessageType::LeaseActive
    } else {
        MessageType::LeaseUnassigned
    };
    let mut message = header(query, now, server_id, kind);
    message.set_ciaddr(lease.address);
    if let Some(hardware) = &lease.hardware {
        message
            .set_htype(hardware.htype.into())
            .set_chaddr(hardware.address());
    }
    let options = message.opts_mut();
    if active {
        if let Some(uid) = lease.uid().filter(|uid| !uid.is_empty()) {
            options.insert(typed_option(code::CLIENT_IDENTIFIER, uid));
        }
        let remaining = if lease.ends == NEVER {
            u32::MAX
        } else {
            lease.ends.saturating_sub(now)
        };
        options.insert(typed_option(code::LEASE_TIME, &remaining.to_be_bytes()));
        if lease.cltt != 0 {
            let since = now.saturating_sub(lease.cltt);
            options.insert(typed_option(
                CLIENT_LAST_TRANSACTION_TIME,
                &since.to_be_bytes(),
            ));
        }
        if let Some(extra) = lease
            .extra
            .as_deref()
            .filter(|extra| !extra.agent_options.is_empty())
        {
            let value: Vec<u8> = extra
                .agent_options
                .iter()
                .flat_map(|(sub, bytes)| {
                    let length = bytes.len().min(255);
                    [*sub, length as u8]
                        .into_iter()
                        .chain(bytes[..length].iter().copied())
                })
                .collect();
            options.insert(typed_option(code::AGENT_OPTIONS, &value));
        }
    }
    message
}
