//! Body signatures compiled for matching: an element list and an anchor.
//!
//! The anchor is the most selective run of exact bytes in the pattern; the
//! Aho-Corasick automaton looks only for anchors, and [`crate::verify`] checks
//! the whole pattern around each anchor hit, forwards and backwards from it.

use aether_sigs::{
    BodySig, ByteMatch, CharClass, HexPattern, Offset, TargetType, Token, Unsupported,
};

use crate::names::NameId;

/// [`Program::slot`] of a body signature: a match is a detection.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// Anchor length: the gram index finds 4-byte anchors (see [`crate::grams`]);
/// shorter ones are the exception.
pub(crate) const MAX_ANCHOR: usize = 4;

/// Unbounded gap length. Gap bounds are `u32` as in ClamAV; a bound of
/// `u32::MAX` itself is refused at compile time (see [`gap_of`]).
pub(crate) const UNBOUNDED: u32 = u32::MAX;

/// One pattern position. A million of these stay resident for a large
/// database, so an element is 4 bytes: what does not fit (gap bounds,
/// alternatives) lives in its [`Program`]'s [`Side`] tables, found by a
/// `u16` index. ClamAV too counts a pattern's specials and parts in
/// `uint16_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Elem {
    Byte(ByteMatch),
    /// One of the branches of the program's alternative `i` (see
    /// [`Program::branches`]); their lengths may differ.
    Alt(u16),
    /// As many bytes as each branch of the program's alternative `i` (all of
    /// one length), equal to none of them.
    NegAlt(u16),
    /// A character class inside the pattern: consumes its byte(s).
    Class {
        class: CharClass,
        negated: bool,
    },
    /// The program's gap `i` (see [`Program::gap`]).
    Gap(u16),
}

const _: () = assert!(std::mem::size_of::<Elem>() <= 4);

/// `min..=max` arbitrary bytes; `max == UNBOUNDED` for `*` and `{n-}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gap {
    pub(crate) min: u32,
    pub(crate) max: u32,
}

/// The branches of one alternative, `(aa|bb|cc)`, end to end in one
/// allocation, each after a header element holding its length (`value` the
/// low byte, `mask` the high one): most branches are a byte or two, and a box
/// for each would cost more than its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AltSet(Box<[ByteMatch]>);

impl AltSet {
    /// `None` for a branch of more than 65535 bytes (ClamAV's limit too).
    pub(crate) fn new<B: AsRef<[ByteMatch]>>(branches: &[B]) -> Option<AltSet> {
        let mut flat = Vec::with_capacity(branches.iter().map(|b| b.as_ref().len() + 1).sum());
        for b in branches {
            let b = b.as_ref();
            let [value, mask] = u16::try_from(b.len()).ok()?.to_le_bytes();
            flat.push(ByteMatch { value, mask });
            flat.extend_from_slice(b);
        }
        Some(AltSet(flat.into_boxed_slice()))
    }

    pub(crate) fn branches(&self) -> BranchIter<'_> {
        BranchIter(&self.0)
    }
}

/// The branches of an [`AltSet`], in order.
#[derive(Clone)]
pub(crate) struct BranchIter<'a>(&'a [ByteMatch]);

impl<'a> Iterator for BranchIter<'a> {
    type Item = &'a [ByteMatch];

    fn next(&mut self) -> Option<&'a [ByteMatch]> {
        let (head, rest) = self.0.split_first()?;
        let len = usize::from(u16::from_le_bytes([head.value, head.mask]));
        let (branch, rest) = rest.split_at_checked(len)?;
        self.0 = rest;
        Some(branch)
    }
}

/// A program's gaps and alternatives, in pattern order; boxed apart from
/// the program, since most programs have neither.
#[derive(Debug, Clone)]
pub(crate) struct Side {
    gaps: Box<[Gap]>,
    alts: Box<[AltSet]>,
}

