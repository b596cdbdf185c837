//! Rich Text Format: the objects embedded with `{\object ... {\*\objdata
//! <hex>}}` (ClamAV's `rtf.c`).
//!
//! ClamAV does not parse RTF; it tracks groups and control words just enough
//! to find the hex text of an `\objdata` inside an `\object`, decodes it, and
//! reads it as OLE1 objects: an 8-byte header, a class name (`Package`,
//! `Word.Document.8`, ...) of which it keeps 64 bytes at most, 8 bytes, and a
//! sized payload. A payload that is an OLE2 document is scanned as it is;
//! anything else is read as `\1Ole10Native` data (the packager's header
//! skipped, see [`crate::ole2::ole10_native`]).
//!
//! The quirks of ClamAV's state machine are kept, because they decide what
//! is scanned: the control word must be spelled `\objdata` followed by a
//! space; a class name longer than 64 bytes makes the rest of the object
//! data be skipped; the 8 bytes after the class name must arrive in one run
//! of hex text; the input is read in 8 KiB pieces, and a run of text ends at
//! each piece's end; an `\object` seen in groups that had nothing else
//! outlives them. Objects cut short by the end of their group or of the file
//! are scanned with what they have.
//!
//! Memory: one object's decoded bytes (at most half the input) and the stack
//! of open groups that have state (capped at [`MAX_GROUPS`]).

use std::io::Cursor;

use crate::ole2::ole10_native;
use crate::source::ReadAt;
use crate::walk::{Body, Flow, FormatError, Member, Problem, Visitor, visit};

/// ClamAV reads the file in pieces of this size; a run of text never spans
/// two.
const PIECE: usize = 8192;
/// Nested groups whose state must be kept, at most (ClamAV stops when its
/// allocation limit refuses a larger stack).
const MAX_GROUPS: usize = 1 << 18;
/// The OLE1 header's class name is kept up to this length; a longer one
/// derails the decoder (as in ClamAV).
const MAX_CLASS: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Parse {
    Main,
    Control,
    Word,
    Symbol,
    Param,
    Interpret,
}

/// Where an object's decoder is in the OLE1 header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    Magic,
    ClassLen,
    Class,
    Zeros,
    DataSize,
    Dump,
}

/// How a dumped payload is scanned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Nothing dumped yet.
    Unknown,
    /// Not an OLE2 document: read as `\1Ole10Native` data.
    Native,
    /// An OLE2 document, scanned as it is.
    Ole2,
}

/// The decoder of one `\objdata` group's hex text.
#[derive(Debug)]
struct Object {
    /// The high nibble of a byte whose low one is still to come.
    partial: Option<u8>,
    step: Step,
    /// Bytes of the current field read so far.
    got: usize,
    /// The class name's length, then the payload's bytes still to come.
    len: u64,
    class: Vec<u8>,
    /// The payload being dumped (`None` until its size was read), and its
    /// declared size.
    dump: Option<Vec<u8>>,
    declared: u32,
    kind: Kind,
}

impl Object {
    fn new() -> Object {
        Object {
            partial: None,
            step: Step::Magic,
            got: 0,
            len: 0,
            class: Vec::new(),
            dump: None,
            declared: 0,
            kind: Kind::Unknown,
        }
    }

