//! YARA through the CLI: --yara-define for the rule files of database
//! directories, and the compiled rules kept with the compiled database.

mod util;

use util::Dir;

const DB_RULES: &[u8] =
    b"rule Db_Tag { strings: $a = \"marker\" condition: $a and tag == \"x\" }\n";

#[test]
fn yara_define_applies_to_database_rule_files() {
    let dir = Dir::new();
    dir.write("db/rules.yar", DB_RULES);
    dir.write("f.txt", b"a marker here\n");
    let scan = |defines: &[&str]| {
        let mut args = vec!["scan", "--no-summary", "-d", "db"];
        for d in defines {
            args.extend(["--yara-define", d]);
        }
        args.push("f.txt");
        dir.run(&args)
    };
    let run = scan(&["tag=x"]);
    assert_eq!(run.code(), 1, "{}", run.debug());
    assert_eq!(run.lines(), ["f.txt: YARA.Db_Tag.UNOFFICIAL FOUND"]);
    let run = scan(&["tag=y"]);
    assert_eq!(run.code(), 0, "{}", run.debug());
    assert_eq!(run.lines(), ["f.txt: OK"]);
    // Undefined, the database's rule does not compile; the error names it.
    let run = scan(&[]);
    assert_eq!(run.code(), 2, "{}", run.debug());
    assert!(run.stderr().contains("tag"), "{}", run.debug());
    // A definition with no rules at all is an error, not silently unused.
    dir.write("empty/x.ndb", b"Some.Sig:0:*:0102030405060708\n");
    let run = dir.run(&["scan", "-d", "empty", "--yara-define", "tag=x", "f.txt"]);
    assert_eq!(run.code(), 2, "{}", run.debug());
    assert!(
        run.stderr().contains("no YARA rules are loaded"),
        "{}",
        run.debug()
    );
}

#[test]
fn yara_rules_are_cached_with_the_compiled_database() {
    let dir = Dir::new();
    dir.write("db/rules.yar", DB_RULES);
    let extra = dir.write(
        "extra.yara",
        b"rule Extra { strings: $a = \"other\" condition: $a }\n",
    );
    dir.write("f.txt", b"a marker and other\n");
    let extra = extra.to_str().unwrap();
    let args = |cmd: &[&'static str], tag: &'static str| {
        let mut a: Vec<&str> = cmd.to_vec();
        a.extend(["-d", "db", "--db-cache", "cache", "--yara-define", tag]);
        a.extend(["--yara-rules", extra]);
        a
    };
    let info = |tag| dir.run(&args(&["db", "info"], tag));
    let first = info("tag=x");
    assert_eq!(first.code(), 0, "{}", first.debug());
    assert!(
        first
            .stdout()
            .contains("(parsed and compiled; YARA rules compiled)"),
        "{}",
        first.debug()
    );
    let second = info("tag=x");
    assert!(
        second
            .stdout()
            .contains("(read from the compiled cache; YARA rules read from their cache)"),
        "{}",
        second.debug()
    );
    assert_eq!(second.stderr(), "", "{}", second.debug());
    // A scan through both caches finds what a scan without them finds.
    let mut cached = args(&["scan", "--no-summary", "--allmatch"], "tag=x");
    cached.push("f.txt");
    let run = dir.run(&cached);
    assert_eq!(run.code(), 1, "{}", run.debug());
    let want = [
        "f.txt: YARA.Db_Tag.UNOFFICIAL FOUND",
        "f.txt: YARA.Extra.UNOFFICIAL FOUND",
    ];
    assert_eq!(run.lines(), want);
    let run = dir.run(&[
        "scan",
        "--no-summary",
        "--allmatch",
        "-d",
        "db",
        "--no-db-cache",
        "--yara-define",
        "tag=x",
        "--yara-rules",
        extra,
        "f.txt",
    ]);
    assert_eq!(run.lines(), want, "{}", run.debug());
    // Another definition compiles again.
    let other = info("tag=y");
    assert!(
        other.stdout().contains("YARA rules compiled)"),
        "{}",
        other.debug()
    );
    // A damaged rules cache is a warning, and the scan still right.
    let cache_file = std::fs::read_dir(dir.join("cache"))
        .expect("cache dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "yarac"))
        .expect("a YARA cache file");
    let mut bytes = std::fs::read(&cache_file).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&cache_file, bytes).expect("damage");
    let mut damaged = args(&["scan", "--no-summary", "--allmatch"], "tag=y");
    damaged.push("f.txt");
    let run = dir.run(&damaged);
    assert_eq!(run.lines(), ["f.txt: YARA.Extra.UNOFFICIAL FOUND"]);
    assert!(
        run.stderr()
            .starts_with("WARNING: database cache: YARA rules: "),
        "{}",
        run.debug()
    );
    assert!(run.stderr().contains("checksum"), "{}", run.debug());
}
