//! ClamAV's JavaScript normalizer (`libclamav/jsparse/js-norm.c`), which
//! turns each `<script>` of an HTML page into the text of its `javascript`
//! output.
//!
//! It tokenizes the script, renames declared variables and functions to
//! `n000`, `n001`, ... per scope, joins `"a" + "b"` into one string, decodes
//! `unescape("...")`, `eval("...")`, Dean Edwards' packer
//! (`function(p,a,c,k,e,r)`) and scriptasylum's `dF("...")`, then prints the
//! tokens lower-cased with just the spaces needed between words, as
//! `<script>...</script>`. Like ClamAV it keeps a script's tokens until the
//! script ends (it cannot rename before it has seen the declarations), up to
//! [`MAX_TOKENS`].

use std::collections::HashMap;

use super::LimitHit;

/// Tokens kept for one script; later ones are dropped (ClamAV keeps all).
pub(super) const MAX_TOKENS: usize = 1 << 20;

/// Enclosing function scopes searched for a name's declaration (ClamAV:
/// all of them).
const MAX_SCOPE_WALK: usize = 256;

/// Token steps the decoders may take for one script: splicing decoded
/// tokens into the list and scanning for the packer's calls are linear each,
/// so quadratic over thousands of `eval`s (ClamAV has no bound).
const MAX_DECODE_WORK: usize = 1 << 25;

/// Nested decodes ClamAV follows (`eval` of `eval` of ...).
const MAX_REC: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    FutureReservedWord,
    Error,
    IdentifierName,
    True,
    False,
    Null,
    BracketOpen,
    BracketClose,
    Comma,
    CurlyOpen,
    CurlyClose,
    ParOpen,
    ParClose,
    Dot,
    Semicolon,
    Colon,
    New,
    NumericInt,
    NumericFloat,
    StringLiteral,
    This,
    PlusPlus,
    MinusMinus,
    Delete,
    Void,
    Typeof,
    Minus,
    Tilde,
    Exclamation,
    Multiply,
    Divide,
    Percent,
    Plus,
    ShiftLeft,
    ShiftRight,
    DoubleShiftRight,
    Less,
    Greater,
    LessEqual,
    GreaterEqual,
    Instanceof,
    In,
    EqualEqual,
    NotEqual,
    TripleEqual,
    NotDoubleEqual,
    And,
    Xor,
    Or,
    AndAnd,
    OrOr,
    QuestionMark,
    Equal,
    AssignNoEqual,
    Var,
    If,
    Else,
    Do,
    While,
    For,
    Continue,
    Break,
    Return,
    With,
    Switch,
    Case,
    Default,
    Throw,
    Try,
    Catch,
    Finally,
    Function,
    UnnormIdentifier,
}

fn keyword(w: &[u8]) -> Option<Tok> {
    Some(match w {
        b"break" => Tok::Break,
        b"case" => Tok::Case,
        b"catch" => Tok::Catch,
        b"continue" => Tok::Continue,
        b"default" => Tok::Default,
        b"delete" => Tok::Delete,
        b"do" => Tok::Do,
        b"else" => Tok::Else,
        b"finally" => Tok::Finally,
        b"for" => Tok::For,
        b"function" => Tok::Function,
        b"if" => Tok::If,
        b"in" => Tok::In,
        b"instanceof" => Tok::Instanceof,
        b"new" => Tok::New,
        b"return" => Tok::Return,
        b"switch" => Tok::Switch,
        b"this" => Tok::This,
        b"throw" => Tok::Throw,
        b"try" => Tok::Try,
        b"typeof" => Tok::Typeof,
        b"var" => Tok::Var,
        b"void" => Tok::Void,
        b"while" => Tok::While,
        b"with" => Tok::With,
        b"null" => Tok::Null,
        b"true" => Tok::True,
        b"false" => Tok::False,
        b"abstract" | b"boolean" | b"byte" | b"char" | b"class" | b"const" | b"debugger"
        | b"double" | b"enum" | b"export" | b"extends" | b"final" | b"float" | b"goto"
        | b"implements" | b"import" | b"int" | b"interface" | b"long" | b"native" | b"package"
        | b"private" | b"protected" | b"public" | b"short" | b"static" | b"super"
        | b"synchronized" | b"throws" | b"transient" | b"volatile" => Tok::FutureReservedWord,
        _ => return None,
    })
}

