//! A BinHex 4.0 writer, shared by aether-formats' BinHex tests and the
//! engine's clamscan differential: header, forks and CRCs, run-length
//! coding, 6-bit characters in lines of 64 between colons.

#![allow(dead_code)]

const ALPHABET: &[u8; 64] = b"!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr";

/// CRC-16/XMODEM, BinHex's.
fn crc(data: &[u8]) -> [u8; 2] {
    let mut c: u16 = 0;
    for &b in data.iter().chain(&[0, 0]) {
        for i in (0..8).rev() {
            let top = c & 0x8000 != 0;
            c = c << 1 | u16::from(b >> i & 1);
            if top {
                c ^= 0x1021;
            }
        }
    }
    c.to_be_bytes()
}

/// The decoded stream: header, data fork, resource fork, each with a CRC.
pub fn stream(name: &str, data: &[u8], rsrc: &[u8]) -> Vec<u8> {
    let mut h = vec![name.len() as u8];
    h.extend_from_slice(name.as_bytes());
    h.push(0);
    h.extend_from_slice(b"TEXTttxt");
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&(data.len() as u32).to_be_bytes());
    h.extend_from_slice(&(rsrc.len() as u32).to_be_bytes());
    let mut s = h.clone();
    s.extend_from_slice(&crc(&h));
    for fork in [data, rsrc] {
        s.extend_from_slice(fork);
        s.extend_from_slice(&crc(fork));
    }
    s
}

/// Run-length coding: runs of 3 to 255 as `b 0x90 n`, 0x90 as `0x90 0`.
pub fn rle(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        let mut n = 1;
        while i + n < data.len() && data[i + n] == b && n < 255 {
            n += 1;
        }
        out.push(b);
        if b == 0x90 {
            out.push(0);
        }
        if n >= 3 {
            out.extend_from_slice(&[0x90, n as u8]);
        } else {
            n = 1;
        }
        i += n;
    }
    out
}

/// `bytes` as BinHex text, with the banner.
pub fn text(bytes: &[u8]) -> Vec<u8> {
    let mut chars = Vec::new();
    for group in bytes.chunks(3) {
        let g = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let v = u32::from(g[0]) << 16 | u32::from(g[1]) << 8 | u32::from(g[2]);
        let n = group.len() + 1;
        for k in 0..n {
            chars.push(ALPHABET[(v >> (18 - 6 * k) & 63) as usize]);
        }
    }
    let mut t = b"(This file must be converted with BinHex 4.0)\n\n:".to_vec();
    for (i, line) in chars.chunks(64).enumerate() {
        if i > 0 {
            t.push(b'\n');
        }
        t.extend_from_slice(line);
    }
    t.extend_from_slice(b":\n");
    t
}

/// A BinHex file of `name` with these forks.
pub fn binhex(name: &str, data: &[u8], rsrc: &[u8]) -> Vec<u8> {
    text(&rle(&stream(name, data, rsrc)))
}
