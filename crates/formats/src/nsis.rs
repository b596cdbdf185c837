//! Nullsoft (NSIS) installer data, as ClamAV's `nulsft.c` reads it: the
//! data the embedded-file search found after an NSIS stub (its first header,
//! `flags, 0xdeadbeef, "NullsoftInst", header size, data size`), then either
//! blocks each prefixed by a 32-bit length (non-solid; the top bit set means
//! compressed) or one compressed stream of length-prefixed items (solid).
//!
//! The first block or item is the installer's script header, which ClamAV
//! scans as raw bytes of no type ([`Content::Raw`]); each later one is a file
//! (NSIS data has no names: members are called `content.NNN` as ClamAV's
//! temporary files are).
//!
//! Compression is guessed as ClamAV guesses it: solid when the blocks'
//! lengths do not chain up to the data's size, and then from the stream's
//! first bytes; else by a vote over each compressed block's first bytes.
//! NSIS's zlib is a raw deflate stream, its LZMA a properties byte, a 32-bit
//! dictionary size and a raw LZMA stream without a length, its bzip2 bzip2
//! blocks without the stream header, block magic and checksums (decoded by
//! `nsis_bzip2.rs`: the `bzip2` crate cannot read them).

use std::io::{self, Read};

#[path = "nsis_bzip2.rs"]
mod bzip2;

use crate::source::{ReadAt, SourceReader};
use crate::walk::{Body, Content, Flow, FormatError, Member, Problem, Visitor, visit};

/// The first header: flags, signature, magic, header size, data size.
const FIRST_HEADER: u64 = 0x1c;
/// The largest LZMA dictionary allocated; NSIS itself defaults to 8 MiB.
const MAX_DICT: u32 = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comp {
    Bzip2,
    Lzma,
    Zlib,
}

/// ClamAV's guess from a stream's first 4 bytes.
fn detect(b: [u8; 4]) -> Comp {
    if b[0] == b'1' {
        Comp::Bzip2
    } else if u32::from_le_bytes(b) & !0x8000_0000 == 0x5d {
        Comp::Lzma
    } else {
        Comp::Zlib
    }
}

fn broken(detail: String) -> Problem {
    Problem::Broken {
        member: None,
        detail,
    }
}

fn read4(src: &dyn ReadAt, at: u64) -> Option<[u8; 4]> {
    let mut b = [0u8; 4];
    src.read_exact_at(&mut b, at).ok()?;
    Some(b)
}

/// The layout ClamAV guesses.
struct Layout {
    /// Data size after the first header.
    size: u32,
    solid: bool,
    comp: Comp,
}

fn layout(src: &dyn ReadAt) -> Result<Layout, String> {
    let mut h = [0u8; FIRST_HEADER as usize];
    src.read_exact_at(&mut h, 0)
        .map_err(|_| "NSIS: first header truncated".to_string())?;
    let declared = u64::from(u32::from_le_bytes([h[0x18], h[0x19], h[0x1a], h[0x1b]]));
    let full = src.size();
    let truncated = full < declared;
    let all = declared.min(full);
    if all < FIRST_HEADER + 4 {
        return Err(format!("NSIS: data size {declared} too small"));
    }
    // Fits: `all` is at most the declared 32-bit size.
    let size = (all - FIRST_HEADER) as u32;
    // Guess solid: do the blocks' lengths chain up to the data's size?
    // (32-bit arithmetic as ClamAV's, wrapping included.)
    let mut comps = [0u32; 3];
    let mut first = Comp::Zlib;
    let mut pos: u32 = 0;
    let mut at = FIRST_HEADER;
    let mut solid = false;
    let mut blocks = 0u64;
    while pos < size - 4 {
        let b = read4(src, at).ok_or_else(|| format!("NSIS: block length at {at} truncated"))?;
        let mut next = i32::from_le_bytes(b);
        if blocks == 0 {
            first = detect(b);
        }
        at += 4;
        if next as u32 & 0x8000_0000 != 0 {
            next &= 0x7fff_ffff;
            let d = read4(src, at).ok_or_else(|| format!("NSIS: block data at {at} truncated"))?;
            comps[detect(d) as usize] += 1;
            next -= 4;
            pos = pos.wrapping_add(4);
            at += 4;
        }
        pos = pos.wrapping_add(4u32.wrapping_add(next as u32));
        if pos > size {
            solid = true;
            break;
        }
        at = at
            .checked_add_signed(i64::from(next))
            .ok_or_else(|| "NSIS: block length out of range".to_string())?;
        blocks += 1;
    }
    if truncated && blocks >= 2 {
        solid = false;
    }
    let comp = if solid {
        first
    } else {
        let [bz, lz, z] = comps;
        if bz < lz {
            if lz < z { Comp::Zlib } else { Comp::Lzma }
        } else if bz < z {
            Comp::Zlib
        } else {
            Comp::Bzip2
        }
    };
    Ok(Layout { size, solid, comp })
}

