//! `aether events`, `aether status` and `aether reload`: clients of aetherd's
//! IPC socket (`docs/protocol.md`). `aether scan --daemon` lives with `scan`
//! (`scan/via_daemon.rs`) and asks this module for the daemon's status.
//!
//! `events` subscribes from a cursor: the daemon replays its journal from there
//! and goes on with live records, with no gap and no duplicate. With `--follow`
//! the command also survives a daemon restart: it reconnects and subscribes
//! again from the next record it has not printed, so nothing is printed twice
//! and nothing committed is missed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aether_events::{Event, EventKind};
use aether_ipc::msg::{Body, Frame, Record};
use aether_ipc::{Client, ClientError};
use aether_journal::{Entry, Lifecycle, Verdict};
use anyhow::{Context, bail};
use serde_json::Value;

/// aetherd's IPC socket unless `--socket` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/aether/aetherd.sock";

/// Options of `aether events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Keep printing records as they are committed (and reconnect if the
    /// daemon restarts). Without it: print what the journal holds and exit.
    #[arg(short, long)]
    pub follow: bool,
    /// Start at this journal sequence number. Default: the next record with
    /// --follow, the oldest record kept without.
    #[arg(long, value_name = "SEQ")]
    pub since: Option<u64>,
    /// One JSON object per record (seq, time_ns, kind, name, data).
    #[arg(long)]
    pub json: bool,
    /// aetherd's IPC socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
}

/// Options of `aether status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print the daemon's status as JSON.
    #[arg(long)]
    pub json: bool,
    /// aetherd's IPC socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
}

/// Options of `aether reload`.
#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    /// aetherd's IPC socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn connect(socket: &Path) -> anyhow::Result<Client> {
    Client::connect(socket)
        .await
        .with_context(|| format!("cannot talk to aetherd at {}", socket.display()))
}

/// How long a daemon may take to answer `status`: a stopped daemon (its
/// socket still accepts connections) is an error, not a hang.
const STATUS_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `status` and returns the daemon's JSON.
async fn fetch_status(socket: &Path, timeout: Duration) -> anyhow::Result<Value> {
    let ask = async {
        let mut c = connect(socket).await?;
        Ok::<_, anyhow::Error>(c.control(1, "status", "").await?)
    };
    let r = tokio::time::timeout(timeout, ask).await.map_err(|_| {
        anyhow::anyhow!(
            "aetherd at {} did not answer within {timeout:?}",
            socket.display()
        )
    })??;
    if !r.ok {
        bail!("aetherd refused status: {}", r.message);
    }
    serde_json::from_str(&r.message).context("aetherd sent a status that is not JSON")
}

/// The number of signatures aetherd has loaded (its `status`): what `aether
/// scan --daemon` prints as "Known viruses". Fails when the daemon cannot be
/// reached.
pub fn daemon_signatures(socket: &Path, timeout: Duration) -> anyhow::Result<u64> {
    let st = runtime()?.block_on(fetch_status(socket, timeout))?;
    st["database"]["signatures"]
        .as_u64()
        .context("aetherd's status has no signature count")
}

/// `aether status`: 0, or 2 when the daemon cannot be reached.
pub fn status(args: StatusArgs) -> anyhow::Result<u8> {
    let st = runtime()?.block_on(fetch_status(&args.socket, STATUS_TIMEOUT))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{st}")?;
    } else {
        out.write_all(render_status(&st).as_bytes())?;
    }
    Ok(0)
}

