//! Scanning inside containers: every member of an archive or compressed
//! stream is extracted, bounded, and scanned with the whole engine (its own
//! bytes, then its members), depth first.
//!
//! Limits count across the whole tree of one top-level file, as clamscan
//! counts them (measured against clamscan 1.4.6):
//! - a member `d` levels down is scanned only while `d < MaxRecursion`; a
//!   compressed stream's content is a level of its own;
//! - the top-level file counts as one of `MaxFiles`; once that many files were
//!   scanned, the rest of the tree is not;
//! - `MaxScanSize` counts the bytes of extracted members; the first member
//!   that does not fit stops the tree;
//! - a member larger than `MaxFileSize` is skipped; one whose size was not
//!   declared (a compressed stream) and decodes past it is reported as
//!   exceeding it.
//!
//! Members are decompressed into memory up to [`IN_MEMORY`] bytes, past that
//! into an unnamed temporary file (`O_TMPFILE`, gone when closed), never
//! anywhere else.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::time::Instant;

use aether_formats::{Flow, Member, Problem, Visitor};

use crate::limits::{LimitExceeded, Limits};
use crate::scanner::{Detection, Input, ScanOutcome, Scanner};

/// Members up to this size are extracted into memory.
pub const IN_MEMORY: u64 = 16 << 20;

/// Heuristic alerts that are off by default, as in clamscan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Alerts {
    /// Report encrypted archive members as `Heuristics.Encrypted.*`
    /// (`--alert-encrypted`).
    pub encrypted: bool,
}

/// A problem met inside a container, with where it was met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerNote {
    /// The members leading to the container that has the problem.
    pub chain: Vec<String>,
    pub problem: Problem,
}

/// State shared by the whole tree of one top-level file.
struct Tree<'l> {
    limits: &'l Limits,
    started: Instant,
    /// Files scanned, the top-level one included.
    files: u64,
    /// Bytes of extracted members scanned.
    scanned: u64,
    /// A limit that ends the whole tree was met, or the scan is done.
    stopped: bool,
    chain: Vec<String>,
    outcome: &'l mut ScanOutcome,
}

impl Tree<'_> {
    fn limit(&mut self, l: LimitExceeded) {
        self.outcome.limit.get_or_insert(l);
    }

    fn note(&mut self, problem: Problem) {
        self.outcome.notes.push(ContainerNote {
            chain: self.chain.clone(),
            problem,
        });
    }

    fn detect(&mut self, name: &str) {
        self.outcome.detections.push(Detection {
            name: name.to_string(),
            chain: self.chain.clone(),
        });
        if !self.limits.all_match {
            self.stopped = true;
        }
    }
}

/// Scans the members of `input` (already scanned raw into `outcome`) and adds
/// what they hold to `outcome`.
pub(crate) fn scan_members(
    scanner: &mut Scanner<'_>,
    input: &Input<'_>,
    outcome: &mut ScanOutcome,
    limits: &Limits,
    started: Instant,
) {
    let ty = outcome.file_type;
    let mut tree = Tree {
        limits,
        started,
        files: 1,
        scanned: 0,
        stopped: false,
        chain: Vec::new(),
        outcome,
    };
    walk(scanner, input.as_source(), ty, 1, &mut tree);
}

/// Walks one container whose members are `depth` levels down.
fn walk(
    scanner: &mut Scanner<'_>,
    src: &dyn aether_formats::ReadAt,
    ty: aether_formats::FileType,
    depth: u32,
    tree: &mut Tree<'_>,
) {
    if depth >= tree.limits.max_recursion {
        tree.limit(LimitExceeded::MaxRecursion);
        return;
    }
    let mut v = MemberVisitor {
        scanner,
        tree,
        depth,
        container: ty,
    };
    if let Err(e) = aether_formats::walk(ty, src, &mut v) {
        v.tree.note(Problem::Broken {
            member: None,
            detail: e.to_string(),
        });
    }
}

struct MemberVisitor<'s, 'e, 't, 'l> {
    scanner: &'s mut Scanner<'e>,
    tree: &'t mut Tree<'l>,
    depth: u32,
    container: aether_formats::FileType,
}

