//! End-to-end tests of `aether scan` and `aether db info`: output lines,
//! summary, exit codes, JSON, walking rules and awkward files.

mod util;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use util::*;

#[test]
fn clean_file_is_ok_and_exits_0() {
    let dir = Dir::new();
    let db = dir.hdb();
    dir.write("clean.txt", b"nothing to see\n");
    let run = dir.run(&["scan", "-d", db.to_str().unwrap(), "clean.txt"]);
    assert_eq!(run.code(), 0, "{}", run.debug());
    assert_eq!(run.lines(), vec!["clean.txt: OK"]);
    assert_eq!(run.summary_value("Scanned files").as_deref(), Some("1"));
    assert_eq!(run.summary_value("Infected files").as_deref(), Some("0"));
    assert_eq!(run.stderr(), "");
}

#[test]
fn hdb_detection_exits_1() {
    let dir = Dir::new();
    let db = dir.hdb();
    dir.write("hello.txt", HELLO);
    let run = dir.run(&["scan", "-d", db.to_str().unwrap(), "hello.txt"]);
    assert_eq!(run.code(), 1, "{}", run.debug());
    let lines = run.lines();
    assert_eq!(lines.len(), 1, "{}", run.debug());
    assert!(
        is_found(&lines[0], "hello.txt", HELLO_SIG),
        "{}",
        run.debug()
    );
    assert_eq!(run.summary_value("Infected files").as_deref(), Some("1"));
    assert_eq!(run.summary_value("Known viruses").as_deref(), Some("1"));
}

#[test]
fn builtin_database_finds_eicar() {
    let dir = Dir::new();
    dir.write("eicar.com", &eicar());
    let run = dir.run(&["scan", "--no-summary", "eicar.com"]);
    assert_eq!(run.code(), 1, "{}", run.debug());
    let line = run.lines().join("\n");
    assert!(
        line.starts_with("eicar.com: ") && line.ends_with(" FOUND"),
        "{}",
        run.debug()
    );
    assert!(line.contains("Eicar"), "{}", run.debug());
}

#[test]
fn missing_file_is_an_error_as_clamscan() {
    let dir = Dir::new();
    let db = dir.hdb();
    let run = dir.run(&["scan", "-d", db.to_str().unwrap(), "nonexist"]);
    assert_eq!(run.code(), 2, "{}", run.debug());
    assert_eq!(
        run.stderr(),
        "nonexist: No such file or directory\nWARNING: nonexist: Can't access file\n"
    );
    assert!(run.lines().is_empty(), "{}", run.debug());
    // clamscan does not count a missing argument in "Total errors".
    assert_eq!(run.summary_value("Total errors"), None);
    assert_eq!(run.summary_value("Scanned files").as_deref(), Some("0"));
}

#[test]
fn infection_wins_over_errors() {
    let dir = Dir::new();
    let db = dir.hdb();
    dir.write("hello.txt", HELLO);
    let run = dir.run(&[
        "scan",
        "-d",
        db.to_str().unwrap(),
        "--no-summary",
        "nonexist",
        "hello.txt",
    ]);
    assert_eq!(run.code(), 1, "{}", run.debug());
    assert!(
        run.stderr()
            .contains("WARNING: nonexist: Can't access file")
    );
}

#[test]
fn infected_only_and_suppress_ok() {
    let dir = Dir::new();
    let db = dir.hdb();
    dir.write("t/hello.txt", HELLO);
    dir.write("t/clean.txt", b"clean\n");
    dir.write("t/empty", b"");
    let db = db.to_str().unwrap();

    let all = dir.run(&["scan", "-d", db, "--no-summary", "-j1", "t"]);
    let mut lines = all.lines();
    lines.sort();
    assert_eq!(lines.len(), 3, "{}", all.debug());
    assert_eq!(lines[0], "t/clean.txt: OK");
    assert_eq!(lines[1], "t/empty: Empty file");
    assert!(is_found(&lines[2], "t/hello.txt", HELLO_SIG));

    let infected = dir.run(&["scan", "-d", db, "--no-summary", "-i", "t"]);
    let lines = infected.lines();
    assert_eq!(lines.len(), 1, "{}", infected.debug());
    assert!(is_found(&lines[0], "t/hello.txt", HELLO_SIG));

    let no_ok = dir.run(&["scan", "-d", db, "--no-summary", "-o", "t"]);
    let mut lines = no_ok.lines();
    lines.sort();
    assert_eq!(lines.len(), 2, "{}", no_ok.debug());
    assert_eq!(lines[0], "t/empty: Empty file");
    assert!(is_found(&lines[1], "t/hello.txt", HELLO_SIG));
}

