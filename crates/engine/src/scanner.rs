//! Scanning one input with a compiled [`Engine`](crate::Engine).
//!
//! Files are read in windows of [`CHUNK`] bytes with positioned reads, never
//! mapped: a file truncated under an `mmap` kills the process with SIGBUS, a
//! short `pread` is just an error. Each window keeps the last [`KEEP`] bytes of
//! the one before, so anchors that straddle two windows are found and most
//! verifications see all the bytes they need; the rare one that needs more
//! reads its range again. Digests are computed in the same pass, and only the
//! kinds that some signature could match at this file's size.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use md5::{Digest as _, Md5};
use sha1::Sha1;
use sha2::Sha256;

use crate::Engine;
use crate::builder::CompiledDb;
use crate::exe_layout::FileLayout;
use crate::filetype::{self, FileType};
use crate::hashdb::{Digests, Needed};
use crate::limits::{LimitExceeded, Limits};
use crate::logical::{self, Counters, NO_OFFSET};
use crate::names::NameId;
use crate::pattern::{NO_SLOT, Program, UNBOUNDED};
use crate::recurse::{Alerts, ContainerNote};
use crate::verify::{self, Hay, VerifyScratch};

/// Bytes read per window.
const CHUNK: usize = 1 << 20;
/// Bytes of the previous window kept in front of the next one; at least the
/// longest anchor, so an anchor cut by a window boundary is found whole.
const KEEP: usize = 64 << 10;
/// A verification cut by the window's edge reads the range its pattern may
/// span and checks again, up to this many bytes; a longer range of a pattern
/// with unbounded gaps is searched window by window ([`crate::chained`]).
const WHOLE_RECHECK: u64 = 4 * CHUNK as u64;
const _: () = assert!(KEEP >= crate::pattern::MAX_ANCHOR);

/// One signature that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The signature's name, as clamscan prints it (`Eicar-Test-Signature`).
    pub name: String,
    /// Where it matched inside the scanned file: the names of the archive
    /// members from the outside in (`["inner.tar.gz", "dir/evil.exe"]`);
    /// empty for the file itself. Compressed streams add no name.
    pub chain: Vec<String>,
}

/// What scanning one input found.
#[derive(Debug, Clone, Default)]
pub struct ScanOutcome {
    /// Matches in report order; at most one unless `Limits::all_match`.
    pub detections: Vec<Detection>,
    /// Bytes read and matched.
    pub bytes_scanned: u64,
    /// The recognized file type.
    pub file_type: FileType,
    /// A limit that cut the scan short or skipped the input, if any; for a
    /// container, the first limit met anywhere in its tree of members.
    pub limit: Option<LimitExceeded>,
    /// Problems met inside containers that are not detections (broken or
    /// truncated archives, `../` names, unsupported methods), in order.
    pub notes: Vec<ContainerNote>,
    /// Members scanned inside containers (the file itself not counted).
    pub members_scanned: u64,
    /// PCRE subsignature runs that PCRE2's match or depth limit stopped
    /// (ClamAV's `--pcre-match-limit` 100,000 and `--pcre-recmatch-limit`
    /// 2,000); each counts as no match, as in clamscan.
    pub regex_limits: u64,
}

/// Why an input could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
    #[error("file changed during scan (size was {expected}, now {actual})")]
    Changed { expected: u64, actual: u64 },
}

