//! BinHex 4.0: Debian's clam.exe.binhex, files written here (both forks,
//! runs, 0x90 bytes, forks larger than ClamAV's flush), and what ClamAV does
//! with text around them, small resource forks, cuts and damage.

mod binhex_common;
mod legacy_common;

use aether_formats::{FileType, Problem};
use binhex_common::binhex;
use legacy_common::{clam_exe, damaged, testfile, walked, walked_as};

#[test]
fn debian_clam_exe_binhex_gives_clam_exe() {
    let w = walked(FileType::BinHex, &testfile("clam.exe.binhex"));
    assert_eq!(w.members.len(), 1, "{:?}", w.problems);
    assert_eq!(w.members[0].1, clam_exe());
    assert!(w.problems.is_empty(), "{:?}", w.problems);
}

#[test]
fn both_forks_come_out() {
    let mut data = vec![0x90; 700];
    data.extend((0..30_000u32).map(|i| (i / 100) as u8));
    data.extend_from_slice(&clam_exe());
    let rsrc = b"resource fork bytes \x90\x90\x90\x90 and runs: aaaaaaaaaaaaaaaa".to_vec();
    let w = walked(FileType::BinHex, &binhex("file.bin", &data, &rsrc));
    assert!(w.problems.is_empty(), "{:?}", w.problems);
    assert_eq!(w.members.len(), 2);
    assert_eq!(w.members[0].0, "file.bin");
    assert!(w.members[0].1 == data);
    assert_eq!(w.members[1].1, rsrc);
}

#[test]
fn a_resource_fork_under_5_bytes_is_not_scanned() {
    let w = walked(FileType::BinHex, &binhex("f", b"data", b"abcd"));
    assert_eq!(w.members, vec![("f".to_string(), b"data".to_vec())]);
}

#[test]
fn text_after_the_closing_colon_loses_what_was_not_flushed() {
    let mut f = binhex("f", b"small data fork", b"");
    f.extend_from_slice(b"trailing words\n");
    let w = walked(FileType::BinHex, &f);
    assert!(w.members.is_empty());
    assert!(matches!(&w.problems[..], [Problem::Broken { .. }]));
}

#[test]
fn the_banner_must_be_followed_by_a_colon() {
    let f = binhex("f", b"data", b"");
    let mut g = b"(This file must be converted with BinHex 4.0)\nx".to_vec();
    g.extend_from_slice(&f[f.iter().position(|&c| c == b':').unwrap_or(0)..]);
    assert!(walked_as(FileType::BinHex, &g).members.is_empty());
}

#[test]
fn a_cut_file_gives_the_fork_it_ends_in() {
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7) as u8).collect();
    let f = binhex("f", &data, b"");
    let w = walked_as(FileType::BinHex, &f[..f.len() / 2]);
    assert_eq!(w.members.len(), 1);
    assert!(data.starts_with(&w.members[0].1));
    assert!(w.members[0].1.len() > 5000);
}

#[test]
fn damaged_copies_never_panic() {
    assert!(damaged(FileType::BinHex, &testfile("clam.exe.binhex"), 1) > 1000);
}
