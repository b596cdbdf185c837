//! Builds UPX-packed PE files without UPX (Debian 12 has no `upx-ucl`):
//! NRV2B, NRV2D and NRV2E encoders written from the bit streams the UPX
//! stubs decode, an LZMA variant through `lzma-rs`, and a PE laid out as
//! UPX lays it out: an empty `UPX0`, the compressed data and the stub in
//! `UPX1`, and after the decompressed program the original PE header, which
//! is where the unpacker finds it. Included by path by the engine's
//! clamscan differential as well.

#![allow(dead_code)] // Each test binary uses a different subset.

/// How the program is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Nrv2b,
    Nrv2d,
    Nrv2e,
    Lzma,
}

pub const METHODS: [Method; 4] = [Method::Nrv2b, Method::Nrv2d, Method::Nrv2e, Method::Lzma];

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Nrv2b => "nrv2b",
            Method::Nrv2d => "nrv2d",
            Method::Nrv2e => "nrv2e",
            Method::Lzma => "lzma",
        }
    }
}

/// The bit stream of the NRV formats: 32-bit little-endian words read from
/// the top bit down, each taken from the byte stream when its first bit is
/// needed, between the literal and offset bytes.
struct BitWriter {
    out: Vec<u8>,
    word_at: usize,
    word: u32,
    used: u32,
}

impl BitWriter {
    fn new() -> Self {
        BitWriter {
            out: Vec::new(),
            word_at: 0,
            word: 0,
            used: 32,
        }
    }
    fn bit(&mut self, b: u32) {
        if self.used == 32 {
            self.flush_word();
            self.word_at = self.out.len();
            self.out.extend_from_slice(&[0; 4]);
            self.word = 0;
            self.used = 0;
        }
        self.word |= (b & 1) << (31 - self.used);
        self.used += 1;
    }
    fn flush_word(&mut self) {
        if self.out.len() >= self.word_at + 4 {
            self.out[self.word_at..self.word_at + 4].copy_from_slice(&self.word.to_le_bytes());
        }
    }
    fn byte(&mut self, b: u8) {
        self.out.push(b);
    }
    /// The "gamma" code of NRV2B (and of lengths everywhere): the bits of
    /// `v >= 2` after its top one, each followed by 1 for the last, else 0.
    fn gamma(&mut self, v: u32) {
        assert!(v >= 2);
        let top = 31 - v.leading_zeros();
        for i in (0..top).rev() {
            self.bit((v >> i) & 1);
            self.bit(u32::from(i == 0));
        }
    }
    /// The offset code of NRV2D/2E: `v = 2v + b`, then stop, or
    /// `v = 2(v - 1) + b'` and go on.
    fn gamma_de(&mut self, v: u32) {
        assert!(v >= 2);
        let mut bits = Vec::new();
        let mut u = v;
        // Walk back to a first value of 2 or 3; each step was
        // (continue, b2, b1).
        while u >= 4 {
            let b1 = u & 1;
            let s = u >> 1;
            let b2 = s & 1;
            bits.push([0, b2, b1]);
            u = (s >> 1) + 1;
        }
        self.bit(u & 1);
        for step in bits.iter().rev() {
            for &b in step {
                self.bit(b);
            }
        }
        self.bit(1);
    }
    fn finish(mut self) -> Vec<u8> {
        self.flush_word();
        self.out
    }
}

