//! NSIS's bzip2: the blocks of bzip2 (Huffman coded MTF symbols of a
//! Burrows-Wheeler transform, then bzip2's run-length coding) without the
//! stream header (blocks are always of up to 900 kB), with a one-byte block
//! magic `0x31` followed directly by the BWT origin (no block checksum, no
//! randomised bit), and a one-byte end marker `0x17`. The `bzip2` crate
//! cannot read it. Written from the bzip2 format; bounded throughout.

use std::io::{self, Read};

const BLOCK_MAX: usize = 900_000;
const MAX_GROUPS: usize = 6;
const MAX_ALPHA: usize = 258;
const MAX_CODE_LEN: u32 = 20;
const MAX_SELECTORS: usize = 18_002;
const GROUP_SIZE: usize = 50;

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("NSIS bzip2: {what}"))
}

/// Reads bits most significant first.
struct Bits<R> {
    inner: R,
    buf: u64,
    live: u32,
}

impl<R: Read> Bits<R> {
    fn bits(&mut self, n: u32) -> io::Result<u32> {
        while self.live < n {
            let mut b = [0u8; 1];
            if self.inner.read(&mut b)? == 0 {
                return Err(bad("data ends inside a block"));
            }
            self.buf = (self.buf << 8) | u64::from(b[0]);
            self.live += 8;
        }
        self.live -= n;
        Ok(((self.buf >> self.live) & ((1u64 << n) - 1)) as u32)
    }

    fn bit(&mut self) -> io::Result<bool> {
        Ok(self.bits(1)? == 1)
    }
}

/// One Huffman table, canonical, decoded by length.
struct Table {
    min: u32,
    limit: [i32; 21],
    base: [i32; 21],
    perm: [u16; MAX_ALPHA],
}

impl Table {
    fn new(lens: &[u8]) -> Table {
        let min = lens.iter().copied().min().unwrap_or(1) as u32;
        let max = lens.iter().copied().max().unwrap_or(1) as u32;
        let mut perm = [0u16; MAX_ALPHA];
        let mut pp = 0;
        for l in min..=max {
            for (s, &len) in lens.iter().enumerate() {
                if u32::from(len) == l {
                    perm[pp] = s as u16;
                    pp += 1;
                }
            }
        }
        let mut count = [0i32; 23];
        for &l in lens {
            count[usize::from(l) + 1] += 1;
        }
        for i in 1..23 {
            count[i] += count[i - 1];
        }
        let mut limit = [0i32; 21];
        let mut base = [0i32; 21];
        let mut vec = 0i32;
        for i in min..=max {
            let i = i as usize;
            vec += count[i + 1] - count[i];
            limit[i] = vec - 1;
            vec <<= 1;
        }
        for i in (min as usize + 1)..=(max as usize) {
            base[i] = ((limit[i - 1] + 1) << 1) - count[i];
        }
        // Past the longest code nothing matches: the code is bad.
        for l in limit.iter_mut().skip(max as usize + 1) {
            *l = -1;
        }
        Table {
            min,
            limit,
            base,
            perm,
        }
    }
}

/// A decoder of NSIS bzip2 data.
pub(super) struct Decoder<R> {
    bits: Bits<R>,
    /// The inverse BWT: byte in the low 8 bits, next index above.
    tt: Vec<u32>,
    pos: u32,
    left: usize,
    // bzip2's final run-length stage.
    last: i32,
    same: u32,
    repeat: u32,
    repeat_byte: u8,
    ended: bool,
}

impl<R: Read> Decoder<R> {
    pub(super) fn new(inner: R) -> Decoder<R> {
        Decoder {
            bits: Bits {
                inner,
                buf: 0,
                live: 0,
            },
            tt: Vec::new(),
            pos: 0,
            left: 0,
            last: -1,
            same: 0,
            repeat: 0,
            repeat_byte: 0,
            ended: false,
        }
    }

