//! One lease as the store keeps it and as dhcpd.leases writes it (docs/spec/dhcpd-conf.md §8.4).
//!
//! Kept compact (the goal is ≤ 200 bytes per lease with indices at 1 M leases): times are `u32`
//! seconds since the epoch as ISC keeps them, rare fields live behind one optional box.

use std::net::Ipv4Addr;

/// Seconds since the Unix epoch, UTC. [`NEVER`] is ISC's "never" (`ends never;`); 0 is "absent".
pub type UnixTime = u32;

/// `ends never;` — also what any year ≥ 2038 reads as (docs/spec/dhcpd-conf.md §8.1).
pub const NEVER: UnixTime = u32::MAX;

/// Binding states of dhcpd.leases and of the failover protocol (docs/spec/failover.md binding states).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum BindingState {
    #[default]
    Free = 1,
    Active = 2,
    Expired = 3,
    Released = 4,
    Abandoned = 5,
    Reset = 6,
    Backup = 7,
}

impl BindingState {
    /// The word dhcpd.leases uses.
    pub fn as_str(self) -> &'static str {
        match self {
            BindingState::Free => "free",
            BindingState::Active => "active",
            BindingState::Expired => "expired",
            BindingState::Released => "released",
            BindingState::Abandoned => "abandoned",
            BindingState::Reset => "reset",
            BindingState::Backup => "backup",
        }
    }

    pub fn from_word(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "free" => BindingState::Free,
            "active" => BindingState::Active,
            "expired" => BindingState::Expired,
            "released" => BindingState::Released,
            "abandoned" => BindingState::Abandoned,
            "reset" => BindingState::Reset,
            "backup" => BindingState::Backup,
            _ => return None,
        })
    }
}

/// A hardware address as stored: ARP type, length, up to 16 bytes inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hardware {
    pub htype: u8,
    pub len: u8,
    pub bytes: [u8; 16],
}

impl Hardware {
    /// `None` when longer than 16 bytes.
    pub fn new(htype: u8, address: &[u8]) -> Option<Self> {
        let mut bytes = [0; 16];
        bytes.get_mut(..address.len())?.copy_from_slice(address);
        Some(Self {
            htype,
            len: address.len() as u8,
            bytes,
        })
    }

    pub fn address(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len).min(16)]
    }
}

impl std::fmt::Debug for Hardware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/", self.htype)?;
        for (index, byte) in self.address().iter().enumerate() {
            if index > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Lease flags (`reserved;`, `dynamic-bootp;`).
pub mod flags {
    pub const RESERVED: u8 = 1;
    pub const BOOTP: u8 = 2;
    /// In memory only, never written: `ends` is the XDP fast path's horizon, one lease time
    /// past the end the client was told (`engine::fast_path::stretch_to_horizon`), so that
    /// end is `starts + (ends − starts) / 2`. Set with the horizon, cleared by every other
    /// change of `ends` (a new binding, OMAPI, the failover partner).
    pub const HORIZON: u8 = 0x80;
}

/// Rarely present parts of a lease, boxed to keep [`Lease`] small.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseExtra {
    /// `set NAME = VALUE;` with VALUE kept as the lease file writes it (`"…"`, `%N`, `true`).
    pub variables: Vec<(String, String)>,
    /// Stashed relay-agent sub-options: (sub-option code, bytes); 1 = circuit-id, 2 = remote-id.
    pub agent_options: Vec<(u8, Vec<u8>)>,
    /// `billing class "NAME";` / `billing subclass "NAME" DATA;` (`crate::lease::billing`).
    pub billing: Option<crate::lease::billing::Billing>,
    /// `on …` statements and others kept verbatim for the rewrite.
    pub verbatim: Vec<String>,
}

/// One lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub starts: UnixTime,
    pub ends: UnixTime,
    /// Failover times (docs/spec/failover.md §7.1); 0 when absent.
    pub tstp: UnixTime,
    pub tsfp: UnixTime,
    pub atsfp: UnixTime,
    pub cltt: UnixTime,
    pub binding_state: BindingState,
    pub next_binding_state: BindingState,
    pub rewind_binding_state: BindingState,
    /// [`flags`] bits.
    pub flags: u8,
    pub hardware: Option<Hardware>,
    /// The client identifier (option 61) and the `client-hostname` in one allocation, see
    /// [`Lease::uid`] and [`Lease::client_hostname`]: most ISP clients send both, and one heap
    /// block instead of two (or three, with the extra box) is what keeps a million leases within
    /// 200 bytes each.
    identity: Option<Box<[u8]>>,
    /// `set` variables, agent options, verbatim statements.
    pub extra: Option<Box<LeaseExtra>>,
}

/// Layout of [`Lease::identity`]: a flags byte, the uid length, the uid, then the host name.
mod identity {
    pub const HAS_UID: u8 = 1;
    pub const HAS_HOSTNAME: u8 = 2;
    pub const HEADER: usize = 2;
}