/// A decoder of `comp` over `input`.
fn decoder<'a>(comp: Comp, input: Box<dyn Read + 'a>) -> io::Result<Box<dyn Read + 'a>> {
    match comp {
        Comp::Zlib => Ok(Box::new(flate2::read::DeflateDecoder::new(input))),
        Comp::Lzma => {
            let mut input = input;
            let mut p = [0u8; 5];
            input.read_exact(&mut p)?;
            let dict = u32::from_le_bytes([p[1], p[2], p[3], p[4]]).min(MAX_DICT);
            let r = lzma_rust2::LzmaReader::new_with_props(input, u64::MAX, p[0], dict, None)?;
            Ok(Box::new(r))
        }
        Comp::Bzip2 => Ok(Box::new(bzip2::Decoder::new(input))),
    }
}

fn name(n: u32) -> String {
    if n == 1 {
        "headers".into()
    } else {
        format!("content.{:03}", n - 1)
    }
}

fn content(n: u32) -> Content {
    if n == 1 { Content::Raw } else { Content::File }
}

pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let layout = match layout(src) {
        Ok(l) => l,
        Err(detail) => {
            visitor.problem(broken(detail));
            return Ok(());
        }
    };
    if layout.solid {
        solid(src, &layout, visitor);
    } else {
        blocks(src, &layout, visitor);
    }
    Ok(())
}

/// Non-solid data: one block per file.
fn blocks(src: &dyn ReadAt, layout: &Layout, visitor: &mut dyn Visitor) {
    let mut left = layout.size;
    let mut at = FIRST_HEADER;
    let mut n = 0u32;
    // Bounded: every block moves `at` forward by at least 4 bytes.
    loop {
        let Some(b) = read4(src, at) else {
            return;
        };
        at += 4;
        if left == 4 {
            return; // the checksum
        }
        n += 1;
        let raw = u32::from_le_bytes(b);
        let size = raw & 0x7fff_ffff;
        if size == 0 {
            continue;
        }
        if left < 4 || size > left - 4 {
            return;
        }
        left -= size + 4;
        let start = at;
        let end = at + u64::from(size);
        at = end;
        if end > src.size() {
            visitor.problem(Problem::Broken {
                member: Some(name(n)),
                detail: format!("NSIS: block at {start} runs past the end"),
            });
            return;
        }
        let input = Box::new(SourceReader::new(src, start, end));
        let body: Box<dyn Read + '_> = if raw == size {
            input
        } else {
            match decoder(layout.comp, input) {
                Ok(d) => d,
                Err(e) => {
                    if visitor.problem(Problem::Broken {
                        member: Some(name(n)),
                        detail: format!("NSIS: block at {start}: {e}"),
                    }) == Flow::Stop
                    {
                        return;
                    }
                    continue;
                }
            }
        };
        let mut m = Member::new(name(n), Body::Read(body));
        m.content = content(n);
        m.packed_size = Some(u64::from(size));
        if visit(visitor, &mut m) == Flow::Stop {
            return;
        }
    }
}