pub(crate) enum Input<'a> {
    Bytes(&'a [u8]),
    File(&'a File),
}

impl Input<'_> {
    pub(crate) fn as_source(&self) -> &(dyn aether_formats::ReadAt + Sync) {
        match self {
            Input::Bytes(d) => d,
            Input::File(f) => *f,
        }
    }

    /// Reads exactly `buf.len()` bytes at `offset`, or says the file shrank.
    fn read_exact_at(
        &self,
        mut buf: &mut [u8],
        mut offset: u64,
        size: u64,
    ) -> Result<(), ScanError> {
        match self {
            Input::Bytes(d) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                let src =
                    d.get(start..start.saturating_add(buf.len()))
                        .ok_or(ScanError::Changed {
                            expected: size,
                            actual: d.len() as u64,
                        })?;
                buf.copy_from_slice(src);
                Ok(())
            }
            Input::File(f) => {
                while !buf.is_empty() {
                    match f.read_at(buf, offset) {
                        Ok(0) => {
                            return Err(ScanError::Changed {
                                expected: size,
                                actual: offset,
                            });
                        }
                        Ok(n) => {
                            buf = &mut buf[n..];
                            offset += n as u64;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(())
            }
        }
    }
}

/// Digest state for one scan.
#[derive(Default)]
struct Hashers {
    md5: Option<Md5>,
    sha1: Option<Sha1>,
    sha256: Option<Sha256>,
}

impl Hashers {
    fn new(needed: Needed) -> Hashers {
        Hashers {
            md5: needed.md5.then(Md5::new),
            sha1: needed.sha1.then(Sha1::new),
            sha256: needed.sha256.then(Sha256::new),
        }
    }

    fn update(&mut self, data: &[u8]) {
        if let Some(h) = &mut self.md5 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha1 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
    }

    fn finish(self) -> Digests {
        Digests {
            md5: self.md5.map(|h| h.finalize().into()),
            sha1: self.sha1.map(|h| h.finalize().into()),
            sha256: self.sha256.map(|h| h.finalize().into()),
        }
    }
}

/// Scans inputs one at a time; owns per-thread scratch space.
pub struct Scanner<'e> {
    pub(crate) engine: &'e Engine,
    pub(crate) alerts: Alerts,
    /// Threads that scan the members of one large archive.
    pub(crate) member_threads: usize,
    window: Vec<u8>,
    fallback: Vec<u8>,
    /// `stamps[p] == stamp` when program `p` already matched in this scan.
    stamps: Vec<u32>,
    stamp: u32,
    verify: VerifyScratch,
    found: Vec<NameId>,
    /// Subsignature counters of the logical signatures.
    counters: Counters,
    /// The scanned file's executable structure (see [`crate::exe_layout`]).
    layout: FileLayout,
    /// Made on first use, for the engine's YARA rules.
    yara: Option<aether_yara::YaraScanner<'e>>,
    /// A whole file for YARA, which scans one contiguous buffer.
    whole: Vec<u8>,
}

/// How a derived copy is scanned (see [`Scanner::scan_derived`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DerivedScan {
    pub(crate) types: u32,
    pub(crate) hashed: bool,
    pub(crate) tdb_size: Option<u64>,
    pub(crate) all_match: bool,
}

/// Per-scan state shared by the windows of one input.
struct ScanState {
    size: u64,
    /// The size `FileSize` of a logical signature compares: `size`, except
    /// for normalized text ClamAV matches in memory (the file's own size).
    tdb_size: u64,
    types: u32,
    all_match: bool,
    done: bool,
}

impl<'e> Scanner<'e> {
    pub(crate) fn new(engine: &'e Engine) -> Scanner<'e> {
        Scanner {
            engine,
            alerts: Alerts::default(),
            member_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            window: Vec::new(),
            fallback: Vec::new(),
            stamps: vec![0; engine.db.programs.len()],
            stamp: 0,
            verify: VerifyScratch::default(),
            found: Vec::new(),
            counters: Counters::new(&engine.db.logical),
            layout: FileLayout::Generic,
            yara: None,
            whole: Vec::new(),
        }
    }

    /// Scans an open regular file.
    pub fn scan_file(&mut self, file: &File, limits: &Limits) -> Result<ScanOutcome, ScanError> {
        let size = file.metadata()?.len();
        self.scan_input(Input::File(file), size, limits)
    }

    /// Scans a byte slice.
    pub fn scan_bytes(&mut self, data: &[u8], limits: &Limits) -> Result<ScanOutcome, ScanError> {
        self.scan_input(Input::Bytes(data), data.len() as u64, limits)
    }

    /// Scans a stream of unknown length (standard input). The stream is read
    /// into memory up to `max_scansize` bytes; a longer one is not scanned
    /// and reported as [`LimitExceeded::MaxScanSize`], as clamscan does.
    pub fn scan_reader(
        &mut self,
        reader: &mut dyn Read,
        limits: &Limits,
    ) -> Result<ScanOutcome, ScanError> {
        let cap = if limits.max_scansize == 0 {
            u64::MAX
        } else {
            limits.max_scansize
        };
        let mut data = Vec::new();
        reader.take(cap.saturating_add(1)).read_to_end(&mut data)?;
        if data.len() as u64 > cap {
            return Ok(ScanOutcome {
                limit: Some(LimitExceeded::MaxScanSize),
                ..Default::default()
            });
        }
        self.scan_bytes(&data, limits)
    }

    fn next_stamp(&mut self) {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.stamps.iter_mut().for_each(|s| *s = 0);
            self.stamp = 1;
        }
    }