    /// Feeds one run of text; finished payloads are pushed to `done`.
    fn process(&mut self, input: &[u8], done: &mut Vec<Found>) {
        let bytes = decode_hex(&mut self.partial, input);
        let mut p = 0usize;
        let mut cnt = bytes.len();
        while cnt > 0 {
            match self.step {
                Step::Magic => {
                    // Not checked (ClamAV only logs a mismatch).
                    let take = cnt.min(8 - self.got);
                    self.got += take;
                    cnt -= take;
                    if self.got == 8 {
                        p += take;
                        self.got = 0;
                        self.step = Step::ClassLen;
                    }
                }
                Step::ClassLen | Step::DataSize => {
                    if self.got == 0 {
                        self.len = 0;
                    }
                    let mut i = 0;
                    while i < cnt && self.got < 4 {
                        self.len |= u64::from(bytes[p + i]) << (8 * self.got);
                        i += 1;
                        self.got += 1;
                    }
                    cnt -= i;
                    if self.got == 4 {
                        p += i;
                        self.got = 0;
                        if self.step == Step::ClassLen {
                            self.class.clear();
                            self.step = Step::Class;
                        } else {
                            self.declared = self.len as u32;
                            self.dump = Some(Vec::new());
                            self.kind = Kind::Unknown;
                            self.step = Step::Dump;
                        }
                    }
                }
                Step::Class => {
                    let mut i = 0;
                    while i < cnt && (self.got as u64) < self.len && self.got < MAX_CLASS {
                        self.class.push(bytes[p + i]);
                        i += 1;
                        self.got += 1;
                    }
                    cnt -= i;
                    p += i;
                    let got = self.got as u64;
                    if got < self.len && self.got < MAX_CLASS {
                        return;
                    }
                    // The rest of a longer name is skipped; but the skip
                    // never ends (ClamAV's arithmetic), so the object is lost.
                    let rest = self.len - got;
                    if rest > cnt as u64 {
                        self.len -= cnt as u64;
                        return;
                    }
                    cnt -= rest as usize;
                    if got >= self.len {
                        self.got = 0;
                        self.step = Step::Zeros;
                    }
                }
                Step::Zeros => {
                    // Eight bytes, which must come in one run of text.
                    if cnt < 8 {
                        cnt = 0;
                    } else {
                        cnt -= 8;
                        p += 8;
                        self.step = Step::DataSize;
                    }
                }
                Step::Dump => {
                    let want = (cnt as u64).min(self.len) as usize;
                    let Some(dump) = self.dump.as_mut() else {
                        cnt = 0;
                        continue;
                    };
                    if self.kind == Kind::Unknown {
                        // ClamAV peeks at two bytes even when one is left.
                        let second = if cnt > 1 { bytes.get(p + 1) } else { None };
                        if bytes.get(p) == Some(&0xd0) && second == Some(&0xcf) {
                            self.kind = Kind::Ole2;
                        } else {
                            self.kind = Kind::Native;
                        }
                    }
                    self.len -= want as u64;
                    dump.extend_from_slice(&bytes[p..p + want]);
                    p += want;
                    cnt -= want;
                    if self.len == 0 {
                        self.finish(done, false);
                        self.got = 0;
                        self.step = Step::Magic;
                    }
                }
            }
        }
    }

    /// Hands the dumped payload, if any, to `done`.
    fn finish(&mut self, done: &mut Vec<Found>, cut: bool) {
        let Some(dump) = self.dump.take() else {
            return;
        };
        let class = String::from_utf8_lossy(&self.class).into_owned();
        let data = match self.kind {
            Kind::Unknown => return,
            Kind::Ole2 => dump,
            Kind::Native => {
                // cli_scan_ole10 reads a file of the declared size followed
                // by what was dumped.
                let mut file = Vec::with_capacity(dump.len() + 4);
                file.extend_from_slice(&self.declared.to_le_bytes());
                file.extend_from_slice(&dump);
                match ole10_native(&file) {
                    Some(object) => object.to_vec(),
                    None => {
                        done.push(Found {
                            class,
                            data: Vec::new(),
                            cut: true,
                        });
                        return;
                    }
                }
            }
        };
        done.push(Found { class, data, cut });
    }
}

