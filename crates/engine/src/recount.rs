//! Counting a multi-part subsignature as ClamAV counts it.
//!
//! ClamAV splits a hex subsignature at `*` and `{..}` ranges into parts and
//! matches each part on its own; a match of the last part that completes a
//! chain counts once, with the start of the chain's first part as its
//! offset. So `AAAA*BBBB` counts 2 on `AAAA BBBB BBBB` (two completions) and
//! 1 on `AAAA AAAA BBBB` (two starts, one completion), where counting
//! distinct starts, as the scanner does for every other subsignature, gives
//! the opposite. Only counts differ, and only counts beyond "matched or not"
//! change a verdict, so the scanner recounts these subsignatures at the end
//! of a file, over its whole bytes, and only when they matched at all.
//!
//! The chain bookkeeping follows ClamAV's `offmatrix` in `cli_ac_scanbuff`:
//! per part, the ends of its last [`TRACK`] matches that continued a chain
//! (the oldest kept in place when the list wraps); a later part continues
//! the first tracked match it may follow (gap bounds checked), and a chain
//! found through a match other than the first becomes the first.

use aether_sigs::{HexPattern, Offset, TargetType, Token};

use crate::names::NameId;
use crate::pattern::{self, Elem, Program};
use crate::verify::{self, Hay, VerifyScratch};

/// Matches tracked per part (ClamAV's `CLI_DEFAULT_AC_TRACKLEN`, plus the
/// slot it keeps at the front).
const TRACK: usize = 9;

/// Part matches looked at per file, at most: past it (a file made of the
/// parts' bytes) the recount gives up and the scanner's own count stands,
/// so memory stays bounded (24 bytes a match).
const MAX_EVENTS: usize = 1 << 20;

/// One part and the gap before it.
#[derive(Debug)]
struct Part {
    prog: Program,
    /// Least and most bytes between the previous part's end and this part's
    /// start; `max` None when unbounded (ClamAV's `maxdist` 0).
    min: u64,
    max: Option<u64>,
}

/// A subsignature ClamAV matches in parts.
#[derive(Debug)]
pub(crate) struct Chain {
    /// The counter its matches go to.
    pub(crate) slot: u32,
    parts: Vec<Part>,
}

impl Chain {
    /// The chain of `pattern`, or None when ClamAV matches it whole (no
    /// splitting gap) or when a part cannot be compiled on its own (the
    /// scanner's own count stands then).
    pub(crate) fn compile(
        pattern: &HexPattern,
        nocase: bool,
        wide: bool,
        name: NameId,
        slot: u32,
    ) -> Option<Chain> {
        let splits = pattern.part_splits();
        if splits.is_empty() {
            return None;
        }
        let mut parts = Vec::with_capacity(splits.len() + 1);
        let mut from = 0;
        let mut gap = (0u64, None);
        for end in splits.iter().copied().chain([pattern.tokens.len()]) {
            let tokens = pattern.tokens.get(from..end)?.to_vec();
            let part = HexPattern { tokens };
            let (prog, _) =
                pattern::compile_pattern(&part, Offset::Any, TargetType::Any, nocase, wide, name)
                    .ok()?;
            // A part that is all gaps (or none) cannot be matched alone.
            if prog.elems.iter().all(|e| matches!(e, Elem::Gap { .. })) {
                return None;
            }
            parts.push(Part {
                prog,
                min: gap.0,
                max: gap.1,
            });
            if let Some(Token::Gap { min, max }) = pattern.tokens.get(end) {
                // ClamAV reads a maximum of 0 as "no maximum".
                gap = (u64::from(*min), max.filter(|m| *m != 0).map(u64::from));
            }
            from = end + 1;
        }
        Some(Chain { slot, parts })
    }

    /// Names the parts' programs (compiled before the name was stored).
    pub(crate) fn rename(&mut self, name: NameId) {
        self.parts.iter_mut().for_each(|p| p.prog.name = name);
    }

    /// Each part's program and the gap bounds before it (for the cache).
    pub(crate) fn parts(&self) -> impl Iterator<Item = (&Program, u64, Option<u64>)> + '_ {
        self.parts.iter().map(|p| (&p.prog, p.min, p.max))
    }

    /// A chain read back from the cache: at least two parts, each with a
    /// byte to start matching on.
    pub(crate) fn from_parts(slot: u32, parts: Vec<(Program, u64, Option<u64>)>) -> Option<Chain> {
        if parts.len() < 2
            || parts
                .iter()
                .any(|(p, ..)| !matches!(p.elems.get(p.anchor().start), Some(Elem::Byte(_))))
        {
            return None;
        }
        let parts = parts
            .into_iter()
            .map(|(prog, min, max)| Part { prog, min, max })
            .collect();
        Some(Chain { slot, parts })
    }

    /// Counts the chain's completions in `data` as ClamAV does; returns the
    /// count and the offset of the last one counted (None when none), or
    /// None when the parts match more than [`MAX_EVENTS`] times.
    pub(crate) fn count(
        &self,
        data: &[u8],
        scratch: &mut VerifyScratch,
    ) -> Option<(u32, Option<u64>)> {
        // Every match of every part: (start, part, end), in file order.
        let mut events = Vec::new();
        for (i, p) in self.parts.iter().enumerate() {
            for (start, end) in matches(&p.prog, data, scratch, MAX_EVENTS - events.len())? {
                events.push((start, i, end));
            }
        }
        events.sort_unstable();
        let last_part = self.parts.len() - 1;
        let mut tracks = vec![Track::default(); self.parts.len()];
        let (mut count, mut last) = (0u32, None::<u64>);
        for (start, i, end) in events {
            if i > 0 {
                let part = &self.parts[i];
                let found = tracks[i - 1].ends.iter().position(|&e| {
                    start >= e && start - e >= part.min && part.max.is_none_or(|m| start - e <= m)
                });
                let Some(found) = found else {
                    continue;
                };
                if i == 1 && found > 0 {
                    tracks[0].swap_to_front(found);
                }
            }
            if i == last_part {
                // `lsig_sub_matched` for a part match: counted unless the
                // chain starts before the last one counted.
                let Some(&realoff) = tracks[0].starts.first() else {
                    continue;
                };
                if last.is_some_and(|l| realoff < l) {
                    continue;
                }
                count = count.saturating_add(1);
                last = Some(realoff);
            } else {
                tracks[i].record(start, end);
            }
        }
        Some((count, last))
    }
}

