//! aether must accept exactly the database lines Debian's clamscan accepts.
//!
//! Each case is written to its own database file and loaded twice: by
//! `clamscan -d FILE` on a small clean file (exit 0: loaded, 2: rejected) and
//! by aether's `Loader`. The cases are the grammar's corners, written by hand,
//! plus a few hundred hex signatures generated from the grammar's pieces.
//! The few places where aether is deliberately stricter are listed in
//! `STRICTER` (and in docs/database-formats.md); the test checks that those
//! still differ in that direction, so the list cannot go stale.
//!
//! clamscan is the reference: `.ci/run` installs Debian's `clamav` package.

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
}

const MD5: &str = "44d88612fea8a8f36de82e1278abb02f";

/// Lines ClamAV loads and aether rejects on purpose.
const STRICTER: &[(&str, &str)] = &[
    ("x.ndb", "T:0:*:aabb{5-3}ccdd"),
    ("x.ndb", "T:6:S1+2x:aabbcc"),
    ("x.hdb", "44d88612fea8a8f36de82e1278abb02f:68:E:abc"),
    // Empty branches: ClamAV refuses only a leading one, drops a trailing one
    // (so this never matches "aabbeeff"), and keeps inner ones.
    ("x.ndb", "T:0:*:aabb(cc|)eeff"),
    ("x.ndb", "T:0:*:aabb(cc||dd)eeff"),
    // ClamAV's prefilter passes over a leading nested group of single bytes;
    // aether counts it as single-byte alternatives, like `(aa|bb|cc)`.
    ("x.ndb", "T:0:*:(aa|(bb|cc))(W)aa00"),
];

fn hand_cases() -> Vec<(&'static str, String)> {
    let ndb = [
        "aabbcc",
        "aabb",
        "aa",
        "aabbc",
        "aabbccdd??",
        "??aabbcc",
        "a?bbccdd",
        "aabb*ccdd",
        "aabb*cc",
        "aabb{5}ccdd",
        "aabb{5}cc",
        "aabb{200}ccdd",
        "aabb{-5}ccdd",
        "aabb{5-}ccdd",
        "aabb{5-10}ccdd",
        "aabb{5-10}cc",
        "aa[1-4]bbccdd",
        "aabbcc[1-4]dd",
        "aabb[1-4]ccdd",
        "aa[4-1]bbccdd",
        "aa[1-40]bbccdd",
        "aa[3]bbccdd",
        "aabb(cc|dd)eeff",
        "aabb(cc|ddee)ff00",
        "aabb!(cc|dd)eeff",
        "aabb!(cc|ddee)ff00",
        "aabb!(cccc|ddee)ff00",
        "aabb(cc??|ddee)ff00",
        "aabb(cc|)eeff",
        "aabb()eeff",
        "aabb(cc|dd eeff",
        "aabbcc|dd)eeff",
        "aabb(cc|dd(ee|ff))0011",
        "aabb(cc{3}|dd)eeff",
        "aabb(cc*|dd)eeff",
        "(B)aabbcc",
        "aabbcc(L)",
        "aabb(W)ccdd",
        "!(B)aabbcc",
        "aabb(X)ccdd",
        "AABBCC",
        "aabb{0}ccdd",
        "aabb{5}{5}ccdd",
        "*aabbcc",
        "aabbcc*",
        "aabb(c?|dd)eeff",
        "aabb!(c?|dd)eeff",
        "aabb(B)(L)ccdd",
        "??",
        "aa??bb",
        "aabb{1-2}",
        "aa(bb|cc)dd",
        "aabb(cc|dd)",
        "a?bbcc",
        "aa[1-4]bb",
        "aa[1-4]bbcc[2-3]dd",
        "aa[1-4]bbcc[2-3]dd[1-2]ee",
        "0000",
        "(B)aa",
        "aabb(B)",
        "aabb(aa|bb)(cc|dd)eeff",
        "aabb((cc|dd)|ee)ff00",
        "aabb(cc|dd|ee)ff00",
        "aabb{5}(cc|dd)",
        "aabb(L)ccdd(W)",
        "aabb!(L)ccdd",
        "aa{-5}bbcc",
        "aabbccdd{1-2}eeff",
        "aabb!ccdd",
        "aabb(b)ccdd",
    ];
    let mut cases: Vec<(&str, String)> = ndb
        .iter()
        .map(|p| ("x.ndb", format!("T:0:*:{p}")))
        .collect();
    for line in [
        "T:1:EP+10:aabbcc",
        "T:0:EP+10:aabbcc",
        "T:6:S1+10,5:aabbcc",
        "T:9:SE1:aabbcc",
        "T:1:SL+3:aabbcc",
        "T:0:EOF-10,5:aabbcc",
        "T:0:10,5:aabbcc",
        "T:0:VI:aabbcc",
        "T:0:*,5:aabbcc",
        "T:15:*:aabbcc",
        "T:*:*:aabbcc",
        "T:0:*:aabbcc:1",
        "T:0:*:aabbcc:999",
        "T:0:*:aabbcc:1:2",
        "T:0:*:aabbcc:x",
        "T:0:*:aabbcc:1:2:3",
        "T:0:*",
        "T:x:*:aabbcc",
        "T:0:-5:aabbcc",
        ":0:*:aabbcc",
        "T:1:*:aabb",
        "T:1:10:aabb",
        "T:2:*:aabb",
        "T:0:EP-5:aabbcc",
        "T:0:S1:aabbcc",
        "T:0:4294967295:aabbcc",
        "T:0:*:aabbcc:9999:x",
    ] {
        cases.push(("x.ndb", line.to_string()));
    }
    for line in [
        format!("{MD5}:68:E"),
        format!("{MD5}:*:E"),
        format!("{MD5}:*:E:73"),
        format!("{MD5}:0:E"),
        format!("{MD5}:68:"),
        format!("{MD5}:68"),
        format!("{MD5}:68:E:1:2:3"),
        format!("{MD5}:68:E:1:300"),
        format!(" {MD5}:68:E"),
        format!("{}:68:E", MD5.to_uppercase()),
        "44d88612fea8a8f36de82e1278abb02:68:E".to_string(),
        "3395856ce81f2b7382dee72602f798b642f14140:68:E".to_string(),
        "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f:68:E".to_string(),
        format!("{MD5}:4294967295:E"),
        format!("{MD5}:4294967294:E"),
    ] {
        cases.push(("x.hdb", line.clone()));
        cases.push(("x.hsb", line));
    }
    for line in [
        "Eicar",
        "Eicar:bc356bae4c42f19a3de16e333ba3569c",
        "db:1:Eicar",
        "a:b:c:d",
        "Eicar:123",
    ] {
        cases.push(("x.ign2", line.to_string()));
    }
    cases
}

