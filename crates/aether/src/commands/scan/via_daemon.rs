//! `aether scan --daemon`: the walk runs here, the matching in aetherd.
//!
//! Each file is opened by this process, with its user's rights, and the open
//! descriptor is passed to the daemon (`ScanFd` on the IPC socket, as
//! clamdscan's `--fdpass`): aetherd runs as root but scans only what the
//! caller could open, and never opens a path it is given. Walking here, with
//! `aether_scan::walk`, means every walking option applies as in a local scan.
//!
//! Requests are pipelined up to the daemon's window: this thread walks and
//! sends, a second one reads the answers, and entries reach the printers in
//! walk order, so the output is a local scan's line for line. Every wait on
//! the daemon is bounded: a daemon that dies or stops answering is an error
//! (exit 2), never a hang and never a silent local scan.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use aether_engine::{FileType, LimitExceeded, ScanError};
use aether_ipc::msg::{ScanErrorCode, ScanFd, ScanRequestOptions, ScanResult, ScanVerdict};
use aether_ipc::{ClientError, ScanClient, ScanReceiver, ScanSender};
use aether_scan::{
    Entry, EntryError, Outcome, ScanAborted, ScanOptions, Scanned, Sink, Stats, Target, Walked,
};
use anyhow::Context;

/// Requests kept in flight at most, whatever the daemon allows.
const MAX_WINDOW: usize = 64;

/// How long the daemon may stay silent while scans are outstanding, unless
/// `--daemon-timeout` says: its longest scan (`--max-scantime`, else clamd's
/// default of 2 minutes) plus a minute of queueing behind other clients.
pub(super) fn answer_timeout(opts: &ScanOptions) -> Duration {
    opts.limits
        .max_scantime
        .unwrap_or(Duration::from_secs(120))
        .saturating_add(Duration::from_secs(60))
}

/// Scans `targets` through aetherd at `socket`, pushing entries into `sink`
/// in walk order; a daemon silent for `timeout` while files are outstanding
/// is given up. `Err`: the daemon could not be reached, refused, or was lost
/// mid-scan (what was printed so far stays printed). `Ok(Err)`: the sink
/// failed, as `aether_scan::scan` reports it.
pub(super) fn scan<S: Sink>(
    socket: &Path,
    timeout: Duration,
    targets: &[Target],
    opts: &ScanOptions,
    sink: &mut S,
) -> anyhow::Result<Result<Stats, ScanAborted>> {
    let client = ScanClient::connect(socket, "aether scan", timeout)
        .with_context(|| format!("cannot scan through aetherd at {}", socket.display()))?;
    let window = client.window().clamp(1, MAX_WINDOW);
    let (sender, receiver) = client
        .split()
        .context("cannot set up the connection to aetherd")?;
    let options = request_options(opts);
    let stop = AtomicBool::new(false);
    let state = Mutex::new(State {
        sink,
        stats: Stats::default(),
        sink_error: None,
        failure: None,
        next: 0,
        ready: BTreeMap::new(),
        asked: HashMap::new(),
        walked: false,
        owed_since: None,
    });
    // One slot per request in flight: the walk takes one before sending, the
    // reader gives it back with each answer (and drops the channel if it
    // stops, which ends the walk).
    let (slots_tx, slots_rx) = mpsc::sync_channel::<()>(window);
    std::thread::scope(|s| {
        let reader = s.spawn(|| read_answers(receiver, timeout, &state, slots_rx, &stop));
        let mut walker = Walker {
            sender,
            options,
            state: &state,
            slots: slots_tx,
            stop: &stop,
            seq: 0,
        };
        aether_scan::walk(targets, opts, &stop, &mut |w| walker.item(w));
        lock(&state).walked = true;
        // No more requests: the daemon answers those in flight, then closes.
        let _ = walker.sender.finish();
        drop(walker);
        let _ = reader.join();
    });
    let state = state.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(failure) = state.failure {
        anyhow::bail!("{failure}");
    }
    Ok(match state.sink_error {
        Some(source) => Err(ScanAborted {
            source,
            stats: state.stats,
        }),
        None => Ok(state.stats),
    })
}

