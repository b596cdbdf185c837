//! Scanning one input with a compiled [`Engine`](crate::Engine).

use std::fs::File;
use std::io::Read;

use crate::filetype::FileType;
use crate::limits::{LimitExceeded, Limits};
use crate::Engine;

/// One signature that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The signature's name, as clamscan prints it (`Eicar-Signature`).
    pub name: String,
}

/// What scanning one input found.
#[derive(Debug, Clone, Default)]
pub struct ScanOutcome {
    /// Matches in report order; at most one unless `Limits::all_match`.
    pub detections: Vec<Detection>,
    /// Bytes read and matched.
    pub bytes_scanned: u64,
    /// The recognized file type.
    pub file_type: FileType,
    /// A limit that cut the scan short, if any.
    pub limit: Option<LimitExceeded>,
}

/// Why an input could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
    #[error("file changed during scan (size was {expected}, now {actual})")]
    Changed { expected: u64, actual: u64 },
}

/// Scans inputs one at a time; owns per-thread scratch space.
pub struct Scanner<'e> {
    engine: &'e Engine,
}

impl<'e> Scanner<'e> {
    pub(crate) fn new(engine: &'e Engine) -> Scanner<'e> {
        Scanner { engine }
    }

    /// Scans an open regular file of known size.
    pub fn scan_file(&mut self, file: &File, limits: &Limits) -> Result<ScanOutcome, ScanError> {
        let _ = (file, limits, self.engine);
        Ok(ScanOutcome::default())
    }

    /// Scans a byte slice.
    pub fn scan_bytes(&mut self, data: &[u8], limits: &Limits) -> Result<ScanOutcome, ScanError> {
        let _ = (data, limits);
        Ok(ScanOutcome::default())
    }

    /// Scans a stream of unknown length (standard input), up to `max_scansize`.
    pub fn scan_reader(&mut self, reader: &mut dyn Read, limits: &Limits) -> Result<ScanOutcome, ScanError> {
        let _ = (reader, limits);
        Ok(ScanOutcome::default())
    }
}
