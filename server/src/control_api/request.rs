//! The request decoder of the JSON control API: the bytes of an HTTP body to a typed
//! [`Request`], with Kea's command names and argument shapes (Kea ARM "Management API",
//! `lease_cmds` and `host_cmds` hooks). Sans-IO and total: any input ends in a [`Request`] or an
//! [`Answer`] with result 1 (malformed) or 2 (unsupported command); fuzzed by
//! `fuzz/fuzz_targets/control_api_request.rs`.

use std::net::Ipv4Addr;

use serde_json::{Map, Value};

use super::answer::Answer;
use crate::lease::record::Hardware;

/// Bodies above this are refused before parsing (a lease4-add is a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;

/// Every command the API serves, in `list-commands` order.
pub const COMMANDS: [&str; 19] = [
    "config-reload",
    "config-test",
    "lease4-add",
    "lease4-del",
    "lease4-get",
    "lease4-get-by-client-id",
    "lease4-get-by-hw-address",
    "lease4-get-page",
    "lease4-update",
    "lease4-wipe",
    "lease-file-rewrite",
    "list-commands",
    "reservation-add",
    "reservation-del",
    "reservation-get",
    "statistic-get-all",
    "status-get",
    "version-get",
    "build-report",
];

/// One decoded command.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub command: Command,
    /// `"service": ["dhcp4"]`: the servers the control agent forwards to; empty when absent.
    pub services: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    LeaseGet(LeaseSelector),
    LeaseGetByHwAddress(Hardware),
    LeaseGetByClientId(Vec<u8>),
    /// `from`: `None` for `"start"`; the page holds leases above it, in address order.
    LeaseGetPage {
        from: Option<Ipv4Addr>,
        limit: usize,
    },
    LeaseAdd(LeaseArguments),
    LeaseUpdate(LeaseArguments),
    LeaseDel(LeaseSelector),
    /// Without a subnet id, every subnet.
    LeaseWipe {
        subnet_id: Option<u32>,
    },
    ReservationGet(HostSelector),
    ReservationAdd(Reservation),
    ReservationDel(HostSelector),
    /// `arguments.dhcpd-conf`: the text to check; without it, the configuration file.
    ConfigTest {
        text: Option<String>,
    },
    ConfigReload,
    StatisticGetAll,
    StatusGet,
    /// Not Kea's: start the rewrite of the lease file now (ISC and xdhcpd rewrite it at start-up
    /// and hourly), in the background beside the appends.
    LeaseFileRewrite,
    VersionGet,
    BuildReport,
    ListCommands,
}

/// How `lease4-get` and `lease4-del` name a lease: by address, or by `identifier-type` and
/// `identifier` within `subnet-id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseSelector {
    Address(Ipv4Addr),
    Hardware { hardware: Hardware, subnet_id: u32 },
    ClientId { client_id: Vec<u8>, subnet_id: u32 },
}

/// The arguments of `lease4-add` and `lease4-update` (Kea's `Lease4Parser`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LeaseArguments {
    pub address: Option<Ipv4Addr>,
    pub subnet_id: Option<u32>,
    pub hardware: Option<Hardware>,
    pub client_id: Option<Vec<u8>>,
    pub valid_lifetime: Option<u32>,
    /// `cltt`, or `expire − valid-lft` when `expire` is given instead.
    pub cltt: Option<u32>,
    pub expire: Option<u32>,
    pub hostname: Option<String>,
    /// Kea's state: 0 default, 1 declined, 2 expired-reclaimed.
    pub state: Option<u8>,
    /// `lease4-update` only: create the lease when there is none.
    pub force_create: bool,
}

/// Kea's host identifier types that an ISC host declaration can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentifierKind {
    HwAddress,
    ClientId,
}

impl IdentifierKind {
    pub fn name(self) -> &'static str {
        match self {
            IdentifierKind::HwAddress => "hw-address",
            IdentifierKind::ClientId => "client-id",
        }
    }
}

/// How `reservation-get` and `reservation-del` name a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostSelector {
    Address {
        subnet_id: Option<u32>,
        address: Ipv4Addr,
    },
    Identifier {
        subnet_id: Option<u32>,
        kind: IdentifierKind,
        value: Vec<u8>,
    },
}

