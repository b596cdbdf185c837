//! The process sensor inside the daemon: started when the machine allows it,
//! every event it publishes forwarded to the journal, and a `/proc` resync
//! journaled first, right after the journal's gap record.
//!
//! Why the daemon resyncs by itself: the sensor reads `/proc` when it starts to
//! fill its own table, but publishes nothing for the processes it found, and its
//! public API has no way to ask it for a resync. So the daemon lists `/proc`
//! once the sensor runs and journals one `running` record per process, then a
//! `resynced` record. Events for processes that start during the listing are
//! buffered on the sensor's bus meanwhile and journaled after it, so a process
//! may appear both as running and in a fork or exec that follows: repeated,
//! never missing.

use std::sync::Arc;
use std::thread::JoinHandle;

use aether_events::{Bus, Event, ProcessFound, ProcessKey, Task};
use aether_journal::{Entry, Lifecycle};
use aether_sensor::procfs::{ProcFs, StartCheck};
use aether_sensor::{Sensor, SensorBuilder, StatsSnapshot};

use crate::recorder::Recorder;

/// Events held for the forwarder at most; past it, the oldest are lost to it and
/// journaled as an `events_lost` record.
const BUS: usize = 1 << 18;

/// The sensor and its forwarding thread.
pub struct Running {
    sensor: Sensor,
    forwarder: JoinHandle<()>,
}

impl Running {
    pub fn stats(&self) -> StatsSnapshot {
        self.sensor.stats()
    }

    /// Stops the sensor, then waits until everything it published is queued for
    /// the journal.
    pub fn stop(self) {
        let _ = self.sensor.stop();
        let _ = self.forwarder.join();
    }
}

/// Starts the sensor, or says why it cannot run here (the daemon runs without it).
pub fn start(recorder: &Recorder) -> Result<Running, String> {
    let bus: Bus<Event> = Bus::new(BUS);
    let mut events = bus.subscribe();
    let sensor = SensorBuilder::new().start(bus).map_err(|e| e.to_string())?;
    recorder.lifecycle(Lifecycle::SensorStarted {
        detail: format!("receive buffer {} bytes", sensor.rcvbuf()),
    });
    let rec = recorder.clone();
    let forwarder = std::thread::Builder::new()
        .name("aetherd-events".into())
        .spawn(move || {
            resync(&rec);
            loop {
                match events.recv() {
                    Ok(ev) => rec.record(Entry::Event(Arc::unwrap_or_clone(ev))),
                    Err(aether_events::error::RecvError::Lagged(n)) => {
                        tracing::warn!("{n} sensor events lost: the journal fell behind");
                        rec.lifecycle(Lifecycle::EventsLost { count: n });
                    }
                    Err(_) => break,
                }
            }
        })
        .map_err(|e| format!("cannot start the event forwarding thread: {e}"))?;
    Ok(Running { sensor, forwarder })
}

/// Journals every process running now, then the end of the resync.
fn resync(rec: &Recorder) {
    let procfs = ProcFs::new("/proc");
    let boot_id = match procfs.boot_id() {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("no /proc resync: cannot read the boot id: {e}");
            return;
        }
    };
    let list = match procfs.list() {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("no /proc resync: cannot list /proc: {e}");
            return;
        }
    };
    let mut n = 0u64;
    for (pid, stat) in list {
        if stat.state == b'Z' || stat.state == b'X' {
            continue;
        }
        let read = procfs.read(pid, StartCheck::Exact(stat.start_time));
        let Some(st) = read.stat else {
            // Gone (or reused) between the listing and the read.
            continue;
        };
        let task = Task {
            pid,
            tid: pid,
            ppid: Some(st.ppid),
            process: Some(ProcessKey {
                boot_id,
                pid,
                start_time: st.start_time,
            }),
            uid: read.uid,
            exe: read.exe,
        };
        rec.record(Entry::Running(ProcessFound {
            task,
            details: read.details,
        }));
        n += 1;
    }
    rec.lifecycle(Lifecycle::Resynced { processes: n });
}
