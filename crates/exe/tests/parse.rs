//! What aether-exe reads from executables built to exercise ClamAV's rules,
//! checked against values worked out by hand from those rules.

mod common;

use aether_exe::{ExeError, ExeInfo, ExeKind, Format, ImportError, ImportTable, fat_arches};
use md5::Digest as _;

fn raws(info: &ExeInfo) -> Vec<(u32, u32)> {
    info.sections.iter().map(|s| (s.raw, s.raw_size)).collect()
}

#[test]
fn pe32_sections_rounded_and_cut_at_end_of_file() {
    let data = common::plain_pe(false, 1);
    let info = ExeInfo::parse(&data).unwrap();
    assert_eq!(info.kind, ExeKind::Pe32);
    assert_eq!(info.entry_point, 0x410);
    assert_eq!(info.entry_address, 0x1010);
    // .data: SizeOfRawData 0x180 rounds up to 0x200, then the end of the
    // file (0x900) cuts it to 0x100.
    assert_eq!(
        raws(&info),
        [(0x400, 0x200), (0x600, 0x200), (0x800, 0x100)]
    );
    let names: Vec<&str> = info.sections.iter().map(|s| &*s.name).collect();
    assert_eq!(names, [".text", ".rdata", ".data"]);
    assert_eq!(
        info.sections[0].virtual_size, 0x1000,
        "rounded up to SectionAlignment"
    );
    let hashed: Vec<(usize, usize)> = info
        .hashed_sections(&data)
        .map(|(i, b)| (i, b.len()))
        .collect();
    assert_eq!(hashed, [(0, 0x200), (1, 0x200), (2, 0x100)]);
}

#[test]
fn pe32plus() {
    let data = common::plain_pe(true, 2);
    let info = ExeInfo::parse(&data).unwrap();
    assert_eq!(info.kind, ExeKind::Pe32Plus);
    assert_eq!(info.entry_point, 0x410);
    assert_eq!(
        raws(&info),
        [(0x400, 0x200), (0x600, 0x200), (0x800, 0x100)]
    );
}

#[test]
fn pe_file_alignment_fallback_and_unaligned_raw_offsets() {
    let data = common::odd_pe(3);
    let info = ExeInfo::parse(&data).unwrap();
    let pe = info.pe.as_ref().unwrap();
    assert_eq!(
        pe.file_alignment, 0x200,
        "0x600 is not a multiple of the declared 0x400"
    );
    assert_eq!(
        pe.header_size, 0x1000,
        "SizeOfHeaders rounded up to SectionAlignment"
    );
    // .data's PointerToRawData 0x810 rounds down to 0x800; .bss has no raw data.
    assert_eq!(
        raws(&info),
        [(0x400, 0x200), (0x600, 0x200), (0x800, 0x200), (0, 0)]
    );
    // The entry RVA 0x300 is inside the (rounded) headers: its own offset.
    assert_eq!(info.entry_point, 0x300);
}

#[test]
fn pe_import_hash() {
    for plus in [false, true] {
        let data = common::plain_pe(plus, 4);
        let info = ExeInfo::parse(&data).unwrap();
        let table = ImportTable::read(&data[..], &info).unwrap();
        assert_eq!(table.dlls.len(), 3);
        assert_eq!(table.hash_text().unwrap(), common::IMPORT_TEXT);
        let h = table.hash().unwrap();
        assert_eq!(h.size as usize, common::IMPORT_TEXT.len());
        let want: [u8; 16] = md5::Md5::digest(common::IMPORT_TEXT.as_bytes()).into();
        assert_eq!(h.md5, want);
    }
}

#[test]
fn clam_exe_import_hash_is_the_documented_one() {
    // ClamAV's HashSignatures.md gives this file's import hash.
    let Ok(data) = std::fs::read("/usr/share/clamav-testfiles/clam.exe") else {
        panic!("clamav-testfiles is not installed");
    };
    let info = ExeInfo::parse(&data).unwrap();
    let h = ImportTable::read(&data[..], &info).unwrap().hash().unwrap();
    let hex: String = h.md5.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        (hex.as_str(), h.size),
        ("98c88d882f01a3f6ac1e5f7dfd761624", 39)
    );
}

