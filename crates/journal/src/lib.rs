/*!
aether's event journal: every sensor event, scan result and daemon lifecycle event,
numbered and kept in a SQLite file, so that a subscriber can replay from any point and
nothing that was committed is lost to a crash.

Why SQLite in WAL mode: a commit is one append to the write-ahead log, readers never
block the writer (an IPC replay can read while the sensor keeps appending), and SQLite's
recovery after a crash at any instant is among the most tested code there is. Appends are
batched: [`Journal::append`] buffers, and [`Journal::flush`] commits the batch in one
transaction, which is what makes hundreds of thousands of records a second possible.

Crash safety is stated in terms of commits. After `kill -9` at any moment and a reopen,
every record whose [`Journal::flush`] returned is there, numbered without a hole; what
was only buffered is gone, and the reopen says so: [`Journal::open`] first writes an
[`Entry::WriterStarted`] naming the last committed record and whether the previous
writer stopped cleanly, so the time the writer was down is an explicit gap, never
silence. With [`Durability::Process`] (the default) that holds for a crash of the
process; [`Durability::Power`] also syncs each commit to the disk, for power loss.

A full disk or a read-only file system is an error of its own ([`JournalError::Full`],
[`JournalError::ReadOnly`]), not a panic: the batch is dropped, the journal stays
usable, and the first commit that succeeds afterwards begins with an [`Entry::Dropped`]
saying how many records were lost. The caller (the daemon) reports it and keeps running.

Brief overview:
- [`Journal`]: the single writer. [`Journal::append`], [`Journal::flush`],
  [`Journal::enforce_retention`] (all at once), [`Journal::trim`] (a bounded step, for
  a writer under load), [`Journal::close`].
- [`Reader`]: a read-only view for other threads; [`Reader::read_from`] iterates from a
  sequence number, [`Reader::read_raw_from`] without decoding.
- [`Record`], [`Entry`]: what is stored.

```
use aether_journal::{Entry, Journal, Lifecycle, Options};

let dir = tempfile::tempdir().unwrap();
let path = dir.path().join("journal.db");
let mut journal = Journal::open(&path, Options::default()).unwrap();
journal.append(Entry::Lifecycle(Lifecycle::Started { version: "0.1.0".into() })).unwrap();
journal.flush().unwrap();
let records: Vec<_> = journal.read_from(0).collect::<Result<_, _>>().unwrap();
// The writer's own start record comes first.
assert!(matches!(records[0].entry, Entry::WriterStarted(_)));
assert!(matches!(records[1].entry, Entry::Lifecycle(Lifecycle::Started { .. })));
```
*/
#![deny(missing_docs)]

mod error;
mod record;
mod store;

pub use error::JournalError;
pub use record::{
    Dropped, Entry, Kind, Lifecycle, RawRecord, Record, Refused, ScanResult, Verdict, WriterStarted,
};
pub use store::{
    Committed, Durability, FromRow, Journal, Options, ReadIter, Reader, Retention, Trimmed,
};