fn operator(w: &[u8]) -> Option<Tok> {
    Some(match w {
        b"=" => Tok::Equal,
        b"+" => Tok::Plus,
        b"===" => Tok::TripleEqual,
        b">>>" => Tok::DoubleShiftRight,
        b"!==" => Tok::NotDoubleEqual,
        b"<<" => Tok::ShiftLeft,
        b"<=" => Tok::LessEqual,
        b"==" => Tok::EqualEqual,
        b">=" => Tok::GreaterEqual,
        b">>" => Tok::ShiftRight,
        b"||" => Tok::OrOr,
        b"--" => Tok::MinusMinus,
        b"!=" => Tok::NotEqual,
        b"&&" => Tok::AndAnd,
        b"++" => Tok::PlusPlus,
        b"*=" | b"/=" | b"%=" | b"+=" | b"-=" | b"<<=" | b">>=" | b">>>=" | b"&=" | b"^="
        | b"|=" => Tok::AssignNoEqual,
        b"&" => Tok::And,
        b":" => Tok::Colon,
        b"/" => Tok::Divide,
        b"!" => Tok::Exclamation,
        b">" => Tok::Greater,
        b"<" => Tok::Less,
        b"-" => Tok::Minus,
        b"*" => Tok::Multiply,
        b"|" => Tok::Or,
        b"%" => Tok::Percent,
        b"?" => Tok::QuestionMark,
        b"~" => Tok::Tilde,
        b"^" => Tok::Xor,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Space,
    Slash,
    Op,
    DQuote,
    SQuote,
    Digit,
    IdStart,
    Special(Tok, &'static [u8]),
    Nop,
}

fn class(c: u8) -> Class {
    match c {
        b'\t' | b'\n' | 0x0b | b'\r' | b' ' => Class::Space,
        b'/' => Class::Slash,
        b'!' | b'%' | b'&' | b'*' | b'+' | b'-' | b':' | b'<' | b'=' | b'>' | b'?' | b'^'
        | b'|' | b'~' => Class::Op,
        b'"' => Class::DQuote,
        b'\'' => Class::SQuote,
        b'0'..=b'9' => Class::Digit,
        b'$' | b'A'..=b'Z' | b'a'..=b'z' | b'_' | b'\\' => Class::IdStart,
        b'[' => Class::Special(Tok::BracketOpen, b"["),
        b']' => Class::Special(Tok::BracketClose, b"]"),
        b',' => Class::Special(Tok::Comma, b","),
        b'{' => Class::Special(Tok::CurlyOpen, b"{"),
        b'}' => Class::Special(Tok::CurlyClose, b"}"),
        b'(' => Class::Special(Tok::ParOpen, b"("),
        b')' => Class::Special(Tok::ParClose, b")"),
        b'.' => Class::Special(Tok::Dot, b"."),
        b';' => Class::Special(Tok::Semicolon, b";"),
        _ => Class::Nop,
    }
}

/// A byte's class inside an identifier: part of it, `\` (an escape), or
/// the end of it.
fn id_part(c: u8) -> Option<bool> {
    match c {
        b'$' | b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' | b'_' => Some(true),
        b'\\' => Some(false),
        _ => None,
    }
}

fn hex(c: u8) -> i32 {
    (c as char).to_digit(16).map_or(-1, |d| d as i32)
}

/// `(hi < 0 ? 0 : hi) << 4 | lo`, with `lo` of -1 making the whole -1.
fn hex2(hi: u8, lo: u8) -> i32 {
    (hex(hi).max(0) << 4) | hex(lo)
}

fn hex4(d: &[u8]) -> u16 {
    let h = |i: usize| hex(d.get(i).copied().unwrap_or(0));
    ((h(0).max(0) << 12) | (h(1).max(0) << 8) | (h(2).max(0) << 4) | h(3)) as u16
}

/// UTF-8 of a UTF-16 unit, with NUL written as 0x01 (ClamAV's `output_utf8`).
fn utf8(u: u16, out: &mut Vec<u8>) {
    if u == 0 {
        out.push(1);
    } else if u < 0x80 {
        out.push(u as u8);
    } else if u < 0x800 {
        out.push(0xc0 | (u >> 6) as u8);
        out.push(0x80 | (u & 0x3f) as u8);
    } else {
        out.push(0xe0 | (u >> 12) as u8);
        out.push(0x80 | ((u >> 6) & 0x3f) as u8);
        out.push(0x80 | (u & 0x3f) as u8);
    }
}

/// JavaScript's `unescape()` as ClamAV has it (`cli_unescape`): `%uXXXX` to
/// UTF-8, `%XX` to a byte, NUL to 0x01. The input is a C string.
fn unescape(s: &[u8]) -> Vec<u8> {
    let s = cstr(s);
    let len = s.len();
    let mut r = Vec::with_capacity(len);
    let mut k = 0;
    while k < len {
        let mut c = s[k];
        if s[k] == b'%' {
            let long = k + 5 < len
                && s[k + 1] == b'u'
                && s[k + 2..k + 6].iter().all(u8::is_ascii_hexdigit);
            if long {
                utf8(hex4(&s[k + 2..k + 6]), &mut r);
                k += 6;
                continue;
            }
            if k + 2 < len && s[k + 1].is_ascii_hexdigit() && s[k + 2].is_ascii_hexdigit() {
                c = hex2(s[k + 1], s[k + 2]) as u8;
                k += 2;
            }
        }
        r.push(if c == 0 { 1 } else { c });
        k += 1;
    }
    r
}

fn cstr(b: &[u8]) -> &[u8] {
    match memchr::memchr(0, b) {
        Some(i) => &b[..i],
        None => b,
    }
}

/// A string literal's escapes, decoded as ClamAV does
/// (`cli_textbuffer_append_normalize`).
fn append_normalized(buf: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    let mut i = 0;
    while i < len {
        let mut c = s[i];
        if c == b'\\' && i + 1 < len {
            i += 1;
            match s[i] {
                b'0' => c = 0,
                b'b' => c = 8,
                b't' => c = 9,
                b'n' => c = 10,
                b'v' => c = 11,
                b'f' => c = 12,
                b'r' => c = 13,
                b'x' => {
                    if i + 2 < len {
                        c = hex2(s[i + 1], s[i + 2]) as u8;
                    }
                    i += 2;
                }
                b'u' => {
                    if i + 4 < len {
                        utf8(hex4(&s[i + 1..i + 5]), buf);
                        i += 5;
                        continue;
                    }
                }
                other => c = other,
            }
        }
        buf.push(if c == 0 { 1 } else { c });
        i += 1;
    }
}

/// C's `atoi`: `strtol` saturating at the `long` range, then cut to `int`.
fn atoi(digits: &[u8]) -> i64 {
    let mut v: i64 = 0;
    for &d in digits.iter().take_while(|d| d.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add(i64::from(d - b'0'));
    }
    i64::from(v as i32)
}

/// C's `atof` on what the tokenizer collected: the longest prefix that is a
/// number (`1.5e` reads as 1.5).
fn atof(s: &[u8]) -> f64 {
    let mut end = s.iter().take_while(|d| d.is_ascii_digit()).count();
    if s.get(end) == Some(&b'.') {
        end += 1;
        end += s[end..].iter().take_while(|d| d.is_ascii_digit()).count();
    }
    if matches!(s.get(end), Some(b'e' | b'E')) {
        let mut e = end + 1;
        if matches!(s.get(e), Some(b'+' | b'-')) {
            e += 1;
        }
        let digits = s[e.min(s.len())..]
            .iter()
            .take_while(|d| d.is_ascii_digit())
            .count();
        if digits > 0 {
            end = e + digits;
        }
    }
    std::str::from_utf8(&s[..end])
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0.0)
}

/// C's `printf("%g")`.
fn fmt_g(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v.is_nan() {
        return "nan".into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let e = format!("{v:.5e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let x: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..6).contains(&x) {
        let sign = if x < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mant), x.abs())
    } else {
        trim(&format!("{:.*}", (5 - x) as usize, v))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LexState {
    Initial,
    MultilineComment,
    SinglelineComment,
    Number,
    DQString,
    SQString,
    Identifier,
    Dummy,
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Undefined,
    /// A constant or interned text (`cstring`).
    CStr(Vec<u8>),
    /// An owned string (`string`), possibly taken (NULL).
    Str(Option<Vec<u8>>),
    /// A function's scope, or `None` for the marker of a function's end.
    Scope(Option<usize>),
    Float(f64),
    Int(i64),
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    ty: Tok,
    val: Val,
}

impl Token {
    /// `TOKEN_GET(t, cstring)`.
    fn cstring(&self) -> Option<&[u8]> {
        match &self.val {
            Val::CStr(s) => Some(s),
            Val::Str(s) => s.as_deref(),
            _ => None,
        }
    }
    /// `TOKEN_GET(t, string)`.
    fn string(&self) -> Option<&[u8]> {
        match &self.val {
            Val::Str(s) => s.as_deref(),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Scanner {
    buf: Vec<u8>,
    /// The text of the last string literal (`yytext`), else `buf` is.
    text: Option<Vec<u8>>,
    pos: usize,
    lastpos: usize,
    state: LexState,
    last_state: LexState,
}

impl Scanner {
    fn new() -> Self {
        Self {
            buf: Vec::new(),
            text: None,
            pos: 0,
            lastpos: usize::MAX,
            state: LexState::Initial,
            last_state: LexState::Dummy,
        }
    }

    fn scan_bytes(&mut self) {
        self.pos = 0;
        self.lastpos = usize::MAX;
        self.last_state = LexState::Dummy;
    }

    /// `yyget_text`, as a C string.
    fn text(&self) -> &[u8] {
        cstr(self.text.as_deref().unwrap_or(&self.buf))
    }

    fn string(&mut self, input: &[u8], q: u8, to: LexState) -> Option<Token> {
        let start = self.pos;
        let mut end = start;
        let found = loop {
            match memchr::memchr(q, &input[end..]) {
                Some(i) => {
                    let at = end + i;
                    if at > start && input[at - 1] == b'\\' {
                        end = at + 1;
                        continue;
                    }
                    break Some(at);
                }
                None => break None,
            }
        };
        let len = match found {
            Some(at) => at - start,
            None => input.len() - start,
        };
        append_normalized(&mut self.buf, &input[start..start + len]);
        match found {
            Some(_) => {
                self.pos += len + 1;
                let s = std::mem::take(&mut self.buf);
                self.text = Some(s.clone());
                self.state = LexState::Initial;
                Some(Token {
                    ty: Tok::StringLiteral,
                    val: Val::Str(Some(s)),
                })
            }
            None => {
                self.pos += len;
                self.state = to;
                None
            }
        }
    }

    fn number(&mut self, input: &[u8]) -> Option<Token> {
        let mut is_float = false;
        while self.pos < input.len() {
            let mut c = input[self.pos];
            self.pos += 1;
            if c.is_ascii_digit() {
                self.buf.push(c);
                continue;
            }
            if c == b'.' && !is_float {
                is_float = true;
                self.buf.push(c);
                continue;
            }
            if (c == b'e' || c == b'E') && is_float {
                self.buf.push(c);
                if self.pos < input.len() {
                    c = input[self.pos];
                    self.pos += 1;
                    if c == b'+' || c == b'-' || c.is_ascii_digit() {
                        self.buf.push(c);
                        continue;
                    }
                }
            }
            self.pos -= 1;
            self.state = LexState::Initial;
            return Some(if is_float {
                Token {
                    ty: Tok::NumericFloat,
                    val: Val::Float(atof(&self.buf)),
                }
            } else {
                Token {
                    ty: Tok::NumericInt,
                    val: Val::Int(atoi(&self.buf)),
                }
            });
        }
        self.state = LexState::Number;
        None
    }

    fn ident(&mut self, input: &[u8]) -> Option<Token> {
        self.state = LexState::Initial;
        while self.pos < input.len() {
            let c = input[self.pos];
            self.pos += 1;
            match id_part(c) {
                Some(true) => {
                    self.buf.push(c);
                    continue;
                }
                Some(false) => {
                    if self.pos < input.len() {
                        let next = input[self.pos];
                        self.pos += 1;
                        if next == b'u' {
                            self.buf.push(c);
                            continue;
                        }
                    }
                    if self.pos == input.len() {
                        self.pos += 1;
                    }
                }
                None => {}
            }
            self.state = LexState::Initial;
            self.pos -= 1;
            let word = cstr(&self.buf);
            return Some(match keyword(word) {
                Some(ty) => Token {
                    ty,
                    val: Val::CStr(word.to_vec()),
                },
                None => Token {
                    ty: Tok::IdentifierName,
                    val: Val::Undefined,
                },
            });
        }
        self.state = LexState::Identifier;
        None
    }

    fn operator(&mut self, input: &[u8]) -> Token {
        let mut len = 5.min(input.len() - self.pos);
        while len > 0 {
            let w = &input[self.pos..self.pos + len];
            if let Some(ty) = operator(w) {
                self.pos += len;
                return Token {
                    ty,
                    val: Val::CStr(w.to_vec()),
                };
            }
            len -= 1;
        }
        self.pos += 1;
        Token {
            ty: Tok::Error,
            val: Val::Undefined,
        }
    }

    /// The next token of `input`, or `None` at its end (or where a token
    /// continues into the next input).
    fn lex(&mut self, input: &[u8]) -> Option<Token> {
        self.text = None;
        if self.pos == self.lastpos && self.last_state == self.state {
            self.pos += 1;
        }
        self.lastpos = self.pos;
        self.last_state = self.state;
        while self.pos < input.len() {
            match self.state {
                LexState::Initial => {
                    self.buf.clear();
                    let c = input[self.pos];
                    self.pos += 1;
                    match class(c) {
                        Class::Space | Class::Nop => continue,
                        Class::Slash => {
                            if let Some(&la) = input.get(self.pos) {
                                if la == b'*' {
                                    self.state = LexState::MultilineComment;
                                    self.pos += 1;
                                    continue;
                                }
                                if la == b'/' {
                                    self.state = LexState::SinglelineComment;
                                    self.pos += 1;
                                    continue;
                                }
                            }
                            self.pos -= 1;
                            return Some(self.operator(input));
                        }
                        Class::Op => {
                            self.pos -= 1;
                            return Some(self.operator(input));
                        }
                        Class::DQuote => return self.string(input, b'"', LexState::DQString),
                        Class::SQuote => return self.string(input, b'\'', LexState::SQString),
                        Class::Digit => {
                            self.pos -= 1;
                            return self.number(input);
                        }
                        Class::IdStart => {
                            self.pos -= 1;
                            return self.ident(input);
                        }
                        Class::Special(ty, s) => {
                            return Some(Token {
                                ty,
                                val: Val::CStr(s.to_vec()),
                            });
                        }
                    }
                }
                LexState::DQString => return self.string(input, b'"', LexState::DQString),
                LexState::SQString => return self.string(input, b'\'', LexState::SQString),
                LexState::Identifier => return self.ident(input),
                LexState::Number => return self.number(input),
                LexState::MultilineComment => {
                    while self.pos + 1 < input.len() {
                        if input[self.pos] == b'*' && input[self.pos + 1] == b'/' {
                            self.state = LexState::Initial;
                            self.pos += 1;
                            break;
                        }
                        self.pos += 1;
                    }
                    self.pos += 1;
                }
                LexState::SinglelineComment => {
                    // htmlnorm turned new lines into spaces: a space ends it.
                    while self.pos < input.len()
                        && input[self.pos] != b'\n'
                        && input[self.pos] != b' '
                    {
                        self.pos += 1;
                    }
                    self.state = LexState::Initial;
                }
                LexState::Dummy => return None,
            }
        }
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fsm {
    Base,
    InsideVar,
    InsideInitializer,
    WaitFunctionName,
    WaitParameterList,
    InsideFunctionDecl,
}

#[derive(Debug)]
struct Scope {
    ids: HashMap<Vec<u8>, i64>,
    parent: Option<usize>,
    fsm: Fsm,
    last_token: Option<Tok>,
    brackets: u32,
    blocks: u32,
}

/// One script being normalized.
#[derive(Debug)]
pub(super) struct JsNormalizer {
    var_uniq: i64,
    scopes: Vec<Scope>,
    global: usize,
    current: usize,
    scanner: Scanner,
    tokens: Vec<Token>,
    rec: u32,
    /// Bytes the packer decoder may still produce: its dictionary words can
    /// expand each input byte many times (ClamAV has no bound).
    budget: usize,
    /// Whether the budget ran out or tokens were dropped.
    capped: bool,
    /// Token steps taken by the decoders so far.
    work: usize,
    /// Whether the decoders stopped at `MAX_DECODE_WORK`.
    decode_stopped: bool,
}

impl JsNormalizer {
    pub(super) fn new(budget: usize) -> Self {
        let mut s = Self {
            var_uniq: 0,
            scopes: Vec::new(),
            global: 0,
            current: 0,
            scanner: Scanner::new(),
            tokens: Vec::new(),
            rec: 0,
            budget,
            capped: false,
            work: 0,
            decode_stopped: false,
        };
        s.global = s.scope_new();
        s
    }

    fn scope_new(&mut self) -> usize {
        let parent = if self.scopes.is_empty() {
            None
        } else {
            Some(self.current)
        };
        self.scopes.push(Scope {
            ids: HashMap::new(),
            parent,
            fsm: Fsm::Base,
            last_token: None,
            brackets: 0,
            blocks: 0,
        });
        self.current = self.scopes.len() - 1;
        self.current
    }

    fn declare(&mut self, scope: usize, name: &[u8]) {
        let id = self.var_uniq;
        self.var_uniq += 1;
        self.scopes[scope].ids.insert(name.to_vec(), id);
    }

    fn use_id(&mut self, scope: usize, name: &[u8]) {
        self.scopes[scope].ids.entry(name.to_vec()).or_insert(-1);
    }

    fn lookup(&self, mut scope: Option<usize>, name: &[u8]) -> Option<i64> {
        // ClamAV walks the whole chain of enclosing functions for every
        // identifier, quadratic on functions nested thousands deep; aether
        // looks `MAX_SCOPE_WALK` levels up.
        let mut walked = 0;
        while let Some(s) = scope {
            walked += 1;
            if walked > MAX_SCOPE_WALK {
                return None;
            }
            let sc = &self.scopes[s];
            if let Some(&id) = sc.ids.get(name)
                && id != -1
            {
                return Some(id);
            }
            scope = sc.parent;
        }
        None
    }

    fn add(&mut self, t: Token) {
        if self.tokens.len() < MAX_TOKENS {
            self.tokens.push(t);
        } else {
            self.capped = true;
        }
    }

    /// `cli_js_process_buffer`: tokenizes more of the script.
    pub(super) fn process(&mut self, input: &[u8]) {
        let mut current = self.current;
        self.scanner.scan_bytes();
        while let Some(mut val) = self.scanner.lex(input) {
            let yv = val.ty;
            match yv {
                Tok::Var => self.scopes[current].fsm = Fsm::InsideVar,
                Tok::IdentifierName => {
                    let text = self.scanner.text().to_vec();
                    if self.scopes[current].last_token == Some(Tok::Dot) {
                        // A member name: never renamed.
                        val = Token {
                            ty: Tok::UnnormIdentifier,
                            val: Val::Str(Some(text)),
                        };
                    } else {
                        match self.scopes[current].fsm {
                            Fsm::WaitParameterList | Fsm::Base | Fsm::InsideInitializer => {
                                self.use_id(current, &text);
                            }
                            Fsm::InsideVar | Fsm::InsideFunctionDecl => {
                                self.declare(current, &text);
                                let sc = &mut self.scopes[current];
                                sc.fsm = Fsm::InsideInitializer;
                                sc.brackets = 0;
                            }
                            Fsm::WaitFunctionName => {
                                self.declare(current, &text);
                                self.scopes[current].fsm = Fsm::WaitParameterList;
                            }
                        }
                        val.val = Val::CStr(text);
                    }
                }
                Tok::ParOpen => {
                    let sc = &mut self.scopes[current];
                    if matches!(sc.fsm, Fsm::WaitFunctionName | Fsm::WaitParameterList) {
                        sc.fsm = Fsm::InsideFunctionDecl;
                    }
                }
                Tok::ParClose => {
                    let sc = &mut self.scopes[current];
                    if sc.fsm == Fsm::WaitParameterList {
                        sc.fsm = Fsm::Base;
                    }
                }
                Tok::CurlyOpen => {
                    let sc = &mut self.scopes[current];
                    if matches!(
                        sc.fsm,
                        Fsm::WaitFunctionName | Fsm::WaitParameterList | Fsm::InsideFunctionDecl
                    ) {
                        sc.fsm = Fsm::Base;
                    }
                    sc.blocks += 1;
                }
                Tok::CurlyClose => {
                    let sc = &mut self.scopes[current];
                    sc.blocks = sc.blocks.saturating_sub(1);
                    if sc.blocks == 0
                        && let Some(parent) = sc.parent
                    {
                        // The `}` itself, then a marker: the function ends.
                        self.add(Token {
                            ty: Tok::CurlyClose,
                            val: Val::CStr(b"}".to_vec()),
                        });
                        val = Token {
                            ty: Tok::Function,
                            val: Val::Scope(None),
                        };
                        self.current = parent;
                        current = parent;
                    }
                }
                Tok::BracketOpen => self.scopes[current].brackets += 1,
                Tok::BracketClose => {
                    let sc = &mut self.scopes[current];
                    sc.brackets = sc.brackets.saturating_sub(1);
                }
                Tok::Comma => {
                    let sc = &mut self.scopes[current];
                    if sc.fsm == Fsm::InsideInitializer && sc.brackets == 0 && sc.blocks == 0 {
                        sc.fsm = Fsm::InsideVar;
                    }
                }
                Tok::Semicolon => {
                    let sc = &mut self.scopes[current];
                    if sc.brackets == 0 && sc.blocks == 0 {
                        sc.fsm = Fsm::Base;
                    }
                }
                Tok::Function => {
                    current = self.scope_new();
                    self.scopes[current].fsm = Fsm::WaitFunctionName;
                    val.val = Val::Scope(Some(current));
                }
                Tok::StringLiteral => {
                    let n = self.tokens.len();
                    if n > 1
                        && self.tokens[n - 1].ty == Tok::Plus
                        && self.tokens[n - 2].ty == Tok::StringLiteral
                    {
                        // "a" + "b": one string.
                        let text = self.scanner.text().to_vec();
                        self.tokens.pop();
                        // (String literals never hold a NUL: escapes give 0x01.)
                        if let Val::Str(Some(s)) = &mut self.tokens[n - 2].val {
                            s.extend_from_slice(&text);
                        }
                        continue;
                    }
                }
                _ => {}
            }
            self.add(val);
            self.scopes[current].last_token = Some(yv);
        }
    }

    /// `cli_js_parse_done` and `cli_js_output`: the bytes ClamAV appends to
    /// `javascript` for this script (`after_another`: a new line first, as
    /// between scripts).
    pub(super) fn finish(mut self, after_another: bool, hit: &mut Option<LimitHit>) -> Vec<u8> {
        let end = match self.scanner.state {
            LexState::DQString => Some(b'"'),
            LexState::SQString => Some(b'\''),
            _ => None,
        };
        if let Some(q) = end {
            self.process(&[q]);
        }
        let mut balance = 0usize;
        for t in &self.tokens {
            if t.ty == Tok::ParOpen {
                balance += 1;
            } else if t.ty == Tok::ParClose && balance > 0 {
                balance -= 1;
            }
        }
        for _ in 0..balance {
            self.add(Token {
                ty: Tok::ParClose,
                val: Val::CStr(b")".to_vec()),
            });
        }
        self.run_folders();
        self.run_decoders();
        if self.capped {
            hit.get_or_insert(LimitHit::HtmlOutput);
        }
        if self.decode_stopped {
            hit.get_or_insert(LimitHit::ScriptDecode);
        }
        self.output(after_another)
    }

    fn update_scope(&mut self, i: usize) -> bool {
        if let Some(t) = self.tokens.get(i)
            && t.ty == Tok::Function
        {
            match t.val {
                Val::Scope(Some(s)) => self.current = s,
                _ => {
                    if let Some(p) = self.scopes[self.current].parent {
                        self.current = p;
                    }
                    return false;
                }
            }
        }
        true
    }

    fn replace(tokens: &mut Vec<Token>, start: usize, end: usize, with: Vec<Token>) -> bool {
        if start >= tokens.len() || end > tokens.len() || end < start {
            return false;
        }
        tokens.splice(start..end, with);
        true
    }

    fn run_folders(&mut self) {
        let mut i = 0;
        while i < self.tokens.len() {
            let t = &self.tokens[i];
            if i + 2 < self.tokens.len()
                && t.ty == Tok::IdentifierName
                && t.cstring() == Some(b"unescape")
                && self.tokens[i + 1].ty == Tok::ParOpen
                && self.tokens[i + 2].ty == Tok::StringLiteral
            {
                let r = unescape(self.tokens[i + 2].cstring().unwrap_or(b""));
                let tok = Token {
                    ty: Tok::StringLiteral,
                    val: Val::Str(Some(r)),
                };
                Self::replace(&mut self.tokens, i, i + 4, vec![tok]);
            }
            i += 1;
        }
    }

    fn match_params(&self, at: usize, names: &[&[u8]]) -> bool {
        let t = |k: usize| self.tokens.get(at + k);
        if t(0).map(|t| t.ty) != Some(Tok::ParOpen) {
            return false;
        }
        // ClamAV bounds these by the whole list's length, not what follows.
        let total = self.tokens.len();
        let mut idx = 1;
        for (n, name) in names.iter().enumerate() {
            let left = names.len() - n - 1;
            let Some(tok) = t(idx) else { return false };
            if idx >= total || tok.ty != Tok::IdentifierName || tok.cstring() != Some(*name) {
                return false;
            }
            idx += 1;
            let want = if left > 0 { Tok::Comma } else { Tok::ParClose };
            if idx >= total || t(idx).map(|t| t.ty) != Some(want) {
                return false;
            }
            idx += 1;
        }
        true
    }

    fn run_decoders(&mut self) {
        // The scope walk starts wherever parsing left `current`, as in ClamAV.
        let mut i = 0;
        while i < self.tokens.len() {
            if self.work > MAX_DECODE_WORK {
                self.decode_stopped = true;
                return;
            }
            let mut res: Option<(Vec<u8>, usize, usize, bool)> = None;
            let ty = self.tokens[i].ty;
            let name_is =
                |t: &Token, n: &[u8]| t.ty == Tok::IdentifierName && t.cstring() == Some(n);
            if ty == Tok::Function && i + 13 < self.tokens.len() {
                i += 1;
                let mut name = None;
                if self.tokens[i].ty == Tok::IdentifierName {
                    name = self.tokens[i].cstring().map(<[u8]>::to_vec);
                    i += 1;
                }
                if self.match_params(i, &[b"p", b"a", b"c", b"k", b"e", b"r"])
                    || self.match_params(i, &[b"p", b"a", b"c", b"k", b"e", b"d"])
                {
                    res = self.handle_de(i, name.as_deref());
                }
            } else if i + 2 < self.tokens.len()
                && name_is(&self.tokens[i], b"dF")
                && self.tokens[i + 1].ty == Tok::ParOpen
            {
                res = self.handle_df(i + 2);
            } else if i + 2 < self.tokens.len()
                && name_is(&self.tokens[i], b"eval")
                && self.tokens[i + 1].ty == Tok::ParOpen
            {
                res = self.handle_eval(i + 2);
            }
            if let Some((text, begin, mut end, append)) = res
                && end > begin
            {
                if end < self.tokens.len() && self.tokens[end].ty == Tok::Semicolon {
                    end += 1;
                }
                let parent = std::mem::take(&mut self.tokens);
                self.rec += 1;
                if self.rec <= MAX_REC {
                    self.process(&text);
                    self.rec -= 1;
                }
                let nested = std::mem::replace(&mut self.tokens, parent);
                self.work += self.tokens.len().saturating_sub(begin) + nested.len();
                if append {
                    Self::replace(&mut self.tokens, begin, end, Vec::new());
                    for t in nested {
                        self.add(t);
                    }
                } else {
                    Self::replace(&mut self.tokens, begin, end, nested);
                }
            }
            self.update_scope(i);
            i += 1;
        }
    }

    /// Dean Edwards' packer: finds the packed call and unpacks its words.
    fn handle_de(
        &mut self,
        start: usize,
        name: Option<&[u8]>,
    ) -> Option<(Vec<u8>, usize, usize, bool)> {
        let cnt = self.tokens.len();
        let mut nesting = 1usize;
        let mut i = start;
        while i < cnt {
            if self.tokens[i].ty == Tok::Function {
                if matches!(self.tokens[i].val, Val::Scope(Some(_))) {
                    nesting += 1;
                } else {
                    nesting -= 1;
                }
                if nesting == 0 {
                    break;
                }
            }
            i += 1;
        }
        self.work += i - start;
        if nesting != 0 {
            return None;
        }
        let mut out = Vec::new();
        let mut first = None;
        let mut last = None;
        let mut collect = |this: &mut Self, i: &mut usize, out: &mut Vec<u8>| {
            let mut params = [0usize; 6];
            let mut j = 0;
            while j < 6 && *i < cnt {
                params[j] = *i;
                *i += 1;
                let stop = if j != 5 { Tok::Comma } else { Tok::ParClose };
                while *i < cnt && this.tokens[*i].ty != stop {
                    *i += 1;
                }
                *i += 1;
                j += 1;
            }
            if j == 6 {
                if first.is_none() {
                    first = Some(params[0]);
                }
                last = Some(params[5]);
                this.decode_de(&params, out);
            }
        };
        match name {
            Some(name) => {
                self.work += cnt.saturating_sub(i);
                while i + 2 < cnt {
                    let t = &self.tokens[i];
                    if t.ty == Tok::IdentifierName
                        && t.cstring() == Some(name)
                        && self.tokens[i + 1].ty == Tok::ParOpen
                    {
                        i += 2;
                        collect(self, &mut i, &mut out);
                    }
                    i += 1;
                }
            }
            None => {
                while i < cnt && self.tokens[i].ty != Tok::ParOpen {
                    i += 1;
                }
                i += 1;
                if i >= cnt {
                    return None;
                }
                collect(self, &mut i, &mut out);
            }
        }
        let (first, last) = (first?, last?);
        let begin = first;
        let mut end = last + 1;
        let t = |k: usize| self.tokens.get(k).map(|t| t.ty);
        if end + 2 < cnt
            && t(end) == Some(Tok::BracketOpen)
            && t(end + 1) == Some(Tok::BracketClose)
            && t(end + 2) == Some(Tok::ParClose)
        {
            end += 3;
        } else if end < cnt {
            end += 1;
        }
        Some((out, begin, end, false))
    }

    fn decode_de(&mut self, params: &[usize; 6], out: &mut Vec<u8>) {
        let p = self.tokens[params[0]].cstring().map(|s| cstr(s).to_vec());
        let a = match self.tokens[params[1]].val {
            Val::Int(v) => v,
            _ => -1,
        };
        let k_tok = &mut self.tokens[params[3]];
        let (Some(p), Val::Str(Some(k))) = (p, &mut k_tok.val) else {
            return;
        };
        // ClamAV splits the dictionary in place on `|`: what is left of the
        // token is its first word.
        let kc = cstr(k).to_vec();
        let words: Vec<Vec<u8>> = kc.split(|&b| b == b'|').map(<[u8]>::to_vec).collect();
        let first_len = words.first().map_or(0, Vec::len);
        k.truncate(first_len);
        let mut q = 0;
        loop {
            while q < p.len() && !p[q].is_ascii_alphanumeric() {
                if p[q] == b'\\' && matches!(p.get(q + 1), Some(b'\'' | b'"')) {
                    q += 1;
                } else {
                    out.push(p[q]);
                    q += 1;
                }
            }
            if q >= p.len() {
                break;
            }
            let word_start = q;
            let mut val: u32 = 0;
            while q < p.len() && p[q].is_ascii_alphanumeric() {
                let v = p[q];
                q += 1;
                let x = if v >= b'a' {
                    10 + u32::from(v - b'a')
                } else if v >= b'A' {
                    36 + u32::from(v - b'A')
                } else {
                    u32::from(v - b'0')
                };
                val = (i64::from(val).wrapping_mul(a).wrapping_add(i64::from(x))) as u32;
            }
            let piece = match words.get(val as usize) {
                Some(w) if !w.is_empty() => &w[..],
                _ => &p[word_start..q],
            };
            if piece.len() > self.budget {
                self.budget = 0;
                self.capped = true;
                return;
            }
            self.budget -= piece.len();
            out.extend_from_slice(piece);
            if q >= p.len() {
                break;
            }
        }
    }

    /// scriptasylum's `dF("...")` encoder.
    fn handle_df(&mut self, start: usize) -> Option<(Vec<u8>, usize, usize, bool)> {
        let t = self.tokens.get_mut(start)?;
        if t.ty != Tok::StringLiteral {
            return None;
        }
        let Val::Str(Some(s)) = &mut t.val else {
            return None;
        };
        s.truncate(cstr(s).len());
        let last = *s.last()?;
        let clast = last.wrapping_sub(b'0');
        s.pop();
        let mut s1 = unescape(s);
        for b in &mut s1 {
            *b = b.wrapping_sub(clast);
        }
        let r = unescape(&s1);
        Some((r, start.wrapping_sub(2), start + 2, true))
    }

    fn handle_eval(&mut self, start: usize) -> Option<(Vec<u8>, usize, usize, bool)> {
        if start + 1 >= self.tokens.len() {
            return None;
        }
        let has = self.tokens[start].string().is_some();
        if has && self.tokens[start + 1].ty == Tok::ParClose {
            let Val::Str(s) = &mut self.tokens[start].val else {
                return None;
            };
            let text = s.take().map(|v| cstr(&v).to_vec()).unwrap_or_default();
            return Some((text, start - 2, start + 2, false));
        }
        None
    }

    fn output(&mut self, after_another: bool) -> Vec<u8> {
        let mut out = OutBuf::default();
        if after_another {
            out.c(b'\n');
        }
        out.s(b"<script>");
        self.current = self.global;
        let mut last = 0u8;
        for i in 0..self.tokens.len() {
            if self.update_scope(i) {
                last = self.output_token(i, &mut out, last);
            }
        }
        if !out.ends_with_script() {
            out.s(b"</script>");
        }
        out.done()
    }

    fn output_token(&self, i: usize, out: &mut OutBuf, last: u8) -> u8 {
        let t = &self.tokens[i];
        let space = |out: &mut OutBuf, cur: u8| {
            if last.is_ascii_alphanumeric() && cur.is_ascii_alphanumeric() {
                out.c(b' ');
            }
        };
        match t.ty {
            Tok::StringLiteral => {
                space(out, b'"');
                out.c(b'"');
                if let Some(s) = t.cstring() {
                    out.s(s);
                }
                out.c(b'"');
                b'"'
            }
            Tok::NumericInt => {
                space(out, b'0');
                let v = match t.val {
                    Val::Int(v) => v,
                    _ => -1,
                };
                out.s(v.to_string().as_bytes());
                b'0'
            }
            Tok::NumericFloat => {
                space(out, b'0');
                let v = match t.val {
                    Val::Float(v) => v,
                    _ => -1.0,
                };
                out.s(fmt_g(v).as_bytes());
                b'0'
            }
            Tok::IdentifierName => {
                space(out, b'a');
                if let Some(s) = t.cstring() {
                    let s = cstr(s);
                    match self.lookup(Some(self.current), s) {
                        Some(id) => out.s(format!("n{id:03}").as_bytes()),
                        None => out.s(s),
                    }
                }
                b'a'
            }
            Tok::Function => {
                space(out, b'a');
                out.s(b"function");
                b'a'
            }
            _ => match t.cstring() {
                Some(s) => {
                    let s = cstr(s);
                    space(out, s.first().copied().unwrap_or(0));
                    out.s(s);
                    s.last().copied().unwrap_or(0)
                }
                None => 0,
            },
        }
    }
}

/// ClamAV's 64 KiB output buffer: whether the script already ends with
/// `</script>` is judged on what is still buffered.
#[derive(Default)]
struct OutBuf {
    done: Vec<u8>,
    pos: usize,
}

const OUT_BUF: usize = 65536;

impl OutBuf {
    fn c(&mut self, b: u8) {
        if self.pos >= OUT_BUF {
            self.pos = 0;
        }
        self.done.push(b);
        self.pos += 1;
    }

    /// Lower-cased, white space as spaces, up to a NUL.
    fn s(&mut self, s: &[u8]) {
        for &b in cstr(s) {
            if self.pos >= OUT_BUF {
                self.pos = 0;
            }
            self.done.push(if super::chunk::is_space(b) {
                b' '
            } else {
                b.to_ascii_lowercase()
            });
            self.pos += 1;
            if self.pos == OUT_BUF {
                self.pos = 0;
            }
        }
    }

    fn ends_with_script(&self) -> bool {
        self.pos >= 9 && self.done.ends_with(b"</script>")
    }

    fn done(self) -> Vec<u8> {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        let mut j = JsNormalizer::new(usize::MAX);
        j.process(s.as_bytes());
        String::from_utf8_lossy(&j.finish(false, &mut None)).into_owned()
    }

    #[test]
    fn renames_declared_variables() {
        assert_eq!(
            norm("var A = \"x\"; eval(A);</script>"),
            "<script>var n000=\"x\";eval(n000);</script>"
        );
    }

    #[test]
    fn g_format() {
        assert_eq!(fmt_g(1.5), "1.5");
        assert_eq!(fmt_g(1e6), "1e+06");
        assert_eq!(fmt_g(123456.0), "123456");
        assert_eq!(fmt_g(0.0001), "0.0001");
        assert_eq!(fmt_g(0.00001), "1e-05");
        assert_eq!(fmt_g(1.23456789), "1.23457");
    }
}
