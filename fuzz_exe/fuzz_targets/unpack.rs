#![no_main]
//! The unpackers (aether-unpack) on any bytes: an error, nothing, or an
//! image within the limits, never a panic or a hang; `probe` admits every
//! file that unpacks; an image is unpacked again (yC holds UPX), one level,
//! as the engine does.
use aether_unpack::{UnpackLimits, unpack};
use libfuzzer_sys::fuzz_target;

const LIMITS: UnpackLimits = UnpackLimits {
    max_size: 16 << 20,
    max_ratio: 1000,
};

fuzz_target!(|data: &[u8]| {
    let head = &data[..data.len().min(aether_unpack::PROBE_LEN)];
    let probed = aether_unpack::probe(head, data.len() as u64);
    if let Ok(Some(u)) = unpack(data, &LIMITS) {
        // The engine reads only files the probe admits: it must admit every
        // file that unpacks.
        assert!(probed, "probe refused a file that unpacks");
        // The largest image: the bound plus ClamAV's 8 KiB of slack and a
        // rebuilt header.
        assert!(u.image.len() as u64 <= LIMITS.max_size + 0x10000);
        if let Ok(Some(again)) = unpack(&u.image, &LIMITS) {
            assert!(again.image.len() as u64 <= LIMITS.max_size + 0x10000);
        }
    }
});
