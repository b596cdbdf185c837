//! Running a scan: one walker feeding N scanning threads, results pushed
//! into a [`Sink`].

use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use aether_engine::Engine;

use crate::entry::{Entry, Target};
use crate::file::FileScanner;
use crate::options::ScanOptions;
use crate::stats::Stats;
use crate::walk::{Item, Job, Walker};

/// Receives every entry as it is produced (the "push" model of ripgrep's
/// searcher): printers, the daemon's reply writer, a test's vector.
///
/// Calls are serialized. With [`ScanOptions::ordered`] (the default) they
/// come in walk order whatever the number of threads, as clamscan prints;
/// otherwise in the order files finish.
pub trait Sink: Send {
    /// One path's outcome. An error (a closed pipe, a full disk) stops the
    /// scan, and [`scan`] returns it.
    fn entry(&mut self, entry: &Entry) -> io::Result<()>;
}

impl Sink for Vec<Entry> {
    fn entry(&mut self, entry: &Entry) -> io::Result<()> {
        self.push(Entry::new(entry.target.clone(), clone_outcome(entry)));
        Ok(())
    }
}

/// Copies an outcome for the `Vec` sink; I/O errors are rebuilt from their
/// kind and message since `io::Error` is not `Clone`.
fn clone_outcome(entry: &Entry) -> crate::entry::Outcome {
    use crate::entry::{EntryError as E, Outcome as O};
    let io = |e: &io::Error| match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    };
    match &entry.outcome {
        O::Scanned(s) => O::Scanned(s.clone()),
        O::Empty => O::Empty,
        O::Excluded => O::Excluded,
        O::ExcludedProc => O::ExcludedProc,
        O::SymbolicLink => O::SymbolicLink,
        O::Special => O::Special,
        O::Error(err) => O::Error(match err {
            E::Inaccessible(e) => E::Inaccessible(io(e)),
            E::Unsupported => E::Unsupported,
            E::Stat(e) => E::Stat(io(e)),
            E::AccessDenied => E::AccessDenied,
            E::Open(e) => E::Open(io(e)),
            E::OpenDir(e) => E::OpenDir(io(e)),
            E::ReadDir(e) => E::ReadDir(io(e)),
            E::SymlinkLoop => E::SymlinkLoop,
            E::Scan(aether_engine::ScanError::Io(e)) => {
                E::Scan(aether_engine::ScanError::Io(io(e)))
            }
            E::Scan(aether_engine::ScanError::Changed { expected, actual }) => {
                E::Scan(aether_engine::ScanError::Changed {
                    expected: *expected,
                    actual: *actual,
                })
            }
        }),
    }
}

/// The sink failed, so the scan stopped early.
#[derive(Debug, thiserror::Error)]
#[error("writing results: {source}")]
pub struct ScanAborted {
    /// The sink's error.
    #[source]
    pub source: io::Error,
    /// What was counted before stopping.
    pub stats: Stats,
}

/// More scanning threads than this are not started: each holds a scanner's
/// scratch space, and past the number of cores they only add contention.
pub const MAX_THREADS: usize = 256;

