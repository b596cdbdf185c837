//! InstallShield setups, the two kinds ClamAV's `ishield.c` opens.
//!
//! - MSI based: data that starts `InstallShield\0` (found by the
//!   embedded-file search in an executable): a count, then per file a
//!   260-byte name, its compressed size and its bytes. The bytes have their
//!   nibbles swapped and are XORed with the name (itself XORed with
//!   `ec ca 79 f8`), then they are a zlib stream.
//! - Older setups: the overlay of an executable (after its last section) is a
//!   list of files, each four NUL-terminated strings (name, path, version,
//!   decimal size) then its bytes. `data1.hdr` and `dataN.cab` are
//!   InstallShield cabinets (`ISc(`): the header lists files, each stored in
//!   a cabinet as chunks of raw deflate; the others are stored as they are.
//!
//! As in ClamAV, the header and cabinets themselves are scanned only when a
//! file in them could not be extracted; external files (flag 0) and
//! duplicates are skipped.

use std::io::{self, Read};

use flate2::{Decompress, FlushDecompress, Status};

use crate::source::{ReadAt, SourceReader};
use crate::walk::{Body, Flow, FormatError, Member, Problem, Visitor, visit};

/// The XOR key of MSI file names (`~13 35 86 07`).
const NAME_KEY: [u8; 4] = [0xec, 0xca, 0x79, 0xf8];
/// One file entry of an MSI based setup.
const MSI_ENTRY: u64 = 0x104 + 4 + 4 + 8 + 9 * 4;
/// `ISc(`
const CAB_MAGIC: u64 = 0x2863_5349;
/// One file item of a `data1.hdr`.
const FILE_ITEM: u64 = 87;
/// The header's object table.
const OBJECTS: u64 = 74;

fn le16(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 2)
        .map_or(0, |x| u64::from(u16::from_le_bytes([x[0], x[1]])))
}

fn le32(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 4).map_or(0, |x| {
        u64::from(u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
    })
}

fn le64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |x| {
        let mut a = [0u8; 8];
        a.copy_from_slice(x);
        u64::from_le_bytes(a)
    })
}

fn broken(member: Option<String>, detail: String) -> Problem {
    Problem::Broken { member, detail }
}

/// The nibble swap and XOR of an MSI setup's file data.
struct Unscramble<'a> {
    inner: SourceReader<'a>,
    key: Vec<u8>,
    index: usize,
}

impl Read for Unscramble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for b in &mut buf[..n] {
            let c = b.rotate_left(4);
            *b = c ^ self.key[(self.index & 0x3ff) % self.key.len()];
            self.index += 1;
        }
        Ok(n)
    }
}

/// Walks MSI based InstallShield data (`src` starts with `InstallShield\0`).
pub(crate) fn walk_msi(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let mut h = [0u8; 0x20];
    let mut at = 14u64;
    if src.read_exact_at(&mut h, at).is_err() {
        visitor.problem(broken(None, "InstallShield: header truncated".into()));
        return Ok(());
    }
    at += 0x20;
    if (2..8).any(|i| le32(&h, i * 4) != 0) {
        return Ok(()); // not a layout ClamAV reads
    }
    let count = le32(&h, 0);
    let size = src.size();
    for _ in 0..count {
        let mut e = [0u8; MSI_ENTRY as usize];
        if src.read_exact_at(&mut e, at).is_err() {
            visitor.problem(broken(
                None,
                format!("InstallShield: file entry at {at} truncated"),
            ));
            return Ok(());
        }
        at += MSI_ENTRY;
        let name_len = e[..0x103].iter().position(|&c| c == 0).unwrap_or(0x103);
        let name = &e[..name_len];
        let csize = le64(&e, 0x10c);
        let end = match at.checked_add(csize) {
            Some(end) if end <= size => end,
            _ => {
                visitor.problem(broken(
                    Some(String::from_utf8_lossy(name).into_owned()),
                    format!("InstallShield: file data at {at} runs past the end"),
                ));
                return Ok(());
            }
        };
        if name.is_empty() {
            return Ok(());
        }
        let key: Vec<u8> = name
            .iter()
            .enumerate()
            .map(|(i, c)| c ^ NAME_KEY[i & 3])
            .collect();
        let data = Unscramble {
            inner: SourceReader::new(src, at, end),
            key,
            index: 0,
        };
        let mut m = Member::new(
            String::from_utf8_lossy(name).into_owned(),
            Body::Read(Box::new(flate2::read::ZlibDecoder::new(data))),
        );
        m.packed_size = Some(csize);
        if visit(visitor, &mut m) == Flow::Stop {
            return Ok(());
        }
        at = end;
    }
    Ok(())
}

