//! HTML normalization, as ClamAV's `htmlnorm.c` does it for `cli_scanhtml`.
//!
//! One pass over the input writes three outputs:
//!
//! - `nocomment`: the page lower-cased, with comments (`<!...>`) and
//!   `<!DOCTYPE>` dropped, white-space runs squeezed to one space (and
//!   dropped entirely inside scripts), tags rewritten as `<name attr=value>`,
//!   character references (`&#65;`, `&#x41;`, `&amp;`) decoded, `'` turned
//!   into `"` inside scripts and around attribute values, and
//!   `JScript.Encode`/`VBScript.Encode` blocks decoded.
//! - `notags`: only the text between tags (not inside scripts or styles),
//!   white space squeezed, plus the target of each `<a href>` and
//!   `<img src>`. Character references become a single space.
//! - `javascript`: each `<script>` element through ClamAV's JavaScript
//!   normalizer (`js.rs`).
//!
//! The state machine is a faithful port of ClamAV 1.4's, and keeps its
//! oddities where they show in the output (they are listed in
//! `docs/formats.md`), because signatures are written against what ClamAV
//! produces. The input is cut into chunks exactly as ClamAV cuts it
//! (`chunk.rs`), since several of those oddities depend on where a
//! chunk ends.

use super::chunk::{CHUNK, Chunker, is_space};
use super::js::JsNormalizer;
use super::{LimitHit, MAX_HTML_NORMALIZE, MAX_HTML_NOTAGS, entities, screnc};

/// ClamAV's fixed buffers for a tag name, an attribute name or value, and an
/// entity name: longer ones are cut (`HTML_STR_LENGTH`).
const STR_LEN: usize = 1024;

/// ClamAV writes each output through an 8 KiB buffer; one state "rewinds"
/// the last byte only while it is still buffered, so the buffer is
/// reproduced.
const FILE_BUFF: usize = 8192;

/// Attribute bytes kept for one tag. ClamAV keeps them all; past this, later
/// attributes are dropped (they only matter when ClamAV re-writes a
/// `<script language="jscript.encode">` tag).
const MAX_ARG_BYTES: usize = 1 << 20;

/// The size limits ClamAV applies to HTML, by input size (clamscan's
/// `--max-htmlnormalize` and `--max-htmlnotags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HtmlLimits {
    /// Larger inputs are not normalized at all.
    pub max_normalize: u64,
    /// For larger inputs `notags` is not produced (ClamAV produces but does
    /// not scan it).
    pub max_notags: u64,
    /// Bytes of each output kept at most, and bytes the packer decoder may
    /// produce per script; the rest is dropped. ClamAV has no such limit:
    /// this one only guards memory, and at its default is far above anything
    /// a page within `max_normalize` produces, except through the two ways
    /// of multiplying input: `JScript.Encode` blocks that decode to further
    /// blocks (ClamAV normalizes the rest of the chunk again for each) and
    /// Dean Edwards' packer, whose words expand to dictionary words.
    pub max_output: u64,
}

impl Default for HtmlLimits {
    fn default() -> Self {
        Self {
            max_normalize: MAX_HTML_NORMALIZE,
            max_notags: MAX_HTML_NOTAGS,
            max_output: 256 * 1024 * 1024,
        }
    }
}

/// Receives the outputs as they are produced, in order within each output.
pub trait HtmlSink {
    /// More of `nocomment`.
    fn nocomment(&mut self, data: &[u8]);
    /// More of `notags`.
    fn notags(&mut self, data: &[u8]);
    /// More of `javascript`: one script normalized by ClamAV's JavaScript
    /// normalizer (`js.rs`), `<script>...</script>`, preceded by a new
    /// line when it is not the first. Each script comes whole when it ends,
    /// since its identifiers are only renamed once it has been read.
    fn javascript(&mut self, data: &[u8]) {
        let _ = data;
    }
    /// One RFC 2397 `data:` URI of an attribute value, as the file ClamAV
    /// writes of it under `rfc2397/` and scans as a file of its own: a
    /// `From html-normalise` header, its `Content-type:` (and
    /// `Content-transfer-encoding: base64` when it says `;base64`), a blank
    /// line, then the data with `%XX` escapes decoded and character
    /// references dropped. Each comes whole when its value ends.
    fn data_uri(&mut self, file: &[u8]) {
        let _ = file;
    }
}

/// Everything [`normalize_html`] produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HtmlOutput {
    pub nocomment: Vec<u8>,
    pub notags: Vec<u8>,
    /// ClamAV's `javascript`: every script, normalized.
    pub javascript: Vec<u8>,
    /// The first limit that applied: past ClamAV's (`HtmlNormalize`,
    /// `HtmlNoTags`) the outputs ClamAV would not scan are empty; past
    /// aether's own guards (`HtmlOutput`, `ScriptDecode`) they are cut short
    /// or left undecoded where the guard stopped.
    pub limit: Option<LimitHit>,
}

impl HtmlSink for HtmlOutput {
    fn nocomment(&mut self, data: &[u8]) {
        self.nocomment.extend_from_slice(data);
    }
    fn notags(&mut self, data: &[u8]) {
        self.notags.extend_from_slice(data);
    }
    fn javascript(&mut self, data: &[u8]) {
        self.javascript.extend_from_slice(data);
    }
}

/// Normalizes a whole HTML document held in memory.
pub fn normalize_html(input: &[u8], limits: HtmlLimits) -> HtmlOutput {
    let mut out = HtmlOutput::default();
    let mut n = HtmlNormalizer::new(limits);
    n.feed(input, &mut out);
    out.limit = n.finish(&mut out);
    match out.limit {
        Some(LimitHit::HtmlNormalize) => {
            out.nocomment.clear();
            out.notags.clear();
            out.javascript.clear();
        }
        Some(LimitHit::HtmlNoTags) => out.notags.clear(),
        _ => {}
    }
    out
}

/// Bytes after a `<` that decide whether it opens one of the tags
/// [`has_html_tag`] looks for: `!doctype html`, the longest.
const TAG_LOOKAHEAD: usize = 13;

fn eq_folded(got: &[u8], want: &[u8]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| g.to_ascii_lowercase() == *w)
}