/// Hex signatures built from the grammar's pieces, most of them corner cases.
fn generated_cases() -> Vec<(&'static str, String)> {
    let pieces = [
        "aa",
        "bb",
        "0f",
        "??",
        "a?",
        "?b",
        "*",
        "{3}",
        "{0}",
        "{130}",
        "{-4}",
        "{2-}",
        "{2-9}",
        "[1-3]",
        "[2]",
        "(cc|dd)",
        "!(cc|dd)",
        "(cc|ddee)",
        "(c?|{2}ee)",
        "(B)",
        "!(L)",
        "(W)",
        "(aa|(bb|cc))",
        "(|aa)",
        "00",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..300)
        .map(|_| {
            let n = 2 + (next() % 6) as usize;
            let p: String = (0..n)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            ("x.ndb", format!("T:0:*:{p}"))
        })
        .collect()
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

#[test]
fn same_lines_load_as_in_clamscan() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.txt");
    std::fs::write(&clean, "nothing to see here\n").unwrap();
    let mut cases = hand_cases();
    cases.extend(generated_cases());
    let mut mismatches = Vec::new();
    let mut checked = 0;
    for (i, (ext, line)) in cases.iter().enumerate() {
        if STRICTER.iter().any(|(e, l)| e == ext && l == line) {
            continue; // checked by documented_stricter_cases_still_differ
        }
        let db = dir.path().join(format!("case{i}.{}", &ext[2..]));
        std::fs::write(&db, format!("{line}\n")).unwrap();
        let clam = clamscan_accepts(&db, &clean);
        let ours = aether_accepts(&db);
        checked += 1;
        if clam != ours {
            mismatches.push(format!("{ext} {line:?}: clamscan {clam}, aether {ours}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {checked} differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn documented_stricter_cases_still_differ() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.txt");
    std::fs::write(&clean, "nothing to see here\n").unwrap();
    for (i, (ext, line)) in STRICTER.iter().enumerate() {
        let db = dir.path().join(format!("strict{i}.{}", &ext[2..]));
        std::fs::write(&db, format!("{line}\n")).unwrap();
        assert!(
            clamscan_accepts(&db, &clean),
            "clamscan now rejects {line:?}"
        );
        assert!(!aether_accepts(&db), "aether now accepts {line:?}");
    }
}
