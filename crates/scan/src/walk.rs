//! Walking targets with clamscan's rules: what is a file to scan, what is
//! reported without being opened, which directories are entered.
//!
//! The walker never opens a file; it only `lstat`s, `stat`s and reads
//! directories, and hands regular files to the scanning threads as [`Job`]s.
//! That keeps FIFOs and devices from ever being opened, and lets one thread
//! feed many scanners.

use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use aether_engine::LimitExceeded;

use crate::entry::{Entry, EntryError, Outcome, Scanned, Target};
use crate::options::{FollowSymlinks, PathFilter, ScanOptions};

/// What the walker found.
pub(crate) enum Item {
    /// A directory was opened (counted as clamscan's "Scanned directories").
    Directory,
    /// A regular file to open and scan.
    Job(Job),
    /// Something reported without scanning.
    Entry(Entry),
}

/// A regular file, or standard input, for a scanning thread.
pub(crate) enum Job {
    File { path: PathBuf, size: u64 },
    Stdin,
}

/// What [`walk`] found, in walk order.
#[derive(Debug)]
pub enum Walked {
    /// A directory was opened (clamscan's "Scanned directories").
    Directory,
    /// A regular file to open and scan, and its size when it was examined.
    File {
        /// The path as walked.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// Standard input, to scan.
    Stdin,
    /// A path reported without being scanned: excluded, empty, a link not
    /// followed, a file over `max_filesize`, an error.
    Entry(Entry),
}

/// Walks `targets` with [`scan`](crate::scan)'s rules without opening any
/// file, for callers that scan elsewhere (`aether scan --daemon` passes each
/// file to aetherd). Counting the entries as [`Stats::record`](crate::Stats::record)
/// does, plus one directory per [`Walked::Directory`], gives `scan`'s counts.
/// Stops early when `stop` is set.
pub fn walk(
    targets: &[Target],
    opts: &ScanOptions,
    stop: &AtomicBool,
    emit: &mut dyn FnMut(Walked),
) {
    Walker::new(opts, stop).walk(targets, &mut |item| {
        emit(match item {
            Item::Directory => Walked::Directory,
            Item::Job(Job::File { path, size }) => Walked::File { path, size },
            Item::Job(Job::Stdin) => Walked::Stdin,
            Item::Entry(e) => Walked::Entry(e),
        })
    })
}

pub(crate) struct Walker<'a> {
    opts: &'a ScanOptions,
    stop: &'a AtomicBool,
    /// The device of `/proc`, whose files clamscan never scans.
    procdev: Option<u64>,
}

