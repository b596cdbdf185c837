//! The compiled-database cache: same detections from the cache as from the
//! text databases, recompiled when stale, and never trusted when damaged.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use aether_engine::{DbSources, Engine, Limits, load_cached};
use aether_sigs::LoadOptions;

const NDB: &str = "\
Cache.Exact:0:*:414243444546
Cache.Wild:0:*:4142??44{2-4}4748*4a4b4c4d
Cache.Alt:0:10,4:(61|62|6364)6566676869
Cache.Neg:0:EOF-8:!(00|01)7a7a7a7a7a7a7a
Cache.Class:0:*:(B)776f72647776(W)6f7264
Cache.Short:0:*:5a5a??5a5a
";

/// Logical signatures of every compiled form: counts, modifiers, a regex,
/// a byte compare, a target description.
const LDB: &str = "\
Cache.Ldb.Count;Target:0;0>1&1;6c64622d61;(62|63)6c64622d
Cache.Ldb.Nocase;Target:0;0;6e6f63617365::i
Cache.Ldb.Wide;Target:0;0;77696465::wf
Cache.Ldb.Pcre;Engine:81-255,Target:0;0&1;7265676578;0/regex=\\d{3}/g
Cache.Ldb.Bcomp;Engine:81-255,Target:0;0&1;6e756d3d;0(>>4#de3#>99,<200)
Cache.Ldb.Tdb;Engine:81-255,Target:0,FileSize:5-40,Container:CL_TYPE_ANY;0;7464622d6d61726b
Cache.Ldb.Chain;Target:0;0=2;63686e41*63686e42
";

fn sample_files() -> Vec<Vec<u8>> {
    vec![
        b"xxABCDEFxx".to_vec(),
        b"ABxDzzGH....JKLM".to_vec(),
        b"0123456789cdefghiXYZ".to_vec(),
        b"\xff\xff\xff\xff\x05zzzzzzz".to_vec(),
        b"a wordwv!ord here".to_vec(),
        // Six bytes: ClamAV ignores files of five or fewer.
        b"ZZ\x00ZZ!".to_vec(),
        b"nothing to see".to_vec(),
        b"ldb-a ldb-a cldb-".to_vec(),
        b"a NoCaSe word".to_vec(),
        b"x w\x00i\x00d\x00e\x00 \x00".to_vec(),
        b"regex=123 regex=4567".to_vec(),
        b"xxnum=150 ".to_vec(),
        b"xxnum=250 ".to_vec(),
        b"a tdb-mark".to_vec(),
        // Two completions of one chain: counted 2 as ClamAV counts parts.
        b"chnA.chnB.chnB".to_vec(),
        // Two starts, one completion: 1.
        b"chnA.chnA.chnB".to_vec(),
    ]
}

fn detections(engine: &Engine) -> Vec<Vec<String>> {
    let limits = Limits {
        all_match: true,
        ..Limits::default()
    };
    let mut scanner = engine.scanner();
    sample_files()
        .iter()
        .map(|f| {
            let o = scanner.scan_bytes(f, &limits).expect("scan");
            o.detections.into_iter().map(|d| d.name).collect()
        })
        .collect()
}

fn setup() -> (tempfile::TempDir, DbSources, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db");
    std::fs::create_dir(&db).expect("db dir");
    std::fs::write(db.join("cache.ndb"), NDB).expect("ndb");
    std::fs::write(db.join("cache.ldb"), LDB).expect("ldb");
    let md5 = format!("{:x}", md5_of(b"hash me"));
    std::fs::write(db.join("cache.hdb"), format!("{md5}:7:Cache.Md5\n")).expect("hdb");
    let cache = dir.path().join("cache");
    let sources = DbSources {
        builtin: true,
        paths: vec![db],
    };
    (dir, sources, cache)
}

fn md5_of(data: &[u8]) -> u128 {
    use md5::{Digest, Md5};
    u128::from_be_bytes(Md5::digest(data).into())
}

fn only_cache_file(cache: &Path) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(cache)
        .expect("cache dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn cache_round_trip_gives_the_same_engine() {
    let (_dir, sources, cache) = setup();
    let first = load_cached(&sources, LoadOptions::default(), Some(&cache)).expect("first load");
    assert!(!first.from_cache);
    assert_eq!(first.cache_problem, None);
    let second = load_cached(&sources, LoadOptions::default(), Some(&cache)).expect("second load");
    assert!(second.from_cache, "{:?}", second.cache_problem);
    assert_eq!(
        first.engine.signature_count(),
        second.engine.signature_count()
    );
    assert_eq!(first.report.loaded(), second.report.loaded());
    assert_eq!(first.report.files.len(), second.report.files.len());
    let want = detections(&first.engine);
    assert_eq!(want, detections(&second.engine));
    // The sample files exercise every signature.
    let all: Vec<&String> = want.iter().flatten().collect();
    for name in [
        "Cache.Exact",
        "Cache.Wild",
        "Cache.Alt",
        "Cache.Neg",
        "Cache.Class",
        "Cache.Short",
        "Cache.Ldb.Count",
        "Cache.Ldb.Nocase",
        "Cache.Ldb.Wide",
        "Cache.Ldb.Pcre",
        "Cache.Ldb.Bcomp",
        "Cache.Ldb.Tdb",
        "Cache.Ldb.Chain",
    ] {
        assert!(
            all.iter().any(|n| n.starts_with(name)),
            "{name} not detected: {want:?}"
        );
    }
    // The chain's count is the completions' (2), not the starts' (also 2 on
    // the other file): only the first file has it.
    let n = want.len();
    let chain = |i: usize| want[i].iter().any(|d| d.starts_with("Cache.Ldb.Chain"));
    assert!(chain(n - 2) && !chain(n - 1), "{want:?}");
    let mut scanner = second.engine.scanner();
    let o = scanner
        .scan_bytes(b"hash me", &Limits::default())
        .expect("scan");
    assert_eq!(o.detections[0].name, "Cache.Md5.UNOFFICIAL");
    // Logical signatures count as loaded, none is left unsupported.
    assert!(
        second.report.unsupported().is_empty(),
        "{:?}",
        second.report.unsupported()
    );
    // The byte compare rejects 250, the wide word needs a boundary.
    assert_eq!(want[12], Vec::<String>::new());
}

#[test]
fn changed_database_is_recompiled() {
    let (_dir, sources, cache) = setup();
    load_cached(&sources, LoadOptions::default(), Some(&cache)).expect("first load");
    let db = &sources.paths[0];
    std::fs::write(
        db.join("more.ndb"),
        "Cache.New:0:*:6e65772d7369676e6174757265\n",
    )
    .expect("ndb");
    let again = load_cached(&sources, LoadOptions::default(), Some(&cache)).expect("reload");
    assert!(!again.from_cache);
    assert_eq!(again.cache_problem, None);
    let mut scanner = again.engine.scanner();
    let o = scanner
        .scan_bytes(b"a new-signature here", &Limits::default())
        .expect("scan");
    assert_eq!(o.detections[0].name, "Cache.New.UNOFFICIAL");
    // And the rewritten cache serves the new database.
    assert!(
        load_cached(&sources, LoadOptions::default(), Some(&cache))
            .expect("third")
            .from_cache
    );
}

#[test]
fn damaged_cache_is_reported_and_rebuilt() {
    let (_dir, sources, cache) = setup();
    let good = load_cached(&sources, LoadOptions::default(), Some(&cache)).expect("first load");
    let want = detections(&good.engine);
    let file = only_cache_file(&cache);
    let bytes = std::fs::read(&file).expect("read cache");
    // Deterministic corruptions: truncations and bit flips all over the file.
    let mut state = 0x1234_5678_9abc_def0u64;
    for round in 0..64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut bad = bytes.clone();
        // A flip inside the fingerprint (after the 8-byte magic and 4-byte
        // version) makes the cache look stale: recompiled without a warning.
        let mut in_fingerprint = false;
        if round % 4 == 0 {
            bad.truncate((state as usize) % bytes.len());
        } else {
            let at = (state as usize) % bytes.len();
            bad[at] ^= 1 << ((state >> 60) % 8);
            in_fingerprint = (12..44).contains(&at);
        }
        std::fs::write(&file, &bad).expect("write damaged cache");
        let loaded = load_cached(&sources, LoadOptions::default(), Some(&cache))
            .expect("load survives damage");
        if !loaded.from_cache && !in_fingerprint {
            assert!(
                loaded.cache_problem.is_some(),
                "round {round}: damage not reported"
            );
        }
        // Whatever was loaded scans without panicking; a rebuilt engine is exact.
        let got = detections(&loaded.engine);
        if !loaded.from_cache {
            assert_eq!(got, want);
        }
    }
}

#[test]
fn cache_writable_by_others_is_refused() {
    let (_dir, sources, cache) = setup();
    load_cached(&sources, LoadOptions::default(), Some(&cache)).expect("first load");
    let file = only_cache_file(&cache);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let loaded = load_cached(&sources, LoadOptions::default(), Some(&cache)).expect("load");
    assert!(!loaded.from_cache);
    let problem = loaded.cache_problem.expect("refusal reported");
    assert!(problem.contains("not a private file"), "{problem}");
}
