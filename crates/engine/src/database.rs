//! Which databases to load, and loading them into an [`Engine`].
//!
//! With no `-d`, aether loads its built-in database plus everything in
//! `/var/lib/clamav` (when that directory exists), as clamscan loads its default
//! database directory. With `-d`, only the given files and directories are loaded,
//! exactly as clamscan does, so that both report the same "Known viruses".

use std::path::{Path, PathBuf};

use aether_sigs::{LoadError, LoadOptions, LoadReport, Loader};

use crate::{BuildError, Engine, EngineBuilder, builtin};

/// ClamAV's default database directory on Debian.
pub const CLAMAV_DB_DIR: &str = "/var/lib/clamav";

/// The databases to load.
#[derive(Debug, Clone)]
pub struct DbSources {
    /// Load the database compiled into the binary.
    pub builtin: bool,
    /// Files and directories, loaded in order.
    pub paths: Vec<PathBuf>,
}

impl DbSources {
    /// The built-in database plus `/var/lib/clamav` when it exists.
    pub fn default_sources() -> DbSources {
        let dir = Path::new(CLAMAV_DB_DIR);
        DbSources {
            builtin: true,
            paths: if dir.is_dir() {
                vec![dir.to_path_buf()]
            } else {
                Vec::new()
            },
        }
    }

    /// `-d` paths if any were given, else the defaults.
    pub fn from_cli(paths: &[PathBuf]) -> DbSources {
        if paths.is_empty() {
            DbSources::default_sources()
        } else {
            DbSources {
                builtin: false,
                paths: paths.to_vec(),
            }
        }
    }
}

/// Why the databases could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// Loads and compiles the databases.
pub fn load(sources: &DbSources, options: LoadOptions) -> Result<(Engine, LoadReport), DbError> {
    let mut loader = Loader::new(options);
    let mut builder = EngineBuilder::new();
    if sources.builtin {
        builtin::load_into(&mut loader, &mut builder)?;
    }
    for path in &sources.paths {
        loader.load_path(path, &mut builder)?;
    }
    Ok((builder.build()?, loader.finish()))
}