impl<'a> Walker<'a> {
    pub(crate) fn new(opts: &'a ScanOptions, stop: &'a AtomicBool) -> Walker<'a> {
        // As clamscan: only a real procfs (which reports size 0 for /proc).
        let procdev = fs::metadata("/proc")
            .ok()
            .filter(|m| m.size() == 0)
            .map(|m| m.dev());
        Walker {
            opts,
            stop,
            procdev,
        }
    }

    pub(crate) fn walk(&self, targets: &[Target], emit: &mut dyn FnMut(Item)) {
        for target in targets {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            match target {
                Target::Stdin => emit(Item::Job(Job::Stdin)),
                Target::Path(path) => self.argument(path, emit),
            }
        }
    }

    /// A command-line argument (clamscan's `scan_files`).
    fn argument(&self, arg: &Path, emit: &mut dyn FnMut(Item)) {
        let path = strip_trailing_slashes(arg);
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                return emit(Item::Entry(Entry::at(
                    &path,
                    Outcome::Error(EntryError::Inaccessible(e)),
                )));
            }
        };
        let ft = meta.file_type();
        if ft.is_symlink() {
            let (dirs, files) = (
                self.opts.follow_dir_symlinks,
                self.opts.follow_file_symlinks,
            );
            if dirs == FollowSymlinks::Never && files == FollowSymlinks::Never {
                return emit(Item::Entry(Entry::at(&path, Outcome::SymbolicLink)));
            }
            match fs::metadata(&path) {
                // clamscan is silent here; a dangling link or a loop given by
                // name deserves an error naming it.
                Err(e) => emit(Item::Entry(Entry::at(
                    &path,
                    Outcome::Error(EntryError::Inaccessible(e)),
                ))),
                Ok(target) if target.is_file() && files != FollowSymlinks::Never => {
                    emit(self.file(&path, &target, None))
                }
                Ok(target) if target.is_dir() && dirs != FollowSymlinks::Never => {
                    let mut ancestors = Vec::new();
                    self.directory(&path, &target, 1, target.dev(), &mut ancestors, emit)
                }
                Ok(_) => emit(Item::Entry(Entry::at(&path, Outcome::SymbolicLink))),
            }
        } else if ft.is_file() {
            emit(self.file(&path, &meta, None))
        } else if ft.is_dir() {
            let mut ancestors = Vec::new();
            self.directory(&path, &meta, 1, meta.dev(), &mut ancestors, emit)
        } else {
            emit(Item::Entry(Entry::at(
                &path,
                Outcome::Error(EntryError::Unsupported),
            )))
        }
    }

    fn file_filters(&self) -> bool {
        !self.opts.exclude.is_empty() || !self.opts.include.is_empty()
    }

    /// A regular file: the checks clamscan's `scanfile` makes before opening.
    /// `real` is its canonical path when the caller knows it cheaply.
    fn file(&self, path: &Path, meta: &Metadata, real: Option<PathBuf>) -> Item {
        if self.file_filters() {
            // clamscan 1.4.6 matches file filters against the real path.
            let real = real
                .unwrap_or_else(|| fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()));
            let bytes = real.as_os_str().as_bytes();
            if any_match(&self.opts.exclude, bytes)
                || (!self.opts.include.is_empty() && !any_match(&self.opts.include, bytes))
            {
                return Item::Entry(Entry::at(path, Outcome::Excluded));
            }
        }
        if self.procdev == Some(meta.dev()) {
            return Item::Entry(Entry::at(path, Outcome::ExcludedProc));
        }
        let size = meta.len();
        if size == 0 {
            return Item::Entry(Entry::at(path, Outcome::Empty));
        }
        let max = self.opts.limits.max_filesize;
        if max != 0 && size > max {
            // libclamav skips such a file as clean without reading it.
            let limit = LimitExceeded::MaxFileSize;
            let signatures = if self.opts.alert_exceeds_max {
                vec![limit.signature_name().to_string()]
            } else {
                Vec::new()
            };
            let scanned = Scanned {
                size,
                bytes_scanned: 0,
                file_type: None,
                chains: vec![Vec::new(); signatures.len()],
                signatures,
                limit: Some(limit),
            };
            return Item::Entry(Entry::at(path, Outcome::Scanned(scanned)));
        }
        Item::Job(Job::File {
            path: path.to_path_buf(),
            size,
        })
    }

    /// A directory (clamscan's `scandirs`). `depth` is 1 for a command-line
    /// argument; `ancestors` holds the (device, inode) of the directories
    /// being walked, so that a loop is noticed instead of followed.
    fn directory(
        &self,
        dir: &Path,
        meta: &Metadata,
        depth: u32,
        top_dev: u64,
        ancestors: &mut Vec<(u64, u64)>,
        emit: &mut dyn FnMut(Item),
    ) {
        let dir_bytes = dir.as_os_str().as_bytes();
        if any_match(&self.opts.exclude_dir, dir_bytes)
            || (!self.opts.include_dir.is_empty() && !any_match(&self.opts.include_dir, dir_bytes))
        {
            return emit(Item::Entry(Entry::at(dir, Outcome::Excluded)));
        }
        if depth > self.opts.max_dir_recursion {
            return;
        }
        let id = (meta.dev(), meta.ino());
        if ancestors.contains(&id) {
            return emit(Item::Entry(Entry::at(
                dir,
                Outcome::Error(EntryError::SymlinkLoop),
            )));
        }
        let entries = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) => {
                return emit(Item::Entry(Entry::at(
                    dir,
                    Outcome::Error(EntryError::OpenDir(e)),
                )));
            }
        };
        emit(Item::Directory);
        ancestors.push(id);
        // One realpath per directory instead of one per file: a regular file's
        // real path is its directory's plus its name.
        let real_dir = self
            .file_filters()
            .then(|| fs::canonicalize(dir).ok())
            .flatten();
        for entry in entries {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    emit(Item::Entry(Entry::at(
                        dir,
                        Outcome::Error(EntryError::ReadDir(e)),
                    )));
                    break;
                }
            };
            let name = entry.file_name();
            let path = dir.join(&name);
            let real = real_dir.as_ref().map(|d| d.join(&name));
            self.dir_entry(&path, real, depth, top_dev, ancestors, emit);
        }
        ancestors.pop();
    }

    fn dir_entry(
        &self,
        path: &Path,
        real: Option<PathBuf>,
        depth: u32,
        top_dev: u64,
        ancestors: &mut Vec<(u64, u64)>,
        emit: &mut dyn FnMut(Item),
    ) {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            // Gone between readdir and lstat: clamscan says nothing, we name it.
            Err(e) => {
                return emit(Item::Entry(Entry::at(
                    path,
                    Outcome::Error(EntryError::Stat(e)),
                )));
            }
        };
        if !self.opts.cross_fs && meta.dev() != top_dev {
            return emit(Item::Entry(Entry::at(path, Outcome::Excluded)));
        }
        let ft = meta.file_type();
        if ft.is_symlink() {
            let dirs = self.opts.follow_dir_symlinks == FollowSymlinks::Always;
            let files = self.opts.follow_file_symlinks == FollowSymlinks::Always;
            if !dirs && !files {
                return emit(Item::Entry(Entry::at(path, Outcome::SymbolicLink)));
            }
            match fs::metadata(path) {
                Ok(target) if target.is_file() && files => emit(self.file(path, &target, None)),
                Ok(target) if target.is_dir() && dirs => {
                    if self.opts.recursive {
                        self.directory(path, &target, depth + 1, top_dev, ancestors, emit)
                    }
                }
                _ => emit(Item::Entry(Entry::at(path, Outcome::SymbolicLink))),
            }
        } else if ft.is_file() {
            emit(self.file(path, &meta, real))
        } else if ft.is_dir() {
            if self.opts.recursive {
                self.directory(path, &meta, depth + 1, top_dev, ancestors, emit)
            }
        } else {
            emit(Item::Entry(Entry::at(path, Outcome::Special)))
        }
    }
}

