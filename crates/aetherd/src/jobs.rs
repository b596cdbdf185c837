//! Scanning jobs, run on blocking threads: a path (SCAN, CONTSCAN,
//! MULTISCAN, ALLMATCHSCAN), a stream (INSTREAM) or a passed descriptor
//! (FILDES), each turned into clamd's replies.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use aether_clamd::Replier;
use aether_engine::{Engine, Limits, ScanError, ScanOutcome};
use aether_journal::{ScanResult, Verdict};
use aether_scan::{Entry, EntryError, FileScanner, Outcome, ScanOptions, Sink, Target};
use tokio::sync::mpsc::Sender;

use crate::recorder::Recorder;

/// Where a path scan's replies and results go.
pub struct Output {
    /// Reply bytes, to the connection.
    pub tx: Sender<Vec<u8>>,
    /// Per-file results, to the journal.
    pub journal: Option<Journaling>,
}

/// Where scan results are journaled, and who asked.
#[derive(Clone)]
pub struct Journaling {
    pub recorder: Recorder,
    pub client: String,
}

impl Journaling {
    pub fn record(&self, target: String, verdict: Verdict) {
        self.recorder
            .record(aether_journal::Entry::Scan(ScanResult {
                target,
                verdict,
                client: Some(self.client.clone()),
            }));
    }
}

/// How a path command walks and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMode {
    /// SCAN: stop at the first infected file.
    Scan,
    /// CONTSCAN and MULTISCAN: report every infected file.
    Continue,
    /// ALLMATCHSCAN: every signature of each file; stop after the first
    /// infected file, as clamd 1.4.6 does.
    AllMatch,
}

/// Pushes each entry's replies to the connection as clamd's `scan_callback`
/// does, counting what decides the final `path: OK`.
struct ReplySink {
    tx: Sender<Vec<u8>>,
    replier: Replier,
    mode: PathMode,
    top: PathBuf,
    arg: Vec<u8>,
    total: u64,
    errors: u64,
    infected: u64,
    /// MULTISCAN of a directory: clamd decides its final `OK` from the
    /// files it handed to its threads only (regular, non-empty files),
    /// not from what the walk itself met.
    multi_dir: bool,
    dispatched: u64,
    dispatched_errors: u64,
    /// The scan stopped because the client went away, not by design.
    disconnected: bool,
    stopped: bool,
    journal: Option<Journaling>,
}

fn stop() -> io::Error {
    io::Error::other("stopped after the first infected file")
}

impl ReplySink {
    fn send(&mut self, bytes: Vec<u8>) -> io::Result<()> {
        if self.tx.blocking_send(bytes).is_err() {
            self.disconnected = true;
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "client gone"));
        }
        Ok(())
    }

    /// clamd replies with the resolved path of each file, and with the
    /// argument as given when the argument itself cannot be resolved.
    fn shown(&self, path: &Path) -> Vec<u8> {
        if path == self.top {
            if let Ok(real) = std::fs::canonicalize(path) {
                return real.into_os_string().into_encoded_bytes();
            }
            return self.arg.clone();
        }
        std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .into_os_string()
            .into_encoded_bytes()
    }
}