    /// Chooses which heuristic alerts are reported (`--alert-encrypted`).
    pub fn set_alerts(&mut self, alerts: Alerts) {
        self.alerts = alerts;
    }

    /// How many threads scan the members of one large archive (at least
    /// [`PARALLEL_MIN`](crate::recurse::PARALLEL_MIN) bytes); 1 scans them on
    /// the calling thread. Defaults to the number of CPUs.
    pub fn set_member_threads(&mut self, threads: usize) {
        self.member_threads = threads.max(1);
    }

    fn scan_input(
        &mut self,
        input: Input<'_>,
        size: u64,
        limits: &Limits,
    ) -> Result<ScanOutcome, ScanError> {
        let started = Instant::now();
        let mut outcome = ScanOutcome::default();
        if limits.max_filesize != 0 && size > limits.max_filesize {
            outcome.limit = Some(LimitExceeded::MaxFileSize);
            return Ok(outcome);
        }
        if limits.max_scansize != 0 && size > limits.max_scansize {
            outcome.limit = Some(LimitExceeded::MaxScanSize);
            return Ok(outcome);
        }
        if size == 0 {
            return Ok(outcome);
        }
        let mut outcome = self.scan_raw(&input, size, limits, started, &[])?;
        // Then what is inside, as clamscan does after the raw scan.
        if crate::recurse::has_members(outcome.file_type)
            && outcome.limit.is_none()
            && (outcome.detections.is_empty() || limits.all_match)
        {
            crate::recurse::scan_members(self, &input, &mut outcome, limits, started);
        }
        Ok(outcome)
    }

