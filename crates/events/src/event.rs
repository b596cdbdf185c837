//! The event types. Their serde form is the JSON schema of `aether monitor --json`,
//! documented in `docs/events.md`; change both together.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The kernel's boot id (`/proc/sys/kernel/random/boot_id`), a random UUID drawn at
/// each boot. It makes a [`ProcessKey`] unique across reboots, where PIDs and start
/// times repeat.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct BootId(pub [u8; 16]);

impl BootId {
    /// Parses the kernel's text form, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`
    /// (surrounding whitespace allowed). Returns `None` for anything else.
    pub fn parse(text: &str) -> Option<BootId> {
        let text = text.trim();
        let bytes = text.as_bytes();
        if bytes.len() != 36 {
            return None;
        }
        let mut out = [0u8; 16];
        let mut nibbles = 0usize;
        for (i, &b) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if b != b'-' {
                    return None;
                }
                continue;
            }
            let v = (b as char).to_digit(16)? as u8;
            let slot = out.get_mut(nibbles / 2)?;
            *slot = (*slot << 4) | v;
            nibbles += 1;
        }
        (nibbles == 32).then_some(BootId(out))
    }
}

impl fmt::Display for BootId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for BootId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BootId({self})")
    }
}

impl Serialize for BootId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BootId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        BootId::parse(&text).ok_or_else(|| serde::de::Error::custom("invalid boot id"))
    }
}

/// Names one process, uniquely, for as long as the machine runs and beyond.
///
/// A PID alone is reused as soon as the kernel wraps around (`pid_max` is 32768 on
/// many machines), so details read for PID 1234 a moment too late may belong to a
/// different program. The start time tells two holders of one PID apart, and the
/// boot id tells apart two boots.
///
/// `start_time` is the process's start time in clock ticks since boot, exactly as
/// field 22 of `/proc/<pid>/stat` shows it (what `ps` uses), so that any other tool
/// reading `/proc` computes the same key for the same process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProcessKey {
    /// The boot this process ran in.
    pub boot_id: BootId,
    /// The process id (thread group id) in the initial PID namespace.
    pub pid: u32,
    /// Clock ticks since boot at which the process was created (`/proc/<pid>/stat` field 22).
    pub start_time: u64,
}

impl fmt::Display for ProcessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.pid, self.start_time)
    }
}

/// One event, numbered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// aether's sequence number: 0 for the first event a sensor publishes, then +1 for
    /// each event, with no gaps.
    pub seq: u64,
    /// When it happened, in nanoseconds of `CLOCK_MONOTONIC`: the kernel's own
    /// timestamp for kernel events, the time aether noticed for the events it makes
    /// (loss, resync).
    pub time_ns: u64,
    /// The CPU that reported the event, when the kernel said.
    pub cpu: Option<u32>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// The task the event is about, when it is about one.
    pub fn task(&self) -> Option<&Task> {
        use EventKind::*;
        match &self.kind {
            Fork(e) => Some(&e.task),
            Exec(e) => Some(&e.task),
            Exit(e) => Some(&e.task),
            Uid(e) | Gid(e) => Some(&e.task),
            Sid(e) => Some(&e.task),
            Ptrace(e) => Some(&e.task),
            Comm(e) => Some(&e.task),
            Coredump(e) => Some(&e.task),
            ProcessFound(e) => Some(&e.task),
            ProcessVanished(e) => Some(&e.task),
            ProcessSnapshot(e) => Some(&e.task),
            Loss(_) | Resync(_) | Malformed(_) | SnapshotBegin(_) | SnapshotEnd(_) => None,
        }
    }

    /// The task the event is about, for the publisher to amend before publishing.
    pub fn task_mut(&mut self) -> Option<&mut Task> {
        use EventKind::*;
        match &mut self.kind {
            Fork(e) => Some(&mut e.task),
            Exec(e) => Some(&mut e.task),
            Exit(e) => Some(&mut e.task),
            Uid(e) | Gid(e) => Some(&mut e.task),
            Sid(e) => Some(&mut e.task),
            Ptrace(e) => Some(&mut e.task),
            Comm(e) => Some(&mut e.task),
            Coredump(e) => Some(&mut e.task),
            ProcessFound(e) => Some(&mut e.task),
            ProcessVanished(e) => Some(&mut e.task),
            ProcessSnapshot(e) => Some(&mut e.task),
            Loss(_) | Resync(_) | Malformed(_) | SnapshotBegin(_) | SnapshotEnd(_) => None,
        }
    }

    /// The short name of the kind, as in the JSON `kind` field.
    pub fn kind_name(&self) -> &'static str {
        self.kind.name()
    }
}

