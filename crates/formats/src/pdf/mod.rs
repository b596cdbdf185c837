//! PDF documents (ClamAV's `CL_TYPE_PDF`) as containers of their objects.
//!
//! ClamAV's `pdf.c` (1.4, Debian's clamscan; later versions differ a little)
//! does not trust the cross-reference table: it scans the file for every
//! `N G obj ... endobj`, reads each object's dictionary for the
//! names it cares about (filters, `/JavaScript`, `/OpenAction`, `/Contents`,
//! `/EmbeddedFile`, images), then "dumps" some objects to temporary files and
//! scans each as a file of its own:
//!
//! - a stream without filters, or with filters ClamAV decodes or marks
//!   (Flate, ASCIIHex, ASCII85, DCT), or referenced from a page's
//!   `/Contents`, a `/JavaScript` or an `/OpenAction`: its data decoded
//!   through its filter chain, or raw when no filter decoded anything.
//!   Streams filtered only by LZW or RunLength, or by a filter it does not
//!   know, are not dumped; nor are images other than JPEG.
//! - an object without a stream that carries one of those names: its text
//!   (for `/JavaScript`, the `/JS` strings it holds).
//! - for an object referenced by `/Contents`, also the text of its `[( )]`
//!   text arrays, normalized.
//!
//! Object streams (`/Type/ObjStm`, written so, without a space) are decoded and their objects added to
//! the list, read and dumped like the others. This module does the same, in
//! the same order, with the same tolerance: what ClamAV makes of a broken
//! stream is what is given here. Each dump is a [`Member`] named
//! `obj N G` (`obj N G contents` for page text).
//!
//! The document is read whole (at most [`MAX_PDF`] bytes), as ClamAV maps it;
//! at most [`MAX_OBJECTS`] objects are read, as ClamAV; a filter's output is
//! capped at [`MAX_DECODED`] bytes (past it the filter fails and the data it
//! was given is kept, as ClamAV's size limit does).
//!
//! Encrypted documents are decrypted as ClamAV decrypts them ([`crypt`]):
//! with the empty password, streams (but not cross-reference streams, nor
//! those with a `/Crypt` filter of their own) before their filters, and
//! `/JS` strings. A document the empty password does not open is reported as
//! [`Problem::Encrypted`] (ClamAV's `Heuristics.Encrypted.PDF`, with
//! `--alert-encrypted-doc`) and scanned as stored.
//!
//! A name ClamAV acts on written with `#xx` escapes (`/Fl#61teDecode`) is
//! reported, after the objects, as [`Problem::Heuristic`]
//! (`Heuristics.PDF.ObfuscatedNameObject`).
//!
//! Not done: ClamAV's bytecode hooks and JSON metadata.

mod crypt;
mod filters;
mod syntax;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Cursor;

use crypt::{Method, Security};
use filters::{Filter, Step};
use syntax::{find, get_dict, is_ws, next_object, read_int, read_string, strtol};

use crate::normalize::ascii::AsciiNormalizer;
use crate::source::ReadAt;
use crate::walk::{Body, Flow, FormatError, Member, Problem, Visitor, visit};

/// The largest PDF opened: ClamAV's default `MaxFileSize`.
pub(crate) const MAX_PDF: u64 = 100 << 20;
/// Objects read at most, objects of object streams included (ClamAV's
/// `MAX_PDF_OBJECTS`).
pub(crate) const MAX_OBJECTS: usize = 64 * 1024;
/// The most one filter may produce.
pub(crate) const MAX_DECODED: usize = 100 << 20;
/// Filters applied to one stream at most (ClamAV's `PDF_FILTERLIST_MAX`).
const MAX_FILTERS: usize = 64;

// Object flags: ClamAV's `enum pdf_objflags` as bits, in its order (so that
// they compare with `clamscan --debug`'s `obj flags`).
const STREAM: u32 = 1 << 0;
const DICT: u32 = 1 << 1;
const EMBEDDED_FILE: u32 = 1 << 2;
const FILTER_AH: u32 = 1 << 3;
const FILTER_A85: u32 = 1 << 4;
const FILTER_FLATE: u32 = 1 << 5;
const FILTER_LZW: u32 = 1 << 6;
const FILTER_RL: u32 = 1 << 7;
const FILTER_FAX: u32 = 1 << 8;
const FILTER_DCT: u32 = 1 << 10;
const FILTER_JPX: u32 = 1 << 11;
const FILTER_CRYPT: u32 = 1 << 12;
const JAVASCRIPT: u32 = 1 << 14;
const OPENACTION: u32 = 1 << 15;
const HASFILTERS: u32 = 1 << 16;
const SIGNED: u32 = 1 << 17;
const IMAGE: u32 = 1 << 18;
const FILTER_STANDARD: u32 = 1 << 21;
const LAUNCHACTION: u32 = 1 << 22;
const PAGE: u32 = 1 << 23;
const CONTENTS: u32 = 1 << 24;

/// Objects dumped whatever their stream (ClamAV's `DUMP_MASK`).
const DUMP_MASK: u32 = CONTENTS
    | FILTER_FLATE
    | FILTER_DCT
    | FILTER_AH
    | FILTER_A85
    | EMBEDDED_FILE
    | JAVASCRIPT
    | OPENACTION
    | LAUNCHACTION;
/// Filters recorded in a stream's chain (ClamAV's `KNOWN_FILTERS`).
const KNOWN_FILTERS: u32 = FILTER_AH
    | FILTER_RL
    | FILTER_A85
    | FILTER_FLATE
    | FILTER_LZW
    | FILTER_FAX
    | FILTER_DCT
    | FILTER_JPX
    | FILTER_CRYPT;

