//! VBA macros in OLE2 documents (MS-OVBA): the compressed `dir` stream that
//! lists a project's modules, and the modules' compressed source.
//!
//! ClamAV 1.4 decompresses with its own reading of the format
//! (`cli_vba_inflate`), which ignores chunk sizes and finds chunk boundaries
//! from the output position; [`decompress`] does the same, so that what is
//! scanned is what ClamAV scans, malformed input included. On well-formed
//! data it is MS-OVBA's algorithm (section 2.4.1), checked against the
//! specification's examples.
//!
//! A project is scanned as the text ClamAV writes of it
//! (`cli_vba_readdir_new`): a `REM` line per `dir` record, then each module's
//! source converted to UTF-8 and normalized (`vba_normalize`: lower case
//! outside strings, runs of blanks as one space, line continuations joined).

use std::io;

use crate::ole2::{Entry, MAX_PARSED, Ole2, property_name};

/// The window of MS-OVBA's compression: a chunk's decompressed size.
const WINDOW: usize = 4096;

/// Decompresses a compressed container at `offset` in `data` (a signature
/// byte, then chunks), as ClamAV's `cli_vba_inflate` does, keeping at most
/// `cap` bytes. `None` where ClamAV gets nothing: a copy token or chunk
/// header cut by the end of the data, or no output at all.
pub fn decompress(data: &[u8], offset: usize, cap: usize) -> Option<Vec<u8>> {
    let mut window = [0u8; WINDOW];
    let mut out = Vec::new();
    // The signature byte and the first chunk's header are skipped unread.
    let mut rd = offset.checked_add(3)?;
    let mut pos: u32 = 0;
    let mut clean = true;
    while let Some(&flag) = data.get(rd) {
        rd += 1;
        let mut mask = 1u32;
        while mask < 0x100 {
            let winpos = pos as usize % WINDOW;
            if u32::from(flag) & mask != 0 {
                let token = u16::from_le_bytes([*data.get(rd)?, *data.get(rd + 1)?]);
                rd += 2;
                let shift = 12
                    - [0x10, 0x20, 0x40, 0x80, 0x100, 0x200, 0x400, 0x800]
                        .iter()
                        .filter(|&&t| winpos > t)
                        .count() as u32;
                let len = (u32::from(token) & ((1 << shift) - 1)) + 3;
                let distance = u32::from(token) >> shift;
                for _ in 0..len {
                    let src = pos.wrapping_sub(distance).wrapping_sub(1) as usize % WINDOW;
                    window[pos as usize % WINDOW] = window[src];
                    pos = pos.wrapping_add(1);
                }
            } else {
                if pos != 0 && winpos == 0 && clean {
                    // A full window: the next chunk's header follows.
                    data.get(rd..rd + 2)?;
                    rd += 2;
                    if out.len() + WINDOW > cap {
                        out.extend_from_slice(&window[..cap - out.len()]);
                        return Some(out);
                    }
                    out.extend_from_slice(&window);
                    clean = false;
                    break;
                }
                if let Some(&b) = data.get(rd) {
                    rd += 1;
                    window[winpos] = b;
                    pos = pos.wrapping_add(1);
                }
            }
            clean = true;
            mask <<= 1;
        }
    }
    let tail = &window[..pos as usize % WINDOW];
    out.extend_from_slice(&tail[..tail.len().min(cap.saturating_sub(out.len()))]);
    (!out.is_empty()).then_some(out)
}

/// ClamAV's `vba_normalize`, in place: returns the normalized length.
pub fn normalize(buf: &mut [u8]) -> usize {
    #[derive(PartialEq, Eq, Clone, Copy)]
    enum S {
        Normal,
        InString,
        Underscore,
        UnderscoreCr,
        Space,
    }
    let mut state = S::Normal;
    let mut o = 0usize;
    for i in 0..buf.len() {
        let c = buf[i];
        match c {
            b'"' => {
                if state == S::InString {
                    state = S::Normal;
                } else if matches!(state, S::Normal | S::Underscore | S::Space) {
                    state = S::InString;
                }
                buf[o] = b'"';
                o += 1;
            }
            b'_' => {
                if state == S::Space {
                    state = S::Underscore;
                }
                buf[o] = b'_';
                o += 1;
            }
            b'\r' => {
                if state == S::Underscore {
                    state = S::UnderscoreCr;
                }
                buf[o] = b'\r';
                o += 1;
            }
            b'\n' => {
                if state == S::Underscore {
                    o -= 1;
                    state = S::Space;
                } else if state == S::UnderscoreCr {
                    o -= 2;
                    state = S::Space;
                } else {
                    buf[o] = b'\n';
                    o += 1;
                }
            }
            b'\t' | b' ' => {
                if state != S::Space {
                    buf[o] = b' ';
                    o += 1;
                }
                if matches!(state, S::Normal | S::Underscore) {
                    state = S::Space;
                }
            }
            _ => {
                if matches!(state, S::Normal | S::Underscore | S::Space) {
                    buf[o] = c.to_ascii_lowercase();
                    state = S::Normal;
                } else {
                    buf[o] = c;
                }
                o += 1;
            }
        }
    }
    o
}

