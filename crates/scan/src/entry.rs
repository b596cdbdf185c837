//! What scanning one path produced.

use std::io;
use std::path::{Path, PathBuf};

use aether_engine::{FileType, LimitExceeded, ScanError};

/// Something to scan: a path from the command line, or standard input (`-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file or directory.
    Path(PathBuf),
    /// Standard input, reported as `stdin` as clamscan does.
    Stdin,
}

impl Target {
    /// `-` is standard input, anything else a path.
    pub fn from_arg(arg: impl Into<PathBuf>) -> Target {
        let path = arg.into();
        if path.as_os_str() == "-" {
            Target::Stdin
        } else {
            Target::Path(path)
        }
    }

    /// The path, or `None` for standard input.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Target::Path(p) => Some(p),
            Target::Stdin => None,
        }
    }
}

/// One reported path: a file, a directory that could not be walked, or
/// standard input.
#[derive(Debug)]
pub struct Entry {
    /// The path as walked (argument joined with directory entries), or stdin.
    pub target: Target,
    /// What happened to it.
    pub outcome: Outcome,
}

/// What happened to one path.
#[derive(Debug)]
pub enum Outcome {
    /// The file was scanned (or skipped by `max_filesize`, which clamscan
    /// counts as scanned).
    Scanned(Scanned),
    /// A regular file of size 0: not scanned (`Empty file`).
    Empty,
    /// Excluded by `--exclude*`/`--include*` or `--cross-fs=no` (`Excluded`).
    Excluded,
    /// On `/proc`, which clamscan never scans (`Excluded (/proc)`).
    ExcludedProc,
    /// A symbolic link not followed (`Symbolic link`).
    SymbolicLink,
    /// A FIFO, socket or device met inside a directory: never opened.
    Special,
    /// The path could not be scanned.
    Error(EntryError),
}

/// A scanned file.
#[derive(Debug, Clone, Default)]
pub struct Scanned {
    /// The file's size (for stdin, the bytes read).
    pub size: u64,
    /// Bytes the engine scanned.
    pub bytes_scanned: u64,
    /// The recognized type; `None` when the file was not read (`max_filesize`).
    pub file_type: Option<FileType>,
    /// Matched signature names, in report order; empty when clean. Includes
    /// `Heuristics.Limits.Exceeded.*` with `alert_exceeds_max`.
    pub signatures: Vec<String>,
    /// For each of `signatures`, where it matched: the archive members from the
    /// outside in (`["inner.tar.gz", "dir/evil.exe"]`), empty for the file itself.
    pub chains: Vec<Vec<String>>,
    /// A limit that cut the scan short or skipped the file.
    pub limit: Option<LimitExceeded>,
}

/// Why a path could not be scanned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// A command-line argument that does not exist or cannot be stat'ed
    /// (clamscan: `Can't access file`). Makes the exit code 2 but, as in
    /// clamscan, is not counted in `Total errors`.
    #[error("can't access file: {0}")]
    Inaccessible(#[source] io::Error),
    /// A command-line argument that is a FIFO, socket or device (clamscan:
    /// `Not supported file type`). Exit code 2, not counted.
    #[error("not supported file type")]
    Unsupported,
    /// A file met in a directory that vanished before it could be examined.
    #[error("can't stat file: {0}")]
    Stat(#[source] io::Error),
    /// Permission denied on open (clamscan: `Access denied`).
    #[error("access denied")]
    AccessDenied,
    /// The file could not be opened (clamscan: `Can't open file`).
    #[error("can't open file: {0}")]
    Open(#[source] io::Error),
    /// A directory that could not be opened (clamscan: `Can't open directory.`).
    #[error("can't open directory: {0}")]
    OpenDir(#[source] io::Error),
    /// Reading a directory's entries failed part way.
    #[error("can't read directory: {0}")]
    ReadDir(#[source] io::Error),
    /// A followed symbolic link leads back into a directory being walked.
    #[error("symbolic link loop: not entered")]
    SymlinkLoop,
    /// The engine could not finish: read error, file changed during the scan.
    #[error("{0}")]
    Scan(#[source] ScanError),
}

impl EntryError {
    /// Whether clamscan counts it in `Total errors` (all but the two
    /// command-line argument errors, which only set the exit code).
    pub fn counted(&self) -> bool {
        !matches!(self, EntryError::Inaccessible(_) | EntryError::Unsupported)
    }

    /// The underlying OS error, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            EntryError::Inaccessible(e)
            | EntryError::Stat(e)
            | EntryError::Open(e)
            | EntryError::OpenDir(e)
            | EntryError::ReadDir(e) => Some(e),
            EntryError::Scan(ScanError::Io(e)) => Some(e),
            _ => None,
        }
    }
}

/// The verdict for one entry, as in aether's JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Scanned, nothing found.
    Clean,
    /// Scanned, at least one signature matched.
    Infected,
    /// Could not be scanned.
    Error,
    /// Deliberately not scanned: empty, excluded, a link not followed, a
    /// special file.
    Skipped,
}

impl Verdict {
    /// `clean`, `infected`, `error` or `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Infected => "infected",
            Verdict::Error => "error",
            Verdict::Skipped => "skipped",
        }
    }
}

impl Outcome {
    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        match self {
            Outcome::Scanned(s) if s.signatures.is_empty() => Verdict::Clean,
            Outcome::Scanned(_) => Verdict::Infected,
            Outcome::Error(_) => Verdict::Error,
            Outcome::Empty
            | Outcome::Excluded
            | Outcome::ExcludedProc
            | Outcome::SymbolicLink
            | Outcome::Special => Verdict::Skipped,
        }
    }
}

impl Entry {
    pub(crate) fn new(target: Target, outcome: Outcome) -> Entry {
        Entry { target, outcome }
    }

    pub(crate) fn at(path: &Path, outcome: Outcome) -> Entry {
        Entry {
            target: Target::Path(path.to_path_buf()),
            outcome,
        }
    }

    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        self.outcome.verdict()
    }
}
