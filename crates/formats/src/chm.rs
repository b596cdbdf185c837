//! Microsoft compiled HTML help (`.chm`, `ITSF`): the files of its
//! directory, as ClamAV extracts them with libmspack's `chmd.c`.
//!
//! The `ITSF` header points at the directory (`ITSP`, then `PMGL` listing
//! chunks of ENCINT-coded entries: name, section, offset, length) and at
//! section 0, the uncompressed data. Section 1 is `MSCompressed`: a file of
//! section 0 (`::DataSpace/Storage/MSCompressed/Content`) holding an LZX
//! stream, described by `ControlData` (window size, reset interval) and a
//! `ResetTable` of the compressed offset of every 32 KiB frame. A file of
//! section 1 is decoded from the reset point at or before it, one frame at a
//! time with the `lzxd` crate (as the cabinet reader does).
//!
//! As ClamAV: every entry but system files (`::...`) and directories is a
//! member, in directory order; a listing chunk with a bad entry ends that
//! chunk, and the directory is still used if it gave any file; a member
//! whose data ends early is scanned with what was made (section 0 in 512-byte
//! pieces). Not done: decoding without a `ResetTable` (libmspack falls back
//! to `SpanInfo` and decodes from the start), reported as unsupported.
//!
//! Memory: one listing chunk (at most 8 KiB), the reset table (at most
//! 1 MB, libmspack's limit), the LZX window (at most 2 MiB).

use std::io::{self, Write};

use lzxd::{Lzxd, WindowSize};

use crate::source::ReadAt;
use crate::walk::{Body, Flow, FormatError, Member, Problem, Visitor, check_name, visit};

const GUIDS: [u8; 32] = [
    0x10, 0xfd, 0x01, 0x7c, 0xaa, 0x7b, 0xd0, 0x11, 0x9e, 0x0c, 0x00, 0xa0, 0xc9, 0x22, 0xe6, 0xec,
    0x11, 0xfd, 0x01, 0x7c, 0xaa, 0x7b, 0xd0, 0x11, 0x9e, 0x0c, 0x00, 0xa0, 0xc9, 0x22, 0xe6, 0xec,
];
const CONTENT: &str = "::DataSpace/Storage/MSCompressed/Content";
const CONTROL: &str = "::DataSpace/Storage/MSCompressed/ControlData";
const RESET_TABLE: &str = "::DataSpace/Storage/MSCompressed/Transform/{7FC28940-9D31-11D0-9B27-00A0C91E9C7C}/InstanceData/ResetTable";
const FRAME: u64 = 0x8000;
/// libmspack's limits on the directory and the reset table.
const MAX_CHUNKS: u32 = 100_000;
const MAX_CHUNK_SIZE: u32 = 8192;
const MAX_RESET_TABLE: u64 = 1_000_000;

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes([
        b[at],
        b[at + 1],
        b[at + 2],
        b[at + 3],
        b[at + 4],
        b[at + 5],
        b[at + 6],
        b[at + 7],
    ])
}

/// A 64-bit offset, which libmspack refuses when negative as an `off_t`.
fn off64(b: &[u8], at: usize) -> Option<u64> {
    let v = le64(b, at);
    (v <= i64::MAX as u64).then_some(v)
}

/// A directory entry.
#[derive(Clone)]
struct Entry {
    name: String,
    section: u32,
    offset: u64,
    length: u64,
}

/// The headers and directory.
struct Chm {
    /// Where section 0 starts.
    sec0: u64,
    files: Vec<Entry>,
    content: Option<Entry>,
    control: Option<Entry>,
    reset_table: Option<Entry>,
}

/// Why the headers could not be read: the walk ends with it.
type Refused = String;

/// Reads an ENCINT (7 bits a byte, high bit: more) within `b[*p..end]`.
fn encint(b: &[u8], p: &mut usize, end: usize) -> Option<u64> {
    let mut v: u64 = 0;
    for i in 0..9 {
        if *p >= end {
            return None;
        }
        let c = b[*p];
        *p += 1;
        v = (v << 7) | u64::from(c & 0x7f);
        if c & 0x80 == 0 {
            return Some(v);
        }
        if i == 8 {
            return None;
        }
    }
    None
}

