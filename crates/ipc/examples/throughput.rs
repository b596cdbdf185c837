//! IPC throughput and latency over the Unix socket (1 and 16 subscribers) and over
//! UDP, with an in-memory journal as the replay source.
//!
//! `cargo run --release -p aether-ipc --example throughput [RECORDS [SUBSCRIBERS]]`
//!
//! Prints, for each run: records/s until every subscriber has the last record, lag
//! notices, and (at a paced 50,000 records/s) p50 and p99 latency from publish to
//! receipt; for UDP paced at 50,000 records/s, what was refilled after NACKs.
//!
//! Each Unix-socket run is made twice: publishing record by record, and publishing
//! in batches as aetherd does (one batch per journal commit: up to 256 records flat
//! out, the 50 records of each millisecond when paced); a third run publishes in
//! batches to subscribers reading live records from the shared-memory ring
//! (`Client::subscribe_shared`, label `ring`).

use std::error::Error;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aether_ipc::msg::Record;
use aether_ipc::udp::{Key, UdpConfig, UdpReceiver, UdpSender};
use aether_ipc::{GroupPolicy, Hub, Replay, Server, ServerConfig};

#[path = "common/reader.rs"]
mod reader;
use reader::Got;

#[derive(Default)]
struct Store(RwLock<Vec<Record>>);

impl Replay for Store {
    fn read_from(&self, seq: u64, max: usize) -> Result<Vec<Record>, String> {
        let v = self.0.read().map_err(|e| e.to_string())?;
        let start = usize::try_from(seq).unwrap_or(usize::MAX).min(v.len());
        Ok(v[start..].iter().take(max).cloned().collect())
    }
}

/// A record about the size of a journaled exec event; `time_ns` carries the publish
/// instant (ns since `epoch`) for latency.
fn record(seq: u64, epoch: Option<Instant>) -> Record {
    Record {
        seq,
        time_ns: epoch.map_or(0, |e| e.elapsed().as_nanos() as u64),
        kind: 1,
        name: "exec".into(),
        data: vec![b'x'; 200],
    }
}

fn publish(store: &Store, hub: &Hub, rec: Record) -> Result<(), Box<dyn Error>> {
    store
        .0
        .write()
        .map_err(|e| e.to_string())?
        .push(rec.clone());
    hub.publish(rec);
    Ok(())
}

/// Appends then publishes `recs` as one batch.
fn publish_batch(store: &Store, hub: &Hub, recs: Vec<Record>) -> Result<(), Box<dyn Error>> {
    store
        .0
        .write()
        .map_err(|e| e.to_string())?
        .extend(recs.iter().cloned());
    hub.publish_batch(recs);
    Ok(())
}

struct Run {
    rate: f64,
    lags: usize,
    p50_us: f64,
    p99_us: f64,
}

/// How records reach the subscribers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Published one by one, read from the socket.
    OneByOne,
    /// Published in batches, read from the socket.
    Batched,
    /// Published in batches, read from the shared-memory ring.
    Ring,
}

