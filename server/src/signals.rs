//! The daemon's signals, through `signal-hook`: SIGTERM and SIGINT ask for a graceful stop,
//! SIGHUP for a reload (`crate::reload`), SIGPIPE is absorbed (a peer closing a socket must not
//! end the process). The handlers only set flags the driver's loops read; no static is written.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGPIPE, SIGTERM};

/// What the signals asked for, shared by the main loop, the workers and the fast path.
#[derive(Clone, Debug, Default)]
pub struct Signals {
    /// SIGTERM/SIGINT, or an OMAPI `control` shutdown ([`Signals::request_shutdown`]).
    shutdown: Arc<AtomicBool>,
    /// SIGHUP, taken once by [`Signals::take_reload`].
    reload: Arc<AtomicBool>,
    /// SIGPIPE: never read.
    broken_pipe: Arc<AtomicBool>,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> io::Result<Self> {
        let signals = Self::default();
        signal_hook::flag::register(SIGTERM, signals.shutdown.clone())?;
        signal_hook::flag::register(SIGINT, signals.shutdown.clone())?;
        signal_hook::flag::register(SIGHUP, signals.reload.clone())?;
        signal_hook::flag::register(SIGPIPE, signals.broken_pipe.clone())?;
        Ok(signals)
    }

    /// True once a stop was asked for.
    pub fn shutdown_requested(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    /// Asks for a graceful stop (OMAPI `control` `state = 2`).
    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }

    /// The flag itself, for loops that poll it (the fast-path thread).
    pub fn shutdown_flag(&self) -> Arc<AtomicBool> {
        self.shutdown.clone()
    }

    /// True once per SIGHUP received since the last call.
    pub fn take_reload(&self) -> bool {
        self.reload.swap(false, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sighup_is_taken_once_and_sigterm_asks_for_a_stop() {
        let signals = Signals::install().expect("handlers");
        assert!(!signals.take_reload());
        signal_hook::low_level::raise(SIGHUP).expect("raise SIGHUP");
        assert!(signals.take_reload());
        assert!(!signals.take_reload());
        // SIGPIPE no longer ends the process.
        signal_hook::low_level::raise(SIGPIPE).expect("raise SIGPIPE");
        assert!(!signals.shutdown_requested());
        signals.request_shutdown();
        assert!(signals.shutdown_requested());
    }
}
