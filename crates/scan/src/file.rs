//! Opening and scanning one file, safely.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use aether_engine::{Alerts, Engine, ScanError, ScanOutcome, Scanner};

use crate::entry::{EntryError, Outcome, Scanned};
use crate::options::ScanOptions;

/// Opens a file to scan as [`FileScanner::scan_path`] does: read-only, with
/// `O_NONBLOCK` (a path swapped for a FIFO cannot block) and `O_NOCTTY`;
/// permission errors are [`EntryError::AccessDenied`]. For callers that scan
/// the descriptor elsewhere (`aether scan --daemon`).
pub fn open_file(path: &Path) -> Result<File, EntryError> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => Ok(f),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
            Err(EntryError::AccessDenied)
        }
        Err(e) => Err(EntryError::Open(e)),
    }
}

/// One thread's scanner with the options that turn engine results into
/// outcomes. Create one per thread from a shared [`Engine`].
pub struct FileScanner<'e> {
    scanner: Scanner<'e>,
    opts: &'e ScanOptions,
}

impl<'e> FileScanner<'e> {
    /// A scanner for the calling thread.
    pub fn new(engine: &'e Engine, opts: &'e ScanOptions) -> FileScanner<'e> {
        let mut scanner = engine.scanner();
        scanner.set_alerts(Alerts {
            encrypted: opts.alert_encrypted,
            encrypted_doc: opts.alert_encrypted_doc,
        });
        FileScanner { scanner, opts }
    }

    /// Opens and scans a path known to be a regular file.
    ///
    /// The file is opened with `O_NONBLOCK`, so that a path replaced by a
    /// FIFO since it was examined cannot block, and checked again with
    /// `fstat` on the open descriptor: what is scanned is what was opened.
    pub fn scan_path(&mut self, path: &Path) -> Outcome {
        match open_file(path) {
            Ok(file) => self.scan_open_file(&file),
            Err(e) => Outcome::Error(e),
        }
    }

    /// Scans an open file (for callers that already hold a descriptor, such
    /// as fanotify). Anything but a non-empty regular file is not read.
    pub fn scan_open_file(&mut self, file: &File) -> Outcome {
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(e) => return Outcome::Error(EntryError::Stat(e)),
        };
        if !meta.is_file() {
            return Outcome::Special;
        }
        let size = meta.len();
        if size == 0 {
            return Outcome::Empty;
        }
        let result = self.scanner.scan_file(file, &self.opts.limits);
        self.outcome(result, size)
    }

    /// Scans a stream (standard input) up to `max_scansize`.
    pub fn scan_reader(&mut self, reader: &mut dyn Read) -> Outcome {
        let mut counting = CountingReader {
            inner: reader,
            count: 0,
        };
        let result = self.scanner.scan_reader(&mut counting, &self.opts.limits);
        let read = counting.count;
        self.outcome(result, read)
    }

    fn outcome(&self, result: Result<ScanOutcome, ScanError>, size: u64) -> Outcome {
        match result {
            Ok(outcome) => {
                let (mut signatures, mut chains): (Vec<String>, Vec<Vec<String>>) = outcome
                    .detections
                    .into_iter()
                    .map(|d| (d.name, d.chain))
                    .unzip();
                if let Some(limit) = outcome.limit
                    && self.opts.alert_exceeds_max
                    && (signatures.is_empty() || self.opts.limits.all_match)
                {
                    signatures.push(limit.signature_name().to_string());
                    chains.push(Vec::new());
                }
                Outcome::Scanned(Scanned {
                    size,
                    bytes_scanned: outcome.bytes_scanned,
                    file_type: Some(outcome.file_type),
                    signatures,
                    chains,
                    limit: outcome.limit,
                })
            }
            Err(e) => Outcome::Error(EntryError::Scan(e)),
        }
    }
}

struct CountingReader<'r> {
    inner: &'r mut dyn Read,
    count: u64,
}

impl Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}