/// Where ClamAV's name parser is in a dictionary.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    None,
    S,
    Filter,
    JavaScript,
    OpenAction,
    Linearized,
    LaunchAction,
    Contents,
    /// Only as a `from` state: any.
    Any,
}

/// What a name does: the flag it sets and the state change (ClamAV's
/// `pdfname_actions`).
fn action(name: &[u8]) -> Option<(u32, State, State)> {
    use State::*;
    Some(match name {
        b"ASCIIHexDecode" | b"AHx" => (FILTER_AH, Filter, Filter),
        b"ASCII85Decode" | b"A85" => (FILTER_A85, Filter, Filter),
        b"EmbeddedFile" => (EMBEDDED_FILE, None, None),
        b"FlateDecode" | b"Fl" => (FILTER_FLATE, Filter, Filter),
        b"Image" => (IMAGE, None, None),
        b"LZWDecode" | b"LZW" => (FILTER_LZW, Filter, Filter),
        b"RunLengthDecode" | b"RL" => (FILTER_RL, Filter, Filter),
        b"CCITTFaxDecode" | b"CCF" => (FILTER_FAX, Filter, Filter),
        // ClamAV files JBIG2 with DCT.
        b"JBIG2Decode" | b"DCTDecode" | b"DCT" => (FILTER_DCT, Filter, Filter),
        b"JPXDecode" => (FILTER_JPX, Filter, Filter),
        b"Crypt" => (FILTER_CRYPT, Filter, None),
        b"Standard" => (FILTER_STANDARD, Filter, Filter),
        b"Sig" | b"V" | b"R" => (SIGNED, Any, None),
        b"Linearized" => (DICT, None, Linearized),
        b"Filter" => (HASFILTERS, Any, Filter),
        b"JavaScript" => (JAVASCRIPT, Any, JavaScript),
        b"Length" => (DICT, Filter, None),
        b"S" => (DICT, None, S),
        b"Type" => (DICT, None, None),
        b"OpenAction" => (OPENACTION, Any, OpenAction),
        b"Launch" => (LAUNCHACTION, Any, LaunchAction),
        b"Page" => (PAGE, None, None),
        b"Contents" => (CONTENTS, None, Contents),
        b"Author" | b"Producer" | b"CreationDate" | b"ModDate" | b"Creator" | b"Title"
        | b"Keywords" | b"Subject" | b"Pages" | b"Colors" | b"RichMedia" | b"AcroForm" | b"XFA" => {
            (DICT, None, None)
        }
        _ => return Option::None,
    })
}

/// The names whose escaping ClamAV calls obfuscation: those it acts on,
/// but for the document information ones.
fn watched(name: &[u8]) -> bool {
    action(name).is_some()
        && !matches!(
            name,
            b"Author"
                | b"Producer"
                | b"CreationDate"
                | b"ModDate"
                | b"Creator"
                | b"Title"
                | b"Keywords"
                | b"Subject"
                | b"Pages"
                | b"Colors"
                | b"RichMedia"
                | b"AcroForm"
                | b"XFA"
        )
}

fn filter_of(flag: u32) -> Option<Filter> {
    Some(match flag {
        FILTER_AH => Filter::AsciiHex,
        FILTER_A85 => Filter::Ascii85,
        FILTER_FLATE => Filter::Flate,
        FILTER_LZW => Filter::Lzw,
        FILTER_RL => Filter::RunLength,
        FILTER_CRYPT => Filter::Crypt,
        FILTER_FAX | FILTER_DCT | FILTER_JPX => Filter::Image,
        _ => return None,
    })
}

/// Which buffer an object lives in: the document, or a decoded object
/// stream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Buf {
    Map,
    ObjStm(usize),
}

struct Obj {
    /// `number << 8 | generation & 0xff`, as ClamAV keys objects.
    id: u32,
    buf: Buf,
    /// Offset of its content (after `obj`) in its buffer.
    start: usize,
    size: usize,
    flags: u32,
    filters: Vec<Filter>,
    /// Its stream's data: offset in the document and size.
    stream: Option<(usize, usize)>,
    truncated: bool,
    extracted: bool,
}

impl Obj {
    fn name(&self) -> String {
        format!("obj {} {}", self.id >> 8, self.id & 0xff)
    }
}

/// An object stream being read (ClamAV's `objstm_struct`).
struct ObjStm {
    data: Vec<u8>,
    first: usize,
    n: usize,
    current_pair: usize,
    found: usize,
}

struct Pdf<'m> {
    map: &'m [u8],
    objs: Vec<Obj>,
    /// The indices of the objects of each id, in order: ClamAV looks
    /// references up by a linear search, which 65536 objects make slow.
    index: HashMap<u32, Vec<usize>>,
    /// Values of objects referenced by `/Length`, by object index.
    lengths: RefCell<HashMap<usize, Option<usize>>>,
    stms: Vec<ObjStm>,
    too_many: bool,
    /// A trailer names an `/Encrypt` dictionary.
    encrypted: bool,
    /// The `/Encrypt` dictionary's object and the file's first `/ID`.
    enc_objid: Option<u32>,
    file_id: Option<Vec<u8>>,
    security: Option<Security>,
    /// A name ClamAV watches was written with `#xx` escapes.
    obfuscated: bool,
}

/// One dump: the member's name and bytes, or a problem met making it.
enum Out {
    Member(String, Vec<u8>),
    Problem(Problem),
}

