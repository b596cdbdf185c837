//! NSIS installers: Debian's clam-nsis.exe and installers built here with
//! Debian's makensis (zlib, bzip2, LZMA; solid and not), read as ClamAV's
//! nulsft.c reads them.

use std::process::Command;

use aether_formats::{Content, FileType, detect, is_container};
use legacy_common::{testfile, walked_ok as collect};

mod legacy_common;

/// The NSIS data an installer holds, as the embedded-file search finds it.
fn nsis_data(exe: &[u8]) -> Vec<u8> {
    let c = collect(FileType::Pe, exe);
    c.members
        .into_iter()
        .map(|(_, d)| d)
        .find(|d| detect(d) == FileType::Nulsft)
        .expect("NSIS data found in the installer")
}

/// Every file below `data`, itself first, as the scanner would open them.
fn tree(data: &[u8], depth: u32, out: &mut Vec<Vec<u8>>) {
    out.push(data.to_vec());
    let ty = detect(data);
    if depth == 0 || !is_container(ty) {
        return;
    }
    let c = collect(ty, data);
    for ((_, m), content) in c.members.into_iter().zip(c.contents) {
        if content == Content::File {
            tree(&m, depth - 1, out);
        } else {
            out.push(m);
        }
    }
}

fn reaches(data: &[u8], wanted: &[u8]) -> bool {
    let mut all = Vec::new();
    tree(data, 5, &mut all);
    all.iter().any(|f| f == wanted)
}

/// Builds an installer of `files` with makensis; `None` without makensis.
fn makensis(compressor: &str, files: &[(&str, Vec<u8>)]) -> Option<Vec<u8>> {
    Command::new("makensis").arg("-VERSION").output().ok()?;
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("aether-nsis-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let mut script = format!(
        "SetCompressor {compressor}\nOutFile \"out.exe\"\nInstallDir \"$TEMP\\x\"\nSection\nSetOutPath \"$INSTDIR\"\n"
    );
    for (name, data) in files {
        std::fs::write(dir.join(name), data).ok()?;
        script.push_str(&format!("File \"{name}\"\n"));
    }
    script.push_str("SectionEnd\n");
    std::fs::write(dir.join("x.nsi"), script).ok()?;
    let ok = Command::new("makensis")
        .arg("-V1")
        .arg("x.nsi")
        .current_dir(&dir)
        .status()
        .ok()?
        .success();
    let out = std::fs::read(dir.join("out.exe")).ok();
    let _ = std::fs::remove_dir_all(&dir);
    ok.then_some(out).flatten()
}

fn require(v: Option<Vec<u8>>) -> Vec<u8> {
    v.expect("makensis from Debian's nsis package")
}

#[test]
fn debian_installer_holds_clam_exe() {
    let exe = testfile("clam-nsis.exe");
    let clam = testfile("clam.exe");
    let data = nsis_data(&exe);
    let c = collect(FileType::Nulsft, &data);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    // The script header first, scanned raw, then the files.
    assert_eq!(c.members[0].0, "headers");
    assert_eq!(c.contents[0], Content::Raw);
    assert!(c.contents[1..].iter().all(|&k| k == Content::File));
    assert!(reaches(&exe, &clam));
}

#[test]
fn built_installers() {
    let clam = testfile("clam.exe");
    let files = [("clam.exe", clam.clone())];
    for comp in ["zlib", "lzma", "/SOLID lzma", "bzip2", "/SOLID bzip2"] {
        let exe = require(makensis(comp, &files));
        assert!(reaches(&exe, &clam), "{comp}");
        let c = collect(FileType::Nulsft, &nsis_data(&exe));
        assert!(c.problems.is_empty(), "{comp}: {:?}", c.problems);
    }
}

#[test]
fn bzip2_over_several_blocks() {
    // More than one 900 kB block, long runs (bzip2's run-length stage) and
    // noise, in a solid and a non-solid installer.
    let clam = testfile("clam.exe");
    let mut big = Vec::new();
    let mut x = 0x1234_5678u32;
    for i in 0..2_200_000u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        big.push(if (i / 1000) % 3 == 0 {
            b'a'
        } else {
            (x % 7) as u8 + b'0'
        });
    }
    for comp in ["bzip2", "/SOLID bzip2"] {
        let exe = require(makensis(
            comp,
            &[("big.bin", big.clone()), ("clam.exe", clam.clone())],
        ));
        let mut all = Vec::new();
        tree(&exe, 5, &mut all);
        assert!(all.contains(&big), "{comp}: big.bin");
        assert!(all.contains(&clam), "{comp}: clam.exe");
    }
}

#[test]
fn solid_zlib_stops_where_clamav_stops() {
    // ClamAV stops once NSIS's inflate has consumed all input, which it
    // decodes up to 32 KiB ahead: a small solid installer gives its header
    // only; in a large one the files before the last 32 KiB are extracted.
    let clam = testfile("clam.exe");
    let small = require(makensis("/SOLID zlib", &[("clam.exe", clam.clone())]));
    let c = collect(FileType::Nulsft, &nsis_data(&small));
    assert_eq!(c.members.len(), 1);
    let mut noise = Vec::new();
    let mut x = 0x1234_5678u32;
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.push(x as u8);
    }
    let large = require(makensis(
        "/SOLID zlib",
        &[("a.exe", clam.clone()), ("noise.bin", noise)],
    ));
    assert!(reaches(&large, &clam));
}

#[test]
fn cut_and_flipped_installers_do_not_panic() {
    let clam = testfile("clam.exe");
    let mut inputs = vec![testfile("clam-nsis.exe")];
    for comp in ["zlib", "/SOLID lzma", "bzip2", "/SOLID bzip2"] {
        inputs.push(require(makensis(comp, &[("clam.exe", clam.clone())])));
    }
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for exe in inputs {
        let data = nsis_data(&exe);
        for cut in [data.len() - 1, data.len() / 2, 40, 30, 29, 5] {
            let _ = collect(FileType::Nulsft, &data[..cut.min(data.len())]);
        }
        for _ in 0..30 {
            let mut d = data.clone();
            for _ in 0..8 {
                let at = (next() % d.len() as u64) as usize;
                d[at] ^= 1 << (next() % 8);
            }
            let mut all = Vec::new();
            tree(&d, 3, &mut all);
        }
    }
}
