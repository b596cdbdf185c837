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
}
