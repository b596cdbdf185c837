//! aether and Debian's clamscan side by side on the same tree and options:
//! the same lines, in the same order (one thread), on the same streams, with
//! the same exit code and summary counts.

mod util;

use std::process::Command;

use util::*;

const EICAR_NDB_HEX: &str = "58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a";

fn clamscan() -> Option<std::path::PathBuf> {
    let found = which("clamscan");
    if found.is_none() {
        // .ci/run installs Debian's clamav; outside CI this comparison needs it too.
        eprintln!("SKIPPED: clamscan is not installed (bash .ci/run installs it)");
    }
    found
}

fn tree(dir: &Dir) -> (String, String) {
    let hdb = dir.hdb();
    let ndb = dir.write(
        "db/eicar.ndb",
        format!("Test.Eicar:0:*:{EICAR_NDB_HEX}\n").as_bytes(),
    );
    dir.write("t/hello.txt", HELLO);
    dir.write("t/clean.txt", b"nothing here\n");
    dir.write("t/empty", b"");
    dir.write("t/notes.log", HELLO);
    dir.write("t/sub/deep/e.com", &eicar());
    dir.write("t/sub/ok.bin", &[0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    dir.write("t/skipme/inner.txt", HELLO);
    std::os::unix::fs::symlink("hello.txt", dir.join("t/link")).unwrap();
    std::os::unix::fs::symlink("sub", dir.join("t/dirlink")).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(dir.join("t/fifo"))
            .status()
            .unwrap()
            .success()
    );
    (
        hdb.to_str().unwrap().to_string(),
        ndb.to_str().unwrap().to_string(),
    )
}

fn compare(dir: &Dir, clamscan: &std::path::Path, args: &[&str]) {
    let theirs = run_cmd(
        Command::new(clamscan).args(args).current_dir(dir.path()),
        None,
    );
    // Results come in walk order on any number of threads.
    for threads in ["-j1", "-j4"] {
        let mut ours_args = vec!["scan", threads, "--no-progress"];
        ours_args.extend_from_slice(args);
        let ours = dir.run(&ours_args);
        same(&theirs, &ours, args);
    }
}

fn same(theirs: &Run, ours: &Run, args: &[&str]) {
    let context = format!(
        "args {args:?}\n=== clamscan\n{}\n=== aether\n{}",
        theirs.debug(),
        ours.debug()
    );
    assert_eq!(ours.lines(), theirs.lines(), "{context}");
    assert_eq!(ours.stderr(), theirs.stderr(), "{context}");
    assert_eq!(ours.code(), theirs.code(), "{context}");
    if !args.contains(&"--no-summary") && !args.contains(&"--quiet") {
        let skip = ["Engine version", "Time", "Start Date", "End Date"];
        let strip = |s: Vec<(String, String)>| {
            s.into_iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(ours.summary()), strip(theirs.summary()), "{context}");
    }
}

#[test]
fn same_output_as_clamscan() {
    let Some(clamscan) = clamscan() else { return };
    let dir = Dir::new();
    let (hdb, ndb) = tree(&dir);
    let db = ["-d", hdb.as_str(), "-d", ndb.as_str()];
    let with = |extra: &[&'static str]| {
        let mut v: Vec<&str> = db.to_vec();
        v.extend_from_slice(extra);
        v
    };
    compare(&dir, &clamscan, &with(&["t"]));
    compare(&dir, &clamscan, &with(&["-r", "t"]));
    compare(&dir, &clamscan, &with(&["-r", "-i", "t"]));
    compare(&dir, &clamscan, &with(&["-r", "-o", "t/"]));
    compare(
        &dir,
        &clamscan,
        &with(&["-r", "--exclude=\\.log$", "--exclude-dir=skipme", "t"]),
    );
    compare(&dir, &clamscan, &with(&["-r", "--include=\\.txt$", "t"]));
    compare(
        &dir,
        &clamscan,
        &with(&["-r", "--exclude-dir=^t$", "t", "t/hello.txt"]),
    );
    compare(
        &dir,
        &clamscan,
        &with(&["-r", "--include-dir=sub", "t", "t/sub"]),
    );
    compare(
        &dir,
        &clamscan,
        &with(&["-r", "--max-dir-recursion=2", "t"]),
    );
    compare(&dir, &clamscan, &with(&["-r", "--exclude-dir=/sub/$", "t"]));
    compare(&dir, &clamscan, &with(&["-i", "-o", "t", "missing"]));
    compare(
        &dir,
        &clamscan,
        &with(&["--stdout", "--bell", "t", "missing", "t/fifo"]),
    );
    compare(
        &dir,
        &clamscan,
        &with(&["--quiet", "-r", "t", "missing", "t/fifo"]),
    );
    compare(&dir, &clamscan, &with(&["--quiet", "t/clean.txt"]));
    compare(
        &dir,
        &clamscan,
        &with(&[
            "--no-summary",
            "t/link",
            "t/dirlink",
            "missing",
            "t/fifo",
            "t/empty",
        ]),
    );
    compare(
        &dir,
        &clamscan,
        &with(&[
            "-r",
            "--follow-file-symlinks=0",
            "--follow-dir-symlinks=0",
            "t/link",
            "t",
        ]),
    );
    compare(
        &dir,
        &clamscan,
        &with(&["-z", "t/hello.txt", "t/clean.txt"]),
    );
    compare(
        &dir,
        &clamscan,
        &with(&["--max-filesize=5", "t/hello.txt", "t/sub/ok.bin"]),
    );
    compare(
        &dir,
        &clamscan,
        &with(&[
            "--max-filesize=5",
            "--alert-exceeds-max",
            "--no-summary",
            "t/hello.txt",
        ]),
    );
}

#[test]
fn same_log_file_as_clamscan() {
    let Some(clamscan) = clamscan() else { return };
    let dir = Dir::new();
    let (hdb, ndb) = tree(&dir);
    let args = [
        "-d",
        hdb.as_str(),
        "-d",
        ndb.as_str(),
        "-r",
        "--no-summary",
        "t",
        "missing",
    ];
    let mut theirs = vec!["-l", "clamscan.log"];
    theirs.extend_from_slice(&args);
    run_cmd(
        Command::new(&clamscan)
            .args(&theirs)
            .current_dir(dir.path()),
        None,
    );
    let mut ours = vec!["scan", "-j1", "-l", "aether.log"];
    ours.extend_from_slice(&args);
    dir.run(&ours);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    assert_eq!(read("aether.log"), read("clamscan.log"));
}

#[test]
fn same_stdin_result_as_clamscan() {
    let Some(clamscan) = clamscan() else { return };
    let dir = Dir::new();
    let (hdb, ndb) = tree(&dir);
    for data in [HELLO, b"clean\n".as_slice(), eicar().as_slice()] {
        let args = ["-d", hdb.as_str(), "-d", ndb.as_str(), "--no-summary", "-"];
        let theirs = run_cmd(
            Command::new(&clamscan).args(args).current_dir(dir.path()),
            Some(data),
        );
        let mut ours_args = vec!["scan"];
        ours_args.extend_from_slice(&args);
        let ours = dir.run_with(&ours_args, Some(data));
        assert_eq!(
            ours.stdout(),
            theirs.stdout(),
            "{}\n{}",
            theirs.debug(),
            ours.debug()
        );
        assert_eq!(ours.code(), theirs.code());
    }
}
