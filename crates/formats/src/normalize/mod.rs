/*!
Text normalization, as ClamAV applies it before matching signatures whose
target type is 3 (HTML) or 7 (ASCII text).

ClamAV never matches those signatures against the raw file. It first rewrites
the text so that a signature need not care about case, white space, comments
or character references, and matches the rewritten copies:

- [`ascii`]: text files (`CL_TYPE_TEXT_ASCII`, UTF-8, UTF-16) are lower-cased,
  stripped of control and non-ASCII bytes and have white-space runs squeezed
  to one space (`libclamav/textnorm.c`). The normalized text is matched
  against type-7 and type-0 signatures; the raw file is matched too.
- [`html`]: HTML files give three outputs (`libclamav/htmlnorm.c`):
  `nocomment` (comments dropped, tags kept and rewritten, lower-cased,
  character references decoded, `JScript.Encode` blocks decoded), `notags`
  (only the text between tags, plus link and image targets) and
  `javascript` (each script through ClamAV's JavaScript normalizer,
  `libclamav/jsparse/js-norm.c`: variables renamed `n000`..., strings
  joined, `eval`/`unescape`/packer decoded). `nocomment`, `notags` and
  `javascript` are matched against type-3 and type-0 signatures,
  `javascript` again against type-7; the raw HTML file is not matched at
  all, and `notags` not when the file is over `MaxHTMLNoTags`.

Both are byte-for-byte reproductions of ClamAV 1.4's output, proven by
differential tests against Debian's clamscan (`tests/normalize_clamscan.rs`),
quirks included: they exist so that signatures written against ClamAV's
normalized files match here too. Both stream, and nothing in them is
quadratic; what they hold is bounded (see [`HtmlLimits`] for the one place,
a script's tokens, where ClamAV's design needs more than a chunk). Callers
feed them a file [`WINDOW`] bytes at a time ([`read_windows`]), so that a
page of megabytes is never held whole: the outputs are the same however the
input is cut.
*/

pub mod ascii;
mod chunk;
mod entities;
pub mod html;
mod js;
mod screnc;

pub use ascii::AsciiNormalizer;
pub use html::{
    HtmlLimits, HtmlNormalizer, HtmlOutput, HtmlSink, HtmlTagProbe, has_html_tag, normalize_html,
};

use crate::source::ReadAt;

/// Bytes of a file read and fed to a normalizer at a time.
pub const WINDOW: usize = 64 << 10;

/// Reads the first `len` bytes of `src` in windows of [`WINDOW`] bytes (the
/// last one shorter) and hands each to `each`, until it returns false or the
/// bytes run out. The windows are of an even size, so a window of UTF-16
/// never splits a character.
pub fn read_windows(
    src: &dyn ReadAt,
    len: u64,
    each: &mut dyn FnMut(&[u8]) -> bool,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; WINDOW.min(usize::try_from(len).unwrap_or(usize::MAX))];
    let mut at = 0u64;
    while at < len {
        let n = usize::try_from(len - at).map_or(buf.len(), |rest| rest.min(buf.len()));
        let window = &mut buf[..n];
        src.read_exact_at(window, at)?;
        at += n as u64;
        if !each(window) {
            break;
        }
    }
    Ok(())
}

/// ClamAV's default `MaxScriptNormalize` (clamscan `--max-scriptnormalize`):
/// a text file larger than this is not normalized (nor matched against
/// type-7 signatures) at all; its raw bytes are still matched.
pub const MAX_SCRIPT_NORMALIZE: u64 = 20 * 1024 * 1024;

/// ClamAV's default `MaxHTMLNormalize` (`--max-htmlnormalize`): an HTML file
/// larger than this is not normalized, so none of its outputs is matched.
pub const MAX_HTML_NORMALIZE: u64 = 40 * 1024 * 1024;

/// ClamAV's default `MaxHTMLNoTags` (`--max-htmlnotags`): for an HTML file
/// larger than this (the *input* size, despite the option's help text), the
/// `notags` output is not matched.
pub const MAX_HTML_NOTAGS: u64 = 8 * 1024 * 1024;

/// A size limit that changed what was normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHit {
    /// The text was larger than `MaxScriptNormalize`: nothing normalized.
    ScriptNormalize,
    /// The HTML was larger than `MaxHTMLNormalize`: no output at all.
    HtmlNormalize,
    /// The HTML was larger than `MaxHTMLNoTags`: `notags` is dropped.
    HtmlNoTags,
    /// An HTML output reached [`HtmlLimits::max_output`] and was cut there,
    /// or a script had more than a million tokens (aether's own memory
    /// guards; ClamAV has none).
    HtmlOutput,
    /// A script's decoders (`eval`, `unescape`, packer) stopped after their
    /// work limit, leaving the rest of the script as written (aether's guard
    /// against thousands of `eval`s, quadratic in ClamAV).
    ScriptDecode,
}
