//! The daemon's whole path, measured: events appended to a real SQLite journal by a
//! writer thread that drains its queue and commits in batches (as aetherd's), each
//! commit published as one batch, delivered over the Unix socket (`unix`) or
//! the shared-memory ring (`ring`) to 1 or 16 subscribers, who check that
//! every record arrives once and in order.
//!
//! `cargo run --release -p aether-ipc --example pipeline [EVENTS]`
//!
//! Latency is from the moment an event is made (before it is queued for the
//! journal) to its receipt by a subscriber, wall clock on one machine.

use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aether_events::{Event, EventKind, Exec, ProcessDetails, Task};
use aether_ipc::msg::Record;
use aether_ipc::{GroupPolicy, Hub, Replay, Server, ServerConfig};

#[path = "common/reader.rs"]
mod reader;
use aether_journal::{Entry, Journal, Options, Reader};
use reader::Got;

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// An exec event as the sensor makes them (about 260 bytes of JSON).
fn exec(seq: u64) -> Entry {
    let pid = 1000 + (seq % 30_000) as u32;
    Entry::Event(Event {
        seq,
        time_ns: seq * 1000,
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
    })
}

/// The journal as the replay source, as aetherd's `JournalReplay`.
struct JournalReplay {
    path: std::path::PathBuf,
    idle: Mutex<Vec<Reader>>,
}

impl Replay for JournalReplay {
    fn read_from(&self, seq: u64, max: usize) -> Result<Vec<Record>, String> {
        let reader = self.idle.lock().map_err(|e| e.to_string())?.pop();
        let reader = match reader {
            Some(r) => r,
            None => Reader::open(&self.path).map_err(|e| e.to_string())?,
        };
        let out = reader
            .read_raw_from(seq)
            .take(max)
            .map(|r| {
                r.map(|raw| Record {
                    seq: raw.seq,
                    time_ns: raw.time_ns,
                    kind: u32::from(raw.kind),
                    name: raw.name,
                    data: raw.data,
                })
                .map_err(|e| e.to_string())
            })
            .collect();
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(reader);
        }
        out
    }
}

struct Run {
    rate: f64,
    lags: usize,
    p50_us: f64,
    p99_us: f64,
    /// From the event's making to its commit, and from the commit to receipt.
    commit_p99_us: f64,
    deliver_p99_us: f64,
    /// How long the commits themselves took.
    flush_p99_us: f64,
    flush_max_us: f64,
    bytes_per_event: f64,
}

/// The writer: drains the queue, appends with the event's creation time, commits,
/// publishes the commit as one batch, and keeps the journal under its size limit
/// a little at a time (aetherd's recorder loop).
fn writer(
    mut journal: Journal,
    rx: crossbeam_channel::Receiver<(Entry, u64)>,
    hub: Hub,
    committed_at: Arc<Vec<AtomicU64>>,
) -> Result<(Journal, Vec<u64>), String> {
    journal.keep_committed(true);
    // How long each commit took.
    let mut commits = Vec::new();
    let mut last_housekeeping = Instant::now();
    let mut trimming = false;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut n = 0;
        while let Some((entry, t)) = next.take() {
            journal.append_at(entry, t).map_err(|e| e.to_string())?;
            n += 1;
            if n >= 8192 {
                break;
            }
            next = rx.try_recv().ok();
        }
        let t = Instant::now();
        journal.flush().map_err(|e| e.to_string())?;
        commits.push(t.elapsed().as_nanos() as u64);
        let committed = journal.take_committed();
        let now = wall_ns();
        for raw in &committed {
            if let Some(at) = usize::try_from(raw.seq)
                .ok()
                .and_then(|i| committed_at.get(i))
            {
                at.store(now, Ordering::Relaxed);
            }
        }
        let batch: Vec<Record> = committed
            .into_iter()
            .map(|raw| Record {
                seq: raw.seq,
                time_ns: raw.time_ns,
                kind: u32::from(raw.kind),
                name: raw.name,
                data: raw.data,
            })
            .collect();
        hub.publish_batch(batch);
        if last_housekeeping.elapsed() >= Duration::from_secs(1) {
            last_housekeeping = Instant::now();
            trimming = true;
        }
        if trimming {
            let t = journal
                .trim(wall_ns(), n as u64 + 64)
                .map_err(|e| e.to_string())?;
            trimming = t.more && t.removed > 0;
        }
    }
    Ok((journal, commits))
}

