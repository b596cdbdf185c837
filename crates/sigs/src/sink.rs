//! Where parsed signatures go.
//!
//! The loader pushes records into a [`SignatureSink`] instead of collecting them,
//! so a database of millions of lines is never held twice (once as text records,
//! once compiled). A sink that cannot use a record says why with [`Unsupported`];
//! the loader counts those per file and reason and reports each reason once.

use crate::logical::LogicalSig;
use crate::record::{BodySig, HashSig};

/// Why a sink declined a record. The text is stable and user-facing:
/// it appears in `aether db info` and in the load warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Unsupported(pub &'static str);

/// The default sink's reason for `.mdb`/`.msb` signatures.
pub const SECTION_HASH_REASON: &str = "PE section hash signatures (.mdb .msb)";
/// The default sink's reason for `.imp` signatures.
pub const IMPORT_HASH_REASON: &str = "PE import table hash signatures (.imp)";

/// Receives signatures as the loader parses them.
pub trait SignatureSink {
    /// Called by the loader before the records of each database file.
    /// `official` is true for signed `.cvd`/`.cld` containers; ClamAV prints
    /// the names of every other database's signatures with `.UNOFFICIAL`
    /// appended, and so must a compatible engine.
    fn begin_database(&mut self, official: bool) {
        let _ = official;
    }

    /// A `.hdb` / `.hsb` whole-file hash signature.
    fn hash(&mut self, sig: HashSig<'_>) -> Result<(), Unsupported>;
    /// A `.ndb` body signature.
    fn body(&mut self, sig: BodySig<'_>) -> Result<(), Unsupported>;
    /// A `.fp` / `.sfp` allow-list entry: a file with this hash (and size) is clean.
    fn allow(&mut self, sig: HashSig<'_>) -> Result<(), Unsupported>;
    /// A `.ldb` logical signature. Sinks that cannot match them yet keep the
    /// default, and the loader counts the signatures under its reason.
    fn logical(&mut self, sig: LogicalSig<'_>) -> Result<(), Unsupported> {
        let _ = sig;
        Err(Unsupported("logical signatures (.ldb)"))
    }
    /// A `.mdb` / `.msb` PE section hash: `size` is the section's raw size
    /// as ClamAV computes it (see the aether-exe crate). Sinks that cannot
    /// match them keep the default, and the loader counts them under its reason.
    fn section_hash(&mut self, sig: HashSig<'_>) -> Result<(), Unsupported> {
        let _ = sig;
        Err(Unsupported(SECTION_HASH_REASON))
    }
    /// A `.imp` PE import-table hash: `size` is the length of the import text
    /// ClamAV hashes (see the aether-exe crate).
    fn import_hash(&mut self, sig: HashSig<'_>) -> Result<(), Unsupported> {
        let _ = sig;
        Err(Unsupported(IMPORT_HASH_REASON))
    }
}
