//! `aether events`, `aether status` and `aether reload` against a real aetherd
//! on temporary sockets (built from this workspace).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "../../aetherd/tests/stopped_common/mod.rs"]
mod stopped_common;
use stopped_common::wait_stopped;

const BIN: &str = env!("CARGO_BIN_EXE_aether");

/// EICAR, assembled at run time.
fn eicar() -> Vec<u8> {
    let mut v = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$".to_vec();
    v.extend_from_slice(b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*");
    v
}

/// aetherd from this workspace: beside `aether`, built on demand.
fn aetherd() -> PathBuf {
    let path = Path::new(BIN).with_file_name("aetherd");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "aetherd"])
            .status()
            .expect("cargo build -p aetherd");
        assert!(status.success());
    }
    path
}

struct Daemon {
    child: Option<Child>,
    dir: PathBuf,
}

impl Daemon {
    fn start(dir: &Path) -> Daemon {
        Daemon::start_with(dir, "")
    }

    /// A daemon with `extra` appended to its configuration.
    fn start_with(dir: &Path, extra: &str) -> Daemon {
        let db = dir.join("db");
        std::fs::create_dir_all(&db).unwrap();
        if !db.join("t.ndb").exists() {
            let hex: String = b"EICAR-STANDARD-ANTIVIRUS"
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            std::fs::write(db.join("t.ndb"), format!("Test.Eicar:0:*:{hex}\n")).unwrap();
        }
        let config = dir.join("aetherd.toml");
        std::fs::write(
            &config,
            format!(
                "LocalSocket = {:?}\nIpcSocket = {:?}\nJournalPath = {:?}\nSensor = false\nDatabaseDirectory = {db:?}\nBuiltinDatabase = false\nDatabaseCache = false\nLogFile = {:?}\n",
                dir.join("clamd.sock"),
                dir.join("ipc.sock"),
                dir.join("journal.db"),
                dir.join("log"),
            ) + extra,
        )
        .unwrap();
        let child = Command::new(aetherd())
            .args(["--foreground", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let d = Daemon {
            child: Some(child),
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !(d.ipc().exists() && d.clamd_scan(b"x").is_ok()) {
            assert!(Instant::now() < deadline, "aetherd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn ipc(&self) -> PathBuf {
        self.dir.join("ipc.sock")
    }

    /// One INSTREAM scan on the clamd socket.
    fn clamd_scan(&self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        let mut s = std::os::unix::net::UnixStream::connect(self.dir.join("clamd.sock"))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut req = b"zINSTREAM\0".to_vec();
        req.extend_from_slice(&(data.len() as u32).to_be_bytes());
        req.extend_from_slice(data);
        req.extend_from_slice(&[0, 0, 0, 0]);
        s.write_all(&req)?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        Ok(out)
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn aether(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    text(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn status_and_events_without_follow() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let ipc = d.ipc();
    let ipc = ipc.to_str().unwrap();
    assert_eq!(
        d.clamd_scan(&eicar()).unwrap(),
        b"stream: Test.Eicar.UNOFFICIAL FOUND\0"
    );
    let out = aether(&["status", "--socket", ipc]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.starts_with("version:"), "{s}");
    assert!(s.contains("signatures:       1\n"), "{s}");
    assert!(
        s.contains("sensor:           not running: turned off"),
        "{s}"
    );
    assert!(s.contains("2 scanned, 1 infected"), "{s}");
    let out = aether(&["status", "--json", "--socket", ipc]);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["scans"]["infected"], 1);
    let last = st["journal"]["last_seq"].as_u64().unwrap();

    // Without --follow: the journal as it is, then exit.
    let out = aether(&["events", "--json", "--since", "0", "--socket", ipc]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let recs = json_lines(&out.stdout);
    assert_eq!(recs[0]["kind"], "writer");
    assert_eq!(recs[0]["name"], "writer_started");
    let seqs: Vec<u64> = recs.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..=seqs[seqs.len() - 1]).collect::<Vec<_>>());
    assert!(*seqs.last().unwrap() >= last);
    let found = recs
        .iter()
        .find(|r| r["data"]["verdict"]["verdict"] == "infected")
        .expect("the infected scan");
    assert_eq!(found["data"]["target"], "stream");
    assert_eq!(
        found["data"]["verdict"]["signature"],
        "Test.Eicar.UNOFFICIAL"
    );
    // Text: a header and aligned columns.
    let out = aether(&["events", "--since", "1", "--socket", ipc]);
    let t = text(&out.stdout);
    let mut lines = t.lines();
    let header = lines.next().unwrap();
    assert!(header.trim_start().starts_with("SEQ"), "{t}");
    let kind_col = header.find("KIND").unwrap();
    let name_col = header.find("NAME").unwrap();
    for l in lines {
        let kind = l[kind_col..].split(' ').next().unwrap();
        assert!(
            ["writer", "lifecycle", "scan", "event", "running"].contains(&kind),
            "{t}"
        );
        assert_eq!(&l[name_col - 1..name_col], " ", "{t}");
        assert_ne!(&l[name_col..name_col + 1], " ", "{t}");
    }
    assert!(t.contains("FOUND Test.Eicar.UNOFFICIAL"), "{t}");
    assert!(
        !t.contains("writer_started"),
        "--since 1 skips record 0: {t}"
    );

    // No daemon: a clear error and exit 2.
    let out = aether(&["status", "--socket", "/nonexistent/aetherd.sock"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/aetherd.sock"));
}

#[test]
fn reload_reports_success_and_failure() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let ipc = d.ipc();
    let ipc = ipc.to_str().unwrap();
    let out = aether(&["reload", "--socket", ipc]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("database reloaded: 1 signatures"));
    std::fs::write(dir.path().join("db/bad.ndb"), "Bad:0:*:zz\n").unwrap();
    let out = aether(&["reload", "--socket", ipc]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("previous database keeps serving"), "{err}");
    assert!(err.contains("bad.ndb"), "{err}");
    let out = aether(&["events", "--json", "--since", "0", "--socket", ipc]);
    let recs = json_lines(&out.stdout);
    let failed = recs
        .iter()
        .find(|r| r["name"] == "database_failed")
        .expect("the failure is journaled");
    assert!(
        failed["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("bad.ndb")
    );
    // Still scanning with the old database.
    assert_eq!(
        d.clamd_scan(&eicar()).unwrap(),
        b"stream: Test.Eicar.UNOFFICIAL FOUND\0"
    );
}

/// Starts an `aether events --json` command; its records arrive on the
/// channel as the reader thread parses its lines.
fn follow(
    mut cmd: Command,
) -> (
    Child,
    mpsc::Receiver<serde_json::Value>,
    std::thread::JoinHandle<()>,
) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<serde_json::Value>();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                break;
            }
        }
    });
    (child, rx, reader)
}

#[test]
fn follow_survives_kill_9_without_gap_or_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path());
    let ipc = d.ipc();
    let mut cmd = Command::new(BIN);
    cmd.args(["events", "--follow", "--json", "--since", "0", "--socket"])
        .arg(&ipc);
    let (mut follower, rx, reader) = follow(cmd);
    let mut got: Vec<serde_json::Value> = Vec::new();
    let wait_for = |got: &mut Vec<serde_json::Value>,
                    what: &dyn Fn(&[serde_json::Value]) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !what(got) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "follower output: {got:?}");
            if let Ok(v) = rx.recv_timeout(left) {
                got.push(v);
            }
        }
    };
    for n in 0..20 {
        d.clamd_scan(format!("before {n}").as_bytes()).unwrap();
    }
    wait_for(&mut got, &|g| {
        g.iter().filter(|r| r["name"] == "scan").count() >= 20
    });
    d.kill9();
    // Scans that find no daemon fail; none is journaled meanwhile.
    let d = Daemon::start(dir.path());
    for n in 0..20 {
        d.clamd_scan(format!("after {n}").as_bytes()).unwrap();
    }
    wait_for(&mut got, &|g| {
        g.iter().filter(|r| r["name"] == "scan").count() >= 40
    });
    let _ = follower.kill();
    let _ = follower.wait();
    let _ = reader.join();
    let seqs: Vec<u64> = got.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "gap or duplicate"
    );
    let gap = got
        .iter()
        .filter(|r| r["name"] == "writer_started")
        .nth(1)
        .expect("the restart's gap record");
    assert_eq!(gap["data"]["clean"], false);
    let mut err = String::new();
    use std::io::Read;
    if let Some(mut e) = follower.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(err.contains("reconnected"), "{err}");
}

