//! Symbian installers: Debian's clam.sis, packages written here (stored and
//! compressed, several languages, null files, condition records stepped
//! over), copies ClamAV skips (a stream that inflates past three times its
//! size and its declared size), cuts and damage.

mod legacy_common;
mod sis_common;

use aether_formats::{FileType, Problem};
use legacy_common::{clam_exe, damaged, testfile, walked, walked_as};
use sis_common::{File, sis};

#[test]
fn debian_clam_sis_gives_clam_exe() {
    let w = walked(FileType::Sis, &testfile("clam.sis"));
    assert_eq!(w.members.len(), 1, "{:?}", w.problems);
    assert_eq!(w.members[0].1, clam_exe());
    assert!(w.problems.is_empty(), "{:?}", w.problems);
}

#[test]
fn every_language_copy_of_every_file_comes_out() {
    let (a, b) = (b"english copy".repeat(10), b"french copy".repeat(10));
    let exe = clam_exe();
    for stored in [false, true] {
        let p = sis(
            2,
            &[
                File {
                    name: "!:\\sys\\bin\\app.exe",
                    copies: vec![&a, &b],
                    ftype: 0,
                },
                File {
                    name: "none",
                    copies: vec![&exe, &exe],
                    ftype: 4,
                },
                File {
                    name: "exe",
                    copies: vec![&exe, &a],
                    ftype: 0,
                },
            ],
            stored,
            &[3, 8, 0xdead, 0xbeef],
        );
        let w = walked(FileType::Sis, &p);
        assert!(w.problems.is_empty(), "{:?}", w.problems);
        let got: Vec<&[u8]> = w.members.iter().map(|(_, d)| d.as_slice()).collect();
        assert_eq!(
            got,
            vec![&a[..], &b[..], &exe[..], &a[..]],
            "stored {stored}"
        );
        assert!(w.members[0].0.contains("app.exe"), "{}", w.members[0].0);
    }
}

#[test]
fn a_copy_inflating_past_its_limit_is_skipped() {
    // 100 KiB of zeros compress to ~100 bytes: more than three times that
    // and more than the declared original size (patched to 10).
    let zeros = vec![0u8; 100_000];
    let mut p = sis(
        1,
        &[File {
            name: "z",
            copies: vec![&zeros],
            ftype: 0,
        }],
        false,
        &[],
    );
    let olen_at = 16 + 68 + 2 + 4 * 9;
    p[olen_at..olen_at + 4].copy_from_slice(&10u32.to_le_bytes());
    let w = walked(FileType::Sis, &p);
    assert!(w.members.is_empty());
    assert!(
        matches!(&w.problems[..], [Problem::Broken { .. }]),
        "{:?}",
        w.problems
    );
}

#[test]
fn a_cut_package_gives_the_copies_before_the_cut() {
    let exe = clam_exe();
    let p = sis(
        1,
        &[
            File {
                name: "a",
                copies: vec![b"first file"],
                ftype: 0,
            },
            File {
                name: "b",
                copies: vec![&exe],
                ftype: 0,
            },
        ],
        false,
        &[],
    );
    let w = walked_as(FileType::Sis, &p[..p.len() - 50]);
    assert_eq!(w.members.len(), 1);
    assert_eq!(w.members[0].1, b"first file");
}

#[test]
fn damaged_copies_never_panic() {
    assert!(damaged(FileType::Sis, &testfile("clam.sis"), 1) > 1000);
}