    /// Scans one input's own bytes: type, body signatures, hashes, logical
    /// signatures. `containers` are the types of the containers it is a
    /// member of, outermost first.
    pub(crate) fn scan_raw(
        &mut self,
        input: &Input<'_>,
        size: u64,
        limits: &Limits,
        started: Instant,
        containers: &[FileType],
    ) -> Result<ScanOutcome, ScanError> {
        let mut outcome = ScanOutcome::default();
        let db = &self.engine.db;
        self.next_stamp();
        self.found.clear();
        self.counters.reset(&db.logical);
        let fp_needed = db.allow.needed(size);
        let mut hashers = Hashers::new(db.hashes.needed(size).or(fp_needed));

        // Type the file from its first bytes.
        let mut head = [0u8; aether_formats::filetype::HEAD];
        let head_len = (size as usize).min(head.len());
        input.read_exact_at(&mut head[..head_len], 0, size)?;
        outcome.file_type = filetype::detect(&head[..head_len]);
        // An executable's headers and tables are read on demand, only the
        // ranges the parser asks for, so a large file is never held whole.
        let headers = match input {
            Input::File(f) => Some(object::ReadCache::new(*f)),
            Input::Bytes(_) => None,
        };
        self.layout = match (input, &headers) {
            (Input::Bytes(d), _) => FileLayout::of(outcome.file_type, Some(*d)),
            (Input::File(_), Some(cache)) => FileLayout::of(outcome.file_type, Some(cache)),
            (Input::File(_), None) => FileLayout::of::<&[u8]>(outcome.file_type, None),
        };
        // ClamAV's `cli_magic_scan` ignores any file or member of 5 bytes or
        // less: no signature of any kind is matched (YARA rules still run).
        let ignored = size <= crate::textnorm::SMALL_FILE;
        let types = if ignored {
            0
        } else {
            filetype::target_mask(outcome.file_type)
        };
        let mut st = ScanState {
            size,
            tdb_size: size,
            types,
            all_match: limits.all_match,
            // Nothing is matched against these raw bytes (HTML, tiny text).
            done: types == 0,
        };

        match input {
            Input::Bytes(data) => {
                hashers.update(data);
                if !st.done {
                    self.scan_window(input, data, 0, 0, &mut st)?;
                }
            }
            Input::File(_) => {
                let mut window = std::mem::take(&mut self.window);
                let result = self.scan_windows(
                    input,
                    &mut window,
                    &mut hashers,
                    &mut st,
                    limits,
                    started,
                    fp_needed,
                );
                self.window = window;
                if let Some(limit) = result? {
                    outcome.limit = Some(limit);
                }
            }
        }
        outcome.bytes_scanned = size;

        // Whole-file hashes come after body signatures, as in ClamAV. ClamAV
        // never hashes what it types as HTML: it skips the raw scan of such a
        // file and scans normalized copies of it instead.
        let digests = hashers.finish();
        let hashed = outcome.file_type != FileType::Html && !ignored;
        if hashed && outcome.limit.is_none() && (self.found.is_empty() || st.all_match) {
            let before = self.found.len();
            db.hashes.lookup(&digests, size, &mut self.found);
            if !st.all_match {
                self.found.truncate(before + 1);
            }
        }
        // Logical signatures last, as in ClamAV.
        if outcome.limit.is_none() && !ignored && (self.found.is_empty() || st.all_match) {
            outcome.regex_limits += self.scan_logical(input, &st, containers)?;
        }
        // Text and HTML: their normalized copies, after the raw scan.
        if outcome.limit.is_none() && (self.found.is_empty() || st.all_match) {
            outcome.regex_limits += crate::textnorm::scan_normalized(
                self,
                input,
                size,
                outcome.file_type,
                st.all_match,
                containers,
            )?;
        }
        // PE section and import hashes after the raw scan, as ClamAV's PE
        // scanner runs after it.
        if let Some(info) = self.layout.info()
            && outcome.limit.is_none()
            && (self.found.is_empty() || st.all_match)
        {
            crate::exe_layout::match_sections(
                &db.sections,
                info,
                input.as_source(),
                st.all_match,
                &mut self.found,
            );
            if self.found.is_empty() || st.all_match {
                let (imports, all) = (&db.imports, st.all_match);
                match (input, &headers) {
                    (Input::Bytes(d), _) => {
                        crate::exe_layout::match_imports(imports, info, *d, all, &mut self.found)
                    }
                    (Input::File(_), Some(cache)) => {
                        crate::exe_layout::match_imports(imports, info, cache, all, &mut self.found)
                    }
                    (Input::File(_), None) => {}
                }
            }
        }
        // An allow-listed file is clean whatever matched.
        if !self.found.is_empty() && fp_needed.any() {
            let mut allowed = Vec::new();
            db.allow.lookup(&digests, size, &mut allowed);
            if !allowed.is_empty() {
                self.found.clear();
            }
        }
        outcome.detections = self
            .found
            .iter()
            .map(|id| Detection {
                name: db.names.display(*id),
                chain: Vec::new(),
            })
            .collect();
        // YARA rules last, as ClamAV evaluates them with its logical signatures.
        if outcome.limit.is_none() && (outcome.detections.is_empty() || st.all_match) {
            self.scan_yara(input, size, limits, &mut outcome)?;
        }
        Ok(outcome)
    }