/// A member of the IPC group (not root) following live records gets them
/// through the daemon's shared-memory ring, mapped read-only.
#[test]
fn a_group_member_follows_live_records_through_a_read_only_ring() {
    let dir = tempfile::tempdir().unwrap();
    // Let nobody reach the sockets; the daemon lets in group nogroup (65534).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = Daemon::start_with(
        dir.path(),
        "IpcGroup = \"nogroup\"\nIpcSocketMode = \"666\"\n",
    );
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(BIN)
        .args(["events", "--follow", "--json", "--socket"])
        .arg(d.ipc());
    let (mut follower, rx, reader) = follow(cmd);
    // The follower's mappings of the ring (setpriv executes aether in place).
    let ring_maps = |pid: u32| -> Vec<String> {
        std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("aether-ring"))
            .map(str::to_string)
            .collect()
    };
    let mut scans = 0;
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    // Scans until the follower has printed some and mapped the ring.
    while scans < 5 || ring_maps(follower.id()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no ring mapped; {scans} scans seen"
        );
        d.clamd_scan(format!("scan {n}").as_bytes()).unwrap();
        n += 1;
        while let Ok(v) = rx.recv_timeout(Duration::from_millis(50)) {
            scans += usize::from(v["name"] == "scan");
        }
    }
    let maps = ring_maps(follower.id());
    // The daemon reports the ring and its reader.
    let ipc = d.ipc();
    let st = aether(&["status", "--json", "--socket", ipc.to_str().unwrap()]);
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(st["ring"]["bytes"], 16u64 << 20, "{st}");
    assert_eq!(st["ring"]["readers"], 1, "{st}");
    // Read-only, shared: `r--s`.
    assert!(
        maps.iter()
            .all(|l| l.split_whitespace().nth(1) == Some("r--s")),
        "{maps:?}"
    );
    // Live records go on arriving through it.
    let before = scans;
    for m in 0..20 {
        d.clamd_scan(format!("live {m}").as_bytes()).unwrap();
    }
    while scans < before + 20 {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{} of 20 live scans seen", scans - before);
        if let Ok(v) = rx.recv_timeout(left) {
            scans += usize::from(v["name"] == "scan");
        }
    }
    let _ = follower.kill();
    let _ = follower.wait();
    let _ = reader.join();
}

