//! Logging with `tracing`: to standard error with `-d` (or in the foreground), to syslog otherwise,
//! as ISC dhcpd does (facility `daemon`, or the config's `log-facility`). `tracing` is the one
//! logging facade of the code base; dependencies that log through the `log` crate (aya) reach the
//! same subscriber through tracing's log bridge.
//!
//! Each DHCP exchange is summarised at info level in ISC dhcpd's own words (server/dhcp.c), so
//! that log watchers written for ISC keep working: `DHCPDISCOVER from aa:bb:cc:dd:ee:ff via
//! eth0`, `DHCPOFFER on 10.0.0.5 to aa:bb:cc:dd:ee:ff via eth0`, where `via` names the relay
//! (giaddr) for a relayed request. Under a flood these lines are rate-limited: a token bucket
//! lets a burst through, then a steady rate, and the next line that passes reports how many
//! were suppressed.

use std::ffi::CString;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

use crate::engine::{IgnoreReason, Malformation, Outcome};

/// The target of the exchange summaries (`RUST_LOG=xdhcpd::exchange=off` silences them).
pub const EXCHANGE_TARGET: &str = "xdhcpd::exchange";

/// A `tracing` layer writing each event as one syslog(3) line.
struct SyslogLayer;

/// Collects an event's message and, except for exchange summaries (whose fields repeat the
/// message), its fields as ` name=value`.
struct LineVisitor {
    message: String,
    fields: String,
    with_fields: bool,
}

impl tracing::field::Visit for LineVisitor {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            // The log bridge's metadata, not part of the message.
            name if name.starts_with("log.") => {}
            name if self.with_fields => {
                let _ = write!(self.fields, " {name}={value:?}");
            }
            _ => {}
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            name if name.starts_with("log.") => {}
            name if self.with_fields => {
                let _ = write!(self.fields, " {name}={value}");
            }
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SyslogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _context: Context<'_, S>) {
        let metadata = event.metadata();
        let mut visitor = LineVisitor {
            message: String::new(),
            fields: String::new(),
            with_fields: metadata.target() != EXCHANGE_TARGET,
        };
        event.record(&mut visitor);
        let priority = match *metadata.level() {
            tracing::Level::ERROR => libc::LOG_ERR,
            tracing::Level::WARN => libc::LOG_WARNING,
            tracing::Level::INFO => libc::LOG_INFO,
            tracing::Level::DEBUG | tracing::Level::TRACE => libc::LOG_DEBUG,
        };
        visitor.message.push_str(&visitor.fields);
        let Ok(line) = CString::new(visitor.message.replace('\0', " ")) else {
            return;
        };
        // SAFETY: "%s" with one valid C string argument.
        unsafe { libc::syslog(priority, c"%s".as_ptr(), line.as_ptr()) };
    }
}

/// The syslog facility for an ISC `log-facility` name (docs/spec/dhcpd-conf.md §4).
pub fn facility(name: &str) -> Option<libc::c_int> {
    Some(match name {
        "kern" => libc::LOG_KERN,
        "user" => libc::LOG_USER,
        "mail" => libc::LOG_MAIL,
        "daemon" => libc::LOG_DAEMON,
        "auth" => libc::LOG_AUTH,
        "syslog" => libc::LOG_SYSLOG,
        "lpr" => libc::LOG_LPR,
        "news" => libc::LOG_NEWS,
        "uucp" => libc::LOG_UUCP,
        "cron" => libc::LOG_CRON,
        "authpriv" => libc::LOG_AUTHPRIV,
        "ftp" => libc::LOG_FTP,
        "local0" => libc::LOG_LOCAL0,
        "local1" => libc::LOG_LOCAL1,
        "local2" => libc::LOG_LOCAL2,
        "local3" => libc::LOG_LOCAL3,
        "local4" => libc::LOG_LOCAL4,
        "local5" => libc::LOG_LOCAL5,
        "local6" => libc::LOG_LOCAL6,
        "local7" => libc::LOG_LOCAL7,
        _ => return None,
    })
}

