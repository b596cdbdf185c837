#![no_main]
//! The PE, ELF and Mach-O readers on any bytes, with everything a scanner
//! asks of a parsed file: offsets of every form, section bytes, the import
//! table and its hash, and each architecture of a universal binary.
use aether_exe::{ExeError, ExeInfo, ImportTable, Layout, fat_arches, resolve};
use aether_sigs::Offset;
use libfuzzer_sys::fuzz_target;

const OFFSETS: &[&str] = &[
    "EP+0", "EP-16,8", "S0+4", "S2+0,32", "SE1", "SL+1", "EOF-8", "*", "12",
];

fn use_info(data: &[u8], info: &ExeInfo) {
    for o in OFFSETS {
        if let Ok(o) = Offset::parse(o) {
            let p = resolve(&o, data.len() as u64, Layout::Exe(info));
            let _ = p.fits(16, data.len() as u64);
        }
    }
    for (_, bytes) in info.hashed_sections(data) {
        assert!(bytes.len() <= data.len());
    }
    if let Ok(table) = ImportTable::read(data, info) {
        let _ = table.hash();
    }
}

fuzz_target!(|data: &[u8]| {
    match ExeInfo::parse(data) {
        Ok(info) => use_info(data, &info),
        Err(ExeError::Universal) => {
            if let Ok(fat) = fat_arches(data) {
                for arch in fat.arches {
                    if let Some(Ok(info)) = arch.bytes(data).map(ExeInfo::parse) {
                        use_info(arch.bytes(data).unwrap_or_default(), &info);
                    }
                }
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    // Each reader on its own, whatever the magic says, from the slice and
    // read on demand from a file-like source (as the engine reads files):
    // both must give the same answer.
    let cache = object::ReadCache::new(std::io::Cursor::new(data));
    let same = |a: &Result<ExeInfo, ExeError>, b: &Result<ExeInfo, ExeError>| {
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    };
    let pe = ExeInfo::parse_pe(data);
    same(&pe, &ExeInfo::parse_pe(&cache));
    same(&ExeInfo::parse_elf(data), &ExeInfo::parse_elf(&cache));
    same(&ExeInfo::parse_macho(data), &ExeInfo::parse_macho(&cache));
    if let Ok(info) = &pe {
        assert_eq!(
            format!("{:?}", ImportTable::read(data, info)),
            format!("{:?}", ImportTable::read(&cache, info))
        );
    }
});
