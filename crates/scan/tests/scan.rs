//! The scan library on real files: walking rules, awkward files, threads.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use aether_engine::{DbSources, Engine};
use aether_scan::{
    Entry, EntryError, FileScanner, Outcome, PathFilter, ScanOptions, Sink, Target, Verdict, scan,
};

const HELLO: &[u8] = b"hello scan crate\n";

fn engine(dir: &Path) -> Engine {
    let out = Command::new("md5sum")
        .arg(dir.join("probe"))
        .output()
        .expect("md5sum");
    let md5 = String::from_utf8(out.stdout).unwrap()[..32].to_string();
    let db = dir.join("test.hdb");
    fs::write(&db, format!("{md5}:{}:Test.Hello\n", HELLO.len())).unwrap();
    let sources = DbSources {
        builtin: false,
        paths: vec![db],
    };
    aether_engine::load(&sources, aether_sigs::LoadOptions::default())
        .expect("load")
        .0
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    engine: Engine,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dbdir = tmp.path().join("db");
    fs::create_dir(&dbdir).unwrap();
    fs::write(dbdir.join("probe"), HELLO).unwrap();
    let engine = engine(&dbdir);
    let root = tmp.path().join("t");
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    fs::write(root.join("hello"), HELLO).unwrap();
    fs::write(root.join("clean"), b"clean\n").unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("sub/hello2"), HELLO).unwrap();
    fs::write(root.join("sub/deeper/hello3"), HELLO).unwrap();
    Fixture {
        _tmp: tmp,
        root,
        engine,
    }
}

fn opts(threads: usize) -> ScanOptions {
    ScanOptions {
        threads,
        ..ScanOptions::default()
    }
}

