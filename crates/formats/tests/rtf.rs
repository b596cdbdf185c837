//! RTF documents with embedded objects: Debian's clam.exe.rtf, documents
//! built here (packaged files, OLE2 payloads, several objects, hex split
//! across lines and pieces), what ClamAV does not extract (`\objdata` outside
//! an `\object`, long class names), and cut or damaged copies.

mod legacy_common;
mod rtf_common;

use aether_formats::{FileType, Problem};
use legacy_common::{clam_exe, damaged, testfile, walked, walked_as};
use rtf_common::{document, hex_lines, ole1, package, packaged};

#[test]
fn debian_clam_exe_rtf_gives_clam_exe() {
    let w = walked(FileType::Rtf, &testfile("clam.exe.rtf"));
    assert_eq!(w.members.len(), 1, "{:?}", w.problems);
    assert_eq!(w.members[0].1, clam_exe());
    assert!(w.problems.is_empty(), "{:?}", w.problems);
}

#[test]
fn packaged_files_come_out_whole_in_order() {
    let a = b"first file's bytes".repeat(300);
    let b = b"second".to_vec();
    let doc = document(&[
        hex_lines(&ole1("Package", &package("a.txt", &a)), 128),
        hex_lines(&ole1("Package", &package("b.txt", &b)), 64),
    ]);
    let w = walked(FileType::Rtf, &doc);
    let got: Vec<&[u8]> = w.members.iter().map(|(_, d)| d.as_slice()).collect();
    assert_eq!(got, vec![a.as_slice(), b.as_slice()]);
    assert!(w.members[0].0.contains("Package"), "{}", w.members[0].0);
}

#[test]
fn an_ole2_payload_is_given_as_it_is() {
    let mut ole2 = vec![0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1];
    ole2.extend_from_slice(&[0x42; 600]);
    let doc = document(&[hex_lines(&ole1("Word.Document.8", &ole2), 128)]);
    let w = walked(FileType::Rtf, &doc);
    assert_eq!(w.members.len(), 1);
    assert_eq!(w.members[0].1, ole2);
}

#[test]
fn hex_split_by_other_characters_and_pieces_still_decodes() {
    let file: Vec<u8> = (0..20_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    // Digits one per line: the object spans several 8 KiB pieces.
    let hex = hex_lines(&ole1("Package", &package("x.bin", &file)), 2);
    let w = walked(FileType::Rtf, &document(&[hex]));
    assert_eq!(w.members.len(), 1, "{:?}", w.problems);
    assert_eq!(w.members[0].1, file);
}

#[test]
fn objdata_outside_an_object_is_not_read() {
    let hex = hex_lines(&ole1("Package", &package("x", b"payload")), 128);
    let doc = format!("{{\\rtf1 {{\\*\\objdata {hex}}}}}");
    let w = walked(FileType::Rtf, doc.as_bytes());
    assert!(w.members.is_empty());
}

#[test]
fn objdata_must_be_followed_by_a_space() {
    let hex = hex_lines(&ole1("Package", &package("x", b"payload")), 128);
    let doc = format!("{{\\rtf1 {{\\object{{\\*\\objdata\\bin0 {hex}}}}}}}");
    assert!(walked(FileType::Rtf, doc.as_bytes()).members.is_empty());
    // Only a space: a line break ends the word without being it.
    let doc = format!("{{\\rtf1 {{\\object{{\\*\\objdata\n{hex}}}}}}}");
    assert!(walked(FileType::Rtf, doc.as_bytes()).members.is_empty());
    let doc = format!("{{\\rtf1 {{\\object{{\\*\\objdata {hex}}}}}}}");
    assert_eq!(walked(FileType::Rtf, doc.as_bytes()).members.len(), 1);
}

#[test]
fn a_class_name_longer_than_64_bytes_loses_the_object_as_in_clamav() {
    let class = "C".repeat(80);
    let doc = document(&[hex_lines(&ole1(&class, &package("x", b"payload")), 128)]);
    assert!(walked(FileType::Rtf, &doc).members.is_empty());
}

#[test]
fn a_cut_object_is_given_with_what_it_has() {
    let file = vec![0x5a; 4000];
    let mut ole2 = vec![0xd0, 0xcf];
    ole2.extend_from_slice(&file);
    let doc = document(&[hex_lines(&ole1("Word.Document.8", &ole2), 128)]);
    let cut = &doc[..doc.len() / 2];
    let w = walked_as(FileType::Rtf, cut);
    assert_eq!(w.members.len(), 1);
    assert!(w.members[0].1.len() > 1000 && w.members[0].1.len() < ole2.len());
    assert!(ole2.starts_with(&w.members[0].1));
    assert!(
        matches!(&w.problems[..], [Problem::Broken { member: Some(m), .. }] if m.contains("Word")),
        "{:?}",
        w.problems
    );
}

#[test]
fn deep_nesting_and_stray_braces_are_harmless() {
    let mut doc = b"{\\rtf1 {\\object".to_vec();
    doc.extend(std::iter::repeat_n(b'{', 200_000));
    doc.extend(std::iter::repeat_n(b'}', 300_000));
    let w = walked(FileType::Rtf, &doc);
    assert!(w.members.is_empty());
}

#[test]
fn damaged_copies_never_panic() {
    let doc = packaged("clam.exe", &clam_exe());
    assert!(damaged(FileType::Rtf, &doc, 7) > 100);
    assert!(damaged(FileType::Rtf, &testfile("clam.exe.rtf"), 53) > 100);
}
