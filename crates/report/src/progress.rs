//! A progress bar on standard error: files, bytes, rate, ETA.
//!
//! The totals come from a separate metadata-only walk
//! ([`aether_scan::estimate`]) that runs while the scan starts, so scanning
//! never waits for counting; until the count is done the bar shows what was
//! found so far and no ETA.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use aether_scan::{Entry, Outcome};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar. Create it only when standard error is a terminal.
pub struct Progress {
    bar: ProgressBar,
    totals: Arc<Totals>,
    files: AtomicU64,
}

#[derive(Default)]
struct Totals {
    files: AtomicU64,
    done: AtomicBool,
}

/// Lets the counting thread set the totals.
#[derive(Clone)]
pub struct ProgressHandle {
    bar: ProgressBar,
    totals: Arc<Totals>,
}

impl ProgressHandle {
    /// Totals found so far; `done` when the count is complete.
    pub fn set_totals(&self, files: u64, bytes: u64, done: bool) {
        self.totals.files.store(files, Ordering::Relaxed);
        self.bar.set_length(bytes.max(self.bar.position()));
        if done {
            self.totals.done.store(true, Ordering::Relaxed);
            self.bar.set_style(style(true));
        }
    }
}

fn style(known_total: bool) -> ProgressStyle {
    let template = if known_total {
        "{spinner} {elapsed_precise} [{wide_bar}] {msg} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
    } else {
        "{spinner} {elapsed_precise} [{wide_bar}] {msg} {bytes}/{total_bytes}+ {binary_bytes_per_sec}"
    };
    // The templates are constants; a bad one is a bug caught by the tests.
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Progress {
    /// A bar drawn on standard error.
    pub fn stderr() -> Progress {
        Progress::with_target(ProgressDrawTarget::stderr())
    }

    fn with_target(target: ProgressDrawTarget) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(0), target);
        bar.set_style(style(false));
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress {
            bar,
            totals: Arc::default(),
            files: AtomicU64::new(0),
        }
    }

    /// For the thread that counts totals.
    pub fn handle(&self) -> ProgressHandle {
        ProgressHandle {
            bar: self.bar.clone(),
            totals: self.totals.clone(),
        }
    }

    /// Runs `f` (which prints lines) with the bar hidden.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Counts one entry.
    pub fn record(&self, entry: &Entry) {
        if let Outcome::Scanned(s) = &entry.outcome {
            let files = self.files.fetch_add(1, Ordering::Relaxed) + 1;
            self.bar.inc(s.size);
            if self.bar.position() > self.bar.length().unwrap_or(0) {
                self.bar.set_length(self.bar.position());
            }
            let total = self.totals.files.load(Ordering::Relaxed);
            let plus = if self.totals.done.load(Ordering::Relaxed) {
                ""
            } else {
                "+"
            };
            self.bar
                .set_message(format!("{files}/{}{plus} files", total.max(files)));
        }
    }

    /// Removes the bar from the terminal.
    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }

    /// Bytes counted so far.
    pub fn position(&self) -> u64 {
        self.bar.position()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aether_scan::{Scanned, Target};

    #[test]
    fn counts_scanned_files_and_bytes() {
        let p = Progress::with_target(ProgressDrawTarget::hidden());
        p.handle().set_totals(2, 300, true);
        let e = Entry {
            target: Target::Stdin,
            outcome: Outcome::Scanned(Scanned {
                size: 100,
                ..Scanned::default()
            }),
        };
        p.record(&e);
        p.record(&Entry {
            target: Target::Stdin,
            outcome: Outcome::Empty,
        });
        assert_eq!(p.position(), 100);
        assert_eq!(p.bar.message(), "1/2 files");
        // Templates are valid.
        assert!(ProgressStyle::with_template("{spinner} {elapsed_precise} [{wide_bar}] {msg} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}").is_ok());
        p.clear();
    }
}
