//! How much a stalled reader survives: the sensor subscribes, its reader is held
//! back, two threads run N fork+exec+wait of a program, then the reader drains and
//! the counts say what the receive buffer held and what was lost (and reported).
//!
//! cargo run --release -p aether-sensor --example stalled_storm -- [N] [RCVBUF] [PROGRAM]
//! (defaults: 20000, 64M, /bin/true). Needs root.

use std::process::Command;
use std::time::{Duration, Instant};

use aether_events::Bus;
use aether_events::error::RecvTimeoutError;
use aether_sensor::SensorBuilder;
use aether_sensor::monitor::parse_size;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let total: usize = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    let rcvbuf = match args.get(2) {
        Some(s) => parse_size(s).map_err(anyhow::Error::msg)?,
        None => aether_sensor::DEFAULT_RCVBUF,
    };
    let program = args.get(3).cloned().unwrap_or_else(|| "/bin/true".into());

    let bus = Bus::new(1 << 22);
    let mut sub = bus.subscribe();
    let sensor = SensorBuilder::new()
        .rcvbuf(rcvbuf)
        .paused(true)
        .start(bus)?;
    let start = Instant::now();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let program = program.clone();
            std::thread::spawn(move || {
                for _ in 0..total / 2 {
                    let _ = Command::new(&program).status();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| anyhow::anyhow!("worker panicked"))?;
    }
    let storm = start.elapsed();
    sensor.resume_reader();
    // Drain until the stream has been quiet for a second (bounded by a minute).
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut events, mut losses) = (0u64, 0u64);
    while Instant::now() < deadline {
        match sub.recv_timeout(Duration::from_secs(1)) {
            Ok(ev) => {
                events += 1;
                if ev.kind_name() == "loss" {
                    losses += 1;
                }
            }
            Err(RecvTimeoutError::Lagged(n)) => events += n,
            Err(_) => break,
        }
    }
    let stats = sensor.stop();
    println!(
        "{total} spawns in {:.1}s with the reader stalled; receive buffer {} bytes granted",
        storm.as_secs_f64(),
        2 * rcvbuf
    );
    println!(
        "kernel messages received {}, lost in the kernel {} ({} overrun reports), lost in the queue {}; {} events published, {} loss events, {} resyncs",
        stats.received,
        stats.lost_kernel,
        stats.overruns,
        stats.lost_queue,
        events,
        losses,
        stats.resyncs
    );
    Ok(())
}