/// Walks the objects ClamAV would scan in the PDF in `src`.
pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let size = src.size();
    if size > MAX_PDF {
        visitor.problem(Problem::Broken {
            member: None,
            detail: format!("PDF of {size} bytes is larger than {MAX_PDF}, not opened"),
        });
        return Ok(());
    }
    let mut data = vec![0u8; size as usize];
    src.read_exact_at(&mut data, 0)?;
    let head = &data[..data.len().min(1032)];
    let Some(at) = memchr::memmem::find(head, b"%PDF-") else {
        return Ok(());
    };
    if head.len() - at < 8 {
        visitor.problem(Problem::Broken {
            member: None,
            detail: "PDF: truncated header".into(),
        });
        return Ok(());
    }
    let mut pdf = Pdf {
        map: &data[at..],
        objs: Vec::new(),
        index: HashMap::new(),
        lengths: RefCell::new(HashMap::new()),
        stms: Vec::new(),
        too_many: false,
        encrypted: false,
        enc_objid: None,
        file_id: None,
        security: None,
        obfuscated: false,
    };
    // The trailer ClamAV reads: in the last 2 KiB of the file, if they hold
    // `startxref` before `%%EOF`.
    let tail = &data[data.len().saturating_sub(2048)..];
    if let Some(eof) = memchr::memmem::rfind(tail, b"%%EOF")
        && eof > 0
        && memchr::memmem::rfind(&tail[..eof], b"startxref").is_some_and(|x| x > 0)
    {
        pdf.trailer(tail, 0, tail.len());
    }
    pdf.find_objects();
    for i in 0..pdf.objs.len() {
        pdf.parse(i);
    }
    pdf.security();
    if pdf.encrypted && !pdf.security.as_ref().is_some_and(|s| s.decryptable) {
        // ClamAV's `Heuristics.Encrypted.PDF` (with `--alert-encrypted-doc`).
        let flow = visitor.problem(Problem::Encrypted {
            member: String::new(),
        });
        if flow == Flow::Stop {
            return Ok(());
        }
    }
    // Objects of object streams are appended while this runs.
    let mut i = 0;
    while i < pdf.objs.len() {
        for out in pdf.extract(i) {
            let flow = match out {
                Out::Problem(p) => visitor.problem(p),
                Out::Member(name, bytes) => {
                    let mut m = Member::new(name, Body::Read(Box::new(Cursor::new(bytes))));
                    visit(visitor, &mut m)
                }
            };
            if flow == Flow::Stop {
                return Ok(());
            }
        }
        i += 1;
    }
    if pdf.obfuscated {
        // For example `/Fl#61te#44#65#63#6f#64#65` for `/FlateDecode`.
        let flow = visitor.problem(Problem::Heuristic {
            name: "Heuristics.PDF.ObfuscatedNameObject",
        });
        if flow == Flow::Stop {
            return Ok(());
        }
    }
    if pdf.too_many {
        visitor.problem(Problem::Broken {
            member: None,
            detail: format!("PDF has more than {MAX_OBJECTS} objects; the rest are not read"),
        });
    }
    Ok(())
}

impl<'m> Pdf<'m> {
    /// A trailer in `b[at..at + len]` (`pdf_parse_trailer`): whether it
    /// names `/Encrypt N G R`, and the file's `/ID`.
    fn trailer(&mut self, b: &[u8], at: usize, len: usize) {
        let Some(enc) = find(b, at, len, b"/Encrypt") else {
            return;
        };
        self.encrypted = true;
        if let Some(id) = encrypt_ref(b, enc, at + len - enc) {
            self.enc_objid = Some(id);
        }
        if let Some((id, _)) = read_string(b, at, len, b"/ID", false) {
            self.file_id = Some(id);
        }
    }

    /// Opens the `/Encrypt` dictionary (`pdf_handle_enc`).
    fn security(&mut self) {
        let (Some(id), Some(file_id)) = (self.enc_objid, self.file_id.as_ref()) else {
            return;
        };
        let Some(j) = self.find_obj(0, id) else {
            return;
        };
        let o = &self.objs[j];
        let b = self.buf(o.buf);
        let Some(dict) = b.get(o.start..o.start.saturating_add(o.size)) else {
            return;
        };
        self.security = Some(Security::open(dict, file_id));
    }

    fn buf(&self, b: Buf) -> &[u8] {
        match b {
            Buf::Map => self.map,
            Buf::ObjStm(k) => self.stms.get(k).map_or(&[][..], |s| &s.data),
        }
    }

    /// Finds every `N G obj` in the document, as `pdf_findobj`.
    fn find_objects(&mut self) {
        let map = self.map;
        let size = map.len();
        let mut offset = 0usize;
        loop {
            if self.objs.len() >= MAX_OBJECTS {
                self.too_many = true;
                return;
            }
            let start = offset;
            let mut bytesleft = size - offset;
            let mut idx = start + 1;
            let mut obj_begin = None;
            while bytesleft > 4 {
                let Some(f) = find(map, idx, bytesleft - 1, b"obj") else {
                    return;
                };
                idx = f - 1;
                bytesleft = size - offset - (idx - start);
                if !is_ws(map[idx]) {
                    idx += 4;
                    bytesleft -= 4;
                    continue;
                }
                obj_begin = Some(idx);
                break;
            }
            let Some(obj_begin) = obj_begin else {
                return;
            };
            let obj_end = obj_begin + 4;
            match parse_obj_header(map, start, obj_begin) {
                Some(id) => {
                    let (size_, next, truncated) =
                        match find(map, obj_end, size - obj_end, b"endobj") {
                            Some(e) => (e - obj_end, e + 6, false),
                            None => (size - obj_end, size, true),
                        };
                    self.push(Obj {
                        id,
                        buf: Buf::Map,
                        start: obj_end,
                        size: size_,
                        flags: 0,
                        filters: Vec::new(),
                        stream: None,
                        truncated,
                        extracted: false,
                    });
                    offset = next;
                }
                None => offset = obj_end,
            }
        }
    }

