//! Any text: parsing never panics, and a parsed offset survives display.
#![no_main]

use aether_sigs::Offset;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(o) = Offset::parse(text) {
        assert_eq!(Offset::parse(&o.to_string()), Ok(o), "{text:?}");
    }
});
