//! SZDD files: Debian's clam.exe.szdd, files compressed here (literals,
//! matches, matches into the window's zeroed start), the declared size
//! against ClamAV's 2 KiB pieces, headers ClamAV does not expand, and cut
//! or damaged copies.

mod legacy_common;
mod szdd_common;

use aether_formats::{FileType, Problem};
use legacy_common::{clam_exe, damaged, testfile, walked, walked_as};
use szdd_common::{szdd, szdd_declaring};

#[test]
fn debian_clam_exe_szdd_gives_clam_exe() {
    let w = walked(FileType::MsSzdd, &testfile("clam.exe.szdd"));
    assert_eq!(w.members.len(), 1, "{:?}", w.problems);
    assert_eq!(w.members[0].1, clam_exe());
    assert!(w.problems.is_empty(), "{:?}", w.problems);
}

#[test]
fn compressed_data_expands_back() {
    let mut data = b"repeat me, repeat me, repeat me! ".repeat(500);
    data.extend((0..20_000u32).map(|i| (i * 31 % 251) as u8));
    data.extend_from_slice(&clam_exe());
    let file = szdd(&data);
    assert!(file.len() < data.len());
    let w = walked(FileType::MsSzdd, &file);
    assert!(w.members[0].1 == data);
    assert!(w.problems.is_empty(), "{:?}", w.problems);
}

#[test]
fn a_match_may_read_the_windows_zeroed_start() {
    // Flags 0: two matches at position 0 of the window, all zeros.
    let mut f = b"SZDD\x88\xf0\x27\x33A\0".to_vec();
    f.extend_from_slice(&36u32.to_le_bytes());
    f.extend_from_slice(&[0b0000_0000, 0, 0x0f, 0, 0x0f]);
    let w = walked(FileType::MsSzdd, &f);
    assert_eq!(w.members[0].1, vec![0; 36]);
}

#[test]
fn output_stops_at_the_first_piece_past_the_declared_size() {
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 7) as u8 + b'a').collect();
    // Declaring 3000: ClamAV writes 2048, then 4096 >= 3000 and stops.
    let w = walked(FileType::MsSzdd, &szdd_declaring(&data, 3000));
    assert_eq!(w.members[0].1, data[..4096]);
    assert!(matches!(
        &w.problems[..],
        [Problem::SizeMismatch {
            declared: 3000,
            actual: 4096,
            ..
        }]
    ));
    // Declaring more than there is: all of it.
    let w = walked(FileType::MsSzdd, &szdd_declaring(&data, 50_000));
    assert_eq!(w.members[0].1, data);
}

#[test]
fn only_mode_a_without_a_name_character_is_expanded() {
    let mut f = szdd(b"hello hello hello");
    f[9] = b'X';
    let w = walked(FileType::MsSzdd, &f);
    assert!(w.members.is_empty());
    assert!(matches!(&w.problems[..], [Problem::Unsupported { .. }]));
}

#[test]
fn a_cut_file_gives_what_it_has() {
    let data = b"0123456789abcdef".repeat(100);
    let f = szdd(&data);
    let w = walked_as(FileType::MsSzdd, &f[..f.len() - 10]);
    assert!(data.starts_with(&w.members[0].1));
    assert!(w.members[0].1.len() > 100);
}

#[test]
fn damaged_copies_never_panic() {
    assert!(damaged(FileType::MsSzdd, &testfile("clam.exe.szdd"), 1) > 500);
}
