//! Petite 2.x: the program's sections, mapped at their RVAs, hold a list
//! of blocks that the stub moves and decompresses (an NRV-like bit stream
//! read a byte at a time, literals XORed with the bytes left) into the
//! original sections; the stub's own code is stripped from the last one and
//! the encrypted entry point recovered from its clues, then the PE is
//! rebuilt (`rebuild`). Read from ClamAV's `petite.c`; its quirks kept.

use crate::pe::{PeHeader, contained, u32_at};
use crate::rebuild::{RSect, rebuild};
use crate::{Packer, Step, UnpackError, UnpackLimits};

/// The buffer: the sections mapped from the lowest RVA on. Positions are
/// signed, as ClamAV's pointer arithmetic may go below the buffer.
struct Buf {
    b: Vec<u8>,
}

impl Buf {
    fn ok(&self, at: i64, len: i64) -> bool {
        contained(0, self.b.len() as i64, at, len)
    }
    fn rd(&self, at: i64) -> u32 {
        usize::try_from(at)
            .ok()
            .and_then(|a| u32_at(&self.b, a))
            .unwrap_or(0)
    }
    /// `cli_readint32` is signed: a position plus a read value may go down.
    fn rdi(&self, at: i64) -> i64 {
        i64::from(self.rd(at) as i32)
    }
}

/// The Petite bit reader: one byte of bits at a time, top bit first,
/// refilled from the source stream when only the marker bit is left.
fn doubledl(buf: &Buf, src: &mut i64, dl: &mut u8) -> Option<u32> {
    let old = *dl;
    *dl = old.wrapping_mul(2);
    if old & 0x7f == 0 {
        if *src < 0 || *src >= buf.b.len() as i64 - 1 {
            return None;
        }
        let v = buf.b[*src as usize];
        *dl = v.wrapping_mul(2).wrapping_add(1);
        *src += 1;
        return Some(u32::from(v >> 7));
    }
    Some(u32::from(old >> 7))
}

struct Inflate<'a> {
    buf: Buf,
    minrva: u32,
    sections: &'a [crate::pe::Section],
    image_base: u32,
    pep: u32,
    version: u32,
    res: (u32, u32),
    cap: u64,
}