fn read_headers(src: &dyn ReadAt) -> io::Result<Result<Chm, Refused>> {
    let mut h = [0u8; 0x38 + 0x28];
    if src.read_exact_at(&mut h, 0).is_err() {
        return Ok(Err("CHM: header cut short".into()));
    }
    if &h[..4] != b"ITSF" || h[0x18..0x38] != GUIDS {
        return Ok(Err("CHM: no ITSF signature".into()));
    }
    let version = le32(&h, 4);
    let t = 0x38;
    let (Some(hs0), Some(hs1), Some(cs0)) =
        (off64(&h, t), off64(&h, t + 0x10), off64(&h, t + 0x20))
    else {
        return Ok(Err("CHM: negative offset in the header".into()));
    };
    let mut s0 = [0u8; 0x18];
    if src.read_exact_at(&mut s0, hs0).is_err() {
        return Ok(Err("CHM: header section 0 cut short".into()));
    }
    let Some(length) = off64(&s0, 8) else {
        return Ok(Err("CHM: negative file length".into()));
    };
    let mut s1 = [0u8; 0x54];
    if src.read_exact_at(&mut s1, hs1).is_err() {
        return Ok(Err("CHM: directory header cut short".into()));
    }
    let dir = hs1 + 0x54;
    let chunk_size = le32(&s1, 0x10);
    let index_root = le32(&s1, 0x1c);
    let first_pmgl = le32(&s1, 0x20);
    let last_pmgl = le32(&s1, 0x24);
    let num_chunks = le32(&s1, 0x2c);
    let sec0 = if version < 3 {
        dir + u64::from(chunk_size) * u64::from(num_chunks)
    } else {
        cs0
    };
    if sec0 > length
        || chunk_size < 0x14 + 2
        || num_chunks == 0
        || num_chunks > MAX_CHUNKS
        || chunk_size > MAX_CHUNK_SIZE
        || u64::from(chunk_size) * u64::from(num_chunks) > length
        || first_pmgl > last_pmgl
        || (index_root != u32::MAX && index_root >= num_chunks)
    {
        return Ok(Err("CHM: bad directory header".into()));
    }
    let mut chm = Chm {
        sec0,
        files: Vec::new(),
        content: None,
        control: None,
        reset_table: None,
    };
    let size = chunk_size as usize;
    let mut chunk = vec![0u8; size];
    let mut errors = 0;
    for n in first_pmgl..=last_pmgl {
        let at = dir + u64::from(n) * u64::from(chunk_size);
        if src.read_exact_at(&mut chunk, at).is_err() {
            // libmspack gives up on the whole directory then.
            return Ok(Err(format!("CHM: directory chunk {n} cut short")));
        }
        if &chunk[..4] != b"PMGL" {
            continue;
        }
        let end = size - 2;
        let mut entries = u16::from_le_bytes([chunk[end], chunk[end + 1]]);
        let mut p = 0x14;
        let mut bad = false;
        while entries > 0 {
            entries -= 1;
            let Some(name_len) = encint(&chunk, &mut p, end) else {
                bad = true;
                break;
            };
            if name_len > (end - p) as u64 {
                bad = true;
                break;
            }
            let name = &chunk[p..p + name_len as usize];
            p += name_len as usize;
            let (Some(section), Some(offset), Some(length)) = (
                encint(&chunk, &mut p, end),
                encint(&chunk, &mut p, end),
                encint(&chunk, &mut p, end),
            ) else {
                bad = true;
                break;
            };
            if name.len() < 2 || name[0] == 0 || name[1] == 0 {
                continue;
            }
            if offset == 0 && length == 0 && name.last() == Some(&b'/') {
                continue; // a directory
            }
            if section > 1 {
                continue;
            }
            let e = Entry {
                name: String::from_utf8_lossy(name).into_owned(),
                section: section as u32,
                offset,
                length,
            };
            if name.starts_with(b"::") {
                match e.name.as_str() {
                    CONTENT => chm.content = Some(e),
                    CONTROL => chm.control = Some(e),
                    RESET_TABLE => chm.reset_table = Some(e),
                    _ => {}
                }
            } else {
                chm.files.push(e);
            }
        }
        if bad {
            errors += 1;
        }
    }
    let found = !chm.files.is_empty() || chm.content.is_some() || chm.control.is_some();
    if errors > 0 && !found {
        return Ok(Err("CHM: corrupt directory".into()));
    }
    Ok(Ok(chm))
}

