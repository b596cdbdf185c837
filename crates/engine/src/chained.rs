//! Verifying a pattern with unbounded gaps (`*`, `{n-}`) without holding the
//! bytes between its parts.
//!
//! [`crate::verify`] checks a pattern on bytes in memory. When a check runs
//! into the edge of the scan window, the scanner reads the range the pattern
//! may span and checks again; for a pattern with `*` that range runs to the
//! file's start or end, which for a large file meant a buffer as large as the
//! file (1 GB for the 1.2 GB archive of `bench/archive_bench.sh`) and reading
//! it again for every such anchor hit.
//!
//! An unbounded gap needs no bytes held: `S0 * S1 * S2` matches exactly when
//! each bounded segment occurs after the one before it. So the segments are
//! searched for in windows of bounded size: from the anchor forwards, each
//! next segment's *earliest end* (which leaves the most room for the rest);
//! backwards, each previous segment's *latest start*; the first segment's
//! start must also satisfy the offset and the left edge. Each run inside a
//! segment is [`crate::verify`]'s own, so `(B)`, alternatives and bounded gaps
//! behave as in a whole-buffer check, and the step budget is shared.

use aether_sigs::Offset;
use memchr::memmem;

use crate::pattern::{Elem, Program, UNBOUNDED};
use crate::scanner::ScanError;
use crate::verify::{self, Hay, VerifyScratch};

/// Bytes read on each side of a segment for edge checks (`(W)` looks at two).
const MARGIN: u64 = 4;

/// A bounded run of elements between unbounded gaps.
#[derive(Debug)]
struct Segment {
    /// `elems[lo..hi]`.
    lo: usize,
    hi: usize,
    min_len: u64,
    max_len: u64,
    /// The least number of bytes of the unbounded gap before it (0 for the
    /// first segment).
    gap: u64,
}

fn segments(prog: &Program) -> Vec<Segment> {
    let mut out = Vec::new();
    let (mut lo, mut gap, mut min_len, mut max_len) = (0, 0u64, 0u64, 0u64);
    for (i, e) in prog.elems.iter().enumerate() {
        match (e, prog.len_range(e)) {
            (Elem::Gap(_), (min, UNBOUNDED)) => {
                out.push(Segment {
                    lo,
                    hi: i,
                    min_len,
                    max_len,
                    gap,
                });
                (lo, gap, min_len, max_len) = (i + 1, u64::from(min), 0, 0);
            }
            (_, (a, b)) => {
                min_len += u64::from(a);
                max_len = max_len.saturating_add(u64::from(b));
            }
        }
    }
    out.push(Segment {
        lo,
        hi: prog.elems.len(),
        min_len,
        max_len,
        gap,
    });
    out
}

/// Whether `prog` has an unbounded gap, the only kind of pattern this module
/// is for.
pub(crate) fn has_unbounded_gap(prog: &Program) -> bool {
    prog.elems
        .iter()
        .any(|e| matches!(e, Elem::Gap(k) if prog.gap(*k).is_some_and(|g| g.max == UNBOUNDED)))
}

/// The exact bytes a segment starts with (`leading`) or ends with.
fn literal(prog: &Program, seg: &Segment, leading: bool) -> Vec<u8> {
    let elems = prog.elems.get(seg.lo..seg.hi).unwrap_or(&[]);
    let exact = |e: &Elem| match e {
        Elem::Byte(m) if m.is_exact() => Some(m.value),
        _ => None,
    };
    if leading {
        elems.iter().map_while(exact).collect()
    } else {
        let mut v: Vec<u8> = elems.iter().rev().map_while(exact).collect();
        v.reverse();
        v
    }
}

/// Fills a buffer with the file's bytes from an offset.
pub(crate) type ReadAt<'r> = &'r mut dyn FnMut(&mut [u8], u64) -> Result<(), ScanError>;

/// Where the file's bytes come from.
pub(crate) struct Source<'r> {
    pub(crate) read: ReadAt<'r>,
    pub(crate) size: u64,
    /// Candidate positions searched per read (the scanner's window size).
    pub(crate) chunk: u64,
}

impl Source<'_> {
    /// Reads `[lo, hi)` (cut at the file's end) into `buf`.
    fn load(&mut self, buf: &mut Vec<u8>, lo: u64, hi: u64) -> Result<(), ScanError> {
        let hi = hi.min(self.size);
        let len = usize::try_from(hi.saturating_sub(lo)).unwrap_or(usize::MAX);
        buf.clear();
        buf.resize(len, 0);
        (self.read)(buf, lo)
    }
}