/// Compresses `data` for the NRV decompressor `m` (greedy LZ77).
pub fn nrv(m: Method, data: &[u8]) -> Vec<u8> {
    let mut w = BitWriter::new();
    let mut last_dist: usize = 1;
    let mut i = 0;
    let window = 0x4000usize;
    while i < data.len() {
        // The longest earlier match (at least 2 bytes, 3 for a new offset).
        let (mut best_len, mut best_dist) = (0usize, 0usize);
        let start = i.saturating_sub(window);
        for j in (start..i).rev() {
            let mut l = 0;
            while i + l < data.len() && data[j + l] == data[i + l] && l < 0x2000 {
                l += 1;
            }
            if l > best_len {
                best_len = l;
                best_dist = i - j;
            }
        }
        let far = match m {
            Method::Nrv2b => best_dist > 0xd00,
            _ => best_dist > 0x500,
        };
        let min = 3 + usize::from(far);
        if best_len < min {
            w.bit(1);
            w.byte(data[i]);
            i += 1;
            continue;
        }
        w.bit(0);
        let len = best_len;
        let reuse = best_dist == last_dist;
        match m {
            Method::Nrv2b => {
                if reuse {
                    w.gamma(2);
                } else {
                    let x = (best_dist - 1) as u32;
                    w.gamma((x >> 8) + 3);
                    w.byte(x as u8);
                }
                let mlen = (len - 1 - usize::from(far)) as u32;
                if mlen <= 3 {
                    w.bit(mlen >> 1);
                    w.bit(mlen & 1);
                } else {
                    w.bit(0);
                    w.bit(0);
                    w.gamma(mlen - 2);
                }
            }
            Method::Nrv2d => {
                let mlen = (len - 1 - usize::from(far)) as u32;
                let (first, rest) = if mlen <= 3 {
                    (mlen >> 1, Some(mlen & 1))
                } else {
                    (0, None)
                };
                if reuse {
                    w.gamma_de(2);
                    w.bit(first);
                } else {
                    let x = (2 * best_dist - 1) as u32 - first;
                    w.gamma_de((x >> 8) + 3);
                    w.byte(x as u8);
                }
                match rest {
                    Some(b) => w.bit(b),
                    None => {
                        w.bit(0);
                        w.gamma(mlen - 2);
                    }
                }
            }
            Method::Nrv2e => {
                let mlen = (len - 2 - usize::from(far)) as u32;
                let carry = u32::from(mlen <= 1);
                if reuse {
                    w.gamma_de(2);
                    w.bit(carry);
                } else {
                    let x = (2 * best_dist - 1) as u32 - carry;
                    w.gamma_de((x >> 8) + 3);
                    w.byte(x as u8);
                }
                if carry == 1 {
                    w.bit(mlen);
                } else if mlen <= 3 {
                    w.bit(1);
                    w.bit(mlen - 2);
                } else {
                    w.bit(0);
                    w.gamma(mlen - 2);
                }
            }
            Method::Lzma => unreachable!("not an NRV method"),
        }
        last_dist = best_dist;
        i += len;
    }
    // End of stream: an offset of 0xffffffff.
    w.bit(0);
    match m {
        Method::Nrv2b => w.gamma(0x00ff_ffff + 3),
        _ => w.gamma_de(0x00ff_ffff + 3),
    }
    w.byte(0xff);
    w.finish()
}

/// UPX's LZMA data: a 2-byte header, then a raw LZMA stream with
/// lc=3, lp=0, pb=2.
fn lzma(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let opts = lzma_rs::compress::Options {
        unpacked_size: lzma_rs::compress::UnpackedSize::WriteToHeader(Some(data.len() as u64)),
    };
    lzma_rs::lzma_compress_with_options(&mut &data[..], &mut out, &opts).expect("lzma");
    let mut v = vec![0u8, 0u8];
    v.extend_from_slice(&out[13..]);
    v
}

const IMAGE_BASE: u32 = 0x40_0000;
const UPX0_RVA: u32 = 0x1000;

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

