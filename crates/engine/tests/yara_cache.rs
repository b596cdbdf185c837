//! YARA rules through the database load: cached next to the compiled
//! database, with the same detections from the cache, recompiled when a rule
//! file or a definition changes, and external variables for the rule files
//! of database directories too.

use std::path::{Path, PathBuf};

use aether_engine::{DbSources, Engine, Limits, YaraExternal, YaraSources, load_cached_with};
use aether_sigs::LoadOptions;

const RULES: &str = r#"
rule Db_Marker { strings: $a = "db-yara-marker" condition: $a }
rule Db_Gated { strings: $a = "gated" condition: $a and mode == "strict" }
"#;

const SAMPLES: &[&[u8]] = &[
    b"\x00\xff db-yara-marker",
    b"\x00\xff gated",
    b"\x00\xff ndb-marker",
    b"\x00\xff extra-yara-marker",
    b"\x00\xff clean",
];

fn detections(engine: &Engine) -> Vec<Vec<String>> {
    let limits = Limits {
        all_match: true,
        ..Limits::default()
    };
    let mut scanner = engine.scanner();
    SAMPLES
        .iter()
        .map(|s| {
            let mut names: Vec<String> = scanner
                .scan_bytes(s, &limits)
                .expect("scan")
                .detections
                .into_iter()
                .map(|d| d.name)
                .collect();
            names.sort();
            names
        })
        .collect()
}

struct Setup {
    _dir: tempfile::TempDir,
    db: PathBuf,
    extra: PathBuf,
    cache: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db");
    std::fs::create_dir(&db).expect("db dir");
    std::fs::write(db.join("rules.yar"), RULES).expect("rules");
    std::fs::write(db.join("body.ndb"), "Ndb.Marker:0:*:6e64622d6d61726b6572\n").expect("ndb");
    let extra = dir.path().join("extra.yara");
    std::fs::write(
        &extra,
        "rule Extra { strings: $a = \"extra-yara-marker\" condition: $a and mode != \"off\" }\n",
    )
    .expect("extra rules");
    let cache = dir.path().join("cache");
    Setup {
        _dir: dir,
        db,
        extra,
        cache,
    }
}

fn sources(s: &Setup) -> DbSources {
    DbSources {
        builtin: false,
        paths: vec![s.db.clone()],
    }
}

fn yara(s: &Setup, mode: &str) -> YaraSources {
    YaraSources {
        rules: vec![s.extra.clone()],
        defines: vec![("mode".into(), YaraExternal::String(mode.into()))],
    }
}

/// Rules the report counts as YARA.
fn yara_count(report: &aether_sigs::LoadReport) -> u64 {
    report
        .files
        .iter()
        .filter_map(|f| f.by_kind.get("yara"))
        .sum()
}

fn yara_cache_file(cache: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(cache)
        .expect("cache dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yarac"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn yara_rules_come_from_their_cache_on_the_second_load() {
    let s = setup();
    let load = |mode: &str| {
        load_cached_with(
            &sources(&s),
            LoadOptions::default(),
            Some(&s.cache),
            &yara(&s, mode),
        )
        .expect("load")
    };
    let first = load("strict");
    assert!(!first.from_cache && !first.yara_from_cache);
    assert_eq!(first.cache_problem, None);
    let want = detections(&first.engine);
    assert_eq!(
        want,
        [
            vec!["YARA.Db_Marker.UNOFFICIAL".to_string()],
            vec!["YARA.Db_Gated.UNOFFICIAL".into()],
            vec!["Ndb.Marker.UNOFFICIAL".into()],
            vec!["YARA.Extra.UNOFFICIAL".into()],
            vec![],
        ]
    );
    assert_eq!(yara_count(&first.report), 2, "{:?}", first.report);
    assert!(first.report.unsupported().is_empty());

    let second = load("strict");
    assert!(second.from_cache, "the compiled database is cached");
    assert!(second.yara_from_cache, "the YARA rules are cached");
    assert_eq!(second.cache_problem, None);
    assert_eq!(detections(&second.engine), want);
    assert_eq!(
        second.engine.signature_count(),
        first.engine.signature_count()
    );
    assert_eq!(second.report, first.report);

    // Another definition: recompiled, the database itself still cached.
    let other = load("lax");
    assert!(other.from_cache && !other.yara_from_cache);
    let got = detections(&other.engine);
    assert_eq!(
        got[1],
        Vec::<String>::new(),
        "Db_Gated needs mode == strict"
    );
    assert_eq!(got[3], ["YARA.Extra.UNOFFICIAL"]);
    assert!(load("lax").yara_from_cache);

    // An edited rule file (--yara-rules) is recompiled.
    std::fs::write(
        &s.extra,
        "rule Extra2 { strings: $a = \"extra-yara-marker\" condition: $a }\n",
    )
    .expect("edit");
    let edited = load("lax");
    assert!(!edited.yara_from_cache);
    assert_eq!(detections(&edited.engine)[3], ["YARA.Extra2.UNOFFICIAL"]);

    // So is one in the database directory.
    std::fs::write(
        s.db.join("rules.yar"),
        RULES.replace("db-yara-marker", "db-yara-MARKER"),
    )
    .expect("edit");
    let edited = load("lax");
    assert!(!edited.yara_from_cache);
    assert_eq!(detections(&edited.engine)[0], Vec::<String>::new());
    assert!(load("lax").yara_from_cache);
}

#[test]
fn a_damaged_yara_cache_is_reported_and_rebuilt() {
    let s = setup();
    let load = || {
        load_cached_with(
            &sources(&s),
            LoadOptions::default(),
            Some(&s.cache),
            &yara(&s, "strict"),
        )
        .expect("load")
    };
    let want = detections(&load().engine);
    let file = yara_cache_file(&s.cache);
    let mut bytes = std::fs::read(&file).expect("cache");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&file, &bytes).expect("damage");
    let loaded = load();
    assert!(loaded.from_cache, "the database cache is fine");
    assert!(!loaded.yara_from_cache);
    let problem = loaded.cache_problem.expect("damage reported");
    assert!(problem.starts_with("YARA rules: "), "{problem}");
    assert!(problem.contains("checksum"), "{problem}");
    assert_eq!(detections(&loaded.engine), want);
    let again = load();
    assert!(again.yara_from_cache);
    assert_eq!(again.cache_problem, None);
    assert_eq!(detections(&again.engine), want);
}

#[test]
fn definitions_apply_to_database_rule_files_without_a_cache() {
    let s = setup();
    let defines = |mode: &str| YaraSources {
        rules: Vec::new(),
        defines: vec![("mode".into(), YaraExternal::String(mode.into()))],
    };
    let strict = load_cached_with(
        &sources(&s),
        LoadOptions::default(),
        None,
        &defines("strict"),
    )
    .expect("load");
    assert!(!strict.yara_from_cache);
    assert_eq!(detections(&strict.engine)[1], ["YARA.Db_Gated.UNOFFICIAL"]);
    let lax = load_cached_with(&sources(&s), LoadOptions::default(), None, &defines("lax"))
        .expect("load");
    assert_eq!(detections(&lax.engine)[1], Vec::<String>::new());
    // Without a definition the database's rules do not compile: `mode` is
    // unknown, and the compiler's message says so.
    let err = load_cached_with(
        &sources(&s),
        LoadOptions::default(),
        None,
        &YaraSources::default(),
    )
    .err()
    .expect("undefined variable fails");
    assert!(err.to_string().contains("mode"), "{err}");
}