    /// The index of the object `id`, searched from `from` on, then from the
    /// start (`find_obj`).
    fn find_obj(&self, from: usize, id: u32) -> Option<usize> {
        let all = self.index.get(&id)?;
        let after = all.partition_point(|&j| j < from);
        all.get(after).or(all.first()).copied()
    }

    fn push(&mut self, obj: Obj) {
        self.index.entry(obj.id).or_default().push(self.objs.len());
        self.objs.push(obj);
    }

    /// Reads object `i`'s stream bounds and dictionary names (`pdf_parseobj`).
    fn parse(&mut self, i: usize) {
        let (bufk, start, size) = {
            let o = &self.objs[i];
            (o.buf, o.start, o.size)
        };
        let buf_len = self.buf(bufk).len();
        if start > buf_len || size == 0 {
            return;
        }
        let mut bytesleft = size.min(buf_len - start) as i64;
        if bufk == Buf::Map
            && let Some((s, n)) = stream_bounds(self.map, start, size)
        {
            let o = &mut self.objs[i];
            o.flags |= STREAM;
            o.stream = Some((s, n));
        }
        let b = self.buf(bufk);
        // The dictionary's `<<`.
        let mut q = start;
        let dict = loop {
            let Some(next) = next_object(b, q, bytesleft.max(0) as usize) else {
                return;
            };
            bytesleft -= (next - q) as i64;
            if bytesleft < 0 {
                return;
            }
            let from = if q == 0 { q } else { q - 1 };
            let lt = b
                .get(from..next)
                .and_then(|s| memchr::memchr(b'<', s))
                .map(|k| from + k);
            q = next + 1;
            bytesleft -= 1;
            if let Some(lt) = lt
                && b.get(lt + 1) == Some(&b'<')
            {
                break lt + 2;
            }
        };
        let bytesleft = size as i64 - (dict - start) as i64;
        if bytesleft < 0 {
            return;
        }
        let enddict = (dict + bytesleft as usize).saturating_sub(1).min(b.len());
        // Its matching `>>`.
        let mut q = dict;
        let mut opens = 1u32;
        let mut close = None;
        while q + 1 < enddict && opens > 0 {
            let next_close = b
                .get(q..enddict)
                .and_then(|s| memchr::memchr(b'>', s))
                .map(|k| q + k);
            match next_close {
                Some(c) if b.get(c + 1) == Some(&b'>') => {
                    loop {
                        let from = q - 1;
                        let open = b
                            .get(from..c.max(from))
                            .and_then(|s| memchr::memchr(b'<', s))
                            .map(|k| from + k);
                        let Some(o) = open else { break };
                        if b.get(o + 1) == Some(&b'<') {
                            opens += 1;
                        }
                        q = o + 2;
                    }
                    opens -= 1;
                    q = c + 2;
                    close = Some(c);
                }
                Some(c) => q = c + 2,
                None => break,
            }
        }
        if opens > 0 {
            return;
        }
        let Some(enddict) = close else { return };
        self.objs[i].flags |= DICT;
        self.names(i, bufk, dict, enddict);
    }

