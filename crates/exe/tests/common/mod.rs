//! Builders for small executables the tests need and the machine has no
//! compiler for: PE32/PE32+ with an import table and odd alignments, thin
//! and universal Mach-O, big-endian ELF. Every byte that is not a header is
//! pseudo-random, so a 16-byte window identifies its offset.

#![allow(dead_code)]

/// Deterministic filler (xorshift), so patterns are unique within a file.
pub fn filler(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}
fn put16(buf: &mut [u8], at: usize, v: u16) {
    put(buf, at, &v.to_le_bytes());
}
fn put32(buf: &mut [u8], at: usize, v: u32) {
    put(buf, at, &v.to_le_bytes());
}
fn put64(buf: &mut [u8], at: usize, v: u64) {
    put(buf, at, &v.to_le_bytes());
}

/// A PE section: (name, RVA, virtual size, PointerToRawData, SizeOfRawData).
pub type PeSection = (&'static str, u32, u32, u32, u32);

/// How a test PE looks.
pub struct PeSpec {
    pub plus: bool,
    pub section_alignment: u32,
    pub file_alignment: u32,
    pub size_of_headers: u32,
    pub entry_rva: u32,
    pub sections: Vec<PeSection>,
    pub file_len: usize,
    /// Where the import table goes (RVA, file offset); `None` for no imports.
    pub imports_at: Option<(u32, usize)>,
    /// DLLs and their functions (`#n` imports ordinal `n`).
    pub imports: Vec<(String, Vec<String>)>,
    pub seed: u64,
}

/// [`IMPORTS`] in the form [`PeSpec`] takes.
pub fn default_imports() -> Vec<(String, Vec<String>)> {
    IMPORTS
        .iter()
        .map(|(d, f)| (d.to_string(), f.iter().map(|s| s.to_string()).collect()))
        .collect()
}

/// The imports every test PE carries, and the text ClamAV hashes for them.
pub const IMPORTS: &[(&str, &[&str])] = &[
    ("KERNEL32.dll", &["GetProcAddress", "LoadLibraryA"]),
    ("user32.DLL", &["MessageBoxA"]),
    ("msvcrt.dll", &["#5", "_exit"]),
];
pub const IMPORT_TEXT: &str =
    "kernel32.getprocaddress,kernel32.loadlibrarya,user32.messageboxa,msvcrt.ord5,msvcrt._exit";

pub fn build_pe(spec: &PeSpec) -> Vec<u8> {
    let mut b = filler(spec.seed, spec.file_len);
    // The headers proper are zero but for their fields; the rest of the
    // header area stays random, so an entry point there has unique bytes.
    b[..0x280].fill(0);
    put(&mut b, 0, b"MZ");
    let pe = 0x80usize;
    put32(&mut b, 60, pe as u32);
    put(&mut b, pe, b"PE\0\0");
    let opt_size: u16 = if spec.plus { 240 } else { 224 };
    put16(&mut b, pe + 4, if spec.plus { 0x8664 } else { 0x14c });
    put16(&mut b, pe + 6, spec.sections.len() as u16);
    put16(&mut b, pe + 20, opt_size);
    put16(&mut b, pe + 22, 0x0102); // executable, 32-bit machine
    let o = pe + 24;
    put16(&mut b, o, if spec.plus { 0x20b } else { 0x10b });
    put32(&mut b, o + 16, spec.entry_rva);
    put32(&mut b, o + 32, spec.section_alignment);
    put32(&mut b, o + 36, spec.file_alignment);
    put32(&mut b, o + 56, 0x10000); // SizeOfImage
    put32(&mut b, o + 60, spec.size_of_headers);
    put16(&mut b, o + 68, 2); // Windows GUI
    let (ndirs_at, dirs_at) = if spec.plus {
        (o + 108, o + 112)
    } else {
        (o + 92, o + 96)
    };
    put32(&mut b, ndirs_at, 16);
    let mut s = o + usize::from(opt_size);
    for &(name, rva, vsize, raw, rsize) in &spec.sections {
        let mut n = [0u8; 8];
        n[..name.len()].copy_from_slice(name.as_bytes());
        put(&mut b, s, &n);
        put32(&mut b, s + 8, vsize);
        put32(&mut b, s + 12, rva);
        put32(&mut b, s + 16, rsize);
        put32(&mut b, s + 20, raw);
        put32(&mut b, s + 36, 0x6000_0020);
        s += 40;
    }
    if let Some((rva, at)) = spec.imports_at {
        let size = write_imports(&mut b, spec.plus, rva, at, &spec.imports);
        put32(&mut b, dirs_at + 8, rva);
        put32(&mut b, dirs_at + 12, size);
    }
    b
}

/// Writes descriptors, thunks and names at file offset `at` (RVA `rva`);
/// returns the directory size (descriptors and their null terminator).
fn write_imports(
    b: &mut [u8],
    plus: bool,
    rva: u32,
    at: usize,
    imports: &[(String, Vec<String>)],
) -> u32 {
    let n = imports.len();
    let desc_len = 20 * (n + 1);
    b[at..at + desc_len].fill(0);
    let thunk = if plus { 8 } else { 4 };
    let mut next = at + desc_len; // where thunks and names go
    let off_to_rva = |off: usize| rva + (off - at) as u32;
    for (i, (dll, funcs)) in imports.iter().enumerate() {
        let thunks_at = next;
        next += thunk * (funcs.len() + 1);
        b[thunks_at..next].fill(0);
        for (j, f) in funcs.iter().enumerate() {
            let value: u64 = if let Some(ord) = f.strip_prefix('#') {
                let ord: u64 = ord.parse().unwrap();
                if plus {
                    (1 << 63) | ord
                } else {
                    (1 << 31) | ord
                }
            } else {
                let name_at = next;
                put16(b, name_at, 0); // hint
                put(b, name_at + 2, f.as_bytes());
                b[name_at + 2 + f.len()] = 0;
                next = name_at + 2 + f.len() + 1;
                u64::from(off_to_rva(name_at))
            };
            if plus {
                put64(b, thunks_at + j * 8, value);
            } else {
                put32(b, thunks_at + j * 4, value as u32);
            }
        }
        let dll_at = next;
        put(b, dll_at, dll.as_bytes());
        b[dll_at + dll.len()] = 0;
        next = dll_at + dll.len() + 1;
        let d = at + 20 * i;
        put32(b, d, off_to_rva(thunks_at)); // OriginalFirstThunk
        put32(b, d + 12, off_to_rva(dll_at));
        put32(b, d + 16, off_to_rva(thunks_at)); // FirstThunk
    }
    desc_len as u32
}

/// A plain PE: 3 sections, the last one's raw size not a multiple of the
/// file alignment and cut by the end of the file.
pub fn plain_pe(plus: bool, seed: u64) -> Vec<u8> {
    build_pe(&PeSpec {
        plus,
        section_alignment: 0x1000,
        file_alignment: 0x200,
        size_of_headers: 0x400,
        entry_rva: 0x1010,
        sections: vec![
            (".text", 0x1000, 0x180, 0x400, 0x200),
            (".rdata", 0x2000, 0x200, 0x600, 0x200),
            (".data", 0x3000, 0x100, 0x800, 0x180),
        ],
        file_len: 0x900,
        imports_at: Some((0x2000, 0x600)),
        imports: default_imports(),
        seed,
    })
}

/// A PE whose declared file alignment (0x400) does not fit its raw offsets
/// (multiples of 0x200): ClamAV falls back to 0x200. One raw offset is not
/// aligned at all (0x810: ClamAV rounds it down to 0x800) and the entry
/// point lies in the headers.
pub fn odd_pe(seed: u64) -> Vec<u8> {
    build_pe(&PeSpec {
        plus: false,
        section_alignment: 0x1000,
        file_alignment: 0x400,
        size_of_headers: 0x400,
        entry_rva: 0x300,
        sections: vec![
            (".text", 0x1000, 0x200, 0x400, 0x200),
            (".rdata", 0x2000, 0x200, 0x600, 0x200),
            (".data", 0x3000, 0x300, 0x810, 0x1f0),
            (".bss", 0x4000, 0x1000, 0x0, 0x0),
        ],
        file_len: 0xa00,
        imports_at: Some((0x2000, 0x600)),
        imports: default_imports(),
        seed,
    })
}

fn be32(b: &mut [u8], at: usize, v: u32) {
    put(b, at, &v.to_be_bytes());
}

/// A 64-bit little-endian x86_64 Mach-O with an `LC_MAIN` (which ClamAV
/// ignores: its EP is 0) and two sections, one with a size that its
/// alignment rounds up.
pub fn macho64(seed: u64) -> Vec<u8> {
    let mut b = filler(seed, 0x600);
    b[..0x100].fill(0);
    put32(&mut b, 0, 0xfeed_facf);
    put32(&mut b, 4, 0x0100_0007); // x86_64
    put32(&mut b, 8, 3);
    put32(&mut b, 12, 2); // MH_EXECUTE
    put32(&mut b, 16, 2); // ncmds
    put32(&mut b, 20, 72 + 2 * 80 + 24);
    let mut at = 32;
    put32(&mut b, at, 0x19); // LC_SEGMENT_64
    put32(&mut b, at + 4, 72 + 2 * 80);
    put(&mut b, at + 8, b"__TEXT");
    put64(&mut b, at + 24, 0x1_0000_0000);
    put64(&mut b, at + 32, 0x1000);
    put64(&mut b, at + 40, 0);
    put64(&mut b, at + 48, 0x600);
    put32(&mut b, at + 64, 2); // nsects
    at += 72;
    for (name, addr, size, off, align) in [
        ("__text", 0x1_0000_0400u64, 0x100u64, 0x400u32, 4u32),
        ("__cstring", 0x1_0000_0500, 0x33, 0x500, 3),
    ] {
        put(&mut b, at, name.as_bytes());
        put(&mut b, at + 16, b"__TEXT");
        put64(&mut b, at + 32, addr);
        put64(&mut b, at + 40, size);
        put32(&mut b, at + 48, off);
        put32(&mut b, at + 52, align);
        at += 80;
    }
    put32(&mut b, at, 0x8000_0028); // LC_MAIN
    put32(&mut b, at + 4, 24);
    put64(&mut b, at + 8, 0x400);
    b
}

/// A 32-bit big-endian PowerPC Mach-O whose `LC_UNIXTHREAD` gives the entry
/// point (srr0 = 0x2310, in `__text` at file offset 0x300: EP 0x310).
pub fn macho_ppc(seed: u64) -> Vec<u8> {
    let mut b = filler(seed, 0x400);
    b[..0x200].fill(0);
    be32(&mut b, 0, 0xfeed_face);
    be32(&mut b, 4, 18); // PowerPC
    be32(&mut b, 12, 2);
    be32(&mut b, 16, 2);
    be32(&mut b, 20, 56 + 2 * 68 + 176);
    let mut at = 28;
    be32(&mut b, at, 0x1); // LC_SEGMENT
    be32(&mut b, at + 4, 56 + 2 * 68);
    put(&mut b, at + 8, b"__TEXT");
    be32(&mut b, at + 48, 2);
    at += 56;
    for (name, addr, size, off, align) in [
        ("__text", 0x2300u32, 0x80u32, 0x300u32, 2u32),
        ("__data", 0x3000, 0x41, 0x380, 3),
    ] {
        put(&mut b, at, name.as_bytes());
        be32(&mut b, at + 32, addr);
        be32(&mut b, at + 36, size);
        be32(&mut b, at + 40, off);
        be32(&mut b, at + 44, align);
        at += 68;
    }
    be32(&mut b, at, 0x5); // LC_UNIXTHREAD
    be32(&mut b, at + 4, 176);
    be32(&mut b, at + 8, 1); // flavor
    be32(&mut b, at + 12, 40); // count
    be32(&mut b, at + 16, 0x2310); // srr0
    b
}

/// A universal binary holding `parts` at 0x1000-aligned offsets.
pub fn fat(parts: &[(u32, &[u8])]) -> Vec<u8> {
    let mut b = vec![0u8; 0x1000];
    be32(&mut b, 0, 0xcafe_babe);
    be32(&mut b, 4, parts.len() as u32);
    for (i, (cpu, part)) in parts.iter().enumerate() {
        let off = b.len().next_multiple_of(0x1000);
        b.resize(off, 0);
        let e = 8 + 20 * i;
        be32(&mut b, e, *cpu);
        be32(&mut b, e + 8, off as u32);
        be32(&mut b, e + 12, part.len() as u32);
        be32(&mut b, e + 16, 12);
        b.extend_from_slice(part);
    }
    b
}

/// A 32-bit big-endian ELF (MIPS) whose first program header is a PT_NOTE
/// that holds the entry point at another file offset than the PT_LOAD that
/// follows: ClamAV takes the first (EP 0x1c0, not 0x100).
pub fn elf32_be(seed: u64) -> Vec<u8> {
    let mut b = filler(seed, 0x300 + 3 * 40);
    b[..0xb4].fill(0);
    put(&mut b, 0, &[0x7f, b'E', b'L', b'F', 1, 2, 1]);
    let w16 = |b: &mut Vec<u8>, at: usize, v: u16| put(b, at, &v.to_be_bytes());
    w16(&mut b, 16, 2); // ET_EXEC
    w16(&mut b, 18, 8); // MIPS
    be32(&mut b, 20, 1);
    be32(&mut b, 24, 0x0040_0100); // e_entry
    be32(&mut b, 28, 52); // e_phoff
    be32(&mut b, 32, 0x300); // e_shoff
    w16(&mut b, 40, 52);
    w16(&mut b, 42, 32);
    w16(&mut b, 44, 2);
    w16(&mut b, 46, 40);
    w16(&mut b, 48, 3);
    w16(&mut b, 50, 0);
    // PT_NOTE, then PT_LOAD
    for (i, (ty, off, vaddr, size)) in [
        (4u32, 0x1c0u32, 0x0040_0100u32, 0x20u32),
        (1, 0, 0x0040_0000, 0x300),
    ]
    .into_iter()
    .enumerate()
    {
        let p = 52 + 32 * i;
        be32(&mut b, p, ty);
        be32(&mut b, p + 4, off);
        be32(&mut b, p + 8, vaddr);
        be32(&mut b, p + 16, size);
        be32(&mut b, p + 20, size);
    }
    let sh = 0x300;
    b[sh..sh + 120].fill(0);
    for (i, (off, size)) in [(0x100u32, 0x80u32), (0x200, 0x40)].into_iter().enumerate() {
        let s = sh + 40 * (i + 1);
        be32(&mut b, s + 4, 1);
        be32(&mut b, s + 12, 0x0040_0000 + off);
        be32(&mut b, s + 16, off);
        be32(&mut b, s + 20, size);
    }
    b
}

/// UTF-16LE with its terminating zero unit.
pub fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .chain([0, 0])
        .collect()
}

