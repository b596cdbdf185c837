//! The compiled-rules cache: read back with the same matches, recompiled when
//! a rule file or an external variable changes, and never trusted when
//! damaged or writable by others.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use aether_yara::{CacheUse, External, YaraRules};

const RULES: &str = r#"
import "hash"
rule Marker { strings: $a = "cache-marker" condition: $a }
rule Hex { strings: $h = { 41 45 [1-3] 52 } condition: $h }
rule Sized { condition: filesize == 7 and hash.md5(0, filesize) == "d5ca5d3cd2b5a27a5e6e8a7e4b7b5d43" or filesize == 9 }
rule Ext { condition: level > 2 }
private rule Hidden { strings: $a = "hidden" condition: $a }
rule Via_Hidden { condition: Hidden }
"#;

const SAMPLES: &[&[u8]] = &[
    b"xx cache-marker xx",
    b"AEzzR",
    b"123456789",
    b"a hidden thing",
    b"nothing",
];

fn matches(rules: &YaraRules, externals: &[(String, External)]) -> Vec<Vec<String>> {
    let mut scanner = rules.scanner();
    for (name, value) in externals {
        scanner.set_external(name, value).expect("external");
    }
    SAMPLES.iter().map(|s| sorted(scanner.scan(s))).collect()
}

fn sorted(names: Result<Vec<String>, aether_yara::YaraScanError>) -> Vec<String> {
    let mut names = names.expect("scan");
    names.sort();
    names
}

fn setup() -> (tempfile::TempDir, Vec<PathBuf>, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("rules dir");
    std::fs::write(rules.join("a.yar"), RULES).expect("rules");
    std::fs::write(
        rules.join("b.yara"),
        "rule Second { strings: $a = \"second\" condition: $a }\n",
    )
    .expect("rules");
    let cache = dir.path().join("cache");
    (dir, vec![rules], cache)
}

fn level(n: i64) -> Vec<(String, External)> {
    vec![("level".to_string(), External::Integer(n))]
}

fn only_cache_file(cache: &Path) -> PathBuf {
    let files: Vec<_> = std::fs::read_dir(cache)
        .expect("cache dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn second_load_comes_from_the_cache_with_the_same_matches() {
    let (_dir, paths, cache) = setup();
    let (first, used) = YaraRules::load(&paths, &level(3), Some(&cache)).expect("first load");
    assert_eq!(used, CacheUse::Written);
    let want = matches(&first, &level(3));
    assert_eq!(
        want,
        [
            vec!["Ext".to_string(), "Marker".into()],
            vec!["Ext".into(), "Hex".into()],
            vec!["Ext".into(), "Sized".into()],
            vec!["Ext".into(), "Via_Hidden".into()],
            vec!["Ext".into()],
        ]
    );
    let (second, used) = YaraRules::load(&paths, &level(3), Some(&cache)).expect("second load");
    assert_eq!(used, CacheUse::Read);
    assert!(used.from_cache());
    assert_eq!(second.rule_count(), first.rule_count());
    assert_eq!(second.files(), first.files());
    assert_eq!(matches(&second, &level(3)), want);
    // The cached rules keep the compiled-in value as the default.
    assert_eq!(matches(&second, &[]), want);
    // No cache: compiled, nothing written.
    let (_, used) = YaraRules::load(&paths, &level(3), None).expect("uncached load");
    assert_eq!(used, CacheUse::Off);
    let mode = std::fs::metadata(only_cache_file(&cache))
        .expect("cache file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_changed_rule_file_or_variable_recompiles() {
    let (_dir, paths, cache) = setup();
    YaraRules::load(&paths, &level(3), Some(&cache)).expect("first load");
    // Same size, same second: only the contents tell.
    let file = paths[0].join("b.yara");
    std::fs::write(
        &file,
        "rule Second { strings: $a = \"SECOND\" condition: $a }\n",
    )
    .expect("edit");
    let (rules, used) = YaraRules::load(&paths, &level(3), Some(&cache)).expect("reload");
    assert_eq!(used, CacheUse::Written);
    let mut scanner = rules.scanner();
    assert_eq!(sorted(scanner.scan(b"SECOND")), ["Ext", "Second"]);
    assert_eq!(sorted(scanner.scan(b"second")), ["Ext"]);
    // Another value for the external variable is another compiled form.
    let (rules, used) = YaraRules::load(&paths, &level(1), Some(&cache)).expect("reload");
    assert_eq!(used, CacheUse::Written);
    assert_eq!(
        sorted(rules.scanner().scan(b"nothing")),
        Vec::<String>::new()
    );
    let (_, used) = YaraRules::load(&paths, &level(1), Some(&cache)).expect("reload");
    assert_eq!(used, CacheUse::Read);
    // One cache file per list of rule files, replaced, not accumulated.
    only_cache_file(&cache);
    // A file added to the directory is another list.
    std::fs::write(paths[0].join("c.yar"), "rule Third { condition: false }\n").expect("add");
    let (rules, used) = YaraRules::load(&paths, &level(1), Some(&cache)).expect("reload");
    assert_eq!(used, CacheUse::Written);
    assert_eq!(rules.rule_count(), 8);
}

#[test]
fn a_damaged_cache_is_reported_and_replaced() {
    let (_dir, paths, cache) = setup();
    let (good, _) = YaraRules::load(&paths, &level(3), Some(&cache)).expect("first load");
    let want = matches(&good, &level(3));
    let file = only_cache_file(&cache);
    // The header: magic 8, format 4, fingerprint 32, checksum 32, length 8.
    let format_or_fingerprint = 8..44;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..40 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bytes = std::fs::read(&file).expect("read cache");
        let mut bad = bytes.clone();
        let at = (state as usize) % bytes.len();
        let stale = if round % 4 == 0 {
            bad.truncate(at);
            false
        } else {
            bad[at] ^= 1 << ((state >> 60) % 8);
            format_or_fingerprint.contains(&at)
        };
        std::fs::write(&file, &bad).expect("write damaged cache");
        let (rules, used) = YaraRules::load(&paths, &level(3), Some(&cache)).expect("load");
        if stale {
            // Another format or fingerprint is a cache of something else.
            assert_eq!(used, CacheUse::Written, "round {round} at {at}");
        } else {
            let problem = used
                .problem()
                .unwrap_or_else(|| panic!("round {round} at {at}: damage not reported: {used:?}"));
            assert!(problem.contains(&file.display().to_string()), "{problem}");
            assert!(problem.contains("recompiled"), "{problem}");
        }
        assert_eq!(matches(&rules, &level(3)), want, "round {round}");
        // Replaced by a good one.
        let (again, used) = YaraRules::load(&paths, &level(3), Some(&cache)).expect("load");
        assert_eq!(used, CacheUse::Read, "round {round}");
        assert_eq!(matches(&again, &level(3)), want, "round {round}");
    }
}

#[test]
fn a_payload_with_a_matching_checksum_but_foreign_bytes_is_refused_by_yara_x() {
    // Someone with write access could also fix the checksum; that is why the
    // file must be private. Even then, bytes that are not YARA-X's form are
    // an error, not rules.
    let (_dir, paths, cache) = setup();
    YaraRules::load(&paths, &level(3), Some(&cache)).expect("first load");
    let file = only_cache_file(&cache);
    let mut bytes = std::fs::read(&file).expect("read cache");
    let payload = b"YARA-X\0\0\x08\0\0\0garbage that is not bincode".to_vec();
    bytes.truncate(76);
    use sha2::Digest as _;
    bytes[44..76].copy_from_slice(&sha2::Sha256::digest(&payload));
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&payload);
    std::fs::write(&file, &bytes).expect("write");
    let (rules, used) = YaraRules::load(&paths, &level(3), Some(&cache)).expect("load");
    let problem = used.problem().expect("refusal reported");
    assert!(problem.contains("corrupt"), "{problem}");
    assert_eq!(rules.rule_count(), 7);
}