/// What an [`Event`] reports. Kernel events first, then the sensor's own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A new process or a new thread.
    Fork(Fork),
    /// A task replaced its program image (`execve`).
    Exec(Exec),
    /// A task exited.
    Exit(Exit),
    /// Real or effective user id changed.
    Uid(IdChange),
    /// Real or effective group id changed.
    Gid(IdChange),
    /// The process started a new session (`setsid`).
    Sid(Sid),
    /// A tracer attached to or detached from the task.
    Ptrace(Ptrace),
    /// The task's name (`comm`) changed.
    Comm(Comm),
    /// The task is dumping core.
    Coredump(Coredump),
    /// The sensor lost events: they will not be delivered. A resync follows.
    Loss(Loss),
    /// A resync found a process the event stream never announced (its fork was lost).
    ProcessFound(ProcessFound),
    /// A resync found that a known process ended without its exit being seen.
    ProcessVanished(ProcessVanished),
    /// A resync after loss finished; the sensor's process table matches `/proc` again.
    Resync(Resync),
    /// The kernel (or something posing as it) sent bytes the decoder could not read.
    Malformed(Malformed),
    /// A snapshot of every running process begins, asked for by a consumer that
    /// lost track (a daemon after a restart or after falling behind): its
    /// `processes` [`EventKind::ProcessSnapshot`] events follow at once, then an
    /// [`EventKind::SnapshotEnd`], with no other event between them.
    SnapshotBegin(SnapshotBegin),
    /// One running process of a snapshot, as the sensor's table holds it after
    /// every event numbered before the snapshot.
    ProcessSnapshot(ProcessSnapshot),
    /// The end of a snapshot.
    SnapshotEnd(SnapshotEnd),
}

impl EventKind {
    /// The short name of the kind, as in the JSON `kind` field.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Fork(_) => "fork",
            EventKind::Exec(_) => "exec",
            EventKind::Exit(_) => "exit",
            EventKind::Uid(_) => "uid",
            EventKind::Gid(_) => "gid",
            EventKind::Sid(_) => "sid",
            EventKind::Ptrace(_) => "ptrace",
            EventKind::Comm(_) => "comm",
            EventKind::Coredump(_) => "coredump",
            EventKind::Loss(_) => "loss",
            EventKind::ProcessFound(_) => "process_found",
            EventKind::ProcessVanished(_) => "process_vanished",
            EventKind::Resync(_) => "resync",
            EventKind::Malformed(_) => "malformed",
            EventKind::SnapshotBegin(_) => "snapshot_begin",
            EventKind::ProcessSnapshot(_) => "process_snapshot",
            EventKind::SnapshotEnd(_) => "snapshot_end",
        }
    }

    /// Every kind name, for argument checking and documentation.
    pub const NAMES: &'static [&'static str] = &[
        "fork",
        "exec",
        "exit",
        "uid",
        "gid",
        "sid",
        "ptrace",
        "comm",
        "coredump",
        "loss",
        "process_found",
        "process_vanished",
        "resync",
        "malformed",
        "snapshot_begin",
        "process_snapshot",
        "snapshot_end",
    ];
}

