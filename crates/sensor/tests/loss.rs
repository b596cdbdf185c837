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
    before.kill().unwrap();
    before.wait().unwrap();
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
    assert!(
        ok,
        "resync did not report both processes; saw {:?}",
        kinds(&w.seen)
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