/// The daemon is asked for what the command line asks for; its own limits
/// still apply where they are lower.
fn request_options(opts: &ScanOptions) -> ScanRequestOptions {
    let l = &opts.limits;
    // u64::MAX is "no limit" locally: no wish, the daemon's limit applies.
    let wish = |v: u64| if v == u64::MAX { 0 } else { v };
    ScanRequestOptions {
        all_match: l.all_match,
        // One flag on the wire: the daemon alerts on both kinds.
        alert_encrypted: opts.alert_encrypted || opts.alert_encrypted_doc,
        alert_exceeds_max: opts.alert_exceeds_max,
        max_scansize: wish(l.max_scansize),
        max_files: wish(l.max_files),
        max_recursion: l.max_recursion,
        max_scantime_ms: l
            .max_scantime
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        max_filesize: l.max_filesize,
    }
}

struct State<'s, S> {
    sink: &'s mut S,
    stats: Stats,
    sink_error: Option<io::Error>,
    /// Why the scan through the daemon stopped, if it did.
    failure: Option<String>,
    /// The number of the next entry to push.
    next: u64,
    /// Finished entries waiting for an earlier one.
    ready: BTreeMap<u64, Entry>,
    /// Requests in flight: entry number -> what was sent.
    asked: HashMap<u64, Target>,
    /// The walk has ended (no more requests will be sent).
    walked: bool,
    /// Since when the daemon owes an answer without having sent one: set
    /// when a request goes out with none in flight, moved on by each answer.
    owed_since: Option<Instant>,
}

impl<S: Sink> State<'_, S> {
    /// Counts entry `n` and pushes it and every entry it held back, in order.
    fn deliver(&mut self, n: u64, entry: Entry, stop: &AtomicBool) {
        if self.sink_error.is_some() || self.failure.is_some() {
            return;
        }
        self.stats.record(&entry);
        self.ready.insert(n, entry);
        while let Some(entry) = self.ready.remove(&self.next) {
            if let Err(e) = self.sink.entry(&entry) {
                self.sink_error = Some(e);
                stop.store(true, Ordering::Relaxed);
                return;
            }
            self.next += 1;
        }
    }

    fn fail(&mut self, why: String, stop: &AtomicBool) {
        self.failure.get_or_insert(why);
        stop.store(true, Ordering::Relaxed);
    }
}

fn lock<'m, T>(m: &'m Mutex<T>) -> MutexGuard<'m, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The walking and sending side.
struct Walker<'a, 's, S> {
    sender: ScanSender,
    options: ScanRequestOptions,
    state: &'a Mutex<State<'s, S>>,
    slots: mpsc::SyncSender<()>,
    stop: &'a AtomicBool,
    seq: u64,
}

impl<S: Sink> Walker<'_, '_, S> {
    fn item(&mut self, w: Walked) {
        if self.stop.load(Ordering::Relaxed) {
            return;
        }
        let n = self.seq;
        match w {
            Walked::Directory => return lock(self.state).stats.directories += 1,
            Walked::Entry(e) => lock(self.state).deliver(n, e, self.stop),
            Walked::File { path, .. } => match aether_scan::open_file(&path) {
                Ok(file) => self.send(n, Target::Path(path), &file),
                // Not readable by this user: reported here, never sent.
                Err(e) => {
                    let entry = Entry {
                        target: Target::Path(path),
                        outcome: Outcome::Error(e),
                    };
                    lock(self.state).deliver(n, entry, self.stop)
                }
            },
            Walked::Stdin => match spool_stdin() {
                Ok(file) => self.send(n, Target::Stdin, &file),
                Err(e) => lock(self.state).fail(
                    format!("cannot read standard input to pass it to aetherd: {e}"),
                    self.stop,
                ),
            },
        }
        self.seq += 1;
    }

    fn send(&mut self, n: u64, target: Target, file: &File) {
        // Waits for room in the window; fails only if the reader stopped.
        if self.slots.send(()).is_err() {
            self.stop.store(true, Ordering::Relaxed);
            return;
        }
        let path = match &target {
            Target::Path(p) => p.to_string_lossy().into_owned(),
            Target::Stdin => "stdin".to_string(),
        };
        {
            let mut st = lock(self.state);
            if st.asked.is_empty() {
                st.owed_since = Some(Instant::now());
            }
            st.asked.insert(n, target);
        }
        let request = ScanFd {
            id: n,
            path,
            options: Some(self.options.clone()),
        };
        if let Err(e) = self.sender.send(&request, file.as_fd()) {
            lock(self.state).fail(lost(&e), self.stop);
        }
    }
}

