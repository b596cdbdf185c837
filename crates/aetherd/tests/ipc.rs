//! aetherd's own IPC socket with real daemons: sensor events reach a follower,
//! a cursor replays without gap or duplicate, a subscriber survives `kill -9`
//! of the daemon, strangers are refused, and reloads are answered and journaled.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aether_ipc::msg::{Body, Record};
use aether_ipc::{Client, ClientError};
use aether_journal::{Entry, Lifecycle, Reader, Verdict};
use common::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn ipc_path(fx: &Fixture, tag: &str) -> PathBuf {
    fx.path().join(format!("{tag}.ipc"))
}

fn journal_path(fx: &Fixture, tag: &str) -> PathBuf {
    fx.path().join(format!("{tag}.journal.db"))
}

fn decode(rec: &Record) -> Entry {
    Entry::decode(rec.kind as u8, &rec.data)
        .expect("known kind")
        .expect("decodable payload")
}

/// The next record, or `None` on a Lagged frame (the server catches up by itself).
async fn next_record(c: &mut Client, limit: Duration) -> Result<Option<Record>, ClientError> {
    match tokio::time::timeout(limit, c.next_frame()).await {
        Err(_) => panic!("no frame within {limit:?}"),
        Ok(Err(e)) => Err(e),
        Ok(Ok(f)) => match f.body {
            Some(Body::Record(r)) => Ok(Some(r)),
            Some(Body::Lagged(_)) => Ok(None),
            other => panic!("unexpected frame {other:?}"),
        },
    }
}

/// Reads records until `done` says so (bounded), checking that sequence numbers
/// follow each other from `first`.
async fn collect_until(
    c: &mut Client,
    first: u64,
    limit: Duration,
    mut done: impl FnMut(&[Record]) -> bool,
) -> Vec<Record> {
    let deadline = Instant::now() + limit;
    let mut got: Vec<Record> = Vec::new();
    while !done(&got) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "condition not met within {limit:?}");
        if let Some(r) = next_record(c, left).await.expect("stream") {
            let want = got.last().map_or(first, |l| l.seq + 1);
            assert_eq!(r.seq, want, "gap or duplicate in the stream");
            got.push(r);
        }
    }
    got
}

fn instream_scan(d: &Daemon, data: &[u8]) -> Vec<u8> {
    d.send(&instream(b"zINSTREAM\0", data, 4096))
}

/// Every committed record in the journal file, read directly.
fn journal_records(path: &Path) -> Vec<aether_journal::RawRecord> {
    let r = Reader::open(path).unwrap();
    r.read_raw_from(0).map(|r| r.unwrap()).collect()
}

#[test]
fn sensor_events_reach_a_follower() {
    let fx = Fixture::new();
    let d = Daemon::aetherd(&fx, "s", "Sensor = true\n");
    rt().block_on(async {
        let mut c = Client::connect(&ipc_path(&fx, "s")).await.unwrap();
        let st = c.control(1, "status", "").await.unwrap();
        let st: serde_json::Value = serde_json::from_str(&st.message).unwrap();
        assert_eq!(
            st["sensor"]["running"], true,
            "the sensor must run here (root, initial network namespace): {st}"
        );
        drop(c);
        let mut c = Client::connect(&ipc_path(&fx, "s")).await.unwrap();
        c.subscribe(0).await.unwrap();
        // The journal starts with the gap record, then the lifecycle and the
        // sensor's snapshot of what runs.
        let head = collect_until(&mut c, 0, Duration::from_secs(30), |got| {
            got.iter().any(|r| r.name == "snapshot_end")
        })
        .await;
        assert!(matches!(decode(&head[0]), Entry::WriterStarted(_)));
        assert!(
            head.iter()
                .any(|r| matches!(decode(r), Entry::Lifecycle(Lifecycle::Started { .. })))
        );
        let me = std::process::id();
        let raw: Vec<(String, u8, Vec<u8>)> = head
            .iter()
            .map(|r| (r.name.clone(), r.kind as u8, r.data.clone()))
            .collect();
        let (_, listed) = snapshot(&raw).expect("a whole snapshot");
        assert!(
            listed.iter().any(|p| p.task.pid == me),
            "the snapshot lists this test process"
        );
        // A process this test starts shows up as a fork and an exec of its pid.
        let marker = format!("aether-ipc-test-{me}");
        let child = Command::new("/bin/echo")
            .arg(&marker)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let status = child.wait_with_output().unwrap().status;
        assert!(status.success());
        let next = head.last().unwrap().seq + 1;
        let got = collect_until(&mut c, next, Duration::from_secs(30), |got| {
            got.iter().any(|r| {
                r.name == "exec"
                    && matches!(decode(r), Entry::Event(ev)
                        if ev.task().is_some_and(|t| t.pid == pid))
            })
        })
        .await;
        let exec = got
            .iter()
            .find_map(|r| match decode(r) {
                Entry::Event(ev) if r.name == "exec" && ev.task().is_some_and(|t| t.pid == pid) => {
                    Some(ev)
                }
                _ => None,
            })
            .unwrap();
        if let aether_events::EventKind::Exec(e) = &exec.kind {
            // The arguments, unless echo was gone before /proc could be read.
            match &e.details.argv {
                Some(argv) => assert!(argv.contains(&marker), "{argv:?}"),
                None => assert!(e.details.missing.is_some()),
            }
        }
        assert!(got.iter().any(|r| r.name == "fork"), "the fork came first");
    });
    drop(d);
}