/// A [`Side`] being filled, element by element.
#[derive(Default)]
pub(crate) struct SideBuilder {
    pub(crate) gaps: Vec<Gap>,
    pub(crate) alts: Vec<AltSet>,
}

impl SideBuilder {
    /// The boxed form a [`Program`] holds: `None` when empty.
    pub(crate) fn finish(self) -> Option<Box<Side>> {
        if self.gaps.is_empty() && self.alts.is_empty() {
            return None;
        }
        Some(Box::new(Side {
            gaps: self.gaps.into_boxed_slice(),
            alts: self.alts.into_boxed_slice(),
        }))
    }
}

/// A zero-width check just outside the match: `(B)`, `(L)` or `(W)` at an
/// end, in one byte (an `Option<Edge>` too): bits 0-1 the class, bit 2
/// negated, bit 3 wide, bit 7 always set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Edge(std::num::NonZeroU8);

impl Edge {
    /// `wide`: the `(W)` of a wide (`::wf`) subsignature, which looks at the
    /// UTF-16 unit next to the match (a letter or digit followed by a zero
    /// byte).
    pub(crate) fn new(class: CharClass, negated: bool, wide: bool) -> Edge {
        let c = match class {
            CharClass::Boundary => 0,
            CharClass::Line => 1,
            CharClass::NonAlnum => 2,
        };
        // Bit 7 makes every edge nonzero, leaving zero for `None`.
        const MARK: std::num::NonZeroU8 = std::num::NonZeroU8::new(0x80).unwrap();
        Edge(MARK | c | u8::from(negated) << 2 | u8::from(wide) << 3)
    }

    pub(crate) fn class(self) -> CharClass {
        match self.0.get() & 3 {
            0 => CharClass::Boundary,
            1 => CharClass::Line,
            _ => CharClass::NonAlnum,
        }
    }

    pub(crate) fn negated(self) -> bool {
        self.0.get() & 4 != 0
    }

    pub(crate) fn wide(self) -> bool {
        self.0.get() & 8 != 0
    }
}

/// A compiled body signature. Lengths are `u32`: a pattern spanning 4 GiB
/// or more is refused at compile time.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    pub(crate) elems: Box<[Elem]>,
    /// What `Elem::Gap`, `Elem::Alt` and `Elem::NegAlt` refer to.
    pub(crate) side: Option<Box<Side>>,
    pub(crate) left: Option<Edge>,
    pub(crate) right: Option<Edge>,
    pub(crate) offset: Offset,
    pub(crate) target: TargetType,
    pub(crate) name: NameId,
    /// [`NO_SLOT`] for a body signature; for a subsignature of a logical
    /// signature, the counter its matches go to (see [`crate::logical`]).
    pub(crate) slot: u32,
    /// Index in `elems` of the anchor's first byte.
    pub(crate) anchor_at: u32,
    /// At most [`MAX_ANCHOR`].
    pub(crate) anchor_len: u8,
    /// The anchor is the whole pattern: a hit is a match (offset aside).
    pub(crate) anchor_is_pattern: bool,
    /// Bytes from the pattern's start to the anchor's start: shortest, longest.
    pub(crate) back: (u32, u32),
    /// Bytes from the anchor's start to the pattern's end: longest.
    pub(crate) fwd_max: u32,
}

impl Program {
    /// `elems` indices of the anchor.
    pub(crate) fn anchor(&self) -> std::ops::Range<usize> {
        let at = self.anchor_at as usize;
        at..at + usize::from(self.anchor_len)
    }

    /// The gap an element refers to; `None` for an index past the table,
    /// which compile and the cache loader never produce.
    pub(crate) fn gap(&self, i: u16) -> Option<Gap> {
        self.side.as_ref()?.gaps.get(usize::from(i)).copied()
    }

