//! BinHex 4.0 (`.hqx`): the data and resource forks, as ClamAV's
//! `binhex.c` decodes them.
//!
//! After a banner line, the text between `:` marks is 6-bit characters (line
//! breaks skipped); the bytes they make are run-length coded (`0x90 n`
//! repeats the previous byte `n` times in all, `0x90 0` is a literal 0x90),
//! and hold a header (name, type, creator, flags, the two forks' sizes, a
//! CRC), the data fork and its CRC, the resource fork and its CRC. CRCs are
//! not checked, as by ClamAV.
//!
//! ClamAV's particulars, kept because they decide what is scanned: the first
//! character after the first line break must be `:`; any character that is
//! not BinHex (a space, text after the closing `:`) ends decoding on the
//! spot, and what was decoded since the last 7936-byte flush is then lost;
//! a fork is scanned once complete, or, if the input ends inside it, with
//! what it has; a resource fork of fewer than 5 bytes is not scanned.
//!
//! Runs make the output up to 85 times the input, so nothing is held: a
//! first pass finds which forks ClamAV would scan, and each member decodes
//! the input again, writing only its fork.

use std::io::{self, Write};

use crate::source::ReadAt;
use crate::walk::{Body, Flow, FormatError, Member, Problem, Visitor, check_name, visit};