/// A PE header (`PE\0\0` + file header + optional header, 0xf8 bytes) and
/// its section table.
fn pe_header(sections: &[(&[u8; 8], u32, u32, u32, u32)], ep: u32, image_size: u32) -> Vec<u8> {
    let mut h = vec![0u8; 0xf8 + 0x28 * sections.len()];
    h[..4].copy_from_slice(b"PE\0\0");
    put16(&mut h, 4, 0x14c);
    put16(&mut h, 6, sections.len() as u16);
    put16(&mut h, 20, 0xe0);
    put16(&mut h, 22, 0x10f);
    let o = 24;
    put16(&mut h, o, 0x10b);
    put32(&mut h, o + 16, ep);
    put32(&mut h, o + 28, IMAGE_BASE);
    put32(&mut h, o + 32, 0x1000);
    put32(&mut h, o + 36, 0x200);
    put16(&mut h, o + 40, 4);
    put16(&mut h, o + 48, 4);
    put32(&mut h, o + 56, image_size);
    put32(&mut h, o + 60, 0x400);
    put16(&mut h, o + 68, 2);
    put32(&mut h, o + 92, 16);
    for (i, (name, vsz, rva, rsz, raw)) in sections.iter().enumerate() {
        let s = 0xf8 + 0x28 * i;
        h[s..s + 8].copy_from_slice(*name);
        put32(&mut h, s + 8, *vsz);
        put32(&mut h, s + 12, *rva);
        put32(&mut h, s + 16, *rsz);
        put32(&mut h, s + 20, *raw);
        put32(&mut h, s + 36, 0xe000_0060);
    }
    h
}

/// The program that gets packed: one section of `code` at RVA 0x1000,
/// padded to `0x1000`s; what UPX compresses is that section followed by
/// the import records (none: a zero dword) and the program's PE header.
pub fn program(code: &[u8]) -> Vec<u8> {
    let vsz = (code.len() as u32).div_ceil(0x1000) * 0x1000;
    let mut data = code.to_vec();
    data.resize(vsz as usize, 0);
    data.extend_from_slice(&[0; 4]);
    data.extend_from_slice(&pe_header(
        &[(b".text\0\0\0", vsz, 0x1000, vsz, 0x400)],
        0x1000,
        0x1000 + vsz,
    ));
    data
}

/// A UPX-packed PE holding `code` as its program, compressed with `m`.
pub fn packed(m: Method, code: &[u8]) -> Vec<u8> {
    let prog = program(code);
    let imports = (prog.len() - 0xf8 - 0x28 - 4) as u32; // where the zero dword is
    let compressed = match m {
        Method::Lzma => lzma(&prog),
        _ => nrv(m, &prog),
    };
    // The stub, at the end of UPX1: what ClamAV looks at from the entry point.
    let mut stub = vec![0x90u8; 0xc00];
    stub[0] = 0x60; // pusha
    stub[1] = 0xbe; // mov esi, UPX1 start
    let upx0_vsz = ((prog.len() as u32).div_ceil(0x1000) + 1) * 0x1000;
    let upx1_rva = UPX0_RVA + upx0_vsz;
    put32(&mut stub, 2, IMAGE_BASE + upx1_rva);
    let magic = match m {
        Method::Nrv2b => 0x108,
        Method::Nrv2d => 0x11c,
        Method::Nrv2e => 0x128,
        Method::Lzma => 0xb16,
    };
    match m {
        Method::Nrv2b => stub[0x69..0x69 + 24].copy_from_slice(
            b"\x11\xdb\x11\xc9\x01\xdb\x75\x07\x8b\x1e\x83\xee\xfc\x11\xdb\x11\xc9\x11\xc9\x75\x20\x41\x01\xdb",
        ),
        Method::Nrv2d => stub[0x69..0x69 + 24].copy_from_slice(
            b"\x83\xf0\xff\x74\x78\xd1\xf8\x89\xc5\xeb\x0b\x01\xdb\x75\x07\x8b\x1e\x83\xee\xfc\x11\xdb\x11\xc9",
        ),
        Method::Nrv2e => stub[0x69..0x69 + 24].copy_from_slice(
            b"\xeb\x52\x31\xc9\x83\xe8\x03\x72\x11\xc1\xe0\x08\x8a\x06\x46\x83\xf0\xff\x74\x75\xd1\xf8\x89\xc5",
        ),
        Method::Lzma => {
            stub[0x2f..0x2f + 20].copy_from_slice(
                b"\x56\x83\xc3\x04\x53\x50\xc7\x03\x03\x00\x02\x00\x90\x90\x90\x90\x90\x55\x57\x56",
            );
            put32(&mut stub, 0x21, prog.len() as u32);
        }
    }
    // lea edi, [esi + imports]
    stub[magic - 2] = 0x8d;
    stub[magic - 1] = 0xbe;
    put32(&mut stub, magic, imports);

    let mut upx1 = compressed;
    let ep_off = upx1.len().div_ceil(16) * 16;
    upx1.resize(ep_off, 0);
    upx1.extend_from_slice(&stub);
    let upx1_rsz = (upx1.len() as u32).div_ceil(0x200) * 0x200;
    upx1.resize(upx1_rsz as usize, 0);
    let upx1_vsz = upx1_rsz.div_ceil(0x1000) * 0x1000;
    let header = pe_header(
        &[
            (b"UPX0\0\0\0\0", upx0_vsz, UPX0_RVA, 0, 0x400),
            (b"UPX1\0\0\0\0", upx1_vsz, upx1_rva, upx1_rsz, 0x400),
        ],
        upx1_rva + ep_off as u32,
        upx1_rva + upx1_vsz,
    );
    let mut file = vec![0u8; 0x400];
    file[..2].copy_from_slice(b"MZ");
    put32(&mut file, 60, 0x80);
    file[0x80..0x80 + header.len()].copy_from_slice(&header);
    file.extend_from_slice(&upx1);
    file
}

