//! The built-in database detects EICAR and ClamAV's test file, as clamscan
//! does with ClamAV's own signatures for them.

use aether_engine::{DbSources, Limits, load};
use aether_sigs::LoadOptions;

const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

fn builtin() -> aether_engine::Engine {
    let sources = DbSources {
        builtin: true,
        paths: Vec::new(),
    };
    load(&sources, LoadOptions::default())
        .expect("built-in database loads")
        .0
}

#[test]
fn eicar_is_detected_with_and_without_trailing_whitespace() {
    let engine = builtin();
    let mut scanner = engine.scanner();
    for data in [
        EICAR.to_vec(),
        [EICAR, b"\r\n"].concat(),
        [EICAR, b"   \n"].concat(),
    ] {
        let o = scanner.scan_bytes(&data, &Limits::default()).expect("scan");
        let names: Vec<&str> = o.detections.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["Eicar-Test-Signature"]);
    }
    // Not at offset 0: EICAR's own rules say it is not the test file.
    let o = scanner
        .scan_bytes(&[b"x", EICAR].concat(), &Limits::default())
        .expect("scan");
    assert!(o.detections.is_empty());
}

#[test]
fn clamav_test_file_is_detected() {
    let path = "/usr/share/clamav-testfiles/clam.exe";
    let file = std::fs::File::open(path).unwrap_or_else(|e| {
        panic!("{path}: {e} (install Debian's clamav-testfiles; .ci/run does)")
    });
    let engine = builtin();
    let o = engine
        .scanner()
        .scan_file(&file, &Limits::default())
        .expect("scan");
    let names: Vec<&str> = o.detections.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["ClamAV-Test-File"]);
}