    /// Evaluates the logical signatures at the end of an input: byte
    /// compares, then triggered regexes, then expressions and target
    /// descriptions; detections go to `found`. Returns how many regex runs
    /// PCRE2's limits stopped.
    fn scan_logical(
        &mut self,
        input: &Input<'_>,
        st: &ScanState,
        containers: &[FileType],
    ) -> Result<u64, ScanError> {
        let engine: &'e Engine = self.engine;
        let db = &engine.db.logical;
        if db.sigs.is_empty() {
            return Ok(0);
        }
        // Target-specific signatures first, then generic ones, each in load
        // order, as ClamAV evaluates its target root before the generic one.
        let mut order: Vec<u32> = self
            .counters
            .touched
            .iter()
            .chain(&db.always)
            .copied()
            .filter(|l| st.types & (1 << db.sigs[*l as usize].target as u32) != 0)
            .collect();
        order.sort_unstable_by_key(|l| {
            (
                db.sigs[*l as usize].target == aether_sigs::TargetType::Any,
                *l,
            )
        });
        order.dedup();
        let mut limited = 0;
        let mut whole_read = false;
        for l in order {
            let sig = &db.sigs[l as usize];
            for c in &sig.chains {
                if st.size > logical::PCRE_MAX_FILESIZE
                    || self.counters.counts[c.slot as usize] == 0
                {
                    continue;
                }
                let data = whole_data(input, &mut self.whole, &mut whole_read, st.size)?;
                if let Some((n, last)) = c.count(data, &mut self.verify) {
                    self.counters.recount(db, c.slot, n, last);
                }
            }
            for (sub, bc) in &sig.bcomps {
                // A reference past the signature's subsignatures never
                // matched (ClamAV reads a zero count there).
                if bc.trigger >= sig.subsigs {
                    continue;
                }
                let r = (sig.first_slot + u32::from(bc.trigger)) as usize;
                if self.counters.counts[r] == 0 {
                    continue;
                }
                let last = self.counters.last[r];
                let from = if last == NO_OFFSET { 0 } else { last };
                let at = i64::try_from(from)
                    .unwrap_or(i64::MAX)
                    .saturating_add(bc.offset);
                let len = u64::from(bc.length);
                // ClamAV reads nothing at or before offset 0, nor past the end.
                if at <= 0 || (at as u64).saturating_add(len) > st.size {
                    continue;
                }
                let mut bytes = vec![0u8; bc.length as usize];
                input.read_exact_at(&mut bytes, at as u64, st.size)?;
                if crate::bytecmp::compare(bc, &bytes) {
                    self.counters.bump(db, sig.first_slot + u32::from(*sub));
                }
            }
            for p in &sig.pcres {
                if st.size > logical::PCRE_MAX_FILESIZE
                    || !p.trigger.eval(sig.counts(&self.counters.counts))
                {
                    continue;
                }
                let data = whole_data(input, &mut self.whole, &mut whole_read, st.size)?;
                // Executables' own offset forms resolved, or nowhere.
                let Some(offset) = self.layout.resolve(&p.offset, st.size, 0, false) else {
                    continue;
                };
                let slot = sig.first_slot + u32::from(p.sub);
                let counters = &mut self.counters;
                if p.run(offset, data, |start| counters.hit(db, slot, start)) {
                    limited += 1;
                }
            }
            if sig.expr.eval(sig.counts(&self.counters.counts))
                && sig.description_holds(st.tdb_size, containers)
                && crate::exe_layout::exe_conditions_hold(
                    &self.layout,
                    sig.entry_point,
                    sig.number_of_sections,
                )
            {
                self.found.push(sig.name);
                if !st.all_match {
                    break;
                }
            }
        }
        if self.whole.capacity() > 4 * CHUNK {
            self.whole = Vec::new();
        }
        Ok(limited)
    }

    /// Scans `data`, a normalized copy of the current input (see
    /// [`crate::textnorm`]), against the body and logical signatures whose
    /// target types are in `types`, and with `hashed` against the hash
    /// signatures (`tdb_size`: the size a `FileSize` condition compares, when
    /// not the copy's), as ClamAV scans such a copy: a buffer of its own for
    /// offsets and subsignature counts, its matches added to the input's
    /// detections (each name once). Returns how many regex runs PCRE2's
    /// limits stopped, and whether anything new matched.
    pub(crate) fn scan_derived(
        &mut self,
        data: &[u8],
        types: u32,
        hashed: bool,
        tdb_size: Option<u64>,
        all_match: bool,
        containers: &[FileType],
    ) -> Result<(u64, bool), ScanError> {
        let copy = DerivedScan {
            types,
            hashed,
            tdb_size,
            all_match,
        };
        self.scan_copy(&Input::Bytes(data), data.len() as u64, copy, containers)
    }

