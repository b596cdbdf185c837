//! Snapshots against the real kernel: what `Sensor::request_snapshot` publishes is
//! every running process, in pid order, between a begin and an end event, in order
//! with the event stream: a process that ran before it and ended after it is in it
//! and its exit follows it; a process started after it is not in it and its fork
//! follows it.
//!
//! Needs root and the initial namespaces (CI has both).

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;

use aether_events::{Event, EventKind, ProcessSnapshot};
use aether_sensor::SensorBuilder;
use aether_sensor::procfs::ProcFs;
use common::*;

/// Live processes (no zombies) and their start times.
fn running() -> HashMap<u32, u64> {
    ProcFs::new("/proc")
        .list()
        .unwrap()
        .into_iter()
        .filter(|(_, st)| st.state != b'Z' && st.state != b'X')
        .map(|(pid, st)| (pid, st.start_time))
        .collect()
}

fn exec_of(events: &[Arc<Event>], pid: u32) -> Option<usize> {
    events
        .iter()
        .position(|e| matches!(&e.kind, EventKind::Exec(x) if x.task.pid == pid))
}

#[test]
fn a_snapshot_lists_every_running_process_in_order_with_the_stream() {
    let mut w = start(SensorBuilder::new());
    let mut before = Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let before_pid = before.id();
    // The table holds it with its program once its exec went by.
    assert!(w.until(|s| exec_of(s, before_pid).is_some()), "no exec");

    let listed_before = running();
    w.sensor.as_ref().unwrap().request_snapshot();
    assert!(
        w.until(|s| s
            .iter()
            .any(|e| matches!(e.kind, EventKind::SnapshotEnd(_)))),
        "no snapshot within {PATIENCE:?}"
    );
    let listed_after = running();

    let mut after = Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let after_pid = after.id();
    before.kill().unwrap();
    before.wait().unwrap();
    assert!(
        w.until(|s| has_exit(s, before_pid) && exec_of(s, after_pid).is_some()),
        "no exit of {before_pid} or exec of {after_pid}"
    );
    after.kill().unwrap();
    after.wait().unwrap();
    let stats = w.stop();
    assert_eq!(stats.snapshots, 1);

    let seen = &w.seen;
    let b = seen
        .iter()
        .position(|e| matches!(e.kind, EventKind::SnapshotBegin(_)))
        .expect("snapshot_begin");
    let EventKind::SnapshotBegin(begin) = &seen[b].kind else {
        unreachable!()
    };
    assert_eq!(begin.snapshot, 1);
    let n = usize::try_from(begin.processes).unwrap();
    // Exactly `processes` entries, then the end, nothing else between, numbered on.
    let listed: Vec<&ProcessSnapshot> = seen[b + 1..b + 1 + n]
        .iter()
        .map(|e| match &e.kind {
            EventKind::ProcessSnapshot(p) => p,
            other => panic!("{other:?} inside the snapshot"),
        })
        .collect();
    match &seen[b + 1 + n].kind {
        EventKind::SnapshotEnd(end) => {
            assert_eq!((end.snapshot, end.processes), (1, begin.processes))
        }
        other => panic!("{other:?} instead of snapshot_end"),
    }
    for (i, w) in seen[b..=b + 1 + n].windows(2).enumerate() {
        assert_eq!(w[1].seq, w[0].seq + 1, "event numbers at {i}");
    }
    for (i, p) in listed.iter().enumerate() {
        assert_eq!((p.snapshot, p.index), (1, i as u64));
    }
    let pids: Vec<u32> = listed.iter().map(|p| p.task.pid).collect();
    assert!(pids.windows(2).all(|w| w[0] < w[1]), "not in pid order");

    // Every process that ran, unchanged, from before the request to after the
    // snapshot is in it, with the start time /proc gives.
    let by_pid: HashMap<u32, &ProcessSnapshot> = listed.iter().map(|p| (p.task.pid, *p)).collect();
    for (pid, start) in &listed_before {
        if listed_after.get(pid) != Some(start) {
            continue;
        }
        let p = by_pid
            .get(pid)
            .unwrap_or_else(|| panic!("running process {pid} missing from the snapshot"));
        let key = p.task.process.expect("process key");
        assert_eq!((key.pid, key.start_time), (*pid, *start));
    }
    // Our own process and the child that ran throughout, with what /proc says.
    let me = by_pid
        .get(&std::process::id())
        .expect("this test's process");
    assert_eq!(
        me.task.exe.as_deref(),
        Some(std::env::current_exe().unwrap().to_str().unwrap())
    );
    let child = by_pid
        .get(&before_pid)
        .expect("the child running throughout");
    assert_eq!(
        child.task.exe.as_deref(),
        Some(real("/usr/bin/sleep").as_str())
    );
    assert_eq!(child.task.ppid, Some(std::process::id()));
    assert_eq!(
        child.details.argv.as_deref(),
        Some(&["sleep".to_string(), "60".to_string()][..])
    );
    // Its exit follows the snapshot; the later child is not in it, its exec follows.
    let exit = seen
        .iter()
        .position(|e| matches!(&e.kind, EventKind::Exit(x) if x.task.pid == before_pid))
        .unwrap();
    assert!(exit > b + n + 1, "exit at {exit} before the snapshot's end");
    assert!(!by_pid.contains_key(&after_pid));
    assert!(exec_of(seen, after_pid).unwrap() > b + n + 1);
}
