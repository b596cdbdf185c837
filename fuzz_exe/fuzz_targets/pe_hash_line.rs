#![no_main]
//! One `.mdb`/`.msb` and `.imp` line on any text.
use aether_sigs::{PeHashKind, parse_pe_hash_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = parse_pe_hash_line(line, PeHashKind::Section);
        let _ = parse_pe_hash_line(line, PeHashKind::Import);
    }
});