/// Walks the files of the CHM in `src`.
pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let chm = match read_headers(src)? {
        Ok(c) => c,
        Err(detail) => {
            visitor.problem(Problem::Broken {
                member: None,
                detail,
            });
            return Ok(());
        }
    };
    let lzx = match Lzx::read(src, &chm) {
        Ok(l) => Ok(l),
        Err(e) => Err(e.to_string()),
    };
    for f in &chm.files {
        if f.length == 0 {
            continue; // an empty file: nothing for ClamAV to scan
        }
        // Names are absolute within the help file.
        let name = f.name.trim_start_matches('/').to_string();
        if check_name(visitor, &name) == Flow::Stop {
            return Ok(());
        }
        let body = match (f.section, &lzx) {
            (0, _) => {
                let (at, len) = (chm.sec0.saturating_add(f.offset), f.length);
                Body::Push(Box::new(move |out: &mut dyn Write| {
                    copy_sec0(src, at, len, out)
                }))
            }
            (_, Ok(l)) => {
                let (l, f) = (l.clone(), f.clone());
                Body::Push(Box::new(move |out: &mut dyn Write| l.extract(src, &f, out)))
            }
            (_, Err(e)) => {
                if visitor.problem(Problem::Unsupported {
                    member: name,
                    detail: format!("CHM: compressed section: {e}"),
                }) == Flow::Stop
                {
                    return Ok(());
                }
                continue;
            }
        };
        let mut m = Member::new(name, body);
        m.declared_size = Some(f.length);
        if visit(visitor, &mut m) == Flow::Stop {
            return Ok(());
        }
    }
    Ok(())
}

/// Copies a file of section 0 in 512-byte pieces; a piece the input cannot
/// fill ends it, as in libmspack.
fn copy_sec0(src: &dyn ReadAt, mut at: u64, mut len: u64, out: &mut dyn Write) -> io::Result<()> {
    let mut buf = [0u8; 512];
    while len > 0 {
        let run = len.min(512) as usize;
        if src.read_exact_at(&mut buf[..run], at).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "CHM: file data past the end",
            ));
        }
        out.write_all(&buf[..run])?;
        at += run as u64;
        len -= run as u64;
    }
    Ok(())
}

