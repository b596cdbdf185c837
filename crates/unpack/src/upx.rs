//! UPX: the NRV2B, NRV2D and NRV2E bit-stream decompressors and the LZMA
//! variant, then the PE rebuild of ClamAV's `upx.c`.
//!
//! The packed program is `UPX1`'s raw data; it decompresses over `UPX0` +
//! `UPX1` in memory. UPX keeps the original PE header after the compressed
//! import names, so the rebuild finds it there (through the offset the stub
//! loads with `lea edi, [esi + imports]`), else searches backwards for a PE
//! header, else puts ClamAV's own fake header in front of the raw data.
//!
//! ClamAV's quirks are kept because signatures (and hashes) match the bytes
//! it scans: every decompressor attempt writes into one shared buffer (a
//! later attempt sees what a failed one left), a rebuild that gives up midway
//! still counts as success and leaves the raw data, and after an LZMA
//! decompression the *outer* size (`UPX0`+`UPX1` virtual sizes) is written,
//! not the rebuilt PE's.

use crate::pe::{PeHeader, align_down, align_up, contained, u32_at};
use crate::{Packer, Step, UnpackError, UnpackLimits};

const NRV2B: &[u8; 24] =
    b"\x11\xdb\x11\xc9\x01\xdb\x75\x07\x8b\x1e\x83\xee\xfc\x11\xdb\x11\xc9\x11\xc9\x75\x20\x41\x01\xdb";
const NRV2D: &[u8; 24] =
    b"\x83\xf0\xff\x74\x78\xd1\xf8\x89\xc5\xeb\x0b\x01\xdb\x75\x07\x8b\x1e\x83\xee\xfc\x11\xdb\x11\xc9";
const NRV2E: &[u8; 24] =
    b"\xeb\x52\x31\xc9\x83\xe8\x03\x72\x11\xc1\xe0\x08\x8a\x06\x46\x83\xf0\xff\x74\x75\xd1\xf8\x89\xc5";
const LZMA1_FIRST: &[u8; 8] = b"\x56\x83\xc3\x04\x53\x50\xc7\x03";
const LZMA1_SECOND: &[u8; 8] = b"\x90\x90\x90\x55\x57\x56\x53\x83";
const LZMA2: &[u8; 20] =
    b"\x56\x83\xc3\x04\x53\x50\xc7\x03\x03\x00\x02\x00\x90\x90\x90\x90\x90\x55\x57\x56";

/// The DOS header and stub of every PE ClamAV rebuilds (0xd0 bytes; its
/// `e_lfanew` is 0xd0).
pub(crate) const HEADERS: &[u8; 0xd0] = b"\
\x4D\x5A\x90\x00\x02\x00\x00\x00\x04\x00\x0F\x00\xFF\xFF\x00\x00\
\xB0\x00\x00\x00\x00\x00\x00\x00\x40\x00\x1A\x00\x00\x00\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xD0\x00\x00\x00\
\x0E\x1F\xB4\x09\xBA\x0D\x00\xCD\x21\xB4\x4C\xCD\x21\x54\x68\x69\
\x73\x20\x66\x69\x6C\x65\x20\x77\x61\x73\x20\x63\x72\x65\x61\x74\
\x65\x64\x20\x62\x79\x20\x43\x6C\x61\x6D\x41\x56\x20\x66\x6F\x72\
\x20\x69\x6E\x74\x65\x72\x6E\x61\x6C\x20\x75\x73\x65\x20\x61\x6E\
\x64\x20\x73\x68\x6F\x75\x6C\x64\x20\x6E\x6F\x74\x20\x62\x65\x20\
\x72\x75\x6E\x2E\x0D\x0A\x43\x6C\x61\x6D\x41\x56\x20\x2D\x20\x41\
\x20\x47\x50\x4C\x20\x76\x69\x72\x75\x73\x20\x73\x63\x61\x6E\x6E\
\x65\x72\x20\x2D\x20\x68\x74\x74\x70\x3A\x2F\x2F\x77\x77\x77\x2E\
\x63\x6C\x61\x6D\x61\x76\x2E\x6E\x65\x74\x0D\x0A\x24\x00\x00\x00";