/// The task an event is about, and what the sensor knows of its process.
///
/// `pid` is the process (thread group) id, `tid` the thread's own id; they are equal
/// for a process's main thread.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Process id (TGID).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Parent process id as last known: from the fork, the exit, or `/proc` when the
    /// sensor read it. The kernel does not report re-parenting as an event.
    pub ppid: Option<u32>,
    /// The process's key. `None` only when the process was unknown to the sensor and
    /// had already gone when it looked (possible only around a loss).
    pub process: Option<ProcessKey>,
    /// Real user id as last known (from `/proc`, or a uid event).
    pub uid: Option<u32>,
    /// The program the process runs, as last read from `/proc/<pid>/exe`.
    pub exe: Option<String>,
}

/// Process creation or thread creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForkKind {
    /// A new thread group: a new process.
    Process,
    /// A new thread in an existing thread group.
    Thread,
}

/// A fork: `task` is the child.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fork {
    /// The new task.
    #[serde(flatten)]
    pub task: Task,
    /// Process or thread.
    pub fork_kind: ForkKind,
    /// The creating process's id (TGID).
    pub parent_pid: u32,
    /// The creating thread's id.
    pub parent_tid: u32,
    /// The creating process's key, when known.
    pub parent: Option<ProcessKey>,
}

/// Why a field that should be there is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingReason {
    /// The process had exited (or was a zombie) before `/proc` could be read.
    Gone,
    /// The PID now belongs to a different process (start time differs): nothing was
    /// taken from it.
    Reused,
    /// The process ran another `execve` before its details could be read, so what
    /// `/proc` shows belongs to the later image.
    Superseded,
    /// `/proc` refused the read (permissions).
    Denied,
    /// Another error reading `/proc`.
    Unreadable,
}

/// Details read from `/proc/<pid>` for an exec or a process found by a resync. Every
/// field is `None` when it could not be read; `missing` says why.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessDetails {
    /// Arguments, `argv[0]` first (bytes that are not UTF-8 are replaced by U+FFFD).
    pub argv: Option<Vec<String>>,
    /// Working directory.
    pub cwd: Option<String>,
    /// Effective user id.
    pub euid: Option<u32>,
    /// Why some fields are `None`, if any are.
    pub missing: Option<MissingReason>,
}

/// An exec. `task.exe` and `task.uid` are those read right after this exec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exec {
    /// The task that executed (after exec it is the process's main thread).
    #[serde(flatten)]
    pub task: Task,
    /// What `/proc` showed for the new image.
    #[serde(flatten)]
    pub details: ProcessDetails,
}

/// An exit of one task (thread or main thread).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// The task that exited.
    #[serde(flatten)]
    pub task: Task,
    /// The kernel's raw exit code (the wait status: `status << 8`, or the signal
    /// number with `0x80` for a core dump).
    pub exit_code: u32,
    /// The exit status passed to `exit()`, when the task exited normally.
    pub status: Option<i32>,
    /// The signal that killed the task, when one did.
    pub signal: Option<i32>,
    /// Whether a core was dumped.
    pub core_dumped: bool,
    /// The signal the parent is sent (`SIGCHLD` for processes, -1 for threads).
    pub exit_signal: i32,
    /// True when this was the last task of the process: the process is gone.
    pub process_ended: bool,
}

impl Exit {
    /// Splits the kernel's raw exit code into (status, signal, core dumped).
    pub fn decode_code(exit_code: u32) -> (Option<i32>, Option<i32>, bool) {
        let sig = exit_code & 0x7f;
        if sig == 0 {
            (Some(((exit_code >> 8) & 0xff) as i32), None, false)
        } else {
            (None, Some(sig as i32), exit_code & 0x80 != 0)
        }
    }
}

/// A change of user or group ids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdChange {
    /// The task whose credentials changed.
    #[serde(flatten)]
    pub task: Task,
    /// New real id.
    pub real: u32,
    /// New effective id.
    pub effective: u32,
}

