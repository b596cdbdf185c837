//! The logic of `aether monitor`: start a sensor, print each event (aligned columns
//! or one JSON object per line), and on Ctrl-C or SIGTERM print the counts. The
//! command in the `aether` binary only parses arguments and calls [`run`].

use std::io::{self, Write};
use std::time::{Duration, Instant};

use aether_events::error::RecvTimeoutError;
use aether_events::{Bus, Event, EventKind};

use crate::filter::Filter;
use crate::{Error, SensorBuilder, StatsSnapshot, sys};

/// Exit code for "could not run here" (privilege, namespace) and for failures.
pub const EXIT_ERROR: i32 = 2;

/// What to monitor and how to print it.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// One JSON object per line instead of columns.
    pub json: bool,
    /// Which events to print.
    pub filter: Filter,
    /// Socket receive buffer in bytes.
    pub rcvbuf: usize,
    /// Reader queue capacity in messages.
    pub queue: usize,
    /// Bus capacity: how far the printer may fall behind before it lags.
    pub bus_capacity: usize,
    /// Print exec-to-delivery latency percentiles at the end.
    pub latency: bool,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            json: false,
            filter: Filter::default(),
            rcvbuf: crate::DEFAULT_RCVBUF,
            queue: crate::DEFAULT_QUEUE,
            bus_capacity: 1 << 18,
            latency: false,
        }
    }
}

/// Parses a size such as `65536`, `512K`, `64M` or `1G` (powers of 1024).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let (digits, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: usize = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(format!("unknown size suffix in {t:?} (use K, M or G)")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let n: usize = digits.parse().map_err(|e| format!("bad size {t:?}: {e}"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {t:?} is too large"))
}

/// What the monitor counted, printed at the end.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The sensor's counters.
    pub sensor: StatsSnapshot,
    /// Events this subscriber missed because it fell behind.
    pub lagged: u64,
    /// Events printed (after filtering).
    pub printed: u64,
    /// Exec-to-delivery latencies, nanoseconds, when asked for.
    pub exec_latency_ns: Vec<u64>,
}

fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx.min(sorted.len() - 1)).copied()
}

