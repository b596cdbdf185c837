//! The SQLite file: schema, the writer, readers, retention.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::JournalError;
use crate::record::{Dropped, Entry, Lifecycle, RawRecord, Record, WriterStarted};

/// The schema version stored in `PRAGMA user_version`. A file with another non-zero
/// version is refused rather than misread.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    seq     INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    kind    INTEGER NOT NULL,
    name    TEXT    NOT NULL,
    data    BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS records_time ON records(time_ns);
";

/// How far a commit is made durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Survives a crash or `kill -9` of the process (`synchronous=NORMAL` in WAL mode:
    /// the commit is in the kernel's page cache, the log synced at checkpoints).
    #[default]
    Process,
    /// Also survives power loss: each commit is synced to the disk (`synchronous=FULL`).
    Power,
}

/// What to keep. Records are removed oldest first; nothing is removed unless
/// [`Journal::enforce_retention`] is called.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the journal's used pages under this many bytes.
    pub max_bytes: Option<u64>,
    /// Remove records older than this.
    pub max_age: Option<Duration>,
}

/// How the journal is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// [`Journal::append`] commits by itself when this many records are pending.
    pub batch_size: usize,
    /// See [`Durability`].
    pub durability: Durability,
    /// See [`Retention`].
    pub retention: Retention,
    /// A hard limit on the file's size in pages (`PRAGMA max_page_count`); reaching it
    /// is [`JournalError::Full`], like a full disk. `None`: SQLite's default.
    pub max_pages: Option<u32>,
    /// Copy the write-ahead log into the database (checkpoint) on a thread of its
    /// own, once 4 MiB were added to the log or once a second, instead of inside
    /// the commit that crosses SQLite's 1,000-page mark. A checkpoint syncs the
    /// file to the disk: inside a commit it holds the writer, and every record
    /// queued behind it, for as long as the disk takes (tens of milliseconds on a
    /// busy machine). Even on its own thread each sync slows the commits that
    /// overlap it (the file system serializes them), so checkpoints are few.
    pub background_checkpoint: bool,
    /// With [`Options::background_checkpoint`]: once the write-ahead log is this
    /// long and the checkpoint thread has copied nearly all of it, the writer
    /// copies the rest between two commits so that the log starts over from its
    /// beginning (it cannot otherwise under a sustained load, and grew without
    /// end). The log's file is kept at up to this size plus 1 MiB. Default 256 MiB:
    /// the copy holds the writer for its two syncs (about 11 ms on a loaded
    /// 2-core machine), and at 50,000 events a second the log grows by 40 MiB a
    /// second, so this is once every 6 s or so.
    pub wal_restart_bytes: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            batch_size: 1024,
            durability: Durability::Process,
            retention: Retention::default(),
            max_pages: None,
            background_checkpoint: true,
            wal_restart_bytes: 256 << 20,
        }
    }
}

/// The records one [`Journal::flush`] committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The first committed sequence number.
    pub first: u64,
    /// The last committed sequence number.
    pub last: u64,
}

/// What [`Journal::enforce_retention`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Records removed.
    pub removed: u64,
    /// The oldest sequence number kept, if any record is left.
    pub first_kept: Option<u64>,
    /// Records past the limits are left ([`Journal::trim`] stopped at its bound).
    pub more: bool,
}

struct Pending {
    seq: u64,
    time_ns: u64,
    kind: u8,
    name: &'static str,
    data: Vec<u8>,
}

/// The journal's single writer. Not `Sync`: one thread appends; readers on other
/// threads open a [`Reader`].
pub struct Journal {
    conn: Connection,
    path: PathBuf,
    options: Options,
    /// The sequence number the next appended record gets.
    next_seq: u64,
    /// The last committed record, if any.
    committed: Option<u64>,
    pending: Vec<Pending>,
    /// Records lost since the last successful commit, and the first reason.
    dropped: u64,
    dropped_reason: Option<String>,
    dropped_total: u64,
    /// Committed records kept for [`Journal::take_committed`], when asked for.
    keep_committed: bool,
    committed_out: Vec<RawRecord>,
    /// The background checkpointer, when [`Options::background_checkpoint`] is on.
    /// Declared before the lock: it is stopped before the lock is released.
    checkpointer: Option<Checkpointer>,
    /// An exclusive `flock` on the file, held while the writer lives: two writers
    /// would number records from the same point.
    _lock: std::fs::File,
}

