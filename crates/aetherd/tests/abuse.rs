//! Fault and abuse tests against a real aetherd, each bounded in time:
//! garbage, oversized and partial frames, slow clients, hundreds of
//! concurrent clients, reloads under load and broken databases, signals,
//! and the start-up errors with their exit codes.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;

fn ping_ok(d: &Daemon) {
    assert_eq!(d.send(b"nPING\n"), b"PONG\n", "daemon stopped answering");
}

#[test]
fn garbage_is_refused_and_the_daemon_keeps_serving() {
    let fx = Fixture::new();
    let d = Daemon::aetherd(&fx, "a", "CommandReadTimeout = 2\n");
    let mut rng = 0x2545F4914F6CDD1Du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for i in 0..200 {
        let len = (next() % 300) as usize + 1;
        let mut junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Half of them framed, so that they reach the command parser.
        if i % 2 == 0 {
            junk[0] = b'n';
            junk.push(b'\n');
        }
        let reply = send_or_timeout(&d.socket, &junk, Duration::from_secs(10));
        let text = String::from_utf8_lossy(&reply);
        let text = text.trim_end_matches(['\n', '\0']);
        assert!(
            text.is_empty()
                || text.ends_with("UNKNOWN COMMAND")
                || text.ends_with("ERROR")
                || text == "COMMAND READ TIMED OUT",
            "{junk:?} -> {:?}",
            String::from_utf8_lossy(&reply)
        );
    }
    // A command longer than any path, without a terminator.
    let long = vec![b'n'; 10_000];
    assert_eq!(d.send(&long), b"UNKNOWN COMMAND\n");
    let long = vec![b'z'; 10_000];
    assert_eq!(d.send(&long), b"UNKNOWN COMMAND\0");
    ping_ok(&d);
}

#[test]
fn oversized_instream_gets_clamds_error() {
    let fx = Fixture::new();
    let d = Daemon::aetherd(&fx, "a", "");
    // Announced too big: refused on the chunk header.
    let mut v = b"zINSTREAM\0".to_vec();
    v.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(d.send(&v), b"INSTREAM size limit exceeded. ERROR\0");
    // Many small chunks adding up to more than StreamMaxLength (1M).
    let big = instream(b"nINSTREAM\n", &vec![0u8; (1 << 20) + 10], 4096);
    assert_eq!(d.send(&big), b"INSTREAM size limit exceeded. ERROR\n");
    // Exactly the limit is fine.
    let exact = instream(b"nINSTREAM\n", &vec![0u8; 1 << 20], 4096);
    assert_eq!(d.send(&exact), b"stream: OK\n");
    ping_ok(&d);
}

/// Bodies past 1 MiB go to an unnamed temporary file and are scanned there.
#[test]
fn large_stream_is_scanned_from_a_temporary_file() {
    let fx = Fixture::new();
    let tmp = fx.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let d = Daemon::aetherd(
        &fx,
        "a",
        &format!("StreamMaxLength = \"8M\"\nTemporaryDirectory = {tmp:?}\n"),
    );
    let mut body = vec![b'.'; 5 << 20];
    body.extend_from_slice(EICAR);
    assert_eq!(
        d.send(&instream(b"nINSTREAM\n", &body, 256 << 10)),
        b"stream: Test.Eicar.Body.UNOFFICIAL FOUND\n"
    );
    assert_eq!(
        d.send(&instream(b"nINSTREAM\n", &body[..5 << 20], 1 << 20)),
        b"stream: OK\n"
    );
    // Nothing is left behind in the directory.
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    // An unusable directory gives clamd's error, and the daemon goes on.
    let d2 = Daemon::aetherd(
        &fx,
        "b",
        &format!(
            "StreamMaxLength = \"8M\"\nTemporaryDirectory = {:?}\n",
            fx.path().join("missing")
        ),
    );
    assert_eq!(
        d2.send(&instream(b"nINSTREAM\n", &body[..2 << 20], 64 << 10)),
        b"Error writing to temporary file ERROR\n"
    );
    ping_ok(&d2);
}

