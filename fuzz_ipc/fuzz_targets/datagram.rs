//! The UDP datagram check on arbitrary bytes: never a panic, whether the bytes are
//! raw (stopped at the MAC) or sealed first with the right key (reaching the
//! header and protobuf checks behind it).
#![no_main]

use aether_ipc::udp::{Key, open, seal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(key) = Key::from_bytes(&[0x42; 32]) else {
        return;
    };
    match data.split_first() {
        // Half the inputs are sealed first, so the decoders behind the MAC are reached.
        Some((&b, rest)) if b & 1 == 1 && rest.len() >= 13 => {
            let stream = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&rest[4..12]);
            let sealed = seal(&key, rest[12], stream, u64::from_be_bytes(seq), &rest[13..]);
            let _ = open(&key, &sealed, 1 << 16);
        }
        _ => {
            let _ = open(&key, data, 1 << 16);
        }
    }
});
