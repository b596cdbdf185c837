//! PESpin 1.1: layers of XOR and small polymorphic decryptors over the
//! packer's own section and the program's sections (the key depends on a
//! checksum of the file), then FSG-compressed sections grown back, and the
//! PE rebuilt (`rebuild`). Read from ClamAV's `spin.c`; its checks kept.

use crate::fsg::unfsg;
use crate::pe::{PeHeader, contained, u32_at};
use crate::rebuild::{RSect, rebuild};
use crate::{Packer, Step, UnpackError, UnpackLimits};

/// Runs the 0x24-byte decryptor at `code` on `al`; `None` for an unknown
/// instruction or a decryptor of the wrong shape.
fn exec86(mut al: u8, cl: u8, code: &[u8]) -> Option<u8> {
    let at = |i: usize| code.get(i).copied();
    let mut len = 0usize;
    while len < 0x24 {
        let op = at(len)?;
        len += 1;
        match op {
            0xeb => len += 2,
            0x0a => len += 1,
            0x90 | 0xf8 | 0xf9 => {}
            0x02 => {
                al = al.wrapping_add(cl);
                len += 1;
            }
            0x2a => {
                al = al.wrapping_sub(cl);
                len += 1;
            }
            0x04 => {
                al = al.wrapping_add(at(len)?);
                len += 1;
            }
            0x2c => {
                al = al.wrapping_sub(at(len)?);
                len += 1;
            }
            0x32 => {
                al ^= cl;
                len += 1;
            }
            0x34 => {
                al ^= at(len)?;
                len += 1;
            }
            0xfe => {
                al = if at(len)? == 0xc0 {
                    al.wrapping_add(1)
                } else {
                    al.wrapping_sub(1)
                };
                len += 1;
            }
            0xc0 => {
                let rol = at(len)? == 0xc0;
                len += 1;
                let n = u32::from(at(len)? & 7);
                al = if rol {
                    al.rotate_left(n)
                } else {
                    al.rotate_right(n)
                };
                len += 1;
            }
            _ => return None,
        }
    }
    (len == 0x24 && at(len)? == 0xaa).then_some(al)
}

/// The checksum the key depends on.
fn summit(data: &[u8]) -> u32 {
    let (mut eax, mut ebx) = (0xffff_ffffu32, 0xffff_ffffu32);
    for &b in data {
        eax ^= u32::from(b) << 8;
        eax = (eax >> 3) & 0x1fff_ffff;
        for _ in 0..4 {
            eax ^= (ebx >> 8) & 0xff;
            eax = eax.wrapping_add(0x7801_a108);
            eax ^= ebx;
            eax = eax.rotate_right(ebx & 31);
            std::mem::swap(&mut eax, &mut ebx);
        }
    }
    ebx
}

fn rd(b: &[u8], at: i64) -> Option<u32> {
    u32_at(b, usize::try_from(at).ok()?)
}

/// XORs `len` bytes at `at` with a shift-register key stream.
fn xor_stream(
    b: &mut [u8],
    at: i64,
    len: u32,
    mut key: u32,
    poly: u32,
    on_set: bool,
) -> Option<()> {
    let start = usize::try_from(at).ok()?;
    for byte in b.get_mut(start..start + len as usize)? {
        let bit = key & 1 == 1;
        key >>= 1;
        if bit == on_set {
            key ^= poly;
        }
        *byte ^= key as u8;
    }
    Some(())
}

