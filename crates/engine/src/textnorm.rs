//! Text and HTML are matched as ClamAV matches them: through their
//! normalized copies (`aether_formats::normalize`).
//!
//! ClamAV matches target-type 3 (HTML) and 7 (ASCII text) signatures only
//! against rewritten copies of a file, and signatures are written against
//! those copies:
//!
//! | file | buffer | target types |
//! |---|---|---|
//! | text (ASCII, UTF-8, UTF-16) | raw bytes | 0 |
//! | | ASCII-normalized text | 0 and 7 |
//! | HTML | raw bytes | none |
//! | | `nocomment`, then `notags` | 0 and 3 |
//! | | `javascript` | 0 and 3, then 0 and 7 |
//! | HTML in UTF-16 (`HTML_UTF16`) | raw bytes | 0 |
//! | | the HTML outputs of its ASCII (`cli_utf16toascii`) | as HTML |
//! | either, 5 bytes or less | | nothing at all |
//!
//! ClamAV types a file by its first KiB, but its raw scan of text (and of
//! GIF images) looks for the HTML tags of its file-type signatures in the
//! whole file: text with such a tag past its head is scanned raw as text
//! and then as HTML, not as normalized text.
//!
//! Each buffer is scanned as ClamAV scans it: as a file of its own for the
//! logical signatures (their counts start again), with the offsets of its
//! own bytes. Normalized text is the concatenation of the buffers ClamAV
//! hands its matcher (`ScriptBuffers`, overlaps included, whose offsets are
//! ClamAV's), or, when a type-7 signature has a relative offset, of the
//! blocks ClamAV normalizes into a file instead. The copies ClamAV writes
//! to files of their own (the HTML outputs, the blocks) are also checked
//! against hash signatures, as any file is. ClamAV's limits apply:
//! text over `MaxScriptNormalize` and HTML over `MaxHTMLNormalize` are not
//! normalized, `notags` is dropped for HTML over `MaxHTMLNoTags`.

use aether_formats::FileType;
use aether_formats::normalize::ascii::{SCANBUFF, ScriptBuffers};
use aether_formats::normalize::{self, AsciiNormalizer, HtmlLimits};
use aether_sigs::{Offset, TargetType};

use crate::pattern::{Elem, Program};
use crate::scanner::{Input, ScanError, Scanner};

/// ClamAV ignores files of this many bytes or fewer.
pub(crate) const SMALL_FILE: u64 = 5;

const fn bit(t: TargetType) -> u32 {
    1 << t as u32
}

/// Target types matched against normalized text and `javascript` as text.
const AS_TEXT: u32 = bit(TargetType::Any) | bit(TargetType::Ascii);
/// Target types matched against the HTML outputs.
const AS_HTML: u32 = bit(TargetType::Any) | bit(TargetType::Html);

/// What ClamAV's type-7 matcher needs to know to cut normalized text.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AsciiRoot {
    /// The longest type-7 pattern (ClamAV's `maxpatlen` of its type-7 root):
    /// how much of each buffer is carried into the next.
    pub(crate) maxpatlen: usize,
    /// Some type-7 pattern has a relative offset (`EOF-n`): ClamAV then
    /// normalizes into a file, block by block, and scans it whole.
    pub(crate) relative: bool,
}

impl AsciiRoot {
    pub(crate) fn of(programs: &[Program]) -> AsciiRoot {
        let mut root = AsciiRoot::default();
        for p in programs.iter().filter(|p| p.target == TargetType::Ascii) {
            // ClamAV splits patterns at gaps; its length counts pattern
            // positions (an alternative is one).
            let longest = p
                .elems
                .split(|e| matches!(e, Elem::Gap { .. }))
                .map(|part| part.len())
                .max()
                .unwrap_or(0);
            root.maxpatlen = root.maxpatlen.max(longest);
            root.relative |= !matches!(p.offset, Offset::Any | Offset::Absolute { .. });
        }
        root
    }
}

