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
    /// The built-in database plus `/var/lib/clamav` when it holds databases.
    /// Debian's clamav package creates that directory empty (freshclam fills
    /// it); an empty one is left out rather than failing the load, as the
    /// built-in database works on its own.
    pub fn default_sources() -> DbSources {
        let dir = Path::new(CLAMAV_DB_DIR);
        DbSources {
            builtin: true,
            paths: if holds_databases(dir) {
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

/// Whether `dir` is a directory with at least one database file in it. An
/// unreadable directory counts, so that the loader reports it.
fn holds_databases(dir: &Path) -> bool {
    if !dir.is_dir() {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return true;
    };
    entries.flatten().any(|e| {
        e.file_name()
            .to_str()
            .and_then(aether_sigs::DbFormat::from_name)
            .is_some()
    })
}

/// Why the databases could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Yara(#[from] aether_yara::YaraError),
}

/// Loads and compiles the databases.
pub fn load(sources: &DbSources, options: LoadOptions) -> Result<(Engine, LoadReport), DbError> {
    let (mut engine, mut report) = load_signatures(sources, options)?;
    attach_yara(&mut engine, &mut report, &yara_files(sources))?;
    Ok((engine, report))
}

/// Loads and compiles the ClamAV signatures, without YARA rules.
fn load_signatures(
    sources: &DbSources,
    options: LoadOptions,
) -> Result<(Engine, LoadReport), DbError> {
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

/// YARA rules besides those in the database directories, and the external
/// variables defined for all of them (aether's `--yara-rules` and
/// `--yara-define`).
#[derive(Debug, Clone, Default)]
pub struct YaraSources {
    /// Rule files, or directories of them, compiled after the databases' own.
    pub rules: Vec<PathBuf>,
    /// `NAME=VALUE` definitions, for every rule file.
    pub defines: Vec<(String, aether_yara::External)>,
}

/// The YARA rule files among the sources, as ClamAV loads them from a
/// database directory: `.yar`/`.yara` files given directly, and those in the
/// given directories in name order.
pub fn yara_files(sources: &DbSources) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in &sources.paths {
        if path.is_dir() {
            let mut inner: Vec<PathBuf> = std::fs::read_dir(path)
                .map(|rd| rd.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            inner.retain(|p| aether_yara::is_rule_file(p) && p.is_file());
            inner.sort();
            files.extend(inner);
        } else if aether_yara::is_rule_file(path) {
            files.push(path.clone());
        }
    }
    files
}

/// The reason the signature loader gives YARA files, which the engine
/// compiles itself.
const YARA_REASON: &str = "YARA rules (.yar .yara)";

/// Compiles `files` (none: no rules) into `engine`, and moves their rule
/// counts in the report from "unsupported" to loaded.
pub fn attach_yara(
    engine: &mut Engine,
    report: &mut LoadReport,
    files: &[PathBuf],
) -> Result<(), DbError> {
    attach_yara_with(engine, report, files, &[])
}

/// [`attach_yara`] with external variables defined for the rules (yara's
/// `-d NAME=VALUE`, aether's `--yara-define`).
pub fn attach_yara_with(
    engine: &mut Engine,
    report: &mut LoadReport,
    files: &[PathBuf],
    externals: &[(String, aether_yara::External)],
) -> Result<(), DbError> {
    attach_yara_cached(engine, report, files, externals, None).map(|_| ())
}

/// [`attach_yara_with`] through the compiled-rules cache in `cache_dir` (see
/// [`aether_yara::YaraRules::load`]); says what it did with the cache.
pub fn attach_yara_cached(
    engine: &mut Engine,
    report: &mut LoadReport,
    files: &[PathBuf],
    externals: &[(String, aether_yara::External)],
    cache_dir: Option<&Path>,
) -> Result<aether_yara::CacheUse, DbError> {
    if files.is_empty() {
        engine.set_yara(None);
        return Ok(aether_yara::CacheUse::Off);
    }
    let (rules, used) = aether_yara::YaraRules::load(files, externals, cache_dir)?;
    for f in &mut report.files {
        if let Some(n) = f.unsupported.remove(YARA_REASON) {
            f.by_kind.insert("yara", n);
        }
    }
    engine.set_yara(Some(rules));
    Ok(used)
}

// ---- the compiled-database cache ------------------------------------------

use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest as _, Sha256};

use crate::cache::{self, CacheError};

/// What [`load_cached`] did.
pub struct Loaded {
    pub engine: Engine,
    pub report: LoadReport,
    /// The engine came from the cache file.
    pub from_cache: bool,
    /// The YARA rules came from their cache file (see
    /// [`aether_yara::YaraRules::load`]); false without rules.
    pub yara_from_cache: bool,
    /// Why the cache was not used or not written, when that was not simply
    /// because it was missing or stale (for a warning).
    pub cache_problem: Option<String>,
    /// Time spent loading, compiling or reading the cache.
    pub elapsed: std::time::Duration,
}

/// The default cache directory: `$AETHER_CACHE_DIR`, else `/var/cache/aether`
/// for root, else `$XDG_CACHE_HOME/aether` or `~/.cache/aether`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("AETHER_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return Some(PathBuf::from("/var/cache/aether"));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("aether"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/aether"))
}

/// What the compiled form depends on: aether's version, the load options and
/// every database file's path, size, modification time and inode.
fn fingerprint(sources: &DbSources, options: &LoadOptions) -> std::io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(b"aether compiled database\0");
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(format!("{options:?}").as_bytes());
    if sources.builtin {
        for (name, _, text) in builtin::FILES {
            h.update(name.as_bytes());
            h.update(text.as_bytes());
        }
    }
    for path in &sources.paths {
        let mut entries = vec![path.clone()];
        if path.is_dir() {
            let mut inner: Vec<PathBuf> = std::fs::read_dir(path)?
                .flatten()
                .map(|e| e.path())
                .collect();
            inner.sort();
            entries.extend(inner);
        }
        for p in entries {
            h.update(p.as_os_str().as_encoded_bytes());
            h.update(b"\0");
            if let Ok(m) = std::fs::metadata(&p) {
                for v in [
                    m.len(),
                    m.mtime() as u64,
                    m.mtime_nsec() as u64,
                    m.ino(),
                    m.dev(),
                ] {
                    h.update(v.to_le_bytes());
                }
            }
        }
    }
    Ok(h.finalize().into())
}