impl Sink for ReplySink {
    fn entry(&mut self, entry: &Entry) -> io::Result<()> {
        self.total += 1;
        let Some(path) = entry.target.path() else {
            return Ok(());
        };
        let r = self.replier;
        if let Some(j) = &self.journal {
            let verdict = match &entry.outcome {
                Outcome::Scanned(s) => Some(match s.signatures.first() {
                    Some(sig) => Verdict::Infected {
                        signature: sig.clone(),
                    },
                    None => Verdict::Clean,
                }),
                Outcome::Error(e) => Some(Verdict::Error {
                    message: e.to_string(),
                }),
                _ => None,
            };
            if let Some(v) = verdict {
                j.record(path.to_string_lossy().into_owned(), v);
            }
        }
        match &entry.outcome {
            Outcome::Scanned(_) => self.dispatched += 1,
            Outcome::Error(
                EntryError::AccessDenied | EntryError::Open(_) | EntryError::Scan(_),
            ) => {
                self.dispatched += 1;
                self.dispatched_errors += 1;
            }
            _ => {}
        }
        match &entry.outcome {
            Outcome::Scanned(s) if !s.signatures.is_empty() => {
                self.infected += 1;
                let shown = self.shown(path);
                let names: &[String] = if self.mode == PathMode::AllMatch {
                    &s.signatures
                } else {
                    &s.signatures[..1]
                };
                for name in names {
                    self.send(r.virus(&shown, name))?;
                }
                if self.mode != PathMode::Continue {
                    self.stopped = true;
                    return Err(stop());
                }
            }
            Outcome::Error(err) => match err {
                // clamd names an unsupported argument but does not count it.
                EntryError::Unsupported => {
                    let msg = self.arg.clone();
                    self.send(r.reply(Some(&msg), "Not supported file type", "ERROR"))?;
                }
                EntryError::SymlinkLoop => {}
                EntryError::Inaccessible(e)
                | EntryError::Stat(e)
                | EntryError::OpenDir(e)
                | EntryError::ReadDir(e) => {
                    self.errors += 1;
                    let shown = if path == self.top {
                        self.arg.clone()
                    } else {
                        path.as_os_str().as_encoded_bytes().to_vec()
                    };
                    let errno = e.raw_os_error().unwrap_or(libc::EIO);
                    self.send(r.errno(&shown, "File path check failure:", errno))?;
                }
                EntryError::AccessDenied => {
                    self.errors += 1;
                    let shown = self.shown(path);
                    self.send(r.reply(Some(&shown), "Access denied.", "ERROR"))?;
                }
                EntryError::Scan(ScanError::Io(_)) | EntryError::Scan(_) => {
                    self.errors += 1;
                    let shown = self.shown(path);
                    self.send(r.reply(Some(&shown), "Can't read file", "ERROR"))?;
                }
                _ => {
                    self.errors += 1;
                    let shown = self.shown(path);
                    self.send(r.reply(Some(&shown), "Can't open file or directory", "ERROR"))?;
                }
            },
            _ => {}
        }
        Ok(())
    }
}

/// Scans a path argument and sends its replies. Returns whether anything
/// was infected.
pub fn scan_path(
    engine: &Engine,
    opts: &ScanOptions,
    mode: PathMode,
    multi: bool,
    arg: &[u8],
    replier: Replier,
    out: Output,
) -> bool {
    let Output { tx, journal } = out;
    // clamd runs with "/" as its working directory.
    let given = Path::new(OsStr::from_bytes(arg));
    if arg.is_empty() {
        let _ = tx.blocking_send(replier.errno(arg, "File path check failure:", libc::ENOENT));
        return false;
    }
    let top = Path::new("/").join(given);
    let top_is_dir = std::fs::metadata(&top).is_ok_and(|m| m.is_dir());
    let mut sink = ReplySink {
        tx,
        replier,
        mode,
        top: top.clone(),
        arg: arg.to_vec(),
        // clamd counts the top directory's visit among the "total".
        total: u64::from(top_is_dir),
        errors: 0,
        infected: 0,
        multi_dir: multi && top_is_dir,
        dispatched: 0,
        dispatched_errors: 0,
        disconnected: false,
        stopped: false,
        journal,
    };
    let _ = aether_scan::scan(engine, &[Target::Path(top)], opts, &mut sink);
    if sink.disconnected {
        return sink.infected > 0;
    }
    let (errors, total) = if sink.multi_dir {
        (sink.dispatched_errors, sink.dispatched)
    } else {
        (sink.errors, sink.total)
    };
    if sink.infected == 0 && errors != total {
        let ok = replier.single(Some(arg), "OK");
        let _ = sink.send(ok);
    }
    sink.infected > 0
}

