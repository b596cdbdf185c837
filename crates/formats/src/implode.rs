//! PKZIP's implode (zip method 6), as ClamAV's `explode.c` decodes it.
//!
//! An imploded member starts with two or three Shannon-Fano code tables
//! (literals, when flag bit 2 is set; lengths; distances), each a count byte
//! and bytes of (run, bit length); then an LSB-first bit stream of literals
//! (flag bit 1, then 8 raw bits or a literal code) and matches (flag bit 0,
//! the distance's low 6 or 7 bits, a distance code, a length code, 8 more
//! bits for the longest), over a 4 KiB window or, with flag bit 1, 8 KiB.
//!
//! As ClamAV: decoding goes on while there are bits, past the declared size
//! (padding bits may add bytes); a match reaching before the start gives
//! zeros; input that ends, even inside a table or a symbol, ends the member
//! with what was made; but a bit pattern that is no code (a corrupt stream)
//! fails the member, and ClamAV then scans nothing of it. So the stream is
//! decoded once without output to find such a failure, then again into the
//! writer. The first pass stops at 100 MiB of output, ClamAV's default
//! maximum file size, at which ClamAV stops too and scans what it has.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};

use crate::source::{ReadAt, SourceReader};

/// Output after which ClamAV (at its default maximum file size) stops
/// decoding and scans what it has.
const DRY_RUN_CAP: u64 = 100 << 20;

/// Decodes the imploded data in `start..end` of `src` into `out`.
pub(crate) fn explode(
    src: &dyn ReadAt,
    start: u64,
    end: u64,
    flags: u16,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut count = Count(0);
    match run(src, start, end, flags, &mut count) {
        Ok(()) => {}
        Err(Fail::Io(e)) if e.kind() == io::ErrorKind::WriteZero => {}
        Err(Fail::Io(e)) => return Err(e),
        Err(Fail::Stream(what)) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("implode: {what}"),
            ));
        }
    }
    match run(src, start, end, flags, out) {
        Ok(()) => Ok(()),
        Err(Fail::Io(e)) => Err(e),
        // The first pass saw none; only past its cap can one come.
        Err(Fail::Stream(_)) => Ok(()),
    }
}

/// Counts output for the first pass, refusing more than its cap.
struct Count(u64);

impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.0 >= DRY_RUN_CAP {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Fail {
    Io(io::Error),
    /// No code matches: ClamAV's `EXPLODE_ESTREAM`.
    Stream(&'static str),
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        Fail::Io(e)
    }
}

/// LSB-first bits, with the count of what is left (ClamAV's `avail_in * 8 +
/// bits`).
struct Bits<R> {
    input: R,
    left_bytes: u64,
    buf: u64,
    nbits: u32,
}

impl<R: BufRead> Bits<R> {
    fn left(&self) -> u64 {
        self.left_bytes * 8 + u64::from(self.nbits)
    }

    fn byte(&mut self) -> io::Result<u8> {
        let mut b = [0u8; 1];
        self.input.read_exact(&mut b)?;
        self.left_bytes -= 1;
        Ok(b[0])
    }

    /// `n` bits (at most 8), or `None` when fewer are left.
    fn bits(&mut self, n: u32) -> io::Result<Option<u32>> {
        if self.left() < u64::from(n) {
            return Ok(None);
        }
        while self.nbits < n {
            let b = self.byte()?;
            self.buf |= u64::from(b) << self.nbits;
            self.nbits += 8;
        }
        let v = (self.buf & ((1 << n) - 1)) as u32;
        self.buf >>= n;
        self.nbits -= n;
        Ok(Some(v))
    }
}

/// A code table: ClamAV's `(length + 1) << 16 | code` to the symbol (the
/// first of equal ones, as its linear lookup finds).
type Tree = HashMap<u32, u16>;

/// Reads a table of `expected` codes from the raw bytes; `None` when the
/// input ends inside it.
fn read_tree<R: BufRead>(bits: &mut Bits<R>, expected: usize) -> Result<Option<Tree>, Fail> {
    if bits.left_bytes == 0 {
        return Ok(None);
    }
    let count = usize::from(bits.byte()?);
    if count > expected - 1 {
        return Err(Fail::Stream("too many code runs"));
    }
    if bits.left_bytes < count as u64 + 1 {
        return Ok(None);
    }
    let mut lens = Vec::with_capacity(expected);
    for _ in 0..=count {
        let b = bits.byte()?;
        let len = (b & 15) + 1;
        let values = usize::from(b >> 4) + 1;
        if values > expected - lens.len() {
            return Err(Fail::Stream("code runs longer than the table"));
        }
        lens.extend(std::iter::repeat_n(len, values));
    }
    if lens.len() != expected {
        return Err(Fail::Stream("code runs shorter than the table"));
    }
    // Symbols by bit length, stably; codes given from the longest down.
    let mut order: Vec<usize> = (0..expected).collect();
    order.sort_by_key(|&s| lens[s]);
    let mut tree = Tree::new();
    let (mut code, mut inc, mut last) = (0u16, 0u16, 0u8);
    for &s in order.iter().rev() {
        code = code.wrapping_add(inc);
        if lens[s] != last {
            last = lens[s];
            inc = (1u32 << (16 - u32::from(last))) as u16;
        }
        tree.entry(u32::from(code) | u32::from(last) << 16)
            .and_modify(|first| *first = (*first).min(s as u16))
            .or_insert(s as u16);
    }
    Ok(Some(tree))
}

/// Reads a code of up to 16 bits, MSB-first into 16 bits as ClamAV
/// accumulates them; `Ok(None)` when the input ends inside it.
fn decode<R: BufRead>(bits: &mut Bits<R>, tree: &Tree) -> Result<Option<u16>, Fail> {
    let mut acc = 0u32;
    for got in 0..16u32 {
        let Some(b) = bits.bits(1)? else {
            return Ok(None);
        };
        acc |= b << (15 - got);
        if let Some(&s) = tree.get(&((got + 1) << 16 | acc)) {
            return Ok(Some(s));
        }
    }
    Err(Fail::Stream("no code matches"))
}

fn run(
    src: &dyn ReadAt,
    start: u64,
    end: u64,
    flags: u16,
    out: &mut dyn Write,
) -> Result<(), Fail> {
    let end = end.min(src.size()).max(start);
    let mut bits = Bits {
        input: BufReader::with_capacity(64 << 10, SourceReader::new(src, start, end)),
        left_bytes: end - start,
        buf: 0,
        nbits: 0,
    };
    let large = flags & 2 != 0;
    let mask: usize = if large { 0x1fff } else { 0xfff };
    let lit_codes = flags & 4 != 0;
    let min_len: usize = if lit_codes { 3 } else { 2 };
    let lit_tree = if lit_codes {
        match read_tree(&mut bits, 256)? {
            Some(t) => Some(t),
            None => return Ok(()),
        }
    } else {
        None
    };
    let Some(len_tree) = read_tree(&mut bits, 64)? else {
        return Ok(());
    };
    let Some(dist_tree) = read_tree(&mut bits, 64)? else {
        return Ok(());
    };
    let mut window = vec![0u8; 8192];
    let mut cur: usize = 0;
    let mut pending = Vec::with_capacity(64 << 10);
    let result = (|| -> Result<(), Fail> {
        while bits.left() > 0 {
            let Some(flag) = bits.bits(1)? else {
                return Ok(());
            };
            if flag == 1 {
                let b = match &lit_tree {
                    Some(t) => match decode(&mut bits, t)? {
                        Some(s) => s as u8,
                        None => return Ok(()),
                    },
                    None => match bits.bits(8)? {
                        Some(v) => v as u8,
                        None => return Ok(()),
                    },
                };
                window[cur & mask] = b;
                pending.push(b);
                cur = cur.wrapping_add(1);
            } else {
                let Some(low) = bits.bits(if large { 7 } else { 6 })? else {
                    return Ok(());
                };
                let Some(high) = decode(&mut bits, &dist_tree)? else {
                    return Ok(());
                };
                let distance = (low as usize | usize::from(high) << if large { 7 } else { 6 }) + 1;
                let Some(mut len) = decode(&mut bits, &len_tree)? else {
                    return Ok(());
                };
                if len == 63 {
                    let Some(extra) = bits.bits(8)? else {
                        return Ok(());
                    };
                    len = 63 + extra as u16;
                }
                for _ in 0..usize::from(len) + min_len {
                    let b = if cur >= distance {
                        window[(cur - distance) & mask]
                    } else {
                        0
                    };
                    window[cur & mask] = b;
                    pending.push(b);
                    cur = cur.wrapping_add(1);
                }
            }
            if pending.len() >= 32 << 10 {
                out.write_all(&pending)?;
                pending.clear();
            }
        }
        Ok(())
    })();
    // What was made before the end (or a failure) is output, as ClamAV's
    // buffer is.
    out.write_all(&pending)?;
    result
}
