//! Each unpacker on Debian's clamav-testfiles: the image is the very file
//! ClamAV 1.4.6 rebuilds (its MD5, as `clamscan --debug --leave-temps`
//! reports it), and it holds the original program, clam.exe. Cut and
//! bit-flipped copies end in an error or an image, never a panic or a hang.

use std::path::Path;

use aether_unpack::{Packer, UnpackLimits, unpack};
use md5::{Digest, Md5};

const TESTFILES: &str = "/usr/share/clamav-testfiles";

fn read(name: &str) -> Vec<u8> {
    let path = Path::new(TESTFILES).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The file clamscan 1.4.6 writes for each packed test file, and the
/// packer. `None`: ClamAV does not unpack it (clam-fsg.exe is detected
/// through the clam.exe appended to it, not by FSG unpacking).
/// clam.exe is in the image raw, or as a zip member (the packed programs
/// of some test files are zip self-extractors).
fn holds_clam(image: &[u8], clam: &[u8]) -> bool {
    image.windows(clam.len()).any(|w| w == clam)
        || image
            .windows(38)
            .any(|w| w.starts_with(b"PK\x03\x04") && &w[30..38] == b"clam.exe")
}

type Rebuilt = Option<(Packer, &'static str, usize)>;

const REBUILT: &[(&str, Rebuilt)] = &[
    (
        "clam-upx.exe",
        Some((Packer::Upx, "3b03bc19b1f39587a0650c7b6fe35d38", 20480)),
    ),
    (
        "clam-wwpack.exe",
        Some((Packer::WwPack, "7b8cd3dd6a198ec191afce0206665d2d", 20480)),
    ),
    (
        "clam-yc.exe",
        Some((Packer::Yc, "8822fca1f7b0cb5506f15f8088956197", 3072)),
    ),
    (
        "clam-petite.exe",
        Some((Packer::Petite, "8a2bf11929515746f3df244a4ac91c7c", 6144)),
    ),
    (
        "clam-aspack.exe",
        Some((Packer::Aspack, "4a4477a6d2d866b38806e9bfa5a6bb2e", 17408)),
    ),
    (
        "clam-pespin.exe",
        Some((Packer::PeSpin, "ea58113cd88ec4715020f5189529d35b", 6656)),
    ),
    (
        "clam-mew.exe",
        Some((Packer::Mew, "eb55c7b07f6c22b7c09ea52a8eeaddec", 21504)),
    ),
    (
        "clam-upack.exe",
        Some((Packer::Upack, "de4f18d10798acf90ab81dc899dffb14", 17408)),
    ),
    ("clam-fsg.exe", None),
    ("clam.exe", None),
];

#[test]
fn images_are_clamav_rebuilt_files() {
    let clam = read("clam.exe");
    for (name, expected) in REBUILT {
        let data = read(name);
        let got = unpack(&data, &UnpackLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        match (expected, got) {
            (None, None) => {}
            (Some((packer, md5, len)), Some(u)) => {
                assert_eq!(u.packer, *packer, "{name}");
                assert_eq!(u.image.len(), *len, "{name}");
                assert_eq!(md5_hex(&u.image), *md5, "{name}");
                // (clam-yc.exe's image is UPX-packed: see yc_then_upx.)
                assert!(
                    *packer == Packer::Yc || holds_clam(&u.image, &clam),
                    "{name}: clam.exe is not in the image"
                );
            }
            (e, g) => panic!("{name}: expected {e:?}, got {:?}", g.map(|u| u.packer)),
        }
    }
}

#[test]
fn probe_admits_every_packed_file() {
    for (name, expected) in REBUILT {
        let data = read(name);
        if expected.is_some() {
            let head = &data[..data.len().min(aether_unpack::PROBE_LEN)];
            assert!(aether_unpack::probe(head, data.len() as u64), "{name}");
            // From a head that ends before the headers: unsure, so yes.
            assert!(
                aether_unpack::probe(&data[..0x40], data.len() as u64),
                "{name}"
            );
        }
    }
    // Not a PE, and all of it seen: no; nor clam.exe, which is not packed.
    assert!(!aether_unpack::probe(b"MZ not a PE at all", 18));
    let clam = read("clam.exe");
    assert!(!aether_unpack::probe(&clam, clam.len() as u64));
}

#[test]
fn limits_are_enforced() {
    let data = read("clam-upx.exe");
    let tight = UnpackLimits {
        max_size: 4096,
        max_ratio: 0,
    };
    let err = unpack(&data, &tight).expect_err("20 KiB of output passes a 4 KiB limit");
    assert_eq!(err.packer(), Packer::Upx);
    assert!(err.to_string().contains("4096"), "{err}");
    let open = UnpackLimits {
        max_size: 0,
        max_ratio: 0,
    };
    assert!(unpack(&data, &open).is_ok_and(|u| u.is_some()));
}

/// Every `step`th cut and flips of every `step`th byte: no panic, and any
/// image is bounded.
fn hostile(name: &str, step: usize) {
    let data = read(name);
    let limits = UnpackLimits::default();
    let cap = 64 << 20;
    let original = unpack(&data, &limits).ok().flatten().map(|u| u.image);
    let mut errors = 0;
    let mut changed = 0;
    for len in (0..data.len()).step_by(step) {
        match unpack(&data[..len], &limits) {
            Err(e) => {
                errors += 1;
                assert!(!e.to_string().is_empty());
            }
            Ok(Some(u)) => {
                assert!(u.image.len() < cap);
                if Some(&u.image) != original.as_ref() {
                    changed += 1;
                }
            }
            Ok(None) => {}
        }
    }
    for i in (0..data.len()).step_by(step) {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut d = data.clone();
            d[i] ^= mask;
            match unpack(&d, &limits) {
                Err(_) => errors += 1,
                Ok(Some(u)) => {
                    assert!(u.image.len() < cap);
                    if Some(&u.image) != original.as_ref() {
                        changed += 1;
                    }
                }
                Ok(None) => {}
            }
        }
    }
    // Damage must show: many copies fail, many others unpack differently.
    assert!(errors > 0, "{name}: no damaged copy failed");
    assert!(changed > 0, "{name}: no damaged copy unpacked differently");
}

#[test]
fn upx_damaged_copies() {
    hostile("clam-upx.exe", 1);
}

#[test]
fn yc_then_upx() {
    // clam-yc.exe holds a UPX-packed program: ClamAV unpacks one layer per
    // level, each image scanned as a file of its own.
    let first = unpack(&read("clam-yc.exe"), &UnpackLimits::default())
        .expect("yC")
        .expect("yC recognised");
    let second = unpack(&first.image, &UnpackLimits::default())
        .expect("UPX")
        .expect("UPX recognised");
    assert_eq!(second.packer, Packer::Upx);
    assert_eq!(md5_hex(&second.image), "3b03bc19b1f39587a0650c7b6fe35d38");
}

#[test]
fn yc_damaged_copies() {
    hostile("clam-yc.exe", 1);
}

#[test]
fn petite_damaged_copies() {
    hostile("clam-petite.exe", 1);
}

#[test]
fn aspack_damaged_copies() {
    hostile("clam-aspack.exe", 1);
}

#[test]
fn pespin_damaged_copies() {
    hostile("clam-pespin.exe", 1);
}

#[test]
fn mew_damaged_copies() {
    hostile("clam-mew.exe", 1);
}

#[test]
fn upack_damaged_copies() {
    hostile("clam-upack.exe", 1);
}

#[test]
fn wwpack_damaged_copies() {
    hostile("clam-wwpack.exe", 1);
}