    /// [`Scanner::scan_derived`] for a copy in memory or written to a file
    /// of `size` bytes (see [`crate::spill`]); a file is read window by window
    /// as files are, its hashes computed on the way, never held whole.
    pub(crate) fn scan_copy(
        &mut self,
        input: &Input<'_>,
        size: u64,
        copy: DerivedScan,
        containers: &[FileType],
    ) -> Result<(u64, bool), ScanError> {
        let engine: &'e Engine = self.engine;
        self.counters.reset(&engine.db.logical);
        // Not an executable, whatever the input is.
        let layout = std::mem::take(&mut self.layout);
        let mut st = ScanState {
            size,
            tdb_size: copy.tdb_size.unwrap_or(size),
            types: copy.types,
            all_match: copy.all_match,
            done: false,
        };
        let before = self.found.len();
        let needed = if copy.hashed {
            engine.db.hashes.needed(size)
        } else {
            Needed::default()
        };
        let mut hashers = Hashers::new(needed);
        let matched = match input {
            // In memory, hashed after matching, only if still needed.
            Input::Bytes(data) => self.scan_window(input, data, 0, 0, &mut st),
            // From a file, hashed on the way. No time limit: a copy in
            // memory has none either.
            Input::File(_) => {
                let limits = Limits {
                    max_scantime: None,
                    ..Limits::default()
                };
                let mut window = std::mem::take(&mut self.window);
                let windows = self.scan_windows(
                    input,
                    &mut window,
                    &mut hashers,
                    &mut st,
                    &limits,
                    Instant::now(),
                    Needed::default(),
                );
                self.window = window;
                windows.map(|_| ())
            }
        };
        let scanned = matched.and_then(|()| {
            // A file's hashes are whole unless matching stopped at a detection.
            if copy.hashed && (self.found.len() == before || copy.all_match) {
                if let Input::Bytes(data) = input {
                    hashers.update(data);
                }
                let at = self.found.len();
                engine
                    .db
                    .hashes
                    .lookup(&hashers.finish(), size, &mut self.found);
                if !copy.all_match {
                    self.found.truncate(at + 1);
                }
            }
            if self.found.len() == before || copy.all_match {
                self.scan_logical(input, &st, containers)
            } else {
                Ok(0)
            }
        });
        self.layout = layout;
        let limited = scanned?;
        // A logical signature may hold in several copies: report it once.
        let (old, new) = self.found.split_at(before);
        let mut fresh: Vec<NameId> = Vec::with_capacity(new.len());
        for id in new {
            if !old.contains(id) && !fresh.contains(id) {
                fresh.push(*id);
            }
        }
        self.found.truncate(before);
        let found = !fresh.is_empty();
        self.found.extend(fresh);
        Ok((limited, found))
    }

    // (OLE2 macros, see `aether_formats::Content`)
    /// Scans `data`, a buffer ClamAV derives from a container and types
    /// itself, as a scan of its own: body and logical signatures of the
    /// target types in `types`, hash signatures with `hashed`; not typed or
    /// opened. Returns the names that matched and the regex runs PCRE2's
    /// limits stopped.
    pub(crate) fn scan_typed(
        &mut self,
        data: &[u8],
        types: u32,
        hashed: bool,
        all_match: bool,
        containers: &[FileType],
    ) -> Result<(Vec<String>, u64), ScanError> {
        self.next_stamp();
        self.found.clear();
        let (limited, _) = self.scan_derived(data, types, hashed, None, all_match, containers)?;
        let db = &self.engine.db;
        let names = self.found.iter().map(|id| db.names.display(*id)).collect();
        Ok((names, limited))
    }