/// The overlay of an executable: where its data ends, as ClamAV's
/// `cli_peheader` finds it (the end of the section that ends last in memory,
/// the first section not counted), or `None`.
pub(crate) fn pe_overlay(src: &dyn ReadAt) -> Option<u64> {
    let mut dos = [0u8; 64];
    src.read_exact_at(&mut dos, 0).ok()?;
    if &dos[..2] != b"MZ" && &dos[..2] != b"ZM" {
        return None;
    }
    let nt = le32(&dos, 60);
    if nt == 0 {
        return None;
    }
    let mut fh = [0u8; 24];
    src.read_exact_at(&mut fh, nt).ok()?;
    if &fh[..4] != b"PE\0\0" {
        return None;
    }
    let sections = le16(&fh, 6);
    let opt_size = le16(&fh, 20);
    if sections == 0 || opt_size < 96 {
        return None;
    }
    let mut opt = [0u8; 96];
    src.read_exact_at(&mut opt, nt + 24).ok()?;
    let (salign, mut falign) = (le32(&opt, 32), le32(&opt, 36));
    let table = nt + 24 + opt_size;
    let mut hdrs = Vec::new();
    for i in 0..sections.min(96) {
        let mut s = [0u8; 40];
        src.read_exact_at(&mut s, table + i * 40).ok()?;
        hdrs.push(s);
    }
    if falign != 0x200 {
        let odd = hdrs.iter().any(|s| {
            let raw = le32(s, 20);
            falign != 0
                && le32(s, 16) != 0
                && !raw.is_multiple_of(falign)
                && raw.is_multiple_of(0x200)
        });
        if odd {
            falign = 0x200;
        }
    }
    let down = |o: u64, a: u64| o.checked_div(a).map_or(o, |q| q * a);
    let up = |o: u64, a: u64| if a == 0 { o } else { o.div_ceil(a) * a };
    let fsize = src.size();
    let mut max = 0u64;
    let mut overlay = 0u64;
    let mut first = true;
    for s in &hdrs {
        let rva = down(le32(s, 12), salign);
        let raw = down(le32(s, 20), falign);
        let mut rsz = up(le32(s, 16), falign);
        if rsz != 0 {
            if raw >= fsize || le32(s, 20) >= fsize {
                continue; // removed, as ClamAV removes missing sections
            }
            if raw + rsz > fsize {
                rsz = fsize - raw;
            }
        }
        if first {
            max = rva + rsz;
            first = false;
        } else if rva + rsz > max {
            max = rva + rsz;
            overlay = raw + rsz;
        }
    }
    (overlay > 0 && overlay < fsize).then_some(overlay)
}

/// One entry of an overlay's file list.
struct Stored {
    name: String,
    at: u64,
    size: u64,
}

/// Reads a NUL-terminated string of at most 2048 bytes at `at`.
fn cstr(src: &dyn ReadAt, at: u64) -> Option<Vec<u8>> {
    let mut b = vec![0u8; 2048];
    let n = src.read_at(&mut b, at).ok()?;
    let end = b[..n].iter().position(|&c| c == 0)?;
    b.truncate(end);
    Some(b)
}

/// `strtol(s, &end, 10)` that must use the whole string.
fn decimal(s: &[u8]) -> Option<u64> {
    let t = std::str::from_utf8(s).ok()?;
    let t = t.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse::<u64>().ok().filter(|&v| v < i64::MAX as u64)
}

/// `dataN.cab` with 0 < N < 65536, or `None`.
fn cab_number(name: &str) -> Option<u64> {
    let lower = name.to_ascii_lowercase();
    let rest = lower.strip_prefix("data")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || &rest[digits..] != ".cab" {
        return None;
    }
    rest[..digits]
        .parse::<u64>()
        .ok()
        .filter(|n| (1..65536).contains(n))
}