fn num(v: &Value, path: &[&str]) -> String {
    let mut v = v;
    for p in path {
        v = &v[*p];
    }
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn bytes(v: &Value, path: &[&str]) -> String {
    let mut v = v;
    for p in path {
        v = &v[*p];
    }
    match v.as_u64() {
        Some(b) if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        Some(b) if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        Some(b) if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        Some(b) => format!("{b} B"),
        None => "-".into(),
    }
}

fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m {s}s")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// The status as aligned `name: value` lines, grouped.
pub fn render_status(st: &Value) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("version", format!("aetherd {}", num(st, &["version"]))),
        ("pid", num(st, &["pid"])),
        (
            "uptime",
            duration(st["uptime_seconds"].as_u64().unwrap_or(0)),
        ),
        ("memory (RSS)", bytes(st, &["rss_bytes"])),
        ("signatures", num(st, &["database", "signatures"])),
        (
            "reloads",
            format!(
                "{} ok, {} failed",
                num(st, &["database", "reloads"]),
                num(st, &["database", "reload_failures"])
            ),
        ),
    ];
    if let Some(last) = st["database"]["last_reload"].as_str() {
        rows.push(("last reload", last.to_string()));
    }
    rows.push((
        "scans",
        format!(
            "{} scanned, {} infected, {} running, {} queued",
            num(st, &["scans", "scanned"]),
            num(st, &["scans", "infected"]),
            num(st, &["scans", "running"]),
            num(st, &["scans", "queued"])
        ),
    ));
    let sensor = &st["sensor"];
    if sensor["running"].as_bool() == Some(true) {
        let c = &sensor["counters"];
        rows.push((
            "sensor",
            format!(
                "running: {} events, {} resyncs",
                num(c, &["published"]),
                num(c, &["resyncs"])
            ),
        ));
        rows.push((
            "sensor losses",
            format!(
                "kernel {}, overruns {}, queue {}, malformed {}",
                num(c, &["lost_kernel"]),
                num(c, &["overruns"]),
                num(c, &["lost_queue"]),
                num(c, &["malformed"])
            ),
        ));
    } else {
        rows.push((
            "sensor",
            format!("not running: {}", num(sensor, &["reason"])),
        ));
    }
    let j = &st["journal"];
    match j["path"].as_str() {
        Some(path) => {
            rows.push(("journal", path.to_string()));
            rows.push((
                "journal records",
                format!(
                    "last seq {}, {} committed since start, {} dropped",
                    num(j, &["last_seq"]),
                    num(j, &["committed"]),
                    num(j, &["dropped"])
                ),
            ));
            rows.push(("journal size", bytes(j, &["used_bytes"])));
        }
        None => rows.push(("journal", format!("none: {}", num(j, &["problem"])))),
    }
    if let Some(p) = j["problem"].as_str()
        && j["path"].is_string()
    {
        rows.push(("journal problem", p.to_string()));
    }
    rows.push(("subscribers", num(st, &["subscribers"])));
    // Daemons before the shared-memory ring do not report it.
    let ring = &st["ring"];
    if let Some(why) = ring["failed"].as_str() {
        rows.push(("ring", format!("could not be made: {why}")));
    } else if ring["bytes"].is_u64() {
        rows.push((
            "ring",
            format!(
                "{}, {} readers",
                bytes(ring, &["bytes"]),
                num(ring, &["readers"])
            ),
        ));
    } else if ring.is_object() {
        rows.push(("ring", "not made yet (no subscriber asked for it)".into()));
    }
    // Daemons before this field did not count refusals.
    if st["refused"].is_object() {
        rows.push((
            "refused",
            format!(
                "{} connections, {} control commands, {} scans",
                num(st, &["refused", "connect"]),
                num(st, &["refused", "control"]),
                num(st, &["refused", "scan"])
            ),
        ));
    }
    let width = rows.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{:<width$}  {v}\n", format!("{k}:")))
        .collect()
}

/// `aether reload`: 0 when the new database is in service, 1 when it failed to
/// load (the old one keeps serving), 2 when the daemon cannot be reached.
pub fn reload(args: ReloadArgs) -> anyhow::Result<u8> {
    let reply = runtime()?.block_on(async {
        let mut c = connect(&args.socket).await?;
        if !c.welcome().control_allowed {
            bail!(
                "aetherd at {} takes control commands from root only (you are uid {})",
                args.socket.display(),
                c.welcome().uid
            );
        }
        Ok(c.control(1, "reload", "").await?)
    })?;
    if reply.ok {
        println!("{}", reply.message);
        Ok(0)
    } else {
        eprintln!("aether reload: {}", reply.message);
        Ok(1)
    }
}

/// `aether events`.
pub fn events(args: EventsArgs) -> anyhow::Result<u8> {
    runtime()?.block_on(follow(args))
}

