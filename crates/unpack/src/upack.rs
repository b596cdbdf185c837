//! Upack 0.39 (three sections, `SizeOfOptionalHeader` 0x148): the stub's
//! tables are found by following its jumps, an LZMA-like range decoder (the
//! stub's own, emulated as ClamAV's `upack.c`/`mew.c` do) unpacks the
//! program, CALL/JMP targets are restored, and one section is rebuilt.
//! Upack's two-section layouts (0.39 and 1.1/1.2) are not unpacked here.
//! Positions are signed offsets into the image, as ClamAV's pointers.

use crate::pe::{PeHeader, contained, u32_at};
use crate::rebuild::{RSect, rebuild};
use crate::{Packer, Step, UnpackError, UnpackLimits};

/// ClamAV's -1 (and the range decoder's 0xffffffff): a broken file.
const BAD: u32 = 0xffff_ffff;

struct Img {
    b: Vec<u8>,
}

impl Img {
    fn ok(&self, at: i64, n: i64) -> bool {
        contained(0, self.b.len() as i64, at, n)
    }
    fn rd(&self, at: i64) -> u32 {
        usize::try_from(at)
            .ok()
            .and_then(|a| u32_at(&self.b, a))
            .unwrap_or(0)
    }
    fn wr(&mut self, at: i64, v: u32) {
        if let Ok(a) = usize::try_from(at)
            && let Some(d) = self.b.get_mut(a..a + 4)
        {
            d.copy_from_slice(&v.to_le_bytes());
        }
    }
    fn byte(&self, at: i64) -> u8 {
        usize::try_from(at)
            .ok()
            .and_then(|a| self.b.get(a).copied())
            .unwrap_or(0)
    }
}

/// The range decoder: position of the next input byte, range, code.
struct Rc {
    p0: i64,
    p1: u32,
    p2: u32,
}

/// `lzma_upack_esi_00`: one bit with the probability at `prob`.
fn bit(img: &mut Img, p: &mut Rc, prob: i64) -> u32 {
    if !img.ok(prob, 4) || !img.ok(p.p0, 4) {
        return BAD;
    }
    let ret = img.rd(prob);
    let bound = (p.p1 >> 11).wrapping_mul(ret);
    let code = img.rd(p.p0).swap_bytes().wrapping_sub(p.p2);
    let r = if code < bound {
        p.p1 = bound;
        img.wr(prob, ret.wrapping_add(0x800u32.wrapping_sub(ret) >> 5));
        0
    } else {
        p.p2 = p.p2.wrapping_add(bound);
        p.p1 = p.p1.wrapping_sub(bound);
        img.wr(prob, ret.wrapping_sub(ret >> 5));
        1
    };
    if p.p1 & 0xff00_0000 == 0 {
        p.p2 <<= 8;
        p.p1 <<= 8;
        p.p0 += 1;
    }
    r
}

/// `lzma_upack_esi_50`: a bit tree from `start` up to `limit`.
fn tree(
    img: &mut Img,
    p: &mut Rc,
    start: u32,
    limit: u32,
    edx: &mut i64,
    base: i64,
) -> Option<u32> {
    let mut v = start;
    loop {
        *edx = base + i64::from(v << 2);
        let r = bit(img, p, *edx);
        if r == BAD {
            return None;
        }
        v = v.wrapping_add(v).wrapping_add(r);
        if v >= limit {
            return Some(v.wrapping_sub(limit));
        }
    }
}

/// `lzma_upack_esi_54`: a match length.
fn length(img: &mut Img, p: &mut Rc, eax: u32, ecx: &mut u32, edx: &mut i64) -> Option<u32> {
    *ecx = (*ecx & 0xffff_ff00) | 8;
    let r = bit(img, p, *edx);
    *edx += 4;
    let mut v = (eax & 0xffff_ff00) | 1;
    if r != 0 {
        let r = bit(img, p, *edx);
        v |= 8;
        if r != 0 {
            *ecx <<= 5;
            v = 0x11;
        }
    }
    let base = *edx + i64::from(v << 2);
    let t = tree(img, p, 1, *ecx, edx, base)?;
    Some(v.wrapping_add(t))
}