/// The compressed section: where its LZX stream is and how to cut it.
#[derive(Clone)]
struct Lzx {
    /// Where the stream starts in the input, and its end.
    start: u64,
    end: u64,
    window: WindowSize,
    /// Frames between resets.
    reset_frames: u64,
    /// Compressed offset of each frame.
    frames: Vec<u64>,
    /// The uncompressed length, padded to the reset interval.
    length: u64,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl Lzx {
    fn read(src: &dyn ReadAt, chm: &Chm) -> io::Result<Lzx> {
        let sys = |e: &Option<Entry>, what: &str| -> io::Result<Entry> {
            match e {
                Some(e) if e.section == 0 => Ok(e.clone()),
                _ => Err(bad(&format!("no {what}"))),
            }
        };
        let content = sys(&chm.content, "Content")?;
        let control = sys(&chm.control, "ControlData")?;
        if control.length != 0x1c {
            return Err(bad("ControlData is not 28 bytes"));
        }
        let mut c = [0u8; 0x1c];
        src.read_exact_at(&mut c, chm.sec0 + control.offset)?;
        if &c[4..8] != b"LZXC" {
            return Err(bad("no LZXC signature"));
        }
        let (reset, window) = match le32(&c, 8) {
            1 => (u64::from(le32(&c, 0xc)), u64::from(le32(&c, 0x10))),
            2 => (
                u64::from(le32(&c, 0xc)) * FRAME,
                u64::from(le32(&c, 0x10)) * FRAME,
            ),
            v => return Err(bad(&format!("ControlData version {v}"))),
        };
        let window = match window {
            0x8000 => WindowSize::KB32,
            0x10000 => WindowSize::KB64,
            0x20000 => WindowSize::KB128,
            0x40000 => WindowSize::KB256,
            0x80000 => WindowSize::KB512,
            0x10_0000 => WindowSize::MB1,
            0x20_0000 => WindowSize::MB2,
            w => return Err(bad(&format!("window of {w} bytes"))),
        };
        if reset == 0 || !reset.is_multiple_of(FRAME) {
            return Err(bad("reset interval not a whole number of frames"));
        }
        let rt = match &chm.reset_table {
            Some(e) if e.section == 0 && (0x28..=MAX_RESET_TABLE).contains(&e.length) => e.clone(),
            _ => return Err(bad("no usable ResetTable (SpanInfo is not read)")),
        };
        let mut t = vec![0u8; rt.length as usize];
        src.read_exact_at(&mut t, chm.sec0 + rt.offset)?;
        if u64::from(le32(&t, 0x20)) != FRAME {
            return Err(bad("ResetTable frame length is not 32 KiB"));
        }
        let count = le32(&t, 4) as usize;
        let entry_size = le32(&t, 8) as usize;
        let table = le32(&t, 0xc) as usize;
        let uncompressed = off64(&t, 0x10).ok_or_else(|| bad("negative length"))?;
        let mut frames = Vec::new();
        for i in 0..count {
            let at = table.saturating_add(i.saturating_mul(entry_size));
            let v = match entry_size {
                4 if at + 4 <= t.len() => u64::from(le32(&t, at)),
                8 if at + 8 <= t.len() => off64(&t, at).ok_or_else(|| bad("negative offset"))?,
                _ => break,
            };
            frames.push(v);
        }
        let start = chm.sec0 + content.offset;
        Ok(Lzx {
            start,
            end: start.saturating_add(content.length),
            window,
            reset_frames: reset / FRAME,
            frames,
            length: uncompressed.div_ceil(reset).saturating_mul(reset),
        })
    }

    /// Decodes `f` (a file of section 1) into `out`.
    fn extract(&self, src: &dyn ReadAt, f: &Entry, out: &mut dyn Write) -> io::Result<()> {
        if f.offset > self.length {
            return Err(bad("CHM: file starts past the compressed section"));
        }
        let want_end = f.offset.saturating_add(f.length).min(self.length);
        let reset = self.reset_frames * FRAME;
        let mut frame = (f.offset / reset) * self.reset_frames;
        let mut lzx = Lzxd::new(self.window);
        let mut packed = Vec::new();
        while frame * FRAME < want_end {
            let Some(&from) = self.frames.get(frame as usize) else {
                return Err(bad("CHM: no reset table entry for a frame"));
            };
            let to = self
                .frames
                .get(frame as usize + 1)
                .map_or(self.end, |&t| self.start.saturating_add(t))
                .min(self.end);
            let from = self.start.saturating_add(from);
            if to < from || to - from > 2 * FRAME + 6144 {
                return Err(bad("CHM: bad frame offsets in the reset table"));
            }
            packed.resize((to - from) as usize, 0);
            src.read_exact_at(&mut packed, from)?;
            if frame.is_multiple_of(self.reset_frames) {
                lzx.reset();
            }
            let out_len = (self.length - frame * FRAME).min(FRAME) as usize;
            let data = lzx
                .decompress_next(&packed, out_len)
                .map_err(|e| bad(&format!("CHM: LZX: {e}")))?;
            let base = frame * FRAME;
            let lo = f.offset.saturating_sub(base).min(data.len() as u64) as usize;
            let hi = (want_end - base).min(data.len() as u64) as usize;
            out.write_all(&data[lo..hi.max(lo)])?;
            frame += 1;
        }
        if want_end < f.offset.saturating_add(f.length) {
            return Err(bad("CHM: file runs past the compressed section"));
        }
        Ok(())
    }
}