#[test]
fn ordinals_of_known_dlls_are_named() {
    let data = common::plain_pe(false, 5);
    let info = ExeInfo::parse(&data).unwrap();
    let mut table = ImportTable::read(&data[..], &info).unwrap();
    // msvcrt's ordinal 5 is "ord5"; oleaut32's is SysReAllocStringLen.
    assert!(
        table
            .hash_text()
            .unwrap()
            .ends_with("msvcrt.ord5,msvcrt._exit")
    );
    table.dlls[2].name = b"OleAut32.dll".to_vec().into();
    assert!(
        table
            .hash_text()
            .unwrap()
            .ends_with("oleaut32.sysreallocstringlen,oleaut32._exit")
    );
}

#[test]
fn invalid_function_name_gives_no_hash() {
    let mut data = common::plain_pe(false, 6);
    let info = ExeInfo::parse(&data).unwrap();
    let at = data.windows(12).position(|w| w == b"LoadLibraryA").unwrap();
    data[at + 4] = b'-';
    let table = ImportTable::read(&data[..], &info).unwrap();
    assert!(matches!(table.hash(), Err(ImportError::InvalidName { .. })));
}

#[test]
fn macho64_entry_point_is_zero_and_sections_round_up() {
    let data = common::macho64(7);
    let info = ExeInfo::parse(&data).unwrap();
    assert_eq!(info.kind, ExeKind::MachO64);
    assert_eq!(info.entry_point, 0, "ClamAV does not read LC_MAIN");
    assert_eq!(raws(&info), [(0x400, 0x100), (0x500, 0x38)]);
    assert_eq!(info.sections[1].virtual_size, 0x33);
    assert_eq!(&*info.sections[1].name, "__cstring");
    assert_eq!(
        info.hashed_sections(&data).count(),
        0,
        "section hashes are PE-only"
    );
}

#[test]
fn macho_ppc_thread_state_gives_the_entry_point() {
    let data = common::macho_ppc(8);
    let info = ExeInfo::parse(&data).unwrap();
    assert_eq!(info.kind, ExeKind::MachO32);
    assert!(info.big_endian);
    assert_eq!(info.entry_address, 0x2310);
    assert_eq!(info.entry_point, 0x310);
    assert_eq!(raws(&info), [(0x300, 0x80), (0x380, 0x48)]);
}

#[test]
fn universal_binary_arches() {
    let a = common::macho64(9);
    let b = common::macho_ppc(10);
    let data = common::fat(&[(0x0100_0007, &a), (18, &b)]);
    assert_eq!(ExeInfo::parse(&data), Err(ExeError::Universal));
    let fat = fat_arches(&data).unwrap();
    assert_eq!(fat.stopped, None);
    assert_eq!(fat.arches.len(), 2);
    assert_eq!(fat.arches[0].offset, 0x1000);
    assert_eq!(fat.arches[1].cpu_type, 18);
    assert_eq!(fat.arches[1].bytes(&data), Some(&b[..]));
    let inner = ExeInfo::parse(fat.arches[1].bytes(&data).unwrap()).unwrap();
    assert_eq!(inner.entry_point, 0x310);

    // An architecture that starts inside the header stops the list there.
    let mut bad = data.clone();
    bad[8 + 20 + 8..8 + 20 + 12].copy_from_slice(&4u32.to_be_bytes());
    let fat = fat_arches(&bad).unwrap();
    assert_eq!(fat.arches.len(), 1);
    assert!(fat.stopped.is_some());

    // 0xcafebabe with a large count is a Java class file.
    let mut class = data.clone();
    class[4..8].copy_from_slice(&0x0000_0034u32.to_be_bytes());
    assert_eq!(fat_arches(&class).unwrap().arches, []);
}