/// `unupack399`: the decompression proper, from `edi0` to `end`.
fn unupack399(
    img: &mut Img,
    ebx: i64,
    edi0: i64,
    end: i64,
    shlsize: u32,
    paddr: i64,
) -> Option<()> {
    let mut p = Rc {
        p0: paddr,
        p1: img.rd(ebx),
        p2: img.rd(ebx + 4),
    };
    let mut state = [0u32; 6];
    for (i, s) in state.iter_mut().enumerate() {
        *s = img.rd(ebx + 4 * i as i64);
    }
    let (mut eax_copy, mut ecx, mut edi) = (0u32, 0u32, edi0);
    let (mut eax, mut ebp): (u32, u32);
    let mut edx: i64;
    loop {
        eax = eax_copy;
        edx = ebx + i64::from(eax << 2) + 0x58;
        if bit(img, &mut p, edx) != 0 {
            let al = eax & 0xff;
            let al = if al + 0xf9 > 0xff { 3 + 8 } else { 8 };
            eax = (eax & 0xffff_ff00) | al;
            ebp = state[2];
            ecx = (ecx & 0xffff_ff00) | 0x30;
            edx += i64::from(ecx);
            if bit(img, &mut p, edx) == 0 {
                // A new distance.
                eax = eax.wrapping_sub(1);
                let t = ebp;
                ebp = state[4];
                state[4] = state[3];
                state[3] = t;
                eax_copy = eax;
                edx = ebx + 0xbc0;
                state[5] = ebp;
                let len = length(img, &mut p, eax, &mut ecx, &mut edx)?;
                ecx = 3;
                let kopia = len;
                eax = len.wrapping_sub(1);
                if eax >= ecx {
                    eax = ecx;
                }
                ecx = 0x40;
                eax <<= 6;
                let base = ebx + i64::from(eax << 2) + 0x378;
                eax = tree(img, &mut p, 1, ecx, &mut edx, base)?;
                ebp = eax;
                if eax & 0xff >= 4 {
                    ebp = 2 + (eax & 1);
                    eax >>= 1;
                    eax = eax.wrapping_sub(1);
                    // (eax takes ecx here, and is overwritten before use.)
                    ecx = eax;
                    ebp = ebp.wrapping_shl(ecx & 0xff);
                    edx = ebx + i64::from(ebp << 2) + 0x178;
                    if ecx & 0xff > 5 {
                        ecx = (ecx & 0xffff_ff00) | ((ecx & 0xff) - 4);
                        eax = 0;
                        loop {
                            if !img.ok(p.p0, 4) {
                                return None;
                            }
                            let mut t = img.rd(p.p0).swap_bytes();
                            p.p1 >>= 1;
                            t = t.wrapping_sub(p.p2);
                            eax <<= 1;
                            if t >= p.p1 {
                                eax += 1;
                                p.p2 = p.p2.wrapping_add(p.p1);
                            }
                            if p.p1 & 0xff00_0000 == 0 {
                                p.p2 <<= 8;
                                p.p1 <<= 8;
                                p.p0 += 1;
                            }
                            ecx = ecx.wrapping_sub(1);
                            if ecx == 0 {
                                break;
                            }
                        }
                        ecx = (ecx & 0xffff_ff00) | 4;
                        eax <<= 4;
                        ebp = ebp.wrapping_add(eax);
                        edx = ebx + 0x18;
                    }
                    eax = 1u32.wrapping_shl(ecx & 0xff);
                    let base = edx;
                    let t = ecx;
                    ecx = eax;
                    eax = tree(img, &mut p, 1, ecx, &mut edx, base)?;
                    ecx = t;
                    let mut acc = ((eax as i32) >> 31) as u32;
                    loop {
                        acc = acc.wrapping_add(acc).wrapping_add(eax & 1);
                        eax >>= 1;
                        ecx = ecx.wrapping_sub(1);
                        if ecx == 0 {
                            break;
                        }
                    }
                    ebp = ebp.wrapping_add(acc);
                }
                ebp = ebp.wrapping_add(1);
                ecx = kopia;
            } else {
                edx += i64::from(ecx);
                if bit(img, &mut p, edx) != 0 {
                    edx += 0x60;
                    if bit(img, &mut p, edx) != 0 {
                        edx += i64::from(ecx);
                        let r = bit(img, &mut p, edx);
                        let t = ebp;
                        ebp = state[4];
                        state[4] = state[3];
                        state[3] = t;
                        if r != 0 {
                            std::mem::swap(&mut ebp, &mut state[5]);
                        }
                    } else {
                        std::mem::swap(&mut ebp, &mut state[3]);
                    }
                } else {
                    edx += i64::from(ecx);
                    if bit(img, &mut p, edx) == 0 {
                        // A single byte from the last distance.
                        eax |= 1;
                        eax_copy = eax;
                        ecx = (ecx & 0xffff_ff00) | 0x80;
                        let from = edi - i64::from(state[2]);
                        if !img.ok(from, 1) || !img.ok(edi, 1) {
                            return None;
                        }
                        let b = img.byte(from);
                        img.b[edi as usize] = b;
                        edi += 1;
                        if edi >= end {
                            return Some(());
                        }
                        continue;
                    }
                }
                eax_copy = eax;
                edx = ebx + 0x778;
                let len = length(img, &mut p, eax, &mut ecx, &mut edx)?;
                eax = ecx;
                ecx = len;
            }
            let n = i64::from(ecx);
            let back = i64::from(ebp);
            if !img.ok(edi, n) || !img.ok(edi - back, n + 1) {
                return None;
            }
            state[2] = ebp;
            for _ in 0..ecx {
                let b = img.b[(edi - back) as usize];
                img.b[edi as usize] = b;
                edi += 1;
            }
            eax = (eax & 0xffff_ff00) | u32::from(img.byte(edi - back));
            ecx = 0x80;
        } else {
            let mut al;
            loop {
                al = eax & 0xff;
                al = if al + 0xfd > 0xff { al - 3 } else { 0 };
                eax = (eax & 0xffff_ff00) | al;
                if al < 7 {
                    break;
                }
            }
            eax_copy = eax;
            ebp = if edi > edi0 && edi < img.b.len() as i64 {
                u32::from(img.byte(edi - 1)) >> shlsize
            } else {
                0
            };
            ebp = ebp.wrapping_mul(0x300);
            let probs = ebx + i64::from(ebp << 2) + 0x1008;
            let saved = edi;
            eax = (eax & 0xffff_ff00) | 1;
            if ecx != 0 {
                let mut cl = ecx as u8;
                let m = edi - i64::from(state[2]);
                if !img.ok(m, 1) {
                    return None;
                }
                let mb = img.byte(m);
                loop {
                    eax = (eax & 0xffff_00ff) | if mb & cl != 0 { 0x200 } else { 0x100 };
                    edx = probs + i64::from(eax << 2);
                    let r = bit(img, &mut p, edx);
                    let mut al = (eax & 0xff) as u8;
                    al = al.wrapping_add(al).wrapping_add(r as u8);
                    eax = (eax & 0xffff_ff00) | u32::from(al);
                    cl >>= 1;
                    if cl != 0 {
                        let ah = (((eax >> 8) & 0xff) as u8).wrapping_sub(al) & 1;
                        if ah == 0 {
                            eax = (eax & 0xffff_0000) | (u32::from(ah) << 8) | u32::from(al);
                            eax = tree(img, &mut p, eax, 0x100, &mut edx, probs)?;
                            break;
                        }
                    } else {
                        break;
                    }
                }
            } else {
                ecx = (ecx & 0xffff_00ff) | 0x100;
                eax = tree(img, &mut p, eax, ecx, &mut edx, probs)?;
            }
            ecx = 0;
            edi = saved;
        }
        if !img.ok(edi, 1) {
            return None;
        }
        img.b[edi as usize] = eax as u8;
        edi += 1;
        if edi >= end {
            return Some(());
        }
    }
}

