//! Compiled AutoIt scripts: Debian's EA05 and EA06 test executables give
//! their script and the file they install (clam.exe), decrypted and
//! decompressed as ClamAV's autoit.c does.

use aether_formats::{FileType, detect};

mod legacy_common;

use legacy_common::{testfile, walked_ok as collect};

/// The AutoIt data in an executable, as the embedded-file search finds it.
fn autoit_data(exe: &[u8]) -> Vec<u8> {
    collect(FileType::Pe, exe)
        .members
        .into_iter()
        .map(|(_, d)| d)
        .find(|d| detect(d) == FileType::AutoIt)
        .expect("AutoIt data in the executable")
}

#[test]
fn ea05_gives_script_and_file() {
    let data = autoit_data(&testfile("clam.ea05.exe"));
    let c = collect(FileType::AutoIt, &data);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert_eq!(c.members.len(), 2);
    // The script: UTF-16 text of 0x57e6 bytes, as ClamAV writes it.
    let script = &c.members[0].1;
    assert_eq!(script.len(), 0x57e6);
    assert_eq!(&script[..2], b"\xff\xfe");
    assert_eq!(c.members[1].1, testfile("clam.exe"));
}

#[test]
fn ea06_gives_decompiled_script_and_file() {
    let data = autoit_data(&testfile("clam.ea06.exe"));
    let c = collect(FileType::AutoIt, &data);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert_eq!(c.members.len(), 2);
    let script = String::from_utf8_lossy(&c.members[0].1).into_owned();
    // 331 lines, as ClamAV counts them, of keywords and functions.
    assert_eq!(script.matches('\n').count(), 331);
    assert!(
        script.contains("FILEINSTALL"),
        "{}",
        &script[..200.min(script.len())]
    );
    assert_eq!(c.members[1].1, testfile("clam.exe"));
}

#[test]
fn cut_and_flipped_scripts_do_not_panic() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for name in ["clam.ea05.exe", "clam.ea06.exe"] {
        let data = autoit_data(&testfile(name));
        for _ in 0..20 {
            let cut = (next() % data.len() as u64) as usize;
            let _ = collect(FileType::AutoIt, &data[..cut]);
            let mut d = data.clone();
            for _ in 0..6 {
                let at = 24 + (next() % (d.len() as u64 - 24)) as usize;
                d[at] ^= 1 << (next() % 8);
            }
            let _ = collect(FileType::AutoIt, &d);
        }
    }
}
