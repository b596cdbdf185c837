//! Files inside files: self-extracting archives, installers and executables
//! found where ClamAV's raw scan finds them. The engine must report what
//! Debian's clamscan 1.4.6 reports with `--allmatch`, file by file, with an
//! `.hdb` of clam.exe's MD5 (so a detection means clam.exe was extracted)
//! and `.ndb` markers, on Debian's installer test files, on files built
//! here (archives appended to ELF and PE files, an executable in an
//! executable, an SFX inside a zip, NSIS installers from makensis), and on
//! cut and bit-flipped copies of them.

mod common;
mod exe_common;

use std::process::Command;

use common::{Rng, Verdicts, compare, hdb_line, hex};
use exe_common::stored_zip;

const TESTFILES: &str = "/usr/share/clamav-testfiles";

fn testfile(name: &str) -> Vec<u8> {
    std::fs::read(format!("{TESTFILES}/{name}")).expect("Debian's clamav-testfiles")
}

/// Debian's test files of installers and self-extracting archives.
const DEBIAN: [&str; 7] = [
    "clam-nsis.exe",
    "clam.ea05.exe",
    "clam.ea06.exe",
    "clam_IScab_ext.exe",
    "clam_IScab_int.exe",
    "clam_ISmsi_ext.exe",
    "clam_ISmsi_int.exe",
];

const MARKER: &[u8] = b"<<aether-embedded-marker>>";

