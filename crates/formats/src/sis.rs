//! Symbian installers (`.sis`, the format before Symbian OS 9): the files
//! they install, as ClamAV's `sis.c` extracts them.
//!
//! After four UIDs (the third `0x10000419`) comes a header with the number
//! of languages and of file records, flags (bit 3: not compressed) and
//! pointers. The file records are read as a stream of 32-bit words: a
//! record type, then for a file its type, options, name pointers and, per
//! language, the data's size, pointer and original size. Each language's
//! copy is a member, inflated with zlib unless the package says it is not
//! compressed.
//!
//! As ClamAV: a copy is given only if its zlib stream ends within the larger
//! of three times its packed size and its declared original size (no more
//! than 100 MiB, ClamAV's default maximum file size); one that fails to
//! inflate is skipped; `null` files are not read; the other record types
//! (conditions, options) are stepped over by their sizes. A member is
//! inflated once to see that it would be scanned, then again into the
//! writer. Post-9.x packages (`0x10201a7a`) are not recognized as SIS by
//! ClamAV's type table, and are not opened here.

use std::io::{self, Write};

use flate2::{Decompress, FlushDecompress, Status};

use crate::source::ReadAt;
use crate::walk::{Body, Flow, FormatError, Member, Problem, Visitor, check_name, visit};

const UID3: u32 = 0x1000_0419;
/// The UIDs and the fixed header.
const HEADER: u64 = 16 + 68;
/// ClamAV's table of language names has this many entries.
const MAX_LANG: u16 = 100;
const PKG_FILE: u32 = 0;
const PKG_LANG_FILE: u32 = 1;
const PKG_OPTION: u32 = 2;
const PKG_IF: u32 = 3;
const PKG_ELSIF: u32 = 4;
const FT_NULL: u32 = 4;
/// Largest inflated member (ClamAV's default maximum file size).
const MAX_MEMBER: u64 = 100 << 20;

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The file records, read a word at a time; `None` once the input ends.
struct Words<'a> {
    src: &'a dyn ReadAt,
    at: u64,
}

impl Words<'_> {
    fn word(&mut self) -> io::Result<Option<u32>> {
        let mut b = [0u8; 4];
        if self.at.saturating_add(4) > self.src.size() {
            return Ok(None);
        }
        self.src.read_exact_at(&mut b, self.at)?;
        self.at += 4;
        Ok(Some(u32::from_le_bytes(b)))
    }

    fn words(&mut self, n: usize) -> io::Result<Option<Vec<u32>>> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            match self.word()? {
                Some(w) => v.push(w),
                None => return Ok(None),
            }
        }
        Ok(Some(v))
    }

    /// Steps over `n` bytes; false when that leaves the input.
    fn skip(&mut self, n: u32) -> bool {
        self.at += u64::from(n);
        self.at <= self.src.size()
    }
}

/// A name stored as UTF-16 (ClamAV keeps every other byte, 400 at most).
fn sis_string(src: &dyn ReadAt, at: u32, len: u32) -> io::Result<Option<String>> {
    let len = len.min(400) as usize;
    if len == 0 || u64::from(at) + len as u64 > src.size() {
        return Ok(None);
    }
    let mut b = vec![0u8; len];
    src.read_exact_at(&mut b, u64::from(at))?;
    let s: Vec<u8> = b.iter().step_by(2).copied().collect();
    let s = s.split(|&c| c == 0).next().unwrap_or_default();
    Ok(Some(String::from_utf8_lossy(s).into_owned()))
}

/// Walks the files of the SIS package in `src`.
pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let mut h = [0u8; HEADER as usize];
    if src.read_exact_at(&mut h, 0).is_err() {
        visitor.problem(Problem::Broken {
            member: None,
            detail: "SIS: header cut short".into(),
        });
        return Ok(());
    }
    if le32(&h, 8) != UID3 {
        visitor.problem(Problem::Unsupported {
            member: String::new(),
            detail: "SIS: not a pre-9.x package".into(),
        });
        return Ok(());
    }
    let langs = le16(&h, 16 + 2);
    let files = le16(&h, 16 + 4);
    let flags = le16(&h, 16 + 20);
    let plangs = u64::from(le32(&h, 16 + 32));
    let pfiles = le32(&h, 16 + 36);
    let broken = |visitor: &mut dyn Visitor, detail: String| {
        visitor.problem(Problem::Broken {
            member: None,
            detail,
        });
    };
    if langs == 0 || langs >= MAX_LANG {
        broken(visitor, format!("SIS: {langs} languages"));
        return Ok(());
    }
    if plangs + u64::from(langs) * 2 > src.size() {
        broken(visitor, "SIS: language list past the end".into());
        return Ok(());
    }
    if u64::from(pfiles) < HEADER {
        broken(visitor, "SIS: file records inside the header".into());
        return Ok(());
    }
    let compressed = flags & 0x0008 == 0;
    let langs = usize::from(langs);
    let mut words = Words {
        src,
        at: u64::from(pfiles),
    };
    let mut count = 0usize;
    for _ in 0..files {
        let Some(pkgtype) = words.word()? else {
            break;
        };
        let skip = match pkgtype {
            PKG_LANG_FILE => langs as u32,
            PKG_FILE => {
                let Some(fixed) = words.words(6)? else {
                    break;
                };
                let (ftype, ssname, psname) = (fixed[0], fixed[2], fixed[3]);
                let Some(table) = words.words(langs * 3)? else {
                    break;
                };
                if ftype != FT_NULL {
                    let name = sis_string(src, psname, ssname)?;
                    for j in 0..langs {
                        let (len, ptr, olen) = (table[j], table[langs + j], table[2 * langs + j]);
                        let copy = Copy {
                            ptr,
                            len,
                            olen,
                            compressed,
                        };
                        let member = match &name {
                            Some(n) if langs == 1 => n.clone(),
                            Some(n) => format!("{n} (language {j})"),
                            None => format!("sis{count:02}"),
                        };
                        match copy.visit(src, visitor, member, &mut count)? {
                            Flow::Continue => {}
                            Flow::Stop => return Ok(()),
                        }
                    }
                }
                8
            }
            PKG_OPTION => match words.word()? {
                Some(n) => n.wrapping_mul(langs as u32 * 8),
                None => break,
            },
            PKG_IF | PKG_ELSIF => match words.word()? {
                Some(n) => n,
                None => break,
            },
            _ => 0,
        };
        if !words.skip(skip) {
            break;
        }
    }
    Ok(())
}

