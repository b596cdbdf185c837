//! Files that start inside other files: self-extracting archives (a zip,
//! RAR, cabinet, 7z or ARJ archive after an executable stub), installers
//! (NSIS, InstallShield, compiled AutoIt scripts) and executables embedded in
//! executables or OLE2 documents.
//!
//! ClamAV finds them with its file type signatures (`1:*:` lines of SFX
//! types, kept here as data in `embedded.ftm`) while it scans a file's raw
//! bytes, and scans each from where it starts as a layer of its own
//! (`scanraw` in `scanners.c`). This module does the same, as a container:
//! each embedded file is a member holding its bytes, from its start to the
//! end its header gives (zip entry, cabinet, ARJ archive) or to the end of
//! the outer file. The scanner then types the member from its bytes, which
//! name the same type ClamAV forces on the layer (a member that is one zip
//! entry is a zip whose local header is its only index).
//!
//! ClamAV's rules, followed here:
//! - no file type scan in gzip, old cpio, zip, tar, TNEF, HTML (raw scan
//!   skipped) and ignored files;
//! - a match at offset 0 is the file itself and is skipped, but counted;
//! - matches are taken in the order their last byte is reached, each offset
//!   once, and none inside a zip entry, cabinet or ARJ archive already found;
//! - at most [`MAX_EMBEDDED`] matches are kept, or [`MAX_FILES`] for zip
//!   local headers and executables in executables;
//! - a zip entry, cabinet, ARJ archive or executable must pass a header
//!   check first; an embedded executable must fit in [`MAX_EMBEDDED_PE`];
//! - NSIS, AutoIt and InstallShield data are looked for in executables
//!   only, executables in executables and OLE2 documents only, and an
//!   archive of a type is not looked for in an archive of that type.
//!
//! Not as ClamAV: ClamAV does not look again inside the embedded layer
//! itself (a RAR after a stub is not searched for more SFX data, though its
//! members are); here a member typed as a container is walked as any file of
//! its type is, which can find more.

use std::io;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

use crate::filetype::FileType;
use crate::source::{ReadAt, SourceReader};
use crate::walk::{Body, Flow, FormatError, Member, Visitor, visit};

/// The embedded-file signatures, in `daily.ftm` syntax.
pub const TABLE: &str = include_str!("embedded.ftm");

/// ClamAV's `MAX_EMBEDDED_OBJ`: type matches kept per file.
pub const MAX_EMBEDDED: usize = 10;
/// ClamAV's default `MaxFiles`, which bounds zip local headers and
/// executables in executables instead of [`MAX_EMBEDDED`].
pub const MAX_FILES: usize = 10_000;
/// ClamAV's default `MaxEmbeddedPE`: an executable found inside another is
/// scanned only when at most this much of the file is left from its start.
pub const MAX_EMBEDDED_PE: u64 = 40 << 20;

/// How much of the input is searched at once.
const CHUNK: usize = 1 << 20;

/// What a signature in `embedded.ftm` finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Pe,
    Zip,
    Rar,
    Arj,
    AutoIt,
    Nsis,
    IshieldMsi,
    Cab,
    SevenZip,
}

