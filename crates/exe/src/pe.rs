//! PE32 and PE32+ headers, read as ClamAV's `cli_peheader` reads them for
//! signature offsets (`cli_pe_targetinfo`: no strict checks, sections outside
//! the file kept with a raw size of 0).
//!
//! ClamAV does not take section fields as they are: it rounds the virtual
//! address and the raw offset *down* to the section and file alignments and
//! the sizes *up*, cuts a raw size at the end of the file, and falls back to a
//! file alignment of 0x200 when a section's raw offset is a multiple of 0x200
//! but not of the declared alignment. `Sx+n` and `EP+n` are defined on those
//! adjusted values, so they are what this module records. All of it is
//! 32-bit arithmetic that wraps, as in C.

use object::ReadRef;
use object::pe::{
    ImageDataDirectory, ImageFileHeader, ImageOptionalHeader32, ImageOptionalHeader64,
    ImageSectionHeader,
};

use crate::error::{ExeError, Format};
use crate::{ExeInfo, ExeKind, PeInfo, Section};

/// `"PE\0\0"`.
const PE_SIGNATURE: u32 = 0x0000_4550;
/// The optional header magic of PE32+. ClamAV reads any other value as PE32.
const PE32PLUS_MAGIC: u16 = 0x20b;

fn truncated(what: &'static str, offset: u64, len: u64) -> ExeError {
    ExeError::Truncated {
        format: Format::Pe,
        what,
        offset,
        len,
    }
}

fn bad(what: &'static str, value: u64) -> ExeError {
    ExeError::BadField {
        format: Format::Pe,
        what,
        value,
    }
}

fn read<'d, T: object::Pod, R: ReadRef<'d>>(
    data: R,
    offset: u64,
    what: &'static str,
) -> Result<&'d T, ExeError> {
    data.read_at::<T>(offset)
        .map_err(|()| truncated(what, offset, std::mem::size_of::<T>() as u64))
}

/// `o` rounded down to a multiple of `a` (unchanged when `a` is 0).
fn align_down(o: u32, a: u32) -> u32 {
    o.checked_div(a).map_or(o, |q| q.wrapping_mul(a))
}

/// `o` rounded up to a multiple of `a`, wrapping at 2^32 as ClamAV's
/// `PESALIGN` does (unchanged when `a` is 0).
fn align_up(o: u32, a: u32) -> u32 {
    o.checked_div(a)
        .map_or(o, |q| (q + u32::from(!o.is_multiple_of(a))).wrapping_mul(a))
}

/// Whether `[start, start + len)` is non-empty and inside a file of `size` bytes
/// (ClamAV's `CLI_ISCONTAINED_0_TO`).
fn contained(size: u64, start: u32, len: u32) -> bool {
    let (start, len) = (u64::from(start), u64::from(len));
    size > 0 && len > 0 && len <= size && start + len <= size && start < size
}