async fn follow(args: EventsArgs) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    // Where to start, and (without --follow) where to stop.
    let (mut next, end) = match (args.since, args.follow) {
        (Some(s), true) => (s, None),
        (since, follow) => {
            let st = fetch_status(&args.socket, STATUS_TIMEOUT).await?;
            let last = st["journal"]["last_seq"].as_u64();
            if follow {
                (last.map_or(0, |l| l + 1), None)
            } else {
                match last {
                    Some(l) => (since.unwrap_or(0), Some(l)),
                    None => return Ok(0),
                }
            }
        }
    };
    if end.is_some_and(|e| next > e) {
        return Ok(0);
    }
    if !args.json {
        writeln!(out, "{}", header())?;
    }
    let mut reconnecting = false;
    loop {
        let client = match connect(&args.socket).await {
            Ok(c) => c,
            Err(e) if reconnecting => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        if reconnecting {
            eprintln!("aether events: reconnected; resuming at {next}");
        }
        // Live records through the daemon's shared-memory ring when it has
        // one: followers then cost the daemon nothing per record.
        let mut sub = client.subscribe_shared(next).await?;
        let mut frame = Frame::default();
        loop {
            match sub.next_frame_into(&mut frame).await {
                Ok(()) => {}
                Err(ClientError::Closed | ClientError::Io(_)) if args.follow => {
                    eprintln!("aether events: aetherd went away; reconnecting");
                    reconnecting = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
            match &frame.body {
                Some(Body::Record(rec)) => {
                    if rec.seq < next {
                        continue;
                    }
                    if rec.seq > next {
                        eprintln!(
                            "aether events: records {next}..{} are no longer in the journal (retention)",
                            rec.seq - 1
                        );
                    }
                    next = rec.seq + 1;
                    print_record(&mut out, rec, args.json)?;
                    if end.is_some_and(|e| rec.seq >= e) {
                        out.flush()?;
                        return Ok(0);
                    }
                }
                Some(Body::Lagged(l)) => {
                    eprintln!(
                        "aether events: fell behind the live stream; catching up from the journal at {}",
                        l.resume_from
                    );
                }
                Some(Body::Error(e)) => bail!("aetherd: {} (code {})", e.message, e.code),
                _ => {}
            }
        }
    }
}

/// The header of the text format, in the columns of [`format_record`].
pub fn header() -> String {
    format!(
        "{:>8} {:<24} {:<11} {:<16} {:>6} {:>5}  DETAILS",
        "SEQ", "TIME (UTC)", "KIND", "NAME", "PID", "UID"
    )
}

fn print_record(out: &mut impl Write, rec: &Record, json: bool) -> std::io::Result<()> {
    if json {
        let data: Value = serde_json::from_slice(&rec.data)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&rec.data).into_owned()));
        let kind = aether_journal::Kind::from_code(u8::try_from(rec.kind).unwrap_or(0))
            .map(kind_name)
            .unwrap_or("unknown");
        let obj = serde_json::json!({
            "seq": rec.seq,
            "time_ns": rec.time_ns,
            "kind": kind,
            "name": rec.name,
            "data": data,
        });
        writeln!(out, "{obj}")?;
    } else {
        writeln!(out, "{}", format_record(rec))?;
    }
    out.flush()
}

