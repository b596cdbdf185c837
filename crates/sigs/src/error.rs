//! Load errors: what went wrong, in which file, on which line.

use std::path::PathBuf;

/// A database that could not be loaded. Displays as `path:line: what`, like clamscan.
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
}
