#![no_main]
//! The zip implode decoder (zip walk of any bytes) on any bytes, every member extracted
//! (bounded).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    aether_formats_fuzz::walk(aether_formats::FileType::Zip, data);
});
