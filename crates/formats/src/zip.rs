//! Zip archives, read by hand so that every length is checked and the
//! layout itself can be judged: entries that overlap (the trick of
//! non-recursive zip bombs), data that runs past the end, encryption.
//!
//! The central directory is the index, as in every modern unzipper and in
//! ClamAV; an archive without one (truncated at the end) is read by walking
//! its local headers from the start instead.

use std::io::{self, BufReader, Read, Write};

use crate::source::{ReadAt, SourceReader};
use crate::streams::{WriteRef, lzma_error};
use crate::walk::{Body, Flow, FormatError, Member, Problem, Visitor, check_name, visit};

const LOCAL: u32 = 0x0403_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const EOCD: u32 = 0x0605_4b50;
const EOCD64: u32 = 0x0606_4b50;
const EOCD64_LOCATOR: u32 = 0x0706_4b50;

/// More overlapping entries than this and the archive is a bomb, as ClamAV
/// judges it (`ZIP_MAX_NUM_OVERLAPPING_FILES`).
const MAX_OVERLAPPING: u64 = 5;
/// The dictionary memory an LZMA member may ask for.
const LZMA_MEMLIMIT: usize = 64 << 20;

/// One central directory record.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    flags: u16,
    method: u16,
    packed: u64,
    size: u64,
    local: u64,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |x| u16::from_le_bytes([x[0], x[1]]))
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |x| {
        let mut a = [0u8; 8];
        a.copy_from_slice(x);
        u64::from_le_bytes(a)
    })
}

/// Where the central directory is: (offset, size, shift), where `shift` is the
/// length of data prepended to the archive after its offsets were written,
/// to be added to every offset in it.
fn find_central(src: &dyn ReadAt) -> io::Result<Option<(u64, u64, u64)>> {
    let size = src.size();
    let tail_len = size.min(65_557) as usize;
    let tail_start = size - tail_len as u64;
    let mut tail = vec![0u8; tail_len];
    src.read_exact_at(&mut tail, tail_start)?;
    let Some(pos) =
        memchr::memmem::rfind_iter(&tail, &EOCD.to_le_bytes()).find(|&p| p + 22 <= tail.len())
    else {
        return Ok(None);
    };
    let e = &tail[pos..];
    let mut entries = u16_at(e, 10) as u64;
    let mut cd_size = u32_at(e, 12) as u64;
    let mut cd_off = u32_at(e, 16) as u64;
    let eocd_at = tail_start + pos as u64;
    // Zip64: the real values are in the zip64 end record.
    if (entries == 0xffff || cd_size == 0xffff_ffff || cd_off == 0xffff_ffff)
        && pos >= 20
        && u32_at(&tail, pos - 20) == EOCD64_LOCATOR
    {
        let rec = u64_at(&tail, pos - 20 + 8);
        let mut r = [0u8; 56];
        if src.read_exact_at(&mut r, rec).is_ok() && u32_at(&r, 0) == EOCD64 {
            entries = u64_at(&r, 32);
            cd_size = u64_at(&r, 40);
            cd_off = u64_at(&r, 48);
        }
    }
    // Data prepended to the archive (self-extractors) shifts every offset;
    // the directory then ends where the end record starts.
    let mut sig = [0u8; 4];
    let mut shift = 0;
    let at_off = src.read_exact_at(&mut sig, cd_off).is_ok() && u32::from_le_bytes(sig) == CENTRAL;
    if !at_off
        && entries > 0
        && let Some(shifted) = eocd_at.checked_sub(cd_size)
        && src.read_exact_at(&mut sig, shifted).is_ok()
        && u32::from_le_bytes(sig) == CENTRAL
    {
        shift = shifted.saturating_sub(cd_off);
        cd_off = shifted;
    }
    Ok(Some((cd_off, cd_size, shift)))
}

/// Reads the central directory; stops at the first damaged record.
fn read_central(
    src: &dyn ReadAt,
    cd_off: u64,
    cd_size: u64,
    visitor: &mut dyn Visitor,
) -> Vec<Entry> {
    let mut out = Vec::new();
    let end = cd_off.saturating_add(cd_size).min(src.size());
    let mut r = BufReader::with_capacity(64 << 10, SourceReader::new(src, cd_off, end));
    loop {
        let mut fixed = [0u8; 46];
        match r.read_exact(&mut fixed) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => {
                visitor.problem(Problem::Broken {
                    member: None,
                    detail: format!("central directory: {e}"),
                });
                break;
            }
        }
        if u32_at(&fixed, 0) != CENTRAL {
            break;
        }
        let name_len = u16_at(&fixed, 28) as usize;
        let extra_len = u16_at(&fixed, 30) as usize;
        let comment_len = u16_at(&fixed, 32) as usize;
        let mut var = vec![0u8; name_len + extra_len + comment_len];
        if r.read_exact(&mut var).is_err() {
            visitor.problem(Problem::Broken {
                member: None,
                detail: format!("central directory record {} is truncated", out.len()),
            });
            break;
        }
        let name = String::from_utf8_lossy(&var[..name_len]).into_owned();
        let mut e = Entry {
            name,
            flags: u16_at(&fixed, 8),
            method: u16_at(&fixed, 10),
            packed: u32_at(&fixed, 20) as u64,
            size: u32_at(&fixed, 24) as u64,
            local: u32_at(&fixed, 42) as u64,
        };
        zip64_extra(&var[name_len..name_len + extra_len], &mut e);
        out.push(e);
    }
    out
}

