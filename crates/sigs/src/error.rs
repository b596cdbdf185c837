//! Load errors: what went wrong, in which file, on which line.

use std::path::PathBuf;

use crate::cvd::CvdError;
use crate::line::LineError;

/// A database that could not be loaded. Displays as `path:line: what`, like
/// `/tmp/x.ndb:3: malformed hex signature: odd number of hex digits at column 7`.
/// Inside a container the path names the entry: `main.cvd/main.ndb:3: ...`.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {kind}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct LoadError {
    pub path: PathBuf,
    /// 1-based line number, when the error is on a line.
    pub line: Option<usize>,
    pub kind: LoadErrorKind,
}

/// What was wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadErrorKind {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// A line that does not parse.
    #[error("{0}")]
    Line(#[from] LineError),
    #[error("line is not valid UTF-8")]
    NotUtf8,
    #[error("line is longer than {0} bytes")]
    LineTooLong(usize),
    #[error("file is larger than {0} bytes")]
    TooLarge(u64),
    #[error("empty database file")]
    Empty,
    #[error(
        "unknown database extension (expected one of .hdb .hsb .ndb .fp .sfp .ign .ign2 .cvd .cld \
         or another ClamAV database type)"
    )]
    UnknownExtension,
    #[error("no supported database files found in this directory")]
    NoDatabases,
    /// A `.cvd`/`.cld` container that is malformed or does not verify.
    #[error("{0}")]
    Cvd(#[from] CvdError),
    /// A file in a container that its `.info` does not vouch for.
    #[error("{0}")]
    Container(String),
}

impl LoadError {
    pub fn new(
        path: impl Into<PathBuf>,
        line: Option<usize>,
        kind: impl Into<LoadErrorKind>,
    ) -> LoadError {
        LoadError {
            path: path.into(),
            line,
            kind: kind.into(),
        }
    }
}
