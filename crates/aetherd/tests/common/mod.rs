//! Real daemons on temporary sockets: aetherd from this build and Debian's
//! clamd, on the same database and files. Every process started here is
//! stopped by its PID when its handle drops.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
pub const MARKER: &[u8] = b"aether-test-marker-1234";

/// A temporary tree: a database (`db/`), files to scan (`files/`), and
/// room for sockets and logs.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("aetherd-test")
            .tempdir()
            .unwrap();
        let root = dir.path();
        // Others (clamd dropping privileges, setpriv tests) must read it.
        chmod(root, 0o755);
        std::fs::create_dir_all(root.join("db")).unwrap();
        std::fs::create_dir_all(root.join("files/dir/sub")).unwrap();
        let f = root.join("files");
        std::fs::write(f.join("eicar.com"), EICAR).unwrap();
        std::fs::write(f.join("clean.txt"), b"hello world clean\n").unwrap();
        std::fs::write(f.join("marker.bin"), MARKER).unwrap();
        std::fs::write(f.join("dir/a.com"), EICAR).unwrap();
        std::fs::write(f.join("dir/b.txt"), b"nothing here\n").unwrap();
        std::fs::write(f.join("dir/sub/m.bin"), MARKER).unwrap();
        std::fs::write(f.join("dir/empty"), b"").unwrap();
        std::fs::create_dir_all(f.join("cleandir")).unwrap();
        std::fs::create_dir_all(f.join("emptydir")).unwrap();
        std::fs::create_dir_all(f.join("onlyempty")).unwrap();
        std::fs::write(f.join("onlyempty/zero"), b"").unwrap();
        std::fs::write(f.join("cleandir/x.txt"), b"clean\n").unwrap();
        std::os::unix::fs::symlink(f.join("eicar.com"), f.join("link.com")).unwrap();
        write_db(&root.join("db"));
        Fixture { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path().join("files").join(name)
    }
}

pub fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The test database: EICAR by a body signature, the marker by MD5.
pub fn write_db(db: &Path) {
    let md5 = md5_hex(MARKER);
    std::fs::write(
        db.join("test.hdb"),
        format!("{md5}:{}:Aether.Test.Marker\n", MARKER.len()),
    )
    .unwrap();
    std::fs::write(
        db.join("test.ndb"),
        format!("Test.Eicar.Body:0:*:{}\n", hex(b"EICAR-STANDARD-ANTIVIRUS")),
    )
    .unwrap();
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn md5_hex(data: &[u8]) -> String {
    let out = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..32].to_string()
}

/// A running daemon, killed by PID on drop.
pub struct Daemon {
    pub child: Option<Child>,
    pub socket: PathBuf,
    pub log: PathBuf,
    pub name: &'static str,
}

impl Daemon {
    /// Starts aetherd with `extra` TOML lines added to a test configuration.
    pub fn aetherd(fx: &Fixture, tag: &str, extra: &str) -> Daemon {
        let socket = fx.path().join(format!("{tag}.sock"));
        let log = fx.path().join(format!("{tag}.log"));
        let config = fx.path().join(format!("{tag}.toml"));
        let ipc = fx.path().join(format!("{tag}.ipc"));
        let journal = fx.path().join(format!("{tag}.journal.db"));
        let base = format!(
            "LocalSocket = {socket:?}\nDatabaseDirectory = {:?}\nBuiltinDatabase = false\nDatabaseCache = false\nStreamMaxLength = \"1M\"\nMaxThreads = 3\nLogFile = {log:?}\nIpcSocket = {ipc:?}\nJournalPath = {journal:?}\nSensor = false\n",
            fx.path().join("db")
        );
        // Settings in `extra` replace the defaults above.
        let overridden = |line: &str| {
            let key = line.split('=').next().unwrap_or("").trim();
            extra
                .lines()
                .any(|l| l.split('=').next().unwrap_or("").trim() == key)
        };
        let mut text: String = base
            .lines()
            .filter(|l| !overridden(l))
            .map(|l| format!("{l}\n"))
            .collect();
        text.push_str(extra);
        std::fs::write(&config, text).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_aetherd"))
            .arg("--foreground")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start aetherd");
        let mut d = Daemon {
            child: Some(child),
            socket,
            log,
            name: "aetherd",
        };
        d.wait_ready(Duration::from_secs(60));
        d
    }

    /// Starts Debian's clamd on the fixture's database.
    pub fn clamd(fx: &Fixture) -> Daemon {
        let clamd = Path::new("/usr/sbin/clamd");
        assert!(
            clamd.exists(),
            "Debian's clamd is needed for the differential tests: apt-get install clamav-daemon (bash .ci/run installs it)"
        );
        let socket = fx.path().join("clamd.sock");
        let log = fx.path().join("clamd.log");
        let config = fx.path().join("clamd.conf");
        std::fs::write(
            &config,
            format!(
                "LocalSocket {}\nDatabaseDirectory {}\nForeground yes\nLogFile {}\nStreamMaxLength 1M\nMaxThreads 3\nUser root\nTemporaryDirectory {}\n",
                socket.display(),
                fx.path().join("db").display(),
                log.display(),
                fx.path().display(),
            ),
        )
        .unwrap();
        let child = Command::new(clamd)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start clamd");
        let mut d = Daemon {
            child: Some(child),
            socket,
            log,
            name: "clamd",
        };
        d.wait_ready(Duration::from_secs(120));
        d
    }