fn lost(e: &ClientError) -> String {
    match e {
        ClientError::Io(io) if io.kind() == io::ErrorKind::BrokenPipe => {
            "aetherd closed the connection mid-scan".to_string()
        }
        other => format!("lost aetherd mid-scan: {other}"),
    }
}

/// The answering side: each answer becomes its entry.
fn read_answers<S: Sink>(
    mut rx: ScanReceiver,
    timeout: Duration,
    state: &Mutex<State<'_, S>>,
    slots: mpsc::Receiver<()>,
    stop: &AtomicBool,
) {
    loop {
        match rx.recv() {
            Ok(r) => {
                let mut st = lock(state);
                let n = r.id;
                let Some(target) = st.asked.remove(&n) else {
                    let why = format!("aetherd answered request {n} that was not asked");
                    return st.fail(why, stop);
                };
                st.owed_since = (!st.asked.is_empty()).then(Instant::now);
                match entry(target, r) {
                    Ok(entry) => st.deliver(n, entry, stop),
                    Err(why) => return st.fail(why, stop),
                }
                drop(st);
                let _ = slots.try_recv();
            }
            Err(ClientError::Closed) => {
                let mut st = lock(state);
                let unanswered = st.asked.len();
                if unanswered > 0 || !st.walked {
                    st.fail(
                        format!(
                            "aetherd closed the connection mid-scan ({unanswered} files unanswered)"
                        ),
                        stop,
                    );
                }
                return;
            }
            Err(ClientError::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let mut st = lock(state);
                if st.failure.is_some() {
                    return;
                }
                // Silent for the whole timeout since an answer was owed (the
                // read's own timer may have started before the request).
                if st.owed_since.is_some_and(|t| t.elapsed() >= timeout) {
                    let n = st.asked.len();
                    return st.fail(
                        format!(
                            "aetherd stopped answering: nothing for {timeout:?} ({n} files unanswered)"
                        ),
                        stop,
                    );
                }
                // Nothing outstanding: the walk is still looking for files.
            }
            Err(e) => return lock(state).fail(lost(&e), stop),
        }
    }
}

/// The entry for one answer, as a local scan of the same file would give it.
/// `Err`: an answer that ends the whole scan (the daemon refuses the options).
fn entry(target: Target, r: ScanResult) -> Result<Entry, String> {
    let error = r.error.clone().unwrap_or_default();
    let outcome = match ScanVerdict::try_from(r.verdict) {
        Ok(ScanVerdict::Clean | ScanVerdict::Infected) => {
            let (signatures, chains) = r
                .detections
                .into_iter()
                .map(|d| (d.signature, d.chain))
                .unzip();
            Outcome::Scanned(Scanned {
                size: r.size,
                bytes_scanned: r.bytes_scanned,
                file_type: FileType::from_clamav_name(&r.file_type),
                signatures,
                chains,
                limit: limit(&r.limit),
            })
        }
        Ok(ScanVerdict::Empty) => Outcome::Empty,
        Ok(ScanVerdict::Failed) => Outcome::Error(EntryError::Scan(match ScanErrorCode::try_from(
            error.code,
        ) {
            Ok(ScanErrorCode::Read) if error.errno > 0 => {
                ScanError::Io(io::Error::from_raw_os_error(error.errno))
            }
            Ok(ScanErrorCode::Changed) => ScanError::Changed {
                expected: error.expected_size,
                actual: error.actual_size,
            },
            _ => ScanError::Io(io::Error::other(format!("aetherd: {}", error.message))),
        })),
        Ok(ScanVerdict::Refused) => match ScanErrorCode::try_from(error.code) {
            // Swapped for a FIFO or device since the walk looked: a local
            // scan does not read it either.
            Ok(ScanErrorCode::NotRegular) => Outcome::Special,
            Ok(ScanErrorCode::NotAllowed) => {
                return Err(format!("aetherd refuses the scan: {}", error.message));
            }
            _ => Outcome::Error(EntryError::Scan(ScanError::Io(io::Error::other(format!(
                "refused by aetherd: {}",
                error.message
            ))))),
        },
        _ => Outcome::Error(EntryError::Scan(ScanError::Io(io::Error::other(format!(
            "aetherd sent an answer this version does not know (verdict {})",
            r.verdict
        ))))),
    };
    Ok(Entry { target, outcome })
}

