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
//!
//! Nothing is held whole: the file is read [`WINDOW`] bytes at a time and
//! fed to the streaming normalizers, and each copy is kept in memory up to
//! [`IN_MEMORY`] bytes, past that in an unnamed temporary file scanned as
//! files are, window by window (its hashes computed on the way).

use std::io::{self, Write as _};

use aether_formats::FileType;
use aether_formats::filetype::utf16_to_ascii;
use aether_formats::normalize::ascii::{SCANBUFF, ScriptBuffers};
use aether_formats::normalize::{
    self, AsciiNormalizer, HtmlLimits, HtmlNormalizer, HtmlSink, HtmlTagProbe, LimitHit, WINDOW,
};
use aether_sigs::{Offset, TargetType};

use crate::pattern::{Elem, Program};
use crate::scanner::{DerivedScan, Input, ScanError, Scanner};
use crate::spill::{Spill, Spilled};

/// ClamAV ignores files of this many bytes or fewer.
pub(crate) const SMALL_FILE: u64 = 5;

/// Bytes of a normalized copy kept in memory; a longer copy goes to an
/// unnamed temporary file (`O_TMPFILE`, gone when closed).
pub(crate) const IN_MEMORY: usize = 1 << 20;

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

/// The first `size` bytes of `input`, [`WINDOW`] bytes at a time, to `each`
/// until it returns false.
fn windows(
    input: &Input<'_>,
    size: u64,
    each: &mut dyn FnMut(&[u8]) -> bool,
) -> Result<(), ScanError> {
    match input {
        Input::Bytes(d) => {
            let len = usize::try_from(size).map_or(d.len(), |s| s.min(d.len()));
            for w in d.get(..len).unwrap_or_default().chunks(WINDOW) {
                if !each(w) {
                    break;
                }
            }
            Ok(())
        }
        Input::File(_) => Ok(normalize::read_windows(input.as_source(), size, each)?),
    }
}

/// A normalized copy as it is written: in memory up to [`IN_MEMORY`] bytes,
/// then in an unnamed temporary file.
#[derive(Debug)]
struct Spool {
    spill: Spill,
    /// Dropped: ClamAV does not scan this copy.
    off: bool,
    /// The first write that failed; nothing is written after it.
    error: Option<io::Error>,
}

impl Default for Spool {
    fn default() -> Spool {
        Spool {
            // aether's own output guard (`HtmlLimits::max_output`) bounds
            // the copies; this one never refuses.
            spill: Spill::new(IN_MEMORY as u64, u64::MAX),
            off: false,
            error: None,
        }
    }
}

impl Spool {
    fn push(&mut self, data: &[u8]) {
        if self.off || self.error.is_some() || data.is_empty() {
            return;
        }
        if let Err(e) = self.spill.write_all(data) {
            self.error = Some(e);
        }
    }

    fn finish(self) -> io::Result<Spilled> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.spill.finish()
    }
}

impl Spilled {
    /// Scans the copy as [`Scanner::scan_derived`] does, from memory or
    /// window by window from its file.
    fn scan(
        &self,
        scanner: &mut Scanner<'_>,
        types: u32,
        hashed: bool,
        tdb_size: Option<u64>,
        all_match: bool,
        containers: &[FileType],
    ) -> Result<(u64, bool), ScanError> {
        let input = match self {
            Spilled::Memory(m) => Input::Bytes(m),
            Spilled::File(f, _) => Input::File(f),
        };
        let how = DerivedScan {
            types,
            hashed,
            tdb_size,
            all_match,
        };
        scanner.scan_copy(&input, self.len(), how, containers)
    }
}

/// ClamAV's normalized text (see the module docs), made as the input is
/// fed in pieces of any size: the same bytes whatever the pieces.
enum TextNormalizer {
    /// The buffers `cli_scanscript` hands its matcher.
    Buffers(ScriptBuffers),
    /// Blocks of at most `cap` output bytes, each from a fresh normalizer
    /// (`text_normalize_map`, then a reset); `in_block` bytes are in the
    /// current one.
    Blocks {
        norm: AsciiNormalizer,
        cap: usize,
        in_block: usize,
        out: Vec<u8>,
    },
}

impl TextNormalizer {
    fn new(root: AsciiRoot) -> TextNormalizer {
        if root.relative {
            TextNormalizer::Blocks {
                norm: AsciiNormalizer::new(),
                cap: SCANBUFF.saturating_add(root.maxpatlen),
                in_block: 0,
                out: Vec::new(),
            }
        } else {
            TextNormalizer::Buffers(ScriptBuffers::new(root.maxpatlen))
        }
    }

