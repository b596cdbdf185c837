#![no_main]
//! The OLE2 reader on any bytes, every member extracted (bounded), and the
//! VBA decompression, normalization and code pages on the same bytes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    aether_formats_fuzz::walk(aether_formats::FileType::Ole2, data);
    let offset = data.first().map_or(0, |&b| usize::from(b));
    if let Some(mut out) = aether_formats::vba::decompress(data, offset, 1 << 20) {
        let n = aether_formats::vba::normalize(&mut out);
        assert!(n <= out.len());
    }
    for codepage in [1200, 1252, 20127, 28591, 65001, 932] {
        let _ = aether_formats::vba::to_utf8(data, codepage);
    }
});