/// `unspin`; `Err` with the reason where ClamAV's returns 1.
fn unspin(
    mut src: Vec<u8>,
    sections: &[crate::pe::Section],
    nep: u32,
    limits: &UnpackLimits,
) -> Result<Vec<u8>, UnpackError> {
    let fail = |d: &str| UnpackError::Failed {
        packer: Packer::PeSpin,
        detail: d.to_string(),
    };
    let ssize = src.len() as i64;
    let sectcnt = sections.len() - 1;
    let last = sections[sectcnt];
    let mut spinned = src
        .get(last.raw as usize..last.raw as usize + last.rsz as usize)
        .ok_or_else(|| fail("the packer's section is past the end of the file"))?
        .to_vec();
    let ep = i64::from(nep) - i64::from(last.rva);
    let byte = |b: &[u8], at: i64| usize::try_from(at).ok().and_then(|a| b.get(a).copied());
    let version = || fail("not spinned, or another version");
    if byte(&spinned, ep + 0xdb) != Some(0xbb) {
        return Err(version());
    }
    let mut key8 = byte(&spinned, ep + 0xdc).ok_or_else(version)?;
    if byte(&spinned, ep + 0xe0) != Some(0xb9) {
        return Err(version());
    }
    let len = rd(&spinned, ep + 0xe1).ok_or_else(version)?;
    if len != 0x11fe {
        return Err(version());
    }
    let sl = spinned.len() as i64;
    if !contained(0, sl, ep, i64::from(len) + 0x1fe5 - 1) {
        return Err(fail("the first layer runs past the section"));
    }
    // First layer: backwards, with a decreasing byte key.
    let mut cur = ep + 0x1fe5 + i64::from(len) - 1;
    for _ in 0..len {
        spinned[cur as usize] ^= key8;
        key8 = key8.wrapping_sub(1);
        cur -= 1;
    }
    if !contained(0, sl, ep + 0x3217, 4) {
        return Err(fail("the key runs past the section"));
    }
    let key32 = rd(&spinned, ep + 0x26eb).unwrap_or(0);
    if rd(&spinned, ep + 0x26eb + 5) != Some(0x5a0) {
        return Err(version());
    }
    xor_stream(&mut spinned, ep + 0x2d5, 0x5a0, key32, 0x8c32_8834, true)
        .ok_or_else(|| fail("the second layer runs past the section"))?;
    let sub = rd(&spinned, ep + 0x429).unwrap_or(0);
    let len = (ssize as u32).wrapping_sub(sub);
    if i64::from(len) >= ssize {
        return Err(fail("the checksummed length is past the end of the file"));
    }
    let key32 = rd(&spinned, ep + 0x3217)
        .unwrap_or(0)
        .wrapping_sub(summit(&src[..len as usize]));
    src[last.raw as usize..last.raw as usize + spinned.len()].copy_from_slice(&spinned);
    let ep = i64::from(nep) + i64::from(last.raw) - i64::from(last.rva);
    if !contained(0, ssize, ep + 0x3207, 4) {
        return Err(fail("the key runs past the end of the file"));
    }
    // XOR layer over the program's sections.
    let mut bitmap = rd(&src, ep + 0x3207).unwrap_or(0);
    for s in &sections[..sectcnt] {
        if bitmap & 1 == 1 {
            if !contained(0, ssize, i64::from(s.raw), i64::from(s.rsz)) {
                return Err(fail("a section is outside the file"));
            }
            xor_stream(&mut src, i64::from(s.raw), s.rsz, key32, 0xed43_af31, false)
                .ok_or_else(|| fail("a section is outside the file"))?;
        }
        bitmap >>= 1;
    }
    if rd(&src, ep + 0x644) != Some(0x180) {
        return Err(version());
    }
    let key = rd(&src, ep + 0x644 + 0x0c).unwrap_or(0);
    if !contained(0, ssize, ep + 0x28d3, 0x180) {
        return Err(fail("the third layer runs past the end of the file"));
    }
    xor_stream(&mut src, ep + 0x28d3, 0x180, key, 0xed43_af32, true)
        .ok_or_else(|| fail("the third layer runs past the end of the file"))?;
    let len = rd(&src, ep + 0x28dd).unwrap_or(0);
    if len != 0x1a1 {
        return Err(version());
    }
    // The first polymorphic decryptor decrypts the second's code.
    let code_at = usize::try_from(ep + 0x28dd + 0xf).map_err(|_| version())?;
    let emu = ep + 0x6d4;
    if !contained(0, ssize, emu, i64::from(len)) {
        return Err(fail("the first decryptor runs past the end of the file"));
    }
    let code: Vec<u8> = src
        .get(code_at..)
        .unwrap_or(&[])
        .iter()
        .take(0x30)
        .copied()
        .collect();
    for (k, n) in (1..=len).rev().enumerate() {
        let at = emu as usize + k;
        src[at] =
            exec86(src[at], n as u8, &code).ok_or_else(|| fail("the first decryptor is broken"))?;
    }
    let mut bitmap = rd(&src, ep + 0x6f1).unwrap_or(0);
    let code_at = ep + 0x755;
    for s in &sections[..sectcnt] {
        if bitmap & 1 == 1 {
            if !contained(0, ssize, code_at, 0x24) {
                return Err(fail("the section decryptor is past the end of the file"));
            }
            let code: Vec<u8> = src[code_at as usize..].iter().take(0x30).copied().collect();
            for (k, n) in (1..=s.rsz).rev().enumerate() {
                let at = s.raw as usize + k;
                let b = *src
                    .get(at)
                    .ok_or_else(|| fail("a section is outside the file"))?;
                src[at] = exec86(b, n as u8, &code)
                    .ok_or_else(|| fail("a section decryptor is broken"))?;
            }
        }
        bitmap >>= 1;
    }
    // Compressed sections grow back to their virtual size.
    let bitman = rd(&src, ep + 0x3061).unwrap_or(0);
    if limits.max_size != 0 {
        let mut total: u64 = 0;
        let mut b = bitman;
        for s in &sections[..sectcnt] {
            if b & 1 == 1 {
                total += u64::from(s.vsz);
                if total > limits.max_size {
                    return Err(UnpackError::TooLarge {
                        packer: Packer::PeSpin,
                        needed: total,
                        allowed: limits.max_size,
                    });
                }
            }
            b >>= 1;
        }
    }
    let raw_of = |s: &crate::pe::Section| -> Vec<u8> {
        src.get(s.raw as usize..)
            .unwrap_or(&[])
            .iter()
            .take(s.rsz as usize)
            .copied()
            .collect()
    };
    let mut sects: Vec<Vec<u8>> = Vec::with_capacity(sectcnt);
    let mut grown_mask = bitman;
    let mut failed = false;
    let mut b = bitman;
    for s in &sections[..sectcnt] {
        if b & 1 == 1 {
            let mut out = vec![0u8; s.vsz as usize];
            if unfsg(&raw_of(s), &mut out).is_none() {
                failed = true;
            }
            sects.push(out);
        } else {
            sects.push(raw_of(s));
        }
        b >>= 1;
    }
    if failed {
        return Err(fail("a compressed section is broken"));
    }
    // Resources compressed from some offset on.
    let key = rd(&src, ep + 0x2fee).unwrap_or(0);
    if key != 0
        && let Some(j) = sections[..sectcnt].iter().position(|s| {
            s.rva <= key
                && key - s.rva < s.vsz
                && contained(0, i64::from(s.rsz), 0, i64::from(key - s.rva))
        })
        && bitman & 1u32.wrapping_shl(j as u32) == 0
    {
        let s = sections[j];
        let off = (key - s.rva) as usize;
        let mut out = vec![0u8; s.vsz as usize];
        let raw = raw_of(&s);
        out[..off].copy_from_slice(&raw[..off.min(raw.len())]);
        if unfsg(raw.get(off..).unwrap_or(&[]), &mut out[off..]).is_some() {
            sects[j] = out;
            grown_mask |= 1u32.wrapping_shl(j as u32);
        }
    }
    let mut blob = Vec::new();
    let mut reb = Vec::with_capacity(sectcnt);
    let mut b = grown_mask;
    for (j, s) in sections[..sectcnt].iter().enumerate() {
        let rsz = if b & 1 == 1 { s.vsz } else { s.rsz };
        reb.push(RSect {
            raw: blob.len() as u32,
            rsz,
            rva: s.rva,
            vsz: s.vsz,
        });
        let mut part = sects[j].clone();
        part.resize(rsz as usize, 0);
        blob.extend_from_slice(&part);
        b >>= 1;
    }
    rebuild(&blob, &reb, 0x40_0000, 0x1000, 0, 0, 0, limits.output_cap())
        .ok_or_else(|| fail("the rebuilt PE would be too large"))
}

pub(crate) fn unpack(
    file: &[u8],
    pe: &PeHeader,
    epbuff: &[u8],
    limits: &UnpackLimits,
) -> Result<Step, UnpackError> {
    let n = pe.sections.len();
    let Some(last) = pe.sections.last() else {
        return Ok(Step::Next);
    };
    let end = last.rva.wrapping_add(last.rsz);
    if n < 2
        || pe.vep < last.rva
        || 0x3217 - 4 > end
        || pe.vep >= end.wrapping_sub(0x3217).wrapping_sub(4)
        || epbuff.get(4..14) != Some(b"\xe8\x00\x00\x00\x00\x8b\x1c\x24\x83\xc3")
    {
        return Ok(Step::Next);
    }
    limits.check(Packer::PeSpin, file.len() as u64, file.len() as u64)?;
    Ok(match unspin(file.to_vec(), &pe.sections, pe.vep, limits) {
        Ok(image) => Step::Done(Packer::PeSpin, image),
        Err(e) => Step::Failed(e),
    })
}
