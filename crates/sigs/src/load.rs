//! Loading database files, directories and containers into a [`SignatureSink`].
//!
//! The order and the rules follow ClamAV's `cli_loaddbdir` and `cli_load`:
//! ignore lists first (so they apply to everything after them), then
//! `daily.cld`/`daily.cvd`, `local.gdb`, `daily.cfg`, `.crb`, then the rest;
//! a line that does not parse stops the load with its path and line number.
//! Within one priority aether sorts by name, where ClamAV takes whatever
//! order the file system lists, so loads are reproducible.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use md5::Digest as _;

use crate::cvd::{self, ArchiveLimits, CvdError, CvdHeader, InfoFile, RsaKey};
use crate::error::{LoadError, LoadErrorKind};
use crate::line::{self, LineError, Parsed};
use crate::logical;
use crate::pehash::{self, PeHashKind};
use crate::record::{HashKind, HashSig};
use crate::sink::{SignatureSink, Unsupported};

/// Database file formats, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DbFormat {
    /// `.hdb`: MD5 (or SHA) whole-file hashes.
    Hdb,
    /// `.hsb`: SHA1/SHA256 (or MD5) whole-file hashes.
    Hsb,
    /// `.ndb`: extended body signatures.
    Ndb,
    /// `.fp`: MD5 allow list.
    Fp,
    /// `.sfp`: SHA allow list.
    Sfp,
    /// `.ign`: old ignore list.
    Ign,
    /// `.ign2`: ignore list.
    Ign2,
    /// `.cvd`: signed container.
    Cvd,
    /// `.cld`: locally updated container (header signature not checked).
    Cld,
    /// `.cud`: unsigned container.
    Cud,
    /// `.sdb`: body signatures in `.ndb` format (ClamAV's self-protection set).
    Sdb,
    /// `.info`: a container's table of contents; only valid inside containers.
    Info,
    /// `.ldb`: logical signatures.
    Ldb,
    /// `.mdb`: PE section hashes (MD5, or SHA).
    Mdb,
    /// `.msb`: PE section hashes (SHA1/SHA256, or MD5).
    Msb,
    /// `.imp`: PE import-table hashes.
    Imp,
    /// Another ClamAV database type that aether recognizes but does not use yet;
    /// its signatures are counted under `reason`.
    Other {
        ext: &'static str,
        reason: &'static str,
    },
}

const PUA: &str = "PUA signatures (.hdu .hsu .mdu .msu .ndu .ldu; off by default in ClamAV)";