const CP_UTF16LE: u16 = 1200;
const CP_ASCII: u16 = 20127;
const CP_LATIN1: u16 = 28591;
const CP_UTF8: u16 = 65001;
const CP_1252: u16 = 1252;

/// Windows-1252's 0x80..0x9f (0: not defined, which iconv refuses).
const CP1252_HIGH: [u16; 32] = [
    0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039,
    0x0152, 0, 0x017d, 0, 0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc,
    0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178,
];

/// Text in `codepage` as UTF-8, as ClamAV's `cli_codepage_to_utf8` converts
/// it; `None` where it fails. Code pages other than ASCII, UTF-8, UTF-16LE,
/// Latin-1 and Windows-1252 convert only when the text is ASCII.
pub fn to_utf8(data: &[u8], codepage: u16) -> Option<Vec<u8>> {
    if data.is_empty() {
        return None;
    }
    match codepage {
        CP_ASCII | CP_UTF8 => {
            let mut v = data.to_vec();
            let last = v.len() - 1;
            if codepage == CP_UTF8 && v[last] & 0x80 != 0 {
                // An incomplete last character is zeroed (its length kept).
                let mut start = last;
                while start > 0 && v[start] & 0xc0 == 0x80 {
                    start -= 1;
                }
                let count = v.len() - start;
                let bits = v[start].leading_ones() as usize;
                if count != bits {
                    v[start..].fill(0);
                }
            }
            Some(v)
        }
        CP_UTF16LE => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units = data
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]));
            let s: Result<String, _> = char::decode_utf16(units).collect();
            s.ok().map(String::into_bytes)
        }
        CP_LATIN1 => Some(
            data.iter()
                .map(|&b| char::from(b))
                .collect::<String>()
                .into_bytes(),
        ),
        CP_1252 => {
            let mut s = String::with_capacity(data.len());
            for &b in data {
                let c = if (0x80..0xa0).contains(&b) {
                    char::from_u32(u32::from(CP1252_HIGH[usize::from(b - 0x80)]))
                        .filter(|&c| c != '\0')?
                } else {
                    char::from(b)
                };
                s.push(c);
            }
            Some(s.into_bytes())
        }
        _ => data.is_ascii().then(|| data.to_vec()),
    }
}

/// Why a project's text was not made.
#[derive(Debug)]
pub(crate) enum ProjectError {
    Io(io::Error),
    /// The `dir` stream does not parse as ClamAV parses it (which then scans
    /// nothing of the project).
    Parse(String),
}

impl From<io::Error> for ProjectError {
    fn from(e: io::Error) -> Self {
        ProjectError::Io(e)
    }
}

/// Reads the little-endian records of a decompressed `dir` stream.
struct Records<'d> {
    data: &'d [u8],
    at: usize,
}

impl Records<'_> {
    fn left(&self) -> usize {
        self.data.len() - self.at
    }
    fn u16(&mut self, what: &str) -> Result<u16, ProjectError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, ProjectError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], ProjectError> {
        if n > self.left() {
            return Err(ProjectError::Parse(format!(
                "VBA dir: {what} runs past the end at offset {}",
                self.at
            )));
        }
        let b = &self.data[self.at..self.at + n];
        self.at += n;
        Ok(b)
    }
    /// A record id that must be `id`, and its size.
    fn expect(&mut self, id: u16, what: &str) -> Result<u32, ProjectError> {
        if 6 > self.left() {
            return Err(ProjectError::Parse(format!(
                "VBA dir: {what} record runs past the end"
            )));
        }
        let got = self.u16(what)?;
        if got != id {
            return Err(ProjectError::Parse(format!(
                "VBA dir: expected {what} (0x{id:04x}), found 0x{got:04x}"
            )));
        }
        self.u32(what)
    }
}

fn bad(what: &str) -> ProjectError {
    ProjectError::Parse(format!("VBA dir: unexpected size of {what}"))
}

/// Appends `bytes` converted from `codepage`, or ClamAV's error text.
fn put_text(out: &mut Vec<u8>, bytes: &[u8], codepage: u16) -> Option<Vec<u8>> {
    if bytes.is_empty() {
        return None;
    }
    match to_utf8(bytes, codepage) {
        Some(t) => {
            out.extend_from_slice(&t);
            Some(t)
        }
        None => {
            out.extend_from_slice(b"<error decoding string>");
            None
        }
    }
}

