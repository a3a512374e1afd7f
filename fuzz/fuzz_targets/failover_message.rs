//! Fuzz target: arbitrary bytes as a failover TCP stream: framed, decoded raw and typed, and
//! re-encoded; a decoded message must re-encode to exactly its bytes. Must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xdhcpd::failover::body::Typed;
use xdhcpd::failover::wire::{frame_length, Message, StreamDecoder};

fuzz_target!(|data: &[u8]| {
    let mut decoder = StreamDecoder::new();
    decoder.extend(data);
    let mut offset = 0;
    while let Ok(Some(message)) = decoder.next_message() {
        let length = message.encoded_len();
        let bytes = &data[offset..offset + length];
        offset += length;
        assert_eq!(message.encode().ok().as_deref(), Some(bytes));
        if let Ok(typed) = Typed::from_message(&message) {
            assert_eq!(typed.encode().ok().as_deref(), Some(bytes));
        }
    }
    let _ = frame_length(data);
    let _ = Message::decode(data);
});
