//! CHM help files: Debian's clam.chm (LZX-compressed), files written here
//! (stored and compressed files, several frames, files across frames),
//! cuts and damage.

mod chm_common;
mod legacy_common;

use aether_formats::FileType;
use chm_common::chm;
use legacy_common::{clam_exe, damaged, testfile, walked, walked_as};

#[test]
fn debian_clam_chm_gives_clam_exe() {
    let w = walked(FileType::MsChm, &testfile("clam.chm"));
    assert!(w.problems.is_empty(), "{:?}", w.problems);
    assert!(
        w.members.iter().any(|(_, d)| *d == clam_exe()),
        "{:?}",
        w.members
            .iter()
            .map(|(n, d)| (n, d.len()))
            .collect::<Vec<_>>()
    );
}

#[test]
fn stored_and_compressed_files_come_out() {
    let exe = clam_exe();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 17 / 5) as u8).collect();
    let h = chm(&[
        ("/index.html", b"<html>stored</html>", false),
        ("/big.bin", &big, true),
        ("/exe", &exe, true),
        ("/stored.exe", &exe, false),
    ]);
    let w = walked(FileType::MsChm, &h);
    assert!(w.problems.is_empty(), "{:?}", w.problems);
    let names: Vec<&str> = w.members.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["index.html", "big.bin", "exe", "stored.exe"]);
    assert_eq!(w.members[0].1, b"<html>stored</html>");
    assert!(w.members[1].1 == big);
    assert_eq!(w.members[2].1, exe);
    assert_eq!(w.members[3].1, exe);
}

#[test]
fn a_cut_file_gives_what_it_has() {
    let big: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let h = chm(&[("/a.bin", &big, false)]);
    let w = walked_as(FileType::MsChm, &h[..h.len() - 40_000]);
    assert_eq!(w.members.len(), 1);
    assert!(big.starts_with(&w.members[0].1));
    assert!(!w.errors.is_empty());
}

#[test]
fn damaged_copies_never_panic() {
    assert!(damaged(FileType::MsChm, &testfile("clam.chm"), 13) > 1500);
    let h = chm(&[("/x", b"xxxx", true), ("/y", b"yy", false)]);
    assert!(damaged(FileType::MsChm, &h, 101) > 500);
}
