//! ClamAV's generic PE rebuild (`cli_rebuildpe`): a fixed DOS header and
//! stub, a lookalike PE header with every data directory zero (but the
//! resources, when given), one `.clamNN` section per unpacked section
//! (preceded by an `empty` one when the first does not start right after
//! the headers), and the sections' bytes at 0x200-aligned file offsets.
//! Several unpackers (Petite, ASPack, MEW, WWPack, ...) end here.

use crate::pe::align_up;
use crate::upx::HEADERS;

/// The PE and optional header that follow [`HEADERS`] (0x78 bytes; the
/// section count, entry point, image base and sizes are filled in).
const FAKE_PE: &[u8; 0x78] = b"\
\x50\x45\x00\x00\x4C\x01\xFF\xFF\x43\x4C\x41\x4D\x00\x00\x00\x00\
\x00\x00\x00\x00\xE0\x00\x83\x8F\x0B\x01\x00\x00\x00\x10\x00\x00\
\x00\x10\x00\x00\x00\x00\x00\x00\xFF\xFF\xFF\xFF\x00\x10\x00\x00\
\x00\x10\x00\x00\xFF\xFF\xFF\xFF\x00\x10\x00\x00\x00\x02\x00\x00\
\x01\x00\x00\x00\x00\x00\x00\x00\x03\x00\x0A\x00\x00\x00\x00\x00\
\x00\x10\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\
\x00\x00\x10\x00\x00\x10\x00\x00\x00\x00\x10\x00\x00\x10\x00\x00\
\x00\x00\x00\x00\x10\x00\x00\x00";

/// A section of unpacked data: where it goes in memory (`rva`, `vsz`) and
/// where its bytes are in the unpacker's buffer (`raw`, `rsz`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RSect {
    pub rva: u32,
    pub vsz: u32,
    pub raw: u32,
    pub rsz: u32,
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    if let Some(d) = b.get_mut(at..at + 4) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

/// Rebuilds a PE from `buffer` and its `sections`; `None` where ClamAV's
/// gives up (more than 96 sections, more than 1 GiB), or past `cap` bytes
/// of section data (sections may overlap: 96 of them could ask for 96
/// times the buffer). `align`: 0, or the alignment some unpackers round
/// sections to.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rebuild(
    buffer: &[u8],
    sections: &[RSect],
    base: u32,
    ep: u32,
    res_rva: u32,
    res_size: u32,
    align: u32,
    cap: u64,
) -> Option<Vec<u8>> {
    let sects = sections.len() as u32;
    let first = sections.first()?;
    let mut rawbase = align_up(0x148 + 0x80 + 0x28 * sects, 0x200);
    let ghost = first.rva > align_up(rawbase, 0x1000);
    if ghost {
        rawbase = align_up(0x148 + 0x80 + 0x28 * (sects + 1), 0x200);
    }
    if sects + u32::from(ghost) > 96 {
        return None;
    }
    let aligned = |v: u32| if align == 0 { v } else { align_up(v, align) };
    let mut datasize: u64 = 0;
    for s in sections {
        datasize += u64::from(align_up(aligned(s.rsz), 0x200));
    }
    if datasize > u64::from(crate::MAX_ALLOCATION) || datasize > cap {
        return None;
    }
    let mut pefile = vec![0u8; rawbase as usize + datasize as usize];
    pefile[..0xd0].copy_from_slice(HEADERS);
    pefile[0xd0..0x148].copy_from_slice(FAKE_PE);
    let mut vsize = align_up(rawbase, 0x1000);
    pefile[0xd0 + 6..0xd0 + 8].copy_from_slice(&((sects + u32::from(ghost)) as u16).to_le_bytes());
    put32(&mut pefile, 0xd0 + 0x28, ep);
    put32(&mut pefile, 0xd0 + 0x34, base);
    put32(&mut pefile, 0xd0 + 0x54, rawbase);
    put32(&mut pefile, 0x148 + 0x10, res_rva);
    put32(&mut pefile, 0x148 + 0x14, res_size);
    let mut cur = 0x148 + 0x80;
    if ghost {
        pefile[cur..cur + 5].copy_from_slice(b"empty");
        put32(&mut pefile, cur + 8, first.rva.wrapping_sub(vsize));
        put32(&mut pefile, cur + 12, vsize);
        put32(&mut pefile, cur + 0x24, 0xffff_ffff);
        cur += 40;
        vsize = vsize.wrapping_add(align_up(first.rva.wrapping_sub(vsize), 0x1000));
    }
    for (i, s) in sections.iter().enumerate() {
        // snprintf(.., 8, ".clam%.2d"): at most 7 characters.
        let name = format!(".clam{:02}", i + 1);
        let name = &name.as_bytes()[..name.len().min(7)];
        pefile[cur..cur + name.len()].copy_from_slice(name);
        put32(&mut pefile, cur + 8, aligned(s.vsz));
        put32(&mut pefile, cur + 12, aligned(s.rva));
        put32(&mut pefile, cur + 16, aligned(s.rsz));
        put32(&mut pefile, cur + 20, rawbase);
        put32(&mut pefile, cur + 0x24, 0xffff_ffff);
        // The section's bytes; what lies past the buffer stays zero.
        let from = s.raw as usize;
        let n = s.rsz as usize;
        let at = rawbase as usize;
        if let Some(src) = buffer.get(from..) {
            let n = n.min(src.len()).min(pefile.len().saturating_sub(at));
            pefile[at..at + n].copy_from_slice(&src[..n]);
        }
        cur += 40;
        rawbase += align_up(aligned(s.rsz), 0x200);
        vsize = vsize.wrapping_add(align_up(aligned(s.vsz), 0x1000));
    }
    put32(&mut pefile, 0xd0 + 0x50, vsize);
    pefile.truncate(rawbase as usize);
    Some(pefile)
}