/// A client that stops half way through a frame, or sends a command one
/// byte at a time and never finishes, is dropped after its timeout and
/// blocks nobody meanwhile.
#[test]
fn partial_and_slow_clients_do_not_block_others() {
    let fx = Fixture::new();
    let d = Daemon::aetherd(&fx, "a", "CommandReadTimeout = 5\nReadTimeout = 5\n");
    let mut stalled = Vec::new();
    for prefix in [
        &b"nINSTREAM\n\x00\x00"[..],
        b"nINSTREAM\n\x00\x00\x00\x10abc",
        b"nPIN",
        b"zSCAN /tm",
        b"FILDES",
    ] {
        let mut s = UnixStream::connect(&d.socket).unwrap();
        s.write_all(prefix).unwrap();
        stalled.push((prefix, s, Instant::now()));
    }
    // Others are served while those wait...
    for _ in 0..20 {
        ping_ok(&d);
        assert_eq!(
            d.send(&instream(b"nINSTREAM\n", EICAR, 10)),
            b"stream: Test.Eicar.Body.UNOFFICIAL FOUND\n"
        );
    }
    // ...which are all still connected and waiting, so they blocked nobody.
    for (prefix, s, t0) in &stalled {
        s.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let still_open =
            matches!((&*s).read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        assert!(
            still_open,
            "{prefix:?} was closed before its timeout ({:?})",
            t0.elapsed()
        );
        s.set_nonblocking(false).unwrap();
    }
    // Then each stalled client is closed after its timeout, not much later.
    for (prefix, mut s, t0) in stalled {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let waited = t0.elapsed();
        assert!(
            waited >= Duration::from_millis(4900) && waited < Duration::from_secs(15),
            "{prefix:?} closed after {waited:?}"
        );
        if prefix == b"nPIN" {
            assert_eq!(out, b"COMMAND READ TIMED OUT\n");
        }
    }
    // A slowloris: one byte every 500 ms, a complete command in the end.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    for b in b"nPING\n" {
        s.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut out = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"PONG\n");
}

/// 1,000 clients connected at once, each with a stream to scan, all
/// answered.
#[test]
fn many_concurrent_clients() {
    const N: usize = 1000;
    // This test holds N descriptors itself.
    // SAFETY: get/setrlimit with a valid pointer.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        assert!(
            lim.rlim_cur as usize > N + 100,
            "open-file limit too low for {N} clients: {}",
            lim.rlim_cur
        );
    }
    let fx = Fixture::new();
    let d = Daemon::aetherd(&fx, "a", "MaxConnectionQueueLength = 1024\n");
    let mut conns: Vec<UnixStream> = (0..N)
        .map(|_| {
            let s = UnixStream::connect(&d.socket).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            s
        })
        .collect();
    let infected = instream(b"nINSTREAM\n", EICAR, 16);
    let clean = instream(b"nINSTREAM\n", &[b'x'; 10_000], 1000);
    for (i, s) in conns.iter_mut().enumerate() {
        s.write_all(if i % 2 == 0 { &infected } else { &clean })
            .unwrap();
    }
    for (i, s) in conns.iter_mut().enumerate() {
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let want: &[u8] = if i % 2 == 0 {
            b"stream: Test.Eicar.Body.UNOFFICIAL FOUND\n"
        } else {
            b"stream: OK\n"
        };
        assert_eq!(out, want, "client {i}");
    }
    ping_ok(&d);
}

/// A database big enough that compiling it takes a while.
fn big_db(db: &std::path::Path, n: usize) {
    let mut text = String::with_capacity(n * 60);
    for i in 0..n {
        text.push_str(&format!(
            "{:032x}:{}:Filler.Sig.{i}\n",
            (i as u128) * 0x9e3779b97f4a7c15 + 1,
            1000 + i
        ));
    }
    std::fs::write(db.join("filler.hdb"), text).unwrap();
}

/// Scans keep running, and keep their answers, while the database is
/// reloaded again and again.
#[test]
fn reload_while_scanning_fails_no_scan() {
    let fx = Fixture::new();
    big_db(&fx.path().join("db"), 200_000);
    let d = Arc::new(Daemon::aetherd(&fx, "a", ""));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let eicar = fx.file("eicar.com").display().to_string();
    let mut workers = Vec::new();
    for w in 0..4 {
        let (d, stop, done, eicar) = (
            Arc::clone(&d),
            Arc::clone(&stop),
            Arc::clone(&done),
            eicar.clone(),
        );
        workers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (case, want) = if w % 2 == 0 {
                    (
                        instream(b"nINSTREAM\n", EICAR, 20),
                        b"stream: Test.Eicar.Body.UNOFFICIAL FOUND\n".to_vec(),
                    )
                } else {
                    (
                        format!("nSCAN {eicar}\n").into_bytes(),
                        format!("{eicar}: Test.Eicar.Body.UNOFFICIAL FOUND\n").into_bytes(),
                    )
                };
                let got = d.send(&case);
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want)
                );
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Scans finished between each RELOAD and the end of that reload.
    let mut during = 0;
    for i in 1..=3 {
        let before = done.load(Ordering::Relaxed);
        assert_eq!(d.send(b"nRELOAD\n"), b"RELOADING\n");
        d.wait_log("database reloaded", i, Duration::from_secs(120));
        during += done.load(Ordering::Relaxed) - before;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("a scan failed during a reload");
    }
    assert!(during > 0, "no scan ran during the reloads");
    assert!(!d.log_text().contains("reload failed"));
}