#[test]
fn elf_big_endian_first_segment_wins() {
    let data = common::elf32_be(11);
    let info = ExeInfo::parse(&data).unwrap();
    assert_eq!(info.kind, ExeKind::Elf32);
    assert!(info.big_endian);
    assert_eq!(info.entry_point, 0x1c0, "the PT_NOTE comes first");
    assert_eq!(raws(&info), [(0, 0), (0x100, 0x80), (0x200, 0x40)]);
}

#[test]
fn real_elf() {
    let data = std::fs::read("/usr/bin/ls").unwrap();
    let info = ExeInfo::parse(&data).unwrap();
    assert_eq!(info.kind, ExeKind::Elf64);
    assert!(info.number_of_sections() > 10);
    assert!((info.entry_point as usize) < data.len());
    assert_eq!(info.sections[0].raw, 0, "section 0 is the null section");
}

#[test]
fn errors_name_what_is_wrong() {
    assert_eq!(ExeInfo::parse(b"hello world"), Err(ExeError::UnknownFormat));
    let pe = common::plain_pe(false, 12);
    let e = ExeInfo::parse(&pe[..0x1c0]).unwrap_err();
    assert!(
        matches!(
            e,
            ExeError::Truncated {
                format: Format::Pe,
                what: "section table",
                ..
            }
        ),
        "{e}"
    );
    let mut no_sections = pe.clone();
    no_sections[0x86..0x88].fill(0);
    let e = ExeInfo::parse(&no_sections).unwrap_err();
    assert_eq!(e.to_string(), "PE: NumberOfSections is 0 (0x0)");

    let mut bad_ep = pe.clone();
    bad_ep[0x80 + 24 + 16..0x80 + 24 + 20].copy_from_slice(&0x9000u32.to_le_bytes());
    assert_eq!(
        ExeInfo::parse(&bad_ep),
        Err(ExeError::EntryPointUnmapped {
            format: Format::Pe,
            address: 0x9000
        })
    );

    let elf = common::elf32_be(13);
    let mut many = elf.clone();
    many[48..50].copy_from_slice(&300u16.to_be_bytes());
    assert!(matches!(
        ExeInfo::parse(&many),
        Err(ExeError::TooManySections {
            format: Format::Elf,
            limit: 256
        })
    ));
    let mut bad_shentsize = elf.clone();
    bad_shentsize[46..48].copy_from_slice(&0u16.to_be_bytes());
    bad_shentsize[48..50].copy_from_slice(&0u16.to_be_bytes());
    assert!(
        ExeInfo::parse(&bad_shentsize).is_err(),
        "ClamAV checks e_shentsize even without sections"
    );
}

/// The engine parses files through `object::ReadCache`, reading only the
/// ranges the parser asks for: every executable here parses to the same
/// result, with the same import table, as from the whole file in memory.
#[test]
fn read_on_demand_equals_whole_file() {
    let mut paths: Vec<std::path::PathBuf> = Vec::new();
    for dir in ["/usr/share/clamav-testfiles", "/usr/bin"] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut names: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        names.sort();
        paths.extend(names.into_iter().filter(|p| p.is_file()).take(120));
    }
    let mut parsed = 0;
    for path in &paths {
        let Ok(data) = std::fs::read(path) else {
            continue;
        };
        let file = std::fs::File::open(path).expect("opened just now");
        let cache = object::ReadCache::new(&file);
        let whole = (
            ExeInfo::parse_pe(&data[..]),
            ExeInfo::parse_elf(&data[..]),
            ExeInfo::parse_macho(&data[..]),
        );
        let lazy = (
            ExeInfo::parse_pe(&cache),
            ExeInfo::parse_elf(&cache),
            ExeInfo::parse_macho(&cache),
        );
        assert_eq!(
            format!("{whole:?}"),
            format!("{lazy:?}"),
            "{}",
            path.display()
        );
        if let Ok(info) = &whole.0 {
            assert_eq!(
                format!("{:?}", ImportTable::read(&data[..], info)),
                format!("{:?}", ImportTable::read(&cache, info)),
                "{}",
                path.display()
            );
        }
        parsed += usize::from(whole.0.is_ok() || whole.1.is_ok() || whole.2.is_ok());
    }
    assert!(parsed >= 20, "only {parsed} executables parsed");
}
