//! Truncated and bit-flipped executables: every prefix and thousands of
//! single-bit flips of real and built files parse or fail with an error,
//! never panic, and each call stays fast (parsing reads only headers and
//! tables, under ClamAV's count limits).

mod common;

use std::time::{Duration, Instant};

use aether_exe::{ExeInfo, ImportTable, Layout, fat_arches, resolve};
use aether_sigs::Offset;

/// Everything a scanner would ask of one file.
fn exercise(data: &[u8]) -> bool {
    let offsets = [
        "EP+0", "EP-8,4", "S0+1", "S3+0", "SE1", "SL+5", "EOF-3", "*", "9",
    ];
    let check = |info: &ExeInfo| {
        for o in offsets {
            let p = resolve(
                &Offset::parse(o).unwrap(),
                data.len() as u64,
                Layout::Exe(info),
            );
            let _ = p.fits(16, data.len() as u64);
        }
        let n: usize = info.hashed_sections(data).map(|(_, b)| b.len()).sum();
        assert!(n <= data.len() * info.sections.len().max(1));
        if let Ok(t) = ImportTable::read(data, info) {
            let _ = t.hash();
        }
    };
    match ExeInfo::parse(data) {
        Ok(info) => {
            check(&info);
            true
        }
        Err(aether_exe::ExeError::Universal) => {
            let mut any = false;
            if let Ok(fat) = fat_arches(data) {
                for a in fat.arches {
                    if let Some(Ok(info)) = a.bytes(data).map(ExeInfo::parse) {
                        check(&info);
                        any = true;
                    }
                }
            }
            any
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            false
        }
    }
}

fn samples() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = vec![
        ("pe32".into(), common::plain_pe(false, 1)),
        ("pe32+".into(), common::plain_pe(true, 2)),
        ("odd pe".into(), common::odd_pe(3)),
        ("macho64".into(), common::macho64(4)),
        ("macho ppc".into(), common::macho_ppc(5)),
        ("elf32 be".into(), common::elf32_be(6)),
    ];
    let fat = common::fat(&[(7, &v[3].1.clone()), (18, &v[4].1.clone())]);
    v.push(("universal".into(), fat));
    for p in [
        "/usr/share/clamav-testfiles/clam.exe",
        "/usr/share/clamav-testfiles/clam-aspack.exe",
        "/usr/share/clamav-testfiles/clam-petite.exe",
        "/usr/bin/true",
    ] {
        v.push((
            p.into(),
            std::fs::read(p).unwrap_or_else(|e| panic!("{p}: {e}")),
        ));
    }
    v
}

/// A slow call would mean a parser walked something unbounded; the bound
/// is far above the microseconds a call takes, so load cannot trip it.
const SLOW: Duration = Duration::from_secs(2);

#[test]
fn every_prefix() {
    for (name, data) in samples() {
        assert!(exercise(&data), "{name}: the whole file must parse");
        let mut parsed = 0;
        for len in 0..data.len() {
            let t = Instant::now();
            parsed += usize::from(exercise(&data[..len]));
            assert!(
                t.elapsed() < SLOW,
                "{name}: prefix of {len} bytes took {:?}",
                t.elapsed()
            );
        }
        eprintln!("{name}: {} prefixes, {parsed} parsed", data.len());
    }
}

#[test]
fn bit_flips() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for (name, data) in samples() {
        let mut buf = data.clone();
        let mut parsed = 0;
        for i in 0..4000 {
            // Mostly in the first 1 KiB, where the headers are.
            let span = if i % 4 == 0 {
                buf.len()
            } else {
                buf.len().min(1024)
            };
            let at = (next() % span as u64) as usize;
            let bit = 1u8 << (next() % 8);
            buf[at] ^= bit;
            let t = Instant::now();
            parsed += usize::from(exercise(&buf));
            assert!(
                t.elapsed() < SLOW,
                "{name}: flip {i} took {:?}",
                t.elapsed()
            );
            // Keep some flips, so damage accumulates, and undo most.
            if i % 8 != 0 {
                buf[at] ^= bit;
            }
            if i % 500 == 499 {
                buf.copy_from_slice(&data);
            }
        }
        eprintln!("{name}: 4000 flips, {parsed} parsed");
    }
}

/// Writes the samples as fuzzing seeds when `AETHER_EXE_SEEDS` names a
/// directory (`fuzz_exe/corpus/exe`); does nothing otherwise.
#[test]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("AETHER_EXE_SEEDS") else {
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    for (i, (_, data)) in samples().into_iter().enumerate() {
        std::fs::write(std::path::Path::new(&dir).join(format!("seed{i}")), data).unwrap();
    }
}
