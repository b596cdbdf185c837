//! YARA rules in a database directory: the same names as clamscan for the
//! rules ClamAV supports, and the rest of the language on top.

use std::collections::BTreeSet;
use std::process::Command;

use aether_engine::{DbSources, Limits, load};
use aether_sigs::LoadOptions;

const RULES: &str = r#"
rule Plain_String { strings: $a = "yara-plain-marker" condition: $a }
rule Hex_String { strings: $h = { 41 45 54 48 [1-3] 52 } condition: $h }
private rule Hidden { strings: $a = "hidden-marker" condition: $a }
rule Needs_Private { condition: Hidden }
"#;

#[test]
fn yara_rules_in_a_database_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db");
    std::fs::create_dir(&db).expect("db dir");
    std::fs::write(db.join("rules.yar"), RULES).expect("rules");
    std::fs::write(
        db.join("body.ndb"),
        "Body.Marker:0:*:626f64792d6d61726b6572\n",
    )
    .expect("ndb");
    let files = [
        ("plain.bin", &b"\x00\xffxx yara-plain-marker xx"[..]),
        ("hex.bin", &b"\x00\xffAETH\x01\x02R"[..]),
        (
            "both.bin",
            &b"\x00\xffbody-marker and yara-plain-marker"[..],
        ),
        ("clean.bin", &b"\x00\xffnothing here"[..]),
    ];
    for (name, data) in files {
        std::fs::write(dir.path().join(name), data).expect("sample");
    }
    let (engine, report) = load(
        &DbSources {
            builtin: false,
            paths: vec![db.clone()],
        },
        LoadOptions::default(),
    )
    .expect("database with rules loads");
    assert_eq!(engine.yara().map(|y| y.rule_count()), Some(4));
    assert!(
        report.unsupported().is_empty(),
        "{:?}",
        report.unsupported()
    );
    let limits = Limits {
        all_match: true,
        ..Limits::default()
    };
    let mut scanner = engine.scanner();
    for (name, data) in files {
        let got: BTreeSet<String> = scanner
            .scan_bytes(data, &limits)
            .expect("scan")
            .detections
            .into_iter()
            .map(|d| d.name)
            .collect();
        let out = Command::new("clamscan")
            .args(["--no-summary", "--allmatch", "-d"])
            .arg(&db)
            .arg(dir.path().join(name))
            .output()
            .expect("clamscan runs (.ci/run installs clamav)");
        let want: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                l.strip_suffix(" FOUND")
                    .and_then(|r| r.rsplit_once(": "))
                    .map(|(_, n)| n.to_string())
            })
            .collect();
        if name == "hex.bin" {
            // ClamAV's own YARA reader misses this jump; YARA (and YARA-X) match it.
            assert!(want.is_empty(), "clamscan now matches {name}: {want:?}");
            assert_eq!(
                got,
                BTreeSet::from(["YARA.Hex_String.UNOFFICIAL".to_string()])
            );
        } else {
            assert_eq!(got, want, "{name}");
        }
    }
    // ClamAV skips rules without strings; YARA-X evaluates them.
    let o = scanner
        .scan_bytes(b"a hidden-marker", &limits)
        .expect("scan");
    let names: Vec<&str> = o.detections.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["YARA.Needs_Private.UNOFFICIAL"]);
}