#[test]
fn a_cache_writable_by_others_is_refused() {
    let (_dir, paths, cache) = setup();
    YaraRules::load(&paths, &level(3), Some(&cache)).expect("first load");
    let file = only_cache_file(&cache);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let (_, used) = YaraRules::load(&paths, &level(3), Some(&cache)).expect("load");
    let problem = used.problem().expect("refusal reported");
    assert!(problem.contains("not a private file"), "{problem}");
    // Replaced by a private one, which is then used.
    let (_, used) = YaraRules::load(&paths, &level(3), Some(&cache)).expect("load");
    assert_eq!(used, CacheUse::Read);

    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let (_, used) = YaraRules::load(&paths, &level(3), Some(&cache)).expect("load");
    let problem = used.problem().expect("refusal reported");
    assert!(problem.contains("not a private directory"), "{problem}");
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).expect("chmod");

    // A link in place of the file is not followed.
    let elsewhere = cache.with_file_name("elsewhere");
    std::fs::rename(&file, &elsewhere).expect("move");
    std::os::unix::fs::symlink(&elsewhere, &file).expect("link");
    let (_, used) = YaraRules::load(&paths, &level(3), Some(&cache)).expect("load");
    assert!(used.problem().is_some(), "{used:?}");
}

#[test]
fn rules_with_include_are_not_cached() {
    let (dir, _, cache) = setup();
    let inc = dir.path().join("inc");
    std::fs::create_dir(&inc).expect("dir");
    std::fs::write(inc.join("part.yar"), "rule Part { condition: true }\n").expect("part");
    let main = inc.join("main.yara");
    std::fs::write(
        &main,
        format!(
            "include \"{}\"\nrule Main {{ condition: Part }}\n",
            inc.join("part.yar").display()
        ),
    )
    .expect("main");
    let (rules, used) =
        YaraRules::load(std::slice::from_ref(&main), &[], Some(&cache)).expect("load");
    match used {
        CacheUse::Uncacheable(why) => assert!(why.contains("include"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(sorted(rules.scanner().scan(b"x")), ["Main", "Part"]);
    assert!(!cache.exists());
}