/// One language's copy of a file.
struct Copy {
    ptr: u32,
    len: u32,
    olen: u32,
    compressed: bool,
}

impl Copy {
    fn visit(
        &self,
        src: &dyn ReadAt,
        visitor: &mut dyn Visitor,
        name: String,
        count: &mut usize,
    ) -> io::Result<Flow> {
        if self.len == 0 || u64::from(self.ptr) < HEADER {
            return Ok(Flow::Continue);
        }
        let (ptr, len) = (u64::from(self.ptr), u64::from(self.len));
        if ptr + len > src.size() {
            return Ok(visitor.problem(Problem::Broken {
                member: Some(name),
                detail: "SIS: file data past the end".into(),
            }));
        }
        let limit = if u64::from(self.olen) <= len * 3 {
            len * 3
        } else {
            u64::from(self.olen)
        };
        if self.compressed {
            if limit > MAX_MEMBER {
                return Ok(visitor.problem(Problem::Unsupported {
                    member: name,
                    detail: format!("SIS: {limit} bytes inflated is more than {MAX_MEMBER}"),
                }));
            }
            if let Err(e) = inflate(src, ptr, len, limit, &mut io::sink()) {
                return Ok(visitor.problem(Problem::Broken {
                    member: Some(name),
                    detail: format!("SIS: {e}"),
                }));
            }
        }
        if check_name(visitor, &name) == Flow::Stop {
            return Ok(Flow::Stop);
        }
        *count += 1;
        let compressed = self.compressed;
        let body = Body::Push(Box::new(move |out: &mut dyn Write| {
            if compressed {
                inflate(src, ptr, len, limit, out).map(|_| ())
            } else {
                copy(src, ptr, len, out)
            }
        }));
        let mut m = Member::new(name, body);
        m.packed_size = Some(len);
        Ok(visit(visitor, &mut m))
    }
}

/// Copies stored data.
fn copy(src: &dyn ReadAt, mut at: u64, len: u64, out: &mut dyn Write) -> io::Result<()> {
    let end = at + len;
    let mut buf = vec![0u8; 64 << 10];
    while at < end {
        let n = (end - at).min(buf.len() as u64) as usize;
        src.read_exact_at(&mut buf[..n], at)?;
        out.write_all(&buf[..n])?;
        at += n as u64;
    }
    Ok(())
}

/// Inflates the zlib stream at `ptr`, failing as zlib's `uncompress` does
/// when it needs more than `limit` bytes of output or does not end.
fn inflate(
    src: &dyn ReadAt,
    ptr: u64,
    len: u64,
    limit: u64,
    out: &mut dyn Write,
) -> io::Result<u64> {
    let mut d = Decompress::new(true);
    let mut inbuf = vec![0u8; 64 << 10];
    let mut obuf = vec![0u8; 64 << 10];
    let (mut at, end) = (ptr, ptr + len);
    let (mut avail, mut pos) = (0usize, 0usize);
    loop {
        if pos == avail && at < end {
            let want = (end - at).min(inbuf.len() as u64) as usize;
            src.read_exact_at(&mut inbuf[..want], at)?;
            at += want as u64;
            avail = want;
            pos = 0;
        }
        let (before_in, before_out) = (d.total_in(), d.total_out());
        let status = d
            .decompress(&inbuf[pos..avail], &mut obuf, FlushDecompress::None)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("zlib: {e}")))?;
        pos += (d.total_in() - before_in) as usize;
        let made = (d.total_out() - before_out) as usize;
        if d.total_out() > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("inflates to more than {limit} bytes"),
            ));
        }
        out.write_all(&obuf[..made])?;
        match status {
            Status::StreamEnd => return Ok(d.total_out()),
            _ if made == 0 && pos == avail && at >= end => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "zlib stream cut short",
                ));
            }
            _ => {}
        }
    }
}
