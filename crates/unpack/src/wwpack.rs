//! WWPack32: the program's sections, mapped at their RVAs after the
//! headers, are decompressed in place, block by block, from the descriptors
//! in the packer's (last) section; the PE header in front is then patched
//! (section count, entry point, image size, section table), as ClamAV's
//! `wwunpack.c` does. The image is the whole mapped program.

use crate::pe::{PeHeader, contained, u32_at};
use crate::{Packer, Step, UnpackError, UnpackLimits};

const EP_START: &[u8; 7] = b"\x53\x55\x8b\xe8\x33\xdb\xeb";
const EP_AT_68: &[u8; 19] =
    b"\xe8\x00\x00\x00\x00\x58\x2d\x6d\x00\x00\x00\x50\x60\x33\xc9\x50\x58\x50\x50";

/// The bit reader of the WWPack decompressor: 32-bit little-endian words,
/// top bit first, refilled as soon as one is used up.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    bt: u32,
    bc: u32,
}

impl Bits<'_> {
    fn reseed(&mut self) -> Option<()> {
        self.bc = 32;
        self.bt = u32_at(self.data, self.pos)?;
        self.pos += 4;
        Some(())
    }
    fn bit(&mut self) -> Option<u32> {
        let b = self.bt >> 31;
        self.bt <<= 1;
        self.bc -= 1;
        if self.bc == 0 {
            self.reseed()?;
        }
        Some(b)
    }
    fn bits(&mut self, n: u32) -> Option<u32> {
        let mut b = self.bt >> (32 - n);
        if self.bc >= n {
            self.bc -= n;
            self.bt = self.bt.checked_shl(n).unwrap_or(0);
            if self.bc == 0 {
                self.reseed()?;
            }
        } else {
            self.bt = u32_at(self.data, self.pos)?;
            self.pos += 4;
            self.bc += 32 - n;
            b |= self.bt >> self.bc;
            self.bt <<= 32 - self.bc;
        }
        Some(b)
    }
}

/// Decompresses one block from `comp` into `exe` at `at`; `None` on an
/// error (ClamAV's "decompression error").
fn block(exe: &mut [u8], mut at: usize, comp: &[u8]) -> Option<()> {
    let size = exe.len() as i64;
    let mut r = Bits {
        data: comp,
        pos: 0,
        bt: 0,
        bc: 0,
    };
    r.reseed()?;
    // Every step writes at least one byte or ends.
    loop {
        if r.bit()? == 0 {
            if r.pos >= comp.len() {
                return None;
            }
            *exe.get_mut(at)? = comp[r.pos];
            r.pos += 1;
            at += 1;
            continue;
        }
        let bits = r.bits(2)?;
        if bits == 3 {
            // Two bytes from 1 to 0x160 back.
            let sel = r.bits(2)?;
            let (mut shifted, mut subbed) = (sel + 5, 31u32);
            if sel >= 2 {
                shifted += 1;
                subbed += 0x80;
            }
            let back = (1u32 << shifted) - subbed;
            let b = r.bits(shifted)?;
            if b == 0x1ff {
                return Some(()); // end of block
            }
            let back = (back + b) as i64;
            let cur = at as i64;
            if !contained(0, size, cur, 2) || !contained(0, size, cur - back, 2) {
                return None;
            }
            let from = (cur - back) as usize;
            exe[at] = exe[from];
            exe[at + 1] = exe[from + 1];
            at += 2;
            continue;
        }
        let saved = bits;
        let sel = r.bits(3)?;
        let back = if sel < 6 {
            let mut n = sel;
            match sel {
                4 => {
                    n += 1;
                    n += r.bit()?;
                    n += 5;
                }
                3 => {
                    n += r.bit()?;
                    n += 5;
                }
                5 => n = 12,
                _ => n += 5,
            }
            r.bits(n)?.wrapping_add((1u32 << n).wrapping_sub(31))
        } else if sel == 6 {
            r.bits(0x0e)? + 0x1fe1
        } else {
            r.bits(0x0f)? + 0x5fe1
        };
        let len = if saved == 0 {
            if r.bit()? == 0 {
                r.bit()? + 5
            } else {
                let b = r.bits(3)?;
                if b != 0 {
                    b + 6
                } else {
                    let b = r.bits(4)?;
                    if b != 0 {
                        b + 13
                    } else {
                        let (mut cnt, mut shifted) = (4u32, 0x0du32);
                        loop {
                            if cnt == 7 {
                                cnt = 0x0e;
                                shifted = 0;
                                break;
                            }
                            shifted = ((shifted + 2) << 1) - 1;
                            cnt += 1;
                            if r.bit()? != 0 {
                                break;
                            }
                        }
                        r.bits(cnt)?.wrapping_add(shifted)
                    }
                }
            }
        } else {
            saved + 2
        };
        let cur = at as i64;
        let (back, len) = (i64::from(back), i64::from(len));
        if !contained(0, size, cur, len) || !contained(0, size, cur - back, len) {
            return None;
        }
        let from = (cur - back) as usize;
        for i in 0..len as usize {
            exe[at + i] = exe[from + i];
        }
        at += len as usize;
    }
}

