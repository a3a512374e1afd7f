//! Dynamic DNS updates as ISC dhcpd 4.4 makes them (dhcpd.conf(5) "DYNAMIC DNS UPDATES"):
//! when a lease becomes active the server adds the client's A record with a guard record (a
//! DHCID under `ddns-update-style standard`, ISC's TXT under `interim`) and the PTR record;
//! when the lease ends it removes them again, but only if the guard shows they are still this
//! client's (RFC 4703).
//!
//! - [`guard`] — the guard values (RFC 4701 DHCID, ISC's interim TXT) and the lease-file
//!   variables ISC keeps them in;
//! - [`lease`] — sans-IO: which operations a lease change needs (ISC's `ddns_updates`,
//!   `ddns_removals`), and the lease variables to write back after (`ddns-fwd-name`,
//!   `ddns-dhcid`/`ddns-txt`, `ddns-rev-name`);
//! - [`plan`] — sans-IO: the UPDATE messages of each step and the transitions on each answer,
//!   as ISC's common/dns.c and server/ddns.c;
//! - [`zones`] — `zone` declarations: which server and key a name's update goes to;
//! - [`tsig`] — RFC 8945 signing and verification (hmac-md5, hmac-sha2);
//! - [`wire`] — RFC 2136 messages encoded and answers decoded with hickory-proto;
//! - [`updater`] — the driver: a bounded queue and one task that sends, off the packet path;
//! - [`metrics`] — `xdhcpd_ddns_*`, registered with the daemon's metrics;
//! - [`fqdn`] — option 81 and the choice of the name (the engine asks at DHCPACK);
//! - [`driver`] — the daemon's updater and the thread that writes the variables of finished
//!   operations back through `crate::changes::apply` (source `Ddns`).
//!
//! Wired through `crate::changes`: each source's `Effects::dns` says whether its changes add
//! or remove names.

pub mod driver;
pub mod fqdn;
pub mod guard;
pub mod lease;
pub mod metrics;
pub mod plan;
pub mod transport;
pub mod tsig;
pub mod updater;
pub mod wire;
pub mod zones;

pub use guard::{Guard, Style};
pub use metrics::DdnsMetrics;
pub use plan::{Binding, Operation, Policy};
pub use updater::{Updater, UpdaterSettings};
pub use zones::{Zone, ZoneDeclaration, Zones};
