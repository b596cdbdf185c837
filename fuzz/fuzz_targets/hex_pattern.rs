//! Any text: parsing never panics, and what parses prints back to text that
//! parses to the same pattern.
#![no_main]

use aether_sigs::HexPattern;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = HexPattern::parse(text) {
        let shown = p.to_string();
        match HexPattern::parse(&shown) {
            Ok(again) => assert_eq!(again, p, "{text:?} -> {shown:?}"),
            Err(e) => panic!("{text:?} -> {shown:?} does not parse: {e}"),
        }
    }
});