impl Inflate<'_> {
    fn idx(&self, rva: u32) -> i64 {
        i64::from(rva) - i64::from(self.minrva)
    }

    /// `petite_inflate2x_1to9`; `None` where ClamAV's returns 1.
    fn run(mut self) -> Option<Vec<u8>> {
        let sectcount = self.sections.len();
        let top = self.sections.get(sectcount.checked_sub(1)?)?.rva;
        let (mut packed, grown, skew): (i64, u32, u32) = if self.version == 2 {
            (self.idx(top) + 0x1b8, 0x355, 0x35)
        } else {
            (self.idx(top) + 0x178, 0x323, 0x34)
        };
        let mut usects: Vec<RSect> = Vec::new();
        let (mut bottom, mut enc_ep, mut irva) = (0u32, 0u32, 0u32);
        let mut mangled = false;
        let mut check4resources = 0u32;
        loop {
            if !self.buf.ok(packed, 4) {
                return None;
            }
            let srva = self.buf.rd(packed);
            if srva == 0 {
                return self.finish(usects, enc_ep, irva, mangled, top);
            }
            let size = srva & 0x7fff_ffff;
            if srva != size {
                // Move a packed block to the end of its section.
                check4resources = 0;
                if !self.buf.ok(packed + 4, 8) {
                    return None;
                }
                bottom = self.buf.rd(packed + 8);
                if bottom > u32::MAX - 4 {
                    return None;
                }
                bottom += 4;
                let back = i64::from(size.wrapping_sub(1).wrapping_mul(4));
                let ssrc = self.buf.rdi(packed + 4) - i64::from(self.minrva) - back;
                let ddst = self.buf.rdi(packed + 8) - i64::from(self.minrva) - back;
                let n = i64::from(size.wrapping_mul(4));
                if !self.buf.ok(ssrc, n) || !self.buf.ok(ddst, n) {
                    return None;
                }
                self.buf
                    .b
                    .copy_within(ssrc as usize..(ssrc + n) as usize, ddst as usize);
                packed += 0x0c;
                continue;
            }
            // Decompress one original section.
            if !self.buf.ok(packed + 4, 8) {
                return None;
            }
            let mut size = self.buf.rd(packed + 4);
            let thisrva = self.buf.rd(packed + 8);
            packed += 0x10;
            if usects.len() >= 96 {
                return None;
            }
            let vsz = if (bottom.wrapping_sub(thisrva) as i32) > 0 {
                bottom.wrapping_sub(thisrva)
            } else {
                size
            };
            let mut us = RSect {
                rva: thisrva,
                rsz: size,
                vsz,
                raw: 0,
            };
            if size == 0 {
                usects.push(us);
                continue;
            }
            let mut ssrc = self.idx(srva);
            let mut ddst = self.idx(thisrva);
            let holder = self.sections.iter().find(|s| {
                contained(
                    i64::from(s.rva),
                    i64::from(s.vsz),
                    i64::from(us.rva),
                    i64::from(us.vsz),
                )
            })?;
            if check4resources == 0 {
                us.rva = holder.rva;
                us.rsz = thisrva.wrapping_sub(holder.rva).wrapping_add(size);
            }
            usects.push(us);
            let (check1, check2, goback) = if size < 0x10000 {
                (0xffff_c060u32, 0xffff_fc60u32, 5)
            } else if size < 0x40000 {
                (0xffff_8180, 0xffff_f980, 7)
            } else {
                (0xffff_8300, 0xffff_fb00, 8)
            };
            if !self.buf.ok(ssrc, 1) || !self.buf.ok(ddst, 1) {
                return None;
            }
            size -= 1;
            self.buf.b[ddst as usize] = self.buf.b[ssrc as usize];
            ddst += 1;
            ssrc += 1;
            let mut dl = 0u8;
            let mut oldback: i32 = 0;
            while size > 0 {
                let bit = doubledl(&self.buf, &mut ssrc, &mut dl)?;
                if bit == 0 {
                    if !self.buf.ok(ssrc, 1) || !self.buf.ok(ddst, 1) {
                        return None;
                    }
                    self.buf.b[ddst as usize] = self.buf.b[ssrc as usize] ^ (size as u8);
                    ddst += 1;
                    ssrc += 1;
                    size -= 1;
                    continue;
                }
                let mut addsize: u32 = 0;
                let mut backbytes: i32 = 1;
                loop {
                    let b = doubledl(&self.buf, &mut ssrc, &mut dl)?;
                    if backbytes >= i32::MAX / 2 {
                        return None;
                    }
                    backbytes = backbytes * 2 + b as i32;
                    if doubledl(&self.buf, &mut ssrc, &mut dl)? == 0 {
                        break;
                    }
                }
                backbytes -= 3;
                let mut backsize: u32;
                if backbytes >= 0 {
                    for _ in 0..goback {
                        let b = doubledl(&self.buf, &mut ssrc, &mut dl)?;
                        if backbytes >= i32::MAX / 2 {
                            return None;
                        }
                        backbytes = backbytes * 2 + b as i32;
                    }
                    backbytes ^= -1;
                    addsize += 1
                        + u32::from(backbytes < check2 as i32)
                        + u32::from(backbytes < check1 as i32);
                    oldback = backbytes;
                    backsize = 0;
                } else {
                    backsize = (backbytes + 1) as u32;
                    backbytes = oldback;
                }
                backsize = backsize
                    .wrapping_mul(2)
                    .wrapping_add(doubledl(&self.buf, &mut ssrc, &mut dl)?);
                backsize = backsize
                    .wrapping_mul(2)
                    .wrapping_add(doubledl(&self.buf, &mut ssrc, &mut dl)?);
                if backsize == 0 {
                    backsize = 1;
                    loop {
                        let b = doubledl(&self.buf, &mut ssrc, &mut dl)?;
                        backsize = backsize.wrapping_mul(2).wrapping_add(b);
                        if doubledl(&self.buf, &mut ssrc, &mut dl)? == 0 {
                            break;
                        }
                    }
                    backsize = backsize.wrapping_add(2);
                }
                backsize = backsize.wrapping_add(addsize);
                size = size.wrapping_sub(backsize);
                let from = ddst + i64::from(backbytes);
                let n = i64::from(backsize);
                if !self.buf.ok(ddst, n) || !self.buf.ok(from, n) {
                    return None;
                }
                for k in 0..n as usize {
                    self.buf.b[ddst as usize + k] = self.buf.b[from as usize + k];
                }
                ddst += n;
            }
            // The stub's code at the end of the last section: strip it, and
            // keep the clues to the entry point.
            let last = usects.last_mut()?;
            let magic = |buf: &Buf, at: i64| {
                buf.ok(at, 8) && buf.rd(at) == 0x645e_c033 && buf.rd(at + 4) == 0x1b8b_188b
            };
            let g = i64::from(grown);
            let reloc = if last.rsz > grown && magic(&self.buf, ddst - g + 5 + 0x4f) {
                Some(0u32)
            } else if last.rsz > grown.wrapping_add(skew)
                && magic(&self.buf, ddst - g + 5 + 0x4f - i64::from(skew))
            {
                Some(skew)
            } else {
                None
            };
            if let Some(reloc) = reloc {
                let r = i64::from(reloc);
                let base = ddst - g - r;
                if self.buf.ok(base + 0x0f - 8, 8) {
                    let test1 = self.buf.rd(base + 0x0f - 8) ^ 0x9d66_61aa;
                    let test2 = self.buf.rd(base + 0x0f - 4) ^ 0xe908_c483;
                    if test1 == test2 && self.buf.ok(base + 0x0f, 0x1c0 - 0x0f + 4) {
                        irva = self.buf.rd(base + 0x121);
                        enc_ep = self.buf.rd(base + 0x0f) ^ test1;
                        mangled = self.buf.rd(base + 0x1c0) != 0x9090_9090;
                    }
                    last.rsz = last.rsz.wrapping_sub(grown.wrapping_add(reloc));
                }
            }
            check4resources += 1;
        }
    }

    /// The list's end: sort the sections, guess their sizes, decrypt the
    /// entry point, compact the data and rebuild.
    fn finish(
        mut self,
        mut usects: Vec<RSect>,
        mut enc_ep: u32,
        irva: u32,
        mangled: bool,
        top: u32,
    ) -> Option<Vec<u8>> {
        if usects.is_empty() {
            return None;
        }
        // Bubble sort by RVA (stable, as ClamAV's: raw stays in place).
        let mut upd = true;
        while upd {
            upd = false;
            for t in 0..usects.len() - 1 {
                if usects[t].rva <= usects[t + 1].rva {
                    continue;
                }
                let (a, b) = (usects[t], usects[t + 1]);
                usects[t] = RSect { raw: a.raw, ..b };
                usects[t + 1] = RSect { raw: b.raw, ..a };
                upd = true;
            }
        }
        for t in 0..usects.len() - 1 {
            usects[t].vsz = usects[t + 1].rva.wrapping_sub(usects[t].rva);
        }
        if enc_ep != 0 {
            let mut virtaddr = self.pep.wrapping_add(5).wrapping_add(self.image_base);
            let mut rndm: i32 = 0;
            let mut workdone = false;
            if self.version == 2 {
                let mut dummy = true;
                let mut thunk = self.idx(irva);
                while dummy && self.buf.ok(thunk, 4) {
                    let t = self.buf.rdi(thunk);
                    if t == 0 {
                        workdone = true;
                        break;
                    }
                    let mut imports = t - i64::from(self.minrva);
                    thunk += 4;
                    dummy = false;
                    while self.buf.ok(imports, 4) {
                        dummy = false;
                        imports += 4;
                        let mut api = self.buf.rd(imports - 4);
                        if api == 0 {
                            dummy = true;
                            break;
                        }
                        if api & 0x8000_0000 == 0 && mangled && {
                            rndm -= 1;
                            rndm < 0
                        } {
                            api = virtaddr;
                            virtaddr = virtaddr.wrapping_add(5);
                            rndm = (virtaddr & 7) as i32;
                        } else {
                            api = 0xbff0_1337;
                        }
                        if top.wrapping_add(self.image_base) < api {
                            enc_ep = enc_ep.wrapping_sub(1);
                        }
                        if api < virtaddr {
                            enc_ep = enc_ep.wrapping_sub(1);
                        }
                        let tmp = ((enc_ep & 0xffff_fff8) >> 3) & 0x1fff_ffff;
                        enc_ep = ((enc_ep & 7) << 29) | tmp;
                    }
                }
            } else {
                workdone = true;
            }
            enc_ep = self.pep.wrapping_add(5).wrapping_add(enc_ep);
            if !workdone {
                enc_ep = usects[0].rva;
            }
        }
        // Compact the sections' bytes to the front of the buffer.
        for t in 0..usects.len() {
            usects[t].raw = if t > 0 {
                usects[t - 1].raw.wrapping_add(usects[t - 1].rsz)
            } else {
                0
            };
            if usects[t].rsz == 0 {
                continue;
            }
            let (raw, rsz) = (i64::from(usects[t].raw), i64::from(usects[t].rsz));
            if self.buf.ok(raw, rsz) {
                let from = self.idx(usects[t].rva);
                let mut tmp = vec![0u8; rsz as usize];
                for (k, b) in tmp.iter_mut().enumerate() {
                    // What lies outside the buffer reads as zeros here.
                    if let Ok(a) = usize::try_from(from + k as i64) {
                        *b = self.buf.b.get(a).copied().unwrap_or(0);
                    }
                }
                self.buf.b[raw as usize..(raw + rsz) as usize].copy_from_slice(&tmp);
            } else {
                usects[t].raw = if t > 0 { usects[t - 1].raw } else { 0 };
                usects[t].rsz = 0;
            }
        }
        rebuild(
            &self.buf.b,
            &usects,
            self.image_base,
            enc_ep,
            self.res.0,
            self.res.1,
            0,
            self.cap,
        )
    }
}