// ---- aether scan --daemon ----

/// Output lines that do not depend on when the scan ran.
fn timeless(out: &[u8]) -> Vec<String> {
    text(out)
        .lines()
        .filter(|l| {
            !["Time:", "Start Date:", "End Date:"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(str::to_string)
        .collect()
}

/// JSON lines without the summary's clock fields.
fn timeless_json(out: &[u8]) -> Vec<serde_json::Value> {
    let mut v = json_lines(out);
    for o in &mut v {
        if let Some(m) = o.as_object_mut() {
            for k in ["time_seconds", "start_time", "end_time"] {
                m.remove(k);
            }
        }
    }
    v
}

/// A tree to scan: EICAR bare, in a subdirectory and in a zip, clean files,
/// an empty one, a symbolic link.
fn scan_tree(dir: &Path) -> PathBuf {
    let f = dir.join("files");
    std::fs::create_dir_all(f.join("sub")).unwrap();
    std::fs::write(f.join("eicar.com"), eicar()).unwrap();
    std::fs::write(f.join("clean.txt"), b"nothing to see\n").unwrap();
    std::fs::write(f.join("empty"), b"").unwrap();
    std::fs::write(f.join("sub/deep.txt"), b"deeper, still clean\n").unwrap();
    std::fs::write(f.join("sub/e2.com"), eicar()).unwrap();
    std::os::unix::fs::symlink(f.join("eicar.com"), f.join("link.com")).unwrap();
    let zipped = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:\n    z.writestr('inner/eicar.com', open(sys.argv[2], 'rb').read())",
        ])
        .arg(f.join("e.zip"))
        .arg(f.join("eicar.com"))
        .status()
        .expect("python3");
    assert!(zipped.success());
    f
}

/// The scan records in the journal, as (target, verdict, client), once at
/// least `want` of them are committed (the writer commits in batches, so the
/// last ones may take a moment).
fn scan_records(ipc: &str, want: usize) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = aether(&["events", "--json", "--since", "0", "--socket", ipc]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let recs: Vec<(String, String, String)> = json_lines(&out.stdout)
            .iter()
            .filter(|r| r["kind"] == "scan")
            .map(|r| {
                let d = &r["data"];
                (
                    d["target"].as_str().unwrap_or_default().to_string(),
                    d["verdict"]["verdict"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    d["client"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        if recs.len() >= want {
            return recs;
        }
        assert!(Instant::now() < deadline, "{want} scan records: {recs:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn scan_through_the_daemon_prints_what_a_local_scan_prints() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let files = scan_tree(dir.path());
    let files = files.to_str().unwrap();
    let ipc = d.ipc();
    let ipc = ipc.to_str().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    for (opts, code) in [
        (&["-r"][..], 1),
        (&["-r", "-i", "--no-summary"], 1),
        (&["-r", "--allmatch", "--alert-exceeds-max"], 1),
        // Every file over the limit: skipped as clean, as clamscan does.
        (&["-r", "--max-filesize=10"], 0),
        (&["-r", "--max-filesize=10", "--alert-exceeds-max"], 1),
        (&["--follow-file-symlinks=2"], 1),
    ] {
        let local = aether(&[&["scan", "-d", db][..], opts, &[files]].concat());
        let remote = aether(
            &[
                &["scan", "--daemon", "--daemon-socket", ipc][..],
                opts,
                &[files],
            ]
            .concat(),
        );
        assert_eq!(
            local.status.code(),
            Some(code),
            "{opts:?}: {}",
            text(&local.stderr)
        );
        assert_eq!(
            remote.status.code(),
            local.status.code(),
            "{opts:?}: {}",
            text(&remote.stderr)
        );
        assert_eq!(
            timeless(&remote.stdout),
            timeless(&local.stdout),
            "{opts:?}"
        );
        assert_eq!(text(&remote.stderr), text(&local.stderr), "{opts:?}");
    }
    // What a plain recursive scan printed, to be sure the comparison means something.
    let remote = aether(&["scan", "--daemon", "--daemon-socket", ipc, "-r", files]);
    let lines = timeless(&remote.stdout);
    for want in [
        format!("{files}/eicar.com: Test.Eicar.UNOFFICIAL FOUND"),
        format!("{files}/e.zip: Test.Eicar.UNOFFICIAL FOUND"),
        format!("{files}/sub/e2.com: Test.Eicar.UNOFFICIAL FOUND"),
        format!("{files}/clean.txt: OK"),
        format!("{files}/empty: Empty file"),
        format!("{files}/link.com: Symbolic link"),
        "Known viruses: 1".to_string(),
        "Infected files: 3".to_string(),
    ] {
        assert!(lines.contains(&want), "{want}: {lines:#?}");
    }

    // JSON: the same objects, member chains included.
    let local = aether(&["scan", "-d", db, "-r", "--json", files]);
    let remote = aether(&[
        "scan",
        "--daemon",
        "--daemon-socket",
        ipc,
        "-r",
        "--json",
        files,
    ]);
    assert_eq!(remote.status.code(), Some(1));
    let (l, r) = (timeless_json(&local.stdout), timeless_json(&remote.stdout));
    assert_eq!(r, l);
    let zip = r
        .iter()
        .find(|o| o["path"] == format!("{files}/e.zip"))
        .unwrap();
    assert_eq!(
        zip["matches"][0]["chain"],
        serde_json::json!(["inner/eicar.com"])
    );
    assert_eq!(zip["file_type"], "CL_TYPE_ZIP");

    // Standard input is passed like a file.
    let run = |args: &[&str]| {
        let mut c = Command::new(BIN)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(&eicar()).unwrap();
        c.wait_with_output().unwrap()
    };
    let local = run(&["scan", "-d", db, "--no-summary", "-"]);
    let remote = run(&[
        "scan",
        "--daemon",
        "--daemon-socket",
        ipc,
        "--no-summary",
        "-",
    ]);
    assert_eq!(text(&remote.stdout), "stdin: Test.Eicar.UNOFFICIAL FOUND\n");
    assert_eq!(text(&remote.stdout), text(&local.stdout));
    assert_eq!(remote.status.code(), Some(1));

    // Journaled as clamd-protocol scans are: target, verdict, who asked.
    let recs = scan_records(ipc, 5);
    let mine = format!("{files}/sub/e2.com");
    let rec = recs
        .iter()
        .find(|r| r.0 == mine)
        .expect("sub/e2.com journaled");
    assert_eq!(rec.1, "infected");
    assert!(rec.2.starts_with("uid 0 pid "), "{rec:?}");
    let clean = format!("{files}/clean.txt");
    assert!(
        recs.iter().any(|r| r.0 == clean && r.1 == "clean"),
        "{recs:?}"
    );
    // Nothing is sent for an empty file.
    assert!(!recs.iter().any(|r| r.0.ends_with("/empty")), "{recs:?}");
}

#[test]
fn a_file_the_client_cannot_read_is_not_scanned_by_the_daemon() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test runs as root");
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    // Others reach the socket and the files; the group that may connect is
    // nogroup (65534).
    mode(dir.path(), 0o755);
    let d = Daemon::start_with(
        dir.path(),
        "IpcGroup = \"nogroup\"\nIpcSocketMode = \"666\"\n",
    );
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("open.com"), eicar()).unwrap();
    std::fs::write(files.join("secret.com"), eicar()).unwrap();
    mode(&files.join("open.com"), 0o644);
    mode(&files.join("secret.com"), 0o600);
    let files = files.to_str().unwrap();
    let ipc = d.ipc();
    let ipc = ipc.to_str().unwrap();
    let db = dir.path().join("db");
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
                BIN,
            ])
            .args(args)
            .output()
            .expect("setpriv (util-linux)")
    };
    let status = || -> serde_json::Value {
        serde_json::from_slice(&aether(&["status", "--json", "--socket", ipc]).stdout).unwrap()
    };
    let before = status()["scans"]["scanned"].as_u64().unwrap();
    let remote = as_nobody(&["scan", "--daemon", "--daemon-socket", ipc, files]);
    let local = as_nobody(&["scan", "-d", db.to_str().unwrap(), files]);
    assert_eq!(remote.status.code(), Some(1), "{}", text(&remote.stderr));
    let lines = timeless(&remote.stdout);
    assert!(
        lines.contains(&format!("{files}/secret.com: Access denied")),
        "{lines:?}"
    );
    assert!(lines.contains(&format!("{files}/open.com: Test.Eicar.UNOFFICIAL FOUND")));
    assert!(lines.contains(&"Total errors: 1".to_string()), "{lines:?}");
    assert_eq!(lines, timeless(&local.stdout));

    // The daemon scanned the readable file for uid 65534 and never the other.
    let recs = scan_records(ipc, 1);
    let open = recs
        .iter()
        .find(|r| r.0 == format!("{files}/open.com"))
        .expect("open.com journaled");
    assert!(open.2.starts_with("uid 65534 pid "), "{open:?}");
    assert!(!recs.iter().any(|r| r.0.contains("secret")), "{recs:?}");
    assert_eq!(status()["scans"]["scanned"].as_u64(), Some(before + 1));
}

/// Waits (bounded) until the client rings its bell on `stderr`, then reads
/// the rest on a thread; its result is all the client wrote there.
fn ring_of_bell(mut stderr: std::process::ChildStderr) -> std::thread::JoinHandle<String> {
    use std::io::Read;
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 256];
        let mut rang = false;
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            if !rang && all.contains(&0x07) {
                rang = true;
                let _ = tx.send(());
            }
        }
        text(&all)
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(30)).is_ok(),
        "no answer for the infected file"
    );
    reader
}