impl Kind {
    fn from_clamav_name(name: &str) -> Option<Kind> {
        Some(match name {
            "CL_TYPE_MSEXE" => Kind::Pe,
            "CL_TYPE_ZIPSFX" => Kind::Zip,
            "CL_TYPE_RARSFX" => Kind::Rar,
            "CL_TYPE_ARJSFX" => Kind::Arj,
            "CL_TYPE_AUTOIT" => Kind::AutoIt,
            "CL_TYPE_NULSFT" => Kind::Nsis,
            "CL_TYPE_ISHIELD_MSI" => Kind::IshieldMsi,
            "CL_TYPE_CABSFX" => Kind::Cab,
            "CL_TYPE_7ZSFX" => Kind::SevenZip,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Elem {
    Byte { value: u8, mask: u8 },
    Alt(Vec<u8>),
    Gap { min: usize, max: usize },
}

/// One signature: a literal prefix found with Aho-Corasick, and the rest
/// checked where it matched.
#[derive(Debug, Clone)]
struct Rule {
    kind: Kind,
    rest: Vec<Elem>,
    /// The most bytes a match can span.
    span: usize,
}

#[derive(Debug)]
struct Rules {
    /// Rules by prefix: `ac`'s pattern `i` is the prefix of `groups[i]`.
    groups: Vec<Vec<Rule>>,
    ac: AhoCorasick,
    span: usize,
}

/// Why a line of `embedded.ftm` was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("embedded.ftm line {line}: {reason}")]
pub struct TableError {
    pub line: usize,
    pub reason: String,
}

fn parse_hex_byte(s: &str) -> Option<u8> {
    (s.len() == 2)
        .then(|| u8::from_str_radix(s, 16).ok())
        .flatten()
}

fn parse_pattern(s: &str) -> Option<Vec<Elem>> {
    let mut elems = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}')?;
            let (min, max) = match r[..end].split_once('-') {
                Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                None => {
                    let n = r[..end].parse().ok()?;
                    (n, n)
                }
            };
            if min > max || max > 4096 {
                return None;
            }
            elems.push(Elem::Gap { min, max });
            rest = &r[end + 1..];
        } else if let Some(r) = rest.strip_prefix('(') {
            let end = r.find(')')?;
            let set = r[..end]
                .split('|')
                .map(parse_hex_byte)
                .collect::<Option<Vec<u8>>>()?;
            elems.push(Elem::Alt(set));
            rest = &r[end + 1..];
        } else {
            let pair = rest.get(..2)?;
            let e = match pair.as_bytes() {
                b"??" => Elem::Byte { value: 0, mask: 0 },
                _ => Elem::Byte {
                    value: parse_hex_byte(pair)?,
                    mask: 0xff,
                },
            };
            elems.push(e);
            rest = &rest[2..];
        }
    }
    Some(elems)
}

fn parse(text: &str) -> Result<Rules, TableError> {
    let mut groups: Vec<(Vec<u8>, Vec<Rule>)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |reason: &str| TableError {
            line: i + 1,
            reason: reason.to_string(),
        };
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 6 {
            return Err(err("fewer than 6 fields"));
        }
        if fields[0] != "1" || fields[1] != "*" {
            return Err(err("only 1:*: lines find embedded files"));
        }
        let kind = Kind::from_clamav_name(fields[5]).ok_or_else(|| err("unknown type"))?;
        let elems = parse_pattern(fields[2]).ok_or_else(|| err("bad pattern"))?;
        let literal = elems
            .iter()
            .take_while(|e| matches!(e, Elem::Byte { mask: 0xff, .. }))
            .count();
        if literal < 2 {
            return Err(err("a pattern must start with 2 literal bytes"));
        }
        let prefix: Vec<u8> = elems[..literal]
            .iter()
            .map(|e| match e {
                Elem::Byte { value, .. } => *value,
                _ => 0,
            })
            .collect();
        let rest = elems[literal..].to_vec();
        let span = literal
            + rest
                .iter()
                .map(|e| match e {
                    Elem::Gap { max, .. } => *max,
                    _ => 1,
                })
                .sum::<usize>();
        let rule = Rule { kind, rest, span };
        match groups.iter_mut().find(|(p, _)| *p == prefix) {
            Some((_, g)) => g.push(rule),
            None => groups.push((prefix, vec![rule])),
        }
    }
    let ac =
        AhoCorasick::new(groups.iter().map(|(p, _)| p.as_slice())).map_err(|e| TableError {
            line: 0,
            reason: e.to_string(),
        })?;
    let span = groups
        .iter()
        .flat_map(|(_, g)| g.iter().map(|r| r.span))
        .max()
        .unwrap_or(0);
    Ok(Rules {
        groups: groups.into_iter().map(|(_, g)| g).collect(),
        ac,
        span,
    })
}

fn rules() -> Option<&'static Rules> {
    static R: OnceLock<Option<Rules>> = OnceLock::new();
    // The table is part of the source and tested to parse.
    R.get_or_init(|| parse(TABLE).ok()).as_ref()
}

