//! A stalled reader with a tiny receive buffer: the kernel must drop events, the
//! sensor must say so, and its resync must find the process that started unseen and
//! the one that ended unseen. A binary of its own, so no other test's threads add
//! to the flood.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;

use aether_events::{Event, EventKind};
use aether_sensor::SensorBuilder;
use common::*;

#[test]
fn stalled_reader_loses_reports_and_resyncs() {
    // Known to the sensor from its start; will end while the reader is stalled.
    let mut before = Command::new("/bin/sleep")
        .arg("60")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut w = start(SensorBuilder::new().rcvbuf(4096).paused(true));
    // ~4 events each, into a buffer that holds a handful.
    for _ in 0..200 {
        Command::new("/bin/true").status().unwrap();
    }
    let mut during = Command::new("/bin/sleep")
        .arg("60")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let (gone, born) = (before.id(), during.id());
    // spawn() returns once the child's new image is in place, a little before the
    // kernel sends its exec event; wait until it is sleeping in clock_nanosleep
    // (syscall 230), i.e. past its exec, so that event too meets the full buffer.
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let sc = std::fs::read_to_string(format!("/proc/{born}/syscall")).unwrap_or_default();
        if sc.starts_with("230 ") || sc.starts_with("35 ") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sleep never started sleeping"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    before.kill().unwrap();
    before.wait().unwrap();
    // The kernel sends an exit event just after the parent can reap; more spawns
    // into the still-full buffer leave it ample time to be sent (and dropped).
    for _ in 0..50 {
        Command::new("/bin/true").status().unwrap();
    }
    // Back to a normal buffer, so the machine's other activity (CI runs builds
    // alongside) does not keep overflowing it while the resync runs.
    let sensor = w.sensor.as_mut().unwrap();
    sensor.set_rcvbuf(aether_sensor::DEFAULT_RCVBUF).unwrap();
    sensor.resume_reader();

    let vanished =
        |e: &Arc<Event>| matches!(&e.kind, EventKind::ProcessVanished(v) if v.task.pid == gone);
    let found =
        |e: &Arc<Event>| matches!(&e.kind, EventKind::ProcessFound(f) if f.task.pid == born);
    let ok = w.until(|s| {
        let v = s.iter().position(vanished);
        let f = s.iter().position(found);
        let r = s
            .iter()
            .rposition(|e| matches!(e.kind, EventKind::Resync(_)));
        matches!((v, f, r), (Some(v), Some(f), Some(r)) if v < r && f < r)
    });
    during.kill().unwrap();
    during.wait().unwrap();
    let stats = w.stop();
    let about = |pid: u32| -> Vec<String> {
        w.seen
            .iter()
            .filter(|e| e.task().is_some_and(|t| t.pid == pid))
            .map(|e| format!("{}:{}", e.seq, e.kind_name()))
            .collect()
    };
    let resyncs: Vec<String> = w
        .seen
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::Resync(_)
                    | EventKind::Loss(_)
                    | EventKind::ProcessFound(_)
                    | EventKind::ProcessVanished(_)
            )
        })
        .map(|e| format!("{}:{:?}", e.seq, e.kind))
        .collect();
    assert!(
        ok,
        "resync did not report both processes; {gone} (ended unseen): {:?}; {born} (started unseen): {:?}; loss and resync events: {resyncs:#?}; stats {stats:?}",
        about(gone),
        about(born)
    );

    let first_loss = w
        .seen
        .iter()
        .position(|e| matches!(e.kind, EventKind::Loss(_)));
    let first_resync = w
        .seen
        .iter()
        .position(|e| matches!(e.kind, EventKind::Resync(_)));
    assert!(
        first_loss.is_some() && first_loss < first_resync,
        "a loss event comes before the resync"
    );
    assert!(stats.lost_kernel > 0 || stats.overruns > 0, "{stats:?}");
    assert!(stats.resyncs >= 1);
    let counted: u64 = w
        .seen
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Loss(l) if l.cause == aether_events::LossCause::SequenceGap => l.count,
            _ => None,
        })
        .sum();
    assert_eq!(
        counted, stats.lost_kernel,
        "every counted gap was reported as an event"
    );

    // The process found by the resync carries its real details.
    let f = w.seen.iter().find(|e| found(e)).unwrap();
    let EventKind::ProcessFound(pf) = &f.kind else {
        unreachable!()
    };
    assert_eq!(pf.task.exe.as_deref(), Some(real("/bin/sleep").as_str()));
    assert_eq!(
        pf.details.argv.as_deref(),
        Some(&["/bin/sleep".to_string(), "60".into()][..])
    );
    assert_eq!(pf.task.process.map(|k| k.pid), Some(born));
    // Numbering stays gap-free through loss and resync.
    for pair in w.seen.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }
}