/// A minimal ELF header (64-bit, little-endian) and some code-like bytes.
fn elf_stub() -> Vec<u8> {
    let mut e = b"\x7fELF\x02\x01\x01\x00".to_vec();
    e.resize(64, 0);
    e.extend_from_slice(&[0x90; 300]);
    e
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Builds an NSIS installer of `files` with Debian's makensis.
fn makensis(dir: &std::path::Path, compressor: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let work = dir.join(format!("nsis-{}", compressor.replace(['/', ' '], "_")));
    std::fs::create_dir_all(&work).expect("dir");
    let mut script = format!(
        "SetCompressor {compressor}\nOutFile \"out.exe\"\nInstallDir \"$TEMP\\x\"\nSection\nSetOutPath \"$INSTDIR\"\n"
    );
    for (name, data) in files {
        std::fs::write(work.join(name), data).expect("file");
        script.push_str(&format!("File \"{name}\"\n"));
    }
    script.push_str("SectionEnd\n");
    std::fs::write(work.join("x.nsi"), script).expect("script");
    let ok = Command::new("makensis")
        .arg("-V1")
        .arg("x.nsi")
        .current_dir(&work)
        .status()
        .expect("makensis from Debian's nsis package")
        .success();
    assert!(ok, "makensis {compressor}");
    std::fs::read(work.join("out.exe")).expect("installer")
}

/// The built files: archives after stubs, in several nestings.
fn built(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let clam = testfile("clam.exe");
    let zip = testfile("clam.zip");
    let cab = testfile("clam.cab");
    let sz = testfile("clam.7z");
    let arj = testfile("clam.arj");
    let elf = elf_stub();
    let marked = stored_zip(&[("m.txt", MARKER), ("clam.exe", &clam)]);
    let mut v: Vec<(String, Vec<u8>)> = vec![
        ("elf_zip".into(), cat(&[&elf, &zip])),
        ("pe_zip".into(), cat(&[&clam, &zip])),
        ("elf_stored_zip".into(), cat(&[&elf, &marked])),
        ("pe_cab".into(), cat(&[&clam, &cab])),
        ("elf_cab".into(), cat(&[&elf, &cab, b"trailing data"])),
        ("pe_7z".into(), cat(&[&clam, &sz])),
        ("bin_7z".into(), cat(&[b"\x00\x01\x02 some data ", &sz])),
        ("pe_arj".into(), cat(&[&clam, &arj])),
        ("pe_pe".into(), cat(&[&clam, &clam])),
        ("elf_pe".into(), cat(&[&elf, &clam])),
        (
            "zip_of_sfx".into(),
            stored_zip(&[("sfx.exe", &cat(&[&clam, &zip]))]),
        ),
        ("pe_two_zips".into(), cat(&[&clam, &zip, &marked])),
        ("text_zip".into(), cat(&[b"hello, some text\n", &marked])),
    ];
    let files: [(&str, &[u8]); 1] = [("clam.exe", &clam)];
    for comp in [
        "zlib",
        "lzma",
        "/SOLID lzma",
        "/SOLID zlib",
        "bzip2",
        "/SOLID bzip2",
    ] {
        v.push((
            format!("nsis_{}", comp.replace(['/', ' '], "")),
            makensis(dir, comp, &files),
        ));
    }
    let mut rng = Rng(7);
    let noise = rng.bytes(100_000);
    v.push((
        "nsis_SOLIDzlib_big".into(),
        makensis(
            dir,
            "/SOLID zlib",
            &[("a.exe", &clam), ("noise.bin", &noise)],
        ),
    ));
    v
}

/// Scans `files` with clamscan and the engine, for clam.exe's hash, the
/// scripts of Debian's AutoIt test files as clamscan writes them out (EA05
/// as stored, EA06 decompiled) and the marker: (clamscan's verdicts, the
/// engine's).
fn scanned(files: &[(String, Vec<u8>)]) -> (Verdicts, Verdicts) {
    let hdb = hdb_line("ClamAV-Test-File", &testfile("clam.exe"))
        + "144d97bc59d6944c6cf31e3fca78f432:22502:AutoIt.Script.EA05\n\
           8903cae272bf36a778c2f361ba282d42:11960:AutoIt.Script.EA06\n";
    let ndb = format!("Embedded.Marker:0:*:{}\n", hex(MARKER));
    compare(&[("t.hdb", hdb.as_str()), ("m.ndb", ndb.as_str())], files)
}

#[test]
fn installers_and_sfx_match_clamscan() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut files: Vec<(String, Vec<u8>)> = DEBIAN
        .iter()
        .map(|n| (n.to_string(), testfile(n)))
        .collect();
    files.extend(built(work.path()));
    let (want, got) = scanned(&files);
    // clamscan must find what the files were built to hold, or the
    // comparison proves nothing.
    for name in DEBIAN.iter().copied().chain([
        "elf_zip",
        "pe_cab",
        "pe_7z",
        "nsis_lzma",
        "nsis_bzip2",
        "nsis_SOLIDbzip2",
    ]) {
        assert!(want.contains_key(name), "clamscan found nothing in {name}");
    }
    for (name, script) in [("clam.ea05.exe", "EA05"), ("clam.ea06.exe", "EA06")] {
        let found = want.get(name).cloned().unwrap_or_default();
        assert!(
            found.contains(&format!("AutoIt.Script.{script}.UNOFFICIAL")),
            "{name}: {found:?}"
        );
    }
    assert_eq!(got, want);
}

#[test]
fn cut_and_flipped_copies_match_clamscan() {
    let work = tempfile::tempdir().expect("tempdir");
    let built = built(work.path());
    let mut rng = Rng(0x5eed);
    let mut variants = Vec::new();
    let debian: Vec<(String, Vec<u8>)> =
        ["clam-nsis.exe", "clam_ISmsi_int.exe", "clam_IScab_int.exe"]
            .iter()
            .map(|n| (n.to_string(), testfile(n)))
            .collect();
    for (name, data) in built.iter().chain(debian.iter()) {
        for i in 0..3 {
            let cut = rng.range(1, data.len() as u64 - 1) as usize;
            variants.push((format!("{name}.cut{i}"), data[..cut].to_vec()));
            let mut f = data.clone();
            for _ in 0..4 {
                let at = rng.below(f.len() as u64) as usize;
                f[at] ^= 1 << rng.below(8);
            }
            variants.push((format!("{name}.flip{i}"), f));
        }
    }
    let (want, got) = scanned(&variants);
    let mut differ = Vec::new();
    for (name, _) in &variants {
        if want.get(name) != got.get(name) {
            differ.push(format!(
                "{name}: clamscan {:?}, aether {:?}",
                want.get(name),
                got.get(name)
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