async fn unix_run(
    subscribers: usize,
    n: u64,
    pace: Option<u64>,
    mode: Mode,
) -> Result<Run, Box<dyn Error>> {
    let batched = mode != Mode::OneByOne;
    let dir = std::env::temp_dir().join(format!("aether-ipc-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("s.sock");
    let store = Arc::new(Store::default());
    // Slots: records when publishing one by one, batches when batched.
    let hub = Hub::new(if batched { 512 } else { 65_536 });
    let config = ServerConfig {
        max_frame: 1 << 20,
        frame_timeout: Duration::from_secs(5),
        authorize: Arc::new(GroupPolicy { group: None }),
        control: None,
        scan: None,
        max_scans_in_flight: 0,
        refusals: None,
    };
    tokio::spawn(Server::bind(&path, 0o600, config, hub.clone(), store.clone())?.run());
    let epoch = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..subscribers {
        clients.push(reader::subscribe(&path, 0, mode == Mode::Ring).await?);
    }
    // Publish record 0 and wait for every subscriber to have it: all are live.
    publish(&store, &hub, record(0, Some(epoch)))?;
    let mut tasks = Vec::new();
    let paced = pace.is_some();
    let sample = if pace.is_some_and(|p| p > 100_000) {
        8
    } else {
        1
    };
    for mut c in clients {
        let last = n - 1;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut lags = 0;
            // Every record once, in order: anything else is loss (or a bug).
            let mut next = 0u64;
            // One frame reused for every record, as a subscriber reading flat
            // out should (`Client::next_frame_into`).
            let mut f = aether_ipc::msg::Frame::default();
            loop {
                match c.next(&mut f).await {
                    Err(e) => return Err(format!("stream ended: {e}")),
                    Ok(Got::Record(seq, time_ns)) => {
                        if seq != next {
                            return Err(format!("expected record {next}, got {seq}"));
                        }
                        next += 1;
                        // Latency only where it is measured (paced runs): a clock
                        // read per record is a tenth of the cost of a delivery.
                        // At 500,000/s every 8th record is timed (a sample
                        // spread over every position in the batches).
                        if paced && (sample == 1 || seq % sample == 0) {
                            lat.push(epoch.elapsed().as_nanos() as u64 - time_ns);
                        }
                        if seq == last {
                            return Ok((lat, lags));
                        }
                    }
                    Ok(Got::Lagged) => lags += 1,
                    Ok(Got::Other(other)) => return Err(format!("unexpected frame: {other}")),
                }
            }
        }));
    }
    let start = Instant::now();
    match pace {
        None if batched => {
            let mut seq = 1;
            while seq < n {
                let end = (seq + 256).min(n);
                publish_batch(&store, &hub, (seq..end).map(|s| record(s, None)).collect())?;
                seq = end;
                tokio::task::yield_now().await;
            }
        }
        None => {
            for seq in 1..n {
                publish(&store, &hub, record(seq, None))?;
                if seq % 1024 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }
        Some(per_sec) => {
            // Batches of 50 every millisecond for 50,000/s (500 for 500,000/s).
            let per_ms = (per_sec / 1000).max(1);
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let mut seq = 1;
            while seq < n {
                tick.tick().await;
                let end = (seq + per_ms).min(n);
                if batched {
                    publish_batch(
                        &store,
                        &hub,
                        (seq..end).map(|s| record(s, Some(epoch))).collect(),
                    )?;
                } else {
                    for s in seq..end {
                        publish(&store, &hub, record(s, Some(epoch)))?;
                    }
                }
                seq = end;
            }
        }
    }
    let mut all = Vec::new();
    let mut lags = 0;
    for t in tasks {
        let (lat, l) = t.await??;
        all.extend(lat);
        lags += l;
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |&ns| ns as f64 / 1000.0)
    };
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Run {
        rate: n as f64 / secs,
        lags,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    })
}

