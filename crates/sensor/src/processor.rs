//! The processing thread: kernel messages in, numbered [`Event`]s out.
//!
//! It keeps the process table, reads `/proc` for exec details, turns loss into
//! [`Loss`] events and repairs the table by resync. It is the only writer of the
//! table and the only publisher on the bus, so event numbers are gap-free and each
//! process's events leave in the order the kernel sent them.
//!
//! ## Where `/proc` is read
//!
//! An exec event carries only a PID; the program, arguments and directory must be
//! read from `/proc` before the process exits. The reader reads them on arrival when
//! it has no backlog (reader.rs says why); otherwise the processor reads them as soon
//! as it takes the event off the queue, before anything else.
//!
//! Neither read can tell by itself which exec's image it saw: the kernel switches a
//! process to its new image (`/proc/<pid>/exe`, `cmdline`) inside `execve` and sends
//! the exec event only when loading is done, so a process that execs twice in quick
//! succession may show the second image when the first event is read. So the exec
//! event is held (with everything after it, to keep the order) until the stream
//! has been seen up to [`CONFIRM_GRACE`] past the end of the read: by the reader
//! finding the socket empty then, or by a later event stamped after it. If a later
//! exec of the same process turns up before that, nothing of the read is attributed
//! to this exec (`superseded`). What remains is a second exec whose loading, after
//! the image switch, took longer than the grace; docs/events.md says so. Events are
//! held, not the processor: it goes on reading and applying while they wait.

//! ## Resync, and the marker that makes it exact
//!
//! After a loss the table may hold processes that ended unseen and lack processes
//! that started unseen. The processor lists `/proc`, but events still queued (in the
//! socket, the reader or the queue) were sent before the listing and are not applied
//! yet: comparing now would report a process whose exit is merely still queued as
//! "vanished". So right after listing it renames its own thread, which makes the
//! kernel send a comm event into the same socket. Messages enter a socket's queue in
//! the order they are sent, so when the processor meets its own comm event, every
//! event sent before the listing has been applied. Two kernel windows remain: a
//! process's exit event is sent just *after* `exit_notify()` lets its parent reap it,
//! and a new process is listed in `/proc` just *before* its fork event is sent. So
//! the differences found at the first marker are only candidates; the processor sends
//! a second marker, and reports a process as vanished (or found) only if no exit (or
//! fork) for it arrived before the second marker either. What remains is a task
//! preempted for the whole time between the two markers inside those few kernel
//! lines; docs/events.md says so.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aether_events::{
    BootId, Bus, Comm, Coredump, Event, EventKind, Exec, Exit, Fork, ForkKind, IdChange, Loss,
    LossCause, Malformed, MissingReason, ProcessFound, ProcessKey, ProcessSnapshot,
    ProcessVanished, Ptrace, Resync, Sid, SnapshotBegin, SnapshotEnd, Task,
};
use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::Stats;
use crate::decode::{Body, Message};
use crate::procfs::{ProcFs, Read, StartCheck, Stat};
use crate::reader::{Backlog, Item, image_change};
use crate::sys;
use crate::table::{self, Entry, Table};

/// How many ended processes to remember, so a resync does not report a process
/// whose exit it saw as "found" because `/proc` still listed it while it exited.
const RECENT_EXITS: usize = 16 * 1024;
/// How far past the end of an exec read the stream must be seen before the read
/// is attributed to that exec: longer than the kernel takes from switching a
/// process's image to sending its exec event, preemption included.
const CONFIRM_GRACE: u64 = 10_000_000;
/// Messages from different CPUs enter the socket in sending order, but each is
/// stamped a little before it is sent; a later event confirms only this far past.
const CROSS_CPU_SLACK: u64 = 1_000_000;
/// The longest an event is held for confirmation (a stalled reader must not
/// stall the stream); past it the read is published as it is.
const CONFIRM_WAIT: Duration = Duration::from_millis(100);

/// An exec event whose read awaits confirmation.
struct Unconfirmed {
    tgid: u32,
    /// `CLOCK_MONOTONIC` time the stream must be seen up to.
    confirm_at: u64,
    deadline: Instant,
}
/// How long to wait for the resync marker before listing again.
const FENCE_TIMEOUT: Duration = Duration::from_secs(1);

struct PendingResync {
    snapshot: HashMap<u32, Stat>,
    serial: u64,
    fence: String,
    started: Instant,
    /// After the first marker: the differences, to confirm at the second.
    candidates: Option<table::Diff>,
}

pub(crate) struct Processor {
    rx: Receiver<Item>,
    bus: Bus<Event>,
    stats: Arc<Stats>,
    procfs: ProcFs,
    boot_id: BootId,
    table: Table,
    next_seq: u64,
    my_tid: u32,
    my_pid: u32,
    batch: VecDeque<Item>,
    resync: Option<PendingResync>,
    resync_again: bool,
    fences: u32,
    recent_exits: HashSet<(u32, u64)>,
    recent_order: VecDeque<(u32, u64)>,
    /// Numbered events not yet published, oldest first; the first may be an exec
    /// awaiting confirmation.
    held: VecDeque<(Event, Option<Unconfirmed>)>,
    /// The latest kernel timestamp of a message handled so far.
    handled_ns: u64,
    /// Snapshot requests served so far (see `Stats::snapshot_requests`).
    snapshot_served: u64,
}

