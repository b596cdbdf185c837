//! Helpers for tests against the real kernel. They need root (CAP_NET_ADMIN) and the
//! initial namespaces, as CI has. Other programs run on the machine meanwhile, so
//! every assertion looks only at the processes the test itself started.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_events::error::RecvTimeoutError;
use aether_events::{Bus, Event, EventKind, Subscriber};
use aether_sensor::{Sensor, SensorBuilder};

/// How long any test waits for the events it expects before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct Watch {
    pub sensor: Option<Sensor>,
    pub sub: Subscriber<Event>,
    pub seen: Vec<Arc<Event>>,
    pub lagged: u64,
}

pub fn start(builder: SensorBuilder) -> Watch {
    let bus = Bus::new(1 << 20);
    let sub = bus.subscribe();
    let sensor = builder
        .start(bus)
        .expect("sensor starts (tests need root and the initial namespaces)");
    Watch {
        sensor: Some(sensor),
        sub,
        seen: Vec::new(),
        lagged: 0,
    }
}

impl Watch {
    /// Collects events until `done(&seen)` or the deadline; returns whether `done`.
    pub fn until(&mut self, mut done: impl FnMut(&[Arc<Event>]) -> bool) -> bool {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if done(&self.seen) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            match self.sub.recv_timeout(deadline - now) {
                Ok(ev) => self.seen.push(ev),
                Err(RecvTimeoutError::Lagged(n)) => self.lagged += n,
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Closed) => {
                    return done(&self.seen);
                }
            }
        }
    }

    /// Events about process `pid` (as the task's process or a fork's child).
    pub fn of(&self, pid: u32) -> Vec<Arc<Event>> {
        self.seen
            .iter()
            .filter(|e| e.task().is_some_and(|t| t.pid == pid))
            .cloned()
            .collect()
    }

    /// Stops the sensor and collects what it published before stopping.
    pub fn stop(&mut self) -> aether_sensor::StatsSnapshot {
        let stats = self.sensor.take().map(|s| s.stop()).unwrap_or_default();
        loop {
            match self.sub.recv_timeout(PATIENCE) {
                Ok(ev) => self.seen.push(ev),
                Err(RecvTimeoutError::Lagged(n)) => self.lagged += n,
                Err(_) => break,
            }
        }
        stats
    }
}

pub fn kinds(events: &[Arc<Event>]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind_name()).collect()
}

pub fn has_exit(events: &[Arc<Event>], pid: u32) -> bool {
    events
        .iter()
        .any(|e| matches!(&e.kind, EventKind::Exit(x) if x.task.pid == pid && x.process_ended))
}

pub fn real(path: &str) -> String {
    std::fs::canonicalize(path)
        .expect("tool exists")
        .to_string_lossy()
        .into_owned()
}

/// Seq numbers strictly increase along `events` (order per process).
pub fn assert_ordered(events: &[Arc<Event>]) {
    for w in events.windows(2) {
        assert!(w[0].seq < w[1].seq, "events out of order: {w:?}");
    }
}
