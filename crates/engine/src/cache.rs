//! The compiled-database cache: an [`Engine`](crate::Engine) saved as bytes.
//!
//! Parsing a million text lines and sorting the tables takes a few hundred
//! milliseconds; reading the compiled form back takes a few tens. The file
//! starts with a magic, a format version and the fingerprint of the databases
//! it was compiled from (paths, sizes, modification times, inodes, aether's
//! version), so a cache is used only for exactly the files that made it.
//!
//! A cache file is data aether wrote itself, but it is still read as untrusted
//! input: every length, index and span is checked before use, and a file that
//! fails any check is an error the caller answers by recompiling. The loader
//! also refuses cache directories and files that other users can write (see
//! [`crate::database`]).

use aether_sigs::{
    ByteCompare, ByteFormat, ByteMatch, CharClass, CountCmp, Endian, LogicExpr, Offset, PcreFlags,
    Range, TargetType,
};

use std::sync::Arc;

use memmap2::Mmap;

use crate::builder::{CompiledDb, DbParts};
use crate::bytes::Bytes;
use crate::hashdb::{HashDb, HashTable};
use crate::logical::{LogicalDb, Lsig, PcreSub, TypeCond};
use crate::names::{NameId, NamePool};
use crate::pattern::{
    AltSet, BranchIter, Edge, Elem, Gap, NO_SLOT, Program, SideBuilder, UNBOUNDED, anchorable,
};
use crate::recount::Chain;

const MAGIC: &[u8; 8] = b"AETHERDB";
/// Bumped whenever the layout below changes.
const FORMAT_VERSION: u32 = 7;

