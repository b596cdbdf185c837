//! The daemon after a real loss, both kinds of it.
//!
//! Lost to the journal: when the daemon's forwarding thread falls behind the
//! sensor, the journal says so (`events_lost`, with the exact count), then holds a
//! whole snapshot of what runs: the process that ran throughout and the one started
//! while events were lost are listed, the one that ended meanwhile is not. The
//! daemon runs with a small `SensorBuffer` (the events the sensor holds for the
//! forwarder), and the test holds only the forwarding thread (`aetherd-events`) in
//! a ptrace stop, as a stalled journal disk would, while the sensor goes on
//! publishing the fork and exit events of threads the test creates and joins. The
//! daemon's status counts what the sensor published, so the test knows that more
//! than the buffer went by before it lets the thread go: if no `events_lost`
//! follows, the daemon failed to say so.
//!
//! Lost in the kernel: the whole daemon stopped (`SIGSTOP`) with a small
//! `SensorReceiveBuffer` while a burst of events goes by. The kernel drops what the
//! socket cannot hold; the journal then holds the sensor's `loss` events and its
//! resync: the process started unseen is `process_found`, the one that ended
//! unseen `process_vanished`, then `resync`. (No snapshot is needed there: the
//! resync's events repair the journal's picture.)
//!
//! A binary of its own, its tests one at a time, so no other test's processes add
//! to the bursts. Needs root and the initial namespaces (CI has both).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aether_events::{EventKind, LossCause};
use aether_ipc::Client;
use aether_journal::{Entry, Kind, Lifecycle, RawRecord, Reader};
use common::*;

#[path = "stopped_common/mod.rs"]
mod stopped_common;
use stopped_common::wait_stopped;

/// Each test floods the machine with events; they run one after the other.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|p| p.into_inner())
}

/// `SensorBuffer` for the test daemon: the smallest allowed.
const BUFFER: u64 = 4096;
/// Beyond the buffer, what the sensor publishes while the forwarder is held.
const MARGIN: u64 = 1024;
const PATIENCE: Duration = Duration::from_secs(60);

/// A child killed by its PID (and reaped) when dropped.
struct Kid(Child);

impl Kid {
    fn sleep() -> Kid {
        Kid(Command::new("/bin/sleep")
            .arg("120")
            .stdin(Stdio::null())
            .spawn()
            .expect("start /bin/sleep"))
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn end(&mut self) {
        self.0.kill().expect("kill sleep");
        self.0.wait().expect("reap sleep");
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One thread of another process held in a ptrace stop: only that thread stops (a
/// signal would stop the whole process, the sensor with it). Let go when dropped.
struct Held {
    tid: i32,
}

impl Held {
    fn stop(tid: i32) -> Held {
        let null = std::ptr::null_mut::<libc::c_void>();
        // SAFETY: ptrace requests on a thread of this test's own child; no memory
        // is passed.
        let r = unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, null, null) };
        assert_eq!(
            r,
            0,
            "PTRACE_SEIZE of thread {tid}: {}",
            std::io::Error::last_os_error()
        );
        let held = Held { tid };
        // SAFETY: as above.
        let r = unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, tid, null, null) };
        assert_eq!(
            r,
            0,
            "PTRACE_INTERRUPT of thread {tid}: {}",
            std::io::Error::last_os_error()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut status = 0;
            // SAFETY: waits for a tracee of this thread; `status` is a local.
            let w = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
            if w == tid {
                assert!(
                    libc::WIFSTOPPED(status),
                    "thread {tid} did not stop: wait status {status:#x}"
                );
                return held;
            }
            assert_eq!(w, 0, "waitpid {tid}: {}", std::io::Error::last_os_error());
            assert!(
                Instant::now() < deadline,
                "thread {tid} did not stop within 10 s of PTRACE_INTERRUPT"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let null = std::ptr::null_mut::<libc::c_void>();
        // SAFETY: detaches this test's own tracee; no memory is passed.
        unsafe { libc::ptrace(libc::PTRACE_DETACH, self.tid, null, null) };
    }
}

/// The thread of process `pid` named `name`.
fn thread_named(pid: i32, name: &str) -> Option<i32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
        .find_map(|e| {
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            if comm.trim_end() != name {
                return None;
            }
            e.file_name().to_str()?.parse().ok()
        })
}

/// The start time of a running process, as its key has it (field 22 of its stat).
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let after = &stat[stat.rfind(')').expect("stat has a comm") + 1..];
    after
        .split_whitespace()
        .nth(19)
        .and_then(|f| f.parse().ok())
        .expect("stat has a start time")
}