impl Processor {
    pub(crate) fn new(
        rx: Receiver<Item>,
        bus: Bus<Event>,
        stats: Arc<Stats>,
        procfs: ProcFs,
        boot_id: BootId,
    ) -> Processor {
        Processor {
            rx,
            bus,
            stats,
            procfs,
            boot_id,
            table: Table::new(),
            next_seq: 0,
            my_tid: 0,
            my_pid: sys::getpid(),
            batch: VecDeque::new(),
            resync: None,
            resync_again: false,
            fences: 0,
            recent_exits: HashSet::new(),
            recent_order: VecDeque::new(),
            held: VecDeque::new(),
            handled_ns: 0,
            snapshot_served: 0,
        }
    }

    pub(crate) fn run(mut self, ready: crossbeam_channel::Sender<()>) {
        self.my_tid = sys::gettid();
        self.populate();
        let _ = ready.send(());
        let mut handled: u32 = 0;
        loop {
            self.release();
            self.serve_snapshot();
            let item = match self.batch.pop_front().or_else(|| self.rx.try_recv().ok()) {
                Some(i) => i,
                None => {
                    // Nothing left to do: let subscribers see what was published.
                    self.bus.wake();
                    let wait = if self.held.is_empty() {
                        Duration::from_millis(200)
                    } else {
                        Duration::from_millis(1)
                    };
                    match self.rx.recv_timeout(wait) {
                        Ok(i) => i,
                        Err(RecvTimeoutError::Timeout) => {
                            self.check_fence();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            self.handle(item);
            handled = handled.wrapping_add(1);
            if handled.is_multiple_of(32) {
                // Under continuous load, still wake subscribers every few events.
                self.bus.wake();
            }
            if handled.is_multiple_of(256) {
                self.check_fence();
            }
        }
        // Shutting down: nothing more can supersede what is held.
        while let Some((ev, _)) = self.held.pop_front() {
            self.publish(ev);
        }
        self.stats.confirming.store(false, Ordering::Release);
        self.bus.close();
    }

    fn key(&self, pid: u32, start_time: u64) -> ProcessKey {
        ProcessKey {
            boot_id: self.boot_id,
            pid,
            start_time,
        }
    }

    fn emit(&mut self, time_ns: u64, cpu: Option<u32>, kind: EventKind) {
        self.emit_held(time_ns, cpu, kind, None);
    }

    /// Numbers the event and publishes it, or holds it (and what follows) while
    /// an exec read awaits confirmation.
    fn emit_held(
        &mut self,
        time_ns: u64,
        cpu: Option<u32>,
        kind: EventKind,
        unconfirmed: Option<Unconfirmed>,
    ) {
        let ev = Event {
            seq: self.next_seq,
            time_ns,
            cpu,
            kind,
        };
        self.next_seq += 1;
        if self.held.is_empty() && unconfirmed.is_none() {
            self.publish(ev);
            return;
        }
        if unconfirmed.is_some() {
            self.stats.confirming.store(true, Ordering::Release);
        }
        self.held.push_back((ev, unconfirmed));
    }

    fn publish(&mut self, ev: Event) {
        // Subscribers are woken once per burst (see `run`), not once per event.
        self.bus.publish_deferred(ev);
        self.stats.published.fetch_add(1, Ordering::Relaxed);
    }

    /// Publishes held events up to the first exec read that is not confirmed yet.
    fn release(&mut self) {
        while let Some((_, pending)) = self.held.front() {
            if let Some(u) = pending {
                let (tgid, confirm_at, deadline) = (u.tgid, u.confirm_at, u.deadline);
                if !self.confirmed(tgid, confirm_at, deadline) {
                    return;
                }
            }
            if let Some((ev, _)) = self.held.pop_front() {
                self.publish(ev);
            }
        }
        self.stats.confirming.store(false, Ordering::Release);
    }

    /// Whether the held exec read of `tgid` can be published: a later exec has
    /// superseded it (then it is amended here), or the stream has been seen past
    /// `confirm_at` without one, or it has waited long enough.
    fn confirmed(&mut self, tgid: u32, confirm_at: u64, deadline: Instant) -> bool {
        if self.handled_ns >= confirm_at.saturating_add(CROSS_CPU_SLACK) {
            // Every message sent before `confirm_at` has been handled, and a later
            // exec among them would have superseded this one already.
            return true;
        }
        if self.stats.drained_ns.load(Ordering::Acquire) >= confirm_at {
            // Every message sent before `confirm_at` is queued; look at them.
            self.pull_available();
            if self.later_exec_queued(tgid) {
                self.supersede(tgid);
                return true;
            }
            if self.rx.is_empty() {
                return true;
            }
        }
        Instant::now() >= deadline
    }

    /// A later exec of `tgid` was seen while its earlier exec read was held: that
    /// read may show the later image, so none of it is published, and neither is
    /// the image in the events of the process held after it.
    fn supersede(&mut self, tgid: u32) {
        let Some(first) = self
            .held
            .iter()
            .position(|(_, u)| u.as_ref().is_some_and(|u| u.tgid == tgid))
        else {
            return;
        };
        for (ev, pending) in self.held.iter_mut().skip(first) {
            if let EventKind::Exec(x) = &mut ev.kind
                && pending.as_ref().is_some_and(|u| u.tgid == tgid)
            {
                x.details = aether_events::ProcessDetails {
                    missing: Some(MissingReason::Superseded),
                    ..Default::default()
                };
                x.task.exe = None;
                *pending = None;
            } else if let Some(t) = ev.task_mut()
                && t.pid == tgid
            {
                t.exe = None;
            }
        }
        if let Some(e) = self.table.get_mut(tgid) {
            e.exe = None;
        }
    }

    fn task(&self, pid: u32, tid: u32) -> Task {
        match self.table.get(pid) {
            Some(e) => Task {
                pid,
                tid,
                ppid: e.ppid,
                process: Some(e.key),
                uid: e.uid,
                exe: e.exe.clone(),
            },
            None => Task {
                pid,
                tid,
                ..Task::default()
            },
        }
    }

    fn entry_from_read(&self, pid: u32, st: &Stat, read: &Read) -> Entry {
        let threads = self
            .procfs
            .threads(pid)
            .map(|t| t.into_iter().collect())
            .unwrap_or_else(|_| HashSet::from([pid]));
        Entry {
            key: self.key(pid, st.start_time),
            exact: true,
            ppid: Some(st.ppid).filter(|p| *p != 0),
            uid: read.uid,
            exe: read.exe.clone(),
            threads,
            serial: 0,
        }
    }

    /// Fills the table from `/proc`, silently: these processes predate the sensor.
    fn populate(&mut self) {
        let Ok(list) = self.procfs.list() else { return };
        for (pid, st) in list {
            if st.state == b'Z' || st.state == b'X' {
                continue;
            }
            let read = self.procfs.read(pid, StartCheck::Exact(st.start_time));
            let entry = self.entry_from_read(pid, &st, &read);
            self.table.insert(entry);
        }
    }

    /// Makes sure the table knows `pid`, reading `/proc` if needed; a process that
    /// started after `time_ns` is not the one an event at `time_ns` was about.
    fn ensure(&mut self, pid: u32, time_ns: u64) {
        if pid == 0 || self.table.get(pid).is_some() {
            return;
        }
        let bound = self.procfs.tick_of(time_ns).saturating_add(1);
        let read = self.procfs.read(pid, StartCheck::NotAfter(bound));
        if let Some(st) = read.stat.clone() {
            let entry = self.entry_from_read(pid, &st, &read);
            self.table.insert(entry);
        }
    }

    fn handle(&mut self, item: Item) {
        let now = sys::monotonic_ns();
        if let Item::Msg(m) | Item::ExecRead(m, _) = &item {
            self.handled_ns = self.handled_ns.max(m.timestamp_ns);
        }
        match item {
            Item::Msg(m) => self.on_message(m),
            Item::ExecRead(m, read) => match m.body {
                Body::Exec { pid, tgid } => {
                    self.on_exec(m.timestamp_ns, Some(m.cpu), pid, tgid, Some(*read))
                }
                _ => self.on_message(m),
            },
            Item::Gap { cpu, count } => {
                let loss = Loss {
                    cause: LossCause::SequenceGap,
                    count: Some(count),
                    lost_cpu: Some(cpu),
                };
                self.emit(now, None, EventKind::Loss(loss));
                self.need_resync();
            }
            Item::Overrun => {
                let loss = Loss {
                    cause: LossCause::KernelOverrun,
                    count: None,
                    lost_cpu: None,
                };
                self.emit(now, None, EventKind::Loss(loss));
                self.need_resync();
            }
            Item::Malformed(error) => {
                self.emit(now, None, EventKind::Malformed(Malformed { error }))
            }
            Item::Backlog(b) => self.on_backlog(now, b),
            Item::Failed(why) => {
                let error = format!("the connector socket failed and the reader stopped: {why}");
                self.emit(now, None, EventKind::Malformed(Malformed { error }));
            }
        }
    }

    fn on_backlog(&mut self, now: u64, b: Backlog) {
        if b.overruns > 0 {
            let loss = Loss {
                cause: LossCause::KernelOverrun,
                count: None,
                lost_cpu: None,
            };
            self.emit(now, None, EventKind::Loss(loss));
        }
        for (cpu, count) in b.gaps {
            let loss = Loss {
                cause: LossCause::SequenceGap,
                count: Some(count),
                lost_cpu: Some(cpu),
            };
            self.emit(now, None, EventKind::Loss(loss));
        }
        if b.dropped > 0 {
            let loss = Loss {
                cause: LossCause::QueueOverflow,
                count: Some(b.dropped),
                lost_cpu: None,
            };
            self.emit(now, None, EventKind::Loss(loss));
        }
        if b.malformed > 0 {
            let error = format!(
                "{} malformed datagrams arrived while the queue was full",
                b.malformed
            );
            self.emit(now, None, EventKind::Malformed(Malformed { error }));
        }
        self.need_resync();
    }

    fn on_message(&mut self, m: Message) {
        let ts = m.timestamp_ns;
        let cpu = Some(m.cpu);
        match m.body {
            // Other programs' listen requests are acknowledged to every listener.
            Body::Ack { .. } => {}
            Body::Fork {
                parent_pid,
                parent_tgid,
                child_pid,
                child_tgid,
            } => {
                self.ensure(parent_tgid, ts);
                let parent = self.table.get(parent_tgid).map(|e| e.key);
                let fork_kind = if child_pid == child_tgid {
                    self.on_new_process(child_tgid, parent_tgid, ts);
                    ForkKind::Process
                } else {
                    self.ensure(child_tgid, ts);
                    if let Some(e) = self.table.get_mut(child_tgid) {
                        e.threads.insert(child_pid);
                    }
                    ForkKind::Thread
                };
                let task = self.task(child_tgid, child_pid);
                let fork = Fork {
                    task,
                    fork_kind,
                    parent_pid: parent_tgid,
                    parent_tid: parent_pid,
                    parent,
                };
                self.emit(ts, cpu, EventKind::Fork(fork));
            }
            Body::Exec { pid, tgid } => self.on_exec(ts, cpu, pid, tgid, None),
            Body::Exit {
                pid,
                tgid,
                exit_code,
                exit_signal,
                parent,
            } => {
                self.ensure(tgid, ts);
                if let (Some((_, ptgid)), Some(e)) = (parent, self.table.get_mut(tgid))
                    && ptgid != 0
                {
                    e.ppid = Some(ptgid);
                }
                let task = self.task(tgid, pid);
                let process_ended = match self.table.get_mut(tgid) {
                    Some(e) => {
                        e.threads.remove(&pid);
                        e.threads.is_empty()
                    }
                    // Unknown process (only around a loss): its main thread's exit
                    // is the best sign there is.
                    None => pid == tgid,
                };
                if process_ended && let Some(e) = self.table.remove(tgid) {
                    self.remember_exit(tgid, e.key.start_time);
                }
                let (status, signal, core_dumped) = Exit::decode_code(exit_code);
                let exit = Exit {
                    task,
                    exit_code,
                    status,
                    signal,
                    core_dumped,
                    exit_signal: exit_signal as i32,
                    process_ended,
                };
                self.emit(ts, cpu, EventKind::Exit(exit));
            }
            Body::Uid {
                pid,
                tgid,
                ruid,
                euid,
            } => {
                self.ensure(tgid, ts);
                if let Some(e) = self.table.get_mut(tgid) {
                    e.uid = Some(ruid);
                }
                let task = self.task(tgid, pid);
                self.emit(
                    ts,
                    cpu,
                    EventKind::Uid(IdChange {
                        task,
                        real: ruid,
                        effective: euid,
                    }),
                );
            }
            Body::Gid {
                pid,
                tgid,
                rgid,
                egid,
            } => {
                self.ensure(tgid, ts);
                let task = self.task(tgid, pid);
                self.emit(
                    ts,
                    cpu,
                    EventKind::Gid(IdChange {
                        task,
                        real: rgid,
                        effective: egid,
                    }),
                );
            }
            Body::Sid { pid, tgid } => {
                self.ensure(tgid, ts);
                let task = self.task(tgid, pid);
                self.emit(ts, cpu, EventKind::Sid(Sid { task }));
            }
            Body::Ptrace {
                pid,
                tgid,
                tracer_pid,
                tracer_tgid,
            } => {
                self.ensure(tgid, ts);
                let task = self.task(tgid, pid);
                let p = Ptrace {
                    task,
                    attached: tracer_pid != 0,
                    tracer_pid: tracer_tgid,
                    tracer_tid: tracer_pid,
                };
                self.emit(ts, cpu, EventKind::Ptrace(p));
            }
            Body::Comm { pid, tgid, comm } => {
                let end = comm.iter().position(|&c| c == 0).unwrap_or(comm.len());
                let name = String::from_utf8_lossy(comm.get(..end).unwrap_or(&[])).into_owned();
                if pid == self.my_tid && tgid == self.my_pid {
                    self.on_own_comm(&name);
                    return;
                }
                self.ensure(tgid, ts);
                let task = self.task(tgid, pid);
                self.emit(ts, cpu, EventKind::Comm(Comm { task, comm: name }));
            }
            Body::Coredump { pid, tgid, .. } => {
                self.ensure(tgid, ts);
                let task = self.task(tgid, pid);
                self.emit(ts, cpu, EventKind::Coredump(Coredump { task }));
            }
            Body::Unknown { what } => {
                let error = format!("unknown process event type {what:#x}");
                self.emit(ts, cpu, EventKind::Malformed(Malformed { error }));
            }
        }
    }

    fn on_new_process(&mut self, pid: u32, parent: u32, ts: u64) {
        // The key must match what /proc shows, so read it now; if the child is
        // already gone, derive it from the fork's timestamp (at most a tick off).
        let tick = self.procfs.tick_of(ts);
        let (start, exact) = match self.procfs.stat(pid) {
            Ok(st)
                if st.start_time <= tick.saturating_add(1)
                    && st.start_time.saturating_add(100) >= tick =>
            {
                (st.start_time, true)
            }
            _ => (tick, false),
        };
        let (uid, exe) = match self.table.get(parent) {
            Some(p) => (p.uid, p.exe.clone()),
            None => (None, None),
        };
        self.table.insert(Entry {
            key: self.key(pid, start),
            exact,
            ppid: Some(parent).filter(|p| *p != 0),
            uid,
            exe,
            threads: HashSet::from([pid]),
            serial: 0,
        });
    }

    fn pull_available(&mut self) {
        while self.batch.len() < 4096 {
            match self.rx.try_recv() {
                Ok(i) => self.batch.push_back(i),
                Err(_) => break,
            }
        }
    }

    /// Whether a later message in the queue says the process's image changed again
    /// (see `reader::image_change`).
    fn later_exec_queued(&self, tgid: u32) -> bool {
        self.batch.iter().any(|i| match i {
            Item::Msg(m) | Item::ExecRead(m, _) => image_change(&m.body) == Some(tgid),
            _ => false,
        })
    }

    /// `early` is what the reader read on arrival, if it did (see reader.rs).
    fn on_exec(&mut self, ts: u64, cpu: Option<u32>, pid: u32, tgid: u32, early: Option<Read>) {
        let check = match self.table.get(tgid) {
            Some(e) if e.exact => StartCheck::Exact(e.key.start_time),
            Some(e) => StartCheck::Near(e.key.start_time),
            None => StartCheck::NotAfter(self.procfs.tick_of(ts).saturating_add(1)),
        };
        // A later exec of this process already queued means /proc may show that
        // later image: then none of it is attributed to this exec.
        let superseded = |stat: Option<Stat>| {
            let mut r = Read {
                stat,
                ..Read::default()
            };
            r.details.missing = Some(MissingReason::Superseded);
            r
        };
        let read = match early {
            // Read on arrival; only the start time is checked here, against the key.
            Some(r) => match &r.stat {
                Some(st) if !check.accepts(st.start_time) => {
                    let mut other = Read::default();
                    other.details.missing = Some(MissingReason::Reused);
                    other
                }
                _ => r,
            },
            None => {
                self.pull_available();
                if self.later_exec_queued(tgid) {
                    superseded(None)
                } else {
                    self.procfs.read(tgid, check)
                }
            }
        };
        // This exec supersedes an earlier one of the process still held.
        self.supersede(tgid);
        // A successful read is held until confirmed (see the module docs).
        let unconfirmed =
            (read.stat.is_some() && read.details.missing.is_none()).then(|| Unconfirmed {
                tgid,
                confirm_at: read.read_done_ns.saturating_add(CONFIRM_GRACE),
                deadline: Instant::now() + CONFIRM_WAIT,
            });
        if self.table.get(tgid).is_none()
            && let Some(st) = read.stat.clone()
        {
            let entry = self.entry_from_read(tgid, &st, &read);
            self.table.insert(entry);
        }
        if let Some(e) = self.table.get_mut(tgid) {
            // After exec the process has one thread, which has the process's id.
            e.threads.clear();
            e.threads.insert(tgid);
            e.exe = read.exe.clone();
            if read.uid.is_some() {
                e.uid = read.uid;
            }
            if let Some(st) = &read.stat {
                e.ppid = Some(st.ppid).filter(|p| *p != 0);
            }
        }
        let mut task = self.task(tgid, pid);
        task.exe = read.exe;
        self.emit_held(
            ts,
            cpu,
            EventKind::Exec(Exec {
                task,
                details: read.details,
            }),
            unconfirmed,
        );
    }

    /// Publishes a snapshot of the table if one was asked for and the table is
    /// whole (no resync pending: after a loss, the snapshot waits for the
    /// resync that repairs it).
    fn serve_snapshot(&mut self) {
        let requested = self.stats.snapshot_requests.load(Ordering::Acquire);
        if requested == self.snapshot_served || self.resync.is_some() {
            return;
        }
        self.snapshot_served = requested;
        let number = self.stats.snapshots.load(Ordering::Relaxed) + 1;
        let now = sys::monotonic_ns();
        let mut pids: Vec<(u32, StartCheck)> = self
            .table
            .iter()
            .map(|e| {
                let start = e.key.start_time;
                let check = if e.exact {
                    StartCheck::Exact(start)
                } else {
                    StartCheck::Near(start)
                };
                (e.key.pid, check)
            })
            .collect();
        pids.sort_unstable_by_key(|(pid, _)| *pid);
        let processes = pids.len() as u64;
        self.emit(
            now,
            None,
            EventKind::SnapshotBegin(SnapshotBegin {
                snapshot: number,
                processes,
            }),
        );
        for (index, (pid, check)) in pids.into_iter().enumerate() {
            let read = self.procfs.read(pid, check);
            let mut details = read.details;
            if read.stat.is_none() && details.missing.is_none() {
                details.missing = Some(MissingReason::Gone);
            }
            let task = self.task(pid, pid);
            self.emit(
                now,
                None,
                EventKind::ProcessSnapshot(ProcessSnapshot {
                    snapshot: number,
                    index: index as u64,
                    task,
                    details,
                }),
            );
        }
        self.emit(
            now,
            None,
            EventKind::SnapshotEnd(SnapshotEnd {
                snapshot: number,
                processes,
            }),
        );
        self.stats.snapshots.store(number, Ordering::Relaxed);
        self.bus.wake();
    }

    fn remember_exit(&mut self, pid: u32, start: u64) {
        if self.recent_exits.insert((pid, start)) {
            self.recent_order.push_back((pid, start));
        }
        while self.recent_order.len() > RECENT_EXITS {
            if let Some(old) = self.recent_order.pop_front() {
                self.recent_exits.remove(&old);
            }
        }
    }

    fn need_resync(&mut self) {
        if self.resync.is_some() {
            self.resync_again = true;
        } else {
            self.start_resync();
        }
    }

    fn start_resync(&mut self) {
        let serial = self.table.serial();
        let snapshot: HashMap<u32, Stat> =
            self.procfs.list().unwrap_or_default().into_iter().collect();
        let fence = self.send_fence();
        self.resync = Some(PendingResync {
            snapshot,
            serial,
            fence,
            started: Instant::now(),
            candidates: None,
        });
    }

    fn check_fence(&mut self) {
        if self
            .resync
            .as_ref()
            .is_some_and(|p| p.started.elapsed() > FENCE_TIMEOUT)
        {
            // The marker was lost (a loss of its own will have been reported).
            self.resync = None;
            self.start_resync();
        }
    }

    /// Renames this thread so the kernel sends a comm event into our own stream,
    /// and returns the name to recognize it by. If renaming fails the marker never
    /// comes and the timeout lists again.
    fn send_fence(&mut self) -> String {
        self.fences = self.fences.wrapping_add(1);
        let fence = format!("aether-sync{}", self.fences % 10_000);
        let _ = sys::set_thread_name(&fence);
        fence
    }

    fn on_own_comm(&mut self, name: &str) {
        if self.resync.as_ref().is_none_or(|p| p.fence != name) {
            return;
        }
        let first = self.resync.as_ref().is_some_and(|p| p.candidates.is_none());
        if first {
            let Some(p) = self.resync.as_ref() else {
                return;
            };
            let recent = &self.recent_exits;
            let d = table::diff(&self.table, &p.snapshot, p.serial, |pid, start| {
                recent.contains(&(pid, start))
            });
            if !d.found.is_empty() || !d.vanished.is_empty() {
                // Two windows remain: the kernel sends a process's exit event just
                // after its parent can reap it, and lists a new process in /proc
                // just before it sends its fork event. A second marker, sent now,
                // comes after any event in those windows; differences still there
                // when it arrives are real.
                let fence = self.send_fence();
                if let Some(p) = self.resync.as_mut() {
                    p.fence = fence;
                    p.candidates = Some(d);
                }
                return;
            }
            if let Some(p) = self.resync.as_mut() {
                p.candidates = Some(d);
            }
        }
        self.finish_resync();
    }

    fn finish_resync(&mut self) {
        let Some(p) = self.resync.take() else { return };
        let now = sys::monotonic_ns();
        let d = p.candidates.unwrap_or_default();
        // Keep only the differences the events since the first marker did not explain.
        let vanished: Vec<u32> = d
            .vanished
            .into_iter()
            .filter(|pid| self.table.get(*pid).is_some_and(|e| e.serial < p.serial))
            .collect();
        let found: Vec<(u32, Stat)> = d
            .found
            .into_iter()
            .filter(|(pid, st)| {
                !self
                    .table
                    .get(*pid)
                    .is_some_and(|e| e.same_start(st.start_time))
                    && !self.recent_exits.contains(&(*pid, st.start_time))
            })
            .collect();
        let d = table::Diff { found, vanished };
        for pid in &d.vanished {
            let task = self.task(*pid, *pid);
            self.table.remove(*pid);
            self.emit(
                now,
                None,
                EventKind::ProcessVanished(ProcessVanished { task }),
            );
        }
        for (pid, st) in &d.found {
            let read = self.procfs.read(*pid, StartCheck::Exact(st.start_time));
            let entry = self.entry_from_read(*pid, st, &read);
            self.table.insert(entry);
            let task = self.task(*pid, *pid);
            self.emit(
                now,
                None,
                EventKind::ProcessFound(ProcessFound {
                    task,
                    details: read.details,
                }),
            );
        }
        let resync = Resync {
            found: d.found.len() as u64,
            vanished: d.vanished.len() as u64,
            processes: self.table.len() as u64,
        };
        self.emit(now, None, EventKind::Resync(resync));
        self.stats.resyncs.fetch_add(1, Ordering::Relaxed);
        if self.resync_again {
            self.resync_again = false;
            self.start_resync();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{encode, encode_event, what};

    fn processor() -> (Processor, aether_events::Subscriber<Event>) {
        let (_tx, rx) = crossbeam_channel::bounded(1);
        let bus = Bus::new(64);
        let sub = bus.subscribe();
        let dir = std::env::temp_dir().join(format!("aether-empty-proc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = Processor::new(
            rx,
            bus,
            Arc::new(Stats::default()),
            ProcFs::new(&dir),
            BootId([7; 16]),
        );
        (p, sub)
    }

    fn kinds(sub: &mut aether_events::Subscriber<Event>) -> Vec<EventKind> {
        std::iter::from_fn(|| sub.try_recv().ok())
            .map(|e| e.kind.clone())
            .collect()
    }

    #[test]
    fn a_backlog_becomes_exact_loss_events_and_starts_a_resync() {
        let (mut p, mut sub) = processor();
        p.handle(Item::Backlog(Backlog {
            dropped: 12,
            gaps: vec![(1, 3)],
            overruns: 1,
            malformed: 0,
        }));
        let got = kinds(&mut sub);
        assert_eq!(
            got,
            vec![
                EventKind::Loss(Loss {
                    cause: LossCause::KernelOverrun,
                    count: None,
                    lost_cpu: None
                }),
                EventKind::Loss(Loss {
                    cause: LossCause::SequenceGap,
                    count: Some(3),
                    lost_cpu: Some(1)
                }),
                EventKind::Loss(Loss {
                    cause: LossCause::QueueOverflow,
                    count: Some(12),
                    lost_cpu: None
                }),
            ]
        );
        assert!(p.resync.is_some(), "a resync is under way");
    }

    #[test]
    fn the_resync_marker_completes_the_resync_and_is_not_published() {
        let (mut p, mut sub) = processor();
        p.my_tid = 99;
        p.handle(Item::Overrun);
        let fence = p.resync.as_ref().unwrap().fence.clone();
        let mut comm = [0u8; 16];
        comm[..fence.len()].copy_from_slice(fence.as_bytes());
        let mut words = vec![99, p.my_pid];
        words.extend(
            comm.chunks(4)
                .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])),
        );
        let bytes = encode(0, 0, &encode_event(what::COMM, 0, 1, &words));
        let m = crate::decode::decode_datagram(&bytes)
            .next()
            .unwrap()
            .unwrap();
        p.handle(Item::Msg(m));
        let got = kinds(&mut sub);
        assert!(matches!(got[0], EventKind::Loss(_)));
        assert_eq!(
            got[1],
            EventKind::Resync(Resync {
                found: 0,
                vanished: 0,
                processes: 0
            })
        );
        assert_eq!(got.len(), 2, "the marker itself is not an event");
        assert!(p.resync.is_none());
    }

    fn fence_msg(p: &Processor) -> Item {
        let fence = p.resync.as_ref().unwrap().fence.clone();
        let mut comm = [0u8; 16];
        comm[..fence.len()].copy_from_slice(fence.as_bytes());
        let mut words = vec![p.my_tid, p.my_pid];
        words.extend(
            comm.chunks(4)
                .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])),
        );
        let bytes = encode(0, 0, &encode_event(what::COMM, 0, 1, &words));
        Item::Msg(
            crate::decode::decode_datagram(&bytes)
                .next()
                .unwrap()
                .unwrap(),
        )
    }

    fn known(p: &mut Processor, pid: u32) {
        p.table.insert(Entry {
            key: p.key(pid, 1),
            exact: true,
            ppid: Some(1),
            uid: Some(0),
            exe: None,
            threads: HashSet::from([pid]),
            serial: 0,
        });
    }

    #[test]
    fn a_snapshot_asked_for_after_a_loss_waits_for_the_resync() {
        // The fake /proc is empty: the resync that follows the loss finds 50 gone.
        let (mut p, mut sub) = processor();
        p.my_tid = 99;
        known(&mut p, 50);
        p.handle(Item::Overrun);
        p.stats.snapshot_requests.fetch_add(1, Ordering::Release);
        // The table still lists 50: no snapshot while the resync is under way,
        // at either marker.
        p.serve_snapshot();
        let first = fence_msg(&p);
        p.handle(first);
        p.serve_snapshot();
        assert!(p.resync.is_some());
        assert_eq!(p.stats.snapshots.load(Ordering::Relaxed), 0);
        let second = fence_msg(&p);
        p.handle(second);
        p.serve_snapshot();
        let got = kinds(&mut sub);
        let names: Vec<&str> = got.iter().map(EventKind::name).collect();
        assert_eq!(
            names,
            [
                "loss",
                "process_vanished",
                "resync",
                "snapshot_begin",
                "snapshot_end"
            ]
        );
        assert!(matches!(&got[1], EventKind::ProcessVanished(v) if v.task.pid == 50));
        assert_eq!(
            got[3],
            EventKind::SnapshotBegin(SnapshotBegin {
                snapshot: 1,
                processes: 0
            })
        );
        assert_eq!(p.stats.snapshots.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_vanished_candidate_whose_exit_arrives_late_is_not_reported() {
        // The fake /proc is empty: both processes look gone at the first marker.
        let (mut p, mut sub) = processor();
        p.my_tid = 99;
        known(&mut p, 50);
        known(&mut p, 60);
        p.handle(Item::Overrun);
        let first = fence_msg(&p);
        p.handle(first);
        assert!(p.resync.is_some(), "differences wait for a second marker");
        // 50's exit was sent just after its parent reaped it: it arrives now.
        let exit = Message {
            seq: 0,
            ack: 0,
            cpu: 0,
            timestamp_ns: 5,
            body: Body::Exit {
                pid: 50,
                tgid: 50,
                exit_code: 0,
                exit_signal: 17,
                parent: None,
            },
        };
        p.handle(Item::Msg(exit));
        let second = fence_msg(&p);
        p.handle(second);
        let got = kinds(&mut sub);
        let vanished: Vec<u32> = got
            .iter()
            .filter_map(|k| match k {
                EventKind::ProcessVanished(v) => Some(v.task.pid),
                _ => None,
            })
            .collect();
        assert_eq!(vanished, vec![60]);
        assert_eq!(
            got.last(),
            Some(&EventKind::Resync(Resync {
                found: 0,
                vanished: 1,
                processes: 0
            }))
        );
    }

    #[test]
    fn an_exit_of_the_last_thread_ends_the_process() {
        let (mut p, mut sub) = processor();
        p.table.insert(Entry {
            key: p.key(50, 1),
            exact: true,
            ppid: Some(1),
            uid: Some(0),
            exe: Some("/x".into()),
            threads: HashSet::from([50, 51]),
            serial: 0,
        });
        let exit = |pid: u32| Message {
            seq: 0,
            ack: 0,
            cpu: 0,
            timestamp_ns: 5,
            body: Body::Exit {
                pid,
                tgid: 50,
                exit_code: 0,
                exit_signal: 17,
                parent: Some((1, 1)),
            },
        };
        p.handle(Item::Msg(exit(50)));
        p.handle(Item::Msg(exit(51)));
        let got = kinds(&mut sub);
        let ended: Vec<bool> = got
            .iter()
            .map(|k| match k {
                EventKind::Exit(e) => e.process_ended,
                _ => panic!("{k:?}"),
            })
            .collect();
        assert_eq!(
            ended,
            vec![false, true],
            "leader first, then the last thread"
        );
        assert!(p.table.get(50).is_none());
    }

    fn exec_read(tgid: u32, ts: u64, exe: &str, read_done_ns: u64) -> Item {
        let m = Message {
            seq: 0,
            ack: 0,
            cpu: 0,
            timestamp_ns: ts,
            body: Body::Exec { pid: tgid, tgid },
        };
        let read = Read {
            stat: Some(Stat {
                state: b'R',
                ppid: 1,
                start_time: 1,
            }),
            exe: Some(exe.to_string()),
            uid: Some(0),
            details: aether_events::ProcessDetails {
                argv: Some(vec![exe.to_string()]),
                cwd: Some("/".into()),
                euid: Some(0),
                missing: None,
            },
            read_done_ns,
        };
        Item::ExecRead(m, Box::new(read))
    }

    fn sid(tgid: u32, ts: u64) -> Item {
        Item::Msg(Message {
            seq: 0,
            ack: 0,
            cpu: 0,
            timestamp_ns: ts,
            body: Body::Sid { pid: tgid, tgid },
        })
    }

    #[test]
    fn an_exec_read_is_held_and_a_later_exec_of_the_process_supersedes_it() {
        let (mut p, mut sub) = processor();
        known(&mut p, 70);
        // Both reads show the second image, as when the second execve switched the
        // image before the first event was read.
        p.handle(exec_read(70, 1_000, "/usr/bin/cat", 2_000));
        p.handle(sid(70, 3_000));
        p.release();
        assert!(kinds(&mut sub).is_empty(), "held until confirmed");
        assert!(p.stats.confirming.load(Ordering::Acquire));
        p.handle(exec_read(70, 4_000, "/usr/bin/cat", 5_000));
        // The stream seen well past the second read confirms it.
        p.handle(sid(70, 5_000 + CONFIRM_GRACE + CROSS_CPU_SLACK));
        p.release();
        let got = kinds(&mut sub);
        assert_eq!(got.len(), 4, "{got:?}");
        let EventKind::Exec(first) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(first.details.missing, Some(MissingReason::Superseded));
        assert_eq!(
            (first.task.exe.as_ref(), first.details.argv.as_ref()),
            (None, None)
        );
        let EventKind::Sid(between) = &got[1] else {
            panic!("{got:?}")
        };
        assert_eq!(between.task.exe, None, "the unconfirmed image is not lent");
        let EventKind::Exec(second) = &got[2] else {
            panic!("{got:?}")
        };
        assert_eq!(second.details.missing, None);
        assert_eq!(second.task.exe.as_deref(), Some("/usr/bin/cat"));
        let EventKind::Sid(after) = &got[3] else {
            panic!("{got:?}")
        };
        assert_eq!(after.task.exe.as_deref(), Some("/usr/bin/cat"));
        assert!(!p.stats.confirming.load(Ordering::Acquire));
    }

    #[test]
    fn a_held_exec_is_confirmed_once_the_reader_drained_past_the_grace() {
        let (mut p, mut sub) = processor();
        known(&mut p, 80);
        p.handle(exec_read(80, 1_000, "/usr/bin/true", 2_000));
        p.stats
            .drained_ns
            .store(2_000 + CONFIRM_GRACE - 1, Ordering::Release);
        p.release();
        assert!(kinds(&mut sub).is_empty());
        p.stats
            .drained_ns
            .store(2_000 + CONFIRM_GRACE, Ordering::Release);
        p.release();
        let got = kinds(&mut sub);
        let [EventKind::Exec(x)] = got.as_slice() else {
            panic!("{got:?}")
        };
        assert_eq!(x.task.exe.as_deref(), Some("/usr/bin/true"));
        assert_eq!(x.details.missing, None);
    }
}
