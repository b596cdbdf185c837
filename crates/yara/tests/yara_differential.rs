//! aether's YARA support and Debian's `yara` (libyara 4) find the same rules
//! on the same files, modules included; compile errors name the file.
//!
//! `yara` is Debian's package of the reference implementation; `.ci/run`
//! installs it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use aether_yara::{External, YaraRules};

const RULES: &str = r#"
import "elf"
import "hash"
import "math"

rule Str_Plain { strings: $a = "aether-yara-plain" condition: $a }
rule Str_Nocase { strings: $a = "AeThEr-NoCaSe" nocase condition: $a }
rule Str_Wide { strings: $a = "widestr" wide condition: $a }
rule Hex_Jump { strings: $h = { 41 45 [2-4] 54 48 ?? 52 } condition: $h }
rule Hex_Alt { strings: $h = { 61 ( 62 | 63 64 ) 65 } condition: $h }
rule Regex_Digits { strings: $r = /id=[0-9]{6}x/ condition: $r }
rule Count_Two { strings: $a = "twice!" condition: #a >= 2 }
rule At_Offset { strings: $a = "HEAD" condition: $a at 0 }
rule Small_Z { condition: filesize < 64 and uint8(0) == 0x5a }
private rule Priv_Marker { strings: $a = "private-marker" condition: $a }
rule Uses_Private { condition: Priv_Marker }
rule Elf_Binary { condition: elf.type == elf.ET_EXEC or elf.type == elf.ET_DYN }
rule Md5_Exact { condition: hash.md5(0, filesize) == "5d41402abc4b2a76b9719d911017c592" }
rule High_Entropy { condition: filesize > 4096 and math.entropy(0, filesize) > 7.5 }
rule Tagged : tag1 tag2 { meta: author = "aether" strings: $a = "tagged-rule" condition: $a }
"#;

fn files(dir: &Path) {
    let write =
        |name: &str, data: &[u8]| std::fs::write(dir.join(name), data).expect("write sample");
    write("plain.txt", b"xx aether-yara-plain xx");
    write("nocase.txt", b"AETHER-nocase here");
    write("wide.bin", b"w\0i\0d\0e\0s\0t\0r\0");
    write("hexjump.bin", b"\x00AE\x01\x02\x03TH\xffR\x00");
    write("hexalt.bin", b"acde and abe");
    write("regex.txt", b"user id=123456x end");
    write("regex_miss.txt", b"user id=12345x end");
    write("twice.txt", b"twice! and twice!");
    write("once.txt", b"twice! only once");
    write("head.txt", b"HEAD at the start");
    write("nothead.txt", b" HEAD not at the start");
    write("small_z.bin", b"Zsmall");
    write("private.txt", b"has a private-marker inside");
    write("hello.txt", b"hello");
    write("tagged.txt", b"a tagged-rule file");
    // High entropy: a fixed pseudo-random stream.
    let mut x = 0x1234_5678u32;
    let noise: Vec<u8> = (0..8192)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    write("noise.bin", &noise);
    let elf = std::fs::read("/bin/true").expect("/bin/true");
    write("true.elf", &elf);
}

type Verdicts = BTreeMap<String, BTreeSet<String>>;

fn reference(rules: &Path, dir: &Path) -> Verdicts {
    let out = Command::new("yara")
        .arg("-w")
        .arg(rules)
        .arg(dir)
        .output()
        .expect("yara runs (install Debian's yara package; .ci/run does)");
    assert!(
        out.status.success(),
        "yara failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v = Verdicts::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((rule, path)) = line.split_once(' ') {
            let file = Path::new(path)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            v.entry(file).or_default().insert(rule.to_string());
        }
    }
    v
}

#[test]
fn same_matches_as_yara() {
    let dir = tempfile::tempdir().expect("temp dir");
    let samples = dir.path().join("samples");
    std::fs::create_dir(&samples).expect("samples dir");
    files(&samples);
    let rule_file = dir.path().join("rules.yar");
    std::fs::write(&rule_file, RULES).expect("rules");

    let want = reference(&rule_file, &samples);
    let rules = YaraRules::compile(std::slice::from_ref(&rule_file), &[]).expect("rules compile");
    assert_eq!(rules.rule_count(), 15);
    let mut scanner = rules.scanner();
    let mut got = Verdicts::new();
    for entry in std::fs::read_dir(&samples).expect("list").flatten() {
        let data = std::fs::read(entry.path()).expect("read sample");
        let matched = scanner.scan(&data).expect("scan");
        if !matched.is_empty() {
            got.insert(
                entry.file_name().to_string_lossy().into_owned(),
                matched.into_iter().collect(),
            );
        }
    }
    assert_eq!(got, want);
    // Every rule but the private one fired somewhere, and it never shows.
    let fired: BTreeSet<&String> = got.values().flatten().collect();
    assert_eq!(fired.len(), 14, "{fired:?}");
    assert!(!fired.iter().any(|r| r.as_str() == "Priv_Marker"));
}

#[test]
fn global_rules_and_externals() {
    let sources = vec![(
        "ext.yar".to_string(),
        r#"
global rule Not_Empty { condition: filesize > 0 }
rule Flagged { condition: ext_flag and ext_name == "aether" }
rule Marker { strings: $a = "marker" condition: $a and ext_count > 2 }
"#
        .to_string(),
    )];
    let externals = vec![
        ("ext_flag".to_string(), External::parse("true")),
        ("ext_name".to_string(), External::parse("aether")),
        ("ext_count".to_string(), External::parse("3")),
    ];
    let rules = YaraRules::compile_sources(&sources, &externals).expect("compile");
    let mut scanner = rules.scanner();
    assert_eq!(
        scanner.scan(b"a marker").expect("scan"),
        ["Not_Empty", "Flagged", "Marker"]
    );
    // The global rule vetoes every other rule on an empty input.
    assert!(scanner.scan(b"").expect("scan").is_empty());
    scanner
        .set_external("ext_count", &External::Integer(1))
        .expect("set");
    assert_eq!(
        scanner.scan(b"a marker").expect("scan"),
        ["Not_Empty", "Flagged"]
    );
}

#[test]
fn compile_error_names_the_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("a_good.yar");
    let bad = dir.path().join("b_bad.yara");
    std::fs::write(&good, "rule Good { condition: true }\n").expect("write");
    std::fs::write(
        &bad,
        "rule Good2 { condition: true }\nrule Broken { strings: $a = \"x\" condition: $b }\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("notes.txt"), "not a rule").expect("write");
    let err = YaraRules::compile(&[dir.path().to_path_buf()], &[]).expect_err("must not compile");
    let text = err.to_string();
    assert!(text.contains("b_bad.yara"), "{text}");
    assert!(text.contains(":2:"), "{text}");
    assert!(text.contains("$b"), "{text}");
    // A directory without rule files is an error, not an empty rule set.
    let empty = tempfile::tempdir().expect("temp dir");
    assert!(matches!(
        YaraRules::compile(&[empty.path().to_path_buf()], &[]),
        Err(aether_yara::YaraError::NoRules { .. })
    ));
}
