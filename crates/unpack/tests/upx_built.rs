//! UPX-packed files built here (NRV2B, NRV2D, NRV2E, LZMA; see upx_common):
//! each unpacks to ClamAV's rebuild of the program, which holds the
//! program's code byte for byte; damaged copies end in an error or another
//! image, never a panic.

mod upx_common;

use aether_unpack::{Packer, UnpackLimits, unpack};
use upx_common::{METHODS, Method, code, packed};

fn clam() -> Vec<u8> {
    std::fs::read("/usr/share/clamav-testfiles/clam.exe").expect("clam.exe from clamav-testfiles")
}

#[test]
fn each_method_unpacks_to_the_program() {
    let code = code(&[&clam(), b"AETHER-UPX-MARKER"]);
    for m in METHODS {
        let file = packed(m, &code);
        let u = unpack(&file, &UnpackLimits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", m.name()))
            .unwrap_or_else(|| panic!("{}: not recognised", m.name()));
        assert_eq!(u.packer, Packer::Upx);
        let vsz = code.len().div_ceil(0x1000) * 0x1000;
        // ClamAV's header, the program's PE header behind it, one section
        // at 0x1000 (the file alignment becomes the section alignment).
        // After LZMA, ClamAV writes UPX0 + UPX1's virtual size instead of
        // the rebuilt file's (a quirk kept on purpose).
        if m == Method::Lzma {
            assert!(u.image.len() > 0x1000 + vsz, "{}", u.image.len());
        } else {
            assert_eq!(u.image.len(), 0x1000 + vsz, "{}", m.name());
        }
        assert_eq!(&u.image[..2], b"MZ");
        assert_eq!(&u.image[0xd0..0xd4], b"PE\0\0");
        assert_eq!(&u.image[0xd0 + 8..0xd0 + 12], b"CLAM", "{}", m.name());
        assert_eq!(
            &u.image[0x1000..0x1000 + code.len()],
            &code[..],
            "{}",
            m.name()
        );
    }
}

#[test]
fn nrv_streams_differ_per_method() {
    // The three NRV encodings of the same data are different streams, and
    // each decodes only with its own decompressor: the file says which.
    let code = code(&[b"abc"]);
    let b = upx_common::nrv(Method::Nrv2b, &code);
    let d = upx_common::nrv(Method::Nrv2d, &code);
    let e = upx_common::nrv(Method::Nrv2e, &code);
    assert!(b != d && d != e && b != e);
    assert!(
        b.len() < code.len() / 2,
        "compressed: {} of {}",
        b.len(),
        code.len()
    );
}

#[test]
fn damaged_built_files() {
    let code = code(&[&clam()]);
    let limits = UnpackLimits::default();
    for m in METHODS {
        let file = packed(m, &code);
        let good = unpack(&file, &limits).ok().flatten().map(|u| u.image);
        let (mut errors, mut changed) = (0, 0);
        for len in (0..file.len()).step_by(7) {
            match unpack(&file[..len], &limits) {
                Err(_) => errors += 1,
                Ok(Some(u)) if Some(&u.image) != good.as_ref() => changed += 1,
                _ => {}
            }
        }
        // Every byte of the compressed data and the stub's first bytes.
        for i in 0x400..(0x400 + 0x1000).min(file.len()) {
            let mut d = file.clone();
            d[i] ^= 0x10;
            match unpack(&d, &limits) {
                Err(_) => errors += 1,
                Ok(Some(u)) => {
                    assert!(u.image.len() <= 64 << 20);
                    if Some(&u.image) != good.as_ref() {
                        changed += 1;
                    }
                }
                Ok(None) => {}
            }
        }
        assert!(
            errors > 0 && changed > 0,
            "{}: {errors} errors, {changed} changed",
            m.name()
        );
    }
}