    /// Runs ClamAV's name state machine over `dict..enddict` of object `i`.
    fn names(&mut self, i: usize, bufk: Buf, dict: usize, enddict: usize) {
        let mut state = State::None;
        let mut q = dict;
        let mut left = enddict as i64 - dict as i64;
        while left > 0 {
            let b = self.buf(bufk);
            let Some(slash) = b
                .get(q..q + left as usize)
                .and_then(|s| memchr::memchr(b'/', s))
                .map(|k| q + k)
            else {
                break;
            };
            left -= (slash - q) as i64;
            q = slash;
            let mut name = Vec::with_capacity(16);
            let mut escapes = false;
            while left > 0 && name.len() < 63 {
                q += 1;
                left -= 1;
                let Some(&c) = b.get(q) else { break };
                if c == b'#' {
                    match filters::hex_pair(b, q + 1) {
                        Some(v) => name.push(v),
                        None => break,
                    }
                    q += 2;
                    left -= 2;
                    escapes = true;
                    continue;
                }
                if matches!(
                    c,
                    b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>' | b'[' | b']' | b'<' | b'('
                ) {
                    break;
                }
                name.push(c);
            }
            // The name is a C string.
            if let Some(nul) = name.iter().position(|&c| c == 0) {
                name.truncate(nul);
            }
            if escapes && watched(&name) {
                self.obfuscated = true;
            }
            self.handle_name(i, &name, &mut state);
            if state == State::Linearized {
                state = State::None;
                // A linearized document's first trailer, before `/H`.
                let b = self.buf(bufk);
                let h = read_int(b, dict, (enddict - dict).min(b.len() - dict), b"/H");
                if h > 0 && (h as usize) < self.map.len() {
                    let end = h as usize;
                    let from = end.saturating_sub(1024);
                    let map = self.map;
                    self.trailer(map, from, end - from);
                }
            }
            if left > 0
                && matches!(
                    state,
                    State::JavaScript | State::OpenAction | State::Contents
                )
            {
                self.indirect(i, bufk, q, left as usize, state);
                state = State::None;
            }
        }
    }

    /// After `/JavaScript`, `/OpenAction` or `/Contents`: a reference
    /// `N G R` moves the flag from this object to the one referenced.
    fn indirect(&mut self, i: usize, bufk: Buf, q: usize, left: usize, state: State) {
        let b = self.buf(bufk);
        let Some(mut q2) = next_object(b, q, left) else {
            return;
        };
        if !b[q2].is_ascii_digit() {
            return;
        }
        let mut remaining = left as i64 - (q2 - q) as i64;
        let Some(num) = strtol(b, q2, remaining.max(0) as usize).filter(|&v| v >= 0) else {
            return;
        };
        while remaining > 0 && b.get(q2).is_some_and(u8::is_ascii_digit) {
            q2 += 1;
            remaining -= 1;
        }
        let old = q2;
        let Some(g) = next_object(b, q2, remaining.max(0) as usize) else {
            return;
        };
        if !b[g].is_ascii_digit() {
            return;
        }
        remaining -= (g - old) as i64;
        let Some(gen_) = strtol(b, g, remaining.max(0) as usize).filter(|&v| v >= 0) else {
            return;
        };
        let Some(r) = next_object(b, g, remaining.max(0) as usize) else {
            return;
        };
        if b[r] != b'R' {
            return;
        }
        let id = ((num as u64) << 8 | (gen_ as u64 & 0xff)) as u32;
        let flag = match state {
            State::JavaScript => JAVASCRIPT,
            State::OpenAction => OPENACTION,
            _ => CONTENTS,
        };
        if let Some(j) = self.find_obj(i, id) {
            self.objs[i].flags &= !flag;
            self.objs[j].flags |= flag;
        }
    }

    fn handle_name(&mut self, i: usize, name: &[u8], state: &mut State) {
        let o = &mut self.objs[i];
        let Some((flag, from, to)) = action(name) else {
            return;
        };
        if o.filters.len() < MAX_FILTERS
            && *state == State::Filter
            && flag & KNOWN_FILTERS != 0
            && let Some(f) = filter_of(flag)
        {
            o.filters.push(f);
        }
        if from == *state || from == State::Any {
            *state = to;
            o.flags |= flag;
        } else if *state == State::S {
            *state = State::None;
        }
    }

    /// What ClamAV dumps of object `i` (`pdf_extract_obj`).
    fn extract(&mut self, i: usize) -> Vec<Out> {
        let mut outs = Vec::new();
        let o = &mut self.objs[i];
        if o.extracted {
            return outs;
        }
        o.extracted = true;
        let name = o.name();
        if o.truncated {
            outs.push(Out::Problem(Problem::Broken {
                member: Some(name.clone()),
                detail: "object without endobj".into(),
            }));
        }
        let flags = o.flags;
        let mut dump =
            !((flags & STREAM == 0 || flags & HASFILTERS != 0) && flags & DUMP_MASK == 0);
        if flags & IMAGE != 0 && flags & FILTER_DCT == 0 {
            dump = false;
        }
        if !dump {
            return outs;
        }
        let (o_id, bufk, start, size, stream) = (o.id, o.buf, o.start, o.size, o.stream);
        let bytes = match stream {
            Some(stream) if bufk == Buf::Map => self.stream(i, start, stream, &mut outs),
            _ if flags & JAVASCRIPT != 0 => self.javascript(o_id, bufk, start, size),
            _ => {
                let b = self.buf(bufk);
                b.get(start..start.saturating_add(size).min(b.len()))
                    .unwrap_or(&[])
                    .to_vec()
            }
        };
        if bytes.is_empty() {
            return outs;
        }
        let text = (flags & CONTENTS != 0).then(|| page_text(&bytes));
        outs.push(Out::Member(name.clone(), bytes));
        if let Some(text) = text
            && !text.is_empty()
        {
            outs.push(Out::Member(format!("{name} contents"), text));
        }
        outs
    }

    /// A stream object's data through its filters; an object stream's
    /// objects are added to the list on the way.
    fn stream(
        &mut self,
        i: usize,
        start: usize,
        (s_off, s_size): (usize, usize),
        outs: &mut Vec<Out>,
    ) -> Vec<u8> {
        let map = self.map;
        let dict_len = s_off - start;
        let flags = self.objs[i].flags;
        let mut length = self.find_length(i, start, dict_len);
        if length > s_size {
            length = s_size;
        }
        if flags & FILTER_FLATE == 0 && length == 0 {
            // ClamAV trims line ends counting from the object's start, not
            // the stream's.
            length = s_size;
            if length > 0 {
                let q = start + s_size - 1;
                match map.get(q) {
                    Some(b'\n') => {
                        length -= 1;
                        if length > 0 && q > 0 && map[q - 1] == b'\r' {
                            length -= 1;
                        }
                    }
                    Some(b'\r') => length -= 1,
                    _ => {}
                }
            }
        } else if s_size > length.saturating_add(2) {
            length = s_size;
        }
        if length == 0 {
            length = s_size;
            if length == 0 {
                return Vec::new();
            }
        }
        // ClamAV reads up to `length` bytes from the stream's start; only
        // the document bounds it.
        let raw = &map[s_off..s_off.saturating_add(length).min(map.len())];
        let early_change = early_change(map, start, dict_len);
        let objstm = get_dict(map, start, dict_len, b"/Type/ObjStm").and_then(|_| {
            let first = read_int(map, start, dict_len, b"/First");
            let len = read_int(map, start, dict_len, b"/Length");
            let n = read_int(map, start, dict_len, b"/N");
            (first != -1 && len != -1 && n != -1).then_some((first, n))
        });
        let name = self.objs[i].name();
        let id = self.objs[i].id;
        let mut filters = self.objs[i].filters.clone();
        let mut token: Option<Vec<u8>> = None;
        let mut decoded = 0;
        let mut failed = false;
        // A decrypted document's streams are decrypted first, unless they
        // have a `/Crypt` filter of their own or are cross-reference streams.
        if let Some(sec) = self.security.as_ref().filter(|s| s.decryptable)
            && flags & FILTER_CRYPT == 0
            && find(map, start, dict_len, b"/XRef").is_none()
        {
            let method = if flags & EMBEDDED_FILE != 0 {
                sec.embedded
            } else {
                sec.stream
            };
            match sec.decrypt(id, raw, method) {
                Some(v) => token = Some(v),
                None => {
                    outs.push(Out::Problem(Problem::Broken {
                        member: Some(name.clone()),
                        detail: format!("stream not decrypted (method {method:?})"),
                    }));
                    failed = true;
                    filters.clear();
                }
            }
        }
        for f in filters {
            let input = token.as_deref().unwrap_or(raw);
            let step = if f == Filter::Crypt {
                let method = self.security.as_ref().map_or(Method::Unknown, |s| {
                    s.crypt_filter(crypt_name(map, start, dict_len).as_deref())
                });
                match self
                    .security
                    .as_ref()
                    .and_then(|s| s.decrypt(id, input, method))
                {
                    Some(v) => Step::Decoded(v),
                    None => Step::Failed(format!("Crypt: no key for method {method:?}")),
                }
            } else {
                filters::apply(f, input, early_change, MAX_DECODED)
            };
            match step {
                Step::Decoded(v) => token = Some(v),
                Step::Stop => break,
                Step::Failed(e) => {
                    outs.push(Out::Problem(Problem::Broken {
                        member: Some(name.clone()),
                        detail: e,
                    }));
                    failed = true;
                    break;
                }
            }
            if token.as_ref().is_some_and(Vec::is_empty) {
                break;
            }
            decoded += 1;
        }
        if let Some((first, n)) = objstm
            && !failed
        {
            // The object stream's buffer is what the filters left, even raw.
            let data = token.clone().unwrap_or_else(|| raw.to_vec());
            self.objstm(i, data, first, n, outs);
        }
        if decoded > 0 {
            token.unwrap_or_default()
        } else {
            raw.to_vec()
        }
    }

    /// The value of `/Length`, direct or indirect (`find_length`), before
    /// ClamAV checks it against the stream.
    /// The number object `j` holds, as `find_length` reads a `/Length`
    /// reference. Remembered: ClamAV reads up to the end of the buffer for
    /// it, and every stream may point to the same object.
    fn length_value(&self, j: usize) -> Option<usize> {
        if let Some(&v) = self.lengths.borrow().get(&j) {
            return v;
        }
        let o = &self.objs[j];
        let b = self.buf(o.buf);
        let value = (|| {
            if o.start.saturating_add(o.size) > b.len() {
                return None;
            }
            let rest = b.len() - o.start;
            let v = next_object(b, o.start, rest)?;
            let l = strtol(b, v, rest - (v - o.start)).filter(|&v| v >= 0)?;
            Some(l as usize)
        })();
        self.lengths.borrow_mut().insert(j, value);
        value
    }

    fn find_length(&self, i: usize, start: usize, dict_len: usize) -> usize {
        let map = self.map;
        if dict_len < 8 {
            return 0;
        }
        let Some(key) = find(map, start, dict_len, b"/Length") else {
            return 0;
        };
        let mut left = dict_len - (key - start);
        if left < 1 {
            return 0;
        }
        let idx = key + 1;
        left -= 1;
        let Some(value) = next_object(map, idx, left) else {
            return 0;
        };
        if left < value - idx {
            return 0;
        }
        left -= value - idx;
        let mut at = value;
        let Some(n) = strtol(map, at, left).filter(|&v| v >= 0) else {
            return 0;
        };
        let mut length = n as usize;
        while left > 0 && map.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
            left -= 1;
        }
        if left > 0 && map.get(at) == Some(&b' ') {
            at += 1;
            left -= 1;
            let Some(gen_) = strtol(map, at, left).filter(|&v| v >= 0) else {
                return 0;
            };
            while left > 0 && map.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
                left -= 1;
            }
            if left < 2 {
                return 0;
            }
            if map.get(at) == Some(&b' ') && map.get(at + 1) == Some(&b'R') {
                let id = ((n as u64) << 8 | (gen_ as u64 & 0xff)) as u32;
                let Some(j) = self.find_obj(i, id) else {
                    return 0;
                };
                match self.length_value(j) {
                    Some(l) => length = l,
                    None => return 0,
                }
            }
        }
        // ClamAV bounds it by the document, from where the value was read.
        let size = map.len();
        if value.saturating_add(length).saturating_add(5) > size {
            length = size.wrapping_sub(value).wrapping_sub(5);
        }
        length
    }

    /// Reads the objects of object stream `i` (`pdf_find_and_parse_objs_in_objstm`).
    fn objstm(&mut self, i: usize, data: Vec<u8>, first: i64, n: i64, outs: &mut Vec<Out>) {
        let (Ok(first), Ok(n)) = (usize::try_from(first), usize::try_from(n)) else {
            return;
        };
        if first == 0 || data.is_empty() || n == 0 || first >= data.len() {
            return;
        }
        let k = self.stms.len();
        self.stms.push(ObjStm {
            data,
            first,
            n,
            current_pair: 0,
            found: 0,
        });
        for _ in 0..n {
            if self.objs.len() >= MAX_OBJECTS {
                self.too_many = true;
                return;
            }
            match self.objstm_next(k) {
                Some(obj) => {
                    self.push(obj);
                    let j = self.objs.len() - 1;
                    self.parse(j);
                }
                None => {
                    outs.push(Out::Problem(Problem::Broken {
                        member: Some(self.objs[i].name()),
                        detail: format!(
                            "object stream: {} of {n} objects found",
                            self.stms[k].found
                        ),
                    }));
                    return;
                }
            }
        }
    }

    /// The next object of object stream `k` (`pdf_findobj_in_objstm`).
    fn objstm_next(&mut self, k: usize) -> Option<Obj> {
        let stm = &mut self.stms[k];
        let b = &stm.data[..];
        let len = b.len();
        let non_ws = |mut at: usize, end: usize| {
            while at < end && at < len && is_ws(b[at]) {
                at += 1;
            }
            at
        };
        let mut index = stm.current_pair;
        let objid = strtol(b, index, len.saturating_sub(index)).filter(|&v| v >= 0)?;
        while index < len && b[index].is_ascii_digit() {
            index += 1;
        }
        index = non_ws(index, stm.first);
        let objoff = strtol(b, index, len.saturating_sub(index)).filter(|&v| v >= 0)? as usize;
        if stm.first.checked_add(objoff)? > len {
            return None;
        }
        let start = stm.first + objoff;
        stm.found += 1;
        while index < len && b[index].is_ascii_digit() {
            index += 1;
        }
        stm.current_pair = non_ws(index, stm.first);
        let size = if stm.found < stm.n && index < len {
            let mut index = stm.current_pair;
            while index < len && b[index].is_ascii_digit() {
                index += 1;
            }
            index = non_ws(index, stm.first);
            let next = strtol(b, index, len.saturating_sub(index)).filter(|&v| v >= 0)? as usize;
            if next <= objoff || stm.first.checked_add(next)? > len {
                return None;
            }
            next - objoff
        } else {
            len - start
        };
        Some(Obj {
            id: ((objid as u64) << 8) as u32,
            buf: Buf::ObjStm(k),
            start,
            size,
            flags: 0,
            filters: Vec::new(),
            stream: None,
            truncated: false,
            extracted: false,
        })
    }

    /// The `/JS` strings after each `/JavaScript` of an object, as ClamAV
    /// writes them (with the odd closing bytes it copies after each).
    fn javascript(&self, id: u32, bufk: Buf, start: usize, size: usize) -> Vec<u8> {
        let b = self.buf(bufk);
        let mut out = Vec::new();
        let mut q = start;
        let mut left = size as i64;
        while left > 0 {
            let Some(js_at) = find(b, q, left as usize, b"/JavaScript") else {
                break;
            };
            left -= (js_at - q) as i64 + 11;
            q = js_at + 11;
            if left <= 0 {
                break;
            }
            // Escapes are decoded only in decrypted documents.
            let sec = self.security.as_ref().filter(|s| s.decryptable);
            let Some((js, end)) = read_string(b, q, left as usize, b"/JS", sec.is_none()) else {
                continue;
            };
            left -= (end - q) as i64;
            q = end;
            // ClamAV measures the string with strlen.
            let js = js.split(|&c| c == 0).next().unwrap_or(&[]);
            match sec.and_then(|s| s.decrypt(id, js, s.string)) {
                Some(plain) => out.extend_from_slice(&plain),
                None => out.extend_from_slice(js),
            }
            if left > 0 {
                let l = left as usize;
                let mut q2 = next_object(b, q, l).unwrap_or(q + l - 1);
                if let Some(p) = b
                    .get(q..(q + l).min(b.len()))
                    .and_then(|s| memchr::memchr(b')', s))
                    && q + p < q2
                {
                    q2 = q + p;
                }
                while q2 > q && b.get(q2 - 1) == Some(&b' ') {
                    q2 -= 1;
                }
                if q2 > q
                    && let Some(tail) = b.get(q - 1..q2.min(b.len()))
                {
                    out.extend_from_slice(tail);
                }
            }
        }
        out
    }
}