fn names(entries: &[Entry], root: &Path) -> Vec<(String, Verdict)> {
    let mut v: Vec<(String, Verdict)> = entries
        .iter()
        .map(|e| {
            let p = e
                .target
                .path()
                .map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string());
            (p.unwrap_or_else(|| "-".into()), e.verdict())
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn without_recursion_subdirectories_are_not_entered() {
    let f = fixture();
    let mut entries: Vec<Entry> = Vec::new();
    let stats = scan(
        &f.engine,
        &[Target::Path(f.root.clone())],
        &opts(1),
        &mut entries,
    )
    .unwrap();
    assert_eq!(
        names(&entries, &f.root),
        vec![
            ("clean".into(), Verdict::Clean),
            ("empty".into(), Verdict::Skipped),
            ("hello".into(), Verdict::Infected)
        ]
    );
    assert_eq!(
        (stats.directories, stats.files, stats.infected, stats.errors),
        (1, 2, 1, 0)
    );
    assert_eq!(stats.exit_code(), 1);
}

#[test]
fn recursion_and_dir_depth() {
    let f = fixture();
    let mut o = opts(1);
    o.recursive = true;
    let mut entries: Vec<Entry> = Vec::new();
    let stats = scan(&f.engine, &[Target::Path(f.root.clone())], &o, &mut entries).unwrap();
    assert_eq!(stats.directories, 3);
    assert_eq!(stats.infected, 3);

    // max_dir_recursion 2: the top directory and one level below.
    o.max_dir_recursion = 2;
    let mut entries: Vec<Entry> = Vec::new();
    let stats = scan(&f.engine, &[Target::Path(f.root.clone())], &o, &mut entries).unwrap();
    assert_eq!(stats.directories, 2);
    assert_eq!(stats.infected, 2);
}

#[test]
fn threads_give_the_same_entries_and_stats() {
    let f = fixture();
    for i in 0..100 {
        fs::write(
            f.root.join(format!("sub/f{i}")),
            if i % 10 == 0 { HELLO } else { b"x\n" },
        )
        .unwrap();
    }
    let mut results = Vec::new();
    for threads in [1, 2, 8] {
        let mut o = opts(threads);
        o.recursive = true;
        let mut entries: Vec<Entry> = Vec::new();
        let stats = scan(&f.engine, &[Target::Path(f.root.clone())], &o, &mut entries).unwrap();
        results.push((names(&entries, &f.root), stats));
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
    assert_eq!(results[0].1.infected, 13);
}

#[test]
fn exclude_matches_real_path_and_exclude_dir_the_walked_path() {
    let f = fixture();
    let mut o = opts(1);
    o.recursive = true;
    // The real path is absolute: a pattern anchored on the walked (relative
    // or absolute) path would behave differently.
    o.exclude = vec![PathFilter::new("/t/hello$").unwrap()];
    o.exclude_dir = vec![PathFilter::new("sub/deeper$").unwrap()];
    let mut entries: Vec<Entry> = Vec::new();
    scan(&f.engine, &[Target::Path(f.root.clone())], &o, &mut entries).unwrap();
    let got = names(&entries, &f.root);
    assert!(got.contains(&("hello".into(), Verdict::Skipped)), "{got:?}");
    assert!(
        got.contains(&("sub/deeper".into(), Verdict::Skipped)),
        "{got:?}"
    );
    assert!(
        got.contains(&("sub/hello2".into(), Verdict::Infected)),
        "{got:?}"
    );
    assert!(
        !got.iter().any(|(p, _)| p == "sub/deeper/hello3"),
        "{got:?}"
    );
}

/// A sink that deletes a file the first time it sees another one: the walk
/// then meets a name whose file is gone.
struct DeleteOnFirst {
    victim: PathBuf,
    done: bool,
    entries: Vec<Entry>,
}

impl Sink for DeleteOnFirst {
    fn entry(&mut self, entry: &Entry) -> io::Result<()> {
        if !self.done && entry.target.path() != Some(self.victim.as_path()) {
            fs::remove_file(&self.victim)?;
            self.done = true;
        }
        self.entries.entry(entry)
    }
}

#[test]
fn file_vanishing_during_the_walk_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("probe"), HELLO).unwrap();
    let engine = engine(tmp.path());
    let dir = tmp.path().join("t");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("a"), b"a\n").unwrap();
    fs::write(dir.join("b"), b"b\n").unwrap();
    // Which of the two comes first is readdir's choice; delete the other.
    let first = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    let victim = if first.ends_with("a") {
        dir.join("b")
    } else {
        dir.join("a")
    };
    let mut sink = DeleteOnFirst {
        victim: victim.clone(),
        done: false,
        entries: Vec::new(),
    };
    let stats = scan(&engine, &[Target::Path(dir.clone())], &opts(1), &mut sink).unwrap();
    let gone = sink
        .entries
        .iter()
        .find(|e| e.target.path() == Some(victim.as_path()))
        .expect("victim reported");
    match &gone.outcome {
        Outcome::Error(EntryError::Stat(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
        other => panic!("expected a stat error, got {other:?}"),
    }
    assert_eq!(stats.errors, 1);
    assert_eq!(stats.files, 1);
    assert_eq!(stats.exit_code(), 2);
}

#[test]
fn file_vanishing_before_open_is_an_open_error() {
    let f = fixture();
    let o = opts(1);
    let mut scanner = FileScanner::new(&f.engine, &o);
    let path = f.root.join("clean");
    fs::remove_file(&path).unwrap();
    match scanner.scan_path(&path) {
        Outcome::Error(EntryError::Open(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
        other => panic!("expected an open error, got {other:?}"),
    }
}

#[test]
fn fifo_replacing_a_file_is_not_read() {
    // The walker saw a regular file; by the time a scanner opens the path it
    // is a FIFO with no writer. O_NONBLOCK makes the open return at once, and
    // the descriptor's type is checked before reading.
    let f = fixture();
    let path = f.root.join("clean");
    fs::remove_file(&path).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
    let o = opts(1);
    let mut scanner = FileScanner::new(&f.engine, &o);
    assert!(matches!(scanner.scan_path(&path), Outcome::Special));
}

#[test]
fn symlink_loops_terminate() {
    let f = fixture();
    symlink("..", f.root.join("sub/up")).unwrap();
    symlink("loop2", f.root.join("loop1")).unwrap();
    symlink("loop1", f.root.join("loop2")).unwrap();
    let mut o = opts(2);
    o.recursive = true;
    o.follow_dir_symlinks = aether_scan::FollowSymlinks::Always;
    o.follow_file_symlinks = aether_scan::FollowSymlinks::Always;
    let mut entries: Vec<Entry> = Vec::new();
    let stats = scan(&f.engine, &[Target::Path(f.root.clone())], &o, &mut entries).unwrap();
    let got = names(&entries, &f.root);
    assert!(got.contains(&("sub/up".into(), Verdict::Error)), "{got:?}");
    assert!(got.contains(&("loop1".into(), Verdict::Skipped)), "{got:?}");
    assert_eq!(stats.infected, 3);

    // A loop given by name is an error naming it, not a hang.
    let mut entries: Vec<Entry> = Vec::new();
    scan(
        &f.engine,
        &[Target::Path(f.root.join("loop1"))],
        &o,
        &mut entries,
    )
    .unwrap();
    assert!(matches!(
        &entries[0].outcome,
        Outcome::Error(EntryError::Inaccessible(_))
    ));
}

#[test]
fn a_failing_sink_stops_the_scan() {
    struct Fails(usize);
    impl Sink for Fails {
        fn entry(&mut self, _: &Entry) -> io::Result<()> {
            self.0 += 1;
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
    }
    let f = fixture();
    for i in 0..50 {
        fs::write(f.root.join(format!("f{i}")), b"x\n").unwrap();
    }
    for threads in [1, 4] {
        let mut sink = Fails(0);
        let err = scan(
            &f.engine,
            &[Target::Path(f.root.clone())],
            &opts(threads),
            &mut sink,
        )
        .unwrap_err();
        assert_eq!(err.source.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(sink.0, 1, "no entry is pushed after the sink failed");
    }
}

#[test]
fn max_filesize_is_checked_without_opening() {
    let f = fixture();
    let mut o = opts(1);
    o.limits.max_filesize = 4;
    let mut entries: Vec<Entry> = Vec::new();
    let stats = scan(
        &f.engine,
        &[Target::Path(f.root.join("hello"))],
        &o,
        &mut entries,
    )
    .unwrap();
    match &entries[0].outcome {
        Outcome::Scanned(s) => {
            assert!(s.signatures.is_empty());
            assert_eq!(s.limit, Some(aether_engine::LimitExceeded::MaxFileSize));
            assert_eq!(s.bytes_scanned, 0);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(stats.files, 1);
    o.alert_exceeds_max = true;
    let mut entries: Vec<Entry> = Vec::new();
    scan(
        &f.engine,
        &[Target::Path(f.root.join("hello"))],
        &o,
        &mut entries,
    )
    .unwrap();
    assert_eq!(entries[0].verdict(), Verdict::Infected);
}

#[test]
fn results_come_in_walk_order_on_any_number_of_threads() {
    let f = fixture();
    // Big files first in the walk make later small ones finish earlier.
    for i in 0..40 {
        let size = if i % 5 == 0 { 2 << 20 } else { 10 };
        fs::write(f.root.join(format!("sub/f{i:02}")), vec![b'x'; size]).unwrap();
    }
    let mut o = opts(1);
    o.recursive = true;
    let order = |o: &ScanOptions| {
        let mut entries: Vec<Entry> = Vec::new();
        scan(&f.engine, &[Target::Path(f.root.clone())], o, &mut entries).unwrap();
        entries
            .iter()
            .map(|e| e.target.path().unwrap().to_path_buf())
            .collect::<Vec<_>>()
    };
    let one = order(&o);
    o.threads = 4;
    for _ in 0..5 {
        assert_eq!(order(&o), one);
    }
    // Unordered: the same set.
    o.ordered = false;
    let mut any = order(&o);
    let mut sorted = one.clone();
    any.sort();
    sorted.sort();
    assert_eq!(any, sorted);
}
