//! The built-in database, compiled into the binary: EICAR, ClamAV's test-file
//! signature (for Debian's `clamav-testfiles`) and aether's own test signatures.

use aether_sigs::{DbFormat, LoadError, Loader, SignatureSink};

/// Each built-in file: display name, format, contents.
pub const FILES: &[(&str, DbFormat, &str)] = &[
    (
        "builtin:aether.hsb",
        DbFormat::Hsb,
        include_str!("../builtin/aether.hsb"),
    ),
    (
        "builtin:aether.ndb",
        DbFormat::Ndb,
        include_str!("../builtin/aether.ndb"),
    ),
];

/// Loads the built-in database into `sink`. Its names are aether's own and
/// printed as they are, like an official database's.
pub fn load_into(loader: &mut Loader, sink: &mut dyn SignatureSink) -> Result<(), LoadError> {
    sink.begin_database(true);
    let mut official = Official(sink);
    for (name, format, text) in FILES {
        loader.load_bytes(name, *format, text.as_bytes(), &mut official)?;
    }
    Ok(())
}

/// Passes records through, marking every database official.
struct Official<'a>(&'a mut dyn SignatureSink);

impl SignatureSink for Official<'_> {
    fn begin_database(&mut self, _official: bool) {
        self.0.begin_database(true);
    }
    fn hash(&mut self, sig: aether_sigs::HashSig<'_>) -> Result<(), aether_sigs::Unsupported> {
        self.0.hash(sig)
    }
    fn body(&mut self, sig: aether_sigs::BodySig<'_>) -> Result<(), aether_sigs::Unsupported> {
        self.0.body(sig)
    }
    fn allow(&mut self, sig: aether_sigs::HashSig<'_>) -> Result<(), aether_sigs::Unsupported> {
        self.0.allow(sig)
    }
}
