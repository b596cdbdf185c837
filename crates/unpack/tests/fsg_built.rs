//! FSG 2.0 files built here (upx_common::fsg_packed, with an FSG encoder
//! written from the decompressor): each unpacks to ClamAV's rebuild of its
//! program; damaged copies end in an error or another image.

mod upx_common;

use aether_unpack::{Packer, UnpackLimits, unpack};

#[test]
fn fsg_unpacks_to_the_program() {
    let clam = std::fs::read("/usr/share/clamav-testfiles/clam.exe").expect("clam.exe");
    let code = upx_common::code(&[&clam, b"AETHER-FSG-MARKER"]);
    let file = upx_common::fsg_packed(&code);
    let u = unpack(&file, &UnpackLimits::default())
        .expect("unpacks")
        .expect("recognised");
    assert_eq!(u.packer, Packer::Fsg);
    // ClamAV's rebuild: one .clam01 section at 0x200 in the file.
    assert_eq!(&u.image[..2], b"MZ");
    assert_eq!(&u.image[0x1c8..0x1cf], b".clam01");
    assert!(
        u.image[0x200..].starts_with(&code),
        "the program is not at 0x200"
    );
}

#[test]
fn damaged_fsg_files() {
    let code = upx_common::code(&[b"AETHER-FSG-MARKER"]);
    let file = upx_common::fsg_packed(&code);
    let limits = UnpackLimits::default();
    let good = unpack(&file, &limits).ok().flatten().map(|u| u.image);
    let (mut errors, mut changed) = (0, 0);
    for len in 0..file.len() {
        match unpack(&file[..len], &limits) {
            Err(_) => errors += 1,
            Ok(Some(u)) if Some(&u.image) != good.as_ref() => changed += 1,
            _ => {}
        }
    }
    for i in 0..file.len() {
        let mut d = file.clone();
        d[i] ^= 0x21;
        match unpack(&d, &limits) {
            Err(_) => errors += 1,
            Ok(Some(u)) if Some(&u.image) != good.as_ref() => changed += 1,
            _ => {}
        }
    }
    assert!(
        errors > 0 && changed > 0,
        "{errors} errors, {changed} changed"
    );
}

#[test]
fn fsg133_unpacks_every_section() {
    let clam = std::fs::read("/usr/share/clamav-testfiles/clam.exe").expect("clam.exe");
    let a = upx_common::code(&[&clam, b"AETHER-FSG133-A"]);
    let b = upx_common::code(&[b"AETHER-FSG133-B"]);
    let file = upx_common::fsg133_packed(&[&a, &b]);
    let u = unpack(&file, &UnpackLimits::default())
        .expect("unpacks")
        .expect("recognised");
    assert_eq!(u.packer, Packer::Fsg);
    assert_eq!(&u.image[0x1c8..0x1cf], b".clam01");
    assert_eq!(&u.image[0x1f0..0x1f7], b".clam02");
    let find = |p: &[u8]| u.image.windows(p.len()).any(|w| w == p);
    assert!(find(&a) && find(&b), "a section is missing from the image");
}

#[test]
fn fsg131_unpacks_every_section() {
    let a = upx_common::code(&[b"AETHER-FSG131-A"]);
    let b = upx_common::code(&[b"AETHER-FSG131-B"]);
    let file = upx_common::fsg131_packed(&[&a, &b]);
    let u = unpack(&file, &UnpackLimits::default())
        .expect("unpacks")
        .expect("recognised");
    assert_eq!(u.packer, Packer::Fsg);
    // The program starts past the headers' page: an "empty" section first.
    assert_eq!(&u.image[0x1c8..0x1cd], b"empty");
    assert_eq!(&u.image[0x218..0x21f], b".clam02");
    let find = |p: &[u8]| u.image.windows(p.len()).any(|w| w == p);
    assert!(find(&a) && find(&b), "a section is missing from the image");
}