/// Why a cache file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("not an aether database cache")]
    BadMagic,
    #[error("cache format {found}, this aether reads {FORMAT_VERSION}")]
    Version { found: u32 },
    #[error("cache was compiled from other databases")]
    Stale,
    #[error("cache is truncated or corrupt: {0}")]
    Corrupt(&'static str),
    #[error("cache I/O: {0}")]
    Io(#[from] std::io::Error),
}

type Result<T> = std::result::Result<T, CacheError>;

// ---- writing ---------------------------------------------------------------

/// Writes the cache as it goes (the hash tables alone can be tens of
/// megabytes); the first I/O error is kept and returned at the end.
struct Writer<W: std::io::Write> {
    out: W,
    error: Option<std::io::Error>,
}

impl<W: std::io::Write> Writer<W> {
    fn put(&mut self, b: &[u8]) {
        if self.error.is_none()
            && let Err(e) = self.out.write_all(b)
        {
            self.error = Some(e);
        }
    }
    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.put(b);
    }
    fn byte_match(&mut self, m: ByteMatch) {
        self.u8(m.value);
        self.u8(m.mask);
    }
    fn branches(&mut self, branches: BranchIter<'_>) {
        self.u32(branches.clone().count() as u32);
        for br in branches {
            self.u32(br.len() as u32);
            for m in br.iter() {
                self.byte_match(*m);
            }
        }
    }
    fn class(&mut self, class: CharClass, negated: bool) {
        let c = match class {
            CharClass::Boundary => 0,
            CharClass::Line => 1,
            CharClass::NonAlnum => 2,
        };
        self.u8(c | (negated as u8) << 4);
    }
    fn edge(&mut self, edge: Option<Edge>) {
        match edge {
            None => self.u8(0xff),
            Some(e) => {
                self.class(e.class(), e.negated());
                self.u8(e.wide() as u8);
            }
        }
    }
    fn offset(&mut self, o: &Offset) {
        match *o {
            Offset::Any => self.u8(0),
            Offset::Absolute { at, shift } => {
                self.u8(1);
                self.u64(at);
                self.u64(shift);
            }
            Offset::FromEnd { back, shift } => {
                self.u8(2);
                self.u64(back);
                self.u64(shift);
            }
            Offset::EntryPoint { delta, shift } => {
                self.u8(4);
                self.i64(delta);
                self.u64(shift);
            }
            Offset::Section {
                index,
                delta,
                shift,
            } => {
                self.u8(5);
                self.u32(index);
                self.u64(delta);
                self.u64(shift);
            }
            Offset::SectionEntire { index } => {
                self.u8(6);
                self.u32(index);
            }
            Offset::LastSection { delta, shift } => {
                self.u8(7);
                self.u64(delta);
                self.u64(shift);
            }
            Offset::VersionInfo => self.u8(8),
        }
    }
    fn table<const N: usize, const S: usize, const R: usize>(&mut self, t: &HashTable<N, S, R>) {
        self.bytes(t.sized_bytes());
        self.bytes(t.wild_bytes());
    }
    fn hashdb(&mut self, h: &HashDb) {
        self.table(&h.md5);
        self.table(&h.sha1);
        self.table(&h.sha256);
    }
    /// Elements with their gaps and alternatives inline (the side tables are
    /// rebuilt on reading); the anchor's measures are recomputed on reading.
    fn program(&mut self, p: &Program) {
        self.u64(p.elems.len() as u64);
        for e in p.elems.iter() {
            match *e {
                Elem::Byte(m) => {
                    self.u8(0);
                    self.byte_match(m);
                }
                Elem::Alt(k) => {
                    self.u8(1);
                    self.branches(p.branches(k));
                }
                Elem::NegAlt(k) => {
                    self.u8(2);
                    self.branches(p.branches(k));
                }
                Elem::Class { class, negated } => {
                    self.u8(3);
                    self.class(class, negated);
                }
                Elem::Gap(k) => {
                    // Compile makes every index; a missing one is written as
                    // a gap the reader refuses.
                    let g = p.gap(k).unwrap_or(Gap {
                        min: UNBOUNDED,
                        max: UNBOUNDED,
                    });
                    self.u8(4);
                    self.u32(g.min);
                    self.u32(g.max);
                }
            }
        }
        self.edge(p.left);
        self.edge(p.right);
        self.offset(&p.offset);
        self.u8(p.target as u8);
        self.u32(p.name.0);
        self.u32(p.slot);
        self.u32(p.anchor_at);
        self.u8(p.anchor_len);
    }
    fn i64(&mut self, v: i64) {
        self.put(&v.to_le_bytes());
    }
    fn text(&mut self, t: &str) {
        self.bytes(t.as_bytes());
    }
    fn range(&mut self, r: Option<Range>) {
        match r {
            None => self.u8(0),
            Some(r) => {
                self.u8(1);
                self.u32(r.min);
                self.u32(r.max);
            }
        }
    }
    fn bcomp(&mut self, sub: u8, b: &ByteCompare) {
        self.u8(sub);
        self.u8(b.trigger);
        self.i64(b.offset);
        self.u8(match b.format {
            None => 0,
            Some(ByteFormat::Hex) => 1,
            Some(ByteFormat::Decimal) => 2,
            Some(ByteFormat::Auto) => 3,
            Some(ByteFormat::Binary) => 4,
        });
        self.u8(match b.endian {
            None => 0,
            Some(Endian::Little) => 1,
            Some(Endian::Big) => 2,
        });
        self.u8(b.exact as u8);
        self.u32(b.length);
        self.u64(b.comparisons.len() as u64);
        for (cmp, v) in &b.comparisons {
            self.u8(cmp_code(*cmp));
            self.i64(*v);
        }
    }
    fn pcre(&mut self, p: &PcreSub) {
        self.u8(p.sub);
        self.offset(&p.offset);
        self.text(&p.trigger.to_string());
        self.text(&p.source);
        let f = &p.flags;
        let bits = [
            f.global,
            f.rolling,
            f.encompass,
            f.caseless,
            f.dotall,
            f.multiline,
            f.extended,
            f.anchored,
            f.dollar_endonly,
            f.ungreedy,
        ]
        .iter()
        .enumerate()
        .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << i));
        self.u32(bits);
    }
    fn lsig(&mut self, l: &Lsig) {
        self.u32(l.name.0);
        self.text(&l.expr.to_string());
        self.u8(l.target as u8);
        self.range(l.file_size);
        self.range(l.entry_point);
        self.range(l.number_of_sections);
        match l.container {
            None => self.u8(0),
            Some(c) => {
                self.u8(1);
                self.text(c.name());
            }
        }
        self.u64(l.intermediates.len() as u64);
        for t in &l.intermediates {
            self.text(t.name());
        }
        self.u32(l.first_slot);
        self.u8(l.subsigs);
        self.u64(l.bcomps.len() as u64);
        for (sub, b) in &l.bcomps {
            self.bcomp(*sub, b);
        }
        self.u64(l.pcres.len() as u64);
        for p in &l.pcres {
            self.pcre(p);
        }
        self.u64(l.chains.len() as u64);
        for c in &l.chains {
            self.u32(c.slot);
            self.u64(c.parts().count() as u64);
            for (prog, min, max) in c.parts() {
                self.program(prog);
                self.u64(min);
                self.u64(max.map_or(u64::MAX, |m| m));
            }
        }
    }
}