/// Every extension ClamAV loads (`CLI_DBEXT` plus `.info`), lower case.
const EXTENSIONS: &[(&str, DbFormat)] = &[
    ("hdb", DbFormat::Hdb),
    ("hsb", DbFormat::Hsb),
    ("ndb", DbFormat::Ndb),
    ("fp", DbFormat::Fp),
    ("sfp", DbFormat::Sfp),
    ("ign", DbFormat::Ign),
    ("ign2", DbFormat::Ign2),
    ("cvd", DbFormat::Cvd),
    ("cld", DbFormat::Cld),
    ("cud", DbFormat::Cud),
    ("sdb", DbFormat::Sdb),
    ("info", DbFormat::Info),
    (
        "db",
        DbFormat::Other {
            ext: "db",
            reason: "old-style body signatures (.db)",
        },
    ),
    (
        "hdu",
        DbFormat::Other {
            ext: "hdu",
            reason: PUA,
        },
    ),
    (
        "hsu",
        DbFormat::Other {
            ext: "hsu",
            reason: PUA,
        },
    ),
    (
        "mdu",
        DbFormat::Other {
            ext: "mdu",
            reason: PUA,
        },
    ),
    (
        "msu",
        DbFormat::Other {
            ext: "msu",
            reason: PUA,
        },
    ),
    (
        "ndu",
        DbFormat::Other {
            ext: "ndu",
            reason: PUA,
        },
    ),
    (
        "ldu",
        DbFormat::Other {
            ext: "ldu",
            reason: PUA,
        },
    ),
    ("mdb", DbFormat::Mdb),
    ("msb", DbFormat::Msb),
    ("imp", DbFormat::Imp),
    ("ldb", DbFormat::Ldb),
    (
        "cdb",
        DbFormat::Other {
            ext: "cdb",
            reason: "container metadata signatures (.cdb)",
        },
    ),
    (
        "cbc",
        DbFormat::Other {
            ext: "cbc",
            reason: "bytecode signatures (.cbc)",
        },
    ),
    (
        "ftm",
        DbFormat::Other {
            ext: "ftm",
            reason: "file type magic (.ftm)",
        },
    ),
    (
        "cfg",
        DbFormat::Other {
            ext: "cfg",
            reason: "dynamic configuration (.cfg)",
        },
    ),
    (
        "crb",
        DbFormat::Other {
            ext: "crb",
            reason: "Authenticode certificate rules (.crb)",
        },
    ),
    (
        "cat",
        DbFormat::Other {
            ext: "cat",
            reason: "Authenticode catalogs (.cat)",
        },
    ),
    (
        "idb",
        DbFormat::Other {
            ext: "idb",
            reason: "icon signatures (.idb)",
        },
    ),
    (
        "ioc",
        DbFormat::Other {
            ext: "ioc",
            reason: "OpenIOC indicators (.ioc)",
        },
    ),
    (
        "pdb",
        DbFormat::Other {
            ext: "pdb",
            reason: "phishing URL signatures (.pdb .gdb .wdb)",
        },
    ),
    (
        "gdb",
        DbFormat::Other {
            ext: "gdb",
            reason: "phishing URL signatures (.pdb .gdb .wdb)",
        },
    ),
    (
        "wdb",
        DbFormat::Other {
            ext: "wdb",
            reason: "phishing URL signatures (.pdb .gdb .wdb)",
        },
    ),
    (
        "yar",
        DbFormat::Other {
            ext: "yar",
            reason: "YARA rules (.yar .yara)",
        },
    ),
    (
        "yara",
        DbFormat::Other {
            ext: "yara",
            reason: "YARA rules (.yar .yara)",
        },
    ),
    (
        "zmd",
        DbFormat::Other {
            ext: "zmd",
            reason: "archive metadata signatures (.zmd .rmd)",
        },
    ),
    (
        "rmd",
        DbFormat::Other {
            ext: "rmd",
            reason: "archive metadata signatures (.zmd .rmd)",
        },
    ),
    (
        "pwdb",
        DbFormat::Other {
            ext: "pwdb",
            reason: "archive passwords (.pwdb)",
        },
    ),
];

impl DbFormat {
    /// The format for a file name, by its extension (case-insensitive, as ClamAV).
    pub fn from_name(name: &str) -> Option<DbFormat> {
        let (_, ext) = name.rsplit_once('.')?;
        EXTENSIONS
            .iter()
            .find(|(e, _)| e.eq_ignore_ascii_case(ext))
            .map(|&(_, f)| f)
    }

    /// The extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            DbFormat::Other { ext, .. } => ext,
            f => EXTENSIONS
                .iter()
                .find(|(_, g)| *g == f)
                .map_or("", |(e, _)| e),
        }
    }

    /// Whether this is a container (`.cvd`, `.cld`, `.cud`).
    pub fn is_container(self) -> bool {
        matches!(self, DbFormat::Cvd | DbFormat::Cld | DbFormat::Cud)
    }
}

impl std::fmt::Display for DbFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, ".{}", self.extension())
    }
}

/// How to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Check digital signatures of `.cvd` headers and container `.info` files
    /// (default true). Sizes and SHA-256s listed in `.info` are always checked.
    pub verify: bool,
    /// Key for `.cvd` header signatures; ClamAV's by default.
    pub cvd_key: RsaKey,
    /// Key for `.info` signatures; ClamAV's by default.
    pub info_key: RsaKey,
    /// Largest database file (or container) read, in bytes.
    pub max_file_size: u64,
    /// Longest line accepted, in bytes.
    pub max_line_len: usize,
    /// Bounds on what a container may unpack to.
    pub archive_limits: ArchiveLimits,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            verify: true,
            cvd_key: RsaKey::clamav_cvd(),
            info_key: RsaKey::clamav_info(),
            max_file_size: 1 << 30,
            max_line_len: 64 * 1024,
            archive_limits: ArchiveLimits::default(),
        }
    }
}

