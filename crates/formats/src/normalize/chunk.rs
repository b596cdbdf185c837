//! How `htmlnorm.c` cuts its input into chunks (`cli_readchunk`), reproduced
//! because the chunking shows in its output: each chunk's leading white
//! space is skipped, markers (`#@~^`) are only found within one chunk, and a
//! few states misbehave when a tag straddles two chunks.
//!
//! A chunk is the next 8191 input bytes, NUL bytes left out (NULs do not
//! count towards the 8191). If the byte after a full chunk is not white
//! space (a NUL counts as not white space), the chunk is cut back to just
//! after its last white-space byte at index 1 or more, and the input position
//! moves back by as many *input bytes* as were cut (which, when NULs were
//! skipped, is not the same text: ClamAV's arithmetic, kept).

/// Bytes in a full chunk.
pub(super) const CHUNK: usize = 8191;

/// C's `isspace` in the C locale.
pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Cuts a stream into chunks; holds at most about two chunks' worth of input
/// (plus NUL runs being skipped, which it compacts).
#[derive(Debug, Default)]
pub(super) struct Chunker {
    raw: Vec<u8>,
    head: usize,
    /// Non-NUL bytes in `raw[head..]`.
    nonnul: usize,
}

impl Chunker {
    pub(super) fn push(&mut self, data: &[u8]) {
        if self.head > 65536 {
            self.raw.drain(..self.head);
            self.head = 0;
        }
        self.raw.extend_from_slice(data);
        self.nonnul += data.iter().filter(|&&b| b != 0).count();
        self.compact();
    }

    /// The next chunk, if it can be cut with what has been pushed (`eof`:
    /// nothing more will come). `None` means: push more, or, at `eof`, the
    /// input is done.
    pub(super) fn next(&mut self, eof: bool) -> Option<Vec<u8>> {
        let rest = &self.raw[self.head..];
        if rest.is_empty() {
            return None;
        }
        // A full chunk needs one byte after it to decide on the cut.
        let decidable = self.nonnul > CHUNK || (self.nonnul == CHUNK && rest.last() == Some(&0));
        if !eof && !decidable {
            return None;
        }
        let mut chunk = Vec::with_capacity(CHUNK.min(rest.len()));
        let mut stop = 0;
        while stop < rest.len() && chunk.len() < CHUNK {
            if rest[stop] != 0 {
                chunk.push(rest[stop]);
            }
            stop += 1;
        }
        let mut back = 0;
        if let Some(&next) = rest.get(stop)
            && !is_space(next)
        {
            // Cut back to just after the last white space at index >= 1.
            if let Some(i) = (1..chunk.len()).rev().find(|&i| is_space(chunk[i])) {
                back = chunk.len() - (i + 1);
                chunk.truncate(i + 1);
            }
        }
        let consumed = stop.saturating_sub(back);
        let gone = &self.raw[self.head..self.head + consumed];
        self.nonnul -= gone.iter().filter(|&&b| b != 0).count();
        self.head += consumed;
        Some(chunk)
    }

    /// Drops NULs that can no longer matter: those more than a chunk behind
    /// the end while the pending chunk is still incomplete (the cut-back
    /// never reaches them), keeping the first pending byte so that an input
    /// of only NULs still gives its one empty chunk.
    fn compact(&mut self) {
        let len = self.raw.len();
        if self.nonnul >= CHUNK || len - self.head < 4 * 65536 {
            return;
        }
        let keep_from = len - (CHUNK + 1);
        let mut w = self.head + 1;
        for r in self.head + 1..len {
            let b = self.raw[r];
            if r >= keep_from || b != 0 {
                self.raw[w] = b;
                w += 1;
            }
        }
        self.raw.truncate(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(input: &[u8], step: usize) -> Vec<Vec<u8>> {
        let mut c = Chunker::default();
        let mut out = Vec::new();
        for part in input.chunks(step.max(1)) {
            c.push(part);
            while let Some(ch) = c.next(false) {
                out.push(ch);
            }
        }
        while let Some(ch) = c.next(true) {
            out.push(ch);
        }
        out
    }

    #[test]
    fn cuts_back_to_a_space() {
        let mut input = vec![b'a'; 8000];
        input.extend_from_slice(b" bbbbbbbbbb");
        input.extend(vec![b'c'; 500]);
        let got = chunks(&input, 1000);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len(), 8001);
        assert_eq!(got[1].len(), input.len() - 8001);
    }

    #[test]
    fn nuls_are_skipped_and_uncounted() {
        let mut input = vec![0u8; 10];
        input.extend(vec![b'x'; 8191]);
        input.push(b' ');
        let got = chunks(&input, 7);
        assert_eq!(got[0].len(), 8191);
        assert_eq!(got[1], b" ");
    }

    #[test]
    fn only_nuls_give_one_empty_chunk() {
        assert_eq!(chunks(&vec![0u8; 300_000], 4096), vec![Vec::<u8>::new()]);
        assert!(chunks(b"", 1).is_empty());
    }

    #[test]
    fn feeding_granularity_does_not_matter() {
        let mut input = Vec::new();
        for i in 0..40_000u32 {
            input.push(match i % 97 {
                0 => b' ',
                5 => 0,
                _ => b'a' + (i % 26) as u8,
            });
        }
        let whole = chunks(&input, input.len());
        for step in [1, 3, 4096, 8191, 8192, 10_000] {
            assert_eq!(chunks(&input, step), whole, "step {step}");
        }
    }
}