/// UDP paced at 50,000/s: records/s received, refilled, NACKs sent, given up,
/// and latency p50/p99 (µs) of the records that arrived first time.
async fn udp_run(n: u64) -> Result<(f64, u64, u64, u64, f64, f64), Box<dyn Error>> {
    let key = Key::from_bytes(&[9u8; 32]).ok_or("key")?;
    let store = Arc::new(Store::default());
    let epoch = Instant::now();
    for seq in 0..n {
        store
            .0
            .write()
            .map_err(|e| e.to_string())?
            .push(record(seq, Some(epoch)));
    }
    let mut rx = UdpReceiver::bind(&UdpConfig::default(), key.clone()).await?;
    let sender = Arc::new(
        UdpSender::new(&UdpConfig::default(), rx.local_addr()?, key, store.clone()).await?,
    );
    let nacks = tokio::spawn({
        let s = sender.clone();
        async move { s.serve_nacks().await }
    });
    let start = Instant::now();
    let send = tokio::spawn({
        let s = sender.clone();
        let store = store.clone();
        async move {
            // Paced at 50,000/s (50 a millisecond): loopback UDP has no flow control,
            // and a sender flat out only measures how fast the kernel drops.
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            for seq in 0..n {
                if seq % 50 == 0 {
                    tick.tick().await;
                }
                let rec = store.read_from(seq, 1).unwrap_or_default();
                if let Some(r) = rec.first() {
                    // Stamped as it goes, for latency (a refill carries the
                    // stored stamp and is not timed).
                    let mut r = r.clone();
                    r.time_ns = epoch.elapsed().as_nanos() as u64;
                    let _ = s.send(&r).await;
                }
            }
            // A lost tail is found only by a heartbeat: send them until stopped.
            loop {
                let _ = s.heartbeat().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    // Until every record arrived or was given up (more than MAX_MISSING missing at
    // once), or 60 s passed.
    let mut got = 0u64;
    let mut lat = Vec::with_capacity(n as usize);
    let lost = |rx: &UdpReceiver| rx.stats.lost.load(std::sync::atomic::Ordering::Relaxed);
    while got + lost(&rx) < n {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(r) => {
                let r = r?;
                if !r.refill {
                    lat.push((epoch.elapsed().as_nanos() as u64).saturating_sub(r.record.time_ns));
                }
                got += 1;
            }
            Err(_) => break,
        }
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |&ns| ns as f64 / 1000.0)
    };
    let (p50, p99) = (pct(0.50), pct(0.99));
    let secs = start.elapsed().as_secs_f64();
    let lost = lost(&rx);
    send.abort();
    nacks.abort();
    let refilled = rx.stats.refilled.load(std::sync::atomic::Ordering::Relaxed);
    let nacked = rx.stats.nacks.load(std::sync::atomic::Ordering::Relaxed);
    Ok((got as f64 / secs, refilled, nacked, lost, p50, p99))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    // A second argument runs only that many subscribers, batched (for profiling).
    let only: Option<usize> = std::env::args().nth(2).and_then(|a| a.parse().ok());
    for subs in only.map_or(vec![1, 16], |s| vec![s]) {
        for mode in [Mode::OneByOne, Mode::Batched, Mode::Ring] {
            if only.is_some() && mode == Mode::OneByOne {
                continue;
            }
            // A third argument, `ring` or `unix`, runs only that transport.
            if let Some(t) = std::env::args().nth(3)
                && (t == "ring") != (mode == Mode::Ring)
            {
                continue;
            }
            let (how, transport) = match mode {
                Mode::OneByOne => ("one by one", "unix"),
                Mode::Batched => ("batched", "unix"),
                Mode::Ring => ("batched", "ring"),
            };
            let r = unix_run(subs, n, None, mode).await?;
            println!(
                "{transport}, {subs:>2} subscriber(s), {how:>10}, flat out: {:>9.0} records/s ({:.0} deliveries/s), {} lag notices, no loss",
                r.rate,
                r.rate * subs as f64,
                r.lags
            );
            // Five seconds at the rate: a p99 over one second is decided by
            // two or three scheduling stalls.
            let paced = (n * 5 / 4).max(10_000);
            let r = unix_run(subs, paced, Some(50_000), mode).await?;
            println!(
                "{transport}, {subs:>2} subscriber(s), {how:>10}, 50,000/s: p50 {:.0} us, p99 {:.0} us, {} lag notices, no loss",
                r.p50_us, r.p99_us, r.lags
            );
            // The throughput target as a rate kept up: 500 records every
            // millisecond, every subscriber keeping up without lagging.
            if mode != Mode::OneByOne {
                // Five times as many records: two seconds at the rate.
                let r = unix_run(subs, n * 5, Some(500_000), mode).await?;
                println!(
                    "{transport}, {subs:>2} subscriber(s), {how:>10}, 500,000/s: {:.0} records/s each, p50 {:.0} us, p99 {:.0} us (1 record in 8 timed), {} lag notices, no loss",
                    r.rate, r.p50_us, r.p99_us, r.lags
                );
            }
        }
    }
    if only.is_some() {
        return Ok(());
    }
    // Loopback UDP drops what the receive buffer cannot hold: NACKs refill it.
    let (rate, refilled, nacks, lost, p50, p99) = udp_run(n.min(100_000)).await?;
    println!(
        "udp, 1 receiver, paced at 50,000/s: {rate:.0} records/s received, p50 {p50:.0} us, p99 {p99:.0} us, {refilled} refilled after {nacks} NACKs, {lost} given up"
    );
    Ok(())
}