fn cmp_code(c: CountCmp) -> u8 {
    match c {
        CountCmp::Eq => 0,
        CountCmp::Gt => 1,
        CountCmp::Lt => 2,
    }
}

/// Writes a compiled database under `fingerprint`.
pub(crate) fn encode(
    db: &CompiledDb,
    fingerprint: &[u8; 32],
    out: impl std::io::Write,
) -> std::io::Result<()> {
    let mut w = Writer { out, error: None };
    w.put(MAGIC);
    w.u32(FORMAT_VERSION);
    w.put(fingerprint);
    w.u64(db.signature_count);
    w.bytes(&db.names.text);
    w.bytes(&db.names.ends);
    w.hashdb(&db.hashes);
    w.hashdb(&db.allow);
    w.hashdb(&db.sections);
    w.hashdb(&db.imports);
    w.u64(db.programs.len() as u64);
    for p in &db.programs {
        w.program(p);
    }
    w.u64(db.anchor_programs.len() as u64);
    for p in &db.anchor_programs {
        w.u32(*p);
    }
    w.u64(db.gram_entries.len() as u64);
    for (g, (a, b)) in &db.gram_entries {
        w.u32(*g);
        w.u32(*a);
        w.u32(*b);
    }
    w.u64(db.short_anchors.len() as u64);
    for (anchor, (a, b)) in db.short_entries() {
        w.bytes(anchor);
        w.u32(a);
        w.u32(b);
    }
    w.u64(db.folded_entries.len() as u64);
    for (g, (a, b)) in &db.folded_entries {
        w.u32(*g);
        w.u32(*a);
        w.u32(*b);
    }
    w.u64(db.logical.sigs.len() as u64);
    for l in &db.logical.sigs {
        w.lsig(l);
    }
    match w.error {
        Some(e) => Err(e),
        None => w.out.flush(),
    }
}

