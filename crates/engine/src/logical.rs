//! Logical signatures (`.ldb`): subsignatures counted while a file is
//! scanned, an expression over the counts evaluated at its end.
//!
//! A hex subsignature compiles to an ordinary [`Program`] whose
//! [`slot`](Program::slot) names a counter instead of a detection, so the
//! anchors, the gram index and the verification are shared with body
//! signatures and a file pays nothing for subsignatures whose anchors it does
//! not contain. A match is counted as ClamAV's `lsig_sub_matched` counts it:
//! only when it starts after the last counted match of the same subsignature,
//! so each start offset counts once however many windows or spellings see it.
//!
//! At the end of a file, and only for the signatures that counted something
//! (plus the few whose expression holds with no match at all), byte-compare
//! subsignatures read their numbers, PCRE subsignatures whose trigger holds
//! run over the whole file, and the expression and the target description
//! decide. That is ClamAV's order: byte compares after the hex matching,
//! regexes after both, expressions last; target-specific signatures before
//! generic ones.

use aether_formats::FileType;
use aether_sigs::{
    ByteCompare, LogicExpr, LogicalSig, Offset, PcreFlags, Range, SubSig, TargetType, Unsupported,
};

use crate::names::NameId;
use crate::pattern::{self, Anchor, Program};
use crate::pcre::{self, MatchError, Regex};
use crate::recount::Chain;

/// No match counted yet (`CLI_OFF_NONE`).
pub(crate) const NO_OFFSET: u64 = u64::MAX;

/// ClamAV's default `--pcre-max-filesize`: regexes do not run on larger files.
pub(crate) const PCRE_MAX_FILESIZE: u64 = 100 << 20;

/// A condition on a file type in the target description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeCond {
    /// `CL_TYPE_ANY`: as `Container:`, no container at all; in `Intermediates:`, any type.
    Any,
    Is(FileType),
}

impl TypeCond {
    fn parse(name: &str) -> Result<TypeCond, Unsupported> {
        if name == "CL_TYPE_ANY" {
            return Ok(TypeCond::Any);
        }
        FileType::from_clamav_name(name)
            .map(TypeCond::Is)
            .ok_or(Unsupported(
                "logical signatures whose Container or Intermediates names a file type aether never assigns",
            ))
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            TypeCond::Any => "CL_TYPE_ANY",
            TypeCond::Is(t) => t.clamav_name(),
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<TypeCond> {
        TypeCond::parse(name).ok()
    }
}

/// A PCRE subsignature, compiled.
pub(crate) struct PcreSub {
    /// Its index among the signature's subsignatures.
    pub(crate) sub: u8,
    pub(crate) offset: Offset,
    pub(crate) trigger: LogicExpr,
    /// As written, kept for the compiled cache.
    pub(crate) source: String,
    pub(crate) flags: PcreFlags,
    pub(crate) regex: Regex,
}

impl PcreSub {
    pub(crate) fn new(
        sub: u8,
        offset: Offset,
        trigger: LogicExpr,
        source: &str,
        flags: PcreFlags,
    ) -> Result<PcreSub, Unsupported> {
        let regex = Regex::new(source, pcre::compile_options(&flags)).map_err(|_| {
            Unsupported(
                "PCRE subsignatures that PCRE2 does not compile (clamscan refuses the database)",
            )
        })?;
        Ok(PcreSub {
            sub,
            offset,
            trigger,
            source: source.to_string(),
            flags,
            regex,
        })
    }

