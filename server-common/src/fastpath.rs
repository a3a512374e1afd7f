//! Map keys and values of the renewal fast path (DESIGN.md "The fast path and its two bounds"):
//! the lease table, the reply templates, the configuration/failover state, the ring-buffer
//! renewal event, and the fingerprint of a request's options area. `#[repr(C)]`, explicit
//! padding, and a size assertion each, because kernel and userspace read the same bytes.

/// Longest client identifier (or hardware address) the kernel keys on; a longer option 61 is
/// passed up to userspace.
pub const KEY_MAX: usize = 32;

/// [`LeaseKey::kind`]: the key is the client identifier (option 61).
pub const KEY_CLIENT_ID: u8 = 1;
/// [`LeaseKey::kind`]: the key is the hardware address (chaddr, `hlen` bytes), as
/// `lease::store::ClientKey::Hardware`; `htype` goes in [`LeaseKey::htype`].
pub const KEY_HARDWARE: u8 = 2;

/// The client of a lease, by the rule the userspace store uses (`ClientKey`): the client
/// identifier when the client sent one, else the hardware address. Aligned to 4 so that the XDP
/// program can clear it with nine word stores (LLVM's BPF memset is a byte loop).
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeaseKey {
    /// [`KEY_CLIENT_ID`] or [`KEY_HARDWARE`].
    pub kind: u8,
    /// Bytes used in `bytes` (1..=32); the rest is zero.
    pub len: u8,
    /// The hardware type for [`KEY_HARDWARE`], 0 otherwise.
    pub htype: u8,
    pub _pad: u8,
    pub bytes: [u8; KEY_MAX],
}
const _: () = assert!(core::mem::size_of::<LeaseKey>() == 36);

impl LeaseKey {
    pub const EMPTY: Self = Self {
        kind: 0,
        len: 0,
        htype: 0,
        _pad: 0,
        bytes: [0; KEY_MAX],
    };

    /// A key from `kind` and `bytes`; `None` when `bytes` is empty or longer than [`KEY_MAX`].
    pub fn new(kind: u8, htype: u8, bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() || bytes.len() > KEY_MAX {
            return None;
        }
        let mut key = Self::EMPTY;
        key.kind = kind;
        key.len = bytes.len() as u8;
        key.htype = htype;
        let mut index = 0;
        while index < bytes.len() {
            key.bytes[index] = bytes[index];
            index += 1;
        }
        Some(key)
    }
}

/// [`LeaseValue::flags`]: the lease is ACTIVE (RFC 2131 BOUND from the server's side).
pub const LEASE_ACTIVE: u32 = 1;

/// Slots of the kernel's relationships array (failover relationships; more stay in userspace).
pub const RELATIONSHIP_SLOTS: u32 = 64;
/// A relationships slot value: the relationship's state answers renewals (docs/spec/failover.md §6.1:
/// NORMAL, COMMUNICATIONS-INTERRUPTED, PARTNER-DOWN, unless the partner silences us).
pub const RELATIONSHIP_SERVES: u32 = 1;

/// What the kernel knows about one lease.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseValue {
    /// The leased address in network byte order as it sits in the packet (`u32::from_ne_bytes`
    /// of the four octets); compared with ciaddr.
    pub address: u32,
    /// Unix seconds: the lease's current end. A renewal extends it (the kernel writes it back).
    pub ends: u32,
    /// Unix seconds: the kernel may not extend the lease beyond this (durable in the lease file
    /// and, under failover, acknowledged by the partner).
    pub horizon: u32,
    /// Seconds granted by a renewal: the value of option 51 in the template.
    pub lease_time: u32,
    /// Index into the template map.
    pub template: u32,
    /// [`LEASE_ACTIVE`].
    pub flags: u32,
    /// The giaddr of the request the template answers (0 for a direct client), network order as
    /// in the packet; a request from another relay is passed up.
    pub giaddr: u32,
    /// 0 for a lease outside failover pools; else 1 + the index of its failover relationship
    /// in the relationships map, whose slot says whether that relationship's state answers
    /// renewals ([`RELATIONSHIP_SERVES`]): a state change is one map write, not one per lease.
    pub relationship: u32,
    /// [`options_fingerprint`] of the request the template answers: only a request whose
    /// options area is the same gets the template's reply.
    pub fingerprint: u64,
    /// `dhcp-cache-threshold` (ISC `reuse_lease`): a renewal while the lease has at least this
    /// many seconds left is passed up, because the engine answers it with the time left, not
    /// with the template. The lease started at `ends − lease_time`, so "age ≤ limit" is
    /// "`ends − now` ≥ `lease_time − limit`", which needs neither a division nor `starts` in
    /// the kernel. [`CACHE_OFF`] when the threshold is 0.
    pub cache_remaining: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<LeaseValue>() == 48);