/// Checks `elems` at `at` in `buf`; the end of the first match.
fn match_at(elems: &[Elem], buf: &[u8], at: usize) -> Option<usize> {
    let Some((first, rest)) = elems.split_first() else {
        return Some(at);
    };
    match first {
        Elem::Byte { value, mask } => {
            let b = *buf.get(at)?;
            (b & mask == *value)
                .then(|| match_at(rest, buf, at + 1))
                .flatten()
        }
        Elem::Alt(set) => {
            let b = *buf.get(at)?;
            set.contains(&b)
                .then(|| match_at(rest, buf, at + 1))
                .flatten()
        }
        Elem::Gap { min, max } => {
            // A gap followed by a literal byte: jump between occurrences of
            // that byte rather than trying every position.
            let lo = at.checked_add(*min)?;
            let hi = at.saturating_add(*max).min(buf.len());
            if lo > hi {
                return None;
            }
            match rest.first() {
                Some(Elem::Byte { value, mask: 0xff }) => {
                    memchr::memchr_iter(*value, &buf[lo..(hi + 1).min(buf.len())])
                        .find_map(|p| match_at(rest, buf, lo + p))
                }
                _ => (lo..=hi).find_map(|p| match_at(rest, buf, p)),
            }
        }
    }
}

/// One signature match: what, where it starts, and where it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub kind: Kind,
    pub start: u64,
    pub end: u64,
}

/// Whether ClamAV looks for embedded files in files of this type (its raw
/// scan with file type recognition).
pub fn searched(ty: FileType) -> bool {
    !matches!(
        ty,
        FileType::Gz
            | FileType::CpioOld
            | FileType::Zip
            | FileType::PosixTar
            | FileType::OldTar
            | FileType::Tnef
            | FileType::Html
            | FileType::Ignored
            | FileType::Nulsft
            | FileType::AutoIt
            | FileType::IshieldMsi
    )
}

/// Whether a match of `kind` is kept at all in a file of type `outer`
/// (ClamAV keeps executables only in executables, zips and OLE2).
fn supported(kind: Kind, outer: FileType) -> bool {
    kind != Kind::Pe || matches!(outer, FileType::Pe | FileType::Zip | FileType::Ole2)
}

/// The signature matches in `src`, a file of type `outer`, in ClamAV's
/// order and within its limits, offset 0 included.
pub fn hits(outer: FileType, src: &dyn ReadAt) -> io::Result<Vec<Hit>> {
    let mut out = Vec::new();
    let Some(rules) = rules() else {
        return Ok(out);
    };
    let size = src.size();
    let overlap = rules.span;
    // No larger than the input: most inputs are small, and a 1 MiB buffer
    // for each would be allocated, zeroed and returned to the system per
    // file.
    let window = (CHUNK + overlap).min(usize::try_from(size).unwrap_or(usize::MAX));
    let mut buf = vec![0u8; window];
    let mut base = 0u64;
    while base < size {
        let mut n = 0;
        while n < buf.len() {
            let got = src.read_at(&mut buf[n..], base + n as u64)?;
            if got == 0 {
                break;
            }
            n += got;
        }
        let data = &buf[..n];
        let mut found = Vec::new();
        for m in rules.ac.find_overlapping_iter(data) {
            if m.start() >= CHUNK {
                continue; // the next chunk finds it
            }
            for rule in &rules.groups[m.pattern().as_usize()] {
                if !supported(rule.kind, outer) {
                    continue;
                }
                if let Some(end) = match_at(&rule.rest, data, m.end()) {
                    found.push(Hit {
                        kind: rule.kind,
                        start: base + m.start() as u64,
                        end: base + end as u64,
                    });
                }
            }
        }
        found.sort_by_key(|h| (h.end, h.start));
        for h in found {
            let many = h.kind == Kind::Zip || (h.kind == Kind::Pe && outer == FileType::Pe);
            let limit = if many { MAX_FILES } else { MAX_EMBEDDED };
            if out.is_empty() || out.len() < limit {
                out.push(h);
            }
        }
        if out.len() >= MAX_FILES || n < buf.len() {
            break;
        }
        base += CHUNK as u64;
    }
    Ok(out)
}