/// A new session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sid {
    /// The session leader.
    #[serde(flatten)]
    pub task: Task,
}

/// A ptrace attach or detach.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ptrace {
    /// The traced task.
    #[serde(flatten)]
    pub task: Task,
    /// True for attach, false for detach.
    pub attached: bool,
    /// The tracer's process id (0 on detach).
    pub tracer_pid: u32,
    /// The tracer's thread id (0 on detach).
    pub tracer_tid: u32,
}

/// A change of a task's name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comm {
    /// The renamed task.
    #[serde(flatten)]
    pub task: Task,
    /// The new name (at most 15 bytes, as the kernel truncates it).
    pub comm: String,
}

/// A core dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coredump {
    /// The dumping task.
    #[serde(flatten)]
    pub task: Task,
}

/// Where events were lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossCause {
    /// The socket's receive buffer overflowed (`ENOBUFS`): the kernel dropped
    /// messages. How many is learned from the sequence gaps that follow.
    KernelOverrun,
    /// A gap in one CPU's connector sequence numbers: exactly `count` messages from
    /// that CPU never reached the socket.
    SequenceGap,
    /// The sensor's own queue between reader and processor was full: exactly `count`
    /// messages were dropped (of any CPU).
    QueueOverflow,
}

/// Events that will never be delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loss {
    /// Where they were lost.
    pub cause: LossCause,
    /// How many, when known (not known for `kernel_overrun` alone).
    pub count: Option<u64>,
    /// The CPU whose events were lost, when known (`sequence_gap`).
    pub lost_cpu: Option<u32>,
}

/// A process a resync found running that the stream never announced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessFound {
    /// Its main thread.
    #[serde(flatten)]
    pub task: Task,
    /// What `/proc` showed.
    #[serde(flatten)]
    pub details: ProcessDetails,
}

/// A process that a resync found gone, whose exit was never seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessVanished {
    /// Its main thread, as last known.
    #[serde(flatten)]
    pub task: Task,
}

/// The end of a resync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resync {
    /// Processes found running unannounced.
    pub found: u64,
    /// Processes found gone unannounced.
    pub vanished: u64,
    /// Processes in the table after the resync.
    pub processes: u64,
}

/// The start of a snapshot: see [`EventKind::SnapshotBegin`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotBegin {
    /// The snapshot's number, as [`crate::SnapshotEnd`] and each process repeat it:
    /// 1 for a sensor's first snapshot, then one more for each.
    pub snapshot: u64,
    /// How many [`EventKind::ProcessSnapshot`] events follow.
    pub processes: u64,
}

/// One process of a snapshot: see [`EventKind::ProcessSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSnapshot {
    /// The snapshot it belongs to.
    pub snapshot: u64,
    /// Its place in the snapshot, from 0; processes come in ascending pid order.
    pub index: u64,
    /// Its main thread, as the sensor's table holds it.
    #[serde(flatten)]
    pub task: Task,
    /// What `/proc` showed of it while the snapshot was taken (`missing` says
    /// why a part could not be read).
    #[serde(flatten)]
    pub details: ProcessDetails,
}

/// The end of a snapshot: see [`EventKind::SnapshotEnd`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotEnd {
    /// The snapshot's number.
    pub snapshot: u64,
    /// How many processes it listed.
    pub processes: u64,
}