#[test]
fn a_daemon_killed_mid_scan_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path());
    let files = scan_tree(dir.path());
    let ipc = d.ipc();
    let ipc = ipc.to_str().unwrap();
    let a = files.join("eicar.com");
    let b = files.join("clean.txt");
    // Two files, then standard input, which the client reads only when the
    // walk reaches it: until it is closed, the scan is in progress. --bell
    // rings on standard error as soon as the infected file's entry has been
    // printed: the client has its answer.
    let mut client = Command::new(BIN)
        .args(["scan", "--daemon", "--daemon-socket", ipc, "--bell"])
        .arg(&a)
        .arg(&b)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = ring_of_bell(client.stderr.take().unwrap());
    d.kill9();
    let mut stdin = client.stdin.take().unwrap();
    let _ = stdin.write_all(b"more data");
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "aether scan --daemon hangs");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = client.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr.join().unwrap();
    assert!(err.contains("aetherd") && err.contains("mid-scan"), "{err}");
    // What was answered before is printed; no summary for a cut scan.
    let got = text(&out.stdout);
    assert!(
        got.contains(&format!("{}: Test.Eicar.UNOFFICIAL FOUND", a.display())),
        "{got}"
    );
    assert!(!got.contains("SCAN SUMMARY"), "{got}");
}

