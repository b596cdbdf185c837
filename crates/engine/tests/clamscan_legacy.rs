//! The smaller formats ClamAV opens, against Debian's clamscan 1.4.6 with
//! `--allmatch`: RTF embedded objects, TNEF attachments, ARJ archives, SZDD
//! compressed files, BinHex 4.0, zip's implode method, CHM help files and
//! SIS installers.
//!
//! For each format: Debian's test file, files built here whose members carry
//! `.ndb` markers (found only once a member is decoded) and `.hdb` hashes of
//! whole members, and cut and bit-flipped copies of them all. Each file must
//! give the same detections as clamscan's; clamscan must find what the built
//! files were made to hold, or the comparison proves nothing.

#[path = "../../formats/tests/arj_common/mod.rs"]
mod arj_common;
#[path = "../../formats/tests/binhex_common/mod.rs"]
mod binhex_common;
#[path = "../../formats/tests/chm_common/mod.rs"]
mod chm_common;
mod common;
#[path = "../../formats/tests/implode_common/mod.rs"]
mod implode_common;
#[path = "../../formats/tests/legacy_common/mod.rs"]
mod legacy_common;
#[path = "../../formats/tests/rtf_common/mod.rs"]
mod rtf_common;
#[path = "../../formats/tests/sis_common/mod.rs"]
mod sis_common;
#[path = "../../formats/tests/szdd_common/mod.rs"]
mod szdd_common;
#[path = "../../formats/tests/tnef_common/mod.rs"]
mod tnef_common;

use std::fmt::Write as _;

use common::{Verdicts, compare, hdb_line, hex};

/// A member that only matches once decoded: text around a marker.
fn marked(tag: &str, repeat: usize) -> Vec<u8> {
    let mut t = b"some filler text that compresses well. ".repeat(repeat);
    t.extend_from_slice(format!("<<aether-legacy-marker-{tag}>>").as_bytes());
    t.extend_from_slice(&b" and more filler after the marker. ".repeat(repeat));
    t
}

/// The signatures: a marker per tag (`.ndb`), and clam.exe's hash and the
/// hash of each of `hashed` (`.hdb`).
fn databases(tags: &[&str], hashed: &[(&str, &[u8])]) -> (String, String) {
    let mut ndb = String::new();
    for tag in tags {
        let marker = format!("<<aether-legacy-marker-{tag}>>");
        let _ = writeln!(ndb, "Legacy.Marker.{tag}:0:*:{}", hex(marker.as_bytes()));
    }
    let exe = legacy_common::clam_exe();
    let hdb = [("ClamExe", exe.as_slice())]
        .iter()
        .chain(hashed)
        .map(|(name, data)| hdb_line(&format!("Legacy.Hash.{name}"), data))
        .collect();
    (ndb, hdb)
}

/// Cut copies and copies with a bit flipped, at `every` places of `data`.
fn damaged(name: &str, data: &[u8], every: usize) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let step = (data.len() / every).max(1);
    for (k, at) in (step / 2..data.len()).step_by(step).enumerate() {
        out.push((format!("{name}.cut{k}"), data[..at].to_vec()));
        let mut f = data.to_vec();
        f[at] ^= 1 << (k % 8);
        out.push((format!("{name}.flip{k}"), f));
    }
    out
}

