//! `aether events`, `aether status` and `aether reload` against a real aetherd
//! on temporary sockets (built from this workspace).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
            ),
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

#[test]
fn follow_survives_kill_9_without_gap_or_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path());
    let ipc = d.ipc();
    let mut follower = Command::new(BIN)
        .args(["events", "--follow", "--json", "--since", "0", "--socket"])
        .arg(&ipc)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<serde_json::Value>();
    let stdout = follower.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                break;
            }
        }
    });
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