impl Lease {
    /// A never-used lease for `address`.
    pub fn free(address: Ipv4Addr) -> Self {
        Self {
            address,
            starts: 0,
            ends: 0,
            tstp: 0,
            tsfp: 0,
            atsfp: 0,
            cltt: 0,
            binding_state: BindingState::Free,
            next_binding_state: BindingState::Free,
            rewind_binding_state: BindingState::Free,
            flags: 0,
            hardware: None,
            identity: None,
            extra: None,
        }
    }

    /// The client identifier (option 61), if the client sent one.
    pub fn uid(&self) -> Option<&[u8]> {
        let blob = self.identity.as_deref()?;
        if blob[0] & identity::HAS_UID == 0 {
            return None;
        }
        blob.get(identity::HEADER..identity::HEADER + usize::from(blob[1]))
    }

    /// The `client-hostname` the client sent, if any.
    pub fn client_hostname(&self) -> Option<&str> {
        let blob = self.identity.as_deref()?;
        if blob[0] & identity::HAS_HOSTNAME == 0 {
            return None;
        }
        let start = identity::HEADER + usize::from(blob[1]);
        std::str::from_utf8(blob.get(start..)?).ok()
    }

    /// Sets or clears the client identifier. Identifiers longer than 255 bytes cannot come from
    /// option 61 (its length is one byte) and are cut there.
    pub fn set_uid(&mut self, uid: Option<&[u8]>) {
        let hostname = self.client_hostname().map(str::to_owned);
        self.identity = pack_identity(uid, hostname.as_deref());
    }

    /// Sets or clears the `client-hostname`.
    pub fn set_client_hostname(&mut self, hostname: Option<&str>) {
        let uid = self.uid().map(<[u8]>::to_vec);
        self.identity = pack_identity(uid.as_deref(), hostname);
    }

    /// The extra part, created empty when absent.
    pub fn extra_mut(&mut self) -> &mut LeaseExtra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Drops the extra box when nothing is left in it.
    pub fn shrink_extra(&mut self) {
        if self
            .extra
            .as_deref()
            .is_some_and(|extra| *extra == LeaseExtra::default())
        {
            self.extra = None;
        }
    }

    /// True when the lease binds a client at `now` (ACTIVE and not past its end).
    pub fn is_active_at(&self, now: UnixTime) -> bool {
        self.binding_state == BindingState::Active && (self.ends == NEVER || self.ends > now)
    }
}

/// Builds the [`Lease::identity`] block; `None` when both parts are absent.
fn pack_identity(uid: Option<&[u8]>, hostname: Option<&str>) -> Option<Box<[u8]>> {
    if uid.is_none() && hostname.is_none() {
        return None;
    }
    let uid_bytes = uid.map_or(&[][..], |uid| &uid[..uid.len().min(255)]);
    let host_bytes = hostname.map_or(&[][..], str::as_bytes);
    let mut blob = Vec::with_capacity(identity::HEADER + uid_bytes.len() + host_bytes.len());
    let mut flags = 0;
    if uid.is_some() {
        flags |= identity::HAS_UID;
    }
    if hostname.is_some() {
        flags |= identity::HAS_HOSTNAME;
    }
    blob.push(flags);
    blob.push(uid_bytes.len() as u8);
    blob.extend_from_slice(uid_bytes);
    blob.extend_from_slice(host_bytes);
    Some(blob.into_boxed_slice())
}

/// Heap bytes of the identity block, for memory accounting.
impl Lease {
    pub fn identity_len(&self) -> usize {
        self.identity.as_ref().map_or(0, |blob| blob.len())
    }
}

#[cfg(test)]
mod identity_tests {
    use super::*;

    #[test]
    fn uid_and_hostname_share_one_block() {
        let mut lease = Lease::free(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!((lease.uid(), lease.client_hostname()), (None, None));
        lease.set_uid(Some(&[1, 2, 3]));
        lease.set_client_hostname(Some("pc"));
        assert_eq!(lease.uid(), Some(&[1, 2, 3][..]));
        assert_eq!(lease.client_hostname(), Some("pc"));
        lease.set_uid(None);
        assert_eq!((lease.uid(), lease.client_hostname()), (None, Some("pc")));
        lease.set_uid(Some(&[]));
        assert_eq!(lease.uid(), Some(&[][..]));
        lease.set_client_hostname(None);
        lease.set_uid(None);
        assert_eq!(lease.identity_len(), 0);
    }
}

// The store keeps one `Lease` per address in an arena; at 1 M leases every byte here is a
// megabyte. 32 bytes of times and states, 19 of hardware, 16 of identity, 8 of extra.
const _: () = assert!(std::mem::size_of::<Lease>() <= 80);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_stays_small() {
        assert!(std::mem::size_of::<Lease>() <= 80);
        assert!(std::mem::size_of::<Option<Hardware>>() <= 19);
    }

    #[test]
    fn hostname_lives_in_extra() {
        let mut lease = Lease::free(Ipv4Addr::new(10, 0, 0, 1));
        lease.set_client_hostname(Some("pc"));
        assert_eq!(lease.client_hostname(), Some("pc"));
        lease.set_client_hostname(None);
        assert!(lease.extra.is_none());
    }
}
