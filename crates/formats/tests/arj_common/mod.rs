//! ARJ archives written by Debian's `arj` (methods 0-4, garbled members),
//! shared by aether-formats' ARJ tests and the engine's clamscan
//! differential.

#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A scratch directory removed when dropped (no tempfile dependency here).
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("aether-arj-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).expect("scratch dir");
        Scratch(p)
    }
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An archive of `files` made by `arj a -m<method>`, with `password`
/// garbling its members when given.
pub fn arj(method: u8, files: &[(&str, &[u8])], password: Option<&str>) -> Vec<u8> {
    let dir = Scratch::new();
    for (name, data) in files {
        std::fs::write(dir.path().join(name), data).expect("write member");
    }
    let mut cmd = Command::new("arj");
    cmd.current_dir(dir.path())
        .arg("a")
        .arg(format!("-m{method}"))
        .arg("-y");
    if let Some(p) = password {
        cmd.arg(format!("-g{p}"));
    }
    cmd.arg("out.arj").args(files.iter().map(|(n, _)| n));
    let out = cmd.output().expect("Debian's arj package");
    assert!(
        out.status.success(),
        "arj: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::read(dir.path().join("out.arj")).expect("archive")
}

/// Bytes that compress a little: text with noise in it.
pub fn mixed(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(3) {
            out.push(x as u8);
        } else {
            out.extend_from_slice(b"words and words ");
        }
    }
    out.truncate(n);
    out
}
