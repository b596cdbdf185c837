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
mod bytecmp;
mod bytes;
pub mod cache;
mod chained;
pub mod database;
mod exe_layout;
pub mod filetype;
mod grams;
mod hashdb;
mod limits;
mod logical;
mod names;
mod pattern;
mod pcre;
mod recount;
mod recurse;
mod scanner;
mod spill;
mod textnorm;
mod unpacked;
mod verify;

pub use aether_formats::Problem;
pub use aether_yara::{CacheUse as YaraCacheUse, External as YaraExternal};
pub use builder::{BuildError, EngineBuilder};
pub use database::{
    DbError, DbSources, Loaded, YaraSources, attach_yara, attach_yara_cached, attach_yara_with,
    default_cache_dir, load, load_cached, load_cached_with, yara_files,
};
pub use filetype::FileType;
pub use limits::{LimitExceeded, Limits};
pub use recurse::{Alerts, ContainerNote, IN_MEMORY, PARALLEL_MIN};
pub use scanner::{Detection, ScanError, ScanOutcome, Scanner};

/// The compiled signature database. Immutable; share it with `Arc<Engine>`.
pub struct Engine {
    pub(crate) db: builder::CompiledDb,
    /// YARA rules, run on every file and member after ClamAV's signatures.
    pub(crate) yara: Option<aether_yara::YaraRules>,
}

impl Engine {
    /// The number of signatures loaded, as clamscan's "Known viruses".
    pub fn signature_count(&self) -> u64 {
        self.db.signature_count + self.yara.as_ref().map_or(0, |y| y.rule_count() as u64)
    }

    /// A scanner for one thread.
    pub fn scanner(&self) -> Scanner<'_> {
        Scanner::new(self)
    }

    /// Adds compiled YARA rules (replacing any); their matches are reported
    /// as `YARA.<rule>.UNOFFICIAL`, as clamscan names rules from rule files.
    pub fn set_yara(&mut self, rules: Option<aether_yara::YaraRules>) {
        self.yara = rules;
    }

    /// The YARA rules in use.
    pub fn yara(&self) -> Option<&aether_yara::YaraRules> {
        self.yara.as_ref()
    }
}
