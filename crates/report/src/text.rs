//! clamscan's text output and its `--log` file.

use std::io::{self, Write};

use aether_engine::ScanError;
use aether_scan::{Entry, EntryError, Outcome, Target};

use crate::path::{display_path, strerror};
use crate::{Printer, Summary};

/// clamscan's `-i` and `-o`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    /// `-i/--infected`: print only `FOUND` lines (warnings still go to
    /// standard error).
    pub infected_only: bool,
    /// `-o/--suppress-ok-results`: no `OK` lines.
    pub suppress_ok: bool,
}

/// Prints as clamscan: result lines on one writer (standard output), warnings
/// on another (standard error); or everything on one writer (clamscan's
/// `--stdout`); or, as clamscan's `--log`, everything except `OK` lines and
/// `perror` lines on one writer.
pub struct TextPrinter {
    out: Box<dyn Write + Send>,
    err: Warnings,
    opts: TextOptions,
    /// Flush after every entry (a terminal watching the scan).
    flush_each: bool,
}

/// Where warnings go.
enum Warnings {
    /// Their own stream (standard error).
    Separate(Box<dyn Write + Send>),
    /// With the results (`--stdout`); only `perror` lines keep their own
    /// stream, as clamscan's `perror()` ignores `--stdout`.
    Inline(Box<dyn Write + Send>),
    /// With the results, minus what clamscan does not log (`--log`).
    Log,
}

impl TextPrinter {
    /// Lines to `out`, warnings to `err`. With `flush_each`, every entry is
    /// flushed as it is printed, as clamscan's line-buffered terminal output.
    pub fn new(
        out: Box<dyn Write + Send>,
        err: Box<dyn Write + Send>,
        opts: TextOptions,
        flush_each: bool,
    ) -> TextPrinter {
        TextPrinter {
            out,
            err: Warnings::Separate(err),
            opts,
            flush_each,
        }
    }

    /// Lines and warnings on one writer, as clamscan's `--stdout`; `perror`
    /// lines (`PATH: No such file or directory`) still go to `err`.
    pub fn single(
        out: Box<dyn Write + Send>,
        err: Box<dyn Write + Send>,
        opts: TextOptions,
        flush_each: bool,
    ) -> TextPrinter {
        TextPrinter {
            out,
            err: Warnings::Inline(err),
            opts,
            flush_each,
        }
    }

    /// clamscan's `--log FILE`: writes its separator line first, then what
    /// clamscan logs.
    pub fn log(mut file: Box<dyn Write + Send>, opts: TextOptions) -> io::Result<TextPrinter> {
        file.write_all(b"\n-------------------------------------------------------------------------------\n\n")?;
        Ok(TextPrinter {
            out: file,
            err: Warnings::Log,
            opts,
            flush_each: true,
        })
    }

    fn info(&mut self, line: &str) -> io::Result<()> {
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")
    }

    fn warning(&mut self, line: &str) -> io::Result<()> {
        let w = match &mut self.err {
            Warnings::Separate(err) => err,
            Warnings::Inline(_) | Warnings::Log => &mut self.out,
        };
        w.write_all(b"WARNING: ")?;
        w.write_all(line.as_bytes())?;
        w.write_all(b"\n")
    }

    /// `perror()` output: never logged.
    fn perror(&mut self, line: &str) -> io::Result<()> {
        let w = match &mut self.err {
            Warnings::Separate(err) | Warnings::Inline(err) => err,
            Warnings::Log => return Ok(()),
        };
        w.write_all(line.as_bytes())?;
        w.write_all(b"\n")
    }
}

/// The name clamscan prints for an entry.
fn name(target: &Target) -> std::borrow::Cow<'_, str> {
    match target {
        Target::Path(p) => display_path(p),
        Target::Stdin => "stdin".into(),
    }
}

/// What clamscan prints before ` ERROR` when the engine fails.
fn scan_error_text(e: &ScanError) -> String {
    match e {
        ScanError::Io(io) => format!("Can't read file: {}", strerror(io)),
        ScanError::Changed { expected, actual } => {
            format!("File changed during scan (size was {expected}, now {actual})")
        }
    }
}

