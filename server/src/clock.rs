//! The drivers' clock: the one place that reads wall-clock time for the protocol logic, which
//! takes time as an argument (DESIGN.md "The sans-IO boundary"; `clippy.toml` forbids the clock
//! elsewhere). Shared by the daemon, the failover drivers and the OMAPI server, so none of them
//! reaches into another for it.

use crate::lease::record::UnixTime;

/// Seconds since the Unix epoch, clamped below `u32::MAX` (ISC's lease times are 32-bit).
#[expect(clippy::disallowed_methods, reason = "driver owns the clock")]
pub fn unix_now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs().min(u64::from(u32::MAX - 1)) as UnixTime)
        .unwrap_or(0)
}

/// A monotonic instant, for durations the drivers measure (lock hold times, timeouts).
#[expect(clippy::disallowed_methods, reason = "driver owns the clock")]
pub fn monotonic() -> std::time::Instant {
    std::time::Instant::now()
}
