//! The journal writer: one thread owns the journal and appends what the rest of
//! the daemon sends it (sensor events, scan results, lifecycle), committing in
//! batches, and hands each committed record to the IPC subscribers.
//!
//! Why one thread and a channel: SQLite has one writer, and a scan or the sensor
//! must never wait for a disk. Senders only queue; the writer drains everything
//! queued, appends it, and commits it in one transaction, so the batch grows with
//! the load (one record when idle, thousands under a storm). Records are
//! published only after their commit: a subscriber never sees a record that a
//! crash could take back (the `Replay` contract of `aether-ipc`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aether_ipc::Hub;
use aether_ipc::msg::Record as WireRecord;
use aether_journal::{Entry, Journal, JournalError, Lifecycle, Options, RawRecord};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

/// Records queued for the writer at most; past it, senders on blocking threads
/// wait (a scan's result is worth a short wait) and the sensor forwarder counts
/// what it cannot queue as lost.
const QUEUE: usize = 1 << 16;
/// Records appended per transaction at most, so that subscribers see records
/// while a storm goes on.
const BATCH: usize = 8192;
/// How often retention is looked at and the size measured.
const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// Records past the retention limits removed per commit beyond the commit's
/// own (so that the journal gets under its limits, and a quiet writer too).
/// Small steps: a trim costs about 2 us a record, and a step of a few hundred
/// held the next batch for 0.5 ms in a burst after each second.
const TRIM_EXTRA: u64 = 64;

enum Input {
    /// Boxed: the queue's slots are allocated (and touched) at start, and a
    /// boxed entry makes them 16 bytes, not the size of an event.
    Entry(Box<Entry>),
    /// Commit everything queued, write the clean-stop record and end.
    Stop,
}

/// Counters the writer keeps for `aether status`.
#[derive(Default)]
pub struct JournalStats {
    /// The last committed sequence number, plus one (0: none yet).
    pub next_seq: AtomicU64,
    /// Records committed since start.
    pub committed: AtomicU64,
    /// Records lost to failed commits (full disk, read-only) since start.
    pub dropped: AtomicU64,
    /// Bytes used by the journal's pages, measured every second.
    pub used_bytes: AtomicU64,
    /// Records the writer could not take (queue full) and dropped.
    pub refused: AtomicU64,
    /// Whether the last commit failed.
    pub failing: AtomicBool,
}

/// A handle to send records to the writer. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: Sender<Input>,
    pub stats: Arc<JournalStats>,
    path: Arc<PathBuf>,
}

/// The writer thread; [`Writer::stop`] closes the journal cleanly.
pub struct Writer {
    tx: Sender<Input>,
    thread: JoinHandle<()>,
}

/// Where committed records go besides the journal.
pub struct Outlets {
    pub hub: Hub,
    /// The UDP publisher's queue, when one is configured.
    pub udp: Option<tokio::sync::mpsc::Sender<WireRecord>>,
}

