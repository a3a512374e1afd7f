//! systemd's readiness protocol (sd_notify(3)): one datagram of `KEY=VALUE` lines to the unix
//! socket named by `$NOTIFY_SOCKET`. Written here rather than linked from libsystemd: the
//! protocol is a single `sendto`, and the daemon must run the same without systemd (no
//! variable: every call is a no-op).
//!
//! The unit (`packaging/xdhcpd.service`) is `Type=notify`: systemd considers the service started
//! only after `READY=1`, which the daemon sends once its sockets are bound, and brackets a
//! SIGHUP reload with `RELOADING=1` … `READY=1`.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

/// Where systemd listens, from `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifySocket {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

impl NotifySocket {
    /// Reads `$NOTIFY_SOCKET`; `None` when the daemon does not run under a notify-type unit.
    pub fn from_env() -> Option<Self> {
        let value = std::env::var_os("NOTIFY_SOCKET")?;
        Self::parse(value.as_bytes())
    }

    /// `@name` is an abstract socket (sd_notify(3)); anything else a filesystem path. An empty
    /// value names nothing.
    pub fn parse(value: &[u8]) -> Option<Self> {
        match value {
            [] | [b'@'] => None,
            [b'@', name @ ..] => Some(Self::Abstract(name.to_vec())),
            path => Some(Self::Path(PathBuf::from(std::ffi::OsStr::from_bytes(path)))),
        }
    }

    /// Sends one notification (e.g. `"READY=1\nSTATUS=serving"`).
    pub fn send(&self, message: &str) -> io::Result<()> {
        let socket = UnixDatagram::unbound()?;
        match self {
            Self::Path(path) => socket.send_to(message.as_bytes(), path)?,
            Self::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.send_to_addr(message.as_bytes(), &address)?
            }
        };
        Ok(())
    }
}

/// Sends `message` to systemd when `$NOTIFY_SOCKET` is set; a failure is logged, never fatal
/// (the service still runs; systemd will time the start out and say so).
pub fn notify(message: &str) {
    let Some(socket) = NotifySocket::from_env() else {
        return;
    };
    if let Err(error) = socket.send(message) {
        log::warn!(
            "sd_notify {:?}: {error}",
            message.lines().next().unwrap_or("")
        );
    }
}

/// `READY=1`: sockets are bound, the server answers (sd_notify(3)).
pub fn ready(status: &str) {
    notify(&format!(
        "READY=1\nSTATUS={status}\nMAINPID={}",
        std::process::id()
    ));
}

/// `RELOADING=1` at the start of a SIGHUP reload; `MONOTONIC_USEC` is required by systemd ≥ 253
/// for `Type=notify-reload` and harmless before.
pub fn reloading() {
    notify(&format!(
        "RELOADING=1\nMONOTONIC_USEC={}",
        monotonic_microseconds()
    ));
}

/// `STOPPING=1` when a graceful shutdown starts.
pub fn stopping() {
    notify("STOPPING=1\nSTATUS=shutting down");
}

/// CLOCK_MONOTONIC in microseconds, as systemd's `MONOTONIC_USEC` wants it.
fn monotonic_microseconds() -> u64 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut time) };
    (time.tv_sec.max(0) as u64) * 1_000_000 + (time.tv_nsec.max(0) as u64) / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_abstract_names() {
        assert_eq!(NotifySocket::parse(b""), None);
        assert_eq!(NotifySocket::parse(b"@"), None);
        assert_eq!(
            NotifySocket::parse(b"/run/systemd/notify"),
            Some(NotifySocket::Path(PathBuf::from("/run/systemd/notify")))
        );
        assert_eq!(
            NotifySocket::parse(b"@xdhcpd-test"),
            Some(NotifySocket::Abstract(b"xdhcpd-test".to_vec()))
        );
    }

    /// A fake systemd: a datagram socket bound to a temporary path receives what we send.
    #[test]
    fn sends_one_datagram_to_a_path_socket() {
        let directory = std::env::temp_dir().join(format!("xdhcpd-notify-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("temporary directory");
        let path = directory.join("notify");
        let _ = std::fs::remove_file(&path);
        let systemd = UnixDatagram::bind(&path).expect("bind fake NOTIFY_SOCKET");
        let socket = NotifySocket::parse(path.as_os_str().as_bytes()).expect("a path");
        socket.send("READY=1\nSTATUS=serving").expect("send");
        let mut buffer = [0u8; 256];
        let length = systemd.recv(&mut buffer).expect("receive");
        assert_eq!(&buffer[..length], b"READY=1\nSTATUS=serving");
        let _ = std::fs::remove_dir_all(&directory);
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("xdhcpd-notify-test-{}", std::process::id());
        let address =
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("name");
        let systemd = UnixDatagram::bind_addr(&address).expect("bind abstract");
        let socket = NotifySocket::parse(format!("@{name}").as_bytes()).expect("abstract");
        socket.send("STOPPING=1").expect("send");
        let mut buffer = [0u8; 64];
        let length = systemd.recv(&mut buffer).expect("receive");
        assert_eq!(&buffer[..length], b"STOPPING=1");
    }

    #[test]
    fn a_missing_listener_is_an_error_not_a_panic() {
        let socket = NotifySocket::Path(PathBuf::from("/nonexistent/xdhcpd/notify"));
        assert!(socket.send("READY=1").is_err());
    }
}