/// `N G` before ` obj` at `obj_begin` (the white space before `obj`), read
/// backwards as `pdf_findobj` does; `None` when they are not numbers.
fn parse_obj_header(map: &[u8], start: usize, obj_begin: usize) -> Option<u32> {
    let back = |q: isize| {
        let mut q = q;
        while q > start as isize && is_ws(map[q as usize]) {
            q -= 1;
        }
        q
    };
    let mut g = back(obj_begin as isize - 1);
    while g > start as isize && map[g as usize].is_ascii_digit() {
        g -= 1;
    }
    if g < 0 {
        return None;
    }
    let gen_ = strtol(map, g as usize, obj_begin - g as usize).filter(|&v| v >= 0)?;
    let mut o = back(g - 1);
    while o > start as isize && map[o as usize].is_ascii_digit() {
        o -= 1;
    }
    if o < 0 {
        return None;
    }
    let num = match strtol(map, o as usize, (g - o) as usize) {
        Some(n) => n,
        None => {
            // A revision appended right after `%%EOF`: `%%EOF1 0 obj`.
            let last = o - 4;
            if last <= start as isize || map.get(last as usize..last as usize + 5) != Some(b"%%EOF")
            {
                return None;
            }
            let o = o + 1;
            strtol(map, o as usize, usize::try_from(g - 1 - o).ok()?)?
        }
    };
    if num < 0 {
        return None;
    }
    Some(((num as u64) << 8 | (gen_ as u64 & 0xff)) as u32)
}

