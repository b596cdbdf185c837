//! Compiled AutoIt scripts (`AU3!EA05` and `AU3!EA06`), as ClamAV's
//! `autoit.c` extracts them from the data the embedded-file search found in
//! an executable: the script and the files it installs (`FileInstall`).
//!
//! Each entry is a tag, two encrypted strings (its kind and original name)
//! and its data, encrypted with a seeded generator: a Mersenne twister
//! (EA05) or a lagged generator read through IEEE doubles (EA06). Data
//! marked compressed starts `EA05`/`EA06` and a big-endian size and is an
//! LZ77 bit stream (32 KiB window). An EA06 script (kind `>>>AUTOIT
//! SCRIPT<<<`) is a token stream, which ClamAV turns back into source text
//! (keywords, functions, numbers, strings, operators, one line per end of
//! line token) as this does; EA05 scripts are plain text already.
//!
//! Members are named `autoit.NNN`, as ClamAV's temporary files.

use std::io::{self, Read};

use crate::source::ReadAt;
use crate::walk::{Body, Flow, FormatError, Member, Problem, Visitor, visit};

/// AutoIt's keyword and function names, in the order of their token numbers.
const KEYWORDS: &str = include_str!("autoit_keywords.txt");
const FUNCTIONS: &str = include_str!("autoit_functions.txt");
/// Operator tokens 0x40..=0x58.
const OPERATORS: [&str; 25] = [
    ",", "=", ">", "<", "<>", ">=", "<=", "(", ")", "+", "-", "/", "*", "&", "[", "]", "==", "^",
    "+=", "-=", "/=", "*=", "&=", "?", ":",
];
/// The largest EA06 script decompiled (it is decompressed whole first).
const MAX_SCRIPT: u64 = 64 << 20;

fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
}

/// The EA05 generator: a Mersenne twister with AutoIt's seeding.
struct Mt {
    mt: [u32; 624],
    next: usize,
    items: u32,
}

impl Mt {
    fn new(seed: u32) -> Mt {
        let mut mt = [0u32; 624];
        mt[0] = seed;
        for i in 1..624 {
            mt[i] =
                (i as u32).wrapping_add(0x6c07_8965u32.wrapping_mul((mt[i - 1] >> 30) ^ mt[i - 1]));
        }
        Mt {
            mt,
            next: 0,
            items: 1,
        }
    }

    fn byte(&mut self) -> u8 {
        self.items -= 1;
        if self.items == 0 {
            let mt = &mut self.mt;
            let mix = |a: u32, b: u32, c: u32| {
                ((((a ^ b) & 0x7fff_fffe) ^ a) >> 1) ^ (0u32.wrapping_sub(b & 1) & 0x9908_b0df) ^ c
            };
            for i in 0..227 {
                mt[i] = mix(mt[i], mt[i + 1], mt[i + 397]);
            }
            for i in 227..623 {
                mt[i] = mix(mt[i], mt[i + 1], mt[i - 227]);
            }
            mt[623] = mix(mt[623], mt[0], mt[396]);
            self.items = 624;
            self.next = 0;
        }
        let mut r = self.mt[self.next];
        self.next += 1;
        r ^= r >> 11;
        r ^= (r & 0xff3a_58ad) << 7;
        r ^= (r & 0xffff_df8c) << 15;
        r ^= r >> 18;
        (r >> 1) as u8
    }
}

fn mt_decrypt(buf: &mut [u8], seed: u32) {
    let mut mt = Mt::new(seed);
    for b in buf {
        *b ^= mt.byte();
    }
}

/// The EA06 generator.
struct Lame {
    c0: usize,
    c1: usize,
    grp: [u32; 17],
}

impl Lame {
    fn new(seed: u16) -> Lame {
        let mut seed = u32::from(seed);
        let mut grp = [0u32; 17];
        for g in &mut grp {
            seed = 1u32.wrapping_sub(seed.wrapping_mul(0x53a9_b4fb));
            *g = seed;
        }
        let mut l = Lame { c0: 0, c1: 10, grp };
        for _ in 0..9 {
            l.step();
        }
        l
    }

    fn step(&mut self) -> f64 {
        let rolled = self.grp[self.c0]
            .rotate_left(9)
            .wrapping_add(self.grp[self.c1].rotate_left(13));
        self.grp[self.c0] = rolled;
        self.c0 = if self.c0 == 0 { 16 } else { self.c0 - 1 };
        self.c1 = if self.c1 == 0 { 16 } else { self.c1 - 1 };
        let bits = (u64::from(0x3ff0_0000 | (rolled >> 12)) << 32) | u64::from(rolled << 20);
        f64::from_bits(bits) - 1.0
    }

    fn byte(&mut self) -> u8 {
        self.step();
        let x = self.step() * 256.0;
        if (x as i32) < 256 { x as u8 } else { 0xff }
    }
}

