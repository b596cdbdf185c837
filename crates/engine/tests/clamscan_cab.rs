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
use std::path::PathBuf;

use aether_engine::{EngineBuilder, Limits};
use aether_sigs::{LoadOptions, Loader};
use cab::CompressionType;
use cab_common::cabinet;
use common::{aether, clamscan, engine};
use exe_common::stored_zip;
use md5::{Digest, Md5};

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

struct Corpus {
    _dir: tempfile::TempDir,
    db: PathBuf,
    files: Vec<PathBuf>,
}

/// Writes the database and files into a temporary directory.
fn corpus(ndb: &str, hdb: &str, files: &[(&str, Vec<u8>)]) -> Corpus {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db");
    std::fs::create_dir(&db).expect("db dir");
    std::fs::write(db.join("markers.ndb"), ndb).expect("ndb");
    // An empty database file is an error, as in ClamAV.
    if !hdb.is_empty() {
        std::fs::write(db.join("members.hdb"), hdb).expect("hdb");
    }
    let mut paths = Vec::new();
    for (name, data) in files {
        let p = dir.path().join(name);
        std::fs::write(&p, data).expect("file");
        paths.push(p);
    }
    Corpus {
        _dir: dir,
        db,
        files: paths,
    }
}

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
    let mut hdb = String::new();
    for (name, data) in [("ClamExe", &clam_exe), ("MszipMember", &mszip_member)] {
        let _ = writeln!(
            hdb,
            "{}:{}:Cab.Hash.{name}",
            hex(&Md5::digest(data)),
            data.len()
        );
    }
    let c = corpus(
        &ndb,
        &hdb,
        &[
            ("clam.cab", clam_cab),
            ("plain.cab", plain),
            ("nested.cab", nested),
            ("in.zip", in_zip),
            ("zip_in.cab", zip_in_cab),
            ("clean.cab", clean),
        ],
    );
    let want = clamscan(&c.db, &c.files);
    let got = aether(&engine(&c.db), &c.files);
    // clamscan must find what the files were built to hold, or the
    // comparison proves nothing.
    let names = |f: &str| -> Vec<&str> {
        want.get(f)
            .map(|s| s.iter().map(String::as_str).collect())
            .unwrap_or_default()
    };
    assert_eq!(names("clam.cab"), ["Cab.Hash.ClamExe.UNOFFICIAL"]);
    assert_eq!(
        names("plain.cab"),
        [
            "Cab.Hash.ClamExe.UNOFFICIAL",
            "Cab.Hash.MszipMember.UNOFFICIAL",
            "Cab.Marker.mszip.UNOFFICIAL",
            "Cab.Marker.stored.UNOFFICIAL"
        ]
    );
    assert_eq!(names("nested.cab"), ["Cab.Marker.inner.UNOFFICIAL"]);
    assert_eq!(names("in.zip"), ["Cab.Marker.inner.UNOFFICIAL"]);
    assert_eq!(names("zip_in.cab"), ["Cab.Marker.zipped.UNOFFICIAL"]);
    assert!(names("clean.cab").is_empty());
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
    let hdb = format!(
        "{}:{}:Rar.Hash.b\n",
        hex(&Md5::digest(&member_b)),
        member_b.len()
    );
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
    let refs: Vec<(&str, Vec<u8>)> = corpus_files
        .iter()
        .map(|(n, d)| (n.as_str(), d.clone()))
        .collect();
    let c = corpus(&ndb, &hdb, &refs);
    let got = aether(&engine(&c.db), &c.files);
    for (name, _) in &corpus_files {
        let found: Vec<&str> = got
            .get(name)
            .map(|s| s.iter().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            found,
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
    let refs: Vec<(&str, Vec<u8>)> = corpus_files
        .iter()
        .map(|(n, d)| (n.as_str(), d.clone()))
        .collect();
    let c = corpus(&ndb, "", &refs);
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