impl Printer for TextPrinter {
    fn entry(&mut self, entry: &Entry) -> io::Result<()> {
        let path = name(&entry.target);
        let quiet = self.opts.infected_only;
        let log = matches!(self.err, Warnings::Log);
        match &entry.outcome {
            Outcome::Scanned(s) if !s.signatures.is_empty() => {
                for sig in &s.signatures {
                    self.info(&format!("{path}: {sig} FOUND"))?;
                }
            }
            Outcome::Scanned(_) => {
                // clamscan prints OK with mprintf: terminal only, never logged.
                if !quiet && !self.opts.suppress_ok && !log {
                    self.info(&format!("{path}: OK"))?;
                }
            }
            Outcome::Empty if !quiet => self.info(&format!("{path}: Empty file"))?,
            Outcome::Excluded if !quiet => self.info(&format!("{path}: Excluded"))?,
            Outcome::ExcludedProc if !quiet => self.info(&format!("{path}: Excluded (/proc)"))?,
            Outcome::SymbolicLink if !quiet => self.info(&format!("{path}: Symbolic link"))?,
            Outcome::Empty | Outcome::Excluded | Outcome::ExcludedProc | Outcome::SymbolicLink => {}
            // clamscan says nothing about a FIFO or device inside a directory.
            Outcome::Special => {}
            Outcome::Error(err) => match err {
                EntryError::Inaccessible(e) => {
                    self.perror(&format!("{path}: {}", strerror(e)))?;
                    self.warning(&format!("{path}: Can't access file"))?;
                }
                EntryError::Unsupported => {
                    self.warning(&format!("{path}: Not supported file type"))?
                }
                EntryError::Stat(e) => {
                    self.warning(&format!("Can't stat file {path}: {}", strerror(e)))?
                }
                EntryError::AccessDenied if !quiet => {
                    self.info(&format!("{path}: Access denied"))?
                }
                EntryError::Open(e) => {
                    self.warning(&format!("Can't open file {path}: {}", strerror(e)))?
                }
                EntryError::OpenDir(_) if !quiet => {
                    self.info(&format!("{path}: Can't open directory."))?
                }
                EntryError::ReadDir(e) => {
                    self.warning(&format!("Can't read directory {path}: {}", strerror(e)))?
                }
                EntryError::SymlinkLoop => {
                    self.warning(&format!("{path}: Symbolic link loop, not entered"))?
                }
                EntryError::Scan(e) if !quiet => {
                    self.info(&format!("{path}: {} ERROR", scan_error_text(e)))?
                }
                _ => {}
            },
        }
        if self.flush_each {
            self.flush()?;
        }
        Ok(())
    }