/// `reservation-add`'s `reservation`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub subnet_id: Option<u32>,
    pub kind: IdentifierKind,
    pub identifier: Vec<u8>,
    pub address: Option<Ipv4Addr>,
    pub hostname: Option<String>,
}

/// Decodes a request body. Errors are Kea's answers: result 1 for malformed input (with what
/// was wrong), 2 for a command this server does not have.
pub fn parse(body: &[u8]) -> Result<Request, Answer> {
    if body.len() > MAX_BODY {
        return Err(Answer::error(format!(
            "request body of {} bytes is over the limit of {MAX_BODY}",
            body.len()
        )));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| Answer::error(format!("invalid JSON: {error}")))?;
    let Value::Object(object) = value else {
        return Err(Answer::error("the request must be a JSON map"));
    };
    let command = match object.get("command") {
        Some(Value::String(command)) => command.as_str(),
        Some(_) => return Err(Answer::error("'command' must be a string")),
        None => return Err(Answer::error("'command' parameter missing")),
    };
    let services = match object.get("service") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(services)) => services
            .iter()
            .map(|service| match service {
                Value::String(name) => Ok(name.clone()),
                _ => Err(Answer::error("'service' must be a list of strings")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(Answer::error("'service' must be a list of strings")),
    };
    let empty = Map::new();
    let arguments = match object.get("arguments") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(arguments)) => arguments,
        Some(_) => return Err(Answer::error("'arguments' must be a map")),
    };
    let args = Args(arguments);
    let command = match command {
        "lease4-get" => Command::LeaseGet(lease_selector(&args)?),
        "lease4-get-by-hw-address" => {
            Command::LeaseGetByHwAddress(hardware(&args.required_string("hw-address")?)?)
        }
        "lease4-get-by-client-id" => Command::LeaseGetByClientId(hex_bytes(
            "client-id",
            &args.required_string("client-id")?,
        )?),
        "lease4-get-page" => lease_page(&args)?,
        "lease4-add" => Command::LeaseAdd(lease_arguments(&args, false)?),
        "lease4-update" => Command::LeaseUpdate(lease_arguments(&args, true)?),
        "lease4-del" => Command::LeaseDel(lease_selector(&args)?),
        "lease4-wipe" => Command::LeaseWipe {
            subnet_id: args.u32("subnet-id")?.filter(|id| *id != 0),
        },
        "reservation-get" => Command::ReservationGet(host_selector(&args)?),
        "reservation-del" => Command::ReservationDel(host_selector(&args)?),
        "reservation-add" => Command::ReservationAdd(reservation(&args)?),
        "config-test" => Command::ConfigTest {
            text: args.string("dhcpd-conf")?,
        },
        "config-reload" => Command::ConfigReload,
        "statistic-get-all" => Command::StatisticGetAll,
        "status-get" => Command::StatusGet,
        "lease-file-rewrite" => Command::LeaseFileRewrite,
        "version-get" => Command::VersionGet,
        "build-report" => Command::BuildReport,
        "list-commands" => Command::ListCommands,
        other => return Err(Answer::unsupported(other)),
    };
    Ok(Request { command, services })
}

/// The `arguments` map with typed getters whose errors name the argument.
struct Args<'a>(&'a Map<String, Value>);

impl Args<'_> {
    fn string(&self, name: &str) -> Result<Option<String>, Answer> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(Answer::error(format!("'{name}' is not a string"))),
        }
    }

    fn required_string(&self, name: &str) -> Result<String, Answer> {
        self.string(name)?
            .ok_or_else(|| Answer::error(format!("'{name}' parameter not specified")))
    }

    fn u32(&self, name: &str) -> Result<Option<u32>, Answer> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(number)) => number
                .as_u64()
                .and_then(|number| u32::try_from(number).ok())
                .map(Some)
                .ok_or_else(|| {
                    Answer::error(format!("'{name}' must be an integer from 0 to 4294967295"))
                }),
            Some(_) => Err(Answer::error(format!("'{name}' is not an integer"))),
        }
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, Answer> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(_) => Err(Answer::error(format!("'{name}' is not a boolean"))),
        }
    }

    fn address(&self, name: &str) -> Result<Option<Ipv4Addr>, Answer> {
        self.string(name)?
            .map(|text| {
                text.parse::<Ipv4Addr>().map_err(|_| {
                    Answer::error(format!("'{name}' is not an IPv4 address: '{text}'"))
                })
            })
            .transpose()
    }

    fn map(&self, name: &str) -> Result<Option<Args<'_>>, Answer> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Args(map))),
            Some(_) => Err(Answer::error(format!("'{name}' is not a map"))),
        }
    }
}