/// The PE header and one section that ClamAV puts in front of data it
/// found no header for (0x120 bytes).
const FAKEPE: &[u8; 0x120] = b"\
\x50\x45\x00\x00\x4C\x01\x01\x00\x43\x4C\x41\x4D\x00\x00\x00\x00\
\x00\x00\x00\x00\xE0\x00\x83\x8F\x0B\x01\x00\x00\x00\x10\x00\x00\
\x00\x10\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x10\x00\x00\
\x00\x10\x00\x00\x00\x00\x40\x00\x00\x10\x00\x00\x00\x02\x00\x00\
\x01\x00\x00\x00\x00\x00\x00\x00\x03\x00\x0A\x00\x00\x00\x00\x00\
\xFF\xFF\xFF\xFF\x00\x02\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\
\x00\x00\x10\x00\x00\x10\x00\x00\x00\x00\x10\x00\x00\x10\x00\x00\
\x00\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x2e\x63\x6c\x61\x6d\x30\x31\x00\
\xFF\xFF\xFF\xFF\x00\x10\x00\x00\xFF\xFF\xFF\xFF\x00\x02\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff";

/// Which decompressor a stub or an attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nrv {
    B,
    D,
    E,
}

impl Nrv {
    /// Offsets (from the stub's start) of the `lea edi, [esi + imports]`
    /// operand in the known stubs.
    fn magic(self) -> &'static [u32] {
        match self {
            Nrv::B => &[0x108, 0x110, 0xd5],
            Nrv::D => &[0x11c, 0x124],
            Nrv::E => &[0x128, 0x130],
        }
    }
    fn name(self) -> &'static str {
        match self {
            Nrv::B => "NRV2B",
            Nrv::D => "NRV2D",
            Nrv::E => "NRV2E",
        }
    }
}

/// The decompression target: ClamAV's buffer of `dsize + 8192` bytes, of
/// which the decompressors may fill the first `dsize`.
struct Dest {
    buf: Vec<u8>,
}

impl Dest {
    fn rd32(&self, at: i64) -> u32 {
        usize::try_from(at)
            .ok()
            .and_then(|a| u32_at(&self.buf, a))
            .unwrap_or(0)
    }
    fn wr32(&mut self, at: i64, v: u32) {
        if let Ok(a) = usize::try_from(at)
            && let Some(b) = self.buf.get_mut(a..a + 4)
        {
            b.copy_from_slice(&v.to_le_bytes());
        }
    }
    fn byte(&self, at: i64) -> u8 {
        usize::try_from(at)
            .ok()
            .and_then(|a| self.buf.get(a).copied())
            .unwrap_or(0)
    }
}

/// The bit reader all three NRV variants share (the stub's `add ebx, ebx`
/// with a refill of 32 bits when the marker bit shifts out).
struct Bits<'a> {
    src: &'a [u8],
    pos: usize,
    ebx: u32,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let old = self.ebx;
        self.ebx = self.ebx.wrapping_mul(2);
        if old & 0x7fff_ffff == 0 {
            let v = u32_at(self.src, self.pos)?;
            self.ebx = v.wrapping_mul(2).wrapping_add(1);
            self.pos += 4;
            return Some(v >> 31);
        }
        Some(old >> 31)
    }
    fn byte(&mut self) -> Option<u8> {
        let b = *self.src.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
}

