//! Waiting for a process stopped by `SIGSTOP` to be stopped: `kill` returns
//! before its threads are. Shared by aetherd's loss tests and the CLI's daemon
//! tests (included by path).

use std::time::{Duration, Instant};

/// Waits (at most 10 s) until every thread of `pid` is stopped (`T`).
pub fn wait_stopped(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("list the threads");
        let all_stopped = tasks.flatten().all(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            // The state follows the command name's closing parenthesis.
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('T'))
        });
        if all_stopped {
            return;
        }
        assert!(Instant::now() < deadline, "process {pid} did not stop");
        std::thread::sleep(Duration::from_millis(5));
    }
}