/// [`LeaseValue::cache_remaining`] of a lease whose `dhcp-cache-threshold` is 0: no lease ever
/// has that much time left past `now` (`ends` is a `u32`), so no renewal is passed up for it.
pub const CACHE_OFF: u32 = u32::MAX;

/// Bytes of a template: the BOOTP reply from `sname` (offset 44) on. Covers the 548-byte reply
/// of a client without option 57 (236-byte header + 312-byte options area, RFC 2131 §2).
pub const TEMPLATE_MAX: usize = 640;
/// Slots of the kernel's template array (indices `0..TEMPLATE_SLOTS`): 10.7 MB preallocated.
/// Leases share a template when their replies are equal, so this bounds distinct replies, not
/// leases; a renewal whose reply needs a new template when all are taken stays in userspace.
pub const TEMPLATE_SLOTS: u32 = 1 << 14;
/// Offset in the BOOTP message where the template bytes start (`sname`).
pub const TEMPLATE_OFFSET: usize = 44;

/// A precomputed reply: the BOOTP message the userspace engine produced, from `sname` to the
/// end, plus `siaddr`. The kernel keeps the request's op-independent header fields (htype,
/// hlen, hops, xid, flags, ciaddr, giaddr, chaddr) and writes op = BOOTREPLY, secs = 0, yiaddr =
/// ciaddr, which is exactly what the engine does (RFC 2131 §4.3.1 table 3).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Template {
    /// Bytes used in `bytes`.
    pub len: u32,
    /// Network order as in the packet.
    pub siaddr: u32,
    /// The server identifier (option 54), network order: the reply's IPv4 source.
    pub server_id: u32,
    /// One's complement sum (folded to 16 bits, not inverted) of `bytes[..len]`, as 16-bit
    /// big-endian words at even offsets of the BOOTP message, the last odd byte padded with 0.
    pub checksum: u32,
    pub bytes: [u8; TEMPLATE_MAX],
}
const _: () = assert!(core::mem::size_of::<Template>() == 16 + TEMPLATE_MAX);

impl Template {
    pub const EMPTY: Self = Self {
        len: 0,
        siaddr: 0,
        server_id: 0,
        checksum: 0,
        bytes: [0; TEMPLATE_MAX],
    };
}

/// [`FastPathConfig::flags`]: renewals may be answered in the kernel.
pub const CONFIG_RENEW: u32 = 1;
/// [`FastPathConfig::flags`]: the failover state is NORMAL, so load balancing applies
/// (docs/spec/failover.md §11).
pub const CONFIG_FAILOVER_NORMAL: u32 = 2;

/// The single entry of the configuration map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FastPathConfig {
    /// [`CONFIG_RENEW`], [`CONFIG_FAILOVER_NORMAL`].
    pub flags: u32,
    /// UDP port the server listens on (host order), 67 by default.
    pub server_port: u16,
    /// `load balance max seconds`: a DISCOVER with `secs` at or above it is never dropped.
    pub lb_max_secs: u16,
    /// Unix seconds = [`clock_seconds`]`(bpf_ktime_get_coarse_ns()) + time_offset`; published
    /// by userspace ([`clock_offset`]).
    pub time_offset: i64,
    /// The buckets THIS server answers (bit `b & 7` of byte `b >> 3`); a DISCOVER hashing into a
    /// clear bit belongs to the partner and is dropped.
    pub hba: [u8; 32],
}
const _: () = assert!(core::mem::size_of::<FastPathConfig>() == 48);

/// Seconds of `CLOCK_MONOTONIC` (the clock of `bpf_ktime_get_coarse_ns`) without a division:
/// a 64-bit `div` costs the XDP program tens of nanoseconds, so `ns / 1e9` is computed as
/// `(ns >> 24) * 1152921505 >> 36` (2^-24 s units of 16.8 ms, scaled by 2^36 × 0.016777216 rounded
/// up). It runs ahead of the exact value by 3.4e-10 of the time since boot (0.1 s after 8 years)
/// and is exact to within 17 ms otherwise; kernel and userspace use this same function, so
/// [`clock_offset`] absorbs the difference. No overflow below 2^24 × 1.6e10 ns (8.5 years).
#[inline(always)]
pub const fn clock_seconds(monotonic_ns: u64) -> u64 {
    ((monotonic_ns >> 24).wrapping_mul(1_152_921_505)) >> 36
}

/// The largest `monotonic_ns` [`clock_seconds`] handles: past it, the kernel passes renewals up.
pub const CLOCK_NS_MAX: u64 = (u64::MAX / 1_152_921_505) << 24;