/// The limit named in an answer (`Debug` names of `LimitExceeded`).
fn limit(name: &str) -> Option<LimitExceeded> {
    Some(match name {
        "MaxFileSize" => LimitExceeded::MaxFileSize,
        "MaxScanSize" => LimitExceeded::MaxScanSize,
        "MaxFiles" => LimitExceeded::MaxFiles,
        "MaxRecursion" => LimitExceeded::MaxRecursion,
        "MaxScanTime" => LimitExceeded::MaxScanTime,
        _ => return None,
    })
}

/// Standard input in a private, already unlinked file, so that it can be
/// passed like any other file.
fn spool_stdin() -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let path = dir.join(format!(".aether-stdin-{}-{nanos}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    io::copy(&mut io::stdin().lock(), &mut file)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aether_ipc::msg::{ScanDetection, ScanError as WireError};

    fn target() -> Target {
        Target::Path("f".into())
    }

    #[test]
    fn answers_become_local_entries() {
        let r = ScanResult {
            verdict: ScanVerdict::Infected as i32,
            detections: vec![ScanDetection {
                signature: "S".into(),
                chain: vec!["a.zip".into()],
            }],
            size: 9,
            bytes_scanned: 9,
            file_type: "CL_TYPE_ZIP".into(),
            limit: "MaxFiles".into(),
            ..ScanResult::default()
        };
        match entry(target(), r).unwrap().outcome {
            Outcome::Scanned(s) => {
                assert_eq!(s.signatures, ["S"]);
                assert_eq!(s.chains, [vec!["a.zip".to_string()]]);
                assert_eq!(s.file_type, FileType::from_clamav_name("CL_TYPE_ZIP"));
                assert!(s.file_type.is_some());
                assert_eq!(s.limit, Some(LimitExceeded::MaxFiles));
            }
            other => panic!("{other:?}"),
        }
        let failed = |code: ScanErrorCode, errno: i32| ScanResult {
            verdict: ScanVerdict::Failed as i32,
            error: Some(WireError {
                code: code as i32,
                errno,
                message: "m".into(),
                expected_size: 4,
                actual_size: 1,
            }),
            ..ScanResult::default()
        };
        match entry(target(), failed(ScanErrorCode::Read, EIO))
            .unwrap()
            .outcome
        {
            Outcome::Error(EntryError::Scan(ScanError::Io(e))) => {
                assert_eq!(e.raw_os_error(), Some(EIO))
            }
            other => panic!("{other:?}"),
        }
        match entry(target(), failed(ScanErrorCode::Changed, 0))
            .unwrap()
            .outcome
        {
            Outcome::Error(EntryError::Scan(ScanError::Changed { expected, actual })) => {
                assert_eq!((expected, actual), (4, 1))
            }
            other => panic!("{other:?}"),
        }
        let refused = |code| ScanResult::refused(0, code, "why");
        assert!(matches!(
            entry(target(), refused(ScanErrorCode::NotRegular))
                .unwrap()
                .outcome,
            Outcome::Special
        ));
        assert!(entry(target(), refused(ScanErrorCode::NotAllowed)).is_err());
        assert!(matches!(
            entry(target(), refused(ScanErrorCode::NotReadable))
                .unwrap()
                .outcome,
            Outcome::Error(EntryError::Scan(_))
        ));
        let odd = ScanResult {
            verdict: 99,
            ..ScanResult::default()
        };
        assert!(matches!(
            entry(target(), odd).unwrap().outcome,
            Outcome::Error(_)
        ));
    }

    /// EIO on Linux.
    const EIO: i32 = 5;

    #[test]
    fn no_local_limit_is_no_wish() {
        let mut opts = ScanOptions::default();
        opts.limits.max_scansize = u64::MAX;
        opts.limits.max_scantime = Some(Duration::from_millis(1500));
        let o = request_options(&opts);
        assert_eq!((o.max_scansize, o.max_scantime_ms), (0, 1500));
    }
}
