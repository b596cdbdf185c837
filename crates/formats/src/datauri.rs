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
use crate::normalize::html::{HtmlLimits, HtmlNormalizer, HtmlSink, has_html_tag};
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

/// Walks the `data:` URIs of `src`, an HTML page, or text in which
/// ClamAV's raw scan finds an HTML tag (it then scans the file as HTML).
/// Pages over ClamAV's `MaxHTMLNormalize` are not normalized by ClamAV, and
/// give none.
pub(crate) fn walk(
    src: &dyn ReadAt,
    html: bool,
    visitor: &mut dyn Visitor,
) -> Result<(), FormatError> {
    let Some(page) = read(src, 1)? else {
        return Ok(());
    };
    walk_page(&page, html, visitor)
}

/// Walks the `data:` URIs of `src`, an HTML page in UTF-16
/// (`CL_TYPE_HTML_UTF16`): ClamAV makes ASCII of it two bytes a character
/// (`cli_utf16toascii`) and scans that as HTML.
pub(crate) fn walk_utf16(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let Some(page) = read(src, 2)? else {
        return Ok(());
    };
    walk_page(&utf16_to_ascii(&page), true, visitor)
}

/// The whole of `src` when, read `per_char` bytes a character, it is within
/// ClamAV's `MaxHTMLNormalize`.
fn read(src: &dyn ReadAt, per_char: u64) -> Result<Option<Vec<u8>>, FormatError> {
    if src.size() / per_char > HtmlLimits::default().max_normalize {
        return Ok(None);
    }
    let len = usize::try_from(src.size()).unwrap_or(usize::MAX);
    let mut page = vec![0u8; len];
    src.read_exact_at(&mut page, 0)?;
    Ok(Some(page))
}

fn walk_page(page: &[u8], html: bool, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let limits = HtmlLimits::default();
    // Most pages have no `data` at all: they need no second normalization.
    // The normalizer skips zero bytes (UTF-16BE pages are HTML to ClamAV).
    let stripped: Vec<u8>;
    let probe = if memchr::memchr(0, page).is_some() {
        stripped = page.iter().copied().filter(|b| *b != 0).collect();
        &stripped[..]
    } else {
        page
    };
    if !has_data(probe) || (!html && !has_html_tag(page)) {
        return Ok(());
    }
    let mut norm = HtmlNormalizer::new(limits);
    let mut uris = Uris::default();
    norm.feed(page, &mut uris);
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