    /// Runs the regex over the whole file as ClamAV's `cli_pcre_scanbuf`
    /// does, calling `hit` with the start of every match it counts; `offset`
    /// is the subsignature's offset as it lands in this file (see
    /// [`crate::exe_layout::FileLayout::resolve`]). Returns whether PCRE2's
    /// match or depth limit stopped a match (that attempt counts as no
    /// match, as in ClamAV).
    pub(crate) fn run(&self, offset: Offset, data: &[u8], mut hit: impl FnMut(u64)) -> bool {
        let len = data.len() as u64;
        // (start, shift), start None for `*`.
        let (start, shift) = match offset {
            Offset::Any => (None, 0),
            Offset::Absolute { at, shift } => (Some(at), shift),
            Offset::FromEnd { back, shift } => match len.checked_sub(back) {
                Some(at) => (Some(at), shift),
                None => return false,
            },
            _ => return false,
        };
        let options = if !self.flags.rolling && shift == 0 && start.is_some() {
            pcre::ANCHORED
        } else {
            0
        };
        let base = start.unwrap_or(0);
        if base >= len {
            return false;
        }
        let avail = len - base;
        let span = if self.flags.encompass && shift != 0 {
            shift.min(avail)
        } else {
            avail
        };
        // Both fit in memory: `data` is the file.
        let (base, span) = (base as usize, span as usize);
        let subject = &data[base..base + span];
        let mut from = 0usize;
        loop {
            let found = match self.regex.find_at(subject, from, options) {
                Ok(Some(m)) => m,
                Ok(None) => return false,
                Err(MatchError::Limit) => return true,
                Err(MatchError::Other(_)) => return false,
            };
            if !self.flags.encompass && shift != 0 && found.0 as u64 > shift {
                return false;
            }
            hit((base + found.0) as u64);
            // ClamAV goes on from the end of the match; an empty match would
            // loop there forever, so it stops (ClamAV runs into its time limit).
            if !self.flags.global || found.1 >= span || found.1 <= from {
                return false;
            }
            from = found.1;
        }
    }
}

/// One logical signature, compiled; its hex subsignatures are [`Program`]s.
pub(crate) struct Lsig {
    pub(crate) name: NameId,
    pub(crate) expr: LogicExpr,
    pub(crate) target: TargetType,
    pub(crate) file_size: Option<Range>,
    /// `EntryPoint` and `NumberOfSections` (see [`crate::exe_layout`]).
    pub(crate) entry_point: Option<Range>,
    pub(crate) number_of_sections: Option<Range>,
    pub(crate) container: Option<TypeCond>,
    pub(crate) intermediates: Vec<TypeCond>,
    /// Counter of subsignature `i`: `first_slot + i`.
    pub(crate) first_slot: u32,
    pub(crate) subsigs: u8,
    /// Byte-compare subsignatures with their index.
    pub(crate) bcomps: Vec<(u8, ByteCompare)>,
    pub(crate) pcres: Vec<PcreSub>,
    /// Hex subsignatures ClamAV matches in parts, recounted its way (see
    /// [`crate::recount`]).
    pub(crate) chains: Vec<Chain>,
}

impl Lsig {
    /// Its counters in `counts`.
    pub(crate) fn counts<'c>(&self, counts: &'c [u32]) -> &'c [u32] {
        let a = self.first_slot as usize;
        counts.get(a..a + usize::from(self.subsigs)).unwrap_or(&[])
    }

    /// Whether it must be looked at on files where none of its subsignatures
    /// matched: its expression, or a regex trigger, holds on zero counts.
    pub(crate) fn holds_on_nothing(&self) -> bool {
        self.expr.eval(&[]) || self.pcres.iter().any(|p| p.trigger.eval(&[]))
    }

    /// The target description's conditions besides the file type.
    pub(crate) fn description_holds(&self, size: u64, containers: &[FileType]) -> bool {
        if let Some(c) = self.container {
            let ok = match (c, containers.last()) {
                (TypeCond::Any, None) => true,
                (TypeCond::Is(t), Some(p)) => t == *p,
                _ => false,
            };
            if !ok {
                return false;
            }
        }
        if !self.intermediates.is_empty() {
            let n = self.intermediates.len();
            if containers.len() < n {
                return false;
            }
            // The last one named is the immediate container.
            let ok = self
                .intermediates
                .iter()
                .rev()
                .zip(containers.iter().rev())
                .all(|(want, have)| match want {
                    TypeCond::Any => true,
                    TypeCond::Is(t) => t == have,
                });
            if !ok {
                return false;
            }
        }
        self.file_size.is_none_or(|r| r.contains(size))
    }
}

