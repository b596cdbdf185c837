//! Shared by the tests of the walkers (RTF, TNEF, ARJ, SZDD, BinHex, zip
//! implode, CHM, SIS, AutoIt, InstallShield, mail, PDF, NSIS and the
//! readers of `readers.rs`): a visitor that keeps every member and problem,
//! and the Debian test files.

#![allow(dead_code)]

use aether_formats::{Content, FileType, Flow, Member, Problem, Visitor, detect, walk};

/// Every member (name, bytes) and problem of one walk.
#[derive(Default)]
pub struct Walked {
    pub members: Vec<(String, Vec<u8>)>,
    /// What each member is (a file, or bytes scanned raw), in the order of
    /// `members`.
    pub contents: Vec<Content>,
    pub problems: Vec<Problem>,
    /// Members whose extraction failed, with the error.
    pub errors: Vec<String>,
}

/// Members are cut at this size, as the engine bounds them: a damaged
/// header may declare gigabytes.
pub const CAP: usize = 16 << 20;

struct Capped<'a>(&'a mut Vec<u8>);

impl std::io::Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > CAP {
            return Err(std::io::Error::other("member larger than the test's cap"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Visitor for Walked {
    fn member(&mut self, m: &mut Member<'_>) -> Flow {
        let mut out = Vec::new();
        if let Err(e) = m.extract(&mut Capped(&mut out)) {
            self.errors.push(format!("{}: {e}", m.name));
        }
        self.members.push((m.name.clone(), out));
        self.contents.push(m.content);
        Flow::Continue
    }
    fn problem(&mut self, p: Problem) -> Flow {
        self.problems.push(p);
        Flow::Continue
    }
}

impl Walked {
    /// The walk, once every member has extracted whole (none failed, none
    /// over [`CAP`]).
    pub fn extracted(self) -> Self {
        assert!(self.errors.is_empty(), "{:?}", self.errors);
        self
    }
}

/// Walks `data` as `ty`, which detection must agree with.
pub fn walked(ty: FileType, data: &[u8]) -> Walked {
    assert_eq!(detect(data), ty, "detected type");
    let mut w = Walked::default();
    walk(ty, &data, &mut w).expect("walk");
    w
}

/// Walks `data` as `ty`, which must succeed, without checking its type.
pub fn walked_ok(ty: FileType, data: &[u8]) -> Walked {
    let mut w = Walked::default();
    walk(ty, &data, &mut w).expect("walk");
    w
}

/// Walks `data` as `ty` without checking its type (cut or damaged copies).
pub fn walked_as(ty: FileType, data: &[u8]) -> Walked {
    let mut w = Walked::default();
    let _ = walk(ty, &data, &mut w);
    w
}

/// A file of Debian's clamav-testfiles.
pub fn testfile(name: &str) -> Vec<u8> {
    std::fs::read(format!("/usr/share/clamav-testfiles/{name}"))
        .expect("Debian's clamav-testfiles package")
}

/// clam.exe, the test file the others carry.
pub fn clam_exe() -> Vec<u8> {
    testfile("clam.exe")
}

/// Cut copies (every `step` bytes) and copies with one bit flipped (every
/// `step` bytes), each walked to its end without a panic; returns how many.
pub fn damaged(ty: FileType, data: &[u8], step: usize) -> usize {
    let mut n = 0;
    for cut in (0..data.len()).step_by(step.max(1)) {
        walked_as(ty, &data[..cut]);
        let mut flipped = data.to_vec();
        flipped[cut] ^= 1 << (cut % 8);
        walked_as(ty, &flipped);
        n += 2;
    }
    n
}