/// ClamAV decodes into a buffer of `BUFSIZ` and flushes it when this full.
const FLUSH: usize = 8192 - 256;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Phase {
    Banner,
    Header,
    Data,
    /// The data fork's CRC, both bytes to come.
    Limbo1,
    /// One byte of it to come.
    Limbo2,
    Res,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fork {
    Data,
    Resource,
}

/// What the decoder reports.
enum Event<'a> {
    /// The file's name, once the header is read.
    Name(&'a [u8]),
    Bytes(Fork, &'a [u8]),
    /// ClamAV scans this fork now.
    Scan(Fork),
}

/// Decodes `src`, reporting to `sink` (which returns false to stop); returns
/// why decoding ended early, if it did.
fn run(
    src: &dyn ReadAt,
    sink: &mut dyn FnMut(Event<'_>) -> io::Result<bool>,
) -> io::Result<Option<String>> {
    let size = src.size();
    let mut decoded: Vec<u8> = Vec::with_capacity(8192);
    let mut phase = Phase::Banner;
    let (mut datalen, mut reslen) = (0u32, 0u32);
    let mut enc_done = 0u64;
    let mut chunk = vec![0u8; 4096];
    let (mut chunk_len, mut chunk_pos) = (0usize, 0usize);
    let (mut in_data, mut in_run) = (false, false);
    let (mut spare, mut last, mut offset) = (0u8, 0u8, 0u8);
    loop {
        let at_end = enc_done >= size;
        if at_end || decoded.len() >= FLUSH {
            if phase == Phase::Header {
                if decoded.is_empty() {
                    return Ok(Some("BinHex: nothing between the colons".into()));
                }
                let namelen = usize::from(decoded[0]);
                let sizes = namelen + 12;
                if decoded.len() <= sizes + 10 {
                    return Ok(Some("BinHex: too short for its header".into()));
                }
                let be = |at: usize| {
                    u32::from_be_bytes([
                        decoded[at],
                        decoded[at + 1],
                        decoded[at + 2],
                        decoded[at + 3],
                    ])
                };
                datalen = be(sizes);
                reslen = be(sizes + 4);
                if !sink(Event::Name(&decoded[1..=namelen]))? {
                    return Ok(None);
                }
                decoded.drain(..sizes + 10);
                phase = Phase::Data;
            }
            if !decoded.is_empty() && phase == Phase::Data {
                let todo = decoded.len().min(datalen as usize);
                datalen -= todo as u32;
                if !sink(Event::Bytes(Fork::Data, &decoded[..todo]))? {
                    return Ok(None);
                }
                decoded.drain(..todo);
                if datalen == 0 {
                    phase = Phase::Limbo1;
                    if !sink(Event::Scan(Fork::Data))? {
                        return Ok(None);
                    }
                }
            }
            if !decoded.is_empty() && phase == Phase::Limbo1 {
                if decoded.len() > 1 {
                    if reslen < 5 {
                        return Ok(None);
                    }
                    decoded.drain(..2);
                    phase = Phase::Res;
                } else {
                    decoded.clear();
                    phase = Phase::Limbo2;
                }
            }
            if !decoded.is_empty() && phase == Phase::Limbo2 {
                if reslen < 5 {
                    return Ok(None);
                }
                decoded.drain(..1);
                phase = Phase::Res;
            }
            if !decoded.is_empty() && phase == Phase::Res {
                let todo = decoded.len().min(reslen as usize);
                reslen -= todo as u32;
                if !sink(Event::Bytes(Fork::Resource, &decoded[..todo]))? {
                    return Ok(None);
                }
                decoded.drain(..todo);
                if reslen == 0 {
                    sink(Event::Scan(Fork::Resource))?;
                    return Ok(None);
                }
            }
            if at_end {
                // A fork the input ends in is scanned with what it has.
                let cut = match phase {
                    Phase::Data => Some(Fork::Data),
                    Phase::Res => Some(Fork::Resource),
                    _ => None,
                };
                if let Some(fork) = cut {
                    sink(Event::Scan(fork))?;
                    return Ok(Some("BinHex: the input ends inside a fork".into()));
                }
                return Ok(None);
            }
        }
        if chunk_pos == chunk_len {
            let want = (size - enc_done).min(chunk.len() as u64) as usize;
            let n = src.read_at(&mut chunk[..want], enc_done)?;
            if n == 0 {
                return Ok(Some("BinHex: read past the end".into()));
            }
            chunk_len = n;
            chunk_pos = 0;
        }
        let c = chunk[chunk_pos];
        chunk_pos += 1;
        enc_done += 1;
        if c == b'\r' || c == b'\n' {
            in_data = true;
            continue;
        }
        if !in_data {
            continue;
        }
        if phase == Phase::Banner {
            if c != b':' {
                return Ok(Some("BinHex: no ':' after the banner".into()));
            }
            phase = Phase::Header;
        }
        if c == b':' {
            continue;
        }
        let Some(v) = sixbit(c) else {
            return Ok(Some(format!(
                "BinHex: character {c:#04x} at offset {}",
                enc_done - 1
            )));
        };
        let byte = match offset & 3 {
            0 => {
                spare = v << 2;
                offset = offset.wrapping_add(1);
                continue;
            }
            1 => {
                let b = spare | v >> 4;
                spare = v << 4;
                b
            }
            2 => {
                let b = spare | v >> 2;
                spare = v << 6;
                b
            }
            _ => spare | v,
        };
        offset = offset.wrapping_add(1);
        let mut byte = byte;
        if in_run {
            in_run = false;
            if byte == 0 {
                byte = 0x90;
            } else {
                for _ in 1..byte {
                    decoded.push(last);
                }
                continue;
            }
        } else if byte == 0x90 {
            in_run = true;
            continue;
        }
        decoded.push(byte);
        last = byte;
    }
}

/// The value of a BinHex 4.0 character.
fn sixbit(c: u8) -> Option<u8> {
    const ALPHABET: &[u8; 64] =
        b"!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr";
    ALPHABET.iter().position(|&a| a == c).map(|i| i as u8)
}

/// Walks the forks of the BinHex file in `src`.
pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    // First pass: the name, which forks are scanned, and how it ends.
    let mut name = String::new();
    let mut scanned = Vec::new();
    let mut sizes = [0u64; 2];
    let ended = run(src, &mut |e| {
        match e {
            Event::Name(n) => name = String::from_utf8_lossy(n).into_owned(),
            // An empty fork is an empty file to ClamAV: nothing to scan.
            Event::Scan(f) if sizes[f as usize] > 0 => scanned.push(f),
            Event::Scan(_) => {}
            Event::Bytes(f, b) => sizes[f as usize] += b.len() as u64,
        }
        Ok(true)
    })?;
    for fork in scanned {
        let member = match fork {
            Fork::Data => name.clone(),
            Fork::Resource => format!("{name}/..namedfork/rsrc"),
        };
        if check_name(visitor, &member) == Flow::Stop {
            return Ok(());
        }
        let body = Body::Push(Box::new(move |out: &mut dyn Write| {
            run(src, &mut |e| match e {
                Event::Bytes(f, b) if f == fork => out.write_all(b).map(|()| true),
                Event::Scan(f) if f == fork => Ok(false),
                _ => Ok(true),
            })
            .map(|_| ())
        }));
        let mut m = Member::new(member, body);
        m.declared_size = Some(sizes[fork as usize]);
        if visit(visitor, &mut m) == Flow::Stop {
            return Ok(());
        }
    }
    if let Some(detail) = ended {
        visitor.problem(Problem::Broken {
            member: (!name.is_empty()).then_some(name),
            detail,
        });
    }
    Ok(())
}
