//! ARJ archives: Debian's clam.arj, archives Debian's `arj` writes with
//! every method (0 stored, 1-3 the Huffman-coded LZ77, 4 ARJ's fast
//! method), several members, garbled (password) members, names that climb,
//! and cut or damaged copies.

mod arj_common;
mod legacy_common;

use aether_formats::{FileType, Problem};
use arj_common::{arj, mixed};
use legacy_common::{clam_exe, damaged, testfile, walked, walked_as};

#[test]
fn debian_clam_arj_gives_clam_exe() {
    let w = walked(FileType::Arj, &testfile("clam.arj"));
    assert_eq!(w.members.len(), 1, "{:?}", w.problems);
    assert_eq!(w.members[0].1, clam_exe());
    assert!(w.problems.is_empty(), "{:?}", w.problems);
}

#[test]
fn every_method_decodes_what_arj_wrote() {
    // Larger than the 26 KiB window, with matches reaching across it.
    let big = mixed(150_000, 7);
    let small = b"a small member".to_vec();
    for method in 0..=4 {
        let a = arj(
            method,
            &[
                ("big.bin", &big),
                ("small.txt", &small),
                ("exe", &clam_exe()),
            ],
            None,
        );
        let w = walked(FileType::Arj, &a);
        assert!(w.problems.is_empty(), "method {method}: {:?}", w.problems);
        let names: Vec<&str> = w.members.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["big.bin", "small.txt", "exe"], "method {method}");
        assert!(w.members[0].1 == big, "method {method}: big member differs");
        assert_eq!(w.members[1].1, small, "method {method}");
        assert_eq!(w.members[2].1, clam_exe(), "method {method}");
    }
}

#[test]
fn garbled_members_are_skipped_and_reported() {
    let a = arj(1, &[("secret.txt", &mixed(5000, 3))], Some("pw"));
    let w = walked(FileType::Arj, &a);
    assert!(w.members.is_empty());
    assert!(
        matches!(&w.problems[..], [Problem::Unsupported { member, .. }] if member == "secret.txt"),
        "{:?}",
        w.problems
    );
}

#[test]
fn a_cut_member_gives_whole_windows_only() {
    let big = mixed(100_000, 9);
    let a = arj(1, &[("big.bin", &big)], None);
    let w = walked_as(FileType::Arj, &a[..a.len() / 2]);
    assert_eq!(w.members.len(), 1);
    let got = &w.members[0].1;
    assert_eq!(got.len() % 26624, 0, "{}", got.len());
    assert!(big.starts_with(got));
    assert!(w.problems.iter().any(|p| matches!(
        p,
        Problem::Broken {
            member: Some(_),
            ..
        }
    )));
}

#[test]
fn damaged_copies_never_panic() {
    assert!(damaged(FileType::Arj, &testfile("clam.arj"), 1) > 700);
    for method in [1, 4] {
        let a = arj(method, &[("x", &mixed(3000, 5)), ("y", b"yy")], None);
        assert!(damaged(FileType::Arj, &a, 3) > 100);
    }
}
