//! The decompressor of FSG, also used by PESpin (ClamAV's `cli_unfsg`): an
//! aPLib-like LZ77 whose control bits come a byte at a time.

use crate::pe::{PeHeader, contained, rawaddr, u32_at};
use crate::{Packer, Step, UnpackError, UnpackLimits};

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

/// A layout recognised whose data does not hold up: ClamAV tries the next
/// packer.
fn failed(detail: &str) -> Result<Step, UnpackError> {
    Ok(Step::Failed(UnpackError::Failed {
        packer: Packer::Fsg,
        detail: detail.to_string(),
    }))
}

/// `file[at..at + len]`, or the error that the `what` is past its end.
fn part<'f>(file: &'f [u8], at: u32, len: u32, what: &str) -> Result<&'f [u8], UnpackError> {
    file.get(at as usize..at as usize + len as usize)
        .ok_or_else(|| UnpackError::Failed {
            packer: Packer::Fsg,
            detail: format!("the {what} is past the end of the file"),
        })
}

/// The table of FSG 1.31 and 1.33, from file offset `t` to the packed
/// section: (its length, its bytes).
fn section_table<'f>(
    file: &'f [u8],
    t: u32,
    s1_raw: u32,
    limits: &UnpackLimits,
) -> Result<(u32, &'f [u8]), UnpackError> {
    let gp = s1_raw.wrapping_sub(t);
    limits.check(Packer::Fsg, u64::from(gp), file.len() as u64)?;
    Ok((gp, part(file, t, gp, "section table")?))
}

/// The end of FSG 1.31 and 1.33: the streams from `src[from..]` into
/// `dsize` bytes, rebuilt as the sections at `rvas` (the raw data when the
/// rebuild fails).
fn finish_133(
    src: &[u8],
    from: u32,
    dsize: u32,
    rvas: &[u32],
    base: u32,
    oep: u32,
    limits: &UnpackLimits,
) -> Result<Step, UnpackError> {
    // 1.31 checks the source against the packed section's raw offset, not
    // its size, so `from` may be past the data: ClamAV's stream size is
    // then negative and its decompressor fails at once.
    let streams = src.get(from as usize..).unwrap_or(&[]);
    match unfsg_133(streams, dsize, rvas, base, oep, limits.output_cap()) {
        Ok((_, Some(image))) => Ok(Step::Done(Packer::Fsg, image)),
        Ok((raw, None)) => Ok(Step::Done(Packer::Fsg, raw)),
        Err(()) => failed("the compressed data is broken"),
    }
}

/// FSG 2.0 (ClamAV's first FSG layout): the stub swaps the stack to a
/// table in the packed section that gives the destination (the empty
/// section), the source, and the original entry point; the program is one
/// block, rebuilt as one section. When the rebuild fails, ClamAV scans the
/// decompressed data as it is.
pub(crate) fn unpack_v200(
    file: &[u8],
    pe: &PeHeader,
    epbuff: &[u8],
    i: usize,
    limits: &UnpackLimits,
) -> Result<Step, UnpackError> {
    let (Some(s0), Some(s1)) = (pe.sections.get(i), pe.sections.get(i + 1)) else {
        return Ok(Step::Next);
    };
    if epbuff.get(..2) != Some(b"\x87\x25") {
        return Ok(Step::Next);
    }
    let (ssize, dsize) = (s1.rsz, s0.vsz);
    limits.check(Packer::Fsg, u64::from(dsize.max(ssize)), file.len() as u64)?;
    if ssize <= 0x19 || dsize <= ssize {
        // ClamAV stops looking at the file here.
        return Ok(Step::Stop);
    }
    let ib = pe.image_base;
    let in_s1 = |v: u32, n: i64| contained(i64::from(s1.rva), i64::from(s1.rsz), i64::from(v), n);
    let newedx = u32_at(epbuff, 2).unwrap_or(0).wrapping_sub(ib);
    if !in_s1(newedx, 4) {
        return failed("the stack swap points outside the packed section");
    }
    let src = part(file, s1.raw, ssize, "packed section")?;
    let at = |v: u32| i64::from(v) - i64::from(s1.rva);
    let rd = |o: i64| {
        usize::try_from(o)
            .ok()
            .and_then(|o| u32_at(src, o))
            .unwrap_or(0)
    };
    if newedx < s1.rva || !contained(0, i64::from(ssize), at(newedx), 4) {
        return failed("the new stack is outside the packed section");
    }
    let esp = rd(at(newedx)).wrapping_sub(ib);
    if !in_s1(esp, 4) {
        return failed("the new stack is outside the packed section");
    }
    let table = at(esp);
    if !contained(0, i64::from(ssize), table, 32) {
        return failed("the new stack is outside the packed section");
    }
    let newedi = rd(table).wrapping_sub(ib);
    let newesi = rd(table + 4).wrapping_sub(ib);
    let newebx = rd(table + 16).wrapping_sub(ib);
    if newedi != s0.rva {
        return failed("the destination is not the empty section");
    }
    if newesi < s1.rva || newesi - s1.rva >= s1.rsz {
        return failed("the source is outside the packed section");
    }
    if !in_s1(newebx, 16) {
        return failed("the function table is outside the packed section");
    }
    let oep = rd(at(newebx) + 12).wrapping_sub(ib);
    let mut dest = vec![0u8; dsize as usize];
    if unfsg(&src[(newesi - s1.rva) as usize..], &mut dest).is_none() {
        return failed("the compressed data is broken");
    }
    let section = crate::rebuild::RSect {
        raw: 0,
        rsz: dsize,
        vsz: dsize,
        rva: newedi,
    };
    let image = crate::rebuild::rebuild(&dest, &[section], ib, oep, 0, 0, 0, limits.output_cap())
        .unwrap_or(dest);
    Ok(Step::Done(Packer::Fsg, image))
}

