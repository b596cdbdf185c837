//! Zip's implode method: Debian's clam.impl.zip, members imploded here with
//! both windows and with and without coded literals, long matches, and what
//! ClamAV makes of a corrupt stream (nothing) or a cut one (what it has).

mod implode_common;
mod legacy_common;

use aether_formats::FileType;
use implode_common::{Entry, implode, imploded, zip};
use legacy_common::{clam_exe, damaged, testfile, walked};

#[test]
fn debian_clam_impl_zip_gives_clam_exe() {
    let w = walked(FileType::Zip, &testfile("clam.impl.zip"));
    assert_eq!(w.members.len(), 1, "{:?}", w.problems);
    assert_eq!(w.members[0].1, clam_exe());
    assert!(w.problems.is_empty(), "{:?}", w.problems);
}

fn sample() -> Vec<u8> {
    let mut d = b"an imploded member, an imploded member. ".repeat(300);
    d.extend((0..20_000u32).map(|i| (i * 13 / 7) as u8));
    d.extend(std::iter::repeat_n(b'z', 1000));
    d.extend_from_slice(&clam_exe());
    d
}

#[test]
fn every_window_and_literal_mode_decodes() {
    let data = sample();
    for (large, lits) in [(false, false), (true, false), (false, true), (true, true)] {
        let z = zip(&[imploded("m.bin", &data, large, lits)]);
        let w = walked(FileType::Zip, &z);
        assert!(w.problems.is_empty(), "{large} {lits}: {:?}", w.problems);
        assert!(w.members[0].1 == data, "large {large}, lits {lits}");
    }
}

#[test]
fn a_corrupt_stream_gives_nothing() {
    let data = sample();
    let mut packed = implode(&data, false, false);
    // A length table of one code run too many.
    packed[0] = 0x04;
    let z = zip(&[Entry {
        name: "bad",
        data: &data,
        method: 6,
        packed,
        flags: 0,
    }]);
    let w = walked(FileType::Zip, &z);
    assert!(w.members.iter().all(|(_, d)| d.is_empty()));
    assert_eq!(w.errors.len(), 1, "{:?}", w.errors);
}

#[test]
fn a_cut_stream_gives_what_it_has() {
    let data = sample();
    let mut e = imploded("m", &data, true, false);
    e.packed.truncate(e.packed.len() / 2);
    let w = walked(FileType::Zip, &zip(&[e]));
    let got = &w.members[0].1;
    assert!(got.len() > 1000 && data.starts_with(got));
}

#[test]
fn damaged_copies_never_panic() {
    assert!(damaged(FileType::Zip, &testfile("clam.impl.zip"), 1) > 700);
    let d = b"abcabcabc hello hello".repeat(20);
    let z = zip(&[imploded("x", &d, false, true)]);
    assert!(damaged(FileType::Zip, &z, 1) > 200);
}