/// Compiles a logical signature whose counters start at `first_slot`: the
/// signature, and its hex subsignatures as programs with their anchors.
#[allow(clippy::type_complexity)]
pub(crate) fn compile(
    sig: &LogicalSig<'_>,
    name: NameId,
    first_slot: u32,
) -> Result<(Lsig, Vec<(Program, Vec<Anchor>)>), Unsupported> {
    let t = &sig.tdb;
    if t.icon_group1.is_some() || t.icon_group2.is_some() {
        return Err(Unsupported(
            "logical signatures with IconGroup1/IconGroup2 (icon matching, .idb)",
        ));
    }
    if t.handler_type.is_some() {
        return Err(Unsupported(
            "logical signatures with HandlerType (rescan as another file type)",
        ));
    }
    let container = t.container.map(TypeCond::parse).transpose()?;
    let intermediates = t
        .intermediates
        .iter()
        .map(|n| TypeCond::parse(n))
        .collect::<Result<Vec<_>, _>>()?;
    let subsigs = u8::try_from(sig.subsigs.len())
        .map_err(|_| Unsupported("logical signatures with too many subsignatures"))?;
    let mut programs = Vec::new();
    let mut bcomps = Vec::new();
    let mut pcres = Vec::new();
    let mut chains = Vec::new();
    for (i, sub) in sig.subsigs.iter().enumerate() {
        let slot = first_slot + i as u32;
        let index = i as u8;
        match sub {
            SubSig::Hex(h) => {
                // Recounted only where the chain alone decides the count:
                // one form, offset anywhere.
                if h.ascii.is_none()
                    && h.offset == Offset::Any
                    && let Some(c) =
                        Chain::compile(&h.pattern, h.modifiers.nocase, h.modifiers.wide, name, slot)
                {
                    chains.push(c);
                }
                // The ascii variant of `::wa` is matched narrow.
                let forms = std::iter::once((&h.pattern, h.modifiers.wide))
                    .chain(h.ascii.as_ref().map(|p| (p, false)));
                for (pat, wide) in forms {
                    let (mut prog, anchors) = pattern::compile_pattern(
                        pat,
                        h.offset,
                        t.target,
                        h.modifiers.nocase,
                        wide,
                        name,
                    )
                    .map_err(|_| {
                        Unsupported("logical signatures with a hex subsignature without a static byte to anchor on")
                    })?;
                    prog.slot = slot;
                    programs.push((prog, anchors));
                }
            }
            SubSig::Pcre(p) => {
                pcres.push(PcreSub::new(
                    index,
                    p.offset,
                    p.trigger.clone(),
                    p.regex,
                    p.flags,
                )?);
            }
            SubSig::ByteCompare(b) => bcomps.push((index, b.clone())),
            SubSig::Macro { .. } => {
                return Err(Unsupported(
                    "logical signatures with macro subsignatures (${min-max}group$)",
                ));
            }
            SubSig::FuzzyImage { .. } => {
                return Err(Unsupported(
                    "logical signatures with fuzzy image hashes (fuzzy_img#)",
                ));
            }
        }
    }
    Ok((
        Lsig {
            name,
            expr: sig.expr.clone(),
            target: t.target,
            file_size: t.file_size,
            entry_point: t.entry_point,
            number_of_sections: t.number_of_sections,
            container,
            intermediates,
            first_slot,
            subsigs,
            bcomps,
            pcres,
            chains,
        },
        programs,
    ))
}

/// The compiled logical signatures.
#[derive(Default)]
pub(crate) struct LogicalDb {
    /// In load order.
    pub(crate) sigs: Vec<Lsig>,
    /// Counter → its signature.
    pub(crate) slot_sig: Vec<u32>,
    /// Signatures looked at on every file (see [`Lsig::holds_on_nothing`]).
    pub(crate) always: Vec<u32>,
}

impl LogicalDb {
    /// Adds a compiled signature (its counters must be the next ones).
    pub(crate) fn push(&mut self, sig: Lsig) {
        let id = self.sigs.len() as u32;
        debug_assert_eq!(sig.first_slot as usize, self.slot_sig.len());
        self.slot_sig
            .extend(std::iter::repeat_n(id, usize::from(sig.subsigs)));
        if sig.holds_on_nothing() {
            self.always.push(id);
        }
        self.sigs.push(sig);
    }

    pub(crate) fn slots(&self) -> usize {
        self.slot_sig.len()
    }
}

/// Per-scan counters of one scanner.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) counts: Vec<u32>,
    /// Start of the last counted match per counter, [`NO_OFFSET`] when none.
    pub(crate) last: Vec<u64>,
    /// Signatures with a counter above zero, each once.
    pub(crate) touched: Vec<u32>,
    marked: Vec<bool>,
}

impl Counters {
    pub(crate) fn new(db: &LogicalDb) -> Counters {
        Counters {
            counts: vec![0; db.slots()],
            last: vec![NO_OFFSET; db.slots()],
            touched: Vec::new(),
            marked: vec![false; db.sigs.len()],
        }
    }

    fn mark(&mut self, db: &LogicalDb, slot: usize) {
        let l = db.slot_sig[slot] as usize;
        if !self.marked[l] {
            self.marked[l] = true;
            self.touched.push(l as u32);
        }
    }

    /// A match of counter `slot` starting at `start`: counted unless it does
    /// not start after the last one counted. Counts saturate, so millions of
    /// matches cost no memory.
    #[inline]
    pub(crate) fn hit(&mut self, db: &LogicalDb, slot: u32, start: u64) {
        let s = slot as usize;
        let last = self.last[s];
        if last != NO_OFFSET && start <= last {
            return;
        }
        self.counts[s] = self.counts[s].saturating_add(1);
        self.last[s] = start;
        self.mark(db, s);
    }

