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

/// Loads the built-in database into `sink`.
pub fn load_into(loader: &mut Loader, sink: &mut dyn SignatureSink) -> Result<(), LoadError> {
    for (name, format, text) in FILES {
        loader.load_bytes(name, *format, text.as_bytes(), sink)?;
    }
    Ok(())
}