/// The cache file for a set of sources: one per set, overwritten when stale.
fn cache_file(dir: &Path, sources: &DbSources) -> PathBuf {
    let mut h = Sha256::new();
    h.update([sources.builtin as u8]);
    for p in &sources.paths {
        h.update(p.as_os_str().as_encoded_bytes());
        h.update(b"\0");
    }
    let d = h.finalize();
    let name: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("db-{name}.aetherdb"))
}

/// A cache directory or file must be ours and writable by nobody else: a
/// compiled database decides what is reported as malware.
fn check_private(path: &Path) -> Result<(), CacheError> {
    let m = std::fs::symlink_metadata(path)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if m.file_type().is_symlink() || m.uid() != me || m.mode() & 0o022 != 0 {
        return Err(CacheError::Io(std::io::Error::other(format!(
            "{} is not a private file or directory of this user",
            path.display()
        ))));
    }
    Ok(())
}

fn read_cache(
    file: &Path,
    dir: &Path,
    fp: &[u8; 32],
) -> Result<(crate::builder::CompiledDb, LoadReport), CacheError> {
    check_private(dir)?;
    check_private(file)?;
    let f = std::fs::File::open(file)?;
    // SAFETY: the map is read-only and the file is private to this user;
    // aether replaces caches by rename, never by rewriting them in place, so
    // the mapped file is not truncated under the map.
    //
    // Not populated: the hash tables and names (most of the file) are used in
    // place and only the pages a lookup reaches are read, so the process holds
    // the few it uses, and the rest stays in the page cache, shared and
    // reclaimable, instead of in every process's resident set.
    let map = Arc::new(unsafe { memmap2::MmapOptions::new().map(&f)? });
    let data: &[u8] = &map;
    let n = data.len();
    let trailer = data
        .get(n.saturating_sub(8)..)
        .ok_or(CacheError::Corrupt("no trailer"))?;
    let report_len = u64::from_le_bytes(
        trailer
            .try_into()
            .map_err(|_| CacheError::Corrupt("no trailer"))?,
    );
    let report_start = usize::try_from(report_len)
        .ok()
        .and_then(|l| (n - 8).checked_sub(l))
        .ok_or(CacheError::Corrupt("report length"))?;
    let mut db = cache::decode(&map, report_start, fp)?;
    let report = cache::decode_report(&data[report_start..n - 8])?;
    let f = Arc::new(f);
    for table in [
        &mut db.hashes,
        &mut db.allow,
        &mut db.sections,
        &mut db.imports,
    ] {
        table.page(&f)?;
    }
    Ok((db, report))
}

