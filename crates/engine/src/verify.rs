//! Checks a whole body signature around an anchor hit.
//!
//! The anchor splits a pattern in two: the elements after it are matched
//! forwards from the anchor and only need to exist; the elements before it are
//! matched backwards, and each way of matching them gives a start position that
//! the signature's offset must allow. Gaps and alternatives make this a search;
//! failed (element, position) pairs are remembered so that no pair is tried
//! twice, and a step budget bounds the work on hostile data.

use std::collections::HashSet;

use aether_sigs::{ByteMatch, CharClass, Offset};

use crate::pattern::{Edge, Elem, Gap, Program, UNBOUNDED};

/// Steps one verification may take before it gives up (and reports no match).
const STEP_BUDGET: u64 = 4_000_000;

/// The bytes available to a verification: `data` holds the file's bytes from
/// absolute offset `base`; `len` is the length of the scanned file; `offset`
/// is the program's offset resolved for this file (see
/// [`crate::exe_layout::FileLayout::offset_of`]).
#[derive(Clone, Copy)]
pub(crate) struct Hay<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) base: u64,
    pub(crate) len: u64,
    pub(crate) offset: Offset,
}

/// Reusable verification state.
#[derive(Default)]
pub(crate) struct VerifyScratch {
    failed: HashSet<(u32, usize)>,
    /// The last verification wanted bytes outside `Hay::data` that the file
    /// has: its "no" is not final, the caller must retry with more bytes.
    pub(crate) cut: bool,
    /// Verifications that ran out of budget (reported as a scan warning).
    pub(crate) exhausted: u64,
    /// Where the pattern starts, absolute, after a verification that matched.
    pub(crate) start: u64,
}

/// ClamAV's boundary classes for `(B)`: 1 = may precede a word, 2 = may follow
/// one, 3 = both.
fn boundary_class(b: u8) -> u8 {
    match b {
        b' ' | b'-' | b'/' | b'_' => 3,
        b'.' | b'<' | b'@' => 1,
        b'\n' | b'\r' | b'"' | b'\'' | b'=' | b'>' => 2,
        _ => 0,
    }
}

pub(crate) fn offset_allows(offset: &Offset, start: u64, len: u64) -> bool {
    match *offset {
        Offset::Any => true,
        Offset::Absolute { at, shift } => start >= at && start - at <= shift,
        Offset::FromEnd { back, shift } => {
            len >= back && start >= len - back && start - (len - back) <= shift
        }
        _ => false,
    }
}

/// The range of start positions an offset allows, if it is bounded.
pub(crate) fn offset_range(offset: &Offset, len: u64) -> Option<(u64, u64)> {
    match *offset {
        Offset::Absolute { at, shift } => Some((at, at.saturating_add(shift))),
        Offset::FromEnd { back, shift } => {
            let at = len.checked_sub(back)?;
            Some((at, at.saturating_add(shift)))
        }
        Offset::Any => None,
        // Resolved before verification (see `Hay::offset`); never reached.
        _ => Some((1, 0)),
    }
}

/// Whether the anchor's own elements match at `data[at]` (a folded-index
/// hit proves only that the bytes agree outside bit 5).
pub(crate) fn anchor_holds(prog: &Program, data: &[u8], at: usize) -> bool {
    let elems = prog.elems.get(prog.anchor()).unwrap_or(&[]);
    data.get(at..at + elems.len()).is_some_and(|d| {
        elems
            .iter()
            .zip(d)
            .all(|(e, b)| matches!(e, Elem::Byte(m) if m.matches(*b)))
    })
}

struct Verifier<'a> {
    hay: Hay<'a>,
    prog: &'a Program,
    scratch: &'a mut VerifyScratch,
    steps: u64,
    /// Forwards matching stops at this element (the pattern's end, or an
    /// unbounded gap for [`crate::chained`]), backwards at `bwd_stop`.
    fwd_stop: usize,
    bwd_stop: usize,
    /// Inside a chain: the earliest end and the latest start reached at
    /// the stops (every way is explored, the stop answering "no").
    best_end: Option<usize>,
    best_start: Option<usize>,
}