/// Colon- (or dash-, space-) separated hex octets, or plain hex, as Kea reads identifiers.
pub fn hex_bytes(name: &str, text: &str) -> Result<Vec<u8>, Answer> {
    let bad = || Answer::error(format!("'{name}' is not a hex string: '{text}'"));
    let parts: Vec<&str> = text.split([':', '-', ' ']).collect();
    let bytes: Option<Vec<u8>> = if parts.len() > 1 {
        parts
            .iter()
            .map(|part| match part.len() {
                1 | 2 => u8::from_str_radix(part, 16).ok(),
                _ => None,
            })
            .collect()
    } else {
        let digits = text.strip_prefix("0x").unwrap_or(text);
        digits
            .len()
            .is_multiple_of(2)
            .then(|| {
                (0..digits.len())
                    .step_by(2)
                    .map(|at| {
                        digits
                            .get(at..at + 2)
                            .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    })
                    .collect()
            })
            .flatten()
    };
    match bytes {
        Some(bytes) if !bytes.is_empty() && bytes.len() <= 255 => Ok(bytes),
        _ => Err(bad()),
    }
}

/// An Ethernet hardware address (htype 1, as Kea's `HWAddr` from text).
fn hardware(text: &str) -> Result<Hardware, Answer> {
    let bytes = hex_bytes("hw-address", text)?;
    Hardware::new(1, &bytes)
        .ok_or_else(|| Answer::error(format!("'hw-address' is longer than 16 octets: '{text}'")))
}

fn identifier_kind(text: &str) -> Result<IdentifierKind, Answer> {
    match text {
        "hw-address" => Ok(IdentifierKind::HwAddress),
        "client-id" => Ok(IdentifierKind::ClientId),
        "address" | "duid" | "circuit-id" | "flex-id" | "remote-id" | "relay-id" => {
            Err(Answer::error(format!(
                "identifier type '{text}' is not supported by xdhcpd"
            )))
        }
        other => Err(Answer::error(format!(
            "unknown identifier type '{other}' (hw-address or client-id)"
        ))),
    }
}

fn lease_selector(args: &Args<'_>) -> Result<LeaseSelector, Answer> {
    if let Some(address) = args.address("ip-address")? {
        return Ok(LeaseSelector::Address(address));
    }
    let kind = args.string("identifier-type")?;
    let identifier = args.string("identifier")?;
    let (Some(kind), Some(identifier)) = (kind, identifier) else {
        return Err(Answer::error(
            "Either 'ip-address' or 'identifier-type' and 'identifier' must be specified",
        ));
    };
    let subnet_id = args
        .u32("subnet-id")?
        .ok_or_else(|| Answer::error("'subnet-id' parameter not specified"))?;
    match identifier_kind(&kind)? {
        IdentifierKind::HwAddress => Ok(LeaseSelector::Hardware {
            hardware: hardware(&identifier)?,
            subnet_id,
        }),
        IdentifierKind::ClientId => Ok(LeaseSelector::ClientId {
            client_id: hex_bytes("identifier", &identifier)?,
            subnet_id,
        }),
    }
}

fn lease_page(args: &Args<'_>) -> Result<Command, Answer> {
    let from = match args.string("from")? {
        None => return Err(Answer::error("'from' parameter not specified")),
        Some(text) if text == "start" => None,
        Some(text) => Some(text.parse::<Ipv4Addr>().map_err(|_| {
            Answer::error(format!(
                "'from' parameter value is neither 'start' keyword nor a valid IPv4 address: '{text}'"
            ))
        })?),
    };
    let limit = args
        .u32("limit")?
        .ok_or_else(|| Answer::error("'limit' parameter not specified"))?;
    if limit == 0 {
        return Err(Answer::error("page size of retrieved leases must not be 0"));
    }
    Ok(Command::LeaseGetPage {
        from,
        limit: limit as usize,
    })
}