struct Chain<'p, 's, 'r> {
    prog: &'p Program,
    offset: Offset,
    src: Source<'r>,
    scratch: &'s mut VerifyScratch,
    buf: Vec<u8>,
    steps: u64,
}

/// Whether `prog`, whose anchor's first byte is at absolute offset `anchor`,
/// matches; its start if so. `offset` is the program's offset resolved for
/// this file. Memory: one window of `src.chunk` bytes plus the longest
/// segment, whatever the file's size.
pub(crate) fn verify(
    prog: &Program,
    offset: Offset,
    anchor: u64,
    src: Source<'_>,
    scratch: &mut VerifyScratch,
    buf: &mut Vec<u8>,
) -> Result<Option<u64>, ScanError> {
    let mut chain = Chain {
        prog,
        offset,
        src,
        scratch,
        buf: std::mem::take(buf),
        steps: 0,
    };
    let result = chain.run(anchor);
    if chain.steps > verify::step_budget() {
        chain.scratch.exhausted += 1;
    }
    *buf = chain.buf;
    result
}

impl Chain<'_, '_, '_> {
    fn out_of_steps(&self) -> bool {
        self.steps > verify::step_budget()
    }

    fn run(&mut self, anchor: u64) -> Result<Option<u64>, ScanError> {
        let prog = self.prog;
        let segs = segments(prog);
        let anchor_elems = prog.anchor();
        let anchor_len = anchor_elems.len();
        let Some(a) = segs
            .iter()
            .position(|s| s.lo <= anchor_elems.start && anchor_elems.start < s.hi)
        else {
            return Ok(None);
        };
        let seg_a = &segs[a];
        // The anchor's own segment, around the anchor.
        let part_len = |from: usize, to: usize| -> u64 {
            prog.elems.get(from..to).map_or(0, |es| {
                es.iter().fold(0u64, |n, e| {
                    n.saturating_add(u64::from(prog.len_range(e).1))
                })
            })
        };
        let back = part_len(seg_a.lo, anchor_elems.start);
        let fwd = part_len(anchor_elems.end, seg_a.hi);
        let lo = anchor.saturating_sub(back.saturating_add(MARGIN));
        let hi = anchor
            .saturating_add(anchor_len as u64)
            .saturating_add(fwd)
            .saturating_add(MARGIN);
        let mut buf = std::mem::take(&mut self.buf);
        self.src.load(&mut buf, lo, hi)?;
        self.buf = buf;
        let at = (anchor - lo) as usize;
        let hay = hay_at(&self.buf, lo, self.src.size, self.offset);
        if self.buf.get(at..at + anchor_len).is_none() {
            return Ok(None);
        }
        let Some(end_a) = verify::reach_forward(
            prog,
            hay,
            (anchor_elems.end, at + anchor_len),
            seg_a.hi,
            self.scratch,
            &mut self.steps,
        ) else {
            return Ok(None);
        };
        let hay = hay_at(&self.buf, lo, self.src.size, self.offset);
        let stop = if a == 0 { 0 } else { seg_a.lo };
        let Some(start_a) = verify::reach_backward(
            prog,
            hay,
            (anchor_elems.start, at),
            stop,
            self.scratch,
            &mut self.steps,
        ) else {
            return Ok(None);
        };
        let (end_a, start_a) = (lo + end_a as u64, lo + start_a as u64);

        // Forwards: each next segment's earliest end.
        let mut bound = end_a;
        for seg in &segs[a + 1..] {
            match self.earliest_end(seg, bound.saturating_add(seg.gap))? {
                Some(end) => bound = end,
                None => return Ok(None),
            }
        }
        // Backwards: each previous segment's latest start; the first one's
        // start is the pattern's.
        let mut limit = start_a;
        for j in (0..a).rev() {
            let Some(e_max) = limit.checked_sub(segs[j + 1].gap) else {
                return Ok(None);
            };
            match self.latest_start(&segs[j], e_max, j == 0)? {
                Some(start) => limit = start,
                None => return Ok(None),
            }
        }
        Ok(Some(limit))
    }

    /// The earliest end of `seg` starting at or after `bound`.
    fn earliest_end(&mut self, seg: &Segment, bound: u64) -> Result<Option<u64>, ScanError> {
        let lit = literal(self.prog, seg, true);
        let size = self.src.size;
        let mut best: Option<u64> = None;
        let mut c0 = bound;
        while c0.saturating_add(seg.min_len) <= size && best.is_none_or(|b| c0 + seg.min_len < b) {
            // Candidate starts in [c0, c1).
            let c1 = c0.saturating_add(self.src.chunk).min(size + 1);
            let w_lo = c0.saturating_sub(MARGIN);
            let w_hi = c1.saturating_add(seg.max_len).saturating_add(MARGIN);
            let mut buf = std::mem::take(&mut self.buf);
            self.src.load(&mut buf, w_lo, w_hi)?;
            self.buf = buf;
            let (p_lo, p_hi) = ((c0 - w_lo) as usize, (c1 - w_lo) as usize);
            for p in candidates(&self.buf, p_lo, p_hi, &lit, true) {
                let abs = w_lo + p as u64;
                if best.is_some_and(|b| abs + seg.min_len >= b) || self.out_of_steps() {
                    break;
                }
                let hay = hay_at(&self.buf, w_lo, self.src.size, self.offset);
                if let Some(e) = verify::reach_forward(
                    self.prog,
                    hay,
                    (seg.lo, p),
                    seg.hi,
                    self.scratch,
                    &mut self.steps,
                ) {
                    let e = w_lo + e as u64;
                    best = Some(best.map_or(e, |b| b.min(e)));
                }
            }
            if self.out_of_steps() {
                return Ok(None);
            }
            c0 = c1;
        }
        Ok(best)
    }

    /// The latest start of `seg` ending at or before `e_max`; for the first
    /// segment, a start the offset and the left edge allow.
    fn latest_start(
        &mut self,
        seg: &Segment,
        e_max: u64,
        first: bool,
    ) -> Result<Option<u64>, ScanError> {
        let lit = literal(self.prog, seg, false);
        let stop = if first { 0 } else { seg.lo };
        // Ends no lower than this: a start the offset allows, or the file's.
        let mut e_min = seg.min_len;
        let mut e_max = e_max.min(self.src.size);
        if first && let Some((lo, hi)) = verify::offset_range(&self.offset, self.src.size) {
            e_min = e_min.max(lo.saturating_add(seg.min_len));
            e_max = e_max.min(hi.saturating_add(seg.max_len));
        }
        let mut best: Option<u64> = None;
        // Candidate ends in [c0, c1], from the last.
        let mut c1 = e_max;
        while c1 >= e_min && best.is_none_or(|s| c1 - seg.min_len > s) {
            let c0 = c1.saturating_sub(self.src.chunk).max(e_min);
            let w_lo = c0.saturating_sub(seg.max_len.saturating_add(MARGIN));
            let w_hi = c1.saturating_add(MARGIN);
            let mut buf = std::mem::take(&mut self.buf);
            self.src.load(&mut buf, w_lo, w_hi)?;
            self.buf = buf;
            let (e_lo, e_hi) = ((c0 - w_lo) as usize, (c1 - w_lo) as usize);
            for e in candidates(&self.buf, e_lo, e_hi + 1, &lit, false) {
                let abs = w_lo + e as u64;
                if best.is_some_and(|s| abs - seg.min_len <= s) || self.out_of_steps() {
                    break;
                }
                let hay = hay_at(&self.buf, w_lo, self.src.size, self.offset);
                if let Some(s) = verify::reach_backward(
                    self.prog,
                    hay,
                    (seg.hi, e),
                    stop,
                    self.scratch,
                    &mut self.steps,
                ) {
                    let s = w_lo + s as u64;
                    best = Some(best.map_or(s, |b| b.max(s)));
                }
            }
            if self.out_of_steps() {
                return Ok(None);
            }
            if c0 <= e_min {
                break;
            }
            c1 = c0 - 1;
        }
        Ok(best)
    }
}

