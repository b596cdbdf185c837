#![no_main]
//! Email and mbox files (MIME parts in base64 and quoted-printable, attached
//! messages, uuencoded blocks) on any bytes, every member extracted
//! (bounded).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    aether_formats_fuzz::walk(aether_formats::FileType::Mail, data);
});