fn lease_arguments(args: &Args<'_>, update: bool) -> Result<LeaseArguments, Answer> {
    let address = Some(
        args.address("ip-address")?
            .ok_or_else(|| Answer::error("'ip-address' parameter not specified"))?,
    );
    let hardware = Some(hardware(&args.required_string("hw-address")?)?);
    let client_id = args
        .string("client-id")?
        .filter(|text| !text.is_empty())
        .map(|text| hex_bytes("client-id", &text))
        .transpose()?;
    let hostname = args.string("hostname")?;
    if let Some(name) = &hostname {
        if name.len() > 255 || name.bytes().any(|byte| !(0x20..0x7f).contains(&byte)) {
            return Err(Answer::error(
                "'hostname' must be printable ASCII of at most 255 characters",
            ));
        }
    }
    let state = match args.u32("state")? {
        None => None,
        Some(state @ 0..=2) => Some(state as u8),
        Some(other) => {
            return Err(Answer::error(format!(
                "invalid state value: {other}, supported values are: 0 (default), 1 (declined) and 2 (expired-reclaimed)"
            )))
        }
    };
    // fqdn-fwd/-rev are read for their type only: ISC's lease file records the names DNS was
    // updated with, not a wish (README "JSON control API").
    args.bool("fqdn-fwd")?;
    args.bool("fqdn-rev")?;
    Ok(LeaseArguments {
        address,
        subnet_id: args.u32("subnet-id")?.filter(|id| *id != 0),
        hardware,
        client_id,
        valid_lifetime: args.u32("valid-lft")?,
        cltt: args.u32("cltt")?,
        expire: args.u32("expire")?,
        hostname: hostname.filter(|name| !name.is_empty()),
        state,
        force_create: update && args.bool("force-create")?.unwrap_or(false),
    })
}

fn host_selector(args: &Args<'_>) -> Result<HostSelector, Answer> {
    let subnet_id = args.u32("subnet-id")?;
    if let Some(address) = args.address("ip-address")? {
        return Ok(HostSelector::Address { subnet_id, address });
    }
    let kind = args.string("identifier-type")?;
    let identifier = args.string("identifier")?;
    let (Some(kind), Some(identifier)) = (kind, identifier) else {
        return Err(Answer::error(
            "missing parameter 'ip-address' or 'identifier-type' and 'identifier'",
        ));
    };
    let kind = identifier_kind(&kind)?;
    let value = match kind {
        IdentifierKind::HwAddress => hardware(&identifier)?.address().to_vec(),
        IdentifierKind::ClientId => hex_bytes("identifier", &identifier)?,
    };
    Ok(HostSelector::Identifier {
        subnet_id,
        kind,
        value,
    })
}

fn reservation(args: &Args<'_>) -> Result<Reservation, Answer> {
    let reservation = args
        .map("reservation")?
        .ok_or_else(|| Answer::error("reservation must be specified"))?;
    let hw = reservation.string("hw-address")?;
    let client_id = reservation.string("client-id")?;
    let (kind, identifier) = match (hw, client_id) {
        (Some(hw), None) => (IdentifierKind::HwAddress, hardware(&hw)?.address().to_vec()),
        (None, Some(id)) => (IdentifierKind::ClientId, hex_bytes("client-id", &id)?),
        (Some(_), Some(_)) => {
            return Err(Answer::error(
                "a reservation has one identifier: 'hw-address' or 'client-id', not both",
            ))
        }
        (None, None) => {
            return Err(Answer::error(
                "a reservation needs an identifier: 'hw-address' or 'client-id'",
            ))
        }
    };
    for unsupported in ["duid", "circuit-id", "flex-id", "ip-addresses", "prefixes"] {
        if reservation.0.contains_key(unsupported) {
            return Err(Answer::error(format!(
                "'{unsupported}' is not supported in an IPv4 reservation of xdhcpd"
            )));
        }
    }
    let hostname = reservation
        .string("hostname")?
        .filter(|name| !name.is_empty());
    if let Some(name) = &hostname {
        let valid = name.len() <= 255
            && name.bytes().all(|byte| {
                byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.' || byte == b'_'
            });
        if !valid {
            return Err(Answer::error(format!(
                "'hostname' must be a host name (letters, digits, '-', '.', '_'): '{name}'"
            )));
        }
    }
    Ok(Reservation {
        subnet_id: reservation.u32("subnet-id")?,
        kind,
        identifier,
        address: reservation.address("ip-address")?,
        hostname,
    })
}