/// `unfsg_133`: `count + 1` streams one after the other, each into the
/// next part of `dest`; the sections (RVAs given) get their sizes from
/// what each stream wrote, are sorted by RVA, and rebuilt. `Err(())` where
/// ClamAV's returns -1; `Ok(None)` where its rebuild fails (then the raw
/// data is scanned).
fn unfsg_133(
    src: &[u8],
    dsize: u32,
    rvas: &[u32],
    base: u32,
    ep: u32,
    cap: u64,
) -> Result<(Vec<u8>, Option<Vec<u8>>), ()> {
    use crate::rebuild::{RSect, rebuild};
    let mut dest = vec![0u8; dsize as usize];
    let (mut s, mut d) = (0usize, 0usize);
    let mut sections: Vec<RSect> = Vec::with_capacity(rvas.len());
    for &rva in rvas {
        let (src_part, dst_part) = (src.get(s..).unwrap_or(&[]), &mut dest[d..]);
        let (read, written) = unfsg(src_part, dst_part).ok_or(())?;
        sections.push(RSect {
            rva,
            vsz: 0,
            raw: d as u32,
            rsz: written as u32,
        });
        s += read;
        d += written;
    }
    // Bubble sort by RVA, as ClamAV's (every field but the size moves).
    let mut upd = true;
    while upd {
        upd = false;
        for t in 0..sections.len() - 1 {
            if sections[t].rva > sections[t + 1].rva {
                sections.swap(t, t + 1);
                upd = true;
            }
        }
    }
    let mut lastsz = dsize;
    for t in 0..sections.len() {
        if t + 1 < sections.len() {
            let v = sections[t + 1].rva.wrapping_sub(sections[t].rva);
            sections[t].vsz = v;
            lastsz = lastsz.wrapping_sub(v);
        } else {
            sections[t].vsz = lastsz;
        }
    }
    let rebuilt = rebuild(&dest, &sections, base, ep, 0, 0, 0, cap);
    Ok((dest, rebuilt))
}

/// FSG 1.33: a table before the packed section gives the destination, the
/// source and the RVAs of the other original sections, each its own
/// stream.
pub(crate) fn unpack_v133(
    file: &[u8],
    pe: &PeHeader,
    epbuff: &[u8],
    i: usize,
    limits: &UnpackLimits,
) -> Result<Step, UnpackError> {
    let (Some(s0), Some(s1)) = (pe.sections.get(i), pe.sections.get(i + 1)) else {
        return Ok(Step::Next);
    };
    let ib = pe.image_base;
    let table_rva = u32_at(epbuff, 1).unwrap_or(0).wrapping_sub(ib);
    if epbuff.first() != Some(&0xbe) || table_rva >= pe.min {
        return Ok(Step::Next);
    }
    let (ssize, dsize) = (s1.rsz, s0.vsz);
    limits.check(Packer::Fsg, u64::from(dsize.max(ssize)), file.len() as u64)?;
    if ssize <= 0x19 || dsize <= ssize {
        return Ok(Step::Stop);
    }
    // The table is in the headers (an RVA below them is its file offset).
    let Some(t) = rawaddr(table_rva, &[], file.len() as u64, pe.hdr_size) else {
        return failed("the section table is not in the headers");
    };
    let (gp, support) = section_table(file, t, s1.raw, limits)?;
    let rd = |o: u32| u32_at(support, o as usize).unwrap_or(0);
    let newedi = rd(4).wrapping_sub(ib);
    let newesi = rd(8).wrapping_sub(ib);
    if newesi < s1.rva || newesi - s1.rva >= s1.rsz {
        return failed("the source is outside the packed section");
    }
    if newedi != s0.rva {
        return failed("the destination is not the empty section");
    }
    let mut count = 0u32;
    let mut t = 12u32;
    while t < gp.wrapping_sub(4) {
        let rva = rd(t);
        if rva == 0 {
            break;
        }
        let rva = rva.wrapping_sub(ib.wrapping_add(1));
        count += 1;
        if rva < s0.rva || rva - s0.rva >= s0.vsz {
            break;
        }
        t += 4;
    }
    if t >= gp.wrapping_sub(4) || rd(t) != 0 {
        return failed("the section table does not end");
    }
    let mut rvas = vec![newedi];
    for k in 1..=count {
        rvas.push(rd(8 + k * 4).wrapping_sub(1).wrapping_sub(ib));
    }
    let src = part(file, s1.raw, ssize, "packed section")?;
    let oep = pe
        .vep
        .wrapping_add(161 + 6)
        .wrapping_add(u32_at(epbuff, 163).unwrap_or(0));
    finish_133(src, newesi - s1.rva, dsize, &rvas, ib, oep, limits)
}