impl Summary {
    /// The closing report.
    pub fn render(&mut self) -> String {
        let s = &self.sensor;
        let mut out = format!(
            "aether monitor: {} events received from the kernel, {} lost in the kernel ({} overrun reports), {} lost in the queue, {} missed by this printer, {} resyncs, {} malformed, {} events printed\n",
            s.received,
            s.lost_kernel,
            s.overruns,
            s.lost_queue,
            self.lagged,
            s.resyncs,
            s.malformed,
            self.printed
        );
        if !self.exec_latency_ns.is_empty() {
            self.exec_latency_ns.sort_unstable();
            let p50 = percentile(&self.exec_latency_ns, 0.50).unwrap_or(0);
            let p99 = percentile(&self.exec_latency_ns, 0.99).unwrap_or(0);
            out.push_str(&format!(
                "aether monitor: exec-to-delivery latency over {} execs: p50 {:.1} us, p99 {:.1} us\n",
                self.exec_latency_ns.len(),
                p50 as f64 / 1000.0,
                p99 as f64 / 1000.0
            ));
        }
        out
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// The header line of the column format.
pub const HEADER: &str =
    "     SEQ          TIME CPU KIND              PID     TID    PPID   UID  DETAILS";

/// One event in the column format.
pub fn format_line(ev: &Event) -> String {
    let t = ev.task();
    let details = match &ev.kind {
        EventKind::Fork(f) => {
            format!("{:?} parent={}/{}", f.fork_kind, f.parent_pid, f.parent_tid).to_lowercase()
        }
        EventKind::Exec(e) => {
            let mut s = opt(e.task.exe.as_deref());
            if let Some(argv) = &e.details.argv {
                s.push_str(&format!(" {argv:?}"));
            }
            if let Some(cwd) = &e.details.cwd {
                s.push_str(&format!(" cwd={cwd}"));
            }
            if let Some(m) = e.details.missing {
                s.push_str(&format!(" missing={m:?}").to_lowercase());
            }
            s
        }
        EventKind::ProcessFound(e) => {
            let mut s = opt(e.task.exe.as_deref());
            if let Some(argv) = &e.details.argv {
                s.push_str(&format!(" {argv:?}"));
            }
            s
        }
        EventKind::Exit(e) => {
            let how = match (e.status, e.signal) {
                (Some(st), _) => format!("status={st}"),
                (_, Some(sig)) => {
                    format!("signal={sig}{}", if e.core_dumped { " core" } else { "" })
                }
                _ => String::new(),
            };
            format!(
                "{how}{}",
                if e.process_ended {
                    " process-ended"
                } else {
                    ""
                }
            )
        }
        EventKind::Uid(c) | EventKind::Gid(c) => {
            format!("real={} effective={}", c.real, c.effective)
        }
        EventKind::Ptrace(p) => {
            if p.attached {
                format!("attached by {}/{}", p.tracer_pid, p.tracer_tid)
            } else {
                "detached".into()
            }
        }
        EventKind::Comm(c) => format!("comm={}", c.comm),
        EventKind::Loss(l) => {
            format!(
                "{:?} count={} cpu={}",
                l.cause,
                opt(l.count),
                opt(l.lost_cpu)
            )
        }
        EventKind::Resync(r) => format!(
            "found={} vanished={} processes={}",
            r.found, r.vanished, r.processes
        ),
        EventKind::Malformed(m) => m.error.clone(),
        EventKind::SnapshotBegin(b) => format!("snapshot={} processes={}", b.snapshot, b.processes),
        EventKind::ProcessSnapshot(p) => format!(
            "snapshot={} index={} exe={}",
            p.snapshot,
            p.index,
            p.task.exe.as_deref().unwrap_or("-")
        ),
        EventKind::SnapshotEnd(e) => format!("snapshot={} processes={}", e.snapshot, e.processes),
        _ => String::new(),
    };
    format!(
        "{:>8} {:>13.6} {:>3} {:<16} {:>7} {:>7} {:>7} {:>5}  {}",
        ev.seq,
        ev.time_ns as f64 / 1e9,
        opt(ev.cpu),
        ev.kind_name(),
        opt(t.map(|t| t.pid)),
        opt(t.map(|t| t.tid)),
        opt(t.and_then(|t| t.ppid)),
        opt(t.and_then(|t| t.uid)),
        details
    )
}

/// Runs the monitor until SIGINT/SIGTERM (or until the output closes), printing
/// events to `out` and messages and the final counts to `err`. Returns the exit code.
pub fn run(opts: &MonitorOptions, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let stop = match sys::install_stop_signals() {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "aether monitor: {e}");
            return EXIT_ERROR;
        }
    };
    let bus: Bus<Event> = Bus::new(opts.bus_capacity);
    let mut sub = bus.subscribe();
    let sensor = match SensorBuilder::new()
        .rcvbuf(opts.rcvbuf)
        .queue_capacity(opts.queue)
        .start(bus)
    {
        Ok(s) => s,
        Err(e) => {
            let hint = match &e {
                Error::NotPermitted(_) => "; run as root or grant CAP_NET_ADMIN",
                Error::NotInitialNetNamespace => "; run it in the host's network namespace",
                _ => "",
            };
            let _ = writeln!(err, "aether monitor: {e}{hint}");
            return EXIT_ERROR;
        }
    };
    let _ = writeln!(
        err,
        "aether monitor: listening (receive buffer {} bytes)",
        sensor.rcvbuf()
    );
    let _ = err.flush();
    let mut summary = Summary::default();
    let mut w = io::BufWriter::with_capacity(64 * 1024, out);
    if !opts.json && writeln!(w, "{HEADER}").is_err() {
        return 0;
    }
    let mut output_open = true;
    let handle =
        |ev: &Event, w: &mut io::BufWriter<&mut dyn Write>, summary: &mut Summary| -> bool {
            if opts.latency && matches!(ev.kind, EventKind::Exec(_)) {
                summary
                    .exec_latency_ns
                    .push(sys::monotonic_ns().saturating_sub(ev.time_ns));
            }
            if !opts.filter.matches(ev) {
                return true;
            }
            summary.printed += 1;
            let r = if opts.json {
                serde_json::to_writer(&mut *w, ev)
                    .map_err(io::Error::from)
                    .and_then(|_| w.write_all(b"\n"))
            } else {
                writeln!(w, "{}", format_line(ev))
            };
            r.is_ok()
        };
    let mut sub_done = false;
    // Flush when caught up, at most every FLUSH_EVERY: one write per event would
    // cost more than producing the event.
    const FLUSH_EVERY: Duration = Duration::from_millis(10);
    let mut last_flush = Instant::now();
    let mut dirty = false;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) && output_open {
        let timeout = if dirty {
            FLUSH_EVERY.saturating_sub(last_flush.elapsed())
        } else {
            Duration::from_millis(200)
        };
        match sub.recv_timeout(timeout) {
            Ok(ev) => {
                output_open = handle(&ev, &mut w, &mut summary);
                dirty = true;
                if output_open && sub.pending() == 0 && last_flush.elapsed() >= FLUSH_EVERY {
                    output_open = w.flush().is_ok();
                    dirty = false;
                    last_flush = Instant::now();
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                output_open = w.flush().is_ok();
                dirty = false;
                last_flush = Instant::now();
            }
            Err(RecvTimeoutError::Lagged(n)) => {
                summary.lagged += n;
                let _ = writeln!(
                    err,
                    "aether monitor: printing fell behind; {n} events were skipped"
                );
            }
            Err(RecvTimeoutError::Closed) => {
                sub_done = true;
                break;
            }
        }
    }
    summary.sensor = sensor.stop();
    // Print what the sensor published before it stopped.
    while output_open && !sub_done {
        match sub.recv_timeout(Duration::from_secs(1)) {
            Ok(ev) => output_open = handle(&ev, &mut w, &mut summary),
            Err(RecvTimeoutError::Lagged(n)) => summary.lagged += n,
            Err(_) => break,
        }
    }
    let _ = w.flush();
    let _ = err.write_all(summary.render().as_bytes());
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn lines_are_aligned_and_say_what_matters() {
        use aether_events::{Exit, Loss, LossCause, Task};
        let exit = Event {
            seq: 7,
            time_ns: 1_500_000_000,
            cpu: Some(1),
            kind: EventKind::Exit(Exit {
                task: Task {
                    pid: 42,
                    tid: 42,
                    ppid: Some(1),
                    uid: Some(0),
                    ..Task::default()
                },
                exit_code: 9,
                status: None,
                signal: Some(9),
                core_dumped: false,
                exit_signal: 17,
                process_ended: true,
            }),
        };
        let line = format_line(&exit);
        assert!(
            line.starts_with("       7      1.500000   1 exit"),
            "{line}"
        );
        assert!(line.ends_with("signal=9 process-ended"), "{line}");
        let loss = Event {
            seq: 8,
            time_ns: 0,
            cpu: None,
            kind: EventKind::Loss(Loss {
                cause: LossCause::SequenceGap,
                count: Some(3),
                lost_cpu: Some(0),
            }),
        };
        let line = format_line(&loss);
        assert!(
            line.contains("loss") && line.contains("SequenceGap count=3 cpu=0"),
            "{line}"
        );
        assert_eq!(line.find("loss"), HEADER.find("KIND"));
    }

    #[test]
    fn percentiles_pick_ranks() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(51));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