pub(crate) fn parse<'d, R: ReadRef<'d>>(data: R) -> Result<ExeInfo, ExeError> {
    let fsize = data.len().map_err(|()| truncated("file", 0, 0))?;
    let magic: [u8; 2] = *read(data, 0, "DOS signature")?;
    if magic != *b"MZ" && magic != *b"ZM" {
        return Err(bad("no MZ signature", u64::from(u16::from_le_bytes(magic))));
    }
    let e_lfanew = read::<object::U32<object::LittleEndian>, R>(data, 60, "e_lfanew")?
        .get(object::LittleEndian);
    if e_lfanew == 0 {
        return Err(bad("e_lfanew is 0", 0));
    }
    let at = u64::from(e_lfanew);
    let signature = read::<object::U32<object::LittleEndian>, R>(data, at, "PE signature")?
        .get(object::LittleEndian);
    let file: &ImageFileHeader = read(data, at + 4, "file header")?;
    if signature != PE_SIGNATURE {
        return Err(bad("no PE signature", u64::from(signature)));
    }
    let le = object::LittleEndian;
    let nsections = file.number_of_sections.get(le);
    if nsections == 0 {
        return Err(bad("NumberOfSections is 0", 0));
    }
    let opt_size = u32::from(file.size_of_optional_header.get(le));
    let opt32_len = std::mem::size_of::<ImageOptionalHeader32>() as u32;
    let opt64_len = std::mem::size_of::<ImageOptionalHeader64>() as u32;
    if opt_size < opt32_len {
        return Err(bad("SizeOfOptionalHeader too small", u64::from(opt_size)));
    }
    let opt_at = at + 4 + std::mem::size_of::<ImageFileHeader>() as u64;
    let opt32: &ImageOptionalHeader32 = read(data, opt_at, "optional header")?;
    let plus = opt32.magic.get(le) == PE32PLUS_MAGIC;
    // (entry RVA, SizeOfHeaders, NumberOfRvaAndSizes, SectionAlignment, FileAlignment, fixed part)
    let (vep, hdr_size, ndirs, salign, mut falign, stored) = if plus {
        if opt_size < opt64_len {
            return Err(bad(
                "SizeOfOptionalHeader too small for PE32+",
                u64::from(opt_size),
            ));
        }
        let o: &ImageOptionalHeader64 = read(data, opt_at, "PE32+ optional header")?;
        (
            o.address_of_entry_point.get(le),
            o.size_of_headers.get(le),
            o.number_of_rva_and_sizes.get(le),
            o.section_alignment.get(le),
            o.file_alignment.get(le),
            opt64_len,
        )
    } else {
        (
            opt32.address_of_entry_point.get(le),
            opt32.size_of_headers.get(le),
            opt32.number_of_rva_and_sizes.get(le),
            opt32.section_alignment.get(le),
            opt32.file_alignment.get(le),
            opt32_len,
        )
    };
    let ndirs = ndirs.min(16);
    if opt_size < stored + 8 * ndirs {
        return Err(bad(
            "SizeOfOptionalHeader too small for the data directories",
            u64::from(opt_size),
        ));
    }
    let dirs_at = opt_at + u64::from(stored);
    let dirs: &[ImageDataDirectory] = data
        .read_slice_at(dirs_at, ndirs as usize)
        .map_err(|()| truncated("data directories", dirs_at, u64::from(8 * ndirs)))?;
    let data_dirs = dirs
        .iter()
        .map(|d| (d.virtual_address.get(le), d.size.get(le)))
        .collect();

    let hdr_size = align_up(hdr_size, salign);
    let sect_at = opt_at + u64::from(opt_size);
    let headers: &[ImageSectionHeader] = data
        .read_slice_at(sect_at, usize::from(nsections))
        .map_err(|()| truncated("section table", sect_at, 40 * u64::from(nsections)))?;

    // A raw offset that is a multiple of 0x200 but not of the declared file
    // alignment makes ClamAV use 0x200 for every section.
    if falign != 0x200
        && falign != 0
        && headers.iter().any(|h| {
            let ptr = h.pointer_to_raw_data.get(le);
            h.size_of_raw_data.get(le) != 0 && ptr % falign != 0 && ptr % 0x200 == 0
        })
    {
        falign = 0x200;
    }

    let mut sections = Vec::with_capacity(headers.len());
    for h in headers {
        let (urva, uvsz, uraw, mut ursz) = (
            h.virtual_address.get(le),
            h.virtual_size.get(le),
            h.pointer_to_raw_data.get(le),
            h.size_of_raw_data.get(le),
        );
        let rva = align_down(urva, salign);
        let mut vsz = align_up(uvsz, salign);
        let raw = align_down(uraw, falign);
        let mut rsz = align_up(ursz, falign);
        let mut outside_file = false;
        if rsz != 0 {
            if u64::from(raw) >= fsize || u64::from(uraw) >= fsize {
                rsz = 0;
                ursz = 0;
                outside_file = true;
            } else {
                if !contained(fsize, raw, rsz) {
                    rsz = (fsize - u64::from(raw)) as u32;
                }
                if !contained(fsize, uraw, ursz) {
                    ursz = (fsize - u64::from(uraw)) as u32;
                }
            }
        }
        if vsz == 0 && rsz != 0 {
            vsz = align_up(ursz, salign);
        }
        if urva >> 31 != 0 || uvsz >> 31 != 0 || (rsz != 0 && uraw >> 31 != 0) || ursz >> 31 != 0 {
            return Err(bad(
                "section field with the sign bit set",
                u64::from(urva.max(uvsz).max(uraw).max(ursz)),
            ));
        }
        let name_len = h.name.iter().position(|&b| b == 0).unwrap_or(h.name.len());
        sections.push(Section {
            name: String::from_utf8_lossy(&h.name[..name_len]).into(),
            raw,
            raw_size: rsz,
            rva,
            virtual_size: vsz,
            outside_file,
        });
    }

    let entry_point =
        rva_to_offset(vep, &sections, fsize, hdr_size).ok_or(ExeError::EntryPointUnmapped {
            format: Format::Pe,
            address: u64::from(vep),
        })?;
    let mut info = ExeInfo {
        kind: if plus {
            ExeKind::Pe32Plus
        } else {
            ExeKind::Pe32
        },
        big_endian: false,
        entry_point,
        entry_address: u64::from(vep),
        sections,
        pe: Some(PeInfo {
            header_size: hdr_size,
            section_alignment: salign,
            file_alignment: falign,
            data_dirs,
            version_info: Vec::new(),
        }),
    };
    let offsets = crate::version_info::version_info_offsets(data, &info, fsize);
    if let Some(pe) = &mut info.pe {
        pe.version_info = offsets;
    }
    Ok(info)
}

/// The file offset of `rva` (ClamAV's `cli_rawaddr`): an RVA inside the
/// headers is its own offset; otherwise the *last* section with raw data
/// that holds it decides.
pub(crate) fn rva_to_offset(
    rva: u32,
    sections: &[Section],
    fsize: u64,
    hdr_size: u32,
) -> Option<u32> {
    if rva < hdr_size {
        return (u64::from(rva) < fsize).then_some(rva);
    }
    sections
        .iter()
        .rev()
        .find(|s| s.raw_size != 0 && s.rva <= rva && s.raw_size > rva - s.rva)
        .map(|s| (rva - s.rva).wrapping_add(s.raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_as_clamav() {
        assert_eq!(align_down(0x1234, 0x200), 0x1200);
        assert_eq!(align_up(0x1234, 0x200), 0x1400);
        assert_eq!(align_up(0x1400, 0x200), 0x1400);
        assert_eq!(align_up(7, 0), 7);
        assert_eq!(align_down(7, 0), 7);
        // PESALIGN wraps in 32 bits.
        assert_eq!(align_up(0xffff_ff01, 0x200), 0);
    }

    #[test]
    fn contained_bounds() {
        assert!(contained(100, 0, 100));
        assert!(!contained(100, 1, 100));
        assert!(!contained(100, 0, 0));
        assert!(!contained(0, 0, 1));
    }
}