/// Program bytes: `parts` separated by compressible filler, so that every
/// kind of match (near, far, repeated offset, long) occurs.
pub fn code(parts: &[&[u8]]) -> Vec<u8> {
    let mut c = Vec::new();
    let mut x: u32 = 0x1234_5678;
    for (i, p) in parts.iter().enumerate() {
        // Text-like filler, some random bytes, then a repeat of both.
        let filler: Vec<u8> = (0..700 + 300 * i)
            .map(|k| b"push ebp; mov ebp, esp; "[k % 24])
            .collect();
        c.extend_from_slice(&filler);
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            c.push(x as u8);
        }
        let again = c[c.len() - 900..].to_vec();
        c.extend_from_slice(p);
        c.extend_from_slice(&again);
    }
    c
}

/// FSG's bit stream: bytes of 8 bits, top bit first, each taken from the
/// stream when its first bit is needed.
struct FsgBits {
    out: Vec<u8>,
    at: usize,
    used: u32,
}

impl FsgBits {
    fn bit(&mut self, b: u32) {
        if self.used == 8 {
            self.at = self.out.len();
            self.out.push(0);
            self.used = 0;
        }
        self.out[self.at] |= ((b & 1) as u8) << (7 - self.used);
        self.used += 1;
    }
    /// FSG's gamma code: the bits of `v >= 2` after its top one, each
    /// followed by 1 when more follow, else 0.
    fn gamma(&mut self, v: u32) {
        assert!(v >= 2);
        let top = 31 - v.leading_zeros();
        for i in (0..top).rev() {
            self.bit((v >> i) & 1);
            self.bit(u32::from(i != 0));
        }
    }
}

/// Compresses `data` in FSG's format (literals and long matches only).
pub fn fsg(data: &[u8]) -> Vec<u8> {
    let mut w = FsgBits {
        out: vec![data[0]],
        at: 0,
        used: 8,
    };
    let mut lostbit = 1u32;
    let mut i = 1;
    while i < data.len() {
        let (mut best_len, mut best_off) = (0usize, 0usize);
        for j in (i.saturating_sub(0x4000)..i).rev() {
            let mut l = 0;
            while i + l < data.len() && data[j + l] == data[i + l] && l < 0x1000 {
                l += 1;
            }
            if l > best_len {
                best_len = l;
                best_off = i - j;
            }
        }
        let adj = usize::from(best_off >= 0x7d00)
            + usize::from(best_off >= 0x500)
            + 2 * usize::from(best_off <= 0x7f);
        if best_len < 4 || best_len < adj + 2 {
            w.bit(0);
            w.out.push(data[i]);
            lostbit = 1;
            i += 1;
            continue;
        }
        w.bit(1);
        w.bit(0);
        let g = (best_off as u32 >> 8) + 1;
        w.gamma(g + 1 + lostbit);
        w.out.push(best_off as u8);
        w.gamma((best_len - adj) as u32);
        lostbit = 0;
        i += best_len;
    }
    // End: a short match of offset 0.
    w.bit(1);
    w.bit(1);
    w.bit(0);
    w.out.push(0);
    w.out
}