/// How often the checkpointer looks at the log.
const CHECKPOINT_POLL: Duration = Duration::from_millis(100);
/// A checkpoint at least this often (when there is anything to copy, it syncs).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// A checkpoint as soon as this many frames (pages) were added to the log
/// since the last one: 4 MiB. A commit of 50 exec events adds about 10 frames
/// (the new leaf pages, the last leaf rewritten, the index and interior pages,
/// the header and the pointer map), so at 50,000 events a second the log grows
/// by about 40 MiB a second and this is about every 100 ms. Small checkpoints
/// are better than large ones: each ends in syncs, and the more there is to
/// sync, the longer the commits overlapping them wait (a checkpoint of 1 s of
/// log held commits for 10 to 120 ms on a loaded 2-core machine, 4 MiB ones 4
/// to 8 ms).
const CHECKPOINT_FRAMES: u64 = 1024;
/// The writer copies the rest of the log itself (to start it over, see
/// [`Options::wal_restart_bytes`]) only when at most this many frames are
/// left (a pass of the checkpoint thread has just ended): its cost is then
/// the two syncs, not the copy. Under a sustained load a checkpoint on another
/// thread never catches up with the writer (the writer commits while it syncs),
/// and SQLite restarts the log only at a write that finds every frame copied:
/// the log grew by 40 MiB a second at 50,000 events a second, 200 MiB in 5 s.
const RESTART_RESIDUAL: u64 = 512;
/// SQLite's page size, which is a frame's payload.
const PAGE_SIZE: u64 = 4096;

thread_local! {
    /// Frames in the log after the last commit on this thread, from SQLite's
    /// WAL hook (a plain `fn` without state: the commit runs on the thread
    /// that owns the journal, which reads this right after it).
    static WAL_FRAMES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn wal_frames_hook(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.with(|f| f.set(u64::try_from(frames).unwrap_or(0)));
    Ok(())
}

/// What the writer and the checkpoint thread share.
#[derive(Default)]
struct LogState {
    /// Frames in the log after the writer's last commit.
    frames: std::sync::atomic::AtomicU64,
    /// Frames copied into the database by the last checkpoint.
    backfilled: std::sync::atomic::AtomicU64,
    /// Held while a checkpoint runs: the thread's and the writer's never overlap.
    checkpointing: std::sync::Mutex<()>,
}

impl LogState {
    /// Frames in the log not yet in the database (as far as known).
    fn behind(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        let frames = self.frames.load(Relaxed);
        let backfilled = self.backfilled.load(Relaxed);
        // Fewer frames than copied: the log was restarted since.
        if frames < backfilled {
            frames
        } else {
            frames - backfilled
        }
    }

    /// Runs a passive checkpoint on `conn` (never waits for the writer or
    /// readers; what it cannot copy now is copied next time) and records how
    /// far it got.
    fn checkpoint(&self, conn: &Connection) -> rusqlite::Result<()> {
        let copied: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(2))?;
        self.backfilled.store(
            u64::try_from(copied).unwrap_or(0),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }
}

/// The thread that checkpoints the write-ahead log; stopped (after a last
/// checkpoint) when dropped.
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    state: std::sync::Arc<LogState>,
    /// Frames past which the writer restarts the log.
    restart_frames: u64,
    /// The writer tries to restart the log again only past this many frames.
    next_restart: u64,
}

