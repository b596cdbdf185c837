//! aetherd against Debian's clamd 1.4.6, on the same database and files:
//! raw protocol bytes, and Debian's clamdscan in each of its modes.

mod common;

use std::process::Command;

use common::*;

/// Replies that must be byte-identical (VERSION text aside).
#[test]
fn raw_replies_match_clamd() {
    let fx = Fixture::new();
    let clamd = Daemon::clamd(&fx);
    let aetherd = Daemon::aetherd(&fx, "aetherd", "");
    let f = |n: &str| fx.file(n).into_os_string().into_string().unwrap();
    let eicar = f("eicar.com");
    let mut cases: Vec<Vec<u8>> = vec![
        b"PING".to_vec(),
        b"nPING\n".to_vec(),
        b"zPING\0".to_vec(),
        b"PING\n".to_vec(),
        b"nVERSION\n".to_vec(),
        b"zVERSION\0".to_vec(),
        b"VERSION".to_vec(),
        b"nVERSIONCOMMANDS\n".to_vec(),
        b"zVERSIONCOMMANDS\0".to_vec(),
        b"VERSIONCOMMANDS".to_vec(),
        b"nFOO\n".to_vec(),
        b"FOO".to_vec(),
        b"zFOO\0".to_vec(),
        b"n\n".to_vec(),
        b"xPING\n".to_vec(),
        b"nping\n".to_vec(),
        b"PINGjunk".to_vec(),
        b"nPING junk\n".to_vec(),
        b"nPING\nnPING\n".to_vec(),
        b"nEND\n".to_vec(),
        b"nSCAN\n".to_vec(),
        b"nSCAN \n".to_vec(),
        b"nSCAN relative/path\n".to_vec(),
        b"nSCAN /nonexistent/x\n".to_vec(),
        b"nCONTSCAN /nonexistent\n".to_vec(),
        b"nSCAN /dev/null\n".to_vec(),
        b"INSTREAM".to_vec(),
        b"ALLMATCHSCAN /".to_vec(),
        instream(b"nINSTREAM\n", EICAR, 7),
        instream(b"zINSTREAM\0", EICAR, 4096),
        instream(b"nINSTREAM\n", b"hello", 2),
        instream(b"nINSTREAM\n", &[], 1),
        instream(b"nINSTREAM\n", &vec![b'a'; 1 << 20], 65536),
        instream(b"nINSTREAM\n", &vec![b'a'; (1 << 20) + 1], 65536),
        {
            let mut v = b"nINSTREAM\n".to_vec();
            v.extend_from_slice(&(2u32 << 20).to_be_bytes());
            v.extend_from_slice(&[b'a'; 100]);
            v
        },
        b"nIDSESSION\nnPING\nnVERSION\nnEND\n".to_vec(),
        b"zIDSESSION\0zPING\0zEND\0".to_vec(),
        b"nIDSESSION\nnIDSESSION\n".to_vec(),
        b"nIDSESSION\nnSHUTDOWN\nnEND\n".to_vec(),
        b"nIDSESSION\nnRELOAD\nnEND\n".to_vec(),
        b"nIDSESSION\nnFILDES\nnEND\n".to_vec(),
        b"nIDSESSION\nnCONTSCAN /tmp\nnEND\n".to_vec(),
        b"nIDSESSION\nnMULTISCAN /tmp\nnEND\n".to_vec(),
        b"nIDSESSION\nnALLMATCHSCAN /tmp\nnEND\n".to_vec(),
        b"nIDSESSION\nnSCAN /nonexistent\nnEND\n".to_vec(),
        {
            let mut v = b"nIDSESSION\n".to_vec();
            v.extend(instream(b"nINSTREAM\n", b"hello", 3));
            v.extend(instream(b"nINSTREAM\n", EICAR, 30));
            v.extend_from_slice(b"nPING\nnEND\n");
            v
        },
    ];
    for name in [
        "eicar.com",
        "clean.txt",
        "marker.bin",
        "dir/empty",
        "link.com",
        "cleandir",
    ] {
        for cmd in ["SCAN", "CONTSCAN", "MULTISCAN", "ALLMATCHSCAN"] {
            cases.push(format!("n{cmd} {}\n", f(name)).into_bytes());
        }
    }
    cases.push(format!("zSCAN {eicar}\0").into_bytes());
    cases.push(format!("SCAN {eicar}").into_bytes());
    cases.push(format!("nIDSESSION\nnSCAN {eicar}\nnEND\n").into_bytes());
    let mut failures = Vec::new();
    for case in &cases {
        let limit = std::time::Duration::from_secs(3);
        let want = send_or_timeout(&clamd.socket, case, limit);
        let got = normalize(&send_or_timeout(&aetherd.socket, case, limit));
        // Inside a session clamd answers quick commands at once and scans on
        // its threads, so replies may come in any order; the ids tell them apart.
        let (want, got) = if case.starts_with(b"nIDSESSION") || case.starts_with(b"zIDSESSION") {
            (
                sorted_lines(&want).concat().into_bytes(),
                sorted_lines(&got).concat().into_bytes(),
            )
        } else {
            (want, got)
        };
        if want != got {
            failures.push(format!(
                "{:?}\n  clamd:   {:?}\n  aetherd: {:?}",
                String::from_utf8_lossy(&case[..case.len().min(80)]),
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(&got)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Directory scans: the same lines, in any order (clamd lists a
/// directory's files before its subdirectories; aether walks in readdir
/// order; MULTISCAN replies come as files finish in both).
#[test]
fn directory_scans_match_clamd() {
    let fx = Fixture::new();
    let clamd = Daemon::clamd(&fx);
    let aetherd = Daemon::aetherd(&fx, "aetherd", "");
    let files = fx.path().join("files").display().to_string();
    for cmd in ["CONTSCAN", "MULTISCAN"] {
        for target in [
            files.clone(),
            format!("{files}/dir"),
            format!("{files}/cleandir"),
        ] {
            let case = format!("n{cmd} {target}\n").into_bytes();
            assert_eq!(
                sorted_lines(&clamd.send(&case)),
                sorted_lines(&aetherd.send(&case)),
                "{cmd} {target}"
            );
        }
    }
    // SCAN and ALLMATCHSCAN stop at the first infected file: one line, and
    // which file comes first depends on the walk order.
    for cmd in ["SCAN", "ALLMATCHSCAN"] {
        let reply = aetherd.send(format!("n{cmd} {files}/dir\n").as_bytes());
        let text = String::from_utf8_lossy(&reply);
        assert_eq!(text.lines().count(), 1, "{cmd}: {text}");
        assert!(text.ends_with(".UNOFFICIAL FOUND\n"), "{cmd}: {text}");
    }
}

/// STATS has clamd's layout; its figures are the daemon's own.
#[test]
fn stats_layout_matches_clamd() {
    let fx = Fixture::new();
    let clamd = Daemon::clamd(&fx);
    let aetherd = Daemon::aetherd(&fx, "aetherd", "");
    for (prefix, case) in [
        ("", &b"nSTATS\n"[..]),
        ("1: ", b"nIDSESSION\nnSTATS\nnEND\n"),
    ] {
        for d in [&clamd, &aetherd] {
            let text = String::from_utf8(d.send(case)).unwrap();
            let head = format!("{prefix}POOLS: 1\n\nSTATE: VALID PRIMARY\nTHREADS: live ");
            assert!(text.starts_with(&head), "{}: {text:?}", d.name);
            assert!(
                text.contains(" max 3 idle-timeout 30\nQUEUE: 0 items\n\tSTATS "),
                "{}: {text:?}",
                d.name
            );
            assert!(text.contains("\n\nMEMSTATS: heap N/A mmap N/A used N/A free N/A releasable N/A pools 1 pools_used "), "{}: {text:?}", d.name);
            assert!(text.ends_with("M\nEND\n"), "{}: {text:?}", d.name);
        }
    }
}

fn clamdscan(fx: &common::Fixture, d: &Daemon, args: &[&str]) -> (Vec<String>, i32) {
    let conf = fx.path().join(format!("clamdscan-{}.conf", d.name));
    std::fs::write(&conf, format!("LocalSocket {}\n", d.socket.display())).unwrap();
    let out = Command::new("clamdscan")
        .arg("--config-file")
        .arg(&conf)
        .arg("--no-summary")
        .args(args)
        .output()
        .expect("clamdscan is needed: apt-get install clamdscan (bash .ci/run installs it)");
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .map(str::to_string)
        .collect();
    lines.sort();
    (lines, out.status.code().unwrap_or(-1))
}

/// Debian's clamdscan prints the same lines and exits with the same code
/// against both daemons, in every mode.
#[test]
fn clamdscan_gives_the_same_answers() {
    let fx = Fixture::new();
    let clamd = Daemon::clamd(&fx);
    let aetherd = Daemon::aetherd(&fx, "aetherd", "");
    let files = fx.path().join("files").display().to_string();
    let eicar = fx.file("eicar.com").display().to_string();
    let clean = fx.file("clean.txt").display().to_string();
    let cleandir = fx.file("cleandir").display().to_string();
    let mut checked = 0;
    for mode in [
        &[][..],
        &["--multiscan"],
        &["--stream"],
        &["--fdpass"],
        &["--allmatch"],
        &["-m", "--fdpass"],
    ] {
        for targets in [
            vec![files.as_str()],
            vec![eicar.as_str()],
            vec![clean.as_str(), cleandir.as_str()],
            vec!["/nonexistent/file"],
        ] {
            let args: Vec<&str> = mode
                .iter()
                .copied()
                .chain(targets.iter().copied())
                .collect();
            let want = clamdscan(&fx, &clamd, &args);
            let got = clamdscan(&fx, &aetherd, &args);
            assert_eq!(want, got, "clamdscan {args:?}");
            checked += 1;
        }
    }
    // Detections were really made, not two identical failures.
    let (lines, code) = clamdscan(&fx, &aetherd, &["--fdpass", &eicar]);
    assert_eq!(code, 1, "{lines:?}");
    assert_eq!(
        lines,
        vec![format!("{eicar}: Test.Eicar.Body.UNOFFICIAL FOUND")]
    );
    let (lines, code) = clamdscan(&fx, &aetherd, &["--stream", &clean]);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines, vec![format!("{clean}: OK")]);
    assert_eq!(checked, 24);
}

/// A client written against the protocol documentation, in Python, as the
/// `clamd`/`pyclamd` packages speak it (z-prefixed commands, INSTREAM).
#[test]
fn python_client_gets_the_same_answers() {
    let fx = Fixture::new();
    let clamd = Daemon::clamd(&fx);
    let aetherd = Daemon::aetherd(&fx, "aetherd", "");
    let script = r#"
import socket, struct, sys
def call(path, cmd, payload=None):
    s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(path)
    s.sendall(b"z" + cmd + b"\0")
    if payload is not None:
        for i in range(0, len(payload), 1024):
            c = payload[i:i+1024]; s.sendall(struct.pack("!L", len(c)) + c)
        s.sendall(struct.pack("!L", 0))
    out = b""
    while True:
        d = s.recv(4096)
        if not d: break
        out += d
    s.close()
    return out.rstrip(b"\0").decode()
sock, eicar, files = sys.argv[1], sys.argv[2], sys.argv[3]
print(call(sock, b"PING"))
print(call(sock, b"VERSION").split("/")[0])
print(call(sock, b"SCAN " + eicar.encode()))
print(call(sock, b"INSTREAM", open(eicar, "rb").read()))
print(call(sock, b"INSTREAM", b"clean data" * 1000))
print(sorted(call(sock, b"CONTSCAN " + files.encode()).split("\0")))
print(sorted(call(sock, b"MULTISCAN " + files.encode()).split("\0")))
"#;
    let run = |d: &Daemon| {
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&d.socket)
            .arg(fx.file("eicar.com"))
            .arg(fx.path().join("files"))
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let want = run(&clamd);
    let got = run(&aetherd);
    assert_eq!(want, got);
    assert!(got.starts_with("PONG\nClamAV 1.4.6\n"), "{got}");
    assert!(
        got.contains("stream: Test.Eicar.Body.UNOFFICIAL FOUND\nstream: OK\n"),
        "{got}"
    );
}

/// Permission errors, with both daemons unprivileged (as root: clamd with
/// `User nobody`, aetherd through setpriv): unreadable files and
/// directories give the same replies.
#[test]
fn permission_errors_match_clamd() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let files = fx.path().join("files");
    std::fs::write(files.join("private.com"), EICAR).unwrap();
    std::fs::write(files.join("private.txt"), b"secret").unwrap();
    std::fs::create_dir(files.join("privdir")).unwrap();
    std::fs::write(files.join("privdir/eicar.com"), EICAR).unwrap();
    let closed = if root { 0o600 } else { 0o000 };
    for f in ["private.com", "private.txt"] {
        std::fs::set_permissions(files.join(f), std::fs::Permissions::from_mode(closed)).unwrap();
    }
    std::fs::set_permissions(
        files.join("privdir"),
        std::fs::Permissions::from_mode(if root { 0o700 } else { 0o000 }),
    )
    .unwrap();
    // Sockets and logs in a directory the unprivileged daemons own.
    let run = fx.path().join("run");
    std::fs::create_dir(&run).unwrap();
    chmod(&run, 0o777);

    let clamd_conf = fx.path().join("clamd-nobody.conf");
    std::fs::write(
        &clamd_conf,
        format!(
            "LocalSocket {0}/clamd.sock\nDatabaseDirectory {1}\nForeground yes\nLogFile {0}/clamd.log\n{2}",
            run.display(),
            fx.path().join("db").display(),
            if root { "User nobody\n" } else { "" }
        ),
    )
    .unwrap();
    let mut clamd = Daemon {
        child: Some(
            Command::new("/usr/sbin/clamd")
                .arg("-c")
                .arg(&clamd_conf)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("clamd (apt-get install clamav-daemon)"),
        ),
        socket: run.join("clamd.sock"),
        log: run.join("clamd.log"),
        name: "clamd",
    };
    clamd.wait_ready(std::time::Duration::from_secs(120));

    let aetherd_conf = fx.path().join("aetherd-nobody.toml");
    std::fs::write(
        &aetherd_conf,
        format!(
            "LocalSocket = {:?}\nDatabaseDirectory = {:?}\nBuiltinDatabase = false\nDatabaseCache = false\nIpcSocket = \"\"\nJournalPath = \"\"\nSensor = false\nLogFile = {:?}\n",
            run.join("aetherd.sock"),
            fx.path().join("db"),
            run.join("aetherd.log")
        ),
    )
    .unwrap();
    chmod(&aetherd_conf, 0o644);
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        c.arg(env!("CARGO_BIN_EXE_aetherd"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_aetherd"))
    };
    let mut aetherd = Daemon {
        child: Some(
            cmd.args(["--foreground", "--config"])
                .arg(&aetherd_conf)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        ),
        socket: run.join("aetherd.sock"),
        log: run.join("aetherd.log"),
        name: "aetherd",
    };
    aetherd.wait_ready(std::time::Duration::from_secs(60));

    let f = |n: &str| files.join(n).display().to_string();
    let mut checked = 0;
    for (cmd, target) in [
        ("SCAN", f("private.com")),
        ("SCAN", f("private.txt")),
        ("CONTSCAN", f("private.com")),
        ("SCAN", f("privdir")),
        ("CONTSCAN", f("privdir")),
        ("MULTISCAN", f("privdir")),
        ("SCAN", f("privdir/eicar.com")),
        ("CONTSCAN", f("")),
        ("MULTISCAN", f("")),
    ] {
        let case = format!("n{cmd} {target}\n").into_bytes();
        let want = sorted_lines(&clamd.send(&case));
        let got = sorted_lines(&aetherd.send(&case));
        assert_eq!(want, got, "{cmd} {target}");
        checked += 1;
    }
    // The errors were really there.
    let reply = String::from_utf8(aetherd.send(format!("nSCAN {}\n", f("private.com")).as_bytes()))
        .unwrap();
    assert_eq!(
        reply,
        format!("{}: Access denied. ERROR\n", f("private.com"))
    );
    assert_eq!(checked, 9);
}