fn hay_at(data: &[u8], base: u64, len: u64, offset: Offset) -> Hay<'_> {
    Hay {
        data,
        base,
        len,
        offset,
    }
}

/// Positions in `[lo, hi)` of `buf` worth trying, in search order: starts
/// (ascending) where `lit` begins, or ends (descending) where `lit` ends;
/// every position when there is no literal.
fn candidates<'b>(
    buf: &'b [u8],
    lo: usize,
    hi: usize,
    lit: &'b [u8],
    starts: bool,
) -> Box<dyn Iterator<Item = usize> + 'b> {
    let hi = hi.min(buf.len() + 1);
    if lo >= hi {
        return Box::new(std::iter::empty());
    }
    if lit.is_empty() {
        return if starts {
            Box::new(lo..hi)
        } else {
            Box::new((lo..hi).rev())
        };
    }
    let n = lit.len();
    if starts {
        let end = (hi - 1 + n).min(buf.len());
        let hay = buf.get(lo..end).unwrap_or(&[]);
        Box::new(memmem::find_iter(hay, lit).map(move |k| lo + k))
    } else {
        // An end e has `lit` at [e - n, e).
        let from = lo.saturating_sub(n);
        let hay = buf.get(from..(hi - 1).min(buf.len())).unwrap_or(&[]);
        Box::new(
            memmem::rfind_iter(hay, lit)
                .map(move |k| from + k + n)
                .filter(move |e| *e >= lo),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::NameId;
    use crate::pattern::compile_pattern;
    use aether_sigs::{HexPattern, TargetType};

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn program(hex: &str, offset: Offset) -> Program {
        let pattern = HexPattern::parse(hex).expect("test pattern parses");
        let (prog, _) = compile_pattern(&pattern, offset, TargetType::Any, false, false, NameId(0))
            .expect("test pattern compiles");
        prog
    }

    /// Every anchor hit of `prog` in `data`: the whole-buffer verdict and the
    /// chained one (read through windows of `chunk` bytes).
    fn compare(prog: &Program, data: &[u8], chunk: u64) -> usize {
        let anchor: Vec<u8> = prog.elems[prog.anchor()]
            .iter()
            .map(|e| match e {
                Elem::Byte(m) => m.value,
                _ => unreachable!("anchors are bytes"),
            })
            .collect();
        let mut matched = 0;
        for at in memmem::find_iter(data, &anchor) {
            let hay = Hay {
                data,
                base: 0,
                len: data.len() as u64,
                offset: prog.offset,
            };
            let mut s1 = VerifyScratch::default();
            let whole = verify::verify(prog, hay, at, &mut s1).then_some(s1.start);
            let mut read = |buf: &mut [u8], off: u64| -> Result<(), ScanError> {
                let off = off as usize;
                buf.copy_from_slice(&data[off..off + buf.len()]);
                Ok(())
            };
            let src = Source {
                read: &mut read,
                size: data.len() as u64,
                chunk,
            };
            let mut s2 = VerifyScratch::default();
            let mut buf = Vec::new();
            let chained = super::verify(prog, prog.offset, at as u64, src, &mut s2, &mut buf)
                .expect("reads from memory");
            assert_eq!(
                whole,
                chained,
                "pattern {:?} anchor at {at} chunk {chunk} data {:?}",
                prog.elems,
                String::from_utf8_lossy(data)
            );
            matched += usize::from(whole.is_some());
        }
        matched
    }

    #[test]
    fn segments_split_at_unbounded_gaps_only() {
        let p = program("4142{2-4}4344*4445{3-}4647", Offset::Any);
        let s = segments(&p);
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].min_len, s[0].max_len, s[0].gap), (6, 8, 0));
        assert_eq!((s[1].min_len, s[1].max_len, s[1].gap), (2, 2, 0));
        assert_eq!((s[2].min_len, s[2].max_len, s[2].gap), (2, 2, 3));
    }

    #[test]
    fn chained_agrees_with_whole_buffer_on_random_patterns() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Letters a-d: parts recur often, so chains match and fail both ways.
        let piece = |rng: &mut Rng, n: u64| -> String {
            (0..n)
                .map(|_| format!("{:02x}", b'a' + rng.below(4) as u8))
                .collect()
        };
        let mut total = 0;
        for round in 0..3000 {
            let n = 2 + rng.below(2);
            let mut hex = piece(&mut rng, n);
            for _ in 0..1 + rng.below(3) {
                hex += &match rng.below(6) {
                    0 => "*".to_string(),
                    1 => format!("{{{}-}}", rng.below(4)),
                    2 => format!("{{{}-{}}}", rng.below(2), 2 + rng.below(3)),
                    3 => format!("({}|{})", piece(&mut rng, 1), piece(&mut rng, 1)),
                    4 => "??".to_string(),
                    _ => "*".to_string(),
                };
                let n = 2 + rng.below(2);
                hex += &piece(&mut rng, n);
            }
            let offset = match rng.below(4) {
                0 => Offset::Absolute {
                    at: rng.below(20),
                    shift: rng.below(30),
                },
                1 => Offset::FromEnd {
                    back: 20 + rng.below(60),
                    shift: rng.below(30),
                },
                _ => Offset::Any,
            };
            let prog = program(&hex, offset);
            let len = 40 + rng.below(200) as usize;
            let data: Vec<u8> = (0..len).map(|_| b'a' + rng.below(4) as u8).collect();
            let chunk = 1 + (round % 17) as u64;
            total += compare(&prog, &data, chunk);
        }
        // The comparison means something only if many hits matched.
        assert!(total > 1000, "only {total} matches");
    }
}