/// `unupack` for the three-section layout; `None` where ClamAV's returns
/// -1 or 0.
fn unupack(
    mut img: Img,
    buff: &[u8],
    vma: u32,
    ep: u32,
    base: u32,
    va: u32,
    cap: u64,
) -> Option<Vec<u8>> {
    let ep = i64::from(ep);
    let b = |o: usize| buff.get(o).copied().unwrap_or(0);
    let v0297729 = b(5) == 0xff && b(6) == 0x36;
    let mut v0151477 = false;
    let mut esi = i64::from(u32_at(buff, 1).unwrap_or(0).wrapping_sub(vma));
    if !img.ok(esi, 12) {
        return None;
    }
    let original_ep = img.rd(esi).wrapping_sub(vma);
    esi += 8;
    let mut edi: i64;
    let (mut alvalue, lngjmpoff);
    if !v0297729 {
        edi = i64::from(img.rd(esi).wrapping_sub(vma));
        if !img.ok(ep + 0xa, 2) || img.byte(ep + 0xa) != 0xeb {
            return None;
        }
        esi = i64::from(img.byte(ep + 0xb) as i8) + ep + 0xc;
        alvalue = esi + 0x1a;
        if !img.ok(alvalue, 2) || img.byte(alvalue) != 0xeb {
            return None;
        }
        alvalue += 1;
        alvalue += i64::from(img.byte(alvalue)) + 1 + 0xa;
        lngjmpoff = 8;
    } else {
        edi = 0;
        if !img.ok(ep + 7, 5) || img.byte(ep + 7) != 0xe9 {
            return None;
        }
        esi = i64::from(img.rd(ep + 8) as i32) + ep + 0xc;
        alvalue = esi + 0x25;
        lngjmpoff = 10;
    }
    if !img.ok(alvalue, 2) || img.byte(alvalue) != 0xb5 {
        return None;
    }
    alvalue += 1;
    let mut count = u32::from(img.byte(alvalue));
    if !img.ok(alvalue, lngjmpoff + 5) || img.byte(alvalue + lngjmpoff) != 0xe9 {
        return None;
    }
    let mut shl = img.rd(alvalue + lngjmpoff + 1);
    shl = if !v0297729 {
        shl.wrapping_add(esi as u32)
            .wrapping_add(img.byte(esi + 0x1b) as i8 as u32)
            .wrapping_add(0x1c + 0x18)
    } else {
        shl.wrapping_add(esi as u32).wrapping_add(0x35)
    };
    let shl_at = i64::from(shl);
    alvalue = shl_at + 43;
    let (mut aljump, mut shroff) = (8i64, 24i64);
    if !img.ok(alvalue - 1, 2) || img.byte(alvalue - 1) != 0xe3 {
        alvalue = shl_at + 46;
        if !img.ok(alvalue - 1, 2) || img.byte(alvalue - 1) != 0xe3 {
            return None;
        }
        if !v0297729 {
            v0151477 = true;
        }
        aljump = 7;
        shroff = 26;
    }
    let _ = v0151477;
    alvalue += i64::from(img.byte(alvalue)) + 1;
    if !img.ok(alvalue, aljump + 5) || img.byte(alvalue + aljump) != 0xe9 {
        return None;
    }
    // An unsigned 32-bit jump added to a 64-bit pointer, as in ClamAV.
    let ret = img.rd(alvalue + aljump + 1);
    alvalue += i64::from(ret.wrapping_add(aljump as u32 + 1 + 4 + 27));
    if v0297729 {
        alvalue += 2;
    }
    let sh = shl_at + shroff;
    if !img.ok(sh, 3) || img.byte(sh) != 0xc1 || img.byte(sh + 1) != 0xed {
        return None;
    }
    let shlsize = u32::from(img.byte(sh + 2));
    count *= 0x100;
    if !(2..=8).contains(&shlsize) {
        return None;
    }
    if v0297729 {
        if !img.ok(esi + 6, 10) || img.byte(esi + 6) != 0xbe || img.byte(esi + 11) != 0xbf {
            return None;
        }
        let v = img.rd(esi + 7);
        if v < base || v > vma {
            return None;
        }
        edi = i64::from(img.rd(esi + 12).wrapping_sub(vma));
        esi = i64::from(v - base);
    } else {
        if !img.ok(esi + 7, 5) || img.byte(esi + 7) != 0xbe {
            return None;
        }
        esi = i64::from(img.rd(esi + 8).wrapping_sub(vma));
    }
    let (n, tail) = if v0297729 { (0x16, 0x64) } else { (0x27, 0x34) };
    if !img.ok(edi, n * 4 + 24 + 4 * i64::from(count)) || !img.ok(esi, n * 4 + tail + 4) {
        return None;
    }
    for _ in 0..n {
        let v = img.rd(esi);
        img.wr(edi, v);
        esi += 4;
        edi += 4;
    }
    let mut save3 = img.rd(esi + 4);
    let paddr = i64::from(img.rd(edi - 4).wrapping_sub(vma));
    let ebx = edi;
    img.wr(edi, 0xffff_ffff);
    edi += 4;
    img.wr(edi, 0);
    edi += 4;
    for _ in 0..4 {
        img.wr(edi, 1);
        edi += 4;
    }
    for _ in 0..count {
        img.wr(edi, 0x400);
        edi += 4;
    }
    // Not parenthesised in ClamAV: a signed read, then the base.
    edi = i64::from(img.rd(esi + 0xc) as i32) - i64::from(vma);
    if v0297729 {
        edi = i64::from(vma) - i64::from(base);
    }
    let pushed_esi = edi;
    let end = if v0297729 {
        save3 = img.rd(esi + 0x40);
        i64::from(img.rd(esi + 0x64) as i32) - i64::from(vma)
    } else {
        i64::from(img.rd(esi + 0x34) as i32) - i64::from(vma)
    };
    if edi > end {
        return None;
    }
    unupack399(&mut img, ebx, edi, end, shlsize, paddr)?;
    // Restore CALL/JMP targets.
    if !img.ok(alvalue, 1) {
        return None;
    }
    let search = img.byte(alvalue);
    let mut ecx: i64 = 0;
    while save3 != 0 {
        if !img.ok(pushed_esi + ecx, 1) {
            return None;
        }
        let op = img.byte(pushed_esi + ecx);
        if op == 0xe8 || op == 0xe9 {
            let adr = pushed_esi + ecx + 1;
            ecx += 1;
            if !img.ok(adr, 4) {
                return None;
            }
            let v = img.rd(adr);
            if v as u8 != search {
                continue;
            }
            img.wr(
                adr,
                (v & 0xffff_ff00)
                    .swap_bytes()
                    .wrapping_sub(ecx as u32)
                    .wrapping_sub(4),
            );
            ecx += 4;
            save3 -= 1;
        } else {
            ecx += 1;
        }
    }
    let size = (end - edi) as u32;
    if u64::from(size) > img.b.len() as u64 {
        return None;
    }
    let section = RSect {
        raw: 0,
        rva: va,
        rsz: size,
        vsz: size,
    };
    rebuild(&img.b, &[section], base, original_ep, 0, 0, 0, cap)
}