/// Decodes the hex digits of `input`, skipping anything else (even between
/// the two digits of a byte), carrying a lone digit over in `partial`.
fn decode_hex(partial: &mut Option<u8>, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 2 + 1);
    let mut digits = input.iter().filter_map(|&b| hex(b));
    if let Some(high) = *partial {
        match digits.next() {
            Some(low) => {
                out.push(high | low);
                *partial = None;
            }
            None => return out,
        }
    }
    while let Some(high) = digits.next() {
        match digits.next() {
            Some(low) => out.push(high << 4 | low),
            None => {
                *partial = Some(high << 4);
                break;
            }
        }
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A payload to scan.
struct Found {
    class: String,
    data: Vec<u8>,
    /// It ended before its declared size, or its packager header was cut.
    cut: bool,
}

/// What ClamAV keeps per group.
#[derive(Debug)]
struct State {
    parse: Parse,
    /// An `\object` was seen (inherited by inner groups).
    object: bool,
    /// An `\objdata ` was seen inside an object: text is object data.
    objdata: bool,
    data: Option<Box<Object>>,
    /// Groups opened in a state that had nothing to keep, not pushed.
    defaults: usize,
}

impl State {
    fn base() -> State {
        State {
            parse: Parse::Main,
            object: false,
            objdata: false,
            data: None,
            defaults: 0,
        }
    }

    fn is_base(&self) -> bool {
        self.parse == Parse::Main && !self.object && !self.objdata && self.data.is_none()
    }
}

/// Walks the objects embedded in the RTF document in `src`.
pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let mut w = Rtf {
        visitor,
        state: State::base(),
        stack: Vec::new(),
        done: Vec::new(),
        count: 0,
        word: Vec::with_capacity(33),
        param: 0,
    };
    let size = src.size();
    let mut piece = vec![0u8; PIECE];
    let mut offset = 0u64;
    while offset < size {
        let n = src.read_at(&mut piece, offset)?;
        if n == 0 {
            break;
        }
        offset += n as u64;
        match w.piece(&piece[..n]) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Stop) => return Ok(()),
            Err(detail) => {
                w.visitor.problem(Problem::Broken {
                    member: None,
                    detail,
                });
                break;
            }
        }
    }
    // What is still open is scanned with what it has.
    if let Some(mut o) = w.state.data.take() {
        o.finish(&mut w.done, true);
    }
    while let Some(mut s) = w.stack.pop() {
        if let Some(mut o) = s.data.take() {
            o.finish(&mut w.done, true);
        }
    }
    w.flush();
    Ok(())
}

struct Rtf<'v> {
    visitor: &'v mut dyn Visitor,
    state: State,
    /// Saved states of the enclosing groups that had something to keep.
    stack: Vec<State>,
    done: Vec<Found>,
    count: usize,
    /// The control word being read and its parameter. ClamAV keeps them
    /// per group, but a group opens and closes only between control words.
    word: Vec<u8>,
    param: i64,
}

