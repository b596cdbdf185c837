/*!
YARA rules for aether, through YARA-X.

ClamAV reads YARA rules itself and supports only part of the language (no
modules, rules without strings skipped, private rules ignored). aether hands
them to YARA-X, VirusTotal's Rust implementation: every module, private and
global rules, external variables. This crate only does what aether needs
around it:

- [`YaraRules::compile`] reads `.yar`/`.yara` files (a directory contributes
  its rule files in name order) and compiles them once; a file that does not
  compile stops the load with the compiler's own message, which names the file
  and the line.
- [`YaraRules::load`] does the same through a cache of compiled rules
  (YARA-X's own serialized form), so that a set of ten thousand rules is
  compiled once rather than on every start; the `cache` module says what the
  cache is keyed on, and why it is read only when private to this user.
- [`YaraScanner`] scans one input at a time and returns the identifiers of the
  rules that matched (private rules are never reported, as in YARA). The engine
  reports them as `YARA.<identifier>`, as clamscan does.
*/

mod cache;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A value for an external variable (`yr scan --define NAME=VALUE`).
#[derive(Debug, Clone, PartialEq)]
pub enum External {
    Bool(bool),
    Integer(i64),
    Float(f64),
    String(String),
}

impl External {
    /// Parses `VALUE` as YARA's command-line tools do: `true`/`false`, an
    /// integer, a float, else a string (quotes optional).
    pub fn parse(value: &str) -> External {
        match value {
            "true" => External::Bool(true),
            "false" => External::Bool(false),
            v => {
                if let Ok(i) = v.parse::<i64>() {
                    External::Integer(i)
                } else if let Ok(f) = v.parse::<f64>() {
                    External::Float(f)
                } else {
                    External::String(v.trim_matches('"').to_string())
                }
            }
        }
    }
}

/// Why rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum YaraError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no .yar or .yara files", path.display())]
    NoRules { path: PathBuf },
    /// The compiler's own report, which names the file, line and column.
    #[error("{message}")]
    Compile { message: String },
    #[error("external variable {name}: {message}")]
    External { name: String, message: String },
}

/// Why an input could not be scanned with the rules.
#[derive(Debug, thiserror::Error)]
pub enum YaraScanError {
    /// The scan ran longer than the timeout.
    #[error("YARA scan timed out")]
    Timeout,
    #[error("YARA scan: {0}")]
    Other(String),
}

/// Whether a path names a YARA rule file.
pub fn is_rule_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yar" | "yara")
    )
}

/// What [`YaraRules::load`] did with the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheUse {
    /// No cache directory: compiled.
    Off,
    /// Read from the cache: nothing compiled.
    Read,
    /// Compiled (the cache was missing or stale), and the cache written.
    Written,
    /// Compiled, and not cached for this reason (rule files with `include`).
    Uncacheable(String),
    /// Compiled because the cache could not be used, or compiled and the
    /// cache could not be written: why, for a warning.
    Problem(String),
}

impl CacheUse {
    /// The rules came from the cache.
    pub fn from_cache(&self) -> bool {
        *self == CacheUse::Read
    }

    /// Why the cache could not be used or written, if it failed.
    pub fn problem(&self) -> Option<&str> {
        match self {
            CacheUse::Problem(p) => Some(p),
            _ => None,
        }
    }
}

/// The rule files `paths` name: files as given, directories' `.yar`/`.yara`
/// files in name order.
fn rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, YaraError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inner: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|source| YaraError::Io {
                    path: path.clone(),
                    source,
                })?
                .flatten()
                .map(|e| e.path())
                .filter(|p| is_rule_file(p) && p.is_file())
                .collect();
            if inner.is_empty() {
                return Err(YaraError::NoRules { path: path.clone() });
            }
            inner.sort();
            files.extend(inner);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Each file's name (for error messages) and text.
fn read_sources(files: &[PathBuf]) -> Result<Vec<(String, String)>, YaraError> {
    files
        .iter()
        .map(|file| {
            std::fs::read_to_string(file)
                .map(|text| (file.display().to_string(), text))
                .map_err(|source| YaraError::Io {
                    path: file.clone(),
                    source,
                })
        })
        .collect()
}

/// Whether a rule text has an `include` directive.
fn uses_include(text: &str) -> bool {
    text.lines().any(|l| {
        l.trim_start()
            .strip_prefix("include")
            .is_some_and(|r| r.trim_start().starts_with('"'))
    })
}

/// Serialized rules back to rules. The bytes passed the cache's ownership
/// and checksum checks; a panic inside YARA-X on them still only means
/// "corrupt".
fn deserialize(bytes: &[u8]) -> Result<yara_x::Rules, cache::CacheError> {
    match std::panic::catch_unwind(|| yara_x::Rules::deserialize(bytes)) {
        Ok(Ok(rules)) => Ok(rules),
        Ok(Err(e)) => Err(cache::CacheError::Corrupt(e.to_string())),
        Err(_) => Err(cache::CacheError::Corrupt(
            "YARA-X panicked reading it".into(),
        )),
    }
}

/// Compiled rules; share them between threads with `Arc`.
pub struct YaraRules {
    rules: yara_x::Rules,
    files: Vec<PathBuf>,
}

impl std::fmt::Debug for YaraRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YaraRules")
            .field("files", &self.files)
            .field("rules", &self.rule_count())
            .finish()
    }
}