    /// The branches an element refers to (none past the table).
    pub(crate) fn branches(&self, i: u16) -> BranchIter<'_> {
        self.side
            .as_ref()
            .and_then(|s| s.alts.get(usize::from(i)))
            .map_or(BranchIter(&[]), AltSet::branches)
    }

    /// The length of a negated alternative: every branch has it.
    pub(crate) fn neg_len(&self, i: u16) -> usize {
        self.branches(i).next().map_or(0, |b| b.len())
    }

    /// (shortest, longest) number of bytes an element of this program
    /// consumes; `UNBOUNDED` as the longest for an unbounded gap.
    pub(crate) fn len_range(&self, e: &Elem) -> (u32, u32) {
        let len = |n: usize| u32::try_from(n).unwrap_or(UNBOUNDED);
        match *e {
            Elem::Byte(_) => (1, 1),
            Elem::Alt(i) => {
                let lens = self.branches(i).map(|b| len(b.len()));
                (lens.clone().min().unwrap_or(0), lens.max().unwrap_or(0))
            }
            Elem::NegAlt(i) => (len(self.neg_len(i)), len(self.neg_len(i))),
            Elem::Class {
                class: CharClass::Line,
                negated: false,
            } => (1, 2),
            Elem::Class { .. } => (1, 1),
            Elem::Gap(i) => self.gap(i).map_or((0, UNBOUNDED), |g| (g.min, g.max)),
        }
    }

    /// Bytes `elems[range]` may span: shortest and longest, `UNBOUNDED` for
    /// no limit; `None` when a finite bound reaches 4 GiB.
    pub(crate) fn span(&self, elems: &[Elem]) -> Option<(u32, u32)> {
        let (mut lo, mut hi) = (0u64, 0u64);
        for e in elems {
            let (a, b) = self.len_range(e);
            lo += u64::from(a);
            hi = if b == UNBOUNDED || hi == u64::MAX {
                u64::MAX
            } else {
                hi + u64::from(b)
            };
        }
        let lo = u32::try_from(lo).ok().filter(|v| *v != UNBOUNDED)?;
        let hi = match hi {
            u64::MAX => UNBOUNDED,
            h => u32::try_from(h).ok().filter(|v| *v != UNBOUNDED)?,
        };
        Some((lo, hi))
    }

    /// Fills `back`, `fwd_max` and `anchor_is_pattern` from the elements and
    /// the anchor; `None` when the pattern spans 4 GiB or more or the anchor
    /// lies outside it.
    pub(crate) fn measure(&mut self) -> Option<()> {
        let anchor = self.anchor();
        let before = self.elems.get(..anchor.start)?;
        let after = self.elems.get(anchor.start..)?;
        self.back = self.span(before)?;
        self.fwd_max = self.span(after)?.1;
        self.anchor_is_pattern =
            anchor.len() == self.elems.len() && self.left.is_none() && self.right.is_none();
        Some(())
    }
}

/// A parsed gap as compiled: `u32::MAX` is the marker for "no maximum", so a
/// bound of exactly that is refused rather than read as unbounded.
fn gap_of(min: u32, max: Option<u32>) -> Result<Gap, Unsupported> {
    if min == UNBOUNDED || max == Some(UNBOUNDED) {
        return Err(Unsupported("gaps of 4 GiB or more"));
    }
    Ok(Gap {
        min,
        max: max.unwrap_or(UNBOUNDED),
    })
}

/// Adjacent gaps merged: `{2}*` is one gap.
fn merge_gaps(a: Gap, b: Gap) -> Result<Gap, Unsupported> {
    let max = if a.max == UNBOUNDED || b.max == UNBOUNDED {
        None
    } else {
        Some(
            a.max
                .checked_add(b.max)
                .ok_or(Unsupported("gaps of 4 GiB or more"))?,
        )
    };
    let min = a
        .min
        .checked_add(b.min)
        .ok_or(Unsupported("gaps of 4 GiB or more"))?;
    gap_of(min, max)
}

/// The next side-table index: ClamAV counts a pattern's specials in 16 bits.
fn side_index(len: usize) -> Result<u16, Unsupported> {
    u16::try_from(len).map_err(|_| Unsupported("more than 65536 gaps or alternatives in a pattern"))
}