    fn summary(&mut self, summary: &Summary<'_>) -> io::Result<()> {
        self.out.write_all(summary.clamscan_text().as_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if let Warnings::Separate(err) | Warnings::Inline(err) = &mut self.err {
            err.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aether_scan::Scanned;
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    /// A `Write` whose bytes the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn entry(path: &str, outcome: Outcome) -> Entry {
        Entry {
            target: Target::Path(PathBuf::from(path)),
            outcome,
        }
    }

    fn scanned(sigs: &[&str]) -> Outcome {
        Outcome::Scanned(Scanned {
            size: 10,
            signatures: sigs.iter().map(|s| s.to_string()).collect(),
            ..Scanned::default()
        })
    }

    fn sample() -> Vec<Entry> {
        vec![
            entry("d/eicar.com", scanned(&["Eicar-Signature"])),
            entry("d/a.txt", scanned(&[])),
            entry("d/empty", Outcome::Empty),
            entry("d/link", Outcome::SymbolicLink),
            entry("d/fifo", Outcome::Special),
            entry(
                "nope",
                Outcome::Error(EntryError::Inaccessible(io::Error::from_raw_os_error(
                    libc::ENOENT,
                ))),
            ),
            entry("p/secret", Outcome::Error(EntryError::AccessDenied)),
            entry(
                "d/x",
                Outcome::Error(EntryError::Open(io::Error::from_raw_os_error(libc::ENOENT))),
            ),
        ]
    }

    fn run(opts: TextOptions) -> (String, String) {
        let (out, err) = (Shared::default(), Shared::default());
        let mut p = TextPrinter::new(Box::new(out.clone()), Box::new(err.clone()), opts, false);
        for e in sample() {
            p.entry(&e).unwrap();
        }
        (out.text(), err.text())
    }

    #[test]
    fn lines_as_clamscan() {
        let (out, err) = run(TextOptions::default());
        assert_eq!(
            out,
            "d/eicar.com: Eicar-Signature FOUND\nd/a.txt: OK\nd/empty: Empty file\nd/link: Symbolic link\n\
             p/secret: Access denied\n"
        );
        assert_eq!(
            err,
            "nope: No such file or directory\nWARNING: nope: Can't access file\n\
             WARNING: Can't open file d/x: No such file or directory\n"
        );
    }

    #[test]
    fn infected_only_and_suppress_ok() {
        let (out, err) = run(TextOptions {
            infected_only: true,
            suppress_ok: false,
        });
        assert_eq!(out, "d/eicar.com: Eicar-Signature FOUND\n");
        assert!(err.contains("WARNING: nope: Can't access file"));
        let (out, _) = run(TextOptions {
            infected_only: false,
            suppress_ok: true,
        });
        assert!(!out.contains("OK"));
        assert!(out.contains("d/empty: Empty file"));
    }

    #[test]
    fn log_file_as_clamscan() {
        let log = Shared::default();
        let mut p = TextPrinter::log(Box::new(log.clone()), TextOptions::default()).unwrap();
        for e in sample() {
            p.entry(&e).unwrap();
        }
        assert_eq!(
            log.text(),
            "\n-------------------------------------------------------------------------------\n\n\
             d/eicar.com: Eicar-Signature FOUND\nd/empty: Empty file\nd/link: Symbolic link\n\
             WARNING: nope: Can't access file\np/secret: Access denied\n\
             WARNING: Can't open file d/x: No such file or directory\n"
        );
    }

    #[test]
    fn single_stream_as_clamscan_stdout() {
        let (out, err) = (Shared::default(), Shared::default());
        let mut p = TextPrinter::single(
            Box::new(out.clone()),
            Box::new(err.clone()),
            TextOptions::default(),
            false,
        );
        for e in sample() {
            p.entry(&e).unwrap();
        }
        assert_eq!(
            out.text(),
            "d/eicar.com: Eicar-Signature FOUND\nd/a.txt: OK\nd/empty: Empty file\nd/link: Symbolic link\n\
             WARNING: nope: Can't access file\np/secret: Access denied\n\
             WARNING: Can't open file d/x: No such file or directory\n"
        );
        assert_eq!(err.text(), "nope: No such file or directory\n");
    }

    #[test]
    fn engine_errors_are_error_lines() {
        let (out, err) = (Shared::default(), Shared::default());
        let mut p = TextPrinter::new(
            Box::new(out.clone()),
            Box::new(err.clone()),
            TextOptions::default(),
            false,
        );
        let changed = ScanError::Changed {
            expected: 10,
            actual: 4,
        };
        p.entry(&entry("f", Outcome::Error(EntryError::Scan(changed))))
            .unwrap();
        let eio = ScanError::Io(io::Error::from_raw_os_error(libc::EIO));
        p.entry(&entry("g", Outcome::Error(EntryError::Scan(eio))))
            .unwrap();
        assert_eq!(
            out.text(),
            "f: File changed during scan (size was 10, now 4) ERROR\ng: Can't read file: Input/output error ERROR\n"
        );
        assert_eq!(err.text(), "");
    }

    #[test]
    fn allmatch_prints_one_line_per_signature() {
        let (out, err) = (Shared::default(), Shared::default());
        let mut p = TextPrinter::new(
            Box::new(out.clone()),
            Box::new(err),
            TextOptions::default(),
            false,
        );
        p.entry(&entry("f", scanned(&["A", "B"]))).unwrap();
        assert_eq!(out.text(), "f: A FOUND\nf: B FOUND\n");
    }
}
