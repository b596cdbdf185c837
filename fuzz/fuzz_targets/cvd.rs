//! Whole container bytes: header, gzip, tar, `.info` and the files inside are
//! all checked without panicking and within the archive limits.
#![no_main]

use aether_sigs::cvd::ArchiveLimits;
use aether_sigs::{BodySig, DbFormat, HashSig, LoadOptions, Loader, SignatureSink, Unsupported};
use libfuzzer_sys::fuzz_target;

struct Sink;

impl SignatureSink for Sink {
    fn hash(&mut self, _: HashSig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
    fn body(&mut self, _: BodySig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
    fn allow(&mut self, _: HashSig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    // Signatures cannot be forged by a fuzzer; skip them to reach the archive.
    let opts = LoadOptions {
        verify: sel & 1 == 1 && sel & 2 == 2,
        archive_limits: ArchiveLimits {
            max_total: 16 << 20,
            max_entries: 64,
        },
        ..LoadOptions::default()
    };
    let format = if sel & 4 == 0 {
        DbFormat::Cvd
    } else {
        DbFormat::Cld
    };
    let mut loader = Loader::new(opts);
    let _ = loader.load_bytes("fuzz.cvd", format, rest, &mut Sink);
});
