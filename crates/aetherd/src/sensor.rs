//! The process sensor inside the daemon: started when the machine allows it,
//! every event it publishes forwarded to the journal, and a snapshot of the
//! running processes journaled after every gap.
//!
//! A gap is the time the daemon was down (the journal's `writer_started` record
//! says so first) or events the daemon's subscription lost by falling behind the
//! sensor (an `events_lost` record). After either, the daemon asks the sensor for
//! a snapshot ([`aether_sensor::Sensor::request_snapshot`]): the sensor publishes
//! its own table, in order with its events (`snapshot_begin`, one
//! `process_snapshot` per process, `snapshot_end`), so the journal holds what runs
//! now and the events that follow continue from exactly that state: nothing
//! repeated, nothing missing. (Loss inside the sensor, from the kernel, is
//! repaired by the sensor's own resync and journaled as its events.)

use std::sync::Arc;
use std::thread::JoinHandle;

use aether_events::{Bus, Event};
use aether_journal::{Entry, Lifecycle};
use aether_sensor::{Sensor, SensorBuilder, StatsSnapshot};

use crate::recorder::Recorder;

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
///
/// `buffer` (`SensorBuffer`) is how many events the sensor holds for the
/// forwarder at most: when the forwarder falls further behind (the journal's
/// queue full, its disk stalled), the oldest are lost to it, journaled as an
/// `events_lost` record with their exact count, and a snapshot follows.
/// `rcvbuf` (`SensorReceiveBuffer`) is the kernel socket's buffer, in bytes, where
/// events wait while the sensor itself is not reading (the daemon stopped or
/// starved of CPU); past it the kernel drops them and the sensor's `loss` and
/// resync events say so.
pub fn start(recorder: &Recorder, buffer: usize, rcvbuf: usize) -> Result<Running, String> {
    let bus: Bus<Event> = Bus::new(buffer);
    let mut events = bus.subscribe();
    let sensor = SensorBuilder::new()
        .rcvbuf(rcvbuf)
        .start(bus)
        .map_err(|e| e.to_string())?;
    recorder.lifecycle(Lifecycle::SensorStarted {
        detail: format!("receive buffer {} bytes", sensor.rcvbuf()),
    });
    // What ran while nothing was recorded (before this start) is unknown: the
    // snapshot says what runs now.
    sensor.request_snapshot();
    let snapshots = sensor.snapshots();
    let rec = recorder.clone();
    let forwarder = std::thread::Builder::new()
        .name("aetherd-events".into())
        .spawn(move || {
            loop {
                match events.recv() {
                    Ok(ev) => rec.record(Entry::Event(Arc::unwrap_or_clone(ev))),
                    Err(aether_events::error::RecvError::Lagged(n)) => {
                        tracing::warn!("{n} sensor events lost: the journal fell behind");
                        rec.lifecycle(Lifecycle::EventsLost { count: n });
                        snapshots.request();
                    }
                    Err(_) => break,
                }
            }
        })
        .map_err(|e| format!("cannot start the event forwarding thread: {e}"))?;
    Ok(Running { sensor, forwarder })
}
