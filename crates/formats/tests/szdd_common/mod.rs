//! An SZDD (`COMPRESS.EXE`) writer, shared by aether-formats' SZDD tests and
//! the engine's clamscan differential: LZSS over the 4 KiB window, greedy
//! matches of 3 to 18 bytes found through a hash of three bytes.

#![allow(dead_code)]

use std::collections::HashMap;

const WINDOW: usize = 4096;

/// `data` compressed, with `declared` as the header's size (normally the
/// length of `data`).
pub fn szdd_declaring(data: &[u8], declared: u32) -> Vec<u8> {
    let mut out = b"SZDD\x88\xf0\x27\x33A\0".to_vec();
    out.extend_from_slice(&declared.to_le_bytes());
    let mut heads: HashMap<[u8; 3], Vec<usize>> = HashMap::new();
    let mut i = 0;
    while i < data.len() {
        let flag_at = out.len();
        out.push(0);
        for bit in 0..8 {
            if i >= data.len() {
                break;
            }
            let mut best = (0usize, 0usize);
            if i + 3 <= data.len() {
                let key = [data[i], data[i + 1], data[i + 2]];
                if let Some(cands) = heads.get(&key) {
                    for &c in cands.iter().rev().take(64) {
                        if i - c >= WINDOW - 18 {
                            break;
                        }
                        let mut n = 0;
                        while n < 18 && i + n < data.len() && data[c + n] == data[i + n] {
                            n += 1;
                        }
                        if n > best.1 {
                            best = (c, n);
                        }
                    }
                }
            }
            let take = if best.1 >= 3 {
                // Positions are in the window, which starts at 4096 - 16.
                let k = (best.0 + WINDOW - 16) % WINDOW;
                out.push(k as u8);
                out.push((((k >> 4) & 0xf0) | (best.1 - 3)) as u8);
                best.1
            } else {
                out[flag_at] |= 1 << bit;
                out.push(data[i]);
                1
            };
            for p in i..i + take {
                if p + 3 <= data.len() {
                    heads
                        .entry([data[p], data[p + 1], data[p + 2]])
                        .or_default()
                        .push(p);
                }
            }
            i += take;
        }
    }
    out
}

/// `data` compressed, declaring its own size.
pub fn szdd(data: &[u8]) -> Vec<u8> {
    szdd_declaring(data, data.len() as u32)
}
