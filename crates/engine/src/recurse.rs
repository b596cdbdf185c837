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
//!
//! The members of a large archive (the first one met on the way down, so the
//! tar inside a `.tar.gz` too) are scanned on several threads, each with its
//! own [`Scanner`]: the calling thread walks the archive and admits members
//! (so limits are applied in archive order), the workers decode zip members
//! and scan every member and everything below it. Results are merged in
//! archive order.

use std::io::{self, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use aether_formats::{Content, FileType, Flow, Member, Packed, Problem, ReadAt, Visitor};

use crate::Engine;
use crate::limits::{LimitExceeded, Limits};
use crate::scanner::{Detection, Input, ScanOutcome, Scanner};
use crate::spill::{Spill, Spilled};

/// Members up to this size are extracted into memory.
pub const IN_MEMORY: u64 = 16 << 20;
/// Archives from this size on have their members scanned on several
/// threads (one level of archives only: the workers scan what is below).
pub const PARALLEL_MIN: u64 = 8 << 20;

/// Heuristic alerts that are off by default, as in clamscan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Alerts {
    /// Report encrypted archive members as `Heuristics.Encrypted.*`
    /// (`--alert-encrypted`, `--alert-encrypted-archive`).
    pub encrypted: bool,
    /// Report documents that cannot be decrypted (PDF) as
    /// `Heuristics.Encrypted.PDF` (`--alert-encrypted`,
    /// `--alert-encrypted-doc`).
    pub encrypted_doc: bool,
}

/// A problem met inside a container, with where it was met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerNote {
    /// The members leading to the container that has the problem.
    pub chain: Vec<String>,
    pub problem: Problem,
}

/// State shared by every thread scanning the tree of one top-level file.
struct Shared<'l> {
    limits: &'l Limits,
    started: Instant,
    /// Files scanned, the top-level one included.
    files: AtomicU64,
    /// Bytes of extracted members.
    scanned: AtomicU64,
    /// A limit that ends the whole tree was met, or the scan is done: no
    /// more members are admitted.
    stopped: AtomicBool,
    /// The scan is done (a detection without `--allmatch`, or out of time):
    /// members already admitted are dropped too.
    finished: AtomicBool,
    limit: Mutex<Option<LimitExceeded>>,
}

impl Shared<'_> {
    fn limit(&self, l: LimitExceeded) {
        self.limit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(l);
    }
    fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }
    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }
    fn finish(&self) {
        self.finished.store(true, Ordering::Relaxed);
        self.stop();
    }
    fn finished(&self) -> bool {
        self.finished.load(Ordering::Relaxed)
    }
}

/// What one thread found, in order.
#[derive(Default)]
struct Found {
    detections: Vec<Detection>,
    notes: Vec<ContainerNote>,
    members: u64,
    bytes: u64,
    regex_limits: u64,
}

/// One thread's view of the tree: where it is, and what it found.
struct Tree<'a, 'l> {
    shared: &'a Shared<'l>,
    chain: Vec<String>,
    /// The types of the containers above the current member, outermost
    /// first (what `Container:` and `Intermediates:` look at).
    types: Vec<FileType>,
    found: Found,
    /// This thread may hand members to workers (it is not a worker, and no
    /// walk above it already does).
    parallel: bool,
}

impl Tree<'_, '_> {
    fn note(&mut self, problem: Problem) {
        self.found.notes.push(ContainerNote {
            chain: self.chain.clone(),
            problem,
        });
    }

    fn detect(&mut self, name: &str) {
        self.found.detections.push(Detection {
            name: name.to_string(),
            chain: self.chain.clone(),
        });
        if !self.shared.limits.all_match {
            self.shared.finish();
        }
    }
}

/// A member handed to a worker thread.
struct Job {
    index: usize,
    chain: Vec<String>,
    types: Vec<FileType>,
    data: JobData,
}

