//! What the journal holds: one [`Record`] per numbered [`Entry`].

use aether_events::{Event, ProcessFound};
use serde::{Deserialize, Serialize};

/// One journal record: the journal's own sequence number, the wall-clock time it was
/// appended, and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The journal's sequence number: one more than the record before it, across
    /// restarts, for as long as the journal file exists. Retention removes the oldest
    /// records, so the first one kept may be above 0.
    pub seq: u64,
    /// When the record was appended, in nanoseconds since the Unix epoch
    /// (`CLOCK_REALTIME`: unlike an event's monotonic `time_ns`, it survives reboots,
    /// which is what a gap across a crash needs).
    pub time_ns: u64,
    /// What the record says.
    pub entry: Entry,
}

/// A record as stored, not decoded: what a replay over IPC sends on without
/// re-encoding. `data` is the JSON form of the entry's payload (see `docs/journal.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRecord {
    /// The journal's sequence number.
    pub seq: u64,
    /// Append time, nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The [`Kind`] code.
    pub kind: u8,
    /// The short name: the event kind (`fork`, `exec`, ...), or the kind's own name.
    pub name: String,
    /// The payload, compact JSON.
    pub data: Vec<u8>,
}

/// The kinds of record, with the codes stored in the `kind` column. Codes never change
/// meaning; new kinds get new codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A sensor event ([`Entry::Event`]).
    Event = 1,
    /// A scan result ([`Entry::Scan`]).
    Scan = 2,
    /// A daemon lifecycle event ([`Entry::Lifecycle`]).
    Lifecycle = 3,
    /// The writer (re)started ([`Entry::WriterStarted`]).
    WriterStarted = 4,
    /// Records that could not be committed ([`Entry::Dropped`]).
    Dropped = 5,
    /// A process running when the daemon looked at `/proc` ([`Entry::Running`]).
    Running = 6,
    /// A request the daemon refused before acting on it ([`Entry::Refused`]).
    Refused = 7,
}

impl Kind {
    /// The kind with this code, if there is one.
    pub fn from_code(code: u8) -> Option<Kind> {
        Some(match code {
            1 => Kind::Event,
            2 => Kind::Scan,
            3 => Kind::Lifecycle,
            4 => Kind::WriterStarted,
            5 => Kind::Dropped,
            6 => Kind::Running,
            7 => Kind::Refused,
            _ => return None,
        })
    }
}

/// What a record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// An event from the process sensor, with the sensor's own `seq` and monotonic
    /// `time_ns` kept as they were.
    Event(Event),
    /// The result of one scan.
    Scan(ScanResult),
    /// Something the daemon did: started, stopped, loaded a database.
    Lifecycle(Lifecycle),
    /// The journal writer opened the journal. Written by [`crate::Journal::open`]
    /// before anything else, so that the time the writer was down is an explicit gap
    /// between `previous_time_ns` and this record's time, never silence.
    WriterStarted(WriterStarted),
    /// Records that were appended but could not be committed (disk full, read-only
    /// file system) and are lost. Written by the first commit that succeeds after.
    Dropped(Dropped),
    /// A process found running by the `/proc` resync a daemon makes when it starts
    /// (after the [`Entry::WriterStarted`] gap record): whatever started or ended while
    /// nothing was recorded, this is what runs now. The resync ends with a
    /// [`Lifecycle::Resynced`].
    Running(ProcessFound),
    /// A request the daemon refused before reading or doing anything: a peer
    /// not allowed to connect, a control command from a peer not allowed to
    /// send it, a descriptor passed for scanning that is not a readable
    /// regular file. Who asked (from the kernel's `SO_PEERCRED`) and why.
    Refused(Refused),
}

impl Entry {
    /// The record kind.
    pub fn kind(&self) -> Kind {
        match self {
            Entry::Event(_) => Kind::Event,
            Entry::Scan(_) => Kind::Scan,
            Entry::Lifecycle(_) => Kind::Lifecycle,
            Entry::WriterStarted(_) => Kind::WriterStarted,
            Entry::Dropped(_) => Kind::Dropped,
            Entry::Running(_) => Kind::Running,
            Entry::Refused(_) => Kind::Refused,
        }
    }