/// The reply to a stream or descriptor scan (`stream: ...`, `fd[N]: ...`).
pub fn outcome_reply(
    replier: Replier,
    label: &[u8],
    result: Result<ScanOutcome, ScanError>,
    alert_exceeds_max: bool,
) -> (Vec<u8>, Verdict) {
    let infected = |name: &str| Verdict::Infected {
        signature: name.to_string(),
    };
    match result {
        Ok(o) => {
            if let Some(d) = o.detections.first() {
                (replier.virus(label, &d.name), infected(&d.name))
            } else if let (Some(limit), true) = (o.limit, alert_exceeds_max) {
                let name = limit.signature_name();
                (replier.virus(label, name), infected(name))
            } else {
                (replier.single(Some(label), "OK"), Verdict::Clean)
            }
        }
        Err(e) => (
            replier.reply(Some(label), "Can't read file", "ERROR"),
            Verdict::Error {
                message: e.to_string(),
            },
        ),
    }
}

/// Bodies up to this size stay in memory; larger ones go to a file, so that
/// many concurrent streams do not hold `StreamMaxLength` of memory each.
pub const SPILL: usize = 1 << 20;

/// An INSTREAM body being received.
pub enum StreamBody {
    Memory(Vec<u8>),
    /// An unnamed file in `TemporaryDirectory`, gone when closed.
    File(File),
}

impl Default for StreamBody {
    fn default() -> StreamBody {
        StreamBody::Memory(Vec::new())
    }
}

impl StreamBody {
    pub fn push(&mut self, data: &[u8], tmpdir: &Path) -> io::Result<()> {
        use std::io::Write;
        match self {
            StreamBody::Memory(v) if v.len() + data.len() <= SPILL => {
                v.extend_from_slice(data);
                Ok(())
            }
            StreamBody::Memory(v) => {
                let mut f = unnamed_file(tmpdir)?;
                f.write_all(v)?;
                f.write_all(data)?;
                *self = StreamBody::File(f);
                Ok(())
            }
            StreamBody::File(f) => f.write_all(data),
        }
    }
}

/// A private file with no name: `O_TMPFILE` where the file system has it,
/// else created under a unique name and unlinked at once.
fn unnamed_file(dir: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    let tmp = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .open(dir);
    match tmp {
        Ok(f) => Ok(f),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
            ) =>
        {
            static N: AtomicU64 = AtomicU64::new(0);
            let name = dir.join(format!(
                ".aetherd-stream-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_CLOEXEC)
                .open(&name)?;
            std::fs::remove_file(&name)?;
            Ok(f)
        }
        Err(e) => Err(e),
    }
}

/// Scans INSTREAM data.
pub fn scan_stream(
    engine: &Engine,
    body: &StreamBody,
    limits: &Limits,
    alert: bool,
    r: Replier,
) -> (Vec<u8>, Verdict) {
    let mut scanner = engine.scanner();
    let result = match body {
        StreamBody::Memory(data) => scanner.scan_bytes(data, limits),
        StreamBody::File(f) => scanner.scan_file(f, limits),
    };
    outcome_reply(r, b"stream", result, alert)
}

/// Scans a descriptor passed with FILDES.
pub fn scan_fd(engine: &Engine, file: File, opts: &ScanOptions, r: Replier) -> (Vec<u8>, Verdict) {
    use std::os::fd::AsRawFd;
    let label = format!("fd[{}]", file.as_raw_fd()).into_bytes();
    match file.metadata() {
        Ok(m) if m.is_file() => {}
        _ => {
            let v = Verdict::Error {
                message: "not a regular file".into(),
            };
            return (r.reply(Some(&label), "Not a regular file", "ERROR"), v);
        }
    }
    let mut scanner = FileScanner::new(engine, opts);
    match scanner.scan_open_file(&file) {
        Outcome::Scanned(s) if !s.signatures.is_empty() => (
            r.virus(&label, &s.signatures[0]),
            Verdict::Infected {
                signature: s.signatures[0].clone(),
            },
        ),
        Outcome::Error(e) => (
            r.reply(Some(&label), "Can't read file", "ERROR"),
            Verdict::Error {
                message: e.to_string(),
            },
        ),
        _ => (r.single(Some(&label), "OK"), Verdict::Clean),
    }
}