enum JobData {
    /// Extracted by the walking thread.
    Extracted(Spilled),
    /// A zip member the worker decodes itself, so that decompression runs
    /// in parallel too.
    Packed {
        packed: Packed,
        name: String,
        declared: Option<u64>,
    },
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
    let shared = Shared {
        limits,
        started,
        files: AtomicU64::new(1),
        scanned: AtomicU64::new(0),
        stopped: AtomicBool::new(false),
        finished: AtomicBool::new(false),
        limit: Mutex::new(None),
    };
    let mut tree = Tree {
        shared: &shared,
        chain: Vec::new(),
        types: Vec::new(),
        found: Found::default(),
        parallel: scanner.member_threads > 1,
    };
    walk(scanner, input.as_source(), ty, 1, &mut tree);
    let f = tree.found;
    outcome.detections.extend(f.detections);
    outcome.notes.extend(f.notes);
    outcome.members_scanned += f.members;
    outcome.bytes_scanned += f.bytes;
    outcome.regex_limits += f.regex_limits;
    if outcome.limit.is_none() {
        outcome.limit = *shared.limit.lock().unwrap_or_else(PoisonError::into_inner);
    }
}

/// Walks a large container whose members are `depth` levels down on several
/// threads: this one walks and extracts, workers scan; their findings are
/// added to `tree` in archive order.
fn walk_parallel(
    scanner: &mut Scanner<'_>,
    src: &(dyn ReadAt + Sync),
    ty: FileType,
    depth: u32,
    tree: &mut Tree<'_, '_>,
) {
    let threads = scanner.member_threads;
    let (tx, rx) = sync_channel::<Job>(threads);
    let rx = Mutex::new(rx);
    let engine = scanner.engine;
    let alerts = scanner.alerts;
    let shared = tree.shared;
    tree.parallel = false;
    let mut found = Vec::new();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| work(engine, alerts, shared, &rx, src, depth)))
            .collect();
        let mut v = MemberVisitor {
            scanner,
            tree: &mut *tree,
            depth,
            container: ty,
            jobs: Some(&tx),
            index: 0,
            at_limit: false,
        };
        if let Err(e) = aether_formats::walk(ty, src, &mut v) {
            v.tree.note(Problem::Broken {
                member: None,
                detail: e.to_string(),
            });
        }
        drop(tx);
        for w in workers {
            // A worker catches panics per member, so join fails only if the
            // thread itself could not run to its end.
            if let Ok(r) = w.join() {
                found.extend(r);
            }
        }
    });
    tree.parallel = true;
    found.sort_by_key(|(i, _)| *i);
    for (_, f) in found {
        tree.found.detections.extend(f.detections);
        tree.found.notes.extend(f.notes);
        tree.found.members += f.members;
        tree.found.bytes += f.bytes;
        tree.found.regex_limits += f.regex_limits;
    }
}

/// A worker: scans the members it receives until the walk ends.
fn work(
    engine: &Engine,
    alerts: crate::Alerts,
    shared: &Shared<'_>,
    rx: &Mutex<Receiver<Job>>,
    src: &(dyn ReadAt + Sync),
    depth: u32,
) -> Vec<(usize, Found)> {
    let mut scanner = Scanner::new(engine);
    scanner.alerts = alerts;
    scanner.member_threads = 1;
    let mut out = Vec::new();
    loop {
        let job = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else {
            return out;
        };
        if shared.finished() {
            continue; // drain, so that the walking thread never blocks
        }
        let mut tree = Tree {
            shared,
            chain: job.chain,
            types: job.types,
            found: Found::default(),
            parallel: false,
        };
        let scanned = catch_unwind(AssertUnwindSafe(|| {
            let data = match job.data {
                JobData::Extracted(d) => d,
                JobData::Packed {
                    packed,
                    name,
                    declared,
                } => {
                    // Problems of extraction belong to the container, as when
                    // the walking thread extracts.
                    let own = if name.is_empty() {
                        None
                    } else {
                        tree.chain.pop()
                    };
                    let admitted = extract(&mut tree, &name, |sink| packed.decode(src, sink));
                    if let (Admit::Data(d), Some(declared)) = (&admitted, declared)
                        && d.len() != declared
                    {
                        tree.note(Problem::SizeMismatch {
                            member: name,
                            declared,
                            actual: d.len(),
                        });
                    }
                    tree.chain.extend(own);
                    match admitted {
                        Admit::Data(d) => d,
                        Admit::Skip | Admit::Stop => return,
                    }
                }
            };
            scan_member(&mut scanner, &mut tree, &data, depth);
        }));
        if scanned.is_err() {
            tree.note(Problem::Broken {
                member: tree.chain.last().cloned(),
                detail: "internal error while scanning this member".into(),
            });
            scanner = Scanner::new(engine);
            scanner.alerts = alerts;
            scanner.member_threads = 1;
        }
        out.push((job.index, tree.found));
    }
}

