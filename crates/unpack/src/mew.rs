//! MEW 11: the packed program sits in the second section; each original
//! section is decompressed (the FSG-like decompressor, ClamAV's `unmew`)
//! into the empty first one at the address the stream gives, then the PE is
//! rebuilt with 0x1000-aligned sections. Read from ClamAV's `mew.c` and
//! `pe.c`. MEW's LZMA variant is recognised but not unpacked here.

use crate::fsg::unfsg_in;
use crate::pe::{PeHeader, align_up, contained, u32_at};
use crate::rebuild::{RSect, rebuild};
use crate::{Packer, Step, UnpackError, UnpackLimits};

fn fail(detail: &str) -> Step {
    Step::Failed(UnpackError::Failed {
        packer: Packer::Mew,
        detail: detail.to_string(),
    })
}

/// `unmew11` without LZMA: `src` is the empty section (`dsize` bytes)
/// followed by the packed one (`ssize`).
#[allow(clippy::too_many_arguments)]
fn unmew11(
    src: &[u8],
    off: u32,
    ssize: u32,
    dsize: u32,
    base: u32,
    vadd: u32,
    cap: u64,
) -> Option<Vec<u8>> {
    let vma = base.checked_add(vadd)?;
    let size_sum = ssize.checked_add(dsize)?;
    let total = i64::from(size_sum);
    if !contained(0, total, i64::from(off), 12) {
        return None;
    }
    let rd = |at: i64| {
        usize::try_from(at)
            .ok()
            .and_then(|a| u32_at(src, a))
            .unwrap_or(0)
    };
    let source = i64::from(dsize) + i64::from(off);
    let entry_point = rd(source + 4);
    let newedi = rd(source + 8);
    let mut lesi = source + 12;
    let mut ledi = i64::from(newedi.wrapping_sub(vma));
    let mut loc_ds = size_sum.wrapping_sub(newedi.wrapping_sub(vma));
    let mut loc_ss = ssize.wrapping_sub(12).wrapping_sub(off);
    let mut out = src.to_vec();
    let mut sections: Vec<RSect> = vec![RSect::default()];
    let mut i = 0usize;
    loop {
        if !contained(0, total, lesi, i64::from(loc_ss))
            || !contained(0, total, ledi, i64::from(loc_ds))
        {
            return None;
        }
        // In place: the destination runs to the end of the buffer, over the
        // source, as in ClamAV.
        let (read, written) = unfsg_in(
            &mut out,
            lesi as usize,
            loc_ss as usize,
            ledi as usize,
            loc_ds as usize,
        )?;
        let f1 = lesi + read as i64;
        let f2 = ledi + written as i64;
        if !contained(0, total, f1, 4) {
            return None;
        }
        loc_ss = loc_ss.wrapping_sub((f1 + 4 - lesi) as u32);
        lesi = f1 + 4;
        let next = rd_vec(&out, f1);
        ledi = i64::from(next.wrapping_sub(vma));
        loc_ds = size_sum.wrapping_sub(next.wrapping_sub(vma));
        let val = align_up(f2 as u32, 0x1000);
        if i > 0 && val < sections[i].raw {
            return None;
        }
        sections[0].raw = 0;
        sections[0].rva = vadd;
        sections.push(RSect {
            raw: val,
            rva: val.wrapping_add(vadd),
            ..RSect::default()
        });
        let size = if i > 0 { val - sections[i].raw } else { val };
        sections[i].rsz = size;
        sections[i].vsz = size;
        if u64::from(sections[i].raw) + u64::from(size) > u64::from(dsize) {
            return None;
        }
        i += 1;
        if next == 0 {
            break;
        }
    }
    sections.truncate(i);
    rebuild(
        &out,
        &sections,
        base,
        entry_point.wrapping_sub(base),
        0,
        0,
        0x1000,
        cap,
    )
}

fn rd_vec(b: &[u8], at: i64) -> u32 {
    usize::try_from(at)
        .ok()
        .and_then(|a| u32_at(b, a))
        .unwrap_or(0)
}

pub(crate) fn unpack(
    file: &[u8],
    pe: &PeHeader,
    epbuff: &[u8],
    i: usize,
    limits: &UnpackLimits,
) -> Result<Step, UnpackError> {
    let (Some(s0), Some(s1)) = (pe.sections.get(i), pe.sections.get(i + 1)) else {
        return Ok(Step::Next);
    };
    if epbuff.first() != Some(&0xe9) {
        return Ok(Step::Next);
    }
    let fileoffset = pe
        .vep
        .wrapping_add(u32_at(epbuff, 1).unwrap_or(0))
        .wrapping_add(5);
    if fileoffset != 0x154 && fileoffset != 0x158 {
        return Ok(Step::Next);
    }
    let Some(tbuff) = file.get(fileoffset as usize..fileoffset as usize + 0xb0) else {
        return Ok(Step::Next);
    };
    let mut offdiff = u32_at(tbuff, 1).unwrap_or(0).wrapping_sub(pe.image_base);
    if offdiff <= s1.rva || offdiff >= s1.rva.wrapping_add(s1.raw).wrapping_sub(4) {
        return Ok(fail("ESI is not in the packed section"));
    }
    offdiff -= s1.rva;
    if s1.rsz == 0 {
        return Ok(fail("the packed section is empty"));
    }
    let (ssize, dsize) = (s1.vsz, s0.vsz);
    let Some(sum) = ssize.checked_add(dsize) else {
        return Ok(fail("the section sizes overflow"));
    };
    if offdiff >= sum {
        return Ok(fail("the data offset is past the sections"));
    }
    limits.check(Packer::Mew, u64::from(sum.max(s1.rsz)), file.len() as u64)?;
    if s1.rsz < offdiff.wrapping_add(12) || s1.rsz > ssize {
        return Ok(fail("the packed section's size does not fit"));
    }
    let mut src = vec![0u8; sum as usize];
    let Some(raw) = file.get(s1.raw as usize..s1.raw as usize + s1.rsz as usize) else {
        return Err(UnpackError::Failed {
            packer: Packer::Mew,
            detail: "the packed section is past the end of the file".to_string(),
        });
    };
    src[dsize as usize..dsize as usize + raw.len()].copy_from_slice(raw);
    if tbuff.get(0x7b) == Some(&0xe8) {
        let proc = u32_at(tbuff, 0x7c)
            .unwrap_or(0)
            .wrapping_add(fileoffset)
            .wrapping_add(0x80);
        let second = pe.sections.get(1).copied().unwrap_or_default();
        if !contained(
            i64::from(second.rva),
            i64::from(second.vsz),
            i64::from(proc),
            4,
        ) {
            return Ok(fail("the LZMA procedure is out of bounds"));
        }
        return Ok(fail("LZMA-compressed MEW is not supported yet"));
    }
    let first_rva = pe.sections.first().map_or(0, |s| s.rva);
    Ok(
        match unmew11(
            &src,
            offdiff,
            ssize,
            dsize,
            pe.image_base,
            first_rva,
            limits.output_cap(),
        ) {
            Some(image) => Step::Done(Packer::Mew, image),
            None => fail("the packed data is broken"),
        },
    )
}