/// One NRV decompression into `dst[..dsize]`; `None` where ClamAV's returns
/// -1. Returns the number of bytes written.
fn nrv(kind: Nrv, src: &[u8], dst: &mut Dest, dsize: u32) -> Option<u32> {
    let mut b = Bits {
        src,
        pos: 0,
        ebx: 0,
    };
    let mut dcur: u32 = 0;
    let mut unp_offset: i32 = -1;
    loop {
        // Literals.
        loop {
            let bit = b.bit()?;
            if bit == 0 {
                break;
            }
            if b.pos >= src.len() || dcur >= dsize {
                return None;
            }
            let c = b.byte()?;
            *dst.buf.get_mut(dcur as usize)? = c;
            dcur += 1;
        }
        let mut backbytes: i32 = 1;
        loop {
            let bit = b.bit()?;
            if i64::from(backbytes) + i64::from(bit) > i64::from(i32::MAX / 2) {
                return None;
            }
            backbytes = backbytes * 2 + bit as i32;
            if b.bit()? != 0 {
                break;
            }
            if kind != Nrv::B {
                backbytes -= 1;
                let bit = b.bit()?;
                if i64::from(backbytes) + i64::from(bit) > i64::from(i32::MAX / 2) {
                    return None;
                }
                backbytes = backbytes * 2 + bit as i32;
            }
        }
        backbytes -= 3;
        // For 2D/2E: the bit shifted out of the offset, or the next bit.
        let mut carry: u32 = 0;
        if backbytes >= 0 {
            if b.pos >= src.len() {
                return None;
            }
            if backbytes as u32 & 0xff00_0000 != 0 {
                return None;
            }
            let mut v = (backbytes << 8).wrapping_add(i32::from(b.byte()?));
            v ^= -1;
            if v == 0 {
                break;
            }
            if kind == Nrv::B {
                unp_offset = v;
            } else {
                carry = (v & 1) as u32;
                unp_offset = v >> 1;
            }
        } else if kind != Nrv::B {
            carry = b.bit()?;
        }
        let mut backsize: u32 = match kind {
            Nrv::B | Nrv::D => {
                let first = if kind == Nrv::B { b.bit()? } else { carry };
                let bit = b.bit()?;
                if first.checked_add(bit)? > u32::MAX / 2 {
                    return None;
                }
                let mut s = first * 2 + bit;
                if s == 0 {
                    s = 1;
                    loop {
                        let bit = b.bit()?;
                        if s.checked_add(bit)? > u32::MAX / 2 {
                            return None;
                        }
                        s = s * 2 + bit;
                        if b.bit()? != 0 {
                            break;
                        }
                    }
                    s = s.checked_add(2)?;
                }
                s
            }
            Nrv::E => {
                if carry != 0 {
                    b.bit()?
                } else if b.bit()? != 0 {
                    2 + b.bit()?
                } else {
                    let mut s: u32 = 1;
                    loop {
                        let bit = b.bit()?;
                        if s.checked_add(bit)? > u32::MAX / 2 {
                            return None;
                        }
                        s = s * 2 + bit;
                        if b.bit()? != 0 {
                            break;
                        }
                    }
                    s.checked_add(2)?
                }
            }
        };
        let far = match kind {
            Nrv::B => 0xffff_f300u32,
            Nrv::D | Nrv::E => 0xffff_fb00,
        };
        if (unp_offset as u32) < far {
            backsize = backsize.checked_add(1)?;
        }
        backsize = backsize.checked_add(if kind == Nrv::E { 2 } else { 1 })?;
        let from = i64::from(dcur) + i64::from(unp_offset);
        if !contained(0, i64::from(dsize), from, i64::from(backsize))
            || !contained(0, i64::from(dsize), i64::from(dcur), i64::from(backsize))
            || unp_offset >= 0
        {
            return None;
        }
        // Overlapping copies repeat bytes, byte by byte.
        let (from, to) = (from as usize, dcur as usize);
        for i in 0..backsize as usize {
            let c = *dst.buf.get(from + i)?;
            *dst.buf.get_mut(to + i)? = c;
        }
        dcur += backsize;
    }
    Some(dcur)
}

/// What the rebuild made of the buffer.
enum Rebuild {
    /// ClamAV's 0: gave up, the buffer stays as it is.
    GaveUp,
    /// ClamAV's 1: `dsize` may have changed.
    Done,
}

/// `checkpe`: a PE header at `pehdr` inside `dst[..dsize]`; returns the
/// section table's offset, the section alignment and the section count.
fn checkpe(dst: &Dest, dsize: u32, pehdr: i64) -> (Option<i64>, u32, u32) {
    if !contained(0, i64::from(dsize), pehdr, 0xf8) || dst.rd32(pehdr) != 0x4550 {
        return (None, 0, 0);
    }
    let valign = dst.rd32(pehdr + 0x38);
    if valign == 0 {
        return (None, 0, 0);
    }
    let cnt = u32::from(dst.byte(pehdr + 6)) + u32::from(dst.byte(pehdr + 7)) * 256;
    if cnt == 0 {
        return (None, valign, 0);
    }
    let sections = pehdr + 0xf8;
    if !contained(0, i64::from(dsize), sections, i64::from(cnt) * 0x28) {
        return (None, valign, cnt);
    }
    (Some(sections), valign, cnt)
}