/// Walks one container whose members are `depth` levels down: on several
/// threads when it is large and this thread may, else here.
fn walk(
    scanner: &mut Scanner<'_>,
    src: &(dyn ReadAt + Sync),
    ty: FileType,
    depth: u32,
    tree: &mut Tree<'_, '_>,
) {
    // Members this deep are not scanned. The limit is met, as in ClamAV,
    // only when there is a member to scan: most files of most types (text
    // searched for `data:` URIs, files searched for embedded archives, PE
    // files that are not packed) have none.
    let at_limit = depth >= tree.shared.limits.max_recursion;
    // A compressed stream has one member: the split is worth it one level down.
    let single = matches!(
        ty,
        FileType::Gz | FileType::Bz | FileType::Xz | FileType::Zstd
    );
    tree.types.push(ty);
    if ty == FileType::MachOUniversal {
        if at_limit {
            tree.shared.limit(LimitExceeded::MaxRecursion);
        } else {
            walk_universal(scanner, src, depth, tree);
        }
        tree.types.pop();
        return;
    }
    if !aether_formats::is_container(ty) {
        // (packed executables) Not a container, only packed.
    } else if !at_limit && tree.parallel && !single && src.size() >= PARALLEL_MIN {
        walk_parallel(scanner, src, ty, depth, tree);
    } else {
        let mut v = MemberVisitor {
            scanner: &mut *scanner,
            tree: &mut *tree,
            depth,
            container: ty,
            jobs: None,
            index: 0,
            at_limit,
        };
        if let Err(e) = aether_formats::walk(ty, src, &mut v) {
            v.tree.note(Problem::Broken {
                member: None,
                detail: e.to_string(),
            });
        }
    }
    if crate::unpacked::has_unpacked(ty) {
        walk_unpacked(scanner, src, depth, tree, at_limit);
    }
    tree.types.pop();
}

/// Whether files of this type have members to scan: containers, and
/// universal Mach-O binaries, whose architectures ClamAV scans as files.
pub(crate) fn has_members(ty: FileType) -> bool {
    aether_formats::is_container(ty)
        || ty == FileType::MachOUniversal
        || crate::unpacked::has_unpacked(ty)
}