fn kind_name(k: aether_journal::Kind) -> &'static str {
    use aether_journal::Kind;
    match k {
        Kind::Event => "event",
        Kind::Scan => "scan",
        Kind::Lifecycle => "lifecycle",
        Kind::WriterStarted => "writer",
        Kind::Dropped => "dropped",
        Kind::Running => "running",
        Kind::Refused => "refused",
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm` in UTC.
fn utc(time_ns: u64) -> String {
    let secs = time_ns / 1_000_000_000;
    let ms = time_ns / 1_000_000 % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{ms:03}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// One record as an aligned line.
pub fn format_record(rec: &Record) -> String {
    let kind = u8::try_from(rec.kind).unwrap_or(0);
    let kind_text = aether_journal::Kind::from_code(kind)
        .map(kind_name)
        .unwrap_or("unknown");
    let (pid, uid, details) = match Entry::decode(kind, &rec.data) {
        Some(Ok(entry)) => describe(&entry),
        Some(Err(e)) => (None, None, format!("(undecodable: {e})")),
        None => (None, None, String::from_utf8_lossy(&rec.data).into_owned()),
    };
    let opt = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
    format!(
        "{:>8} {:<24} {:<11} {:<16} {:>6} {:>5}  {details}",
        rec.seq,
        utc(rec.time_ns),
        kind_text,
        rec.name,
        opt(pid),
        opt(uid),
    )
}

fn describe(entry: &Entry) -> (Option<u32>, Option<u32>, String) {
    match entry {
        Entry::Event(ev) => {
            let t = ev.task();
            (t.map(|t| t.pid), t.and_then(|t| t.uid), event_details(ev))
        }
        Entry::Running(p) => (
            Some(p.task.pid),
            p.task.uid,
            format!(
                "{}{}",
                p.task.exe.as_deref().unwrap_or("-"),
                p.details
                    .argv
                    .as_ref()
                    .map(|a| format!(" {a:?}"))
                    .unwrap_or_default()
            ),
        ),
        Entry::Scan(s) => {
            let v = match &s.verdict {
                Verdict::Clean => "clean".to_string(),
                Verdict::Infected { signature } => format!("FOUND {signature}"),
                Verdict::Error { message } => format!("error: {message}"),
            };
            let who = s
                .client
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            (None, None, format!("{}: {v}{who}", s.target))
        }
        Entry::Lifecycle(l) => (None, None, lifecycle_details(l)),
        Entry::WriterStarted(w) => (
            Some(w.pid),
            None,
            match (w.previous_seq, w.clean) {
                (None, _) => "new journal".into(),
                (Some(s), true) => format!("after a clean stop at {s}"),
                (Some(s), false) => {
                    let down = w
                        .previous_time_ns
                        .map(|t| format!(" at {}", utc(t)))
                        .unwrap_or_default();
                    format!(
                        "GAP: the previous writer stopped without a clean stop after {s}{down}; nothing was recorded in between"
                    )
                }
            },
        ),
        Entry::Dropped(d) => (
            None,
            None,
            format!("{} records lost: {}", d.count, d.reason),
        ),
        Entry::Refused(r) => (
            r.pid.and_then(|p| u32::try_from(p).ok()),
            Some(r.uid),
            format!("{} refused (gid {}): {}", r.request, r.gid, r.reason),
        ),
    }
}

fn lifecycle_details(l: &Lifecycle) -> String {
    match l {
        Lifecycle::Started { version } => format!("aetherd {version}"),
        Lifecycle::Stopped => "clean stop".into(),
        Lifecycle::DatabaseLoaded { detail } => detail.clone(),
        Lifecycle::DatabaseFailed { reason } => reason.clone(),
        Lifecycle::SensorStarted { detail } => detail.clone(),
        Lifecycle::SensorUnavailable { reason } => reason.clone(),
        Lifecycle::Resynced { processes } => format!("{processes} processes running"),
        Lifecycle::EventsLost { count } => format!("{count} sensor events lost"),
    }
}

fn event_details(ev: &Event) -> String {
    match &ev.kind {
        EventKind::Exec(e) => {
            let mut s = e.task.exe.clone().unwrap_or_else(|| "-".into());
            if let Some(argv) = &e.details.argv {
                s.push_str(&format!(" {argv:?}"));
            }
            s
        }
        EventKind::Fork(f) => format!("parent {}", f.parent_pid),
        EventKind::Exit(e) => match (e.status, e.signal) {
            (Some(st), _) => format!("status {st}"),
            (_, Some(sig)) => format!("signal {sig}"),
            _ => String::new(),
        },
        EventKind::Uid(c) | EventKind::Gid(c) => {
            format!("real {} effective {}", c.real, c.effective)
        }
        EventKind::Comm(c) => c.comm.clone(),
        EventKind::Loss(l) => format!("LOSS {:?} count {:?}", l.cause, l.count),
        EventKind::Resync(r) => format!(
            "found {} vanished {} processes {}",
            r.found, r.vanished, r.processes
        ),
        EventKind::SnapshotBegin(b) => {
            format!("snapshot {}: {} processes", b.snapshot, b.processes)
        }
        EventKind::ProcessSnapshot(p) => format!(
            "snapshot {} #{}: {}{}",
            p.snapshot,
            p.index,
            p.task.exe.as_deref().unwrap_or("-"),
            p.details
                .argv
                .as_ref()
                .map(|a| format!(" {a:?}"))
                .unwrap_or_default()
        ),
        EventKind::SnapshotEnd(e) => {
            format!(
                "snapshot {} complete: {} processes",
                e.snapshot, e.processes
            )
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000");
        // 2024-02-29 12:34:56.789 UTC = 1709210096.789
        assert_eq!(utc(1_709_210_096_789_000_000), "2024-02-29 12:34:56.789");
    }

    #[test]
    fn status_is_aligned() {
        let st: Value = serde_json::json!({
            "version": "0.1.0", "pid": 7, "uptime_seconds": 3725, "rss_bytes": 3u64 << 20,
            "database": {"signatures": 12, "reloads": 1, "reload_failures": 0, "last_reload": null},
            "scans": {"scanned": 5, "infected": 1, "running": 0, "queued": 0},
            "sensor": {"running": false, "reason": "turned off", "counters": null},
            "journal": {"path": "/j.db", "problem": null, "last_seq": 41, "used_bytes": 8192,
                        "committed": 10, "dropped": 0},
            "subscribers": 2,
            "ring": {"bytes": 16u64 << 20, "readers": 1, "failed": null},
            "refused": {"connect": 3, "control": 1, "scan": 0}
        });
        let text = render_status(&st);
        assert!(
            text.contains("ring:             16.0 MiB, 1 readers\n"),
            "{text}"
        );
        assert!(
            text.contains("refused:          3 connections, 1 control commands, 0 scans\n"),
            "{text}"
        );
        assert!(text.contains("uptime:           1h 2m 5s\n"), "{text}");
        assert!(
            text.contains("sensor:           not running: turned off\n"),
            "{text}"
        );
        assert!(text.contains("last seq 41"), "{text}");
        // Every value starts in the same column.
        let starts: Vec<usize> = text
            .lines()
            .map(|l| {
                let colon = l.find(':').unwrap();
                colon + 1 + l[colon + 1..].len() - l[colon + 1..].trim_start().len()
            })
            .collect();
        assert!(starts.windows(2).all(|w| w[0] == w[1]), "{text}");
    }
}