/// Whether `rest`, the bytes after a `<`, opens one of the tags of
/// [`has_html_tag`] other than `<a `.
fn tag_at(rest: &[u8]) -> bool {
    const SHORT_END: &[u8] = b"> \t\n\r";
    const LONG_END: &[u8] = b"> \t\n\x0b\x0c\r/";
    const TAGS: &[(&[u8], &[u8])] = &[
        (b"html", SHORT_END),
        (b"head", SHORT_END),
        (b"body", SHORT_END),
        (b"script", LONG_END),
        (b"iframe", LONG_END),
        (b"object", LONG_END),
        (b"table", LONG_END),
        (b"img", LONG_END),
    ];
    TAGS.iter().any(|(name, ends)| {
        rest.get(..name.len()).is_some_and(|n| eq_folded(n, name))
            && rest.get(name.len()).is_some_and(|b| ends.contains(b))
    }) || rest
        .get(..TAG_LOOKAHEAD)
        .is_some_and(|d| eq_folded(d, b"!doctype html"))
}

/// Whether `rest`, the bytes after a `<`, opens `<a `.
fn anchor_at(rest: &[u8]) -> bool {
    rest.get(..2).is_some_and(|a| eq_folded(a, b"a "))
}

/// Whether `data` holds `href=` in either case.
fn has_href(data: &[u8]) -> bool {
    data.windows(5).any(|w| eq_folded(w, b"href="))
}

/// Whether `data` holds one of the HTML tags of ClamAV's file-type
/// signatures (`types.ftm`: `<html`, `<head`, `<body`, `<!doctype html`,
/// `<script`, `<iframe`, `<object`, `<table`, `<img`, each followed by one
/// of its delimiters, or `<a ` with `href=` anywhere after it), letters in
/// either case. [`HtmlTagProbe`] answers the same for input in pieces.
pub fn has_html_tag(data: &[u8]) -> bool {
    let mut anchor_seen = None;
    for at in memchr::memchr_iter(b'<', data) {
        let rest = data.get(at + 1..).unwrap_or_default();
        if tag_at(rest) {
            return true;
        }
        if anchor_seen.is_none() && anchor_at(rest) {
            anchor_seen = Some(at + 3);
        }
    }
    // `<a ` and, anywhere after it, `href=`.
    anchor_seen.is_some_and(|from| has_href(data.get(from..).unwrap_or_default()))
}

/// [`has_html_tag`] over input fed in pieces of any size, so that a large
/// file need not be held whole: it keeps the last few bytes of a piece,
/// those a tag cut by the piece's end needs.
#[derive(Debug, Default)]
pub struct HtmlTagProbe {
    /// Bytes not yet settled, then the piece being looked at.
    buf: Vec<u8>,
    /// The input offset of `buf[0]`.
    base: u64,
    /// The input offset from which `href=` completes an `<a `.
    href_from: Option<u64>,
    found: bool,
}

impl HtmlTagProbe {
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks at the next piece of input; true once a tag was found (the
    /// rest of the input need not be fed).
    pub fn feed(&mut self, data: &[u8]) -> bool {
        if !self.found {
            self.buf.extend_from_slice(data);
            self.look(false);
        }
        self.found
    }

    /// Ends the input: whether it holds a tag, as [`has_html_tag`] of the
    /// whole input says.
    pub fn finish(mut self) -> bool {
        if !self.found {
            self.look(true);
        }
        self.found
    }

    fn look(&mut self, eof: bool) {
        let data = &self.buf;
        // A `<` too near the end waits for the bytes that decide it.
        let settled = if eof {
            data.len()
        } else {
            data.len().saturating_sub(TAG_LOOKAHEAD)
        };
        for at in memchr::memchr_iter(b'<', data.get(..settled).unwrap_or_default()) {
            let rest = data.get(at + 1..).unwrap_or_default();
            if tag_at(rest) {
                self.found = true;
                return;
            }
            if self.href_from.is_none() && anchor_at(rest) {
                self.href_from = Some(self.base + at as u64 + 3);
            }
        }
        if let Some(from) = self.href_from {
            let start = usize::try_from(from.saturating_sub(self.base)).unwrap_or(usize::MAX);
            if has_href(data.get(start..).unwrap_or_default()) {
                self.found = true;
                return;
            }
        }
        // Keep the unsettled bytes, and enough for an `href=` cut short.
        let keep_from = settled.min(data.len().saturating_sub(4));
        self.buf.drain(..keep_from);
        self.base += keep_from as u64;
    }
}

/// A streaming HTML normalizer: [`feed`](Self::feed) the input in pieces of
/// any size, then [`finish`](Self::finish). It holds about two of ClamAV's
/// 8 KiB chunks of input, its 8 KiB output buffers, and ClamAV's fixed-size
/// tag buffers, whatever the input.
#[derive(Debug)]
pub struct HtmlNormalizer {
    limits: HtmlLimits,
    fed: u64,
    chunker: Chunker,
    first_line: bool,
    m: Machine,
}

impl HtmlNormalizer {
    pub fn new(limits: HtmlLimits) -> Self {
        Self {
            limits,
            fed: 0,
            chunker: Chunker::default(),
            first_line: true,
            m: Machine::new(limits.max_output),
        }
    }

    /// Normalizes more input. Once the input passes `max_normalize`, nothing
    /// more is produced and [`finish`](Self::finish) reports the limit: the
    /// caller must then discard what it received, as ClamAV normalizes
    /// nothing in a file over the limit (a caller knowing the size up front
    /// should not start). Past `max_notags`, `notags` stops likewise.
    pub fn feed(&mut self, input: &[u8], sink: &mut dyn HtmlSink) {
        if self.m.stopped() {
            return;
        }
        self.fed = self.fed.saturating_add(input.len() as u64);
        if self.fed > self.limits.max_normalize {
            self.m.limit = Some(LimitHit::HtmlNormalize);
            return;
        }
        if self.fed > self.limits.max_notags {
            self.m.limit = Some(LimitHit::HtmlNoTags);
            self.m.text.enabled = false;
        }
        self.chunker.push(input);
        self.drain(false, sink);
    }