/// The rest of one item of a solid stream.
struct Item<'r> {
    inner: &'r mut dyn Read,
    left: u64,
    ended: bool,
}

impl Read for Item<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.left) as usize;
        if want == 0 {
            return Ok(0);
        }
        match self.inner.read(&mut buf[..want]) {
            Ok(0) => {
                self.ended = true;
                Ok(0)
            }
            Ok(k) => {
                self.left -= k as u64;
                Ok(k)
            }
            Err(e) => {
                self.ended = true;
                Err(e)
            }
        }
    }
}

/// A reader that can look ahead of what was read.
struct Ahead<'a> {
    inner: Box<dyn Read + 'a>,
    buf: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl Ahead<'_> {
    /// Whether the stream ends within `n` bytes of what was read.
    fn ends_within(&mut self, n: usize) -> bool {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let mut chunk = [0u8; 8192];
        while !self.ended && self.buf.len() <= n {
            match self.inner.read(&mut chunk) {
                Ok(0) | Err(_) => self.ended = true,
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
            }
        }
        self.buf.len() <= n
    }
}

impl Read for Ahead<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.buf.len() {
            let k = out.len().min(self.buf.len() - self.pos);
            out[..k].copy_from_slice(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
            return Ok(k);
        }
        self.inner.read(out)
    }
}

/// NSIS's inflate decodes ahead into its 32 KiB window, and ClamAV stops a
/// solid zlib stream once all its input was consumed: the files that end in
/// the last window's worth of output are not extracted.
const ZLIB_WINDOW: usize = 32 << 10;

/// Solid data: one stream of items, each a 32-bit length and its bytes.
fn solid(src: &dyn ReadAt, layout: &Layout, visitor: &mut dyn Visitor) {
    let input = Box::new(SourceReader::new(
        src,
        FIRST_HEADER,
        FIRST_HEADER + u64::from(layout.size),
    ));
    let stream = match decoder(layout.comp, input) {
        Ok(d) => d,
        Err(e) => {
            visitor.problem(broken(format!("NSIS: solid stream: {e}")));
            return;
        }
    };
    let mut stream = Ahead {
        inner: stream,
        buf: Vec::new(),
        pos: 0,
        ended: false,
    };
    let mut n = 0u32;
    loop {
        n += 1;
        if n > 1 && layout.comp == Comp::Zlib && stream.ends_within(ZLIB_WINDOW) {
            return;
        }
        let mut b = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match stream.read(&mut b[got..]) {
                Ok(0) | Err(_) => return, // the end of the stream
                Ok(k) => got += k,
            }
        }
        let size = u64::from(u32::from_le_bytes(b));
        if size == 0 {
            continue;
        }
        let mut item = Item {
            inner: &mut stream,
            left: size,
            ended: false,
        };
        let flow = {
            let mut m = Member::new(name(n), Body::Read(Box::new(&mut item)));
            m.content = content(n);
            m.declared_size = Some(size);
            visit(visitor, &mut m)
        };
        // A file cut short ends the data; a file not read to its end (over
        // a limit) ends it too, as in ClamAV.
        if flow == Flow::Stop || item.ended || item.left > 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_guesses() {
        assert_eq!(detect(*b"1AY&"), Comp::Bzip2);
        assert_eq!(detect([0x5d, 0, 0, 0]), Comp::Lzma);
        assert_eq!(detect([0x5d, 0, 0, 0x80]), Comp::Lzma);
        assert_eq!(detect([0xed, 0xbd, 0x07, 0x60]), Comp::Zlib);
    }

    #[test]
    fn short_headers_are_broken() {
        let mut h = vec![0u8; 0x1c];
        h[4..8].copy_from_slice(&0xdead_beefu32.to_le_bytes());
        h[8..20].copy_from_slice(b"NullsoftInst");
        h[0x18..0x1c].copy_from_slice(&0x1cu32.to_le_bytes());
        assert!(layout(&h).is_err());
        assert!(layout(&h[..10].to_vec()).is_err());
    }
}