    /// The short name stored beside the kind, for filtering in SQL.
    pub fn name(&self) -> &'static str {
        match self {
            Entry::Event(e) => e.kind_name(),
            Entry::Scan(_) => "scan",
            Entry::Lifecycle(l) => l.name(),
            Entry::WriterStarted(_) => "writer_started",
            Entry::Dropped(_) => "dropped",
            Entry::Running(_) => "running",
            Entry::Refused(_) => "refused",
        }
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            Entry::Event(e) => serde_json::to_vec(e),
            Entry::Scan(s) => serde_json::to_vec(s),
            Entry::Lifecycle(l) => serde_json::to_vec(l),
            Entry::WriterStarted(w) => serde_json::to_vec(w),
            Entry::Dropped(d) => serde_json::to_vec(d),
            Entry::Running(r) => serde_json::to_vec(r),
            Entry::Refused(r) => serde_json::to_vec(r),
        }
    }

    /// Decodes a stored payload of kind `kind`. `None` for an unknown kind code.
    pub fn decode(kind: u8, data: &[u8]) -> Option<Result<Entry, serde_json::Error>> {
        let kind = Kind::from_code(kind)?;
        Some(match kind {
            Kind::Event => serde_json::from_slice(data).map(Entry::Event),
            Kind::Scan => serde_json::from_slice(data).map(Entry::Scan),
            Kind::Lifecycle => serde_json::from_slice(data).map(Entry::Lifecycle),
            Kind::WriterStarted => serde_json::from_slice(data).map(Entry::WriterStarted),
            Kind::Dropped => serde_json::from_slice(data).map(Entry::Dropped),
            Kind::Running => serde_json::from_slice(data).map(Entry::Running),
            Kind::Refused => serde_json::from_slice(data).map(Entry::Refused),
        })
    }
}

/// The result of scanning one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanResult {
    /// What was scanned: a path, or a description such as `stream` for INSTREAM.
    pub target: String,
    /// What the scan found.
    pub verdict: Verdict,
    /// Who asked, when known (a client description such as `uid 1000 pid 4242`).
    pub client: Option<String>,
}

/// What a scan found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing found.
    Clean,
    /// A signature matched.
    Infected {
        /// The signature's name.
        signature: String,
    },
    /// The target could not be scanned.
    Error {
        /// Why.
        message: String,
    },
}

/// A daemon lifecycle event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "lifecycle", rename_all = "snake_case")]
pub enum Lifecycle {
    /// The daemon started.
    Started {
        /// Its version.
        version: String,
    },
    /// The daemon is stopping cleanly. [`crate::Journal::close`] writes it; a
    /// [`WriterStarted`] whose previous record is not this one follows a crash.
    Stopped,
    /// A signature database was loaded and is in use.
    DatabaseLoaded {
        /// What was loaded (path, version, signature count).
        detail: String,
    },
    /// A database failed to load; the previous one stays in use.
    DatabaseFailed {
        /// Why.
        reason: String,
    },
    /// The process sensor is running.
    SensorStarted {
        /// What it runs with (receive buffer, queue).
        detail: String,
    },
    /// The daemon runs without the process sensor.
    SensorUnavailable {
        /// Why (missing `CAP_NET_ADMIN`, not the initial network namespace, turned off).
        reason: String,
    },
    /// The `/proc` resync at start is complete: `processes` [`Entry::Running`]
    /// records precede this one.
    Resynced {
        /// Processes found running.
        processes: u64,
    },
    /// The daemon's sensor subscription fell behind and lost events (they were
    /// published by the sensor but not journaled).
    EventsLost {
        /// How many.
        count: u64,
    },
}

impl Lifecycle {
    fn name(&self) -> &'static str {
        match self {
            Lifecycle::Started { .. } => "started",
            Lifecycle::Stopped => "stopped",
            Lifecycle::DatabaseLoaded { .. } => "database_loaded",
            Lifecycle::DatabaseFailed { .. } => "database_failed",
            Lifecycle::SensorStarted { .. } => "sensor_started",
            Lifecycle::SensorUnavailable { .. } => "sensor_unavailable",
            Lifecycle::Resynced { .. } => "resynced",
            Lifecycle::EventsLost { .. } => "events_lost",
        }
    }
}

/// The writer opened the journal: see [`Entry::WriterStarted`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterStarted {
    /// The last committed record before this one, if the journal had any.
    pub previous_seq: Option<u64>,
    /// Its append time (ns since the Unix epoch): the writer was down from then to this
    /// record's own time.
    pub previous_time_ns: Option<u64>,
    /// True when the previous record was [`Lifecycle::Stopped`]: the last writer
    /// stopped cleanly. False after a crash or `kill -9`, when whatever happened
    /// between `previous_time_ns` and now was not recorded.
    pub clean: bool,
    /// The writing process's id.
    pub pid: u32,
}

/// A refused request: see [`Entry::Refused`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// What was asked: `connect`, `control` (with the command in `reason`), or
    /// `scan`.
    pub request: String,
    /// Why it was refused.
    pub reason: String,
    /// The peer's user id.
    pub uid: u32,
    /// The peer's group id.
    pub gid: u32,
    /// The peer's process id, when the kernel gave one.
    pub pid: Option<i32>,
}

/// Records lost because they could not be committed: see [`Entry::Dropped`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// How many records were lost.
    pub count: u64,
    /// The first error that lost them.
    pub reason: String,
}