fn pad4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

/// A version-information block: length, value length, type, key, padding,
/// `value`, then `children`.
fn vs_block(key: &str, value: &[u8], value_len: u16, children: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![0u8; 6];
    b.extend(utf16z(key));
    pad4(&mut b);
    b.extend_from_slice(value);
    let own = b.len();
    pad4(&mut b);
    for c in children {
        b.extend(c);
        pad4(&mut b);
    }
    let len = if children.is_empty() { own } else { b.len() };
    put16(&mut b, 0, len as u16);
    put16(&mut b, 2, value_len);
    put16(&mut b, 4, 1);
    b
}

/// A `VS_VERSIONINFO` resource holding `strings` (key, value; an empty
/// value is an unset one, without even its terminator), with its
/// `VarFileInfo` before the `StringFileInfo` when `var_first`.
pub fn version_info(strings: &[(&str, &str)], var_first: bool) -> Vec<u8> {
    let entries: Vec<Vec<u8>> = strings
        .iter()
        .map(|(k, v)| {
            let value = if v.is_empty() { Vec::new() } else { utf16z(v) };
            vs_block(k, &value, (value.len() / 2) as u16, &[])
        })
        .collect();
    let table = vs_block("040904b0", &[], 0, &entries);
    let sfi = vs_block("StringFileInfo", &[], 0, &[table]);
    let var = vs_block(
        "VarFileInfo",
        &[],
        0,
        &[vs_block("Translation", &[9, 4, 0xb0, 4], 4, &[])],
    );
    let mut fixed = vec![0u8; 0x34];
    put32(&mut fixed, 0, 0xfeef_04bd);
    let children = if var_first {
        vec![var, sfi]
    } else {
        vec![sfi, var]
    };
    vs_block("VS_VERSION_INFO", &fixed, 0x34, &children)
}

