//! ASCII text normalization, as ClamAV applies it before matching target-type
//! 7 signatures (`libclamav/textnorm.c`, driven by `cli_scanscript`).
//!
//! Every byte falls in one of four classes:
//!
//! | bytes | action |
//! | --- | --- |
//! | `\t \n \v \f \r` and space | a run of them becomes one space |
//! | `A`-`Z` | lower-cased |
//! | other bytes `0x21..=0x7f` | copied |
//! | other controls (`< 0x20`) and bytes `>= 0x80` | dropped |
//!
//! A dropped byte does not end a whitespace run: `"a \x01 b"` gives `"a b"`.
//! The only state carried between chunks is whether a space was just written,
//! so the normalizer streams over input of any size in constant memory.

/// What one input byte does to the output.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Skip,
    Space,
    Lower,
    Copy,
}

const fn class(b: u8) -> Class {
    match b {
        b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' => Class::Space,
        b'A'..=b'Z' => Class::Lower,
        0x21..=0x7f => Class::Copy,
        _ => Class::Skip,
    }
}

/// A streaming ASCII normalizer. Feed it chunks in order; the output is the
/// same whatever the chunking.
///
/// ClamAV resets the "space just written" flag whenever it flushes its
/// normalization buffer (`text_normalize_reset`); [`AsciiNormalizer::reset`]
/// does the same, for a caller that reproduces ClamAV's buffer boundaries
/// (see the module docs of [`crate::normalize`]).
#[derive(Debug, Default, Clone)]
pub struct AsciiNormalizer {
    space_written: bool,
}

impl AsciiNormalizer {
    /// A normalizer at the start of a text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget that the last byte written was a space, as ClamAV does when it
    /// starts a new output buffer: a whitespace run that straddles the
    /// boundary then gives two spaces.
    pub fn reset(&mut self) {
        self.space_written = false;
    }

    /// Normalizes `input`, appending to `out` until `out` holds `out_limit`
    /// bytes. Returns how many input bytes were consumed: all of `input`,
    /// unless `out` filled up first (then the rest is for the caller to feed
    /// again after draining `out`, exactly as ClamAV's
    /// `text_normalize_buffer` stops).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, out_limit: usize) -> usize {
        let mut consumed = 0;
        for &b in input {
            if out.len() >= out_limit {
                break;
            }
            consumed += 1;
            match class(b) {
                Class::Skip => {}
                Class::Space => {
                    if !self.space_written {
                        out.push(b' ');
                        self.space_written = true;
                    }
                }
                Class::Lower => {
                    out.push(b.to_ascii_lowercase());
                    self.space_written = false;
                }
                Class::Copy => {
                    out.push(b);
                    self.space_written = false;
                }
            }
        }
        consumed
    }
}

/// Normalizes a whole text, stopping once the output holds `out_limit` bytes.
/// The second value is true when the output limit cut the text short.
pub fn normalize(input: &[u8], out_limit: usize) -> (Vec<u8>, bool) {
    // Output never exceeds the input, so the input bounds the allocation.
    let mut out = Vec::with_capacity(input.len().min(out_limit));
    let consumed = AsciiNormalizer::new().feed(input, &mut out, out_limit);
    (out, consumed < input.len())
}

/// ClamAV's scan buffer for normalized text (`SCANBUFF`, a build setting,
/// 128 KiB in Debian's build).
pub const SCANBUFF: usize = 131_072;

/// ClamAV reads a mapped file a page at a time (`fmap`'s page size).
pub const PAGE: usize = 4096;

/// The buffers `cli_scanscript` hands to the matcher, one after another,
/// reproduced exactly: ClamAV normalizes page by page into a buffer of
/// `SCANBUFF + maxpatlen` bytes; when the next page might not fit, it scans
/// the buffer, keeps its last `maxpatlen` bytes at the front (so that a
/// signature straddling two buffers still matches) and starts over with the
/// space flag reset. With `--leave-temps` the kept file is these buffers
/// concatenated, the overlaps included.
///
/// `maxpatlen` is the longest type-7 pattern in the loaded database. This is
/// the path ClamAV takes when no type-7 signature has a relative offset; with
/// one, it instead normalizes blocks of `SCANBUFF + maxpatlen` input bytes,
/// each with a fresh [`AsciiNormalizer`], into one file scanned whole.
#[derive(Debug)]
pub struct ScriptBuffers {
    norm: AsciiNormalizer,
    buf: Vec<u8>,
    cap: usize,
    maxpatlen: usize,
    page: Vec<u8>,
}