#[test]
fn summary_block_has_clamscans_lines() {
    let dir = Dir::new();
    let db = dir.hdb();
    dir.write("t/hello.txt", HELLO);
    dir.write("t/sub/big.bin", &vec![7u8; 3 * 1024 * 1024]);
    let run = dir.run(&["scan", "-d", db.to_str().unwrap(), "-r", "t"]);
    assert_eq!(run.code(), 1, "{}", run.debug());
    let summary = run.summary();
    let keys: Vec<&str> = summary.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "Known viruses",
            "Engine version",
            "Scanned directories",
            "Scanned files",
            "Infected files",
            "Data scanned",
            "Data read",
            "Time",
            "Start Date",
            "End Date"
        ]
    );
    let value = |k: &str| run.summary_value(k).unwrap();
    assert_eq!(value("Engine version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(value("Scanned directories"), "2");
    assert_eq!(value("Scanned files"), "2");
    assert_eq!(value("Infected files"), "1");
    assert_eq!(value("Data read"), "3.00 MB (ratio 1.00:1)");
    assert_eq!(value("Data scanned"), "3.00 MB");
    let time = value("Time");
    let (secs, rest) = time.split_once(" sec (").expect("Time format");
    let (whole, millis) = secs.split_once('.').expect("seconds with millis");
    assert!(whole.parse::<u64>().is_ok() && millis.len() == 3, "{time}");
    assert!(rest.ends_with(" s)") && rest.contains(" m "), "{time}");
    for key in ["Start Date", "End Date"] {
        let d = value(key);
        // %Y:%m:%d %H:%M:%S
        assert_eq!(d.len(), 19, "{d}");
        assert_eq!(&d[4..5], ":");
        assert_eq!(&d[10..11], " ");
    }
    // "End Date:" is padded to line up with "Start Date:", as clamscan.
    assert!(run.stdout().contains("\nEnd Date:   "));
}

#[test]
fn no_summary() {
    let dir = Dir::new();
    let db = dir.hdb();
    dir.write("clean.txt", b"x\n");
    let run = dir.run(&[
        "scan",
        "-d",
        db.to_str().unwrap(),
        "--no-summary",
        "clean.txt",
    ]);
    assert_eq!(run.stdout(), "clean.txt: OK\n");
}

#[test]
fn total_errors_line_counts_errors() {
    let dir = Dir::new();
    let db = dir.hdb();
    // A loop with --follow-dir-symlinks=2 is a counted error.
    dir.mkdir("t/a");
    std::os::unix::fs::symlink("..", dir.join("t/a/up")).unwrap();
    let run = dir.run(&[
        "scan",
        "-d",
        db.to_str().unwrap(),
        "-r",
        "--follow-dir-symlinks=2",
        "t",
    ]);
    assert_eq!(run.code(), 2, "{}", run.debug());
    assert_eq!(
        run.summary_value("Total errors").as_deref(),
        Some("1"),
        "{}",
        run.debug()
    );
    assert!(
        run.stderr()
            .contains("WARNING: t/a/up: Symbolic link loop, not entered"),
        "{}",
        run.debug()
    );
}

#[test]
fn json_lines_follow_the_schema() {
    let dir = Dir::new();
    let db = dir.hdb();
    dir.write("t/hello.txt", HELLO);
    dir.write("t/clean.txt", b"clean\n");
    dir.write("t/empty", b"");
    let run = dir.run(&["scan", "-d", db.to_str().unwrap(), "--json", "t", "missing"]);
    assert_eq!(run.code(), 1, "{}", run.debug());
    let objects: Vec<serde_json::Value> = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(objects.len(), 5, "{}", run.debug());
    let (files, summary) = objects.split_at(4);
    for f in files {
        assert_eq!(f["type"], "file");
        for key in [
            "path",
            "verdict",
            "signatures",
            "size",
            "bytes_scanned",
            "file_type",
            "limit",
            "reason",
            "error",
        ] {
            assert!(f.get(key).is_some(), "missing {key} in {f}");
        }
        assert!(f["path"].is_string());
        assert!(f["signatures"].is_array());
        assert!(
            ["clean", "infected", "error", "skipped"].contains(&f["verdict"].as_str().unwrap())
        );
    }
    let by_path = |p: &str| {
        files
            .iter()
            .find(|f| f["path"] == p)
            .unwrap_or_else(|| panic!("no {p}"))
    };
    let hello = by_path("t/hello.txt");
    assert_eq!(hello["verdict"], "infected");
    let sig = hello["signatures"][0].as_str().unwrap();
    assert!(sig.starts_with(HELLO_SIG));
    assert_eq!(hello["size"], HELLO.len() as u64);
    assert!(hello["file_type"].is_string());
    assert_eq!(by_path("t/clean.txt")["verdict"], "clean");
    assert_eq!(by_path("t/clean.txt")["signatures"], serde_json::json!([]));
    assert_eq!(by_path("t/empty")["verdict"], "skipped");
    assert_eq!(by_path("t/empty")["reason"], "empty");
    let missing = by_path("missing");
    assert_eq!(missing["verdict"], "error");
    assert_eq!(
        missing["error"],
        "can't access file: No such file or directory"
    );

    let s = &summary[0];
    assert_eq!(s["type"], "summary");
    assert_eq!(s["scanned_files"], 2);
    assert_eq!(s["infected_files"], 1);
    assert_eq!(s["scanned_directories"], 1);
    assert_eq!(s["failed_arguments"], 1);
    assert_eq!(s["exit_code"], 1);
    assert!(s["time_seconds"].is_f64());
    assert!(s["start_time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn exclude_and_include_regexes() {
    let dir = Dir::new();
    let db = dir.hdb();
    dir.write("t/a.txt", b"a\n");
    dir.write("t/b.log", b"b\n");
    dir.write("t/sub/c.txt", b"c\n");
    let db = db.to_str().unwrap();

    let run = dir.run(&[
        "scan",
        "-d",
        db,
        "--no-summary",
        "-r",
        "-j1",
        r"--exclude=\.log$",
        "--exclude-dir=^t/sub$",
        "t",
    ]);
    let mut lines = run.lines();
    lines.sort();
    assert_eq!(
        lines,
        vec!["t/a.txt: OK", "t/b.log: Excluded", "t/sub: Excluded"],
        "{}",
        run.debug()
    );
    assert_eq!(run.code(), 0);

    let run = dir.run(&[
        "scan",
        "-d",
        db,
        "--no-summary",
        "-r",
        r"--include=\.txt$",
        "t",
    ]);
    let mut lines = run.lines();
    lines.sort();
    assert_eq!(
        lines,
        vec!["t/a.txt: OK", "t/b.log: Excluded", "t/sub/c.txt: OK"],
        "{}",
        run.debug()
    );

    // -i hides "Excluded" lines, as clamscan.
    let run = dir.run(&[
        "scan",
        "-d",
        db,
        "--no-summary",
        "-i",
        r"--exclude=\.log$",
        "t",
    ]);
    assert_eq!(run.stdout(), "");

    // A bad regex is a usage error.
    let run = dir.run(&["scan", "-d", db, "--exclude=(", "t"]);
    assert_eq!(run.code(), 2);
}

#[test]
fn recursion_only_with_r() {
    let dir = Dir::new();
    let db = dir.hdb();
    dir.write("t/top.txt", b"top\n");
    dir.write("t/sub/deep.txt", HELLO);
    let db = db.to_str().unwrap();
    let flat = dir.run(&["scan", "-d", db, "t"]);
    assert_eq!(flat.lines(), vec!["t/top.txt: OK"], "{}", flat.debug());
    assert_eq!(flat.code(), 0);
    assert_eq!(
        flat.summary_value("Scanned directories").as_deref(),
        Some("1")
    );

    let deep = dir.run(&["scan", "-d", db, "-r", "t/"]);
    assert_eq!(deep.code(), 1, "{}", deep.debug());
    assert_eq!(
        deep.summary_value("Scanned directories").as_deref(),
        Some("2")
    );
    assert!(
        deep.lines()
            .iter()
            .any(|l| is_found(l, "t/sub/deep.txt", HELLO_SIG)),
        "{}",
        deep.debug()
    );
}

#[test]
fn fifo_is_never_opened() {
    let dir = Dir::new();
    let db = dir.hdb();
    dir.write("t/a.txt", b"a\n");
    let status = Command::new("mkfifo")
        .arg(dir.join("t/pipe"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let db = db.to_str().unwrap();
    // In a directory: skipped silently (clamscan prints nothing). A blocked
    // open would hang and trip the 60 s bound in `run`.
    let run = dir.run(&["scan", "-d", db, "--no-summary", "t"]);
    assert_eq!(run.code(), 0, "{}", run.debug());
    assert_eq!(run.lines(), vec!["t/a.txt: OK"]);
    // JSON says it was skipped.
    let run = dir.run(&["scan", "-d", db, "--no-summary", "--json", "t"]);
    assert_eq!(run.code(), 0, "{}", run.debug());
    let pipe = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["path"] == "t/pipe")
        .expect("an object for the FIFO");
    assert_eq!(pipe["verdict"], "skipped");
    assert_eq!(pipe["reason"], "special");
    // On the command line: an error, as clamscan.
    let run = dir.run(&["scan", "-d", db, "--no-summary", "t/pipe"]);
    assert_eq!(run.code(), 2, "{}", run.debug());
    assert_eq!(run.stderr(), "WARNING: t/pipe: Not supported file type\n");
}

#[test]
fn unreadable_file_is_access_denied() {
    let dir = Dir::new();
    let db = dir.hdb();
    let secret = dir.write("t/secret", b"secret\n");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let closed = dir.mkdir("t/closed");
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o000)).unwrap();
    let args = ["scan", "-d", db.to_str().unwrap(), "-r", "t"];
    let run = if is_root() {
        // Root reads everything; drop to nobody, as clamscan's own check
        // would only bite for a non-root user.
        let Some(setpriv) = which("setpriv") else {
            eprintln!("SKIPPED unreadable_file_is_access_denied: running as root without setpriv");
            return;
        };
        for p in [dir.path(), &dir.join("t"), &dir.join("db"), &db] {
            let mode = if p.is_dir() { 0o755 } else { 0o644 };
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        // The build directory may not be reachable for nobody; a copy is.
        let bin = dir.join("aether-bin");
        std::fs::copy(BIN, &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        run_cmd(
            Command::new(setpriv)
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&bin)
                .args(args)
                .current_dir(dir.path()),
            None,
        )
    } else {
        dir.run(&args)
    };
    assert_eq!(run.code(), 2, "{}", run.debug());
    let mut lines = run.lines();
    lines.sort();
    assert_eq!(
        lines,
        vec!["t/closed: Can't open directory.", "t/secret: Access denied"],
        "{}",
        run.debug()
    );
    assert_eq!(run.summary_value("Total errors").as_deref(), Some("2"));
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn non_utf8_name_is_escaped() {
    let dir = Dir::new();
    let db = dir.hdb();
    dir.mkdir("t");
    let name = std::ffi::OsStr::from_bytes(b"bad\xff\nname.txt");
    std::fs::write(dir.join("t").join(name), HELLO).unwrap();
    let db = db.to_str().unwrap();
    let run = dir.run(&["scan", "-d", db, "--no-summary", "t"]);
    assert_eq!(run.code(), 1, "{}", run.debug());
    let lines = run.lines();
    assert_eq!(
        lines.len(),
        1,
        "the newline in the name must not split the line: {}",
        run.debug()
    );
    assert!(
        is_found(&lines[0], r"t/bad\xff\x0aname.txt", HELLO_SIG),
        "{}",
        run.debug()
    );

    let run = dir.run(&["scan", "-d", db, "--no-summary", "--json", "t"]);
    let v: serde_json::Value = serde_json::from_str(run.stdout().trim()).unwrap();
    assert_eq!(v["path"], r"t/bad\xff\x0aname.txt");
    assert_eq!(v["path_hex"], "742f626164ff0a6e616d652e747874");
}

#[test]
fn empty_file_is_not_counted() {
    let dir = Dir::new();
    let db = dir.hdb();
    dir.write("empty", b"");
    let run = dir.run(&["scan", "-d", db.to_str().unwrap(), "empty"]);
    assert_eq!(run.code(), 0, "{}", run.debug());
    assert_eq!(run.lines(), vec!["empty: Empty file"]);
    assert_eq!(run.summary_value("Scanned files").as_deref(), Some("0"));
}

#[test]
fn stdin_is_scanned() {
    let dir = Dir::new();
    let db = dir.hdb();
    let db = db.to_str().unwrap();
    let run = dir.run_with(&["scan", "-d", db, "-"], Some(HELLO));
    assert_eq!(run.code(), 1, "{}", run.debug());
    let lines = run.lines();
    assert!(is_found(&lines[0], "stdin", HELLO_SIG), "{}", run.debug());
    assert_eq!(run.summary_value("Scanned files").as_deref(), Some("1"));

    let run = dir.run_with(&["scan", "-d", db, "--no-summary", "-"], Some(b"clean\n"));
    assert_eq!(run.stdout(), "stdin: OK\n");
    assert_eq!(run.code(), 0);
}

#[test]
fn eicar_on_stdin_with_builtin_database() {
    let dir = Dir::new();
    let run = dir.run_with(&["scan", "--no-summary", "-"], Some(&eicar()));
    assert_eq!(run.code(), 1, "{}", run.debug());
    assert!(
        run.stdout().starts_with("stdin: ") && run.stdout().contains("Eicar"),
        "{}",
        run.debug()
    );
}

#[test]
fn dangling_symlink_argument_is_named() {
    // A file that vanished, or a link to nothing, given by name.
    let dir = Dir::new();
    let db = dir.hdb();
    std::os::unix::fs::symlink("gone", dir.join("link")).unwrap();
    let run = dir.run(&["scan", "-d", db.to_str().unwrap(), "--no-summary", "link"]);
    assert_eq!(run.code(), 2, "{}", run.debug());
    assert_eq!(
        run.stderr(),
        "link: No such file or directory\nWARNING: link: Can't access file\n"
    );
}

#[test]
fn symlinks_as_clamscan() {
    let dir = Dir::new();
    let db = dir.hdb();
    dir.write("t/hello.txt", HELLO);
    std::os::unix::fs::symlink("hello.txt", dir.join("t/link")).unwrap();
    dir.write("other/x.txt", b"x\n");
    std::os::unix::fs::symlink("../other", dir.join("t/dirlink")).unwrap();
    let db = db.to_str().unwrap();
    // Inside a directory, links are reported, not followed.
    let run = dir.run(&["scan", "-d", db, "--no-summary", "-r", "t"]);
    let mut lines = run.lines();
    lines.sort();
    assert_eq!(lines.len(), 3, "{}", run.debug());
    assert_eq!(lines[0], "t/dirlink: Symbolic link");
    assert!(is_found(&lines[1], "t/hello.txt", HELLO_SIG));
    assert_eq!(lines[2], "t/link: Symbolic link");
    // Given by name, they are followed.
    let run = dir.run(&[
        "scan",
        "-d",
        db,
        "--no-summary",
        "-j1",
        "t/link",
        "t/dirlink",
    ]);
    let lines = run.lines();
    assert!(is_found(&lines[0], "t/link", HELLO_SIG), "{}", run.debug());
    assert_eq!(lines[1], "t/dirlink/x.txt: OK");
    // --follow-*-symlinks=0: not even then.
    let run = dir.run(&[
        "scan",
        "-d",
        db,
        "--no-summary",
        "--follow-file-symlinks=0",
        "--follow-dir-symlinks=0",
        "t/link",
    ]);
    assert_eq!(run.lines(), vec!["t/link: Symbolic link"]);
    assert_eq!(run.code(), 0);
}

#[test]
fn symlink_loop_terminates() {
    let dir = Dir::new();
    let db = dir.hdb();
    dir.write("t/a/f.txt", b"f\n");
    std::os::unix::fs::symlink("../..", dir.join("t/a/loop")).unwrap();
    std::os::unix::fs::symlink("self", dir.join("t/self")).unwrap();
    let run = dir.run(&[
        "scan",
        "-d",
        db.to_str().unwrap(),
        "--no-summary",
        "-r",
        "--follow-dir-symlinks=2",
        "--follow-file-symlinks=2",
        "t",
    ]);
    assert_eq!(run.code(), 2, "{}", run.debug());
    assert!(run.stdout().contains("t/a/f.txt: OK"));
    assert!(run.stdout().contains("t/self: Symbolic link"));
    // ../.. leaves the tree once and comes back to t: reported, not walked forever.
    assert!(
        run.stderr().contains("Symbolic link loop, not entered"),
        "{}",
        run.debug()
    );
}

#[test]
fn max_filesize_skips_as_clean_or_alerts() {
    let dir = Dir::new();
    let db = dir.hdb();
    let mut big = vec![b'a'; 3000];
    big.extend_from_slice(&eicar());
    dir.write("big", &big);
    let db = db.to_str().unwrap();
    let run = dir.run(&["scan", "-d", db, "--max-filesize=1000", "big"]);
    assert_eq!(run.code(), 0, "{}", run.debug());
    assert_eq!(run.lines(), vec!["big: OK"]);
    assert_eq!(run.summary_value("Scanned files").as_deref(), Some("1"));

    let run = dir.run(&[
        "scan",
        "-d",
        db,
        "--no-summary",
        "--max-filesize=1K",
        "--alert-exceeds-max",
        "big",
    ]);
    assert_eq!(run.code(), 1, "{}", run.debug());
    assert_eq!(
        run.stdout(),
        "big: Heuristics.Limits.Exceeded.MaxFileSize FOUND\n"
    );

    let run = dir.run(&["scan", "-d", db, "--max-filesize=1x", "big"]);
    assert_eq!(run.code(), 2, "bad size syntax: {}", run.debug());
}

#[test]
fn log_file_as_clamscan() {
    let dir = Dir::new();
    let db = dir.hdb();
    dir.write("t/hello.txt", HELLO);
    dir.write("t/clean.txt", b"clean\n");
    let run = dir.run(&[
        "scan",
        "-d",
        db.to_str().unwrap(),
        "-j1",
        "-l",
        "scan.log",
        "t",
        "missing",
    ]);
    assert_eq!(run.code(), 1, "{}", run.debug());
    let log = std::fs::read_to_string(dir.join("scan.log")).unwrap();
    assert!(log.starts_with(
        "\n-------------------------------------------------------------------------------\n\n"
    ));
    // OK lines and perror lines are not logged; warnings and results are.
    assert!(!log.contains(": OK"), "{log}");
    assert!(
        log.contains("WARNING: missing: Can't access file\n"),
        "{log}"
    );
    assert!(!log.contains("No such file or directory"), "{log}");
    assert!(
        log.lines().any(|l| is_found(l, "t/hello.txt", HELLO_SIG)),
        "{log}"
    );
    assert!(
        log.contains("----------- SCAN SUMMARY -----------\nKnown viruses: 1\n"),
        "{log}"
    );
    // Appended, not overwritten.
    dir.run(&["scan", "-d", db.to_str().unwrap(), "-l", "scan.log", "t"]);
    let again = std::fs::read_to_string(dir.join("scan.log")).unwrap();
    assert_eq!(again.matches("SCAN SUMMARY").count(), 2);
}

#[test]
fn threads_report_the_same_results() {
    let dir = Dir::new();
    let db = dir.hdb();
    for i in 0..200 {
        let data: &[u8] = if i % 17 == 0 { HELLO } else { b"plain file\n" };
        dir.write(&format!("t/d{}/f{i}.txt", i % 7), data);
    }
    let db = db.to_str().unwrap();
    let one = dir.run(&["scan", "-d", db, "-r", "-j1", "t"]);
    let four = dir.run(&["scan", "-d", db, "-r", "-j4", "t"]);
    assert_eq!(one.code(), 1);
    assert_eq!(four.code(), 1);
    let (mut a, mut b) = (one.lines(), four.lines());
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(a.len(), 200);
    for key in [
        "Scanned directories",
        "Scanned files",
        "Infected files",
        "Data read",
    ] {
        assert_eq!(one.summary_value(key), four.summary_value(key), "{key}");
    }
    assert_eq!(one.summary_value("Infected files").as_deref(), Some("12"));
}

#[test]
fn broken_pipe_exits_quietly() {
    let dir = Dir::new();
    let db = dir.hdb();
    for i in 0..3000 {
        dir.write(
            &format!("t/a-rather-long-file-name-to-fill-the-pipe-{i:05}.txt"),
            b"plain\n",
        );
    }
    let mut child = Command::new(BIN)
        .args(["scan", "-d", db.to_str().unwrap(), "-j1", "t"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut out, &mut first).unwrap();
    drop(out);
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

#[test]
fn bad_option_exits_2() {
    let dir = Dir::new();
    let run = dir.run(&["scan", "--no-such-option"]);
    assert_eq!(run.code(), 2);
    let run = dir.run(&["scan", "--max-recursion=0", "x"]);
    assert_eq!(run.code(), 2);
}

#[test]
fn malformed_database_is_a_load_error() {
    let dir = Dir::new();
    let bad = dir.write("db/bad.hdb", b"zzz:1\n");
    dir.write("clean.txt", b"x\n");
    let run = dir.run(&["scan", "-d", bad.to_str().unwrap(), "clean.txt"]);
    assert_eq!(run.code(), 2, "{}", run.debug());
    let err = run.stderr();
    assert!(err.starts_with("aether Error: "), "{err}");
    assert!(err.contains("bad.hdb:1"), "names file and line: {err}");
    assert!(err.ends_with("ERROR: Malformed database\n"), "{err}");
    // clamscan still prints an all-zero summary.
    assert_eq!(run.summary_value("Known viruses").as_deref(), Some("0"));
    assert!(run.lines().is_empty());

    let run = dir.run(&["scan", "-d", "db/nonexist.hdb", "clean.txt"]);
    assert_eq!(run.code(), 2, "{}", run.debug());
    assert!(
        run.stderr().ends_with("ERROR: Can't get file status\n"),
        "{}",
        run.debug()
    );
}

#[test]
fn db_info_lists_files_and_counts() {
    let dir = Dir::new();
    let db = dir.hdb();
    let run = dir.run(&["db", "info", "-d", db.to_str().unwrap()]);
    assert_eq!(run.code(), 0, "{}", run.debug());
    let out = run.stdout();
    assert!(out.contains("test.hdb"), "{out}");
    assert!(out.contains("Database files: 1"), "{out}");
    assert!(out.contains("md5: 1"), "{out}");
    assert!(out.contains("Total: 1 signatures loaded"), "{out}");

    let bad = dir.write("db/bad.ndb", b"no-colons-here\n");
    let run = dir.run(&["db", "info", "-d", bad.to_str().unwrap()]);
    assert_eq!(run.code(), 2, "{}", run.debug());
    assert!(run.stderr().contains("bad.ndb:1"), "{}", run.debug());
}

#[test]
fn db_info_shows_container_headers_and_unsupported_kinds() {
    let dir = Dir::new();
    // An unsigned .cud container built with tar: 512-byte header, then a tar
    // holding a .info table of contents and one .hdb.
    let hdb = format!("{}:{}:{HELLO_SIG}\n", md5_hex(HELLO), HELLO.len());
    dir.write("c/test.hdb", hdb.as_bytes());
    let sha = Command::new("sha256sum")
        .arg(dir.join("c/test.hdb"))
        .output()
        .unwrap();
    let sha = String::from_utf8(sha.stdout).unwrap()[..64].to_string();
    let head = "ClamAV-VDB:01 Jan 2024 00-00 +0000:42:1:90";
    dir.write(
        "c/test.info",
        format!(
            "{head}:X:X:tester:1700000000\ntest.hdb:{}:{sha}\n",
            hdb.len()
        )
        .as_bytes(),
    );
    let tar = Command::new("tar")
        .args([
            "cf",
            "-",
            "-C",
            dir.join("c").to_str().unwrap(),
            "test.info",
            "test.hdb",
        ])
        .output()
        .expect("tar");
    assert!(tar.status.success());
    let mut cud = format!("{head}:X:X:tester:1700000000").into_bytes();
    cud.resize(512, b' ');
    cud.extend_from_slice(&tar.stdout);
    let cud = dir.write("db/test.cud", &cud);
    let ldb = dir.write(
        "db/x.ldb",
        b"Sig;Target:0;0;41414141\nSig2;Target:0;0;42424242\nSig3;Engine:81-255,Target:1,IconGroup1:ICONS;0;41414141\n",
    );

    let run = dir.run(&[
        "db",
        "info",
        "-d",
        cud.to_str().unwrap(),
        "-d",
        ldb.to_str().unwrap(),
    ]);
    assert_eq!(run.code(), 0, "{}", run.debug());
    let out = run.stdout();
    assert!(out.contains("version 42, built 01 Jan 2024 00-00 +0000, by tester, 1 signatures, functionality level 90"), "{out}");
    assert!(
        out.contains("test.cud/test.hdb (.hdb)\n  md5: 1\n"),
        "{out}"
    );
    assert!(
        out.contains("x.ldb (.ldb)\n  logical: 2\n  not supported yet, logical signatures with IconGroup1/IconGroup2 (icon matching, .idb): 1\n"),
        "{out}"
    );
    assert!(out.contains("Total: 3 signatures loaded"), "{out}");

    // The same databases for a scan: one warning per file and reason.
    dir.write("hello.txt", HELLO);
    let run = dir.run(&[
        "scan",
        "--no-summary",
        "-d",
        cud.to_str().unwrap(),
        "-d",
        ldb.to_str().unwrap(),
        "hello.txt",
    ]);
    assert_eq!(run.code(), 1, "{}", run.debug());
    let warning = format!(
        "WARNING: {}: 1 signatures not supported yet (logical signatures with IconGroup1/IconGroup2 (icon matching, .idb)), skipped\n",
        ldb.display()
    );
    assert_eq!(run.stderr(), warning);
}

#[test]
fn file_list_names_the_targets() {
    let dir = Dir::new();
    let db = dir.hdb();
    dir.write("a.txt", b"a\n");
    dir.write("hello.txt", HELLO);
    dir.write("list", b"a.txt\r\nhello.txt\n\nmissing\n");
    let run = dir.run(&[
        "scan",
        "-d",
        db.to_str().unwrap(),
        "--no-summary",
        "-j1",
        "-f",
        "list",
        "ignored-arg",
    ]);
    assert_eq!(run.code(), 1, "{}", run.debug());
    let lines = run.lines();
    assert_eq!(lines[0], "a.txt: OK");
    assert!(
        is_found(&lines[1], "hello.txt", HELLO_SIG),
        "{}",
        run.debug()
    );
    assert_eq!(
        run.stderr(),
        "WARNING: Only scanning files from --file-list (files passed at cmdline are ignored)\n\
         missing: No such file or directory\nWARNING: missing: Can't access file\n"
    );
    let run = dir.run(&["scan", "-d", db.to_str().unwrap(), "--file-list=nolist"]);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr().contains("--file-list: Can't open file nolist"),
        "{}",
        run.debug()
    );
}

#[test]
fn compiled_database_cache_is_reused() {
    let dir = Dir::new();
    let db = dir.hdb();
    dir.write("hello.txt", HELLO);
    let db = db.to_str().unwrap();
    let cache = dir.join("dbcache");
    let cache = cache.to_str().unwrap();
    let first = dir.run(&["db", "info", "-d", db, "--db-cache", cache]);
    assert_eq!(first.code(), 0, "{}", first.debug());
    assert!(
        first.stdout().contains("(parsed and compiled)"),
        "{}",
        first.debug()
    );
    let second = dir.run(&["db", "info", "-d", db, "--db-cache", cache]);
    assert!(
        second.stdout().contains("(read from the compiled cache)"),
        "{}",
        second.debug()
    );
    // Same counts either way.
    let counts = |s: String| {
        s.lines()
            .filter(|l| !l.starts_with("Loaded in"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(counts(first.stdout()), counts(second.stdout()));
    // A scan through the cache finds the same thing.
    let run = dir.run(&[
        "scan",
        "-d",
        db,
        "--db-cache",
        cache,
        "--no-summary",
        "hello.txt",
    ]);
    assert_eq!(run.code(), 1, "{}", run.debug());
    assert!(
        is_found(&run.lines()[0], "hello.txt", HELLO_SIG),
        "{}",
        run.debug()
    );
    assert_eq!(run.stderr(), "");
    // With -d and no --db-cache, no cache is used.
    let run = dir.run(&["db", "info", "-d", db]);
    assert!(
        run.stdout().contains("(parsed and compiled)"),
        "{}",
        run.debug()
    );
}

#[test]
fn progress_bar_stays_on_the_terminal() {
    // `script` gives aether a terminal for standard error while standard
    // output goes to a file: the bar must be drawn, and none of it may reach
    // the file.
    let Some(script) = which("script") else {
        eprintln!(
            "SKIPPED progress_bar_stays_on_the_terminal: util-linux `script` is not installed"
        );
        return;
    };
    let dir = Dir::new();
    let db = dir.hdb();
    for i in 0..300 {
        dir.write(&format!("t/f{i:03}.txt"), b"plain\n");
    }
    dir.write("t/hello.txt", HELLO);
    let command = format!(
        "{BIN} scan -d {} --no-summary -r t nonexistent > out.txt",
        db.to_str().unwrap()
    );
    let run = run_cmd(
        Command::new(script)
            .args(["-qec", &command, "/dev/null"])
            .current_dir(dir.path())
            .env("AETHER_CACHE_DIR", dir.join(".cache")),
        None,
    );
    // The terminal (script's own output) saw the bar and the warning.
    let terminal = String::from_utf8_lossy(&run.output.stdout).into_owned();
    assert!(
        terminal.contains(" files "),
        "no progress bar drawn: {terminal:?}"
    );
    assert!(
        terminal.contains("WARNING: nonexistent: Can't access file"),
        "{terminal:?}"
    );
    // The file holds exactly the result lines.
    let out = std::fs::read_to_string(dir.join("out.txt")).unwrap();
    assert!(
        !out.contains('\x1b') && !out.contains('\r'),
        "terminal codes in stdout"
    );
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 301, "{out}");
    assert!(
        lines
            .iter()
            .all(|l| l.ends_with(": OK") || l.ends_with(" FOUND")),
        "{out}"
    );
}

#[test]
fn devices_are_never_opened() {
    let dir = Dir::new();
    let db = dir.hdb();
    let db = db.to_str().unwrap();
    // Reading /dev/zero would never end: given by name, it is refused.
    let run = dir.run(&["scan", "-d", db, "--no-summary", "/dev/zero"]);
    assert_eq!(run.code(), 2, "{}", run.debug());
    assert_eq!(
        run.stderr(),
        "WARNING: /dev/zero: Not supported file type\n"
    );
    // Inside a directory it is skipped (only root can make one there).
    dir.write("t/a.txt", b"a\n");
    if !is_root() {
        eprintln!("SKIPPED devices_are_never_opened (device in a directory): needs root for mknod");
        return;
    }
    let made = Command::new("mknod")
        .arg(dir.join("t/zero"))
        .args(["c", "1", "5"])
        .status()
        .expect("mknod");
    assert!(made.success());
    let run = dir.run(&["scan", "-d", db, "--no-summary", "t"]);
    assert_eq!(run.code(), 0, "{}", run.debug());
    assert_eq!(run.lines(), vec!["t/a.txt: OK"]);
}

#[test]
fn yara_define_sets_external_variables() {
    let dir = Dir::new();
    let rules = dir.write(
        "r.yar",
        b"rule Big { condition: filesize > threshold }\nrule Tagged { condition: tag == \"x\" }\n",
    );
    dir.write("f.txt", b"0123456789\n");
    let rules = rules.to_str().unwrap();
    let scan = |defines: &[&str]| {
        let mut args = vec!["scan", "--no-summary", "--allmatch", "--yara-rules", rules];
        for d in defines {
            args.extend(["--yara-define", d]);
        }
        args.push("f.txt");
        dir.run(&args)
    };
    let run = scan(&["threshold=5", "tag=x"]);
    assert_eq!(run.code(), 1, "{}", run.debug());
    assert_eq!(
        run.lines(),
        vec![
            "f.txt: YARA.Big.UNOFFICIAL FOUND",
            "f.txt: YARA.Tagged.UNOFFICIAL FOUND"
        ]
    );
    let run = scan(&["threshold=100", "tag=\"y\""]);
    assert_eq!(run.code(), 0, "{}", run.debug());
    assert_eq!(run.lines(), vec!["f.txt: OK"]);
    // Undefined: the compiler's own error names the identifier; exit 2.
    let run = scan(&["threshold=5"]);
    assert_eq!(run.code(), 2, "{}", run.debug());
    assert!(run.stderr().contains("tag"), "{}", run.debug());
    // Malformed (a usage error), or without rules to apply to (a load error).
    assert_eq!(scan(&["novalue"]).code(), 2);
    let run = dir.run(&["scan", "--yara-define", "a=1", "f.txt"]);
    assert_eq!(run.code(), 2, "{}", run.debug());
}
