//! The journal's errors.

use std::path::PathBuf;

use rusqlite::ErrorCode;

/// An error from the journal. The variants a daemon must tell apart (full disk,
/// read-only file system, damaged file) are their own; everything else is
/// [`JournalError::Sqlite`] with what was being done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The file system is full (or the journal reached a configured page limit). The
    /// batch being committed was dropped; `dropped` records are lost so far.
    #[error("journal {path}: disk full while {what}; {dropped} records dropped so far")]
    Full {
        /// The journal file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// Records lost so far since the last successful commit.
        dropped: u64,
    },
    /// The journal cannot be written: read-only file system or file.
    #[error("journal {path}: read-only while {what}; {dropped} records dropped so far")]
    ReadOnly {
        /// The journal file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// Records lost so far since the last successful commit.
        dropped: u64,
    },
    /// The file is not a journal, or it is damaged.
    #[error("journal {path}: damaged or not a journal: {detail}")]
    Corrupt {
        /// The journal file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A stored record could not be decoded.
    #[error("journal {path}: record {seq}: {detail}")]
    BadRecord {
        /// The journal file.
        path: PathBuf,
        /// The record's sequence number.
        seq: u64,
        /// What is wrong with it.
        detail: String,
    },
    /// Another writer (another aetherd) holds the journal.
    #[error("journal {path}: in use by another writer")]
    InUse {
        /// The journal file.
        path: PathBuf,
    },
    /// A file operation other than SQLite's failed.
    #[error("journal {path}: {what}: {source}")]
    Io {
        /// The journal file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An entry could not be encoded.
    #[error("journal: cannot encode an entry: {0}")]
    Encode(#[source] serde_json::Error),
    /// Any other SQLite error.
    #[error("journal {path}: {what}: {source}")]
    Sqlite {
        /// The journal file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

impl JournalError {
    /// True for the errors after which the journal may work again once the cause is
    /// gone (space freed, file system remounted): [`JournalError::Full`] and
    /// [`JournalError::ReadOnly`].
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            JournalError::Full { .. } | JournalError::ReadOnly { .. }
        )
    }

    pub(crate) fn sqlite(
        path: &std::path::Path,
        what: &'static str,
        dropped: u64,
        source: rusqlite::Error,
    ) -> JournalError {
        let path = path.to_path_buf();
        let code = match &source {
            rusqlite::Error::SqliteFailure(f, _) => Some((f.code, f.extended_code)),
            _ => None,
        };
        match code {
            Some((ErrorCode::DiskFull, _)) => JournalError::Full {
                path,
                what,
                dropped,
            },
            Some((ErrorCode::ReadOnly, _)) => JournalError::ReadOnly {
                path,
                what,
                dropped,
            },
            // SQLite says "cannot open" when it cannot create the -wal or -shm file
            // beside the journal; ask the file system whether it is read-only.
            Some((ErrorCode::CannotOpen, _)) if read_only_fs(&path) => JournalError::ReadOnly {
                path,
                what,
                dropped,
            },
            Some((ErrorCode::DatabaseCorrupt, _)) | Some((ErrorCode::NotADatabase, _)) => {
                JournalError::Corrupt {
                    path,
                    detail: source.to_string(),
                }
            }
            _ => JournalError::Sqlite { path, what, source },
        }
    }
}

/// True when `path` (or, if it does not exist, its directory) is on a read-only file
/// system.
fn read_only_fs(path: &std::path::Path) -> bool {
    let probe = if path.exists() {
        std::fs::OpenOptions::new().append(true).open(path).err()
    } else {
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        tempfile_probe(dir)
    };
    probe.is_some_and(|e| e.kind() == std::io::ErrorKind::ReadOnlyFilesystem)
}

fn tempfile_probe(dir: &std::path::Path) -> Option<std::io::Error> {
    let name = dir.join(format!(".aether-journal-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&name)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&name);
            None
        }
        Err(e) => Some(e),
    }
}