/// A PE32 whose `.rsrc` section holds `vinfo` as its one `RT_VERSION`
/// resource (type 0x10, name 1, language 0x409).
pub fn pe_with_version_info(vinfo: &[u8], seed: u64) -> Vec<u8> {
    const RSRC_RVA: u32 = 0x2000;
    const RSRC_RAW: usize = 0x600;
    let rsrc_len = 0x60 + vinfo.len();
    let raw_len = rsrc_len.div_ceil(0x200) * 0x200;
    let mut b = build_pe(&PeSpec {
        plus: false,
        section_alignment: 0x1000,
        file_alignment: 0x200,
        size_of_headers: 0x400,
        entry_rva: 0x1010,
        sections: vec![
            (".text", 0x1000, 0x200, 0x400, 0x200),
            (
                ".rsrc",
                RSRC_RVA,
                rsrc_len as u32,
                RSRC_RAW as u32,
                raw_len as u32,
            ),
        ],
        file_len: RSRC_RAW + raw_len,
        imports_at: None,
        imports: Vec::new(),
        seed,
    });
    let r = RSRC_RAW;
    b[r..r + 0x60].fill(0);
    // Root: one numbered entry, RT_VERSION, to a subdirectory.
    put16(&mut b, r + 14, 1);
    put32(&mut b, r + 16, 0x10);
    put32(&mut b, r + 20, 0x8000_0018);
    // Names: one numbered entry, 1.
    put16(&mut b, r + 0x18 + 14, 1);
    put32(&mut b, r + 0x18 + 16, 1);
    put32(&mut b, r + 0x18 + 20, 0x8000_0030);
    // Languages: one, 0x409, to the data entry.
    put16(&mut b, r + 0x30 + 14, 1);
    put32(&mut b, r + 0x30 + 16, 0x409);
    put32(&mut b, r + 0x30 + 20, 0x48);
    // The data entry: RVA and size of the resource.
    put32(&mut b, r + 0x48, RSRC_RVA + 0x60);
    put32(&mut b, r + 0x48 + 4, vinfo.len() as u32);
    b[r + 0x60..r + 0x60 + vinfo.len()].copy_from_slice(vinfo);
    // Data directory 2 (resources) of a PE32 header at 0x80.
    let dirs = 0x80 + 24 + 96;
    put32(&mut b, dirs + 16, RSRC_RVA);
    put32(&mut b, dirs + 20, rsrc_len as u32);
    b
}