/// The whole input, when it is at most `max` bytes.
fn whole<'a>(
    input: &'a Input<'_>,
    size: u64,
    max: u64,
    buf: &'a mut Vec<u8>,
) -> Result<Option<&'a [u8]>, ScanError> {
    if size > max {
        return Ok(None);
    }
    match input {
        Input::Bytes(d) => Ok(Some(d)),
        Input::File(_) => {
            let len = usize::try_from(size).unwrap_or(usize::MAX);
            buf.resize(len, 0);
            input.as_source().read_exact_at(buf, 0)?;
            Ok(Some(buf))
        }
    }
}

/// ClamAV's normalized text for `data` (see the module docs).
pub(crate) fn normalized_text(data: &[u8], root: AsciiRoot) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len().min(SCANBUFF * 2));
    if root.relative {
        // Blocks of at most `SCANBUFF + maxpatlen` output bytes, each from a
        // fresh normalizer (`text_normalize_map`, then a reset).
        let cap = SCANBUFF.saturating_add(root.maxpatlen);
        let mut norm = AsciiNormalizer::new();
        let mut rest = data;
        while !rest.is_empty() {
            let mut block = Vec::new();
            norm.reset();
            let used = norm.feed(rest, &mut block, cap);
            out.extend_from_slice(&block);
            if used == 0 {
                break;
            }
            rest = rest.get(used..).unwrap_or_default();
        }
    } else {
        let mut buffers = ScriptBuffers::new(root.maxpatlen);
        let mut push = |b: &[u8]| out.extend_from_slice(b);
        buffers.feed(data, &mut push);
        buffers.finish(&mut push);
    }
    out
}

/// Scans the normalized copies of a text or HTML input of `size` bytes;
/// matches go to the scan's detections. Returns how many regex runs
/// PCRE2's limits stopped.
pub(crate) fn scan_normalized(
    scanner: &mut Scanner<'_>,
    input: &Input<'_>,
    size: u64,
    ty: FileType,
    all_match: bool,
    containers: &[FileType],
) -> Result<u64, ScanError> {
    if size <= SMALL_FILE {
        return Ok(0);
    }
    let mut owned = Vec::new();
    match ty {
        FileType::Html => {
            let Some(data) = whole(input, size, normalize::MAX_HTML_NORMALIZE, &mut owned)? else {
                return Ok(0);
            };
            scan_html(scanner, data, all_match, containers)
        }
        // ClamAV's raw scan of ASCII text (and GIF images) also looks for
        // HTML tags in the whole file, past the head that typed it: with
        // one, the file is scanned as HTML instead of as text. (ClamAV's
        // "ASCII" text takes any byte from 0x80, so UTF-8 text is ASCII
        // text to it.)
        FileType::Text | FileType::TextUtf8 | FileType::Gif => {
            let Some(data) = whole(input, size, normalize::MAX_HTML_NORMALIZE, &mut owned)? else {
                return Ok(0);
            };
            if normalize::has_html_tag(data) {
                scan_html(scanner, data, all_match, containers)
            } else if ty != FileType::Gif && size <= normalize::MAX_SCRIPT_NORMALIZE {
                scan_text(scanner, data, all_match, containers)
            } else {
                Ok(0)
            }
        }
        // ClamAV makes ASCII of UTF-16 HTML two bytes a character and
        // scans that as HTML (`cli_scanhtml_utf16`).
        FileType::HtmlUtf16 => {
            let Some(data) = whole(
                input,
                size,
                2 * normalize::MAX_HTML_NORMALIZE + 1,
                &mut owned,
            )?
            else {
                return Ok(0);
            };
            let ascii = aether_formats::filetype::utf16_to_ascii(data);
            if ascii.len() as u64 > normalize::MAX_HTML_NORMALIZE {
                return Ok(0);
            }
            scan_html(scanner, &ascii, all_match, containers)
        }
        FileType::TextUtf16Le | FileType::TextUtf16Be => {
            let Some(data) = whole(input, size, normalize::MAX_SCRIPT_NORMALIZE, &mut owned)?
            else {
                return Ok(0);
            };
            scan_text(scanner, data, all_match, containers)
        }
        _ => Ok(0),
    }
}