impl Recorder {
    /// Opens the journal (which commits its `WriterStarted` gap record) and starts
    /// the writer thread.
    pub fn start(
        path: &Path,
        options: Options,
        outlets: Outlets,
    ) -> Result<(Recorder, Writer), JournalError> {
        let mut journal = Journal::open(path, options)?;
        journal.keep_committed(true);
        // Open committed the WriterStarted gap record before anything could keep it:
        // read it back, so that it is published like every later record.
        let initial: Vec<RawRecord> = match journal.committed_seq() {
            Some(seq) => journal.read_raw_from(seq).collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let stats = Arc::new(JournalStats::default());
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        let thread = {
            let stats = Arc::clone(&stats);
            std::thread::Builder::new()
                .name("aetherd-journal".into())
                .spawn(move || run(journal, initial, rx, outlets, stats))
                .map_err(|source| JournalError::Io {
                    path: path.to_path_buf(),
                    what: "starting the writer thread",
                    source,
                })?
        };
        Ok((
            Recorder {
                tx: tx.clone(),
                stats,
                path: Arc::new(path.to_path_buf()),
            },
            Writer { tx, thread },
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a record, waiting if the queue is full (from blocking threads).
    pub fn record(&self, entry: Entry) {
        if self.tx.send(Input::Entry(Box::new(entry))).is_err() {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues a record unless the queue is full (from async tasks, which must
    /// not wait); a record not queued is counted with the refused ones.
    pub fn try_record(&self, entry: Entry) {
        if self.tx.try_send(Input::Entry(Box::new(entry))).is_err() {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn lifecycle(&self, l: Lifecycle) {
        self.record(Entry::Lifecycle(l));
    }
}

impl Writer {
    /// Commits what is queued, writes the clean-stop record and closes the journal.
    pub fn stop(self) {
        if self.tx.send(Input::Stop).is_ok() {
            let _ = self.thread.join();
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

pub fn wire(raw: RawRecord) -> WireRecord {
    WireRecord {
        seq: raw.seq,
        time_ns: raw.time_ns,
        kind: u32::from(raw.kind),
        name: raw.name,
        data: raw.data,
    }
}

fn run(
    mut journal: Journal,
    initial: Vec<RawRecord>,
    rx: Receiver<Input>,
    outlets: Outlets,
    stats: Arc<JournalStats>,
) {
    let mut last_housekeeping = Instant::now();
    let mut last_error: Option<Instant> = None;
    // At start, retention in full: records past the limits removed, the file
    // shrunk.
    if let Err(e) = journal.enforce_retention(now_ns()) {
        tracing::warn!("journal retention: {e}");
    }
    housekeeping(&mut journal, &stats);
    publish(initial, &outlets, &stats);
    // Records past the retention limits are left: each commit removes up to
    // as many as it adds plus TRIM_EXTRA until none are.
    let mut trimming = false;
    let mut open = true;
    while open {
        // While records past the limits are left, no waiting: a quiet writer
        // removes them TRIM_EXTRA at a time, between whatever comes in.
        let wait = if trimming {
            Duration::ZERO
        } else {
            HOUSEKEEPING
        };
        let first = match rx.recv_timeout(wait) {
            Ok(i) => Some(i),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                open = false;
                None
            }
        };
        let mut n = 0;
        let mut next = first;
        while let Some(input) = next.take() {
            match input {
                Input::Entry(e) => {
                    // An append that fails is a commit that failed (append flushes by
                    // itself every batch): the journal counted it.
                    if let Err(e) = journal.append(*e) {
                        report(&e, &mut last_error);
                    }
                    n += 1;
                }
                Input::Stop => open = false,
            }
            if n >= BATCH && open {
                break;
            }
            next = rx.try_recv().ok();
        }
        match journal.flush() {
            Ok(_) => stats.failing.store(false, Ordering::Relaxed),
            Err(e) => {
                stats.failing.store(true, Ordering::Relaxed);
                report(&e, &mut last_error);
            }
        }
        stats
            .dropped
            .store(journal.dropped_total(), Ordering::Relaxed);
        publish(journal.take_committed(), &outlets, &stats);
        if last_housekeeping.elapsed() >= HOUSEKEEPING {
            last_housekeeping = Instant::now();
            trimming = true;
        }
        if trimming {
            // Bounded: removing a second's worth at once (50,000 records under
            // a storm) held every record queued behind it for 75 ms.
            let bound = n as u64 + TRIM_EXTRA;
            trimming = match journal.trim(now_ns(), bound) {
                // `more` with nothing removed cannot go on: wait for the tick.
                Ok(t) => t.more && t.removed > 0,
                Err(e) => {
                    report(&e, &mut last_error);
                    false
                }
            };
            if !trimming {
                housekeeping(&mut journal, &stats);
            }
        }
    }
    if let Err(e) = journal.close() {
        tracing::error!("closing the journal: {e}");
    }
}

fn publish(records: Vec<RawRecord>, outlets: &Outlets, stats: &JournalStats) {
    let Some(last) = records.last() else { return };
    stats.next_seq.store(last.seq + 1, Ordering::Relaxed);
    stats
        .committed
        .fetch_add(records.len() as u64, Ordering::Relaxed);
    let records: Vec<WireRecord> = records.into_iter().map(wire).collect();
    if let Some(udp) = &outlets.udp {
        // A full queue loses nothing for good: a UDP receiver asks for the
        // numbers it missed, and they are read back from the journal.
        for rec in &records {
            let _ = udp.try_send(rec.clone());
        }
    }
    // One batch per commit: subscribers wake once for it.
    outlets.hub.publish_batch(records);
}

fn housekeeping(journal: &mut Journal, stats: &JournalStats) {
    if let Ok(bytes) = journal.used_bytes() {
        stats.used_bytes.store(bytes, Ordering::Relaxed);
    }
}

/// Logs a journal error, at most once every 10 seconds (a full disk fails every
/// commit).
fn report(e: &JournalError, last: &mut Option<Instant>) {
    if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
        *last = Some(Instant::now());
        tracing::error!("journal: {e}; scanning goes on");
    }
}