fn lame_decrypt(buf: &mut [u8], seed: u16) {
    let mut l = Lame::new(seed);
    for b in buf {
        *b ^= l.byte();
    }
}

/// ClamAV's `u2a`: UTF-16LE-looking text (a byte-order mark, or at least a
/// quarter of the first 10 units ASCII) made 8-bit in place; the new length.
fn u2a(buf: &mut [u8]) -> usize {
    let len = buf.len();
    if len < 2 {
        return len;
    }
    let (start, n) = if len > 4 && buf[0] == 0xff && buf[1] == 0xfe && buf[2] != 0 {
        (2, len - 2)
    } else {
        let j = if len > 20 { 20 } else { len & !1 };
        let cnt = (0..j)
            .step_by(2)
            .filter(|&i| buf[i] != 0 && buf[i + 1] == 0)
            .count();
        if cnt * 4 < j {
            return len;
        }
        (0, len)
    };
    let mut o = 0;
    let mut i = 0;
    while i < n {
        buf[o] = buf[start + i];
        o += 1;
        i += 2;
    }
    n >> 1
}

/// The LZ77 decoder of compressed entries, streaming with a 32 KiB window.
struct Unpack {
    input: Vec<u8>,
    pos: usize,
    bits: u32,
    avail: u32,
    error: bool,
    /// EA06 marks a match with a 0 bit, EA05 with a 1.
    match_bit: u32,
    size: u64,
    produced: u64,
    window: Vec<u8>,
    /// A match being copied: distance and bytes left.
    copy: Option<(usize, u64)>,
}

const WINDOW: usize = 1 << 15;

impl Unpack {
    fn new(input: Vec<u8>, size: u64, ea06: bool) -> Unpack {
        Unpack {
            input,
            pos: 8,
            bits: 0,
            avail: 0,
            error: false,
            match_bit: if ea06 { 0 } else { 1 },
            size,
            produced: 0,
            window: vec![0; WINDOW],
            copy: None,
        }
    }

    fn get(&mut self, n: u32) -> u32 {
        self.bits &= 0xffff;
        let left = self.input.len() - self.pos;
        if n > self.avail && (((n - self.avail - 1) / 16 + 1) * 2) as usize > left {
            self.error = true;
            return 0;
        }
        for _ in 0..n {
            if self.avail == 0 {
                let hi = u32::from(self.input[self.pos]);
                let lo = u32::from(self.input[self.pos + 1]);
                self.pos += 2;
                self.bits |= (hi << 8) | lo;
                self.avail = 16;
            }
            self.bits <<= 1;
            self.avail -= 1;
        }
        self.bits >> 16
    }

    fn put(&mut self, b: u8) -> u8 {
        self.window[self.produced as usize % WINDOW] = b;
        self.produced += 1;
        b
    }

    /// The next output byte, or `None` at the end (or on corrupt data,
    /// after what was good).
    fn next_byte(&mut self) -> Option<u8> {
        if let Some((dist, left)) = self.copy {
            let from = if dist == 0 {
                0 // ClamAV copies a byte it never wrote
            } else {
                self.window[(self.produced as usize - dist) % WINDOW]
            };
            self.copy = (left > 1).then_some((dist, left - 1));
            return Some(self.put(from));
        }
        if self.error || self.produced >= self.size {
            return None;
        }
        if self.get(1) == self.match_bit {
            let dist = self.get(15);
            let mut len = self.get(2);
            let mut add = 0u32;
            if len == 3 {
                add = 3;
                len = self.get(3);
                if len == 7 {
                    add = 10;
                    len = self.get(5);
                    if len == 31 {
                        add = 41;
                        len = self.get(8);
                        if len == 255 {
                            add = 296;
                            loop {
                                len = self.get(8);
                                if len != 255 {
                                    break;
                                }
                                add += 255;
                            }
                        }
                    }
                }
            }
            let len = u64::from(len) + 3 + u64::from(add);
            if self.error || self.produced + len > self.size || u64::from(dist) > self.produced {
                self.error = true;
                return None;
            }
            self.copy = Some((dist as usize, len));
            self.next_byte()
        } else {
            // A literal is written even when its bits ran out, as ClamAV does.
            let b = self.get(8) as u8;
            Some(self.put(b))
        }
    }
}

impl Read for Unpack {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.next_byte() {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
        Ok(n)
    }
}

/// C's `printf("%g", x)`.
fn fmt_g(x: f64) -> String {
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let e = format!("{x:.5e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let strip = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if (-4..6).contains(&exp) {
        let prec = (5 - exp) as usize;
        strip(&format!("{x:.prec$}"))
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip(mant), exp.unsigned_abs())
    }
}

