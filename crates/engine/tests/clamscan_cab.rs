//! Cabinets and RAR archives scanned member by member.
//!
//! Cabinets: the engine must report what Debian's clamscan 1.4.6 reports
//! with `--allmatch`, file by file, on clam.cab and on cabinets written by
//! the `cab` crate (stored and MSZIP folders, a cabinet in a cabinet, in a
//! zip, and a zip in a cabinet), with `.ndb` markers that only show once a
//! member is decompressed and `.hdb` hashes of whole members.
//!
//! RAR: Debian's clamscan opens no RAR archive (its unrar library,
//! libclamunrar, is not packaged), so there is nothing to compare with; the
//! engine's detections inside RAR archives (RAR 4 and 5, compressed, solid,
//! inside a zip) are checked against the markers planted in them, and
//! encrypted members against `Heuristics.Encrypted.RAR`.

#[path = "../../formats/tests/cab_common/mod.rs"]
mod cab_common;
mod common;
mod exe_common;

use std::fmt::Write as _;

use aether_engine::{EngineBuilder, Limits};
use aether_sigs::{LoadOptions, Loader};
use cab::CompressionType;
use cab_common::cabinet;
use common::{aether, compare, corpus, engine, hdb_line, hex, names};
use exe_common::stored_zip;

fn marker(tag: &str) -> Vec<u8> {
    format!("<<aether-cab-marker-{tag}>>").into_bytes()
}

/// Text around a marker, long enough that MSZIP compresses it away.
fn text_with(tag: &str, repeat: usize) -> Vec<u8> {
    let mut t = b"filler text that compresses well. ".repeat(repeat);
    t.extend_from_slice(&marker(tag));
    t.extend_from_slice(&b" and some more filler after it. ".repeat(repeat));
    t
}

#[test]
fn cabinets_match_clamscan() {
    let clam_cab =
        std::fs::read("/usr/share/clamav-testfiles/clam.cab").expect("Debian's clamav-testfiles");
    // clam.exe as clam.cab stores it: a hash signature only an extracted
    // member can match.
    let clam_exe = {
        struct Take(Vec<u8>);
        impl aether_formats::Visitor for Take {
            fn member(&mut self, m: &mut aether_formats::Member<'_>) -> aether_formats::Flow {
                let _ = m.extract(&mut self.0);
                aether_formats::Flow::Stop
            }
            fn problem(&mut self, _: aether_formats::Problem) -> aether_formats::Flow {
                aether_formats::Flow::Continue
            }
        }
        let mut t = Take(Vec::new());
        aether_formats::walk(aether_formats::FileType::MsCab, &clam_cab, &mut t).expect("walk");
        t.0
    };
    assert_eq!(clam_exe.len(), 544);

    let mszip_member = text_with("mszip", 300);
    let stored_member = text_with("stored", 2);
    let noise: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let plain = cabinet(&[
        (
            CompressionType::None,
            vec![
                ("stored.txt", stored_member.clone()),
                ("noise.bin", noise.clone()),
            ],
        ),
        (
            CompressionType::MsZip,
            vec![
                ("deep\\mszip.txt", mszip_member.clone()),
                ("exe", clam_exe.clone()),
            ],
        ),
    ]);
    let inner = cabinet(&[(
        CompressionType::MsZip,
        vec![("inner.txt", text_with("inner", 200))],
    )]);
    let nested = cabinet(&[(
        CompressionType::MsZip,
        vec![
            ("inner.cab", inner.clone()),
            ("other.txt", b"nothing here".to_vec()),
        ],
    )]);
    let in_zip = stored_zip(&[("a.cab", &nested), ("b.txt", b"plain")]);
    let zip_in_cab = cabinet(&[(
        CompressionType::MsZip,
        vec![("z.zip", stored_zip(&[("m.txt", &text_with("zipped", 100))]))],
    )]);
    let clean = cabinet(&[(
        CompressionType::MsZip,
        vec![("clean.txt", b"no marker at all ".repeat(500))],
    )]);

    let mut ndb = String::new();
    for tag in ["mszip", "stored", "inner", "zipped"] {
        let _ = writeln!(ndb, "Cab.Marker.{tag}:0:*:{}", hex(&marker(tag)));
    }
    let hdb = [("ClamExe", &clam_exe), ("MszipMember", &mszip_member)]
        .iter()
        .map(|(name, data)| hdb_line(&format!("Cab.Hash.{name}"), data))
        .collect::<String>();
    let (want, got) = compare(
        &[("markers.ndb", ndb.as_str()), ("members.hdb", hdb.as_str())],
        &[
            ("clam.cab", clam_cab),
            ("plain.cab", plain),
            ("nested.cab", nested),
            ("in.zip", in_zip),
            ("zip_in.cab", zip_in_cab),
            ("clean.cab", clean),
        ],
    );
    // clamscan must find what the files were built to hold, or the
    // comparison proves nothing.
    assert_eq!(names(&want, "clam.cab"), ["Cab.Hash.ClamExe.UNOFFICIAL"]);
    assert_eq!(
        names(&want, "plain.cab"),
        [
            "Cab.Hash.ClamExe.UNOFFICIAL",
            "Cab.Hash.MszipMember.UNOFFICIAL",
            "Cab.Marker.mszip.UNOFFICIAL",
            "Cab.Marker.stored.UNOFFICIAL"
        ]
    );
    assert_eq!(names(&want, "nested.cab"), ["Cab.Marker.inner.UNOFFICIAL"]);
    assert_eq!(names(&want, "in.zip"), ["Cab.Marker.inner.UNOFFICIAL"]);
    assert_eq!(names(&want, "zip_in.cab"), ["Cab.Marker.zipped.UNOFFICIAL"]);
    assert!(names(&want, "clean.cab").is_empty());
    assert_eq!(got, want);
}

