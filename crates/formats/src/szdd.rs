//! Files compressed by Microsoft's `COMPRESS.EXE` (`SZDD`, expanded by
//! `EXPAND.EXE`), as ClamAV's `msexpand.c` expands them.
//!
//! The format is a 14-byte header (magic, mode `A`, the last character of
//! the original name, the original size) and LZSS: a flag byte for each
//! eight items, a set bit a literal byte, a clear one a 12-bit position in a
//! 4 KiB window (which starts zeroed, writing at 4096 - 16) and a 4-bit
//! length of 3 to 18.
//!
//! As ClamAV: a header whose name character is not 0 is not expanded; the
//! output is written in 2 KiB pieces and stops at the first piece boundary
//! at or past the declared size (so it may be longer than declared, and a
//! file that declares too little is cut there); otherwise the input's end is
//! the output's end, with what was made so far. The KWAJ variant is not a
//! type ClamAV recognizes, and is not opened here either.

use std::io::{self, Write};

use crate::source::ReadAt;
use crate::walk::{Body, FormatError, Member, Problem, Visitor, visit};

const MAGIC: [u8; 8] = *b"SZDD\x88\xf0\x27\x33";
const HEADER: u64 = 14;
const WINDOW: usize = 4096;
/// Output is written, and checked against the declared size, in pieces of
/// this size.
const PIECE: usize = 2048;

/// Walks the one member of the SZDD file in `src`: its expanded content.
pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let mut h = [0u8; HEADER as usize];
    if src.size() < HEADER || src.read_exact_at(&mut h, 0).is_err() {
        visitor.problem(Problem::Broken {
            member: None,
            detail: "SZDD: header cut short".into(),
        });
        return Ok(());
    }
    if h[..8] != MAGIC || h[8] != b'A' || h[9] != 0 {
        visitor.problem(Problem::Unsupported {
            member: String::new(),
            detail: format!(
                "SZDD: mode {:#04x}, name character {:#04x} (ClamAV expands only mode A without one)",
                h[8], h[9]
            ),
        });
        return Ok(());
    }
    let declared = u32::from_le_bytes([h[10], h[11], h[12], h[13]]);
    let mut m = Member::new(
        String::new(),
        Body::Push(Box::new(move |out: &mut dyn Write| {
            expand(src, declared, out)
        })),
    );
    m.stream = true;
    m.declared_size = Some(u64::from(declared));
    m.packed_size = Some(src.size() - HEADER);
    visit(visitor, &mut m);
    Ok(())
}

/// Reads the input after the header, 2 KiB at a time.
struct Input<'a> {
    src: &'a dyn ReadAt,
    at: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl Input<'_> {
    fn next(&mut self) -> io::Result<Option<u8>> {
        if self.pos == self.buf.len() {
            self.buf.resize(PIECE, 0);
            let n = self.src.read_at(&mut self.buf, self.at)?;
            self.buf.truncate(n);
            self.at += n as u64;
            self.pos = 0;
            if n == 0 {
                return Ok(None);
            }
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(Some(b))
    }
}

/// Output in 2 KiB pieces; `Done` once the declared size was reached at a
/// piece boundary.
struct Output<'o> {
    out: &'o mut dyn Write,
    piece: Vec<u8>,
    written: u64,
    declared: u64,
}

enum Step {
    More,
    Done,
}

impl Output<'_> {
    fn push(&mut self, b: u8) -> io::Result<Step> {
        if self.piece.len() == PIECE {
            self.out.write_all(&self.piece)?;
            self.written += PIECE as u64;
            self.piece.clear();
            if self.written >= self.declared {
                return Ok(Step::Done);
            }
        }
        self.piece.push(b);
        Ok(Step::More)
    }
}

fn expand(src: &dyn ReadAt, declared: u32, out: &mut dyn Write) -> io::Result<()> {
    let mut input = Input {
        src,
        at: HEADER,
        buf: Vec::new(),
        pos: 0,
    };
    let mut o = Output {
        out,
        piece: Vec::with_capacity(PIECE),
        written: 0,
        declared: u64::from(declared),
    };
    let mut window = [0u8; WINDOW];
    let mut j = WINDOW - 16;
    'all: while let Some(flags) = input.next()? {
        for bit in 0..8 {
            if flags & (1 << bit) != 0 {
                let Some(b) = input.next()? else {
                    break 'all;
                };
                if let Step::Done = o.push(b)? {
                    return Ok(());
                }
                window[j] = b;
                j = (j + 1) % WINDOW;
            } else {
                let Some(lo) = input.next()? else {
                    break 'all;
                };
                let Some(hi) = input.next()? else {
                    break 'all;
                };
                let mut k = usize::from(lo) | usize::from(hi & 0xf0) << 4;
                for _ in 0..usize::from(hi & 0x0f) + 3 {
                    let b = window[k];
                    if let Step::Done = o.push(b)? {
                        return Ok(());
                    }
                    window[j] = b;
                    k = (k + 1) % WINDOW;
                    j = (j + 1) % WINDOW;
                }
            }
        }
    }
    o.out.write_all(&o.piece)
}