/// The data of the stream in the object at `start` of `size` bytes
/// (`find_stream_bounds`): after `stream` and its line end, up to
/// `endstream` or the object's end.
fn stream_bounds(map: &[u8], start: usize, size: usize) -> Option<(usize, usize)> {
    let end = start.saturating_add(size).min(map.len());
    let kw = find(map, start, end - start, b"stream")?;
    let mut idx = kw + 6;
    if idx >= end {
        return None;
    }
    let mut left = end - idx;
    if left >= 2 && map[idx] == b'\r' && map[idx + 1] == b'\n' {
        idx += 2;
        left -= 2;
        // ClamAV's "newline hack", on while no encryption is known.
        if left > 2 && map[idx] == b'\n' {
            idx += 1;
            left -= 1;
        }
    } else if left > 0 && map[idx] == b'\n' {
        idx += 1;
        left -= 1;
    }
    let stop = find(map, idx, left, b"endstream").unwrap_or(end);
    Some((idx, stop - idx))
}

/// `/EarlyChange` of the stream's `/DecodeParms` (or `/DP`); 1 by default.
fn early_change(map: &[u8], start: usize, dict_len: usize) -> bool {
    let Some((p, left)) = get_dict(map, start, dict_len, b"/DecodeParms")
        .or_else(|| get_dict(map, start, dict_len, b"/DP"))
    else {
        return true;
    };
    let end = p.saturating_add(left).min(map.len());
    let Some(close) = find(map, p, end - p, b">>") else {
        return true;
    };
    match find(map, p, close - p, b"/EarlyChange") {
        Some(k) => strtol(map, k + 12, close - (k + 12)).is_none_or(|v| v != 0),
        None => true,
    }
}