/// What one database file (or one file inside a container) contributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The path as given, or `container/entry` for files inside a container.
    pub name: String,
    pub format: DbFormat,
    /// Records the sink accepted, by kind: `md5`, `sha1`, `sha256` (detection
    /// hashes), `allow md5`, `allow sha1`, `allow sha256`, `section md5`, `section sha1`,
    /// `section sha256` (.mdb/.msb), `import md5`, `import sha1`, `import sha256` (.imp),
    /// `body`, `logical`, `ignore`.
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Records not used, by reason: database types aether does not use yet,
    /// and records the sink declined.
    pub unsupported: BTreeMap<&'static str, u64>,
    /// Records skipped because their functionality-level range excludes aether's.
    pub skipped_flevel: u64,
    /// Records dropped by an ignore list (`.ign`, `.ign2`).
    pub ignored: u64,
    /// For a container: its header. The files inside follow as their own reports.
    pub cvd: Option<CvdHeader>,
}

impl FileReport {
    fn new(name: String, format: DbFormat) -> FileReport {
        FileReport {
            name,
            format,
            by_kind: BTreeMap::new(),
            unsupported: BTreeMap::new(),
            skipped_flevel: 0,
            ignored: 0,
            cvd: None,
        }
    }

    /// Records accepted by the sink.
    pub fn loaded(&self) -> u64 {
        self.by_kind
            .iter()
            .filter(|(k, _)| **k != "ignore")
            .map(|(_, v)| v)
            .sum()
    }

    fn count(&mut self, kind: &'static str, n: u64) {
        if n > 0 {
            *self.by_kind.entry(kind).or_default() += n;
        }
    }

    fn unsupported(&mut self, reason: &'static str) {
        *self.unsupported.entry(reason).or_default() += 1;
    }
}

/// Everything a [`Loader`] loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// In load order. A container's report comes before those of its files.
    pub files: Vec<FileReport>,
    /// Files passed over, and why (an older `.cvd` next to a newer `.cld`, ...).
    pub notes: Vec<String>,
}

impl LoadReport {
    /// Records accepted by the sink, over all files.
    pub fn loaded(&self) -> u64 {
        self.files.iter().map(FileReport::loaded).sum()
    }

    /// Unused records by reason, over all files.
    pub fn unsupported(&self) -> BTreeMap<&'static str, u64> {
        let mut all = BTreeMap::new();
        for f in &self.files {
            for (r, n) in &f.unsupported {
                *all.entry(*r).or_default() += n;
            }
        }
        all
    }

    pub fn skipped_flevel(&self) -> u64 {
        self.files.iter().map(|f| f.skipped_flevel).sum()
    }

    pub fn ignored(&self) -> u64 {
        self.files.iter().map(|f| f.ignored).sum()
    }
}

/// What a hash database's lines are for (ClamAV's `hash_purpose_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HashPurpose {
    /// `.hdb`/`.hsb`: whole-file detection.
    File,
    /// `.fp`/`.sfp`: whole-file allow list.
    Allow,
    /// `.mdb`/`.msb`: PE sections.
    Section,
    /// `.imp`: PE import table.
    Import,
}

/// Loads databases into a sink, collecting a [`LoadReport`].
pub struct Loader {
    opts: LoadOptions,
    report: LoadReport,
    /// Normalized signature name -> line MD5s (`None`: any version).
    ignores: HashMap<Box<str>, Vec<Option<[u8; 16]>>>,
    /// Loading the files of a `.cvd` or `.cld`: ClamAV's "official" databases,
    /// whose names it prints without `.UNOFFICIAL`.
    in_official_container: bool,
}

/// ClamAV's directory load priorities (`DB_LOAD_PRIORITY_*`).
fn dir_priority(name: &str, format: DbFormat) -> u8 {
    match (name, format) {
        (_, DbFormat::Ign | DbFormat::Ign2) => 1,
        ("daily.cld", _) => 2,
        ("daily.cvd", _) => 3,
        ("local.gdb", _) => 4,
        ("daily.cfg", _) => 5,
        (_, DbFormat::Other { ext: "crb", .. }) => 6,
        _ => 7,
    }
}

fn err(path: &Path, line: Option<usize>, kind: impl Into<LoadErrorKind>) -> LoadError {
    LoadError::new(path, line, kind)
}

/// Where a database's lines come from: memory (the built-in database, files
/// inside containers) or a file read in chunks, so that a 60 MB database never
/// sits in memory whole while its signatures are being compiled.
enum LineInput<'a> {
    Bytes(&'a [u8]),
    File(std::fs::File, u64),
}

/// Bytes read from a database file at a time.
const READ_CHUNK: usize = 4 << 20;

