/*!
The scanning engine: compiles ClamAV signatures into a matcher, and scans bytes
and files into detections.

Like yara-x, the engine is split in two: [`EngineBuilder`] is the compiler (it
implements [`aether_sigs::SignatureSink`], so the loader feeds it directly), and
[`Engine`] is the compiled, read-only form. One `Engine` serves any number of
threads; each thread scans through its own [`Scanner`], which owns the scratch
buffers so that scanning allocates nothing per file.
*/

mod builder;
pub mod builtin;
mod bytes;
pub mod cache;
pub mod database;
pub mod filetype;
mod grams;
mod hashdb;
mod limits;
mod names;
mod pattern;
mod recurse;
mod scanner;
mod verify;

pub use aether_formats::Problem;
pub use builder::{BuildError, EngineBuilder};
pub use database::{DbError, DbSources, Loaded, default_cache_dir, load, load_cached};
pub use filetype::FileType;
pub use limits::{LimitExceeded, Limits};
pub use recurse::{Alerts, ContainerNote, IN_MEMORY, PARALLEL_MIN};
pub use scanner::{Detection, ScanError, ScanOutcome, Scanner};

/// The compiled signature database. Immutable; share it with `Arc<Engine>`.
pub struct Engine {
    pub(crate) db: builder::CompiledDb,
}

impl Engine {
    /// The number of signatures loaded, as clamscan's "Known viruses".
    pub fn signature_count(&self) -> u64 {
        self.db.signature_count
    }

    /// A scanner for one thread.
    pub fn scanner(&self) -> Scanner<'_> {
        Scanner::new(self)
    }
}