/// Walks the InstallShield file list in the overlay of executable `src`.
pub(crate) fn walk_overlay(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let Some(start) = pe_overlay(src) else {
        return Ok(());
    };
    let mut left = src.size() - start;
    let mut at = start;
    let mut hdr: Option<Stored> = None;
    let mut cabs: Vec<(u64, Stored)> = Vec::new();
    loop {
        let mut strings = Vec::new();
        let mut p = at;
        for _ in 0..4 {
            let Some(s) = cstr(src, p) else { break };
            p += s.len() as u64 + 1;
            strings.push(s);
        }
        if strings.len() < 4 {
            break;
        }
        let Some(size) = decimal(&strings[3]) else {
            break;
        };
        let head = p - at;
        if size >= left || head >= left - size {
            break;
        }
        left -= head + size;
        let name = String::from_utf8_lossy(&strings[0]).into_owned();
        let entry = Stored { name, at: p, size };
        at = p + size;
        let lower = entry.name.to_ascii_lowercase();
        if lower.starts_with("data") {
            if &lower[4..] == "1.hdr" && hdr.is_none() {
                hdr = Some(entry);
                continue;
            }
            if let Some(n) = cab_number(&entry.name) {
                // ClamAV's duplicate check compares the index with the
                // cabinet number.
                let dup = cabs.iter().enumerate().any(|(i, (no, _))| i as u64 == *no);
                if !dup {
                    cabs.push((n, entry));
                    continue;
                }
            }
        }
        if stored(src, &entry, visitor) == Flow::Stop {
            return Ok(());
        }
    }
    if cabs.is_empty() && hdr.is_none() {
        return Ok(());
    }
    match cabinet_files(src, hdr.as_ref(), &cabs, visitor) {
        Parsed::Stop => return Ok(()),
        Parsed::AllExtracted => return Ok(()),
        Parsed::Incomplete => {}
    }
    if let Some(h) = &hdr
        && stored(src, h, visitor) == Flow::Stop
    {
        return Ok(());
    }
    for (_, c) in &cabs {
        if stored(src, c, visitor) == Flow::Stop {
            return Ok(());
        }
    }
    Ok(())
}

fn stored(src: &dyn ReadAt, e: &Stored, visitor: &mut dyn Visitor) -> Flow {
    if e.size == 0 {
        return Flow::Continue;
    }
    let mut m = Member::new(
        e.name.clone(),
        Body::Read(Box::new(SourceReader::new(src, e.at, e.at + e.size))),
    );
    m.declared_size = Some(e.size);
    m.packed_size = Some(e.size);
    visit(visitor, &mut m)
}

enum Parsed {
    /// Every file in the cabinets was extracted: ClamAV then does not scan
    /// the header and cabinets themselves.
    AllExtracted,
    Incomplete,
    Stop,
}

/// The files `data1.hdr` lists, extracted from the cabinets.
fn cabinet_files(
    src: &dyn ReadAt,
    hdr: Option<&Stored>,
    cabs: &[(u64, Stored)],
    visitor: &mut dyn Visitor,
) -> Parsed {
    let Some(hdr) = hdr.filter(|h| h.size > 0 && !cabs.is_empty()) else {
        return Parsed::Incomplete;
    };
    let mut h1 = [0u8; 20];
    if hdr.size < 20 || src.read_exact_at(&mut h1, hdr.at).is_err() {
        return Parsed::Incomplete;
    }
    let data_off = le32(&h1, 12);
    let mut objs = [0u8; OBJECTS as usize];
    if src.read_exact_at(&mut objs, hdr.at + data_off).is_err() || le32(&h1, 0) != CAB_MAGIC {
        return Parsed::Incomplete;
    }
    let dirs_off = le32(&objs, 12);
    let files = le32(&objs, 40);
    let mut off = (data_off + dirs_off + le32(&objs, 44)) & 0xffff_ffff;
    let mut all = true;
    for _ in 0..files {
        let mut f = [0u8; FILE_ITEM as usize];
        if src.read_exact_at(&mut f, hdr.at + off).is_err() {
            // Every later item is further on, and out of the file too.
            return Parsed::Incomplete;
        }
        off = (off + FILE_ITEM) & 0xffff_ffff;
        let (flags, size, csize) = (le16(&f, 0), le64(&f, 2), le64(&f, 10));
        if flags != 4 || f[84] & 1 != 0 || size == 0 {
            continue;
        }
        let stream = le64(&f, 18);
        let cabno = le16(&f, 85);
        let Some((_, cab)) = cabs.iter().find(|(n, _)| *n == cabno) else {
            all = false;
            continue;
        };
        let start = stream.checked_add(cab.at);
        let inside = start.is_some_and(|s| {
            s >= cab.at && s.checked_add(csize).is_some_and(|e| e <= cab.at + cab.size)
        });
        let Some(start) = start.filter(|_| inside) else {
            all = false;
            continue;
        };
        let name = item_name(src, hdr, data_off + dirs_off, le32(&f, 70))
            .unwrap_or_else(|| format!("file@{start}"));
        let mut chunks = Chunks {
            src,
            at: start,
            left: csize,
            inflate: None,
            out: Vec::new(),
            pos: 0,
            ok: false,
            touched: false,
        };
        let flow = {
            let mut m = Member::new(name, Body::Read(Box::new(&mut chunks)));
            m.declared_size = Some(size);
            m.packed_size = Some(csize);
            visit(visitor, &mut m)
        };
        if flow == Flow::Stop {
            return Parsed::Stop;
        }
        // A file read to its end counts as ClamAV's extraction does; one the
        // visitor skipped or cut short (a size limit) as extracted.
        if chunks.touched && chunks.left == 0 && chunks.inflate.is_none() {
            all &= chunks.ok;
        }
    }
    if all {
        Parsed::AllExtracted
    } else {
        Parsed::Incomplete
    }
}