/// [`FastPathConfig::time_offset`] from a Unix time and a `CLOCK_MONOTONIC` reading taken
/// together (nanoseconds): the whole number of seconds closest to `unix − clock_seconds(mono)`,
/// so that the kernel's Unix time is within a second of the real one. `current` (the offset in
/// force) is kept while it is within 0.9 s, so that jitter between the two readings does not
/// flip it back and forth.
pub fn clock_offset(unix_ns: i64, monotonic_ns: u64, current: Option<i64>) -> i64 {
    let exact =
        unix_ns.saturating_sub((clock_seconds(monotonic_ns) as i64).saturating_mul(1_000_000_000));
    if let Some(current) = current {
        if exact
            .saturating_sub(current.saturating_mul(1_000_000_000))
            .abs()
            <= 900_000_000
        {
            return current;
        }
    }
    exact.saturating_add(500_000_000).div_euclid(1_000_000_000)
}

/// The ring-buffer record of one renewal answered in the kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenewalEvent {
    pub key: LeaseKey,
    /// Network order as in the packet.
    pub address: u32,
    /// Unix seconds: start (= now) and new end of the lease.
    pub starts: u32,
    pub ends: u32,
    /// Network order as in the packet.
    pub xid: u32,
}
const _: () = assert!(core::mem::size_of::<RenewalEvent>() == 52);

/// Indices into the per-CPU statistics array; each frame counts once as its outcome, and once
/// in [`XdpStat::Seen`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpStat {
    /// Every frame the program saw.
    Seen = 0,
    /// Passed: DHCP to us, but neither a renewal for the fast path nor a load-balancing drop.
    Passed = 1,
    /// Answered in the kernel (XDP_TX).
    Renewed = 2,
    /// DISCOVER in the partner's bucket (XDP_DROP).
    DroppedForPartner = 3,
    /// Renewal shape, but no lease for the client, not ACTIVE, expired or another address.
    PassedNoLease = 4,
    /// The new expiry would pass the horizon, or the lease's failover relationship is in a
    /// state that does not answer renewals.
    PassedNoHorizon = 5,
    /// Truncated or inconsistent headers or options.
    PassedMalformed = 6,
    /// Not IPv4/UDP to the server port.
    PassedNotDhcp = 7,
    /// The options area or relay differs from the template's request (the reply would differ).
    PassedShape = 8,
    /// IPv4 options, broadcast flag or a client id too long for the kernel key.
    PassedUnsupported = 9,
    /// The configuration map is empty or the fast path is off.
    PassedDisabled = 10,
    /// The ring buffer was full: the renewal went to userspace instead.
    PassedRingFull = 11,
    /// The lease is younger than its `dhcp-cache-threshold`: the engine answers with the
    /// time left on it (ISC `reuse_lease`), which the template does not say.
    PassedCacheThreshold = 12,
}

impl XdpStat {
    /// Number of slots in the statistics array.
    pub const COUNT: u32 = 13;

    pub const ALL: [XdpStat; Self::COUNT as usize] = [
        Self::Seen,
        Self::Passed,
        Self::Renewed,
        Self::DroppedForPartner,
        Self::PassedNoLease,
        Self::PassedNoHorizon,
        Self::PassedMalformed,
        Self::PassedNotDhcp,
        Self::PassedShape,
        Self::PassedUnsupported,
        Self::PassedDisabled,
        Self::PassedRingFull,
        Self::PassedCacheThreshold,
    ];

    /// Metric label.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Seen => "seen",
            Self::Passed => "passed",
            Self::Renewed => "renewed",
            Self::DroppedForPartner => "dropped_for_partner",
            Self::PassedNoLease => "passed_no_lease",
            Self::PassedNoHorizon => "passed_no_horizon",
            Self::PassedMalformed => "passed_malformed",
            Self::PassedNotDhcp => "passed_not_dhcp",
            Self::PassedShape => "passed_shape",
            Self::PassedUnsupported => "passed_unsupported",
            Self::PassedDisabled => "passed_disabled",
            Self::PassedRingFull => "passed_ring_full",
            Self::PassedCacheThreshold => "passed_cache_threshold",
        }
    }
}

/// Offset of the options area (after the magic cookie) in a BOOTP message (RFC 2131 §3).
pub const OPTIONS_OFFSET: usize = 240;
/// Longest options area the fingerprint covers (in 8-byte words); longer requests pass up.
pub const FINGERPRINT_MAX_WORDS: usize = 192;

