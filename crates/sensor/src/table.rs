//! The sensor's table of live processes, and the comparison with a `/proc` snapshot
//! that a resync makes.

use std::collections::{HashMap, HashSet};

use aether_events::ProcessKey;

use crate::procfs::Stat;

/// What the sensor knows of one live process.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Its key.
    pub key: ProcessKey,
    /// True when `key.start_time` was read from `/proc`; false when it was derived
    /// from the fork event's timestamp because the process was gone before it could
    /// be read (then it may be one tick early or late, see [`Entry::same_start`]).
    pub exact: bool,
    /// Parent process id as last known.
    pub ppid: Option<u32>,
    /// Real uid as last known.
    pub uid: Option<u32>,
    /// Executable as last read.
    pub exe: Option<String>,
    /// Live thread ids, main thread included.
    pub threads: HashSet<u32>,
    /// When it entered the table (see [`Table::serial`]).
    pub serial: u64,
}

impl Entry {
    /// Whether a process with `start_time` is this one. A derived start time is at
    /// most one tick off, and no PID comes back within one tick (the kernel hands
    /// PIDs out cyclically, so reuse needs a full turn of `pid_max`).
    pub fn same_start(&self, start_time: u64) -> bool {
        self.key.start_time == start_time
            || (!self.exact && self.key.start_time.abs_diff(start_time) <= 1)
    }
}

/// Live processes by PID.
#[derive(Debug, Default)]
pub struct Table {
    map: HashMap<u32, Entry>,
    next_serial: u64,
}

impl Table {
    /// An empty table.
    pub fn new() -> Table {
        Table::default()
    }

    /// A counter that increases with every insertion: entries inserted after a
    /// snapshot have a serial at least the value read before it.
    pub fn serial(&self) -> u64 {
        self.next_serial
    }

    /// Inserts (or replaces) the entry for `key.pid`.
    pub fn insert(&mut self, mut entry: Entry) {
        entry.serial = self.next_serial;
        self.next_serial += 1;
        self.map.insert(entry.key.pid, entry);
    }

    /// The entry for `pid`.
    pub fn get(&self, pid: u32) -> Option<&Entry> {
        self.map.get(&pid)
    }

    /// The entry for `pid`, to change.
    pub fn get_mut(&mut self, pid: u32) -> Option<&mut Entry> {
        self.map.get_mut(&pid)
    }

    /// Removes and returns the entry for `pid`.
    pub fn remove(&mut self, pid: u32) -> Option<Entry> {
        self.map.remove(&pid)
    }

    /// How many processes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// All entries.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.map.values()
    }
}

/// What a resync must report.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Running in the snapshot, unknown to the table: PIDs and stats.
    pub found: Vec<(u32, Stat)>,
    /// In the table since before the snapshot, not running in it: PIDs.
    pub vanished: Vec<u32>,
}

/// Compares the table with a snapshot of `/proc` taken when the table's serial was
/// `snapshot_serial`, after every event sent before the snapshot was applied to the
/// table (the caller ensures that with a marker event, see `processor.rs`).
///
/// - A table entry from before the snapshot that the snapshot lacks (or holds with
///   another start time) ended unseen.
/// - A snapshot process the table lacks started unseen, unless it exited since the
///   snapshot or shortly before (`exited(pid, start)`: its exit was seen while
///   `/proc` still listed it) or was
///   already a zombie (it ended; its exit was seen or reported as loss).
pub fn diff(
    table: &Table,
    snapshot: &HashMap<u32, Stat>,
    snapshot_serial: u64,
    exited: impl Fn(u32, u64) -> bool,
) -> Diff {
    let mut out = Diff::default();
    for e in table.iter() {
        if e.serial >= snapshot_serial {
            continue;
        }
        let present = snapshot
            .get(&e.key.pid)
            .is_some_and(|st| e.same_start(st.start_time));
        if !present {
            out.vanished.push(e.key.pid);
        }
    }
    for (&pid, st) in snapshot {
        if st.state == b'Z' || st.state == b'X' || exited(pid, st.start_time) {
            continue;
        }
        let known = table.get(pid).is_some_and(|e| e.same_start(st.start_time));
        if !known {
            out.found.push((pid, st.clone()));
        }
    }
    out.vanished.sort_unstable();
    out.found.sort_unstable_by_key(|(pid, _)| *pid);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aether_events::BootId;

    fn entry(pid: u32, start: u64, exact: bool) -> Entry {
        Entry {
            key: ProcessKey {
                boot_id: BootId::default(),
                pid,
                start_time: start,
            },
            exact,
            ppid: None,
            uid: None,
            exe: None,
            threads: HashSet::from([pid]),
            serial: 0,
        }
    }

    fn st(start: u64, state: u8) -> Stat {
        Stat {
            state,
            ppid: 1,
            start_time: start,
        }
    }

    #[test]
    fn diff_finds_started_and_ended_unseen() {
        let mut t = Table::new();
        t.insert(entry(10, 100, true)); // still running
        t.insert(entry(11, 100, true)); // ended unseen
        t.insert(entry(12, 100, true)); // PID reused: old ended, new found
        let serial = t.serial();
        t.insert(entry(13, 200, true)); // forked after the snapshot: not judged
        let snap = HashMap::from([
            (10, st(100, b'S')),
            (12, st(150, b'S')),
            (20, st(160, b'R')), // started unseen
            (21, st(160, b'Z')), // zombie: ended, not "found"
            (22, st(160, b'S')), // exited after the snapshot, exit seen
        ]);
        let d = diff(&t, &snap, serial, |pid, _| pid == 22);
        assert_eq!(d.vanished, vec![11, 12]);
        assert_eq!(
            d.found.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            vec![12, 20]
        );
    }

    #[test]
    fn a_derived_start_time_matches_within_one_tick() {
        let mut t = Table::new();
        t.insert(entry(10, 100, false));
        t.insert(entry(11, 100, true));
        let serial = t.serial();
        let snap = HashMap::from([(10, st(101, b'S')), (11, st(101, b'S'))]);
        let d = diff(&t, &snap, serial, |_, _| false);
        assert_eq!(d.vanished, vec![11]);
        assert_eq!(
            d.found.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            vec![11]
        );
    }
}