#[test]
fn since_replays_without_gap_or_duplicate_then_goes_live() {
    let fx = Fixture::new();
    let d = Daemon::aetherd(&fx, "r", "");
    for n in 0..40 {
        let data = if n % 10 == 0 {
            EICAR.to_vec()
        } else {
            format!("clean {n}").into_bytes()
        };
        instream_scan(&d, &data);
    }
    rt().block_on(async {
        let sock = ipc_path(&fx, "r");
        let mut c = Client::connect(&sock).await.unwrap();
        c.subscribe(0).await.unwrap();
        let all = collect_until(&mut c, 0, Duration::from_secs(30), |got| {
            got.iter().filter(|r| r.name == "scan").count() == 40
        })
        .await;
        let infected = all
            .iter()
            .filter(|r| {
                matches!(decode(r), Entry::Scan(s)
                if matches!(&s.verdict, Verdict::Infected { signature } if signature == "Test.Eicar.Body.UNOFFICIAL"))
            })
            .count();
        assert_eq!(infected, 4);
        // From a cursor in the middle: exactly the records from there on.
        let mid = all[all.len() / 2].seq;
        let mut c2 = Client::connect(&sock).await.unwrap();
        c2.subscribe(mid).await.unwrap();
        let tail = collect_until(&mut c2, mid, Duration::from_secs(30), |got| {
            got.last().is_some_and(|l| l.seq == all.last().unwrap().seq)
        })
        .await;
        assert_eq!(tail.as_slice(), &all[all.len() / 2..]);
        // Both go on live with new scans, still without a gap.
        for _ in 0..10 {
            instream_scan(&d, b"live clean");
        }
        let last = all.last().unwrap().seq;
        for cl in [&mut c, &mut c2] {
            let live = collect_until(cl, last + 1, Duration::from_secs(30), |got| {
                got.iter().filter(|r| r.name == "scan").count() == 10
            })
            .await;
            assert!(
                live.iter()
                    .all(|r| r.name == "scan" || r.kind != 2)
            );
        }
    });
}