impl Rtf<'_> {
    /// Visits the payloads finished so far.
    fn flush(&mut self) -> Flow {
        for f in std::mem::take(&mut self.done) {
            self.count += 1;
            let name = if f.class.is_empty() {
                format!("object{}", self.count)
            } else {
                format!("object{} ({})", self.count, f.class)
            };
            if f.cut
                && self.visitor.problem(Problem::Broken {
                    member: Some(name.clone()),
                    detail: "RTF: embedded object cut short".into(),
                }) == Flow::Stop
            {
                return Flow::Stop;
            }
            if f.data.is_empty() {
                continue;
            }
            let mut m = Member::new(name, Body::Read(Box::new(Cursor::new(f.data))));
            if visit(self.visitor, &mut m) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn end_object(&mut self) {
        if let Some(mut o) = self.state.data.take() {
            o.finish(&mut self.done, true);
        }
    }

    fn push(&mut self) -> Result<(), String> {
        if self.state.is_base() {
            self.state.defaults += 1;
            return Ok(());
        }
        if self.stack.len() >= MAX_GROUPS {
            return Err(format!("RTF: more than {MAX_GROUPS} nested groups"));
        }
        let mut child = State::base();
        child.object = self.state.object;
        let saved = std::mem::replace(&mut self.state, child);
        self.stack.push(saved);
        Ok(())
    }

    fn pop(&mut self) {
        if self.state.defaults > 0 {
            let mut s = State::base();
            s.defaults = self.state.defaults - 1;
            s.object = self.state.object;
            self.state = s;
            return;
        }
        self.state = self.stack.pop().unwrap_or_else(State::base);
    }

    fn piece(&mut self, piece: &[u8]) -> Result<Flow, String> {
        let mut at = 0usize;
        while at < piece.len() {
            let c = piece[at];
            match self.state.parse {
                Parse::Main => match c {
                    b'{' => {
                        at += 1;
                        self.push()?;
                    }
                    b'}' => {
                        at += 1;
                        self.end_object();
                        self.pop();
                    }
                    b'\\' => {
                        at += 1;
                        self.state.parse = Parse::Control;
                    }
                    _ => {
                        let run = piece[at + 1..]
                            .iter()
                            .position(|&b| matches!(b, b'{' | b'}' | b'\\'))
                            .map_or(piece.len() - at, |i| i + 1);
                        if self.state.objdata {
                            let o = self
                                .state
                                .data
                                .get_or_insert_with(|| Box::new(Object::new()));
                            o.process(&piece[at..at + run], &mut self.done);
                        }
                        at += run;
                    }
                },
                Parse::Control => {
                    if c.is_ascii_alphabetic() {
                        self.state.parse = Parse::Word;
                        self.word.clear();
                    } else {
                        self.state.parse = Parse::Symbol;
                    }
                }
                Parse::Symbol => {
                    at += 1;
                    self.state.parse = Parse::Main;
                }
                Parse::Word => {
                    if self.word.len() == 32 {
                        self.state.parse = Parse::Main;
                    } else if c.is_ascii_alphabetic() {
                        self.word.push(c);
                        at += 1;
                    } else if is_space(c) {
                        // The space belongs to the word: `\objdata ` is
                        // what ClamAV looks for.
                        self.word.push(c);
                        at += 1;
                        self.state.parse = Parse::Interpret;
                    } else if c.is_ascii_digit() {
                        self.state.parse = Parse::Param;
                        self.param = 0;
                    } else if c == b'-' {
                        at += 1;
                        self.state.parse = Parse::Param;
                        self.param = 0;
                    } else {
                        self.state.parse = Parse::Interpret;
                    }
                }
                Parse::Param => {
                    if c.is_ascii_digit() {
                        let d = i64::from(c - b'0');
                        match self.param.checked_mul(10).and_then(|p| p.checked_add(d)) {
                            Some(p) => {
                                self.param = p;
                                at += 1;
                            }
                            None => self.state.parse = Parse::Main,
                        }
                    } else if c.is_ascii_alphabetic() {
                        at += 1;
                    } else {
                        self.state.parse = Parse::Interpret;
                    }
                }
                Parse::Interpret => {
                    let object = self.word == b"object";
                    let objdata = self.word == b"objdata ";
                    if object || objdata {
                        // A new action ends the object being read.
                        if self.state.data.is_some() {
                            self.end_object();
                            self.state.objdata = false;
                        }
                        if object {
                            self.state.object = true;
                        } else if self.state.object {
                            self.state.objdata = true;
                        }
                    }
                    self.state.parse = Parse::Main;
                }
            }
            if !self.done.is_empty() && self.flush() == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }
}

/// C's `isspace` in the C locale.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_skips_other_characters_and_carries_a_nibble() {
        let mut partial = None;
        assert_eq!(decode_hex(&mut partial, b"0 1\r\nA"), vec![0x01]);
        assert_eq!(partial, Some(0xa0));
        assert_eq!(decode_hex(&mut partial, b"zB ff"), vec![0xab, 0xff]);
        assert_eq!(partial, None);
    }
}