/// `pefromupx`: turns the decompressed data `dst[..dend]` into a PE.
#[allow(clippy::too_many_arguments)]
fn pefromupx(
    src: &[u8],
    ssize: u32,
    dst: &mut Dest,
    dsize: &mut u32,
    ep: u32,
    upx0: u32,
    upx1: u32,
    magic: &[u32],
    dend: u32,
) -> Rebuild {
    let srd = |at: i64| {
        usize::try_from(at)
            .ok()
            .and_then(|a| src.get(a).copied())
            .unwrap_or(0)
    };
    // Pointer arithmetic in ClamAV: no 32-bit wrap.
    let base = i64::from(ep) - i64::from(upx1);
    let mut valign: u32 = 0;
    for &m in magic {
        let at = base + i64::from(m) - 2;
        if contained(0, i64::from(ssize.wrapping_sub(5)), at, 2)
            && srd(at) == 0x8d
            && srd(at + 1) == 0xbe
        {
            valign = m;
            break;
        }
    }
    if valign == 0 && contained(0, i64::from(ssize.wrapping_sub(8)), base + 0x80, 8) {
        // Bad magic: look for `lea edi, [esi + imports]; mov eax, [edi]`.
        let limit = (ssize as usize).saturating_sub(8).min(src.len());
        let mut pt = usize::try_from(base + 0x80).unwrap_or(usize::MAX);
        while pt + 1 < limit {
            if src.get(pt..pt + 2) == Some(b"\x8d\xbe")
                && src.get(pt + 6) == Some(&0x8b)
                && src.get(pt + 7) == Some(&0x07)
            {
                valign = (pt as u32)
                    .wrapping_add(2)
                    .wrapping_sub(ep)
                    .wrapping_add(upx1);
                break;
            }
            pt += 1;
        }
    }
    let mut pehdr: Option<i64> = None;
    let mut sections: Option<i64> = None;
    let mut sectcnt: u32 = 0;
    let mut realstuffsz: u32 = 0;
    let at = base + i64::from(valign);
    if valign != 0 && contained(0, i64::from(ssize), at, 4) {
        let imports = usize::try_from(at)
            .ok()
            .and_then(|a| u32_at(src, a))
            .unwrap_or(0);
        realstuffsz = imports;
        if realstuffsz < *dsize {
            // Skip the import names: (dll name offset, ...) records of
            // NUL-terminated strings, up to a zero dword.
            let ds = i64::from(*dsize);
            let mut p = i64::from(imports);
            while contained(0, ds, p, 8) && dst.rd32(p) != 0 {
                p += 8;
                while contained(0, ds, p, 2) && dst.byte(p) != 0 {
                    p += 1;
                    while contained(0, ds, p, 2) && dst.byte(p) != 0 {
                        p += 1;
                    }
                    p += 1;
                }
                p += 1;
            }
            p += 4;
            let (s, va, cnt) = checkpe(dst, *dsize, p);
            valign = va;
            if cnt != 0 || s.is_some() {
                sectcnt = cnt;
            }
            if s.is_some() {
                pehdr = Some(p);
                sections = s;
            }
        }
    }
    if pehdr.is_none() && dend > 0xf8 + 0x28 {
        // Search backwards from the end for a PE header.
        let mut p = i64::from(dend) - 0xf8 - 0x28;
        while p > 0 {
            let (s, va, cnt) = checkpe(dst, *dsize, p);
            if s.is_some() {
                sections = s;
                valign = va;
                sectcnt = cnt;
                break;
            }
            p -= 1;
        }
        realstuffsz = p as u32;
        pehdr = (p > 0).then_some(p);
    }
    let Some(pehdr) = pehdr else {
        // No header at all: ClamAV's own, in front of the data.
        let rebsz = align_up(dend, 0x1000);
        let total = rebsz as usize + 0x200;
        let mut newbuf = vec![0u8; total];
        newbuf[..0xd0].copy_from_slice(HEADERS);
        newbuf[0xd0..0x1f0].copy_from_slice(FAKEPE);
        let n = (dend as usize).min(dst.buf.len());
        newbuf[0x200..0x200 + n].copy_from_slice(&dst.buf[..n]);
        let copy = (dend as usize + 0x200).min(dst.buf.len());
        dst.buf[..copy].copy_from_slice(&newbuf[..copy]);
        dst.wr32(0xd0 + 0x50, rebsz.wrapping_add(0x1000));
        dst.wr32(0xd0 + 0x100, rebsz);
        dst.wr32(0xd0 + 0x108, rebsz);
        *dsize = rebsz.wrapping_add(0x200);
        return Rebuild::Done;
    };
    if sections.is_none() {
        sectcnt = 0;
    }
    let mut sect = sections.unwrap_or(0);
    let mut foffset = align_up(
        (0xd0u32 + 0xf8).wrapping_add(0x28u32.wrapping_mul(sectcnt)),
        valign,
    );
    for _ in 0..sectcnt {
        let vsize = align_up(dst.rd32(sect + 8), valign);
        let urva = align_down(dst.rd32(sect + 12), valign);
        if !contained(
            i64::from(upx0),
            i64::from(realstuffsz),
            i64::from(urva),
            i64::from(vsize),
        ) {
            return Rebuild::GaveUp;
        }
        dst.wr32(sect + 8, vsize);
        dst.wr32(sect + 12, urva);
        dst.wr32(sect + 16, vsize);
        dst.wr32(sect + 20, foffset);
        let Some(next) = foffset.checked_add(vsize) else {
            return Rebuild::GaveUp;
        };
        foffset = next;
        sect += 0x28;
    }
    dst.wr32(pehdr + 8, 0x4d41_4c43); // "CLAM"
    dst.wr32(pehdr + 0x3c, valign);
    let hdr_len = 0xf8 + 0x28 * sectcnt as usize;
    if (foffset as usize) < 0xd0 + hdr_len {
        // A wrapped alignment: ClamAV would write out of bounds here.
        return Rebuild::GaveUp;
    }
    if u64::from(foffset) > u64::from(*dsize) + 8192 {
        // Checked after the copies in ClamAV; nothing is kept either way.
        return Rebuild::GaveUp;
    }
    let mut newbuf = vec![0u8; foffset as usize];
    newbuf[..0xd0].copy_from_slice(HEADERS);
    let hs = pehdr as usize;
    for (i, b) in newbuf[0xd0..0xd0 + hdr_len].iter_mut().enumerate() {
        *b = dst.byte((hs + i) as i64);
    }
    let mut sect = pehdr + 0xf8;
    for _ in 0..sectcnt {
        let off1 = dst.rd32(sect + 20);
        let off2 = dst.rd32(sect + 16);
        if off1 > foffset || off2 > foffset || off1.wrapping_add(off2) > foffset {
            return Rebuild::Done;
        }
        let off3 = dst.rd32(sect + 12);
        if off3.wrapping_sub(upx0) > *dsize {
            return Rebuild::Done;
        }
        let from = off3.wrapping_sub(upx0) as usize;
        let to = newbuf
            .get_mut(off1 as usize..off1 as usize + off2 as usize)
            .unwrap_or_default();
        for (i, b) in to.iter_mut().enumerate() {
            *b = dst.buf.get(from + i).copied().unwrap_or(0);
        }
        sect += 0x28;
    }
    let n = (foffset as usize).min(dst.buf.len());
    dst.buf[..n].copy_from_slice(&newbuf[..n]);
    *dsize = foffset;
    Rebuild::Done
}