#[test]
fn a_subscriber_resumes_from_its_cursor_across_kill_9() {
    let fx = Fixture::new();
    let mut d = Daemon::aetherd(&fx, "k", "");
    let sock = ipc_path(&fx, "k");
    let clamd_sock = d.socket.clone();
    // Scans go on all the time, before, during and after the crash.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scanner = {
        let stop = stop.clone();
        let clamd_sock = clamd_sock.clone();
        std::thread::spawn(move || {
            let mut ok = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if try_send(&clamd_sock, &instream(b"zINSTREAM\0", b"x", 1)).is_ok() {
                    ok += 1;
                }
            }
            ok
        })
    };
    let mut seen: Vec<Record> = Vec::new();
    rt().block_on(async {
        let mut c = Client::connect(&sock).await.unwrap();
        c.subscribe(0).await.unwrap();
        seen = collect_until(&mut c, 0, Duration::from_secs(30), |got| {
            got.iter().filter(|r| r.name == "scan").count() >= 50
        })
        .await;
        // kill -9 in the middle of the stream.
        let mut child = d.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        // The subscriber reads what was sent before the end, then the close.
        loop {
            match next_record(&mut c, Duration::from_secs(10)).await {
                Ok(Some(r)) => {
                    assert_eq!(r.seq, seen.last().unwrap().seq + 1);
                    seen.push(r);
                }
                Ok(None) => {}
                Err(_) => break,
            }
        }
    });
    let cursor = seen.last().unwrap().seq + 1;
    // Restart on the same journal and sockets (stale socket files are replaced).
    let d2 = Daemon::aetherd(&fx, "k", "");
    rt().block_on(async {
        let mut c = Client::connect(&sock).await.unwrap();
        c.subscribe(cursor).await.unwrap();
        let after = collect_until(&mut c, cursor, Duration::from_secs(30), |got| {
            got.iter()
                .any(|r| matches!(decode(r), Entry::WriterStarted(_)))
                && got.iter().filter(|r| r.name == "scan").count() >= 20
        })
        .await;
        let gap = after
            .iter()
            .find_map(|r| match decode(r) {
                Entry::WriterStarted(w) => Some((r.seq, w)),
                _ => None,
            })
            .unwrap();
        assert!(!gap.1.clean, "a kill -9 is not a clean stop");
        assert_eq!(gap.1.previous_seq, Some(gap.0 - 1));
        seen.extend(after);
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let scans_ok = scanner.join().unwrap();
    assert!(scans_ok >= 70);
    drop(d2);
    // Nothing lost, nothing repeated: what the subscriber saw is the journal.
    let journal = journal_records(&journal_path(&fx, "k"));
    let n = seen.len();
    assert!(journal.len() >= n);
    for (a, b) in seen.iter().zip(&journal) {
        assert_eq!((a.seq, &a.name, &a.data), (b.seq, &b.name, &b.data));
    }
}

/// Runs a relay as `uid`/`gid` (through setpriv) that connects to `sock`,
/// sends `request` (raw frame bytes) and returns everything the server sent.
fn as_user(uid: u32, gid: u32, sock: &Path, request: &[u8]) -> Vec<u8> {
    let hex: String = request.iter().map(|b| format!("{b:02x}")).collect();
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sys.argv[1])
out = b""
try:
    s.sendall(bytes.fromhex(sys.argv[2]))
    s.shutdown(socket.SHUT_WR)
except OSError:
    pass
while True:
    try:
        b = s.recv(65536)
    except OSError:
        break
    if not b:
        break
    out += b
sys.stdout.write(out.hex())
"#;
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            "--clear-groups",
            "--",
            "/usr/bin/python3",
            "-c",
            script,
        ])
        .arg(sock)
        .arg(hex)
        .output()
        .expect("setpriv and python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn frames(bytes: &[u8]) -> Vec<Body> {
    let mut d = aether_ipc::Decoder::new(1 << 20);
    d.extend(bytes);
    let mut v = Vec::new();
    while let Some(f) = d.next_frame().unwrap() {
        v.extend(f.body);
    }
    v
}

