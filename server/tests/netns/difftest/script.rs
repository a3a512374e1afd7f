//! The corpus of the differential harness (testdata/difftest/): for each `NAME.conf`, the
//! client script `NAME.exchanges` and an optional starting lease file `NAME.leases`.
//!
//! A script is a list of lines (`#` starts a comment):
//!
//! ```text
//! ci                                   # this config belongs to the CI subset
//! client NAME KEY=VALUE…               # a client identity
//! exchange NAME client=NAME [KEY=VALUE…]   # a scripted exchange, its steps follow:
//!   discover|request-selecting|request-init-reboot|request-renewing|request-rebinding|
//!   inform|release|decline|bootp|leasequery [KEY=VALUE…]   # bootp: a BOOTREQUEST without
//!                                      # option 53; leasequery: a DHCPLEASEQUERY (RFC 4388)
//!                                      # sent by the relay `via` names
//!   sleep SECONDS
//! ```
//!
//! Client keys (also allowed on `exchange` and step lines, the later winning): `mac`,
//! `client-id` (61), `prl` (55, `1,3,6` or `none`), `vendor-class` (60), `user-class` (77),
//! `hostname` (12), `arch` (93), `lease-time` (51), `max-size` (57), `option.N` (any option),
//! `secs`, `broadcast` (the flag), `via` (`direct` or a relay address: the giaddr),
//! `circuit-id` / `remote-id` (option 82 sub-options 1 and 2 added by that relay) and `agent`
//! (the whole option 82 payload). Step-only keys: `ip` (option 50), `ciaddr` (an address,
//! `lease` or `0.0.0.0`), `server-id` (an address or `none`), `wait` (seconds).
//! VALUE is a number, a "quoted text" or colon-separated hex (`01:02:aa`).
//!
//! Requests are stateful: a REQUEST in SELECTING carries the yiaddr and server identifier of
//! the OFFER that this server gave, RENEWING/REBINDING/RELEASE use the address of the last
//! OFFER or ACK as ciaddr, as a real client does.

use anyhow::{anyhow, bail, Context as _, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

/// One configuration of the corpus and what is done against it.
#[derive(Clone, Debug)]
pub struct CorpusConfig {
    pub name: String,
    pub conf_text: String,
    /// The lease file both servers start from (empty when the config has none).
    pub leases_text: String,
    pub exchanges: Vec<Exchange>,
    /// Whether `cargo xtask test` runs it (the `ci` line).
    pub ci: bool,
}

#[derive(Clone, Debug)]
pub struct Exchange {
    pub name: String,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug)]
pub enum Step {
    Sleep(f64),
    Send {
        /// Unique in the exchange: `N-kind`.
        name: String,
        kind: StepKind,
        settings: Settings,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    Discover,
    RequestSelecting,
    RequestInitReboot,
    RequestRenewing,
    RequestRebinding,
    Inform,
    Release,
    Decline,
    /// RFC 951 BOOTREQUEST: no DHCP message type (option 53).
    Bootp,
    /// RFC 4388 DHCPLEASEQUERY from the relay agent `via` (its giaddr): by `ciaddr` (an
    /// address or `lease`), else by `client-id`, else by `mac` (chaddr).
    LeaseQuery,
}

impl StepKind {
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "discover" => Self::Discover,
            "request-selecting" => Self::RequestSelecting,
            "request-init-reboot" => Self::RequestInitReboot,
            "request-renewing" => Self::RequestRenewing,
            "request-rebinding" => Self::RequestRebinding,
            "inform" => Self::Inform,
            "release" => Self::Release,
            "decline" => Self::Decline,
            "bootp" => Self::Bootp,
            "leasequery" => Self::LeaseQuery,
            _ => return None,
        })
    }

    /// DHCP message type (option 53); 0 for none.
    fn message_type(self) -> u8 {
        match self {
            Self::Bootp => 0,
            Self::Discover => 1,
            Self::RequestSelecting
            | Self::RequestInitReboot
            | Self::RequestRenewing
            | Self::RequestRebinding => 3,
            Self::Decline => 4,
            Self::Release => 7,
            Self::Inform => 8,
            Self::LeaseQuery => 10,
        }
    }
}

