//! Counters for clamscan's `SCAN SUMMARY`.

use crate::entry::{Entry, Outcome};

/// libclamav counts data in blocks of this many bytes, rounding each file
/// down; clamscan's "Data scanned"/"Data read" are those blocks in MB.
pub const COUNT_PRECISION: u64 = 4096;

/// What a scan did, counted as clamscan counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Directories opened (`Scanned directories`).
    pub directories: u64,
    /// Files scanned, clean or infected (`Scanned files`).
    pub files: u64,
    /// Files with at least one detection (`Infected files`).
    pub infected: u64,
    /// Errors counted in `Total errors`.
    pub errors: u64,
    /// Command-line arguments that could not be scanned at all (missing, or a
    /// FIFO): not in `Total errors`, but the exit code is 2.
    pub failed_arguments: u64,
    /// Entries deliberately not scanned (empty, excluded, links, special files).
    pub skipped: u64,
    /// Exact bytes the engine scanned.
    pub bytes_scanned: u64,
    /// Exact bytes of the files scanned (their sizes).
    pub bytes_read: u64,
    /// `bytes_scanned` in clamscan's rounding (per file, whole 4 KiB blocks).
    pub blocks_scanned: u64,
    /// `bytes_read` in clamscan's rounding.
    pub blocks_read: u64,
}

impl Stats {
    /// Counts one entry.
    pub fn record(&mut self, entry: &Entry) {
        match &entry.outcome {
            Outcome::Scanned(s) => {
                self.files += 1;
                if !s.signatures.is_empty() {
                    self.infected += 1;
                }
                self.bytes_read += s.size;
                self.blocks_read += s.size / COUNT_PRECISION;
                self.bytes_scanned += s.bytes_scanned;
                self.blocks_scanned += s.bytes_scanned / COUNT_PRECISION;
            }
            Outcome::Error(e) => {
                if e.counted() {
                    self.errors += 1;
                } else {
                    self.failed_arguments += 1;
                }
            }
            Outcome::Empty
            | Outcome::Excluded
            | Outcome::ExcludedProc
            | Outcome::SymbolicLink
            | Outcome::Special => self.skipped += 1,
        }
    }

    /// clamscan's exit code: 1 if anything was found (it wins over errors),
    /// else 2 if anything failed, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.infected > 0 {
            1
        } else if self.errors > 0 || self.failed_arguments > 0 {
            2
        } else {
            0
        }
    }

    /// "Data scanned" in MB as clamscan computes it.
    pub fn mb_scanned(&self) -> f64 {
        (self.blocks_scanned * COUNT_PRECISION) as f64 / (1024.0 * 1024.0)
    }

    /// "Data read" in MB as clamscan computes it.
    pub fn mb_read(&self) -> f64 {
        (self.blocks_read * COUNT_PRECISION) as f64 / (1024.0 * 1024.0)
    }

    /// The ratio printed after "Data read".
    pub fn ratio(&self) -> f64 {
        if self.blocks_read == 0 {
            0.0
        } else {
            self.blocks_scanned as f64 / self.blocks_read as f64
        }
    }
}