/// Lowers a parsed signature into a [`Program`] and its anchor bytes.
pub(crate) fn compile(sig: &BodySig<'_>, name: NameId) -> Result<(Program, Vec<u8>), Unsupported> {
    let (prog, mut anchors) =
        compile_pattern(&sig.pattern, sig.offset, sig.target, false, false, name)?;
    // Without `nocase` the anchor has exactly one spelling.
    let anchor = anchors.pop().map(|a| a.bytes).unwrap_or_default();
    Ok((prog, anchor))
}

/// A letter matched in either case (`::i`): bit 5 is the only difference.
fn fold(m: ByteMatch) -> ByteMatch {
    if m.is_exact() && m.value.is_ascii_alphabetic() {
        ByteMatch {
            value: m.value.to_ascii_uppercase(),
            mask: 0xdf,
        }
    } else {
        m
    }
}

/// A byte an anchor may hold: exact, or a letter in either case.
pub(crate) fn anchorable(m: ByteMatch) -> bool {
    m.is_exact() || (m.mask == 0xdf && m.value.is_ascii_uppercase())
}

/// How a program's anchor is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub(crate) bytes: Vec<u8>,
    /// `bytes` is a 4-byte anchor with bit 5 of every byte set, found by the
    /// case-folded gram index (see [`crate::grams::fold`]); the anchor's own
    /// bytes must be checked again on a hit.
    pub(crate) folded: bool,
}

