//! ASPack 2.12 to 2.42: the program's sections, mapped at their RVAs, are
//! decompressed block by block in place (an LZ77 with Huffman-coded
//! literals, lengths and offsets, whose code tables are rebuilt from the
//! stream), the first block's CALL/JMP targets are restored, and the PE is
//! rebuilt (`rebuild`) with the original entry point the stub keeps.
//! Read from ClamAV's `aspack.c`; its quirks (state kept from one block to
//! the next, shift counts masked as x86 masks them) are kept.

use crate::pe::{PeHeader, contained, u32_at};
use crate::rebuild::{RSect, rebuild};
use crate::{Packer, Step, UnpackError, UnpackLimits};

/// Per-version offsets from the entry point: the block list, the offsets
/// table, the stub data the decompressor reads, the CALL/JMP marker byte,
/// and the original entry point.
struct Version {
    blocks: u32,
    multipliers: u32,
    comp_block: u32,
    marker: u32,
    oep: u32,
    v212: bool,
}

const V212: Version = Version {
    blocks: 0x57c,
    multipliers: 0x70e,
    comp_block: 0x6d6,
    marker: 0x148,
    oep: 0x39b,
    v212: true,
};
const OTHER: Version = Version {
    blocks: 0x5d8,
    multipliers: 0x76a,
    comp_block: 0x732,
    marker: 0x13a,
    oep: 0x401,
    v212: false,
};
const V242: Version = Version {
    blocks: 0x5e4,
    multipliers: 0x776,
    comp_block: 0x73e,
    marker: 0x148,
    oep: 0x40d,
    v212: false,
};

/// A Huffman table: symbols by code order (`starts`), and the code length
/// for each top byte of short codes (`ends`).
struct Dict {
    starts: Vec<u32>,
    ends: [u8; 0x100],
}

struct Stream<'a> {
    bitpos: u32,
    hash: u32,
    init: [u32; 58],
    dicts: [Dict; 4],
    input: &'a [u8],
    pos: usize,
    decrypt_dict: [u8; 757],
    d3: [[u32; 24]; 4],
    d4: [[u32; 24]; 4],
    dict_ok: bool,
    array1: [u8; 19],
    array2: [u8; 758],
}

/// The size of each table: literals and lengths, offsets, offset low bits,
/// and the table of code lengths.
const SIZES: [usize; 4] = [721, 28, 8, 19];