fn rar(version: rars::ArchiveVersion, solid: bool, files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = rars::Builder::new(version).solid(solid);
    for (name, data) in files {
        b.add_bytes(name.as_bytes().to_vec(), data.clone(), None, None)
            .expect("add");
    }
    b.to_bytes().expect("build")
}

#[test]
fn rar_members_are_scanned() {
    let mut ndb = String::new();
    for tag in ["rar-a", "rar-b"] {
        let _ = writeln!(ndb, "Rar.Marker.{tag}:0:*:{}", hex(&marker(tag)));
    }
    let member_b = text_with("rar-b", 300);
    let hdb = hdb_line("Rar.Hash.b", &member_b);
    let files = [
        ("first.txt", text_with("rar-a", 300)),
        ("nothing.txt", b"nothing to see ".repeat(1000)),
        ("second.txt", member_b.clone()),
    ];
    let mut corpus_files = Vec::new();
    for (tag, v) in [
        ("rar4", rars::ArchiveVersion::Rar29),
        ("rar5", rars::ArchiveVersion::Rar50),
    ] {
        for solid in [false, true] {
            let data = rar(v, solid, &files);
            // Compressed: the markers are not in the archive's own bytes.
            for f in &files[..1] {
                let m = marker("rar-a");
                assert!(!data.windows(m.len()).any(|w| w == m), "{}", f.0);
            }
            let zipped = stored_zip(&[("archive.rar", &data)]);
            corpus_files.push((format!("{tag}-solid{solid}.rar"), data));
            corpus_files.push((format!("{tag}-solid{solid}.zip"), zipped));
        }
    }
    let c = corpus(
        &[("markers.ndb", ndb.as_str()), ("members.hdb", hdb.as_str())],
        &corpus_files,
    );
    let got = aether(&engine(&c.db), &c.files);
    for (name, _) in &corpus_files {
        assert_eq!(
            names(&got, name),
            [
                "Rar.Hash.b.UNOFFICIAL",
                "Rar.Marker.rar-a.UNOFFICIAL",
                "Rar.Marker.rar-b.UNOFFICIAL"
            ],
            "{name}"
        );
    }
}

/// With `--alert-encrypted`, an encrypted RAR member is
/// `Heuristics.Encrypted.RAR` (what clamscan reports with libclamunrar), in
/// RAR 4 and 5, bare and in a zip; without it, nothing.
#[test]
fn encrypted_rar_members_alert() {
    let mut corpus_files = Vec::new();
    for (tag, v) in [
        ("rar4", rars::ArchiveVersion::Rar29),
        ("rar5", rars::ArchiveVersion::Rar50),
    ] {
        let mut b = rars::Builder::new(v).password(Some(b"secret".to_vec()));
        b.add_bytes(b"hidden.txt".to_vec(), text_with("rar-a", 10), None, None)
            .expect("add");
        let data = b.to_bytes().expect("build");
        corpus_files.push((format!("{tag}.zip"), stored_zip(&[("x.rar", &data)])));
        corpus_files.push((format!("{tag}.rar"), data));
    }
    let ndb = format!("Rar.Marker.rar-a:0:*:{}\n", hex(&marker("rar-a")));
    // No hash database: an empty one is an error, as in ClamAV.
    let c = corpus(&[("markers.ndb", ndb.as_str())], &corpus_files);
    let mut loader = Loader::new(LoadOptions::default());
    let mut builder = EngineBuilder::new();
    loader
        .load_path(&c.db, &mut builder)
        .expect("database loads");
    let engine = builder.build().expect("engine builds");
    let limits = Limits {
        all_match: true,
        ..Limits::default()
    };
    for alert in [false, true] {
        let mut scanner = engine.scanner();
        scanner.set_alerts(aether_engine::Alerts {
            encrypted: alert,
            ..Default::default()
        });
        for path in &c.files {
            let file = std::fs::File::open(path).expect("open");
            let outcome = scanner.scan_file(&file, &limits).expect("scan");
            let names: Vec<String> = outcome.detections.into_iter().map(|d| d.name).collect();
            let want: &[&str] = if alert {
                &["Heuristics.Encrypted.RAR"]
            } else {
                &[]
            };
            assert_eq!(names, want, "{} alert={alert}", path.display());
        }
    }
}