// ---- reading ---------------------------------------------------------------

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(CacheError::Corrupt("length overflow"))?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or(CacheError::Corrupt("unexpected end"))?;
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn usize(&mut self) -> Result<usize> {
        usize::try_from(self.u64()?).map_err(|_| CacheError::Corrupt("value too large"))
    }
    /// A count of items at least `item_size` bytes each: bounded by what is left.
    fn count(&mut self, item_size: usize) -> Result<usize> {
        let n = self.usize()?;
        let left = self.data.len() - self.pos;
        if n.saturating_mul(item_size.max(1)) > left {
            return Err(CacheError::Corrupt("count larger than the file"));
        }
        Ok(n)
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.count(1)?;
        self.take(n)
    }
    /// A length-prefixed section as a range of the mapped file, whose length
    /// must be a multiple of `record`.
    fn section(&mut self, map: &Arc<Mmap>, record: usize) -> Result<Bytes> {
        let n = self.count(1)?;
        if n % record != 0 {
            return Err(CacheError::Corrupt("section length"));
        }
        let start = self.pos;
        self.take(n)?;
        Ok(Bytes::Mapped(Arc::clone(map), start..start + n))
    }
    fn byte_match(&mut self) -> Result<ByteMatch> {
        Ok(ByteMatch {
            value: self.u8()?,
            mask: self.u8()?,
        })
    }
    fn branches(&mut self) -> Result<AltSet> {
        let n = self.u32()? as usize;
        if n == 0 || n > self.data.len() - self.pos {
            return Err(CacheError::Corrupt("alternative count"));
        }
        let branches = (0..n)
            .map(|_| {
                let len = self.u32()? as usize;
                if len.saturating_mul(2) > self.data.len() - self.pos {
                    return Err(CacheError::Corrupt("alternative length"));
                }
                (0..len)
                    .map(|_| self.byte_match())
                    .collect::<Result<Vec<ByteMatch>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        AltSet::new(&branches).ok_or(CacheError::Corrupt("alternative length"))
    }
    fn class(&mut self) -> Result<(CharClass, bool)> {
        let b = self.u8()?;
        let class = match b & 0x0f {
            0 => CharClass::Boundary,
            1 => CharClass::Line,
            2 => CharClass::NonAlnum,
            _ => return Err(CacheError::Corrupt("character class")),
        };
        Ok((class, b & 0x10 != 0))
    }
    fn edge(&mut self) -> Result<Option<Edge>> {
        if self.data.get(self.pos) == Some(&0xff) {
            self.pos += 1;
            return Ok(None);
        }
        let (class, negated) = self.class()?;
        let wide = self.u8()? != 0;
        Ok(Some(Edge::new(class, negated, wide)))
    }
    fn offset(&mut self) -> Result<Offset> {
        Ok(match self.u8()? {
            0 => Offset::Any,
            1 => Offset::Absolute {
                at: self.u64()?,
                shift: self.u64()?,
            },
            2 => Offset::FromEnd {
                back: self.u64()?,
                shift: self.u64()?,
            },
            4 => Offset::EntryPoint {
                delta: self.i64()?,
                shift: self.u64()?,
            },
            5 => Offset::Section {
                index: self.u32()?,
                delta: self.u64()?,
                shift: self.u64()?,
            },
            6 => Offset::SectionEntire { index: self.u32()? },
            7 => Offset::LastSection {
                delta: self.u64()?,
                shift: self.u64()?,
            },
            8 => Offset::VersionInfo,
            _ => return Err(CacheError::Corrupt("offset kind")),
        })
    }
    fn name(&mut self, names: usize) -> Result<NameId> {
        let id = NameId(self.u32()?);
        if (id.0 & !(1 << 31)) as usize >= names {
            return Err(CacheError::Corrupt("name index"));
        }
        Ok(id)
    }
    /// A hash table, used in place. Its records are not re-validated: every
    /// read of them is bounds-checked, so damage there can only make lookups
    /// miss, and checking a million records would touch every page of them.
    fn table<const N: usize, const S: usize, const W: usize>(
        &mut self,
        map: &Arc<Mmap>,
    ) -> Result<HashTable<N, S, W>> {
        let sized = self.section(map, HashTable::<N, S, W>::SIZED)?;
        let wild = self.section(map, HashTable::<N, S, W>::WILD)?;
        Ok(HashTable::from_bytes(sized, wild))
    }
    fn hashdb(&mut self, map: &Arc<Mmap>) -> Result<HashDb> {
        Ok(HashDb {
            md5: self.table(map)?,
            sha1: self.table(map)?,
            sha256: self.table(map)?,
        })
    }
    fn program(&mut self, names: usize) -> Result<Program> {
        let n = self.count(2)?;
        let mut side = SideBuilder::default();
        let index = |len: usize| {
            u16::try_from(len).map_err(|_| CacheError::Corrupt("gap or alternative count"))
        };
        // Sized up front: collecting through `Result` would grow the vector
        // by doubling and shrink it again, for every program.
        let mut elems = Vec::with_capacity(n);
        for _ in 0..n {
            elems.push(match self.u8()? {
                0 => Elem::Byte(self.byte_match()?),
                1 => {
                    side.alts.push(self.branches()?);
                    Elem::Alt(index(side.alts.len() - 1)?)
                }
                2 => {
                    let set = self.branches()?;
                    let len = set.branches().next().map_or(0, |b| b.len());
                    if set.branches().any(|b| b.len() != len) {
                        return Err(CacheError::Corrupt("negated alternative length"));
                    }
                    side.alts.push(set);
                    Elem::NegAlt(index(side.alts.len() - 1)?)
                }
                3 => {
                    let (class, negated) = self.class()?;
                    Elem::Class { class, negated }
                }
                4 => {
                    let (min, max) = (self.u32()?, self.u32()?);
                    if min == UNBOUNDED {
                        return Err(CacheError::Corrupt("gap length"));
                    }
                    side.gaps.push(Gap { min, max });
                    Elem::Gap(index(side.gaps.len() - 1)?)
                }
                _ => return Err(CacheError::Corrupt("element kind")),
            });
        }
        let left = self.edge()?;
        let right = self.edge()?;
        let offset = self.offset()?;
        let target =
            TargetType::from_number(self.u8()? as u32).ok_or(CacheError::Corrupt("target type"))?;
        let name = self.name(names)?;
        let slot = self.u32()?;
        let mut p = Program {
            elems: elems.into_boxed_slice(),
            side: side.finish(),
            left,
            right,
            offset,
            target,
            name,
            slot,
            anchor_at: self.u32()?,
            anchor_len: self.u8()?,
            anchor_is_pattern: false,
            back: (0, 0),
            fwd_max: 0,
        };
        p.measure()
            .ok_or(CacheError::Corrupt("pattern length or anchor"))?;
        // The scanner indexes elements by the anchor; it must lie inside them
        // and consist of exact bytes.
        let anchor = p
            .elems
            .get(p.anchor())
            .ok_or(CacheError::Corrupt("anchor outside the pattern"))?;
        if anchor.is_empty()
            || !anchor
                .iter()
                .all(|e| matches!(e, Elem::Byte(m) if anchorable(*m)))
        {
            return Err(CacheError::Corrupt("anchor is not static"));
        }
        Ok(p)
    }
    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn text(&mut self) -> Result<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| CacheError::Corrupt("text"))
    }
    fn range(&mut self) -> Result<Option<Range>> {
        Ok(match self.u8()? {
            0 => None,
            1 => Some(Range {
                min: self.u32()?,
                max: self.u32()?,
            }),
            _ => return Err(CacheError::Corrupt("range")),
        })
    }
    fn type_cond(&mut self) -> Result<TypeCond> {
        TypeCond::from_name(self.text()?).ok_or(CacheError::Corrupt("file type"))
    }
    fn cmp(&mut self) -> Result<CountCmp> {
        Ok(match self.u8()? {
            0 => CountCmp::Eq,
            1 => CountCmp::Gt,
            2 => CountCmp::Lt,
            _ => return Err(CacheError::Corrupt("comparison")),
        })
    }
    fn expr(&mut self, subsigs: u8) -> Result<LogicExpr> {
        let e = LogicExpr::parse(self.text()?).map_err(|_| CacheError::Corrupt("expression"))?;
        if e.max_id() >= subsigs {
            return Err(CacheError::Corrupt("expression index"));
        }
        Ok(e)
    }
    fn bcomp(&mut self, subsigs: u8) -> Result<(u8, ByteCompare)> {
        let sub = self.u8()?;
        let trigger = self.u8()?;
        // The trigger may name a subsignature the line does not have (the
        // scanner reads no count there); the compare itself must exist.
        if sub >= subsigs {
            return Err(CacheError::Corrupt("byte-compare index"));
        }
        let offset = self.i64()?;
        let format = match self.u8()? {
            0 => None,
            1 => Some(ByteFormat::Hex),
            2 => Some(ByteFormat::Decimal),
            3 => Some(ByteFormat::Auto),
            4 => Some(ByteFormat::Binary),
            _ => return Err(CacheError::Corrupt("byte-compare format")),
        };
        let endian = match self.u8()? {
            0 => None,
            1 => Some(Endian::Little),
            2 => Some(Endian::Big),
            _ => return Err(CacheError::Corrupt("byte-compare endian")),
        };
        let exact = self.u8()? != 0;
        let length = self.u32()?;
        // ClamAV reads at most 18 hex digits or 8 binary bytes.
        if length > 64 {
            return Err(CacheError::Corrupt("byte-compare length"));
        }
        let n = self.count(9)?;
        let comparisons = (0..n)
            .map(|_| Ok((self.cmp()?, self.i64()?)))
            .collect::<Result<Vec<_>>>()?;
        Ok((
            sub,
            ByteCompare {
                trigger,
                offset,
                format,
                endian,
                exact,
                length,
                comparisons,
            },
        ))
    }
    fn pcre(&mut self, subsigs: u8) -> Result<PcreSub> {
        let sub = self.u8()?;
        if sub >= subsigs {
            return Err(CacheError::Corrupt("regex index"));
        }
        let offset = self.offset()?;
        let trigger = self.expr(subsigs)?;
        let source = self.text()?;
        let bits = self.u32()?;
        let bit = |i: u32| bits & (1 << i) != 0;
        let flags = PcreFlags {
            global: bit(0),
            rolling: bit(1),
            encompass: bit(2),
            caseless: bit(3),
            dotall: bit(4),
            multiline: bit(5),
            extended: bit(6),
            anchored: bit(7),
            dollar_endonly: bit(8),
            ungreedy: bit(9),
        };
        PcreSub::new(sub, offset, trigger, source, flags).map_err(|_| CacheError::Corrupt("regex"))
    }
    fn lsig(&mut self, names: usize, first_slot: u32) -> Result<Lsig> {
        let name = self.name(names)?;
        let expr_text = self.text()?;
        let target =
            TargetType::from_number(self.u8()? as u32).ok_or(CacheError::Corrupt("target type"))?;
        let file_size = self.range()?;
        let entry_point = self.range()?;
        let number_of_sections = self.range()?;
        let container = match self.u8()? {
            0 => None,
            1 => Some(self.type_cond()?),
            _ => return Err(CacheError::Corrupt("container")),
        };
        let n = self.count(8)?;
        let intermediates = (0..n)
            .map(|_| self.type_cond())
            .collect::<Result<Vec<_>>>()?;
        if self.u32()? != first_slot {
            return Err(CacheError::Corrupt("subsignature counters"));
        }
        let subsigs = self.u8()?;
        if subsigs == 0 || usize::from(subsigs) > aether_sigs::logical::MAX_SUBSIGS {
            return Err(CacheError::Corrupt("subsignature count"));
        }
        let expr = LogicExpr::parse(expr_text).map_err(|_| CacheError::Corrupt("expression"))?;
        if expr.max_id() >= subsigs {
            return Err(CacheError::Corrupt("expression index"));
        }
        let n = self.count(16)?;
        let bcomps = (0..n)
            .map(|_| self.bcomp(subsigs))
            .collect::<Result<Vec<_>>>()?;
        let n = self.count(16)?;
        let pcres = (0..n)
            .map(|_| self.pcre(subsigs))
            .collect::<Result<Vec<_>>>()?;
        let n = self.count(16)?;
        let chains = (0..n)
            .map(|_| {
                let slot = self.u32()?;
                if slot < first_slot || slot - first_slot >= u32::from(subsigs) {
                    return Err(CacheError::Corrupt("chain counter"));
                }
                let parts = self.count(16)?;
                let parts = (0..parts)
                    .map(|_| {
                        let prog = self.program(names)?;
                        let min = self.u64()?;
                        let max = Some(self.u64()?).filter(|m| *m != u64::MAX);
                        Ok((prog, min, max))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Chain::from_parts(slot, parts).ok_or(CacheError::Corrupt("chain parts"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Lsig {
            name,
            expr,
            target,
            file_size,
            entry_point,
            number_of_sections,
            container,
            intermediates,
            first_slot,
            subsigs,
            bcomps,
            pcres,
            chains,
        })
    }
}

/// Reads a cache file's fingerprint without decoding the rest.
pub(crate) fn fingerprint_of(data: &[u8]) -> Result<[u8; 32]> {
    let mut r = Reader { data, pos: 0 };
    if r.take(8)? != MAGIC {
        return Err(CacheError::BadMagic);
    }
    let found = r.u32()?;
    if found != FORMAT_VERSION {
        return Err(CacheError::Version { found });
    }
    r.array()
}

/// Decodes the database section (`map[..end]`) of a cache written by
/// [`encode`] under `fingerprint`, using the mapped bytes in place.
pub(crate) fn decode(map: &Arc<Mmap>, end: usize, fingerprint: &[u8; 32]) -> Result<CompiledDb> {
    let data = map.get(..end).ok_or(CacheError::Corrupt("section end"))?;
    if &fingerprint_of(data)? != fingerprint {
        return Err(CacheError::Stale);
    }
    let mut r = Reader {
        data,
        pos: 8 + 4 + 32,
    };
    let signature_count = r.u64()?;
    let names = NamePool {
        text: r.section(map, 1)?,
        ends: r.section(map, 4)?,
    };
    let name_count = names.len();
    let hashes = r.hashdb(map)?;
    let allow = r.hashdb(map)?;
    let sections = r.hashdb(map)?;
    let imports = r.hashdb(map)?;
    // A program takes at least 28 bytes (an element and the fixed fields),
    // which bounds what a damaged count can make this reserve.
    let n = r.count(28)?;
    let mut programs = Vec::with_capacity(n);
    for _ in 0..n {
        programs.push(r.program(name_count)?);
    }
    let n = r.count(4)?;
    let anchor_programs = (0..n).map(|_| r.u32()).collect::<Result<Vec<u32>>>()?;
    if anchor_programs
        .iter()
        .any(|p| *p as usize >= programs.len())
    {
        return Err(CacheError::Corrupt("program index"));
    }
    let span_ok = |(a, b): (u32, u32)| a < b && b as usize <= anchor_programs.len();
    let n = r.count(12)?;
    let mut gram_entries = Vec::with_capacity(n);
    for _ in 0..n {
        let e = (r.u32()?, (r.u32()?, r.u32()?));
        if !span_ok(e.1) {
            return Err(CacheError::Corrupt("anchor span"));
        }
        gram_entries.push(e);
    }
    let n = r.count(16)?;
    let mut short = Vec::with_capacity(n);
    for _ in 0..n {
        let anchor = r.bytes()?.to_vec();
        let span = (r.u32()?, r.u32()?);
        if anchor.is_empty() || !span_ok(span) {
            return Err(CacheError::Corrupt("short anchor"));
        }
        short.push((anchor, span));
    }
    let n = r.count(12)?;
    let mut folded = Vec::with_capacity(n);
    for _ in 0..n {
        let e = (r.u32()?, (r.u32()?, r.u32()?));
        if !span_ok(e.1) {
            return Err(CacheError::Corrupt("folded anchor span"));
        }
        folded.push(e);
    }
    let n = r.count(16)?;
    let mut logical = LogicalDb::default();
    for _ in 0..n {
        let first_slot =
            u32::try_from(logical.slots()).map_err(|_| CacheError::Corrupt("counters"))?;
        logical.push(r.lsig(name_count, first_slot)?);
    }
    if programs
        .iter()
        .any(|p| p.slot != NO_SLOT && p.slot as usize >= logical.slots())
    {
        return Err(CacheError::Corrupt("subsignature counter"));
    }
    if r.pos != data.len() {
        return Err(CacheError::Corrupt("trailing bytes"));
    }
    CompiledDb::assemble(DbParts {
        signature_count,
        names,
        hashes,
        allow,
        sections,
        imports,
        programs,
        anchor_programs,
        gram_entries,
        short,
        folded,
        logical,
    })
    .map_err(|_| CacheError::Corrupt("anchors"))
}

// ---- the load report ---------------------------------------------------------

use aether_sigs::cvd::CvdHeader;
use aether_sigs::{DbFormat, FileReport, LoadReport};
use std::collections::BTreeMap;

/// Report keys are `&'static str` (kinds and reasons, a small fixed set);
/// decoded ones are interned so each distinct text is leaked once per
/// process, however often caches are read.
fn intern(s: &str) -> &'static str {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    static STRINGS: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut set = STRINGS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = set.get(s) {
        return s;
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    set.insert(leaked);
    leaked
}

impl<W: std::io::Write> Writer<W> {
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn counts(&mut self, m: &BTreeMap<&'static str, u64>) {
        self.u64(m.len() as u64);
        for (k, v) in m {
            self.str(k);
            self.u64(*v);
        }
    }
}

impl Reader<'_> {
    fn string(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| CacheError::Corrupt("text is not UTF-8"))
    }
    fn counts(&mut self) -> Result<BTreeMap<&'static str, u64>> {
        let n = self.count(16)?;
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let k = intern(&self.string()?);
            m.insert(k, self.u64()?);
        }
        Ok(m)
    }
}