pub(crate) fn unpack(
    file: &[u8],
    pe: &PeHeader,
    epbuff: &[u8],
    limits: &UnpackLimits,
) -> Result<Step, UnpackError> {
    let fail = |detail: &str| UnpackError::Failed {
        packer: Packer::WwPack,
        detail: detail.to_string(),
    };
    let n = pe.sections.len();
    let Some(last) = pe.sections.last() else {
        return Ok(Step::Next);
    };
    if n < 2
        || pe.vep != last.rva
        || epbuff.get(..7) != Some(EP_START)
        || epbuff.get(0x68..0x68 + 19) != Some(EP_AT_68)
    {
        return Ok(Step::Next);
    }
    let mut head = last.raw;
    let mut ssize: u32 = 0;
    for (i, s) in pe.sections.iter().enumerate() {
        head = head.min(s.raw);
        if i + 1 == n {
            break;
        }
        ssize = ssize.max(s.rva.wrapping_add(s.vsz));
    }
    if head == 0 || ssize == 0 || head > ssize {
        return Ok(Step::Next);
    }
    limits.check(Packer::WwPack, u64::from(ssize), file.len() as u64)?;
    let mut exe = vec![0u8; ssize as usize];
    let Some(headers) = file.get(..head as usize) else {
        return Err(fail("the headers are past the end of the file"));
    };
    exe[..head as usize].copy_from_slice(headers);
    for s in &pe.sections[..n - 1] {
        if s.rsz == 0 {
            continue;
        }
        let raw = file.get(s.raw as usize..s.raw as usize + s.rsz as usize);
        match raw {
            Some(raw) if contained(0, i64::from(ssize), i64::from(s.rva), i64::from(s.rsz)) => {
                exe[s.rva as usize..s.rva as usize + raw.len()].copy_from_slice(raw);
            }
            // "Probably hacked/damaged": the next packer is tried.
            _ => return Ok(Step::Failed(fail("a section lies outside the image"))),
        }
    }
    let wwsect = match file.get(last.raw as usize..last.raw as usize + last.rsz as usize) {
        Some(w) if last.rsz != 0 => w,
        _ => return Err(fail("the packer's section cannot be read")),
    };
    // The descriptors: (source delta, -, dwords, end of source), then a
    // byte telling whether another follows.
    let mut structs = 0x2a1usize;
    let esize = i64::from(ssize);
    loop {
        if !contained(0, wwsect.len() as i64, structs as i64, 17) {
            break;
        }
        let rd = |o: usize| u32_at(wwsect, structs + o).unwrap_or(0);
        let src = last.rva.wrapping_sub(rd(0));
        let szd = rd(8).wrapping_mul(4);
        let srcend = rd(12);
        let unpd = i64::from(src) + i64::from(srcend) + 4 - i64::from(szd);
        structs += 16;
        if szd == 0 || !contained(0, esize, unpd, i64::from(szd)) {
            break;
        }
        let (start, len) = (unpd as usize, szd as usize);
        let comp = exe[start..start + len].to_vec();
        exe[start..start + len].fill(0xff);
        if block(&mut exe, start, &comp).is_none() {
            return Ok(Step::Failed(fail("decompression error")));
        }
        let more = wwsect.get(structs).copied().unwrap_or(0);
        structs += 1;
        if more == 0 {
            break;
        }
    }
    let pehdr = pe.e_lfanew as i64;
    if !contained(0, esize, pehdr + 0x50, 4) || !contained(0, wwsect.len() as i64, 0x295, 4) {
        return Ok(Step::Failed(fail("the PE header is outside the image")));
    }
    let p = pe.e_lfanew as usize;
    let scount = (n - 1) as u16;
    exe[p + 6..p + 8].copy_from_slice(&scount.to_le_bytes());
    let ep = u32_at(wwsect, 0x295)
        .unwrap_or(0)
        .wrapping_add(last.rva)
        .wrapping_add(0x299);
    exe[p + 0x28..p + 0x2c].copy_from_slice(&ep.to_le_bytes());
    let image = u32_at(&exe, p + 0x50).unwrap_or(0).wrapping_sub(last.vsz);
    exe[p + 0x50..p + 0x54].copy_from_slice(&image.to_le_bytes());
    let opt = u32_at(&exe, p + 0x14).unwrap_or(0) & 0xffff;
    let mut table = opt as i64 + pehdr + 0x18;
    for s in &pe.sections[..n - 1] {
        if !contained(0, esize, table, 0x28) {
            return Ok(Step::Failed(fail("the section table is outside the image")));
        }
        let t = table as usize;
        for (o, v) in [(8, s.vsz), (12, s.rva), (16, s.vsz), (20, s.rva)] {
            exe[t + o..t + o + 4].copy_from_slice(&v.to_le_bytes());
        }
        table += 0x28;
    }
    if !contained(0, esize, table, 0x28) {
        return Ok(Step::Failed(fail("the section table is outside the image")));
    }
    exe[table as usize..table as usize + 0x28].fill(0);
    Ok(Step::Done(Packer::WwPack, exe))
}