/// An EA06 script's tokens as ClamAV writes them out.
fn decompile(data: &mut [u8]) -> Vec<u8> {
    if data.len() < 4 {
        return Vec::new();
    }
    let keywords: Vec<&str> = KEYWORDS.lines().collect();
    let functions: Vec<&str> = FUNCTIONS.lines().collect();
    let size = data.len();
    let mut out = Vec::new();
    let mut at = 4usize;
    let mut lines = le32(data, 0);
    while lines != 0 && at < size {
        let op = data[at];
        at += 1;
        match op {
            0 | 1 => {
                if at >= size - 4 {
                    break;
                }
                let id = le32(data, at) as usize;
                let table = if op == 0 { &keywords } else { &functions };
                let Some(word) = table.get(id) else { break };
                at += 4;
                out.extend_from_slice(word.as_bytes());
                out.push(b' ');
            }
            5 => {
                if at >= size - 4 {
                    break;
                }
                out.extend_from_slice(format!("0x{:08x} ", le32(data, at)).as_bytes());
                at += 4;
            }
            0x10 | 0x20 => {
                if size < 8 || at >= size - 8 {
                    break;
                }
                let v = (u64::from(le32(data, at + 4)) << 32) | u64::from(le32(data, at));
                let text = if op == 0x10 {
                    format!("0x{v:016x} ")
                } else {
                    format!("{} ", fmt_g(f64::from_bits(v)))
                };
                out.extend_from_slice(text.as_bytes());
                at += 8;
            }
            0x30..=0x37 => {
                if at >= size - 4 {
                    break;
                }
                let chars = le32(data, at);
                // ClamAV's 32-bit `chars * 2` wraps and it then copies `chars`
                // bytes past its buffer: such a length ends the script here.
                let dchars = chars.wrapping_mul(2) as usize;
                at += 4;
                if size < dchars || at >= size - dchars || chars > 0x7fff_ffff {
                    break;
                }
                let prefix = [0, 0, b'@', b'$', 0, b'.', b'"', 0][usize::from(op - 0x30)];
                if prefix != 0 {
                    out.push(prefix);
                }
                if chars != 0 {
                    let s = &mut data[at..at + dchars];
                    for pair in s.chunks_exact_mut(2) {
                        pair[0] ^= chars as u8;
                        pair[1] ^= (chars >> 8) as u8;
                    }
                    u2a(s);
                    out.extend_from_slice(&s[..chars as usize]);
                    at += dchars;
                }
                if op == 0x36 {
                    out.push(b'"');
                }
                if op != 0x34 {
                    out.push(b' ');
                }
            }
            0x40..=0x58 => {
                out.extend_from_slice(OPERATORS[usize::from(op - 0x40)].as_bytes());
                out.push(b' ');
            }
            0x7f => {
                lines = lines.wrapping_sub(1);
                out.push(b'\n');
            }
            _ => break,
        }
    }
    out
}

fn read_at(src: &dyn ReadAt, at: u64, n: usize) -> Option<Vec<u8>> {
    // Checked against the input before allocating: `n` comes from the file.
    if at.checked_add(n as u64)? > src.size() {
        return None;
    }
    let mut b = vec![0u8; n];
    src.read_exact_at(&mut b, at).ok()?;
    Some(b)
}