/// The text of a page's content stream as ClamAV extracts it
/// (`pdf_scan_contents`): from the first line that starts with `[`, the
/// bytes inside each `( )`, normalized as text; read in 8 KiB pieces.
fn page_text(data: &[u8]) -> Vec<u8> {
    const IN: usize = 8192;
    const OUT: usize = 8192;
    #[derive(PartialEq)]
    enum St {
        None,
        Tj,
        Paren,
    }
    let mut st = St::None;
    let mut norm = AsciiNormalizer::new();
    let mut out = Vec::new();
    let mut buffer = Vec::with_capacity(OUT);
    for chunk in data.chunks(IN) {
        let mut i = 0;
        while i < chunk.len() {
            let c = chunk[i];
            match st {
                St::None => {
                    if c == b'[' {
                        st = St::Tj;
                    } else {
                        match memchr::memchr(b'\n', &chunk[i..]) {
                            Some(nl) => i += nl,
                            None => break,
                        }
                    }
                }
                St::Tj => {
                    if c == b'(' {
                        st = St::Paren;
                    }
                }
                St::Paren => {
                    if c == b')' {
                        st = St::Tj;
                    } else if norm.feed(&[c], &mut buffer, OUT) != 1 {
                        out.append(&mut buffer);
                        norm.reset();
                    }
                }
            }
            i += 1;
        }
    }
    out.append(&mut buffer);
    out
}

/// `/Encrypt N G R` at `enc` (`pdf_parse_encrypt`), skipping an
/// `/EncryptMetadata` key first.
fn encrypt_ref(b: &[u8], mut enc: usize, mut len: usize) -> Option<u32> {
    if len >= 16 && b.get(enc..enc + 16) == Some(b"/EncryptMetadata") {
        let q = find(b, enc + 16, len - 16, b"/Encrypt")?;
        len -= q - enc;
        enc = q;
    }
    let mut q = enc + 8;
    len = len.checked_sub(8)?;
    let q2 = next_object(b, q, len).filter(|&p| b[p].is_ascii_digit())?;
    len -= q2 - q;
    q = q2;
    let num = strtol(b, q, len).filter(|&v| v >= 0)?;
    let q2 = next_object(b, q, len).filter(|&p| b[p].is_ascii_digit())?;
    len -= q2 - q;
    q = q2;
    let gen_ = strtol(b, q, len).filter(|&v| v >= 0)?;
    let r = next_object(b, q, len)?;
    (b[r] == b'R').then_some(((num as u64) << 8 | (gen_ as u64 & 0xff)) as u32)
}

/// The `/Name` of a `/Crypt` filter's `/DecodeParms`, as ClamAV's dictionary
/// parser reads it: from its slash up to the next slash or `>`.
fn crypt_name(map: &[u8], start: usize, dict_len: usize) -> Option<Vec<u8>> {
    let (p, left) = get_dict(map, start, dict_len, b"/DecodeParms")
        .or_else(|| get_dict(map, start, dict_len, b"/DP"))?;
    let end = p.saturating_add(left).min(map.len());
    let close = find(map, p, end - p, b">>").unwrap_or(end);
    let k = find(map, p, close - p, b"/Name")?;
    let mut v = k + 5;
    while v < close && syntax::c_space(map[v]) {
        v += 1;
    }
    if map.get(v) != Some(&b'/') {
        return None;
    }
    let stop = map[v + 1..close]
        .iter()
        .position(|&c| c == b'/' || c == b'>')
        .map_or(close, |n| v + 1 + n);
    Some(map[v..stop].to_vec())
}
