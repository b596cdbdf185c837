//! Packed executables against Debian's clamscan 1.4.6: the image ClamAV's
//! unpackers rebuild is scanned as a member, so an `.hdb` of clam.exe (found
//! inside the rebuilt file), an `.hdb` of the rebuilt file itself and an
//! `.ndb` body signature of clam.exe's bytes give identical detections with
//! `--allmatch`, for the packed test files and for cut and bit-flipped
//! copies of them.

mod common;

use std::path::{Path, PathBuf};

use common::{Rng, aether, clamscan, engine};

const TESTFILES: &str = "/usr/share/clamav-testfiles";

/// Packed test files whose packer aether undoes (or, clam-fsg.exe, that
/// ClamAV detects without unpacking), and clam.exe itself.
const FILES: &[&str] = &["clam-upx.exe", "clam-fsg.exe", "clam.exe"];

/// The rebuilt files ClamAV scans (MD5, size), as `--debug` reports them.
const REBUILT: &[(&str, &str, u64)] =
    &[("clam-upx.exe", "3b03bc19b1f39587a0650c7b6fe35d38", 20480)];

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
    assert_eq!(compare(&db, &files), Vec::<String>::new());
}

#[test]
fn damaged_copies_as_clamscan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path());
    let mut files = Vec::new();
    let mut rng = Rng(0x5eed_0f_0a_c4ed);
    for name in ["clam-upx.exe"] {
        let data = std::fs::read(Path::new(TESTFILES).join(name)).expect("test file");
        // Cuts through the headers, the compressed data and the resources.
        for (i, len) in [
            0x100, 0x1f8, 0x300, 0x400, 0x500, 0x700, 0x900, 0xa00, 0xb00,
        ]
        .into_iter()
        .enumerate()
        {
            let p = dir.path().join(format!("{name}.cut{i}"));
            std::fs::write(&p, &data[..len.min(data.len())]).expect("write");
            files.push(p);
        }
        // Bit flips, most of them in the compressed data.
        for i in 0..40 {
            let mut d = data.clone();
            let at = if i % 4 == 0 {
                rng.below(data.len() as u64)
            } else {
                rng.range(0x400, 0x9ff)
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
