//! `aether monitor` end to end, through the `monitor` example, which compiles the
//! very command file of the `aether` binary (cargo builds examples before tests).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn monitor_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/monitor_cli-<hash> -> target/<profile>/examples/monitor
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("examples/monitor"))
        .expect("target dir");
    assert!(
        bin.exists(),
        "{} missing: cargo test builds examples first",
        bin.display()
    );
    bin
}

fn run_to_end(mut cmd: Command) -> (i32, String) {
    let out = cmd.stdin(Stdio::null()).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn without_cap_net_admin_it_says_so_and_exits_2() {
    let mut cmd = Command::new("/usr/bin/setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
    ])
    .arg(monitor_bin());
    let (code, err) = run_to_end(cmd);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("CAP_NET_ADMIN"), "{err}");
}

#[test]
fn outside_the_initial_network_namespace_it_says_so_and_exits_2() {
    let mut cmd = Command::new("/usr/bin/unshare");
    cmd.arg("--net").arg(monitor_bin());
    let (code, err) = run_to_end(cmd);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("initial network namespace"), "{err}");
}

#[test]
fn a_bad_filter_exits_2() {
    let mut cmd = Command::new(monitor_bin());
    cmd.args(["--filter", "kind=nonsense"]);
    let (code, err) = run_to_end(cmd);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nonsense"), "{err}");
}

#[test]
fn json_lines_filtered_by_exe_then_counts_on_sigterm() {
    // A uniquely named copy of cat, so the filter selects only our process; it
    // waits on its stdin so its exe can be read.
    let dir = std::env::temp_dir().join(format!("aether-monitor-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prog = dir.join("aether-cli-probe");
    std::fs::copy("/bin/cat", &prog).unwrap();

    let mut mon = Command::new(monitor_bin())
        .args([
            "--json",
            "--filter",
            "exe=aether-cli-probe",
            "--rcvbuf",
            "8M",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mon_pid = mon.id();
    let (err_tx, err_rx) = mpsc::channel();
    let stderr = mon.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = err_tx.send(line);
        }
    });
    let first = err_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("monitor reports it is listening");
    assert!(first.contains("listening"), "{first}");

    let mut probe = Command::new(&prog).stdin(Stdio::piped()).spawn().unwrap();

    let (out_tx, out_rx) = mpsc::channel();
    let stdout = mon.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = out_tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines.is_empty() && Instant::now() < deadline {
        if let Ok(l) = out_rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(
                serde_json::from_str::<serde_json::Value>(&l)
                    .expect("each line is one JSON object"),
            );
        }
    }
    drop(probe.stdin.take());
    assert!(probe.wait().unwrap().success());
    while !lines
        .iter()
        .any(|l: &serde_json::Value| l["kind"] == "exit")
        && Instant::now() < deadline
    {
        if let Ok(l) = out_rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(
                serde_json::from_str::<serde_json::Value>(&l)
                    .expect("each line is one JSON object"),
            );
        }
    }
    // SAFETY: mon_pid is our own child, still running.
    unsafe { libc::kill(mon_pid as i32, libc::SIGTERM) };
    let code = mon.wait().unwrap().code();
    let mut rest: Vec<String> = Vec::new();
    while let Ok(l) = err_rx.recv_timeout(Duration::from_secs(5)) {
        rest.push(l);
    }
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(code, Some(0), "{rest:?}");
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["kind"].as_str()).collect();
    assert_eq!(kinds, vec!["exec", "exit"], "{lines:?}");
    let exec = &lines[0];
    assert_eq!(exec["exe"], prog.to_str().unwrap());
    assert_eq!(exec["argv"][0], prog.to_str().unwrap());
    assert!(exec["seq"].is_u64() && exec["time_ns"].is_u64());
    assert_eq!(exec["process"]["pid"], exec["pid"]);
    assert!(
        exec["process"]["boot_id"]
            .as_str()
            .is_some_and(|b| b.len() == 36)
    );
    assert_eq!(lines[1]["status"], 0);
    assert_eq!(lines[1]["process_ended"], true);
    let summary = rest.join("\n");
    assert!(
        summary.contains("events received from the kernel"),
        "{summary}"
    );
    assert!(summary.contains("lost in the kernel"), "{summary}");
    assert!(summary.contains("lost in the queue"), "{summary}");
    assert!(summary.contains("resyncs"), "{summary}");
}
