//! What to scan and how: clamscan's walking options and limits.

use aether_engine::Limits;
use regex::bytes::Regex;

/// When to follow a symbolic link (clamscan's `--follow-dir-symlinks` and
/// `--follow-file-symlinks`, values 0, 1 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowSymlinks {
    /// Never (0).
    Never,
    /// Only links given on the command line (1, clamscan's default).
    Direct,
    /// Everywhere, including inside directories (2).
    Always,
}

impl FollowSymlinks {
    /// From clamscan's numeric value.
    pub fn from_level(level: u8) -> Option<FollowSymlinks> {
        match level {
            0 => Some(FollowSymlinks::Never),
            1 => Some(FollowSymlinks::Direct),
            2 => Some(FollowSymlinks::Always),
            _ => None,
        }
    }
}

/// One `--exclude`/`--include` regular expression.
///
/// Matched against the path's bytes, so that non-UTF-8 names can be excluded.
/// As in clamscan, a pattern ending in `/` is matched against the path with a
/// `/` appended, so `--exclude-dir=/tmp/` excludes `/tmp` but not `/tmpfoo`.
#[derive(Debug, Clone)]
pub struct PathFilter {
    regex: Regex,
    dir_suffix: bool,
}

impl PathFilter {
    /// Compiles a pattern (Rust `regex` syntax, which covers the POSIX
    /// extended expressions people pass to clamscan).
    pub fn new(pattern: &str) -> Result<PathFilter, regex::Error> {
        Ok(PathFilter {
            regex: Regex::new(pattern)?,
            dir_suffix: pattern.ends_with('/'),
        })
    }

    /// Whether the path matches.
    pub fn matches(&self, path: &[u8]) -> bool {
        if self.dir_suffix {
            let mut with_slash = Vec::with_capacity(path.len() + 1);
            with_slash.extend_from_slice(path);
            with_slash.push(b'/');
            self.regex.is_match(&with_slash)
        } else {
            self.regex.is_match(path)
        }
    }
}

/// Options for [`scan`](crate::scan).
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Enter subdirectories (`-r`).
    pub recursive: bool,
    /// `--follow-dir-symlinks`.
    pub follow_dir_symlinks: FollowSymlinks,
    /// `--follow-file-symlinks`.
    pub follow_file_symlinks: FollowSymlinks,
    /// Walk into other file systems (`--cross-fs`, on by default).
    pub cross_fs: bool,
    /// Directory depth, the top directory being 1 (`--max-dir-recursion`, 15).
    pub max_dir_recursion: u32,
    /// Files whose canonical path matches any of these are `Excluded`.
    pub exclude: Vec<PathFilter>,
    /// Directories whose path matches any of these are `Excluded`.
    pub exclude_dir: Vec<PathFilter>,
    /// When not empty, only files matching one of these are scanned.
    pub include: Vec<PathFilter>,
    /// When not empty, only directories matching one of these are walked.
    pub include_dir: Vec<PathFilter>,
    /// Per-file limits, passed to the engine; `max_filesize` is applied here.
    pub limits: Limits,
    /// Report a hit limit as `Heuristics.Limits.Exceeded.*` (`--alert-exceeds-max`).
    pub alert_exceeds_max: bool,
    /// Report encrypted archive members as `Heuristics.Encrypted.*`
    /// (`--alert-encrypted`, `--alert-encrypted-archive`).
    pub alert_encrypted: bool,
    /// Report documents that cannot be decrypted (PDF) as
    /// `Heuristics.Encrypted.PDF` (`--alert-encrypted`,
    /// `--alert-encrypted-doc`).
    pub alert_encrypted_doc: bool,
    /// Push results in walk order (clamscan's order) even with several
    /// threads: a file that finishes early waits for those before it. Off,
    /// results come as files finish (less latency per file, e.g. for a
    /// daemon). On by default.
    pub ordered: bool,
    /// Scanning threads; 0 or 1 scans on the calling thread. At most
    /// [`MAX_THREADS`](crate::MAX_THREADS) are used.
    pub threads: usize,
}

impl Default for ScanOptions {
    fn default() -> ScanOptions {
        ScanOptions {
            recursive: false,
            follow_dir_symlinks: FollowSymlinks::Direct,
            follow_file_symlinks: FollowSymlinks::Direct,
            cross_fs: true,
            max_dir_recursion: 15,
            exclude: Vec::new(),
            exclude_dir: Vec::new(),
            include: Vec::new(),
            include_dir: Vec::new(),
            limits: Limits::default(),
            alert_exceeds_max: false,
            alert_encrypted: false,
            alert_encrypted_doc: false,
            ordered: true,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }
}

/// A size that clamscan would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size {0:?}: expected a number with an optional K, M or G suffix")]
pub struct SizeError(pub String);

/// Parses clamscan's size syntax: a number (decimal, or `0x` hexadecimal)
/// with an optional `K`, `M` or `G` suffix in either case, in units of 1024.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let err = || SizeError(text.to_string());
    let t = text.trim();
    let (digits, multiplier) = match t.as_bytes().last() {
        Some(b'k' | b'K') => (&t[..t.len() - 1], 1u64 << 10),
        Some(b'm' | b'M') => (&t[..t.len() - 1], 1u64 << 20),
        Some(b'g' | b'G') => (&t[..t.len() - 1], 1u64 << 30),
        Some(_) => (t, 1),
        None => return Err(err()),
    };
    let value = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        u64::from_str_radix(hex, 16).map_err(|_| err())?
    } else {
        digits.parse::<u64>().map_err(|_| err())?
    };
    value.checked_mul(multiplier).ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_clamscan() {
        assert_eq!(parse_size("100M"), Ok(100 << 20));
        assert_eq!(parse_size("400m"), Ok(400 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("12345"), Ok(12345));
        assert_eq!(parse_size("0x10"), Ok(16));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("1x").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999G").is_err());
    }

    #[test]
    fn trailing_slash_pattern_matches_whole_component() {
        let f = PathFilter::new("/tmp/").unwrap();
        assert!(f.matches(b"/tmp"));
        assert!(!f.matches(b"/tmpfoo"));
        let g = PathFilter::new(r"\.txt$").unwrap();
        assert!(g.matches(b"a/b.txt"));
        assert!(g.matches(b"a/\xffb.txt"));
        assert!(!g.matches(b"a/b.txt.gz"));
    }
}
