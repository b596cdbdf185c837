//! The PE import table and ClamAV's import hash (`.imp` signatures).
//!
//! ClamAV hashes the text `dll.function,dll.function,...`, lower case, where
//! `dll` is the DLL name up to its first `.` when what follows starts with
//! `.dll`, `.ocx` or `.sys`, and the size field of an `.imp` signature is the
//! length of that text. The rules below follow `hash_imptbl` in
//! `libclamav/pe.c`, including what it does with odd tables: descriptors are
//! read while more than one descriptor's worth of the directory is left, a
//! function whose name cannot be read in full is left out, and in PE32 files
//! a name RVA that maps nowhere is read at file offset 0.

use md5::Digest as _;
use object::ReadRef;
use object::pe::ImageImportDescriptor;

use crate::error::ImportError;
use crate::ordinals;
use crate::{ExeInfo, ExeKind};

/// ClamAV reads at most this many import descriptors.
pub const MAX_DLLS: usize = 1024;
/// aether stops at this many imported functions in all (ClamAV has no limit
/// but the file's size).
pub const MAX_FUNCTIONS: usize = 1 << 16;
/// Names are read up to this many bytes.
const MAX_NAME: u64 = 256;
const DESCRIPTOR_LEN: u64 = 20;

/// One imported function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportedFunction {
    /// Imported by name (as read: up to 256 bytes, up to its NUL).
    Name(Box<str>),
    /// Imported by ordinal.
    Ordinal(u16),
}

/// The functions imported from one DLL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedDll {
    /// As read: up to 256 bytes, up to its NUL, not validated (as in ClamAV).
    pub name: Box<[u8]>,
    pub functions: Vec<ImportedFunction>,
}

/// A PE file's import table, as ClamAV walks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportTable {
    pub dlls: Vec<ImportedDll>,
}

/// ClamAV's import hash: digests of the import text and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportHash {
    pub md5: [u8; 16],
    pub sha1: [u8; 20],
    pub sha256: [u8; 32],
    /// The length of the hashed text: the size field of `.imp` signatures.
    pub size: u32,
}

/// The 32 or 64-bit thunk layout.
#[derive(Clone, Copy)]
struct Thunks {
    wide: bool,
}

impl ImportTable {
    /// Reads the import table of a parsed PE file. ClamAV 1.4 checks `.imp`
    /// signatures only against PE32 files; for PE32+ the table is read all
    /// the same, and it is up to the caller not to match it.
    pub fn read<'d, R: ReadRef<'d>>(data: R, info: &ExeInfo) -> Result<ImportTable, ImportError> {
        let Some(pe) = &info.pe else {
            return Err(ImportError::NotPe);
        };
        if info.sections.len() == 1 && info.sections.first().is_some_and(|s| s.outside_file) {
            return Err(ImportError::OnlySectionOutsideFile);
        }
        let fsize = data.len().map_err(|()| ImportError::Truncated {
            what: "file",
            offset: 0,
        })?;
        let &(dir_rva, dir_size) = pe.data_dirs.get(1).ok_or(ImportError::NoImportTable)?;
        if dir_rva == 0 || dir_size == 0 {
            return Err(ImportError::NoImportTable);
        }
        let map = |rva: u32| info.pe_rva_to_offset(rva, fsize);
        let Some(dir_at) = map(dir_rva) else {
            return Err(ImportError::NoImportTable);
        };
        if u64::from(dir_at) + u64::from(dir_size) > fsize {
            return Err(ImportError::NoImportTable);
        }
        let thunks = Thunks {
            wide: info.kind == ExeKind::Pe32Plus,
        };
        let le = object::LittleEndian;
        let mut dlls = Vec::new();
        let mut functions = 0usize;
        let mut left = u64::from(dir_size);
        let mut at = u64::from(dir_at);
        while left > DESCRIPTOR_LEN && dlls.len() < MAX_DLLS {
            let d: &ImageImportDescriptor =
                data.read_at(at).map_err(|()| ImportError::Truncated {
                    what: "import descriptor",
                    offset: at,
                })?;
            let name_rva = d.name.get(le);
            if name_rva == 0 {
                break;
            }
            left -= DESCRIPTOR_LEN;
            at += DESCRIPTOR_LEN;
            let name_at = match map(name_rva) {
                Some(o) if u64::from(o) < fsize => u64::from(o),
                _ => {
                    return Err(ImportError::Unmapped {
                        what: "DLL name",
                        rva: name_rva,
                    });
                }
            };
            let len = MAX_NAME.min(fsize - name_at);
            let name = c_string(data, name_at, len);
            let original = d.original_first_thunk.get(le);
            let first = d.first_thunk.get(le);
            let thunk_at = match (original != 0).then(|| map(original)).flatten() {
                Some(o) if o != 0 => o,
                _ => map(first).ok_or(ImportError::Unmapped {
                    what: "import thunks",
                    rva: first,
                })?,
            };
            let funcs = read_thunks(data, info, thunks, u64::from(thunk_at), &mut functions)?;
            dlls.push(ImportedDll {
                name: name.into(),
                functions: funcs,
            });
        }
        Ok(ImportTable { dlls })
    }