impl Checkpointer {
    fn start(path: &Path, restart_bytes: u64) -> Result<Checkpointer, JournalError> {
        let restart_frames = (restart_bytes / PAGE_SIZE).max(1);
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| JournalError::sqlite(path, "opening for checkpoints", 0, e))?;
        let (stop, rx) = std::sync::mpsc::channel::<()>();
        let state = std::sync::Arc::new(LogState::default());
        let thread = {
            let state = std::sync::Arc::clone(&state);
            std::thread::Builder::new()
                .name("journal-checkpoint".into())
                .spawn(move || {
                    let checkpoint = || {
                        if let Ok(_held) = state.checkpointing.lock() {
                            let _ = state.checkpoint(&conn);
                        }
                    };
                    let mut last = std::time::Instant::now();
                    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                        rx.recv_timeout(CHECKPOINT_POLL)
                    {
                        let behind = state.behind();
                        if behind >= CHECKPOINT_FRAMES
                            || (behind > 0 && last.elapsed() >= CHECKPOINT_EVERY)
                        {
                            checkpoint();
                            last = std::time::Instant::now();
                        }
                    }
                    checkpoint();
                })
                .map_err(|source| JournalError::Io {
                    path: path.to_path_buf(),
                    what: "starting the checkpoint thread",
                    source,
                })?
        };
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
            state,
            restart_frames,
            next_restart: restart_frames,
        })
    }

    /// After a commit on the writer's connection: notes the log's length and,
    /// once it is long and the thread has copied nearly all of it, copies the
    /// rest on the writer's connection so that the next commit starts the log
    /// over. Returns whether it checkpointed.
    fn after_commit(&mut self, conn: &Connection) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let frames = WAL_FRAMES.with(|f| f.get());
        self.state.frames.store(frames, Relaxed);
        if frames < self.restart_frames {
            self.next_restart = self.restart_frames;
            return false;
        }
        if frames < self.next_restart {
            return false;
        }
        // Past twice the mark the thread is not keeping up (a slow disk):
        // copy whatever is left, waiting for its pass to end if need be.
        let must = frames >= 2 * self.restart_frames;
        if !must && self.state.behind() > RESTART_RESIDUAL {
            return false;
        }
        let held = if must {
            self.state.checkpointing.lock().ok()
        } else {
            self.state.checkpointing.try_lock().ok()
        };
        let Some(_held) = held else { return false };
        // Copied or not, the next try comes a little later, not after every
        // commit (each try syncs): all copied, the next commit restarts the log,
        // unless a reader is inside it at that moment (SQLite then goes on
        // appending); not all copied, a reader holds an older snapshot.
        let _ = self.state.checkpoint(conn);
        self.next_restart = frames + RESTART_RESIDUAL;
        true
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Tries of a held writer's lock after the first, and the pause between.
const LOCK_ATTEMPTS: u32 = 25;
const LOCK_RETRY: Duration = Duration::from_millis(20);

/// Takes the writer's lock on the journal file (`flock`, which SQLite's own
/// `fcntl` locks do not touch).
fn lock_writer(path: &Path) -> Result<std::fs::File, JournalError> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .open(path)
        .map_err(|source| JournalError::Io {
            path: path.to_path_buf(),
            what: "opening for the writer's lock",
            source,
        })?;
    // A lock just released can still be held for a moment: a process forked
    // by another thread of the last writer's process shares its descriptor
    // until it executes (close-on-exec). So a held lock is tried again for
    // up to half a second; a live writer still holds it then.
    for attempt in 0..=LOCK_ATTEMPTS {
        // SAFETY: flock on a descriptor we own.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            return Ok(file);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(JournalError::Io {
                path: path.to_path_buf(),
                what: "locking for the writer",
                source: e,
            });
        }
        if attempt < LOCK_ATTEMPTS {
            std::thread::sleep(LOCK_RETRY);
        }
    }
    Err(JournalError::InUse {
        path: path.to_path_buf(),
    })
}