/// Keys and values (a later line's value overrides an earlier one).
pub type Settings = BTreeMap<String, String>;

const CLIENT_KEYS: &[&str] = &[
    "mac",
    "client-id",
    "prl",
    "vendor-class",
    "user-class",
    "hostname",
    "arch",
    "lease-time",
    "max-size",
    "secs",
    "broadcast",
    "via",
    "circuit-id",
    "remote-id",
    "agent",
];
const STEP_KEYS: &[&str] = &["ip", "ciaddr", "server-id", "wait"];

fn key_allowed(key: &str, step: bool) -> bool {
    CLIENT_KEYS.contains(&key)
        || key
            .strip_prefix("option.")
            .is_some_and(|code| code.parse::<u8>().is_ok())
        || (step && STEP_KEYS.contains(&key))
}

/// Splits a line into words; a "quoted string" is one word (kept with its quotes).
fn words(line: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for character in line.chars() {
        match character {
            '"' => {
                quoted = !quoted;
                current.push(character);
            }
            '#' if !quoted => break,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        bail!("unterminated quoted string");
    }
    if !current.is_empty() {
        words.push(current);
    }
    Ok(words)
}

fn settings(words: &[String], step: bool) -> Result<Settings> {
    let mut settings = Settings::new();
    for word in words {
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| anyhow!("`{word}` is not KEY=VALUE"))?;
        if !key_allowed(key, step) {
            bail!("unknown key `{key}`");
        }
        // Checked here so that a typo fails when the corpus is read, not in the lab.
        match key {
            "secs" | "arch" | "lease-time" | "max-size" => {
                value
                    .parse::<u64>()
                    .with_context(|| format!("`{key}` takes a number"))?;
            }
            "wait" => {
                value
                    .parse::<f64>()
                    .with_context(|| format!("`{key}` takes seconds"))?;
            }
            "client-id" | "vendor-class" | "user-class" | "hostname" | "circuit-id"
            | "remote-id" | "agent" => {
                value_bytes(value).with_context(|| format!("value of `{key}`"))?;
            }
            _ if key.starts_with("option.") => {
                value_bytes(value).with_context(|| format!("value of `{key}`"))?;
            }
            _ => {}
        }
        settings.insert(key.to_owned(), value.to_owned());
    }
    Ok(settings)
}

/// Bytes of a value: "text", colon-hex, or a decimal number (as one byte; callers that need
/// wider integers parse the text themselves).
pub fn value_bytes(value: &str) -> Result<Vec<u8>> {
    if let Some(text) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        return Ok(text.as_bytes().to_vec());
    }
    if value.contains(':') {
        return value
            .split(':')
            .map(|byte| u8::from_str_radix(byte, 16).with_context(|| format!("hex `{value}`")))
            .collect();
    }
    let number: u64 = value
        .parse()
        .with_context(|| format!("`{value}` is not \"text\", hex or a number"))?;
    Ok(vec![
        u8::try_from(number).context("a bare number here is one byte")?
    ])
}

fn number(settings: &Settings, key: &str) -> Result<Option<u64>> {
    settings
        .get(key)
        .map(|value| value.parse().with_context(|| format!("`{key}={value}`")))
        .transpose()
}