    /// Replaces counter `slot` with a count made over the whole file (see
    /// [`crate::recount`]) and the offset of its last counted match.
    pub(crate) fn recount(&mut self, db: &LogicalDb, slot: u32, count: u32, last: Option<u64>) {
        let s = slot as usize;
        self.counts[s] = count;
        self.last[s] = last.unwrap_or(NO_OFFSET);
        if count > 0 {
            self.mark(db, s);
        }
    }

    /// A byte-compare success: counted without an offset, as in ClamAV.
    pub(crate) fn bump(&mut self, db: &LogicalDb, slot: u32) {
        let s = slot as usize;
        self.counts[s] = self.counts[s].saturating_add(1);
        self.mark(db, s);
    }

    /// Clears what the last scan counted.
    pub(crate) fn reset(&mut self, db: &LogicalDb) {
        for l in self.touched.drain(..) {
            let sig = &db.sigs[l as usize];
            let a = sig.first_slot as usize;
            let b = a + usize::from(sig.subsigs);
            self.counts[a..b].iter_mut().for_each(|c| *c = 0);
            self.last[a..b].iter_mut().for_each(|c| *c = NO_OFFSET);
            self.marked[l as usize] = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcre(regex: &str, offset: Offset, flags: PcreFlags) -> PcreSub {
        let trigger = LogicExpr::parse("0").expect("trigger");
        PcreSub::new(1, offset, trigger, regex, flags).expect("compiles")
    }

    fn starts(p: &PcreSub, data: &[u8]) -> Vec<u64> {
        let mut v = Vec::new();
        p.run(p.offset, data, |s| v.push(s));
        v
    }

    #[test]
    fn pcre_offsets_and_flags() {
        let g = PcreFlags {
            global: true,
            ..PcreFlags::default()
        };
        let data = b"xxabcxxabcxx";
        assert_eq!(starts(&pcre("abc", Offset::Any, g), data), vec![2, 7]);
        assert_eq!(
            starts(&pcre("abc", Offset::Any, PcreFlags::default()), data),
            vec![2]
        );
        // An exact offset anchors the match there.
        let at = |at| Offset::Absolute { at, shift: 0 };
        assert_eq!(starts(&pcre("abc", at(2), g), data), vec![2]);
        assert!(starts(&pcre("abc", at(1), g), data).is_empty());
        // Rolling: from the offset on.
        let r = PcreFlags { rolling: true, ..g };
        assert_eq!(starts(&pcre("abc", at(1), r), data), vec![2, 7]);
        // A shift bounds where a match may start.
        let shifted = Offset::Absolute { at: 0, shift: 3 };
        assert_eq!(
            starts(&pcre("abc", shifted, PcreFlags::default()), data),
            vec![2]
        );
        let shifted = Offset::Absolute { at: 3, shift: 3 };
        assert!(starts(&pcre("abc", shifted, PcreFlags::default()), data).is_empty());
        // Encompass: the match must fit in offset..offset+shift.
        let e = PcreFlags {
            encompass: true,
            ..PcreFlags::default()
        };
        let window = Offset::Absolute { at: 6, shift: 4 };
        assert_eq!(starts(&pcre("abc", window, e), data), vec![7]);
        let window = Offset::Absolute { at: 6, shift: 3 };
        assert!(starts(&pcre("abc", window, e), data).is_empty());
        // Empty matches do not loop.
        assert_eq!(starts(&pcre("z*", Offset::Any, g), data), vec![0]);
    }

    #[test]
    fn counts_distinct_starts() {
        let mut db = LogicalDb::default();
        db.push(Lsig {
            name: NameId(0),
            expr: LogicExpr::parse("0").expect("expr"),
            target: TargetType::Any,
            file_size: None,
            entry_point: None,
            number_of_sections: None,
            container: None,
            intermediates: Vec::new(),
            first_slot: 0,
            subsigs: 1,
            bcomps: Vec::new(),
            pcres: Vec::new(),
            chains: Vec::new(),
        });
        let mut c = Counters::new(&db);
        for start in [5, 5, 3, 9] {
            c.hit(&db, 0, start);
        }
        assert_eq!(c.counts[0], 2);
        assert_eq!(c.touched, vec![0]);
        c.reset(&db);
        assert_eq!((c.counts[0], c.last[0]), (0, NO_OFFSET));
        assert!(c.touched.is_empty());
    }
}