/// An FSG 2.0-packed PE holding `code` (one section at 0x1000): the empty
/// destination section, then the packed one with the compressed data, the
/// stub's stack table, its function table, and the stub (`xchg [ptr], esp`).
pub fn fsg_packed(code: &[u8]) -> Vec<u8> {
    let compressed = fsg(code);
    let dsize = ((code.len() as u32).div_ceil(0x1000) + 1) * 0x1000;
    let s1_rva = 0x1000 + dsize;
    let mut s1 = compressed;
    s1.resize(s1.len().div_ceil(16) * 16, 0);
    let table_at = s1.len() as u32;
    let funcs_at = table_at + 32;
    let ptr_at = funcs_at + 16;
    let ep_at = ptr_at + 16;
    s1.resize(ep_at as usize + 0x100, 0x90);
    let va = |off: u32| IMAGE_BASE + s1_rva + off;
    put32(&mut s1, table_at as usize, IMAGE_BASE + 0x1000); // edi
    put32(&mut s1, table_at as usize + 4, va(0)); // esi
    put32(&mut s1, table_at as usize + 16, va(funcs_at)); // ebx
    put32(&mut s1, funcs_at as usize + 12, IMAGE_BASE + 0x1000); // the old EP
    put32(&mut s1, ptr_at as usize, va(table_at));
    s1[ep_at as usize] = 0x87;
    s1[ep_at as usize + 1] = 0x25;
    put32(&mut s1, ep_at as usize + 2, va(ptr_at));
    let rsz = (s1.len() as u32).div_ceil(0x200) * 0x200;
    s1.resize(rsz as usize, 0);
    let vsz1 = rsz.div_ceil(0x1000) * 0x1000;
    let header = pe_header(
        &[
            (b"FSG!\0\0\0\0", dsize, 0x1000, 0, 0x400),
            (b"FSG!\0\0\0\0", vsz1, s1_rva, rsz, 0x400),
        ],
        s1_rva + ep_at,
        s1_rva + vsz1,
    );
    let mut file = vec![0u8; 0x400];
    file[..2].copy_from_slice(b"MZ");
    put32(&mut file, 60, 0x80);
    file[0x80..0x80 + header.len()].copy_from_slice(&header);
    file.extend_from_slice(&s1);
    file
}

/// An FSG 1.33-packed PE holding `parts` as its program's sections (each at
/// its own 0x1000-aligned RVA from 0x1000 on, one FSG stream each): the
/// stub's table (destination, source, the other sections' RVAs) lies in the
/// headers, as FSG 1.33 puts it.
pub fn fsg133_packed(parts: &[&[u8]]) -> Vec<u8> {
    let mut rvas = Vec::new();
    let mut rva = 0x1000u32;
    let mut s1 = Vec::new();
    for p in parts {
        rvas.push(rva);
        rva += (p.len() as u32).div_ceil(0x1000).max(1) * 0x1000;
        s1.extend_from_slice(&fsg(p));
    }
    let dsize = rva; // up to the last section's end, plus the headers' page
    let s1_rva = 0x1000 + dsize;
    s1.resize(s1.len().div_ceil(16) * 16, 0);
    let ep_at = s1.len() as u32;
    let mut stub = vec![0x90u8; 0x100];
    stub[0] = 0xbe; // mov esi, table
    put32(&mut stub, 1, IMAGE_BASE + 0x300);
    put32(&mut stub, 163, 0);
    s1.extend_from_slice(&stub);
    let rsz = (s1.len() as u32).div_ceil(0x200) * 0x200;
    s1.resize(rsz as usize, 0);
    let vsz1 = rsz.div_ceil(0x1000) * 0x1000;
    let header = pe_header(
        &[
            (b"FSG!\0\0\0\0", dsize, 0x1000, 0, 0x400),
            (b"FSG!\0\0\0\0", vsz1, s1_rva, rsz, 0x400),
        ],
        s1_rva + ep_at,
        s1_rva + vsz1,
    );
    let mut file = vec![0u8; 0x400];
    file[..2].copy_from_slice(b"MZ");
    put32(&mut file, 60, 0x80);
    file[0x80..0x80 + header.len()].copy_from_slice(&header);
    // The table: (ebx), destination, source, then each other section's
    // RVA + 1, and a zero.
    put32(&mut file, 0x304, IMAGE_BASE + 0x1000);
    put32(&mut file, 0x308, IMAGE_BASE + s1_rva);
    for (k, r) in rvas.iter().enumerate().skip(1) {
        put32(&mut file, 0x308 + 4 * k, IMAGE_BASE + r + 1);
    }
    file.extend_from_slice(&s1);
    file
}