/// Hands each file embedded in `src` (a file of type `outer`) to the visitor
/// as a member, as ClamAV's raw scan finds them.
pub(crate) fn walk(
    outer: FileType,
    src: &dyn ReadAt,
    visitor: &mut dyn Visitor,
) -> Result<(), FormatError> {
    let size = src.size();
    let mut last = 0u64;
    for h in hits(outer, src)? {
        if h.start == 0 || h.start <= last {
            continue;
        }
        last = h.start;
        let to_end = (h.start, size);
        let range = match h.kind {
            Kind::Zip => zip_entry_size(src, h.start).map(|n| {
                last = last.saturating_add(n - 1);
                (h.start, h.start + n)
            }),
            Kind::Cab if outer != FileType::MsCab => cab_size(src, h.start).map(|n| {
                // ClamAV adds size - 1 to a size_t: a cabinet of length 0
                // hides every later match.
                last = if n == 0 {
                    u64::MAX
                } else {
                    last.saturating_add(n - 1)
                };
                (h.start, h.start.saturating_add(n).min(size))
            }),
            Kind::Arj if outer != FileType::Arj => arj_size(src, h.start).map(|n| {
                last = last.saturating_add(n - 1);
                (h.start, h.start + n)
            }),
            Kind::Rar if outer != FileType::Rar => Some(to_end),
            Kind::SevenZip if outer != FileType::SevenZip => Some(to_end),
            // NSIS data starts 4 bytes (its flags) before its signature.
            Kind::Nsis if outer == FileType::Pe && h.start > 4 => Some((h.start - 4, size)),
            Kind::AutoIt | Kind::IshieldMsi if outer == FileType::Pe => Some(to_end),
            Kind::Pe if size - h.start <= MAX_EMBEDDED_PE && pe_header_ok(src, h.start) => {
                Some(to_end)
            }
            _ => None,
        };
        let Some((start, end)) = range else {
            continue;
        };
        if start >= end {
            continue;
        }
        let mut m = Member::new(
            String::new(),
            Body::Read(Box::new(SourceReader::new(src, start, end))),
        );
        m.declared_size = Some(end - start);
        m.packed_size = Some(end - start);
        if visit(visitor, &mut m) == Flow::Stop {
            break;
        }
    }
    Ok(())
}

fn read<const N: usize>(src: &dyn ReadAt, at: u64) -> Option<[u8; N]> {
    let mut b = [0u8; N];
    src.read_exact_at(&mut b, at).ok()?;
    Some(b)
}

fn le16(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 2)
        .map_or(0, |x| u64::from(u16::from_le_bytes([x[0], x[1]])))
}

fn le32(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 4).map_or(0, |x| {
        u64::from(u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
    })
}

/// ClamAV's zip single header check: a local header whose name, extra field
/// and data are in the file, not masked, sizes in the header, neither size 0.
/// The entry's length from its header to the end of its data.
fn zip_entry_size(src: &dyn ReadAt, at: u64) -> Option<u64> {
    let h: [u8; 30] = read(src, at)?;
    if le32(&h, 0) != 0x0403_4b50 {
        return None;
    }
    let flags = le16(&h, 6);
    let (csize, usize_) = (le32(&h, 18), le32(&h, 22));
    let (name, extra) = (le16(&h, 26), le16(&h, 28));
    let mut left = src.size().checked_sub(at + 30)?;
    if left <= name {
        return None;
    }
    left -= name;
    // Masked headers, and sizes only in a data descriptor (no central
    // directory to take them from).
    if flags & (1 << 13) != 0 || flags & (1 << 3) != 0 {
        return None;
    }
    if left <= extra {
        return None;
    }
    left -= extra;
    if left < csize || csize == 0 || usize_ == 0 {
        return None;
    }
    Some(30 + name + extra + csize)
}

