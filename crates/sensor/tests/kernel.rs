//! The sensor against the real kernel: processes and threads of known behaviour, and
//! the events they must produce, each once, in order, with the right fields.
//!
//! Needs root and the initial namespaces (CI has both). Every child is started by the
//! test, held on a pipe where its fields must be read, and reaped by the test.

mod common;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, mpsc};

use aether_events::{Event, EventKind, ForkKind, MissingReason};
use aether_sensor::SensorBuilder;
use common::*;

fn held(program: &str, args: &[&str]) -> Child {
    Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn")
}

fn release(mut child: Child) -> std::process::ExitStatus {
    drop(child.stdin.take());
    child.wait().expect("wait")
}

fn forks_of(evs: &[Arc<Event>], tid: u32) -> Vec<Arc<Event>> {
    evs.iter()
        .filter(|e| matches!(&e.kind, EventKind::Fork(f) if f.task.tid == tid))
        .cloned()
        .collect()
}

fn execs(evs: &[Arc<Event>]) -> Vec<Arc<Event>> {
    evs.iter()
        .filter(|e| matches!(e.kind, EventKind::Exec(_)))
        .cloned()
        .collect()
}

fn exits_of(evs: &[Arc<Event>], tid: u32) -> Vec<Arc<Event>> {
    evs.iter()
        .filter(|e| matches!(&e.kind, EventKind::Exit(x) if x.task.tid == tid))
        .cloned()
        .collect()
}

fn exec_seen(pid: u32, exe: String) -> impl Fn(&[Arc<Event>]) -> bool {
    move |s| {
        s.iter().any(|e| matches!(&e.kind, EventKind::Exec(x) if x.task.pid == pid && x.task.exe.as_deref() == Some(exe.as_str())))
    }
}

fn start_time_in_proc(pid: u32) -> u64 {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).expect("child alive");
    aether_sensor::procfs::parse_stat(&stat)
        .expect("stat parses")
        .start_time
}

#[test]
fn fork_exec_exit_arrive_once_in_order_with_fields() {
    let mut w = start(SensorBuilder::new());
    let child = held("/bin/sh", &["-c", "read x; exit 7"]);
    let pid = child.id();
    assert!(
        w.until(exec_seen(pid, real("/bin/sh"))),
        "exec of {pid} not seen"
    );
    let start_time = start_time_in_proc(pid);
    let status = release(child);
    assert_eq!(status.code(), Some(7));
    assert!(w.until(|s| has_exit(s, pid)), "exit of {pid} not seen");

    let evs = w.of(pid);
    assert_ordered(&evs);
    let forks = forks_of(&evs, pid);
    let execs = execs(&evs);
    let exits = exits_of(&evs, pid);
    assert_eq!(
        (forks.len(), execs.len(), exits.len()),
        (1, 1, 1),
        "{:?}",
        kinds(&evs)
    );
    assert!(forks[0].seq < execs[0].seq && execs[0].seq < exits[0].seq);

    let EventKind::Fork(f) = &forks[0].kind else {
        unreachable!()
    };
    assert_eq!(f.fork_kind, ForkKind::Process);
    assert_eq!(f.parent_pid, std::process::id());
    assert_eq!(f.parent.map(|k| k.pid), Some(std::process::id()));
    let key = f.task.process.expect("fork names the child's key");
    assert_eq!(
        (key.pid, key.start_time),
        (pid, start_time),
        "key matches /proc"
    );

    let EventKind::Exec(x) = &execs[0].kind else {
        unreachable!()
    };
    assert_eq!(x.task.process, Some(key));
    assert_eq!(x.task.exe.as_deref(), Some(real("/bin/sh").as_str()));
    assert_eq!(
        x.details.argv.as_deref(),
        Some(&["/bin/sh".to_string(), "-c".into(), "read x; exit 7".into()][..])
    );
    assert_eq!(
        x.details.cwd.as_deref(),
        Some(std::env::current_dir().unwrap().to_str().unwrap())
    );
    assert_eq!(x.task.uid, Some(0));
    assert_eq!(x.details.euid, Some(0));
    assert_eq!(x.details.missing, None);
    assert_eq!(x.task.ppid, Some(std::process::id()));

    let EventKind::Exit(e) = &exits[0].kind else {
        unreachable!()
    };
    assert_eq!(e.task.process, Some(key));
    assert_eq!(
        (e.status, e.signal, e.core_dumped, e.process_ended),
        (Some(7), None, false, true)
    );
    assert_eq!(e.exit_signal, libc::SIGCHLD);
    // Gap-free numbering across everything this subscriber saw.
    for pair in w.seen.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }
    let stats = w.stop();
    assert_eq!(
        stats.lost_kernel + stats.lost_queue + stats.overruns,
        0,
        "{stats:?}"
    );
}

