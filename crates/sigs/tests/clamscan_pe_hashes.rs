//! aether must accept exactly the `.mdb`/`.msb`/`.imp` lines Debian's
//! clamscan accepts (see clamscan_accepts.rs for the method: each case in
//! its own database, `clamscan -d` exit 0 or 1 is "loaded", 2 "rejected").
//! Every case file ends with a valid line, so a case that is skipped (by
//! functionality level) still leaves clamscan a signature to load.
//! Where aether is deliberately stricter is listed in `STRICTER`, and
//! checked to still differ.

use std::path::Path;
use std::process::Command;

use aether_sigs::{BodySig, HashSig, LoadOptions, Loader, SignatureSink, Unsupported};

struct Null;

impl SignatureSink for Null {
    fn hash(&mut self, _: HashSig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
    fn body(&mut self, _: BodySig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
    fn allow(&mut self, _: HashSig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
    fn section_hash(&mut self, _: HashSig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
    fn import_hash(&mut self, _: HashSig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
}

const MD5: &str = "44d88612fea8a8f36de82e1278abb02f";
const SHA1: &str = "3395856ce81f2b7382dee72602f798b642f14140";
const SHA256: &str = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";

/// Lines ClamAV loads and aether rejects on purpose: a functionality level
/// that is not a number (ClamAV's `atoi` reads it as 0), as in `.hdb` lines.
const STRICTER: &[(&str, &str)] = &[
    ("mdb", "10:44d88612fea8a8f36de82e1278abb02f:N:abc"),
    ("imp", "44d88612fea8a8f36de82e1278abb02f:10:N:abc"),
];

fn cases() -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    for ext in ["mdb", "msb"] {
        for line in [
            format!("83456:{MD5}:N"),
            format!("{MD5}:83456:N"),
            format!("0:{MD5}:N"),
            format!("*:{MD5}:N"),
            format!("*:{MD5}:N:73"),
            format!("*:{MD5}:N:72"),
            format!("*:{MD5}:N:73:300"),
            format!("10:{SHA1}:N"),
            format!("10:{SHA256}:N"),
            format!("10:{SHA256}0:N"),
            "10:abc:N".to_string(),
            format!("10:{MD5}"),
            format!("10:{MD5}:N:1:300:x"),
            format!("10:{MD5}:N:9999"),
            format!("10:{MD5}:N:0:1"),
            format!("4294967295:{MD5}:N"),
            format!("4294967294:{MD5}:N"),
            format!("x10:{MD5}:N"),
            format!("10:{MD5}:N:"),
            format!("10:{MD5}:N::"),
            format!("10:{}:N", MD5.to_uppercase()),
            format!("10:{}g:N", &MD5[..31]),
        ] {
            v.push((ext, line));
        }
    }
    for line in [
        format!("{MD5}:39:N"),
        format!("{MD5}:*:N"),
        format!("{MD5}:*:N:90"),
        format!("39:{MD5}:N"),
        format!("{MD5}:0:N"),
        format!("{SHA256}:39:N"),
        format!("{MD5}:39"),
        format!("{MD5}:39:N:9999"),
        format!("{MD5}:4294967295:N"),
        format!("{MD5}:39:N:1:300:x"),
    ] {
        v.push(("imp", line));
    }
    v
}

fn clamscan_accepts(db: &Path, clean: &Path) -> bool {
    let out = Command::new("clamscan")
        .arg("--no-summary")
        .arg("-d")
        .arg(db)
        .arg(clean)
        .output()
        .expect("clamscan must be installed (.ci/run installs Debian's clamav)");
    match out.status.code() {
        Some(0) | Some(1) => true,
        Some(2) => false,
        other => panic!(
            "clamscan exited with {other:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn aether_accepts(db: &Path) -> bool {
    Loader::new(LoadOptions::default())
        .load_path(db, &mut Null)
        .is_ok()
}

/// A case line followed by a valid line of the same database type.
fn write_case(dir: &Path, name: &str, ext: &str, line: &str) -> std::path::PathBuf {
    let valid = match ext {
        "imp" => format!("{MD5}:5:Valid"),
        _ => format!("5:{MD5}:Valid"),
    };
    let db = dir.join(format!("{name}.{ext}"));
    std::fs::write(&db, format!("{line}\n{valid}\n")).unwrap();
    db
}

#[test]
fn same_pe_hash_lines_load_as_in_clamscan() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.txt");
    std::fs::write(&clean, "nothing to see here\n").unwrap();
    let mut mismatches = Vec::new();
    let cases = cases();
    let (mut accepted, mut rejected) = (0, 0);
    for (i, (ext, line)) in cases.iter().enumerate() {
        if STRICTER.iter().any(|(e, l)| e == ext && l == line) {
            continue;
        }
        let db = write_case(dir.path(), &format!("case{i}"), ext, line);
        let clam = clamscan_accepts(&db, &clean);
        let ours = aether_accepts(&db);
        if clam {
            accepted += 1;
        } else {
            rejected += 1;
        }
        if clam != ours {
            mismatches.push(format!("{ext} {line:?}: clamscan {clam}, aether {ours}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} differ:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
    // Both outcomes are exercised.
    assert!(
        accepted >= 10 && rejected >= 10,
        "{accepted} accepted, {rejected} rejected"
    );
}

#[test]
fn documented_stricter_pe_hash_cases_still_differ() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.txt");
    std::fs::write(&clean, "nothing to see here\n").unwrap();
    for (i, (ext, line)) in STRICTER.iter().enumerate() {
        let db = write_case(dir.path(), &format!("strict{i}"), ext, line);
        assert!(
            clamscan_accepts(&db, &clean),
            "clamscan now rejects {line:?}"
        );
        assert!(!aether_accepts(&db), "aether now accepts {line:?}");
    }
}