/// `upx_inflatelzma`: LZMA with UPX's 2-byte header in place of the usual
/// 13, decoded up to `dsize` bytes.
fn lzma(src: &[u8], dst: &mut Dest, dsize: u32, properties: u32) -> Option<bool> {
    let (lc, lp, pb) = (
        properties & 0xff,
        (properties >> 8) & 0xff,
        (properties >> 16) & 0xff,
    );
    if lc >= 9 || lp >= 5 || pb >= 5 {
        return None;
    }
    let mut stream = Vec::with_capacity(5 + src.len());
    stream.push((lc + 9 * (5 * pb + lp)) as u8);
    stream.extend_from_slice(&dsize.to_le_bytes());
    stream.extend_from_slice(src.get(2..).unwrap_or(&[]));
    let mut out = Bounded {
        buf: &mut dst.buf,
        len: 0,
        cap: dsize as usize,
    };
    let options = lzma_rs::decompress::Options {
        unpacked_size: lzma_rs::decompress::UnpackedSize::UseProvided(Some(u64::from(dsize))),
        memlimit: Some(dsize as usize + (1 << 16)),
        allow_incomplete: true,
    };
    let r = lzma_rs::lzma_decompress_with_options(&mut stream.as_slice(), &mut out, &options);
    match r {
        Ok(()) => Some(true),
        // Output full: the decoder stops there, as ClamAV's does.
        Err(_) if out.len >= out.cap => Some(true),
        Err(_) => None,
    }
}