/// Lowers a hex pattern into a [`Program`] and how to find its anchor: one
/// spelling, or for a `nocase` anchor of four bytes its folded form, or for a
/// shorter `nocase` anchor every spelling (each letter in both cases). `wide`:
/// the pattern is a `::w` subsignature, whose `(W)` edges look at UTF-16 units.
pub(crate) fn compile_pattern(
    pattern: &HexPattern,
    offset: Offset,
    target: TargetType,
    nocase: bool,
    wide: bool,
    name: NameId,
) -> Result<(Program, Vec<Anchor>), Unsupported> {
    let fold_all = |b: &[ByteMatch]| -> Box<[ByteMatch]> {
        b.iter()
            .map(|m| if nocase { fold(*m) } else { *m })
            .collect()
    };
    let mut tokens: &[Token] = &pattern.tokens;
    let mut left = None;
    let mut right = None;
    if let Some((Token::Class { class, negated }, rest)) = tokens.split_first() {
        left = Some(Edge::new(
            *class,
            *negated,
            wide && *class == CharClass::NonAlnum,
        ));
        tokens = rest;
    }
    if let Some((Token::Class { class, negated }, rest)) = tokens.split_last() {
        right = Some(Edge::new(
            *class,
            *negated,
            wide && *class == CharClass::NonAlnum,
        ));
        tokens = rest;
    }
    let mut elems = Vec::with_capacity(tokens.len());
    let mut side = SideBuilder::default();
    let alt_set = |branches: &[Vec<ByteMatch>]| {
        AltSet::new(&branches.iter().map(|b| fold_all(b)).collect::<Vec<_>>())
            .ok_or(Unsupported("alternatives longer than 65535 bytes"))
    };
    for t in tokens {
        let e = match t {
            Token::Byte(b) => Elem::Byte(if nocase { fold(*b) } else { *b }),
            Token::Gap { min, max } => {
                let gap = gap_of(*min, *max)?;
                // Merge adjacent gaps: `{2}*` is one gap.
                if let (Some(Elem::Gap(_)), Some(last)) = (elems.last(), side.gaps.last_mut()) {
                    *last = merge_gaps(*last, gap)?;
                    continue;
                }
                side.gaps.push(gap);
                Elem::Gap(side_index(side.gaps.len() - 1)?)
            }
            Token::Alt {
                branches,
                negated: false,
            } => {
                side.alts.push(alt_set(branches)?);
                Elem::Alt(side_index(side.alts.len() - 1)?)
            }
            Token::Alt {
                branches,
                negated: true,
            } => {
                let len = branches.first().map_or(0, |b| b.len());
                if branches.iter().any(|b| b.len() != len) {
                    return Err(Unsupported("negated alternatives of different lengths"));
                }
                side.alts.push(alt_set(branches)?);
                Elem::NegAlt(side_index(side.alts.len() - 1)?)
            }
            Token::Class { class, negated } => Elem::Class {
                class: *class,
                negated: *negated,
            },
        };
        elems.push(e);
    }
    let (anchor_at, anchor_len) = best_anchor(&elems).ok_or(Unsupported(
        "body signatures without a static byte to anchor on",
    ))?;
    let anchor_elems = &elems[anchor_at..anchor_at + anchor_len];
    let any_folded = anchor_elems
        .iter()
        .any(|e| matches!(e, Elem::Byte(m) if !m.is_exact()));
    // Every spelling of the anchor: a folded letter doubles them. Four-byte
    // anchors go to the folded index instead, as one entry.
    let mut anchors: Vec<Vec<u8>> = vec![Vec::with_capacity(anchor_len)];
    for e in anchor_elems {
        let m = match e {
            Elem::Byte(m) => *m,
            _ => ByteMatch::exact(0),
        };
        if m.is_exact() {
            anchors.iter_mut().for_each(|a| a.push(m.value));
        } else {
            let lower: Vec<Vec<u8>> = anchors
                .iter()
                .map(|a| {
                    let mut a = a.clone();
                    a.push(m.value.to_ascii_lowercase());
                    a
                })
                .collect();
            anchors.iter_mut().for_each(|a| a.push(m.value));
            anchors.extend(lower);
        }
    }
    let anchors: Vec<Anchor> = if any_folded && anchor_len == MAX_ANCHOR {
        let bytes = anchors
            .first()
            .map(|a| a.iter().map(|b| b | 0x20).collect())
            .unwrap_or_default();
        vec![Anchor {
            bytes,
            folded: true,
        }]
    } else {
        anchors
            .into_iter()
            .map(|bytes| Anchor {
                bytes,
                folded: false,
            })
            .collect()
    };
    let too_long = Unsupported("patterns of 4 GiB or more");
    let mut prog = Program {
        elems: elems.into_boxed_slice(),
        side: side.finish(),
        left,
        right,
        offset,
        target,
        name,
        slot: NO_SLOT,
        anchor_at: u32::try_from(anchor_at).map_err(|_| too_long)?,
        // best_anchor returns at most MAX_ANCHOR bytes.
        anchor_len: u8::try_from(anchor_len).map_err(|_| too_long)?,
        anchor_is_pattern: false,
        back: (0, 0),
        fwd_max: 0,
    };
    prog.measure().ok_or(too_long)?;
    Ok((prog, anchors))
}

/// How much a byte tells about a position: zeros and padding bytes are common
/// in every file, so anchors avoid them when they can.
fn byte_weight(b: u8, prev: Option<u8>) -> f32 {
    let w = match b {
        0x00 => 0.25,
        0xff => 0.5,
        0x20 | 0x0a | 0x0d | 0x90 | 0xcc => 0.6,
        b if b.is_ascii_alphanumeric() => 0.9,
        _ => 1.0,
    };
    if prev == Some(b) { w * 0.5 } else { w }
}