/// The tracked matches of one part: ends, and for the first part starts,
/// at the same slots.
#[derive(Default, Clone)]
struct Track {
    ends: Vec<u64>,
    starts: Vec<u64>,
    /// The slot written last.
    cursor: usize,
}

impl Track {
    /// Records a match: appended until the track is full, then slots 1..
    /// reused in turn (slot 0, the chain's first match, stays).
    fn record(&mut self, start: u64, end: u64) {
        if self.ends.len() < TRACK {
            self.ends.push(end);
            self.starts.push(start);
            self.cursor = self.ends.len() - 1;
            return;
        }
        self.cursor = if self.cursor + 1 >= TRACK {
            1
        } else {
            self.cursor + 1
        };
        self.ends[self.cursor] = end;
        self.starts[self.cursor] = start;
    }

    fn swap_to_front(&mut self, slot: usize) {
        self.ends.swap(0, slot);
        self.starts.swap(0, slot);
    }
}

/// Every match of `prog` in `data` as (start, earliest end), by start; None
/// past `cap` matches.
fn matches(
    prog: &Program,
    data: &[u8],
    scratch: &mut VerifyScratch,
    cap: usize,
) -> Option<Vec<(u64, u64)>> {
    let hay = Hay {
        data,
        base: 0,
        len: data.len() as u64,
        offset: Offset::Any,
    };
    let mut out: Vec<(u64, u64)> = Vec::new();
    let first = match prog.elems.get(prog.anchor().start) {
        Some(Elem::Byte(m)) => *m,
        _ => return Some(out),
    };
    let mut consider = |at: usize, out: &mut Vec<(u64, u64)>| {
        if !verify::anchor_holds(prog, data, at) || !verify::verify(prog, hay, at, scratch) {
            return;
        }
        let start = scratch.start;
        let mut steps = 0;
        let Ok(from) = usize::try_from(start) else {
            return;
        };
        if let Some(end) =
            verify::reach_forward(prog, hay, (0, from), prog.elems.len(), scratch, &mut steps)
            && out.last().is_none_or(|(s, _)| *s < start)
        {
            out.push((start, end as u64));
        }
    };
    let mut candidates: Box<dyn Iterator<Item = usize>> = if first.is_exact() {
        Box::new(memchr::memchr_iter(first.value, data))
    } else {
        Box::new(0..data.len())
    };
    for at in &mut candidates {
        consider(at, &mut out);
        if out.len() > cap {
            return None;
        }
    }
    out.sort_unstable();
    out.dedup_by_key(|m| m.0);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(hex: &str) -> Chain {
        let p = HexPattern::parse(hex).expect("pattern");
        Chain::compile(&p, false, false, NameId(0), 0).expect("chain")
    }

    fn count(hex: &str, data: &[u8]) -> (u32, Option<u64>) {
        chain(hex)
            .count(data, &mut VerifyScratch::default())
            .expect("under the cap")
    }

    #[test]
    fn completions_not_starts() {
        // A..B..B: two completions of the one start.
        assert_eq!(count("41414141*42424242", b"xAAAAyBBBBzBBBB"), (2, Some(1)));
        // A..A..B: one completion.
        assert_eq!(count("41414141*42424242", b"AAAA.AAAA.BBBB"), (1, Some(0)));
        // A bounded gap: the first A is too far, the second continues.
        assert_eq!(
            count("41414141{0-4}42424242", b"AAAA..AAAA..BBBB"),
            (1, Some(6))
        );
        // No chain at all.
        assert_eq!(count("41414141*42424242", b"BBBB.AAAA"), (0, None));
        // Three parts: the middle one must come between.
        assert_eq!(
            count("41414141*42424242*43434343", b"AAAA.CCCC.BBBB.CCCC"),
            (1, Some(0))
        );
    }

    #[test]
    fn a_full_track_keeps_its_first_slot() {
        let mut t = Track::default();
        for i in 0..20u64 {
            t.record(i, i + 4);
        }
        assert_eq!(t.ends.len(), TRACK);
        // Slot 0 is the first match; slots 1.. were reused in turn.
        assert_eq!(t.starts[0], 0);
        // Matches 9..=16 went to slots 1..=8, then 17..=19 to slots 1..=3.
        assert_eq!(t.cursor, 3);
        assert_eq!(t.starts, [0, 17, 18, 19, 12, 13, 14, 15, 16]);
    }

    #[test]
    fn a_part_without_bytes_of_its_own_makes_no_chain() {
        let p = HexPattern::parse("41414141*42424242").expect("pattern");
        assert!(Chain::compile(&p, false, false, NameId(0), 0).is_some());
        let whole = HexPattern::parse("4141414142424242").expect("pattern");
        assert!(Chain::compile(&whole, false, false, NameId(0), 0).is_none());
    }
}