impl Stream<'_> {
    fn read(&mut self) -> Option<()> {
        while self.bitpos >= 8 {
            let b = *self.input.get(self.pos)?;
            self.hash = (self.hash << 8) | u32::from(b);
            self.pos += 1;
            self.bitpos -= 8;
        }
        Some(())
    }

    /// The next 24 bits of the stream, at the bit position.
    fn peek24(&self) -> u32 {
        (self.hash >> (8 - self.bitpos)) & 0xff_ffff
    }

    fn getbits(&mut self, num: u32) -> Option<u8> {
        self.read()?;
        let v = self.peek24() >> (24 - num);
        self.bitpos += num;
        Some(v as u8)
    }

    fn getdec(&mut self, which: usize) -> Option<u32> {
        self.read()?;
        let ret = (self.hash >> (8 - self.bitpos)) & 0xff_fe00;
        let d3 = &self.d3[which];
        let pos: usize = if ret < d3[8] {
            let p = self.dicts[which].ends[(ret >> 16) as usize];
            if p == 0 || p >= 24 {
                return None;
            }
            usize::from(p)
        } else if ret < d3[10] {
            if ret < d3[9] { 9 } else { 10 }
        } else {
            (11..15).find(|&p| ret < d3[p]).unwrap_or(15)
        };
        self.bitpos += pos as u32;
        let v = (ret.wrapping_sub(d3[pos - 1]) >> (24 - pos)).wrapping_add(self.d4[which][pos]);
        self.dicts[which].starts.get(v as usize).copied()
    }

    /// `build_decrypt_array`: the table `which` from code lengths.
    fn build_array(&mut self, lengths: &[u8], which: usize) -> Option<()> {
        let size = SIZES[which];
        let mut bus = [0u32; 18];
        let mut dict = [0u32; 18];
        for &l in &lengths[..size] {
            *bus.get_mut(usize::from(l))? += 1;
        }
        self.d3[which][0] = 0;
        self.d4[which][0] = 0;
        let (mut sum, mut endoff) = (0u32, 0u32);
        for (i, counter) in (9..=23u32).rev().enumerate() {
            sum = sum.wrapping_add(bus[i + 1] << counter);
            if sum > 0x100_0000 {
                return None;
            }
            self.d3[which][i + 1] = sum;
            let v = bus[i].wrapping_add(self.d4[which][i]);
            self.d4[which][i + 1] = v;
            dict[i + 1] = v;
            if counter >= 0x10 {
                let old = endoff;
                endoff = sum >> 16;
                if endoff < old {
                    return None;
                }
                if endoff > old {
                    let ends = &mut self.dicts[which].ends;
                    ends.get_mut(old as usize..endoff as usize)?
                        .fill(i as u8 + 1);
                }
            }
        }
        if sum != 0x100_0000 {
            return None;
        }
        for (i, &l) in lengths[..size].iter().enumerate() {
            if l == 0 {
                continue;
            }
            let d = dict.get_mut(usize::from(l))?;
            *self.dicts[which].starts.get_mut(*d as usize)? = i as u32;
            *d += 1;
        }
        Some(())
    }

    /// `build_decrypt_dictionaries`: new code tables from the stream.
    fn build_dicts(&mut self) -> Option<()> {
        let first = self.getbits(1);
        if first != Some(1) {
            self.decrypt_dict = [0; 757];
        }
        first?;
        for c in 0..19 {
            self.array1[c] = self.getbits(4)?;
        }
        let a1 = self.array1;
        self.build_array(&a1, 3)?;
        let mut counter = 0usize;
        while counter < 757 {
            let ret = self.getdec(3)?;
            if ret >= 16 {
                if ret != 16 {
                    let mut n = if ret == 17 {
                        3 + u32::from(self.getbits(3)?)
                    } else {
                        11 + u32::from(self.getbits(7)?)
                    };
                    while n > 0 && counter < 757 {
                        self.array2[1 + counter] = 0;
                        counter += 1;
                        n -= 1;
                    }
                } else {
                    let mut n = 3 + u32::from(self.getbits(2)?);
                    while n > 0 && counter < 757 {
                        self.array2[1 + counter] = self.array2[counter];
                        counter += 1;
                        n -= 1;
                    }
                }
            } else {
                self.array2[1 + counter] =
                    (self.decrypt_dict[counter].wrapping_add(ret as u8)) & 0xf;
                counter += 1;
            }
        }
        let a2 = self.array2;
        self.build_array(&a2[1..], 0)?;
        self.build_array(&a2[722..], 1)?;
        self.build_array(&a2[750..], 2)?;
        self.dict_ok = a2[750..758].iter().any(|&v| v != 3);
        self.decrypt_dict.copy_from_slice(&a2[1..758]);
        Some(())
    }

    /// `decrypt`: one block into `out`, with the stub's tables in `stuff`.
    fn decrypt(&mut self, stuff: &[u8], out: &mut [u8]) -> Option<()> {
        let size = out.len() as u32;
        let st = |i: u32| stuff.get(i as usize).copied().unwrap_or(0);
        let mut hist = [0u32; 4];
        let mut counter = 0u32;
        while counter < size {
            let sym = self.getdec(0)?;
            if sym < 256 {
                out[counter as usize] = sym as u8;
                counter += 1;
                continue;
            }
            if sym >= 720 {
                self.build_dicts()?;
                continue;
            }
            let mut backbytes = (sym - 256) >> 3;
            let mut backsize = ((sym - 256) & 7) + 2;
            if backsize - 2 == 7 {
                let g = self.getdec(1)?;
                if g >= 0x56 {
                    return None;
                }
                let hlp = u32::from(st(g + 0x1c));
                self.read()?;
                backsize = backsize
                    .wrapping_add(u32::from(st(g)))
                    .wrapping_add(self.peek24().wrapping_shr(0x18u32.wrapping_sub(hlp)));
                self.bitpos = self.bitpos.wrapping_add(hlp);
            }
            let mut useold = self.init[backbytes as usize];
            let g = u32::from(st(backbytes + 0x38));
            if !self.dict_ok || g < 3 {
                self.read()?;
                useold = useold.wrapping_add(self.peek24().wrapping_shr(24u32.wrapping_sub(g)));
                self.bitpos = self.bitpos.wrapping_add(g);
            } else {
                let g = g - 3;
                self.read()?;
                useold = useold.wrapping_add(
                    self.peek24()
                        .wrapping_shr(24u32.wrapping_sub(g))
                        .wrapping_mul(8),
                );
                self.bitpos = self.bitpos.wrapping_add(g);
                useold = useold.wrapping_add(self.getdec(2)?);
            }
            if useold < 3 {
                backbytes = hist[useold as usize];
                if useold != 0 {
                    hist[useold as usize] = hist[0];
                    hist[0] = backbytes;
                }
            } else {
                hist[2] = hist[1];
                hist[1] = hist[0];
                backbytes = useold - 3;
                hist[0] = backbytes;
            }
            backbytes = backbytes.wrapping_add(1);
            if backbytes == 0 || backbytes > counter || backsize > size - counter {
                return None;
            }
            for _ in 0..backsize {
                out[counter as usize] = out[(counter - backbytes) as usize];
                counter += 1;
            }
        }
        Some(())
    }
}