/// A broken database leaves the old one serving and the log says why;
/// once fixed, SIGHUP loads it, new signatures included.
#[test]
fn broken_database_keeps_the_old_one() {
    let fx = Fixture::new();
    let d = Daemon::aetherd(&fx, "a", "");
    let eicar = fx.file("eicar.com").display().to_string();
    let found = format!("{eicar}: Test.Eicar.Body.UNOFFICIAL FOUND\n").into_bytes();
    let db = fx.path().join("db");
    std::fs::write(db.join("broken.ndb"), "Broken.Sig:0:*:zz-not-hex\n").unwrap();
    assert_eq!(d.send(b"zRELOAD\0"), b"RELOADING\0");
    d.wait_log("reload failed", 1, Duration::from_secs(60));
    let log = d.log_text();
    assert!(log.contains("previous database keeps serving"), "{log}");
    assert!(
        log.contains("broken.ndb"),
        "the log names the bad file: {log}"
    );
    assert_eq!(d.send(format!("nSCAN {eicar}\n").as_bytes()), found);

    // Fixed, with one more signature: SIGHUP reloads.
    std::fs::remove_file(db.join("broken.ndb")).unwrap();
    std::fs::write(
        db.join("more.ndb"),
        format!("Test.Clean.Now.Dirty:0:*:{}\n", hex(b"hello world clean")),
    )
    .unwrap();
    let clean = fx.file("clean.txt").display().to_string();
    assert_eq!(
        d.send(format!("nSCAN {clean}\n").as_bytes()),
        format!("{clean}: OK\n").into_bytes()
    );
    // SAFETY: a signal to our own child.
    unsafe {
        libc::kill(d.pid(), libc::SIGHUP);
    }
    d.wait_log("database reloaded", 1, Duration::from_secs(60));
    assert_eq!(
        d.send(format!("nSCAN {clean}\n").as_bytes()),
        format!("{clean}: Test.Clean.Now.Dirty.UNOFFICIAL FOUND\n").into_bytes()
    );
    assert_eq!(d.send(format!("nSCAN {eicar}\n").as_bytes()), found);
}

#[test]
fn sigterm_and_shutdown_stop_cleanly() {
    let fx = Fixture::new();
    let mut d = Daemon::aetherd(&fx, "a", "");
    // An idle session does not hold the shutdown up.
    let mut idle = UnixStream::connect(&d.socket).unwrap();
    idle.write_all(b"nIDSESSION\n").unwrap();
    ping_ok(&d);
    let status = d.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(!d.socket.exists(), "socket file left behind");

    let mut d = Daemon::aetherd(&fx, "b", "");
    assert_eq!(d.send(b"nSHUTDOWN\n"), b"");
    let mut child = d.child.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "SHUTDOWN did not stop the daemon"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

/// Without --foreground the daemon forks after loading and binding: the
/// command returns 0, the daemon answers, and its PidFile names it.
#[test]
fn background_mode_forks_after_binding() {
    let fx = Fixture::new();
    let sock = fx.path().join("bg.sock");
    let pid_file = fx.path().join("bg.pid");
    let config = fx.path().join("bg.toml");
    std::fs::write(
        &config,
        format!(
            "DatabaseDirectory = {:?}\nBuiltinDatabase = false\nDatabaseCache = false\nIpcSocket = \"\"\nJournalPath = \"\"\nSensor = false\nLocalSocket = {sock:?}\nPidFile = {pid_file:?}\nLogFile = {:?}\n",
            fx.path().join("db"),
            fx.path().join("bg.log")
        ),
    )
    .unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_aetherd"))
        .arg("--config")
        .arg(&config)
        .status()
        .unwrap();
    assert!(status.success());
    // The parent exits once the socket is bound, so the daemon answers (the
    // PID file is written by the child just after the fork).
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid: i32 = loop {
        if let Ok(text) = std::fs::read_to_string(&pid_file)
            && let Ok(pid) = text.trim().parse()
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "no PidFile");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(send(&sock, b"nPING\n"), b"PONG\n");
    // SAFETY: the PID of the daemon this test started.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    // Gone, or a zombie waiting for an init that may not reap it.
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
    };
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "daemon {pid} did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !sock.exists() && !pid_file.exists(),
        "socket or PID file left behind"
    );
}

