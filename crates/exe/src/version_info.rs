//! Where a PE file's version-information strings are, for `VI` offsets.
//!
//! A signature with the offset `VI` matches only where one of the strings of
//! the file's `VS_VERSIONINFO` resource begins (its UTF-16 key, followed by
//! its value): `CompanyName`, `FileDescription`, `OriginalFilename`... ClamAV
//! collects those places while it reads the PE header (`cli_peheader`), from
//! at most 16 `RT_VERSION` resources, and stops at the first structure that
//! does not look right. The walk here follows it step by step, so that the
//! same strings count: a string without a value is skipped, a string table
//! that overruns its parent ends the search, a `VarFileInfo` before the
//! `StringFileInfo` is stepped over once.

use object::ReadRef;

use crate::ExeInfo;

/// `RT_VERSION`.
const RT_VERSION: u32 = 0x10;
/// Version resources looked at (ClamAV's `vinfo_list`).
const MAX_RESOURCES: usize = 16;
/// A version resource larger than this is not read (ClamAV maps any size;
/// real ones are a few KiB).
const MAX_RESOURCE: u32 = 16 << 20;
/// `VS_VERSIONINFO` header (6), key (0x20), padding (2), fixed info (0x34).
const VERSIONINFO_HEAD: usize = 6 + 0x20 + 2 + 0x34;

const KEY_VERSION_INFO: &[u8] = b"V\0S\0_\0V\0E\0R\0S\0I\0O\0N\0_\0I\0N\0F\0O\0\0\0";
const KEY_VAR_FILE_INFO: &[u8] = b"V\0a\0r\0F\0i\0l\0e\0I\0n\0f\0o\0\0\0";
const KEY_STRING_FILE_INFO: &[u8] = b"S\0t\0r\0i\0n\0g\0F\0i\0l\0e\0I\0n\0f\0o\0\0\0";
const FIXED_FILE_INFO_MAGIC: u32 = 0xfeef_04bd;

