//! The loaded database, and reloading it without an outage.
//!
//! The engine in service is an `Arc<Active>` behind a lock that is held only
//! to clone or replace the `Arc`: a scan takes its own reference when it
//! starts and finishes on that engine, whatever happens meanwhile. A reload
//! compiles the new database on its own thread while the old one serves, and
//! swaps it in only once it has loaded; a database that fails to load leaves
//! the old one serving, and the failure is logged.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aether_engine::{DbError, DbSources, Engine};

/// One loaded database.
pub struct Active {
    pub engine: Engine,
    pub signatures: u64,
}

/// How the last reload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    Loaded {
        signatures: u64,
        elapsed: Duration,
    },
    Failed(String),
    /// A reload was already running; this request joined it.
    AlreadyRunning,
}

/// The database in service, and how to load it again.
pub struct Database {
    sources: DbSources,
    cache_dir: Option<PathBuf>,
    current: RwLock<Arc<Active>>,
    reloading: AtomicBool,
}

impl Database {
    /// Loads the databases for the first time.
    pub fn load(sources: DbSources, cache_dir: Option<PathBuf>) -> Result<Database, DbError> {
        let active = load_active(&sources, cache_dir.as_deref())?;
        Ok(Database {
            sources,
            cache_dir,
            current: RwLock::new(Arc::new(active)),
            reloading: AtomicBool::new(false),
        })
    }

    /// The engine in service now; scans keep it until they finish.
    pub fn current(&self) -> Arc<Active> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Loads the databases again on the calling thread and swaps the result
    /// in. Called from a dedicated thread: loading takes seconds.
    pub fn reload(&self) -> ReloadOutcome {
        if self.reloading.swap(true, Ordering::AcqRel) {
            return ReloadOutcome::AlreadyRunning;
        }
        let started = Instant::now();
        let result = load_active(&self.sources, self.cache_dir.as_deref());
        let outcome = match result {
            Ok(active) => {
                let signatures = active.signatures;
                let new = Arc::new(active);
                let old = {
                    let mut g = self.current.write().unwrap_or_else(|p| p.into_inner());
                    std::mem::replace(&mut *g, new)
                };
                // The old engine is freed here unless a scan still holds it;
                // then the last scan to finish frees it.
                drop(old);
                ReloadOutcome::Loaded {
                    signatures,
                    elapsed: started.elapsed(),
                }
            }
            Err(e) => ReloadOutcome::Failed(e.to_string()),
        };
        self.reloading.store(false, Ordering::Release);
        outcome
    }
}

fn load_active(
    sources: &DbSources,
    cache_dir: Option<&std::path::Path>,
) -> Result<Active, DbError> {
    let loaded = aether_engine::load_cached(sources, Default::default(), cache_dir)?;
    if let Some(problem) = &loaded.cache_problem {
        tracing::warn!("database cache: {problem}");
    }
    let signatures = loaded.engine.signature_count();
    tracing::info!(
        signatures,
        from_cache = loaded.from_cache,
        seconds = loaded.elapsed.as_secs_f64(),
        "database loaded"
    );
    Ok(Active {
        engine: loaded.engine,
        signatures,
    })
}
