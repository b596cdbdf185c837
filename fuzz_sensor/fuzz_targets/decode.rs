//! Netlink datagram bytes into the connector decoder: it must return messages or
//! errors, never panic, and never loop without consuming bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A datagram holds at least 16 bytes per message, so this bounds the count.
    let mut n = 0usize;
    for r in aether_sensor::decode::decode_datagram(data) {
        n += 1;
        assert!(n <= data.len() / 16 + 1, "more messages than bytes allow");
        if let Err(e) = r {
            let _ = e.to_string();
        }
    }
    let _ = aether_sensor::decode::decode_cn_msg(data, 0);
});