#[test]
fn signals_are_reported_as_signals() {
    let mut w = start(SensorBuilder::new());
    let mut killed = held("/bin/sleep", &["30"]);
    let mut termed = held("/bin/sleep", &["30"]);
    let (k, t) = (killed.id(), termed.id());
    let sleep = real("/bin/sleep");
    assert!(w.until(|s| exec_seen(k, sleep.clone())(s) && exec_seen(t, sleep.clone())(s)));
    killed.kill().unwrap();
    // SAFETY: t is our own child, not yet reaped.
    unsafe { libc::kill(t as i32, libc::SIGTERM) };
    assert_eq!(killed.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_eq!(termed.wait().unwrap().signal(), Some(libc::SIGTERM));
    assert!(w.until(|s| has_exit(s, k) && has_exit(s, t)));
    for (pid, sig) in [(k, libc::SIGKILL), (t, libc::SIGTERM)] {
        let exits = exits_of(&w.of(pid), pid);
        assert_eq!(exits.len(), 1);
        let EventKind::Exit(e) = &exits[0].kind else {
            unreachable!()
        };
        assert_eq!(
            (e.status, e.signal, e.core_dumped),
            (None, Some(sig), false)
        );
    }
}

#[test]
fn setuid_child_reports_uid_and_gid_changes() {
    let mut w = start(SensorBuilder::new());
    let child = held(
        "/usr/bin/setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/bin/sh",
            "-c",
            "read x",
        ],
    );
    let pid = child.id();
    assert!(
        w.until(exec_seen(pid, real("/bin/sh"))),
        "exec of sh after setpriv not seen"
    );
    release(child);
    assert!(w.until(|s| has_exit(s, pid)));
    let evs = w.of(pid);
    assert_ordered(&evs);
    let uid: Vec<_> = evs
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Uid(_)))
        .collect();
    let gid: Vec<_> = evs
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Gid(_)))
        .collect();
    assert_eq!((uid.len(), gid.len()), (1, 1), "{:?}", kinds(&evs));
    let EventKind::Uid(u) = &uid[0].kind else {
        unreachable!()
    };
    assert_eq!((u.real, u.effective), (65534, 65534));
    let EventKind::Gid(g) = &gid[0].kind else {
        unreachable!()
    };
    assert_eq!((g.real, g.effective), (65534, 65534));
    let execs = execs(&evs);
    assert_eq!(execs.len(), 2, "setpriv, then sh");
    let EventKind::Exec(last) = &execs[1].kind else {
        unreachable!()
    };
    assert!(uid[0].seq < execs[1].seq);
    assert_eq!(
        (last.task.uid, last.details.euid),
        (Some(65534), Some(65534))
    );
}

#[test]
fn exec_chain_reports_every_exec_and_never_lends_a_later_image() {
    let mut w = start(SensorBuilder::new());
    let child = held("/bin/sh", &["-c", "exec /bin/sh -c 'exec /bin/cat'"]);
    let pid = child.id();
    assert!(
        w.until(exec_seen(pid, real("/bin/cat"))),
        "final exec not seen"
    );
    release(child);
    assert!(w.until(|s| has_exit(s, pid)));
    let evs = w.of(pid);
    assert_ordered(&evs);
    let execs = execs(&evs);
    assert_eq!(execs.len(), 3, "{:?}", kinds(&evs));
    let argvs = [
        vec!["/bin/sh", "-c", "exec /bin/sh -c 'exec /bin/cat'"],
        vec!["/bin/sh", "-c", "exec /bin/cat"],
        vec!["/bin/cat"],
    ];
    for (i, ev) in execs.iter().enumerate() {
        let EventKind::Exec(x) = &ev.kind else {
            unreachable!()
        };
        let expected_exe = if i < 2 {
            real("/bin/sh")
        } else {
            real("/bin/cat")
        };
        match x.details.missing {
            // Read in time: it must be this exec's image, not a later one.
            None => {
                assert_eq!(
                    x.task.exe.as_deref(),
                    Some(expected_exe.as_str()),
                    "exec {i}"
                );
                let want: Vec<String> = argvs[i].iter().map(|s| s.to_string()).collect();
                assert_eq!(x.details.argv.as_ref(), Some(&want), "exec {i}");
            }
            Some(reason) => {
                assert!(i < 2, "the last image waits on stdin and must be read");
                assert!(
                    matches!(reason, MissingReason::Superseded | MissingReason::Gone),
                    "{reason:?}"
                );
                assert!(
                    x.details.argv.is_none() && x.task.exe.is_none(),
                    "missing means nothing is lent"
                );
            }
        }
    }
}

