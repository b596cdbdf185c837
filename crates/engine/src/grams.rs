//! The anchor finder: every 4-byte window of the input against every anchor.
//!
//! With tens of thousands of patterns, an Aho-Corasick automaton spends its
//! time in failure transitions and cache misses: measured here, the
//! `aho-corasick` crate's contiguous NFA scanned at about 68 MB/s with the
//! benchmark's 50,000 body signatures. Almost every signature has four static
//! bytes in a row, so anchors are exactly four bytes, and finding them is a
//! lookup per input position: a hashed bitmap rejects nearly every position
//! with one bit test, and the rare survivor probes an open-addressing table of
//! the anchors themselves. Anchors shorter than four bytes (ClamAV requires
//! only two static bytes) go to an Aho-Corasick automaton of their own.

/// Hash of a 4-byte gram; the top bits index the bitmap and the table.
#[inline(always)]
fn hash(gram: u32) -> u32 {
    gram.wrapping_mul(0x9e37_79b1)
}

/// Finds 4-byte anchors; each maps to a span of program ids.
#[derive(Debug, Default)]
pub(crate) struct GramIndex {
    /// `1 << bits_log2` bits; bit `hash >> (32 - bits_log2)` set per anchor.
    bits: Vec<u64>,
    bits_log2: u32,
    /// Open addressing, linear probing: (gram, span start, span end); an
    /// empty slot has `end == 0` (spans are never empty).
    slots: Vec<(u32, u32, u32)>,
    slots_log2: u32,
}

impl GramIndex {
    /// Builds the index from (gram, span) pairs with distinct grams.
    pub(crate) fn new(entries: &[(u32, (u32, u32))]) -> GramIndex {
        if entries.is_empty() {
            return GramIndex::default();
        }
        // About 64 bits per anchor: under 2% of positions pass the bitmap, and it
        // still fits in L2 for tens of thousands of anchors.
        let bits_log2 = ((entries.len() * 64).next_power_of_two().trailing_zeros()).clamp(16, 26);
        let mut bits = vec![0u64; (1usize << bits_log2) / 64];
        let slots_log2 = (entries.len() * 2).next_power_of_two().trailing_zeros();
        let mut slots = vec![(0u32, 0u32, 0u32); 1 << slots_log2];
        let mask = (1usize << slots_log2) - 1;
        for &(gram, (start, end)) in entries {
            let h = hash(gram);
            let b = (h >> (32 - bits_log2)) as usize;
            bits[b / 64] |= 1 << (b % 64);
            let mut i = (h >> (32 - slots_log2)) as usize;
            while slots[i].2 != 0 {
                i = (i + 1) & mask;
            }
            slots[i] = (gram, start, end);
        }
        GramIndex {
            bits,
            bits_log2,
            slots,
            slots_log2,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn lookup(&self, gram: u32, h: u32) -> Option<(u32, u32)> {
        let mask = self.slots.len() - 1;
        let mut i = (h >> (32 - self.slots_log2)) as usize;
        loop {
            let (g, start, end) = self.slots[i];
            if end == 0 {
                return None;
            }
            if g == gram {
                return Some((start, end));
            }
            i = (i + 1) & mask;
        }
    }

    /// Calls `hit(position, span)` for every anchor occurrence in `data`
    /// starting at or after `from`.
    #[inline]
    pub(crate) fn find(
        &self,
        data: &[u8],
        from: usize,
        mut hit: impl FnMut(usize, (u32, u32)) -> bool,
    ) {
        if self.is_empty() || data.len() < 4 {
            return;
        }
        let shift = 32 - self.bits_log2;
        let bits = &self.bits[..];
        for (i, w) in data.windows(4).enumerate().skip(from) {
            let gram = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            let h = hash(gram);
            let b = (h >> shift) as usize;
            if bits[b / 64] & (1 << (b % 64)) == 0 {
                continue;
            }
            if let Some(span) = self.lookup(gram, h)
                && !hit(i, span)
            {
                return;
            }
        }
    }

    /// Like [`find`](Self::find), and also looks every position up in
    /// `folded` (an index of folded grams, see [`fold`]) in the same pass;
    /// `hit` is told which index answered.
    #[inline]
    pub(crate) fn find_with_folded(
        &self,
        folded: &GramIndex,
        data: &[u8],
        from: usize,
        mut hit: impl FnMut(usize, (u32, u32), bool) -> bool,
    ) {
        if folded.is_empty() {
            self.find(data, from, |i, span| hit(i, span, false));
            return;
        }
        if data.len() < 4 {
            return;
        }
        let main = !self.is_empty();
        for (i, w) in data.windows(4).enumerate().skip(from) {
            let gram = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            if main {
                let h = hash(gram);
                let b = (h >> (32 - self.bits_log2)) as usize;
                if self.bits[b / 64] & (1 << (b % 64)) != 0
                    && let Some(span) = self.lookup(gram, h)
                    && !hit(i, span, false)
                {
                    return;
                }
            }
            let g = fold(gram);
            let h = hash(g);
            let b = (h >> (32 - folded.bits_log2)) as usize;
            if folded.bits[b / 64] & (1 << (b % 64)) != 0
                && let Some(span) = folded.lookup(g, h)
                && !hit(i, span, true)
            {
                return;
            }
        }
    }

    /// The gram of a 4-byte anchor.
    pub(crate) fn gram(anchor: &[u8]) -> Option<u32> {
        Some(u32::from_le_bytes(anchor.try_into().ok()?))
    }
}

/// A gram with bit 5 of every byte set: `A` and `a` fold together (and so
/// do some other pairs, which the caller's check of the anchor rejects).
#[inline(always)]
pub(crate) fn fold(gram: u32) -> u32 {
    gram | 0x2020_2020
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_index_finds_any_case() {
        let g = fold(GramIndex::gram(b"ABcd").unwrap_or(0));
        let folded = GramIndex::new(&[(g, (0, 1))]);
        let main = GramIndex::default();
        let mut hits = Vec::new();
        main.find_with_folded(&folded, b"xabCDyAbCd", 0, |at, _, f| {
            hits.push((at, f));
            true
        });
        assert_eq!(hits, vec![(1, true), (6, true)]);
    }

    #[test]
    fn finds_every_occurrence_and_nothing_else() {
        let grams: Vec<u32> = [b"ABCD", b"BCDE", b"zzzz"]
            .iter()
            .map(|a| GramIndex::gram(*a).unwrap_or(0))
            .collect();
        let entries: Vec<(u32, (u32, u32))> = grams
            .iter()
            .enumerate()
            .map(|(k, g)| (*g, (k as u32, k as u32 + 1)))
            .collect();
        let index = GramIndex::new(&entries);
        let mut hits = Vec::new();
        index.find(b"xABCDEyABCD", 0, |at, span| {
            hits.push((at, span.0));
            true
        });
        assert_eq!(hits, vec![(1, 0), (2, 1), (7, 0)]);
        hits.clear();
        index.find(b"xABCDEyABCD", 2, |at, span| {
            hits.push((at, span.0));
            true
        });
        assert_eq!(hits, vec![(2, 1), (7, 0)]);
    }
}
