//! The version-information strings of PE files, where `VI` signatures match.

mod common;

use aether_exe::ExeInfo;
use aether_exe::version_info::version_info_offsets;
use common::{pe_with_version_info, utf16z, version_info};

fn offsets(pe: &[u8]) -> Vec<u32> {
    match ExeInfo::parse(pe) {
        Ok(info) => version_info_offsets(pe, &info, pe.len() as u64),
        Err(_) => Vec::new(),
    }
}

#[test]
fn strings_with_values_are_found_at_their_keys() {
    for var_first in [false, true] {
        let strings = [
            ("CompanyName", "ACME"),
            ("Comments", ""),
            ("ProductName", "X"),
        ];
        let pe = pe_with_version_info(&version_info(&strings, var_first), 7);
        let info = ExeInfo::parse(&pe).expect("PE");
        let found = info
            .pe
            .as_ref()
            .map(|p| p.version_info.clone())
            .unwrap_or_default();
        assert_eq!(found, offsets(&pe));
        // Two strings with a value; the unset one is skipped.
        assert_eq!(found.len(), 2, "{found:?}");
        for (at, key) in found.iter().zip(["CompanyName", "ProductName"]) {
            let at = *at as usize;
            let k = utf16z(key);
            assert_eq!(&pe[at..at + k.len()], &k[..], "{key} at {at:#x}");
        }
    }
}

#[test]
fn files_without_version_information_have_none() {
    let clam = std::fs::read("/usr/share/clamav-testfiles/clam.exe").expect("clamav-testfiles");
    assert!(offsets(&clam).is_empty());
    let mut bad_key = version_info(&[("CompanyName", "ACME")], false);
    bad_key[6] = b'X';
    assert!(offsets(&pe_with_version_info(&bad_key, 8)).is_empty());
}

#[test]
fn damaged_resources_never_panic_and_keep_what_came_before() {
    let pe = pe_with_version_info(
        &version_info(&[("CompanyName", "ACME"), ("ProductName", "X")], true),
        9,
    );
    let whole = offsets(&pe);
    assert_eq!(whole.len(), 2);
    for at in 0x600..pe.len() {
        for flip in [0x01u8, 0x80] {
            let mut d = pe.clone();
            d[at] ^= flip;
            let found = offsets(&d);
            assert!(found.len() <= 3, "{at:#x}: {found:?}");
        }
        assert!(offsets(&pe[..at]).len() <= 2);
    }
}