/// The text ClamAV scans for the VBA project whose `dir` stream is `dir`,
/// with module streams from the same storage; `Ok(None)` when the `dir`
/// stream does not decompress.
pub(crate) fn project_text(
    f: &Ole2<'_>,
    entries: &[Entry],
    dir: &Entry,
) -> Result<Option<Vec<u8>>, ProjectError> {
    let (raw, _) = f.read_stream(dir, MAX_PARSED)?;
    let Some(data) = decompress(&raw, 0, MAX_PARSED) else {
        return Ok(None);
    };
    let mut out = b"REM VBA project extracted from Microsoft Office document\n\n".to_vec();
    let mut r = Records { data: &data, at: 0 };
    let mut codepage = CP_LATIN1;
    while r.left() > 0 {
        let id = r.u16("record type")?;
        let size = r.u32("record size")? as usize;
        if size > r.left() {
            return Err(ProjectError::Parse(format!(
                "VBA dir: record 0x{id:04x} runs past the end"
            )));
        }
        match id {
            0x0001 => {
                if size != 4 {
                    return Err(bad("PROJECTSYSKIND"));
                }
                let kind = r.u32("PROJECTSYSKIND")?;
                out.extend_from_slice(b"REM PROJECTSYSKIND: ");
                let name = match kind {
                    0 => "Windows 16 bit".to_string(),
                    1 => "Windows 32 bit".to_string(),
                    2 => "Macintosh".to_string(),
                    3 => "Windows 64 bit".to_string(),
                    k => format!("Unknown (0x{k:x})"),
                };
                out.extend_from_slice(name.as_bytes());
                out.push(b'\n');
            }
            0x0002 | 0x0014 | 0x0007 | 0x0008 => {
                let name = match id {
                    0x0002 => "PROJECTLCID",
                    0x0014 => "PROJECTLCIDINVOKE",
                    0x0007 => "PROJECTHELPCONTEXT",
                    _ => "PROJECTLIBFLAGS",
                };
                if size != 4 {
                    return Err(bad(name));
                }
                let v = r.u32(name)?;
                let line = if id == 0x0002 || id == 0x0014 {
                    format!("REM {name}: 0x{v:08x}\n")
                } else {
                    format!("REM {name}: 0x{v:04x}\n")
                };
                out.extend_from_slice(line.as_bytes());
            }
            0x0003 => {
                if size != 2 {
                    return Err(bad("PROJECTCODEPAGE"));
                }
                codepage = r.u16("PROJECTCODEPAGE")?;
                out.extend_from_slice(
                    format!("REM PROJECTCODEPAGE: 0x{codepage:04x}\n").as_bytes(),
                );
            }
            0x0004 | 0x0005 => {
                let (name, ok) = if id == 0x0004 {
                    ("PROJECTNAME", (1..=128).contains(&size))
                } else {
                    ("PROJECTDOCSTRING", size <= 2000)
                };
                if !ok {
                    return Err(bad(name));
                }
                out.extend_from_slice(format!("REM {name}: ").as_bytes());
                let text = r.take(size, name)?;
                put_text(&mut out, text, codepage);
                out.push(b'\n');
            }
            0x0040 => {
                if !size.is_multiple_of(2) {
                    return Err(bad("PROJECTDOCSTRINGUNICODE"));
                }
                out.extend_from_slice(b"REM PROJECTDOCSTRINGUNICODE: ");
                let text = r.take(size, "PROJECTDOCSTRINGUNICODE")?;
                put_text(&mut out, text, CP_UTF16LE);
                out.push(b'\n');
            }
            0x0006 => {
                if size > 260 {
                    return Err(bad("PROJECTHELPFILEPATH"));
                }
                out.extend_from_slice(b"REM PROJECTHELPFILEPATH: ");
                let first = r.take(size, "PROJECTHELPFILEPATH")?.to_vec();
                put_text(&mut out, &first, codepage);
                out.push(b'\n');
                if r.left() < 2 {
                    return Err(ProjectError::Parse(
                        "VBA dir: record type runs past the end".into(),
                    ));
                }
                if u16::from_le_bytes([data[r.at], data[r.at + 1]]) != 0x003d {
                    out.extend_from_slice(
                        b"REM WARNING: PROJECTHELPFILEPATH is not followed by PROJECTHELPFILEPATH2\n",
                    );
                    continue;
                }
                r.at += 2;
                let size2 = r.u32("PROJECTHELPFILEPATH2")? as usize;
                if size2 > r.left() || size2 > 260 {
                    return Err(bad("PROJECTHELPFILEPATH2"));
                }
                let second = r.take(size2, "PROJECTHELPFILEPATH2")?;
                if size != size2 {
                    out.extend_from_slice(
                        b"REM WARNING: PROJECTHELPFILEPATH and PROJECTHELPFILEPATH2 record sizes differ\n",
                    );
                } else if first != second {
                    out.extend_from_slice(
                        b"REM WARNING: PROJECTHELPFILEPATH and PROJECTHELPFILEPATH2 contents differ\n",
                    );
                }
                out.extend_from_slice(b"REM PROJECTHELPFILEPATH2: ");
                put_text(&mut out, second, CP_UTF16LE);
                out.push(b'\n');
            }
            0x0009 => {
                if size != 4 {
                    return Err(bad("PROJECTVERSION"));
                }
                let major = r.u32("PROJECTVERSION")?;
                let minor = r.u16("PROJECTVERSION")?;
                out.extend_from_slice(format!("REM PROJECTVERSION: {major}.{minor}\n").as_bytes());
            }
            0x000f | 0x0013 => {
                let name = if id == 0x000f {
                    "PROJECTMODULES"
                } else {
                    "PROJECTCOOKIE"
                };
                if size != 2 {
                    return Err(bad(name));
                }
                let v = r.u16(name)?;
                let line = if id == 0x000f {
                    format!("REM {name}: {v}\n")
                } else {
                    format!("REM {name}: 0x{v:04x}\n")
                };
                out.extend_from_slice(line.as_bytes());
            }
            0x0019 => module(f, entries, dir, &mut r, size, codepage, &mut out)?,
            0x0010 => break,
            _ => r.at += size,
        }
    }
    Ok(Some(out))
}