pub(crate) fn unpack(
    file: &[u8],
    pe: &PeHeader,
    epbuff: &[u8],
    limits: &UnpackLimits,
) -> Result<Step, UnpackError> {
    let n = pe.sections.len();
    let mov_eax = |s: &crate::pe::Section| {
        epbuff.first() == Some(&0xb8)
            && u32_at(epbuff, 1) == Some(s.rva.wrapping_add(pe.image_base))
    };
    let version = match (
        pe.sections.last(),
        n.checked_sub(2).map(|i| &pe.sections[i]),
    ) {
        (Some(last), _) if mov_eax(last) => 2,
        (_, Some(prev)) if mov_eax(prev) => 1,
        _ => return Ok(Step::Next),
    };
    if u32_at(epbuff, 0x80) == Some(0x163c_988d) {
        // Level zero compression: ClamAV does not support it either.
        return Ok(Step::Next);
    }
    let dsize = pe.max.wrapping_sub(pe.min);
    limits.check(Packer::Petite, u64::from(dsize), file.len() as u64)?;
    let mut buf = vec![0u8; dsize as usize];
    for s in &pe.sections {
        if s.raw == 0 {
            continue;
        }
        let at = i64::from(s.rva) - i64::from(pe.min);
        let src = file.get(s.raw as usize..s.raw as usize + s.ursz as usize);
        match src {
            Some(src) if s.rsz != 0 && contained(0, i64::from(dsize), at, i64::from(s.ursz)) => {
                buf[at as usize..at as usize + src.len()].copy_from_slice(src);
            }
            // ClamAV gives up on the file here.
            _ => return Ok(Step::Stop),
        }
    }
    let sections = &pe.sections[..n - usize::from(version == 1)];
    let inflate = Inflate {
        buf: Buf { b: buf },
        minrva: pe.min,
        sections,
        image_base: pe.image_base,
        pep: pe.vep,
        version,
        res: pe.dirs[2],
        cap: limits.output_cap(),
    };
    Ok(match inflate.run() {
        Some(image) => Step::Done(Packer::Petite, image),
        None => Step::Failed(UnpackError::Failed {
            packer: Packer::Petite,
            detail: "the packed sections are broken".to_string(),
        }),
    })
}