/// Calls `f(line_number, line)` for every line that is not a comment, with
/// `\r\n` endings trimmed; returns the number of lines.
fn for_each_line(
    path: &Path,
    input: LineInput<'_>,
    max_len: usize,
    mut f: impl FnMut(usize, &str) -> Result<(), LoadErrorKind>,
) -> Result<usize, LoadError> {
    let (mut file, max_size) = match input {
        LineInput::Bytes(data) => return lines_in(path, data, 0, max_len, &mut f),
        LineInput::File(file, max_size) => (file, max_size),
    };
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK + max_len);
    let (mut no, mut total) = (0usize, 0u64);
    loop {
        let filled = buf.len();
        buf.resize(filled + READ_CHUNK, 0);
        let n = loop {
            match file.read(&mut buf[filled..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(err(path, None, e)),
            }
        };
        buf.truncate(filled + n);
        total += n as u64;
        if total > max_size {
            return Err(err(path, None, LoadErrorKind::TooLarge(max_size)));
        }
        let eof = n == 0;
        // Complete lines only; the rest waits for the next read.
        let cut = if eof {
            buf.len()
        } else {
            match memchr::memrchr(b'\n', &buf) {
                Some(i) => i + 1,
                None if buf.len() > max_len => {
                    return Err(err(path, Some(no + 1), LoadErrorKind::LineTooLong(max_len)));
                }
                None => continue,
            }
        };
        no = lines_in(path, &buf[..cut], no, max_len, &mut f)?;
        buf.drain(..cut);
        if eof {
            return Ok(no);
        }
    }
}

/// The lines of `data`, numbered from `first + 1`; returns the last number.
fn lines_in(
    path: &Path,
    data: &[u8],
    first: usize,
    max_len: usize,
    f: &mut impl FnMut(usize, &str) -> Result<(), LoadErrorKind>,
) -> Result<usize, LoadError> {
    let text = match std::str::from_utf8(data) {
        Ok(t) => t,
        Err(e) => {
            let line = first + memchr::memchr_iter(b'\n', &data[..e.valid_up_to()]).count() + 1;
            return Err(err(path, Some(line), LoadErrorKind::NotUtf8));
        }
    };
    let mut no = first;
    let mut rest = text;
    while !rest.is_empty() {
        let (raw, next) = match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        rest = next;
        no += 1;
        if raw.len() > max_len {
            return Err(err(path, Some(no), LoadErrorKind::LineTooLong(max_len)));
        }
        if raw.starts_with('#') {
            continue;
        }
        f(no, raw.trim_end_matches('\r')).map_err(|k| err(path, Some(no), k))?;
    }
    Ok(no)
}

/// Counts the signatures of a database type aether does not parse: lines that
/// are neither blank nor comments; one per file for single-signature types.
fn count_other(ext: &str, data: &[u8]) -> u64 {
    match ext {
        "cbc" | "cat" | "ioc" => 1,
        "yar" | "yara" => data
            .split(|&b| b == b'\n')
            .filter(|l| {
                let l = String::from_utf8_lossy(l);
                let mut words = l
                    .split_whitespace()
                    .skip_while(|w| *w == "private" || *w == "global");
                words.next() == Some("rule")
            })
            .count() as u64,
        _ => data
            .split(|&b| b == b'\n')
            .filter(|l| {
                let t = l.trim_ascii();
                !t.is_empty() && !t.starts_with(b"#")
            })
            .count() as u64,
    }
}

impl Loader {
    pub fn new(opts: LoadOptions) -> Loader {
        Loader {
            opts,
            report: LoadReport::default(),
            ignores: HashMap::new(),
            in_official_container: false,
        }
    }

