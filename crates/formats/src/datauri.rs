//! The `data:` URIs (RFC 2397) of an HTML page, as members.
//!
//! ClamAV's HTML normalizer writes each `data:` URI of an attribute value to
//! a file of its own (`rfc2397/` in its temporary directory): a small MIME
//! message, `From html-normalise`, the URI's `Content-type:`, a
//! `Content-transfer-encoding: base64` line when the type says `;base64`,
//! then the data. `cli_scanhtml` scans those files as files, so the message
//! is typed as mail and its base64 body decoded and scanned: that is how an
//! executable inlined in `<a href="data:...;base64,...">` is found. Each
//! such file is a member here, produced by the same normalizer
//! ([`crate::normalize::html`]) that gives the page's normalized copies.

use std::io::Cursor;

use crate::filetype::utf16_to_ascii;
use crate::normalize::html::{HtmlLimits, HtmlNormalizer, HtmlSink, HtmlTagProbe};
use crate::normalize::read_windows;
use crate::source::ReadAt;
use crate::walk::{Body, Flow, FormatError, Member, Problem, Visitor, visit};

/// `data:` URIs taken from one page at most (ClamAV has no limit; MaxFiles
/// applies to the members anyway).
const MAX_URIS: usize = 10_000;

/// Whether `page` may hold a `data:` URI: `data:` or `data&` in any case
/// (the colon may be a reference), or a numeric reference (which could
/// spell the letters). Pages full of `data-` attributes (documentation
/// generators) need no second normalization.
fn has_data(page: &[u8]) -> bool {
    memchr::memchr3_iter(b'd', b'D', b'&', page).any(|i| {
        page.get(i..i + 5)
            .is_some_and(|w| w[..4].eq_ignore_ascii_case(b"data") && (w[4] == b':' || w[4] == b'&'))
            || page.get(i..i + 2) == Some(b"&#")
    })
}

#[derive(Default)]
struct Uris {
    files: Vec<Vec<u8>>,
    dropped: usize,
}

impl HtmlSink for Uris {
    fn nocomment(&mut self, _: &[u8]) {}
    fn notags(&mut self, _: &[u8]) {}
    fn data_uri(&mut self, file: &[u8]) {
        if self.files.len() < MAX_URIS {
            self.files.push(file.to_vec());
        } else {
            self.dropped += 1;
        }
    }
}

/// Whether a page may hold a `data:` URI, [`has_data`] of it with its NUL
/// bytes left out (the normalizer skips them: UTF-16BE pages are HTML to
/// ClamAV), over a page fed in pieces.
#[derive(Default)]
struct DataProbe {
    /// The last bytes looked at, then the piece being looked at.
    buf: Vec<u8>,
    found: bool,
}

impl DataProbe {
    /// The longest needle of [`has_data`] less one: what a needle cut by
    /// the end of a piece can have in it.
    const CARRY: usize = 4;

    fn feed(&mut self, piece: &[u8]) -> bool {
        if !self.found {
            let carry = self.buf.len().saturating_sub(Self::CARRY);
            self.buf.drain(..carry);
            self.buf.extend(piece.iter().copied().filter(|b| *b != 0));
            self.found = has_data(&self.buf);
        }
        self.found
    }
}

/// Walks the `data:` URIs of `src`, an HTML page, or text in which
/// ClamAV's raw scan finds an HTML tag (it then scans the file as HTML).
/// Pages over ClamAV's `MaxHTMLNormalize` are not normalized by ClamAV, and
/// give none.
pub(crate) fn walk(
    src: &dyn ReadAt,
    html: bool,
    visitor: &mut dyn Visitor,
) -> Result<(), FormatError> {
    walk_page(src, html, false, visitor)
}

/// Walks the `data:` URIs of `src`, an HTML page in UTF-16
/// (`CL_TYPE_HTML_UTF16`): ClamAV makes ASCII of it two bytes a character
/// (`cli_utf16toascii`) and scans that as HTML.
pub(crate) fn walk_utf16(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    walk_page(src, true, true, visitor)
}

/// Reads the page in windows, twice at most: once to see whether it may
/// hold a `data:` URI at all (most pages have none, and need no second
/// normalization), then to normalize it. `utf16`: each window is made
/// ASCII two bytes a character first.
fn walk_page(
    src: &dyn ReadAt,
    html: bool,
    utf16: bool,
    visitor: &mut dyn Visitor,
) -> Result<(), FormatError> {
    let limits = HtmlLimits::default();
    let size = src.size();
    let per_char = if utf16 { 2 } else { 1 };
    if size / per_char > limits.max_normalize {
        return Ok(());
    }
    let ascii = |w: &[u8]| utf16.then(|| utf16_to_ascii(w));
    let mut data = DataProbe::default();
    // Text is HTML to ClamAV when a tag is anywhere in its raw bytes.
    let mut tag = (!html).then(HtmlTagProbe::new);
    read_windows(src, size, &mut |w| {
        let page = ascii(w);
        let found = data.feed(page.as_deref().unwrap_or(w));
        let tagged = tag.as_mut().is_none_or(|t| t.feed(w));
        !(found && tagged)
    })?;
    if !data.found || tag.is_some_and(|t| !t.finish()) {
        return Ok(());
    }
    let mut norm = HtmlNormalizer::new(limits);
    let mut uris = Uris::default();
    read_windows(src, size, &mut |w| {
        let page = ascii(w);
        norm.feed(page.as_deref().unwrap_or(w), &mut uris);
        true
    })?;
    norm.finish(&mut uris);
    if uris.dropped > 0
        && visitor.problem(Problem::Unsupported {
            member: "rfc2397".to_string(),
            detail: format!(
                "{} data: URIs past the first {MAX_URIS} not scanned",
                uris.dropped
            ),
        }) == Flow::Stop
    {
        return Ok(());
    }
    for file in uris.files {
        let declared = file.len() as u64;
        let mut m = Member::new(
            "rfc2397".to_string(),
            Body::Read(Box::new(Cursor::new(file))),
        );
        m.declared_size = Some(declared);
        if visit(visitor, &mut m) == Flow::Stop {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cuts `page` at pseudo-random places.
    fn pieces(page: &[u8], seed: u64) -> Vec<&[u8]> {
        let mut x = seed | 1;
        let mut rest = page;
        let mut out = Vec::new();
        while !rest.is_empty() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (1 + x % 9) as usize;
            let (a, b) = rest.split_at(n.min(rest.len()));
            out.push(a);
            rest = b;
        }
        out
    }

    #[test]
    fn data_probe_agrees_with_the_whole_page() {
        let pages: &[&[u8]] = &[
            b"<a href=\"data:text/plain,x\">",
            b"<a href=\"DATA&#58;x\">",
            b"d\0a\0t\0a\0:\0",
            b"<p>&#x41;</p>",
            b"<div data-x=1 data=2>metadata</div> d a t a :",
            b"&\0#",
            b"",
        ];
        for page in pages {
            let stripped: Vec<u8> = page.iter().copied().filter(|b| *b != 0).collect();
            let want = has_data(&stripped);
            for seed in 1..40 {
                let mut probe = DataProbe::default();
                for p in pieces(page, seed) {
                    probe.feed(p);
                }
                assert_eq!(
                    probe.found,
                    want,
                    "{:?} seed {seed}",
                    String::from_utf8_lossy(page)
                );
            }
        }
    }
}
