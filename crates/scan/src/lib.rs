/*!
Turns scan targets (paths, or standard input) into per-file verdicts, the way
clamscan does, on many threads.

This crate is the part that `aether scan`, the daemon and real-time protection
share: it decides *what* to scan and *how to open it*, and leaves matching to
[`aether_engine`] and printing to the caller's [`Sink`] (usually a printer from
`aether-report`). Keeping it a library, as ripgrep keeps its walker and
searcher apart from its binary, means every front end walks, classifies and
counts the same way.

Brief overview:
- [`ScanOptions`]: clamscan's walking options (`-r`, `--exclude`, symlink
  policy, limits) plus the number of threads.
- [`Target`]: a path or standard input (`-`).
- [`scan`]: walks the targets and scans every regular file on
  [`ScanOptions::threads`] threads, each with its own [`Scanner`], pushing one
  [`Entry`] per path into a [`Sink`] and returning the [`Stats`] that feed
  clamscan's `SCAN SUMMARY`.
- [`FileScanner`]: one thread's scanner for single files, for callers that
  already know which file to scan (the daemon, fanotify).
- [`walk`] and [`open_file`]: the walk and the open alone, for callers that
  scan elsewhere (`aether scan --daemon` passes each open file to aetherd).

```
use aether_engine::DbSources;
use aether_scan::{Entry, ScanOptions, Target, Verdict, scan};

// The built-in database: EICAR and aether's test signatures.
let sources = DbSources { builtin: true, paths: Vec::new() };
let (engine, _load_report) = aether_engine::load(&sources, Default::default())?;

let mut entries: Vec<Entry> = Vec::new(); // any `Sink`; a printer in practice
let targets = [Target::from_arg("Cargo.toml")];
let stats = scan(&engine, &targets, &ScanOptions::default(), &mut entries)?;

assert_eq!(entries[0].verdict(), Verdict::Clean);
assert_eq!((stats.files, stats.infected, stats.exit_code()), (1, 0, 0));
# Ok::<(), Box<dyn std::error::Error>>(())
```

# Semantics, as clamscan 1.4.6

- A directory given on the command line is scanned; without `-r` its
  subdirectories are not entered (silently).
- Symbolic links are followed only when given on the command line (clamscan's
  `--follow-*-symlinks=1` default); met inside a directory they are reported as
  `Symbolic link`. With `=2` they are followed everywhere; a link that leads
  back to a directory being walked is reported as a loop and not entered.
- FIFOs, sockets and devices are never opened: they are recognized from
  `lstat` first, and files are opened with `O_NONBLOCK` so that a file
  swapped for a FIFO after the check cannot block either. Given on the command
  line they are an error ("Not supported file type"); met in a directory they
  are skipped (clamscan prints nothing; JSON output says `skipped`).
- `--exclude`/`--include` match the file's canonical path, `--exclude-dir`/
  `--include-dir` the directory path as walked, as clamscan 1.4.6 does.
- Files larger than `max_filesize` are not opened; they count as scanned and
  clean, or as `Heuristics.Limits.Exceeded.MaxFileSize` with
  `alert_exceeds_max`.
- Directory entries come in `readdir` order, as in clamscan, and results are
  pushed in that order on any number of threads (a file that finishes early
  waits for those before it), so the output is clamscan's line for line.
  [`ScanOptions::ordered`] set to false pushes results as files finish.

[`Scanner`]: aether_engine::Scanner
*/
#![deny(missing_docs)]

mod entry;
mod file;
mod heap;
mod options;
mod run;
mod stats;
mod walk;

pub use entry::{Entry, EntryError, Outcome, Scanned, Target, Verdict};
pub use file::{FileScanner, open_file};
pub use heap::{MMAP_THRESHOLD, return_large_buffers};
pub use options::{FollowSymlinks, PathFilter, ScanOptions, SizeError, parse_size};
pub use run::{MAX_THREADS, ScanAborted, Sink, estimate, scan};
pub use stats::Stats;
pub use walk::{Walked, walk};