/// Walks `targets` and scans every regular file, pushing one [`Entry`] per
/// reported path into `sink`. Returns the counts for the summary.
pub fn scan<S: Sink>(
    engine: &Engine,
    targets: &[Target],
    opts: &ScanOptions,
    sink: &mut S,
) -> Result<Stats, ScanAborted> {
    let stop = AtomicBool::new(false);
    let walker = Walker::new(opts, &stop);
    let state = Mutex::new(State {
        sink,
        stats: Stats::default(),
        error: None,
        ordered: opts.ordered,
        next: 0,
        pending: BTreeMap::new(),
    });

    // Every reported path gets a number in walk order, so that results can be
    // pushed in that order whatever thread finishes first.
    let mut seq = 0u64;
    let mut number = || {
        seq += 1;
        seq - 1
    };
    let threads = opts.threads.min(MAX_THREADS);
    if threads <= 1 {
        let mut scanner = FileScanner::new(engine, opts);
        walker.walk(targets, &mut |item| match item {
            Item::Directory => lock(&state).stats.directories += 1,
            Item::Entry(entry) => lock(&state).deliver(number(), entry, &stop),
            Item::Job(job) => {
                let entry = run_job(&mut scanner, job);
                lock(&state).deliver(number(), entry, &stop)
            }
        });
    } else {
        let (tx, rx) = crossbeam_channel::bounded::<(u64, Job)>(threads * 4);
        std::thread::scope(|s| {
            for _ in 0..threads {
                let rx = rx.clone();
                let (state, stop) = (&state, &stop);
                s.spawn(move || {
                    let mut scanner = FileScanner::new(engine, opts);
                    for (n, job) in rx {
                        if stop.load(Ordering::Relaxed) {
                            continue; // drain without scanning
                        }
                        let entry = run_job(&mut scanner, job);
                        lock(state).deliver(n, entry, stop);
                    }
                });
            }
            drop(rx);
            walker.walk(targets, &mut |item| match item {
                Item::Directory => lock(&state).stats.directories += 1,
                Item::Entry(entry) => lock(&state).deliver(number(), entry, &stop),
                Item::Job(job) => {
                    // Fails only if every worker is gone, which they are not
                    // while `tx` lives; nothing to do then but stop walking.
                    if tx.send((number(), job)).is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            });
            drop(tx);
        });
    }

    let state = state
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match state.error {
        Some(source) => Err(ScanAborted {
            source,
            stats: state.stats,
        }),
        None => Ok(state.stats),
    }
}

/// Counts what [`scan`] would scan (regular files and their bytes) without
/// opening anything: the totals for a progress bar's ETA. `progress` gets
/// the running totals (files, bytes, done) every 1024 files and once at the
/// end with `done` set. Stops early when `stop` is set.
pub fn estimate(
    targets: &[Target],
    opts: &ScanOptions,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(u64, u64, bool),
) {
    let walker = Walker::new(opts, stop);
    let (mut files, mut bytes) = (0u64, 0u64);
    walker.walk(targets, &mut |item| {
        if let Item::Job(Job::File { size, .. }) = item {
            files += 1;
            bytes += size;
            if files % 1024 == 0 {
                progress(files, bytes, false);
            }
        }
    });
    progress(files, bytes, true);
}

struct State<'s, S> {
    sink: &'s mut S,
    stats: Stats,
    error: Option<io::Error>,
    /// Push entries in walk order (holding back those that finish early).
    ordered: bool,
    /// The number of the next entry to push, when ordered.
    next: u64,
    /// Finished entries waiting for an earlier one, when ordered.
    pending: BTreeMap<u64, Entry>,
}

impl<S: Sink> State<'_, S> {
    /// Counts entry number `n` and pushes it, in walk order when ordered.
    fn deliver(&mut self, n: u64, entry: Entry, stop: &AtomicBool) {
        if self.error.is_some() {
            return;
        }
        self.stats.record(&entry);
        if !self.ordered {
            return self.push(&entry, stop);
        }
        if n != self.next {
            self.pending.insert(n, entry);
            return;
        }
        self.push(&entry, stop);
        self.next += 1;
        while let Some(entry) = self.pending.remove(&self.next) {
            if self.error.is_some() {
                return;
            }
            self.push(&entry, stop);
            self.next += 1;
        }
    }

    fn push(&mut self, entry: &Entry, stop: &AtomicBool) {
        if let Err(e) = self.sink.entry(entry) {
            self.error = Some(e);
            stop.store(true, Ordering::Relaxed);
        }
    }
}

fn lock<'m, T>(m: &'m Mutex<T>) -> std::sync::MutexGuard<'m, T> {
    // A panicking sink poisons the lock; the counts are still sound.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn run_job(scanner: &mut FileScanner<'_>, job: Job) -> Entry {
    match job {
        Job::File { path, .. } => {
            let outcome = scanner.scan_path(&path);
            Entry::new(Target::Path(path), outcome)
        }
        Job::Stdin => {
            let stdin = io::stdin();
            let mut lock = stdin.lock();
            let outcome = scanner.scan_reader(&mut lock);
            Entry::new(Target::Stdin, outcome)
        }
    }
}