impl ScriptBuffers {
    /// A new run for a database whose longest type-7 pattern is `maxpatlen`.
    pub fn new(maxpatlen: usize) -> Self {
        let cap = SCANBUFF.saturating_add(maxpatlen);
        Self {
            norm: AsciiNormalizer::new(),
            buf: Vec::with_capacity(cap),
            cap,
            maxpatlen,
            page: Vec::with_capacity(PAGE),
        }
    }

    /// Feeds input; `scan` is called with each full buffer.
    pub fn feed(&mut self, mut input: &[u8], scan: &mut dyn FnMut(&[u8])) {
        while !input.is_empty() {
            let take = (PAGE - self.page.len()).min(input.len());
            self.page.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.page.len() == PAGE {
                let page = std::mem::take(&mut self.page);
                self.push_page(&page, scan);
                self.page = page;
                self.page.clear();
            }
        }
    }

    /// Ends the input; `scan` gets the last buffer (possibly empty, as in
    /// ClamAV, which always scans once at the end).
    pub fn finish(mut self, scan: &mut dyn FnMut(&[u8])) {
        let page = std::mem::take(&mut self.page);
        if !page.is_empty() {
            self.push_page(&page, scan);
        }
        scan(&self.buf);
    }

    fn push_page(&mut self, page: &[u8], scan: &mut dyn FnMut(&[u8])) {
        if self.buf.len() + page.len() > self.cap {
            scan(&self.buf);
            let keep = self.maxpatlen.min(self.buf.len());
            let from = self.buf.len() - keep;
            self.buf.copy_within(from.., 0);
            self.buf.truncate(keep);
            self.norm.reset();
        }
        // Fits by the check above: the whole page is consumed.
        self.norm.feed(page, &mut self.buf, self.cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let (out, cut) = normalize(b"  Hello,\t\r\nWORLD!\x01\x7f\x80\xff~ ", usize::MAX);
        assert_eq!(out, b" hello, world!\x7f~ ");
        assert!(!cut);
    }

    #[test]
    fn dropped_bytes_do_not_split_a_whitespace_run() {
        assert_eq!(normalize(b"a \x01\x80 b", 100).0, b"a b");
        assert_eq!(normalize(b"a\x01b", 100).0, b"ab");
    }

    #[test]
    fn chunking_does_not_change_output() {
        let input = b"One  Two\n\n\tTHREE \x00 four";
        let whole = normalize(input, usize::MAX).0;
        for split in 0..input.len() {
            let mut n = AsciiNormalizer::new();
            let mut out = Vec::new();
            n.feed(&input[..split], &mut out, usize::MAX);
            n.feed(&input[split..], &mut out, usize::MAX);
            assert_eq!(out, whole, "split at {split}");
        }
    }

    #[test]
    fn output_limit_stops_and_reports_consumed() {
        let mut n = AsciiNormalizer::new();
        let mut out = Vec::new();
        let used = n.feed(b"AB  CD", &mut out, 3);
        assert_eq!(out, b"ab ");
        // The second space was not consumed: the output was full before it.
        assert_eq!(used, 3);
        let (out, cut) = normalize(b"AB  CD", 3);
        assert_eq!(out, b"ab ");
        assert!(cut);
    }

    #[test]
    fn reset_allows_a_second_space() {
        let mut n = AsciiNormalizer::new();
        let mut out = Vec::new();
        n.feed(b"a ", &mut out, 100);
        n.reset();
        n.feed(b" b", &mut out, 100);
        assert_eq!(out, b"a  b");
    }
}
