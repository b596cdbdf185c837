//! TNEF streams: Debian's clam.tnef, streams built here, and the ways
//! ClamAV's reader groups, names, drops or refuses attachments.

mod legacy_common;
mod tnef_common;

use aether_formats::{FileType, Problem};
use legacy_common::{clam_exe, damaged, testfile, walked, walked_as};
use tnef_common::*;

#[test]
fn debian_clam_tnef_gives_clam_exe() {
    let w = walked(FileType::Tnef, &testfile("clam.tnef"));
    assert_eq!(w.members.len(), 1, "{:?}", w.problems);
    assert_eq!(w.members[0].0, "clam.exe");
    assert_eq!(w.members[0].1, clam_exe());
    assert!(w.problems.is_empty(), "{:?}", w.problems);
}

#[test]
fn separated_attachments_are_files_of_their_own() {
    let t = message(&[("a.txt", b"first"), ("b.txt", b"second")], true);
    let w = walked(FileType::Tnef, &t);
    assert_eq!(
        w.members,
        vec![
            ("a.txt".to_string(), b"first".to_vec()),
            ("b.txt".to_string(), b"second".to_vec())
        ]
    );
}

#[test]
fn attachments_without_a_message_attribute_between_are_one_file() {
    let t = message(&[("a.txt", b"first"), ("b.txt", b"second")], false);
    let w = walked(FileType::Tnef, &t);
    assert_eq!(
        w.members,
        vec![("a.txt".to_string(), b"firstsecond".to_vec())]
    );
}

#[test]
fn unnamed_data_is_dropped_at_a_message_attribute_and_kept_at_the_end() {
    let t = tnef(&[
        (ATTACHMENT, ATTACH_DATA, 6, b"dropped"),
        (MESSAGE, MESSAGE_CLASS, 7, b"x\0"),
        (ATTACHMENT, ATTACH_DATA, 6, b"kept"),
    ]);
    let w = walked(FileType::Tnef, &t);
    assert_eq!(w.members, vec![("tnef".to_string(), b"kept".to_vec())]);
}

#[test]
fn format_errors_give_nothing() {
    let good = message(&[("a.txt", b"payload")], false);
    // An unknown level after the attachment.
    let mut t = good.clone();
    t.extend_from_slice(&[3, 0, 0, 0, 0, 1, 0, 0, 0, b'x', 0, 0]);
    let w = walked(FileType::Tnef, &t);
    assert!(w.members.is_empty());
    assert!(
        matches!(&w.problems[..], [Problem::Broken { .. }]),
        "{:?}",
        w.problems
    );
    // Attachment data cut short.
    let w = walked_as(FileType::Tnef, &good[..good.len() - 20]);
    assert!(w.members.is_empty());
    assert!(!w.problems.is_empty());
}

#[test]
fn a_stream_cut_inside_a_header_keeps_what_it_has() {
    let mut t = message(&[("a.txt", b"payload")], false);
    t.extend_from_slice(&[MESSAGE, 4, 0]);
    let w = walked(FileType::Tnef, &t);
    assert_eq!(w.members, vec![("a.txt".to_string(), b"payload".to_vec())]);
    assert!(
        matches!(&w.problems[..], [Problem::Broken { .. }]),
        "{:?}",
        w.problems
    );
}

#[test]
fn a_zero_length_attribute_has_no_checksum_read() {
    // ClamAV goes on at the checksum's two bytes: with a zero checksum the
    // next "level" byte is 0, the end.
    let t = tnef(&[
        (MESSAGE, 0x8004, 1, b""),
        (ATTACHMENT, ATTACH_DATA, 6, b"never reached"),
    ]);
    assert!(walked(FileType::Tnef, &t).members.is_empty());
}

#[test]
fn names_that_climb_are_reported() {
    let t = message(&[("../../evil.exe", b"x")], false);
    let w = walked(FileType::Tnef, &t);
    assert_eq!(w.members.len(), 1);
    assert!(matches!(&w.problems[..], [Problem::PathTraversal { .. }]));
}

#[test]
fn damaged_copies_never_panic() {
    assert!(damaged(FileType::Tnef, &testfile("clam.tnef"), 31) > 100);
    let t = message(&[("a", &clam_exe()), ("b", b"bbb")], true);
    assert!(damaged(FileType::Tnef, &t, 3) > 100);
}