fn any_match(filters: &[PathFilter], path: &[u8]) -> bool {
    filters.iter().any(|f| f.matches(path))
}

/// clamscan strips trailing slashes from arguments, keeping a lone `/`.
fn strip_trailing_slashes(path: &Path) -> PathBuf {
    let bytes = path.as_os_str().as_bytes();
    let mut end = bytes.len();
    while end > 1 && bytes[end - 1] == b'/' {
        end -= 1;
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&bytes[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walking_then_scanning_each_file_is_scan() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("a.txt"), b"hello").unwrap();
        fs::write(d.join("empty"), b"").unwrap();
        fs::create_dir(d.join("sub")).unwrap();
        fs::write(d.join("sub/b.txt"), b"more").unwrap();
        fs::write(d.join("big"), vec![0u8; 64]).unwrap();
        std::os::unix::fs::symlink(d.join("a.txt"), d.join("link")).unwrap();
        let sources = aether_engine::DbSources {
            builtin: true,
            paths: Vec::new(),
        };
        let (engine, _) = aether_engine::load(&sources, Default::default()).unwrap();
        let mut opts = ScanOptions {
            recursive: true,
            threads: 1,
            ..ScanOptions::default()
        };
        opts.limits.max_filesize = 32;
        let targets = [Target::Path(d.to_path_buf())];
        let mut scanned: Vec<Entry> = Vec::new();
        let stats = crate::scan(&engine, &targets, &opts, &mut scanned).unwrap();

        let stop = AtomicBool::new(false);
        let mut scanner = crate::FileScanner::new(&engine, &opts);
        let mut walked = crate::Stats::default();
        let mut entries = Vec::new();
        walk(&targets, &opts, &stop, &mut |w| {
            let entry = match w {
                Walked::Directory => return walked.directories += 1,
                Walked::File { path, .. } => Entry::at(&path, scanner.scan_path(&path)),
                Walked::Stdin => unreachable!("no stdin target"),
                Walked::Entry(e) => e,
            };
            walked.record(&entry);
            entries.push((entry.target.clone(), entry.verdict()));
        });
        assert_eq!(walked, stats);
        let want: Vec<_> = scanned
            .iter()
            .map(|e| (e.target.clone(), e.verdict()))
            .collect();
        assert_eq!(entries, want);
        assert_eq!((stats.files, stats.skipped, stats.directories), (3, 2, 2));
    }

    #[test]
    fn trailing_slashes() {
        assert_eq!(
            strip_trailing_slashes(Path::new("d///")),
            PathBuf::from("d")
        );
        assert_eq!(strip_trailing_slashes(Path::new("/")), PathBuf::from("/"));
        assert_eq!(strip_trailing_slashes(Path::new("//")), PathBuf::from("/"));
        assert_eq!(
            strip_trailing_slashes(Path::new("a/b")),
            PathBuf::from("a/b")
        );
    }
}