fn run_aetherd(config_text: &str, fx: &Fixture, tag: &str) -> (i32, String) {
    let config = fx.path().join(format!("{tag}.toml"));
    std::fs::write(&config, config_text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aetherd"))
        .args(["--foreground", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("aetherd did not exit with config {config_text:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code().unwrap_or(-1), err)
}

#[test]
fn startup_errors_have_clear_messages_and_exit_codes() {
    let fx = Fixture::new();
    let db = fx.path().join("db");
    let sock = fx.path().join("x.sock");
    let base = format!(
        "DatabaseDirectory = {db:?}\nBuiltinDatabase = false\nDatabaseCache = false\nIpcSocket = \"\"\nJournalPath = \"\"\nSensor = false\n"
    );

    let (code, err) = run_aetherd(
        &format!("{base}LocalSocket = {sock:?}\nMaxThreads = \"many\"\n"),
        &fx,
        "c1",
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("MaxThreads"), "{err}");
    let (code, err) = run_aetherd(
        &format!("{base}LocalSocket = {sock:?}\nStreamMaxLengthh = 5\n"),
        &fx,
        "c2",
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("StreamMaxLengthh"), "{err}");

    let (code, err) = run_aetherd(
        &format!(
            "DatabaseDirectory = {:?}\nBuiltinDatabase = false\nDatabaseCache = false\nIpcSocket = \"\"\nJournalPath = \"\"\nSensor = false\nLocalSocket = {sock:?}\n",
            fx.path().join("nope")
        ),
        &fx,
        "c3",
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("nope"), "{err}");
    assert!(!sock.exists(), "socket left after a failed start");

    // A socket in use by a running daemon.
    let d = Daemon::aetherd(&fx, "a", "");
    let (code, err) = run_aetherd(&format!("{base}LocalSocket = {:?}\n", d.socket), &fx, "c4");
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("in use"), "{err}");
    ping_ok(&d);

    // A stale socket file (nobody listening) is replaced.
    let stale = fx.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let cfg = fx.path().join("stale.toml");
    std::fs::write(&cfg, format!("{base}LocalSocket = {stale:?}\n")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aetherd"))
        .args(["--foreground", "--config"])
        .arg(&cfg)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while try_send(&stale, b"nPING\n").ok().as_deref() != Some(b"PONG\n") {
        assert!(
            Instant::now() < deadline,
            "no answer on the replaced stale socket"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "exited on a stale socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Missing privileges: an unprivileged user cannot create the socket in a
/// root-owned directory (run through setpriv as nobody).
#[test]
fn missing_privileges_exit_6() {
    let fx = Fixture::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Already unprivileged: a directory we cannot write is enough.
        let dir = fx.path().join("ro");
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o555);
        let (code, err) = run_aetherd(
            &format!(
                "DatabaseDirectory = {:?}\nBuiltinDatabase = false\nDatabaseCache = false\nIpcSocket = \"\"\nJournalPath = \"\"\nSensor = false\nLocalSocket = {:?}\n",
                fx.path().join("db"),
                dir.join("s.sock")
            ),
            &fx,
            "p",
        );
        assert_eq!(code, 6, "{err}");
        return;
    }
    let dir = fx.path().join("root-only");
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o755);
    let config = fx.path().join("p.toml");
    std::fs::write(
        &config,
        format!("DatabaseDirectory = {:?}\nBuiltinDatabase = false\nDatabaseCache = false\nIpcSocket = \"\"\nJournalPath = \"\"\nSensor = false\nLocalSocket = {:?}\n", fx.path().join("db"), dir.join("s.sock")),
    )
    .unwrap();
    chmod(&config, 0o644);
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_aetherd"))
        .args(["--foreground", "--config"])
        .arg(&config)
        .output()
        .expect("setpriv (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(err.contains("permission denied"), "{err}");
}

#[test]
fn tcp_on_loopback_and_builtin_database() {
    let fx = Fixture::new();
    // A free port: bound then released (the daemon binds it right after).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let empty = fx.path().join("empty-db");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(
        empty.join("none.hdb"),
        format!("{}:3:Nothing.Here\n", "0".repeat(32)),
    )
    .unwrap();
    let d = Daemon::aetherd(&fx, "t", &format!("TCPSocket = {port}\n"));
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&instream(b"zINSTREAM\0", EICAR, 5)).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"stream: Test.Eicar.Body.UNOFFICIAL FOUND\0");
    drop(d);

    // The built-in database knows EICAR by its usual name.
    let cfg = format!(
        "DatabaseDirectory = {empty:?}\nBuiltinDatabase = true\nDatabaseCache = false\nIpcSocket = \"\"\nJournalPath = \"\"\nSensor = false\nLocalSocket = {:?}\n",
        fx.path().join("b.sock")
    );
    std::fs::write(fx.path().join("b.toml"), cfg).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aetherd"))
        .args(["--foreground", "--config"])
        .arg(fx.path().join("b.toml"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sock = fx.path().join("b.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while try_send(&sock, b"nPING\n").ok().as_deref() != Some(b"PONG\n") {
        assert!(
            Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "aetherd did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let reply = send(&sock, &instream(b"nINSTREAM\n", EICAR, 68));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(reply, b"stream: Eicar-Test-Signature FOUND\n");
}