/// Installs the subscriber once (with the `log` bridge, which only carries the lines of
/// dependencies that log through the `log` crate, aya's among them; our code uses `tracing`). `RUST_LOG` takes tracing's filter
/// syntax (`debug`, `info,xdhcpd::exchange=off`, …); the default is `info`.
pub fn init(to_stderr: bool, facility_name: Option<&str>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if to_stderr {
        use std::io::IsTerminal as _;
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init();
        return;
    }
    let facility = facility_name.and_then(facility).unwrap_or(libc::LOG_DAEMON);
    // SAFETY: the identifier is a static C string that lives for the whole process.
    unsafe { libc::openlog(c"xdhcpd".as_ptr(), libc::LOG_PID, facility) };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(SyslogLayer)
        .try_init();
}

/// A token bucket in GCRA form (one atomic, no lock on the packet path): `burst` lines at once,
/// then one per `interval_nanos`. Time comes in as an argument.
#[derive(Debug)]
pub struct RateLimiter {
    /// Theoretical arrival time of the next line, in nanoseconds.
    next: AtomicU64,
    interval_nanos: u64,
    tolerance_nanos: u64,
    suppressed: AtomicU64,
}

impl RateLimiter {
    pub const fn new(per_second: u64, burst: u64) -> Self {
        Self::per_interval(1_000_000_000 / per_second, burst)
    }