    fn feed(&mut self, mut data: &[u8], emit: &mut dyn FnMut(&[u8])) {
        match self {
            TextNormalizer::Buffers(b) => b.feed(data, emit),
            TextNormalizer::Blocks {
                norm,
                cap,
                in_block,
                out,
            } => {
                while !data.is_empty() {
                    // A full block ends where more input follows.
                    if *in_block >= *cap {
                        norm.reset();
                        *in_block = 0;
                    }
                    out.clear();
                    let used = norm.feed(data, out, *cap - *in_block);
                    *in_block += out.len();
                    emit(out);
                    data = data.get(used..).unwrap_or_default();
                }
            }
        }
    }

    fn finish(self, emit: &mut dyn FnMut(&[u8])) {
        if let TextNormalizer::Buffers(b) = self {
            b.finish(emit);
        }
    }
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
    match ty {
        FileType::Html if size <= normalize::MAX_HTML_NORMALIZE => {
            scan_html(scanner, input, size, false, all_match, containers)
        }
        // ClamAV's raw scan of ASCII text (and GIF images) also looks for
        // HTML tags in the whole file, past the head that typed it: with
        // one, the file is scanned as HTML instead of as text. (ClamAV's
        // "ASCII" text takes any byte from 0x80, so UTF-8 text is ASCII
        // text to it.)
        FileType::Text | FileType::TextUtf8 | FileType::Gif
            if size <= normalize::MAX_HTML_NORMALIZE =>
        {
            let mut probe = HtmlTagProbe::new();
            windows(input, size, &mut |w| !probe.feed(w))?;
            if probe.finish() {
                scan_html(scanner, input, size, false, all_match, containers)
            } else if ty != FileType::Gif && size <= normalize::MAX_SCRIPT_NORMALIZE {
                scan_text(scanner, input, size, all_match, containers)
            } else {
                Ok(0)
            }
        }
        // ClamAV makes ASCII of UTF-16 HTML two bytes a character and
        // scans that as HTML (`cli_scanhtml_utf16`).
        FileType::HtmlUtf16 if size / 2 <= normalize::MAX_HTML_NORMALIZE => {
            scan_html(scanner, input, size, true, all_match, containers)
        }
        FileType::TextUtf16Le | FileType::TextUtf16Be
            if size <= normalize::MAX_SCRIPT_NORMALIZE =>
        {
            scan_text(scanner, input, size, all_match, containers)
        }
        _ => Ok(0),
    }
}

/// The three HTML outputs, as they are written.
#[derive(Default)]
struct HtmlCopies {
    nocomment: Spool,
    notags: Spool,
    javascript: Spool,
}

impl HtmlSink for HtmlCopies {
    fn nocomment(&mut self, data: &[u8]) {
        self.nocomment.push(data);
    }
    fn notags(&mut self, data: &[u8]) {
        self.notags.push(data);
    }
    fn javascript(&mut self, data: &[u8]) {
        self.javascript.push(data);
    }
}

/// The HTML outputs of the input (`utf16`: of its ASCII, two bytes a
/// character), each scanned as ClamAV scans the file it writes.
fn scan_html(
    scanner: &mut Scanner<'_>,
    input: &Input<'_>,
    size: u64,
    utf16: bool,
    all_match: bool,
    containers: &[FileType],
) -> Result<u64, ScanError> {
    let limits = HtmlLimits::default();
    let page_size = if utf16 { size / 2 } else { size };
    let mut copies = HtmlCopies::default();
    // ClamAV does not scan `notags` of a page over MaxHTMLNoTags; the
    // normalizer only learns the size as it is fed.
    copies.notags.off = page_size > limits.max_notags;
    let mut norm = HtmlNormalizer::new(limits);
    windows(input, size, &mut |w| {
        if utf16 {
            norm.feed(&utf16_to_ascii(w), &mut copies);
        } else {
            norm.feed(w, &mut copies);
        }
        true
    })?;
    if norm.finish(&mut copies) == Some(LimitHit::HtmlNormalize) {
        return Ok(0);
    }
    let nocomment = copies.nocomment.finish()?;
    let notags = copies.notags.finish()?;
    let javascript = copies.javascript.finish()?;
    let buffers = [
        (&nocomment, AS_HTML),
        (&notags, AS_HTML),
        (&javascript, AS_HTML),
        (&javascript, AS_TEXT),
    ];
    let mut limited = 0;
    for (copy, types) in buffers {
        if copy.is_empty() {
            continue;
        }
        // Each is scanned as a file ClamAV wrote: its hashes too.
        let (regex_limits, found) = copy.scan(scanner, types, true, None, all_match, containers)?;
        limited += regex_limits;
        if found && !all_match {
            break;
        }
    }
    Ok(limited)
}

