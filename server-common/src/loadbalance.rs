//! RFC 3074 load-balancing hash as ISC dhcpd 4.4 computes it (docs/spec/failover.md §11): one
//! definition for the XDP program and the daemon, which must agree on every bucket.

/// The RFC 3074 §6 mixing table (ISC `loadb_mx_tbl`), a permutation of 0..=255.
pub const MIX_TABLE: [u8; 256] = [
    251, 175, 119, 215, 81, 14, 79, 191, 103, 49, 181, 143, 186, 157, 0, 232, 31, 32, 55, 60, 152,
    58, 17, 237, 174, 70, 160, 144, 220, 90, 57, 223, 59, 3, 18, 140, 111, 166, 203, 196, 134, 243,
    124, 95, 222, 179, 197, 65, 180, 48, 36, 15, 107, 46, 233, 130, 165, 30, 123, 161, 209, 23, 97,
    16, 40, 91, 219, 61, 100, 10, 210, 109, 250, 127, 22, 138, 29, 108, 244, 67, 207, 9, 178, 204,
    74, 98, 126, 249, 167, 116, 34, 77, 193, 200, 121, 5, 20, 113, 71, 35, 128, 13, 182, 94, 25,
    226, 227, 199, 75, 27, 41, 245, 230, 224, 43, 225, 177, 26, 155, 150, 212, 142, 218, 115, 241,
    73, 88, 105, 39, 114, 62, 255, 192, 201, 145, 214, 168, 158, 221, 148, 154, 122, 12, 84, 82,
    163, 44, 139, 228, 236, 205, 242, 217, 11, 187, 146, 159, 64, 86, 239, 195, 42, 106, 198, 118,
    112, 184, 172, 87, 2, 173, 117, 176, 229, 247, 253, 137, 185, 99, 164, 102, 147, 45, 66, 231,
    52, 141, 211, 194, 206, 246, 238, 56, 110, 78, 248, 63, 240, 189, 93, 92, 51, 53, 183, 19, 171,
    72, 50, 33, 104, 101, 69, 8, 252, 83, 120, 76, 135, 85, 54, 202, 125, 188, 213, 96, 235, 136,
    208, 162, 129, 190, 132, 156, 38, 47, 1, 7, 254, 24, 4, 216, 131, 89, 21, 28, 133, 37, 153,
    149, 80, 170, 68, 6, 169, 234, 151,
];

/// The bucket (0..=255) of `key`: the client identifier (option 61) when the client sent one,
/// else the first `hlen` bytes of `chaddr` (RFC 3074 §6, ISC `loadb_p_hash`).
#[inline(always)]
pub const fn bucket(key: &[u8]) -> u8 {
    let mut hash = key.len() as u8;
    let mut index = key.len();
    while index > 0 {
        index -= 1;
        hash = MIX_TABLE[(hash ^ key[index]) as usize];
    }
    hash
}

/// [`bucket`] of `key[..len]` over a fixed 32-byte buffer (`len` capped at 32): the form the XDP
/// program uses, since the verifier wants constant bounds. Same result as `bucket(&key[..len])`.
#[inline(always)]
pub const fn bucket_of_prefix(key: &[u8; 32], len: usize) -> u8 {
    let len = if len > 32 { 32 } else { len };
    let mut hash = len as u8;
    let mut index = len;
    while index > 0 {
        index -= 1;
        hash = MIX_TABLE[(hash ^ key[index]) as usize];
    }
    hash
}

/// True when `bucket` is set in the 32-byte HBA: bit `b & 7` of byte `b >> 3`, least significant
/// bit first. In ISC's polarity a set bit means the PRIMARY serves the bucket (§11.1).
#[inline(always)]
pub const fn hba_has(hba: &[u8; 32], bucket: u8) -> bool {
    hba[(bucket >> 3) as usize] & (1 << (bucket & 7)) != 0
}

/// The HBA of `split N` (0..=256): buckets 0..N set.
pub const fn split_to_hba(split: u16) -> [u8; 32] {
    let mut hba = [0u8; 32];
    let mut bucket = 0u16;
    while bucket < split && bucket < 256 {
        hba[(bucket >> 3) as usize] |= 1 << (bucket & 7);
        bucket += 1;
    }
    hba
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vectors of docs/spec/failover.md §11.2 (the first three confirmed against real ISC servers).
    #[test]
    fn spec_test_vectors() {
        let vectors: [(&[u8], u8, bool); 10] = [
            (&[0x6a, 0xd9, 0x3e, 0xff, 0xef, 0xc7], 118, true),
            (&[0x00, 0x11, 0x22, 0x33, 0x44, 0x55], 135, false),
            (&[0x01, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55], 195, false),
            (&[0x02, 0x11, 0x22, 0x33, 0x44, 0x55], 54, true),
            (&[0, 0, 0, 0, 0, 0], 254, false),
            (&[0xff; 6], 79, true),
            (&[0x02, 0, 0, 0, 0, 0x01], 133, false),
            (&[0x01, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55], 223, false),
            (&[0x01], 251, false),
            (&[], 0, true),
        ];
        let split_128 = split_to_hba(128);
        for (key, expected, primary) in vectors {
            assert_eq!(bucket(key), expected, "key {key:02x?}");
            assert_eq!(hba_has(&split_128, expected), primary, "key {key:02x?}");
        }
    }

    #[test]
    fn prefix_form_agrees() {
        let mut key = [0u8; 32];
        for (index, byte) in key.iter_mut().enumerate() {
            *byte = (index as u8).wrapping_mul(37) ^ 0x5a;
        }
        for len in 0..=32 {
            assert_eq!(
                bucket_of_prefix(&key, len),
                bucket(&key[..len]),
                "len {len}"
            );
        }
    }

    #[test]
    fn split_maps() {
        assert_eq!(split_to_hba(128)[..16], [0xff; 16]);
        assert_eq!(split_to_hba(128)[16..], [0; 16]);
        let split_100 = split_to_hba(100);
        assert_eq!(split_100[..12], [0xff; 12]);
        assert_eq!(split_100[12], 0x0f);
        assert_eq!(split_100[13..], [0; 19]);
        assert_eq!(split_to_hba(0), [0; 32]);
        assert_eq!(split_to_hba(256), [0xff; 32]);
    }
}