/// A MODULE record (its MODULENAME's size read), then the module's source.
fn module(
    f: &Ole2<'_>,
    entries: &[Entry],
    dir: &Entry,
    r: &mut Records<'_>,
    size: usize,
    codepage: u16,
    out: &mut Vec<u8>,
) -> Result<(), ProjectError> {
    /// A name in the code page, then the same in UTF-16, and a warning when
    /// they differ.
    fn pair(
        r: &mut Records<'_>,
        out: &mut Vec<u8>,
        codepage: u16,
        first_size: usize,
        names: [(&str, u16); 2],
    ) -> Result<Vec<u8>, ProjectError> {
        let first = r.take(first_size, names[0].0)?;
        let mbcs = put_text(out, first, codepage);
        let size = r.expect(names[1].1, names[1].0)? as usize;
        out.extend_from_slice(format!("\nREM {}: ", names[1].0).as_bytes());
        let second = r.take(size, names[1].0)?;
        let unicode = put_text(out, second, CP_UTF16LE);
        if let (Some(a), Some(b)) = (&mbcs, &unicode)
            && a != b
        {
            out.extend_from_slice(
                format!("\nREM WARNING: {} and {} differ", names[0].0, names[1].0).as_bytes(),
            );
        }
        Ok(second.to_vec())
    }
    out.extend_from_slice(b"\n\nREM MODULENAME: ");
    pair(
        r,
        out,
        codepage,
        size,
        [("MODULENAME", 0x19), ("MODULENAMEUNICODE", 0x47)],
    )?;
    let n = r.expect(0x1a, "MODULESTREAMNAME")? as usize;
    out.extend_from_slice(b"\nREM MODULESTREAMNAME: ");
    let stream_name = pair(
        r,
        out,
        codepage,
        n,
        [
            ("MODULESTREAMNAME", 0x1a),
            ("MODULESTREAMNAMEUNICODE", 0x32),
        ],
    )?;
    let n = r.expect(0x1c, "MODULEDOCSTRING")? as usize;
    out.extend_from_slice(b"\nREM MODULEDOCSTRING: ");
    pair(
        r,
        out,
        codepage,
        n,
        [("MODULEDOCSTRING", 0x1c), ("MODULEDOCSTRINGUNICODE", 0x48)],
    )?;
    if r.expect(0x31, "MODULEOFFSET")? != 4 {
        return Err(bad("MODULEOFFSET"));
    }
    let offset = r.u32("MODULEOFFSET")?;
    out.extend_from_slice(format!("\nREM MODULEOFFSET: 0x{offset:08x}").as_bytes());
    if r.expect(0x1e, "MODULEHELPCONTEXT")? != 4 {
        return Err(bad("MODULEHELPCONTEXT"));
    }
    let help = r.u32("MODULEHELPCONTEXT")?;
    out.extend_from_slice(format!("\nREM MODULEHELPCONTEXT: 0x{help:08x}").as_bytes());
    if r.expect(0x2c, "MODULECOOKIE")? != 2 {
        return Err(bad("MODULECOOKIE"));
    }
    let cookie = r.u16("MODULECOOKIE")?;
    out.extend_from_slice(format!("\nREM MODULECOOKIE: 0x{cookie:04x}").as_bytes());
    if 6 > r.left() {
        return Err(ProjectError::Parse(
            "VBA dir: MODULETYPE record runs past the end".into(),
        ));
    }
    let kind = r.u16("MODULETYPE")?;
    if kind != 0x21 && kind != 0x22 {
        return Err(ProjectError::Parse(format!(
            "VBA dir: expected MODULETYPE, found 0x{kind:04x}"
        )));
    }
    if r.u32("MODULETYPE")? != 0 {
        return Err(bad("MODULETYPE"));
    }
    out.extend_from_slice(if kind == 0x21 {
        b"\nREM MODULETYPE: Procedural".as_slice()
    } else {
        b"\nREM MODULETYPE: Class".as_slice()
    });
    let mut id = r.u16("MODULEREADONLY")?;
    for (flag, name) in [(0x25u16, "MODULEREADONLY"), (0x28, "MODULEPRIVATE")] {
        if id == flag {
            if r.u32(name)? != 0 {
                return Err(bad(name));
            }
            out.extend_from_slice(format!("\nREM {name}").as_bytes());
            id = r.u16("record type")?;
        }
    }
    if id != 0x2b {
        return Err(ProjectError::Parse(format!(
            "VBA dir: expected MODULETERMINATOR, found 0x{id:04x}"
        )));
    }
    if r.u32("MODULETERMINATOR")? != 0 {
        return Err(bad("MODULETERMINATOR"));
    }
    out.extend_from_slice(b"\nREM ##################################################\n");
    // The module's stream, by ClamAV's name for its UTF-16 name, read from
    // the `dir` stream's storage (none there: the project goes on without
    // its source).
    let mut name_bytes = stream_name.clone();
    name_bytes.extend_from_slice(&r.data[r.at..(r.at + 2).min(r.data.len())]);
    let Some(key) = property_name(&name_bytes, stream_name.len() + 2) else {
        return Err(ProjectError::Parse(
            "VBA dir: empty module stream name".into(),
        ));
    };
    for e in entries
        .iter()
        .filter(|e| e.storage == dir.storage && e.key.as_deref() == Some(key.as_str()))
    {
        let (raw, _) = f.read_stream(e, MAX_PARSED)?;
        let Some(source) = decompress(&raw, offset as usize, MAX_PARSED) else {
            continue;
        };
        match to_utf8(&source, codepage) {
            Some(mut text) => {
                let n = normalize(&mut text);
                out.extend_from_slice(&text[..n]);
            }
            None => out.extend_from_slice(b"\n<Error decoding module data>\n"),
        }
        break;
    }
    Ok(())
}