#[test]
fn many_threads_are_told_apart_from_processes() {
    const THREADS: usize = 40;
    let mut w = start(SensorBuilder::new());
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let (tx, rx) = mpsc::channel();
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (b, tx) = (barrier.clone(), tx.clone());
            std::thread::spawn(move || {
                // SAFETY: gettid has no arguments.
                tx.send(unsafe { libc::gettid() } as u32).unwrap();
                b.wait();
            })
        })
        .collect();
    let tids: Vec<u32> = (0..THREADS).map(|_| rx.recv().unwrap()).collect();
    barrier.wait();
    for h in handles {
        h.join().unwrap();
    }
    let me = std::process::id();
    let done = |s: &[Arc<Event>]| tids.iter().all(|t| !exits_of(s, *t).is_empty());
    assert!(w.until(done), "thread exits not all seen");
    for tid in &tids {
        let forks = forks_of(&w.seen, *tid);
        let exits = exits_of(&w.seen, *tid);
        assert_eq!((forks.len(), exits.len()), (1, 1), "thread {tid}");
        let EventKind::Fork(f) = &forks[0].kind else {
            unreachable!()
        };
        assert_eq!(f.fork_kind, ForkKind::Thread);
        assert_eq!(f.task.pid, me);
        assert_eq!(f.task.process.map(|k| k.pid), Some(me));
        let EventKind::Exit(e) = &exits[0].kind else {
            unreachable!()
        };
        assert!(!e.process_ended, "a thread's exit does not end the process");
        assert_eq!(e.status, Some(0));
        assert!(forks[0].seq < exits[0].seq);
    }
}