pub(crate) fn unpack(
    file: &[u8],
    pe: &PeHeader,
    epbuff: &[u8],
    limits: &UnpackLimits,
) -> Result<Step, UnpackError> {
    let ib = pe.image_base;
    let b = |o: usize| epbuff.get(o).copied().unwrap_or(0);
    let imm = u32_at(epbuff, 1).unwrap_or(0).wrapping_sub(ib);
    let upack = pe.opt_hdr_size == 0x148;
    if !(upack
        && pe.sections.len() == 3
        && b(0) == 0xbe
        && imm > pe.min
        && ((b(5) == 0xad && b(6) == 0x50) || (b(5) == 0xff && b(6) == 0x36)))
    {
        return Ok(Step::Next);
    }
    let fail = |d: &str| {
        Ok(Step::Failed(UnpackError::Failed {
            packer: Packer::Upack,
            detail: d.to_string(),
        }))
    };
    let (s0, s1, s2) = (pe.sections[0], pe.sections[1], pe.sections[2]);
    let ssize = s0.ursz.wrapping_add(s0.uraw);
    let off = s0.rva;
    let vma = ib.wrapping_add(s0.rva);
    let dsize = s0.vsz.wrapping_add(s1.vsz).wrapping_add(s2.vsz);
    limits.check(
        Packer::Upack,
        u64::from(dsize.max(ssize).max(s1.ursz)),
        file.len() as u64,
    )?;
    let d = u64::from(dsize);
    let in0 = |at: u32, n: u32| {
        let (at, n) = (u64::from(at), u64::from(n));
        d > 0 && n > 0 && n <= d && at + n <= d && at < d
    };
    if !in0(s1.rva.wrapping_sub(off), s1.ursz)
        || !in0(s2.rva.wrapping_sub(s0.rva), ssize)
        || ssize > dsize
    {
        return fail("the sections do not fit the image");
    }
    let mut img = Img {
        b: vec![0u8; dsize as usize],
    };
    let Some(head) = file.get(..ssize as usize) else {
        return fail("the first section is past the end of the file");
    };
    let to = s2.rva.wrapping_sub(s0.rva) as usize;
    img.b[to..to + head.len()].copy_from_slice(head);
    let Some(raw) = file.get(s1.uraw as usize..s1.uraw as usize + s1.ursz as usize) else {
        return fail("the second section is past the end of the file");
    };
    let at = s1.rva.wrapping_sub(off) as usize;
    img.b[at..at + raw.len()].copy_from_slice(raw);
    // ClamAV copies the headers to the front first, then moves them up: the
    // front keeps them too.
    let n = head.len().min(img.b.len());
    if to != 0 {
        let front = file.get(..n).unwrap_or(&[]);
        // (memmove: the front is what was read, unless overwritten above.)
        for (k, &v) in front.iter().enumerate() {
            if !(at..at + raw.len()).contains(&k) && !(to..to + head.len()).contains(&k) {
                img.b[k] = v;
            }
        }
    }
    match unupack(img, epbuff, vma, pe.ep, ib, s0.rva, limits.output_cap()) {
        Some(image) => Ok(Step::Done(Packer::Upack, image)),
        None => fail("the packed data is broken"),
    }
}
