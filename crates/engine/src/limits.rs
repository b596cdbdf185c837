//! Scan limits, with ClamAV's defaults and names.

use std::time::Duration;

/// Limits applied to one top-level file, as clamscan's `--max-*` options.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Report every matching signature, not only the first (`--allmatch`).
    pub all_match: bool,
    /// Files larger than this are not scanned (`MaxFileSize`, 100 MB).
    pub max_filesize: u64,
    /// At most this many bytes are scanned per file (`MaxScanSize`, 400 MB).
    pub max_scansize: u64,
    /// At most this many files inside one file (`MaxFiles`, 10000).
    pub max_files: u64,
    /// Container nesting depth (`MaxRecursion`, 17).
    pub max_recursion: u32,
    /// Time allowed per file (`MaxScanTime`, 120 s); `None` = no limit.
    pub max_scantime: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            all_match: false,
            max_filesize: 100 * 1024 * 1024,
            max_scansize: 400 * 1024 * 1024,
            max_files: 10_000,
            max_recursion: 17,
            max_scantime: Some(Duration::from_secs(120)),
        }
    }
}

/// Which limit stopped a scan; reported as `Heuristics.Limits.Exceeded.*`
/// with `--alert-exceeds-max`, as ClamAV does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitExceeded {
    MaxFileSize,
    MaxScanSize,
    MaxFiles,
    MaxRecursion,
    MaxScanTime,
}

impl LimitExceeded {
    /// The detection name clamscan reports for it.
    pub fn signature_name(self) -> &'static str {
        match self {
            LimitExceeded::MaxFileSize => "Heuristics.Limits.Exceeded.MaxFileSize",
            LimitExceeded::MaxScanSize => "Heuristics.Limits.Exceeded.MaxScanSize",
            LimitExceeded::MaxFiles => "Heuristics.Limits.Exceeded.MaxFiles",
            LimitExceeded::MaxRecursion => "Heuristics.Limits.Exceeded.MaxRecursion",
            LimitExceeded::MaxScanTime => "Heuristics.Limits.Exceeded.MaxScanTime",
        }
    }
}