/// Whether `prog` matches with its anchor starting at `data[at]`.
pub(crate) fn verify(prog: &Program, hay: Hay<'_>, at: usize, scratch: &mut VerifyScratch) -> bool {
    scratch.failed.clear();
    scratch.cut = false;
    let mut v = Verifier::new(prog, hay, scratch, 0);
    let anchor = prog.anchor();
    let end = at + anchor.len();
    if hay.data.get(at..end).is_none() {
        return false;
    }
    let ok = v.forward(anchor.end, end) && {
        v.scratch.failed.clear();
        v.backward(anchor.start, at)
    };
    if v.steps > STEP_BUDGET {
        v.scratch.exhausted += 1;
    }
    ok
}

/// Steps one whole verification may take: a chain of segments
/// ([`crate::chained`]) shares it across its runs.
pub(crate) const fn step_budget() -> u64 {
    STEP_BUDGET
}

/// Matches `prog.elems[from..stop]` forwards from `data[pos]` and returns the
/// earliest end reached at `stop`; at the pattern's end, the first end whose
/// right edge holds. `steps` carries the budget across runs.
pub(crate) fn reach_forward(
    prog: &Program,
    hay: Hay<'_>,
    (from, pos): (usize, usize),
    stop: usize,
    scratch: &mut VerifyScratch,
    steps: &mut u64,
) -> Option<usize> {
    scratch.failed.clear();
    let mut v = Verifier::new(prog, hay, scratch, *steps);
    v.fwd_stop = stop;
    v.forward(from, pos);
    *steps = v.steps;
    v.best_end
}

/// Matches `prog.elems[stop..from]` backwards so that they end at
/// `data[pos]`. With `stop == 0` the start must be one the offset and the
/// left edge allow, and the first found is returned (as [`verify`] does);
/// otherwise the latest start reached.
pub(crate) fn reach_backward(
    prog: &Program,
    hay: Hay<'_>,
    (from, pos): (usize, usize),
    stop: usize,
    scratch: &mut VerifyScratch,
    steps: &mut u64,
) -> Option<usize> {
    scratch.failed.clear();
    let base = hay.base;
    let mut v = Verifier::new(prog, hay, scratch, *steps);
    v.bwd_stop = stop;
    let found = v.backward(from, pos);
    *steps = v.steps;
    if stop == 0 {
        found.then(|| (v.scratch.start - base) as usize)
    } else {
        v.best_start
    }
}

fn matches_at(branch: &[ByteMatch], data: &[u8], pos: usize) -> bool {
    data.get(pos..pos + branch.len())
        .is_some_and(|s| branch.iter().zip(s).all(|(m, b)| m.matches(*b)))
}

