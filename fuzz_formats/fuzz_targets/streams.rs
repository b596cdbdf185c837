#![no_main]
//! gzip, bzip2, xz and zstd decoders on any bytes (the first byte picks one).
use aether_formats::FileType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let ty = [FileType::Gz, FileType::Bz, FileType::Xz, FileType::Zstd][pick as usize % 4];
    aether_formats_fuzz::walk(ty, rest);
});
