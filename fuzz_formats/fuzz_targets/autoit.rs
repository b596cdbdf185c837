#![no_main]
//! The compiled AutoIt data (EA05 and EA06: decryption, LZ decompression, EA06 script decompilation) reader on any bytes, every member extracted (bounded).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    aether_formats_fuzz::walk(aether_formats::FileType::AutoIt, data);
});