#[test]
fn sid_comm_and_coredump_are_reported() {
    let mut w = start(SensorBuilder::new());
    let dir = std::env::temp_dir().join(format!("aether-core-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sid = Command::new("/usr/bin/setsid")
        .args(["/bin/sh", "-c", "read x"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let comm = held("/bin/sh", &["-c", "printf renamed > /proc/$$/comm; read x"]);
    let core = Command::new("/bin/sh")
        .args(["-c", "ulimit -c unlimited; exec /bin/sleep 30"])
        .current_dir(&dir)
        .spawn()
        .unwrap();
    let (s, c, d) = (sid.id(), comm.id(), core.id());
    let renamed = |ev: &Arc<Event>| matches!(&ev.kind, EventKind::Comm(x) if x.task.tid == c && x.comm == "renamed");
    assert!(w.until(|evs| {
        evs.iter()
            .any(|e| matches!(&e.kind, EventKind::Sid(x) if x.task.pid == s))
            && evs.iter().any(renamed)
            && exec_seen(d, real("/bin/sleep"))(evs)
    }));
    let mut core = core;
    // SAFETY: d is our own child, not yet reaped.
    unsafe { libc::kill(d as i32, libc::SIGSEGV) };
    let status = core.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGSEGV));
    release(sid);
    release(comm);
    assert!(w.until(|evs| has_exit(evs, d) && has_exit(evs, s) && has_exit(evs, c)));
    let dumps: Vec<_> = w
        .of(d)
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::Coredump(_)))
        .collect();
    assert_eq!(dumps.len(), 1);
    let exit = exits_of(&w.of(d), d);
    let EventKind::Exit(e) = &exit[0].kind else {
        unreachable!()
    };
    assert_eq!(e.signal, Some(libc::SIGSEGV));
    assert_eq!(
        e.core_dumped,
        status.core_dumped(),
        "the kernel's own account"
    );
    assert!(dumps[0].seq < exit[0].seq);
    assert_eq!(
        w.of(s)
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Sid(_)))
            .count(),
        1
    );
    assert_eq!(w.seen.iter().filter(|e| renamed(e)).count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ptrace_attach_and_detach_are_reported() {
    let mut w = start(SensorBuilder::new());
    let mut child = held("/bin/sleep", &["30"]);
    let pid = child.id();
    assert!(w.until(exec_seen(pid, real("/bin/sleep"))));
    let me = std::process::id();
    // SAFETY: plain ptrace calls on our own child; the pointers are null as the
    // requests allow, and waitpid gets a valid status pointer.
    unsafe {
        assert_eq!(
            libc::ptrace(libc::PTRACE_ATTACH, pid as i32, 0usize, 0usize),
            0
        );
        let mut st = 0;
        assert_eq!(libc::waitpid(pid as i32, &mut st, libc::__WALL), pid as i32);
        assert_eq!(
            libc::ptrace(libc::PTRACE_DETACH, pid as i32, 0usize, 0usize),
            0
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(w.until(|s| has_exit(s, pid)));
    let tr: Vec<_> = w
        .of(pid)
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::Ptrace(_)))
        .collect();
    assert_eq!(tr.len(), 2);
    let EventKind::Ptrace(a) = &tr[0].kind else {
        unreachable!()
    };
    assert!(a.attached);
    assert_eq!(a.tracer_pid, me);
    let EventKind::Ptrace(d) = &tr[1].kind else {
        unreachable!()
    };
    assert!(!d.attached);
    assert_eq!(d.tracer_pid, 0);
}

/// Kernels from 6.6 filter per listener but number messages for all: a listener
/// subscribed to exec only sees gaps that are not loss. The sensor subscribes to all
/// events and must see none (docs/events.md, seq.rs).
#[test]
fn a_filtered_listener_sees_gaps_the_sensor_does_not() {
    use aether_sensor::decode::{Body, decode_datagram, what};
    use aether_sensor::seq::{Observation, SeqTracker};
    use aether_sensor::sys::{ConnectorSocket, RecvBatch};

    let filtered = ConnectorSocket::open().unwrap();
    filtered.set_rcvbuf_force(16 << 20).unwrap();
    filtered
        .set_recv_timeout(std::time::Duration::from_millis(100))
        .unwrap();
    filtered.send_listen_for(what::EXEC, 0x5eed).unwrap();
    let mut w = start(SensorBuilder::new());

    let mut pids = Vec::new();
    for _ in 0..30 {
        let mut c = Command::new("/bin/true").spawn().unwrap();
        pids.push(c.id());
        c.wait().unwrap();
    }
    assert!(w.until(|s| pids.iter().all(|p| has_exit(s, *p))));

    let mut tracker = SeqTracker::new();
    let (mut gaps, mut kinds_seen, mut execs_seen) =
        (0u64, std::collections::HashSet::new(), 0usize);
    let mut batch = RecvBatch::new(64);
    let deadline = std::time::Instant::now() + PATIENCE;
    while execs_seen < pids.len() && std::time::Instant::now() < deadline {
        if filtered.recv_batch(&mut batch).is_err() {
            continue;
        }
        for d in batch.datagrams() {
            for m in decode_datagram(d.bytes).flatten() {
                if let Observation::Gap(n) = tracker.observe(m.cpu, m.seq) {
                    gaps += n;
                }
                kinds_seen.insert(std::mem::discriminant(&m.body));
                if let Body::Exec { tgid, .. } = m.body
                    && pids.contains(&tgid)
                {
                    execs_seen += 1;
                }
            }
        }
    }
    // Old kernels count listeners until told otherwise.
    let _ = filtered.send_op(aether_sensor::sys::PROC_CN_MCAST_IGNORE, 0x5eee);
    assert_eq!(execs_seen, pids.len(), "the filtered socket saw every exec");
    let stats = w.stop();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if version >= (6, 6) {
        assert!(
            gaps > 0,
            "a filtered listener sees the numbers of events it was not sent"
        );
        assert!(
            kinds_seen.len() <= 2,
            "only exec events (and acks) reach it"
        );
    }
    assert_eq!(
        stats.lost_kernel, 0,
        "the sensor, subscribed to everything, sees no gaps: {stats:?}"
    );
}

#[test]
fn the_same_pid_never_lends_details_to_another_process() {
    // Exec details are read through a /proc/<pid> directory descriptor checked
    // against the start time: a process that already ended gives "gone", never
    // someone else's fields. Short-lived /bin/true runs exercise that path.
    let mut w = start(SensorBuilder::new());
    let mut pids = Vec::new();
    for _ in 0..50 {
        let mut c = Command::new("/bin/true").spawn().unwrap();
        pids.push(c.id());
        c.wait().unwrap();
    }
    assert!(w.until(|s| pids.iter().all(|p| has_exit(s, *p))));
    let t = real("/bin/true");
    for pid in pids {
        let evs = w.of(pid);
        let execs = execs(&evs);
        assert_eq!(execs.len(), 1, "pid {pid}: {:?}", kinds(&evs));
        let EventKind::Exec(x) = &execs[0].kind else {
            unreachable!()
        };
        match x.details.missing {
            None => assert_eq!(x.task.exe.as_deref(), Some(t.as_str())),
            Some(r) => {
                // Gone before it could be read (or, if its PID was already taken
                // by a new program, conservatively superseded): nothing lent.
                assert!(
                    matches!(r, MissingReason::Gone | MissingReason::Superseded),
                    "pid {pid}: {r:?}"
                );
                assert!(
                    x.task.exe.as_deref().is_none_or(|e| e == t),
                    "pid {pid}: {:?}",
                    x.task.exe
                );
            }
        }
    }
    let _ = std::io::stdout().flush();
}
