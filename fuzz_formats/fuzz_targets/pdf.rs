#![no_main]
//! The PDF reader (object scan, dictionaries, object streams, Flate, LZW,
//! ASCIIHex, ASCII85 and RunLength chains) on any bytes, every member
//! extracted (bounded).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    aether_formats_fuzz::walk(aether_formats::FileType::Pdf, data);
});