/// Nanoseconds since the Unix epoch, now.
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Gives free pages back to the file system. `incremental_vacuum` frees one page per
/// step of its statement, so every row must be stepped through.
fn vacuum(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

fn seq_from_sql(v: i64) -> u64 {
    // Sequence numbers are written from u64 values below 2^63; a negative one can only
    // come from a file someone else wrote, and is read as 0 rather than trusted.
    u64::try_from(v).unwrap_or(0)
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`, and commits an
    /// [`Entry::WriterStarted`] record naming the last record before it.
    pub fn open(path: &Path, options: Options) -> Result<Journal, JournalError> {
        let err = |what, e| JournalError::sqlite(path, what, 0, e);
        let conn = Connection::open(path).map_err(|e| err("opening", e))?;
        // The file exists now (SQLite creates it on open).
        let lock = lock_writer(path)?;
        // auto_vacuum must be chosen before the first table exists; it lets retention
        // give pages back to the file system.
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")
            .map_err(|e| err("setting auto_vacuum", e))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| err("enabling WAL mode", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(JournalError::Corrupt {
                path: path.to_path_buf(),
                detail: format!("SQLite refused WAL mode (journal_mode is {mode})"),
            });
        }
        let sync = match options.durability {
            Durability::Process => "NORMAL",
            Durability::Power => "FULL",
        };
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {sync}; PRAGMA journal_size_limit = {};",
            // A restarted log is written over in place, not cut and grown again.
            options
                .wal_restart_bytes
                .saturating_add(1 << 20)
                .min(i64::MAX as u64)
        ))
        .map_err(|e| err("setting pragmas", e))?;
        if options.background_checkpoint {
            conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")
                .map_err(|e| err("setting pragmas", e))?;
            // After the pragma, which replaces the WAL hook with none.
            conn.wal_hook(Some(wal_frames_hook));
        }
        if let Some(pages) = options.max_pages {
            let _: i64 = conn
                .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                    r.get(0)
                })
                .map_err(|e| err("setting max_page_count", e))?;
        }
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| err("reading the schema version", e))?;
        if version != 0 && version != SCHEMA_VERSION {
            return Err(JournalError::Corrupt {
                path: path.to_path_buf(),
                detail: format!(
                    "schema version {version}, this build reads version {SCHEMA_VERSION}"
                ),
            });
        }
        conn.execute_batch(SCHEMA)
            .map_err(|e| err("creating the schema", e))?;
        conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))
            .map_err(|e| err("setting the schema version", e))?;

        let last: Option<(i64, i64, i64, Vec<u8>)> = conn
            .query_row(
                "SELECT seq, time_ns, kind, data FROM records ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(|e| err("reading the last record", e))?;
        let (previous_seq, previous_time_ns, clean) = match &last {
            None => (None, None, true),
            Some((seq, time, kind, data)) => {
                let clean = u8::try_from(*kind)
                    .ok()
                    .and_then(|k| Entry::decode(k, data))
                    .and_then(Result::ok)
                    == Some(Entry::Lifecycle(Lifecycle::Stopped));
                (Some(seq_from_sql(*seq)), Some(seq_from_sql(*time)), clean)
            }
        };
        let mut journal = Journal {
            conn,
            path: path.to_path_buf(),
            options,
            next_seq: previous_seq.map_or(0, |s| s + 1),
            committed: previous_seq,
            pending: Vec::new(),
            dropped: 0,
            dropped_reason: None,
            dropped_total: 0,
            keep_committed: false,
            committed_out: Vec::new(),
            checkpointer: None,
            _lock: lock,
        };
        journal.append(Entry::WriterStarted(WriterStarted {
            previous_seq,
            previous_time_ns,
            clean,
            pid: std::process::id(),
        }))?;
        journal.flush()?;
        if options.background_checkpoint {
            journal.checkpointer = Some(Checkpointer::start(path, options.wal_restart_bytes)?);
        }
        Ok(journal)
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a record stamped with the current time and returns its sequence
    /// number. The record is only buffered; it is committed by [`Journal::flush`], or
    /// here when [`Options::batch_size`] records are pending (an error then is that
    /// commit's).
    pub fn append(&mut self, entry: Entry) -> Result<u64, JournalError> {
        self.append_at(entry, now_ns())
    }

    /// [`Journal::append`] with an explicit time (nanoseconds since the Unix epoch).
    pub fn append_at(&mut self, entry: Entry, time_ns: u64) -> Result<u64, JournalError> {
        let data = entry.encode().map_err(JournalError::Encode)?;
        let seq = self.next_seq;
        self.pending.push(Pending {
            seq,
            time_ns,
            kind: entry.kind() as u8,
            name: entry.name(),
            data,
        });
        self.next_seq += 1;
        if self.pending.len() >= self.options.batch_size.max(1) {
            self.flush()?;
        }
        Ok(seq)
    }

    /// Records appended but not yet committed.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The last committed sequence number, if any record was ever committed.
    pub fn committed_seq(&self) -> Option<u64> {
        self.committed
    }

    /// Keep each committed record for [`Journal::take_committed`] (off by default):
    /// a daemon publishes records to subscribers only once they are committed,
    /// including those committed by an [`Journal::append`] that flushed by itself.
    pub fn keep_committed(&mut self, on: bool) {
        self.keep_committed = on;
        if !on {
            self.committed_out = Vec::new();
        }
    }

    /// The records committed since the last call, in order, as stored (only with
    /// [`Journal::keep_committed`] on).
    pub fn take_committed(&mut self) -> Vec<RawRecord> {
        std::mem::take(&mut self.committed_out)
    }

    /// Records lost to failed commits since the journal was opened.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// Commits the pending records in one transaction. On error the batch is dropped
    /// (counted, and reported by an [`Entry::Dropped`] at the next successful commit),
    /// the sequence numbers it had are given to the next records, and the journal
    /// stays usable. Returns `None` when nothing was pending.
    pub fn flush(&mut self) -> Result<Option<Committed>, JournalError> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        if self.dropped > 0 {
            // Renumber the batch so that the Dropped record comes first: readers learn
            // of the loss before the records after it.
            let note = Entry::Dropped(Dropped {
                count: self.dropped,
                reason: self.dropped_reason.clone().unwrap_or_default(),
            });
            let data = note.encode().map_err(JournalError::Encode)?;
            let first = self.pending[0].seq;
            let time_ns = self.pending[0].time_ns;
            for p in &mut self.pending {
                p.seq += 1;
            }
            self.pending.insert(
                0,
                Pending {
                    seq: first,
                    time_ns,
                    kind: note.kind() as u8,
                    name: note.name(),
                    data,
                },
            );
            self.next_seq += 1;
        }
        match self.commit_pending() {
            Ok(c) => {
                if let Some(ck) = &mut self.checkpointer {
                    ck.after_commit(&self.conn);
                }
                if self.keep_committed {
                    self.committed_out
                        .extend(self.pending.drain(..).map(|p| RawRecord {
                            seq: p.seq,
                            time_ns: p.time_ns,
                            kind: p.kind,
                            name: p.name.to_string(),
                            data: p.data,
                        }));
                }
                self.pending.clear();
                self.committed = Some(c.last);
                self.dropped = 0;
                self.dropped_reason = None;
                Ok(Some(c))
            }
            Err(e) => {
                let had_note = self.dropped > 0;
                let lost = self.pending.len() as u64 - u64::from(had_note);
                self.dropped += lost;
                self.dropped_total += lost;
                if self.dropped_reason.is_none() {
                    self.dropped_reason = Some(e.to_string());
                }
                self.pending.clear();
                self.next_seq = self.committed.map_or(0, |s| s + 1);
                Err(match e {
                    JournalError::Full { path, what, .. } => JournalError::Full {
                        path,
                        what,
                        dropped: self.dropped,
                    },
                    JournalError::ReadOnly { path, what, .. } => JournalError::ReadOnly {
                        path,
                        what,
                        dropped: self.dropped,
                    },
                    other => other,
                })
            }
        }
    }

    fn commit_pending(&mut self) -> Result<Committed, JournalError> {
        let path = self.path.clone();
        let err = |what, e| JournalError::sqlite(&path, what, 0, e);
        let tx = self
            .conn
            .transaction()
            .map_err(|e| err("beginning a transaction", e))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO records (seq, time_ns, kind, name, data) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(|e| err("preparing the insert", e))?;
            for p in &self.pending {
                insert
                    .execute(params![
                        p.seq as i64,
                        p.time_ns as i64,
                        p.kind,
                        p.name,
                        p.data
                    ])
                    .map_err(|e| err("appending", e))?;
            }
        }
        tx.commit().map_err(|e| err("committing", e))?;
        let first = self.pending.first().map_or(0, |p| p.seq);
        let last = self.pending.last().map_or(0, |p| p.seq);
        Ok(Committed { first, last })
    }

    /// Removes records past the configured [`Retention`], oldest first, measuring age
    /// against `now_ns` (ns since the Unix epoch), and gives the freed pages back to
    /// the file system. The newest record is never removed, so the sequence numbers go
    /// on from it after a restart.
    pub fn enforce_retention(&mut self, now_ns: u64) -> Result<Trimmed, JournalError> {
        let path = self.path.clone();
        let err = |what, e| JournalError::sqlite(&path, what, 0, e);
        let Some(newest) = self.committed else {
            return Ok(Trimmed::default());
        };
        let mut removed = 0u64;
        if let Some(age) = self.options.retention.max_age {
            let cutoff = now_ns.saturating_sub(u64::try_from(age.as_nanos()).unwrap_or(u64::MAX));
            removed += self
                .conn
                .execute(
                    "DELETE FROM records WHERE time_ns < ?1 AND seq < ?2",
                    params![cutoff as i64, newest as i64],
                )
                .map_err(|e| err("removing old records", e))? as u64;
        }
        if let Some(max) = self.options.retention.max_bytes {
            // Remove a share of the oldest records proportional to the excess, a few
            // rounds at most: page accounting is not exact per record.
            for _ in 0..16 {
                let used = self.used_bytes()?;
                if used <= max {
                    break;
                }
                // Numbering has no holes: the count is the span (count(*) would read
                // the whole table, a second for a 1 GiB journal).
                let first = self.first_seq()?;
                let count = first.map_or(0, |f| (newest as i64).saturating_sub(f) + 1);
                let (Some(first), true) = (first, count > 1) else {
                    break;
                };
                let share = (used - max) as f64 / used as f64;
                let n = ((count as f64 * share).ceil() as i64).clamp(1, count - 1);
                removed += self
                    .conn
                    .execute(
                        "DELETE FROM records WHERE seq < ?1 AND seq < ?2",
                        params![first + n, newest as i64],
                    )
                    .map_err(|e| err("removing records over the size limit", e))?
                    as u64;
                vacuum(&self.conn).map_err(|e| err("vacuuming", e))?;
            }
        }
        if removed > 0 {
            vacuum(&self.conn).map_err(|e| err("vacuuming", e))?;
            // Not while the checkpoint thread runs one (this connection would
            // wait for it in SQLite's busy handler, sleeping in steps).
            let _held = self
                .checkpointer
                .as_ref()
                .and_then(|c| c.state.checkpointing.lock().ok());
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(|e| err("checkpointing", e))?;
        }
        let first_kept: Option<i64> = self
            .conn
            .query_row("SELECT min(seq) FROM records", [], |r| r.get(0))
            .map_err(|e| err("reading the first record", e))?;
        Ok(Trimmed {
            removed,
            first_kept: first_kept.map(seq_from_sql),
            more: false,
        })
    }

    /// The oldest record's sequence number, as stored.
    fn first_seq(&self) -> Result<Option<i64>, JournalError> {
        self.conn
            .prepare_cached("SELECT min(seq) FROM records")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(|e| JournalError::sqlite(&self.path, "reading the first record", 0, e))
    }

    /// Removes at most `max` of the oldest records past the configured
    /// [`Retention`], in one transaction, and says whether more are past it
    /// ([`Trimmed::more`]). Unlike [`Journal::enforce_retention`] it neither gives
    /// pages back to the file system nor checkpoints: the freed pages take the
    /// next records, so the file stops growing at the limit. A writer under a
    /// sustained load calls it after each commit with what it committed and a
    /// little more, so that retention keeps pace with the records coming in at a
    /// small cost per commit: removing a second's worth at once (50,000 records)
    /// held the writer, and every record queued behind it, for 75 ms.
    pub fn trim(&mut self, now_ns: u64, max: u64) -> Result<Trimmed, JournalError> {
        let path = self.path.clone();
        let err = |what, e| JournalError::sqlite(&path, what, 0, e);
        let (Some(newest), Some(_)) = (self.committed, self.first_seq()?) else {
            return Ok(Trimmed::default());
        };
        // Never the newest: numbering goes on from it after a restart.
        let newest = newest.min(i64::MAX as u64) as i64;
        let limit = max.min(i64::MAX as u64) as i64;
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| err("beginning a transaction", e))?;
        let mut removed = 0u64;
        let mut more = false;
        if let Some(age) = self.options.retention.max_age {
            let cutoff = now_ns.saturating_sub(u64::try_from(age.as_nanos()).unwrap_or(u64::MAX));
            let cutoff = cutoff.min(i64::MAX as u64) as i64;
            // The oldest by time (the index), not by number: a record stamped
            // later by a clock set back must not hold back those behind it.
            removed += self
                .conn
                .prepare_cached(
                    "DELETE FROM records WHERE seq IN (SELECT seq FROM records \
                     WHERE time_ns < ?1 AND seq < ?2 ORDER BY time_ns LIMIT ?3)",
                )
                .and_then(|mut st| st.execute(params![cutoff, newest, limit]))
                .map_err(|e| err("removing old records", e))? as u64;
            more |= self
                .conn
                .prepare_cached("SELECT 1 FROM records WHERE time_ns < ?1 AND seq < ?2 LIMIT 1")
                .and_then(|mut st| st.query_row(params![cutoff, newest], |_| Ok(())).optional())
                .map_err(|e| err("looking for old records", e))?
                .is_some();
        }
        if let Some(max_bytes) = self.options.retention.max_bytes {
            let used = self.used_bytes()?;
            if used > max_bytes {
                let first = self.first_seq()?.unwrap_or(newest);
                let count = newest.saturating_sub(first) + 1;
                let share = (used - max_bytes) as f64 / used as f64;
                let n = ((count as f64 * share).ceil() as i64).clamp(1, count.max(1));
                let upto = first.saturating_add(n.min(limit)).min(newest);
                removed += self
                    .conn
                    .prepare_cached("DELETE FROM records WHERE seq < ?1")
                    .and_then(|mut st| st.execute(params![upto]))
                    .map_err(|e| err("removing records over the size limit", e))?
                    as u64;
                more |= upto < newest && self.used_bytes()? > max_bytes;
            }
        }
        tx.commit().map_err(|e| err("committing", e))?;
        Ok(Trimmed {
            removed,
            first_kept: self.first_seq()?.map(seq_from_sql),
            more,
        })
    }

    /// Bytes in use by the journal's pages (the file may be larger by its free pages
    /// and the write-ahead log).
    pub fn used_bytes(&self) -> Result<u64, JournalError> {
        let err = |what, e| JournalError::sqlite(&self.path, what, 0, e);
        // Cached: a writer trimming after each commit asks twice a commit.
        let q = |pragma: &str| -> Result<i64, JournalError> {
            self.conn
                .prepare_cached(pragma)
                .and_then(|mut st| st.query_row([], |r| r.get(0)))
                .map_err(|e| err("reading page counts", e))
        };
        let pages = q("PRAGMA page_count")? - q("PRAGMA freelist_count")?;
        Ok(u64::try_from(pages * q("PRAGMA page_size")?).unwrap_or(0))
    }

    /// Commits a [`Lifecycle::Stopped`] record after everything pending, so that the
    /// next [`Journal::open`] knows this writer stopped cleanly.
    pub fn close(mut self) -> Result<(), JournalError> {
        self.append(Entry::Lifecycle(Lifecycle::Stopped))?;
        self.flush()?;
        Ok(())
    }

    /// Iterates over the committed records from `seq` on (from the first kept one if
    /// `seq` was removed by retention).
    pub fn read_from(&self, seq: u64) -> ReadIter<'_, Record> {
        ReadIter::new(&self.conn, &self.path, seq)
    }

    /// Iterates over the committed records from `seq` on, undecoded.
    pub fn read_raw_from(&self, seq: u64) -> ReadIter<'_, RawRecord> {
        ReadIter::new(&self.conn, &self.path, seq)
    }
}

/// A read-only view of a journal, for threads other than the writer's. It sees each
/// commit whole, as soon as it is made.
pub struct Reader {
    conn: Connection,
    path: PathBuf,
}

impl Reader {
    /// Opens the journal at `path` for reading. It must exist.
    pub fn open(path: &Path) -> Result<Reader, JournalError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| JournalError::sqlite(path, "opening for reading", 0, e))?;
        Ok(Reader {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Iterates over the committed records from `seq` on.
    pub fn read_from(&self, seq: u64) -> ReadIter<'_, Record> {
        ReadIter::new(&self.conn, &self.path, seq)
    }

    /// Iterates over the committed records from `seq` on, undecoded.
    pub fn read_raw_from(&self, seq: u64) -> ReadIter<'_, RawRecord> {
        ReadIter::new(&self.conn, &self.path, seq)
    }

    /// The last committed sequence number, if any.
    pub fn last_seq(&self) -> Result<Option<u64>, JournalError> {
        let v: Option<i64> = self
            .conn
            .query_row("SELECT max(seq) FROM records", [], |r| r.get(0))
            .map_err(|e| JournalError::sqlite(&self.path, "reading the last record", 0, e))?;
        Ok(v.map(seq_from_sql))
    }
}

/// What a [`ReadIter`] yields: a [`Record`] or a [`RawRecord`].
pub trait FromRow: Sized {
    #[doc(hidden)]
    fn from_raw(raw: RawRecord, path: &Path) -> Result<Self, JournalError>;
}

impl FromRow for RawRecord {
    fn from_raw(raw: RawRecord, _: &Path) -> Result<RawRecord, JournalError> {
        Ok(raw)
    }
}

impl FromRow for Record {
    fn from_raw(raw: RawRecord, path: &Path) -> Result<Record, JournalError> {
        let bad = |detail: String| JournalError::BadRecord {
            path: path.to_path_buf(),
            seq: raw.seq,
            detail,
        };
        let entry = match Entry::decode(raw.kind, &raw.data) {
            None => return Err(bad(format!("unknown record kind {}", raw.kind))),
            Some(Err(e)) => return Err(bad(e.to_string())),
            Some(Ok(entry)) => entry,
        };
        Ok(Record {
            seq: raw.seq,
            time_ns: raw.time_ns,
            entry,
        })
    }
}

/// Records in sequence order, read a page at a time so that no statement stays open
/// between pages (a long replay does not hold back the writer's checkpoints).
/// A record that cannot be decoded is an `Err` item; iteration goes on after it.
pub struct ReadIter<'a, T> {
    conn: &'a Connection,
    path: &'a Path,
    next: u64,
    page: VecDeque<RawRecord>,
    done: bool,
    _t: std::marker::PhantomData<T>,
}

const PAGE: i64 = 512;

impl<'a, T: FromRow> ReadIter<'a, T> {
    fn new(conn: &'a Connection, path: &'a Path, from: u64) -> ReadIter<'a, T> {
        ReadIter {
            conn,
            path,
            next: from,
            page: VecDeque::new(),
            done: false,
            _t: std::marker::PhantomData,
        }
    }

    fn fill(&mut self) -> Result<(), JournalError> {
        let err = |e| JournalError::sqlite(self.path, "reading records", 0, e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, time_ns, kind, name, data FROM records WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![self.next.min(i64::MAX as u64) as i64, PAGE], |r| {
                let kind: i64 = r.get(2)?;
                Ok(RawRecord {
                    seq: seq_from_sql(r.get(0)?),
                    time_ns: seq_from_sql(r.get(1)?),
                    kind: u8::try_from(kind).unwrap_or(0),
                    name: r.get(3)?,
                    data: r.get(4)?,
                })
            })
            .map_err(err)?;
        for row in rows {
            self.page.push_back(row.map_err(err)?);
        }
        if self.page.len() < PAGE as usize {
            self.done = true;
        }
        Ok(())
    }
}

impl<T: FromRow> Iterator for ReadIter<'_, T> {
    type Item = Result<T, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty()
            && !self.done
            && let Err(e) = self.fill()
        {
            self.done = true;
            return Some(Err(e));
        }
        let raw = self.page.pop_front()?;
        self.next = raw.seq.saturating_add(1);
        Some(T::from_raw(raw, self.path))
    }
}
