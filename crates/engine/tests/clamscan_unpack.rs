//! Packed executables against Debian's clamscan 1.4.6: the image ClamAV's
//! unpackers rebuild is scanned as a member, so an `.hdb` of clam.exe (found
//! inside the rebuilt file), an `.hdb` of the rebuilt file itself and an
//! `.ndb` body signature of clam.exe's bytes give identical detections with
//! `--allmatch`, for the packed test files and for cut and bit-flipped
//! copies of them.

mod common;
#[path = "../../unpack/tests/upx_common/mod.rs"]
mod upx_common;

use std::path::{Path, PathBuf};

use common::{Rng, aether, clamscan, engine};

const TESTFILES: &str = "/usr/share/clamav-testfiles";

/// Packed test files whose packer aether undoes (or, clam-fsg.exe, that
/// ClamAV detects without unpacking), and clam.exe itself.
const FILES: &[&str] = &[
    "clam-upx.exe",
    "clam-wwpack.exe",
    "clam-yc.exe",
    "clam-petite.exe",
    "clam-aspack.exe",
    "clam-pespin.exe",
    "clam-mew.exe",
    "clam-upack.exe",
    "clam-fsg.exe",
    "clam.exe",
];

/// The rebuilt files ClamAV scans (MD5, size), as `--debug` reports them.
const REBUILT: &[(&str, &str, u64)] = &[
    ("clam-upx.exe", "3b03bc19b1f39587a0650c7b6fe35d38", 20480),
    ("clam-wwpack.exe", "7b8cd3dd6a198ec191afce0206665d2d", 20480),
    ("clam-yc.exe", "8822fca1f7b0cb5506f15f8088956197", 3072),
    ("clam-petite.exe", "8a2bf11929515746f3df244a4ac91c7c", 6144),
    ("clam-aspack.exe", "4a4477a6d2d866b38806e9bfa5a6bb2e", 17408),
    ("clam-pespin.exe", "ea58113cd88ec4715020f5189529d35b", 6656),
    ("clam-mew.exe", "eb55c7b07f6c22b7c09ea52a8eeaddec", 21504),
    ("clam-upack.exe", "de4f18d10798acf90ab81dc899dffb14", 17408),
];

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// The database: clam.exe's MD5, each rebuilt file's MD5, and clam.exe's
/// bytes as a body signature.
fn database(dir: &Path) -> PathBuf {
    let clam = std::fs::read(Path::new(TESTFILES).join("clam.exe")).expect("clam.exe");
    let db = dir.join("db");
    std::fs::create_dir_all(&db).expect("db dir");
    let md5 = {
        use md5::{Digest, Md5};
        hex(&Md5::digest(&clam))
    };
    let mut hdb = format!("{md5}:{}:Clam.Original\n", clam.len());
    for (file, sum, size) in REBUILT {
        hdb.push_str(&format!("{sum}:{size}:Rebuilt.{file}\n"));
    }
    std::fs::write(db.join("t.hdb"), hdb).expect("write hdb");
    std::fs::write(db.join("t.ndb"), format!("Clam.Body:0:*:{}\n", hex(&clam))).expect("ndb");
    db
}

fn compare(db: &Path, files: &[PathBuf]) -> Vec<String> {
    let e = engine(db);
    let ours = aether(&e, files);
    let theirs = clamscan(db, files);
    let mut diffs = Vec::new();
    for f in files {
        let name = common::file_name(f);
        let (a, c) = (ours.get(&name), theirs.get(&name));
        if a != c {
            diffs.push(format!("{name}: aether {a:?}, clamscan {c:?}"));
        }
    }
    diffs
}

#[test]
fn packed_test_files_as_clamscan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path());
    let files: Vec<PathBuf> = FILES.iter().map(|f| Path::new(TESTFILES).join(f)).collect();
    let e = engine(&db);
    let ours = aether(&e, &files);
    // Not vacuous: the unpacked image is what is detected.
    let upx = ours.get("clam-upx.exe").expect("clam-upx.exe detected");
    assert!(upx.contains("Rebuilt.clam-upx.exe.UNOFFICIAL"), "{upx:?}");
    assert!(upx.contains("Clam.Original.UNOFFICIAL"), "{upx:?}");
    assert!(upx.contains("Clam.Body.UNOFFICIAL"), "{upx:?}");
    for (file, _, _) in REBUILT {
        let found = ours.get(*file).cloned().unwrap_or_default();
        assert!(
            found.contains(&format!("Rebuilt.{file}.UNOFFICIAL")),
            "{file}: {found:?}"
        );
    }
    assert_eq!(compare(&db, &files), Vec::<String>::new());
}

