//! A PKZIP implode (zip method 6) writer and a zip writer, shared by
//! aether-formats' implode tests and the engine's clamscan differential.
//!
//! The code tables are flat (every length or distance code 6 bits, every
//! literal code 8 bits), which any decoder must take; matches are found
//! greedily through a hash of two bytes.

#![allow(dead_code)]

use std::collections::HashMap;

/// LSB-first bits.
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, v: u32, n: u32) {
        self.acc |= u64::from(v) << self.n;
        self.n += n;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Shannon-Fano code, first bit its most significant.
    fn code(&mut self, code: u32, len: u32) {
        for i in (0..len).rev() {
            self.put(code >> i & 1, 1);
        }
    }
}

/// A table of `n` codes all `len` bits long, as runs of 16.
fn flat_table(n: usize, len: u8) -> Vec<u8> {
    let runs = n / 16;
    let mut t = vec![(runs - 1) as u8];
    t.extend(std::iter::repeat_n(0xf0 | (len - 1), runs));
    t
}

/// `data` imploded: `large` for the 8 KiB window (flag bit 1), `lits` for
/// coded literals (flag bit 2).
pub fn implode(data: &[u8], large: bool, lits: bool) -> Vec<u8> {
    let mut b = Bits {
        out: Vec::new(),
        acc: 0,
        n: 0,
    };
    if lits {
        b.out.extend(flat_table(256, 8));
    }
    b.out.extend(flat_table(64, 6));
    b.out.extend(flat_table(64, 6));
    let low_bits = if large { 7 } else { 6 };
    let window = if large { 8192 } else { 4096 };
    let min = if lits { 3 } else { 2 };
    let max = min + 63 + 255;
    let mut heads: HashMap<[u8; 2], Vec<usize>> = HashMap::new();
    let mut i = 0;
    while i < data.len() {
        let mut best = (0, 0);
        if i + 2 <= data.len()
            && let Some(c) = heads.get(&[data[i], data[i + 1]])
        {
            for &p in c.iter().rev().take(32) {
                if i - p > window {
                    break;
                }
                let mut n = 0;
                while n < max && i + n < data.len() && data[p + n] == data[i + n] {
                    n += 1;
                }
                if n > best.1 {
                    best = (i - p, n);
                }
            }
        }
        let take = if best.1 >= min {
            let d = best.0 - 1;
            b.put(0, 1);
            b.put((d & ((1 << low_bits) - 1)) as u32, low_bits);
            // Symbol s of a flat 6-bit table has the code 63 - s.
            b.code(63 - (d >> low_bits) as u32, 6);
            let l = best.1 - min;
            if l >= 63 {
                b.code(0, 6);
                b.put((l - 63) as u32, 8);
            } else {
                b.code(63 - l as u32, 6);
            }
            best.1
        } else {
            b.put(1, 1);
            if lits {
                b.code(255 - u32::from(data[i]), 8);
            } else {
                b.put(u32::from(data[i]), 8);
            }
            1
        };
        for p in i..i + take {
            if p + 2 <= data.len() {
                heads.entry([data[p], data[p + 1]]).or_default().push(p);
            }
        }
        i += take;
    }
    if b.n > 0 {
        b.out.push(b.acc as u8);
    }
    b.out
}

/// A member of [`zip`]: name, original data, method, packed data, flags.
pub struct Entry<'a> {
    pub name: &'a str,
    pub data: &'a [u8],
    pub method: u16,
    pub packed: Vec<u8>,
    pub flags: u16,
}

/// An imploded member.
pub fn imploded<'a>(name: &'a str, data: &'a [u8], large: bool, lits: bool) -> Entry<'a> {
    Entry {
        name,
        data,
        method: 6,
        packed: implode(data, large, lits),
        flags: u16::from(large) << 1 | u16::from(lits) << 2,
    }
}

/// A zip of `entries`.
pub fn zip(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let mut crc = flate2::Crc::new();
        crc.update(e.data);
        let offset = out.len() as u32;
        let header = |sig: u32, h: &mut Vec<u8>, central: bool| {
            h.extend_from_slice(&sig.to_le_bytes());
            if central {
                h.extend_from_slice(&10u16.to_le_bytes());
            }
            for v in [10u16, e.flags, e.method, 0, 0] {
                h.extend_from_slice(&v.to_le_bytes());
            }
            for v in [crc.sum(), e.packed.len() as u32, e.data.len() as u32] {
                h.extend_from_slice(&v.to_le_bytes());
            }
            h.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
        };
        header(0x0403_4b50, &mut out, false);
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(&e.packed);
        header(0x0201_4b50, &mut central, true);
        for v in [0u16, 0, 0] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        central.extend_from_slice(&0u32.to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(e.name.as_bytes());
    }
    let cd = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, entries.len() as u16, entries.len() as u16] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}