/// An FSG 1.31-packed PE holding `parts` as its sections, as
/// [`fsg133_packed`], with FSG 1.31's stub and table (16-bit page numbers).
/// ClamAV wants 1.31's entry point more than the packed section's RVA less
/// 0xe0 into that section, and the empty section larger than the packed
/// one: so the packed section comes first in memory (at 0x1000) and the
/// empty one, which gets the program, after it.
pub fn fsg131_packed(parts: &[&[u8]]) -> Vec<u8> {
    let s1_rva = 0x1000u32;
    let s1_vsz = 0x2000u32;
    let s0_rva = s1_rva + s1_vsz;
    let mut rvas = Vec::new();
    let mut rva = s0_rva;
    let mut s1 = Vec::new();
    for p in parts {
        rvas.push(rva);
        rva += (p.len() as u32).div_ceil(0x1000).max(1) * 0x1000;
        s1.extend_from_slice(&fsg(p));
    }
    let dsize = rva - s0_rva;
    let ep_at = s1_rva - 0xe0 + 0x10;
    assert!(
        s1.len() < ep_at as usize,
        "the compressed program is too large"
    );
    s1.resize(ep_at as usize, 0);
    let mut stub = vec![0x90u8; 0x100];
    stub[0] = 0xbb; // mov ebx, table
    put32(&mut stub, 1, IMAGE_BASE + 0x300);
    stub[5] = 0xbf; // mov edi, destination
    put32(&mut stub, 6, IMAGE_BASE + s0_rva);
    stub[10] = 0xbe; // mov esi, source
    put32(&mut stub, 11, IMAGE_BASE + s1_rva);
    put32(&mut stub, 0xdc, 0); // the jump to the old entry point
    s1.extend_from_slice(&stub);
    let rsz = (s1.len() as u32).div_ceil(0x200) * 0x200;
    assert!(rsz < dsize && rsz <= s1_vsz);
    s1.resize(rsz as usize, 0);
    let header = pe_header(
        &[
            (b"FSG!\0\0\0\0", dsize, s0_rva, 0, 0x400),
            (b"FSG!\0\0\0\0", s1_vsz, s1_rva, rsz, 0x400),
        ],
        s1_rva + ep_at,
        s0_rva + dsize,
    );
    let mut file = vec![0u8; 0x400];
    file[..2].copy_from_slice(b"MZ");
    put32(&mut file, 60, 0x80);
    file[0x80..0x80 + header.len()].copy_from_slice(&header);
    // The table: each other section's page + 2, then 1, and 2 six bytes on.
    let mut at = 0x300;
    for r in rvas.iter().skip(1) {
        put16(&mut file, at, (((IMAGE_BASE + r) >> 12) + 2) as u16);
        at += 2;
    }
    put16(&mut file, at, 1);
    put32(&mut file, at + 6, 2);
    file.extend_from_slice(&s1);
    file
}