impl Visitor for MemberVisitor<'_, '_, '_, '_> {
    fn problem(&mut self, problem: Problem) -> Flow {
        match &problem {
            Problem::Encrypted { .. } if self.scanner.alerts.encrypted => {
                let name = match self.container {
                    aether_formats::FileType::Rar => "Heuristics.Encrypted.RAR",
                    aether_formats::FileType::SevenZip => "Heuristics.Encrypted.7Zip",
                    _ => "Heuristics.Encrypted.Zip",
                };
                self.tree.detect(name);
            }
            Problem::Overlapping { .. } => self.tree.detect("Heuristics.Zip.OverlappingFiles"),
            _ => {}
        }
        self.tree.note(problem);
        if self.tree.stopped {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    fn member(&mut self, m: &mut Member<'_>) -> Flow {
        let tree = &mut *self.tree;
        let limits = tree.limits;
        if tree.stopped {
            return Flow::Stop;
        }
        if let Some(max) = limits.max_scantime
            && tree.started.elapsed() > max
        {
            tree.limit(LimitExceeded::MaxScanTime);
            tree.stopped = true;
            return Flow::Stop;
        }
        if limits.max_files != 0 && tree.files >= limits.max_files {
            tree.limit(LimitExceeded::MaxFiles);
            tree.stopped = true;
            return Flow::Stop;
        }
        let room = if limits.max_scansize == 0 {
            u64::MAX
        } else {
            limits.max_scansize.saturating_sub(tree.scanned)
        };
        let max_file = if limits.max_filesize == 0 {
            u64::MAX
        } else {
            limits.max_filesize
        };
        if let Some(declared) = m.declared_size
            && !m.stream
        {
            if declared > max_file {
                return Flow::Continue; // skipped, as clamscan skips it
            }
            if declared > room {
                tree.limit(LimitExceeded::MaxScanSize);
                tree.stopped = true;
                return Flow::Stop;
            }
        }
        tree.files += 1;

        let cap = room.min(max_file);
        let mut sink = Spill::new(cap);
        let extracted = m.extract(&mut sink);
        if sink.over {
            if sink.len > max_file.min(room) && max_file < room {
                tree.limit(LimitExceeded::MaxFileSize);
                return Flow::Continue;
            }
            tree.limit(LimitExceeded::MaxScanSize);
            tree.stopped = true;
            return Flow::Stop;
        }
        if let Err(e) = extracted {
            tree.note(Problem::Broken {
                member: Some(m.name.clone()),
                detail: e.to_string(),
            });
        }
        let Ok(data) = sink.finish() else {
            tree.note(Problem::Broken {
                member: Some(m.name.clone()),
                detail: "could not use a temporary file".into(),
            });
            return Flow::Continue;
        };
        tree.scanned += data.len();
        tree.outcome.members_scanned += 1;
        if data.len() == 0 {
            return Flow::Continue;
        }
        let named = !m.stream && !m.name.is_empty();
        if named {
            tree.chain.push(m.name.clone());
        }
        self.scan_member(&data);
        if named {
            tree_pop(self.tree);
        }
        if self.tree.stopped {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}

fn tree_pop(tree: &mut Tree<'_>) {
    tree.chain.pop();
}

impl MemberVisitor<'_, '_, '_, '_> {
    fn scan_member(&mut self, data: &Extracted) {
        let input = match data {
            Extracted::Memory(v) => Input::Bytes(v),
            Extracted::File(f, _) => Input::File(f),
        };
        let limits = self.tree.limits;
        let raw = self
            .scanner
            .scan_raw(&input, data.len(), limits, self.tree.started);
        let raw = match raw {
            Ok(r) => r,
            Err(e) => {
                self.tree.note(Problem::Broken {
                    member: self.tree.chain.last().cloned(),
                    detail: e.to_string(),
                });
                return;
            }
        };
        self.tree.outcome.bytes_scanned += raw.bytes_scanned;
        for d in raw.detections {
            self.tree.detect(&d.name);
        }
        if let Some(l) = raw.limit {
            self.tree.limit(l);
            if l == LimitExceeded::MaxScanTime {
                self.tree.stopped = true;
            }
        }
        if self.tree.stopped || !aether_formats::is_container(raw.file_type) {
            return;
        }
        walk(
            self.scanner,
            input.as_source(),
            raw.file_type,
            self.depth + 1,
            self.tree,
        );
    }
}

/// An extracted member.
enum Extracted {
    Memory(Vec<u8>),
    File(File, u64),
}

impl Extracted {
    fn len(&self) -> u64 {
        match self {
            Extracted::Memory(v) => v.len() as u64,
            Extracted::File(_, n) => *n,
        }
    }
}

/// A writer that keeps up to [`IN_MEMORY`] bytes in memory and the rest in an
/// unnamed temporary file, and refuses to grow past `cap`.
struct Spill {
    mem: Vec<u8>,
    file: Option<File>,
    len: u64,
    cap: u64,
    /// A write was refused because it would pass `cap`.
    over: bool,
}

impl Spill {
    fn new(cap: u64) -> Spill {
        Spill {
            mem: Vec::new(),
            file: None,
            len: 0,
            cap,
            over: false,
        }
    }

    fn finish(self) -> io::Result<Extracted> {
        match self.file {
            None => Ok(Extracted::Memory(self.mem)),
            Some(mut f) => {
                f.flush()?;
                f.rewind()?;
                Ok(Extracted::File(f, self.len))
            }
        }
    }
}

impl Write for Spill {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.len.saturating_add(buf.len() as u64) > self.cap {
            self.over = true;
            self.len = self.len.saturating_add(buf.len() as u64);
            return Err(io::Error::other("member exceeds the scan limits"));
        }
        if self.file.is_none() && self.len + buf.len() as u64 > IN_MEMORY {
            let mut f = tempfile::tempfile()?;
            f.write_all(&self.mem)?;
            self.mem = Vec::new();
            self.file = Some(f);
        }
        match &mut self.file {
            Some(f) => f.write_all(buf)?,
            None => self.mem.extend_from_slice(buf),
        }
        self.len += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