/// (packed executables) Scans the image ClamAV's unpackers rebuild from a
/// packed PE as a member without a name; a packer recognised but broken is
/// a note.
fn walk_unpacked(
    scanner: &mut Scanner<'_>,
    src: &(dyn ReadAt + Sync),
    depth: u32,
    tree: &mut Tree<'_, '_>,
    at_limit: bool,
) {
    use crate::unpacked::NoImage;
    if tree.shared.stopped() {
        return;
    }
    let limits = tree.shared.limits;
    let (room, max_file) = room(tree.shared);
    let bound = |v: u64| if v == u64::MAX { 0 } else { v };
    let unpacked = match crate::unpacked::unpack(src, bound(max_file), bound(room.min(max_file))) {
        Ok(u) => u,
        Err(NoImage::NotPacked) => return,
        Err(NoImage::Limit) => {
            tree.shared.limit(if max_file < room {
                LimitExceeded::MaxFileSize
            } else {
                LimitExceeded::MaxScanSize
            });
            return;
        }
        Err(NoImage::Broken(detail)) => {
            tree.note(Problem::Broken {
                member: None,
                detail,
            });
            return;
        }
    };
    if at_limit {
        tree.shared.limit(LimitExceeded::MaxRecursion);
        return;
    }
    let files = tree.shared.files.fetch_add(1, Ordering::Relaxed);
    if limits.max_files != 0 && files >= limits.max_files {
        tree.shared.limit(LimitExceeded::MaxFiles);
        tree.shared.stop();
        return;
    }
    let image = unpacked.image;
    if let Admit::Data(data) = extract(tree, "", |sink| {
        sink.write_all(&image).map(|()| image.len() as u64)
    }) {
        scan_member(scanner, tree, &data, depth);
    }
}

/// Scans each architecture of a universal Mach-O binary as a member without
/// a name, as ClamAV's `cli_scanmacho_unibin` scans them.
fn walk_universal(
    scanner: &mut Scanner<'_>,
    src: &(dyn ReadAt + Sync),
    depth: u32,
    tree: &mut Tree<'_, '_>,
) {
    let limits = tree.shared.limits;
    for (offset, len) in crate::exe_layout::universal_arches(src) {
        if tree.shared.stopped() {
            return;
        }
        let files = tree.shared.files.fetch_add(1, Ordering::Relaxed);
        if limits.max_files != 0 && files >= limits.max_files {
            tree.shared.limit(LimitExceeded::MaxFiles);
            tree.shared.stop();
            return;
        }
        let admitted = extract(tree, "", |sink| {
            crate::exe_layout::copy_range(src, offset, len, sink)
        });
        match admitted {
            Admit::Data(data) => scan_member(scanner, tree, &data, depth),
            Admit::Skip => {}
            Admit::Stop => return,
        }
    }
}

struct MemberVisitor<'s, 'e, 't, 'a, 'l, 'j> {
    scanner: &'s mut Scanner<'e>,
    tree: &'t mut Tree<'a, 'l>,
    depth: u32,
    container: FileType,
    jobs: Option<&'j SyncSender<Job>>,
    index: usize,
    /// The members are past MaxRecursion: the first one meets the limit
    /// and ends the walk.
    at_limit: bool,
}