const FINGERPRINT_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// One step of the options fingerprint over an 8-byte little-endian word.
#[inline(always)]
pub const fn fingerprint_step(hash: u64, word: u64) -> u64 {
    (hash.rotate_left(5) ^ word).wrapping_mul(FINGERPRINT_MULTIPLIER)
}

/// The fingerprint of a request's options area (`udp_payload[240..]`): seeded with its length,
/// then [`fingerprint_step`] over 8-byte little-endian words, the last one zero-padded. Both
/// sides compute it over exactly the bytes after the magic cookie to the end of the UDP payload.
pub const fn options_fingerprint(area: &[u8]) -> u64 {
    let mut hash = area.len() as u64;
    let mut index = 0;
    while index < area.len() {
        let mut word = 0u64;
        let mut byte = 0;
        while byte < 8 && index + byte < area.len() {
            word |= (area[index + byte] as u64) << (8 * byte);
            byte += 1;
        }
        hash = fingerprint_step(hash, word);
        index += 8;
    }
    hash
}

/// One's complement sum of `bytes` as big-endian 16-bit words starting at an even offset, the
/// last odd byte padded with zero, folded to 16 bits (RFC 1071).
pub const fn checksum_partial(bytes: &[u8]) -> u32 {
    let mut sum = 0u32;
    let mut index = 0;
    while index < bytes.len() {
        let high = bytes[index] as u32;
        let low = if index + 1 < bytes.len() {
            bytes[index + 1] as u32
        } else {
            0
        };
        sum += (high << 8) | low;
        sum = (sum & 0xffff) + (sum >> 16);
        index += 2;
    }
    sum
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain `#[repr(C)]` data with explicit padding, no pointers; every bit pattern is
    // valid.
    unsafe impl aya::Pod for super::LeaseKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::LeaseValue {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Template {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::FastPathConfig {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::RenewalEvent {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_depends_on_every_byte_and_length() {
        let area = [53u8, 1, 3, 55, 2, 1, 3, 255, 0];
        let base = options_fingerprint(&area);
        for index in 0..area.len() {
            let mut changed = area;
            changed[index] ^= 1;
            assert_ne!(options_fingerprint(&changed), base, "byte {index}");
        }
        assert_ne!(options_fingerprint(&area[..8]), base);
        assert_eq!(options_fingerprint(&area), base);
    }

    #[test]
    fn checksum_partial_matches_rfc1071_example() {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        assert_eq!(
            checksum_partial(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
        assert_eq!(checksum_partial(&[0x01]), 0x0100);
    }

    #[test]
    fn key_rejects_empty_and_long() {
        assert!(LeaseKey::new(KEY_CLIENT_ID, 0, &[]).is_none());
        assert!(LeaseKey::new(KEY_CLIENT_ID, 0, &[1; 33]).is_none());
        let key = LeaseKey::new(KEY_HARDWARE, 1, &[1, 2, 3, 4, 5, 6]).unwrap();
        assert_eq!(key.len, 6);
        assert_eq!(key.bytes[6..], [0; 26]);
    }

    /// The division-free seconds stay within 17 ms (+3.4e-10 of the elapsed time) of ns / 1e9
    /// for 8 years of uptime, and never go backwards.
    #[test]
    fn clock_seconds_tracks_the_division() {
        let mut previous = 0;
        let mut ns = 0u64;
        while ns < CLOCK_NS_MAX {
            let exact = ns as f64 / 1e9;
            let approx = clock_seconds(ns) as f64;
            let slack = 0.017 + exact * 3.5e-10;
            assert!(
                approx <= exact + slack && approx + 1.0 + slack > exact,
                "{ns}: {approx} vs {exact}"
            );
            assert!(clock_seconds(ns) >= previous);
            previous = clock_seconds(ns);
            ns = ns.saturating_mul(3) / 2 + 987_654_321;
        }
        const { assert!(CLOCK_NS_MAX / 1_000_000_000 > 8 * 365 * 86_400) };
    }

    /// The offset makes the kernel's seconds the Unix seconds (within one), and does not flip
    /// on jitter.
    #[test]
    fn clock_offset_is_nearest_and_sticky() {
        let monotonic = 123_456_789_012_345u64;
        let unix = 1_795_836_305_250_000_000i64;
        let offset = clock_offset(unix, monotonic, None);
        let kernel_now = clock_seconds(monotonic) as i64 + offset;
        assert!((kernel_now - unix / 1_000_000_000).abs() <= 1);
        // 0.4 s of jitter keeps it; a clock step of 5 s moves it.
        assert_eq!(
            clock_offset(unix + 400_000_000, monotonic, Some(offset)),
            offset
        );
        assert_eq!(
            clock_offset(unix + 5_000_000_000, monotonic, Some(offset)),
            offset + 5
        );
    }
}
