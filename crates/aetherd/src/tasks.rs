//! What is running now, for STATS.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use aether_clamd::StatsTask;

#[derive(Default)]
pub struct Tasks {
    next: AtomicU64,
    running: Mutex<HashMap<u64, (&'static str, Instant, String)>>,
    /// Jobs waiting for a scanning slot.
    pub queued: AtomicU32,
}

pub struct TaskGuard<'t> {
    tasks: &'t Tasks,
    id: u64,
}

impl Tasks {
    pub fn start(&self, command: &'static str, filename: String) -> TaskGuard<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, (command, Instant::now(), filename));
        TaskGuard { tasks: self, id }
    }

    pub fn snapshot(&self) -> Vec<StatsTask> {
        let now = Instant::now();
        let mut v: Vec<(u64, StatsTask)> = self
            .lock()
            .iter()
            .map(|(id, (c, t, f))| {
                (
                    *id,
                    StatsTask {
                        command: c.to_string(),
                        seconds: now.duration_since(*t).as_secs_f64(),
                        filename: f.clone(),
                    },
                )
            })
            .collect();
        v.sort_by_key(|(id, _)| *id);
        v.into_iter().map(|(_, t)| t).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (&'static str, Instant, String)>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for TaskGuard<'_> {
    fn drop(&mut self) {
        self.tasks.lock().remove(&self.id);
    }
}