/// UPX files built here, one per method, and FSG 2.0, 1.33 and 1.31 files, each holding clam.exe and a
/// marker in its program: clamscan finds the marker (an `.ndb` signature)
/// and the image aether rebuilds (its MD5 in an `.hdb`) only if both
/// unpack the same bytes.
fn built(dir: &Path) -> Vec<(PathBuf, String, usize)> {
    let clam = std::fs::read(Path::new(TESTFILES).join("clam.exe")).expect("clam.exe");
    let mut files: Vec<(String, Vec<u8>)> = upx_common::METHODS
        .iter()
        .map(|&m| {
            // A program of its own per method: an .hdb keeps one name per
            // hash in clamscan.
            let marker = format!("AETHER-UPX-MARKER-{}", m.name());
            let code = upx_common::code(&[&clam, marker.as_bytes()]);
            (m.name().to_string(), upx_common::packed(m, &code))
        })
        .collect();
    let code = upx_common::code(&[&clam, b"AETHER-UPX-MARKER-fsg"]);
    files.push(("fsg".to_string(), upx_common::fsg_packed(&code)));
    let a = upx_common::code(&[&clam, b"AETHER-UPX-MARKER-fsg133"]);
    let b = upx_common::code(&[b"a second section"]);
    files.push(("fsg133".to_string(), upx_common::fsg133_packed(&[&a, &b])));
    let a = upx_common::code(&[&clam, b"AETHER-UPX-MARKER-fsg131"]);
    files.push(("fsg131".to_string(), upx_common::fsg131_packed(&[&a, &b])));
    files
        .into_iter()
        .map(|(name, file)| {
            let image = aether_unpack::unpack(&file, &aether_unpack::UnpackLimits::default())
                .expect("unpacks")
                .expect("recognised")
                .image;
            let md5 = {
                use md5::{Digest, Md5};
                hex(&Md5::digest(&image))
            };
            let p = dir.join(format!("built-{name}.exe"));
            std::fs::write(&p, &file).expect("write");
            (p, md5, image.len())
        })
        .collect()
}

#[test]
fn built_upx_files_as_clamscan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path());
    let built = built(dir.path());
    let mut hdb = std::fs::read_to_string(db.join("t.hdb")).expect("hdb");
    for (p, md5, len) in &built {
        hdb.push_str(&format!("{md5}:{len}:Rebuilt.{}\n", common::file_name(p)));
    }
    std::fs::write(db.join("t.hdb"), hdb).expect("hdb");
    std::fs::write(
        db.join("marker.ndb"),
        format!("Upx.Marker:0:*:{}\n", hex(b"AETHER-UPX-MARKER")),
    )
    .expect("ndb");
    let files: Vec<PathBuf> = built.iter().map(|(p, _, _)| p.clone()).collect();
    let e = engine(&db);
    let ours = aether(&e, &files);
    for f in &files {
        let name = common::file_name(f);
        let found = ours.get(&name).cloned().unwrap_or_default();
        for sig in ["Upx.Marker.UNOFFICIAL", "Clam.Body.UNOFFICIAL"] {
            assert!(found.contains(sig), "{name}: {found:?}");
        }
        assert!(
            found.contains(&format!("Rebuilt.{name}.UNOFFICIAL")),
            "{name}: {found:?}"
        );
    }
    assert_eq!(compare(&db, &files), Vec::<String>::new());
}

#[test]
fn damaged_copies_as_clamscan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path());
    let mut files = Vec::new();
    let mut rng = Rng(0x5eed_0f0a_c4ed);
    let mut inputs: Vec<(String, Vec<u8>)> = [
        "clam-upx.exe",
        "clam-wwpack.exe",
        "clam-yc.exe",
        "clam-petite.exe",
        "clam-aspack.exe",
        "clam-pespin.exe",
        "clam-mew.exe",
        "clam-upack.exe",
    ]
    .iter()
    .map(|n| {
        let data = std::fs::read(Path::new(TESTFILES).join(n)).expect("test file");
        (n.to_string(), data)
    })
    .collect();
    for (p, _, _) in built(dir.path()) {
        inputs.push((common::file_name(&p), std::fs::read(&p).expect("built")));
    }
    for (name, data) in &inputs {
        // Cuts through the headers, the compressed data and the stub.
        for i in 0..24u64 {
            let len = (0x100 + i * (data.len() as u64 - 0x100) / 24) as usize;
            let p = dir.path().join(format!("{name}.cut{i}"));
            std::fs::write(&p, &data[..len]).expect("write");
            files.push(p);
        }
        // Bit flips, most of them in UPX1 (from 0x400 in every file here).
        for i in 0..50 {
            let mut d = data.clone();
            let at = if i % 4 == 0 {
                rng.below(data.len() as u64)
            } else {
                rng.range(0x400, data.len() as u64 - 1)
            } as usize;
            d[at] ^= 1 << rng.below(8);
            let p = dir.path().join(format!("{name}.flip{i}"));
            std::fs::write(&p, &d).expect("write");
            files.push(p);
        }
    }
    let diffs = compare(&db, &files);
    assert_eq!(diffs, Vec::<String>::new());
}