fn parse_script(name: &str, text: &str) -> Result<(bool, Vec<Exchange>)> {
    let mut ci = false;
    let mut clients: BTreeMap<String, Settings> = BTreeMap::new();
    let mut exchanges: Vec<Exchange> = Vec::new();
    // The current exchange's settings (client + exchange line).
    let mut base = Settings::new();
    for (index, line) in text.lines().enumerate() {
        let context = || format!("{name}.exchanges line {}", index + 1);
        let words = words(line).with_context(context)?;
        let Some((first, rest)) = words.split_first() else {
            continue;
        };
        match first.as_str() {
            "ci" => ci = true,
            "client" => {
                let (client, rest) = rest
                    .split_first()
                    .ok_or_else(|| anyhow!("client without a name"))
                    .with_context(context)?;
                let settings = settings(rest, false).with_context(context)?;
                if !settings.contains_key("mac") {
                    return Err(anyhow!("client {client} has no mac")).with_context(context);
                }
                clients.insert(client.clone(), settings);
            }
            "exchange" => {
                let (exchange, rest) = rest
                    .split_first()
                    .ok_or_else(|| anyhow!("exchange without a name"))
                    .with_context(context)?;
                if exchanges.iter().any(|known| &known.name == exchange) {
                    return Err(anyhow!("exchange {exchange} declared twice"))
                        .with_context(context);
                }
                let (client_words, other_words): (Vec<String>, Vec<String>) = rest
                    .iter()
                    .cloned()
                    .partition(|word| word.starts_with("client="));
                let client = client_words
                    .first()
                    .and_then(|word| word.strip_prefix("client="))
                    .ok_or_else(|| anyhow!("exchange {exchange} names no client="))
                    .with_context(context)?;
                base = clients
                    .get(client)
                    .cloned()
                    .ok_or_else(|| anyhow!("unknown client {client}"))
                    .with_context(context)?;
                base.extend(settings(&other_words, false).with_context(context)?);
                exchanges.push(Exchange {
                    name: exchange.clone(),
                    steps: Vec::new(),
                });
            }
            "sleep" => {
                let seconds: f64 = rest
                    .first()
                    .and_then(|word| word.parse().ok())
                    .ok_or_else(|| anyhow!("sleep needs SECONDS"))
                    .with_context(context)?;
                let exchange = exchanges
                    .last_mut()
                    .ok_or_else(|| anyhow!("a step before any exchange"))
                    .with_context(context)?;
                exchange.steps.push(Step::Sleep(seconds));
            }
            word => {
                let kind = StepKind::parse(word)
                    .ok_or_else(|| anyhow!("unknown line `{word}`"))
                    .with_context(context)?;
                let exchange = exchanges
                    .last_mut()
                    .ok_or_else(|| anyhow!("a step before any exchange"))
                    .with_context(context)?;
                let mut step_settings = base.clone();
                step_settings.extend(settings(rest, true).with_context(context)?);
                let sends = exchange
                    .steps
                    .iter()
                    .filter(|step| matches!(step, Step::Send { .. }))
                    .count();
                exchange.steps.push(Step::Send {
                    name: format!("{}-{word}", sends + 1),
                    kind,
                    settings: step_settings,
                });
            }
        }
    }
    Ok((ci, exchanges))
}

/// A config built in code (a test's table of cases) rather than read from the corpus: the
/// dhcpd.conf text and the script, in the `.exchanges` form.
pub fn parse_config(name: &str, conf_text: &str, script: &str) -> Result<CorpusConfig> {
    let (ci, exchanges) = parse_script(name, script)?;
    if exchanges.is_empty() {
        bail!("{name} has no exchange");
    }
    Ok(CorpusConfig {
        name: name.to_owned(),
        conf_text: conf_text.to_owned(),
        leases_text: String::new(),
        exchanges,
        ci,
    })
}

/// Reads every `*.conf` of `dir` with its `.exchanges` (required) and `.leases` (optional),
/// sorted by name.
pub fn load_corpus(dir: &Path) -> Result<Vec<CorpusConfig>> {
    let mut configs = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "conf"))
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .ok_or_else(|| anyhow!("{} has no name", path.display()))?;
        let conf_text = fs::read_to_string(&path)?;
        let script_path = path.with_extension("exchanges");
        let script = fs::read_to_string(&script_path)
            .with_context(|| format!("read {}", script_path.display()))?;
        let leases_text = fs::read_to_string(path.with_extension("leases")).unwrap_or_default();
        let (ci, exchanges) = parse_script(&name, &script)?;
        if exchanges.is_empty() {
            bail!("{} has no exchange", script_path.display());
        }
        configs.push(CorpusConfig {
            name,
            conf_text,
            leases_text,
            exchanges,
            ci,
        });
    }
    Ok(configs)
}

/// Encodes one option (RFC 3396 splitting of long values) as hex.
fn option_hex(out: &mut String, code: u8, value: &[u8]) {
    let mut chunks = value.chunks(255).peekable();
    if chunks.peek().is_none() {
        let _ = write!(out, "{code:02x}00");
    }
    for chunk in chunks {
        let _ = write!(out, "{code:02x}{:02x}", chunk.len());
        for byte in chunk {
            let _ = write!(out, "{byte:02x}");
        }
    }
}