/// `max_bytes`: the journal's size limit (retention), if any; `ring`: the
/// subscribers read live records from the shared-memory ring.
async fn run(
    subscribers: usize,
    n: u64,
    pace: Option<u64>,
    max_bytes: Option<u64>,
    ring: bool,
) -> Result<Run, Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("journal.db");
    let mut options = Options::default();
    options.retention.max_bytes = max_bytes;
    let journal = Journal::open(&db, options)?;
    // The WriterStarted record is 0; events are 1..=n.
    let last = n;
    let hub = Hub::new(512);
    let replay = Arc::new(JournalReplay {
        path: db.clone(),
        idle: Mutex::new(Vec::new()),
    });
    let sock = dir.path().join("s.sock");
    let config = ServerConfig {
        max_frame: 1 << 20,
        frame_timeout: Duration::from_secs(5),
        authorize: Arc::new(GroupPolicy { group: None }),
        control: None,
        scan: None,
        max_scans_in_flight: 0,
        refusals: None,
    };
    let server = tokio::spawn(Server::bind(&sock, 0o600, config, hub.clone(), replay)?.run());
    let committed_at: Arc<Vec<AtomicU64>> = Arc::new((0..=n).map(|_| AtomicU64::new(0)).collect());
    let mut tasks = Vec::new();
    for _ in 0..subscribers {
        let committed_at = committed_at.clone();
        let mut c = reader::subscribe(&sock, 0, ring).await?;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n as usize);
            let mut lags = 0;
            let mut next = 0u64;
            let mut f = aether_ipc::msg::Frame::default();
            loop {
                match c.next(&mut f).await? {
                    Got::Record(seq, time_ns) => {
                        if seq != next {
                            return Err(format!("expected {next}, got {seq}"));
                        }
                        next += 1;
                        if seq > 0 {
                            let now = wall_ns();
                            let committed = usize::try_from(seq)
                                .ok()
                                .and_then(|i| committed_at.get(i))
                                .map_or(0, |a| a.load(Ordering::Relaxed));
                            lat.push((
                                now.saturating_sub(time_ns),
                                committed.saturating_sub(time_ns),
                                now.saturating_sub(committed),
                            ));
                        }
                        if seq == last {
                            return Ok((lat, lags));
                        }
                    }
                    Got::Lagged => lags += 1,
                    Got::Other(other) => return Err(other),
                }
            }
        }));
    }
    let (tx, rx) = crossbeam_channel::bounded::<(Entry, u64)>(1 << 16);
    let writer = {
        let hub = hub.clone();
        let committed_at = committed_at.clone();
        std::thread::spawn(move || writer(journal, rx, hub, committed_at))
    };
    let start = Instant::now();
    let producer = std::thread::spawn(move || {
        match pace {
            None => {
                for seq in 1..=n {
                    if tx.send((exec(seq), wall_ns())).is_err() {
                        return;
                    }
                }
            }
            Some(per_sec) => {
                // Bursts every millisecond, on time on average.
                let per_ms = (per_sec / 1000).max(1);
                let t0 = Instant::now();
                let mut seq = 1;
                let mut ms = 0u64;
                while seq <= n {
                    let due = t0 + Duration::from_millis(ms);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    for _ in 0..per_ms {
                        if seq <= n {
                            if tx.send((exec(seq), wall_ns())).is_err() {
                                return;
                            }
                            seq += 1;
                        }
                    }
                    ms += 1;
                }
            }
        }
    });
    let mut all = Vec::new();
    let mut lags = 0;
    for t in tasks {
        let (lat, l) = t.await??;
        all.extend(lat);
        lags += l;
    }
    let secs = start.elapsed().as_secs_f64();
    producer.join().map_err(|_| "producer panicked")?;
    let (journal, commits) = writer.join().map_err(|_| "writer panicked")??;
    let used = journal.used_bytes()?;
    server.abort();
    let pct = |mut v: Vec<u64>, p: f64| {
        v.sort_unstable();
        v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
            .map_or(0.0, |&ns| ns as f64 / 1000.0)
    };
    let total: Vec<u64> = all.iter().map(|t| t.0).collect();
    let commit: Vec<u64> = all.iter().map(|t| t.1).collect();
    let deliver: Vec<u64> = all.iter().map(|t| t.2).collect();
    Ok(Run {
        rate: n as f64 / secs,
        lags,
        p50_us: pct(total.clone(), 0.50),
        p99_us: pct(total, 0.99),
        commit_p99_us: pct(commit, 0.99),
        flush_p99_us: pct(commits.clone(), 0.99),
        flush_max_us: pct(commits, 1.0),
        deliver_p99_us: pct(deliver, 0.99),
        bytes_per_event: used as f64 / n as f64,
    })
}

/// The figures of a run paced at 50,000/s, as `ipc_bench.sh` reads them.
fn paced_figures(r: &Run) -> String {
    format!(
        "50,000/s: p50 {:.0} us, p99 {:.0} us (made->committed p99 {:.0} us, committed->received p99 {:.0} us; commits p99 {:.0} us, max {:.0} us), {} lag notices, no loss",
        r.p50_us,
        r.p99_us,
        r.commit_p99_us,
        r.deliver_p99_us,
        r.flush_p99_us,
        r.flush_max_us,
        r.lags
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    for (subs, ring) in [(1, false), (16, false), (1, true), (16, true)] {
        let t = if ring { "ring" } else { "unix" };
        let r = run(subs, n, None, None, ring).await?;
        println!(
            "journal+{t}, {subs:>2} subscriber(s), flat out: {:>7.0} events/s end to end, {:.0} deliveries/s, p50 {:.0} us, p99 {:.0} us, {} lag notices, {:.0} bytes/event, no loss",
            r.rate,
            r.rate * subs as f64,
            r.p50_us,
            r.p99_us,
            r.lags,
            r.bytes_per_event
        );
        // Five seconds at the rate: a p99 over one second is decided by two
        // or three scheduling stalls.
        let paced = (n * 5 / 4).max(10_000);
        let r = run(subs, paced, Some(50_000), None, ring).await?;
        println!(
            "journal+{t}, {subs:>2} subscriber(s), {}",
            paced_figures(&r)
        );
    }
    // The journal at its size limit for most of 3 s: from the first second on
    // the writer removes old records while it appends (aetherd at its
    // JournalMaxSize under a storm).
    let r = run(1, 150_000, Some(50_000), Some(4 << 20), false).await?;
    println!(
        "journal at its size limit (4 MiB)+unix,  1 subscriber(s), {}",
        paced_figures(&r)
    );
    Ok(())
}