/// A cabinet header libmspack opens (signature, at least one folder and one
/// file whose entries can be read, a file in a folder that exists); its
/// declared length.
fn cab_size(src: &dyn ReadAt, at: u64) -> Option<u64> {
    let h: [u8; 36] = read(src, at)?;
    if &h[..4] != b"MSCF" {
        return None;
    }
    let length = le32(&h, 8);
    let files_at = le32(&h, 16);
    let (folders, files, flags) = (le16(&h, 26), le16(&h, 28), le16(&h, 30));
    if folders == 0 || files == 0 {
        return None;
    }
    let mut pos = at + 36;
    let mut folder_reserve = 0;
    if flags & 4 != 0 {
        let r: [u8; 4] = read(src, pos)?;
        pos += 4 + le16(&r, 0);
        folder_reserve = u64::from(r[2]);
    }
    for flag in [1u64, 2] {
        if flags & flag != 0 {
            for _ in 0..2 {
                pos = cstr_end(src, pos)?;
            }
        }
    }
    // The folder entries must be there.
    let last_folder = pos + (folders - 1) * (8 + folder_reserve);
    read::<8>(src, last_folder)?;
    let mut pos = at.checked_add(files_at)?;
    let mut usable = false;
    for _ in 0..files {
        let f: [u8; 16] = read(src, pos)?;
        let folder = le16(&f, 8);
        // 0xfffd..=0xffff continue from or into other cabinets.
        usable |= folder < folders || folder >= 0xfffd;
        pos = cstr_end(src, pos + 16)?;
    }
    usable.then_some(length)
}

/// The offset after a NUL-terminated string of at most 256 bytes at `at`.
fn cstr_end(src: &dyn ReadAt, at: u64) -> Option<u64> {
    let mut b = [0u8; 257];
    let n = src.read_at(&mut b, at).ok()?;
    let end = b[..n].iter().position(|&c| c == 0)?;
    Some(at + end as u64 + 1)
}

/// ClamAV's ARJ header check: a main header, then file headers until the
/// end marker or a header that does not parse; at least one file. The
/// archive's length to the end of the last file's data.
fn arj_size(src: &dyn ReadAt, at: u64) -> Option<u64> {
    let size = src.size();
    let mut pos = at;
    arj_header(src, &mut pos, size)?;
    let mut files = 0u64;
    // Bounded: every header moves `pos` forward by at least 34 bytes.
    while let Some(Some(comp)) = arj_header(src, &mut pos, size) {
        files += 1;
        pos = pos.saturating_add(comp);
    }
    (files > 0).then(|| pos - at)
}

/// Reads one ARJ header at `pos` and moves past it: `None` when it does not
/// parse, `Some(None)` at the end marker, else `Some(Some(compressed))`.
fn arj_header(src: &dyn ReadAt, pos: &mut u64, size: u64) -> Option<Option<u64>> {
    const MAX: u64 = 30 + 10 + 512 + 2048;
    let id: [u8; 4] = read(src, *pos)?;
    if id[..2] != [0x60, 0xea] {
        return None;
    }
    let header = le16(&id, 2);
    let start = *pos + 2;
    if header == 0 {
        *pos = start + 2;
        return Some(None);
    }
    if header > MAX || header + 2 > size.checked_sub(start)? {
        return None;
    }
    let fixed: [u8; 30] = read(src, start + 2)?;
    let first = u64::from(fixed[0]);
    if first < 30 {
        return None;
    }
    let mut p = start + 2 + first;
    let end = start + 2 + header;
    for _ in 0..2 {
        // File name, then comment: NUL-terminated within the header.
        let room = end.checked_sub(p)?;
        if room > header {
            return None;
        }
        if room > 0 {
            let mut b = vec![0u8; room as usize + 1];
            src.read_exact_at(&mut b, p).ok()?;
            let len = b[..room as usize]
                .iter()
                .position(|&c| c == 0)
                .unwrap_or(room as usize);
            p += len as u64 + 1;
        } else {
            p += 1;
        }
    }
    p += 4; // CRC
    loop {
        let n: [u8; 2] = read(src, p)?;
        p += 2;
        let ext = le16(&n, 0);
        if ext == 0 {
            break;
        }
        p += ext + 4;
    }
    *pos = p;
    Some(Some(le32(&fixed, 12)))
}