/// The daemon's status, as JSON.
fn status(rt: &tokio::runtime::Runtime, ipc: &Path) -> serde_json::Value {
    rt.block_on(async {
        let mut c = Client::connect(ipc)
            .await
            .expect("connect to the IPC socket");
        let r = c.control(1, "status", "").await.expect("status");
        serde_json::from_str(&r.message).expect("status is JSON")
    })
}

/// Events the daemon's sensor published so far.
fn published(rt: &tokio::runtime::Runtime, ipc: &Path) -> u64 {
    let st = status(rt, ipc);
    st["sensor"]["counters"]["published"]
        .as_u64()
        .unwrap_or_else(|| panic!("no sensor counters in the status: {st}"))
}

/// Creates and joins `n` threads: a fork and an exit event each.
fn thread_burst(n: usize) {
    for _ in 0..n {
        std::thread::spawn(|| {}).join().expect("burst thread");
    }
}

/// Creates threads until the sensor has published `target` events; `Err` if it
/// published nothing for 5 s meanwhile.
fn burst_until(rt: &tokio::runtime::Runtime, ipc: &Path, target: u64) -> Result<u64, String> {
    let deadline = Instant::now() + PATIENCE;
    let mut last = published(rt, ipc);
    let mut moved = Instant::now();
    while last < target {
        thread_burst(256);
        let now = published(rt, ipc);
        if now > last {
            last = now;
            moved = Instant::now();
        }
        if moved.elapsed() > Duration::from_secs(5) {
            return Err(format!("the sensor published nothing for 5 s (at {last})"));
        }
        assert!(
            Instant::now() < deadline,
            "the sensor published {last} of {target} events within {PATIENCE:?}"
        );
    }
    Ok(last)
}

fn journal_records(path: &Path) -> Vec<RawRecord> {
    let r = Reader::open(path).expect("open the journal");
    r.read_raw_from(0)
        .map(|r| r.expect("read a journal record"))
        .collect()
}

