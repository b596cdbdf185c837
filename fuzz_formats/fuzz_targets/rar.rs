#![no_main]
//! The RAR reader (rars on a second thread) on any bytes, every member
//! extracted (bounded). libFuzzer's leak check after each input can run
//! before the decoding thread has freed its `std` bookkeeping (about 160
//! bytes); `-detect_leaks=0` avoids that false report.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    aether_formats_fuzz::walk(aether_formats::FileType::Rar, data);
});