/// `unaspack` on the mapped image; `None` where ClamAV's returns 0.
fn unaspack(
    mut image: Vec<u8>,
    sections: &[crate::pe::Section],
    ep: u32,
    base: u32,
    v: &Version,
    cap: u64,
) -> Option<Vec<u8>> {
    let size = image.len() as u32;
    let at = |o: u32| ep.wrapping_add(o);
    let mut init = [0u32; 58];
    let mut j = 0u32;
    for (i, slot) in init.iter_mut().enumerate() {
        *slot = j;
        let p = at(i as u32).wrapping_add(v.multipliers);
        if p < size {
            j = j.wrapping_add(1u32.wrapping_shl(u32::from(image[p as usize])));
        }
    }
    let mut dicts_state: Option<([Dict; 4], [u8; 757])> = Some((
        SIZES.map(|n| Dict {
            starts: vec![0; n],
            ends: [0; 0x100],
        }),
        [0; 757],
    ));
    let stuff_at = at(v.comp_block) as usize;
    let mut hash = 0x10000u32;
    let (mut array1, mut array2) = ([0u8; 19], [0u8; 758]);
    let mut blocks = i64::from(at(v.blocks));
    let mut block_rva: u32 = 1;
    let mut i: u32 = 0;
    let rd = |img: &[u8], p: i64| {
        usize::try_from(p)
            .ok()
            .and_then(|p| u32_at(img, p))
            .unwrap_or(0)
    };
    // At most one block per 8 bytes of the image: every turn moves on.
    loop {
        if !contained(0, i64::from(size), blocks, 8) {
            break;
        }
        block_rva = rd(&image, blocks);
        if block_rva == 0 {
            break;
        }
        let block_size = rd(&image, blocks + 4);
        if block_size == 0
            || !contained(
                0,
                i64::from(size),
                i64::from(block_rva),
                i64::from(block_size),
            )
        {
            break;
        }
        let (start, len) = (block_rva as usize, block_size as usize);
        let mut input = vec![0u8; len + 0x10e];
        input[..len].copy_from_slice(&image[start..start + len]);
        // The stub's tables, as they are when this block starts.
        let stuff: Vec<u8> = (0..0x80)
            .map(|k| image.get(stuff_at + k).copied().unwrap_or(0))
            .collect();
        let (dicts, decrypt_dict) = dicts_state.take()?;
        let mut s = Stream {
            bitpos: 0x20,
            hash,
            init,
            dicts,
            input: &input,
            pos: 0,
            decrypt_dict,
            d3: [[0; 24]; 4],
            d4: [[0; 24]; 4],
            dict_ok: false,
            array1,
            array2,
        };
        // decomp_block: fresh decode tables, the rest carried over.
        s.decrypt_dict = [0; 757];
        let ok = s.build_dicts().is_some()
            && s.decrypt(&stuff, &mut image[start..start + len]).is_some();
        hash = s.hash;
        array1 = s.array1;
        array2 = s.array2;
        dicts_state = Some((s.dicts, s.decrypt_dict));
        if !ok {
            break;
        }
        if i == 0 && block_size > 7 {
            while i < block_size - 6 {
                let marker = image.get(at(v.marker) as usize).copied().unwrap_or(0);
                let p = (block_rva + i) as usize;
                if matches!(image[p], 0xe8 | 0xe9) && image[p + 1] == marker {
                    let target =
                        (u32_at(&image, p + 1).unwrap_or(0) & 0xffff_ff00).rotate_left(0x18);
                    image[p + 1..p + 5].copy_from_slice(&target.wrapping_sub(i).to_le_bytes());
                    i += 4;
                }
                i += 1;
            }
        }
        if v.v212 {
            blocks += 8;
        } else {
            blocks += 12;
            while rd(&image, blocks + 4) == 0xffff_fef2 {
                blocks += 12;
                if blocks > i64::from(size) {
                    break;
                }
            }
        }
    }
    if block_rva != 0 {
        return None;
    }
    let mut count = sections.len();
    if count > 2 && ep == sections[count - 2].rva && sections[count - 1].rsz == 0 {
        count -= 2;
    }
    let outsects: Vec<RSect> = sections[..count]
        .iter()
        .map(|s| RSect {
            rva: s.rva,
            vsz: s.vsz,
            raw: s.rva,
            rsz: s.vsz,
        })
        .collect();
    let oep = u32_at(&image, at(v.oep) as usize).unwrap_or(0);
    // A failed rebuild still gives an image: the mapped one.
    Some(rebuild(&image, &outsects, base, oep, 0, 0, 0, cap).unwrap_or(image))
}