    /// Ends the input and flushes the outputs. Returns the limit that
    /// applied, if one did.
    pub fn finish(mut self, sink: &mut dyn HtmlSink) -> Option<LimitHit> {
        if self.m.limit == Some(LimitHit::HtmlNormalize) {
            return self.m.limit;
        }
        self.drain(true, sink);
        self.m.finish(sink);
        if self.m.limit.is_none() {
            self.m.limit = if self.m.o2.capped || self.m.text.capped {
                Some(LimitHit::HtmlOutput)
            } else {
                self.m.js_limit
            };
        }
        self.m.limit
    }

    fn drain(&mut self, eof: bool, sink: &mut dyn HtmlSink) {
        while !self.m.aborted {
            let Some(line) = self.chunker.next(eof) else {
                return;
            };
            if !self.first_line {
                self.m.new_line();
            }
            self.first_line = false;
            self.m.line(line, sink);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Bad,
    Norm,
    EightBit,
    Comment,
    CharRef,
    EntityRefDecode,
    SkipWs,
    TrimWs,
    Tag,
    TagArg,
    TagArgVal,
    TagArgEqual,
    ProcessTag,
    CharRefDecode,
    LookforScrenc,
    JsDecode,
    JsDecodeLength,
    JsDecodeDecrypt,
    Rfc2397Type,
    Rfc2397Init,
    Rfc2397Data,
    Rfc2397Finish,
    Rfc2397Esc,
    EscapeChar,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InTag {
    None,
    Script,
    Style,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoted {
    Single,
    Double,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    NoComment,
    NoTags,
}

/// One output, through a buffer of ClamAV's size.
#[derive(Debug)]
struct FileBuff {
    buf: Vec<u8>,
    which: Which,
    enabled: bool,
    emitted: u64,
    cap: u64,
    capped: bool,
}

impl FileBuff {
    fn new(which: Which, cap: u64) -> Self {
        Self {
            buf: Vec::with_capacity(FILE_BUFF),
            which,
            enabled: true,
            emitted: 0,
            cap,
            capped: false,
        }
    }

    fn emit(&mut self, data: &[u8], sink: &mut dyn HtmlSink) {
        if !self.enabled || data.is_empty() {
            return;
        }
        let room = self.cap.saturating_sub(self.emitted);
        let data = if (data.len() as u64) > room {
            self.capped = true;
            &data[..room as usize]
        } else {
            data
        };
        if data.is_empty() {
            return;
        }
        self.emitted += data.len() as u64;
        match self.which {
            Which::NoComment => sink.nocomment(data),
            Which::NoTags => sink.notags(data),
        }
    }

    fn flush(&mut self, sink: &mut dyn HtmlSink) {
        let buf = std::mem::take(&mut self.buf);
        self.emit(&buf, sink);
        self.buf = buf;
        self.buf.clear();
    }

    fn c(&mut self, b: u8, sink: &mut dyn HtmlSink) {
        if self.buf.len() == FILE_BUFF {
            self.flush(sink);
        }
        self.buf.push(b);
    }

    fn s(&mut self, data: &[u8], sink: &mut dyn HtmlSink) {
        if self.buf.len() + data.len() >= FILE_BUFF {
            self.flush(sink);
        }
        if data.len() >= FILE_BUFF {
            self.emit(data, sink);
        } else {
            self.buf.extend_from_slice(data);
        }
    }

    /// Takes back the last byte if it is still buffered.
    fn rewind(&mut self) {
        self.buf.pop();
    }
}

/// The bytes of a C string held in a buffer: up to the first NUL.
fn cstr(b: &[u8]) -> &[u8] {
    match memchr::memchr(0, b) {
        Some(i) => &b[..i],
        None => b,
    }
}

fn lower(b: u8) -> u8 {
    b.to_ascii_lowercase()
}

/// The pointers into the current chunk that ClamAV keeps.
#[derive(Debug, Default)]
struct LinePtrs {
    js_begin: Option<usize>,
    js_end: Option<usize>,
    ptr_screnc: Option<usize>,
}

/// ClamAV's `u16_normalize`: a code point, cut to 16 bits, as bytes.
fn u16_normalize(v: u16, out: &mut Vec<u8>) {
    if v == 0 {
    } else if v < 0xff {
        out.push(v as u8);
    } else if matches!(v, 0x3002 | 0xff0e | 0xfe52) {
        // Ideographic and full-width full stops: a dot, against URL tricks.
        out.push(b'.');
    } else {
        out.extend_from_slice(format!("&#x{v:04x};").as_bytes());
    }
}

/// The multi-byte sequences ClamAV turns into a dot (full stops).
fn is_dot(mb: u32, c: u8) -> bool {
    matches!(mb, 0xE38082 | 0xEFBC8E | 0xEFB992) || (mb == 0xA1 && matches!(c, 0x43 | 0x44 | 0x4F))
}

#[derive(Debug)]
struct Machine {
    state: State,
    next_state: State,
    saved_next_state: State,
    in_tag: InTag,
    binary: bool,
    escape: bool,
    hex: bool,
    value: i64,
    look_for_screnc: bool,
    in_screnc: bool,
    text_space_written: bool,
    tag: Vec<u8>,
    tag_arg: Vec<u8>,
    tag_val: Vec<u8>,
    tag_args: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    arg_bytes: usize,
    quoted: Quoted,
    esc_length: u64,
    screnc: screnc::State,
    entity_val: Vec<u8>,
    mbchar: u32,
    mbchar2: u32,
    /// The script being read, as ClamAV's `js_state`.
    js: Option<JsNormalizer>,
    /// Whether `javascript` has a script already.
    js_written: bool,
    js_emitted: u64,
    /// The first limit met by a script.
    js_limit: Option<LimitHit>,
    max_output: u64,
    style_begin: Option<usize>,
    o2: FileBuff,
    text: FileBuff,
    /// The `data:` URI being read, as ClamAV's file of it.
    data_uri: Option<Vec<u8>>,
    aborted: bool,
    limit: Option<LimitHit>,
}

impl Machine {
    fn new(max_output: u64) -> Self {
        Self {
            state: State::Norm,
            next_state: State::Bad,
            saved_next_state: State::Bad,
            in_tag: InTag::None,
            binary: false,
            escape: false,
            hex: false,
            value: 0,
            look_for_screnc: false,
            in_screnc: false,
            text_space_written: false,
            tag: Vec::with_capacity(STR_LEN),
            tag_arg: Vec::with_capacity(STR_LEN),
            tag_val: Vec::with_capacity(STR_LEN),
            tag_args: Vec::new(),
            arg_bytes: 0,
            quoted: Quoted::Not,
            esc_length: 0,
            screnc: screnc::State::default(),
            entity_val: Vec::with_capacity(STR_LEN),
            mbchar: 0,
            mbchar2: 0,
            js: None,
            js_written: false,
            js_emitted: 0,
            js_limit: None,
            max_output,
            style_begin: None,
            o2: FileBuff::new(Which::NoComment, max_output),
            text: FileBuff::new(Which::NoTags, max_output),
            data_uri: None,
            aborted: false,
            limit: None,
        }
    }

    fn stopped(&self) -> bool {
        self.aborted || self.limit == Some(LimitHit::HtmlNormalize)
    }

    /// A byte of the current `data:` URI's file (cut at `max_output`).
    fn data_push(&mut self, b: u8) {
        if let Some(f) = &mut self.data_uri
            && (f.len() as u64) < self.max_output
        {
            f.push(b);
        }
    }

    /// Hands the current `data:` URI's file to the sink.
    fn data_end(&mut self, sink: &mut dyn HtmlSink) {
        if let Some(f) = self.data_uri.take() {
            sink.data_uri(&f);
        }
    }

    fn tv_push(&mut self, b: u8) {
        if self.tag_val.len() < STR_LEN {
            self.tag_val.push(b);
        }
    }

    /// Pushes to the attribute value only when a reference is being decoded
    /// inside one.
    fn ref_tv_push(&mut self, b: u8) {
        if self.next_state == State::TagArgVal {
            self.tv_push(b);
        }
    }

    fn arg_add(&mut self, with_value: bool) {
        let name = self.tag_arg.clone();
        let value = with_value.then(|| {
            let v = cstr(&self.tag_val);
            match v.split_first() {
                Some((b'"', rest)) => rest[..rest.len().saturating_sub(1)].to_vec(),
                _ => v.to_vec(),
            }
        });
        let size = name.len() + value.as_ref().map_or(0, Vec::len);
        if self.arg_bytes + size <= MAX_ARG_BYTES {
            self.arg_bytes += size;
            self.tag_args.push((name, value));
        }
    }

    fn arg_value(&self, name: &[u8]) -> Option<Option<&[u8]>> {
        self.tag_args
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref())
    }

    /// Called before each chunk after the first (the end of ClamAV's loop).
    fn new_line(&mut self) {
        if self.in_tag == InTag::Style {
            self.style_begin = Some(0);
        }
        if self.in_screnc {
            self.state = State::JsDecodeDecrypt;
            self.next_state = State::Bad;
        } else if self.look_for_screnc && self.state != State::LookforScrenc {
            self.saved_next_state = self.next_state;
            self.next_state = self.state;
            self.state = State::LookforScrenc;
        }
        if self.next_state == self.state {
            // ClamAV's guard against a loop.
            self.next_state = State::Bad;
        }
    }

    fn line(&mut self, mut line: Vec<u8>, sink: &mut dyn HtmlSink) {
        let mut ptr = 0;
        let mut lp = LinePtrs::default();
        loop {
            while ptr < line.len() && is_space(line[ptr]) {
                ptr += 1;
            }
            self.scan(&mut line, &mut ptr, &mut lp, sink);
            if self.aborted {
                return;
            }
            if self.js.is_some() {
                self.js_process(&lp, &line, ptr, sink);
                lp.js_begin = None;
                lp.js_end = None;
            }
            if self.in_tag == InTag::Style && self.style_begin.is_some_and(|b| ptr < b) {
                self.abort(sink);
                return;
            }
            if self.look_for_screnc
                && let Some(p) = lp.ptr_screnc.take()
            {
                // The encoded block starts in this chunk, whose rest was
                // already normalized as plain HTML: decode it from there.
                ptr = p;
                self.state = State::JsDecodeLength;
                self.next_state = State::Bad;
                continue;
            }
            return;
        }
    }

    /// Feeds the script bytes of this chunk (`js_process`).
    fn js_process(&mut self, lp: &LinePtrs, line: &[u8], ptr: usize, sink: &mut dyn HtmlSink) {
        let begin = lp.js_begin.unwrap_or(0);
        let end = lp.js_end.unwrap_or(ptr).min(line.len());
        if let Some(js) = &mut self.js
            && end > begin
            && begin <= CHUNK
            && end <= CHUNK
        {
            js.process(&line[begin..end]);
        }
        if self.in_tag == InTag::None {
            self.js_done(sink);
        }
    }

    /// The script ended: ClamAV normalizes it and appends it to `javascript`.
    fn js_done(&mut self, sink: &mut dyn HtmlSink) {
        if let Some(js) = self.js.take() {
            let mut hit = None;
            let mut out = js.finish(self.js_written, &mut hit);
            self.js_written = true;
            let room = self.max_output.saturating_sub(self.js_emitted);
            if out.len() as u64 > room {
                out.truncate(room as usize);
                hit.get_or_insert(LimitHit::HtmlOutput);
            }
            self.js_emitted += out.len() as u64;
            if self.js_limit.is_none() {
                self.js_limit = hit;
            }
            if !out.is_empty() {
                sink.javascript(&out);
            }
        }
    }

    /// ClamAV's `goto done` on an engine error: output stops here, what was
    /// produced stays.
    fn abort(&mut self, sink: &mut dyn HtmlSink) {
        self.aborted = true;
        self.o2.flush(sink);
        self.text.flush(sink);
        self.js_done(sink);
    }

    fn finish(&mut self, sink: &mut dyn HtmlSink) {
        if self.aborted {
            return;
        }
        // A `data:` URI cut by the end of input is still a file.
        self.data_end(sink);
        // An entity cut by the end of input is still decoded or copied.
        if !self.entity_val.is_empty() {
            match entities::lookup(&self.entity_val) {
                Some(v) => {
                    let mut buf = Vec::new();
                    u16_normalize(v, &mut buf);
                    for b in buf {
                        self.o2.c(b, sink);
                    }
                }
                None => {
                    self.o2.c(b'&', sink);
                    for i in 0..self.entity_val.len() {
                        let c = lower(self.entity_val[i]);
                        self.o2.c(c, sink);
                    }
                }
            }
        }
        self.abort(sink);
    }

    fn scan(
        &mut self,
        line: &mut Vec<u8>,
        ptr: &mut usize,
        lp: &mut LinePtrs,
        sink: &mut dyn HtmlSink,
    ) {
        // A state change without consuming input is fine, a run of them is a
        // loop ClamAV would hang in; stop instead.
        let mut still = 0u32;
        let mut last = usize::MAX;
        while *ptr < line.len() {
            if *ptr == last {
                still += 1;
                if still > 64 {
                    self.abort(sink);
                    return;
                }
            } else {
                still = 0;
                last = *ptr;
            }
            let c = line[*ptr];
            if !self.binary && c == b'\n' {
                line[*ptr] = b' ';
                continue;
            }
            if !self.binary && c == b'\r' {
                *ptr += 1;
                continue;
            }
            if !self.step(line, ptr, lp, sink) {
                return;
            }
        }
    }

    /// One turn of ClamAV's state machine. False when it stops.
    fn step(
        &mut self,
        line: &mut Vec<u8>,
        ptr: &mut usize,
        lp: &mut LinePtrs,
        sink: &mut dyn HtmlSink,
    ) -> bool {
        let c = line[*ptr];
        // The byte after `ptr` once it has moved on, as C's `*ptr` (NUL at
        // the end of the chunk).
        let at = |line: &Vec<u8>, i: usize| line.get(i).copied().unwrap_or(0);
        match self.state {
            State::Bad => {
                self.abort(sink);
                return false;
            }
            State::SkipWs => {
                if is_space(c) {
                    *ptr += 1;
                } else {
                    self.state = self.next_state;
                    self.next_state = State::Bad;
                }
            }
            State::TrimWs => {
                if is_space(c) {
                    *ptr += 1;
                } else {
                    if self.in_tag == InTag::None {
                        self.o2.c(b' ', sink);
                    }
                    self.state = self.next_state;
                    self.next_state = State::Bad;
                }
            }
            State::EightBit => {
                if c < 0x80 || self.mbchar >= 0x10000 {
                    let mb = self.mbchar;
                    if is_dot(mb, c) {
                        self.o2.c(b'.', sink);
                        self.text.c(b'.', sink);
                        if mb == 0xA1 {
                            // The state stays: the next byte flushes an
                            // empty sequence.
                            *ptr += 1;
                            self.mbchar = 0;
                            return true;
                        }
                    } else {
                        let (c0, c1, c2) = ((mb >> 16) as u8, (mb >> 8) as u8, mb as u8);
                        if c0 != 0 {
                            self.o2.c(c0, sink);
                            self.text.c(c0, sink);
                        }
                        if c0 != 0 || c1 != 0 {
                            self.o2.c(c1, sink);
                            self.text.c(c1, sink);
                        }
                        self.o2.c(c2, sink);
                        // ClamAV writes the middle byte again, not the last.
                        self.text.c(c1, sink);
                    }
                    self.mbchar = 0;
                    self.state = self.next_state;
                    self.next_state = State::Norm;
                } else {
                    self.mbchar = (self.mbchar << 8) | u32::from(c);
                    *ptr += 1;
                }
            }
            State::Norm => {
                let outside = self.in_tag == InTag::None;
                if c == b'<' {
                    self.o2.c(b'<', sink);
                    if outside && !self.text_space_written {
                        self.text.c(b' ', sink);
                        self.text_space_written = true;
                    }
                    *ptr += 1;
                    self.state = State::SkipWs;
                    self.tag.clear();
                    self.next_state = State::Tag;
                } else if is_space(c) {
                    if !self.text_space_written && outside {
                        self.text.c(b' ', sink);
                        self.text_space_written = true;
                    }
                    self.state = State::TrimWs;
                    self.next_state = State::Norm;
                } else if c == b'&' {
                    if !self.text_space_written && outside {
                        self.text.c(b' ', sink);
                        self.text_space_written = true;
                    }
                    self.state = State::CharRef;
                    self.next_state = State::Norm;
                    *ptr += 1;
                } else if c >= 0x80 {
                    self.state = State::EightBit;
                    self.next_state = State::Norm;
                    self.mbchar = u32::from(c);
                    *ptr += 1;
                } else {
                    let mut l = lower(c);
                    if !outside && l == b'\'' {
                        l = b'"';
                    }
                    self.o2.c(l, sink);
                    if outside {
                        if c < 0x20 {
                            if !self.text_space_written {
                                self.text.c(b' ', sink);
                                self.text_space_written = true;
                            }
                        } else {
                            self.text.c(l, sink);
                            self.text_space_written = false;
                        }
                    }
                    *ptr += 1;
                }
            }
            State::Tag => {
                if self.tag.is_empty() && c == b'!' {
                    if self.in_tag != InTag::None {
                        self.o2.c(b'!', sink);
                    } else {
                        self.o2.rewind();
                    }
                    self.state = State::Comment;
                    self.next_state = State::Bad;
                    *ptr += 1;
                } else if c == b'>' {
                    self.o2.c(b'>', sink);
                    *ptr += 1;
                    self.state = State::SkipWs;
                    self.next_state = State::ProcessTag;
                } else if !is_space(c) {
                    self.o2.c(lower(c), sink);
                    if self.in_tag != InTag::None && self.tag.is_empty() && c != b'/' {
                        // Inside a script or style only an end tag is a tag.
                        self.state = State::Norm;
                    }
                    if self.tag.len() < STR_LEN {
                        self.tag.push(lower(c));
                    }
                    *ptr += 1;
                } else {
                    self.state = State::SkipWs;
                    self.tag_arg.clear();
                    self.next_state = if self.in_tag == InTag::None {
                        State::TagArg
                    } else {
                        State::ProcessTag
                    };
                }
            }
            State::TagArg => {
                if c == b'=' {
                    self.o2.c(b'=', sink);
                    *ptr += 1;
                    self.begin_value();
                } else if is_space(c) {
                    *ptr += 1;
                    self.state = State::SkipWs;
                    self.next_state = State::TagArgEqual;
                } else if c == b'>' {
                    self.o2.c(b'>', sink);
                    if !self.tag_arg.is_empty() {
                        self.arg_add(false);
                    }
                    *ptr += 1;
                    self.state = State::ProcessTag;
                    self.next_state = State::Bad;
                } else {
                    if self.tag_arg.is_empty() {
                        self.o2.c(b' ', sink);
                    }
                    self.o2.c(lower(c), sink);
                    if self.tag_arg.len() < STR_LEN {
                        self.tag_arg.push(lower(c));
                    }
                    *ptr += 1;
                }
            }
            State::TagArgEqual => {
                if c == b'=' {
                    self.o2.c(b'=', sink);
                    *ptr += 1;
                    self.begin_value();
                } else {
                    if !self.tag_arg.is_empty() {
                        self.arg_add(false);
                    }
                    self.tag_arg.clear();
                    self.state = State::TagArg;
                    self.next_state = State::Bad;
                }
            }
            State::TagArgVal => {
                if self.tag_arg_val(line, ptr, sink) {
                    self.escape = at(line, *ptr) == b'\\';
                }
            }
            State::Comment => {
                if self.in_tag != InTag::None && !is_space(c) {
                    let mut l = lower(c);
                    if l == b'\'' {
                        l = b'"';
                    }
                    self.o2.c(l, sink);
                }
                if c == b'>' {
                    self.state = State::SkipWs;
                    self.next_state = State::Norm;
                }
                *ptr += 1;
            }
            State::ProcessTag => {
                if !self.process_tag(line, *ptr, lp, sink) {
                    return false;
                }
            }
            State::CharRef => {
                if c == b'#' {
                    self.value = 0;
                    self.hex = false;
                    self.state = State::CharRefDecode;
                    *ptr += 1;
                } else {
                    self.state = State::EntityRefDecode;
                }
            }
            State::EntityRefDecode => {
                if c == b';' {
                    match entities::lookup(&self.entity_val) {
                        Some(v) => {
                            let mut buf = Vec::new();
                            u16_normalize(v, &mut buf);
                            for b in buf {
                                self.o2.c(b, sink);
                                self.ref_tv_push(b);
                            }
                        }
                        None => {
                            self.o2.c(b'&', sink);
                            self.ref_tv_push(b'&');
                            for i in 0..self.entity_val.len() {
                                let l = lower(self.entity_val[i]);
                                self.o2.c(l, sink);
                                self.ref_tv_push(l);
                            }
                            self.ref_tv_push(b';');
                            self.o2.c(b';', sink);
                        }
                    }
                    self.entity_val.clear();
                    self.state = self.next_state;
                    self.next_state = State::Bad;
                    *ptr += 1;
                } else if (c.is_ascii_alphanumeric() || matches!(c, b'_' | b':' | b'-'))
                    && self.entity_val.len() < STR_LEN
                {
                    self.entity_val.push(c);
                    *ptr += 1;
                } else {
                    // Not a reference after all: copied as it came, lower-cased.
                    self.ref_tv_push(b'&');
                    self.o2.c(b'&', sink);
                    for i in 0..self.entity_val.len() {
                        let l = lower(self.entity_val[i]);
                        self.o2.c(l, sink);
                        self.ref_tv_push(l);
                    }
                    self.state = self.next_state;
                    self.next_state = State::Bad;
                    self.entity_val.clear();
                }
            }
            State::CharRefDecode => self.char_ref_decode(c, ptr, sink),
            State::LookforScrenc => {
                self.look_for_screnc = true;
                lp.ptr_screnc = memchr::memmem::find(&line[*ptr..], b"#@~^").map(|i| {
                    let at = *ptr + i;
                    line[at] = b'/';
                    line[at + 1] = b'/';
                    at + 4
                });
                self.state = self.next_state;
                self.next_state = self.saved_next_state;
            }
            State::JsDecode => {
                if line[*ptr..].starts_with(b"#@~^") {
                    line[*ptr] = b'/';
                    line[*ptr + 1] = b'/';
                    *ptr += 4;
                    self.state = State::JsDecodeLength;
                    self.next_state = State::Bad;
                } else {
                    self.o2.c(lower(c), sink);
                    *ptr += 1;
                }
            }
            State::JsDecodeLength => {
                if line.len() - *ptr < 8 {
                    self.state = State::Norm;
                    self.next_state = State::Bad;
                } else {
                    self.screnc = screnc::State::new(screnc::declared(&line[*ptr..*ptr + 6]));
                    self.state = State::JsDecodeDecrypt;
                    self.in_screnc = true;
                    self.next_state = State::Bad;
                    // For ClamAV's JavaScript normalizer: ends the `//` line.
                    line[*ptr + 7] = b'\n';
                    *ptr += 8;
                }
            }
            State::JsDecodeDecrypt => {
                screnc::decode(line, *ptr, &mut self.screnc);
                if self.screnc.length == 0 {
                    self.in_screnc = false;
                }
                self.state = State::Norm;
                self.next_state = State::Bad;
            }
            State::Rfc2397Type => {
                if c == b'\'' || c == b'"' {
                    let closing = if c == b'\'' {
                        Quoted::Single
                    } else {
                        Quoted::Double
                    };
                    if !self.escape && self.quoted == closing {
                        // The value ended before its data: an error, move on.
                        *ptr += 1;
                        self.state = State::SkipWs;
                        self.tag_arg.clear();
                        self.next_state = State::TagArg;
                    } else {
                        self.tv_push(b'"');
                        *ptr += 1;
                    }
                } else if is_space(c) || c == b'>' {
                    if self.quoted == Quoted::Not {
                        self.state = State::SkipWs;
                        self.tag_arg.clear();
                        self.next_state = State::TagArg;
                    } else {
                        self.tv_push(if is_space(c) { b' ' } else { b'>' });
                        self.state = State::SkipWs;
                        self.escape = false;
                        self.quoted = Quoted::Not;
                        self.next_state = State::Rfc2397Type;
                        *ptr += 1;
                    }
                } else if c == b',' {
                    self.state = State::Rfc2397Init;
                    self.escape = false;
                    self.next_state = State::Bad;
                    *ptr += 1;
                } else {
                    self.tv_push(lower(c));
                    *ptr += 1;
                }
                self.escape = at(line, *ptr) == b'\\';
            }
            State::Rfc2397Init => {
                // ClamAV writes the data to a file of its own under rfc2397/
                // and scans it as a separate file, a MIME message.
                self.data_end(sink);
                let ty = &self.tag_val;
                let mut f = Vec::with_capacity(64 + ty.len());
                f.extend_from_slice(b"From html-normalise\nContent-type: ");
                f.extend_from_slice(ty);
                f.push(b'\n');
                if memchr::memmem::find(ty, b";base64").is_some() {
                    f.extend_from_slice(b"Content-transfer-encoding: base64\n");
                }
                f.push(b'\n');
                self.data_uri = Some(f);
                self.state = State::Rfc2397Data;
                self.binary = true;
            }
            State::Rfc2397Data => {
                if c == b'&' {
                    self.state = State::CharRef;
                    self.next_state = State::Rfc2397Data;
                    *ptr += 1;
                } else if c == b'%' {
                    self.esc_length = 0;
                    self.value = 0;
                    self.state = State::EscapeChar;
                    self.next_state = State::Rfc2397Esc;
                    *ptr += 1;
                } else if c == b'\'' || c == b'"' {
                    let closing = if c == b'\'' {
                        Quoted::Single
                    } else {
                        Quoted::Double
                    };
                    if !self.escape && self.quoted == closing {
                        self.state = State::Rfc2397Finish;
                    } else {
                        self.data_push(c);
                    }
                    *ptr += 1;
                } else if is_space(c) || c == b'>' {
                    if self.quoted == Quoted::Not {
                        self.state = State::Rfc2397Finish;
                    } else {
                        self.data_push(c);
                    }
                    *ptr += 1;
                } else {
                    self.data_push(c);
                    *ptr += 1;
                }
                self.escape = at(line, *ptr) == b'\\';
            }
            State::Rfc2397Finish => {
                self.data_end(sink);
                self.state = State::SkipWs;
                self.escape = false;
                self.quoted = Quoted::Not;
                self.next_state = State::TagArg;
                self.binary = false;
            }
            State::Rfc2397Esc => {
                // As ClamAV writes an escape: decoded when whole, else `%`
                // and what it read of it.
                match self.esc_length {
                    2 => self.data_push(self.value as u8),
                    1 => {
                        self.data_push(b'%');
                        self.data_push((self.value as u8).wrapping_add(b'0'));
                    }
                    _ => self.data_push(b'%'),
                }
                self.state = State::Rfc2397Data;
            }
            State::EscapeChar => {
                if self.value < i64::MAX / 16 {
                    self.value *= 16;
                    self.esc_length += 1;
                    if c.is_ascii_hexdigit() {
                        self.value += i64::from((c as char).to_digit(16).unwrap_or(0));
                    } else {
                        self.state = self.next_state;
                    }
                    if self.esc_length == 2 {
                        self.state = self.next_state;
                    }
                } else {
                    self.state = self.next_state;
                    self.next_state = State::Bad;
                }
                *ptr += 1;
            }
        }
        true
    }

    fn begin_value(&mut self) {
        self.state = State::SkipWs;
        self.escape = false;
        self.quoted = Quoted::Not;
        self.tag_val.clear();
        self.next_state = State::TagArgVal;
    }

    fn end_value(&mut self) {
        self.arg_add(true);
        self.state = State::SkipWs;
        self.tag_arg.clear();
        self.next_state = State::TagArg;
    }

    /// One byte of an attribute value. False when ClamAV `continue`s (and
    /// so skips its escape bookkeeping).
    fn tag_arg_val(&mut self, line: &mut [u8], ptr: &mut usize, sink: &mut dyn HtmlSink) -> bool {
        let c = line[*ptr];
        let tv = &self.tag_val[..];
        if tv == b"data:" || tv == b"\"data:" {
            // RFC 2397 inline data: ClamAV extracts it as a file of its own;
            // `nocomment` loses the `:` and gets the closing quote.
            self.o2.rewind();
            if self.quoted != Quoted::Not {
                self.o2.c(b'"', sink);
            }
            self.tag_val.clear();
            self.state = State::Rfc2397Type;
            self.next_state = State::TagArg;
        } else if c == b'&' {
            self.state = State::CharRef;
            self.next_state = State::TagArgVal;
            *ptr += 1;
        } else if c == b'\'' || c == b'"' {
            let kind = if c == b'\'' {
                Quoted::Single
            } else {
                Quoted::Double
            };
            let opening = self.tag_val.is_empty();
            self.o2.c(b'"', sink);
            self.tv_push(b'"');
            *ptr += 1;
            if opening {
                self.quoted = kind;
            } else if !self.escape && self.quoted == kind {
                self.end_value();
            }
        } else if is_space(c) || c == b'>' {
            if self.quoted == Quoted::Not {
                self.end_value();
            } else {
                self.o2.c(c, sink);
                self.tv_push(if is_space(c) { b' ' } else { b'>' });
                self.state = State::SkipWs;
                self.escape = false;
                self.quoted = Quoted::Not;
                self.next_state = State::TagArgVal;
                *ptr += 1;
            }
        } else {
            if self.mbchar2 != 0 && (c < 0x80 || self.mbchar2 >= 0x10000) {
                let mb = self.mbchar2;
                if is_dot(mb, c) {
                    self.o2.c(b'.', sink);
                    self.tv_push(b'.');
                    if mb == 0xA1 {
                        *ptr += 1;
                        self.mbchar2 = 0;
                        return false;
                    }
                } else {
                    let (c0, c1, c2) = ((mb >> 16) as u8, (mb >> 8) as u8, mb as u8);
                    if c0 != 0 {
                        self.o2.c(c0, sink);
                    }
                    if c0 != 0 || c1 != 0 {
                        self.o2.c(c1, sink);
                    }
                    self.o2.c(c2, sink);
                    if c0 != 0 {
                        self.tv_push(c0);
                    }
                    if c0 != 0 || c1 != 0 {
                        self.tv_push(c1);
                    }
                    self.tv_push(c2);
                }
                self.mbchar2 = 0;
            }
            if c >= 0x80 {
                self.mbchar2 = (self.mbchar2 << 8) | u32::from(c);
            } else {
                self.o2.c(lower(c), sink);
                self.tv_push(c);
            }
            *ptr += 1;
        }
        true
    }

    fn char_ref_decode(&mut self, c: u8, ptr: &mut usize, sink: &mut dyn HtmlSink) {
        if self.value == 0 && (c == b'x' || c == b'X') {
            self.hex = true;
            *ptr += 1;
        } else if c == b';' {
            self.ref_tv_push(self.value as u8);
            if self.value < 0x80 {
                self.o2.c(lower(self.value as u8), sink);
            } else {
                let mut buf = Vec::new();
                u16_normalize(self.value as u16, &mut buf);
                self.o2.s(&buf, sink);
            }
            self.state = self.next_state;
            self.next_state = State::Bad;
            *ptr += 1;
        } else if c.is_ascii_digit() || (self.hex && c.is_ascii_hexdigit()) {
            // ClamAV's overflow guards, including its slip: a hex value too
            // big to multiply by 16 is multiplied by 10.
            if self.hex && self.value < i64::MAX / 16 {
                self.value *= 16;
            } else if self.value < i64::MAX / 10 {
                self.value *= 10;
            } else {
                self.o2.c(self.value as u8, sink);
                self.state = self.next_state;
                self.next_state = State::Bad;
                *ptr += 1;
                return;
            }
            let inc = i64::from((c as char).to_digit(16).unwrap_or(0));
            if self.value > i64::MAX - inc {
                self.o2.c(self.value as u8, sink);
                self.state = self.next_state;
                self.next_state = State::Bad;
                *ptr += 1;
                return;
            }
            self.value += inc;
            *ptr += 1;
        } else {
            self.o2.c(self.value as u8, sink);
            self.state = self.next_state;
            self.next_state = State::Bad;
        }
    }

    fn process_tag(
        &mut self,
        line: &[u8],
        ptr: usize,
        lp: &mut LinePtrs,
        sink: &mut dyn HtmlSink,
    ) -> bool {
        self.state = State::SkipWs;
        self.next_state = State::Norm;
        let tag = std::mem::take(&mut self.tag);
        if tag.first() == Some(&b'/') {
            if tag == b"/script" {
                self.in_tag = InTag::None;
                if self.js.is_some() {
                    lp.js_end = Some(ptr);
                    self.js_process(lp, line, ptr, sink);
                    lp.js_begin = None;
                    lp.js_end = None;
                }
            } else if tag == b"/style" && self.in_tag == InTag::Style {
                // ClamAV measures the style back from the end tag; an end tag
                // that began in the previous chunk measures past the chunk's
                // start, and ClamAV gives up on the file.
                let begin = self.style_begin.unwrap_or(0);
                if ptr < begin + b"</style>".len() {
                    self.tag = tag;
                    self.abort(sink);
                    return false;
                }
                self.in_tag = InTag::None;
                self.style_begin = None;
            }
        } else if tag == b"script" {
            let lang = self.arg_value(b"language").flatten();
            let renamed: Option<&[u8]> = match lang {
                Some(l) if l.eq_ignore_ascii_case(b"jscript.encode") => Some(b"javascript"),
                Some(l) if l.eq_ignore_ascii_case(b"vbscript.encode") => Some(b"vbscript"),
                _ => None,
            };
            if let Some(new) = renamed {
                if let Some(arg) = self.tag_args.iter_mut().find(|(n, _)| n == b"language") {
                    arg.1 = Some(new.to_vec());
                }
                self.state = State::SkipWs;
                self.next_state = State::JsDecode;
                // ClamAV writes the tag again, as rewritten.
                self.output_tag(&tag, sink);
            }
            self.in_tag = InTag::Script;
            if self.js.is_none() {
                self.js = Some(JsNormalizer::new(
                    usize::try_from(self.max_output).unwrap_or(usize::MAX),
                ));
                lp.js_begin = Some(ptr);
                lp.js_end = None;
            }
        } else if tag == b"style" {
            self.in_tag = InTag::Style;
            self.style_begin = Some(ptr);
        } else if tag == b"%@" {
            let lang = self.arg_value(b"language").flatten();
            if lang.is_some_and(|l| {
                l.eq_ignore_ascii_case(b"jscript.encode")
                    || l.eq_ignore_ascii_case(b"vbscript.encode")
            }) {
                self.saved_next_state = self.next_state;
                self.next_state = self.state;
                self.look_for_screnc = false;
                self.state = State::LookforScrenc;
            }
        } else if tag == b"a" || tag == b"img" {
            let name: &[u8] = if tag == b"a" { b"href" } else { b"src" };
            if let Some(Some(v)) = self.arg_value(name)
                && let v = cstr(v)
                && !v.is_empty()
            {
                let v = v.to_vec();
                self.text.s(&v, sink);
                self.text.c(b' ', sink);
                self.text_space_written = true;
            }
        }
        self.tag = tag;
        self.tag_args.clear();
        self.arg_bytes = 0;
        true
    }

    fn output_tag(&mut self, tag: &[u8], sink: &mut dyn HtmlSink) {
        let args = std::mem::take(&mut self.tag_args);
        self.o2.c(b'<', sink);
        self.o2.s(tag, sink);
        for (name, value) in &args {
            self.o2.c(b' ', sink);
            self.o2.s(cstr(name), sink);
            if let Some(v) = value {
                self.o2.s(b"=\"", sink);
                for &b in cstr(v) {
                    self.o2.c(lower(b), sink);
                }
                self.o2.c(b'"', sink);
            }
        }
        self.o2.c(b'>', sink);
        self.tag_args = args;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_tags_anywhere() {
        assert!(has_html_tag(b"text... <SCRIPT>x</script>"));
        assert!(has_html_tag(b"<Img/src=x>"));
        assert!(has_html_tag(b"<!DOCTYPE HTML>"));
        assert!(has_html_tag(b"see <a  class=x HREF=y>"));
        assert!(!has_html_tag(b"a < b, <html5 is not a tag"));
        assert!(!has_html_tag(b"<head\x0b>"));
        assert!(!has_html_tag(b"<a> and href= later"));
        assert!(!has_html_tag(b"href= before <a "));
    }
}