impl YaraRules {
    /// Compiles the rule files in `paths` (files, or directories whose
    /// `.yar`/`.yara` files are taken in name order), with `externals`
    /// defined before any rule is read.
    pub fn compile(
        paths: &[PathBuf],
        externals: &[(String, External)],
    ) -> Result<YaraRules, YaraError> {
        let files = rule_files(paths)?;
        let sources = read_sources(&files)?;
        let mut rules = YaraRules::compile_sources(&sources, externals)?;
        rules.files = files;
        Ok(rules)
    }

    /// [`YaraRules::compile`] through a cache of compiled rules in
    /// `cache_dir` (none: no cache). A cache made from the same rule texts,
    /// paths, external variables and versions is read instead of compiling;
    /// otherwise the rules are compiled and the cache file replaced. A cache
    /// that cannot be used or written never fails the load: the returned
    /// [`CacheUse`] says what happened and why.
    pub fn load(
        paths: &[PathBuf],
        externals: &[(String, External)],
        cache_dir: Option<&Path>,
    ) -> Result<(YaraRules, CacheUse), YaraError> {
        let files = rule_files(paths)?;
        let sources = read_sources(&files)?;
        let Some(dir) = cache_dir else {
            let mut rules = YaraRules::compile_sources(&sources, externals)?;
            rules.files = files;
            return Ok((rules, CacheUse::Off));
        };
        if let Some(file) = sources.iter().find(|(_, text)| uses_include(text)) {
            // Included files are read by the compiler, out of the fingerprint's sight.
            let mut rules = YaraRules::compile_sources(&sources, externals)?;
            rules.files = files;
            return Ok((
                rules,
                CacheUse::Uncacheable(format!("{} uses include", file.0)),
            ));
        }
        let fp = cache::fingerprint(&sources, externals);
        let file = cache::cache_file(dir, &files);
        let mut problem = None;
        match cache::read(&file, dir, &fp).and_then(|bytes| deserialize(&bytes)) {
            Ok(rules) => {
                return Ok((YaraRules { rules, files }, CacheUse::Read));
            }
            Err(cache::CacheError::Stale) => {}
            Err(e) => problem = Some(format!("{}: {e}; recompiled", file.display())),
        }
        let mut rules = YaraRules::compile_sources(&sources, externals)?;
        rules.files = files;
        let written = rules
            .rules
            .serialize()
            .map_err(|e| cache::CacheError::Refused(format!("cannot serialize the rules: {e}")))
            .and_then(|bytes| cache::write(&file, dir, &fp, &bytes));
        if let Err(e) = written {
            problem.get_or_insert(format!("cannot write {}: {e}", file.display()));
        }
        Ok((
            rules,
            match problem {
                Some(p) => CacheUse::Problem(p),
                None => CacheUse::Written,
            },
        ))
    }

    /// Compiles rule texts, each with the name its errors will carry.
    pub fn compile_sources(
        sources: &[(String, String)],
        externals: &[(String, External)],
    ) -> Result<YaraRules, YaraError> {
        let mut compiler = yara_x::Compiler::new();
        for (name, value) in externals {
            let defined = match value {
                External::Bool(b) => compiler.define_global(name, *b),
                External::Integer(i) => compiler.define_global(name, *i),
                External::Float(f) => compiler.define_global(name, *f),
                External::String(s) => compiler.define_global(name, s.as_str()),
            };
            defined.map_err(|e| YaraError::External {
                name: name.clone(),
                message: e.to_string(),
            })?;
        }
        for (origin, text) in sources {
            let source = yara_x::SourceCode::from(text.as_str()).with_origin(origin.as_str());
            compiler
                .add_source(source)
                .map_err(|e| YaraError::Compile {
                    message: e.to_string(),
                })?;
        }
        Ok(YaraRules {
            rules: compiler.build(),
            files: Vec::new(),
        })
    }

    /// Rules compiled, private ones included.
    pub fn rule_count(&self) -> usize {
        self.rules.iter().len()
    }

    /// The files the rules came from.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// A scanner for one thread.
    pub fn scanner(&self) -> YaraScanner<'_> {
        YaraScanner {
            inner: yara_x::Scanner::new(&self.rules),
        }
    }
}

/// Scans inputs one at a time with compiled rules.
pub struct YaraScanner<'r> {
    inner: yara_x::Scanner<'r>,
}

impl YaraScanner<'_> {
    /// Stops a scan that runs longer than `timeout` (ClamAV's MaxScanTime).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.inner.set_timeout(timeout);
    }

    /// Sets an external variable for the following scans.
    pub fn set_external(&mut self, name: &str, value: &External) -> Result<(), YaraError> {
        let set = match value {
            External::Bool(b) => self.inner.set_global(name, *b).map(|_| ()),
            External::Integer(i) => self.inner.set_global(name, *i).map(|_| ()),
            External::Float(f) => self.inner.set_global(name, *f).map(|_| ()),
            External::String(s) => self.inner.set_global(name, s.as_str()).map(|_| ()),
        };
        set.map_err(|e| YaraError::External {
            name: name.to_string(),
            message: e.to_string(),
        })
    }

    /// The identifiers of the (non-private) rules that match `data`, in rule order.
    pub fn scan(&mut self, data: &[u8]) -> Result<Vec<String>, YaraScanError> {
        let results = self.inner.scan(data).map_err(|e| match e {
            yara_x::errors::ScanError::Timeout => YaraScanError::Timeout,
            e => YaraScanError::Other(e.to_string()),
        })?;
        Ok(results
            .matching_rules()
            .map(|r| r.identifier().to_string())
            .collect())
    }
}