/// Reads the journal until `found` finds what it looks for (bounded).
fn wait_for<T>(
    path: &Path,
    what: &str,
    mut found: impl FnMut(&[RawRecord]) -> Option<T>,
) -> (Vec<RawRecord>, T) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let recs = journal_records(path);
        if let Some(t) = found(&recs) {
            return (recs, t);
        }
        if Instant::now() > deadline {
            let tail: Vec<String> = recs
                .iter()
                .rev()
                .take(20)
                .map(|r| format!("{}:{}", r.seq, r.name))
                .collect();
            panic!("{what}: not in the journal within {PATIENCE:?}; last records: {tail:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn triples(recs: &[RawRecord]) -> Vec<(String, u8, Vec<u8>)> {
    recs.iter()
        .map(|r| (r.name.clone(), r.kind, r.data.clone()))
        .collect()
}

fn decode(r: &RawRecord) -> Entry {
    match Entry::decode(r.kind, &r.data) {
        Some(Ok(e)) => e,
        other => panic!("record {} ({}) does not decode: {other:?}", r.seq, r.name),
    }
}

fn exec_of(recs: &[RawRecord], pid: u32) -> bool {
    recs.iter().any(|r| {
        r.name == "exec"
            && matches!(decode(r), Entry::Event(ev) if ev.task().is_some_and(|t| t.pid == pid))
    })
}

#[test]
fn events_lost_by_the_forwarder_are_journaled_then_a_whole_snapshot() {
    let _one = one_at_a_time();
    let fx = Fixture::new();
    let d = Daemon::aetherd(
        &fx,
        "l",
        &format!("Sensor = true\nSensorBuffer = {BUFFER}\n"),
    );
    let journal = fx.path().join("l.journal.db");
    let ipc = fx.path().join("l.ipc");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let st = status(&rt, &ipc);
    assert_eq!(
        st["sensor"]["running"], true,
        "the sensor must run here (root, initial namespaces): {st}"
    );
    // The snapshot after the start, and two processes the journal has seen start.
    wait_for(&journal, "the snapshot after the start", |recs| {
        snapshot(&triples(recs))
    });
    let mut survivor = Kid::sleep();
    let mut ends = Kid::sleep();
    wait_for(&journal, "the execs of both sleeps", |recs| {
        (exec_of(recs, survivor.pid()) && exec_of(recs, ends.pid())).then_some(())
    });
    let ends_key = start_time(ends.pid());
    let before = journal_records(&journal);
    assert!(
        !before.iter().any(|r| r.name == "events_lost"),
        "events were lost before the test made any"
    );
    let forwarder =
        thread_named(d.pid(), "aetherd-events").expect("aetherd has an aetherd-events thread");

    // Hold the forwarder while the sensor publishes more than the buffer holds.
    let mut attempts = 0;
    let (held_at, released_at, born) = loop {
        attempts += 1;
        let held = Held::stop(forwarder);
        let p0 = published(&rt, &ipc);
        // A thread stopped inside the bus's short lock would hold the sensor up
        // too: see the sensor publish before going on, else let go and stop again.
        if let Err(why) = burst_until(&rt, &ipc, p0 + 64) {
            drop(held);
            assert!(attempts < 3, "{why} while the forwarder was held, 3 times");
            continue;
        }
        ends.end();
        let born = Kid::sleep();
        let p1 = burst_until(&rt, &ipc, p0 + BUFFER + MARGIN)
            .unwrap_or_else(|why| panic!("{why} while the forwarder was held"));
        drop(held);
        break (p0, p1, born);
    };

    let what = format!(
        "events_lost (the sensor published {} events while the forwarder was held, more than SensorBuffer = {BUFFER})",
        released_at - held_at
    );
    wait_for(&journal, &what, |recs| {
        recs.iter().position(|r| r.name == "events_lost")
    });
    let (recs, (lost, begin, listed)) =
        wait_for(&journal, "a whole snapshot after events_lost", |recs| {
            let lost = recs.iter().position(|r| r.name == "events_lost")?;
            let (at, listed) = snapshot(&triples(&recs[lost + 1..]))?;
            Some((lost, lost + 1 + at, listed))
        });
    // The journal says exactly what it lacks: the sensor numbers its events
    // without gaps, and each gap between journaled events is the sum of the
    // events_lost counts journaled between them. (A subscriber that lagged can
    // lag again by the next receive while the sensor goes on publishing: then
    // one loss is journaled as several records.)
    let mut lost_total = 0;
    let mut lost_since = 0;
    let mut last: Option<u64> = None;
    for r in &recs {
        match decode(r) {
            Entry::Event(ev) => {
                if let Some(l) = last {
                    assert_eq!(
                        ev.seq,
                        l + 1 + lost_since,
                        "journal record {}: sensor event {} follows {l} with {lost_since} events said lost",
                        r.seq,
                        ev.seq
                    );
                }
                last = Some(ev.seq);
                lost_since = 0;
            }
            Entry::Lifecycle(Lifecycle::EventsLost { count }) => {
                lost_since += count;
                lost_total += count;
            }
            _ => {}
        }
    }
    // The forwarder had taken at most `held_at` events when it stopped, and the
    // sensor holds the last BUFFER of what it published.
    assert!(
        lost_total >= released_at - held_at - BUFFER,
        "{lost_total} events said lost; the sensor published {} while the forwarder was held",
        released_at - held_at
    );
    // Between the loss and the snapshot only sensor events (what the sensor
    // still held, then what it published before it took the request) and the
    // loss's records.
    assert!(
        recs[lost + 1..begin]
            .iter()
            .all(|r| r.kind == Kind::Event as u8 || r.name == "events_lost"),
        "only sensor events between events_lost and the snapshot"
    );
    assert!(
        listed.iter().all(|p| p.snapshot >= 2),
        "the snapshot after the loss, not the one after the start"
    );
    let find = |pid: u32| listed.iter().find(|p| p.task.pid == pid);
    for (what, kid) in [
        ("the process running throughout", &survivor),
        ("the process started during the loss", &born),
    ] {
        let pid = kid.pid();
        let p = find(pid).unwrap_or_else(|| panic!("{what} ({pid}) is not in the snapshot"));
        let key = p.task.process.expect("a process key");
        assert_eq!((key.pid, key.start_time), (pid, start_time(pid)), "{what}");
        assert_eq!(p.task.ppid, Some(std::process::id()), "{what}");
        assert_eq!(
            p.details.argv.as_deref(),
            Some(&["/bin/sleep".to_string(), "120".to_string()][..]),
            "{what}"
        );
    }
    assert!(
        !listed.iter().any(|p| p
            .task
            .process
            .is_some_and(|k| (k.pid, k.start_time) == (ends.pid(), ends_key))),
        "the process that ended during the loss is in the snapshot"
    );
    assert!(
        find(std::process::id()).is_some(),
        "this test's process is in the snapshot"
    );
    survivor.end();
    drop(born);
    drop(d);
}

/// Waits until `pid` sleeps in nanosleep: past its exec, whose event the kernel
/// sends before the program runs.
fn wait_sleeping(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        if wchan.contains("nanosleep") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "sleep {pid} never started sleeping"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The sensor event of a journal record, if it is one.
fn event(r: &RawRecord) -> Option<EventKind> {
    match decode(r) {
        Entry::Event(ev) => Some(ev.kind),
        _ => None,
    }
}

#[test]
fn events_the_kernel_dropped_while_the_daemon_was_stopped_are_journaled_as_loss_and_resync() {
    let _one = one_at_a_time();
    let fx = Fixture::new();
    let d = Daemon::aetherd(&fx, "k", "Sensor = true\nSensorReceiveBuffer = \"64K\"\n");
    let journal = fx.path().join("k.journal.db");
    let (recs, ()) = wait_for(&journal, "the snapshot after the start", |recs| {
        snapshot(&triples(recs)).map(|_| ())
    });
    // The kernel doubles the size asked for (it counts its bookkeeping in it).
    let started = recs
        .iter()
        .find_map(|r| match decode(r) {
            Entry::Lifecycle(Lifecycle::SensorStarted { detail }) => Some(detail),
            _ => None,
        })
        .expect("a sensor_started record: the sensor must run here (root, initial namespaces)");
    assert_eq!(started, "receive buffer 131072 bytes");
    let mut ends = Kid::sleep();
    wait_for(&journal, "the exec of sleep", |recs| {
        exec_of(recs, ends.pid()).then_some(())
    });
    let ends_key = start_time(ends.pid());
    let mark = journal_records(&journal).len();

    let pid = d.pid();
    // SAFETY: kill on the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    wait_stopped(pid);
    // About 4 events in the buffer per KiB: 2,000 fill it many times over.
    thread_burst(1000);
    let born = Kid::sleep();
    wait_sleeping(born.pid());
    ends.end();
    // The kernel sends the exit event just after the parent could reap; more
    // events into the still-full buffer leave it ample time to be sent (and dropped).
    thread_burst(200);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);

    let found = |k: &EventKind| matches!(k, EventKind::ProcessFound(f) if f.task.pid == born.pid());
    let vanished = |k: &EventKind| {
        matches!(k, EventKind::ProcessVanished(v)
            if v.task.process.is_some_and(|p| (p.pid, p.start_time) == (ends.pid(), ends_key)))
    };
    let (recs, (f, v)) = wait_for(
        &journal,
        "process_found of the sleep started unseen and process_vanished of the one that ended unseen, then resync",
        |recs| {
            let kinds: Vec<Option<EventKind>> = recs[mark..].iter().map(event).collect();
            let f = kinds.iter().position(|k| k.as_ref().is_some_and(found))?;
            let v = kinds
                .iter()
                .position(|k| k.as_ref().is_some_and(vanished))?;
            kinds[f.max(v)..]
                .iter()
                .any(|k| matches!(k, Some(EventKind::Resync(_))))
                .then_some((mark + f, mark + v))
        },
    );
    // The kernel's loss was said before the resync's findings.
    let losses: Vec<(usize, LossCause)> = recs[mark..]
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match event(r) {
            Some(EventKind::Loss(l)) => Some((mark + i, l.cause)),
            _ => None,
        })
        .collect();
    assert!(
        losses.first().is_some_and(|(at, _)| *at < f.min(v)),
        "no loss record before the resync's findings: {losses:?}"
    );
    assert!(
        losses
            .iter()
            .all(|(_, c)| matches!(c, LossCause::KernelOverrun | LossCause::SequenceGap)),
        "lost in the kernel, not in the sensor's queue: {losses:?}"
    );
    // What the resync found carries what /proc showed.
    let Some(EventKind::ProcessFound(pf)) = event(&recs[f]) else {
        unreachable!("found above")
    };
    assert_eq!(
        pf.task.process.map(|k| (k.pid, k.start_time)),
        Some((born.pid(), start_time(born.pid())))
    );
    assert_eq!(
        pf.details.argv.as_deref(),
        Some(&["/bin/sleep".to_string(), "120".to_string()][..])
    );
    drop(born);
    drop(d);
}