/// The PE header checks ClamAV's `cli_peheader` makes before it scans an
/// executable found inside another: DOS and NT signatures, at least one
/// section, an optional header of a size that holds its data directories,
/// and section headers that are in the file with 31-bit fields.
fn pe_header_ok(src: &dyn ReadAt, at: u64) -> bool {
    pe_header(src, at).is_some()
}

fn pe_header(src: &dyn ReadAt, at: u64) -> Option<()> {
    let dos: [u8; 64] = read(src, at)?;
    if &dos[..2] != b"MZ" && &dos[..2] != b"ZM" {
        return None;
    }
    let lfanew = le32(&dos, 60);
    if lfanew == 0 {
        return None;
    }
    let nt = at.checked_add(lfanew)?;
    let fh: [u8; 24] = read(src, nt)?;
    if &fh[..4] != b"PE\0\0" {
        return None;
    }
    let sections = le16(&fh, 6);
    let opt_size = le16(&fh, 20);
    if sections == 0 || opt_size < 96 {
        return None;
    }
    let opt: [u8; 112] = {
        let mut b = [0u8; 112];
        let need = if opt_size >= 112 { 112 } else { 96 };
        src.read_exact_at(&mut b[..need], nt + 24).ok()?;
        b
    };
    let plus = le16(&opt, 0) == 0x20b;
    if plus && opt_size < 112 {
        return None;
    }
    let stored = if plus { 112 } else { 96 };
    let dirs = le32(&opt, stored - 4).min(16);
    if opt_size < stored as u64 + dirs * 8 {
        return None;
    }
    let table = nt + 24 + opt_size;
    for i in 0..sections {
        let s: [u8; 40] = read(src, table + i * 40)?;
        let (vsz, rva, rsz, raw) = (le32(&s, 8), le32(&s, 12), le32(&s, 16), le32(&s, 20));
        if rva >> 31 != 0 || vsz >> 31 != 0 || (rsz != 0 && raw >> 31 != 0) {
            return None;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses() {
        let r = parse(TABLE).unwrap();
        let lines = TABLE
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(r.groups.iter().map(Vec::len).sum::<usize>(), lines);
        assert!(r.span >= 14 + 292 + 8 + 8 + 5);
        assert!(parse("0:0:4d5a:X:CL_TYPE_ANY:CL_TYPE_MSEXE").is_err());
        assert!(parse("1:*:4d??:X:CL_TYPE_ANY:CL_TYPE_MSEXE").is_err());
        assert_eq!(
            parse("1:*:4d5a:X:CL_TYPE_ANY:CL_TYPE_FOO")
                .unwrap_err()
                .line,
            1
        );
    }

    #[test]
    fn gaps_and_alternatives() {
        let e = parse_pattern("4d5a{2-4}5045(00|01)").unwrap();
        assert_eq!(match_at(&e[2..], b"MZxxPE\x01", 2), Some(7));
        assert_eq!(match_at(&e[2..], b"MZxxxxPE\x00", 2), Some(9));
        assert_eq!(match_at(&e[2..], b"MZxxxxxPE\x00", 2), None);
        assert_eq!(match_at(&e[2..], b"MZxPE\x00", 2), None);
        assert_eq!(match_at(&e[2..], b"MZxxPE\x02", 2), None);
    }

    #[test]
    fn zip_after_a_stub_is_found_once_per_entry() {
        let mut f = b"MZ this is not a real stub".to_vec();
        let at = f.len() as u64;
        let mut entry = b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00".to_vec();
        entry.extend_from_slice(&[0; 4]); // crc
        entry.extend_from_slice(&5u32.to_le_bytes());
        entry.extend_from_slice(&5u32.to_le_bytes());
        entry.extend_from_slice(&1u16.to_le_bytes());
        entry.extend_from_slice(&0u16.to_le_bytes());
        entry.extend_from_slice(b"aPK\x03\x04x");
        f.extend_from_slice(&entry);
        let h = hits(FileType::BinaryData, &f).unwrap();
        // The local header, and the signature stored inside its data.
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].start, at);
        assert_eq!(zip_entry_size(&f, at), Some(36));
        assert_eq!(zip_entry_size(&f, h[1].start), None);
    }
}