/// Replaces 0xffffffff sizes and offsets with the zip64 extra field's values.
fn zip64_extra(mut extra: &[u8], e: &mut Entry) {
    while extra.len() >= 4 {
        let id = u16_at(extra, 0);
        let len = u16_at(extra, 2) as usize;
        let Some(body) = extra.get(4..4 + len) else {
            return;
        };
        if id == 1 {
            let mut at = 0;
            for field in [&mut e.size, &mut e.packed, &mut e.local] {
                if *field == 0xffff_ffff {
                    if at + 8 > body.len() {
                        return;
                    }
                    *field = u64_at(body, at);
                    at += 8;
                }
            }
            return;
        }
        extra = &extra[4 + len..];
    }
}

/// The start of a member's data, after its local header; `None` when the
/// local header is missing.
fn data_start(src: &dyn ReadAt, local: u64) -> Option<u64> {
    let mut h = [0u8; 30];
    src.read_exact_at(&mut h, local).ok()?;
    if u32_at(&h, 0) != LOCAL {
        return None;
    }
    Some(local + 30 + u16_at(&h, 26) as u64 + u16_at(&h, 28) as u64)
}

pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let entries = match find_central(src)? {
        Some((off, size, shift)) => {
            let mut entries = read_central(src, off, size, visitor);
            for e in &mut entries {
                e.local = e.local.saturating_add(shift);
            }
            entries
        }
        None => {
            if visitor.problem(Problem::Broken {
                member: None,
                detail: "no end of central directory; reading local headers".into(),
            }) == Flow::Stop
            {
                return Ok(());
            }
            return walk_local(src, visitor);
        }
    };
    if entries.is_empty() {
        return walk_local(src, visitor);
    }

    // Overlapping entries: sort by local header and compare each start with
    // the end of the one before. Exact duplicates are tolerated, as ClamAV does.
    let starts: Vec<Option<u64>> = entries.iter().map(|e| data_start(src, e.local)).collect();
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| entries[i].local);
    let mut overlapping = 0u64;
    let mut prev: Option<(usize, u64)> = None;
    for &i in &order {
        let Some(start) = starts[i] else { continue };
        let end = start.saturating_add(entries[i].packed);
        if let Some((p, prev_end)) = prev {
            let dup =
                entries[p].local == entries[i].local && entries[p].packed == entries[i].packed;
            if entries[i].local < prev_end && !dup {
                overlapping += 1;
            }
        }
        prev = Some((i, end));
    }
    if overlapping > MAX_OVERLAPPING {
        visitor.problem(Problem::Overlapping {
            entries: overlapping,
        });
        return Ok(());
    }

    for (e, start) in entries.iter().zip(starts) {
        let flow = match start {
            None => visitor.problem(Problem::Broken {
                member: Some(e.name.clone()),
                detail: format!("no local header at offset {}", e.local),
            }),
            Some(start) => member(src, e, start, visitor),
        };
        if flow == Flow::Stop {
            break;
        }
    }
    Ok(())
}

/// Reads members from their local headers, for an archive whose central
/// directory is gone. Stops where sizes are only in data descriptors.
fn walk_local(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let mut pos = 0u64;
    loop {
        let mut h = [0u8; 30];
        if src.read_exact_at(&mut h, pos).is_err() || u32_at(&h, 0) != LOCAL {
            return Ok(());
        }
        let name_len = u16_at(&h, 26) as usize;
        let mut name = vec![0u8; name_len];
        if src.read_exact_at(&mut name, pos + 30).is_err() {
            visitor.problem(Problem::Broken {
                member: None,
                detail: format!("local header at {pos} is truncated"),
            });
            return Ok(());
        }
        let e = Entry {
            name: String::from_utf8_lossy(&name).into_owned(),
            flags: u16_at(&h, 6),
            method: u16_at(&h, 8),
            packed: u32_at(&h, 18) as u64,
            size: u32_at(&h, 22) as u64,
            local: pos,
        };
        let start = pos + 30 + name_len as u64 + u16_at(&h, 28) as u64;
        if e.flags & 0x08 != 0 && e.packed == 0 {
            visitor.problem(Problem::Broken {
                member: Some(e.name),
                detail: "sizes only in a data descriptor, and no central directory".into(),
            });
            return Ok(());
        }
        if member(src, &e, start, visitor) == Flow::Stop {
            return Ok(());
        }
        pos = start.saturating_add(e.packed);
    }
}

