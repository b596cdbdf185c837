#![no_main]
//! The NSIS installer data (non-solid blocks and solid streams, deflate and LZMA) reader on any bytes, every member extracted (bounded).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    aether_formats_fuzz::walk(aether_formats::FileType::Nulsft, data);
});