impl<'a> Verifier<'a> {
    fn new(
        prog: &'a Program,
        hay: Hay<'a>,
        scratch: &'a mut VerifyScratch,
        steps: u64,
    ) -> Verifier<'a> {
        Verifier {
            hay,
            prog,
            scratch,
            steps,
            fwd_stop: prog.elems.len(),
            bwd_stop: 0,
            best_end: None,
            best_start: None,
        }
    }

    fn data(&self) -> &[u8] {
        self.hay.data
    }

    fn at_file_start(&self, pos: usize) -> bool {
        self.hay.base + pos as u64 == 0
    }

    fn at_file_end(&self, pos: usize) -> bool {
        self.hay.base + pos as u64 >= self.hay.len
    }

    /// Notes a look past the end of `data` that the file could answer.
    fn past_end(&mut self, pos: usize) {
        if pos >= self.hay.data.len() && !self.at_file_end(self.hay.data.len()) {
            self.scratch.cut = true;
        }
    }

    /// Notes a look before the start of `data` that the file could answer.
    fn before_start(&mut self, wanted: bool) {
        if wanted && self.hay.base > 0 {
            self.scratch.cut = true;
        }
    }

    fn tick(&mut self) -> bool {
        self.steps += 1;
        self.steps <= STEP_BUDGET
    }

    /// Consumption of a class inside the pattern at `pos`: bytes eaten, if any.
    fn class_len(&self, class: CharClass, negated: bool, pos: usize) -> Option<usize> {
        let d = self.data();
        let b = *d.get(pos)?;
        let (hit, len) = match class {
            CharClass::Boundary => (boundary_class(b) != 0, 1),
            CharClass::NonAlnum => (!b.is_ascii_alphanumeric(), 1),
            CharClass::Line => {
                if b == b'\n' {
                    (true, 1)
                } else if b == b'\r' && d.get(pos + 1) == Some(&b'\n') {
                    (true, 2)
                } else {
                    (false, 1)
                }
            }
        };
        match (hit, negated) {
            (true, false) => Some(len),
            (false, true) => Some(1),
            _ => None,
        }
    }

    fn right_edge_ok(&mut self, edge: Option<Edge>, pos: usize) -> bool {
        let Some(edge) = edge else {
            return true;
        };
        let (class, negated, wide) = (edge.class(), edge.negated(), edge.wide());
        if wide {
            return self.right_wide_ok(pos) != negated;
        }
        // `(L)` may look at two bytes.
        self.past_end(pos + 1);
        let next = if self.at_file_end(pos) {
            None
        } else {
            match self.data().get(pos).copied() {
                Some(b) => Some(b),
                None => return false,
            }
        };
        let hit = match (class, next) {
            (_, None) => true,
            (CharClass::Boundary, Some(b)) => boundary_class(b) >= 2,
            (CharClass::Line, Some(b)) => {
                b == b'\n' || (b == b'\r' && self.data().get(pos + 1) == Some(&b'\n'))
            }
            (CharClass::NonAlnum, Some(b)) => !b.is_ascii_alphanumeric(),
        };
        hit != negated
    }

    fn start_ok(&mut self, pos: usize) -> bool {
        let ok = self.start_allowed(pos);
        if ok {
            self.scratch.start = self.hay.base + pos as u64;
        }
        ok
    }

    fn start_allowed(&mut self, pos: usize) -> bool {
        let start = self.hay.base + pos as u64;
        if !offset_allows(&self.hay.offset, start, self.hay.len) {
            return false;
        }
        let Some(edge) = self.prog.left else {
            return true;
        };
        let (class, negated, wide) = (edge.class(), edge.negated(), edge.wide());
        if wide {
            return self.left_wide_ok(pos) != negated;
        }
        let prev = if self.at_file_start(pos) {
            None
        } else {
            match pos.checked_sub(1).and_then(|p| self.data().get(p).copied()) {
                Some(b) => Some(b),
                None => {
                    self.before_start(true);
                    return false;
                }
            }
        };
        let hit = match (class, prev) {
            (_, None) => true,
            (CharClass::Boundary, Some(b)) => matches!(boundary_class(b), 1 | 3),
            (CharClass::Line, Some(b)) => b == b'\n',
            (CharClass::NonAlnum, Some(b)) => !b.is_ascii_alphanumeric(),
        };
        hit != negated
    }

    /// ClamAV's wide `(W)` after a match ending at `pos`: the file ends, or
    /// the next UTF-16 unit is not a letter or digit (with one byte left,
    /// that byte is not).
    fn right_wide_ok(&mut self, pos: usize) -> bool {
        if self.at_file_end(pos) {
            return true;
        }
        self.past_end(pos + 2);
        let d = self.data();
        match (d.get(pos), d.get(pos + 1)) {
            (Some(b), Some(z)) => !(b.is_ascii_alphanumeric() && *z == 0),
            (Some(b), None) if self.at_file_end(pos + 1) => !b.is_ascii_alphanumeric(),
            _ => false,
        }
    }

    /// ClamAV's wide `(W)` before a match starting at `pos`: at the file's
    /// first two offsets it holds; later the previous UTF-16 unit is not a
    /// letter or digit.
    fn left_wide_ok(&mut self, pos: usize) -> bool {
        let start = self.hay.base + pos as u64;
        if start < 2 {
            return true;
        }
        let d = self.data();
        match pos.checked_sub(2).and_then(|p| d.get(p..pos)) {
            Some(unit) => !(unit[0].is_ascii_alphanumeric() && unit[1] == 0),
            None => {
                self.before_start(true);
                false
            }
        }
    }

    /// Matches `elems[i..]` from `pos` to the end of the pattern.
    fn forward(&mut self, mut i: usize, mut pos: usize) -> bool {
        let prog = self.prog;
        let elems = &prog.elems;
        loop {
            if !self.tick() {
                return false;
            }
            if i == self.fwd_stop && i < elems.len() {
                self.best_end = Some(self.best_end.map_or(pos, |e| e.min(pos)));
                return false;
            }
            let Some(elem) = elems.get(i) else {
                let ok = self.right_edge_ok(self.prog.right, pos);
                if ok {
                    self.best_end = Some(pos);
                }
                return ok;
            };
            match *elem {
                Elem::Byte(m) => match self.data().get(pos) {
                    Some(b) if m.matches(*b) => {
                        i += 1;
                        pos += 1;
                    }
                    Some(_) => return false,
                    None => {
                        self.past_end(pos);
                        return false;
                    }
                },
                Elem::NegAlt(k) => {
                    let len = prog.neg_len(k);
                    if pos + len > self.data().len() {
                        self.past_end(pos + len);
                        return false;
                    }
                    if prog.branches(k).any(|br| matches_at(br, self.data(), pos)) {
                        return false;
                    }
                    i += 1;
                    pos += len;
                }
                Elem::Class { class, negated } => match self.class_len(class, negated, pos) {
                    Some(n) => {
                        i += 1;
                        pos += n;
                    }
                    None => {
                        // `(L)` may look one byte further.
                        self.past_end(pos + 1);
                        return false;
                    }
                },
                Elem::Alt(k) => {
                    let key = (i as u32, pos);
                    if self.scratch.failed.contains(&key) {
                        return false;
                    }
                    for br in prog.branches(k) {
                        if pos + br.len() > self.data().len() {
                            self.past_end(pos + br.len());
                        }
                        if matches_at(br, self.data(), pos) && self.forward(i + 1, pos + br.len()) {
                            return true;
                        }
                    }
                    self.scratch.failed.insert(key);
                    return false;
                }
                Elem::Gap(k) => {
                    let Some(Gap { min, max }) = prog.gap(k) else {
                        return false;
                    };
                    let key = (i as u32, pos);
                    if self.scratch.failed.contains(&key) {
                        return false;
                    }
                    let len = self.data().len();
                    let Some(lo) = pos.checked_add(min as usize).filter(|lo| *lo <= len) else {
                        self.past_end(len);
                        return false;
                    };
                    if max == UNBOUNDED || pos.saturating_add(max as usize) > len {
                        self.past_end(len);
                    }
                    let hi = if max == UNBOUNDED {
                        len
                    } else {
                        pos.saturating_add(max as usize).min(len)
                    };
                    // When an exact byte follows, jump between its occurrences.
                    let next_exact = match elems.get(i + 1) {
                        Some(Elem::Byte(m)) if m.is_exact() => Some(m.value),
                        _ => None,
                    };
                    let mut p = lo;
                    while p <= hi {
                        if let Some(b) = next_exact {
                            match self
                                .data()
                                .get(p..(hi + 1).min(len))
                                .and_then(|s| memchr::memchr(b, s))
                            {
                                Some(k) => p += k,
                                None => break,
                            }
                        }
                        if self.forward(i + 1, p) {
                            return true;
                        }
                        if self.steps > STEP_BUDGET {
                            return false;
                        }
                        p += 1;
                    }
                    self.scratch.failed.insert(key);
                    return false;
                }
            }
        }
    }

    /// Matches `elems[..i]` so that they end at `pos`, and checks the start.
    fn backward(&mut self, mut i: usize, mut pos: usize) -> bool {
        let prog = self.prog;
        let elems = &prog.elems;
        loop {
            if !self.tick() {
                return false;
            }
            if i == 0 {
                return self.start_ok(pos);
            }
            if i == self.bwd_stop {
                self.best_start = Some(self.best_start.map_or(pos, |s| s.max(pos)));
                return false;
            }
            let Some(elem) = elems.get(i - 1) else {
                return false;
            };
            match *elem {
                Elem::Byte(m) => match pos.checked_sub(1).and_then(|p| self.data().get(p)) {
                    Some(b) if m.matches(*b) => {
                        i -= 1;
                        pos -= 1;
                    }
                    Some(_) => return false,
                    None => {
                        self.before_start(pos == 0);
                        return false;
                    }
                },
                Elem::NegAlt(k) => {
                    let Some(p) = pos.checked_sub(prog.neg_len(k)) else {
                        self.before_start(true);
                        return false;
                    };
                    if prog.branches(k).any(|br| matches_at(br, self.data(), p)) {
                        return false;
                    }
                    i -= 1;
                    pos = p;
                }
                Elem::Class { class, negated } => {
                    // A line marker may have eaten "\n" or "\r\n"; try both.
                    let cands: &[usize] = if class == CharClass::Line && !negated {
                        &[1, 2]
                    } else {
                        &[1]
                    };
                    let key = (u32::MAX - i as u32, pos);
                    if cands.len() > 1 && self.scratch.failed.contains(&key) {
                        return false;
                    }
                    let mut ok_starts = [None, None];
                    self.before_start(pos < 2);
                    for (k, n) in cands.iter().enumerate() {
                        if let Some(p) = pos.checked_sub(*n)
                            && self.class_len(class, negated, p) == Some(*n)
                        {
                            ok_starts[k] = Some(p);
                        }
                    }
                    match ok_starts {
                        [Some(p), None] | [None, Some(p)] => {
                            i -= 1;
                            pos = p;
                        }
                        [Some(a), Some(b)] => {
                            if self.backward(i - 1, a) || self.backward(i - 1, b) {
                                return true;
                            }
                            self.scratch.failed.insert(key);
                            return false;
                        }
                        [None, None] => return false,
                    }
                }
                Elem::Alt(k) => {
                    let key = (u32::MAX - i as u32, pos);
                    if self.scratch.failed.contains(&key) {
                        return false;
                    }
                    for br in prog.branches(k) {
                        self.before_start(pos < br.len());
                        if let Some(p) = pos.checked_sub(br.len())
                            && matches_at(br, self.data(), p)
                            && self.backward(i - 1, p)
                        {
                            return true;
                        }
                    }
                    self.scratch.failed.insert(key);
                    return false;
                }
                Elem::Gap(k) => {
                    let Some(Gap { min, max }) = prog.gap(k) else {
                        return false;
                    };
                    let key = (u32::MAX - i as u32, pos);
                    if self.scratch.failed.contains(&key) {
                        return false;
                    }
                    let Some(hi) = pos.checked_sub(min as usize) else {
                        self.before_start(true);
                        return false;
                    };
                    self.before_start(max == UNBOUNDED || max as usize > pos);
                    let lo = if max == UNBOUNDED {
                        0
                    } else {
                        pos.saturating_sub(max as usize)
                    };
                    // When an exact byte precedes, jump between its occurrences.
                    let prev_exact = match i.checked_sub(2).and_then(|k| elems.get(k)) {
                        Some(Elem::Byte(m)) if m.is_exact() => Some(m.value),
                        _ => None,
                    };
                    let mut p = hi;
                    loop {
                        if let Some(b) = prev_exact {
                            // Candidate ends p need data[p - 1] == b, for p in lo+1..=p.
                            let from = lo.max(1) - 1;
                            match self.data().get(from..p).and_then(|s| memchr::memrchr(b, s)) {
                                Some(k) => p = from + k + 1,
                                None => break,
                            }
                        }
                        if self.backward(i - 1, p) {
                            return true;
                        }
                        if self.steps > STEP_BUDGET || p <= lo {
                            break;
                        }
                        p -= 1;
                    }
                    self.scratch.failed.insert(key);
                    return false;
                }
            }
        }
    }
}
