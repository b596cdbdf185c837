#![no_main]
//! The CHM reader (LZX section included) on any bytes, every member extracted
//! (bounded).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    aether_formats_fuzz::walk(aether_formats::FileType::MsChm, data);
});