/// Walks compiled AutoIt data: `src` starts with the 16-byte signature and
/// `AU3!EA05` or `AU3!EA06`.
pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let Some(version) = read_at(src, 23, 1) else {
        visitor.problem(Problem::Broken {
            member: None,
            detail: "AutoIt: no version byte".into(),
        });
        return Ok(());
    };
    let ea06 = match version[0] {
        b'5' => false,
        b'6' => true,
        v => {
            visitor.problem(Problem::Unsupported {
                member: String::new(),
                detail: format!("AutoIt version byte {v:#x}"),
            });
            return Ok(());
        }
    };
    let mut at = 24u64;
    let mut sum = 0u32;
    if ea06 {
        at += 16;
    } else {
        let Some(key) = read_at(src, at, 16) else {
            return Ok(());
        };
        sum = key.iter().map(|&b| u32::from(b)).sum();
        at += 16;
    }
    let (tag, k1, k2, kc) = if ea06 {
        (0x52ca_436bu32, 0xadbcu32, 0xf820u32, 0x87bcu32)
    } else {
        (0xceb0_6dff, 0x29bc, 0x29ac, 0x45aa)
    };
    let mut files = 0u32;
    // Bounded: every entry moves `at` forward by at least 41 bytes.
    loop {
        let Some(h) = read_at(src, at, 8) else {
            return Ok(());
        };
        if le32(&h, 0) != tag {
            return Ok(());
        }
        let s = le32(&h, 4) ^ k1;
        at += 8;
        let mut script = false;
        if ea06 {
            if (s.wrapping_mul(2) as i32) < 0 {
                return Ok(());
            }
            if s < 300 {
                let Some(mut b) = read_at(src, at, s as usize * 2) else {
                    return Ok(());
                };
                lame_decrypt(&mut b, s.wrapping_add(0xb33f) as u16);
                let n = u2a(&mut b);
                script = s == 19 && b[..n.min(19)] == *b">>>AUTOIT SCRIPT<<<";
            }
            at += u64::from(s) * 2;
        } else {
            if (s as i32) < 0 {
                return Ok(());
            }
            at += u64::from(s);
        }
        let Some(h) = read_at(src, at, 4) else {
            return Ok(());
        };
        let s = le32(&h, 0) ^ k2;
        let skip = if ea06 {
            if (s.wrapping_mul(2) as i32) < 0 {
                return Ok(());
            }
            u64::from(s) * 2
        } else {
            if (s as i32) < 0 {
                return Ok(());
            }
            u64::from(s)
        };
        at += 4 + skip;
        let Some(h) = read_at(src, at, 13) else {
            return Ok(());
        };
        let compressed = h[0] == 1;
        let csize = le32(&h, 1) ^ kc;
        if (csize as i32) < 0 {
            return Ok(());
        }
        at += 13 + 16;
        if csize == 0 || (compressed && csize < 4) {
            continue;
        }
        if ea06 {
            files += 1;
        }
        let Some(mut data) = read_at(src, at, csize as usize) else {
            visitor.problem(Problem::Broken {
                member: None,
                detail: format!("AutoIt: entry data at {at} runs past the end"),
            });
            return Ok(());
        };
        at += u64::from(csize);
        if ea06 {
            lame_decrypt(&mut data, 0x2477);
        } else {
            mt_decrypt(&mut data, 0x22af_u32.wrapping_add(sum));
        }
        let magic = if ea06 { 0x3630_4145 } else { 0x3530_4145 };
        if compressed && le32(&data, 0) != magic {
            continue;
        }
        if !ea06 {
            files += 1;
        }
        let name = format!("autoit.{files:03}");
        if compressed && data.len() < 8 {
            continue; // no room for the size (ClamAV reads past its buffer)
        }
        let body: Box<dyn Read> = if compressed {
            let declared = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
            let size = if declared == 0 { csize } else { declared };
            let unpack = Unpack::new(data, u64::from(size), ea06);
            if script {
                let mut text = Vec::new();
                let _ = unpack.take(MAX_SCRIPT).read_to_end(&mut text);
                if text.len() < 4 {
                    continue;
                }
                Box::new(io::Cursor::new(decompile(&mut text)))
            } else {
                Box::new(unpack)
            }
        } else if script {
            Box::new(io::Cursor::new(decompile(&mut data)))
        } else {
            Box::new(io::Cursor::new(data))
        };
        let mut m = Member::new(name, Body::Read(body));
        m.packed_size = Some(u64::from(csize));
        if visit(visitor, &mut m) == Flow::Stop {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_their_sizes() {
        assert_eq!(KEYWORDS.lines().count(), 45);
        assert_eq!(FUNCTIONS.lines().count(), 406);
        assert!(KEYWORDS.lines().all(|l| !l.is_empty()));
    }

    #[test]
    fn printf_g() {
        for (x, want) in [
            (1.0, "1"),
            (0.5, "0.5"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (123456789.0, "1.23457e+08"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (-2.5, "-2.5"),
            (1234.5678, "1234.57"),
        ] {
            assert_eq!(fmt_g(x), want, "{x}");
        }
    }

    #[test]
    fn string_lengths_that_wrap_end_the_script() {
        // One line: a string token of 0x80000001 characters (twice that
        // wraps to 2 in 32 bits), then 2 bytes. Found by fuzzing.
        let mut d = vec![1, 0, 0, 0, 0x36];
        d.extend_from_slice(&0x8000_0001u32.to_le_bytes());
        d.extend_from_slice(b"ab\x7f\x7f");
        assert_eq!(decompile(&mut d), b"");
        let mut d = vec![1, 0, 0, 0, 0x36];
        d.extend_from_slice(&2u32.to_le_bytes());
        d.extend_from_slice(&[b'h' ^ 2, 0, b'i' ^ 2, 0, 0x7f]);
        assert_eq!(decompile(&mut d), b"\"hi\" \n");
    }

    #[test]
    fn u2a_narrows_utf16() {
        let mut b = b"a\0b\0c\0".to_vec();
        assert_eq!(u2a(&mut b), 3);
        assert_eq!(&b[..3], b"abc");
        let mut b = b"abcdef".to_vec();
        assert_eq!(u2a(&mut b), 6);
        let mut b = b"\xff\xfea\0b\0".to_vec();
        assert_eq!(u2a(&mut b), 2);
        assert_eq!(&b[..2], b"ab");
    }
}