fn member(src: &dyn ReadAt, e: &Entry, start: u64, visitor: &mut dyn Visitor) -> Flow {
    if e.name.ends_with('/') && e.size == 0 {
        return Flow::Continue; // a directory
    }
    if check_name(visitor, &e.name) == Flow::Stop {
        return Flow::Stop;
    }
    if e.flags & 0x01 != 0 || e.method == 99 {
        return visitor.problem(Problem::Encrypted {
            member: e.name.clone(),
        });
    }
    let end = start.saturating_add(e.packed);
    if end > src.size()
        && visitor.problem(Problem::Broken {
            member: Some(e.name.clone()),
            detail: format!(
                "data runs {} bytes past the end of the archive",
                end - src.size()
            ),
        }) == Flow::Stop
    {
        return Flow::Stop;
    }
    let packed = Packed {
        start,
        end,
        method: e.method,
        flags: e.flags,
        size: e.size,
    };
    let Some(body) = packed.body(src) else {
        return visitor.problem(Problem::Unsupported {
            member: e.name.clone(),
            detail: format!("compression method {}", e.method),
        });
    };
    let mut m = Member::new(e.name.clone(), body);
    m.declared_size = Some(e.size);
    m.packed_size = Some(e.packed);
    m.packed = Some(packed);
    visit(visitor, &mut m)
}

/// Where a zip member's data is and how it is compressed: enough to decode
/// it later, on any thread, from the same input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packed {
    start: u64,
    end: u64,
    method: u16,
    flags: u16,
    size: u64,
}

impl Packed {
    /// Decodes the member from `src` (the archive it came from) into `out`,
    /// as [`Member::extract`] does; returns the bytes written.
    pub fn decode(&self, src: &dyn ReadAt, out: &mut dyn Write) -> io::Result<u64> {
        let Some(body) = self.body(src) else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("compression method {}", self.method),
            ));
        };
        Member::new(String::new(), body).extract(out)
    }

    fn body<'a>(&self, src: &'a dyn ReadAt) -> Option<Body<'a>> {
        let (start, end) = (self.start, self.end);
        let raw = move || BufReader::with_capacity(64 << 10, SourceReader::new(src, start, end));
        Some(match self.method {
            0 => Body::Read(Box::new(raw())),
            6 => {
                // PKZIP implode (crate::implode).
                let flags = self.flags;
                Body::Push(Box::new(move |out: &mut dyn Write| {
                    crate::implode::explode(src, start, end, flags, out)
                }))
            }
            8 => Body::Read(Box::new(flate2::read::DeflateDecoder::new(raw()))),
            9 => Body::Read(Box::new(deflate64::Deflate64Decoder::with_buffer(raw()))),
            12 => Body::Read(Box::new(bzip2::read::BzDecoder::new(raw()))),
            14 => {
                let size = (self.flags & 0x02 == 0).then_some(self.size);
                let mut input = raw();
                Body::Push(Box::new(move |out: &mut dyn Write| {
                    zip_lzma(&mut input, size, out)
                }))
            }
            93 => {
                let mut input = raw();
                Body::Push(Box::new(move |out: &mut dyn Write| {
                    let mut dec =
                        ruzstd::decoding::StreamingDecoder::new(&mut input).map_err(|e| {
                            io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
                        })?;
                    io::copy(&mut dec, &mut WriteRef(out)).map(|_| ())
                }))
            }
            _ => return None,
        })
    }
}

/// Zip's LZMA: a 2-byte version, a 2-byte properties length, the 5 bytes of
/// properties, then the raw stream (its size from the header, or an end
/// marker when flag bit 1 is set).
fn zip_lzma(input: &mut dyn io::BufRead, size: Option<u64>, out: &mut dyn Write) -> io::Result<()> {
    let mut head = [0u8; 4];
    input.read_exact(&mut head)?;
    let props_len = u16::from_le_bytes([head[2], head[3]]) as usize;
    if props_len != 5 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("lzma properties of {props_len} bytes, expected 5"),
        ));
    }
    let mut props = [0u8; 5];
    input.read_exact(&mut props)?;
    let mut stream = BufReader::new(io::Cursor::new(props).chain(input));
    let options = lzma_rs::decompress::Options {
        unpacked_size: lzma_rs::decompress::UnpackedSize::UseProvided(size),
        memlimit: Some(LZMA_MEMLIMIT),
        allow_incomplete: false,
    };
    lzma_rs::lzma_decompress_with_options(&mut stream, &mut WriteRef(out), &options)
        .map_err(lzma_error)
}