fn write_cache(
    file: &Path,
    dir: &Path,
    fp: &[u8; 32],
    engine: &Engine,
    report: &LoadReport,
) -> Result<(), CacheError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    check_private(dir)?;
    let report = cache::encode_report(report);
    // Written aside and renamed, so a reader never sees half a file.
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    let written = (|| {
        use std::io::Write;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
        cache::encode(&engine.db, fp, &mut out)?;
        out.write_all(&report)?;
        out.write_all(&(report.len() as u64).to_le_bytes())?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, file)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(written?)
}

/// Loads the databases through the compiled cache in `cache_dir` (no cache
/// with `None`): a fresh cache is read instead of the text databases; a
/// missing, stale or unusable one is rebuilt after a normal load.
pub fn load_cached(
    sources: &DbSources,
    options: LoadOptions,
    cache_dir: Option<&Path>,
) -> Result<Loaded, DbError> {
    load_cached_with(sources, options, cache_dir, &YaraSources::default())
}

/// [`load_cached`] with more YARA rules and external variables: the
/// databases' rule files and `yara.rules` are compiled as one rule set, with
/// `yara.defines`, through their own cache file in `cache_dir`.
pub fn load_cached_with(
    sources: &DbSources,
    options: LoadOptions,
    cache_dir: Option<&Path>,
    yara: &YaraSources,
) -> Result<Loaded, DbError> {
    let started = Instant::now();
    let mut rule_files = yara_files(sources);
    rule_files.extend(yara.rules.iter().cloned());
    if let (Some((name, _)), true) = (yara.defines.first(), rule_files.is_empty()) {
        // Most likely a forgotten --yara-rules or -d: say so rather than
        // silently define nothing.
        return Err(aether_yara::YaraError::External {
            name: name.clone(),
            message: "defined, but no YARA rules are loaded".into(),
        }
        .into());
    }
    let attach = |engine: &mut Engine, report: &mut LoadReport, problem: &mut Option<String>| {
        let used = attach_yara_cached(engine, report, &rule_files, &yara.defines, cache_dir)?;
        if let Some(p) = used.problem() {
            match problem {
                Some(clamav) => *clamav = format!("{clamav}; YARA rules: {p}"),
                None => *problem = Some(format!("YARA rules: {p}")),
            }
        }
        Ok::<bool, DbError>(used.from_cache())
    };
    let Some(dir) = cache_dir else {
        let (mut engine, mut report) = load_signatures(sources, options)?;
        let mut problem = None;
        let yara_from_cache = attach(&mut engine, &mut report, &mut problem)?;
        return Ok(Loaded {
            engine,
            report,
            from_cache: false,
            yara_from_cache,
            cache_problem: problem,
            elapsed: started.elapsed(),
        });
    };
    let fp = match fingerprint(sources, &options) {
        Ok(fp) => fp,
        Err(e) => {
            let (mut engine, mut report) = load_signatures(sources, options)?;
            let mut problem = Some(format!("cannot fingerprint the databases: {e}"));
            let yara_from_cache = attach(&mut engine, &mut report, &mut problem)?;
            return Ok(Loaded {
                engine,
                report,
                from_cache: false,
                yara_from_cache,
                cache_problem: problem,
                elapsed: started.elapsed(),
            });
        }
    };
    let file = cache_file(dir, sources);
    let mut problem = None;
    match read_cache(&file, dir, &fp) {
        Ok((db, mut report)) => {
            let mut engine = Engine { db, yara: None };
            let yara_from_cache = attach(&mut engine, &mut report, &mut problem)?;
            return Ok(Loaded {
                engine,
                report,
                from_cache: true,
                yara_from_cache,
                cache_problem: problem,
                elapsed: started.elapsed(),
            });
        }
        Err(CacheError::Stale) => {}
        Err(CacheError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => problem = Some(format!("{}: {e}; recompiling", file.display())),
    }
    let (mut engine, mut report) = load_signatures(sources, options)?;
    let mut yara_problem = None;
    let yara_from_cache = attach(&mut engine, &mut report, &mut yara_problem)?;
    if let Err(e) = write_cache(&file, dir, &fp, &engine, &report) {
        problem.get_or_insert(format!("cannot write {}: {e}", file.display()));
    }
    let problem = match (problem, yara_problem) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    };
    Ok(Loaded {
        engine,
        report,
        from_cache: false,
        yara_from_cache,
        cache_problem: problem,
        elapsed: started.elapsed(),
    })
}
