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
a script's tokens, where ClamAV's design needs more than a chunk).
*/

pub mod ascii;
mod chunk;
mod entities;
pub mod html;
mod js;
mod screnc;

pub use ascii::AsciiNormalizer;
pub use html::{HtmlLimits, HtmlNormalizer, HtmlOutput, HtmlSink, has_html_tag, normalize_html};

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
