#![no_main]
//! The recognizer on any bytes, and the magic-table parser on any text.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ty = aether_formats::detect(data);
    let _ = ty.clamav_name();
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(table) = aether_formats::filetype::Table::parse(text)
    {
        let _ = table.detect(data);
    }
});