/// ClamAV's `get_unicode_name`: a name from the `_VBA_PROJECT` stream in
/// lower case, odd characters spelled out (differently from stream names).
fn unicode_name(name: &[u8], big_endian: bool) -> Option<String> {
    let mut size = name.len();
    if name.first().is_none_or(|&b| b == 0) {
        return None;
    }
    if !big_endian && size & 1 == 1 {
        size -= 1;
    }
    let step = if big_endian { 1 } else { 2 };
    let mut out = String::new();
    let mut i = 0;
    while i < size {
        let c = name[i] as i8;
        if c >= 0 && (0x20..0x7f).contains(&(c as u8)) {
            out.push(char::from((c as u8).to_ascii_lowercase()));
        } else {
            if (0..10).contains(&c) {
                out.push('_');
                out.push(char::from(b'0' + c as u8));
            } else {
                if i + 1 >= size {
                    break;
                }
                let hi = if c < 0 { 0 } else { i32::from(c) << 8 };
                let x = (hi | i32::from(name[i + 1] as i8)) as u16;
                out.push('_');
                for shift in [0, 4, 8] {
                    out.push(char::from(b'a' + ((x >> shift) & 0xf) as u8));
                }
                out.push_str("aa");
            }
            out.push('_');
        }
        i += step;
    }
    Some(out)
}

/// A read position in a stream that, like a file descriptor, may be moved
/// past the end (reads there fail) and moves by what a short read got.
struct Fd<'d> {
    data: &'d [u8],
    pos: u64,
}

