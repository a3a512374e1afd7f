//! Logging: to standard error with `-d` (or in the foreground), to syslog otherwise, as ISC
//! dhcpd does (facility `daemon`, or the config's `log-facility`).

use std::ffi::CString;

/// A `log` backend writing to syslog(3).
struct SyslogLogger {
    level: log::LevelFilter,
}

impl log::Log for SyslogLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let priority = match record.level() {
            log::Level::Error => libc::LOG_ERR,
            log::Level::Warn => libc::LOG_WARNING,
            log::Level::Info => libc::LOG_INFO,
            log::Level::Debug | log::Level::Trace => libc::LOG_DEBUG,
        };
        let Ok(message) = CString::new(record.args().to_string().replace('\0', " ")) else {
            return;
        };
        // SAFETY: "%s" with one valid C string argument.
        unsafe { libc::syslog(priority, c"%s".as_ptr(), message.as_ptr()) };
    }

    fn flush(&self) {}
}

/// The syslog facility for an ISC `log-facility` name (dhcpd-conf.md §4).
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

/// Installs the logger once. `RUST_LOG` overrides the level (default `info`).
pub fn init(to_stderr: bool, facility_name: Option<&str>) {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(log::LevelFilter::Info);
    if to_stderr {
        let _ = env_logger::Builder::new()
            .filter_level(level)
            .format_timestamp_millis()
            .try_init();
        return;
    }
    let facility = facility_name.and_then(facility).unwrap_or(libc::LOG_DAEMON);
    // SAFETY: the identifier is a static C string that lives for the whole process.
    unsafe { libc::openlog(c"xdhcpd".as_ptr(), libc::LOG_PID, facility) };
    if log::set_boxed_logger(Box::new(SyslogLogger { level })).is_ok() {
        log::set_max_level(level);
    }
}