/// The best window of at most [`MAX_ANCHOR`] consecutive exact bytes.
fn best_anchor(elems: &[Elem]) -> Option<(usize, usize)> {
    let exact = |e: &Elem| matches!(e, Elem::Byte(b) if anchorable(*b));
    let byte = |e: &Elem| match e {
        Elem::Byte(b) => b.value,
        _ => 0,
    };
    let mut best: Option<(f32, usize, usize)> = None;
    let mut i = 0;
    while i < elems.len() {
        if !exact(&elems[i]) {
            i += 1;
            continue;
        }
        let run_start = i;
        while i < elems.len() && exact(&elems[i]) {
            i += 1;
        }
        let run = run_start..i;
        let len = run.len().min(MAX_ANCHOR);
        for start in run.start..=run.end - len {
            let mut score = 0.0;
            let mut prev = None;
            for e in &elems[start..start + len] {
                let b = byte(e);
                score += byte_weight(b, prev);
                prev = Some(b);
            }
            if best.is_none_or(|(s, _, l)| score > s || (score == s && len > l)) {
                best = Some((score, start, len));
            }
        }
    }
    best.map(|(_, start, len)| (start, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aether_sigs::HexPattern;

    fn compiled(tokens: Vec<Token>) -> Result<Program, Unsupported> {
        let sig = BodySig {
            name: "t",
            target: TargetType::Any,
            offset: Offset::Any,
            pattern: HexPattern { tokens },
        };
        compile(&sig, NameId(0)).map(|(p, _)| p)
    }

    fn byte(b: u8) -> Token {
        Token::Byte(ByteMatch::exact(b))
    }

    #[test]
    fn anchor_prefers_rare_bytes() {
        let mut elems: Vec<Elem> = [0u8, 0, 0, 0]
            .iter()
            .map(|b| Elem::Byte(ByteMatch::exact(*b)))
            .collect();
        elems.push(Elem::Gap(0));
        elems.extend(b"MZ".iter().map(|b| Elem::Byte(ByteMatch::exact(*b))));
        assert_eq!(best_anchor(&elems), Some((5, 2)));
    }

    #[test]
    fn adjacent_gaps_merge() {
        let t = vec![
            byte(1),
            Token::Gap {
                min: 2,
                max: Some(2),
            },
            Token::Gap { min: 0, max: None },
            byte(2),
            Token::Gap {
                min: 1,
                max: Some(3),
            },
            Token::Gap {
                min: 4,
                max: Some(5),
            },
            byte(3),
        ];
        let p = compiled(t).expect("compiles");
        assert_eq!(p.elems.len(), 5);
        assert_eq!(p.elems[1], Elem::Gap(0));
        assert_eq!(p.elems[3], Elem::Gap(1));
        assert_eq!(
            (p.gap(0), p.gap(1), p.gap(2)),
            (
                Some(Gap {
                    min: 2,
                    max: UNBOUNDED
                }),
                Some(Gap { min: 5, max: 8 }),
                None
            )
        );
    }

    #[test]
    fn alternatives_live_in_the_side_table() {
        let alt = |branches: &[&[u8]], negated| Token::Alt {
            branches: branches
                .iter()
                .map(|b| b.iter().map(|v| ByteMatch::exact(*v)).collect())
                .collect(),
            negated,
        };
        let t = vec![
            alt(&[b"a", b"bc"], false),
            byte(1),
            byte(2),
            alt(&[b"x", b"y"], true),
        ];
        let p = compiled(t).expect("compiles");
        assert_eq!(p.elems[0], Elem::Alt(0));
        assert_eq!(p.elems[3], Elem::NegAlt(1));
        assert_eq!(p.len_range(&p.elems[0]), (1, 2));
        assert_eq!(p.len_range(&p.elems[3]), (1, 1));
        assert_eq!(p.neg_len(1), 1);
        let branches: Vec<Vec<u8>> = p
            .branches(0)
            .map(|b| b.iter().map(|m| m.value).collect())
            .collect();
        assert_eq!(branches, [b"a".to_vec(), b"bc".to_vec()]);
        assert_eq!(p.branches(2).count(), 0);
        assert_eq!((p.anchor(), p.back, p.fwd_max), (1..3, (1, 2), 3));
    }

    #[test]
    fn gaps_of_4_gib_are_refused_not_unbounded() {
        let gap = |min, max| Token::Gap { min, max };
        let with = |g: Vec<Token>| {
            let mut t = vec![byte(1)];
            t.extend(g);
            t.push(byte(2));
            compiled(t).map(|p| (p.back, p.fwd_max))
        };
        // The longest bounded pattern is kept as it is (anchored on its
        // first byte: 1 + gap + 1 bytes from there).
        assert_eq!(
            with(vec![gap(0, Some(u32::MAX - 3))]),
            Ok(((0, 0), u32::MAX - 1))
        );
        assert!(with(vec![gap(0, Some(u32::MAX))]).is_err());
        assert!(with(vec![gap(u32::MAX, None)]).is_err());
        // Merged, or summed over the pattern, past the limit.
        assert!(with(vec![gap(3, Some(u32::MAX - 2)), gap(0, Some(3))]).is_err());
        assert!(with(vec![gap(u32::MAX - 1, None), gap(1, None)]).is_err());
        assert!(with(vec![gap(0, Some(u32::MAX - 2)), byte(3), gap(0, Some(9))]).is_err());
        // As written in a database line.
        let parsed = |hex: &str| {
            let pattern = HexPattern::parse(hex).expect("parses");
            compile_pattern(
                &pattern,
                Offset::Any,
                TargetType::Any,
                false,
                false,
                NameId(0),
            )
            .map(|(p, _)| p.fwd_max)
        };
        // A written bound is at most i32::MAX (as ClamAV's `int`); two of
        // them reach 4 GiB.
        assert_eq!(
            parsed("4142{2147483647}4344{2147483640}4546"),
            Ok(u32::MAX - 2)
        );
        assert_eq!(
            parsed("4142{2147483647}4344{2147483647}4546"),
            Err(Unsupported("patterns of 4 GiB or more"))
        );
        // Unbounded stays unbounded.
        assert_eq!(
            with(vec![gap(7, None), gap(0, Some(9))]),
            Ok(((0, 0), UNBOUNDED))
        );
    }

    #[test]
    fn programs_stay_packed() {
        // 50,000 body signatures keep one each for the daemon's life.
        assert!(
            std::mem::size_of::<Program>() <= 80,
            "{}",
            std::mem::size_of::<Program>()
        );
    }

    #[test]
    fn edges_keep_their_parts_in_a_byte() {
        assert_eq!(std::mem::size_of::<Option<Edge>>(), 1);
        for class in [CharClass::Boundary, CharClass::Line, CharClass::NonAlnum] {
            for negated in [false, true] {
                for wide in [false, true] {
                    let e = Edge::new(class, negated, wide);
                    assert_eq!((e.class(), e.negated(), e.wide()), (class, negated, wide));
                }
            }
        }
    }

    #[test]
    fn alt_set_round_trips_long_and_empty_branches() {
        let long = vec![ByteMatch::exact(7); 300];
        let set = AltSet::new(&[long.clone(), vec![], vec![ByteMatch::ANY]]).expect("fits");
        let got: Vec<&[ByteMatch]> = set.branches().collect();
        assert_eq!(got, [&long[..], &[][..], &[ByteMatch::ANY][..]]);
        assert!(AltSet::new(&[vec![ByteMatch::ANY; 65536]]).is_none());
    }

    #[test]
    fn programs_without_gaps_or_alternatives_have_no_side_table() {
        let p = compiled(vec![byte(1), byte(2), byte(3)]).expect("compiles");
        assert!(p.side.is_none());
        assert_eq!((p.anchor(), p.back, p.fwd_max), (0..3, (0, 0), 3));
        assert!(p.anchor_is_pattern);
    }

    #[test]
    fn no_static_byte_is_unsupported() {
        let sig = BodySig {
            name: "t",
            target: TargetType::Any,
            offset: Offset::Any,
            pattern: HexPattern {
                tokens: vec![Token::Byte(ByteMatch::ANY), Token::Byte(ByteMatch::ANY)],
            },
        };
        assert!(compile(&sig, NameId(0)).is_err());
    }
}