    /// Waits until the daemon answers PING, or fails with its stderr.
    pub fn wait_ready(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(reply) = try_send(&self.socket, b"nPING\n")
                && reply == b"PONG\n"
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("{} exited during start ({status}): {err}", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer within {limit:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn send(&self, bytes: &[u8]) -> Vec<u8> {
        send(&self.socket, bytes)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until the log contains `needle` `count` times.
    pub fn wait_log(&self, needle: &str, count: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.log_text().matches(needle).count() < count {
            assert!(
                Instant::now() < deadline,
                "{}: {needle:?} x{count} not logged within {limit:?}; log:\n{}",
                self.name,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill on the PID of our own child.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not stop within {limit:?} of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Connects, sends, reads until the daemon closes (bounded by a timeout).
pub fn send(socket: &Path, bytes: &[u8]) -> Vec<u8> {
    try_send(socket, bytes).unwrap_or_else(|e| panic!("{}: {e}", socket.display()))
}

pub fn try_send(socket: &Path, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    send_within(socket, bytes, Duration::from_secs(30))
}

/// As [`send`], but a daemon still silent after `limit` gives what was read
/// followed by `<TIMEOUT>`.
pub fn send_or_timeout(socket: &Path, bytes: &[u8], limit: Duration) -> Vec<u8> {
    match send_within(socket, bytes, limit) {
        Ok(v) => v,
        Err(e) => panic!("{}: {e}", socket.display()),
    }
}

fn send_within(socket: &Path, bytes: &[u8], limit: Duration) -> std::io::Result<Vec<u8>> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(limit))?;
    s.set_write_timeout(Some(Duration::from_secs(30)))?;
    // A daemon may close early (size limit) while we still write.
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(out),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            out.extend_from_slice(b"<TIMEOUT>");
            Ok(out)
        }
        Err(e) => Err(e),
    }
}

/// `INSTREAM` framing of `data` in chunks of `chunk` bytes.
pub fn instream(prefix: &[u8], data: &[u8], chunk: usize) -> Vec<u8> {
    let mut v = prefix.to_vec();
    for c in data.chunks(chunk.max(1)) {
        v.extend_from_slice(&(c.len() as u32).to_be_bytes());
        v.extend_from_slice(c);
    }
    v.extend_from_slice(&[0, 0, 0, 0]);
    v
}

/// aetherd's VERSION text mapped to clamd's, for comparison.
pub fn normalize(reply: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(reply).into_owned();
    text.replace(
        &format!("ClamAV 1.4.6/aether {}", env!("CARGO_PKG_VERSION")),
        "ClamAV 1.4.6",
    )
    .into_bytes()
}

/// Lines sorted (replies of a parallel scan come in completion order).
pub fn sorted_lines(reply: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(reply)
        .split_inclusive(['\n', '\0'])
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// The first whole snapshot among `(name, kind, data)` records: where it begins,
/// and its processes. Checks that they follow the begin record without anything
/// between, as many as it announced, numbered from 0 in pid order, then the end.
pub fn snapshot(
    recs: &[(String, u8, Vec<u8>)],
) -> Option<(usize, Vec<aether_events::ProcessSnapshot>)> {
    use aether_events::EventKind;
    let event = |i: usize| match recs
        .get(i)
        .map(|(_, k, d)| aether_journal::Entry::decode(*k, d))
    {
        Some(Some(Ok(aether_journal::Entry::Event(ev)))) => Some(ev.kind),
        _ => None,
    };
    let at = recs.iter().position(|(n, _, _)| n == "snapshot_begin")?;
    let Some(EventKind::SnapshotBegin(begin)) = event(at) else {
        panic!("undecodable snapshot_begin");
    };
    let n = usize::try_from(begin.processes).unwrap();
    let mut listed = Vec::new();
    for i in 0..n {
        match event(at + 1 + i) {
            Some(EventKind::ProcessSnapshot(p)) => {
                assert_eq!((p.snapshot, p.index), (begin.snapshot, i as u64));
                listed.push(p);
            }
            None if at + 1 + i >= recs.len() => return None,
            other => panic!("{other:?} inside the snapshot"),
        }
    }
    match event(at + 1 + n) {
        Some(EventKind::SnapshotEnd(end)) => {
            assert_eq!(
                (end.snapshot, end.processes),
                (begin.snapshot, begin.processes)
            )
        }
        None if at + 1 + n >= recs.len() => return None,
        other => panic!("{other:?} instead of snapshot_end"),
    }
    assert!(listed.windows(2).all(|w| w[0].task.pid < w[1].task.pid));
    Some((at, listed))
}