    /// The text ClamAV hashes: `dll.function` for every function, lower
    /// case, joined by `,`.
    pub fn hash_text(&self) -> Result<String, ImportError> {
        let mut text = String::new();
        for dll in &self.dlls {
            let base = dll_base(&dll.name);
            for f in &dll.functions {
                let name: std::borrow::Cow<'_, str> = match f {
                    ImportedFunction::Name(n) => {
                        if !n
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
                        {
                            return Err(ImportError::InvalidName {
                                dll: String::from_utf8_lossy(&dll.name).into_owned(),
                            });
                        }
                        n.as_ref().into()
                    }
                    ImportedFunction::Ordinal(o) => ordinal_name(&dll.name, *o).into(),
                };
                if !text.is_empty() {
                    text.push(',');
                }
                // ClamAV lower-cases bytes with C's tolower; names are ASCII
                // by now, DLL names may not be (they are not validated).
                text.extend(base.iter().map(|&b| char::from(b.to_ascii_lowercase())));
                text.push('.');
                text.push_str(&name.to_ascii_lowercase());
            }
        }
        Ok(text)
    }

    /// ClamAV's import hash of this table.
    pub fn hash(&self) -> Result<ImportHash, ImportError> {
        let text = self.hash_text()?;
        // DLL name bytes above 0x7f were widened to chars; hash the bytes.
        let bytes: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
        Ok(ImportHash {
            md5: md5::Md5::digest(&bytes).into(),
            sha1: sha1::Sha1::digest(&bytes).into(),
            sha256: sha2::Sha256::digest(&bytes).into(),
            size: bytes.len() as u32,
        })
    }
}

/// The bytes at `at`, at most `len` of them, up to the first NUL.
fn c_string<'d, R: ReadRef<'d>>(data: R, at: u64, len: u64) -> &'d [u8] {
    let bytes = data.read_bytes_at(at, len).unwrap_or(&[]);
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    bytes.get(..end).unwrap_or(&[])
}

/// The DLL name as ClamAV puts it in the hash: up to the first `.` when the
/// extension starts with `.dll`, `.ocx` or `.sys` (any case).
fn dll_base(name: &[u8]) -> &[u8] {
    if let Some(dot) = name.iter().position(|&b| b == b'.') {
        let ext = name.get(dot..dot + 4.min(name.len() - dot)).unwrap_or(&[]);
        if [b".dll", b".ocx", b".sys"]
            .iter()
            .any(|e| ext.eq_ignore_ascii_case(*e))
        {
            return name.get(..dot).unwrap_or(name);
        }
    }
    name
}

/// The name ClamAV gives an ordinal import: from its tables for
/// `oleaut32.dll` and `ws2_32.dll`/`wsock32.dll` (the DLL name must start
/// with one of those, in any case), else `ord<n>`.
fn ordinal_name(dll: &[u8], ordinal: u16) -> String {
    let starts = |p: &[u8]| {
        dll.get(..p.len())
            .is_some_and(|d| d.eq_ignore_ascii_case(p))
    };
    let table = if starts(b"ws2_32.dll") || starts(b"wsock32.dll") {
        Some(ordinals::WS2_32)
    } else if starts(b"oleaut32.dll") {
        Some(ordinals::OLEAUT32)
    } else {
        None
    };
    match table.and_then(|t| ordinals::lookup(t, ordinal)) {
        Some(name) => name.to_string(),
        None => format!("ord{ordinal}"),
    }
}

fn read_thunks<'d, R: ReadRef<'d>>(
    data: R,
    info: &ExeInfo,
    thunks: Thunks,
    mut at: u64,
    total: &mut usize,
) -> Result<Vec<ImportedFunction>, ImportError> {
    let fsize = data.len().map_err(|()| ImportError::Truncated {
        what: "file",
        offset: 0,
    })?;
    let mut out = Vec::new();
    let step = if thunks.wide { 8 } else { 4 };
    // ClamAV stops at the end of the file as at a 0 thunk.
    while let Ok(raw) = data.read_bytes_at(at, step) {
        let mut value = [0u8; 8];
        value[..raw.len()].copy_from_slice(raw);
        let value = u64::from_le_bytes(value);
        if value == 0 {
            break;
        }
        at += step;
        let by_ordinal = if thunks.wide {
            value >> 63 != 0
        } else {
            value >> 31 != 0
        };
        let function = if by_ordinal {
            Some(ImportedFunction::Ordinal(value as u16))
        } else {
            // The hint/name entry's RVA: the low 32 bits, as ClamAV's
            // `cli_rawaddr` takes a uint32_t.
            let offset = match info.pe_rva_to_offset(value as u32, fsize) {
                Some(o) => Some(u64::from(o)),
                // PE32: ClamAV reads an unmapped name at offset 0 (its
                // check tests the wrong variable); PE32+: it skips it.
                None if !thunks.wide => Some(0),
                None => None,
            };
            // The name after the 2-byte hint is read only if the whole
            // `min(256, fsize - offset)` bytes from there are in the file.
            offset.and_then(|o| {
                let len = MAX_NAME.min(fsize.saturating_sub(o));
                let start = o + 2;
                (fsize >= o && start + len <= fsize).then(|| {
                    let name = c_string(data, start, len);
                    ImportedFunction::Name(String::from_utf8_lossy(name).into())
                })
            })
        };
        if let Some(f) = function {
            *total += 1;
            if *total > MAX_FUNCTIONS {
                return Err(ImportError::TooMany(MAX_FUNCTIONS));
            }
            out.push(f);
        }
    }
    Ok(out)
}