    /// Reads the next block; false at the end marker.
    fn block(&mut self) -> io::Result<bool> {
        let b = &mut self.bits;
        match b.bits(8)? {
            0x17 => return Ok(false),
            0x31 => {}
            _ => return Err(bad("bad block magic")),
        }
        let orig = b.bits(24)? as usize;
        if orig > 10 + BLOCK_MAX {
            return Err(bad("bad origin"));
        }
        let used16 = b.bits(16)?;
        let mut unseq = Vec::with_capacity(256);
        for i in 0..16 {
            if used16 & (0x8000 >> i) != 0 {
                let m = b.bits(16)?;
                for j in 0..16 {
                    if m & (0x8000 >> j) != 0 {
                        unseq.push((i * 16 + j) as u8);
                    }
                }
            }
        }
        if unseq.is_empty() {
            return Err(bad("no symbols in use"));
        }
        let alpha = unseq.len() + 2;
        let groups = b.bits(3)? as usize;
        if !(2..=MAX_GROUPS).contains(&groups) {
            return Err(bad("bad table count"));
        }
        let nsel = b.bits(15)? as usize;
        if nsel == 0 || nsel > MAX_SELECTORS {
            return Err(bad("bad selector count"));
        }
        let mut mtf: Vec<u8> = (0..groups as u8).collect();
        let mut selectors = Vec::with_capacity(nsel);
        for _ in 0..nsel {
            let mut j = 0;
            while b.bit()? {
                j += 1;
                if j >= groups {
                    return Err(bad("bad selector"));
                }
            }
            let v = mtf[j];
            mtf.copy_within(0..j, 1);
            mtf[0] = v;
            selectors.push(v);
        }
        let mut tables = Vec::with_capacity(groups);
        for _ in 0..groups {
            let mut lens = vec![0u8; alpha];
            let mut curr = b.bits(5)?;
            for len in lens.iter_mut() {
                loop {
                    if !(1..=MAX_CODE_LEN).contains(&curr) {
                        return Err(bad("bad code length"));
                    }
                    if !b.bit()? {
                        break;
                    }
                    if b.bit()? {
                        curr -= 1;
                    } else {
                        curr += 1;
                    }
                }
                *len = curr as u8;
            }
            tables.push(Table::new(&lens));
        }
        // The MTF symbols, runs of the front symbol coded as RUNA/RUNB.
        let eob = alpha - 1;
        let mut yy: Vec<u8> = (0..=255u8).collect();
        let mut counts = [0u32; 256];
        let mut ll: Vec<u8> = Vec::new();
        let mut group = 0usize;
        let mut left_in_group = 0usize;
        let mut table = 0usize;
        let mut next = |b: &mut Bits<R>| -> io::Result<usize> {
            if left_in_group == 0 {
                let Some(&sel) = selectors.get(group) else {
                    return Err(bad("out of selectors"));
                };
                group += 1;
                left_in_group = GROUP_SIZE;
                table = usize::from(sel);
            }
            left_in_group -= 1;
            let t = &tables[table];
            let mut n = t.min;
            let mut v = b.bits(n)? as i32;
            while v > t.limit[n as usize] {
                n += 1;
                if n > MAX_CODE_LEN {
                    return Err(bad("bad code"));
                }
                v = (v << 1) | b.bits(1)? as i32;
            }
            let idx = v - t.base[n as usize];
            if !(0..MAX_ALPHA as i32).contains(&idx) {
                return Err(bad("bad code"));
            }
            Ok(usize::from(t.perm[idx as usize]))
        };
        let mut sym = next(&mut self.bits)?;
        loop {
            if sym == eob {
                break;
            }
            if sym <= 1 {
                let mut run = 0usize;
                let mut weight = 1usize;
                while sym <= 1 {
                    run += weight << sym;
                    weight <<= 1;
                    if weight > 2 << 20 {
                        return Err(bad("run too long"));
                    }
                    sym = next(&mut self.bits)?;
                }
                let c = unseq[usize::from(yy[0]).min(unseq.len() - 1)];
                if ll.len() + run > BLOCK_MAX {
                    return Err(bad("block too long"));
                }
                counts[usize::from(c)] += run as u32;
                ll.resize(ll.len() + run, c);
                continue;
            }
            if ll.len() >= BLOCK_MAX {
                return Err(bad("block too long"));
            }
            let nn = sym - 1;
            if nn >= unseq.len() {
                return Err(bad("bad symbol"));
            }
            let v = yy[nn];
            yy.copy_within(0..nn, 1);
            yy[0] = v;
            let c = unseq[usize::from(v).min(unseq.len() - 1)];
            counts[usize::from(c)] += 1;
            ll.push(c);
            sym = next(&mut self.bits)?;
        }
        if orig >= ll.len() {
            return Err(bad("origin outside the block"));
        }
        // Inverse BWT.
        let mut start = [0u32; 256];
        let mut sum = 0u32;
        for (s, c) in start.iter_mut().zip(counts.iter()) {
            *s = sum;
            sum += c;
        }
        self.tt.clear();
        self.tt.resize(ll.len(), 0);
        for (i, &c) in ll.iter().enumerate() {
            self.tt[i] |= u32::from(c);
            let at = start[usize::from(c)] as usize;
            start[usize::from(c)] += 1;
            self.tt[at] |= (i as u32) << 8;
        }
        self.pos = self.tt[orig] >> 8;
        self.left = ll.len();
        self.last = -1;
        self.same = 0;
        Ok(true)
    }

    /// The next byte of the BWT output, before the final run-length stage.
    fn bwt_byte(&mut self) -> Option<u8> {
        if self.left == 0 {
            return None;
        }
        let e = *self.tt.get(self.pos as usize)?;
        self.pos = e >> 8;
        self.left -= 1;
        Some(e as u8)
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < out.len() {
            if self.repeat > 0 {
                out[n] = self.repeat_byte;
                n += 1;
                self.repeat -= 1;
                continue;
            }
            let Some(b) = self.bwt_byte() else {
                if self.ended || n > 0 {
                    break;
                }
                if !self.block()? {
                    self.ended = true;
                    break;
                }
                continue;
            };
            if self.same == 4 {
                // A count of further copies of the byte just repeated.
                self.repeat = u32::from(b);
                self.same = 0;
                continue;
            }
            if i32::from(b) == self.last {
                self.same += 1;
            } else {
                self.same = 1;
                self.last = i32::from(b);
            }
            self.repeat_byte = b;
            out[n] = b;
            n += 1;
        }
        Ok(n)
    }
}