/// The normalized text of the input, scanned.
fn scan_text(
    scanner: &mut Scanner<'_>,
    input: &Input<'_>,
    size: u64,
    all_match: bool,
    containers: &[FileType],
) -> Result<u64, ScanError> {
    let root = scanner.engine.db.ascii_root;
    let mut text = Spool::default();
    let mut norm = TextNormalizer::new(root);
    let mut emit = |b: &[u8]| text.push(b);
    windows(input, size, &mut |w| {
        norm.feed(w, &mut emit);
        true
    })?;
    norm.finish(&mut emit);
    let text = text.finish()?;
    // Only the blocks go to a file of their own, whose hashes are checked
    // and whose size `FileSize` compares; buffers are matched in memory, as
    // parts of the text file.
    let tdb_size = (!root.relative).then_some(size);
    Ok(text
        .scan(
            scanner,
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

    /// The normalized text of `data` fed in pieces of `step` bytes.
    fn normalized_text(data: &[u8], root: AsciiRoot, step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut emit = |b: &[u8]| out.extend_from_slice(b);
        let mut norm = TextNormalizer::new(root);
        for piece in data.chunks(step) {
            norm.feed(piece, &mut emit);
        }
        norm.finish(&mut emit);
        out
    }

    /// ClamAV's blocks as made from the whole text at once: each of at
    /// most `cap` bytes from a fresh normalizer.
    fn blocks_of_whole(data: &[u8], cap: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut norm = AsciiNormalizer::new();
        let mut rest = data;
        while !rest.is_empty() {
            let mut block = Vec::new();
            norm.reset();
            let used = norm.feed(rest, &mut block, cap);
            out.extend_from_slice(&block);
            rest = &rest[used..];
        }
        out
    }

    #[test]
    fn spool_spills_past_the_bound() {
        let mut s = Spool::default();
        s.push(&vec![b'a'; IN_MEMORY - 1]);
        s.push(b"b");
        let Ok(Spilled::Memory(m)) = s.finish() else {
            panic!("{IN_MEMORY} bytes stay in memory");
        };
        assert_eq!(m.len(), IN_MEMORY);

        let mut s = Spool::default();
        s.push(&vec![b'a'; IN_MEMORY]);
        s.push(b"bc");
        s.push(b"");
        let Ok(Spilled::File(f, len)) = s.finish() else {
            panic!("past {IN_MEMORY} bytes the copy is in a file");
        };
        assert_eq!(len, IN_MEMORY as u64 + 2);
        assert_eq!(f.metadata().expect("metadata").len(), len);
        let mut tail = [0u8; 3];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut tail, len - 3).expect("reads");
        assert_eq!(&tail, b"abc");

        let mut off = Spool {
            off: true,
            ..Spool::default()
        };
        off.push(b"dropped");
        assert!(off.finish().is_ok_and(|d| d.is_empty()));
    }

    #[test]
    fn text_does_not_depend_on_the_pieces() {
        let mut line = Vec::new();
        for i in 0..30_000u32 {
            line.extend_from_slice(format!("Word{i} \t\x01\u{e9}  ").as_bytes());
        }
        for root in [
            AsciiRoot {
                maxpatlen: 10,
                relative: false,
            },
            AsciiRoot {
                maxpatlen: 10,
                relative: true,
            },
        ] {
            let whole = normalized_text(&line, root, line.len());
            for step in [1, 7, 4096, WINDOW, SCANBUFF + 10, SCANBUFF + 11] {
                assert!(normalized_text(&line, root, step) == whole, "step {step}");
            }
        }
        let cap = SCANBUFF + 10;
        let relative = AsciiRoot {
            maxpatlen: 10,
            relative: true,
        };
        assert!(normalized_text(&line, relative, WINDOW) == blocks_of_whole(&line, cap));
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
        let text = normalized_text(&line, root, WINDOW);
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
            WINDOW,
        );
        assert!(blocks.len() >= plain.len() && blocks.len() <= plain.len() + 4);
    }
}
