#![no_main]
//! Files inside an executable on any bytes: the embedded-file search (SFX
//! archives, installers, executables) and InstallShield overlays, every
//! member extracted (bounded).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    aether_formats_fuzz::walk(aether_formats::FileType::Pe, data);
});
