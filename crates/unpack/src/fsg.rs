//! The decompressor of FSG, also used by PESpin (ClamAV's `cli_unfsg`): an
//! aPLib-like LZ77 whose control bits come a byte at a time.

use crate::pe::contained;

/// The bit reader: one byte of bits, top bit first, refilled from the
/// stream when only the marker bit is left; the stream's last byte is never
/// used for bits (as in ClamAV).
fn bit(src: &[u8], pos: &mut usize, dl: &mut u8) -> Option<u32> {
    let old = *dl;
    *dl = old.wrapping_mul(2);
    if old & 0x7f == 0 {
        if *pos + 1 >= src.len() {
            return None;
        }
        let v = src[*pos];
        *dl = v.wrapping_mul(2).wrapping_add(1);
        *pos += 1;
        return Some(u32::from(v >> 7));
    }
    Some(u32::from(old >> 7))
}

/// The "gamma" code: starting from 1, a data bit then a continue bit.
fn gamma(src: &[u8], pos: &mut usize, dl: &mut u8) -> Option<u32> {
    let mut v: u32 = 1;
    loop {
        v = v.wrapping_mul(2).wrapping_add(bit(src, pos, dl)?);
        if bit(src, pos, dl)? == 0 {
            return Some(v);
        }
    }
}

/// Decompresses `src` into `dst` (filled from the start); `None` on
/// broken data. Returns the bytes read and written.
pub(crate) fn unfsg(src: &[u8], dst: &mut [u8]) -> Option<(usize, usize)> {
    if src.is_empty() || dst.is_empty() {
        return None;
    }
    let mut buf = Vec::with_capacity(src.len() + dst.len());
    buf.extend_from_slice(src);
    buf.extend_from_slice(dst);
    let (slen, dlen) = (src.len(), dst.len());
    let r = unfsg_in(&mut buf, 0, slen, slen, dlen);
    dst.copy_from_slice(&buf[slen..]);
    r
}

/// [`unfsg`] within one buffer: the source is `buf[s0..s0 + slen]`, the
/// destination `buf[d0..d0 + dlen]`; they may overlap (MEW decompresses in
/// place), and every read sees earlier writes, as in ClamAV.
pub(crate) fn unfsg_in(
    buf: &mut [u8],
    s0: usize,
    slen: usize,
    d0: usize,
    dlen: usize,
) -> Option<(usize, usize)> {
    if slen == 0 || dlen == 0 || s0 + slen > buf.len() || d0 + dlen > buf.len() {
        return None;
    }
    let mut dl: u8 = 0x80;
    let (mut s, mut d) = (1usize, 1usize);
    buf[d0] = buf[s0];
    let mut oldback: u32 = 0;
    let mut lostbit: u32 = 1;
    let dsize = dlen as i64;
    loop {
        if bit(&buf[s0..s0 + slen], &mut s, &mut dl)? == 0 {
            // A literal.
            if d >= dlen || s >= slen {
                return None;
            }
            buf[d0 + d] = buf[s0 + s];
            d += 1;
            s += 1;
            lostbit = 1;
            continue;
        }
        let (backbytes, backsize);
        if bit(&buf[s0..s0 + slen], &mut s, &mut dl)? == 1 {
            if bit(&buf[s0..s0 + slen], &mut s, &mut dl)? == 1 {
                // A byte from 1 to 15 back, or a zero.
                lostbit = 1;
                let mut b: u32 = 0x10;
                while b < 0x100 {
                    b = b * 2 + bit(&buf[s0..s0 + slen], &mut s, &mut dl)?;
                }
                b &= 0xff;
                if b == 0 {
                    if d >= dlen {
                        return None;
                    }
                    buf[d0 + d] = 0;
                    d += 1;
                    continue;
                }
                backbytes = b;
                backsize = 1;
            } else {
                // A short match: 2 or 3 bytes up to 127 back; 0 ends.
                if s >= slen {
                    return None;
                }
                let b = u32::from(buf[s0 + s]);
                s += 1;
                backbytes = b >> 1;
                if backbytes == 0 {
                    return Some((s, d));
                }
                backsize = (b & 1) + 2;
                oldback = backbytes;
                lostbit = 0;
            }
        } else {
            let g = gamma(&buf[s0..s0 + slen], &mut s, &mut dl)?
                .wrapping_sub(1)
                .wrapping_sub(lostbit);
            if g == 0 {
                backsize = gamma(&buf[s0..s0 + slen], &mut s, &mut dl)?;
                backbytes = oldback;
            } else {
                if s >= slen {
                    return None;
                }
                let b = u32::from(buf[s0 + s]);
                s += 1;
                backbytes = b.wrapping_add(g.wrapping_sub(1) << 8);
                let mut n = gamma(&buf[s0..s0 + slen], &mut s, &mut dl)?;
                if backbytes >= 0x7d00 {
                    n = n.wrapping_add(1);
                }
                if backbytes >= 0x500 {
                    n = n.wrapping_add(1);
                }
                if backbytes <= 0x7f {
                    n = n.wrapping_add(2);
                }
                backsize = n;
                oldback = backbytes;
            }
            lostbit = 0;
        }
        let (cur, n) = (d as i64, i64::from(backsize));
        let from = cur - i64::from(backbytes);
        if !contained(0, dsize, cur, n) || !contained(0, dsize, from, n) {
            return None;
        }
        for k in 0..n as usize {
            buf[d0 + d + k] = buf[d0 + from as usize + k];
        }
        d += n as usize;
    }
}
