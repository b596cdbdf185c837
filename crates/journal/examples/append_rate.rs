//! Journal append rate and bytes per event: appends sensor-like exec events in
//! batches of 1024, commits each batch, and prints events/s and bytes per event.
//!
//! `cargo run --release -p aether-journal --example append_rate [EVENTS]`

use std::time::Instant;

use aether_events::{Event, EventKind, Exec, ProcessDetails, Task};
use aether_journal::{Entry, Journal, Options};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(500_000);
    let dir = std::env::temp_dir().join(format!("aether-journal-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating a temporary directory");
    let path = dir.join("journal.db");
    let mut journal = Journal::open(&path, Options::default()).expect("opening the journal");
    let start = Instant::now();
    for seq in 0..n {
        let pid = 1000 + (seq % 30_000) as u32;
        let event = Event {
            seq,
            time_ns: 1_000_000 + seq * 1000,
            cpu: Some((seq % 2) as u32),
            kind: EventKind::Exec(Exec {
                task: Task {
                    pid,
                    tid: pid,
                    ppid: Some(1),
                    process: None,
                    uid: Some(1000),
                    exe: Some("/usr/bin/ls".into()),
                },
                details: ProcessDetails {
                    argv: Some(vec!["ls".into(), "-l".into(), "/tmp".into()]),
                    cwd: Some("/home/user".into()),
                    euid: Some(1000),
                    missing: None,
                },
            }),
        };
        journal.append(Entry::Event(event)).expect("appending");
    }
    journal.flush().expect("committing");
    let elapsed = start.elapsed();
    let used = journal.used_bytes().expect("page counts");
    journal.close().expect("closing");
    let file = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "{n} exec events in {:.2} s: {:.0} events/s; {:.1} bytes/event in pages, {:.1} bytes/event on disk",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        used as f64 / n as f64,
        file as f64 / n as f64,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
