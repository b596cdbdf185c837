//! Test helpers: a fresh directory per test and a way to run `aether`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_aether");

/// The EICAR test string, assembled at run time so that this source file is
/// not itself a test virus.
pub fn eicar() -> Vec<u8> {
    let mut v = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$".to_vec();
    v.extend_from_slice(b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*");
    v
}

/// Content matched by the test `.hdb` written by [`Dir::hdb`].
pub const HELLO: &[u8] = b"hello aether\n";
pub const HELLO_SIG: &str = "Test.Hello";

/// A temporary directory that tests run in (their working directory).
pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Writes a file, creating parent directories.
    pub fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
        let p = self.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, data).expect("write");
        p
    }

    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let p = self.join(rel);
        std::fs::create_dir_all(&p).expect("mkdir");
        p
    }

    /// A `.hdb` database (outside the scanned tree) matching [`HELLO`].
    pub fn hdb(&self) -> PathBuf {
        let md5 = md5_hex(HELLO);
        self.write(
            "db/test.hdb",
            format!("{md5}:{}:{HELLO_SIG}\n", HELLO.len()).as_bytes(),
        )
    }

    /// Runs aether in this directory with no standard input.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, None)
    }

    /// Runs aether with `stdin` as standard input; fails the test if it takes
    /// more than 60 s (a blocked FIFO would hang forever).
    pub fn run_with(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        // Keep the compiled-database cache inside the test's directory.
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.path())
            .env("AETHER_CACHE_DIR", self.join(".cache"));
        run_cmd(&mut cmd, stdin)
    }
}

pub fn run_cmd(cmd: &mut Command, stdin: Option<&[u8]>) -> Run {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn aether");
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        // aether may exit without reading (a database error): not our failure.
        let _ = pipe.write_all(data);
    }
    // Read both pipes on threads so that a full pipe cannot deadlock us.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("aether did not finish within 60 s: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = Output {
        status,
        stdout: t_out.join().expect("stdout"),
        stderr: t_err.join().expect("stderr"),
    };
    Run { output }
}

pub struct Run {
    pub output: Output,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output
            .status
            .code()
            .expect("exit code (not killed by a signal)")
    }
    pub fn stdout(&self) -> String {
        String::from_utf8(self.output.stdout.clone()).expect("stdout is UTF-8")
    }
    pub fn stderr(&self) -> String {
        String::from_utf8(self.output.stderr.clone()).expect("stderr is UTF-8")
    }
    /// Standard output without the summary block.
    pub fn lines(&self) -> Vec<String> {
        let out = self.stdout();
        let body = match out.find("\n----------- SCAN SUMMARY -----------\n") {
            Some(i) => &out[..i],
            None => &out[..],
        };
        body.lines().map(str::to_string).collect()
    }
    /// The summary block as (key, value) pairs, in order.
    pub fn summary(&self) -> Vec<(String, String)> {
        let out = self.stdout();
        let start = out
            .find("----------- SCAN SUMMARY -----------\n")
            .expect("summary block");
        out[start..]
            .lines()
            .skip(1)
            .map(|l| {
                let (k, v) = l
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("summary line {l:?}"));
                (k.to_string(), v.trim_start().to_string())
            })
            .collect()
    }
    pub fn summary_value(&self, key: &str) -> Option<String> {
        self.summary()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
    pub fn debug(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.output.status,
            self.stdout(),
            self.stderr()
        )
    }
}

/// A detection line, whatever suffix the engine gives unofficial signature
/// names (clamscan appends `.UNOFFICIAL`).
pub fn is_found(line: &str, path: &str, sig: &str) -> bool {
    line.strip_prefix(&format!("{path}: "))
        .and_then(|rest| rest.strip_suffix(" FOUND"))
        .is_some_and(|name| name == sig || name == format!("{sig}.UNOFFICIAL"))
}

/// MD5 as lower-case hex, through `md5sum` (coreutils), to keep the test
/// independent of the engine's own hashing.
pub fn md5_hex(data: &[u8]) -> String {
    let mut child = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("md5sum (coreutils) is needed by the tests");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write");
    let out = child.wait_with_output().expect("md5sum");
    String::from_utf8(out.stdout).expect("utf8")[..32].to_string()
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