    /// Runs the engine's YARA rules over the whole input.
    fn scan_yara(
        &mut self,
        input: &Input<'_>,
        size: u64,
        limits: &Limits,
        outcome: &mut ScanOutcome,
    ) -> Result<(), ScanError> {
        let engine: &'e Engine = self.engine;
        let Some(rules) = &engine.yara else {
            return Ok(());
        };
        let yara = self.yara.get_or_insert_with(|| rules.scanner());
        if let Some(t) = limits.max_scantime {
            yara.set_timeout(t);
        }
        let data: &[u8] = match input {
            Input::Bytes(d) => d,
            Input::File(_) => {
                // Bounded by MaxFileSize/MaxScanSize, checked before the scan.
                let len = usize::try_from(size).unwrap_or(usize::MAX);
                self.whole.resize(len, 0);
                input.read_exact_at(&mut self.whole, 0, size)?;
                &self.whole
            }
        };
        let matched = match yara.scan(data) {
            Ok(m) => m,
            Err(aether_yara::YaraScanError::Timeout) => {
                outcome.limit = Some(LimitExceeded::MaxScanTime);
                Vec::new()
            }
            Err(e) => return Err(ScanError::Io(std::io::Error::other(e))),
        };
        for rule in matched {
            outcome.detections.push(Detection {
                name: format!("YARA.{rule}.UNOFFICIAL"),
                chain: Vec::new(),
            });
            if !limits.all_match {
                break;
            }
        }
        if self.whole.capacity() > 4 * CHUNK {
            self.whole = Vec::new();
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn scan_windows(
        &mut self,
        input: &Input<'_>,
        window: &mut Vec<u8>,
        hashers: &mut Hashers,
        st: &mut ScanState,
        limits: &Limits,
        started: Instant,
        fp_needed: Needed,
    ) -> Result<Option<LimitExceeded>, ScanError> {
        // Sized once per scanner; `len` tracks the valid bytes so that no
        // window is zero-filled again.
        if window.len() < KEEP + CHUNK {
            window.resize(KEEP + CHUNK, 0);
        }
        let mut len = 0usize;
        let mut pos = 0u64; // next byte to read
        while pos < st.size {
            if let Some(max) = limits.max_scantime
                && started.elapsed() > max
            {
                return Ok(Some(LimitExceeded::MaxScanTime));
            }
            let keep = len.min(KEEP);
            window.copy_within(len - keep..len, 0);
            let base = pos - keep as u64;
            let n = (st.size - pos).min(CHUNK as u64) as usize;
            input.read_exact_at(&mut window[keep..keep + n], pos, st.size)?;
            len = keep + n;
            hashers.update(&window[keep..len]);
            pos += n as u64;
            if !st.done {
                self.scan_window(input, &window[..len], base, keep, st)?;
            } else if !fp_needed.any() {
                // Matching stopped at the first detection; only an allow-list
                // check would still need the rest of the file.
                break;
            }
        }
        Ok(None)
    }

    /// Finds and verifies the anchors of one window. Anchors that end at or
    /// before `fresh` were seen in the previous window and are skipped.
    fn scan_window(
        &mut self,
        input: &Input<'_>,
        data: &[u8],
        base: u64,
        fresh: usize,
        st: &mut ScanState,
    ) -> Result<(), ScanError> {
        let db: &'e CompiledDb = &self.engine.db;
        let mut error = None;
        let from = fresh.saturating_sub(3);
        db.grams
            .find_with_folded(&db.folded_grams, data, from, |at, span, folded| match self
                .on_anchor(input, data, base, at, span, folded, st)
            {
                Ok(go_on) => go_on,
                Err(e) => {
                    error = Some(e);
                    false
                }
            });
        if let Some(e) = error {
            return Err(e);
        }
        if st.done {
            return Ok(());
        }
        if let Some(ac) = &db.automaton {
            for m in ac.find_overlapping_iter(data) {
                if m.end() <= fresh {
                    continue;
                }
                let span = db.short_spans[m.pattern().as_usize()];
                if !self.on_anchor(input, data, base, m.start(), span, false, st)? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Verifies the programs of one anchor hit; false when scanning should
    /// stop. `folded`: found by the folded index, so the anchor's own bytes
    /// are checked first.
    #[allow(clippy::too_many_arguments)]
    fn on_anchor(
        &mut self,
        input: &Input<'_>,
        data: &[u8],
        base: u64,
        at: usize,
        (lo, hi): (u32, u32),
        folded: bool,
        st: &mut ScanState,
    ) -> Result<bool, ScanError> {
        let db: &'e CompiledDb = &self.engine.db;
        for &p in &db.anchor_programs[lo as usize..hi as usize] {
            if self.stamps[p as usize] == self.stamp {
                continue;
            }
            let prog = &db.programs[p as usize];
            if st.types & (1 << prog.target as u32) == 0 {
                continue;
            }
            if folded && !verify::anchor_holds(prog, data, at) {
                continue;
            }
            let Some(start) = self.matches(input, prog, data, base, at, st.size)? else {
                continue;
            };
            if prog.slot != NO_SLOT {
                // A subsignature: every match counts, and scanning goes on.
                self.counters.hit(&db.logical, prog.slot, start);
                continue;
            }
            self.stamps[p as usize] = self.stamp;
            self.found.push(prog.name);
            if !st.all_match {
                st.done = true;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Verifies `prog` with its anchor at `data[at]`: where the match
    /// starts, if it matches. A `VI` pattern matches only at the start of a
    /// version-information string, as ClamAV checks its `vinfo` set.
    fn matches(
        &mut self,
        input: &Input<'_>,
        prog: &Program,
        data: &[u8],
        base: u64,
        at: usize,
        size: u64,
    ) -> Result<Option<u64>, ScanError> {
        let found = self.matches_anywhere(input, prog, data, base, at, size)?;
        if prog.offset == aether_sigs::Offset::VersionInfo {
            return Ok(found.filter(|s| self.layout.in_version_info(*s)));
        }
        Ok(found)
    }

    /// [`Scanner::matches`] but for the `VI` check.
    fn matches_anywhere(
        &mut self,
        input: &Input<'_>,
        prog: &Program,
        data: &[u8],
        base: u64,
        at: usize,
        size: u64,
    ) -> Result<Option<u64>, ScanError> {
        let anchor = base + at as u64;
        let (back_min, back_max) = prog.back;
        let Some(latest_start) = anchor.checked_sub(back_min as u64) else {
            return Ok(None);
        };
        // The offset as it lands in this file (executables' own forms
        // resolved), or nowhere.
        let Some(offset) = self.layout.offset_of(prog, size) else {
            return Ok(None);
        };
        if let Some((first, last)) = verify::offset_range(&offset, size) {
            let earliest_start = if back_max == UNBOUNDED {
                0
            } else {
                anchor.saturating_sub(back_max as u64)
            };
            if last < earliest_start || first > latest_start {
                return Ok(None);
            }
        }
        if prog.anchor_is_pattern {
            return Ok(verify::offset_allows(&offset, anchor, size).then_some(anchor));
        }
        // The bytes the verification may touch, one more on each side for edges.
        let need_lo = if back_max == UNBOUNDED {
            0
        } else {
            anchor.saturating_sub(back_max as u64 + 1)
        };
        let need_hi = if prog.fwd_max == UNBOUNDED {
            size
        } else {
            anchor.saturating_add(prog.fwd_max as u64 + 1).min(size)
        };
        // Try the window first: almost every anchor hit fails next to the
        // anchor, and only a verification that ran into the window's edge
        // (`cut`) needs the range read again.
        let hay = Hay {
            data,
            base,
            len: size,
            offset,
        };
        if verify::verify(prog, hay, at, &mut self.verify) {
            return Ok(Some(self.verify.start));
        }
        if !self.verify.cut {
            return Ok(None);
        }
        // A pattern with `*` may span the whole file: its segments are
        // searched for window by window instead of reading it all.
        if need_hi - need_lo > WHOLE_RECHECK && crate::chained::has_unbounded_gap(prog) {
            let mut read = |buf: &mut [u8], at: u64| input.read_exact_at(buf, at, size);
            let src = crate::chained::Source {
                read: &mut read,
                size,
                chunk: CHUNK as u64,
            };
            let mut buf = std::mem::take(&mut self.fallback);
            let found =
                crate::chained::verify(prog, offset, anchor, src, &mut self.verify, &mut buf);
            buf.clear();
            if buf.capacity() > 4 * CHUNK {
                buf.shrink_to(CHUNK);
            }
            self.fallback = buf;
            return found;
        }
        let len = usize::try_from(need_hi - need_lo).unwrap_or(usize::MAX);
        let mut buf = std::mem::take(&mut self.fallback);
        buf.resize(len, 0);
        let read = input.read_exact_at(&mut buf, need_lo, size);
        let ok = read.map(|()| {
            let hay = Hay {
                data: &buf,
                base: need_lo,
                len: size,
                offset,
            };
            verify::verify(prog, hay, (anchor - need_lo) as usize, &mut self.verify)
                .then_some(self.verify.start)
        });
        buf.clear();
        if buf.capacity() > 4 * CHUNK {
            buf.shrink_to(CHUNK);
        }
        self.fallback = buf;
        ok
    }
}

/// The whole of `input`: its bytes, or for a file the copy read into `whole`
/// once per scan (`read` says whether it was).
fn whole_data<'d>(
    input: &'d Input<'_>,
    whole: &'d mut Vec<u8>,
    read: &mut bool,
    size: u64,
) -> Result<&'d [u8], ScanError> {
    match input {
        Input::Bytes(d) => Ok(d),
        Input::File(_) => {
            if !*read {
                let len = usize::try_from(size).unwrap_or(usize::MAX);
                whole.resize(len, 0);
                input.read_exact_at(whole, 0, size)?;
                *read = true;
            }
            Ok(whole)
        }
    }
}