/// The HTML outputs of `data`, each scanned as ClamAV scans the file it
/// writes.
fn scan_html(
    scanner: &mut Scanner<'_>,
    data: &[u8],
    all_match: bool,
    containers: &[FileType],
) -> Result<u64, ScanError> {
    let out = normalize::normalize_html(data, HtmlLimits::default());
    let buffers = [
        (&out.nocomment, AS_HTML),
        (&out.notags, AS_HTML),
        (&out.javascript, AS_HTML),
        (&out.javascript, AS_TEXT),
    ];
    let mut limited = 0;
    for (buf, types) in buffers {
        if buf.is_empty() {
            continue;
        }
        // Each is scanned as a file ClamAV wrote: its hashes too.
        let (regex_limits, found) =
            scanner.scan_derived(buf, types, true, None, all_match, containers)?;
        limited += regex_limits;
        if found && !all_match {
            break;
        }
    }
    Ok(limited)
}

/// The normalized text of `data`, scanned.
fn scan_text(
    scanner: &mut Scanner<'_>,
    data: &[u8],
    all_match: bool,
    containers: &[FileType],
) -> Result<u64, ScanError> {
    let root = scanner.engine.db.ascii_root;
    let text = normalized_text(data, root);
    // Only the blocks go to a file of their own, whose hashes are checked
    // and whose size `FileSize` compares; buffers are matched in memory, as
    // parts of the text file.
    let tdb_size = (!root.relative).then_some(data.len() as u64);
    Ok(scanner
        .scan_derived(
            &text,
            AS_TEXT,
            root.relative,
            tdb_size,
            all_match,
            containers,
        )?
        .0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::NameId;
    use aether_sigs::{BodySig, HexPattern};

    fn program(offset: &str, target: TargetType, hex: &str) -> Program {
        let sig = BodySig {
            name: "t",
            target,
            offset: Offset::parse(offset).expect("offset"),
            pattern: HexPattern::parse(hex).expect("pattern"),
        };
        crate::pattern::compile(&sig, NameId(0))
            .expect("compiles")
            .0
    }

    #[test]
    fn ascii_root_of_type_7_patterns() {
        let progs = vec![
            program("*", TargetType::Ascii, "6162636465{2}616263"),
            program("*", TargetType::Any, "61626364656667686970"),
            program("0", TargetType::Ascii, "616263(64|65)"),
        ];
        assert_eq!(
            AsciiRoot::of(&progs),
            AsciiRoot {
                maxpatlen: 5,
                relative: false
            }
        );
        let progs = vec![program("EOF-4", TargetType::Ascii, "61626364")];
        assert!(AsciiRoot::of(&progs).relative);
    }

    #[test]
    fn text_buffers_carry_the_longest_pattern() {
        let line = b"Hello   World\n".repeat(20_000);
        let root = AsciiRoot {
            maxpatlen: 10,
            relative: false,
        };
        let text = normalized_text(&line, root);
        // Normalized, the text shrinks to 12 bytes a line; the buffers
        // repeat 10 bytes at each boundary.
        let plain = normalize::ascii::normalize(&line, usize::MAX).0;
        assert!(text.len() > plain.len() && text.len() < plain.len() + 100);
        assert!(text.starts_with(b"hello world hello"));
        // The block path has no overlaps.
        let blocks = normalized_text(
            &line,
            AsciiRoot {
                maxpatlen: 10,
                relative: true,
            },
        );
        assert!(blocks.len() >= plain.len() && blocks.len() <= plain.len() + 4);
    }
}