impl Fd<'_> {
    fn read(&mut self, n: usize) -> Option<&[u8]> {
        let start = usize::try_from(self.pos)
            .ok()
            .filter(|&p| p <= self.data.len())?;
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = end as u64;
        (end - start == n).then(|| &self.data[start..end])
    }
    fn u16(&mut self, big_endian: bool) -> Option<u16> {
        let b = self.read(2)?;
        Some(if big_endian {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    }
    fn u32(&mut self, big_endian: bool) -> Option<u32> {
        let b = self.read(4)?;
        let b = [b[0], b[1], b[2], b[3]];
        Some(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
    /// `lseek(SEEK_CUR)`: fails before the start.
    fn skip(&mut self, by: i64) -> bool {
        match self.pos.checked_add_signed(by) {
            Some(p) => {
                self.pos = p;
                true
            }
            None => false,
        }
    }
}

/// ClamAV's `vba_read_project_strings`: how many project strings
/// (`*\G...`, `*\H...`, `*\C...`, `*\D...`) follow; `fd` is left after them.
fn project_strings(fd: &mut Fd<'_>, big_endian: bool) -> u32 {
    const MIDDLES: [[u8; 20]; 2] = [
        [
            0x00, 0x01, 0x0d, 0x45, 0x2e, 0xe1, 0xe0, 0x8f, 0x10, 0x1a, 0x85, 0x2e, 0x02, 0x60,
            0x8c, 0x4d, 0x0b, 0xb4, 0x00, 0x00,
        ],
        [
            0x00, 0x00, 0xe1, 0x2e, 0x45, 0x0d, 0x8f, 0xe0, 0x1a, 0x10, 0x85, 0x2e, 0x02, 0x60,
            0x8c, 0x4d, 0x0b, 0xb4, 0x00, 0x00,
        ],
    ];
    let mut count = 0;
    let mut length = 0u16;
    let mut new_length = true;
    loop {
        if new_length {
            match fd.u16(big_endian) {
                Some(l) => length = l,
                None => return 0,
            }
        }
        new_length = false;
        if length < 6 {
            if !fd.skip(-2) {
                return 0;
            }
            return count;
        }
        let at = fd.pos;
        let Some(buf) = fd.read(usize::from(length)) else {
            fd.pos = at;
            return count;
        };
        let name = unicode_name(buf, big_endian);
        let valid = name.as_deref().is_some_and(|n| {
            let b = n.as_bytes();
            b.starts_with(b"*\\") && b.get(2).is_none_or(|c| b"ghcd".contains(c))
        });
        if !valid {
            if !fd.skip(-(i64::from(length) + 2)) {
                return 0;
            }
            return count;
        }
        let Some(l) = fd.u16(big_endian) else {
            return count;
        };
        length = l;
        count += 1;
        if length != 0 && length != 0xffff {
            continue;
        }
        fd.skip(10);
        let at = fd.pos;
        if let Some(middle) = fd.read(20)
            && !MIDDLES.iter().any(|m| m == middle)
        {
            fd.pos = at;
        }
        new_length = true;
    }
}

/// The modules a `_VBA_PROJECT` stream lists in the layout of Office 97 to
/// 2003 (ClamAV's `cli_vba_readdir`): each module's name, as ClamAV names
/// streams, and where its compressed source starts in its stream. `None`
/// where ClamAV finds no project.
pub(crate) fn legacy_modules(data: &[u8]) -> Option<Vec<(String, u32)>> {
    if data.len() < 34 || data[..2] != [0xcc, 0x61] {
        return None;
    }
    let mut fd = Fd { data, pos: 34 };
    let be = project_strings(&mut fd, true);
    let after_be = fd.pos;
    fd.pos = 34;
    let le = project_strings(&mut fd, false);
    if be == 0 && le == 0 {
        return None;
    }
    let big_endian = be > le;
    if big_endian {
        fd.pos = after_be;
    }
    // Skips to a 0xffff marker, allowing for one byte of misalignment.
    while fd.read(2)? != [0xff, 0xff] {}
    if !fd.skip(-3) {
        return None;
    }
    if fd.read(2)? != [0xff, 0xff] {
        fd.skip(1);
    }
    let v = fd.u16(big_endian)?;
    if v != 0xffff {
        fd.skip(i64::from(v));
    }
    let v = fd.u16(big_endian)?;
    let v = if v == 0xffff { 0 } else { v };
    fd.skip(i64::from(v) + 100);
    let records = fd.u16(big_endian)?;
    if records == 0 || records > 1000 {
        return None;
    }
    let mut modules = Vec::new();
    for _ in 0..records {
        let length = fd.u16(big_endian)?;
        if length == 0 {
            return None;
        }
        let name = unicode_name(fd.read(usize::from(length))?, big_endian)?;
        let skip = fd.u16(big_endian)?;
        fd.skip(i64::from(skip));
        let v = fd.u16(big_endian)?;
        if v == 0xffff {
            fd.skip(2);
            let v = fd.u16(big_endian)?;
            fd.skip(i64::from(v) + 8);
        } else {
            fd.skip(i64::from(v) + 10);
        }
        let bytes = fd.u16(big_endian)?;
        fd.skip(8 * i64::from(bytes) + 5);
        let offset = fd.u32(big_endian)?;
        fd.skip(2);
        modules.push((name, offset));
    }
    Some(modules)
}

/// Word 6/95 macros in a `WordDocument` stream (ClamAV's `cli_wm_readdir`
/// and `cli_wm_decrypt_macro`): each macro's bytes, XOR-decrypted with its
/// key, that the stream holds whole.
pub(crate) fn word6_macros(data: &[u8]) -> Vec<Vec<u8>> {
    let mut fd = Fd { data, pos: 0x118 };
    let (Some(offset), Some(len)) = (fd.u32(false), fd.u32(false)) else {
        return Vec::new();
    };
    if len == 0 {
        return Vec::new();
    }
    // Past the start id; the end wraps in 32 bits as ClamAV computes it.
    fd.pos = u64::from(offset.wrapping_add(1));
    let end = u64::from(offset.wrapping_add(len));
    let mut entries: Vec<(u8, u32, u32)> = Vec::new();
    while fd.pos < end {
        let Some(id) = fd.read(1).map(|b| b[0]) else {
            break;
        };
        let more = match id {
            0x01 => {
                entries = word6_entries(&mut fd).unwrap_or_default();
                false
            }
            0x03 => word6_skip_oxo3(&mut fd).is_some(),
            0x05 => fd.u16(false).map(|n| fd.skip(12 * i64::from(n))).is_some(),
            0x10 => word6_skip_extnames(&mut fd).is_some(),
            0x11 => word6_skip_intnames(&mut fd).is_some(),
            _ => false,
        };
        if !more {
            break;
        }
    }
    entries
        .into_iter()
        .filter_map(|(key, len, offset)| {
            let start = offset as usize;
            let b = data.get(start..start.checked_add(len as usize)?)?;
            (len != 0).then(|| b.iter().map(|x| x ^ key).collect())
        })
        .collect()
}

/// The macro table: (key, length, offset) of each macro.
fn word6_entries(fd: &mut Fd<'_>) -> Option<Vec<(u8, u32, u32)>> {
    let count = fd.u16(false)?;
    let table = fd.read(24 * usize::from(count))?;
    Some(
        table
            .chunks_exact(24)
            .map(|m| {
                let u = |at: usize| u32::from_le_bytes([m[at], m[at + 1], m[at + 2], m[at + 3]]);
                (m[1], u(12), u(20))
            })
            .collect(),
    )
}

fn word6_skip_oxo3(fd: &mut Fd<'_>) -> Option<()> {
    let count = fd.read(1)?[0];
    fd.skip(14 * i64::from(count));
    let mut count = fd.read(1)?[0];
    if count == 0 {
        let two = fd.read(2)?;
        if two[0] != 2 {
            fd.skip(-2);
            return Some(());
        }
        count = two[1];
    }
    if count > 0 {
        fd.skip(4 * i64::from(count) + 1);
    }
    Some(())
}

fn word6_skip_extnames(fd: &mut Fd<'_>) -> Option<()> {
    let mut size = fd.u16(false)? as i16;
    let unicode = size == -1;
    if unicode {
        size = fd.u16(false)? as i16;
    }
    // ClamAV subtracts the whole size each round: one name is skipped.
    if size > 0 {
        let length = i64::from(fd.read(1)?[0]);
        fd.skip(if unicode { length * 2 + 1 } else { length } + 2);
    }
    Some(())
}

fn word6_skip_intnames(fd: &mut Fd<'_>) -> Option<()> {
    let count = fd.u16(false)?;
    for _ in 0..count {
        fd.skip(2);
        let length = fd.read(1)?[0];
        fd.skip(i64::from(length) + 1);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect()
    }

    /// MS-OVBA 3.2.1: no compression.
    #[test]
    fn spec_example_without_compression() {
        let c = hex(
            "01 19 B0 00 61 62 63 64 65 66 67 68 00 69 6A 6B 6C 6D 6E 6F 70 00 71 72 73 74 75 76 2E",
        );
        assert_eq!(
            decompress(&c, 0, usize::MAX).as_deref(),
            Some(&b"abcdefghijklmnopqrstuv."[..])
        );
    }

    /// MS-OVBA 3.2.2: normal compression.
    #[test]
    fn spec_example_normal() {
        let c = hex(
            "01 2F B0 00 23 61 61 61 62 63 64 65 82 66 00 70 61 67 68 69 6A 01 38 08 61 6B 6C \
             00 30 6D 6E 6F 70 06 71 02 70 04 10 72 73 74 75 76 10 77 78 79 7A 00 3C",
        );
        assert_eq!(
            decompress(&c, 0, usize::MAX).as_deref(),
            Some(&b"#aaabcdefaaaaghijaaaaaklaaamnopqaaaaaaaaaaaarstuvwxyzaaa"[..])
        );
    }

    /// MS-OVBA 3.2.3: maximum compression.
    #[test]
    fn spec_example_maximum() {
        let c = hex("01 03 B0 02 61 45 00");
        assert_eq!(decompress(&c, 0, usize::MAX), Some(vec![b'a'; 73]));
    }

    /// Several chunks: the decompressed windows follow each other.
    #[test]
    fn chunks_follow_each_other() {
        let mut text = Vec::new();
        for i in 0..10_000u32 {
            text.push(if i % 4096 < 4 {
                b'a'
            } else {
                b'b' + (i % 23) as u8
            });
        }
        let c = compress_runs(&text);
        let got = decompress(&c, 0, usize::MAX).unwrap_or_default();
        let diff = got.iter().zip(&text).position(|(a, b)| a != b);
        assert_eq!((got.len(), diff), (text.len(), None));
        // The cap keeps what fits.
        assert_eq!(decompress(&c, 0, 5000).as_deref(), Some(&text[..5000]));
        // At an offset, as module sources are.
        let mut shifted = vec![0xee; 17];
        shifted.extend_from_slice(&c);
        assert_eq!(decompress(&shifted, 17, usize::MAX), Some(text.clone()));
        // ClamAV finds a chunk's end from its output: when the chunk's last
        // token closes its flag byte, the next chunk's header is read as a
        // flag byte, and the rest is not MS-OVBA's reading.
        let aligned: Vec<u8> = (0..5000u32).map(|i| b'b' + (i % 23) as u8).collect();
        let got = decompress(&compress_literals(&aligned), 0, usize::MAX);
        assert_ne!(got, Some(aligned));
    }

    /// Chunks that each start with "aaaa" (a literal and a copy token),
    /// then literals.
    fn compress_runs(text: &[u8]) -> Vec<u8> {
        let mut out = vec![1u8];
        for chunk in text.chunks(WINDOW) {
            assert_eq!(&chunk[..4], b"aaaa");
            let mut body = vec![0x02, b'a', 0x00, 0x00];
            let rest = &chunk[4..];
            let (first, more) = rest.split_at(rest.len().min(6));
            body.extend_from_slice(first);
            for group in more.chunks(8) {
                body.push(0);
                body.extend_from_slice(group);
            }
            let size = (body.len() - 1) as u16 | 0xb000;
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&body);
        }
        out
    }

    #[test]
    fn cut_tokens_give_nothing() {
        // A copy token cut after one byte.
        assert_eq!(decompress(&hex("01 03 B0 02 61 45"), 0, usize::MAX), None);
        // Nothing after the header.
        assert_eq!(decompress(&hex("01 03 B0"), 0, usize::MAX), None);
        assert_eq!(decompress(&[], 5, usize::MAX), None);
    }

    /// Compressed containers of literal tokens only (MS-OVBA allows it).
    pub(crate) fn compress_literals(text: &[u8]) -> Vec<u8> {
        let mut out = vec![1u8];
        for chunk in text.chunks(WINDOW) {
            let mut body = Vec::new();
            for group in chunk.chunks(8) {
                body.push(0);
                body.extend_from_slice(group);
            }
            let size = (body.len() - 1) as u16 | 0xb000;
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&body);
        }
        out
    }

    #[test]
    fn normalization_as_clamav() {
        let mut s = b"Sub  AutoOpen()\r\n\tMsgBox \"Hello  WORLD\" & _\r\n   X\nEnd Sub".to_vec();
        let n = normalize(&mut s);
        assert_eq!(
            &s[..n],
            b"sub autoopen()\r\n msgbox \"Hello  WORLD\" & x\nend sub"
        );
    }

    #[test]
    fn word6_macros_are_decrypted() {
        let mut s = vec![0u8; 0x500];
        s[0x118..0x11c].copy_from_slice(&0x200u32.to_le_bytes());
        s[0x11c..0x120].copy_from_slice(&0x80u32.to_le_bytes());
        // Start id; menu info (no items); the macro table; end.
        let mut t = vec![0xff, 0x05, 0, 0, 0x01, 2, 0];
        for (key, len, at) in [(0x21u8, 5u32, 0x400u32), (0, 3, 0x410)] {
            let mut e = vec![1, key];
            e.extend_from_slice(&[0; 10]);
            e.extend_from_slice(&len.to_le_bytes());
            e.extend_from_slice(&[0; 4]);
            e.extend_from_slice(&at.to_le_bytes());
            t.extend_from_slice(&e);
        }
        s[0x200..0x200 + t.len()].copy_from_slice(&t);
        for (i, b) in b"HELLO".iter().enumerate() {
            s[0x400 + i] = b ^ 0x21;
        }
        s[0x410..0x413].copy_from_slice(b"abc");
        assert_eq!(word6_macros(&s), [b"HELLO".to_vec(), b"abc".to_vec()]);
        // A macro past the stream's end is not read; no table, no macros.
        s.truncate(0x412);
        assert_eq!(word6_macros(&s), [b"HELLO".to_vec()]);
        assert!(word6_macros(&s[..0x11a]).is_empty());
    }

    #[test]
    fn code_pages() {
        assert_eq!(to_utf8(b"abc", 1252).as_deref(), Some(&b"abc"[..]));
        assert_eq!(
            to_utf8(b"\x80", 1252).as_deref(),
            Some("\u{20ac}".as_bytes())
        );
        assert_eq!(to_utf8(b"\x81", 1252), None);
        assert_eq!(
            to_utf8(b"\xe9", 28591).as_deref(),
            Some("\u{e9}".as_bytes())
        );
        assert_eq!(to_utf8(b"a\xc3", 65001).as_deref(), Some(&b"a\0"[..]));
        assert_eq!(to_utf8(b"a\0b\0", 1200).as_deref(), Some(&b"ab"[..]));
        assert_eq!(to_utf8(b"a\0b", 1200), None);
        assert_eq!(to_utf8(b"", 1252), None);
    }
}
