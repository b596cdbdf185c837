/*!
Printers for scan results: clamscan's text lines and `SCAN SUMMARY`, JSON
Lines, the `--log` file, and a progress bar.

Every output format implements one trait, [`Printer`], fed one
[`aether_scan::Entry`] at a time and the [`Summary`] at the end; [`Report`]
fans entries out to several printers (the terminal and a log file) and
implements [`aether_scan::Sink`], so a scan pushes straight into it. This is
grep-printer's arrangement: the scan crate knows nothing of formats, and a
printer knows nothing of walking.

Brief overview:
- [`TextPrinter`]: clamscan's lines (`PATH: Name FOUND`, `PATH: OK`, ...) on
  standard output, its warnings on standard error, and the summary block; or,
  with [`TextPrinter::log`], clamscan's `--log` file.
- [`JsonPrinter`]: one JSON object per entry, then a summary object (schema
  in `docs/json-output.md`).
- [`Progress`]: files, bytes, rate and ETA on standard error, hidden while
  lines are printed so that nothing is mixed into standard output.
- [`display_path`]: how a path is printed, unambiguously even when it is not
  UTF-8.

```
use aether_report::{Report, TextOptions, TextPrinter};
use aether_scan::{ScanOptions, Target, scan};

let sources = aether_engine::DbSources { builtin: true, paths: Vec::new() };
let (engine, _) = aether_engine::load(&sources, Default::default())?;

// clamscan's lines on standard output, its warnings on standard error.
let mut report = Report::new();
let printer = TextPrinter::new(
    Box::new(std::io::stdout()),
    Box::new(std::io::stderr()),
    TextOptions::default(),
    false,
);
report.push(Box::new(printer));
let stats = scan(&engine, &[Target::from_arg("Cargo.toml")], &ScanOptions::default(), &mut report)?;
report.finish(None)?; // or Some(&summary) for the SCAN SUMMARY block
assert_eq!(stats.exit_code(), 0);
# Ok::<(), Box<dyn std::error::Error>>(())
```
*/
#![deny(missing_docs)]

mod json;
mod path;
mod progress;
mod summary;
mod text;

use std::io;

use aether_scan::{Entry, Sink};

pub use json::JsonPrinter;
pub use path::{display_path, strerror};
pub use progress::{Progress, ProgressHandle};
pub use summary::Summary;
pub use text::{TextOptions, TextPrinter};

/// An output format.
pub trait Printer: Send {
    /// Prints one entry as it arrives.
    fn entry(&mut self, entry: &Entry) -> io::Result<()>;
    /// Prints the end-of-scan summary.
    fn summary(&mut self, summary: &Summary<'_>) -> io::Result<()>;
    /// Flushes buffered output.
    fn flush(&mut self) -> io::Result<()>;
}

/// Several printers and an optional progress bar, as one [`Sink`].
#[derive(Default)]
pub struct Report {
    printers: Vec<Box<dyn Printer>>,
    progress: Option<Progress>,
    /// Results go to the terminal the bar is drawn on, so the bar must be
    /// hidden around every line (not only around warnings).
    results_on_terminal: bool,
}

impl Report {
    /// An empty report; add printers with [`Report::push`].
    pub fn new() -> Report {
        Report::default()
    }

    /// Adds a printer.
    pub fn push(&mut self, printer: Box<dyn Printer>) {
        self.printers.push(printer);
    }

    /// Shows a progress bar while scanning. `results_on_terminal`: standard
    /// output is the same terminal (otherwise the bar is only hidden around
    /// entries that print a warning, which saves a redraw per file).
    pub fn set_progress(&mut self, progress: Progress, results_on_terminal: bool) {
        self.progress = Some(progress);
        self.results_on_terminal = results_on_terminal;
    }

    /// Removes the progress bar, then prints the summary and flushes.
    pub fn finish(&mut self, summary: Option<&Summary<'_>>) -> io::Result<()> {
        if let Some(progress) = self.progress.take() {
            progress.clear();
        }
        let mut first_error = None;
        for printer in &mut self.printers {
            let result = match summary {
                Some(s) => printer.summary(s).and_then(|()| printer.flush()),
                None => printer.flush(),
            };
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Sink for Report {
    fn entry(&mut self, entry: &Entry) -> io::Result<()> {
        let printers = &mut self.printers;
        let mut print = || -> io::Result<()> {
            for printer in printers.iter_mut() {
                printer.entry(entry)?;
            }
            Ok(())
        };
        match &self.progress {
            Some(progress) => {
                let warns = matches!(entry.outcome, aether_scan::Outcome::Error(_));
                let result = if self.results_on_terminal || warns {
                    progress.suspend(print)
                } else {
                    print()
                };
                progress.record(entry);
                result
            }
            None => print(),
        }
    }
}