/// The client's options after 53/50/54, in the order a typical client sends them.
fn options_hex(settings: &Settings) -> Result<String> {
    let mut out = String::new();
    if let Some(id) = settings.get("client-id") {
        option_hex(&mut out, 61, &value_bytes(id)?);
    }
    if let Some(size) = number(settings, "max-size")? {
        option_hex(&mut out, 57, &u16::try_from(size)?.to_be_bytes());
    }
    if let Some(time) = number(settings, "lease-time")? {
        option_hex(&mut out, 51, &u32::try_from(time)?.to_be_bytes());
    }
    if let Some(name) = settings.get("hostname") {
        option_hex(&mut out, 12, &value_bytes(name)?);
    }
    if let Some(arch) = number(settings, "arch")? {
        option_hex(&mut out, 93, &u16::try_from(arch)?.to_be_bytes());
    }
    if let Some(class) = settings.get("vendor-class") {
        option_hex(&mut out, 60, &value_bytes(class)?);
    }
    if let Some(class) = settings.get("user-class") {
        option_hex(&mut out, 77, &value_bytes(class)?);
    }
    for (key, value) in settings {
        if let Some(code) = key.strip_prefix("option.") {
            option_hex(&mut out, code.parse()?, &value_bytes(value)?);
        }
    }
    match settings.get("prl").map(String::as_str) {
        None | Some("none") => {}
        Some(list) => {
            let codes = list
                .split(',')
                .map(|code| {
                    code.trim()
                        .parse::<u8>()
                        .with_context(|| format!("prl {list}"))
                })
                .collect::<Result<Vec<u8>>>()?;
            option_hex(&mut out, 55, &codes);
        }
    }
    Ok(if out.is_empty() { "-".to_owned() } else { out })
}

/// Option 82's payload added by the relay: `agent` verbatim, else circuit-id (1) and
/// remote-id (2) sub-options.
fn relay_agent_hex(settings: &Settings) -> Result<String> {
    if let Some(agent) = settings.get("agent") {
        let bytes = value_bytes(agent)?;
        return Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect());
    }
    let mut out = String::new();
    for (code, key) in [(1u8, "circuit-id"), (2, "remote-id")] {
        if let Some(value) = settings.get(key) {
            option_hex(&mut out, code, &value_bytes(value)?);
        }
    }
    Ok(if out.is_empty() { "-".to_owned() } else { out })
}

/// The steps file for the client (difftest_client.py): every exchange of `config`, with
/// fixed xids (`0x5EED0000 + exchange × 0x100 + step`).
pub fn render_steps(config: &CorpusConfig) -> Result<String> {
    let mut out = String::new();
    for (exchange_index, exchange) in config.exchanges.iter().enumerate() {
        let _ = writeln!(out, "exchange {}", exchange.name);
        for (step_index, step) in exchange.steps.iter().enumerate() {
            match step {
                Step::Sleep(seconds) => {
                    let _ = writeln!(out, "sleep {seconds}");
                }
                Step::Send {
                    name,
                    kind,
                    settings,
                } => {
                    let xid = 0x5EED_0000u32 + (exchange_index as u32) * 0x100 + step_index as u32;
                    let line = render_step(*kind, settings, xid).with_context(|| {
                        format!("{} exchange {} step {name}", config.name, exchange.name)
                    })?;
                    let _ = writeln!(out, "step {}/{name} {line}", exchange.name);
                }
            }
        }
    }
    Ok(out)
}