#[test]
fn other_uids_are_refused() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test runs as root");
    let fx = Fixture::new();
    // The group that may connect: nogroup (65534).
    let _d = Daemon::aetherd(
        &fx,
        "u",
        "IpcGroup = \"nogroup\"\nIpcSocketMode = \"666\"\n",
    );
    let sock = ipc_path(&fx, "u");
    let control = |command: &str| {
        aether_ipc::frame::encode(&aether_ipc::msg::Frame::new(Body::Control(
            aether_ipc::msg::Control {
                id: 9,
                command: command.into(),
                argument: String::new(),
            },
        )))
    };
    // In the group: may connect and ask for the status, may not reload.
    let got = frames(&as_user(65534, 65534, &sock, &control("status")));
    match got.as_slice() {
        [Body::Welcome(w), Body::ControlReply(r)] => {
            assert_eq!(w.uid, 65534);
            assert!(!w.control_allowed);
            assert!(r.ok, "{r:?}");
            assert!(r.message.contains("\"uptime_seconds\""));
        }
        other => panic!("{other:?}"),
    }
    let got = frames(&as_user(65534, 65534, &sock, &control("reload")));
    match got.as_slice() {
        [Body::Welcome(_), Body::ControlReply(r)] => {
            assert!(!r.ok);
            assert!(r.message.contains("may not send control commands"), "{r:?}");
        }
        other => panic!("{other:?}"),
    }
    // Not in the group: refused at once, told why.
    let got = frames(&as_user(65534, 4242, &sock, &control("status")));
    match got.as_slice() {
        [Body::Error(e)] => {
            assert_eq!(e.code, aether_ipc::msg::ErrorCode::PermissionDenied as i32);
            assert!(e.message.contains("may not connect"), "{e:?}");
        }
        other => panic!("{other:?}"),
    }
    // A FIFO passed for scanning: refused before anything is read.
    let fifo = fx.path().join("u.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let fifo_fd = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap()
    };
    let sc = aether_ipc::ScanClient::connect(&sock, "test", Duration::from_secs(20)).unwrap();
    let (mut tx, mut rx) = sc.split().unwrap();
    let req = aether_ipc::msg::ScanFd {
        id: 5,
        path: "u.fifo".into(),
        options: None,
    };
    tx.send(&req, std::os::fd::AsFd::as_fd(&fifo_fd)).unwrap();
    let r = rx.recv().unwrap();
    assert_eq!(
        r.verdict,
        aether_ipc::msg::ScanVerdict::Refused as i32,
        "{r:?}"
    );
    drop((tx, rx));

    // Each refusal is counted in the status and journaled with who and why.
    let st = rt().block_on(async {
        let mut c = Client::connect(&sock).await.unwrap();
        let r = c.control(1, "status", "").await.unwrap();
        serde_json::from_str::<serde_json::Value>(&r.message).unwrap()
    });
    assert_eq!(
        st["refused"],
        serde_json::json!({"connect": 1, "control": 1, "scan": 1}),
        "{st}"
    );
    let journal = journal_path(&fx, "u");
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let refused: Vec<aether_journal::Refused> = journal_records(&journal)
            .iter()
            .filter_map(|r| match Entry::decode(r.kind, &r.data) {
                Some(Ok(Entry::Refused(x))) => Some(x),
                _ => None,
            })
            .collect();
        if refused.len() >= 3 || Instant::now() > deadline {
            break refused;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let me = std::process::id() as i32;
    match refused.as_slice() {
        [control, connect, scan] => {
            assert_eq!(
                (control.request.as_str(), control.uid, control.gid),
                ("control", 65534, 65534)
            );
            assert!(control.reason.contains("\"reload\""), "{control:?}");
            assert!(control.pid.is_some_and(|p| p > 0 && p != me), "{control:?}");
            assert_eq!(
                (connect.request.as_str(), connect.uid, connect.gid),
                ("connect", 65534, 4242)
            );
            assert!(connect.reason.contains("may not connect"), "{connect:?}");
            assert_eq!(
                (scan.request.as_str(), scan.uid, scan.pid),
                ("scan", 0, Some(me))
            );
            assert!(scan.reason.contains("FIFO"), "{scan:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_socket_directory_and_modes() {
    let fx = Fixture::new();
    let ipc = fx.path().join("run/aether/aetherd.sock");
    let _d = Daemon::aetherd(&fx, "m", &format!("IpcSocket = {ipc:?}\n"));
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(ipc.parent().unwrap()), 0o750);
    assert_eq!(mode(&ipc), 0o660);
    let j = journal_path(&fx, "m");
    assert_eq!(mode(&j), 0o640);
    assert_eq!(std::fs::metadata(&ipc).unwrap().uid(), 0);
}

#[test]
fn reload_is_answered_and_a_failure_is_journaled() {
    let fx = Fixture::new();
    let d = Daemon::aetherd(&fx, "l", "");
    let sock = ipc_path(&fx, "l");
    rt().block_on(async {
        let mut c = Client::connect(&sock).await.unwrap();
        assert!(c.welcome().control_allowed);
        let r = c.control(1, "reload", "").await.unwrap();
        assert!(r.ok, "{r:?}");
        assert!(r.message.contains("2 signatures"), "{r:?}");
        // A broken database: the reload fails, the client is told why.
        std::fs::write(fx.path().join("db/broken.ndb"), "Broken:0:*:zz\n").unwrap();
        let r = c.control(2, "reload", "").await.unwrap();
        assert!(!r.ok);
        assert!(r.message.contains("broken.ndb"), "{r:?}");
        let st = c.control(3, "status", "").await.unwrap();
        let st: serde_json::Value = serde_json::from_str(&st.message).unwrap();
        assert_eq!(st["database"]["reload_failures"], 1);
        assert_eq!(st["database"]["reloads"], 1);
        // The old database keeps serving.
        assert_eq!(
            instream_scan(&d, EICAR),
            b"stream: Test.Eicar.Body.UNOFFICIAL FOUND\0"
        );
        let mut sub = Client::connect(&sock).await.unwrap();
        sub.subscribe(0).await.unwrap();
        let got = collect_until(&mut sub, 0, Duration::from_secs(30), |got| {
            got.iter().any(|r| r.name == "database_failed")
        })
        .await;
        let kinds: BTreeMap<&str, usize> = got.iter().fold(BTreeMap::new(), |mut m, r| {
            *m.entry(r.name.as_str()).or_default() += 1;
            m
        });
        // The first load and the good reload.
        assert_eq!(kinds.get("database_loaded"), Some(&2), "{kinds:?}");
        let failed = got.iter().find(|r| r.name == "database_failed").unwrap();
        match decode(failed) {
            Entry::Lifecycle(Lifecycle::DatabaseFailed { reason }) => {
                assert!(reason.contains("broken.ndb"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    });
    // SIGHUP and RELOAD failures are journaled the same way.
    d.send(b"zRELOAD\0");
    let j = journal_path(&fx, "l");
    let deadline = Instant::now() + Duration::from_secs(30);
    while journal_records(&j)
        .iter()
        .filter(|r| r.name == "database_failed")
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "RELOAD failure not journaled");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_clean_stop_is_journaled_and_the_next_start_says_so() {
    let fx = Fixture::new();
    let mut d = Daemon::aetherd(&fx, "c", "");
    instream_scan(&d, b"abc");
    assert_eq!(d.terminate(Duration::from_secs(20)).code(), Some(0));
    assert!(!ipc_path(&fx, "c").exists(), "IPC socket left behind");
    let j = journal_path(&fx, "c");
    let recs = journal_records(&j);
    assert_eq!(recs.last().unwrap().name, "stopped");
    let _d = Daemon::aetherd(&fx, "c", "");
    let recs = journal_records(&j);
    let restart = recs.iter().rfind(|r| r.name == "writer_started").unwrap();
    match Entry::decode(restart.kind, &restart.data).unwrap().unwrap() {
        Entry::WriterStarted(w) => assert!(w.clean),
        other => panic!("{other:?}"),
    }
    // A second daemon on the same journal is refused (exit 5), the first unharmed.
    let cfg = fx.path().join("c2.toml");
    std::fs::write(
        &cfg,
        format!(
            "LocalSocket = {:?}\nIpcSocket = {:?}\nJournalPath = {j:?}\nSensor = false\nDatabaseDirectory = {:?}\nBuiltinDatabase = false\nDatabaseCache = false\n",
            fx.path().join("c2.sock"),
            fx.path().join("c2.ipc"),
            fx.path().join("db"),
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aetherd"))
        .args(["--foreground", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("in use by another aetherd"), "{err}");
    assert!(!fx.path().join("c2.sock").exists() && !fx.path().join("c2.ipc").exists());
}

#[test]
fn udp_publisher_sends_authenticated_records_to_loopback() {
    use aether_ipc::udp::{Key, UdpConfig, UdpReceiver};
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    let key_hex: String = (0..32u8).map(|b| format!("{:02x}", b * 7 + 1)).collect();
    let key_file = fx.path().join("udp.key");
    std::fs::write(&key_file, &key_hex).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key = Key::load(&key_file).unwrap();
    rt().block_on(async {
        let mut rx = UdpReceiver::bind(&UdpConfig::default(), key).await.unwrap();
        let port = rx.local_addr().unwrap().port();
        let d = Daemon::aetherd(
            &fx,
            "p",
            &format!("UdpPeer = \"127.0.0.1:{port}\"\nUdpKeyFile = {key_file:?}\n"),
        );
        for n in 0..30 {
            instream_scan(&d, format!("udp {n}").as_bytes());
        }
        let mut seqs = std::collections::BTreeSet::new();
        let mut scans = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        while scans < 30 {
            let left = deadline.saturating_duration_since(Instant::now());
            let got = tokio::time::timeout(left, rx.recv())
                .await
                .expect("records within 30 s")
                .unwrap();
            assert!(seqs.insert(got.record.seq), "duplicate {}", got.record.seq);
            if got.record.name == "scan" {
                scans += 1;
            }
        }
        // From the journal's first record, with nothing missing.
        let first = *seqs.first().unwrap();
        let last = *seqs.last().unwrap();
        assert_eq!(first, 0);
        assert_eq!(seqs.len() as u64, last + 1);
        assert_eq!(rx.stats.rejected(), 0);
        drop(d);
    });
    // A key file others may read is refused: the daemon says so and runs on.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let d = Daemon::aetherd(
        &fx,
        "q",
        &format!("UdpPeer = \"127.0.0.1:9\"\nUdpKeyFile = {key_file:?}\n"),
    );
    d.wait_log("UDP publisher not started", 1, Duration::from_secs(10));
    assert!(d.log_text().contains("0644"), "{}", d.log_text());
}

/// A tmpfs mounted on a fresh directory, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs (this test runs as root)");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_is_reported_and_scanning_goes_on() {
    let fx = Fixture::new();
    let fs = Tmpfs::mount("2m");
    let filler = fs.0.path().join("filler");
    std::fs::write(&filler, vec![0u8; 1536 * 1024]).unwrap();
    let journal = fs.0.path().join("j.db");
    // Many files, long names: one MULTISCAN makes thousands of scan records.
    let many = fx.path().join("files/many");
    std::fs::create_dir_all(&many).unwrap();
    for n in 0..3000 {
        std::fs::write(many.join(format!("{n:0>120}.txt")), b"x").unwrap();
    }
    let d = Daemon::aetherd(&fx, "f", &format!("JournalPath = {journal:?}\n"));
    let reply = d.send(format!("zMULTISCAN {}\0", many.display()).as_bytes());
    assert!(
        reply.ends_with(b": OK\0"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let status = || {
        rt().block_on(async {
            let mut c = Client::connect(&ipc_path(&fx, "f")).await.unwrap();
            let r = c.control(1, "status", "").await.unwrap();
            serde_json::from_str::<serde_json::Value>(&r.message).unwrap()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    // The loss is counted (`problem` says whether the last commit failed: a smaller
    // batch may fit again right after, so it is not asserted here).
    loop {
        let st = status();
        if st["journal"]["dropped"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no loss reported: {st}");
        std::thread::sleep(Duration::from_millis(50));
    }
    d.wait_log("disk full", 1, Duration::from_secs(10));
    // The daemon goes on scanning.
    assert_eq!(
        instream_scan(&d, EICAR),
        b"stream: Test.Eicar.Body.UNOFFICIAL FOUND\0"
    );
    // Space comes back: the next commit starts with the count of what was lost.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        instream_scan(&d, b"after");
        let recs = journal_records(&journal);
        if let Some(dropped) = recs.iter().find(|r| r.name == "dropped") {
            match Entry::decode(dropped.kind, &dropped.data).unwrap().unwrap() {
                Entry::Dropped(x) => assert!(x.count > 0 && x.reason.contains("full")),
                other => panic!("{other:?}"),
            }
            // Numbered without a hole.
            for w in recs.windows(2) {
                assert_eq!(w[1].seq, w[0].seq + 1);
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no dropped record after space came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The status is updated after the commit that wrote the record, by the
    // journal's writer: wait for it (bounded) rather than race it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = status();
        if st["journal"]["problem"].is_null() {
            break;
        }
        assert!(Instant::now() < deadline, "problem still reported: {st}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn without_a_journal_status_and_reload_work_and_subscriptions_are_refused() {
    let fx = Fixture::new();
    let d = Daemon::aetherd(&fx, "n", "JournalPath = \"\"\nSensor = true\n");
    rt().block_on(async {
        let mut c = Client::connect(&ipc_path(&fx, "n")).await.unwrap();
        let st = c.control(1, "status", "").await.unwrap();
        let st: serde_json::Value = serde_json::from_str(&st.message).unwrap();
        assert!(st["journal"]["path"].is_null(), "{st}");
        assert!(
            st["journal"]["problem"]
                .as_str()
                .unwrap()
                .contains("JournalPath"),
            "{st}"
        );
        assert_eq!(st["sensor"]["running"], false);
        assert!(
            st["sensor"]["reason"].as_str().unwrap().contains("journal"),
            "{st}"
        );
        assert!(c.control(2, "reload", "").await.unwrap().ok);
        c.subscribe(0).await.unwrap();
        match c.next_frame().await.unwrap().body {
            Some(Body::Error(e)) => {
                assert_eq!(e.code, aether_ipc::msg::ErrorCode::ReplayFailed as i32);
                assert!(e.message.contains("without a journal"), "{e:?}");
            }
            other => panic!("{other:?}"),
        }
    });
    assert!(!journal_path(&fx, "n").exists());
    assert_eq!(
        instream_scan(&d, EICAR),
        b"stream: Test.Eicar.Body.UNOFFICIAL FOUND\0"
    );
}

#[test]
fn every_process_of_a_burst_is_journaled_with_its_exec() {
    let fx = Fixture::new();
    let _d = Daemon::aetherd(&fx, "b", "Sensor = true\n");
    rt().block_on(async {
        let mut c = Client::connect(&ipc_path(&fx, "b")).await.unwrap();
        c.subscribe(0).await.unwrap();
        let head = collect_until(&mut c, 0, Duration::from_secs(30), |got| {
            got.iter().any(|r| r.name == "snapshot_end")
        })
        .await;
        let mut pids = std::collections::BTreeSet::new();
        for _ in 0..300 {
            let child = Command::new("/bin/true").spawn().unwrap();
            pids.insert(child.id());
            assert!(child.wait_with_output().unwrap().status.success());
        }
        let next = head.last().unwrap().seq + 1;
        let mut left = pids.clone();
        let mut exits = 0;
        collect_until(&mut c, next, Duration::from_secs(60), |got| {
            if let Some(r) = got.last()
                && let Entry::Event(ev) = decode(r)
                && let Some(t) = ev.task()
            {
                if r.name == "exec" {
                    left.remove(&t.pid);
                }
                if r.name == "exit" && pids.contains(&t.pid) {
                    exits += 1;
                }
            }
            left.is_empty() && exits >= 300
        })
        .await;
    });
}

#[test]
fn after_kill_9_the_gap_record_is_followed_by_a_snapshot() {
    let fx = Fixture::new();
    let mut d = Daemon::aetherd(&fx, "g", "Sensor = true\n");
    let mut child = d.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let _d = Daemon::aetherd(&fx, "g", "Sensor = true\n");
    let j = journal_path(&fx, "g");
    let deadline = Instant::now() + Duration::from_secs(30);
    let recs = loop {
        let recs = journal_records(&j);
        // The first daemon may have died before its own snapshot was committed.
        let restart = recs.iter().rposition(|r| r.name == "writer_started");
        if restart.is_some_and(|g| g > 0 && recs[g..].iter().any(|r| r.name == "snapshot_end")) {
            break recs;
        }
        assert!(Instant::now() < deadline, "no snapshot after the restart");
        std::thread::sleep(Duration::from_millis(50));
    };
    let gap = recs
        .iter()
        .rposition(|r| r.name == "writer_started")
        .unwrap();
    match Entry::decode(recs[gap].kind, &recs[gap].data)
        .unwrap()
        .unwrap()
    {
        Entry::WriterStarted(w) => assert!(!w.clean),
        other => panic!("{other:?}"),
    }
    // In order after the gap: started, database_loaded, sensor_started, then the
    // sensor's snapshot of the running processes (this test's among them), after
    // at most the events the sensor published before it took the request.
    let names: Vec<&str> = recs[gap + 1..]
        .iter()
        .map(|r| r.name.as_str())
        .take(3)
        .collect();
    assert_eq!(names, ["started", "database_loaded", "sensor_started"]);
    let raw: Vec<(String, u8, Vec<u8>)> = recs[gap + 4..]
        .iter()
        .map(|r| (r.name.clone(), r.kind, r.data.clone()))
        .collect();
    let (at, listed) = snapshot(&raw).expect("a whole snapshot after the restart");
    assert!(
        raw[..at]
            .iter()
            .all(|(_, kind, _)| *kind == aether_journal::Kind::Event as u8),
        "only sensor events between sensor_started and the snapshot"
    );
    let me = std::process::id();
    assert!(listed.iter().any(|p| p.task.pid == me));
    assert!(listed.iter().any(|p| p.task.pid == 1), "init is listed");
}

/// Runs aetherd through `wrapper` (unshare, setpriv) on sockets and a journal in
/// `dir`, waits for its IPC status, and returns the status and the child.
fn wrapped_status(
    fx: &Fixture,
    dir: &Path,
    wrapper: &[&str],
) -> (serde_json::Value, std::process::Child) {
    let cfg = dir.join("w.toml");
    std::fs::write(
        &cfg,
        format!(
            "LocalSocket = {:?}\nIpcSocket = {:?}\nIpcSocketMode = \"666\"\nJournalPath = {:?}\nSensor = true\nDatabaseDirectory = {:?}\nBuiltinDatabase = false\nDatabaseCache = false\nLogFile = {:?}\n",
            dir.join("c.sock"),
            dir.join("i.sock"),
            dir.join("j.db"),
            fx.path().join("db"),
            dir.join("log"),
        ),
    )
    .unwrap();
    common::chmod(&cfg, 0o644);
    let mut child = Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg(env!("CARGO_BIN_EXE_aetherd"))
        .args(["--foreground", "--config"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let st = loop {
        let got = rt().block_on(async {
            let mut c = Client::connect(&dir.join("i.sock")).await.ok()?;
            let r = c.control(1, "status", "").await.ok()?;
            serde_json::from_str::<serde_json::Value>(&r.message).ok()
        });
        if let Some(st) = got {
            break st;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "aetherd exited: {}",
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
        assert!(Instant::now() < deadline, "no status");
        std::thread::sleep(Duration::from_millis(50));
    };
    (st, child)
}

/// SIGTERM, then waits (bounded) for the exit.
fn stop(mut child: std::process::Child) {
    // SAFETY: kill on the PID of our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("aetherd did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn without_the_privileges_or_namespace_the_sensor_is_off_and_says_why() {
    let fx = Fixture::new();
    // Another network namespace: the process connector delivers nothing there.
    let netns = fx.path().join("netns");
    std::fs::create_dir(&netns).unwrap();
    let (st, child) = wrapped_status(&fx, &netns, &["unshare", "--net", "--"]);
    // A clean stop commits what is queued (unshare and setpriv exec the daemon).
    stop(child);
    assert_eq!(st["sensor"]["running"], false, "{st}");
    let why = st["sensor"]["reason"].as_str().unwrap();
    assert!(why.contains("network namespace"), "{why}");
    let recs = journal_records(&netns.join("j.db"));
    assert!(recs.iter().any(|r| r.name == "sensor_unavailable"));
    assert!(
        !recs
            .iter()
            .any(|r| r.name == "resynced" || r.name == "snapshot_begin")
    );
    // No CAP_NET_ADMIN: nobody, in a directory of its own.
    let unpriv = fx.path().join("nobody");
    std::fs::create_dir(&unpriv).unwrap();
    common::chmod(&unpriv, 0o777);
    let (st, child) = wrapped_status(
        &fx,
        &unpriv,
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
        ],
    );
    // Scanning works all the same.
    let reply = send(
        &unpriv.join("c.sock"),
        &instream(b"zINSTREAM\0", EICAR, 100),
    );
    stop(child);
    assert_eq!(reply, b"stream: Test.Eicar.Body.UNOFFICIAL FOUND\0");
    assert_eq!(st["sensor"]["running"], false, "{st}");
    let why = st["sensor"]["reason"].as_str().unwrap();
    assert!(why.contains("CAP_NET_ADMIN"), "{why}");
}