fn u16_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u32::from(u16::from_le_bytes([s[0], s[1]])))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// The file offsets at which `VI` signatures may match in a PE file of
/// `file_size` bytes, sorted; empty for other executables and for PE files
/// without version information.
pub fn version_info_offsets<'d, R: ReadRef<'d>>(
    data: R,
    info: &ExeInfo,
    file_size: u64,
) -> Vec<u32> {
    let mut out = Vec::new();
    let Some(pe) = &info.pe else {
        return out;
    };
    let Some(&(res_rva, res_size)) = pe.data_dirs.get(2) else {
        return out;
    };
    if res_size == 0 {
        return out;
    }
    let rawaddr = |rva: u32| info.pe_rva_to_offset(rva, file_size);
    let read = |at: u32, len: u32| -> Option<&'d [u8]> {
        data.read_bytes_at(u64::from(at), u64::from(len)).ok()
    };
    for rva in version_resources(&rawaddr, &read, res_rva) {
        // The resource's data entry: where its bytes are, and how many.
        let Some(entry) = rawaddr(rva).and_then(|o| read(o, 16)) else {
            continue;
        };
        let (Some(data_rva), Some(size)) = (u32_at(entry, 0), u32_at(entry, 4)) else {
            continue;
        };
        if size > MAX_RESOURCE {
            continue;
        }
        let Some(at) = rawaddr(data_rva) else {
            continue;
        };
        let Some(bytes) = read(at, size) else {
            continue;
        };
        strings(bytes, at, &mut out);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The RVAs of the data entries of up to 16 `RT_VERSION` resources (any
/// name, any language), in directory order (ClamAV's `findres`).
fn version_resources<'d>(
    rawaddr: &dyn Fn(u32) -> Option<u32>,
    read: &dyn Fn(u32, u32) -> Option<&'d [u8]>,
    res_rva: u32,
) -> Vec<u32> {
    let mut found = Vec::new();
    // A directory: its entry count (named + numbered, or numbered only
    // after the named ones) and where its entries start.
    let dir = |rva: u32| -> Option<(u32, u32, u32)> {
        let at = rawaddr(rva)?;
        let head = read(at, 16)?;
        Some((at, u16_at(head, 12)?, u16_at(head, 14)?))
    };
    let entry = |at: u32| -> Option<(u32, u32)> {
        let e = read(at, 8)?;
        Some((u32_at(e, 0)?, u32_at(e, 4)?))
    };
    let Some((root, named, numbered)) = dir(res_rva) else {
        return found;
    };
    // A numbered type: skip the named entries.
    let mut type_at = root.wrapping_add(16).wrapping_add(named * 8);
    for _ in 0..numbered {
        let Some((ty, offs)) = entry(type_at) else {
            return found;
        };
        if ty == RT_VERSION && offs >> 31 != 0 {
            let Some((names_at, named, numbered)) = dir(res_rva.wrapping_add(offs & 0x7fff_ffff))
            else {
                return found;
            };
            let mut name_at = names_at.wrapping_add(16);
            // ClamAV counts in 16 bits.
            for _ in 0..((named + numbered) & 0xffff) {
                let Some((_, offs)) = entry(name_at) else {
                    return found;
                };
                if offs >> 31 != 0 {
                    let Some((langs_at, a, b)) = dir(res_rva.wrapping_add(offs & 0x7fff_ffff))
                    else {
                        return found;
                    };
                    let mut lang_at = langs_at.wrapping_add(16);
                    for _ in 0..((a + b) & 0xffff) {
                        let Some((_, offs)) = entry(lang_at) else {
                            return found;
                        };
                        if offs >> 31 == 0 {
                            found.push(res_rva.wrapping_add(offs));
                            if found.len() == MAX_RESOURCES {
                                return found;
                            }
                        }
                        lang_at = lang_at.wrapping_add(8);
                    }
                }
                name_at = name_at.wrapping_add(8);
            }
        }
        type_at = type_at.wrapping_add(8);
    }
    found
}

/// Adds the offsets of the strings of one `VS_VERSIONINFO` at file offset
/// `base` (`v` its bytes).
fn strings(v: &[u8], base: u32, out: &mut Vec<u32>) {
    let Some(len) = u32_at(v, 0) else {
        return;
    };
    if v.len() <= 4 {
        return;
    }
    let mut vinfo_sz = (len & 0xffff) as usize;
    let val_sz = len >> 16;
    if vinfo_sz > v.len()
        || vinfo_sz <= VERSIONINFO_HEAD
        || val_sz != 0x34
        || v.get(6..6 + 0x20) != Some(KEY_VERSION_INFO)
        || u32_at(v, 0x28) != Some(FIXED_FILE_INFO_MAGIC)
    {
        return;
    }
    let mut p = VERSIONINFO_HEAD;
    vinfo_sz -= VERSIONINFO_HEAD;
    let mut got_var = false;
    while vinfo_sz > 6 {
        let Some(sfi) = u16_at(v, p) else {
            return;
        };
        let mut sfi_sz = sfi as usize;
        if sfi_sz > vinfo_sz {
            return;
        }
        if !got_var && sfi_sz > 6 + 0x18 && v.get(p + 6..p + 6 + 0x18) == Some(KEY_VAR_FILE_INFO) {
            p += sfi_sz;
            vinfo_sz -= sfi_sz;
            got_var = true;
            continue;
        }
        if sfi_sz <= 6 + 0x1e || v.get(p + 6..p + 6 + 0x1e) != Some(KEY_STRING_FILE_INFO) {
            return;
        }
        p += 6 + 0x1e;
        sfi_sz -= 6 + 0x1e;
        // String tables.
        while sfi_sz > 6 {
            let Some(st) = u16_at(v, p) else {
                return;
            };
            let mut st_sz = st as usize;
            if st_sz > sfi_sz || st_sz <= 24 {
                return;
            }
            let next_p = p + st_sz;
            let next_sfi_sz = sfi_sz - st_sz;
            p += 24;
            st_sz -= 24;
            // Strings.
            while st_sz > 6 {
                let Some(s) = u16_at(v, p) else {
                    return;
                };
                let s_sz = ((s as usize) + 3) & !3;
                if s_sz > st_sz || s_sz <= 6 + 2 + 8 {
                    // ClamAV ends the whole search here.
                    return;
                }
                // The key: UTF-16 up to its terminating zero unit.
                let mut key = 6;
                while key + 1 < s_sz {
                    if v.get(p + key) != Some(&0) || v.get(p + key + 1) != Some(&0) {
                        key += 2;
                        continue;
                    }
                    key += 2;
                    break;
                }
                let key = (key + 3) & !3;
                if key < s_sz
                    && s_sz - key > 2
                    && let Ok(at) = u32::try_from(p + 6)
                {
                    out.push(base.wrapping_add(at));
                }
                p += s_sz;
                st_sz -= s_sz;
            }
            p = next_p;
            sfi_sz = next_sfi_sz;
        }
        return;
    }
}
