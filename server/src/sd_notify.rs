//! systemd's readiness protocol (sd_notify(3)), through the `sd-notify` crate: the daemon runs
//! the same without systemd (no `$NOTIFY_SOCKET`: every call is a no-op).
//!
//! The unit (`packaging/xdhcpd.service`) is `Type=notify`: systemd considers the service started
//! only after `READY=1`, which the daemon sends once its sockets are bound, and brackets a
//! SIGHUP reload with `RELOADING=1` … `READY=1`.

use sd_notify::NotifyState;

/// Sends `states` to systemd when `$NOTIFY_SOCKET` is set; a failure is logged, never fatal
/// (the service still runs; systemd will time the start out and say so). The variable is kept:
/// a reload notifies again.
fn notify(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(error) = sd_notify::notify(false, states) {
        tracing::warn!("sd_notify {:?}: {error}", states.first());
    }
}

/// `READY=1`: sockets are bound, the server answers (sd_notify(3)).
pub fn ready(status: &str) {
    notify(&[
        NotifyState::Ready,
        NotifyState::Status(status),
        NotifyState::MainPid(std::process::id()),
    ]);
}

/// `RELOADING=1` at the start of a SIGHUP reload; `MONOTONIC_USEC` is required by systemd ≥ 253
/// for `Type=notify-reload` and harmless before.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(_) => notify(&[NotifyState::Reloading]),
    }
}

/// `STOPPING=1` when a graceful shutdown starts.
pub fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;

    /// A fake systemd: a datagram socket bound to a temporary path receives what we send. One
    /// test owns `$NOTIFY_SOCKET` (the environment is process-wide).
    #[test]
    fn ready_reloading_and_stopping_reach_the_notify_socket() {
        let directory = std::env::temp_dir().join(format!("xdhcpd-notify-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("temporary directory");
        let path = directory.join("notify");
        let _ = std::fs::remove_file(&path);
        let systemd = UnixDatagram::bind(&path).expect("bind fake NOTIFY_SOCKET");
        // SAFETY: no other test of this crate reads or writes NOTIFY_SOCKET.
        unsafe { std::env::set_var("NOTIFY_SOCKET", &path) };
        let mut buffer = [0u8; 256];
        super::ready("serving");
        let length = systemd.recv(&mut buffer).expect("receive");
        let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
        assert!(
            text.starts_with("READY=1\nSTATUS=serving\nMAINPID="),
            "{text}"
        );
        super::reloading();
        let length = systemd.recv(&mut buffer).expect("receive");
        let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
        assert!(text.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{text}");
        super::stopping();
        let length = systemd.recv(&mut buffer).expect("receive");
        assert_eq!(&buffer[..length], b"STOPPING=1\nSTATUS=shutting down\n");
        // SAFETY: as above.
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        let _ = std::fs::remove_dir_all(&directory);
    }
}