pub(crate) fn unpack(
    file: &[u8],
    pe: &PeHeader,
    epbuff: &[u8],
    epsize: usize,
    limits: &UnpackLimits,
) -> Result<Step, UnpackError> {
    let fsize = file.len() as u64;
    let ep = u64::from(pe.ep);
    if !(ep + 58 + 0x70e < fsize || ep + 58 + 0x76a < fsize || ep + 58 + 0x776 < fsize)
        || epbuff.get(..8) != Some(b"\x60\xe8\x03\x00\x00\x00\xe9\xeb")
        || epsize < 0x3bf
    {
        return Ok(Step::Next);
    }
    let push_ret = |o: usize| epbuff.get(o..o + 6) == Some(b"\x68\x00\x00\x00\x00\xc3");
    let version = if push_ret(0x3b9) {
        &V212
    } else if push_ret(0x41f) {
        &OTHER
    } else if push_ret(0x42b) {
        &V242
    } else {
        return Ok(Step::Next);
    };
    let ssize = pe
        .sections
        .iter()
        .map(|s| s.rva.wrapping_add(s.vsz))
        .max()
        .unwrap_or(0);
    if ssize == 0 {
        return Ok(Step::Next);
    }
    limits.check(Packer::Aspack, u64::from(ssize), fsize)?;
    let mut image = vec![0u8; ssize as usize];
    for s in &pe.sections {
        if s.rsz == 0 {
            continue;
        }
        let src = file.get(s.raw as usize..s.raw as usize + s.rsz as usize);
        match src {
            Some(src) if contained(0, i64::from(ssize), i64::from(s.rva), i64::from(s.rsz)) => {
                image[s.rva as usize..s.rva as usize + src.len()].copy_from_slice(src);
            }
            _ => {
                return Ok(Step::Failed(UnpackError::Failed {
                    packer: Packer::Aspack,
                    detail: "a section lies outside the image".to_string(),
                }));
            }
        }
    }
    Ok(
        match unaspack(
            image,
            &pe.sections,
            pe.vep.wrapping_sub(1),
            pe.image_base,
            version,
            limits.output_cap(),
        ) {
            Some(image) => Step::Done(Packer::Aspack, image),
            None => Step::Failed(UnpackError::Failed {
                packer: Packer::Aspack,
                detail: "a compressed block is broken".to_string(),
            }),
        },
    )
}