/// FSG 1.31: as 1.33, with the other sections' addresses as 16-bit page
/// numbers in a table before the packed section.
pub(crate) fn unpack_v131(
    file: &[u8],
    pe: &PeHeader,
    epbuff: &[u8],
    i: usize,
    limits: &UnpackLimits,
) -> Result<Step, UnpackError> {
    let (Some(s0), Some(s1)) = (pe.sections.get(i), pe.sections.get(i + 1)) else {
        return Ok(Step::Next);
    };
    let ib = pe.image_base;
    let b = |o: usize| epbuff.get(o).copied().unwrap_or(0);
    let rd_ep = |o: usize| u32_at(epbuff, o).unwrap_or(0);
    let table_rva = rd_ep(1).wrapping_sub(ib);
    if b(0) != 0xbb
        || table_rva >= pe.min
        || b(5) != 0xbf
        || b(10) != 0xbe
        || pe.vep < s1.rva
        || pe.vep - s1.rva <= s1.rva.wrapping_sub(0xe0)
    {
        return Ok(Step::Next);
    }
    let Some(t) = rawaddr(table_rva, &[], file.len() as u64, pe.hdr_size) else {
        return failed("the section table is not in the headers");
    };
    let newesi = rd_ep(11).wrapping_sub(ib);
    let newedi = rd_ep(6).wrapping_sub(ib);
    let ep_off = pe.vep - s1.rva;
    // (ClamAV compares with the raw offset here, not the raw size.)
    if newesi < s1.rva || newesi - s1.rva >= s1.raw {
        return failed("the source is outside the packed section");
    }
    if newedi != s0.rva {
        return failed("the destination is not the empty section");
    }
    let (ssize, dsize) = (s1.rsz, s0.vsz);
    limits.check(Packer::Fsg, u64::from(dsize.max(ssize)), file.len() as u64)?;
    if ssize <= 0x19 || dsize <= ssize {
        return Ok(Step::Stop);
    }
    let (gp, support) = section_table(file, t, s1.raw, limits)?;
    // Signed chars in ClamAV: a byte over 0x7f spreads its sign.
    let page = |o: usize| -> u32 {
        let lo = i32::from(support.get(o).copied().unwrap_or(0) as i8);
        let hi = i32::from(support.get(o + 1).copied().unwrap_or(0) as i8);
        (lo | (hi << 8)) as u32
    };
    let mut count = 0u32;
    let mut t = 0u32;
    while t < gp.wrapping_sub(2) {
        let v = page(t as usize);
        if v == 1 || v == 2 {
            break;
        }
        let rva = (v.wrapping_sub(2) << 12).wrapping_sub(ib);
        count += 1;
        if rva < s0.rva || rva - s0.rva >= s0.vsz {
            break;
        }
        t += 2;
    }
    if t >= gp.wrapping_sub(10) || u32_at(support, t as usize + 6) != Some(2) || count == 0 {
        return failed("the section table does not end");
    }
    let mut rvas = vec![newedi];
    for k in 0..count as usize {
        rvas.push((page(k * 2).wrapping_sub(2) << 12).wrapping_sub(ib));
    }
    let src = part(file, s1.raw, ssize, "packed section")?;
    let g: u32 = 0xda + 6 * u32::from(b(16) == 0xe8);
    let jmp = u32_at(src, (g + 2 + ep_off) as usize).unwrap_or(0);
    let oep = pe.vep.wrapping_add(g + 6).wrapping_add(jmp);
    finish_133(src, newesi - s1.rva, dsize, &rvas, ib, oep, limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FSG 1.31's source may point past the packed data (found with a
    /// crafted file, which panicked): the unpacking fails, as in ClamAV.
    #[test]
    fn a_source_past_the_packed_data_fails() {
        let src = [0u8; 0x200];
        for from in [0x200, 0x300, u32::MAX] {
            let step = finish_133(
                &src,
                from,
                0x4000,
                &[0x3000],
                0x40_0000,
                0x1000,
                &UnpackLimits::default(),
            );
            assert!(
                matches!(&step, Ok(Step::Failed(UnpackError::Failed { detail, .. })) if detail.contains("broken")),
                "{from:#x}"
            );
        }
    }
}