impl Visitor for MemberVisitor<'_, '_, '_, '_, '_, '_> {
    fn problem(&mut self, problem: Problem) -> Flow {
        match &problem {
            Problem::Encrypted { .. }
                if self.container == FileType::Pdf && self.scanner.alerts.encrypted_doc =>
            {
                self.tree.detect("Heuristics.Encrypted.PDF");
            }
            Problem::Encrypted { .. }
                if self.container != FileType::Pdf && self.scanner.alerts.encrypted =>
            {
                let name = match self.container {
                    FileType::Rar => "Heuristics.Encrypted.RAR",
                    FileType::SevenZip => "Heuristics.Encrypted.7Zip",
                    _ => "Heuristics.Encrypted.Zip",
                };
                self.tree.detect(name);
            }
            // Raised by default, as clamscan does (a PDF's obfuscated names).
            Problem::Heuristic { name } => self.tree.detect(name),
            Problem::Overlapping { .. } => self.tree.detect("Heuristics.Zip.OverlappingFiles"),
            _ => {}
        }
        self.tree.note(problem);
        if self.tree.shared.stopped() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    fn member(&mut self, m: &mut Member<'_>) -> Flow {
        if self.at_limit {
            self.tree.shared.limit(LimitExceeded::MaxRecursion);
            return Flow::Stop;
        }
        // (OLE2 macros) What ClamAV makes of a document is scanned here.
        if m.content != Content::File {
            return self.derived(m);
        }
        // A zip member on the way to a worker is checked here and decoded there.
        let data = match (self.jobs, m.packed()) {
            (Some(_), Some(packed)) => match precheck(self.tree, m) {
                Some(Admit::Skip) => return Flow::Continue,
                Some(_) => return Flow::Stop,
                None => JobData::Packed {
                    packed,
                    name: m.name.clone(),
                    declared: m.declared_size,
                },
            },
            _ => match admit(self.tree, m) {
                Admit::Skip => return Flow::Continue,
                Admit::Stop => return Flow::Stop,
                Admit::Data(d) => JobData::Extracted(d),
            },
        };
        let named = !m.stream && !m.name.is_empty();
        if named {
            self.tree.chain.push(m.name.clone());
        }
        match self.jobs {
            Some(jobs) => {
                let job = Job {
                    index: self.index,
                    chain: self.tree.chain.clone(),
                    types: self.tree.types.clone(),
                    data,
                };
                self.index += 1;
                if jobs.send(job).is_err() {
                    self.tree.shared.stop();
                }
            }
            None => {
                if let JobData::Extracted(data) = data {
                    scan_member(self.scanner, self.tree, &data, self.depth);
                }
            }
        }
        if named {
            self.tree.chain.pop();
        }
        if self.tree.shared.stopped() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}

// (OLE2 macros) Members that ClamAV derives from a container and types
// itself, instead of typing them from their bytes and opening them.
impl MemberVisitor<'_, '_, '_, '_, '_, '_> {
    fn derived(&mut self, m: &mut Member<'_>) -> Flow {
        let data = match admit(self.tree, m) {
            Admit::Skip => return Flow::Continue,
            Admit::Stop => return Flow::Stop,
            Admit::Data(d) => d,
        };
        // A VBA project's text is matched as CL_TYPE_SCRIPT: generic body,
        // hash and logical signatures only; a module's source as a buffer of
        // CL_TYPE_MSOLE2: generic and OLE2 body and logical signatures.
        let bit = |t: aether_sigs::TargetType| 1u32 << t as u32;
        let (types, hashed) = match m.content {
            Content::MacroSource => (
                bit(aether_sigs::TargetType::Any) | bit(aether_sigs::TargetType::Ole2),
                false,
            ),
            _ => (bit(aether_sigs::TargetType::Any), true),
        };
        let bytes = match data {
            Spilled::Memory(v) => Ok(v),
            Spilled::File(mut f, _) => {
                let mut v = Vec::new();
                io::Read::read_to_end(&mut f, &mut v).map(|_| v)
            }
        };
        self.tree.chain.push(m.name.clone());
        let all_match = self.tree.shared.limits.all_match;
        let scanned = bytes
            .map_err(crate::scanner::ScanError::from)
            .and_then(|b| {
                self.scanner
                    .scan_typed(&b, types, hashed, all_match, &self.tree.types)
            });
        match scanned {
            Ok((names, regex_limits)) => {
                self.tree.found.regex_limits += regex_limits;
                for n in names {
                    self.tree.detect(&n);
                }
            }
            Err(e) => self.tree.note(Problem::Broken {
                member: Some(m.name.clone()),
                detail: e.to_string(),
            }),
        }
        self.tree.chain.pop();
        if self.tree.shared.stopped() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}

enum Admit {
    Skip,
    Stop,
    Data(Spilled),
}

/// Applies the tree's limits to one member and extracts it.
fn admit(tree: &mut Tree<'_, '_>, m: &mut Member<'_>) -> Admit {
    if let Some(a) = precheck(tree, m) {
        return a;
    }
    let name = m.name.clone();
    extract(tree, &name, |sink| m.extract(sink))
}

/// The output bounds for the next member: what is left of `MaxScanSize`, and
/// `MaxFileSize`.
fn room(shared: &Shared<'_>) -> (u64, u64) {
    let limits = shared.limits;
    let room = if limits.max_scansize == 0 {
        u64::MAX
    } else {
        limits
            .max_scansize
            .saturating_sub(shared.scanned.load(Ordering::Relaxed))
    };
    let max_file = if limits.max_filesize == 0 {
        u64::MAX
    } else {
        limits.max_filesize
    };
    (room, max_file)
}

/// The limits that can be judged before extraction, counting the member as a
/// file; `None` when it may be extracted.
fn precheck(tree: &mut Tree<'_, '_>, m: &Member<'_>) -> Option<Admit> {
    let shared = tree.shared;
    let limits = shared.limits;
    if shared.stopped() {
        return Some(Admit::Stop);
    }
    if let Some(max) = limits.max_scantime
        && shared.started.elapsed() > max
    {
        shared.limit(LimitExceeded::MaxScanTime);
        shared.finish();
        return Some(Admit::Stop);
    }
    let (room, max_file) = room(shared);
    if let Some(declared) = m.declared_size
        && !m.stream
    {
        if declared > max_file {
            return Some(Admit::Skip); // skipped, as clamscan skips it
        }
        if declared > room {
            shared.limit(LimitExceeded::MaxScanSize);
            shared.stop();
            return Some(Admit::Stop);
        }
    }
    let files = shared.files.fetch_add(1, Ordering::Relaxed);
    if limits.max_files != 0 && files >= limits.max_files {
        shared.limit(LimitExceeded::MaxFiles);
        shared.stop();
        return Some(Admit::Stop);
    }
    None
}

/// Extracts one member with `decode` into memory or a temporary file,
/// bounded by the tree's limits.
fn extract(
    tree: &mut Tree<'_, '_>,
    name: &str,
    decode: impl FnOnce(&mut dyn Write) -> io::Result<u64>,
) -> Admit {
    let shared = tree.shared;
    let (room, max_file) = room(shared);
    let mut sink = Spill::new(IN_MEMORY, room.min(max_file));
    let extracted = decode(&mut sink);
    if sink.over {
        if max_file < room {
            shared.limit(LimitExceeded::MaxFileSize);
            return Admit::Skip;
        }
        shared.limit(LimitExceeded::MaxScanSize);
        shared.stop();
        return Admit::Stop;
    }
    if let Err(e) = extracted {
        tree.note(Problem::Broken {
            member: Some(name.to_string()),
            detail: e.to_string(),
        });
    }
    let Ok(data) = sink.finish() else {
        tree.note(Problem::Broken {
            member: Some(name.to_string()),
            detail: "could not use a temporary file".into(),
        });
        return Admit::Skip;
    };
    shared.scanned.fetch_add(data.len(), Ordering::Relaxed);
    tree.found.members += 1;
    if data.is_empty() {
        return Admit::Skip;
    }
    Admit::Data(data)
}

/// Scans one extracted member `depth` levels down: its bytes, then its own
/// members.
fn scan_member(scanner: &mut Scanner<'_>, tree: &mut Tree<'_, '_>, data: &Spilled, depth: u32) {
    let input = match data {
        Spilled::Memory(v) => Input::Bytes(v),
        Spilled::File(f, _) => Input::File(f),
    };
    let shared = tree.shared;
    let raw = match scanner.scan_raw(
        &input,
        data.len(),
        shared.limits,
        shared.started,
        &tree.types,
    ) {
        Ok(r) => r,
        Err(e) => {
            tree.note(Problem::Broken {
                member: tree.chain.last().cloned(),
                detail: e.to_string(),
            });
            return;
        }
    };
    tree.found.bytes += raw.bytes_scanned;
    tree.found.regex_limits += raw.regex_limits;
    for d in raw.detections {
        tree.detect(&d.name);
    }
    if let Some(l) = raw.limit {
        shared.limit(l);
        if l == LimitExceeded::MaxScanTime {
            shared.finish();
        }
    }
    if shared.stopped() || !has_members(raw.file_type) {
        return;
    }
    walk(scanner, input.as_source(), raw.file_type, depth + 1, tree);
}