/// Serializes a load report (appended after the database by the caller).
pub(crate) fn encode_report(report: &LoadReport) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::new(),
        error: None,
    };
    w.u64(report.files.len() as u64);
    for f in &report.files {
        w.str(&f.name);
        w.str(f.format.extension());
        w.counts(&f.by_kind);
        w.counts(&f.unsupported);
        w.u64(f.skipped_flevel);
        w.u64(f.ignored);
        match &f.cvd {
            None => w.u8(0),
            Some(h) => {
                w.u8(1);
                w.str(&h.build_time);
                w.u32(h.version);
                w.u32(h.sigs);
                w.u32(h.flevel);
                w.str(&h.md5);
                w.str(&h.dsig);
                w.str(&h.builder);
                w.u64(h.stime);
            }
        }
    }
    w.u64(report.notes.len() as u64);
    for n in &report.notes {
        w.str(n);
    }
    w.out
}

/// Decodes what [`encode_report`] wrote.
pub(crate) fn decode_report(data: &[u8]) -> Result<LoadReport> {
    let mut r = Reader { data, pos: 0 };
    let n = r.count(8)?;
    let mut files = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string()?;
        let ext = r.string()?;
        let format = DbFormat::from_name(&format!("x.{ext}"))
            .ok_or(CacheError::Corrupt("database format"))?;
        let by_kind = r.counts()?;
        let unsupported = r.counts()?;
        let skipped_flevel = r.u64()?;
        let ignored = r.u64()?;
        let cvd = match r.u8()? {
            0 => None,
            _ => Some(CvdHeader {
                build_time: r.string()?,
                version: r.u32()?,
                sigs: r.u32()?,
                flevel: r.u32()?,
                md5: r.string()?,
                dsig: r.string()?,
                builder: r.string()?,
                stime: r.u64()?,
            }),
        };
        files.push(FileReport {
            name,
            format,
            by_kind,
            unsupported,
            skipped_flevel,
            ignored,
            cvd,
        });
    }
    let n = r.count(8)?;
    let notes = (0..n)
        .map(|_| r.string())
        .collect::<Result<Vec<String>>>()?;
    if r.pos != data.len() {
        return Err(CacheError::Corrupt("trailing bytes after the report"));
    }
    Ok(LoadReport { files, notes })
}