/// Writes into the front of a buffer, refusing to pass `cap`.
struct Bounded<'a> {
    buf: &'a mut [u8],
    len: usize,
    cap: usize,
}

impl std::io::Write for Bounded<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = self.cap.saturating_sub(self.len);
        let n = data.len().min(room);
        if n == 0 && !data.is_empty() {
            return Err(std::io::Error::other("LZMA output past its declared size"));
        }
        let end = self.len + n;
        let Some(to) = self.buf.get_mut(self.len..end) else {
            return Err(std::io::Error::other("LZMA output past the buffer"));
        };
        to.copy_from_slice(&data[..n]);
        self.len = end;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether the 13 bytes at `at` in the entry point buffer occur in `stub`.
fn stub_has(stub: &[u8], epbuff: &[u8], at: usize) -> bool {
    let Some(needle) = epbuff.get(at..at + 13) else {
        return false;
    };
    stub.windows(13).any(|w| w == needle)
}

/// The UPX attempt of `cli_scanpe` on section `i` (empty) and `i + 1`.
pub(crate) fn unpack(
    file: &[u8],
    pe: &PeHeader,
    epbuff: &[u8],
    i: usize,
    limits: &UnpackLimits,
) -> Result<Step, UnpackError> {
    let fail = |detail: String| UnpackError::Failed {
        packer: Packer::Upx,
        detail,
    };
    let (Some(s0), Some(s1)) = (pe.sections.get(i), pe.sections.get(i + 1)) else {
        return Ok(Step::Next);
    };
    let ssize = s1.rsz;
    let mut dsize = s0.vsz.wrapping_add(s1.vsz);
    let stub = if stub_has(NRV2B, epbuff, 0x69) || stub_has(NRV2B, epbuff, 0x69 + 8) {
        Some(Nrv::B)
    } else if stub_has(NRV2D, epbuff, 0x69) || stub_has(NRV2D, epbuff, 0x69 + 8) {
        Some(Nrv::D)
    } else if stub_has(NRV2E, epbuff, 0x69) || stub_has(NRV2E, epbuff, 0x69 + 8) {
        Some(Nrv::E)
    } else {
        None
    };
    let lzma2 = epbuff.get(0x2f..0x2f + 20) == Some(LZMA2);
    let lzma1 = !lzma2
        && epbuff.get(0x39..0x39 + 8) == Some(LZMA1_FIRST)
        && epbuff.get(0x45..0x45 + 8) == Some(LZMA1_SECOND);
    let known = stub.is_some() || lzma1 || lzma2;
    limits.check(Packer::Upx, u64::from(dsize.max(ssize)), file.len() as u64)?;
    if ssize <= 0x19 || dsize <= ssize || dsize > crate::MAX_ALLOCATION {
        // ClamAV stops looking at the file here.
        return if known {
            Err(fail(format!(
                "section sizes do not fit (raw {ssize:#x}, virtual {dsize:#x})"
            )))
        } else {
            Ok(Step::Stop)
        };
    }
    let start = s1.raw as usize;
    let Some(src) = file.get(start..start + ssize as usize) else {
        return Err(fail(format!(
            "section {} ({ssize:#x} bytes at {start:#x}) is past the end of the file",
            i + 1
        )));
    };
    let mut dst = Dest {
        buf: vec![0u8; dsize as usize + 8192],
    };
    let (upx0, upx1) = (s0.rva, s1.rva);
    let attempt = |kind: Nrv, skew: u32, dsize: &mut u32, dst: &mut Dest| -> bool {
        let Some(src) = src.get(skew as usize..) else {
            return false;
        };
        let Some(dend) = nrv(kind, src, dst, *dsize) else {
            return false;
        };
        pefromupx(
            src,
            ssize - skew,
            dst,
            dsize,
            pe.vep.wrapping_sub(skew),
            upx0,
            upx1,
            kind.magic(),
            dend,
        );
        true
    };
    let mut success = false;
    let mut used = None;
    if let Some(kind) = stub {
        let skew = u32_at(epbuff, 2)
            .unwrap_or(0)
            .wrapping_sub(pe.image_base)
            .wrapping_sub(upx1) as i32;
        let skew =
            if epbuff.get(1) != Some(&0xbe) || skew <= 0 || skew > 0xfff || skew as u32 > ssize {
                0
            } else {
                skew as u32
            };
        success = attempt(kind, skew, &mut dsize, &mut dst)
            || (skew != 0 && attempt(kind, 0, &mut dsize, &mut dst));
        if success {
            used = Some(kind);
        }
    }
    for kind in [Nrv::B, Nrv::D, Nrv::E] {
        if success || stub == Some(kind) {
            continue;
        }
        if attempt(kind, 0, &mut dsize, &mut dst) || attempt(kind, 0x15, &mut dsize, &mut dst) {
            success = true;
            used = Some(kind);
        }
    }
    let mut lzma_failed = false;
    if lzma1 || lzma2 {
        let (strict, properties) = if lzma2 {
            (u32_at(epbuff, 0x21).unwrap_or(0), 0x20003)
        } else {
            (
                u32_at(epbuff, 0x2b).unwrap_or(0),
                u32_at(epbuff, 0x41).unwrap_or(0),
            )
        };
        let mut skew = 0u32;
        if ssize > 0x15 && epbuff.first() == Some(&0x60) && epbuff.get(1) == Some(&0xbe) {
            skew = u32_at(epbuff, 2)
                .unwrap_or(0)
                .wrapping_sub(upx1)
                .wrapping_sub(pe.image_base);
            if skew != 0x15 {
                skew = 0;
            }
        }
        if strict <= dsize {
            // ClamAV hands the decoder `ssize - skew` bytes from 2 bytes in:
            // the 2 bytes after the section come from the file.
            let from = start + skew as usize;
            let lz_src = file
                .get(from..(from + 2 + (ssize - skew) as usize).min(file.len()))
                .unwrap_or(&[]);
            let mut strictdsize = strict;
            success = match lzma(lz_src, &mut dst, strict, properties) {
                Some(_) => {
                    pefromupx(
                        &src[skew as usize..],
                        ssize - skew,
                        &mut dst,
                        &mut strictdsize,
                        pe.vep,
                        upx0,
                        upx1,
                        &[0xb16, 0xb1e],
                        strict,
                    );
                    used = None;
                    true
                }
                None => {
                    lzma_failed = true;
                    false
                }
            };
        }
    }
    if !success {
        if !known {
            return Ok(Step::Next);
        }
        let what = if lzma_failed {
            "LZMA".to_string()
        } else {
            used.or(stub).map_or("NRV", Nrv::name).to_string()
        };
        return Ok(Step::Failed(fail(format!(
            "{what} decompression failed (and every other decompressor)"
        ))));
    }
    // ClamAV writes `dsize` bytes (the buffer holds `dsize + 8192`).
    let mut image = dst.buf;
    image.truncate(dsize as usize);
    Ok(Step::Done(Packer::Upx, image))
}