/// The file name an item's string offset points at, within the header.
fn item_name(src: &dyn ReadAt, hdr: &Stored, base: u64, name_off: u64) -> Option<String> {
    let rel = base.checked_add(name_off)?;
    if rel >= hdr.size {
        return None;
    }
    let s = cstr(src, hdr.at + rel)?;
    Some(String::from_utf8_lossy(&s).into_owned())
}

/// A file in an InstallShield cabinet: chunks, each a 16-bit length and a
/// raw deflate stream of its own.
struct Chunks<'a> {
    src: &'a dyn ReadAt,
    at: u64,
    left: u64,
    inflate: Option<(Vec<u8>, usize, Decompress)>,
    out: Vec<u8>,
    pos: usize,
    /// ClamAV's `success`: the last chunk decoded to its end.
    ok: bool,
    touched: bool,
}

impl Chunks<'_> {
    /// Decodes more; false at the end of the file's data.
    fn fill(&mut self) -> io::Result<bool> {
        self.out.clear();
        self.pos = 0;
        loop {
            if let Some((input, used, z)) = &mut self.inflate {
                self.out.resize(64 << 10, 0);
                let before = (z.total_in(), z.total_out());
                let status = z.decompress(&input[*used..], &mut self.out, FlushDecompress::None);
                let produced = (z.total_out() - before.1) as usize;
                *used += (z.total_in() - before.0) as usize;
                self.out.truncate(produced);
                match status {
                    Ok(Status::StreamEnd) => {
                        self.ok = true;
                        self.inflate = None;
                    }
                    Ok(_) if produced == 0 => {
                        self.ok = true;
                        self.inflate = None;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.ok = false;
                        self.inflate = None;
                        self.left = 0;
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                }
                if produced > 0 {
                    return Ok(true);
                }
                continue;
            }
            if self.left == 0 {
                return Ok(false);
            }
            self.ok = false;
            if self.left < 2 {
                self.left = 0;
                return Ok(false);
            }
            self.left -= 2;
            let mut n = [0u8; 2];
            if self.src.read_exact_at(&mut n, self.at).is_err() {
                self.left = 0;
                return Ok(false);
            }
            self.at += 2;
            let chunk = le16(&n, 0);
            if chunk == 0 {
                continue;
            }
            if self.left < chunk {
                self.left = 0;
                return Ok(false);
            }
            self.left -= chunk;
            let mut input = vec![0u8; chunk as usize];
            if self.src.read_exact_at(&mut input, self.at).is_err() {
                self.left = 0;
                return Ok(false);
            }
            self.at += chunk;
            self.inflate = Some((input, 0, Decompress::new(false)));
        }
    }
}

impl Read for Chunks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.touched = true;
        while self.pos >= self.out.len() {
            if !self.fill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names() {
        assert_eq!(decimal(b"1234"), Some(1234));
        assert_eq!(decimal(b" +12"), Some(12));
        assert_eq!(decimal(b"12a"), None);
        assert_eq!(decimal(b""), None);
        assert_eq!(decimal(b"-1"), None);
        assert_eq!(cab_number("Data2.CAB"), Some(2));
        assert_eq!(cab_number("data0.cab"), None);
        assert_eq!(cab_number("data.cab"), None);
        assert_eq!(cab_number("data1.hdr"), None);
    }
}