fn render_step(kind: StepKind, settings: &Settings, xid: u32) -> Result<String> {
    use StepKind::*;
    let mac = settings
        .get("mac")
        .ok_or_else(|| anyhow!("no mac"))?
        .to_ascii_lowercase();
    let relay = match settings.get("via").map(String::as_str) {
        None | Some("direct") => None,
        Some(address) => Some(
            address
                .parse::<std::net::Ipv4Addr>()
                .with_context(|| format!("via={address}"))?,
        ),
    };
    // RENEWING and RELEASE go from the client straight to the server (RFC 2131 §4.4.5, §4.4.6),
    // never through the relay.
    let relayed = relay.filter(|_| !matches!(kind, RequestRenewing | Release));
    let broadcast = settings
        .get("broadcast")
        .is_some_and(|flag| matches!(flag.as_str(), "true" | "1" | "on"));
    let mut fields = vec![
        format!("msg={}", kind.message_type()),
        format!("mac={mac}"),
        format!("xid={xid:08x}"),
        format!("secs={}", number(settings, "secs")?.unwrap_or(0)),
        format!("flags={}", if broadcast { 0x8000 } else { 0 }),
        format!("opts={}", options_hex(settings)?),
    ];
    let default_ciaddr = match kind {
        RequestRenewing | RequestRebinding | Inform | Release => "lease",
        _ => "0.0.0.0",
    };
    let ciaddr = settings
        .get("ciaddr")
        .map_or(default_ciaddr, String::as_str);
    fields.push(format!("ciaddr={ciaddr}"));
    let default_requested = match kind {
        RequestSelecting | RequestInitReboot | Decline => Some("lease"),
        _ => None,
    };
    if let Some(ip) = settings.get("ip").map(String::as_str).or(default_requested) {
        fields.push(format!("opt50={ip}"));
    }
    let default_server_id = match kind {
        RequestSelecting | Decline | Release => Some("server"),
        _ => None,
    };
    match settings.get("server-id").map(String::as_str) {
        Some("none") => {}
        Some(address) => fields.push(format!("opt54={address}")),
        None => fields.extend(default_server_id.map(|id| format!("opt54={id}"))),
    }
    // Unicast from the client's address: RENEWING, RELEASE, and INFORM from a client that has
    // an address (RFC 2131 §4.4.3).
    let unicast = matches!(kind, RequestRenewing | Release)
        || (kind == Inform && ciaddr != "0.0.0.0" && relayed.is_none());
    if let Some(relay) = relayed {
        fields.push(format!("giaddr={relay}"));
        fields.push("ipsrc=giaddr".to_owned());
        fields.push("ipdst=server".to_owned());
        fields.push("sport=67".to_owned());
        fields.push(format!("relay82={}", relay_agent_hex(settings)?));
    } else if unicast {
        fields.push("ipsrc=ciaddr".to_owned());
        fields.push("ipdst=server".to_owned());
    } else if ciaddr != "0.0.0.0" {
        // REBINDING: a broadcast from the client's address.
        fields.push("ipsrc=ciaddr".to_owned());
        fields.push("ipdst=broadcast".to_owned());
    } else {
        fields.push("ipsrc=0".to_owned());
        fields.push("ipdst=broadcast".to_owned());
    }
    // Long enough for a debug build's fsync on a loaded machine: a reply that comes later is
    // counted as none. Nobody answers RELEASE and DECLINE; their wait only catches a server
    // that would.
    let default_wait = if matches!(kind, Release | Decline) {
        "0.5"
    } else {
        "2.0"
    };
    let wait = settings.get("wait").map_or(default_wait, String::as_str);
    wait.parse::<f64>()
        .with_context(|| format!("wait={wait}"))?;
    fields.push(format!("wait={wait}"));
    Ok(fields.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_script() {
        let text = "ci\nclient a mac=02:00:00:00:00:01 prl=1,3 vendor-class=\"PXE x\"\n\
                    exchange dora client=a via=10.230.0.1 circuit-id=\"ge-0/0/1\"\n\
                    discover secs=3\nrequest-selecting\nsleep 1\nrelease\n";
        let (ci, exchanges) = parse_script("t", text).unwrap();
        assert!(ci);
        assert_eq!(exchanges[0].steps.len(), 4);
        let config = CorpusConfig {
            name: "t".into(),
            conf_text: String::new(),
            leases_text: String::new(),
            exchanges,
            ci,
        };
        let steps = render_steps(&config).unwrap();
        assert!(steps.contains("step dora/1-discover msg=1"), "{steps}");
        assert!(steps.contains("relay82=010867652d302f302f31"), "{steps}");
        assert!(steps.contains("step dora/3-release msg=7"), "{steps}");
    }
}