    /// What has been loaded so far.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    pub fn finish(self) -> LoadReport {
        self.report
    }

    /// Loads a database file or a directory of them. A file's type comes from
    /// its extension; a file with an unknown extension is an error, while in a
    /// directory such files are passed over (as ClamAV does).
    pub fn load_path(
        &mut self,
        path: &Path,
        sink: &mut dyn SignatureSink,
    ) -> Result<(), LoadError> {
        let meta = std::fs::metadata(path).map_err(|e| err(path, None, e))?;
        if meta.is_dir() {
            return self.load_dir(path, sink);
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let Some(format) = DbFormat::from_name(&name) else {
            return Err(err(path, None, LoadErrorKind::UnknownExtension));
        };
        self.load_file(path, format, sink)
    }

    fn load_dir(&mut self, dir: &Path, sink: &mut dyn SignatureSink) -> Result<(), LoadError> {
        let mut files: Vec<(u8, String, PathBuf, DbFormat)> = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| err(dir, None, e))? {
            let entry = entry.map_err(|e| err(dir, None, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(format) = DbFormat::from_name(&name) else {
                continue;
            };
            if format == DbFormat::Info {
                continue; // not in ClamAV's CLI_DBEXT: only meaningful in containers
            }
            let path = entry.path();
            if !std::fs::metadata(&path)
                .map_err(|e| err(&path, None, e))?
                .is_file()
            {
                self.report
                    .notes
                    .push(format!("{}: not a regular file, skipped", path.display()));
                continue;
            }
            files.push((dir_priority(&name, format), name, path, format));
        }
        if files.is_empty() {
            return Err(err(dir, None, LoadErrorKind::NoDatabases));
        }
        files.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));

        // A `.cld` is a `.cvd` updated in place: of a pair, load only the newer
        // one, the `.cld` when they are the same version (ClamAV does this for
        // `daily` in cli_loaddbdir and for any pair in cli_cvdload).
        let mut skip: Vec<PathBuf> = Vec::new();
        for (_, name, path, format) in &files {
            if *format != DbFormat::Cvd {
                continue;
            }
            let stem = &name[..name.len() - 4];
            let Some((_, _, cld_path, _)) = files.iter().find(|(_, n, _, f)| {
                *f == DbFormat::Cld && n.len() == name.len() && n.starts_with(stem)
            }) else {
                continue;
            };
            let cvd = read_header(path)?;
            let cld = read_header(cld_path)?;
            let (drop, keep) = if cld.version >= cvd.version {
                (path, cld_path)
            } else {
                (cld_path, path)
            };
            self.report.notes.push(format!(
                "{}: skipped, {} is the same version or newer",
                drop.display(),
                keep.display()
            ));
            skip.push(drop.clone());
        }
        for (_, _, path, format) in &files {
            if !skip.contains(path) {
                self.load_file(path, *format, sink)?;
            }
        }
        Ok(())
    }

    fn load_file(
        &mut self,
        path: &Path,
        format: DbFormat,
        sink: &mut dyn SignatureSink,
    ) -> Result<(), LoadError> {
        let file = std::fs::File::open(path).map_err(|e| err(path, None, e))?;
        if matches!(
            format,
            DbFormat::Hdb
                | DbFormat::Hsb
                | DbFormat::Fp
                | DbFormat::Sfp
                | DbFormat::Ndb
                | DbFormat::Sdb
                | DbFormat::Ldb
                | DbFormat::Mdb
                | DbFormat::Msb
                | DbFormat::Imp
        ) {
            let input = LineInput::File(file, self.opts.max_file_size);
            return self.load_lines(path, path.display().to_string(), format, input, sink);
        }
        let mut data = Vec::new();
        let max = self.opts.max_file_size;
        file.take(max.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|e| err(path, None, e))?;
        if data.len() as u64 > max {
            return Err(err(path, None, LoadErrorKind::TooLarge(max)));
        }
        self.load_data(path, path.display().to_string(), format, &data, sink)
    }

    /// Loads a database held in memory, of the given format. `name` is used in
    /// errors and in the report.
    pub fn load_bytes(
        &mut self,
        name: &str,
        format: DbFormat,
        data: &[u8],
        sink: &mut dyn SignatureSink,
    ) -> Result<(), LoadError> {
        self.load_data(Path::new(name), name.to_string(), format, data, sink)
    }

    fn load_data(
        &mut self,
        path: &Path,
        name: String,
        format: DbFormat,
        data: &[u8],
        sink: &mut dyn SignatureSink,
    ) -> Result<(), LoadError> {
        let mut report = FileReport::new(name, format);
        match format {
            DbFormat::Cvd | DbFormat::Cld | DbFormat::Cud => {
                self.in_official_container = format != DbFormat::Cud;
                let result = self.load_container(path, report, format, data, sink);
                self.in_official_container = false;
                return result;
            }
            DbFormat::Info => {
                return Err(err(
                    path,
                    None,
                    LoadErrorKind::Container(
                        ".info files can only be loaded from within containers".into(),
                    ),
                ));
            }
            _ => sink.begin_database(self.in_official_container),
        }
        match format {
            DbFormat::Cvd | DbFormat::Cld | DbFormat::Cud | DbFormat::Info => {}
            DbFormat::Hdb
            | DbFormat::Hsb
            | DbFormat::Fp
            | DbFormat::Sfp
            | DbFormat::Ndb
            | DbFormat::Sdb
            | DbFormat::Ldb
            | DbFormat::Mdb
            | DbFormat::Msb
            | DbFormat::Imp => {
                return self.load_lines(path, report.name, format, LineInput::Bytes(data), sink);
            }
            DbFormat::Ign | DbFormat::Ign2 => {
                self.load_ignores(path, &mut report, LineInput::Bytes(data))?
            }
            DbFormat::Other { ext, reason } => {
                let n = count_other(ext, data);
                if n > 0 {
                    report.unsupported.insert(reason, n);
                }
            }
        }
        self.report.files.push(report);
        Ok(())
    }

    /// A hash or body database, from memory or streamed from its file.
    fn load_lines(
        &mut self,
        path: &Path,
        name: String,
        format: DbFormat,
        input: LineInput<'_>,
        sink: &mut dyn SignatureSink,
    ) -> Result<(), LoadError> {
        sink.begin_database(self.in_official_container);
        let mut report = FileReport::new(name, format);
        match format {
            DbFormat::Ndb | DbFormat::Sdb => self.load_bodies(path, &mut report, input, sink)?,
            DbFormat::Ldb => self.load_logical(path, &mut report, input, sink)?,
            _ => {
                let purpose = match format {
                    DbFormat::Fp | DbFormat::Sfp => HashPurpose::Allow,
                    DbFormat::Mdb | DbFormat::Msb => HashPurpose::Section,
                    DbFormat::Imp => HashPurpose::Import,
                    _ => HashPurpose::File,
                };
                self.load_hashes(path, &mut report, purpose, input, sink)?;
            }
        }
        self.report.files.push(report);
        Ok(())
    }

    /// Whether an ignore list drops the signature `name` whose line is `line`.
    fn is_ignored(&self, name: &str, line: &str) -> bool {
        if self.ignores.is_empty() {
            return false;
        }
        let Some(entries) = self.ignores.get(line::normalized_name(name)) else {
            return false;
        };
        let mut md5 = None;
        entries.iter().any(|e| match e {
            None => true,
            Some(want) => {
                let got: &[u8; 16] =
                    md5.get_or_insert_with(|| md5::Md5::digest(line.as_bytes()).into());
                got == want
            }
        })
    }

    fn load_hashes(
        &mut self,
        path: &Path,
        report: &mut FileReport,
        purpose: HashPurpose,
        input: LineInput<'_>,
        sink: &mut dyn SignatureSink,
    ) -> Result<(), LoadError> {
        // Per-kind counters kept in an array: a map update per line would cost
        // more than the parse on million-line files.
        let mut counts = [0u64; 3];
        let mut unsupported: Vec<Unsupported> = Vec::new();
        let (mut flevel, mut ignored) = (0u64, 0u64);
        let lines = for_each_line(path, input, self.opts.max_line_len, |_, l| {
            let parsed = match purpose {
                HashPurpose::Section => pehash::parse_pe_hash_line(l, PeHashKind::Section)?,
                HashPurpose::Import => pehash::parse_pe_hash_line(l, PeHashKind::Import)?,
                HashPurpose::File | HashPurpose::Allow => line::parse_hash_line(l)?,
            };
            let sig: HashSig<'_> = match parsed {
                Parsed::Record(s) => s,
                Parsed::SkippedFlevel => {
                    flevel += 1;
                    return Ok(());
                }
                Parsed::Unsupported(r) => {
                    unsupported.push(Unsupported(r));
                    return Ok(());
                }
            };
            if self.is_ignored(sig.name, l) {
                ignored += 1;
                return Ok(());
            }
            let kind = sig.digest.kind;
            let res = match purpose {
                HashPurpose::File => sink.hash(sig),
                HashPurpose::Allow => sink.allow(sig),
                HashPurpose::Section => sink.section_hash(sig),
                HashPurpose::Import => sink.import_hash(sig),
            };
            match res {
                Ok(()) => counts[kind as usize] += 1,
                Err(u) => unsupported.push(u),
            }
            Ok(())
        })?;
        if lines == 0 {
            return Err(err(path, None, LoadErrorKind::Empty));
        }
        let names: [&'static str; 3] = match purpose {
            HashPurpose::File => ["md5", "sha1", "sha256"],
            HashPurpose::Allow => ["allow md5", "allow sha1", "allow sha256"],
            HashPurpose::Section => ["section md5", "section sha1", "section sha256"],
            HashPurpose::Import => ["import md5", "import sha1", "import sha256"],
        };
        for (kind, n) in [HashKind::Md5, HashKind::Sha1, HashKind::Sha256]
            .into_iter()
            .zip(counts)
        {
            report.count(names[kind as usize], n);
        }
        for u in unsupported {
            report.unsupported(u.0);
        }
        report.skipped_flevel += flevel;
        report.ignored += ignored;
        Ok(())
    }

    fn load_bodies(
        &mut self,
        path: &Path,
        report: &mut FileReport,
        input: LineInput<'_>,
        sink: &mut dyn SignatureSink,
    ) -> Result<(), LoadError> {
        let max_len = self.opts.max_line_len;
        self.load_records(
            path,
            report,
            input,
            max_len,
            "body",
            line::body_line_name,
            |l| {
                Ok(match line::parse_body_line(l)? {
                    Parsed::Record(sig) => Parsed::Record(sink.body(sig)),
                    Parsed::SkippedFlevel => Parsed::SkippedFlevel,
                    Parsed::Unsupported(r) => Parsed::Unsupported(r),
                })
            },
        )
    }

    fn load_logical(
        &mut self,
        path: &Path,
        report: &mut FileReport,
        input: LineInput<'_>,
        sink: &mut dyn SignatureSink,
    ) -> Result<(), LoadError> {
        // ClamAV reads `.ldb` lines into a 32 KiB buffer.
        let max_len = self.opts.max_line_len.min(logical::MAX_LINE_LEN);
        self.load_records(
            path,
            report,
            input,
            max_len,
            "logical",
            logical::logical_line_name,
            |l| {
                Ok(
                    match logical::parse_logical_line(l).map_err(LineError::from)? {
                        Parsed::Record(sig) => Parsed::Record(sink.logical(sig)),
                        Parsed::SkippedFlevel => Parsed::SkippedFlevel,
                        Parsed::Unsupported(r) => Parsed::Unsupported(r),
                    },
                )
            },
        )
    }

    /// The loop shared by body and logical databases: ignore lists first (as
    /// ClamAV consults them before it looks at the rest of the line), then
    /// `parse_and_sink`, which parses a line and hands its record to the sink.
    #[allow(clippy::too_many_arguments)]
    fn load_records(
        &mut self,
        path: &Path,
        report: &mut FileReport,
        input: LineInput<'_>,
        max_len: usize,
        kind: &'static str,
        name_of: fn(&str) -> &str,
        mut parse_and_sink: impl FnMut(&str) -> Result<Parsed<Result<(), Unsupported>>, LineError>,
    ) -> Result<(), LoadError> {
        let mut loaded = 0u64;
        let lines = for_each_line(path, input, max_len, |_, l| {
            if !l.is_empty() && self.is_ignored(name_of(l), l) {
                report.ignored += 1;
                return Ok(());
            }
            match parse_and_sink(l)? {
                Parsed::Record(Ok(())) => loaded += 1,
                Parsed::Record(Err(u)) => report.unsupported(u.0),
                Parsed::SkippedFlevel => report.skipped_flevel += 1,
                Parsed::Unsupported(r) => report.unsupported(r),
            }
            Ok(())
        })?;
        if lines == 0 {
            return Err(err(path, None, LoadErrorKind::Empty));
        }
        report.count(kind, loaded);
        Ok(())
    }

    fn load_ignores(
        &mut self,
        path: &Path,
        report: &mut FileReport,
        input: LineInput<'_>,
    ) -> Result<(), LoadError> {
        let mut added = 0u64;
        let ignores = &mut self.ignores;
        for_each_line(path, input, self.opts.max_line_len, |_, l| {
            let e = line::parse_ignore_line(l)?;
            ignores.entry(e.name.into()).or_default().push(e.line_md5);
            added += 1;
            Ok(())
        })?;
        report.count("ignore", added);
        Ok(())
    }

    fn load_container(
        &mut self,
        path: &Path,
        mut report: FileReport,
        format: DbFormat,
        data: &[u8],
        sink: &mut dyn SignatureSink,
    ) -> Result<(), LoadError> {
        let header = CvdHeader::from_container(data).map_err(|e| err(path, None, e))?;
        if format == DbFormat::Cvd && self.opts.verify {
            cvd::verify_cvd(data, &header, &self.opts.cvd_key).map_err(|e| err(path, None, e))?;
        }
        let container_name = report.name.clone();
        report.cvd = Some(header.clone());
        self.report.files.push(report);

        let info_key =
            (self.opts.verify && format != DbFormat::Cud).then(|| self.opts.info_key.clone());
        let mut info: Option<InfoFile> = None;
        // Files before the `.info` wait for it (official containers put it first).
        let mut pending: Vec<(String, Vec<u8>)> = Vec::new();
        let limits = self.opts.archive_limits;
        let result =
            cvd::for_each_entry(data, limits, |name, contents| -> Result<(), EntryError> {
                let entry_format = DbFormat::from_name(name);
                if info.is_none() && entry_format == Some(DbFormat::Info) {
                    let i = InfoFile::parse(contents, info_key.as_ref())
                        .map_err(|e| err(&path.join(name), None, e))?;
                    if !i.matches(&header) {
                        return Err(err(
                            path,
                            None,
                            CvdError::Header(format!("does not agree with {name}")),
                        )
                        .into());
                    }
                    info = Some(i);
                    for (n, c) in std::mem::take(&mut pending) {
                        self.load_entry(path, &container_name, info.as_ref(), &n, &c, sink)?;
                    }
                    return Ok(());
                }
                match entry_format {
                    None | Some(DbFormat::Info) => Ok(()), // COPYING and the like
                    Some(_) if info.is_none() => {
                        pending.push((name.to_string(), contents.to_vec()));
                        Ok(())
                    }
                    Some(_) => Ok(self.load_entry(
                        path,
                        &container_name,
                        info.as_ref(),
                        name,
                        contents,
                        sink,
                    )?),
                }
            });
        match result {
            Ok(()) => {}
            Err(EntryError::Load(e)) => return Err(e),
            Err(EntryError::Archive(e)) => return Err(err(path, None, e)),
        }
        if info.is_none() {
            return Err(err(
                path,
                None,
                CvdError::Info("container has no .info file".into()),
            ));
        }
        Ok(())
    }

    /// One database file inside a container, checked against the `.info`.
    fn load_entry(
        &mut self,
        path: &Path,
        container_name: &str,
        info: Option<&InfoFile>,
        name: &str,
        contents: &[u8],
        sink: &mut dyn SignatureSink,
    ) -> Result<(), LoadError> {
        let entry_path = path.join(name);
        let Some(format) = DbFormat::from_name(name) else {
            return Ok(());
        };
        if format.is_container() {
            return Err(err(
                &entry_path,
                None,
                LoadErrorKind::Container("container inside a container".into()),
            ));
        }
        let Some(listed) = info.and_then(|i| i.entries.iter().find(|e| e.name == name)) else {
            return Err(err(
                &entry_path,
                None,
                LoadErrorKind::Container("not listed in the container's .info".into()),
            ));
        };
        if listed.size != contents.len() as u64 {
            return Err(err(
                &entry_path,
                None,
                LoadErrorKind::Container(format!(
                    "size {} does not match the {} listed in .info",
                    contents.len(),
                    listed.size
                )),
            ));
        }
        let sha: [u8; 32] = sha2::Sha256::digest(contents).into();
        if sha != listed.sha256 {
            return Err(err(
                &entry_path,
                None,
                LoadErrorKind::Container("SHA-256 does not match the one listed in .info".into()),
            ));
        }
        self.load_data(
            &entry_path,
            format!("{container_name}/{name}"),
            format,
            contents,
            sink,
        )
    }
}

/// An error while walking a container: from the archive itself, or from
/// loading one of its files.
enum EntryError {
    Archive(CvdError),
    Load(LoadError),
}

impl From<CvdError> for EntryError {
    fn from(e: CvdError) -> EntryError {
        EntryError::Archive(e)
    }
}

impl From<LoadError> for EntryError {
    fn from(e: LoadError) -> EntryError {
        EntryError::Load(e)
    }
}

/// The header of a container file, reading only its first 512 bytes.
fn read_header(path: &Path) -> Result<CvdHeader, LoadError> {
    let mut head = Vec::with_capacity(cvd::HEADER_LEN);
    std::fs::File::open(path)
        .and_then(|f| f.take(cvd::HEADER_LEN as u64).read_to_end(&mut head))
        .map_err(|e| err(path, None, e))?;
    CvdHeader::from_container(&head).map_err(|e| err(path, None, e))
}
