//! One line (or a few) of each text format: the line parsers and the loader
//! never panic, and parsed body signatures print back to the same pattern.
#![no_main]

use aether_sigs::line::{parse_body_line, parse_hash_line, parse_ignore_line};
use aether_sigs::{
    BodySig, DbFormat, HashSig, HexPattern, LoadOptions, Loader, Parsed, SignatureSink, Unsupported,
};
use libfuzzer_sys::fuzz_target;

struct Sink;

impl SignatureSink for Sink {
    fn hash(&mut self, s: HashSig<'_>) -> Result<(), Unsupported> {
        assert!(!s.name.is_empty());
        Ok(())
    }
    fn body(&mut self, s: BodySig<'_>) -> Result<(), Unsupported> {
        assert_eq!(
            HexPattern::parse(&s.pattern.to_string()).as_ref(),
            Ok(&s.pattern)
        );
        if s.offset.is_executable_relative() {
            return Err(Unsupported("executable-relative offsets"));
        }
        Ok(())
    }
    fn allow(&mut self, _: HashSig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
}

const FORMATS: [DbFormat; 7] = [
    DbFormat::Hdb,
    DbFormat::Hsb,
    DbFormat::Ndb,
    DbFormat::Fp,
    DbFormat::Ign2,
    DbFormat::Ign,
    DbFormat::Sdb,
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if let Ok(line) = std::str::from_utf8(rest) {
        let _ = parse_hash_line(line);
        let _ = parse_ignore_line(line);
        if let Ok(Parsed::Record(sig)) = parse_body_line(line) {
            assert_eq!(
                HexPattern::parse(&sig.pattern.to_string()).as_ref(),
                Ok(&sig.pattern)
            );
        }
    }
    let format = FORMATS[usize::from(sel) % FORMATS.len()];
    let mut loader = Loader::new(LoadOptions::default());
    let _ = loader.load_bytes("fuzz", format, rest, &mut Sink);
});