/// Bytes that could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Malformed {
    /// What was wrong, and where.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_id_round_trips() {
        let text = "bb1fc56c-5de2-4647-8ef3-36b30557487d";
        let id = BootId::parse(text).unwrap();
        assert_eq!(id.to_string(), text);
        assert_eq!(BootId::parse(&format!("{text}\n")), Some(id));
    }

    #[test]
    fn boot_id_rejects_garbage() {
        assert_eq!(BootId::parse(""), None);
        assert_eq!(BootId::parse("bb1fc56c-5de2-4647-8ef3-36b30557487"), None);
        assert_eq!(BootId::parse("bb1fc56c-5de2-4647-8ef3x36b30557487d"), None);
        assert_eq!(BootId::parse("zb1fc56c-5de2-4647-8ef3-36b30557487d"), None);
        assert_eq!(BootId::parse("bb1fc56c-5de2-4647-8ef3-36b30557487dd"), None);
    }

    #[test]
    fn exit_code_decodes() {
        assert_eq!(Exit::decode_code(0), (Some(0), None, false));
        assert_eq!(Exit::decode_code(3 << 8), (Some(3), None, false));
        assert_eq!(Exit::decode_code(9), (None, Some(9), false));
        assert_eq!(Exit::decode_code(6 | 0x80), (None, Some(6), true));
    }

    #[test]
    fn json_is_flat_and_tagged() {
        let key = ProcessKey {
            boot_id: BootId([1; 16]),
            pid: 42,
            start_time: 7,
        };
        let ev = Event {
            seq: 5,
            time_ns: 99,
            cpu: Some(1),
            kind: EventKind::Exec(Exec {
                task: Task {
                    pid: 42,
                    tid: 42,
                    ppid: Some(1),
                    process: Some(key),
                    uid: Some(0),
                    exe: Some("/bin/true".into()),
                },
                details: ProcessDetails {
                    argv: Some(vec!["true".into()]),
                    cwd: Some("/".into()),
                    euid: Some(0),
                    missing: None,
                },
            }),
        };
        let v: serde_json::Value = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["kind"], "exec");
        assert_eq!(v["seq"], 5);
        assert_eq!(v["pid"], 42);
        assert_eq!(v["exe"], "/bin/true");
        assert_eq!(v["argv"][0], "true");
        assert_eq!(
            v["process"]["boot_id"],
            "01010101-0101-0101-0101-010101010101"
        );
        assert_eq!(v["process"]["start_time"], 7);
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn every_kind_has_its_name_listed() {
        let loss = EventKind::Loss(Loss {
            cause: LossCause::SequenceGap,
            count: Some(1),
            lost_cpu: Some(0),
        });
        assert!(EventKind::NAMES.contains(&loss.name()));
        assert_eq!(EventKind::NAMES.len(), 17);
    }

    #[test]
    fn snapshot_events_are_flat_and_round_trip() {
        let kinds = [
            EventKind::SnapshotBegin(SnapshotBegin {
                snapshot: 3,
                processes: 1,
            }),
            EventKind::ProcessSnapshot(ProcessSnapshot {
                snapshot: 3,
                index: 0,
                task: Task {
                    pid: 1,
                    tid: 1,
                    ppid: Some(0),
                    process: None,
                    uid: Some(0),
                    exe: Some("/sbin/init".into()),
                },
                details: ProcessDetails::default(),
            }),
            EventKind::SnapshotEnd(SnapshotEnd {
                snapshot: 3,
                processes: 1,
            }),
        ];
        for (i, kind) in kinds.into_iter().enumerate() {
            let name = kind.name();
            assert!(EventKind::NAMES.contains(&name));
            let ev = Event {
                seq: i as u64,
                time_ns: 1,
                cpu: None,
                kind,
            };
            let v = serde_json::to_value(&ev).unwrap();
            assert_eq!(v["kind"], name);
            assert_eq!(v["snapshot"], 3);
            if name == "process_snapshot" {
                assert_eq!((v["pid"].clone(), v["index"].clone()), (1.into(), 0.into()));
                assert_eq!(ev.task().map(|t| t.pid), Some(1));
            } else {
                assert_eq!(v["processes"], 1);
                assert!(ev.task().is_none());
            }
            assert_eq!(serde_json::from_value::<Event>(v).unwrap(), ev);
        }
    }
}