/// Writes `files` and the database, scans them with clamscan and the
/// engine, checks that clamscan found `expect` (file, signatures) and that
/// both agree on every file; returns clamscan's verdicts.
fn differential(
    tags: &[&str],
    hashed: &[(&str, &[u8])],
    files: &[(String, Vec<u8>)],
    expect: &[(&str, &[&str])],
) -> Verdicts {
    let (ndb, hdb) = databases(tags, hashed);
    let (want, got) = compare(
        &[("markers.ndb", ndb.as_str()), ("members.hdb", hdb.as_str())],
        files,
    );
    for (file, names) in expect {
        let names: Vec<String> = names.iter().map(|n| format!("{n}.UNOFFICIAL")).collect();
        assert_eq!(common::names(&want, file), names, "clamscan on {file}");
    }
    let differ: Vec<_> = files
        .iter()
        .map(|(f, _)| f)
        .filter(|f| want.get(*f) != got.get(*f))
        .map(|f| format!("{f}: clamscan {:?}, aether {:?}", want.get(f), got.get(f)))
        .collect();
    assert!(
        differ.is_empty(),
        "{} differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
    want
}

/// Copies of a zip with a bit flipped inside its first member's packed data
/// only: a cut or a flip elsewhere reaches the central directory, where
/// aether's zip reader (which trusts the central directory, and reads the
/// local headers of an archive that has none) and clamscan 1.4.6 (which
/// takes method, flags and sizes from the local header, and finds no
/// member in a zip without a central directory) part ways for every
/// method, not only implode.
fn flipped_in_first_member(name: &str, zip: &[u8], every: usize) -> Vec<(String, Vec<u8>)> {
    let le16 = |at: usize| usize::from(u16::from_le_bytes([zip[at], zip[at + 1]]));
    let packed = u32::from_le_bytes([zip[18], zip[19], zip[20], zip[21]]) as usize;
    let start = 30 + le16(26) + le16(28);
    let step = (packed / every).max(1);
    (start..start + packed)
        .step_by(step)
        .enumerate()
        .map(|(k, at)| {
            let mut f = zip.to_vec();
            f[at] ^= 1 << (k % 8);
            (format!("{name}.flip{k}"), f)
        })
        .collect()
}

/// `files` and damaged copies of each.
fn with_damaged(files: Vec<(String, Vec<u8>)>, every: usize) -> Vec<(String, Vec<u8>)> {
    let mut all = files.clone();
    for (name, data) in &files {
        all.extend(damaged(name, data, every));
    }
    all
}

#[test]
fn rtf_objects_match_clamscan() {
    use rtf_common::{document, hex_lines, ole1, package, packaged};
    let a = marked("rtf-a", 200);
    let b = marked("rtf-b", 3);
    let mut ole2 = vec![0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1];
    ole2.extend_from_slice(&marked("rtf-ole", 20));
    let files = vec![
        (
            "clam.exe.rtf".to_string(),
            legacy_common::testfile("clam.exe.rtf"),
        ),
        ("one.rtf".into(), packaged("a.txt", &a)),
        (
            "two.rtf".into(),
            document(&[
                hex_lines(&ole1("Package", &package("b.txt", &b)), 2),
                hex_lines(
                    &ole1("Package", &package("exe", &legacy_common::clam_exe())),
                    128,
                ),
            ]),
        ),
        (
            "ole2.rtf".into(),
            document(&[hex_lines(&ole1("Word.Document.8", &ole2), 64)]),
        ),
        (
            "long_class.rtf".into(),
            document(&[hex_lines(&ole1(&"L".repeat(70), &package("a", &a)), 64)]),
        ),
    ];
    differential(
        &["rtf-a", "rtf-b", "rtf-ole"],
        &[("RtfA", &a)],
        &with_damaged(files, 24),
        &[
            ("clam.exe.rtf", &["Legacy.Hash.ClamExe"]),
            ("one.rtf", &["Legacy.Hash.RtfA", "Legacy.Marker.rtf-a"]),
            ("two.rtf", &["Legacy.Hash.ClamExe", "Legacy.Marker.rtf-b"]),
            ("ole2.rtf", &["Legacy.Marker.rtf-ole"]),
            ("long_class.rtf", &[]),
        ],
    );
}

#[test]
fn tnef_attachments_match_clamscan() {
    use tnef_common::{ATTACH_DATA, ATTACHMENT, MESSAGE, MESSAGE_CLASS, message, tnef};
    let a = marked("tnef-a", 100);
    let b = marked("tnef-b", 2);
    let exe = legacy_common::clam_exe();
    let files = vec![
        (
            "clam.tnef".to_string(),
            legacy_common::testfile("clam.tnef"),
        ),
        (
            "two.tnef".into(),
            message(&[("a.txt", &a), ("b.txt", &b)], true),
        ),
        (
            "joined.tnef".into(),
            message(&[("exe", &exe), ("a.txt", &a)], false),
        ),
        (
            "dropped.tnef".into(),
            tnef(&[
                (ATTACHMENT, ATTACH_DATA, 6, &exe),
                (MESSAGE, MESSAGE_CLASS, 7, b"x\0"),
                (ATTACHMENT, ATTACH_DATA, 6, &b),
            ]),
        ),
    ];
    differential(
        &["tnef-a", "tnef-b"],
        &[("TnefA", &a)],
        &with_damaged(files, 24),
        &[
            ("clam.tnef", &["Legacy.Hash.ClamExe"]),
            (
                "two.tnef",
                &[
                    "Legacy.Hash.TnefA",
                    "Legacy.Marker.tnef-a",
                    "Legacy.Marker.tnef-b",
                ],
            ),
            // One file of both: clam.exe's hash no longer matches.
            ("joined.tnef", &["Legacy.Marker.tnef-a"]),
            ("dropped.tnef", &["Legacy.Marker.tnef-b"]),
        ],
    );
}

#[test]
fn arj_members_match_clamscan() {
    use arj_common::{arj, mixed};
    let a = marked("arj-a", 400);
    let exe = legacy_common::clam_exe();
    let noise = mixed(60_000, 11);
    let mut files = vec![("clam.arj".to_string(), legacy_common::testfile("clam.arj"))];
    for method in 0..=4u8 {
        files.push((
            format!("m{method}.arj"),
            arj(
                method,
                &[("a.txt", &a), ("noise.bin", &noise), ("exe", &exe)],
                None,
            ),
        ));
    }
    files.push((
        "garbled.arj".into(),
        arj(1, &[("exe", &exe), ("a.txt", &a)], Some("pw")),
    ));
    let both: &[&str] = &[
        "Legacy.Hash.ArjA",
        "Legacy.Hash.ClamExe",
        "Legacy.Marker.arj-a",
    ];
    let mut expect: Vec<(String, &[&str])> = vec![("clam.arj".into(), &["Legacy.Hash.ClamExe"])];
    for method in 1..=4 {
        expect.push((format!("m{method}.arj"), both));
    }
    expect.push(("garbled.arj".into(), &[]));
    let expect: Vec<(&str, &[&str])> = expect.iter().map(|(f, n)| (f.as_str(), *n)).collect();
    differential(
        &["arj-a"],
        &[("ArjA", &a)],
        &with_damaged(files, 16),
        &expect,
    );
}

#[test]
fn szdd_files_match_clamscan() {
    use szdd_common::{szdd, szdd_declaring};
    let a = marked("szdd-a", 300);
    let exe = legacy_common::clam_exe();
    let files = vec![
        (
            "clam.exe.szdd".to_string(),
            legacy_common::testfile("clam.exe.szdd"),
        ),
        ("a.szdd".into(), szdd(&a)),
        ("exe.szdd".into(), szdd(&exe)),
        // Cut at 2048 bytes, before the marker.
        ("short.szdd".into(), szdd_declaring(&a, 100)),
        ("named.szdd".into(), {
            let mut f = szdd(&exe);
            f[9] = b'E';
            f
        }),
    ];
    differential(
        &["szdd-a"],
        &[("SzddA", &a)],
        &with_damaged(files, 24),
        &[
            ("clam.exe.szdd", &["Legacy.Hash.ClamExe"]),
            ("a.szdd", &["Legacy.Hash.SzddA", "Legacy.Marker.szdd-a"]),
            ("exe.szdd", &["Legacy.Hash.ClamExe"]),
            ("short.szdd", &[]),
            ("named.szdd", &[]),
        ],
    );
}

#[test]
fn binhex_forks_match_clamscan() {
    use binhex_common::binhex;
    let a = marked("hqx-a", 300);
    let r = marked("hqx-rsrc", 5);
    let exe = legacy_common::clam_exe();
    let mut runs = vec![0x90u8; 3000];
    runs.extend_from_slice(&marked("hqx-runs", 1));
    let files = vec![
        (
            "clam.exe.binhex".to_string(),
            legacy_common::testfile("clam.exe.binhex"),
        ),
        ("forks.hqx".into(), binhex("a.txt", &a, &r)),
        ("exe.hqx".into(), binhex("clam.exe", &exe, b"")),
        ("runs.hqx".into(), binhex("runs", &runs, &exe)),
        ("trailer.hqx".into(), {
            let mut f = binhex("clam.exe", &exe, b"");
            f.extend_from_slice(b"-- signature\n");
            f
        }),
    ];
    differential(
        &["hqx-a", "hqx-rsrc", "hqx-runs"],
        &[("HqxA", &a)],
        &with_damaged(files, 24),
        &[
            ("clam.exe.binhex", &["Legacy.Hash.ClamExe"]),
            (
                "forks.hqx",
                &[
                    "Legacy.Hash.HqxA",
                    "Legacy.Marker.hqx-a",
                    "Legacy.Marker.hqx-rsrc",
                ],
            ),
            ("exe.hqx", &["Legacy.Hash.ClamExe"]),
            (
                "runs.hqx",
                &["Legacy.Hash.ClamExe", "Legacy.Marker.hqx-runs"],
            ),
            ("trailer.hqx", &[]),
        ],
    );
}

#[test]
fn imploded_zip_members_match_clamscan() {
    use implode_common::{Entry, imploded, zip};
    let a = marked("implode-a", 300);
    let exe = legacy_common::clam_exe();
    let mut files = vec![(
        "clam.impl.zip".to_string(),
        legacy_common::testfile("clam.impl.zip"),
    )];
    for (large, lits) in [(false, false), (true, false), (false, true), (true, true)] {
        files.push((
            format!("i{}{}.zip", u8::from(large), u8::from(lits)),
            zip(&[
                imploded("a.txt", &a, large, lits),
                imploded("exe", &exe, large, lits),
            ]),
        ));
    }
    let mut bad = imploded("exe", &exe, false, false);
    bad.packed[0] = 0x04;
    files.push((
        "corrupt.zip".into(),
        zip(&[
            bad,
            Entry {
                name: "stored.txt",
                data: &a,
                method: 0,
                packed: a.clone(),
                flags: 0,
            },
        ]),
    ));
    let both: &[&str] = &[
        "Legacy.Hash.ClamExe",
        "Legacy.Hash.ImplodeA",
        "Legacy.Marker.implode-a",
    ];
    differential(
        &["implode-a"],
        &[("ImplodeA", &a)],
        &{
            let mut all = files.clone();
            for (name, data) in &files {
                all.extend(flipped_in_first_member(name, data, 24));
            }
            all
        },
        &[
            ("clam.impl.zip", &["Legacy.Hash.ClamExe"]),
            ("i00.zip", both),
            ("i10.zip", both),
            ("i01.zip", both),
            ("i11.zip", both),
            (
                "corrupt.zip",
                &["Legacy.Hash.ImplodeA", "Legacy.Marker.implode-a"],
            ),
        ],
    );
}

#[test]
fn sis_files_match_clamscan() {
    use sis_common::{File, sis};
    let a = marked("sis-a", 300);
    let b = marked("sis-b", 3);
    let exe = legacy_common::clam_exe();
    let file = |name, copies, ftype| File {
        name,
        copies,
        ftype,
    };
    let files = vec![
        ("clam.sis".to_string(), legacy_common::testfile("clam.sis")),
        (
            "two_langs.sis".into(),
            sis(
                2,
                &[
                    file("!:\\app.exe", vec![&a, &b], 0),
                    file("null", vec![&exe, &exe], 4),
                ],
                false,
                &[3, 8, 1, 2],
            ),
        ),
        (
            "stored.sis".into(),
            // clam.exe after 20 KiB: in the first bytes, its PE header
            // would make clamscan type the package as binary data (with
            // an embedded PE), and not open it as SIS.
            sis(
                1,
                &[file("a", vec![&a], 0), file("exe", vec![&exe], 0)],
                true,
                &[],
            ),
        ),
    ];
    differential(
        &["sis-a", "sis-b"],
        &[("SisA", &a)],
        &with_damaged(files, 24),
        &[
            ("clam.sis", &["Legacy.Hash.ClamExe"]),
            (
                "two_langs.sis",
                &[
                    "Legacy.Hash.SisA",
                    "Legacy.Marker.sis-a",
                    "Legacy.Marker.sis-b",
                ],
            ),
            (
                "stored.sis",
                &[
                    "Legacy.Hash.ClamExe",
                    "Legacy.Hash.SisA",
                    "Legacy.Marker.sis-a",
                ],
            ),
        ],
    );
}

#[test]
fn chm_files_match_clamscan() {
    use chm_common::chm;
    let a = marked("chm-a", 1200);
    let b = marked("chm-b", 3);
    let exe = legacy_common::clam_exe();
    let files = vec![
        ("clam.chm".to_string(), legacy_common::testfile("clam.chm")),
        (
            "mixed.chm".into(),
            chm(&[
                ("/index.html", &b, false),
                ("/a.txt", &a, true),
                ("/exe", &exe, true),
            ]),
        ),
        (
            "stored.chm".into(),
            chm(&[("/exe", &exe, false), ("/b", &b, true)]),
        ),
    ];
    differential(
        &["chm-a", "chm-b"],
        &[("ChmA", &a)],
        &with_damaged(files, 24),
        &[
            ("clam.chm", &["Legacy.Hash.ClamExe"]),
            (
                "mixed.chm",
                &[
                    "Legacy.Hash.ChmA",
                    "Legacy.Hash.ClamExe",
                    "Legacy.Marker.chm-a",
                    "Legacy.Marker.chm-b",
                ],
            ),
            (
                "stored.chm",
                &["Legacy.Hash.ClamExe", "Legacy.Marker.chm-b"],
            ),
        ],
    );
}