    /// `burst` lines at once, then one per `interval_nanos` (for rates under one a second).
    pub const fn per_interval(interval_nanos: u64, burst: u64) -> Self {
        Self {
            next: AtomicU64::new(0),
            interval_nanos,
            tolerance_nanos: interval_nanos * burst.saturating_sub(1),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines suppressed since the last admitted one)` when a line may go out at `now`,
    /// `None` when it is suppressed (and counted).
    pub fn admit(&self, now_nanos: u64) -> Option<u64> {
        let mut next = self.next.load(Ordering::Relaxed);
        loop {
            let start = next.max(now_nanos);
            if start - now_nanos > self.tolerance_nanos {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            match self.next.compare_exchange_weak(
                next,
                start + self.interval_nanos,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(self.suppressed.swap(0, Ordering::Relaxed)),
                Err(current) => next = current,
            }
        }
    }
}

/// Exchange summaries: 200 lines at once, then 100 a second (ISC logs every exchange; a flood
/// of them would cost more than the exchanges).
static EXCHANGE_LIMITER: RateLimiter = RateLimiter::new(100, 200);

#[expect(
    clippy::disallowed_methods,
    reason = "the logger is a driver: it owns its clock"
)]
fn monotonic_nanos() -> u64 {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    let start = *START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Whether a line of the log site that `limiter` guards may go out now. When it may, the
/// returned suffix says how many lines of that site were suppressed before it ("" when none).
/// Used through [`crate::log_limited!`]: one mechanism for every line an outsider or a failing
/// disk can repeat (the exchange summaries above use the same [`RateLimiter`]).
pub fn admit_line(limiter: &RateLimiter) -> Option<String> {
    admit_line_at(limiter, monotonic_nanos())
}

fn admit_line_at(limiter: &RateLimiter, now_nanos: u64) -> Option<String> {
    limiter.admit(now_nanos).map(|suppressed| match suppressed {
        0 => String::new(),
        count => format!(" ({count} similar messages suppressed)"),
    })
}

/// `log_limited!(LIMITER, error, "format", args…)`: logs at the given `tracing` level
/// when the `static` [`RateLimiter`] admits the line, with the count of suppressed lines
/// appended to the next one that passes.
#[macro_export]
macro_rules! log_limited {
    ($limiter:expr, $level:ident, $($arg:tt)+) => {
        if let Some(note) = $crate::logging::admit_line(&$limiter) {
            tracing::$level!("{}{}", format_args!($($arg)+), note);
        }
    };
}

/// ISC's `print_hw_addr`: colon-separated lowercase hex.
fn hardware_text(message: &Message) -> String {
    // dhcproto's `chaddr()` slices by hlen and panics past the 16-byte field: check first.
    let length = usize::from(message.hlen());
    if length > 16 {
        return format!("<hlen {length}>");
    }
    let mut text = String::with_capacity(length * 3);
    for (index, byte) in message.chaddr().iter().enumerate() {
        if index > 0 {
            text.push(':');
        }
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// ` (hostname) ` when the client sent option 12 (ISC prints it between the address and `via`),
/// with anything unprintable replaced so that a client cannot forge log lines.
fn hostname_text(message: &Message) -> String {
    match message.opts().get(OptionCode::Hostname) {
        Some(DhcpOption::Hostname(name)) => {
            let clean: String = name
                .chars()
                .take(64)
                .map(|c| if c.is_ascii_graphic() { c } else { '?' })
                .collect();
            format!(" ({clean})")
        }
        _ => String::new(),
    }
}

/// The relay (giaddr) for a relayed request, else the receiving interface.
fn via_text(message: &Message, interface: &str) -> String {
    if message.giaddr().is_unspecified() {
        interface.to_string()
    } else {
        message.giaddr().to_string()
    }
}

/// The address a DHCPREQUEST asks for: option 50, else ciaddr (RFC 2131 §4.3.2).
fn requested_address(message: &Message) -> Ipv4Addr {
    match message.opts().get(OptionCode::RequestedIpAddress) {
        Some(DhcpOption::RequestedIpAddress(address)) => *address,
        _ => message.ciaddr(),
    }
}

fn reason_text(reason: &IgnoreReason) -> String {
    match reason {
        IgnoreReason::Malformed(problem) => format!("malformed request ({problem:?})"),
        IgnoreReason::UnsupportedMessageType(code) => format!("unsupported message type {code}"),
        IgnoreReason::NotAuthoritative => "wrong network, not authoritative".into(),
        IgnoreReason::UnknownSubnet => "unknown network segment".into(),
        IgnoreReason::NoFreeAddress => "no free leases".into(),
        IgnoreReason::NotForUs => "not ours (another server, or load balanced to the peer)".into(),
        IgnoreReason::UnknownLease => "unknown lease".into(),
        IgnoreReason::Denied => "denied by configuration".into(),
        IgnoreReason::TooEarly => "secs below min-secs".into(),
        IgnoreReason::RateLimited(limit) => format!("rate limited ({limit:?})"),
        IgnoreReason::DeclineOfOtherClient => "address held by another client".into(),
        IgnoreReason::PingCheckPending => "offer waits for its ping-check".into(),
        // ISC `ack_lease` names the last class tried ("(last: 'NAME')"); the line here has no
        // config to name it from.
        IgnoreReason::NoAvailableBilling(_) => {
            "no available billing: lease limit reached in all matching classes".into()
        }
    }
}

/// The request line and the reply line ISC dhcpd 4.4 logs for one exchange (server/dhcp.c:
/// `dhcpdiscover`, `dhcprequest`, `dhcprelease`, `dhcpdecline`, `dhcpinform`, `ack_lease`,
/// `nak_lease`; bootp.c). An unanswered request carries the reason after a colon, as ISC's
/// "no free leases" does.
pub fn exchange_lines(message: &Message, outcome: &Outcome, interface: &str) -> Vec<String> {
    let mac = hardware_text(message);
    let host = hostname_text(message);
    let via = via_text(message, interface);
    let mut lines = Vec::with_capacity(2);
    let mut request = match message.opts().msg_type() {
        Some(MessageType::Discover) => format!("DHCPDISCOVER from {mac}{host} via {via}"),
        Some(MessageType::Request) => {
            let server = match message.opts().get(OptionCode::ServerIdentifier) {
                Some(DhcpOption::ServerIdentifier(server)) => format!(" ({server})"),
                _ => String::new(),
            };
            format!(
                "DHCPREQUEST for {}{server} from {mac}{host} via {via}",
                requested_address(message)
            )
        }
        Some(MessageType::Decline) => format!(
            "DHCPDECLINE of {} from {mac}{host} via {via}",
            requested_address(message)
        ),
        Some(MessageType::Release) => format!(
            "DHCPRELEASE of {} from {mac}{host} via {via} ({}found)",
            message.ciaddr(),
            if matches!(outcome, Outcome::Released(_)) {
                ""
            } else {
                "not "
            }
        ),
        Some(MessageType::Inform) => format!("DHCPINFORM from {} via {via}", message.ciaddr()),
        // server/dhcpleasequery.c: "DHCPLEASEQUERY from GIADDR for IP A" and its refusals.
        Some(MessageType::LeaseQuery) => {
            let giaddr = message.giaddr();
            let target = crate::engine::LeaseQueryTarget::of(message);
            return match (outcome, target) {
                (Outcome::LeaseQueried { answer, associated }, Some(target)) => {
                    let target = target.describe();
                    vec![
                        format!("DHCPLEASEQUERY from {giaddr} for {target}"),
                        format!(
                            "{} to {giaddr} for {target} ({associated} associated IPs)",
                            crate::engine::answer_name(*answer)
                        ),
                    ]
                }
                (Outcome::Ignored(IgnoreReason::Denied), _) => vec![format!(
                    "DHCPLEASEQUERY from {giaddr}: LEASEQUERY not allowed, query ignored"
                )],
                (Outcome::Ignored(IgnoreReason::Malformed(Malformation::MissingField(_))), _) => {
                    vec![format!(
                        "DHCPLEASEQUERY from {giaddr}: missing giaddr, ciaddr is {}, no reply sent",
                        message.ciaddr()
                    )]
                }
                (Outcome::Ignored(reason), _) => vec![format!(
                    "DHCPLEASEQUERY from {giaddr}: {}",
                    reason_text(reason)
                )],
                _ => vec![format!("DHCPLEASEQUERY from {giaddr}")],
            };
        }
        None => format!("BOOTREQUEST from {mac} via {via}"),
        Some(other) => format!("{other:?} from {mac} via {via}"),
    };
    let reply = match outcome {
        Outcome::Offered(address) => {
            Some(format!("DHCPOFFER on {address} to {mac}{host} via {via}"))
        }
        Outcome::Acked(address) => Some(format!("DHCPACK on {address} to {mac}{host} via {via}")),
        Outcome::Nacked => Some(format!(
            "DHCPNAK on {} to {mac} via {via}",
            requested_address(message)
        )),
        Outcome::Informed => Some(format!("DHCPACK to {} ({mac}) via {via}", message.ciaddr())),
        Outcome::BootReplied(address) => Some(format!("BOOTREPLY on {address} to {mac} via {via}")),
        Outcome::LeaseQueried { .. } => None,
        Outcome::Released(_) | Outcome::Declined(_) => None,
        Outcome::Ignored(reason) => {
            let _ = write!(request, ": {}", reason_text(reason));
            None
        }
    };
    lines.push(request);
    lines.extend(reply);
    lines
}

/// Logs the summary of one exchange at info level, rate-limited. The limiter is asked first,
/// so that a flood costs an atomic per line, not the formatting. Returns how many lines the
/// limiter suppressed (for the metrics).
/// Writes the lines of dhcpd.conf `log` statements at their priority (dhcp-eval(5)
/// "LOGGING"; ISC `log_fatal` here only logs: a packet must not stop the server).
pub fn statement_lines(lines: &[(crate::config::model::LogPriority, String)]) {
    use crate::config::model::LogPriority;
    for (priority, line) in lines {
        match priority {
            LogPriority::Fatal | LogPriority::Error => {
                tracing::error!(target: EXCHANGE_TARGET, "{line}")
            }
            LogPriority::Info => tracing::info!(target: EXCHANGE_TARGET, "{line}"),
            LogPriority::Debug => tracing::debug!(target: EXCHANGE_TARGET, "{line}"),
        }
    }
}

pub fn exchange(message: &Message, outcome: &Outcome, interface: &str) -> u64 {
    if !tracing::enabled!(target: EXCHANGE_TARGET, tracing::Level::INFO) {
        return 0;
    }
    let wanted = match outcome {
        Outcome::Released(_) | Outcome::Declined(_) | Outcome::Ignored(_) => 1,
        _ => 2,
    };
    let now = monotonic_nanos();
    let (mut admitted, mut reported, mut suppressed_now) = (0, 0, 0);
    for _ in 0..wanted {
        match EXCHANGE_LIMITER.admit(now) {
            Some(suppressed) => {
                admitted += 1;
                reported += suppressed;
            }
            None => suppressed_now += 1,
        }
    }
    if reported > 0 {
        tracing::info!(target: EXCHANGE_TARGET, suppressed = reported, "{reported} messages suppressed");
    }
    // At one `now` the limiter admits a prefix: the request line before the reply line. Lines
    // the limiter refused are not even formatted: under load that is nearly all of them, and
    // formatting them cost ~3 % of the server's CPU at 5,000 DORA/s (BENCHMARKS.md, issue 14).
    if admitted > 0 {
        for line in exchange_lines(message, outcome, interface)
            .iter()
            .take(admitted)
        {
            tracing::info!(target: EXCHANGE_TARGET, xid = message.xid(), "{line}");
        }
    }
    suppressed_now
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: Option<MessageType>, giaddr: Ipv4Addr) -> Message {
        let mut message = Message::default();
        message
            .set_chaddr(&[0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f])
            .set_giaddr(giaddr);
        if let Some(kind) = kind {
            message.opts_mut().insert(DhcpOption::MessageType(kind));
        }
        message
    }

    #[test]
    fn lines_use_isc_wording() {
        let address = Ipv4Addr::new(10, 0, 0, 5);
        let discover = message(Some(MessageType::Discover), Ipv4Addr::UNSPECIFIED);
        assert_eq!(
            exchange_lines(&discover, &Outcome::Offered(address), "eth0"),
            [
                "DHCPDISCOVER from aa:bb:cc:dd:ee:0f via eth0",
                "DHCPOFFER on 10.0.0.5 to aa:bb:cc:dd:ee:0f via eth0"
            ]
        );
        let mut request = message(Some(MessageType::Request), Ipv4Addr::new(10, 1, 0, 1));
        request
            .opts_mut()
            .insert(DhcpOption::RequestedIpAddress(address));
        request
            .opts_mut()
            .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 0, 1)));
        request
            .opts_mut()
            .insert(DhcpOption::Hostname("laptop\n".into()));
        assert_eq!(
            exchange_lines(&request, &Outcome::Acked(address), "eth0"),
            [
                "DHCPREQUEST for 10.0.0.5 (10.0.0.1) from aa:bb:cc:dd:ee:0f (laptop?) via 10.1.0.1",
                "DHCPACK on 10.0.0.5 to aa:bb:cc:dd:ee:0f (laptop?) via 10.1.0.1"
            ]
        );
        assert_eq!(
            exchange_lines(
                &discover,
                &Outcome::Ignored(IgnoreReason::NoFreeAddress),
                "eth0"
            ),
            ["DHCPDISCOVER from aa:bb:cc:dd:ee:0f via eth0: no free leases"]
        );
        assert_eq!(
            exchange_lines(&request, &Outcome::Nacked, "eth0")[1],
            "DHCPNAK on 10.0.0.5 to aa:bb:cc:dd:ee:0f via 10.1.0.1"
        );
    }

    /// A hostile hlen must not reach dhcproto's panicking `chaddr()`.
    #[test]
    fn oversized_hardware_length_is_printed_not_sliced() {
        use dhcproto::{Decodable as _, Encodable as _};
        let mut bytes = message(Some(MessageType::Discover), Ipv4Addr::UNSPECIFIED)
            .to_vec()
            .unwrap();
        bytes[2] = 200;
        let discover = Message::from_bytes(&bytes).unwrap();
        assert_eq!(
            exchange_lines(
                &discover,
                &Outcome::Ignored(IgnoreReason::Malformed(
                    crate::engine::Malformation::HardwareAddressTooLong
                )),
                "eth0"
            )[0],
            "DHCPDISCOVER from <hlen 200> via eth0: malformed request (HardwareAddressTooLong)"
        );
    }

    #[test]
    fn limited_lines_report_what_they_suppressed() {
        // As for the refused failover connections: 10 at once, then one per 10 s.
        let limiter = RateLimiter::per_interval(10_000_000_000, 10);
        let start = 5_000_000_000_000;
        let admitted: Vec<String> = (0..2_000)
            .filter_map(|_| admit_line_at(&limiter, start))
            .collect();
        assert_eq!(admitted, vec![String::new(); 10]);
        assert_eq!(admit_line_at(&limiter, start + 1_000_000_000), None);
        assert_eq!(
            admit_line_at(&limiter, start + 10_000_000_000).as_deref(),
            Some(" (1991 similar messages suppressed)")
        );
    }

    #[test]
    fn limiter_lets_a_burst_through_then_a_steady_rate() {
        let limiter = RateLimiter::new(100, 5);
        let start = 1_000_000_000_000;
        let admitted = (0..20).filter(|_| limiter.admit(start).is_some()).count();
        assert_eq!(admitted, 5);
        // 10 ms later one more line may go, and it reports the 15 suppressed ones.
        assert_eq!(limiter.admit(start + 10_000_000), Some(15));
        assert_eq!(limiter.admit(start + 10_000_000), None);
        // After a quiet second the whole burst is available again.
        let later = start + 2_000_000_000;
        assert_eq!(limiter.admit(later), Some(1));
        assert_eq!(
            (0..10).filter(|_| limiter.admit(later).is_some()).count(),
            4
        );
    }
}