#[test]
fn an_unreachable_daemon_is_an_error_and_nothing_is_scanned_locally() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("e.com");
    std::fs::write(&f, eicar()).unwrap();
    let sock = dir.path().join("nobody-home.sock");
    let out = aether(&[
        "scan",
        "--daemon",
        "--daemon-socket",
        sock.to_str().unwrap(),
        f.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "");
    let err = text(&out.stderr);
    assert!(err.contains(sock.to_str().unwrap()), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
    // --daemon-socket without --daemon, and -d with --daemon, are usage errors.
    let out = aether(&["scan", "--daemon-socket", "/x", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = aether(&["scan", "--daemon", "-d", "/x", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot be used with"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn options_the_daemon_refuses_end_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(dir.path(), "AllowAllMatchScan = false\n");
    let f = dir.path().join("e.com");
    std::fs::write(&f, eicar()).unwrap();
    let ipc = d.ipc();
    let (ipc, f) = (ipc.to_str().unwrap(), f.to_str().unwrap());
    let out = aether(&["scan", "--daemon", "--daemon-socket", ipc, "-z", f]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("AllowAllMatchScan = false"), "{err}");
    assert!(!text(&out.stdout).contains("FOUND"));
    // Without --allmatch the same daemon scans.
    let out = aether(&[
        "scan",
        "--daemon",
        "--daemon-socket",
        ipc,
        "--no-summary",
        f,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("{f}: Test.Eicar.UNOFFICIAL FOUND\n")
    );
}

#[test]
fn a_daemon_that_stops_answering_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let f = dir.path().join("e.com");
    std::fs::write(&f, eicar()).unwrap();
    let ipc = d.ipc();
    let ipc = ipc.to_str().unwrap();
    // One file, then standard input, read only when the walk reaches it;
    // the bell says the first answer arrived.
    let mut client = Command::new(BIN)
        .args([
            "scan",
            "--daemon",
            "--daemon-socket",
            ipc,
            "--daemon-timeout",
            "2",
            "--bell",
        ])
        .arg(&f)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = ring_of_bell(client.stderr.take().unwrap());
    // Stopped, the daemon keeps its socket: the request is accepted and
    // never answered.
    let pid = d.child.as_ref().unwrap().id() as i32;
    // SAFETY: kill on the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    // kill() returns before every thread has stopped: wait until the
    // kernel shows each one stopped, or a request sent now may be answered.
    wait_stopped(pid);
    let started = Instant::now();
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(b"data").unwrap();
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "aether scan --daemon hangs");
        std::thread::sleep(Duration::from_millis(20));
    }
    let waited = started.elapsed();
    // SAFETY: as above; the daemon is then killed by its handle.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let out = client.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr.join().unwrap();
    assert!(err.contains("aetherd stopped answering"), "{err}");
    assert!(err.contains("1 files unanswered"), "{err}");
    assert!(waited >= Duration::from_secs(2), "{waited:?}");
    assert!(
        text(&out.stdout).contains("Test.Eicar.UNOFFICIAL FOUND"),
        "{}",
        text(&out.stdout)
    );
}
